#!/usr/bin/env python3
"""Where OffsetAllocator's alloc+free time goes: builds four variants of the header and runs the
same steady-state loop (10,000 live allocations of random sizes 1..4,096, seed 20261121) on each,
interleaved, REPS rounds, and prints the median of each.

  full     the allocator as it is
  notable  free() is handed the node index (as sebbbi's handle carries it): no lookup by offset
  noheap   free regions of one exact size in an unordered list: no lowest-offset tie-break
  neither  both of the above

The variants are wrong on purpose (no exactness, no validation): they only say what the two
requirements cost. Usage: perf/offset_allocator_breakdown.py [REPS]   (needs g++)
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "bufpool/offset_allocator.hpp"


def patch(text, old, new):
    if old not in text:
        sys.exit(f"breakdown: the header changed; cannot find:\n{old}")
    return text.replace(old, new, 1)


def no_table(s):
    s = patch(s, "    n(a).is_free = false;\n    owned_insert(a);",
              "    n(a).is_free = false;\n    last_node_ = a;")
    s = patch(s, "  bool free(Allocation a) noexcept {\n    if (a.size == 0) return true;\n"
                 "    const Found found = owned_find(a);\n    std::uint32_t x = found.node;\n"
                 "    if (x == nil) return false;\n    owned_erase(found);",
              "  bool free(Allocation a, std::uint32_t hint) noexcept {\n"
              "    if (a.size == 0) return true;\n    std::uint32_t x = hint;")
    return patch(s, "  std::size_t max_allocations_;",
                 " public:\n  std::uint32_t last_node_ = 0;\n\n private:\n  std::size_t max_allocations_;")


def no_heap(s):
    s = patch(s, "    if (b < exact_limit) {\n      if (root_[b] == nil) bins_.set(b);\n"
                 "      root_[b] = heap_merge(root_[b], x);\n      return;\n    }",
              "    if (b < exact_limit) {\n      if (root_[b] == nil) bins_.set(b);\n"
              "      n(x).hleft = root_[b];\n      if (root_[b] != nil) n(root_[b]).hparent = x;\n"
              "      root_[b] = x;\n      return;\n    }")
    return patch(s, "  void bin_remove(std::uint32_t x) noexcept {\n    --free_regions_;\n",
                 "  void bin_remove(std::uint32_t x) noexcept {\n    --free_regions_;\n"
                 "    if (n(x).size < exact_limit) {\n"
                 "      const auto b = static_cast<std::uint32_t>(n(x).size);\n"
                 "      const std::uint32_t next = n(x).hleft, prev = n(x).hparent;\n"
                 "      if (prev != nil) n(prev).hleft = next; else root_[b] = next;\n"
                 "      if (next != nil) n(next).hparent = prev;\n"
                 "      if (root_[b] == nil) bins_.clear(b);\n      return;\n    }\n")


LOOP = r"""
#include "bufpool/offset_allocator.hpp"
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
using bufpool::OffsetAllocator;
int main() {
  constexpr std::size_t live_target = 10000;
  OffsetAllocator a(64u << 20, 2 * live_target);
  std::mt19937 rng{20261121};
  std::vector<std::uint32_t> sizes(1 << 16), victims(1 << 16), hint;
  for (auto& s : sizes) s = 1 + rng() % 4096;
  for (auto& v : victims) v = rng() % live_target;
  std::vector<OffsetAllocator::Allocation> live;
  for (std::size_t i = 0; i < live_target; ++i) {
    live.push_back(*a.try_allocate(sizes[i]));
#ifdef HINT
    hint.push_back(a.last_node_);
#endif
  }
  auto step = [&](std::size_t i) {
    const auto v = victims[i & 0xffff];
#ifdef HINT
    a.free(live[v], hint[v]);
    live[v] = *a.try_allocate(sizes[i & 0xffff]);
    hint[v] = a.last_node_;
#else
    a.free(live[v]);
    live[v] = *a.try_allocate(sizes[i & 0xffff]);
#endif
  };
  for (std::size_t i = 0; i < (1 << 18); ++i) step(i);
  const std::size_t n = 1 << 22;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) step(i);
  const auto t1 = std::chrono::steady_clock::now();
  std::printf("%.1f\n", std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
}
"""


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    source = open(os.path.join(ROOT, "lib", "include", HEADER)).read()
    variants = {"full": (source, False), "notable": (no_table(source), True),
                "noheap": (no_heap(source), False), "neither": (no_heap(no_table(source)), True)}
    work = tempfile.mkdtemp(prefix="oa-breakdown-")
    try:
        binaries = {}
        for name, (text, hint) in variants.items():
            inc = os.path.join(work, name)
            shutil.copytree(os.path.join(ROOT, "lib", "include"), inc)
            open(os.path.join(inc, HEADER), "w").write(text)
            src = os.path.join(work, name + ".cpp")
            open(src, "w").write(LOOP)
            exe = os.path.join(work, name)
            binaries[name] = exe + ".bin"
            subprocess.run(["g++", "-std=c++20", "-O3", "-DNDEBUG"] + (["-DHINT"] if hint else [])
                           + ["-I", inc, src, os.path.join(ROOT, "lib", "src", "error.cpp"),
                              "-o", binaries[name]], check=True)
        runs = {name: [] for name in variants}
        for _ in range(reps):
            for name, exe in binaries.items():
                runs[name].append(float(subprocess.run([exe], check=True, capture_output=True,
                                                       text=True).stdout))
        for name in variants:
            print(f"{name:8} median {statistics.median(runs[name]):6.1f} ns  runs "
                  + " / ".join(f"{r:.1f}" for r in runs[name]))
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
