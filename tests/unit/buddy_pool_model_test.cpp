// Randomized test of BuddyPool against a reference model (fixed seed, printed; override with
// BUFPOOL_SEED). Checks after every step: no two live buffers overlap, each buffer keeps its bytes,
// out_of_memory is reported only when no aligned block of that size is free in any held chunk and
// no chunk can be added, and the statistics equal the model's. At the end all memory must merge
// back into whole chunks.
#include "bufpool/buddy_pool.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <vector>

#include "test_support.hpp"

namespace bufpool {
namespace {

// Records the chunks the pool holds, so the model can tell whether a block could fit.
class RecordingChunkAllocator final : public ChunkAllocator {
 public:
  void* allocate(std::size_t size, std::size_t alignment, std::error_code& ec) noexcept override {
    void* p = inner_.allocate(size, alignment, ec);
    if (p) chunks_.insert(static_cast<std::byte*>(p));
    return p;
  }
  void deallocate(void* chunk, std::size_t size) noexcept override {
    chunks_.erase(static_cast<std::byte*>(chunk));
    inner_.deallocate(chunk, size);
  }
  const std::set<std::byte*>& chunks() const { return chunks_; }

 private:
  test::CountingChunkAllocator inner_;
  std::set<std::byte*> chunks_;
};

std::uint64_t seed_from_env(std::uint64_t fallback) {
  const char* s = std::getenv("BUFPOOL_SEED");
  return s ? std::strtoull(s, nullptr, 0) : fallback;
}

struct Live {
  std::size_t size;
  std::size_t capacity;
  std::uint8_t tag;
};

void run_model(const BuddyPoolOptions& base, int steps, std::uint64_t seed) {
  std::printf("model test: seed=%llu steps=%d fanout=%u min_block=%zu chunk=%zu\n",
              static_cast<unsigned long long>(seed), steps, base.fanout, base.min_block,
              base.chunk_size);
  auto backing = std::make_shared<RecordingChunkAllocator>();
  BuddyPoolOptions options = base;
  options.backing = backing;
  BuddyPool pool(options);
  const std::size_t max_chunks = options.max_memory / options.chunk_size;
  std::mt19937_64 rng(seed);
  std::map<std::byte*, Live> live;  // keyed by address: neighbours give the overlap check
  std::vector<Buffer> buffers;
  std::size_t in_use = 0, requested = 0;

  auto fits_somewhere = [&](std::size_t block) {
    if (backing->chunks().size() < max_chunks) return true;
    for (std::byte* chunk : backing->chunks()) {
      for (std::size_t off = 0; off < options.chunk_size; off += block) {
        std::byte* b = chunk + off;
        auto it = live.lower_bound(b);
        bool clear = it == live.end() || it->first >= b + block;
        if (clear && it != live.begin()) {
          auto prev = std::prev(it);
          clear = prev->first + prev->second.capacity <= b;
        }
        if (clear) return true;
      }
    }
    return false;
  };

  for (int step = 0; step < steps; ++step) {
    const bool do_alloc = buffers.empty() || rng() % 100 < 55;
    if (do_alloc) {
      const unsigned level = static_cast<unsigned>(rng() % pool.levels());
      const std::size_t lo = level == 0 ? 1 : pool.block_size(level - 1) + 1;
      const std::size_t size = lo + rng() % (pool.block_size(level) - lo + 1);
      std::error_code ec;
      Buffer b = pool.try_allocate(size, ec);
      if (ec) {
        ASSERT_EQ(ec, errc::out_of_memory) << "step " << step;
        ASSERT_FALSE(fits_somewhere(pool.block_size(level)))
            << "step " << step << ": out_of_memory although a " << pool.block_size(level)
            << "-byte block is free";
        continue;
      }
      ASSERT_EQ(b.capacity(), pool.block_size(level)) << "step " << step;
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % b.capacity(), 0u)
          << "blocks are aligned to their size within chunk-aligned memory";
      auto next = live.lower_bound(b.data());
      ASSERT_TRUE(next == live.end() || next->first >= b.data() + b.capacity())
          << "step " << step << ": overlaps the next live buffer";
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second.capacity, b.data())
            << "step " << step << ": overlaps the previous live buffer";
      }
      const auto tag = static_cast<std::uint8_t>(rng());
      b.data()[0] = std::byte{tag};
      b.data()[b.capacity() - 1] = std::byte{tag};
      live.emplace(b.data(), Live{size, b.capacity(), tag});
      in_use += b.capacity();
      requested += size;
      buffers.push_back(std::move(b));
    } else {
      const std::size_t i = rng() % buffers.size();
      std::swap(buffers[i], buffers.back());
      Buffer& b = buffers.back();
      const Live& l = live.at(b.data());
      ASSERT_EQ(b.data()[0], std::byte{l.tag}) << "step " << step << ": contents changed";
      ASSERT_EQ(b.data()[b.capacity() - 1], std::byte{l.tag});
      in_use -= l.capacity;
      requested -= l.size;
      live.erase(b.data());
      buffers.pop_back();
    }
    if (step % 97 == 0) {
      const auto s = pool.stats();
      ASSERT_EQ(s.bytes_in_use, in_use) << "step " << step;
      ASSERT_EQ(s.bytes_requested, requested) << "step " << step;
      ASSERT_EQ(s.chunks_held, backing->chunks().size());
      ASSERT_LE(s.chunks_held, max_chunks);
    }
  }

  buffers.clear();
  const auto s = pool.stats();
  std::printf("  %llu allocations, %llu out_of_memory, high water %zu of %zu bytes\n",
              static_cast<unsigned long long>(s.allocations),
              static_cast<unsigned long long>(s.failures), s.high_water, options.max_memory);
  EXPECT_GT(s.failures, 0u) << "the run should reach the limit";
  EXPECT_EQ(s.bytes_in_use, 0u);
  for (unsigned k = 0; k + 1 < pool.levels(); ++k)
    EXPECT_EQ(s.free_blocks[k], 0u) << k;
  EXPECT_EQ(s.free_blocks.back(), s.chunks_held) << "all memory merges back into whole chunks";
  // ruapc: after the stress run, the whole limit can be taken as whole chunks.
  std::vector<Buffer> whole;
  for (std::size_t i = 0; i < max_chunks; ++i)
    whole.push_back(pool.allocate(options.chunk_size));
  whole.clear();
  EXPECT_EQ(pool.trim(), max_chunks * options.chunk_size);
  EXPECT_TRUE(backing->chunks().empty());
}

TEST(BuddyPoolModel, DefaultGeometry) {
  run_model({.max_memory = 256 * MiB}, 10'000, seed_from_env(0x5eed0001));
}

TEST(BuddyPoolModel, BinaryFanoutSmallBlocks) {
  run_model({.chunk_size = 1 * MiB, .min_block = 4 * KiB, .fanout = 2, .max_memory = 4 * MiB},
            100'000, seed_from_env(0x5eed0002));
}

TEST(BuddyPoolModel, QuaternaryFanoutSmallBlocks) {
  run_model({.chunk_size = 4 * MiB, .min_block = 4 * KiB, .fanout = 4, .max_memory = 8 * MiB},
            100'000, seed_from_env(0x5eed0003));
}

}  // namespace
}  // namespace bufpool
