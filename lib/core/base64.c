/* Base64 (RFC 4648 §4) for SASL exchanges (RFC 4954).
 *
 * Decoding is strict on purpose: only the standard alphabet, padding
 * required, no whitespace, and the unused bits of the last group must be
 * zero (RFC 4648 §3.5). That makes the encoding canonical: each byte
 * string has exactly one accepted text, so two layers can never disagree
 * about what a credential decodes to. */
#include "internal.h"

static const char alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of an alphabet character, or -1. */
static int sextet(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

size_t lsmtp_base64_encode(char *out, size_t cap, const void *in, size_t len) {
  if (len > (SIZE_MAX - 2) / 4 * 3) return SIZE_MAX; /* cannot be represented */
  const size_t need = LSMTP_BASE64_ENCODED_LEN(len);
  if (!out || cap < need) return need;
  const unsigned char *src = in;
  char *p = out;
  size_t i = 0;
  for (; len - i >= 3; i += 3) {
    uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
    *p++ = alphabet[v >> 18];
    *p++ = alphabet[(v >> 12) & 63];
    *p++ = alphabet[(v >> 6) & 63];
    *p++ = alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)src[i] << 16;
    *p++ = alphabet[v >> 18];
    *p++ = alphabet[(v >> 12) & 63];
    *p++ = '=';
    *p++ = '=';
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
    *p++ = alphabet[v >> 18];
    *p++ = alphabet[(v >> 12) & 63];
    *p++ = alphabet[(v >> 6) & 63];
    *p++ = '=';
  }
  if (cap > need) *p = '\0';
  return need;
}

/* Validates in[0..len) and, when dst is not NULL, decodes into it (the
 * caller has checked the room). Returns LSMTP_OK or LSMTP_ERR_SYNTAX. */
static int decode(unsigned char *dst, const char *in, size_t len) {
  const unsigned char *s = (const unsigned char *)in;
  for (size_t i = 0; i < len; i += 4) {
    const int final = (i + 4 == len);
    int a = sextet(s[i]), b = sextet(s[i + 1]);
    if (a < 0 || b < 0) return LSMTP_ERR_SYNTAX;
    int c, d;
    if (final && s[i + 2] == '=') {
      /* "xx==": one byte; b's low four bits are unused and must be 0. */
      if (s[i + 3] != '=' || (b & 15)) return LSMTP_ERR_SYNTAX;
      if (dst) *dst++ = (unsigned char)(a << 2 | b >> 4);
      return LSMTP_OK;
    }
    c = sextet(s[i + 2]);
    if (c < 0) return LSMTP_ERR_SYNTAX;
    if (final && s[i + 3] == '=') {
      /* "xxx=": two bytes; c's low two bits are unused and must be 0. */
      if (c & 3) return LSMTP_ERR_SYNTAX;
      if (dst) {
        *dst++ = (unsigned char)(a << 2 | b >> 4);
        *dst++ = (unsigned char)((b & 15) << 4 | c >> 2);
      }
      return LSMTP_OK;
    }
    d = sextet(s[i + 3]);
    if (d < 0) return LSMTP_ERR_SYNTAX;
    if (dst) {
      *dst++ = (unsigned char)(a << 2 | b >> 4);
      *dst++ = (unsigned char)((b & 15) << 4 | c >> 2);
      *dst++ = (unsigned char)((c & 3) << 6 | d);
    }
  }
  return LSMTP_OK;
}

int lsmtp_base64_decode(void *out, size_t cap, size_t *out_len, const char *in,
                        size_t len) {
  if ((!in && len) || (!out && cap)) return LSMTP_ERR_INVALID;
  /* RFC 4954 §4: a lone "=" is an empty initial response. */
  if (len == 0 || (len == 1 && in[0] == '=')) {
    if (out_len) *out_len = 0;
    return LSMTP_OK;
  }
  if (len % 4) return LSMTP_ERR_SYNTAX;
  size_t need = len / 4 * 3;
  if (in[len - 1] == '=') need -= (in[len - 2] == '=') ? 2 : 1;
  if (need > cap) {
    /* Report bad input as bad input even when the buffer is also small. */
    int rc = decode(NULL, in, len);
    if (rc != LSMTP_OK) return rc;
    if (out_len) *out_len = need;
    return LSMTP_ERR_TOO_LONG;
  }
  int rc = decode(out, in, len);
  if (rc == LSMTP_OK && out_len) *out_len = need;
  return rc;
}
