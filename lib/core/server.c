/* The server session's lifecycle and I/O surface: create/destroy, the input
 * loop behind lsmtp_server_feed, the output queue, timers, shutdown, the
 * answers to deferred decisions, and the getters. Protocol rules live in
 * server_cmd.c and server_data.c. */
#include "server_int.h"

int lsmtp_server_new(lsmtp_server **out, const lsmtp_server_config *cfg,
                     const lsmtp_server_callbacks *callbacks, void *user_data) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!cfg) return LSMTP_ERR_INVALID;
  const lsmtp_allocator *a = cfg->alloc;
  lsmtp_server *s = lsmtp__calloc(a, 1, sizeof *s);
  if (!s) return LSMTP_ERR_NOMEM;
  s->cfg = cfg;
  s->alloc = a;
  if (callbacks) s->cb = *callbacks;
  s->ud = user_data;
  unsigned dflags = (cfg->flags & LSMTP_SERVER_NORMALIZE_EOL) ? LSMTP_DATA_NORMALIZE_EOL : 0;
  int rc = lsmtp_data_decoder_new(&s->dec, a, dflags,
                                  (size_t)cfg->limits[LSMTP_SERVER_LIMIT_TEXT_LINE],
                                  cfg->limits[LSMTP_SERVER_LIMIT_MESSAGE_SIZE]);
  if (rc != LSMTP_OK) {
    lsmtp__free(a, s);
    return rc;
  }
  lsmtp__line_init(&s->lines, a, (size_t)cfg->limits[LSMTP_SERVER_LIMIT_LINE]);
  lsmtp__buf_init(&s->out, a);
  lsmtp__buf_init(&s->held, a);
  lsmtp__buf_init(&s->bdat_fail, a);
  lsmtp__buf_init(&s->rcpt_text, a);
  lsmtp__buf_init(&s->rcpt_offs, a);
  s->phase = SRV_INIT;
  *out = s;
  return LSMTP_OK;
}

void lsmtp_server_del(lsmtp_server *srv) {
  if (!srv) return;
  lsmtp_sasl_server_del(srv->sasl); /* wipes what the client sent */
  lsmtp_data_decoder_del(srv->dec);
  lsmtp__line_free(&srv->lines);
  lsmtp__buf_free(&srv->out);
  lsmtp__buf_free(&srv->held);
  lsmtp__buf_free(&srv->bdat_fail);
  lsmtp__buf_free(&srv->rcpt_text);
  lsmtp__buf_free(&srv->rcpt_offs);
  lsmtp__free(srv->alloc, srv);
}

int lsmtp__srv_fatal_status(lsmtp_server *s) {
  if (s->fatal_reported) return LSMTP_ERR_FATAL;
  s->fatal_reported = 1;
  return s->fatal;
}

/* Read one command line from the input. */
static size_t step_command(lsmtp_server *s, const char *p, size_t n) {
  size_t used = 0, line_len = 0;
  const char *line = NULL;
  int rc = lsmtp__line_feed(&s->lines, p, n, &used, &line, &line_len);
  if (rc == LSMTP_OK) {
    lsmtp__srv_command(s, line, line_len);
  } else if (rc == LSMTP_ERR_TOO_LONG) {
    lsmtp__srv_reply(s, 500, "5.5.2", "Error: line too long");
  } else if (rc != LSMTP_INCOMPLETE) {
    lsmtp__srv_fail(s, rc);
  }
  return used;
}

/* The input loop: runs until the input is used up or something outside
 * the session must happen first (a decision, a resume, a write, a close). */
static int run(lsmtp_server *s, const char *data, size_t len, size_t *consumed) {
  size_t off = 0;
  s->busy = 1;
  while (!s->fatal && !s->want_close && !s->pending && !s->paused) {
    if (s->phase == SRV_COMMAND) {
      uint64_t max_err = lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_ERRORS);
      if (max_err && s->errors >= max_err) {
        lsmtp__srv_log(s, LSMTP_SERVER_LOG_WARN, "too many errors (%u)", s->errors);
        lsmtp__srv_close_421(s, "4.7.0", "Error: too many errors", LSMTP_ERR_CLOSED);
        break;
      }
      if (s->shutdown_req) {
        lsmtp__srv_close_421(s, "4.3.2", "Service shutting down", LSMTP_ERR_CLOSED);
        break;
      }
      if (off == len) break;
      if (s->out.len >= lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_OUTPUT)) break;
      off += step_command(s, data + off, len - off);
    } else if (s->phase == SRV_DATA) {
      if (off == len) break;
      off += lsmtp__srv_step_data(s, data + off, len - off);
    } else if (s->phase == SRV_BDAT) {
      if (s->chunk_left == 0) {
        lsmtp__srv_chunk_done(s);
        continue;
      }
      if (off == len) break;
      off += lsmtp__srv_step_bdat(s, data + off, len - off);
    } else if (s->phase == SRV_DATA_END) {
      lsmtp__srv_step_data_end(s);
    } else if (s->phase == SRV_AUTH) {
      if (s->shutdown_req) { /* waiting for the client counts as idle */
        lsmtp__srv_auth_end(s);
        continue;
      }
      if (off == len) break;
      if (s->out.len >= lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_OUTPUT)) break;
      off += lsmtp__srv_step_auth(s, data + off, len - off);
    } else if (s->phase == SRV_STARTTLS) {
      if (off < len) off += lsmtp__srv_step_starttls(s, len - off);
      break;
    } else {
      break; /* SRV_INIT, SRV_CLOSED */
    }
  }
  s->busy = 0;
  if (consumed) *consumed = off;
  if (s->fatal) return lsmtp__srv_fatal_status(s);
  if (s->want_close) return LSMTP_DONE;
  /* After STARTTLS the host has to run the handshake before anything else. */
  if (s->pending || s->paused || off < len || s->phase == SRV_STARTTLS)
    return LSMTP_PAUSED;
  return LSMTP_OK;
}

int lsmtp_server_start(lsmtp_server *srv) {
  if (!srv) return LSMTP_ERR_INVALID;
  if (srv->fatal) return lsmtp__srv_fatal_status(srv);
  if (srv->busy) return LSMTP_ERR_STATE;
  if (srv->started) return LSMTP_ERR_STATE;
  srv->started = 1;
  srv->busy = 1;
  lsmtp__srv_begin_decision(srv, DEC_CONNECT);
  int rc = srv->cb.on_connect ? srv->cb.on_connect(srv, srv->ud) : LSMTP_OK;
  lsmtp__srv_end_decision(srv, DEC_CONNECT, rc);
  srv->busy = 0;
  rc = run(srv, NULL, 0, NULL);
  return rc == LSMTP_DONE ? LSMTP_OK : rc;
}

int lsmtp_server_feed(lsmtp_server *srv, const char *data, size_t len,
                      size_t *consumed) {
  if (consumed) *consumed = 0;
  if (!srv || !consumed || (!data && len)) return LSMTP_ERR_INVALID;
  if (srv->fatal) return lsmtp__srv_fatal_status(srv);
  if (srv->busy) return LSMTP_ERR_STATE;
  if (srv->want_close) return LSMTP_DONE;
  if (!srv->started) {
    if (len == 0) return LSMTP_OK;
    if (srv->cfg->flags & LSMTP_SERVER_ALLOW_EARLY_TALKERS) return LSMTP_PAUSED;
    /* The client spoke before the greeting: a spam engine, or a client
     * pipelining blindly into whatever answers. */
    srv->started = 1;
    lsmtp__srv_log(srv, LSMTP_SERVER_LOG_WARN, "client talked before the greeting");
    lsmtp__srv_reply(srv, 554, "5.5.0", "Error: talking before the greeting");
    lsmtp__srv_close(srv);
    return srv->fatal ? lsmtp__srv_fatal_status(srv) : LSMTP_DONE;
  }
  return run(srv, data, len, consumed);
}

size_t lsmtp_server_pending(const lsmtp_server *srv, const char **data) {
  if (!srv || srv->out.len == 0) {
    if (data) *data = NULL;
    return 0;
  }
  if (data) *data = srv->out.data;
  return srv->out.len;
}

int lsmtp_server_consume(lsmtp_server *srv, size_t n) {
  if (!srv || n > srv->out.len) return LSMTP_ERR_INVALID;
  lsmtp__buf_consume(&srv->out, n);
  return LSMTP_OK;
}

int lsmtp_server_want_close(const lsmtp_server *srv) {
  return srv ? srv->want_close : 1;
}

unsigned lsmtp_server_timeout_ms(const lsmtp_server *srv) {
  if (!srv || !srv->started || srv->want_close || srv->fatal) return 0;
  const unsigned *t = srv->cfg->timeouts;
  switch (srv->pending) {
  case DEC_CONNECT: return t[LSMTP_SERVER_TIMEOUT_GREETING];
  case DEC_HELO:
  case DEC_MAIL:
  case DEC_AUTH: return t[LSMTP_SERVER_TIMEOUT_MAIL];
  case DEC_RCPT: return t[LSMTP_SERVER_TIMEOUT_RCPT];
  case DEC_DATA_START:
  case DEC_BDAT_START: return t[LSMTP_SERVER_TIMEOUT_DATA_INIT];
  case DEC_DATA_END: return t[LSMTP_SERVER_TIMEOUT_DATA_TERM];
  case DEC_NONE: break;
  }
  if (srv->phase == SRV_DATA || srv->phase == SRV_BDAT)
    return t[LSMTP_SERVER_TIMEOUT_DATA_BLOCK];
  return t[LSMTP_SERVER_TIMEOUT_IDLE];
}

int lsmtp_server_timeout(lsmtp_server *srv) {
  if (!srv) return LSMTP_ERR_INVALID;
  if (srv->busy) return LSMTP_ERR_STATE;
  if (srv->want_close || srv->fatal) return LSMTP_ERR_STATE;
  srv->pending = DEC_NONE;
  srv->paused = 0;
  lsmtp__srv_log(srv, LSMTP_SERVER_LOG_WARN, "timeout");
  if (srv->phase == SRV_STARTTLS) { /* the client expects TLS, not text */
    lsmtp__srv_close(srv);
    return LSMTP_OK;
  }
  lsmtp__srv_close_421(srv, "4.4.2", "Error: timeout exceeded", LSMTP_ERR_TIMEOUT);
  return srv->fatal ? lsmtp__srv_fatal_status(srv) : LSMTP_OK;
}

int lsmtp_server_shutdown(lsmtp_server *srv) {
  if (!srv) return LSMTP_ERR_INVALID;
  if (srv->want_close || srv->fatal) return LSMTP_OK;
  if (srv->busy) return LSMTP_ERR_STATE;
  srv->shutdown_req = 1;
  if (srv->phase == SRV_INIT && !srv->pending) {
    /* Not greeted yet: a 421 greeting is allowed (RFC 5321 §3.1). */
    srv->started = 1;
    lsmtp__srv_close_421(srv, "4.3.2", "Service shutting down", LSMTP_ERR_CLOSED);
    return LSMTP_OK;
  }
  int rc = run(srv, NULL, 0, NULL);
  return rc < 0 ? rc : LSMTP_OK;
}

int lsmtp_server_set_reply(lsmtp_server *srv, int code, const char *enhanced,
                           const char *text) {
  if (!srv) return LSMTP_ERR_INVALID;
  if (srv->in_cb == DEC_NONE) return LSMTP_ERR_STATE;
  int rc = lsmtp__srv_check_reply(srv->in_cb, code, enhanced, text);
  if (rc != LSMTP_OK) return rc;
  lsmtp__srv_set_override(srv, code, enhanced, text);
  return LSMTP_OK;
}

int lsmtp_server_answer(lsmtp_server *srv, int code, const char *enhanced,
                        const char *text) {
  if (!srv) return LSMTP_ERR_INVALID;
  if (srv->fatal) return lsmtp__srv_fatal_status(srv);
  if (srv->busy || srv->pending == DEC_NONE) return LSMTP_ERR_STATE;
  enum srv_decision d = srv->pending;
  srv->ov_set = 0;
  if (code != 0) {
    int rc = lsmtp__srv_check_reply(d, code, enhanced, text);
    if (rc != LSMTP_OK) return rc;
    lsmtp__srv_set_override(srv, code, enhanced, text);
  }
  srv->pending = DEC_NONE;
  srv->busy = 1;
  lsmtp__srv_finish(srv, d);
  srv->busy = 0;
  int rc = run(srv, NULL, 0, NULL);
  return rc == LSMTP_DONE ? LSMTP_OK : rc;
}

int lsmtp_server_resume(lsmtp_server *srv) {
  if (!srv) return LSMTP_ERR_INVALID;
  if (srv->fatal) return lsmtp__srv_fatal_status(srv);
  if (srv->busy || !srv->paused) return LSMTP_ERR_STATE;
  srv->paused = 0;
  int rc = run(srv, NULL, 0, NULL);
  return rc == LSMTP_DONE ? LSMTP_OK : rc;
}

/* ---- getters ---- */

const char *lsmtp_server_helo(const lsmtp_server *srv) {
  return srv && srv->have_helo ? srv->helo : NULL;
}

int lsmtp_server_is_esmtp(const lsmtp_server *srv) {
  return srv && srv->have_helo && srv->esmtp;
}

const char *lsmtp_server_mail_from(const lsmtp_server *srv) {
  return srv && srv->in_tx ? srv->mail_from : NULL;
}

size_t lsmtp_server_rcpt_count(const lsmtp_server *srv) {
  return srv && srv->in_tx ? srv->rcpt_count : 0;
}

const char *lsmtp_server_rcpt(const lsmtp_server *srv, size_t i) {
  if (!srv || !srv->in_tx || i >= srv->rcpt_count) return NULL;
  size_t off;
  memcpy(&off, srv->rcpt_offs.data + i * sizeof off, sizeof off);
  return srv->rcpt_text.data + off;
}

uint64_t lsmtp_server_message_size(const lsmtp_server *srv) {
  return srv ? srv->msg_size : 0;
}

unsigned lsmtp_server_data_seen(const lsmtp_server *srv) {
  return srv ? srv->data_seen : 0;
}

uint64_t lsmtp_server_message_count(const lsmtp_server *srv) {
  return srv ? srv->messages : 0;
}

const char *lsmtp_server_protocol(const lsmtp_server *srv) {
  /* [LMTP][UTF8][TLS][AUTH] (RFC 3848, RFC 6531 §3.7.3). */
  static const char *const names[2][2][2][2] = {
      {{{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
       {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}}},
      {{{"LMTP", "LMTPA"}, {"LMTPS", "LMTPSA"}},
       {{"UTF8LMTP", "UTF8LMTPA"}, {"UTF8LMTPS", "UTF8LMTPSA"}}}};
  if (!srv) return "SMTP";
  int lmtp = (srv->cfg->flags & LSMTP_SERVER_LMTP) != 0;
  int utf8 = srv->in_tx && srv->tx_utf8;
  int tls = srv->tls != 0, auth = srv->authed != 0;
  /* TLS, AUTH and SMTPUTF8 all need EHLO; plain HELO is "SMTP". */
  if (!lmtp && !utf8 && !tls && !auth && !(srv->have_helo && srv->esmtp)) return "SMTP";
  return names[lmtp][utf8][tls][auth];
}
