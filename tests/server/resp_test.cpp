// The RESP (Redis protocol) front end of the real bufpool-server, driven by clients we did not
// write (redis-cli, redis-benchmark, Debian's python3-redis, nutcracker in front of the server)
// and by raw sockets for what no client sends: malformed commands.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "server_process.hpp"

using namespace bufpool::test;
using namespace std::chrono_literals;

namespace {

const std::string python = "/usr/bin/python3";  // Debian's, which has python3-redis
const std::string redis_py_script =
    std::string(BUFPOOL_SOURCE_DIR) + "/tests/server/resp_redis_py.py";

std::string cli(const ServerProcess& s) {
  return "redis-cli -p " + std::to_string(s.resp_port) + " ";
}

// A plain TCP connection with a receive timeout, for bytes no client library would send.
class Raw {
 public:
  explicit Raw(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect failed");
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Raw() { close(fd_); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  // False if the server closed first.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Reads exactly n bytes (fewer if the server closes or 5 s pass).
  std::string read(std::size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      const ssize_t got = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }
  // Everything until the server closes; `closed` tells whether it did (not a timeout).
  std::string read_to_end(bool& closed) {
    std::string out;
    char buf[65536];
    for (;;) {
      const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
      if (got == 0) {
        closed = true;
        return out;
      }
      if (got < 0) {
        closed = false;
        return out;
      }
      out.append(buf, static_cast<std::size_t>(got));
    }
  }

 private:
  int fd_ = -1;
};

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args)
    out += bulk(a);
  return out;
}

// The pool's in-use bytes, as INFO reports them (a server-side release may trail the reply, so
// wait for `want` a little).
std::size_t used_memory(const ServerProcess& s, std::size_t want = 0) {
  std::size_t v = 0;
  for (int i = 0; i < 200; ++i) {
    const auto [code, out] = run(cli(s) + "info memory");
    const auto at = out.find("used_memory:");
    if (code != 0 || at == std::string::npos) return SIZE_MAX;
    v = std::stoull(out.substr(at + 12));
    if (v == want) return v;
    std::this_thread::sleep_for(10ms);
  }
  return v;
}

std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s)
    c = static_cast<char>(rng());
  return s;
}

TEST(Resp, RedisCliCommandsAndBinaryValuesByteForByte) {
  ServerProcess s;
  TempDir dir;
  const std::uint32_t seed = 20261201;
  std::printf("seed %u\n", seed);
  const std::string value = random_bytes(3 << 20, seed);  // 3 MiB, every byte value
  const std::string in = dir.file("value.bin");
  std::ofstream(in, std::ios::binary) << value;
  EXPECT_EQ(run(cli(s) + "-x set cli:big < " + in).second, "OK\n");
  const auto [code, out] = run(cli(s) + "--raw get cli:big");
  ASSERT_EQ(code, 0);
  EXPECT_TRUE(out == value + "\n") << "value differs (" << out.size() << " bytes)";
  EXPECT_EQ(run(cli(s) + "strlen cli:big").second, std::to_string(value.size()) + "\n");
  EXPECT_EQ(run(cli(s) + "ping").second, "PONG\n");
  // redis-cli prints an error reply followed by an empty line.
  EXPECT_EQ(run(cli(s) + "set cli:a 1").second, "OK\n");
  EXPECT_EQ(run(cli(s) + "set cli:a 2 nx").second, "\n");  // nil
  EXPECT_EQ(run(cli(s) + "set cli:a 3 xx get").second, "1\n");
  EXPECT_EQ(run(cli(s) + "mset cli:b x cli:c y").second, "OK\n");
  EXPECT_EQ(run(cli(s) + "mget cli:a cli:b cli:none cli:c").second, "3\nx\n\ny\n");
  EXPECT_EQ(run(cli(s) + "exists cli:a cli:a cli:none").second, "2\n");
  EXPECT_EQ(run(cli(s) + "getrange cli:big 0 -1").second.size(), value.size() + 1);
  EXPECT_EQ(run(cli(s) + "dbsize").second, "4\n");
  EXPECT_EQ(run(cli(s) + "select 0").second, "OK\n");
  EXPECT_EQ(run(cli(s) + "select 1").second, "ERR DB index is out of range\n\n");
  EXPECT_EQ(run(cli(s) + "set cli:t v ex 10").second.find("ERR bufpool does not expire keys"), 0u);
  EXPECT_EQ(run(cli(s) + "flushall").second,
            "ERR unknown command 'flushall', with args beginning with: \n\n");
  EXPECT_EQ(run(cli(s) + "get").second, "ERR wrong number of arguments for 'get' command\n\n");
  EXPECT_NE(run(cli(s) + "info server").second.find("redis_version:7.0.0"), std::string::npos);
  EXPECT_EQ(run(cli(s) + "command count").second, "19\n");
  EXPECT_EQ(run(cli(s) + "hello 3").second, "NOPROTO unsupported protocol version\n\n");
  EXPECT_EQ(run(cli(s) + "del cli:a cli:b cli:c cli:big cli:none").second, "4\n");
  EXPECT_EQ(used_memory(s), 0u);
}

TEST(Resp, TheSameStoreAsHttp) {
  ServerProcess s;
  const std::string base = "http://127.0.0.1:" + std::to_string(s.http_port) + "/v1/buffers/";
  ASSERT_EQ(run("curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary from-http " + base +
                "shared1")
                .second,
            "201");
  EXPECT_EQ(run(cli(s) + "get shared1").second, "from-http\n");
  EXPECT_EQ(run(cli(s) + "set shared2 from-resp").second, "OK\n");
  EXPECT_EQ(run("curl -s " + base + "shared2").second, "from-resp");
}

TEST(Resp, RedisPyClient) {
  ServerProcess s;
  const auto [code, out] =
      run(python + " " + redis_py_script + " " + std::to_string(s.resp_port) + " 4242 2>&1");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\nok\n"), std::string::npos) << out;
  EXPECT_EQ(used_memory(s), 0u);
}

TEST(Resp, RedisBenchmarkShortRuns) {
  ServerProcess s;
  const std::string port = std::to_string(s.resp_port);
  for (const char* pipeline : {"1", "16"}) {
    const auto [code, out] = run("redis-benchmark -p " + port + " -c 4 -n 2000 -r 100 -d 1000 -P " +
                                 pipeline + " -t ping,set,get,mset -q 2>&1");
    ASSERT_EQ(code, 0) << out;
    for (const char* test : {"PING_INLINE:", "PING_MBULK:", "SET:", "GET:", "MSET (10 keys):"})
      EXPECT_NE(out.find(test), std::string::npos) << test << " missing in: " << out;
    EXPECT_EQ(out.find("ERR"), std::string::npos) << out;
  }
  // Every key it wrote holds its 1000 bytes, the same for all (it fills one payload buffer once).
  std::string keys;
  for (int i = 0; i < 100; ++i) {
    char k[32];
    std::snprintf(k, sizeof k, " key:%012d", i);
    keys += k;
  }
  const auto [code, out] = run(cli(s) + "--raw mget" + keys);
  ASSERT_EQ(code, 0);
  std::istringstream lines(out);
  int found = 0;
  std::string first;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    if (first.empty()) first = line;
    EXPECT_EQ(line.size(), 1000u);
    EXPECT_TRUE(line == first) << "key " << found << " differs";
    ++found;
  }
  EXPECT_GT(found, 50);
  EXPECT_EQ(run(cli(s) + "del" + keys).second, std::to_string(found) + "\n");
  EXPECT_EQ(used_memory(s), 0u);
}

TEST(Resp, NutcrackerInFront) {
  ServerProcess s;
  TempDir dir;
  const std::uint16_t listen = free_port(), stats = free_port();
  const std::string conf = dir.file("nutcracker.yml");
  std::ofstream(conf) << "bufpool:\n  listen: 127.0.0.1:" << listen
                      << "\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n"
                         "  auto_eject_hosts: false\n  timeout: 5000\n  servers:\n   - 127.0.0.1:"
                      << s.resp_port << ":1\n";
  ChildProcess proxy(
      {"nutcracker", "-c", conf, "-s", std::to_string(stats), "-o", dir.file("nutcracker.log")},
      dir.file("nutcracker.out"));
  const std::string via = "redis-cli -p " + std::to_string(listen) + " ";
  for (int i = 0; i < 100 && run(via + "ping").second != "PONG\n"; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(run(via + "set nc:a alpha").second, "OK\n");
  EXPECT_EQ(run(via + "mset nc:b beta nc:c gamma").second, "OK\n");
  EXPECT_EQ(run(via + "mget nc:a nc:b nc:none nc:c").second, "alpha\nbeta\n\ngamma\n");
  EXPECT_EQ(run(cli(s) + "get nc:b").second, "beta\n");  // it reached the server itself
  const auto [code, out] =
      run(python + " " + redis_py_script + " " + std::to_string(listen) + " 777 --proxy 2>&1");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\nok\n"), std::string::npos) << out;
  EXPECT_EQ(run(via + "del nc:a nc:b nc:c").second, "3\n");
  EXPECT_TRUE(proxy.running()) << read_file(dir.file("nutcracker.log"));
  proxy.stop();  // nutcracker ends by the signal itself (exit status 143)
  EXPECT_EQ(used_memory(s), 0u);
}

TEST(Resp, PipelinedAndInlineCommandsAnswerInOrder) {
  ServerProcess s;
  Raw c(s.resp_port);
  std::string batch, want;
  for (int i = 0; i < 500; ++i) {
    const std::string k = "p" + std::to_string(i),
                      v = std::string(static_cast<std::size_t>(i), 'v');
    batch += command({"SET", k, v}) + command({"GET", k});
    want += "+OK\r\n" + bulk(v);
  }
  batch += "PING\r\nSET inline \"two words\\x21\"\r\nGET inline\r\n  \r\nECHO 'it''s'\r\n";
  want += "+PONG\r\n+OK\r\n" + bulk("two words!");
  want += "-ERR Protocol error: unbalanced quotes in request\r\n";
  c.send(batch);
  bool closed = false;
  const std::string got = c.read_to_end(closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(got == want) << "got " << got.size() << " bytes, want " << want.size();
}

TEST(Resp, QuitClosesAfterItsReply) {
  ServerProcess s;
  Raw c(s.resp_port);
  c.send(command({"SET", "q", "1"}) + command({"QUIT"}) + command({"GET", "q"}));
  bool closed = false;
  EXPECT_EQ(c.read_to_end(closed), "+OK\r\n+OK\r\n");
  EXPECT_TRUE(closed);
}

// Each malformed input gets Redis's protocol error and a close; nothing stays held.
TEST(Resp, MalformedInputGetsAnErrorAndAClose) {
  ServerProcess s({"--max-object-size", "1MiB"});
  const std::string big_line(70 * 1024, 'a');
  const std::pair<std::string, std::string> cases[] = {
      {"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
      {"*99999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
      {"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
      {"*1\r\n$12x\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
      {"*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"},
      {"*1\r\n$4\r\nPINGxx", "-ERR Protocol error: expected CRLF after a bulk string\r\n"},
      {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\nxx",
       "-ERR Protocol error: invalid bulk length: a value of 2000000 bytes is above "
       "max_object_size (1048576)\r\n"},
      {"*2\r\n$4\r\nECHO\r\n$2000000\r\n",
       "-ERR Protocol error: invalid bulk length: the arguments besides values are limited to "
       "1048576 bytes per command\r\n"},
      {big_line, "-ERR Protocol error: too big inline request\r\n"},
      {"*" + big_line, "-ERR Protocol error: too big mbulk count string\r\n"},
      {"*1\r\n$" + big_line, "-ERR Protocol error: too big bulk count string\r\n"},
      {"SET k \"unterminated\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
  };
  for (const auto& [input, reply] : cases) {
    Raw c(s.resp_port);
    c.send(input);
    bool closed = false;
    EXPECT_EQ(c.read_to_end(closed), reply) << "input: " << input.substr(0, 60);
    EXPECT_TRUE(closed) << input.substr(0, 60);
  }
  // A value cut off half way: the connection ends, its buffer goes back.
  {
    Raw c(s.resp_port);
    c.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000\r\n" + std::string(200000, 'z'));
    std::this_thread::sleep_for(100ms);
  }
  // Random bytes (fixed seed): replies or a close, never a crash.
  const std::uint32_t seed = 7;
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  for (int i = 0; i < 200; ++i) {
    std::string junk = random_bytes(1 + rng() % 3000, static_cast<std::uint32_t>(rng()));
    if (i % 2 == 0) junk = "*" + std::to_string(rng() % 5) + "\r\n" + junk;
    Raw c(s.resp_port);
    if (c.send(junk)) c.send(command({"PING"}));
  }
  EXPECT_EQ(run(cli(s) + "ping").second, "PONG\n");
  EXPECT_EQ(run(cli(s) + "dbsize").second.empty(), false);
  run(cli(s) + "del k");
  EXPECT_EQ(used_memory(s), 0u);
}

// A SET that finds the pool full waits alloc_timeout, then gets Redis's OOM error; the
// connection goes on, and the SET works once memory is free.
TEST(Resp, PoolFullAnswersOomAndTheConnectionGoesOn) {
  ServerProcess s({"--chunk-size", "1MiB", "--max-memory", "1MiB", "--max-object-size", "1MiB",
                   "--alloc-timeout", "200ms"});
  Raw c(s.resp_port);
  const std::string v(600 * 1024, 'a');
  c.send(command({"SET", "first", v}));
  EXPECT_EQ(c.read(5), "+OK\r\n");
  const auto t0 = std::chrono::steady_clock::now();
  c.send(command({"SET", "second", v}) + command({"PING"}));
  const std::string oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
  EXPECT_EQ(c.read(oom.size() + 7), oom + "+PONG\r\n");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
  c.send(command({"DEL", "first"}) + command({"SET", "second", v}) + command({"STRLEN", "second"}));
  EXPECT_EQ(c.read(4 + 5 + 9), ":1\r\n+OK\r\n:614400\r\n");
  c.send(command({"DEL", "second"}));
  EXPECT_EQ(c.read(4), ":1\r\n");
  EXPECT_EQ(used_memory(s), 0u);
}

}  // namespace
