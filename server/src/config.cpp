#include "config.hpp"

#include <fmt/format.h>
#include <spdlog/common.h>
#include <CLI/CLI.hpp>

#include <toml++/toml.h>
#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <thread>

namespace bufpool::server {

ConfigError::ConfigError(std::string key, const std::string& message)
    : std::runtime_error(fmt::format("config error: {}: {}", key, message)), key_(std::move(key)) {}

std::string Endpoint::to_string() const {
  if (!enabled) return "";
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  text = trim(text);
  if (text.empty()) return Endpoint{};
  std::string_view host, port;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  auto p = parse_count(port);
  if (host.empty() || !p || *p > 65535) return std::nullopt;
  // A name or an IPv4 address, or (in brackets) an IPv6 one: nothing else, so that what is
  // printed back (Endpoint::to_string) reads as the same endpoint. Found by fuzz_config.
  const bool v6 = text.front() == '[';
  for (const char c : host) {
    const bool name_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    const bool v6_char = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                         (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    if (v6 ? !v6_char : !name_char) return std::nullopt;
  }
  if (v6 && host.find(':') == std::string_view::npos) return std::nullopt;
  return Endpoint{std::string(host), static_cast<std::uint16_t>(*p), true};
}

unsigned Config::effective_threads() const {
  if (threads != 0) return threads;
  return affinity_cpus();
}

namespace {

// One setting: its TOML key, what it means, and how to read it from a string and show it.
struct Setting {
  const char* key;  // "section.name"
  const char* help;
  std::function<bool(Config&, std::string_view)> set;  // false: not a valid value
  std::function<std::string(const Config&)> get;
  const char* expected;  // what a valid value looks like, for the error
};

template <typename T>
Setting size_setting(const char* key, const char* help, T Config::*field) {
  return {key, help,
          [field](Config& c, std::string_view v) {
            auto s = parse_size(v);
            if (!s) return false;
            c.*field = static_cast<T>(*s);
            return true;
          },
          [field](const Config& c) { return format_size(c.*field); }, "a size such as 64MiB"};
}
Setting duration_setting(const char* key, const char* help,
                         std::chrono::milliseconds Config::*field) {
  return {key, help,
          [field](Config& c, std::string_view v) {
            auto d = parse_duration(v);
            if (!d || d->count() == 0) return false;
            c.*field = *d;
            return true;
          },
          [field](const Config& c) { return format_duration(c.*field); },
          "a duration above zero such as 250ms or 5s"};
}
Setting count_setting(const char* key, const char* help, std::size_t Config::*field,
                      bool zero_ok = false) {
  return {key, help,
          [field, zero_ok](Config& c, std::string_view v) {
            auto n = parse_count(trim(v));
            if (!n || (*n == 0 && !zero_ok)) return false;
            c.*field = static_cast<std::size_t>(*n);
            return true;
          },
          [field](const Config& c) { return std::to_string(c.*field); },
          zero_ok ? "a whole number (0: none)" : "a whole number above zero"};
}
Setting bool_setting(const char* key, const char* help, bool Config::*field) {
  return {key, help,
          [field](Config& c, std::string_view v) {
            const std::string_view s = trim(v);
            if (s == "true" || s == "1" || s == "yes")
              c.*field = true;
            else if (s == "false" || s == "0" || s == "no")
              c.*field = false;
            else
              return false;
            return true;
          },
          [field](const Config& c) { return std::string(c.*field ? "true" : "false"); },
          "true or false"};
}
Setting endpoint_setting(const char* key, const char* help, Endpoint Config::*field) {
  return {key, help,
          [field](Config& c, std::string_view v) {
            auto e = parse_endpoint(v);
            if (!e) return false;
            c.*field = *e;
            return true;
          },
          [field](const Config& c) { return (c.*field).to_string(); },
          "host:port (port 0 picks a free port; [v6]:port; empty disables)"};
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> all = {
      endpoint_setting("server.http_listen", "HTTP listen address", &Config::http_listen),
      endpoint_setting("server.rpc_listen", "RPC listen address", &Config::rpc_listen),
      endpoint_setting("server.resp_listen", "RESP (Redis protocol) listen address",
                       &Config::resp_listen),
      {"server.threads",
       "I/O threads (0: one per CPU the process may use: its cgroup CPU quota, rounded down, or "
       "its CPU affinity)",
       [](Config& c, std::string_view v) {
         auto n = parse_count(trim(v));
         if (!n || *n > 256) return false;
         c.threads = static_cast<unsigned>(*n);
         return true;
       },
       [](const Config& c) { return std::to_string(c.threads); }, "0 to 256"},
      {"server.port_file", "write the bound ports here (JSON) once listening",
       [](Config& c, std::string_view v) {
         c.port_file = std::string(v);
         return true;
       },
       [](const Config& c) { return c.port_file; }, "a path"},
      duration_setting("server.shutdown_timeout", "how long in-flight requests may finish",
                       &Config::shutdown_timeout),
      count_setting("limits.max_connections", "open connections at most", &Config::max_connections),
      size_setting("limits.max_header_size", "HTTP header bytes at most (431 above)",
                   &Config::max_header_size),
      size_setting("limits.max_object_size", "value bytes at most (413 above)",
                   &Config::max_object_size),
      duration_setting("limits.idle_timeout", "a keep-alive connection with no request closes",
                       &Config::idle_timeout),
      duration_setting("limits.read_timeout",
                       "a read that brings no byte for this long cuts the client off",
                       &Config::read_timeout),
      duration_setting("limits.alloc_timeout", "wait for pool memory at most (then 503)",
                       &Config::alloc_timeout),
      count_setting("limits.pipeline_depth", "requests read ahead per connection",
                    &Config::pipeline_depth),
      duration_setting("limits.header_timeout",
                       "a request header must be whole this long after it starts (then 408)",
                       &Config::header_timeout),
      size_setting("limits.min_body_rate",
                   "after body_grace a body must arrive at this many bytes a second (0: any)",
                   &Config::min_body_rate),
      duration_setting("limits.body_grace", "how long a body may arrive at any rate",
                       &Config::body_grace),
      duration_setting("limits.evict_stalled_after",
                       "with the table full, a request quiet this long may be closed for a new "
                       "connection",
                       &Config::evict_stalled_after),
      count_setting("limits.max_connections_per_address",
                    "open connections from one client address at most (0: no cap)",
                    &Config::max_connections_per_address, true),
      size_setting("limits.max_unreceived_per_address",
                   "body bytes declared but not yet received, per client address (0: twice "
                   "max_object_size)",
                   &Config::max_unreceived_per_address),
      size_setting("pool.max_memory", "pool memory limit", &Config::max_memory),
      size_setting("pool.chunk_size", "pool chunk size", &Config::chunk_size),
      size_setting("pool.min_block", "smallest pool block", &Config::min_block),
      size_setting("pool.reserve", "pool memory taken at start", &Config::reserve),
      duration_setting("pool.trim_after",
                       "chunks that no buffer has needed for this long go back to the system",
                       &Config::trim_after),
      bool_setting("pool.zero_freed",
                   "zero every block when it is freed (servers shared between tenants)",
                   &Config::zero_freed),
      size_setting("store.key_arena", "bytes for keys", &Config::key_arena),
      count_setting("store.max_keys", "keys stored at most", &Config::max_keys),
      {"log.level", "trace, debug, info, warn, error, critical or off",
       [](Config& c, std::string_view v) {
         const std::string s(trim(v));
         if (spdlog::level::from_str(s) == spdlog::level::off && s != "off") return false;
         c.log_level = s;
         return true;
       },
       [](const Config& c) { return c.log_level; }, "trace|debug|info|warn|error|critical|off"},
      bool_setting("log.access_log", "log every request", &Config::access_log),
      {"tls.cert_file", "PEM certificate chain for the TLS listeners (reloaded on SIGHUP)",
       [](Config& c, std::string_view v) {
         c.cert_file = std::string(trim(v));
         return true;
       },
       [](const Config& c) { return c.cert_file; }, "a path"},
      {"tls.key_file", "PEM private key of tls.cert_file",
       [](Config& c, std::string_view v) {
         c.key_file = std::string(trim(v));
         return true;
       },
       [](const Config& c) { return c.key_file; }, "a path"},
      bool_setting("tls.http", "the HTTP listener speaks TLS (HTTPS)", &Config::tls_http),
      bool_setting("tls.rpc", "the RPC listener speaks TLS", &Config::tls_rpc),
      bool_setting("tls.resp", "the RESP listener speaks TLS (redis-cli --tls)", &Config::tls_resp),
      {"auth.tokens_file",
       "file of 'ROLE TOKEN' lines (read, write, admin); tokens also come from BUFPOOL_TOKENS, "
       "never from a flag",
       [](Config& c, std::string_view v) {
         c.tokens_file = std::string(trim(v));
         return true;
       },
       [](const Config& c) { return c.tokens_file; }, "a path"},
      bool_setting("auth.open_metrics",
                   "with tokens, let /v1/stats, /metrics, RPC STATS and RESP INFO be read "
                   "without one",
                   &Config::open_metrics),
  };
  return all;
}

// The flag and environment name: the key without its section ("max_memory"), except where
// that alone would be vague ("log.level" -> "log_level", "tls.http" -> "tls_http").
std::string name_of(const Setting& s) {
  const std::string_view key(s.key);
  if (key == "log.level") return "log_level";
  if (key.starts_with("tls.")) return "tls_" + std::string(key.substr(4));  // --tls-http, ...
  return std::string(key.substr(key.find('.') + 1));
}
std::string flag_of(const Setting& s) {
  std::string f = "--" + name_of(s);
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}
std::string env_of(const Setting& s) {
  std::string e = "BUFPOOL_" + name_of(s);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::toupper(c); });
  return e;
}

void set_or_throw(Config& c, const Setting& s, std::string_view value, const std::string& from) {
  if (!s.set(c, value))
    throw ConfigError(s.key, fmt::format("'{}' ({}) is not {}", value, from, s.expected));
  c.origins.insert_or_assign(s.key, from);
}

// The tokens: auth.tokens_file's, then BUFPOOL_TOKENS's. Errors name the source and the entry,
// never a token.
void load_tokens(Config& c, const char* (*env)(const char*)) {
  try {
    if (!c.tokens_file.empty()) {
      std::FILE* f = std::fopen(c.tokens_file.c_str(), "rb");
      if (!f)
        throw ConfigError("auth.tokens_file",
                          fmt::format("cannot open '{}': {}", c.tokens_file, std::strerror(errno)));
      std::string text;
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
        text.append(buf, n);
      std::fclose(f);
      const auto tokens = parse_tokens(text, c.tokens_file);
      if (tokens.empty())
        throw ConfigError("auth.tokens_file", fmt::format("'{}' has no token", c.tokens_file));
      c.tokens.add(tokens);
    }
    if (const char* v = env("BUFPOOL_TOKENS")) c.tokens.add(parse_tokens(v, "BUFPOOL_TOKENS"));
  } catch (const std::invalid_argument& e) {
    throw ConfigError("auth.tokens", e.what());
  }
}

}  // namespace

std::vector<std::string> Config::describe() const {
  std::vector<std::string> out;
  for (const Setting& s : settings()) {
    const auto origin = origins.find(std::string_view(s.key));
    out.push_back(fmt::format("{} = {}  # {}", s.key, s.get(*this),
                              origin == origins.end() ? "default" : "from " + origin->second));
  }
  out.push_back(fmt::format("auth.tokens = {}{}",
                            tokens.enabled() ? tokens.describe() : "none (authentication off)",
                            insecure ? "; --insecure" : ""));
  return out;
}

bool loopback_host(std::string_view host) noexcept {
  return host.starts_with("127.") || host == "::1" || host == "localhost";
}

void apply_toml(Config& config, const std::string& toml_text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw ConfigError(
        source, fmt::format("line {}, column {}: {}", where.line, where.column, e.description()));
  }
  for (auto&& [section, node] : doc) {
    const auto* table = node.as_table();
    if (!table) throw ConfigError(std::string(section.str()), "expected a [section] table");
    for (auto&& [name, value] : *table) {
      const std::string key = fmt::format("{}.{}", section.str(), name.str());
      auto it = std::find_if(settings().begin(), settings().end(),
                             [&](const Setting& s) { return key == s.key; });
      if (it == settings().end()) throw ConfigError(key, "unknown setting");
      std::string text;
      if (auto v = value.as_string())
        text = v->get();
      else if (auto i = value.as_integer()) {
        if (i->get() < 0) throw ConfigError(key, "must not be negative");
        text = std::to_string(i->get());
      } else if (auto b = value.as_boolean())
        text = b->get() ? "true" : "false";
      else
        throw ConfigError(key, "expected a string, an integer or a boolean");
      set_or_throw(config, *it, text, source);
    }
  }
}

void validate(const Config& c) {
  if (!c.http_listen.enabled && !c.rpc_listen.enabled && !c.resp_listen.enabled)
    throw ConfigError("server.http_listen", "every listener is disabled");
  if (!std::has_single_bit(c.chunk_size) || c.chunk_size < 4096 || c.chunk_size > (1ull << 31))
    throw ConfigError("pool.chunk_size", "must be a power of two from 4KiB to 2GiB");
  if (!std::has_single_bit(c.min_block) || c.min_block < 4096 || c.min_block > c.chunk_size)
    throw ConfigError("pool.min_block", "must be a power of two from 4KiB to pool.chunk_size");
  if ((std::countr_zero(c.chunk_size) - std::countr_zero(c.min_block)) % 2 != 0)
    throw ConfigError("pool.min_block", "pool.chunk_size / pool.min_block must be a power of 4");
  if (c.max_memory < c.chunk_size)
    throw ConfigError("pool.max_memory", "must be at least pool.chunk_size");
  if (c.reserve > c.max_memory)
    throw ConfigError("pool.reserve", "must be at most pool.max_memory");
  if (c.max_object_size > c.chunk_size)
    throw ConfigError("limits.max_object_size",
                      fmt::format("{} is above pool.chunk_size ({})",
                                  format_size(c.max_object_size), format_size(c.chunk_size)));
  if (c.max_header_size < 512 || c.max_header_size > (1u << 20))
    throw ConfigError("limits.max_header_size", "must be from 512B to 1MiB");
  if (c.key_arena < 250 || c.key_arena > 0xffff'ffffull)
    throw ConfigError("store.key_arena", "must be from 250B to 4GiB - 1");
  if (c.max_keys > (1ull << 30)) throw ConfigError("store.max_keys", "must be at most 2^30");
  if (c.max_connections > (1ull << 20))
    throw ConfigError("limits.max_connections", "must be at most 1048576");
  if (c.pipeline_depth > 1024) throw ConfigError("limits.pipeline_depth", "must be at most 1024");
  if (c.tls_any() && (c.cert_file.empty() || c.key_file.empty()))
    throw ConfigError(c.cert_file.empty() ? "tls.cert_file" : "tls.key_file",
                      "a TLS listener (tls.http, tls.rpc or tls.resp) needs tls.cert_file and "
                      "tls.key_file");
  if (!c.tls_any() && !c.cert_file.empty())
    throw ConfigError("tls.cert_file",
                      "is set, but no listener speaks TLS: set tls.http, tls.rpc or tls.resp");
  if (c.unreceived_per_address() < c.max_object_size)
    throw ConfigError(
        "limits.max_unreceived_per_address",
        fmt::format("{} is below limits.max_object_size ({}): no client could send "
                    "the largest value",
                    format_size(c.max_unreceived_per_address), format_size(c.max_object_size)));
}

std::size_t memory_overhead(const Config& c, std::size_t memory) noexcept {
  // The process with its threads, libraries and allocator caches, measured in a container with
  // a full pool (perf/RESULTS.md, "Issue 14: memory in a container"), with room to spare.
  constexpr std::size_t process = 32u << 20;
  // A connection that has read something holds a 64 KiB read buffer (measured: 71 KiB of RSS
  // per busy RESP connection), and cgroup v2 also charges its sockets' kernel buffers.
  constexpr std::size_t per_connection = 80u << 10;
  // The index holds at most one key per min_block of pool. A slot is 32 bytes, and the table
  // doubles when half full (4 slots a key just after) while the old one is still there (6).
  const std::size_t keys = std::min(c.max_keys, memory / c.min_block);
  const std::size_t bytes =
      process + c.key_arena + c.max_connections * per_connection + keys * 6 * 32;
  constexpr std::size_t mib = 1u << 20;
  return (bytes + mib - 1) / mib * mib;  // whole MiB: it is a model, and reads as one
}

void apply_resource_limits(Config& c, const CgroupLimits& limits, unsigned affinity) {
  if (limits.memory && !c.origins.contains("pool.max_memory")) {
    // The index term of the overhead depends on the memory: model it at the limit itself.
    const std::size_t overhead = memory_overhead(c, static_cast<std::size_t>(*limits.memory));
    const std::size_t room = *limits.memory > overhead ? *limits.memory - overhead : 0;
    const std::size_t pool = room / c.chunk_size * c.chunk_size;
    if (pool == 0)
      throw ConfigError(
          "pool.max_memory",
          fmt::format("the memory limit {} ({}) leaves {} after {} of overhead, less than "
                      "pool.chunk_size ({}): raise the limit, or set pool.max_memory and a "
                      "smaller pool.chunk_size",
                      format_size(*limits.memory), limits.memory_file, format_size(room),
                      format_size(overhead), format_size(c.chunk_size)));
    c.max_memory = pool;
    c.origins["pool.max_memory"] =
        fmt::format("the memory limit {} in {}, less {} of overhead, in whole {} chunks",
                    format_size(*limits.memory), limits.memory_file, format_size(overhead),
                    format_size(c.chunk_size));
  }
  if (c.threads == 0) {
    // Round a quota down: a thread for a fraction of a core would be throttled every period.
    unsigned n = affinity;
    std::string why = fmt::format("the {} CPUs this process may run on", affinity);
    if (limits.cpus && *limits.cpus < affinity) {
      n = std::max(1u, static_cast<unsigned>(*limits.cpus));
      why = fmt::format("the CPU quota {:.2f} in {}, rounded down", *limits.cpus, limits.cpu_file);
    }
    c.threads = std::min(n, 256u);  // the setting's own bound
    c.origins["server.threads"] = why;
  }
}

void check_protected_mode(const Config& c) {
  if (!c.tokens.enabled() && !c.insecure) {
    for (const auto& [key, e] : {std::pair{"server.http_listen", &c.http_listen},
                                 std::pair{"server.rpc_listen", &c.rpc_listen},
                                 std::pair{"server.resp_listen", &c.resp_listen}}) {
      if (e->enabled && !loopback_host(e->host))
        throw ConfigError(
            key, fmt::format("refusing to listen on {} without authentication (protected mode): "
                             "give tokens in auth.tokens_file or BUFPOOL_TOKENS, or pass "
                             "--insecure to let anyone who reaches the port read, write and "
                             "delete every key",
                             e->to_string()));
    }
  }
}

Invocation parse_invocation(int argc, const char* const* argv, const char* (*env)(const char*)) {
  if (env == nullptr) env = [](const char* name) -> const char* { return std::getenv(name); };
  Invocation inv;
  CLI::App app{
      "bufpool-server: stores and serves byte buffers from a memory pool, over HTTP/1.1\n"
      "and a binary RPC protocol (docs/protocol.md). Settings come from defaults, then\n"
      "--config FILE (TOML), then BUFPOOL_* environment variables, then these flags.\n"
      "Sizes take units (4096, 64KiB, 1GiB, 10MB); durations need one (250ms, 5s, 2m).",
      "bufpool-server"};
  app.set_help_flag();  // handled below, so that parsing never calls exit()
  bool help = false;
  app.add_flag("-h,--help", help, "show this help and exit");
  std::string config_file;
  app.add_option("-c,--config", config_file, "TOML configuration file (see configs/bufpool.toml)");
  app.add_flag("--check-config", inv.check_config,
               "check the configuration, print it, and exit (0 valid, 2 invalid)");
  app.add_flag("-V,--version", inv.show_version, "print the version and exit");
  app.add_flag("--insecure", inv.config.insecure,
               "listen beyond loopback without authentication tokens (protected mode off)");
  app.add_flag("--health-check", inv.health_check,
               "ask the server configured here for GET /healthz; exit 0 if it answers 200, else 1 "
               "(for container HEALTHCHECKs: no curl needed)");
  std::vector<std::string> values(settings().size());
  std::vector<CLI::Option*> options;
  for (std::size_t i = 0; i < settings().size(); ++i) {
    const Setting& s = settings()[i];
    const Config defaults;
    options.push_back(app.add_option(flag_of(s), values[i],
                                     fmt::format("{} [{}; env {}; default {}]", s.help, s.key,
                                                 env_of(s), s.get(defaults)))
                          ->type_name("VALUE"));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    throw ConfigError("command line", e.what());
  }
  if (help) {
    inv.show_help = true;
    inv.help_text = app.help();
    return inv;
  }
  if (inv.show_version) return inv;
  if (!config_file.empty()) {
    std::FILE* f = std::fopen(config_file.c_str(), "rb");
    if (!f) throw ConfigError("--config", fmt::format("cannot open '{}'", config_file));
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
      text.append(buf, n);
    std::fclose(f);
    apply_toml(inv.config, text, config_file);
    inv.config_file = config_file;
  }
  for (const Setting& s : settings())
    if (const char* v = env(env_of(s).c_str())) set_or_throw(inv.config, s, v, env_of(s));
  for (std::size_t i = 0; i < settings().size(); ++i)
    if (options[i]->count() > 0)
      set_or_throw(inv.config, settings()[i], values[i], flag_of(settings()[i]));
  load_tokens(inv.config, env);
  // The health check only asks the server: it has no pool to size, listens on nothing, and
  // needs no token.
  if (!inv.health_check) apply_resource_limits(inv.config, read_cgroup_limits(), affinity_cpus());
  validate(inv.config);
  if (!inv.health_check) check_protected_mode(inv.config);
  return inv;
}

}  // namespace bufpool::server
