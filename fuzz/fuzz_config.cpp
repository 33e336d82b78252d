// Configuration and units: the TOML loader and validation, and the parsers of sizes, durations,
// endpoints and tokens, on the same bytes. Anything may be refused (ConfigError, invalid_argument);
// nothing may crash, and what parses must print back to what parses to the same value.
#include <stdexcept>
#include <string>

#include "auth.hpp"
#include "config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace bufpool::server;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    Config c;
    apply_toml(c, text, "fuzz.toml");
    validate(c);
    (void)c.describe();
  } catch (const ConfigError&) {
  }
  if (const auto n = parse_size(text)) {
    const auto back = parse_size(format_size(*n));
    if (!back || *back != *n) __builtin_trap();
  }
  if (const auto d = parse_duration(text)) {
    const auto back = parse_duration(format_duration(*d));
    if (!back || *back != *d) __builtin_trap();
  }
  if (const auto e = parse_endpoint(text)) {
    const auto back = parse_endpoint(e->to_string());
    if (!back || back->to_string() != e->to_string()) __builtin_trap();
  }
  try {
    (void)parse_tokens(text, "fuzz");
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
