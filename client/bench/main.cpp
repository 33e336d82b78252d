// bufpool-bench: see --help, and client/README.md.
#include "options.hpp"
#include "runner.hpp"

#include <unistd.h>

#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  using namespace bufpool::bench;
  std::optional<Options> options;
  try {
    options = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "bufpool-bench: " << e.what() << " (see --help)\n";
    return 2;
  }
  if (!options) return 0;  // --help or --version
  Report report;
  try {
    report = run(*options, std::cerr, ::isatty(STDERR_FILENO) == 1);
  } catch (const std::exception& e) {
    std::cerr << "bufpool-bench: " << e.what() << '\n';
    return 1;
  }
  print_report(*options, report, std::cout);
  if (!options->json_path.empty()) {
    std::ofstream f(options->json_path);
    f << report_json(*options, report);
    if (!f.flush()) {
      std::cerr << "bufpool-bench: cannot write " << options->json_path << '\n';
      return 1;
    }
  }
  const auto& t = report.total;
  if (t.corrupt > 0) {
    std::cerr << "bufpool-bench: " << t.corrupt << " corrupt responses\n";
    return 1;
  }
  if (t.puts + t.gets + t.misses == 0) {
    std::cerr << "bufpool-bench: no request succeeded\n";
    return 1;
  }
  return 0;
}
