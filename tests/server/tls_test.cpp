// TLS on the real bufpool-server: round trips over HTTP (curl), RESP (redis-cli --tls) and RPC
// (Python's ssl module), certificates that do not load, a reload on SIGHUP, and a handshake that
// never comes. Certificates are made here with the openssl command, for 127.0.0.1.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "server_process.hpp"

namespace bufpool {
namespace {

using test::run;
using test::ServerProcess;

// A self-signed certificate for 127.0.0.1, as `name`.pem and `name`.key in `dir`.
void make_certificate(const test::TempDir& dir, const std::string& name) {
  auto [rc, out] =
      run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
          "-addext subjectAltName=IP:127.0.0.1 -keyout " +
          dir.file(name + ".key") + " -out " + dir.file(name + ".pem") + " 2>&1");
  ASSERT_EQ(rc, 0) << out;
}

std::vector<std::string> tls_flags(const test::TempDir& dir, const std::string& name) {
  return {"--tls-cert-file", dir.file(name + ".pem"),
          "--tls-key-file",  dir.file(name + ".key"),
          "--tls-http",      "true",
          "--tls-rpc",       "true",
          "--tls-resp",      "true"};
}

std::string https(const ServerProcess& s, const std::string& ca, const std::string& args) {
  return run("curl -sS --cacert " + ca + " " + args +
             " https://127.0.0.1:" + std::to_string(s.http_port) + "/healthz 2>&1")
      .second;
}

TEST(Tls, RoundTripsOverEveryProtocol) {
  test::TempDir certs;
  make_certificate(certs, "a");
  const std::string ca = certs.file("a.pem");
  ServerProcess server(tls_flags(certs, "a"));
  const std::string blob = server.dir().file("blob");
  run("head -c 3000000 /dev/urandom > " + blob);
  const std::string base = "https://127.0.0.1:" + std::to_string(server.http_port);
  auto [rc, code] = run("curl -sS --cacert " + ca + " -o /dev/null -w '%{http_code}' -X PUT " +
                        "--data-binary @" + blob + " " + base + "/v1/buffers/b");
  EXPECT_EQ(code, "201");
  EXPECT_EQ(run("curl -sS --cacert " + ca + " " + base + "/v1/buffers/b | cmp - " + blob).first, 0)
      << "the 3 MB value came back whole over HTTPS";
  const std::string cli =
      "redis-cli --tls --cacert " + ca + " -p " + std::to_string(server.resp_port) + " ";
  EXPECT_EQ(run(cli + "SET k hello").second, "OK\n");
  EXPECT_EQ(run(cli + "GET k").second, "hello\n");
  EXPECT_EQ(run(cli + "-x SET big < " + blob).second, "OK\n");
  EXPECT_EQ(run(cli + "GET big | head -c 3000000 | cmp - " + blob).first, 0);
  auto [prc, pout] = run("/usr/bin/python3 " BUFPOOL_SOURCE_DIR "/tests/server/rpc_roundtrip.py " +
                         std::to_string(server.rpc_port) + " 7 --cafile " + ca + " 2>&1");
  EXPECT_EQ(prc, 0) << pout;
  EXPECT_EQ(pout, "ok\n");
  // bufpool-bench over TLS (bufpool::Client with OpenSSL's layer): every GET checked.
  auto [brc, bout] = run(std::string(BUFPOOL_BENCH_BIN) + " --target rpc://127.0.0.1:" +
                         std::to_string(server.rpc_port) + " --tls --cacert " + ca +
                         " --requests 3000 -c 4 --size 1KiB..64KiB --mix get=3,put=1 --verify"
                         " --quiet 2>&1");
  EXPECT_EQ(brc, 0) << bout;
  EXPECT_NE(bout.find(" 0 corrupt"), std::string::npos) << bout;
  // Without the CA the server's certificate is refused, in words.
  auto [vrc, vout] = run(std::string(BUFPOOL_BENCH_BIN) + " --target rpc://127.0.0.1:" +
                         std::to_string(server.rpc_port) + " --tls --requests 1 2>&1");
  EXPECT_NE(vrc, 0);
  EXPECT_NE(vout.find("certificate verify failed"), std::string::npos) << vout;
  // Plain HTTP to the TLS port is no request: the handshake fails, and is counted.
  EXPECT_NE(
      run("curl -sS http://127.0.0.1:" + std::to_string(server.http_port) + "/healthz 2>&1").first,
      0);
  const std::string stats = run("curl -sS --cacert " + ca + " " + base + "/v1/stats").second;
  EXPECT_NE(stats.find("\"tls_handshake_failures\": 2"), std::string::npos) << stats;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// A certificate or key that does not load stops the start with a message naming the file, and
// --check-config says the same.
TEST(Tls, ABadCertificateIsRefusedWithAClearError) {
  test::TempDir dir;
  make_certificate(dir, "a");
  make_certificate(dir, "b");
  std::ofstream(dir.file("junk.pem")) << "not a certificate\n";
  const std::string bin = BUFPOOL_SERVER_BIN;
  const std::string listen = " --http-listen 127.0.0.1:0 --rpc-listen '' --resp-listen '' ";
  auto [rc, out] = run(bin + listen + "--tls-http true --tls-cert-file " + dir.file("junk.pem") +
                       " --tls-key-file " + dir.file("a.key") + " 2>&1");
  EXPECT_EQ(rc, 1);
  EXPECT_NE(
      out.find("tls.cert_file '" + dir.file("junk.pem") + "': cannot load a certificate chain"),
      std::string::npos)
      << out;
  auto [rc2, out2] = run(bin + listen + "--check-config --tls-http true --tls-cert-file " +
                         dir.file("a.pem") + " --tls-key-file " + dir.file("b.key") + " 2>&1");
  EXPECT_EQ(rc2, 2);
  EXPECT_NE(out2.find("tls.key_file '" + dir.file("b.key") + "'"), std::string::npos) << out2;
  EXPECT_NE(out2.find("does not match"), std::string::npos) << out2;
  auto [rc3, out3] = run(bin + listen + "--check-config --tls-http true 2>&1");
  EXPECT_EQ(rc3, 2);
  EXPECT_NE(out3.find("needs tls.cert_file and tls.key_file"), std::string::npos) << out3;
  auto [rc4, out4] =
      run(bin + listen + "--check-config --tls-http true --tls-cert-file " +
          dir.file("missing.pem") + " --tls-key-file " + dir.file("a.key") + " 2>&1");
  EXPECT_EQ(rc4, 2);
  EXPECT_NE(out4.find("missing.pem"), std::string::npos) << out4;
}

// SIGHUP loads the files again: new connections get the new certificate. A file that does not
// load on SIGHUP is logged, and the old certificate stays.
TEST(Tls, SighupReloadsTheCertificate) {
  test::TempDir certs;
  make_certificate(certs, "a");
  make_certificate(certs, "b");
  make_certificate(certs, "live");
  std::filesystem::copy_file(certs.file("a.pem"), certs.file("live.pem"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.file("a.key"), certs.file("live.key"),
                             std::filesystem::copy_options::overwrite_existing);
  ServerProcess server(tls_flags(certs, "live"));
  EXPECT_EQ(https(server, certs.file("a.pem"), ""), "ok\n");
  EXPECT_NE(https(server, certs.file("b.pem"), ""), "ok\n");
  std::filesystem::copy_file(certs.file("b.pem"), certs.file("live.pem"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.file("b.key"), certs.file("live.key"),
                             std::filesystem::copy_options::overwrite_existing);
  server.signal(SIGHUP);
  std::string now;
  for (int i = 0; i < 50 && (now = https(server, certs.file("b.pem"), "")) != "ok\n"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(now, "ok\n") << "the new certificate after SIGHUP";
  EXPECT_NE(https(server, certs.file("a.pem"), ""), "ok\n");
  std::ofstream(certs.file("live.pem")) << "broken\n";
  server.signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(https(server, certs.file("b.pem"), ""), "ok\n") << "a broken file keeps the old one";
  EXPECT_NE(server.log().find("SIGHUP: TLS reload failed, the previous certificate stays"),
            std::string::npos)
      << server.log();
}

// --health-check (the container's HEALTHCHECK) asks over TLS when tls.http is on.
TEST(Tls, HealthCheckSpeaksTlsToo) {
  test::TempDir certs;
  make_certificate(certs, "a");
  ServerProcess server(tls_flags(certs, "a"));
  const std::string check = std::string(BUFPOOL_SERVER_BIN) +
                            " --health-check --rpc-listen '' --resp-listen '' --tls-http true "
                            "--tls-cert-file " +
                            certs.file("a.pem") + " --tls-key-file " + certs.file("a.key") +
                            " --http-listen 127.0.0.1:" + std::to_string(server.http_port) +
                            " 2>&1";
  auto [rc, out] = run(check);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(server.stop(), 0);
  auto [rc2, out2] = run(check);
  EXPECT_EQ(rc2, 1) << "nothing listens any more";
  EXPECT_NE(out2.find("health check:"), std::string::npos) << out2;
}

// A client that connects to a TLS port and never says hello is cut off after header_timeout.
TEST(Tls, AHandshakeThatNeverComesIsCutOff) {
  test::TempDir certs;
  make_certificate(certs, "a");
  auto flags = tls_flags(certs, "a");
  flags.insert(flags.end(), {"--header-timeout", "300ms"});
  ServerProcess server(flags);
  const auto t0 = std::chrono::steady_clock::now();
  auto [rc, out] =
      run("timeout 5 python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', " +
          std::to_string(server.resp_port) + ")); print(len(s.recv(10)))\"");
  EXPECT_EQ(out, "0\n") << "closed by the server";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

}  // namespace
}  // namespace bufpool
