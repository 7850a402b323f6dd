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
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # the suite's modules, imported below: no __pycache__ in the tree

# The modules of the suite import each other in one direction: driver.py (this command line) ->
# steering.py (the steering suite) -> steering_ratios.py, steering_report.py -> steering_plan.py,
# cells.py (servers, soak) -> procs.py (processes, files); takeover.py, takeover_report.py (the
# keep-alive takeover suite) -> cells.py, procs.py.
import steering  # noqa: E402
import steering_report  # noqa: E402
import takeover  # noqa: E402
import takeover_report  # noqa: E402
from cells import METHODS, SHAPES, Server, fmt_kinds, fmt_us, run_soak, summarise  # noqa: E402
from methods_report import render  # noqa: E402
from procs import (REPO, alive, die, log, make_portable, memory, set_subreaper,  # noqa: E402
                   source_commit, task_counters)


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
                    help="rewrite RESULTS from RAW/summary.json (and the takeover suite's "
                    "results from its own) without running anything")
    ap.add_argument("--raw", default=os.path.join(REPO, "bench", "results", "restart_methods"))
    ap.add_argument("--suite", choices=("methods", "steering", "takeover", "all"),
                    default="methods",
                    help="methods: the restart methods above; steering: misbehaving apps under "
                    "baton and Server::Starter, and baton's ratios (steering.py); takeover: "
                    "keep-alive clients and nginx that never retry, baton beside "
                    "Server::Starter (takeover.py); all: the three")
    ap.add_argument("--quick", action="store_true",
                    help="steering and takeover suites: fewer and shorter runs, a check that "
                    "everything runs (steering: about 4 minutes instead of 13; takeover: about "
                    "3 instead of 8)")
    ap.add_argument("--readme-steering", action="store_true",
                    help="print the README's block of the steering suite's figures from "
                    "STEERING_RAW/summary.json, run nothing")
    ap.add_argument("--steering-raw", default=os.path.join(REPO, "bench", "results", "steering"))
    ap.add_argument("--steering-results",
                    default=os.path.join(REPO, "bench", "results", "steering.md"))
    ap.add_argument("--takeover-raw", default=os.path.join(REPO, "bench", "results", "takeover"))
    ap.add_argument("--takeover-results",
                    default=os.path.join(REPO, "bench", "results", "takeover.md"))
    args = ap.parse_args()

    if args.render_only:
        path = os.path.join(args.takeover_raw, "summary.json")
        if os.path.exists(path):
            with open(path) as f, open(args.takeover_results, "w") as out:
                out.write(takeover_report.render(json.load(f)))
        write_results(args)
        return 0
    if args.readme_steering:
        with open(os.path.join(args.steering_raw, "summary.json")) as f:
            print(steering_report.readme(json.load(f)), end="")
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
        args.network_note = network
        args.build_dir = build
        summary = steering.run(bins, args, args.steering_raw)
        with open(args.steering_results, "w") as f:
            f.write(steering_report.render(summary))
        log(f"wrote {args.steering_results}: {steering_report.ratios_summary(summary)}")
        rc = 1 if any("error" in c for c in summary["cells"]) else 0
    if args.suite in ("takeover", "all"):
        args.network_note = network
        args.build_dir = build
        summary = takeover.run(bins, args, args.takeover_raw)
        with open(args.takeover_results, "w") as f:
            f.write(takeover_report.render(summary))
        log(f"wrote {args.takeover_results}: {takeover_report.headline(summary)}")
        rc = 1 if rc or any("error" in c for c in summary["cells"]) else 0
    if args.suite in ("steering", "takeover"):
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
    """RESULTS.md: the restart methods from their summary.json, then the steering and takeover
    suites' sections from their own (each section says when it was run)."""
    text = ""
    path = os.path.join(args.raw, "summary.json")
    if os.path.exists(path):
        with open(path) as f:
            d = json.load(f)
        text = render(d["cells"], d["supervisor"], d["wrk"], d["meta"], d["commands"])
    path = os.path.join(args.steering_raw, "summary.json")
    if os.path.exists(path):
        with open(path) as f:
            text += "\n" + steering_report.render(json.load(f))
    path = os.path.join(args.takeover_raw, "summary.json")
    if os.path.exists(path):
        with open(path) as f:
            text += "\n" + takeover_report.render(json.load(f))
    with open(args.results, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
