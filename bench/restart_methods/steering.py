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
Python stdlib only; processes are started, tracked and stopped with procs.py's helpers.
"""

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

from cells import SHAPES, STEERING_CELLS, Server, fmt_kinds, run_soak, summarise
from procs import (HERE, descendants, init_server, log, make_portable, source_commit, spawn,
                   stop_pids)
from steering_plan import (FULL, MODES, QUICK, RUNTIME_CELLS, RUNTIME_SHAPES, SIDE_CONNECTIONS,
                           SIDE_RATE)
from steering_ratios import INSTANT, instant, readiness, starter_overhead, steady


class RuntimeServer:
    """An unmodified runtime that binds its own port and dies on SIGTERM (RUNTIME_CELLS), under
    `baton run --adopt` or alone (restarted by reload.py: SIGTERM, wait for the exit, start it
    again, wait until the port accepts). The same attributes as cells.Server, for run_soak."""

    def __init__(self, method, bins, workdir):
        self.method = method
        init_server(self, workdir)
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
            self.reload_argv = [sys.executable, os.path.join(HERE, "reload.py"), workdir]
        self.supervised = first[0] == bins["baton"]
        self.proc = spawn(first, self.log)
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
        tracked.update(x for p in list(tracked) for x in descendants(p))
        stop_pids([self.proc.pid], grace_s=35)
        stop_pids(tracked, grace_s=10)


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
        stop_pids([proc.pid], grace_s=5)
        raise RuntimeError("the side stream's soak did not end within 60 s of SIGINT")
    if proc.returncode not in (0, 1) or not os.path.exists(json_path):
        raise RuntimeError(f"side stream soak exited {proc.returncode}: {err.strip()[-500:]}")
    with open(json_path) as f:
        return summarise(json.load(f))


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
    work = tempfile.mkdtemp(prefix="baton-steering-bench.")
    t_start = time.monotonic()
    load_start = os.getloadavg()
    cells, commands = [], {}
    soak_args = SimpleNamespace(connections=50, load_threads=2, duration=p["duration"],
                                reloads=p["reloads"])
    # Python and Node for the runtime cells: the system's own (a pyenv shim is a shell script,
    # and its start-up would be in every restart).
    bins = dict(bins, python="/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
                else sys.executable, node=shutil.which("node") or "")
    for f in os.listdir(raw):  # this suite's raw files only: none left from an earlier layout
        if re.match(r"(steady|starter|baton|kill-start)-.*\.(json|log)$", f):
            os.remove(os.path.join(raw, f))
    plan = [(m, shape, run_i) for run_i in range(1, p["runs"] + 1) for shape in SHAPES
            for m in STEERING_CELLS]
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
                srv = RuntimeServer(method, bins, cell) if runtime else Server(
                    method, bins, cell, 1.0, 2)
                jpath = os.path.join(raw, f"{method}-{shape}-run{run_i}.json")
                side_json = os.path.join(raw, f"{method}-{shape}-run{run_i}-new-connections.json")
                if shape == "keepalive" and method.endswith("-crash"):
                    side = side_stream(bins, srv.url, side_json,
                                       soak_args.duration + p["reloads"] * 30 + 60)
                try:
                    argv, rc = run_soak(bins, srv, shape, soak_args, jpath)
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
                        .replace(sys.executable, "python3") for c in cmds]
                with open(jpath) as f:
                    rec["summary"] = summarise(json.load(f))
                s = rec["summary"]
                extra = ""
                if "side" in rec:
                    extra = (f"; new connections alongside: {rec['side']['requests']} requests, "
                             f"{rec['side']['failed']} failed")
                log(f"[{n}/{len(plan)}] {method} {shape} run {run_i}: {s['requests']} "
                      f"requests, {s['failed']} failed ({fmt_kinds(s['failures'])}), "
                      f"restarts {s['reloads_ok']}/{s['reloads_planned']}{extra}")
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                rec["error"] = str(e)
                log(f"[{n}/{len(plan)}] {method} {shape} run {run_i}: ERROR {e}")
            finally:
                if srv is not None:
                    srv.stop()
                    copy_log(srv.log, os.path.join(raw, f"{method}-{shape}-run{run_i}.log"))
            cells.append(rec)

        ratios = {"readiness": [], "instant": [], "steady": {}}
        for mode in MODES:
            log(f"readiness {mode}: {p['ready_reloads']} reloads")
            try:
                ratios["readiness"].append(readiness(bins, work, raw, mode,
                                                     p["ready_reloads"], 1.0))
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                ratios["readiness"].append({"mode": mode, "error": str(e), "rows": []})
        log("Server::Starter reload overhead")
        try:
            ratios["starter"] = starter_overhead(bins, work, raw, p["ready_reloads"], 1.0)
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            ratios["starter"] = {"error": str(e), "rows": []}
        for label, mode, flags in INSTANT:
            log(f"instant reloads ({label}): {p['instant_reloads']}")
            try:
                ratios["instant"].append(instant(bins, work, label, mode, flags,
                                                 p["instant_reloads"]))
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                ratios["instant"].append({"mode": label, "error": str(e), "ms": [], "failed": 0})
        for shape in SHAPES:
            try:
                ratios["steady"][shape] = steady(bins, work, raw, shape, p)
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                ratios["steady"][shape] = {"error": str(e)}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": time.monotonic() - t_start, "mode": "quick" if args.quick else "full",
            "params": p, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "cpus": os.cpu_count(), "network": args.network_note, "commit": source_commit()}
    summary = {"meta": meta, "cells": cells, "ratios": ratios, "commands": commands}
    with open(os.path.join(raw, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    make_portable(raw, args.build_dir)
    with open(os.path.join(raw, "summary.json")) as f:
        return json.load(f)
