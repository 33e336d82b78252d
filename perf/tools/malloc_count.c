#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>
#include <string.h>
static atomic_long count;
extern void* __libc_malloc(size_t);
void* malloc(size_t n) { atomic_fetch_add(&count, 1); return __libc_malloc(n); }
__attribute__((destructor)) static void report(void) {
  char buf[64]; int len = snprintf(buf, sizeof buf, "mallocs=%ld\n", atomic_load(&count));
  write(2, buf, len);
}
