/* Server replies and host decisions: formatting replies into the output
 * (or a held buffer), counting protocol errors, logging, and the common
 * path every decision callback goes through (now, deferred, or abort). */
#include <stdio.h>

#include "server_int.h"

void lsmtp__srv_log(lsmtp_server *s, lsmtp_server_log_level level,
                    const char *fmt, ...) {
  if (!s->cb.on_log) return;
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  s->cb.on_log(s, level, msg, s->ud);
}

void lsmtp__srv_fail(lsmtp_server *s, int status) {
  lsmtp_sasl_server_del(s->sasl);
  s->sasl = NULL;
  if (!s->fatal) {
    s->fatal = status;
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_ERROR, "session failed: %s",
                   lsmtp_strerror(status));
  }
  s->want_close = 1;
  s->phase = SRV_CLOSED;
  s->pending = DEC_NONE;
}

static int counts_as_error(int code) {
  return code == 500 || code == 501 || code == 503 || code == 504 ||
         code == 555;
}

void lsmtp__srv_reply_to(lsmtp_server *s, lsmtp__buf *b, int code,
                         const char *enhanced, const char *text) {
  if (s->fatal) return;
  if (!(s->cfg->ext & LSMTP_EXT_ENHANCEDSTATUSCODES)) enhanced = NULL;
  size_t tlen = text ? strlen(text) : 0;
  if (lsmtp__buf_reserve(b, tlen + 64) != LSMTP_OK) {
    lsmtp__srv_fail(s, LSMTP_ERR_NOMEM);
    return;
  }
  size_t room = b->cap - b->len;
  size_t n = lsmtp_reply_format(b->data + b->len, room, code, enhanced, text,
                                tlen);
  if (n >= room) { /* many short lines: "NNN-x.y.z " each */
    if (lsmtp__buf_reserve(b, n + 1) != LSMTP_OK) {
      lsmtp__srv_fail(s, LSMTP_ERR_NOMEM);
      return;
    }
    n = lsmtp_reply_format(b->data + b->len, b->cap - b->len, code, enhanced,
                           text, tlen);
  }
  if (n == 0) { /* only a bug here can produce an unformattable reply */
    lsmtp__srv_fail(s, LSMTP_ERR_INVALID);
    return;
  }
  b->len += n;
  if (counts_as_error(code)) s->errors++;
  lsmtp__srv_log(s, code >= 400 ? LSMTP_SERVER_LOG_WARN : LSMTP_SERVER_LOG_DEBUG,
                 "reply %d %s", code, enhanced ? enhanced : "");
  if (code == 421) lsmtp__srv_close(s);
}

void lsmtp__srv_reply(lsmtp_server *s, int code, const char *enhanced,
                      const char *text) {
  lsmtp__srv_reply_to(s, &s->out, code, enhanced, text);
}

void lsmtp__srv_close(lsmtp_server *s) {
  lsmtp__srv_reset_tx(s, LSMTP_ERR_CLOSED);
  lsmtp_sasl_server_del(s->sasl); /* an AUTH exchange in progress */
  s->sasl = NULL;
  s->want_close = 1;
  s->phase = SRV_CLOSED;
  s->pending = DEC_NONE;
  s->paused = 0;
}

void lsmtp__srv_close_421(lsmtp_server *s, const char *enhanced,
                          const char *text, int reason) {
  if (s->want_close) return;
  if (s->in_tx) lsmtp__srv_reset_tx(s, reason);
  char line[400];
  snprintf(line, sizeof line, "%s %s", s->cfg->hostname, text);
  lsmtp__srv_reply(s, 421, enhanced, line);
  lsmtp__srv_close(s);
}

void lsmtp__srv_abort(lsmtp_server *s, int status) {
  if (status >= 0) status = LSMTP_ERR_ABORTED;
  if (status == LSMTP_ERR_NOMEM) {
    lsmtp__srv_fail(s, status);
    return;
  }
  s->pending = DEC_NONE;
  lsmtp__srv_close_421(s, "4.3.0", "Error: local error", LSMTP_ERR_CLOSED);
  lsmtp__srv_fail(s, LSMTP_ERR_ABORTED);
}

/* ---- host replies ---- */

int lsmtp__srv_check_reply(enum srv_decision d, int code, const char *enhanced,
                           const char *text) {
  if (code < 200 || code > 599 || (code / 10) % 10 > 5) return LSMTP_ERR_INVALID;
  if (code < 400) {
    /* Acceptance: 354 goes with DATA, 2xx with everything else. */
    if (d == DEC_DATA_START ? code != 354 : code / 100 != 2)
      return LSMTP_ERR_INVALID;
  }
  if (enhanced) {
    lsmtp_enhanced e;
    size_t used = 0, n = strlen(enhanced);
    if (lsmtp_enhanced_parse(enhanced, n, &e, &used) != LSMTP_OK || used != n ||
        (int)e.cls != code / 100 || n >= 16)
      return LSMTP_ERR_INVALID;
  }
  if (text && strlen(text) > SRV_TEXT_MAX) return LSMTP_ERR_INVALID;
  return LSMTP_OK;
}

void lsmtp__srv_set_override(lsmtp_server *s, int code, const char *enhanced,
                             const char *text) {
  s->ov_set = 1;
  s->ov_code = code;
  s->ov_enh[0] = '\0';
  if (enhanced) memcpy(s->ov_enh, enhanced, strlen(enhanced) + 1);
  s->ov_has_text = text != NULL;
  s->ov_text[0] = '\0';
  if (text) memcpy(s->ov_text, text, strlen(text) + 1);
}

int lsmtp__srv_decided_code(const lsmtp_server *s, int def_code) {
  return s->ov_set ? s->ov_code : def_code;
}

int lsmtp__srv_reply_decided(lsmtp_server *s, lsmtp__buf *b, int def_code,
                             const char *def_enh, const char *def_text) {
  if (!s->ov_set) {
    lsmtp__srv_reply_to(s, b, def_code, def_enh, def_text);
    return def_code < 400;
  }
  int code = s->ov_code;
  char enh[16];
  if (s->ov_enh[0]) {
    memcpy(enh, s->ov_enh, sizeof enh);
  } else if (def_code / 100 == code / 100 && def_enh) {
    snprintf(enh, sizeof enh, "%s", def_enh);
  } else { /* a refusal without an enhanced code: "x.0.0" of its class */
    snprintf(enh, sizeof enh, "%d.0.0", code / 100);
  }
  const char *text = s->ov_has_text ? s->ov_text : NULL;
  if (!text) {
    if (code / 100 == def_code / 100) text = def_text;
    else if (code >= 500) text = "Error: refused";
    else text = "Error: try again later";
  }
  if (code == 354) enh[0] = '\0';
  lsmtp__srv_reply_to(s, b, code, enh[0] ? enh : NULL, text);
  return code < 400;
}

/* ---- the decision path ---- */

void lsmtp__srv_begin_decision(lsmtp_server *s, enum srv_decision d) {
  s->ov_set = 0;
  s->in_cb = d;
}

void lsmtp__srv_finish(lsmtp_server *s, enum srv_decision d) {
  switch (d) {
  case DEC_CONNECT: lsmtp__srv_finish_connect(s); break;
  case DEC_HELO: lsmtp__srv_finish_helo(s); break;
  case DEC_MAIL: lsmtp__srv_finish_mail(s); break;
  case DEC_RCPT: lsmtp__srv_finish_rcpt(s); break;
  case DEC_DATA_START: lsmtp__srv_finish_data_start(s); break;
  case DEC_BDAT_START: lsmtp__srv_finish_bdat_start(s); break;
  case DEC_DATA_END: lsmtp__srv_finish_data_end(s); break;
  case DEC_AUTH: lsmtp__srv_finish_auth(s); break;
  case DEC_NONE: break;
  }
  s->ov_set = 0;
}

void lsmtp__srv_end_decision(lsmtp_server *s, enum srv_decision d, int rc) {
  s->in_cb = DEC_NONE;
  if (s->fatal) return;
  if (rc == LSMTP_OK) {
    lsmtp__srv_finish(s, d);
  } else if (rc == LSMTP_SERVER_DEFER) {
    s->pending = d;
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_DEBUG, "decision deferred");
  } else {
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_ERROR, "callback aborted the session (%d)",
                   rc);
    lsmtp__srv_abort(s, rc);
  }
}
