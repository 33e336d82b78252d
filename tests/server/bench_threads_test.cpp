// bufpool-bench with several threads, each with its own connections and tallies that the main
// thread takes each second: labelled "concurrency", so CI runs it with a ThreadSanitizer build of
// bufpool-bench (and of the server), where a data race fails the run.
#include <gtest/gtest.h>

#include "bench_support.hpp"
#include "server_process.hpp"

namespace bufpool::test {
namespace {

TEST(BenchThreads, ThreeThreadsOverEveryProtocolAgree) {
  ServerProcess server;
  for (const std::string& target : {"rpc://127.0.0.1:" + std::to_string(server.rpc_port),
                                    "http://127.0.0.1:" + std::to_string(server.http_port)}) {
    auto r = run_bench("--target " + target +
                           " -c 6 -t 3 -p 4 -n 1500 --warmup 100ms --verify --keys 100"
                           " --size 1KiB..64KiB",
                       server.dir());
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(json_number(r.json, "requests"), 1500) << target;
    EXPECT_EQ(json_number(r.json, "corrupt"), 0);
    EXPECT_EQ(json_number(r.json, "error_count"), 0);
    EXPECT_EQ(json_number(r.json, "verified"), json_number(r.json, "gets"));
  }
  // Open loop, two threads: each connection keeps its own schedule.
  auto r = run_bench("--target rpc://127.0.0.1:" + std::to_string(server.rpc_port) +
                         " -c 4 -t 2 --rate 1000 -d 1s --warmup 0ms --keys 10",
                     server.dir());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GT(json_number(r.json, "requests"), 600);
  EXPECT_LT(json_number(r.json, "requests"), 1300);
}

}  // namespace
}  // namespace bufpool::test
