#!/usr/bin/env python3
"""Restart methods side by side: the driver behind bench/run-restart-methods.

Runs every restart method against the same app logic (examples/http_worker.cc, 1 s start-up,
2 threads) under the same load (`baton soak`, closed loop, 50 connections, 2 threads; new
connection per request, and keep-alive), with the same K restarts spread over each run, each cell
RUNS times; then measures the baton supervisor's memory and idle wake-ups, and cross-checks soak
with wrk on two cells. Writes bench/RESULTS.md and the raw JSON under bench/results/restart_methods.

Bounded: every child has a timeout, every process started is recorded and stopped by pid (the
driver is a child subreaper, so orphaned app instances come back to it). Loopback only: as root
the driver re-executes itself in a private network namespace (`unshare --net`), where only `lo`
exists; elsewhere it uses the host's loopback and says so in the results.

Python stdlib only, since it only orchestrates processes and formats a table.
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # steering.py is imported from here: no __pycache__ in the tree
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

METHODS = {
    "kill-start": "1. plain kill, then start",
    "bind-retry": "2. start, init, kill old, bind with 150 ms retries",
    "reuseport": "3. SO_REUSEPORT overlap",
    "server-starter": "4. Server::Starter (start_server)",
    "baton-run": "5a. baton supervisor (baton run)",
    "baton-handover": "5b. baton direct handover (library)",
    "baton-adopt": "5c. baton adoption (unmodified app)",
}
# What reload.py starts at each restart, for the reproduce section.
RESTART_NOTE = {
    "kill-start": "SIGTERM the old pid, wait for its exit, start the same command again, "
                  "wait for new ready",
    "bind-retry": "start the same app with --mode retry --bind-retry-ms 150 --replace-pid OLD, wait for new ready + old draining",
    "reuseport": "start the same command with --replace-pid OLD, wait for new ready + old draining",
    "server-starter": "SIGHUP to start_server, wait for new ready + old draining",
    "baton-handover": "start the same command again, wait for new ready + old draining",
}
SHAPES = {"close": "new connection per request", "keepalive": "keep-alive"}
# The steering cells (steering.py; issue 9): a misbehaving app under baton run and under
# Server::Starter. Not in METHODS: they have their own tables and results.
STEERING_CELLS = {
    "starter-dies": "Server::Starter, app dies on SIGTERM",
    "baton-dies": "baton run, app dies on SIGTERM",
    "starter-crash": "Server::Starter, new version accepts then crashes",
    "baton-crash": "baton run, new version accepts then crashes",
}
CRASH_AFTER_S = 0.5  # the broken version's life: it crashes before its 1 s start-up ends


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"run-restart-methods: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Processes: every one started is tracked and stopped by pid.

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


# ---------------------------------------------------------------------------------------------
# One server per method.

class Server:
    """A running server of one method, with how to reload it and how to stop it."""

    def __init__(self, method, bins, workdir, init_s, threads):
        self.method = method
        self.dir = workdir
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.addr}/"
        self.log = os.path.join(workdir, "server.log")
        self.control = os.path.join(workdir, "control.sock")
        open(self.log, "w").close()
        open(os.path.join(workdir, "pids"), "w").close()
        example = [bins["example"], "--init-seconds", str(init_s), "--threads", str(threads)]
        app = [bins["app"], "--init-seconds", str(init_s), "--threads", str(threads),
               "--listen", self.addr]
        state = {"method": method, "dir": workdir, "log": self.log}
        self.reload_argv = [sys.executable, os.path.join(HERE, "reload.py"), workdir]
        if method == "kill-start":
            first = state["app"] = app + ["--mode", "plain"]
        elif method == "bind-retry":
            first = app + ["--mode", "plain"]
            state["app"] = app + ["--mode", "retry", "--bind-retry-ms", "150"]
        elif method == "reuseport":
            first = state["app"] = app + ["--mode", "reuseport"]
        elif method == "baton-handover":
            first = state["app"] = example + ["--listen", self.addr, "--handover",
                                              os.path.join(workdir, "handover.sock")]
        elif method == "server-starter":
            # Server::Starter has no readiness signal: it TERMs the old worker --interval seconds
            # after starting the new one (whole seconds). The app needs 1 s, so 2 is the
            # shortest interval that does not stop the old worker before the new one accepts.
            first = [bins["start_server"], f"--port={self.addr}", "--interval=2",
                     "--signal-on-hup=TERM", "--"] + example
        elif method in STEERING_CELLS:
            # The steering cells (steering.py): the same app, given its socket by the supervisor.
            inherit = [bins["app"], "--init-seconds", str(init_s), "--threads", str(threads),
                       "--mode", "inherit"]
            if method.endswith("-dies"):
                inherit += ["--on-term", "die"]
            else:
                state["marker"] = os.path.join(workdir, "broken")
                inherit += ["--notify", "--broken-marker", state["marker"], "--crash-after",
                            str(CRASH_AFTER_S)]
            if method.startswith("starter-"):
                first = [bins["start_server"], f"--port={self.addr}", "--interval=2",
                         "--signal-on-hup=TERM", "--"] + inherit
            else:
                first = [bins["baton"], "run", "--listen", self.addr, "--control",
                         self.control, "--"] + inherit
                state["reload"] = [bins["baton"], "reload", "--wait", "--control", self.control]
                if method == "baton-dies":
                    self.reload_argv = state["reload"]
        elif method in ("baton-run", "baton-adopt"):
            first = [bins["baton"], "run", "--listen", self.addr, "--control", self.control]
            if method == "baton-adopt":
                first += ["--adopt", "--", bins["app"], "--init-seconds", str(init_s),
                          "--threads", str(threads), "--listen", self.addr, "--mode", "plain"]
            else:
                first += ["--"] + example
            self.reload_argv = [bins["baton"], "reload", "--wait", "--control", self.control]
        else:
            raise ValueError(method)
        self.proc = spawn(first, self.log)
        with open(os.path.join(workdir, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        m = wait_log(self.log, r"pid (\d+) ready on", 30, self.proc)
        self.supervised = first[0] == bins["baton"]  # soak reloads it through --control
        if first[0] == bins["start_server"]:
            state["starter_pid"] = self.proc.pid
        with open(os.path.join(workdir, "current"), "w") as f:
            f.write(f"{m.group(1)}\n")
        with open(os.path.join(workdir, "state.json"), "w") as f:
            json.dump(state, f)
        if self.supervised:
            # ready in the log is the app's; the supervisor answers once it has seen READY=1.
            end = time.monotonic() + 10
            while time.monotonic() < end:
                r = subprocess.run([bins["baton"], "status", "--json", "--control", self.control],
                                   capture_output=True, text=True, timeout=10)
                if r.returncode == 0 and json.loads(r.stdout).get("serving_generation"):
                    break
                time.sleep(0.05)

    def reload_command(self):
        return " ".join(self.reload_argv)

    def stop(self):
        tracked = set()
        with open(os.path.join(self.dir, "pids")) as f:
            tracked.update(int(x) for x in f.read().split())
        tracked.update(descendants(os.getpid()))  # orphans reparented to us (subreaper)
        tracked.discard(os.getpid())
        tracked.update(d for p in list(tracked) for d in descendants(p))
        # The supervisors first, so that they drain their own children; then everything left.
        stop_pids([self.proc.pid], grace_s=35)
        stop_pids(tracked, grace_s=10)


# ---------------------------------------------------------------------------------------------
# Measurements.

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


def supervisor_idle(bins, workdir, init_s, threads, idle_s, reloads):
    """RSS and wake-ups of an idle `baton run` holding one ready generation of the example."""
    srv = Server("baton-run", bins, workdir, init_s, threads)
    try:
        pid = srv.proc.pid
        res = {"pid_memory_fresh": memory(pid)}
        time.sleep(1.0)  # let start-up finish
        perf = shutil.which("perf")
        perf_out = os.path.join(workdir, "perf.txt")
        perf_proc = None
        if perf:
            perf_proc = subprocess.Popen(
                [perf, "stat", "-x", ",", "-o", perf_out, "-e",
                 "context-switches,cpu-migrations,task-clock", "-p", str(pid), "--", "sleep",
                 str(idle_s)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = task_counters(pid)
        time.sleep(idle_s)
        after = task_counters(pid)
        res["idle_s"] = idle_s
        res["idle"] = {k: after[k] - before[k] for k in ("voluntary", "involuntary", "runs",
                                                       "cpu_ticks")}
        res["threads"] = after["threads"]
        res["clk_tck"] = os.sysconf("SC_CLK_TCK")
        if perf_proc is not None:
            try:
                perf_proc.wait(timeout=idle_s + 10)
            except subprocess.TimeoutExpired:
                perf_proc.kill()
                perf_proc.wait()
            res["perf"] = {}
            if os.path.exists(perf_out):
                for line in open(perf_out):
                    parts = line.strip().split(",")
                    if len(parts) >= 3 and parts[0] and not line.startswith("#"):
                        res["perf"][parts[2]] = parts[0]
        # Memory after some reloads, idle again.
        for _ in range(reloads):
            subprocess.run(srv.reload_argv, capture_output=True, timeout=60, check=True)
        time.sleep(1.0)
        res["pid_memory_after_reloads"] = memory(pid)
        res["reloads_before_second_sample"] = reloads
        before = task_counters(pid)
        time.sleep(idle_s)
        after = task_counters(pid)
        res["idle_after_reloads"] = {k: after[k] - before[k] for k in ("voluntary", "involuntary",
                                                                       "runs", "cpu_ticks")}
        return res
    finally:
        srv.stop()


def run_soak(bins, srv, shape, args, json_path):
    argv = [bins["baton"], "soak", "--url", srv.url, "-c", str(args.connections), "-t",
            str(args.load_threads), "-d", f"{args.duration}s", "--reloads", str(args.reloads),
            "--reload-timeout", "30s", "--json", json_path, "-q"]
    if shape == "close":
        argv.append("--close")
    if srv.supervised and srv.reload_argv[0] == bins["baton"]:
        argv += ["--control", srv.control]
    else:
        argv += ["--reload-cmd", srv.reload_command()]
    budget = args.duration + args.reloads * 30 + 60
    r = subprocess.run(argv, capture_output=True, text=True, timeout=budget)
    if r.returncode not in (0, 1) or not os.path.exists(json_path):
        raise RuntimeError(f"soak exited {r.returncode}: {r.stderr.strip()[-1000:]}")
    return argv, r.returncode


def summarise(j):
    lat, win = j["latency_us"]["overall"], j["latency_us"]["reload_windows"]
    return {
        "requests": j["requests"]["total"], "ok": j["requests"]["ok"],
        "failed": j["requests"]["failed"], "first_try_failed": j["requests"]["first_try_failed"],
        "failures": {k: v for k, v in j["failures"].items() if v},
        "first_try": {k: v for k, v in j.get("first_try", {}).items() if v},
        "errnos": j.get("errnos", {}), "statuses": j.get("statuses", {}),
        "rps": j["throughput"]["mean_rps"], "elapsed_s": j["elapsed_s"],
        "p50_us": lat["p50"], "p99_us": lat["p99"], "p999_us": lat["p999"], "max_us": lat["max"],
        "win_requests": win.get("requests", 0), "win_failed": win.get("failed", 0),
        "win_p50_us": win["p50"], "win_p99_us": win["p99"], "win_p999_us": win["p999"],
        "reloads_ok": j["reloads"]["ok"], "reloads_planned": j["reloads"]["planned"],
        "reload_p50_s": j["reloads"]["duration_s"]["p50"],
        "reload_max_s": j["reloads"]["duration_s"]["max"],
    }


def run_wrk(bins, srv, args, out_path):
    """wrk for the same duration and shape, with the same reload schedule fired by this driver
    (soak's: reload i at (i + 0.5) / K of the run, the next one no earlier than the last ended)."""
    argv = [bins["wrk"], "-t", str(args.load_threads), "-c", str(args.connections), "-d",
            f"{args.duration}s", "--latency", "--timeout", "10s", srv.url]
    reload_times = []

    def reloader(t0):
        for i in range(args.reloads):
            due = t0 + (i + 0.5) / args.reloads * args.duration
            time.sleep(max(0.0, due - time.monotonic()))
            s = time.monotonic()
            subprocess.run(srv.reload_argv, capture_output=True, timeout=60)
            reload_times.append(time.monotonic() - s)

    t0 = time.monotonic()
    th = threading.Thread(target=reloader, args=(t0,), daemon=True)
    th.start()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
    th.join(timeout=120)
    with open(out_path, "w") as f:
        f.write(r.stdout)
    out = {"argv": argv, "stdout": r.stdout, "reload_s": reload_times}
    m = re.search(r"(\d+) requests in ([\d.]+)s", r.stdout)
    out["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                  r.stdout)
    out["errors"] = dict(zip(("connect", "read", "write", "timeout"),
                             map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    out["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", r.stdout, re.M)
        out[f"p{pct}"] = m.group(1) if m else None
    return out


# ---------------------------------------------------------------------------------------------
# Report.

def fmt_us(us):
    if us >= 1_000_000:
        return f"{us / 1e6:.2f}s"
    if us >= 1000:
        return f"{us / 1000:.3g}ms"
    return f"{us:.0f}us"


def fmt_kinds(d):
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "-"


def render(results, idle, wrk, meta, commands):
    L = []
    a = meta["args"]
    L.append("# Restart methods side by side")
    L.append("")
    L.append(f"Written by `bench/run-restart-methods` on {meta['date']} ({meta['wall_s']:.0f} s "
             f"wall{', commit ' + meta['commit'] if 'commit' in meta else ''}). Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), Linux "
             f"{meta['kernel']}, {meta['mem']}; {meta['network']}.")
    L.append("")
    L.append(f"Every cell: the same app logic (`examples/http_worker.cc`, {a['threads']} threads, "
             f"{a['init_seconds']:g} s start-up before it binds or accepts), loaded by "
             f"`baton soak` (closed loop, {a['connections']} connections, {a['load_threads']} "
             f"threads, {a['duration']} s) with {a['reloads']} restarts spread over the run "
             f"(restart i due at (i + 0.5) / {a['reloads']} of it), {a['runs']} runs per cell, "
             "both load shapes. Load generator and servers share the CPUs, so throughput is "
             "not an absolute figure; and the machine was shared with other work during the run"
             + (f" (load average {meta['loadavg'][0]:.1f} at the start, "
                f"{meta['loadavg'][1]:.1f} at the end)" if "loadavg" in meta else "")
             + ", so req/s and latency differ by up to 2x between runs of one cell (see "
             "`summary.json`). Failures and restart times are the figures to compare.")
    L.append("")
    L.append("How to read it:")
    L.append("- **failed**: requests whose final outcome was not a 2xx response, per run. A "
             "keep-alive request whose reused connection was closed before any byte of the "
             "answer is retried once on a new connection, as browsers do (RFC 9110 9.2.2); "
             "**1st try** counts those before the retry.")
    L.append("- Closed loop: a connection sends its next request as soon as the last ends, so "
             "while nobody listens a client turns each refused connection into the next attempt "
             "at once: *refused* counts attempts during downtime, not users.")
    L.append("- Latency p50/p99/p99.9 of every request, and of the requests completed in the "
             "reload windows (from a restart's command to 1 s after it returned).")
    L.append("- **restart**: p50 / max time from the restart command to the new instance "
             "serving and the old one draining (method 1: to the new one serving after the old "
             "one exited). Methods 1-3 and 5b are driven by `restart_methods/reload.py` (a "
             "Python process, about 30 ms of that time); 4 by SIGHUP to start_server and "
             "waiting for the old worker's drain; 5a and 5c by `baton reload --wait`.")
    L.append("- Cells show the mean of the runs; *failed* shows each run.")
    L.append("")
    for shape in SHAPES:
        L.append(f"### Load: {SHAPES[shape]}")
        L.append("")
        L.append("| method | failed (each run) | failures by kind (all runs) | 1st try failed | "
                 "req/s | p50 | p99 | p99.9 | reload-window p50 | p99 | p99.9 | restart p50 / max "
                 "| restarts ok |")
        L.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for method, title in METHODS.items():
            runs = [r for r in results if r["method"] == method and r["shape"] == shape and
                    "summary" in r]
            errs = [r for r in results if r["method"] == method and r["shape"] == shape and
                    "error" in r]
            if not runs:
                if errs:
                    L.append(f"| {title} | error: {errs[0]['error'][:80]} |" + " |" * 11)
                continue
            s = [r["summary"] for r in runs]
            mean = lambda k: statistics.mean(x[k] for x in s)
            kinds = {}
            for x in s:
                for k, v in x["failures"].items():
                    kinds[k] = kinds.get(k, 0) + v
            L.append(
                f"| {title} | {' / '.join(str(x['failed']) for x in s)} | {fmt_kinds(kinds)} | "
                f"{' / '.join(str(x['first_try_failed']) for x in s)} | {mean('rps'):,.0f} | "
                f"{fmt_us(mean('p50_us'))} | {fmt_us(mean('p99_us'))} | "
                f"{fmt_us(mean('p999_us'))} | {fmt_us(mean('win_p50_us'))} | "
                f"{fmt_us(mean('win_p99_us'))} | {fmt_us(mean('win_p999_us'))} | "
                f"{mean('reload_p50_s'):.2f}s / {max(x['reload_max_s'] for x in s):.2f}s | "
                f"{sum(x['reloads_ok'] for x in s)}/{sum(x['reloads_planned'] for x in s)} |")
        L.append("")
    if idle:
        i = idle
        tck = i["clk_tck"]
        L.append("### The baton supervisor itself")
        L.append("")
        L.append(f"`baton run` holding one ready generation of the example, no load, "
                 f"{i['idle_s']} s sampled ({i['threads']} thread(s)). Wake-ups counted from "
                 "`/proc/PID/task/*/status` (voluntary context switches: each is a sleep that "
                 "ended in a wake-up) and `/proc/PID/task/*/schedstat` (times put on a CPU)"
                 + (", cross-checked with `perf stat -e context-switches`"
                    if str(i.get("perf", {}).get("context-switches", "")).isdigit()
                    else "; `perf stat` counts nothing in this container") + ".")
        L.append("")
        L.append("| figure | fresh, idle | idle after %d reloads |" % i["reloads_before_second_sample"])
        L.append("|---|---:|---:|")
        m0, m1 = i["pid_memory_fresh"], i["pid_memory_after_reloads"]
        L.append(f"| resident memory (VmRSS) | {m0.get('VmRSS_kB', 0):,} kB | "
                 f"{m1.get('VmRSS_kB', 0):,} kB |")
        L.append(f"| peak resident (VmHWM) | {m0.get('VmHWM_kB', 0):,} kB | "
                 f"{m1.get('VmHWM_kB', 0):,} kB |")
        a0, a1 = i["idle"], i["idle_after_reloads"]
        L.append(f"| voluntary context switches in {i['idle_s']} s | {a0['voluntary']} | "
                 f"{a1['voluntary']} |")
        L.append(f"| schedstat runs in {i['idle_s']} s | {a0['runs']} | {a1['runs']} |")
        L.append(f"| CPU time in {i['idle_s']} s | {a0['cpu_ticks'] * 1000 // tck} ms | "
                 f"{a1['cpu_ticks'] * 1000 // tck} ms |")
        if str(i.get("perf", {}).get("context-switches", "")).isdigit():
            L.append(f"| perf context-switches in {i['idle_s']} s | "
                     f"{i['perf'].get('context-switches', '?')} | |")
        L.append("")
        if "after_load" in i:
            L.append("Resident memory of `baton run` right after each supervisor cell (load and "
                     f"{a['reloads']} reloads): " + ", ".join(
                         f"{x['VmRSS_kB']:,} kB (peak {x['VmHWM_kB']:,} kB)"
                         for x in i["after_load"]) + ".")
            L.append("")
    if wrk:
        L.append("### Cross-check with wrk")
        L.append("")
        L.append(f"wrk -t{a['load_threads']} -c{a['connections']} -d{a['duration']}s on the same "
                 "server, keep-alive, with the same restart schedule fired by the driver. wrk "
                 "does not retry: its *read* errors include requests soak retries. Compare with "
                 "the soak run 1 row of the same cell; wrk ran afterwards, as a run of its own, so "
                 "its totals differ with the machine's load. wrk reports a refused connect as a "
                 "*write* error (its connect is non-blocking; the refusal surfaces at the first "
                 "write), soak as *refused*.")
        L.append("")
        L.append("| method | wrk requests | wrk req/s | wrk socket errors | wrk non-2xx | wrk p50 "
                 "| wrk p99 | soak requests | soak req/s | soak failed (1st try) |")
        L.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
        for w in wrk:
            s = next((r["summary"] for r in results if r["method"] == w["method"] and
                      r["shape"] == "keepalive" and "summary" in r), None)
            e = ", ".join(f"{k} {v}" for k, v in w["errors"].items() if v) or "0"
            soak_cells = (f"{s['requests']:,} | {s['rps']:,.0f} | {s['failed']} "
                          f"({s['first_try_failed']})" if s else "- | - | -")
            L.append(f"| {METHODS[w['method']]} | {w['requests'] or 0:,} | {w['rps'] or 0:,.0f} |"
                     f" {e} | {w['non2xx']} | {w['p50']} | {w['p99']} | {soak_cells} |")
        L.append("")
    L.append("### Reproduce")
    L.append("")
    L.append("```")
    L.append("cmake -S . -B build -G Ninja && ninja -C build baton baton-example-http "
             "baton-bench-app baton_adopt")
    L.append(f"bench/run-restart-methods --build build    # the whole suite, {meta['wall_s'] / 60:.0f} min here")
    L.append("# or: ninja -C build bench_restart_methods")
    L.append("```")
    L.append("")
    L.append("The commands it ran, one per method (run 1, keep-alive; `--close` added for the "
             "other shape; `PORT` and `DIR` are per cell):")
    L.append("")
    L.append("```")
    for method in METHODS:
        if method in commands:
            L.append(f"# {METHODS[method]}")
            if method in RESTART_NOTE:
                L.append(f"#   reload.py: {RESTART_NOTE[method]}")
            for c in commands[method]:
                # Repo paths relative, also when rendered from another checkout's summary.
                c = re.sub(r"\S*/(bench/restart_methods/)", r"\1", c)
                L.append(c.replace(meta.get("python", "?"), "python3").replace(
                    meta.get("build", "?") + "/", "build/").replace(REPO + "/", ""))
    L.append("```")
    L.append("")
    L.append("Raw results: `bench/results/restart_methods/` (one soak JSON per run, `summary.json` "
             "with everything above).")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------------------------------------

def in_private_netns():
    return os.environ.get("BATON_BENCH_NETNS") == "1"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="build directory")
    ap.add_argument("--duration", type=int, default=20, help="seconds of load per run")
    ap.add_argument("--reloads", type=int, default=10, help="restarts per run (K)")
    ap.add_argument("--runs", type=int, default=2, help="runs per cell")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--load-threads", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="app worker threads")
    ap.add_argument("--init-seconds", type=float, default=1.0, help="app start-up")
    ap.add_argument("--idle-seconds", type=int, default=10)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--no-netns", action="store_true", help="use the host's loopback")
    ap.add_argument("--results", default=os.path.join(REPO, "bench", "RESULTS.md"))
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite RESULTS from RAW/summary.json without running anything")
    ap.add_argument("--raw", default=os.path.join(REPO, "bench", "results", "restart_methods"))
    ap.add_argument("--suite", choices=("methods", "steering", "all"), default="methods",
                    help="methods: the restart methods above; steering: misbehaving apps under "
                    "baton and Server::Starter, and baton's ratios (steering.py); all: both")
    ap.add_argument("--quick", action="store_true",
                    help="steering suite: 1 run, 6 s, 3 restarts per cell, fewer samples: a "
                    "check that everything runs (about 4 minutes instead of 13)")
    ap.add_argument("--readme-steering", action="store_true",
                    help="print the README's block of the steering suite's figures from "
                    "STEERING_RAW/summary.json, run nothing")
    ap.add_argument("--steering-raw", default=os.path.join(REPO, "bench", "results", "steering"))
    ap.add_argument("--steering-results",
                    default=os.path.join(REPO, "bench", "results", "steering.md"))
    args = ap.parse_args()

    if args.render_only:
        write_results(args)
        return 0
    if args.readme_steering:
        import steering
        with open(os.path.join(args.steering_raw, "summary.json")) as f:
            print(steering.readme(json.load(f)), end="")
        return 0
    methods = [m for m in args.methods.split(",") if m]
    shapes = [s for s in args.shapes.split(",") if s]
    for m in methods:
        if m not in METHODS:
            die(f"unknown method '{m}' (known: {', '.join(METHODS)})")
    for s in shapes:
        if s not in SHAPES:
            die(f"unknown shape '{s}' (known: {', '.join(SHAPES)})")
    if args.duration < 2 or args.reloads < 1 or args.runs < 1:
        die("--duration must be >= 2, --reloads and --runs >= 1")

    network = "host loopback (no private network namespace)"
    if in_private_netns():
        network = "loopback of a private network namespace (`unshare --net`)"
    elif not args.no_netns and os.geteuid() == 0 and shutil.which("unshare"):
        env = dict(os.environ, BATON_BENCH_NETNS="1")
        r = subprocess.run(["unshare", "--net", "true"], capture_output=True)
        if r.returncode == 0:
            os.execvpe("unshare", ["unshare", "--net", sys.executable, os.path.abspath(__file__)]
                       + sys.argv[1:], env)
        log("unshare --net failed; using the host's loopback")
    if in_private_netns():
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)

    build = os.path.abspath(args.build)
    bins = {
        "baton": os.path.join(build, "bin", "baton"),
        "example": os.path.join(build, "bin", "baton-example-http"),
        "app": os.path.join(build, "bin", "baton-bench-app"),
        "start_server": shutil.which("start_server") or "",
        "wrk": shutil.which("wrk") or "",
    }
    for name, path in bins.items():
        if not path or not os.access(path, os.X_OK):
            die(f"{name}: not found ({path or 'not on PATH'}); build with `ninja -C {build} baton "
                "baton-example-http baton-bench-app baton_adopt`, install wrk and "
                "libserver-starter-perl")

    set_subreaper()
    rc = 0
    if args.suite in ("steering", "all"):
        import steering
        args.network_note = network
        args.build_dir = build
        summary = steering.run(bins, args, args.steering_raw)
        with open(args.steering_results, "w") as f:
            f.write(steering.render(summary))
        log(f"wrote {args.steering_results}: {steering.ratios_summary(summary)}")
        rc = 1 if any("error" in c for c in summary["cells"]) else 0
    if args.suite == "steering":
        write_results(args)
        return rc
    t_start = time.monotonic()
    load_start = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="baton-restart-bench.")
    os.makedirs(args.raw, exist_ok=True)
    results, commands, after_load = [], {}, []
    total = len(methods) * len(shapes) * args.runs
    n = 0
    try:
        for run in range(1, args.runs + 1):
            for shape in shapes:
                for method in methods:
                    n += 1
                    cell = os.path.join(work, f"{method}-{shape}-{run}")
                    os.makedirs(cell)
                    rec = {"method": method, "shape": shape, "run": run}
                    srv = None
                    try:
                        srv = Server(method, bins, cell, args.init_seconds, args.threads)
                        if run == 1 and shape == "keepalive":
                            commands[method] = [
                                " ".join(srv.proc.args).replace(cell, "DIR").replace(
                                    str(srv.port), "PORT") + " &"]
                        jpath = os.path.join(args.raw, f"{method}-{shape}-run{run}.json")
                        argv, rc = run_soak(bins, srv, shape, args, jpath)
                        if run == 1 and shape == "keepalive":
                            commands[method].append(" ".join(
                                (f"'{a}'" if " " in a else a) for a in argv).replace(
                                    cell, "DIR").replace(str(srv.port), "PORT").replace(
                                        jpath, "OUT.json"))
                        with open(jpath) as f:
                            j = json.load(f)
                        rec["summary"] = summarise(j)
                        rec["soak_exit"] = rc
                        if method == "baton-run" and alive(srv.proc.pid):
                            after_load.append(memory(srv.proc.pid))
                        s = rec["summary"]
                        log(f"[{n}/{total}] {method} {shape} run {run}: {s['requests']} requests, "
                            f"{s['failed']} failed ({fmt_kinds(s['failures'])}), "
                            f"{s['rps']:.0f} req/s, p99 {fmt_us(s['p99_us'])}, restarts "
                            f"{s['reloads_ok']}/{s['reloads_planned']} p50 "
                            f"{s['reload_p50_s']:.2f}s")
                    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                        rec["error"] = str(e)
                        log(f"[{n}/{total}] {method} {shape} run {run}: ERROR {e}")
                    finally:
                        if srv is not None:
                            srv.stop()
                            # The servers' own lines (ready, draining, supervisor), to explain
                            # any failure after the fact.
                            shutil.copyfile(srv.log, os.path.join(
                                args.raw, f"{method}-{shape}-run{run}.log"))
                    results.append(rec)

        idle = None
        if "baton-run" in methods:
            log("supervisor memory and idle wake-ups")
            d = os.path.join(work, "idle")
            os.makedirs(d)
            idle = supervisor_idle(bins, d, args.init_seconds, args.threads, args.idle_seconds,
                                   args.reloads)
            idle["after_load"] = after_load

        wrk = []
        if not args.no_wrk:
            for method in [m for m in ("baton-run", "kill-start") if m in methods]:
                log(f"wrk cross-check: {method}")
                d = os.path.join(work, f"wrk-{method}")
                os.makedirs(d)
                srv = Server(method, bins, d, args.init_seconds, args.threads)
                try:
                    w = run_wrk(bins, srv, args, os.path.join(args.raw, f"wrk-{method}.txt"))
                    w["method"] = method
                    wrk.append(w)
                    log(f"wrk {method}: {w['requests']} requests, errors {w['errors']}, "
                        f"non-2xx {w['non2xx']}")
                finally:
                    srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu_model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(open("/proc/meminfo").readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError):
        pass
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": time.monotonic() - t_start, "cpus": os.cpu_count(), "cpu_model": cpu_model,
            "loadavg": [load_start, os.getloadavg()[0]], "commit": source_commit(),
            "kernel": platform.release(), "python": sys.executable, "build": build, "mem": mem, "network": network, "args": vars(args),
            "versions": {"start_server": subprocess.run(
                [bins["start_server"], "--version"], capture_output=True, text=True).stdout.strip(),
                "wrk": subprocess.run([bins["wrk"], "--version"], capture_output=True,
                                      text=True).stdout.splitlines()[0][:60]}}
    with open(os.path.join(args.raw, "summary.json"), "w") as f:
        json.dump({"meta": meta, "cells": results, "supervisor": idle, "wrk": wrk,
                   "commands": commands}, f, indent=1)
    make_portable(args.raw, build)
    write_results(args)
    log(f"wrote {args.results} and {args.raw}/ in {meta['wall_s']:.0f} s")
    return 1 if rc or any("error" in r for r in results) else 0


def write_results(args):
    """RESULTS.md: the restart methods from their summary.json, then the steering suite's
    section from its own (each section says when it was run)."""
    text = ""
    path = os.path.join(args.raw, "summary.json")
    if os.path.exists(path):
        with open(path) as f:
            d = json.load(f)
        text = render(d["cells"], d["supervisor"], d["wrk"], d["meta"], d["commands"])
    path = os.path.join(args.steering_raw, "summary.json")
    if os.path.exists(path):
        import steering
        with open(path) as f:
            text += "\n" + steering.render(json.load(f))
    with open(args.results, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
