/* The message path of the server session: DATA (RFC 5321 §4.1.1.4) through
 * the streaming decoder, BDAT chunks (RFC 3030) counted exactly, and the
 * end of data, where the host decides once (SMTP) or per recipient (LMTP,
 * RFC 2033 §4.2). Message bytes go from the fed input straight to
 * on_data_chunk: nothing here copies them. */
#include <stdio.h>

#include "server_int.h"

static void start_message(lsmtp_server *s) {
  lsmtp_data_decoder_reset(s->dec);
  s->msg_size = 0;
  s->data_seen = 0;
  s->doomed = 0;
}

/* The session refuses the message itself; the host hears it at once so it
 * can drop what it stored, and gets no more bytes of it. */
static void doom(lsmtp_server *s, int reason) {
  if (s->doomed) return;
  s->doomed = reason;
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_WARN, "message refused: %s",
                 reason == LSMTP_ERR_LIMIT ? "over the size limit"
                                           : "bare CR or LF");
  if (s->cb.on_reset) s->cb.on_reset(s, reason, s->ud);
}

static void check_doom(lsmtp_server *s) {
  unsigned seen = lsmtp_data_decoder_seen(s->dec);
  if (seen & LSMTP_DATA_OVER_SIZE)
    doom(s, LSMTP_ERR_LIMIT);
  else if (!(s->cfg->flags & LSMTP_SERVER_NORMALIZE_EOL) &&
           (seen & (LSMTP_DATA_SAW_BARE_LF | LSMTP_DATA_SAW_BARE_CR)))
    doom(s, LSMTP_ERR_BARE_EOL);
  else if (seen & LSMTP_DATA_SAW_NUL)
    /* No text in DATA may carry NUL, 8BITMIME included (RFC 6152 §3);
     * binary content travels with BDAT. */
    doom(s, LSMTP_ERR_NUL);
}

/* Hand one span to the host; maps its answer onto the decoder's. */
static int to_host(lsmtp_server *s, const char *p, size_t n) {
  if (!s->cb.on_data_chunk || n == 0) return 0;
  int rc = s->cb.on_data_chunk(s, p, n, s->ud);
  if (rc == LSMTP_OK) return 0;
  if (rc == LSMTP_PAUSED) {
    s->paused = 1;
    return LSMTP_PAUSED;
  }
  return rc < 0 ? rc : LSMTP_ERR_ABORTED;
}

static int on_span(void *ud, const char *p, size_t n) {
  lsmtp_server *s = ud;
  check_doom(s);
  if (s->doomed) return 0;
  return to_host(s, p, n);
}

/* The end of data was read (DATA) or BDAT LAST completed. */
static void message_complete(lsmtp_server *s) {
  s->messages++;
  s->lmtp_next = 0;
  s->phase = SRV_DATA_END;
  lsmtp__srv_log(s, LSMTP_SERVER_LOG_INFO,
                 "message from <%s>: %llu octets, %zu recipient(s)", s->mail_from,
                 (unsigned long long)s->msg_size, s->rcpt_count);
}

/* DATA or BDAT without a usable envelope: the reply it gets, or 0. */
static int envelope_error(lsmtp_server *s, lsmtp__buf *b) {
  if (!s->in_tx) {
    lsmtp__srv_reply_to(s, b, 503, "5.5.1", "Error: need MAIL command");
    return 1;
  }
  if (s->rcpt_count == 0) {
    /* Postfix's distinction: no RCPT at all is a sequence error; RCPTs that
     * were all refused are normal under PIPELINING and not counted. */
    if (s->rcpt_tried == 0)
      lsmtp__srv_reply_to(s, b, 503, "5.5.1", "Error: need RCPT command");
    else
      lsmtp__srv_reply_to(s, b, 554, "5.5.1", "Error: no valid recipients");
    return 1;
  }
  return 0;
}

/* ---- DATA ---- */

void lsmtp__srv_cmd_data(lsmtp_server *s, const lsmtp_cmd *cmd) {
  if (cmd->arg_len) {
    lsmtp__srv_reply(s, 501, "5.5.4", "Syntax: DATA");
    return;
  }
  if (s->in_tx && (s->bdat_used || s->bdat_failed)) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: DATA in a BDAT transaction");
    return;
  }
  if (s->in_tx && s->tx_body == LSMTP_BODY_BINARYMIME) {
    lsmtp__srv_reply(s, 503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT");
    return;
  }
  if (envelope_error(s, &s->out)) return;
  lsmtp__srv_begin_decision(s, DEC_DATA_START);
  int rc = s->cb.on_data_start ? s->cb.on_data_start(s, s->ud) : LSMTP_OK;
  lsmtp__srv_end_decision(s, DEC_DATA_START, rc);
}

void lsmtp__srv_finish_data_start(lsmtp_server *s) {
  if (!lsmtp__srv_reply_decided(s, &s->out, 354, NULL,
                                "End data with <CR><LF>.<CR><LF>"))
    return;
  start_message(s);
  s->phase = SRV_DATA;
}

size_t lsmtp__srv_step_data(lsmtp_server *s, const char *p, size_t n) {
  size_t used = 0;
  int rc = lsmtp_data_decode(s->dec, p, n, &used, on_span, s);
  s->msg_size = lsmtp_data_decoder_size(s->dec);
  s->data_seen = lsmtp_data_decoder_seen(s->dec);
  check_doom(s);
  if (rc == LSMTP_DONE) message_complete(s);
  else if (rc < 0) lsmtp__srv_abort(s, rc);
  return used;
}

/* ---- BDAT ---- */

static void fail_bdat(lsmtp_server *s) {
  s->bdat_failed = 1;
  s->chunk_discard = 1;
  s->held.len = 0;
  if (lsmtp__buf_append(&s->held, s->bdat_fail.data, s->bdat_fail.len) != LSMTP_OK)
    lsmtp__srv_fail(s, LSMTP_ERR_NOMEM);
}

/* A chunk that cannot fit is refused before any of it reaches the host:
 * the size is known up front, so the outcome does not depend on how the
 * bytes happen to be split. */
static void accept_chunk(lsmtp_server *s) {
  uint64_t max = lsmtp__srv_limit(s, LSMTP_SERVER_LIMIT_MESSAGE_SIZE);
  s->chunk_discard = 0;
  if (max && s->chunk_size > max - s->msg_size) {
    doom(s, LSMTP_ERR_LIMIT);
    s->bdat_fail.len = 0;
    lsmtp__srv_reply_to(s, &s->bdat_fail, 552, "5.3.4", "Error: message too large");
    fail_bdat(s);
  }
}

void lsmtp__srv_cmd_bdat(lsmtp_server *s, const lsmtp_cmd *cmd) {
  uint64_t size = 0;
  int last = 0;
  if (lsmtp_bdat_parse(cmd->arg, cmd->arg_len, &size, &last) != LSMTP_OK) {
    /* Without a size the chunk cannot be skipped; what follows is read as
     * commands and will mostly earn errors until the limit closes us. */
    lsmtp__srv_reply(s, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
    return;
  }
  /* Whatever the answer, exactly `size` octets follow and are read. */
  s->chunk_size = s->chunk_left = size;
  s->chunk_last = (unsigned char)last;
  s->chunk_discard = 1;
  s->held.len = 0;
  s->phase = SRV_BDAT;
  if (!(lsmtp__srv_offered(s) & LSMTP_EXT_CHUNKING)) {
    lsmtp__srv_reply_to(s, &s->held, 502, "5.5.1", "Error: BDAT not offered");
    return;
  }
  if (s->in_tx && s->bdat_failed) {
    fail_bdat(s);
    return;
  }
  if (envelope_error(s, &s->held)) return;
  if (s->bdat_used) {
    accept_chunk(s);
    return;
  }
  lsmtp__srv_begin_decision(s, DEC_BDAT_START);
  int rc = s->cb.on_data_start ? s->cb.on_data_start(s, s->ud) : LSMTP_OK;
  lsmtp__srv_end_decision(s, DEC_BDAT_START, rc);
}

void lsmtp__srv_finish_bdat_start(lsmtp_server *s) {
  int code = lsmtp__srv_decided_code(s, 354);
  if (code < 400) {
    s->bdat_used = 1;
    start_message(s);
    accept_chunk(s);
    return;
  }
  if (code == 421) { /* closes now; the chunk is not read */
    lsmtp__srv_reply_decided(s, &s->out, 354, NULL, NULL);
    return;
  }
  s->bdat_fail.len = 0;
  lsmtp__srv_reply_decided(s, &s->bdat_fail, 354, NULL, NULL);
  fail_bdat(s);
}

size_t lsmtp__srv_step_bdat(lsmtp_server *s, const char *p, size_t n) {
  size_t take = s->chunk_left < n ? (size_t)s->chunk_left : n;
  if (!s->chunk_discard && take) {
    int rc = to_host(s, p, take);
    if (rc < 0) lsmtp__srv_abort(s, rc);
  }
  if (s->bdat_used && !s->chunk_discard) s->msg_size += take;
  s->chunk_left -= take;
  return take;
}

void lsmtp__srv_chunk_done(lsmtp_server *s) {
  s->phase = SRV_COMMAND;
  if (s->held.len) {
    if (lsmtp__buf_append(&s->out, s->held.data, s->held.len) != LSMTP_OK) {
      lsmtp__srv_fail(s, LSMTP_ERR_NOMEM);
      return;
    }
    s->held.len = 0;
    if (s->chunk_last && s->in_tx) { /* BDAT LAST ends even a failed transaction */
      if (s->bdat_used) s->messages++;
      lsmtp__srv_reset_tx(s, LSMTP_OK);
    }
    return;
  }
  if (!s->chunk_last) {
    char text[64];
    snprintf(text, sizeof text, "%llu octets received",
             (unsigned long long)s->chunk_size);
    lsmtp__srv_reply(s, 250, "2.0.0", text);
    return;
  }
  message_complete(s);
}

/* ---- end of data ---- */

void lsmtp__srv_step_data_end(lsmtp_server *s) {
  int lmtp = (s->cfg->flags & LSMTP_SERVER_LMTP) != 0;
  if (s->doomed) {
    size_t n = lmtp ? s->rcpt_count : 1;
    for (size_t i = 0; i < n; i++) {
      if (s->doomed == LSMTP_ERR_LIMIT)
        lsmtp__srv_reply(s, 552, "5.3.4", "Error: message too large");
      else if (s->doomed == LSMTP_ERR_NUL)
        lsmtp__srv_reply(s, 550, "5.6.0", "Error: NUL byte in message");
      else
        lsmtp__srv_reply(s, 550, "5.6.0", "Error: bare <CR> or <LF> in message");
    }
    lsmtp__srv_clear_tx(s);
    s->doomed = 0;
    if (s->phase == SRV_DATA_END) s->phase = SRV_COMMAND;
    return;
  }
  size_t idx = lmtp ? s->lmtp_next : LSMTP_SERVER_ALL_RCPTS;
  lsmtp__srv_begin_decision(s, DEC_DATA_END);
  int rc = s->cb.on_data_end ? s->cb.on_data_end(s, idx, s->ud) : LSMTP_OK;
  lsmtp__srv_end_decision(s, DEC_DATA_END, rc);
}

void lsmtp__srv_finish_data_end(lsmtp_server *s) {
  int lmtp = (s->cfg->flags & LSMTP_SERVER_LMTP) != 0;
  lsmtp__srv_reply_decided(s, &s->out, 250, "2.0.0", lmtp ? "Ok" : "Ok: queued");
  if (s->want_close || s->fatal) return;
  if (lmtp && ++s->lmtp_next < s->rcpt_count) return; /* ask for the next */
  lsmtp__srv_clear_tx(s);
  s->phase = SRV_COMMAND;
}
