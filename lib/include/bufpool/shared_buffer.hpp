// SharedBuffer: a copyable, read-only, reference-counted view of (part of) one pool block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <utility>

#include <boost/asio/buffer.hpp>

#include "bufpool/buffer.hpp"

namespace bufpool {

/// Several readers share one block, for zero-copy serving: copies share the block, and the last
/// one destroyed gives it back to the pool. The count lives in the pool's block metadata, so
/// making, copying and slicing a SharedBuffer never calls the heap. 16 bytes, like Buffer.
///
/// A SharedBuffer is an Asio ConstBufferSequence of one buffer: pass it to async_write as it is,
/// and the operation's copy keeps the block alive until the write completes.
/// `boost::asio::buffer(s)` gives the const_buffer.
///
/// Thread safety: copies may be made and destroyed concurrently on any threads (atomic count).
class SharedBuffer {
 public:
  SharedBuffer() noexcept = default;
  /// Takes over the block of `buffer`, which becomes empty.
  explicit SharedBuffer(Buffer&& buffer) noexcept
      : data_(std::exchange(buffer.data_, nullptr)), size_(buffer.size_), ref_(buffer.ref_) {
    if (data_) detail::shared_init(ref_, data_);
  }
  SharedBuffer(const SharedBuffer& other) noexcept
      : data_(other.data_), size_(other.size_), ref_(other.ref_) {
    if (data_) detail::shared_acquire(ref_, data_);
  }
  SharedBuffer(SharedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(other.size_), ref_(other.ref_) {}
  SharedBuffer& operator=(SharedBuffer other) noexcept {
    swap(other);
    return *this;
  }
  ~SharedBuffer() { reset(); }

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return data_ ? size_ : 0; }
  /// The size of the whole block, also for a slice.
  std::size_t capacity() const noexcept { return data_ ? detail::block_capacity(ref_) : 0; }
  bool empty() const noexcept { return data_ == nullptr; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  std::span<const std::byte> span() const noexcept { return {data_, size()}; }
  operator boost::asio::const_buffer() const noexcept { return {data_, size()}; }

  /// The bytes [offset, offset + length) of this view, sharing (and keeping alive) the block.
  /// Both are clamped to the view, as Asio's buffer arithmetic does: slice(size()) is empty but
  /// still holds the block. O(1), no heap; an empty SharedBuffer slices to an empty one.
  SharedBuffer slice(std::size_t offset, std::size_t length = SIZE_MAX) const noexcept {
    if (!data_) return {};
    if (offset > size_) offset = size_;
    if (length > size_ - offset) length = size_ - offset;
    detail::shared_acquire(ref_, data_);
    // An empty slice keeps the view's start: one past its end may already be the next block.
    return SharedBuffer(length ? data_ + offset : data_, static_cast<std::uint32_t>(length), ref_);
  }

  void reset() noexcept {
    if (data_) detail::shared_release(ref_, std::exchange(data_, nullptr));
  }
  void swap(SharedBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(ref_, other.ref_);
  }

  /// The one-element buffer sequence (what Asio's buffer_sequence_begin/end use).
  class const_iterator {
   public:
    using value_type = boost::asio::const_buffer;
    using reference = boost::asio::const_buffer;
    using pointer = void;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::bidirectional_iterator_tag;

    const_iterator() noexcept = default;
    boost::asio::const_buffer operator*() const noexcept { return *owner_; }
    const_iterator& operator++() noexcept {
      at_end_ = true;
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto old = *this;
      at_end_ = true;
      return old;
    }
    const_iterator& operator--() noexcept {
      at_end_ = false;
      return *this;
    }
    const_iterator operator--(int) noexcept {
      auto old = *this;
      at_end_ = false;
      return old;
    }
    friend bool operator==(const const_iterator&, const const_iterator&) noexcept = default;

   private:
    friend class SharedBuffer;
    const_iterator(const SharedBuffer* owner, bool at_end) noexcept
        : owner_(owner), at_end_(at_end) {}
    const SharedBuffer* owner_ = nullptr;
    bool at_end_ = false;
  };
  const_iterator begin() const noexcept { return {this, false}; }
  const_iterator end() const noexcept { return {this, true}; }

 private:
  SharedBuffer(const std::byte* data, std::uint32_t size, std::uint32_t ref) noexcept
      : data_(data), size_(size), ref_(ref) {}

  const std::byte* data_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t ref_ = 0;
};

static_assert(sizeof(SharedBuffer) <= 16, "SharedBuffer must stay at most 16 bytes");

}  // namespace bufpool
