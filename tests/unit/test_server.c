/* The server session: every transcript in tests/unit/transcripts/server/
 * run whole, byte by byte and split everywhere, each with decisions made at
 * once, deferred, and with DATA paused after every span; plus hand-written
 * tests for deferral order, pause/resume, LMTP, limits, timers, shutdown,
 * abort, early talkers, STARTTLS (the plaintext injection of
 * CVE-2011-0411), AUTH and allocation failure walks.
 *
 * Transcripts simulate TLS: the client line "<TLS handshake>" stands for
 * the handshake; the spy checks that the session asked for it
 * (lsmtp_server_starttls_pending) and calls lsmtp_server_tls_started when
 * the whole marker was fed. Bytes between STARTTLS and the marker reach
 * the session (as they would in one read) and must be thrown away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support_failalloc.h"
#include "support_transcript.h"
#include <lsmtp/server.h>

/* ------------------------------------------------------------------ */
/* A scripted host: decisions from "@refuse" directives, events logged.  */

typedef struct spy {
  lsmtp_server_config *cfg;
  lsmtp_server *srv;
  const transcript *t;
  int defer, pause;
  /* The answer a deferred decision will get. */
  int have_deferred, def_code;
  char def_enh[16], def_text[256];
  int paused;
  lsmtp__buf events;
  lsmtp__buf msg;
  int show_protocol; /* "@protocol": report lsmtp_server_protocol per message */
} spy;

#define TLS_MARKER "<TLS handshake>\r\n"
#define TLS_MARKER_LEN (sizeof TLS_MARKER - 1)

/* "@refuse STAGE MATCH CODE ENH TEXT": find the rule for stage/subject. */
static int find_refusal(const spy *s, const char *stage, const char *subject,
                        int *code, char *enh, char *text) {
  if (!s->t) return 0;
  size_t from = 0;
  const char *d;
  while ((d = transcript_directive(s->t, "refuse", from, &from)) != NULL) {
    char st[32], match[300], e[16];
    int c, used = 0;
    if (sscanf(d, "%31s %299s %d %15s %n", st, match, &c, e, &used) < 4) continue;
    if (strcmp(st, stage) != 0) continue;
    if (strcmp(match, "*") != 0 && (!subject || strcmp(match, subject) != 0)) continue;
    *code = c;
    snprintf(enh, 16, "%s", strcmp(e, "-") == 0 ? "" : e);
    snprintf(text, 256, "%s", used && strcmp(d + used, "-") != 0 ? d + used : "");
    return 1;
  }
  return 0;
}

/* Decide now, or defer with the same answer for unblock() to give. */
static int decide(spy *s, const char *stage, const char *subject) {
  int code = 0;
  char enh[16] = "", text[256] = "";
  find_refusal(s, stage, subject, &code, enh, text);
  if (s->defer) {
    s->have_deferred = 1;
    s->def_code = code;
    memcpy(s->def_enh, enh, sizeof enh);
    memcpy(s->def_text, text, sizeof text);
    return LSMTP_SERVER_DEFER;
  }
  if (code) {
    int rc = lsmtp_server_set_reply(s->srv, code, enh[0] ? enh : NULL,
                                    text[0] ? text : NULL);
    assert_int_equal(rc, LSMTP_OK);
  }
  return LSMTP_OK;
}

static void event(spy *s, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  lsmtp__buf_append(&s->events, line, strlen(line));
}

static int cb_connect(lsmtp_server *srv, void *ud) {
  (void)srv;
  return decide(ud, "connect", NULL);
}

static int cb_helo(lsmtp_server *srv, const char *name, size_t len, int is_ehlo,
                   void *ud) {
  (void)srv;
  (void)is_ehlo;
  char n[300];
  snprintf(n, sizeof n, "%.*s", (int)len, name);
  return decide(ud, "helo", n);
}

static int cb_mail(lsmtp_server *srv, const lsmtp_path *path,
                   const lsmtp_mail_params *params, void *ud) {
  (void)srv;
  char n[330];
  snprintf(n, sizeof n, "%.*s", (int)path->mailbox_len,
           path->mailbox ? path->mailbox : "");
  assert_null(lsmtp_server_mail_from(srv));
  if (params->auth.ptr)
    event(ud, "mail auth=%.*s\n", (int)params->auth.len, params->auth.ptr);
  return decide(ud, "mail", n);
}

static int cb_rcpt(lsmtp_server *srv, const lsmtp_path *path,
                   const lsmtp_rcpt_params *params, void *ud) {
  (void)srv;
  (void)params;
  char n[330];
  snprintf(n, sizeof n, "%.*s", (int)path->mailbox_len,
           path->mailbox ? path->mailbox : "");
  return decide(ud, "rcpt", n);
}

static int cb_data_start(lsmtp_server *srv, void *ud) {
  (void)srv;
  spy *s = ud;
  s->msg.len = 0;
  return decide(s, "data", NULL);
}

static int cb_chunk(lsmtp_server *srv, const char *data, size_t len, void *ud) {
  (void)srv;
  spy *s = ud;
  assert_true(len > 0);
  assert_false(s->paused);
  lsmtp__buf_append(&s->msg, data, len);
  if (s->pause) {
    s->paused = 1;
    return LSMTP_PAUSED;
  }
  return LSMTP_OK;
}

static int cb_data_end(lsmtp_server *srv, size_t idx, void *ud) {
  spy *s = ud;
  if (idx == LSMTP_SERVER_ALL_RCPTS || idx == 0) {
    event(s, "message from=<%s> to=", lsmtp_server_mail_from(srv));
    for (size_t i = 0; i < lsmtp_server_rcpt_count(srv); i++)
      event(s, "%s<%s>", i ? "," : "", lsmtp_server_rcpt(srv, i));
    event(s, " size=%llu data=", (unsigned long long)lsmtp_server_message_size(srv));
    transcript_escape(&s->events, s->msg.data ? s->msg.data : "", s->msg.len);
    event(s, "\n");
    assert_int_equal(lsmtp_server_message_size(srv), s->msg.len);
    s->msg.len = 0;
    if (s->show_protocol) event(s, "protocol %s\n", lsmtp_server_protocol(srv));
  }
  const char *who = idx == LSMTP_SERVER_ALL_RCPTS ? "*" : lsmtp_server_rcpt(srv, idx);
  assert_non_null(who);
  return decide(s, "end", who);
}

static void cb_reset(lsmtp_server *srv, int reason, void *ud) {
  (void)srv;
  spy *s = ud;
  s->msg.len = 0;
  event(s, "reset %s\n", lsmtp_status_name(reason));
}

/* "@user NAME PASSWORD" lines are the accounts; a matching password is
 * accepted, anything else refused with LSMTP_ERR_AUTH (or, deferred, with
 * an answer of 535). */
static int cb_auth(lsmtp_server *srv, const char *mech, const char *authzid,
                   const char *authcid, const char *password, size_t password_len,
                   void *ud) {
  spy *s = ud;
  assert_int_equal(strlen(password), password_len);
  event(s, "auth %s authzid=%s authcid=%s\n", mech, authzid, authcid);
  int ok = 0;
  size_t from = 0;
  const char *d;
  while ((d = transcript_directive(s->t, "user", from, &from)) != NULL) {
    char name[64], pw[64];
    if (sscanf(d, "%63s %63s", name, pw) == 2 && strcmp(name, authcid) == 0 &&
        strlen(pw) == password_len && memcmp(pw, password, password_len) == 0)
      ok = 1;
  }
  assert_null(lsmtp_server_auth_id(srv));
  if (s->defer) {
    s->have_deferred = 1;
    s->def_code = ok ? 0 : 535;
    s->def_enh[0] = s->def_text[0] = '\0';
    return LSMTP_SERVER_DEFER;
  }
  return ok ? LSMTP_OK : LSMTP_ERR_AUTH;
}

static const lsmtp_server_callbacks spy_callbacks = {
    .on_connect = cb_connect,
    .on_helo = cb_helo,
    .on_mail = cb_mail,
    .on_rcpt = cb_rcpt,
    .on_data_start = cb_data_start,
    .on_data_chunk = cb_chunk,
    .on_data_end = cb_data_end,
    .on_reset = cb_reset,
};

static unsigned ext_bit(const char *name) {
  static const struct { const char *n; unsigned b; } map[] = {
      {"PIPELINING", LSMTP_EXT_PIPELINING}, {"SIZE", LSMTP_EXT_SIZE},
      {"8BITMIME", LSMTP_EXT_8BITMIME}, {"SMTPUTF8", LSMTP_EXT_SMTPUTF8},
      {"ENHANCEDSTATUSCODES", LSMTP_EXT_ENHANCEDSTATUSCODES},
      {"CHUNKING", LSMTP_EXT_CHUNKING}, {"BINARYMIME", LSMTP_EXT_BINARYMIME},
      {"DSN", LSMTP_EXT_DSN}, {"HELP", LSMTP_EXT_HELP},
      {"STARTTLS", LSMTP_EXT_STARTTLS}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i].n, name) == 0) return map[i].b;
  fail_msg("unknown extension %s", name);
  return 0;
}

static lsmtp_server_limit limit_id(const char *name) {
  static const char *names[] = {"line", "auth_line", "text_line", "message_size",
                                "recipients", "errors", "messages", "junk", "output"};
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i], name) == 0) return (lsmtp_server_limit)i;
  fail_msg("unknown limit %s", name);
  return LSMTP_SERVER_LIMIT_COUNT_;
}

/* Build the config a transcript's directives describe. */
static lsmtp_server_config *config_for(const transcript *t,
                                       const lsmtp_allocator *alloc) {
  lsmtp_server_config *cfg = NULL;
  if (lsmtp_server_config_new(&cfg, alloc) != LSMTP_OK) return NULL;
  if (lsmtp_server_config_set_hostname(cfg, "mx.example.org") != LSMTP_OK) goto fail;
  if (!t) return cfg;
  unsigned flags = 0, ext = LSMTP_EXT_DEFAULT;
  if (transcript_directive(t, "lmtp", 0, NULL)) flags |= LSMTP_SERVER_LMTP;
  if (transcript_directive(t, "normalize", 0, NULL)) flags |= LSMTP_SERVER_NORMALIZE_EOL;
  const char *d;
  size_t from = 0;
  while ((d = transcript_directive(t, "flag", from, &from)) != NULL) {
    if (strcmp(d, "require-tls") == 0) flags |= LSMTP_SERVER_REQUIRE_TLS;
    else if (strcmp(d, "plaintext-auth") == 0) flags |= LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH;
    else if (strcmp(d, "require-auth") == 0) flags |= LSMTP_SERVER_REQUIRE_AUTH;
    else if (strcmp(d, "proxy-auth") == 0) flags |= LSMTP_SERVER_ALLOW_PROXY_AUTH;
    else fail_msg("unknown flag %s", d);
  }
  assert_int_equal(lsmtp_server_config_set_flags(cfg, flags), LSMTP_OK);
  from = 0;
  while ((d = transcript_directive(t, "ext-on", from, &from)) != NULL) ext |= ext_bit(d);
  from = 0;
  while ((d = transcript_directive(t, "ext-off", from, &from)) != NULL) ext &= ~ext_bit(d);
  assert_int_equal(lsmtp_server_config_set_extensions(cfg, ext), LSMTP_OK);
  from = 0;
  while ((d = transcript_directive(t, "limit", from, &from)) != NULL) {
    char name[32];
    unsigned long long v;
    assert_int_equal(sscanf(d, "%31s %llu", name, &v), 2);
    assert_int_equal(lsmtp_server_config_set_limit(cfg, limit_id(name), v), LSMTP_OK);
  }
  if ((d = transcript_directive(t, "greeting", 0, NULL)) != NULL)
    assert_int_equal(lsmtp_server_config_set_greeting(cfg, d), LSMTP_OK);
  return cfg;
fail:
  lsmtp_server_config_del(cfg);
  return NULL;
}

typedef struct mode {
  int defer, pause;
} mode;

static void spy_destroy(void *p) {
  spy *s = p;
  lsmtp_server_del(s->srv);
  lsmtp_server_config_del(s->cfg);
  lsmtp__buf_free(&s->events);
  lsmtp__buf_free(&s->msg);
  free(s);
}

static void *spy_create(const transcript *t, void *ctx) {
  const mode *m = ctx;
  spy *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->t = t;
  s->defer = m->defer;
  s->pause = m->pause;
  lsmtp__buf_init(&s->events, NULL);
  lsmtp__buf_init(&s->msg, NULL);
  s->cfg = config_for(t, NULL);
  assert_non_null(s->cfg);
  s->show_protocol = transcript_directive(t, "protocol", 0, NULL) != NULL;
  lsmtp_server_callbacks cb = spy_callbacks;
  if (transcript_directive(t, "auth", 0, NULL)) cb.on_auth = cb_auth;
  assert_int_equal(lsmtp_server_new(&s->srv, s->cfg, &cb, s), LSMTP_OK);
  if (transcript_directive(t, "implicit-tls", 0, NULL))
    assert_int_equal(lsmtp_server_tls_started(s->srv, "TLSv1.3", "TLS_AES_128_GCM_SHA256"),
                     LSMTP_OK);
  int rc = lsmtp_server_start(s->srv);
  assert_true(rc == LSMTP_OK || rc == LSMTP_PAUSED);
  return s;
}

/* The TLS handshake marker at or after pos: its start, or the input
 * length when there is none. */
static size_t next_marker(const transcript *t, size_t pos) {
  size_t back = pos >= TLS_MARKER_LEN - 1 ? TLS_MARKER_LEN - 1 : pos;
  for (size_t i = pos - back; i + TLS_MARKER_LEN <= t->input.len; i++)
    if (memcmp(t->input.data + i, TLS_MARKER, TLS_MARKER_LEN) == 0 &&
        i + TLS_MARKER_LEN > pos)
      return i;
  return t->input.len;
}

static int spy_feed(void *p, const char *data, size_t len, size_t *consumed) {
  spy *s = p;
  size_t pos = (size_t)(data - s->t->input.data);
  size_t m = next_marker(s->t, pos);
  if (m <= pos) { /* inside the handshake: the session is not involved */
    assert_true(lsmtp_server_starttls_pending(s->srv));
    size_t take = m + TLS_MARKER_LEN - pos;
    if (take > len) take = len;
    *consumed = take;
    if (pos + take == m + TLS_MARKER_LEN) {
      event(s, "tls started, %llu octets discarded\n",
            (unsigned long long)lsmtp_server_discarded(s->srv));
      assert_int_equal(lsmtp_server_tls_started(s->srv, "TLSv1.3", "TLS_AES_128_GCM_SHA256"),
                       LSMTP_OK);
      assert_false(lsmtp_server_starttls_pending(s->srv));
    }
    return LSMTP_OK;
  }
  if (m - pos < len) len = m - pos; /* the handshake starts there */
  int rc = lsmtp_server_feed(s->srv, data, len, consumed);
  assert_true(*consumed <= len);
  if (rc == LSMTP_OK) assert_int_equal(*consumed, len);
  /* After STARTTLS everything fed is taken and thrown away. */
  if (lsmtp_server_starttls_pending(s->srv)) {
    assert_int_equal(rc, LSMTP_PAUSED);
    assert_int_equal(*consumed, len);
  }
  return rc;
}

static int spy_unblock(void *p) {
  spy *s = p;
  if (s->have_deferred) {
    s->have_deferred = 0;
    int rc = lsmtp_server_answer(s->srv, s->def_code, s->def_enh[0] ? s->def_enh : NULL,
                                 s->def_text[0] ? s->def_text : NULL);
    assert_true(rc == LSMTP_OK || rc == LSMTP_PAUSED);
    return 1;
  }
  if (s->paused) {
    s->paused = 0;
    int rc = lsmtp_server_resume(s->srv);
    assert_true(rc == LSMTP_OK || rc == LSMTP_PAUSED);
    return 1;
  }
  return 0;
}

static void spy_drain(void *p, lsmtp__buf *out) {
  spy *s = p;
  const char *data;
  size_t n = lsmtp_server_pending(s->srv, &data);
  if (n) {
    lsmtp__buf_append(out, data, n);
    assert_int_equal(lsmtp_server_consume(s->srv, n), LSMTP_OK);
  }
  assert_int_equal(lsmtp_server_pending(s->srv, &data), 0);
}

static int spy_closed(void *p) { return lsmtp_server_want_close(((spy *)p)->srv); }

static void spy_events(void *p, lsmtp__buf *out) {
  spy *s = p;
  lsmtp__buf_append(out, s->events.data ? s->events.data : "", s->events.len);
}

static const transcript_peer_ops spy_ops = {spy_create, spy_feed, spy_unblock,
                                            spy_drain, spy_closed, spy_events,
                                            spy_destroy};

/* Every reply line must look like one: "NNN" then SP or "-". */
static void assert_valid_replies(const char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const char *e = memchr(p + i, '\n', n - i);
    assert_non_null(e);
    size_t len = (size_t)(e - (p + i)) + 1;
    assert_true(len >= 6);
    assert_true(p[i] >= '2' && p[i] <= '5');
    assert_true(p[i + 1] >= '0' && p[i + 1] <= '9');
    assert_true(p[i + 2] >= '0' && p[i + 2] <= '9');
    assert_true(p[i + 3] == ' ' || p[i + 3] == '-');
    assert_true(p[i + len - 2] == '\r');
    i += len;
  }
}

static void test_transcripts(void **state) {
  (void)state;
  const char *dir = LSMTP_TEST_DATA_DIR "/unit/transcripts/server";
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int files = 0, failures = 0;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".txt") != 0) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    transcript t;
    assert_int_equal(transcript_load(&t, path, 1), 0);
    assert_valid_replies(t.output.data ? t.output.data : "", t.output.len);
    static const mode modes[] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    for (size_t m = 0; m < 4; m++) {
      if (transcript_run_all(&t, &spy_ops, (void *)&modes[m]) != 0) {
        fprintf(stderr, "  ^ mode defer=%d pause=%d\n", modes[m].defer, modes[m].pause);
        failures++;
        break;
      }
    }
    transcript_free(&t);
    files++;
  }
  closedir(d);
  assert_true(files >= 10);
  assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------------ */
/* Hand-written tests                                                  */

typedef struct host {
  lsmtp_server_config *cfg;
  lsmtp_server *srv;
  lsmtp__buf out;
  lsmtp__buf msg;
  lsmtp__buf events;
  int defer_rcpt, defer_end, pause_chunks, abort_mail;
  int rcpt_calls, end_calls, mail_calls;
  int auth_rc, auth_calls;  /* what on_auth returns; how often it ran */
  int auth_code;            /* with auth_rc LSMTP_OK: set_reply this code */
  char auth_pw[64];         /* the password on_auth saw */
  lsmtp__buf logs;          /* every log line, "\n" after each */
  size_t end_idx[8];
} host;

static int h_rcpt(lsmtp_server *srv, const lsmtp_path *p,
                  const lsmtp_rcpt_params *params, void *ud) {
  (void)srv;
  (void)p;
  (void)params;
  host *h = ud;
  h->rcpt_calls++;
  return h->defer_rcpt ? LSMTP_SERVER_DEFER : LSMTP_OK;
}

static int h_mail(lsmtp_server *srv, const lsmtp_path *p,
                  const lsmtp_mail_params *params, void *ud) {
  (void)srv;
  (void)p;
  (void)params;
  host *h = ud;
  h->mail_calls++;
  return h->abort_mail ? LSMTP_ERR_STORAGE : LSMTP_OK;
}

static int h_chunk(lsmtp_server *srv, const char *data, size_t len, void *ud) {
  (void)srv;
  host *h = ud;
  lsmtp__buf_append(&h->msg, data, len);
  return h->pause_chunks ? LSMTP_PAUSED : LSMTP_OK;
}

static int h_end(lsmtp_server *srv, size_t idx, void *ud) {
  (void)srv;
  host *h = ud;
  if (h->end_calls < 8) h->end_idx[h->end_calls] = idx;
  h->end_calls++;
  return h->defer_end ? LSMTP_SERVER_DEFER : LSMTP_OK;
}

static void h_reset(lsmtp_server *srv, int reason, void *ud) {
  (void)srv;
  host *h = ud;
  char line[64];
  snprintf(line, sizeof line, "reset %s\n", lsmtp_status_name(reason));
  lsmtp__buf_append(&h->events, line, strlen(line) + 1);
  h->events.len--; /* keep it a C string */
}

static void h_log(lsmtp_server *srv, lsmtp_server_log_level level, const char *msg,
                  void *ud) {
  (void)srv;
  (void)level;
  host *h = ud;
  assert_non_null(msg);
  assert_null(strchr(msg, '\n'));
  if (h) {
    lsmtp__buf_append(&h->logs, msg, strlen(msg));
    lsmtp__buf_append(&h->logs, "\n", 2); /* keep it a C string */
    h->logs.len--;
  }
}

static int h_auth(lsmtp_server *srv, const char *mech, const char *authzid,
                  const char *authcid, const char *password, size_t password_len,
                  void *ud) {
  host *h = ud;
  h->auth_calls++;
  assert_string_equal(mech, "PLAIN");
  assert_string_equal(authzid, "");
  assert_string_equal(authcid, "alice");
  assert_true(password_len < sizeof h->auth_pw);
  memcpy(h->auth_pw, password, password_len);
  h->auth_pw[password_len] = '\0';
  if (h->auth_code)
    assert_int_equal(lsmtp_server_set_reply(srv, h->auth_code, NULL, "Not today"), LSMTP_OK);
  return h->auth_rc;
}

static void host_init(host *h, unsigned flags) {
  memset(h, 0, sizeof *h);
  lsmtp__buf_init(&h->out, NULL);
  lsmtp__buf_init(&h->msg, NULL);
  lsmtp__buf_init(&h->events, NULL);
  lsmtp__buf_init(&h->logs, NULL);
  assert_int_equal(lsmtp_server_config_new(&h->cfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_hostname(h->cfg, "mx.example.org"), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_flags(h->cfg, flags), LSMTP_OK);
}

static void host_start(host *h) {
  lsmtp_server_callbacks cb = {0};
  cb.on_mail = h_mail;
  cb.on_rcpt = h_rcpt;
  cb.on_data_chunk = h_chunk;
  cb.on_data_end = h_end;
  cb.on_reset = h_reset;
  cb.on_log = h_log;
  cb.on_auth = h_auth;
  assert_int_equal(lsmtp_server_new(&h->srv, h->cfg, &cb, h), LSMTP_OK);
  assert_int_equal(lsmtp_server_start(h->srv), LSMTP_OK);
}

static void host_free(host *h) {
  lsmtp_server_del(h->srv);
  lsmtp_server_config_del(h->cfg);
  lsmtp__buf_free(&h->out);
  lsmtp__buf_free(&h->msg);
  lsmtp__buf_free(&h->events);
  lsmtp__buf_free(&h->logs);
}

/* Move all pending output into h->out and return it NUL-terminated. */
static const char *drain(host *h) {
  const char *p;
  size_t n = lsmtp_server_pending(h->srv, &p);
  lsmtp__buf_append(&h->out, p, n);
  lsmtp_server_consume(h->srv, n);
  lsmtp__buf_append(&h->out, "", 1);
  h->out.len--;
  return h->out.data;
}

static void expect_out(host *h, const char *want) {
  drain(h);
  assert_string_equal(h->out.data ? h->out.data : "", want);
  h->out.len = 0;
}

static int feed_str(host *h, const char *s, size_t *used) {
  return lsmtp_server_feed(h->srv, s, strlen(s), used);
}

#define GREETING "220 mx.example.org ESMTP\r\n"

static void test_pipelined_rcpts_deferred(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  host_start(&h);
  h.defer_rcpt = 1;
  const char *in = "HELO c.example\r\nMAIL FROM:<a@b.example>\r\n"
                   "RCPT TO:<r1@x.example>\r\nRCPT TO:<r2@x.example>\r\n"
                   "RCPT TO:<r3@x.example>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n";
  size_t len = strlen(in), off = 0, used = 0;
  /* Each RCPT stops the feed right after its line. */
  const char *stops[] = {"RCPT TO:<r2", "RCPT TO:<r3", "DATA\r\n"};
  int rc = lsmtp_server_feed(h.srv, in, len, &used);
  assert_int_equal(rc, LSMTP_PAUSED);
  assert_int_equal(used, (size_t)(strstr(in, stops[0]) - in));
  off += used;
  expect_out(&h, GREETING "250 mx.example.org\r\n250 2.1.0 Ok\r\n");
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 5u * 60u * 1000u);
  /* Feeding more while the decision is pending consumes nothing. */
  assert_int_equal(lsmtp_server_feed(h.srv, in + off, len - off, &used), LSMTP_PAUSED);
  assert_int_equal(used, 0);
  assert_int_equal(lsmtp_server_answer(h.srv, 550, "5.1.1", "No such user"), LSMTP_OK);
  expect_out(&h, "550 5.1.1 No such user\r\n");
  assert_int_equal(lsmtp_server_feed(h.srv, in + off, len - off, &used), LSMTP_PAUSED);
  assert_int_equal(off + used, (size_t)(strstr(in, stops[1]) - in));
  off += used;
  assert_int_equal(lsmtp_server_answer(h.srv, 0, NULL, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_feed(h.srv, in + off, len - off, &used), LSMTP_PAUSED);
  assert_int_equal(off + used, (size_t)(strstr(in, stops[2]) - in));
  off += used;
  /* A bad answer changes nothing. */
  assert_int_equal(lsmtp_server_answer(h.srv, 250, "4.0.0", NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_answer(h.srv, 354, NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_answer(h.srv, 452, NULL, NULL), LSMTP_OK);
  assert_int_equal(h.rcpt_calls, 3);
  h.defer_rcpt = 0;
  assert_int_equal(lsmtp_server_feed(h.srv, in + off, len - off, &used), LSMTP_DONE);
  assert_int_equal(off + used, len);
  expect_out(&h, "250 2.1.5 Ok\r\n452 4.0.0 Error: try again later\r\n"
                 "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n"
                 "221 2.0.0 Bye\r\n");
  assert_int_equal(h.msg.len, 7);
  assert_memory_equal(h.msg.data, "hello\r\n", 7);
  assert_int_equal(lsmtp_server_answer(h.srv, 0, NULL, NULL), LSMTP_ERR_STATE);
  host_free(&h);
}

static void test_pause_resume_in_data(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  host_start(&h);
  h.pause_chunks = 1;
  const char *in = "EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<r@x.example>\r\nDATA\r\n"
                   "line one\r\n..dot\r\nlast\r\n.\r\nNOOP\r\n";
  size_t len = strlen(in), off = 0, used;
  int pauses = 0, rc;
  while ((rc = lsmtp_server_feed(h.srv, in + off, len - off, &used)) == LSMTP_PAUSED) {
    off += used;
    pauses++;
    assert_int_equal(lsmtp_server_feed(h.srv, in + off, len - off, &used), LSMTP_PAUSED);
    assert_int_equal(used, 0);
    assert_int_equal(lsmtp_server_timeout_ms(h.srv), 3u * 60u * 1000u);
    assert_int_equal(lsmtp_server_resume(h.srv), LSMTP_OK);
    assert_int_equal(lsmtp_server_resume(h.srv), LSMTP_ERR_STATE);
  }
  assert_int_equal(rc, LSMTP_OK);
  assert_int_equal(off + used, len);
  assert_true(pauses >= 2);
  assert_int_equal(h.msg.len, strlen("line one\r\n.dot\r\nlast\r\n"));
  assert_memory_equal(h.msg.data, "line one\r\n.dot\r\nlast\r\n", h.msg.len);
  drain(&h);
  assert_non_null(strstr(h.out.data, "250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n"));
  host_free(&h);
}

static void test_lmtp_per_recipient(void **state) {
  (void)state;
  host h;
  host_init(&h, LSMTP_SERVER_LMTP);
  host_start(&h);
  h.defer_end = 1;
  const char *in = "LHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r1@x.example>\r\n"
                   "RCPT TO:<r2@x.example>\r\nRCPT TO:<r3@x.example>\r\nDATA\r\nhi\r\n.\r\n"
                   "QUIT\r\n";
  size_t len = strlen(in), used;
  assert_int_equal(feed_str(&h, in, &used), LSMTP_PAUSED);
  assert_int_equal(used, (size_t)(strstr(in, "QUIT") - in));
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 10u * 60u * 1000u);
  assert_int_equal(h.end_calls, 1);
  assert_int_equal(h.end_idx[0], 0);
  assert_string_equal(lsmtp_server_rcpt(h.srv, 0), "r1@x.example");
  assert_int_equal(lsmtp_server_answer(h.srv, 0, NULL, NULL), LSMTP_PAUSED);
  assert_int_equal(h.end_calls, 2);
  assert_int_equal(h.end_idx[1], 1);
  assert_int_equal(lsmtp_server_answer(h.srv, 452, "4.2.2", "Mailbox full"), LSMTP_PAUSED);
  assert_int_equal(h.end_idx[2], 2);
  assert_int_equal(lsmtp_server_answer(h.srv, 550, "5.1.1", NULL), LSMTP_OK);
  assert_int_equal(h.end_calls, 3);
  assert_null(lsmtp_server_mail_from(h.srv));
  assert_int_equal(lsmtp_server_feed(h.srv, in + used, len - used, &used), LSMTP_DONE);
  drain(&h);
  assert_non_null(strstr(h.out.data,
                         "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n"
                         "452 4.2.2 Mailbox full\r\n550 5.1.1 Error: refused\r\n221 2.0.0 Bye\r\n"));
  assert_non_null(strstr(h.out.data, "220 mx.example.org LMTP\r\n250-mx.example.org\r\n"));
  host_free(&h);
}

static void test_error_limit(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  assert_int_equal(lsmtp_server_config_set_limit(h.cfg, LSMTP_SERVER_LIMIT_ERRORS, 3), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_limit(h.cfg, LSMTP_SERVER_LIMIT_RECIPIENTS, 1),
                   LSMTP_OK);
  host_start(&h);
  size_t used;
  /* Policy refusals (452 over the recipient limit) do not count. */
  assert_int_equal(feed_str(&h, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\n"
                                "RCPT TO:<r@x.example>\r\nRCPT TO:<s@x.example>\r\n"
                                "RCPT TO:<t@x.example>\r\nRCPT TO:<u@x.example>\r\n",
                           &used),
                   LSMTP_OK);
  expect_out(&h, GREETING "250 mx.example.org\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                          "452 4.5.3 Error: too many recipients\r\n"
                          "452 4.5.3 Error: too many recipients\r\n"
                          "452 4.5.3 Error: too many recipients\r\n");
  assert_int_equal(feed_str(&h, "FOO\r\nMAIL FROM:<x@y.example>\r\n", &used), LSMTP_OK);
  assert_false(lsmtp_server_want_close(h.srv));
  const char *in = "BAR\r\nNOOP\r\n";
  assert_int_equal(feed_str(&h, in, &used), LSMTP_DONE);
  assert_int_equal(used, 5);
  expect_out(&h, "500 5.5.1 Error: command not recognized\r\n"
                 "503 5.5.1 Error: nested MAIL command\r\n"
                 "500 5.5.1 Error: command not recognized\r\n"
                 "421 4.7.0 mx.example.org Error: too many errors\r\n");
  assert_true(lsmtp_server_want_close(h.srv));
  assert_string_equal(h.events.data, "reset LSMTP_ERR_CLOSED\n");
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 0);
  host_free(&h);
}

static void test_early_talker(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  lsmtp_server_callbacks cb = {0};
  assert_int_equal(lsmtp_server_new(&h.srv, h.cfg, &cb, NULL), LSMTP_OK);
  size_t used = 99;
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 0);
  assert_int_equal(lsmtp_server_feed(h.srv, "", 0, &used), LSMTP_OK);
  assert_int_equal(lsmtp_server_feed(h.srv, "EHLO x\r\n", 8, &used), LSMTP_DONE);
  assert_int_equal(used, 0);
  expect_out(&h, "554 5.5.0 Error: talking before the greeting\r\n");
  assert_true(lsmtp_server_want_close(h.srv));
  assert_int_equal(lsmtp_server_start(h.srv), LSMTP_ERR_STATE);
  lsmtp_server_del(h.srv);
  /* Allowed: the bytes wait until the greeting went out. */
  assert_int_equal(lsmtp_server_config_set_flags(h.cfg, LSMTP_SERVER_ALLOW_EARLY_TALKERS),
                   LSMTP_OK);
  assert_int_equal(lsmtp_server_new(&h.srv, h.cfg, &cb, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_feed(h.srv, "NOOP\r\n", 6, &used), LSMTP_PAUSED);
  assert_int_equal(used, 0);
  assert_int_equal(lsmtp_server_start(h.srv), LSMTP_OK);
  assert_int_equal(lsmtp_server_feed(h.srv, "NOOP\r\n", 6, &used), LSMTP_OK);
  assert_int_equal(used, 6);
  expect_out(&h, GREETING "250 2.0.0 Ok\r\n");
  host_free(&h);
}

static void test_timeouts(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  assert_int_equal(lsmtp_server_config_set_timeout(h.cfg, LSMTP_SERVER_TIMEOUT_IDLE, 1234),
                   LSMTP_OK);
  host_start(&h);
  size_t used;
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 1234);
  assert_int_equal(feed_str(&h, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\n"
                                "RCPT TO:<r@x.example>\r\nDATA\r\npart",
                           &used),
                   LSMTP_OK);
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 3u * 60u * 1000u);
  assert_int_equal(lsmtp_server_timeout(h.srv), LSMTP_OK);
  assert_int_equal(lsmtp_server_timeout(h.srv), LSMTP_ERR_STATE);
  drain(&h);
  assert_non_null(strstr(h.out.data, "354 End data with <CR><LF>.<CR><LF>\r\n"
                                     "421 4.4.2 mx.example.org Error: timeout exceeded\r\n"));
  assert_string_equal(h.events.data, "reset LSMTP_ERR_TIMEOUT\n");
  assert_true(lsmtp_server_want_close(h.srv));
  assert_int_equal(feed_str(&h, "NOOP\r\n", &used), LSMTP_DONE);
  assert_int_equal(used, 0);
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 0);
  host_free(&h);

  lsmtp_server_config *cfg;
  assert_int_equal(lsmtp_server_config_new(&cfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_all_timeouts(cfg, 77), LSMTP_OK);
  lsmtp_server *srv;
  assert_int_equal(lsmtp_server_new(&srv, cfg, NULL, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_start(srv), LSMTP_OK);
  assert_int_equal(lsmtp_server_timeout_ms(srv), 77);
  lsmtp_server_del(srv);
  lsmtp_server_config_del(cfg);
}

static void test_shutdown(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  host_start(&h);
  size_t used;
  /* Mid-DATA the message is finished and answered first. */
  assert_int_equal(feed_str(&h, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\n"
                                "RCPT TO:<r@x.example>\r\nDATA\r\nbody\r\n",
                           &used),
                   LSMTP_OK);
  assert_int_equal(lsmtp_server_shutdown(h.srv), LSMTP_OK);
  assert_false(lsmtp_server_want_close(h.srv));
  const char *in = ".\r\nNOOP\r\n";
  assert_int_equal(feed_str(&h, in, &used), LSMTP_DONE);
  assert_int_equal(used, 3);
  drain(&h);
  assert_non_null(strstr(h.out.data, "250 2.0.0 Ok: queued\r\n"
                                     "421 4.3.2 mx.example.org Service shutting down\r\n"));
  assert_int_equal(h.end_calls, 1);
  host_free(&h);

  /* Idle: at once. */
  host_init(&h, 0);
  host_start(&h);
  assert_int_equal(lsmtp_server_shutdown(h.srv), LSMTP_OK);
  expect_out(&h, GREETING "421 4.3.2 mx.example.org Service shutting down\r\n");
  assert_true(lsmtp_server_want_close(h.srv));
  host_free(&h);
}

static void test_abort_is_sticky(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  host_start(&h);
  h.abort_mail = 1;
  size_t used;
  assert_int_equal(feed_str(&h, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\nNOOP\r\n", &used),
                   LSMTP_ERR_ABORTED);
  assert_int_equal(feed_str(&h, "NOOP\r\n", &used), LSMTP_ERR_FATAL);
  assert_int_equal(used, 0);
  expect_out(&h, GREETING "250 mx.example.org\r\n421 4.3.0 mx.example.org Error: local error\r\n");
  assert_true(lsmtp_server_want_close(h.srv));
  host_free(&h);
}

static int refuse_in_cb(lsmtp_server *srv, const lsmtp_path *p,
                        const lsmtp_mail_params *params, void *ud) {
  (void)p;
  (void)params;
  (void)ud;
  assert_int_equal(lsmtp_server_set_reply(srv, 99, NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_set_reply(srv, 354, NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_set_reply(srv, 550, "4.1.1", NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_set_reply(srv, 550, "5.1", NULL), LSMTP_ERR_INVALID);
  size_t used;
  assert_int_equal(lsmtp_server_feed(srv, "x", 1, &used), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_server_set_reply(srv, 550, "5.7.1", "Go away\r\n250 injected"),
                   LSMTP_OK);
  return LSMTP_OK;
}

static void test_set_reply_rules(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  lsmtp_server_callbacks cb = {0};
  cb.on_mail = refuse_in_cb;
  assert_int_equal(lsmtp_server_new(&h.srv, h.cfg, &cb, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_set_reply(h.srv, 550, NULL, NULL), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_server_start(h.srv), LSMTP_OK);
  size_t used;
  assert_int_equal(feed_str(&h, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\n", &used), LSMTP_OK);
  /* The CR became a space, the LF a second line: nothing was injected. */
  expect_out(&h, GREETING "250 mx.example.org\r\n550-5.7.1 Go away \r\n550 5.7.1 250 injected\r\n");
  host_free(&h);
}

static void test_output_limit(void **state) {
  (void)state;
  host h;
  host_init(&h, 0);
  assert_int_equal(lsmtp_server_config_set_limit(h.cfg, LSMTP_SERVER_LIMIT_OUTPUT, 40), LSMTP_OK);
  host_start(&h);
  size_t used;
  const char *in = "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n";
  /* The greeting (26) + one reply (14) reach 40: the feed stops. */
  assert_int_equal(feed_str(&h, in, &used), LSMTP_PAUSED);
  assert_int_equal(used, 6);
  expect_out(&h, GREETING "250 2.0.0 Ok\r\n");
  assert_int_equal(lsmtp_server_feed(h.srv, in + 6, strlen(in) - 6, &used), LSMTP_OK);
  assert_int_equal(used, 18);
  host_free(&h);
}

static void test_config_setters(void **state) {
  (void)state;
  lsmtp_server_config *cfg;
  assert_int_equal(lsmtp_server_config_new(NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_new(&cfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_get_limit(cfg, LSMTP_SERVER_LIMIT_LINE), 2048);
  assert_int_equal(lsmtp_server_config_get_limit(cfg, LSMTP_SERVER_LIMIT_MESSAGE_SIZE),
                   10485760);
  assert_int_equal(lsmtp_server_config_get_limit(cfg, LSMTP_SERVER_LIMIT_RECIPIENTS), 100);
  assert_int_equal(lsmtp_server_config_get_limit(cfg, LSMTP_SERVER_LIMIT_ERRORS), 20);
  assert_int_equal(lsmtp_server_config_get_limit(cfg, LSMTP_SERVER_LIMIT_MESSAGES), 0);
  assert_int_equal(lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_LINE, 100),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_COUNT_, 1),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_set_hostname(cfg, "bad host"), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_set_hostname(cfg, ""), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_set_flags(cfg, 0x80), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_set_flags(cfg, LSMTP_SERVER_REQUIRE_TLS |
                                                          LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH |
                                                          LSMTP_SERVER_REQUIRE_AUTH |
                                                          LSMTP_SERVER_ALLOW_PROXY_AUTH),
                   LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_flags(cfg, 0), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_AUTH_LINE, 100),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_get_limit(cfg, LSMTP_SERVER_LIMIT_AUTH_LINE), 12288);
  assert_int_equal(lsmtp_server_config_set_extensions(cfg, 0x10000), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_set_timeout(cfg, LSMTP_SERVER_TIMEOUT_COUNT_, 1),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_config_set_greeting(cfg, "hi\r\nthere"), LSMTP_OK);
  lsmtp_server *srv;
  assert_int_equal(lsmtp_server_new(&srv, NULL, NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_new(&srv, cfg, NULL, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_start(srv), LSMTP_OK);
  assert_int_equal(lsmtp_server_start(srv), LSMTP_ERR_STATE);
  const char *p;
  size_t n = lsmtp_server_pending(srv, &p);
  assert_int_equal(n, strlen("220 localhost hi  there\r\n"));
  assert_memory_equal(p, "220 localhost hi  there\r\n", n);
  assert_int_equal(lsmtp_server_consume(srv, n + 1), LSMTP_ERR_INVALID);
  lsmtp_server_del(srv);
  lsmtp_server_del(NULL);
  lsmtp_server_config_del(cfg);
  lsmtp_server_config_del(NULL);
}

/* ---- STARTTLS ---- */

#define EHLO_BASE                                                             \
  "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n" \
  "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-BINARYMIME\r\n" \
  "250-DSN\r\n"

static void tls_host(host *h, unsigned flags) {
  host_init(h, flags);
  assert_int_equal(lsmtp_server_config_set_extensions(h->cfg,
                                                      LSMTP_EXT_DEFAULT | LSMTP_EXT_STARTTLS),
                   LSMTP_OK);
  host_start(h);
}

/* The brief's case, exactly: one read holds STARTTLS and a MAIL. */
static void test_starttls_injection(void **state) {
  (void)state;
  host h;
  tls_host(&h, 0);
  size_t used;
  assert_int_equal(feed_str(&h, "EHLO c.example\r\n", &used), LSMTP_OK);
  expect_out(&h, GREETING EHLO_BASE "250-STARTTLS\r\n250 HELP\r\n");
  assert_false(lsmtp_server_starttls_pending(h.srv));
  const char *in = "STARTTLS\r\nMAIL FROM:<evil@x>\r\n";
  assert_int_equal(feed_str(&h, in, &used), LSMTP_PAUSED);
  assert_int_equal(used, strlen(in)); /* taken, and thrown away */
  expect_out(&h, "220 2.0.0 Ready to start TLS\r\n");
  assert_true(lsmtp_server_starttls_pending(h.srv));
  assert_int_equal(lsmtp_server_discarded(h.srv), 20);
  assert_non_null(strstr(h.logs.data, "discarded 20 octets of plaintext sent after STARTTLS\n"));
  assert_int_equal(h.mail_calls, 0);
  assert_null(lsmtp_server_helo(h.srv));
  assert_false(lsmtp_server_is_tls(h.srv));
  assert_null(lsmtp_server_tls_version(h.srv));
  /* A host that feeds more before the handshake loses that too. */
  assert_int_equal(feed_str(&h, "RCPT TO:<r@x>\r\n", &used), LSMTP_PAUSED);
  assert_int_equal(used, 15);
  assert_int_equal(lsmtp_server_discarded(h.srv), 35);
  assert_int_equal(feed_str(&h, "", &used), LSMTP_PAUSED);
  expect_out(&h, "");
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLSv1.3", "TLS_AES_256_GCM_SHA384"),
                   LSMTP_OK);
  assert_false(lsmtp_server_starttls_pending(h.srv));
  assert_true(lsmtp_server_is_tls(h.srv));
  assert_string_equal(lsmtp_server_tls_version(h.srv), "TLSv1.3");
  assert_string_equal(lsmtp_server_tls_cipher(h.srv), "TLS_AES_256_GCM_SHA384");
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLSv1.3", NULL), LSMTP_ERR_STATE);
  /* EHLO is required again; the MAIL was never executed. */
  assert_int_equal(feed_str(&h, "MAIL FROM:<a@b.example>\r\n", &used), LSMTP_OK);
  expect_out(&h, "503 5.5.1 Error: send HELO/EHLO first\r\n");
  assert_int_equal(h.mail_calls, 0);
  assert_int_equal(feed_str(&h, "EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<a@b.example>\r\n",
                            &used),
                   LSMTP_OK);
  /* Under TLS: AUTH (this host has on_auth) but no STARTTLS. */
  expect_out(&h, EHLO_BASE "250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"
                           "503 5.5.1 Error: TLS already active\r\n250 2.1.0 Ok\r\n");
  assert_int_equal(h.mail_calls, 1);
  assert_string_equal(lsmtp_server_protocol(h.srv), "ESMTPS");
  assert_int_equal(lsmtp_server_discarded(h.srv), 35);
  host_free(&h);
}

static void test_starttls_partial_line_dropped(void **state) {
  (void)state;
  host h;
  tls_host(&h, 0);
  size_t used;
  /* The half line behind STARTTLS must not glue onto what TLS brings. */
  assert_int_equal(feed_str(&h, "EHLO c.example\r\nSTARTTLS\r\nMAIL FR", &used), LSMTP_PAUSED);
  assert_int_equal(used, strlen("EHLO c.example\r\nSTARTTLS\r\nMAIL FR"));
  assert_int_equal(lsmtp_server_tls_started(h.srv, NULL, NULL), LSMTP_OK);
  assert_string_equal(lsmtp_server_tls_version(h.srv), "");
  drain(&h);
  h.out.len = 0;
  assert_int_equal(feed_str(&h, "OM:<evil@x>\r\nNOOP\r\n", &used), LSMTP_OK);
  expect_out(&h, "500 5.5.1 Error: command not recognized\r\n250 2.0.0 Ok\r\n");
  host_free(&h);

  /* STARTTLS split over two reads: nothing before it is lost. */
  tls_host(&h, 0);
  assert_int_equal(feed_str(&h, "EHLO c.example\r\nSTART", &used), LSMTP_OK);
  assert_int_equal(feed_str(&h, "TLS\r\n", &used), LSMTP_PAUSED);
  assert_int_equal(lsmtp_server_discarded(h.srv), 0);
  assert_true(lsmtp_server_starttls_pending(h.srv));
  host_free(&h);
}

static void test_starttls_timeout_and_shutdown(void **state) {
  (void)state;
  host h;
  tls_host(&h, 0);
  size_t used;
  assert_int_equal(feed_str(&h, "EHLO c.example\r\nSTARTTLS\r\n", &used), LSMTP_PAUSED);
  drain(&h);
  h.out.len = 0;
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 5u * 60u * 1000u);
  /* The handshake never came: close without a plaintext reply. */
  assert_int_equal(lsmtp_server_timeout(h.srv), LSMTP_OK);
  expect_out(&h, "");
  assert_true(lsmtp_server_want_close(h.srv));
  assert_false(lsmtp_server_starttls_pending(h.srv));
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLSv1.2", "X"), LSMTP_ERR_STATE);
  host_free(&h);

  /* Shutdown during the handshake: the 421 waits for TLS. */
  tls_host(&h, 0);
  assert_int_equal(feed_str(&h, "EHLO c.example\r\nSTARTTLS\r\n", &used), LSMTP_PAUSED);
  drain(&h);
  h.out.len = 0;
  assert_int_equal(lsmtp_server_shutdown(h.srv), LSMTP_OK);
  expect_out(&h, "");
  assert_false(lsmtp_server_want_close(h.srv));
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLS v1.2\n(x)", "AES;GCM"), LSMTP_OK);
  expect_out(&h, "421 4.3.2 mx.example.org Service shutting down\r\n");
  assert_true(lsmtp_server_want_close(h.srv));
  /* Names are kept printable and without spaces or parentheses. */
  assert_string_equal(lsmtp_server_tls_version(h.srv), "TLS?v1.2??x?");
  assert_string_equal(lsmtp_server_tls_cipher(h.srv), "AES;GCM");
  host_free(&h);
}

static void test_implicit_tls(void **state) {
  (void)state;
  host h;
  host_init(&h, LSMTP_SERVER_REQUIRE_TLS);
  lsmtp_server_callbacks cb = {0};
  assert_int_equal(lsmtp_server_tls_started(NULL, NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_server_new(&h.srv, h.cfg, &cb, NULL), LSMTP_OK);
  assert_string_equal(lsmtp_server_protocol(h.srv), "SMTP");
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
                   LSMTP_OK);
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLSv1.3", NULL), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_server_start(h.srv), LSMTP_OK);
  size_t used;
  assert_int_equal(feed_str(&h, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\n", &used),
                   LSMTP_OK);
  expect_out(&h, GREETING "250 mx.example.org\r\n250 2.1.0 Ok\r\n");
  assert_string_equal(lsmtp_server_protocol(h.srv), "ESMTPS");
  lsmtp_server_del(h.srv);
  /* Without implicit TLS, the policy refuses; tls_started after start is
   * only for STARTTLS. */
  assert_int_equal(lsmtp_server_new(&h.srv, h.cfg, &cb, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_start(h.srv), LSMTP_OK);
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLSv1.3", NULL), LSMTP_ERR_STATE);
  assert_int_equal(feed_str(&h, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\n", &used),
                   LSMTP_OK);
  expect_out(&h, GREETING "250 mx.example.org\r\n"
                          "530 5.7.0 Must issue a STARTTLS command first\r\n");
  assert_string_equal(lsmtp_server_protocol(h.srv), "SMTP");
  host_free(&h);
}

/* ---- AUTH ---- */

#define AUTH_OK "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n" /* alice / secret */

static void auth_host(host *h, unsigned flags) {
  host_init(h, flags);
  host_start(h);
  size_t used;
  assert_int_equal(feed_str(h, "EHLO c.example\r\n", &used), LSMTP_OK);
  expect_out(h, GREETING EHLO_BASE "250-AUTH PLAIN LOGIN\r\n250 HELP\r\n");
}

static void test_auth_deferred(void **state) {
  (void)state;
  host h;
  auth_host(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  h.auth_rc = LSMTP_SERVER_DEFER;
  const char *in = AUTH_OK "MAIL FROM:<alice@b.example> AUTH=alice\r\n";
  size_t len = strlen(in), used;
  assert_int_equal(feed_str(&h, in, &used), LSMTP_PAUSED);
  assert_int_equal(used, strlen(AUTH_OK));
  assert_int_equal(h.auth_calls, 1);
  assert_string_equal(h.auth_pw, "secret");
  assert_int_equal(lsmtp_server_timeout_ms(h.srv), 5u * 60u * 1000u);
  expect_out(&h, "");
  assert_null(lsmtp_server_auth_id(h.srv));
  /* The pipelined MAIL waits for the verdict. */
  assert_int_equal(lsmtp_server_feed(h.srv, in + used, len - used, &used), LSMTP_PAUSED);
  assert_int_equal(used, 0);
  assert_int_equal(lsmtp_server_answer(h.srv, 0, NULL, NULL), LSMTP_OK);
  expect_out(&h, "235 2.7.0 Authentication successful\r\n");
  assert_string_equal(lsmtp_server_auth_id(h.srv), "alice");
  assert_string_equal(lsmtp_server_auth_authzid(h.srv), "");
  assert_string_equal(lsmtp_server_protocol(h.srv), "ESMTPA");
  assert_int_equal(feed_str(&h, in + strlen(AUTH_OK), &used), LSMTP_OK);
  expect_out(&h, "250 2.1.0 Ok\r\n");
  assert_int_equal(h.mail_calls, 1);
  /* The password never reached a log line; the user name did. */
  assert_null(strstr(h.logs.data, "secret"));
  assert_non_null(strstr(h.logs.data, "authenticated as <alice>\n"));
  host_free(&h);

  /* Deferred and then refused: 535 with the RFC 4954 text. */
  auth_host(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  h.auth_rc = LSMTP_SERVER_DEFER;
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_PAUSED);
  assert_int_equal(lsmtp_server_answer(h.srv, 250, NULL, NULL), LSMTP_OK);
  expect_out(&h, "250 2.7.0 Authentication successful\r\n");
  host_free(&h);
  auth_host(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  h.auth_rc = LSMTP_SERVER_DEFER;
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_PAUSED);
  assert_int_equal(lsmtp_server_answer(h.srv, 535, NULL, NULL), LSMTP_OK);
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_PAUSED);
  assert_int_equal(lsmtp_server_answer(h.srv, 454, NULL, "Directory down"), LSMTP_OK);
  expect_out(&h, "535 5.7.8 Authentication credentials invalid\r\n"
                 "454 4.7.0 Directory down\r\n");
  assert_null(lsmtp_server_auth_id(h.srv));
  assert_null(strstr(h.logs.data, "secret"));
  host_free(&h);
}

static void test_auth_callback_answers(void **state) {
  (void)state;
  host h;
  auth_host(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  size_t used;
  h.auth_rc = LSMTP_ERR_TEMPFAIL;
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_OK);
  h.auth_rc = LSMTP_ERR_AUTH;
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_OK);
  h.auth_rc = LSMTP_OK;
  h.auth_code = 535;
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_OK);
  h.auth_code = 0;
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_OK);
  expect_out(&h, "454 4.7.0 Temporary authentication failure\r\n"
                 "535 5.7.8 Authentication credentials invalid\r\n"
                 "535 5.7.8 Not today\r\n"
                 "235 2.7.0 Authentication successful\r\n");
  assert_int_equal(h.auth_calls, 4);
  host_free(&h);

  /* Any other negative return aborts the session. */
  auth_host(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  h.auth_rc = LSMTP_ERR_IO;
  assert_int_equal(feed_str(&h, AUTH_OK, &used), LSMTP_ERR_ABORTED);
  expect_out(&h, "421 4.3.0 mx.example.org Error: local error\r\n");
  host_free(&h);
}

static void test_auth_exchange_limits(void **state) {
  (void)state;
  host h;
  auth_host(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  size_t used;
  /* A 12288-octet continuation line (with CRLF) is read; one more is not. */
  lsmtp__buf line;
  lsmtp__buf_init(&line, NULL);
  for (size_t i = 0; i < 12286; i++) lsmtp__buf_append(&line, "A", 1);
  lsmtp__buf_append(&line, "\r\n", 3);
  assert_int_equal(feed_str(&h, "AUTH PLAIN\r\n", &used), LSMTP_OK);
  assert_int_equal(feed_str(&h, line.data, &used), LSMTP_OK);
  expect_out(&h, "334 \r\n501 5.5.2 Cannot decode response\r\n");
  line.data[12286] = 'A';
  line.data[12287] = '\r';
  line.data[12288] = '\n';
  lsmtp__buf_append(&line, "", 1);
  assert_int_equal(feed_str(&h, "AUTH PLAIN\r\n", &used), LSMTP_OK);
  assert_int_equal(feed_str(&h, line.data, &used), LSMTP_OK);
  expect_out(&h, "334 \r\n500 5.5.6 Authentication Exchange line is too long\r\n");
  lsmtp__buf_free(&line);
  /* Shutdown in the middle of an exchange: at once, the exchange is gone. */
  assert_int_equal(feed_str(&h, "AUTH LOGIN\r\n", &used), LSMTP_OK);
  assert_int_equal(lsmtp_server_shutdown(h.srv), LSMTP_OK);
  expect_out(&h, "334 VXNlcm5hbWU6\r\n421 4.3.2 mx.example.org Service shutting down\r\n");
  assert_true(lsmtp_server_want_close(h.srv));
  host_free(&h);

  /* A timeout inside the exchange. */
  auth_host(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  assert_int_equal(feed_str(&h, "AUTH LOGIN YWxpY2U=\r\n", &used), LSMTP_OK);
  assert_int_equal(lsmtp_server_timeout(h.srv), LSMTP_OK);
  expect_out(&h, "334 UGFzc3dvcmQ6\r\n421 4.4.2 mx.example.org Error: timeout exceeded\r\n");
  host_free(&h);
}

static void test_auth_forgotten_by_starttls(void **state) {
  (void)state;
  host h;
  host_init(&h, LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH);
  assert_int_equal(lsmtp_server_config_set_extensions(h.cfg,
                                                      LSMTP_EXT_DEFAULT | LSMTP_EXT_STARTTLS),
                   LSMTP_OK);
  host_start(&h);
  size_t used;
  assert_int_equal(feed_str(&h, "EHLO c.example\r\n" AUTH_OK "STARTTLS\r\n", &used),
                   LSMTP_PAUSED);
  assert_null(lsmtp_server_auth_id(h.srv)); /* forgotten at the 220 */
  expect_out(&h, GREETING EHLO_BASE "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"
                                    "235 2.7.0 Authentication successful\r\n"
                                    "220 2.0.0 Ready to start TLS\r\n");
  assert_int_equal(lsmtp_server_tls_started(h.srv, "TLSv1.3", "C"), LSMTP_OK);
  assert_int_equal(feed_str(&h, "EHLO c.example\r\n" AUTH_OK, &used), LSMTP_OK);
  expect_out(&h, EHLO_BASE "250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"
                           "235 2.7.0 Authentication successful\r\n");
  assert_string_equal(lsmtp_server_protocol(h.srv), "ESMTPSA");
  assert_int_equal(h.auth_calls, 2);
  host_free(&h);
}

/* ---- allocation failure walk ---- */

static int walk_auth(lsmtp_server *srv, const char *mech, const char *authzid,
                     const char *authcid, const char *password, size_t password_len,
                     void *ud) {
  (void)srv;
  (void)mech;
  (void)authzid;
  (void)ud;
  assert_string_equal(authcid, "alice");
  return password_len == 6 && memcmp(password, "secret", 6) == 0 ? LSMTP_OK
                                                                 : LSMTP_ERR_AUTH;
}

/* Feed in small pieces so the line reader has to buffer. Returns the last
 * status. */
static int feed_pieces(lsmtp_server *srv, const char *in, size_t len) {
  size_t off = 0;
  int rc = LSMTP_OK;
  while (off < len) {
    size_t used = 0, piece = len - off < 7 ? len - off : 7;
    rc = lsmtp_server_feed(srv, in + off, piece, &used);
    off += used;
    if (rc != LSMTP_OK) break;
  }
  return rc;
}

/* One whole session in which n allocations succeed and every later one
 * fails. Returns 1 when the session ran to the end (nothing failed).
 * secure: STARTTLS, then AUTH. */
static int session_with_failure(long n, int secure) {
  failalloc f;
  failalloc_init_sticky(&f, n + 1);
  lsmtp_server_config *cfg = NULL;
  int rc = lsmtp_server_config_new(&cfg, &f.alloc);
  if (rc != LSMTP_OK) {
    assert_int_equal(rc, LSMTP_ERR_NOMEM);
    assert_null(cfg);
    return 0;
  }
  if (secure)
    assert_int_equal(lsmtp_server_config_set_extensions(cfg, LSMTP_EXT_DEFAULT |
                                                                 LSMTP_EXT_STARTTLS),
                     LSMTP_OK);
  int complete = 0;
  lsmtp_server *srv = NULL;
  lsmtp_server_callbacks cb = {0};
  cb.on_auth = walk_auth;
  rc = lsmtp_server_new(&srv, cfg, secure ? &cb : NULL, NULL);
  if (rc != LSMTP_OK) {
    assert_int_equal(rc, LSMTP_ERR_NOMEM);
    goto out;
  }
  rc = lsmtp_server_start(srv);
  if (rc == LSMTP_OK) {
    static const char plain[] =
        "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r1@x.example>\r\n"
        "RCPT TO:<r2@x.example>\r\nRCPT TO:<r3@x.example>\r\nDATA\r\nhello\r\n.\r\n"
        "MAIL FROM:<a@b.example>\r\nRCPT TO:<r@x.example>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\n"
        "QUIT\r\n";
    static const char before_tls[] = "EHLO c.example\r\nSTARTTLS\r\n";
    static const char after_tls[] =
        "EHLO c.example\r\nAUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nAUTH LOGIN\r\n"
        "MAIL FROM:<a@b.example>\r\nRCPT TO:<r@x.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    if (!secure) {
      rc = feed_pieces(srv, plain, sizeof plain - 1);
    } else {
      rc = feed_pieces(srv, before_tls, sizeof before_tls - 1);
      if (rc == LSMTP_PAUSED) {
        assert_true(lsmtp_server_starttls_pending(srv));
        rc = lsmtp_server_tls_started(srv, "TLSv1.3", "C");
        if (rc == LSMTP_OK) rc = feed_pieces(srv, after_tls, sizeof after_tls - 1);
        if (rc == LSMTP_DONE) assert_string_equal(lsmtp_server_auth_id(srv), "alice");
      }
    }
    if (rc == LSMTP_DONE) complete = 1;
    else {
      assert_int_equal(rc, LSMTP_ERR_NOMEM);
      size_t used;
      assert_int_equal(lsmtp_server_feed(srv, "x", 1, &used), LSMTP_ERR_FATAL);
      assert_true(lsmtp_server_want_close(srv));
    }
  } else {
    assert_int_equal(rc, LSMTP_ERR_NOMEM);
  }
out:
  lsmtp_server_del(srv);
  lsmtp_server_config_del(cfg);
  return complete;
}

static void test_allocation_failure_walk(void **state) {
  (void)state;
  for (int secure = 0; secure <= 1; secure++) {
    long n = 0;
    while (!session_with_failure(n, secure)) {
      n++;
      assert_true(n < 1000);
    }
    assert_true(n > 3);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_setters),
      cmocka_unit_test(test_transcripts),
      cmocka_unit_test(test_pipelined_rcpts_deferred),
      cmocka_unit_test(test_pause_resume_in_data),
      cmocka_unit_test(test_lmtp_per_recipient),
      cmocka_unit_test(test_error_limit),
      cmocka_unit_test(test_early_talker),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_shutdown),
      cmocka_unit_test(test_abort_is_sticky),
      cmocka_unit_test(test_set_reply_rules),
      cmocka_unit_test(test_output_limit),
      cmocka_unit_test(test_starttls_injection),
      cmocka_unit_test(test_starttls_partial_line_dropped),
      cmocka_unit_test(test_starttls_timeout_and_shutdown),
      cmocka_unit_test(test_implicit_tls),
      cmocka_unit_test(test_auth_deferred),
      cmocka_unit_test(test_auth_callback_answers),
      cmocka_unit_test(test_auth_exchange_limits),
      cmocka_unit_test(test_auth_forgotten_by_starttls),
      cmocka_unit_test(test_allocation_failure_walk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
