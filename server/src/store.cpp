#include "store.hpp"

#include <algorithm>
#include <cstring>

namespace bufpool::server {

BufferStore::BufferStore(std::size_t key_arena_bytes, std::size_t max_keys)
    : arena_(std::make_unique_for_overwrite<char[]>(key_arena_bytes)),
      key_space_(static_cast<std::uint32_t>(key_arena_bytes), max_keys),
      max_keys_(max_keys) {
  index_.reserve(std::min<std::size_t>(max_keys, 1 << 16));
}

BufferStore::PutResult BufferStore::put(std::string_view key, SharedBuffer value) {
  SharedBuffer old;  // released after the lock is dropped
  std::unique_lock lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) {
    value_bytes_ += value.size();
    value_bytes_ -= it->second.value.size();
    old = std::move(it->second.value);
    it->second.value = std::move(value);
    return PutResult::replaced;
  }
  if (index_.size() >= max_keys_) return PutResult::no_room;
  auto slot = key_space_.try_allocate(static_cast<std::uint32_t>(key.size()));
  if (!slot) return PutResult::no_room;
  char* bytes = arena_.get() + slot->offset;
  std::memcpy(bytes, key.data(), key.size());
  value_bytes_ += value.size();
  index_.emplace(std::string_view(bytes, key.size()), Entry{*slot, std::move(value)});
  return PutResult::created;
}

std::optional<SharedBuffer> BufferStore::get(std::string_view key) const {
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  return it->second.value;
}

bool BufferStore::erase(std::string_view key) {
  SharedBuffer old;
  std::unique_lock lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  old = std::move(it->second.value);
  value_bytes_ -= old.size();
  key_space_.free(it->second.key);
  index_.erase(it);
  return true;
}

void BufferStore::clear() {
  std::unordered_map<std::string_view, Entry> old;
  std::lock_guard lock(mutex_);
  old.swap(index_);
  key_space_.reset();
  value_bytes_ = 0;
}

BufferStore::Stats BufferStore::stats() const {
  std::lock_guard lock(mutex_);
  Stats s;
  s.keys = index_.size();
  s.value_bytes = value_bytes_;
  s.key_arena_free = key_space_.total_available();
  s.key_bytes = key_space_.capacity() - s.key_arena_free;
  s.key_arena_largest_free = key_space_.largest_available();
  s.key_arena_free_regions = key_space_.free_region_count();
  return s;
}

}  // namespace bufpool::server
