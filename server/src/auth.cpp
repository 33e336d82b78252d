#include "auth.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace bufpool::server {

std::string_view to_string(Role r) noexcept {
  switch (r) {
    case Role::none:
      return "none";
    case Role::read:
      return "read";
    case Role::write:
      return "write";
    case Role::admin:
      return "admin";
  }
  return "?";
}

namespace {

// Equal in time that depends on the lengths only.
bool same_secret(std::string_view a, std::string_view b) noexcept {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool token_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("._~+/=-").find(c) != std::string_view::npos;
}

std::string_view trim_space(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

Role Tokens::role_of(std::string_view secret) const noexcept {
  Role found = Role::none;
  for (const Token& t : tokens_)  // no early exit: every token is compared
    if (same_secret(t.secret, secret) && t.role > found) found = t.role;
  return found;
}

std::string Tokens::describe() const {
  std::size_t n[4] = {};
  for (const Token& t : tokens_)
    ++n[static_cast<std::size_t>(t.role)];
  return fmt::format("{} token{} ({} admin, {} write, {} read)", tokens_.size(),
                     tokens_.size() == 1 ? "" : "s", n[3], n[2], n[1]);
}

std::vector<Token> parse_tokens(std::string_view text, std::string_view source) {
  std::vector<Token> out;
  std::size_t number = 0;
  while (!text.empty()) {
    const auto end = text.find_first_of(",\n");
    std::string_view entry = trim_space(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++number;
    if (entry.empty() || entry.front() == '#') continue;
    const auto sep = entry.find_first_of(" \t:");
    auto bad = [&](std::string_view why) {
      return std::invalid_argument(fmt::format("{}: entry {}: {}", source, number, why));
    };
    if (sep == std::string_view::npos) throw bad("expected ROLE TOKEN (or ROLE:TOKEN)");
    const std::string_view role = entry.substr(0, sep);
    const std::string_view secret = trim_space(entry.substr(sep + 1));
    Token t;
    if (role == "read") {
      t.role = Role::read;
    } else if (role == "write") {
      t.role = Role::write;
    } else if (role == "admin") {
      t.role = Role::admin;
    } else {
      throw bad(fmt::format("unknown role '{}' (read, write or admin)", role));
    }
    if (secret.size() < 16 || secret.size() > 256)
      throw bad(fmt::format("a token is 16 to 256 characters, this one has {}", secret.size()));
    if (!std::all_of(secret.begin(), secret.end(), token_char))
      throw bad("a token is made of A-Z a-z 0-9 . _ ~ + / = -");
    t.secret = std::string(secret);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace bufpool::server
