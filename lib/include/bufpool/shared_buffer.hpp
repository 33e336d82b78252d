// SharedBuffer: a copyable, read-only, reference-counted view of one pool block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "bufpool/buffer.hpp"

namespace bufpool {

/// Several readers share one block, for zero-copy serving: copies share the block, and the last
/// one destroyed gives it back to the pool. The count lives in the pool's block metadata, so
/// making and copying a SharedBuffer never calls the heap. 16 bytes, like Buffer.
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
  std::size_t capacity() const noexcept { return data_ ? detail::block_capacity(ref_) : 0; }
  bool empty() const noexcept { return data_ == nullptr; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  std::span<const std::byte> span() const noexcept { return {data_, size()}; }

  void reset() noexcept {
    if (data_) detail::shared_release(ref_, std::exchange(data_, nullptr), size_);
  }
  void swap(SharedBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(ref_, other.ref_);
  }

 private:
  const std::byte* data_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t ref_ = 0;
};

static_assert(sizeof(SharedBuffer) <= 16, "SharedBuffer must stay at most 16 bytes");

}  // namespace bufpool
