/* The default I/O layer (optional): a small event loop (epoll on Linux,
 * poll() elsewhere), timers on a monotonic clock the loop owns, file
 * descriptor watchers, listening-socket helpers, and lsmtp_net_server, the
 * glue that drives one sans-I/O server session per accepted connection.
 *
 * Hosts that have their own loop do not need any of this: see
 * docs/guide-receiver.md and examples/embed-server/main.c.
 *
 * Threading: a loop and everything attached to it belong to one thread.
 * Nothing here installs signal handlers or writes to stdout/stderr; logging
 * goes through a callback. */
#ifndef LSMTP_NET_H
#define LSMTP_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <lsmtp/alloc.h>
#include <lsmtp/export.h>
#include <lsmtp/server.h>
#include <lsmtp/tls.h>

LSMTP_BEGIN_DECLS

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

/** Severity of a log message from the I/O layer. */
typedef enum lsmtp_net_log_level {
  LSMTP_NET_LOG_ERROR = 0, /* something failed that the operator must see */
  LSMTP_NET_LOG_WARN,      /* a peer misbehaved or a limit was hit */
  LSMTP_NET_LOG_INFO,      /* one line per connection (open/close) */
  LSMTP_NET_LOG_DEBUG      /* everything else */
} lsmtp_net_log_level;

/** Receives one log message (a NUL-terminated line without newline, valid
 *  only during the call). */
typedef void (*lsmtp_net_log_cb)(void *user_data, lsmtp_net_log_level level,
                                 const char *msg);

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

typedef struct lsmtp_loop lsmtp_loop;

/** Create a loop. alloc may be NULL (default allocator); it must outlive the
 *  loop. The backend is epoll on Linux and poll() elsewhere (a build with
 *  LSMTP_NET_FORCE_POLL defined uses poll() everywhere).
 *  Returns LSMTP_OK, LSMTP_ERR_NOMEM or LSMTP_ERR_IO (epoll_create failed). */
LSMTP_API int lsmtp_loop_new(lsmtp_loop **out, const lsmtp_allocator *alloc);

/** Destroy the loop. Watchers, timers and servers still attached must have
 *  been deleted first (lsmtp_net_server_del, lsmtp_loop_io_del,
 *  lsmtp_loop_timer_del). NULL does nothing. */
LSMTP_API void lsmtp_loop_del(lsmtp_loop *loop);

/** Run until lsmtp_loop_stop() is called (from a callback or a signal
 *  watcher). Returns LSMTP_OK after a stop, or LSMTP_ERR_IO when the
 *  backend's wait fails for a reason other than EINTR. */
LSMTP_API int lsmtp_loop_run(lsmtp_loop *loop);

/** Run one iteration: wait at most timeout_ms for I/O (-1: until something
 *  happens; 0: do not block; the wait is also cut short by the nearest
 *  timer), then dispatch ready watchers and due timers.
 *  Returns LSMTP_OK or LSMTP_ERR_IO. */
LSMTP_API int lsmtp_loop_run_once(lsmtp_loop *loop, int timeout_ms);

/** Make lsmtp_loop_run() return after the current iteration. Safe to call
 *  from any callback of this loop. */
LSMTP_API void lsmtp_loop_stop(lsmtp_loop *loop);

/** The loop's idea of now: milliseconds on the monotonic clock, read once
 *  per iteration (callbacks of one iteration all see the same value). */
LSMTP_API uint64_t lsmtp_loop_now(const lsmtp_loop *loop);

/** Set the log callback of the loop and of everything attached to it.
 *  NULL silences it (the default). */
LSMTP_API void lsmtp_loop_set_log(lsmtp_loop *loop, lsmtp_net_log_cb cb,
                                  void *user_data);

/** The most detailed level passed to the log callback (default
 *  LSMTP_NET_LOG_INFO); messages above it are not even formatted. */
LSMTP_API void lsmtp_loop_set_log_level(lsmtp_loop *loop,
                                        lsmtp_net_log_level level);

/* ---- timers ---- */

typedef struct lsmtp_timer lsmtp_timer;

/** Called when a timer expires. The timer is stopped at that point; the
 *  callback may restart or delete it. */
typedef void (*lsmtp_timer_cb)(lsmtp_timer *timer, void *user_data);

/** Create a stopped one-shot timer. Returns LSMTP_OK or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_loop_timer_new(lsmtp_loop *loop, lsmtp_timer **out,
                                   lsmtp_timer_cb cb, void *user_data);

/** (Re)start the timer to fire delay_ms after lsmtp_loop_now(). Timers that
 *  expire in the same iteration fire in deadline order, and timers with the
 *  same deadline in the order they were started. Returns LSMTP_OK or
 *  LSMTP_ERR_NOMEM (the timer queue could not grow). */
LSMTP_API int lsmtp_loop_timer_start(lsmtp_timer *timer, uint64_t delay_ms);

/** Stop the timer; stopping a stopped timer does nothing. */
LSMTP_API void lsmtp_loop_timer_stop(lsmtp_timer *timer);

/** Non-zero while the timer is started and has not fired. */
LSMTP_API int lsmtp_loop_timer_active(const lsmtp_timer *timer);

/** Stop and destroy the timer. NULL does nothing. Safe inside its own
 *  callback. */
LSMTP_API void lsmtp_loop_timer_del(lsmtp_timer *timer);

/* ---- file descriptor watchers (signal self-pipes, signalfd, ...) ---- */

#define LSMTP_IO_READ 0x1u  /* readable, or hung up / error */
#define LSMTP_IO_WRITE 0x2u /* writable */

typedef struct lsmtp_io lsmtp_io;

/** Called when the descriptor is ready; events holds LSMTP_IO_* bits (an
 *  error or hang-up is reported as readable, so the read sees it). */
typedef void (*lsmtp_io_cb)(lsmtp_io *io, int fd, unsigned events,
                            void *user_data);

/** Watch fd (which the caller keeps owning and closes after
 *  lsmtp_loop_io_del) for the LSMTP_IO_* events in events.
 *  Returns LSMTP_OK, LSMTP_ERR_NOMEM, LSMTP_ERR_INVALID (fd < 0) or
 *  LSMTP_ERR_IO (the backend refused the descriptor). */
LSMTP_API int lsmtp_loop_io_new(lsmtp_loop *loop, lsmtp_io **out, int fd,
                                unsigned events, lsmtp_io_cb cb,
                                void *user_data);

/** Change the events watched (0 pauses the watcher).
 *  Returns LSMTP_OK or LSMTP_ERR_IO. */
LSMTP_API int lsmtp_loop_io_set(lsmtp_io *io, unsigned events);

/** Stop watching and destroy the watcher (the fd stays open). NULL does
 *  nothing. Safe inside its own callback. */
LSMTP_API void lsmtp_loop_io_del(lsmtp_io *io);

/* ------------------------------------------------------------------ */
/* Addresses and listening sockets                                     */
/* ------------------------------------------------------------------ */

/** Longest text lsmtp_net_addr_format writes, NUL included
 *  ("[ffff:...:255.255.255.255%scope]:65535"). */
#define LSMTP_NET_ADDR_MAX 80

/** Parse "ADDR:PORT" where ADDR is a numeric IPv4 address
 *  ("127.0.0.1:2525") or a bracketed numeric IPv6 address
 *  ("[::1]:2525"); PORT is 0..65535 (0: any free port). No name lookup.
 *  Fills *out (zeroed first) and *out_len. Returns LSMTP_OK or
 *  LSMTP_ERR_SYNTAX. */
LSMTP_API int lsmtp_net_addr_parse(const char *text,
                                   struct sockaddr_storage *out,
                                   socklen_t *out_len);

/** Write an IPv4 or IPv6 socket address as "1.2.3.4:25" or "[::1]:25"
 *  (the form lsmtp_net_addr_parse reads) into buf, NUL-terminated.
 *  Returns the length written, or 0 when cap is too small or the family is
 *  neither (then buf holds "" if cap > 0). */
LSMTP_API size_t lsmtp_net_addr_format(const struct sockaddr *sa,
                                       socklen_t len, char *buf, size_t cap);

/** Create a non-blocking, close-on-exec listening TCP socket bound to
 *  text ("ADDR:PORT", as lsmtp_net_addr_parse), with SO_REUSEADDR and, for
 *  IPv6, IPV6_V6ONLY. backlog <= 0 picks SOMAXCONN.
 *  Returns LSMTP_OK with *fd_out, LSMTP_ERR_SYNTAX (bad text) or
 *  LSMTP_ERR_IO (socket/bind/listen failed; errno is kept for the caller's
 *  message: EADDRINUSE, EACCES, ...). */
LSMTP_API int lsmtp_net_listen(const char *text, int backlog, int *fd_out);

/* ------------------------------------------------------------------ */
/* lsmtp_net_server: listeners + one server session per connection     */
/* ------------------------------------------------------------------ */

/** Size of the read buffer shared by all connections of a server: each
 *  read takes up to this much. Input a session did not consume (it waits
 *  for a deferred answer) is kept per connection and reading stops. */
#define LSMTP_NET_READ_CHUNK 65536

/** Default delay between the end of the grace period of a shutdown (or a
 *  session's want_close) and the forced close of connections that still
 *  have not finished, in ms. */
#define LSMTP_NET_LINGER_MS 2000

typedef struct lsmtp_net_server lsmtp_net_server;
typedef struct lsmtp_net_conn lsmtp_net_conn;

/** Host hooks of a net server. Every member may be NULL. Zero-initialise
 *  the struct so members added later start out NULL. */
typedef struct lsmtp_net_server_hooks {
  /** A connection was accepted (below the client limit). *session_user_data
   *  is the user_data the session's callbacks will get; it starts out as
   *  conn itself. Return LSMTP_OK to go on (the session is created and
   *  its greeting sent), LSMTP_ERR_LIMIT to answer "421 4.7.0 Too many
   *  connections" and close, or another negative status to close at once.
   *  When it returned LSMTP_OK, on_close is called exactly once later. */
  int (*on_accept)(lsmtp_net_conn *conn, void **session_user_data,
                   void *user_data);

  /** The connection is closing; its session still exists (getters work;
   *  it is NULL only when creating it failed) and is destroyed right
   *  after. reason: LSMTP_OK (the session ended: QUIT, 421, ...),
   *  LSMTP_ERR_CLOSED (the client closed or reset the connection first),
   *  LSMTP_ERR_IO (a socket error), LSMTP_ERR_TIMEOUT (a session or TLS
   *  handshake timeout, or the shutdown grace period and linger ran out),
   *  LSMTP_ERR_TLS (the TLS handshake or a TLS record failed),
   *  LSMTP_ERR_UNSUPPORTED (the session accepted STARTTLS but the net
   *  server has no TLS configuration), LSMTP_ERR_NOMEM, or the fatal status
   *  the session returned. Free per-session state here (and discard a
   *  message not yet acknowledged). */
  void (*on_close)(lsmtp_net_conn *conn, int reason, void *session_user_data,
                   void *user_data);

  /** Protocol trace: bytes read from (from_client 1) or written to the
   *  client, as they pass the socket; on a TLS connection the plaintext
   *  as it passes between the TLS filter and the session (the handshake
   *  itself is not traced). For -v style logging; NULL costs nothing. */
  void (*on_trace)(lsmtp_net_conn *conn, int from_client, const char *data,
                   size_t len, void *user_data);

  /** After lsmtp_net_server_shutdown: the last connection closed (or there
   *  was none). Typically calls lsmtp_loop_stop. */
  void (*on_drained)(lsmtp_net_server *ns, void *user_data);

  /** A TLS handshake ended (after STARTTLS, or first thing on an
   *  implicit-TLS listener). status is LSMTP_OK (lsmtp_net_conn_tls gives
   *  the version and cipher; the session was told), LSMTP_ERR_TLS (the
   *  handshake failed; message is mbedTLS's text), LSMTP_ERR_TIMEOUT (the
   *  client did not finish it in time) or LSMTP_ERR_NOMEM. After a failure
   *  the connection is closed right after the call (on_close follows, with
   *  the same status). Not called when the connection ends otherwise
   *  during the handshake (the client hangs up, a shutdown): on_close
   *  tells. message is "" on success; valid during the call. */
  void (*on_tls)(lsmtp_net_conn *conn, int status, const char *message,
                 void *session_user_data, void *user_data);

  /** Reserved for later hooks: leave NULL. */
  void (*reserved_[3])(void);
} lsmtp_net_server_hooks;

/** Create a net server on loop. cfg (must outlive the net server) and
 *  callbacks (copied; may be NULL) are used for every session; hooks
 *  (copied; may be NULL) and user_data are the host's. Nothing listens
 *  until lsmtp_net_server_listen or _adopt. Allocates through the loop's
 *  allocator. Returns LSMTP_OK, LSMTP_ERR_INVALID or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_net_server_new(lsmtp_net_server **out, lsmtp_loop *loop,
                                   const lsmtp_server_config *cfg,
                                   const lsmtp_server_callbacks *callbacks,
                                   const lsmtp_net_server_hooks *hooks,
                                   void *user_data);

/** Close every listener and connection at once (calling on_close for each,
 *  reason LSMTP_ERR_CLOSED) and destroy the net server. NULL does nothing.
 *  Not from inside one of its own callbacks. */
LSMTP_API void lsmtp_net_server_del(lsmtp_net_server *ns);

/** Bind a listener (lsmtp_net_listen) and start accepting on it. bound
 *  (may be NULL) receives the address actually bound, e.g. the port chosen
 *  for "127.0.0.1:0" (cap LSMTP_NET_ADDR_MAX suffices). Returns LSMTP_OK,
 *  LSMTP_ERR_SYNTAX, LSMTP_ERR_IO (errno kept), LSMTP_ERR_NOMEM or
 *  LSMTP_ERR_STATE (after shutdown). */
LSMTP_API int lsmtp_net_server_listen(lsmtp_net_server *ns, const char *text,
                                      char *bound, size_t cap);

/** Accept on a listening socket the host created (e.g. passed by a service
 *  manager). It is made non-blocking; the net server closes it when done.
 *  Returns LSMTP_OK, LSMTP_ERR_INVALID, LSMTP_ERR_IO, LSMTP_ERR_NOMEM or
 *  LSMTP_ERR_STATE. */
LSMTP_API int lsmtp_net_server_adopt(lsmtp_net_server *ns, int fd);

/** Limit concurrent connections (0: no limit; default 1000). A connection
 *  over the limit gets "421 4.7.0 Too many connections" and is closed
 *  without creating a session (on an implicit-TLS listener it is closed
 *  without a word: its client expects a TLS handshake). */
LSMTP_API void lsmtp_net_server_set_max_clients(lsmtp_net_server *ns,
                                                size_t max);

/** Connections currently open. */
LSMTP_API size_t lsmtp_net_server_conn_count(const lsmtp_net_server *ns);

/** Graceful shutdown: close the listeners now; let sessions go on for
 *  grace_ms; then ask each remaining session to end (lsmtp_server_shutdown:
 *  421 4.3.2 at its next command boundary) and, LSMTP_NET_LINGER_MS later,
 *  close whatever is still open. on_drained is called (from the loop) once
 *  no connection is left. Calling it again only shortens the grace period.
 *  Returns LSMTP_OK or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_net_server_shutdown(lsmtp_net_server *ns,
                                        unsigned grace_ms);

/** Wait ms milliseconds after accepting a plaintext connection before the
 *  greeting (0, the default, greets at once). A client that talks during
 *  the wait is an "early talker" (spam software that does not wait for the
 *  220): unless the server config has LSMTP_SERVER_ALLOW_EARLY_TALKERS its
 *  session answers 554 5.5.0 and the connection closes. Postfix's
 *  postscreen calls this the pregreet test. Implicit-TLS listeners do not
 *  wait (the handshake comes first). Returns LSMTP_OK or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_net_server_set_greet_delay(lsmtp_net_server *ns,
                                               unsigned ms);

/* ---- TLS: STARTTLS (RFC 3207) and implicit TLS (RFC 8314) ---- */

/** Default limit on the time a client has to complete a TLS handshake, in
 *  ms (see lsmtp_net_server_set_tls_timeout). */
#define LSMTP_NET_TLS_HANDSHAKE_MS 60000u

/** Listener flag: implicit TLS (RFC 8314 §3, "port 465"). The TLS handshake
 *  comes first; the session starts (greeting) once it completed, already
 *  marked secure (lsmtp_server_tls_started). */
#define LSMTP_NET_LISTEN_TLS 0x1u

/** Give the net server a server-role TLS configuration (lsmtp_tls.h; it
 *  must hold a certificate and key, and outlive the net server; NULL
 *  removes it). With it, a session that accepts STARTTLS (advertise
 *  LSMTP_EXT_STARTTLS in the session config) gets its TLS handshake: the
 *  glue writes the 220 in the clear, throws away every byte it read but
 *  did not feed (RFC 3207 §4.2, CVE-2011-0411), runs the handshake and
 *  then tells the session (lsmtp_server_tls_started); from then on all
 *  bytes pass through the filter, and an orderly close sends close_notify.
 *  It also enables LSMTP_NET_LISTEN_TLS listeners. Connections already
 *  open keep the configuration they started with. Returns LSMTP_OK,
 *  LSMTP_ERR_INVALID (ns NULL) or LSMTP_ERR_STATE (after shutdown). */
LSMTP_API int lsmtp_net_server_set_tls(lsmtp_net_server *ns,
                                       lsmtp_tls_config *tls);

/** Limit the TLS handshake to ms milliseconds (default
 *  LSMTP_NET_TLS_HANDSHAKE_MS; 0 restores it). After STARTTLS the limit is
 *  the smaller of this and the session's own timeout of that moment.
 *  A client that takes longer is disconnected (nothing can be said: the
 *  client expects TLS), reason LSMTP_ERR_TIMEOUT. */
LSMTP_API void lsmtp_net_server_set_tls_timeout(lsmtp_net_server *ns,
                                                unsigned ms);

/** As lsmtp_net_server_listen, with LSMTP_NET_LISTEN_* flags.
 *  LSMTP_NET_LISTEN_TLS needs lsmtp_net_server_set_tls first (else
 *  LSMTP_ERR_STATE); unknown flags give LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_net_server_listen_flags(lsmtp_net_server *ns,
                                            const char *text, unsigned flags,
                                            char *bound, size_t cap);

/** As lsmtp_net_server_adopt, with LSMTP_NET_LISTEN_* flags (see
 *  lsmtp_net_server_listen_flags). */
LSMTP_API int lsmtp_net_server_adopt_flags(lsmtp_net_server *ns, int fd,
                                           unsigned flags);

/** The connection's TLS filter once TLS was started on it (after the 220
 *  to STARTTLS, or from accept on an implicit-TLS listener), else NULL.
 *  For lsmtp_tls_is_established, lsmtp_tls_version, lsmtp_tls_cipher. */
LSMTP_API const lsmtp_tls *lsmtp_net_conn_tls(const lsmtp_net_conn *conn);

/* ---- connections ---- */

/** The session of a connection (NULL inside on_accept, which runs before it
 *  exists). */
LSMTP_API lsmtp_server *lsmtp_net_conn_session(const lsmtp_net_conn *conn);

/** The net server a connection belongs to. */
LSMTP_API lsmtp_net_server *lsmtp_net_conn_server(const lsmtp_net_conn *conn);

/** The user_data given to lsmtp_net_server_new. */
LSMTP_API void *lsmtp_net_server_user_data(const lsmtp_net_server *ns);

/** The session user data chosen in on_accept (conn itself by default). */
LSMTP_API void *lsmtp_net_conn_user_data(const lsmtp_net_conn *conn);

/** The client's address as "192.0.2.1:4711" / "[2001:db8::1]:4711"
 *  (NUL-terminated, owned by conn). */
LSMTP_API const char *lsmtp_net_conn_peer(const lsmtp_net_conn *conn);

/** The client's socket address; *len gets its length. */
LSMTP_API const struct sockaddr *lsmtp_net_conn_peer_addr(
    const lsmtp_net_conn *conn, socklen_t *len);

/** The local address the client connected to, formatted as above. */
LSMTP_API const char *lsmtp_net_conn_local(const lsmtp_net_conn *conn);

/** A number unique per net server, counting connections from 1. */
LSMTP_API uint64_t lsmtp_net_conn_id(const lsmtp_net_conn *conn);

/** Tell the glue that the host changed the session from outside the
 *  glue's own calls: after lsmtp_server_answer, lsmtp_server_resume or
 *  lsmtp_server_shutdown on this connection's session. The connection is
 *  then serviced (pending output written, buffered input fed again,
 *  reading resumed, timer re-armed, closed if the session wants) at the
 *  start of the next loop iteration; kick itself calls no callback, so it
 *  is safe anywhere, also inside session callbacks. */
LSMTP_API void lsmtp_net_conn_kick(lsmtp_net_conn *conn);

LSMTP_END_DECLS

#endif
