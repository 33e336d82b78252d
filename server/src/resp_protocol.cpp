#include "resp_protocol.hpp"

#include <fmt/format.h>

#include <charconv>
#include <limits>

namespace bufpool::server::resp {

std::optional<std::int64_t> parse_integer(std::string_view text) noexcept {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) ++i;
  if (i == text.size()) return std::nullopt;
  if (text[i] == '0' && text.size() > i + 1) return std::nullopt;  // "007", "-0..."
  if (negative && text[i] == '0') return std::nullopt;             // "-0"
  std::uint64_t v = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (v > max + 1) return std::nullopt;
    return v == max + 1 ? std::numeric_limits<std::int64_t>::min() : -static_cast<std::int64_t>(v);
  }
  if (v > max) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

namespace {
bool blank(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool split_inline(std::string_view line, std::vector<std::string>& args) {
  args.clear();
  std::size_t p = 0;
  const std::size_t n = line.size();
  for (;;) {
    while (p < n && blank(line[p]))
      ++p;
    if (p == n) return true;
    std::string current;
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      if (in_double) {
        if (p == n) return false;  // no closing quote
        if (line[p] == '\\' && p + 3 < n && line[p + 1] == 'x' && hex_value(line[p + 2]) >= 0 &&
            hex_value(line[p + 3]) >= 0) {
          current.push_back(
              static_cast<char>(hex_value(line[p + 2]) * 16 + hex_value(line[p + 3])));
          p += 3;
        } else if (line[p] == '\\' && p + 1 < n) {
          // \n \r \t \b \a; any other escaped byte stands for itself.
          static constexpr std::string_view escaped = "nrtba", meant = "\n\r\t\b\a";
          const auto k = escaped.find(line[++p]);
          current.push_back(k == std::string_view::npos ? line[p] : meant[k]);
        } else if (line[p] == '"') {
          // The closing quote must be followed by a blank or the end.
          if (p + 1 < n && !blank(line[p + 1])) return false;
          done = true;
        } else {
          current.push_back(line[p]);
        }
      } else if (in_single) {
        if (p == n) return false;
        if (line[p] == '\\' && p + 1 < n && line[p + 1] == '\'') {
          ++p;
          current.push_back('\'');
        } else if (line[p] == '\'') {
          if (p + 1 < n && !blank(line[p + 1])) return false;
          done = true;
        } else {
          current.push_back(line[p]);
        }
      } else {
        if (p == n || blank(line[p])) {
          done = true;
          break;
        }
        if (line[p] == '"') {
          in_double = true;
        } else if (line[p] == '\'') {
          in_single = true;
        } else {
          current.push_back(line[p]);
        }
      }
      if (p < n) ++p;
    }
    args.push_back(std::move(current));
  }
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::pair<std::size_t, std::size_t> range_of(std::int64_t start, std::int64_t end,
                                             std::size_t size) noexcept {
  const auto len = static_cast<std::int64_t>(size);
  if (start < 0 && end < 0 && start > end) return {0, 0};
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len == 0 || start > end) return {0, 0};
  return {static_cast<std::size_t>(start), static_cast<std::size_t>(end - start + 1)};
}

std::string one_line(std::string_view text) {
  std::string s(text);
  for (char& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

std::string unknown_command(std::string_view name, std::span<const std::string_view> args) {
  std::string list;
  for (std::string_view a : args) {
    if (list.size() >= 128) break;
    fmt::format_to(std::back_inserter(list), "'{}' ", a.substr(0, 128 - list.size()));
  }
  return one_line(fmt::format("ERR unknown command '{}', with args beginning with: {}",
                              name.substr(0, 128), list));
}

std::size_t format_head(char* out, char prefix, std::int64_t n) noexcept {
  out[0] = prefix;
  const auto r = std::to_chars(out + 1, out + 22, n);
  r.ptr[0] = '\r';
  r.ptr[1] = '\n';
  return static_cast<std::size_t>(r.ptr + 2 - out);
}

void Writer::simple(std::string_view s) {
  out_ += '+';
  out_ += s;
  out_ += "\r\n";
}
void Writer::error(std::string_view s) {
  out_ += '-';
  out_ += one_line(s);
  out_ += "\r\n";
}
void Writer::integer(std::int64_t n) {
  char head[24];
  out_.append(head, format_head(head, ':', n));
}
void Writer::bulk(std::string_view s) {
  char head[24];
  out_.append(head, format_head(head, '$', static_cast<std::int64_t>(s.size())));
  out_ += s;
  out_ += "\r\n";
}
void Writer::nil() {
  out_ += "$-1\r\n";
}
void Writer::array(std::size_t n) {
  char head[24];
  out_.append(head, format_head(head, '*', static_cast<std::int64_t>(n)));
}

}  // namespace bufpool::server::resp
