/* smtp-relay: state shared by its files. main.c parses options and runs
 * the loop; accept.c is the receiving side (who may relay, spooling each
 * message before 250); queue.c keeps the queued messages in memory,
 * schedules attempts and records their outcomes; worker.c runs the
 * blocking part of a delivery (route, MX lookup, lsmtp_submit) in worker
 * threads; bounce.c writes delivery status notifications; dnsfile.c
 * reads --dns-file (static DNS records used instead of the system
 * resolver). */
#ifndef SMTP_RELAY_H
#define SMTP_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <lsmtp/lsmtp.h>
#include <lsmtp/spool.h>

#define RL_MAX_LISTEN 16
#define RL_MAX_DOMAINS 64
#define RL_MAX_RELAY_FROM 64
#define RL_MAX_ROUTES 64
#define RL_MAX_SCHEDULE 32
/* Deliveries run at the same time (one worker thread each). */
#define RL_WORKERS 4

/* A client network allowed to relay. */
typedef struct rl_cidr {
  int family; /* AF_INET or AF_INET6 */
  unsigned char addr[16];
  unsigned bits;
} rl_cidr;

/* A next hop: --route DOMAIN=HOST:PORT or --smarthost HOST:PORT. */
typedef struct rl_route {
  char domain[256]; /* "" for the smarthost */
  char host[256];   /* name or address, without brackets */
  unsigned port;
} rl_route;

typedef enum rl_tls_mode { RL_TLS_OPPORTUNISTIC = 0, RL_TLS_REQUIRED, RL_TLS_OFF } rl_tls_mode;

typedef struct rl_queue rl_queue;
typedef struct rl_dns_record rl_dns_record;
typedef struct rl_workers rl_workers;

/* The whole program's configuration and shared state. Everything but the
 * read-only options belongs to the loop thread. */
typedef struct rl_app {
  const char *listen[RL_MAX_LISTEN];
  size_t nlisten;
  const char *domains[RL_MAX_DOMAINS];
  size_t ndomains;
  rl_cidr relay_from[RL_MAX_RELAY_FROM];
  size_t nrelay_from;
  rl_route routes[RL_MAX_ROUTES];
  size_t nroutes;
  rl_route smarthost;
  int have_smarthost;
  const char *spool_dir;
  char hostname[256];
  uint64_t max_size;
  int have_max_size;
  uint64_t schedule_ms[RL_MAX_SCHEDULE];
  size_t nschedule;
  uint64_t max_age_ms;
  rl_tls_mode tls_mode;
  uint64_t timeout_s; /* 0: the RFC 5321 values */
  int verbosity;
  unsigned mx_port;            /* port of next hops found through DNS (25) */
  const char *dns_file;        /* --dns-file, NULL: the system resolver */
  rl_dns_record *dns_records;  /* its records, read-only once loaded */
  size_t ndns_records;

  lsmtp_loop *loop;
  lsmtp_net_server *ns;
  lsmtp_server_config *cfg;
  lsmtp_spool *spool;
  rl_queue *queue;
  rl_workers *workers;
  int stopping;
} rl_app;

/* ---- accept.c: the receiving side ---- */
void rl_accept_callbacks(lsmtp_server_callbacks *cb, lsmtp_net_server_hooks *hooks);
/* Non-zero when the client address may relay (matches --relay-from). */
int rl_may_relay(const rl_app *app, const struct sockaddr *sa);

/* ---- queue.c ---- */
int rl_queue_new(rl_app *app);
void rl_queue_del(rl_app *app);
/* Load the queued message id and schedule it (at once when due_now). */
int rl_queue_add(rl_app *app, const char *id, int due_now);
/* Load everything in the spool (crash recovery): all due at once. */
int rl_queue_load_all(rl_app *app);
/* Stop scheduling new attempts (SIGTERM). */
void rl_queue_stop(rl_app *app);
/* Deliveries in progress. */
size_t rl_queue_in_flight(const rl_app *app);
uint64_t rl_wall_ms(void);

/* ---- worker.c: deliveries in threads ---- */

/* What became of one recipient in one attempt. */
typedef enum rl_outcome_kind { RL_SENT = 0, RL_DEFERRED, RL_BOUNCED } rl_outcome_kind;

typedef struct rl_outcome {
  rl_outcome_kind kind;
  int code;
  char status[24]; /* enhanced status "x.y.z" */
  char text[512];  /* reply text or failure reason, one line */
} rl_outcome;

/* One delivery: some recipients of one message, one destination domain.
 * The loop thread fills the input part and owns the job again once it
 * comes back; the worker fills the output part. */
typedef struct rl_job {
  /* input */
  void *msg;          /* queue.c's message (opaque to the worker) */
  char id[LSMTP_SPOOL_ID_MAX];
  char *from;         /* "" for <> */
  char *envid;        /* NULL for none */
  lsmtp_dsn_ret ret;
  unsigned notify;    /* NOTIFY= for all, when the recipients agree; 0 */
  char domain[256];
  size_t n;           /* recipients */
  size_t *index;      /* their index in the entry */
  char **rcpts;       /* their addresses */
  int fd;             /* the message file, closed by the worker */
  /* output */
  rl_outcome *out;    /* n outcomes */
  char relay[300];    /* the host that answered (or was tried last) */
  struct rl_job *next;
} rl_job;

/* Start the threads; results come back through rl_queue_done (called in
 * the loop thread). Returns 0 or -1. */
int rl_workers_start(rl_app *app);
/* Queue a job (ownership passes until it comes back). */
void rl_workers_submit(rl_app *app, rl_job *job);
/* Give back the jobs no worker has started yet (SIGTERM). */
void rl_workers_drop_pending(rl_app *app);
/* Ask the threads to end and join them; only when no job is in flight. */
void rl_workers_stop(rl_app *app);
/* Called by worker.c in the loop thread for each finished job. */
void rl_queue_done(rl_app *app, rl_job *job);
void rl_job_free(rl_job *job);
/* A job that was never run: forget it (its recipients stay pending). */
void rl_queue_abandon(rl_app *app, rl_job *job);

/* ---- dnsfile.c: --dns-file ---- */
/* Read and check the records of path (errors are logged with the line).
 * Returns 0 or -1. */
int rl_dnsfile_load(rl_app *app, const char *path);
void rl_dnsfile_free(rl_app *app);
/* A new static resolver holding the loaded records, for one thread.
 * Returns LSMTP_OK or a negative status. */
int rl_dnsfile_resolver(const rl_app *app, lsmtp_dns_static **out);

/* ---- bounce.c ---- */
/* Queue a DSN to e's sender for the recipients with failed[i] set. Returns
 * 0 (queued; *id_out set) or -1 (logged). */
int rl_bounce(rl_app *app, const lsmtp_spool_entry *e, const unsigned char *failed,
              char *id_out, size_t cap);

#endif
