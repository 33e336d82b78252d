#include "bufpool/rpc/frame.hpp"

#include <string>

#include <algorithm>

namespace bufpool::rpc {

namespace {
template <typename T>
void put_le(std::byte* p, T v) noexcept {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<std::byte>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}
template <typename T>
T get_le(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(v);
}
}  // namespace

std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::ok:
      return "OK";
    case Status::not_found:
      return "NOT_FOUND";
    case Status::bad_request:
      return "BAD_REQUEST";
    case Status::too_large:
      return "TOO_LARGE";
    case Status::unavailable:
      return "UNAVAILABLE";
    case Status::shutting_down:
      return "SHUTTING_DOWN";
    case Status::internal:
      return "INTERNAL";
    case Status::storage_full:
      return "STORAGE_FULL";
    case Status::unauthenticated:
      return "UNAUTHENTICATED";
    case Status::forbidden:
      return "FORBIDDEN";
  }
  return "UNKNOWN";
}

HeaderBytes encode(const FrameHeader& h) noexcept {
  HeaderBytes b{};
  put_le(b.data() + 0, magic);
  b[4] = static_cast<std::byte>(version);
  b[5] = static_cast<std::byte>(h.opcode);
  b[6] = static_cast<std::byte>(h.flags);
  b[7] = static_cast<std::byte>(h.status);
  put_le(b.data() + 8, h.request_id);
  put_le(b.data() + 16, h.key_length);
  put_le(b.data() + 20, std::uint32_t{0});
  put_le(b.data() + 24, h.payload_length);
  return b;
}

DecodeError decode(const std::byte* b, FrameHeader& h) noexcept {
  if (get_le<std::uint32_t>(b) != magic) return DecodeError::bad_magic;
  // The id comes first, so that errors about the rest can still name the request.
  h.request_id = get_le<std::uint64_t>(b + 8);
  h.opcode = static_cast<std::uint8_t>(b[5]);
  if (static_cast<std::uint8_t>(b[4]) != version) return DecodeError::bad_version;
  h.flags = static_cast<std::uint8_t>(b[6]);
  if ((h.flags & ~flags::known) != 0) return DecodeError::bad_flags;
  h.status = static_cast<Status>(b[7]);
  h.key_length = get_le<std::uint32_t>(b + 16);
  if (get_le<std::uint32_t>(b + 20) != 0) return DecodeError::bad_reserved;
  h.payload_length = get_le<std::uint64_t>(b + 24);
  return DecodeError::none;
}

bool valid_key(std::string_view key) noexcept {
  if (key.empty() || key.size() > max_key_size) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
  });
}

namespace {
class StatusCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "bufpool.rpc"; }
  std::string message(int c) const override {
    return std::string(to_string(static_cast<Status>(c)));
  }
};
}  // namespace

const std::error_category& status_category() noexcept {
  static const StatusCategory c;
  return c;
}

}  // namespace bufpool::rpc
