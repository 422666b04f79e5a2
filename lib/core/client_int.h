/* Private state of the SMTP client session, shared by client.c (session,
 * feed/pending, reply dispatch), client_config.c, client_ehlo.c
 * (extensions), client_txn.c (MAIL/RCPT/DATA), client_body.c (DATA and
 * BDAT body streaming) and client_auth.c (AUTH and STARTTLS). */
#ifndef LSMTP_CLIENT_INT_H
#define LSMTP_CLIENT_INT_H

#include <lsmtp/client.h>

#include "crypto.h"
#include "internal.h"

#define LSMTP__CLIENT_HELO_MAX 255
#define LSMTP__CLIENT_DEFAULT_CHUNK 65536u
#define LSMTP__CLIENT_MAX_CHUNK (16u * 1024u * 1024u)
/* pending() stops pulling body bytes once this much waits to be written. */
#define LSMTP__CLIENT_OUT_HIGH 16384u
#define LSMTP__CLIENT_READ_SIZE 8192u

struct lsmtp_client_config {
  const lsmtp_allocator *alloc;
  char helo[LSMTP__CLIENT_HELO_MAX + 1];
  size_t max_line, max_lines, chunk_size, max_rcpts;
  int pipelining, chunking, allow_insecure_auth;
  lsmtp_rcpt_policy policy;
  uint32_t timeouts[LSMTP_CLIENT_TIMER_COUNT_];
};

/* What each sent command waits for; replies are matched in this order. */
typedef enum lsmtp__ckind {
  LSMTP__C_GREETING = 0,
  LSMTP__C_EHLO,
  LSMTP__C_HELO,
  LSMTP__C_STARTTLS,
  LSMTP__C_AUTH,
  LSMTP__C_MAIL,
  LSMTP__C_RCPT,
  LSMTP__C_DATA,
  LSMTP__C_DOT,
  LSMTP__C_BDAT,
  LSMTP__C_RSET,
  LSMTP__C_QUIT
} lsmtp__ckind;

typedef struct lsmtp__expect {
  lsmtp__ckind kind;
  size_t index; /* RCPT: recipient index; BDAT: 1 when LAST */
} lsmtp__expect;

/* A copy of a reply that must outlive the parser call (what ended the
 * session, reported later by on_closed). */
typedef struct lsmtp__saved_reply {
  lsmtp_reply reply;
  char *text;
  int valid;
} lsmtp__saved_reply;

typedef struct lsmtp__rcpt {
  char *address; /* NUL-terminated copy for on_rcpt */
} lsmtp__rcpt;

typedef enum lsmtp__body_state {
  LSMTP__BODY_IDLE = 0, /* not streaming */
  LSMTP__BODY_STREAM,   /* pulling from read() */
  LSMTP__BODY_PAUSED,   /* read() said LSMTP_PAUSED */
  LSMTP__BODY_WAIT      /* BDAT: a chunk is in flight, wait for its reply */
} lsmtp__body_state;

typedef struct lsmtp__txn {
  int active;
  int pipelined;      /* MAIL+RCPTs went out as one group */
  int data_queued;    /* DATA rode in that group */
  int use_bdat;
  int doomed;         /* outcome reported as a failure; drain and RSET */
  int reported;       /* on_message_done was called */
  lsmtp__rcpt *rcpts;
  size_t n_rcpts, rcpt_replies, accepted, temp_failed, perm_failed;
  lsmtp__buf lines;   /* MAIL and RCPT lines, formatted up front */
  size_t *line_off;   /* n_rcpts + 2 offsets into lines */
  lsmtp_body body;
  lsmtp_client_read_cb read;
  lsmtp__body_state body_state;
  int body_eof;       /* read() reported the end */
  /* BDAT chunk being filled */
  size_t chunk_len;
  int prev_cr;        /* line-end repair across reads */
} lsmtp__txn;

struct lsmtp_client {
  lsmtp_client_config cfg;
  const lsmtp_allocator *alloc;
  lsmtp_client_callbacks cb;
  void *ud;
  lsmtp_reply_parser *rp;
  lsmtp_data_encoder *enc;
  lsmtp__buf out;
  lsmtp__expect *q;
  size_t q_head, q_len, q_cap;
  lsmtp_client_state state;
  int error;  /* why the session ended; LSMTP_OK while running */
  int fatal;
  int closed_reported;
  int end_status; /* set when the session is winding down (QUIT sent) */
  lsmtp__saved_reply end_reply;
  /* what the server offers */
  unsigned ext;
  uint64_t size_limit;
  unsigned auth_mechs;
  int used_helo;
  int secure;
  int tls_wait; /* STARTTLS got 220: only tls_started is legal */
  int in_feed;  /* inside lsmtp_client_feed (callbacks run) */
  /* AUTH */
  lsmtp_sasl_client *sasl;
  lsmtp__buf auth_ir; /* initial response deferred to the first 334 */
  int auth_ir_pending;
  int auth_cancelled;
  /* the current message */
  lsmtp__txn m;
  char *scratch; /* read buffer (DATA) */
  char *chunk;   /* BDAT chunk buffer, cfg.chunk_size bytes */
};

/* client.c */
int lsmtp__client_push(lsmtp_client *c, lsmtp__ckind kind, size_t index);
int lsmtp__client_write(lsmtp_client *c, const char *s, size_t n);
int lsmtp__client_writes(lsmtp_client *c, const char *s);
/* Make the session fatal with status (once), report it, return it. */
int lsmtp__client_fail(lsmtp_client *c, int status);
/* Idle again: state READY and on_ready. Returns a callback abort. */
int lsmtp__client_ready(lsmtp_client *c);
/* 4xx -> LSMTP_ERR_TEMPFAIL, else LSMTP_ERR_REFUSED. */
int lsmtp__client_fail_status(const lsmtp_reply *r);
/* Map a callback's return: negative -> LSMTP_ERR_ABORTED. */
int lsmtp__client_cb_rc(int rc);
/* Send QUIT and remember why the session ends. */
int lsmtp__client_wind_down(lsmtp_client *c, int status, const lsmtp_reply *r);

/* client_ehlo.c */
void lsmtp__client_parse_ehlo(lsmtp_client *c, const lsmtp_reply *r);
int lsmtp__client_send_hello(lsmtp_client *c, int helo);
int lsmtp__client_on_hello(lsmtp_client *c, lsmtp__ckind kind,
                           const lsmtp_reply *r);

/* client_txn.c */
void lsmtp__txn_clear(lsmtp_client *c);
int lsmtp__txn_on_reply(lsmtp_client *c, const lsmtp__expect *e,
                        const lsmtp_reply *r);
int lsmtp__txn_message_done(lsmtp_client *c, int status, const lsmtp_reply *r);
/* After a transaction reply: finished, RSET or idle when nothing is left. */
int lsmtp__txn_settle(lsmtp_client *c);

/* client_body.c */
int lsmtp__body_start(lsmtp_client *c);
/* Pull body bytes into the output while it is below the high mark. */
int lsmtp__body_fill(lsmtp_client *c);

/* client_auth.c */
int lsmtp__auth_on_reply(lsmtp_client *c, const lsmtp_reply *r);
int lsmtp__starttls_on_reply(lsmtp_client *c, const lsmtp_reply *r);

#endif
