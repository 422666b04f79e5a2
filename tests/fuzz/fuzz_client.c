/* Fuzz target: a client session sending a fixed message is fed arbitrary
 * server bytes in chunks. The first input byte picks the chunk size and
 * the host's behaviour (auth, STARTTLS, policy, pipelining, pausing body).
 * It must never crash, hang, over-read, or consume more than it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lsmtp/client.h>
#include <lsmtp/lsmtp.h>

typedef struct fhost {
  lsmtp_client *cli;
  unsigned flags;
  int step;
  int want_tls;
  size_t body_pos;
  int reads;
} fhost;

static const char body[] = "Subject: fuzz\n\n.hello\r\nline\rbare\n.\n";

static int f_read(void *ud, char *buf, size_t cap, size_t *len) {
  fhost *h = ud;
  h->reads++;
  if ((h->flags & 0x10) && (h->reads % 3) == 0) return LSMTP_PAUSED;
  size_t n = sizeof body - 1 - h->body_pos;
  if (n > 5) n = 5;
  if (n > cap) n = cap;
  memcpy(buf, body + h->body_pos, n);
  h->body_pos += n;
  *len = n;
  return h->body_pos == sizeof body - 1 ? LSMTP_DONE : LSMTP_OK;
}

static int f_ready(void *ud) {
  fhost *h = ud;
  static const lsmtp_client_rcpt rcpts[] = {
      {"b@example.net", LSMTP_NOTIFY_FAILURE, "b@example.net"},
      {"c@example.net", 0, NULL},
      {"d@example.net", 0, NULL}};
  unsigned ext = lsmtp_client_extensions(h->cli);
  switch (h->step++) {
  case 0:
    if ((h->flags & 0x20) && (ext & LSMTP_EXT_STARTTLS)) {
      lsmtp_client_starttls(h->cli);
      return 0;
    }
    /* fall through */
  case 1:
    if ((h->flags & 0x40) && (ext & LSMTP_EXT_AUTH)) {
      lsmtp_sasl_credentials cr = {0};
      cr.username = "user";
      cr.password = "pass";
      if (lsmtp_client_auth(h->cli, LSMTP_SASL_NONE, &cr) == LSMTP_OK) return 0;
    }
    /* fall through */
  case 2:
  case 3: {
    lsmtp_client_message m = {0};
    m.reverse_path = "a@example.org";
    m.rcpts = rcpts;
    m.n_rcpts = 3;
    m.size_hint = 100;
    m.ret = LSMTP_RET_HDRS;
    m.envid = "env+id";
    m.read = f_read;
    if ((h->flags & 0x80) && (ext & LSMTP_EXT_8BITMIME)) m.body = LSMTP_BODY_8BITMIME;
    h->body_pos = 0;
    if (lsmtp_client_send(h->cli, &m) == LSMTP_OK) return 0;
  }
    /* fall through */
  default:
    lsmtp_client_quit(h->cli);
    return 0;
  }
}

static int f_starttls(void *ud, int status, const lsmtp_reply *r) {
  fhost *h = ud;
  (void)r;
  if (status == LSMTP_OK) h->want_tls = 1;
  return 0;
}

static void drain(fhost *h) {
  for (int i = 0; i < 1000; i++) {
    const char *p;
    size_t n = lsmtp_client_pending(h->cli, &p);
    if (n == 0) {
      if (lsmtp_client_resume(h->cli) == LSMTP_OK) continue;
      return;
    }
    volatile char sink = p[n - 1]; /* touch the bytes: ASan checks them */
    (void)sink;
    lsmtp_client_consume(h->cli, n);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  fhost h;
  memset(&h, 0, sizeof h);
  h.flags = data[0];
  data++, size--;
  lsmtp_client_config *cfg;
  if (lsmtp_client_config_new(&cfg, NULL) != LSMTP_OK) return 0;
  lsmtp_client_config_set_allow_insecure_auth(cfg, 1);
  lsmtp_client_config_set_reply_limits(cfg, 256, 16);
  lsmtp_client_config_set_chunking(cfg, 1, 16);
  if (h.flags & 0x08) lsmtp_client_config_set_pipelining(cfg, 0);
  if (h.flags & 0x04) lsmtp_client_config_set_rcpt_policy(cfg, LSMTP_RCPT_ALL);
  lsmtp_client_callbacks cbs = {0};
  cbs.on_ready = f_ready;
  cbs.on_starttls = f_starttls;
  if (lsmtp_client_new(&h.cli, cfg, &cbs, &h) != LSMTP_OK) {
    lsmtp_client_config_del(cfg);
    return 0;
  }
  lsmtp_client_config_del(cfg);
  const size_t chunk = (size_t)(h.flags & 0x03) * 7 + 1;
  size_t off = 0;
  while (off < size) {
    size_t n = size - off < chunk ? size - off : chunk;
    size_t consumed = 0;
    int rc = lsmtp_client_feed(h.cli, (const char *)data + off, n, &consumed);
    if (consumed > n) abort();
    if (rc != LSMTP_OK) break;
    if (consumed != n) abort();
    off += n;
    drain(&h);
    (void)lsmtp_client_timeout_ms(h.cli);
    if (h.want_tls) {
      h.want_tls = 0;
      lsmtp_client_tls_started(h.cli);
      drain(&h);
    }
  }
  lsmtp_client_eof(h.cli);
  lsmtp_client_del(h.cli);
  return 0;
}
