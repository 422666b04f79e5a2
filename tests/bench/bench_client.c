/* bench_client HOST PORT COUNT MSGFILE: send COUNT copies of MSGFILE
 * through ONE connection with the library's client session (PIPELINING:
 * MAIL, RCPT and DATA in one write per message), from a@bench.example to
 * b@bench.example. Exits 0 only when the server accepted every message.
 * Made for /work/shared/bench/client_bench.sh (see docs/performance.md,
 * "Client"); prints one summary line on stderr. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lsmtp/lsmtp.h>
#include <lsmtp/submit.h>

typedef struct bench {
  lsmtp_client *cli;
  const char *msg;
  size_t msg_len, off;
  unsigned long count, sent, accepted, failed;
} bench;

static int read_body(void *ud, char *buf, size_t cap, size_t *len) {
  bench *b = ud;
  size_t n = b->msg_len - b->off;
  if (n > cap) n = cap;
  memcpy(buf, b->msg + b->off, n);
  b->off += n;
  *len = n;
  return n ? LSMTP_OK : LSMTP_DONE;
}

static int on_ready(void *ud) {
  bench *b = ud;
  if (b->sent == b->count || b->failed) return lsmtp_client_quit(b->cli);
  static const lsmtp_client_rcpt rcpt = {"b@bench.example", 0, NULL};
  lsmtp_client_message m;
  memset(&m, 0, sizeof m);
  m.reverse_path = "a@bench.example";
  m.rcpts = &rcpt;
  m.n_rcpts = 1;
  m.size_hint = b->msg_len;
  m.read = read_body;
  b->off = 0;
  b->sent++;
  return lsmtp_client_send(b->cli, &m);
}

static int on_message_done(void *ud, int status, const lsmtp_reply *r) {
  bench *b = ud;
  if (status == LSMTP_OK) b->accepted++;
  else {
    b->failed++;
    fprintf(stderr, "bench_client: message %lu: %s (%d %s)\n", b->sent,
            lsmtp_strerror(status), r ? r->code : 0, r ? r->text : "");
  }
  return 0;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *p = malloc(cap);
  while (p) {
    n += fread(p + n, 1, cap - n, f);
    if (n < cap) break;
    char *np = realloc(p, cap *= 2);
    if (!np) {
      free(p);
      p = NULL;
    } else {
      p = np;
    }
  }
  fclose(f);
  *len = n;
  return p;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: bench_client HOST PORT COUNT MSGFILE\n");
    return 64;
  }
  bench b;
  memset(&b, 0, sizeof b);
  unsigned port = (unsigned)strtoul(argv[2], NULL, 10);
  b.count = strtoul(argv[3], NULL, 10);
  char *msg = slurp(argv[4], &b.msg_len);
  if (!msg || b.count == 0) {
    fprintf(stderr, "bench_client: cannot read %s (or COUNT is 0)\n", argv[4]);
    return 66;
  }
  b.msg = msg;
  int fd;
  lsmtp_tcp_connect_info info;
  int rc = lsmtp_tcp_connect(argv[1], port, 10000, &fd, &info);
  if (rc != LSMTP_OK) {
    fprintf(stderr, "bench_client: connect: %s (%s)\n", lsmtp_strerror(rc),
            strerror(info.os_error));
    return 75;
  }
  lsmtp_client_config *cfg;
  lsmtp_client_config_new(&cfg, NULL);
  lsmtp_client_config_set_helo_name(cfg, "bench.example");
  for (int t = 0; t < (int)LSMTP_CLIENT_TIMER_COUNT_; t++)
    lsmtp_client_config_set_timeout(cfg, (lsmtp_client_timer)t, 30000);
  lsmtp_client_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  cbs.on_ready = on_ready;
  cbs.on_message_done = on_message_done;
  if (lsmtp_client_new(&b.cli, cfg, &cbs, &b) != LSMTP_OK) return 71;
  lsmtp_client_config_del(cfg);

  const double t0 = now_s();
  char buf[65536];
  for (;;) {
    const char *p;
    size_t n;
    int blocked = 0;
    while ((n = lsmtp_client_pending(b.cli, &p)) > 0) {
      ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
      if (w > 0) {
        lsmtp_client_consume(b.cli, (size_t)w);
      } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
        blocked = 1;
        break;
      } else {
        lsmtp_client_eof(b.cli);
        break;
      }
    }
    lsmtp_client_state st = lsmtp_client_state_get(b.cli);
    if (st == LSMTP_CLIENT_CLOSED || st == LSMTP_CLIENT_FAILED) break;
    struct pollfd pfd = {fd, (short)((lsmtp_client_want_read(b.cli) ? POLLIN : 0) |
                                     (blocked ? POLLOUT : 0)), 0};
    int to = (int)lsmtp_client_timeout_ms(b.cli);
    int pn = poll(&pfd, 1, to ? to : 30000);
    if (pn == 0) {
      lsmtp_client_timeout(b.cli);
      break;
    }
    if (pn < 0) continue;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) lsmtp_client_feed(b.cli, buf, (size_t)r, NULL);
      else if (r == 0) lsmtp_client_eof(b.cli);
    }
  }
  const double took = now_s() - t0;
  int err = lsmtp_client_error(b.cli);
  fprintf(stderr, "bench_client: %lu/%lu accepted in %.3f s (%.0f msg/s)%s%s\n", b.accepted,
          b.count, took, took > 0 ? (double)b.accepted / took : 0.0, err ? ", session: " : "",
          err ? lsmtp_strerror(err) : "");
  lsmtp_client_del(b.cli);
  close(fd);
  free(msg);
  return b.accepted == b.count ? 0 : 1;
}
