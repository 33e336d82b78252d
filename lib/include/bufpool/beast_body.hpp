// PoolBody: a Beast Body whose bytes live in a pool block, and async_read_body(), which waits for
// pool memory after a header and then reads the body straight from the socket into it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/optional/optional.hpp>

#include "bufpool/buddy_pool.hpp"
#include "bufpool/shared_buffer.hpp"

namespace bufpool {

/// A Beast Body (`http::response<PoolBody>`, `http::request_parser<PoolBody>`) over pool memory.
///
/// Serving: put a SharedBuffer (or a Buffer) in the value; the writer hands Beast one
/// const_buffer over the block, with no copy, and the message keeps the block alive until the
/// write completes.
///
/// Receiving: the reader puts the body in `value.buffer`. Either attach a Buffer of at least the
/// body's size beforehand (async_read_body does, after waiting for memory), or set `value.pool` and
/// the reader takes a block at once with try_allocate() (failing with out_of_memory rather than
/// waiting). Bytes that the parser hands over from its own buffer are copied once; bytes that were
/// read straight into the block (async_read_body) are recognised by their address and not copied.
/// A body without a Content-Length fills an attached Buffer up to its size and is then shrunk to
/// what arrived; without one it fails with errc::unknown_length.
struct PoolBody {
  struct value_type {
    Buffer buffer;              ///< the received body, or a body to serve
    SharedBuffer shared;        ///< a body to serve (preferred over `buffer` when both are set)
    BuddyPool* pool = nullptr;  ///< where the reader takes a block when no buffer is attached

    /// The body's size: of `shared` if set, else of `buffer`.
    std::size_t size() const noexcept { return shared ? shared.size() : buffer.size(); }
    /// The received body as a SharedBuffer, for zero-copy serving; `buffer` becomes empty.
    SharedBuffer share() noexcept { return shared ? shared : SharedBuffer(std::move(buffer)); }
  };

  /// The payload size, for Content-Length.
  static std::uint64_t size(const value_type& v) noexcept { return v.size(); }

  class writer {
   public:
    using const_buffers_type = boost::asio::const_buffer;

    template <bool isRequest, typename Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& v) : body_(v) {}

    void init(boost::beast::error_code& ec) { ec = {}; }
    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      ec = {};
      if (body_.shared) return {{boost::asio::const_buffer(body_.shared), false}};
      return {{boost::asio::const_buffer(body_.buffer.data(), body_.buffer.size()), false}};
    }

   private:
    const value_type& body_;
  };

  class reader {
   public:
    template <bool isRequest, typename Fields>
    reader(boost::beast::http::header<isRequest, Fields>&, value_type& v) : body_(v) {}

    void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
      ec = {};
      received_ = 0;
      if (body_.buffer) {
        if (length && *length > body_.buffer.size())
          ec = boost::beast::http::error::buffer_overflow;
        return;
      }
      if (!length) {
        ec = make_error_code(errc::unknown_length);
      } else if (*length > 0) {
        if (!body_.pool) {
          ec = make_error_code(errc::invalid_argument);
          return;
        }
        std::error_code pec;
        body_.buffer = body_.pool->try_allocate(static_cast<std::size_t>(*length), pec);
        if (pec) ec = pec;
      }
    }

    template <typename ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      const std::size_t n = boost::beast::buffer_bytes(buffers);
      if (n > body_.buffer.size() - received_) {
        ec = boost::beast::http::error::buffer_overflow;
        return 0;
      }
      ec = {};
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        const boost::asio::const_buffer b(*it);
        std::byte* dst = body_.buffer.data() + received_;
        if (b.data() != dst) std::memcpy(dst, b.data(), b.size());  // else: read in place
        received_ += b.size();
      }
      return n;
    }

    void finish(boost::beast::error_code& ec) {
      ec = {};
      body_.buffer.shrink(received_);  // a body of unknown length gives back the rest
    }

   private:
    value_type& body_;
    std::size_t received_ = 0;
  };
};

namespace detail {

template <typename Stream, typename DynamicBuffer, typename Parser>
struct ReadBodyOp {
  Stream& stream;
  DynamicBuffer& input;
  Parser& parser;
  BuddyPool& pool;
  std::chrono::steady_clock::duration timeout;
  std::size_t length = 0;
  std::size_t have = 0;  // body bytes given to the parser
  enum class State { start, waiting, reading, done } state = State::start;
  boost::beast::error_code result{};

  template <typename Self>
  void operator()(Self& self) {
    if (state == State::done) return self.complete(result, result ? 0 : length);
    namespace http = boost::beast::http;
    if (!parser.is_header_done()) return finish(self, make_error_code(errc::invalid_argument));
    if (parser.is_done()) return finish(self, {});
    const auto content_length = parser.content_length();
    if (!content_length) return finish(self, make_error_code(errc::unknown_length));
    length = static_cast<std::size_t>(*content_length);
    if (parser.get().body().buffer) return fill(self, true);
    if (Buffer b = pool.allocate_if_free(length)) {
      parser.get().body().buffer = std::move(b);
      return fill(self, true);
    }
    state = State::waiting;
    pool.async_allocate_for(length, timeout, std::move(self));
  }

  // The wait for memory ended.
  template <typename Self>
  void operator()(Self& self, boost::system::error_code ec, Buffer b) {
    if (ec) return self.complete(ec, 0);
    parser.get().body().buffer = std::move(b);
    fill(self, false);
  }

  // A read straight into the block ended.
  template <typename Self>
  void operator()(Self& self, boost::system::error_code ec, std::size_t n) {
    if (ec) {
      parser.get().body().buffer.reset();  // nothing half-received is kept
      return self.complete(
          ec == boost::asio::error::eof ? boost::beast::http::error::partial_message : ec, 0);
    }
    if (!give(boost::asio::buffer(parser.get().body().buffer.data() + have, n), ec))
      return self.complete(ec, 0);
    if (parser.is_done()) return self.complete({}, length);
    read(self);
  }

 private:
  // Hands bytes to the parser, which passes them on to the reader.
  template <typename Buffers>
  bool give(const Buffers& buffers, boost::system::error_code& ec) {
    const std::size_t used = parser.put(buffers, ec);
    if (ec == boost::beast::http::error::need_more) ec = {};
    if (ec) {
      parser.get().body().buffer.reset();
      return false;
    }
    have += used;
    return true;
  }

  // First the bytes that arrived with the header (the one copy), then reads from the socket.
  template <typename Self>
  void fill(Self& self, bool in_initiation) {
    boost::system::error_code ec;
    if (input.size() > 0) {
      const std::size_t before = have;
      if (!give(input.data(), ec)) return finish(self, ec, in_initiation);
      input.consume(have - before);
    }
    if (parser.is_done()) return finish(self, {}, in_initiation);
    read(self);
  }

  template <typename Self>
  void read(Self& self) {
    state = State::reading;
    std::byte* dst = parser.get().body().buffer.data() + have;
    stream.async_read_some(boost::asio::buffer(dst, length - have), std::move(self));
  }

  // Completes, through the executor when still inside the initiating call.
  template <typename Self>
  void finish(Self& self, boost::beast::error_code ec, bool in_initiation = true) {
    if (!in_initiation) return self.complete(ec, ec ? 0 : length);
    result = ec;
    state = State::done;
    boost::asio::post(stream.get_executor(), std::move(self));
  }
};

}  // namespace detail

/// After `parser` has read a header (http::async_read_header), waits for a pool block of the
/// body's Content-Length (at most `timeout`; cancellable with any cancellation type), then moves
/// the body bytes that came with the header from `buffer` into it and reads the rest from `stream`
/// straight into the block. The body ends up in `parser.get().body().buffer`; bytes past the body
/// (a pipelined request) stay in `buffer`.
///
/// Completion signature: void(boost::system::error_code, std::size_t body_bytes). Errors:
/// bufpool's timed_out, cancelled, too_large, closed (the wait); errc::unknown_length for a body
/// without Content-Length (read those with a BufferChain); the stream's errors, and
/// http::error::partial_message if it ends early (the block is then given back). The parser's
/// body_limit applies as it does to Beast's own reads.
template <typename AsyncReadStream, typename DynamicBuffer, bool isRequest, typename Allocator,
          typename CompletionToken>
auto async_read_body(AsyncReadStream& stream, DynamicBuffer& buffer,
                     boost::beast::http::parser<isRequest, PoolBody, Allocator>& parser,
                     BuddyPool& pool, std::chrono::steady_clock::duration timeout,
                     CompletionToken&& token) {
  using Parser = boost::beast::http::parser<isRequest, PoolBody, Allocator>;
  return boost::asio::async_compose<CompletionToken, void(boost::system::error_code, std::size_t)>(
      detail::ReadBodyOp<AsyncReadStream, DynamicBuffer, Parser>{stream, buffer, parser, pool,
                                                                 timeout},
      token, stream);
}

}  // namespace bufpool
