/* The receiving side of the relay: who may send to whom, and spooling.
 *
 * Relaying (a recipient at a domain that is not ours) is only allowed for
 * clients whose address matches --relay-from (default 127.0.0.0/8 and
 * ::1); everybody else gets 554 5.7.1 for such recipients, so this is not
 * an open relay. Recipients at a --domain are accepted from anybody.
 *
 * A message is streamed into a spool writer as it arrives (our Received:
 * field first); the client hears 250 only after lsmtp_spool_writer_commit
 * made it durable, and then the queue learns about it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cli.h"
#include "relay.h"

typedef struct rl_rcpt {
  char *address;
  char *orcpt; /* "type;xtext" or NULL */
  unsigned notify;
} rl_rcpt;

typedef struct rl_session {
  rl_app *app;
  uint64_t id;
  char ip[64];
  int may_relay;
  char *envid;
  lsmtp_dsn_ret ret;
  int smtputf8;
  rl_rcpt *rcpts;
  size_t nrcpts, cap;
  lsmtp_spool_writer *w; /* between DATA and its end */
  int failed;            /* storing the current message failed */
} rl_session;

/* ---- who may relay ---- */

static int cidr_match(const rl_cidr *c, const unsigned char *addr, int family) {
  if (c->family != family) return 0;
  unsigned full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(c->addr, addr, full) != 0) return 0;
  if (rest == 0) return 1;
  unsigned char mask = (unsigned char)(0xffu << (8 - rest));
  return (c->addr[full] & mask) == (addr[full] & mask);
}

int rl_may_relay(const rl_app *app, const struct sockaddr *sa) {
  unsigned char addr[16];
  int family = sa->sa_family;
  if (family == AF_INET) {
    memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
  } else if (family == AF_INET6) {
    memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(addr, mapped, 12) == 0) { /* ::ffff:a.b.c.d is IPv4 */
      memmove(addr, addr + 12, 4);
      family = AF_INET;
    }
  } else {
    return 0;
  }
  for (size_t i = 0; i < app->nrelay_from; i++)
    if (cidr_match(&app->relay_from[i], addr, family)) return 1;
  return 0;
}

static int domain_listed(const rl_app *app, const char *d, size_t len) {
  for (size_t i = 0; i < app->ndomains; i++)
    if (strlen(app->domains[i]) == len && strncasecmp(app->domains[i], d, len) == 0) return 1;
  return 0;
}

/* ---- per transaction state ---- */

static void forget(rl_session *s) {
  lsmtp_spool_writer_del(s->w); /* abandons an uncommitted message */
  s->w = NULL;
  s->failed = 0;
  for (size_t i = 0; i < s->nrcpts; i++) {
    free(s->rcpts[i].address);
    free(s->rcpts[i].orcpt);
  }
  s->nrcpts = 0;
  free(s->envid);
  s->envid = NULL;
}

static int reply(lsmtp_server *srv, int code, const char *enh, const char *text) {
  return lsmtp_server_set_reply(srv, code, enh, text) == LSMTP_OK ? LSMTP_OK
                                                                   : LSMTP_ERR_ABORTED;
}

static int on_mail(lsmtp_server *srv, const lsmtp_path *path, const lsmtp_mail_params *params,
                   void *ud) {
  (void)path;
  rl_session *s = ud;
  forget(s);
  s->smtputf8 = params->smtputf8;
  s->ret = params->ret;
  if (params->envid.ptr) {
    s->envid = strndup(params->envid.ptr, params->envid.len);
    if (!s->envid) return reply(srv, 452, "4.3.1", "Insufficient system storage");
  }
  return LSMTP_OK;
}

static int on_rcpt(lsmtp_server *srv, const lsmtp_path *path, const lsmtp_rcpt_params *params,
                   void *ud) {
  rl_session *s = ud;
  rl_app *app = s->app;
  char address[LSMTP_MAX_PATH + 16];
  if (path->is_postmaster) {
    /* RFC 5321 §4.5.1: <postmaster> must be accepted; it means ours. */
    if (app->ndomains == 0) return reply(srv, 550, "5.1.1", "No postmaster here");
    snprintf(address, sizeof address, "postmaster@%s", app->domains[0]);
  } else {
    if (path->domain_kind != LSMTP_DOMAIN_NAME)
      return reply(srv, 550, "5.1.2", "Address literals are not relayed");
    int ours = domain_listed(app, path->domain, path->domain_len);
    if (!ours && !s->may_relay) {
      cli_log(CLI_INFO, "session %llu: refused <%.*s> from %s: relay access denied",
              (unsigned long long)s->id, (int)path->mailbox_len, path->mailbox, s->ip);
      return reply(srv, 554, "5.7.1", "Relay access denied");
    }
    snprintf(address, sizeof address, "%.*s", (int)path->mailbox_len, path->mailbox);
  }
  if (s->nrcpts == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    rl_rcpt *r = realloc(s->rcpts, cap * sizeof *r);
    if (!r) return reply(srv, 452, "4.3.1", "Insufficient system storage");
    s->rcpts = r;
    s->cap = cap;
  }
  rl_rcpt *r = &s->rcpts[s->nrcpts];
  r->address = strdup(address);
  r->orcpt = NULL;
  r->notify = params->notify;
  if (params->orcpt_type.ptr) {
    size_t n = params->orcpt_type.len + 1 + params->orcpt_addr.len;
    r->orcpt = malloc(n + 1);
    if (r->orcpt)
      snprintf(r->orcpt, n + 1, "%.*s;%.*s", (int)params->orcpt_type.len,
               params->orcpt_type.ptr, (int)params->orcpt_addr.len, params->orcpt_addr.ptr);
  }
  if (!r->address || (params->orcpt_type.ptr && !r->orcpt)) {
    free(r->address);
    free(r->orcpt);
    return reply(srv, 452, "4.3.1", "Insufficient system storage");
  }
  s->nrcpts++;
  return LSMTP_OK;
}

static int utc_offset_minutes(time_t t) {
  struct tm tm;
  if (!localtime_r(&t, &tm)) return 0;
  return (int)(tm.tm_gmtoff / 60);
}

static int refuse_storage(rl_session *s, lsmtp_server *srv, const char *op) {
  lsmtp_spool *sp = s->app->spool;
  cli_log(CLI_ERROR, "session %llu: spooling failed: %s: %s", (unsigned long long)s->id,
          op ? op : lsmtp_spool_failed_op(sp), strerror(lsmtp_spool_errno(sp)));
  forget(s);
  return reply(srv, 451, "4.3.0", "Error: could not queue the message");
}

static int on_data_start(lsmtp_server *srv, void *ud) {
  rl_session *s = ud;
  rl_app *app = s->app;
  const char *from = lsmtp_server_mail_from(srv);
  uint64_t now = rl_wall_ms();
  int rc = lsmtp_spool_writer_new(&s->w, app->spool, from, s->envid, s->ret, now);
  for (size_t i = 0; rc == LSMTP_OK && i < s->nrcpts; i++)
    rc = lsmtp_spool_writer_add_rcpt(s->w, s->rcpts[i].address, s->rcpts[i].orcpt,
                                     s->rcpts[i].notify);
  if (rc != LSMTP_OK) return refuse_storage(s, srv, lsmtp_strerror(rc));
  /* Our Received: field (RFC 5321 §4.4) goes in front of the message. */
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.helo = lsmtp_server_helo(srv);
  info.ip = s->ip[0] ? s->ip : NULL;
  info.by = app->hostname;
  info.id = lsmtp_spool_writer_id(s->w);
  info.rcpt = s->nrcpts == 1 ? s->rcpts[0].address : NULL;
  info.flags = (lsmtp_server_is_esmtp(srv) ? LSMTP_TRACE_ESMTP : 0u) |
               (s->smtputf8 ? LSMTP_TRACE_UTF8 : 0u) |
               (lsmtp_server_is_tls(srv) ? LSMTP_TRACE_TLS : 0u);
  info.time = (time_t)(now / 1000);
  info.utc_offset = utc_offset_minutes(info.time);
  char hdr[4096];
  size_t n = lsmtp_trace_received(hdr, sizeof hdr, &info);
  if (n == 0 || n >= sizeof hdr) return refuse_storage(s, srv, "Received: field");
  if (lsmtp_spool_writer_write(s->w, hdr, n) != LSMTP_OK) return refuse_storage(s, srv, NULL);
  return LSMTP_OK;
}

static int on_data_chunk(lsmtp_server *srv, const char *data, size_t len, void *ud) {
  (void)srv;
  rl_session *s = ud;
  if (!s->w || s->failed) return LSMTP_OK; /* refused at the end */
  if (lsmtp_spool_writer_write(s->w, data, len) != LSMTP_OK) {
    cli_log(CLI_ERROR, "session %llu: spooling failed: %s: %s", (unsigned long long)s->id,
            lsmtp_spool_failed_op(s->app->spool), strerror(lsmtp_spool_errno(s->app->spool)));
    s->failed = 1;
  }
  return LSMTP_OK;
}

static int on_data_end(lsmtp_server *srv, size_t rcpt_index, void *ud) {
  (void)rcpt_index;
  rl_session *s = ud;
  rl_app *app = s->app;
  if (!s->w || s->failed) {
    forget(s);
    return reply(srv, 451, "4.3.0", "Error: could not queue the message");
  }
  if (lsmtp_spool_writer_commit(s->w) != LSMTP_OK) return refuse_storage(s, srv, NULL);
  /* Durable now: only from here on may the client hear 250. */
  char id[LSMTP_SPOOL_ID_MAX], text[128];
  snprintf(id, sizeof id, "%s", lsmtp_spool_writer_id(s->w));
  const char *from = lsmtp_server_mail_from(srv);
  cli_log(CLI_INFO, "%s: from=<%s> rcpts=%zu size=%llu client=%s: queued", id,
          from ? from : "", s->nrcpts,
          (unsigned long long)lsmtp_spool_writer_size(s->w), s->ip);
  forget(s);
  rl_queue_add(app, id, 1);
  snprintf(text, sizeof text, "Ok: queued as %s", id);
  return reply(srv, 250, "2.0.0", text);
}

static void on_reset(lsmtp_server *srv, int reason, void *ud) {
  (void)srv;
  (void)reason;
  forget(ud);
}

static void session_log(lsmtp_server *srv, lsmtp_server_log_level level, const char *msg,
                        void *ud) {
  (void)srv;
  rl_session *s = ud;
  cli_level l = level == LSMTP_SERVER_LOG_ERROR ? CLI_ERROR
                : level == LSMTP_SERVER_LOG_DEBUG ? CLI_DEBUG : CLI_VERBOSE;
  if (cli_log_enabled(l)) cli_log(l, "session %llu: %s", (unsigned long long)s->id, msg);
}

/* ---- connections ---- */

static int on_accept(lsmtp_net_conn *conn, void **session_ud, void *ud) {
  rl_app *app = ud;
  rl_session *s = calloc(1, sizeof *s);
  if (!s) return LSMTP_ERR_NOMEM;
  s->app = app;
  s->id = lsmtp_net_conn_id(conn);
  socklen_t len;
  const struct sockaddr *sa = lsmtp_net_conn_peer_addr(conn, &len);
  s->may_relay = rl_may_relay(app, sa);
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, s->ip,
              sizeof s->ip);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, s->ip,
              sizeof s->ip);
  cli_log(CLI_VERBOSE, "session %llu: connect from %s (%s)", (unsigned long long)s->id,
          lsmtp_net_conn_peer(conn), s->may_relay ? "may relay" : "no relaying");
  *session_ud = s;
  return LSMTP_OK;
}

static void on_close(lsmtp_net_conn *conn, int reason, void *session_ud, void *ud) {
  (void)conn;
  (void)ud;
  rl_session *s = session_ud;
  cli_log(CLI_VERBOSE, "session %llu: closed: %s", (unsigned long long)s->id,
          reason == LSMTP_OK ? "done" : lsmtp_strerror(reason));
  forget(s); /* a message not acknowledged is not kept */
  free(s->rcpts);
  free(s);
}

static void on_drained(lsmtp_net_server *ns, void *ud) {
  (void)ns;
  rl_app *app = ud;
  if (rl_queue_in_flight(app) == 0) lsmtp_loop_stop(app->loop);
}

void rl_accept_callbacks(lsmtp_server_callbacks *cb, lsmtp_net_server_hooks *hooks) {
  memset(cb, 0, sizeof *cb);
  cb->on_mail = on_mail;
  cb->on_rcpt = on_rcpt;
  cb->on_data_start = on_data_start;
  cb->on_data_chunk = on_data_chunk;
  cb->on_data_end = on_data_end;
  cb->on_reset = on_reset;
  cb->on_log = session_log;
  memset(hooks, 0, sizeof *hooks);
  hooks->on_accept = on_accept;
  hooks->on_close = on_close;
  hooks->on_drained = on_drained;
}
