/* Private state of the I/O layer (lib/net): the loop, its watchers and
 * timers, and the backend interface epoll and poll() implement. */
#ifndef LSMTP_NET_INT_H
#define LSMTP_NET_INT_H

#include <stddef.h>
#include <stdint.h>

#include <lsmtp/net.h>

#include "internal.h"

/* Work postponed to the end of the current loop iteration. Objects whose
 * memory may still be referenced by the ready list of this iteration (a
 * watcher, or anything embedding one) are freed through this. */
typedef struct lsmtp__deferred {
  struct lsmtp__deferred *next;
  void (*run)(struct lsmtp__deferred *self);
  unsigned char queued;
} lsmtp__deferred;

struct lsmtp_io {
  lsmtp_loop *loop;
  int fd;
  unsigned events;       /* LSMTP_IO_* wanted */
  unsigned char dead;    /* deleted: never dispatched again */
  unsigned char registered; /* known to the backend (epoll: in the set) */
  unsigned char owned;   /* allocated by lsmtp_loop_io_new */
  size_t slot;           /* poll backend: index in the pollfd array */
  lsmtp_io_cb cb;
  void *user_data;
  lsmtp__deferred free_node; /* owned watchers: frees it */
};

struct lsmtp_timer {
  lsmtp_loop *loop;
  uint64_t deadline; /* loop time in ms */
  uint64_t seq;      /* start order, breaks deadline ties */
  size_t heap_index; /* LSMTP__TIMER_IDLE when stopped */
  lsmtp_timer_cb cb;
  void *user_data;
};
#define LSMTP__TIMER_IDLE SIZE_MAX

/* One ready descriptor as a backend reports it. */
typedef struct lsmtp__ready {
  lsmtp_io *io;
  unsigned events; /* LSMTP_IO_* */
} lsmtp__ready;

/* The ready list always holds at least this many entries (epoll reads at
 * most this many events per wait). */
#define LSMTP__READY_MIN 256

/* What a backend provides. wait() fills loop->ready / loop->nready. */
typedef struct lsmtp__backend {
  const char *name;
  int (*init)(lsmtp_loop *loop);
  void (*fini)(lsmtp_loop *loop);
  int (*add)(lsmtp_loop *loop, lsmtp_io *io);    /* io->events may be 0 */
  int (*update)(lsmtp_loop *loop, lsmtp_io *io); /* after events changed */
  void (*remove)(lsmtp_loop *loop, lsmtp_io *io);
  int (*wait)(lsmtp_loop *loop, int timeout_ms);
} lsmtp__backend;

extern const lsmtp__backend lsmtp__backend_poll;
#if defined(__linux__) && !defined(LSMTP_NET_FORCE_POLL)
#define LSMTP__HAVE_EPOLL 1
extern const lsmtp__backend lsmtp__backend_epoll;
#endif

struct lsmtp_loop {
  const lsmtp_allocator *alloc;
  const lsmtp__backend *backend;
  uint64_t now; /* ms, monotonic, refreshed each iteration */
  unsigned char stop;
  unsigned char in_iteration; /* between wait and the end of dispatch */

  /* ready list of the current iteration */
  lsmtp__ready *ready;
  size_t nready, ready_cap;

  /* timer min-heap ordered by (deadline, seq) */
  lsmtp_timer **heap;
  size_t nheap, heap_cap;
  uint64_t next_seq;

  lsmtp__deferred *deferred; /* LIFO list run at the end of an iteration */

  size_t nwatchers; /* live watchers, to size the ready list */

  lsmtp_net_log_cb log_cb;
  void *log_ud;
  lsmtp_net_log_level log_level;

  /* backend state */
  int epfd;
  void *pfds;       /* poll: struct pollfd array */
  lsmtp_io **pios;  /* poll: watcher for each pollfd */
  size_t npfd, pfd_cap;
};

/* ---- loop.c ---- */
uint64_t lsmtp__monotonic_ms(void);
/* Create a loop on a given backend (tests run both). */
int lsmtp__loop_new_backend(lsmtp_loop **out, const lsmtp_allocator *alloc,
                            const lsmtp__backend *backend);
void lsmtp__loop_defer(lsmtp_loop *loop, lsmtp__deferred *node,
                       void (*run)(lsmtp__deferred *self));
/* Make sure the ready list can hold one entry per watcher. */
int lsmtp__loop_reserve_ready(lsmtp_loop *loop, size_t n);
void lsmtp__log(lsmtp_loop *loop, lsmtp_net_log_level level, const char *fmt,
                ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Watchers and timers embedded in larger objects (no allocation). An
 * embedded watcher is closed with lsmtp__io_close; the memory around it
 * must then stay valid until the end of the iteration (lsmtp__loop_defer). */
int lsmtp__io_init(lsmtp_loop *loop, lsmtp_io *io, int fd, unsigned events,
                   lsmtp_io_cb cb, void *user_data);
void lsmtp__io_close(lsmtp_io *io);

/* ---- addr.c ---- */
int lsmtp__set_nonblock_cloexec(int fd);

/* ---- timer.c ---- */
void lsmtp__timer_init(lsmtp_loop *loop, lsmtp_timer *t, lsmtp_timer_cb cb,
                       void *user_data);
/* Start at an absolute loop time. */
int lsmtp__timer_start_at(lsmtp_timer *t, uint64_t deadline);
/* ms until the nearest timer (0 if due), or -1 when none. */
int lsmtp__timers_next_ms(const lsmtp_loop *loop);
void lsmtp__timers_run(lsmtp_loop *loop);

#endif
