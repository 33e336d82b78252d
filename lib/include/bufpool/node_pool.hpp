// NodePool: fixed-size nodes, thread-safe, each node's owner found from its pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <type_traits>
#include <vector>

#include "bufpool/error.hpp"
#include "bufpool/slab_source.hpp"

namespace bufpool {

struct NodePoolOptions {
  /// Usable bytes per node.
  std::size_t node_size = 64;
  /// Alignment of every node's data (a power of two, at most 4096).
  std::size_t node_align = alignof(std::max_align_t);
  /// Nodes per slab: the pool grows a slab at a time.
  std::size_t nodes_per_slab = 1024;
  /// Upper bound on the nodes the pool will ever hold (0: no bound).
  std::size_t max_nodes = 0;
  /// Where slabs come from: nullptr means the system heap (heap_slab_source()). Slabs go back
  /// when the NodePool is destroyed; the source must outlive it. BuddyPoolSlabs
  /// (buddy_pool_slabs.hpp) takes them from a BuddyPool.
  SlabSource* slab_source = nullptr;
};

namespace detail {
struct NodeSlab;
struct NodeChain {  // free nodes linked through their first word, the last one to nullptr
  void* head = nullptr;
  std::size_t count = 0;
};

// A thread's cache of free nodes for one pool id. `generation` names the pool instance the nodes
// belong to (generations are never reused), so a slot left behind by a destroyed pool is
// recognised and dropped, never dereferenced.
struct NodeCacheSlot {
  std::uint64_t generation;
  void* head;
  std::size_t count;
};
inline constexpr std::uint32_t max_node_pools = 256;
// Trivial and constinit on purpose: reached with a plain %fs-relative access, no init wrapper.
extern constinit thread_local NodeCacheSlot node_cache_slots[max_node_pools];
void init_node_cache_slot(NodeCacheSlot& slot, std::uint64_t generation) noexcept;
}  // namespace detail

/// A pool of fixed-size nodes. allocate() and deallocate() take no lock on the fast path: each
/// thread keeps a small cache of free nodes per pool, refilled from and flushed to a shared free
/// list in batches (under a mutex, once per batch). A node may be freed by any thread, not only
/// the one that allocated it: it simply joins the freeing thread's cache. Each node carries a
/// one-pointer header just before its data, naming its slab, so owner(p) and free(p) need neither
/// a size nor a pool.
///
/// A thread's caches go back to their pools when the thread exits, or when it calls
/// flush_thread_cache(). Nodes still out when the pool is destroyed become invalid (as with any
/// allocator); cached free nodes of other threads are simply dropped with it.
///
/// Thread safety: every member function may be called from any thread.
class NodePool {
 public:
  /// Throws std::system_error(errc::invalid_argument) for bad options, or
  /// errc::too_many_pools when more than 256 NodePools are alive.
  explicit NodePool(NodePoolOptions options = {});
  ~NodePool();
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;

  /// A node of node_size() bytes aligned to node_align(), or nullptr when max_nodes is reached
  /// or the slab source fails. Never throws.
  void* try_allocate() noexcept {
    detail::NodeCacheSlot& s = slot();
    if (void* node = s.head) [[likely]] {
      s.head = *static_cast<void**>(node);
      --s.count;
      return node;
    }
    return refill(s);
  }
  /// As try_allocate, but throws std::system_error(errc::out_of_memory) (node_allocator turns
  /// that into std::bad_alloc, as a standard allocator must).
  void* allocate();
  /// Returns a node of this pool, from any thread.
  void deallocate(void* node) noexcept {
    detail::NodeCacheSlot& s = slot();
    if (s.count == cache_max) [[unlikely]]
      flush(s, cache_max - batch);
    *static_cast<void**>(node) = s.head;
    s.head = node;
    ++s.count;
  }

  /// The pool that owns `node` (a pointer that allocate() returned). O(1).
  static NodePool* owner(const void* node) noexcept;
  /// Frees a node without knowing its pool. O(1).
  static void free(void* node) noexcept { owner(node)->deallocate(node); }

  /// Gives the calling thread's cached nodes of this pool back to the shared list.
  void flush_thread_cache() noexcept;

  std::size_t node_size() const noexcept { return options_.node_size; }
  std::size_t node_align() const noexcept { return options_.node_align; }
  /// Nodes in all slabs so far.
  std::size_t capacity() const noexcept;
  /// Nodes on the shared free list (not counting per-thread caches). After every thread has
  /// flushed or exited, capacity() == shared_free() means every node is back.
  std::size_t shared_free() const noexcept;

 private:
  static constexpr std::size_t batch = 32;      // nodes moved per refill or flush
  static constexpr std::size_t cache_max = 64;  // a thread's cache never holds more

  void* refill(detail::NodeCacheSlot& slot) noexcept;
  void flush(detail::NodeCacheSlot& slot, std::size_t keep) noexcept;
  bool grow_locked() noexcept;
  void push_chain_locked(detail::NodeChain chain) noexcept;
  detail::NodeCacheSlot& slot() noexcept {
    detail::NodeCacheSlot& s = detail::node_cache_slots[id_];
    if (s.generation != generation_) [[unlikely]]
      detail::init_node_cache_slot(s, generation_);
    return s;
  }

  NodePoolOptions options_;
  std::size_t header_ = 0;  // bytes from a slot's start to its data
  std::size_t stride_ = 0;  // bytes from one slot to the next
  std::uint32_t id_ = 0;
  std::uint64_t generation_ = 0;

  mutable std::mutex mutex_;
  std::vector<detail::NodeChain> chains_;  // the shared free nodes, as whole chains
  std::size_t shared_count_ = 0;
  std::size_t capacity_ = 0;
  std::vector<detail::NodeSlab*> slabs_;
};

/// A standard allocator over a NodePool, for std::allocate_shared, std::list and as an Asio
/// associated allocator. Requests for one object that fits a node come from the pool; anything
/// else (arrays, larger types) falls back to ::operator new, decided by the same rule on
/// deallocate, so the two never mix.
template <typename T>
class node_allocator {
 public:
  using value_type = T;

  explicit node_allocator(NodePool& pool) noexcept : pool_(&pool) {}
  template <typename U>
  node_allocator(const node_allocator<U>& other) noexcept : pool_(other.pool()) {}

  T* allocate(std::size_t n) {
    if (fits(n)) {
      if (void* node = pool_->try_allocate()) return static_cast<T*>(node);
      throw std::bad_alloc();
    }
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignof(T)}));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (fits(n)) {
      pool_->deallocate(p);
    } else {
      ::operator delete (p, std::align_val_t{alignof(T)});
    }
  }

  NodePool* pool() const noexcept { return pool_; }
  template <typename U>
  bool operator==(const node_allocator<U>& other) const noexcept {
    return pool_ == other.pool();
  }

 private:
  bool fits(std::size_t n) const noexcept {
    if constexpr (std::is_void_v<T>) {
      return false;
    } else {
      return n == 1 && sizeof(T) <= pool_->node_size() && alignof(T) <= pool_->node_align();
    }
  }

  NodePool* pool_;
};

}  // namespace bufpool
