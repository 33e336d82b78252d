// bufpool-bench's load engine: threads, connections and the requests they keep in flight, the
// phases (prefill, warmup, measure), and what is counted and reported.
#pragma once

#include "histogram.hpp"
#include "options.hpp"

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace bufpool::bench {

/// What one thread (or the whole run) counted. Latencies are of successful requests only.
struct Tally {
  Histogram put_latency, get_latency;
  std::uint64_t puts = 0, gets = 0, misses = 0;
  std::uint64_t bytes = 0;  // value bytes sent (PUT) and received (GET)
  std::uint64_t verified = 0, corrupt = 0;
  std::map<std::string, std::uint64_t, std::less<>> errors;
  std::uint64_t error_count() const noexcept;
  void merge(const Tally& other);
};

/// One second of the measured phase, as its progress line showed it.
struct Second {
  double at = 0;             // seconds since the measured phase began, at the interval's end
  double succeeded_rps = 0;  // requests that succeeded (hits and misses), per second
  double attempted_rps = 0;  // the same plus the failed ones
  double mb_per_s = 0;
  std::uint64_t errors = 0;
  std::uint64_t p99_ns = 0;  // of the successful requests in that second
};

struct Report {
  Tally total;
  double seconds = 0;  // measured time
  std::uint64_t prefilled = 0, prefill_failed = 0;
  std::string prefill_error;  // the first failure's kind
  std::vector<Second> series;
  std::string started;  // the run's start, ISO 8601 UTC
  std::uint64_t succeeded() const noexcept { return total.puts + total.gets + total.misses; }
  std::uint64_t attempted() const noexcept { return succeeded() + total.error_count(); }
  double throughput() const noexcept;  // succeeded per second
  double attempted_throughput() const noexcept;
  double error_rate() const noexcept;  // failed / attempted (0 when nothing was attempted)
  double mb_per_s() const noexcept;
};

/// Runs the load. Throws std::runtime_error with a one-line message when the target cannot be
/// reached at the start.
Report run(const Options& options, std::ostream& progress, bool progress_is_terminal);

void print_report(const Options& options, const Report& report, std::ostream& out);
std::string report_json(const Options& options, const Report& report);
/// The gnuplot script that draws report.series (throughput and p99 against time) as an SVG.
std::string plot_script(const Options& options, const Report& report, const std::string& svg);

}  // namespace bufpool::bench
