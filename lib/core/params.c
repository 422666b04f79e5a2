/* The arguments of MAIL and RCPT: "FROM:" / "TO:", the path, and the ESMTP
 * parameters (RFC 5321 §4.1.2 esmtp-param) this library knows: SIZE
 * (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), RET, ENVID,
 * NOTIFY, ORCPT (RFC 3461, RFC 6533), AUTH (RFC 4954), REQUIRETLS
 * (RFC 8689). Whether the session offers an extension is the session's
 * business: this file only says whether the words are well formed.
 *
 * Error classes: a parameter that is not an esmtp-param at all (empty
 * keyword, "=" with no value, a control character) is LSMTP_ERR_SYNTAX
 * (501); a well-formed parameter with an unknown keyword or a value its
 * RFC does not allow is LSMTP_ERR_PARAM (555); a keyword given twice is
 * LSMTP_ERR_DUP_PARAM. Parameters are checked left to right and the first
 * problem is reported. Several spaces between parameters, and trailing
 * spaces, are accepted: they are harmless and common. */
#include "internal.h"

/* RFC 3461 §4.4. */
#define ENVID_MAX 100

typedef struct esmtp_param {
  const char *kw;
  size_t kw_len;
  const char *val; /* NULL when the keyword has no "=" */
  size_t val_len;
} esmtp_param;

static int kw_is(const esmtp_param *p, const char *name) {
  size_t n = strlen(name);
  return p->kw_len == n && lsmtp__ieq(p->kw, name, n);
}

static int val_is(const esmtp_param *p, const char *word) {
  size_t n = strlen(word);
  return p->val_len == n && lsmtp__ieq(p->val, word, n);
}

/* "FROM:" / "TO:", the optional lenient spaces, the path, and then either
 * the end or a space. *pos gets where the parameters start. */
static int parse_head(const char *arg, size_t len, const char *word,
                      unsigned flags, int allow_null, int allow_postmaster,
                      lsmtp_path *path, size_t *pos) {
  size_t wlen = strlen(word);
  memset(path, 0, sizeof *path);
  if (len < wlen || !lsmtp__ieq(arg, word, wlen)) return LSMTP_ERR_SYNTAX;
  size_t p = wlen;
  if (flags & LSMTP_ADDR_LENIENT_SPACE)
    while (p < len && arg[p] == ' ') p++;
  size_t used = 0;
  int rc = lsmtp_path_parse(arg + p, len - p, flags, allow_null,
                            allow_postmaster, path, &used);
  if (rc != LSMTP_OK) return rc;
  p += used;
  if (p < len && arg[p] != ' ') {
    memset(path, 0, sizeof *path);
    return LSMTP_ERR_SYNTAX; /* "<a@b>x" */
  }
  *pos = p;
  return LSMTP_OK;
}

/* The next esmtp-param at *pos (which is the end or a space). Returns 1
 * with *p filled, 0 at the end, or an error. esmtp-keyword = (ALPHA /
 * DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126),
 * plus UTF-8 under SMTPUTF8 (RFC 6531 §3.3). */
static int next_param(const char *arg, size_t len, size_t *pos, unsigned flags,
                      esmtp_param *p) {
  size_t i = *pos;
  while (i < len && arg[i] == ' ') i++;
  *pos = i;
  if (i == len) return 0;
  if (!lsmtp__is_alpha((unsigned char)arg[i]) && !lsmtp__is_digit((unsigned char)arg[i]))
    return LSMTP_ERR_SYNTAX;
  p->kw = arg + i;
  while (i < len && (lsmtp__is_alpha((unsigned char)arg[i]) ||
                     lsmtp__is_digit((unsigned char)arg[i]) || arg[i] == '-'))
    i++;
  p->kw_len = (size_t)(arg + i - p->kw);
  p->val = NULL;
  p->val_len = 0;
  if (i < len && arg[i] == '=') {
    i++;
    p->val = arg + i;
    while (i < len && arg[i] != ' ') {
      unsigned char c = (unsigned char)arg[i];
      if (c >= 0x80) {
        if (!(flags & LSMTP_ADDR_SMTPUTF8)) return LSMTP_ERR_UTF8;
        size_t n = lsmtp__utf8_seq((const unsigned char *)arg + i, len - i, NULL);
        if (n == 0) return LSMTP_ERR_UTF8;
        i += n;
        continue;
      }
      if (c < 33 || c == '=' || c > 126) return LSMTP_ERR_SYNTAX;
      i++;
    }
    p->val_len = (size_t)(arg + i - p->val);
    if (p->val_len == 0) return LSMTP_ERR_SYNTAX;
  }
  if (i < len && arg[i] != ' ') return LSMTP_ERR_SYNTAX;
  *pos = i;
  return 1;
}

/* SIZE=1*20DIGIT, and it must fit in uint64_t. */
static int parse_size(const esmtp_param *p, uint64_t *out) {
  if (!p->val || p->val_len > 20) return LSMTP_ERR_PARAM;
  uint64_t v = 0;
  for (size_t i = 0; i < p->val_len; i++) {
    unsigned char c = (unsigned char)p->val[i];
    if (!lsmtp__is_digit(c)) return LSMTP_ERR_PARAM;
    unsigned d = (unsigned)(c - '0');
    if (v > (UINT64_MAX - d) / 10) return LSMTP_ERR_PARAM;
    v = v * 10 + d;
  }
  *out = v;
  return LSMTP_OK;
}

static int check_xtext(const esmtp_param *p) {
  if (!p->val) return LSMTP_ERR_PARAM;
  return lsmtp_xtext_check(p->val, p->val_len) == LSMTP_OK ? LSMTP_OK : LSMTP_ERR_PARAM;
}

/* Which bit of the "seen" set a keyword owns; duplicates are found by it. */
enum {
  SEEN_SIZE = 1 << 0, SEEN_BODY = 1 << 1, SEEN_SMTPUTF8 = 1 << 2,
  SEEN_RET = 1 << 3, SEEN_ENVID = 1 << 4, SEEN_AUTH = 1 << 5,
  SEEN_REQUIRETLS = 1 << 6, SEEN_NOTIFY = 1 << 7, SEEN_ORCPT = 1 << 8
};

static int mark_seen(unsigned *seen, unsigned bit) {
  if (*seen & bit) return LSMTP_ERR_DUP_PARAM;
  *seen |= bit;
  return LSMTP_OK;
}

static int mail_param(const esmtp_param *p, unsigned *seen, lsmtp_mail_params *mp) {
  int rc;
  if (kw_is(p, "SIZE")) {
    if ((rc = mark_seen(seen, SEEN_SIZE)) != LSMTP_OK) return rc;
    if ((rc = parse_size(p, &mp->size)) != LSMTP_OK) return rc;
    mp->has_size = 1;
  } else if (kw_is(p, "BODY")) {
    if ((rc = mark_seen(seen, SEEN_BODY)) != LSMTP_OK) return rc;
    if (!p->val) return LSMTP_ERR_PARAM;
    if (val_is(p, "7BIT")) mp->body = LSMTP_BODY_7BIT;
    else if (val_is(p, "8BITMIME")) mp->body = LSMTP_BODY_8BITMIME;
    else if (val_is(p, "BINARYMIME")) mp->body = LSMTP_BODY_BINARYMIME;
    else return LSMTP_ERR_PARAM;
  } else if (kw_is(p, "SMTPUTF8")) {
    if ((rc = mark_seen(seen, SEEN_SMTPUTF8)) != LSMTP_OK) return rc;
    if (p->val) return LSMTP_ERR_PARAM;
    mp->smtputf8 = 1;
  } else if (kw_is(p, "RET")) {
    if ((rc = mark_seen(seen, SEEN_RET)) != LSMTP_OK) return rc;
    if (!p->val) return LSMTP_ERR_PARAM;
    if (val_is(p, "FULL")) mp->ret = LSMTP_RET_FULL;
    else if (val_is(p, "HDRS")) mp->ret = LSMTP_RET_HDRS;
    else return LSMTP_ERR_PARAM;
  } else if (kw_is(p, "ENVID")) {
    if ((rc = mark_seen(seen, SEEN_ENVID)) != LSMTP_OK) return rc;
    if ((rc = check_xtext(p)) != LSMTP_OK) return rc;
    if (p->val_len > ENVID_MAX) return LSMTP_ERR_PARAM;
    mp->envid.ptr = p->val;
    mp->envid.len = p->val_len;
  } else if (kw_is(p, "AUTH")) {
    /* RFC 4954 §5: xtext, or "<>" for "no identity" (also valid xtext). */
    if ((rc = mark_seen(seen, SEEN_AUTH)) != LSMTP_OK) return rc;
    if ((rc = check_xtext(p)) != LSMTP_OK) return rc;
    mp->auth.ptr = p->val;
    mp->auth.len = p->val_len;
  } else if (kw_is(p, "REQUIRETLS")) {
    if ((rc = mark_seen(seen, SEEN_REQUIRETLS)) != LSMTP_OK) return rc;
    if (p->val) return LSMTP_ERR_PARAM;
    mp->requiretls = 1;
  } else {
    return LSMTP_ERR_PARAM;
  }
  return LSMTP_OK;
}

int lsmtp_mail_parse(const char *arg, size_t len, unsigned flags,
                     lsmtp_path *path, lsmtp_mail_params *params) {
  if ((!arg && len) || !path || !params) return LSMTP_ERR_INVALID;
  memset(params, 0, sizeof *params);
  size_t pos = 0;
  int rc = parse_head(arg, len, "FROM:", flags, 1, 0, path, &pos);
  if (rc != LSMTP_OK) return rc;
  unsigned seen = 0;
  esmtp_param p;
  while ((rc = next_param(arg, len, &pos, flags, &p)) == 1)
    if ((rc = mail_param(&p, &seen, params)) != LSMTP_OK) break;
  return rc;
}

/* NOTIFY = "NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY") (RFC 3461 §4.1). */
static int parse_notify(const esmtp_param *p, unsigned *out) {
  if (!p->val) return LSMTP_ERR_PARAM;
  unsigned bits = 0;
  size_t i = 0;
  for (;;) {
    const char *item = p->val + i;
    size_t n = 0;
    while (i + n < p->val_len && p->val[i + n] != ',') n++;
    if (n == 5 && lsmtp__ieq(item, "NEVER", 5)) bits |= LSMTP_NOTIFY_NEVER;
    else if (n == 7 && lsmtp__ieq(item, "SUCCESS", 7)) bits |= LSMTP_NOTIFY_SUCCESS;
    else if (n == 7 && lsmtp__ieq(item, "FAILURE", 7)) bits |= LSMTP_NOTIFY_FAILURE;
    else if (n == 5 && lsmtp__ieq(item, "DELAY", 5)) bits |= LSMTP_NOTIFY_DELAY;
    else return LSMTP_ERR_PARAM; /* also the empty item of "a,,b" or "a," */
    i += n;
    if (i == p->val_len) break;
    i++; /* ',' */
  }
  if ((bits & LSMTP_NOTIFY_NEVER) && bits != LSMTP_NOTIFY_NEVER) return LSMTP_ERR_PARAM;
  *out = bits;
  return LSMTP_OK;
}

static int hex_value(unsigned char c) {
  if (lsmtp__is_digit(c)) return c - '0';
  c = (unsigned char)lsmtp__to_lower(c);
  return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* RFC 5322 atext, for ORCPT's addr-type. */
static int is_atext(unsigned char c) {
  return lsmtp__is_alpha(c) || lsmtp__is_digit(c) ||
         (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* ORCPT address of addr-type "utf-8" (RFC 6533 §3): utf-8-addr-xtext, or
 * under SMTPUTF8 utf-8-addr-unitext, i.e. QCHAR, "\x{HEXPOINT}" and (with
 * SMTPUTF8) raw UTF-8. HEXPOINT is checked for what it means (a scalar
 * value written without leading zeros; ASCII only for characters that
 * QCHAR excludes) rather than by its long ABNF. */
static int check_utf8_addr(const char *s, size_t len, unsigned flags) {
  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      size_t n = (flags & LSMTP_ADDR_SMTPUTF8)
                     ? lsmtp__utf8_seq((const unsigned char *)s + i, len - i, NULL)
                     : 0;
      if (n == 0) return LSMTP_ERR_PARAM;
      i += n;
    } else if (c == '\\') {
      if (len - i < 5 || s[i + 1] != 'x' || s[i + 2] != '{') return LSMTP_ERR_PARAM;
      size_t k = i + 3;
      uint32_t v = 0;
      while (k < len && k - (i + 3) < 6 && hex_value((unsigned char)s[k]) >= 0)
        v = v * 16 + (uint32_t)hex_value((unsigned char)s[k++]);
      size_t digits = k - (i + 3);
      if (k >= len || s[k] != '}' || digits < 2 || (digits > 2 && s[i + 3] == '0'))
        return LSMTP_ERR_PARAM;
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return LSMTP_ERR_PARAM;
      if (v == 0 || (v < 0x80 && (digits != 2 || (v > 32 && v < 127 && v != '+' &&
                                                   v != '=' && v != '\\'))))
        return LSMTP_ERR_PARAM; /* a QCHAR must be written as itself */
      i = k + 1;
    } else if (c > 32 && c < 127 && c != '+' && c != '=') {
      i++;
    } else {
      return LSMTP_ERR_PARAM;
    }
  }
  return LSMTP_OK;
}

/* ORCPT = addr-type ";" xtext, addr-type = atom (RFC 3461 §4.2). */
static int parse_orcpt(const esmtp_param *p, unsigned flags, lsmtp_rcpt_params *rp) {
  if (!p->val) return LSMTP_ERR_PARAM;
  const char *semi = memchr(p->val, ';', p->val_len);
  if (!semi || semi == p->val) return LSMTP_ERR_PARAM;
  size_t type_len = (size_t)(semi - p->val);
  for (size_t i = 0; i < type_len; i++) {
    unsigned char c = (unsigned char)p->val[i];
    if (!is_atext(c)) return LSMTP_ERR_PARAM;
  }
  const char *addr = semi + 1;
  size_t addr_len = p->val_len - type_len - 1;
  if (addr_len == 0) return LSMTP_ERR_PARAM;
  int rc;
  if (type_len == 5 && lsmtp__ieq(p->val, "utf-8", 5))
    rc = check_utf8_addr(addr, addr_len, flags);
  else
    rc = lsmtp_xtext_check(addr, addr_len) == LSMTP_OK ? LSMTP_OK : LSMTP_ERR_PARAM;
  if (rc != LSMTP_OK) return rc;
  rp->orcpt_type.ptr = p->val;
  rp->orcpt_type.len = type_len;
  rp->orcpt_addr.ptr = addr;
  rp->orcpt_addr.len = addr_len;
  return LSMTP_OK;
}

static int rcpt_param(const esmtp_param *p, unsigned flags, unsigned *seen,
                      lsmtp_rcpt_params *rp) {
  int rc;
  if (kw_is(p, "NOTIFY")) {
    if ((rc = mark_seen(seen, SEEN_NOTIFY)) != LSMTP_OK) return rc;
    return parse_notify(p, &rp->notify);
  }
  if (kw_is(p, "ORCPT")) {
    if ((rc = mark_seen(seen, SEEN_ORCPT)) != LSMTP_OK) return rc;
    return parse_orcpt(p, flags, rp);
  }
  return LSMTP_ERR_PARAM;
}

int lsmtp_rcpt_parse(const char *arg, size_t len, unsigned flags,
                     lsmtp_path *path, lsmtp_rcpt_params *params) {
  if ((!arg && len) || !path || !params) return LSMTP_ERR_INVALID;
  memset(params, 0, sizeof *params);
  size_t pos = 0;
  int rc = parse_head(arg, len, "TO:", flags, 0, 1, path, &pos);
  if (rc != LSMTP_OK) return rc;
  unsigned seen = 0;
  esmtp_param p;
  while ((rc = next_param(arg, len, &pos, flags, &p)) == 1)
    if ((rc = rcpt_param(&p, flags, &seen, params)) != LSMTP_OK) break;
  return rc;
}
