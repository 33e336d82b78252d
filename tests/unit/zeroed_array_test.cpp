#include "bufpool/detail/zeroed_array.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace bufpool::detail {
namespace {

struct Item {
  std::uint32_t a = 0;
  std::uint64_t b = 0;
};

TEST(ZeroedArray, StartsZeroAndZeroesAgain) {
  ZeroedArray<Item> v(1 << 20);  // 16 MiB of address space
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.get()) % 4096, 0u) << "page-aligned";
  EXPECT_EQ(v[0].a, 0u);
  EXPECT_EQ(v[(1 << 20) - 1].b, 0u);
  v[12345] = Item{7, 9};
  EXPECT_EQ(v[12345].a, 7u);
  v.zero();
  EXPECT_EQ(v[12345].a, 0u);
  EXPECT_EQ(v[12345].b, 0u);
}

TEST(ZeroedArray, Moves) {
  ZeroedArray<Item> a(100);
  a[3].a = 5;
  ZeroedArray<Item> b(std::move(a));
  EXPECT_EQ(a.get(), nullptr);
  EXPECT_EQ(b[3].a, 5u);
  ZeroedArray<Item> c;
  c = std::move(b);
  EXPECT_EQ(c[3].a, 5u);
  ZeroedArray<Item> empty(0);
  EXPECT_EQ(empty.get(), nullptr);
  empty.zero();  // harmless
}

}  // namespace
}  // namespace bufpool::detail
