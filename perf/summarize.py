#!/usr/bin/env python3
"""Turns buddy_pool_bench's JSON (perf/run_benchmarks.sh) into the markdown tables of RESULTS.md.

Every figure is the median over the run's repetitions; every ratio compares two figures of the
same process run. Usage: perf/summarize.py build/release/perf/results/buddy_pool_bench.json
"""
import json
import re
import sys

MALLOCS = ["glibc", "jemalloc", "mimalloc", "tcmalloc"]


def load(path):
    with open(path) as f:
        data = json.load(f)
    med = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"(/iterations:\d+)?(/manual_time|/real_time)?(/threads:\d+)?_median$", "",
                      b["name"])
        med[name] = b
    return data["context"], med


def ns(b):
    t = b["real_time"] if "real_time" in b else b["cpu_time"]
    unit = b.get("time_unit", "ns")
    return t * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]


def fmt(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.1f} µs"
    return f"{v:.1f} ns"


def table(rows, med, prefix):
    print("| case | bufpool | " + " | ".join(MALLOCS) + " | best malloc / bufpool |")
    print("|---|---:|" + "---:|" * len(MALLOCS) + "---:|")
    for case in rows:
        pool = med.get(f"{prefix}/bufpool/{case}")
        if not pool:
            continue
        peers = [med.get(f"{prefix}/{m}/{case}") for m in MALLOCS]
        best = min(ns(p) for p in peers if p)
        cells = [fmt(ns(p)) if p else "-" for p in peers]
        print(f"| {case} | {fmt(ns(pool))} | " + " | ".join(cells) +
              f" | {best / ns(pool):.2f}× |")
    print()


def main():
    ctx, med = load(sys.argv[1])
    print(f"Run {ctx['date']} on {ctx['host_name']}: {ctx['num_cpus']} CPUs at "
          f"{ctx['mhz_per_cpu']} MHz, library build {ctx.get('library_build_type', '?')}.\n")
    print("### Allocate + free, one thread\n")
    table([f"{s}/touch:{t}" for t in (0, 1) for s in ("1MiB", "4MiB", "16MiB", "64MiB")], med,
          "alloc_free")
    print("### Steady mix: 64 live buffers of random levels\n")
    table(["touch:0", "touch:1"], med, "mix64")
    print("### Two threads, 1 MiB allocate + free on one shared allocator (wall time per op)\n")
    print("| bufpool | " + " | ".join(MALLOCS) + " |")
    print("|---:|" + "---:|" * len(MALLOCS))
    print(f"| {fmt(ns(med['contended/bufpool']))} | " +
          " | ".join(fmt(ns(med[f'contended/{m}'])) if f'contended/{m}' in med else '-'
                     for m in MALLOCS) + " |\n")
    print("### co_await async_allocate with memory free\n")
    for k in ("co_await/async_allocate_1MiB", "co_await/asio_post_baseline",
              "co_await/try_allocate_1MiB_sync"):
        if k in med:
            print(f"- `{k}`: {fmt(ns(med[k]))}")
    print("\n### Free → waiting coroutine resumes (2000 wake-ups per repetition)\n")
    print("| case | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    for k in sorted(x for x in med if x.startswith("wake_latency/")):
        b = med[k]
        print(f"| {k.removeprefix('wake_latency/')} | {b['p50_us']:.2f} µs | {b['p99_us']:.2f} µs"
              f" | {b['max_us']:.0f} µs |")


if __name__ == "__main__":
    main()
