// Authentication of the real bufpool-server: tokens with read, write and admin roles, over HTTP
// (curl), RPC (bufpool::Client) and RESP (redis-cli and Debian's python3-redis); protected
// mode; and no token in a log or in --check-config's output.
#include "bufpool/client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fstream>
#include <stdexcept>

#include "async_support.hpp"
#include "server_process.hpp"

namespace bufpool {
namespace {

namespace asio = boost::asio;
using test::run;
using test::ServerProcess;

const std::string admin_token = "admin-0123456789abcdef";
const std::string write_token = "write-0123456789abcdef";
const std::string read_token = "read-0123456789abcdef0";
const std::string wrong_token = "wrong-0123456789abcdef";

// A tokens file with one token of each role, in a directory of its own.
struct TokensFile {
  test::TempDir dir;
  std::string path = dir.file("tokens");
  TokensFile() {
    std::ofstream f(path);
    f << "# role token\nadmin " << admin_token << "\nwrite:" << write_token << "\n\nread "
      << read_token << "\n";
  }
};

// The HTTP status of `method path` with `token` ("" sends no Authorization header).
int status(const ServerProcess& s, const std::string& method, const std::string& path,
           const std::string& token, const std::string& extra = "") {
  const std::string auth = token.empty() ? "" : " -H 'Authorization: Bearer " + token + "'";
  auto [rc, code] = run("curl -s -o /dev/null -w '%{http_code}' -X " + method + auth + " " + extra +
                        " http://127.0.0.1:" + std::to_string(s.http_port) + path);
  return code.empty() ? -1 : std::stoi(code);
}

TEST(Auth, HttpEveryEndpointByRole) {
  TokensFile tokens;
  ServerProcess server({"--tokens-file", tokens.path});
  // PUT a key as admin first, so that reads have something to find.
  ASSERT_EQ(status(server, "PUT", "/v1/buffers/k", admin_token, "--data-binary x"), 201);
  struct Case {
    std::string method, path, extra;
    int none, wrong, read, write, admin;
  };
  const std::vector<Case> cases = {
      {"GET", "/healthz", "", 200, 200, 200, 200, 200},
      {"GET", "/v1/buffers/k", "", 401, 401, 200, 200, 200},
      {"HEAD", "/v1/buffers/k", "-I", 401, 401, 200, 200, 200},
      {"PUT", "/v1/buffers/k", "--data-binary y", 401, 401, 403, 204, 204},
      {"POST", "/v1/echo", "--data-binary y", 401, 401, 403, 200, 200},
      {"GET", "/v1/stats", "", 401, 401, 403, 403, 200},
      {"GET", "/metrics", "", 401, 401, 403, 403, 200},
      {"GET", "/v1/connections", "", 401, 401, 403, 403, 200},
      {"GET", "/v1/nothing", "", 404, 404, 404, 404, 404},
      {"DELETE", "/v1/buffers/k", "", 401, 401, 403, 204, 404},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path);
    EXPECT_EQ(status(server, c.method, c.path, "", c.extra), c.none);
    EXPECT_EQ(status(server, c.method, c.path, wrong_token, c.extra), c.wrong);
    EXPECT_EQ(status(server, c.method, c.path, read_token, c.extra), c.read);
    EXPECT_EQ(status(server, c.method, c.path, write_token, c.extra), c.write);
    EXPECT_EQ(status(server, c.method, c.path, admin_token, c.extra), c.admin);
  }
  // The challenge of RFC 6750, and why when a token came.
  auto [rc, headers] =
      run("curl -s -D - -o /dev/null http://127.0.0.1:" + std::to_string(server.http_port) +
          "/v1/buffers/k -H " + "'Authorization: Bearer " + wrong_token + "'");
  EXPECT_NE(headers.find("WWW-Authenticate: Bearer realm=\"bufpool\", error=\"invalid_token\""),
            std::string::npos)
      << headers;
  EXPECT_EQ(server.stop(), 0);
  const std::string log = server.log();
  for (const std::string* t : {&admin_token, &write_token, &read_token, &wrong_token})
    EXPECT_EQ(log.find(*t), std::string::npos) << "a token in the log";
}

// auth.open_metrics opens /v1/stats and /metrics, and only them.
TEST(Auth, OpenMetrics) {
  TokensFile tokens;
  ServerProcess server({"--tokens-file", tokens.path, "--open-metrics", "true"});
  EXPECT_EQ(status(server, "GET", "/metrics", ""), 200);
  EXPECT_EQ(status(server, "GET", "/v1/stats", ""), 200);
  EXPECT_EQ(status(server, "GET", "/v1/connections", ""), 401);
  EXPECT_EQ(status(server, "GET", "/v1/buffers/k", ""), 401);
}

using test::run_async;

// The rpc::Status of a call that throws, or OK.
template <typename Awaitable>
asio::awaitable<rpc::Status> status_of(Awaitable a) {
  try {
    co_await std::move(a);
  } catch (const std::system_error& e) {
    if (e.code().category() == rpc::status_category())
      co_return static_cast<rpc::Status>(e.code().value());
    throw;
  }
  co_return rpc::Status::ok;
}

TEST(Auth, RpcAuthFrameAndRoles) {
  TokensFile tokens;
  // Tokens from the environment too: BUFPOOL_TOKENS adds to the file's.
  const std::string env_token = "envwrite-0123456789abcd";
  setenv("BUFPOOL_TOKENS", ("write:" + env_token).c_str(), 1);
  ServerProcess server({"--tokens-file", tokens.path});
  unsetenv("BUFPOOL_TOKENS");
  run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await Client::connect(ex, "127.0.0.1", server.rpc_port);
    const auto x = asio::buffer("x", 1);
    EXPECT_EQ(co_await status_of(c->ping()), rpc::Status::unauthenticated);
    EXPECT_EQ(co_await status_of(c->put("k", x)), rpc::Status::unauthenticated)
        << "refused before its payload; the connection stays";
    EXPECT_EQ(co_await status_of(c->auth(wrong_token)), rpc::Status::unauthenticated);
    EXPECT_EQ(co_await status_of(c->get("k")), rpc::Status::unauthenticated);
    EXPECT_EQ(co_await c->auth(read_token), "read");
    co_await c->ping();
    EXPECT_FALSE(co_await c->get("k"));
    EXPECT_EQ(co_await status_of(c->put("k", x)), rpc::Status::forbidden);
    EXPECT_EQ(co_await status_of(c->erase("k")), rpc::Status::forbidden);
    EXPECT_EQ(co_await status_of(c->echo(x)), rpc::Status::forbidden);
    EXPECT_EQ(co_await status_of(c->auth(wrong_token)), rpc::Status::unauthenticated);
    EXPECT_FALSE(co_await c->get("k")) << "a failed AUTH keeps the role the connection had";
    EXPECT_EQ(co_await c->auth(env_token), "write");
    EXPECT_TRUE(co_await c->put("k", x));
    EXPECT_EQ(co_await status_of(c->stats()), rpc::Status::forbidden);
    EXPECT_EQ(co_await c->auth(admin_token), "admin");
    const std::string stats = co_await c->stats();
    EXPECT_NE(stats.find("\"rpc\""), std::string::npos);
    EXPECT_TRUE(co_await c->erase("k"));
    c->close();
  });
}

std::string cli(const ServerProcess& s, const std::string& args) {
  return run("redis-cli --no-auth-warning -p " + std::to_string(s.resp_port) + " " + args + " 2>&1")
      .second;
}

TEST(Auth, RespAuthWithRedisCliAndPython) {
  TokensFile tokens;
  ServerProcess server({"--tokens-file", tokens.path});
  EXPECT_EQ(cli(server, "PING"), "NOAUTH Authentication required.\n\n");
  EXPECT_EQ(cli(server, "SET k v"), "NOAUTH Authentication required.\n\n");
  EXPECT_EQ(cli(server, "NOSUCH"), "NOAUTH Authentication required.\n\n") << "as in Redis";
  EXPECT_NE(cli(server, "-a " + wrong_token + " PING").find("WRONGPASS"), std::string::npos);
  EXPECT_EQ(cli(server, "-a " + read_token + " PING"), "PONG\n");
  EXPECT_EQ(cli(server, "-a " + read_token + " SET k v"),
            "NOPERM User read has no permissions to run the 'set' command\n\n");
  EXPECT_EQ(cli(server, "--user default -a " + write_token + " SET k v"), "OK\n");
  EXPECT_EQ(cli(server, "-a " + read_token + " GET k"), "v\n");
  EXPECT_NE(cli(server, "-a " + write_token + " INFO").find("NOPERM"), std::string::npos);
  EXPECT_NE(cli(server, "-a " + admin_token + " INFO").find("redis_version:"), std::string::npos);
  EXPECT_EQ(cli(server, "HELLO 2 AUTH default " + wrong_token).find("WRONGPASS"), 0u);
  EXPECT_NE(cli(server, "HELLO 2 AUTH default " + read_token).find("proto"), std::string::npos);
  // Every command of the table, without a token and with a read, a write and an admin token.
  struct Cmd {
    const char* line;
    char none, read, write, admin;  // 'N' NOAUTH, 'P' NOPERM, 'y' runs
  };
  const std::vector<Cmd> all = {
      {"GET k", 'N', 'y', 'y', 'y'},
      {"SET k v", 'N', 'P', 'y', 'y'},
      {"MGET k", 'N', 'y', 'y', 'y'},
      {"MSET k v", 'N', 'P', 'y', 'y'},
      {"DEL nothing", 'N', 'P', 'y', 'y'},
      {"EXISTS k", 'N', 'y', 'y', 'y'},
      {"STRLEN k", 'N', 'y', 'y', 'y'},
      {"GETRANGE k 0 0", 'N', 'y', 'y', 'y'},
      {"PING", 'N', 'y', 'y', 'y'},
      {"ECHO x", 'N', 'y', 'y', 'y'},
      {"DBSIZE", 'N', 'y', 'y', 'y'},
      {"INFO", 'N', 'P', 'P', 'y'},
      {"COMMAND COUNT", 'N', 'y', 'y', 'y'},
      {"CLIENT GETNAME", 'N', 'y', 'y', 'y'},
      {"CONFIG GET maxmemory", 'N', 'P', 'P', 'y'},
      {"SELECT 0", 'N', 'y', 'y', 'y'},
      {"QUIT", 'y', 'y', 'y', 'y'},
  };
  for (const Cmd& c : all) {
    for (const auto& [token, want] :
         {std::pair{std::string(), c.none}, std::pair{read_token, c.read},
          std::pair{write_token, c.write}, std::pair{admin_token, c.admin}}) {
      const std::string got = cli(server, (token.empty() ? "" : "-a " + token + " ") + c.line);
      SCOPED_TRACE(std::string(c.line) + " with " + (token.empty() ? "no token" : token));
      if (want == 'N') {
        EXPECT_EQ(got.rfind("NOAUTH", 0), 0u) << got;
      } else if (want == 'P') {
        EXPECT_EQ(got.rfind("NOPERM", 0), 0u) << got;
      } else {
        EXPECT_TRUE(got.rfind("NOAUTH", 0) != 0 && got.rfind("NOPERM", 0) != 0) << got;
      }
    }
  }
  // An unauthenticated client's value is not put in pool memory: above 1 MiB of arguments the
  // command is a protocol error and the connection closes.
  const std::string big = server.dir().file("big");
  run("head -c 2000000 /dev/zero | tr '\\0' 'a' > " + big);
  EXPECT_NE(cli(server, "-x SET big < " + big).find("Protocol error"), std::string::npos);
  // python3-redis with a password, as an application would use it.
  auto [rc, out] = run("/usr/bin/python3 -c \"import redis; r = redis.Redis(port=" +
                       std::to_string(server.resp_port) + ", password='" + write_token +
                       "'); r.set('p', b'\\x00\\x01'); print(r.get('p'))\" 2>&1");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "b'\\x00\\x01'\n");
  auto [rc2, out2] = run("/usr/bin/python3 -c \"import redis; r = redis.Redis(port=" +
                         std::to_string(server.resp_port) + ", password='" + wrong_token +
                         "');\ntry:\n  r.ping()\nexcept redis.ResponseError as e:\n  "
                         "print('refused' if 'WRONGPASS' in str(e) else e)\" 2>&1");
  EXPECT_EQ(out2, "refused\n");
}

// Like Redis's protected mode: beyond loopback without tokens the server refuses to start,
// unless --insecure; tokens are never printed by --check-config.
TEST(Auth, ProtectedModeAndCheckConfig) {
  auto [rc, out] = run(std::string(BUFPOOL_SERVER_BIN) +
                       " --http-listen 0.0.0.0:0 --rpc-listen '' --resp-listen '' 2>&1");
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("refusing to listen on 0.0.0.0:0 without authentication"), std::string::npos)
      << out;
  EXPECT_NE(out.find("--insecure"), std::string::npos) << out;
  test::TempDir dir;
  const std::string ports = dir.file("ports.json");
  test::ChildProcess insecure({BUFPOOL_SERVER_BIN, "--http-listen", "0.0.0.0:0", "--rpc-listen", "",
                               "--resp-listen", "", "--insecure", "--port-file", ports},
                              dir.file("log"));
  for (int i = 0; i < 500 && !std::filesystem::exists(ports); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(std::filesystem::exists(ports)) << insecure.log();
  EXPECT_EQ(insecure.stop(), 0);
  TokensFile tokens;
  auto [rc3, shown] = run(std::string(BUFPOOL_SERVER_BIN) + " --check-config --tokens-file " +
                          tokens.path + " --http-listen 0.0.0.0:8080 2>&1");
  EXPECT_EQ(rc3, 0) << shown;
  EXPECT_NE(shown.find("auth.tokens = 3 tokens (1 admin, 1 write, 1 read)"), std::string::npos)
      << shown;
  for (const std::string* t : {&admin_token, &write_token, &read_token})
    EXPECT_EQ(shown.find(*t), std::string::npos) << "a token in --check-config";
  // A bad tokens file names the entry, not the token.
  std::ofstream(dir.file("bad")) << "admin " << admin_token << "\nroot short\n";
  auto [rc4, bad] = run(std::string(BUFPOOL_SERVER_BIN) + " --check-config --tokens-file " +
                        dir.file("bad") + " 2>&1");
  EXPECT_EQ(rc4, 2);
  EXPECT_NE(bad.find("entry 2: unknown role 'root'"), std::string::npos) << bad;
  EXPECT_EQ(bad.find(admin_token), std::string::npos);
  EXPECT_EQ(bad.find("short"), std::string::npos) << bad;
}

}  // namespace
}  // namespace bufpool
