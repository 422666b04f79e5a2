/* Private state of the server session, shared by server.c (lifecycle, I/O
 * and the input loop), server_config.c, server_reply.c (replies, logging,
 * decisions), server_cmd.c (commands), server_data.c (DATA and BDAT),
 * server_tls.c (STARTTLS) and server_auth.c (AUTH). */
#ifndef LSMTP_SERVER_INT_H
#define LSMTP_SERVER_INT_H

#include <stdarg.h>

#include "internal.h"
#include <lsmtp/sasl_server.h>
#include <lsmtp/server.h>

struct lsmtp_server_config {
  const lsmtp_allocator *alloc;
  char *hostname;
  char *greeting; /* NULL: "ESMTP" or "LMTP" */
  unsigned ext;
  unsigned flags;
  uint64_t limits[LSMTP_SERVER_LIMIT_COUNT_];
  unsigned timeouts[LSMTP_SERVER_TIMEOUT_COUNT_];
};

/* What the input loop does with the next bytes. */
enum srv_phase {
  SRV_INIT,     /* greeting not sent yet */
  SRV_COMMAND,  /* reading command lines */
  SRV_DATA,     /* reading DATA content up to CRLF.CRLF */
  SRV_BDAT,     /* reading (or discarding) a BDAT chunk */
  SRV_DATA_END, /* message complete: asking on_data_end (once, or per rcpt) */
  SRV_STARTTLS, /* 220 to STARTTLS sent: input is thrown away until the host
                   says TLS is up */
  SRV_AUTH,     /* inside an AUTH exchange: reading continuation lines */
  SRV_CLOSED
};

/* The host decision in progress or deferred. */
enum srv_decision {
  DEC_NONE = 0,
  DEC_CONNECT,
  DEC_HELO,
  DEC_MAIL,
  DEC_RCPT,
  DEC_DATA_START,
  DEC_BDAT_START,
  DEC_DATA_END,
  DEC_AUTH
};

#define SRV_BOX_MAX 320  /* a mailbox: 64 + "@" + 255, with room */
#define SRV_NAME_MAX 260 /* a HELO domain or address literal */
#define SRV_TEXT_MAX 1024
#define SRV_TLS_NAME_MAX 63 /* TLS version / cipher names we keep */
#define SRV_AUTH_ID_MAX 255 /* LSMTP_SASL_SERVER_AUTHCID_MAX / _AUTHZID_MAX */

struct lsmtp_server {
  const lsmtp_server_config *cfg;
  const lsmtp_allocator *alloc;
  lsmtp_server_callbacks cb;
  void *ud;

  lsmtp__line_reader lines;
  lsmtp_data_decoder *dec;
  lsmtp__buf out;       /* replies waiting to be written */
  lsmtp__buf held;      /* a BDAT reply that waits until its chunk was read */
  lsmtp__buf bdat_fail; /* the reply that failed this BDAT transaction */

  enum srv_phase phase;
  int fatal;                    /* sticky fatal status, 0 when healthy */
  unsigned char fatal_reported; /* fatal was returned once already */
  unsigned char started, want_close, refused, busy, paused, shutdown_req;

  /* Decisions. */
  enum srv_decision pending; /* deferred, waiting for lsmtp_server_answer */
  enum srv_decision in_cb;   /* a decision callback is running */
  unsigned char ov_set;      /* the host chose the reply below */
  int ov_code;
  char ov_enh[16];
  char ov_text[SRV_TEXT_MAX + 1];
  unsigned char ov_has_text;

  /* Context of the decision in flight (the command line is gone by the
   * time a deferred decision is answered). */
  char pend_name[SRV_NAME_MAX + 1];
  unsigned char pend_ehlo;
  char pend_box[SRV_BOX_MAX + 1];
  unsigned char pend_utf8;
  lsmtp_body pend_body;

  /* Session. */
  char helo[SRV_NAME_MAX + 1];
  unsigned char have_helo, esmtp;
  unsigned errors, junk;
  uint64_t messages;

  /* TLS (server_tls.c). */
  unsigned char tls;
  char tls_version[SRV_TLS_NAME_MAX + 1];
  char tls_cipher[SRV_TLS_NAME_MAX + 1];
  uint64_t discarded; /* plaintext octets thrown away after STARTTLS */

  /* AUTH (server_auth.c). */
  lsmtp_sasl_server *sasl; /* the exchange in progress, NULL otherwise */
  unsigned char authed;
  char auth_id[SRV_AUTH_ID_MAX + 1];
  char authz_id[SRV_AUTH_ID_MAX + 1];
  /* Identities of the exchange the host is deciding (the password is never
   * kept beyond the on_auth call). */
  char pend_authcid[SRV_AUTH_ID_MAX + 1];
  char pend_authzid[SRV_AUTH_ID_MAX + 1];

  /* Transaction. */
  unsigned char in_tx, tx_utf8, bdat_used, bdat_failed;
  lsmtp_body tx_body;
  char mail_from[SRV_BOX_MAX + 1];
  lsmtp__buf rcpt_text; /* NUL-terminated mailboxes, one after another */
  lsmtp__buf rcpt_offs; /* size_t offsets into rcpt_text */
  size_t rcpt_count;
  size_t rcpt_tried; /* RCPT commands in this transaction */

  /* Message. */
  uint64_t msg_size;
  unsigned data_seen;
  int doomed; /* 0, LSMTP_ERR_LIMIT, LSMTP_ERR_BARE_EOL or LSMTP_ERR_NUL */
  size_t lmtp_next;

  /* BDAT chunk. */
  uint64_t chunk_size, chunk_left;
  unsigned char chunk_last, chunk_discard;
};

/* ---- server.c ---- */
/* The status a call returns once the session turned fatal: the cause the
 * first time, LSMTP_ERR_FATAL afterwards. */
int lsmtp__srv_fatal_status(lsmtp_server *s);

/* ---- server_config.c ---- */
uint64_t lsmtp__srv_limit(const lsmtp_server *s, lsmtp_server_limit which);
/* Extensions offered in this session: configured, and EHLO/LHLO used. */
unsigned lsmtp__srv_offered(const lsmtp_server *s);

/* ---- server_reply.c ---- */
#if defined(__GNUC__) || defined(__clang__)
#define LSMTP__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LSMTP__PRINTF(f, a)
#endif
void lsmtp__srv_log(lsmtp_server *s, lsmtp_server_log_level level,
                    const char *fmt, ...) LSMTP__PRINTF(3, 4);
/* Format a reply into b. enhanced is dropped when ENHANCEDSTATUSCODES is
 * off. Counts protocol errors (500/501/503/504/555); a 421 closes. On
 * allocation failure the session turns fatal. */
void lsmtp__srv_reply_to(lsmtp_server *s, lsmtp__buf *b, int code,
                         const char *enhanced, const char *text);
void lsmtp__srv_reply(lsmtp_server *s, int code, const char *enhanced,
                      const char *text);
/* Queue the reply the host chose (ov_*) or the given default. Returns 1
 * when it accepts (code < 400). */
int lsmtp__srv_reply_decided(lsmtp_server *s, lsmtp__buf *b, int def_code,
                             const char *def_enh, const char *def_text);
/* The host's code when it set one, else def_code. */
int lsmtp__srv_decided_code(const lsmtp_server *s, int def_code);
/* Validate a host reply for decision d. */
int lsmtp__srv_check_reply(enum srv_decision d, int code, const char *enhanced,
                           const char *text);
void lsmtp__srv_set_override(lsmtp_server *s, int code, const char *enhanced,
                             const char *text);
/* Before a decision callback. */
void lsmtp__srv_begin_decision(lsmtp_server *s, enum srv_decision d);
/* After it returned rc: finish now, defer, or abort. */
void lsmtp__srv_end_decision(lsmtp_server *s, enum srv_decision d, int rc);
/* Apply a decision whose reply is in ov_* (or the default). */
void lsmtp__srv_finish(lsmtp_server *s, enum srv_decision d);
/* Abort: queue 421 4.3.0, close, make status sticky. */
void lsmtp__srv_abort(lsmtp_server *s, int status);
void lsmtp__srv_fail(lsmtp_server *s, int status); /* fatal, no reply */
/* Queue a 421 with "<hostname> text", reset the transaction, close. */
void lsmtp__srv_close_421(lsmtp_server *s, const char *enhanced,
                          const char *text, int reason);
void lsmtp__srv_close(lsmtp_server *s);

/* ---- server_cmd.c ---- */
void lsmtp__srv_command(lsmtp_server *s, const char *line, size_t len);
void lsmtp__srv_finish_connect(lsmtp_server *s);
void lsmtp__srv_finish_helo(lsmtp_server *s);
void lsmtp__srv_finish_mail(lsmtp_server *s);
void lsmtp__srv_finish_rcpt(lsmtp_server *s);
/* An open transaction ends without delivery: tell the host, forget it. */
void lsmtp__srv_reset_tx(lsmtp_server *s, int reason);
/* Forget the transaction (the host already knows it ended). */
void lsmtp__srv_clear_tx(lsmtp_server *s);

/* ---- server_tls.c ---- */
void lsmtp__srv_cmd_starttls(lsmtp_server *s, const lsmtp_cmd *cmd);
/* Input while the handshake is pending: all of it is thrown away. */
size_t lsmtp__srv_step_starttls(lsmtp_server *s, size_t n);
/* RFC 3207 §4.1: MAIL/AUTH refused under LSMTP_SERVER_REQUIRE_TLS before
 * TLS. Queues 530 5.7.0 (counted as an error) and returns 1 when it
 * refused. */
int lsmtp__srv_need_tls(lsmtp_server *s);

/* ---- server_auth.c ---- */
/* AUTH may be used now: a callback, EHLO, and TLS or plaintext allowed. */
int lsmtp__srv_auth_offered(const lsmtp_server *s);
/* The mechanisms for "250-AUTH ..." ("PLAIN LOGIN"). */
void lsmtp__srv_auth_mechs(char *out, size_t cap);
void lsmtp__srv_cmd_auth(lsmtp_server *s, const lsmtp_cmd *cmd);
size_t lsmtp__srv_step_auth(lsmtp_server *s, const char *p, size_t n);
void lsmtp__srv_finish_auth(lsmtp_server *s);
/* Abandon an exchange in progress (wipes it); back to command lines. */
void lsmtp__srv_auth_end(lsmtp_server *s);
/* Forget a successful AUTH (STARTTLS). */
void lsmtp__srv_auth_forget(lsmtp_server *s);

/* ---- server_data.c ---- */
void lsmtp__srv_cmd_data(lsmtp_server *s, const lsmtp_cmd *cmd);
void lsmtp__srv_cmd_bdat(lsmtp_server *s, const lsmtp_cmd *cmd);
void lsmtp__srv_finish_data_start(lsmtp_server *s);
void lsmtp__srv_finish_bdat_start(lsmtp_server *s);
void lsmtp__srv_finish_data_end(lsmtp_server *s);
/* Input steps; return the bytes used. */
size_t lsmtp__srv_step_data(lsmtp_server *s, const char *p, size_t n);
size_t lsmtp__srv_step_bdat(lsmtp_server *s, const char *p, size_t n);
void lsmtp__srv_chunk_done(lsmtp_server *s);
void lsmtp__srv_step_data_end(lsmtp_server *s);

#endif
