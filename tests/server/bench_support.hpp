// Running the real bufpool-bench binary from a test, and reading its --json output.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "server_process.hpp"

namespace bufpool::test {

inline const std::string bench = BUFPOOL_BENCH_BIN;

// A number from bufpool-bench's --json output: "key" or "object.key".
inline double json_number(const std::string& json, const std::string& path) {
  std::size_t from = 0;
  std::string key = path;
  if (const auto dot = path.find('.'); dot != std::string::npos) {
    from = json.find("\"" + path.substr(0, dot) + "\"");
    key = path.substr(dot + 1);
  }
  const auto at = json.find("\"" + key + "\": ", from);
  if (from == std::string::npos || at == std::string::npos)
    throw std::runtime_error("no " + path + " in " + json);
  return std::stod(json.substr(at + key.size() + 4));
}

struct BenchRun {
  int code = -1;
  std::string out;   // stdout and stderr
  std::string json;  // --json
};
inline BenchRun run_bench(const std::string& args, const TempDir& dir) {
  const std::string json = dir.file("bench.json");
  std::filesystem::remove(json);
  auto [code, out] = run(bench + " " + args + " --json " + json + " 2>&1");
  return {code, out, read_file(json)};
}

}  // namespace bufpool::test
