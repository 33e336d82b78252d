// Issue 10's small costs: a SharedBuffer slice, a Quota acquire + release, and a 1 MiB
// allocate + free (built twice, with and without the release checks, by perf/handles.sh).
// Each benchmark also reports the heap calls it made per iteration (malloc is counted).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "bufpool/buddy_pool.hpp"
#include "bufpool/quota.hpp"
#include "bufpool/shared_buffer.hpp"

namespace {
std::atomic<long> g_heap_calls{0};
}  // namespace

// Every heap call of the process goes through malloc (operator new included): counted here.
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* malloc(std::size_t n) {
  g_heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}

namespace {

using namespace bufpool;

void report_heap(benchmark::State& st, long before) {
  st.counters["heap_calls_per_op"] = benchmark::Counter(
      static_cast<double>(g_heap_calls.load() - before) / static_cast<double>(st.iterations()));
}

// Allocate + free of a 1 MiB block on a warm pool: what the release checks add to.
void BM_AllocFree1MiB(benchmark::State& st) {
  BuddyPool pool({.max_memory = 256 * MiB, .reserve = 64 * MiB});
  std::error_code ec;
  const long before = g_heap_calls.load();
  for (auto _ : st) {
    Buffer b = pool.try_allocate(1 * MiB, ec);
    benchmark::DoNotOptimize(b.data());
  }
  report_heap(st, before);
}
BENCHMARK(BM_AllocFree1MiB);

// A slice made and dropped: the atomic increment and decrement of the block's count.
void BM_SliceAndDrop(benchmark::State& st) {
  BuddyPool pool({.max_memory = 64 * MiB});
  SharedBuffer whole(pool.allocate(64 * KiB));
  std::size_t offset = 0;
  const long before = g_heap_calls.load();
  for (auto _ : st) {
    SharedBuffer part = whole.slice(offset, 1000);
    benchmark::DoNotOptimize(part.data());
    offset = (offset + 4096) & (32 * KiB - 1);
  }
  report_heap(st, before);
}
BENCHMARK(BM_SliceAndDrop);

// Slicing alone: batches of slices are made in the timed part and dropped with the timer paused.
void BM_Slice(benchmark::State& st) {
  constexpr std::size_t batch = 4096;
  BuddyPool pool({.max_memory = 64 * MiB});
  SharedBuffer whole(pool.allocate(64 * KiB));
  std::vector<SharedBuffer> parts(batch);
  const long before = g_heap_calls.load();
  for (auto _ : st) {
    for (std::size_t i = 0; i < batch; ++i)
      parts[i] = whole.slice((i * 4096) & (32 * KiB - 1), 1000);
    st.PauseTiming();
    for (auto& p : parts)
      p.reset();
    st.ResumeTiming();
  }
  st.counters["heap_calls_per_op"] = benchmark::Counter(
      static_cast<double>(g_heap_calls.load() - before) / static_cast<double>(st.iterations()));
  st.counters["ns_per_slice"] =
      benchmark::Counter(static_cast<double>(st.iterations() * batch),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Slice);

// The floor under a slice: one relaxed atomic increment of a counter in cache (a slice is that,
// plus the lookup of the block's count), measured the same way.
void BM_AtomicIncrement(benchmark::State& st) {
  constexpr std::size_t batch = 4096;
  std::atomic<std::uint32_t> count{1};
  for (auto _ : st) {
    for (std::size_t i = 0; i < batch; ++i)
      count.fetch_add(1, std::memory_order_relaxed);
    st.PauseTiming();
    count.store(1, std::memory_order_relaxed);
    st.ResumeTiming();
  }
  st.counters["heap_calls_per_op"] = 0;
  st.counters["ns_per_slice"] =
      benchmark::Counter(static_cast<double>(st.iterations() * batch),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_AtomicIncrement);

// try_acquire + release on an uncontended Quota.
void BM_QuotaAcquireRelease(benchmark::State& st) {
  Quota quota(1 * GiB);
  std::error_code ec;
  const long before = g_heap_calls.load();
  for (auto _ : st) {
    QuotaUnits u = quota.try_acquire(256 * KiB, ec);
    benchmark::DoNotOptimize(&u);
  }
  report_heap(st, before);
}
BENCHMARK(BM_QuotaAcquireRelease);

}  // namespace

BENCHMARK_MAIN();
