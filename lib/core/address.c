/* The RFC 5321 §4.1.2 address grammar: reverse- and forward-paths, domains,
 * address literals, with the RFC 6531 extensions (UTF-8 local parts and
 * U-labels) when the caller allows them. Nothing is allocated and nothing
 * is copied: results are slices of the input.
 *
 * Decisions:
 * - The grammar wins over RFC 3696 and habit: all-numeric labels are
 *   names, "::" stands for at least two zero groups, source-route domains
 *   may not be address literals, the Snum of IPv4 literals may have
 *   leading zeros.
 * - Every syntax or UTF-8 error in the path is reported before any length
 *   error, so a caller answering 501 vs 553 sees the more basic problem.
 * - A label longer than 63 octets is LSMTP_ERR_TOO_LONG, like the other
 *   RFC 5321 §4.5.3.1 limits. For a U-label the limit applies to its
 *   A-label ("xn--" + Punycode), which is what DNS carries.
 * - The local-part limit (64) counts the local part as written, quotes
 *   and backslashes included. A path without brackets (lenient) is
 *   measured as if it had them. */
#include "internal.h"

/* RFC 5322 atext (RFC 5321 Atom). */
static int is_atext(unsigned char c) {
  if (lsmtp__is_alpha(c) || lsmtp__is_digit(c)) return 1;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
  case '+': case '-': case '/': case '=': case '?': case '^': case '_':
  case '`': case '{': case '|': case '}': case '~':
    return 1;
  default:
    return 0;
  }
}

static int is_let_dig(unsigned char c) {
  return lsmtp__is_alpha(c) || lsmtp__is_digit(c);
}

static int is_hex(unsigned char c) {
  return lsmtp__is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence (RFC 3629 §4) starting at p,
 * or 0 when it is malformed, overlong, a surrogate, above U+10FFFF or cut
 * off by avail. Stores the code point in *cp. Shared with params.c. */
size_t lsmtp__utf8_seq(const unsigned char *p, size_t avail, uint32_t *cp) {
  if (avail == 0) return 0;
  unsigned c = p[0];
  unsigned lo = 0x80, hi = 0xBF;
  size_t n;
  uint32_t v;
  if (c < 0x80) {
    n = 1;
    v = c;
  } else if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0Fu;
    if (c == 0xE0) lo = 0xA0; /* overlong */
    if (c == 0xED) hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07u;
    if (c == 0xF0) lo = 0x90; /* overlong */
    if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
  }
  if (avail < n) return 0;
  for (size_t i = 1; i < n; i++) {
    unsigned b = p[i];
    if (b < lo || b > hi) return 0;
    lo = 0x80;
    hi = 0xBF;
    v = (v << 6) | (b & 0x3Fu);
  }
  if (cp) *cp = v;
  return n;
}

/* A byte >= 0x80 at s[0]: without SMTPUTF8 that is LSMTP_ERR_UTF8, and so
 * is malformed UTF-8; a well-formed sequence where the grammar has no room
 * for one (allowed == 0) is a syntax error. On success *n is its length. */
static int take_utf8(const char *s, size_t avail, unsigned flags, int allowed,
                     size_t *n) {
  if (!(flags & LSMTP_ADDR_SMTPUTF8)) return LSMTP_ERR_UTF8;
  *n = lsmtp__utf8_seq((const unsigned char *)s, avail, NULL);
  if (*n == 0) return LSMTP_ERR_UTF8;
  return allowed ? LSMTP_OK : LSMTP_ERR_SYNTAX;
}

/* ---- Punycode length (RFC 3492 §6.3), to measure a U-label's A-label ---- */

enum { PC_BASE = 36, PC_TMIN = 1, PC_TMAX = 26, PC_SKEW = 38, PC_DAMP = 700 };

static uint64_t punycode_adapt(uint64_t delta, uint64_t numpoints, int first) {
  delta = first ? delta / PC_DAMP : delta / 2;
  delta += delta / numpoints;
  uint64_t k = 0;
  while (delta > ((PC_BASE - PC_TMIN) * PC_TMAX) / 2) {
    delta /= PC_BASE - PC_TMIN;
    k += PC_BASE;
  }
  return k + (PC_BASE - PC_TMIN + 1) * delta / (delta + PC_SKEW);
}

/* Octets of "xn--" + Punycode of a well-formed UTF-8 label; anything above
 * 63 may be reported as 64. Only the length is computed. */
static size_t alabel_len(const char *s, size_t len) {
  /* "xn--" plus at least one output character per code point: a label of
   * more than 59 code points cannot fit, so 60 are enough to hold. */
  uint32_t cps[60];
  size_t n = 0, basic = 0;
  for (size_t i = 0; i < len;) {
    if (n == sizeof cps / sizeof cps[0]) return 64;
    uint32_t cp = 0;
    size_t k = lsmtp__utf8_seq((const unsigned char *)s + i, len - i, &cp);
    if (k == 0) return 64; /* cannot happen: the caller validated it */
    cps[n++] = cp;
    if (cp < 0x80) basic++;
    i += k;
  }
  size_t out = basic + (basic > 0 ? 1 : 0);
  uint64_t cur = 0x80, delta = 0, bias = 72;
  size_t h = basic;
  while (h < n) {
    uint64_t m = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
      if (cps[i] >= cur && cps[i] < m) m = cps[i];
    delta += (m - cur) * (uint64_t)(h + 1);
    cur = m;
    for (size_t i = 0; i < n; i++) {
      if (cps[i] < cur) delta++;
      if (cps[i] != cur) continue;
      uint64_t q = delta;
      for (uint64_t k = PC_BASE;; k += PC_BASE) {
        uint64_t t = k <= bias ? PC_TMIN : (k >= bias + PC_TMAX ? PC_TMAX : k - bias);
        if (q < t) break;
        out++;
        q = (q - t) / (PC_BASE - t);
      }
      out++;
      bias = punycode_adapt(delta, (uint64_t)h + 1, h == basic);
      delta = 0;
      h++;
    }
    delta++;
    cur++;
  }
  return out + 4;
}

/* ---- domains ---- */

/* Check s[0..len) as Domain = sub-domain *("." sub-domain) with LDH labels,
 * or U-labels under SMTPUTF8. Syntax and UTF-8 errors return at once; a
 * label above 63 octets or a domain above 255 sets *too_long and the scan
 * goes on. */
static int check_domain_name(const char *s, size_t len, unsigned flags,
                             int *too_long, unsigned char *has_utf8) {
  if (len == 0) return LSMTP_ERR_SYNTAX;
  size_t i = 0;
  for (;;) {
    size_t start = i;
    int non_ascii = 0;
    while (i < len && s[i] != '.') {
      unsigned char c = (unsigned char)s[i];
      if (c >= 0x80) {
        size_t n = 0;
        int rc = take_utf8(s + i, len - i, flags, 1, &n);
        if (rc != LSMTP_OK) return rc;
        non_ascii = 1;
        i += n;
        continue;
      }
      if (!is_let_dig(c) && c != '-') return LSMTP_ERR_SYNTAX;
      i++;
    }
    size_t label_len = i - start;
    if (label_len == 0) return LSMTP_ERR_SYNTAX; /* "a..b", ".a", "a." */
    if (s[start] == '-' || s[i - 1] == '-') return LSMTP_ERR_SYNTAX;
    if (non_ascii) {
      *has_utf8 = 1;
      if (alabel_len(s + start, label_len) > 63) *too_long = 1;
    } else if (label_len > 63) {
      *too_long = 1;
    }
    if (i == len) break;
    i++; /* the dot; an empty label after it is caught above */
  }
  if (len > LSMTP_MAX_DOMAIN) *too_long = 1;
  return LSMTP_OK;
}

/* Snum 3("." Snum), Snum = 1*3DIGIT with a value of 0..255. */
static int is_ipv4(const char *s, size_t len) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= len || s[i] != '.') return 0;
      i++;
    }
    size_t start = i;
    unsigned v = 0;
    while (i < len && i - start < 3 && lsmtp__is_digit((unsigned char)s[i]))
      v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == start || v > 255) return 0;
  }
  return i == len;
}

/* RFC 5321 IPv6-addr: IPv6-full, IPv6-comp, IPv6v4-full, IPv6v4-comp.
 * "::" stands for at least two groups, so a compressed form has at most 6
 * explicit groups (4 next to an IPv4 tail). */
static int is_ipv6(const char *s, size_t len) {
  size_t i = 0, groups = 0;
  int compressed = 0, v4 = 0;
  if (len >= 2 && s[0] == ':' && s[1] == ':') {
    compressed = 1;
    i = 2;
    if (i == len) return 1; /* "::" */
  }
  for (;;) {
    size_t start = i, end = i;
    while (end < len && s[end] != ':') end++;
    if (memchr(s + start, '.', end - start) != NULL) {
      /* An IPv4 tail must be the last element. */
      if (end != len || !is_ipv4(s + start, end - start)) return 0;
      v4 = 1;
      break;
    }
    if (end - start < 1 || end - start > 4) return 0;
    for (size_t k = start; k < end; k++)
      if (!is_hex((unsigned char)s[k])) return 0;
    groups++;
    i = end;
    if (i == len) break;
    i++; /* ':' */
    if (i < len && s[i] == ':') {
      if (compressed) return 0; /* a second "::" */
      compressed = 1;
      i++;
      if (i == len) break;
    } else if (i == len) {
      return 0; /* trailing single ':' */
    }
  }
  if (!compressed) return groups == (v4 ? 6u : 8u);
  return groups <= (v4 ? 4u : 6u);
}

/* Standardized-tag = Ldh-str: ALPHA / DIGIT / "-", ending in a Let-dig. */
static int is_ldh_str(const char *s, size_t len) {
  if (len == 0 || !is_let_dig((unsigned char)s[len - 1])) return 0;
  for (size_t i = 0; i < len; i++)
    if (!is_let_dig((unsigned char)s[i]) && s[i] != '-') return 0;
  return 1;
}

static int is_dcontent(unsigned char c) {
  return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* s[0..len) is "[...]" as a whole. */
static int check_literal(const char *s, size_t len, unsigned flags,
                         lsmtp_domain_kind *kind) {
  if (len < 2 || s[0] != '[' || s[len - 1] != ']') return LSMTP_ERR_SYNTAX;
  const char *c = s + 1;
  size_t clen = len - 2;
  /* Non-ASCII has no place in a literal, but say UTF-8 where it is the
   * reason, as everywhere else. */
  for (size_t i = 0; i < clen; i++) {
    if ((unsigned char)c[i] >= 0x80) {
      size_t n = 0;
      return take_utf8(c + i, clen - i, flags, 0, &n);
    }
  }
  if (clen >= 5 && lsmtp__ieq(c, "IPv6:", 5)) {
    /* "IPv6" is also an Ldh-str, but it names this form and no other. */
    if (!is_ipv6(c + 5, clen - 5)) return LSMTP_ERR_SYNTAX;
    *kind = LSMTP_DOMAIN_IPV6;
  } else if (is_ipv4(c, clen)) {
    *kind = LSMTP_DOMAIN_IPV4;
  } else {
    const char *colon = memchr(c, ':', clen);
    if (!colon) return LSMTP_ERR_SYNTAX;
    size_t tag_len = (size_t)(colon - c);
    if (!is_ldh_str(c, tag_len) || tag_len + 1 == clen) return LSMTP_ERR_SYNTAX;
    for (size_t i = tag_len + 1; i < clen; i++)
      if (!is_dcontent((unsigned char)c[i])) return LSMTP_ERR_SYNTAX;
    *kind = LSMTP_DOMAIN_GENERAL;
  }
  return len > LSMTP_MAX_DOMAIN ? LSMTP_ERR_TOO_LONG : LSMTP_OK;
}

int lsmtp_domain_check(const char *s, size_t len, unsigned flags,
                       lsmtp_domain_kind *kind) {
  if (kind) *kind = LSMTP_DOMAIN_NONE;
  if (!s && len) return LSMTP_ERR_INVALID;
  lsmtp_domain_kind k = LSMTP_DOMAIN_NAME;
  int rc;
  if (len > 0 && s[0] == '[') {
    rc = check_literal(s, len, flags, &k);
  } else {
    int too_long = 0;
    unsigned char utf8 = 0;
    rc = check_domain_name(s, len, flags, &too_long, &utf8);
    if (rc == LSMTP_OK && too_long) rc = LSMTP_ERR_TOO_LONG;
  }
  if (rc == LSMTP_OK && kind) *kind = k;
  return rc;
}

/* ---- paths ---- */

typedef struct addr_scan {
  const char *s;
  size_t len;
  size_t pos;
  unsigned flags;
  int too_long;          /* a length limit was exceeded (reported last) */
  unsigned char has_utf8;
} addr_scan;

/* Domain (a name, no literal) starting at sc->pos, as far as the name's
 * characters go; the caller checks what follows. */
static int scan_domain_name(addr_scan *sc) {
  size_t start = sc->pos;
  while (sc->pos < sc->len) {
    unsigned char c = (unsigned char)sc->s[sc->pos];
    if (!(is_let_dig(c) || c == '-' || c == '.' || c >= 0x80)) break;
    sc->pos++;
  }
  return check_domain_name(sc->s + start, sc->pos - start, sc->flags,
                           &sc->too_long, &sc->has_utf8);
}

/* Domain / address-literal after the "@" of a mailbox. */
static int scan_domain(addr_scan *sc, lsmtp_domain_kind *kind) {
  if (sc->pos < sc->len && sc->s[sc->pos] == '[') {
    const char *close = memchr(sc->s + sc->pos, ']', sc->len - sc->pos);
    if (!close) return LSMTP_ERR_SYNTAX;
    size_t lit_len = (size_t)(close - (sc->s + sc->pos)) + 1;
    int rc = check_literal(sc->s + sc->pos, lit_len, sc->flags, kind);
    if (rc == LSMTP_ERR_TOO_LONG) {
      sc->too_long = 1;
    } else if (rc != LSMTP_OK) {
      return rc;
    }
    sc->pos += lit_len;
    return LSMTP_OK;
  }
  *kind = LSMTP_DOMAIN_NAME;
  return scan_domain_name(sc);
}

/* A-d-l ":" = "@" Domain *("," "@" Domain) ":", kept nowhere (RFC 5321
 * §4.1.1.3: routes are accepted and ignored). */
static int skip_route(addr_scan *sc) {
  for (;;) {
    if (sc->pos >= sc->len || sc->s[sc->pos] != '@') return LSMTP_ERR_SYNTAX;
    sc->pos++;
    int rc = scan_domain_name(sc);
    if (rc != LSMTP_OK) return rc;
    if (sc->pos >= sc->len) return LSMTP_ERR_SYNTAX;
    char c = sc->s[sc->pos++];
    if (c == ':') return LSMTP_OK;
    if (c != ',') return LSMTP_ERR_SYNTAX;
  }
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE. */
static int scan_quoted(addr_scan *sc) {
  sc->pos++; /* opening quote */
  for (;;) {
    if (sc->pos >= sc->len) return LSMTP_ERR_SYNTAX;
    unsigned char c = (unsigned char)sc->s[sc->pos];
    if (c == '"') {
      sc->pos++;
      return LSMTP_OK;
    }
    if (c == '\\') {
      sc->pos++;
      if (sc->pos >= sc->len) return LSMTP_ERR_SYNTAX;
      c = (unsigned char)sc->s[sc->pos];
      if (c >= 0x80) {
        size_t n = 0; /* quoted-pairSMTP is ASCII only, even under RFC 6531 */
        return take_utf8(sc->s + sc->pos, sc->len - sc->pos, sc->flags, 0, &n);
      }
      if (c < 32 || c > 126) return LSMTP_ERR_SYNTAX;
      sc->pos++;
    } else if (c >= 0x80) {
      size_t n = 0;
      int rc = take_utf8(sc->s + sc->pos, sc->len - sc->pos, sc->flags, 1, &n);
      if (rc != LSMTP_OK) return rc;
      sc->has_utf8 = 1;
      sc->pos += n;
    } else if (c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126)) {
      sc->pos++;
    } else {
      return LSMTP_ERR_SYNTAX; /* controls, DEL */
    }
  }
}

/* Dot-string = Atom *("." Atom). */
static int scan_dot_string(addr_scan *sc) {
  for (;;) {
    size_t start = sc->pos;
    while (sc->pos < sc->len) {
      unsigned char c = (unsigned char)sc->s[sc->pos];
      if (c >= 0x80) {
        size_t n = 0;
        int rc = take_utf8(sc->s + sc->pos, sc->len - sc->pos, sc->flags, 1, &n);
        if (rc != LSMTP_OK) return rc;
        sc->has_utf8 = 1;
        sc->pos += n;
      } else if (is_atext(c)) {
        sc->pos++;
      } else {
        break;
      }
    }
    if (sc->pos == start) return LSMTP_ERR_SYNTAX; /* empty atom */
    if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
      sc->pos++;
      continue;
    }
    return LSMTP_OK;
  }
}

int lsmtp_path_parse(const char *s, size_t len, unsigned flags, int allow_null,
                     int allow_postmaster, lsmtp_path *out, size_t *used) {
  if (used) *used = 0;
  if (!out || (!s && len)) return LSMTP_ERR_INVALID;
  memset(out, 0, sizeof *out);

  addr_scan sc = {s, len, 0, flags, 0, 0};
  int bracketed = len > 0 && s[0] == '<';
  int had_route = 0;
  if (!bracketed && !(flags & LSMTP_ADDR_LENIENT_BRACKETS)) return LSMTP_ERR_SYNTAX;
  if (bracketed) {
    sc.pos = 1;
    if (len > 1 && s[1] == '>') {
      if (!allow_null) return LSMTP_ERR_SYNTAX;
      out->mailbox = out->local = out->domain = s + 1;
      out->is_null = 1;
      if (used) *used = 2;
      return LSMTP_OK;
    }
    if (len > 1 && s[1] == '@') {
      int rc = skip_route(&sc);
      if (rc != LSMTP_OK) return rc;
      had_route = 1;
    }
  }

  size_t mailbox_start = sc.pos;
  int quoted = sc.pos < len && s[sc.pos] == '"';
  int rc = quoted ? scan_quoted(&sc) : scan_dot_string(&sc);
  if (rc != LSMTP_OK) return rc;
  size_t local_end = sc.pos;

  lsmtp_domain_kind kind = LSMTP_DOMAIN_NONE;
  size_t domain_start = sc.pos;
  int postmaster = 0;
  if (sc.pos < len && s[sc.pos] == '@') {
    sc.pos++;
    domain_start = sc.pos;
    rc = scan_domain(&sc, &kind);
    if (rc != LSMTP_OK) return rc;
  } else {
    /* "<Postmaster>" is its own alternative of Forward-path: no route, no
     * quotes, and only where the caller takes it. */
    if (!allow_postmaster || had_route || quoted || local_end - mailbox_start != 10 ||
        !lsmtp__ieq(s + mailbox_start, "postmaster", 10))
      return LSMTP_ERR_SYNTAX;
    postmaster = 1;
  }
  size_t domain_end = sc.pos;

  if (bracketed) {
    if (sc.pos >= len || s[sc.pos] != '>') return LSMTP_ERR_SYNTAX;
    sc.pos++;
  }
  size_t path_len = bracketed ? sc.pos : sc.pos + 2;
  if (sc.too_long || local_end - mailbox_start > LSMTP_MAX_LOCAL_PART ||
      path_len > LSMTP_MAX_PATH)
    return LSMTP_ERR_TOO_LONG;

  out->mailbox = s + mailbox_start;
  out->mailbox_len = domain_end - mailbox_start;
  out->local = s + mailbox_start;
  out->local_len = local_end - mailbox_start;
  out->domain = s + domain_start;
  out->domain_len = domain_end - domain_start;
  out->domain_kind = kind;
  out->is_postmaster = (unsigned char)postmaster;
  out->is_quoted = (unsigned char)quoted;
  out->has_utf8 = sc.has_utf8;
  out->had_route = (unsigned char)had_route;
  if (used) *used = sc.pos;
  return LSMTP_OK;
}

size_t lsmtp_local_unquote(const char *local, size_t len, char *out, size_t cap) {
  if (!local) len = 0;
  size_t start = 0, end = len;
  int quoted = len >= 2 && local[0] == '"' && local[len - 1] == '"';
  if (quoted) {
    start = 1;
    end = len - 1;
  }
  size_t n = 0;
  for (size_t i = start; i < end; i++) {
    /* A backslash escapes the next character; one right before the closing
     * quote cannot come from the parser, so it is kept as written. */
    if (quoted && local[i] == '\\' && i + 1 < end) i++;
    if (out && n + 1 < cap) out[n] = local[i];
    n++;
  }
  if (out && cap > 0) out[n < cap ? n : cap - 1] = '\0';
  return n;
}
