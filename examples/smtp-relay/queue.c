/* The queue in memory: every message in the spool has an entry here. A
 * timer wakes the queue when the earliest message is due; its pending
 * recipients are grouped by domain and each group becomes one job for the
 * workers. When a job comes back, each recipient's outcome is recorded and
 * logged, permanent failures are bounced (before the envelope says
 * "failed", so a crash can duplicate a DSN but never lose one), and the
 * envelope is rewritten at once (a delivered recipient is never tried
 * again, whatever happens next). When the last job of an attempt is back,
 * the attempt counter and next time are set from --retry-schedule, and
 * after --max-age the temporary failures become permanent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"

typedef struct rl_msg {
  lsmtp_spool_entry *e;
  size_t busy;               /* jobs in flight */
  unsigned char *failed_now; /* per recipient: failed, DSN still to send */
  struct rl_msg *prev, *next;
} rl_msg;

struct rl_queue {
  rl_msg *head;
  size_t count;
  size_t in_flight;
  lsmtp_timer *timer;
  int stopped;
};

uint64_t rl_wall_ms(void) {
  struct timespec ts = {0, 0};
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void msg_free(rl_queue *q, rl_msg *m) {
  if (m->prev) m->prev->next = m->next;
  else q->head = m->next;
  if (m->next) m->next->prev = m->prev;
  q->count--;
  lsmtp_spool_entry_del(m->e);
  free(m->failed_now);
  free(m);
}

/* ---- scheduling ---- */

static void arm(rl_app *app) {
  rl_queue *q = app->queue;
  if (q->stopped) return;
  uint64_t now = rl_wall_ms(), first = UINT64_MAX;
  for (rl_msg *m = q->head; m; m = m->next) {
    if (m->busy) continue;
    uint64_t t = lsmtp_spool_entry_next_attempt(m->e);
    if (t < first) first = t;
  }
  if (first == UINT64_MAX) {
    lsmtp_loop_timer_stop(q->timer);
    return;
  }
  lsmtp_loop_timer_start(q->timer, first > now ? first - now : 0);
}

static const char *domain_of(const char *address) {
  const char *at = strrchr(address, '@');
  return at ? at + 1 : "";
}

/* Build and submit one job for the pending recipients of m at domain. */
static int dispatch_domain(rl_app *app, rl_msg *m, const char *domain,
                           unsigned char *taken) {
  lsmtp_spool_entry *e = m->e;
  size_t n = lsmtp_spool_entry_rcpt_count(e), count = 0;
  for (size_t i = 0; i < n; i++) {
    const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(e, i);
    if (!taken[i] && r->state == LSMTP_SPOOL_PENDING &&
        strcasecmp(domain_of(r->address), domain) == 0)
      count++;
  }
  rl_job *job = calloc(1, sizeof *job);
  if (!job) return -1;
  job->fd = -1;
  job->msg = m;
  snprintf(job->id, sizeof job->id, "%s", lsmtp_spool_entry_id(e));
  snprintf(job->domain, sizeof job->domain, "%s", domain);
  job->from = strdup(lsmtp_spool_entry_from(e));
  const char *envid = lsmtp_spool_entry_envid(e);
  job->envid = envid[0] ? strdup(envid) : NULL;
  job->ret = lsmtp_spool_entry_ret(e);
  job->index = calloc(count, sizeof *job->index);
  job->rcpts = calloc(count, sizeof *job->rcpts);
  job->out = calloc(count, sizeof *job->out);
  if (!job->from || (envid[0] && !job->envid) || !job->index || !job->rcpts || !job->out) {
    rl_job_free(job);
    return -1;
  }
  int uniform = 1;
  for (size_t i = 0; i < n; i++) {
    const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(e, i);
    if (taken[i] || r->state != LSMTP_SPOOL_PENDING ||
        strcasecmp(domain_of(r->address), domain) != 0)
      continue;
    if (job->n == 0) job->notify = r->notify;
    else if (job->notify != r->notify) uniform = 0;
    job->index[job->n] = i;
    job->rcpts[job->n] = strdup(r->address);
    if (!job->rcpts[job->n]) {
      rl_job_free(job);
      return -1;
    }
    job->n++;
  }
  if (!uniform) job->notify = 0; /* lsmtp_submit sends one NOTIFY for all */
  if (lsmtp_spool_open_message(app->spool, e, &job->fd) != LSMTP_OK) {
    cli_log(CLI_ERROR, "%s: cannot open the message: %s", job->id,
            strerror(lsmtp_spool_errno(app->spool)));
    rl_job_free(job);
    return -1;
  }
  for (size_t k = 0; k < job->n; k++) taken[job->index[k]] = 1;
  m->busy++;
  app->queue->in_flight++;
  rl_workers_submit(app, job);
  return 0;
}

static void dispatch(rl_app *app, rl_msg *m) {
  size_t n = lsmtp_spool_entry_rcpt_count(m->e);
  unsigned char *taken = calloc(n ? n : 1, 1);
  if (!taken) return;
  for (size_t i = 0; i < n; i++) {
    const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(m->e, i);
    if (taken[i] || r->state != LSMTP_SPOOL_PENDING) continue;
    if (dispatch_domain(app, m, domain_of(r->address), taken) != 0) break;
  }
  free(taken);
  if (m->busy == 0) {
    /* Nothing could be started (out of memory, file gone): try later. */
    lsmtp_spool_entry_set_schedule(m->e, lsmtp_spool_entry_attempts(m->e),
                                   rl_wall_ms() + 60000u);
  }
}

static void on_timer(lsmtp_timer *t, void *ud) {
  (void)t;
  rl_app *app = ud;
  rl_queue *q = app->queue;
  if (q->stopped) return;
  uint64_t now = rl_wall_ms();
  for (rl_msg *m = q->head; m; m = m->next)
    if (!m->busy && lsmtp_spool_entry_next_attempt(m->e) <= now) dispatch(app, m);
  arm(app);
}

/* ---- outcomes ---- */

static int wants_dsn(const lsmtp_spool_entry *e, const lsmtp_spool_rcpt *r) {
  if (!lsmtp_spool_entry_from(e)[0]) return 0; /* never bounce a bounce */
  if (r->notify == 0) return 1;                /* the default: on failure */
  return (r->notify & LSMTP_NOTIFY_FAILURE) != 0;
}

static uint64_t retry_delay(const rl_app *app, unsigned attempts) {
  size_t i = attempts == 0 ? 0 : attempts - 1;
  if (i >= app->nschedule) i = app->nschedule - 1;
  return app->schedule_ms[i];
}

/* Send the DSN for the recipients in failed_now, then store the envelope. */
static void settle(rl_app *app, rl_msg *m) {
  size_t n = lsmtp_spool_entry_rcpt_count(m->e);
  int any = 0;
  for (size_t i = 0; i < n; i++) any |= m->failed_now[i];
  const char *id = lsmtp_spool_entry_id(m->e);
  if (any) {
    char bounce_id[LSMTP_SPOOL_ID_MAX];
    if (rl_bounce(app, m->e, m->failed_now, bounce_id, sizeof bounce_id) == 0) {
      cli_log(CLI_INFO, "%s: sender non-delivery notification: %s", id, bounce_id);
      rl_queue_add(app, bounce_id, 1);
    }
    memset(m->failed_now, 0, n);
  }
  int rc = lsmtp_spool_update(app->spool, m->e);
  if (rc == LSMTP_DONE) {
    cli_log(CLI_INFO, "%s: removed", id);
    msg_free(app->queue, m);
  } else if (rc != LSMTP_OK) {
    cli_log(CLI_ERROR, "%s: cannot update the queue file: %s: %s", id,
            lsmtp_spool_failed_op(app->spool), strerror(lsmtp_spool_errno(app->spool)));
  }
}

static void record(rl_app *app, rl_msg *m, size_t i, const rl_outcome *o, const char *relay) {
  (void)app;
  lsmtp_spool_entry *e = m->e;
  const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(e, i);
  static const char *const names[] = {"sent", "deferred", "bounced"};
  cli_log(CLI_INFO, "%s: to=<%s> relay=%s status=%s (%d %s %s)", lsmtp_spool_entry_id(e),
          r->address, relay[0] ? relay : "none", names[o->kind], o->code, o->status,
          o->text);
  lsmtp_spool_state st = o->kind == RL_SENT       ? LSMTP_SPOOL_DELIVERED
                         : o->kind == RL_BOUNCED ? LSMTP_SPOOL_FAILED
                                                 : LSMTP_SPOOL_PENDING;
  if (o->kind == RL_BOUNCED && wants_dsn(e, r)) m->failed_now[i] = 1;
  if (lsmtp_spool_entry_set_rcpt(e, i, st, o->code, o->status, o->text, relay) != LSMTP_OK)
    lsmtp_spool_entry_set_rcpt(e, i, st, o->code, o->status, NULL, NULL);
}

/* The attempt is over (no job in flight): schedule the next one, or give
 * up on what has been failing for longer than --max-age. */
static void end_attempt(rl_app *app, rl_msg *m) {
  lsmtp_spool_entry *e = m->e;
  if (lsmtp_spool_entry_pending(e) == 0) return;
  uint64_t now = rl_wall_ms();
  unsigned attempts = lsmtp_spool_entry_attempts(e) + 1;
  if (now - lsmtp_spool_entry_arrival(e) >= app->max_age_ms) {
    size_t n = lsmtp_spool_entry_rcpt_count(e);
    for (size_t i = 0; i < n; i++) {
      const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(e, i);
      if (r->state != LSMTP_SPOOL_PENDING) continue;
      rl_outcome o;
      memset(&o, 0, sizeof o);
      o.kind = RL_BOUNCED;
      o.code = r->code ? r->code : 451;
      snprintf(o.status, sizeof o.status, "5.4.7");
      snprintf(o.text, sizeof o.text, "delivery time expired after %u attempts; last: %s",
               attempts, r->text[0] ? r->text : "none");
      char relay[300];
      snprintf(relay, sizeof relay, "%s", r->remote);
      record(app, m, i, &o, relay);
    }
  }
  lsmtp_spool_entry_set_schedule(e, attempts, now + retry_delay(app, attempts));
}

void rl_queue_done(rl_app *app, rl_job *job) {
  rl_queue *q = app->queue;
  rl_msg *m = job->msg;
  for (size_t k = 0; k < job->n; k++) record(app, m, job->index[k], &job->out[k], job->relay);
  m->busy--;
  q->in_flight--;
  if (m->busy == 0) end_attempt(app, m);
  settle(app, m); /* may free m */
  rl_job_free(job);
  arm(app);
  if (q->stopped && q->in_flight == 0 && lsmtp_net_server_conn_count(app->ns) == 0)
    lsmtp_loop_stop(app->loop);
}

void rl_queue_abandon(rl_app *app, rl_job *job) {
  rl_msg *m = job->msg;
  m->busy--;
  app->queue->in_flight--;
  rl_job_free(job);
}

/* ---- the list ---- */

int rl_queue_new(rl_app *app) {
  rl_queue *q = calloc(1, sizeof *q);
  if (!q) return -1;
  if (lsmtp_loop_timer_new(app->loop, &q->timer, on_timer, app) != LSMTP_OK) {
    free(q);
    return -1;
  }
  app->queue = q;
  return 0;
}

void rl_queue_del(rl_app *app) {
  rl_queue *q = app->queue;
  if (!q) return;
  while (q->head) msg_free(q, q->head);
  lsmtp_loop_timer_del(q->timer);
  free(q);
  app->queue = NULL;
}

int rl_queue_add(rl_app *app, const char *id, int due_now) {
  rl_queue *q = app->queue;
  rl_msg *m = calloc(1, sizeof *m);
  if (!m) return -1;
  int rc = lsmtp_spool_load(&m->e, app->spool, id);
  if (rc != LSMTP_OK) {
    if (rc != LSMTP_ERR_SYNTAX) /* corrupt ones were logged by the spool */
      cli_log(CLI_ERROR, "%s: cannot load: %s (%s)", id, lsmtp_strerror(rc),
              strerror(lsmtp_spool_errno(app->spool)));
    free(m);
    return -1;
  }
  size_t n = lsmtp_spool_entry_rcpt_count(m->e);
  m->failed_now = calloc(n, 1);
  if (!m->failed_now) {
    lsmtp_spool_entry_del(m->e);
    free(m);
    return -1;
  }
  if (due_now)
    lsmtp_spool_entry_set_schedule(m->e, lsmtp_spool_entry_attempts(m->e), rl_wall_ms());
  m->next = q->head;
  if (q->head) q->head->prev = m;
  q->head = m;
  q->count++;
  arm(app);
  return 0;
}

static int load_one(void *ud, const char *id) {
  rl_queue_add(ud, id, 1);
  return LSMTP_OK;
}

int rl_queue_load_all(rl_app *app) {
  int rc = lsmtp_spool_scan(app->spool, load_one, app);
  if (rc != LSMTP_OK) {
    cli_log(CLI_ERROR, "cannot scan the queue: %s", lsmtp_strerror(rc));
    return -1;
  }
  cli_log(CLI_INFO, "queue: %zu message(s) to deliver", app->queue->count);
  return 0;
}

void rl_queue_stop(rl_app *app) {
  app->queue->stopped = 1;
  lsmtp_loop_timer_stop(app->queue->timer);
}

size_t rl_queue_in_flight(const rl_app *app) { return app->queue ? app->queue->in_flight : 0; }
