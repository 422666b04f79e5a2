/* xtext (RFC 3461 §4), the encoding of DSN ORCPT/ENVID values and of the
 * AUTH= parameter of MAIL (RFC 4954 §5):
 *   xtext   = *( xchar / hexchar )
 *   xchar   = "!".."~" except "+" and "="
 *   hexchar = "+" 2( DIGIT / "A".."F" )
 * Lower-case hex is rejected as the grammar says; an escape of a byte that
 * could have been literal ("+41") is accepted, as the grammar allows. */
#include "internal.h"

static int is_xchar(unsigned char c) { return c >= 33 && c <= 126 && c != '+' && c != '='; }

/* The value of an upper-case hex digit, or -1. */
static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Validates in[0..len); stores the decoded length. */
static int check(const char *in, size_t len, size_t *decoded_len) {
  const unsigned char *s = (const unsigned char *)in;
  size_t n = 0;
  for (size_t i = 0; i < len; n++) {
    if (s[i] == '+') {
      if (len - i < 3 || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
        return LSMTP_ERR_SYNTAX;
      i += 3;
    } else if (is_xchar(s[i])) {
      i++;
    } else {
      return LSMTP_ERR_SYNTAX;
    }
  }
  *decoded_len = n;
  return LSMTP_OK;
}

int lsmtp_xtext_check(const char *in, size_t len) {
  if (!in && len) return LSMTP_ERR_INVALID;
  size_t n;
  return check(in, len, &n);
}

int lsmtp_xtext_decode(char *out, size_t cap, size_t *out_len, const char *in,
                       size_t len) {
  if ((!in && len) || (!out && cap)) return LSMTP_ERR_INVALID;
  size_t need;
  int rc = check(in, len, &need);
  if (rc != LSMTP_OK) return rc;
  if (out_len) *out_len = need;
  if (need > cap) return LSMTP_ERR_TOO_LONG;
  size_t o = 0;
  for (size_t i = 0; i < len; o++) {
    if (in[i] == '+') {
      out[o] = (char)(hex_value((unsigned char)in[i + 1]) << 4 |
                      hex_value((unsigned char)in[i + 2]));
      i += 3;
    } else {
      out[o] = in[i++];
    }
  }
  if (cap > need) out[need] = '\0';
  return LSMTP_OK;
}

size_t lsmtp_xtext_encode(char *out, size_t cap, const char *in, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  if (!in) len = 0;
  const unsigned char *s = (const unsigned char *)in;
  size_t need = 0;
  for (size_t i = 0; i < len; i++) {
    size_t step = is_xchar(s[i]) ? 1 : 3;
    if (need > SIZE_MAX - step) return SIZE_MAX; /* cannot be represented */
    need += step;
  }
  if (!out || cap < need) {
    /* Too small: an empty string rather than a cut-off value. */
    if (out && cap) out[0] = '\0';
    return need;
  }
  char *p = out;
  for (size_t i = 0; i < len; i++) {
    if (is_xchar(s[i])) {
      *p++ = (char)s[i];
    } else {
      *p++ = '+';
      *p++ = hex[s[i] >> 4];
      *p++ = hex[s[i] & 15];
    }
  }
  if (cap > need) *p = '\0';
  return need;
}
