// BufferStore's index: get of a present key, a missing key, and a put that replaces a value, with
// 10,000 and 1,000,000 keys (fixed seed). Issue 11: the index without a heap node per key.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "bufpool/buddy_pool.hpp"
#include "store.hpp"

namespace {

using bufpool::server::BufferStore;

struct Filled {
  BufferStore store{64u << 20, 1u << 21};
  std::vector<std::string> keys;
  bufpool::SharedBuffer value;
  explicit Filled(std::size_t n) {
    static bufpool::BuddyPool pool({.chunk_size = 4 * bufpool::MiB,
                                    .min_block = 4 * bufpool::KiB,
                                    .max_memory = 4 * bufpool::MiB});
    value = bufpool::SharedBuffer(pool.allocate(100));
    std::mt19937_64 rng(42);  // fixed seed
    for (std::size_t i = 0; i < n; ++i) {
      keys.push_back("bench-" + std::to_string(rng() % 100'000'000) + "-" + std::to_string(i));
      store.put(keys.back(), value);
    }
  }
};

Filled& filled(std::size_t n) {
  static Filled small(10'000), large(1'000'000);
  return n == 10'000 ? small : large;
}

void BM_GetHit(benchmark::State& st) {
  Filled& f = filled(static_cast<std::size_t>(st.range(0)));
  std::size_t i = 0;
  for (auto _ : st) {
    auto v = f.store.get(f.keys[i]);
    benchmark::DoNotOptimize(v);
    i = (i + 7919) % f.keys.size();
  }
}
BENCHMARK(BM_GetHit)->Arg(10'000)->Arg(1'000'000);

void BM_GetMiss(benchmark::State& st) {
  Filled& f = filled(static_cast<std::size_t>(st.range(0)));
  std::vector<std::string> missing;
  for (int i = 0; i < 4096; ++i)
    missing.push_back("missing-" + std::to_string(i));
  std::size_t i = 0;
  for (auto _ : st) {
    auto v = f.store.get(missing[i++ & 4095]);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_GetMiss)->Arg(10'000)->Arg(1'000'000);

void BM_PutReplace(benchmark::State& st) {
  Filled& f = filled(static_cast<std::size_t>(st.range(0)));
  std::size_t i = 0;
  for (auto _ : st) {
    benchmark::DoNotOptimize(f.store.put(f.keys[i], f.value));
    i = (i + 7919) % f.keys.size();
  }
}
BENCHMARK(BM_PutReplace)->Arg(10'000)->Arg(1'000'000);

}  // namespace

BENCHMARK_MAIN();
