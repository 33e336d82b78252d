#include "bufpool/detail/index_rb_tree.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <vector>

namespace bufpool::detail {
namespace {

struct Node {
  std::uint32_t left = 0, right = 0, parent = 0;
  bool red = false;
  std::uint32_t key = 0;
};

// Checks the red-black rules below x and returns the black height; counts the nodes.
int check(const std::vector<Node>& n, std::uint32_t x, std::uint32_t parent, std::size_t& count) {
  if (x == 0) return 1;
  ++count;
  EXPECT_EQ(n[x].parent, parent);
  if (n[x].red) {
    EXPECT_FALSE(n[n[x].left].red) << "red node " << x << " with a red child";
    EXPECT_FALSE(n[n[x].right].red) << "red node " << x << " with a red child";
  }
  if (n[x].left != 0) {
    EXPECT_LT(n[n[x].left].key, n[x].key);
  }
  if (n[x].right != 0) {
    EXPECT_GT(n[n[x].right].key, n[x].key);
  }
  const int l = check(n, n[x].left, x, count);
  const int r = check(n, n[x].right, x, count);
  EXPECT_EQ(l, r) << "black heights differ under " << x;
  return l + (n[x].red ? 0 : 1);
}

TEST(IndexRbTree, RandomInsertEraseReplaceKeepsTheRules) {
  constexpr std::uint64_t seed = 20261121;
  std::printf("index_rb_tree: seed=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  constexpr std::uint32_t count = 2000;
  std::vector<Node> n(count + 1);
  IndexRbTree<Node> tree(n.data());
  auto less = [&](std::uint32_t a, std::uint32_t b) { return n[a].key < n[b].key; };
  std::uint32_t root = 0;
  std::uint32_t fresh_key = 7 * count + 1;
  std::set<std::uint32_t> in;  // node indices in the tree
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 1; i <= count; ++i) {
    n[i].key = i * 7;  // distinct keys, by index
    out.push_back(i);
  }
  for (int step = 0; step < 60'000; ++step) {
    const auto r = rng() % 10;
    if (!out.empty() && (in.empty() || r < 5)) {
      const std::size_t k = rng() % out.size();
      tree.insert(root, out[k], less);
      in.insert(out[k]);
      out[k] = out.back();
      out.pop_back();
    } else if (r < 9) {
      auto it = in.begin();
      std::advance(it, static_cast<long>(rng() % std::min<std::size_t>(in.size(), 64)));
      tree.erase(root, *it);
      out.push_back(*it);
      in.erase(it);
    } else if (!out.empty()) {
      // replace(): a node not in the tree takes an equal key's place.
      auto it = in.begin();
      std::advance(it, static_cast<long>(rng() % std::min<std::size_t>(in.size(), 64)));
      const std::uint32_t x = *it, y = out.back();
      out.pop_back();
      n[y].key = n[x].key;
      tree.replace(root, x, y);
      n[x].key = fresh_key++;  // keys stay distinct
      in.erase(it);
      in.insert(y);
      out.push_back(x);
    }
    if (step % 97 == 0 || in.size() < 8) {
      std::size_t seen = 0;
      if (root != 0) {
        EXPECT_FALSE(n[root].red);
      }
      check(n, root, 0, seen);
      ASSERT_EQ(seen, in.size()) << "step " << step;
      // In-order walk by minimum/successor gives the keys sorted.
      std::uint32_t prev_key = 0, walked = 0;
      for (std::uint32_t x = root == 0 ? 0 : tree.minimum(root); x != 0; x = tree.successor(x)) {
        EXPECT_GT(n[x].key, prev_key);
        prev_key = n[x].key;
        ++walked;
      }
      ASSERT_EQ(walked, in.size());
      if (root != 0) {
        EXPECT_EQ(n[tree.maximum(root)].key, prev_key);
      }
    }
  }
}

}  // namespace
}  // namespace bufpool::detail
