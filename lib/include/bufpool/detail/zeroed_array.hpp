// An array in fresh anonymous pages: zero until written, and costing memory only where written.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace bufpool::detail {

/// n objects of T in an anonymous private mapping. The pages are zero-filled on first touch, so
/// an allocator can reserve its metadata for the worst case up front and pay resident memory only
/// for what it uses. T must be an implicit-lifetime type whose all-zero bytes are a valid
/// (empty) value; the mapping is page-aligned, which covers any alignas up to 4 KiB.
template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  ZeroedArray() = default;
  explicit ZeroedArray(std::size_t n) : bytes_(n * sizeof(T)) {
    if (n == 0) return;
    // MAP_NORESERVE: a worst-case reservation is not a commitment; only touched pages count.
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
  }
  ~ZeroedArray() {
    if (data_) ::munmap(data_, bytes_);
  }
  ZeroedArray(ZeroedArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  ZeroedArray& operator=(ZeroedArray&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }

  T* get() const noexcept { return data_; }
  T& operator[](std::size_t i) const noexcept { return data_[i]; }
  /// Back to all zero, giving the touched pages back to the system.
  void zero() noexcept {
    if (data_) ::madvise(data_, bytes_, MADV_DONTNEED);
  }

 private:
  T* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace bufpool::detail
