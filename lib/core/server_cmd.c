/* Server command handling (RFC 5321 §4.1, §3.3-§3.5): each command line is
 * checked (sequence, syntax, parameters against what was offered) before
 * the host is asked, so the host only ever decides well-formed requests. */
#include <stdio.h>

#include "server_int.h"

/* ---- transaction bookkeeping ---- */

void lsmtp__srv_clear_tx(lsmtp_server *s) {
  s->in_tx = 0;
  s->tx_utf8 = 0;
  s->tx_body = LSMTP_BODY_NONE;
  s->bdat_used = s->bdat_failed = 0;
  s->bdat_fail.len = 0;
  s->mail_from[0] = '\0';
  s->rcpt_text.len = 0;
  s->rcpt_offs.len = 0;
  s->rcpt_count = 0;
  s->rcpt_tried = 0;
}

void lsmtp__srv_reset_tx(lsmtp_server *s, int reason) {
  if (!s->in_tx) return;
  /* A message the session already refused was reported when it was
   * refused: one on_reset per transaction. */
  int told = s->doomed != 0;
  lsmtp__srv_clear_tx(s);
  s->doomed = 0;
  if (!told && s->cb.on_reset) s->cb.on_reset(s, reason, s->ud);
}

/* ---- greeting ---- */

void lsmtp__srv_finish_connect(lsmtp_server *s) {
  const lsmtp_server_config *c = s->cfg;
  int code = lsmtp__srv_decided_code(s, 220);
  char line[SRV_TEXT_MAX + 300];
  const char *text = s->ov_set && s->ov_has_text ? s->ov_text : NULL;
  if (code < 400) {
    const char *g = c->greeting
                        ? c->greeting
                        : (c->flags & LSMTP_SERVER_LMTP ? "LMTP" : "ESMTP");
    snprintf(line, sizeof line, "%s %s", c->hostname, text ? text : g);
    lsmtp__srv_reply(s, 220, NULL, line); /* RFC 2034: no code before EHLO */
    s->phase = SRV_COMMAND;
    return;
  }
  snprintf(line, sizeof line, "%s %s", c->hostname,
           text ? text : "Service not available");
  const char *enh = s->ov_enh[0] ? s->ov_enh : (code == 421 ? "4.3.2" : NULL);
  if (!enh && code >= 500) enh = "5.3.2";
  if (!enh) enh = "4.3.2";
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_INFO, "connection refused with %d", code);
  lsmtp__srv_reply(s, code, enh, line);
  if (s->want_close) return; /* 421 */
  if (code / 100 == 4) { /* any other 4xx: the session cannot go on either */
    lsmtp__srv_close(s);
    return;
  }
  /* RFC 5321 §3.1: after a 554 greeting wait for QUIT, 503 to the rest. */
  s->refused = 1;
  s->phase = SRV_COMMAND;
}

/* ---- HELO / EHLO / LHLO ---- */

static void ehlo_reply(lsmtp_server *s) {
  unsigned ext = lsmtp__srv_offered(s);
  char text[600];
  size_t n = (size_t)snprintf(text, sizeof text, "%s", s->cfg->hostname);
#define ADD_(...)                                                             \
  do {                                                                        \
    if (n < sizeof text) n += (size_t)snprintf(text + n, sizeof text - n, __VA_ARGS__); \
  } while (0)
  if (ext & LSMTP_EXT_PIPELINING) ADD_("\nPIPELINING");
  if (ext & LSMTP_EXT_SIZE) {
    uint64_t max = lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_MESSAGE_SIZE);
    if (max) ADD_("\nSIZE %llu", (unsigned long long)max);
    else ADD_("\nSIZE");
  }
  if (ext & LSMTP_EXT_8BITMIME) ADD_("\n8BITMIME");
  if (ext & LSMTP_EXT_SMTPUTF8) ADD_("\nSMTPUTF8");
  if (ext & LSMTP_EXT_ENHANCEDSTATUSCODES) ADD_("\nENHANCEDSTATUSCODES");
  if (ext & LSMTP_EXT_CHUNKING) ADD_("\nCHUNKING");
  if (ext & LSMTP_EXT_BINARYMIME) ADD_("\nBINARYMIME");
  if (ext & LSMTP_EXT_DSN) ADD_("\nDSN");
  if (ext & LSMTP_EXT_STARTTLS) ADD_("\nSTARTTLS");
  if (ext & LSMTP_EXT_AUTH) {
    char mechs[64];
    lsmtp__srv_auth_mechs(mechs, sizeof mechs);
    ADD_("\nAUTH %s", mechs);
  }
  if (ext & LSMTP_EXT_HELP) ADD_("\nHELP");
#undef ADD_
  lsmtp__srv_reply(s, 250, NULL, text);
}

static void cmd_helo(lsmtp_server *s, const lsmtp_cmd *cmd) {
  int lmtp = (s->cfg->flags & LSMTP_SERVER_LMTP) != 0;
  if (lmtp != (cmd->verb == LSMTP_VERB_LHLO)) {
    lsmtp__srv_reply(s, 500, "5.5.1", "Error: command not recognized");
    return;
  }
  const char *usage = cmd->verb == LSMTP_VERB_HELO   ? "Syntax: HELO hostname"
                      : cmd->verb == LSMTP_VERB_EHLO ? "Syntax: EHLO hostname"
                                                     : "Syntax: LHLO hostname";
  if (cmd->arg_len == 0) {
    lsmtp__srv_reply(s, 501, "5.5.4", usage);
    return;
  }
  unsigned aflags = (s->cfg->ext & LSMTP_EXT_SMTPUTF8) ? LSMTP_ADDR_SMTPUTF8 : 0;
  if (cmd->arg_len > SRV_NAME_MAX ||
      lsmtp_domain_check(cmd->arg, cmd->arg_len, aflags, NULL) != LSMTP_OK) {
    lsmtp__srv_reply(s, 501, "5.5.4", "Error: invalid hostname");
    return;
  }
  /* RFC 5321 §4.1.4: a new HELO/EHLO resets the session's state. */
  lsmtp__srv_reset_tx(s, LSMTP_OK);
  s->have_helo = s->esmtp = 0;
  s->helo[0] = '\0';
  memcpy(s->pend_name, cmd->arg, cmd->arg_len);
  s->pend_name[cmd->arg_len] = '\0';
  s->pend_ehlo = (unsigned char)(cmd->verb != LSMTP_VERB_HELO);

  lsmtp__srv_begin_decision(s, DEC_HELO);
  int rc = s->cb.on_helo ? s->cb.on_helo(s, cmd->arg, cmd->arg_len, s->pend_ehlo,
                                         s->ud)
                         : LSMTP_OK;
  lsmtp__srv_end_decision(s, DEC_HELO, rc);
}

void lsmtp__srv_finish_helo(lsmtp_server *s) {
  if (lsmtp__srv_decided_code(s, 250) >= 400) {
    lsmtp__srv_reply_decided(s, &s->out, 250, NULL, NULL);
    return;
  }
  s->have_helo = 1;
  s->esmtp = s->pend_ehlo;
  memcpy(s->helo, s->pend_name, sizeof s->helo);
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_DEBUG, "%s %s", s->esmtp ? "EHLO" : "HELO",
                 s->helo);
  if (s->esmtp) ehlo_reply(s);
  else lsmtp__srv_reply(s, 250, NULL, s->cfg->hostname);
}

/* ---- MAIL ---- */

/* "FROM:" / "TO:" must open the argument (case-insensitive). */
static int has_prefix(const lsmtp_cmd *cmd, const char *prefix) {
  size_t n = strlen(prefix);
  return cmd->arg_len >= n && lsmtp__ieq(cmd->arg, prefix, n);
}

/* The ESMTP parameters of MAIL must belong to an offered extension. */
static int mail_params_offered(const lsmtp_server *s,
                               const lsmtp_mail_params *p) {
  unsigned ext = lsmtp__srv_offered(s);
  if (p->has_size && !(ext & LSMTP_EXT_SIZE)) return 0;
  if (p->smtputf8 && !(ext & LSMTP_EXT_SMTPUTF8)) return 0;
  if (p->body == LSMTP_BODY_BINARYMIME && !(ext & LSMTP_EXT_BINARYMIME)) return 0;
  if ((p->body == LSMTP_BODY_7BIT || p->body == LSMTP_BODY_8BITMIME) &&
      !(ext & LSMTP_EXT_8BITMIME))
    return 0;
  if ((p->ret != LSMTP_RET_NONE || p->envid.ptr) && !(ext & LSMTP_EXT_DSN)) return 0;
  if (p->auth.ptr && !(ext & LSMTP_EXT_AUTH)) return 0;
  if (p->requiretls) return 0; /* REQUIRETLS: not offered */
  return 1;
}

/* Answer a failed lsmtp_mail_parse / lsmtp_rcpt_parse; 0 when rc is OK. */
static int refuse_parse_error(lsmtp_server *s, int rc, const char *verb,
                              const char *bad_addr_code, const char *who) {
  char text[64];
  switch (rc) {
  case LSMTP_OK: return 0;
  case LSMTP_ERR_UTF8:
    lsmtp__srv_reply(s, 553, "5.6.7", "Error: non-ASCII address not permitted");
    break;
  case LSMTP_ERR_PARAM:
    snprintf(text, sizeof text, "Error: unsupported %s parameter", verb);
    lsmtp__srv_reply(s, 555, "5.5.4", text);
    break;
  case LSMTP_ERR_DUP_PARAM:
    snprintf(text, sizeof text, "Error: duplicate %s parameter", verb);
    lsmtp__srv_reply(s, 501, "5.5.4", text);
    break;
  default:
    snprintf(text, sizeof text, "Error: bad %s address syntax", who);
    lsmtp__srv_reply(s, 501, bad_addr_code, text);
    break;
  }
  return 1;
}

static void cmd_mail(lsmtp_server *s, const lsmtp_cmd *cmd) {
  if (!s->have_helo) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
    return;
  }
  if (lsmtp__srv_need_tls(s)) return;
  if ((s->cfg->flags & LSMTP_SERVER_REQUIRE_AUTH) && !s->authed) {
    lsmtp__srv_reply(s, 530, "5.7.0", "Authentication required");
    s->errors++;
    return;
  }
  if (s->in_tx) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: nested MAIL command");
    return;
  }
  uint64_t max_msgs = lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_MESSAGES);
  if (max_msgs && s->messages >= max_msgs) {
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_WARN, "message limit reached");
    lsmtp__srv_close_421(s, "4.7.0", "Error: too many messages in this session",
                         LSMTP_ERR_CLOSED);
    return;
  }
  if (!has_prefix(cmd, "FROM:")) {
    lsmtp__srv_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
    return;
  }
  unsigned ext = lsmtp__srv_offered(s);
  unsigned aflags = (ext & LSMTP_EXT_SMTPUTF8) ? LSMTP_ADDR_SMTPUTF8 : 0;
  lsmtp_path path;
  lsmtp_mail_params params;
  memset(&params, 0, sizeof params);
  int rc = lsmtp_mail_parse(cmd->arg, cmd->arg_len, aflags, &path, &params);
  if (refuse_parse_error(s, rc, "MAIL", "5.1.7", "sender")) return;
  if (!mail_params_offered(s, &params)) {
    lsmtp__srv_reply(s, 555, "5.5.4", "Error: unsupported MAIL parameter");
    return;
  }
  uint64_t max = lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_MESSAGE_SIZE);
  if (params.has_size && max && params.size > max) {
    lsmtp__srv_reply(s, 552, "5.3.4", "Error: message size exceeds fixed limit");
    return;
  }
  if (path.has_utf8 && !params.smtputf8) {
    lsmtp__srv_reply(s, 553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8");
    return;
  }
  if (path.mailbox_len > SRV_BOX_MAX) {
    lsmtp__srv_reply(s, 501, "5.1.7", "Error: sender address too long");
    return;
  }
  /* RFC 4954 §5: AUTH= from a client that has not authenticated is
   * treated as AUTH=<>; the host never sees an identity nobody vouched for. */
  if (!s->authed) {
    params.auth.ptr = NULL;
    params.auth.len = 0;
  }
  if (path.mailbox_len) memcpy(s->pend_box, path.mailbox, path.mailbox_len);
  s->pend_box[path.mailbox_len] = '\0';
  s->pend_utf8 = params.smtputf8;
  s->pend_body = params.body;

  lsmtp__srv_begin_decision(s, DEC_MAIL);
  rc = s->cb.on_mail ? s->cb.on_mail(s, &path, &params, s->ud) : LSMTP_OK;
  lsmtp__srv_end_decision(s, DEC_MAIL, rc);
}

void lsmtp__srv_finish_mail(lsmtp_server *s) {
  if (!lsmtp__srv_reply_decided(s, &s->out, 250, "2.1.0", "Ok")) return;
  lsmtp__srv_clear_tx(s);
  s->in_tx = 1;
  s->doomed = 0;
  s->tx_utf8 = s->pend_utf8;
  s->tx_body = s->pend_body;
  memcpy(s->mail_from, s->pend_box, sizeof s->mail_from);
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_DEBUG, "MAIL FROM:<%s>", s->mail_from);
}

/* ---- RCPT ---- */

static void cmd_rcpt(lsmtp_server *s, const lsmtp_cmd *cmd) {
  if (!s->in_tx) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: need MAIL command");
    return;
  }
  if (s->bdat_used) { /* RFC 3030: the envelope is closed once BDAT began */
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: RCPT after BDAT");
    return;
  }
  if (!has_prefix(cmd, "TO:")) {
    lsmtp__srv_reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
    return;
  }
  s->rcpt_tried++;
  unsigned ext = lsmtp__srv_offered(s);
  unsigned aflags = (ext & LSMTP_EXT_SMTPUTF8) ? LSMTP_ADDR_SMTPUTF8 : 0;
  lsmtp_path path;
  lsmtp_rcpt_params params;
  memset(&params, 0, sizeof params);
  int rc = lsmtp_rcpt_parse(cmd->arg, cmd->arg_len, aflags, &path, &params);
  if (refuse_parse_error(s, rc, "RCPT", "5.1.3", "recipient")) return;
  if ((params.notify || params.orcpt_type.ptr) && !(ext & LSMTP_EXT_DSN)) {
    lsmtp__srv_reply(s, 555, "5.5.4", "Error: unsupported RCPT parameter");
    return;
  }
  if (path.has_utf8 && !s->tx_utf8) {
    lsmtp__srv_reply(s, 553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8");
    return;
  }
  if (s->rcpt_count >= lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_RECIPIENTS)) {
    lsmtp__srv_reply(s, 452, "4.5.3", "Error: too many recipients");
    return;
  }
  const char *box = path.mailbox;
  size_t box_len = path.mailbox_len;
  if (box_len == 0) { /* <postmaster> without a domain */
    box = "postmaster";
    box_len = 10;
  }
  if (box_len > SRV_BOX_MAX) {
    lsmtp__srv_reply(s, 501, "5.1.3", "Error: recipient address too long");
    return;
  }
  memcpy(s->pend_box, box, box_len);
  s->pend_box[box_len] = '\0';

  lsmtp__srv_begin_decision(s, DEC_RCPT);
  rc = s->cb.on_rcpt ? s->cb.on_rcpt(s, &path, &params, s->ud) : LSMTP_OK;
  lsmtp__srv_end_decision(s, DEC_RCPT, rc);
}

void lsmtp__srv_finish_rcpt(lsmtp_server *s) {
  if (lsmtp__srv_decided_code(s, 250) < 400) {
    size_t off = s->rcpt_text.len;
    size_t n = strlen(s->pend_box) + 1;
    if (lsmtp__buf_append(&s->rcpt_text, s->pend_box, n) != LSMTP_OK ||
        lsmtp__buf_append(&s->rcpt_offs, &off, sizeof off) != LSMTP_OK) {
      s->rcpt_text.len = off;
      lsmtp__srv_fail(s, LSMTP_ERR_NOMEM);
      return;
    }
    s->rcpt_count++;
    lsmtp__srv_log(s, LSMTP_SERVER_LOG_DEBUG, "RCPT TO:<%s>", s->pend_box);
  }
  lsmtp__srv_reply_decided(s, &s->out, 250, "2.1.5", "Ok");
}

/* ---- the rest ---- */

/* NOOP, RSET, VRFY, EXPN and HELP beyond the junk limit count as errors:
 * a client that only sends those is not delivering mail. */
static void junk(lsmtp_server *s) {
  uint64_t max = lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_JUNK_COMMANDS);
  if (++s->junk > max) s->errors++;
}

static void cmd_no_arg(lsmtp_server *s, const lsmtp_cmd *cmd) {
  char usage[32];
  snprintf(usage, sizeof usage, "Syntax: %s", lsmtp_verb_name(cmd->verb));
  lsmtp__srv_reply(s, 501, "5.5.4", usage);
}

void lsmtp__srv_command(lsmtp_server *s, const char *line, size_t len) {
  lsmtp_cmd cmd;
  unsigned cflags = (s->esmtp && (s->cfg->ext & LSMTP_EXT_SMTPUTF8))
                        ? LSMTP_CMD_ALLOW_8BIT
                        : 0;
  int rc = lsmtp_cmd_parse(line, len, cflags, &cmd);
  if (s->refused) { /* RFC 5321 §3.1: only QUIT after a 554 greeting */
    if (rc == LSMTP_OK && cmd.verb == LSMTP_VERB_QUIT) {
      lsmtp__srv_reply(s, 221, "2.0.0", "Bye");
      lsmtp__srv_close(s);
    } else {
      lsmtp__srv_reply(s, 503, "5.5.1", "Error: service refused, send QUIT");
    }
    return;
  }
  switch (rc) {
  case LSMTP_OK: break;
  case LSMTP_ERR_BARE_EOL:
    lsmtp__srv_reply(s, 500, "5.5.2", "Error: bare <CR> or <LF> in command");
    return;
  case LSMTP_ERR_NUL:
    lsmtp__srv_reply(s, 500, "5.5.2", "Error: NUL in command");
    return;
  case LSMTP_ERR_UTF8:
    lsmtp__srv_reply(s, 500, "5.5.2", "Error: 8-bit byte in command");
    return;
  default:
    lsmtp__srv_reply(s, 500, "5.5.2", "Error: bad command syntax");
    return;
  }
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_DEBUG, "command %s",
                 cmd.verb ? lsmtp_verb_name(cmd.verb) : "(unknown)");
  switch (cmd.verb) {
  case LSMTP_VERB_EHLO:
  case LSMTP_VERB_HELO:
  case LSMTP_VERB_LHLO: cmd_helo(s, &cmd); break;
  case LSMTP_VERB_MAIL: cmd_mail(s, &cmd); break;
  case LSMTP_VERB_RCPT: cmd_rcpt(s, &cmd); break;
  case LSMTP_VERB_DATA: lsmtp__srv_cmd_data(s, &cmd); break;
  case LSMTP_VERB_BDAT: lsmtp__srv_cmd_bdat(s, &cmd); break;
  case LSMTP_VERB_RSET:
    junk(s);
    if (cmd.arg_len) {
      cmd_no_arg(s, &cmd);
      break;
    }
    lsmtp__srv_reset_tx(s, LSMTP_OK);
    lsmtp__srv_reply(s, 250, "2.0.0", "Ok");
    break;
  case LSMTP_VERB_NOOP: /* RFC 5321 §4.1.1.9: an argument is allowed */
    junk(s);
    lsmtp__srv_reply(s, 250, "2.0.0", "Ok");
    break;
  case LSMTP_VERB_QUIT:
    if (cmd.arg_len) {
      cmd_no_arg(s, &cmd);
      break;
    }
    lsmtp__srv_reset_tx(s, LSMTP_ERR_CLOSED);
    lsmtp__srv_reply(s, 221, "2.0.0", "Bye");
    lsmtp__srv_close(s);
    break;
  case LSMTP_VERB_VRFY:
    junk(s);
    if (!cmd.arg_len) lsmtp__srv_reply(s, 501, "5.5.4", "Syntax: VRFY address");
    else lsmtp__srv_reply(s, 252, "2.5.0",
                          "Cannot VRFY user, but will accept message and attempt delivery");
    break;
  case LSMTP_VERB_EXPN:
    junk(s);
    lsmtp__srv_reply(s, 502, "5.5.1", "Error: command not implemented");
    break;
  case LSMTP_VERB_HELP:
    junk(s);
    if (s->cfg->ext & LSMTP_EXT_HELP)
      lsmtp__srv_reply(s, 214, "2.0.0",
                       (s->cfg->flags & LSMTP_SERVER_LMTP)
                           ? "Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"
                           : "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
    else
      lsmtp__srv_reply(s, 502, "5.5.1", "Error: command not implemented");
    break;
  case LSMTP_VERB_STARTTLS: lsmtp__srv_cmd_starttls(s, &cmd); break;
  case LSMTP_VERB_AUTH: lsmtp__srv_cmd_auth(s, &cmd); break;
  case LSMTP_VERB_UNKNOWN:
  default:
    lsmtp__srv_reply(s, 500, "5.5.1", "Error: command not recognized");
    break;
  }
}
