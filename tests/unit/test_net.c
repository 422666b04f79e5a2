/* The default I/O layer: loop, timers, watchers, address helpers and
 * listeners (both backends), over socketpair() and 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"

/* Each test runs once per backend; the state points at the backend. */
static const lsmtp__backend *backends[] = {
    &lsmtp__backend_poll,
#ifdef LSMTP__HAVE_EPOLL
    &lsmtp__backend_epoll,
#endif
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static lsmtp_loop *new_loop(const lsmtp__backend *b) {
  lsmtp_loop *loop = NULL;
  assert_int_equal(lsmtp__loop_new_backend(&loop, NULL, b), LSMTP_OK);
  assert_non_null(loop);
  return loop;
}

/* ---- timers ---- */

typedef struct fired_log {
  int order[16];
  int n;
  lsmtp_loop *loop;
} fired_log;

typedef struct tagged_timer {
  fired_log *log;
  int tag;
} tagged_timer;

static void record_fire(lsmtp_timer *t, void *ud) {
  (void)t;
  tagged_timer *tt = ud;
  tt->log->order[tt->log->n++] = tt->tag;
}

static void test_timers_fire_in_order(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    lsmtp_loop *loop = new_loop(backends[b]);
    fired_log log = {{0}, 0, loop};
    /* Deadlines 30, 10, 20, 10, 0 ms: expect 5 (0), 2 then 4 (10, start
     * order), 3 (20), 1 (30). Timer 6 is started then stopped. */
    const uint64_t delays[6] = {30, 10, 20, 10, 0, 5};
    tagged_timer tags[6];
    lsmtp_timer *timers[6];
    for (int i = 0; i < 6; i++) {
      tags[i].log = &log;
      tags[i].tag = i + 1;
      assert_int_equal(
          lsmtp_loop_timer_new(loop, &timers[i], record_fire, &tags[i]),
          LSMTP_OK);
    }
    /* Start all against one "now" so equal delays mean equal deadlines. */
    loop->in_iteration = 1;
    for (int i = 0; i < 6; i++)
      assert_int_equal(lsmtp_loop_timer_start(timers[i], delays[i]), LSMTP_OK);
    loop->in_iteration = 0;
    assert_true(lsmtp_loop_timer_active(timers[5]));
    lsmtp_loop_timer_stop(timers[5]);
    assert_false(lsmtp_loop_timer_active(timers[5]));
    uint64_t start = lsmtp__monotonic_ms();
    while (log.n < 5 && lsmtp__monotonic_ms() - start < 2000)
      assert_int_equal(lsmtp_loop_run_once(loop, 100), LSMTP_OK);
    assert_int_equal(log.n, 5);
    const int want[5] = {5, 2, 4, 3, 1};
    assert_memory_equal(log.order, want, sizeof want);
    /* At least 30 ms passed before the last one fired. */
    assert_true(lsmtp_loop_now(loop) - start >= 29);
    for (int i = 0; i < 6; i++) {
      assert_false(lsmtp_loop_timer_active(timers[i]));
      lsmtp_loop_timer_del(timers[i]);
    }
    lsmtp_loop_del(loop);
  }
}

/* A timer that restarts itself with delay 0 fires once per iteration
 * (it must not spin inside one iteration). */
static void restart_self(lsmtp_timer *t, void *ud) {
  int *count = ud;
  (*count)++;
  assert_int_equal(lsmtp_loop_timer_start(t, 0), LSMTP_OK);
}

static void test_timer_restart_in_callback(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    lsmtp_loop *loop = new_loop(backends[b]);
    int count = 0;
    lsmtp_timer *t;
    assert_int_equal(lsmtp_loop_timer_new(loop, &t, restart_self, &count),
                     LSMTP_OK);
    assert_int_equal(lsmtp_loop_timer_start(t, 0), LSMTP_OK);
    for (int i = 1; i <= 3; i++) {
      assert_int_equal(lsmtp_loop_run_once(loop, 1000), LSMTP_OK);
      assert_int_equal(count, i);
    }
    lsmtp_loop_timer_del(t);
    lsmtp_loop_del(loop);
  }
}

/* Many timers with random-ish deadlines come out sorted (heap check). */
typedef struct heap_check {
  uint64_t last;
  int fired;
  int bad;
} heap_check;

static void check_sorted(lsmtp_timer *t, void *ud) {
  heap_check *h = ud;
  if (t->deadline < h->last) h->bad++;
  h->last = t->deadline;
  h->fired++;
}

static void test_timer_heap_order(void **state) {
  (void)state;
  lsmtp_loop *loop = new_loop(&lsmtp__backend_poll);
  enum { N = 500 };
  lsmtp_timer *ts[N];
  heap_check h = {0, 0, 0};
  uint32_t x = 12345;
  for (int i = 0; i < N; i++) {
    assert_int_equal(lsmtp_loop_timer_new(loop, &ts[i], check_sorted, &h),
                     LSMTP_OK);
    x = x * 1103515245u + 12345u;
    assert_int_equal(lsmtp__timer_start_at(ts[i], loop->now + (x >> 16) % 40),
                     LSMTP_OK);
  }
  /* Stop every third one: removal from the middle keeps the heap valid. */
  for (int i = 0; i < N; i += 3) lsmtp_loop_timer_stop(ts[i]);
  uint64_t start = lsmtp__monotonic_ms();
  while (loop->nheap > 0 && lsmtp__monotonic_ms() - start < 2000)
    assert_int_equal(lsmtp_loop_run_once(loop, 50), LSMTP_OK);
  assert_int_equal(h.fired, N - (N + 2) / 3);
  assert_int_equal(h.bad, 0);
  for (int i = 0; i < N; i++) lsmtp_loop_timer_del(ts[i]);
  lsmtp_loop_del(loop);
}

/* ---- watchers ---- */

typedef struct pair_ctx {
  int reads;
  int writes;
  char got[64];
  size_t got_len;
  lsmtp_io *other; /* deleted by the first callback that runs */
  int other_calls;
} pair_ctx;

static void on_readable(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  pair_ctx *c = ud;
  if (events & LSMTP_IO_READ) {
    c->reads++;
    ssize_t n = read(fd, c->got + c->got_len, sizeof c->got - c->got_len);
    if (n > 0) c->got_len += (size_t)n;
  }
  if (events & LSMTP_IO_WRITE) c->writes++;
}

static void test_io_watcher_socketpair(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    lsmtp_loop *loop = new_loop(backends[b]);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pair_ctx c;
    memset(&c, 0, sizeof c);
    lsmtp_io *io;
    assert_int_equal(lsmtp_loop_io_new(loop, &io, sv[0], LSMTP_IO_READ,
                                       on_readable, &c),
                     LSMTP_OK);
    /* Nothing to read: a non-blocking iteration dispatches nothing. */
    assert_int_equal(lsmtp_loop_run_once(loop, 0), LSMTP_OK);
    assert_int_equal(c.reads, 0);
    assert_int_equal(write(sv[1], "hello", 5), 5);
    assert_int_equal(lsmtp_loop_run_once(loop, 1000), LSMTP_OK);
    assert_int_equal(c.reads, 1);
    assert_int_equal(c.got_len, 5);
    assert_memory_equal(c.got, "hello", 5);
    /* Paused: data waits, no callback. */
    assert_int_equal(lsmtp_loop_io_set(io, 0), LSMTP_OK);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(lsmtp_loop_run_once(loop, 20), LSMTP_OK);
    assert_int_equal(c.reads, 1);
    /* Write interest on a socket with room: writable at once. */
    assert_int_equal(lsmtp_loop_io_set(io, LSMTP_IO_READ | LSMTP_IO_WRITE),
                     LSMTP_OK);
    assert_int_equal(lsmtp_loop_run_once(loop, 1000), LSMTP_OK);
    assert_int_equal(c.writes, 1);
    assert_int_equal(c.reads, 2);
    assert_int_equal(c.got_len, 6);
    assert_int_equal(lsmtp_loop_io_set(io, LSMTP_IO_READ), LSMTP_OK);
    /* The peer hangs up: reported as readable (read returns 0). */
    close(sv[1]);
    assert_int_equal(lsmtp_loop_run_once(loop, 1000), LSMTP_OK);
    assert_int_equal(c.reads, 3);
    assert_int_equal(c.got_len, 6);
    /* Paused after hang-up: no spinning callbacks. */
    assert_int_equal(lsmtp_loop_io_set(io, 0), LSMTP_OK);
    assert_int_equal(lsmtp_loop_run_once(loop, 10), LSMTP_OK);
    assert_int_equal(c.reads, 3);
    lsmtp_loop_io_del(io);
    close(sv[0]);
    lsmtp_loop_del(loop);
  }
}

/* Two watchers ready in the same iteration; whichever runs first deletes
 * the other, which must then not be called (and not be touched after it
 * was freed: ASan checks that). */
typedef struct killer {
  int *calls;
  lsmtp_io **other;  /* the other watcher's handle, NULLed when deleted */
  lsmtp_io **self;
} killer;

static void delete_other(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)events;
  killer *k = ud;
  char buf[8];
  (void)!read(fd, buf, sizeof buf);
  (*k->calls)++;
  if (*k->other) {
    lsmtp_loop_io_del(*k->other);
    *k->other = NULL;
  }
}

static void test_io_delete_other_in_callback(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    lsmtp_loop *loop = new_loop(backends[b]);
    int a[2], z[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, z), 0);
    int calls = 0;
    lsmtp_io *ia = NULL, *iz = NULL;
    killer ka = {&calls, &iz, &ia}, kz = {&calls, &ia, &iz};
    assert_int_equal(
        lsmtp_loop_io_new(loop, &ia, a[0], LSMTP_IO_READ, delete_other, &ka),
        LSMTP_OK);
    assert_int_equal(
        lsmtp_loop_io_new(loop, &iz, z[0], LSMTP_IO_READ, delete_other, &kz),
        LSMTP_OK);
    assert_int_equal(write(a[1], "a", 1), 1);
    assert_int_equal(write(z[1], "z", 1), 1);
    assert_int_equal(lsmtp_loop_run_once(loop, 1000), LSMTP_OK);
    assert_int_equal(calls, 1);
    assert_true((ia == NULL) != (iz == NULL));
    lsmtp_loop_io_del(ia ? ia : iz);
    close(a[0]);
    close(a[1]);
    close(z[0]);
    close(z[1]);
    lsmtp_loop_del(loop);
  }
}

/* ---- stop ---- */

static void stop_loop(lsmtp_timer *t, void *ud) {
  (void)t;
  lsmtp_loop_stop(ud);
}

static void test_run_until_stop(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    lsmtp_loop *loop = new_loop(backends[b]);
    lsmtp_timer *t;
    assert_int_equal(lsmtp_loop_timer_new(loop, &t, stop_loop, loop), LSMTP_OK);
    assert_int_equal(lsmtp_loop_timer_start(t, 15), LSMTP_OK);
    uint64_t start = lsmtp__monotonic_ms();
    assert_int_equal(lsmtp_loop_run(loop), LSMTP_OK);
    uint64_t took = lsmtp__monotonic_ms() - start;
    assert_true(took >= 14 && took < 1000);
    lsmtp_loop_timer_del(t);
    lsmtp_loop_del(loop);
  }
}

/* ---- addresses ---- */

static void test_addr_parse_and_format(void **state) {
  (void)state;
  static const struct {
    const char *in;
    int ok;
    const char *out;
  } cases[] = {
      {"127.0.0.1:2525", 1, "127.0.0.1:2525"},
      {"0.0.0.0:0", 1, "0.0.0.0:0"},
      {"[::1]:2525", 1, "[::1]:2525"},
      {"[::]:25", 1, "[::]:25"},
      {"[2001:db8::1]:65535", 1, "[2001:db8::1]:65535"},
      {"[::ffff:192.0.2.1]:25", 1, "[::ffff:192.0.2.1]:25"},
      {"127.0.0.1:65536", 0, NULL},
      {"127.0.0.1:", 0, NULL},
      {"127.0.0.1", 0, NULL},
      {":25", 0, NULL},
      {"localhost:25", 0, NULL},
      {"127.1:25", 0, NULL},
      {"::1:25", 0, NULL},
      {"[::1]25", 0, NULL},
      {"[::1]:", 0, NULL},
      {"[]:25", 0, NULL},
      {"[127.0.0.1]:25", 0, NULL},
      {"127.0.0.1:+25", 0, NULL},
      {"127.0.0.1:123456", 0, NULL},
      {"127.0.0.1: 25", 0, NULL},
      {"", 0, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int rc = lsmtp_net_addr_parse(cases[i].in, &ss, &len);
    if (!cases[i].ok) {
      if (rc != LSMTP_ERR_SYNTAX) fail_msg("accepted \"%s\"", cases[i].in);
      continue;
    }
    if (rc != LSMTP_OK) fail_msg("refused \"%s\"", cases[i].in);
    char buf[LSMTP_NET_ADDR_MAX];
    size_t n = lsmtp_net_addr_format((struct sockaddr *)&ss, len, buf, sizeof buf);
    assert_int_equal(n, strlen(cases[i].out));
    assert_string_equal(buf, cases[i].out);
  }
  /* Formatting into a buffer that is too small writes "" and returns 0. */
  struct sockaddr_storage ss;
  socklen_t len;
  assert_int_equal(lsmtp_net_addr_parse("[::1]:2525", &ss, &len), LSMTP_OK);
  char small[10];
  assert_int_equal(lsmtp_net_addr_format((struct sockaddr *)&ss, len, small,
                                         sizeof small),
                   0);
  assert_string_equal(small, "");
  char exact[11];
  assert_int_equal(lsmtp_net_addr_format((struct sockaddr *)&ss, len, exact,
                                         sizeof exact),
                   10);
}

/* ---- listener ---- */

typedef struct accept_ctx {
  int accepted;
  int fd;
} accept_ctx;

static void on_listen_ready(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)events;
  accept_ctx *a = ud;
  int c = accept(fd, NULL, NULL);
  if (c >= 0) {
    a->accepted++;
    a->fd = c;
  }
}

static void test_listener_accepts(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    lsmtp_loop *loop = new_loop(backends[b]);
    int lfd;
    assert_int_equal(lsmtp_net_listen("127.0.0.1:0", 0, &lfd), LSMTP_OK);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    char name[LSMTP_NET_ADDR_MAX];
    assert_true(lsmtp_net_addr_format((struct sockaddr *)&ss, len, name,
                                      sizeof name) > 0);
    assert_memory_equal(name, "127.0.0.1:", 10);
    assert_string_not_equal(name, "127.0.0.1:0");

    accept_ctx a = {0, -1};
    lsmtp_io *io;
    assert_int_equal(lsmtp_loop_io_new(loop, &io, lfd, LSMTP_IO_READ,
                                       on_listen_ready, &a),
                     LSMTP_OK);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
    for (int i = 0; i < 50 && !a.accepted; i++)
      assert_int_equal(lsmtp_loop_run_once(loop, 100), LSMTP_OK);
    assert_int_equal(a.accepted, 1);
    assert_int_equal(write(c, "ping", 4), 4);
    char buf[8];
    assert_int_equal(read(a.fd, buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
    close(a.fd);
    close(c);
    lsmtp_loop_io_del(io);
    close(lfd);
    lsmtp_loop_del(loop);
  }
}

static void test_listen_errors(void **state) {
  (void)state;
  int fd = 123;
  assert_int_equal(lsmtp_net_listen("nonsense", 0, &fd), LSMTP_ERR_SYNTAX);
  assert_int_equal(fd, -1);
  /* The same port twice: the second bind fails with EADDRINUSE. */
  int a;
  assert_int_equal(lsmtp_net_listen("127.0.0.1:0", 0, &a), LSMTP_OK);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  assert_int_equal(getsockname(a, (struct sockaddr *)&ss, &len), 0);
  char name[LSMTP_NET_ADDR_MAX];
  assert_true(lsmtp_net_addr_format((struct sockaddr *)&ss, len, name,
                                    sizeof name) > 0);
  int b;
  errno = 0;
  assert_int_equal(lsmtp_net_listen(name, 0, &b), LSMTP_ERR_IO);
  assert_int_equal(errno, EADDRINUSE);
  assert_int_equal(b, -1);
  close(a);
  /* IPv6 loopback, when the machine has it. */
  int v6;
  if (lsmtp_net_listen("[::1]:0", 0, &v6) == LSMTP_OK) {
    len = sizeof ss;
    assert_int_equal(getsockname(v6, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    close(v6);
  }
}


/* ---- lsmtp_net_server over 127.0.0.1 ---- */

typedef struct srv_ctx {
  lsmtp_loop *loop;
  lsmtp_net_server *ns;
  int accepted, closed, drained;
  int last_reason;
  int refuse_with; /* on_accept's answer */
  int defer_rcpt;
  lsmtp_server *deferred_srv;
  lsmtp_net_conn *deferred_conn;
  size_t data_bytes;
  char trace_in[256];
  size_t trace_in_len;
} srv_ctx;

static int h_accept(lsmtp_net_conn *conn, void **sud, void *ud) {
  srv_ctx *x = ud;
  assert_ptr_equal(*sud, conn); /* default session user data */
  assert_null(lsmtp_net_conn_session(conn));
  assert_memory_equal(lsmtp_net_conn_peer(conn), "127.0.0.1:", 10);
  assert_memory_equal(lsmtp_net_conn_local(conn), "127.0.0.1:", 10);
  if (x->refuse_with != LSMTP_OK) return x->refuse_with;
  x->accepted++;
  return LSMTP_OK;
}

static void h_close(lsmtp_net_conn *conn, int reason, void *sud, void *ud) {
  srv_ctx *x = ud;
  assert_ptr_equal(sud, conn);
  assert_non_null(lsmtp_net_conn_session(conn));
  x->closed++;
  x->last_reason = reason;
}

static void h_drained(lsmtp_net_server *ns, void *ud) {
  srv_ctx *x = ud;
  assert_ptr_equal(ns, x->ns);
  x->drained++;
}

static void h_trace(lsmtp_net_conn *conn, int from_client, const char *p,
                    size_t n, void *ud) {
  (void)conn;
  srv_ctx *x = ud;
  if (!from_client) return;
  if (n > sizeof x->trace_in - x->trace_in_len)
    n = sizeof x->trace_in - x->trace_in_len;
  memcpy(x->trace_in + x->trace_in_len, p, n);
  x->trace_in_len += n;
}

static int cb_rcpt(lsmtp_server *srv, const lsmtp_path *path,
                   const lsmtp_rcpt_params *params, void *ud) {
  (void)path;
  (void)params;
  lsmtp_net_conn *conn = ud;
  srv_ctx *x = lsmtp_net_server_user_data(lsmtp_net_conn_server(conn));
  assert_ptr_equal(lsmtp_net_conn_session(conn), srv);
  if (!x->defer_rcpt) return LSMTP_OK;
  x->deferred_srv = srv;
  x->deferred_conn = conn;
  return LSMTP_SERVER_DEFER;
}

static int cb_chunk(lsmtp_server *srv, const char *data, size_t len, void *ud) {
  (void)srv;
  (void)data;
  lsmtp_net_conn *conn = ud;
  srv_ctx *x = lsmtp_net_server_user_data(lsmtp_net_conn_server(conn));
  x->data_bytes += len;
  return LSMTP_OK;
}

typedef struct fixture {
  srv_ctx x;
  lsmtp_server_config *cfg;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  char bound[LSMTP_NET_ADDR_MAX];
} fixture;

static void fixture_up(fixture *f, const lsmtp__backend *b, unsigned timeout_ms) {
  memset(f, 0, sizeof *f);
  f->x.loop = new_loop(b);
  assert_int_equal(lsmtp_server_config_new(&f->cfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_hostname(f->cfg, "mx.test"), LSMTP_OK);
  if (timeout_ms)
    assert_int_equal(lsmtp_server_config_set_all_timeouts(f->cfg, timeout_ms),
                     LSMTP_OK);
  lsmtp_server_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_rcpt = cb_rcpt;
  cb.on_data_chunk = cb_chunk;
  lsmtp_net_server_hooks hooks;
  memset(&hooks, 0, sizeof hooks);
  hooks.on_accept = h_accept;
  hooks.on_close = h_close;
  hooks.on_drained = h_drained;
  hooks.on_trace = h_trace;
  assert_int_equal(lsmtp_net_server_new(&f->x.ns, f->x.loop, f->cfg, &cb,
                                        &hooks, &f->x),
                   LSMTP_OK);
  assert_int_equal(lsmtp_net_server_listen(f->x.ns, "127.0.0.1:0", f->bound,
                                           sizeof f->bound),
                   LSMTP_OK);
  assert_int_equal(lsmtp_net_addr_parse(f->bound, &f->addr, &f->addr_len),
                   LSMTP_OK);
}

static void fixture_down(fixture *f) {
  lsmtp_net_server_del(f->x.ns);
  lsmtp_loop_del(f->x.loop);
  lsmtp_server_config_del(f->cfg);
}

static int client_connect(fixture *f) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, f->addr_len), 0);
  return fd;
}

static void client_send(int fd, const char *s) {
  size_t n = strlen(s);
  assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Run the loop until the client has read a reply ending in want's last
 * line (want is the exact text expected), or EOF when want is NULL. */
static void client_expect(fixture *f, int fd, const char *want) {
  char got[4096];
  size_t len = 0;
  uint64_t start = lsmtp__monotonic_ms();
  for (;;) {
    assert_int_equal(lsmtp_loop_run_once(f->x.loop, 10), LSMTP_OK);
    ssize_t n = recv(fd, got + len, sizeof got - 1 - len, MSG_DONTWAIT);
    if (n > 0) len += (size_t)n;
    got[len] = '\0';
    if (want && len >= strlen(want)) break;
    if (!want && n == 0) return;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      if (!want) return; /* reset counts as closed */
      fail_msg("recv: %s (got \"%s\")", strerror(errno), got);
    }
    if (lsmtp__monotonic_ms() - start > 3000)
      fail_msg("timed out waiting for \"%s\", got \"%s\"", want ? want : "EOF", got);
  }
  assert_string_equal(got, want);
}

static void run_for(fixture *f, unsigned ms) {
  uint64_t start = lsmtp__monotonic_ms();
  while (lsmtp__monotonic_ms() - start < ms)
    assert_int_equal(lsmtp_loop_run_once(f->x.loop, 5), LSMTP_OK);
}

static void test_server_session_roundtrip(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    fixture f;
    fixture_up(&f, backends[b], 0);
    int fd = client_connect(&f);
    client_expect(&f, fd, "220 mx.test ESMTP\r\n");
    assert_int_equal(f.x.accepted, 1);
    assert_int_equal(lsmtp_net_server_conn_count(f.x.ns), 1);
    /* A pipelined transaction in one write, then a 1 MiB message. */
    client_send(fd, "HELO client.test\r\nMAIL FROM:<a@b.test>\r\n"
                    "RCPT TO:<c@d.test>\r\nDATA\r\n");
    client_expect(&f, fd, "250 mx.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                          "354 End data with <CR><LF>.<CR><LF>\r\n");
    static char line[1024];
    memset(line, 'x', sizeof line - 2);
    line[sizeof line - 2] = '\r';
    line[sizeof line - 1] = '\n';
    /* Lines of 1022 octets are long but pass through (only flagged). */
    for (int i = 0; i < 1024; i++) {
      size_t off = 0;
      while (off < sizeof line) {
        ssize_t n = send(fd, line + off, sizeof line - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) off += (size_t)n;
        else assert_int_equal(lsmtp_loop_run_once(f.x.loop, 10), LSMTP_OK);
      }
    }
    client_send(fd, ".\r\nQUIT\r\n");
    client_expect(&f, fd, "250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n");
    client_expect(&f, fd, NULL);
    assert_int_equal(f.x.data_bytes, 1024u * 1024u);
    assert_int_equal(f.x.closed, 1);
    assert_int_equal(f.x.last_reason, LSMTP_OK);
    assert_int_equal(lsmtp_net_server_conn_count(f.x.ns), 0);
    assert_memory_equal(f.x.trace_in, "HELO client.test\r\n", 18);
    close(fd);
    fixture_down(&f);
  }
}

static void test_server_max_clients(void **state) {
  (void)state;
  fixture f;
  fixture_up(&f, backends[NBACKENDS - 1], 0);
  lsmtp_net_server_set_max_clients(f.x.ns, 1);
  int a = client_connect(&f);
  client_expect(&f, a, "220 mx.test ESMTP\r\n");
  int b = client_connect(&f);
  client_expect(&f, b, "421 4.7.0 Too many connections\r\n");
  client_expect(&f, b, NULL);
  close(b);
  assert_int_equal(f.x.accepted, 1);
  /* on_accept may refuse too (a per-host limit, say). */
  lsmtp_net_server_set_max_clients(f.x.ns, 0);
  f.x.refuse_with = LSMTP_ERR_LIMIT;
  int c = client_connect(&f);
  client_expect(&f, c, "421 4.7.0 Too many connections\r\n");
  client_expect(&f, c, NULL);
  close(c);
  assert_int_equal(f.x.accepted, 1);
  assert_int_equal(f.x.closed, 0);
  /* The first client is still served. */
  client_send(a, "NOOP\r\n");
  client_expect(&f, a, "250 2.0.0 Ok\r\n");
  close(a);
  run_for(&f, 20);
  assert_int_equal(f.x.closed, 1);
  assert_int_equal(f.x.last_reason, LSMTP_ERR_CLOSED);
  fixture_down(&f);
}

static void test_server_deferred_answer_and_kick(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    fixture f;
    fixture_up(&f, backends[b], 0);
    f.x.defer_rcpt = 1;
    int fd = client_connect(&f);
    client_expect(&f, fd, "220 mx.test ESMTP\r\n");
    /* NOOP is pipelined behind the deferred RCPT: it must wait for it. */
    client_send(fd, "EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<x@y.test>\r\nNOOP\r\n");
    run_for(&f, 50);
    assert_non_null(f.x.deferred_srv);
    char got[2048];
    ssize_t n = recv(fd, got, sizeof got - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    got[n] = '\0';
    assert_null(strstr(got, "2.1.5"));
    assert_non_null(strstr(got, "250 2.1.0 Ok\r\n"));
    /* The host answers later, outside any callback, and kicks. */
    assert_int_equal(lsmtp_server_answer(f.x.deferred_srv, 550, "5.1.1",
                                         "No such user"),
                     LSMTP_OK);
    lsmtp_net_conn_kick(f.x.deferred_conn);
    client_expect(&f, fd, "550 5.1.1 No such user\r\n250 2.0.0 Ok\r\n");
    client_send(fd, "QUIT\r\n");
    client_expect(&f, fd, "221 2.0.0 Bye\r\n");
    client_expect(&f, fd, NULL);
    close(fd);
    fixture_down(&f);
  }
}

static void test_server_timeout(void **state) {
  (void)state;
  fixture f;
  fixture_up(&f, backends[NBACKENDS - 1], 60);
  int fd = client_connect(&f);
  client_expect(&f, fd, "220 mx.test ESMTP\r\n");
  /* Activity pushes the deadline out. */
  run_for(&f, 40);
  client_send(fd, "NOOP\r\n");
  client_expect(&f, fd, "250 2.0.0 Ok\r\n");
  run_for(&f, 40);
  assert_int_equal(f.x.closed, 0);
  client_expect(&f, fd, "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  client_expect(&f, fd, NULL);
  run_for(&f, 5);
  assert_int_equal(f.x.closed, 1);
  assert_int_equal(f.x.last_reason, LSMTP_ERR_TIMEOUT);
  close(fd);
  fixture_down(&f);
}

static void test_server_graceful_shutdown(void **state) {
  (void)state;
  for (size_t b = 0; b < NBACKENDS; b++) {
    fixture f;
    fixture_up(&f, backends[b], 0);
    int a = client_connect(&f);
    client_expect(&f, a, "220 mx.test ESMTP\r\n");
    int c = client_connect(&f);
    client_expect(&f, c, "220 mx.test ESMTP\r\n");
    assert_int_equal(lsmtp_net_server_shutdown(f.x.ns, 100), LSMTP_OK);
    /* Listener closed: a new client is refused by the kernel. */
    int late = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_not_equal(connect(late, (struct sockaddr *)&f.addr, f.addr_len), 0);
    close(late);
    /* During the grace period sessions go on; one of them ends itself. */
    client_send(a, "QUIT\r\n");
    client_expect(&f, a, "221 2.0.0 Bye\r\n");
    client_expect(&f, a, NULL);
    assert_int_equal(f.x.drained, 0);
    /* After it, the other one is told 421 and closed. */
    client_expect(&f, c, "421 4.3.2 mx.test Service shutting down\r\n");
    client_expect(&f, c, NULL);
    run_for(&f, 10);
    assert_int_equal(f.x.closed, 2);
    assert_int_equal(f.x.drained, 1);
    assert_int_equal(lsmtp_net_server_listen(f.x.ns, "127.0.0.1:0", NULL, 0),
                     LSMTP_ERR_STATE);
    close(a);
    close(c);
    fixture_down(&f);
  }
}

static void test_server_shutdown_idle_and_del(void **state) {
  (void)state;
  /* No connection: on_drained comes from the loop, not from the call. */
  fixture f;
  fixture_up(&f, backends[0], 0);
  assert_int_equal(lsmtp_net_server_shutdown(f.x.ns, 1000), LSMTP_OK);
  assert_int_equal(f.x.drained, 0);
  assert_int_equal(lsmtp_loop_run_once(f.x.loop, 100), LSMTP_OK);
  assert_int_equal(f.x.drained, 1);
  fixture_down(&f);
  /* Deleting a server with open connections closes them (on_close). */
  fixture_up(&f, backends[0], 0);
  int fd = client_connect(&f);
  client_expect(&f, fd, "220 mx.test ESMTP\r\n");
  lsmtp_net_server_del(f.x.ns);
  f.x.ns = NULL;
  assert_int_equal(f.x.closed, 1);
  assert_int_equal(f.x.last_reason, LSMTP_ERR_CLOSED);
  char buf[16];
  assert_int_equal(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  fixture_down(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timers_fire_in_order),
      cmocka_unit_test(test_timer_restart_in_callback),
      cmocka_unit_test(test_timer_heap_order),
      cmocka_unit_test(test_io_watcher_socketpair),
      cmocka_unit_test(test_io_delete_other_in_callback),
      cmocka_unit_test(test_run_until_stop),
      cmocka_unit_test(test_addr_parse_and_format),
      cmocka_unit_test(test_listener_accepts),
      cmocka_unit_test(test_listen_errors),
      cmocka_unit_test(test_server_session_roundtrip),
      cmocka_unit_test(test_server_max_clients),
      cmocka_unit_test(test_server_deferred_answer_and_kick),
      cmocka_unit_test(test_server_timeout),
      cmocka_unit_test(test_server_graceful_shutdown),
      cmocka_unit_test(test_server_shutdown_idle_and_del),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
