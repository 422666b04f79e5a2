/* Timers: a binary min-heap ordered by (deadline, start order), so timers
 * that expire together fire in the order they were started. */
#include "net_int.h"

static int timer_before(const lsmtp_timer *a, const lsmtp_timer *b) {
  return a->deadline < b->deadline ||
         (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(lsmtp_loop *loop, size_t i, lsmtp_timer *t) {
  loop->heap[i] = t;
  t->heap_index = i;
}

static void sift_up(lsmtp_loop *loop, size_t i) {
  lsmtp_timer *t = loop->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!timer_before(t, loop->heap[parent])) break;
    heap_set(loop, i, loop->heap[parent]);
    i = parent;
  }
  heap_set(loop, i, t);
}

static void sift_down(lsmtp_loop *loop, size_t i) {
  lsmtp_timer *t = loop->heap[i];
  size_t n = loop->nheap;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && timer_before(loop->heap[child + 1], loop->heap[child]))
      child++;
    if (!timer_before(loop->heap[child], t)) break;
    heap_set(loop, i, loop->heap[child]);
    i = child;
  }
  heap_set(loop, i, t);
}

static void heap_remove(lsmtp_loop *loop, lsmtp_timer *t) {
  size_t i = t->heap_index;
  t->heap_index = LSMTP__TIMER_IDLE;
  loop->nheap--;
  if (i == loop->nheap) return;
  heap_set(loop, i, loop->heap[loop->nheap]);
  sift_down(loop, i);
  sift_up(loop, loop->heap[i]->heap_index);
}

void lsmtp__timer_init(lsmtp_loop *loop, lsmtp_timer *t, lsmtp_timer_cb cb,
                       void *user_data) {
  t->loop = loop;
  t->deadline = 0;
  t->seq = 0;
  t->heap_index = LSMTP__TIMER_IDLE;
  t->cb = cb;
  t->user_data = user_data;
}

int lsmtp__timer_start_at(lsmtp_timer *t, uint64_t deadline) {
  lsmtp_loop *loop = t->loop;
  if (t->heap_index != LSMTP__TIMER_IDLE) heap_remove(loop, t);
  if (loop->nheap == loop->heap_cap) {
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    lsmtp_timer **h = lsmtp__realloc(loop->alloc, loop->heap, cap * sizeof *h);
    if (!h) return LSMTP_ERR_NOMEM;
    loop->heap = h;
    loop->heap_cap = cap;
  }
  t->deadline = deadline;
  t->seq = loop->next_seq++;
  heap_set(loop, loop->nheap++, t);
  sift_up(loop, t->heap_index);
  return LSMTP_OK;
}

int lsmtp__timers_next_ms(const lsmtp_loop *loop) {
  if (loop->nheap == 0) return -1;
  uint64_t now = lsmtp__monotonic_ms();
  uint64_t deadline = loop->heap[0]->deadline;
  if (deadline <= now) return 0;
  uint64_t ms = deadline - now;
  return ms > 0x7fffffffu ? 0x7fffffff : (int)ms;
}

void lsmtp__timers_run(lsmtp_loop *loop) {
  /* Timers started from a callback in this pass (even with delay 0) wait
   * for the next iteration, so a timer that restarts itself cannot spin.
   * Every timer due before the pass began orders before them. */
  uint64_t limit = loop->next_seq;
  while (loop->nheap > 0) {
    lsmtp_timer *t = loop->heap[0];
    if (t->deadline > loop->now || t->seq >= limit) break;
    heap_remove(loop, t);
    t->cb(t, t->user_data);
  }
}

int lsmtp_loop_timer_new(lsmtp_loop *loop, lsmtp_timer **out,
                         lsmtp_timer_cb cb, void *user_data) {
  if (!loop || !out || !cb) return LSMTP_ERR_INVALID;
  *out = NULL;
  lsmtp_timer *t = lsmtp__malloc(loop->alloc, sizeof *t);
  if (!t) return LSMTP_ERR_NOMEM;
  lsmtp__timer_init(loop, t, cb, user_data);
  *out = t;
  return LSMTP_OK;
}

int lsmtp_loop_timer_start(lsmtp_timer *timer, uint64_t delay_ms) {
  if (!timer) return LSMTP_ERR_INVALID;
  /* Between iterations the cached time may be stale (the host did other
   * work since): refresh it so the delay counts from the real now. */
  if (!timer->loop->in_iteration) timer->loop->now = lsmtp__monotonic_ms();
  uint64_t now = timer->loop->now;
  uint64_t deadline = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
  return lsmtp__timer_start_at(timer, deadline);
}

void lsmtp_loop_timer_stop(lsmtp_timer *timer) {
  if (timer && timer->heap_index != LSMTP__TIMER_IDLE)
    heap_remove(timer->loop, timer);
}

int lsmtp_loop_timer_active(const lsmtp_timer *timer) {
  return timer && timer->heap_index != LSMTP__TIMER_IDLE;
}

void lsmtp_loop_timer_del(lsmtp_timer *timer) {
  if (!timer) return;
  lsmtp_loop_timer_stop(timer);
  lsmtp__free(timer->loop->alloc, timer);
}
