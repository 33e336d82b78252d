// client/bench/payload.hpp: --verify's values check themselves; any damage is caught.
#include "payload.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace bufpool::bench {
namespace {

TEST(Payload, RoundTripsAtEverySize) {
  for (std::size_t n : {0ul, 1ul, 7ul, 8ul, 23ul, 24ul, 25ul, 31ul, 4096ul, 4097ul, 1ul << 20}) {
    std::vector<std::byte> v(n);
    fill_payload(v, 42, 7 + n);
    EXPECT_TRUE(check_payload(v, 42)) << n;
  }
}

TEST(Payload, CatchesFlippedTruncatedAndForeignBytes) {
  std::vector<std::byte> v(4096 + 3);
  fill_payload(v, 9, 12345);
  for (std::size_t at = 0; at < v.size(); at += 97) {
    auto bad = v;
    bad[at] ^= std::byte{0x10};
    EXPECT_FALSE(check_payload(bad, 9)) << "flipped byte " << at;
  }
  auto last = v;
  last.back() ^= std::byte{1};
  EXPECT_FALSE(check_payload(last, 9)) << "the tail after the last whole word";
  EXPECT_FALSE(check_payload(std::span(v).first(v.size() - 1), 9)) << "truncated";
  EXPECT_FALSE(check_payload(v, 10)) << "another key's value";
  std::vector<std::byte> zeros(v.size());
  EXPECT_FALSE(check_payload(zeros, 9));
  std::vector<std::byte> small(10);
  fill_payload(small, 3, 0);
  EXPECT_FALSE(check_payload(small, 4)) << "small values are tied to their key too";
}

}  // namespace
}  // namespace bufpool::bench
