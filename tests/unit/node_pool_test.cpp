#include "bufpool/node_pool.hpp"

#include "bufpool/buddy_pool_slabs.hpp"

#include <gtest/gtest.h>

#include <array>

#include <algorithm>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "bufpool/buddy_pool.hpp"

namespace bufpool {
namespace {

// Takes every node, checks alignment, separation, contents and ownership, gives them all back.
void fill_check_return(NodePool& pool, std::size_t expected) {
  std::vector<std::byte*> nodes;
  while (void* n = pool.try_allocate())
    nodes.push_back(static_cast<std::byte*>(n));
  ASSERT_EQ(nodes.size(), expected);
  EXPECT_EQ(pool.capacity(), expected);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(nodes[i]) % pool.node_align(), 0u);
    ASSERT_EQ(NodePool::owner(nodes[i]), &pool);
    std::memset(nodes[i], static_cast<int>(i & 0xff), pool.node_size());
  }
  std::vector<std::byte*> sorted = nodes;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    ASSERT_GE(static_cast<std::size_t>(sorted[i] - sorted[i - 1]), pool.node_size())
        << "nodes overlap";
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (std::size_t b = 0; b < pool.node_size(); ++b) {
      ASSERT_EQ(nodes[i][b], std::byte(i & 0xff)) << "node " << i << " byte " << b;
    }
  }
  for (auto* n : nodes)
    NodePool::free(n);
  pool.flush_thread_cache();
  EXPECT_EQ(pool.shared_free(), pool.capacity()) << "the pool is whole again";
}

TEST(NodePool, EveryNodeIsDistinctAlignedAndOwned) {
  NodePool pool({.node_size = 64, .nodes_per_slab = 1000, .max_nodes = 10'000});
  fill_check_return(pool, 10'000);
  fill_check_return(pool, 10'000);  // and again, from the recycled lists
}

TEST(NodePool, OddSizesAndLargeAlignments) {
  NodePool tiny({.node_size = 1, .nodes_per_slab = 100, .max_nodes = 250});
  EXPECT_EQ(tiny.node_size(), sizeof(void*));  // room for the free-list link
  fill_check_return(tiny, 250);
  NodePool paged({.node_size = 200, .node_align = 4096, .nodes_per_slab = 8, .max_nodes = 20});
  fill_check_return(paged, 20);
}

TEST(NodePool, RejectsBadOptions) {
  EXPECT_THROW(NodePool({.node_size = 0}), std::system_error);
  EXPECT_THROW(NodePool({.node_align = 3}), std::system_error);
  EXPECT_THROW(NodePool({.node_align = 8192}), std::system_error);
  EXPECT_THROW(NodePool({.nodes_per_slab = 0}), std::system_error);
}

TEST(NodePool, SlabsFromABuddyPool) {
  BuddyPool buddy({.chunk_size = 4 * MiB, .min_block = 64 * KiB, .max_memory = 4 * MiB});
  {
    BuddyPoolSlabs slabs(buddy);
    NodePool pool({.node_size = 256, .nodes_per_slab = 100, .slab_source = &slabs});
    std::vector<void*> nodes;
    for (int i = 0; i < 1000; ++i)
      nodes.push_back(pool.allocate());
    EXPECT_EQ(pool.capacity(), 1000u);
    EXPECT_GT(buddy.stats().bytes_in_use, 0u);
    for (void* n : nodes)
      pool.deallocate(n);
  }
  EXPECT_EQ(buddy.stats().bytes_in_use, 0u) << "the slabs went back to the BuddyPool";
}

TEST(NodePool, SlabSourceFailureIsNullNotACrash) {
  BuddyPool buddy({.chunk_size = 64 * KiB, .min_block = 4 * KiB, .max_memory = 64 * KiB});
  BuddyPoolSlabs slabs(buddy);
  NodePool pool({.node_size = 1024, .nodes_per_slab = 32, .slab_source = &slabs});
  std::vector<void*> nodes;
  while (void* n = pool.try_allocate())
    nodes.push_back(n);
  EXPECT_GT(nodes.size(), 0u);
  try {
    pool.allocate();
    ADD_FAILURE() << "allocate() returned on a full pool";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), errc::out_of_memory);
  }
  // The standard allocator adaptor keeps the standard contract.
  node_allocator<std::array<char, 1000>> alloc(pool);
  EXPECT_THROW((void)alloc.allocate(1), std::bad_alloc);
  for (void* n : nodes)
    pool.deallocate(n);
}

TEST(NodePool, StdListAndAllocateShared) {
  NodePool pool({.node_size = 64, .nodes_per_slab = 256});
  {
    std::list<int, node_allocator<int>> list{node_allocator<int>(pool)};
    for (int i = 0; i < 1000; ++i)
      list.push_back(i);
    EXPECT_EQ(pool.capacity(), 1024u) << "the list nodes came from the pool";
    int expect = 0;
    for (int v : list)
      EXPECT_EQ(v, expect++);
  }
  struct Pair {
    long a, b;
  };
  auto shared = std::allocate_shared<Pair>(node_allocator<Pair>(pool), Pair{1, 2});
  EXPECT_EQ(shared->b, 2);
  shared.reset();
  // An array does not fit a node: it falls back to operator new, and back again.
  node_allocator<long> alloc(pool);
  long* many = alloc.allocate(100);
  many[99] = 5;
  alloc.deallocate(many, 100);
  pool.flush_thread_cache();
  EXPECT_EQ(pool.shared_free(), pool.capacity());
}

TEST(NodePool, AsioAssociatedAllocator) {
  NodePool pool({.node_size = 256, .nodes_per_slab = 64});
  boost::asio::io_context io;
  int ran = 0;
  for (int i = 0; i < 10; ++i) {
    boost::asio::post(io, boost::asio::bind_allocator(node_allocator<void>(pool), [&] { ++ran; }));
  }
  io.run();
  EXPECT_EQ(ran, 10);
  EXPECT_EQ(pool.capacity(), 64u) << "Asio took its handler memory from the pool";
  pool.flush_thread_cache();
  EXPECT_EQ(pool.shared_free(), pool.capacity());
}

TEST(NodePool, TooManyPoolsIsAClearError) {
  std::vector<std::unique_ptr<NodePool>> pools;
  std::error_code error;
  try {
    for (int i = 0; i < 1000; ++i)
      pools.push_back(std::make_unique<NodePool>());
  } catch (const std::system_error& e) {
    error = e.code();
  }
  EXPECT_EQ(error, errc::too_many_pools);
  EXPECT_LE(pools.size(), 256u);
}

// Producers allocate and hand nodes to consumers, which free them on their own threads.
// Afterwards (every thread has exited, so its cache was flushed) the pool is whole.
TEST(NodePoolConcurrency, CrossThreadFreesLoseNothing) {
  NodePool pool({.node_size = 64, .nodes_per_slab = 512});
  constexpr int producers = 2, per_producer = 100'000;
  std::mutex m;
  std::vector<void*> queue;
  std::atomic<int> produced_done{0};
  std::atomic<long> consumed{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::vector<void*> local;
      for (int i = 0; i < per_producer; ++i) {
        auto* n = static_cast<std::uint64_t*>(pool.allocate());
        *n = (static_cast<std::uint64_t>(p) << 32) | static_cast<std::uint32_t>(i);
        local.push_back(n);
        if (local.size() == 64) {
          std::lock_guard lk(m);
          queue.insert(queue.end(), local.begin(), local.end());
          local.clear();
        }
      }
      std::lock_guard lk(m);
      queue.insert(queue.end(), local.begin(), local.end());
      ++produced_done;
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      std::vector<void*> batch;
      for (;;) {
        {
          std::lock_guard lk(m);
          batch.swap(queue);
        }
        for (void* n : batch) {
          ASSERT_EQ(NodePool::owner(n), &pool);
          NodePool::free(n);
          ++consumed;
        }
        batch.clear();
        if (produced_done == producers) {
          std::lock_guard lk(m);
          if (queue.empty()) break;
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(consumed.load(), long{producers} * per_producer);
  pool.flush_thread_cache();
  EXPECT_EQ(pool.shared_free(), pool.capacity());
}

}  // namespace
}  // namespace bufpool

namespace {
// A slab source of the test's own: counts what it hands out and gives back, and refuses once
// its budget is spent.
class CountingSlabs final : public bufpool::SlabSource {
 public:
  explicit CountingSlabs(int budget) : budget_(budget) {}
  void* allocate_slab(std::size_t bytes, std::size_t align) noexcept override {
    if (budget_ == 0) return nullptr;
    --budget_;
    ++live_;
    return bufpool::heap_slab_source().allocate_slab(bytes, align);
  }
  void deallocate_slab(void* p, std::size_t bytes, std::size_t align) noexcept override {
    --live_;
    bufpool::heap_slab_source().deallocate_slab(p, bytes, align);
  }
  int live() const { return live_; }

 private:
  int budget_;
  int live_ = 0;
};
}  // namespace

TEST(NodePool, AnySlabSourceServesAndGetsEverySlabBack) {
  CountingSlabs source(3);
  {
    bufpool::NodePool pool(
        {.node_size = 64, .node_align = 256, .nodes_per_slab = 10, .slab_source = &source});
    std::vector<void*> nodes;
    while (void* n = pool.try_allocate()) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(n) % 256, 0u);
      nodes.push_back(n);
    }
    EXPECT_EQ(nodes.size(), 30u) << "three slabs of ten, then the source refused";
    EXPECT_EQ(source.live(), 3);
    for (void* n : nodes)
      pool.deallocate(n);
  }
  EXPECT_EQ(source.live(), 0) << "every slab went back to its source";
}
