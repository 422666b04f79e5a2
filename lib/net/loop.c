/* The event loop: one iteration waits on the backend, dispatches the ready
 * watchers, fires due timers, then runs postponed frees. Deleting anything
 * from any callback is safe because memory a ready list may still point at
 * is only released at the end of the iteration. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "net_int.h"

uint64_t lsmtp__monotonic_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void lsmtp__log(lsmtp_loop *loop, lsmtp_net_log_level level, const char *fmt,
                ...) {
  if (!loop->log_cb || level > loop->log_level) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  loop->log_cb(loop->log_ud, level, msg);
}

int lsmtp__loop_new_backend(lsmtp_loop **out, const lsmtp_allocator *alloc,
                            const lsmtp__backend *backend) {
  if (!out || !backend) return LSMTP_ERR_INVALID;
  *out = NULL;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_loop *loop = lsmtp__calloc(alloc, 1, sizeof *loop);
  if (!loop) return LSMTP_ERR_NOMEM;
  loop->alloc = alloc;
  loop->backend = backend;
  loop->epfd = -1;
  loop->log_level = LSMTP_NET_LOG_INFO;
  loop->now = lsmtp__monotonic_ms();
  int rc = lsmtp__loop_reserve_ready(loop, LSMTP__READY_MIN);
  if (rc == LSMTP_OK) rc = backend->init(loop);
  if (rc != LSMTP_OK) {
    lsmtp__free(alloc, loop->ready);
    lsmtp__free(alloc, loop);
    return rc;
  }
  *out = loop;
  return LSMTP_OK;
}

int lsmtp_loop_new(lsmtp_loop **out, const lsmtp_allocator *alloc) {
#ifdef LSMTP__HAVE_EPOLL
  return lsmtp__loop_new_backend(out, alloc, &lsmtp__backend_epoll);
#else
  return lsmtp__loop_new_backend(out, alloc, &lsmtp__backend_poll);
#endif
}

static void run_deferred(lsmtp_loop *loop) {
  while (loop->deferred) {
    lsmtp__deferred *d = loop->deferred;
    loop->deferred = d->next;
    d->queued = 0;
    d->run(d);
  }
}

void lsmtp_loop_del(lsmtp_loop *loop) {
  if (!loop) return;
  run_deferred(loop);
  loop->backend->fini(loop);
  lsmtp__free(loop->alloc, loop->ready);
  lsmtp__free(loop->alloc, loop->heap);
  lsmtp__free(loop->alloc, loop);
}

void lsmtp_loop_stop(lsmtp_loop *loop) {
  if (loop) loop->stop = 1;
}

uint64_t lsmtp_loop_now(const lsmtp_loop *loop) { return loop->now; }

void lsmtp_loop_set_log(lsmtp_loop *loop, lsmtp_net_log_cb cb,
                        void *user_data) {
  loop->log_cb = cb;
  loop->log_ud = user_data;
}

void lsmtp_loop_set_log_level(lsmtp_loop *loop, lsmtp_net_log_level level) {
  loop->log_level = level;
}

void lsmtp__loop_defer(lsmtp_loop *loop, lsmtp__deferred *node,
                       void (*run)(lsmtp__deferred *self)) {
  if (node->queued) return;
  node->run = run;
  node->queued = 1;
  node->next = loop->deferred;
  loop->deferred = node;
}

int lsmtp__loop_reserve_ready(lsmtp_loop *loop, size_t n) {
  if (n <= loop->ready_cap) return LSMTP_OK;
  size_t cap = loop->ready_cap ? loop->ready_cap : 64;
  while (cap < n) cap *= 2;
  lsmtp__ready *r = lsmtp__realloc(loop->alloc, loop->ready, cap * sizeof *r);
  if (!r) return LSMTP_ERR_NOMEM;
  loop->ready = r;
  loop->ready_cap = cap;
  return LSMTP_OK;
}

int lsmtp_loop_run_once(lsmtp_loop *loop, int timeout_ms) {
  if (!loop) return LSMTP_ERR_INVALID;
  int next = lsmtp__timers_next_ms(loop);
  if (next >= 0 && (timeout_ms < 0 || next < timeout_ms)) timeout_ms = next;
  if (loop->deferred) timeout_ms = 0; /* work queued outside an iteration */

  loop->nready = 0;
  int rc = loop->backend->wait(loop, timeout_ms);
  loop->now = lsmtp__monotonic_ms();
  loop->in_iteration = 1;
  if (rc != LSMTP_OK) {
    run_deferred(loop);
    loop->in_iteration = 0;
    return rc;
  }
  for (size_t i = 0; i < loop->nready; i++) {
    lsmtp_io *io = loop->ready[i].io;
    /* Only report what is still wanted: a callback earlier in this batch
     * may have paused or deleted this watcher. */
    unsigned ev = loop->ready[i].events & io->events;
    if (io->dead || !ev) continue;
    io->cb(io, io->fd, ev, io->user_data);
  }
  loop->nready = 0;
  lsmtp__timers_run(loop);
  run_deferred(loop);
  loop->in_iteration = 0;
  return LSMTP_OK;
}

int lsmtp_loop_run(lsmtp_loop *loop) {
  if (!loop) return LSMTP_ERR_INVALID;
  loop->stop = 0;
  while (!loop->stop) {
    int rc = lsmtp_loop_run_once(loop, -1);
    if (rc != LSMTP_OK) return rc;
  }
  loop->stop = 0;
  return LSMTP_OK;
}

/* ---- watchers ---- */

int lsmtp__io_init(lsmtp_loop *loop, lsmtp_io *io, int fd, unsigned events,
                   lsmtp_io_cb cb, void *user_data) {
  if (fd < 0 || !cb) return LSMTP_ERR_INVALID;
  memset(io, 0, sizeof *io);
  io->loop = loop;
  io->fd = fd;
  io->events = events & (LSMTP_IO_READ | LSMTP_IO_WRITE);
  io->cb = cb;
  io->user_data = user_data;
  int rc = lsmtp__loop_reserve_ready(loop, loop->nwatchers + 1);
  if (rc != LSMTP_OK) return rc;
  rc = loop->backend->add(loop, io);
  if (rc != LSMTP_OK) return rc;
  loop->nwatchers++;
  return LSMTP_OK;
}

void lsmtp__io_close(lsmtp_io *io) {
  if (io->dead) return;
  io->loop->backend->remove(io->loop, io);
  io->dead = 1;
  io->events = 0;
  io->loop->nwatchers--;
}

int lsmtp_loop_io_set(lsmtp_io *io, unsigned events) {
  if (!io || io->dead) return LSMTP_ERR_INVALID;
  events &= LSMTP_IO_READ | LSMTP_IO_WRITE;
  if (events == io->events) return LSMTP_OK;
  io->events = events;
  return io->loop->backend->update(io->loop, io);
}

static void free_owned_io(lsmtp__deferred *d) {
  lsmtp_io *io = (lsmtp_io *)(void *)((char *)d - offsetof(lsmtp_io, free_node));
  lsmtp__free(io->loop->alloc, io);
}

int lsmtp_loop_io_new(lsmtp_loop *loop, lsmtp_io **out, int fd,
                      unsigned events, lsmtp_io_cb cb, void *user_data) {
  if (!loop || !out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (fd < 0 || !cb) return LSMTP_ERR_INVALID;
  lsmtp_io *io = lsmtp__malloc(loop->alloc, sizeof *io);
  if (!io) return LSMTP_ERR_NOMEM;
  int rc = lsmtp__io_init(loop, io, fd, events, cb, user_data);
  if (rc != LSMTP_OK) {
    lsmtp__free(loop->alloc, io);
    return rc;
  }
  io->owned = 1;
  *out = io;
  return LSMTP_OK;
}

void lsmtp_loop_io_del(lsmtp_io *io) {
  if (!io || !io->owned) return;
  lsmtp__io_close(io);
  lsmtp__loop_defer(io->loop, &io->free_node, free_owned_io);
}
