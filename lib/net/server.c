/* lsmtp_net_server: the glue between listening sockets, the loop and one
 * sans-I/O server session per connection. It reads into one buffer shared
 * by all connections (64 KiB at a time), feeds the session straight from
 * it, keeps only what the session could not take yet, writes everything
 * the session has pending in one send, and arms one timer per connection
 * from the session's timeout. Connections with TLS (STARTTLS, implicit
 * TLS) route their bytes through the filter in server_tls.c. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* accept4: non-blocking and close-on-exec in one call */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_int.h"

#define ACCEPTS_PER_WAKEUP 64
#define ACCEPT_RETRY_MS 100 /* pause after EMFILE and friends */
#define DEFAULT_MAX_CLIENTS 1000
static const char too_many[] = "421 4.7.0 Too many connections\r\n";

static void conn_service(lsmtp_net_conn *c);

/* ---- small helpers ---- */

void lsmtp__conn_trace(lsmtp_net_conn *c, int from_client, const char *p,
                       size_t n) {
  if (c->ns->hooks.on_trace)
    c->ns->hooks.on_trace(c, from_client, p, n, c->ns->user_data);
}

static void free_conn(lsmtp__deferred *d) {
  lsmtp_net_conn *c =
      (lsmtp_net_conn *)(void *)((char *)d - offsetof(lsmtp_net_conn, free_node));
  lsmtp__free(c->alloc, c);
}

static void free_listener(lsmtp__deferred *d) {
  listener *l = (listener *)(void *)((char *)d - offsetof(listener, free_node));
  lsmtp__free(l->alloc, l);
}

static void maybe_drained(lsmtp_net_server *ns) {
  if (ns->stage != STAGE_RUNNING && ns->nconns == 0 && !ns->drained) {
    ns->drained = 1;
    lsmtp_loop_timer_stop(&ns->stage_timer);
    /* From the loop, never from deep inside a close. */
    lsmtp_loop_timer_start(&ns->drain_timer, 0);
  }
}

void lsmtp__conn_close(lsmtp_net_conn *c, int reason) {
  if (c->closed) return;
  lsmtp_net_server *ns = c->ns;
  c->closed = 1;
  lsmtp_loop_timer_stop(&c->timer);
  lsmtp_loop_timer_stop(&c->kick);
  lsmtp__io_close(&c->io);
  close(c->fd);
  c->fd = -1;
  lsmtp__log(ns->loop, LSMTP_NET_LOG_DEBUG, "conn %llu %s closed: %s",
             (unsigned long long)c->id, c->peer, lsmtp_status_name(reason));
  if (c->hooked && ns->hooks.on_close)
    ns->hooks.on_close(c, reason, c->session_ud, ns->user_data);
  lsmtp_server_del(c->session);
  c->session = NULL;
  lsmtp_tls_del(c->tls);
  c->tls = NULL;
  lsmtp__buf_free(&c->inbuf);
  lsmtp__buf_free(&c->cin);
  if (c->prev) c->prev->next = c->next;
  else ns->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  ns->nconns--;
  lsmtp__loop_defer(ns->loop, &c->free_node, free_conn);
  maybe_drained(ns);
}

void lsmtp__conn_note(lsmtp_net_conn *c, int rc) {
  if (rc < 0) {
    if (c->close_reason == LSMTP_OK) c->close_reason = rc;
    c->closing = 1;
    lsmtp__log(c->ns->loop, LSMTP_NET_LOG_WARN, "conn %llu %s: session: %s",
               (unsigned long long)c->id, c->peer, lsmtp_strerror(rc));
  } else if (rc == LSMTP_DONE || lsmtp_server_want_close(c->session)) {
    c->closing = 1;
  }
}

/* The session accepted STARTTLS: whatever was read but not fed is
 * plaintext sent before TLS and must never reach the session
 * (RFC 3207 §4.2, CVE-2011-0411), so it is dropped here, together with
 * `extra` octets of the current read that were not kept. */
static void conn_start_tls_after_220(lsmtp_net_conn *c, size_t extra) {
  size_t dropped = c->inbuf.len + extra;
  lsmtp__buf_consume(&c->inbuf, c->inbuf.len);
  if (dropped)
    lsmtp__log(c->ns->loop, LSMTP_NET_LOG_WARN,
               "conn %llu %s: dropped %zu plaintext octet(s) sent after "
               "STARTTLS",
               (unsigned long long)c->id, c->peer, dropped);
  lsmtp__conn_tls_begin(c, 0);
}

static int starttls_accepted(const lsmtp_net_conn *c) {
  return !c->closed && !c->tls && lsmtp_server_starttls_pending(c->session);
}

void lsmtp__conn_feed(lsmtp_net_conn *c, const char *p, size_t n) {
  size_t used = 0;
  int rc = lsmtp_server_feed(c->session, p, n, &used);
  lsmtp__conn_note(c, rc);
  if (starttls_accepted(c)) {
    conn_start_tls_after_220(c, n - used);
    return;
  }
  if (used < n && !c->closing &&
      lsmtp__buf_append(&c->inbuf, p + used, n - used) != LSMTP_OK)
    lsmtp__conn_close(c, LSMTP_ERR_NOMEM);
}

int lsmtp__conn_send(lsmtp_net_conn *c, const char *p, size_t n, size_t *sent) {
  *sent = 0;
  for (;;) {
    ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      *sent = (size_t)k;
      return 1;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
    int peer_gone = k < 0 && (errno == EPIPE || errno == ECONNRESET);
    lsmtp__conn_close(c, peer_gone ? LSMTP_ERR_CLOSED : LSMTP_ERR_IO);
    return 0;
  }
}

/* Write what the session has pending. Returns 0 when the connection was
 * closed because the socket failed. */
static int conn_flush(lsmtp_net_conn *c) {
  if (c->closed) return 0;
  if (c->tls) return lsmtp__conn_tls_flush(c);
  for (;;) {
    const char *p;
    size_t k = lsmtp_server_pending(c->session, &p), n;
    if (k == 0) return 1;
    if (!lsmtp__conn_send(c, p, k, &n)) return 0;
    if (n == 0) return 1;
    lsmtp__conn_trace(c, 0, p, n);
    lsmtp_server_consume(c->session, n);
  }
}

static size_t conn_out_pending(const lsmtp_net_conn *c) {
  if (c->tls) return lsmtp__conn_tls_out_pending(c);
  const char *p;
  return lsmtp_server_pending(c->session, &p);
}

/* Arm the connection's one timer. The timer is only moved when the new
 * deadline is earlier; a later deadline is noticed when it fires, which
 * saves a heap update on every read. */
static void conn_arm(lsmtp_net_conn *c) {
  lsmtp_loop *loop = c->ns->loop;
  if (c->closing) {
    if (!c->lingering) {
      c->lingering = 1;
      lsmtp_loop_timer_start(&c->timer, LSMTP_NET_LINGER_MS);
    }
    return;
  }
  uint64_t want;
  if (lsmtp__conn_tls_handshaking(c) || c->pregreet) {
    want = c->deadline; /* end of the handshake limit, or of the greet delay */
  } else {
    unsigned ms = lsmtp_server_timeout_ms(c->session);
    if (ms == 0) {
      c->deadline = 0;
      return;
    }
    want = lsmtp_loop_now(loop) + ms;
    c->deadline = want;
  }
  if (!lsmtp_loop_timer_active(&c->timer) || c->timer.deadline > want)
    lsmtp__timer_start_at(&c->timer, want);
}

/* After any event: decide what to watch, close when done, arm the timer. */
static void conn_settle(lsmtp_net_conn *c) {
  if (c->closed) return;
  if (!c->closing && lsmtp_server_want_close(c->session)) c->closing = 1;
  if (!c->closing && c->peer_eof && c->inbuf.len == 0 && c->cin.len == 0) {
    /* The client is gone and everything it sent was taken: nothing more
     * can happen except writing the replies still pending. */
    c->closing = 1;
    if (c->close_reason == LSMTP_OK) c->close_reason = LSMTP_ERR_CLOSED;
  }
  if (c->closing && c->tls && !c->tls_bye) {
    lsmtp__conn_tls_bye(c); /* after the last reply: close_notify */
    if (!conn_flush(c)) return;
  }
  size_t pending = conn_out_pending(c);
  if (c->closing && pending == 0) {
    lsmtp__conn_close(c, c->close_reason);
    return;
  }
  unsigned events = 0;
  if (!c->closing && !c->peer_eof && c->inbuf.len == 0 && c->cin.len == 0)
    events |= LSMTP_IO_READ;
  if (pending) events |= LSMTP_IO_WRITE;
  if (lsmtp_loop_io_set(&c->io, events) != LSMTP_OK) {
    lsmtp__conn_close(c, LSMTP_ERR_IO);
    return;
  }
  conn_arm(c);
}

/* Feed buffered input and write output until neither makes progress. */
static void conn_service(lsmtp_net_conn *c) {
  if (c->closed) return;
  for (;;) {
    if (!conn_flush(c)) return;
    if (c->closing) break;
    int progress = 0;
    if (c->inbuf.len) {
      size_t used = 0;
      int rc = lsmtp_server_feed(c->session, c->inbuf.data, c->inbuf.len, &used);
      lsmtp__buf_consume(&c->inbuf, used);
      lsmtp__conn_note(c, rc);
      if (starttls_accepted(c)) conn_start_tls_after_220(c, 0);
      if (c->closed) return;
      progress = used > 0;
    }
    if (c->tls && c->inbuf.len == 0 && !c->closing) {
      progress |= lsmtp__conn_tls_pump(c);
      if (c->closed) return;
    }
    if (!progress) {
      if (!conn_flush(c)) return;
      break;
    }
  }
  conn_settle(c);
}

static void conn_read(lsmtp_net_conn *c) {
  lsmtp_net_server *ns = c->ns;
  ssize_t n;
  do n = recv(c->fd, ns->rbuf, LSMTP_NET_READ_CHUNK, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    lsmtp__conn_close(c, errno == ECONNRESET ? LSMTP_ERR_CLOSED : LSMTP_ERR_IO);
    return;
  }
  if (n == 0) {
    c->peer_eof = 1;
    return;
  }
  if (c->tls) {
    /* Ciphertext: conn_service passes it through the filter. */
    if (lsmtp__buf_append(&c->cin, ns->rbuf, (size_t)n) != LSMTP_OK)
      lsmtp__conn_close(c, LSMTP_ERR_NOMEM);
    return;
  }
  lsmtp__conn_trace(c, 1, ns->rbuf, (size_t)n);
  lsmtp__conn_feed(c, ns->rbuf, (size_t)n);
}

static void on_conn_io(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)fd;
  lsmtp_net_conn *c = ud;
  if ((events & LSMTP_IO_WRITE) && !conn_flush(c)) return;
  if ((events & LSMTP_IO_READ) && !c->closed) conn_read(c);
  conn_service(c);
}

static void on_conn_timer(lsmtp_timer *t, void *ud) {
  (void)t;
  lsmtp_net_conn *c = ud;
  if (c->lingering) {
    lsmtp__log(c->ns->loop, LSMTP_NET_LOG_WARN,
               "conn %llu %s: client does not read its replies; closing",
               (unsigned long long)c->id, c->peer);
    lsmtp__conn_close(c, LSMTP_ERR_TIMEOUT);
    return;
  }
  if (c->deadline == 0) return;
  uint64_t now = lsmtp_loop_now(c->ns->loop);
  if (now < c->deadline) {
    lsmtp__timer_start_at(&c->timer, c->deadline);
    return;
  }
  if (lsmtp__conn_tls_handshaking(c)) {
    lsmtp__conn_tls_timeout(c);
    return;
  }
  if (c->pregreet) { /* the client kept quiet: greet it */
    c->pregreet = 0;
    lsmtp__conn_note(c, lsmtp_server_start(c->session));
    conn_service(c);
    return;
  }
  lsmtp__log(c->ns->loop, LSMTP_NET_LOG_DEBUG, "conn %llu %s: timeout",
             (unsigned long long)c->id, c->peer);
  if (c->close_reason == LSMTP_OK) c->close_reason = LSMTP_ERR_TIMEOUT;
  int rc = lsmtp_server_timeout(c->session);
  if (rc != LSMTP_ERR_STATE) lsmtp__conn_note(c, rc);
  c->closing = 1;
  conn_service(c);
}

static void on_conn_kick(lsmtp_timer *t, void *ud) {
  (void)t;
  lsmtp_net_conn *c = ud;
  if (!c->closing && lsmtp_server_want_close(c->session)) c->closing = 1;
  conn_service(c);
}

/* ---- accepting ---- */

static void refuse(lsmtp_net_server *ns, int fd, const char *peer,
                   unsigned flags) {
  lsmtp__log(ns->loop, LSMTP_NET_LOG_WARN,
             "refused %s: too many connections (%zu)", peer, ns->nconns);
  /* One try: the socket is new, so its send buffer has room. A client of
   * an implicit-TLS listener expects a TLS handshake, not plaintext. */
  if (!(flags & LSMTP_NET_LISTEN_TLS))
    (void)!send(fd, too_many, sizeof too_many - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  close(fd);
}

static void conn_open(lsmtp_net_server *ns, int fd, unsigned flags,
                      const struct sockaddr_storage *ss, socklen_t sslen) {
  lsmtp_loop *loop = ns->loop;
  int one = 1;
  /* Replies are written once per batch, so Nagle would only add delay. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  lsmtp_net_conn *c = lsmtp__calloc(loop->alloc, 1, sizeof *c);
  if (!c) {
    lsmtp__log(loop, LSMTP_NET_LOG_ERROR, "out of memory accepting a client");
    close(fd);
    return;
  }
  c->ns = ns;
  c->alloc = loop->alloc;
  c->fd = fd;
  c->id = ++ns->next_id;
  c->peer_ss = *ss;
  c->peer_len = sslen;
  lsmtp_net_addr_format((const struct sockaddr *)ss, sslen, c->peer,
                        sizeof c->peer);
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0)
    lsmtp_net_addr_format((struct sockaddr *)&local, local_len, c->local,
                          sizeof c->local);
  lsmtp__buf_init(&c->inbuf, loop->alloc);
  lsmtp__buf_init(&c->cin, loop->alloc);
  c->tls_cfg = ns->tls_cfg;
  lsmtp__timer_init(loop, &c->timer, on_conn_timer, c);
  lsmtp__timer_init(loop, &c->kick, on_conn_kick, c);
  c->session_ud = c;
  c->close_reason = LSMTP_OK;

  if (ns->hooks.on_accept) {
    int rc = ns->hooks.on_accept(c, &c->session_ud, ns->user_data);
    if (rc != LSMTP_OK) {
      if (rc == LSMTP_ERR_LIMIT) refuse(ns, fd, c->peer, flags);
      else close(fd);
      lsmtp__free(loop->alloc, c);
      return;
    }
  }
  c->hooked = 1;
  /* Linked in before anything can fail, so conn_close can undo it all. */
  c->next = ns->conns;
  if (ns->conns) ns->conns->prev = c;
  ns->conns = c;
  ns->nconns++;
  int rc = lsmtp_server_new(&c->session, ns->cfg, &ns->callbacks, c->session_ud);
  if (rc == LSMTP_OK)
    rc = lsmtp__io_init(loop, &c->io, fd, LSMTP_IO_READ, on_conn_io, c);
  if (rc != LSMTP_OK) {
    c->io.dead = 1; /* not registered with the backend: nothing to undo */
    lsmtp__conn_close(c, rc);
    return;
  }
  lsmtp__log(loop, LSMTP_NET_LOG_DEBUG, "conn %llu from %s to %s%s",
             (unsigned long long)c->id, c->peer, c->local,
             flags & LSMTP_NET_LISTEN_TLS ? " (implicit TLS)" : "");
  if (flags & LSMTP_NET_LISTEN_TLS) {
    lsmtp__conn_tls_begin(c, 1); /* the greeting follows the handshake */
  } else if (ns->greet_delay_ms) {
    /* Pregreet test: whatever arrives before the timer fires is fed to a
     * session that has not greeted, which refuses it (554 5.5.0). */
    c->pregreet = 1;
    c->deadline = lsmtp_loop_now(loop) + ns->greet_delay_ms;
  } else {
    lsmtp__conn_note(c, lsmtp_server_start(c->session));
  }
  conn_service(c);
}

static void listeners_set(lsmtp_net_server *ns, unsigned events) {
  for (listener *l = ns->listeners; l; l = l->next)
    (void)lsmtp_loop_io_set(&l->io, events);
}

static void on_accept_retry(lsmtp_timer *t, void *ud) {
  (void)t;
  lsmtp_net_server *ns = ud;
  if (ns->stage == STAGE_RUNNING) listeners_set(ns, LSMTP_IO_READ);
}

static int accept_one(int lfd, struct sockaddr_storage *ss, socklen_t *len) {
  *len = sizeof *ss;
#ifdef __linux__
  return accept4(lfd, (struct sockaddr *)ss, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  int fd = accept(lfd, (struct sockaddr *)ss, len);
  if (fd >= 0 && lsmtp__set_nonblock_cloexec(fd) != LSMTP_OK) {
    close(fd);
    errno = EBADF;
    return -1;
  }
  return fd;
#endif
}

static void on_listener(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)events;
  listener *l = ud;
  lsmtp_net_server *ns = l->ns;
  for (int i = 0; i < ACCEPTS_PER_WAKEUP && ns->stage == STAGE_RUNNING; i++) {
    struct sockaddr_storage ss;
    socklen_t len;
    int cfd = accept_one(fd, &ss, &len);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      /* Out of descriptors or memory: a level-triggered listener would
       * spin, so stop accepting for a moment. */
      lsmtp__log(ns->loop, LSMTP_NET_LOG_ERROR, "accept: %s; pausing",
                 strerror(errno));
      listeners_set(ns, 0);
      lsmtp_loop_timer_start(&ns->accept_timer, ACCEPT_RETRY_MS);
      return;
    }
    if (ns->max_clients && ns->nconns >= ns->max_clients) {
      char peer[LSMTP_NET_ADDR_MAX];
      lsmtp_net_addr_format((struct sockaddr *)&ss, len, peer, sizeof peer);
      refuse(ns, cfd, peer, l->flags);
      continue;
    }
    conn_open(ns, cfd, l->flags, &ss, len);
  }
}

static int add_listener(lsmtp_net_server *ns, int fd, unsigned flags) {
  listener *l = lsmtp__calloc(ns->loop->alloc, 1, sizeof *l);
  if (!l) return LSMTP_ERR_NOMEM;
  l->fd = fd;
  l->flags = flags;
  l->ns = ns;
  l->alloc = ns->loop->alloc;
  int rc = lsmtp__io_init(ns->loop, &l->io, fd, LSMTP_IO_READ, on_listener, l);
  if (rc != LSMTP_OK) {
    lsmtp__free(ns->loop->alloc, l);
    return rc;
  }
  l->next = ns->listeners;
  ns->listeners = l;
  return LSMTP_OK;
}

static void close_listeners(lsmtp_net_server *ns) {
  while (ns->listeners) {
    listener *l = ns->listeners;
    ns->listeners = l->next;
    lsmtp__io_close(&l->io);
    close(l->fd);
    lsmtp__loop_defer(ns->loop, &l->free_node, free_listener);
  }
  lsmtp_loop_timer_stop(&ns->accept_timer);
}

/* ---- shutdown ---- */

static void on_stage_timer(lsmtp_timer *t, void *ud) {
  (void)t;
  lsmtp_net_server *ns = ud;
  if (ns->stage == STAGE_GRACE) {
    ns->stage = STAGE_TOLD;
    lsmtp__log(ns->loop, LSMTP_NET_LOG_INFO,
               "grace period over: ending %zu session(s)", ns->nconns);
    lsmtp_loop_timer_start(&ns->stage_timer, LSMTP_NET_LINGER_MS);
    for (lsmtp_net_conn *c = ns->conns, *next; c; c = next) {
      next = c->next;
      if (lsmtp__conn_tls_handshaking(c)) {
        /* Nothing can be said to a client still in its handshake. */
        lsmtp__conn_close(c, LSMTP_ERR_TIMEOUT);
        continue;
      }
      lsmtp__conn_note(c, lsmtp_server_shutdown(c->session));
      conn_service(c);
    }
    return;
  }
  ns->stage = STAGE_FORCED;
  if (ns->nconns)
    lsmtp__log(ns->loop, LSMTP_NET_LOG_WARN, "closing %zu session(s) by force",
               ns->nconns);
  while (ns->conns) lsmtp__conn_close(ns->conns, LSMTP_ERR_TIMEOUT);
}

static void on_drain_timer(lsmtp_timer *t, void *ud) {
  (void)t;
  lsmtp_net_server *ns = ud;
  if (ns->hooks.on_drained) ns->hooks.on_drained(ns, ns->user_data);
}

int lsmtp_net_server_shutdown(lsmtp_net_server *ns, unsigned grace_ms) {
  if (!ns) return LSMTP_ERR_INVALID;
  close_listeners(ns);
  if (ns->stage == STAGE_RUNNING) {
    ns->stage = STAGE_GRACE;
    lsmtp__log(ns->loop, LSMTP_NET_LOG_INFO,
               "shutting down: %zu session(s) get %u ms to finish",
               ns->nconns, grace_ms);
    lsmtp_loop_timer_start(&ns->stage_timer, grace_ms);
  } else if (ns->stage == STAGE_GRACE) {
    uint64_t want = lsmtp_loop_now(ns->loop) + grace_ms;
    if (want < ns->stage_timer.deadline)
      lsmtp__timer_start_at(&ns->stage_timer, want);
  }
  maybe_drained(ns);
  return LSMTP_OK;
}

/* ---- public API ---- */

int lsmtp_net_server_new(lsmtp_net_server **out, lsmtp_loop *loop,
                         const lsmtp_server_config *cfg,
                         const lsmtp_server_callbacks *callbacks,
                         const lsmtp_net_server_hooks *hooks, void *user_data) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!loop || !cfg) return LSMTP_ERR_INVALID;
  lsmtp_net_server *ns = lsmtp__calloc(loop->alloc, 1, sizeof *ns);
  if (!ns) return LSMTP_ERR_NOMEM;
  ns->rbuf = lsmtp__malloc(loop->alloc, LSMTP_NET_READ_CHUNK);
  if (!ns->rbuf) {
    lsmtp__free(loop->alloc, ns);
    return LSMTP_ERR_NOMEM;
  }
  ns->loop = loop;
  ns->cfg = cfg;
  if (callbacks) ns->callbacks = *callbacks;
  if (hooks) ns->hooks = *hooks;
  ns->user_data = user_data;
  ns->max_clients = DEFAULT_MAX_CLIENTS;
  ns->tls_timeout_ms = LSMTP_NET_TLS_HANDSHAKE_MS;
  ns->greet_delay_ms = 0;
  lsmtp__timer_init(loop, &ns->stage_timer, on_stage_timer, ns);
  lsmtp__timer_init(loop, &ns->drain_timer, on_drain_timer, ns);
  lsmtp__timer_init(loop, &ns->accept_timer, on_accept_retry, ns);
  *out = ns;
  return LSMTP_OK;
}

void lsmtp_net_server_del(lsmtp_net_server *ns) {
  if (!ns) return;
  close_listeners(ns);
  ns->drained = 1; /* no on_drained from a dying server */
  while (ns->conns) lsmtp__conn_close(ns->conns, LSMTP_ERR_CLOSED);
  lsmtp_loop_timer_stop(&ns->stage_timer);
  lsmtp_loop_timer_stop(&ns->drain_timer);
  lsmtp_loop_timer_stop(&ns->accept_timer);
  lsmtp__free(ns->loop->alloc, ns->rbuf);
  lsmtp__free(ns->loop->alloc, ns);
}

int lsmtp_net_server_listen_flags(lsmtp_net_server *ns, const char *text,
                                  unsigned flags, char *bound, size_t cap) {
  if (!ns || !text || (flags & ~LSMTP_NET_LISTEN_TLS)) return LSMTP_ERR_INVALID;
  if (ns->stage != STAGE_RUNNING) return LSMTP_ERR_STATE;
  if ((flags & LSMTP_NET_LISTEN_TLS) && !ns->tls_cfg) return LSMTP_ERR_STATE;
  int fd;
  int rc = lsmtp_net_listen(text, 0, &fd);
  if (rc != LSMTP_OK) return rc;
  if (bound && cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    bound[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
      lsmtp_net_addr_format((struct sockaddr *)&ss, len, bound, cap);
  }
  rc = add_listener(ns, fd, flags);
  if (rc != LSMTP_OK) close(fd);
  return rc;
}

int lsmtp_net_server_listen(lsmtp_net_server *ns, const char *text,
                            char *bound, size_t cap) {
  return lsmtp_net_server_listen_flags(ns, text, 0, bound, cap);
}

int lsmtp_net_server_adopt_flags(lsmtp_net_server *ns, int fd, unsigned flags) {
  if (!ns || fd < 0 || (flags & ~LSMTP_NET_LISTEN_TLS)) return LSMTP_ERR_INVALID;
  if (ns->stage != STAGE_RUNNING) return LSMTP_ERR_STATE;
  if ((flags & LSMTP_NET_LISTEN_TLS) && !ns->tls_cfg) return LSMTP_ERR_STATE;
  int rc = lsmtp__set_nonblock_cloexec(fd);
  if (rc != LSMTP_OK) return rc;
  return add_listener(ns, fd, flags);
}

int lsmtp_net_server_adopt(lsmtp_net_server *ns, int fd) {
  return lsmtp_net_server_adopt_flags(ns, fd, 0);
}

int lsmtp_net_server_set_greet_delay(lsmtp_net_server *ns, unsigned ms) {
  if (!ns) return LSMTP_ERR_INVALID;
  ns->greet_delay_ms = ms;
  return LSMTP_OK;
}

void lsmtp_net_server_set_max_clients(lsmtp_net_server *ns, size_t max) {
  if (ns) ns->max_clients = max;
}

size_t lsmtp_net_server_conn_count(const lsmtp_net_server *ns) {
  return ns ? ns->nconns : 0;
}

void *lsmtp_net_server_user_data(const lsmtp_net_server *ns) {
  return ns ? ns->user_data : NULL;
}

lsmtp_server *lsmtp_net_conn_session(const lsmtp_net_conn *conn) {
  return conn ? conn->session : NULL;
}

lsmtp_net_server *lsmtp_net_conn_server(const lsmtp_net_conn *conn) {
  return conn ? conn->ns : NULL;
}

void *lsmtp_net_conn_user_data(const lsmtp_net_conn *conn) {
  return conn ? conn->session_ud : NULL;
}

const char *lsmtp_net_conn_peer(const lsmtp_net_conn *conn) {
  return conn ? conn->peer : "";
}

const struct sockaddr *lsmtp_net_conn_peer_addr(const lsmtp_net_conn *conn,
                                                socklen_t *len) {
  if (!conn) return NULL;
  if (len) *len = conn->peer_len;
  return (const struct sockaddr *)&conn->peer_ss;
}

const char *lsmtp_net_conn_local(const lsmtp_net_conn *conn) {
  return conn ? conn->local : "";
}

uint64_t lsmtp_net_conn_id(const lsmtp_net_conn *conn) {
  return conn ? conn->id : 0;
}

void lsmtp_net_conn_kick(lsmtp_net_conn *conn) {
  if (!conn || conn->closed) return;
  if (!lsmtp_loop_timer_active(&conn->kick))
    lsmtp_loop_timer_start(&conn->kick, 0);
}

const lsmtp_tls *lsmtp_net_conn_tls(const lsmtp_net_conn *conn) {
  return conn ? conn->tls : NULL;
}
