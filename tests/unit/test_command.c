/* The command-line parser (lsmtp_cmd_parse, lsmtp_verb_name), each case
 * parsed directly and also after framing by the CRLF line reader, fed
 * whole, one byte at a time and split at every position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A byte string with an explicit length, so cases may hold NUL. */
#define S(lit) lit, sizeof(lit) - 1

typedef struct cmd_case {
  const char *in;
  size_t len;
  unsigned flags;
  int rc;
  lsmtp_verb verb;
  const char *verb_text; /* expected verb_text; NULL when none */
  const char *arg;       /* expected arg; NULL when none */
  size_t arg_len;        /* arg may hold 8-bit, never NUL: strlen is fine */
} cmd_case;

#define OK_(in, verb, vt, arg) {S(in), 0, LSMTP_OK, LSMTP_VERB_##verb, vt, arg, sizeof(arg) - 1}
#define OK8_(in, verb, vt, arg) \
  {S(in), LSMTP_CMD_ALLOW_8BIT, LSMTP_OK, LSMTP_VERB_##verb, vt, arg, sizeof(arg) - 1}
/* A failure that leaves an empty result. */
#define ERR_(in, flags, rc) {S(in), flags, rc, LSMTP_VERB_UNKNOWN, NULL, NULL, 0}
/* LSMTP_ERR_UTF8 with the verb and arg still reported. */
#define UTF8_(in, verb, vt, arg) \
  {S(in), 0, LSMTP_ERR_UTF8, LSMTP_VERB_##verb, vt, arg, sizeof(arg) - 1}

static const cmd_case cases[] = {
    /* every verb, in mixed case */
    OK_("eHlO client.example\r\n", EHLO, "eHlO", "client.example"),
    OK_("helo client.example\r\n", HELO, "helo", "client.example"),
    OK_("LhLo client.example\r\n", LHLO, "LhLo", "client.example"),
    OK_("mail FROM:<a@b> SIZE=10\r\n", MAIL, "mail", "FROM:<a@b> SIZE=10"),
    OK_("MAIL FROM:<>\r\n", MAIL, "MAIL", "FROM:<>"),
    OK_("RcPt TO:<c@d> NOTIFY=NEVER\r\n", RCPT, "RcPt", "TO:<c@d> NOTIFY=NEVER"),
    OK_("data\r\n", DATA, "data", ""),
    OK_("DATA\r\n", DATA, "DATA", ""),
    OK_("bDaT 100 LAST\r\n", BDAT, "bDaT", "100 LAST"),
    OK_("rset\r\n", RSET, "rset", ""),
    OK_("NoOp\r\n", NOOP, "NoOp", ""),
    OK_("nOOP anything at all\r\n", NOOP, "nOOP", "anything at all"),
    OK_("quit\r\n", QUIT, "quit", ""),
    OK_("Vrfy postmaster\r\n", VRFY, "Vrfy", "postmaster"),
    OK_("ExPn list\r\n", EXPN, "ExPn", "list"),
    OK_("help\r\n", HELP, "help", ""),
    OK_("HeLp mail\r\n", HELP, "HeLp", "mail"),
    OK_("StartTls\r\n", STARTTLS, "StartTls", ""),
    OK_("STARTTLS\r\n", STARTTLS, "STARTTLS", ""),
    OK_("auth PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n", AUTH, "auth", "PLAIN dGVzdAB0ZXN0AHRlc3Q="),
    OK_("AUTH LOGIN\r\n", AUTH, "AUTH", "LOGIN"),

    /* unknown verbs: parsed, answered 500 by the server */
    OK_("FOO\r\n", UNKNOWN, "FOO", ""),
    OK_("foo bar baz\r\n", UNKNOWN, "foo", "bar baz"),
    OK_("EHL\r\n", UNKNOWN, "EHL", ""),
    OK_("X\r\n", UNKNOWN, "X", ""),
    OK_("STARTTL\r\n", UNKNOWN, "STARTTL", ""),
    OK_("STARTTLZ\r\n", UNKNOWN, "STARTTLZ", ""),
    OK_("XEXCH50 1 2\r\n", UNKNOWN, "XEXCH50", "1 2"),
    OK_("FOO\tbar\r\n", UNKNOWN, "FOO\tbar", ""),
    OK_("M@IL FROM:<>\r\n", UNKNOWN, "M@IL", "FROM:<>"),
    OK_("GET / HTTP/1.1\r\n", UNKNOWN, "GET", "/ HTTP/1.1"),
    OK_("12345\r\n", UNKNOWN, "12345", ""),

    /* a known verb glued to something other than SP */
    ERR_("MAILX\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_("MAIL:FROM:<a@b>\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_("MAILFROM:<a@b>\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_("DATA\t\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_("HELO\tclient\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_("quit.\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_("STARTTLSX\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_("starttls\t\r\n", 0, LSMTP_ERR_SYNTAX),
    /* empty line, empty verb */
    ERR_("\r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_(" \r\n", 0, LSMTP_ERR_SYNTAX),
    ERR_(" MAIL FROM:<>\r\n", 0, LSMTP_ERR_SYNTAX),

    /* trailing whitespace is dropped from the arg, the rest is kept */
    OK_("DATA \r\n", DATA, "DATA", ""),
    OK_("QUIT \t \t\r\n", QUIT, "QUIT", ""),
    OK_("RSET  \r\n", RSET, "RSET", ""),
    OK_("MAIL FROM:<a@b>  \r\n", MAIL, "MAIL", "FROM:<a@b>"),
    OK_("MAIL  FROM:<a@b>\r\n", MAIL, "MAIL", " FROM:<a@b>"),
    OK_("NOOP a \t b\t\r\n", NOOP, "NOOP", "a \t b"),
    OK_("EHLO \tx\r\n", EHLO, "EHLO", "\tx"),

    /* CR and LF only as the final CRLF */
    ERR_("QUIT\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("QUIT\r", 0, LSMTP_ERR_BARE_EOL),
    ERR_("QUIT", 0, LSMTP_ERR_BARE_EOL),
    ERR_("\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("QUIT\n\r", 0, LSMTP_ERR_BARE_EOL),
    ERR_("QU\nIT\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("DATA\n\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("DATA\r\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("\n\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("\r\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("MAIL FROM:<a@b>\nRCPT TO:<c@d>\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("MAIL FROM:<a@b>\rRCPT TO:<c@d>\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("NOOP \xC3\n\r\n", LSMTP_CMD_ALLOW_8BIT, LSMTP_ERR_BARE_EOL),

    /* NUL anywhere */
    ERR_("NOOP a\0b\r\n", 0, LSMTP_ERR_NUL),
    ERR_("\0\r\n", 0, LSMTP_ERR_NUL),
    ERR_("QUIT\0\r\n", 0, LSMTP_ERR_NUL),
    ERR_("NOOP \0\n\r\n", 0, LSMTP_ERR_BARE_EOL),
    ERR_("NOOP \xC3\0\r\n", 0, LSMTP_ERR_NUL),

    /* 8-bit: refused without the flag (the verb still reported, for
     * "553 5.6.7"), allowed in the arg with it, never in the verb */
    UTF8_("MAIL FROM:<j\xC3\xBCrgen@example.org>\r\n", MAIL, "MAIL",
          "FROM:<j\xC3\xBCrgen@example.org>"),
    OK8_("MAIL FROM:<j\xC3\xBCrgen@example.org> SMTPUTF8\r\n", MAIL, "MAIL",
         "FROM:<j\xC3\xBCrgen@example.org> SMTPUTF8"),
    UTF8_("RCPT TO:<\xE2\x98\x83@example.org>\r\n", RCPT, "RCPT", "TO:<\xE2\x98\x83@example.org>"),
    OK8_("RCPT TO:<\xE2\x98\x83@example.org>\r\n", RCPT, "RCPT", "TO:<\xE2\x98\x83@example.org>"),
    UTF8_("NOOP \x80\r\n", NOOP, "NOOP", "\x80"),
    OK8_("NOOP \xFF\r\n", NOOP, "NOOP", "\xFF"),
    UTF8_("FOO \xC3\xA9\r\n", UNKNOWN, "FOO", "\xC3\xA9"),
    ERR_("M\xC3\x81IL FROM:<>\r\n", 0, LSMTP_ERR_UTF8),
    ERR_("M\xC3\x81IL FROM:<>\r\n", LSMTP_CMD_ALLOW_8BIT, LSMTP_ERR_UTF8),
    ERR_("\xC3\xA9\r\n", LSMTP_CMD_ALLOW_8BIT, LSMTP_ERR_UTF8),
    ERR_("MAILX \xC3\xA9\r\n", 0, LSMTP_ERR_UTF8),
    ERR_("MAILX \xC3\xA9\r\n", LSMTP_CMD_ALLOW_8BIT, LSMTP_ERR_SYNTAX),
};

/* ---- checking one parse result against a case ---- */

static void check_result(const cmd_case *c, const char *line, size_t len, int rc,
                         const lsmtp_cmd *cmd) {
  assert_int_equal(rc, c->rc);
  assert_int_equal(cmd->verb, c->verb);
  if (c->verb_text) {
    assert_int_equal(cmd->verb_len, strlen(c->verb_text));
    assert_ptr_equal(cmd->verb_text, line); /* the verb starts the line */
    assert_memory_equal(cmd->verb_text, c->verb_text, cmd->verb_len);
  } else {
    assert_int_equal(cmd->verb_len, 0);
  }
  assert_int_equal(cmd->arg_len, c->arg ? c->arg_len : 0);
  if (cmd->arg_len) {
    /* the arg follows the verb and its single SP, inside the line */
    assert_ptr_equal(cmd->arg, line + cmd->verb_len + 1);
    assert_memory_equal(cmd->arg, c->arg, cmd->arg_len);
  }
  assert_true(cmd->arg >= line && cmd->arg + cmd->arg_len <= line + len);
  if (c->verb != LSMTP_VERB_UNKNOWN)
    assert_true(lsmtp__ieq(cmd->verb_text, lsmtp_verb_name(c->verb), cmd->verb_len));
}

static void test_cases_whole(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const cmd_case *c = &cases[i];
    print_message("case %zu\n", i);
    /* an exact-size heap copy, so ASan catches a read past the line */
    char *line = malloc(c->len ? c->len : 1);
    assert_non_null(line);
    if (c->len) memcpy(line, c->in, c->len);
    lsmtp_cmd cmd;
    memset(&cmd, 0xA5, sizeof cmd); /* the parser must set every field */
    int rc = lsmtp_cmd_parse(line, c->len, c->flags, &cmd);
    check_result(c, line, c->len, rc, &cmd);
    free(line);
  }
}

/* ---- feeding a stream through the line reader ---- */

typedef struct event {
  int rc; /* LSMTP_OK (a line) or LSMTP_ERR_TOO_LONG */
  char *line;
  size_t len;
} event;

typedef struct run {
  lsmtp__line_reader reader;
  event ev[16];
  size_t n;
  /* After event i, switch the bound to max_after[i] (0: keep), as a server
   * does around AUTH. */
  const size_t *max_after;
} run;

static void feed(run *r, const char *p, size_t len) {
  size_t off = 0;
  while (off < len) {
    size_t used = 0, line_len = 0;
    const char *line = NULL;
    int rc = lsmtp__line_feed(&r->reader, p + off, len - off, &used, &line, &line_len);
    if (rc == LSMTP_INCOMPLETE) {
      assert_int_equal(used, len - off);
      return;
    }
    assert_true(rc == LSMTP_OK || rc == LSMTP_ERR_TOO_LONG);
    assert_true(used > 0 && used <= len - off);
    assert_true(r->n < sizeof r->ev / sizeof r->ev[0]);
    event *e = &r->ev[r->n];
    e->rc = rc;
    e->len = line_len;
    e->line = NULL;
    if (rc == LSMTP_OK) {
      e->line = malloc(line_len);
      assert_non_null(e->line);
      memcpy(e->line, line, line_len);
    }
    if (r->max_after && r->max_after[r->n]) lsmtp__line_set_max(&r->reader, r->max_after[r->n]);
    r->n++;
    off += used;
  }
}

static void run_begin(run *r, size_t max, const size_t *max_after) {
  memset(r, 0, sizeof *r);
  lsmtp__line_init(&r->reader, NULL, max);
  r->max_after = max_after;
}

static void run_end(run *r) {
  for (size_t i = 0; i < r->n; i++) free(r->ev[i].line);
  lsmtp__line_free(&r->reader);
}

/* Runs the stream whole, byte by byte and split at every position; calls
 * check on each run's events. */
typedef void (*events_check)(const run *r, const void *ctx);

static void run_all_ways(const char *in, size_t len, size_t max, const size_t *max_after,
                         events_check check, const void *ctx) {
  run r;
  run_begin(&r, max, max_after);
  feed(&r, in, len);
  check(&r, ctx);
  run_end(&r);

  run_begin(&r, max, max_after);
  for (size_t i = 0; i < len; i++) feed(&r, in + i, 1);
  check(&r, ctx);
  run_end(&r);

  for (size_t k = 1; k < len; k++) {
    run_begin(&r, max, max_after);
    feed(&r, in, k);
    feed(&r, in + k, len - k);
    check(&r, ctx);
    run_end(&r);
  }
}

/* A single-line case: the reader hands back the line unchanged when it
 * ends in CRLF (and holds it back otherwise), and it parses the same. */
static void check_single_case(const run *r, const void *ctx) {
  const cmd_case *c = ctx;
  const int complete = c->len >= 2 && c->in[c->len - 2] == '\r' && c->in[c->len - 1] == '\n';
  if (!complete) {
    assert_int_equal(r->n, 0);
    assert_true(lsmtp__line_pending(&r->reader));
    return;
  }
  assert_int_equal(r->n, 1);
  assert_int_equal(r->ev[0].rc, LSMTP_OK);
  assert_int_equal(r->ev[0].len, c->len);
  assert_memory_equal(r->ev[0].line, c->in, c->len);
  lsmtp_cmd cmd;
  int rc = lsmtp_cmd_parse(r->ev[0].line, r->ev[0].len, c->flags, &cmd);
  check_result(c, r->ev[0].line, r->ev[0].len, rc, &cmd);
}

static void test_cases_through_line_reader(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const cmd_case *c = &cases[i];
    print_message("case %zu\n", i);
    if (c->len == 0) continue;
    run_all_ways(c->in, c->len, LSMTP_CMD_DEFAULT_MAX_LINE, NULL, check_single_case, c);
  }
}

/* ---- multi-line streams ---- */

typedef struct expect {
  int rc;            /* LSMTP_OK or LSMTP_ERR_TOO_LONG (then nothing else) */
  lsmtp_verb verb;
  const char *arg;   /* NULL: do not check */
  size_t line_len;   /* 0: do not check */
} expect;

typedef struct stream_expect {
  const expect *ev;
  size_t n;
} stream_expect;

static void check_stream(const run *r, const void *ctx) {
  const stream_expect *s = ctx;
  assert_int_equal(r->n, s->n);
  for (size_t i = 0; i < s->n; i++) {
    const expect *x = &s->ev[i];
    assert_int_equal(r->ev[i].rc, x->rc);
    if (x->rc != LSMTP_OK) continue;
    if (x->line_len) assert_int_equal(r->ev[i].len, x->line_len);
    lsmtp_cmd cmd;
    assert_int_equal(lsmtp_cmd_parse(r->ev[i].line, r->ev[i].len, 0, &cmd), LSMTP_OK);
    assert_int_equal(cmd.verb, x->verb);
    if (x->arg) {
      assert_int_equal(cmd.arg_len, strlen(x->arg));
      assert_memory_equal(cmd.arg, x->arg, cmd.arg_len);
    }
  }
}

static void test_pipelined_group(void **state) {
  (void)state;
  static const char in[] =
      "EHLO client.example\r\n"
      "MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME\r\n"
      "RCPT TO:<c@d.example>\r\n"
      "rcpt to:<e@f.example> NOTIFY=SUCCESS,FAILURE\r\n"
      "DATA\r\n"
      "BDAT 0 LAST\r\n"
      "QUIT\r\n";
  static const expect ev[] = {
      {LSMTP_OK, LSMTP_VERB_EHLO, "client.example", 0},
      {LSMTP_OK, LSMTP_VERB_MAIL, "FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", 0},
      {LSMTP_OK, LSMTP_VERB_RCPT, "TO:<c@d.example>", 0},
      {LSMTP_OK, LSMTP_VERB_RCPT, "to:<e@f.example> NOTIFY=SUCCESS,FAILURE", 0},
      {LSMTP_OK, LSMTP_VERB_DATA, "", 0},
      {LSMTP_OK, LSMTP_VERB_BDAT, "0 LAST", 0},
      {LSMTP_OK, LSMTP_VERB_QUIT, "", 0},
  };
  const stream_expect s = {ev, sizeof ev / sizeof ev[0]};
  run_all_ways(in, sizeof in - 1, LSMTP_CMD_DEFAULT_MAX_LINE, NULL, check_stream, &s);
}

/* A line of exactly len bytes: prefix, filler, CRLF. */
static size_t make_line(char *dst, const char *prefix, char fill, size_t len) {
  size_t p = strlen(prefix);
  assert_true(len >= p + 2);
  memcpy(dst, prefix, p);
  memset(dst + p, fill, len - p - 2);
  dst[len - 2] = '\r';
  dst[len - 1] = '\n';
  return len;
}

static void test_overlong_lines(void **state) {
  (void)state;
  const size_t max = LSMTP_CMD_DEFAULT_MAX_LINE;
  char *in = malloc(4 * max + 64);
  assert_non_null(in);
  size_t len = 0;
  len += make_line(in + len, "NOOP ", 'x', max);     /* exactly the bound */
  len += make_line(in + len, "NOOP ", 'y', max + 1); /* one byte over */
  memcpy(in + len, "RSET\r\n", 6);
  len += 6;
  /* overlong, with a bare CR and LF inside that must not end it, and a
   * CR just before the bound */
  size_t start = len;
  len += make_line(in + len, "MAIL FROM:<", 'z', max + 300);
  in[start + 100] = '\n';
  in[start + 200] = '\r';
  in[start + max - 1] = '\r';
  memcpy(in + len, "quit\r\n", 6);
  len += 6;

  static const expect ev[] = {
      {LSMTP_OK, LSMTP_VERB_NOOP, NULL, LSMTP_CMD_DEFAULT_MAX_LINE},
      {LSMTP_ERR_TOO_LONG, LSMTP_VERB_UNKNOWN, NULL, 0},
      {LSMTP_OK, LSMTP_VERB_RSET, "", 6},
      {LSMTP_ERR_TOO_LONG, LSMTP_VERB_UNKNOWN, NULL, 0},
      {LSMTP_OK, LSMTP_VERB_QUIT, "", 6},
  };
  const stream_expect s = {ev, sizeof ev / sizeof ev[0]};
  run_all_ways(in, len, max, NULL, check_stream, &s);
  free(in);
}

/* AUTH (RFC 4954 §4): after "AUTH PLAIN" is read under the default bound
 * the server allows 12288-byte lines for the exchange, then restores it. */
static void test_auth_lines(void **state) {
  (void)state;
  const size_t big = LSMTP_AUTH_DEFAULT_MAX_LINE, small = LSMTP_CMD_DEFAULT_MAX_LINE;
  char *in = malloc(4 * big);
  assert_non_null(in);
  size_t len = 0;
  memcpy(in, "AUTH PLAIN\r\n", 12);
  len += 12;
  /* a base64 continuation line: 3000 bytes encode to 4000 characters */
  unsigned char *raw = malloc(3000);
  assert_non_null(raw);
  for (size_t i = 0; i < 3000; i++) raw[i] = (unsigned char)(i * 7 + 3);
  size_t b64_start = len;
  size_t b64_len = lsmtp_base64_encode(in + len, 4 * big - len, raw, 3000);
  assert_int_equal(b64_len, 4000);
  len += b64_len;
  memcpy(in + len, "\r\n", 2);
  len += 2;
  len += make_line(in + len, "AUTH ", 'A', big);     /* exactly the bound */
  len += make_line(in + len, "AUTH ", 'B', big + 1); /* one over */
  memcpy(in + len, "*\r\n", 3); /* the client cancels */
  len += 3;
  len += make_line(in + len, "NOOP ", 'C', small + 1); /* bound restored */
  memcpy(in + len, "QUIT\r\n", 6);
  len += 6;

  static const expect ev[] = {
      {LSMTP_OK, LSMTP_VERB_AUTH, "PLAIN", 12},
      {LSMTP_OK, LSMTP_VERB_UNKNOWN, NULL, 4002},
      {LSMTP_OK, LSMTP_VERB_AUTH, NULL, LSMTP_AUTH_DEFAULT_MAX_LINE},
      {LSMTP_ERR_TOO_LONG, LSMTP_VERB_UNKNOWN, NULL, 0},
      {LSMTP_OK, LSMTP_VERB_UNKNOWN, "", 3},
      {LSMTP_ERR_TOO_LONG, LSMTP_VERB_UNKNOWN, NULL, 0},
      {LSMTP_OK, LSMTP_VERB_QUIT, "", 6},
  };
  static const size_t max_after[16] = {LSMTP_AUTH_DEFAULT_MAX_LINE, 0, 0, 0,
                                       LSMTP_CMD_DEFAULT_MAX_LINE};
  const stream_expect s = {ev, sizeof ev / sizeof ev[0]};
  run_all_ways(in, len, small, max_after, check_stream, &s);

  /* The continuation line decodes to the original bytes. */
  run r;
  run_begin(&r, small, max_after);
  feed(&r, in, len);
  assert_int_equal(r.n, 7);
  assert_memory_equal(r.ev[1].line, in + b64_start, b64_len);
  unsigned char *dec = malloc(3000);
  assert_non_null(dec);
  size_t dec_len = 0;
  assert_int_equal(lsmtp_base64_decode(dec, 3000, &dec_len, r.ev[1].line, r.ev[1].len - 2),
                   LSMTP_OK);
  assert_int_equal(dec_len, 3000);
  assert_memory_equal(dec, raw, 3000);
  run_end(&r);
  free(dec);
  free(raw);
  free(in);
}

static void test_verb_names(void **state) {
  (void)state;
  static const struct {
    lsmtp_verb verb;
    const char *name;
  } names[] = {
      {LSMTP_VERB_UNKNOWN, ""},     {LSMTP_VERB_EHLO, "EHLO"}, {LSMTP_VERB_HELO, "HELO"},
      {LSMTP_VERB_LHLO, "LHLO"},    {LSMTP_VERB_MAIL, "MAIL"}, {LSMTP_VERB_RCPT, "RCPT"},
      {LSMTP_VERB_DATA, "DATA"},    {LSMTP_VERB_BDAT, "BDAT"}, {LSMTP_VERB_RSET, "RSET"},
      {LSMTP_VERB_NOOP, "NOOP"},    {LSMTP_VERB_QUIT, "QUIT"}, {LSMTP_VERB_VRFY, "VRFY"},
      {LSMTP_VERB_EXPN, "EXPN"},    {LSMTP_VERB_HELP, "HELP"},
      {LSMTP_VERB_STARTTLS, "STARTTLS"}, {LSMTP_VERB_AUTH, "AUTH"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    assert_string_equal(lsmtp_verb_name(names[i].verb), names[i].name);
    if (names[i].verb == LSMTP_VERB_UNKNOWN) continue;
    /* each name, upper and lower case, parses back to its verb */
    char line[16];
    size_t n = strlen(names[i].name);
    memcpy(line, names[i].name, n);
    memcpy(line + n, "\r\n", 2);
    lsmtp_cmd cmd;
    assert_int_equal(lsmtp_cmd_parse(line, n + 2, 0, &cmd), LSMTP_OK);
    assert_int_equal(cmd.verb, names[i].verb);
    for (size_t j = 0; j < n; j++) line[j] = (char)lsmtp__to_lower((unsigned char)line[j]);
    assert_int_equal(lsmtp_cmd_parse(line, n + 2, 0, &cmd), LSMTP_OK);
    assert_int_equal(cmd.verb, names[i].verb);
  }
  assert_string_equal(lsmtp_verb_name((lsmtp_verb)99), "");
  assert_string_equal(lsmtp_verb_name((lsmtp_verb)-1), "");
}

/* Every case-folding of every verb is recognised, and no single-byte
 * change of a verb's letters to a non-letter is. */
static void test_verb_case_folding(void **state) {
  (void)state;
  for (int v = LSMTP_VERB_EHLO; v <= LSMTP_VERB_AUTH; v++) {
    const char *name = lsmtp_verb_name((lsmtp_verb)v);
    size_t n = strlen(name);
    char line[16];
    for (unsigned mask = 0; mask < (1u << n); mask++) {
      for (size_t j = 0; j < n; j++)
        line[j] = (char)((mask >> j) & 1 ? lsmtp__to_lower((unsigned char)name[j]) : name[j]);
      memcpy(line + n, "\r\n", 2);
      lsmtp_cmd cmd;
      assert_int_equal(lsmtp_cmd_parse(line, n + 2, 0, &cmd), LSMTP_OK);
      assert_int_equal(cmd.verb, v);
    }
    /* Any other byte in place of a letter loses the verb: the parser's
     * case folding must not turn a non-letter into a letter. */
    for (size_t j = 0; j < n; j++) {
      for (int byte = 1; byte < 256; byte++) {
        if (lsmtp__to_lower(byte) == lsmtp__to_lower((unsigned char)name[j])) continue;
        if (byte == ' ' || byte == '\r' || byte == '\n') continue;
        memcpy(line, name, n);
        memcpy(line + n, "\r\n", 2);
        line[j] = (char)byte;
        lsmtp_cmd cmd;
        int rc = lsmtp_cmd_parse(line, n + 2, LSMTP_CMD_ALLOW_8BIT, &cmd);
        assert_true(rc != LSMTP_OK || (int)cmd.verb != v);
      }
    }
  }
}

static void test_invalid_arguments(void **state) {
  (void)state;
  lsmtp_cmd cmd;
  assert_int_equal(lsmtp_cmd_parse("QUIT\r\n", 6, 0, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_cmd_parse(NULL, 6, 0, &cmd), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_cmd_parse(NULL, 0, 0, &cmd), LSMTP_ERR_BARE_EOL);
  assert_int_equal(lsmtp_cmd_parse("", 0, 0, &cmd), LSMTP_ERR_BARE_EOL);
  /* only line_len bytes are read: the CRLF must be inside them */
  assert_int_equal(lsmtp_cmd_parse("QUIT\r\nxx", 5, 0, &cmd), LSMTP_ERR_BARE_EOL);
  assert_int_equal(lsmtp_cmd_parse("QUIT\r\nxx", 6, 0, &cmd), LSMTP_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases_whole),
      cmocka_unit_test(test_cases_through_line_reader),
      cmocka_unit_test(test_pipelined_group),
      cmocka_unit_test(test_overlong_lines),
      cmocka_unit_test(test_auth_lines),
      cmocka_unit_test(test_verb_names),
      cmocka_unit_test(test_verb_case_folding),
      cmocka_unit_test(test_invalid_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
