// BasicOffsetAllocator's code, compiled once for each offset type (see offset_allocator.hpp).
#include "bufpool/offset_allocator.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <utility>

// The helpers of the two hot paths (allocate_as, release_as) go inline into them: the paths are
// a few dependent loads each, and a call per helper would be a good part of their time.
#define BUFPOOL_HOT_INLINE [[gnu::always_inline]] inline

namespace bufpool {

namespace {
template <typename Offset>
Offset align_up(Offset v, Offset a) noexcept {
  return (v + a - 1) & ~(a - 1);
}
}  // namespace

template <typename Offset>
BasicOffsetAllocator<Offset>::BasicOffsetAllocator(Offset capacity,
                                                   const OffsetAllocatorOptions& options)
    : max_allocations_(options.max_allocations),
      placement_(options.placement),
      lookup_by_offset_(options.lookup_by_offset) {
  const std::size_t max = options.max_allocations;
  if (max == 0 || max > (std::size_t{1} << 30)) {
    throw std::system_error(make_error_code(errc::invalid_argument),
                            "bufpool::OffsetAllocator: max_allocations must be in [1, 2^30]");
  }
  // Metadata for the worst case, in zero-filled pages that cost memory only once used: nodes
  // are handed out from a high-water mark, so a large max_allocations is cheap until needed.
  node_count_ = static_cast<std::uint32_t>(2 * max + 2);  // + the sentinel
  nodes_ = detail::ZeroedArray<Node>(node_count_);
  states_ = detail::ZeroedArray<State>(node_count_);
  links_ = detail::ZeroedArray<Link>(node_count_);
  if (lookup_by_offset_) {
    // At most max_allocations keys in 7 slots per bucket: at most 6/7 full.
    bucket_count_ = std::bit_ceil(std::max<std::size_t>((max + 5) / 6, 2));
    bucket_shift_ = 64 - std::countr_zero(bucket_count_);
    buckets_ = detail::ZeroedArray<Bucket>(bucket_count_);
  }
  start_empty(capacity);
}

template <typename Offset>
auto BasicOffsetAllocator<Offset>::try_allocate_handle(Offset size, Offset align,
                                                       std::error_code& ec) noexcept -> Handle {
  // One branch on the placement per call; below it, each placement's code is its own.
  return placement_ == Placement::exact ? allocate_as<Placement::exact>(size, align, ec)
                                        : allocate_as<Placement::good_fit>(size, align, ec);
}

template <typename Offset>
template <Placement P>
auto BasicOffsetAllocator<Offset>::allocate_as(Offset size, Offset align,
                                               std::error_code& ec) noexcept -> Handle {
  auto fail = [&ec](errc e) {
    ec = make_error_code(e);
    return Handle{};
  };
  if (align == 0 || (align & (align - 1)) != 0) return fail(errc::invalid_argument);
  if (size == 0) {
    ec.clear();
    return {};
  }
  if (size > capacity_) return fail(errc::too_large);
  if (live_ == max_allocations_) return fail(errc::out_of_memory);
  std::uint32_t f = P == Placement::exact ? find_fit(size, align) : find_good_fit(size, align);
  if (f == nil) return fail(errc::out_of_memory);
  bin_remove<P>(f);
  const Offset start = align_up(n(f).offset, align);
  if (start != n(f).offset) {  // the alignment gap stays free; the rest goes on below
    const std::uint32_t g = take_node();
    n(g).offset = start;
    n(g).size = n(f).size - (start - n(f).offset);
    set_state(g, free_region);
    n(f).size = start - n(f).offset;
    link_after(f, g);
    bin_insert<P>(f);
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
    bin_insert<P>(f);
  }
  set_state(a, live_region);
  if (lookup_by_offset_) owned_insert(a);
  available_ -= size;
  ++live_;
  ec.clear();
  return {start, size, a};
}

template <typename Offset>
auto BasicOffsetAllocator<Offset>::allocate_handle(Offset size, Offset align) -> Handle {
  std::error_code ec;
  Handle h = try_allocate_handle(size, align, ec);
  if (ec) throw std::system_error(ec, "bufpool::OffsetAllocator");
  return h;
}

template <typename Offset>
bool BasicOffsetAllocator<Offset>::free(Allocation a) noexcept {
  if (a.size == 0) return true;
  if (!lookup_by_offset_) return false;
  const Found found = owned_find(a);
  if (found.node == nil) return false;
  owned_erase(found);
  return release(found.node);
}

template <typename Offset>
bool BasicOffsetAllocator<Offset>::free(Handle h) noexcept {
  if (h.size == 0) return true;
  const std::uint32_t x = h.node;
  if (x == nil || x >= fresh_ || !is_live(x) || n(x).offset != h.offset || n(x).size != h.size)
    return false;
  if (lookup_by_offset_) {
    const Found found = owned_find(h.allocation());
    if (found.node != x) return false;
    owned_erase(found);
  }
  return release(x);
}

// Frees allocated node x (already out of the table).
template <typename Offset>
BUFPOOL_HOT_INLINE bool BasicOffsetAllocator<Offset>::release(std::uint32_t x) noexcept {
  return placement_ == Placement::exact ? release_as<Placement::exact>(x)
                                        : release_as<Placement::good_fit>(x);
}

template <typename Offset>
template <Placement P>
bool BasicOffsetAllocator<Offset>::release_as(std::uint32_t x) noexcept {
  const Offset size = n(x).size;
  // Both neighbours are read before either is touched, so their loads overlap. The sentinel
  // (index 0, where the range ends) is never free.
  const std::uint32_t p = n(x).prev, q = n(x).next;
  const bool p_free = is_free(p), q_free = is_free(q);
  // The merged region keeps one node (p's if p is free, else x's) and is linked to what
  // follows it once, whatever was absorbed.
  std::uint32_t after = q;
  Offset merged = size;
  if (q_free) {  // absorb the free region just after
    bin_remove<P>(q);
    merged += n(q).size;
    after = n(q).next;
    give_node(q);
  }
  if (p_free) {  // and the one just before
    bin_remove<P>(p);
    n(p).size += merged;
    give_node(x);
    x = p;
  } else {
    n(x).size = merged;
  }
  if (p_free || q_free) {
    n(x).next = after;
    if (after != nil)
      n(after).prev = x;
    else
      tail_ = x;
  }
  set_state(x, free_region);
  bin_insert<P>(x);
  available_ += size;
  --live_;
  return true;
}

template <typename Offset>
auto BasicOffsetAllocator<Offset>::try_reallocate(Allocation a, Offset new_size) noexcept
    -> std::optional<Allocation> {
  if (new_size == 0 || a.size == 0 || !lookup_by_offset_) return std::nullopt;
  const std::uint32_t x = owned_find(a).node;
  if (x == nil) return std::nullopt;
  return resize(x, a, new_size);
}

template <typename Offset>
auto BasicOffsetAllocator<Offset>::try_reallocate(Handle h, Offset new_size) noexcept
    -> std::optional<Handle> {
  const std::uint32_t x = h.node;
  if (new_size == 0 || h.size == 0 || x == nil || x >= fresh_ || !is_live(x) ||
      n(x).offset != h.offset || n(x).size != h.size)
    return std::nullopt;
  const auto a = resize(x, h.allocation(), new_size);
  if (!a) return std::nullopt;
  return Handle{a->offset, a->size, x};  // the table's key (the offset) does not change
}

template <typename Offset>
auto BasicOffsetAllocator<Offset>::resize(std::uint32_t x, Allocation a, Offset new_size) noexcept
    -> std::optional<Allocation> {
  if (new_size == a.size) return a;
  const std::uint32_t q = n(x).next;
  const bool next_free = q != nil && is_free(q);
  if (new_size < a.size) {
    const Offset released = a.size - new_size;
    if (next_free) {
      bin_remove_any(q);
      n(q).offset -= released;
      n(q).size += released;
      bin_insert_any(q);
    } else {
      const std::uint32_t g = take_node();  // cannot run out: see node_count_
      n(g).offset = a.offset + new_size;
      n(g).size = released;
      set_state(g, free_region);
      link_after(x, g);
      bin_insert_any(g);
    }
    n(x).size = new_size;
    available_ += released;
    return Allocation{a.offset, new_size};
  }
  const Offset extra = new_size - a.size;
  if (!next_free || n(q).size < extra) return std::nullopt;
  bin_remove_any(q);
  if (n(q).size == extra) {  // takes the whole neighbour: nothing is left of it
    unlink(q);
    give_node(q);
  } else {
    n(q).offset += extra;
    n(q).size -= extra;
    bin_insert_any(q);
  }
  n(x).size = new_size;
  available_ -= extra;
  return Allocation{a.offset, new_size};
}

template <typename Offset>
bool BasicOffsetAllocator<Offset>::grow(Offset new_capacity) noexcept {
  if (new_capacity < capacity_) return false;
  if (new_capacity == capacity_) return true;
  const Offset added = new_capacity - capacity_;
  if (tail_ != nil && is_free(tail_)) {
    bin_remove_any(tail_);
    n(tail_).size += added;
    bin_insert_any(tail_);
  } else {
    const std::uint32_t g = take_node();
    n(g).offset = capacity_;
    n(g).size = added;
    set_state(g, free_region);
    if (tail_ == nil) {
      n(g).prev = n(g).next = nil;
      head_ = tail_ = g;
    } else {
      link_after(tail_, g);
    }
    bin_insert_any(g);
  }
  available_ += added;
  capacity_ = new_capacity;
  return true;
}

template <typename Offset>
Offset BasicOffsetAllocator<Offset>::largest_available() const noexcept {
  const std::size_t b = bins_.last();
  if (b == bin_count) return 0;
  if (placement_ == Placement::exact) {
    if (b < exact_limit) return static_cast<Offset>(b);
    return n(tree().maximum(root_[b])).size;
  }
  Offset largest = 0;  // good fit: the class is a list
  for (std::uint32_t x = root_[b]; x != nil; x = n(x).hright)
    largest = std::max(largest, n(x).size);
  return largest;
}

template <typename Offset>
auto BasicOffsetAllocator<Offset>::free_regions() const -> std::vector<Region> {
  std::vector<Region> out;
  out.reserve(free_regions_);
  for_each_free_region([&](Region r) { out.push_back(r); });
  return out;
}

template <typename Offset>
BUFPOOL_HOT_INLINE std::uint32_t BasicOffsetAllocator<Offset>::bin_of(Offset size) noexcept {
  if (size < exact_limit) return static_cast<std::uint32_t>(size);
  const unsigned e = static_cast<unsigned>(std::bit_width(size)) - 1;  // >= exact_bits
  const auto m =
      static_cast<std::uint32_t>(size >> (e - mantissa_bits)) & ((1u << mantissa_bits) - 1);
  return static_cast<std::uint32_t>(exact_limit) + (((e - exact_bits) << mantissa_bits) | m);
}

// Good fit's classes: exact below 8, then 8 per power of two (a 3-bit mantissa). Fewer and
// wider than exact placement's, so the few list heads that take most traffic stay in cache.
template <typename Offset>
BUFPOOL_HOT_INLINE std::uint32_t BasicOffsetAllocator<Offset>::good_class_of(Offset size) noexcept {
  if (size < 8) return static_cast<std::uint32_t>(size);
  const unsigned e = static_cast<unsigned>(std::bit_width(size)) - 1;  // >= 3
  const auto m = static_cast<std::uint32_t>(size >> (e - 3)) & 7u;
  return 8 + (((e - 3) << 3) | m);
}

// The lowest-offset region of the smallest size class in bin b (a non-empty bin; exact).
template <typename Offset>
std::uint32_t BasicOffsetAllocator<Offset>::first_of_bin(std::size_t b) const noexcept {
  return b < exact_limit ? root_[b] : tree().minimum(root_[b]);
}

// --- free regions: bins of size classes ----------------------------------------------------------
// Exact: two descents of a bin tree are shallow, as it holds one node per distinct free size in
// the bin; the heap makes the common insert cheap (a walk down its short right spine) even when
// thousands of free regions share one size, where a tree by (size, offset) would be deep.
// Good fit: a push at the head of the class's list.
template <typename Offset>
void BasicOffsetAllocator<Offset>::bin_insert_any(std::uint32_t x) noexcept {
  if (placement_ == Placement::exact)
    bin_insert<Placement::exact>(x);
  else
    bin_insert<Placement::good_fit>(x);
}
template <typename Offset>
void BasicOffsetAllocator<Offset>::bin_remove_any(std::uint32_t x) noexcept {
  if (placement_ == Placement::exact)
    bin_remove<Placement::exact>(x);
  else
    bin_remove<Placement::good_fit>(x);
}

template <typename Offset>
template <Placement P>
BUFPOOL_HOT_INLINE void BasicOffsetAllocator<Offset>::bin_insert(std::uint32_t x) noexcept {
  const Offset size = n(x).size;
  ++free_regions_;
  if constexpr (P == Placement::good_fit) {
    const std::uint32_t c = good_class_of(size);
    const std::uint32_t head = root_[c];
    n(x).hleft = nil;
    n(x).hright = head;
    if (head != nil)
      n(head).hleft = x;
    else
      bins_.set(c);
    root_[c] = x;
    return;
  }
  const std::uint32_t b = bin_of(size);
  n(x).hleft = n(x).hright = n(x).hparent = nil;
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
    tree().insert(root_[b], x,
                  [base](std::uint32_t l, std::uint32_t r) { return base[l].size < base[r].size; });
    bins_.set(b);
  } else {
    const std::uint32_t root = heap_merge(c, x);
    if (root != c) tree().replace(root_[b], c, root);  // x has the new lowest offset
  }
}

template <typename Offset>
template <Placement P>
BUFPOOL_HOT_INLINE void BasicOffsetAllocator<Offset>::bin_remove(std::uint32_t x) noexcept {
  --free_regions_;
  if constexpr (P == Placement::good_fit) {
    const std::uint32_t p = n(x).hleft, q = n(x).hright;
    if (q != nil) n(q).hleft = p;
    if (p != nil) {
      n(p).hright = q;
    } else {
      const std::uint32_t c = good_class_of(n(x).size);
      root_[c] = q;
      if (q == nil) bins_.clear(c);
    }
    return;
  }
  const std::uint32_t rest = heap_pair(n(x).hleft);  // x's children, as one heap
  const std::uint32_t p = n(x).hparent;
  if (p != nil) {  // inside its heap: what was below x takes x's place among its siblings
    // (every offset in it is above x's, so above x's parent's)
    const std::uint32_t next = n(x).hright;
    std::uint32_t in_place = next;
    if (rest != nil) {
      n(rest).hright = next;
      if (next != nil) n(next).hparent = rest;
      n(rest).hparent = p;
      in_place = rest;
    } else if (next != nil) {
      n(next).hparent = p;
    }
    if (n(p).hleft == x)
      n(p).hleft = in_place;
    else
      n(p).hright = in_place;
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

// Pairing heaps by offset (exact placement). A node's hleft is its first child, hright its next
// sibling, hparent its previous sibling or, for a first child, its parent; a heap's root has no
// sibling and no parent. Melding two heaps compares their roots and makes the larger the first
// child of the smaller: O(1), touching the two roots and the old first child. Taking a root out
// pairs its children left to right, then melds the pairs right to left ("two-pass"):
// amortized O(log n), and a region taken from inside a heap is replaced by its children, paired
// the same way. Compared with the leftist heaps used before, an insert no longer walks a spine
// and a removal no longer fixes ranks up to the root: 71 against 89 ns per free + allocate by
// handle in perf/offset_allocator_bench, at the price of an amortized, not a worst-case, bound
// (p99.99 1.2 against 0.5 us; perf/RESULTS.md).
template <typename Offset>
BUFPOOL_HOT_INLINE std::uint32_t BasicOffsetAllocator<Offset>::heap_merge(
    std::uint32_t a, std::uint32_t b) noexcept {
  if (a == nil) return b;
  if (b == nil) return a;
  if (n(b).offset < n(a).offset) std::swap(a, b);
  const std::uint32_t first = n(a).hleft;
  n(b).hright = first;
  if (first != nil) n(first).hparent = b;
  n(b).hparent = a;
  n(a).hleft = b;
  return a;
}

// The siblings from c on, melded into one heap (its root detached), or nil.
template <typename Offset>
std::uint32_t BasicOffsetAllocator<Offset>::heap_pair(std::uint32_t c) noexcept {
  if (c == nil) return nil;
  std::uint32_t pairs = nil;  // the melded pairs, last first, chained through hright
  while (c != nil) {
    const std::uint32_t a = c, b = n(a).hright;
    if (b == nil) {  // an odd one at the end
      n(a).hparent = nil;
      n(a).hright = pairs;
      pairs = a;
      break;
    }
    c = n(b).hright;
    n(a).hright = n(a).hparent = nil;
    n(b).hright = n(b).hparent = nil;
    const std::uint32_t m = heap_merge(a, b);
    n(m).hright = pairs;
    pairs = m;
  }
  std::uint32_t root = pairs;
  pairs = n(root).hright;
  n(root).hright = nil;
  while (pairs != nil) {
    const std::uint32_t next = n(pairs).hright;
    n(pairs).hright = nil;
    n(pairs).hparent = nil;
    root = heap_merge(root, pairs);
    pairs = next;
  }
  return root;
}

// The smallest free size class of at least `size`: its lowest-offset region, or nil (exact).
template <typename Offset>
std::uint32_t BasicOffsetAllocator<Offset>::lower_bound(Offset size) const noexcept {
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

// The next larger size class after the class whose lowest-offset region is x, or nil (exact).
template <typename Offset>
std::uint32_t BasicOffsetAllocator<Offset>::next_class(std::uint32_t x) const noexcept {
  const std::size_t b = bin_of(n(x).size);
  if (b >= exact_limit) {
    const std::uint32_t s = tree().successor(x);
    if (s != nil) return s;
  }
  const std::size_t next = bins_.next(b + 1);
  return next == bin_count ? nil : first_of_bin(next);
}

template <typename Offset>
std::uint32_t BasicOffsetAllocator<Offset>::find_fit(Offset size, Offset align) const noexcept {
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

// Good fit: every region of a class at or above the one whose smallest size is at least `need`
// holds the request, so the first non-empty one gives a fit in O(1). Only when all of them are
// empty is the request's own class walked for a region that fits (whatever its alignment needs).
template <typename Offset>
BUFPOOL_HOT_INLINE std::uint32_t BasicOffsetAllocator<Offset>::find_good_fit(
    Offset size, Offset align) const noexcept {
  if (size > std::numeric_limits<Offset>::max() - (align - 1)) return nil;
  const Offset need = size + (align - 1);  // holds `size` wherever the region starts
  std::size_t c = good_class_of(need);
  if (need >= 8) {
    const unsigned e = static_cast<unsigned>(std::bit_width(need)) - 1;
    const Offset step = Offset{1} << (e - 3);  // the width of need's class
    if ((need & (step - 1)) != 0) ++c;         // need is above its class's smallest size
  }
  const std::size_t found = c < bin_count ? bins_.next(c) : bin_count;
  if (found != bin_count) return root_[found];
  for (std::size_t b = bins_.next(good_class_of(size)); b < std::min(c, bin_count);
       b = b + 1 < bin_count ? bins_.next(b + 1) : bin_count) {
    for (std::uint32_t x = root_[b]; x != nil; x = n(x).hright) {
      const Offset gap = align_up(n(x).offset, align) - n(x).offset;
      if (n(x).size >= size && n(x).size - size >= gap) return x;
    }
  }
  return nil;
}

// --- allocated regions: a table by offset ------------------------------------------------------
// A key lives in its home bucket, or in the buddy bucket (home ^ 1) when home was full, which
// the home bucket counts in `spilled`; when both are full it goes to an overflow red-black tree
// by offset (the tree links are free in an allocated node). No probing runs and no moves, so
// lookup, insert and erase are bounded: at most 14 slots plus O(log n) in the overflow tree,
// which Fibonacci hashing leaves empty in practice.

// The used slots whose key is k, as bits. Branch-free: the compares vectorise.
template <typename Offset>
unsigned BasicOffsetAllocator<Offset>::Bucket::match(Offset k) const noexcept {
  unsigned m = 0;
  for (unsigned i = 0; i < size; ++i)
    m |= static_cast<unsigned>(key[i] == k) << i;
  return m & used;
}

template <typename Offset>
std::size_t BasicOffsetAllocator<Offset>::home(Offset key) const noexcept {
  return static_cast<std::size_t>((static_cast<std::uint64_t>(key) * 0x9E3779B97F4A7C15ull) >>
                                  bucket_shift_);
}

namespace {
template <typename Bucket, typename Offset>
bool put(Bucket& b, Offset key, std::uint32_t x) noexcept {
  const unsigned free_slots = ~unsigned{b.used} & ((1u << Bucket::size) - 1);
  if (free_slots == 0) return false;
  const unsigned i = static_cast<unsigned>(std::countr_zero(free_slots));
  b.key[i] = key;
  b.node[i] = x;
  b.used = static_cast<std::uint8_t>(b.used | (1u << i));
  return true;
}
}  // namespace

template <typename Offset>
void BasicOffsetAllocator<Offset>::owned_insert(std::uint32_t x) noexcept {
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
template <typename Offset>
auto BasicOffsetAllocator<Offset>::owned_find(Allocation a) noexcept -> Found {
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

template <typename Offset>
void BasicOffsetAllocator<Offset>::owned_erase(const Found& f) noexcept {
  if (f.bucket == nullptr) {
    tree().erase(overflow_root_, f.node);
    --overflow_count_;
    return;
  }
  f.bucket->used = static_cast<std::uint8_t>(f.bucket->used & ~(1u << f.slot));
  if (f.bucket != &buckets_[f.home]) --buckets_[f.home].spilled;
}

// --- nodes and address order -------------------------------------------------------------------
template <typename Offset>
BUFPOOL_HOT_INLINE std::uint32_t BasicOffsetAllocator<Offset>::take_node() noexcept {
  // Never runs out: regions never outnumber 2 * live + 1 and live <= max_allocations_.
  if (unused_ == nil) return fresh_++;  // a node never used: zero pages until now
  const std::uint32_t x = unused_;
  unused_ = n(x).next;
  return x;
}

template <typename Offset>
BUFPOOL_HOT_INLINE void BasicOffsetAllocator<Offset>::give_node(std::uint32_t x) noexcept {
  set_state(x, unused_node);
  n(x).next = unused_;
  unused_ = x;
}

template <typename Offset>
BUFPOOL_HOT_INLINE void BasicOffsetAllocator<Offset>::link_after(std::uint32_t x,
                                                                 std::uint32_t y) noexcept {
  n(y).prev = x;  // y goes right after x
  n(y).next = n(x).next;
  if (n(x).next != nil)
    n(n(x).next).prev = y;
  else
    tail_ = y;
  n(x).next = y;
}

template <typename Offset>
BUFPOOL_HOT_INLINE void BasicOffsetAllocator<Offset>::link_before(std::uint32_t x,
                                                                  std::uint32_t y) noexcept {
  n(y).next = x;  // y goes right before x
  n(y).prev = n(x).prev;
  if (n(x).prev != nil)
    n(n(x).prev).next = y;
  else
    head_ = y;
  n(x).prev = y;
}

template <typename Offset>
BUFPOOL_HOT_INLINE void BasicOffsetAllocator<Offset>::unlink(std::uint32_t x) noexcept {
  if (n(x).prev != nil)
    n(n(x).prev).next = n(x).next;
  else
    head_ = n(x).next;
  if (n(x).next != nil)
    n(n(x).next).prev = n(x).prev;
  else
    tail_ = n(x).prev;
}

template <typename Offset>
void BasicOffsetAllocator<Offset>::reset(Offset capacity) noexcept {
  nodes_.zero();  // also gives the pages back
  states_.zero();
  links_.zero();
  if (lookup_by_offset_) buckets_.zero();
  start_empty(capacity);
}

// The state of a new allocator over zeroed metadata: every bucket empty, no node used.
template <typename Offset>
void BasicOffsetAllocator<Offset>::start_empty(Offset capacity) noexcept {
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

template class BasicOffsetAllocator<std::uint32_t>;
template class BasicOffsetAllocator<std::uint64_t>;

}  // namespace bufpool
