"""baton's own costs for the steering suite, as ratios: readiness noticed and reload overhead per
readiness mode (against Server::Starter's), `reload --wait` on an instantly ready app, and
throughput under baton run over the app alone in rotating rounds."""

import datetime
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import time

from cells import fmt_us, summarise
from procs import descendants, free_port, log, pinned, spawn, stop_pids, task_counters, wait_log
from steering_plan import APP_READY, BATON_READY


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
        self.port = free_port()
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
        self.proc = spawn(argv, self.log, cpus=cpus)
        wait_log(self.log, r"pid \d+ ready on", 30, self.proc)
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
        pids = set(descendants(self.proc.pid))
        stop_pids([self.proc.pid], grace_s=35)
        stop_pids(pids, grace_s=10)


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
        shutil.copyfile(b.log, os.path.join(raw, f"ready-{mode}.log"))
    return {"mode": mode, "ready_flag": (ready or "(default: auto)").replace(wd, "DIR"),
            "rows": rows}


def starter_overhead(bins, work, raw, n, init_s):
    """The same app under start_server --interval=1 (its default): SIGHUP to "killing old
    workers", against the new worker's own start-up."""
    wd = os.path.join(work, "starter-overhead")
    os.makedirs(wd)
    log = os.path.join(wd, "server.log")
    open(log, "w").close()
    port = free_port()
    argv = [bins["start_server"], f"--port=127.0.0.1:{port}", "--interval=1", "--",
            bins["app"], "--init-seconds", str(init_s), "--threads", "2", "--mode", "inherit"]
    proc = spawn(argv, log)
    rows = []
    try:
        wait_log(log, r"pid \d+ ready on", 30, proc)
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
        pids = set(descendants(proc.pid))
        stop_pids([proc.pid], grace_s=35)
        stop_pids(pids, grace_s=10)
        shutil.copyfile(log, os.path.join(raw, "starter-overhead.log"))
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
    r = subprocess.run(argv, capture_output=True, text=True, preexec_fn=pinned(cpus),
                       timeout=duration + reloads * 30 + 60)
    if r.returncode not in (0, 1) or not os.path.exists(json_path):
        raise RuntimeError(f"soak exited {r.returncode}: {r.stderr.strip()[-500:]}")
    with open(json_path) as f:
        return summarise(json.load(f))


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
                port = free_port()
                log = os.path.join(rwd, f"{KINDS[k]}.log")
                open(log, "w").close()
                alone[k] = (spawn([bins["app"], "--init-seconds", "0", "--threads", "2",
                                     "--listen", f"127.0.0.1:{port}", "--mode", "plain"], log,
                                    cpus=cpus), f"http://127.0.0.1:{port}/", log)
            for k in "AC":
                wait_log(alone[k][2], r"pid \d+ ready on", 30, alone[k][0])
            bwd = os.path.join(rwd, "baton")
            os.makedirs(bwd)
            b = Baton(bins, bwd, None, (), init_s=0.0, cpus=cpus)
            r = {}
            for k in ORDERS[i % len(ORDERS)]:
                kind = KINDS[k]
                jpath = os.path.join(raw, f"steady-{kind}-{shape}-{i + 1}.json")
                if k == "B":
                    url, pids = b.url, [b.proc.pid] + descendants(b.proc.pid)
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
            log(f"steady {shape} round {i + 1}/{p['rounds']} ({ORDERS[i % len(ORDERS)]}): "
                  f"alone {a['rps']:.0f} req/s, baton {z['rps']:.0f}, control {c['rps']:.0f}; "
                  f"baton / alone {z['rps'] / a['rps']:.3f}, control / alone "
                  f"{c['rps'] / a['rps']:.3f}")
        finally:
            if b is not None:
                b.stop()
            stop_pids([x[0].pid for x in alone.values()], grace_s=35)
    for i in range(p["reload_runs"]):
        bwd = os.path.join(wd, f"reloads-{i + 1}")
        os.makedirs(bwd)
        # On the rounds' CPU too: the p99 of these windows is divided by the rounds' p99.
        b = Baton(bins, bwd, None, (), init_s=1.0, cpus=cpus)
        try:
            c0 = task_counters(b.proc.pid)["cpu_ticks"]
            jpath = os.path.join(raw, f"steady-baton_reloads-{shape}-{i + 1}.json")
            x = soak(bins, b.url, shape, p["reload_duration"], jpath, p["reloads"], b.control,
                     cpus=cpus)
            x["baton_cpu_ms"] = ((task_counters(b.proc.pid)["cpu_ticks"] - c0) * 1000
                                 // os.sysconf("SC_CLK_TCK"))
            out["baton_reloads"].append(x)
            log(f"steady {shape} with {p['reloads']} reloads {i + 1}/{p['reload_runs']}: "
                  f"{x['rps']:.0f} req/s, window p99 {fmt_us(x['win_p99_us'])}, "
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
