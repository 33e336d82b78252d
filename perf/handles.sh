#!/usr/bin/env bash
# Issue 10's targets for the small costs: a slice (at most 5 ns, no heap), a quota acquire + release
# (at most 30 ns), and what the release checks add to a 1 MiB allocate + free (at most 1 ns).
# handles_bench_nocheck (the same code with the checks compiled out) and handles_bench run
# alternately through perf/ab_bench.py: pinned to CPU 1, ROUNDS rounds of 5 repetitions.
# Usage: perf/handles.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/release/perf
exec python3 perf/ab_bench.py "$B/handles_bench_nocheck" "$B/handles_bench" \
  --rounds "${1:-3}" --min-time 0.2 --names "without checks,with checks"
