"""The steering suite's report: bench/results/steering.md and the README's block of figures, from
the suite's summary.json."""

import statistics

from cells import CRASH_AFTER_S, SHAPES, STEERING_CELLS, fmt_kinds, fmt_us
from procs import REPO
from steering_plan import (FULL, INSTANT_TARGET_MS, NOTICE_TARGET_MS, QUICK, RUNTIME_CELLS,
                           SIDE_CONNECTIONS, SIDE_RATE, THROUGHPUT_TARGET, pct, spread,
                           steady_rounds)
from steering_ratios import ORDERS


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
    for shape in SHAPES:
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
            L.append(f"- throughput under baton over the app alone, {SHAPES[shape]}, median "
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
                 f"{fmt_kinds(kinds)} | "
                 f"{' / '.join(str(x['first_try_failed']) for x in s)} | "
                 f"{sum(x['requests'] for x in s):,} | "
                 f"{statistics.mean(x['rps'] for x in s):,.0f} | "
                 f"{fmt_us(statistics.mean(x['win_p99_us'] for x in s))} | "
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
             f"{CRASH_AFTER_S} s (before its 1 s start-up ends); start_server retries it "
             "(the retry starts fine and replaces the old worker), baton run rolls back "
             "(`reload --wait` exits 1; counted as a restart handled as designed).")
    L.append("")
    for shape, title in SHAPES.items():
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
        L.extend(cell_table(summary, STEERING_CELLS, shape, with_side=shape == "keepalive"))
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
        for shape, title in SHAPES.items():
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
            L.append(f"| {SHAPES[shape]} | error: {st.get('error', 'no round')[:80]} |"
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
        L.append(f"| {SHAPES[shape]} | {med([x['rps'] for x, _ in rounds]):,.0f} | "
                 f"{med([y['rps'] for _, y in rounds]):,.0f} | {spread(ratios)} | "
                 f"{spread(control)} | {cpu_cells} | "
                 f"{fmt_us(med([x['p99_us'] for x, _ in rounds]))} | {fmt_us(sp)} | "
                 f"{fmt_us(wp) if wp else '-'} | {f'{wp / sp:.2f}' if wp and sp else '-'} | "
                 f"{' / '.join(str(x['failed']) for x in rel) or '-'} | "
                 f"{med([y.get('baton_cpu_ms', 0) for _, y in rounds]):.0f} ms steady, "
                 f"{med([x.get('baton_cpu_ms', 0) for x in rel]) if rel else 0:.0f} ms with "
                 "reloads |")
        each.append(f"- {SHAPES[shape]}: req/s {', '.join(f'{x:.2f}' for x in ratios)}"
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
            L.append(f"# {STEERING_CELLS.get(method) or RUNTIME_CELLS.get(method, method)}")
            L.extend(c.replace(REPO + "/", "") for c in cmds)
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
              for shape, title in SHAPES.items() if f"{key}_{shape}" in h]
        if tp:
            n = max(h.get(f"throughput_{shape}_rounds", 0) for shape in SHAPES)
            rows.append(f"| throughput under baton / the app alone, {what}: median of {n} "
                        "interleaved rounds (spread) | "
                        + ", ".join(f"{t:.3f} {title} ({lo:.3f}-{hi:.3f})"
                                    for title, t, lo, hi in tp)
                        + f" | ≥ {THROUGHPUT_TARGET}: "
                        + ", ".join(f"{verdict(t >= THROUGHPUT_TARGET)} ({title})"
                                    for title, t, _, _ in tp) + " |")
    win = [(title, h[f"p99_window_over_steady_{shape}"]) for shape, title in SHAPES.items()
           if h.get(f"p99_window_over_steady_{shape}")]
    if win:
        rows.append("| p99 in reload windows / steady p99 | "
                    + ", ".join(f"{v:.2f} {title}" for title, v in win) + " | |")
    L += rows + ["", "Details and the conditions of the run: [bench/RESULTS.md](bench/RESULTS.md) "
                 "(section \"Steering\") and [bench/results/steering.md]"
                 "(bench/results/steering.md)."]
    return "\n".join(L) + "\n"
