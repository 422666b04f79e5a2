/* The server side of SMTP AUTH (lsmtp/sasl_server.h): PLAIN (RFC 4616)
 * and LOGIN exchanges with and without an initial response, every
 * malformed-input status, cancellation, bounds at and one past each limit,
 * proxy authorization, the reply table, allocation failure and the wiping
 * of secrets on destroy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include <lsmtp/sasl_server.h>

/* Base64 of raw bytes, into a buffer the caller frees. */
static char *b64(const void *raw, size_t len) {
  size_t n = lsmtp_base64_encode(NULL, 0, raw, len);
  char *out = malloc(n + 1);
  assert_non_null(out);
  assert_int_equal(lsmtp_base64_encode(out, n + 1, raw, len), n);
  out[n] = '\0';
  return out;
}

static lsmtp_sasl_server *make(const char *mech, const char *ir, size_t ir_len) {
  lsmtp_sasl_server *s = NULL;
  assert_int_equal(lsmtp_sasl_server_new(&s, NULL, mech, strlen(mech), ir, ir_len),
                   LSMTP_OK);
  assert_non_null(s);
  return s;
}

static void expect_field(const char *got, size_t got_len, const char *want,
                         size_t want_len) {
  assert_non_null(got);
  assert_int_equal(got_len, want_len);
  assert_memory_equal(got, want, want_len);
  assert_int_equal(got[want_len], '\0');
}

static void expect_creds(const lsmtp_sasl_server *s, const char *zid,
                         size_t zid_len, const char *cid, size_t cid_len,
                         const char *pw, size_t pw_len) {
  size_t n = 99;
  const char *p = lsmtp_sasl_server_authzid(s, &n);
  expect_field(p, n, zid, zid_len);
  p = lsmtp_sasl_server_authcid(s, &n);
  expect_field(p, n, cid, cid_len);
  p = lsmtp_sasl_server_password(s, &n);
  expect_field(p, n, pw, pw_len);
}

static void expect_no_creds(const lsmtp_sasl_server *s) {
  size_t n = 7;
  assert_null(lsmtp_sasl_server_authzid(s, &n));
  assert_null(lsmtp_sasl_server_authcid(s, &n));
  assert_null(lsmtp_sasl_server_password(s, &n));
  assert_int_equal(n, 7); /* untouched */
  assert_int_equal(lsmtp_sasl_server_is_proxy(s), 0);
}

/* A PLAIN exchange of the raw message msg[0..len), once as the initial
 * response and once as the answer to the empty challenge. Returns the
 * status (the same both ways, checked); *out gets the object of the
 * second way (caller deletes). */
static int plain_both_ways(const char *msg, size_t len, lsmtp_sasl_server **out) {
  char *text = b64(msg, len);
  const char *ch = "x";
  /* An empty initial response is written "=" (RFC 4954 §4). */
  const char *ir = len ? text : "=";
  lsmtp_sasl_server *s = make("PLAIN", ir, strlen(ir));
  int rc_ir = lsmtp_sasl_server_start(s, &ch);
  assert_null(ch);
  lsmtp_sasl_server_del(s);

  s = make("PLAIN", NULL, 0);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  assert_string_equal(ch, "");
  int rc = lsmtp_sasl_server_step(s, text, strlen(text), &ch);
  assert_null(ch);
  assert_int_equal(rc, rc_ir);
  free(text);
  *out = s;
  return rc;
}

/* ---- mechanisms ---- */

static void test_mechanism_names(void **state) {
  (void)state;
  assert_int_equal(lsmtp_sasl_server_mechs(),
                   LSMTP_SASL_BIT(LSMTP_SASL_PLAIN) | LSMTP_SASL_BIT(LSMTP_SASL_LOGIN));
  static const struct {
    const char *name;
    size_t len;
    int rc;
    lsmtp_sasl_mech mech;
  } cases[] = {
      {"PLAIN", 5, LSMTP_OK, LSMTP_SASL_PLAIN},
      {"plain", 5, LSMTP_OK, LSMTP_SASL_PLAIN},
      {"Login", 5, LSMTP_OK, LSMTP_SASL_LOGIN},
      {"LOGIN dXNlcg==", 5, LSMTP_OK, LSMTP_SASL_LOGIN}, /* length, not NUL */
      {"PLAINX", 6, LSMTP_ERR_UNSUPPORTED, LSMTP_SASL_NONE},
      {"PLAI", 4, LSMTP_ERR_UNSUPPORTED, LSMTP_SASL_NONE},
      {"CRAM-MD5", 8, LSMTP_ERR_UNSUPPORTED, LSMTP_SASL_NONE},
      {"SCRAM-SHA-256", 13, LSMTP_ERR_UNSUPPORTED, LSMTP_SASL_NONE},
      {"XOAUTH2", 7, LSMTP_ERR_UNSUPPORTED, LSMTP_SASL_NONE},
      {"", 0, LSMTP_ERR_UNSUPPORTED, LSMTP_SASL_NONE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lsmtp_sasl_server *s = (lsmtp_sasl_server *)&s; /* must be reset */
    assert_int_equal(lsmtp_sasl_server_new(&s, NULL, cases[i].name, cases[i].len, NULL, 0),
                     cases[i].rc);
    if (cases[i].rc == LSMTP_OK) {
      assert_int_equal(lsmtp_sasl_server_mech(s), cases[i].mech);
    } else {
      assert_null(s);
    }
    lsmtp_sasl_server_del(s);
  }
  lsmtp_sasl_server *s = NULL;
  assert_int_equal(lsmtp_sasl_server_new(NULL, NULL, "PLAIN", 5, NULL, 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_sasl_server_new(&s, NULL, NULL, 5, NULL, 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_sasl_server_new(&s, NULL, "PLAIN", 5, NULL, 3), LSMTP_ERR_INVALID);
  assert_null(s);
  lsmtp_sasl_server_del(NULL);
  assert_int_equal(lsmtp_sasl_server_mech(NULL), LSMTP_SASL_NONE);
}

/* ---- PLAIN ---- */

static void test_plain_rfc4616_examples(void **state) {
  (void)state;
  lsmtp_sasl_server *s;
  /* RFC 4616 §4: "\0tim\0tanstaaftanstaaf" is AHRpbQB0YW5zdGFhZnRhbnN0YWFm. */
  const char *ir = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
  const char *ch = "x";
  s = make("PLAIN", ir, strlen(ir));
  expect_no_creds(s);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_DONE);
  assert_null(ch);
  expect_creds(s, "", 0, "tim", 3, "tanstaaftanstaaf", 16);
  assert_int_equal(lsmtp_sasl_server_is_proxy(s), 0);
  assert_int_equal(lsmtp_sasl_server_mech(s), LSMTP_SASL_PLAIN);
  /* Done means done. */
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_sasl_server_step(s, ir, strlen(ir), &ch), LSMTP_ERR_STATE);
  expect_creds(s, "", 0, "tim", 3, "tanstaaftanstaaf", 16);
  lsmtp_sasl_server_del(s);

  /* "Ursel\0Kurt\0xipj3plmq": Kurt asks to act as Ursel (proxy). */
  assert_int_equal(plain_both_ways("Ursel\0Kurt\0xipj3plmq", 20, &s), LSMTP_DONE);
  expect_creds(s, "Ursel", 5, "Kurt", 4, "xipj3plmq", 9);
  assert_int_equal(lsmtp_sasl_server_is_proxy(s), 1);
  lsmtp_sasl_server_del(s);
}

static void test_plain_authzid_equal_to_authcid(void **state) {
  (void)state;
  lsmtp_sasl_server *s;
  assert_int_equal(plain_both_ways("kurt\0kurt\0pw", 12, &s), LSMTP_DONE);
  expect_creds(s, "kurt", 4, "kurt", 4, "pw", 2);
  assert_int_equal(lsmtp_sasl_server_is_proxy(s), 0);
  lsmtp_sasl_server_del(s);
  /* Identities are compared octet for octet: case differs, so proxy. */
  assert_int_equal(plain_both_ways("Kurt\0kurt\0pw", 12, &s), LSMTP_DONE);
  assert_int_equal(lsmtp_sasl_server_is_proxy(s), 1);
  lsmtp_sasl_server_del(s);
  /* A prefix is not equal either. */
  assert_int_equal(plain_both_ways("kur\0kurt\0pw", 11, &s), LSMTP_DONE);
  assert_int_equal(lsmtp_sasl_server_is_proxy(s), 1);
  lsmtp_sasl_server_del(s);
}

static void test_plain_utf8_fields(void **state) {
  (void)state;
  lsmtp_sasl_server *s;
  /* "jürgen" and "p€ss 😀" are well-formed: accepted as they are. */
  const char msg[] = "\0j\xc3\xbcrgen\0p\xe2\x82\xacss \xf0\x9f\x98\x80";
  assert_int_equal(plain_both_ways(msg, sizeof msg - 1, &s), LSMTP_DONE);
  expect_creds(s, "", 0, "j\xc3\xbcrgen", 7, "p\xe2\x82\xacss \xf0\x9f\x98\x80", 11);
  lsmtp_sasl_server_del(s);
  /* Control characters other than NUL are not the mechanism's business. */
  assert_int_equal(plain_both_ways("\0a\tb\0p\x01", 7, &s), LSMTP_DONE);
  expect_creds(s, "", 0, "a\tb", 3, "p\x01", 2);
  lsmtp_sasl_server_del(s);
}

static void test_plain_malformed(void **state) {
  (void)state;
  static const struct {
    const char *msg;
    size_t len;
    int rc;
  } cases[] = {
      {"", 0, LSMTP_ERR_SYNTAX},                      /* no NUL at all */
      {"user", 4, LSMTP_ERR_SYNTAX},                  /* no NUL */
      {"user\0pw", 7, LSMTP_ERR_SYNTAX},              /* one NUL */
      {"\0\0pw", 4, LSMTP_ERR_SYNTAX},                /* empty authcid */
      {"\0\0", 2, LSMTP_ERR_SYNTAX},                  /* everything empty */
      {"\0user\0", 6, LSMTP_ERR_SYNTAX},              /* empty password */
      {"zid\0\0pw", 7, LSMTP_ERR_SYNTAX},             /* empty authcid */
      {"a\0b\0c\0d", 7, LSMTP_ERR_SYNTAX},            /* three NULs */
      {"\0u\0p\0", 6, LSMTP_ERR_SYNTAX},              /* three, last at end */
      {"\0\0\0", 3, LSMTP_ERR_SYNTAX},                /* three, all empty */
      {"\0us\xffr\0pw", 8, LSMTP_ERR_UTF8},           /* 0xFF */
      {"\0u\0\xc0\x80", 5, LSMTP_ERR_UTF8},           /* overlong NUL */
      {"\0u\0\xed\xa0\x80", 6, LSMTP_ERR_UTF8},       /* surrogate */
      {"\xe2\x82\0u\0p", 6, LSMTP_ERR_UTF8},          /* cut-off sequence */
      {"\0u\0p\xf4\x90\x80\x80", 8, LSMTP_ERR_UTF8},  /* above U+10FFFF */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lsmtp_sasl_server *s;
    assert_int_equal(plain_both_ways(cases[i].msg, cases[i].len, &s), cases[i].rc);
    expect_no_creds(s);
    const char *ch = "x";
    /* An error ends the exchange. */
    assert_int_equal(lsmtp_sasl_server_step(s, "AHUAcA==", 8, &ch), LSMTP_ERR_STATE);
    assert_null(ch);
    expect_no_creds(s);
    lsmtp_sasl_server_del(s);
  }
}

/* A PLAIN message with fields of the given sizes (filled with 'z','c','p'). */
static int plain_sized(size_t zid, size_t cid, size_t pw) {
  size_t len = zid + 1 + cid + 1 + pw;
  char *m = malloc(len);
  assert_non_null(m);
  memset(m, 'z', zid);
  m[zid] = '\0';
  memset(m + zid + 1, 'c', cid);
  m[zid + 1 + cid] = '\0';
  memset(m + zid + cid + 2, 'p', pw);
  lsmtp_sasl_server *s;
  int rc = plain_both_ways(m, len, &s);
  if (rc == LSMTP_DONE) {
    size_t n;
    assert_non_null(lsmtp_sasl_server_authzid(s, &n));
    assert_int_equal(n, zid);
    assert_non_null(lsmtp_sasl_server_authcid(s, &n));
    assert_int_equal(n, cid);
    const char *p = lsmtp_sasl_server_password(s, &n);
    assert_int_equal(n, pw);
    assert_memory_equal(p, m + zid + cid + 2, pw);
  } else {
    expect_no_creds(s);
  }
  lsmtp_sasl_server_del(s);
  free(m);
  return rc;
}

static void test_plain_bounds(void **state) {
  (void)state;
  assert_int_equal(plain_sized(255, 255, 1024), LSMTP_DONE); /* all at the max */
  assert_int_equal(plain_sized(256, 1, 1), LSMTP_ERR_TOO_LONG);
  assert_int_equal(plain_sized(0, 256, 1), LSMTP_ERR_TOO_LONG);
  assert_int_equal(plain_sized(0, 1, 1025), LSMTP_ERR_TOO_LONG);
  assert_int_equal(plain_sized(0, 255, 1), LSMTP_DONE);
  assert_int_equal(plain_sized(0, 1, 1024), LSMTP_DONE);
  /* A line longer than the largest valid message is refused as too long
   * without being decoded, also as the initial response. */
  size_t big = 4 * 1000; /* decodes to 3000 octets > 1536 */
  char *line = malloc(big);
  assert_non_null(line);
  memset(line, 'A', big);
  const char *ch;
  lsmtp_sasl_server *s = make("PLAIN", NULL, 0);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  assert_int_equal(lsmtp_sasl_server_step(s, line, big, &ch), LSMTP_ERR_TOO_LONG);
  lsmtp_sasl_server_del(s);
  s = make("PLAIN", line, big);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_ERR_TOO_LONG);
  assert_int_equal(lsmtp_sasl_server_step(s, "AHUAcA==", 8, &ch), LSMTP_ERR_STATE);
  lsmtp_sasl_server_del(s);
  free(line);
}

static void test_bad_base64(void **state) {
  (void)state;
  static const char *const bad[] = {
      "AHRpbQB0YW5zdGFhZnRhbnN0YWF",   /* length not a multiple of 4 */
      "AHRpbQB0YW5zdGFhZnRhbnN0YWFm=", /* extra '=' */
      "AHRpbQB0 YW5zdGFhZnRhbnN0YWFm", /* space */
      "AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r", /* stray CR */
      "AHRpbQ-0YW5zdGFhZnRhbnN0YWFm",   /* URL alphabet */
      "AHVAcB==",                       /* non-zero unused bits */
      "====",
      "=",   /* "=" is empty only as an initial response */
      "**",  /* not a cancel */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *ch;
    lsmtp_sasl_server *s = make("PLAIN", NULL, 0);
    assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
    assert_int_equal(lsmtp_sasl_server_step(s, bad[i], strlen(bad[i]), &ch),
                     LSMTP_ERR_SYNTAX);
    expect_no_creds(s);
    lsmtp_sasl_server_del(s);
    s = make("LOGIN", NULL, 0);
    assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
    assert_int_equal(lsmtp_sasl_server_step(s, bad[i], strlen(bad[i]), &ch),
                     LSMTP_ERR_SYNTAX);
    lsmtp_sasl_server_del(s);
    /* The same text as an initial response. */
    s = make("PLAIN", bad[i], strlen(bad[i]));
    assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_ERR_SYNTAX);
    lsmtp_sasl_server_del(s);
  }
  /* "=" as the initial response is the empty response: for PLAIN an empty
   * message, which lacks the NULs. */
  const char *ch;
  lsmtp_sasl_server *s = make("PLAIN", "=", 1);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_ERR_SYNTAX);
  lsmtp_sasl_server_del(s);
  /* An empty continuation line is the empty response. */
  s = make("PLAIN", NULL, 0);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  assert_int_equal(lsmtp_sasl_server_step(s, "", 0, &ch), LSMTP_ERR_SYNTAX);
  lsmtp_sasl_server_del(s);
}

static void test_cancel(void **state) {
  (void)state;
  const char *ch = "x";
  lsmtp_sasl_server *s = make("PLAIN", NULL, 0);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  assert_int_equal(lsmtp_sasl_server_step(s, "*", 1, &ch), LSMTP_ERR_REFUSED);
  assert_null(ch);
  assert_int_equal(lsmtp_sasl_server_step(s, "*", 1, &ch), LSMTP_ERR_STATE);
  expect_no_creds(s);
  lsmtp_sasl_server_del(s);

  /* LOGIN: cancel at the password prompt forgets the user name too. */
  s = make("LOGIN", NULL, 0);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  assert_int_equal(lsmtp_sasl_server_step(s, "dXNlcg==", 8, &ch), LSMTP_INCOMPLETE);
  assert_int_equal(lsmtp_sasl_server_step(s, "*", 1, &ch), LSMTP_ERR_REFUSED);
  expect_no_creds(s);
  lsmtp_sasl_server_del(s);

  /* "*" as an initial response is not a cancel, just not base64. */
  s = make("LOGIN", "*", 1);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_ERR_SYNTAX);
  lsmtp_sasl_server_del(s);
}

/* ---- LOGIN ---- */

static void test_login_exchange(void **state) {
  (void)state;
  unsigned char raw[16];
  size_t n;
  assert_int_equal(lsmtp_base64_decode(raw, sizeof raw, &n, LSMTP_SASL_LOGIN_CHALLENGE_USER,
                                       strlen(LSMTP_SASL_LOGIN_CHALLENGE_USER)),
                   LSMTP_OK);
  assert_int_equal(n, 9);
  assert_memory_equal(raw, "Username:", 9);
  assert_int_equal(lsmtp_base64_decode(raw, sizeof raw, &n, LSMTP_SASL_LOGIN_CHALLENGE_PASS,
                                       strlen(LSMTP_SASL_LOGIN_CHALLENGE_PASS)),
                   LSMTP_OK);
  assert_int_equal(n, 9);
  assert_memory_equal(raw, "Password:", 9);

  const char *ch = NULL;
  lsmtp_sasl_server *s = make("login", NULL, 0);
  assert_int_equal(lsmtp_sasl_server_step(s, "dXNlcg==", 8, &ch), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  assert_string_equal(ch, "VXNlcm5hbWU6");
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_sasl_server_step(s, "dGlt", 4, &ch), LSMTP_INCOMPLETE);
  assert_string_equal(ch, "UGFzc3dvcmQ6");
  expect_no_creds(s);
  assert_int_equal(lsmtp_sasl_server_step(s, "dGFuc3RhYWZ0YW5zdGFhZg==", 24, &ch),
                   LSMTP_DONE);
  assert_null(ch);
  expect_creds(s, "", 0, "tim", 3, "tanstaaftanstaaf", 16);
  assert_int_equal(lsmtp_sasl_server_is_proxy(s), 0);
  assert_int_equal(lsmtp_sasl_server_step(s, "dGlt", 4, &ch), LSMTP_ERR_STATE);
  lsmtp_sasl_server_del(s);

  /* The user name as initial response: straight to the password. */
  s = make("LOGIN", "dGlt", 4);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  assert_string_equal(ch, "UGFzc3dvcmQ6");
  assert_int_equal(lsmtp_sasl_server_step(s, "cHc=", 4, &ch), LSMTP_DONE);
  expect_creds(s, "", 0, "tim", 3, "pw", 2);
  lsmtp_sasl_server_del(s);
}

/* LOGIN with user name u[0..ul) and password p[0..pl); returns the first
 * error or LSMTP_DONE. */
static int login(const char *u, size_t ul, const char *p, size_t pl) {
  const char *ch;
  lsmtp_sasl_server *s = make("LOGIN", NULL, 0);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_INCOMPLETE);
  char *t = b64(u, ul);
  int rc = lsmtp_sasl_server_step(s, t, strlen(t), &ch);
  free(t);
  if (rc == LSMTP_INCOMPLETE) {
    t = b64(p, pl);
    rc = lsmtp_sasl_server_step(s, t, strlen(t), &ch);
    free(t);
  }
  if (rc == LSMTP_DONE) expect_creds(s, "", 0, u, ul, p, pl);
  else expect_no_creds(s);
  lsmtp_sasl_server_del(s);
  return rc;
}

static void test_login_malformed(void **state) {
  (void)state;
  char big[1100];
  memset(big, 'b', sizeof big);
  assert_int_equal(login("u", 1, "p", 1), LSMTP_DONE);
  assert_int_equal(login("", 0, "p", 1), LSMTP_ERR_SYNTAX);
  assert_int_equal(login("u", 1, "", 0), LSMTP_ERR_SYNTAX);
  assert_int_equal(login("u\0v", 3, "p", 1), LSMTP_ERR_NUL);
  assert_int_equal(login("u", 1, "p\0", 2), LSMTP_ERR_NUL);
  assert_int_equal(login("\xff", 1, "p", 1), LSMTP_ERR_UTF8);
  assert_int_equal(login("u", 1, "\xc3", 1), LSMTP_ERR_UTF8);
  assert_int_equal(login(big, 255, "p", 1), LSMTP_DONE);
  assert_int_equal(login(big, 256, "p", 1), LSMTP_ERR_TOO_LONG);
  assert_int_equal(login("u", 1, big, 1024), LSMTP_DONE);
  assert_int_equal(login("u", 1, big, 1025), LSMTP_ERR_TOO_LONG);
  /* "=" as the initial response is an empty user name. */
  const char *ch;
  lsmtp_sasl_server *s = make("LOGIN", "=", 1);
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_ERR_SYNTAX);
  lsmtp_sasl_server_del(s);
}

/* ---- replies ---- */

static void expect_reply(int status, int code, const char *enh) {
  const char *e = "junk", *t = "junk";
  assert_int_equal(lsmtp_sasl_server_reply(status, &e, &t), code);
  if (enh) {
    assert_non_null(e);
    assert_string_equal(e, enh);
    assert_non_null(t);
    assert_true(strlen(t) > 0);
  } else {
    assert_null(e);
    assert_null(t);
  }
}

static void test_replies(void **state) {
  (void)state;
  expect_reply(LSMTP_INCOMPLETE, 334, NULL);
  expect_reply(LSMTP_DONE, 0, NULL);
  expect_reply(LSMTP_OK, 235, "2.7.0");
  expect_reply(LSMTP_ERR_AUTH, 535, "5.7.8");
  expect_reply(LSMTP_ERR_SYNTAX, 501, "5.5.2");
  expect_reply(LSMTP_ERR_TOO_LONG, 501, "5.5.2");
  expect_reply(LSMTP_ERR_UTF8, 501, "5.5.2");
  expect_reply(LSMTP_ERR_NUL, 501, "5.5.2");
  expect_reply(LSMTP_ERR_REFUSED, 501, "5.0.0");
  expect_reply(LSMTP_ERR_UNSUPPORTED, 504, "5.5.4");
  expect_reply(LSMTP_ERR_INSECURE, 538, "5.7.11");
  expect_reply(LSMTP_ERR_TEMPFAIL, 454, "4.7.0");
  expect_reply(LSMTP_ERR_NOMEM, 454, "4.7.0");
  assert_int_equal(lsmtp_sasl_server_reply(LSMTP_ERR_AUTH, NULL, NULL), 535);
}

/* ---- allocation and wiping ---- */

/* An allocator that can fail, counts live blocks, and on free checks that
 * the block was zeroed (it keeps each block's size in front of it). */
typedef struct {
  int fail;
  int live;
  int dirty_frees;
} test_alloc;

static void *ta_malloc(size_t size, void *ud) {
  test_alloc *t = ud;
  if (t->fail) return NULL;
  size_t *p = malloc(sizeof(size_t) + size);
  if (!p) return NULL;
  *p = size;
  t->live++;
  return p + 1;
}

static void *ta_realloc(void *ptr, size_t size, void *ud) {
  (void)ptr, (void)size, (void)ud;
  return NULL; /* the SASL server never grows anything */
}

static void ta_free(void *ptr, void *ud) {
  test_alloc *t = ud;
  if (!ptr) return;
  size_t *p = (size_t *)ptr - 1;
  const unsigned char *b = ptr;
  for (size_t i = 0; i < *p; i++)
    if (b[i]) {
      t->dirty_frees++;
      break;
    }
  t->live--;
  free(p);
}

static void test_alloc_failure_and_wipe(void **state) {
  (void)state;
  test_alloc t = {0};
  lsmtp_allocator a = {ta_malloc, ta_realloc, ta_free, &t};
  lsmtp_sasl_server *s = (lsmtp_sasl_server *)&t;
  t.fail = 1;
  assert_int_equal(lsmtp_sasl_server_new(&s, &a, "PLAIN", 5, NULL, 0), LSMTP_ERR_NOMEM);
  assert_null(s);
  assert_int_equal(t.live, 0);

  t.fail = 0;
  const char *ir = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
  assert_int_equal(lsmtp_sasl_server_new(&s, &a, "PLAIN", 5, ir, strlen(ir)), LSMTP_OK);
  assert_int_equal(t.live, 1);
  const char *ch;
  assert_int_equal(lsmtp_sasl_server_start(s, &ch), LSMTP_DONE);
  size_t n;
  const char *pw = lsmtp_sasl_server_password(s, &n);
  assert_memory_equal(pw, "tanstaaftanstaaf", 16);
  lsmtp_sasl_server_del(s);
  assert_int_equal(t.live, 0);
  assert_int_equal(t.dirty_frees, 0); /* the password did not outlive del */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mechanism_names),
      cmocka_unit_test(test_plain_rfc4616_examples),
      cmocka_unit_test(test_plain_authzid_equal_to_authcid),
      cmocka_unit_test(test_plain_utf8_fields),
      cmocka_unit_test(test_plain_malformed),
      cmocka_unit_test(test_plain_bounds),
      cmocka_unit_test(test_bad_base64),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_login_exchange),
      cmocka_unit_test(test_login_malformed),
      cmocka_unit_test(test_replies),
      cmocka_unit_test(test_alloc_failure_and_wipe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
