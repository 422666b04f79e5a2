/* Storing messages: one Maildir delivery per accepted recipient, opened at
 * DATA, fed every chunk as it arrives (the message is never held in
 * memory), and committed (fsync, rename into new/, fsync new/) before the
 * client hears 250. In SMTP mode it is all or nothing: if one copy cannot
 * be stored, none is kept and the client gets 451 4.3.0. In LMTP mode each
 * recipient gets its own answer. */
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

/* Commit recipient i; 0 on success. */
static int commit_one(rx_session *s, size_t i) {
  rx_rcpt *r = &s->rcpts[i];
  if (r->failed || !r->md) return -1;
  if (lsmtp_maildir_commit(r->md) != LSMTP_OK) {
    log_storage_error(s, i, r->md, 0);
    r->failed = 1;
    return -1;
  }
  return 0;
}

/* Take back copies already committed when a later one failed (SMTP). */
static void uncommit(rx_session *s, size_t upto) {
  char path[4096];
  for (size_t i = 0; i < upto; i++) {
    rx_rcpt *r = &s->rcpts[i];
    if (!r->md || r->failed) continue;
    int n = snprintf(path, sizeof path, "%s/%s/new/%s", s->app->maildir,
                     r->folder, lsmtp_maildir_name(r->md));
    if (n > 0 && (size_t)n < sizeof path && unlink(path) != 0)
      cli_log(CLI_ERROR, "cannot remove %s: %s", path, strerror(errno));
  }
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

int rx_on_data_end(lsmtp_server *srv, size_t rcpt_index, void *ud) {
  rx_session *s = ud;
  if (rcpt_index != LSMTP_SERVER_ALL_RCPTS) {
    /* LMTP: this recipient's own answer. */
    if (rcpt_index >= s->nrcpts) return refuse_storage(srv);
    int ok = commit_one(s, rcpt_index) == 0;
    log_message(s, srv, lsmtp_server_rcpt(srv, rcpt_index),
                ok ? "stored" : "451 not stored");
    if (ok) {
      s->delivered++;
      s->app->messages++;
    }
    if (rcpt_index + 1 == s->nrcpts) rx_discard(s);
    return ok ? LSMTP_OK : refuse_storage(srv);
  }
  size_t i = 0;
  while (i < s->nrcpts && commit_one(s, i) == 0) i++;
  if (i < s->nrcpts || s->nrcpts == 0) {
    uncommit(s, i);
    rx_discard(s);
    log_message(s, srv, NULL, "451 not stored");
    return refuse_storage(srv);
  }
  rx_discard(s);
  s->delivered++;
  s->app->messages++;
  log_message(s, srv, NULL, "stored");
  return LSMTP_OK;
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
