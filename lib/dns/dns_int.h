/* Private declarations shared by the DNS layer (lib/dns): host-name checks,
 * the builder that resolvers use to assemble an lsmtp_dns_answer, and the
 * bounded DNS message parser (dns_wire.c). */
#ifndef LSMTP_DNS_INT_H
#define LSMTP_DNS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <lsmtp/dns.h>
#include "internal.h"

/* Longest host name without the trailing dot (RFC 1035 §2.3.4: 255 octets
 * on the wire, which is 253 in text). */
#define LSMTP__DNS_NAME_MAX 253

/* Check that name is a host name (dot-separated labels of 1..63 letters,
 * digits, "-" or "_", at most 253 octets, one optional trailing dot) and
 * copy it lower-cased, without the trailing dot, into out (room for
 * LSMTP__DNS_NAME_MAX + 1). Returns its length, or 0 when it is not one. */
size_t lsmtp__dns_name_norm(const char *name, char *out);

/* Non-zero when a and b name the same host: equal without regard to ASCII
 * case and one trailing dot. */
int lsmtp__dns_name_eq(const char *a, const char *b);

/* Non-zero when s is the text of an IPv4 or IPv6 address, or an address
 * literal in brackets: an MX must name a host, not an address. */
int lsmtp__dns_is_ip_literal(const char *s);

/* ---- answer builder (dns.c) ----
 * Collects records with their strings, then hands out an lsmtp_dns_answer
 * whose pointers stay valid until the builder is reset or freed. At most
 * LSMTP_DNS_MAX_RECORDS records of each kind; extra ones are dropped. */
typedef struct lsmtp__dns_abuf {
  const lsmtp_allocator *alloc;
  lsmtp_dns_mx *mx;
  size_t *mx_off; /* offset of each host name in names */
  size_t mx_count, mx_cap;
  lsmtp_dns_addr *addr;
  size_t addr_count, addr_cap;
  lsmtp__buf names;
  unsigned flags;
} lsmtp__dns_abuf;

void lsmtp__dns_abuf_init(lsmtp__dns_abuf *b, const lsmtp_allocator *alloc);
void lsmtp__dns_abuf_reset(lsmtp__dns_abuf *b);
void lsmtp__dns_abuf_free(lsmtp__dns_abuf *b);
/* LSMTP_OK, LSMTP_ERR_LIMIT (record dropped) or LSMTP_ERR_NOMEM. */
int lsmtp__dns_abuf_add_mx(lsmtp__dns_abuf *b, uint16_t preference,
                           const char *host, size_t host_len);
int lsmtp__dns_abuf_add_addr(lsmtp__dns_abuf *b, lsmtp_dns_type type,
                             const unsigned char *bytes);
/* Fill out (status, error, records) from the builder: records of the
 * query's type make a success, none make NODATA. */
void lsmtp__dns_abuf_answer(lsmtp__dns_abuf *b, const char *name,
                            lsmtp_dns_type type, lsmtp_dns_answer *out);

/* An answer with no records: status from the error kind. */
void lsmtp__dns_answer_error(lsmtp_dns_answer *out, const char *name,
                             lsmtp_dns_type type, lsmtp_dns_error error);

/* ---- DNS message parser (dns_wire.c) ----
 * Read a reply to a query for qname/qtype (RFC 1035 §4.1): the RCODE, and
 * from the answer section the records of qtype owned by qname or by a name
 * a CNAME there leads to (at most 8 hops). Names are decompressed with
 * bounds (pointers must point backwards, 255 octets at most) and written
 * in presentation form with "\DDD" escapes. Bytes outside msg are never
 * read. Returns the error kind: NOERROR (records added to b), NXDOMAIN,
 * NODATA, or TEMPFAIL (SERVFAIL and other RCODEs, a malformed or truncated
 * message, no memory). The AD bit becomes LSMTP_DNS_AUTHENTIC in b->flags. */
lsmtp_dns_error lsmtp__dns_parse_reply(const unsigned char *msg, size_t len,
                                       const char *qname, lsmtp_dns_type qtype,
                                       lsmtp__dns_abuf *b);

/* ---- test hook (dns_system.c) ----
 * Send the system resolver's MX queries to 127.0.0.1:port only, one try
 * with a 1 s timeout, so tests can answer them from a loopback socket
 * instead of a real DNS server. LSMTP_OK or LSMTP_ERR_UNSUPPORTED. */
struct lsmtp_dns_system;
int lsmtp__dns_system_use_loopback(struct lsmtp_dns_system *r, uint16_t port);

/* ---- MX plan internals (mx_plan.c) for the lookup driver ---- */
lsmtp_mx_order lsmtp__mx_plan_order(const lsmtp_mx_plan *p);

#endif
