/* A bounded reader of DNS reply messages (RFC 1035 §4.1), for the system
 * resolver's MX queries: libresolv hands back raw bytes, and ns_initparse
 * lives in a library we do not want to require. Every read is checked
 * against the message length, compression pointers must point strictly
 * backwards (so a name cannot loop), names stay within 255 octets, and
 * the number of records read is bounded by the message size and by
 * LSMTP_DNS_MAX_RECORDS. Fuzzed by tests/fuzz/fuzz_mx.c. */
#include "dns_int.h"

#define HDR_LEN 12
#define FLAG_QR 0x8000u
#define FLAG_TC 0x0200u
#define FLAG_AD 0x0020u
#define RCODE_NXDOMAIN 3u
#define CLASS_IN 1u
#define TYPE_CNAME 5u
#define MAX_CNAME_HOPS 8
/* Escaped presentation form of a 255-octet name: each octet may take 4
 * characters ("\DDD"). */
#define TEXT_MAX 1024

static uint16_t get16(const unsigned char *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static int is_plain(int c) {
  return lsmtp__is_alpha(c) || lsmtp__is_digit(c) || c == '-' || c == '_';
}

/* Read the name at *pos into out (presentation form, "." for the root) and
 * move *pos past it (past the first pointer when compressed). Returns the
 * text length, or 0 when the name is malformed. */
static size_t read_name(const unsigned char *msg, size_t len, size_t *pos,
                        char *out) {
  size_t p = *pos, o = 0, wire = 0;
  size_t limit = *pos; /* a pointer must point before this */
  int jumped = 0;
  for (;;) {
    if (p >= len) return 0;
    unsigned c = msg[p];
    if ((c & 0xC0u) == 0xC0u) {
      if (p + 1 >= len) return 0;
      size_t target = (size_t)((c & 0x3Fu) << 8 | msg[p + 1]);
      /* Strictly decreasing targets: the walk must end. */
      if (target >= limit) return 0;
      if (!jumped) *pos = p + 2;
      jumped = 1;
      limit = target;
      p = target;
      continue;
    }
    if (c & 0xC0u) return 0; /* extended label types (RFC 6891 §5) */
    if (c == 0) {
      if (!jumped) *pos = p + 1;
      break;
    }
    if (p + 1 + c > len) return 0;
    wire += c + 1;
    if (wire + 1 > 255) return 0;
    if (o > 0) out[o++] = '.';
    for (size_t i = 0; i < c; i++) {
      int b = msg[p + 1 + i];
      if (o + 5 > TEXT_MAX) return 0;
      if (is_plain(b)) {
        out[o++] = (char)b;
      } else if (b == '.' || b == '\\') {
        out[o++] = '\\';
        out[o++] = (char)b;
      } else {
        out[o++] = '\\';
        out[o++] = (char)('0' + b / 100);
        out[o++] = (char)('0' + b / 10 % 10);
        out[o++] = (char)('0' + b % 10);
      }
    }
    p += 1 + c;
  }
  if (o == 0) out[o++] = '.';
  out[o] = '\0';
  return o;
}

typedef struct rr {
  char owner[TEXT_MAX];
  size_t owner_len;
  uint16_t type, cls;
  size_t rdata, rdlen; /* offset and length of RDATA */
} rr;

/* Read the resource record at *pos. Returns 1, or 0 when malformed. */
static int read_rr(const unsigned char *msg, size_t len, size_t *pos, rr *r) {
  r->owner_len = read_name(msg, len, pos, r->owner);
  if (r->owner_len == 0 || len - *pos < 10) return 0;
  const unsigned char *h = msg + *pos;
  r->type = get16(h);
  r->cls = get16(h + 2);
  r->rdlen = get16(h + 8);
  r->rdata = *pos + 10;
  if (r->rdlen > len - r->rdata) return 0;
  *pos = r->rdata + r->rdlen;
  return 1;
}

typedef struct names {
  char text[MAX_CNAME_HOPS + 1][TEXT_MAX];
  size_t len[MAX_CNAME_HOPS + 1];
  size_t n;
} names;

static int in_names(const names *s, const char *t, size_t tl) {
  for (size_t i = 0; i < s->n; i++)
    if (s->len[i] == tl && lsmtp__ieq(s->text[i], t, tl)) return 1;
  return 0;
}

lsmtp_dns_error lsmtp__dns_parse_reply(const unsigned char *msg, size_t len,
                                       const char *qname, lsmtp_dns_type qtype,
                                       lsmtp__dns_abuf *b) {
  lsmtp__dns_abuf_reset(b);
  if (!msg || len < HDR_LEN) return LSMTP_DNS_TEMPFAIL;
  unsigned flags = get16(msg + 2);
  size_t qd = get16(msg + 4), an = get16(msg + 6);
  if (!(flags & FLAG_QR)) return LSMTP_DNS_TEMPFAIL;
  /* A truncated reply may lack the best MX: never act on part of one. */
  if (flags & FLAG_TC) return LSMTP_DNS_TEMPFAIL;
  if ((flags & 0xFu) == RCODE_NXDOMAIN) return LSMTP_DNS_NXDOMAIN;
  if ((flags & 0xFu) != 0) return LSMTP_DNS_TEMPFAIL;

  /* About 10 KiB of stack: small enough for any thread a resolver runs on. */
  names alias;
  alias.n = 1;
  alias.len[0] = lsmtp__dns_name_norm(qname, alias.text[0]);
  if (alias.len[0] == 0) return LSMTP_DNS_TEMPFAIL;

  /* The question must be the one we asked. */
  size_t pos = HDR_LEN;
  for (size_t i = 0; i < qd; i++) {
    char q[TEXT_MAX];
    size_t ql = read_name(msg, len, &pos, q);
    if (ql == 0 || len - pos < 4) return LSMTP_DNS_TEMPFAIL;
    if (i == 0 && (get16(msg + pos) != (unsigned)qtype || get16(msg + pos + 2) != CLASS_IN ||
                   !in_names(&alias, q, ql)))
      return LSMTP_DNS_TEMPFAIL;
    pos += 4;
  }
  size_t answers = pos;

  /* Follow CNAMEs from the query name (each pass can only add a hop). */
  rr r;
  for (int pass = 0; pass < MAX_CNAME_HOPS; pass++) {
    size_t before = alias.n;
    pos = answers;
    for (size_t i = 0; i < an; i++) {
      if (!read_rr(msg, len, &pos, &r)) return LSMTP_DNS_TEMPFAIL;
      if (r.type != TYPE_CNAME || r.cls != CLASS_IN || alias.n > MAX_CNAME_HOPS) continue;
      if (!in_names(&alias, r.owner, r.owner_len)) continue;
      size_t tpos = r.rdata;
      char *t = alias.text[alias.n];
      size_t tl = read_name(msg, len, &tpos, t);
      if (tl == 0 || tpos != r.rdata + r.rdlen) return LSMTP_DNS_TEMPFAIL;
      if (!in_names(&alias, t, tl)) alias.len[alias.n++] = tl;
    }
    if (alias.n == before) break;
  }

  pos = answers;
  for (size_t i = 0; i < an; i++) {
    if (!read_rr(msg, len, &pos, &r)) return LSMTP_DNS_TEMPFAIL;
    if (r.type != (unsigned)qtype || r.cls != CLASS_IN) continue;
    if (!in_names(&alias, r.owner, r.owner_len)) continue;
    int rc = LSMTP_OK;
    if (qtype == LSMTP_DNS_MX) {
      if (r.rdlen < 3) return LSMTP_DNS_TEMPFAIL;
      size_t hpos = r.rdata + 2;
      char host[TEXT_MAX];
      size_t hl = read_name(msg, len, &hpos, host);
      if (hl == 0 || hpos != r.rdata + r.rdlen) return LSMTP_DNS_TEMPFAIL;
      rc = lsmtp__dns_abuf_add_mx(b, get16(msg + r.rdata), host, hl);
    } else {
      if (r.rdlen != (qtype == LSMTP_DNS_A ? 4u : 16u)) return LSMTP_DNS_TEMPFAIL;
      rc = lsmtp__dns_abuf_add_addr(b, qtype, msg + r.rdata);
    }
    if (rc == LSMTP_ERR_NOMEM) return LSMTP_DNS_TEMPFAIL;
    /* LSMTP_ERR_LIMIT: the rest is dropped, the records kept are valid. */
  }
  if (flags & FLAG_AD) b->flags |= LSMTP_DNS_AUTHENTIC;
  size_t got = qtype == LSMTP_DNS_MX ? b->mx_count : b->addr_count;
  return got ? LSMTP_DNS_NOERROR : LSMTP_DNS_NODATA;
}
