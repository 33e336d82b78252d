#!/usr/bin/env python3
"""Two builds of a Google Benchmark binary, side by side: A and B run alternately, pinned to one
core, ROUNDS rounds of REPS repetitions each, and every benchmark gets the median over all its
iterations on each side, the difference and the ratio.

Usage: perf/ab_bench.py A_BINARY B_BINARY [--rounds 3] [--reps 5] [--min-time 0.3]
                        [--names A,B] [--cpu 1]
A benchmark's figure is its cpu_time in ns, or, when it has an `ns_per_*` counter (a benchmark
that times batches reports the time per item that way, as a rate inverted), that counter. When
benchmarks count `heap_calls_per_op`, the larger of the two sides is shown too.
"""
import argparse
import json
import statistics
import subprocess
import tempfile


def run(binary, cpu, reps, min_time, out):
    subprocess.run(["taskset", "-c", str(cpu), binary, f"--benchmark_repetitions={reps}",
                    f"--benchmark_min_time={min_time}", "--benchmark_format=json"],
                   stdout=out, check=True)


def figures(paths):
    """name -> ([figures], [heap calls per op]), in the order the binary runs them."""
    by = {}
    for path in paths:
        with open(path) as f:
            for b in json.load(f)["benchmarks"]:
                if b.get("run_type") != "iteration":
                    continue
                per_item = [k for k in b if k.startswith("ns_per_")]
                value = b[per_item[0]] * 1e9 if per_item else b["cpu_time"]
                entry = by.setdefault(b["name"], ([], []))
                entry[0].append(value)
                if "heap_calls_per_op" in b:
                    entry[1].append(b["heap_calls_per_op"])
    return by


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", default="0.3")
    ap.add_argument("--names", default="A,B", help="the two columns' names, A first")
    ap.add_argument("--cpu", type=int, default=1)
    o = ap.parse_args()
    name_a, name_b = o.names.split(",")
    with tempfile.TemporaryDirectory() as work:
        paths = {"a": [], "b": []}
        for r in range(o.rounds):
            for side, binary in (("a", o.a), ("b", o.b)):
                path = f"{work}/{side}.{r}.json"
                with open(path, "w") as out:
                    run(binary, o.cpu, o.reps, o.min_time, out)
                paths[side].append(path)
        a, b = figures(paths["a"]), figures(paths["b"])
    heap = any(a[k][1] for k in a)
    print(f"| benchmark | {name_a} (ns) | {name_b} (ns) | {name_b} - {name_a} | "
          f"{name_b} / {name_a} |" + (" heap calls per op |" if heap else ""))
    print("|---|---|---|---|---|" + ("---|" if heap else ""))
    for k in a:
        if k not in b:
            continue
        ma, mb = statistics.median(a[k][0]), statistics.median(b[k][0])
        row = f"| {k} | {ma:.2f} | {mb:.2f} | {mb - ma:+.2f} | {mb / ma:.2f} |"
        if heap:
            row += f" {max(a[k][1] + b[k][1], default=0):.0f} |"
        print(row)


if __name__ == "__main__":
    main()
