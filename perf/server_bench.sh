#!/usr/bin/env bash
# bufpool-server's HTTP GET throughput with wrk, against nginx serving the same bytes from files,
# in the same run on the same machine. Usage: perf/server_bench.sh [REPS] [DURATION]
#   REPS      runs per case (default 3; the median is reported)
#   DURATION  wrk duration per run (default 5s)
# Needs wrk and nginx-light (Debian packages; make bench-deps installs them). Both servers get
# one worker thread and wrk one thread with 32 connections, so that the 2 cores are split evenly.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/http_peers.sh
REPS=${1:-3}
DUR=${2:-5s}
BIN=build/release/server/bufpool-server
command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "server_bench: needs wrk and nginx (apt-get install wrk nginx-light)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "server_bench: build first (make build)" >&2; exit 2; }

work=$(mktemp -d)
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$BIN" --http-listen 127.0.0.1:0 --rpc-listen '' --threads 1 --max-memory 1GiB \
  --port-file "$work/ports.json" --log-level warn > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -f "$work/ports.json" ] && break; sleep 0.05; done
port=$(sed 's/.*"http": \([0-9]*\).*/\1/' "$work/ports.json")

nport=$(( (RANDOM % 20000) + 30000 ))
start_nginx_peer "$work" "$port" "$nport" 4096 65536 1048576

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run_wrk() {  # url -> "req/s p99"
  local out rps p99
  out=$(wrk -t1 -c32 -d"$DUR" --latency "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "server_bench: errors from $1" >&2; exit 1; fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  echo "$rps $p99"
}

echo "# server_bench $(date -u +%FT%TZ), $(nproc) cores, wrk -t1 -c32 -d$DUR, $REPS runs each"
echo "| size | bufpool req/s (runs) | bufpool median | p99 | nginx req/s (runs) | nginx median | p99 | bufpool / nginx |"
echo "|---|---|---|---|---|---|---|---|"
for size in 4096 65536 1048576; do
  b_runs=() n_runs=() b_p99="" n_p99=""
  for _ in $(seq "$REPS"); do
    read -r rps p99 < <(run_wrk "http://127.0.0.1:$port/v1/buffers/v$size"); b_runs+=("$rps"); b_p99=$p99
    read -r rps p99 < <(run_wrk "http://127.0.0.1:$nport/v1/buffers/v$size"); n_runs+=("$rps"); n_p99=$p99
  done
  b_med=$(printf '%s\n' "${b_runs[@]}" | median)
  n_med=$(printf '%s\n' "${n_runs[@]}" | median)
  ratio=$(awk -v a="$b_med" -v b="$n_med" 'BEGIN {printf "%.2f", a / b}')
  echo "| $size | ${b_runs[*]} | $b_med | $b_p99 | ${n_runs[*]} | $n_med | $n_p99 | $ratio |"
done
