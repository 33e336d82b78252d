#include "options.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <bufpool/app/units.hpp>
#include <bufpool/rpc/frame.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>

namespace bufpool::bench {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

std::size_t size_or_throw(std::string_view text, std::string_view whole) {
  auto v = parse_size(text);
  if (!v || *v == 0)
    throw UsageError(
        fmt::format("--size: '{}' is not a size (like 4KiB, 1KiB..1MiB or "
                    "4KiB,64KiB)",
                    whole));
  return *v;
}

}  // namespace

std::string Target::to_string() const {
  static constexpr const char* schemes[] = {"rpc", "http", "redis"};
  return fmt::format("{}://{}:{}{}", schemes[static_cast<int>(kind)], host, port, path);
}

Target parse_target(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return UsageError(
        fmt::format("--target: '{}': {} (like rpc://127.0.0.1:9090, "
                    "http://127.0.0.1:8080[/path] or redis://127.0.0.1:6379)",
                    text, why));
  };
  Target t;
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) throw bad("no scheme");
  const auto scheme = text.substr(0, sep);
  if (scheme == "rpc")
    t.kind = Target::Kind::rpc;
  else if (scheme == "http")
    t.kind = Target::Kind::http;
  else if (scheme == "redis")
    t.kind = Target::Kind::redis;
  else
    throw bad("the scheme must be rpc, http or redis");
  auto rest = text.substr(sep + 3);
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    auto path = rest.substr(slash);
    if (t.kind != Target::Kind::http) throw bad("only http targets take a path");
    if (path.size() > 512) throw bad("the path is longer than 512 bytes");
    for (char c : path)
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) throw bad("the path has a space");
    if (path != "/") t.path.assign(path);
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close + 1 >= authority.size() ||
        authority[close + 1] != ':')
      throw bad("no port");
    t.host.assign(authority.substr(1, close - 1));
    port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos) throw bad("no port");
    t.host.assign(authority.substr(0, colon));
    port = authority.substr(colon + 1);
  }
  const auto p = parse_count(port);
  if (t.host.empty()) throw bad("no host");
  if (!p || *p == 0 || *p > 65535) throw bad("the port must be 1..65535");
  t.port = static_cast<std::uint16_t>(*p);
  return t;
}

std::size_t SizeSpec::max() const noexcept {
  if (hi != 0) return hi;
  return list.empty() ? 0 : *std::max_element(list.begin(), list.end());
}

std::size_t SizeSpec::pick(std::mt19937_64& rng) const {
  if (hi != 0) {
    // Log-uniform, so that a range over several powers of two is not all large values.
    std::uniform_real_distribution<double> d(std::log2(static_cast<double>(lo)),
                                             std::log2(static_cast<double>(hi)));
    const auto v = static_cast<std::size_t>(std::llround(std::exp2(d(rng))));
    return std::clamp(v, lo, hi);
  }
  if (list.size() == 1) return list.front();
  return list[std::uniform_int_distribution<std::size_t>(0, list.size() - 1)(rng)];
}

std::string SizeSpec::to_string() const {
  if (hi != 0) return format_size(lo) + ".." + format_size(hi);
  std::string s;
  for (auto v : list)
    s += (s.empty() ? "" : ",") + format_size(v);
  return s;
}

SizeSpec parse_sizes(std::string_view text) {
  SizeSpec spec;
  if (const auto dots = text.find(".."); dots != std::string_view::npos) {
    spec.lo = size_or_throw(text.substr(0, dots), text);
    spec.hi = size_or_throw(text.substr(dots + 2), text);
    if (spec.lo > spec.hi)
      throw UsageError(
          fmt::format("--size: '{}': the range's low end is above its high end", text));
    if (spec.lo == spec.hi) {
      spec.list = {spec.lo};
      spec.lo = spec.hi = 0;
    }
    return spec;
  }
  for (auto part : split(text, ','))
    spec.list.push_back(size_or_throw(part, text));
  return spec;
}

std::string Mix::to_string() const {
  return fmt::format("put={},get={}", put, get);
}

Mix parse_mix(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return UsageError(fmt::format("--mix: '{}': {} (like put=1,get=9)", text, why));
  };
  Mix m{0, 0};
  for (auto part : split(text, ',')) {
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) throw bad("each part is op=weight");
    const auto op = part.substr(0, eq);
    const auto w = parse_count(part.substr(eq + 1));
    if (!w || *w > 1'000'000) throw bad("a weight is a whole number up to 1000000");
    if (op == "put" || op == "set")
      m.put += static_cast<unsigned>(*w);
    else if (op == "get")
      m.get += static_cast<unsigned>(*w);
    else
      throw bad(fmt::format("unknown operation '{}': put (or set) and get", op));
  }
  if (m.put + m.get == 0) throw bad("every weight is 0");
  return m;
}

double parse_rate(std::string_view text) {
  const bool percent = !text.empty() && text.back() == '%';
  const std::string number(percent ? text.substr(0, text.size() - 1) : text);
  char* end = nullptr;
  const double v = std::strtod(number.c_str(), &end);
  const double rate = percent ? v / 100 : v;
  if (number.empty() || end != number.c_str() + number.size() || !(rate >= 0) || rate > 1)
    throw UsageError(
        fmt::format("--max-error-rate: '{}' is not a rate from 0 to 1 (or 0% to 100%)", text));
  return rate;
}

std::optional<Options> parse_options(int argc, const char* const* argv) {
  CLI::App app{
      "bufpool-bench: a load generator for bufpool-server (RPC and HTTP), any HTTP server (GET)\n"
      "and Redis (SET/GET), with the same load shape and the same measurements for each.\n"
      "Closed loop by default (each connection keeps --pipeline requests in flight); --rate\n"
      "gives an open loop whose latency counts from each request's intended send time.\n"
      "Exit status: 0 done; 1 target unreachable, corrupt responses, or an error rate above\n"
      "--max-error-rate; 2 bad arguments.\n",
      "bufpool-bench"};
  app.set_help_flag("-h,--help", "print this help and exit");
  app.get_formatter()->column_width(36);
  Options o;
  std::string target, duration, warmup, mix, size, timeout, connect_timeout, max_error_rate;
  std::uint64_t requests = 0;
  app.add_option("--target", target,
                 "rpc://HOST:PORT (bufpool RPC), http://HOST:PORT (bufpool's HTTP API),\n"
                 "http://HOST:PORT/PATH (GET PATH from any server), redis://HOST:PORT")
      ->required();
  app.add_option("-c,--connections", o.connections, "connections in all (default 16)");
  app.add_option("-p,--pipeline", o.pipeline, "requests in flight per connection (default 1)");
  app.add_option("-t,--threads", o.threads,
                 "threads, each with its share of the connections (default 1)");
  app.add_option("-d,--duration", duration, "measured time, like 10s (default 10s)");
  app.add_option("-n,--requests", requests, "measured requests; stops after this many");
  app.add_option("-w,--warmup", warmup, "load before measuring, like 2s (default 1s)");
  app.add_option("--mix", mix, "operation weights, like put=1,get=9 (the default)");
  app.add_option("-s,--size", size,
                 "value size of PUTs: 4KiB (default), a range 1KiB..1MiB (log-uniform)\n"
                 "or a list 4KiB,64KiB,1MiB");
  app.add_option("-k,--keys", o.keys, "the key space: keys <prefix>0..N-1 (default 1000)");
  app.add_option("--key-prefix", o.key_prefix, "key prefix (default bench-)");
  // A callback, not a "!" flag: CLI11 would show that one as "--no-prefill{false}".
  app.add_flag_callback(
      "--no-prefill", [&o] { o.prefill = false; },
      "do not PUT every key once before the load (GETs of missing keys miss)");
  app.add_option("-r,--rate", o.rate, "open loop: requests per second in all (default: closed)");
  app.add_flag("--verify", o.verify,
               "check every GET's bytes against what was PUT; corrupt responses are counted");
  app.add_option("--json", o.json_path,
                 "also write the results as JSON to this file: totals, a series per second,\n"
                 "the latency histogram's buckets, the start time and the version");
  app.add_option("--plot", o.plot_path,
                 "also draw throughput and p99 over time into this SVG file (needs gnuplot)");
  app.add_option("--max-error-rate", max_error_rate,
                 "exit 1 when failed / attempted requests is above this: 1%, 0.01\n"
                 "(default 0: any error fails the run)");
  app.add_option("--timeout", timeout, "per request (default 5s)");
  app.add_option("--connect-timeout", connect_timeout, "per connection attempt (default 3s)");
  app.add_flag("--tls", o.tls,
               "speak TLS to an rpc:// target (a server with tls.rpc); for HTTPS and RESP over "
               "TLS use wrk https:// or redis-benchmark --tls");
  app.add_option("--cacert", o.ca_file,
                 "with --tls: PEM file of the CA (or the self-signed certificate) to trust; "
                 "default: the system's")
      ->type_name("FILE");
  app.add_option("--seed", o.seed, "seed of the operation, key and size choices (default 1)");
  app.add_flag("-q,--quiet", o.quiet, "no progress line each second");
  app.set_version_flag("--version", std::string("bufpool-bench ") + version,
                       "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return std::nullopt;
  } catch (const CLI::CallForVersion&) {
    std::cout << "bufpool-bench " << version << '\n';
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    throw UsageError(what);
  }
  const auto duration_of = [](const std::string& flag, const std::string& text, bool zero_ok) {
    auto d = parse_duration(text);
    if (!d || (!zero_ok && d->count() == 0))
      throw UsageError(
          fmt::format("{}: '{}' is not a duration (like 500ms, 10s or 2m)", flag, text));
    return *d;
  };
  o.target = parse_target(target);
  if (o.connections == 0 || o.connections > 100'000)
    throw UsageError("--connections: must be 1..100000");
  if (o.pipeline == 0 || o.pipeline > 4096) throw UsageError("--pipeline: must be 1..4096");
  if (o.threads == 0 || o.threads > 256) throw UsageError("--threads: must be 1..256");
  if (o.threads > o.connections)
    throw UsageError(fmt::format("--threads: {} threads for {} connections leaves some idle",
                                 o.threads, o.connections));
  if (!duration.empty()) o.duration = duration_of("--duration", duration, false);
  if (app.count("--requests")) {
    if (requests == 0) throw UsageError("--requests: must be at least 1");
    o.requests = requests;
  }
  if (!warmup.empty()) o.warmup = duration_of("--warmup", warmup, true);
  if (!timeout.empty()) o.timeout = duration_of("--timeout", timeout, false);
  if (!connect_timeout.empty())
    o.connect_timeout = duration_of("--connect-timeout", connect_timeout, false);
  if (o.tls && o.target.kind != Target::Kind::rpc)
    throw UsageError(
        "--tls: only for rpc:// targets (for HTTPS use wrk, for RESP redis-benchmark --tls)");
  if (!o.ca_file.empty() && !o.tls) throw UsageError("--cacert: only with --tls");
  if (!mix.empty()) o.mix = parse_mix(mix);
  if (!max_error_rate.empty()) o.max_error_rate = parse_rate(max_error_rate);
  if (!size.empty()) o.sizes = parse_sizes(size);
  if (o.keys == 0 || o.keys > 1'000'000'000) throw UsageError("--keys: must be 1..1000000000");
  if (!(o.rate >= 0) || o.rate > 1e8) throw UsageError("--rate: must be 0 (closed loop) to 1e8");
  if (o.target.plain_get()) {
    if (app.count("--mix") && o.mix.put != 0)
      throw UsageError("--mix: an http target with a path only GETs that path");
    o.mix = Mix{0, 1};
    o.prefill = false;
  }
  const std::string longest_key = o.key_prefix + std::to_string(o.keys - 1);
  if (o.target.kind == Target::Kind::rpc && !rpc::valid_key(longest_key))
    throw UsageError(fmt::format("--key-prefix: '{}' is not a valid RPC key", longest_key));
  if (o.target.kind == Target::Kind::http && !o.target.plain_get())
    for (char c : o.key_prefix)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
        throw UsageError("--key-prefix: http keys take letters, digits, '-', '_' and '.'");
  if (longest_key.size() > 250) throw UsageError("--key-prefix: keys are at most 250 bytes");
  if (o.sizes.max() > (std::size_t{1} << 30)) throw UsageError("--size: at most 1GiB per value");
  return o;
}

}  // namespace bufpool::bench
