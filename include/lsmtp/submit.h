/* Blocking message submission (RFC 6409) in one call: connect, EHLO,
 * AUTH, MAIL/RCPT/DATA, QUIT, per-recipient results. Built on the sans-I/O
 * client session (lsmtp/client.h) and a poll() loop; every wait is bounded
 * by a timeout. For programs that just want to send a message:
 *
 *   lsmtp_submit_options opts;
 *   lsmtp_submit_options_init(&opts);
 *   opts.host = "mail.example.org"; opts.from = "me@example.org";
 *   opts.tls = LSMTP_SUBMIT_TLS_STARTTLS;
 *   const char *to[] = {"you@example.net"};
 *   lsmtp_submit_source src = lsmtp_submit_source_buffer(msg, msg_len);
 *   lsmtp_submit_result *res = NULL;
 *   int rc = lsmtp_submit(&opts, to, 1, &src, &res);
 *   ... lsmtp_submit_result_rcpt_reply(res, 0) ...
 *   lsmtp_submit_result_del(res);
 *
 * Hosts with their own event loop drive lsmtp_client directly instead.
 * See docs/guide-submission.md. */
#ifndef LSMTP_SUBMIT_H
#define LSMTP_SUBMIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <lsmtp/address.h>
#include <lsmtp/alloc.h>
#include <lsmtp/client.h>
#include <lsmtp/export.h>
#include <lsmtp/net.h>
#include <lsmtp/reply.h>
#include <lsmtp/sasl.h>
#include <lsmtp/status.h>

LSMTP_BEGIN_DECLS

/* ---- TCP connect (lib/net/connect.c) ------------------------------------ */

/** Details of a connection attempt, for messages. */
typedef struct lsmtp_tcp_connect_info {
  int os_error;  /* errno of the last failed attempt (ECONNREFUSED...), 0 */
  int gai_error; /* getaddrinfo's EAI_* code when the name did not resolve */
  int attempts;  /* addresses tried */
  char peer[LSMTP_NET_ADDR_MAX]; /* connected to (or last tried): "[::1]:587" */
} lsmtp_tcp_connect_info;

/** Connect a TCP socket to host (a name, an IPv4 address, or an IPv6
 *  address with or without brackets) and port. Every address the name
 *  resolves to (getaddrinfo, IPv6 and IPv4, in its order) is tried in turn
 *  until one answers; timeout_ms (0: 30 s) bounds all attempts together,
 *  each address getting an equal share of the time left. The name lookup
 *  itself is the system resolver's and is bounded by its own settings
 *  (resolv.conf "timeout"/"attempts"), not by timeout_ms.
 *  On LSMTP_OK *fd_out is a connected, non-blocking, close-on-exec socket
 *  with TCP_NODELAY set (lsmtp writes whole command groups, so Nagle's
 *  algorithm would only add delay). info may be NULL.
 *  Returns LSMTP_OK, LSMTP_ERR_INVALID, LSMTP_ERR_DNS (the name did not
 *  resolve; info->gai_error says why, EAI_AGAIN being temporary),
 *  LSMTP_ERR_TIMEOUT (no address answered in time) or LSMTP_ERR_IO (every
 *  address refused or failed; info->os_error has the last errno). */
LSMTP_API int lsmtp_tcp_connect(const char *host, unsigned port,
                                uint32_t timeout_ms, int *fd_out,
                                lsmtp_tcp_connect_info *info);

/* ---- options ------------------------------------------------------------ */

/** Transport security (see "TLS" in docs/guide-submission.md). Every TLS
 *  mode verifies the server's certificate and host name unless
 *  tls_no_verify is set. In a build without TLS (lsmtp_tls_available() is
 *  0) every mode but NONE fails with LSMTP_ERR_UNSUPPORTED before
 *  connecting. */
typedef enum lsmtp_submit_tls {
  LSMTP_SUBMIT_TLS_NONE = 0, /* plain TCP (credentials need
                                allow_plaintext_auth) */
  LSMTP_SUBMIT_TLS_STARTTLS, /* RFC 3207 upgrade, required (port 587): a
                                server that does not offer or refuses it
                                gets QUIT and no MAIL (LSMTP_ERR_TLS) */
  LSMTP_SUBMIT_TLS_IMPLICIT, /* RFC 8314 TLS from the first byte (465) */
  LSMTP_SUBMIT_TLS_OPPORTUNISTIC /* relay style: STARTTLS when offered, else
                                    plaintext; once started, a failed
                                    handshake still fails (no fallback on
                                    the same connection) */
} lsmtp_submit_tls;

/** What a log line is about. */
typedef enum lsmtp_submit_log_kind {
  LSMTP_SUBMIT_LOG_INFO = 0, /* connecting, connected, a failure */
  LSMTP_SUBMIT_LOG_SENT,     /* a command line as written (no CRLF) */
  LSMTP_SUBMIT_LOG_RECEIVED  /* a reply line as read (no CRLF) */
} lsmtp_submit_log_kind;

/** Receives the dialogue, one line per call (NUL-terminated, valid only
 *  during the call). Credentials never appear: the argument of AUTH is
 *  "<redacted>" and so is every SASL response line; the message itself is
 *  summarised as "<message: N bytes>". Lines longer than 1000 bytes are
 *  cut. */
typedef void (*lsmtp_submit_log_cb)(void *user_data,
                                    lsmtp_submit_log_kind kind,
                                    const char *line);

/** Options of one submission. Initialise with lsmtp_submit_options_init,
 *  then set what you need; strings are only read during lsmtp_submit. */
typedef struct lsmtp_submit_options {
  const char *host;  /* server name or address (required) */
  unsigned port;     /* 0: 587 (RFC 6409 submission) */
  lsmtp_submit_tls tls;

  /* Each wait, in ms: the connect (all addresses together) and every
   * reply from the server; the timer restarts whenever bytes move.
   * 0: 30 s for the connect and RFC 5321 §4.5.3.2's values (2 to 10 min)
   * for the replies. */
  uint32_t timeout_ms;
  /* Upper bound of the whole call in ms, so that a server that trickles
   * bytes cannot keep it busy for long; 0 = none. */
  uint32_t total_timeout_ms;

  const char *helo_name; /* EHLO argument; NULL: "localhost" */
  const char *from;      /* reverse-path without <>; NULL or "": <> */

  /* AUTH (RFC 4954). Used when username or oauth_token is set; the
   * message is not sent when authentication fails. */
  const char *username;
  const char *password;    /* PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256 */
  const char *oauth_token; /* XOAUTH2, OAUTHBEARER */
  const char *authzid;     /* act as; NULL for none */
  lsmtp_sasl_mech auth_mech; /* LSMTP_SASL_NONE: the strongest offered
                                (lsmtp_sasl_choose) */
  /* Send credentials over a connection without TLS. Off by default:
   * lsmtp_submit then fails with LSMTP_ERR_INSECURE before connecting. */
  int allow_plaintext_auth;

  /* The message. body NONE lets lsmtp decide: a buffer source with 8-bit
   * bytes is sent with BODY=8BITMIME when the server offers it; other
   * sources are sent without BODY=. size_hint (0: the buffer's length or
   * a regular file's size, else unknown) becomes SIZE=. */
  lsmtp_body body;
  uint64_t size_hint;

  /* DSN (RFC 3461), sent only when the server offers DSN. */
  unsigned dsn_notify;  /* LSMTP_NOTIFY_* bits for every recipient; 0 none */
  lsmtp_dsn_ret dsn_ret;
  const char *envid;    /* ENVID=, printable ASCII; NULL for none */
  int requiretls;       /* RFC 8689 REQUIRETLS: needs a TLS mode (with
                           OPPORTUNISTIC, STARTTLS becomes required) and
                           certificate verification (else
                           LSMTP_ERR_INVALID before connecting), and a
                           server that offers REQUIRETLS (else
                           LSMTP_ERR_UNSUPPORTED, no MAIL sent) */

  lsmtp_submit_log_cb log;
  void *log_user_data;

  const lsmtp_allocator *alloc; /* NULL: the default allocator */

  /* TLS settings (used by every mode but NONE). */
  const char *tls_ca_file; /* trust anchors (PEM); NULL: the system bundle
                              LSMTP_TLS_DEFAULT_CA_FILE */
  int tls_no_verify;       /* 1: do not check the certificate or the name
                              (an explicit opt-out; an active attacker can
                              then read everything, credentials included) */

  /* The name the certificate must carry, also sent as SNI; NULL: host.
   * Needed when host is an IP address and verification is on (mbedTLS
   * cannot check IP-address names): without it lsmtp_submit fails with
   * LSMTP_ERR_INVALID before connecting. */
  const char *tls_name;

  void *reserved_[7]; /* keep NULL: room for later options */
} lsmtp_submit_options;

/** Fill opts with the defaults (everything zero/NULL: port 587, no TLS,
 *  RFC timeouts, no AUTH). */
LSMTP_API void lsmtp_submit_options_init(lsmtp_submit_options *opts);

/* ---- the message source ------------------------------------------------- */

/** Reads message bytes for lsmtp_submit: same contract as
 *  lsmtp_client_read_cb (fill buf with up to cap bytes and set *len;
 *  LSMTP_OK with *len > 0 for more, LSMTP_OK with 0 or LSMTP_DONE at the
 *  end, a negative status to abort). LSMTP_PAUSED is not allowed in a
 *  blocking call: it aborts the submission like an error. */
typedef int (*lsmtp_submit_read_cb)(void *user_data, char *buf, size_t cap,
                                    size_t *len);

/** Where the message comes from. Make one with the constructors below.
 *  The message is the header and body as RFC 5322 text; bare LF line ends
 *  are sent as CRLF and lines starting with "." are dot-stuffed, so a
 *  lone "." never ends it early. */
typedef struct lsmtp_submit_source {
  int kind_; /* private: which member below is used */
  const char *data;
  size_t len;
  FILE *file;
  int fd;
  lsmtp_submit_read_cb read;
  void *read_user_data;
} lsmtp_submit_source;

/** The message is len bytes at data (not copied; must stay valid during
 *  lsmtp_submit). */
LSMTP_API lsmtp_submit_source lsmtp_submit_source_buffer(const void *data,
                                                         size_t len);
/** The message is the rest of file, read to EOF (file stays open). A read
 *  error aborts the submission (LSMTP_ERR_IO). */
LSMTP_API lsmtp_submit_source lsmtp_submit_source_file(FILE *file);
/** The message is the rest of fd, read to EOF (fd stays open). A blocking
 *  fd that never ends blocks lsmtp_submit: the timeouts bound the server,
 *  not the source. */
LSMTP_API lsmtp_submit_source lsmtp_submit_source_fd(int fd);
/** The message comes from read(user_data, ...). */
LSMTP_API lsmtp_submit_source lsmtp_submit_source_callback(
    lsmtp_submit_read_cb read, void *user_data);

/* ---- the result ------------------------------------------------------------ */

typedef struct lsmtp_submit_result lsmtp_submit_result;

/** Submit one message to rcpts[0..n_rcpts) (mailboxes without <>).
 *  Blocks until the server has answered, at most the configured timeouts.
 *  Never raises SIGPIPE (sends use MSG_NOSIGNAL).
 *
 *  *out receives a result object (free it with lsmtp_submit_result_del)
 *  whenever the arguments were valid and memory sufficed, including when
 *  the submission failed: it says what happened to each recipient.
 *
 *  Returns the overall status, also lsmtp_submit_result_status():
 *  LSMTP_OK              the server took the message for at least one
 *                        recipient (others may have been refused: check
 *                        each one);
 *  LSMTP_ERR_REFUSED     refused permanently (5xx to the greeting, EHLO,
 *                        MAIL, DATA or the message, or to every recipient);
 *  LSMTP_ERR_TEMPFAIL    a temporary refusal (4xx; also when some
 *                        recipients got 5xx and the others 4xx);
 *  LSMTP_ERR_AUTH        the server refused the credentials (5xx to AUTH);
 *  LSMTP_ERR_INSECURE    credentials without TLS and allow_plaintext_auth
 *                        off: with TLS mode NONE nothing was sent and no
 *                        connection made; with OPPORTUNISTIC the server
 *                        offered no STARTTLS and only QUIT was sent;
 *  LSMTP_ERR_CERT        the server's certificate was refused (not
 *                        signed by a trusted CA, expired, or not for the
 *                        name): nothing but STARTTLS was sent in the clear;
 *  LSMTP_ERR_TLS         TLS could not be set up: STARTTLS required but
 *                        not offered or refused (QUIT, no MAIL), or the
 *                        handshake failed; temporary;
 *  LSMTP_ERR_UNSUPPORTED a TLS mode in a build without TLS, no AUTH or not
 *                        the mechanism asked for, or a needed extension
 *                        (SMTPUTF8, REQUIRETLS, 8BITMIME) not offered;
 *  LSMTP_ERR_DNS, LSMTP_ERR_IO, LSMTP_ERR_TIMEOUT (connect or a reply),
 *  LSMTP_ERR_CLOSED (the server hung up or said 421), LSMTP_ERR_BAD_REPLY,
 *  LSMTP_ERR_PROTOCOL, LSMTP_ERR_ABORTED (the source failed),
 *  LSMTP_ERR_SYNTAX / LSMTP_ERR_TOO_LONG / LSMTP_ERR_UTF8 / LSMTP_ERR_LIMIT
 *  (an address, ENVID or size the session refused to send),
 *  LSMTP_ERR_INVALID (bad arguments: *out stays NULL; or TLS settings that
 *  cannot work, found before connecting: an IP address to verify without
 *  tls_name, an unreadable CA file, REQUIRETLS without TLS or without
 *  verification; then *out says why), LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_submit(const lsmtp_submit_options *opts,
                           const char *const *rcpts, size_t n_rcpts,
                           const lsmtp_submit_source *message,
                           lsmtp_submit_result **out);

/** Destroy a result; NULL does nothing. */
LSMTP_API void lsmtp_submit_result_del(lsmtp_submit_result *res);

/** The overall status (what lsmtp_submit returned). */
LSMTP_API int lsmtp_submit_result_status(const lsmtp_submit_result *res);

/** Non-zero when trying again later may succeed: a 4xx, a timeout, a
 *  connection that failed or was lost, a temporary DNS failure. Zero on
 *  success and for permanent failures. */
LSMTP_API int lsmtp_submit_result_temporary(const lsmtp_submit_result *res);

/** The reply that decided the overall status: on LSMTP_OK the server's
 *  reply to the end of the message; otherwise the reply that refused
 *  (greeting, EHLO, AUTH, MAIL, DATA, ...), or NULL when none did (the
 *  connection failed, or every recipient was refused: see each one).
 *  Valid while res lives. */
LSMTP_API const lsmtp_reply *lsmtp_submit_result_reply(
    const lsmtp_submit_result *res);

/** The command lsmtp_submit_result_reply answers ("GREETING", "EHLO",
 *  "STARTTLS", "AUTH", "MAIL", "DATA", ".", "BDAT", ...), or "" when there
 *  is none. */
LSMTP_API const char *lsmtp_submit_result_verb(const lsmtp_submit_result *res);

/** A one-line explanation of a failure for people ("connect to
 *  127.0.0.1:587: Connection refused", "the server offers no AUTH"); ""
 *  on success. Valid while res lives. */
LSMTP_API const char *lsmtp_submit_result_detail(const lsmtp_submit_result *res);

/** The address connected to ("[::1]:587"), or the last one tried; "" when
 *  the name did not resolve. */
LSMTP_API const char *lsmtp_submit_result_peer(const lsmtp_submit_result *res);

/** The TLS protocol version ("TLSv1.2") and cipher suite
 *  ("TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384") of the connection; "" when
 *  no TLS handshake completed. Static strings. */
LSMTP_API const char *lsmtp_submit_result_tls_version(
    const lsmtp_submit_result *res);
LSMTP_API const char *lsmtp_submit_result_tls_cipher(
    const lsmtp_submit_result *res);

/** The name the server's certificate was verified for (tls_name or host);
 *  "" without TLS or with tls_no_verify. Valid while res lives. */
LSMTP_API const char *lsmtp_submit_result_tls_verified_name(
    const lsmtp_submit_result *res);

/** errno of a failed connect or socket call (0 otherwise). */
LSMTP_API int lsmtp_submit_result_os_error(const lsmtp_submit_result *res);

/** The number of recipients (n_rcpts), and how many the server took the
 *  message for. */
LSMTP_API size_t lsmtp_submit_result_rcpt_count(const lsmtp_submit_result *res);
LSMTP_API size_t lsmtp_submit_result_accepted(const lsmtp_submit_result *res);

/** Recipient i's address as given (NULL when i is out of range). */
LSMTP_API const char *lsmtp_submit_result_rcpt_address(
    const lsmtp_submit_result *res, size_t i);

/** What happened to recipient i: LSMTP_OK (the server took the message
 *  for it), LSMTP_ERR_REFUSED / LSMTP_ERR_TEMPFAIL (its RCPT was refused,
 *  or the message was refused after it was accepted), or the overall
 *  failure status when the session ended before that was settled.
 *  LSMTP_ERR_INVALID when i is out of range. */
LSMTP_API int lsmtp_submit_result_rcpt_status(const lsmtp_submit_result *res,
                                              size_t i);

/** The server's reply to RCPT for recipient i (code, enhanced code, text),
 *  or NULL when it never answered (or i is out of range). Valid while res
 *  lives. */
LSMTP_API const lsmtp_reply *lsmtp_submit_result_rcpt_reply(
    const lsmtp_submit_result *res, size_t i);

LSMTP_END_DECLS

#endif
