"""The steering suite of bench/run-restart-methods (`--suite steering`): misbehaving apps under
baton run and Server::Starter, and baton's own costs as ratios, all in one run.

Cells (both load shapes, every cell RUNS times, K restarts each, `baton soak` counting failures):
- an app that dies on SIGTERM (no graceful shutdown), restarted K times;
- a new version that accepts connections at once and crashes before it is ready, deployed K
  times (each deploy breaks exactly one start: start_server retries it and the retry starts fine;
  baton run rolls back and keeps the old generation).

Ratios (one baton run per readiness mode, the app alone beside baton run for throughput):
- reload overhead beyond the app's own start-up: `reload --wait` wall time minus the app's
  start-up (its own clock, from main to ready), 1 s start-up app, every readiness mode;
- readiness noticed: baton's "ready after" log line (wall clock, milliseconds) minus the app's
  ready moment (wall clock, microseconds), every readiness mode;
- `reload --wait` on an instantly ready app with nothing in flight;
- throughput under baton run over the app alone (same app, same load, no reloads);
- p99 in reload windows over steady p99 (baton run with K reloads, over baton run without).

Nothing here asserts a figure: the targets of the issue are printed beside the figures.
Python stdlib only; processes are started, tracked and stopped with driver.py's helpers.
"""
import datetime
import json
import os
import re
import signal
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

QUICK = {"runs": 1, "duration": 8, "reloads": 3, "ready_reloads": 3, "instant_reloads": 20,
         "pairs": 1, "steady_duration": 5}
FULL = {"runs": 2, "duration": 20, "reloads": 10, "ready_reloads": 10, "instant_reloads": 100,
        "pairs": 3, "steady_duration": 10}

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
                 baton_flags=()):
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
        self.proc = d.spawn(argv, self.log)
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


def soak(bins, url, shape, duration, json_path, reloads=0, control=None):
    argv = [bins["baton"], "soak", "--url", url, "-c", "50", "-t", "2", "-d", f"{duration}s",
            "--json", json_path, "-q"]
    if shape == "close":
        argv.append("--close")
    if reloads:
        argv += ["--reloads", str(reloads), "--reload-timeout", "30s", "--control", control]
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=duration + reloads * 30 + 60)
    if r.returncode not in (0, 1) or not os.path.exists(json_path):
        raise RuntimeError(f"soak exited {r.returncode}: {r.stderr.strip()[-500:]}")
    with open(json_path) as f:
        return d.summarise(json.load(f))


def steady(bins, work, raw, shape, pairs, duration, reloads):
    """The app alone, under baton run, and under baton run with reloads, alternated `pairs`
    times so that the machine's drift hits all three alike."""
    out = {"alone": [], "baton": [], "baton_reloads": []}
    kinds = list(out)
    for i in range(pairs):
        for kind in kinds[i % 3:] + kinds[:i % 3]:  # each round starts with another kind
            wd = os.path.join(work, f"steady-{shape}-{kind}-{i}")
            os.makedirs(wd)
            jpath = os.path.join(raw, f"steady-{kind}-{shape}-{i + 1}.json")
            if kind == "alone":
                port = d.free_port()
                log = os.path.join(wd, "server.log")
                open(log, "w").close()
                proc = d.spawn([bins["app"], "--init-seconds", "0", "--threads", "2", "--listen",
                                f"127.0.0.1:{port}", "--mode", "plain"], log)
                try:
                    d.wait_log(log, r"pid \d+ ready on", 30, proc)
                    out[kind].append(soak(bins, f"http://127.0.0.1:{port}/", shape, duration,
                                          jpath))
                finally:
                    d.stop_pids([proc.pid], grace_s=35)
            else:
                b = Baton(bins, wd, None, (), init_s=0.0 if kind == "baton" else 1.0)
                try:
                    c0 = d.task_counters(b.proc.pid)["cpu_ticks"]
                    out[kind].append(soak(bins, b.url, shape, duration, jpath,
                                          reloads if kind == "baton_reloads" else 0, b.control))
                    # The supervisor's own CPU time over the run: its share of the machine.
                    out[kind][-1]["baton_cpu_ms"] = ((d.task_counters(b.proc.pid)["cpu_ticks"]
                                                      - c0) * 1000 // os.sysconf("SC_CLK_TCK"))
                finally:
                    b.stop()
            s = out[kind][-1]
            d.log(f"steady {shape} {kind} {i + 1}/{pairs}: {s['rps']:.0f} req/s, p99 "
                  f"{d.fmt_us(s['p99_us'])}, window p99 {d.fmt_us(s['win_p99_us'])}, "
                  f"failed {s['failed']}")
    return out


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
    try:
        total = p["runs"] * 2 * len(d.STEERING_CELLS)
        n = 0
        for run_i in range(1, p["runs"] + 1):
            for shape in d.SHAPES:
                for method in d.STEERING_CELLS:
                    n += 1
                    cell = os.path.join(work, f"{method}-{shape}-{run_i}")
                    os.makedirs(cell)
                    rec = {"method": method, "shape": shape, "run": run_i}
                    srv = None
                    try:
                        srv = d.Server(method, bins, cell, 1.0, 2)
                        jpath = os.path.join(raw, f"{method}-{shape}-run{run_i}.json")
                        argv, rc = d.run_soak(bins, srv, shape, soak_args, jpath)
                        if run_i == 1 and shape == "keepalive":
                            commands[method] = [
                                " ".join(srv.proc.args) + " &",
                                " ".join((f"'{a}'" if " " in a else a) for a in argv)]
                            commands[method] = [c.replace(cell, "DIR").replace(
                                str(srv.port), "PORT").replace(jpath, "OUT.json").replace(
                                    args.build_dir + "/", "build/").replace(
                                        d.sys.executable, "python3")
                                for c in commands[method]]
                        with open(jpath) as f:
                            rec["summary"] = d.summarise(json.load(f))
                        s = rec["summary"]
                        d.log(f"[{n}/{total}] {method} {shape} run {run_i}: {s['requests']} "
                              f"requests, {s['failed']} failed ({d.fmt_kinds(s['failures'])}), "
                              f"restarts {s['reloads_ok']}/{s['reloads_planned']}")
                    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                        rec["error"] = str(e)
                        d.log(f"[{n}/{total}] {method} {shape} run {run_i}: ERROR {e}")
                    finally:
                        if srv is not None:
                            srv.stop()
                            d.shutil.copyfile(srv.log, os.path.join(
                                raw, f"{method}-{shape}-run{run_i}.log"))
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
                ratios["steady"][shape] = steady(bins, work, raw, shape, p["pairs"],
                                                 p["steady_duration"], p["reloads"])
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                ratios["steady"][shape] = {"error": str(e)}
    finally:
        d.shutil.rmtree(work, ignore_errors=True)

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": time.monotonic() - t_start, "mode": "quick" if args.quick else "full",
            "params": p, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "cpus": os.cpu_count(), "network": args.network_note}
    summary = {"meta": meta, "cells": cells, "ratios": ratios, "commands": commands}
    with open(os.path.join(raw, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


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
        if "error" in st or not st.get("alone"):
            continue
        rps = lambda k: statistics.median(x["rps"] for x in st[k])
        out[f"throughput_{shape}"] = rps("baton") / rps("alone")
        steady_p99 = statistics.median(x["p99_us"] for x in st["baton"])
        win_p99 = statistics.median(x["win_p99_us"] for x in st["baton_reloads"])
        out[f"p99_window_over_steady_{shape}"] = win_p99 / steady_p99 if steady_p99 else None
    return out


def targets(summary):
    """The issue's targets, each with this run's figure and whether it was met."""
    r, h = summary["ratios"], ratios_summary(summary)
    met = lambda ok: "met" if ok else "**not met**"
    L = ["Against the issue's targets (this run):", ""]
    fails = {}
    for c in summary["cells"]:
        if "summary" in c:
            side = "baton" if c["method"].startswith("baton") else "starter"
            fails[side] = fails.get(side, 0) + c["summary"]["failed"]
    if fails:
        L.append(f"- failed requests in the misbehaving-app cells: baton run "
                 f"{fails.get('baton', 0)} (target 0: {met(fails.get('baton', 0) == 0)}), "
                 f"Server::Starter {fails.get('starter', 0)}.")
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
            t = h[f"throughput_{shape}"]
            L.append(f"- throughput under baton over the app alone, {d.SHAPES[shape]}: "
                     f"{t:.3f} (target ≥ {THROUGHPUT_TARGET}: {met(t >= THROUGHPUT_TARGET)}; "
                     "see the rounds below: the machine's drift between runs is larger than "
                     "the difference measured); p99 in reload windows over steady p99: "
                     f"{h[f'p99_window_over_steady_{shape}']:.2f}.")
    over = [f"`{mode}` {h['overhead_' + mode + '_ms_p50']:.0f} ms"
            for mode in (m["mode"] for m in r["readiness"]) if f"overhead_{mode}_ms_p50" in h]
    if over:
        L.append(f"- reload overhead beyond the app's own start-up (p50): {', '.join(over)} "
                 "(no target; Server::Starter's is its `--interval`).")
    return L


def render(summary):
    meta, r, p = summary["meta"], summary["ratios"], summary["meta"]["params"]
    L = []
    la0, la1 = meta["loadavg_start"][0], meta["loadavg_end"][0]
    L.append("## Steering: apps that behave badly, and baton's own costs")
    L.append("")
    L.append(f"Written by `bench/run-restart-methods --suite steering"
             f"{' --quick' if meta['mode'] == 'quick' else ''}` on {meta['date']} "
             f"({meta['wall_s']:.0f} s wall, {meta['mode']} mode); {meta['cpus']} CPUs shared "
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
        L.append("| cell | failed (each run) | failures by kind | 1st try failed | requests | "
                 "req/s | reload-window p99 | restart p50 / max | restarts as designed |")
        L.append("|---|---|---|---:|---:|---:|---:|---|---|")
        for method, name in d.STEERING_CELLS.items():
            rs = [c for c in summary["cells"] if c["method"] == method and c["shape"] == shape]
            s = [c["summary"] for c in rs if "summary" in c]
            if not s:
                err = next((c.get("error", "") for c in rs), "not run")
                L.append(f"| {name} | error: {err[:80]} |" + " |" * 7)
                continue
            kinds = {}
            for x in s:
                for k, v in x["failures"].items():
                    kinds[k] = kinds.get(k, 0) + v
            L.append(f"| {name} | {' / '.join(str(x['failed']) for x in s)} | "
                     f"{d.fmt_kinds(kinds)} | "
                     f"{' / '.join(str(x['first_try_failed']) for x in s)} | "
                     f"{sum(x['requests'] for x in s):,} | "
                     f"{statistics.mean(x['rps'] for x in s):,.0f} | "
                     f"{d.fmt_us(statistics.mean(x['win_p99_us'] for x in s))} | "
                     f"{statistics.mean(x['reload_p50_s'] for x in s):.2f}s / "
                     f"{max(x['reload_max_s'] for x in s):.2f}s | "
                     f"{sum(x['reloads_ok'] for x in s)}/{sum(x['reloads_planned'] for x in s)} |")
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
    L.append(f"**Throughput and tail latency** (`baton soak`, 50 connections, "
             f"{p['steady_duration']} s per run; the app alone, under `baton run`, and under "
             f"`baton run` with {p['reloads']} reloads, alternated {p['pairs']} time(s); "
             "medians over the runs):")
    L.append("")
    L.append(f"| load | app alone req/s | under baton req/s | baton / alone (target ≥ "
             f"{THROUGHPUT_TARGET}; each round) | steady p99 (alone) | steady p99 (baton) | "
             "reload-window p99 | window p99 / steady p99 | failed (reload runs) | "
             "baton's CPU time per run |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape, st in r["steady"].items():
        if "error" in st:
            L.append(f"| {d.SHAPES[shape]} | error: {st['error'][:80]} | | | | | | | | |")
            continue
        med = lambda k, f: statistics.median(x[f] for x in st[k])
        a, b = med("alone", "rps"), med("baton", "rps")
        sp, wp = med("baton", "p99_us"), med("baton_reloads", "win_p99_us")
        each = ", ".join(f"{y['rps'] / x['rps']:.2f}" for x, y in zip(st["alone"], st["baton"]))
        L.append(f"| {d.SHAPES[shape]} | {a:,.0f} | {b:,.0f} | {b / a:.3f} ({each}) | "
                 f"{d.fmt_us(med('alone', 'p99_us'))} | {d.fmt_us(sp)} | {d.fmt_us(wp)} | "
                 f"{wp / sp:.2f} | "
                 f"{' / '.join(str(x['failed']) for x in st['baton_reloads'])} | "
                 f"{statistics.median(x.get('baton_cpu_ms', 0) for x in st['baton'])} ms "
                 f"steady, {statistics.median(x.get('baton_cpu_ms', 0) for x in st['baton_reloads'])}"
                 " ms with reloads |")
    L.append("")
    L.append("Reproduce: `bench/run-restart-methods --build build --suite steering` (full: "
             f"{FULL['runs']} runs, {FULL['duration']} s, {FULL['reloads']} restarts per cell, "
             f"{FULL['ready_reloads']} reloads per readiness mode, {FULL['instant_reloads']} "
             f"instant reloads, {FULL['pairs']} throughput rounds; about 12 minutes here) or "
             "`--suite steering --quick` (1 run, 8 s, 3 restarts, 3 / 20 reloads, 1 round; about "
             "4 minutes). Raw: `bench/results/steering/` (soak JSON and server log per run, "
             "`summary.json`).")
    L.append("")
    if summary.get("commands"):
        L.append("The cells' commands (keep-alive, run 1; `--close` added for the other shape):")
        L.append("")
        L.append("```")
        for method, cmds in summary["commands"].items():
            L.append(f"# {d.STEERING_CELLS[method]}")
            L.extend(c.replace(d.REPO + "/", "") for c in cmds)
        L.append("```")
        L.append("")
    return "\n".join(L) + "\n"
