// OrderedPool: index, allocate and free per operation, and sorting against std::sort.
//
//   index                      pool[i] for random virtual positions (10,000 live objects)
//   allocate / free            1,024 allocations, then 1,024 frees in random order, timed per phase
//   malloc_alloc / _free/<m>   the same pattern on each malloc, for context (32-byte objects)
//   sort/pool                  sort 1,000,000 objects by key (no object moves)
//   sort/std_sort_pointers     std::sort of 1,000,000 pointers to the same objects by key
#include "bufpool/ordered_pool.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <new>
#include <numeric>
#include <random>
#include <vector>

#include "malloc_peers.hpp"

namespace {

using bufpool::OrderedPool;
using Clock = std::chrono::steady_clock;

struct Object {
  std::uint64_t key;
  std::uint64_t payload[3] = {};
};

void index(benchmark::State& st) {
  OrderedPool<Object> pool(10'000);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10'000; ++i)
    pool.allocate(Object{rng(), {}});
  std::vector<std::uint32_t> positions(4096);
  for (auto& p : positions)
    p = static_cast<std::uint32_t>(rng() % 10'000);
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : st) {
    sum += pool[positions[i++ & 4095]].key;
    benchmark::DoNotOptimize(sum);
  }
}

// Shared by the pool and the mallocs: time `n` allocations, then `n` frees in random order.
template <typename Alloc, typename Free>
void alloc_then_free(benchmark::State& st, bool time_free, Alloc alloc, Free free) {
  constexpr std::size_t n = 1024;
  std::vector<Object*> live(n);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(2));
  for (auto _ : st) {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
      live[i] = alloc(i);
    benchmark::ClobberMemory();
    const auto t1 = Clock::now();
    for (std::size_t i : order)
      free(live[i]);
    benchmark::ClobberMemory();
    const auto t2 = Clock::now();
    st.SetIterationTime(std::chrono::duration<double>(time_free ? t2 - t1 : t1 - t0).count());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * n));
}

void pool_phase(benchmark::State& st, bool time_free) {
  OrderedPool<Object> pool(1024);
  alloc_then_free(
      // Constructed in place (parenthesised aggregate init): a temporary Object{...} copied in
      // would measure a store-forwarding stall of the copy, not the pool.
      st, time_free, [&](std::size_t i) { return pool.try_allocate(std::uint64_t{i}); },
      [&](Object* o) { pool.deallocate(o); });
}

void malloc_phase(benchmark::State& st, const bufpool::perf::MallocPeer& m, bool time_free) {
  alloc_then_free(
      st, time_free,
      [&](std::size_t i) {
        return ::new (m.allocate(sizeof(Object))) Object(std::uint64_t{i});  // same construction
      },
      [&](Object* o) { m.deallocate(o); });
}

constexpr std::size_t sort_n = 1'000'000;

void sort_pool(benchmark::State& st) {
  OrderedPool<Object> pool(sort_n);
  std::mt19937_64 rng(3);
  for (std::size_t i = 0; i < sort_n; ++i)
    pool.allocate(Object{rng(), {}});
  for (auto _ : st) {
    st.PauseTiming();
    for (auto& o : pool)
      o.key = rng();  // a fresh random order each time
    st.ResumeTiming();
    pool.sort([](const Object& a, const Object& b) { return a.key < b.key; });
  }
  if (!std::is_sorted(pool.begin(), pool.end(),
                      [](const Object& a, const Object& b) { return a.key < b.key; })) {
    st.SkipWithError("not sorted");
  }
}

void sort_pointers(benchmark::State& st) {
  std::vector<Object> objects(sort_n);
  std::vector<Object*> pointers(sort_n);
  for (std::size_t i = 0; i < sort_n; ++i)
    pointers[i] = &objects[i];
  std::mt19937_64 rng(3);
  // Like the pool, each round starts from the previous round's order with fresh random keys: a
  // random permutation of addresses. (Resetting the pointers to address order would give the
  // baseline a memory-friendly start that the pool does not get.)
  for (auto _ : st) {
    st.PauseTiming();
    for (auto& o : objects)
      o.key = rng();
    st.ResumeTiming();
    std::sort(pointers.begin(), pointers.end(),
              [](const Object* a, const Object* b) { return a->key < b->key; });
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const auto peers = bufpool::perf::load_malloc_peers();
  benchmark::RegisterBenchmark("ordered_pool/index", index);
  benchmark::RegisterBenchmark("ordered_pool/allocate", pool_phase, false)->UseManualTime();
  benchmark::RegisterBenchmark("ordered_pool/free", pool_phase, true)->UseManualTime();
  for (const auto& m : peers) {
    benchmark::RegisterBenchmark(("malloc_alloc/" + m.name).c_str(), malloc_phase, m, false)
        ->UseManualTime();
    benchmark::RegisterBenchmark(("malloc_free/" + m.name).c_str(), malloc_phase, m, true)
        ->UseManualTime();
  }
  benchmark::RegisterBenchmark("sort/pool_1M", sort_pool)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("sort/std_sort_pointers_1M", sort_pointers)
      ->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
