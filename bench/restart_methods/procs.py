"""Processes and files for the restart-methods benchmarks: every process started is tracked and
stopped by pid, logs are waited on with a bound, and result files lose this machine's paths.
Python stdlib only; imports no other module of the suite."""

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))

REPO = os.path.dirname(os.path.dirname(HERE))


def portable_text(text, build=None):
    """A result file's text without this machine's paths, which the raw results (soak's JSON
    records its reload command, the logs their directories) would otherwise carry into the
    repository: the build directory becomes `build/`, the repository's own files repo-relative,
    the interpreter `python3`, a run's scratch directory `$WORK`."""
    if build:
        text = text.replace(os.path.abspath(build) + "/", "build/")
    text = text.replace(REPO + "/", "").replace(sys.executable, "python3")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/baton-[a-z]+-bench\.[A-Za-z0-9_]+",
                  "$WORK", text)


def make_portable(directory, build=None):
    """portable_text() on every text file in `directory` (not below it)."""
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        new = portable_text(text, build)
        if new != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"run-restart-methods: {msg}", file=sys.stderr)
    sys.exit(2)


def set_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return rest[0], int(rest[1])  # state, ppid
    except (OSError, IndexError):
        return None, None


def alive(pid):
    state, _ = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def descendants(root):
    """Pids of every live descendant of root (by PPid), root excluded."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            _, ppid = proc_state(int(name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def stop_pids(pids, grace_s=10.0):
    """SIGTERM each live pid, wait up to grace_s for all, SIGKILL the rest; reaps our children."""
    pids = [p for p in set(pids) if alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + grace_s
    while time.monotonic() < end and any(alive(p) for p in pids):
        for p in pids:
            reap(p)
        time.sleep(0.02)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in pids:
        for _ in range(100):
            reap(p)
            if not alive(p):
                break
            time.sleep(0.01)


def pinned(cpus):
    """A preexec_fn that confines the child (and all it starts) to `cpus`; None: no change."""
    return None if not cpus else lambda: os.sched_setaffinity(0, cpus)


def spawn(argv, logpath, env=None, cpus=None):
    with open(logpath, "ab") as f:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env,
                                start_new_session=True, preexec_fn=pinned(cpus))


def wait_log(path, pattern, timeout_s, proc=None):
    end = time.monotonic() + timeout_s
    rx = re.compile(pattern)
    while time.monotonic() < end:
        with open(path, errors="replace") as f:
            m = rx.search(f.read())
        if m:
            return m
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.01)
    with open(path, errors="replace") as f:
        tail = f.read()[-2000:]
    raise RuntimeError(f"no /{pattern}/ in {path} within {timeout_s}s; log tail:\n{tail}")


def source_commit():
    """The commit the binaries were built from, as far as this checkout tells: its HEAD, and
    "+changes" when src/, include/, examples/ or bench/ differ from it."""
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src",
                                "include", "examples", "bench/restart_methods"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (head or "?") + ("+changes" if dirty else "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_server(srv, workdir):
    """Gives a cell's server what every one has (run_soak and the reloads use them): a free
    loopback port and its URL, the control socket's path, and an empty server log and pid file in
    `workdir`."""
    srv.dir = workdir
    srv.port = free_port()
    srv.addr = f"127.0.0.1:{srv.port}"
    srv.url = f"http://{srv.addr}/"
    srv.log = os.path.join(workdir, "server.log")
    srv.control = os.path.join(workdir, "control.sock")
    open(srv.log, "w").close()
    open(os.path.join(workdir, "pids"), "w").close()


def task_counters(pid):
    """Sum over the threads of pid: voluntary and involuntary context switches, and schedstat's
    run count (times the task was put on a CPU, i.e. woken)."""
    vol = invol = runs = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                runs += int(f.read().split()[2])
        except OSError:
            pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return {"voluntary": vol, "involuntary": invol, "runs": runs, "cpu_ticks": cpu_ticks,
            "threads": len(os.listdir(f"/proc/{pid}/task"))}


def memory(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmSize"):
                out[key + "_kB"] = int(line.split()[1])
    return out
