// BufferStore without a server process: the open-addressing index against a std::map model under
// random puts, replaces and erases (fixed, printed seed), the limits, and value lifetimes.
#include "store.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>

#include "bufpool/buddy_pool.hpp"

namespace bufpool::server {
namespace {

SharedBuffer value(BuddyPool& pool, std::uint32_t tag) {
  Buffer b = pool.allocate(sizeof tag);
  std::memcpy(b.data(), &tag, sizeof tag);
  return SharedBuffer(std::move(b));
}
std::uint32_t tag_of(const SharedBuffer& v) {
  std::uint32_t t = 0;
  std::memcpy(&t, v.data(), sizeof t);
  return t;
}

BuddyPool& pool() {
  static BuddyPool p({.chunk_size = 4 * MiB, .min_block = 4 * KiB, .max_memory = 64 * MiB});
  return p;
}

TEST(BufferStore, AgreesWithAMapUnderRandomOperations) {
  const unsigned seed = 20261201;
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  // A small table (max_keys 300: 512 slots) so that probe runs are long and wrap around.
  BufferStore store(64 * KiB, 300);
  std::map<std::string, std::uint32_t> model;
  for (int step = 0; step < 200'000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 400);
    switch (rng() % 3) {
      case 0: {
        const auto tag = static_cast<std::uint32_t>(rng());
        const auto r = store.put(key, value(pool(), tag));
        if (model.count(key)) {
          ASSERT_EQ(r, BufferStore::PutResult::replaced) << step;
          model[key] = tag;
        } else if (model.size() < 300) {
          ASSERT_EQ(r, BufferStore::PutResult::created) << step;
          model[key] = tag;
        } else {
          ASSERT_EQ(r, BufferStore::PutResult::no_room) << step;
        }
        break;
      }
      case 1:
        ASSERT_EQ(store.erase(key), model.erase(key) == 1) << step;
        break;
      default: {
        const auto got = store.get(key);
        const auto it = model.find(key);
        ASSERT_EQ(got.has_value(), it != model.end()) << step << " " << key;
        if (got) {
          ASSERT_EQ(tag_of(*got), it->second) << step;
        }
      }
    }
  }
  EXPECT_EQ(store.stats().keys, model.size());
  for (const auto& [key, tag] : model)
    EXPECT_EQ(tag_of(*store.get(key)), tag);
}

TEST(BufferStore, ValuesAreReleasedByEraseClearAndTheDestructor) {
  BuddyPool local({.chunk_size = 4 * MiB, .min_block = 4 * KiB, .max_memory = 4 * MiB});
  {
    BufferStore store(4 * KiB, 100);
    for (std::uint32_t i = 0; i < 50; ++i)
      store.put("key" + std::to_string(i), value(local, i));
    EXPECT_EQ(local.stats().bytes_requested, 50 * sizeof(std::uint32_t));
    EXPECT_TRUE(store.erase("key7"));
    EXPECT_FALSE(store.erase("key7"));
    EXPECT_EQ(local.stats().bytes_requested, 49 * sizeof(std::uint32_t));
    store.clear();
    EXPECT_EQ(local.stats().bytes_requested, 0u);
    EXPECT_EQ(store.stats().keys, 0u);
    EXPECT_FALSE(store.get("key1"));
    for (std::uint32_t i = 0; i < 20; ++i)
      store.put("again" + std::to_string(i), value(local, i));
  }  // the destructor releases the 20 left
  EXPECT_EQ(local.stats().bytes_in_use, 0u);
}

TEST(BufferStore, AReaderKeepsItsValueAfterTheKeyGoes) {
  BufferStore store(4 * KiB, 10);
  store.put("a", value(pool(), 1));
  SharedBuffer held = *store.get("a");
  store.put("a", value(pool(), 2));
  store.erase("a");
  EXPECT_EQ(tag_of(held), 1u);
}

TEST(BufferStore, TheKeyArenaAndMaxKeysAreLimits) {
  BufferStore store(300, 1000);  // room for one 250-byte key and a little
  EXPECT_EQ(store.put(std::string(250, 'x'), value(pool(), 1)), BufferStore::PutResult::created);
  EXPECT_EQ(store.put(std::string(100, 'y'), value(pool(), 2)), BufferStore::PutResult::no_room);
  EXPECT_EQ(store.put(std::string(250, 'x'), value(pool(), 3)), BufferStore::PutResult::replaced);
  BufferStore two(4 * KiB, 2);
  two.put("a", value(pool(), 1));
  two.put("b", value(pool(), 1));
  EXPECT_EQ(two.put("c", value(pool(), 1)), BufferStore::PutResult::no_room);
}

TEST(BufferStore, AHugeMaxKeysReservesWithoutCommitting) {
  // The key allocator reserves metadata for 2^30 keys (tens of GiB of address space), resident
  // only where used; the index starts small and grows.
  BufferStore store(4 * KiB, std::size_t{1} << 30);
  EXPECT_EQ(store.put("k", value(pool(), 9)), BufferStore::PutResult::created);
  EXPECT_EQ(tag_of(*store.get("k")), 9u);
}

}  // namespace
}  // namespace bufpool::server
