// A connection's byte stream: a TCP socket, or TLS over one. Part of the connection toolkit: the
// reader, the write queue and the HTTP session take it where they took a tcp::socket, with the
// same members. Plain TCP goes straight to the socket (one well-predicted branch per call: the
// direct non-blocking reads and writes stay). TLS goes through a TlsLayer that the program
// supplies (bufpool-server and bufpool-bench pass one over OpenSSL), so that the library itself
// does not depend on OpenSSL.
#pragma once

#include <algorithm>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace bufpool::detail {

/// TLS over a TCP socket that it owns, handshake done. One record's worth of I/O per call.
class TlsLayer {
 public:
  using tcp = boost::asio::ip::tcp;
  using Handler = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
  virtual ~TlsLayer() = default;
  virtual tcp::socket& socket() noexcept = 0;
  /// Decrypted bytes into `b` (at least one, or an error), as ssl::stream::async_read_some.
  virtual void async_read_some(boost::asio::mutable_buffer b, Handler h) = 0;
  /// Bytes of `b` encrypted and sent (at least one, or an error).
  virtual void async_write_some(boost::asio::const_buffer b, Handler h) = 0;
};

class Transport {
 public:
  using tcp = boost::asio::ip::tcp;
  using executor_type = tcp::socket::executor_type;
  using lowest_layer_type = tcp::socket::lowest_layer_type;
  using error_code = boost::system::error_code;

  Transport(tcp::socket socket) : socket_(std::move(socket)) {}  // NOLINT: implicit, on purpose
  explicit Transport(std::unique_ptr<TlsLayer> tls)
      : socket_(tls->socket().get_executor()), tls_(std::move(tls)) {}
  Transport(Transport&&) noexcept = default;
  Transport& operator=(Transport&&) noexcept = default;

  bool tls() const noexcept { return tls_ != nullptr; }
  tcp::socket& lowest_layer() noexcept { return tls_ ? tls_->socket() : socket_; }
  const tcp::socket& lowest_layer() const noexcept { return tls_ ? tls_->socket() : socket_; }
  executor_type get_executor() noexcept { return lowest_layer().get_executor(); }
  bool is_open() const noexcept { return lowest_layer().is_open(); }
  tcp::endpoint remote_endpoint(error_code& ec) const { return lowest_layer().remote_endpoint(ec); }
  template <typename Option>
  void set_option(const Option& o, error_code& ec) {
    lowest_layer().set_option(o, ec);
  }
  void non_blocking(bool on, error_code& ec) { lowest_layer().non_blocking(on, ec); }
  void shutdown(tcp::socket::shutdown_type what, error_code& ec) {
    lowest_layer().shutdown(what, ec);
  }
  void close(error_code& ec) { lowest_layer().close(ec); }
  void cancel(error_code& ec) { lowest_layer().cancel(ec); }

  /// The direct read (the socket is non-blocking). Over TLS: the bytes that a readiness wait
  /// decrypted ahead, else would_block (a TLS record is never read without waiting: a direct
  /// read could leave the engine half way through one).
  template <typename MutableBuffer>
  std::size_t read_some(const MutableBuffer& b, error_code& ec) {
    if (!tls_) return socket_.read_some(b, ec);
    if (ahead_begin_ == ahead_end_) {
      ec = boost::asio::error::would_block;
      return 0;
    }
    ec = {};
    return take_ahead(first_of(b));
  }
  /// The direct write. Over TLS: would_block, always (a non-blocking write that the socket took
  /// in part would lose the rest of a record), so the writer coroutine writes instead.
  template <typename ConstBuffers>
  std::size_t write_some(const ConstBuffers& b, error_code& ec) {
    if (!tls_) return socket_.write_some(b, ec);
    ec = boost::asio::error::would_block;
    return 0;
  }

  /// Readiness for read_some. Over TLS it reads (and decrypts) what comes, ahead, for read_some.
  template <typename Token>
  auto async_wait(tcp::socket::wait_type w, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code)>(
        [this](auto handler, tcp::socket::wait_type what) {
          if (!tls_) return socket_.async_wait(what, std::move(handler));
          if (ahead_begin_ < ahead_end_) {  // bytes are waiting already
            auto ex = boost::asio::get_associated_executor(handler, get_executor());
            return boost::asio::post(ex, [h = std::move(handler)]() mutable { h(error_code{}); });
          }
          ahead_.resize(ahead_capacity);
          ahead_begin_ = ahead_end_ = 0;
          // The completion keeps the waiter's executor (the connection's).
          auto ex = boost::asio::get_associated_executor(handler, get_executor());
          tls_->async_read_some(
              boost::asio::buffer(ahead_.data(), ahead_.size()),
              boost::asio::bind_executor(
                  ex, [this, h = std::move(handler)](error_code ec, std::size_t n) mutable {
                    ahead_end_ = n;
                    h(n > 0 ? error_code{} : ec);
                  }));
        },
        token, w);
  }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (!tls_) return socket_.async_read_some(b, std::move(handler));
          const boost::asio::mutable_buffer first = first_of(b);
          if (ahead_begin_ < ahead_end_ || first.size() == 0) {  // what was read ahead first
            const std::size_t n = take_ahead(first);
            auto ex = boost::asio::get_associated_executor(handler, get_executor());
            return boost::asio::post(ex,
                                     [h = std::move(handler), n]() mutable { h(error_code{}, n); });
          }
          tls_->async_read_some(first, std::move(handler));
        },
        token, buffers);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (!tls_) return socket_.async_write_some(b, std::move(handler));
          tls_->async_write_some(record_of(b), std::move(handler));
        },
        token, buffers);
  }

 private:
  static constexpr std::size_t ahead_capacity = 17 * 1024;  // a TLS record's plaintext and more
  static constexpr std::size_t record_bytes = 16 * 1024;    // a TLS record's plaintext at most

  template <typename Buffers>
  static auto first_of(const Buffers& buffers) {
    auto it = boost::asio::buffer_sequence_begin(buffers);
    const auto end = boost::asio::buffer_sequence_end(buffers);
    for (; it != end; ++it)
      if (boost::asio::buffer_size(*it) > 0) return *it;
    using Buffer = std::decay_t<decltype(*it)>;
    return Buffer();
  }
  // What one TLS write takes: a buffer of a record's size or more as it is; smaller ones
  // gathered into one record (the engine copies the bytes into its record anyway, so this costs
  // one small copy, where a record and a system call per buffer cost far more: a pipelined batch
  // of 16 replies of a header and a 4 KiB value is 5 records, not 32). The bytes reported
  // written are those of the buffers taken, in order, as a gathered write's.
  template <typename Buffers>
  boost::asio::const_buffer record_of(const Buffers& buffers) {
    const boost::asio::const_buffer first = first_of(buffers);
    if (first.size() >= record_bytes) return first;
    if (gather_.size() < record_bytes) gather_.resize(record_bytes);
    std::size_t n = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers),
              end = boost::asio::buffer_sequence_end(buffers);
         it != end && n < record_bytes; ++it) {
      const boost::asio::const_buffer b(*it);
      const std::size_t take = std::min(b.size(), record_bytes - n);
      if (take > 0) std::memcpy(gather_.data() + n, b.data(), take);
      n += take;
    }
    return boost::asio::const_buffer(gather_.data(), n);
  }

  template <typename MutableBuffer>
  std::size_t take_ahead(const MutableBuffer& b) {
    const std::size_t n = std::min(b.size(), ahead_end_ - ahead_begin_);
    if (n > 0) std::memcpy(b.data(), ahead_.data() + ahead_begin_, n);
    ahead_begin_ += n;
    return n;
  }

  tcp::socket socket_;  // plain TCP; over TLS the layer owns the socket, and this one is unused
  std::unique_ptr<TlsLayer> tls_;
  std::vector<std::byte> ahead_;   // TLS: bytes decrypted by async_wait, [ahead_begin_, ahead_end_)
  std::vector<std::byte> gather_;  // TLS: small buffers gathered into one record (record_of)
  std::size_t ahead_begin_ = 0, ahead_end_ = 0;
};

}  // namespace bufpool::detail
