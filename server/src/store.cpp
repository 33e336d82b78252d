#include "store.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

namespace bufpool::server {

namespace {
std::uint32_t hash_of(std::string_view key) noexcept {
  return static_cast<std::uint32_t>(std::hash<std::string_view>{}(key));
}
constexpr std::size_t initial_slots = 1024;
}  // namespace

BufferStore::BufferStore(std::size_t key_arena_bytes, std::size_t max_keys)
    : arena_(std::make_unique_for_overwrite<char[]>(key_arena_bytes)),
      key_space_(static_cast<std::uint32_t>(key_arena_bytes), max_keys),
      slots_(initial_slots),
      mask_(initial_slots - 1),
      max_keys_(max_keys) {}

BufferStore::~BufferStore() {
  for (std::size_t i = 0, left = keys_; left > 0; ++i) {
    if (slots_[i].key_size == 0) continue;
    value_of(slots_[i]).~SharedBuffer();
    --left;
  }
}

std::size_t BufferStore::find(std::string_view key, std::uint32_t hash) const noexcept {
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.key_size == 0) return i;
    if (s.hash == hash && s.key_size == key.size() &&
        std::memcmp(arena_.get() + s.key_offset, key.data(), key.size()) == 0)
      return i;
  }
}

BufferStore::PutResult BufferStore::put(std::string_view key, SharedBuffer value, PutIf when,
                                        std::optional<SharedBuffer>* previous) {
  SharedBuffer old;  // released after the lock is dropped
  const std::uint32_t hash = hash_of(key);
  std::unique_lock lock(mutex_);
  Slot& s = slots_[find(key, hash)];
  if (previous) {
    if (s.key_size != 0) {
      *previous = value_of(s);
    } else {
      previous->reset();
    }
  }
  if ((when == PutIf::absent && s.key_size != 0) || (when == PutIf::present && s.key_size == 0))
    return PutResult::not_met;
  if (s.key_size != 0) {
    value_bytes_ += value.size();
    value_bytes_ -= value_of(s).size();
    old = std::move(value_of(s));
    value_of(s) = std::move(value);
    return PutResult::replaced;
  }
  if (keys_ >= max_keys_) return PutResult::no_room;
  auto place = key_space_.try_allocate(static_cast<std::uint32_t>(key.size()));
  if (!place) return PutResult::no_room;
  std::memcpy(arena_.get() + place->offset, key.data(), key.size());
  Slot* target = &s;
  if ((keys_ + 1) * 2 > mask_ + 1) {  // over half full: double first
    grow();
    target = &slots_[find(key, hash)];
  }
  Slot& t = *target;
  t.hash = hash;
  t.key_offset = place->offset;
  t.key_size = place->size;
  value_bytes_ += value.size();
  ::new (static_cast<void*>(t.value)) SharedBuffer(std::move(value));
  ++keys_;
  return PutResult::created;
}

std::optional<SharedBuffer> BufferStore::get(std::string_view key) const {
  const std::uint32_t hash = hash_of(key);
  std::lock_guard lock(mutex_);
  const Slot& s = slots_[find(key, hash)];
  if (s.key_size == 0) return std::nullopt;
  return value_of(s);
}

// Twice the slots; every entry moves to its place in the new table by copying its bytes.
void BufferStore::grow() {
  detail::ZeroedArray<Slot> bigger((mask_ + 1) * 2);
  const std::size_t mask = (mask_ + 1) * 2 - 1;
  for (std::size_t i = 0, left = keys_; left > 0; ++i) {
    const Slot& s = slots_[i];
    if (s.key_size == 0) continue;
    std::size_t j = s.hash & mask;
    while (bigger[j].key_size != 0)
      j = (j + 1) & mask;
    std::memcpy(static_cast<void*>(&bigger[j]), &s, sizeof(Slot));  // relocates the SharedBuffer
    --left;
  }
  slots_ = std::move(bigger);
  mask_ = mask;
}

// Empties slot i and shifts back the entries after it that would no longer be found (Knuth's
// algorithm R): an entry moves when slot i lies between its home and where it sits.
void BufferStore::remove_at(std::size_t i) noexcept {
  key_space_.free(OffsetAllocator::Allocation{slots_[i].key_offset, slots_[i].key_size});
  value_of(slots_[i]).~SharedBuffer();
  --keys_;
  for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
    Slot& s = slots_[j];
    if (s.key_size == 0) break;
    const std::size_t home = s.hash & mask_;
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    std::memcpy(static_cast<void*>(&slots_[i]), &s, sizeof(Slot));  // relocates the SharedBuffer
    i = j;
  }
  std::memset(static_cast<void*>(&slots_[i]), 0, sizeof(Slot));
}

bool BufferStore::erase(std::string_view key) {
  SharedBuffer old;
  const std::uint32_t hash = hash_of(key);
  std::unique_lock lock(mutex_);
  const std::size_t i = find(key, hash);
  if (slots_[i].key_size == 0) return false;
  old = std::move(value_of(slots_[i]));
  value_bytes_ -= old.size();
  remove_at(i);
  return true;
}

void BufferStore::clear() {
  std::vector<SharedBuffer> old;  // released after the lock is dropped
  std::lock_guard lock(mutex_);
  old.reserve(keys_);
  for (std::size_t i = 0; i <= mask_ && old.size() < keys_; ++i) {
    if (slots_[i].key_size == 0) continue;
    old.push_back(std::move(value_of(slots_[i])));
    value_of(slots_[i]).~SharedBuffer();
  }
  slots_ = detail::ZeroedArray<Slot>(initial_slots);
  mask_ = initial_slots - 1;
  keys_ = 0;
  key_space_.reset();
  value_bytes_ = 0;
}

std::size_t BufferStore::size() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

BufferStore::Stats BufferStore::stats() const {
  std::lock_guard lock(mutex_);
  Stats s;
  s.keys = keys_;
  s.value_bytes = value_bytes_;
  s.key_arena_free = key_space_.total_available();
  s.key_bytes = key_space_.capacity() - s.key_arena_free;
  s.key_arena_largest_free = key_space_.largest_available();
  s.key_arena_free_regions = key_space_.free_region_count();
  return s;
}

}  // namespace bufpool::server
