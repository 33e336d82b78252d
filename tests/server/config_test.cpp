// bufpool-server's configuration: units, sources and their order, and the errors a user sees.
#include "config.hpp"

#include <gtest/gtest.h>

#include <map>

#include "server_process.hpp"

namespace bufpool::server {
namespace {

TEST(Config, Endpoints) {
  auto e = parse_endpoint("127.0.0.1:0");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 0);
  EXPECT_TRUE(e->enabled);
  e = parse_endpoint("[::1]:9090");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->to_string(), "[::1]:9090");
  EXPECT_FALSE(parse_endpoint("::1:9090")) << "IPv6 needs brackets";
  EXPECT_FALSE(parse_endpoint("localhost"));
  EXPECT_FALSE(parse_endpoint("h:65536"));
  // Found by fuzz_config: a host of any bytes was taken, and printed back as another endpoint.
  EXPECT_FALSE(
      parse_endpoint("[\t\xf3"
                     "5 1]:0080"));
  EXPECT_FALSE(parse_endpoint("[example.com]:80")) << "brackets hold an IPv6 address";
  EXPECT_FALSE(parse_endpoint("a b:80"));
  EXPECT_TRUE(parse_endpoint("bufpool-0.bufpool.default.svc:6380"));
  EXPECT_FALSE(parse_endpoint("")->enabled);
  EXPECT_EQ(format_size(64u << 20), "64MiB");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1500ms");
}

const char* no_env(const char*) {
  return nullptr;
}

TEST(Config, FileThenEnvironmentThenFlags) {
  test::TempDir dir;
  const std::string file = dir.file("c.toml");
  std::ofstream(file) << "[pool]\nmax_memory = \"2GiB\"\n[limits]\nalloc_timeout = \"3s\"\n"
                         "max_connections = 10\n[log]\nlevel = \"debug\"\n";
  static std::map<std::string, std::string> env;
  env = {{"BUFPOOL_ALLOC_TIMEOUT", "4s"}, {"BUFPOOL_MAX_CONNECTIONS", "20"}};
  auto getenv_fake = [](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  const char* argv[] = {"bufpool-server", "--config", file.c_str(), "--max-connections", "30"};
  Invocation inv = parse_invocation(5, argv, getenv_fake);
  EXPECT_EQ(inv.config.max_memory, 2u << 30) << "from the file";
  EXPECT_EQ(inv.config.alloc_timeout, std::chrono::seconds(4)) << "the environment beats the file";
  EXPECT_EQ(inv.config.max_connections, 30u) << "a flag beats the environment";
  EXPECT_EQ(inv.config.log_level, "debug");
}

std::string error_of(std::vector<const char*> argv, const std::string& toml = "") {
  test::TempDir dir;
  const std::string file = dir.file("c.toml");
  if (!toml.empty()) {
    std::ofstream(file) << toml;
    argv.push_back("--config");
    argv.push_back(file.c_str());
  }
  argv.insert(argv.begin(), "bufpool-server");
  try {
    parse_invocation(static_cast<int>(argv.size()), argv.data(), no_env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_EQ(error_of({"--max-memory", "lots"}),
            "config error: pool.max_memory: 'lots' (--max-memory) is not a size such as 64MiB");
  EXPECT_NE(
      error_of({}, "[limits]\nmax_objet_size = \"1MiB\"\n").find("limits.max_objet_size: unknown"),
      std::string::npos);
  EXPECT_NE(error_of({}, "[limits]\nread_timeout = 5\n").find("limits.read_timeout"),
            std::string::npos);
  EXPECT_NE(error_of({}, "[pool\n").find("line 1"), std::string::npos) << "TOML syntax";
  EXPECT_NE(
      error_of({"--max-object-size", "128MiB"}).find("limits.max_object_size: 128MiB is above"),
      std::string::npos);
  EXPECT_NE(error_of({"--min-block", "8KiB"}).find("power of 4"), std::string::npos);
  EXPECT_NE(error_of({"--threads", "1000"}).find("server.threads"), std::string::npos);
  EXPECT_NE(error_of({"--http-listen", "", "--rpc-listen", "", "--resp-listen", ""})
                .find("every listener"),
            std::string::npos);
  EXPECT_NE(error_of({"--no-such-flag"}).find("command line"), std::string::npos);
  EXPECT_EQ(error_of({"--config", "/nonexistent.toml"}),
            "config error: --config: cannot open '/nonexistent.toml'");
}

TEST(Config, TheBinaryExitsWith2AndOneLine) {
  auto [rc, out] = test::run(std::string(BUFPOOL_SERVER_BIN) + " --idle-timeout 5 2>&1");
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(out,
            "bufpool-server: config error: limits.idle_timeout: '5' (--idle-timeout) is not a "
            "duration above zero such as 250ms or 5s\n");
  auto [rc2, out2] =
      test::run("BUFPOOL_MAX_MEMORY=1x " + std::string(BUFPOOL_SERVER_BIN) + " 2>&1");
  EXPECT_EQ(rc2, 2);
  EXPECT_NE(out2.find("(BUFPOOL_MAX_MEMORY)"), std::string::npos) << out2;
  auto [rc3, out3] = test::run(std::string(BUFPOOL_SERVER_BIN) + " --check-config --config " +
                               BUFPOOL_SOURCE_DIR "/configs/bufpool.toml");
  EXPECT_EQ(rc3, 0) << out3;
  EXPECT_NE(out3.find("pool.max_memory = 1GiB"), std::string::npos) << out3;
  auto [rc4, out4] = test::run(std::string(BUFPOOL_SERVER_BIN) + " --version");
  EXPECT_EQ(rc4, 0);
  EXPECT_EQ(out4, "bufpool-server 0.1.0\n");
  auto [rc5, out5] = test::run(std::string(BUFPOOL_SERVER_BIN) + " --help");
  EXPECT_EQ(rc5, 0);
  EXPECT_NE(out5.find("--max-memory"), std::string::npos);
  EXPECT_NE(out5.find("BUFPOOL_MAX_MEMORY"), std::string::npos);
}

// Sizing from the cgroup: only what was not set explicitly, in whole chunks below the limit less
// the modelled overhead, with its origin for --check-config; a limit too small is an error.
TEST(Config, ResourceLimitsSizeWhatWasNotSet) {
  CgroupLimits limits;
  limits.memory = 300u << 20;
  limits.memory_file = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
  limits.cpus = 1.5;
  limits.cpu_file = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us";
  Config c;
  c.max_connections = 256;
  apply_resource_limits(c, limits, 2);
  // 300 MiB - (32 MiB + 16 MiB arena + 256 x 80 KiB + 76,800 keys x 192 B = 82 MiB) = 218 MiB
  EXPECT_EQ(memory_overhead(c, 300u << 20), 83u << 20) << "68 MiB + 14.1 MiB, rounded up";
  EXPECT_EQ(c.max_memory, 192u << 20);
  EXPECT_EQ(c.threads, 1u) << "1.5 CPUs round down";
  EXPECT_NE(c.origins.at("pool.max_memory")
                .find("the memory limit 300MiB in "
                      "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
            std::string::npos)
      << c.origins.at("pool.max_memory");
  EXPECT_NE(c.origins.at("server.threads").find("CPU quota 1.50"), std::string::npos);
  bool shown = false;
  for (const auto& line : c.describe())
    shown |= line.starts_with("pool.max_memory = 192MiB  # from the memory limit 300MiB");
  EXPECT_TRUE(shown);

  // Set explicitly (a file, a variable or a flag): kept, whatever the cgroup says.
  Config set;
  set.origins["pool.max_memory"] = "--max-memory";
  set.max_memory = 2u << 30;
  set.threads = 4;
  apply_resource_limits(set, limits, 2);
  EXPECT_EQ(set.max_memory, 2u << 30);
  EXPECT_EQ(set.threads, 4u);

  // No limit: the default pool, one thread per CPU the process may use.
  Config free;
  apply_resource_limits(free, CgroupLimits{}, 3);
  EXPECT_EQ(free.max_memory, 1u << 30);
  EXPECT_EQ(free.threads, 3u);
  EXPECT_FALSE(free.origins.contains("pool.max_memory"));
  // A quota above what the affinity allows changes nothing; a quota under one CPU gives one.
  limits.cpus = 8;
  Config wide;
  apply_resource_limits(wide, limits, 2);
  EXPECT_EQ(wide.threads, 2u);
  limits.cpus = 0.25;
  Config narrow;
  apply_resource_limits(narrow, limits, 2);
  EXPECT_EQ(narrow.threads, 1u);

  // Too small for one chunk after the overhead.
  limits.memory = 100u << 20;
  Config small;
  try {
    apply_resource_limits(small, limits, 2);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "pool.max_memory");
    EXPECT_NE(std::string(e.what()).find("the memory limit 100MiB"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bufpool::server
