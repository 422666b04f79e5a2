/* AUTH in the server session (RFC 4954): when AUTH may be used, the
 * exchange of base64 lines (run by lsmtp_sasl_server), the host's verdict
 * through on_auth, and the state a successful AUTH leaves behind. The
 * password lives only inside the SASL object and is wiped the moment
 * on_auth returns; it is never logged. */
#include <stdio.h>

#include "server_int.h"

int lsmtp__srv_auth_offered(const lsmtp_server *s) {
  if (!s->cb.on_auth || !s->esmtp) return 0;
  if (s->tls) return 1;
  return (s->cfg->flags & LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH) &&
         !(s->cfg->flags & LSMTP_SERVER_REQUIRE_TLS);
}

void lsmtp__srv_auth_mechs(char *out, size_t cap) {
  unsigned mechs = lsmtp_sasl_server_mechs();
  size_t n = 0;
  out[0] = '\0';
  for (unsigned m = 1; m < 32 && n < cap; m++) {
    if (!(mechs & LSMTP_SASL_BIT(m))) continue;
    n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "",
                          lsmtp_sasl_mech_name((lsmtp_sasl_mech)m));
  }
}

void lsmtp__srv_auth_end(lsmtp_server *s) {
  lsmtp_sasl_server_del(s->sasl); /* zeroes everything the client sent */
  s->sasl = NULL;
  if (s->phase == SRV_AUTH) s->phase = SRV_COMMAND;
  lsmtp__line_set_max(&s->lines, (size_t)lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_LINE));
}

void lsmtp__srv_auth_forget(lsmtp_server *s) {
  s->authed = 0;
  s->auth_id[0] = '\0';
  s->authz_id[0] = '\0';
}

/* Identities come from the client: keep them printable in log lines. */
static void printable(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[i] = (c < ' ' || c == 0x7f) ? '?' : (char)c;
  }
  dst[i] = '\0';
}

/* The reply lsmtp_sasl_server_reply names for status, then the exchange
 * is over. */
static void auth_fail(lsmtp_server *s, int status) {
  const char *enh = NULL, *text = NULL;
  int code = lsmtp_sasl_server_reply(status, &enh, &text);
  lsmtp__srv_auth_end(s);
  lsmtp__srv_reply(s, code, enh, text);
}

/* The exchange finished: the host decides on the credentials. */
static void decide(lsmtp_server *s) {
  lsmtp_sasl_server *x = s->sasl;
  size_t pw_len = 0;
  const char *authzid = lsmtp_sasl_server_authzid(x, NULL);
  const char *authcid = lsmtp_sasl_server_authcid(x, NULL);
  const char *pw = lsmtp_sasl_server_password(x, &pw_len);
  if (!authzid || !authcid || !pw) { /* only a bug in the state machine */
    lsmtp__srv_auth_end(s);
    lsmtp__srv_fail(s, LSMTP_ERR_STATE);
    return;
  }
  snprintf(s->pend_authcid, sizeof s->pend_authcid, "%s", authcid);
  snprintf(s->pend_authzid, sizeof s->pend_authzid, "%s", authzid);
  if (lsmtp_sasl_server_is_proxy(x) &&
      !(s->cfg->flags & LSMTP_SERVER_ALLOW_PROXY_AUTH)) {
    char who[64];
    printable(who, sizeof who, authcid);
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_WARN,
                   "AUTH refused: <%s> asked to act as someone else", who);
    lsmtp__srv_auth_end(s);
    lsmtp__srv_set_override(s, 535, "5.7.8", NULL);
    lsmtp__srv_finish(s, DEC_AUTH);
    return;
  }
  const char *mech = lsmtp_sasl_mech_name(lsmtp_sasl_server_mech(x));
  lsmtp__srv_begin_decision(s, DEC_AUTH);
  int rc = s->cb.on_auth(s, mech, authzid, authcid, pw, pw_len, s->ud);
  /* The password goes now, whatever the answer: a deferring host has its
   * own copy. */
  lsmtp__srv_auth_end(s);
  if (rc == LSMTP_ERR_AUTH || rc == LSMTP_ERR_TEMPFAIL) {
    /* A plain "no" (or "cannot tell now") is not an abort. */
    if (!s->ov_set || s->ov_code < 400)
      lsmtp__srv_set_override(s, rc == LSMTP_ERR_AUTH ? 535 : 454, NULL, NULL);
    rc = LSMTP_OK;
  }
  lsmtp__srv_end_decision(s, DEC_AUTH, rc);
}

/* Act on what lsmtp_sasl_server_start/_step returned. */
static void progress(lsmtp_server *s, int rc, const char *challenge) {
  if (rc == LSMTP_INCOMPLETE) {
    if (challenge && challenge[0]) {
      lsmtp__srv_reply(s, 334, NULL, challenge);
    } else if (lsmtp__buf_append(&s->out, "334 \r\n", 6) != LSMTP_OK) {
      /* RFC 4954 writes the empty challenge "334 " and some clients (Go's
       * net/textproto) insist on the space, which the reply formatter
       * drops for an empty text. */
      lsmtp__srv_auth_end(s);
      lsmtp__srv_fail(s, LSMTP_ERR_NOMEM);
    }
    if (s->fatal) return;
    s->phase = SRV_AUTH;
    lsmtp__line_set_max(&s->lines,
                        (size_t)lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_AUTH_LINE));
  } else if (rc == LSMTP_DONE) {
    decide(s);
  } else if (rc == LSMTP_ERR_NOMEM) {
    lsmtp__srv_auth_end(s);
    lsmtp__srv_fail(s, rc);
  } else {
    auth_fail(s, rc);
  }
}

void lsmtp__srv_cmd_auth(lsmtp_server *s, const lsmtp_cmd *cmd) {
  if (!s->cb.on_auth) {
    lsmtp__srv_reply(s, 502, "5.5.1", "Error: command not implemented");
    return;
  }
  if (!s->have_helo || !s->esmtp) { /* only EHLO/LHLO announce AUTH */
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: send EHLO first");
    return;
  }
  if (lsmtp__srv_need_tls(s)) return;
  if (!lsmtp__srv_auth_offered(s)) { /* no TLS, plaintext AUTH not allowed */
    auth_fail(s, LSMTP_ERR_INSECURE);
    s->errors++;
    return;
  }
  if (s->authed) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: already authenticated");
    return;
  }
  if (s->in_tx) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: MAIL transaction in progress");
    return;
  }
  /* "AUTH mechanism [initial-response]" */
  const char *mech = cmd->arg, *end = cmd->arg + cmd->arg_len;
  const char *sp = memchr(mech, ' ', cmd->arg_len);
  size_t mech_len = sp ? (size_t)(sp - mech) : cmd->arg_len;
  const char *ir = sp ? sp + 1 : NULL;
  size_t ir_len = sp ? (size_t)(end - ir) : 0;
  if (mech_len == 0 || (sp && (ir_len == 0 || memchr(ir, ' ', ir_len) ||
                               memchr(ir, '\t', ir_len)))) {
    lsmtp__srv_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    return;
  }
  int rc = lsmtp_sasl_server_new(&s->sasl, s->alloc, mech, mech_len, ir, ir_len);
  if (rc != LSMTP_OK) {
    s->sasl = NULL;
    if (rc == LSMTP_ERR_NOMEM) lsmtp__srv_fail(s, rc);
    else auth_fail(s, LSMTP_ERR_UNSUPPORTED); /* 504 5.5.4 */
    return;
  }
  const char *challenge = NULL;
  rc = lsmtp_sasl_server_start(s->sasl, &challenge);
  progress(s, rc, challenge);
}

size_t lsmtp__srv_step_auth(lsmtp_server *s, const char *p, size_t n) {
  size_t used = 0, line_len = 0;
  const char *line = NULL;
  int rc = lsmtp__line_feed(&s->lines, p, n, &used, &line, &line_len);
  if (rc == LSMTP_OK) {
    const char *challenge = NULL;
    rc = lsmtp_sasl_server_step(s->sasl, line, line_len - 2, &challenge);
    progress(s, rc, challenge);
  } else if (rc == LSMTP_ERR_TOO_LONG) {
    lsmtp__srv_auth_end(s);
    lsmtp__srv_reply(s, 500, "5.5.6", "Authentication Exchange line is too long");
  } else if (rc != LSMTP_INCOMPLETE) {
    lsmtp__srv_auth_end(s);
    lsmtp__srv_fail(s, rc);
  }
  return used;
}

void lsmtp__srv_finish_auth(lsmtp_server *s) {
  int code = lsmtp__srv_decided_code(s, 235);
  char who[64];
  printable(who, sizeof who, s->pend_authcid);
  if (code < 400) {
    s->authed = 1;
    memcpy(s->auth_id, s->pend_authcid, sizeof s->auth_id);
    memcpy(s->authz_id, s->pend_authzid, sizeof s->authz_id);
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_INFO, "authenticated as <%s>", who);
    lsmtp__srv_reply_decided(s, &s->out, 235, "2.7.0", "Authentication successful");
  } else {
    /* Refusals get the RFC 4954 codes and texts unless the host chose. */
    const char *enh = NULL, *text = NULL;
    lsmtp_sasl_server_reply(code >= 500 ? LSMTP_ERR_AUTH : LSMTP_ERR_TEMPFAIL, &enh,
                            &text);
    if (!s->ov_enh[0] && code / 100 == enh[0] - '0')
      snprintf(s->ov_enh, sizeof s->ov_enh, "%s", enh);
    if (!s->ov_has_text) {
      snprintf(s->ov_text, sizeof s->ov_text, "%s", text);
      s->ov_has_text = 1;
    }
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_WARN, "AUTH failed for <%s> (%d)", who, code);
    lsmtp__srv_reply_decided(s, &s->out, 235, "2.7.0", NULL);
    /* Password guessing counts like a protocol error, so the error limit
     * ends it (the codes the reply path counts already are not counted
     * twice). */
    if (code >= 500 && code != 500 && code != 501 && code != 503 && code != 504 &&
        code != 555)
      s->errors++;
  }
  s->pend_authcid[0] = s->pend_authzid[0] = '\0';
}

const char *lsmtp_server_auth_id(const lsmtp_server *srv) {
  return srv && srv->authed ? srv->auth_id : NULL;
}

const char *lsmtp_server_auth_authzid(const lsmtp_server *srv) {
  return srv && srv->authed ? srv->authz_id : NULL;
}
