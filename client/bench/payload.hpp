// Values that check themselves, for --verify. A value of n >= 24 bytes starts with three words:
// the key's index (xor a tag), n, and a nonce; the rest is a stream of splitmix64(nonce + i). A
// GET's bytes can then be checked without knowing which of several racing PUTs it returns: any
// flipped, shifted, truncated or foreign byte fails. Values under 24 bytes are a function of
// (key, n) alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace bufpool::bench {

inline constexpr std::uint64_t payload_tag = 0x62706265'6e636830;  // "bpbench0"

constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

namespace detail {
inline void fill_stream(std::byte* out, std::size_t n, std::uint64_t seed) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t w = splitmix64(seed + i / 8);
    std::memcpy(out + i, &w, 8);
  }
  if (i < n) {
    const std::uint64_t w = splitmix64(seed + i / 8);
    std::memcpy(out + i, &w, n - i);
  }
}
inline bool check_stream(const std::byte* in, std::size_t n, std::uint64_t seed) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t w = splitmix64(seed + i / 8);
    if (std::memcmp(in + i, &w, 8) != 0) return false;
  }
  if (i < n) {
    const std::uint64_t w = splitmix64(seed + i / 8);
    if (std::memcmp(in + i, &w, n - i) != 0) return false;
  }
  return true;
}
}  // namespace detail

inline constexpr std::size_t payload_header = 24;

/// Writes the value of key number `key` into `out` (its whole size is the value's size).
inline void fill_payload(std::span<std::byte> out, std::uint64_t key,
                         std::uint64_t nonce) noexcept {
  if (out.size() < payload_header) {
    detail::fill_stream(out.data(), out.size(), splitmix64(key ^ payload_tag) + out.size());
    return;
  }
  const std::uint64_t head[3] = {key ^ payload_tag, out.size(), nonce};
  std::memcpy(out.data(), head, sizeof head);
  detail::fill_stream(out.data() + payload_header, out.size() - payload_header, nonce);
}

/// True if `in` is, byte for byte, a value that fill_payload wrote for key number `key`.
inline bool check_payload(std::span<const std::byte> in, std::uint64_t key) noexcept {
  if (in.size() < payload_header)
    return detail::check_stream(in.data(), in.size(), splitmix64(key ^ payload_tag) + in.size());
  std::uint64_t head[3];
  std::memcpy(head, in.data(), sizeof head);
  if (head[0] != (key ^ payload_tag) || head[1] != in.size()) return false;
  return detail::check_stream(in.data() + payload_header, in.size() - payload_header, head[2]);
}

}  // namespace bufpool::bench
