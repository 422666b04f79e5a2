/* "ADDR:PORT" / "[v6]:PORT" parsing and formatting, and the listening
 * socket helper. Numeric only: a listener never waits on DNS. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "net_int.h"

static int parse_port(const char *s, size_t len, uint16_t *out) {
  if (len == 0 || len > 5) return LSMTP_ERR_SYNTAX;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!lsmtp__is_digit((unsigned char)s[i])) return LSMTP_ERR_SYNTAX;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v > 65535) return LSMTP_ERR_SYNTAX;
  *out = (uint16_t)v;
  return LSMTP_OK;
}

int lsmtp_net_addr_parse(const char *text, struct sockaddr_storage *out,
                         socklen_t *out_len) {
  if (!text || !out || !out_len) return LSMTP_ERR_INVALID;
  memset(out, 0, sizeof *out);
  size_t len = strlen(text);
  char host[INET6_ADDRSTRLEN + 1];
  const char *port;
  size_t host_len;
  int v6 = text[0] == '[';
  if (v6) {
    const char *close = memchr(text, ']', len);
    if (!close || close[1] != ':') return LSMTP_ERR_SYNTAX;
    host_len = (size_t)(close - text - 1);
    memcpy(host, text + 1, host_len < sizeof host ? host_len : 0);
    port = close + 2;
  } else {
    const char *colon = strrchr(text, ':');
    if (!colon) return LSMTP_ERR_SYNTAX;
    host_len = (size_t)(colon - text);
    memcpy(host, text, host_len < sizeof host ? host_len : 0);
    port = colon + 1;
  }
  if (host_len == 0 || host_len >= sizeof host) return LSMTP_ERR_SYNTAX;
  host[host_len] = '\0';
  uint16_t p;
  if (parse_port(port, strlen(port), &p) != LSMTP_OK) return LSMTP_ERR_SYNTAX;
  if (v6) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)out;
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) return LSMTP_ERR_SYNTAX;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(p);
    *out_len = (socklen_t)sizeof *sin6;
  } else {
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)out;
    /* inet_pton accepts only the dotted quad, not "1" or "0x7f.1". */
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) return LSMTP_ERR_SYNTAX;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(p);
    *out_len = (socklen_t)sizeof *sin;
  }
  return LSMTP_OK;
}

size_t lsmtp_net_addr_format(const struct sockaddr *sa, socklen_t len,
                             char *buf, size_t cap) {
  if (!buf || cap == 0) return 0;
  buf[0] = '\0';
  if (!sa) return 0;
  char host[INET6_ADDRSTRLEN];
  int n;
  if (sa->sa_family == AF_INET && (size_t)len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
    if (!inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host)) return 0;
    n = snprintf(buf, cap, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
  } else if (sa->sa_family == AF_INET6 &&
             (size_t)len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *sin6 =
        (const struct sockaddr_in6 *)(const void *)sa;
    if (!inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host)) return 0;
    n = snprintf(buf, cap, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
  } else {
    return 0;
  }
  if (n < 0 || (size_t)n >= cap) {
    buf[0] = '\0';
    return 0;
  }
  return (size_t)n;
}

int lsmtp__set_nonblock_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return LSMTP_ERR_IO;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return LSMTP_ERR_IO;
  return LSMTP_OK;
}

int lsmtp_net_listen(const char *text, int backlog, int *fd_out) {
  if (!fd_out) return LSMTP_ERR_INVALID;
  *fd_out = -1;
  struct sockaddr_storage ss;
  socklen_t sslen;
  int rc = lsmtp_net_addr_parse(text, &ss, &sslen);
  if (rc != LSMTP_OK) return rc;
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return LSMTP_ERR_IO;
  int one = 1;
  int ok = lsmtp__set_nonblock_cloexec(fd) == LSMTP_OK &&
           setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
  /* An IPv6 listener takes only IPv6, so "[::]:25" and "0.0.0.0:25" can be
   * given together whatever the system's bindv6only default is. */
  if (ok && ss.ss_family == AF_INET6)
    ok = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0;
  if (ok) ok = bind(fd, (struct sockaddr *)&ss, sslen) == 0;
  if (ok) ok = listen(fd, backlog > 0 ? backlog : SOMAXCONN) == 0;
  if (!ok) {
    int saved = errno;
    close(fd);
    errno = saved;
    return LSMTP_ERR_IO;
  }
  *fd_out = fd;
  return LSMTP_OK;
}
