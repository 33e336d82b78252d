#include "bufpool/buddy_pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <cstring>
#include <memory>
#include <vector>

#include "bufpool/shared_buffer.hpp"
#include "test_support.hpp"

namespace bufpool {
namespace {

using Counts = std::vector<std::size_t>;

BuddyPoolOptions limit(std::size_t max_memory) {
  return {.max_memory = max_memory};
}

// The seed's boundary table (ruapc-bufpool): each size maps to the smallest level that holds it.
TEST(BuddyPool, LevelBoundaries) {
  BuddyPool pool;
  struct Case {
    std::size_t size;
    int level;
    errc error;
  };
  const Case cases[] = {
      {0, -1, errc::invalid_size},
      {1, 0, {}},
      {1 * MiB, 0, {}},
      {1 * MiB + 1, 1, {}},
      {4 * MiB, 1, {}},
      {4 * MiB + 1, 2, {}},
      {16 * MiB, 2, {}},
      {16 * MiB + 1, 3, {}},
      {64 * MiB, 3, {}},
      {64 * MiB + 1, -1, errc::too_large},
  };
  for (const auto& c : cases) {
    std::error_code ec;
    EXPECT_EQ(pool.level_for(c.size, ec), c.level) << c.size;
    EXPECT_EQ(ec, c.level < 0 ? std::error_code(c.error) : std::error_code()) << c.size;
  }
  EXPECT_EQ(pool.levels(), 4u);
  EXPECT_EQ(pool.block_size(0), 1 * MiB);
  EXPECT_EQ(pool.block_size(3), 64 * MiB);
}

TEST(BuddyPool, BinaryFanoutAndSmallBlocks) {
  BuddyPool pool({.chunk_size = 1 * MiB, .min_block = 4 * KiB, .fanout = 2, .max_memory = 2 * MiB});
  EXPECT_EQ(pool.levels(), 9u);
  std::error_code ec;
  EXPECT_EQ(pool.level_for(4 * KiB, ec), 0);
  EXPECT_EQ(pool.level_for(4 * KiB + 1, ec), 1);
  EXPECT_EQ(pool.level_for(1 * MiB, ec), 8);
  Buffer b = pool.allocate(12 * KiB);
  EXPECT_EQ(b.capacity(), 16 * KiB);
}

TEST(BuddyPool, RejectsBadOptions) {
  auto bad = [](BuddyPoolOptions o) {
    try {
      BuddyPool pool(std::move(o));
    } catch (const std::system_error& e) {
      return e.code() == errc::invalid_argument;
    }
    return false;
  };
  EXPECT_TRUE(bad({.fanout = 3}));
  EXPECT_TRUE(bad({.min_block = 1000}));
  EXPECT_TRUE(bad({.min_block = 2 * KiB}));
  EXPECT_TRUE(bad({.chunk_size = 32 * MiB}));  // 32 is not a power of 4
  EXPECT_TRUE(bad({.chunk_size = 64 * MiB, .max_memory = 32 * MiB}));
  EXPECT_TRUE(bad({.max_memory = 64 * MiB, .reserve = 128 * MiB}));
  EXPECT_TRUE(bad({.chunk_size = 4 * GiB}));
}

// Seed: with a 64 MiB limit, 64 MiB then 1 MiB gives out_of_memory.
TEST(BuddyPool, MemoryLimitIsHard) {
  BuddyPool pool(limit(64 * MiB));
  std::error_code ec;
  Buffer whole = pool.try_allocate(64 * MiB, ec);
  ASSERT_FALSE(ec);
  Buffer more = pool.try_allocate(1 * MiB, ec);
  EXPECT_EQ(ec, errc::out_of_memory);
  EXPECT_TRUE(more.empty());
  EXPECT_EQ(pool.stats().failures, 1u);
  EXPECT_THROW(pool.allocate(1), std::system_error);
}

// Seed: four 16 MiB buffers fill the pool; after freeing them 64 MiB fits again.
TEST(BuddyPool, FourQuartersThenWhole) {
  BuddyPool pool(limit(64 * MiB));
  std::vector<Buffer> quarters;
  for (int i = 0; i < 4; ++i)
    quarters.push_back(pool.allocate(16 * MiB));
  std::error_code ec;
  EXPECT_TRUE(pool.try_allocate(1, ec).empty());
  EXPECT_EQ(ec, errc::out_of_memory);
  quarters.clear();
  Buffer whole = pool.try_allocate(64 * MiB, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(whole.capacity(), 64 * MiB);
}

// ruapc: the free counts per level after one 1 MiB allocation in a 64 MiB chunk, and after its
// free.
TEST(BuddyPool, FreeCountsSplitAndMergeBack) {
  BuddyPool pool(limit(64 * MiB));
  Buffer b = pool.allocate(1 * MiB);
  EXPECT_EQ(pool.stats().free_blocks, (Counts{3, 3, 3, 0}));
  b.reset();
  EXPECT_EQ(pool.stats().free_blocks, (Counts{0, 0, 0, 1}));
}

TEST(BuddyPool, BlocksDoNotOverlapAndKeepTheirBytes) {
  BuddyPool pool(limit(64 * MiB));
  std::vector<Buffer> blocks;
  for (int i = 0; i < 64; ++i) {
    blocks.push_back(pool.allocate(1 * MiB));
    std::memset(blocks.back().data(), i, 1 * MiB);
  }
  for (int i = 0; i < 64; ++i) {
    const auto* p = reinterpret_cast<const unsigned char*>(blocks[i].data());
    EXPECT_EQ(p[0], i);
    EXPECT_EQ(p[1 * MiB - 1], i);
  }
}

TEST(BuddyPool, LazyMergePrefersRebuildingOverSplitting) {
  BuddyPool pool(limit(128 * MiB));
  Buffer x = pool.allocate(1 * MiB);
  std::vector<Buffer> fours;
  for (int i = 0; i < 3; ++i)
    fours.push_back(pool.allocate(4 * MiB));
  x.reset();  // four free 1 MiB buddies, not merged yet; no free 4 MiB block
  Buffer y = pool.allocate(4 * MiB);  // must come from merging them, not from splitting a 16 MiB
  const auto s = pool.stats();
  EXPECT_EQ(s.chunks_held, 1u);
  EXPECT_EQ(s.free_blocks, (Counts{0, 0, 3, 0}));
}

TEST(BuddyPool, ChunksAreTakenLazilyAndTrimmed) {
  auto backing = std::make_shared<test::CountingChunkAllocator>();
  BuddyPool pool({.max_memory = 256 * MiB, .backing = backing});
  EXPECT_EQ(backing->live(), 0);
  std::vector<Buffer> all;
  for (int i = 0; i < 3; ++i)
    all.push_back(pool.allocate(64 * MiB));
  EXPECT_EQ(backing->live(), 3);
  EXPECT_EQ(pool.stats().bytes_reserved, 192 * MiB);
  all.pop_back();
  all.pop_back();
  EXPECT_EQ(pool.trim(128 * MiB), 64 * MiB);  // keeps 128 MiB: the chunk in use and one free
  EXPECT_EQ(backing->live(), 2);
  EXPECT_EQ(pool.trim(), 64 * MiB);
  EXPECT_EQ(backing->live(), 1);
  all.clear();
  EXPECT_EQ(pool.trim(), 64 * MiB);
  EXPECT_EQ(backing->live(), 0);
  EXPECT_EQ(pool.stats().chunks_held, 0u);
  Buffer again = pool.allocate(1);  // a trimmed pool grows again
  EXPECT_EQ(backing->live(), 1);
}

TEST(BuddyPool, ReserveTakesChunksUpFront) {
  auto backing = std::make_shared<test::CountingChunkAllocator>();
  BuddyPool pool({.max_memory = 256 * MiB, .reserve = 100 * MiB, .backing = backing});
  EXPECT_EQ(backing->live(), 2);
  EXPECT_EQ(pool.stats().free_blocks, (Counts{0, 0, 0, 2}));
}

TEST(BuddyPool, FailingBackingIsReportedNotFatal) {
  auto backing = std::make_shared<test::CountingChunkAllocator>(1);  // one chunk, then failure
  BuddyPool pool({.max_memory = 256 * MiB, .backing = backing});
  std::error_code ec;
  Buffer first = pool.try_allocate(64 * MiB, ec);
  ASSERT_FALSE(ec);
  Buffer second = pool.try_allocate(64 * MiB, ec);
  EXPECT_EQ(ec, errc::backing_failed);
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(pool.stats().chunks_held, 1u);
  first.reset();
  Buffer third = pool.try_allocate(64 * MiB, ec);  // the chunk it has still serves
  EXPECT_FALSE(ec);

  auto none = std::make_shared<test::CountingChunkAllocator>(0);
  try {
    BuddyPool reserved({.reserve = 1, .backing = none});
    ADD_FAILURE() << "reserve with a failing backing allocator must throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), errc::backing_failed);
  }
}

TEST(BuddyPool, BuffersOutliveThePool) {
  auto backing = std::make_shared<test::CountingChunkAllocator>();
  Buffer survivor;
  {
    BuddyPool pool({.max_memory = 128 * MiB, .backing = backing});
    survivor = pool.allocate(2 * MiB);
    Buffer other = pool.allocate(64 * MiB);
  }
  EXPECT_EQ(backing->live(), 2);  // the pool is gone, its storage is not
  std::memset(survivor.data(), 0x5a, survivor.size());
  EXPECT_EQ(survivor.capacity(), 4 * MiB);
  survivor.reset();
  EXPECT_EQ(backing->live(), 0);
}

TEST(BuddyPool, TooManyLivePoolsIsAClearError) {
  std::vector<std::unique_ptr<BuddyPool>> pools;
  std::error_code error;
  try {
    for (int i = 0; i < 5000; ++i)
      pools.push_back(std::make_unique<BuddyPool>());
  } catch (const std::system_error& e) {
    error = e.code();
  }
  EXPECT_EQ(error, errc::too_many_pools);
  EXPECT_GE(pools.size(), 2000u);  // 2,047 slots, less any pool another test still holds
  EXPECT_LE(pools.size(), 2047u);
  pools.pop_back();
  EXPECT_NO_THROW(pools.push_back(std::make_unique<BuddyPool>()));  // a freed slot is reused
}

TEST(BuddyPool, ClosedPoolRefusesAllocations) {
  BuddyPool pool(limit(64 * MiB));
  Buffer held = pool.allocate(1);
  pool.close();
  std::error_code ec;
  EXPECT_TRUE(pool.try_allocate(1, ec).empty());
  EXPECT_EQ(ec, errc::closed);
  held.reset();  // frees still work
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

TEST(BuddyPool, StatisticsTrackUse) {
  BuddyPool pool(limit(64 * MiB));
  Buffer a = pool.allocate(1000);
  Buffer b = pool.allocate(2 * MiB);
  auto s = pool.stats();
  EXPECT_EQ(s.chunks_held, 1u);
  EXPECT_EQ(s.bytes_reserved, 64 * MiB);
  EXPECT_EQ(s.bytes_in_use, 5 * MiB);
  EXPECT_EQ(s.bytes_requested, 1000 + 2 * MiB);
  EXPECT_EQ(s.allocations, 2u);
  a.reset();
  b.reset();
  s = pool.stats();
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.bytes_requested, 0u);
  EXPECT_EQ(s.high_water, 5 * MiB);
}

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

// allocate_if_free: the flat path alone. It never takes a chunk, never jumps the queue of waiters,
// and a refusal is not counted as a failure (it is only the fast path in front of a wait).
TEST(BuddyPool, AllocateIfFreeTakesOnlyWhatIsFreeNow) {
  BuddyPool pool(BuddyPoolOptions{.min_block = 4096, .max_memory = 64u << 20});
  EXPECT_FALSE(pool.allocate_if_free(4096)) << "no chunk yet: that is the slow path's work";
  EXPECT_EQ(pool.stats().chunks_held, 0u);
  Buffer first = pool.allocate(4096);  // takes a chunk and splits it
  Buffer b = pool.allocate_if_free(4096);
  ASSERT_TRUE(b) << "a 4 KiB block is free after the split";
  EXPECT_GE(b.size(), 4096u);
  EXPECT_FALSE(pool.allocate_if_free(0)) << "invalid size";
  EXPECT_FALSE(pool.allocate_if_free(std::size_t{1} << 30)) << "too large";
  EXPECT_EQ(pool.stats().failures, 0u);
  // Three 16 MiB blocks out and the fourth split by `first`: 4 KiB blocks are free, 16 MiB is
  // not, so a 16 MiB request waits, and while it does, allocate_if_free takes nothing.
  std::vector<Buffer> big;
  for (int i = 0; i < 3; ++i)
    big.push_back(pool.allocate(16u << 20));
  boost::asio::io_context io;
  Buffer waited;
  pool.async_allocate(
      16u << 20, boost::asio::bind_executor(
                     io, [&](boost::system::error_code, Buffer got) { waited = std::move(got); }));
  EXPECT_EQ(pool.stats().waiters, 1u);
  EXPECT_FALSE(pool.allocate_if_free(4096)) << "the queued waiter comes first";
  big.clear();
  io.run();
  EXPECT_TRUE(waited);
  EXPECT_TRUE(pool.allocate_if_free(4096)) << "no waiter any more";
  waited.reset();
  first.reset();
  b.reset();
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
}

// A bitwise copy of a Buffer (what a miscompiled coroutine frame does) releases its block twice.
// The second release must stop the process with a message, not drive bytes_in_use below zero.
Buffer bitwise_copy(const Buffer& b) {
  Buffer copy;
  std::memcpy(static_cast<void*>(&copy), static_cast<const void*>(&b), sizeof(Buffer));
  return copy;
}

TEST(BuddyPoolDeathTest, DoubleReleaseStopsWithAMessageNamingTheBlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BuddyPool pool({.max_memory = 64 * MiB});
        Buffer a = pool.allocate(4 * MiB);
        Buffer twin = bitwise_copy(a);
        a.reset();
        twin.reset();
      },
      "bufpool: release of a block that is not allocated \\(a double release\\?\\): block of "
      "pool slot [0-9]+, chunk 0, level 1, address 0x");
}

TEST(BuddyPoolDeathTest, SharedDoubleReleaseStops) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BuddyPool pool({.max_memory = 64 * MiB});
        Buffer keep = pool.allocate(1 * MiB);  // so the block is not merged away
        SharedBuffer s(pool.allocate(1 * MiB));
        SharedBuffer twin;
        std::memcpy(static_cast<void*>(&twin), static_cast<const void*>(&s), sizeof s);
        s.reset();
        twin.reset();
      },
      "bufpool: release of a SharedBuffer whose block has no owner left \\(a double release\\?\\)");
}

TEST(BuddyPoolDeathTest, ReleaseIntoAPoolThatIsGoneStops) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Buffer stale;
        {
          BuddyPool pool({.max_memory = 64 * MiB});
          Buffer a = pool.allocate(1 * MiB);
          stale = bitwise_copy(a);
        }  // the pool and its storage are gone
        stale.reset();
      },
      "bufpool: release into a pool that does not exist");
}

#if defined(__SANITIZE_ADDRESS__)
TEST(BuddyPoolDeathTest, ReadingAReleasedBufferIsAnAsanReport) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BuddyPool pool({.max_memory = 64 * MiB});
        Buffer keep = pool.allocate(1 * MiB);
        Buffer b = pool.allocate(1 * MiB);
        volatile std::byte* stale = b.data();
        b.reset();
        std::byte x = stale[10];
        (void)x;
      },
      "use-after-poison");
}

TEST(BuddyPoolTest, MemoryOfALiveBufferIsUsableUnderAsan) {
  BuddyPool pool({.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 8 * MiB});
  Buffer b = pool.allocate(3 * MiB);
  std::memset(b.data(), 1, b.capacity());  // the whole block, not only size()
  b.shrink(100 * KiB);
  std::memset(b.data(), 2, b.capacity());
  b.reset();
  Buffer c = pool.allocate(4 * MiB);
  std::memset(c.data(), 3, c.capacity());
  c.reset();
  EXPECT_EQ(pool.trim(), 4 * MiB);  // the shadow is cleared before the chunk goes back
}
#endif

}  // namespace
}  // namespace bufpool

namespace bufpool {
namespace {

bool all_zero(const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}

// zero_freed: the next buffer to get a freed block, or the tail that a shrink gave back, finds
// zeros; without it the previous bytes are still there (the test shows the option is what
// clears them).
TEST(BuddyPool, ZeroFreedClearsBlocksBeforeTheyAreReused) {
  for (const bool zero : {false, true}) {
    SCOPED_TRACE(zero);
    BuddyPoolOptions o;
    o.chunk_size = 1 * MiB;
    o.min_block = 4096;
    o.max_memory = 1 * MiB;
    o.zero_freed = zero;
    BuddyPool pool(o);
    {
      Buffer a = pool.allocate(1 * MiB);
      std::memset(a.data(), 0xab, a.capacity());
    }
    Buffer b = pool.allocate(1 * MiB);  // the same block again: the pool holds just this one
    EXPECT_EQ(all_zero(b.data(), b.capacity()), zero);
    std::memset(b.data(), 0xcd, b.capacity());
    b.shrink(4096);  // gives back all but the first 4 KiB block
    Buffer c = pool.allocate(256 * 1024);
    ASSERT_TRUE(c);
    EXPECT_EQ(all_zero(c.data(), c.capacity()), zero);
  }
}

}  // namespace
}  // namespace bufpool
