#!/usr/bin/env bash
# Runs each libFuzzer harness for a given time on a scratch copy of its committed corpus, and
# fails on the first crash, sanitizer report or leak. Prints, per harness, the executions per
# second and the coverage (libFuzzer's "cov": edges reached; "ft": features).
#   fuzz/run.sh BUILD_DIR SECONDS NAME...     (make fuzz)
set -euo pipefail
dir=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=()
for name in "$@"; do
  mkdir -p "$work/$name" "$work/artifacts-$name"
  cp "$here/corpus/$name/"* "$work/$name/"
  log="$work/$name.log"
  echo "==== fuzz_$name: ${seconds}s"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$dir/fuzz_$name" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
      -artifact_prefix="$work/artifacts-$name/" "$work/$name" > "$log" 2>&1; then
    tail -60 "$log"
    for a in "$work/artifacts-$name"/*; do
      [ -e "$a" ] && { echo "crashing input ($a), base64:"; base64 -w 0 "$a"; echo; }
    done
    echo "fuzz_$name FAILED"
    exit 1
  fi
  done_line=$(grep -E '^#[0-9]+\s+DONE' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec:\s*//p' "$log")
  runs=$(sed -n 's/^stat::number_of_executed_units:\s*//p' "$log")
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) .*/\1 edges, \2 features/p' <<< "$done_line")
  summary+=("fuzz_$name: $runs runs in ${seconds}s, $rate exec/s, coverage $cov, corpus $(ls "$work/$name" | wc -l) inputs")
done
echo
printf '%s\n' "${summary[@]}"
