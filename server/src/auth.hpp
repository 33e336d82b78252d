// Who may do what: the tokens that authenticate clients (auth.tokens_file, BUFPOOL_TOKENS) and
// the roles they carry. Never from the command line, where `ps` shows them, and never in a log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bufpool::server {

/// Roles in order: each may do all that the ones before it may. `none` is a client that has not
/// authenticated (it may ask for /healthz, AUTH and QUIT, when authentication is on).
enum class Role : std::uint8_t { none, read, write, admin };
std::string_view to_string(Role r) noexcept;

struct Token {
  std::string secret;
  Role role = Role::read;
};

/// The tokens of a server. Empty: authentication is off and every client may do everything.
class Tokens {
 public:
  Tokens() = default;
  explicit Tokens(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  bool enabled() const noexcept { return !tokens_.empty(); }
  std::size_t size() const noexcept { return tokens_.size(); }
  /// The role of `secret`, or none. Compares against every token, each in time that does not
  /// depend on where the bytes differ, so that timing tells an attacker nothing.
  Role role_of(std::string_view secret) const noexcept;
  /// Whether a client holding `have` may do what needs `need`; with authentication off, yes.
  bool allows(Role have, Role need) const noexcept { return !enabled() || have >= need; }
  /// "3 tokens (1 admin, 1 write, 1 read)": counts, never a value.
  std::string describe() const;
  void add(const std::vector<Token>& more) {
    tokens_.insert(tokens_.end(), more.begin(), more.end());
  }

 private:
  std::vector<Token> tokens_;
};

/// Tokens from text: one per line or separated by commas, each "ROLE TOKEN" or "ROLE:TOKEN" with
/// ROLE read, write or admin; blank lines and lines starting with '#' are skipped. A token is 16
/// to 256 characters of [A-Za-z0-9._~+/=-] (base64 and hex both fit). Throws
/// std::invalid_argument naming `source` and the entry's number, never the token.
std::vector<Token> parse_tokens(std::string_view text, std::string_view source);

}  // namespace bufpool::server
