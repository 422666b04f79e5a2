/* Storing messages: one Maildir delivery per accepted recipient, opened at
 * DATA, fed every chunk as it arrives (the message is never held in
 * memory), and committed (fsync, rename into new/, fsync new/) before the
 * client hears 250. In SMTP mode it is all or nothing: if one copy cannot
 * be stored, none is kept and the client gets 451 4.3.0. In LMTP mode each
 * recipient gets its own answer.
 *
 * The writes happen on the loop thread as the bytes arrive; the commits,
 * which wait for the disk, run as one job per message on a worker
 * (workers.c) while the session's answer is deferred. A message whose
 * session goes away before it was answered is not kept: nobody was told
 * it was stored, and the client will send it again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "receive.h"

static void abort_all(rx_session *s) {
  for (size_t i = 0; i < s->nrcpts; i++) {
    lsmtp_maildir_del(s->rcpts[i].md); /* aborts unless committed */
    s->rcpts[i].md = NULL;
    s->rcpts[i].failed = 1;
  }
}

void rx_discard(rx_session *s) {
  abort_all(s);
  s->nrcpts = 0;
  s->lmtp_ready = 0;
}

static void log_message(rx_session *s, lsmtp_server *srv, const char *rcpt,
                        const char *result);

static int refuse_storage(lsmtp_server *srv) {
  return lsmtp_server_set_reply(srv, 451, "4.3.0",
                                "Error: could not store the message") == LSMTP_OK
             ? LSMTP_OK : LSMTP_ERR_ABORTED;
}

static void log_storage_error(rx_session *s, size_t i, const lsmtp_maildir *m,
                              int err) {
  const char *op = m ? lsmtp_maildir_failed_op(m) : "open";
  if (m) err = lsmtp_maildir_errno(m);
  cli_log(CLI_ERROR, "session %llu: message %llu: storing for %s failed: %s: %s",
          (unsigned long long)s->id, (unsigned long long)s->msgno,
          s->rcpts[i].folder, op[0] ? op : "write", strerror(err));
}

static int utc_offset_minutes(time_t t) {
  struct tm tm;
  if (!localtime_r(&t, &tm)) return 0;
  return (int)(tm.tm_gmtoff / 60);
}

/* Return-Path: and Received: for recipient i. */
static int write_trace(rx_session *s, lsmtp_server *srv, size_t i,
                       lsmtp_maildir *m, time_t now, const char *id) {
  rx_app *app = s->app;
  char hdr[4096];
  size_t n = lsmtp_trace_return_path(hdr, sizeof hdr, lsmtp_server_mail_from(srv));
  if (n == 0 || n >= sizeof hdr) return LSMTP_ERR_TOO_LONG;
  int rc = lsmtp_maildir_write(m, hdr, n);
  if (rc != LSMTP_OK) return rc;
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.helo = lsmtp_server_helo(srv);
  info.ip = s->ip[0] ? s->ip : NULL;
  info.by = app->hostname;
  info.id = id;
  info.rcpt = lsmtp_server_rcpt(srv, i);
  info.flags = (lsmtp_server_is_esmtp(srv) ? LSMTP_TRACE_ESMTP : 0u) |
               (app->lmtp ? LSMTP_TRACE_LMTP : 0u) |
               (s->smtputf8 ? LSMTP_TRACE_UTF8 : 0u) |
               (lsmtp_server_is_tls(srv) ? LSMTP_TRACE_TLS : 0u) |
               (lsmtp_server_auth_id(srv) ? LSMTP_TRACE_AUTH : 0u);
  /* "(using TLSv1.2 with cipher ...)": how the message was protected. */
  info.tls_version = lsmtp_server_tls_version(srv);
  info.tls_cipher = lsmtp_server_tls_cipher(srv);
  if (info.tls_cipher && !info.tls_cipher[0]) info.tls_cipher = NULL;
  if (info.tls_version && !info.tls_version[0]) info.tls_version = "TLS";
  info.time = now;
  info.utc_offset = utc_offset_minutes(now);
  n = lsmtp_trace_received(hdr, sizeof hdr, &info);
  if (n == 0 || n >= sizeof hdr) return LSMTP_ERR_TOO_LONG;
  return lsmtp_maildir_write(m, hdr, n);
}

int rx_on_data_start(lsmtp_server *srv, void *ud) {
  rx_session *s = ud;
  rx_app *app = s->app;
  s->msgno++;
  s->lmtp_ready = 0;
  if (s->nrcpts != lsmtp_server_rcpt_count(srv)) {
    cli_log(CLI_ERROR, "session %llu: recipient lists disagree (%zu vs %zu)",
            (unsigned long long)s->id, s->nrcpts, lsmtp_server_rcpt_count(srv));
    return refuse_storage(srv);
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char id[64];
  snprintf(id, sizeof id, "%llX.%llu.%llu", (unsigned long long)ts.tv_sec,
           (unsigned long long)s->id, (unsigned long long)s->msgno);
  char dir[4096];
  for (size_t i = 0; i < s->nrcpts; i++) {
    rx_rcpt *r = &s->rcpts[i];
    r->failed = 0;
    int n = snprintf(dir, sizeof dir, "%s/%s", app->maildir, r->folder);
    int rc = n > 0 && (size_t)n < sizeof dir ? LSMTP_OK : LSMTP_ERR_TOO_LONG;
    errno = ENAMETOOLONG;
    if (rc == LSMTP_OK)
      rc = lsmtp_maildir_open(&r->md, NULL, dir, app->mdctx, ts.tv_sec,
                              ts.tv_nsec / 1000);
    if (rc != LSMTP_OK) {
      log_storage_error(s, i, NULL, errno);
      r->md = NULL;
    } else if ((rc = write_trace(s, srv, i, r->md, ts.tv_sec, id)) != LSMTP_OK) {
      log_storage_error(s, i, r->md, errno);
    }
    if (rc != LSMTP_OK) {
      r->failed = 1;
      if (!app->lmtp) {
        abort_all(s);
        log_message(s, srv, NULL, "451 not stored");
        return refuse_storage(srv);
      }
    }
  }
  return LSMTP_OK;
}

int rx_on_data_chunk(lsmtp_server *srv, const char *data, size_t len, void *ud) {
  (void)srv;
  rx_session *s = ud;
  for (size_t i = 0; i < s->nrcpts; i++) {
    rx_rcpt *r = &s->rcpts[i];
    if (r->failed || !r->md) continue;
    if (lsmtp_maildir_write(r->md, data, len) != LSMTP_OK) {
      log_storage_error(s, i, r->md, 0);
      r->failed = 1;
      /* SMTP: one answer for all, so nothing is kept. The rest of the
       * message is still read, then refused with 451. */
      if (!s->app->lmtp) abort_all(s);
    }
  }
  return LSMTP_OK;
}

static void log_message(rx_session *s, lsmtp_server *srv, const char *rcpt,
                        const char *result) {
  const char *from = lsmtp_server_mail_from(srv);
  if (rcpt)
    cli_log(CLI_INFO,
            "session %llu: message %llu from=<%s> to=<%s> size=%llu: %s",
            (unsigned long long)s->id, (unsigned long long)s->msgno,
            from ? from : "", rcpt,
            (unsigned long long)lsmtp_server_message_size(srv), result);
  else
    cli_log(CLI_INFO,
            "session %llu: message %llu from=<%s> rcpts=%zu size=%llu: %s",
            (unsigned long long)s->id, (unsigned long long)s->msgno,
            from ? from : "", lsmtp_server_rcpt_count(srv),
            (unsigned long long)lsmtp_server_message_size(srv), result);
}

/* ---- the commit job ---- */

typedef struct commit_copy {
  lsmtp_maildir *md;                       /* owned by the job; NULL: failed */
  char folder[LSMTP_MAILDIR_NAME_MAX + 1];
  int committed;                           /* in new/ */
} commit_copy;

typedef struct commit_job {
  rx_job base;
  const char *maildir; /* the root (read-only, app's) */
  int all_or_nothing;  /* SMTP: one failure takes every copy back */
  uint64_t session_id, msgno;
  size_t n;
  commit_copy copy[];
} commit_job;

/* Take back a copy that reached new/ (a later one failed, or nobody was
 * told it was stored). Any thread. Returns 0 or an errno. */
static int remove_committed(const char *root, commit_copy *c) {
  if (!c->committed) return 0;
  char path[4096];
  int n = snprintf(path, sizeof path, "%s/%s/new/%s", root, c->folder,
                   lsmtp_maildir_name(c->md));
  c->committed = 0;
  if (n <= 0 || (size_t)n >= sizeof path) return ENAMETOOLONG;
  return unlink(path) == 0 ? 0 : errno;
}

static void commit_work(rx_job *job, int cancelled) {
  commit_job *j = (commit_job *)(void *)job;
  for (size_t i = 0; i < j->n; i++) {
    commit_copy *c = &j->copy[i];
    if (!c->md) continue;
    if (cancelled) {
      lsmtp_maildir_abort(c->md); /* removes its tmp file */
      continue;
    }
    c->committed = lsmtp_maildir_commit(c->md) == LSMTP_OK;
    if (!c->committed && j->all_or_nothing) {
      /* SMTP: none is kept. The failed copy removed its own tmp file; the
       * loop thread logs (and retries a removal that failed here). */
      for (size_t k = 0; k < i; k++)
        if (remove_committed(j->maildir, &j->copy[k]) != 0)
          j->copy[k].committed = 1;
      for (size_t k = i + 1; k < j->n; k++) lsmtp_maildir_abort(j->copy[k].md);
      return;
    }
  }
}

static void free_commit_job(commit_job *j, int remove) {
  for (size_t i = 0; i < j->n; i++) {
    commit_copy *c = &j->copy[i];
    int err = remove ? remove_committed(j->maildir, c) : 0;
    if (err)
      cli_log(CLI_ERROR, "cannot remove %s/%s/new/%s: %s", j->maildir, c->folder,
              lsmtp_maildir_name(c->md), strerror(err));
    lsmtp_maildir_del(c->md); /* aborts (removes tmp/) unless committed */
  }
  free(j);
}

/* LMTP, recipient i of a message whose commits ran: log, count, and after
 * the last one forget the transaction. Returns 1 when stored. */
static int lmtp_outcome(rx_session *s, lsmtp_server *srv, size_t i) {
  int ok = i < s->nrcpts && !s->rcpts[i].failed;
  log_message(s, srv, lsmtp_server_rcpt(srv, i), ok ? "stored" : "451 not stored");
  if (ok) {
    s->delivered++;
    s->app->messages++;
  }
  if (i + 1 >= s->nrcpts) rx_discard(s);
  return ok;
}

static void commit_finish(rx_job *job, rx_session *s) {
  commit_job *j = (commit_job *)(void *)job;
  if (!s) {
    /* The session went away without an answer: nothing was acknowledged,
     * so nothing is kept. */
    cli_log(CLI_INFO, "session %llu: message %llu: not answered (session "
                      "ended): not kept",
            (unsigned long long)j->session_id, (unsigned long long)j->msgno);
    free_commit_job(j, 1);
    return;
  }
  lsmtp_server *srv = lsmtp_net_conn_session(s->conn);
  size_t stored = 0;
  for (size_t i = 0; i < j->n; i++) {
    commit_copy *c = &j->copy[i];
    if (c->committed) stored++;
    if (c->md && !c->committed && lsmtp_maildir_failed_op(c->md)[0])
      log_storage_error(s, i, c->md, 0);
  }
  int code = 0, rc;
  if (j->all_or_nothing) {
    if (stored == j->n) {
      s->delivered++;
      s->app->messages++;
      log_message(s, srv, NULL, "stored");
    } else {
      log_message(s, srv, NULL, "451 not stored");
      code = 451;
    }
    /* A failure took the other copies back already (free retries). */
    free_commit_job(j, code != 0);
    rx_discard(s);
    rc = code ? lsmtp_server_answer(srv, 451, "4.3.0",
                                    "Error: could not store the message")
              : lsmtp_server_answer(srv, 0, NULL, NULL);
  } else {
    for (size_t i = 0; i < j->n && i < s->nrcpts; i++)
      s->rcpts[i].failed = !j->copy[i].committed;
    free_commit_job(j, 0);
    /* Recipient 0 is answered here; the session asks for the others
     * inside lsmtp_server_answer, and rx_on_data_end answers them at once. */
    s->lmtp_ready = 1;
    int ok = lmtp_outcome(s, srv, 0);
    rc = ok ? lsmtp_server_answer(srv, 0, NULL, NULL)
            : lsmtp_server_answer(srv, 451, "4.3.0",
                                  "Error: could not store the message");
  }
  if (rc < 0)
    cli_log(CLI_WARN, "session %llu: cannot answer the message: %s",
            (unsigned long long)s->id, lsmtp_strerror(rc));
  lsmtp_net_conn_kick(s->conn);
}

/* Hand this message's open copies to a worker. Returns LSMTP_SERVER_DEFER,
 * or -1 when no job could be queued (the copies were aborted). */
static int start_commit(rx_session *s) {
  commit_job *j = calloc(1, sizeof *j + s->nrcpts * sizeof j->copy[0]);
  if (j) {
    j->base.work = commit_work;
    j->base.finish = commit_finish;
    j->maildir = s->app->maildir;
    j->all_or_nothing = !s->app->lmtp;
    j->session_id = s->id;
    j->msgno = s->msgno;
    j->n = s->nrcpts;
    for (size_t i = 0; i < s->nrcpts; i++) {
      rx_rcpt *r = &s->rcpts[i];
      memcpy(j->copy[i].folder, r->folder, sizeof r->folder);
      if (!r->failed) j->copy[i].md = r->md;
    }
    if (rx_pool_submit(s->app, s, &j->base) == 0) {
      for (size_t i = 0; i < s->nrcpts; i++)
        if (!s->rcpts[i].failed) s->rcpts[i].md = NULL; /* the job's now */
      return LSMTP_SERVER_DEFER;
    }
    free(j); /* the copies are still the session's */
  }
  cli_log(CLI_WARN, "session %llu: message %llu: no worker free (queue full)",
          (unsigned long long)s->id, (unsigned long long)s->msgno);
  abort_all(s);
  return -1;
}

int rx_on_data_end(lsmtp_server *srv, size_t rcpt_index, void *ud) {
  rx_session *s = ud;
  if (rcpt_index != LSMTP_SERVER_ALL_RCPTS) {
    /* LMTP: this recipient's own answer. All copies are committed in one
     * job when the first is asked for; the others are answered from its
     * outcome. */
    if (rcpt_index >= s->nrcpts) return refuse_storage(srv);
    if (!s->lmtp_ready) {
      int any = 0;
      for (size_t i = 0; i < s->nrcpts; i++)
        if (!s->rcpts[i].failed && s->rcpts[i].md) any = 1;
      if (rcpt_index == 0 && any && start_commit(s) == LSMTP_SERVER_DEFER)
        return LSMTP_SERVER_DEFER;
      /* Nothing to commit, no worker free (or, never expected, not asked
       * for recipient 0 first): every copy fails. */
      abort_all(s);
      s->lmtp_ready = 1;
    }
    return lmtp_outcome(s, srv, rcpt_index) ? LSMTP_OK : refuse_storage(srv);
  }
  int complete = s->nrcpts > 0;
  for (size_t i = 0; i < s->nrcpts; i++)
    if (s->rcpts[i].failed || !s->rcpts[i].md) complete = 0;
  if (complete && start_commit(s) == LSMTP_SERVER_DEFER) return LSMTP_SERVER_DEFER;
  rx_discard(s);
  log_message(s, srv, NULL, "451 not stored");
  return refuse_storage(srv);
}

int rx_sink_data_end(lsmtp_server *srv, size_t rcpt_index, void *ud) {
  rx_session *s = ud;
  if (rcpt_index == LSMTP_SERVER_ALL_RCPTS ||
      rcpt_index + 1 == lsmtp_server_rcpt_count(srv)) {
    s->msgno++;
    s->delivered++;
    s->app->messages++;
    log_message(s, srv, NULL, "discarded");
  }
  return LSMTP_OK;
}

void rx_on_reset(lsmtp_server *srv, int reason, void *ud) {
  rx_session *s = ud;
  /* The transaction ended under a commit in flight (a timeout): its answer
   * is no longer wanted, and what it stored is not kept. */
  rx_pool_cancel(s->app, s);
  int in_data = 0;
  for (size_t i = 0; i < s->nrcpts; i++)
    if (s->rcpts[i].md) in_data = 1;
  rx_discard(s);
  if (reason == LSMTP_ERR_LIMIT)
    log_message(s, srv, NULL, "552 too big");
  else if (reason == LSMTP_ERR_BARE_EOL)
    log_message(s, srv, NULL, "550 bare CR or LF");
  else if (in_data)
    log_message(s, srv, NULL, lsmtp_strerror(reason));
}
