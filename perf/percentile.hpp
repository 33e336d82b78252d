// The q-quantile (0 <= q <= 1) of samples already sorted ascending: the nearest-rank value.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace bufpool::perf {

inline double percentile(const std::vector<double>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank)];
}

}  // namespace bufpool::perf
