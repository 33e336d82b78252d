#include "bufpool/chunk_allocator.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

namespace bufpool {
namespace {

class MmapChunkAllocator final : public ChunkAllocator {
 public:
  explicit MmapChunkAllocator(MmapChunkAllocatorOptions options) : options_(options) {}

  void* allocate(std::size_t size, std::size_t alignment, std::error_code& ec) noexcept override {
    // mmap only guarantees page alignment: map size + alignment and cut off both ends.
    const std::size_t span = size + (alignment > page_size ? alignment : 0);
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (raw == MAP_FAILED) {
      ec = std::error_code(errno, std::system_category());
      return nullptr;
    }
    auto begin = reinterpret_cast<std::uintptr_t>(raw);
    auto aligned = (begin + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
    if (aligned > begin) ::munmap(raw, aligned - begin);
    const auto tail = begin + span - (aligned + size);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + size), tail);
    auto* chunk = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
    if (options_.huge_pages) ::madvise(chunk, size, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    // MAP_POPULATE would fault the cut-off ends too; populate only what we keep.
    if (options_.prefault && ::madvise(chunk, size, MADV_POPULATE_WRITE) != 0) touch(chunk, size);
#else
    if (options_.prefault) touch(chunk, size);
#endif
    ec.clear();
    return chunk;
  }

  void deallocate(void* chunk, std::size_t size) noexcept override {
    ::munmap(chunk, size);
  }

 private:
  static constexpr std::size_t page_size = 4096;

  static void touch(void* chunk, std::size_t size) noexcept {
    auto* bytes = static_cast<volatile unsigned char*>(chunk);
    for (std::size_t i = 0; i < size; i += page_size)
      bytes[i] = 0;
  }

  MmapChunkAllocatorOptions options_;
};

}  // namespace

std::shared_ptr<ChunkAllocator> make_mmap_chunk_allocator(MmapChunkAllocatorOptions options) {
  return std::make_shared<MmapChunkAllocator>(options);
}

}  // namespace bufpool
