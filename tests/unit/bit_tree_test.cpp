#include "bufpool/detail/bit_tree.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <set>

namespace bufpool::detail {
namespace {

template <std::size_t N>
void against_a_set(std::uint64_t seed) {
  std::printf("bit_tree<%zu>: seed=%llu\n", N, static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  BitTree<N> bits;
  std::set<std::size_t> model;
  for (int step = 0; step < 40'000; ++step) {
    const std::size_t i = rng() % N;
    if (rng() % 2) {
      bits.set(i);
      model.insert(i);
    } else {
      bits.clear(i);
      model.erase(i);
    }
    const std::size_t q = rng() % (N + 2);
    auto it = model.lower_bound(q);
    ASSERT_EQ(bits.next(q), it == model.end() ? N : *it) << "next(" << q << ") at step " << step;
    ASSERT_EQ(bits.last(), model.empty() ? N : *model.rbegin());
    ASSERT_EQ(bits.test(i), model.count(i) == 1);
  }
  bits.reset();
  EXPECT_EQ(bits.next(0), N);
  EXPECT_EQ(bits.last(), N);
}

TEST(BitTree, MatchesASet) {
  against_a_set<64>(1);
  against_a_set<100>(2);
  against_a_set<4416>(3);  // the 32-bit offset allocator's class count
  against_a_set<9000>(4);  // more than one summary word
}

TEST(BitTree, SparseFarApart) {
  BitTree<9000> bits;
  bits.set(8999);
  EXPECT_EQ(bits.next(0), 8999u);
  bits.set(4096);
  EXPECT_EQ(bits.next(1), 4096u);
  EXPECT_EQ(bits.next(4097), 8999u);
  EXPECT_EQ(bits.last(), 8999u);
  bits.clear(8999);
  EXPECT_EQ(bits.next(4097), 9000u);
}

}  // namespace
}  // namespace bufpool::detail
