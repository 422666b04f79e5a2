/* STARTTLS in the server session (RFC 3207) and implicit TLS (RFC 8314).
 * The session never touches TLS itself: it says when the host must start
 * the handshake and is told when it is done. What lives here is the part
 * that keeps STARTTLS safe: after "220 Ready to start TLS" nothing the
 * client sent in the clear is ever executed (CVE-2011-0411 and its many
 * descendants), and everything learnt before TLS is forgotten. */
#include "server_int.h"

int lsmtp__srv_need_tls(lsmtp_server *s) {
  if (s->tls || !(s->cfg->flags & LSMTP_SERVER_REQUIRE_TLS)) return 0;
  lsmtp__srv_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
  s->errors++; /* a client that never starts TLS must not loop forever */
  return 1;
}

void lsmtp__srv_cmd_starttls(lsmtp_server *s, const lsmtp_cmd *cmd) {
  if (cmd->arg_len) {
    lsmtp__srv_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
    return;
  }
  if (!(s->cfg->ext & LSMTP_EXT_STARTTLS)) { /* the host cannot do TLS */
    lsmtp__srv_reply(s, 502, "5.5.1", "Error: command not implemented");
    return;
  }
  /* Offered in principle, but not now: a sequence error. */
  if (s->tls) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: TLS already active");
    return;
  }
  if (!s->have_helo || !s->esmtp) { /* only EHLO/LHLO announce STARTTLS */
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: send EHLO first");
    return;
  }
  if (s->in_tx) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: MAIL transaction in progress");
    return;
  }
  lsmtp__srv_reply(s, 220, "2.0.0", "Ready to start TLS");
  if (s->fatal) return;
  /* RFC 3207 §4.2: discard any knowledge obtained from the client. Done
   * now, so nothing of it can leak into the time the handshake runs. */
  s->have_helo = s->esmtp = 0;
  s->helo[0] = '\0';
  lsmtp__srv_auth_forget(s);
  lsmtp__line_reset(&s->lines);
  s->phase = SRV_STARTTLS;
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_DEBUG, "STARTTLS: waiting for the handshake");
}

size_t lsmtp__srv_step_starttls(lsmtp_server *s, size_t n) {
  /* Bytes that arrive behind STARTTLS were sent before the client saw our
   * 220 (or by an attacker in the path): they belong to no session. */
  s->discarded += n;
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_WARN,
                 "discarded %zu octets of plaintext sent after STARTTLS", n);
  return n;
}

/* Keep a TLS name printable and free of spaces: it ends up in logs and in
 * Received: comments. */
static void copy_name(char *dst, const char *src) {
  size_t i = 0;
  if (src)
    for (; src[i] && i < SRV_TLS_NAME_MAX; i++) {
      unsigned char c = (unsigned char)src[i];
      dst[i] = (c <= ' ' || c >= 0x7f || c == '(' || c == ')') ? '?' : (char)c;
    }
  dst[i] = '\0';
}

int lsmtp_server_tls_started(lsmtp_server *srv, const char *version,
                             const char *cipher) {
  if (!srv) return LSMTP_ERR_INVALID;
  if (srv->fatal) return lsmtp__srv_fatal_status(srv);
  if (srv->busy || srv->tls) return LSMTP_ERR_STATE;
  int after_starttls = srv->phase == SRV_STARTTLS;
  if (!after_starttls && srv->started) return LSMTP_ERR_STATE;
  srv->tls = 1;
  copy_name(srv->tls_version, version);
  copy_name(srv->tls_cipher, cipher);
  lsmtp__srv_log(srv, LSMTP_SERVER_LOG_INFO, "TLS %s: %s %s",
                 after_starttls ? "started" : "(implicit)",
                 srv->tls_version[0] ? srv->tls_version : "-",
                 srv->tls_cipher[0] ? srv->tls_cipher : "-");
  if (!after_starttls) return LSMTP_OK;
  srv->phase = SRV_COMMAND;
  lsmtp__line_reset(&srv->lines);
  /* A shutdown asked for during the handshake is due now. */
  size_t used;
  int rc = lsmtp_server_feed(srv, NULL, 0, &used);
  return rc < 0 ? rc : LSMTP_OK;
}

int lsmtp_server_starttls_pending(const lsmtp_server *srv) {
  return srv && !srv->fatal && srv->phase == SRV_STARTTLS;
}

int lsmtp_server_is_tls(const lsmtp_server *srv) { return srv && srv->tls; }

const char *lsmtp_server_tls_version(const lsmtp_server *srv) {
  return srv && srv->tls ? srv->tls_version : NULL;
}

const char *lsmtp_server_tls_cipher(const lsmtp_server *srv) {
  return srv && srv->tls ? srv->tls_cipher : NULL;
}

uint64_t lsmtp_server_discarded(const lsmtp_server *srv) {
  return srv ? srv->discarded : 0;
}
