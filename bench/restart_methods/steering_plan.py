"""The steering suite's plan (what it runs, how often), the targets printed beside its figures,
and the small statistics its measuring (steering_ratios.py) and its report share."""

import re
import statistics


# Readiness modes measured: (name, --ready value or None for the default, app flags).
# exec's check and the app's ready file are filled in per run (they need the run's directory).
MODES = ["notify", "accept", "auto", "http", "exec"]

# The targets, printed beside the figures (nothing asserts them).
NOTICE_TARGET_MS = 5.0
INSTANT_TARGET_MS = 5.0
THROUGHPUT_TARGET = 0.99

# runs/duration/reloads: the misbehaving-app cells; runtime_*: the Python and Node cells;
# rounds x round_duration: the throughput rounds (each round loads the app alone, baton run and
# the control; a multiple of 3 puts each in each place of the order equally often);
# reload_runs x reload_duration: baton run with `reloads` reloads, for the reload-window p99.
QUICK = {"runs": 1, "duration": 6, "reloads": 3, "runtime_runs": 1, "runtime_duration": 6,
         "ready_reloads": 3, "instant_reloads": 20, "rounds": 3, "round_duration": 2,
         "reload_runs": 1, "reload_duration": 5}
FULL = {"runs": 2, "duration": 12, "reloads": 10, "runtime_runs": 1, "runtime_duration": 12,
        "ready_reloads": 10, "instant_reloads": 60, "rounds": 12, "round_duration": 2,
        "reload_runs": 2, "reload_duration": 10}


# Keep-alive crash cells: new connections alongside the keep-alive clients (a second soak).
SIDE_RATE = 200  # requests per second, open loop, a new connection each
SIDE_CONNECTIONS = 20

# Unmodified runtimes that die on SIGTERM and bind their own port (issue 9's "apps that die on
# SIGTERM"), each under `baton run --adopt` and restarted by kill + start.
RUNTIME_CELLS = {
    "kill-start-python": "restart by kill + start, Python http.server",
    "baton-adopt-python": "baton run --adopt, Python http.server",
    "kill-start-node": "restart by kill + start, Node http (no handler)",
    "baton-adopt-node": "baton run --adopt, Node http (no handler)",
}

# Python's http.server answers HTTP/1.0 and closes every connection: keep-alive load would be the
# same as new connection per request, so it runs in that shape only.
RUNTIME_SHAPES = {"python": ("close",), "node": ("close", "keepalive")}

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


def steady_rounds(st, kind="baton"):
    """[(alone, kind)] of a throughput result (kind: baton, or control for the second app alone,
    which older results lack); also reads the older layout (lists per kind)."""
    if "rounds" in st:
        return [(r["alone"], r[kind]) for r in st["rounds"] if kind in r]
    return list(zip(st.get("alone", []), st.get(kind, [])))


def spread(xs):
    """"median (middle half q1-q3, all min-max)" of ratios."""
    if len(xs) < 2:
        return f"{xs[0]:.3f}" if xs else "-"
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return (f"{statistics.median(xs):.3f} (middle half {q1:.3f}-{q3:.3f}, all "
            f"{min(xs):.3f}-{max(xs):.3f})")
