#include "bufpool/app/tls.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

namespace bufpool {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// OpenSSL's reason for the last failure, or the error's message.
std::string reason(const boost::system::system_error& e) {
  std::string text = e.code().message();
  if (const char* r = ERR_reason_error_string(static_cast<unsigned long>(e.code().value())))
    text = r;
  return text;
}

// The TLS stream of one connection; it owns the TCP socket, and keeps its context alive.
class OpenSslLayer final : public detail::TlsLayer {
 public:
  OpenSslLayer(tcp::socket socket, std::shared_ptr<ssl::context> context)
      : context_(std::move(context)), stream_(std::move(socket), *context_) {}
  tcp::socket& socket() noexcept override { return stream_.next_layer(); }
  void async_read_some(asio::mutable_buffer b, Handler h) override {
    stream_.async_read_some(b, std::move(h));
  }
  void async_write_some(asio::const_buffer b, Handler h) override {
    stream_.async_write_some(b, std::move(h));
  }
  ssl::stream<tcp::socket>& stream() noexcept { return stream_; }

 private:
  std::shared_ptr<ssl::context> context_;
  ssl::stream<tcp::socket> stream_;
};

}  // namespace

std::shared_ptr<TlsContext::Context> TlsContext::load(const std::string& cert_file,
                                                      const std::string& key_file) {
  auto c = std::make_shared<Context>(Context::tls_server);
  c->set_options(Context::default_workarounds | Context::no_sslv2 | Context::no_sslv3 |
                 Context::no_tlsv1 | Context::no_tlsv1_1 | Context::single_dh_use);
  try {
    c->use_certificate_chain_file(cert_file);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(fmt::format("tls.cert_file '{}': cannot load a certificate chain: {}",
                                         cert_file, reason(e)));
  }
  try {
    c->use_private_key_file(key_file, Context::pem);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(fmt::format(
        "tls.key_file '{}': cannot load a private key (or it does not match tls.cert_file): {}",
        key_file, reason(e)));
  }
  return c;
}

TlsContext::TlsContext(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      context_(load(cert_file_, key_file_)) {}

void TlsContext::reload() {
  auto fresh = load(cert_file_, key_file_);
  std::lock_guard lock(mutex_);
  context_ = std::move(fresh);
}

std::shared_ptr<TlsContext::Context> TlsContext::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

asio::awaitable<std::unique_ptr<detail::TlsLayer>> tls_accept(tcp::socket socket,
                                                              std::shared_ptr<ssl::context> context,
                                                              std::chrono::milliseconds timeout,
                                                              std::string& what) {
  auto layer = std::make_unique<OpenSslLayer>(std::move(socket), std::move(context));
  // A client that never finishes its handshake is cut off like a late header. The timer and
  // this coroutine run on the same executor: once `done` is set the timer touches nothing.
  auto done = std::make_shared<bool>(false);
  asio::steady_timer deadline(layer->socket().get_executor(), timeout);
  deadline.async_wait([done, s = &layer->socket()](const boost::system::error_code& ec) {
    if (!ec && !*done) {
      boost::system::error_code ignored;
      s->close(ignored);
    }
  });
  auto [ec] = co_await layer->stream().async_handshake(ssl::stream_base::server,
                                                       asio::as_tuple(asio::use_awaitable));
  *done = true;
  deadline.cancel();
  if (ec) {
    what = ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor
               ? fmt::format("no handshake within {} ms", timeout.count())
               : ec.message();
    co_return nullptr;
  }
  co_return std::move(layer);
}

std::shared_ptr<TlsContext::Context> tls_client_context(const std::string& ca_file) {
  auto c = std::make_shared<ssl::context>(ssl::context::tls_client);
  c->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                 ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  c->set_verify_mode(ssl::verify_peer);
  try {
    if (ca_file.empty()) {
      c->set_default_verify_paths();
    } else {
      c->load_verify_file(ca_file);
    }
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(
        fmt::format("CA file '{}': cannot load certificates: {}", ca_file, reason(e)));
  }
  return c;
}

asio::awaitable<std::unique_ptr<detail::TlsLayer>> tls_connect(
    tcp::socket socket, std::shared_ptr<ssl::context> context, std::string host) {
  auto layer = std::make_unique<OpenSslLayer>(std::move(socket), std::move(context));
  SSL* native = layer->stream().native_handle();
  // SNI, and the name (or address) that the certificate must carry.
  SSL_set_tlsext_host_name(native, host.c_str());
  layer->stream().set_verify_callback(ssl::host_name_verification(host));
  co_await layer->stream().async_handshake(ssl::stream_base::client, asio::use_awaitable);
  co_return std::move(layer);
}

}  // namespace bufpool
