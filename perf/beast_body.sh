#!/usr/bin/env bash
# Issue 10's Body benchmark: examples/beast_server with bufpool's PoolBody (--body pool) against the
# same server over Beast's own flat_buffer + vector_body<char> (--body vector), PUT then GET
# (mix put=1,get=1) of 64 KiB and 1 MiB bodies, driven by bufpool-bench. Server on CPU 0, client on
# CPU 1, runs alternating between the two, medians of RUNS runs of DURATION. Then the heap calls
# per request of each server (perf/tools/malloc_count.c, LD_PRELOAD): the count after 2N requests
# minus the count after N, over N, with the same prefill.
# Usage: perf/beast_body.sh [RUNS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DURATION=${2:-5s}
N=2000
EX=build/release/tests/examples_build/build/beast_server
BENCH=build/release/client/bufpool-bench
[ -x "$EX" ] || ctest --preset release -R '^examples_build$' > /dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
gcc -shared -fPIC -O2 perf/tools/malloc_count.c -o "$work/count.so"

start() {  # mode [preload]: starts the server on CPU 0, sets $pid and $port
  : > "$work/out"
  if [ -n "${2:-}" ]; then
    LD_PRELOAD="$work/count.so" taskset -c 0 "$EX" --body "$1" --max-memory 2048 > "$work/out" 2> "$work/err" &
  else
    taskset -c 0 "$EX" --body "$1" --max-memory 2048 > "$work/out" 2> "$work/err" &
  fi
  pid=$!
  for _ in $(seq 200); do grep -q listening "$work/out" && break; sleep 0.02; done
  port=$(sed -n 's/listening on //p' "$work/out")
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }

bench() {  # size -> req/s
  taskset -c 1 "$BENCH" --target "http://127.0.0.1:$port" -c 8 --mix put=1,get=1 --size "$1" \
    --keys 32 -d "$DURATION" -w 1s -q --json "$work/r.json" > /dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput_rps"])' "$work/r.json"
}

echo "| size | run | pool req/s | vector req/s | ratio |"
echo "|---|---|---|---|---|"
for size in 64KiB 1MiB; do
  pools=(); vectors=()
  for run in $(seq "$RUNS"); do
    start pool; p=$(bench "$size"); stop
    start vector; v=$(bench "$size"); stop
    pools+=("$p"); vectors+=("$v")
    echo "| $size | $run | $p | $v | $(python3 -c "print(f'{$p/$v:.2f}')") |"
  done
  python3 - "$size" "${pools[*]}" "${vectors[*]}" <<'PY'
import statistics, sys
size, p, v = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
mp, mv = statistics.median(p), statistics.median(v)
print(f"| {size} | median | {mp:.0f} | {mv:.0f} | **{mp/mv:.2f}x** |")
PY
done

mallocs() {  # mode size requests -> heap calls of the whole run
  start "$1" preload
  taskset -c 1 "$BENCH" --target "http://127.0.0.1:$port" -c 1 --mix put=1,get=1 --size "$2" \
    --keys 32 -n "$3" -w 0s -q > /dev/null
  stop
  sed -n 's/mallocs=//p' "$work/err"
}
echo
echo "| server | size | heap calls per request (steady state) |"
echo "|---|---|---|"
for mode in pool vector; do
  for size in 64KiB 1MiB; do
    a=$(mallocs "$mode" "$size" "$N"); b=$(mallocs "$mode" "$size" $((2 * N)))
    echo "| $mode | $size | $(python3 -c "print(f'{($b - $a) / $N:.2f}')") ($a after $N, $b after $((2 * N))) |"
  done
done
