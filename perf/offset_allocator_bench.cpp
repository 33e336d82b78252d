// OffsetAllocator: allocate + free at 10,000 live allocations of random sizes, its worst case,
// and the utilisation at the first failure of a random fill.
//
//   steady/10k_live        free a random live allocation, allocate a random size (1..4096)
//   steady_latency         the same, each operation timed alone: p50 / p99 / p99.99 / max
//                          (includes about 20 ns of clock overhead per reading)
//   fill/monotonic         allocate random sizes into an empty range until the first failure
//   fill/churn             55% allocate, 45% free a random live one, until the first failure
#include "bufpool/offset_allocator.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "percentile.hpp"

namespace {

using bufpool::OffsetAllocator;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t capacity = 64u << 20;
constexpr std::size_t live_target = 10'000;

struct Steady {
  OffsetAllocator allocator{capacity, 2 * live_target};
  std::vector<OffsetAllocator::Allocation> live;
  std::mt19937 rng{20261121};
  std::vector<std::uint32_t> sizes;  // pre-drawn, so the RNG is not measured
  std::vector<std::uint32_t> victims;

  Steady() {
    sizes.resize(1 << 16);
    victims.resize(1 << 16);
    for (auto& s : sizes)
      s = 1 + rng() % 4096;
    for (auto& v : victims)
      v = static_cast<std::uint32_t>(rng() % live_target);
    for (std::size_t i = 0; i < live_target; ++i)
      live.push_back(*allocator.try_allocate(sizes[i]));
    for (std::size_t i = 0; i < (1 << 16); ++i)
      step(i);  // reach a fragmented steady state
  }
  void step(std::size_t i) {
    auto& slot = live[victims[i & 0xffff]];
    allocator.free(slot);
    auto a = allocator.try_allocate(sizes[i & 0xffff]);
    if (!a) std::abort();  // 64 Mi units hold 10,000 allocations of at most 4,096 easily
    slot = *a;
  }
};

void steady(benchmark::State& st) {
  Steady s;
  std::size_t i = 0;
  for (auto _ : st)
    s.step(i++);
  st.counters["free_regions"] = static_cast<double>(s.allocator.free_region_count());
}

void steady_latency(benchmark::State& st) {
  Steady s;
  std::vector<double> ns;
  ns.reserve(1 << 20);
  std::size_t i = 0;
  for (auto _ : st) {
    const auto t0 = Clock::now();
    s.step(i++);
    const auto t1 = Clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  st.counters["p50_ns"] = bufpool::perf::percentile(ns, 0.5);
  st.counters["p99_ns"] = bufpool::perf::percentile(ns, 0.99);
  st.counters["p9999_ns"] = bufpool::perf::percentile(ns, 0.9999);
  st.counters["max_ns"] = ns.back();
}

void fill(benchmark::State& st, bool churn) {
  double utilisation = 0;
  std::mt19937 rng(7);
  for (auto _ : st) {
    OffsetAllocator a(capacity, 1 << 20);
    std::vector<OffsetAllocator::Allocation> live;
    for (;;) {
      if (churn && !live.empty() && rng() % 100 < 45) {
        const std::size_t i = rng() % live.size();
        a.free(live[i]);
        live[i] = live.back();
        live.pop_back();
        continue;
      }
      auto got = a.try_allocate(1 + rng() % (1u << 16));
      if (!got) break;
      live.push_back(*got);
    }
    utilisation = 1.0 - static_cast<double>(a.total_available()) / capacity;
  }
  st.counters["utilisation"] = utilisation;
}

}  // namespace

BENCHMARK(steady)->Name("steady/10k_live");
BENCHMARK(steady_latency)->Name("steady_latency/10k_live")->Iterations(1 << 20);
BENCHMARK_CAPTURE(fill, monotonic, false)->Name("fill/monotonic")->Iterations(1);
BENCHMARK_CAPTURE(fill, churn, true)->Name("fill/churn")->Iterations(1);
BENCHMARK_MAIN();
