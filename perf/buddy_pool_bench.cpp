// BuddyPool against glibc, jemalloc, mimalloc and tcmalloc, in one process run.
//
//   alloc_free/<who>/<size>/<touch>  allocate + free one buffer; touch=1 writes one byte per page
//   mix64/<who>/<touch>              64 live buffers of random levels; each step frees one and
//                                    allocates another (fixed seed)
//   co_await/...                     co_await async_allocate when memory is free, against a bare
//                                    co_await asio::post round trip and the synchronous call
//   wake_latency                     free on one thread -> the waiting coroutine resumes on another
//   contended/<who>                  two threads allocate + free 1 MiB on one shared allocator
#include "bufpool/buddy_pool.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "malloc_peers.hpp"
#include "percentile.hpp"

namespace {

namespace asio = boost::asio;
using bufpool::BuddyPool;
using bufpool::Buffer;
using bufpool::GiB;
using bufpool::MiB;
using bufpool::perf::MallocPeer;
using Clock = std::chrono::steady_clock;

constexpr std::size_t page = 4096;
constexpr std::array<std::size_t, 4> level_sizes{1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB};

// Lazily grown, so the pool holds only what the benchmarks use.
BuddyPool& shared_pool() {
  static BuddyPool pool({.max_memory = 16 * GiB});
  return pool;
}

void touch(void* p, std::size_t n) {
  auto* bytes = static_cast<char*>(p);
  for (std::size_t i = 0; i < n; i += page)
    bytes[i] = 1;
  benchmark::ClobberMemory();
}

void alloc_free_pool(benchmark::State& st, std::size_t size, bool touched) {
  auto& pool = shared_pool();
  std::error_code ec;  // reused, as a hot loop would: constructing one is a libstdc++ call
  for (auto _ : st) {
    Buffer b = pool.try_allocate(size, ec);
    if (!b) {  // a failed allocation is not a measurement
      st.SkipWithError(ec.message().c_str());
      break;
    }
    if (touched) touch(b.data(), size);
    benchmark::DoNotOptimize(b.data());
  }
}

void alloc_free_malloc(benchmark::State& st, const MallocPeer& m, std::size_t size, bool touched) {
  for (auto _ : st) {
    void* p = m.allocate(size);
    if (touched) touch(p, size);
    benchmark::DoNotOptimize(p);
    m.deallocate(p);
  }
}

// The same random sequence of sizes for every allocator: levels uniformly, sizes within a level.
const std::vector<std::size_t>& mix_sizes() {
  static const std::vector<std::size_t> sizes = [] {
    std::mt19937_64 rng(20261121);
    std::vector<std::size_t> v(4096);
    for (auto& s : v) {
      const std::size_t level = rng() % level_sizes.size();
      const std::size_t lo = level == 0 ? 1 : level_sizes[level - 1] + 1;
      s = lo + rng() % (level_sizes[level] - lo + 1);
    }
    return v;
  }();
  return sizes;
}

void* ptr_of(Buffer& b) {
  return b.data();
}
void* ptr_of(char* p) {
  return p;
}

template <typename Alloc, typename Free>
void steady_mix(benchmark::State& st, bool touched, Alloc alloc, Free free) {
  const auto& sizes = mix_sizes();
  constexpr std::size_t live = 64;
  std::vector<decltype(alloc(1))> slots;
  for (std::size_t i = 0; i < live; ++i)
    slots.push_back(alloc(sizes[i]));
  std::size_t step = live;
  auto one_step = [&] {
    auto& slot = slots[step % live];
    free(slot);
    const std::size_t size = sizes[step % sizes.size()];
    slot = alloc(size);
    if (touched) touch(ptr_of(slot), size);
    benchmark::DoNotOptimize(ptr_of(slot));
    ++step;
  };
  // Untimed warm-up, the same for every allocator: steady state, not first-touch page faults of
  // memory that a long-running server would already hold.
  for (int i = 0; i < 256; ++i)
    one_step();
  for (auto _ : st)
    one_step();
  for (auto& s : slots)
    free(s);
}

// Configured as a server would run it: the whole limit reserved and prefaulted at start, so
// the memory is resident before the first request. 64 live buffers of at most 64 MiB always fit
// in 64 chunks (one of them is always whole), so the mix never runs out.
BuddyPool& mix_pool_instance() {
  static BuddyPool pool({.max_memory = 4 * GiB,
                         .reserve = 4 * GiB,
                         .backing = bufpool::make_mmap_chunk_allocator({.prefault = true})});
  return pool;
}

void mix_pool(benchmark::State& st, bool touched) {
  auto& pool = mix_pool_instance();
  steady_mix(
      st, touched,
      [&](std::size_t n) {
        std::error_code ec;
        Buffer b = pool.try_allocate(n, ec);
        if (ec) std::abort();
        return b;
      },
      [](Buffer& b) { b.reset(); });
  const auto stats = pool.stats();
  st.counters["chunks"] = static_cast<double>(stats.chunks_held);
}

void mix_malloc(benchmark::State& st, const MallocPeer& m, bool touched) {
  steady_mix(
      st, touched, [&](std::size_t n) { return static_cast<char*>(m.allocate(n)); },
      [&](char*& p) { m.deallocate(p); });
}

// ---- asynchronous paths ----

template <typename Body>
void run_coroutine(benchmark::State& st, Body body) {
  asio::io_context io(1);
  asio::co_spawn(io, body(st), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}

asio::awaitable<void> co_await_allocate(benchmark::State& st) {
  auto& pool = shared_pool();
  for (auto _ : st) {
    Buffer b = co_await pool.async_allocate(1 * MiB, asio::use_awaitable);
    benchmark::DoNotOptimize(b.data());
  }
}

asio::awaitable<void> co_await_post(benchmark::State& st) {
  auto ex = co_await asio::this_coro::executor;
  for (auto _ : st)
    co_await asio::post(ex, asio::use_awaitable);
}

asio::awaitable<void> try_allocate_in_coroutine(benchmark::State& st) {
  auto& pool = shared_pool();
  for (auto _ : st) {
    std::error_code ec;
    Buffer b = pool.try_allocate(1 * MiB, ec);
    if (!b) std::abort();  // a failed allocation is not a measurement
    benchmark::DoNotOptimize(b.data());
  }
  co_return;
}

// Free on this thread, resume on the io thread: the time between the two, per iteration.
// busy=false: the io thread sleeps in epoll between events, as an idle server's does, so the
// figure includes the kernel waking it. busy=true: the io thread polls, as a loaded server's is
// busy. pool=false is the baseline: a plain asio::post to the same thread, no pool involved.
void wake_latency(benchmark::State& st, bool use_pool, bool busy) {
  BuddyPool pool({.max_memory = 64 * MiB});
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  std::atomic<bool> stop{false};
  std::thread io_thread([&] {
    if (busy) {
      while (!stop.load(std::memory_order_relaxed))
        io.poll();
    } else {
      io.run();
    }
  });
  std::atomic<std::int64_t> resumed{0};
  std::atomic<bool> finished{false};
  std::vector<double> latencies;
  latencies.reserve(static_cast<std::size_t>(st.max_iterations));
  for (auto _ : st) {
    Buffer whole = pool.allocate(64 * MiB);
    resumed.store(0);
    finished.store(false);
    std::int64_t t0 = 0;
    if (use_pool) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            Buffer b = co_await pool.async_allocate(16 * MiB, asio::use_awaitable);
            resumed.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
            b.reset();  // before the next iteration asks for the whole chunk again
            finished.store(true, std::memory_order_release);
          },
          asio::detached);
      while (pool.stats().waiters == 0)
        std::this_thread::yield();
      if (!busy) std::this_thread::sleep_for(std::chrono::microseconds(50));  // let it sleep
      t0 = Clock::now().time_since_epoch().count();
      whole.reset();
    } else {
      if (!busy) std::this_thread::sleep_for(std::chrono::microseconds(50));
      t0 = Clock::now().time_since_epoch().count();
      asio::post(io, [&] {
        resumed.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
        finished.store(true, std::memory_order_release);
      });
    }
    std::int64_t t1;
    while ((t1 = resumed.load(std::memory_order_acquire)) == 0) {
    }
    while (!finished.load(std::memory_order_acquire)) {
    }
    const double seconds = static_cast<double>(t1 - t0) * 1e-9;
    st.SetIterationTime(seconds);
    latencies.push_back(seconds * 1e6);
  }
  stop.store(true);
  guard.reset();
  io.stop();
  io_thread.join();
  std::sort(latencies.begin(), latencies.end());
  st.counters["p50_us"] = bufpool::perf::percentile(latencies, 0.50);
  st.counters["p99_us"] = bufpool::perf::percentile(latencies, 0.99);
  st.counters["max_us"] = latencies.back();
}

// ---- two threads on one allocator ----

void contended_pool(benchmark::State& st) {
  auto& pool = shared_pool();
  for (auto _ : st) {
    std::error_code ec;
    Buffer b = pool.try_allocate(1 * MiB, ec);
    if (!b) {
      st.SkipWithError(ec.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(b.data());
  }
}

void contended_malloc(benchmark::State& st, const MallocPeer& m) {
  for (auto _ : st) {
    void* p = m.allocate(1 * MiB);
    benchmark::DoNotOptimize(p);
    m.deallocate(p);
  }
}

std::string size_name(std::size_t s) {
  return std::to_string(s / MiB) + "MiB";
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const auto peers = bufpool::perf::load_malloc_peers();

  for (std::size_t size : level_sizes) {
    for (bool touched : {false, true}) {
      const std::string suffix = "/" + size_name(size) + "/touch:" + (touched ? "1" : "0");
      benchmark::RegisterBenchmark(("alloc_free/bufpool" + suffix).c_str(), alloc_free_pool, size,
                                   touched);
      for (const auto& m : peers) {
        benchmark::RegisterBenchmark(("alloc_free/" + m.name + suffix).c_str(), alloc_free_malloc,
                                     m, size, touched);
      }
    }
  }
  for (bool touched : {false, true}) {
    const std::string suffix = std::string("/touch:") + (touched ? "1" : "0");
    benchmark::RegisterBenchmark(("mix64/bufpool" + suffix).c_str(), mix_pool, touched);
    for (const auto& m : peers) {
      benchmark::RegisterBenchmark(("mix64/" + m.name + suffix).c_str(), mix_malloc, m, touched);
    }
  }
  benchmark::RegisterBenchmark("co_await/async_allocate_1MiB",
                               [](benchmark::State& st) { run_coroutine(st, co_await_allocate); });
  benchmark::RegisterBenchmark("co_await/asio_post_baseline",
                               [](benchmark::State& st) { run_coroutine(st, co_await_post); });
  benchmark::RegisterBenchmark("co_await/try_allocate_1MiB_sync", [](benchmark::State& st) {
    run_coroutine(st, try_allocate_in_coroutine);
  });
  for (bool busy : {false, true}) {
    const std::string mode = busy ? "/busy_io_thread" : "/idle_io_thread";
    benchmark::RegisterBenchmark(("wake_latency/free_to_resume" + mode).c_str(), wake_latency, true,
                                 busy)
        ->UseManualTime()
        ->Iterations(2000)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("wake_latency/asio_post_baseline" + mode).c_str(), wake_latency,
                                 false, busy)
        ->UseManualTime()
        ->Iterations(2000)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("contended/bufpool", contended_pool)->Threads(2)->UseRealTime();
  for (const auto& m : peers) {
    benchmark::RegisterBenchmark(("contended/" + m.name).c_str(), contended_malloc, m)
        ->Threads(2)
        ->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
