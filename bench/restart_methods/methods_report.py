"""RESULTS.md's section of the restart methods, rendered from their summary.json."""

import re
import statistics

from cells import METHODS, RESTART_NOTE, SHAPES, fmt_kinds, fmt_us
from procs import REPO


def render(results, idle, wrk, meta, commands):
    L = []
    a = meta["args"]
    L.append("# Restart methods side by side")
    L.append("")
    L.append(f"Written by `bench/run-restart-methods` on {meta['date']} ({meta['wall_s']:.0f} s "
             f"wall{', commit ' + meta['commit'] if 'commit' in meta else ''}). Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), Linux "
             f"{meta['kernel']}, {meta['mem']}; {meta['network']}.")
    L.append("")
    L.append(f"Every cell: the same app logic (`examples/http_worker.cc`, {a['threads']} threads, "
             f"{a['init_seconds']:g} s start-up before it binds or accepts), loaded by "
             f"`baton soak` (closed loop, {a['connections']} connections, {a['load_threads']} "
             f"threads, {a['duration']} s) with {a['reloads']} restarts spread over the run "
             f"(restart i due at (i + 0.5) / {a['reloads']} of it), {a['runs']} runs per cell, "
             "both load shapes. Load generator and servers share the CPUs, so throughput is "
             "not an absolute figure; and the machine was shared with other work during the run"
             + (f" (load average {meta['loadavg'][0]:.1f} at the start, "
                f"{meta['loadavg'][1]:.1f} at the end)" if "loadavg" in meta else "")
             + ", so req/s and latency differ by up to 2x between runs of one cell (see "
             "`summary.json`). Failures and restart times are the figures to compare.")
    L.append("")
    L.append("How to read it:")
    L.append("- **failed**: requests whose final outcome was not a 2xx response, per run. A "
             "keep-alive request whose reused connection was closed before any byte of the "
             "answer is retried once on a new connection, as browsers do (RFC 9110 9.2.2); "
             "**1st try** counts those before the retry.")
    L.append("- Closed loop: a connection sends its next request as soon as the last ends, so "
             "while nobody listens a client turns each refused connection into the next attempt "
             "at once: *refused* counts attempts during downtime, not users.")
    L.append("- Latency p50/p99/p99.9 of every request, and of the requests completed in the "
             "reload windows (from a restart's command to 1 s after it returned).")
    L.append("- **restart**: p50 / max time from the restart command to the new instance "
             "serving and the old one draining (method 1: to the new one serving after the old "
             "one exited). Methods 1-3 and 5b are driven by `restart_methods/reload.py` (a "
             "Python process, about 30 ms of that time); 4 by SIGHUP to start_server and "
             "waiting for the old worker's drain; 5a and 5c by `baton reload --wait`.")
    L.append("- Cells show the mean of the runs; *failed* shows each run.")
    L.append("")
    for shape in SHAPES:
        L.append(f"### Load: {SHAPES[shape]}")
        L.append("")
        L.append("| method | failed (each run) | failures by kind (all runs) | 1st try failed | "
                 "req/s | p50 | p99 | p99.9 | reload-window p50 | p99 | p99.9 | restart p50 / max "
                 "| restarts ok |")
        L.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for method, title in METHODS.items():
            runs = [r for r in results if r["method"] == method and r["shape"] == shape and
                    "summary" in r]
            errs = [r for r in results if r["method"] == method and r["shape"] == shape and
                    "error" in r]
            if not runs:
                if errs:
                    L.append(f"| {title} | error: {errs[0]['error'][:80]} |" + " |" * 11)
                continue
            s = [r["summary"] for r in runs]
            mean = lambda k: statistics.mean(x[k] for x in s)
            kinds = {}
            for x in s:
                for k, v in x["failures"].items():
                    kinds[k] = kinds.get(k, 0) + v
            L.append(
                f"| {title} | {' / '.join(str(x['failed']) for x in s)} | {fmt_kinds(kinds)} | "
                f"{' / '.join(str(x['first_try_failed']) for x in s)} | {mean('rps'):,.0f} | "
                f"{fmt_us(mean('p50_us'))} | {fmt_us(mean('p99_us'))} | "
                f"{fmt_us(mean('p999_us'))} | {fmt_us(mean('win_p50_us'))} | "
                f"{fmt_us(mean('win_p99_us'))} | {fmt_us(mean('win_p999_us'))} | "
                f"{mean('reload_p50_s'):.2f}s / {max(x['reload_max_s'] for x in s):.2f}s | "
                f"{sum(x['reloads_ok'] for x in s)}/{sum(x['reloads_planned'] for x in s)} |")
        L.append("")
    if idle:
        i = idle
        tck = i["clk_tck"]
        L.append("### The baton supervisor itself")
        L.append("")
        L.append(f"`baton run` holding one ready generation of the example, no load, "
                 f"{i['idle_s']} s sampled ({i['threads']} thread(s)). Wake-ups counted from "
                 "`/proc/PID/task/*/status` (voluntary context switches: each is a sleep that "
                 "ended in a wake-up) and `/proc/PID/task/*/schedstat` (times put on a CPU)"
                 + (", cross-checked with `perf stat -e context-switches`"
                    if str(i.get("perf", {}).get("context-switches", "")).isdigit()
                    else "; `perf stat` counts nothing in this container") + ".")
        L.append("")
        L.append("| figure | fresh, idle | idle after %d reloads |" % i["reloads_before_second_sample"])
        L.append("|---|---:|---:|")
        m0, m1 = i["pid_memory_fresh"], i["pid_memory_after_reloads"]
        L.append(f"| resident memory (VmRSS) | {m0.get('VmRSS_kB', 0):,} kB | "
                 f"{m1.get('VmRSS_kB', 0):,} kB |")
        L.append(f"| peak resident (VmHWM) | {m0.get('VmHWM_kB', 0):,} kB | "
                 f"{m1.get('VmHWM_kB', 0):,} kB |")
        a0, a1 = i["idle"], i["idle_after_reloads"]
        L.append(f"| voluntary context switches in {i['idle_s']} s | {a0['voluntary']} | "
                 f"{a1['voluntary']} |")
        L.append(f"| schedstat runs in {i['idle_s']} s | {a0['runs']} | {a1['runs']} |")
        L.append(f"| CPU time in {i['idle_s']} s | {a0['cpu_ticks'] * 1000 // tck} ms | "
                 f"{a1['cpu_ticks'] * 1000 // tck} ms |")
        if str(i.get("perf", {}).get("context-switches", "")).isdigit():
            L.append(f"| perf context-switches in {i['idle_s']} s | "
                     f"{i['perf'].get('context-switches', '?')} | |")
        L.append("")
        if "after_load" in i:
            L.append("Resident memory of `baton run` right after each supervisor cell (load and "
                     f"{a['reloads']} reloads): " + ", ".join(
                         f"{x['VmRSS_kB']:,} kB (peak {x['VmHWM_kB']:,} kB)"
                         for x in i["after_load"]) + ".")
            L.append("")
    if wrk:
        L.append("### Cross-check with wrk")
        L.append("")
        L.append(f"wrk -t{a['load_threads']} -c{a['connections']} -d{a['duration']}s on the same "
                 "server, keep-alive, with the same restart schedule fired by the driver. wrk "
                 "does not retry: its *read* errors include requests soak retries. Compare with "
                 "the soak run 1 row of the same cell; wrk ran afterwards, as a run of its own, so "
                 "its totals differ with the machine's load. wrk reports a refused connect as a "
                 "*write* error (its connect is non-blocking; the refusal surfaces at the first "
                 "write), soak as *refused*.")
        L.append("")
        L.append("| method | wrk requests | wrk req/s | wrk socket errors | wrk non-2xx | wrk p50 "
                 "| wrk p99 | soak requests | soak req/s | soak failed (1st try) |")
        L.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
        for w in wrk:
            s = next((r["summary"] for r in results if r["method"] == w["method"] and
                      r["shape"] == "keepalive" and "summary" in r), None)
            e = ", ".join(f"{k} {v}" for k, v in w["errors"].items() if v) or "0"
            soak_cells = (f"{s['requests']:,} | {s['rps']:,.0f} | {s['failed']} "
                          f"({s['first_try_failed']})" if s else "- | - | -")
            L.append(f"| {METHODS[w['method']]} | {w['requests'] or 0:,} | {w['rps'] or 0:,.0f} |"
                     f" {e} | {w['non2xx']} | {w['p50']} | {w['p99']} | {soak_cells} |")
        L.append("")
    L.append("### Reproduce")
    L.append("")
    L.append("```")
    L.append("cmake -S . -B build -G Ninja && ninja -C build baton baton-example-http "
             "baton-bench-app baton_adopt")
    L.append(f"bench/run-restart-methods --build build    # the whole suite, {meta['wall_s'] / 60:.0f} min here")
    L.append("# or: ninja -C build bench_restart_methods")
    L.append("```")
    L.append("")
    L.append("The commands it ran, one per method (run 1, keep-alive; `--close` added for the "
             "other shape; `PORT` and `DIR` are per cell):")
    L.append("")
    L.append("```")
    for method in METHODS:
        if method in commands:
            L.append(f"# {METHODS[method]}")
            if method in RESTART_NOTE:
                L.append(f"#   reload.py: {RESTART_NOTE[method]}")
            for c in commands[method]:
                # Repo paths relative, also when rendered from another checkout's summary.
                c = re.sub(r"\S*/(bench/restart_methods/)", r"\1", c)
                L.append(c.replace(meta.get("python", "?"), "python3").replace(
                    meta.get("build", "?") + "/", "build/").replace(REPO + "/", ""))
    L.append("```")
    L.append("")
    L.append("Raw results: `bench/results/restart_methods/` (one soak JSON per run, `summary.json` "
             "with everything above).")
    return "\n".join(L) + "\n"
