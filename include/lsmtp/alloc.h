/* Allocator hooks: every allocation lsmtp makes goes through one of these,
 * passed once to each config or session. */
#ifndef LSMTP_ALLOC_H
#define LSMTP_ALLOC_H

#include <stddef.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** Allocation functions with one user pointer. The semantics are those of
 *  malloc, realloc and free; free(NULL) must be allowed. */
typedef struct lsmtp_allocator {
  void *(*malloc)(size_t size, void *user_data);
  void *(*realloc)(void *ptr, size_t size, void *user_data);
  void (*free)(void *ptr, void *user_data);
  void *user_data;
} lsmtp_allocator;

/** The allocator used when NULL is passed: the C library's malloc, realloc
 *  and free. The returned object is static and read-only. */
LSMTP_API const lsmtp_allocator *lsmtp_allocator_default(void);

LSMTP_END_DECLS

#endif
