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
 *     if (lsmtp_server_starttls_pending(srv)) {  // after 220 to STARTTLS
 *       drop unread input; TLS handshake;
 *       lsmtp_server_tls_started(srv, version, cipher);
 *     }
 *     arm_timer(lsmtp_server_timeout_ms(srv));
 *
 * STARTTLS (RFC 3207) and AUTH (RFC 4954) are states of the session; the
 * TLS itself (lsmtp/tls.h) sits between the socket and the session and is
 * the host's to run. See "STARTTLS and AUTH" in docs/server-session.md.
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
/* LSMTP_EXT_STARTTLS is advertised after EHLO/LHLO while TLS is not active
 * on the session (the host must be able to run the handshake: see
 * lsmtp_server_starttls_pending). AUTH is advertised when the session has an
 * on_auth callback (the bit itself is not needed) and the connection is
 * secure or LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH is set. REQUIRETLS is
 * reserved: the setter accepts it but it is not advertised. */
/** The default set: PIPELINING through HELP; not STARTTLS (it needs a
 *  certificate), not AUTH, not REQUIRETLS. */
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
/** Policy: MAIL and AUTH before TLS get 530 5.7.0 "Must issue a STARTTLS
 *  command first" (RFC 3207 §4), and AUTH is not advertised before TLS.
 *  Pair it with LSMTP_EXT_STARTTLS (or implicit TLS). */
#define LSMTP_SERVER_REQUIRE_TLS 0x8u
/** Offer AUTH (PLAIN, LOGIN: the password travels readable) also on a
 *  connection without TLS. Off by default: then AUTH is only advertised
 *  under TLS, and AUTH before TLS gets 538 5.7.11. */
#define LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH 0x10u
/** Policy (submission, RFC 6409): MAIL before a successful AUTH gets
 *  530 5.7.0 "Authentication required". */
#define LSMTP_SERVER_REQUIRE_AUTH 0x20u
/** Let a client authenticate as one identity and ask to act as another
 *  (a SASL authorization identity that differs from the authentication
 *  identity; RFC 4422 §2). Off by default: such a request gets 535 5.7.8
 *  without asking on_auth. With the flag, on_auth sees the authzid and
 *  decides whether that user may act as it. */
#define LSMTP_SERVER_ALLOW_PROXY_AUTH 0x40u

/** Bounds. Set with lsmtp_server_config_set_limit. */
typedef enum lsmtp_server_limit {
  LSMTP_SERVER_LIMIT_LINE = 0,       /* command line incl. CRLF: 2048 (512..65536) */
  LSMTP_SERVER_LIMIT_AUTH_LINE,      /* AUTH continuation line incl. CRLF: 12288
                                        (512..1048576; RFC 4954 §4); longer
                                        lines get 500 5.5.6 */
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
  LSMTP_SERVER_TIMEOUT_MAIL,         /* deferred on_helo / on_mail / on_auth: 5 min */
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

/** The LSMTP_EXT_* set to advertise (default LSMTP_EXT_DEFAULT).
 *  REQUIRETLS is accepted but not advertised yet, AUTH depends on on_auth
 *  (see above); BINARYMIME is only advertised together with CHUNKING.
 *  Returns LSMTP_OK or LSMTP_ERR_INVALID. */
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
 *  on_data_start, on_data_end, on_auth) return:
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
   *  advertised, SIZE within the limit, the TLS/AUTH policies).
   *  path->is_null for "<>". params->auth (AUTH=, RFC 4954 §5) is accepted
   *  when AUTH is offered but only passed on after a successful AUTH;
   *  otherwise it is ignored (ptr NULL). Default reply "250 2.1.0 Ok". */
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

  /** AUTH (RFC 4954): the client completed a SASL exchange (PLAIN or
   *  LOGIN) and the host decides whether the credentials are right.
   *  Non-NULL means AUTH is offered (see LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH).
   *  mech is "PLAIN" or "LOGIN"; authzid is the identity the client asks to
   *  act as ("" when none; with a non-empty authzid other than authcid only
   *  when LSMTP_SERVER_ALLOW_PROXY_AUTH is set); authcid is the user name;
   *  password[0..password_len) the password (also NUL-terminated). All are
   *  well-formed UTF-8 without NUL. The password is wiped as soon as the
   *  callback returns: a host that defers must copy it (and wipe its copy).
   *  A decision callback (see above) with two extra returns: LSMTP_ERR_AUTH
   *  refuses with 535 5.7.8 and LSMTP_ERR_TEMPFAIL with 454 4.7.0, without
   *  aborting. Default acceptance "235 2.7.0 Authentication successful";
   *  refuse with a 535 5.7.8 (wrong credentials, counted toward
   *  LSMTP_SERVER_LIMIT_ERRORS) or 454 4.7.0 reply. */
  int (*on_auth)(lsmtp_server *srv, const char *mech, const char *authzid,
                 const char *authcid, const char *password, size_t password_len,
                 void *user_data);

  /** Reserved for hooks of later versions: leave NULL. */
  void (*reserved_[7])(void);
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
 *     talkers are allowed; stop reading the socket until then. Also
 *     returned when STARTTLS was accepted (lsmtp_server_starttls_pending):
 *     then everything after the STARTTLS line was consumed and thrown
 *     away, and so is anything fed until lsmtp_server_tls_started;
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
 *  pending decision and closes. While the TLS handshake is pending nothing
 *  is queued (the client expects TLS, not a plaintext reply): it closes. Returns LSMTP_OK, or LSMTP_ERR_STATE when
 *  already closing. */
LSMTP_API int lsmtp_server_timeout(lsmtp_server *srv);

/** Ask the session to end gracefully: "421 4.3.2 <host> Service shutting
 *  down" is queued at the next command boundary, i.e. now when waiting for
 *  a command (also inside an AUTH exchange, which is abandoned), otherwise
 *  after the current command or message got its reply (a message being
 *  received is finished and decided first; after STARTTLS, once
 *  lsmtp_server_tls_started was called, so the 421 goes out encrypted). Returns
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

/* ---- TLS (RFC 3207 STARTTLS, RFC 8314 implicit TLS) ---- */

/** Non-zero from the moment the session accepted STARTTLS ("220 2.0.0
 *  Ready to start TLS" is pending output) until lsmtp_server_tls_started.
 *  The host then: writes the pending output in the clear; throws away any
 *  input it read but did not feed (the session already threw away what it
 *  was fed after the STARTTLS line: RFC 3207 §4.2, CVE-2011-0411); runs the
 *  TLS handshake on the connection (lsmtp_tls_*); and calls
 *  lsmtp_server_tls_started. From then on every byte in and out goes
 *  through TLS. If the handshake fails, close the connection and
 *  lsmtp_server_del the session (nothing more can be said in the clear). */
LSMTP_API int lsmtp_server_starttls_pending(const lsmtp_server *srv);

/** TLS is up on the connection. Call it either (a) after STARTTLS, when
 *  lsmtp_server_starttls_pending and the handshake completed, or (b) before
 *  lsmtp_server_start for implicit TLS (port 465, RFC 8314), after the
 *  handshake. version and cipher (e.g. lsmtp_tls_version / lsmtp_tls_cipher;
 *  NULL for unknown) are copied for logs and Received: fields (at most 63
 *  octets each; control bytes, spaces and parentheses become '?').
 *  After STARTTLS the session forgets what it knew (RFC 3207 §4.2): the
 *  HELO/EHLO name, any AUTH; the client must send EHLO again (MAIL gets
 *  503 until then), and STARTTLS is neither advertised nor accepted again.
 *  Returns LSMTP_OK, LSMTP_ERR_STATE (no STARTTLS pending and the session
 *  already started, TLS already active, or called from a callback),
 *  LSMTP_ERR_INVALID or a fatal status. */
LSMTP_API int lsmtp_server_tls_started(lsmtp_server *srv, const char *version,
                                       const char *cipher);

/** Non-zero once TLS is active (lsmtp_server_tls_started was called). */
LSMTP_API int lsmtp_server_is_tls(const lsmtp_server *srv);

/** The TLS version and cipher given to lsmtp_server_tls_started ("" when
 *  unknown), or NULL without TLS. */
LSMTP_API const char *lsmtp_server_tls_version(const lsmtp_server *srv);
LSMTP_API const char *lsmtp_server_tls_cipher(const lsmtp_server *srv);

/** Octets the client sent after STARTTLS that were thrown away unread
 *  (plaintext pipelined behind STARTTLS: an injection attempt or a broken
 *  client). Each discard is also logged (LSMTP_SERVER_LOG_WARN). */
LSMTP_API uint64_t lsmtp_server_discarded(const lsmtp_server *srv);

/* ---- AUTH (RFC 4954) ---- */

/** The authentication identity (user name) of a successful AUTH, or NULL
 *  before one (and again after STARTTLS, which forgets it). */
LSMTP_API const char *lsmtp_server_auth_id(const lsmtp_server *srv);

/** The authorization identity of a successful AUTH: the identity the
 *  client acts as, "" when it asked for none (act as lsmtp_server_auth_id);
 *  NULL before a successful AUTH. */
LSMTP_API const char *lsmtp_server_auth_authzid(const lsmtp_server *srv);

/** The "with" keyword for a Received: field (RFC 3848, RFC 6531) of the
 *  current transaction: "SMTP", "ESMTP", "ESMTPS" (TLS), "ESMTPA" (AUTH),
 *  "ESMTPSA", the "LMTP..." forms in LMTP mode, and "UTF8SMTP..." /
 *  "UTF8LMTP..." when MAIL had SMTPUTF8. Static string. */
LSMTP_API const char *lsmtp_server_protocol(const lsmtp_server *srv);

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
