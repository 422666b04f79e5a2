/* AUTH (RFC 4954) and STARTTLS (RFC 3207) for the client session.
 * AUTH frames the SASL client's raw messages in base64 lines; it refuses
 * to start on a connection not marked secure unless the host allowed it,
 * and moves an initial response that would make the AUTH line longer than
 * 512 octets (RFC 4954 §4) to the first 334. */
#include "client_int.h"

#define AUTH_LINE_MAX 512 /* RFC 4954 §4, including CRLF */

/* ---- STARTTLS ---- */

int lsmtp_client_starttls(lsmtp_client *c) {
  if (!c) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  if (c->state != LSMTP_CLIENT_READY) return LSMTP_ERR_STATE;
  if (!(c->ext & LSMTP_EXT_STARTTLS)) return LSMTP_ERR_UNSUPPORTED;
  int rc = lsmtp__client_writes(c, "STARTTLS\r\n");
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_STARTTLS, 0);
  if (rc != LSMTP_OK) return lsmtp__client_fail(c, rc);
  c->state = LSMTP_CLIENT_STARTTLS;
  return LSMTP_OK;
}

int lsmtp__starttls_on_reply(lsmtp_client *c, const lsmtp_reply *r) {
  if (r->code == 220) {
    /* From here on only the TLS handshake may follow; feed() fails on any
     * byte that arrives before lsmtp_client_tls_started. */
    c->tls_wait = 1;
    if (!c->cb.on_starttls) return LSMTP_OK;
    return lsmtp__client_cb_rc(c->cb.on_starttls(c->ud, LSMTP_OK, r));
  }
  if (r->code < 400) return LSMTP_ERR_PROTOCOL;
  c->state = LSMTP_CLIENT_READY;
  if (c->cb.on_starttls) {
    int rc = c->cb.on_starttls(c->ud, lsmtp__client_fail_status(r), r);
    if (rc < 0) return LSMTP_ERR_ABORTED;
  }
  if (c->state != LSMTP_CLIENT_READY) return LSMTP_OK; /* host moved on */
  return lsmtp__client_ready(c);
}

/* ---- AUTH ---- */

/* Append base64(data) and CRLF to the output. */
static int write_b64_line(lsmtp_client *c, const char *data, size_t len) {
  size_t need = lsmtp_base64_encode(NULL, 0, data, len);
  int rc = lsmtp__buf_reserve(&c->out, need + 3);
  if (rc != LSMTP_OK) return rc;
  lsmtp_base64_encode(c->out.data + c->out.len, need + 1, data, len);
  c->out.len += need;
  return lsmtp__client_write(c, "\r\n", 2);
}

int lsmtp_client_auth_sasl(lsmtp_client *c, lsmtp_sasl_client *sasl) {
  if (!c || !sasl) {
    lsmtp_sasl_client_del(sasl);
    return LSMTP_ERR_INVALID;
  }
  int rc = LSMTP_OK;
  const lsmtp_sasl_mech mech = lsmtp_sasl_client_mech(sasl);
  if (c->fatal) rc = LSMTP_ERR_FATAL;
  else if (c->state != LSMTP_CLIENT_READY) rc = LSMTP_ERR_STATE;
  else if (!(c->ext & LSMTP_EXT_AUTH) || !(c->auth_mechs & LSMTP_SASL_BIT(mech)))
    rc = LSMTP_ERR_UNSUPPORTED;
  else if (!c->secure && !c->cfg.allow_insecure_auth)
    rc = LSMTP_ERR_INSECURE;
  if (rc != LSMTP_OK) {
    lsmtp_sasl_client_del(sasl);
    return rc;
  }
  lsmtp_sasl_client_del(c->sasl);
  c->sasl = sasl;
  c->auth_cancelled = 0;
  c->auth_ir_pending = 0;
  c->auth_ir.len = 0;

  const char *ir;
  size_t ir_len;
  int st = lsmtp_sasl_client_start(sasl, &ir, &ir_len);
  if (st < 0) return st;
  const size_t out_before = c->out.len;
  const char *name = lsmtp_sasl_mech_name(mech);
  rc = lsmtp__client_writes(c, "AUTH ");
  if (rc == LSMTP_OK) rc = lsmtp__client_writes(c, name);
  if (rc == LSMTP_OK && st == LSMTP_OK) {
    const size_t line = 5 + strlen(name) + 1 +
                        (ir_len ? LSMTP_BASE64_ENCODED_LEN(ir_len) : 1) + 2;
    if (line <= AUTH_LINE_MAX) {
      rc = lsmtp__client_write(c, " ", 1);
      /* RFC 4954 §4: an empty initial response is sent as "=". */
      if (rc == LSMTP_OK)
        rc = ir_len ? write_b64_line(c, ir, ir_len) : lsmtp__client_writes(c, "=\r\n");
    } else {
      rc = lsmtp__buf_append(&c->auth_ir, ir, ir_len);
      c->auth_ir_pending = 1;
      if (rc == LSMTP_OK) rc = lsmtp__client_writes(c, "\r\n");
    }
  } else if (rc == LSMTP_OK) {
    rc = lsmtp__client_writes(c, "\r\n");
  }
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_AUTH, 0);
  if (rc != LSMTP_OK) {
    c->out.len = out_before;
    return rc;
  }
  c->state = LSMTP_CLIENT_AUTH;
  return LSMTP_OK;
}

int lsmtp_client_auth(lsmtp_client *c, lsmtp_sasl_mech mech,
                      const lsmtp_sasl_credentials *creds) {
  if (!c || !creds) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  if (c->state != LSMTP_CLIENT_READY) return LSMTP_ERR_STATE;
  /* Checked before anything else so that no choice is made on an
   * insecure connection either. */
  if (!c->secure && !c->cfg.allow_insecure_auth) return LSMTP_ERR_INSECURE;
  if (!(c->ext & LSMTP_EXT_AUTH)) return LSMTP_ERR_UNSUPPORTED;
  if (mech == LSMTP_SASL_NONE) mech = lsmtp_sasl_choose(c->auth_mechs, creds);
  if (mech == LSMTP_SASL_NONE) return LSMTP_ERR_UNSUPPORTED;
  lsmtp_sasl_client *sasl;
  int rc = lsmtp_sasl_client_new(&sasl, c->alloc, mech, creds);
  if (rc != LSMTP_OK) return rc;
  return lsmtp_client_auth_sasl(c, sasl);
}

const char *lsmtp_client_auth_error(const lsmtp_client *c) {
  return c && c->sasl ? lsmtp_sasl_client_server_error(c->sasl) : NULL;
}

static int auth_done(lsmtp_client *c, int status, const lsmtp_reply *r) {
  if (c->auth_ir.data) lsmtp__wipe(c->auth_ir.data, c->auth_ir.cap);
  c->auth_ir.len = 0;
  c->auth_ir_pending = 0;
  c->state = LSMTP_CLIENT_READY;
  if (c->cb.on_auth_done) {
    int rc = c->cb.on_auth_done(c->ud, status, r);
    if (rc < 0) return LSMTP_ERR_ABORTED;
  }
  if (c->state != LSMTP_CLIENT_READY) return LSMTP_OK;
  return lsmtp__client_ready(c);
}

/* Answer a 334. */
static int on_challenge(lsmtp_client *c, const lsmtp_reply *r) {
  int rc;
  if (r->lines != 1 || c->auth_cancelled) return LSMTP_ERR_PROTOCOL;
  if (c->auth_ir_pending) {
    c->auth_ir_pending = 0;
    rc = write_b64_line(c, c->auth_ir.data, c->auth_ir.len);
  } else {
    /* The challenge decodes to at most 3/4 of its text. */
    char *buf = lsmtp__malloc(c->alloc, r->text_len + 1);
    if (!buf) return LSMTP_ERR_NOMEM;
    size_t n = 0;
    const char *out = NULL;
    size_t out_len = 0;
    rc = r->text_len == 0 ? LSMTP_OK
                          : lsmtp_base64_decode(buf, r->text_len + 1, &n, r->text,
                                                r->text_len);
    if (rc == LSMTP_OK) rc = lsmtp_sasl_client_step(c->sasl, buf, n, &out, &out_len);
    lsmtp__free(c->alloc, buf);
    if (rc == LSMTP_ERR_NOMEM) return rc;
    if (rc != LSMTP_OK) {
      /* Malformed challenge or a server that failed to prove itself:
       * cancel (RFC 4954 §4); the server answers 501. */
      c->auth_cancelled = 1;
      rc = lsmtp__client_writes(c, "*\r\n");
    } else {
      rc = write_b64_line(c, out, out_len);
    }
  }
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_AUTH, 0);
  return rc;
}

int lsmtp__auth_on_reply(lsmtp_client *c, const lsmtp_reply *r) {
  if (r->code == 334) return on_challenge(c, r);
  if (r->code / 100 == 2) {
    if (r->code != 235) return LSMTP_ERR_PROTOCOL;
    /* A success the client cannot confirm (SCRAM without a verified
     * server signature, or after we cancelled) is not a success. */
    int ok = !c->auth_cancelled && lsmtp_sasl_client_finished(c->sasl);
    return auth_done(c, ok ? LSMTP_OK : LSMTP_ERR_AUTH, r);
  }
  if (r->code / 100 == 3) return LSMTP_ERR_PROTOCOL;
  return auth_done(c, r->code / 100 == 4 && !c->auth_cancelled ? LSMTP_ERR_TEMPFAIL
                                                               : LSMTP_ERR_AUTH,
                   r);
}
