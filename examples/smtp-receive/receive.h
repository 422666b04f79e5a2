/* smtp-receive: state shared by its files. main.c parses options and runs
 * the loop; policy.c decides on recipients; store.c streams messages into
 * Maildirs; secure.c sets up TLS and AUTH (and --hash-password);
 * workers.c runs the blocking work (password checks, Maildir commits) off
 * the loop thread; dialogue.c prints the -v protocol trace. */
#ifndef SMTP_RECEIVE_H
#define SMTP_RECEIVE_H

#include <stddef.h>
#include <stdint.h>

#include <lsmtp/lsmtp.h>
#include <lsmtp/authfile.h>
#include <lsmtp/deliver.h>
#include <lsmtp/net.h>
#include <lsmtp/server.h>

#define RX_MAX_LISTEN 16
#define RX_MAX_DOMAINS 64
#define RX_DEFAULT_WORKERS 4
#define RX_MAX_WORKERS 64

typedef struct rx_pool rx_pool;
typedef struct rx_session rx_session;

/* The whole program's configuration and shared state. */
typedef struct rx_app {
  const char *listen[RX_MAX_LISTEN];
  size_t nlisten;
  const char *domains[RX_MAX_DOMAINS];
  size_t ndomains;
  const char *maildir; /* NULL with --sink */
  int sink;
  int lmtp;
  char hostname[256];
  uint64_t max_size, max_rcpts, max_clients, timeout_s, greet_delay_ms;
  int have_max_size, have_max_rcpts, have_timeout;
  const char *user;
  int verbosity;
  /* TLS and AUTH (secure.c) */
  const char *tls_listen[RX_MAX_LISTEN]; /* implicit-TLS listeners */
  size_t ntls_listen;
  const char *tls_cert, *tls_key;
  int require_tls;
  const char *auth_file;
  int allow_plaintext_auth;
  const char *hash_password_user; /* --hash-password mode */
  uint64_t workers;               /* --workers */

  lsmtp_loop *loop;
  lsmtp_net_server *ns;
  lsmtp_server_config *cfg;
  lsmtp_maildir_ctx *mdctx;
  lsmtp_tls_config *tls;   /* NULL: no STARTTLS, no --tls-listen */
  lsmtp_authfile *authfile; /* NULL: no AUTH */
  rx_pool *pool;            /* NULL with --sink and no AUTH */
  uint64_t messages; /* accepted, all sessions */
} rx_app;

/* One stored copy of the message being received. */
typedef struct rx_rcpt {
  char folder[LSMTP_MAILDIR_NAME_MAX + 1]; /* lower-cased local part */
  lsmtp_maildir *md;                       /* open between DATA and end */
  int failed;                              /* storing it failed */
} rx_rcpt;

typedef struct rx_dialogue rx_dialogue;

/* Blocking work done on a worker thread for one session (workers.c). A
 * concrete job (secure.c, store.c) starts with this struct. */
typedef struct rx_job rx_job;
struct rx_job {
  /* Worker thread: do the work with the job's own copies only (never the
   * session). cancelled: the session went away before the job started,
   * so skip what can be skipped (and wipe secrets). */
  void (*work)(rx_job *job, int cancelled);
  /* Loop thread: s is the session, which still waits for this answer, or
   * NULL when it went away (drop the result). Must free the job. */
  void (*finish)(rx_job *job, rx_session *s);
  int is_auth;    /* a password check (limited, see workers.c) */
  /* Pool-owned: */
  rx_job *next;
  int cancelled;  /* written by the loop thread under the pool lock */
  rx_session *s;  /* loop thread only */
};

/* Per-connection state; the session callbacks get it as user_data. */
struct rx_session {
  rx_app *app;
  lsmtp_net_conn *conn;
  uint64_t id;
  uint64_t started_ms;
  char ip[64]; /* peer address without port, for Received: */
  rx_rcpt *rcpts; /* kept across messages: no per-message allocation */
  size_t nrcpts, rcpt_cap;
  int smtputf8;       /* MAIL had SMTPUTF8 */
  uint64_t msgno;     /* messages in this session (accepted or not) */
  uint64_t delivered; /* messages accepted */
  rx_dialogue *dialogue; /* -v only */
  rx_job *job;        /* in flight on a worker; the session waits for it */
  int lmtp_ready;     /* LMTP: this message's copies were committed, the
                         outcomes are in rcpts[].failed */
};

/* policy.c */
int rx_on_mail(lsmtp_server *srv, const lsmtp_path *path,
               const lsmtp_mail_params *params, void *ud);
int rx_on_rcpt(lsmtp_server *srv, const lsmtp_path *path,
               const lsmtp_rcpt_params *params, void *ud);

/* store.c */
int rx_on_data_start(lsmtp_server *srv, void *ud);
int rx_on_data_chunk(lsmtp_server *srv, const char *data, size_t len, void *ud);
int rx_on_data_end(lsmtp_server *srv, size_t rcpt_index, void *ud);
void rx_on_reset(lsmtp_server *srv, int reason, void *ud);
int rx_sink_data_end(lsmtp_server *srv, size_t rcpt_index, void *ud);
/* Abort open deliveries and forget the recipients. */
void rx_discard(rx_session *s);

/* secure.c */
/* Check the TLS/AUTH options together (after parsing): returns -1 to go on
 * or an exit code (EX_USAGE, EX_CONFIG when this build has no TLS). */
int rx_secure_check_options(const rx_app *app);
/* Load the certificate and the password file. -1 or an exit code. */
int rx_secure_setup(rx_app *app);
/* The session flags and extensions the TLS/AUTH options ask for. */
unsigned rx_secure_flags(const rx_app *app);
unsigned rx_secure_extensions(const rx_app *app);
void rx_secure_cleanup(rx_app *app);
int rx_on_auth(lsmtp_server *srv, const char *mech, const char *authzid,
               const char *authcid, const char *password, size_t password_len,
               void *ud);
/* --hash-password USER: read a password on stdin, print the line. */
int rx_hash_password(const char *user);

/* workers.c */
/* Start nthreads workers and watch their results on app->loop. -1 to go
 * on, or an exit code (app->pool may be set: rx_pool_stop cleans up). */
int rx_pool_start(rx_app *app, unsigned nthreads);
/* Let the workers finish every queued job, join them, drop the results.
 * Call after every session is gone (lsmtp_net_server_del). */
void rx_pool_stop(rx_app *app);
/* Queue job for s (then s->job is job). Returns 0, or -1 when the queue
 * is full (or there is no pool): the caller answers at once and frees the
 * job. */
int rx_pool_submit(rx_app *app, rx_session *s, rx_job *job);
/* s goes away or no longer wants the answer of its job in flight. */
void rx_pool_cancel(rx_app *app, rx_session *s);
/* Overwrite a secret so the compiler cannot skip it. */
void rx_wipe(void *p, size_t n);

/* dialogue.c */
rx_dialogue *rx_dialogue_new(void);
void rx_dialogue_del(rx_dialogue *d);
void rx_dialogue_trace(rx_dialogue *d, uint64_t id, int from_client,
                       const char *data, size_t len);

#endif
