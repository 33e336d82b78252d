#!/usr/bin/env bash
# Issue 10's targets for the small costs: a slice (at most 5 ns, no heap), a quota acquire + release
# (at most 30 ns), and what the release checks add to a 1 MiB allocate + free (at most 1 ns).
# handles_bench and handles_bench_nocheck (the same code with the checks compiled out) run
# alternately, pinned to CPU 1, ROUNDS rounds of 5 repetitions; the medians over all of them.
# Usage: perf/handles.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
B=build/release/perf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in $(seq "$ROUNDS"); do
  for bin in handles_bench handles_bench_nocheck; do
    taskset -c 1 "$B/$bin" --benchmark_repetitions=5 --benchmark_min_time=0.2 \
      --benchmark_format=json > "$work/$bin.$r.json"
  done
done
python3 - "$work" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def times(binary, name):
    out, heap = [], []
    for r in range(1, rounds + 1):
        for b in json.load(open(f"{work}/{binary}.{r}.json"))["benchmarks"]:
            if b["name"] == name and b.get("run_type") == "iteration":
                # BM_Slice times batches: its figure is the per-slice counter, in ns.
                out.append(b["ns_per_slice"] * 1e9 if "ns_per_slice" in b else b["cpu_time"])
                heap.append(b["heap_calls_per_op"])
    return statistics.median(out), max(heap)
print("| benchmark | with checks (ns) | without checks (ns) | difference | heap calls per op |")
print("|---|---|---|---|---|")
for name in ["BM_AllocFree1MiB", "BM_Slice", "BM_AtomicIncrement", "BM_SliceAndDrop",
             "BM_QuotaAcquireRelease"]:
    w, hw = times("handles_bench", name)
    n, hn = times("handles_bench_nocheck", name)
    print(f"| {name} | {w:.2f} | {n:.2f} | {w - n:+.2f} | {max(hw, hn):.0f} |")
PY
