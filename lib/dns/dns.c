/* The resolver interface's shared parts: error kinds, argument checks in
 * front of any resolver, host-name helpers, address formatting, and the
 * builder resolvers use to assemble an answer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns_int.h"

int lsmtp_dns_error_status(lsmtp_dns_error error) {
  switch (error) {
    case LSMTP_DNS_NOERROR: return LSMTP_OK;
    case LSMTP_DNS_NXDOMAIN:
    case LSMTP_DNS_NODATA:
    case LSMTP_DNS_TEMPFAIL: return LSMTP_ERR_DNS;
    case LSMTP_DNS_TIMEOUT: return LSMTP_ERR_TIMEOUT;
    case LSMTP_DNS_ABORTED: return LSMTP_ERR_ABORTED;
    case LSMTP_DNS_BADNAME: return LSMTP_ERR_INVALID;
  }
  return LSMTP_ERR_DNS;
}

const char *lsmtp_dns_error_name(lsmtp_dns_error error) {
  switch (error) {
    case LSMTP_DNS_NOERROR: return "NOERROR";
    case LSMTP_DNS_NXDOMAIN: return "NXDOMAIN";
    case LSMTP_DNS_NODATA: return "NODATA";
    case LSMTP_DNS_TEMPFAIL: return "TEMPFAIL";
    case LSMTP_DNS_TIMEOUT: return "TIMEOUT";
    case LSMTP_DNS_ABORTED: return "ABORTED";
    case LSMTP_DNS_BADNAME: return "BADNAME";
  }
  return "UNKNOWN";
}

size_t lsmtp_dns_addr_format(const lsmtp_dns_addr *addr, char *buf, size_t cap) {
  char tmp[INET6_ADDRSTRLEN];
  if (!addr || !buf) return 0;
  int af = addr->type == LSMTP_DNS_A ? AF_INET : addr->type == LSMTP_DNS_AAAA ? AF_INET6 : -1;
  if (af < 0 || !inet_ntop(af, addr->bytes, tmp, sizeof tmp)) return 0;
  size_t n = strlen(tmp);
  if (n >= cap) return 0;
  memcpy(buf, tmp, n + 1);
  return n;
}

/* ---- host names ---- */

static int is_label_char(int c) {
  return lsmtp__is_alpha(c) || lsmtp__is_digit(c) || c == '-' || c == '_';
}

size_t lsmtp__dns_name_norm(const char *name, char *out) {
  if (!name) return 0;
  size_t len = strnlen(name, LSMTP__DNS_NAME_MAX + 2);
  if (len > 1 && name[len - 1] == '.') len--; /* one trailing dot: absolute */
  if (len == 0 || len > LSMTP__DNS_NAME_MAX) return 0;
  size_t label = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)name[i];
    if (c == '.') {
      if (label == 0) return 0;
      label = 0;
    } else {
      if (!is_label_char(c) || ++label > 63) return 0;
    }
    out[i] = (char)lsmtp__to_lower(c);
  }
  if (label == 0) return 0;
  out[len] = '\0';
  return len;
}

int lsmtp__dns_name_eq(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 1 && a[la - 1] == '.') la--;
  if (lb > 1 && b[lb - 1] == '.') lb--;
  return la == lb && lsmtp__ieq(a, b, la);
}

int lsmtp__dns_is_ip_literal(const char *s) {
  unsigned char tmp[16];
  if (s[0] == '[') return 1;
  return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* ---- the checks in front of every resolver ---- */

void lsmtp_dns_query(const lsmtp_dns_resolver *r, const char *name,
                     lsmtp_dns_type type, lsmtp_dns_done_fn done,
                     void *done_data, uint64_t *query_id) {
  uint64_t dummy;
  if (!query_id) query_id = &dummy;
  *query_id = 0;
  if (!done) return;
  char norm[LSMTP__DNS_NAME_MAX + 1];
  int type_ok = type == LSMTP_DNS_A || type == LSMTP_DNS_AAAA || type == LSMTP_DNS_MX;
  if (!r || !r->start || !type_ok || lsmtp__dns_name_norm(name, norm) == 0) {
    lsmtp_dns_answer a;
    lsmtp__dns_answer_error(&a, name, type, LSMTP_DNS_BADNAME);
    done(done_data, &a);
    return;
  }
  r->start(r->user_data, name, type, done, done_data, query_id);
}

void lsmtp_dns_cancel(const lsmtp_dns_resolver *r, uint64_t query_id) {
  if (r && r->cancel && query_id != 0) r->cancel(r->user_data, query_id);
}

void lsmtp__dns_answer_error(lsmtp_dns_answer *out, const char *name,
                             lsmtp_dns_type type, lsmtp_dns_error error) {
  memset(out, 0, sizeof *out);
  out->status = lsmtp_dns_error_status(error);
  out->error = error;
  out->type = type;
  out->name = name ? name : "";
}

/* ---- answer builder ---- */

void lsmtp__dns_abuf_init(lsmtp__dns_abuf *b, const lsmtp_allocator *alloc) {
  memset(b, 0, sizeof *b);
  b->alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp__buf_init(&b->names, b->alloc);
}

void lsmtp__dns_abuf_reset(lsmtp__dns_abuf *b) {
  b->mx_count = 0;
  b->addr_count = 0;
  b->names.len = 0;
  b->flags = 0;
}

void lsmtp__dns_abuf_free(lsmtp__dns_abuf *b) {
  lsmtp__free(b->alloc, b->mx);
  lsmtp__free(b->alloc, b->mx_off);
  lsmtp__free(b->alloc, b->addr);
  lsmtp__buf_free(&b->names);
  b->mx = NULL;
  b->mx_off = NULL;
  b->addr = NULL;
  b->mx_count = b->mx_cap = b->addr_count = b->addr_cap = 0;
}

/* Grow an array of elem-sized items to hold one more (doubling, at most
 * LSMTP_DNS_MAX_RECORDS). */
static int grow(const lsmtp_allocator *a, void **arr, size_t *cap, size_t count,
                size_t elem) {
  if (count < *cap) return LSMTP_OK;
  if (count >= LSMTP_DNS_MAX_RECORDS) return LSMTP_ERR_LIMIT;
  size_t ncap = *cap ? *cap * 2 : 8;
  if (ncap > LSMTP_DNS_MAX_RECORDS) ncap = LSMTP_DNS_MAX_RECORDS;
  void *p = lsmtp__realloc(a, *arr, ncap * elem);
  if (!p) return LSMTP_ERR_NOMEM;
  *arr = p;
  *cap = ncap;
  return LSMTP_OK;
}

int lsmtp__dns_abuf_add_mx(lsmtp__dns_abuf *b, uint16_t preference,
                           const char *host, size_t host_len) {
  size_t cap = b->mx_cap;
  int rc = grow(b->alloc, (void **)&b->mx, &cap, b->mx_count, sizeof *b->mx);
  if (rc != LSMTP_OK) return rc;
  size_t ocap = b->mx_cap;
  rc = grow(b->alloc, (void **)&b->mx_off, &ocap, b->mx_count, sizeof *b->mx_off);
  if (rc != LSMTP_OK) return rc;
  /* Both arrays grow in step: keep the smaller capacity as the truth. */
  b->mx_cap = cap < ocap ? cap : ocap;
  size_t off = b->names.len;
  if (lsmtp__buf_append(&b->names, host, host_len) != LSMTP_OK ||
      lsmtp__buf_append(&b->names, "", 1) != LSMTP_OK) {
    b->names.len = off;
    return LSMTP_ERR_NOMEM;
  }
  b->mx[b->mx_count].preference = preference;
  b->mx[b->mx_count].host = NULL;
  b->mx_off[b->mx_count] = off;
  b->mx_count++;
  return LSMTP_OK;
}

int lsmtp__dns_abuf_add_addr(lsmtp__dns_abuf *b, lsmtp_dns_type type,
                             const unsigned char *bytes) {
  int rc = grow(b->alloc, (void **)&b->addr, &b->addr_cap, b->addr_count, sizeof *b->addr);
  if (rc != LSMTP_OK) return rc;
  lsmtp_dns_addr *a = &b->addr[b->addr_count++];
  memset(a, 0, sizeof *a);
  a->type = type;
  memcpy(a->bytes, bytes, type == LSMTP_DNS_A ? 4 : 16);
  return LSMTP_OK;
}

void lsmtp__dns_abuf_answer(lsmtp__dns_abuf *b, const char *name,
                            lsmtp_dns_type type, lsmtp_dns_answer *out) {
  size_t n = type == LSMTP_DNS_MX ? b->mx_count : b->addr_count;
  if (n == 0) {
    lsmtp__dns_answer_error(out, name, type, LSMTP_DNS_NODATA);
    out->flags = b->flags;
    return;
  }
  lsmtp__dns_answer_error(out, name, type, LSMTP_DNS_NOERROR);
  out->flags = b->flags;
  if (type == LSMTP_DNS_MX) {
    /* The names buffer may have moved while growing: pointers only now. */
    for (size_t i = 0; i < b->mx_count; i++) b->mx[i].host = b->names.data + b->mx_off[i];
    out->mx = b->mx;
    out->mx_count = b->mx_count;
  } else {
    out->addr = b->addr;
    out->addr_count = b->addr_count;
  }
}
