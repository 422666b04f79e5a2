/* A growable byte buffer over the session allocator. */
#include "internal.h"

void lsmtp__buf_init(lsmtp__buf *b, const lsmtp_allocator *alloc) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
}

void lsmtp__buf_free(lsmtp__buf *b) {
  lsmtp__free(b->alloc, b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int lsmtp__buf_reserve(lsmtp__buf *b, size_t n) {
  if (b->cap - b->len >= n) return LSMTP_OK;
  if (n > SIZE_MAX / 2 - b->len) return LSMTP_ERR_NOMEM;
  size_t want = b->len + n;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < want) cap *= 2;
  char *p = lsmtp__realloc(b->alloc, b->data, cap);
  if (!p) return LSMTP_ERR_NOMEM;
  b->data = p;
  b->cap = cap;
  return LSMTP_OK;
}

int lsmtp__buf_append(lsmtp__buf *b, const void *p, size_t n) {
  int rc = lsmtp__buf_reserve(b, n);
  if (rc != LSMTP_OK) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return LSMTP_OK;
}

void lsmtp__buf_consume(lsmtp__buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}
