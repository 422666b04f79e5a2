/* The address grammar (lsmtp_path_parse, lsmtp_domain_check,
 * lsmtp_local_unquote) and the MAIL/RCPT parameter parsers. Every path case
 * of address_cases.h is parsed from an exactly sized heap copy (so ASan
 * sees any over-read), as a whole, as every proper prefix, and inside a
 * MAIL and a RCPT argument with parameters after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "address_cases.h"

/* ---- helpers ---- */

/* A heap copy of exactly len bytes: reading one past it is an ASan error. */
static char *exact_copy(const char *s, size_t len) {
  char *p = malloc(len ? len : 1);
  assert_non_null(p);
  if (len) memcpy(p, s, len);
  return p;
}

/* The input in C escapes, for failure messages. */
static const char *show(const char *s, size_t len) {
  static char buf[1200];
  size_t o = 0;
  for (size_t i = 0; i < len && o + 8 < sizeof buf; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 32 && c < 127 && c != '\\') {
      buf[o++] = (char)c;
    } else {
      o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", c);
    }
  }
  buf[o] = '\0';
  return buf;
}

static char *concat3(const char *a, const char *b, size_t blen, const char *c,
                     size_t *out_len) {
  size_t al = strlen(a), cl = strlen(c);
  *out_len = al + blen + cl;
  char *p = malloc(*out_len ? *out_len : 1);
  assert_non_null(p);
  memcpy(p, a, al);
  if (blen) memcpy(p + al, b, blen);
  memcpy(p + al + blen, c, cl);
  return p;
}

static int slice_is(const char *p, size_t n, const char *want) {
  return n == strlen(want) && (n == 0 || memcmp(p, want, n) == 0);
}

static int inside(const char *p, size_t n, const char *base, size_t len) {
  return p != NULL && p >= base && (size_t)(p - base) <= len &&
         n <= len - (size_t)(p - base);
}

/* What a successful parse of case c must have produced; base/len is the
 * buffer it was parsed from. */
static void check_path(size_t idx, const address_case *c, const lsmtp_path *p,
                       const char *base, size_t len) {
  int is_null = c->len == 2 && memcmp(c->in, "<>", 2) == 0;
  int is_pm = !is_null && c->kind == LSMTP_DOMAIN_NONE;
  if (!slice_is(p->local, p->local_len, c->local) ||
      !slice_is(p->domain, p->domain_len, c->domain) || p->domain_kind != c->kind ||
      p->is_quoted != !!(c->bits & B_QUOTED) || p->had_route != !!(c->bits & B_ROUTE) ||
      p->has_utf8 != !!(c->bits & B_UTF8) || p->is_null != is_null ||
      p->is_postmaster != is_pm)
    fail_msg("case %zu %s: wrong result (local %zu, domain %zu, kind %d)", idx,
             show(c->in, c->len), p->local_len, p->domain_len, (int)p->domain_kind);
  assert_true(inside(p->mailbox, p->mailbox_len, base, len));
  assert_true(inside(p->local, p->local_len, base, len));
  assert_true(inside(p->domain, p->domain_len, base, len));
  assert_ptr_equal(p->mailbox, p->local);
  if (is_null) {
    assert_int_equal(p->mailbox_len, 0);
  } else if (is_pm) {
    assert_int_equal(p->mailbox_len, p->local_len);
  } else {
    assert_int_equal(p->mailbox_len, p->local_len + 1 + p->domain_len);
    assert_ptr_equal(p->domain, p->local + p->local_len + 1);
  }
  assert_true(p->local_len <= LSMTP_MAX_LOCAL_PART);
  assert_true(p->domain_len <= LSMTP_MAX_DOMAIN);
  assert_true(p->mailbox_len + 2 <= LSMTP_MAX_PATH);
}

/* Whole-input status: a path followed by anything is a syntax error. */
static int parse_whole(const char *s, size_t len, unsigned flags, int as_rcpt,
                       lsmtp_path *p) {
  size_t used = 99999;
  int rc = lsmtp_path_parse(s, len, flags, !as_rcpt, as_rcpt, p, &used);
  if (rc == LSMTP_OK) {
    assert_true(used <= len);
    if (used != len) return LSMTP_ERR_SYNTAX;
  } else {
    assert_int_equal(used, 0);
  }
  return rc;
}

/* ---- the case table ---- */

static void test_path_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < ADDRESS_CASE_COUNT; i++) {
    const address_case *c = &address_cases[i];
    for (int as_rcpt = 0; as_rcpt <= 1; as_rcpt++) {
      int want = as_rcpt ? c->st_rcpt : c->st_mail;
      char *buf = exact_copy(c->in, c->len);
      lsmtp_path p;
      int rc = parse_whole(buf, c->len, c->flags, as_rcpt, &p);
      if (rc != want)
        fail_msg("case %zu %s (%s): got %s, want %s", i, show(c->in, c->len),
                 as_rcpt ? "rcpt" : "mail", lsmtp_status_name(rc), lsmtp_status_name(want));
      if (rc == LSMTP_OK) check_path(i, c, &p, buf, c->len);
      free(buf);
    }
  }
}

/* Every proper prefix, each in its own exact buffer. A bracketed path is
 * only complete at its ">", so no proper prefix of a valid one may pass. */
static void test_path_prefixes(void **state) {
  (void)state;
  for (size_t i = 0; i < ADDRESS_CASE_COUNT; i++) {
    const address_case *c = &address_cases[i];
    int bracketed = c->len > 0 && c->in[0] == '<';
    for (size_t k = 0; k < c->len; k++) {
      for (int as_rcpt = 0; as_rcpt <= 1; as_rcpt++) {
        char *buf = exact_copy(c->in, k);
        lsmtp_path p;
        size_t used = 0;
        int rc = lsmtp_path_parse(buf, k, c->flags, !as_rcpt, as_rcpt, &p, &used);
        if (rc == LSMTP_OK) {
          assert_true(used <= k);
          assert_true(inside(p.mailbox, p.mailbox_len, buf, k));
          if (bracketed && (as_rcpt ? c->st_rcpt : c->st_mail) == LSMTP_OK)
            fail_msg("case %zu %s: prefix of %zu accepted", i, show(c->in, c->len), k);
        }
        free(buf);
      }
    }
  }
}

/* The same cases inside "FROM:<...> SIZE=100" and "TO:<...> NOTIFY=NEVER",
 * and with nothing after the path. */
static void test_path_cases_in_commands(void **state) {
  (void)state;
  for (size_t i = 0; i < ADDRESS_CASE_COUNT; i++) {
    const address_case *c = &address_cases[i];
    for (int with_params = 0; with_params <= 1; with_params++) {
      size_t len;
      char *arg = concat3("FROM:", c->in, c->len, with_params ? " SIZE=100" : "", &len);
      lsmtp_path p;
      lsmtp_mail_params mp;
      int rc = lsmtp_mail_parse(arg, len, c->flags, &p, &mp);
      if (rc != c->st_mail)
        fail_msg("case %zu MAIL %s: got %s, want %s", i, show(arg, len),
                 lsmtp_status_name(rc), lsmtp_status_name(c->st_mail));
      if (rc == LSMTP_OK) {
        check_path(i, c, &p, arg, len);
        assert_int_equal(mp.has_size, with_params);
        assert_int_equal(mp.size, with_params ? 100 : 0);
      }
      free(arg);

      arg = concat3("TO:", c->in, c->len, with_params ? " NOTIFY=NEVER" : "", &len);
      lsmtp_rcpt_params rp;
      rc = lsmtp_rcpt_parse(arg, len, c->flags, &p, &rp);
      if (rc != c->st_rcpt)
        fail_msg("case %zu RCPT %s: got %s, want %s", i, show(arg, len),
                 lsmtp_status_name(rc), lsmtp_status_name(c->st_rcpt));
      if (rc == LSMTP_OK) {
        check_path(i, c, &p, arg, len);
        assert_int_equal(rp.notify, with_params ? LSMTP_NOTIFY_NEVER : 0);
      }
      free(arg);
    }
  }
}

/* The domain of every accepted path passes lsmtp_domain_check alone. */
static void test_path_domains_check_alone(void **state) {
  (void)state;
  for (size_t i = 0; i < ADDRESS_CASE_COUNT; i++) {
    const address_case *c = &address_cases[i];
    if (c->kind == LSMTP_DOMAIN_NONE || (c->st_mail != LSMTP_OK && c->st_rcpt != LSMTP_OK))
      continue;
    size_t dlen = strlen(c->domain);
    char *buf = exact_copy(c->domain, dlen);
    lsmtp_domain_kind kind = LSMTP_DOMAIN_NONE;
    int rc = lsmtp_domain_check(buf, dlen, c->flags, &kind);
    if (rc != LSMTP_OK || kind != c->kind)
      fail_msg("case %zu domain %s: %s kind %d", i, show(c->domain, dlen),
               lsmtp_status_name(rc), (int)kind);
    free(buf);
  }
}

static void test_domain_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < DOMAIN_CASE_COUNT; i++) {
    const domain_case *c = &domain_cases[i];
    char *buf = exact_copy(c->in, c->len);
    lsmtp_domain_kind kind = (lsmtp_domain_kind)99;
    int rc = lsmtp_domain_check(buf, c->len, c->flags, &kind);
    if (rc != c->status)
      fail_msg("domain %zu %s: got %s, want %s", i, show(c->in, c->len),
               lsmtp_status_name(rc), lsmtp_status_name(c->status));
    assert_int_equal(kind, rc == LSMTP_OK ? c->kind : LSMTP_DOMAIN_NONE);
    assert_int_equal(lsmtp_domain_check(buf, c->len, c->flags, NULL), c->status);
    free(buf);
  }
}

static void test_case_table_is_large(void **state) {
  (void)state;
  size_t ok = 0, bad = 0;
  for (size_t i = 0; i < ADDRESS_CASE_COUNT; i++) {
    if (address_cases[i].st_mail == LSMTP_OK || address_cases[i].st_rcpt == LSMTP_OK)
      ok++;
    else
      bad++;
  }
  assert_true(ok + bad >= 150);
  assert_true(ok >= 50);
  assert_true(bad >= 50);
}

/* ---- arguments the API rejects ---- */

static void test_invalid_arguments(void **state) {
  (void)state;
  lsmtp_path p;
  size_t used = 7;
  lsmtp_mail_params mp;
  lsmtp_rcpt_params rp;
  assert_int_equal(lsmtp_path_parse(NULL, 1, 0, 1, 1, &p, &used), LSMTP_ERR_INVALID);
  assert_int_equal(used, 0);
  assert_int_equal(lsmtp_path_parse("<a@b>", 5, 0, 1, 1, NULL, &used), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_path_parse(NULL, 0, 0, 1, 1, &p, &used), LSMTP_ERR_SYNTAX);
  assert_int_equal(lsmtp_path_parse("<a@b>", 5, 0, 1, 1, &p, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_domain_check(NULL, 1, 0, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_domain_check(NULL, 0, 0, NULL), LSMTP_ERR_SYNTAX);
  assert_int_equal(lsmtp_mail_parse(NULL, 1, 0, &p, &mp), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_mail_parse("FROM:<>", 7, 0, NULL, &mp), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_mail_parse("FROM:<>", 7, 0, &p, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_rcpt_parse(NULL, 1, 0, &p, &rp), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_rcpt_parse("TO:<a@b>", 8, 0, &p, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_mail_parse(NULL, 0, 0, &p, &mp), LSMTP_ERR_SYNTAX);
}

/* A failed parse leaves no stale slices behind. */
static void test_failure_clears_output(void **state) {
  (void)state;
  lsmtp_path p;
  memset(&p, 0xAB, sizeof p);
  size_t used = 5;
  assert_int_equal(lsmtp_path_parse("<a@b..c>", 8, 0, 1, 1, &p, &used), LSMTP_ERR_SYNTAX);
  assert_null(p.mailbox);
  assert_null(p.local);
  assert_null(p.domain);
  assert_int_equal(p.mailbox_len, 0);
  assert_int_equal(used, 0);
  lsmtp_mail_params mp;
  memset(&mp, 0xAB, sizeof mp);
  assert_int_equal(lsmtp_mail_parse("FROM:<a@b>x", 11, 0, &p, &mp), LSMTP_ERR_SYNTAX);
  assert_null(p.mailbox);
  assert_int_equal(mp.has_size, 0);
}

/* A path is a prefix parser: *used stops at ">" (or, bare, at the first
 * byte that cannot continue the mailbox). */
static void test_used_stops_at_path_end(void **state) {
  (void)state;
  lsmtp_path p;
  size_t used = 0;
  assert_int_equal(lsmtp_path_parse("<a@b> SIZE=1", 12, 0, 1, 0, &p, &used), LSMTP_OK);
  assert_int_equal(used, 5);
  assert_int_equal(lsmtp_path_parse("a@b.c SIZE=1", 12, LSMTP_ADDR_LENIENT_BRACKETS, 1, 0, &p, &used),
                   LSMTP_OK);
  assert_int_equal(used, 5);
  assert_true(slice_is(p.domain, p.domain_len, "b.c"));
  assert_int_equal(lsmtp_path_parse("<>x", 3, 0, 1, 0, &p, &used), LSMTP_OK);
  assert_int_equal(used, 2);
  assert_true(p.is_null);
  assert_int_equal(lsmtp_path_parse("postmaster x", 12, LSMTP_ADDR_LENIENT_BRACKETS, 0, 1, &p, &used),
                   LSMTP_OK);
  assert_int_equal(used, 10);
  assert_true(p.is_postmaster);
}

/* ---- lsmtp_local_unquote ---- */

static void unquote_is(const char *in, const char *want) {
  char out[128];
  memset(out, 'Z', sizeof out);
  size_t n = lsmtp_local_unquote(in, strlen(in), out, sizeof out);
  assert_int_equal(n, strlen(want));
  assert_string_equal(out, want);
  assert_int_equal(lsmtp_local_unquote(in, strlen(in), NULL, 0), strlen(want));
}

static void test_local_unquote(void **state) {
  (void)state;
  unquote_is("\"a b\"", "a b");
  unquote_is("\"a\\\"b\"", "a\"b");
  unquote_is("\"\\\\\"", "\\");
  unquote_is("\"Joe\\\\Blow\"", "Joe\\Blow");
  unquote_is("\"\\a\\b\\c\"", "abc");
  unquote_is("\"\"", "");
  unquote_is("abc", "abc");
  unquote_is("a\\b", "a\\b"); /* unquoted: copied as is */
  unquote_is("\"", "\"");
  unquote_is("", "");

  char out[4];
  memset(out, 'Z', sizeof out);
  assert_int_equal(lsmtp_local_unquote("\"abcdef\"", 8, out, sizeof out), 6);
  assert_string_equal(out, "abc"); /* truncated, NUL-terminated */
  memset(out, 'Z', sizeof out);
  assert_int_equal(lsmtp_local_unquote("abc", 3, out, 1), 3);
  assert_int_equal(out[0], '\0');
  assert_int_equal(out[1], 'Z');
  assert_int_equal(lsmtp_local_unquote("abc", 3, out, 0), 3);
  assert_int_equal(out[1], 'Z');

  /* Round trip from the parser. */
  lsmtp_path p;
  assert_int_equal(lsmtp_path_parse("<\"a\\\"b c\"@d>", 12, 0, 0, 0, &p, NULL), LSMTP_OK);
  char buf[16];
  assert_int_equal(lsmtp_local_unquote(p.local, p.local_len, buf, sizeof buf), 5);
  assert_string_equal(buf, "a\"b c");
}

/* ---- MAIL / RCPT parameters ---- */

typedef struct param_case {
  const char *arg;
  size_t len;
  unsigned flags;
  int status;
} param_case;

#define P(arg, fl, st) {arg, sizeof(arg) - 1, fl, st}
#define LS LSMTP_ADDR_LENIENT_SPACE
#define PARAM LSMTP_ERR_PARAM
#define DUP LSMTP_ERR_DUP_PARAM
#define ENVID100 "ENVID=" S50 S50
#define ENVID101 "ENVID=" S50 S50 "a"

static const param_case mail_cases[] = {
    P("FROM:<a@b>", 0, OK),
    P("from:<a@b>", 0, OK),
    P("FrOm:<a@b>", 0, OK),
    P("FROM:<>", 0, OK),
    P("FROM:<> SIZE=0", 0, OK),
    P("FROM: <a@b>", 0, SYN),
    P("FROM: <a@b>", LS, OK),
    P("FROM:   <a@b>", LS, OK),
    P("FROM: a@b", LS | BR, OK),
    P("FROM:a@b", 0, SYN),
    P("FROM:a@b SIZE=1", BR, OK),
    P("FROM <a@b>", 0, SYN),
    P("FROM:", 0, SYN),
    P("FROM", 0, SYN),
    P("", 0, SYN),
    P("FROMX:<a@b>", 0, SYN),
    P("TO:<a@b>", 0, SYN),
    P(" FROM:<a@b>", 0, SYN),
    P("FROM:<postmaster>", 0, SYN),
    P("FROM:<a@b>x", 0, SYN),
    P("FROM:<a@b>\tSIZE=1", 0, SYN),
    P("FROM:<a@b> ", 0, OK),                /* trailing space: harmless */
    P("FROM:<a@b>   ", 0, OK),
    P("FROM:<a@b>  SIZE=1   BODY=7BIT", 0, OK),
    /* SIZE */
    P("FROM:<a@b> SIZE=0", 0, OK),
    P("FROM:<a@b> size=10", 0, OK),
    P("FROM:<a@b> SIZE=18446744073709551615", 0, OK),
    P("FROM:<a@b> SIZE=18446744073709551616", 0, PARAM),
    P("FROM:<a@b> SIZE=99999999999999999999", 0, PARAM),
    P("FROM:<a@b> SIZE=00000000000000000001", 0, OK),
    P("FROM:<a@b> SIZE=000000000000000000001", 0, PARAM),
    P("FROM:<a@b> SIZE=", 0, SYN),
    P("FROM:<a@b> SIZE= 1", 0, SYN),
    P("FROM:<a@b> SIZE", 0, PARAM),
    P("FROM:<a@b> SIZE=-1", 0, PARAM),
    P("FROM:<a@b> SIZE=+1", 0, PARAM),
    P("FROM:<a@b> SIZE=1k", 0, PARAM),
    P("FROM:<a@b> SIZE=0x10", 0, PARAM),
    P("FROM:<a@b> SIZE=1 SIZE=2", 0, DUP),
    P("FROM:<a@b> SIZE=1 size=1", 0, DUP),
    P("FROM:<a@b> SIZE=1 SIZE=x", 0, DUP),
    /* BODY */
    P("FROM:<a@b> BODY=7BIT", 0, OK),
    P("FROM:<a@b> BODY=8BITMIME", 0, OK),
    P("FROM:<a@b> BODY=BINARYMIME", 0, OK),
    P("FROM:<a@b> body=8bitmime", 0, OK),
    P("FROM:<a@b> BODY=8BIT", 0, PARAM),
    P("FROM:<a@b> BODY=8BITMIMEX", 0, PARAM),
    P("FROM:<a@b> BODY", 0, PARAM),
    P("FROM:<a@b> BODY=7BIT BODY=7BIT", 0, DUP),
    /* SMTPUTF8 */
    P("FROM:<a@b> SMTPUTF8", 0, OK),
    P("FROM:<a@b> smtputf8", 0, OK),
    P("FROM:<a@b> SMTPUTF8=YES", 0, PARAM),
    P("FROM:<a@b> SMTPUTF8 SMTPUTF8", 0, DUP),
    /* RET */
    P("FROM:<a@b> RET=FULL", 0, OK),
    P("FROM:<a@b> RET=HDRS", 0, OK),
    P("FROM:<a@b> ret=hdrs", 0, OK),
    P("FROM:<a@b> RET=NONE", 0, PARAM),
    P("FROM:<a@b> RET", 0, PARAM),
    P("FROM:<a@b> RET=FULL RET=HDRS", 0, DUP),
    /* ENVID */
    P("FROM:<a@b> ENVID=QQ314159", 0, OK),
    P("FROM:<a@b> ENVID=a+2Bb", 0, OK),
    P("FROM:<a@b> ENVID=a+2", 0, PARAM),
    P("FROM:<a@b> ENVID=a+ZZ", 0, PARAM),
    P("FROM:<a@b> ENVID=a+2b", 0, PARAM), /* xtext hex is upper case */
    P("FROM:<a@b> " ENVID100, 0, OK),
    P("FROM:<a@b> " ENVID101, 0, PARAM),
    P("FROM:<a@b> ENVID", 0, PARAM),
    P("FROM:<a@b> ENVID=x ENVID=y", 0, DUP),
    P("FROM:<a@b> ENVID=\xc3\xa4", 0, UTF),
    P("FROM:<a@b> ENVID=\xc3\xa4", U8, PARAM),
    P("FROM:<a@b> ENVID=\xc0\xaf", U8, UTF),
    /* AUTH */
    P("FROM:<a@b> AUTH=<>", 0, OK),
    P("FROM:<a@b> AUTH=e+3Dmc2@example.com", 0, OK),
    P("FROM:<a@b> AUTH=a+ZZ", 0, PARAM),
    P("FROM:<a@b> AUTH", 0, PARAM),
    P("FROM:<a@b> AUTH=<> AUTH=<>", 0, DUP),
    /* REQUIRETLS */
    P("FROM:<a@b> REQUIRETLS", 0, OK),
    P("FROM:<a@b> REQUIRETLS=1", 0, PARAM),
    P("FROM:<a@b> REQUIRETLS REQUIRETLS", 0, DUP),
    /* unknown keywords and esmtp-param syntax */
    P("FROM:<a@b> FOO=bar", 0, PARAM),
    P("FROM:<a@b> X-FOO", 0, PARAM),
    P("FROM:<a@b> 1X", 0, PARAM),
    P("FROM:<a@b> NOTIFY=NEVER", 0, PARAM), /* RCPT's */
    P("FROM:<a@b> =x", 0, SYN),
    P("FROM:<a@b> -A", 0, SYN),
    P("FROM:<a@b> A_B", 0, SYN),
    P("FROM:<a@b> SIZE=1=2", 0, SYN),
    P("FROM:<a@b> SIZE==1", 0, SYN),
    P("FROM:<a@b> SIZE=1\t", 0, SYN),
    P("FROM:<a@b> SIZE=1\0", 0, SYN),
    P("FROM:<a@b> SIZE=1\r\n", 0, SYN),
    P("FROM:<a@b> ENVID=\x7f", 0, SYN),
    P("FROM:<a@b> X=\xc3\xa4", U8, PARAM),
    P("FROM:<a@b> \xc3\xa4", U8, SYN),
    /* first problem wins, left to right */
    P("FROM:<a@b> FOO SIZE=1 SIZE=2", 0, PARAM),
    P("FROM:<a@b> SIZE=1 SIZE=2 FOO", 0, DUP),
    P("FROM:<a@b> SIZE=x =", 0, PARAM),
    P("FROM:<a@b> = SIZE=x", 0, SYN),
    /* path errors come through */
    P("FROM:<a@b..c> SIZE=1", 0, SYN),
    P("FROM:<\xc3\xa4@b> SMTPUTF8", 0, UTF),
    P("FROM:<\xc3\xa4@b> SMTPUTF8", U8, OK),
    P("FROM:<" L64 "a@b> SIZE=1", 0, LONG),
};

static const param_case rcpt_cases[] = {
    P("TO:<a@b>", 0, OK),
    P("to:<a@b>", 0, OK),
    P("To:<postmaster>", 0, OK),
    P("TO:<>", 0, SYN),
    P("TO: <a@b>", 0, SYN),
    P("TO: <a@b>", LS, OK),
    P("FROM:<a@b>", 0, SYN),
    P("TO:", 0, SYN),
    P("TO:<a@b> ", 0, OK),
    /* NOTIFY */
    P("TO:<a@b> NOTIFY=NEVER", 0, OK),
    P("TO:<a@b> NOTIFY=SUCCESS", 0, OK),
    P("TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY", 0, OK),
    P("TO:<a@b> notify=delay,success", 0, OK),
    P("TO:<a@b> NOTIFY=SUCCESS,SUCCESS", 0, OK),
    P("TO:<a@b> NOTIFY=NEVER,SUCCESS", 0, PARAM),
    P("TO:<a@b> NOTIFY=SUCCESS,NEVER", 0, PARAM),
    P("TO:<a@b> NOTIFY=NEVER,NEVER", 0, OK),
    P("TO:<a@b> NOTIFY=", 0, SYN),
    P("TO:<a@b> NOTIFY", 0, PARAM),
    P("TO:<a@b> NOTIFY=SUCCESS,", 0, PARAM),
    P("TO:<a@b> NOTIFY=,SUCCESS", 0, PARAM),
    P("TO:<a@b> NOTIFY=SUCCESS,,DELAY", 0, PARAM),
    P("TO:<a@b> NOTIFY=BOGUS", 0, PARAM),
    P("TO:<a@b> NOTIFY=SUCCESSX", 0, PARAM),
    P("TO:<a@b> NOTIFY=SUCCES", 0, PARAM),
    P("TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", 0, DUP),
    /* ORCPT */
    P("TO:<a@b> ORCPT=rfc822;a@b", 0, OK),
    P("TO:<a@b> ORCPT=RFC822;a+40b", 0, OK),
    P("TO:<a@b> ORCPT=x-type;z", 0, OK),
    P("TO:<a@b> ORCPT=rfc822;", 0, PARAM),
    P("TO:<a@b> ORCPT=;a@b", 0, PARAM),
    P("TO:<a@b> ORCPT=rfc822", 0, PARAM),
    P("TO:<a@b> ORCPT", 0, PARAM),
    P("TO:<a@b> ORCPT=rfc822;a+4", 0, PARAM),
    P("TO:<a@b> ORCPT=r(c;a", 0, PARAM),
    P("TO:<a@b> ORCPT=rfc 822;a", 0, PARAM), /* "rfc" has no ";" */
    P("TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b", 0, DUP),
    P("TO:<a@b> ORCPT=rfc822;\xc3\xa4", U8, PARAM),
    P("TO:<a@b> ORCPT=utf-8;\xc3\xa4@b", U8, OK),
    P("TO:<a@b> ORCPT=utf-8;\xc3\xa4@b", 0, UTF),
    P("TO:<a@b> ORCPT=UTF-8;a\\x{E4}@b", 0, OK),
    P("TO:<a@b> ORCPT=utf-8;a\\x{e4}@b", 0, OK),
    P("TO:<a@b> ORCPT=utf-8;a\\x{20}b", 0, OK),
    P("TO:<a@b> ORCPT=utf-8;a\\x{2B}b", 0, OK),
    P("TO:<a@b> ORCPT=utf-8;a\\x{1F600}", 0, OK),
    P("TO:<a@b> ORCPT=utf-8;a\\x{10FFFF}", 0, OK),
    P("TO:<a@b> ORCPT=utf-8;a\\x{41}", 0, PARAM),   /* "A" is a QCHAR */
    P("TO:<a@b> ORCPT=utf-8;a+40b", 0, PARAM),      /* not QCHAR */
    P("TO:<a@b> ORCPT=utf-8;a\\x{D800}", 0, PARAM),
    P("TO:<a@b> ORCPT=utf-8;a\\x{110000}", 0, PARAM),
    P("TO:<a@b> ORCPT=utf-8;a\\x{00E4}", 0, PARAM),
    P("TO:<a@b> ORCPT=utf-8;a\\x{E}", 0, PARAM),
    P("TO:<a@b> ORCPT=utf-8;a\\x{E4", 0, PARAM),
    P("TO:<a@b> ORCPT=utf-8;a\\x{}", 0, PARAM),
    P("TO:<a@b> ORCPT=utf-8;a\\", 0, PARAM),
    P("TO:<a@b> ORCPT=utf-8;a\\y{E4}", 0, PARAM),
    /* others */
    P("TO:<a@b> SIZE=1", 0, PARAM),
    P("TO:<a@b> FOO", 0, PARAM),
    P("TO:<a@b> NOTIFY=FAILURE ORCPT=rfc822;x@y", 0, OK),
    P("TO:<a@b>x", 0, SYN),
};

static void run_param_cases(const param_case *cases, size_t n, int rcpt) {
  for (size_t i = 0; i < n; i++) {
    const param_case *c = &cases[i];
    char *buf = exact_copy(c->arg, c->len);
    lsmtp_path p;
    lsmtp_mail_params mp;
    lsmtp_rcpt_params rp;
    int rc = rcpt ? lsmtp_rcpt_parse(buf, c->len, c->flags, &p, &rp)
                  : lsmtp_mail_parse(buf, c->len, c->flags, &p, &mp);
    if (rc != c->status)
      fail_msg("%s case %zu %s: got %s, want %s", rcpt ? "rcpt" : "mail", i,
               show(c->arg, c->len), lsmtp_status_name(rc), lsmtp_status_name(c->status));
    if (rc == LSMTP_OK) {
      assert_true(inside(p.mailbox, p.mailbox_len, buf, c->len));
      if (!rcpt) {
        assert_true(mp.envid.ptr == NULL || inside(mp.envid.ptr, mp.envid.len, buf, c->len));
        assert_true(mp.auth.ptr == NULL || inside(mp.auth.ptr, mp.auth.len, buf, c->len));
      } else {
        assert_true(rp.orcpt_addr.ptr == NULL ||
                    inside(rp.orcpt_addr.ptr, rp.orcpt_addr.len, buf, c->len));
      }
    }
    free(buf);
  }
}

static void test_mail_param_cases(void **state) {
  (void)state;
  run_param_cases(mail_cases, sizeof mail_cases / sizeof mail_cases[0], 0);
}

static void test_rcpt_param_cases(void **state) {
  (void)state;
  run_param_cases(rcpt_cases, sizeof rcpt_cases / sizeof rcpt_cases[0], 1);
}

static int mail(const char *arg, unsigned flags, lsmtp_path *p, lsmtp_mail_params *mp) {
  return lsmtp_mail_parse(arg, strlen(arg), flags, p, mp);
}

static int rcpt(const char *arg, unsigned flags, lsmtp_path *p, lsmtp_rcpt_params *rp) {
  return lsmtp_rcpt_parse(arg, strlen(arg), flags, p, rp);
}

static void test_mail_param_values(void **state) {
  (void)state;
  lsmtp_path p;
  lsmtp_mail_params mp;
  assert_int_equal(mail("FROM:<a@b> SIZE=1000 BODY=BINARYMIME SMTPUTF8 RET=HDRS "
                        "ENVID=QQ+2B1 AUTH=<> REQUIRETLS",
                        0, &p, &mp),
                   LSMTP_OK);
  assert_true(slice_is(p.mailbox, p.mailbox_len, "a@b"));
  assert_int_equal(mp.has_size, 1);
  assert_int_equal(mp.size, 1000);
  assert_int_equal(mp.body, LSMTP_BODY_BINARYMIME);
  assert_int_equal(mp.smtputf8, 1);
  assert_int_equal(mp.ret, LSMTP_RET_HDRS);
  assert_true(slice_is(mp.envid.ptr, mp.envid.len, "QQ+2B1"));
  assert_true(slice_is(mp.auth.ptr, mp.auth.len, "<>"));
  assert_int_equal(mp.requiretls, 1);

  assert_int_equal(mail("FROM:<a@b>", 0, &p, &mp), LSMTP_OK);
  assert_int_equal(mp.has_size, 0);
  assert_int_equal(mp.body, LSMTP_BODY_NONE);
  assert_int_equal(mp.ret, LSMTP_RET_NONE);
  assert_null(mp.envid.ptr);
  assert_null(mp.auth.ptr);
  assert_int_equal(mp.smtputf8, 0);
  assert_int_equal(mp.requiretls, 0);

  assert_int_equal(mail("FROM:<> SIZE=18446744073709551615 BODY=8bitmime RET=full", 0, &p, &mp),
                   LSMTP_OK);
  assert_true(p.is_null);
  assert_true(mp.size == UINT64_MAX);
  assert_int_equal(mp.body, LSMTP_BODY_8BITMIME);
  assert_int_equal(mp.ret, LSMTP_RET_FULL);
  assert_int_equal(mail("FROM:<a@b> BODY=7BIT", 0, &p, &mp), LSMTP_OK);
  assert_int_equal(mp.body, LSMTP_BODY_7BIT);
  assert_int_equal(mail("FROM:<a@b> SIZE=00000000000000000042", 0, &p, &mp), LSMTP_OK);
  assert_int_equal(mp.size, 42);
  assert_int_equal(mail("FROM:<a@b> AUTH=e+3Dmc2@example.com", 0, &p, &mp), LSMTP_OK);
  assert_true(slice_is(mp.auth.ptr, mp.auth.len, "e+3Dmc2@example.com"));
  assert_int_equal(mail("FROM:<a@b> " ENVID100, 0, &p, &mp), LSMTP_OK);
  assert_int_equal(mp.envid.len, 100);
}

static void test_rcpt_param_values(void **state) {
  (void)state;
  lsmtp_path p;
  lsmtp_rcpt_params rp;
  assert_int_equal(rcpt("TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;x+40y", 0, &p, &rp),
                   LSMTP_OK);
  assert_int_equal(rp.notify, LSMTP_NOTIFY_SUCCESS | LSMTP_NOTIFY_FAILURE | LSMTP_NOTIFY_DELAY);
  assert_true(slice_is(rp.orcpt_type.ptr, rp.orcpt_type.len, "rfc822"));
  assert_true(slice_is(rp.orcpt_addr.ptr, rp.orcpt_addr.len, "x+40y"));
  assert_int_equal(rcpt("TO:<a@b> notify=delay", 0, &p, &rp), LSMTP_OK);
  assert_int_equal(rp.notify, LSMTP_NOTIFY_DELAY);
  assert_int_equal(rcpt("TO:<a@b> NOTIFY=NEVER", 0, &p, &rp), LSMTP_OK);
  assert_int_equal(rp.notify, LSMTP_NOTIFY_NEVER);
  assert_int_equal(rcpt("TO:<a@b>", 0, &p, &rp), LSMTP_OK);
  assert_int_equal(rp.notify, 0);
  assert_null(rp.orcpt_type.ptr);
  assert_null(rp.orcpt_addr.ptr);
  assert_int_equal(rcpt("TO:<Postmaster>", 0, &p, &rp), LSMTP_OK);
  assert_true(p.is_postmaster);
  assert_true(slice_is(p.mailbox, p.mailbox_len, "Postmaster"));
  assert_int_equal(rcpt("TO:<a@b> ORCPT=utf-8;\xc3\xa4\\x{E4}@b", LSMTP_ADDR_SMTPUTF8, &p, &rp),
                   LSMTP_OK);
  assert_true(slice_is(rp.orcpt_type.ptr, rp.orcpt_type.len, "utf-8"));
  assert_true(slice_is(rp.orcpt_addr.ptr, rp.orcpt_addr.len, "\xc3\xa4\\x{E4}@b"));
  assert_int_equal(rcpt("TO:  <@r:a@b>", LSMTP_ADDR_LENIENT_SPACE, &p, &rp), LSMTP_OK);
  assert_true(p.had_route);
  assert_true(slice_is(p.mailbox, p.mailbox_len, "a@b"));
}

/* Inputs that are not in the table because the whole path and the command
 * see them differently: a space after a bare mailbox starts parameters. */
static void test_bare_mailbox_then_params(void **state) {
  (void)state;
  lsmtp_path p;
  lsmtp_mail_params mp;
  assert_int_equal(mail("FROM:a@b c", LSMTP_ADDR_LENIENT_BRACKETS, &p, &mp), LSMTP_ERR_PARAM);
  assert_int_equal(mail("FROM:a@b SIZE=5", LSMTP_ADDR_LENIENT_BRACKETS, &p, &mp), LSMTP_OK);
  assert_int_equal(mp.size, 5);
  assert_int_equal(mail("FROM:\"a b\"@c SIZE=5", LSMTP_ADDR_LENIENT_BRACKETS, &p, &mp), LSMTP_OK);
  assert_true(slice_is(p.local, p.local_len, "\"a b\""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_case_table_is_large),
      cmocka_unit_test(test_path_cases),
      cmocka_unit_test(test_path_prefixes),
      cmocka_unit_test(test_path_cases_in_commands),
      cmocka_unit_test(test_path_domains_check_alone),
      cmocka_unit_test(test_domain_cases),
      cmocka_unit_test(test_invalid_arguments),
      cmocka_unit_test(test_failure_clears_output),
      cmocka_unit_test(test_used_stops_at_path_end),
      cmocka_unit_test(test_local_unquote),
      cmocka_unit_test(test_mail_param_cases),
      cmocka_unit_test(test_rcpt_param_cases),
      cmocka_unit_test(test_mail_param_values),
      cmocka_unit_test(test_rcpt_param_values),
      cmocka_unit_test(test_bare_mailbox_then_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
