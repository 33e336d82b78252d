// OffsetAllocator: best fit with immediate coalescing, over a range it never touches.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
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

/// Manages the range [0, capacity) of memory that it never touches (a metadata arena, a device
/// buffer, a file). Placement is exact best fit: the smallest free region that holds the request,
/// the lowest offset among equal sizes. free() coalesces with both neighbours at once.
///
/// Metadata, all reserved at construction for `max_allocations` live allocations (in zero-filled
/// pages that become resident only as they are used), so allocate and free never call the heap:
/// - one node per region, free or allocated, linked in address order (at most
///   2 * max_allocations + 1 nodes: free regions are never adjacent), so free() reads its two
///   neighbours directly;
/// - free regions: a class per exact size below 4,096, each a leftist heap by offset whose root
///   is the lowest offset of that size; above, bins of 16 per power of two, each a red-black
///   tree with one node per distinct size (the root of that size's heap). A two-level bitmap
///   finds the first non-empty class at or above a request: its root is the best fit;
/// - allocated regions: a table of 7-slot buckets by offset (home bucket, then its buddy, then an
///   overflow red-black tree), so free() finds the node of `{offset, size}` in bounded time and
///   refuses what is not live.
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
    // Metadata for the worst case, in zero-filled pages that cost memory only once used: nodes
    // are handed out from a high-water mark, so a large max_allocations is cheap until needed.
    node_count_ = static_cast<std::uint32_t>(2 * max_allocations + 2);  // + the sentinel
    nodes_ = detail::ZeroedArray<Node>(node_count_);
    links_ = detail::ZeroedArray<Link>(node_count_);
    // At most max_allocations keys in 7 slots per bucket: at most 6/7 full.
    bucket_count_ = std::bit_ceil(std::max<std::size_t>((max_allocations + 5) / 6, 2));
    bucket_shift_ = 64 - std::countr_zero(bucket_count_);
    buckets_ = detail::ZeroedArray<Bucket>(bucket_count_);
    start_empty(capacity);
  }

  BasicOffsetAllocator(const BasicOffsetAllocator&) = delete;
  BasicOffsetAllocator& operator=(const BasicOffsetAllocator&) = delete;

  /// Allocates `size` units aligned to `align` (a power of two). A size of 0 gives {0, 0} and
  /// takes nothing. Errors: invalid_argument (align), too_large (above capacity()),
  /// out_of_memory (no free region fits, or max_allocations reached). Never throws.
  Allocation try_allocate(Offset size, Offset align, std::error_code& ec) noexcept {
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

  /// As try_allocate(size, align, ec), with std::nullopt for any failure.
  std::optional<Allocation> try_allocate(Offset size, Offset align = 1) noexcept {
    std::error_code ec;
    Allocation a = try_allocate(size, align, ec);
    if (ec) return std::nullopt;
    return a;
  }
  /// As try_allocate(size, align, ec), but throws std::system_error with the bufpool::errc.
  Allocation allocate(Offset size, Offset align = 1) {
    std::error_code ec;
    Allocation a = try_allocate(size, align, ec);
    if (ec) throw std::system_error(ec, "bufpool::OffsetAllocator");
    return a;
  }

  /// Frees an allocation that allocate() returned (or try_reallocate() last resized), merging
  /// it with free neighbours at once. Returns false, changing nothing, if `a` is not a live
  /// allocation of this allocator (a double free, or a wrong size); a size of 0 is a no-op.
  bool free(Allocation a) noexcept {
    if (a.size == 0) return true;
    const Found found = owned_find(a);
    std::uint32_t x = found.node;
    if (x == nil) return false;
    owned_erase(found);
    // Both neighbours are read before either is touched, so their loads overlap. The sentinel
    // (index 0, where the range ends) is never free.
    const std::uint32_t p = n(x).prev, q = n(x).next;
    const bool p_free = n(p).is_free, q_free = n(q).is_free;
    if (q_free) {  // absorb the free region just after
      bin_remove(q);
      n(x).size += n(q).size;
      unlink(q);
      give_node(q);
    }
    if (p_free) {  // and the one just before
      bin_remove(p);
      n(p).size += n(x).size;
      unlink(x);
      give_node(x);
      x = p;
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
    const std::uint32_t x = owned_find(a).node;
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
    const std::size_t b = bins_.last();
    if (b == bin_count) return 0;
    return b < exact_limit ? static_cast<Offset>(b) : n(tree().maximum(root_[b])).size;
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
  friend struct detail::OffsetAllocatorInspector;
  static constexpr std::uint32_t nil = 0;
  // Size classes. Sizes below exact_limit each have a class of their own: a leftist heap of
  // its free regions by offset, whose root (the lowest offset) is root_[size]. Larger sizes fall
  // into bins, 16 per power of two; a bin's root_ is a red-black tree by size with one node per
  // distinct size, that node being the root of the heap of that size.
  static constexpr std::size_t exact_limit = 4096;
  static constexpr unsigned exact_bits = 12;  // log2(exact_limit)
  static constexpr unsigned mantissa_bits = 4;
  static constexpr std::size_t bin_count =
      exact_limit + ((std::numeric_limits<Offset>::digits - exact_bits) << mantissa_bits);

  // One region, 32 bytes for 32-bit offsets: what every operation reads. A free region is in
  // the heap of its exact size (heap links).
  struct Node {
    Offset offset = 0;
    Offset size = 0;
    std::uint32_t prev = nil, next = nil;  // address order; `next` also chains unused nodes
    std::uint32_t hleft = nil, hright = nil, hparent = nil;  // leftist heap by offset
    // Leftist heap ranks of the two children (a node's own rank is rrank + 1, an empty heap's
    // is 0). Kept in the parent so that restoring the shape never loads a left child.
    std::uint8_t lrank = 0, rrank = 0;
    bool is_free = false;
  };
  static_assert(sizeof(Offset) != 4 || sizeof(Node) == 32, "a 32-bit node is 32 bytes");
  // Red-black links, apart from Node because few regions need them: the root of a heap of a
  // size at or above exact_limit (in its bin's tree), and an allocation in the overflow tree.
  struct Link {
    std::uint32_t left = nil, right = nil, parent = nil;
    bool red = false;
  };

  static Offset align_up(Offset v, Offset a) noexcept { return (v + a - 1) & ~(a - 1); }
  static Allocation fail(std::error_code& ec, errc e) noexcept {
    ec = make_error_code(e);
    return {};
  }
  static std::uint32_t bin_of(Offset size) noexcept {
    if (size < exact_limit) return static_cast<std::uint32_t>(size);
    const unsigned e = static_cast<unsigned>(std::bit_width(size)) - 1;  // >= exact_bits
    const auto m =
        static_cast<std::uint32_t>(size >> (e - mantissa_bits)) & ((1u << mantissa_bits) - 1);
    return static_cast<std::uint32_t>(exact_limit) + (((e - exact_bits) << mantissa_bits) | m);
  }
  // The lowest-offset region of the smallest size class in bin b (a non-empty bin).
  std::uint32_t first_of_bin(std::size_t b) const noexcept {
    return b < exact_limit ? root_[b] : tree().minimum(root_[b]);
  }

  Node& n(std::uint32_t i) noexcept { return nodes_[i]; }
  const Node& n(std::uint32_t i) const noexcept { return nodes_[i]; }
  detail::IndexRbTree<Link> tree() const noexcept {
    return detail::IndexRbTree<Link>(links_.get());
  }
  Link& l(std::uint32_t i) noexcept { return links_[i]; }
  const Link& l(std::uint32_t i) const noexcept { return links_[i]; }

  // --- free regions: bins of size classes, each class a heap by offset -------------------------
  // Two descents of a bin tree are shallow: it holds one node per distinct free size in the bin.
  // The heap makes the common insert cheap (a walk down its short right spine) even when
  // thousands of free regions share one size, where a tree by (size, offset) would be deep.
  void bin_insert(std::uint32_t x) noexcept {
    const Offset size = n(x).size;
    const std::uint32_t b = bin_of(size);
    n(x).hleft = n(x).hright = n(x).hparent = nil;
    n(x).lrank = n(x).rrank = 0;
    ++free_regions_;
    if (b < exact_limit) {
      if (root_[b] == nil) bins_.set(b);
      root_[b] = heap_merge(root_[b], x);
      return;
    }
    std::uint32_t c = root_[b];
    while (c != nil && n(c).size != size)
      c = size < n(c).size ? l(c).left : l(c).right;
    if (c == nil) {  // a new size class: x is its heap and its tree node
      const Node* base = nodes_.get();
      tree().insert(root_[b], x, [base](std::uint32_t l, std::uint32_t r) {
        return base[l].size < base[r].size;
      });
      bins_.set(b);
    } else {
      const std::uint32_t root = heap_merge(c, x);
      if (root != c) tree().replace(root_[b], c, root);  // x has the new lowest offset
    }
  }
  void bin_remove(std::uint32_t x) noexcept {
    --free_regions_;
    const std::uint32_t rest = heap_merge(n(x).hleft, n(x).hright);
    const std::uint32_t p = n(x).hparent;
    if (p != nil) {  // inside its heap
      const bool left = n(p).hleft == x;
      (left ? n(p).hleft : n(p).hright) = rest;
      if (rest != nil) n(rest).hparent = p;
      heap_fix_ranks(p, left, heap_rank(rest));
      return;
    }
    // x is the lowest offset of its size: whatever is left of the heap takes its place.
    const std::uint32_t b = bin_of(n(x).size);
    if (rest != nil) n(rest).hparent = nil;
    if (b < exact_limit) {
      root_[b] = rest;
      if (rest == nil) bins_.clear(b);
    } else if (rest != nil) {
      tree().replace(root_[b], x, rest);
    } else {
      tree().erase(root_[b], x);
      if (root_[b] == nil) bins_.clear(b);
    }
  }
  // Leftist heap: merges two heaps along their right spines (each at most log2(n + 1) long),
  // then restores ranks and the left-heavy shape back up the merged spine.
  std::uint32_t heap_merge(std::uint32_t a, std::uint32_t b) noexcept {
    if (a == nil) return b;
    if (b == nil) return a;
    if (n(b).offset < n(a).offset) std::swap(a, b);
    const std::uint32_t root = a;
    for (;;) {  // b is still to merge into the right subtree of a
      const std::uint32_t r = n(a).hright;
      if (r == nil) {
        n(a).hright = b;
        n(b).hparent = a;
        break;
      }
      if (n(b).offset < n(r).offset) {
        n(a).hright = b;
        n(b).hparent = a;
        a = b;
        b = r;
      } else {
        a = r;
      }
    }
    std::uint8_t child = heap_rank(b);  // the path runs through right children
    for (std::uint32_t x = a;; x = n(x).hparent) {
      Node& node = n(x);
      node.rrank = child;
      if (node.lrank < node.rrank) {
        std::swap(node.hleft, node.hright);
        std::swap(node.lrank, node.rrank);
      }
      child = static_cast<std::uint8_t>(node.rrank + 1);
      if (x == root) return root;
    }
  }
  std::uint8_t heap_rank(std::uint32_t x) const noexcept {
    return x == nil ? 0 : static_cast<std::uint8_t>(n(x).rrank + 1);
  }
  // After p's left (or right) subtree changed to one of rank `rank`: restores the left-heavy
  // shape and the cached ranks from p up, as far as p's rank changes.
  void heap_fix_ranks(std::uint32_t p, bool left, std::uint8_t rank) noexcept {
    for (;;) {
      Node& node = n(p);
      const auto before = static_cast<std::uint8_t>(node.rrank + 1);
      (left ? node.lrank : node.rrank) = rank;
      if (node.lrank < node.rrank) {
        std::swap(node.hleft, node.hright);
        std::swap(node.lrank, node.rrank);
      }
      rank = static_cast<std::uint8_t>(node.rrank + 1);
      const std::uint32_t up = node.hparent;
      if (rank == before || up == nil) return;
      left = n(up).hleft == p;
      p = up;
    }
  }
  // The smallest free size class of at least `size`: its lowest-offset region, or nil.
  std::uint32_t lower_bound(Offset size) const noexcept {
    std::size_t b = bin_of(size);
    if (b >= exact_limit) {  // a bin of many sizes, some maybe smaller than `size`
      std::uint32_t best = nil;
      for (std::uint32_t x = root_[b]; x != nil;) {
        if (n(x).size >= size) {
          best = x;
          x = l(x).left;
        } else {
          x = l(x).right;
        }
      }
      if (best != nil) return best;
      ++b;
    }
    b = bins_.next(b);
    return b == bin_count ? nil : first_of_bin(b);
  }
  // The next larger size class after the class whose lowest-offset region is x, or nil.
  std::uint32_t next_class(std::uint32_t x) const noexcept {
    const std::size_t b = bin_of(n(x).size);
    if (b >= exact_limit) {
      const std::uint32_t s = tree().successor(x);
      if (s != nil) return s;
    }
    const std::size_t next = bins_.next(b + 1);
    return next == bin_count ? nil : first_of_bin(next);
  }
  std::uint32_t find_fit(Offset size, Offset align) const noexcept {
    std::uint32_t x = lower_bound(size);
    if (align == 1) return x;
    // A region of at least size + align - 1 always fits. Below that, whether a region fits
    // depends on where it starts: try the lowest-offset region of each of the next 16 size
    // classes, then take the smallest region that fits for sure, so the search stays O(log n).
    for (int i = 0; i < 16 && x != nil; ++i, x = next_class(x)) {
      const Offset slack = n(x).size - size;
      if (slack >= align - 1 || align_up(n(x).offset, align) - n(x).offset <= slack) return x;
    }
    if (size > std::numeric_limits<Offset>::max() - (align - 1)) return nil;
    return lower_bound(size + align - 1);
  }

  // --- allocated regions: a table by offset ----------------------------------------------------
  // Buckets of 7 slots, one cache line for 32-bit offsets, at most 6/7 full. A key lives in its
  // home bucket, or in the buddy bucket (home ^ 1) when home was full, which the home bucket
  // counts in `spilled`; when both are full it goes to an overflow red-black tree by offset (the
  // tree links are free in an allocated node). No probing runs and no moves, so lookup, insert
  // and erase are bounded: at most 14 slots plus O(log n) in the overflow tree, which Fibonacci
  // hashing leaves empty in practice.
  struct alignas(64) Bucket {
    static constexpr unsigned size = 7;
    Offset key[size];
    std::uint32_t node[size];
    std::uint8_t used = 0;     // bit i: slot i holds a key
    std::uint8_t spilled = 0;  // keys of this home stored in the buddy bucket
    // The used slots whose key is k, as bits. Branch-free: the compares vectorise.
    unsigned match(Offset k) const noexcept {
      unsigned m = 0;
      for (unsigned i = 0; i < size; ++i)
        m |= static_cast<unsigned>(key[i] == k) << i;
      return m & used;
    }
  };
  struct Found {
    std::uint32_t node = nil;
    Bucket* bucket = nullptr;  // nullptr: in the overflow tree
    unsigned slot = 0;
    std::size_t home = 0;
  };

  std::size_t home(Offset key) const noexcept {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(key) * 0x9E3779B97F4A7C15ull) >>
                                    bucket_shift_);
  }
  static bool put(Bucket& b, Offset key, std::uint32_t x) noexcept {
    const unsigned free_slots = ~unsigned{b.used} & ((1u << Bucket::size) - 1);
    if (free_slots == 0) return false;
    const unsigned i = static_cast<unsigned>(std::countr_zero(free_slots));
    b.key[i] = key;
    b.node[i] = x;
    b.used = static_cast<std::uint8_t>(b.used | (1u << i));
    return true;
  }
  void owned_insert(std::uint32_t x) noexcept {
    const Offset key = n(x).offset;
    const std::size_t h = home(key);
    if (put(buckets_[h], key, x)) return;
    if (put(buckets_[h ^ 1], key, x)) {
      ++buckets_[h].spilled;
      return;
    }
    const Node* base = nodes_.get();
    tree().insert(overflow_root_, x, [base](std::uint32_t a, std::uint32_t b) {
      return base[a].offset < base[b].offset;
    });
    ++overflow_count_;
  }
  // The node of live allocation a (nil if there is none) and where its key is.
  Found owned_find(Allocation a) noexcept {
    Found f;
    f.home = home(a.offset);
    Bucket* b = &buckets_[f.home];
    unsigned m = b->match(a.offset);
    if (m == 0 && b->spilled != 0) {
      b = &buckets_[f.home ^ 1];
      m = b->match(a.offset);
    }
    if (m != 0) {
      f.bucket = b;
      f.slot = static_cast<unsigned>(std::countr_zero(m));
      f.node = b->node[f.slot];
    } else if (overflow_count_ != 0) {
      std::uint32_t x = overflow_root_;
      while (x != nil && n(x).offset != a.offset)
        x = a.offset < n(x).offset ? l(x).left : l(x).right;
      f.node = x;
    }
    if (f.node != nil && n(f.node).size != a.size) f.node = nil;
    return f;
  }
  void owned_erase(const Found& f) noexcept {
    if (f.bucket == nullptr) {
      tree().erase(overflow_root_, f.node);
      --overflow_count_;
      return;
    }
    f.bucket->used = static_cast<std::uint8_t>(f.bucket->used & ~(1u << f.slot));
    if (f.bucket != &buckets_[f.home]) --buckets_[f.home].spilled;
  }

  // --- nodes and address order ----------------------------------------------------------------
  std::uint32_t take_node() noexcept {
    // Never runs out: regions never outnumber 2 * live + 1 and live <= max_allocations_.
    if (unused_ == nil) return fresh_++;  // a node never used: zero pages until now
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
    if (n(x).next != nil)
      n(n(x).next).prev = y;
    else
      tail_ = y;
    n(x).next = y;
  }
  void link_before(std::uint32_t x, std::uint32_t y) noexcept {  // y goes right before x
    n(y).next = x;
    n(y).prev = n(x).prev;
    if (n(x).prev != nil)
      n(n(x).prev).next = y;
    else
      head_ = y;
    n(x).prev = y;
  }
  void unlink(std::uint32_t x) noexcept {
    if (n(x).prev != nil)
      n(n(x).prev).next = n(x).next;
    else
      head_ = n(x).next;
    if (n(x).next != nil)
      n(n(x).next).prev = n(x).prev;
    else
      tail_ = n(x).prev;
  }

  void reset(Offset capacity) noexcept {
    nodes_.zero();  // also gives the pages back
    links_.zero();
    buckets_.zero();
    start_empty(capacity);
  }
  // The state of a new allocator over zeroed metadata: every bucket empty, no node used.
  void start_empty(Offset capacity) noexcept {
    unused_ = nil;
    fresh_ = 1;  // node 0 is the sentinel
    overflow_root_ = nil;
    overflow_count_ = 0;
    root_.fill(nil);
    bins_.reset();
    head_ = tail_ = nil;
    free_regions_ = 0;
    capacity_ = 0;
    available_ = 0;
    live_ = 0;
    grow(capacity);
  }

  detail::ZeroedArray<Node> nodes_;
  detail::ZeroedArray<Link> links_;
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
};

using OffsetAllocator = BasicOffsetAllocator<std::uint32_t>;
using OffsetAllocator64 = BasicOffsetAllocator<std::uint64_t>;

static_assert(sizeof(OffsetAllocator::Allocation) == 8, "the 32-bit Allocation is 8 bytes");

}  // namespace bufpool
