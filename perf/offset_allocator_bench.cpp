// OffsetAllocator: allocate + free at 10,000 live allocations of random sizes, its worst case,
// and the utilisation at the first failure of a random fill.
//
//   steady/10k_live        free a random live allocation, allocate a random size (1..4096),
//                          exact placement, freed by {offset, size}; /exact_handle freed by
//                          Handle (no table); /good_fit good-fit placement with handles;
//                          /good_fit_offset_size good fit freed by {offset, size}
//   steady_latency         the same, each operation timed alone: p50 / p99 / p99.99 / max
//                          (includes about 20 ns of clock overhead per reading)
//   fill/monotonic         allocate random sizes into an empty range until the first failure
//   fill/churn             55% allocate, 45% free a random live one, until the first failure
//
// Context in the same run, on the same sizes and the same victims:
//   steady/two_level_bitmap  the O(1) design of sebbbi/OffsetAllocator (two_level_bitmap.hpp)
//   steady/std_map_best_fit  the best fit most users would write: std::set by (size, offset) and
//                            std::map by offset, nodes from the heap
//   steady/<malloc>          glibc, jemalloc, mimalloc, tcmalloc: malloc(size) / free. Not the
//                            same job (they hand out memory and may round sizes up to classes),
//                            but the cost a user pays today for a buffer of that size
#include "bufpool/offset_allocator.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "malloc_peers.hpp"
#include "percentile.hpp"
#include "two_level_bitmap.hpp"

namespace {

using bufpool::OffsetAllocator;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t capacity = 64u << 20;
constexpr std::size_t live_target = 10'000;

// The workload, whatever serves it: pre-drawn sizes and victims, so the RNG is not measured.
struct Workload {
  std::vector<std::uint32_t> sizes;
  std::vector<std::uint32_t> victims;
  Workload() {
    std::mt19937 rng{20261121};
    sizes.resize(1 << 16);
    victims.resize(1 << 16);
    for (auto& s : sizes)
      s = 1 + rng() % 4096;
    for (auto& v : victims)
      v = static_cast<std::uint32_t>(rng() % live_target);
  }
};
const Workload& workload() {
  static const Workload w;
  return w;
}

// How the allocator is set up and used: exact or good fit, and freed through the 8-byte
// {offset, size} (lookup_by_offset) or through a Handle that carries the node (no table).
struct Mode {
  bufpool::Placement placement = bufpool::Placement::exact;
  bool handles = false;
};

template <bool Handles>
struct Steady {
  using Live = std::conditional_t<Handles, OffsetAllocator::Handle, OffsetAllocator::Allocation>;
  OffsetAllocator allocator;
  std::vector<Live> live;
  const Workload& w = workload();

  explicit Steady(bufpool::Placement placement)
      : allocator(capacity, bufpool::OffsetAllocatorOptions{.max_allocations = 2 * live_target,
                                                            .placement = placement,
                                                            .lookup_by_offset = !Handles}) {
    for (std::size_t i = 0; i < live_target; ++i)
      live.push_back(take(w.sizes[i]));
    for (std::size_t i = 0; i < (1 << 16); ++i)
      step(i);  // reach a fragmented steady state
  }
  Live take(std::uint32_t size) {
    std::error_code ec;
    Live a;
    if constexpr (Handles)
      a = allocator.try_allocate_handle(size, 1, ec);
    else
      a = allocator.try_allocate(size, 1, ec);
    if (ec) std::abort();  // 64 Mi units hold 10,000 allocations of at most 4,096 easily
    return a;
  }
  void step(std::size_t i) {
    auto& slot = live[w.victims[i & 0xffff]];
    if (!allocator.free(slot)) std::abort();
    slot = take(w.sizes[i & 0xffff]);
  }
};

// Exact best fit the usual way, for comparison: two ordered trees on the heap.
class MapBestFit {
 public:
  explicit MapBestFit(std::uint32_t units) { insert(0, units); }
  std::uint32_t allocate(std::uint32_t size) {
    auto it = by_size_.lower_bound({size, 0});
    if (it == by_size_.end()) std::abort();
    const auto [region_size, offset] = *it;
    by_size_.erase(it);
    by_offset_.erase(offset);
    if (region_size > size) insert(offset + size, region_size - size);
    return offset;
  }
  void free(std::uint32_t offset, std::uint32_t size) {
    auto next = by_offset_.lower_bound(offset);
    if (next != by_offset_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == offset) {
        offset = prev->first;
        size += prev->second;
        by_size_.erase({prev->second, prev->first});
        by_offset_.erase(prev);
      }
    }
    if (next != by_offset_.end() && offset + size == next->first) {
      size += next->second;
      by_size_.erase({next->second, next->first});
      by_offset_.erase(next);
    }
    insert(offset, size);
  }

 private:
  void insert(std::uint32_t offset, std::uint32_t size) {
    by_size_.emplace(size, offset);
    by_offset_.emplace(offset, size);
  }
  std::set<std::pair<std::uint32_t, std::uint32_t>> by_size_;
  std::map<std::uint32_t, std::uint32_t> by_offset_;
};

void steady_map(benchmark::State& st) {
  const Workload& w = workload();
  MapBestFit m(capacity);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> live;
  for (std::size_t i = 0; i < live_target; ++i)
    live.emplace_back(m.allocate(w.sizes[i]), w.sizes[i]);
  auto step = [&](std::size_t i) {
    auto& slot = live[w.victims[i & 0xffff]];
    m.free(slot.first, slot.second);
    const std::uint32_t size = w.sizes[i & 0xffff];
    slot = {m.allocate(size), size};
  };
  for (std::size_t i = 0; i < (1 << 16); ++i)
    step(i);
  std::size_t i = 0;
  for (auto _ : st)
    step(i++);
}

// The O(1) two-level-bitmap design (perf/two_level_bitmap.hpp), on the same workload.
void steady_two_level(benchmark::State& st) {
  const Workload& w = workload();
  bufpool::perf::TwoLevelBitmap t(capacity, 4 * live_target);
  std::vector<bufpool::perf::TwoLevelBitmap::Allocation> live;
  for (std::size_t i = 0; i < live_target; ++i)
    live.push_back(t.allocate(w.sizes[i]));
  auto step = [&](std::size_t i) {
    auto& slot = live[w.victims[i & 0xffff]];
    t.free(slot);
    slot = t.allocate(w.sizes[i & 0xffff]);
    if (slot.node == bufpool::perf::TwoLevelBitmap::none) std::abort();
  };
  for (std::size_t i = 0; i < (1 << 16); ++i)
    step(i);
  std::size_t i = 0;
  for (auto _ : st)
    step(i++);
}

void steady_malloc(benchmark::State& st, const bufpool::perf::MallocPeer& m) {
  const Workload& w = workload();
  std::vector<void*> live;
  for (std::size_t i = 0; i < live_target; ++i)
    live.push_back(m.allocate(w.sizes[i]));
  auto step = [&](std::size_t i) {
    void*& slot = live[w.victims[i & 0xffff]];
    m.deallocate(slot);
    slot = m.allocate(w.sizes[i & 0xffff]);
    benchmark::DoNotOptimize(slot);
  };
  for (std::size_t i = 0; i < (1 << 16); ++i)
    step(i);
  std::size_t i = 0;
  for (auto _ : st)
    step(i++);
  for (void* p : live)
    m.deallocate(p);
}

template <bool Handles>
void steady(benchmark::State& st, bufpool::Placement placement) {
  Steady<Handles> s(placement);
  std::size_t i = 0;
  for (auto _ : st)
    s.step(i++);
  st.counters["free_regions"] = static_cast<double>(s.allocator.free_region_count());
}

void steady_latency(benchmark::State& st) {
  Steady<false> s(bufpool::Placement::exact);
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

void fill(benchmark::State& st, bool churn, bufpool::Placement placement) {
  double utilisation = 0;
  std::mt19937 rng(7);
  for (auto _ : st) {
    OffsetAllocator a(capacity, {.max_allocations = 1 << 20, .placement = placement});
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

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  using bufpool::Placement;
  benchmark::RegisterBenchmark("steady/10k_live", steady<false>, Placement::exact);
  benchmark::RegisterBenchmark("steady/10k_live/exact_handle", steady<true>, Placement::exact);
  benchmark::RegisterBenchmark("steady/10k_live/good_fit", steady<true>, Placement::good_fit);
  benchmark::RegisterBenchmark("steady/10k_live/good_fit_offset_size", steady<false>,
                               Placement::good_fit);
  benchmark::RegisterBenchmark("steady/std_map_best_fit", steady_map);
  benchmark::RegisterBenchmark("steady/two_level_bitmap", steady_two_level);
  for (const auto& m : bufpool::perf::load_malloc_peers())
    benchmark::RegisterBenchmark(("steady/" + m.name).c_str(), steady_malloc, m);
  benchmark::RegisterBenchmark("steady_latency/10k_live", steady_latency)->Iterations(1 << 20);
  benchmark::RegisterBenchmark("fill/monotonic", fill, false, Placement::exact)->Iterations(1);
  benchmark::RegisterBenchmark("fill/churn", fill, true, Placement::exact)->Iterations(1);
  benchmark::RegisterBenchmark("fill/monotonic/good_fit", fill, false, Placement::good_fit)
      ->Iterations(1);
  benchmark::RegisterBenchmark("fill/churn/good_fit", fill, true, Placement::good_fit)
      ->Iterations(1);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
