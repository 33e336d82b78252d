// The bufpool RPC frame header (docs/protocol.md): 32 bytes, little-endian.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace bufpool::rpc {

inline constexpr std::uint32_t magic = 0x31525042;  // "BPR1"
inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t header_size = 32;
inline constexpr std::size_t max_key_size = 250;

enum class Opcode : std::uint8_t {
  ping = 1,
  put = 2,
  get = 3,
  erase = 4,
  echo = 5,
  stats = 6,
  auth = 7,  // the payload is a token; the connection then has that token's role
};
inline constexpr std::uint8_t max_opcode = 255;

enum class Status : std::uint8_t {
  ok = 0,
  not_found = 1,
  bad_request = 2,
  too_large = 3,
  unavailable = 4,
  shutting_down = 5,
  internal = 6,
  // The store's key space (its key arena or max_keys) is full: unlike UNAVAILABLE, retrying
  // does not help until keys are deleted (HTTP's 507).
  storage_full = 7,
  unauthenticated = 8,  // no AUTH yet, or AUTH with a token that is not valid
  forbidden = 9,        // the connection's role does not allow this operation
};
std::string_view to_string(Status s) noexcept;
/// RPC statuses as error codes (category "bufpool.rpc"; the message is the status name), for
/// exceptions and error_code-based APIs on either side of a connection.
const std::error_category& status_category() noexcept;
inline std::error_code make_error_code(Status s) noexcept {
  return {static_cast<int>(s), status_category()};
}

namespace flags {
inline constexpr std::uint8_t response = 1;
inline constexpr std::uint8_t created = 2;
inline constexpr std::uint8_t known = response | created;
}  // namespace flags

struct FrameHeader {
  std::uint8_t opcode = 0;
  std::uint8_t flags = 0;
  Status status = Status::ok;
  std::uint64_t request_id = 0;
  std::uint32_t key_length = 0;
  std::uint64_t payload_length = 0;
};

using HeaderBytes = std::array<std::byte, header_size>;

/// Writes `h` in wire format.
HeaderBytes encode(const FrameHeader& h) noexcept;

enum class DecodeError { none, bad_magic, bad_version, bad_flags, bad_reserved };
/// Reads a header. A bad magic means the stream is not bufpool RPC (or lost its framing).
DecodeError decode(const std::byte* bytes, FrameHeader& out) noexcept;

/// Keys are 1 to 250 bytes of [A-Za-z0-9._~-].
bool valid_key(std::string_view key) noexcept;

}  // namespace bufpool::rpc
