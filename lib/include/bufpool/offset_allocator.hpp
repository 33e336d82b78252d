// OffsetAllocator: best fit with immediate coalescing, over a range it never touches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "bufpool/error.hpp"

namespace bufpool {

namespace detail {

// Fixed-capacity storage for tree nodes, reserved up front, so that the trees below never call
// the heap after construction. Single-threaded, like the allocator that owns it.
class NodeArena {
 public:
  static constexpr std::size_t node_bytes = 64;  // enough for a red-black node of two integers

  explicit NodeArena(std::size_t nodes)
      : storage_(std::make_unique<Slot[]>(nodes)), capacity_(nodes) {
    for (std::size_t i = nodes; i-- > 0;)
      push(&storage_[i]);
  }
  void* take() {
    if (!free_) throw std::bad_alloc();  // unreachable: the owner checks its limit first
    Slot* s = free_;
    free_ = s->next;
    return s;
  }
  void give(void* p) noexcept { push(static_cast<Slot*>(p)); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  union Slot {
    Slot* next;
    alignas(std::max_align_t) unsigned char bytes[node_bytes];
  };
  void push(Slot* s) noexcept {
    s->next = free_;
    free_ = s;
  }
  std::unique_ptr<Slot[]> storage_;
  Slot* free_ = nullptr;
  std::size_t capacity_;
};

template <typename T>
struct ArenaAllocator {
  using value_type = T;
  NodeArena* arena;
  explicit ArenaAllocator(NodeArena* a) noexcept : arena(a) {}
  template <typename U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept : arena(other.arena) {}
  T* allocate(std::size_t n) {
    static_assert(sizeof(T) <= NodeArena::node_bytes, "tree node larger than an arena slot");
    if (n != 1) throw std::bad_alloc();
    return static_cast<T*>(arena->take());
  }
  void deallocate(T* p, std::size_t) noexcept { arena->give(p); }
  template <typename U>
  bool operator==(const ArenaAllocator<U>& other) const noexcept {
    return arena == other.arena;
  }
};

}  // namespace detail

/// Manages the range [0, capacity) of memory that it never touches (a metadata arena, a device
/// buffer, a file). Placement is best fit: the smallest free region that holds the request, the
/// lowest offset among equal sizes. free() coalesces with both neighbours at once.
///
/// Metadata: the free regions, kept in two red-black trees (by size then offset, and by offset)
/// whose nodes come from storage reserved at construction for `max_allocations` live
/// allocations, so allocate and free never call the heap. Worst case O(log n) for allocate, free
/// and try_reallocate.
///
/// Offset is std::uint32_t (8-byte Allocation, capacities below 4 GiB) or std::uint64_t (for
/// larger ranges; 16-byte Allocation). Thread safety: none; one owner at a time.
template <typename Offset = std::uint32_t>
class BasicOffsetAllocator {
  static_assert(std::is_same_v<Offset, std::uint32_t> || std::is_same_v<Offset, std::uint64_t>);

 public:
  struct Allocation {
    Offset offset = 0;
    Offset size = 0;
    friend bool operator==(const Allocation&, const Allocation&) = default;
  };
  using Region = Allocation;  // a free region: where it starts, how long it is

  /// Throws std::system_error(errc::invalid_argument) if max_allocations is 0.
  explicit BasicOffsetAllocator(Offset capacity, std::size_t max_allocations = 65536)
      : arena_by_size_(max_allocations + 1),
        arena_by_offset_(max_allocations + 1),
        by_size_(std::less<>(), SizeAlloc(&arena_by_size_)),
        by_offset_(std::less<>(), OffsetAlloc(&arena_by_offset_)),
        max_allocations_(max_allocations) {
    if (max_allocations == 0) {
      throw std::system_error(make_error_code(errc::invalid_argument),
                              "bufpool::OffsetAllocator: max_allocations must be at least 1");
    }
    reset(capacity);
  }

  /// Allocates `size` units aligned to `align` (a power of two). A size of 0 gives {0, 0} and
  /// takes nothing. Errors: invalid_argument (align), too_large (above capacity()),
  /// out_of_memory (no free region fits, or max_allocations reached).
  Allocation allocate(Offset size, Offset align, std::error_code& ec) noexcept {
    if (align == 0 || (align & (align - 1)) != 0) return fail(ec, errc::invalid_argument);
    if (size == 0) {
      ec.clear();
      return {};
    }
    if (size > capacity_) return fail(ec, errc::too_large);
    if (live_ == max_allocations_) return fail(ec, errc::out_of_memory);
    auto it = find_fit(size, align);
    if (it == by_size_.end()) return fail(ec, errc::out_of_memory);
    const auto [region_size, region_offset] = *it;
    const Offset start = align_up(region_offset, align);
    erase_region(it, region_offset);
    // What is left on either side stays free: a leading gap from alignment, and the tail.
    if (start > region_offset) insert_region(region_offset, start - region_offset);
    const Offset end = start + size;
    if (end < region_offset + region_size) insert_region(end, region_offset + region_size - end);
    available_ -= size;
    ++live_;
    ec.clear();
    return {start, size};
  }

  /// As allocate(size, align, ec), returning std::nullopt on failure.
  std::optional<Allocation> try_allocate(Offset size, Offset align = 1) noexcept {
    std::error_code ec;
    Allocation a = allocate(size, align, ec);
    if (ec) return std::nullopt;
    return a;
  }

  /// Frees an allocation that allocate() returned, merging it with free neighbours at once.
  void free(Allocation a) noexcept {
    if (a.size == 0) return;
    Offset offset = a.offset;
    Offset size = a.size;
    auto next = by_offset_.lower_bound(offset);
    if (next != by_offset_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == offset) {  // free region just before: absorb it
        offset = prev->first;
        size += prev->second;
        erase_region(prev);
      }
    }
    if (next != by_offset_.end() && a.offset + a.size == next->first) {  // and just after
      size += next->second;
      erase_region(next);
    }
    insert_region(offset, size);
    available_ += a.size;
    --live_;
  }

  /// Resizes an allocation in place: it shrinks (the tail becomes free) or grows into the free
  /// region right after it. Returns the new allocation (same offset), or std::nullopt, changing
  /// nothing, when new_size is 0 or the space after it is not free or too small.
  std::optional<Allocation> try_reallocate(Allocation a, Offset new_size) noexcept {
    if (new_size == 0) return std::nullopt;
    if (new_size == a.size) return a;
    const Offset end = a.offset + a.size;
    auto next = by_offset_.find(end);
    if (new_size < a.size) {
      Offset free_size = a.size - new_size;
      if (next != by_offset_.end()) {
        free_size += next->second;
        erase_region(next);
      }
      insert_region(a.offset + new_size, free_size);
      available_ += a.size - new_size;
      return Allocation{a.offset, new_size};
    }
    const Offset extra = new_size - a.size;
    if (next == by_offset_.end() || next->second < extra) return std::nullopt;
    const Offset left = next->second - extra;
    erase_region(next);  // a grow may take the whole neighbour: then nothing is left to insert
    if (left > 0) insert_region(end + extra, left);
    available_ -= extra;
    return Allocation{a.offset, new_size};
  }

  /// Extends the range to [0, new_capacity); the new space merges with a free region at the end.
  /// Returns false (changing nothing) if new_capacity is smaller than capacity().
  bool grow(Offset new_capacity) noexcept {
    if (new_capacity < capacity_) return false;
    if (new_capacity == capacity_) return true;
    Offset offset = capacity_;
    Offset size = new_capacity - capacity_;
    if (!by_offset_.empty()) {
      auto last = std::prev(by_offset_.end());
      if (last->first + last->second == capacity_) {
        offset = last->first;
        size += last->second;
        erase_region(last);
      }
    }
    insert_region(offset, size);
    available_ += new_capacity - capacity_;
    capacity_ = new_capacity;
    return true;
  }

  /// Forgets every allocation: the whole range is one free region again.
  void reset() noexcept { reset(capacity_); }

  Offset capacity() const noexcept { return capacity_; }
  /// Free units in total (possibly fragmented).
  Offset total_available() const noexcept { return available_; }
  /// The largest single free region, exactly.
  Offset largest_available() const noexcept {
    return by_size_.empty() ? 0 : std::prev(by_size_.end())->first;
  }
  std::size_t allocations() const noexcept { return live_; }
  std::size_t free_region_count() const noexcept { return by_offset_.size(); }

  /// Calls f(Region) for every free region in address order. No allocation.
  template <typename F>
  void for_each_free_region(F&& f) const {
    for (const auto& [offset, size] : by_offset_)
      f(Region{offset, size});
  }
  /// The free regions in address order (allocates the vector: for reports, not hot paths).
  std::vector<Region> free_regions() const {
    std::vector<Region> out;
    out.reserve(by_offset_.size());
    for_each_free_region([&](Region r) { out.push_back(r); });
    return out;
  }

 private:
  using SizeKey = std::pair<Offset, Offset>;  // (size, offset): best fit, then lowest offset
  using SizeAlloc = detail::ArenaAllocator<SizeKey>;
  using OffsetAlloc = detail::ArenaAllocator<std::pair<const Offset, Offset>>;
  using BySize = std::set<SizeKey, std::less<>, SizeAlloc>;
  using ByOffset = std::map<Offset, Offset, std::less<>, OffsetAlloc>;

  static Offset align_up(Offset v, Offset a) noexcept { return (v + a - 1) & ~(a - 1); }

  static Allocation fail(std::error_code& ec, errc e) noexcept {
    ec = make_error_code(e);
    return {};
  }

  typename BySize::iterator find_fit(Offset size, Offset align) noexcept {
    auto it = by_size_.lower_bound(SizeKey{size, 0});
    if (align == 1) return it;
    // A region of at least size + align - 1 always fits. Below that, whether a region fits
    // depends on where it starts: look at up to 16 of them in best-fit order, then take the
    // smallest region that fits for sure, so the search stays O(log n).
    for (int i = 0; i < 16 && it != by_size_.end(); ++i, ++it) {
      const auto [rsize, roffset] = *it;
      if (rsize - size >= align - 1) return it;  // fits whatever its start
      if (align_up(roffset, align) - roffset <= rsize - size) return it;
    }
    if (size > std::numeric_limits<Offset>::max() - (align - 1)) return by_size_.end();
    return by_size_.lower_bound(SizeKey{size + align - 1, 0});
  }

  void insert_region(Offset offset, Offset size) noexcept {
    // Cannot throw: free regions never outnumber live allocations + 1, the arenas' size.
    by_size_.emplace(size, offset);
    by_offset_.emplace(offset, size);
  }
  void erase_region(typename BySize::iterator it, Offset offset) noexcept {
    by_size_.erase(it);
    by_offset_.erase(offset);
  }
  void erase_region(typename ByOffset::iterator it) noexcept {
    by_size_.erase(SizeKey{it->second, it->first});
    by_offset_.erase(it);
  }

  void reset(Offset capacity) noexcept {
    by_size_.clear();
    by_offset_.clear();
    capacity_ = capacity;
    available_ = capacity;
    live_ = 0;
    if (capacity > 0) insert_region(0, capacity);
  }

  detail::NodeArena arena_by_size_;
  detail::NodeArena arena_by_offset_;
  BySize by_size_;
  ByOffset by_offset_;
  std::size_t max_allocations_;
  std::size_t live_ = 0;
  Offset capacity_ = 0;
  Offset available_ = 0;
};

using OffsetAllocator = BasicOffsetAllocator<std::uint32_t>;
using OffsetAllocator64 = BasicOffsetAllocator<std::uint64_t>;

static_assert(sizeof(OffsetAllocator::Allocation) == 8, "the 32-bit Allocation is 8 bytes");

}  // namespace bufpool
