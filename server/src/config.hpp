// bufpool-server's configuration: defaults, then the TOML file, then BUFPOOL_* environment
// variables, then command-line flags, each overriding the one before.
#pragma once

#include <bufpool/app/cgroup.hpp>
#include <bufpool/app/units.hpp>

#include "auth.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bufpool::server {

// parse_size, parse_duration, format_size, format_duration: <bufpool/app/units.hpp>.
using bufpool::format_duration;
using bufpool::format_size;
using bufpool::parse_duration;
using bufpool::parse_size;

/// A listening address. An empty setting disables the listener.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;  // 0: the kernel picks a free port
  bool enabled = false;
  std::string to_string() const;
};

struct Config {
  // [server]
  Endpoint http_listen{"127.0.0.1", 8080, true};
  Endpoint rpc_listen{"127.0.0.1", 9090, true};
  // RESP (Redis protocol). 6380, not Redis's 6379: it never collides with a local Redis.
  Endpoint resp_listen{"127.0.0.1", 6380, true};
  unsigned threads = 0;  // 0: one per CPU this process may use (cgroup quota, affinity)
  std::string port_file;
  std::chrono::milliseconds shutdown_timeout{5000};
  // [limits]
  std::size_t max_connections = 1024;
  std::size_t max_header_size = 8 * 1024;
  std::size_t max_object_size = 64u << 20;
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds alloc_timeout{2'000};
  std::size_t pipeline_depth = 16;
  // A slow client (docs/operations.md, "Slow and greedy clients").
  std::chrono::milliseconds header_timeout{10'000};  // a whole request header, from its start
  std::size_t min_body_rate = 1024;                  // bytes a second after body_grace; 0: none
  std::chrono::milliseconds body_grace{5'000};
  std::chrono::milliseconds evict_stalled_after{1'000};  // a request this quiet is evictable
  std::size_t max_connections_per_address = 0;           // 0: no cap
  // Body bytes declared and not yet received, per client address: what a client may make the
  // pool reserve ahead of its bytes. 0: twice max_object_size.
  std::size_t max_unreceived_per_address = 0;
  std::size_t unreceived_per_address() const noexcept {
    return max_unreceived_per_address ? max_unreceived_per_address : 2 * max_object_size;
  }
  // [pool]
  std::size_t max_memory = std::size_t{1} << 30;
  std::size_t chunk_size = 64u << 20;
  std::size_t min_block = 4096;
  std::size_t reserve = 0;
  std::chrono::milliseconds trim_after{30'000};
  bool zero_freed = false;
  // [store]
  std::size_t key_arena = 16u << 20;
  std::size_t max_keys = 1'000'000;
  // [log]
  std::string log_level = "info";
  bool access_log = false;
  // [tls]
  std::string cert_file, key_file;  // PEM: the chain (leaf first) and its key; SIGHUP reloads
  bool tls_http = false, tls_rpc = false, tls_resp = false;  // which listeners speak TLS
  bool tls_any() const noexcept { return tls_http || tls_rpc || tls_resp; }
  // [auth]
  std::string tokens_file;    // "ROLE TOKEN" lines (auth.hpp); never a token itself
  bool open_metrics = false;  // /v1/stats, /metrics, RPC STATS and RESP INFO without a token
  // Not settings: BUFPOOL_TOKENS and auth.tokens_file fill `tokens`, and only the --insecure
  // flag sets `insecure` (listening beyond loopback without tokens), in so many words.
  Tokens tokens;
  bool insecure = false;
  /// Where each setting's value came from, by key ("pool.max_memory"): a file, an environment
  /// variable, a flag, or what apply_resource_limits derived it from. Absent: the default.
  std::map<std::string, std::string, std::less<>> origins;
  /// The role that /v1/stats, /metrics, RPC STATS and RESP INFO need.
  Role stats_role() const noexcept { return open_metrics ? Role::none : Role::admin; }

  unsigned effective_threads() const;
  /// "key = value  # origin" lines, in file order, for the start-up log and --check-config.
  std::vector<std::string> describe() const;
};

/// A bad setting: `key` is its TOML name ("limits.max_object_size"), or a flag for command-line
/// syntax errors. what() is one line that names the key.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& message);
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

/// What the command line asked for besides the settings.
struct Invocation {
  Config config;
  std::optional<std::string> config_file;
  bool check_config = false;
  bool health_check = false;
  bool show_version = false;
  bool show_help = false;
  std::string help_text;  // filled when show_help
};

/// Parses argv and the environment (`env` looks a name up; nullptr uses getenv), reads the
/// --config file, and validates the result. Throws ConfigError.
/// apply_resource_limits uses read_cgroup_limits() and affinity_cpus().
Invocation parse_invocation(int argc, const char* const* argv,
                            const char* (*env)(const char*) = nullptr);

/// Loads a TOML document into `config` (for tests). Throws ConfigError.
void apply_toml(Config& config, const std::string& toml_text, const std::string& source);

/// Checks the combination of settings. Throws ConfigError.
void validate(const Config& config);

/// What the server keeps for itself beyond its pool, modelled from the settings
/// (docs/operations.md, "Memory in a container"; measured in perf/RESULTS.md): the process
/// itself, the key arena, a read buffer per connection, and the index for as many keys as
/// `memory` holds at one per pool.min_block.
std::size_t memory_overhead(const Config& config, std::size_t memory) noexcept;

/// Sizes the server to the limits the kernel holds it to, for the settings not set explicitly
/// (no origin): pool.max_memory becomes the memory limit less memory_overhead(), in whole
/// chunks; server.threads (when 0) becomes the CPU quota rounded down, at least 1, and at most
/// `affinity_cpus`. Records what each came from in `origins`. Throws ConfigError when the memory
/// limit leaves less than one chunk.
void apply_resource_limits(Config& config, const CgroupLimits& limits, unsigned affinity_cpus);

/// Like Redis's protected mode: refuses (ConfigError) a listener beyond loopback without any
/// token, unless `insecure`. parse_invocation calls it, except for --health-check.
void check_protected_mode(const Config& config);

/// Whether a listener on `host` is reachable from this machine only.
bool loopback_host(std::string_view host) noexcept;

/// "127.0.0.1:8080", "[::1]:0", "0.0.0.0:9090"; "" -> disabled.
std::optional<Endpoint> parse_endpoint(std::string_view text);

inline constexpr const char* version_string = "0.1.0";

}  // namespace bufpool::server
