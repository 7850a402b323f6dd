"""What a cell of the restart-methods benchmarks runs: a server of one restart method (or of a
steering cell), `baton soak` against it, and the summary of soak's JSON with its formatting."""

import json
import os
import subprocess
import sys
import time

from procs import HERE, descendants, init_server, spawn, stop_pids, wait_log


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


class Server:
    """A running server of one method, with how to reload it and how to stop it."""

    def __init__(self, method, bins, workdir, init_s, threads):
        self.method = method
        init_server(self, workdir)
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


def fmt_us(us):
    if us >= 1_000_000:
        return f"{us / 1e6:.2f}s"
    if us >= 1000:
        return f"{us / 1000:.3g}ms"
    return f"{us:.0f}us"


def fmt_kinds(d):
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "-"
