/* A bounded TCP connect for clients: resolve a name, try every address it
 * has (IPv6 and IPv4, in the resolver's order) with a non-blocking
 * connect and poll(), and stop at the first that answers or when the
 * total timeout runs out. Each address gets an equal share of the time
 * left, so one black-holed address cannot eat the whole budget. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lsmtp/submit.h>

#include "internal.h"

#define DEFAULT_CONNECT_MS 30000u
#define MAX_HOST 255

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "[::1]" -> "::1": getaddrinfo wants the bare address. */
static int strip_brackets(const char *host, char *out, size_t cap) {
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    host++;
    n -= 2;
  }
  if (n == 0 || n >= cap) return LSMTP_ERR_INVALID;
  memcpy(out, host, n);
  out[n] = '\0';
  return LSMTP_OK;
}

/* Start one non-blocking connect and wait for it at most wait_ms.
 * Returns the connected fd, or -1 with *err set (ETIMEDOUT on timeout). */
static int try_one(const struct addrinfo *ai, uint64_t wait_ms, int *err) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  ai->ai_protocol);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  int rc;
  do rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) {
    *err = errno;
    close(fd);
    return -1;
  }
  if (rc != 0) {
    const uint64_t deadline = now_ms() + wait_ms;
    for (;;) {
      uint64_t now = now_ms();
      if (now >= deadline) {
        *err = ETIMEDOUT;
        close(fd);
        return -1;
      }
      struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
      uint64_t left = deadline - now;
      int n = poll(&p, 1, left > 600000u ? 600000 : (int)left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *err = errno;
        close(fd);
        return -1;
      }
      if (n > 0) break;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr != 0) {
      *err = soerr;
      close(fd);
      return -1;
    }
  }
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int lsmtp_tcp_connect(const char *host, unsigned port, uint32_t timeout_ms,
                      int *fd_out, lsmtp_tcp_connect_info *info) {
  lsmtp_tcp_connect_info dummy;
  if (!info) info = &dummy;
  memset(info, 0, sizeof *info);
  if (fd_out) *fd_out = -1;
  char name[MAX_HOST + 1];
  if (!host || !fd_out || port == 0 || port > 65535 ||
      strip_brackets(host, name, sizeof name) != LSMTP_OK)
    return LSMTP_ERR_INVALID;
  char service[8];
  snprintf(service, sizeof service, "%u", port);

  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;
  struct addrinfo *list = NULL;
  int g = getaddrinfo(name, service, &hints, &list);
  if (g != 0) {
    info->gai_error = g;
    if (g == EAI_SYSTEM) info->os_error = errno;
    return LSMTP_ERR_DNS;
  }
  size_t count = 0;
  for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) count++;

  const uint64_t budget = timeout_ms ? timeout_ms : DEFAULT_CONNECT_MS;
  const uint64_t deadline = now_ms() + budget;
  int status = LSMTP_ERR_IO, timed_out = 0;
  size_t left = count;
  for (const struct addrinfo *ai = list; ai; ai = ai->ai_next, left--) {
    uint64_t now = now_ms();
    if (now >= deadline) {
      timed_out = 1;
      break;
    }
    lsmtp_net_addr_format(ai->ai_addr, ai->ai_addrlen, info->peer, sizeof info->peer);
    info->attempts++;
    int err = 0;
    int fd = try_one(ai, (deadline - now) / left, &err);
    if (fd >= 0) {
      info->os_error = 0;
      *fd_out = fd;
      status = LSMTP_OK;
      break;
    }
    info->os_error = err;
    if (err == ETIMEDOUT) timed_out = 1;
  }
  freeaddrinfo(list);
  if (status != LSMTP_OK && timed_out && info->os_error == ETIMEDOUT)
    status = LSMTP_ERR_TIMEOUT;
  return status;
}
