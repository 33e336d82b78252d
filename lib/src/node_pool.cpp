#include "bufpool/node_pool.hpp"

#include <array>
#include <bit>
#include <cstring>

namespace bufpool {
namespace detail {

// One slab of nodes. Every node's header word points here.
struct NodeSlab {
  NodePool* pool;
  std::byte* memory;  // first slot, from the slab source
  std::size_t bytes;
};

namespace {

struct NodePoolRegistry {
  std::mutex mutex;
  std::array<NodePool*, max_node_pools> pools{};
  std::array<std::uint64_t, max_node_pools> generations{};
  std::uint64_t next_generation = 1;
};
constinit NodePoolRegistry g_node_registry;

void*& next_of(void* node) noexcept {
  return *static_cast<void**>(node);
}

// Flushes this thread's caches back to their (still live) pools when the thread exits.
struct ThreadExitFlush {
  ~ThreadExitFlush() {
    std::lock_guard lk(g_node_registry.mutex);  // a pool cannot be destroyed meanwhile
    for (std::uint32_t id = 0; id < max_node_pools; ++id) {
      NodeCacheSlot& s = node_cache_slots[id];
      if (s.generation != 0 && s.generation == g_node_registry.generations[id]) {
        g_node_registry.pools[id]->flush_thread_cache();
      }
      s = {};
    }
  }
};
thread_local ThreadExitFlush tls_exit_flush;

std::size_t round_up(std::size_t v, std::size_t a) {
  return (v + a - 1) & ~(a - 1);
}

}  // namespace

constinit thread_local NodeCacheSlot node_cache_slots[max_node_pools] = {};

// First use of a slot by this thread, or the slot belonged to a pool since destroyed: its nodes
// died with that pool, so they are dropped untouched. Out of line: off the fast path.
void init_node_cache_slot(NodeCacheSlot& s, std::uint64_t generation) noexcept {
  s = {generation, nullptr, 0};
  static_cast<void>(&tls_exit_flush);  // odr-use: registers the thread-exit flush
}

}  // namespace detail

NodePool::NodePool(NodePoolOptions options) : options_(options) {
  auto& o = options_;
  if (o.node_size == 0 || !std::has_single_bit(o.node_align) || o.node_align > 4096 ||
      o.nodes_per_slab == 0) {
    throw std::system_error(make_error_code(errc::invalid_argument), "bufpool::NodePool");
  }
  // A free node keeps its free-list link in its first word.
  o.node_size = std::max(o.node_size, sizeof(void*));
  o.node_align = std::max(o.node_align, alignof(void*));
  header_ = detail::round_up(sizeof(void*), o.node_align);
  stride_ = detail::round_up(header_ + o.node_size, o.node_align);
  auto& r = detail::g_node_registry;
  std::lock_guard lk(r.mutex);
  for (std::uint32_t id = 0; id < detail::max_node_pools; ++id) {
    if (r.pools[id] == nullptr) {
      id_ = id;
      generation_ = r.next_generation++;
      r.pools[id] = this;
      r.generations[id] = generation_;
      return;
    }
  }
  throw std::system_error(make_error_code(errc::too_many_pools), "bufpool::NodePool");
}

NodePool::~NodePool() {
  {
    auto& r = detail::g_node_registry;
    std::lock_guard lk(r.mutex);
    r.pools[id_] = nullptr;
    r.generations[id_] = 0;
  }
  SlabSource& source = options_.slab_source ? *options_.slab_source : heap_slab_source();
  for (detail::NodeSlab* slab : slabs_) {
    source.deallocate_slab(slab->memory, slab->bytes, options_.node_align);
    delete slab;
  }
}

void* NodePool::allocate() {
  void* node = try_allocate();
  if (!node)
    throw std::system_error(make_error_code(errc::out_of_memory), "bufpool::NodePool::allocate");
  return node;
}

NodePool* NodePool::owner(const void* node) noexcept {
  const auto* header = static_cast<const std::byte*>(node) - sizeof(void*);
  detail::NodeSlab* slab;
  std::memcpy(&slab, header, sizeof slab);
  return slab->pool;
}

void* NodePool::refill(detail::NodeCacheSlot& s) noexcept {
  detail::NodeChain chain;
  {
    std::lock_guard lk(mutex_);
    if (chains_.empty() && !grow_locked()) return nullptr;
    chain = chains_.back();
    chains_.pop_back();
    shared_count_ -= chain.count;
  }
  // The whole chain becomes this thread's cache (which was empty): no walk under the lock over
  // nodes that another core wrote last.
  void* node = chain.head;
  s.head = detail::next_of(node);
  s.count = chain.count - 1;
  return node;
}

void NodePool::flush(detail::NodeCacheSlot& s, std::size_t keep) noexcept {
  if (s.count <= keep) return;
  // Cut the surplus off the front of the cache (lines this thread wrote), then hand it over as
  // one chain in a short critical section.
  const std::size_t moved = s.count - keep;
  void* first = s.head;
  void* last = first;
  for (std::size_t i = 1; i < moved; ++i)
    last = detail::next_of(last);
  s.head = detail::next_of(last);
  s.count = keep;
  detail::next_of(last) = nullptr;
  std::lock_guard lk(mutex_);
  push_chain_locked({first, moved});
}

void NodePool::push_chain_locked(detail::NodeChain chain) noexcept {
  // chains_ has room for every chain that can exist (reserved in grow_locked), so this never
  // allocates.
  chains_.push_back(chain);
  shared_count_ += chain.count;
}

void NodePool::flush_thread_cache() noexcept {
  flush(slot(), 0);
}

bool NodePool::grow_locked() noexcept {
  std::size_t n = options_.nodes_per_slab;
  if (options_.max_nodes != 0) {
    if (capacity_ >= options_.max_nodes) return false;
    n = std::min(n, options_.max_nodes - capacity_);
  }
  auto* slab = new (std::nothrow) detail::NodeSlab{this, nullptr, 0};
  if (!slab) return false;
  const std::size_t align = options_.node_align;
  const std::size_t bytes = n * stride_;
  SlabSource& source = options_.slab_source ? *options_.slab_source : heap_slab_source();
  slab->memory = static_cast<std::byte*>(source.allocate_slab(bytes, align));
  if (!slab->memory) {
    delete slab;
    return false;
  }
  slab->bytes = bytes;
  try {
    slabs_.push_back(slab);
    // Every chain holds at least one node: room for as many chains as nodes means a flush never
    // allocates under the lock.
    chains_.reserve(capacity_ + n);
  } catch (...) {
    if (slabs_.size() > 0 && slabs_.back() == slab) slabs_.pop_back();
    source.deallocate_slab(slab->memory, bytes, align);
    delete slab;
    return false;
  }
  // Write every header, and hand the nodes out as chains of `batch`, in address order.
  for (std::size_t i = 0; i < n; ++i) {
    std::byte* data = slab->memory + i * stride_ + header_;
    std::memcpy(data - sizeof(void*), &slab, sizeof slab);
  }
  for (std::size_t start = 0; start < n; start += batch) {
    const std::size_t count = std::min(batch, n - start);
    for (std::size_t i = 0; i < count; ++i) {
      std::byte* data = slab->memory + (start + i) * stride_ + header_;
      detail::next_of(data) =
          i + 1 < count ? static_cast<void*>(data + stride_) : static_cast<void*>(nullptr);
    }
    chains_.push_back({slab->memory + start * stride_ + header_, count});
  }
  shared_count_ += n;
  capacity_ += n;
  return true;
}

std::size_t NodePool::capacity() const noexcept {
  std::lock_guard lk(mutex_);
  return capacity_;
}

std::size_t NodePool::shared_free() const noexcept {
  std::lock_guard lk(mutex_);
  return shared_count_;
}

}  // namespace bufpool
