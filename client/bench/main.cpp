// bufpool-bench: see --help, and client/README.md.
#include "options.hpp"
#include "runner.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
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
  if (!options->plot_path.empty() && std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::cerr << "bufpool-bench: --plot needs gnuplot (Debian: apt-get install gnuplot-nox)\n";
    return 2;
  }
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
  if (!options->plot_path.empty()) {
    FILE* gnuplot = ::popen("gnuplot", "w");
    const std::string script = plot_script(*options, report, options->plot_path);
    const bool sent =
        gnuplot && std::fwrite(script.data(), 1, script.size(), gnuplot) == script.size();
    if (!gnuplot || ::pclose(gnuplot) != 0 || !sent) {
      std::cerr << "bufpool-bench: gnuplot could not draw " << options->plot_path << '\n';
      return 1;
    }
  }
  const auto& t = report.total;
  if (t.corrupt > 0) {
    std::cerr << "bufpool-bench: " << t.corrupt << " corrupt responses\n";
    return 1;
  }
  if (report.error_rate() > options->max_error_rate) {
    std::cerr << "bufpool-bench: error rate " << fmt::format("{:.2f}", 100 * report.error_rate())
              << "% (" << t.error_count() << " of " << report.attempted()
              << " requests failed) is above --max-error-rate "
              << fmt::format("{:g}", 100 * options->max_error_rate) << "%\n";
    return 1;
  }
  if (report.succeeded() == 0) {
    std::cerr << "bufpool-bench: no request succeeded\n";
    return 1;
  }
  return 0;
}
