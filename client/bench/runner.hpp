// bufpool-bench's load engine: threads, connections and the requests they keep in flight, the
// phases (prefill, warmup, measure), and what is counted and reported.
#pragma once

#include "histogram.hpp"
#include "options.hpp"

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>

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

struct Report {
  Tally total;
  double seconds = 0;  // measured time
  std::uint64_t prefilled = 0, prefill_failed = 0;
  std::string prefill_error;  // the first failure's kind
  double throughput() const noexcept;
  double mb_per_s() const noexcept;
};

/// Runs the load. Throws std::runtime_error with a one-line message when the target cannot be
/// reached at the start.
Report run(const Options& options, std::ostream& progress, bool progress_is_terminal);

void print_report(const Options& options, const Report& report, std::ostream& out);
std::string report_json(const Options& options, const Report& report);

}  // namespace bufpool::bench
