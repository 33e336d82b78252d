// The allocators bufpool is measured against, all in one process so that ratios come from the
// same run: glibc through __libc_malloc, jemalloc linked in (mallocx/dallocx), and mimalloc and
// tcmalloc loaded with dlopen(RTLD_LOCAL) so that they do not replace the process's malloc.
// (jemalloc cannot be dlopen'ed: it needs static TLS.)
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" {
void* __libc_malloc(std::size_t);  // NOLINT: glibc's own entry points
void __libc_free(void*);           // NOLINT
void* mallocx(std::size_t size, int flags);
void dallocx(void* ptr, int flags);
}

namespace bufpool::perf {

struct MallocPeer {
  std::string name;
  void* (*allocate)(std::size_t);
  void (*deallocate)(void*);
};

inline void* je_allocate(std::size_t n) {
  return mallocx(n, 0);
}
inline void je_deallocate(void* p) {
  dallocx(p, 0);
}

inline std::vector<MallocPeer> load_malloc_peers() {
  std::vector<MallocPeer> peers{{"glibc", &__libc_malloc, &__libc_free},
                                {"jemalloc", &je_allocate, &je_deallocate}};
  struct Dl {
    const char* lib;
    const char* name;
    const char* alloc;
    const char* free;
  };
  for (const Dl& d : {Dl{"libmimalloc.so.2", "mimalloc", "mi_malloc", "mi_free"},
                      Dl{"libtcmalloc_minimal.so.4", "tcmalloc", "tc_malloc", "tc_free"}}) {
    void* h = dlopen(d.lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      std::fprintf(stderr, "warning: %s not measured: %s\n", d.name, dlerror());
      continue;
    }
    peers.push_back({d.name, reinterpret_cast<void* (*)(std::size_t)>(dlsym(h, d.alloc)),
                     reinterpret_cast<void (*)(void*)>(dlsym(h, d.free))});
  }
  return peers;
}

}  // namespace bufpool::perf
