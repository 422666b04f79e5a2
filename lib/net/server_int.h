/* Private state of lsmtp_net_server (lib/net/server.c) shared with its TLS
 * part (lib/net/server_tls.c): listeners, connections, the server, and the
 * few connection operations both files use. */
#ifndef LSMTP_NET_SERVER_INT_H
#define LSMTP_NET_SERVER_INT_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "net_int.h"

typedef struct listener {
  lsmtp_io io;
  int fd;
  unsigned flags; /* LSMTP_NET_LISTEN_* */
  const lsmtp_allocator *alloc;
  lsmtp_net_server *ns;
  struct listener *next;
  lsmtp__deferred free_node;
} listener;

struct lsmtp_net_conn {
  lsmtp_net_server *ns;
  const lsmtp_allocator *alloc;
  lsmtp_server *session;
  void *session_ud;
  lsmtp_io io;
  int fd;
  lsmtp_timer timer;    /* session timeout (or TLS handshake), then linger */
  lsmtp_timer kick;     /* zero-delay service after lsmtp_net_conn_kick */
  uint64_t deadline;    /* session or handshake deadline (0: none); the
                           timer may be earlier */
  lsmtp__buf inbuf;     /* plaintext the session has not consumed yet */
  uint64_t id;
  int close_reason;     /* reason for on_close once the session ends */
  unsigned char closing;   /* session over: flush, then close */
  unsigned char closed;
  unsigned char peer_eof;
  unsigned char lingering; /* the timer is the forced-close deadline */
  unsigned char hooked;    /* on_accept said yes: on_close is owed */
  unsigned char pregreet;  /* greeting delayed: deadline is when to send it */

  /* TLS (server_tls.c). tls is NULL on a plaintext connection and before
   * STARTTLS. */
  lsmtp_tls_config *tls_cfg; /* the server's, as it was at accept */
  lsmtp_tls *tls;
  lsmtp__buf cin;            /* ciphertext the filter could not take yet */
  size_t plain_out;          /* session output still to go in the clear:
                                the replies up to the 220 to STARTTLS */
  unsigned char implicit_tls; /* start the session after the handshake */
  unsigned char tls_bye;      /* close_notify queued (or not to be sent) */

  struct sockaddr_storage peer_ss;
  socklen_t peer_len;
  char peer[LSMTP_NET_ADDR_MAX];
  char local[LSMTP_NET_ADDR_MAX];
  lsmtp_net_conn *prev, *next;
  lsmtp__deferred free_node;
};

enum { STAGE_RUNNING = 0, STAGE_GRACE, STAGE_TOLD, STAGE_FORCED };

struct lsmtp_net_server {
  lsmtp_loop *loop;
  const lsmtp_server_config *cfg;
  lsmtp_server_callbacks callbacks;
  lsmtp_net_server_hooks hooks;
  void *user_data;
  listener *listeners;
  lsmtp_net_conn *conns;
  size_t nconns;
  size_t max_clients;
  uint64_t next_id;
  char *rbuf; /* LSMTP_NET_READ_CHUNK bytes shared by all connections */
  lsmtp_tls_config *tls_cfg; /* NULL: no STARTTLS, no TLS listeners */
  unsigned tls_timeout_ms;
  unsigned greet_delay_ms; /* 0: greet at once */
  lsmtp_timer stage_timer;  /* end of grace, end of linger */
  lsmtp_timer drain_timer;  /* calls on_drained from the loop */
  lsmtp_timer accept_timer; /* resumes accepting after EMFILE */
  int stage;
  unsigned char drained;
};

/* ---- server.c ---- */
void lsmtp__conn_close(lsmtp_net_conn *c, int reason);
/* Record what a session call returned (closing on errors and DONE). */
void lsmtp__conn_note(lsmtp_net_conn *c, int rc);
void lsmtp__conn_trace(lsmtp_net_conn *c, int from_client, const char *p,
                       size_t n);
/* Feed plaintext to the session; keep what it does not take in inbuf,
 * unless it just accepted STARTTLS (then the rest is dropped). */
void lsmtp__conn_feed(lsmtp_net_conn *c, const char *p, size_t n);
/* Send up to n bytes. Returns 1 with *sent (0 when the socket is full), or
 * 0 when the connection was closed because the socket failed. */
int lsmtp__conn_send(lsmtp_net_conn *c, const char *p, size_t n, size_t *sent);

/* ---- server_tls.c ---- */
/* Put a TLS filter on the connection: after the 220 to STARTTLS
 * (implicit 0: everything the session has pending goes out in the clear
 * first) or at accept on an implicit-TLS listener. May close c. */
void lsmtp__conn_tls_begin(lsmtp_net_conn *c, int implicit);
/* Write the session's output through the filter (plaintext first while
 * plain_out says so). Returns 0 when c was closed. */
int lsmtp__conn_tls_flush(lsmtp_net_conn *c);
/* One step of the input side: pass buffered ciphertext to the filter,
 * advance the handshake or decrypt one record and feed it to the session.
 * Returns non-zero when something moved. May close c (check c->closed). */
int lsmtp__conn_tls_pump(lsmtp_net_conn *c);
/* Bytes waiting to be written (clear, to encrypt, and encrypted). */
size_t lsmtp__conn_tls_out_pending(const lsmtp_net_conn *c);
/* Queue close_notify once the session's last reply is encrypted. */
void lsmtp__conn_tls_bye(lsmtp_net_conn *c);
/* Non-zero while the TLS handshake is running. */
int lsmtp__conn_tls_handshaking(const lsmtp_net_conn *c);
/* The handshake deadline passed: give up on the client. */
void lsmtp__conn_tls_timeout(lsmtp_net_conn *c);

#endif
