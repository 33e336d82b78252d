#!/usr/bin/env bash
# The store index before and after a change: perf/store_bench from two builds, alternately,
# through perf/ab_bench.py (pinned to CPU 1, ROUNDS rounds of 5 repetitions).
# Usage: perf/store_compare.sh OLD_STORE_BENCH NEW_STORE_BENCH [ROUNDS]
set -euo pipefail
exec python3 "$(dirname "$0")/ab_bench.py" "$1" "$2" --rounds "${3:-3}" --names before,after
