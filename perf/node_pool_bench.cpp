// NodePool against glibc, jemalloc, mimalloc and tcmalloc, in one process run.
//
//   single/<who>/<size>     allocate + free one node on one thread
//   handoff/<who>/<size>    one thread allocates, another frees (through a lock-free SPSC ring);
//                           time per node, wall clock, both cores busy
#include "bufpool/node_pool.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "malloc_peers.hpp"

namespace {

using bufpool::NodePool;
using bufpool::perf::MallocPeer;

void pause() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

NodePool& pool_for(std::size_t size) {
  static NodePool p64({.node_size = 64, .nodes_per_slab = 4096});
  static NodePool p256({.node_size = 256, .nodes_per_slab = 4096});
  return size == 64 ? p64 : p256;
}

void single_pool(benchmark::State& st, std::size_t size) {
  NodePool& pool = pool_for(size);
  for (auto _ : st) {
    void* p = pool.try_allocate();
    if (!p) {
      st.SkipWithError("allocation failed");
      break;
    }
    benchmark::DoNotOptimize(p);
    pool.deallocate(p);
  }
}

void single_malloc(benchmark::State& st, const MallocPeer& m, std::size_t size) {
  for (auto _ : st) {
    void* p = m.allocate(size);
    benchmark::DoNotOptimize(p);
    m.deallocate(p);
  }
}

// Single-producer single-consumer ring; head and tail on their own cache lines.
struct Ring {
  static constexpr std::size_t capacity = 1024;
  alignas(64) std::atomic<std::size_t> head{0};
  alignas(64) std::atomic<std::size_t> tail{0};
  alignas(64) void* slots[capacity];

  bool push(void* p) {
    const auto h = head.load(std::memory_order_relaxed);
    if (h - tail.load(std::memory_order_acquire) == capacity) return false;
    slots[h % capacity] = p;
    head.store(h + 1, std::memory_order_release);
    return true;
  }
  void* pop() {
    const auto t = tail.load(std::memory_order_relaxed);
    if (t == head.load(std::memory_order_acquire)) return nullptr;
    void* p = slots[t % capacity];
    tail.store(t + 1, std::memory_order_release);
    return p;
  }
};

template <typename Alloc, typename Free>
void handoff(benchmark::State& st, Alloc alloc, Free free) {
  constexpr std::size_t per_iteration = 65536;
  Ring ring;
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    for (;;) {
      if (void* p = ring.pop()) {
        free(p);
      } else if (stop.load(std::memory_order_acquire)) {
        while ((p = ring.pop()))
          free(p);
        return;
      } else {
        pause();
      }
    }
  });
  for (auto _ : st) {
    for (std::size_t i = 0; i < per_iteration; ++i) {
      void* p = alloc();
      *static_cast<std::uint64_t*>(p) = i;  // touch it, as a real producer would
      while (!ring.push(p))
        pause();
    }
    while (ring.tail.load(std::memory_order_acquire) != ring.head.load(std::memory_order_relaxed)) {
      pause();
    }
  }
  stop.store(true, std::memory_order_release);
  consumer.join();
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * per_iteration));
}

void handoff_pool(benchmark::State& st, std::size_t size) {
  NodePool& pool = pool_for(size);
  handoff(
      st, [&] { return pool.allocate(); }, [](void* p) { NodePool::free(p); });
}

void handoff_malloc(benchmark::State& st, const MallocPeer& m, std::size_t size) {
  handoff(
      st, [&] { return m.allocate(size); }, [&](void* p) { m.deallocate(p); });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const auto peers = bufpool::perf::load_malloc_peers();
  for (std::size_t size : {std::size_t{64}, std::size_t{256}}) {
    const std::string s = "/" + std::to_string(size) + "B";
    benchmark::RegisterBenchmark(("single/bufpool" + s).c_str(), single_pool, size);
    for (const auto& m : peers) {
      benchmark::RegisterBenchmark(("single/" + m.name + s).c_str(), single_malloc, m, size);
    }
  }
  for (std::size_t size : {std::size_t{64}, std::size_t{256}}) {
    const std::string s = "/" + std::to_string(size) + "B";
    benchmark::RegisterBenchmark(("handoff/bufpool" + s).c_str(), handoff_pool, size)
        ->UseRealTime();
    for (const auto& m : peers) {
      benchmark::RegisterBenchmark(("handoff/" + m.name + s).c_str(), handoff_malloc, m, size)
          ->UseRealTime();
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
