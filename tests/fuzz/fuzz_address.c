/* Fuzz the address grammar and the MAIL/RCPT parameter parsers. The first
 * byte chooses the flags (bits 0-2), what to call (bits 3-4: path, MAIL,
 * RCPT, domain) and, for a bare path, allow_null / allow_postmaster (bits
 * 5-6). Beyond "no crash, no over-read", every success is checked: slices
 * lie inside the input, lengths are within RFC 5321's limits, no 8-bit
 * byte passes without SMTPUTF8, and re-parsing what was accepted gives the
 * same answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) __builtin_trap();                                         \
  } while (0)

static int inside(const char *p, size_t n, const char *base, size_t len) {
  return p != NULL && p >= base && (size_t)(p - base) <= len &&
         n <= len - (size_t)(p - base);
}

static int has_8bit(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] >= 0x80) return 1;
  return 0;
}

static void check_path(const lsmtp_path *p, const char *s, size_t len,
                       unsigned flags) {
  CHECK(inside(p->mailbox, p->mailbox_len, s, len));
  CHECK(inside(p->local, p->local_len, s, len));
  CHECK(inside(p->domain, p->domain_len, s, len));
  CHECK(p->local_len <= LSMTP_MAX_LOCAL_PART);
  CHECK(p->domain_len <= LSMTP_MAX_DOMAIN);
  CHECK(p->mailbox_len + 2 <= LSMTP_MAX_PATH);
  CHECK(!(p->is_null && p->is_postmaster));
  if (!(flags & LSMTP_ADDR_SMTPUTF8)) CHECK(!has_8bit(p->mailbox, p->mailbox_len) && !p->has_utf8);
  if (p->is_null) {
    CHECK(p->mailbox_len == 0 && p->domain_kind == LSMTP_DOMAIN_NONE);
    return;
  }
  CHECK(p->local_len > 0);
  if (p->is_postmaster) {
    CHECK(p->domain_kind == LSMTP_DOMAIN_NONE && p->domain_len == 0);
    CHECK(p->local_len == 10 && lsmtp__ieq(p->local, "postmaster", 10));
    return;
  }
  CHECK(p->domain_kind != LSMTP_DOMAIN_NONE);
  CHECK(p->mailbox_len == p->local_len + 1 + p->domain_len);
  CHECK(p->local[p->local_len] == '@');
  /* The domain stands on its own. */
  lsmtp_domain_kind kind = LSMTP_DOMAIN_NONE;
  CHECK(lsmtp_domain_check(p->domain, p->domain_len, flags, &kind) == LSMTP_OK);
  CHECK(kind == p->domain_kind);
  CHECK(p->is_quoted == (p->local[0] == '"'));
  size_t n = lsmtp_local_unquote(p->local, p->local_len, NULL, 0);
  CHECK(n <= p->local_len);
  char buf[LSMTP_MAX_LOCAL_PART + 1];
  CHECK(lsmtp_local_unquote(p->local, p->local_len, buf, sizeof buf) == n);
  CHECK(buf[n] == '\0');
}

static void fuzz_path(const char *s, size_t len, unsigned flags, int allow_null,
                      int allow_pm) {
  lsmtp_path p;
  size_t used = 12345;
  int rc = lsmtp_path_parse(s, len, flags, allow_null, allow_pm, &p, &used);
  if (rc != LSMTP_OK) {
    CHECK(rc == LSMTP_ERR_SYNTAX || rc == LSMTP_ERR_TOO_LONG || rc == LSMTP_ERR_UTF8);
    CHECK(used == 0 && p.mailbox == NULL);
    return;
  }
  CHECK(used > 0 && used <= len);
  CHECK(used <= LSMTP_MAX_PATH);
  CHECK(!p.is_null || allow_null);
  CHECK(!p.is_postmaster || allow_pm);
  check_path(&p, s, len, flags);
  /* What was accepted is accepted again on its own, the same way. */
  lsmtp_path q;
  size_t used2 = 0;
  CHECK(lsmtp_path_parse(s, used, flags, allow_null, allow_pm, &q, &used2) == LSMTP_OK);
  CHECK(used2 == used && q.mailbox == p.mailbox && q.mailbox_len == p.mailbox_len &&
        q.domain_kind == p.domain_kind);
}

static void fuzz_mail(const char *s, size_t len, unsigned flags) {
  lsmtp_path p;
  lsmtp_mail_params mp;
  int rc = lsmtp_mail_parse(s, len, flags, &p, &mp);
  if (rc != LSMTP_OK) {
    CHECK(rc < 0 && rc != LSMTP_ERR_INVALID);
    return;
  }
  CHECK(!p.is_postmaster);
  check_path(&p, s, len, flags);
  if (mp.envid.ptr) {
    CHECK(inside(mp.envid.ptr, mp.envid.len, s, len));
    CHECK(mp.envid.len >= 1 && mp.envid.len <= 100);
    CHECK(lsmtp_xtext_check(mp.envid.ptr, mp.envid.len) == LSMTP_OK);
  }
  if (mp.auth.ptr) {
    CHECK(inside(mp.auth.ptr, mp.auth.len, s, len));
    CHECK(lsmtp_xtext_check(mp.auth.ptr, mp.auth.len) == LSMTP_OK);
  }
  CHECK(mp.body <= LSMTP_BODY_BINARYMIME && mp.ret <= LSMTP_RET_HDRS);
}

static void fuzz_rcpt(const char *s, size_t len, unsigned flags) {
  lsmtp_path p;
  lsmtp_rcpt_params rp;
  int rc = lsmtp_rcpt_parse(s, len, flags, &p, &rp);
  if (rc != LSMTP_OK) {
    CHECK(rc < 0 && rc != LSMTP_ERR_INVALID);
    return;
  }
  CHECK(!p.is_null);
  check_path(&p, s, len, flags);
  CHECK(rp.notify <= 0xF);
  CHECK(!(rp.notify & LSMTP_NOTIFY_NEVER) || rp.notify == LSMTP_NOTIFY_NEVER);
  CHECK((rp.orcpt_type.ptr == NULL) == (rp.orcpt_addr.ptr == NULL));
  if (rp.orcpt_type.ptr) {
    CHECK(inside(rp.orcpt_type.ptr, rp.orcpt_type.len, s, len) && rp.orcpt_type.len > 0);
    CHECK(inside(rp.orcpt_addr.ptr, rp.orcpt_addr.len, s, len) && rp.orcpt_addr.len > 0);
    CHECK(rp.orcpt_type.ptr[rp.orcpt_type.len] == ';');
  }
}

static void fuzz_domain(const char *s, size_t len, unsigned flags) {
  lsmtp_domain_kind kind = (lsmtp_domain_kind)77;
  int rc = lsmtp_domain_check(s, len, flags, &kind);
  if (rc != LSMTP_OK) {
    CHECK(rc == LSMTP_ERR_SYNTAX || rc == LSMTP_ERR_TOO_LONG || rc == LSMTP_ERR_UTF8);
    CHECK(kind == LSMTP_DOMAIN_NONE);
    return;
  }
  CHECK(len >= 1 && len <= LSMTP_MAX_DOMAIN);
  CHECK(kind != LSMTP_DOMAIN_NONE);
  CHECK((kind == LSMTP_DOMAIN_NAME) == (s[0] != '['));
  if (!(flags & LSMTP_ADDR_SMTPUTF8)) CHECK(!has_8bit(s, len));
  if (kind != LSMTP_DOMAIN_NAME) CHECK(!has_8bit(s, len));
  /* A valid domain makes a valid mailbox. */
  char buf[LSMTP_MAX_DOMAIN + 8];
  memcpy(buf, "<a@", 3);
  memcpy(buf + 3, s, len);
  buf[3 + len] = '>';
  lsmtp_path p;
  size_t used = 0;
  rc = lsmtp_path_parse(buf, len + 4, flags, 0, 0, &p, &used);
  CHECK(rc == (len + 4 > LSMTP_MAX_PATH ? LSMTP_ERR_TOO_LONG : LSMTP_OK));
  if (rc == LSMTP_OK) CHECK(used == len + 4 && p.domain_kind == kind);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  unsigned sel = data[0];
  unsigned flags = sel & 0x7u;
  size_t len = size - 1;
  /* An exactly sized copy, so that an over-read is caught in replay too. */
  char *s = malloc(len ? len : 1);
  if (!s) return 0;
  if (len) memcpy(s, data + 1, len);
  switch ((sel >> 3) & 0x3u) {
  case 0: fuzz_path(s, len, flags, (sel >> 5) & 1, (sel >> 6) & 1); break;
  case 1: fuzz_mail(s, len, flags); break;
  case 2: fuzz_rcpt(s, len, flags); break;
  default: fuzz_domain(s, len, flags); break;
  }
  free(s);
  return 0;
}
