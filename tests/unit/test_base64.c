/* Base64 (RFC 4648) and xtext (RFC 3461 §4): test vectors both ways,
 * strictness of the decoders, capacity handling and round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define S(lit) lit, sizeof(lit) - 1

/* An exact-size heap copy: under ASan, reading one byte past the input
 * faults instead of finding the next literal's bytes. */
static char *heap_copy(const char *p, size_t len) {
  char *c = malloc(len ? len : 1);
  assert_non_null(c);
  if (len) memcpy(c, p, len);
  return c;
}

/* RFC 4648 §10. */
static const struct {
  const char *raw;
  const char *b64;
} vectors[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static void test_base64_vectors_encode(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    const char *raw = vectors[i].raw, *b64 = vectors[i].b64;
    size_t raw_len = strlen(raw), need = strlen(b64);
    assert_int_equal(LSMTP_BASE64_ENCODED_LEN(raw_len), need);
    assert_int_equal(lsmtp_base64_encode(NULL, 0, raw, raw_len), need);
    char out[32];
    for (size_t cap = 0; cap <= need + 1; cap++) {
      memset(out, '#', sizeof out);
      assert_int_equal(lsmtp_base64_encode(out, cap, raw, raw_len), need);
      if (cap < need) {
        for (size_t j = 0; j < sizeof out; j++) assert_int_equal(out[j], '#');
      } else {
        assert_memory_equal(out, b64, need);
        assert_int_equal(out[need], cap > need ? '\0' : '#');
      }
    }
  }
}

static void test_base64_vectors_decode(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    const char *raw = vectors[i].raw, *b64 = vectors[i].b64;
    size_t raw_len = strlen(raw), b64_len = strlen(b64);
    unsigned char out[16];
    size_t out_len = 999;
    memset(out, '#', sizeof out);
    /* exactly enough room */
    assert_int_equal(lsmtp_base64_decode(out, raw_len, &out_len, b64, b64_len), LSMTP_OK);
    assert_int_equal(out_len, raw_len);
    assert_memory_equal(out, raw, raw_len);
    assert_int_equal(out[raw_len], '#');
    /* one byte short */
    if (raw_len) {
      out_len = 999;
      assert_int_equal(lsmtp_base64_decode(out, raw_len - 1, &out_len, b64, b64_len),
                       LSMTP_ERR_TOO_LONG);
      assert_int_equal(out_len, raw_len); /* the room it needs */
      assert_int_equal(lsmtp_base64_decode(NULL, 0, NULL, b64, b64_len), LSMTP_ERR_TOO_LONG);
    }
  }
}

static void test_base64_empty(void **state) {
  (void)state;
  size_t out_len = 99;
  unsigned char out[4];
  /* "=" is the empty SASL response (RFC 4954 §4) */
  assert_int_equal(lsmtp_base64_decode(out, sizeof out, &out_len, "=", 1), LSMTP_OK);
  assert_int_equal(out_len, 0);
  out_len = 99;
  assert_int_equal(lsmtp_base64_decode(NULL, 0, &out_len, "=", 1), LSMTP_OK);
  assert_int_equal(out_len, 0);
  out_len = 99;
  assert_int_equal(lsmtp_base64_decode(NULL, 0, &out_len, "", 0), LSMTP_OK);
  assert_int_equal(out_len, 0);
  assert_int_equal(lsmtp_base64_decode(out, sizeof out, NULL, "==", 2), LSMTP_ERR_SYNTAX);
  /* programming errors */
  assert_int_equal(lsmtp_base64_decode(out, sizeof out, &out_len, NULL, 4), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_base64_decode(NULL, 4, &out_len, "Zm9v", 4), LSMTP_ERR_INVALID);
}

static void test_base64_invalid(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t len;
  } bad[] = {
      /* wrong length */
      {S("Z")},          {S("Zg")},         {S("Zg=")},        {S("Zm9vY")},
      {S("Zm9vYg")},     {S("Zm9vYg=")},    {S("Zm9v=")},      {S("Zm9vYg===")},
      /* bad padding */
      {S("====")},       {S("Z===")},       {S("Zg=a")},       {S("Zm=v")},
      {S("=Zm9")},       {S("Zg==Zg==")},   {S("Zm8=Zm9v")},   {S("==")},
      {S("Zg==\0")},
      /* non-zero unused bits (RFC 4648 §3.5) */
      {S("Zh==")},       {S("Zv==")},       {S("Zm9=")},       {S("Zm+=")},
      /* characters outside the alphabet */
      {S("Zm9v\r\n")},   {S("Zm9 v")},      {S(" Zm9v")},      {S("Zm9v ")},
      {S("Zm-v")},       {S("Zm_v")},       {S("Zm9\x80")},    {S("Zm9\0")},
      {S("Zm9.")},       {S("Zm9v\tYmFy")}, {S("Zm9vYmF\n")},  {S("\xFFm9v")},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    print_message("case %zu\n", i);
    unsigned char out[16];
    size_t out_len = 999;
    char *in = heap_copy(bad[i].in, bad[i].len);
    assert_int_equal(lsmtp_base64_decode(out, sizeof out, &out_len, in, bad[i].len),
                     LSMTP_ERR_SYNTAX);
    assert_int_equal(out_len, 999);
    /* bad input is reported as such even when the buffer is also small */
    assert_int_equal(lsmtp_base64_decode(out, 0, &out_len, in, bad[i].len), LSMTP_ERR_SYNTAX);
    free(in);
  }
}

/* Every length and every byte value survive a round trip, and decoding is
 * canonical: any text that decodes is exactly what encoding gives back. */
static void test_base64_round_trip(void **state) {
  (void)state;
  unsigned char raw[300], dec[300];
  char enc[LSMTP_BASE64_ENCODED_LEN(300) + 1];
  for (size_t i = 0; i < sizeof raw; i++) raw[i] = (unsigned char)(255 - i);
  for (size_t len = 0; len <= sizeof raw; len++) {
    size_t n = lsmtp_base64_encode(enc, sizeof enc, raw, len);
    assert_int_equal(n, LSMTP_BASE64_ENCODED_LEN(len));
    assert_int_equal(enc[n], '\0');
    size_t dec_len = 0;
    assert_int_equal(lsmtp_base64_decode(dec, sizeof dec, &dec_len, enc, n), LSMTP_OK);
    assert_int_equal(dec_len, len);
    assert_memory_equal(dec, raw, len);
  }
}

static void test_base64_canonical_under_mutation(void **state) {
  (void)state;
  const char *valid[] = {"Zg==", "Zm8=", "Zm9v", "Zm9vYmE=", "/+8A", "AAAA"};
  for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
    size_t len = strlen(valid[v]);
    for (size_t pos = 0; pos < len; pos++) {
      for (int byte = 0; byte < 256; byte++) {
        char in[16];
        memcpy(in, valid[v], len);
        in[pos] = (char)byte;
        unsigned char dec[16];
        size_t dec_len = 0;
        int rc = lsmtp_base64_decode(dec, sizeof dec, &dec_len, in, len);
        if (rc != LSMTP_OK) {
          assert_int_equal(rc, LSMTP_ERR_SYNTAX);
          continue;
        }
        char again[32];
        size_t n = lsmtp_base64_encode(again, sizeof again, dec, dec_len);
        assert_int_equal(n, len);
        assert_memory_equal(again, in, len);
      }
    }
  }
}

/* ---- xtext ---- */

static void test_xtext_check(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t len;
    int rc;
  } cases[] = {
      {S(""), LSMTP_OK},
      {S("abc"), LSMTP_OK},
      {S("user@example.org"), LSMTP_OK},
      {S("a+2Bb+3D"), LSMTP_OK},
      {S("+00+FF+4A"), LSMTP_OK},
      {S("!~\"#$%&'()*,-./:;<>?@[\\]^_`{|}"), LSMTP_OK},
      {S("+"), LSMTP_ERR_SYNTAX},
      {S("+4"), LSMTP_ERR_SYNTAX},
      {S("a+4"), LSMTP_ERR_SYNTAX},
      {S("+zz"), LSMTP_ERR_SYNTAX},
      {S("+4a"), LSMTP_ERR_SYNTAX},
      {S("+a4"), LSMTP_ERR_SYNTAX},
      {S("+G0"), LSMTP_ERR_SYNTAX},
      {S("+ 20"), LSMTP_ERR_SYNTAX},
      {S("a=b"), LSMTP_ERR_SYNTAX},
      {S("a b"), LSMTP_ERR_SYNTAX},
      {S("a\tb"), LSMTP_ERR_SYNTAX},
      {S("a\x7F"), LSMTP_ERR_SYNTAX},
      {S("\x80"), LSMTP_ERR_SYNTAX},
      {S("caf\xC3\xA9"), LSMTP_ERR_SYNTAX},
      {S("a\0b"), LSMTP_ERR_SYNTAX},
      {S("a\r\n"), LSMTP_ERR_SYNTAX},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    print_message("case %zu: %s\n", i, cases[i].in);
    char *in = heap_copy(cases[i].in, cases[i].len);
    assert_int_equal(lsmtp_xtext_check(in, cases[i].len), cases[i].rc);
    char out[64];
    size_t out_len = 999;
    assert_int_equal(lsmtp_xtext_decode(out, sizeof out, &out_len, in, cases[i].len),
                     cases[i].rc);
    if (cases[i].rc != LSMTP_OK) assert_int_equal(out_len, 999);
    free(in);
  }
}

static void test_xtext_decode(void **state) {
  (void)state;
  char out[16];
  size_t out_len = 0;
  assert_int_equal(lsmtp_xtext_decode(out, sizeof out, &out_len, S("a+2Bb+3Dc")), LSMTP_OK);
  assert_int_equal(out_len, 5);
  assert_string_equal(out, "a+b=c");
  /* an escape of a byte that could be literal is still valid xtext */
  assert_int_equal(lsmtp_xtext_decode(out, sizeof out, &out_len, S("+41+42C")), LSMTP_OK);
  assert_int_equal(out_len, 3);
  assert_string_equal(out, "ABC");
  assert_int_equal(lsmtp_xtext_decode(out, sizeof out, &out_len, S("x+00y")), LSMTP_OK);
  assert_int_equal(out_len, 3);
  assert_memory_equal(out, "x\0y", 3);
  assert_int_equal(lsmtp_xtext_decode(out, sizeof out, &out_len, S("+FF+80")), LSMTP_OK);
  assert_int_equal(out_len, 2);
  assert_memory_equal(out, "\xFF\x80", 2);

  /* capacity: exact fits without NUL, one less is too small */
  memset(out, '#', sizeof out);
  assert_int_equal(lsmtp_xtext_decode(out, 3, &out_len, S("a+2Bb")), LSMTP_OK);
  assert_memory_equal(out, "a+b#", 4);
  out_len = 0;
  assert_int_equal(lsmtp_xtext_decode(out, 2, &out_len, S("a+2Bb")), LSMTP_ERR_TOO_LONG);
  assert_int_equal(out_len, 3);
  assert_int_equal(lsmtp_xtext_decode(NULL, 0, NULL, S("a")), LSMTP_ERR_TOO_LONG);
  assert_int_equal(lsmtp_xtext_decode(NULL, 0, &out_len, S("")), LSMTP_OK);
  assert_int_equal(out_len, 0);
  /* bad input wins over small room */
  assert_int_equal(lsmtp_xtext_decode(out, 0, &out_len, S("+4a")), LSMTP_ERR_SYNTAX);
}

static void test_xtext_encode(void **state) {
  (void)state;
  const char in[] = "a+b=c d\x01\xFF~!";
  const char want[] = "a+2Bb+3Dc+20d+01+FF~!";
  const size_t need = sizeof want - 1;
  assert_int_equal(lsmtp_xtext_encode(NULL, 0, in, sizeof in - 1), need);
  for (size_t cap = 0; cap <= need + 1; cap++) {
    char out[32];
    memset(out, '#', sizeof out);
    assert_int_equal(lsmtp_xtext_encode(out, cap, in, sizeof in - 1), need);
    if (cap < need) {
      /* too small: an empty string, nothing else written */
      assert_int_equal(out[0], cap ? '\0' : '#');
      for (size_t j = 1; j < sizeof out; j++) assert_int_equal(out[j], '#');
    } else {
      assert_memory_equal(out, want, need);
      assert_int_equal(out[need], cap > need ? '\0' : '#');
    }
  }
  char out[4];
  assert_int_equal(lsmtp_xtext_encode(out, sizeof out, "", 0), 0);
  assert_int_equal(out[0], '\0');
}

static void test_xtext_round_trip(void **state) {
  (void)state;
  char raw[256], enc[3 * 256 + 1], dec[256];
  for (int i = 0; i < 256; i++) raw[i] = (char)i;
  size_t n = lsmtp_xtext_encode(enc, sizeof enc, raw, sizeof raw);
  /* 94 printable bytes minus "+" and "=" stay literal, the rest take 3 */
  assert_int_equal(n, 92 + 3 * (256 - 92));
  assert_int_equal(lsmtp_xtext_check(enc, n), LSMTP_OK);
  /* xtext_check refuses lower-case hex, so this also shows the encoder
   * writes upper case */
  assert_memory_equal(enc + n - 3, "+FF", 3);
  size_t dec_len = 0;
  assert_int_equal(lsmtp_xtext_decode(dec, sizeof dec, &dec_len, enc, n), LSMTP_OK);
  assert_int_equal(dec_len, sizeof raw);
  assert_memory_equal(dec, raw, sizeof raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_base64_vectors_encode),
      cmocka_unit_test(test_base64_vectors_decode),
      cmocka_unit_test(test_base64_empty),
      cmocka_unit_test(test_base64_invalid),
      cmocka_unit_test(test_base64_round_trip),
      cmocka_unit_test(test_base64_canonical_under_mutation),
      cmocka_unit_test(test_xtext_check),
      cmocka_unit_test(test_xtext_decode),
      cmocka_unit_test(test_xtext_encode),
      cmocka_unit_test(test_xtext_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
