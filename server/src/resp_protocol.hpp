// RESP2, the Redis protocol: the pieces of it that need no socket (number and inline-command
// parsing as Redis does them, reply encoding, Redis's index and error-text rules), so that they
// can be tested alone. The connection that uses them is resp_session.cpp; docs/protocol.md says
// what is supported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bufpool::server::resp {

/// The longest inline command and the longest `*N` or `$N` line (Redis's PROTO_INLINE_MAX_SIZE).
inline constexpr std::size_t max_line = 64 * 1024;

/// A decimal integer as Redis's string2ll reads it: an optional '-', digits, no '+', no leading
/// zero (except "0" itself), no spaces, within int64. Nothing else.
std::optional<std::int64_t> parse_integer(std::string_view text) noexcept;

/// Splits an inline command line (without its line end) into arguments as Redis's sdssplitargs
/// does: blanks separate, "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes, 'single
/// quotes' take \'. A closing quote must be followed by a blank or the end. False: unbalanced
/// quotes (`args` is then unspecified).
bool split_inline(std::string_view line, std::vector<std::string>& args);

/// ASCII case-insensitive equality (command names and options).
bool iequals(std::string_view a, std::string_view b) noexcept;

/// GETRANGE's bounds, as Redis computes them: [first, last] inclusive with negative indexes from
/// the end, clamped; returns {offset, length} into a value of `size` bytes (length 0: empty).
std::pair<std::size_t, std::size_t> range_of(std::int64_t start, std::int64_t end,
                                             std::size_t size) noexcept;

/// "unknown command 'X', with args beginning with: 'a' 'b' ", Redis 7's words (clients match on
/// them), with the same truncation at 128 bytes.
std::string unknown_command(std::string_view name, std::span<const std::string_view> args);

/// An error line's text with CR and LF replaced by spaces (a reply line cannot hold them).
std::string one_line(std::string_view text);

/// Writes RESP2 values into a string (for replies built whole: INFO, COMMAND, HELLO).
class Writer {
 public:
  void simple(std::string_view s);  // +s
  void error(std::string_view s);   // -s (s starts with the error code: "ERR ...")
  void integer(std::int64_t n);     // :n
  void bulk(std::string_view s);    // $len s
  void nil();                       // $-1
  void array(std::size_t n);        // *n, then n values
  const std::string& text() const noexcept { return out_; }
  std::string take() noexcept { return std::move(out_); }

 private:
  std::string out_;
};

/// Writes `prefix`, `n` and CRLF into `out` (room for 24 bytes); returns the bytes written.
/// "$4096\r\n", ":1\r\n", "*16\r\n": the heads of replies.
std::size_t format_head(char* out, char prefix, std::int64_t n) noexcept;

}  // namespace bufpool::server::resp
