"""The steering suite of bench/run-restart-methods (`--suite steering`): misbehaving apps under
baton run and Server::Starter, and baton's own costs as ratios, all in one run.

Cells (both load shapes, every cell RUNS times, K restarts each, `baton soak` counting failures):
- an app that dies on SIGTERM (no graceful shutdown), restarted K times;
- a new version that accepts connections at once and crashes before it is ready, deployed K
  times (each deploy breaks exactly one start: start_server retries it and the retry starts fine;
  baton run rolls back and keeps the old generation). Under keep-alive load the clients' own
  connections stay on the old instance, so a stream of new connections runs alongside (a second
  soak, open loop): it is what a new version that accepts at once is handed;
- unmodified runtimes that die on SIGTERM and bind their own port (Python `http.server`, a Node
  `http` server with no signal handler): `baton run --adopt` against restart by kill + start
  (Server::Starter cannot run them: it passes the socket in an environment variable that they
  do not read, and they set no SO_REUSEPORT, so an overlap is impossible too).

Ratios (one baton run per readiness mode, the app alone beside baton run for throughput):
- reload overhead beyond the app's own start-up: `reload --wait` wall time minus the app's
  start-up (its own clock, from main to ready), 1 s start-up app, every readiness mode;
- readiness noticed: baton's "ready after" log line (wall clock, milliseconds) minus the app's
  ready moment (wall clock, microseconds), every readiness mode;
- `reload --wait` on an instantly ready app with nothing in flight;
- throughput under baton run over the app alone (same app, same load, no reloads), in rounds
  of three fresh servers loaded in turn (the app alone, under baton, and a second app alone as
  the control: what two identical servers give), in rotating orders, all on one CPU; the median
  of the rounds' ratios and their spread;
- p99 in reload windows over steady p99 (baton run with K reloads, over baton run without).

Nothing here asserts a figure: the targets of the issue are printed beside the figures.
Python stdlib only; processes are started, tracked and stopped with driver.py's helpers.
"""
import datetime
import json
import os
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import time
from types import SimpleNamespace

import driver as d

# Readiness modes measured: (name, --ready value or None for the default, app flags).
# exec's check and the app's ready file are filled in per run (they need the run's directory).
MODES = ["notify", "accept", "auto", "http", "exec"]
NOTICE_TARGET_MS = 5.0
INSTANT_TARGET_MS = 5.0
THROUGHPUT_TARGET = 0.99

# runs/duration/reloads: the misbehaving-app cells; runtime_*: the Python and Node cells;
# rounds x round_duration: the throughput rounds (each round loads the app alone, baton run and
# the control; a multiple of 3 puts each in each place of the order equally often);
# reload_runs x reload_duration: baton run with `reloads` reloads, for the reload-window p99.
QUICK = {"runs": 1, "duration": 6, "reloads": 3, "runtime_runs": 1, "runtime_duration": 6,
         "ready_reloads": 3, "instant_reloads": 20, "rounds": 3, "round_duration": 2,
         "reload_runs": 1, "reload_duration": 5}
FULL = {"runs": 2, "duration": 12, "reloads": 10, "runtime_runs": 1, "runtime_duration": 12,
        "ready_reloads": 10, "instant_reloads": 60, "rounds": 12, "round_duration": 2,
        "reload_runs": 2, "reload_duration": 10}

# Keep-alive crash cells: new connections alongside the keep-alive clients (a second soak).
SIDE_RATE = 200  # requests per second, open loop, a new connection each
SIDE_CONNECTIONS = 20

# Unmodified runtimes that die on SIGTERM and bind their own port (issue 9's "apps that die on
# SIGTERM"), each under `baton run --adopt` and restarted by kill + start.
RUNTIME_CELLS = {
    "kill-start-python": "restart by kill + start, Python http.server",
    "baton-adopt-python": "baton run --adopt, Python http.server",
    "kill-start-node": "restart by kill + start, Node http (no handler)",
    "baton-adopt-node": "baton run --adopt, Node http (no handler)",
}
# Python's http.server answers HTTP/1.0 and closes every connection: keep-alive load would be the
# same as new connection per request, so it runs in that shape only.
RUNTIME_SHAPES = {"python": ("close",), "node": ("close", "keepalive")}

BATON_READY = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z baton\[\d+\]: \w+: "
                         r"generation (\d+) \(pid (\d+)\) ready after", re.M)
APP_READY = re.compile(r"pid (\d+) ready on .* start_us=(\d+) ready_us=(\d+)")


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def baton_ready_us(text):
    """{pid: wall-clock microseconds of baton's "ready after" line} (millisecond resolution)."""
    out = {}
    for m in BATON_READY.finditer(text):
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc)
        out[int(m.group(3))] = int(round(t.timestamp() * 1e6))
    return out


def app_ready_us(text):
    """{pid: (start_us, ready_us)} from the bench app's ready lines."""
    return {int(m.group(1)): (int(m.group(2)), int(m.group(3))) for m in APP_READY.finditer(text)}


class Baton:
    """`baton run` of the bench app (--mode inherit), for the ratios."""

    def __init__(self, bins, workdir, ready=None, app_flags=(), init_s=1.0, threads=2,
                 baton_flags=(), cpus=None):
        self.bins, self.dir = bins, workdir
        self.port = d.free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.control = os.path.join(workdir, "control.sock")
        self.log = os.path.join(workdir, "server.log")
        open(self.log, "w").close()
        argv = [bins["baton"], "run", "--listen", f"127.0.0.1:{self.port}", "--control",
                self.control]
        if ready:
            argv += ["--ready", ready]
        argv += list(baton_flags)
        argv += ["--", bins["app"], "--init-seconds", str(init_s), "--threads", str(threads),
                 "--mode", "inherit"] + list(app_flags)
        self.argv = argv
        self.proc = d.spawn(argv, self.log, cpus=cpus)
        d.wait_log(self.log, r"pid \d+ ready on", 30, self.proc)
        self.wait_settled(30)

    def status(self):
        r = subprocess.run([self.bins["baton"], "status", "--json", "--control", self.control],
                           capture_output=True, text=True, timeout=10)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_settled(self, timeout_s):
        """Until one generation serves and no other is alive (the last drain is over)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            s = self.status()
            if s and s.get("serving_generation") and sum(
                    1 for g in s["generations"] if g.get("state") not in ("exited", "failed")) == 1:
                return
            time.sleep(0.02)
        raise RuntimeError(f"baton run did not settle within {timeout_s}s")

    def reload(self):
        """`baton reload --wait`: (seconds, exit status, wall-clock µs at start and end)."""
        w0, t0 = time.time(), time.monotonic()
        r = subprocess.run([self.bins["baton"], "reload", "--wait", "--control", self.control],
                           capture_output=True, text=True, timeout=60)
        t1 = time.monotonic()
        return t1 - t0, r.returncode, int(w0 * 1e6), int((w0 + t1 - t0) * 1e6)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        pids = set(d.descendants(self.proc.pid))
        d.stop_pids([self.proc.pid], grace_s=35)
        d.stop_pids(pids, grace_s=10)


def mode_setup(mode, workdir):
    if mode == "notify":
        return "notify", ["--notify"]
    if mode == "accept":
        return "accept", []
    if mode == "auto":
        return None, []  # the app does not speak sd_notify: auto proves readiness by accept
    if mode == "http":
        return "http:/", []
    if mode == "exec":
        return f"exec:test -e {workdir}/ready.$BATON_PID", ["--ready-file", workdir]
    raise ValueError(mode)


def readiness(bins, work, raw, mode, n, init_s):
    """n reloads of a 1 s start-up app under one readiness mode: wall time, the app's start-up,
    and how late baton noticed the app ready."""
    wd = os.path.join(work, f"ready-{mode}")
    os.makedirs(wd)
    ready, flags = mode_setup(mode, wd)
    b = Baton(bins, wd, ready, flags, init_s)
    rows = []
    try:
        for _ in range(n):
            wall, rc, w0, w1 = b.reload()
            s = b.status()
            pid = next((g["pid"] for g in s["generations"]
                        if g["generation"] == s.get("serving_generation")), None)
            # The app prints its ready line after baton may already have seen it ready.
            end = time.monotonic() + 5
            while True:
                text = b.text()
                app, seen = app_ready_us(text).get(pid), baton_ready_us(text).get(pid)
                if (app and seen) or time.monotonic() > end:
                    break
                time.sleep(0.01)
            if rc != 0 or app is None or seen is None:
                rows.append({"error": f"reload exit {rc}, pid {pid}"})
                continue
            startup = (app[1] - app[0]) / 1e6
            rows.append({"wall_s": wall, "startup_s": startup, "overhead_s": wall - startup,
                         "notice_ms": (seen - app[1]) / 1000.0,
                         "to_main_ms": (app[0] - w0) / 1000.0,
                         "after_notice_ms": (w1 - seen) / 1000.0})
            b.wait_settled(60)
    finally:
        b.stop()
        d.shutil.copyfile(b.log, os.path.join(raw, f"ready-{mode}.log"))
    return {"mode": mode, "ready_flag": (ready or "(default: auto)").replace(wd, "DIR"),
            "rows": rows}


def starter_overhead(bins, work, raw, n, init_s):
    """The same app under start_server --interval=1 (its default): SIGHUP to "killing old
    workers", against the new worker's own start-up."""
    wd = os.path.join(work, "starter-overhead")
    os.makedirs(wd)
    log = os.path.join(wd, "server.log")
    open(log, "w").close()
    port = d.free_port()
    argv = [bins["start_server"], f"--port=127.0.0.1:{port}", "--interval=1", "--",
            bins["app"], "--init-seconds", str(init_s), "--threads", "2", "--mode", "inherit"]
    proc = d.spawn(argv, log)
    rows = []
    try:
        d.wait_log(log, r"pid \d+ ready on", 30, proc)
        for _ in range(n):
            start = os.path.getsize(log)
            t0 = time.monotonic()
            os.kill(proc.pid, signal.SIGHUP)
            end = t0 + 30
            new_pid = None
            while time.monotonic() < end:
                with open(log, errors="replace") as f:
                    f.seek(start)
                    text = f.read()
                m = re.search(r"starting new worker (\d+)", text)
                if m and "killing old workers" in text:
                    t1 = time.monotonic()
                    new_pid = int(m.group(1))
                    break
                time.sleep(0.002)
            if new_pid is None:
                rows.append({"error": "no restart within 30 s"})
                break
            # Its own ready line may come after the kill: start_server does not wait for it.
            end = time.monotonic() + 10
            app = None
            while time.monotonic() < end and app is None:
                with open(log, errors="replace") as f:
                    app = app_ready_us(f.read()).get(new_pid)
                time.sleep(0.01)
            if app is None:
                rows.append({"error": f"worker {new_pid} never ready"})
                continue
            startup = (app[1] - app[0]) / 1e6
            rows.append({"wall_s": t1 - t0, "startup_s": startup, "overhead_s": t1 - t0 - startup})
            time.sleep(0.3)  # let the old worker finish draining (no load: it exits at once)
    finally:
        pids = set(d.descendants(proc.pid))
        d.stop_pids([proc.pid], grace_s=35)
        d.stop_pids(pids, grace_s=10)
        d.shutil.copyfile(log, os.path.join(raw, "starter-overhead.log"))
    return {"rows": rows, "argv": argv}


# `reload --wait` on an instantly ready app: (label, readiness mode, baton flags).
INSTANT = [("notify", "notify", []), ("auto", "auto", []),
           ("notify, --drain signal", "notify", ["--drain", "signal"])]


def instant(bins, work, label, mode, baton_flags, n):
    """`reload --wait` on an app with no start-up and nothing in flight."""
    wd = os.path.join(work, "instant-" + re.sub(r"\W+", "-", label))
    os.makedirs(wd)
    ready, flags = mode_setup(mode, wd)
    b = Baton(bins, wd, ready, flags, init_s=0.0, baton_flags=baton_flags)
    times, failed = [], 0
    try:
        for _ in range(n):
            wall, rc, _, _ = b.reload()
            if rc == 0:
                times.append(wall * 1000)
            else:
                failed += 1
            b.wait_settled(60)
    finally:
        b.stop()
    return {"mode": label, "ms": times, "failed": failed}


def soak(bins, url, shape, duration, json_path, reloads=0, control=None, cpus=None):
    argv = [bins["baton"], "soak", "--url", url, "-c", "50", "-t", "2", "-d", f"{duration}s",
            "--json", json_path, "-q"]
    if shape == "close":
        argv.append("--close")
    if reloads:
        argv += ["--reloads", str(reloads), "--reload-timeout", "30s", "--control", control]
    r = subprocess.run(argv, capture_output=True, text=True, preexec_fn=d.pinned(cpus),
                       timeout=duration + reloads * 30 + 60)
    if r.returncode not in (0, 1) or not os.path.exists(json_path):
        raise RuntimeError(f"soak exited {r.returncode}: {r.stderr.strip()[-500:]}")
    with open(json_path) as f:
        return d.summarise(json.load(f))


# The throughput rounds' three servers, in the order of a round's permutation: the app alone (A),
# the app under baton run (B), and a second app alone (C), the control: C / A is what the same app
# gives against itself on this machine, the noise that B / A cannot be told from.
KINDS = {"A": "alone", "B": "baton", "C": "control"}
ORDERS = ("ABC", "BCA", "CAB", "CBA", "ACB", "BAC")  # each kind in each place equally often


def placement():
    """The one CPU that the throughput rounds' servers and load generator share: the last this
    process may use. Left to the scheduler on 2 CPUs, the app's two workers and the load
    generator's two threads share the CPUs differently from run to run (both workers on one CPU
    or one on each, one worker holding most keep-alive connections or half), each way with its
    own req/s, so a run's ratio says which way it drew more than what baton costs. Split pinning
    (servers on one CPU, load generator on the other) ends that, but then req/s is whichever side
    saturates first, and a cost on the other side would not show. On one shared CPU every run has
    the same placement, and every CPU cost of every party (app, supervisor, load generator, the
    kernel's work for either) comes out of the same CPU, so req/s falls with any of them."""
    return {sorted(os.sched_getaffinity(0))[-1]}


def steady(bins, work, raw, shape, p):
    """Throughput of the app alone (A), under baton run (B) and alone again (C, the control), in
    rounds: each round starts the three afresh (so nothing one instance happened to settle into
    lasts over rounds), loads them in turn in the round's order (ORDERS: a drift over the round
    hits each kind alike over three rounds), stops them; servers and load generator all on the
    one CPU of placement(). Then baton run of the 1 s start-up app with reloads, on the same CPU,
    for the p99 in reload windows."""
    out = {"rounds": [], "baton_reloads": []}
    wd = os.path.join(work, f"steady-{shape}")
    os.makedirs(wd)
    cpus = placement()
    out["placement"] = sorted(cpus)
    for i in range(p["rounds"]):
        rwd = os.path.join(wd, f"round-{i + 1}")
        os.makedirs(rwd)
        alone = {}
        b = None
        try:
            for k in "AC":
                port = d.free_port()
                log = os.path.join(rwd, f"{KINDS[k]}.log")
                open(log, "w").close()
                alone[k] = (d.spawn([bins["app"], "--init-seconds", "0", "--threads", "2",
                                     "--listen", f"127.0.0.1:{port}", "--mode", "plain"], log,
                                    cpus=cpus), f"http://127.0.0.1:{port}/", log)
            for k in "AC":
                d.wait_log(alone[k][2], r"pid \d+ ready on", 30, alone[k][0])
            bwd = os.path.join(rwd, "baton")
            os.makedirs(bwd)
            b = Baton(bins, bwd, None, (), init_s=0.0, cpus=cpus)
            r = {}
            for k in ORDERS[i % len(ORDERS)]:
                kind = KINDS[k]
                jpath = os.path.join(raw, f"steady-{kind}-{shape}-{i + 1}.json")
                if k == "B":
                    url, pids = b.url, [b.proc.pid] + d.descendants(b.proc.pid)
                else:
                    url, pids = alone[k][1], [alone[k][0].pid]
                c0, b0, k0 = cpu_ns(pids), cpu_ns([b.proc.pid]), children_cpu_s()
                r[kind] = soak(bins, url, shape, p["round_duration"], jpath, cpus=cpus)
                # CPU time of the servers (app, and supervisor under baton) and of the load
                # generator over the run: the requests per CPU second are the throughput the
                # machine would give if nothing else ran on it.
                x = r[kind]
                x["cpu_s"] = (cpu_ns(pids) - c0) / 1e9 + (children_cpu_s() - k0)
                x["per_cpu_s"] = x["requests"] / x["cpu_s"] if x["cpu_s"] > 0 else 0
                x["order"] = ORDERS[i % len(ORDERS)].index(k) + 1
                if k == "B":
                    # The supervisor's own CPU time over the run: its share of the machine.
                    x["baton_cpu_ms"] = (cpu_ns([b.proc.pid]) - b0) / 1e6
            out["rounds"].append(r)
            a, z, c = r["alone"], r["baton"], r["control"]
            d.log(f"steady {shape} round {i + 1}/{p['rounds']} ({ORDERS[i % len(ORDERS)]}): "
                  f"alone {a['rps']:.0f} req/s, baton {z['rps']:.0f}, control {c['rps']:.0f}; "
                  f"baton / alone {z['rps'] / a['rps']:.3f}, control / alone "
                  f"{c['rps'] / a['rps']:.3f}")
        finally:
            if b is not None:
                b.stop()
            d.stop_pids([x[0].pid for x in alone.values()], grace_s=35)
    for i in range(p["reload_runs"]):
        bwd = os.path.join(wd, f"reloads-{i + 1}")
        os.makedirs(bwd)
        # On the rounds' CPU too: the p99 of these windows is divided by the rounds' p99.
        b = Baton(bins, bwd, None, (), init_s=1.0, cpus=cpus)
        try:
            c0 = d.task_counters(b.proc.pid)["cpu_ticks"]
            jpath = os.path.join(raw, f"steady-baton_reloads-{shape}-{i + 1}.json")
            x = soak(bins, b.url, shape, p["reload_duration"], jpath, p["reloads"], b.control,
                     cpus=cpus)
            x["baton_cpu_ms"] = ((d.task_counters(b.proc.pid)["cpu_ticks"] - c0) * 1000
                                 // os.sysconf("SC_CLK_TCK"))
            out["baton_reloads"].append(x)
            d.log(f"steady {shape} with {p['reloads']} reloads {i + 1}/{p['reload_runs']}: "
                  f"{x['rps']:.0f} req/s, window p99 {d.fmt_us(x['win_p99_us'])}, "
                  f"failed {x['failed']}")
        finally:
            b.stop()
    return out


def cpu_ns(pids):
    """CPU time of every thread of `pids` (schedstat: nanoseconds on a CPU); gone ones count 0."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


def children_cpu_s():
    """User and system time of this process's reaped children (the soak runs), in seconds."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def steady_rounds(st, kind="baton"):
    """[(alone, kind)] of a throughput result (kind: baton, or control for the second app alone,
    which older results lack); also reads the older layout (lists per kind)."""
    if "rounds" in st:
        return [(r["alone"], r[kind]) for r in st["rounds"] if kind in r]
    return list(zip(st.get("alone", []), st.get(kind, [])))


def spread(xs):
    """"median (middle half q1-q3, all min-max)" of ratios."""
    if len(xs) < 2:
        return f"{xs[0]:.3f}" if xs else "-"
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return (f"{statistics.median(xs):.3f} (middle half {q1:.3f}-{q3:.3f}, all "
            f"{min(xs):.3f}-{max(xs):.3f})")


class RuntimeServer:
    """An unmodified runtime that binds its own port and dies on SIGTERM (RUNTIME_CELLS), under
    `baton run --adopt` or alone (restarted by reload.py: SIGTERM, wait for the exit, start it
    again, wait until the port accepts). The same attributes as driver.Server, for run_soak."""

    def __init__(self, method, bins, workdir):
        self.method, self.dir = method, workdir
        self.port = d.free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.addr}/"
        self.log = os.path.join(workdir, "server.log")
        self.control = os.path.join(workdir, "control.sock")
        open(self.log, "w").close()
        open(os.path.join(workdir, "pids"), "w").close()
        runtime = method.rsplit("-", 1)[1]
        if runtime == "python":
            docroot = os.path.join(workdir, "www")
            os.makedirs(docroot)
            with open(os.path.join(docroot, "index.html"), "w") as f:
                f.write("hello\n")
            app = [bins["python"], "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                   "--directory", docroot]
        else:
            app = [bins["node"], "-e", 'require("http").createServer((q, s) => '
                   's.end("node " + process.pid + "\\n"))'
                   f'.listen({self.port}, "127.0.0.1")']
        if method.startswith("baton-adopt"):
            first = [bins["baton"], "run", "--adopt", "--listen", self.addr, "--control",
                     self.control, "--"] + app
            self.reload_argv = [bins["baton"], "reload", "--wait", "--control", self.control]
        else:
            first = app
            self.reload_argv = [d.sys.executable, os.path.join(d.HERE, "reload.py"), workdir]
        self.supervised = first[0] == bins["baton"]
        self.proc = d.spawn(first, self.log)
        with open(os.path.join(workdir, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        with open(os.path.join(workdir, "current"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        with open(os.path.join(workdir, "state.json"), "w") as f:
            json.dump({"method": "kill-start-port", "dir": workdir, "log": self.log, "app": app,
                       "port": self.port}, f)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{method} exited at start: {self.tail()}")
            if self.supervised:
                r = subprocess.run([bins["baton"], "status", "--json", "--control",
                                    self.control], capture_output=True, text=True, timeout=10)
                if r.returncode == 0 and json.loads(r.stdout).get("serving_generation"):
                    return
            elif accepting(self.port):
                return
            time.sleep(0.02)
        raise RuntimeError(f"{method} not serving within 30 s: {self.tail()}")

    def tail(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-500:]

    def reload_command(self):
        return " ".join(self.reload_argv)

    def stop(self):
        tracked = set()
        with open(os.path.join(self.dir, "pids")) as f:
            tracked.update(int(x) for x in f.read().split())
        tracked.update(x for p in list(tracked) for x in d.descendants(p))
        d.stop_pids([self.proc.pid], grace_s=35)
        d.stop_pids(tracked, grace_s=10)


def accepting(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def side_stream(bins, url, json_path, budget_s):
    """A soak of new connections at SIDE_RATE alongside a cell's own load; ended by SIGINT."""
    argv = [bins["baton"], "soak", "--url", url, "--close", "-c", str(SIDE_CONNECTIONS), "-t",
            "1", "--rate", str(SIDE_RATE), "-d", f"{budget_s}s", "--json", json_path, "-q"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def end_side_stream(proc, json_path):
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        d.stop_pids([proc.pid], grace_s=5)
        raise RuntimeError("the side stream's soak did not end within 60 s of SIGINT")
    if proc.returncode not in (0, 1) or not os.path.exists(json_path):
        raise RuntimeError(f"side stream soak exited {proc.returncode}: {err.strip()[-500:]}")
    with open(json_path) as f:
        return d.summarise(json.load(f))


def copy_log(src, dst):
    """The servers' lines, without Python http.server's one line per request."""
    with open(src, errors="replace") as f, open(dst, "w") as out:
        for line in f:
            if '"GET / HTTP/1.1" 200' not in line:
                out.write(line)


def run(bins, args, raw):
    """The whole suite; returns the summary (also written to raw/summary.json)."""
    p = dict(QUICK if args.quick else FULL)
    for k in ("runs", "duration", "reloads"):
        if getattr(args, f"steering_{k}", None):
            p[k] = getattr(args, f"steering_{k}")
    os.makedirs(raw, exist_ok=True)
    work = d.tempfile.mkdtemp(prefix="baton-steering-bench.")
    t_start = time.monotonic()
    load_start = os.getloadavg()
    cells, commands = [], {}
    soak_args = SimpleNamespace(connections=50, load_threads=2, duration=p["duration"],
                                reloads=p["reloads"])
    # Python and Node for the runtime cells: the system's own (a pyenv shim is a shell script,
    # and its start-up would be in every restart).
    bins = dict(bins, python="/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
                else d.sys.executable, node=d.shutil.which("node") or "")
    for f in os.listdir(raw):  # this suite's raw files only: none left from an earlier layout
        if re.match(r"(steady|starter|baton|kill-start)-.*\.(json|log)$", f):
            os.remove(os.path.join(raw, f))
    plan = [(m, shape, run_i) for run_i in range(1, p["runs"] + 1) for shape in d.SHAPES
            for m in d.STEERING_CELLS]
    plan += [(m, shape, run_i) for run_i in range(1, p["runtime_runs"] + 1)
             for m in RUNTIME_CELLS for shape in RUNTIME_SHAPES[m.rsplit("-", 1)[1]]]
    try:
        for n, (method, shape, run_i) in enumerate(plan, 1):
            runtime = method in RUNTIME_CELLS
            cell = os.path.join(work, f"{method}-{shape}-{run_i}")
            os.makedirs(cell)
            rec = {"method": method, "shape": shape, "run": run_i}
            srv = side = None
            soak_args.duration = p["runtime_duration"] if runtime else p["duration"]
            try:
                if runtime and not bins[method.rsplit("-", 1)[1]]:
                    raise RuntimeError(f"{method.rsplit('-', 1)[1]} is not installed")
                srv = RuntimeServer(method, bins, cell) if runtime else d.Server(
                    method, bins, cell, 1.0, 2)
                jpath = os.path.join(raw, f"{method}-{shape}-run{run_i}.json")
                side_json = os.path.join(raw, f"{method}-{shape}-run{run_i}-new-connections.json")
                if shape == "keepalive" and method.endswith("-crash"):
                    side = side_stream(bins, srv.url, side_json,
                                       soak_args.duration + p["reloads"] * 30 + 60)
                try:
                    argv, rc = d.run_soak(bins, srv, shape, soak_args, jpath)
                finally:
                    if side is not None:
                        rec["side"] = end_side_stream(side, side_json)
                if method not in commands and (runtime or shape == "keepalive"):
                    cmds = [shlex.join(srv.proc.args) + " &", shlex.join(argv)]
                    if side is not None:
                        cmds.append(shlex.join(side.args) + " &  # alongside, ended by SIGINT")
                    commands[method] = [c.replace(cell, "DIR").replace(
                        str(srv.port), "PORT").replace(jpath, "OUT.json").replace(
                            side_json, "SIDE.json").replace(args.build_dir + "/", "build/")
                        .replace(d.sys.executable, "python3") for c in cmds]
                with open(jpath) as f:
                    rec["summary"] = d.summarise(json.load(f))
                s = rec["summary"]
                extra = ""
                if "side" in rec:
                    extra = (f"; new connections alongside: {rec['side']['requests']} requests, "
                             f"{rec['side']['failed']} failed")
                d.log(f"[{n}/{len(plan)}] {method} {shape} run {run_i}: {s['requests']} "
                      f"requests, {s['failed']} failed ({d.fmt_kinds(s['failures'])}), "
                      f"restarts {s['reloads_ok']}/{s['reloads_planned']}{extra}")
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                rec["error"] = str(e)
                d.log(f"[{n}/{len(plan)}] {method} {shape} run {run_i}: ERROR {e}")
            finally:
                if srv is not None:
                    srv.stop()
                    copy_log(srv.log, os.path.join(raw, f"{method}-{shape}-run{run_i}.log"))
            cells.append(rec)

        ratios = {"readiness": [], "instant": [], "steady": {}}
        for mode in MODES:
            d.log(f"readiness {mode}: {p['ready_reloads']} reloads")
            try:
                ratios["readiness"].append(readiness(bins, work, raw, mode,
                                                     p["ready_reloads"], 1.0))
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                ratios["readiness"].append({"mode": mode, "error": str(e), "rows": []})
        d.log("Server::Starter reload overhead")
        try:
            ratios["starter"] = starter_overhead(bins, work, raw, p["ready_reloads"], 1.0)
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            ratios["starter"] = {"error": str(e), "rows": []}
        for label, mode, flags in INSTANT:
            d.log(f"instant reloads ({label}): {p['instant_reloads']}")
            try:
                ratios["instant"].append(instant(bins, work, label, mode, flags,
                                                 p["instant_reloads"]))
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                ratios["instant"].append({"mode": label, "error": str(e), "ms": [], "failed": 0})
        for shape in d.SHAPES:
            try:
                ratios["steady"][shape] = steady(bins, work, raw, shape, p)
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                ratios["steady"][shape] = {"error": str(e)}
    finally:
        d.shutil.rmtree(work, ignore_errors=True)

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": time.monotonic() - t_start, "mode": "quick" if args.quick else "full",
            "params": p, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "cpus": os.cpu_count(), "network": args.network_note, "commit": d.source_commit()}
    summary = {"meta": meta, "cells": cells, "ratios": ratios, "commands": commands}
    with open(os.path.join(raw, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    d.make_portable(raw, args.build_dir)
    with open(os.path.join(raw, "summary.json")) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# Report.

def _stats(xs, scale=1.0, unit="ms", digits=1):
    if not xs:
        return "-"
    xs = [x * scale for x in xs]
    return (f"{pct(xs, 50):.{digits}f} / {pct(xs, 90):.{digits}f} / {max(xs):.{digits}f} {unit}")


def ratios_summary(summary):
    """The headline figures, for the README and the log."""
    r = summary["ratios"]
    out = {}
    for m in r["readiness"]:
        ok = [x for x in m["rows"] if "error" not in x]
        if ok:
            out[f"notice_{m['mode']}_ms_p50"] = pct([x["notice_ms"] for x in ok], 50)
            out[f"notice_{m['mode']}_ms_max"] = max(x["notice_ms"] for x in ok)
            out[f"overhead_{m['mode']}_ms_p50"] = pct([x["overhead_s"] * 1000 for x in ok], 50)
    for m in r["instant"]:
        if m["ms"]:
            out[f"instant_{m['mode']}_ms_p50"] = pct(m["ms"], 50)
    for shape, st in r["steady"].items():
        rounds = [] if "error" in st else steady_rounds(st)
        if not rounds:
            continue
        def median_and_range(name, ratios):
            if ratios:
                out[name] = statistics.median(ratios)
                out[f"{name}_min"], out[f"{name}_max"] = min(ratios), max(ratios)

        ratios = [b["rps"] / a["rps"] for a, b in rounds]
        median_and_range(f"throughput_{shape}", ratios)
        out[f"throughput_{shape}_rounds"] = len(ratios)
        median_and_range(f"control_{shape}",
                         [c["rps"] / a["rps"] for a, c in steady_rounds(st, "control")])
        median_and_range(f"per_cpu_{shape}", [b["per_cpu_s"] / a["per_cpu_s"] for a, b in rounds
                                              if a.get("per_cpu_s") and b.get("per_cpu_s")])
        steady_p99 = statistics.median(b["p99_us"] for _, b in rounds)
        if st.get("baton_reloads") and steady_p99:
            win_p99 = statistics.median(x["win_p99_us"] for x in st["baton_reloads"])
            out[f"p99_window_over_steady_{shape}"] = win_p99 / steady_p99
    return out


def targets(summary):
    """The issue's targets, each with this run's figure and whether it was met."""
    r, h = summary["ratios"], ratios_summary(summary)
    met = lambda ok: "met" if ok else "**not met**"
    L = ["Against the issue's targets (this run):", ""]
    fails = {}
    for c in summary["cells"]:
        if "summary" in c:
            group = "runtime" if c["method"] in RUNTIME_CELLS else "app"
            key = (group, c["method"].startswith("baton"))
            fails[key] = (fails.get(key, 0) + c["summary"]["failed"]
                          + c.get("side", {}).get("failed", 0))
    if ("app", True) in fails:
        L.append(f"- failed requests in the misbehaving-app cells (new connections alongside "
                 f"included): baton run {fails[('app', True)]} (target 0: "
                 f"{met(fails[('app', True)] == 0)}), Server::Starter "
                 f"{fails.get(('app', False), '-')}.")
    if ("runtime", True) in fails:
        L.append(f"- failed requests with Python http.server and Node (die on SIGTERM, bind "
                 f"their own port): baton run --adopt {fails[('runtime', True)]} (target 0: "
                 f"{met(fails[('runtime', True)] == 0)}), restart by kill + start "
                 f"{fails.get(('runtime', False), '-')}.")
    for m in r["instant"]:
        if m["ms"]:
            p50 = pct(m["ms"], 50)
            L.append(f"- `reload --wait`, instantly ready app, nothing in flight, `{m['mode']}`: "
                     f"p50 {p50:.1f} ms (target ≤ {INSTANT_TARGET_MS:g} ms: "
                     f"{met(p50 <= INSTANT_TARGET_MS)}).")
    late = []
    for m in r["readiness"]:
        ok = [x["notice_ms"] for x in m["rows"] if "error" not in x]
        if ok:
            late.append(f"`{m['mode']}` {pct(ok, 50):.1f} / {max(ok):.1f} ms"
                        + ("" if max(ok) <= NOTICE_TARGET_MS else " (over)"))
    if late:
        worst = max((x["notice_ms"] for m in r["readiness"] for x in m["rows"]
                     if "error" not in x), default=0)
        L.append(f"- readiness noticed within {NOTICE_TARGET_MS:g} ms of the app being ready, "
                 f"every reload, every mode (p50 / max): {', '.join(late)}: "
                 f"{met(worst <= NOTICE_TARGET_MS)}.")
    for shape in d.SHAPES:
        if f"throughput_{shape}" in h:
            t, lo, hi = (h[f"throughput_{shape}"], h[f"throughput_{shape}_min"],
                         h[f"throughput_{shape}_max"])
            verdict = lambda x, a, b: met(x >= THROUGHPUT_TARGET) + (
                ", the rounds straddling it" if a < THROUGHPUT_TARGET <= b else "")
            cpu = ""
            if f"per_cpu_{shape}" in h:
                c, clo, chi = (h[f"per_cpu_{shape}"], h[f"per_cpu_{shape}_min"],
                               h[f"per_cpu_{shape}_max"])
                cpu = (f"requests per CPU second (app, supervisor and load generator) {c:.3f} "
                       f"(rounds {clo:.3f}-{chi:.3f}: {verdict(c, clo, chi)}); ")
            w = h.get(f"p99_window_over_steady_{shape}")
            control = ""
            if f"control_{shape}" in h:
                control = (f"; the control, a second app alone over the first, req/s "
                           f"{h[f'control_{shape}']:.3f} (rounds {h[f'control_{shape}_min']:.3f}"
                           f"-{h[f'control_{shape}_max']:.3f}): what this machine gives for two "
                           "identical servers")
            L.append(f"- throughput under baton over the app alone, {d.SHAPES[shape]}, median "
                     f"of {h[f'throughput_{shape}_rounds']} interleaved rounds (target ≥ "
                     f"{THROUGHPUT_TARGET}): {cpu}req/s {t:.3f} (rounds {lo:.3f}-{hi:.3f}: "
                     f"{verdict(t, lo, hi)}){control}; p99 in reload windows over steady p99: "
                     f"{f'{w:.2f}' if w else '-'}.")
    over = [f"`{mode}` {h['overhead_' + mode + '_ms_p50']:.0f} ms"
            for mode in (m["mode"] for m in r["readiness"]) if f"overhead_{mode}_ms_p50" in h]
    if over:
        L.append(f"- reload overhead beyond the app's own start-up (p50): {', '.join(over)} "
                 "(no target; Server::Starter's is its `--interval`).")
    return L


def cell_table(summary, names, shape, with_side):
    """The rows of one table of cells (every run of each method in `names`, one load shape)."""
    L = ["| cell | failed (each run) | failures by kind | 1st try failed | requests | req/s | "
         "reload-window p99 | restart p50 / max | restarts as designed |"
         + (" new connections alongside: failed / requests |" if with_side else ""),
         "|---|---|---|---:|---:|---:|---:|---|---|" + ("---:|" if with_side else "")]
    for method, name in names.items():
        rs = [c for c in summary["cells"] if c["method"] == method and c["shape"] == shape]
        if not rs:
            continue
        s = [c["summary"] for c in rs if "summary" in c]
        if not s:
            err = next((c.get("error", "") for c in rs), "not run")
            L.append(f"| {name} | error: {err[:80]} |" + " |" * (8 if with_side else 7))
            continue
        kinds = {}
        for x in s:
            for k, v in x["failures"].items():
                kinds[k] = kinds.get(k, 0) + v
        sides = [c["side"] for c in rs if "side" in c]
        side = (f" {' / '.join(str(x['failed']) for x in sides)} of "
                f"{sum(x['requests'] for x in sides):,} |" if sides else " - |")
        L.append(f"| {name} | {' / '.join(str(x['failed']) for x in s)} | "
                 f"{d.fmt_kinds(kinds)} | "
                 f"{' / '.join(str(x['first_try_failed']) for x in s)} | "
                 f"{sum(x['requests'] for x in s):,} | "
                 f"{statistics.mean(x['rps'] for x in s):,.0f} | "
                 f"{d.fmt_us(statistics.mean(x['win_p99_us'] for x in s))} | "
                 f"{statistics.mean(x['reload_p50_s'] for x in s):.2f}s / "
                 f"{max(x['reload_max_s'] for x in s):.2f}s | "
                 f"{sum(x['reloads_ok'] for x in s)}/{sum(x['reloads_planned'] for x in s)} |"
                 + (side if with_side else ""))
    return L


def render(summary):
    meta, r, p = summary["meta"], summary["ratios"], summary["meta"]["params"]
    L = []
    la0, la1 = meta["loadavg_start"][0], meta["loadavg_end"][0]
    L.append("## Steering: apps that behave badly, and baton's own costs")
    L.append("")
    L.append(f"Written by `bench/run-restart-methods --suite steering"
             f"{' --quick' if meta['mode'] == 'quick' else ''}` on {meta['date']} "
             f"({meta['wall_s']:.0f} s wall, {meta['mode']} mode"
             f"{', commit ' + meta['commit'] if 'commit' in meta else ''}); {meta['cpus']} CPUs "
             "shared "
             f"with other builds and tests (load average {la0:.1f} at the start, {la1:.1f} at "
             f"the end); {meta['network']}. **The machine was loaded: latencies and req/s are "
             "noisy, and millisecond figures can be several times what an idle machine gives; "
             "failure counts are the figures to compare.**")
    L.append("")
    L.extend(targets(summary))
    L.append("")
    L.append(f"### Misbehaving apps: failed requests per {p['reloads']} restarts")
    L.append("")
    L.append(f"`baton-bench-app --mode inherit` (1 s start-up, 2 threads) under `baton run` "
             f"(defaults: `--ready auto`, `--drain watch`) and under `start_server --interval=2`; "
             f"`baton soak`, 50 connections, {p['duration']} s, {p['reloads']} restarts, "
             f"{p['runs']} run(s) per cell. *dies on SIGTERM*: the app exits at once on SIGTERM, "
             f"in-flight requests and all. *accepts then crashes*: each restart deploys a new "
             f"version that accepts at once, answers nothing and exits 1 after "
             f"{d.CRASH_AFTER_S} s (before its 1 s start-up ends); start_server retries it "
             "(the retry starts fine and replaces the old worker), baton run rolls back "
             "(`reload --wait` exits 1; counted as a restart handled as designed).")
    L.append("")
    for shape, title in d.SHAPES.items():
        L.append(f"**Load: {title}**")
        L.append("")
        if shape == "keepalive":
            L.append(f"The keep-alive clients' connections stay on the instance that accepted "
                     f"them, so on its own this load hands a new version no connection. In the "
                     f"*accepts then crashes* cells a stream of new connections runs alongside "
                     f"(a second `baton soak --close --rate {SIDE_RATE}`, open loop, "
                     f"{SIDE_CONNECTIONS} connections, over the whole run): those are what the "
                     f"broken version is handed, and their failures are in the last column.")
            L.append("")
        L.extend(cell_table(summary, d.STEERING_CELLS, shape, with_side=shape == "keepalive"))
        L.append("")
    if any(c["method"] in RUNTIME_CELLS for c in summary["cells"]):
        rp = f"{p.get('runtime_duration', p['duration'])} s, {p['reloads']} restarts, " \
             f"{p.get('runtime_runs', 1)} run(s) per cell"
        L.append(f"**Unmodified runtimes that die on SIGTERM** (issue 9): `python3 -m "
                 f"http.server` and a Node `http` server with no signal handler, both binding "
                 f"their own port; `baton soak`, 50 connections, {rp}. Under `baton run "
                 f"--adopt` (defaults: `--ready auto`, `--drain watch`) against restart by kill "
                 f"+ start (SIGTERM, wait for the exit, start again, wait until the port "
                 f"accepts; `reload.py`). Server::Starter cannot run them: it passes the socket "
                 f"in `SERVER_STARTER_PORT`, which they do not read, and they set no "
                 f"`SO_REUSEPORT`, so an overlap of old and new is impossible too. Python's "
                 f"`http.server` answers HTTP/1.0 and closes every connection, so it runs only "
                 f"with a new connection per request.")
        L.append("")
        for shape, title in d.SHAPES.items():
            if any(c["method"] in RUNTIME_CELLS and c["shape"] == shape
                   for c in summary["cells"]):
                L.append(f"*Load: {title}*")
                L.append("")
                L.extend(cell_table(summary, RUNTIME_CELLS, shape, with_side=False))
                L.append("")
    L.append("### Ratios")
    L.append("")
    L.append(f"**Readiness and reload overhead** ({p['ready_reloads']} reloads per mode, 1 s "
             "start-up app, no load). *noticed late*: baton's `ready after` log line minus the "
             "app's own ready moment (after it sent `READY=1`, created its ready file or started "
             "accepting); baton's log has millisecond resolution, so each figure is within 1 ms "
             "(and can read slightly negative). *overhead*: `reload --wait` wall time minus the "
             "app's start-up (its own clock, from `main` to ready); it includes starting the "
             "`baton reload` process, and `reload --wait` returns only once the old "
             "generation has exited (with `--drain watch`: once baton has seen it hold nothing, "
             "signalled it, and it exited). The last two columns split the overhead: before the "
             "app's `main`, and after baton noticed it ready. Cells: p50 / p90 / max.")
    L.append("")
    L.append(f"| `--ready` | noticed late (target ≤ {NOTICE_TARGET_MS:g} ms) | reload --wait | "
             "app start-up | overhead beyond start-up | reload / start-up (p50) | "
             "reload command to app's `main` | noticed to reload returned |")
    L.append("|---|---|---|---|---|---:|---|---|")
    for m in r["readiness"]:
        ok = [x for x in m["rows"] if "error" not in x]
        errs = len(m["rows"]) - len(ok)
        if not ok:
            L.append(f"| `{m.get('ready_flag', m['mode'])}` | error: "
                     f"{m.get('error', 'no reload measured')[:80]} | | | | | | |")
            continue
        ratio = pct([x["wall_s"] / x["startup_s"] for x in ok], 50)
        flag = m["ready_flag"]
        L.append(f"| `{flag}`{f' ({errs} failed)' if errs else ''} | "
                 f"{_stats([x['notice_ms'] for x in ok])} | "
                 f"{_stats([x['wall_s'] for x in ok], 1000, 'ms', 0)} | "
                 f"{_stats([x['startup_s'] for x in ok], 1000, 'ms', 0)} | "
                 f"{_stats([x['overhead_s'] for x in ok], 1000)} | {ratio:.3f} | "
                 f"{_stats([x['to_main_ms'] for x in ok])} | "
                 f"{_stats([x['after_notice_ms'] for x in ok])} |")
    st = r.get("starter", {})
    ok = [x for x in st.get("rows", []) if "error" not in x]
    if ok:
        L.append(f"| Server::Starter `--interval=1` (SIGHUP to old worker signalled) | - | "
                 f"{_stats([x['wall_s'] for x in ok], 1000, 'ms', 0)} | "
                 f"{_stats([x['startup_s'] for x in ok], 1000, 'ms', 0)} | "
                 f"{_stats([x['overhead_s'] for x in ok], 1000)} | "
                 f"{pct([x['wall_s'] / x['startup_s'] for x in ok], 50):.3f} | | |")
    L.append("")
    L.append("Server::Starter has no readiness signal: it signals the old worker `--interval` "
             "seconds after starting the new one, ready or not, so its overhead is its interval "
             "minus the start-up (negative: the old worker was stopped before the new one was "
             "ready).")
    L.append("")
    L.append(f"**`reload --wait` on an instantly ready app, nothing in flight** (app start-up "
             f"0 s, no load, {p['instant_reloads']} reloads each, the next once the old "
             f"generation has exited; target p50 ≤ {INSTANT_TARGET_MS:g} ms):")
    L.append("")
    L.append("| `--ready` | p50 | p90 | p99 | max | failed |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for m in r["instant"]:
        xs = m["ms"]
        if not xs:
            L.append(f"| {m['mode']} | error: {m.get('error', '-')[:80]} | | | | |")
            continue
        L.append(f"| `{m['mode']}` | {pct(xs, 50):.1f} ms | {pct(xs, 90):.1f} ms | "
                 f"{pct(xs, 99):.1f} ms | {max(xs):.1f} ms | {m['failed']} |")
    L.append("")
    rounds_n = p.get("rounds", p.get("pairs"))
    round_s = p.get("round_duration", p.get("steady_duration"))
    steady_runs = [st for st in r["steady"].values() if "error" not in st]
    with_control = any(steady_rounds(st, "control") for st in steady_runs)
    where = next((st["placement"] for st in steady_runs if st.get("placement")), None)
    reloads_text = (f"Then `baton run` of the 1 s start-up app with {p['reloads']} reloads, "
                    f"{p.get('reload_runs', rounds_n)} run(s) of "
                    f"{p.get('reload_duration', round_s)} s, for the p99 in reload windows, over "
                    "the steady p99 of the baton rounds")
    if with_control:
        pinned = (f"Servers (the apps alone, `baton run` and so its generations) and load "
                  f"generator all pinned to one CPU ({','.join(map(str, where or []))}), so "
                  "that every run has the same placement (left to the scheduler, the app's and "
                  "the load generator's threads share 2 CPUs differently from run to run, each "
                  "way with its own req/s), and any CPU that baton costs, in the app, the "
                  "supervisor or the kernel, comes out of the requests' one CPU; req/s are "
                  "therefore those of one CPU")
        L.append(f"**Throughput and tail latency** (`baton soak`, 50 connections; {rounds_n} "
                 f"rounds, each of three servers started afresh: the app alone (`--mode plain`, "
                 f"its own socket), the same app under `baton run`, and a second app alone, the "
                 f"control; loaded in turn for {round_s} s each, in an order that rotates over "
                 "the six possible, so that the machine's drift hits each alike and each round's "
                 "ratios compare runs seconds apart. The ratio is the median of the rounds' "
                 "ratios, with the middle half and all of them. The control over the app alone "
                 "is what this machine gives for two identical servers: a baton / alone ratio "
                 f"within its spread cannot be told from noise. {pinned}. {reloads_text}, "
                 "pinned to the same CPU, so that the two p99 compare like with like):")
    else:
        L.append(f"**Throughput and tail latency** (`baton soak`, 50 connections; the same app "
                 f"alone (`--mode plain`, its own socket) and under `baton run`, both up, loaded "
                 f"in turn for {round_s} s each in {rounds_n} interleaved rounds: alone then "
                 f"baton, baton then alone, and so on, so that the machine's drift hits both "
                 f"alike and each round's ratio compares two runs seconds apart. The ratio is the "
                 f"median of the rounds' ratios, with their spread. {reloads_text}):")
    L.append("")
    L.append(f"| load | app alone req/s | under baton req/s | baton / alone, req/s (target ≥ "
             f"{THROUGHPUT_TARGET}): median (spread) | control / alone, req/s: median (spread) "
             "| app alone requests per CPU s | under baton per CPU s | baton / alone, per CPU "
             "second: median (spread) | steady p99 (alone) | steady p99 (baton) | reload-window "
             "p99 | window p99 / steady p99 | failed (reload runs) | baton's CPU time per run |")
    L.append("|---|---:|---:|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    each = []
    for shape, st in r["steady"].items():
        rounds = [] if "error" in st else steady_rounds(st)
        if not rounds:
            L.append(f"| {d.SHAPES[shape]} | error: {st.get('error', 'no round')[:80]} |"
                     + " |" * 12)
            continue
        med = lambda xs: statistics.median(xs)
        ratios = [y["rps"] / x["rps"] for x, y in rounds]
        control = [c["rps"] / x["rps"] for x, c in steady_rounds(st, "control")]
        cpu = [(x, y) for x, y in rounds if x.get("per_cpu_s") and y.get("per_cpu_s")]
        cpu_ratios = [y["per_cpu_s"] / x["per_cpu_s"] for x, y in cpu]
        sp = med([y["p99_us"] for _, y in rounds])
        rel = st.get("baton_reloads", [])
        wp = med([x["win_p99_us"] for x in rel]) if rel else None
        cpu_cells = (f"{med([x['per_cpu_s'] for x, _ in cpu]):,.0f} | "
                     f"{med([y['per_cpu_s'] for _, y in cpu]):,.0f} | {spread(cpu_ratios)}"
                     if cpu else "- | - | -")
        L.append(f"| {d.SHAPES[shape]} | {med([x['rps'] for x, _ in rounds]):,.0f} | "
                 f"{med([y['rps'] for _, y in rounds]):,.0f} | {spread(ratios)} | "
                 f"{spread(control)} | {cpu_cells} | "
                 f"{d.fmt_us(med([x['p99_us'] for x, _ in rounds]))} | {d.fmt_us(sp)} | "
                 f"{d.fmt_us(wp) if wp else '-'} | {f'{wp / sp:.2f}' if wp and sp else '-'} | "
                 f"{' / '.join(str(x['failed']) for x in rel) or '-'} | "
                 f"{med([y.get('baton_cpu_ms', 0) for _, y in rounds]):.0f} ms steady, "
                 f"{med([x.get('baton_cpu_ms', 0) for x in rel]) if rel else 0:.0f} ms with "
                 "reloads |")
        each.append(f"- {d.SHAPES[shape]}: req/s {', '.join(f'{x:.2f}' for x in ratios)}"
                    + (f"; control {', '.join(f'{x:.2f}' for x in control)}" if control else "")
                    + (f"; per CPU second {', '.join(f'{x:.2f}' for x in cpu_ratios)}"
                       if cpu_ratios else ""))
    L.append("")
    if each:
        order = (f"round i loaded the servers in the i-th order of {', '.join(ORDERS)}, "
                 "repeated; A the app alone, B baton, C the control" if with_control else
                 "odd rounds loaded the app alone first, even rounds baton first")
        L.append(f"Each round's ratio, in order ({order}). *Per CPU second*: requests over the "
                 "CPU time that the servers (the app, and under baton the supervisor too) and "
                 "the load generator used in the run, from `/proc/PID/task/*/schedstat` and the "
                 "load generator's rusage: on a machine shared with other work, wall-clock req/s "
                 "follows whoever else is running, while the CPU a request costs does not.")
        L.append("")
        L.extend(each)
        L.append("")
    L.append("Reproduce: `bench/run-restart-methods --build build --suite steering` (full: "
             f"{FULL['runs']} runs of {FULL['duration']} s with {FULL['reloads']} restarts per "
             f"misbehaving-app cell, {FULL['runtime_runs']} of {FULL['runtime_duration']} s per "
             f"runtime cell, {FULL['ready_reloads']} reloads per readiness mode, "
             f"{FULL['instant_reloads']} instant reloads, {FULL['rounds']} throughput rounds of "
             f"{FULL['round_duration']} s) or `--suite steering --quick` (1 run of "
             f"{QUICK['duration']} s with {QUICK['reloads']} restarts per cell, "
             f"{QUICK['ready_reloads']} / {QUICK['instant_reloads']} reloads, "
             f"{QUICK['rounds']} rounds of {QUICK['round_duration']} s: a check that everything "
             "runs, not figures to quote). Raw: `bench/results/steering/` (soak JSON and server "
             "log per run, `summary.json`).")
    L.append("")
    if summary.get("commands"):
        L.append("The cells' commands (keep-alive, run 1, or the first run of a runtime cell; "
                 "`--close` added for the other shape):")
        L.append("")
        L.append("```")
        for method, cmds in summary["commands"].items():
            L.append(f"# {d.STEERING_CELLS.get(method) or RUNTIME_CELLS.get(method, method)}")
            L.extend(c.replace(d.REPO + "/", "") for c in cmds)
        L.append("```")
        L.append("")
    return "\n".join(L) + "\n"


def readme(summary):
    """The README's block of this suite's figures (`run-restart-methods --readme-steering`), so
    that the README says what the results file says."""
    meta, p, h = summary["meta"], summary["meta"]["params"], ratios_summary(summary)
    cells = summary["cells"]

    def failed(method, shape):
        rs = [c for c in cells if c["method"] == method and c["shape"] == shape]
        if not rs:
            return "-"
        if any("summary" not in c for c in rs):
            return "error"
        out = " / ".join(str(c["summary"]["failed"]) for c in rs)
        first = [c["summary"]["first_try_failed"] for c in rs]
        if first != [c["summary"]["failed"] for c in rs]:
            out += f" ({' / '.join(str(x) for x in first)})"
        if any("side" in c for c in rs):
            out += (f"; new connections alongside: "
                    f"{' / '.join(str(c['side']['failed']) for c in rs if 'side' in c)}")
        return out

    la0, la1 = meta["loadavg_start"][0], meta["loadavg_end"][0]
    L = [f"**Apps that behave badly, and baton's own costs** (`bench/run-restart-methods --suite "
         f"steering`, {meta['wall_s'] / 60:.0f} minutes here; `--quick` for a check; run on "
         f"{meta['date']} with the machine's load average at {la0:.1f} at the start and "
         f"{la1:.1f} at the end on {meta['cpus']} CPUs shared with other work, so every "
         "millisecond and req/s figure here is noisy; failure counts are not). The same app "
         "(`baton-bench-app --mode inherit`, 1 s start-up) under `baton run` with no flags and "
         f"under `start_server --interval=2`, 50 connections, {p['duration']} s, "
         f"{p['reloads']} restarts, {p['runs']} run(s) per cell; failed requests in each run "
         "(first tries in brackets, before soak's one retry of a reused keep-alive connection). "
         f"Under keep-alive, the crash cells add {SIDE_RATE} new connections per second "
         "alongside, since keep-alive clients stay on the old instance:", "",
         "| cell | baton run: new connection per request | keep-alive | Server::Starter: new "
         "connection per request | keep-alive |", "|---|---|---|---|---|",
         f"| app dies on SIGTERM | {failed('baton-dies', 'close')} | "
         f"{failed('baton-dies', 'keepalive')} | {failed('starter-dies', 'close')} | "
         f"{failed('starter-dies', 'keepalive')} |",
         f"| new version accepts at once, crashes before ready | {failed('baton-crash', 'close')}"
         f" | {failed('baton-crash', 'keepalive')} | {failed('starter-crash', 'close')} | "
         f"{failed('starter-crash', 'keepalive')} |", ""]
    if any(c["method"] in RUNTIME_CELLS for c in cells):
        L += [f"Unmodified runtimes that die on SIGTERM and bind their own port, "
              f"{p.get('runtime_duration', p['duration'])} s, {p['reloads']} restarts "
              "(Server::Starter cannot pass them a socket they would read, so the peer is "
              "restart by kill + start):", "",
              "| app | baton run --adopt: new connection per request | keep-alive | kill + "
              "start: new connection per request | keep-alive |", "|---|---|---|---|---|",
              f"| `python3 -m http.server` (HTTP/1.0: no keep-alive) | "
              f"{failed('baton-adopt-python', 'close')} | - | "
              f"{failed('kill-start-python', 'close')} | - |",
              f"| Node `http`, no signal handler | {failed('baton-adopt-node', 'close')} | "
              f"{failed('baton-adopt-node', 'keepalive')} | "
              f"{failed('kill-start-node', 'close')} | "
              f"{failed('kill-start-node', 'keepalive')} |", ""]
    r = summary["ratios"]
    verdict = lambda ok: "met" if ok else "**not met**"
    rows = ["| ratio (same run) | figure | target |", "|---|---|---|"]
    late = {m["mode"]: [x["notice_ms"] for x in m["rows"] if "error" not in x]
            for m in r["readiness"]}
    late = {k: v for k, v in late.items() if v}
    if late:
        worst = max(max(v) for v in late.values())
        over = [k for k, v in late.items() if max(v) > NOTICE_TARGET_MS]
        rows.append("| readiness noticed after the app was ready, p50 / max: "
                    + ", ".join(f"`{k}`" for k in late) + " | "
                    + ", ".join(f"{pct(v, 50):.1f} / {max(v):.1f}" for v in late.values())
                    + f" ms | ≤ {NOTICE_TARGET_MS:g} ms: {verdict(worst <= NOTICE_TARGET_MS)}"
                    + (f" (over: {', '.join(over)})" if over else "") + " |")
    over = [h[f"overhead_{k}_ms_p50"] for k in late if f"overhead_{k}_ms_p50" in h]
    if over:
        rows.append(f"| `reload --wait` overhead beyond the app's 1 s start-up, p50 (by mode) | "
                    f"{min(over):.0f}-{max(over):.0f} ms (Server::Starter: its interval) | |")
    inst = [(m["mode"], pct(m["ms"], 50)) for m in r["instant"] if m["ms"]]
    if inst:
        rows.append("| `reload --wait`, instantly ready app, nothing in flight, p50 | "
                    + ", ".join(f"`{k}` {v:.1f} ms" for k, v in inst)
                    + f" | ≤ {INSTANT_TARGET_MS:g} ms: "
                    + ", ".join(f"{verdict(v <= INSTANT_TARGET_MS)} (`{k}`)" for k, v in inst)
                    + " |")
    for key, what in (("per_cpu", "requests per CPU second (app, supervisor, load generator)"),
                      ("throughput", "req/s")):
        tp = [(title, h[f"{key}_{shape}"], h[f"{key}_{shape}_min"], h[f"{key}_{shape}_max"])
              for shape, title in d.SHAPES.items() if f"{key}_{shape}" in h]
        if tp:
            n = max(h.get(f"throughput_{shape}_rounds", 0) for shape in d.SHAPES)
            rows.append(f"| throughput under baton / the app alone, {what}: median of {n} "
                        "interleaved rounds (spread) | "
                        + ", ".join(f"{t:.3f} {title} ({lo:.3f}-{hi:.3f})"
                                    for title, t, lo, hi in tp)
                        + f" | ≥ {THROUGHPUT_TARGET}: "
                        + ", ".join(f"{verdict(t >= THROUGHPUT_TARGET)} ({title})"
                                    for title, t, _, _ in tp) + " |")
    win = [(title, h[f"p99_window_over_steady_{shape}"]) for shape, title in d.SHAPES.items()
           if h.get(f"p99_window_over_steady_{shape}")]
    if win:
        rows.append("| p99 in reload windows / steady p99 | "
                    + ", ".join(f"{v:.2f} {title}" for title, v in win) + " | |")
    L += rows + ["", "Details and the conditions of the run: [bench/RESULTS.md](bench/RESULTS.md) "
                 "(section \"Steering\") and [bench/results/steering.md]"
                 "(bench/results/steering.md)."]
    return "\n".join(L) + "\n"
