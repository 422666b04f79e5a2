/* The system resolver: MX through res_nquery on a resolver state owned by
 * the object (no global _res), read by lsmtp's own bounded parser
 * (dns_wire.c); A and AAAA through getaddrinfo, so /etc/hosts and NSS
 * apply. Every query blocks and completes inside start, which makes the
 * exactly-once rule trivial here; hosts with an event loop plug in an
 * asynchronous resolver instead (docs/dns.md).
 *
 * res_nquery, res_ninit and res_nclose live in libc since glibc 2.34 and in
 * libresolv elsewhere. LSMTP_HAVE_RESOLV=1 (set by the build when it links
 * libresolv) turns MX support on everywhere, =0 off; left undefined, it is
 * on with glibc >= 2.34 only, where nothing extra needs linking. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* EAI_NODATA, EAI_ADDRFAMILY in glibc's netdb.h */
#endif
#include <limits.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "dns_int.h"

#if !defined(LSMTP_HAVE_RESOLV)
#  if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#    define LSMTP_HAVE_RESOLV 1
#  else
#    define LSMTP_HAVE_RESOLV 0
#  endif
#endif

#if LSMTP_HAVE_RESOLV
#  include <arpa/nameser.h>
#  include <resolv.h>
#endif

/* Largest DNS message (TCP replies carry a 16-bit length). */
#define MSG_MAX 65535

struct lsmtp_dns_system {
  const lsmtp_allocator *alloc;
  lsmtp_dns_resolver iface;
  uint64_t last_id;
#if LSMTP_HAVE_RESOLV
  struct __res_state *res;
  unsigned char *msg; /* reply buffer, allocated on the first MX query */
#endif
};

static void deliver(lsmtp_dns_done_fn done, void *done_data, const char *name,
                    lsmtp_dns_type type, lsmtp_dns_error error, int status) {
  lsmtp_dns_answer a;
  lsmtp__dns_answer_error(&a, name, type, error);
  if (status != 0) a.status = status;
  done(done_data, &a);
}

static void query_addr(lsmtp_dns_system *r, const char *name,
                       lsmtp_dns_type type, lsmtp_dns_done_fn done,
                       void *done_data) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = type == LSMTP_DNS_A ? AF_INET : AF_INET6;
  hints.ai_socktype = SOCK_STREAM; /* one entry per address, not per socket type */
  /* A dotted name is absolute: a trailing dot keeps the search list of
   * resolv.conf from turning "mx.example.com" into "mx.example.com.corp".
   * Single labels ("localhost") stay as they are for /etc/hosts. */
  char abs[LSMTP__DNS_NAME_MAX + 2];
  size_t len = strlen(name);
  const char *q = name;
  int literal = name[0] != '[' && lsmtp__dns_is_ip_literal(name);
  /* An address literal is parsed, never looked up ("127.0.0.1." would be). */
  if (literal) hints.ai_flags = AI_NUMERICHOST;
  if (!literal && memchr(name, '.', len) && name[len - 1] != '.' && len <= LSMTP__DNS_NAME_MAX) {
    memcpy(abs, name, len);
    abs[len] = '.';
    abs[len + 1] = '\0';
    q = abs;
  }
  int rc = getaddrinfo(q, NULL, &hints, &res);
  if (rc != 0) {
    lsmtp_dns_error e = LSMTP_DNS_TEMPFAIL;
    int status = 0;
    switch (rc) {
      case EAI_NONAME: e = LSMTP_DNS_NXDOMAIN; break;
#ifdef EAI_NODATA
      case EAI_NODATA: e = LSMTP_DNS_NODATA; break;
#endif
#ifdef EAI_ADDRFAMILY
      case EAI_ADDRFAMILY: e = LSMTP_DNS_NODATA; break;
#endif
      case EAI_MEMORY: status = LSMTP_ERR_NOMEM; break;
      default: break; /* EAI_AGAIN, EAI_FAIL, EAI_SYSTEM: try again later */
    }
    deliver(done, done_data, name, type, e, status);
    return;
  }
  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, r->alloc);
  int err = LSMTP_OK;
  for (struct addrinfo *ai = res; ai && err != LSMTP_ERR_NOMEM; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET && type == LSMTP_DNS_A && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
      const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ai->ai_addr;
      err = lsmtp__dns_abuf_add_addr(&b, type, (const unsigned char *)&sin->sin_addr);
    } else if (ai->ai_family == AF_INET6 && type == LSMTP_DNS_AAAA &&
               ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)ai->ai_addr;
      err = lsmtp__dns_abuf_add_addr(&b, type, (const unsigned char *)&sin6->sin6_addr);
    }
  }
  freeaddrinfo(res);
  if (err == LSMTP_ERR_NOMEM) {
    deliver(done, done_data, name, type, LSMTP_DNS_TEMPFAIL, LSMTP_ERR_NOMEM);
  } else {
    lsmtp_dns_answer a;
    lsmtp__dns_abuf_answer(&b, name, type, &a);
    done(done_data, &a);
  }
  lsmtp__dns_abuf_free(&b);
}

#if LSMTP_HAVE_RESOLV
static void query_mx(lsmtp_dns_system *r, const char *name,
                     lsmtp_dns_done_fn done, void *done_data) {
  if (!r->msg) r->msg = lsmtp__malloc(r->alloc, MSG_MAX);
  if (!r->msg) {
    deliver(done, done_data, name, LSMTP_DNS_MX, LSMTP_DNS_TEMPFAIL, LSMTP_ERR_NOMEM);
    return;
  }
  /* res_nquery asks for exactly this name: no search list. */
  int n = res_nquery(r->res, name, ns_c_in, ns_t_mx, r->msg, MSG_MAX);
  if (n < 0) {
    lsmtp_dns_error e = LSMTP_DNS_TEMPFAIL;
    switch (r->res->res_h_errno) {
      case HOST_NOT_FOUND: e = LSMTP_DNS_NXDOMAIN; break;
      case NO_DATA: e = LSMTP_DNS_NODATA; break;
      /* TRY_AGAIN covers SERVFAIL and timeouts alike (glibc sets errno to
       * ETIMEDOUT for both), so no TIMEOUT from here: TEMPFAIL says the
       * same to MX selection. NO_RECOVERY (REFUSED, FORMERR...) and
       * NETDB_INTERNAL are our side's trouble: retry, never bounce. */
      default: break;
    }
    deliver(done, done_data, name, LSMTP_DNS_MX, e, 0);
    return;
  }
  size_t len = (size_t)n < MSG_MAX ? (size_t)n : MSG_MAX;
  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, r->alloc);
  lsmtp_dns_error e = lsmtp__dns_parse_reply(r->msg, len, name, LSMTP_DNS_MX, &b);
  lsmtp_dns_answer a;
  if (e == LSMTP_DNS_NOERROR)
    lsmtp__dns_abuf_answer(&b, name, LSMTP_DNS_MX, &a);
  else
    lsmtp__dns_answer_error(&a, name, LSMTP_DNS_MX, e);
  done(done_data, &a);
  lsmtp__dns_abuf_free(&b);
}
#endif

static void system_start(void *ud, const char *name, lsmtp_dns_type type,
                         lsmtp_dns_done_fn done, void *done_data,
                         uint64_t *query_id) {
  lsmtp_dns_system *r = ud;
  uint64_t dummy;
  if (!query_id) query_id = &dummy;
  *query_id = ++r->last_id;
  char norm[LSMTP__DNS_NAME_MAX + 1];
  /* Host names, and for A/AAAA also the text of an address (answered
   * without a lookup); an MX query for an address literal makes no sense. */
  int ok = name && lsmtp__dns_name_norm(name, norm) != 0;
  if (name && type == LSMTP_DNS_MX && ok && lsmtp__dns_is_ip_literal(name)) ok = 0;
  if (name && type != LSMTP_DNS_MX && !ok) ok = name[0] != '[' && lsmtp__dns_is_ip_literal(name);
  if (!ok) {
    deliver(done, done_data, name, type, LSMTP_DNS_BADNAME, 0);
    return;
  }
  switch (type) {
    case LSMTP_DNS_A:
    case LSMTP_DNS_AAAA:
      query_addr(r, name, type, done, done_data);
      return;
    case LSMTP_DNS_MX:
#if LSMTP_HAVE_RESOLV
      query_mx(r, name, done, done_data);
      return;
#else
      break;
#endif
  }
  deliver(done, done_data, name, type, LSMTP_DNS_BADNAME, 0);
}

/* Nothing is ever in flight: every query completed inside start. */
static void system_cancel(void *ud, uint64_t query_id) {
  (void)ud;
  (void)query_id;
}

int lsmtp_dns_system_new(lsmtp_dns_system **out, const lsmtp_allocator *alloc) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
#if !LSMTP_HAVE_RESOLV
  (void)alloc;
  return LSMTP_ERR_UNSUPPORTED;
#else
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_dns_system *r = lsmtp__calloc(alloc, 1, sizeof *r);
  if (!r) return LSMTP_ERR_NOMEM;
  r->alloc = alloc;
  r->res = lsmtp__calloc(alloc, 1, sizeof *r->res);
  if (!r->res) {
    lsmtp__free(alloc, r);
    return LSMTP_ERR_NOMEM;
  }
  if (res_ninit(r->res) != 0) {
    lsmtp__free(alloc, r->res);
    lsmtp__free(alloc, r);
    return LSMTP_ERR_DNS;
  }
  r->iface.start = system_start;
  r->iface.cancel = system_cancel;
  r->iface.user_data = r;
  *out = r;
  return LSMTP_OK;
#endif
}

void lsmtp_dns_system_del(lsmtp_dns_system *r) {
  if (!r) return;
#if LSMTP_HAVE_RESOLV
  res_nclose(r->res);
  lsmtp__free(r->alloc, r->res);
  lsmtp__free(r->alloc, r->msg);
#endif
  lsmtp__free(r->alloc, r);
}

int lsmtp__dns_system_use_loopback(lsmtp_dns_system *r, uint16_t port) {
#if LSMTP_HAVE_RESOLV
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  r->res->nsaddr_list[0] = sin;
  r->res->nscount = 1;
  r->res->retrans = 1;
  r->res->retry = 1;
  return LSMTP_OK;
#else
  (void)r;
  (void)port;
  return LSMTP_ERR_UNSUPPORTED;
#endif
}

const lsmtp_dns_resolver *lsmtp_dns_system_resolver(lsmtp_dns_system *r) {
  return r ? &r->iface : NULL;
}
