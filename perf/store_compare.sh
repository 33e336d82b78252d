#!/usr/bin/env bash
# The store index before and after a change: runs perf/store_bench from two builds alternately,
# pinned to CPU 1, ROUNDS rounds of 5 repetitions, and prints the medians and their ratio.
# Usage: perf/store_compare.sh OLD_STORE_BENCH NEW_STORE_BENCH [ROUNDS]
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in $(seq "$ROUNDS"); do
  for side in old new; do
    bin=$OLD; [ "$side" = new ] && bin=$NEW
    taskset -c 1 "$bin" --benchmark_repetitions=5 --benchmark_min_time=0.3 \
      --benchmark_format=json > "$work/$side.$r.json"
  done
done
python3 - "$work" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def medians(side):
    by = {}
    for r in range(1, rounds + 1):
        for b in json.load(open(f"{work}/{side}.{r}.json"))["benchmarks"]:
            if b.get("run_type") == "iteration":
                by.setdefault(b["name"], []).append(b["cpu_time"])
    return {k: statistics.median(v) for k, v in by.items()}
old, new = medians("old"), medians("new")
print("| benchmark | before (ns) | after (ns) | after / before |")
print("|---|---|---|---|")
for name in old:
    print(f"| {name} | {old[name]:.1f} | {new[name]:.1f} | {new[name] / old[name]:.2f} |")
PY
