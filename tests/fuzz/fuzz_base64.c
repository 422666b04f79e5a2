/* Fuzz the base64 and xtext codecs.
 *
 * The input is used both as encoded text and as raw bytes:
 * - decoded as base64: when it decodes, encoding the result gives the
 *   input back byte for byte (strict decoding is canonical), and one byte
 *   less of room is LSMTP_ERR_TOO_LONG;
 * - decoded as xtext: lsmtp_xtext_check agrees, and encode/decode of the
 *   result round-trips;
 * - encoded with either codec and decoded back: the input again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(x)       \
  do {                 \
    if (!(x)) abort(); \
  } while (0)

/* Exact-size heap copy, so ASan catches reads past the end. */
static char *copy(const uint8_t *data, size_t size) {
  char *p = malloc(size ? size : 1);
  CHECK(p != NULL);
  if (size) memcpy(p, data, size);
  return p;
}

static void base64_as_text(const char *in, size_t len) {
  size_t cap = len / 4 * 3;
  unsigned char *out = malloc(cap ? cap : 1);
  CHECK(out != NULL);
  size_t out_len = 0;
  int rc = lsmtp_base64_decode(out, cap, &out_len, in, len);
  CHECK(rc == LSMTP_OK || rc == LSMTP_ERR_SYNTAX);
  if (rc == LSMTP_OK) {
    CHECK(out_len <= cap);
    size_t n = lsmtp_base64_encode(NULL, 0, out, out_len);
    char *again = malloc(n + 1);
    CHECK(again != NULL);
    CHECK(lsmtp_base64_encode(again, n + 1, out, out_len) == n);
    if (len == 1) CHECK(in[0] == '=' && n == 0); /* the empty SASL response */
    else CHECK(n == len && memcmp(again, in, len) == 0);
    free(again);
    if (out_len) {
      size_t need = 0;
      CHECK(lsmtp_base64_decode(out, out_len - 1, &need, in, len) == LSMTP_ERR_TOO_LONG);
      CHECK(need == out_len);
    }
  }
  free(out);
}

static void base64_as_data(const char *in, size_t len) {
  size_t n = lsmtp_base64_encode(NULL, 0, in, len);
  CHECK(n == LSMTP_BASE64_ENCODED_LEN(len));
  char *enc = malloc(n ? n : 1);
  CHECK(enc != NULL);
  CHECK(lsmtp_base64_encode(enc, n, in, len) == n);
  char *dec = malloc(len ? len : 1);
  CHECK(dec != NULL);
  size_t dec_len = 0;
  CHECK(lsmtp_base64_decode(dec, len, &dec_len, enc, n) == LSMTP_OK);
  CHECK(dec_len == len && (len == 0 || memcmp(dec, in, len) == 0));
  free(dec);
  free(enc);
}

static void xtext_as_text(const char *in, size_t len) {
  char *out = malloc(len ? len : 1);
  CHECK(out != NULL);
  size_t out_len = 0;
  int rc = lsmtp_xtext_decode(out, len, &out_len, in, len);
  CHECK(rc == LSMTP_OK || rc == LSMTP_ERR_SYNTAX);
  CHECK(lsmtp_xtext_check(in, len) == rc);
  if (rc == LSMTP_OK) {
    CHECK(out_len <= len);
    size_t n = lsmtp_xtext_encode(NULL, 0, out, out_len);
    char *enc = malloc(n ? n : 1);
    CHECK(enc != NULL);
    CHECK(lsmtp_xtext_encode(enc, n, out, out_len) == n);
    /* canonical encoding is never longer than the input */
    CHECK(n <= len);
    char *dec = malloc(out_len ? out_len : 1);
    CHECK(dec != NULL);
    size_t dec_len = 0;
    CHECK(lsmtp_xtext_decode(dec, out_len, &dec_len, enc, n) == LSMTP_OK);
    CHECK(dec_len == out_len && (out_len == 0 || memcmp(dec, out, out_len) == 0));
    free(dec);
    free(enc);
  }
  free(out);
}

static void xtext_as_data(const char *in, size_t len) {
  size_t n = lsmtp_xtext_encode(NULL, 0, in, len);
  char *enc = malloc(n ? n : 1);
  CHECK(enc != NULL);
  CHECK(lsmtp_xtext_encode(enc, n, in, len) == n);
  CHECK(lsmtp_xtext_check(enc, n) == LSMTP_OK);
  char *dec = malloc(len ? len : 1);
  CHECK(dec != NULL);
  size_t dec_len = 0;
  CHECK(lsmtp_xtext_decode(dec, len, &dec_len, enc, n) == LSMTP_OK);
  CHECK(dec_len == len && (len == 0 || memcmp(dec, in, len) == 0));
  free(dec);
  free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *in = copy(data, size);
  base64_as_text(in, size);
  base64_as_data(in, size);
  xtext_as_text(in, size);
  xtext_as_data(in, size);
  free(in);
  return 0;
}
