/* Fuzz the server session: arbitrary client bytes, fed in chunks whose
 * sizes come from the input, with hosts that accept at once, defer every
 * decision, pause every DATA span, or refuse. The session must never crash,
 * never consume more than it was given, never get stuck, and only ever
 * write well-formed reply lines ("NNN" then SP or "-", ending in CRLF).
 * MODE_TLS adds STARTTLS (the fuzzer "completes the handshake" whenever the
 * session asks; nothing may be written or run between the 220 and that)
 * and AUTH with one account; with MODE_REFUSE also the TLS and AUTH
 * policies; with MODE_SMALL_LIMITS the session starts with implicit TLS.
 *
 * Input layout: byte 0 = mode bits, byte 1 = chunk-size seed, rest = the
 * client's bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lsmtp/server.h>
#include <lsmtp/status.h>

#define MODE_DEFER 0x01
#define MODE_PAUSE 0x02
#define MODE_LMTP 0x04
#define MODE_NORMALIZE 0x08
#define MODE_SMALL_LIMITS 0x10
#define MODE_REFUSE 0x20
#define MODE_NO_EXT 0x40
#define MODE_TLS 0x80

typedef struct fuzz_host {
  unsigned mode;
  int deferred, paused;
  unsigned counter;
} fuzz_host;

static void check(int ok) {
  if (!ok) abort();
}

static int decide(lsmtp_server *srv, fuzz_host *h) {
  h->counter++;
  if (h->mode & MODE_DEFER) {
    h->deferred = 1;
    return LSMTP_SERVER_DEFER;
  }
  if ((h->mode & MODE_REFUSE) && h->counter % 3 == 0)
    check(lsmtp_server_set_reply(srv, 550, "5.7.1", "no\nreally not") == LSMTP_OK);
  return LSMTP_OK;
}

static int on_connect(lsmtp_server *s, void *ud) {
  fuzz_host *h = ud;
  return (h->mode & MODE_DEFER) ? decide(s, h) : LSMTP_OK;
}
static int on_helo(lsmtp_server *s, const char *n, size_t l, int e, void *ud) {
  (void)n; (void)l; (void)e;
  return decide(s, ud);
}
static int on_mail(lsmtp_server *s, const lsmtp_path *p, const lsmtp_mail_params *m, void *ud) {
  (void)p; (void)m;
  return decide(s, ud);
}
static int on_rcpt(lsmtp_server *s, const lsmtp_path *p, const lsmtp_rcpt_params *r, void *ud) {
  (void)p; (void)r;
  return decide(s, ud);
}
static int on_data_start(lsmtp_server *s, void *ud) { return decide(s, ud); }
static int on_chunk(lsmtp_server *s, const char *d, size_t n, void *ud) {
  (void)s;
  fuzz_host *h = ud;
  check(n > 0 && d != NULL);
  check(!h->paused);
  if (h->mode & MODE_PAUSE) {
    h->paused = 1;
    return LSMTP_PAUSED;
  }
  return LSMTP_OK;
}
static int on_auth(lsmtp_server *s, const char *mech, const char *authzid,
                   const char *authcid, const char *pw, size_t pw_len, void *ud) {
  check(mech != NULL && authzid != NULL && authcid != NULL && pw != NULL);
  check(strlen(pw) == pw_len && pw_len > 0 && authcid[0] != '\0');
  check(lsmtp_server_auth_id(s) == NULL);
  int rc = decide(s, ud);
  if (rc != LSMTP_OK) return rc;
  return pw_len == 6 && memcmp(pw, "secret", 6) == 0 ? LSMTP_OK : LSMTP_ERR_AUTH;
}
static int on_data_end(lsmtp_server *s, size_t idx, void *ud) {
  if (idx != LSMTP_SERVER_ALL_RCPTS) check(lsmtp_server_rcpt(s, idx) != NULL);
  return decide(s, ud);
}

static void check_replies(const char *p, size_t n) {
  /* Replies are whole lines: the session never leaves a partial one. */
  size_t i = 0;
  while (i < n) {
    const char *e = memchr(p + i, '\n', n - i);
    check(e != NULL);
    size_t len = (size_t)(e - (p + i)) + 1;
    check(len >= 6);
    check(p[i] >= '2' && p[i] <= '5');
    check(p[i + 1] >= '0' && p[i + 1] <= '9' && p[i + 2] >= '0' && p[i + 2] <= '9');
    check(p[i + 3] == ' ' || p[i + 3] == '-');
    check(p[i + len - 2] == '\r');
    for (size_t k = i; k < i + len - 2; k++) check(p[k] != '\r' && p[k] != '\n');
    i += len;
  }
}

static void drain(lsmtp_server *srv) {
  const char *p;
  size_t n = lsmtp_server_pending(srv, &p);
  check_replies(p, n);
  check(lsmtp_server_consume(srv, n) == LSMTP_OK);
}

/* Resolve what blocks the session; 0 when nothing did. */
static int unblock(lsmtp_server *srv, fuzz_host *h) {
  if (lsmtp_server_starttls_pending(srv)) {
    check(lsmtp_server_pending(srv, NULL) == 0); /* the 220 was written */
    check(lsmtp_server_tls_started(srv, "TLSv1.3", "TLS_AES_128_GCM_SHA256") == LSMTP_OK);
    check(lsmtp_server_is_tls(srv) && !lsmtp_server_starttls_pending(srv));
    check(lsmtp_server_helo(srv) == NULL && lsmtp_server_auth_id(srv) == NULL);
    return 1;
  }
  if (h->deferred) {
    h->deferred = 0;
    int code = (h->counter % 4 == 1) ? 451 : 0;
    int rc = lsmtp_server_answer(srv, code, NULL, NULL);
    check(rc == LSMTP_OK || rc == LSMTP_PAUSED);
    return 1;
  }
  if (h->paused) {
    h->paused = 0;
    int rc = lsmtp_server_resume(srv);
    check(rc == LSMTP_OK || rc == LSMTP_PAUSED);
    return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  fuzz_host h = {data[0], 0, 0, 0};
  unsigned seed = data[1];
  const char *in = (const char *)data + 2;
  size_t len = size - 2;

  lsmtp_server_config *cfg = NULL;
  if (lsmtp_server_config_new(&cfg, NULL) != LSMTP_OK) return 0;
  unsigned flags = 0;
  if (h.mode & MODE_LMTP) flags |= LSMTP_SERVER_LMTP;
  if (h.mode & MODE_NORMALIZE) flags |= LSMTP_SERVER_NORMALIZE_EOL;
  if (h.mode & MODE_TLS) {
    flags |= (h.mode & MODE_REFUSE) ? LSMTP_SERVER_REQUIRE_TLS | LSMTP_SERVER_REQUIRE_AUTH
                                    : LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH;
    if (seed & 1) flags |= LSMTP_SERVER_ALLOW_PROXY_AUTH;
  }
  check(lsmtp_server_config_set_flags(cfg, flags) == LSMTP_OK);
  if (h.mode & MODE_SMALL_LIMITS) {
    lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_MESSAGE_SIZE, 64);
    lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_RECIPIENTS, 3);
    lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_ERRORS, 5);
    lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_LINE, 512);
    lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_OUTPUT, 100);
    lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_MESSAGES, 2);
  }
  if (h.mode & MODE_NO_EXT) lsmtp_server_config_set_extensions(cfg, LSMTP_EXT_PIPELINING);
  else if (h.mode & MODE_TLS)
    check(lsmtp_server_config_set_extensions(cfg, LSMTP_EXT_DEFAULT | LSMTP_EXT_STARTTLS) ==
          LSMTP_OK);
  lsmtp_server_callbacks cb = {0};
  cb.on_connect = on_connect;
  cb.on_helo = on_helo;
  cb.on_mail = on_mail;
  cb.on_rcpt = on_rcpt;
  cb.on_data_start = on_data_start;
  cb.on_data_chunk = on_chunk;
  cb.on_data_end = on_data_end;
  if (h.mode & MODE_TLS) cb.on_auth = on_auth;
  lsmtp_server *srv = NULL;
  if (lsmtp_server_new(&srv, cfg, &cb, &h) != LSMTP_OK) {
    lsmtp_server_config_del(cfg);
    return 0;
  }
  if ((h.mode & MODE_TLS) && (h.mode & MODE_SMALL_LIMITS))
    check(lsmtp_server_tls_started(srv, "TLSv1.2", NULL) == LSMTP_OK);
  int rc = lsmtp_server_start(srv);
  while (rc == LSMTP_PAUSED && unblock(srv, &h)) rc = LSMTP_OK;
  drain(srv);

  size_t off = 0;
  unsigned stall = 0;
  while (off < len && !lsmtp_server_want_close(srv)) {
    seed = seed * 1103515245u + 12345u;
    size_t piece = 1 + (seed >> 16) % 64;
    if (piece > len - off) piece = len - off;
    size_t used = 0;
    uint64_t discarded = lsmtp_server_discarded(srv);
    rc = lsmtp_server_feed(srv, in + off, piece, &used);
    check(used <= piece);
    if (rc == LSMTP_OK) check(used == piece);
    if (lsmtp_server_starttls_pending(srv)) {
      /* Everything behind STARTTLS was taken and thrown away, and the 220
       * is the last thing written in the clear. */
      check(rc == LSMTP_PAUSED && used == piece);
      const char *p;
      size_t n = lsmtp_server_pending(srv, &p);
      static const char ready[] = "220 2.0.0 Ready to start TLS\r\n";
      if (n) check(n >= sizeof ready - 1 && memcmp(p + n - (sizeof ready - 1), ready,
                                                   sizeof ready - 1) == 0);
    } else {
      check(lsmtp_server_discarded(srv) == discarded);
    }
    off += used;
    drain(srv);
    if (rc < 0) break;
    /* Usually the handshake follows at once; sometimes the host feeds
     * another read first (which must be thrown away as well). */
    if (lsmtp_server_starttls_pending(srv) && ((seed >> 8) & 3) != 0) {
      check(unblock(srv, &h));
      drain(srv);
    }
    if (used == 0 && !lsmtp_server_want_close(srv)) {
      if (!unblock(srv, &h)) check(++stall < 3); /* never stuck */
      else stall = 0;
      drain(srv);
    }
    (void)lsmtp_server_timeout_ms(srv);
  }
  while (unblock(srv, &h)) drain(srv);
  if (!lsmtp_server_want_close(srv) && (seed & 1)) {
    check(lsmtp_server_timeout(srv) == LSMTP_OK);
    check(lsmtp_server_want_close(srv));
  }
  drain(srv);
  lsmtp_server_del(srv);
  lsmtp_server_config_del(cfg);
  return 0;
}
