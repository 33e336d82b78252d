// OrderedPool: a fixed-capacity object pool with stable addresses and a sortable order.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#include "bufpool/error.hpp"

namespace bufpool {

/// Holds up to capacity() objects of T. Objects never move: a pointer stays valid until its
/// object is deallocated. Besides their fixed physical slots, the live objects have a virtual
/// order that can be indexed in O(1) and sorted in O(n log n) without moving any object.
///
/// Layout (after aligning the start of the memory): T blocks[cap] | Index phys[cap] |
/// Index virt[cap]. phys maps virtual to physical index for the first size() entries; its unused
/// tail holds the stack of free physical slots, so the free list costs nothing extra. virt maps a
/// live object's physical index to its virtual index, which makes deallocation O(1): the object's
/// virtual slot is swapped with the last one. So the metadata is 2 * sizeof(Index) bytes a block.
///
/// Index (an unsigned type of 8, 16 or 32 bits) caps the capacity at its largest value.
/// Thread safety: none; one owner at a time, like a std::vector.
template <typename T, typename Index = std::uint32_t>
class OrderedPool {
  static_assert(std::is_unsigned_v<Index> && sizeof(Index) <= 4, "Index: 8, 16 or 32 bits");
  static constexpr std::size_t max_index = std::numeric_limits<Index>::max();

 public:
  /// Over memory that the caller owns and keeps alive. A misaligned `memory` is fine: the pool
  /// starts at the first address aligned for T and Index, and never makes a misaligned access.
  /// The capacity is what fits after that (see capacity_for); 0 if nothing fits.
  explicit OrderedPool(std::span<std::byte> memory) noexcept {
    place(memory.data(), memory.size());
  }

  /// With memory that the pool allocates (and frees) itself, for `capacity` objects.
  /// Throws std::system_error(errc::invalid_argument) if Index cannot count that many.
  explicit OrderedPool(std::size_t capacity) {
    if (capacity > max_index) {
      throw std::system_error(make_error_code(errc::invalid_argument),
                              "bufpool::OrderedPool: capacity above the Index type's range");
    }
    const std::size_t bytes = bytes_for(capacity);
    owned_ = static_cast<std::byte*>(::operator new (bytes, std::align_val_t{block_align}));
    owned_bytes_ = bytes;
    place(owned_, bytes, capacity);
  }

  OrderedPool(const OrderedPool&) = delete;
  OrderedPool& operator=(const OrderedPool&) = delete;

  /// Destroys every live object.
  ~OrderedPool() {
    clear();
    if (owned_) ::operator delete (owned_, std::align_val_t{block_align});
  }

  /// Bytes of memory that `capacity` objects need, including worst-case alignment slack when
  /// the memory's start is not aligned.
  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return block_align - 1 + capacity * sizeof(T) + (index_align - 1) +
           2 * capacity * sizeof(Index);
  }

  /// Constructs a T in a free slot. Returns nullptr when the pool is full. O(1).
  template <typename... Args>
  T* try_allocate(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args...>) {
    // Locals first: T's constructor may store through types that alias the pool's own members
    // (a uint64_t field aliases size_t), which would force reloads after it.
    const std::size_t size = size_, free = free_, capacity = capacity_;
    Index* const phys = phys_;
    if (size == capacity) return nullptr;
    // The free stack grows down from the top of phys; without freed slots, the live physical
    // slots are exactly [0, size), so the next fresh one is size.
    const std::size_t physical = free == 0 ? size : phys[capacity - free];
    T* object = ::new (static_cast<void*>(blocks_ + physical)) T(std::forward<Args>(args)...);
    free_ = free == 0 ? 0 : free - 1;
    phys[size] = static_cast<Index>(physical);
    virt_[physical] = static_cast<Index>(size);
    size_ = size + 1;
    return object;
  }

  /// As try_allocate, but throws std::system_error(errc::out_of_memory) when full.
  template <typename... Args>
  T* allocate(Args&&... args) {
    T* object = try_allocate(std::forward<Args>(args)...);
    if (!object) {
      throw std::system_error(make_error_code(errc::out_of_memory), "bufpool::OrderedPool full");
    }
    return object;
  }

  /// Destroys `*object` and frees its slot. The last object in the virtual order takes the freed
  /// virtual position. `object` must come from this pool and be live. O(1).
  void deallocate(T* object) noexcept {
    const auto physical = static_cast<std::size_t>(object - blocks_);
    assert(physical < capacity_ && contains(object));
    const std::size_t position = virt_[physical];
    const std::size_t last = size_ - 1;
    const Index moved = phys_[last];
    phys_[position] = moved;
    virt_[moved] = static_cast<Index>(position);
    --size_;
    ++free_;
    phys_[capacity_ - free_] = static_cast<Index>(physical);  // may reuse slot `last`: now unused
    object->~T();
  }

  /// The object at virtual position i (< size()). O(1).
  T& operator[](std::size_t i) noexcept { return blocks_[phys_[i]]; }
  const T& operator[](std::size_t i) const noexcept { return blocks_[phys_[i]]; }

  /// The virtual position of a live object. O(1).
  std::size_t position_of(const T* object) const noexcept {
    return virt_[static_cast<std::size_t>(object - blocks_)];
  }

  /// True if `object` is a live object of this pool. O(1).
  bool contains(const T* object) const noexcept {
    if (object < blocks_ || object >= blocks_ + capacity_) return false;
    const auto physical = static_cast<std::size_t>(object - blocks_);
    const std::size_t position = virt_[physical];
    return position < size_ && phys_[position] == physical;
  }

  /// Reorders the virtual order by `compare` (a strict weak order on const T&), in O(n log n).
  /// No object moves; every pointer stays valid. Not stable.
  template <typename Compare>
  void sort(Compare compare) {
    T* blocks = blocks_;
    std::sort(phys_, phys_ + size_,
              [&](Index a, Index b) { return compare(blocks[a], blocks[b]); });
    // Inverting the permutation scatters writes over the whole virt array: with a million
    // objects each one misses the cache. Prefetching a few dozen ahead overlaps those misses
    // (this loop went from about 30% of the sort's time to a few per cent).
    constexpr std::size_t ahead = 32;
    const std::size_t n = size_;
    for (std::size_t i = 0; i < n; ++i) {
      if (i + ahead < n) __builtin_prefetch(virt_ + phys_[i + ahead], 1);
      virt_[phys_[i]] = static_cast<Index>(i);
    }
  }

  /// Destroys every live object; the pool is empty afterwards.
  void clear() noexcept {
    for (std::size_t i = 0; i < size_; ++i)
      blocks_[phys_[i]].~T();
    size_ = 0;
    free_ = 0;
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return size_ == capacity_; }

  template <bool Const>
  class basic_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<Const, const T*, T*>;
    using reference = std::conditional_t<Const, const T&, T&>;
    using pool_type = std::conditional_t<Const, const OrderedPool, OrderedPool>;

    basic_iterator() = default;
    basic_iterator(pool_type* pool, std::size_t i) : pool_(pool), i_(i) {}
    reference operator*() const { return (*pool_)[i_]; }
    pointer operator->() const { return &(*pool_)[i_]; }
    reference operator[](difference_type n) const { return (*pool_)[i_ + n]; }
    basic_iterator& operator++() { return ++i_, *this; }
    basic_iterator operator++(int) { return {pool_, i_++}; }
    basic_iterator& operator--() { return --i_, *this; }
    basic_iterator operator--(int) { return {pool_, i_--}; }
    basic_iterator& operator+=(difference_type n) { return i_ += n, *this; }
    basic_iterator& operator-=(difference_type n) { return i_ -= n, *this; }
    friend basic_iterator operator+(basic_iterator it, difference_type n) { return it += n; }
    friend basic_iterator operator+(difference_type n, basic_iterator it) { return it += n; }
    friend basic_iterator operator-(basic_iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(basic_iterator a, basic_iterator b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(basic_iterator a, basic_iterator b) { return a.i_ == b.i_; }
    friend auto operator<=>(basic_iterator a, basic_iterator b) { return a.i_ <=> b.i_; }

   private:
    pool_type* pool_ = nullptr;
    std::size_t i_ = 0;
  };
  using iterator = basic_iterator<false>;
  using const_iterator = basic_iterator<true>;

  /// Iteration visits the live objects in virtual order.
  iterator begin() noexcept { return {this, 0}; }
  iterator end() noexcept { return {this, size_}; }
  const_iterator begin() const noexcept { return {this, 0}; }
  const_iterator end() const noexcept { return {this, size_}; }

 private:
  static constexpr std::size_t block_align = alignof(T) > alignof(Index) ? alignof(T)
                                                                         : alignof(Index);
  static constexpr std::size_t index_align = alignof(Index);

  static std::uintptr_t align_up(std::uintptr_t v, std::size_t a) { return (v + a - 1) & ~(a - 1); }

  void place(std::byte* memory, std::size_t bytes, std::size_t limit = max_index) noexcept {
    const auto begin = reinterpret_cast<std::uintptr_t>(memory);
    const auto end = begin + bytes;
    const auto blocks = align_up(begin, alignof(T));
    std::size_t cap = 0;
    if (blocks <= end) {
      cap = std::min<std::size_t>(limit, (end - blocks) / (sizeof(T) + 2 * sizeof(Index)));
      // Padding before the index arrays can cost a slot or two.
      while (cap > 0 &&
             align_up(blocks + cap * sizeof(T), index_align) + 2 * cap * sizeof(Index) > end) {
        --cap;
      }
    }
    capacity_ = cap;
    blocks_ = reinterpret_cast<T*>(blocks);
    phys_ = reinterpret_cast<Index*>(align_up(blocks + cap * sizeof(T), index_align));
    virt_ = phys_ + cap;
  }

  T* blocks_ = nullptr;
  Index* phys_ = nullptr;
  Index* virt_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
  std::size_t free_ = 0;  // freed physical slots, stacked at the top of phys_
  std::byte* owned_ = nullptr;
  std::size_t owned_bytes_ = 0;
};

}  // namespace bufpool
