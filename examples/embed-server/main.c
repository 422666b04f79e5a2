/* embed-server: the smallest host that drives lsmtp's sans-I/O server
 * session with its own poll() loop and no lib/net at all. It shows the
 * pattern a host with an existing event loop follows: feed what you read,
 * keep what was not consumed, write what is pending, arm one timer, close
 * when the session says so. Messages are counted and thrown away.
 *
 *   embed-server 127.0.0.1 2525      (one client at a time, for clarity)
 *
 * See docs/guide-receiver.md for the walk-through. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lsmtp/lsmtp.h>
#include <lsmtp/server.h>

#include "cli.h"

typedef struct host {
  unsigned long long octets; /* of the current message */
} host;

static int on_data_chunk(lsmtp_server *srv, const char *data, size_t len,
                         void *ud) {
  (void)srv;
  (void)data;
  ((host *)ud)->octets += len; /* a real host streams this to storage */
  return LSMTP_OK;
}

static int on_data_end(lsmtp_server *srv, size_t rcpt_index, void *ud) {
  (void)rcpt_index;
  host *h = ud;
  cli_log(CLI_INFO, "message from <%s>: %llu octets, %zu recipient(s)",
          lsmtp_server_mail_from(srv), h->octets, lsmtp_server_rcpt_count(srv));
  h->octets = 0;
  return LSMTP_OK; /* only say OK once the message is stored durably */
}

static void on_reset(lsmtp_server *srv, int reason, void *ud) {
  (void)srv;
  (void)reason;
  ((host *)ud)->octets = 0;
}

/* Write everything pending; 0 when the socket would block or failed. */
static int flush(int fd, lsmtp_server *srv) {
  const char *p;
  size_t n;
  while ((n = lsmtp_server_pending(srv, &p)) > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) return 0;
    lsmtp_server_consume(srv, (size_t)w);
  }
  return 1;
}

/* Serve one connection until the session or the client ends it. */
static void serve(int fd, const lsmtp_server_config *cfg) {
  host h = {0};
  lsmtp_server_callbacks cb = {0};
  cb.on_data_chunk = on_data_chunk;
  cb.on_data_end = on_data_end;
  cb.on_reset = on_reset;
  lsmtp_server *srv;
  if (lsmtp_server_new(&srv, cfg, &cb, &h) != LSMTP_OK) return;
  lsmtp_server_start(srv); /* queues the greeting */

  char buf[65536];
  size_t kept = 0; /* input the session did not consume yet */
  while (flush(fd, srv) && !lsmtp_server_want_close(srv)) {
    unsigned timeout = lsmtp_server_timeout_ms(srv);
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, timeout ? (int)timeout : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) { /* the state's timer expired: 421 and close */
      lsmtp_server_timeout(srv);
      continue;
    }
    ssize_t n = recv(fd, buf + kept, sizeof buf - kept, 0);
    if (n <= 0) break; /* client gone */
    size_t len = kept + (size_t)n, off = 0;
    while (off < len) {
      size_t used = 0;
      int rc = lsmtp_server_feed(srv, buf + off, len - off, &used);
      off += used;
      if (rc < 0 && rc != LSMTP_ERR_FATAL)
        cli_log(CLI_WARN, "session: %s", lsmtp_strerror(rc));
      /* This host answers every decision at once, so the session only
       * pauses when its output is full: write it out and go on. */
      if (rc != LSMTP_PAUSED || used == 0 || !flush(fd, srv)) break;
    }
    kept = len - off; /* not consumed: fed again with the next read */
    memmove(buf, buf + off, kept);
  }
  flush(fd, srv);
  lsmtp_server_del(srv);
}

int main(int argc, char **argv) {
  cli_log_init("embed-server", 0);
  if (argc != 3) {
    fprintf(stderr, "usage: embed-server ADDR PORT\n");
    return EX_USAGE;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1) {
    fprintf(stderr, "embed-server: bad IPv4 address %s\n", argv[1]);
    return EX_USAGE;
  }
  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(lfd, 16) != 0) {
    cli_log(CLI_ERROR, "cannot listen: %s", strerror(errno));
    return EX_UNAVAILABLE;
  }
  lsmtp_server_config *cfg;
  if (lsmtp_server_config_new(&cfg, NULL) != LSMTP_OK) return EX_OSERR;
  lsmtp_server_config_set_hostname(cfg, "embed.example");
  cli_log(CLI_INFO, "listening on %s:%s", argv[1], argv[2]);
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      break;
    }
    serve(fd, cfg);
    close(fd);
  }
  lsmtp_server_config_del(cfg);
  close(lfd);
  return EX_OSERR;
}
