/* smtp-receive's worker pool: the blocking work of a session (the PBKDF2
 * password check of AUTH, the fsync/rename/fsync of a Maildir commit) runs
 * on a few threads so that one session's wait never stalls the others on
 * the event loop.
 *
 * Only the loop thread touches sessions and the net server. A job carries
 * copies of what its work needs; the worker runs job->work, then hands the
 * job back through a mutex-protected list and one byte in a pipe that the
 * loop watches. The loop thread then calls job->finish with the job's
 * session, which answers the deferred decision and kicks the connection.
 * A session that goes away (connection closed, transaction reset) while
 * its job is queued or running cancels it: the work still ends safely (a
 * queued job is told to skip what it can), and finish gets NULL, dropping
 * the result.
 *
 * Commits are taken before password checks, and password checks may use
 * all workers but one, so an AUTH flood cannot hold up the storing of mail.
 * Password checks wait in a short queue; when it is full, AUTH is answered
 * 454 4.7.0 at once instead of piling up. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "receive.h"

/* Password checks waiting for a worker (each costs ~0.1 s of CPU). */
#define RX_AUTH_QUEUE_MAX 16
/* Commits waiting: at most one per connection, so this only matters with
 * --max-clients 0 or above it. */
#define RX_COMMIT_QUEUE_MAX 4096

typedef struct rx_queue {
  rx_job *head, *tail;
  size_t len;
} rx_queue;

struct rx_pool {
  pthread_mutex_t lock;
  pthread_cond_t wake;  /* a job was queued, an AUTH slot freed, or stop */
  rx_queue commits;     /* taken first */
  rx_queue auths;
  rx_queue done;        /* finished, for the loop thread */
  unsigned auth_running, auth_max_running;
  int stopping;
  pthread_t *threads;
  unsigned nthreads;
  int pipe_rd, pipe_wr; /* "done is no longer empty" */
  lsmtp_io *io;
};

static void queue_push(rx_queue *q, rx_job *j) {
  j->next = NULL;
  if (q->tail)
    q->tail->next = j;
  else
    q->head = j;
  q->tail = j;
  q->len++;
}

static rx_job *queue_pop(rx_queue *q) {
  rx_job *j = q->head;
  if (!j) return NULL;
  q->head = j->next;
  if (!q->head) q->tail = NULL;
  q->len--;
  j->next = NULL;
  return j;
}

/* Under the lock: the next job this worker may run, or NULL. */
static rx_job *take_locked(rx_pool *p) {
  rx_job *j = queue_pop(&p->commits);
  if (j) return j;
  if (p->auth_running < p->auth_max_running && (j = queue_pop(&p->auths)))
    p->auth_running++;
  return j;
}

static void *worker_main(void *arg) {
  rx_pool *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    rx_job *j = take_locked(p);
    if (!j) {
      /* Stop only once nothing is left: a queued job is always run (or
       * skipped, when cancelled) and handed back, never lost. */
      if (p->stopping && !p->commits.len && !p->auths.len) break;
      pthread_cond_wait(&p->wake, &p->lock);
      continue;
    }
    int cancelled = j->cancelled;
    pthread_mutex_unlock(&p->lock);
    j->work(j, cancelled);
    pthread_mutex_lock(&p->lock);
    if (j->is_auth) {
      p->auth_running--;
      if (p->auths.len) pthread_cond_broadcast(&p->wake);
    }
    int was_empty = p->done.len == 0;
    queue_push(&p->done, j);
    if (was_empty) {
      /* One byte per empty->non-empty change: the loop drains the pipe
       * before it takes the list, so no result is ever left unseen and the
       * pipe never fills. */
      ssize_t w;
      do w = write(p->pipe_wr, "", 1);
      while (w < 0 && errno == EINTR);
    }
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* Loop thread: hand every finished job to its finish function. */
static void finish_done(rx_pool *p) {
  char buf[64];
  while (read(p->pipe_rd, buf, sizeof buf) > 0) {
  }
  pthread_mutex_lock(&p->lock);
  rx_queue done = p->done;
  memset(&p->done, 0, sizeof p->done);
  pthread_mutex_unlock(&p->lock);
  rx_job *j;
  while ((j = queue_pop(&done)) != NULL) {
    /* cancelled is only ever written by this thread. */
    rx_session *s = j->cancelled ? NULL : j->s;
    if (s) s->job = NULL;
    j->s = NULL;
    j->finish(j, s);
  }
}

static void on_done_pipe(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)fd;
  (void)events;
  finish_done(ud);
}

static int nonblocking_pipe(int fds[2]) {
  if (pipe(fds) != 0) return -1;
  for (int i = 0; i < 2; i++) {
    int fl = fcntl(fds[i], F_GETFL);
    if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
      close(fds[0]);
      close(fds[1]);
      return -1;
    }
  }
  return 0;
}

int rx_pool_start(rx_app *app, unsigned nthreads) {
  rx_pool *p = calloc(1, sizeof *p);
  if (!p) return EX_OSERR;
  int fds[2];
  if (nonblocking_pipe(fds) != 0) {
    cli_log(CLI_ERROR, "cannot create the worker pipe: %s", strerror(errno));
    free(p);
    return EX_OSERR;
  }
  p->pipe_rd = fds[0];
  p->pipe_wr = fds[1];
  p->nthreads = 0;
  /* With one worker AUTH may use it too; otherwise one is kept for mail. */
  p->auth_max_running = nthreads > 1 ? nthreads - 1 : 1;
  p->threads = calloc(nthreads, sizeof *p->threads);
  if (!p->threads || pthread_mutex_init(&p->lock, NULL) != 0) {
    close(fds[0]);
    close(fds[1]);
    free(p->threads);
    free(p);
    return EX_OSERR;
  }
  if (pthread_cond_init(&p->wake, NULL) != 0) {
    pthread_mutex_destroy(&p->lock);
    close(fds[0]);
    close(fds[1]);
    free(p->threads);
    free(p);
    return EX_OSERR;
  }
  app->pool = p; /* from here on rx_pool_stop cleans up */
  if (lsmtp_loop_io_new(app->loop, &p->io, p->pipe_rd, LSMTP_IO_READ,
                        on_done_pipe, p) != LSMTP_OK) {
    cli_log(CLI_ERROR, "cannot watch the worker pipe");
    return EX_OSERR;
  }
  /* Workers take no signals: SIGTERM/SIGINT go to the loop's self-pipe
   * handler, and a worker's fsync is never interrupted by one. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = 0;
  for (unsigned i = 0; i < nthreads; i++) {
    err = pthread_create(&p->threads[i], NULL, worker_main, p);
    if (err != 0) break;
    p->nthreads++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    cli_log(CLI_ERROR, "cannot start worker threads: %s", strerror(err));
    return EX_OSERR;
  }
  return -1;
}

void rx_pool_stop(rx_app *app) {
  rx_pool *p = app->pool;
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (unsigned i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  /* Every session is gone by now, so every job was cancelled: finish
   * drops the results (and takes back copies nobody acknowledged). */
  finish_done(p);
  lsmtp_loop_io_del(p->io);
  close(p->pipe_rd);
  close(p->pipe_wr);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->lock);
  free(p->threads);
  free(p);
  app->pool = NULL;
}

int rx_pool_submit(rx_app *app, rx_session *s, rx_job *job) {
  rx_pool *p = app->pool;
  if (!p || s->job) return -1;
  job->s = s;
  job->cancelled = 0;
  pthread_mutex_lock(&p->lock);
  rx_queue *q = job->is_auth ? &p->auths : &p->commits;
  size_t max = job->is_auth ? RX_AUTH_QUEUE_MAX : RX_COMMIT_QUEUE_MAX;
  int ok = q->len < max && !p->stopping;
  if (ok) {
    queue_push(q, job);
    pthread_cond_signal(&p->wake);
  }
  pthread_mutex_unlock(&p->lock);
  if (!ok) return -1;
  s->job = job;
  return 0;
}

void rx_pool_cancel(rx_app *app, rx_session *s) {
  rx_job *j = s->job;
  if (!j) return;
  pthread_mutex_lock(&app->pool->lock);
  j->cancelled = 1;
  pthread_mutex_unlock(&app->pool->lock);
  j->s = NULL;
  s->job = NULL;
}

void rx_wipe(void *p, size_t n) {
  /* volatile: the compiler may not drop stores to memory about to be
   * freed. */
  volatile unsigned char *v = p;
  while (n--) *v++ = 0;
}
