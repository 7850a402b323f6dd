#!/usr/bin/env python3
"""reload.py STATE_DIR: one restart of the server described in STATE_DIR, for `baton soak
--reload-cmd`. Used by the methods that have no reload command of their own (all but baton run).

It returns (exit 0) once the restart has happened: the new instance logged "pid N ready on" and
the old one logged "pid O draining" (kill-start: the old one has exited and the new one is ready),
so the reload time soak measures is "command to old draining". Any failure is one line on stderr
and exit 1. STATE_DIR/state.json is written by driver.py; STATE_DIR/current holds the serving pid.
Every process started is appended to STATE_DIR/pids, so the driver can stop it by pid.

The steering cells (steering.py): starter-dies as server-starter, but the old worker dies on
SIGTERM instead of draining, so "restarted" is its exit; starter-crash and baton-crash first
create STATE_DIR/broken, which makes the next instance the broken new version (it accepts, then
crashes). start_server retries a worker that died within --interval, and the retry starts fine,
so starter-crash returns once that retry serves and the old worker drains; baton run rolls back
instead, so baton-crash returns 0 when `baton reload --wait` reported the failure (exit 1) and
the broken instance did start: the restart was handled as designed.

kill-start-port (steering.py's runtime cells: Python http.server, Node): as kill-start, for an
unmodified app that prints no ready line: the new one is ready once its port accepts.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

TIMEOUT_S = 30


def log_reader(path):
    """Returns a function giving the log text written since this call."""
    start = os.path.getsize(path)

    def read():
        with open(path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")
    return read


def gone(pid):
    """True once pid has exited (zombies count: their sockets are closed)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def wait_for(what, predicate):
    end = time.monotonic() + TIMEOUT_S
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.003)
    sys.exit(f"reload.py: timed out after {TIMEOUT_S}s waiting for {what}")


def start(state, argv):
    with open(state["log"], "ab") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True)
    with open(os.path.join(state["dir"], "pids"), "a") as f:
        f.write(f"{p.pid}\n")
    return p.pid


def accepting(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def ready_pid(text, not_pid):
    for m in re.finditer(r"pid (\d+) ready on", text):
        if int(m.group(1)) != not_pid:
            return int(m.group(1))
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: reload.py STATE_DIR")
    with open(os.path.join(sys.argv[1], "state.json")) as f:
        state = json.load(f)
    current_file = os.path.join(state["dir"], "current")
    with open(current_file) as f:
        old = int(f.read())
    method = state["method"]
    new_log = log_reader(state["log"])
    draining = f"pid {old} draining"

    if method == "kill-start":
        os.kill(old, signal.SIGTERM)
        wait_for(f"pid {old} to exit", lambda: gone(old))
        new = start(state, state["app"])
        wait_for(f"pid {new} ready", lambda: f"pid {new} ready on" in new_log())
    elif method == "kill-start-port":
        os.kill(old, signal.SIGTERM)
        wait_for(f"pid {old} to exit", lambda: gone(old))
        new = start(state, state["app"])
        wait_for(f"port {state['port']} accepting", lambda: accepting(state["port"]))
    elif method in ("bind-retry", "reuseport"):
        new = start(state, state["app"] + ["--replace-pid", str(old)])
        wait_for(f"pid {new} ready", lambda: f"pid {new} ready on" in new_log())
        wait_for(draining, lambda: draining in new_log())
    elif method == "baton-handover":
        new = start(state, state["app"])
        wait_for(f"pid {new} ready", lambda: f"pid {new} ready on" in new_log())
        wait_for(draining, lambda: draining in new_log())
    elif method == "server-starter":
        os.kill(state["starter_pid"], signal.SIGHUP)
        new = wait_for("a new worker ready", lambda: ready_pid(new_log(), old))
        wait_for(draining, lambda: draining in new_log())
    elif method == "starter-dies":
        os.kill(state["starter_pid"], signal.SIGHUP)
        new = wait_for("a new worker ready", lambda: ready_pid(new_log(), old))
        wait_for(f"pid {old} to exit", lambda: gone(old))
    elif method == "starter-crash":
        open(state["marker"], "w").close()
        os.kill(state["starter_pid"], signal.SIGHUP)
        wait_for("the broken worker", lambda: "broken: accepting" in new_log())
        new = wait_for("a new worker ready", lambda: ready_pid(new_log(), old))
        wait_for(draining, lambda: draining in new_log())
    elif method == "baton-crash":
        open(state["marker"], "w").close()
        r = subprocess.run(state["reload"], capture_output=True, text=True, timeout=TIMEOUT_S)
        if r.returncode != 1 or "broken: accepting" not in new_log():
            sys.exit(f"reload.py: expected a rolled-back reload of a broken version; reload "
                     f"exited {r.returncode}: {r.stderr.strip()[-300:]}")
        return
    else:
        sys.exit(f"reload.py: unknown method {method!r}")
    tmp = current_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{new}\n")
    os.replace(tmp, current_file)


if __name__ == "__main__":
    main()
