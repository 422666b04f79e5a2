/* The failing allocator shared by the unit tests (see support_failalloc.h):
 * refuses a chosen allocation and counts live blocks, so allocation failure
 * can be walked through every allocation of a scenario. */
#include "support_failalloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include <lsmtp/status.h>

/* Count one allocation; non-zero when it must fail. */
static int refuse(failalloc *f) {
  f->count++;
  if (f->fail_at <= 0) return 0;
  return f->sticky ? f->count >= f->fail_at : f->count == f->fail_at;
}

static void *fa_malloc(size_t size, void *ud) {
  failalloc *f = ud;
  if (refuse(f)) return NULL;
  void *p = malloc(size);
  if (p) f->live++;
  return p;
}

static void *fa_realloc(void *ptr, size_t size, void *ud) {
  failalloc *f = ud;
  if (refuse(f)) return NULL;
  void *p = realloc(ptr, size);
  if (p && !ptr) f->live++;
  return p;
}

static void fa_free(void *ptr, void *ud) {
  failalloc *f = ud;
  if (!ptr) return;
  f->live--;
  free(ptr);
}

void failalloc_init(failalloc *f, long fail_at) {
  f->fail_at = fail_at;
  f->sticky = 0;
  f->count = 0;
  f->live = 0;
  f->alloc.malloc = fa_malloc;
  f->alloc.realloc = fa_realloc;
  f->alloc.free = fa_free;
  f->alloc.user_data = f;
}

void failalloc_init_sticky(failalloc *f, long fail_from) {
  failalloc_init(f, fail_from);
  f->sticky = 1;
}

int failalloc_reached(const failalloc *f) {
  return f->fail_at > 0 && f->count >= f->fail_at;
}

long failalloc_walk(failalloc_scenario scenario, long max_runs) {
  for (long n = 1; n <= max_runs; n++) {
    failalloc f;
    failalloc_init(&f, n);
    int rc = scenario(&f.alloc);
    assert_true(rc == LSMTP_OK || rc == LSMTP_ERR_NOMEM);
    assert_int_equal(f.live, 0);
    if (rc == LSMTP_OK) return n;
  }
  fail_msg("no run succeeded in %ld allocation failures", max_runs);
  return -1;
}
