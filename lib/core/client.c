/* The SMTP client session: creation, the feed/pending/consume surface,
 * timers, the queue that matches replies to the commands sent (in order,
 * as RFC 2920 requires), and the small steps (greeting, RSET, QUIT). */
#include "client_int.h"

static const char *const kind_verb[] = {"GREETING", "EHLO", "HELO", "STARTTLS",
                                        "AUTH",     "MAIL", "RCPT", "DATA",
                                        ".",        "BDAT", "RSET", "QUIT"};

/* ---- creation ---- */

static int make_parser(lsmtp_client *c) {
  lsmtp_reply_parser_del(c->rp);
  c->rp = NULL;
  return lsmtp_reply_parser_new(&c->rp, c->alloc, c->cfg.max_line,
                                c->cfg.max_lines);
}

int lsmtp_client_new(lsmtp_client **out, const lsmtp_client_config *cfg,
                     const lsmtp_client_callbacks *callbacks, void *user_data) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  lsmtp_client_config *defaults = NULL;
  if (!cfg) {
    int rc = lsmtp_client_config_new(&defaults, NULL);
    if (rc != LSMTP_OK) return rc;
    cfg = defaults;
  }
  const lsmtp_allocator *a = cfg->alloc;
  lsmtp_client *c = lsmtp__calloc(a, 1, sizeof *c);
  if (!c) {
    lsmtp_client_config_del(defaults);
    return LSMTP_ERR_NOMEM;
  }
  c->cfg = *cfg;
  lsmtp_client_config_del(defaults);
  c->alloc = a;
  if (callbacks) c->cb = *callbacks;
  c->ud = user_data;
  lsmtp__buf_init(&c->out, a);
  lsmtp__buf_init(&c->auth_ir, a);
  lsmtp__buf_init(&c->m.lines, a);
  int rc = make_parser(c);
  if (rc == LSMTP_OK) rc = lsmtp_data_encoder_new(&c->enc, a);
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_GREETING, 0);
  if (rc != LSMTP_OK) {
    lsmtp_client_del(c);
    return rc;
  }
  c->state = LSMTP_CLIENT_GREETING;
  *out = c;
  return LSMTP_OK;
}

static void saved_clear(lsmtp_client *c, lsmtp__saved_reply *s) {
  lsmtp__free(c->alloc, s->text);
  memset(s, 0, sizeof *s);
}

void lsmtp_client_del(lsmtp_client *c) {
  if (!c) return;
  const lsmtp_allocator *a = c->alloc;
  lsmtp__txn_clear(c);
  lsmtp__buf_free(&c->m.lines);
  lsmtp_reply_parser_del(c->rp);
  lsmtp_data_encoder_del(c->enc);
  lsmtp__buf_free(&c->out);
  if (c->auth_ir.data) lsmtp__wipe(c->auth_ir.data, c->auth_ir.cap);
  lsmtp__buf_free(&c->auth_ir);
  lsmtp_sasl_client_del(c->sasl);
  saved_clear(c, &c->end_reply);
  lsmtp__free(a, c->q);
  lsmtp__free(a, c->scratch);
  lsmtp__free(a, c->chunk);
  lsmtp__free(a, c);
}

/* ---- output and the reply queue ---- */

int lsmtp__client_write(lsmtp_client *c, const char *s, size_t n) {
  return lsmtp__buf_append(&c->out, s, n);
}

int lsmtp__client_writes(lsmtp_client *c, const char *s) {
  return lsmtp__client_write(c, s, strlen(s));
}

int lsmtp__client_push(lsmtp_client *c, lsmtp__ckind kind, size_t index) {
  if (c->q_len == c->q_cap) {
    size_t cap = c->q_cap ? c->q_cap * 2 : 16;
    lsmtp__expect *q = lsmtp__calloc(c->alloc, cap, sizeof *q);
    if (!q) return LSMTP_ERR_NOMEM;
    for (size_t i = 0; i < c->q_len; i++) q[i] = c->q[(c->q_head + i) % c->q_cap];
    lsmtp__free(c->alloc, c->q);
    c->q = q;
    c->q_cap = cap;
    c->q_head = 0;
  }
  lsmtp__expect *e = &c->q[(c->q_head + c->q_len) % c->q_cap];
  e->kind = kind;
  e->index = index;
  c->q_len++;
  return LSMTP_OK;
}

static lsmtp__expect pop(lsmtp_client *c) {
  lsmtp__expect e = c->q[c->q_head];
  c->q_head = (c->q_head + 1) % c->q_cap;
  c->q_len--;
  return e;
}

/* ---- endings ---- */

static void report_closed(lsmtp_client *c, int status, const lsmtp_reply *r) {
  if (c->closed_reported) return;
  c->closed_reported = 1;
  if (c->cb.on_closed) c->cb.on_closed(c->ud, status, r);
}

int lsmtp__client_fail(lsmtp_client *c, int status) {
  if (c->fatal) return status;
  c->fatal = 1;
  c->error = status;
  c->state = LSMTP_CLIENT_FAILED;
  c->q_len = 0;
  c->m.body_state = LSMTP__BODY_IDLE;
  if (c->m.active && !c->m.reported) {
    c->m.reported = 1;
    if (c->cb.on_message_done) (void)c->cb.on_message_done(c->ud, status, NULL);
  }
  report_closed(c, status, NULL);
  return status;
}

int lsmtp__client_cb_rc(int rc) { return rc < 0 ? LSMTP_ERR_ABORTED : LSMTP_OK; }

int lsmtp__client_fail_status(const lsmtp_reply *r) {
  return r->code >= 400 && r->code < 500 ? LSMTP_ERR_TEMPFAIL : LSMTP_ERR_REFUSED;
}

int lsmtp__client_ready(lsmtp_client *c) {
  c->state = LSMTP_CLIENT_READY;
  if (!c->cb.on_ready) return LSMTP_OK;
  return lsmtp__client_cb_rc(c->cb.on_ready(c->ud));
}

static int save_reply(lsmtp_client *c, const lsmtp_reply *r) {
  saved_clear(c, &c->end_reply);
  if (!r) return LSMTP_OK;
  c->end_reply.text = lsmtp__strndup(c->alloc, r->text, r->text_len);
  if (!c->end_reply.text) return LSMTP_ERR_NOMEM;
  c->end_reply.reply = *r;
  c->end_reply.reply.text = c->end_reply.text;
  c->end_reply.valid = 1;
  return LSMTP_OK;
}

int lsmtp__client_wind_down(lsmtp_client *c, int status, const lsmtp_reply *r) {
  c->end_status = status;
  int rc = save_reply(c, r);
  if (rc != LSMTP_OK) return rc;
  rc = lsmtp__client_writes(c, "QUIT\r\n");
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_QUIT, 0);
  c->state = LSMTP_CLIENT_QUIT;
  return rc;
}

/* The server said 421 (closing): whatever ran fails temporarily. */
static int on_421(lsmtp_client *c, const lsmtp_reply *r) {
  int rc = LSMTP_OK;
  if (c->m.active && !c->m.reported)
    rc = lsmtp__txn_message_done(c, LSMTP_ERR_TEMPFAIL, r);
  lsmtp__txn_clear(c);
  c->q_len = 0;
  c->out.len = 0; /* the server is gone: nothing more to write */
  c->state = LSMTP_CLIENT_CLOSED;
  c->error = LSMTP_ERR_CLOSED;
  report_closed(c, LSMTP_ERR_CLOSED, r);
  return rc;
}

/* ---- per-command reply handling ---- */

static int on_greeting(lsmtp_client *c, const lsmtp_reply *r) {
  if (r->code == 220) return lsmtp__client_send_hello(c, 0);
  if (r->code == 554 || (r->code >= 400 && r->code < 500))
    return lsmtp__client_wind_down(c, lsmtp__client_fail_status(r), r);
  return LSMTP_ERR_PROTOCOL;
}

static int on_rset(lsmtp_client *c, const lsmtp_reply *r) {
  if (r->code / 100 == 2) return lsmtp__client_ready(c);
  if (r->code / 100 == 3) return LSMTP_ERR_PROTOCOL;
  /* A server that cannot reset cannot take another message. */
  return lsmtp__client_wind_down(c, lsmtp__client_fail_status(r), r);
}

static int on_quit(lsmtp_client *c, const lsmtp_reply *r) {
  (void)r;
  c->state = LSMTP_CLIENT_CLOSED;
  c->error = c->end_status;
  report_closed(c, c->end_status, c->end_reply.valid ? &c->end_reply.reply : NULL);
  return LSMTP_OK;
}

static int dispatch(lsmtp_client *c, const lsmtp__expect *e, const lsmtp_reply *r) {
  if (c->cb.on_reply) c->cb.on_reply(c->ud, kind_verb[e->kind], r);
  if (r->code < 200 || r->code > 599) return LSMTP_ERR_BAD_REPLY;
  if (r->code == 421 && e->kind != LSMTP__C_QUIT) return on_421(c, r);
  switch (e->kind) {
  case LSMTP__C_GREETING: return on_greeting(c, r);
  case LSMTP__C_EHLO:
  case LSMTP__C_HELO: return lsmtp__client_on_hello(c, e->kind, r);
  case LSMTP__C_STARTTLS: return lsmtp__starttls_on_reply(c, r);
  case LSMTP__C_AUTH: return lsmtp__auth_on_reply(c, r);
  case LSMTP__C_RSET: return on_rset(c, r);
  case LSMTP__C_QUIT: return on_quit(c, r);
  default: return lsmtp__txn_on_reply(c, e, r);
  }
}

static int parser_error(int rc) {
  if (rc == LSMTP_ERR_NOMEM) return LSMTP_ERR_NOMEM;
  return LSMTP_ERR_BAD_REPLY;
}

static int feed_loop(lsmtp_client *c, const char *data, size_t len,
                     size_t *consumed);

int lsmtp_client_feed(lsmtp_client *c, const char *data, size_t len,
                      size_t *consumed) {
  size_t dummy;
  if (!consumed) consumed = &dummy;
  *consumed = 0;
  if (!c || (!data && len)) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  c->in_feed = 1;
  int rc = feed_loop(c, data, len, consumed);
  c->in_feed = 0;
  return rc;
}

static int feed_loop(lsmtp_client *c, const char *data, size_t len,
                     size_t *consumed) {
  size_t off = 0;
  while (off < len) {
    /* Bytes nobody asked for: a reply beyond the commands sent, or text
     * after STARTTLS's 220 (RFC 3207 §6 response injection). */
    if (c->q_len == 0) return lsmtp__client_fail(c, LSMTP_ERR_PROTOCOL);
    size_t used = 0;
    int rc = lsmtp_reply_parser_feed(c->rp, data + off, len - off, &used);
    if (used > len - off) used = len - off;
    off += used;
    *consumed = off;
    if (rc == LSMTP_INCOMPLETE) break;
    if (rc != LSMTP_DONE) return lsmtp__client_fail(c, parser_error(rc));
    const lsmtp_reply *r = lsmtp_reply_parser_get(c->rp);
    if (!r) return lsmtp__client_fail(c, LSMTP_ERR_BAD_REPLY);
    lsmtp__expect e = pop(c);
    rc = dispatch(c, &e, r);
    if (rc < 0) return lsmtp__client_fail(c, rc);
    if (c->fatal) return c->error;
    if (c->tls_wait && off < len) return lsmtp__client_fail(c, LSMTP_ERR_PROTOCOL);
  }
  return LSMTP_OK;
}

size_t lsmtp_client_pending(lsmtp_client *c, const char **data) {
  static const char empty[1] = "";
  if (data) *data = empty;
  if (!c || c->fatal) return 0;
  if (c->m.body_state == LSMTP__BODY_STREAM) {
    int rc = lsmtp__body_fill(c);
    if (rc < 0) {
      lsmtp__client_fail(c, rc);
      return 0;
    }
  }
  if (data && c->out.len) *data = c->out.data;
  return c->out.len;
}

void lsmtp_client_consume(lsmtp_client *c, size_t n) {
  if (!c || c->fatal) return;
  lsmtp__buf_consume(&c->out, n);
}

int lsmtp_client_want_read(const lsmtp_client *c) {
  return c && !c->fatal && c->q_len > 0;
}

uint32_t lsmtp_client_timeout_ms(const lsmtp_client *c) {
  if (!c || c->fatal || c->state == LSMTP_CLIENT_CLOSED) return 0;
  const uint32_t *t = c->cfg.timeouts;
  if (c->q_len == 0) {
    /* Sending a body: the data block timer runs between writes. */
    if (c->m.body_state == LSMTP__BODY_STREAM) return t[LSMTP_CLIENT_TIMER_DATA_BLOCK];
    return 0;
  }
  /* The oldest unanswered command is the one the server owes us. */
  switch (c->q[c->q_head].kind) {
  case LSMTP__C_GREETING: return t[LSMTP_CLIENT_TIMER_GREETING];
  case LSMTP__C_MAIL: return t[LSMTP_CLIENT_TIMER_MAIL];
  case LSMTP__C_RCPT: return t[LSMTP_CLIENT_TIMER_RCPT];
  case LSMTP__C_DATA: return t[LSMTP_CLIENT_TIMER_DATA_INIT];
  case LSMTP__C_DOT:
  case LSMTP__C_BDAT: return t[LSMTP_CLIENT_TIMER_DATA_TERM];
  default: return t[LSMTP_CLIENT_TIMER_OTHER];
  }
}

int lsmtp_client_timeout(lsmtp_client *c) {
  if (!c) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  return lsmtp__client_fail(c, LSMTP_ERR_TIMEOUT);
}

int lsmtp_client_eof(lsmtp_client *c) {
  if (!c) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  if (c->state == LSMTP_CLIENT_CLOSED) return LSMTP_OK;
  if (c->state == LSMTP_CLIENT_QUIT) {
    /* The server may close without answering QUIT; nothing is lost. */
    c->q_len = 0;
    c->state = LSMTP_CLIENT_CLOSED;
    c->error = c->end_status;
    report_closed(c, c->end_status, c->end_reply.valid ? &c->end_reply.reply : NULL);
    return LSMTP_OK;
  }
  return lsmtp__client_fail(c, LSMTP_ERR_CLOSED);
}

lsmtp_client_state lsmtp_client_state_get(const lsmtp_client *c) {
  return c ? c->state : LSMTP_CLIENT_FAILED;
}

int lsmtp_client_error(const lsmtp_client *c) {
  return c ? c->error : LSMTP_ERR_INVALID;
}

unsigned lsmtp_client_extensions(const lsmtp_client *c) { return c ? c->ext : 0; }
uint64_t lsmtp_client_size_limit(const lsmtp_client *c) { return c ? c->size_limit : 0; }
unsigned lsmtp_client_auth_mechs(const lsmtp_client *c) { return c ? c->auth_mechs : 0; }
int lsmtp_client_used_helo(const lsmtp_client *c) { return c ? c->used_helo : 0; }

void lsmtp_client_set_secure(lsmtp_client *c, int secure) {
  if (c) c->secure = secure != 0;
}

int lsmtp_client_quit(lsmtp_client *c) {
  if (!c) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  if (c->state != LSMTP_CLIENT_READY) return LSMTP_ERR_STATE;
  return lsmtp__client_wind_down(c, LSMTP_OK, NULL);
}

/* Used by tls_started: forget everything learnt in plaintext. */
int lsmtp_client_tls_started(lsmtp_client *c) {
  if (!c) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  /* Not from inside feed(): the rest of that read would be taken as the
   * answer to the new EHLO, which is the injection RFC 3207 §6 warns of. */
  if (!c->tls_wait || c->in_feed) return LSMTP_ERR_STATE;
  c->tls_wait = 0;
  c->ext = 0;
  c->size_limit = 0;
  c->auth_mechs = 0;
  c->used_helo = 0;
  c->secure = 1;
  c->out.len = 0;
  int rc = make_parser(c);
  if (rc == LSMTP_OK) rc = lsmtp__client_send_hello(c, 0);
  if (rc != LSMTP_OK) return lsmtp__client_fail(c, rc);
  return LSMTP_OK;
}
