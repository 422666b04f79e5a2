/* DNS for the relay role: a resolver interface that a host implements (or
 * takes from lsmtp), two resolvers that ship with lsmtp, and MX selection
 * (RFC 5321 §5.1, RFC 7505 null MX) as pure logic over the answers.
 *
 * The shape follows c-ares: a query is started with a completion callback,
 * and that callback runs EXACTLY ONCE per started query — with the answer,
 * with an error, or with LSMTP_ERR_ABORTED when the query is cancelled or
 * its resolver destroyed. A host therefore frees its per-query state in one
 * place. See docs/dns.md for the contract, the MX algorithm and a sketch of
 * a c-ares adapter.
 *
 * Threading: a resolver and everything using it belong to one thread (the
 * host's loop thread). Completions run on that thread, either inside the
 * call that started the query (synchronous resolvers, errors found at once)
 * or later from the host's loop; never from another thread. */
#ifndef LSMTP_DNS_H
#define LSMTP_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/* ------------------------------------------------------------------------
 * Answers
 * ---------------------------------------------------------------------- */

/** Record types a query can ask for (the DNS TYPE values). */
typedef enum lsmtp_dns_type {
  LSMTP_DNS_A = 1,
  LSMTP_DNS_MX = 15,
  LSMTP_DNS_AAAA = 28
} lsmtp_dns_type;

/** Why a query has no records. Together with lsmtp_dns_answer.status:
 *    NOERROR  status LSMTP_OK, at least one record
 *    NXDOMAIN status LSMTP_ERR_DNS     the name does not exist (permanent)
 *    NODATA   status LSMTP_ERR_DNS     the name exists, no record of the
 *                                      type (permanent)
 *    TEMPFAIL status LSMTP_ERR_DNS     SERVFAIL, REFUSED, network error,
 *                                      malformed reply (retry later); also
 *                                      with LSMTP_ERR_NOMEM
 *    TIMEOUT  status LSMTP_ERR_TIMEOUT no reply in time (temporary)
 *    ABORTED  status LSMTP_ERR_ABORTED cancelled or resolver destroyed
 *    BADNAME  status LSMTP_ERR_INVALID the name is not a valid host name
 *                                      (permanent) */
typedef enum lsmtp_dns_error {
  LSMTP_DNS_NOERROR = 0,
  LSMTP_DNS_NXDOMAIN,
  LSMTP_DNS_NODATA,
  LSMTP_DNS_TEMPFAIL,
  LSMTP_DNS_TIMEOUT,
  LSMTP_DNS_ABORTED,
  LSMTP_DNS_BADNAME
} lsmtp_dns_error;

/** One MX record. host is the exchange in presentation form without the
 *  trailing dot ("mx1.example.com"); the root (RFC 7505 null MX) is ".".
 *  Bytes that are not letters, digits, "-" or "_" appear escaped as
 *  "\DDD" (or "\." for a dot inside a label), as in master files. */
typedef struct lsmtp_dns_mx {
  const char *host;
  uint16_t preference;
} lsmtp_dns_mx;

/** One address: type LSMTP_DNS_A uses bytes[0..3], LSMTP_DNS_AAAA all 16,
 *  in network byte order. */
typedef struct lsmtp_dns_addr {
  lsmtp_dns_type type;
  unsigned char bytes[16];
} lsmtp_dns_addr;

/* lsmtp_dns_answer.flags */
#define LSMTP_DNS_AUTHENTIC 0x1u /* the resolver vouches for DNSSEC validity
                                    (AD bit from a trusted resolver) */

/** Most records one answer may carry; resolvers drop the rest. */
#define LSMTP_DNS_MAX_RECORDS 256

/** What a completion callback receives. Everything it points to is owned by
 *  the resolver and valid only during the callback: copy what you keep.
 *  On success exactly one of mx/addr is used (by the query's type). */
typedef struct lsmtp_dns_answer {
  int status;            /* LSMTP_OK or a negative status (see above) */
  lsmtp_dns_error error; /* the kind of failure; NOERROR with LSMTP_OK */
  lsmtp_dns_type type;   /* the type asked for */
  const char *name;      /* the name asked for, as given */
  const lsmtp_dns_mx *mx;
  size_t mx_count;
  const lsmtp_dns_addr *addr;
  size_t addr_count;
  unsigned flags;        /* LSMTP_DNS_* flags above */
} lsmtp_dns_answer;

/** The status that goes with an error kind (table above), so a host
 *  resolver can fill both fields consistently: LSMTP_OK, LSMTP_ERR_DNS,
 *  LSMTP_ERR_TIMEOUT, LSMTP_ERR_ABORTED or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_dns_error_status(lsmtp_dns_error error);

/** A short static name for an error kind ("NXDOMAIN", ...); never NULL. */
LSMTP_API const char *lsmtp_dns_error_name(lsmtp_dns_error error);

/** Format an address as text ("192.0.2.1", "2001:db8::1") into buf.
 *  Returns the length (without the NUL), or 0 when cap is too small
 *  (48 bytes always suffice) or the type is not A/AAAA. */
LSMTP_API size_t lsmtp_dns_addr_format(const lsmtp_dns_addr *addr, char *buf,
                                       size_t cap);

/* ------------------------------------------------------------------------
 * The resolver interface (implemented by the host or by lsmtp)
 * ---------------------------------------------------------------------- */

/** The completion callback of one query. Called exactly once per started
 *  query. done_data is what was passed to start. */
typedef void (*lsmtp_dns_done_fn)(void *done_data,
                                  const lsmtp_dns_answer *answer);

/** A resolver: function pointers plus one user_data. The contract every
 *  implementation keeps:
 *
 *  start: begin a query for name (a host name, possibly with a trailing
 *    dot; at most 253 octets without it) and type. It stores a query id
 *    (never 0, not reused while the resolver lives) in *query_id BEFORE
 *    anything else, so the caller may keep it in per-query state that the
 *    callback frees. It never fails by return value: every failure
 *    (invalid name, no memory, resolver being destroyed) is reported
 *    through done. done may run before start returns (synchronous
 *    resolvers do that always) and, in any case, runs exactly once.
 *
 *  cancel: when the query is still running, call its done with status
 *    LSMTP_ERR_ABORTED / LSMTP_DNS_ABORTED before cancel returns. An id
 *    that already completed (or is unknown) is ignored. May be NULL for a
 *    resolver that always completes inside start.
 *
 *  Destroying the resolver (however the host does that) calls done with
 *  LSMTP_ERR_ABORTED for every query still running, before it returns.
 *
 *  Callbacks may start new queries and cancel others, also from inside
 *  done. All calls and completions happen on one thread. */
typedef struct lsmtp_dns_resolver {
  void (*start)(void *user_data, const char *name, lsmtp_dns_type type,
                lsmtp_dns_done_fn done, void *done_data, uint64_t *query_id);
  void (*cancel)(void *user_data, uint64_t query_id);
  void *user_data;
} lsmtp_dns_resolver;

/** Start a query through r after checking the arguments: a NULL r or
 *  r->start, an unknown type, or a name that is not a host name (letters,
 *  digits, "-", "_", dot-separated labels of 1..63 octets, at most 253
 *  octets) completes at once with LSMTP_ERR_INVALID / LSMTP_DNS_BADNAME
 *  without reaching the resolver. done must not be NULL (then nothing
 *  happens and *query_id is 0). query_id may be NULL. */
LSMTP_API void lsmtp_dns_query(const lsmtp_dns_resolver *r, const char *name,
                               lsmtp_dns_type type, lsmtp_dns_done_fn done,
                               void *done_data, uint64_t *query_id);

/** Cancel a query started through r (see the contract above). Ignores id 0
 *  and a resolver without cancel. */
LSMTP_API void lsmtp_dns_cancel(const lsmtp_dns_resolver *r, uint64_t query_id);

/* ------------------------------------------------------------------------
 * The static resolver: records given in code
 *
 * For tests and for hosts with fixed routes. Names match without regard to
 * ASCII case or a trailing dot. A name with records of other types only
 * answers NODATA; an unknown name NXDOMAIN; lsmtp_dns_static_set_error
 * makes a name/type fail on purpose.
 * ---------------------------------------------------------------------- */

typedef struct lsmtp_dns_static lsmtp_dns_static;

/* Flags for lsmtp_dns_static_new. */
#define LSMTP_DNS_STATIC_DEFER 0x1u /* answer on lsmtp_dns_static_step, not
                                       inside start */

/** Most records a static resolver holds (LSMTP_ERR_LIMIT beyond). */
#define LSMTP_DNS_STATIC_MAX_ENTRIES 4096

/** Create an empty static resolver. alloc may be NULL; flags:
 *  LSMTP_DNS_STATIC_*. Returns LSMTP_OK, LSMTP_ERR_NOMEM or
 *  LSMTP_ERR_INVALID (out NULL or unknown flags). */
LSMTP_API int lsmtp_dns_static_new(lsmtp_dns_static **out,
                                   const lsmtp_allocator *alloc,
                                   unsigned flags);

/** Destroy it: every query still pending completes with LSMTP_ERR_ABORTED
 *  (queries started from those callbacks complete the same way at once),
 *  then the memory is freed. NULL does nothing. Must not be called from
 *  one of its own callbacks. */
LSMTP_API void lsmtp_dns_static_del(lsmtp_dns_static *s);

/** The resolver interface of s (valid until lsmtp_dns_static_del). */
LSMTP_API const lsmtp_dns_resolver *lsmtp_dns_static_resolver(lsmtp_dns_static *s);

/** Add "name MX preference host". host "." (or "") is the RFC 7505 null
 *  MX target. Returns LSMTP_OK, LSMTP_ERR_NOMEM, LSMTP_ERR_LIMIT or
 *  LSMTP_ERR_INVALID (name not a host name, host longer than 253). */
LSMTP_API int lsmtp_dns_static_add_mx(lsmtp_dns_static *s, const char *name,
                                      uint16_t preference, const char *host);

/** Add an A or AAAA record for name from its text form ("192.0.2.1" or
 *  "2001:db8::1"; the type follows from the text). Returns LSMTP_OK,
 *  LSMTP_ERR_NOMEM, LSMTP_ERR_LIMIT or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_dns_static_add_addr(lsmtp_dns_static *s, const char *name,
                                        const char *ip);

/** Make queries for name/type fail with error (any kind but NOERROR and
 *  ABORTED), whatever records exist. Returns LSMTP_OK, LSMTP_ERR_NOMEM,
 *  LSMTP_ERR_LIMIT or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_dns_static_set_error(lsmtp_dns_static *s, const char *name,
                                         lsmtp_dns_type type,
                                         lsmtp_dns_error error);

/** With LSMTP_DNS_STATIC_DEFER: complete the queries that were pending
 *  when the call began, oldest first (queries their callbacks start wait
 *  for the next step). Returns how many completed. */
LSMTP_API size_t lsmtp_dns_static_step(lsmtp_dns_static *s);

/** Queries started and not yet completed. */
LSMTP_API size_t lsmtp_dns_static_pending(const lsmtp_dns_static *s);

/* ------------------------------------------------------------------------
 * The system resolver (blocking)
 *
 * MX through res_nquery with a resolver state of its own (no globals; the
 * answer is read by lsmtp's bounded DNS message parser), A and AAAA through
 * getaddrinfo. Every query BLOCKS the calling thread until the system
 * answers (the timeouts of /etc/resolv.conf apply) and completes inside
 * start. That is fine for a tool or a worker thread; a host with an event
 * loop should plug in an asynchronous resolver such as c-ares instead
 * (docs/dns.md). One object is not thread-safe; objects on different
 * threads are independent.
 * ---------------------------------------------------------------------- */

typedef struct lsmtp_dns_system lsmtp_dns_system;

/** Create a system resolver: reads the resolver configuration
 *  (res_ninit). Returns LSMTP_OK, LSMTP_ERR_NOMEM, LSMTP_ERR_INVALID (out
 *  NULL), LSMTP_ERR_DNS (the configuration could not be read) or
 *  LSMTP_ERR_UNSUPPORTED (built without a resolver library: MX queries are
 *  unavailable; see docs/dns.md, LSMTP_HAVE_RESOLV). */
LSMTP_API int lsmtp_dns_system_new(lsmtp_dns_system **out,
                                   const lsmtp_allocator *alloc);

/** Destroy it (no query is ever left running: all complete inside start).
 *  NULL does nothing. */
LSMTP_API void lsmtp_dns_system_del(lsmtp_dns_system *r);

/** The resolver interface of r (valid until lsmtp_dns_system_del). */
LSMTP_API const lsmtp_dns_resolver *lsmtp_dns_system_resolver(lsmtp_dns_system *r);

/* ------------------------------------------------------------------------
 * MX selection (pure logic, no I/O)
 *
 *   lsmtp_mx_plan *p;
 *   lsmtp_mx_plan_new(&p, NULL);
 *   lsmtp_mx_plan_set_local_names(p, names, n);  // our own host names
 *   lsmtp_mx_plan_set_seed(p, seed);             // or set_random
 *   lsmtp_mx_plan_build(p, "example.com", mx_answer);
 *   if (lsmtp_mx_plan_result(p) == LSMTP_MX_OK)
 *     for each host i: feed its A and AAAA answers with
 *       lsmtp_mx_plan_add_addresses(p, i, answer);
 *   lsmtp_mx_plan_finish(p);
 *   then try lsmtp_mx_plan_target(p, 0..n-1) in order, or report
 *   lsmtp_mx_result_failure(lsmtp_mx_plan_result(p)).
 *
 * lsmtp_mx_lookup below does the queries for you through a resolver.
 * ---------------------------------------------------------------------- */

/** Most hosts a plan keeps, and most addresses per host. */
#define LSMTP_MX_MAX_HOSTS 32
#define LSMTP_MX_MAX_ADDRS 16
/** Most local names lsmtp_mx_plan_set_local_names takes. */
#define LSMTP_MX_MAX_LOCAL_NAMES 16

/** The outcome of a plan. */
typedef enum lsmtp_mx_result {
  LSMTP_MX_OK = 0,         /* hosts (and, after finish, addresses) to try */
  LSMTP_MX_PENDING,        /* nothing built yet */
  LSMTP_MX_NULL_MX,        /* RFC 7505: the domain accepts no mail */
  LSMTP_MX_NO_DOMAIN,      /* NXDOMAIN: the domain does not exist */
  LSMTP_MX_TEMPFAIL,       /* a DNS failure to retry later */
  LSMTP_MX_LOOP,           /* we are the best MX: mail would loop back */
  LSMTP_MX_NO_HOSTS,       /* every MX record was unusable */
  LSMTP_MX_NO_ADDRESS,     /* no host has an address (permanent) */
  LSMTP_MX_ABORTED         /* the lookup was cancelled */
} lsmtp_mx_result;

/** How a failed plan is reported: temporary (queue and retry) or
 *  permanent (bounce), with the reply code and RFC 3463 enhanced status
 *  for the DSN and a short static text. */
typedef struct lsmtp_mx_failure {
  int temporary;        /* 1: retry later; 0: permanent */
  int reply_code;       /* e.g. 556 */
  const char *enhanced; /* e.g. "5.1.10" */
  const char *text;     /* e.g. "domain does not accept mail (null MX)" */
} lsmtp_mx_failure;

/** The failure description of a result (static; for LSMTP_MX_OK and
 *  LSMTP_MX_PENDING a temporary 451 4.4.3 "no route computed"). */
LSMTP_API const lsmtp_mx_failure *lsmtp_mx_result_failure(lsmtp_mx_result r);

/** Order of addresses within one host. The default is IPv6 first. */
typedef enum lsmtp_mx_order {
  LSMTP_MX_IPV6_FIRST = 0,
  LSMTP_MX_IPV4_FIRST,
  LSMTP_MX_IPV6_ONLY,
  LSMTP_MX_IPV4_ONLY
} lsmtp_mx_order;

/** One place to try: a host of the plan and one of its addresses. */
typedef struct lsmtp_mx_target {
  const char *host;    /* the MX host name (no trailing dot) */
  uint16_t preference; /* its MX preference (0 for the implicit MX) */
  size_t host_index;   /* its index in the plan's host list */
  lsmtp_dns_addr addr;
} lsmtp_mx_target;

/** A random source: returns uniformly distributed 32-bit values. */
typedef uint32_t (*lsmtp_random_fn)(void *random_data);

typedef struct lsmtp_mx_plan lsmtp_mx_plan;

/** Create an empty plan (result LSMTP_MX_PENDING; seed 0, IPv6 first, no
 *  local names). alloc may be NULL. Returns LSMTP_OK, LSMTP_ERR_NOMEM or
 *  LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_mx_plan_new(lsmtp_mx_plan **out, const lsmtp_allocator *alloc);

/** Free a plan; NULL does nothing. */
LSMTP_API void lsmtp_mx_plan_del(lsmtp_mx_plan *p);

/** The host's own names (compared without regard to case or a trailing
 *  dot). An MX naming one of them, and every MX of equal or greater
 *  preference, is dropped (RFC 5321 §5.1). Copies the names; replaces
 *  earlier ones. Returns LSMTP_OK, LSMTP_ERR_NOMEM, LSMTP_ERR_LIMIT (more
 *  than LSMTP_MX_MAX_LOCAL_NAMES) or LSMTP_ERR_INVALID (a name that is
 *  not a host name). */
LSMTP_API int lsmtp_mx_plan_set_local_names(lsmtp_mx_plan *p,
                                            const char *const *names,
                                            size_t count);

/** Seed the built-in generator (splitmix64) that shuffles MX hosts of equal
 *  preference; the same seed gives the same order. Clears set_random. */
LSMTP_API void lsmtp_mx_plan_set_seed(lsmtp_mx_plan *p, uint64_t seed);

/** Use fn(random_data) instead of the seeded generator (NULL fn: back to
 *  the seed). */
LSMTP_API void lsmtp_mx_plan_set_random(lsmtp_mx_plan *p, lsmtp_random_fn fn,
                                        void *random_data);

/** Choose the address order (lsmtp_mx_order). */
LSMTP_API void lsmtp_mx_plan_set_order(lsmtp_mx_plan *p, lsmtp_mx_order order);

/** Compute the host list for domain from its MX answer (type MX; a NULL
 *  answer is treated as NODATA). Forgets any earlier build. See docs/dns.md
 *  for the algorithm. Returns LSMTP_OK (see lsmtp_mx_plan_result),
 *  LSMTP_ERR_NOMEM or LSMTP_ERR_INVALID (domain not a host name, e.g. an
 *  address literal, or an answer of another type). */
LSMTP_API int lsmtp_mx_plan_build(lsmtp_mx_plan *p, const char *domain,
                                  const lsmtp_dns_answer *mx_answer);

/** The plan's outcome so far. */
LSMTP_API lsmtp_mx_result lsmtp_mx_plan_result(const lsmtp_mx_plan *p);

/** Non-zero when the host list is the implicit MX (no MX records). */
LSMTP_API int lsmtp_mx_plan_is_implicit(const lsmtp_mx_plan *p);

/** Number of hosts to try (0..LSMTP_MX_MAX_HOSTS), best first. */
LSMTP_API size_t lsmtp_mx_plan_host_count(const lsmtp_mx_plan *p);

/** Host i (NULL when out of range); *preference (may be NULL) gets its
 *  preference. Valid until the next build or del. */
LSMTP_API const char *lsmtp_mx_plan_host(const lsmtp_mx_plan *p, size_t i,
                                         uint16_t *preference);

/** Record host i's A or AAAA answer (any outcome). Addresses of a family
 *  the order excludes are ignored, duplicates dropped, at most
 *  LSMTP_MX_MAX_ADDRS kept per host (shared fairly between the families).
 *  Returns LSMTP_OK, LSMTP_ERR_INVALID (i out of range, not an A/AAAA
 *  answer) or LSMTP_ERR_STATE (no hosts built). */
LSMTP_API int lsmtp_mx_plan_add_addresses(lsmtp_mx_plan *p, size_t i,
                                          const lsmtp_dns_answer *answer);

/** Build the target list from the addresses recorded: hosts in plan order,
 *  within a host the chosen family order, an address already listed for
 *  an earlier host skipped. Sets the result: LSMTP_MX_OK when there is at
 *  least one target, else LSMTP_MX_TEMPFAIL when some address lookup
 *  failed temporarily (or was never recorded), else LSMTP_MX_NO_ADDRESS.
 *  Returns LSMTP_OK or LSMTP_ERR_STATE (build did not give LSMTP_MX_OK). */
LSMTP_API int lsmtp_mx_plan_finish(lsmtp_mx_plan *p);

/** Number of targets after finish. */
LSMTP_API size_t lsmtp_mx_plan_target_count(const lsmtp_mx_plan *p);

/** Target i (NULL when out of range); valid until the next build or del. */
LSMTP_API const lsmtp_mx_target *lsmtp_mx_plan_target(const lsmtp_mx_plan *p,
                                                      size_t i);

/* ------------------------------------------------------------------------
 * MX lookup: the queries for a plan, through any resolver
 * ---------------------------------------------------------------------- */

typedef struct lsmtp_mx_lookup lsmtp_mx_lookup;

/** Called exactly once when the lookup ends; lsmtp_mx_plan_result(plan)
 *  says how (LSMTP_MX_ABORTED after a cancel). The lookup may be deleted
 *  from inside this callback. */
typedef void (*lsmtp_mx_lookup_done_fn)(void *user_data, lsmtp_mx_plan *plan);

/** Look up the MX records of domain, build the plan (p's settings apply),
 *  query A and/or AAAA (as the order asks) for every host, all at once,
 *  and finish the plan. r and p must outlive the lookup. *out is set
 *  before done can run; done may run before this returns (synchronous
 *  resolvers). Returns LSMTP_OK (done will be called exactly once),
 *  LSMTP_ERR_NOMEM or LSMTP_ERR_INVALID (done is not called). */
LSMTP_API int lsmtp_mx_lookup_new(lsmtp_mx_lookup **out,
                                  const lsmtp_allocator *alloc,
                                  const lsmtp_dns_resolver *r,
                                  lsmtp_mx_plan *p, const char *domain,
                                  lsmtp_mx_lookup_done_fn done,
                                  void *user_data);

/** Free a lookup. If it has not completed, its queries are cancelled and
 *  done runs (result LSMTP_MX_ABORTED) before this returns. May be called
 *  inside done. NULL does nothing. */
LSMTP_API void lsmtp_mx_lookup_del(lsmtp_mx_lookup *l);

LSMTP_END_DECLS

#endif
