// bufpool-bench's command line: what to load, how hard, and for how long.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bufpool::bench {

/// A bad argument. what() is one line, naming the option.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Target {
  enum class Kind { rpc, http, redis };
  Kind kind = Kind::rpc;
  std::string host;
  std::uint16_t port = 0;
  /// http only: empty for bufpool's API (PUT/GET /v1/buffers/<key>); otherwise the path that
  /// every request GETs, from any HTTP server ("plain GET mode").
  std::string path;
  bool plain_get() const noexcept { return kind == Kind::http && !path.empty(); }
  std::string to_string() const;
};
/// "rpc://host:port", "http://host:port[/path]", "redis://host:port". Throws UsageError.
Target parse_target(std::string_view text);

/// Value sizes: one size, a range lo..hi (log-uniform: each power of two is equally likely), or
/// a list (each equally likely).
struct SizeSpec {
  std::vector<std::size_t> list;  // one entry: a fixed size
  std::size_t lo = 0, hi = 0;     // a range when hi != 0
  std::size_t max() const noexcept;
  std::size_t pick(std::mt19937_64& rng) const;
  std::string to_string() const;
};
/// "4KiB", "1KiB..1MiB", "4KiB,64KiB,1MiB". Throws UsageError.
SizeSpec parse_sizes(std::string_view text);

/// Operation weights: "put=1,get=9" (set is a synonym of put).
struct Mix {
  unsigned put = 1, get = 9;
  bool put_only() const noexcept { return get == 0; }
  bool has_get() const noexcept { return get != 0; }
  std::string to_string() const;
};
Mix parse_mix(std::string_view text);

struct Options {
  Target target;
  unsigned connections = 16;
  unsigned pipeline = 1;  // requests in flight per connection
  unsigned threads = 1;
  std::optional<std::chrono::milliseconds> duration;  // default 10 s unless requests is set
  std::optional<std::uint64_t> requests;              // measured requests, then stop
  std::chrono::milliseconds warmup{1000};
  Mix mix;
  SizeSpec sizes{{4096}, 0, 0};
  std::uint64_t keys = 1000;
  std::string key_prefix = "bench-";
  bool prefill = true;  // PUT every key once before the load when the mix has GETs
  double rate = 0;      // requests per second in all (open loop); 0: closed loop
  bool verify = false;
  std::string json_path;
  std::string plot_path;      // --plot: an SVG of throughput and p99 over time (gnuplot)
  double max_error_rate = 0;  // exit 1 when errors / attempted requests is above this

  std::chrono::milliseconds timeout{5000};  // per request
  std::chrono::milliseconds connect_timeout{3000};
  bool tls = false;     // --tls: RPC over TLS
  std::string ca_file;  // --cacert: the CA that signed the server's certificate
  std::uint64_t seed = 1;
  bool quiet = false;  // no progress lines

  std::chrono::milliseconds effective_duration() const {
    if (duration) return *duration;
    return requests ? std::chrono::hours(24 * 365) : std::chrono::milliseconds(10'000);
  }
};

inline constexpr const char* version = "0.1.0";

/// "1%", "0.5%" or a fraction "0.01": a rate from 0 to 1. Throws UsageError.
double parse_rate(std::string_view text);

/// Parses argv. Returns nullopt after printing --help or --version (exit 0). Throws UsageError.
std::optional<Options> parse_options(int argc, const char* const* argv);

}  // namespace bufpool::bench
