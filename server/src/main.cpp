// bufpool-server: see --help, configs/bufpool.toml and docs/protocol.md.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "config.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
  using namespace bufpool::server;
  Invocation inv;
  try {
    inv = parse_invocation(argc, argv);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "bufpool-server: %s\n", e.what());
    return 2;
  }
  if (inv.show_help) {
    std::fputs(inv.help_text.c_str(), stdout);
    return 0;
  }
  if (inv.show_version) {
    std::printf("bufpool-server %s\n", version_string);
    return 0;
  }
  if (inv.check_config) {
    for (const auto& line : inv.config.describe())
      std::printf("%s\n", line.c_str());
    std::printf("configuration ok%s\n",
                inv.config_file ? fmt::format(" ({})", *inv.config_file).c_str() : "");
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(inv.config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::info("bufpool-server {} starting{}", version_string,
               inv.config_file ? fmt::format(" with {}", *inv.config_file) : "");
  for (const auto& line : inv.config.describe())
    spdlog::info("config {}", line);
  try {
    Server server(inv.config);
    server.start();
    server.wait();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 0;
}
