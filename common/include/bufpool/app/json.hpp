// Minimal JSON text helpers for the server's reports and error bodies and bufpool-bench's results
// (target bufpool_common).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace bufpool {

/// `s` as the inside of a JSON string.
inline std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace bufpool
