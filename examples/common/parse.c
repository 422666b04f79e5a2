/* Strict number parsing for command-line options: strtoull accepts
 * signs, spaces and hex, which an option should not. */
#include "cli.h"

int cli_parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (!s || !*s) return -1;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (v > max) return -1;
  *out = v;
  return 0;
}

int cli_parse_size(const char *s, uint64_t max, uint64_t *out) {
  if (!s || !*s) return -1;
  char digits[32];
  size_t len = 0;
  while (s[len] >= '0' && s[len] <= '9') {
    if (len + 1 >= sizeof digits) return -1;
    digits[len] = s[len];
    len++;
  }
  digits[len] = '\0';
  unsigned shift = 0;
  switch (s[len]) {
    case '\0': break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: return -1;
  }
  if (shift && s[len + 1] != '\0') return -1;
  uint64_t v;
  if (cli_parse_u64(digits, UINT64_MAX >> shift, &v) != 0) return -1;
  v <<= shift;
  if (v > max) return -1;
  *out = v;
  return 0;
}
