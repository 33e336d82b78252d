#include "bufpool/buddy_pool.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "bufpool/shared_buffer.hpp"
#include "spin_lock.hpp"

namespace bufpool::detail {
namespace {

constexpr std::uint32_t nil = 0xffffffffu;

// A node id is [chunk: 16 bits][local index: 16 bits]. The layout is a compile-time constant on
// purpose: as members, the shift and mask were reloaded after every store to a node (a uint32_t
// store may alias them), which cost several ns per allocation.
constexpr unsigned local_bits = 16;
constexpr std::uint32_t local_mask = (1u << local_bits) - 1;

// 16-bit fields on purpose: a store through a uint8_t may alias anything, which forces the
// compiler to reload the chunk table after every state change on the hot path.
// split_listed: split, and on its level's mergeable stack.
enum class NodeState : std::uint16_t { absent, free, split, split_listed, allocated };

// One node of a chunk's buddy tree, in level order from the root (local index 0).
// A free node is linked in its level's doubly linked free list. An allocated node keeps the
// requested size in `prev`, so that a release needs only the block (a slice of a SharedBuffer does
// not know it). A split node whose children all
// became free is pushed (through `next`) on its level's mergeable stack, and stays there even if a
// child is taken again: the entry is checked when popped. That keeps the stack off the hot path
// of a block freed and taken again and again. Allocated nodes are in no list; `shared` is their
// SharedBuffer count.
struct Node {
  std::uint32_t prev = nil;
  std::uint32_t next = nil;
  std::atomic<std::uint32_t> shared{0};
  NodeState state = NodeState::absent;
  std::uint16_t free_children = 0;
};
static_assert(sizeof(Node) == 16);

struct Chunk {
  std::byte* base = nullptr;
  Node* nodes = nullptr;
};

struct List {
  std::uint32_t head = nil;
  std::size_t count = 0;
};

// Free pool memory is poisoned under ASan, so that a read through a stale pointer into a released
// block is reported as a use after free, as with malloc. The shadow is cleared before a chunk goes
// back to its backing allocator, which may hand the range to someone else.
void poison(const std::byte* p, std::size_t n) noexcept {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}
void unpoison(const std::byte* p, std::size_t n) noexcept {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

// The release checks are always on; perf/handles.sh builds a copy of the library without them, only
// to measure what they cost.
#if defined(BUFPOOL_BENCH_WITHOUT_RELEASE_CHECKS)
constexpr bool release_checks = false;
#else
constexpr bool release_checks = true;
#endif

// A release the pool cannot honour (a double release, a forged or foreign handle) corrupts the
// memory limit for every later caller, so it stops the process, as glibc does on a double free.
[[noreturn, gnu::cold, gnu::noinline]] void fatal_release(const char* what, std::uint32_t ref,
                                                          const void* data) noexcept {
  std::fprintf(stderr,
               "bufpool: %s: block of pool slot %" PRIu32 ", chunk %" PRIu32 ", level %" PRIu32
               ", address %p\n",
               what, ref_slot(ref), ref_chunk(ref), ref_level(ref), data);
  std::fflush(stderr);
  std::abort();
}

// The registry maps a Buffer's 11-bit pool slot to its pool, so that a Buffer needs no pointer.
struct Registry {
  std::mutex mutex;
  std::array<std::atomic<PoolCore*>, max_pools + 1> slots{};
};

constinit Registry g_registry;  // constant-initialised: no guard on the free path

Registry& registry() {
  return g_registry;
}

}  // namespace

using PoolWaiter = Waiter<Buffer>;

class PoolCore final : public WaitOwner<Buffer> {
 public:
  PoolCore(BuddyPoolOptions options, std::error_code& ec);
  ~PoolCore();

  const BuddyPoolOptions& options() const noexcept { return options_; }
  unsigned levels() const noexcept { return levels_; }
  std::size_t block_size(unsigned level) const noexcept {
    return std::size_t{1} << block_shift(level);
  }
  int level_for(std::size_t size, std::error_code& ec) const noexcept;

  Buffer try_allocate(std::size_t size, std::error_code& ec) noexcept;
  // `count`: a refusal is a failure (try_allocate), not the start of a wait (async_allocate).
  bool allocate_now(std::size_t size, Buffer& out, std::error_code& ec, bool count) noexcept;
  Buffer allocate_if_free(std::size_t size) noexcept;
  bool take_if_free_locked(unsigned level, std::size_t size, Buffer& out) noexcept;
  void enqueue(PoolWaiter* waiter) noexcept;
  void release(std::uint32_t ref, const std::byte* data) noexcept;
  // zero_freed: clears the whole block that `data` points into. Outside the lock: the block is
  // still allocated to the caller, so its chunk stays mapped and nobody else writes it.
  void zero_block(std::uint32_t ref, const std::byte* data, std::uint32_t level) noexcept {
    std::byte* base = chunks_[ref_chunk(ref)].base;
    const auto offset = static_cast<std::size_t>(data - base);
    std::memset(base + (offset >> block_shift(level) << block_shift(level)), 0, block_size(level));
  }
  // The node id of the block that holds `data` (any address inside it).
  std::uint32_t id_of(std::uint32_t ref, const std::byte* data) const noexcept {
    const std::uint32_t chunk = ref_chunk(ref);
    return (chunk << local_bits) | local_of(chunk, ref_level(ref), data);
  }
  // As id_of, after checking that the reference names a chunk this pool holds and that `data`
  // lies in it.
  std::uint32_t checked_id(std::uint32_t ref, const std::byte* data) const noexcept {
    const std::uint32_t chunk = ref_chunk(ref);
    if (release_checks &&
        (chunk >= max_chunks_ || ref_level(ref) >= levels_ || chunks_[chunk].base == nullptr ||
         static_cast<std::size_t>(data - chunks_[chunk].base) >= options_.chunk_size)) [[unlikely]]
      fatal_release("release of memory that this pool does not hold", ref, data);
    return id_of(ref, data);
  }
  std::atomic<std::uint32_t>& shared_count(std::uint32_t id) noexcept { return node(id).shared; }
  std::uint32_t shrink(std::uint32_t ref, std::byte* data, std::size_t size) noexcept;

  void cancel(PoolWaiter* w) noexcept override;
  void expire(PoolWaiter* w) noexcept override;
  void waiter_gone() noexcept override;
  void end_wait(PoolWaiter* w, errc why) noexcept;
  void close() noexcept;
  void orphan() noexcept;
  std::size_t trim(std::size_t keep_bytes) noexcept;
  BuddyPoolStats stats();

 private:
  using Lock = std::unique_lock<SpinLock>;

  unsigned block_shift(unsigned level) const noexcept { return shift_[level]; }
  std::uint32_t local_of(std::uint32_t chunk, std::uint32_t level, const std::byte* data) const {
    auto offset = static_cast<std::size_t>(data - chunks_[chunk].base);
    return static_cast<std::uint32_t>(first_[level] + (offset >> block_shift(level)));
  }
  Node& node(std::uint32_t id) noexcept { return chunks_[id >> local_bits].nodes[id & local_mask]; }
  std::uint32_t parent_id(std::uint32_t id) const noexcept {
    return (id & ~local_mask) | (((id & local_mask) - 1) >> fshift_);
  }
  std::uint32_t first_child_id(std::uint32_t id) const noexcept {
    return (id & ~local_mask) | (((id & local_mask) << fshift_) + 1);
  }

  void push(List& list, std::uint32_t id) noexcept;
  void unlink(List& list, std::uint32_t id) noexcept;
  std::uint32_t take_free(unsigned level) noexcept;
  void put_free(unsigned level, std::uint32_t id) noexcept;
  void merge_up_to(unsigned level) noexcept;
  std::uint32_t allocate_block(unsigned level) noexcept;
  std::uint32_t allocate_locked(unsigned level, Lock& lk, std::error_code& ec) noexcept;
  Buffer make_buffer(std::uint32_t id, unsigned level, std::size_t size) noexcept;
  bool install_chunk(Lock& lk, std::error_code& ec) noexcept;
  PoolWaiter* serve_waiters_locked() noexcept;
  bool should_destroy() const noexcept {
    // Every block has a non-zero size, so no bytes in use means no block out.
    return orphaned_ && bytes_in_use_ == 0 && live_waiters_ == 0;
  }

  BuddyPoolOptions options_;
  std::uint32_t slot_ = 0;
  // Hot geometry is size_t, not unsigned: stores to a node's uint32_t fields may alias an unsigned
  // member and force a reload; they cannot alias a size_t.
  unsigned levels_ = 0;
  std::size_t top_ = 0;
  std::size_t fshift_ = 0;  // log2(fanout)
  unsigned min_shift_ = 0;
  std::size_t fanout_ = 0;
  std::uint32_t nodes_per_chunk_ = 0;
  std::size_t max_chunks_ = 0;
  std::array<std::size_t, max_levels> first_{};   // first local node index of each level
  std::array<std::uint8_t, max_levels> shift_{};  // log2 of each level's block size
  // The level for a size, indexed by bit_width(size - 1), i.e. ceil(log2(size)).
  std::array<std::uint8_t, 65> level_by_bits_{};

  // On its own cache line: a waiter spinning on the lock must not keep evicting the geometry
  // above (read on every call) or the lists below from the holder's cache.
  alignas(64) mutable SpinLock lock_;
  alignas(64) std::vector<Chunk> chunks_;
  std::vector<std::uint16_t> free_slots_;
  std::array<List, max_levels> free_{};
  std::array<std::uint32_t, max_levels> mergeable_{};  // stack heads, by the parent's level
  WaitQueue<Buffer> waiters_;
  std::size_t chunks_held_ = 0;
  std::size_t pending_chunks_ = 0;
  std::size_t live_waiters_ = 0;
  bool closed_ = false;
  bool orphaned_ = false;

  std::size_t bytes_in_use_ = 0;
  std::size_t bytes_requested_ = 0;
  std::size_t high_water_ = 0;
  std::uint64_t allocations_ = 0;
  std::uint64_t waits_ = 0;
  std::uint64_t timeouts_ = 0;
  std::uint64_t cancellations_ = 0;
  std::uint64_t failures_ = 0;
};

namespace {

bool is_pow2(std::size_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

PoolCore::PoolCore(BuddyPoolOptions options, std::error_code& ec) : options_(std::move(options)) {
  auto& o = options_;
  const bool valid = (o.fanout == 2 || o.fanout == 4) && is_pow2(o.chunk_size) &&
                     is_pow2(o.min_block) && o.min_block >= 4 * KiB &&
                     o.chunk_size <= (std::size_t{1} << 31) && o.min_block <= o.chunk_size &&
                     o.max_memory >= o.chunk_size && o.reserve <= o.max_memory;
  if (!valid) {
    ec = errc::invalid_argument;
    return;
  }
  fanout_ = o.fanout;
  fshift_ = static_cast<unsigned>(std::countr_zero(o.fanout));
  min_shift_ = static_cast<unsigned>(std::countr_zero(o.min_block));
  const auto span_shift = static_cast<unsigned>(std::countr_zero(o.chunk_size)) - min_shift_;
  if (span_shift % fshift_ != 0) {
    ec = errc::invalid_argument;  // chunk_size / min_block is not a power of the fanout
    return;
  }
  levels_ = static_cast<unsigned>(span_shift / fshift_ + 1);
  top_ = levels_ - 1;
  // Level k sits at depth top-k; the first node at depth d is (f^d - 1) / (f - 1).
  std::uint64_t at_depth = 1, first = 0;
  for (unsigned d = 0; d < levels_; ++d) {
    first_[top_ - d] = first;
    first += at_depth;
    at_depth <<= fshift_;
  }
  nodes_per_chunk_ = static_cast<std::uint32_t>(first);
  for (unsigned k = 0; k < levels_; ++k)
    shift_[k] = static_cast<std::uint8_t>(min_shift_ + k * fshift_);
  for (unsigned bits = 0; bits < level_by_bits_.size(); ++bits) {
    const std::size_t above = bits > min_shift_ ? bits - min_shift_ : 0;
    level_by_bits_[bits] = static_cast<std::uint8_t>((above + fshift_ - 1) / fshift_);
  }
  max_chunks_ = o.max_memory / o.chunk_size;
  if (max_chunks_ > max_chunks || levels_ > max_levels || nodes_per_chunk_ > local_mask + 1) {
    ec = errc::invalid_argument;
    return;
  }
  if (!o.backing) o.backing = make_mmap_chunk_allocator();
  mergeable_.fill(nil);

  chunks_.resize(max_chunks_);
  free_slots_.reserve(max_chunks_);
  for (std::size_t i = max_chunks_; i-- > 0;)
    free_slots_.push_back(static_cast<std::uint16_t>(i));

  {
    auto& r = registry();
    std::lock_guard lk(r.mutex);
    for (std::uint32_t s = 1; s <= max_pools; ++s) {
      if (r.slots[s].load(std::memory_order_relaxed) == nullptr) {
        slot_ = s;
        r.slots[s].store(this, std::memory_order_release);
        break;
      }
    }
  }
  if (slot_ == 0) {
    ec = errc::too_many_pools;
    return;
  }

  const std::size_t reserve_chunks = (o.reserve + o.chunk_size - 1) / o.chunk_size;
  Lock lk(lock_);
  for (std::size_t i = 0; i < reserve_chunks; ++i) {
    ++pending_chunks_;
    if (!install_chunk(lk, ec)) return;
  }
  ec.clear();
}

PoolCore::~PoolCore() {
  for (auto& c : chunks_) {
    if (c.base) {
      unpoison(c.base, options_.chunk_size);
      options_.backing->deallocate(c.base, options_.chunk_size);
      delete[] c.nodes;
    }
  }
  if (slot_ != 0) {
    auto& r = registry();
    std::lock_guard lk(r.mutex);
    r.slots[slot_].store(nullptr, std::memory_order_release);
  }
}

[[gnu::always_inline]] inline int PoolCore::level_for(std::size_t size,
                                                      std::error_code& ec) const noexcept {
  // One unsigned compare rejects both 0 (which wraps around) and sizes above the largest block.
  if (size - 1 < options_.chunk_size) [[likely]] {
    return level_by_bits_[static_cast<unsigned>(std::bit_width(size - 1))];
  }
  ec = size == 0 ? errc::invalid_size : errc::too_large;
  return -1;
}

[[gnu::always_inline]] inline void PoolCore::push(List& list, std::uint32_t id) noexcept {
  Node& n = node(id);
  n.prev = nil;
  n.next = list.head;
  if (list.head != nil) node(list.head).prev = id;
  list.head = id;
  ++list.count;
}

[[gnu::always_inline]] inline void PoolCore::unlink(List& list, std::uint32_t id) noexcept {
  Node& n = node(id);
  if (n.prev != nil) {
    node(n.prev).next = n.next;
  } else {
    list.head = n.next;
  }
  if (n.next != nil) node(n.next).prev = n.prev;
  --list.count;
}

[[gnu::always_inline]] inline std::uint32_t PoolCore::take_free(unsigned level) noexcept {
  const std::uint32_t id = free_[level].head;
  unlink(free_[level], id);
  node(id).state = NodeState::allocated;
  if (level != top_) {
    const std::uint32_t pid = parent_id(id);
    --node(pid).free_children;  // a stale mergeable entry is dropped when popped
  }
  return id;
}

[[gnu::always_inline]] inline void PoolCore::put_free(unsigned level, std::uint32_t id) noexcept {
  node(id).state = NodeState::free;
  push(free_[level], id);
  if (level != top_) {
    const std::uint32_t pid = parent_id(id);
    Node& parent = node(pid);
    if (++parent.free_children == fanout_ && parent.state == NodeState::split) {
      parent.state = NodeState::split_listed;
      parent.next = mergeable_[level + 1];
      mergeable_[level + 1] = pid;
    }
  }
}

void PoolCore::merge_up_to(unsigned level) noexcept {
  // Ascending, so that a merge that completes its parent's set is merged in the same pass.
  for (unsigned k = 1; k <= level; ++k) {
    while (mergeable_[k] != nil) {
      const std::uint32_t pid = mergeable_[k];
      Node& parent = node(pid);
      mergeable_[k] = parent.next;
      parent.state = NodeState::split;
      if (parent.free_children != fanout_) continue;  // a child was taken again since
      const std::uint32_t c0 = first_child_id(pid);
      for (std::uint32_t i = 0; i < fanout_; ++i) {
        unlink(free_[k - 1], c0 + i);
        node(c0 + i).state = NodeState::absent;
      }
      node(pid).free_children = 0;
      put_free(k, pid);
    }
  }
}

[[gnu::always_inline]] inline std::uint32_t PoolCore::allocate_block(unsigned level) noexcept {
  // Prefer what lazy merging can rebuild over splitting a larger block: less fragmentation.
  if (free_[level].head == nil) merge_up_to(level);
  unsigned k = level;
  while (k <= top_ && free_[k].head == nil)
    ++k;
  if (k > top_) return nil;
  std::uint32_t id = take_free(k);
  for (; k > level; --k) {
    Node& parent = node(id);
    parent.state = NodeState::split;
    parent.free_children = 0;
    const std::uint32_t c0 = first_child_id(id);
    for (std::uint32_t i = 1; i < fanout_; ++i)
      put_free(k - 1, c0 + i);
    id = c0;
    node(id).state = NodeState::allocated;
  }
  return id;
}

[[gnu::always_inline]] inline Buffer PoolCore::make_buffer(std::uint32_t id, unsigned level,
                                                           std::size_t size) noexcept {
  const std::uint32_t chunk = id >> local_bits;
  const std::uint32_t local = id & local_mask;
  const std::size_t offset = (std::size_t{local} - first_[level]) << block_shift(level);
  ++allocations_;
  bytes_in_use_ += block_size(level);
  bytes_requested_ += size;
  if (bytes_in_use_ > high_water_) high_water_ = bytes_in_use_;
  node(id).prev = static_cast<std::uint32_t>(size);
  std::byte* data = chunks_[chunk].base + offset;
  unpoison(data, block_size(level));
  return Buffer(data, static_cast<std::uint32_t>(size), make_ref(slot_, chunk, level));
}

// Takes a chunk from the backing allocator with the lock released, so that a slow mmap stalls
// no other thread. The caller has counted it in pending_chunks_, which keeps the limit exact.
bool PoolCore::install_chunk(Lock& lk, std::error_code& ec) noexcept {
  lk.unlock();
  std::error_code backing_ec;
  void* mem = options_.backing->allocate(options_.chunk_size, options_.chunk_size, backing_ec);
  Node* nodes = mem ? new (std::nothrow) Node[nodes_per_chunk_] : nullptr;
  if (mem && !nodes) options_.backing->deallocate(mem, options_.chunk_size);
  lk.lock();
  --pending_chunks_;
  if (!nodes) {
    ec = errc::backing_failed;
    return false;
  }
  const std::uint16_t slot = free_slots_.back();
  free_slots_.pop_back();
  chunks_[slot] = Chunk{static_cast<std::byte*>(mem), nodes};
  poison(chunks_[slot].base, options_.chunk_size);
  ++chunks_held_;
  put_free(static_cast<unsigned>(top_), std::uint32_t{slot} << local_bits);
  return true;
}

std::uint32_t PoolCore::allocate_locked(unsigned level, Lock& lk, std::error_code& ec) noexcept {
  for (;;) {
    if (closed_) {
      ec = errc::closed;
      return nil;
    }
    if (const std::uint32_t id = allocate_block(level); id != nil) return id;
    if (chunks_held_ + pending_chunks_ >= max_chunks_) {
      ec = errc::out_of_memory;
      return nil;
    }
    ++pending_chunks_;
    if (!install_chunk(lk, ec)) return nil;
    // Another thread may take the new chunk first; then look again.
  }
}

[[gnu::always_inline]] inline Buffer PoolCore::try_allocate(std::size_t size,
                                                            std::error_code& ec) noexcept {
  Buffer out;
  allocate_now(size, out, ec, true);  // on false, ec says out_of_memory
  return out;
}

// The common case, kept flat: nobody waits and a block of the exact level is free. Lock held.
[[gnu::always_inline]] inline bool PoolCore::take_if_free_locked(unsigned level, std::size_t size,
                                                                 Buffer& out) noexcept {
  if (!waiters_.empty() || closed_ || free_[level].head == nil) return false;
  out = make_buffer(take_free(level), level, size);
  return true;
}

[[gnu::always_inline]] inline bool PoolCore::allocate_now(std::size_t size, Buffer& out,
                                                          std::error_code& ec,
                                                          bool count) noexcept {
  const int level = level_for(size, ec);
  if (level < 0) return true;
  Lock lk(lock_);
  if (take_if_free_locked(static_cast<unsigned>(level), size, out)) [[likely]] {
    lk.unlock();
    if (ec) ec.clear();
    return true;
  }
  if (!waiters_.empty() && !closed_) {
    ec = errc::out_of_memory;  // first come, first served: queued waiters go first
    failures_ += count;
    return false;
  }
  const std::uint32_t id = allocate_locked(static_cast<unsigned>(level), lk, ec);
  if (id == nil) {
    if (ec != errc::out_of_memory) return true;
    failures_ += count;
    return false;
  }
  out = make_buffer(id, static_cast<unsigned>(level), size);
  // A chunk installed with the lock released may also serve waiters queued meanwhile.
  PoolWaiter* served = waiters_.empty() ? nullptr : serve_waiters_locked();
  lk.unlock();
  complete_all(served);
  if (ec) ec.clear();  // clear() calls into libstdc++: skip it when there is nothing to clear
  return true;
}

// allocate_now's flat path alone: no chunk is taken, nothing is refused or counted as a failure.
Buffer PoolCore::allocate_if_free(std::size_t size) noexcept {
  std::error_code ec;
  const int level = level_for(size, ec);
  Buffer out;
  if (level < 0) return out;
  Lock lk(lock_);
  take_if_free_locked(static_cast<unsigned>(level), size, out);
  return out;
}

void PoolCore::enqueue(PoolWaiter* w) noexcept {
  std::error_code ec;
  PoolWaiter* served = nullptr;
  bool queued = false;
  {
    Lock lk(lock_);
    ++live_waiters_;
    w->entered = true;
    const int level = level_for(w->size, ec);
    if (level >= 0) {
      w->level = static_cast<std::uint32_t>(level);
      if (waiters_.empty()) {
        // Memory may have come back between allocate_now() and here.
        const std::uint32_t id = allocate_locked(w->level, lk, ec);
        if (id != nil) {
          w->result = make_buffer(id, w->level, w->size);
          served = waiters_.empty() ? nullptr : serve_waiters_locked();
        }
      } else if (closed_) {
        ec = errc::closed;
      }
      queued = !w->result && (!ec || ec == errc::out_of_memory);
    }
    if (queued && w->expired) {  // the deadline passed before the waiter got here
      queued = false;
      ec = errc::timed_out;
      ++timeouts_;
      ++cancellations_;
    }
    if (queued) {
      waiters_.push_back(w);
      ++waits_;
      // Installed under the lock: a free on another thread cannot complete the waiter (and clear
      // the slot) before the handler is in place.
      if (w->slot.is_connected()) {
        w->slot.emplace<CancelWaiter<Buffer>>(CancelWaiter<Buffer>{w});
        w->slot_installed = true;
      }
    }
  }
  complete_all(served);
  if (!queued) {
    w->ec = ec;
    w->post_completion();
  }
}

// Serves waiters strictly in order; stops at the first that cannot be served. Returns the served
// waiters as a list linked through `next`, to be completed after the lock is released.
PoolWaiter* PoolCore::serve_waiters_locked() noexcept {
  PoolWaiter* served = nullptr;
  PoolWaiter** tail = &served;
  while (PoolWaiter* w = waiters_.head) {
    const std::uint32_t id = allocate_block(w->level);
    if (id == nil) break;
    waiters_.unlink(w);
    w->result = make_buffer(id, w->level, w->size);
    *tail = w;
    tail = &w->next;
  }
  return served;
}

[[gnu::always_inline]] inline void PoolCore::release(std::uint32_t ref,
                                                     const std::byte* data) noexcept {
  const std::uint32_t level = ref_level(ref);
  if (options_.zero_freed) [[unlikely]]
    zero_block(ref, data, level);
  Lock lk(lock_);
  const std::uint32_t id = checked_id(ref, data);
  Node& n = node(id);
  // In release builds too: the state is on the cache line that put_free() writes next.
  if (release_checks && n.state != NodeState::allocated) [[unlikely]] {
    lk.unlock();
    fatal_release("release of a block that is not allocated (a double release?)", ref, data);
  }
  const std::uint32_t chunk = ref_chunk(ref);
  const std::size_t offset = static_cast<std::size_t>(data - chunks_[chunk].base);
  bytes_requested_ -= n.prev;
  put_free(level, id);
  bytes_in_use_ -= block_size(level);
  poison(chunks_[chunk].base + (offset >> block_shift(level) << block_shift(level)),
         block_size(level));
  if (waiters_.empty() && !orphaned_) [[likely]]
    return;
  PoolWaiter* served = waiters_.empty() ? nullptr : serve_waiters_locked();
  const bool destroy = should_destroy();
  lk.unlock();
  complete_all(served);
  if (destroy) delete this;
}

// Splits the block down to the smallest level that holds `size` and frees every buddy of the part
// that is kept, so waiters may be served at once. Returns the new reference.
std::uint32_t PoolCore::shrink(std::uint32_t ref, std::byte* data, std::size_t size) noexcept {
  std::error_code ec;
  const int target = level_for(size, ec);
  std::uint32_t level = ref_level(ref);
  PoolWaiter* served = nullptr;
  if (options_.zero_freed && target >= 0 && level > static_cast<std::uint32_t>(target)) {
    // The block starts at `data` (a shrink takes a whole block); what it gives back is the tail.
    const std::size_t kept = block_size(static_cast<unsigned>(target));
    std::memset(data + kept, 0, block_size(level) - kept);
  }
  {
    Lock lk(lock_);
    std::uint32_t id = checked_id(ref, data);
    Node& n = node(id);
    if (n.state != NodeState::allocated) [[unlikely]] {
      lk.unlock();
      fatal_release("shrink of a block that is not allocated", ref, data);
    }
    bytes_requested_ -= n.prev - size;
    for (; target >= 0 && level > static_cast<std::uint32_t>(target); --level) {
      Node& parent = node(id);
      parent.state = NodeState::split;
      parent.free_children = 0;
      const std::uint32_t c0 = first_child_id(id);
      for (std::uint32_t i = 1; i < fanout_; ++i) {
        put_free(level - 1, c0 + i);
        poison(data + (std::size_t{i} << block_shift(level - 1)), block_size(level - 1));
      }
      bytes_in_use_ -= block_size(level) - block_size(level - 1);
      id = c0;
      node(id).state = NodeState::allocated;
    }
    node(id).prev = static_cast<std::uint32_t>(size);
    if (!waiters_.empty()) served = serve_waiters_locked();
  }
  complete_all(served);
  return make_ref(ref_slot(ref), ref_chunk(ref), level);
}

void PoolCore::cancel(PoolWaiter* w) noexcept {
  end_wait(w, errc::cancelled);
}

void PoolCore::expire(PoolWaiter* w) noexcept {
  end_wait(w, errc::timed_out);
}

void PoolCore::end_wait(PoolWaiter* w, errc why) noexcept {
  PoolWaiter* served = nullptr;
  {
    Lock lk(lock_);
    if (!end_wait_locked(waiters_, w, why)) return;
    ++cancellations_;
    if (why == errc::timed_out) ++timeouts_;
    // A large waiter at the head may have held back smaller ones that fit now.
    served = serve_waiters_locked();
  }
  w->post_completion();
  complete_all(served);
}

void PoolCore::waiter_gone() noexcept {
  Lock lk(lock_);
  --live_waiters_;
  const bool destroy = should_destroy();
  lk.unlock();
  if (destroy) delete this;
}

void PoolCore::close() noexcept {
  PoolWaiter* all = nullptr;
  {
    Lock lk(lock_);
    closed_ = true;
    all = waiters_.take_all(errc::closed);
  }
  complete_all(all);
}

void PoolCore::orphan() noexcept {
  Lock lk(lock_);
  orphaned_ = true;
  const bool destroy = should_destroy();
  lk.unlock();
  if (destroy) delete this;
}

std::size_t PoolCore::trim(std::size_t keep_bytes) noexcept {
  std::vector<Chunk> released;
  {
    Lock lk(lock_);
    if (!waiters_.empty()) return 0;
    merge_up_to(static_cast<unsigned>(top_));
    const std::size_t keep = (keep_bytes + options_.chunk_size - 1) / options_.chunk_size;
    while (free_[top_].head != nil && chunks_held_ > keep) {
      const std::uint32_t root = free_[top_].head;
      unlink(free_[top_], root);
      const auto slot = static_cast<std::uint16_t>(root >> local_bits);
      released.push_back(chunks_[slot]);
      chunks_[slot] = Chunk{};
      free_slots_.push_back(slot);
      --chunks_held_;
    }
  }
  for (auto& c : released) {
    unpoison(c.base, options_.chunk_size);
    options_.backing->deallocate(c.base, options_.chunk_size);
    delete[] c.nodes;
  }
  return released.size() * options_.chunk_size;
}

BuddyPoolStats PoolCore::stats() {
  BuddyPoolStats s;
  s.free_blocks.resize(levels_);
  Lock lk(lock_);
  merge_up_to(static_cast<unsigned>(top_));
  s.chunks_held = chunks_held_;
  s.bytes_reserved = chunks_held_ * options_.chunk_size;
  s.bytes_in_use = bytes_in_use_;
  s.bytes_requested = bytes_requested_;
  s.high_water = high_water_;
  for (unsigned k = 0; k < levels_; ++k)
    s.free_blocks[k] = free_[k].count;
  s.waiters = waiters_.count;
  s.allocations = allocations_;
  s.waits = waits_;
  s.timeouts = timeouts_;
  s.cancellations = cancellations_;
  s.failures = failures_;
  return s;
}

// ---- Entry points used by Buffer, SharedBuffer and the async_allocate template ----

namespace {
PoolCore* core_of(std::uint32_t ref, const void* data) noexcept {
  PoolCore* core = registry().slots[ref_slot(ref)].load(std::memory_order_acquire);
  if (release_checks && core == nullptr) [[unlikely]]
    fatal_release("release into a pool that does not exist", ref, data);
  return core;
}
}  // namespace

void release_block(std::uint32_t ref, const std::byte* data) noexcept {
  core_of(ref, data)->release(ref, data);
}

std::uint32_t shrink_block(std::uint32_t ref, std::byte* data, std::size_t size) noexcept {
  return core_of(ref, data)->shrink(ref, data, size);
}

std::size_t block_capacity(std::uint32_t ref) noexcept {
  return core_of(ref, nullptr)->block_size(ref_level(ref));
}

void shared_init(std::uint32_t ref, const std::byte* data) noexcept {
  PoolCore* core = core_of(ref, data);
  core->shared_count(core->checked_id(ref, data)).store(1, std::memory_order_relaxed);
}

// Unchecked: it copies a live SharedBuffer, whose block is allocated for as long as it exists
// (the checks are on release, where a bad handle does harm).
void shared_acquire(std::uint32_t ref, const std::byte* data) noexcept {
  PoolCore* core = registry().slots[ref_slot(ref)].load(std::memory_order_acquire);
  core->shared_count(core->id_of(ref, data)).fetch_add(1, std::memory_order_relaxed);
}

void shared_release(std::uint32_t ref, const std::byte* data) noexcept {
  PoolCore* core = core_of(ref, data);
  auto& count = core->shared_count(core->checked_id(ref, data));
  // acq_rel: every reader's last access happens before the block is reused.
  const std::uint32_t before = count.fetch_sub(1, std::memory_order_acq_rel);
  if (before == 1) {
    core->release(ref, data);
  } else if (before == 0) [[unlikely]] {
    fatal_release("release of a SharedBuffer whose block has no owner left (a double release?)",
                  ref, data);
  }
}

WaitOwner<Buffer>* wait_owner(PoolCore* core) noexcept {
  return core;
}

bool complete_now(PoolCore* core, std::size_t size, Buffer& out, std::error_code& ec) noexcept {
  return core->allocate_now(size, out, ec, false);
}

void enqueue_waiter(PoolCore* core, Waiter<Buffer>* waiter) noexcept {
  core->enqueue(waiter);
}

}  // namespace bufpool::detail

namespace bufpool {

BuddyPool::BuddyPool(BuddyPoolOptions options) {
  std::error_code ec;
  auto core = std::make_unique<detail::PoolCore>(std::move(options), ec);
  if (ec) throw std::system_error(ec, "bufpool::BuddyPool");
  core_ = core.release();
}

BuddyPool::~BuddyPool() {
  core_->close();
  core_->orphan();
}

Buffer BuddyPool::try_allocate(std::size_t size, std::error_code& ec) noexcept {
  return core_->try_allocate(size, ec);
}

Buffer BuddyPool::allocate_if_free(std::size_t size) noexcept {
  return core_->allocate_if_free(size);
}

Buffer BuddyPool::allocate(std::size_t size) {
  std::error_code ec;
  Buffer b = core_->try_allocate(size, ec);
  if (ec) throw std::system_error(ec, "bufpool::BuddyPool::allocate");
  return b;
}

void BuddyPool::close() noexcept {
  core_->close();
}
std::size_t BuddyPool::trim(std::size_t keep_bytes) noexcept {
  return core_->trim(keep_bytes);
}
BuddyPoolStats BuddyPool::stats() const {
  return core_->stats();
}
unsigned BuddyPool::levels() const noexcept {
  return core_->levels();
}
std::size_t BuddyPool::block_size(unsigned level) const noexcept {
  return core_->block_size(level);
}
int BuddyPool::level_for(std::size_t size, std::error_code& ec) const noexcept {
  return core_->level_for(size, ec);
}
std::size_t BuddyPool::capacity_for(std::size_t size) const noexcept {
  std::error_code ec;
  const int level = core_->level_for(size, ec);
  return level < 0 ? 0 : core_->block_size(static_cast<unsigned>(level));
}
const BuddyPoolOptions& BuddyPool::options() const noexcept {
  return core_->options();
}

}  // namespace bufpool
