// Sizes and durations as people write them in configuration files and on command lines. Shared by
// bufpool-server and bufpool-bench (target bufpool_common); not part of the installed library.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bufpool {

/// A whole number written plainly ("16"): digits only, no sign, no spaces. nullopt otherwise, or
/// when it overflows 64 bits.
std::optional<std::uint64_t> parse_count(std::string_view text) noexcept;
/// `text` without its leading and trailing white space.
std::string_view trim(std::string_view text) noexcept;

/// "64MiB", "1GiB", "512KiB", "8k", "4096", "4096B" -> bytes; decimal units too ("10MB").
/// Surrounding spaces are allowed. nullopt: not a size, or it overflows std::size_t.
std::optional<std::size_t> parse_size(std::string_view text);

/// "250ms", "5s", "2m", "1h", "100us" -> milliseconds (sub-millisecond values round up to 1 ms).
/// The unit is required: a bare number is ambiguous. nullopt: not a duration, or above 2^40 ms.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The largest binary unit that divides exactly: 65536 -> "64KiB", 1000 -> "1000B".
std::string format_size(std::size_t bytes);
/// The largest unit that divides exactly: 120000ms -> "2m", 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace bufpool
