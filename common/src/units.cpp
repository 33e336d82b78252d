#include "bufpool/app/units.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <utility>

namespace bufpool {

std::optional<std::uint64_t> parse_count(std::string_view s) noexcept {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

namespace {

// Splits "123unit" into the number and the unit (spaces between them allowed).
std::pair<std::string_view, std::string_view> split_unit(std::string_view s) {
  s = trim(s);
  std::size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i;
  return {s.substr(0, i), trim(s.substr(i))};
}

}  // namespace

std::optional<std::size_t> parse_size(std::string_view text) {
  auto [num, unit] = split_unit(text);
  auto n = parse_count(num);
  if (!n) return std::nullopt;
  std::string u(unit);
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return std::tolower(c); });
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"", 1},
      {"b", 1},
      {"k", 1ull << 10},
      {"kib", 1ull << 10},
      {"m", 1ull << 20},
      {"mib", 1ull << 20},
      {"g", 1ull << 30},
      {"gib", 1ull << 30},
      {"t", 1ull << 40},
      {"tib", 1ull << 40},
      {"kb", 1'000},
      {"mb", 1'000'000},
      {"gb", 1'000'000'000},
      {"tb", 1'000'000'000'000},
  };
  const auto it =
      std::find_if(std::begin(units), std::end(units), [&](const auto& e) { return e.first == u; });
  if (it == std::end(units)) return std::nullopt;
  const std::uint64_t mult = it->second;
  if (*n > std::numeric_limits<std::size_t>::max() / mult) return std::nullopt;
  return static_cast<std::size_t>(*n * mult);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto [num, unit] = split_unit(text);
  auto n = parse_count(num);
  if (!n) return std::nullopt;
  using std::chrono::milliseconds;
  constexpr std::uint64_t max_ms = 1ull << 40;
  std::uint64_t ms = 0;
  if (unit == "us")
    ms = (*n + 999) / 1000;
  else if (unit == "ms")
    ms = *n;
  else if (unit == "s")
    ms = *n * 1000;
  else if (unit == "m" || unit == "min")
    ms = *n * 60'000;
  else if (unit == "h")
    ms = *n * 3'600'000;
  else
    return std::nullopt;
  if (*n > max_ms || ms > max_ms) return std::nullopt;
  return milliseconds(static_cast<milliseconds::rep>(ms));
}

std::string format_size(std::size_t bytes) {
  static constexpr std::pair<std::size_t, const char*> units[] = {
      {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  for (auto [m, name] : units)
    if (bytes != 0 && bytes % m == 0) return std::to_string(bytes / m) + name;
  return std::to_string(bytes) + "B";
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace bufpool
