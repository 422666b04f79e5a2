/* bench_tls: the TLS figures of docs/performance.md ("TLS"), measured
 * against a running server's listeners over loopback. Two benchmarks:
 *
 *   bench_tls handshakes HOST PORT N CAFILE NAME [--parallel K]
 *                        [--server-pid PID] [--max-seconds S]
 *     N implicit-TLS connections to PORT, K at a time (default 1, i.e.
 *     sequential), each: TCP connect, TLS handshake through lsmtp_tls
 *     (client role, the certificate verified against CAFILE for NAME), read
 *     the 220 greeting, send QUIT, read the 221, close_notify, close.
 *     Reports handshakes per second, CPU per handshake of this process and
 *     (with --server-pid) of the server, and the negotiated cipher suite.
 *
 *   bench_tls throughput HOST PLAINPORT TLSPORT COUNT SIZE CAFILE NAME
 *                        [--runs R] [--server-pid PID] [--max-seconds S]
 *     R rounds (default 5); each round runs one lsmtp_client session over
 *     plaintext (PLAINPORT) and one over implicit TLS (TLSPORT), in an order
 *     that alternates between rounds, each sending COUNT pipelined messages
 *     of exactly SIZE bytes. Reports MB/s of each and the TLS/plaintext
 *     ratio of the same round, then the medians and bests.
 *
 * NAME is checked against the certificate while HOST is what is dialled,
 * so "127.0.0.1" can be verified as "localhost". HOST must be a loopback
 * address: this is a benchmark, not a load generator. Every loop is bounded
 * by a count and by --max-seconds (default 300). A benchmark program, never
 * a test: it exits 0 when every connection and message succeeded. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lsmtp/lsmtp.h>
#include <lsmtp/tls.h>

#define MAX_PARALLEL 256
#define MAX_RUNS 101
#define CONN_TIMEOUT_S 10.0    /* one handshake connection, start to close */
#define SESSION_POLL_MS 30000  /* a throughput session's longest silence */
#define TLS_OUT_HIGH (256u * 1024u) /* stop encrypting when this much waits */
#define REPLY_CAP 2048         /* greeting / QUIT reply bytes we look at */

/* ---- small utilities ------------------------------------------------------ */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU seconds of this process. */
static double self_cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* User + system CPU seconds of another process from /proc/PID/stat
 * (utime and stime, fields 14 and 15, in clock ticks); -1 when unknown. */
static double proc_cpu_s(long pid) {
  if (pid <= 0) return -1.0;
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1.0;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = '\0';
  char *p = strrchr(line, ')'); /* the command name may hold spaces */
  if (!p) return -1.0;
  unsigned long long utime = 0, stime = 0;
  /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime(14) stime(15) */
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
             &stime) != 2)
    return -1.0;
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return (double)(utime + stime) / (double)hz;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *v, size_t n) {
  double tmp[MAX_RUNS];
  if (n == 0 || n > MAX_RUNS) return 0.0;
  memcpy(tmp, v, n * sizeof *v);
  qsort(tmp, n, sizeof *tmp, cmp_double);
  return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2.0;
}

static double best(const double *v, size_t n) {
  double b = 0.0;
  for (size_t i = 0; i < n; i++)
    if (v[i] > b) b = v[i];
  return b;
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max,
                       unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) return -1;
  *out = v;
  return 0;
}

/* The options after the positional arguments (from argv[first] on). */
typedef struct options {
  unsigned long parallel, runs, max_s;
  long server_pid;
  int parallel_given, runs_given;
} options;

static int parse_options(int argc, char **argv, int first, options *o) {
  memset(o, 0, sizeof *o);
  o->parallel = 1;
  o->runs = 5;
  o->max_s = 300;
  if ((argc - first) % 2 != 0) return -1;
  for (int i = first; i + 1 < argc; i += 2) {
    const char *name = argv[i], *val = argv[i + 1];
    unsigned long v;
    if (strcmp(name, "--parallel") == 0 && parse_ulong(val, 1, MAX_PARALLEL, &v) == 0) {
      o->parallel = v;
      o->parallel_given = 1;
    } else if (strcmp(name, "--runs") == 0 && parse_ulong(val, 1, MAX_RUNS, &v) == 0) {
      o->runs = v;
      o->runs_given = 1;
    } else if (strcmp(name, "--server-pid") == 0 && parse_ulong(val, 1, 1ul << 30, &v) == 0) {
      o->server_pid = (long)v;
    } else if (strcmp(name, "--max-seconds") == 0 && parse_ulong(val, 1, 86400, &v) == 0) {
      o->max_s = v;
    } else {
      return -1;
    }
  }
  return 0;
}

/* ---- addresses and sockets ------------------------------------------------ */

typedef struct target {
  struct sockaddr_storage addr;
  socklen_t len;
} target;

static int is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const unsigned char *b =
        (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    return b[0] == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a);
  }
  return 0;
}

/* Resolve a numeric host once; the benchmark dials the same address
 * every time. Only loopback addresses are accepted. */
static int resolve(const char *host, const char *port, target *t) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  char h[64];
  size_t hl = strlen(host);
  if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof h) {
    memcpy(h, host + 1, hl - 2); /* "[::1]" */
    h[hl - 2] = '\0';
    host = h;
  }
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0 || !res) {
    fprintf(stderr, "bench_tls: %s port %s: %s (give a numeric address)\n", host, port,
            rc ? gai_strerror(rc) : "no address");
    return -1;
  }
  if (!is_loopback(res->ai_addr) || res->ai_addrlen > sizeof t->addr) {
    fprintf(stderr, "bench_tls: %s is not a loopback address\n", host);
    freeaddrinfo(res);
    return -1;
  }
  memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
  t->len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* Start a non-blocking connect. *connecting is set when the connection is
 * not complete yet (wait for POLLOUT, then check_connected). */
static int start_connect(const target *t, int *connecting) {
  int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  *connecting = 0;
  if (connect(fd, (const struct sockaddr *)&t->addr, t->len) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    *connecting = 1;
  }
  return fd;
}

/* 0 when the pending connect succeeded, else the errno. */
static int check_connected(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

/* Write the filter's ciphertext to the socket. Returns 0 when all of it
 * went, 1 when the socket is full (wait for POLLOUT), -1 on an error. */
static int flush_tls(lsmtp_tls *tls, int fd) {
  const char *p;
  size_t n;
  for (int i = 0; i < 1024 && (n = lsmtp_tls_pending(tls, &p)) > 0; i++) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      lsmtp_tls_consume(tls, (size_t)w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 1;
    } else {
      return -1;
    }
  }
  return lsmtp_tls_pending(tls, NULL) ? 1 : 0;
}

/* ---- handshakes ------------------------------------------------------------ */

typedef enum hs_phase { HS_CONNECT, HS_HANDSHAKE, HS_GREETING, HS_QUIT, HS_DONE, HS_FAILED } hs_phase;

typedef struct hs_conn {
  int fd;
  lsmtp_tls *tls;
  hs_phase phase;
  int blocked; /* ciphertext waits for POLLOUT */
  char reply[REPLY_CAP];
  size_t reply_len;
  double t_start, t_handshake;
} hs_conn;

typedef struct hs_bench {
  lsmtp_tls_config *cfg;
  const char *name;
  const target *dest;
  unsigned long started, done, failed;
  double sum_handshake_s, sum_total_s;
  char cipher[80], version[24];
} hs_bench;

static void hs_fail(hs_bench *b, hs_conn *c, const char *what, const char *detail) {
  if (b->failed < 5)
    fprintf(stderr, "bench_tls: connection %lu: %s%s%s\n", b->started, what, detail ? ": " : "",
            detail ? detail : "");
  b->failed++;
  c->phase = HS_FAILED;
}

/* Returns the code of a complete final reply line in buf (3 digits and a
 * space or CRLF), 0 when the reply is not complete yet, -1 when garbled. */
static int reply_code(const char *buf, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i + 1 < len; i++) {
    if (buf[i] != '\r' || buf[i + 1] != '\n') continue;
    size_t ll = i - start;
    const char *l = buf + start;
    if (ll < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
        l[2] > '9')
      return -1;
    if (ll == 3 || l[3] == ' ') return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (l[3] != '-') return -1;
    start = i + 2;
  }
  return 0;
}

static void hs_close(hs_conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  lsmtp_tls_del(c->tls);
  c->tls = NULL;
}

/* Move the connection as far as what was fed allows. */
static void hs_progress(hs_bench *b, hs_conn *c) {
  if (c->phase == HS_HANDSHAKE) {
    int rc = lsmtp_tls_handshake(c->tls);
    if (rc == LSMTP_INCOMPLETE) return;
    if (rc != LSMTP_OK) {
      hs_fail(b, c, "handshake failed", lsmtp_tls_error_text(c->tls));
      return;
    }
    c->t_handshake = now_s();
    if (!b->cipher[0]) {
      snprintf(b->cipher, sizeof b->cipher, "%s", lsmtp_tls_cipher(c->tls));
      snprintf(b->version, sizeof b->version, "%s", lsmtp_tls_version(c->tls));
    }
    c->phase = HS_GREETING;
  }
  for (int i = 0; i < 64 && (c->phase == HS_GREETING || c->phase == HS_QUIT); i++) {
    size_t n = 0;
    if (c->reply_len == sizeof c->reply) {
      hs_fail(b, c, "reply too long", NULL);
      return;
    }
    int rc = lsmtp_tls_read(c->tls, c->reply + c->reply_len, sizeof c->reply - c->reply_len, &n);
    if (rc == LSMTP_INCOMPLETE) return;
    if (rc != LSMTP_OK) {
      hs_fail(b, c, rc == LSMTP_DONE ? "server closed the TLS session" : lsmtp_strerror(rc),
              lsmtp_tls_error_text(c->tls));
      return;
    }
    c->reply_len += n;
    int code = reply_code(c->reply, c->reply_len);
    if (code == 0) continue;
    if (c->phase == HS_GREETING && code == 220) {
      c->reply_len = 0;
      if (lsmtp_tls_write(c->tls, "QUIT\r\n", 6) != LSMTP_OK) {
        hs_fail(b, c, "TLS write", lsmtp_tls_error_text(c->tls));
        return;
      }
      c->phase = HS_QUIT;
    } else if (c->phase == HS_QUIT && code == 221) {
      lsmtp_tls_close(c->tls); /* close_notify, written below if it fits */
      c->phase = HS_DONE;
    } else {
      char what[64];
      snprintf(what, sizeof what, "unexpected reply %d", code);
      hs_fail(b, c, what, NULL);
    }
  }
}

/* Handle poll results for one connection. */
static void hs_step(hs_bench *b, hs_conn *c, short revents) {
  if (c->phase == HS_CONNECT) {
    if (!(revents & (POLLOUT | POLLERR | POLLHUP))) return;
    int err = check_connected(c->fd);
    if (err) {
      hs_fail(b, c, "connect", strerror(err));
      return;
    }
    c->phase = HS_HANDSHAKE;
    hs_progress(b, c); /* the ClientHello */
  } else if (revents & (POLLIN | POLLERR | POLLHUP)) {
    char buf[16384];
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r == 0) {
      hs_fail(b, c, "server closed the connection", NULL);
      return;
    }
    if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        hs_fail(b, c, "recv", strerror(errno));
      return;
    }
    size_t off = 0;
    /* The filter takes a bounded amount; what it left waits until the
     * records before it were read out. */
    for (int i = 0; i < 64 && off < (size_t)r && c->phase != HS_FAILED; i++) {
      size_t used = 0;
      if (lsmtp_tls_feed(c->tls, buf + off, (size_t)r - off, &used) != LSMTP_OK) {
        hs_fail(b, c, "TLS feed", NULL);
        return;
      }
      off += used;
      hs_progress(b, c);
      if (c->phase == HS_DONE) break; /* anything after the 221 is ignored */
    }
    if (off < (size_t)r && c->phase != HS_FAILED && c->phase != HS_DONE) {
      hs_fail(b, c, "TLS input not consumed", NULL);
      return;
    }
  }
  if (c->phase == HS_FAILED) return;
  int f = flush_tls(c->tls, c->fd);
  if (f < 0 && c->phase != HS_DONE) hs_fail(b, c, "send", strerror(errno));
  c->blocked = f > 0;
}

static int hs_start(hs_bench *b, hs_conn *c) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
  b->started++;
  c->t_start = now_s();
  int connecting = 0;
  c->fd = start_connect(b->dest, &connecting);
  if (c->fd < 0) {
    hs_fail(b, c, "connect", strerror(errno));
    return -1;
  }
  int rc = lsmtp_tls_new(&c->tls, b->cfg, b->name);
  if (rc != LSMTP_OK) {
    hs_fail(b, c, "lsmtp_tls_new", lsmtp_strerror(rc));
    return -1;
  }
  c->phase = HS_CONNECT;
  if (!connecting) hs_step(b, c, POLLOUT);
  return 0;
}

static int run_handshakes(int argc, char **argv) {
  if (argc < 7) return 64;
  unsigned long n = 0, parallel, max_s;
  long server_pid;
  options opt;
  if (parse_ulong(argv[4], 1, 10000000, &n) != 0) {
    fprintf(stderr, "bench_tls: N must be 1..10000000\n");
    return 64;
  }
  if (parse_options(argc, argv, 7, &opt) != 0 || opt.runs_given) return 64;
  parallel = opt.parallel;
  server_pid = opt.server_pid;
  max_s = opt.max_s;
  target dest;
  if (resolve(argv[2], argv[3], &dest) != 0) return 64;

  hs_bench b;
  memset(&b, 0, sizeof b);
  b.name = argv[6];
  b.dest = &dest;
  if (lsmtp_tls_config_new(&b.cfg, NULL, LSMTP_TLS_CLIENT) != LSMTP_OK) {
    fprintf(stderr, "bench_tls: no TLS in this build\n");
    return 69;
  }
  if (lsmtp_tls_config_set_ca_file(b.cfg, argv[5]) != LSMTP_OK) {
    fprintf(stderr, "bench_tls: %s: %s\n", argv[5], lsmtp_tls_config_error(b.cfg));
    lsmtp_tls_config_del(b.cfg);
    return 66;
  }

  hs_conn conns[MAX_PARALLEL];
  size_t active = 0;
  struct pollfd pfds[MAX_PARALLEL];
  const double srv0 = proc_cpu_s(server_pid), cpu0 = self_cpu_s(), t0 = now_s();
  const double deadline = t0 + (double)max_s;
  int timed_out = 0;
  /* Each iteration finishes or advances at least one connection, or
   * polls for at most a second; the deadline bounds the whole. */
  while ((b.started < n || active > 0) && !timed_out) {
    while (active < parallel && b.started < n) hs_start(&b, &conns[active++]);
    const double now = now_s();
    size_t k = 0;
    for (size_t i = 0; i < active; i++) { /* retire finished connections */
      hs_conn *c = &conns[i];
      if (c->phase == HS_DONE) {
        flush_tls(c->tls, c->fd); /* best effort: the close_notify */
        b.done++;
        b.sum_handshake_s += c->t_handshake - c->t_start;
        b.sum_total_s += now - c->t_start;
        hs_close(c);
      } else if (c->phase == HS_FAILED) {
        hs_close(c);
      } else if (now - c->t_start > CONN_TIMEOUT_S) {
        hs_fail(&b, c, "timed out", NULL);
        hs_close(c);
      } else {
        conns[k++] = *c;
      }
    }
    active = k;
    if (active == 0) continue;
    if (now > deadline) {
      timed_out = 1;
      break;
    }
    for (size_t i = 0; i < active; i++) {
      pfds[i].fd = conns[i].fd;
      pfds[i].events = conns[i].phase == HS_CONNECT
                           ? POLLOUT
                           : (short)(POLLIN | (conns[i].blocked ? POLLOUT : 0));
      pfds[i].revents = 0;
    }
    int pn = poll(pfds, (nfds_t)active, 1000);
    if (pn < 0 && errno != EINTR) break;
    for (size_t i = 0; pn > 0 && i < active; i++)
      if (pfds[i].revents) hs_step(&b, &conns[i], pfds[i].revents);
  }
  const double wall = now_s() - t0, cpu = self_cpu_s() - cpu0;
  const double srv1 = proc_cpu_s(server_pid);
  for (size_t i = 0; i < active; i++) hs_close(&conns[i]);
  if (timed_out) fprintf(stderr, "bench_tls: stopped after --max-seconds %lu\n", max_s);

  const double d = b.done ? (double)b.done : 1.0;
  printf("handshakes: %lu/%lu done, %lu failed, parallel %lu, %.3f s\n", b.done, n, b.failed,
         parallel, wall);
  if (b.cipher[0])
    printf("  negotiated:             %s %s (server name %s)\n", b.version, b.cipher, b.name);
  printf("  handshakes/s:           %.1f\n", wall > 0 ? (double)b.done / wall : 0.0);
  printf("  mean connect+handshake: %.3f ms\n", b.sum_handshake_s / d * 1e3);
  printf("  mean whole connection:  %.3f ms (to the 221 of QUIT)\n", b.sum_total_s / d * 1e3);
  printf("  client CPU/handshake:   %.0f us\n", cpu / d * 1e6);
  if (srv0 >= 0 && srv1 >= 0)
    printf("  server CPU/handshake:   %.0f us (pid %ld, /proc ticks of %.0f ms)\n",
           (srv1 - srv0) / d * 1e6, server_pid, 1e3 / (double)sysconf(_SC_CLK_TCK));
  lsmtp_tls_config_del(b.cfg);
  return b.done == n ? 0 : 1;
}

/* ---- throughput -------------------------------------------------------------- */

typedef struct tp_sess {
  lsmtp_client *cli;
  const char *msg;
  size_t msg_len, off;
  unsigned long count, sent, accepted, failed;
  long server_pid;
  /* The measured window: from the first READY (after the handshake and
   * EHLO) to the last message's reply, in wall time and in CPU. */
  double t_ready, t_end, cpu_ready, cpu_end, srv_ready, srv_end;
} tp_sess;

static int tp_read_body(void *ud, char *buf, size_t cap, size_t *len) {
  tp_sess *s = ud;
  size_t n = s->msg_len - s->off;
  if (n > cap) n = cap;
  memcpy(buf, s->msg + s->off, n);
  s->off += n;
  *len = n;
  return n ? LSMTP_OK : LSMTP_DONE;
}

static int tp_on_ready(void *ud) {
  tp_sess *s = ud;
  if (s->t_ready == 0.0) {
    s->t_ready = now_s();
    s->cpu_ready = self_cpu_s();
    s->srv_ready = proc_cpu_s(s->server_pid);
  }
  if (s->sent == s->count || s->failed) return lsmtp_client_quit(s->cli);
  static const lsmtp_client_rcpt rcpt = {"b@bench.example", 0, NULL};
  lsmtp_client_message m;
  memset(&m, 0, sizeof m);
  m.reverse_path = "a@bench.example";
  m.rcpts = &rcpt;
  m.n_rcpts = 1;
  m.size_hint = s->msg_len;
  m.read = tp_read_body;
  s->off = 0;
  s->sent++;
  return lsmtp_client_send(s->cli, &m);
}

static int tp_on_message_done(void *ud, int status, const lsmtp_reply *r) {
  tp_sess *s = ud;
  if (status == LSMTP_OK) {
    s->accepted++;
  } else {
    s->failed++;
    fprintf(stderr, "bench_tls: message %lu: %s (%d %s)\n", s->sent, lsmtp_strerror(status),
            r ? r->code : 0, r ? r->text : "");
  }
  if (s->accepted + s->failed == s->count) {
    s->t_end = now_s();
    s->cpu_end = self_cpu_s();
    s->srv_end = proc_cpu_s(s->server_pid);
  }
  return 0;
}

/* One message of exactly size bytes: a header block and 78-octet lines
 * (none starting with '.', so DATA needs no dot-stuffing). */
static char *make_message(size_t size) {
  static const char head[] =
      "From: a@bench.example\r\nTo: b@bench.example\r\nSubject: bench_tls\r\n\r\n";
  if (size < sizeof head + 2) return NULL;
  char *m = malloc(size);
  if (!m) return NULL;
  memcpy(m, head, sizeof head - 1);
  const size_t body = sizeof head - 1;
  for (size_t i = body; i < size; i++) {
    const size_t col = (i - body) % 78;
    m[i] = col == 76 ? '\r' : col == 77 ? '\n' : (char)('a' + (i / 78) % 26);
  }
  m[size - 2] = '\r'; /* end on CRLF without leaving a bare CR before it */
  m[size - 1] = '\n';
  if (m[size - 3] == '\r') m[size - 3] = 'x';
  return m;
}

typedef struct tp_result {
  double mbps, secs, client_cpu_s, server_cpu_s;
  unsigned ext;
  char cipher[80];
} tp_result;

/* Write what the session has, through the filter when there is one.
 * Returns 0, 1 (socket full) or -1. */
static int tp_write(lsmtp_client *cli, lsmtp_tls *tls, int fd) {
  const char *p;
  size_t n;
  for (int i = 0; i < 4096; i++) {
    if (!tls) {
      if ((n = lsmtp_client_pending(cli, &p)) == 0) return 0;
      ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
      if (w > 0) lsmtp_client_consume(cli, (size_t)w);
      else if (w < 0 && errno == EINTR) continue;
      else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
      else return -1;
      continue;
    }
    int f = flush_tls(tls, fd);
    if (f != 0) return f;
    if (!lsmtp_tls_is_established(tls)) return 0;
    int moved = 0;
    while (lsmtp_tls_pending(tls, NULL) < TLS_OUT_HIGH && (n = lsmtp_client_pending(cli, &p)) > 0) {
      if (lsmtp_tls_write(tls, p, n) != LSMTP_OK) return -1;
      lsmtp_client_consume(cli, n);
      moved = 1;
    }
    if (!moved) return flush_tls(tls, fd);
  }
  return 1;
}

/* Hand bytes read from the socket to the session, decrypting when TLS. */
static int tp_read(lsmtp_client *cli, lsmtp_tls *tls, const char *buf, size_t len) {
  if (!tls) return lsmtp_client_feed(cli, buf, len, NULL) == LSMTP_OK ? 0 : -1;
  size_t off = 0;
  char plain[16384];
  for (int i = 0; i < 4096; i++) {
    size_t used = 0;
    if (off < len && lsmtp_tls_feed(tls, buf + off, len - off, &used) != LSMTP_OK) return -1;
    off += used;
    size_t n = 0;
    int rc = lsmtp_tls_read(tls, plain, sizeof plain, &n);
    if (rc == LSMTP_OK) {
      if (lsmtp_client_feed(cli, plain, n, NULL) != LSMTP_OK) return -1;
    } else if (rc == LSMTP_INCOMPLETE) {
      if (off == len) return 0;
      if (used == 0) return -1; /* the filter took nothing and gave nothing */
    } else if (rc == LSMTP_DONE) {
      lsmtp_client_eof(cli);
      return 0;
    } else {
      fprintf(stderr, "bench_tls: %s\n", lsmtp_tls_error_text(tls));
      return -1;
    }
  }
  return -1;
}

static int run_session(const target *dest, lsmtp_tls_config *tcfg, const char *name,
                       const char *msg, size_t size, unsigned long count, double deadline,
                       long server_pid, tp_result *res) {
  memset(res, 0, sizeof *res);
  tp_sess s;
  memset(&s, 0, sizeof s);
  s.msg = msg;
  s.msg_len = size;
  s.count = count;
  s.server_pid = server_pid;
  int connecting = 0, rc = -1;
  lsmtp_tls *tls = NULL;
  int fd = start_connect(dest, &connecting);
  if (fd < 0) {
    fprintf(stderr, "bench_tls: connect: %s\n", strerror(errno));
    return -1;
  }
  if (connecting) {
    struct pollfd pfd = {fd, POLLOUT, 0};
    if (poll(&pfd, 1, 10000) != 1 || check_connected(fd) != 0) {
      fprintf(stderr, "bench_tls: connect failed\n");
      close(fd);
      return -1;
    }
  }
  if (tcfg && lsmtp_tls_new(&tls, tcfg, name) != LSMTP_OK) {
    close(fd);
    return -1;
  }
  lsmtp_client_config *cfg;
  if (lsmtp_client_config_new(&cfg, NULL) != LSMTP_OK) goto out;
  lsmtp_client_config_set_helo_name(cfg, "bench.example");
  for (int t = 0; t < (int)LSMTP_CLIENT_TIMER_COUNT_; t++)
    lsmtp_client_config_set_timeout(cfg, (lsmtp_client_timer)t, SESSION_POLL_MS);
  lsmtp_client_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  cbs.on_ready = tp_on_ready;
  cbs.on_message_done = tp_on_message_done;
  int nrc = lsmtp_client_new(&s.cli, cfg, &cbs, &s);
  lsmtp_client_config_del(cfg);
  if (nrc != LSMTP_OK) goto out;
  if (tls) lsmtp_client_set_secure(s.cli, 1); /* implicit TLS, verified */

  char buf[65536];
  /* Bounded by the deadline: every poll waits at most SESSION_POLL_MS. */
  while (now_s() < deadline) {
    if (tls && !lsmtp_tls_is_established(tls)) {
      int h = lsmtp_tls_handshake(tls);
      if (h != LSMTP_OK && h != LSMTP_INCOMPLETE) {
        fprintf(stderr, "bench_tls: handshake: %s\n", lsmtp_tls_error_text(tls));
        break;
      }
    }
    int blocked = tp_write(s.cli, tls, fd);
    if (blocked < 0) {
      lsmtp_client_eof(s.cli);
      break;
    }
    lsmtp_client_state st = lsmtp_client_state_get(s.cli);
    if (st == LSMTP_CLIENT_CLOSED || st == LSMTP_CLIENT_FAILED) break;
    struct pollfd pfd = {fd, (short)(POLLIN | (blocked ? POLLOUT : 0)), 0};
    int pn = poll(&pfd, 1, SESSION_POLL_MS);
    if (pn == 0) {
      lsmtp_client_timeout(s.cli);
      break;
    }
    if (pn < 0) continue;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        if (tp_read(s.cli, tls, buf, (size_t)r) != 0) break;
      } else if (r == 0) {
        lsmtp_client_eof(s.cli);
      } else if (errno != EAGAIN && errno != EINTR) {
        break;
      }
    }
  }
  res->client_cpu_s = s.cpu_end - s.cpu_ready;
  res->server_cpu_s = s.srv_ready >= 0 && s.srv_end >= 0 ? s.srv_end - s.srv_ready : -1.0;
  res->ext = lsmtp_client_extensions(s.cli);
  if (tls) snprintf(res->cipher, sizeof res->cipher, "%s", lsmtp_tls_cipher(tls));
  if (s.accepted == count && s.t_end > s.t_ready) {
    res->secs = s.t_end - s.t_ready;
    res->mbps = (double)count * (double)size / res->secs / 1e6;
    rc = 0;
  } else {
    fprintf(stderr, "bench_tls: %s session: %lu/%lu accepted (%s)\n", tls ? "TLS" : "plaintext",
            s.accepted, count, lsmtp_strerror(lsmtp_client_error(s.cli)));
  }
out:
  lsmtp_client_del(s.cli);
  if (tls) {
    lsmtp_tls_close(tls);
    flush_tls(tls, fd);
  }
  lsmtp_tls_del(tls);
  close(fd);
  return rc;
}

static int run_throughput(int argc, char **argv) {
  if (argc < 9) return 64;
  unsigned long count = 0, size = 0, runs, max_s;
  long server_pid;
  options opt;
  if (parse_ulong(argv[5], 1, 1000000, &count) != 0 ||
      parse_ulong(argv[6], 128, 64ul * 1024 * 1024, &size) != 0) {
    fprintf(stderr, "bench_tls: COUNT must be 1..1000000, SIZE 128..64 MiB\n");
    return 64;
  }
  if (parse_options(argc, argv, 9, &opt) != 0 || opt.parallel_given) return 64;
  runs = opt.runs;
  server_pid = opt.server_pid;
  max_s = opt.max_s;
  target plain_dest, tls_dest;
  if (resolve(argv[2], argv[3], &plain_dest) != 0 || resolve(argv[2], argv[4], &tls_dest) != 0)
    return 64;
  lsmtp_tls_config *tcfg;
  if (lsmtp_tls_config_new(&tcfg, NULL, LSMTP_TLS_CLIENT) != LSMTP_OK) {
    fprintf(stderr, "bench_tls: no TLS in this build\n");
    return 69;
  }
  if (lsmtp_tls_config_set_ca_file(tcfg, argv[7]) != LSMTP_OK) {
    fprintf(stderr, "bench_tls: %s: %s\n", argv[7], lsmtp_tls_config_error(tcfg));
    lsmtp_tls_config_del(tcfg);
    return 66;
  }
  char *msg = make_message(size);
  if (!msg) {
    lsmtp_tls_config_del(tcfg);
    return 71;
  }
  const double deadline = now_s() + (double)max_s;
  double plain_mbps[MAX_RUNS], tls_mbps[MAX_RUNS], ratio[MAX_RUNS];
  double plain_cpu = 0, tls_cpu = 0, plain_srv = 0, tls_srv = 0;
  int srv_known = server_pid > 0;
  size_t done = 0;
  unsigned ext = 0;
  char cipher[80] = "";
  printf("throughput: %lu messages of %lu bytes per session, %lu rounds\n", count, size, runs);
  printf("  round  order      plaintext MB/s   TLS MB/s   TLS/plaintext\n");
  for (unsigned long r = 0; r < runs; r++) {
    tp_result pr, tr;
    int ok;
    /* Alternate which goes first so neither always follows the other. */
    if (r % 2 == 0)
      ok = run_session(&plain_dest, NULL, NULL, msg, size, count, deadline, server_pid, &pr) == 0 &&
           run_session(&tls_dest, tcfg, argv[8], msg, size, count, deadline, server_pid, &tr) == 0;
    else
      ok = run_session(&tls_dest, tcfg, argv[8], msg, size, count, deadline, server_pid, &tr) == 0 &&
           run_session(&plain_dest, NULL, NULL, msg, size, count, deadline, server_pid, &pr) == 0;
    if (!ok) break;
    plain_mbps[done] = pr.mbps;
    tls_mbps[done] = tr.mbps;
    ratio[done] = tr.mbps / pr.mbps;
    plain_cpu += pr.client_cpu_s;
    tls_cpu += tr.client_cpu_s;
    if (pr.server_cpu_s < 0 || tr.server_cpu_s < 0) srv_known = 0;
    plain_srv += pr.server_cpu_s;
    tls_srv += tr.server_cpu_s;
    ext = pr.ext;
    snprintf(cipher, sizeof cipher, "%s", tr.cipher);
    printf("  %5lu  %-9s  %14.1f  %9.1f   %13.3f\n", r + 1, r % 2 ? "TLS first" : "plain first",
           pr.mbps, tr.mbps, ratio[done]);
    done++;
  }
  int rc = 1;
  if (done > 0) {
    const double mb = (double)done * (double)count * (double)size / 1e6;
    printf("  cipher suite: %s; body sent with %s\n", cipher,
           ext & LSMTP_EXT_CHUNKING ? "BDAT (CHUNKING)" : "DATA");
    printf("  median MB/s: plaintext %.1f, TLS %.1f; median of the per-round ratios %.3f\n",
           median(plain_mbps, done), median(tls_mbps, done), median(ratio, done));
    printf("  best MB/s:   plaintext %.1f, TLS %.1f; ratio of the bests %.3f\n",
           best(plain_mbps, done), best(tls_mbps, done),
           best(tls_mbps, done) / best(plain_mbps, done));
    printf("  client CPU per MB: plaintext %.0f us, TLS %.0f us\n", plain_cpu / mb * 1e6,
           tls_cpu / mb * 1e6);
    if (srv_known)
      printf("  server CPU per MB: plaintext %.0f us, TLS %.0f us\n", plain_srv / mb * 1e6,
             tls_srv / mb * 1e6);
    rc = done == runs ? 0 : 1;
  }
  free(msg);
  lsmtp_tls_config_del(tcfg);
  return rc;
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench_tls handshakes HOST PORT N CAFILE NAME [--parallel K]\n"
          "                 [--server-pid PID] [--max-seconds S]\n"
          "       bench_tls throughput HOST PLAINPORT TLSPORT COUNT SIZE CAFILE NAME\n"
          "                 [--runs R] [--server-pid PID] [--max-seconds S]\n");
  return 64;
}

int main(int argc, char **argv) {
  int rc = 64;
  if (argc >= 2 && strcmp(argv[1], "handshakes") == 0) rc = run_handshakes(argc, argv);
  else if (argc >= 2 && strcmp(argv[1], "throughput") == 0) rc = run_throughput(argc, argv);
  return rc == 64 ? usage() : rc;
}
