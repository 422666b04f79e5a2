/* The poll() backend: portable POSIX, used where epoll is missing (and by
 * the tests on Linux too). Watchers live in one pollfd array; removal
 * swaps the last entry into the hole. A paused watcher keeps its slot with
 * fd -1, which poll() skips (it would otherwise still report hang-ups). */
#include <errno.h>
#include <poll.h>

#include "net_int.h"

static struct pollfd *pfds(lsmtp_loop *loop) { return loop->pfds; }

static short to_poll(unsigned events) {
  short e = 0;
  if (events & LSMTP_IO_READ) e |= POLLIN;
  if (events & LSMTP_IO_WRITE) e |= POLLOUT;
  return e;
}

static int poll_init(lsmtp_loop *loop) {
  (void)loop;
  return LSMTP_OK;
}

static void poll_fini(lsmtp_loop *loop) {
  lsmtp__free(loop->alloc, loop->pfds);
  lsmtp__free(loop->alloc, loop->pios);
  loop->pfds = NULL;
  loop->pios = NULL;
  loop->npfd = loop->pfd_cap = 0;
}

static void poll_fill(lsmtp_loop *loop, lsmtp_io *io) {
  struct pollfd *p = &pfds(loop)[io->slot];
  p->fd = io->events ? io->fd : -1;
  p->events = to_poll(io->events);
  p->revents = 0;
}

static int poll_add(lsmtp_loop *loop, lsmtp_io *io) {
  if (loop->npfd == loop->pfd_cap) {
    size_t cap = loop->pfd_cap ? loop->pfd_cap * 2 : 64;
    struct pollfd *p =
        lsmtp__realloc(loop->alloc, loop->pfds, cap * sizeof(struct pollfd));
    if (!p) return LSMTP_ERR_NOMEM;
    loop->pfds = p;
    lsmtp_io **ios = lsmtp__realloc(loop->alloc, loop->pios, cap * sizeof *ios);
    if (!ios) return LSMTP_ERR_NOMEM;
    loop->pios = ios;
    loop->pfd_cap = cap;
  }
  io->slot = loop->npfd++;
  loop->pios[io->slot] = io;
  poll_fill(loop, io);
  io->registered = 1;
  return LSMTP_OK;
}

static int poll_update(lsmtp_loop *loop, lsmtp_io *io) {
  poll_fill(loop, io);
  return LSMTP_OK;
}

static void poll_remove(lsmtp_loop *loop, lsmtp_io *io) {
  if (!io->registered) return;
  size_t last = --loop->npfd;
  if (io->slot != last) {
    lsmtp_io *moved = loop->pios[last];
    pfds(loop)[io->slot] = pfds(loop)[last];
    loop->pios[io->slot] = moved;
    moved->slot = io->slot;
  }
  io->registered = 0;
}

static int poll_wait(lsmtp_loop *loop, int timeout_ms) {
  int n = poll(pfds(loop), (nfds_t)loop->npfd, timeout_ms);
  if (n < 0) return errno == EINTR ? LSMTP_OK : LSMTP_ERR_IO;
  for (size_t i = 0; i < loop->npfd && n > 0; i++) {
    short r = pfds(loop)[i].revents;
    if (!r) continue;
    n--;
    unsigned ev = 0;
    if (r & POLLIN) ev |= LSMTP_IO_READ;
    if (r & POLLOUT) ev |= LSMTP_IO_WRITE;
    if (r & (POLLERR | POLLHUP | POLLNVAL)) ev |= LSMTP_IO_READ | LSMTP_IO_WRITE;
    loop->ready[loop->nready].io = loop->pios[i];
    loop->ready[loop->nready].events = ev;
    loop->nready++;
  }
  return LSMTP_OK;
}

const lsmtp__backend lsmtp__backend_poll = {
    "poll",     poll_init,   poll_fini, poll_add,
    poll_update, poll_remove, poll_wait};
