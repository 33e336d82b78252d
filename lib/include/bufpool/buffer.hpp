// Buffer: the move-only RAII handle to one block of a BuddyPool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include <boost/asio/buffer.hpp>

#include "bufpool/detail/block_ref.hpp"

namespace bufpool {

class SharedBuffer;
namespace detail {
class PoolCore;
}

/// Owns one block of a BuddyPool. Destroying (or reset()ting) it gives the block back in O(1),
/// apart from buddy merging, which the pool does lazily. The memory stays valid even if the pool
/// object is destroyed first: the pool's storage lives until its last block is returned.
///
/// `boost::asio::buffer(b)` gives a mutable_buffer over its size() bytes, for async_read and
/// async_write. Buffer is not itself a buffer sequence: Asio's composed operations copy their
/// sequence, and a Buffer owns its block (a SharedBuffer is a sequence, and its copy keeps the
/// block alive for the whole operation).
///
/// 16 bytes: the data pointer, the requested size, and a 32-bit block reference.
/// Thread safety: like any value type; distinct Buffers may be used and destroyed on any threads.
class Buffer {
 public:
  Buffer() noexcept = default;
  Buffer(Buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(other.size_), ref_(other.ref_) {}
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = other.size_;
      ref_ = other.ref_;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  /// The block's memory, or nullptr for an empty Buffer.
  std::byte* data() const noexcept { return data_; }
  /// The size that was requested (at most capacity()).
  std::size_t size() const noexcept { return data_ ? size_ : 0; }
  /// The size of the block that backs this Buffer (a power of the pool's fanout times its
  /// smallest block). 0 for an empty Buffer.
  std::size_t capacity() const noexcept { return data_ ? detail::block_capacity(ref_) : 0; }
  bool empty() const noexcept { return data_ == nullptr; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  std::span<std::byte> span() const noexcept { return {data_, size()}; }
  /// The first size() bytes, as Asio's buffer functions take them.
  operator boost::asio::mutable_buffer() const noexcept { return {data_, size()}; }

  /// Keeps the first `n` bytes and gives the rest of the block back at once, down to the smallest
  /// block that holds `n` bytes (a 100 KB body read into a 1 MiB block keeps 128 KiB when the
  /// pool's smallest block is 128 KiB or less); waiters that the freed buddies can serve are
  /// served. `n` >= size() does nothing; `n` == 0 is reset(). The data pointer does not move.
  void shrink(std::size_t n) noexcept {
    if (!data_ || n >= size_) return;
    if (n == 0) return reset();
    ref_ = detail::shrink_block(ref_, data_, n);
    size_ = static_cast<std::uint32_t>(n);
  }

  /// Gives the block back now. The Buffer becomes empty.
  void reset() noexcept {
    if (data_) detail::release_block(ref_, std::exchange(data_, nullptr));
  }

 private:
  friend class detail::PoolCore;
  friend class SharedBuffer;
  Buffer(std::byte* data, std::uint32_t size, std::uint32_t ref) noexcept
      : data_(data), size_(size), ref_(ref) {}

  std::byte* data_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t ref_ = 0;
};

static_assert(sizeof(Buffer) <= 16, "Buffer must stay at most 16 bytes");

}  // namespace bufpool
