// TLS over Debian's OpenSSL with Asio's ssl, for bufpool-server's listeners (tls.http, tls.rpc,
// tls.resp: the certificate chain and key come from files and are loaded again on SIGHUP;
// connections keep the context they shook hands with) and bufpool-bench's connections.
#pragma once

#include <bufpool/detail/transport.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace bufpool {

class TlsContext {
 public:
  using Context = boost::asio::ssl::context;
  /// Loads the chain and the key (TLS 1.2 and 1.3 only). Throws std::runtime_error naming the
  /// file and what OpenSSL said: a missing file, a PEM that is not a certificate, a key that
  /// does not match the certificate.
  TlsContext(std::string cert_file, std::string key_file);
  /// Loads the files again; on failure throws and keeps the current context.
  void reload();
  std::shared_ptr<Context> current() const;
  const std::string& cert_file() const noexcept { return cert_file_; }

  static std::shared_ptr<Context> load(const std::string& cert_file, const std::string& key_file);

 private:
  std::string cert_file_, key_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<Context> context_;
};

/// The server side of a TLS handshake on `socket`, within `timeout`: the connection's transport,
/// or the error (and `what` says it in words, for the log).
boost::asio::awaitable<std::unique_ptr<detail::TlsLayer>> tls_accept(
    boost::asio::ip::tcp::socket socket, std::shared_ptr<TlsContext::Context> context,
    std::chrono::milliseconds timeout, std::string& what);

/// A client context that trusts the certificates in `ca_file` (PEM), or, with an empty name, the
/// system's. Throws std::runtime_error naming the file.
std::shared_ptr<TlsContext::Context> tls_client_context(const std::string& ca_file);

/// The client side of a TLS handshake on a connected `socket`, checking that the server's
/// certificate is for `host`. Throws std::system_error.
boost::asio::awaitable<std::unique_ptr<detail::TlsLayer>> tls_connect(
    boost::asio::ip::tcp::socket socket, std::shared_ptr<TlsContext::Context> context,
    std::string host);

}  // namespace bufpool
