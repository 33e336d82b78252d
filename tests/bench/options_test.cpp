// client/bench/options.hpp: targets, sizes, mixes and the command line, and their errors.
#include "options.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace bufpool::bench {
namespace {

TEST(Options, Targets) {
  auto t = parse_target("rpc://127.0.0.1:9090");
  EXPECT_EQ(t.kind, Target::Kind::rpc);
  EXPECT_EQ(t.host, "127.0.0.1");
  EXPECT_EQ(t.port, 9090);
  EXPECT_FALSE(t.plain_get());
  t = parse_target("http://localhost:8080/v1/buffers/x");
  EXPECT_EQ(t.kind, Target::Kind::http);
  EXPECT_EQ(t.path, "/v1/buffers/x");
  EXPECT_TRUE(t.plain_get());
  EXPECT_FALSE(parse_target("http://localhost:8080/").plain_get()) << "/ is the API mode";
  t = parse_target("redis://[::1]:6379");
  EXPECT_EQ(t.kind, Target::Kind::redis);
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.to_string(), "redis://::1:6379");
  for (const char* bad : {"127.0.0.1:9090", "ftp://h:1", "rpc://h", "rpc://h:0", "rpc://h:70000",
                          "rpc://:1", "redis://h:1/path", "http://h:1/a b"})
    EXPECT_THROW(parse_target(bad), UsageError) << bad;
}

TEST(Options, Sizes) {
  auto s = parse_sizes("4KiB");
  EXPECT_EQ(s.list, std::vector<std::size_t>{4096});
  EXPECT_EQ(s.max(), 4096u);
  s = parse_sizes("4KiB,64KiB,1MiB");
  EXPECT_EQ(s.list.size(), 3u);
  EXPECT_EQ(s.max(), 1u << 20);
  s = parse_sizes("1KiB..1MiB");
  EXPECT_EQ(s.lo, 1024u);
  EXPECT_EQ(s.hi, 1u << 20);
  // Log-uniform: about as many picks below 32 KiB (5 of 10 powers of two) as above.
  std::mt19937_64 rng(1);
  int below = 0;
  for (int i = 0; i < 10'000; ++i) {
    const auto v = s.pick(rng);
    ASSERT_GE(v, 1024u);
    ASSERT_LE(v, 1u << 20);
    below += v < (32u << 10);
  }
  EXPECT_NEAR(below, 5000, 300);
  for (const char* bad : {"", "0", "4XB", "1MiB..1KiB", "4KiB,,8KiB", "..1MiB"})
    EXPECT_THROW(parse_sizes(bad), UsageError) << bad;
}

TEST(Options, Mix) {
  auto m = parse_mix("put=1,get=9");
  EXPECT_EQ(m.put, 1u);
  EXPECT_EQ(m.get, 9u);
  m = parse_mix("set=3");
  EXPECT_TRUE(m.put_only());
  for (const char* bad : {"put", "put=x", "del=1", "put=0,get=0", ""})
    EXPECT_THROW(parse_mix(bad), UsageError) << bad;
}

std::optional<Options> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "bufpool-bench");
  return parse_options(static_cast<int>(args.size()), args.data());
}

TEST(Options, CommandLine) {
  auto o = parse({"--target", "rpc://127.0.0.1:9090", "-c", "8", "-p", "4", "--duration", "2s",
                  "--mix", "put=1", "--size", "1KiB..4KiB", "--rate", "1000"});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->connections, 8u);
  EXPECT_EQ(o->pipeline, 4u);
  EXPECT_EQ(o->effective_duration(), std::chrono::seconds(2));
  EXPECT_TRUE(o->mix.put_only());
  EXPECT_EQ(o->rate, 1000.0);
  o = parse({"--target", "http://127.0.0.1:80/index.html"});
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->mix.put) << "plain GET mode only GETs";
  EXPECT_FALSE(o->prefill);
  EXPECT_EQ(o->effective_duration(), std::chrono::seconds(10));
  o = parse({"--target", "redis://127.0.0.1:6379", "-n", "500"});
  EXPECT_EQ(o->requests, 500u);
}

TEST(Options, BadArgumentsAreOneLineErrors) {
  const std::vector<std::vector<const char*>> bad = {
      {},
      {"--target", "rpc://h:1", "--connections", "0"},
      {"--target", "rpc://h:1", "--pipeline", "x"},
      {"--target", "rpc://h:1", "--duration", "10"},
      {"--target", "rpc://h:1", "--threads", "4", "--connections", "2"},
      {"--target", "rpc://h:1", "--rate", "-5"},
      {"--target", "rpc://h:1", "--keys", "0"},
      {"--target", "rpc://h:1", "--key-prefix", "has space "},
      {"--target", "http://h:1/x", "--mix", "put=1,get=1"},
      {"--target", "rpc://h:1", "--bogus"},
      {"--target", "rpc://h:1", "-n", "0"},
  };
  for (const auto& args : bad) {
    try {
      parse(args);
      ADD_FAILURE() << "accepted: " << (args.empty() ? "(nothing)" : args.back());
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace bufpool::bench
