#!/usr/bin/env bash
# Runs every benchmark binary in DIR with repetitions, and keeps the JSON next to the console
# output. Usage: perf/run_benchmarks.sh build/release/perf [extra Google Benchmark flags]
# REPS (default 5) sets the repetitions; the console shows mean, median and stddev per case.
set -euo pipefail
dir=${1:?usage: $0 BUILD_PERF_DIR [benchmark flags]}
shift
reps=${REPS:-5}
out=${OUT:-$dir/results}
mkdir -p "$out"
for bin in "$dir"/*_bench; do
  name=$(basename "$bin")
  echo "== $name ($(date -u +%FT%TZ), $(nproc) cores, $reps repetitions)"
  "$bin" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/$name.json" --benchmark_out_format=json "$@"
done
echo "JSON results in $out"
