/* A failing allocator for unit tests: an lsmtp_allocator whose chosen
 * allocation returns NULL, and which counts the blocks still live so a test
 * can check that every error path frees what it allocated.
 *
 * Numbering: allocations are numbered from 1 in the order they are asked
 * for; malloc and realloc both count (a realloc is an allocation that can
 * fail). fail_at is the number of the allocation that fails; 0 means no
 * allocation ever fails (the allocator only counts). */
#ifndef LSMTP_TEST_SUPPORT_FAILALLOC_H
#define LSMTP_TEST_SUPPORT_FAILALLOC_H

#include <lsmtp/alloc.h>

typedef struct failalloc {
  long fail_at; /* 1-based number of the allocation that fails; 0: none */
  int sticky;   /* non-zero: every allocation after fail_at fails too */
  long count;   /* allocations asked for so far (malloc and realloc) */
  long live;    /* blocks handed out and not freed yet */
  lsmtp_allocator alloc; /* pass &f->alloc; its user_data is f itself */
} failalloc;

/* Only allocation number fail_at fails (0: none); the ones after it succeed
 * again. f must not be moved or copied while alloc is in use. */
void failalloc_init(failalloc *f, long fail_at);

/* Allocation number fail_from and every one after it fail (0: none). */
void failalloc_init_sticky(failalloc *f, long fail_from);

/* Non-zero once the allocation numbered fail_at has been asked for, that
 * is, once something was refused. */
int failalloc_reached(const failalloc *f);

/* A scenario to walk: runs once with alloc and returns LSMTP_OK when it went
 * through, or LSMTP_ERR_NOMEM when an allocation failed. */
typedef int (*failalloc_scenario)(const lsmtp_allocator *alloc);

/* Run scenario with allocation 1, 2, 3, ... failing (one at a time), at most
 * max_runs times, until a run returns LSMTP_OK. Asserts (CMocka) that each
 * run returns LSMTP_OK or LSMTP_ERR_NOMEM and leaves no block live, and that
 * some run returned LSMTP_OK. Returns the fail_at of that run. */
long failalloc_walk(failalloc_scenario scenario, long max_runs);

#endif
