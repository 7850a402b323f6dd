"""The keep-alive takeover suite of bench/run-restart-methods (`--suite takeover`; issue 20):
clients that never retry a request on a reused keep-alive connection, under `baton run` and
under Server::Starter, with an app that drains gracefully on SIGTERM and one that dies on it.

Cells (every cell once per supervisor and app, K restarts each):
- direct: `baton soak --no-retry`, 20 keep-alive connections, open loop at 1,000 req/s, which
  counts every request that fails; wrk (keep-alive, as fast as it can, no retry either) on the
  same server in the same run, for its socket errors and non-2xx answers;
- nginx: nginx in front with upstream keep-alive (`keepalive 16`, HTTP/1.1, no Connection
  header: the usual production setting), wrk sending POSTs (Lua script) and wrk sending GETs
  through it, K restarts fired by this driver. nginx answers 502 to a POST whose reused upstream
  connection the server closed (it retries only idempotent requests on a new one); its access
  log records every answer that is neither 2xx nor the app's own 405 (the bench app answers GET
  only, so a POST that reached it is answered 405 by the app, not by nginx).

And from baton's own log, in the baton cells (all under keep-alive load): the time from the
switch (the new generation's "ready after" line: the steering switches in the same turn of the
loop) to the old generation's drain signal ("draining ...: SIGTERM sent"), both wall clock with
milliseconds, per reload.

Nothing here asserts a figure: the issue's targets are printed beside them. Python stdlib only;
processes are started, tracked and stopped by pid with procs.py's helpers.
"""

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from cells import fmt_kinds, summarise
from procs import (HERE, descendants, free_port, init_server, log, make_portable, source_commit,
                   spawn, stop_pids, wait_log)

# duration: seconds of load per cell (soak's; with K restarts it lasts until the last is done);
# reloads: K; runs: of every cell. Server::Starter needs about 2.2 s a restart (--interval=2), so
# K = 10 fits in 30 s.
FULL = {"duration": 30, "reloads": 10, "runs": 2}
QUICK = {"duration": 8, "reloads": 3, "runs": 1}

APPS = {"drain": "drains gracefully on SIGTERM", "die": "dies on SIGTERM"}
SUPERVISORS = {"starter": "Server::Starter", "baton": "baton run"}
CELLS = {"direct": "keep-alive clients that never retry, and wrk",
         "nginx": "nginx in front with upstream keep-alive, POST and GET"}

SOAK_RATE = 1000  # requests per second in total, open loop
SOAK_CONNECTIONS = 20
WRK_CONNECTIONS = 16  # the direct cell's wrk, 1 thread
NGINX_POST_CONNECTIONS = 8
NGINX_GET_CONNECTIONS = 4
SWITCH_TO_SIGNAL_TARGET_MS = 50.0

_TS = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z baton\[\d+\]: \w+: "
READY_LINE = re.compile(_TS + r"generation (\d+) \(pid (\d+)\) ready after", re.M)
SIGNAL_LINE = re.compile(_TS + r"generation (\d+) \(pid (\d+)\) draining(?: after quiescing "
                         r"(\S+))?: SIG\w+ sent[^(\n]*(?:\(([^)]*)\))?", re.M)
TOOK_OVER_LINE = re.compile(r"generation (\d+) quiet after baton took over (\d+) idle keep-alive "
                            r"connections?(?: and moved (\d+) relayed)?")


class TakeoverServer:
    """`baton-bench-app --mode inherit` (1 s start-up, 2 threads, `--on-term die` for the app
    that dies) under `baton run` (defaults) or `start_server --interval=2`; the attributes of
    cells.Server that run_soak and the reloads need."""

    def __init__(self, supervisor, app, bins, workdir):
        self.supervisor, self.bins = supervisor, bins
        init_server(self, workdir)
        argv = [bins["app"], "--init-seconds", "1", "--threads", "2", "--mode", "inherit"]
        if app == "die":
            argv += ["--on-term", "die"]
        if supervisor == "baton":
            first = [bins["baton"], "run", "--listen", self.addr, "--control", self.control,
                     "--"] + argv
            self.reload_argv = [bins["baton"], "reload", "--wait", "--control", self.control]
        else:
            # No readiness signal: the old worker gets SIGTERM --interval seconds after the new
            # one started; the app needs 1 s, so 2 is the shortest that never stops it early.
            first = [bins["start_server"], f"--port={self.addr}", "--interval=2",
                     "--signal-on-hup=TERM", "--"] + argv
            self.reload_argv = [sys.executable, os.path.join(HERE, "reload.py"), workdir]
        self.supervised = supervisor == "baton"
        self.proc = spawn(first, self.log)
        with open(os.path.join(workdir, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        m = wait_log(self.log, r"pid (\d+) ready on", 30, self.proc)
        with open(os.path.join(workdir, "current"), "w") as f:
            f.write(f"{m.group(1)}\n")
        with open(os.path.join(workdir, "state.json"), "w") as f:
            # reload.py: SIGHUP, then the new worker ready and the old one draining (or gone).
            json.dump({"method": "server-starter" if app == "drain" else "starter-dies",
                       "dir": workdir, "log": self.log, "starter_pid": self.proc.pid}, f)
        if self.supervised:
            end = time.monotonic() + 10
            while time.monotonic() < end and not self.status().get("serving_generation"):
                time.sleep(0.05)

    def status(self):
        r = subprocess.run([self.bins["baton"], "status", "--json", "--control", self.control],
                           capture_output=True, text=True, timeout=10)
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def reload_command(self):
        return shlex.join(self.reload_argv)

    def stop(self):
        with open(os.path.join(self.dir, "pids")) as f:
            tracked = {int(x) for x in f.read().split()}
        tracked.update(x for p in list(tracked) for x in descendants(p))
        stop_pids([self.proc.pid], grace_s=35)  # the supervisor first: it drains its children
        stop_pids(tracked, grace_s=10)


def parse_wrk(text):
    out = {"requests": None, "errors": {}, "non2xx": 0, "rps": None}
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    return out


def start_wrk(bins, url, connections, budget_s, out_path, script=None):
    """wrk, 1 thread, keep-alive, as fast as it goes; bounded by -d, ended by SIGINT."""
    argv = [bins["wrk"], "-t1", "-c", str(connections), "-d", f"{budget_s}s", "--timeout", "5s"]
    if script:
        argv += ["-s", script]
    argv.append(url)
    with open(out_path, "wb") as f:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def end_wrk(proc, out_path):
    """SIGINT (wrk prints its summary), bounded; the parsed summary."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop_pids([proc.pid], grace_s=5)
        raise RuntimeError("wrk did not end within 30 s of SIGINT")
    with open(out_path, errors="replace") as f:
        text = f.read()
    out = parse_wrk(text)
    if out["requests"] is None:
        raise RuntimeError(f"wrk printed no summary: {text.strip()[-300:]}")
    return out


def reload_schedule(srv, p, t0):
    """K restarts, restart i due at (i + 0.5) / K of the run, each after the last has ended (as
    soak schedules them); returns [(ok, seconds)]."""
    out = []
    for i in range(p["reloads"]):
        due = t0 + (i + 0.5) / p["reloads"] * p["duration"]
        time.sleep(max(0.0, due - time.monotonic()))
        s = time.monotonic()
        try:
            r = subprocess.run(srv.reload_argv, capture_output=True, text=True, timeout=60)
            out.append((r.returncode == 0, time.monotonic() - s, r.stderr.strip()[-200:]))
        except subprocess.TimeoutExpired:
            out.append((False, time.monotonic() - s, "timed out after 60 s"))
    return out


def run_direct(bins, srv, p, raw, name, rec):
    budget = p["duration"] + p["reloads"] * 30 + 60
    wrk_out = os.path.join(raw, f"{name}-wrk.txt")
    wrk = start_wrk(bins, srv.url, WRK_CONNECTIONS, budget, wrk_out)
    jpath = os.path.join(raw, f"{name}.json")
    argv = [bins["baton"], "soak", "--url", srv.url, "--no-retry", "--rate", str(SOAK_RATE), "-c",
            str(SOAK_CONNECTIONS), "-t", "1", "-d", f"{p['duration']}s", "--reloads",
            str(p["reloads"]), "--reload-timeout", "30s", "--json", jpath, "-q"]
    argv += (["--control", srv.control] if srv.supervised
             else ["--reload-cmd", srv.reload_command()])
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=budget)
    finally:
        rec["wrk"] = end_wrk(wrk, wrk_out)
    if r.returncode not in (0, 1) or not os.path.exists(jpath):
        raise RuntimeError(f"soak exited {r.returncode}: {r.stderr.strip()[-500:]}")
    with open(jpath) as f:
        rec["soak"] = summarise(json.load(f))
    return [shlex.join(argv).replace(jpath, "OUT.json"),
            shlex.join(wrk.args) + " &  # ended by SIGINT after soak"]


NGINX_CONF = """{user}worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 512; }}
http {{
  # Every answer but a 2xx and the app's own 405 (it answers GET only): nginx's 502s.
  map $status $unexpected {{ ~^2 0; 405 0; default 1; }}
  log_format brief '$request_method $status $upstream_status';
  access_log {d}/access.log brief if=$unexpected;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream app {{ server {upstream}; keepalive 16; }}
  server {{
    listen {front};
    location / {{ proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Connection ""; }}
  }}
}}
"""

POST_LUA = ('wrk.method = "POST"\nwrk.body = "item=42&note=takeover"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')


def start_nginx(bins, srv, d):
    front = f"127.0.0.1:{free_port()}"
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(user="user root;\n" if os.geteuid() == 0 else "", d=d,
                                  upstream=srv.addr, front=front))
    proc = spawn([bins["nginx"], "-p", d, "-c", conf, "-g", "daemon off;"],
                 os.path.join(d, "nginx.out"))
    with open(os.path.join(srv.dir, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")  # stopped with the server's processes, whatever happens
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://{front}/", timeout=1) as r:
                if r.status == 200:
                    return proc, front
        except OSError:
            time.sleep(0.05)
    with open(os.path.join(d, "error.log"), errors="replace") as f:
        raise RuntimeError(f"nginx not answering on {front}: {f.read()[-500:]}")


def stop_nginx(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master exits
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    stop_pids([proc.pid] + descendants(proc.pid), grace_s=5)


def run_nginx(bins, srv, p, raw, name, rec):
    d = os.path.join(srv.dir, "nginx")
    os.makedirs(d)
    proxy, front = start_nginx(bins, srv, d)
    lua = os.path.join(d, "post.lua")
    with open(lua, "w") as f:
        f.write(POST_LUA)
    budget = p["duration"] + p["reloads"] * 30 + 60
    url = f"http://{front}/"
    outs = {k: os.path.join(raw, f"{name}-wrk-{k}.txt") for k in ("post", "get")}
    try:
        posts = start_wrk(bins, url, NGINX_POST_CONNECTIONS, budget, outs["post"], lua)
        gets = start_wrk(bins, url, NGINX_GET_CONNECTIONS, budget, outs["get"])
        try:
            t0 = time.monotonic()
            reloads = reload_schedule(srv, p, t0)
            time.sleep(max(0.0, t0 + p["duration"] - time.monotonic()))
        finally:
            rec["wrk_post"] = end_wrk(posts, outs["post"])
            rec["wrk_get"] = end_wrk(gets, outs["get"])
    finally:
        stop_nginx(proxy)
    rec["reloads"] = {"ok": sum(1 for r in reloads if r[0]), "planned": p["reloads"],
                      "s": [round(r[1], 3) for r in reloads],
                      "errors": [r[2] for r in reloads if not r[0]]}
    answers = {}
    with open(os.path.join(d, "access.log"), errors="replace") as f:
        for line in f:
            key = " ".join(line.split()[:2])
            answers[key] = answers.get(key, 0) + 1
    rec["nginx_answers"] = answers  # "METHOD STATUS": count, of all but 2xx and 405
    with open(os.path.join(d, "error.log"), errors="replace") as f:
        errors = f.read()
    rec["nginx_premature"] = errors.count("prematurely closed")
    rec["nginx_upstream_errors"] = len(re.findall(r"\[error\].*upstream", errors))
    shutil.copyfile(os.path.join(d, "error.log"), os.path.join(raw, f"{name}-nginx-error.log"))
    return [f"nginx -p DIR -c DIR/nginx.conf -g 'daemon off;' &  # {front} -> the server",
            shlex.join(posts.args) + " &", shlex.join(gets.args) + " &",
            f"# {p['reloads']} x {srv.reload_command()}, restart i at (i + 0.5) / "
            f"{p['reloads']} of {p['duration']} s; then SIGINT to both wrk"]


def switch_to_signal(text):
    """Per reload in a baton run's log: the new generation's ready line (the switch follows in
    the same turn of the loop) to the old generation's drain signal line, in ms, with the signal
    line's reason and baton's own "after quiescing" figure."""
    parse = lambda ts: datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f")
    ready = {int(m.group(2)): parse(m.group(1)) for m in READY_LINE.finditer(text)}
    took = {int(m.group(1)): (int(m.group(2)), int(m.group(3) or 0))
            for m in TOOK_OVER_LINE.finditer(text)}
    rows = []
    for m in SIGNAL_LINE.finditer(text):
        gen = int(m.group(2))
        if gen + 1 not in ready:
            continue  # the last generation, stopped at the end of the cell
        ms = (parse(m.group(1)) - ready[gen + 1]).total_seconds() * 1000
        rows.append({"generation": gen, "ms": round(ms, 1), "quiescing": m.group(4),
                     "why": m.group(5) or "", "taken_over": took.get(gen, (0, 0))[0],
                     "moved": took.get(gen, (0, 0))[1]})
    return rows


def run(bins, args, raw):
    """The whole suite; returns the summary (also written to raw/summary.json)."""
    p = dict(QUICK if args.quick else FULL)
    os.makedirs(raw, exist_ok=True)
    for f in os.listdir(raw):  # this suite's files only, none left from an earlier run
        if re.match(r"(direct|nginx)-.*\.(json|log|txt)$", f):
            os.remove(os.path.join(raw, f))
    bins = dict(bins, nginx=shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else ""))
    work = tempfile.mkdtemp(prefix="baton-takeover-bench.")
    t_start = time.monotonic()
    load_start = os.getloadavg()
    plan = [(cell, app, sup, r) for r in range(1, p["runs"] + 1) for cell in CELLS
            for app in APPS for sup in SUPERVISORS]
    cells, commands = [], {}
    try:
        for n, (cell, app, sup, run_i) in enumerate(plan, 1):
            name = f"{cell}-{app}-{sup}-run{run_i}"
            d = os.path.join(work, name)
            os.makedirs(d)
            rec = {"cell": cell, "app": app, "supervisor": sup, "run": run_i,
                   "loadavg_start": os.getloadavg()}
            srv = None
            try:
                if cell == "nginx" and not bins["nginx"]:
                    raise RuntimeError("nginx is not installed")
                srv = TakeoverServer(sup, app, bins, d)
                run_cell = run_direct if cell == "direct" else run_nginx
                cmds = run_cell(bins, srv, p, raw, name, rec)
                if srv.supervised:
                    st = srv.status()
                    rec["keepalive"] = st.get("keepalive", {})
                    rec["drain_kills"] = st.get("counters", {}).get("drain_kills")
                if f"{cell}-{sup}" not in commands:
                    commands[f"{cell}-{sup}"] = [shlex.join(srv.proc.args) + " &"] + cmds
                log(f"[{n}/{len(plan)}] {name}: {one_line(rec)}")
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                rec["error"] = str(e)
                log(f"[{n}/{len(plan)}] {name}: ERROR {e}")
            finally:
                if srv is not None:
                    srv.stop()
                    shutil.copyfile(srv.log, os.path.join(raw, f"{name}.log"))
                    if sup == "baton":
                        with open(srv.log, errors="replace") as f:
                            rec["switch_to_signal"] = switch_to_signal(f.read())
            rec["loadavg_end"] = os.getloadavg()
            cells.append(rec)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for c in commands.values():  # per-cell directories and ports out of the commands
        c[:] = [re.sub(r"\S*/baton-takeover-bench\.\w+/[\w-]+", "DIR",
                       re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", x)) for x in c]
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": time.monotonic() - t_start, "mode": "quick" if args.quick else "full",
            "params": p, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "cpus": os.cpu_count(), "network": args.network_note, "commit": source_commit(),
            "nginx": subprocess.run([bins["nginx"], "-v"], capture_output=True,
                                    text=True).stderr.strip() if bins["nginx"] else "-"}
    summary = {"meta": meta, "cells": cells, "commands": commands}
    with open(os.path.join(raw, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    make_portable(raw, args.build_dir)
    with open(os.path.join(raw, "summary.json")) as f:
        return json.load(f)


def one_line(rec):
    """A cell's figures on one line, for the log."""
    out = []
    if "soak" in rec:
        s = rec["soak"]
        out.append(f"soak {s['requests']} requests, {s['failed']} failed "
                   f"({fmt_kinds(s['failures'])}), restarts {s['reloads_ok']}/"
                   f"{s['reloads_planned']}")
    for k in ("wrk", "wrk_post", "wrk_get"):
        if k in rec:
            w = rec[k]
            errs = ", ".join(f"{e} {v}" for e, v in w["errors"].items() if v) or "0"
            out.append(f"{k} {w['requests']} requests, socket errors {errs}, non-2xx "
                       f"{w['non2xx']}")
    if "nginx_answers" in rec:
        out.append(f"nginx unexpected answers {rec['nginx_answers'] or '{}'}, restarts "
                   f"{rec['reloads']['ok']}/{rec['reloads']['planned']}")
    return "; ".join(out)
