// client/bench/histogram.hpp: buckets tile the range, and quantiles are within 1% of the exact
// ones from 1 us to 60 s.
#include "histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace bufpool::bench {
namespace {

TEST(Histogram, BucketsTileTheRangeWithoutGaps) {
  for (std::size_t i = 0; i + 1 < Histogram::bucket_count; ++i) {
    const auto lo = Histogram::lower_of(i), w = Histogram::width_of(i);
    ASSERT_EQ(Histogram::index_of(lo), i);
    ASSERT_EQ(Histogram::index_of(lo + w - 1), i);
    ASSERT_EQ(Histogram::lower_of(i + 1), lo + w) << "bucket " << i;
    if (lo >= 256) {
      ASSERT_LE(static_cast<double>(w) / static_cast<double>(lo), 1.0 / 128);
    }
  }
  EXPECT_GE(Histogram::lower_of(Histogram::bucket_count - 1), 60'000'000'000ull)
      << "60 s must be inside the range";
  EXPECT_EQ(Histogram::index_of(~0ull), Histogram::bucket_count - 1) << "clamped, not overflowed";
}

TEST(Histogram, QuantilesWithinOnePercentFrom1usTo60s) {
  const std::uint64_t seed = 20261121;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exponent(std::log(1e3), std::log(60e9));
  std::vector<std::uint64_t> values;
  Histogram h;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::exp(exponent(rng)));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  for (double q : {0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const auto rank = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size()))));
    const double exact = static_cast<double>(values[rank - 1]);
    const double got = static_cast<double>(h.quantile(q));
    EXPECT_LE(std::abs(got - exact) / exact, 0.01) << "q " << q << " exact " << exact;
  }
}

TEST(Histogram, MergeAddsCountsAndKeepsExtremes) {
  Histogram a, b;
  for (std::uint64_t v = 1000; v < 2000; ++v)
    a.record(v);
  for (std::uint64_t v = 1'000'000; v < 1'001'000; ++v)
    b.record(v);
  a.merge(b);
  EXPECT_EQ(a.count(), 2000u);
  EXPECT_EQ(a.min(), 1000u);
  EXPECT_EQ(a.max(), 1'000'999u);
  EXPECT_NEAR(static_cast<double>(a.quantile(0.25)), 1499.0, 1499 * 0.01);  // rank 500
  EXPECT_NEAR(static_cast<double>(a.quantile(0.75)), 1'000'499.0, 1'000'499 * 0.01);
  a.reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.quantile(0.5), 0u);
}

}  // namespace
}  // namespace bufpool::bench
