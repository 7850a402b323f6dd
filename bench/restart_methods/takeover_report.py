"""The takeover suite's report: bench/results/takeover.md (also appended to bench/RESULTS.md),
from the suite's summary.json."""

from cells import fmt_kinds
from steering_plan import pct
from takeover import (APPS, NGINX_GET_CONNECTIONS, NGINX_POST_CONNECTIONS, SOAK_CONNECTIONS,
                      SOAK_RATE, SUPERVISORS, SWITCH_TO_SIGNAL_TARGET_MS, WRK_CONNECTIONS)


def _cells(summary, cell):
    """(app, supervisor, run record) of one kind of cell, every run, in the tables' order."""
    return [(app, sup, c) for app in APPS for sup in SUPERVISORS for c in summary["cells"]
            if c["cell"] == cell and c["app"] == app and c["supervisor"] == sup]


def _socket_errors(w):
    return ", ".join(f"{k} {v}" for k, v in w["errors"].items() if v) or "0"


def _load(c):
    return f"{c['loadavg_start'][0]:.1f} / {c['loadavg_end'][0]:.1f}"


def _keepalive(c):
    k = c.get("keepalive")
    if not k:
        return "-"
    return (f"taken over {k.get('taken_over', 0)}, relayed {k.get('relayed', 0)}, moved "
            f"{k.get('detached', 0)}, refused {k.get('refused', 0)}, closed at drain "
            f"{k.get('closed_at_drain', 0)}")


def _nginx_502(c, method):
    return c["nginx_answers"].get(f"{method} 502", 0)


def _nginx_other(c):
    return {k: v for k, v in c["nginx_answers"].items() if not k.endswith(" 502")}


def timing(summary):
    """Every reload's switch-to-signal row of the baton cells, by app."""
    out = {}
    for c in summary["cells"]:
        if c["supervisor"] == "baton":
            out.setdefault(c["app"], []).extend(c.get("switch_to_signal", []))
    return out


def headline(summary):
    """The figures that matter, on one line, for the log."""
    parts = []
    for c in summary["cells"]:
        name = f"{c['cell']}-{c['app']}-{c['supervisor']}-run{c.get('run', 1)}"
        if "error" in c:
            parts.append(f"{name} error")
        elif c["cell"] == "direct":
            parts.append(f"{name} {c['soak']['failed']} failed, wrk {_socket_errors(c['wrk'])}")
        else:
            parts.append(f"{name} 502 POST {_nginx_502(c, 'POST')} GET {_nginx_502(c, 'GET')}")
    for app, rows in timing(summary).items():
        ms = [r["ms"] for r in rows]
        if ms:
            parts.append(f"switch to signal ({app}) p90 {pct(ms, 90):.0f} ms")
    return "; ".join(parts)


def render(summary):
    meta, p = summary["meta"], summary["meta"]["params"]
    K = p["reloads"]
    L = ["## Keep-alive takeover: clients that never retry, baton beside Server::Starter", ""]
    L.append(f"Written by `bench/run-restart-methods --suite takeover"
             f"{' --quick' if meta['mode'] == 'quick' else ''}` on {meta['date']} "
             f"({meta['wall_s']:.0f} s wall, {meta['mode']} mode"
             f"{', commit ' + meta['commit'] if 'commit' in meta else ''}); {meta['cpus']} CPUs "
             f"shared with other builds and tests (load average {meta['loadavg_start'][0]:.1f} "
             f"at the start, {meta['loadavg_end'][0]:.1f} at the end; each cell's is in its "
             f"row); {meta['network']}; {meta.get('nginx', '')}. **The machine was busy: "
             "request counts and milliseconds are those of a loaded machine; failure counts are "
             "the figures to compare.**")
    L.append("")
    L.append(f"The app: `baton-bench-app --mode inherit` (1 s start-up, 2 threads; the request "
             f"loop of `examples/http_worker.cc`), either draining gracefully on SIGTERM (stops "
             f"accepting, answers what is in progress with `Connection: close`, closes idle "
             f"connections after 250 ms) or dying on it (`--on-term die`). Under `baton run` "
             f"with no flags (`--ready auto`, `--drain watch`: idle keep-alive connections of "
             f"the old generation are taken over, docs/drain.md) and under `start_server "
             f"--interval=2`. {K} restarts per run (restart i at (i + 0.5) / {K} of "
             f"{p['duration']} s, each after the last has ended), {p.get('runs', 1)} run(s) of "
             "each cell, one cell at a time. Nothing here retries a request.")
    L.append("")
    L.extend(_targets(summary))
    L.append("")
    L.append(f"### Keep-alive clients that never retry, and wrk, {K} restarts")
    L.append("")
    L.append(f"`baton soak --no-retry --rate {SOAK_RATE} -c {SOAK_CONNECTIONS}` (open loop, "
             f"keep-alive, a request on a reused connection the server closed is a failure), "
             f"and in the same run `wrk -t1 -c{WRK_CONNECTIONS}` (keep-alive, as fast as it "
             "goes; ended by SIGINT once soak is done). wrk's read errors are requests on a "
             "connection the server closed; a refused connect is a write error to wrk.")
    L.append("")
    L.append("| app | supervisor | run | soak failed | by kind | soak requests | restarts ok | "
             "wrk socket errors | wrk non-2xx | wrk requests | baton: keep-alive connections | "
             "load avg (start / end) |")
    L.append("|---|---|---:|---:|---|---:|---|---|---:|---:|---|---|")
    for app, sup, c in _cells(summary, "direct"):
        if "error" in c or "soak" not in c:
            L.append(f"| {APPS[app]} | {SUPERVISORS[sup]} | {c['run']} | error: "
                     f"{c.get('error', '?')[:100]} |" + " |" * 8)
            continue
        s, w = c["soak"], c["wrk"]
        L.append(f"| {APPS[app]} | {SUPERVISORS[sup]} | {c['run']} | **{s['failed']}** | "
                 f"{fmt_kinds(s['failures'])} | {s['requests']:,} | "
                 f"{s['reloads_ok']}/{s['reloads_planned']} | {_socket_errors(w)} | "
                 f"{w['non2xx']} | {w['requests']:,} | {_keepalive(c)} | {_load(c)} |")
    L.append("")
    L.append(f"### nginx in front with upstream keep-alive, POST and GET, {K} restarts")
    L.append("")
    L.append(f"nginx (1 worker) proxying to the server with `keepalive 16; proxy_http_version "
             f"1.1; proxy_set_header Connection \"\";` (the config of "
             f"`tests/e2e/keepalive_takeover_e2e_test.cc`); `wrk -t1 -c{NGINX_POST_CONNECTIONS}"
             f" -s post.lua` sends POSTs and `wrk -t1 -c{NGINX_GET_CONNECTIONS}` GETs through "
             "it, both as fast as they go. nginx answers 502 when the server closes a reused "
             "upstream connection under a POST (it retries only an idempotent request on a new "
             "one). The 502s are counted from nginx's access log, which records every answer "
             "that is neither 2xx nor the app's own 405 (the app answers GET only, so a POST "
             "that reached it is answered 405: wrk's non-2xx for POST is every POST). "
             "*prematurely closed*: nginx's error-log lines \"upstream prematurely closed "
             "connection\".")
    L.append("")
    L.append("| app | supervisor | run | POST 502 | GET 502 | other unexpected answers | POST "
             "requests | GET requests | wrk socket errors (POST; GET) | prematurely closed | "
             "restarts ok | baton: keep-alive connections | load avg (start / end) |")
    L.append("|---|---|---:|---:|---:|---|---:|---:|---|---:|---|---|---|")
    for app, sup, c in _cells(summary, "nginx"):
        if "error" in c or "nginx_answers" not in c:
            L.append(f"| {APPS[app]} | {SUPERVISORS[sup]} | {c['run']} | error: "
                     f"{c.get('error', '?')[:100]} |" + " |" * 9)
            continue
        other = _nginx_other(c)
        L.append(f"| {APPS[app]} | {SUPERVISORS[sup]} | {c['run']} | "
                 f"**{_nginx_502(c, 'POST')}** | "
                 f"**{_nginx_502(c, 'GET')}** | {fmt_kinds(other)} | "
                 f"{c['wrk_post']['requests']:,} | {c['wrk_get']['requests']:,} | "
                 f"{_socket_errors(c['wrk_post'])}; {_socket_errors(c['wrk_get'])} | "
                 f"{c['nginx_premature']} | {c['reloads']['ok']}/{c['reloads']['planned']} | "
                 f"{_keepalive(c)} | {_load(c)} |")
    L.append("")
    L.extend(_timing_section(summary))
    L.append("")
    L.append("### Reproduce")
    L.append("")
    L.append("```")
    L.append("ninja -C build baton baton-bench-app baton-example-http baton_adopt")
    L.append(f"bench/run-restart-methods --build build --suite takeover   # "
             f"{meta['wall_s'] / 60:.0f} min here")
    L.append("bench/run-restart-methods --build build --suite takeover --quick   # 3 restarts, "
             "8 s: a check")
    L.append("```")
    L.append("")
    L.append("The commands of the cells (`PORT` and `DIR` are per cell; the app that dies adds "
             "`--on-term die`):")
    L.append("")
    L.append("```")
    for name, cmds in summary["commands"].items():
        L.append(f"# {name}")
        L.extend(cmds)
    L.append("```")
    L.append("")
    L.append("Raw results: `bench/results/takeover/` (`CELL-APP-SUPERVISOR-runN.json`: soak's "
             "JSON; "
             "`.log`: the supervisor's and the app's lines; `-wrk*.txt`: wrk's output; "
             "`-nginx-error.log`; `summary.json`: every figure above).")
    return "\n".join(L) + "\n"


def _targets(summary):
    met = lambda ok: "met" if ok else "**not met**"
    L = ["Against issue 20's targets (this run; baton's figures, Server::Starter's beside):", ""]
    for cell, what in (("direct", "keep-alive clients that never retry: failed requests"),
                       ("nginx", "nginx with upstream keep-alive: 502s (POST + GET)")):
        for app in APPS:
            fig = {}  # supervisor: [(failures, wrk socket errors)] per run
            for a, sup, c in _cells(summary, cell):
                if a != app or "error" in c:
                    continue
                if cell == "direct":
                    fig.setdefault(sup, []).append((c["soak"]["failed"],
                                                    sum(c["wrk"]["errors"].values())))
                else:
                    fig.setdefault(sup, []).append(
                        (_nginx_502(c, "POST") + _nginx_502(c, "GET"), 0))
            if "baton" not in fig:
                continue
            runs = lambda sup, i: " / ".join(str(x[i]) for x in fig.get(sup, [])) or "-"
            b_ok = lambda i: all(x[i] == 0 for x in fig["baton"])
            wrk = ""
            if cell == "direct":
                wrk = (f"; wrk socket errors {runs('baton', 1)} (target 0: {met(b_ok(1))}, "
                       f"Server::Starter {runs('starter', 1)})")
            L.append(f"- {what}, app that {APPS[app]}, each run: baton {runs('baton', 0)} "
                     f"(target 0: {met(b_ok(0))}), Server::Starter {runs('starter', 0)}{wrk}.")
    for app, rows in timing(summary).items():
        ms = [r["ms"] for r in rows]
        if ms:
            p90 = pct(ms, 90)
            L.append(f"- switch to the old generation's drain signal, app that {APPS[app]}, "
                     f"{len(ms)} reloads: p90 {p90:.0f} ms (target ≤ "
                     f"{SWITCH_TO_SIGNAL_TARGET_MS:g} ms: "
                     f"{met(p90 <= SWITCH_TO_SIGNAL_TARGET_MS)}).")
    return L


def _timing_section(summary):
    L = ["### From the switch to the old generation's drain signal (baton run)", ""]
    L.append("From baton's own log, per reload, in the baton cells above (all under keep-alive "
             "load: soak and wrk, or nginx's upstream connections): the new generation's "
             "`generation N (pid P) ready after` line (the steering switches to it in the same "
             "turn of the supervisor's loop, before the next line is written) to the old "
             "generation's `generation N-1 (pid P) draining ...: SIGTERM sent` line; both wall "
             "clock with milliseconds, so each figure is within 1 ms. Between them baton "
             "watches the old generation every 25 ms until it is quiet (accept queue empty, no "
             "connection busy), taking over its idle keep-alive connections, and, from a "
             "generation "
             "that served relayed connections, moving each relayed one once it is idle. "
             "Server::Starter has no such moment to compare: both workers accept from the one "
             "shared socket until it sends the old one SIGTERM, `--interval` (2 s) after "
             "starting the new one.")
    L.append("")
    L.append("| app | reloads | count | p50 | p90 | max | signal sent because | idle "
             "connections taken over, per reload (median / max) | relayed ones moved (median / "
             "max) |")
    L.append("|---|---|---:|---:|---:|---:|---|---|---|")
    groups = (("all", lambda r: True),
              ("with no relayed connection to move", lambda r: r["moved"] == 0),
              ("that moved relayed connections", lambda r: r["moved"] > 0))
    for app, all_rows in timing(summary).items():
        for label, keep in groups:
            rows = [r for r in all_rows if keep(r)]
            if not rows:
                L.append(f"| {APPS[app]} | {label} | 0 | - | - | - | - | - | - |")
                continue
            ms = [r["ms"] for r in rows]
            why = {}
            for r in rows:
                why[r["why"] or "?"] = why.get(r["why"] or "?", 0) + 1
            taken = [r["taken_over"] for r in rows]
            moved = [r["moved"] for r in rows]
            L.append(f"| {APPS[app]} | {label} | {len(ms)} | {pct(ms, 50):.0f} ms | "
                     f"{pct(ms, 90):.0f} ms | {max(ms):.0f} ms | {fmt_kinds(why)} | "
                     f"{pct(taken, 50):.0f} / {max(taken)} | {pct(moved, 50):.0f} / "
                     f"{max(moved)} |")
    L.append("")
    L.append("Reading it: the drain signal waits until the old generation is quiet: its "
             "accept queue empty, and every connection it holds either idle (then taken "
             "over) or ended. baton looks every 25 ms, and under load a connection is seldom"
             " idle at the first look, so the signal waits a few looks. A taken-over "
             "connection is relayed for one request, which baton sends with `Connection: "
             "close` and whose answer says so too; the client's next connection goes "
             "straight to the new generation, so after a restart wrk's connections come back"
             " to the app rather than through baton (compare its request counts under the "
             "two supervisors in the direct cell), and a later restart takes them over again"
             " (the taken-over column). Only a request baton could not rewrite keeps its "
             "connection relayed; baton moves such a connection (the moved column) once the "
             "watch finds it idle.")
    L.append("")
    each = [f"{APPS[c['app']]}, {c['cell']} run {c.get('run', 1)}: "
            + ", ".join(f"{r['ms']:.0f}" for r in c.get("switch_to_signal", []))
            for c in summary["cells"] if c["supervisor"] == "baton"]
    L.append("Every reload's figure, in ms (in order): " + "; ".join(each) + ".")
    return L
