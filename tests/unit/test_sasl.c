/* The SASL client mechanisms against their RFC examples: PLAIN (RFC 4616
 * §4), CRAM-MD5 (RFC 2195 §2), OAUTHBEARER (RFC 7628 §4.1), SCRAM-SHA-256
 * (RFC 7677 §3), plus the choice of mechanism and the credential checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "internal.h"
#include <lsmtp/sasl.h>

static lsmtp_sasl_client *make(lsmtp_sasl_mech mech, const char *authzid,
                               const char *user, const char *pass,
                               const char *token) {
  lsmtp_sasl_credentials cr = {0};
  cr.authzid = authzid;
  cr.username = user;
  cr.password = pass;
  cr.oauth_token = token;
  lsmtp_sasl_client *s = NULL;
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, mech, &cr), LSMTP_OK);
  return s;
}

static void expect_bytes(const char *got, size_t got_len, const char *want,
                         size_t want_len) {
  assert_int_equal(got_len, want_len);
  assert_memory_equal(got, want, want_len);
}

static void test_plain_rfc4616(void **state) {
  (void)state;
  const char *out;
  size_t n;
  lsmtp_sasl_client *s = make(LSMTP_SASL_PLAIN, NULL, "tim", "tanstaaftanstaaf", NULL);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
  expect_bytes(out, n, "\0tim\0tanstaaftanstaaf", 21);
  assert_true(lsmtp_sasl_client_finished(s));
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_ERR_STATE);
  /* PLAIN has nothing to say to a challenge. */
  assert_int_equal(lsmtp_sasl_client_step(s, "x", 1, &out, &n), LSMTP_ERR_AUTH);
  lsmtp_sasl_client_del(s);

  s = make(LSMTP_SASL_PLAIN, "Ursel", "Kurt", "xipj3plmq", NULL);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
  expect_bytes(out, n, "Ursel\0Kurt\0xipj3plmq", 20);
  lsmtp_sasl_client_del(s);
}

static void test_login(void **state) {
  (void)state;
  const char *out;
  size_t n;
  lsmtp_sasl_client *s = make(LSMTP_SASL_LOGIN, NULL, "user", "pass", NULL);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_INCOMPLETE);
  assert_false(lsmtp_sasl_client_finished(s));
  assert_int_equal(lsmtp_sasl_client_step(s, "Username:", 9, &out, &n), LSMTP_OK);
  expect_bytes(out, n, "user", 4);
  assert_int_equal(lsmtp_sasl_client_step(s, "Password:", 9, &out, &n), LSMTP_OK);
  expect_bytes(out, n, "pass", 4);
  assert_true(lsmtp_sasl_client_finished(s));
  assert_int_equal(lsmtp_sasl_client_step(s, "More:", 5, &out, &n), LSMTP_ERR_AUTH);
  lsmtp_sasl_client_del(s);
}

static void test_cram_md5_rfc2195(void **state) {
  (void)state;
  if (!lsmtp_sasl_mech_available(LSMTP_SASL_CRAM_MD5)) skip();
  const char *out;
  size_t n;
  lsmtp_sasl_client *s = make(LSMTP_SASL_CRAM_MD5, NULL, "tim", "tanstaaftanstaaf", NULL);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_INCOMPLETE);
  const char *ch = "<1896.697170952@postoffice.reston.mci.net>";
  assert_int_equal(lsmtp_sasl_client_step(s, ch, strlen(ch), &out, &n), LSMTP_OK);
  const char *want = "tim b913a602c7eda7a495b4e6e7334d3890";
  expect_bytes(out, n, want, strlen(want));
  assert_true(lsmtp_sasl_client_finished(s));
  lsmtp_sasl_client_del(s);
}

static void test_xoauth2(void **state) {
  (void)state;
  const char *out;
  size_t n;
  lsmtp_sasl_client *s = make(LSMTP_SASL_XOAUTH2, NULL, "someuser@example.com", NULL,
                              "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
  const char *want =
      "user=someuser@example.com\001auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\001\001";
  expect_bytes(out, n, want, strlen(want));
  /* The error challenge is kept for the host and answered with nothing. */
  const char *err = "{\"status\":\"401\",\"schemes\":\"Bearer\"}";
  assert_int_equal(lsmtp_sasl_client_step(s, err, strlen(err), &out, &n), LSMTP_OK);
  assert_int_equal(n, 0);
  assert_string_equal(lsmtp_sasl_client_server_error(s), err);
  assert_false(lsmtp_sasl_client_finished(s));
  lsmtp_sasl_client_del(s);
}

static void test_oauthbearer_rfc7628(void **state) {
  (void)state;
  const char *out;
  size_t n;
  lsmtp_sasl_credentials cr = {0};
  cr.username = "user@example.com";
  cr.oauth_token = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";
  cr.host = "server.example.com";
  cr.port = 143;
  lsmtp_sasl_client *s;
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, LSMTP_SASL_OAUTHBEARER, &cr), LSMTP_OK);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
  const char *want = "n,a=user@example.com,\001host=server.example.com\001port=143\001"
                     "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\001\001";
  expect_bytes(out, n, want, strlen(want));
  const char *err = "{\"status\":\"invalid_token\"}";
  assert_int_equal(lsmtp_sasl_client_step(s, err, strlen(err), &out, &n), LSMTP_OK);
  expect_bytes(out, n, "\001", 1); /* RFC 7628 §3.2.3 */
  assert_string_equal(lsmtp_sasl_client_server_error(s), err);
  lsmtp_sasl_client_del(s);
}

static const char *const scram_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

static lsmtp_sasl_client *scram_started(const char *user) {
  const char *out;
  size_t n;
  lsmtp_sasl_client *s = make(LSMTP_SASL_SCRAM_SHA_256, NULL, user, "pencil", NULL);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "rOprNGfwEbeRWgbNEkqO", 20), LSMTP_OK);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
  return s;
}

static void test_scram_rfc7677(void **state) {
  (void)state;
  if (!lsmtp_sasl_mech_available(LSMTP_SASL_SCRAM_SHA_256)) skip();
  const char *out;
  size_t n;
  lsmtp_sasl_client *s = make(LSMTP_SASL_SCRAM_SHA_256, NULL, "user", "pencil", NULL);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "rOprNGfwEbeRWgbNEkqO", 20), LSMTP_OK);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
  expect_bytes(out, n, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "abc", 3), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_sasl_client_step(s, scram_server_first, strlen(scram_server_first),
                                          &out, &n),
                   LSMTP_OK);
  const char *final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  expect_bytes(out, n, final, strlen(final));
  assert_false(lsmtp_sasl_client_finished(s));
  const char *v = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
  assert_int_equal(lsmtp_sasl_client_step(s, v, strlen(v), &out, &n), LSMTP_OK);
  assert_int_equal(n, 0);
  assert_true(lsmtp_sasl_client_finished(s));
  lsmtp_sasl_client_del(s);
}

static void test_scram_rejects(void **state) {
  (void)state;
  if (!lsmtp_sasl_mech_available(LSMTP_SASL_SCRAM_SHA_256)) skip();
  const char *out;
  size_t n;
  static const char *const bad_first[] = {
      /* nonce that does not extend ours */
      "r=XOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      /* nonce equal to ours (no server part) */
      "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      /* too few iterations, too many, not a number */
      "r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
      "r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
      "r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4k",
      /* bad salt, missing salt, mandatory extension */
      "r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
      "r=rOprNGfwEbeRWgbNEkqOxx,i=4096",
      "m=ext,r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "",
  };
  for (size_t i = 0; i < sizeof bad_first / sizeof bad_first[0]; i++) {
    lsmtp_sasl_client *s = scram_started("user");
    assert_int_equal(lsmtp_sasl_client_step(s, bad_first[i], strlen(bad_first[i]), &out, &n),
                     LSMTP_ERR_AUTH);
    lsmtp_sasl_client_del(s);
  }
  static const char *const bad_final[] = {
      "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", /* wrong signature */
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",  /* bad base64 */
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5n",             /* too short */
      "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
      "e=invalid-proof",
  };
  for (size_t i = 0; i < sizeof bad_final / sizeof bad_final[0]; i++) {
    lsmtp_sasl_client *s = scram_started("user");
    assert_int_equal(lsmtp_sasl_client_step(s, scram_server_first, strlen(scram_server_first),
                                            &out, &n),
                     LSMTP_OK);
    assert_int_equal(lsmtp_sasl_client_step(s, bad_final[i], strlen(bad_final[i]), &out, &n),
                     LSMTP_ERR_AUTH);
    assert_false(lsmtp_sasl_client_finished(s));
    if (bad_final[i][0] == 'e')
      assert_string_equal(lsmtp_sasl_client_server_error(s), "invalid-proof");
    lsmtp_sasl_client_del(s);
  }
}

static void test_scram_names_and_nonce(void **state) {
  (void)state;
  if (!lsmtp_sasl_mech_available(LSMTP_SASL_SCRAM_SHA_256)) skip();
  const char *out;
  size_t n;
  /* "," and "=" in names are escaped (RFC 5802 §5.1). */
  lsmtp_sasl_client *s = make(LSMTP_SASL_SCRAM_SHA_256, "ad,min", "a,b=c", "pw", NULL);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "NONCE", 5), LSMTP_OK);
  assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
  const char *want = "n,a=ad=2Cmin,n=a=2Cb=3Dc,r=NONCE";
  expect_bytes(out, n, want, strlen(want));
  lsmtp_sasl_client_del(s);
  /* Bad injected nonces. */
  s = make(LSMTP_SASL_SCRAM_SHA_256, NULL, "u", "pw", NULL);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "a,b", 3), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "a b", 3), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "", 0), LSMTP_ERR_INVALID);
  lsmtp_sasl_client_del(s);
  /* Random nonces: 32 base64 characters, different each time. */
  char first[64] = "";
  for (int i = 0; i < 2; i++) {
    s = make(LSMTP_SASL_SCRAM_SHA_256, NULL, "u", "pw", NULL);
    assert_int_equal(lsmtp_sasl_client_start(s, &out, &n), LSMTP_OK);
    assert_int_equal(n, strlen("n,,n=u,r=") + 32);
    assert_memory_equal(out, "n,,n=u,r=", 9);
    assert_null(memchr(out + 9, ',', 32));
    if (i == 0) memcpy(first, out + 9, 32);
    else assert_memory_not_equal(first, out + 9, 32);
    lsmtp_sasl_client_del(s);
  }
  s = make(LSMTP_SASL_PLAIN, NULL, "u", "pw", NULL);
  assert_int_equal(lsmtp_sasl_client_set_nonce(s, "abc", 3), LSMTP_ERR_STATE);
  lsmtp_sasl_client_del(s);
}

static void test_choose(void **state) {
  (void)state;
  const unsigned all = LSMTP_SASL_BIT(LSMTP_SASL_PLAIN) | LSMTP_SASL_BIT(LSMTP_SASL_LOGIN) |
                       LSMTP_SASL_BIT(LSMTP_SASL_CRAM_MD5) |
                       LSMTP_SASL_BIT(LSMTP_SASL_XOAUTH2) |
                       LSMTP_SASL_BIT(LSMTP_SASL_OAUTHBEARER) |
                       LSMTP_SASL_BIT(LSMTP_SASL_SCRAM_SHA_256);
  lsmtp_sasl_credentials pw = {0};
  pw.username = "u";
  pw.password = "p";
  lsmtp_sasl_mech best = lsmtp_sasl_mech_available(LSMTP_SASL_SCRAM_SHA_256)
                             ? LSMTP_SASL_SCRAM_SHA_256
                             : LSMTP_SASL_PLAIN;
  assert_int_equal(lsmtp_sasl_choose(all, &pw), best);
  assert_int_equal(lsmtp_sasl_choose(all & ~LSMTP_SASL_BIT(LSMTP_SASL_SCRAM_SHA_256), &pw),
                   LSMTP_SASL_PLAIN);
  assert_int_equal(lsmtp_sasl_choose(LSMTP_SASL_BIT(LSMTP_SASL_LOGIN) |
                                         LSMTP_SASL_BIT(LSMTP_SASL_CRAM_MD5),
                                     &pw),
                   LSMTP_SASL_LOGIN);
  /* CRAM-MD5 only by name; OAuth only with a token. */
  assert_int_equal(lsmtp_sasl_choose(LSMTP_SASL_BIT(LSMTP_SASL_CRAM_MD5), &pw), LSMTP_SASL_NONE);
  assert_int_equal(lsmtp_sasl_choose(LSMTP_SASL_BIT(LSMTP_SASL_XOAUTH2), &pw), LSMTP_SASL_NONE);
  lsmtp_sasl_credentials tok = {0};
  tok.username = "u";
  tok.oauth_token = "t";
  assert_int_equal(lsmtp_sasl_choose(all, &tok), LSMTP_SASL_OAUTHBEARER);
  assert_int_equal(lsmtp_sasl_choose(all & ~LSMTP_SASL_BIT(LSMTP_SASL_OAUTHBEARER), &tok),
                   LSMTP_SASL_XOAUTH2);
  assert_int_equal(lsmtp_sasl_choose(LSMTP_SASL_BIT(LSMTP_SASL_PLAIN), &tok), LSMTP_SASL_NONE);
  assert_int_equal(lsmtp_sasl_choose(0, &pw), LSMTP_SASL_NONE);
  assert_int_equal(lsmtp_sasl_choose(all, NULL), LSMTP_SASL_NONE);
}

static void test_names_and_credentials(void **state) {
  (void)state;
  assert_int_equal(lsmtp_sasl_mech_from_name("scram-sha-256", 13), LSMTP_SASL_SCRAM_SHA_256);
  assert_int_equal(lsmtp_sasl_mech_from_name("Plain", 5), LSMTP_SASL_PLAIN);
  assert_int_equal(lsmtp_sasl_mech_from_name("PLAINX", 6), LSMTP_SASL_NONE);
  assert_int_equal(lsmtp_sasl_mech_from_name("GSSAPI", 6), LSMTP_SASL_NONE);
  assert_string_equal(lsmtp_sasl_mech_name(LSMTP_SASL_CRAM_MD5), "CRAM-MD5");
  assert_string_equal(lsmtp_sasl_mech_name((lsmtp_sasl_mech)99), "");

  lsmtp_sasl_client *s = (lsmtp_sasl_client *)1;
  lsmtp_sasl_credentials cr = {0};
  cr.username = "user";
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, LSMTP_SASL_PLAIN, &cr), LSMTP_ERR_INVALID);
  assert_null(s);
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, LSMTP_SASL_XOAUTH2, &cr), LSMTP_ERR_INVALID);
  cr.password = "pass";
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, LSMTP_SASL_NONE, &cr), LSMTP_ERR_INVALID);
  /* SASLprep decision: printable ASCII only. */
  cr.password = "pa\xc3\x9f";
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, LSMTP_SASL_PLAIN, &cr), LSMTP_ERR_UTF8);
  cr.password = "pa\tss";
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, LSMTP_SASL_PLAIN, &cr), LSMTP_ERR_UTF8);
  cr.password = "pass";
  cr.username = "us\xe2\x85\xa8";
  assert_int_equal(lsmtp_sasl_client_new(&s, NULL, LSMTP_SASL_LOGIN, &cr), LSMTP_ERR_UTF8);
  lsmtp_sasl_client_del(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_rfc4616),
      cmocka_unit_test(test_login),
      cmocka_unit_test(test_cram_md5_rfc2195),
      cmocka_unit_test(test_xoauth2),
      cmocka_unit_test(test_oauthbearer_rfc7628),
      cmocka_unit_test(test_scram_rfc7677),
      cmocka_unit_test(test_scram_rejects),
      cmocka_unit_test(test_scram_names_and_nonce),
      cmocka_unit_test(test_choose),
      cmocka_unit_test(test_names_and_credentials),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
