/* The default allocator and the internal allocation wrappers. */
#include <stdlib.h>

#include "internal.h"

static void *default_malloc(size_t size, void *ud) {
  (void)ud;
  return malloc(size);
}

static void *default_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  return realloc(ptr, size);
}

static void default_free(void *ptr, void *ud) {
  (void)ud;
  free(ptr);
}

static const lsmtp_allocator default_allocator = {
    default_malloc, default_realloc, default_free, NULL};

const lsmtp_allocator *lsmtp_allocator_default(void) {
  return &default_allocator;
}

void *lsmtp__malloc(const lsmtp_allocator *a, size_t size) {
  if (size == 0) size = 1;
  return a->malloc(size, a->user_data);
}

void *lsmtp__calloc(const lsmtp_allocator *a, size_t n, size_t size) {
  if (size != 0 && n > (size_t)-1 / size) return NULL;
  void *p = lsmtp__malloc(a, n * size);
  if (p && n * size != 0) memset(p, 0, n * size);
  return p;
}

void *lsmtp__realloc(const lsmtp_allocator *a, void *ptr, size_t size) {
  if (size == 0) size = 1;
  return a->realloc(ptr, size, a->user_data);
}

void lsmtp__free(const lsmtp_allocator *a, void *ptr) {
  if (ptr) a->free(ptr, a->user_data);
}

char *lsmtp__strndup(const lsmtp_allocator *a, const char *s, size_t n) {
  char *p = lsmtp__malloc(a, n + 1);
  if (p) {
    if (n) memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}
