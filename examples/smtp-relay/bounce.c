/* Delivery status notifications (RFC 3464): when recipients fail for
 * good, the sender gets a multipart/report message with a readable
 * explanation, a message/delivery-status part (one block per failed
 * recipient: Final-Recipient, Action: failed, Status, Remote-MTA,
 * Diagnostic-Code) and the original header (text/rfc822-headers; the
 * header is all we return, whatever RET= asked, so a bounce stays small).
 * The DSN goes into the same spool with a null reverse path, so it is
 * delivered, retried and logged like any message, and can never cause a
 * bounce itself (the queue refuses to bounce <>). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"

/* How much of the original header goes back (the rest is cut). */
#define RL_BOUNCE_HEADER_MAX (64u * 1024u)

typedef struct out {
  lsmtp_spool_writer *w;
  int failed;
} out;

static void put(out *o, const char *s) {
  if (!o->failed && lsmtp_spool_writer_write(o->w, s, strlen(s)) != LSMTP_OK) o->failed = 1;
}

static void putf(out *o, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void putf(out *o, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) {
    o->failed = 1;
    return;
  }
  put(o, line);
}

static void date_of(char *buf, size_t cap, uint64_t ms) {
  time_t t = (time_t)(ms / 1000u);
  struct tm tm;
  int off = localtime_r(&t, &tm) ? (int)(tm.tm_gmtoff / 60) : 0;
  if (lsmtp_trace_date(buf, cap, t, off) == 0) snprintf(buf, cap, "unknown");
}

/* Copy the original header (up to the empty line) of the message file,
 * with line ends made CRLF and the size bounded. */
static void copy_header(rl_app *app, const lsmtp_spool_entry *e, out *o) {
  int fd;
  if (lsmtp_spool_open_message(app->spool, e, &fd) != LSMTP_OK) {
    put(o, "X-Original-Header: unavailable\r\n");
    return;
  }
  char *buf = malloc(RL_BOUNCE_HEADER_MAX);
  size_t len = 0;
  while (buf && len < RL_BOUNCE_HEADER_MAX) {
    ssize_t n = read(fd, buf + len, RL_BOUNCE_HEADER_MAX - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  if (!buf) {
    o->failed = 1;
    return;
  }
  size_t end = 0, line_start = 0;
  for (; end < len; end++) {
    if (buf[end] != '\n') continue;
    size_t l = end - line_start; /* without the LF */
    if (l == 0 || (l == 1 && buf[line_start] == '\r')) break; /* the empty line */
    line_start = end + 1;
  }
  /* Up to the empty line, or (no empty line within the bound) whole
   * lines only. */
  end = line_start;
  size_t start = 0;
  for (size_t i = 0; i < end; i++) {
    if (buf[i] != '\n') continue;
    size_t stop = i > start && buf[i - 1] == '\r' ? i - 1 : i;
    if (!o->failed &&
        (lsmtp_spool_writer_write(o->w, buf + start, stop - start) != LSMTP_OK ||
         lsmtp_spool_writer_write(o->w, "\r\n", 2) != LSMTP_OK))
      o->failed = 1;
    start = i + 1;
  }
  free(buf);
}

int rl_bounce(rl_app *app, const lsmtp_spool_entry *e, const unsigned char *failed,
              char *id_out, size_t cap) {
  const char *sender = lsmtp_spool_entry_from(e);
  const char *orig_id = lsmtp_spool_entry_id(e);
  if (!sender[0]) return -1; /* never bounce a bounce */
  uint64_t now = rl_wall_ms();
  out o = {NULL, 0};
  int rc = lsmtp_spool_writer_new(&o.w, app->spool, NULL, NULL, LSMTP_RET_NONE, now);
  if (rc == LSMTP_OK) rc = lsmtp_spool_writer_add_rcpt(o.w, sender, NULL, 0);
  if (rc != LSMTP_OK) {
    cli_log(CLI_ERROR, "%s: cannot queue the DSN: %s", orig_id, lsmtp_strerror(rc));
    lsmtp_spool_writer_del(o.w);
    return -1;
  }
  const char *bid = lsmtp_spool_writer_id(o.w);
  char date[64], arrival[64], boundary[128];
  date_of(date, sizeof date, now);
  date_of(arrival, sizeof arrival, lsmtp_spool_entry_arrival(e));
  snprintf(boundary, sizeof boundary, "=_lsmtp-dsn.%s", bid); /* <= 70 octets */

  putf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", app->hostname);
  putf(&o, "To: <%s>\r\n", sender);
  put(&o, "Subject: Undelivered Mail Returned to Sender\r\n");
  putf(&o, "Date: %s\r\n", date);
  putf(&o, "Message-ID: <%s@%s>\r\n", bid, app->hostname);
  put(&o, "Auto-Submitted: auto-replied\r\n");
  put(&o, "MIME-Version: 1.0\r\n");
  putf(&o,
       "Content-Type: multipart/report; report-type=delivery-status;\r\n"
       "\tboundary=\"%s\"\r\n",
       boundary);
  put(&o, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

  /* 1: for people */
  putf(&o, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary);
  putf(&o,
       "This is the mail system at host %s.\r\n\r\n"
       "Your message (queue id %s) could not be delivered to one or more\r\n"
       "recipients. It has been given up on.\r\n\r\n",
       app->hostname, orig_id);
  size_t n = lsmtp_spool_entry_rcpt_count(e);
  for (size_t i = 0; i < n; i++) {
    if (!failed[i]) continue;
    const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(e, i);
    putf(&o, "<%s>: %s%s%s%d %s %s\r\n", r->address, r->remote[0] ? "host " : "",
         r->remote[0] ? r->remote : "", r->remote[0] ? " said: " : "", r->code, r->status,
         r->text);
  }
  put(&o, "\r\n");

  /* 2: for programs (RFC 3464 §2.2, §2.3) */
  putf(&o, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
  putf(&o, "Reporting-MTA: dns; %s\r\n", app->hostname);
  putf(&o, "X-Lsmtp-Queue-ID: %s\r\n", orig_id);
  if (lsmtp_spool_entry_envid(e)[0])
    putf(&o, "Original-Envelope-Id: %s\r\n", lsmtp_spool_entry_envid(e));
  putf(&o, "Arrival-Date: %s\r\n", arrival);
  for (size_t i = 0; i < n; i++) {
    if (!failed[i]) continue;
    const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(e, i);
    put(&o, "\r\n");
    if (r->orcpt[0]) putf(&o, "Original-Recipient: %s\r\n", r->orcpt);
    putf(&o, "Final-Recipient: rfc822; %s\r\n", r->address);
    put(&o, "Action: failed\r\n");
    /* Status must be 5.x.x for a failure. */
    putf(&o, "Status: %s\r\n", r->status[0] == '5' ? r->status : "5.0.0");
    /* Remote-MTA is "host[addr]:port": the name part is what RFC 3464 wants. */
    if (r->remote[0] && strcmp(r->remote, "none") != 0) {
      size_t k = strcspn(r->remote, "[");
      putf(&o, "Remote-MTA: dns; %.*s\r\n", (int)k, r->remote);
    }
    if (r->code) putf(&o, "Diagnostic-Code: smtp; %d %s %s\r\n", r->code, r->status, r->text);
    putf(&o, "Last-Attempt-Date: %s\r\n", date);
  }
  put(&o, "\r\n");

  /* 3: the original header */
  putf(&o, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
  copy_header(app, e, &o);
  putf(&o, "\r\n--%s--\r\n", boundary);

  if (o.failed || lsmtp_spool_writer_commit(o.w) != LSMTP_OK) {
    cli_log(CLI_ERROR, "%s: cannot queue the DSN: %s: %s", orig_id,
            lsmtp_spool_failed_op(app->spool), strerror(lsmtp_spool_errno(app->spool)));
    lsmtp_spool_writer_del(o.w);
    return -1;
  }
  snprintf(id_out, cap, "%s", bid);
  lsmtp_spool_writer_del(o.w);
  return 0;
}
