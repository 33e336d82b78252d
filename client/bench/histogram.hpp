// A log-linear latency histogram: exact below 256 ns, then 128 linear buckets per power of two,
// so a recorded value is known to within 1/128 of itself (reported at the bucket's middle: at
// most 0.4% off) from 256 ns up to 2^36 ns (68.7 s). Recording is an index computation and an
// increment; histograms of many threads merge by adding counts.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace bufpool::bench {

class Histogram {
 public:
  static constexpr unsigned linear_bits = 8;    // values below 2^8 ns have a bucket each
  static constexpr unsigned sub_bits = 7;       // 2^7 buckets per power of two above that
  static constexpr unsigned max_exponent = 36;  // 2^36 ns = 68.7 s; larger values clamp
  static constexpr std::size_t bucket_count =
      (1u << linear_bits) + (max_exponent - linear_bits) * (1u << sub_bits);

  /// The bucket of a value in nanoseconds.
  static constexpr std::size_t index_of(std::uint64_t ns) noexcept {
    if (ns < (1u << linear_bits)) return static_cast<std::size_t>(ns);
    const unsigned e = static_cast<unsigned>(std::bit_width(ns)) - 1;  // 2^e <= ns < 2^(e+1)
    if (e >= max_exponent) return bucket_count - 1;
    const std::uint64_t sub = (ns >> (e - sub_bits)) & ((1u << sub_bits) - 1);
    return (1u << linear_bits) + (e - linear_bits) * (1u << sub_bits) + sub;
  }
  /// The smallest value of a bucket, and its width.
  static constexpr std::uint64_t lower_of(std::size_t i) noexcept {
    if (i < (1u << linear_bits)) return i;
    const std::size_t j = i - (1u << linear_bits);
    const unsigned e = static_cast<unsigned>(j >> sub_bits) + linear_bits;
    return (std::uint64_t{1} << e) + ((j & ((1u << sub_bits) - 1)) << (e - sub_bits));
  }
  static constexpr std::uint64_t width_of(std::size_t i) noexcept {
    if (i < (1u << linear_bits)) return 1;
    const unsigned e = static_cast<unsigned>((i - (1u << linear_bits)) >> sub_bits) + linear_bits;
    return std::uint64_t{1} << (e - sub_bits);
  }

  void record(std::uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++count_;
    sum_ += ns;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }
  void merge(const Histogram& other) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i)
      counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  void reset() noexcept { *this = Histogram{}; }

  std::uint64_t count() const noexcept { return count_; }
  /// How many values bucket i holds (i < bucket_count).
  std::uint64_t count_at(std::size_t i) const noexcept { return counts_[i]; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
  }

  /// The value at quantile q (0..1): the middle of the bucket that holds the ceil(q * count)-th
  /// smallest value, kept within [min, max] so that p0 and p100 are exact.
  std::uint64_t quantile(double q) const noexcept {
    if (count_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(
               std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const std::uint64_t mid = lower_of(i) + width_of(i) / 2;
        return std::clamp(mid, min(), max_);
      }
    }
    return max_;
  }

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

}  // namespace bufpool::bench
