// bufpool-bench end to end: the real binary against a real bufpool-server (RPC and HTTP) and a
// real redis-server, all on 127.0.0.1 with ephemeral ports and bounded request counts.

#include <gtest/gtest.h>

#include <sstream>

#include <fstream>
#include <random>
#include <thread>

#include "bench_support.hpp"
#include "server_process.hpp"

namespace bufpool::test {
namespace {

using namespace std::chrono_literals;

TEST(Bench, BadArgumentsGetOneLineAndExitCode2) {
  for (const char* args :
       {"", "--target rpc://127.0.0.1", "--target rpc://127.0.0.1:1 -c 0",
        "--target rpc://127.0.0.1:1 --size 4XB", "--target rpc://127.0.0.1:1 --mix del=1",
        "--target rpc://127.0.0.1:1 --duration 5", "--no-such-flag"}) {
    auto [code, out] = run(bench + " " + args + " 2>&1");
    EXPECT_EQ(code, 2) << args;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << args << ": " << out;
    EXPECT_NE(out.find("bufpool-bench: "), std::string::npos) << out;
  }
  auto [code, out] = run(bench + " --help");
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("--pipeline"), std::string::npos);
  EXPECT_NE(out.find("(default 1)"), std::string::npos) << "--threads states its default";
  EXPECT_EQ(out.find("{false}"), std::string::npos) << out;
}

TEST(Bench, UnreachableTargetFailsAtOnceWithAClearMessage) {
  TempDir dir;
  for (const char* scheme : {"rpc", "http", "redis"}) {
    const auto start = std::chrono::steady_clock::now();
    auto r = run_bench(std::string("--target ") + scheme +
                           "://127.0.0.1:" + std::to_string(free_port()) + " -d 5s",
                       dir);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("cannot connect to " + std::string(scheme) + "://127.0.0.1:"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Connection refused"), std::string::npos) << r.out;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "no waiting out a timeout";
  }
}

TEST(Bench, RpcRunsExactlyTheRequestsAskedAndVerifiesEveryGet) {
  ServerProcess server;
  auto r = run_bench("--target rpc://127.0.0.1:" + std::to_string(server.rpc_port) +
                         " -c 4 -p 4 -t 2 -n 3000 --warmup 0ms --verify --keys 200"
                         " --size 1KiB..64KiB -q",
                     server.dir());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json_number(r.json, "requests"), 3000);
  EXPECT_EQ(json_number(r.json, "prefill.keys"), 200);
  EXPECT_EQ(json_number(r.json, "error_count"), 0);
  EXPECT_EQ(json_number(r.json, "corrupt"), 0);
  EXPECT_EQ(json_number(r.json, "misses"), 0) << "the prefill made every GET hit";
  EXPECT_EQ(json_number(r.json, "verified"), json_number(r.json, "gets"));
  EXPECT_GT(json_number(r.json, "gets"), 2000) << "mix put=1,get=9";
  EXPECT_GT(json_number(r.json, "latency_us.p50"), 0);
  EXPECT_LE(json_number(r.json, "latency_us.p99"), json_number(r.json, "latency_us.max"));
  EXPECT_NE(r.out.find("verify      "), std::string::npos) << r.out;
}

TEST(Bench, HttpApiAndPlainGetOfAnyPath) {
  ServerProcess server;
  const std::string http = "http://127.0.0.1:" + std::to_string(server.http_port);
  auto r =
      run_bench("--target " + http + " -c 4 -p 8 -n 2000 --warmup 0ms --verify -q", server.dir());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json_number(r.json, "requests"), 2000);
  EXPECT_EQ(json_number(r.json, "corrupt"), 0);
  EXPECT_EQ(json_number(r.json, "error_count"), 0);
  // Plain GET mode: every request GETs one path; --verify compares each body to the first.
  r = run_bench("--target " + http + "/v1/buffers/bench-7 -c 2 -p 4 -n 500 --warmup 0ms --verify",
                server.dir());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json_number(r.json, "gets"), 500);
  EXPECT_EQ(json_number(r.json, "verified"), 500);
  EXPECT_EQ(r.out.find('\r'), std::string::npos) << "no in-place progress when not a terminal";
  // A path that is not there: every GET misses, and nothing succeeds.
  r = run_bench("--target " + http + "/v1/buffers/nothing-here -c 1 -n 20 --warmup 0ms",
                server.dir());
  EXPECT_EQ(json_number(r.json, "misses"), 20);
}

TEST(Bench, VerifyCountsForeignBytesAsCorrupt) {
  ServerProcess server;
  // Values that bufpool-bench did not write: the same length as its own, other bytes.
  const std::string file = server.dir().file("junk");
  {
    std::ofstream f(file, std::ios::binary);
    std::mt19937 rng(5);
    for (int i = 0; i < 4096; ++i)
      f.put(static_cast<char>(rng()));
  }
  for (int k = 0; k < 5; ++k) {
    auto [code, out] = run("curl -sf -o /dev/null -X PUT --data-binary @" + file +
                           " http://127.0.0.1:" + std::to_string(server.http_port) +
                           "/v1/buffers/bench-" + std::to_string(k));
    ASSERT_EQ(code, 0);
  }
  auto r = run_bench("--target rpc://127.0.0.1:" + std::to_string(server.rpc_port) +
                         " -c 2 -n 200 --warmup 0ms --keys 5 --no-prefill --mix get=1 --verify -q",
                     server.dir());
  EXPECT_EQ(r.code, 1) << "corrupt responses fail the run: " << r.out;
  EXPECT_EQ(json_number(r.json, "corrupt"), 200);
  EXPECT_NE(r.out.find("200 corrupt"), std::string::npos) << r.out;
}

TEST(Bench, HttpOverloadIsCountedAsErrorsByKind) {
  ServerProcess server({"--max-memory", "64MiB", "--alloc-timeout", "100ms"});
  // 8 writers of 4 MiB values into 64 keys: 256 MiB wanted, 64 MiB there.
  const std::string args = "--target http://127.0.0.1:" + std::to_string(server.http_port) +
                           " -c 8 -n 200 --warmup 0ms --keys 64 --mix put=1 --size 4MiB -q";
  auto r = run_bench(args + " --max-error-rate 100%", server.dir());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GT(json_number(r.json, "errors.http_503"), 0) << r.json;
  EXPECT_GT(json_number(r.json, "puts"), 0) << r.json;
  EXPECT_EQ(json_number(r.json, "puts") + json_number(r.json, "error_count"), 200);
  // Both rates, and the error rate, are reported; succeeded counts only the successes.
  const double rate = json_number(r.json, "error_rate");
  EXPECT_NEAR(rate, json_number(r.json, "error_count") / 200, 1e-6);
  EXPECT_LT(json_number(r.json, "throughput_rps"), json_number(r.json, "attempted_rps"));
  EXPECT_NE(r.out.find("req/s attempted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error rate"), std::string::npos) << r.out;
  // By default any error fails the run, with the rate in the message.
  r = run_bench(args, server.dir());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is above --max-error-rate 0%"), std::string::npos) << r.out;
  EXPECT_TRUE(server.running());
}

TEST(Bench, JsonHasTheSeriesTheHistogramAndThePlotIsDrawn) {
  ServerProcess server;
  const std::string svg = server.dir().file("run.svg");
  auto r = run_bench("--target rpc://127.0.0.1:" + std::to_string(server.rpc_port) +
                         " -c 4 -d 3s --warmup 0ms --keys 100 -q --plot " + svg,
                     server.dir());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.json.find("\"version\": \"0.1.0\""), std::string::npos) << r.json;
  EXPECT_NE(r.json.find("\"started\": \"20"), std::string::npos) << r.json;
  // One entry per second of the measured phase (the last, partial second is in the totals).
  std::size_t seconds = 0;
  for (std::size_t at = r.json.find("\"succeeded_rps\""); at != std::string::npos;
       at = r.json.find("\"succeeded_rps\"", at + 1))
    ++seconds;
  EXPECT_GE(seconds, 2u) << r.json;
  // The histogram's buckets hold every successful request.
  const auto from = r.json.find("\"buckets\": [");
  ASSERT_NE(from, std::string::npos) << r.json;
  const auto to = r.json.find("]]", from);
  std::istringstream buckets(r.json.substr(from + 12, to - from - 11));
  double total = 0;
  for (std::string row; std::getline(buckets, row, ']');) {
    const auto last = row.rfind(',');
    if (last != std::string::npos) total += std::stod(row.substr(last + 1));
  }
  EXPECT_EQ(total, json_number(r.json, "requests"));
  const std::string drawn = read_file(svg);
  EXPECT_NE(drawn.find("<svg"), std::string::npos);
  EXPECT_NE(drawn.find("succeeded req/s"), std::string::npos);
  EXPECT_NE(drawn.find("p99 (ms)"), std::string::npos);
}

TEST(Bench, RedisSetAndGet) {
  TempDir dir;
  const auto port = free_port();
  ChildProcess redis({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--dir", dir.path().string()},
                     dir.file("redis.log"));
  const std::string target = "redis://127.0.0.1:" + std::to_string(port);
  BenchRun r;
  for (int i = 0; i < 100; ++i) {  // until it listens (at most 5 s)
    r = run_bench("--target " + target + " -c 4 -p 8 -n 3000 --warmup 0ms --verify -q", dir);
    if (r.code == 0 || !redis.running()) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(r.code, 0) << r.out << redis.log();
  EXPECT_EQ(json_number(r.json, "requests"), 3000);
  EXPECT_EQ(json_number(r.json, "corrupt"), 0);
  EXPECT_EQ(json_number(r.json, "error_count"), 0);
  EXPECT_EQ(json_number(r.json, "misses"), 0);
  EXPECT_EQ(json_number(r.json, "verified"), json_number(r.json, "gets"));
}

// Open loop: a server that stalls for 600 ms must show in the latency of every request that was
// due meanwhile, not only in the one that was in flight (coordinated omission).
TEST(Bench, OpenLoopLatencyCountsFromTheIntendedSendTime) {
  ServerProcess server;
  BenchRun r;
  std::thread load([&] {
    r = run_bench("--target rpc://127.0.0.1:" + std::to_string(server.rpc_port) +
                      " -c 1 -p 1 --rate 1000 -d 3s --warmup 0ms --keys 10 --mix get=1 -q",
                  server.dir());
  });
  std::this_thread::sleep_for(1s);
  server.signal(SIGSTOP);
  std::this_thread::sleep_for(600ms);
  server.signal(SIGCONT);
  load.join();
  ASSERT_EQ(r.code, 0) << r.out;
  const double n = json_number(r.json, "requests");
  EXPECT_GT(n, 2400) << "the schedule, not the server, sets the count";
  EXPECT_LT(n, 3300);
  // About 600 of the 3000 requests were due during the stall, waiting 0..600 ms.
  EXPECT_GT(json_number(r.json, "latency_us.max"), 450'000) << r.json;
  EXPECT_GT(json_number(r.json, "latency_us.p90"), 100'000) << r.json;
  EXPECT_LT(json_number(r.json, "latency_us.p50"), 50'000) << r.json;
}

}  // namespace
}  // namespace bufpool::test
