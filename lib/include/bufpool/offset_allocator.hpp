// OffsetAllocator: best fit (exact or good) with immediate coalescing, over a range it never
// touches. The code is in lib/src/offset_allocator.cpp, compiled for the two offset types.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <system_error>
#include <type_traits>
#include <vector>

#include "bufpool/detail/bit_tree.hpp"
#include "bufpool/detail/index_rb_tree.hpp"
#include "bufpool/detail/zeroed_array.hpp"
#include "bufpool/error.hpp"

namespace bufpool {

namespace detail {
struct OffsetAllocatorInspector;  // tests look at the allocation table through it
}

/// How an OffsetAllocator places a request.
enum class Placement : std::uint8_t {
  /// The smallest free region that holds the request, the lowest offset among equal sizes:
  /// the least fragmentation. O(log n) amortized (equal sizes share a pairing heap, and taking
  /// the root of a heap that took many inserts since it was last paired costs more once).
  exact,
  /// The region freed last in the first non-empty size class all of whose regions hold the
  /// request (classes: exact below 8 units, then 8 per power of two, so a region is at most
  /// about 1/8 larger than its class's smallest size): O(1) but for one case. When every such
  /// class is empty, the classes from the request's own size up are searched for a region that
  /// fits, so a request fails only when no free region holds it.
  good_fit,
};

struct OffsetAllocatorOptions {
  /// Live allocations at most; all metadata is reserved for them at construction (in pages
  /// that become resident as they are used). In [1, 2^30].
  std::size_t max_allocations = 65536;
  Placement placement = Placement::exact;
  /// Keep a table of the live allocations by offset, so that free() and try_reallocate() take
  /// the 8-byte {offset, size} Allocation and refuse one that is not live. Without it only a
  /// Handle (which carries its node) can be freed, and allocate and free skip the table.
  bool lookup_by_offset = true;
};

/// Manages the range [0, capacity) of memory that it never touches (a metadata arena, a device
/// buffer, a file). free() coalesces with both neighbours at once.
///
/// Metadata, all reserved at construction for `max_allocations` live allocations (in zero-filled
/// pages that become resident only as they are used), so allocate and free never call the heap:
/// - one node per region, free or allocated, linked in address order (at most
///   2 * max_allocations + 1 nodes: free regions are never adjacent), so free() reads its two
///   neighbours directly;
/// - free regions by size class, a two-level bitmap finding the first non-empty class at or
///   above a request. Exact placement: a class per exact size below 4,096, each a pairing heap
///   by offset (its root is the lowest offset), then bins of 16 per power of two, each a
///   red-black tree with one node per distinct size (the root of that size's heap). Good fit:
///   exact classes below 8, then 8 per power of two, each a list;
/// - with lookup_by_offset, the allocated regions: a table of 7-slot buckets by offset (home
///   bucket, then its buddy, then an overflow red-black tree), so free() finds the node of
///   `{offset, size}` in bounded time and refuses what is not live.
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
  /// An allocation with the index of its node: free(Handle) goes straight to it. Valid until
  /// the allocation is freed (or resized: try_reallocate returns the new one).
  struct Handle {
    Offset offset = 0;
    Offset size = 0;
    std::uint32_t node = 0;  // 0: the empty allocation
    Allocation allocation() const noexcept { return {offset, size}; }
    friend bool operator==(const Handle&, const Handle&) = default;
  };

  /// Throws std::system_error(errc::invalid_argument) if max_allocations is 0 or above 2^30.
  explicit BasicOffsetAllocator(Offset capacity, std::size_t max_allocations = 65536)
      : BasicOffsetAllocator(capacity, OffsetAllocatorOptions{.max_allocations = max_allocations}) {
  }
  BasicOffsetAllocator(Offset capacity, const OffsetAllocatorOptions& options);

  BasicOffsetAllocator(const BasicOffsetAllocator&) = delete;
  BasicOffsetAllocator& operator=(const BasicOffsetAllocator&) = delete;

  /// Allocates `size` units aligned to `align` (a power of two). A size of 0 gives {0, 0} and
  /// takes nothing. Errors: invalid_argument (align), too_large (above capacity()),
  /// out_of_memory (no free region fits, or max_allocations reached). Never throws.
  Handle try_allocate_handle(Offset size, Offset align, std::error_code& ec) noexcept;
  Allocation try_allocate(Offset size, Offset align, std::error_code& ec) noexcept {
    return try_allocate_handle(size, align, ec).allocation();
  }
  /// As try_allocate(size, align, ec), with std::nullopt for any failure.
  std::optional<Allocation> try_allocate(Offset size, Offset align = 1) noexcept {
    std::error_code ec;
    Allocation a = try_allocate(size, align, ec);
    if (ec) return std::nullopt;
    return a;
  }
  /// As try_allocate(size, align, ec), but throws std::system_error with the bufpool::errc.
  Allocation allocate(Offset size, Offset align = 1) {
    return allocate_handle(size, align).allocation();
  }
  Handle allocate_handle(Offset size, Offset align = 1);

  /// Frees an allocation that allocate() returned (or try_reallocate() last resized), merging
  /// it with free neighbours at once. Returns false, changing nothing, if `a` is not a live
  /// allocation of this allocator (a double free, or a wrong size), or without
  /// lookup_by_offset; a size of 0 is a no-op.
  bool free(Allocation a) noexcept;
  /// The same through the handle's node, with no lookup. Returns false, changing nothing, if
  /// the node does not hold that live allocation.
  bool free(Handle h) noexcept;

  /// Resizes an allocation in place: it shrinks (the tail becomes free) or grows into the free
  /// region right after it. Returns the new allocation (same offset), or std::nullopt, changing
  /// nothing, when new_size is 0, `a` is not live, or the space after it is not free or too small.
  std::optional<Allocation> try_reallocate(Allocation a, Offset new_size) noexcept;
  std::optional<Handle> try_reallocate(Handle h, Offset new_size) noexcept;

  /// Extends the range to [0, new_capacity); the new space merges with a free region at the end.
  /// Returns false (changing nothing) if new_capacity is smaller than capacity().
  bool grow(Offset new_capacity) noexcept;
  /// Forgets every allocation: the whole range is one free region again.
  void reset() noexcept { reset(capacity_); }

  Offset capacity() const noexcept { return capacity_; }
  /// Free units in total (possibly fragmented).
  Offset total_available() const noexcept { return available_; }
  /// The largest single free region, exactly.
  Offset largest_available() const noexcept;
  std::size_t allocations() const noexcept { return live_; }
  std::size_t free_region_count() const noexcept { return free_regions_; }
  Placement placement() const noexcept { return placement_; }

  /// Calls f(Region) for every free region in address order. No allocation.
  template <typename F>
  void for_each_free_region(F&& f) const {
    for (std::uint32_t x = head_; x != nil; x = n(x).next)
      if (is_free(x)) f(Region{n(x).offset, n(x).size});
  }
  /// The free regions in address order (allocates the vector: for reports, not hot paths).
  std::vector<Region> free_regions() const;

 private:
  friend struct detail::OffsetAllocatorInspector;
  static constexpr std::uint32_t nil = 0;
  // Exact placement's size classes: sizes below exact_limit each have a class of their own, a
  // pairing heap of its regions by offset whose root (the lowest offset) is root_[size]; larger
  // sizes fall into bins, 16 per power of two, a bin's root_ being a red-black tree by size with
  // one node per distinct size, that node being the root of the heap of that size. Good fit
  // has classes of its own (good_class_of), each a list through hleft/hright.
  static constexpr std::size_t exact_limit = 4096;
  static constexpr unsigned exact_bits = 12;  // log2(exact_limit)
  static constexpr unsigned mantissa_bits = 4;
  static constexpr std::size_t bin_count =
      exact_limit + ((std::numeric_limits<Offset>::digits - exact_bits) << mantissa_bits);

  // One region, 32 bytes for 32-bit offsets: what every operation reads.
  struct Node {
    Offset offset = 0;
    Offset size = 0;
    std::uint32_t prev = nil, next = nil;  // address order; `next` also chains unused nodes
    // Exact: a pairing heap by offset (first child, next sibling, previous sibling or parent);
    // good fit: hleft and hright are the class list's links.
    std::uint32_t hleft = nil, hright = nil, hparent = nil;
    std::uint32_t unused = 0;  // pads the node to 32 bytes: two per cache line
  };
  static_assert(sizeof(Offset) != 4 || sizeof(Node) == 32, "a 32-bit node is 32 bytes");
  // Per node, apart from Node: free() reads both neighbours' states, and touches a
  // neighbour's node only to merge it (a free region is never next to another: most neighbours
  // are live). Unused nodes (and the sentinel) are neither free nor live.
  enum State : std::uint8_t { unused_node = 0, free_region = 1, live_region = 2 };
  bool is_free(std::uint32_t x) const noexcept { return states_[x] == free_region; }
  bool is_live(std::uint32_t x) const noexcept { return states_[x] == live_region; }
  void set_state(std::uint32_t x, State s) noexcept { states_[x] = s; }

  // Red-black links, apart from Node because few regions need them: the root of a heap of a
  // size at or above exact_limit (in its bin's tree), and an allocation in the overflow tree.
  struct Link {
    std::uint32_t left = nil, right = nil, parent = nil;
    bool red = false;
  };
  // Buckets of 7 slots, one cache line for 32-bit offsets, at most 6/7 full.
  struct alignas(64) Bucket {
    static constexpr unsigned size = 7;
    Offset key[size];
    std::uint32_t node[size];
    std::uint8_t used = 0;     // bit i: slot i holds a key
    std::uint8_t spilled = 0;  // keys of this home stored in the buddy bucket
    unsigned match(Offset k) const noexcept;
  };
  struct Found {
    std::uint32_t node = nil;
    Bucket* bucket = nullptr;  // nullptr: in the overflow tree
    unsigned slot = 0;
    std::size_t home = 0;
  };

  static std::uint32_t bin_of(Offset size) noexcept;
  static std::uint32_t good_class_of(Offset size) noexcept;
  Node& n(std::uint32_t i) noexcept { return nodes_[i]; }
  const Node& n(std::uint32_t i) const noexcept { return nodes_[i]; }
  detail::IndexRbTree<Link> tree() const noexcept {
    return detail::IndexRbTree<Link>(links_.get());
  }
  Link& l(std::uint32_t i) noexcept { return links_[i]; }
  const Link& l(std::uint32_t i) const noexcept { return links_[i]; }

  template <Placement P>
  Handle allocate_as(Offset size, Offset align, std::error_code& ec) noexcept;
  bool release(std::uint32_t x) noexcept;
  template <Placement P>
  bool release_as(std::uint32_t x) noexcept;
  std::optional<Allocation> resize(std::uint32_t x, Allocation a, Offset new_size) noexcept;
  std::uint32_t first_of_bin(std::size_t b) const noexcept;
  template <Placement P>
  void bin_insert(std::uint32_t x) noexcept;
  template <Placement P>
  void bin_remove(std::uint32_t x) noexcept;
  void bin_insert_any(std::uint32_t x) noexcept;
  void bin_remove_any(std::uint32_t x) noexcept;
  std::uint32_t heap_merge(std::uint32_t a, std::uint32_t b) noexcept;
  std::uint32_t heap_pair(std::uint32_t first) noexcept;
  std::uint32_t lower_bound(Offset size) const noexcept;
  std::uint32_t next_class(std::uint32_t x) const noexcept;
  std::uint32_t find_fit(Offset size, Offset align) const noexcept;
  std::uint32_t find_good_fit(Offset size, Offset align) const noexcept;
  std::size_t home(Offset key) const noexcept;
  void owned_insert(std::uint32_t x) noexcept;
  Found owned_find(Allocation a) noexcept;
  void owned_erase(const Found& f) noexcept;
  std::uint32_t take_node() noexcept;
  void give_node(std::uint32_t x) noexcept;
  void link_after(std::uint32_t x, std::uint32_t y) noexcept;
  void link_before(std::uint32_t x, std::uint32_t y) noexcept;
  void unlink(std::uint32_t x) noexcept;
  void reset(Offset capacity) noexcept;
  void start_empty(Offset capacity) noexcept;

  detail::ZeroedArray<Node> nodes_;
  detail::ZeroedArray<Link> links_;
  detail::ZeroedArray<State> states_;
  std::uint32_t node_count_ = 0;
  std::uint32_t unused_ = nil;  // chain of released nodes, through `next`
  std::uint32_t fresh_ = 1;     // nodes from here on were never used
  std::uint32_t head_ = nil, tail_ = nil;
  std::array<std::uint32_t, bin_count> root_;
  detail::BitTree<bin_count> bins_;
  detail::ZeroedArray<Bucket> buckets_;
  std::size_t bucket_count_ = 0;
  int bucket_shift_ = 64;
  std::uint32_t overflow_root_ = nil;
  std::size_t overflow_count_ = 0;
  std::size_t max_allocations_;
  std::size_t free_regions_ = 0;
  std::size_t live_ = 0;
  Offset capacity_ = 0;
  Offset available_ = 0;
  Placement placement_;
  bool lookup_by_offset_;
};

extern template class BasicOffsetAllocator<std::uint32_t>;
extern template class BasicOffsetAllocator<std::uint64_t>;

using OffsetAllocator = BasicOffsetAllocator<std::uint32_t>;
using OffsetAllocator64 = BasicOffsetAllocator<std::uint64_t>;

static_assert(sizeof(OffsetAllocator::Allocation) == 8, "the 32-bit Allocation is 8 bytes");

}  // namespace bufpool
