/* One mail transaction: checking the message against what the server
 * offers, formatting MAIL and RCPT with their parameters, sending them as
 * one pipelined group (RFC 2920) or one by one, and matching the replies:
 * per-recipient results, the DATA decision, the final reply, and the RSET
 * that follows a failed transaction. */
#include <stdio.h>

#include "client_int.h"

#define MAX_ENVID 100  /* RFC 3461 §4.4 */
#define MAX_ORCPT 500  /* RFC 3461 §4.2 */

void lsmtp__txn_clear(lsmtp_client *c) {
  lsmtp__txn *m = &c->m;
  for (size_t i = 0; m->rcpts && i < m->n_rcpts; i++)
    lsmtp__free(c->alloc, m->rcpts[i].address);
  lsmtp__free(c->alloc, m->rcpts);
  lsmtp__free(c->alloc, m->line_off);
  lsmtp__buf lines = m->lines;
  lines.len = 0;
  memset(m, 0, sizeof *m);
  m->lines = lines; /* keep the buffer for the next message */
}

static int printable_ascii(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return 0;
  return 1;
}

/* Validate "addr" as a path; *utf8 set when it needs SMTPUTF8. */
static int check_path(const char *addr, int reverse, int *utf8) {
  char buf[LSMTP_MAX_PATH + 1];
  size_t n = strlen(addr);
  if (n + 2 > LSMTP_MAX_PATH) return LSMTP_ERR_TOO_LONG;
  buf[0] = '<';
  memcpy(buf + 1, addr, n);
  buf[n + 1] = '>';
  lsmtp_path path;
  size_t used = 0;
  int rc = lsmtp_path_parse(buf, n + 2, LSMTP_ADDR_SMTPUTF8, reverse, !reverse,
                            &path, &used);
  if (rc != LSMTP_OK) return rc;
  if (used != n + 2 || path.had_route) return LSMTP_ERR_SYNTAX;
  if (path.has_utf8) *utf8 = 1;
  return LSMTP_OK;
}

static int put(lsmtp__buf *b, const char *s) { return lsmtp__buf_append(b, s, strlen(s)); }

static int put_xtext(lsmtp__buf *b, const char *s) {
  size_t n = strlen(s);
  size_t need = lsmtp_xtext_encode(NULL, 0, s, n);
  int rc = lsmtp__buf_reserve(b, need + 1);
  if (rc != LSMTP_OK) return rc;
  lsmtp_xtext_encode(b->data + b->len, need + 1, s, n);
  b->len += need;
  return LSMTP_OK;
}

static int put_mail(lsmtp_client *c, const lsmtp_client_message *msg, int utf8) {
  lsmtp__buf *b = &c->m.lines;
  const int dsn = (c->ext & LSMTP_EXT_DSN) != 0;
  int rc = put(b, "MAIL FROM:<");
  if (rc == LSMTP_OK && msg->reverse_path) rc = put(b, msg->reverse_path);
  if (rc == LSMTP_OK) rc = put(b, ">");
  if (rc == LSMTP_OK && (c->ext & LSMTP_EXT_SIZE) && msg->size_hint) {
    char num[32];
    snprintf(num, sizeof num, " SIZE=%llu", (unsigned long long)msg->size_hint);
    rc = put(b, num);
  }
  if (rc == LSMTP_OK && msg->body == LSMTP_BODY_8BITMIME) rc = put(b, " BODY=8BITMIME");
  if (rc == LSMTP_OK && msg->body == LSMTP_BODY_BINARYMIME) rc = put(b, " BODY=BINARYMIME");
  if (rc == LSMTP_OK && utf8) rc = put(b, " SMTPUTF8");
  if (rc == LSMTP_OK && msg->requiretls) rc = put(b, " REQUIRETLS");
  if (rc == LSMTP_OK && dsn && msg->ret == LSMTP_RET_FULL) rc = put(b, " RET=FULL");
  if (rc == LSMTP_OK && dsn && msg->ret == LSMTP_RET_HDRS) rc = put(b, " RET=HDRS");
  if (rc == LSMTP_OK && dsn && msg->envid) {
    rc = put(b, " ENVID=");
    if (rc == LSMTP_OK) rc = put_xtext(b, msg->envid);
  }
  if (rc == LSMTP_OK) rc = put(b, "\r\n");
  return rc;
}

static int put_rcpt(lsmtp_client *c, const lsmtp_client_rcpt *r) {
  lsmtp__buf *b = &c->m.lines;
  const int dsn = (c->ext & LSMTP_EXT_DSN) != 0;
  int rc = put(b, "RCPT TO:<");
  if (rc == LSMTP_OK) rc = put(b, r->address);
  if (rc == LSMTP_OK) rc = put(b, ">");
  if (rc == LSMTP_OK && dsn && r->notify) {
    static const struct {
      unsigned bit;
      const char *name;
    } names[] = {{LSMTP_NOTIFY_NEVER, "NEVER"},
                 {LSMTP_NOTIFY_SUCCESS, "SUCCESS"},
                 {LSMTP_NOTIFY_FAILURE, "FAILURE"},
                 {LSMTP_NOTIFY_DELAY, "DELAY"}};
    const char *sep = " NOTIFY=";
    for (size_t i = 0; rc == LSMTP_OK && i < 4; i++)
      if (r->notify & names[i].bit) {
        rc = put(b, sep);
        if (rc == LSMTP_OK) rc = put(b, names[i].name);
        sep = ",";
      }
  }
  if (rc == LSMTP_OK && dsn && r->orcpt) {
    rc = put(b, " ORCPT=rfc822;");
    if (rc == LSMTP_OK) rc = put_xtext(b, r->orcpt);
  }
  if (rc == LSMTP_OK) rc = put(b, "\r\n");
  return rc;
}

/* Everything that can be refused before a byte is sent. */
static int check_message(lsmtp_client *c, const lsmtp_client_message *msg,
                         int *utf8) {
  if (!msg->rcpts || msg->n_rcpts == 0 || !msg->read) return LSMTP_ERR_INVALID;
  if (msg->n_rcpts > c->cfg.max_rcpts) return LSMTP_ERR_LIMIT;
  int rc;
  if (msg->reverse_path && *msg->reverse_path &&
      (rc = check_path(msg->reverse_path, 1, utf8)) != LSMTP_OK)
    return rc;
  for (size_t i = 0; i < msg->n_rcpts; i++) {
    const lsmtp_client_rcpt *r = &msg->rcpts[i];
    if (!r->address || !*r->address) return LSMTP_ERR_INVALID;
    if ((rc = check_path(r->address, 0, utf8)) != LSMTP_OK) return rc;
    if ((r->notify & LSMTP_NOTIFY_NEVER) && (r->notify & ~LSMTP_NOTIFY_NEVER))
      return LSMTP_ERR_INVALID;
    if (r->notify & ~0xfu) return LSMTP_ERR_INVALID;
    if (r->orcpt) {
      size_t n = strlen(r->orcpt);
      if (n > MAX_ORCPT) return LSMTP_ERR_TOO_LONG;
      if (!printable_ascii(r->orcpt, n)) return LSMTP_ERR_UTF8;
    }
  }
  if (msg->envid) {
    size_t n = strlen(msg->envid);
    if (n > MAX_ENVID) return LSMTP_ERR_TOO_LONG;
    if (!printable_ascii(msg->envid, n)) return LSMTP_ERR_UTF8;
  }
  if (*utf8 && !(c->ext & LSMTP_EXT_SMTPUTF8)) return LSMTP_ERR_UNSUPPORTED;
  if (msg->body == LSMTP_BODY_8BITMIME && !(c->ext & LSMTP_EXT_8BITMIME))
    return LSMTP_ERR_UNSUPPORTED;
  if (msg->body == LSMTP_BODY_BINARYMIME &&
      (!(c->ext & LSMTP_EXT_BINARYMIME) || !(c->ext & LSMTP_EXT_CHUNKING) ||
       !c->cfg.chunking))
    return LSMTP_ERR_UNSUPPORTED;
  if (msg->requiretls && !(c->ext & LSMTP_EXT_REQUIRETLS)) return LSMTP_ERR_UNSUPPORTED;
  if (msg->size_hint && c->size_limit && msg->size_hint > c->size_limit)
    return LSMTP_ERR_LIMIT;
  return LSMTP_OK;
}

/* Append command line i (0 = MAIL, 1.. = RCPT) to the output. */
static int send_line(lsmtp_client *c, size_t i) {
  lsmtp__txn *m = &c->m;
  int rc = lsmtp__client_write(c, m->lines.data + m->line_off[i],
                               m->line_off[i + 1] - m->line_off[i]);
  if (rc == LSMTP_OK)
    rc = lsmtp__client_push(c, i == 0 ? LSMTP__C_MAIL : LSMTP__C_RCPT, i ? i - 1 : 0);
  return rc;
}

static int send_data_cmd(lsmtp_client *c) {
  int rc = lsmtp__client_writes(c, "DATA\r\n");
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_DATA, 0);
  return rc;
}

static int build(lsmtp_client *c, const lsmtp_client_message *msg, int utf8) {
  lsmtp__txn *m = &c->m;
  const size_t n = msg->n_rcpts;
  m->rcpts = lsmtp__calloc(c->alloc, n, sizeof *m->rcpts);
  m->line_off = lsmtp__calloc(c->alloc, n + 2, sizeof *m->line_off);
  if (!m->rcpts || !m->line_off) return LSMTP_ERR_NOMEM;
  m->n_rcpts = n;
  for (size_t i = 0; i < n; i++) {
    const char *a = msg->rcpts[i].address;
    m->rcpts[i].address = lsmtp__strndup(c->alloc, a, strlen(a));
    if (!m->rcpts[i].address) return LSMTP_ERR_NOMEM;
  }
  m->lines.len = 0;
  int rc = put_mail(c, msg, utf8);
  m->line_off[1] = m->lines.len;
  for (size_t i = 0; rc == LSMTP_OK && i < n; i++) {
    rc = put_rcpt(c, &msg->rcpts[i]);
    m->line_off[i + 2] = m->lines.len;
  }
  return rc;
}

int lsmtp_client_send(lsmtp_client *c, const lsmtp_client_message *msg) {
  if (!c || !msg) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  if (c->state != LSMTP_CLIENT_READY) return LSMTP_ERR_STATE;
  int utf8 = 0;
  int rc = check_message(c, msg, &utf8);
  if (rc != LSMTP_OK) return rc;
  lsmtp__txn_clear(c);
  lsmtp__txn *m = &c->m;
  rc = build(c, msg, utf8);
  if (rc != LSMTP_OK) {
    lsmtp__txn_clear(c);
    return rc;
  }
  m->active = 1;
  m->body = msg->body;
  m->read = msg->read;
  m->use_bdat = (c->ext & LSMTP_EXT_CHUNKING) && c->cfg.chunking;
  m->pipelined = (c->ext & LSMTP_EXT_PIPELINING) && c->cfg.pipelining;
  lsmtp_data_encoder_reset(c->enc);
  const size_t out_before = c->out.len, q_before = c->q_len;
  if (m->pipelined) {
    for (size_t i = 0; rc == LSMTP_OK && i <= m->n_rcpts; i++) rc = send_line(c, i);
    /* DATA joins the group unless it must wait for every RCPT reply. */
    if (rc == LSMTP_OK && !m->use_bdat && c->cfg.policy == LSMTP_RCPT_ANY) {
      rc = send_data_cmd(c);
      m->data_queued = 1;
    }
  } else {
    rc = send_line(c, 0);
  }
  if (rc != LSMTP_OK) { /* nothing may leave half-written */
    c->out.len = out_before;
    c->q_len = q_before;
    lsmtp__txn_clear(c);
    return rc;
  }
  c->state = LSMTP_CLIENT_MESSAGE;
  return LSMTP_OK;
}

int lsmtp__txn_message_done(lsmtp_client *c, int status, const lsmtp_reply *r) {
  lsmtp__txn *m = &c->m;
  if (m->reported) return LSMTP_OK;
  m->reported = 1;
  if (status != LSMTP_OK) m->doomed = 1;
  if (!c->cb.on_message_done) return LSMTP_OK;
  return lsmtp__client_cb_rc(c->cb.on_message_done(c->ud, status, r));
}

int lsmtp__txn_settle(lsmtp_client *c) {
  lsmtp__txn *m = &c->m;
  if (!m->active || !m->reported || c->q_len != 0 ||
      m->body_state != LSMTP__BODY_IDLE)
    return LSMTP_OK;
  const int failed = m->doomed;
  lsmtp__txn_clear(c);
  if (!failed) return lsmtp__client_ready(c);
  c->state = LSMTP_CLIENT_RESET;
  int rc = lsmtp__client_writes(c, "RSET\r\n");
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_RSET, 0);
  return rc;
}

/* Status when no recipient made it (ANY) or not all did (ALL). */
static int refusal_status(const lsmtp__txn *m, lsmtp_rcpt_policy policy) {
  if (policy == LSMTP_RCPT_ALL && m->perm_failed) return LSMTP_ERR_REFUSED;
  return m->temp_failed ? LSMTP_ERR_TEMPFAIL : LSMTP_ERR_REFUSED;
}

/* All RCPT replies are in: send the body, or give up. */
static int after_rcpts(lsmtp_client *c) {
  lsmtp__txn *m = &c->m;
  const int go = c->cfg.policy == LSMTP_RCPT_ALL ? m->accepted == m->n_rcpts
                                                 : m->accepted > 0;
  if (!go) return lsmtp__txn_message_done(c, refusal_status(m, c->cfg.policy), NULL);
  if (m->data_queued) return LSMTP_OK; /* its reply decides */
  if (m->use_bdat) return lsmtp__body_start(c);
  m->data_queued = 1;
  return send_data_cmd(c);
}

static int on_mail(lsmtp_client *c, const lsmtp_reply *r) {
  if (r->code / 100 == 3) return LSMTP_ERR_PROTOCOL;
  if (c->m.doomed) return LSMTP_OK;
  if (r->code / 100 != 2) return lsmtp__txn_message_done(c, lsmtp__client_fail_status(r), r);
  if (!c->m.pipelined) return send_line(c, 1);
  return LSMTP_OK;
}

static int on_rcpt(lsmtp_client *c, size_t index, const lsmtp_reply *r) {
  lsmtp__txn *m = &c->m;
  if (r->code / 100 == 3) return LSMTP_ERR_PROTOCOL;
  if (m->doomed) return LSMTP_OK;
  m->rcpt_replies++;
  if (r->code / 100 == 2) m->accepted++;
  else if (r->code / 100 == 4) m->temp_failed++;
  else m->perm_failed++;
  if (c->cb.on_rcpt && index < m->n_rcpts) {
    int rc = c->cb.on_rcpt(c->ud, index, m->rcpts[index].address, r);
    if (rc < 0) return LSMTP_ERR_ABORTED;
  }
  if (m->rcpt_replies < m->n_rcpts) {
    if (!m->pipelined) return send_line(c, m->rcpt_replies + 1);
    return LSMTP_OK;
  }
  return after_rcpts(c);
}

static int on_data(lsmtp_client *c, const lsmtp_reply *r) {
  lsmtp__txn *m = &c->m;
  if (r->code == 354) {
    if (m->doomed) {
      /* RFC 2920 §3.1: the server wants data nobody should get; end it
       * at once with an empty message. */
      int rc = lsmtp__client_writes(c, ".\r\n");
      if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_DOT, 0);
      return rc;
    }
    return lsmtp__body_start(c);
  }
  if (r->code / 100 == 2 || r->code / 100 == 3) return LSMTP_ERR_PROTOCOL;
  if (m->doomed) return LSMTP_OK; /* no recipient: not a refusal of its own */
  return lsmtp__txn_message_done(c, lsmtp__client_fail_status(r), r);
}

static int on_final(lsmtp_client *c, const lsmtp__expect *e, const lsmtp_reply *r) {
  lsmtp__txn *m = &c->m;
  if (r->code / 100 == 3) return LSMTP_ERR_PROTOCOL;
  if (m->doomed) return LSMTP_OK;
  if (r->code / 100 != 2) {
    m->body_state = LSMTP__BODY_IDLE;
    return lsmtp__txn_message_done(c, lsmtp__client_fail_status(r), r);
  }
  if (e->kind == LSMTP__C_BDAT && !e->index) {
    /* A chunk was taken: the next one may go. */
    if (m->body_state == LSMTP__BODY_WAIT) m->body_state = LSMTP__BODY_STREAM;
    return LSMTP_OK;
  }
  return lsmtp__txn_message_done(c, LSMTP_OK, r);
}

int lsmtp__txn_on_reply(lsmtp_client *c, const lsmtp__expect *e,
                        const lsmtp_reply *r) {
  if (!c->m.active) return LSMTP_ERR_PROTOCOL;
  int rc;
  switch (e->kind) {
  case LSMTP__C_MAIL: rc = on_mail(c, r); break;
  case LSMTP__C_RCPT: rc = on_rcpt(c, e->index, r); break;
  case LSMTP__C_DATA: rc = on_data(c, r); break;
  case LSMTP__C_DOT:
  case LSMTP__C_BDAT: rc = on_final(c, e, r); break;
  default: return LSMTP_ERR_PROTOCOL;
  }
  if (rc != LSMTP_OK) return rc;
  if (c->fatal) return LSMTP_OK;
  return lsmtp__txn_settle(c);
}
