/* Deliveries in worker threads. lsmtp_submit and the system resolver
 * block, so they run here, never in the loop thread that accepts mail.
 * The loop thread hands over a job (copies of everything it needs and an
 * open descriptor of the message file); a worker finds the next hop
 * (--route, --smarthost, else the MX plan of the domain, looked up through
 * the system resolver or the --dns-file records), tries the hosts
 * in order with lsmtp_submit, and files one outcome per recipient. The
 * job comes back through a pipe the loop watches, so all queue and spool
 * state stays in the loop thread.
 *
 * Which failures move on to the next host (RFC 5321 §5.1): a connection
 * that fails, and a session that ends before any recipient got an answer
 * (4xx greeting, 421, TLS required but not offered...). Once a host has
 * answered for a recipient, that answer stands. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"

/* Most places one delivery tries: every address of every MX host. */
#define RL_MAX_TARGETS (LSMTP_MX_MAX_HOSTS * 2)

struct rl_workers {
  pthread_t threads[RL_WORKERS];
  size_t nthreads;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  rl_job *todo_head, *todo_tail; /* for the workers */
  rl_job *done_head;             /* back to the loop */
  int quit;
  int pipe_fd[2];
  lsmtp_io *io;
  rl_app *app;
};

/* The resolver of one worker thread (resolvers are not thread-safe):
 * the system resolver, or a static one holding the --dns-file records.
 * Created on first use. */
typedef struct worker_dns {
  lsmtp_dns_system *sys;
  lsmtp_dns_static *fixed;
} worker_dns;

typedef struct target {
  char host[256]; /* what to connect to */
  char name[256]; /* for the log: MX name or route host */
  unsigned port;
} target;

void rl_job_free(rl_job *job) {
  if (!job) return;
  if (job->fd >= 0) close(job->fd);
  free(job->from);
  free(job->envid);
  for (size_t i = 0; job->rcpts && i < job->n; i++) free(job->rcpts[i]);
  free(job->rcpts);
  free(job->index);
  free(job->out);
  free(job);
}

/* ---- outcomes ---- */

static void set_all(rl_job *job, rl_outcome_kind kind, int code, const char *status,
                    const char *text) {
  for (size_t i = 0; i < job->n; i++) {
    rl_outcome *o = &job->out[i];
    o->kind = kind;
    o->code = code;
    snprintf(o->status, sizeof o->status, "%s", status);
    snprintf(o->text, sizeof o->text, "%s", text);
  }
}

/* One line of reply text: line breaks become spaces. */
static void from_reply(rl_outcome *o, const lsmtp_reply *r, const char *fallback_status) {
  o->code = r->code;
  if (r->enhanced.cls)
    snprintf(o->status, sizeof o->status, "%u.%u.%u", r->enhanced.cls, r->enhanced.subject,
             r->enhanced.detail);
  else
    snprintf(o->status, sizeof o->status, "%s", fallback_status);
  snprintf(o->text, sizeof o->text, "%s", r->text);
  for (char *p = o->text; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
}

/* Fill the outcomes from one lsmtp_submit result. Returns 1 when the next
 * host should be tried (nobody answered for any recipient and the failure
 * is temporary). */
static int judge(rl_job *job, const lsmtp_submit_result *res, int rc) {
  if (!res) {
    set_all(job, RL_DEFERRED, 451, "4.3.0", lsmtp_strerror(rc));
    return 0;
  }
  int temporary = lsmtp_submit_result_temporary(res);
  const lsmtp_reply *overall = lsmtp_submit_result_reply(res);
  const char *detail = lsmtp_submit_result_detail(res);
  int answered = 0;
  for (size_t i = 0; i < job->n; i++) {
    rl_outcome *o = &job->out[i];
    int st = lsmtp_submit_result_rcpt_status(res, i);
    const lsmtp_reply *rr = lsmtp_submit_result_rcpt_reply(res, i);
    if (st == LSMTP_OK) {
      o->kind = RL_SENT;
      answered = 1;
      if (overall) {
        from_reply(o, overall, "2.0.0");
      } else {
        o->code = 250;
        snprintf(o->status, sizeof o->status, "2.0.0");
        snprintf(o->text, sizeof o->text, "Ok");
      }
      continue;
    }
    if (st == LSMTP_ERR_REFUSED || st == LSMTP_ERR_TEMPFAIL) {
      const lsmtp_reply *r = rr && rr->code >= 400 ? rr : overall ? overall : rr;
      o->kind = st == LSMTP_ERR_REFUSED ? RL_BOUNCED : RL_DEFERRED;
      answered = 1;
      if (r) {
        from_reply(o, r, st == LSMTP_ERR_REFUSED ? "5.0.0" : "4.0.0");
      } else {
        o->code = st == LSMTP_ERR_REFUSED ? 550 : 450;
        snprintf(o->status, sizeof o->status, "%s", st == LSMTP_ERR_REFUSED ? "5.0.0" : "4.0.0");
        snprintf(o->text, sizeof o->text, "%s", detail);
      }
      continue;
    }
    /* The session ended before this recipient was settled. */
    o->kind = temporary ? RL_DEFERRED : RL_BOUNCED;
    if (overall && overall->code >= 400) {
      from_reply(o, overall, temporary ? "4.0.0" : "5.0.0");
    } else {
      o->code = temporary ? 451 : 554;
      snprintf(o->status, sizeof o->status, "%s", temporary ? "4.4.1" : "5.4.0");
      snprintf(o->text, sizeof o->text, "%s", detail[0] ? detail : lsmtp_strerror(rc));
    }
  }
  return !answered && temporary;
}

/* ---- routes ---- */

static const rl_route *find_route(const rl_app *app, const char *domain) {
  for (size_t i = 0; i < app->nroutes; i++)
    if (strcasecmp(app->routes[i].domain, domain) == 0) return &app->routes[i];
  return app->have_smarthost ? &app->smarthost : NULL;
}

/* The thread's resolver, or NULL (with why) when it cannot be made. */
static const lsmtp_dns_resolver *worker_resolver(const rl_app *app, worker_dns *wd,
                                                 const char **why) {
  if (app->dns_file) {
    if (!wd->fixed && rl_dnsfile_resolver(app, &wd->fixed) != LSMTP_OK) {
      wd->fixed = NULL;
      *why = "cannot load the --dns-file records";
      return NULL;
    }
    return lsmtp_dns_static_resolver(wd->fixed);
  }
  if (!wd->sys && lsmtp_dns_system_new(&wd->sys, NULL) != LSMTP_OK) {
    wd->sys = NULL;
    *why = "cannot use the system resolver";
    return NULL;
  }
  return lsmtp_dns_system_resolver(wd->sys);
}

static void worker_dns_free(worker_dns *wd) {
  lsmtp_dns_system_del(wd->sys);
  lsmtp_dns_static_del(wd->fixed);
}

/* Addresses of a route host, collected from synchronous answers. */
typedef struct addr_state {
  target *t;
  size_t *nt;
  const rl_route *route;
  int done;
} addr_state;

static void addr_done(void *ud, const lsmtp_dns_answer *a) {
  addr_state *st = ud;
  st->done = 1;
  for (size_t i = 0; a->status == LSMTP_OK && i < a->addr_count; i++) {
    if (*st->nt == RL_MAX_TARGETS) return;
    target *x = &st->t[*st->nt];
    if (lsmtp_dns_addr_format(&a->addr[i], x->host, sizeof x->host) == 0) continue;
    snprintf(x->name, sizeof x->name, "%s", st->route->host);
    x->port = st->route->port;
    (*st->nt)++;
  }
}

/* The places of a --route or --smarthost. A host name is left to
 * lsmtp_submit (getaddrinfo), except with --dns-file, whose records then
 * answer for it too (IPv6 first, as for MX hosts). 0, or -1 with the
 * outcomes set. */
static int route_targets(const rl_app *app, worker_dns *wd, const rl_route *route,
                         rl_job *job, target *t, size_t *nt) {
  unsigned char buf[16];
  if (!app->dns_file || inet_pton(AF_INET, route->host, buf) == 1 ||
      inet_pton(AF_INET6, route->host, buf) == 1) {
    snprintf(t[0].host, sizeof t[0].host, "%s", route->host);
    snprintf(t[0].name, sizeof t[0].name, "%s", route->host);
    t[0].port = route->port;
    *nt = 1;
    return 0;
  }
  const char *why = NULL;
  const lsmtp_dns_resolver *r = worker_resolver(app, wd, &why);
  if (!r) {
    set_all(job, RL_DEFERRED, 451, "4.4.3", why);
    return -1;
  }
  static const lsmtp_dns_type order[2] = {LSMTP_DNS_AAAA, LSMTP_DNS_A};
  for (size_t i = 0; i < 2; i++) {
    addr_state st = {t, nt, route, 0};
    lsmtp_dns_query(r, route->host, order[i], addr_done, &st, NULL);
  }
  if (*nt == 0) {
    /* A configured next hop without an address is the operator's to fix:
     * keep the mail queued meanwhile. */
    set_all(job, RL_DEFERRED, 451, "4.4.3", "route host has no address in --dns-file");
    return -1;
  }
  return 0;
}

typedef struct lookup_state {
  int done;
} lookup_state;

static void lookup_done(void *ud, lsmtp_mx_plan *plan) {
  (void)plan;
  ((lookup_state *)ud)->done = 1;
}

/* The MX plan of domain as targets; 0, or -1 with the outcomes set. */
static int mx_targets(rl_app *app, worker_dns *wd, rl_job *job, target *t, size_t *nt) {
  const char *why = NULL;
  const lsmtp_dns_resolver *resolver = worker_resolver(app, wd, &why);
  if (!resolver) {
    set_all(job, RL_DEFERRED, 451, "4.4.3", why);
    return -1;
  }
  lsmtp_mx_plan *plan = NULL;
  lsmtp_mx_lookup *lookup = NULL;
  lookup_state st = {0};
  const char *local[1] = {app->hostname};
  int rc = lsmtp_mx_plan_new(&plan, NULL);
  if (rc == LSMTP_OK) {
    lsmtp_mx_plan_set_local_names(plan, local, 1);
    lsmtp_mx_plan_set_seed(plan, (uint64_t)rl_wall_ms() ^ (uint64_t)(uintptr_t)job);
    rc = lsmtp_mx_lookup_new(&lookup, NULL, resolver, plan, job->domain, lookup_done, &st);
  }
  if (rc != LSMTP_OK || !st.done) {
    lsmtp_mx_lookup_del(lookup);
    lsmtp_mx_plan_del(plan);
    set_all(job, rc == LSMTP_ERR_INVALID ? RL_BOUNCED : RL_DEFERRED,
            rc == LSMTP_ERR_INVALID ? 550 : 451, rc == LSMTP_ERR_INVALID ? "5.1.2" : "4.4.3",
            rc == LSMTP_ERR_INVALID ? "not a domain name" : "MX lookup failed");
    return -1;
  }
  lsmtp_mx_result result = lsmtp_mx_plan_result(plan);
  if (result != LSMTP_MX_OK) {
    /* Null MX (RFC 7505: 556 5.1.10), no such domain: permanent; DNS
     * trouble: temporary. */
    const lsmtp_mx_failure *f = lsmtp_mx_result_failure(result);
    set_all(job, f->temporary ? RL_DEFERRED : RL_BOUNCED, f->reply_code, f->enhanced, f->text);
    lsmtp_mx_lookup_del(lookup);
    lsmtp_mx_plan_del(plan);
    return -1;
  }
  size_t n = lsmtp_mx_plan_target_count(plan);
  for (size_t i = 0; i < n && *nt < RL_MAX_TARGETS; i++) {
    const lsmtp_mx_target *mt = lsmtp_mx_plan_target(plan, i);
    target *x = &t[(*nt)++];
    if (lsmtp_dns_addr_format(&mt->addr, x->host, sizeof x->host) == 0) {
      (*nt)--;
      continue;
    }
    snprintf(x->name, sizeof x->name, "%s", mt->host);
    x->port = app->mx_port; /* 25 but for tests and odd setups */
  }
  lsmtp_mx_lookup_del(lookup);
  lsmtp_mx_plan_del(plan);
  return 0;
}

/* ---- one delivery ---- */

typedef struct dialogue_log {
  const char *id;
} dialogue_log;

static void submit_log(void *ud, lsmtp_submit_log_kind kind, const char *line) {
  const dialogue_log *d = ud;
  cli_log(CLI_VERBOSE, "%s: %s %s", d->id,
          kind == LSMTP_SUBMIT_LOG_SENT ? "->" : kind == LSMTP_SUBMIT_LOG_RECEIVED ? "<-" : "**",
          line);
}

static void run_job(rl_app *app, worker_dns *wd, rl_job *job) {
  target *t = calloc(RL_MAX_TARGETS, sizeof *t);
  size_t nt = 0;
  if (!t) {
    set_all(job, RL_DEFERRED, 451, "4.3.0", "out of memory");
    return;
  }
  const rl_route *route = find_route(app, job->domain);
  if (route ? route_targets(app, wd, route, job, t, &nt) != 0
            : mx_targets(app, wd, job, t, &nt) != 0) {
    snprintf(job->relay, sizeof job->relay, "none");
    free(t);
    return;
  }
  dialogue_log dl = {job->id};
  for (size_t k = 0; k < nt; k++) {
    lsmtp_submit_options o;
    lsmtp_submit_options_init(&o);
    o.host = t[k].host;
    o.port = t[k].port;
    o.tls = app->tls_mode == RL_TLS_OFF        ? LSMTP_SUBMIT_TLS_NONE
            : app->tls_mode == RL_TLS_REQUIRED ? LSMTP_SUBMIT_TLS_STARTTLS
                                               : LSMTP_SUBMIT_TLS_OPPORTUNISTIC;
    if (!lsmtp_tls_available() && app->tls_mode == RL_TLS_OPPORTUNISTIC)
      o.tls = LSMTP_SUBMIT_TLS_NONE;
    /* Between MTAs nobody can check a certificate without DANE or
     * MTA-STS: TLS here protects against eavesdropping, not against an
     * active attacker (RFC 7435). */
    o.tls_no_verify = 1;
    o.timeout_ms = (uint32_t)(app->timeout_s * 1000u);
    o.total_timeout_ms = app->timeout_s ? (uint32_t)(app->timeout_s * 10000u) : 0;
    o.helo_name = app->hostname;
    o.from = job->from;
    o.envid = job->envid;
    o.dsn_ret = job->ret;
    o.dsn_notify = job->notify;
    if (cli_log_enabled(CLI_VERBOSE)) {
      o.log = submit_log;
      o.log_user_data = &dl;
    }
    snprintf(job->relay, sizeof job->relay, "%.200s[%.64s]:%u", t[k].name, t[k].host, t[k].port);
    if (lseek(job->fd, 0, SEEK_SET) != 0) {
      set_all(job, RL_DEFERRED, 451, "4.3.0", "cannot read the queued message");
      break;
    }
    lsmtp_submit_source src = lsmtp_submit_source_fd(job->fd);
    lsmtp_submit_result *res = NULL;
    int rc = lsmtp_submit(&o, (const char *const *)job->rcpts, job->n, &src, &res);
    int next = judge(job, res, rc);
    if (next && k + 1 < nt)
      cli_log(CLI_INFO, "%s: %s: %s; trying the next host", job->id, job->relay,
              job->out[0].text);
    lsmtp_submit_result_del(res);
    if (!next) break;
  }
  free(t);
}

/* ---- threads ---- */

static void *worker_main(void *arg) {
  rl_workers *w = arg;
  worker_dns wd = {NULL, NULL}; /* one per thread: not thread-safe */
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->quit && !w->todo_head) pthread_cond_wait(&w->cond, &w->lock);
    if (w->quit) break;
    rl_job *job = w->todo_head;
    w->todo_head = job->next;
    if (!w->todo_head) w->todo_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    run_job(w->app, &wd, job);
    pthread_mutex_lock(&w->lock);
    job->next = w->done_head;
    w->done_head = job;
    char b = 1;
    (void)!write(w->pipe_fd[1], &b, 1);
  }
  pthread_mutex_unlock(&w->lock);
  worker_dns_free(&wd);
  return NULL;
}

static void on_pipe(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)events;
  rl_workers *w = ud;
  char buf[256];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  pthread_mutex_lock(&w->lock);
  rl_job *done = w->done_head;
  w->done_head = NULL;
  pthread_mutex_unlock(&w->lock);
  while (done) {
    rl_job *next = done->next;
    rl_queue_done(w->app, done);
    done = next;
  }
}

int rl_workers_start(rl_app *app) {
  rl_workers *w = calloc(1, sizeof *w);
  if (!w) return -1;
  w->app = app;
  if (pipe(w->pipe_fd) != 0) {
    free(w);
    return -1;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(w->pipe_fd[i], F_SETFL, fcntl(w->pipe_fd[i], F_GETFL) | O_NONBLOCK);
    fcntl(w->pipe_fd[i], F_SETFD, FD_CLOEXEC);
  }
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  app->workers = w;
  if (lsmtp_loop_io_new(app->loop, &w->io, w->pipe_fd[0], LSMTP_IO_READ, on_pipe, w) !=
      LSMTP_OK)
    return -1;
  /* Signals are for the loop thread (its self-pipe); workers block them
   * so that their system calls are not interrupted. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (size_t i = 0; i < RL_WORKERS; i++) {
    if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) break;
    w->nthreads++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return w->nthreads ? 0 : -1;
}

void rl_workers_submit(rl_app *app, rl_job *job) {
  rl_workers *w = app->workers;
  job->next = NULL;
  pthread_mutex_lock(&w->lock);
  if (w->todo_tail) w->todo_tail->next = job;
  else w->todo_head = job;
  w->todo_tail = job;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

void rl_workers_drop_pending(rl_app *app) {
  rl_workers *w = app->workers;
  if (!w) return;
  pthread_mutex_lock(&w->lock);
  rl_job *todo = w->todo_head;
  w->todo_head = w->todo_tail = NULL;
  pthread_mutex_unlock(&w->lock);
  while (todo) {
    rl_job *next = todo->next;
    rl_queue_abandon(app, todo);
    todo = next;
  }
}

void rl_workers_stop(rl_app *app) {
  rl_workers *w = app->workers;
  if (!w) return;
  pthread_mutex_lock(&w->lock);
  w->quit = 1;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
  for (size_t i = 0; i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
  /* Jobs never started (a stop with work queued) go back unfinished. */
  while (w->todo_head) {
    rl_job *j = w->todo_head;
    w->todo_head = j->next;
    rl_job_free(j);
  }
  while (w->done_head) {
    rl_job *j = w->done_head;
    w->done_head = j->next;
    rl_job_free(j);
  }
  lsmtp_loop_io_del(w->io);
  close(w->pipe_fd[0]);
  close(w->pipe_fd[1]);
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cond);
  free(w);
  app->workers = NULL;
}
