// BufferChain: a dynamic buffer over a chain of pool blocks, for messages of unknown length.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "bufpool/buddy_pool.hpp"

namespace bufpool {

namespace detail {

// The bytes [begin, end) of a chain, as a sequence of one buffer per block they touch. Offsets
// count from the start of the first block. Like every dynamic buffer's sequences, it is
// invalidated by the next call that changes the chain.
template <typename AsioBuffer>
class ChainBuffers {
 public:
  using value_type = AsioBuffer;
  ChainBuffers() noexcept = default;
  ChainBuffers(const Buffer* blocks, std::size_t block, std::size_t begin, std::size_t end) noexcept
      : blocks_(blocks), block_(block), begin_(begin), end_(end) {}

  class const_iterator {
   public:
    using value_type = AsioBuffer;
    using reference = AsioBuffer;
    using pointer = void;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::bidirectional_iterator_tag;

    const_iterator() noexcept = default;
    const_iterator(const ChainBuffers* seq, std::size_t pos) noexcept : seq_(seq), pos_(pos) {}
    AsioBuffer operator*() const noexcept {
      const std::size_t in_block = pos_ % seq_->block_;
      const std::size_t n = std::min(seq_->block_ - in_block, seq_->end_ - pos_);
      return AsioBuffer(seq_->blocks_[pos_ / seq_->block_].data() + in_block, n);
    }
    const_iterator& operator++() noexcept {
      pos_ = std::min(seq_->end_, (pos_ / seq_->block_ + 1) * seq_->block_);
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto old = *this;
      ++*this;
      return old;
    }
    const_iterator& operator--() noexcept {
      const std::size_t last = pos_ - 1;
      pos_ = std::max(seq_->begin_, last - last % seq_->block_);
      return *this;
    }
    const_iterator operator--(int) noexcept {
      auto old = *this;
      --*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) noexcept {
      return a.pos_ == b.pos_;
    }

   private:
    const ChainBuffers* seq_ = nullptr;
    std::size_t pos_ = 0;
  };
  const_iterator begin() const noexcept { return {this, begin_}; }
  const_iterator end() const noexcept { return {this, end_}; }

 private:
  const Buffer* blocks_ = nullptr;
  std::size_t block_ = 1;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace detail

/// Owns a chain of equal pool blocks holding a byte stream: a readable part, which consume()
/// takes from the front, and room that grows a block at a time. It is a DynamicBuffer_v1 (what
/// Beast's reads and `http::basic_dynamic_body` take) and, through dynamic_buffer(), an Asio
/// DynamicBuffer_v2 (what `asio::async_read_until` and `asio::async_read` take).
///
/// Blocks come from the pool with try_allocate(), never waiting: prepare()/grow() throw
/// std::length_error past max_size() and when the pool has no block free now, as every dynamic
/// buffer does when it cannot grow (Beast turns that into http::error::buffer_overflow; the
/// cause is out_of_memory() then). Moving a BufferChain keeps its blocks; blocks emptied by
/// consume() go back to the pool at once.
///
/// Thread safety: like any container.
class BufferChain {
 public:
  using const_buffers_type = detail::ChainBuffers<boost::asio::const_buffer>;
  using mutable_buffers_type = detail::ChainBuffers<boost::asio::mutable_buffer>;

  /// A chain with no pool: it holds nothing and cannot grow (for default-constructed bodies).
  BufferChain() noexcept = default;
  /// Blocks of `block_size` bytes (the pool's smallest block when 0) from `pool`, up to
  /// `max_size` readable bytes.
  explicit BufferChain(BuddyPool& pool, std::size_t max_size = SIZE_MAX, std::size_t block_size = 0)
      : pool_(&pool),
        max_size_(max_size),
        block_(block_size ? pool.capacity_for(block_size) : pool.block_size(0)) {
    if (block_ == 0)
      throw std::system_error(make_error_code(errc::too_large), "bufpool::BufferChain");
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t max_size() const noexcept { return max_size_; }
  /// Bytes it can hold without taking another block.
  std::size_t capacity() const noexcept { return blocks_.size() * block_ - head_; }
  /// true when the last prepare()/grow() failed because the pool had no block free.
  bool out_of_memory() const noexcept { return out_of_memory_; }

  // DynamicBuffer_v1.
  const_buffers_type data() const noexcept {
    return {blocks_.data(), block_, head_, head_ + size_};
  }
  mutable_buffers_type prepare(std::size_t n) {
    reserve(n);
    prepared_ = n;
    return {blocks_.data(), block_, head_ + size_, head_ + size_ + n};
  }
  void commit(std::size_t n) noexcept {
    size_ += std::min(n, prepared_);
    prepared_ = 0;
  }
  void consume(std::size_t n) noexcept {
    n = std::min(n, size_);
    head_ += n;
    size_ -= n;
    const std::size_t whole = std::min(head_ / block_, blocks_.size());
    if (whole > 0) {  // emptied blocks go back to the pool
      blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(whole));
      head_ -= whole * block_;
    }
    if (size_ == 0 && prepared_ == 0) head_ = 0;  // reuse the block that is left from its start
  }

  // DynamicBuffer_v2's operations on the readable bytes (dynamic_buffer() forwards to these).
  mutable_buffers_type data(std::size_t pos, std::size_t n) noexcept {
    pos = std::min(pos, size_);
    n = std::min(n, size_ - pos);
    return {blocks_.data(), block_, head_ + pos, head_ + pos + n};
  }
  const_buffers_type data(std::size_t pos, std::size_t n) const noexcept {
    pos = std::min(pos, size_);
    n = std::min(n, size_ - pos);
    return {blocks_.data(), block_, head_ + pos, head_ + pos + n};
  }
  void grow(std::size_t n) {
    reserve(n);
    size_ += n;
  }
  void shrink(std::size_t n) noexcept {
    size_ -= std::min(n, size_);
    const std::size_t needed = (head_ + size_ + block_ - 1) / block_;
    while (blocks_.size() > std::max<std::size_t>(needed, 1))
      blocks_.pop_back();
  }

  /// The readable bytes as one Buffer of exactly size() bytes, and the chain empties. A chain of
  /// one block starting at its front gives that block (shrunk), with no copy; otherwise the bytes
  /// are copied into a new block once. Errors: the pool's (out_of_memory, too_large, ...), or
  /// invalid_size when the chain is empty.
  Buffer take(std::error_code& ec) {
    Buffer out;
    if (size_ == 0) {
      ec = errc::invalid_size;
      return out;
    }
    if (head_ == 0 && size_ <= block_ && !blocks_.empty()) {
      out = std::move(blocks_.front());
      out.shrink(size_);
    } else {
      out = pool_->try_allocate(size_, ec);
      if (!out) return out;
      boost::asio::buffer_copy(boost::asio::buffer(out), data());
    }
    ec.clear();
    clear();
    return out;
  }

  /// Gives every block back.
  void clear() noexcept {
    blocks_.clear();
    head_ = size_ = prepared_ = 0;
  }

 private:
  // Room for `n` more bytes after the readable ones.
  void reserve(std::size_t n) {
    out_of_memory_ = false;
    if (n > max_size_ - size_) throw std::length_error("bufpool::BufferChain: beyond max_size");
    const std::size_t needed = head_ + size_ + n;
    while (blocks_.size() * block_ < needed) {
      std::error_code ec;
      Buffer b = pool_ ? pool_->try_allocate(block_, ec) : Buffer{};
      if (!b) {
        out_of_memory_ = true;
        throw std::length_error("bufpool::BufferChain: no pool block free");
      }
      blocks_.push_back(std::move(b));
    }
  }

  BuddyPool* pool_ = nullptr;
  std::size_t max_size_ = 0;
  std::size_t block_ = 1;
  std::vector<Buffer> blocks_;
  std::size_t head_ = 0;      // offset of the first readable byte in blocks_[0]
  std::size_t size_ = 0;      // readable bytes (v2: including grown ones)
  std::size_t prepared_ = 0;  // v1: bytes handed out by prepare(), not yet committed
  bool out_of_memory_ = false;
};

/// An Asio DynamicBuffer_v2 over a BufferChain (a copyable view; the chain owns the bytes).
class BufferChainView {
 public:
  using const_buffers_type = BufferChain::const_buffers_type;
  using mutable_buffers_type = BufferChain::mutable_buffers_type;

  explicit BufferChainView(BufferChain& chain) noexcept : chain_(&chain) {}
  std::size_t size() const noexcept { return chain_->size(); }
  std::size_t max_size() const noexcept { return chain_->max_size(); }
  std::size_t capacity() const noexcept { return chain_->capacity(); }
  const_buffers_type data(std::size_t pos, std::size_t n) const noexcept {
    return std::as_const(*chain_).data(pos, n);
  }
  mutable_buffers_type data(std::size_t pos, std::size_t n) noexcept {
    return chain_->data(pos, n);
  }
  void grow(std::size_t n) { chain_->grow(n); }
  void shrink(std::size_t n) noexcept { chain_->shrink(n); }
  void consume(std::size_t n) noexcept { chain_->consume(n); }

 private:
  BufferChain* chain_;
};

/// The DynamicBuffer_v2 for Asio's reads: `asio::async_read_until(s, dynamic_buffer(chain), ...)`.
inline BufferChainView dynamic_buffer(BufferChain& chain) noexcept {
  return BufferChainView(chain);
}

}  // namespace bufpool
