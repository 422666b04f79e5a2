/* BDAT framing (RFC 3030 §2): parsing the "chunk-size [LAST]" argument a
 * server receives, and formatting the command line a client sends.
 *
 * The grammar is exact: 1*DIGIT, then optionally one SP and "LAST" in any
 * case. Leading zeros are digits like any other; a size that does not fit
 * in uint64_t, a sign, extra spaces or anything after LAST is a syntax
 * error, because a lenient size parser is how a peer desynchronises the
 * chunk framing. */
#include "internal.h"

int lsmtp_bdat_parse(const char *arg, size_t len, uint64_t *size, int *last) {
  if (!arg || len == 0) return LSMTP_ERR_SYNTAX;
  uint64_t value = 0;
  size_t i = 0;
  while (i < len && lsmtp__is_digit((unsigned char)arg[i])) {
    unsigned digit = (unsigned)(arg[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return LSMTP_ERR_SYNTAX;
    value = value * 10 + digit;
    i++;
  }
  if (i == 0) return LSMTP_ERR_SYNTAX;

  int is_last = 0;
  if (i < len) {
    /* Exactly " LAST" must remain. */
    if (len - i != 5 || arg[i] != ' ' || !lsmtp__ieq(arg + i + 1, "LAST", 4))
      return LSMTP_ERR_SYNTAX;
    is_last = 1;
  }
  if (size) *size = value;
  if (last) *last = is_last;
  return LSMTP_OK;
}

size_t lsmtp_bdat_format(char *buf, size_t cap, uint64_t size, int last) {
  /* Digits come out least significant first; UINT64_MAX has 20. */
  char digits[20];
  size_t ndigits = 0;
  do {
    digits[ndigits++] = (char)('0' + (int)(size % 10));
    size /= 10;
  } while (size);

  static const char verb[] = "BDAT ";
  static const char last_kw[] = " LAST";
  const size_t need = (sizeof verb - 1) + ndigits + (last ? sizeof last_kw - 1 : 0) + 2;
  if (!buf || cap < need) {
    /* Too small: an empty string rather than a truncated command that a
     * careless caller might send. */
    if (buf && cap) buf[0] = '\0';
    return need;
  }
  char *p = buf;
  memcpy(p, verb, sizeof verb - 1);
  p += sizeof verb - 1;
  while (ndigits) *p++ = digits[--ndigits];
  if (last) {
    memcpy(p, last_kw, sizeof last_kw - 1);
    p += sizeof last_kw - 1;
  }
  *p++ = '\r';
  *p++ = '\n';
  if (cap > need) *p = '\0';
  return need;
}
