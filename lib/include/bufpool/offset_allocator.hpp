// OffsetAllocator: best fit with immediate coalescing, over a range it never touches.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <vector>

#include "bufpool/detail/index_rb_tree.hpp"
#include "bufpool/error.hpp"

namespace bufpool {

/// Manages the range [0, capacity) of memory that it never touches (a metadata arena, a device
/// buffer, a file). Placement is exact best fit: the smallest free region that holds the request,
/// the lowest offset among equal sizes. free() coalesces with both neighbours at once.
///
/// Metadata, all reserved at construction for `max_allocations` live allocations, so allocate
/// and free never call the heap:
/// - one node per region, free or allocated, linked in address order (at most
///   2 * max_allocations + 1 nodes: free regions are never adjacent);
/// - free regions: size bins (exact below 16, then 16 per octave) found through a two-level
///   bitmap; each bin is a red-black tree ordered by (size, offset), so the best fit is the
///   first node of size >= request in the request's own bin, or else the first node of the next
///   non-empty bin;
/// - allocated regions: a table of buckets hashed by offset, each bucket a red-black tree by
///   offset, so free() finds its node in O(1) expected and O(log n) in the worst case, and takes
///   the neighbours from the address links.
/// Worst case O(log n) for allocate, free and try_reallocate.
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

  /// Throws std::system_error(errc::invalid_argument) if max_allocations is 0 or above 2^30.
  explicit BasicOffsetAllocator(Offset capacity, std::size_t max_allocations = 65536)
      : max_allocations_(max_allocations) {
    if (max_allocations == 0 || max_allocations > (std::size_t{1} << 30)) {
      throw std::system_error(make_error_code(errc::invalid_argument),
                              "bufpool::OffsetAllocator: max_allocations must be in [1, 2^30]");
    }
    node_count_ = static_cast<std::uint32_t>(2 * max_allocations + 2);  // + the sentinel
    nodes_ = std::make_unique<Node[]>(node_count_);
    const std::size_t buckets = std::bit_ceil(std::max<std::size_t>(max_allocations, 2));
    bucket_shift_ = 64 - std::countr_zero(buckets);
    buckets_ = std::make_unique<std::uint32_t[]>(buckets);
    bucket_count_ = buckets;
    reset(capacity);
  }

  BasicOffsetAllocator(const BasicOffsetAllocator&) = delete;
  BasicOffsetAllocator& operator=(const BasicOffsetAllocator&) = delete;

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
    std::uint32_t f = find_fit(size, align);
    if (f == nil) return fail(ec, errc::out_of_memory);
    bin_remove(f);
    const Offset start = align_up(n(f).offset, align);
    if (start != n(f).offset) {  // the alignment gap stays free; the rest goes on below
      const std::uint32_t g = take_node();
      n(g).offset = start;
      n(g).size = n(f).size - (start - n(f).offset);
      n(g).is_free = true;
      n(f).size = start - n(f).offset;
      link_after(f, g);
      bin_insert(f);
      f = g;
    }
    std::uint32_t a = f;
    if (n(f).size > size) {  // split: the allocation takes the front, f keeps the tail
      a = take_node();
      n(a).offset = start;
      n(a).size = size;
      link_before(f, a);
      n(f).offset += size;
      n(f).size -= size;
      bin_insert(f);
    }
    n(a).is_free = false;
    owned_insert(a);
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

  /// Frees an allocation that allocate() returned (or try_reallocate() last resized), merging
  /// it with free neighbours at once. Returns false, changing nothing, if `a` is not a live
  /// allocation of this allocator (a double free, or a wrong size); a size of 0 is a no-op.
  bool free(Allocation a) noexcept {
    if (a.size == 0) return true;
    std::uint32_t x = owned_find(a);
    if (x == nil) return false;
    owned_erase(x);
    const std::uint32_t p = n(x).prev;
    if (p != nil && n(p).is_free) {  // absorb the free region just before
      bin_remove(p);
      n(p).size += n(x).size;
      unlink(x);
      give_node(x);
      x = p;
    }
    const std::uint32_t q = n(x).next;
    if (q != nil && n(q).is_free) {  // and the one just after
      bin_remove(q);
      n(x).size += n(q).size;
      unlink(q);
      give_node(q);
    }
    n(x).is_free = true;
    bin_insert(x);
    available_ += a.size;
    --live_;
    return true;
  }

  /// Resizes an allocation in place: it shrinks (the tail becomes free) or grows into the free
  /// region right after it. Returns the new allocation (same offset), or std::nullopt, changing
  /// nothing, when new_size is 0, `a` is not live, or the space after it is not free or too small.
  std::optional<Allocation> try_reallocate(Allocation a, Offset new_size) noexcept {
    if (new_size == 0 || a.size == 0) return std::nullopt;
    const std::uint32_t x = owned_find(a);
    if (x == nil) return std::nullopt;
    if (new_size == a.size) return a;
    const std::uint32_t q = n(x).next;
    const bool next_free = q != nil && n(q).is_free;
    if (new_size < a.size) {
      const Offset released = a.size - new_size;
      if (next_free) {
        bin_remove(q);
        n(q).offset -= released;
        n(q).size += released;
        bin_insert(q);
      } else {
        const std::uint32_t g = take_node();  // cannot run out: see node_count_
        n(g).offset = a.offset + new_size;
        n(g).size = released;
        n(g).is_free = true;
        link_after(x, g);
        bin_insert(g);
      }
      n(x).size = new_size;
      available_ += released;
      return Allocation{a.offset, new_size};
    }
    const Offset extra = new_size - a.size;
    if (!next_free || n(q).size < extra) return std::nullopt;
    bin_remove(q);
    if (n(q).size == extra) {  // takes the whole neighbour: nothing is left of it
      unlink(q);
      give_node(q);
    } else {
      n(q).offset += extra;
      n(q).size -= extra;
      bin_insert(q);
    }
    n(x).size = new_size;
    available_ -= extra;
    return Allocation{a.offset, new_size};
  }

  /// Extends the range to [0, new_capacity); the new space merges with a free region at the end.
  /// Returns false (changing nothing) if new_capacity is smaller than capacity().
  bool grow(Offset new_capacity) noexcept {
    if (new_capacity < capacity_) return false;
    if (new_capacity == capacity_) return true;
    const Offset added = new_capacity - capacity_;
    if (tail_ != nil && n(tail_).is_free) {
      bin_remove(tail_);
      n(tail_).size += added;
      bin_insert(tail_);
    } else {
      const std::uint32_t g = take_node();
      n(g).offset = capacity_;
      n(g).size = added;
      n(g).is_free = true;
      if (tail_ == nil) {
        n(g).prev = n(g).next = nil;
        head_ = tail_ = g;
      } else {
        link_after(tail_, g);
      }
      bin_insert(g);
    }
    available_ += added;
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
    for (std::size_t w = bin_words; w-- > 0;) {
      if (bin_bits_[w] == 0) continue;
      const std::size_t b = w * 64 + 63 - static_cast<std::size_t>(std::countl_zero(bin_bits_[w]));
      return n(tree().maximum(bin_root_[b])).size;
    }
    return 0;
  }
  std::size_t allocations() const noexcept { return live_; }
  std::size_t free_region_count() const noexcept { return free_regions_; }

  /// Calls f(Region) for every free region in address order. No allocation.
  template <typename F>
  void for_each_free_region(F&& f) const {
    for (std::uint32_t x = head_; x != nil; x = n(x).next)
      if (n(x).is_free) f(Region{n(x).offset, n(x).size});
  }
  /// The free regions in address order (allocates the vector: for reports, not hot paths).
  std::vector<Region> free_regions() const {
    std::vector<Region> out;
    out.reserve(free_regions_);
    for_each_free_region([&](Region r) { out.push_back(r); });
    return out;
  }

 private:
  static constexpr std::uint32_t nil = 0;
  // Size bins: sizes below 16 each have a bin; above, 16 bins per power of two.
  static constexpr unsigned mantissa_bits = 4;
  static constexpr std::size_t bin_count_needed =
      (std::numeric_limits<Offset>::digits - mantissa_bits + 1) << mantissa_bits;
  static constexpr std::size_t bin_words = (bin_count_needed + 63) / 64;
  static_assert(bin_words <= 64, "the top bitmap is one word");

  // One region. Free regions use the tree links for their bin; allocated ones for their bucket.
  struct Node {
    Offset offset = 0;
    Offset size = 0;
    std::uint32_t prev = nil, next = nil;  // address order; `next` also chains unused nodes
    std::uint32_t left = nil, right = nil, parent = nil;
    bool red = false;
    bool is_free = false;
    std::uint16_t bin = 0;
  };
  static_assert(sizeof(Offset) != 4 || sizeof(Node) == 32, "a 32-bit node is 32 bytes");

  static Offset align_up(Offset v, Offset a) noexcept { return (v + a - 1) & ~(a - 1); }
  static Allocation fail(std::error_code& ec, errc e) noexcept {
    ec = make_error_code(e);
    return {};
  }
  static std::uint32_t bin_of(Offset size) noexcept {
    if (size < (Offset{1} << mantissa_bits)) return static_cast<std::uint32_t>(size);
    const unsigned e = static_cast<unsigned>(std::bit_width(size)) - 1;  // >= mantissa_bits
    const auto m = static_cast<std::uint32_t>(size >> (e - mantissa_bits)) &
                   ((1u << mantissa_bits) - 1);
    return ((e - mantissa_bits + 1) << mantissa_bits) | m;
  }

  Node& n(std::uint32_t i) noexcept { return nodes_[i]; }
  const Node& n(std::uint32_t i) const noexcept { return nodes_[i]; }
  detail::IndexRbTree<Node> tree() const noexcept { return detail::IndexRbTree<Node>(nodes_.get()); }

  // --- free regions: bins ---------------------------------------------------------------------
  void bin_insert(std::uint32_t x) noexcept {
    const std::uint32_t b = bin_of(n(x).size);
    n(x).bin = static_cast<std::uint16_t>(b);
    const Node* base = nodes_.get();
    tree().insert(bin_root_[b], x, [base](std::uint32_t l, std::uint32_t r) {
      return base[l].size < base[r].size ||
             (base[l].size == base[r].size && base[l].offset < base[r].offset);
    });
    bin_bits_[b / 64] |= std::uint64_t{1} << (b % 64);
    bin_top_ |= std::uint64_t{1} << (b / 64);
    ++free_regions_;
  }
  void bin_remove(std::uint32_t x) noexcept {
    const std::uint32_t b = n(x).bin;
    tree().erase(bin_root_[b], x);
    if (bin_root_[b] == nil) {
      bin_bits_[b / 64] &= ~(std::uint64_t{1} << (b % 64));
      if (bin_bits_[b / 64] == 0) bin_top_ &= ~(std::uint64_t{1} << (b / 64));
    }
    --free_regions_;
  }
  // The first non-empty bin at or above b, or bin_count.
  std::size_t next_bin(std::size_t b) const noexcept {
    if (b >= bin_count) return bin_count;
    std::size_t w = b / 64;
    const std::uint64_t here = bin_bits_[w] & (~std::uint64_t{0} << (b % 64));
    if (here != 0) return w * 64 + static_cast<std::size_t>(std::countr_zero(here));
    if (w + 1 >= 64) return bin_count;
    const std::uint64_t above = bin_top_ & (~std::uint64_t{0} << (w + 1));
    if (above == 0) return bin_count;
    w = static_cast<std::size_t>(std::countr_zero(above));
    return w * 64 + static_cast<std::size_t>(std::countr_zero(bin_bits_[w]));
  }
  // The smallest free region of at least `size` (lowest offset on a tie), or nil.
  std::uint32_t lower_bound(Offset size) const noexcept {
    std::size_t b = bin_of(size);
    if (bin_root_[b] != nil) {  // this bin may also hold regions smaller than `size`
      std::uint32_t best = nil;
      for (std::uint32_t x = bin_root_[b]; x != nil;) {
        if (n(x).size >= size) {
          best = x;
          x = n(x).left;
        } else {
          x = n(x).right;
        }
      }
      if (best != nil) return best;
    }
    b = next_bin(b + 1);
    return b == bin_count ? nil : tree().minimum(bin_root_[b]);
  }
  // The free region after x in (size, offset) order, or nil.
  std::uint32_t next_by_size(std::uint32_t x) const noexcept {
    const std::uint32_t s = tree().successor(x);
    if (s != nil) return s;
    const std::size_t b = next_bin(std::size_t{n(x).bin} + 1);
    return b == bin_count ? nil : tree().minimum(bin_root_[b]);
  }
  std::uint32_t find_fit(Offset size, Offset align) const noexcept {
    std::uint32_t x = lower_bound(size);
    if (align == 1) return x;
    // A region of at least size + align - 1 always fits. Below that, whether a region fits
    // depends on where it starts: look at up to 16 of them in best-fit order, then take the
    // smallest region that fits for sure, so the search stays O(log n).
    for (int i = 0; i < 16 && x != nil; ++i, x = next_by_size(x)) {
      const Offset slack = n(x).size - size;
      if (slack >= align - 1 || align_up(n(x).offset, align) - n(x).offset <= slack) return x;
    }
    if (size > std::numeric_limits<Offset>::max() - (align - 1)) return nil;
    return lower_bound(size + align - 1);
  }

  // --- allocated regions: buckets by offset ------------------------------------------------
  std::uint32_t& bucket(Offset offset) noexcept {
    return buckets_[(static_cast<std::uint64_t>(offset) * 0x9E3779B97F4A7C15ull) >> bucket_shift_];
  }
  void owned_insert(std::uint32_t x) noexcept {
    const Node* base = nodes_.get();
    tree().insert(bucket(n(x).offset), x, [base](std::uint32_t l, std::uint32_t r) {
      return base[l].offset < base[r].offset;
    });
  }
  void owned_erase(std::uint32_t x) noexcept { tree().erase(bucket(n(x).offset), x); }
  std::uint32_t owned_find(Allocation a) noexcept {
    std::uint32_t x = bucket(a.offset);
    while (x != nil && n(x).offset != a.offset)
      x = a.offset < n(x).offset ? n(x).left : n(x).right;
    return x != nil && n(x).size == a.size ? x : nil;
  }

  // --- nodes and address order ----------------------------------------------------------------
  std::uint32_t take_node() noexcept {
    // Never empty: regions never outnumber 2 * live + 1 and live <= max_allocations_.
    const std::uint32_t x = unused_;
    unused_ = n(x).next;
    return x;
  }
  void give_node(std::uint32_t x) noexcept {
    n(x).next = unused_;
    unused_ = x;
  }
  void link_after(std::uint32_t x, std::uint32_t y) noexcept {  // y goes right after x
    n(y).prev = x;
    n(y).next = n(x).next;
    if (n(x).next != nil) n(n(x).next).prev = y;
    else tail_ = y;
    n(x).next = y;
  }
  void link_before(std::uint32_t x, std::uint32_t y) noexcept {  // y goes right before x
    n(y).next = x;
    n(y).prev = n(x).prev;
    if (n(x).prev != nil) n(n(x).prev).next = y;
    else head_ = y;
    n(x).prev = y;
  }
  void unlink(std::uint32_t x) noexcept {
    if (n(x).prev != nil) n(n(x).prev).next = n(x).next;
    else head_ = n(x).next;
    if (n(x).next != nil) n(n(x).next).prev = n(x).prev;
    else tail_ = n(x).prev;
  }

  void reset(Offset capacity) noexcept {
    unused_ = nil;
    for (std::uint32_t i = node_count_ - 1; i > 0; --i)
      give_node(i);
    nodes_[nil] = Node{};
    std::fill_n(buckets_.get(), bucket_count_, nil);
    std::fill_n(bin_root_, bin_count, nil);
    std::fill_n(bin_bits_, bin_words, 0);
    bin_top_ = 0;
    head_ = tail_ = nil;
    free_regions_ = 0;
    capacity_ = 0;
    available_ = 0;
    live_ = 0;
    grow(capacity);
  }

  static constexpr std::size_t bin_count = bin_count_needed;

  std::unique_ptr<Node[]> nodes_;
  std::uint32_t node_count_ = 0;
  std::uint32_t unused_ = nil;  // chain of unused nodes, through `next`
  std::uint32_t head_ = nil, tail_ = nil;
  std::uint32_t bin_root_[bin_count];
  std::uint64_t bin_bits_[bin_words];
  std::uint64_t bin_top_ = 0;
  std::unique_ptr<std::uint32_t[]> buckets_;
  std::size_t bucket_count_ = 0;
  int bucket_shift_ = 64;
  std::size_t max_allocations_;
  std::size_t free_regions_ = 0;
  std::size_t live_ = 0;
  Offset capacity_ = 0;
  Offset available_ = 0;
};

using OffsetAllocator = BasicOffsetAllocator<std::uint32_t>;
using OffsetAllocator64 = BasicOffsetAllocator<std::uint64_t>;

static_assert(sizeof(OffsetAllocator::Allocation) == 8, "the 32-bit Allocation is 8 bytes");

}  // namespace bufpool
