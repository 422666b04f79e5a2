/* The reply parser and formatter (lib/core/reply.c). Each parser case is fed
 * whole, byte by byte and split in two at every position, and must give the
 * same replies, at the same input offsets, with the same final status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support_failalloc.h"

#define MAX_REPLIES 4
#define MAX_TEXT 1024

typedef struct got_reply {
  int code;
  lsmtp_enhanced enh;
  size_t lines;
  size_t end; /* input offset just past the reply */
  size_t text_len;
  char text[MAX_TEXT];
} got_reply;

typedef struct outcome {
  got_reply r[MAX_REPLIES];
  size_t n;
  int final; /* LSMTP_INCOMPLETE or the error */
} outcome;

/* Feed in[0..len) in chunks ending at each cuts[i] (then the rest), calling
 * feed again on what is left after each reply, as a client would. */
static void drive(const lsmtp_allocator *a, const char *in, size_t len,
                  size_t max_line, size_t max_lines, const size_t *cuts,
                  size_t ncuts, outcome *out) {
  lsmtp_reply_parser *p;
  memset(out, 0, sizeof *out);
  assert_int_equal(lsmtp_reply_parser_new(&p, a, max_line, max_lines), LSMTP_OK);
  assert_null(lsmtp_reply_parser_get(p));
  out->final = LSMTP_INCOMPLETE;
  size_t start = 0;
  for (size_t c = 0; c <= ncuts && out->final == LSMTP_INCOMPLETE; c++) {
    size_t stop = c < ncuts ? cuts[c] : len;
    char *chunk = malloc(stop - start + 1); /* exact copy: ASan sees over-reads */
    assert_non_null(chunk);
    memcpy(chunk, in + start, stop - start);
    size_t off = 0;
    for (;;) {
      size_t used = 0;
      int rc = lsmtp_reply_parser_feed(p, chunk + off, stop - start - off, &used);
      assert_true(used <= stop - start - off);
      off += used;
      if (rc == LSMTP_INCOMPLETE) {
        assert_int_equal(off, stop - start);
        assert_null(lsmtp_reply_parser_get(p));
        break;
      }
      if (rc != LSMTP_DONE) {
        assert_true(rc < 0);
        assert_null(lsmtp_reply_parser_get(p));
        out->final = rc;
        /* Sticky: nothing works any more. */
        used = 99;
        assert_int_equal(lsmtp_reply_parser_feed(p, "250 ok\r\n", 8, &used),
                         LSMTP_ERR_FATAL);
        assert_int_equal(used, 0);
        assert_int_equal(lsmtp_reply_parser_feed(p, NULL, 0, &used), LSMTP_ERR_FATAL);
        break;
      }
      const lsmtp_reply *r = lsmtp_reply_parser_get(p);
      assert_non_null(r);
      assert_true(out->n < MAX_REPLIES);
      got_reply *g = &out->r[out->n++];
      g->code = r->code;
      g->enh = r->enhanced;
      g->lines = r->lines;
      g->end = start + off;
      assert_true(r->text_len < MAX_TEXT);
      assert_int_equal(strlen(r->text), r->text_len);
      g->text_len = r->text_len;
      memcpy(g->text, r->text, r->text_len);
    }
    free(chunk);
    start = stop;
  }
  lsmtp_reply_parser_del(p);
}

typedef struct expect_reply {
  int code;
  unsigned short cls, subject, detail;
  const char *text;
  size_t lines;
  size_t end; /* 0: the end of the input */
} expect_reply;

static void check(const outcome *got, size_t len, const expect_reply *want,
                  size_t nwant, int final) {
  assert_int_equal(got->final, final);
  assert_int_equal(got->n, nwant);
  for (size_t i = 0; i < nwant; i++) {
    const got_reply *g = &got->r[i];
    assert_int_equal(g->code, want[i].code);
    assert_int_equal(g->enh.cls, want[i].cls);
    assert_int_equal(g->enh.subject, want[i].subject);
    assert_int_equal(g->enh.detail, want[i].detail);
    assert_int_equal(g->lines, want[i].lines);
    assert_int_equal(g->end, want[i].end ? want[i].end : len);
    assert_int_equal(g->text_len, strlen(want[i].text));
    assert_memory_equal(g->text, want[i].text, g->text_len);
  }
}

static void run_case(const char *in, size_t len, size_t max_line,
                     size_t max_lines, const expect_reply *want, size_t nwant,
                     int final) {
  outcome got;
  drive(NULL, in, len, max_line, max_lines, NULL, 0, &got);
  check(&got, len, want, nwant, final);

  size_t *cuts = malloc((len + 1) * sizeof *cuts);
  assert_non_null(cuts);
  for (size_t i = 0; i < len; i++) cuts[i] = i + 1;
  drive(NULL, in, len, max_line, max_lines, cuts, len, &got);
  check(&got, len, want, nwant, final);
  free(cuts);

  for (size_t k = 0; k <= len; k++) {
    drive(NULL, in, len, max_line, max_lines, &k, 1, &got);
    check(&got, len, want, nwant, final);
  }
}

/* in is a string literal (it may hold NUL bytes). */
#define PARSE(in, max_line, max_lines, final, ...)                           \
  do {                                                                       \
    const expect_reply want_[] = {__VA_ARGS__};                              \
    run_case(in, sizeof(in) - 1, max_line, max_lines, want_,                 \
             sizeof want_ / sizeof want_[0], final);                         \
  } while (0)
#define PARSE_FAILS(in, max_line, max_lines, final)                          \
  run_case(in, sizeof(in) - 1, max_line, max_lines, NULL, 0, final)

#define DONE_ LSMTP_INCOMPLETE /* every reply completed, nothing left */

static void test_single_line(void **state) {
  (void)state;
  PARSE("250 ok\r\n", 0, 0, DONE_, {250, 0, 0, 0, "ok", 1, 0});
  PARSE("250\r\n", 0, 0, DONE_, {250, 0, 0, 0, "", 1, 0});
  PARSE("250 \r\n", 0, 0, DONE_, {250, 0, 0, 0, "", 1, 0});
  PARSE("220 mx.example.org ESMTP  ready \r\n", 0, 0, DONE_,
        {220, 0, 0, 0, "mx.example.org ESMTP  ready ", 1, 0});
  PARSE("554 h\xc3\xa9llo\ttab\r\n", 0, 0, DONE_,
        {554, 0, 0, 0, "h\xc3\xa9llo\ttab", 1, 0});
  PARSE("559 x\r\n", 0, 0, DONE_, {559, 0, 0, 0, "x", 1, 0});
  PARSE_FAILS("599 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY); /* second digit 0-5 */
  PARSE("200 x\r\n", 0, 0, DONE_, {200, 0, 0, 0, "x", 1, 0});
}

static void test_multi_line(void **state) {
  (void)state;
  PARSE("250-mx.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
        "250 ENHANCEDSTATUSCODES\r\n",
        0, 0, DONE_,
        {250, 0, 0, 0,
         "mx.example.org Hello\nPIPELINING\nSIZE 1000\nENHANCEDSTATUSCODES", 4, 0});
  PARSE("250-\r\n250 x\r\n", 0, 0, DONE_, {250, 0, 0, 0, "\nx", 2, 0});
  PARSE("250-a\r\n250-\r\n250\r\n", 0, 0, DONE_, {250, 0, 0, 0, "a\n\n", 3, 0});
  /* Unfinished: no reply yet. */
  PARSE_FAILS("250-a\r\n250-b\r\n", 0, 0, LSMTP_INCOMPLETE);
  PARSE_FAILS("250 a\r", 0, 0, LSMTP_INCOMPLETE);
}

static void test_enhanced_codes(void **state) {
  (void)state;
  PARSE("250 2.1.0 Sender ok\r\n", 0, 0, DONE_, {250, 2, 1, 0, "Sender ok", 1, 0});
  PARSE("550-5.7.1 Rejected\r\n550 5.7.1 go away\r\n", 0, 0, DONE_,
        {550, 5, 7, 1, "Rejected\ngo away", 2, 0});
  PARSE("421 4.4.2\r\n", 0, 0, DONE_, {421, 4, 4, 2, "", 1, 0});
  PARSE("250 2.10.100 ok\r\n", 0, 0, DONE_, {250, 2, 10, 100, "ok", 1, 0});
  PARSE("250 2.0.0  two spaces\r\n", 0, 0, DONE_, {250, 2, 0, 0, " two spaces", 1, 0});
  /* The class must be the reply's first digit. */
  PARSE("250 5.1.1 odd\r\n", 0, 0, DONE_, {250, 0, 0, 0, "5.1.1 odd", 1, 0});
  PARSE("354 2.0.0 go ahead\r\n", 0, 0, DONE_, {354, 0, 0, 0, "2.0.0 go ahead", 1, 0});
  /* Not codes: too many digits, glued text, missing parts, extra part. */
  PARSE("250 2.1000.0 x\r\n", 0, 0, DONE_, {250, 0, 0, 0, "2.1000.0 x", 1, 0});
  PARSE("250 2.1.0ok\r\n", 0, 0, DONE_, {250, 0, 0, 0, "2.1.0ok", 1, 0});
  PARSE("250 2..0 x\r\n", 0, 0, DONE_, {250, 0, 0, 0, "2..0 x", 1, 0});
  PARSE("250 2.1.0.1 x\r\n", 0, 0, DONE_, {250, 0, 0, 0, "2.1.0.1 x", 1, 0});
  PARSE("250  2.1.0 x\r\n", 0, 0, DONE_, {250, 0, 0, 0, " 2.1.0 x", 1, 0});
  /* The first line decides whether the reply uses enhanced codes; then
   * each line's code is stripped. */
  PARSE("250-2.0.0 a\r\n250 b\r\n", 0, 0, DONE_, {250, 2, 0, 0, "a\nb", 2, 0});
  PARSE("250-a\r\n250 2.0.0 b\r\n", 0, 0, DONE_, {250, 0, 0, 0, "a\n2.0.0 b", 2, 0});
  PARSE("250-2.0.0 a\r\n250 5.0.0 b\r\n", 0, 0, DONE_, {250, 2, 0, 0, "a\n5.0.0 b", 2, 0});
  PARSE("250-2.0.0\r\n250 2.0.0 b\r\n", 0, 0, DONE_, {250, 2, 0, 0, "\nb", 2, 0});
}

static void test_pipelined_replies(void **state) {
  (void)state;
  /* Feed stops after each reply so replies match commands one by one. */
  PARSE("250 ok\r\n354 go ahead\r\n", 0, 0, DONE_,
        {250, 0, 0, 0, "ok", 1, 8}, {354, 0, 0, 0, "go ahead", 1, 0});
  PARSE("250 2.1.0 a\r\n250-2.1.5 b\r\n250 2.1.5 c\r\n55", 0, 0, LSMTP_INCOMPLETE,
        {250, 2, 1, 0, "a", 1, 13}, {250, 2, 1, 5, "b\nc", 2, 39});
  /* A good reply is handed out before a bad one is seen. */
  PARSE("250 ok\r\n999 bad\r\n", 0, 0, LSMTP_ERR_BAD_REPLY, {250, 0, 0, 0, "ok", 1, 8});
  /* Each reply may carry its own code. */
  PARSE("250-a\r\n250 b\r\n550 c\r\n", 0, 0, DONE_, {250, 0, 0, 0, "a\nb", 2, 14},
        {550, 0, 0, 0, "c", 1, 0});
}

static void test_bad_codes_and_separators(void **state) {
  (void)state;
  PARSE_FAILS("099 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("199 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("600 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("260 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("2x0 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("25x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("25\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS(" 250 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("2500 x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("250_x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("250\tx\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("250x\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("250-a\r\n250_b\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  /* All lines of a reply carry the same code. */
  PARSE_FAILS("250-a\r\n251 b\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
  PARSE_FAILS("250-a\r\n550-b\r\n550 c\r\n", 0, 0, LSMTP_ERR_BAD_REPLY);
}

static void test_nul_and_bare_eol(void **state) {
  (void)state;
  PARSE_FAILS("250 a\0b\r\n", 0, 0, LSMTP_ERR_NUL);
  PARSE_FAILS("2\0" "0 x\r\n", 0, 0, LSMTP_ERR_NUL);
  PARSE_FAILS("250 a\nb\r\n", 0, 0, LSMTP_ERR_BARE_EOL);
  PARSE_FAILS("250 a\rb\r\n", 0, 0, LSMTP_ERR_BARE_EOL);
  /* A bare-LF "reply" followed by a real one is one bad line, not two
   * replies: this is how a client would be desynchronised. */
  PARSE_FAILS("250 ok\n250 ok\r\n", 0, 0, LSMTP_ERR_BARE_EOL);
  PARSE_FAILS("250 ok\r\r\n", 0, 0, LSMTP_ERR_BARE_EOL);
  /* A bare LF alone does not end anything: still waiting. */
  PARSE_FAILS("250 ok\n", 0, 0, LSMTP_INCOMPLETE);
}

static void test_bounds(void **state) {
  (void)state;
  /* max_line counts the CRLF: 16 fits, 17 does not. */
  PARSE("250 0123456789\r\n", 16, 0, DONE_, {250, 0, 0, 0, "0123456789", 1, 0});
  PARSE_FAILS("250 0123456789a\r\n", 16, 0, LSMTP_ERR_TOO_LONG);
  PARSE_FAILS("250 0123456789ab\r\n", 16, 0, LSMTP_ERR_TOO_LONG);
  PARSE_FAILS("250-ok\r\n250 0123456789ab\r\n", 16, 0, LSMTP_ERR_TOO_LONG);
  /* Reported without waiting for a CRLF that may never come. */
  PARSE_FAILS("250 0123456789abcdefghij", 16, 0, LSMTP_ERR_TOO_LONG);
  /* max_lines: three lines fit, a fourth does not. */
  PARSE("250-a\r\n250-b\r\n250 c\r\n", 0, 3, DONE_, {250, 0, 0, 0, "a\nb\nc", 3, 0});
  PARSE_FAILS("250-a\r\n250-b\r\n250-c\r\n250 d\r\n", 0, 3, LSMTP_ERR_TOO_LONG);
  /* The count is per reply. */
  PARSE("250-a\r\n250 b\r\n250-c\r\n250 d\r\n", 0, 2, DONE_,
        {250, 0, 0, 0, "a\nb", 2, 14}, {250, 0, 0, 0, "c\nd", 2, 0});
}

static void test_default_bounds(void **state) {
  (void)state;
  lsmtp_reply_parser *p;
  size_t used;
  /* A line of exactly the default bound fits, one byte more does not. */
  for (size_t extra = 0; extra <= 1; extra++) {
    size_t len = LSMTP_REPLY_DEFAULT_MAX_LINE + extra;
    char *line = malloc(len);
    assert_non_null(line);
    memset(line, 'x', len);
    memcpy(line, "250 ", 4);
    memcpy(line + len - 2, "\r\n", 2);
    assert_int_equal(lsmtp_reply_parser_new(&p, NULL, 0, 0), LSMTP_OK);
    int rc = lsmtp_reply_parser_feed(p, line, len, &used);
    if (extra) {
      assert_int_equal(rc, LSMTP_ERR_TOO_LONG);
    } else {
      assert_int_equal(rc, LSMTP_DONE);
      assert_int_equal(used, len);
      assert_int_equal(lsmtp_reply_parser_get(p)->text_len, len - 6);
    }
    lsmtp_reply_parser_del(p);
    free(line);
  }

  /* LSMTP_REPLY_DEFAULT_MAX_LINES lines fit, one more does not. */
  for (int extra = 0; extra <= 1; extra++) {
    assert_int_equal(lsmtp_reply_parser_new(&p, NULL, 0, 0), LSMTP_OK);
    int rc = LSMTP_INCOMPLETE;
    size_t n = LSMTP_REPLY_DEFAULT_MAX_LINES + (size_t)extra;
    for (size_t i = 1; i <= n; i++) {
      const char *l = i < n ? "250-x\r\n" : "250 x\r\n";
      rc = lsmtp_reply_parser_feed(p, l, 7, &used);
      if (i < n && rc != LSMTP_INCOMPLETE) break;
    }
    assert_int_equal(rc, extra ? LSMTP_ERR_TOO_LONG : LSMTP_DONE);
    lsmtp_reply_parser_del(p);
  }
  lsmtp_reply_parser_del(NULL);
}

static void test_get_lifetime(void **state) {
  (void)state;
  lsmtp_reply_parser *p;
  size_t used;
  assert_int_equal(lsmtp_reply_parser_new(&p, NULL, 0, 0), LSMTP_OK);
  assert_null(lsmtp_reply_parser_get(NULL));
  assert_int_equal(lsmtp_reply_parser_new(NULL, NULL, 0, 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_reply_parser_feed(NULL, "250 a\r\n", 7, &used), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_reply_parser_feed(p, NULL, 7, &used), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_reply_parser_feed(p, "250 a\r\n", 7, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_reply_parser_feed(p, "250 a\r\n", 7, &used), LSMTP_DONE);
  assert_string_equal(lsmtp_reply_parser_get(p)->text, "a");
  /* An empty feed starts over: the old reply is gone. */
  assert_int_equal(lsmtp_reply_parser_feed(p, NULL, 0, &used), LSMTP_INCOMPLETE);
  assert_int_equal(used, 0);
  assert_null(lsmtp_reply_parser_get(p));
  assert_int_equal(lsmtp_reply_parser_feed(p, "451 b\r\n", 7, &used), LSMTP_DONE);
  const lsmtp_reply *r = lsmtp_reply_parser_get(p);
  assert_int_equal(r->code, 451);
  assert_string_equal(r->text, "b");
  assert_int_equal(r->lines, 1);
  lsmtp_reply_parser_del(p);
}

/* ---- lsmtp_enhanced_parse ---- */

static void test_enhanced_parse(void **state) {
  (void)state;
  lsmtp_enhanced e;
  size_t used = 0;
  assert_int_equal(lsmtp_enhanced_parse("2.1.0 Ok", 8, &e, &used), LSMTP_OK);
  assert_int_equal(used, 5);
  assert_int_equal(e.cls, 2);
  assert_int_equal(e.subject, 1);
  assert_int_equal(e.detail, 0);
  assert_int_equal(lsmtp_enhanced_parse("5.999.999", 9, &e, &used), LSMTP_OK);
  assert_int_equal(used, 9);
  assert_int_equal(e.subject, 999);
  assert_int_equal(e.detail, 999);
  /* len bounds the input, whatever follows in memory. */
  assert_int_equal(lsmtp_enhanced_parse("4.4.27", 5, &e, &used), LSMTP_OK);
  assert_int_equal(e.detail, 2);
  assert_int_equal(lsmtp_enhanced_parse("2.1.0", 4, &e, &used), LSMTP_ERR_SYNTAX);
  static const char *const bad[] = {"",        "2",       "2.1",    "2.1.",
                                    "3.1.0",   "1.1.0",   "2.1000.0", "2.0.1000",
                                    "2.1.0x",  "2.1.0.",  "2..1",   "x.1.0",
                                    "2-1-0",   " 2.1.0",  "2.a.0",  "22.1.0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(lsmtp_enhanced_parse(bad[i], strlen(bad[i]), &e, &used),
                     LSMTP_ERR_SYNTAX);
  assert_int_equal(lsmtp_enhanced_parse(NULL, 0, &e, &used), LSMTP_ERR_SYNTAX);
}

/* ---- lsmtp_reply_format ---- */

/* Format with room to spare, check the bytes, the return value and that
 * nothing past the NUL was touched; then parse the result back. */
static void format_is(int code, const char *enh, const char *text, size_t text_len,
                      const char *want) {
  char buf[512];
  memset(buf, '#', sizeof buf);
  size_t n = lsmtp_reply_format(buf, sizeof buf, code, enh, text, text_len);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(buf, want, n + 1);
  assert_int_equal(buf[n + 1], '#');

  /* What we write, we read back as exactly one reply. */
  lsmtp_reply_parser *p;
  size_t used;
  assert_int_equal(lsmtp_reply_parser_new(&p, NULL, 0, 0), LSMTP_OK);
  assert_int_equal(lsmtp_reply_parser_feed(p, buf, n, &used), LSMTP_DONE);
  assert_int_equal(used, n);
  assert_int_equal(lsmtp_reply_parser_get(p)->code, code);
  lsmtp_reply_parser_del(p);
}
#define FORMAT_IS(code, enh, text, want) \
  format_is(code, enh, text, sizeof(text) - 1, want)

static void test_format(void **state) {
  (void)state;
  FORMAT_IS(250, NULL, "ok", "250 ok\r\n");
  FORMAT_IS(250, "2.0.0", "ok", "250 2.0.0 ok\r\n");
  FORMAT_IS(250, "", "ok", "250 ok\r\n");
  FORMAT_IS(250, NULL, "", "250\r\n");
  FORMAT_IS(421, "4.4.2", "", "421 4.4.2\r\n");
  format_is(250, NULL, NULL, 0, "250\r\n");
  format_is(250, "2.0.0", NULL, 5, "250 2.0.0\r\n");
  FORMAT_IS(250, NULL, "mx\nPIPELINING\nSIZE 10",
            "250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
  FORMAT_IS(550, "5.7.1", "no\nway",
            "550-5.7.1 no\r\n550 5.7.1 way\r\n");
  /* A trailing "\n" ends the text; it does not add an empty line. */
  FORMAT_IS(250, NULL, "a\nb\n", "250-a\r\n250 b\r\n");
  FORMAT_IS(250, NULL, "\n", "250\r\n");
  FORMAT_IS(250, "2.0.0", "\n", "250 2.0.0\r\n");
  /* Empty lines inside the text stay. */
  FORMAT_IS(250, NULL, "a\n\nb", "250-a\r\n250-\r\n250 b\r\n");
  FORMAT_IS(250, "2.0.0", "a\n\nb", "250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 b\r\n");
  FORMAT_IS(250, NULL, "a\n\n", "250-a\r\n250\r\n");
  FORMAT_IS(250, NULL, " lead", "250  lead\r\n");
}

static void test_format_cannot_inject(void **state) {
  (void)state;
  /* A CR cannot end a line; the LF only starts a continuation of ours. */
  FORMAT_IS(250, NULL, "ok\r\n250 fake", "250-ok \r\n250 250 fake\r\n");
  FORMAT_IS(550, "5.0.0", "no\r\n250 2.0.0 ok\r\n",
            "550-5.0.0 no \r\n550 5.0.0 250 2.0.0 ok \r\n");
  FORMAT_IS(250, NULL, "a\rb", "250 a b\r\n");
  FORMAT_IS(250, NULL, "a\0b", "250 a b\r\n");
  FORMAT_IS(250, NULL, "tab\there", "250 tab here\r\n");
  FORMAT_IS(250, NULL, "\x01\x1f\x7f", "250    \r\n");
  /* 8-bit text (SMTPUTF8) is left alone. */
  FORMAT_IS(250, NULL, "h\xc3\xa9", "250 h\xc3\xa9\r\n");
  /* The enhanced code is checked, never copied blindly. */
  char buf[64];
  assert_int_equal(lsmtp_reply_format(buf, sizeof buf, 250, "2.0.0\r\n250 x", "ok", 2), 0);
  assert_int_equal(lsmtp_reply_format(buf, sizeof buf, 250, "2.0.0 ", "ok", 2), 0);
  assert_int_equal(lsmtp_reply_format(buf, sizeof buf, 250, "2.0", "ok", 2), 0);
  assert_int_equal(lsmtp_reply_format(buf, sizeof buf, 250, "5.0.0", "ok", 2), 0);
  assert_int_equal(lsmtp_reply_format(buf, sizeof buf, 354, "2.0.0", "go", 2), 0);
  /* Codes outside RFC 5321's grammar are refused. */
  static const int bad_codes[] = {0, -250, 199, 600, 260, 599, 1000, 99};
  for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++)
    assert_int_equal(lsmtp_reply_format(buf, sizeof buf, bad_codes[i], NULL, "x", 1), 0);
  assert_int_equal(lsmtp_reply_format(buf, sizeof buf, 354, NULL, "go", 2), 8);
}

static void test_format_truncation(void **state) {
  (void)state;
  const char *full = "250-2.0.0 a\r\n250 2.0.0 b\r\n";
  size_t need = strlen(full);
  assert_int_equal(lsmtp_reply_format(NULL, 0, 250, "2.0.0", "a\nb", 3), need);
  for (size_t cap = 1; cap <= need + 2; cap++) {
    char buf[64];
    memset(buf, '#', sizeof buf);
    assert_int_equal(lsmtp_reply_format(buf, cap, 250, "2.0.0", "a\nb", 3), need);
    size_t kept = cap - 1 < need ? cap - 1 : need; /* as snprintf */
    assert_memory_equal(buf, full, kept);
    assert_int_equal(buf[kept], '\0');
    for (size_t i = kept + 1; i < sizeof buf; i++) assert_int_equal(buf[i], '#');
  }
}

/* ---- allocation failure ---- */

/* A long multi-line reply split so that lines are buffered and the text
 * grows, then a pipelined second reply. Returns the first error or
 * LSMTP_OK when both replies came through. */
static int alloc_scenario(const lsmtp_allocator *a) {
  char in[1200];
  size_t len = 0;
  for (int i = 0; i < 3; i++) {
    memcpy(in + len, "250-", 4);
    memset(in + len + 4, 'a' + i, 300);
    memcpy(in + len + 304, "\r\n", 2);
    len += 306;
  }
  memcpy(in + len, "250 end\r\n451 4.3.0 later\r\n", 26);
  len += 26;

  lsmtp_reply_parser *p;
  int rc = lsmtp_reply_parser_new(&p, a, 0, 0);
  if (rc != LSMTP_OK) {
    assert_int_equal(rc, LSMTP_ERR_NOMEM);
    assert_null(p);
    return rc;
  }
  size_t off = 0, replies = 0;
  while (off < len) {
    size_t used, chunk = len - off < 100 ? len - off : 100;
    rc = lsmtp_reply_parser_feed(p, in + off, chunk, &used);
    off += used;
    if (rc == LSMTP_DONE) {
      const lsmtp_reply *r = lsmtp_reply_parser_get(p);
      if (replies++ == 0) {
        assert_int_equal(r->code, 250);
        assert_int_equal(r->lines, 4);
        assert_int_equal(r->text_len, 3 * 301 + 3);
      } else {
        assert_int_equal(r->code, 451);
        assert_string_equal(r->text, "later");
      }
    } else if (rc != LSMTP_INCOMPLETE) {
      assert_int_equal(rc, LSMTP_ERR_NOMEM);
      assert_int_equal(lsmtp_reply_parser_feed(p, "250 x\r\n", 7, &used), LSMTP_ERR_FATAL);
      break;
    }
  }
  lsmtp_reply_parser_del(p);
  if (rc == LSMTP_DONE) assert_int_equal(replies, 2);
  return rc == LSMTP_DONE ? LSMTP_OK : rc;
}

static void test_allocation_failure(void **state) {
  (void)state;
  long ok_at = failalloc_walk(alloc_scenario, 199);
  assert_true(ok_at > 3); /* new, line buffer, text buffer and its growth failed */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_line),
      cmocka_unit_test(test_multi_line),
      cmocka_unit_test(test_enhanced_codes),
      cmocka_unit_test(test_pipelined_replies),
      cmocka_unit_test(test_bad_codes_and_separators),
      cmocka_unit_test(test_nul_and_bare_eol),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_default_bounds),
      cmocka_unit_test(test_get_lifetime),
      cmocka_unit_test(test_enhanced_parse),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_cannot_inject),
      cmocka_unit_test(test_format_truncation),
      cmocka_unit_test(test_allocation_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
