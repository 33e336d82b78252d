#include "bufpool/ordered_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace bufpool {
namespace {

template <typename Pool>
std::vector<std::uint32_t> values(const Pool& pool) {
  return {pool.begin(), pool.end()};
}
using V = std::vector<std::uint32_t>;

// Seed (ordered-pool-allocator): a 128-byte buffer of u32 with 8-bit indices holds 21 objects;
// deallocation swap-removes the virtual slot with the last one.
TEST(OrderedPool, SeedAllocateAndDeallocate) {
  alignas(std::uint32_t) std::byte buf[128];
  OrderedPool<std::uint32_t, std::uint8_t> pool(buf);
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_EQ(pool.capacity(), 21u);
  EXPECT_TRUE(pool.empty());
  EXPECT_FALSE(pool.full());
  for (std::uint32_t v : {2u, 3u, 1u})
    pool.allocate(v);
  EXPECT_EQ(values(pool), (V{2, 3, 1}));
  pool.deallocate(&pool[0]);
  EXPECT_EQ(values(pool), (V{1, 3}));
  pool.allocate(2u);
  EXPECT_EQ(values(pool), (V{1, 3, 2}));
}

TEST(OrderedPool, SeedSort) {
  alignas(std::uint32_t) std::byte buf[128];
  OrderedPool<std::uint32_t, std::uint8_t> pool(buf);
  for (std::uint32_t v : {2u, 3u, 1u})
    pool.allocate(v);
  std::uint32_t* three = &pool[1];
  pool.sort(std::less<>());
  EXPECT_EQ(values(pool), (V{1, 2, 3}));
  EXPECT_EQ(*three, 3u);  // the object did not move
  EXPECT_EQ(&pool[2], three);
  pool.deallocate(&pool[0]);
  EXPECT_EQ(values(pool), (V{3, 2}));
  pool.allocate(4u);
  EXPECT_EQ(values(pool), (V{3, 2, 4}));
  pool.sort(std::less<>());
  EXPECT_EQ(values(pool), (V{2, 3, 4}));
}

struct Counted {
  static inline int live = 0;
  explicit Counted(int v) : value(v) { ++live; }
  ~Counted() { --live; }
  int value;
};

TEST(OrderedPool, DestructorsRun) {
  Counted::live = 0;
  {
    OrderedPool<Counted> pool(100);
    for (int i = 0; i < 10; ++i)
      pool.allocate(i);
    EXPECT_EQ(Counted::live, 10);
    pool.deallocate(&pool[3]);
    EXPECT_EQ(Counted::live, 9);
  }
  EXPECT_EQ(Counted::live, 0);
}

TEST(OrderedPool, FullPoolRefuses) {
  OrderedPool<int> pool(3);
  EXPECT_EQ(pool.capacity(), 3u);
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(pool.try_allocate(i), nullptr);
  EXPECT_TRUE(pool.full());
  EXPECT_EQ(pool.try_allocate(9), nullptr);
  EXPECT_THROW(pool.allocate(9), std::system_error);
}

TEST(OrderedPool, IndexWidthCapsTheCapacity) {
  std::vector<std::byte> big(100'000);
  OrderedPool<std::uint32_t, std::uint8_t> narrow(big);
  EXPECT_EQ(narrow.capacity(), 255u);
  OrderedPool<std::uint32_t, std::uint16_t> wide(big);
  EXPECT_EQ(wide.capacity(), 100'000u / 8);
  EXPECT_THROW((OrderedPool<int, std::uint8_t>(256)), std::system_error);
}

// The seed never checks alignment; here every start offset of a caller's buffer is accepted and
// every access is aligned (UBSan checks the accesses in the asan preset).
TEST(OrderedPool, MisalignedCallerMemoryIsAligned) {
  struct alignas(16) Wide {
    std::uint64_t a, b;
  };
  alignas(64) std::byte buf[1024];
  for (std::size_t skew = 0; skew < 16; ++skew) {
    OrderedPool<Wide, std::uint16_t> pool(std::span<std::byte>(buf + skew, sizeof buf - skew));
    ASSERT_GT(pool.capacity(), 0u);
    while (!pool.full()) {
      Wide* w = pool.allocate(Wide{pool.size(), 7});
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(w) % alignof(Wide), 0u) << "skew " << skew;
      ASSERT_GE(reinterpret_cast<std::byte*>(w), buf + skew);
      ASSERT_LE(reinterpret_cast<std::byte*>(w + 1), buf + sizeof buf);
    }
    for (std::size_t i = 0; i < pool.size(); ++i)
      ASSERT_EQ(pool[i].a, i);
  }
  std::byte tiny[3];
  OrderedPool<std::uint64_t> none(tiny);
  EXPECT_EQ(none.capacity(), 0u);
  EXPECT_EQ(none.try_allocate(1u), nullptr);
}

TEST(OrderedPool, PositionsAndMembership) {
  OrderedPool<int, std::uint16_t> pool(8);
  int* a = pool.allocate(10);
  int* b = pool.allocate(20);
  int* c = pool.allocate(30);
  EXPECT_EQ(pool.position_of(c), 2u);
  EXPECT_TRUE(pool.contains(b));
  pool.deallocate(a);
  EXPECT_FALSE(pool.contains(a));
  EXPECT_EQ(pool.position_of(c), 0u);  // c took a's virtual slot
  int outside = 0;
  EXPECT_FALSE(pool.contains(&outside));
}

// 1,000,000 random steps against a model: a vector in virtual order with the same swap-remove
// rule. Checks order, contents, pointer stability and sorting.
TEST(OrderedPool, RandomizedAgainstModel) {
  constexpr std::uint64_t seed = 0x0dde7;
  std::printf("ordered pool model: seed=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  OrderedPool<std::uint64_t, std::uint16_t> pool(1000);
  std::vector<std::uint64_t> model;   // values in virtual order
  std::vector<std::uint64_t*> where;  // the pointer of each model entry
  for (int step = 0; step < 1'000'000; ++step) {
    const auto r = rng() % 100;
    if (r < 50 && !pool.full()) {
      const std::uint64_t v = rng();
      where.push_back(pool.allocate(v));
      model.push_back(v);
    } else if (r < 99 && !pool.empty()) {
      const std::size_t i = rng() % model.size();
      ASSERT_EQ(&pool[i], where[i]) << "step " << step;
      pool.deallocate(where[i]);
      model[i] = model.back();
      where[i] = where.back();
      model.pop_back();
      where.pop_back();
    } else {
      pool.sort(std::less<>());
      std::vector<std::size_t> order(model.size());
      for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
      std::sort(order.begin(), order.end(), [&](auto a, auto b) { return model[a] < model[b]; });
      std::vector<std::uint64_t> m2;
      std::vector<std::uint64_t*> w2;
      for (auto i : order) {
        m2.push_back(model[i]);
        w2.push_back(where[i]);
      }
      model.swap(m2);
      where.swap(w2);
    }
    if (step % 1009 == 0) {
      ASSERT_EQ(pool.size(), model.size());
      for (std::size_t i = 0; i < model.size(); ++i) {
        ASSERT_EQ(pool[i], model[i]) << "step " << step;
        ASSERT_EQ(&pool[i], where[i]) << "an object moved at step " << step;
        ASSERT_EQ(pool.position_of(where[i]), i);
      }
    }
  }
}

}  // namespace
}  // namespace bufpool
