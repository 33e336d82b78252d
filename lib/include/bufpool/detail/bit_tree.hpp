// A fixed-size bit set with a summary level, for "first set bit at or after i" in O(1).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace bufpool::detail {

/// N bits in words, plus one summary bit per word (set when the word is not zero). next() looks
/// at one word, then the summary, then one word: at most a few loads for N up to 64 * 64 * k.
template <std::size_t N>
class BitTree {
  static constexpr std::size_t words = (N + 63) / 64;
  static constexpr std::size_t tops = (words + 63) / 64;

 public:
  static constexpr std::size_t npos = N;

  void reset() noexcept {
    for (auto& w : word_)
      w = 0;
    for (auto& t : top_)
      t = 0;
  }
  void set(std::size_t i) noexcept {
    word_[i / 64] |= bit(i);
    top_[i / 4096] |= bit(i / 64);
  }
  void clear(std::size_t i) noexcept {
    if ((word_[i / 64] &= ~bit(i)) == 0) top_[i / 4096] &= ~bit(i / 64);
  }
  bool test(std::size_t i) const noexcept { return (word_[i / 64] & bit(i)) != 0; }

  /// The first set bit at or after i, or npos.
  std::size_t next(std::size_t i) const noexcept {
    if (i >= N) return npos;
    const std::uint64_t here = word_[i / 64] & (~std::uint64_t{0} << (i % 64));
    if (here != 0) return (i / 64) * 64 + static_cast<std::size_t>(std::countr_zero(here));
    for (std::size_t w = i / 64 + 1; w < words; w = (w / 64 + 1) * 64) {
      const std::uint64_t t = top_[w / 64] & (~std::uint64_t{0} << (w % 64));
      if (t != 0) {
        const std::size_t k = (w / 64) * 64 + static_cast<std::size_t>(std::countr_zero(t));
        return k * 64 + static_cast<std::size_t>(std::countr_zero(word_[k]));
      }
    }
    return npos;
  }
  /// The last set bit, or npos.
  std::size_t last() const noexcept {
    for (std::size_t t = tops; t-- > 0;) {
      if (top_[t] == 0) continue;
      const std::size_t k = t * 64 + 63 - static_cast<std::size_t>(std::countl_zero(top_[t]));
      return k * 64 + 63 - static_cast<std::size_t>(std::countl_zero(word_[k]));
    }
    return npos;
  }

 private:
  static constexpr std::uint64_t bit(std::size_t i) noexcept {
    return std::uint64_t{1} << (i % 64);
  }

  std::uint64_t word_[words] = {};
  std::uint64_t top_[tops] = {};
};

}  // namespace bufpool::detail
