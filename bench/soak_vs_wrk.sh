#!/bin/sh
# soak_vs_wrk.sh: is `baton soak` at least as fast a load generator as wrk on this machine?
#
# Same server, same run, same shape (2 threads, 50 keep-alive connections, 5 s), alternating
# wrk and soak for ROUNDS rounds; the median of each is compared. Servers: baton-example-http
# (2 threads) and, when installed, nginx (1 worker, `return 200`). Besides requests per second
# (noisy on a shared machine), it records each tool's own CPU time per request (user + system,
# from /usr/bin/time): the efficiency that decides how hard a tool can push on the same CPUs.
# Writes a Markdown table to RESULTS (default bench/results/soak_vs_wrk.md next to this script).
#
# usage: bench/soak_vs_wrk.sh BUILD_BIN_DIR [RESULTS]    env: ROUNDS (3), DURATION (5)
set -eu
bin=${1:?usage: soak_vs_wrk.sh BUILD_BIN_DIR [RESULTS]}
here=$(cd "$(dirname "$0")" && pwd)
results=${2:-$here/results/soak_vs_wrk.md}
rounds=${ROUNDS:-3}
duration=${DURATION:-5}
command -v wrk >/dev/null || { echo "soak_vs_wrk: wrk is not installed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "soak_vs_wrk: /usr/bin/time (GNU time) is needed" >&2; exit 2; }
tmp=$(mktemp -d /tmp/soak-bench.XXXXXX)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# bench_server NAME URL: appends one table row for the server at URL.
bench_server() {
  name=$1 url=$2
  : >"$tmp/wrk" ; : >"$tmp/soak"; : >"$tmp/wrk_cpu"; : >"$tmp/soak_cpu"
  i=0
  while [ "$i" -lt "$rounds" ]; do
    /usr/bin/time -o "$tmp/time" -f "%U %S" wrk -t2 -c50 -d"${duration}s" "$url" >"$tmp/wrk.out"
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.out")
    n=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
    echo "$rps" >>"$tmp/wrk"
    awk -v n="$n" '{printf "%.3f\n", ($1 + $2) * 1e6 / n}' "$tmp/time" >>"$tmp/wrk_cpu"
    /usr/bin/time -o "$tmp/time" -f "%U %S" \
      "$bin/baton" soak --url "$url" -t 2 -c 50 -d "${duration}s" -q --json "$tmp/soak.json" || true
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["requests"]["total"]/j["elapsed_s"], j["requests"]["total"])' \
      "$tmp/soak.json" >"$tmp/soak.one"
    awk '{print $1}' "$tmp/soak.one" >>"$tmp/soak"
    n=$(awk '{print $2}' "$tmp/soak.one")
    awk -v n="$n" '{printf "%.3f\n", ($1 + $2) * 1e6 / n}' "$tmp/time" >>"$tmp/soak_cpu"
    i=$((i + 1))
  done
  w=$(median <"$tmp/wrk"); s=$(median <"$tmp/soak")
  wc=$(median <"$tmp/wrk_cpu"); sc=$(median <"$tmp/soak_cpu")
  ratio=$(python3 -c "print(f'{$s/$w:.2f}')")
  cpu_ratio=$(python3 -c "print(f'{$wc/$sc:.2f}')")
  printf '| %s | %.0f | %.0f | **%s** | %.2f | %.2f | **%s** | %s | %s |\n' "$name" "$w" "$s" "$ratio" \
    "$wc" "$sc" "$cpu_ratio" \
    "$(tr '\n' ' ' <"$tmp/wrk" | xargs printf '%.0f ')" \
    "$(tr '\n' ' ' <"$tmp/soak" | xargs printf '%.0f ')" >>"$tmp/rows"
  echo "$name: wrk $w req/s ($wc us CPU/req), soak $s req/s ($sc us CPU/req): ratio $ratio, CPU efficiency $cpu_ratio" >&2
}

: >"$tmp/rows"
"$bin/baton-example-http" --listen 127.0.0.1:0 --init-seconds 0 --threads 2 >"$tmp/example.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q "ready on" "$tmp/example.log" && break; sleep 0.05; done
port=$(sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/example.log" | head -1)
bench_server "baton-example-http (2 threads)" "http://127.0.0.1:$port/"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$tmp/nginx/logs"
  cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; location / { return 200 "hello\n"; } }
}
CONF
  "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
  server_pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  bench_server "nginx 1.x (1 worker)" "http://127.0.0.1:$port/"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
fi

mkdir -p "$(dirname "$results")"
{
  echo "# baton soak versus wrk: load generator throughput"
  echo
  echo "Written by \`bench/soak_vs_wrk.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
  echo "($(uname -r)); $(wrk --version 2>&1 | head -1 | cut -c1-40)."
  echo "Both tools: 2 threads, 50 keep-alive connections, ${duration} s, GET /, on the same server"
  echo "in the same run, alternating, $rounds rounds each; the table shows medians. The server"
  echo "and the load generator share the machine's CPUs, so the ratio (soak / wrk) is what counts,"
  echo "not the absolute figures. A ratio >= 1.00 means soak pushes the server at least as hard."
  echo "CPU/req is each tool's own user+system CPU time per request, in microseconds (lower is"
  echo "better); wrk/soak CPU >= 1.00 means soak spends no more CPU per request than wrk."
  echo
  echo "| server | wrk req/s | soak req/s | soak / wrk | wrk CPU/req (us) | soak CPU/req (us) | wrk / soak CPU | wrk rounds | soak rounds |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
  cat "$tmp/rows"
} >"$results"
echo "wrote $results" >&2
