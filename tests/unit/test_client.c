/* The client session against scripted servers. Each transcript in
 * transcripts/client/ holds the server's lines (S:), the exact bytes the
 * client must have written by then (C:), what the host does when the
 * session is idle (A:), the body (B:), options (O:) and the events the
 * host must see (E:). Every transcript runs with the server's bytes fed
 * whole, one byte at a time and split at every position, and with a body
 * source that answers "later" every other call. */
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
#include <lsmtp/client.h>
#include <lsmtp/sasl.h>

#define MAX_ITEMS 128

/* ---- the transcript ---- */

typedef struct step {
  char kind; /* 'S' server block, 'C' client bytes */
  char *text;
  size_t len;
} step;

typedef struct script {
  step steps[MAX_ITEMS];
  size_t n_steps;
  char *actions[MAX_ITEMS];
  size_t n_actions;
  char *events[MAX_ITEMS];
  size_t n_events;
  char body[8192];
  size_t body_len;
  char options[512];
} script;

/* Escapes in S: and C: lines: "\r" "\n" "\0" "\\" "\xHH", and a line
 * ending in "\" gets no CRLF (so partial lines can be written). */
static int unescape(char *s, int *no_crlf) {
  char *o = s;
  *no_crlf = 0;
  for (char *p = s; *p; p++) {
    if (*p != '\\') {
      *o++ = *p;
      continue;
    }
    p++;
    if (*p == '\0') {
      *no_crlf = 1;
      break;
    }
    if (*p == 'r') *o++ = '\r';
    else if (*p == 'n') *o++ = '\n';
    else if (*p == 'x') {
      char hex[3] = {p[1], p[2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      p += 2;
    } else *o++ = *p;
  }
  *o = '\0';
  return (int)(o - s);
}

static void load_script(script *s, const char *path) {
  memset(s, 0, sizeof *s);
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s", path);
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    if (n < 2 || line[0] == '#' || line[1] != ':') continue;
    char *val = line + 2;
    if (*val == ' ') val++;
    switch (line[0]) {
    case 'S':
    case 'C': {
      int no_crlf;
      int len = unescape(val, &no_crlf);
      step *last = s->n_steps ? &s->steps[s->n_steps - 1] : NULL;
      if (!last || last->kind != line[0]) {
        last = &s->steps[s->n_steps++];
        last->kind = line[0];
        last->text = NULL;
        last->len = 0;
      }
      last->text = realloc(last->text, last->len + (size_t)len + 3);
      memcpy(last->text + last->len, val, (size_t)len);
      last->len += (size_t)len;
      if (!no_crlf) {
        memcpy(last->text + last->len, "\r\n", 2);
        last->len += 2;
      }
      break;
    }
    case 'A':
    case 'E': {
      int no_crlf;
      unescape(val, &no_crlf);
      if (line[0] == 'A') s->actions[s->n_actions++] = strdup(val);
      else s->events[s->n_events++] = strdup(val);
      break;
    }
    case 'B': {
      int no_crlf;
      int len = unescape(val, &no_crlf);
      memcpy(s->body + s->body_len, val, (size_t)len);
      s->body_len += (size_t)len;
      if (!no_crlf) s->body[s->body_len++] = '\n';
      break;
    }
    case 'O':
      strcat(s->options, " ");
      strcat(s->options, val);
      strcat(s->options, " ");
      break;
    default: break;
    }
  }
  fclose(f);
}

static void free_script(script *s) {
  for (size_t i = 0; i < s->n_steps; i++) free(s->steps[i].text);
  for (size_t i = 0; i < s->n_actions; i++) free(s->actions[i]);
  for (size_t i = 0; i < s->n_events; i++) free(s->events[i]);
}

static int has_option(const script *s, const char *opt) {
  char key[128];
  snprintf(key, sizeof key, " %s ", opt);
  return strstr(s->options, key) != NULL;
}

static long option_value(const script *s, const char *name, long def) {
  char key[128];
  snprintf(key, sizeof key, " %s=", name);
  const char *p = strstr(s->options, key);
  return p ? strtol(p + strlen(key), NULL, 10) : def;
}

/* ---- the host ---- */

typedef struct host {
  const script *s;
  lsmtp_client *cli;
  size_t next_action;
  char events[MAX_ITEMS][160];
  size_t n_events;
  char out[65536 * 4];
  size_t out_len;
  size_t body_pos;
  int pause_mode, paused, read_calls;
  int want_tls;
  /* storage for the message being sent */
  lsmtp_client_rcpt rcpts[16];
  char words[64][256];
} host;

static void event(host *h, const char *fmt, ...) {
  assert_true(h->n_events < MAX_ITEMS);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->events[h->n_events++], sizeof h->events[0], fmt, ap);
  va_end(ap);
}

static int read_body(void *ud, char *buf, size_t cap, size_t *len) {
  host *h = ud;
  h->read_calls++;
  if (h->pause_mode && (h->read_calls % 2) == 1) {
    h->paused = 1;
    return LSMTP_PAUSED;
  }
  size_t n = h->s->body_len - h->body_pos;
  if (n > 7) n = 7; /* small pieces: lines and CRLF pairs get split */
  if (n > cap) n = cap;
  memcpy(buf, h->s->body + h->body_pos, n);
  h->body_pos += n;
  *len = n;
  return h->body_pos == h->s->body_len ? LSMTP_DONE : LSMTP_OK;
}

static void run_action(host *h, const char *action) {
  char copy[1024];
  snprintf(copy, sizeof copy, "%s", action);
  size_t nw = 0;
  for (char *tok = strtok(copy, " "); tok && nw < 64; tok = strtok(NULL, " "))
    snprintf(h->words[nw++], sizeof h->words[0], "%s", tok);
  int rc = LSMTP_ERR_INVALID;
  if (nw == 0) return;
  if (strcmp(h->words[0], "quit") == 0) {
    rc = lsmtp_client_quit(h->cli);
  } else if (strcmp(h->words[0], "starttls") == 0) {
    rc = lsmtp_client_starttls(h->cli);
  } else if (strcmp(h->words[0], "noop") == 0) {
    rc = LSMTP_OK; /* the host does nothing now */
  } else if (strcmp(h->words[0], "auth") == 0 && nw >= 4) {
    lsmtp_sasl_credentials cr = {0};
    cr.username = h->words[2];
    cr.password = h->words[3];
    lsmtp_sasl_mech mech = lsmtp_sasl_mech_from_name(h->words[1], strlen(h->words[1]));
    if (nw >= 5) { /* a fixed SCRAM nonce */
      lsmtp_sasl_client *sasl;
      rc = lsmtp_sasl_client_new(&sasl, NULL, mech, &cr);
      if (rc == LSMTP_OK) rc = lsmtp_sasl_client_set_nonce(sasl, h->words[4], strlen(h->words[4]));
      if (rc == LSMTP_OK) rc = lsmtp_client_auth_sasl(h->cli, sasl);
    } else {
      rc = lsmtp_client_auth(h->cli, mech, &cr);
    }
  } else if (strcmp(h->words[0], "send") == 0) {
    lsmtp_client_message m = {0};
    m.read = read_body;
    size_t nr = 0;
    for (size_t i = 1; i < nw; i++) {
      char *w = h->words[i];
      if (strncmp(w, "from=", 5) == 0) m.reverse_path = w + 5;
      else if (strncmp(w, "to=", 3) == 0) {
        memset(&h->rcpts[nr], 0, sizeof h->rcpts[nr]);
        h->rcpts[nr++].address = w + 3;
      } else if (strncmp(w, "notify=", 7) == 0 && nr) {
        unsigned bits = 0;
        if (strstr(w, "NEVER")) bits |= LSMTP_NOTIFY_NEVER;
        if (strstr(w, "SUCCESS")) bits |= LSMTP_NOTIFY_SUCCESS;
        if (strstr(w, "FAILURE")) bits |= LSMTP_NOTIFY_FAILURE;
        if (strstr(w, "DELAY")) bits |= LSMTP_NOTIFY_DELAY;
        h->rcpts[nr - 1].notify = bits;
      } else if (strncmp(w, "orcpt=", 6) == 0 && nr) h->rcpts[nr - 1].orcpt = w + 6;
      else if (strcmp(w, "8bit") == 0) m.body = LSMTP_BODY_8BITMIME;
      else if (strcmp(w, "binary") == 0) m.body = LSMTP_BODY_BINARYMIME;
      else if (strcmp(w, "requiretls") == 0) m.requiretls = 1;
      else if (strncmp(w, "size=", 5) == 0) m.size_hint = strtoull(w + 5, NULL, 10);
      else if (strcmp(w, "ret=full") == 0) m.ret = LSMTP_RET_FULL;
      else if (strcmp(w, "ret=hdrs") == 0) m.ret = LSMTP_RET_HDRS;
      else if (strncmp(w, "envid=", 6) == 0) m.envid = w + 6;
    }
    m.rcpts = h->rcpts;
    m.n_rcpts = nr;
    h->body_pos = 0;
    h->read_calls = 0;
    rc = lsmtp_client_send(h->cli, &m);
  }
  if (rc != LSMTP_OK) event(h, "action-error %s", lsmtp_status_name(rc));
}

static int on_ready(void *ud) {
  host *h = ud;
  if (h->next_action < h->s->n_actions) run_action(h, h->s->actions[h->next_action++]);
  return 0;
}

static int on_rcpt(void *ud, size_t index, const char *address, const lsmtp_reply *r) {
  host *h = ud;
  event(h, "rcpt %zu %s %d", index, address, r->code);
  return 0;
}

static int on_message_done(void *ud, int status, const lsmtp_reply *r) {
  host *h = ud;
  if (r) event(h, "done %s %d", lsmtp_status_name(status), r->code);
  else event(h, "done %s -", lsmtp_status_name(status));
  return 0;
}

static int on_auth_done(void *ud, int status, const lsmtp_reply *r) {
  host *h = ud;
  event(h, "auth %s %d", lsmtp_status_name(status), r->code);
  return 0;
}

static int on_starttls(void *ud, int status, const lsmtp_reply *r) {
  host *h = ud;
  event(h, "starttls %s %d", lsmtp_status_name(status), r->code);
  if (status == LSMTP_OK) h->want_tls = 1;
  return 0;
}

static void on_closed(void *ud, int status, const lsmtp_reply *r) {
  host *h = ud;
  if (r) event(h, "closed %s %d", lsmtp_status_name(status), r->code);
  else event(h, "closed %s -", lsmtp_status_name(status));
}

static const lsmtp_client_callbacks host_callbacks = {
    NULL, on_ready, on_rcpt, on_message_done, on_auth_done, on_starttls, on_closed};

/* Write out everything the session has to send. */
static void drain(host *h) {
  for (int guard = 0; guard < 100000; guard++) {
    const char *p;
    size_t n = lsmtp_client_pending(h->cli, &p);
    if (n) {
      assert_true(h->out_len + n <= sizeof h->out);
      memcpy(h->out + h->out_len, p, n);
      h->out_len += n;
      /* Consume in two steps to exercise partial writes. */
      lsmtp_client_consume(h->cli, n / 2);
      lsmtp_client_consume(h->cli, n - n / 2);
      continue;
    }
    if (h->paused) {
      h->paused = 0;
      assert_int_equal(lsmtp_client_resume(h->cli), LSMTP_OK);
      continue;
    }
    return;
  }
  fail_msg("pending never ran dry");
}

static void show(const char *what, const char *p, size_t n) {
  fprintf(stderr, "%s (%zu bytes):\n", what, n);
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\r') fputs("\\r", stderr);
    else if (p[i] == '\n') fputs("\\n\n", stderr);
    else fputc(p[i], stderr);
  }
  fputc('\n', stderr);
}

static void check_output(host *h, const char *expect, size_t expect_len,
                         const char *name, const char *mode) {
  if (h->out_len == expect_len && memcmp(h->out, expect, expect_len) == 0) return;
  show("expected client bytes", expect, expect_len);
  show("got", h->out, h->out_len);
  fail_msg("%s (%s): client output differs", name, mode);
}

/* split: 0 = whole, 1 = byte by byte, k >= 2 = each block split at k-1. */
static void run_once(const script *s, const char *name, size_t split, int pause_mode) {
  host *h = calloc(1, sizeof *h);
  assert_non_null(h);
  h->s = s;
  h->pause_mode = pause_mode;
  lsmtp_client_config *cfg;
  assert_int_equal(lsmtp_client_config_new(&cfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_client_config_set_helo_name(cfg, "client.example"), LSMTP_OK);
  if (has_option(s, "no-pipelining")) lsmtp_client_config_set_pipelining(cfg, 0);
  if (has_option(s, "no-chunking")) lsmtp_client_config_set_chunking(cfg, 0, 0);
  if (has_option(s, "policy=all")) lsmtp_client_config_set_rcpt_policy(cfg, LSMTP_RCPT_ALL);
  if (has_option(s, "insecure-auth")) lsmtp_client_config_set_allow_insecure_auth(cfg, 1);
  long chunk = option_value(s, "chunk", 0);
  if (chunk) lsmtp_client_config_set_chunking(cfg, 1, (size_t)chunk);
  long max_line = option_value(s, "max-line", 0);
  if (max_line) lsmtp_client_config_set_reply_limits(cfg, (size_t)max_line, 0);
  assert_int_equal(lsmtp_client_new(&h->cli, cfg, &host_callbacks, h), LSMTP_OK);
  lsmtp_client_config_del(cfg);
  if (has_option(s, "secure")) lsmtp_client_set_secure(h->cli, 1);

  char mode[64];
  snprintf(mode, sizeof mode, "split=%zu pause=%d", split, pause_mode);
  char expect[65536 * 4];
  size_t expect_len = 0;
  int dead = 0;
  for (size_t i = 0; i < s->n_steps; i++) {
    const step *st = &s->steps[i];
    if (st->kind == 'C') {
      memcpy(expect + expect_len, st->text, st->len);
      expect_len += st->len;
      continue;
    }
    drain(h);
    check_output(h, expect, expect_len, name, mode);
    if (dead) fail_msg("%s: server lines after the session failed", name);
    size_t off = 0;
    while (off < st->len && !dead) {
      size_t piece = st->len - off;
      if (split == 1) piece = 1;
      else if (split >= 2 && off == 0 && split - 1 < st->len) piece = split - 1;
      size_t consumed = 12345;
      int rc = lsmtp_client_feed(h->cli, st->text + off, piece, &consumed);
      assert_true(consumed <= piece);
      if (rc != LSMTP_OK) {
        event(h, "feed %s", lsmtp_status_name(rc));
        dead = 1;
        assert_int_equal(lsmtp_client_feed(h->cli, "x", 1, &consumed), LSMTP_ERR_FATAL);
        break;
      }
      assert_int_equal(consumed, piece);
      off += piece;
    }
    if (h->want_tls && !dead) {
      h->want_tls = 0;
      assert_int_equal(lsmtp_client_tls_started(h->cli), LSMTP_OK);
    }
  }
  drain(h);
  check_output(h, expect, expect_len, name, mode);
  int events_ok = h->n_events == s->n_events;
  for (size_t i = 0; events_ok && i < s->n_events; i++)
    events_ok = strcmp(h->events[i], s->events[i]) == 0;
  if (!events_ok) {
    fprintf(stderr, "expected events:\n");
    for (size_t i = 0; i < s->n_events; i++) fprintf(stderr, "  E: %s\n", s->events[i]);
    fprintf(stderr, "got:\n");
    for (size_t i = 0; i < h->n_events; i++) fprintf(stderr, "  E: %s\n", h->events[i]);
    fail_msg("%s (%s): events differ", name, mode);
  }
  lsmtp_client_del(h->cli);
  free(h);
}

static void run_transcript(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/unit/transcripts/client/%s", LSMTP_TEST_DATA_DIR, name);
  script *s = calloc(1, sizeof *s);
  assert_non_null(s);
  load_script(s, path);
  if (has_option(s, "needs-crypto") && !lsmtp_sasl_mech_available(LSMTP_SASL_SCRAM_SHA_256)) {
    free_script(s); /* a build without mbedTLS has no SCRAM */
    free(s);
    return;
  }
  size_t longest = 0;
  for (size_t i = 0; i < s->n_steps; i++)
    if (s->steps[i].kind == 'S' && s->steps[i].len > longest) longest = s->steps[i].len;
  for (int pause = 0; pause <= 1; pause++) {
    run_once(s, name, 0, pause);
    run_once(s, name, 1, pause);
  }
  for (size_t k = 2; k <= longest; k++) run_once(s, name, k, 0);
  free_script(s);
  free(s);
}

static void test_transcripts(void **state) {
  (void)state;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/unit/transcripts/client", LSMTP_TEST_DATA_DIR);
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int count = 0;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".txt") != 0) continue;
    run_transcript(e->d_name);
    count++;
  }
  closedir(d);
  assert_true(count >= 20);
}

/* ---- direct API tests ---- */

typedef struct simple {
  lsmtp_client *cli;
  int closed_status, closed_calls, done_status, done_calls;
} simple;

static void s_closed(void *ud, int status, const lsmtp_reply *r) {
  simple *s = ud;
  (void)r;
  s->closed_status = status;
  s->closed_calls++;
}

static int s_done(void *ud, int status, const lsmtp_reply *r) {
  simple *s = ud;
  (void)r;
  s->done_status = status;
  s->done_calls++;
  return 0;
}

static int s_read(void *ud, char *buf, size_t cap, size_t *len) {
  (void)ud, (void)buf, (void)cap;
  *len = 0;
  return LSMTP_DONE;
}

static void feed_str(lsmtp_client *c, const char *s, int expect) {
  size_t consumed;
  assert_int_equal(lsmtp_client_feed(c, s, strlen(s), &consumed), expect);
}

static const char *take(lsmtp_client *c) {
  static char buf[8192];
  const char *p;
  size_t n = lsmtp_client_pending(c, &p);
  assert_true(n < sizeof buf);
  memcpy(buf, p, n);
  buf[n] = '\0';
  lsmtp_client_consume(c, n);
  return buf;
}

static lsmtp_client *ready_client(simple *s, const char *ehlo, int secure) {
  static const lsmtp_client_callbacks cbs = {NULL, NULL, NULL, s_done, NULL, NULL, s_closed};
  memset(s, 0, sizeof *s);
  assert_int_equal(lsmtp_client_new(&s->cli, NULL, &cbs, s), LSMTP_OK);
  assert_int_equal(lsmtp_client_timeout_ms(s->cli), 5u * 60u * 1000u);
  feed_str(s->cli, "220 mx ESMTP\r\n", LSMTP_OK);
  assert_string_equal(take(s->cli), "EHLO localhost\r\n");
  feed_str(s->cli, ehlo, LSMTP_OK);
  assert_int_equal(lsmtp_client_state_get(s->cli), LSMTP_CLIENT_READY);
  assert_int_equal(lsmtp_client_timeout_ms(s->cli), 0);
  lsmtp_client_set_secure(s->cli, secure);
  return s->cli;
}

static void test_extensions(void **state) {
  (void)state;
  simple s;
  lsmtp_client *c = ready_client(
      &s,
      "250-mx.example greets you\r\n250-pipelining\r\n250-SIZE 35882577\r\n"
      "250-8bitmime\r\n250-AUTH=LOGIN\r\n250-AUTH PLAIN SCRAM-SHA-256 X-UNKNOWN\r\n"
      "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
      "250-DSN\r\n250-STARTTLS\r\n250-REQUIRETLS\r\n250-X-FOO bar\r\n250 HELP\r\n",
      0);
  assert_int_equal(lsmtp_client_extensions(c),
                   LSMTP_EXT_PIPELINING | LSMTP_EXT_SIZE | LSMTP_EXT_8BITMIME |
                       LSMTP_EXT_AUTH | LSMTP_EXT_SMTPUTF8 |
                       LSMTP_EXT_ENHANCEDSTATUSCODES | LSMTP_EXT_CHUNKING |
                       LSMTP_EXT_BINARYMIME | LSMTP_EXT_DSN | LSMTP_EXT_STARTTLS |
                       LSMTP_EXT_REQUIRETLS | LSMTP_EXT_HELP);
  assert_true(lsmtp_client_size_limit(c) == 35882577u);
  assert_int_equal(lsmtp_client_auth_mechs(c),
                   LSMTP_SASL_BIT(LSMTP_SASL_LOGIN) | LSMTP_SASL_BIT(LSMTP_SASL_PLAIN) |
                       LSMTP_SASL_BIT(LSMTP_SASL_SCRAM_SHA_256));
  assert_false(lsmtp_client_used_helo(c));
  lsmtp_client_del(c);

  /* A SIZE that overflows counts as "no value"; a bare SIZE is offered. */
  c = ready_client(&s, "250-mx\r\n250 SIZE 99999999999999999999999\r\n", 0);
  assert_int_equal(lsmtp_client_extensions(c), LSMTP_EXT_SIZE);
  assert_true(lsmtp_client_size_limit(c) == 0);
  lsmtp_client_del(c);
}

static void test_send_refusals(void **state) {
  (void)state;
  simple s;
  lsmtp_client *c = ready_client(&s, "250-mx\r\n250 SIZE 1000\r\n", 0);
  lsmtp_client_rcpt r = {"b@example.net", 0, NULL};
  lsmtp_client_message m = {0};
  m.reverse_path = "a@example.org";
  m.rcpts = &r;
  m.n_rcpts = 1;
  m.read = s_read;
  m.body = LSMTP_BODY_8BITMIME;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_UNSUPPORTED);
  m.body = LSMTP_BODY_BINARYMIME;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_UNSUPPORTED);
  m.body = LSMTP_BODY_NONE;
  m.requiretls = 1;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_UNSUPPORTED);
  m.requiretls = 0;
  r.address = "j\xc3\xb8rn@example.net";
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_UNSUPPORTED);
  r.address = "no-at-sign>";
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_SYNTAX);
  r.address = "b@example.net";
  m.size_hint = 1001;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_LIMIT);
  m.size_hint = 0;
  m.envid = "caf\xc3\xa9";
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_UTF8);
  m.envid = NULL;
  r.notify = LSMTP_NOTIFY_NEVER | LSMTP_NOTIFY_SUCCESS;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_INVALID);
  r.notify = 0;
  m.read = NULL;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_INVALID);
  m.read = s_read;
  m.n_rcpts = 0;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_INVALID);
  m.n_rcpts = 1;
  /* Nothing was written by the refused attempts. */
  assert_string_equal(take(c), "");
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_OK);
  assert_string_equal(take(c), "MAIL FROM:<a@example.org>\r\n");
  assert_int_equal(lsmtp_client_timeout_ms(c), 5u * 60u * 1000u);
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_client_quit(c), LSMTP_ERR_STATE);
  lsmtp_client_del(c);
}

static void test_timeouts_and_eof(void **state) {
  (void)state;
  simple s;
  lsmtp_client *c = ready_client(&s, "250-mx\r\n250 PIPELINING\r\n", 0);
  lsmtp_client_rcpt r = {"b@example.net", 0, NULL};
  lsmtp_client_message m = {0};
  m.rcpts = &r;
  m.n_rcpts = 1;
  m.read = s_read;
  assert_int_equal(lsmtp_client_send(c, &m), LSMTP_OK);
  assert_string_equal(take(c), "MAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  assert_int_equal(lsmtp_client_timeout_ms(c), 5u * 60u * 1000u);
  feed_str(c, "250 ok\r\n250 ok\r\n", LSMTP_OK);
  assert_int_equal(lsmtp_client_timeout_ms(c), 2u * 60u * 1000u); /* DATA init */
  feed_str(c, "354 go\r\n", LSMTP_OK);
  assert_int_equal(lsmtp_client_timeout_ms(c), 3u * 60u * 1000u); /* data block */
  assert_string_equal(take(c), ".\r\n");
  assert_int_equal(lsmtp_client_timeout_ms(c), 10u * 60u * 1000u); /* termination */
  assert_int_equal(lsmtp_client_timeout(c), LSMTP_ERR_TIMEOUT);
  assert_int_equal(s.done_status, LSMTP_ERR_TIMEOUT);
  assert_int_equal(s.closed_status, LSMTP_ERR_TIMEOUT);
  assert_int_equal(lsmtp_client_state_get(c), LSMTP_CLIENT_FAILED);
  assert_int_equal(lsmtp_client_error(c), LSMTP_ERR_TIMEOUT);
  assert_int_equal(lsmtp_client_timeout(c), LSMTP_ERR_FATAL);
  assert_int_equal(lsmtp_client_eof(c), LSMTP_ERR_FATAL);
  assert_int_equal(s.closed_calls, 1);
  lsmtp_client_del(c);

  c = ready_client(&s, "250 mx\r\n", 0);
  assert_int_equal(lsmtp_client_eof(c), LSMTP_ERR_CLOSED);
  assert_int_equal(s.closed_status, LSMTP_ERR_CLOSED);
  lsmtp_client_del(c);

  c = ready_client(&s, "250 mx\r\n", 0);
  assert_int_equal(lsmtp_client_quit(c), LSMTP_OK);
  assert_string_equal(take(c), "QUIT\r\n");
  assert_int_equal(lsmtp_client_eof(c), LSMTP_OK); /* closed without 221 */
  assert_int_equal(s.closed_status, LSMTP_OK);
  assert_int_equal(lsmtp_client_state_get(c), LSMTP_CLIENT_CLOSED);
  lsmtp_client_del(c);
  lsmtp_client_del(NULL);
}

static void test_auth_guards(void **state) {
  (void)state;
  simple s;
  lsmtp_sasl_credentials cr = {0};
  cr.username = "user";
  cr.password = "pass";
  lsmtp_client *c = ready_client(&s, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n", 0);
  assert_int_equal(lsmtp_client_auth(c, LSMTP_SASL_NONE, &cr), LSMTP_ERR_INSECURE);
  assert_int_equal(lsmtp_client_auth(c, LSMTP_SASL_PLAIN, &cr), LSMTP_ERR_INSECURE);
  assert_string_equal(take(c), "");
  lsmtp_client_set_secure(c, 1);
  assert_int_equal(lsmtp_client_auth(c, LSMTP_SASL_CRAM_MD5, &cr), LSMTP_ERR_UNSUPPORTED);
  cr.password = "p\xc3\xa4ss";
  assert_int_equal(lsmtp_client_auth(c, LSMTP_SASL_PLAIN, &cr), LSMTP_ERR_UTF8);
  lsmtp_client_del(c);

  /* An initial response that would make the line longer than 512 octets
   * waits for the server's empty 334. */
  c = ready_client(&s, "250-mx\r\n250 AUTH PLAIN\r\n", 1);
  char longpass[600];
  memset(longpass, 'x', sizeof longpass - 1);
  longpass[sizeof longpass - 1] = '\0';
  cr.password = longpass;
  assert_int_equal(lsmtp_client_auth(c, LSMTP_SASL_NONE, &cr), LSMTP_OK);
  assert_string_equal(take(c), "AUTH PLAIN\r\n");
  feed_str(c, "334 \r\n", LSMTP_OK);
  const char *line = take(c);
  char expect_raw[700];
  size_t raw_len = (size_t)snprintf(expect_raw, sizeof expect_raw, "%cuser%c%s", 0, 0, longpass);
  char b64[1000];
  lsmtp_base64_encode(b64, sizeof b64, expect_raw, raw_len);
  assert_int_equal(strlen(line), strlen(b64) + 2);
  assert_memory_equal(line, b64, strlen(b64));
  lsmtp_client_del(c);

  /* The longest initial response that still fits stays on the line. */
  c = ready_client(&s, "250-mx\r\n250 AUTH PLAIN\r\n", 1);
  /* "AUTH PLAIN " (11) + b64 + CRLF (2) <= 512: b64 <= 499 -> 372 raw bytes. */
  char pass2[400];
  memset(pass2, 'y', 372 - 6);
  pass2[372 - 6] = '\0';
  cr.password = pass2;
  assert_int_equal(lsmtp_client_auth(c, LSMTP_SASL_PLAIN, &cr), LSMTP_OK);
  line = take(c);
  assert_int_equal(strlen(line), 11 + 496 + 2);
  assert_memory_equal(line, "AUTH PLAIN AHVzZXIA", 19);
  lsmtp_client_del(c);
}

static int tls_inside_rc;
static int start_tls_inside(void *ud, int status, const lsmtp_reply *r) {
  (void)status, (void)r;
  tls_inside_rc = lsmtp_client_tls_started(((simple *)ud)->cli);
  return 0;
}

static void test_starttls_state(void **state) {
  (void)state;
  simple s;
  lsmtp_client *c = ready_client(&s, "250 mx\r\n", 0);
  assert_int_equal(lsmtp_client_starttls(c), LSMTP_ERR_UNSUPPORTED);
  assert_int_equal(lsmtp_client_tls_started(c), LSMTP_ERR_STATE);
  lsmtp_client_del(c);
  c = ready_client(&s, "250-mx\r\n250 STARTTLS\r\n", 0);
  assert_int_equal(lsmtp_client_starttls(c), LSMTP_OK);
  assert_string_equal(take(c), "STARTTLS\r\n");
  feed_str(c, "220 go ahead\r\n", LSMTP_OK);
  /* Plaintext that arrives later, before the handshake, is injection too. */
  feed_str(c, "250 ok\r\n", LSMTP_ERR_PROTOCOL);
  assert_int_equal(s.closed_status, LSMTP_ERR_PROTOCOL);
  lsmtp_client_del(c);

  /* tls_started from inside feed (the STARTTLS callback) is refused: the
   * rest of that read would otherwise count as the answer to EHLO. */
  static const lsmtp_client_callbacks cbs = {NULL, NULL, NULL, NULL, NULL, start_tls_inside, s_closed};
  memset(&s, 0, sizeof s);
  assert_int_equal(lsmtp_client_new(&s.cli, NULL, &cbs, &s), LSMTP_OK);
  c = s.cli;
  feed_str(c, "220 mx\r\n250-mx\r\n250 STARTTLS\r\n", LSMTP_OK);
  assert_int_equal(lsmtp_client_starttls(c), LSMTP_OK);
  take(c);
  feed_str(c, "220 go ahead\r\n", LSMTP_OK);
  assert_int_equal(tls_inside_rc, LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_client_tls_started(c), LSMTP_OK);
  assert_string_equal(take(c), "EHLO localhost\r\n");
  assert_int_equal(lsmtp_client_extensions(c), 0);
  lsmtp_client_del(c);
}

/* Walk an allocation failure through every allocation of a whole session. */
static int one_session(const lsmtp_allocator *a) {
  lsmtp_client_config *cfg;
  int rc = lsmtp_client_config_new(&cfg, a);
  if (rc != LSMTP_OK) return rc;
  simple s;
  memset(&s, 0, sizeof s);
  static const lsmtp_client_callbacks cbs = {NULL, NULL, NULL, s_done, NULL, NULL, s_closed};
  lsmtp_client *c;
  rc = lsmtp_client_new(&c, cfg, &cbs, &s);
  lsmtp_client_config_del(cfg);
  if (rc != LSMTP_OK) return rc;
  size_t consumed;
  const char *p;
  lsmtp_client_rcpt r[2] = {{"b@example.net", 0, NULL}, {"c@example.net", 0, NULL}};
  lsmtp_client_message m = {0};
  m.rcpts = r;
  m.n_rcpts = 2;
  m.read = s_read;
  const char *server = "220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
  rc = lsmtp_client_feed(c, server, strlen(server), &consumed);
  if (rc == LSMTP_OK) rc = lsmtp_client_send(c, &m);
  if (rc == LSMTP_OK) {
    const char *rest = "250 ok\r\n250 ok\r\n550 no\r\n";
    rc = lsmtp_client_feed(c, rest, strlen(rest), &consumed);
  }
  if (rc == LSMTP_OK) {
    size_t n = lsmtp_client_pending(c, &p);
    lsmtp_client_consume(c, n);
    rc = lsmtp_client_error(c);
  }
  if (rc == LSMTP_OK) rc = lsmtp_client_feed(c, "250 ok\r\n", 8, &consumed);
  if (rc == LSMTP_OK && s.done_status != LSMTP_OK) rc = LSMTP_ERR_INVALID;
  lsmtp_client_del(c);
  return rc;
}

static void test_allocation_failures(void **state) {
  (void)state;
  for (long n = 1;; n++) {
    failalloc f;
    failalloc_init(&f, n);
    int rc = one_session(&f.alloc);
    if (!failalloc_reached(&f)) {
      assert_int_equal(rc, LSMTP_OK);
      break;
    }
    assert_int_equal(rc, LSMTP_ERR_NOMEM);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transcripts),
      cmocka_unit_test(test_extensions),
      cmocka_unit_test(test_send_refusals),
      cmocka_unit_test(test_timeouts_and_eof),
      cmocka_unit_test(test_auth_guards),
      cmocka_unit_test(test_starttls_state),
      cmocka_unit_test(test_allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
