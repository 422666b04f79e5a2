/* The TLS part of lsmtp_net_server: per connection, the memory-in /
 * memory-out filter of lsmtp/tls.h sits between the socket and the
 * session.
 *
 *   socket -> cin -> lsmtp_tls_feed -> lsmtp_tls_read -> session feed
 *   session pending -> lsmtp_tls_write -> lsmtp_tls_pending -> socket
 *
 * STARTTLS: the replies up to and including the 220 leave in the clear
 * (plain_out counts them), the filter is created at that moment, and any
 * plaintext read but not fed was already dropped by server.c; the session
 * hears lsmtp_server_tls_started once the handshake completed. Implicit
 * TLS (RFC 8314): the filter exists from accept, and the session is
 * started (greeting) after the handshake. */
#include <errno.h>
#include <sys/socket.h>

#include "server_int.h"

/* Encrypt more session output only while less than this much ciphertext
 * waits for the socket: keeps the filter's output buffer bounded, and the
 * session's own output limit then pushes back on the client. */
#define TLS_OUT_HIGH 65536u

int lsmtp__conn_tls_handshaking(const lsmtp_net_conn *c) {
  return c->tls && !lsmtp_tls_is_established(c->tls) && !c->closing;
}

static void tell_host(lsmtp_net_conn *c, int status, const char *msg) {
  lsmtp_net_server *ns = c->ns;
  if (c->hooked && ns->hooks.on_tls)
    ns->hooks.on_tls(c, status, msg ? msg : "", c->session_ud, ns->user_data);
}

/* The filter failed: say why, try once to send the alert it queued, and
 * close (nothing more can be said on this connection). */
static void tls_fail(lsmtp_net_conn *c, int rc, const char *what) {
  int status = rc == LSMTP_ERR_NOMEM ? LSMTP_ERR_NOMEM : LSMTP_ERR_TLS;
  const char *msg = lsmtp_tls_error_text(c->tls);
  if (!msg[0]) msg = lsmtp_strerror(rc);
  lsmtp__log(c->ns->loop, LSMTP_NET_LOG_WARN, "conn %llu %s: %s failed: %s",
             (unsigned long long)c->id, c->peer, what, msg);
  if (!lsmtp_tls_is_established(c->tls)) tell_host(c, status, msg);
  const char *p;
  size_t k = lsmtp_tls_pending(c->tls, &p);
  if (k && !c->closed)
    (void)!send(c->fd, p, k, MSG_NOSIGNAL | MSG_DONTWAIT);
  lsmtp__conn_close(c, status);
}

void lsmtp__conn_tls_begin(lsmtp_net_conn *c, int implicit) {
  lsmtp_net_server *ns = c->ns;
  if (!c->tls_cfg) {
    /* The session config advertises STARTTLS but nobody gave us a
     * certificate: the host's mistake, and the client cannot go on. */
    lsmtp__log(ns->loop, LSMTP_NET_LOG_ERROR,
               "conn %llu %s: STARTTLS accepted but the net server has no "
               "TLS configuration (lsmtp_net_server_set_tls); closing",
               (unsigned long long)c->id, c->peer);
    lsmtp__conn_close(c, LSMTP_ERR_UNSUPPORTED);
    return;
  }
  int rc = lsmtp_tls_new(&c->tls, c->tls_cfg, NULL);
  if (rc != LSMTP_OK) {
    lsmtp__log(ns->loop, LSMTP_NET_LOG_ERROR, "conn %llu %s: TLS setup: %s",
               (unsigned long long)c->id, c->peer, lsmtp_strerror(rc));
    c->tls = NULL;
    tell_host(c, rc == LSMTP_ERR_NOMEM ? rc : LSMTP_ERR_TLS, lsmtp_strerror(rc));
    lsmtp__conn_close(c, rc == LSMTP_ERR_NOMEM ? rc : LSMTP_ERR_TLS);
    return;
  }
  c->implicit_tls = implicit ? 1 : 0;
  if (!implicit) {
    /* Everything queued so far (the 220 last) is for the clear; the
     * session queues nothing more until it hears tls_started. */
    const char *p;
    c->plain_out = lsmtp_server_pending(c->session, &p);
  }
  uint64_t ms = ns->tls_timeout_ms;
  unsigned own = implicit ? 0 : lsmtp_server_timeout_ms(c->session);
  if (own && own < ms) ms = own;
  c->deadline = lsmtp_loop_now(ns->loop) + ms;
  if (!lsmtp_loop_timer_active(&c->timer) || c->timer.deadline > c->deadline)
    lsmtp__timer_start_at(&c->timer, c->deadline);
  lsmtp__log(ns->loop, LSMTP_NET_LOG_DEBUG, "conn %llu %s: TLS handshake (%s)",
             (unsigned long long)c->id, c->peer,
             implicit ? "implicit TLS" : "STARTTLS");
}

void lsmtp__conn_tls_timeout(lsmtp_net_conn *c) {
  lsmtp__log(c->ns->loop, LSMTP_NET_LOG_WARN,
             "conn %llu %s: TLS handshake not completed in time; closing",
             (unsigned long long)c->id, c->peer);
  tell_host(c, LSMTP_ERR_TIMEOUT, "TLS handshake timed out");
  lsmtp__conn_close(c, LSMTP_ERR_TIMEOUT);
}

static void handshake_done(lsmtp_net_conn *c) {
  const char *version = lsmtp_tls_version(c->tls);
  const char *cipher = lsmtp_tls_cipher(c->tls);
  lsmtp__log(c->ns->loop, LSMTP_NET_LOG_DEBUG, "conn %llu %s: TLS up: %s %s",
             (unsigned long long)c->id, c->peer, version, cipher);
  c->deadline = 0; /* the session's own timeouts from here on */
  lsmtp__conn_note(c, lsmtp_server_tls_started(c->session, version, cipher));
  if (c->implicit_tls && !c->closing)
    lsmtp__conn_note(c, lsmtp_server_start(c->session));
  tell_host(c, LSMTP_OK, "");
}

int lsmtp__conn_tls_pump(lsmtp_net_conn *c) {
  lsmtp_tls *tls = c->tls;
  int moved = 0;
  if (c->cin.len) {
    size_t took = 0;
    int rc = lsmtp_tls_feed(tls, c->cin.data, c->cin.len, &took);
    if (rc != LSMTP_OK) {
      tls_fail(c, rc, "TLS");
      return 0;
    }
    lsmtp__buf_consume(&c->cin, took);
    moved = took > 0;
  }
  if (!lsmtp_tls_is_established(tls)) {
    int rc = lsmtp_tls_handshake(tls);
    if (rc == LSMTP_INCOMPLETE) return moved;
    if (rc != LSMTP_OK) {
      tls_fail(c, rc, "TLS handshake");
      return 0;
    }
    handshake_done(c);
    return 1;
  }
  if (c->closing) return moved;
  /* The shared read buffer is free here: the ciphertext that arrived in
   * it was copied to cin. */
  size_t n = 0;
  int rc = lsmtp_tls_read(tls, c->ns->rbuf, LSMTP_NET_READ_CHUNK, &n);
  if (rc == LSMTP_OK) {
    lsmtp__conn_trace(c, 1, c->ns->rbuf, n);
    lsmtp__conn_feed(c, c->ns->rbuf, n);
    return 1;
  }
  if (rc == LSMTP_INCOMPLETE) return moved;
  if (rc == LSMTP_DONE) { /* close_notify: the client sends nothing more */
    if (c->peer_eof) return moved;
    c->peer_eof = 1;
    return 1;
  }
  tls_fail(c, rc, "TLS read");
  return 0;
}

int lsmtp__conn_tls_flush(lsmtp_net_conn *c) {
  lsmtp_tls *tls = c->tls;
  for (;;) {
    const char *p;
    size_t k, sent;
    if (c->plain_out) {
      k = lsmtp_server_pending(c->session, &p);
      if (k > c->plain_out) k = c->plain_out;
      if (k == 0) {
        c->plain_out = 0;
        continue;
      }
      if (!lsmtp__conn_send(c, p, k, &sent)) return 0;
      if (sent == 0) return 1;
      lsmtp__conn_trace(c, 0, p, sent);
      lsmtp_server_consume(c->session, sent);
      c->plain_out -= sent;
      continue;
    }
    if (lsmtp_tls_is_established(tls) && !c->tls_bye &&
        lsmtp_tls_pending(tls, NULL) < TLS_OUT_HIGH) {
      k = lsmtp_server_pending(c->session, &p);
      if (k) {
        int rc = lsmtp_tls_write(tls, p, k);
        if (rc != LSMTP_OK) {
          tls_fail(c, rc, "TLS write");
          return 0;
        }
        lsmtp__conn_trace(c, 0, p, k);
        lsmtp_server_consume(c->session, k);
      }
    }
    k = lsmtp_tls_pending(tls, &p);
    if (k == 0) return 1;
    if (!lsmtp__conn_send(c, p, k, &sent)) return 0;
    if (sent == 0) return 1;
    lsmtp_tls_consume(tls, sent);
  }
}

size_t lsmtp__conn_tls_out_pending(const lsmtp_net_conn *c) {
  const char *p;
  size_t k = lsmtp_tls_pending(c->tls, &p);
  if (c->plain_out) return k + c->plain_out;
  /* Before the handshake completed, session output cannot move (and the
   * session queues none): do not ask to be woken for it. */
  if (lsmtp_tls_is_established(c->tls) && !c->tls_bye)
    k += lsmtp_server_pending(c->session, &p);
  return k;
}

void lsmtp__conn_tls_bye(lsmtp_net_conn *c) {
  const char *p;
  if (c->plain_out || lsmtp_server_pending(c->session, &p)) return;
  c->tls_bye = 1;
  if (lsmtp_tls_is_established(c->tls) && lsmtp_tls_close(c->tls) != LSMTP_OK)
    lsmtp__log(c->ns->loop, LSMTP_NET_LOG_DEBUG,
               "conn %llu %s: close_notify: %s", (unsigned long long)c->id,
               c->peer, lsmtp_tls_error_text(c->tls));
}

/* ---- public API ---- */

int lsmtp_net_server_set_tls(lsmtp_net_server *ns, lsmtp_tls_config *tls) {
  if (!ns) return LSMTP_ERR_INVALID;
  if (ns->stage != STAGE_RUNNING) return LSMTP_ERR_STATE;
  ns->tls_cfg = tls;
  return LSMTP_OK;
}

void lsmtp_net_server_set_tls_timeout(lsmtp_net_server *ns, unsigned ms) {
  if (ns) ns->tls_timeout_ms = ms ? ms : LSMTP_NET_TLS_HANDSHAKE_MS;
}
