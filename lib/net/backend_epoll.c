/* The epoll backend (Linux), level-triggered. A paused watcher (no events)
 * is taken out of the set, because epoll reports hang-ups and errors even
 * for an empty event mask and a paused connection would spin. */
#include "net_int.h"

#ifdef LSMTP__HAVE_EPOLL
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

static uint32_t to_epoll(unsigned events) {
  uint32_t e = 0;
  if (events & LSMTP_IO_READ) e |= EPOLLIN | EPOLLRDHUP;
  if (events & LSMTP_IO_WRITE) e |= EPOLLOUT;
  return e;
}

static int epoll_init(lsmtp_loop *loop) {
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  return loop->epfd < 0 ? LSMTP_ERR_IO : LSMTP_OK;
}

static void epoll_fini(lsmtp_loop *loop) {
  if (loop->epfd >= 0) close(loop->epfd);
  loop->epfd = -1;
}

static int epoll_ctl_io(lsmtp_loop *loop, int op, lsmtp_io *io) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = to_epoll(io->events);
  ev.data.ptr = io;
  return epoll_ctl(loop->epfd, op, io->fd, &ev) == 0 ? LSMTP_OK : LSMTP_ERR_IO;
}

static int epoll_add(lsmtp_loop *loop, lsmtp_io *io) {
  if (!io->events) return LSMTP_OK;
  int rc = epoll_ctl_io(loop, EPOLL_CTL_ADD, io);
  if (rc == LSMTP_OK) io->registered = 1;
  return rc;
}

static int epoll_update(lsmtp_loop *loop, lsmtp_io *io) {
  if (!io->events) {
    if (io->registered) epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->registered = 0;
    return LSMTP_OK;
  }
  if (!io->registered) return epoll_add(loop, io);
  return epoll_ctl_io(loop, EPOLL_CTL_MOD, io);
}

static void epoll_remove(lsmtp_loop *loop, lsmtp_io *io) {
  if (io->registered) epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
  io->registered = 0;
}

static int epoll_wait_ready(lsmtp_loop *loop, int timeout_ms) {
  struct epoll_event evs[LSMTP__READY_MIN];
  int n = epoll_wait(loop->epfd, evs, LSMTP__READY_MIN, timeout_ms);
  if (n < 0) return errno == EINTR ? LSMTP_OK : LSMTP_ERR_IO;
  for (int i = 0; i < n; i++) {
    unsigned ev = 0;
    uint32_t e = evs[i].events;
    if (e & (EPOLLIN | EPOLLRDHUP)) ev |= LSMTP_IO_READ;
    if (e & EPOLLOUT) ev |= LSMTP_IO_WRITE;
    if (e & (EPOLLERR | EPOLLHUP)) ev |= LSMTP_IO_READ | LSMTP_IO_WRITE;
    loop->ready[loop->nready].io = evs[i].data.ptr;
    loop->ready[loop->nready].events = ev;
    loop->nready++;
  }
  return LSMTP_OK;
}

const lsmtp__backend lsmtp__backend_epoll = {
    "epoll",     epoll_init,   epoll_fini,      epoll_add,
    epoll_update, epoll_remove, epoll_wait_ready};
#endif
