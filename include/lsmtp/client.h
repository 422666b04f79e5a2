/* The SMTP client session (RFC 5321), sans I/O: the host feeds the bytes it
 * reads from the server (lsmtp_client_feed), writes out what the session
 * has to send (lsmtp_client_pending / lsmtp_client_consume), arms a timer
 * with lsmtp_client_timeout_ms and learns about results through callbacks.
 * The session never reads a clock, opens a socket or resolves a name.
 *
 * Driving it (see docs/client-session.md):
 *   lsmtp_client_new(&cli, cfg, &cbs, ud);
 *   loop: write lsmtp_client_pending() bytes, lsmtp_client_consume(n);
 *         read bytes, lsmtp_client_feed(); on a timer lsmtp_client_timeout().
 *   In on_ready (or whenever lsmtp_client_state() is LSMTP_CLIENT_READY):
 *   lsmtp_client_starttls / lsmtp_client_auth / lsmtp_client_send /
 *   lsmtp_client_quit. */
#ifndef LSMTP_CLIENT_H
#define LSMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/address.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>
#include <lsmtp/status.h>
#include <lsmtp/ext.h>
#include <lsmtp/reply.h>
#include <lsmtp/sasl.h>

LSMTP_BEGIN_DECLS

/* ---- configuration ------------------------------------------------------ */

typedef struct lsmtp_client_config lsmtp_client_config;

/** When a message is sent although some recipients were refused. */
typedef enum lsmtp_rcpt_policy {
  LSMTP_RCPT_ANY = 0, /* send when at least one recipient is accepted */
  LSMTP_RCPT_ALL      /* send only when all are; DATA then waits for the
                         RCPT replies instead of riding in the pipeline */
} lsmtp_rcpt_policy;

/** The timers of RFC 5321 §4.5.3.2 (defaults in parentheses). */
typedef enum lsmtp_client_timer {
  LSMTP_CLIENT_TIMER_GREETING = 0, /* initial 220 (5 min) */
  LSMTP_CLIENT_TIMER_MAIL,         /* MAIL reply (5 min) */
  LSMTP_CLIENT_TIMER_RCPT,         /* RCPT reply (5 min) */
  LSMTP_CLIENT_TIMER_DATA_INIT,    /* DATA's 354 (2 min) */
  LSMTP_CLIENT_TIMER_DATA_BLOCK,   /* while the body is being sent (3 min) */
  LSMTP_CLIENT_TIMER_DATA_TERM,    /* reply to "." or a BDAT (10 min) */
  LSMTP_CLIENT_TIMER_OTHER,        /* EHLO, AUTH, STARTTLS, RSET, QUIT (5 min) */
  LSMTP_CLIENT_TIMER_COUNT_
} lsmtp_client_timer;

/** Create a configuration with the defaults. alloc may be NULL; the session
 *  created from this config uses the same allocator. Returns LSMTP_OK or
 *  LSMTP_ERR_NOMEM. The session copies the config when it is created, so a
 *  config may be changed or destroyed afterwards. */
LSMTP_API int lsmtp_client_config_new(lsmtp_client_config **out,
                                      const lsmtp_allocator *alloc);

/** Destroy; NULL does nothing. */
LSMTP_API void lsmtp_client_config_del(lsmtp_client_config *cfg);

/** The name sent in EHLO/HELO (default "localhost"). It must be a domain or
 *  an address literal ("[192.0.2.1]"); copied. Returns LSMTP_OK,
 *  LSMTP_ERR_SYNTAX, LSMTP_ERR_TOO_LONG or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_client_config_set_helo_name(lsmtp_client_config *cfg,
                                                const char *name);

/** Bounds on each server reply: octets per line incl. CRLF and lines per
 *  reply (0 = LSMTP_REPLY_DEFAULT_MAX_LINE / _MAX_LINES). */
LSMTP_API void lsmtp_client_config_set_reply_limits(lsmtp_client_config *cfg,
                                                    size_t max_line,
                                                    size_t max_lines);

/** Use PIPELINING (RFC 2920) when the server offers it (default on). */
LSMTP_API void lsmtp_client_config_set_pipelining(lsmtp_client_config *cfg,
                                                  int enable);

/** Use BDAT (CHUNKING, RFC 3030) when offered (default on), and the chunk
 *  size (0 = 65536; at most 16 MiB). */
LSMTP_API void lsmtp_client_config_set_chunking(lsmtp_client_config *cfg,
                                                int enable, size_t chunk_size);

/** Recipient policy (default LSMTP_RCPT_ANY). */
LSMTP_API void lsmtp_client_config_set_rcpt_policy(lsmtp_client_config *cfg,
                                                   lsmtp_rcpt_policy policy);

/** Send credentials over a connection not marked secure
 *  (lsmtp_client_set_secure). Default off: AUTH returns LSMTP_ERR_INSECURE. */
LSMTP_API void lsmtp_client_config_set_allow_insecure_auth(
    lsmtp_client_config *cfg, int allow);

/** Set one timer in milliseconds (0 restores the RFC default). */
LSMTP_API void lsmtp_client_config_set_timeout(lsmtp_client_config *cfg,
                                               lsmtp_client_timer timer,
                                               uint32_t ms);

/** Most recipients accepted by lsmtp_client_send (default 1000). */
LSMTP_API void lsmtp_client_config_set_max_recipients(lsmtp_client_config *cfg,
                                                      size_t max);

/* What the server offers (EHLO keywords): the LSMTP_EXT_* bits of
 * lsmtp/ext.h, shared with the server side. */

/* ---- messages ------------------------------------------------------------ */

/** One recipient. Strings are copied by lsmtp_client_send. */
typedef struct lsmtp_client_rcpt {
  const char *address; /* mailbox without angle brackets, NUL-terminated */
  unsigned notify;     /* LSMTP_NOTIFY_* bits; 0 = no NOTIFY (DSN) */
  const char *orcpt;   /* original recipient (sent as rfc822;xtext when DSN
                          is offered); NULL for none; ASCII only */
} lsmtp_client_rcpt;

/** Body source. Fill buf with up to cap bytes and set *len; return
 *  LSMTP_OK with *len > 0 (more may follow), LSMTP_OK with *len == 0 or
 *  LSMTP_DONE (the end; with DONE *len bytes, possibly 0, are the last), LSMTP_PAUSED (nothing now: call
 *  lsmtp_client_resume when more is available), or a negative status to
 *  abort the session (it becomes LSMTP_ERR_ABORTED). Called from
 *  lsmtp_client_pending. Text bodies may use bare LF: line ends are sent as
 *  CRLF (DATA is dot-stuffed; BDAT bodies that are not BINARYMIME get the
 *  same line-end repair). BINARYMIME bodies go out unchanged. */
typedef int (*lsmtp_client_read_cb)(void *user_data, char *buf, size_t cap,
                                    size_t *len);

/** A message to send. Copied by lsmtp_client_send (the body is read later
 *  through `read`, called with the session's user_data). Zero-initialise
 *  and set what you need. */
typedef struct lsmtp_client_message {
  const char *reverse_path; /* mailbox without brackets; "" or NULL = <> */
  const lsmtp_client_rcpt *rcpts;
  size_t n_rcpts;           /* at least 1 */
  lsmtp_body body;          /* NONE/7BIT, 8BITMIME (body has 8-bit bytes),
                               BINARYMIME (needs CHUNKING and BINARYMIME) */
  uint64_t size_hint;       /* expected size for SIZE=, 0 = unknown */
  lsmtp_dsn_ret ret;        /* RET= (DSN), sent when DSN is offered */
  const char *envid;        /* ENVID= (DSN, ASCII), NULL for none */
  int requiretls;           /* RFC 8689 REQUIRETLS */
  lsmtp_client_read_cb read;
} lsmtp_client_message;

/* ---- callbacks ----------------------------------------------------------- */

/** All callbacks get the user_data given to lsmtp_client_new. Any may be
 *  NULL. Callbacks returning int return 0 to go on or a negative status to
 *  abort the session (it becomes fatal with LSMTP_ERR_ABORTED). Replies
 *  passed in are valid only during the call. */
typedef struct lsmtp_client_callbacks {
  /** Every complete reply with the verb it answers ("GREETING", "EHLO",
   *  "MAIL", "RCPT", "DATA", "." for the end of data, "BDAT", ...); for
   *  logging. */
  void (*on_reply)(void *user_data, const char *verb, const lsmtp_reply *r);
  /** The session is idle and will take lsmtp_client_send / _auth /
   *  _starttls / _quit: after the EHLO exchange, after AUTH, after each
   *  message (and its RSET). May call those functions. */
  int (*on_ready)(void *user_data);
  /** The server answered RCPT for recipient `index` (its position in the
   *  message). r->code 2xx = accepted. */
  int (*on_rcpt)(void *user_data, size_t index, const char *address,
                 const lsmtp_reply *r);
  /** A message is finished: status LSMTP_OK (accepted for delivery: r is
   *  the final reply), LSMTP_ERR_REFUSED (5xx) or LSMTP_ERR_TEMPFAIL (4xx)
   *  with the reply that failed it (MAIL, DATA, "." or BDAT), or with r NULL
   *  when no recipient was accepted (the recipients' replies were reported
   *  one by one, and the DATA reply that follows is not a refusal of its
   *  own); a fatal status (r NULL) when the session died meanwhile. */
  int (*on_message_done)(void *user_data, int status, const lsmtp_reply *r);
  /** AUTH finished: LSMTP_OK (235), LSMTP_ERR_AUTH (5xx, or a server that
   *  did not prove itself in SCRAM), LSMTP_ERR_TEMPFAIL (4xx). r is the
   *  final reply. lsmtp_client_auth_error() has any error text the server
   *  sent inside the SASL exchange. */
  int (*on_auth_done)(void *user_data, int status, const lsmtp_reply *r);
  /** The server said 220 to STARTTLS: the host must now run the TLS
   *  handshake on the transport and then call lsmtp_client_tls_started
   *  (after the current lsmtp_client_feed has returned). Any byte that came
   *  after the 220 in plaintext ends the session (LSMTP_ERR_PROTOCOL,
   *  response injection). status != LSMTP_OK (r = the reply) when the
   *  server refused STARTTLS; the session is then ready again in plaintext
   *  and the host decides whether to go on. */
  int (*on_starttls)(void *user_data, int status, const lsmtp_reply *r);
  /** The session has ended: LSMTP_OK after QUIT was answered; otherwise the
   *  reason (LSMTP_ERR_REFUSED: greeting 554 or HELO refused; LSMTP_ERR_CLOSED:
   *  421 or lsmtp_client_eof too early; fatal errors such as
   *  LSMTP_ERR_BAD_REPLY). r is the reply that ended it, or NULL. Called
   *  once. */
  void (*on_closed)(void *user_data, int status, const lsmtp_reply *r);
} lsmtp_client_callbacks;

/* ---- the session ---------------------------------------------------------- */

typedef struct lsmtp_client lsmtp_client;

/** Where a session is. */
typedef enum lsmtp_client_state {
  LSMTP_CLIENT_GREETING = 0, /* waiting for the 220 */
  LSMTP_CLIENT_HELLO,        /* EHLO / HELO exchange */
  LSMTP_CLIENT_READY,        /* idle: start something */
  LSMTP_CLIENT_STARTTLS,     /* STARTTLS sent, or waiting for tls_started */
  LSMTP_CLIENT_AUTH,         /* SASL exchange */
  LSMTP_CLIENT_MESSAGE,      /* a transaction is running */
  LSMTP_CLIENT_RESET,        /* RSET after a failed transaction */
  LSMTP_CLIENT_QUIT,         /* QUIT sent */
  LSMTP_CLIENT_CLOSED,       /* ended (see on_closed) */
  LSMTP_CLIENT_FAILED        /* fatal error: only lsmtp_client_del */
} lsmtp_client_state;

/** Create a session. cfg may be NULL (defaults; default allocator);
 *  callbacks may be NULL. The session copies cfg and the callbacks struct.
 *  Nothing is sent until the greeting arrives. Returns LSMTP_OK or
 *  LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_client_new(lsmtp_client **out,
                               const lsmtp_client_config *cfg,
                               const lsmtp_client_callbacks *callbacks,
                               void *user_data);

/** Destroy; NULL does nothing. No callback is called. */
LSMTP_API void lsmtp_client_del(lsmtp_client *cli);

/** Feed bytes read from the server. *consumed gets how many were used
 *  (always <= len; all of them unless an error stopped the session).
 *  Callbacks run from inside this call. Returns LSMTP_OK, or a fatal
 *  error: LSMTP_ERR_BAD_REPLY (malformed, overlong or bare-LF reply),
 *  LSMTP_ERR_PROTOCOL (a reply nobody asked for, a reply code that makes no
 *  sense for the command, bytes after STARTTLS's 220), LSMTP_ERR_ABORTED,
 *  LSMTP_ERR_NOMEM; after that every call returns LSMTP_ERR_FATAL. Bytes
 *  fed to a CLOSED session are LSMTP_ERR_PROTOCOL too. */
LSMTP_API int lsmtp_client_feed(lsmtp_client *cli, const char *data,
                                size_t len, size_t *consumed);

/** The bytes the host should write next: *data points at them (valid until
 *  the next call on cli) and the count is returned; 0 when there is nothing
 *  to write now. While a body is being sent this pulls from the message's
 *  read callback, a bounded amount at a time. Never fails: errors raised
 *  by the read callback make the session FAILED (see lsmtp_client_error). */
LSMTP_API size_t lsmtp_client_pending(lsmtp_client *cli, const char **data);

/** Mark n of the pending bytes as written (n <= what pending returned). */
LSMTP_API void lsmtp_client_consume(lsmtp_client *cli, size_t n);

/** Non-zero while the session waits for bytes from the server. */
LSMTP_API int lsmtp_client_want_read(const lsmtp_client *cli);

/** Timeout in ms for the current state (RFC 5321 §4.5.3.2 as configured);
 *  0 when no timer should run (idle, closed). The host re-reads it after
 *  every call and restarts its timer when the state changes or data moves. */
LSMTP_API uint32_t lsmtp_client_timeout_ms(const lsmtp_client *cli);

/** The timer fired: the session fails with LSMTP_ERR_TIMEOUT (returned);
 *  on_message_done (if a message was running) and on_closed are called. */
LSMTP_API int lsmtp_client_timeout(lsmtp_client *cli);

/** The server closed the connection. LSMTP_OK when that was expected (after
 *  QUIT or when CLOSED); otherwise the session fails with LSMTP_ERR_CLOSED. */
LSMTP_API int lsmtp_client_eof(lsmtp_client *cli);

/** The current state. */
LSMTP_API lsmtp_client_state lsmtp_client_state_get(const lsmtp_client *cli);

/** The status that ended the session (LSMTP_OK while it runs or after a
 *  clean QUIT). */
LSMTP_API int lsmtp_client_error(const lsmtp_client *cli);

/** Extensions the server announced in its last EHLO reply (LSMTP_EXT_* of
 *  lsmtp/ext.h). */
LSMTP_API unsigned lsmtp_client_extensions(const lsmtp_client *cli);

/** The SIZE the server announced; 0 when absent or without a value. */
LSMTP_API uint64_t lsmtp_client_size_limit(const lsmtp_client *cli);

/** The AUTH mechanisms offered, as a mask of LSMTP_SASL_BIT(mech) (only the
 *  mechanisms lsmtp knows; "AUTH=" legacy lines count as well). */
LSMTP_API unsigned lsmtp_client_auth_mechs(const lsmtp_client *cli);

/** Non-zero when the server answered HELO only (no EHLO: no extensions). */
LSMTP_API int lsmtp_client_used_helo(const lsmtp_client *cli);

/** Tell the session whether the connection is protected (TLS with a
 *  verified peer). lsmtp_client_tls_started sets it; a host that uses
 *  implicit TLS (port 465) sets it itself. Credentials are sent only when
 *  it is set or insecure auth is allowed. */
LSMTP_API void lsmtp_client_set_secure(lsmtp_client *cli, int secure);

/** Send STARTTLS (state READY, server offers it). Returns LSMTP_OK,
 *  LSMTP_ERR_STATE, LSMTP_ERR_UNSUPPORTED (not offered). */
LSMTP_API int lsmtp_client_starttls(lsmtp_client *cli);

/** The TLS handshake after STARTTLS's 220 is done: forget what the server
 *  said before (RFC 3207 §4.2), mark the connection secure and send EHLO
 *  again. Returns LSMTP_OK or LSMTP_ERR_STATE. */
LSMTP_API int lsmtp_client_tls_started(lsmtp_client *cli);

/** Authenticate (state READY). mech LSMTP_SASL_NONE picks the strongest
 *  offered mechanism the credentials allow (lsmtp_sasl_choose). Returns
 *  LSMTP_OK (result through on_auth_done), LSMTP_ERR_STATE,
 *  LSMTP_ERR_INSECURE (connection not secure and insecure auth not
 *  allowed: nothing is sent), LSMTP_ERR_UNSUPPORTED (no AUTH, or the
 *  mechanism is not offered or not built), errors of lsmtp_sasl_client_new. */
LSMTP_API int lsmtp_client_auth(lsmtp_client *cli, lsmtp_sasl_mech mech,
                                const lsmtp_sasl_credentials *creds);

/** As lsmtp_client_auth with a SASL client the host made (e.g. with a fixed
 *  nonce). The session takes ownership of sasl in every case (also on
 *  error, when it is destroyed). */
LSMTP_API int lsmtp_client_auth_sasl(lsmtp_client *cli, lsmtp_sasl_client *sasl);

/** The error text the server sent inside the last SASL exchange, or NULL. */
LSMTP_API const char *lsmtp_client_auth_error(const lsmtp_client *cli);

/** Start a message (state READY). Parameters are chosen from what the
 *  server offers and what the message needs: SIZE= when offered and
 *  size_hint is known; BODY=8BITMIME / BINARYMIME; SMTPUTF8 when an
 *  address is not ASCII; DSN parameters only when DSN is offered;
 *  REQUIRETLS. With PIPELINING, MAIL, every RCPT and DATA leave in one
 *  write. Returns LSMTP_OK (results through on_rcpt / on_message_done),
 *  LSMTP_ERR_STATE, LSMTP_ERR_INVALID (no recipients, no read callback),
 *  LSMTP_ERR_SYNTAX / LSMTP_ERR_TOO_LONG (bad address),
 *  LSMTP_ERR_LIMIT (more recipients than configured, or size_hint above
 *  the server's SIZE), LSMTP_ERR_UNSUPPORTED (8BITMIME, BINARYMIME,
 *  SMTPUTF8 or REQUIRETLS needed but not offered), LSMTP_ERR_UTF8
 *  (non-ASCII ENVID/ORCPT), LSMTP_ERR_NOMEM. Nothing is sent on error. */
LSMTP_API int lsmtp_client_send(lsmtp_client *cli,
                                const lsmtp_client_message *msg);

/** The body source has more data after returning LSMTP_PAUSED. Returns
 *  LSMTP_OK or LSMTP_ERR_STATE (no body waiting). */
LSMTP_API int lsmtp_client_resume(lsmtp_client *cli);

/** Send QUIT (state READY; also allowed in GREETING/HELLO failures the
 *  session already handles itself). Returns LSMTP_OK or LSMTP_ERR_STATE. */
LSMTP_API int lsmtp_client_quit(lsmtp_client *cli);

LSMTP_END_DECLS

#endif
