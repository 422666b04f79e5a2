/* The SMTP/LMTP server session: a sans-I/O protocol engine (RFC 5321,
 * 1870, 2033, 2920, 3030, 3463, 6152, 6531). The host feeds the bytes it
 * read, writes the bytes the session hands out, arms one timer, and answers
 * the session's questions (accept this sender, this recipient, this
 * message) now or later. docs/server-session.md shows how a host drives it.
 *
 *   lsmtp_server_start(srv);                 // greeting
 *   loop:
 *     lsmtp_server_feed(srv, in, n, &used);  // keep in[used..n) if < n
 *     while ((k = lsmtp_server_pending(srv, &p)) > 0) {
 *       write(fd, p, k); lsmtp_server_consume(srv, k);
 *     }
 *     if (lsmtp_server_want_close(srv)) close(fd);
 *     arm_timer(lsmtp_server_timeout_ms(srv));
 */
#ifndef LSMTP_SERVER_H
#define LSMTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/address.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/* ------------------------------------------------------------------ */
/* Extensions the server advertises in its EHLO/LHLO reply.           */

#include <lsmtp/ext.h>
/* STARTTLS, AUTH and REQUIRETLS are reserved: the setter accepts them but
 * they are only advertised once their hooks exist. */
/** The default set: PIPELINING through HELP, none of the reserved ones. */
#define LSMTP_EXT_DEFAULT 0x1ffu

/* ------------------------------------------------------------------ */
/* Configuration: shared by many sessions, read-only once a session    */
/* uses it. It must outlive every session created from it.             */

typedef struct lsmtp_server_config lsmtp_server_config;

/* Behaviour flags (lsmtp_server_config_set_flags). Each leniency is one
 * flag and off by default. */
#define LSMTP_SERVER_LMTP 0x1u /* RFC 2033: LHLO, one reply per recipient */
/** Bare CR / LF inside DATA become CRLF instead of the message being
 *  refused with 550 5.6.0. A bare CR or LF never ends DATA either way. */
#define LSMTP_SERVER_NORMALIZE_EOL 0x2u
/** Do not refuse clients that talk before the greeting (by default bytes
 *  fed before lsmtp_server_start get 554 5.5.0 and the session closes). */
#define LSMTP_SERVER_ALLOW_EARLY_TALKERS 0x4u

/** Bounds. Set with lsmtp_server_config_set_limit. */
typedef enum lsmtp_server_limit {
  LSMTP_SERVER_LIMIT_LINE = 0,       /* command line incl. CRLF: 2048 (512..65536) */
  LSMTP_SERVER_LIMIT_AUTH_LINE,      /* AUTH continuation line: 12288 (later use) */
  LSMTP_SERVER_LIMIT_TEXT_LINE,      /* DATA line counted as too long: 1000 */
  LSMTP_SERVER_LIMIT_MESSAGE_SIZE,   /* octets, advertised as SIZE: 10485760; 0 = none */
  LSMTP_SERVER_LIMIT_RECIPIENTS,     /* accepted RCPTs per message: 100 (then 452 4.5.3) */
  LSMTP_SERVER_LIMIT_ERRORS,         /* protocol errors, then 421 4.7.0: 20; 0 = none */
  LSMTP_SERVER_LIMIT_MESSAGES,       /* messages per session: 0 = unlimited */
  LSMTP_SERVER_LIMIT_JUNK_COMMANDS,  /* NOOP/RSET/VRFY/HELP before they count as errors: 100 */
  LSMTP_SERVER_LIMIT_OUTPUT,         /* pending output at which feed stops: 65536 */
  LSMTP_SERVER_LIMIT_COUNT_          /* number of limits; not a limit */
} lsmtp_server_limit;

/** Timeouts in milliseconds, one per session state (RFC 5321 §4.5.3.2).
 *  While the session waits for the client it reports IDLE or DATA_BLOCK;
 *  while it waits for a deferred host decision it reports how long the
 *  client waits for that reply (GREETING, MAIL, RCPT, DATA_INIT, DATA_TERM),
 *  so a host that is slower than that gives up (lsmtp_server_timeout). */
typedef enum lsmtp_server_timeout_kind {
  LSMTP_SERVER_TIMEOUT_GREETING = 0, /* deferred on_connect: 5 min (§4.5.3.2.1) */
  LSMTP_SERVER_TIMEOUT_MAIL,         /* deferred on_helo / on_mail: 5 min */
  LSMTP_SERVER_TIMEOUT_RCPT,         /* deferred on_rcpt: 5 min */
  LSMTP_SERVER_TIMEOUT_DATA_INIT,    /* deferred on_data_start: 2 min */
  LSMTP_SERVER_TIMEOUT_DATA_BLOCK,   /* waiting for message bytes: 3 min */
  LSMTP_SERVER_TIMEOUT_DATA_TERM,    /* deferred on_data_end: 10 min */
  LSMTP_SERVER_TIMEOUT_IDLE,         /* waiting for a command: 5 min (§4.5.3.2.7) */
  LSMTP_SERVER_TIMEOUT_COUNT_        /* number of timeouts; not a timeout */
} lsmtp_server_timeout_kind;

/** Create a configuration with the defaults documented above (hostname
 *  "localhost", all LSMTP_EXT_DEFAULT extensions, SMTP mode, strict).
 *  alloc may be NULL (default allocator); it is also used by sessions made
 *  from this config. Returns LSMTP_OK, LSMTP_ERR_INVALID (out NULL) or
 *  LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_server_config_new(lsmtp_server_config **out,
                                      const lsmtp_allocator *alloc);

/** Destroy a configuration; NULL does nothing. No session may use it any
 *  more. */
LSMTP_API void lsmtp_server_config_del(lsmtp_server_config *cfg);

/** The host name used in the greeting, the EHLO reply and 221/421 texts
 *  (copied; 1..255 printable ASCII octets without spaces).
 *  Returns LSMTP_OK, LSMTP_ERR_INVALID or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_server_config_set_hostname(lsmtp_server_config *cfg,
                                               const char *hostname);

/** The text after "220 <hostname> " in the greeting (copied; default
 *  "ESMTP" or "LMTP"; at most 512 octets; control bytes become spaces).
 *  Returns LSMTP_OK, LSMTP_ERR_INVALID or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_server_config_set_greeting(lsmtp_server_config *cfg,
                                               const char *text);

/** The LSMTP_EXT_* set to advertise (default LSMTP_EXT_DEFAULT). Reserved
 *  bits are ignored until their hooks exist; BINARYMIME is only advertised
 *  together with CHUNKING. Returns LSMTP_OK or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_server_config_set_extensions(lsmtp_server_config *cfg,
                                                 unsigned ext);

/** The LSMTP_SERVER_* behaviour flags (default 0). Returns LSMTP_OK or
 *  LSMTP_ERR_INVALID (unknown bits). */
LSMTP_API int lsmtp_server_config_set_flags(lsmtp_server_config *cfg,
                                            unsigned flags);

/** Set one bound (see lsmtp_server_limit for the defaults and ranges).
 *  Returns LSMTP_OK or LSMTP_ERR_INVALID (unknown limit or out of range). */
LSMTP_API int lsmtp_server_config_set_limit(lsmtp_server_config *cfg,
                                            lsmtp_server_limit which,
                                            uint64_t value);

/** Read one bound (0 for an unknown limit). */
LSMTP_API uint64_t lsmtp_server_config_get_limit(const lsmtp_server_config *cfg,
                                                 lsmtp_server_limit which);

/** Set one timeout in milliseconds (0 = no timer in that state).
 *  Returns LSMTP_OK or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_server_config_set_timeout(lsmtp_server_config *cfg,
                                              lsmtp_server_timeout_kind which,
                                              unsigned ms);

/** Set every timeout to the same value in milliseconds (e.g. for tests).
 *  Returns LSMTP_OK or LSMTP_ERR_INVALID (cfg NULL). */
LSMTP_API int lsmtp_server_config_set_all_timeouts(lsmtp_server_config *cfg,
                                                   unsigned ms);

/* ------------------------------------------------------------------ */
/* Session                                                            */

typedef struct lsmtp_server lsmtp_server;

/** A decision callback returns this (a positive value, not a status in
 *  lsmtp/status.h) to answer later with lsmtp_server_answer. Until then the
 *  session reads no further input; replies still leave in pipeline order. */
#define LSMTP_SERVER_DEFER 10

/** Passed to on_data_end in SMTP mode, where one answer covers every
 *  recipient. */
#define LSMTP_SERVER_ALL_RCPTS ((size_t)-1)

/** Log levels of on_log. */
typedef enum lsmtp_server_log_level {
  LSMTP_SERVER_LOG_ERROR = 0, /* the session failed (out of memory, abort) */
  LSMTP_SERVER_LOG_WARN,      /* the peer misbehaved or a limit was hit */
  LSMTP_SERVER_LOG_INFO,      /* one line per transaction and session end */
  LSMTP_SERVER_LOG_DEBUG      /* every command and reply code */
} lsmtp_server_log_level;

/** The host's side of the session. Every member may be NULL: a NULL
 *  decision callback accepts with the default reply, a NULL event callback
 *  is not told. Zero-initialise the struct ("= {0}") so members added in
 *  later versions start out NULL.
 *
 *  Decision callbacks (on_connect, on_helo, on_mail, on_rcpt,
 *  on_data_start, on_data_end) return:
 *   - LSMTP_OK: decided now. The reply is the default acceptance unless the
 *     callback called lsmtp_server_set_reply first; a reply code of 400 or
 *     more refuses (e.g. 550 5.7.1), and 421 also closes the session.
 *   - LSMTP_SERVER_DEFER: the host answers later with lsmtp_server_answer.
 *     Feed stops (returns LSMTP_PAUSED) after the command in question.
 *   - a negative status: abort. The session queues 421 4.3.0, closes, and
 *     every later call returns LSMTP_ERR_FATAL (feed first returns
 *     LSMTP_ERR_ABORTED). Any other value is treated as an abort too.
 *  Pointers given to callbacks are valid only during the call (copy what
 *  you keep). Callbacks must not call lsmtp_server_feed, _answer, _resume,
 *  _timeout, _shutdown or _del; they may call set_reply and the getters. */
typedef struct lsmtp_server_callbacks {
  /** The greeting is about to be sent (from lsmtp_server_start). Refuse
   *  with a 554 reply: then every command but QUIT gets 503 5.5.1 (RFC
   *  5321 §3.1); refuse with 421 to close at once. */
  int (*on_connect)(lsmtp_server *srv, void *user_data);

  /** HELO, EHLO (is_ehlo 1) or LHLO (is_ehlo 1) with a syntactically valid
   *  domain or address literal (name, len; not NUL-terminated). Any open
   *  transaction was reset already. Acceptance sends the standard reply
   *  (the host's text, if set, is ignored). */
  int (*on_helo)(lsmtp_server *srv, const char *name, size_t len, int is_ehlo,
                 void *user_data);

  /** MAIL FROM passed every session check (sequence, syntax, parameters
   *  advertised, SIZE within the limit). path->is_null for "<>". Default
   *  reply "250 2.1.0 Ok". */
  int (*on_mail)(lsmtp_server *srv, const lsmtp_path *path,
                 const lsmtp_mail_params *params, void *user_data);

  /** RCPT TO passed every session check, including the recipient limit.
   *  Default reply "250 2.1.5 Ok". An accepted recipient is remembered
   *  (lsmtp_server_rcpt). */
  int (*on_rcpt)(lsmtp_server *srv, const lsmtp_path *path,
                 const lsmtp_rcpt_params *params, void *user_data);

  /** DATA, or the first BDAT of a transaction, with at least one accepted
   *  recipient. Default reply "354 End data with <CR><LF>.<CR><LF>" (DATA;
   *  for BDAT acceptance sends nothing until the chunk is read). A refusal
   *  to BDAT is sent after the chunk was read and thrown away, and fails
   *  the transaction. */
  int (*on_data_start)(lsmtp_server *srv, void *user_data);

  /** Message bytes: dot-unstuffed DATA content or raw BDAT content, in
   *  order, in spans that point into the fed input (never copied). Returns
   *  LSMTP_OK, LSMTP_PAUSED (back-pressure: this span was taken; feed stops
   *  and returns LSMTP_PAUSED until lsmtp_server_resume), or a negative
   *  status to abort the session. Not called again for a message that the
   *  session itself refuses (see on_reset). */
  int (*on_data_chunk)(lsmtp_server *srv, const char *data, size_t len,
                       void *user_data);

  /** The whole message arrived (end of DATA or BDAT LAST). The host stores
   *  it durably before accepting: only then does the client get 250
   *  (default "250 2.0.0 Ok: queued"). Use 451 4.3.0 / 452 4.3.1 / 550 /
   *  554 to refuse. SMTP mode: called once, rcpt_index is
   *  LSMTP_SERVER_ALL_RCPTS. LMTP mode: called once per accepted recipient,
   *  rcpt_index 0..n-1 in RCPT order (lsmtp_server_rcpt), each answer is
   *  that recipient's reply. After the last answer the transaction ends. */
  int (*on_data_end)(lsmtp_server *srv, size_t rcpt_index, void *user_data);

  /** Event: an open transaction (after an accepted MAIL) ended without
   *  reaching on_data_end; discard what was stored for it. reason is
   *  LSMTP_OK (RSET, HELO/EHLO/LHLO, or a failed BDAT transaction ending),
   *  LSMTP_ERR_LIMIT (the message exceeds the size limit; called as soon as
   *  that is known, the message is still read and then refused with
   *  552 5.3.4), LSMTP_ERR_BARE_EOL (bare CR or LF in the message under the
   *  strict policy: refused with 550 5.6.0 at its end), LSMTP_ERR_NUL (a
   *  NUL byte in DATA, always refused with 550 5.6.0; BDAT may carry any
   *  byte), LSMTP_ERR_CLOSED
   *  (QUIT, shutdown, error limit, abort) or LSMTP_ERR_TIMEOUT. */
  void (*on_reset)(lsmtp_server *srv, int reason, void *user_data);

  /** Event: a log line (NUL-terminated, no newline, valid during the call).
   *  The library never writes to stdout/stderr itself. */
  void (*on_log)(lsmtp_server *srv, lsmtp_server_log_level level,
                 const char *message, void *user_data);

  /** Reserved for STARTTLS and AUTH hooks of later versions: leave NULL. */
  void (*reserved_[8])(void);
} lsmtp_server_callbacks;

/** Create a session. cfg must outlive it; callbacks (may be NULL) are
 *  copied; user_data is passed to every callback. Nothing is sent until
 *  lsmtp_server_start. Returns LSMTP_OK, LSMTP_ERR_INVALID or
 *  LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_server_new(lsmtp_server **out,
                               const lsmtp_server_config *cfg,
                               const lsmtp_server_callbacks *callbacks,
                               void *user_data);

/** Destroy a session; NULL does nothing. No callback is called. */
LSMTP_API void lsmtp_server_del(lsmtp_server *srv);

/** Start the session: asks on_connect and queues the greeting (220, or the
 *  refusal). Call it once, when the connection is up (or after an
 *  early-talker delay during which the host already feeds what arrives).
 *  Returns LSMTP_OK, LSMTP_PAUSED (on_connect deferred),
 *  LSMTP_ERR_STATE (called twice), or a fatal status. */
LSMTP_API int lsmtp_server_start(lsmtp_server *srv);

/** Feed bytes read from the client. Consumes as much as it can and sets
 *  *consumed (always <= len); the host keeps the rest and feeds it again
 *  later. Returns:
 *   - LSMTP_OK: everything was consumed;
 *   - LSMTP_PAUSED: stopped early because a decision is deferred (call
 *     lsmtp_server_answer), on_data_chunk paused (lsmtp_server_resume),
 *     the pending output reached LSMTP_SERVER_LIMIT_OUTPUT (write and
 *     lsmtp_server_consume), or the greeting was not sent yet and early
 *     talkers are allowed; stop reading the socket until then;
 *   - LSMTP_DONE: the session is over (want_close): write what is pending,
 *     then close; nothing more is consumed;
 *   - a fatal status (LSMTP_ERR_NOMEM, LSMTP_ERR_ABORTED, then
 *     LSMTP_ERR_FATAL on every later call). Pending output (a final 421)
 *     can still be written.
 *  Protocol errors of the client are not errors here: they become replies. */
LSMTP_API int lsmtp_server_feed(lsmtp_server *srv, const char *data, size_t len,
                                size_t *consumed);

/** Bytes waiting to be written: sets *data (valid until the next call on
 *  the session) and returns their number, 0 when none. */
LSMTP_API size_t lsmtp_server_pending(const lsmtp_server *srv,
                                      const char **data);

/** Mark n of the pending bytes as written (n <= lsmtp_server_pending).
 *  Returns LSMTP_OK or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_server_consume(lsmtp_server *srv, size_t n);

/** Non-zero once the session wants the connection closed (after QUIT's 221,
 *  any 421, an early talker's 554, or a fatal error). Write what is
 *  pending first. */
LSMTP_API int lsmtp_server_want_close(const lsmtp_server *srv);

/** Milliseconds the host should wait in the current state before calling
 *  lsmtp_server_timeout; 0 means no timer (not started, or closing). Re-arm
 *  after every call that consumed input or answered. */
LSMTP_API unsigned lsmtp_server_timeout_ms(const lsmtp_server *srv);

/** The state's timer expired: queues "421 4.4.2 <host> Error: timeout
 *  exceeded", resets any transaction (on_reset LSMTP_ERR_TIMEOUT), drops a
 *  pending decision and closes. Returns LSMTP_OK, or LSMTP_ERR_STATE when
 *  already closing. */
LSMTP_API int lsmtp_server_timeout(lsmtp_server *srv);

/** Ask the session to end gracefully: "421 4.3.2 <host> Service shutting
 *  down" is queued at the next command boundary, i.e. now when waiting for
 *  a command, otherwise after the current command or message got its reply
 *  (a message being received is finished and decided first). Returns
 *  LSMTP_OK (also when already closing), or LSMTP_ERR_STATE when called
 *  from inside a callback. */
LSMTP_API int lsmtp_server_shutdown(lsmtp_server *srv);

/** Answer a deferred decision. code 0 accepts with the default reply;
 *  otherwise code (200..599), enhanced ("x.y.z" of the same class, or NULL
 *  for a default one) and text (NULL for a default; "\n" separates lines)
 *  form the reply, as for lsmtp_server_set_reply. May run callbacks (in
 *  LMTP mode it asks on_data_end for the next recipient). Afterwards feed
 *  the rest of the input again. Returns LSMTP_OK, LSMTP_PAUSED (another
 *  decision is now deferred), LSMTP_ERR_STATE (nothing deferred),
 *  LSMTP_ERR_INVALID (bad code/enhanced/text; nothing changed) or a fatal
 *  status. */
LSMTP_API int lsmtp_server_answer(lsmtp_server *srv, int code,
                                  const char *enhanced, const char *text);

/** From inside a decision callback: the reply to use when it returns
 *  LSMTP_OK. code 200..599; for acceptance the code must be 2xx (354 for
 *  on_data_start); enhanced "x.y.z" with x matching the code's class, or
 *  NULL for a default; text NULL for the default text, at most 1024
 *  octets, "\n" separates lines. Returns LSMTP_OK, LSMTP_ERR_INVALID or
 *  LSMTP_ERR_STATE (not inside a decision callback). */
LSMTP_API int lsmtp_server_set_reply(lsmtp_server *srv, int code,
                                     const char *enhanced, const char *text);

/** Resume after on_data_chunk returned LSMTP_PAUSED; then feed the rest of
 *  the input again. Returns LSMTP_OK, LSMTP_PAUSED (paused again or a
 *  decision deferred), LSMTP_ERR_STATE (not paused) or a fatal status. */
LSMTP_API int lsmtp_server_resume(lsmtp_server *srv);

/* ---- Getters: valid between calls; strings NUL-terminated, owned by the
 * session, valid until the next feed/answer/resume/timeout/del. ---- */

/** The accepted HELO/EHLO/LHLO name, or NULL before one was accepted. */
LSMTP_API const char *lsmtp_server_helo(const lsmtp_server *srv);

/** Non-zero when the client greeted with EHLO or LHLO. */
LSMTP_API int lsmtp_server_is_esmtp(const lsmtp_server *srv);

/** The reverse-path mailbox of the open transaction ("" for <>), or NULL
 *  when no MAIL was accepted (also during an on_mail call). */
LSMTP_API const char *lsmtp_server_mail_from(const lsmtp_server *srv);

/** Number of accepted recipients of the open transaction. */
LSMTP_API size_t lsmtp_server_rcpt_count(const lsmtp_server *srv);

/** The i-th accepted recipient mailbox ("postmaster" for <postmaster>), or
 *  NULL when i is out of range. */
LSMTP_API const char *lsmtp_server_rcpt(const lsmtp_server *srv, size_t i);

/** Octets of the current (or last) message so far, after unstuffing. */
LSMTP_API uint64_t lsmtp_server_message_size(const lsmtp_server *srv);

/** LSMTP_DATA_SAW_* bits (lsmtp/data.h) of the current (or last) DATA
 *  message: lets the host refuse 8-bit, NUL or long lines if it wants. */
LSMTP_API unsigned lsmtp_server_data_seen(const lsmtp_server *srv);

/** Messages received so far in this session (the end of DATA or BDAT LAST
 *  was reached, whatever the verdict); LSMTP_SERVER_LIMIT_MESSAGES counts
 *  these. */
LSMTP_API uint64_t lsmtp_server_message_count(const lsmtp_server *srv);

LSMTP_END_DECLS

#endif
