/* The DNS layer without a network: the resolver contract (every query
 * completes exactly once, also on cancel and destroy), the static
 * resolver, the DNS message parser, MX selection (RFC 5321 §5.1, RFC 7505)
 * and the lookup driver. The system resolver is only asked about address
 * literals and, when /etc/hosts has them, "localhost": never a DNS server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <lsmtp/dns.h>
#include "dns/dns_int.h"
#include "support_failalloc.h"

/* ------------------------------------------------------------------ */
/* Recording completions                                               */
/* ------------------------------------------------------------------ */

#define MAXQ 64

/* One per query: how often it completed and with what. */
typedef struct rec {
  int calls;
  int status;
  lsmtp_dns_error error;
  lsmtp_dns_type type;
  char name[300];
  size_t count;
  char first[300]; /* first MX host or address as text */
  uint16_t first_pref;
} rec;

static void record(void *data, const lsmtp_dns_answer *a) {
  rec *r = data;
  r->calls++;
  r->status = a->status;
  r->error = a->error;
  r->type = a->type;
  snprintf(r->name, sizeof r->name, "%s", a->name ? a->name : "(null)");
  r->count = a->type == LSMTP_DNS_MX ? a->mx_count : a->addr_count;
  r->first[0] = '\0';
  if (a->status == LSMTP_OK && a->type == LSMTP_DNS_MX && a->mx_count) {
    snprintf(r->first, sizeof r->first, "%s", a->mx[0].host);
    r->first_pref = a->mx[0].preference;
  } else if (a->status == LSMTP_OK && a->addr_count) {
    assert_true(lsmtp_dns_addr_format(&a->addr[0], r->first, sizeof r->first) > 0);
  }
  /* The status always agrees with the error kind. */
  assert_int_equal(a->status == LSMTP_ERR_NOMEM ? LSMTP_ERR_DNS : a->status,
                   lsmtp_dns_error_status(a->error));
}

/* ------------------------------------------------------------------ */
/* Shared helpers                                                      */
/* ------------------------------------------------------------------ */

static void test_error_kinds(void **state) {
  (void)state;
  assert_int_equal(lsmtp_dns_error_status(LSMTP_DNS_NOERROR), LSMTP_OK);
  assert_int_equal(lsmtp_dns_error_status(LSMTP_DNS_NXDOMAIN), LSMTP_ERR_DNS);
  assert_int_equal(lsmtp_dns_error_status(LSMTP_DNS_NODATA), LSMTP_ERR_DNS);
  assert_int_equal(lsmtp_dns_error_status(LSMTP_DNS_TEMPFAIL), LSMTP_ERR_DNS);
  assert_int_equal(lsmtp_dns_error_status(LSMTP_DNS_TIMEOUT), LSMTP_ERR_TIMEOUT);
  assert_int_equal(lsmtp_dns_error_status(LSMTP_DNS_ABORTED), LSMTP_ERR_ABORTED);
  assert_int_equal(lsmtp_dns_error_status(LSMTP_DNS_BADNAME), LSMTP_ERR_INVALID);
  assert_string_equal(lsmtp_dns_error_name(LSMTP_DNS_NXDOMAIN), "NXDOMAIN");
  assert_string_equal(lsmtp_dns_error_name((lsmtp_dns_error)99), "UNKNOWN");

  lsmtp_dns_addr a = {LSMTP_DNS_A, {192, 0, 2, 7}};
  char buf[48];
  assert_int_equal(lsmtp_dns_addr_format(&a, buf, sizeof buf), 9);
  assert_string_equal(buf, "192.0.2.7");
  assert_int_equal(lsmtp_dns_addr_format(&a, buf, 9), 0); /* no room for the NUL */
  lsmtp_dns_addr b = {LSMTP_DNS_AAAA, {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
  assert_int_equal(lsmtp_dns_addr_format(&b, buf, sizeof buf), 11);
  assert_string_equal(buf, "2001:db8::1");
  lsmtp_dns_addr c = {LSMTP_DNS_MX, {0}};
  assert_int_equal(lsmtp_dns_addr_format(&c, buf, sizeof buf), 0);
}

static void test_name_norm(void **state) {
  (void)state;
  char out[LSMTP__DNS_NAME_MAX + 1];
  assert_int_equal(lsmtp__dns_name_norm("Mx1.Example.COM.", out), 15);
  assert_string_equal(out, "mx1.example.com");
  assert_int_equal(lsmtp__dns_name_norm("_a-b.c", out), 6);
  const char *bad[] = {"", ".", "a..b", ".a", "a.b..", "a b", "a\\.b", "[192.0.2.1]",
                       "2001:db8::1", "\xc3\xa9.example", NULL};
  for (size_t i = 0; bad[i]; i++) assert_int_equal(lsmtp__dns_name_norm(bad[i], out), 0);
  /* Labels up to 63, names up to 253 (a trailing dot on top is fine). */
  char name[300];
  memset(name, 'a', 63);
  strcpy(name + 63, ".b");
  assert_int_equal(lsmtp__dns_name_norm(name, out), 65);
  memset(name, 'a', 64);
  strcpy(name + 64, ".b");
  assert_int_equal(lsmtp__dns_name_norm(name, out), 0);
  for (int i = 0; i < 4; i++) {
    memset(name + i * 64, 'a', 63);
    name[i * 64 + 63] = '.';
  }
  name[253] = '\0'; /* 4 labels: 63+1+63+1+63+1+61 = 253 */
  assert_int_equal(lsmtp__dns_name_norm(name, out), 253);
  strcpy(name + 253, ".");
  assert_int_equal(lsmtp__dns_name_norm(name, out), 253);
  strcpy(name + 253, "a");
  assert_int_equal(lsmtp__dns_name_norm(name, out), 0);

  assert_true(lsmtp__dns_name_eq("A.example.", "a.EXAMPLE"));
  assert_false(lsmtp__dns_name_eq("a.example", "a.example.org"));
  assert_true(lsmtp__dns_is_ip_literal("192.0.2.1"));
  assert_true(lsmtp__dns_is_ip_literal("::1"));
  assert_true(lsmtp__dns_is_ip_literal("[IPv6:::1]"));
  assert_false(lsmtp__dns_is_ip_literal("mx.example"));
}

/* ------------------------------------------------------------------ */
/* The static resolver and the exactly-once contract                   */
/* ------------------------------------------------------------------ */

static lsmtp_dns_static *make_table(unsigned flags) {
  lsmtp_dns_static *s;
  assert_int_equal(lsmtp_dns_static_new(&s, NULL, flags), LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_add_mx(s, "example.com", 10, "mx1.example.com."), LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_add_mx(s, "example.com", 20, "mx2.example.com"), LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_add_addr(s, "mx1.example.com", "192.0.2.1"), LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_add_addr(s, "mx1.example.com", "2001:db8::1"), LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_add_addr(s, "MX2.example.com.", "192.0.2.2"), LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_add_mx(s, "null.example", 0, "."), LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_set_error(s, "broken.example", LSMTP_DNS_MX, LSMTP_DNS_TEMPFAIL),
                   LSMTP_OK);
  assert_int_equal(lsmtp_dns_static_set_error(s, "slow.example", LSMTP_DNS_MX, LSMTP_DNS_TIMEOUT),
                   LSMTP_OK);
  return s;
}

static void test_static_answers(void **state) {
  (void)state;
  lsmtp_dns_static *s = make_table(0);
  const lsmtp_dns_resolver *r = lsmtp_dns_static_resolver(s);
  rec q[8];
  memset(q, 0, sizeof q);
  uint64_t id[8];

  lsmtp_dns_query(r, "EXAMPLE.com.", LSMTP_DNS_MX, record, &q[0], &id[0]);
  assert_int_equal(q[0].calls, 1); /* inside start */
  assert_int_not_equal(id[0], 0);
  assert_int_equal(q[0].status, LSMTP_OK);
  assert_int_equal(q[0].count, 2);
  assert_string_equal(q[0].first, "mx1.example.com");
  assert_int_equal(q[0].first_pref, 10);
  assert_string_equal(q[0].name, "EXAMPLE.com."); /* as asked */

  lsmtp_dns_query(r, "mx1.example.com", LSMTP_DNS_AAAA, record, &q[1], &id[1]);
  assert_int_equal(q[1].status, LSMTP_OK);
  assert_string_equal(q[1].first, "2001:db8::1");
  assert_int_equal(q[1].count, 1);
  lsmtp_dns_query(r, "mx2.example.com", LSMTP_DNS_A, record, &q[2], &id[2]);
  assert_string_equal(q[2].first, "192.0.2.2");
  assert_true(id[2] > id[1] && id[1] > id[0]);

  /* Known name, other type: NODATA. Unknown name: NXDOMAIN. */
  lsmtp_dns_query(r, "mx2.example.com", LSMTP_DNS_AAAA, record, &q[3], NULL);
  assert_int_equal(q[3].status, LSMTP_ERR_DNS);
  assert_int_equal(q[3].error, LSMTP_DNS_NODATA);
  lsmtp_dns_query(r, "nowhere.example", LSMTP_DNS_MX, record, &q[4], NULL);
  assert_int_equal(q[4].error, LSMTP_DNS_NXDOMAIN);
  lsmtp_dns_query(r, "broken.example", LSMTP_DNS_MX, record, &q[5], NULL);
  assert_int_equal(q[5].status, LSMTP_ERR_DNS);
  assert_int_equal(q[5].error, LSMTP_DNS_TEMPFAIL);
  lsmtp_dns_query(r, "slow.example", LSMTP_DNS_MX, record, &q[6], NULL);
  assert_int_equal(q[6].status, LSMTP_ERR_TIMEOUT);
  assert_int_equal(q[6].error, LSMTP_DNS_TIMEOUT);
  lsmtp_dns_query(r, "null.example", LSMTP_DNS_MX, record, &q[7], NULL);
  assert_int_equal(q[7].status, LSMTP_OK);
  assert_string_equal(q[7].first, ".");
  for (int i = 0; i < 8; i++) assert_int_equal(q[i].calls, 1);

  /* Bad arguments. */
  assert_int_equal(lsmtp_dns_static_add_addr(s, "x.example", "300.1.1.1"), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_dns_static_add_addr(s, "bad name", "192.0.2.1"), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_dns_static_set_error(s, "x.example", LSMTP_DNS_A, LSMTP_DNS_ABORTED),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_dns_static_set_error(s, "x.example", LSMTP_DNS_A, LSMTP_DNS_NOERROR),
                   LSMTP_ERR_INVALID);
  lsmtp_dns_static *t;
  assert_int_equal(lsmtp_dns_static_new(&t, NULL, 0x80), LSMTP_ERR_INVALID);
  assert_null(t);
  lsmtp_dns_static_del(s);
  lsmtp_dns_static_del(NULL);
}

static void test_query_checks(void **state) {
  (void)state;
  lsmtp_dns_static *s = make_table(LSMTP_DNS_STATIC_DEFER);
  const lsmtp_dns_resolver *r = lsmtp_dns_static_resolver(s);
  rec q[4];
  memset(q, 0, sizeof q);
  uint64_t id = 77;
  /* Refused before reaching the resolver: completes at once, id 0. */
  lsmtp_dns_query(r, "bad..name", LSMTP_DNS_MX, record, &q[0], &id);
  assert_int_equal(q[0].calls, 1);
  assert_int_equal(id, 0);
  assert_int_equal(q[0].status, LSMTP_ERR_INVALID);
  assert_int_equal(q[0].error, LSMTP_DNS_BADNAME);
  lsmtp_dns_query(NULL, "example.com", LSMTP_DNS_MX, record, &q[1], NULL);
  assert_int_equal(q[1].calls, 1);
  assert_int_equal(q[1].error, LSMTP_DNS_BADNAME);
  lsmtp_dns_query(r, "example.com", (lsmtp_dns_type)16, record, &q[2], NULL);
  assert_int_equal(q[2].calls, 1);
  assert_int_equal(q[2].error, LSMTP_DNS_BADNAME);
  lsmtp_dns_query(r, NULL, LSMTP_DNS_A, record, &q[3], NULL);
  assert_int_equal(q[3].calls, 1);
  assert_string_equal(q[3].name, "");
  /* Straight to the resolver with no name: BADNAME at once, not queued. */
  rec direct;
  memset(&direct, 0, sizeof direct);
  r->start(r->user_data, NULL, LSMTP_DNS_MX, record, &direct, &id);
  assert_int_equal(direct.calls, 1);
  assert_int_equal(direct.error, LSMTP_DNS_BADNAME);
  assert_int_not_equal(id, 0);
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, NULL, NULL, &id); /* no callback: nothing */
  assert_int_equal(id, 0);
  assert_int_equal(lsmtp_dns_static_pending(s), 0);
  lsmtp_dns_cancel(r, 0);
  lsmtp_dns_cancel(NULL, 5);
  lsmtp_dns_static_del(s);
}

static void test_defer_cancel_step(void **state) {
  (void)state;
  lsmtp_dns_static *s = make_table(LSMTP_DNS_STATIC_DEFER);
  const lsmtp_dns_resolver *r = lsmtp_dns_static_resolver(s);
  rec q[6];
  memset(q, 0, sizeof q);
  uint64_t id[6];
  const char *names[6] = {"example.com", "mx1.example.com", "nowhere.example",
                          "broken.example", "mx2.example.com", "example.com"};
  lsmtp_dns_type types[6] = {LSMTP_DNS_MX, LSMTP_DNS_A, LSMTP_DNS_MX,
                             LSMTP_DNS_MX, LSMTP_DNS_A, LSMTP_DNS_MX};
  for (int i = 0; i < 6; i++) lsmtp_dns_query(r, names[i], types[i], record, &q[i], &id[i]);
  for (int i = 0; i < 6; i++) assert_int_equal(q[i].calls, 0);
  assert_int_equal(lsmtp_dns_static_pending(s), 6);

  lsmtp_dns_cancel(r, id[1]);
  assert_int_equal(q[1].calls, 1);
  assert_int_equal(q[1].status, LSMTP_ERR_ABORTED);
  assert_int_equal(q[1].error, LSMTP_DNS_ABORTED);
  assert_string_equal(q[1].name, "mx1.example.com");
  lsmtp_dns_cancel(r, id[1]); /* again: ignored */
  lsmtp_dns_cancel(r, 999999); /* unknown: ignored */
  assert_int_equal(q[1].calls, 1);
  assert_int_equal(lsmtp_dns_static_pending(s), 5);

  assert_int_equal(lsmtp_dns_static_step(s), 5);
  assert_int_equal(q[0].status, LSMTP_OK);
  assert_int_equal(q[2].error, LSMTP_DNS_NXDOMAIN);
  assert_int_equal(q[3].error, LSMTP_DNS_TEMPFAIL);
  assert_string_equal(q[4].first, "192.0.2.2");
  lsmtp_dns_cancel(r, id[5]); /* completed already: ignored */
  assert_int_equal(lsmtp_dns_static_step(s), 0);
  for (int i = 0; i < 6; i++) assert_int_equal(q[i].calls, 1);
  lsmtp_dns_static_del(s);
  for (int i = 0; i < 6; i++) assert_int_equal(q[i].calls, 1);
}

/* A callback that starts one follow-up query (once) and cancels another. */
typedef struct chain {
  const lsmtp_dns_resolver *r;
  rec self;
  rec *follow;      /* started from the callback when non-NULL */
  uint64_t cancel_id;
  uint64_t follow_id;
} chain;

static void chain_done(void *data, const lsmtp_dns_answer *a) {
  chain *c = data;
  record(&c->self, a);
  if (c->cancel_id) lsmtp_dns_cancel(c->r, c->cancel_id);
  if (c->follow) {
    rec *f = c->follow;
    c->follow = NULL;
    lsmtp_dns_query(c->r, "example.com", LSMTP_DNS_MX, record, f, &c->follow_id);
  }
}

static void test_callbacks_start_and_cancel(void **state) {
  (void)state;
  lsmtp_dns_static *s = make_table(LSMTP_DNS_STATIC_DEFER);
  const lsmtp_dns_resolver *r = lsmtp_dns_static_resolver(s);
  rec follow, victim;
  memset(&follow, 0, sizeof follow);
  memset(&victim, 0, sizeof victim);
  chain c;
  memset(&c, 0, sizeof c);
  c.r = r;
  c.follow = &follow;
  uint64_t cid, vid;
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, chain_done, &c, &cid);
  lsmtp_dns_query(r, "mx1.example.com", LSMTP_DNS_A, record, &victim, &vid);
  c.cancel_id = vid;
  /* Step: c completes, cancels the victim (which completes aborted) and
   * starts a follow-up that waits for the next step. */
  assert_int_equal(lsmtp_dns_static_step(s), 1);
  assert_int_equal(c.self.calls, 1);
  assert_int_equal(victim.calls, 1);
  assert_int_equal(victim.status, LSMTP_ERR_ABORTED);
  assert_int_equal(follow.calls, 0);
  assert_int_equal(lsmtp_dns_static_pending(s), 1);
  assert_int_equal(lsmtp_dns_static_step(s), 1);
  assert_int_equal(follow.calls, 1);
  assert_int_equal(follow.status, LSMTP_OK);
  assert_int_equal(victim.calls, 1);
  lsmtp_dns_static_del(s);

  /* Immediate mode: the follow-up completes inside the callback, and the
   * outer answer is still intact afterwards (own builder per answer). */
  s = make_table(0);
  r = lsmtp_dns_static_resolver(s);
  memset(&c, 0, sizeof c);
  memset(&follow, 0, sizeof follow);
  c.r = r;
  c.follow = &follow;
  lsmtp_dns_query(r, "mx1.example.com", LSMTP_DNS_A, chain_done, &c, &cid);
  assert_int_equal(c.self.calls, 1);
  assert_string_equal(c.self.first, "192.0.2.1");
  assert_int_equal(follow.calls, 1);
  assert_int_not_equal(c.follow_id, 0);
  lsmtp_dns_static_del(s);
}

static void test_destroy_in_flight(void **state) {
  (void)state;
  lsmtp_dns_static *s = make_table(LSMTP_DNS_STATIC_DEFER);
  const lsmtp_dns_resolver *r = lsmtp_dns_static_resolver(s);
  rec q[MAXQ];
  memset(q, 0, sizeof q);
  for (int i = 0; i < MAXQ - 2; i++)
    lsmtp_dns_query(r, i % 2 ? "example.com" : "mx1.example.com",
                    i % 3 ? LSMTP_DNS_MX : LSMTP_DNS_A, record, &q[i], NULL);
  /* One whose callback starts another query while the resolver dies. */
  rec follow;
  memset(&follow, 0, sizeof follow);
  chain c;
  memset(&c, 0, sizeof c);
  c.r = r;
  c.follow = &follow;
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, chain_done, &c, NULL);
  assert_int_equal(lsmtp_dns_static_pending(s), MAXQ - 1);
  lsmtp_dns_static_del(s);
  for (int i = 0; i < MAXQ - 2; i++) {
    assert_int_equal(q[i].calls, 1);
    assert_int_equal(q[i].status, LSMTP_ERR_ABORTED);
  }
  assert_int_equal(c.self.calls, 1);
  assert_int_equal(c.self.status, LSMTP_ERR_ABORTED);
  assert_int_equal(follow.calls, 1);
  assert_int_equal(follow.status, LSMTP_ERR_ABORTED);
  assert_int_not_equal(c.follow_id, 0);
}

/* ------------------------------------------------------------------ */
/* The DNS message parser                                              */
/* ------------------------------------------------------------------ */

typedef struct msg {
  unsigned char b[4096];
  size_t n;
} msg;

static void put8(msg *m, unsigned v) { m->b[m->n++] = (unsigned char)v; }
static void put16(msg *m, unsigned v) {
  put8(m, v >> 8);
  put8(m, v & 0xff);
}
static void put_name(msg *m, const char *dotted) {
  while (*dotted) {
    const char *dot = strchr(dotted, '.');
    size_t l = dot ? (size_t)(dot - dotted) : strlen(dotted);
    put8(m, (unsigned)l);
    memcpy(m->b + m->n, dotted, l);
    m->n += l;
    dotted += l;
    if (*dotted == '.') dotted++;
  }
  put8(m, 0);
}
static void header(msg *m, unsigned flags, unsigned qd, unsigned an) {
  m->n = 0;
  put16(m, 0x1234);
  put16(m, flags);
  put16(m, qd);
  put16(m, an);
  put16(m, 0);
  put16(m, 0);
}
/* Header and the question for qname/qtype; returns the question's offset. */
static size_t question(msg *m, unsigned flags, unsigned an, const char *qname, unsigned qtype) {
  header(m, flags, 1, an);
  size_t at = m->n;
  put_name(m, qname);
  put16(m, qtype);
  put16(m, 1);
  return at;
}
static void rr_head(msg *m, unsigned type, unsigned rdlen) {
  put16(m, type);
  put16(m, 1);
  put16(m, 0);
  put16(m, 300);
  put16(m, rdlen);
}

static lsmtp_dns_error parse(const msg *m, const char *qname, lsmtp_dns_type t,
                             lsmtp__dns_abuf *b) {
  /* An exact-size heap copy: under ASan, an over-read faults. */
  unsigned char *copy = malloc(m->n ? m->n : 1);
  assert_non_null(copy);
  memcpy(copy, m->b, m->n);
  lsmtp_dns_error e = lsmtp__dns_parse_reply(copy, m->n, qname, t, b);
  free(copy);
  return e;
}

/* Every strict prefix of a message whose answers fill it is malformed. */
static void check_prefixes(const msg *m, const char *qname, lsmtp_dns_type t) {
  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, NULL);
  msg cut = *m;
  for (size_t n = 0; n < m->n; n++) {
    cut.n = n;
    assert_int_equal(parse(&cut, qname, t, &b), LSMTP_DNS_TEMPFAIL);
  }
  lsmtp__dns_abuf_free(&b);
}

static void test_wire_mx(void **state) {
  (void)state;
  msg m;
  size_t q = question(&m, 0x8180, 3, "example.com", 15);
  /* Answer 1: owner by pointer to the question, exchange written out. */
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 15, 2 + 17);
  put16(&m, 10);
  put_name(&m, "mx1.example.com");
  /* Answer 2: exchange "mx2" + pointer to "example.com" in the question. */
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 15, 2 + 4 + 2);
  put16(&m, 20);
  put8(&m, 3);
  memcpy(m.b + m.n, "MX2", 3);
  m.n += 3;
  put16(&m, 0xC000 | (unsigned)q);
  /* Answer 3: an A record in the answer section is not an MX: skipped. */
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 1, 4);
  put8(&m, 192); put8(&m, 0); put8(&m, 2); put8(&m, 1);

  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, NULL);
  assert_int_equal(parse(&m, "Example.COM.", LSMTP_DNS_MX, &b), LSMTP_DNS_NOERROR);
  lsmtp_dns_answer a;
  lsmtp__dns_abuf_answer(&b, "example.com", LSMTP_DNS_MX, &a);
  assert_int_equal(a.status, LSMTP_OK);
  assert_int_equal(a.mx_count, 2);
  assert_string_equal(a.mx[0].host, "mx1.example.com");
  assert_int_equal(a.mx[0].preference, 10);
  assert_string_equal(a.mx[1].host, "MX2.example.com");
  assert_int_equal(a.mx[1].preference, 20);
  assert_int_equal(a.flags, 0);
  check_prefixes(&m, "example.com", LSMTP_DNS_MX);

  /* Asked for another name or type: not our reply. */
  assert_int_equal(parse(&m, "example.org", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_A, &b), LSMTP_DNS_TEMPFAIL);

  /* AD bit. */
  m.b[3] |= 0x20;
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_NOERROR);
  assert_int_equal(b.flags, LSMTP_DNS_AUTHENTIC);
  lsmtp__dns_abuf_free(&b);
}

static void test_wire_rcodes(void **state) {
  (void)state;
  msg m;
  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, NULL);
  question(&m, 0x8183, 0, "example.com", 15);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_NXDOMAIN);
  question(&m, 0x8182, 0, "example.com", 15);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  question(&m, 0x8185, 0, "example.com", 15); /* REFUSED */
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  question(&m, 0x8180, 0, "example.com", 15);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_NODATA);
  check_prefixes(&m, "example.com", LSMTP_DNS_MX);
  question(&m, 0x0180, 0, "example.com", 15); /* a query, not a reply */
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  /* Truncated (TC): never act on part of an MX list. */
  size_t q = question(&m, 0x8380, 1, "example.com", 15);
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 15, 2 + 1);
  put16(&m, 0);
  put8(&m, 0);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  m.b[2] = 0x81; /* clear TC: now it is a null MX */
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_NOERROR);
  assert_int_equal(b.mx_count, 1);
  lsmtp_dns_answer a;
  lsmtp__dns_abuf_answer(&b, "example.com", LSMTP_DNS_MX, &a);
  assert_string_equal(a.mx[0].host, ".");
  lsmtp__dns_abuf_free(&b);
}

static void test_wire_cname_and_addresses(void **state) {
  (void)state;
  msg m;
  size_t q = question(&m, 0x8180, 4, "www.example.com", 28);
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 5, 14);
  size_t target = m.n;
  put_name(&m, "host.example"); /* 14 octets */
  put16(&m, 0xC000 | (unsigned)target);
  rr_head(&m, 28, 16);
  for (unsigned i = 0; i < 16; i++) put8(&m, i == 15 ? 1u : i == 0 ? 0x20u : 0u);
  /* An AAAA for a name nothing leads to: ignored. */
  put_name(&m, "other.example");
  rr_head(&m, 28, 16);
  for (unsigned i = 0; i < 16; i++) put8(&m, 0xff);
  /* The same address again via the alias. */
  put16(&m, 0xC000 | (unsigned)target);
  rr_head(&m, 28, 16);
  for (unsigned i = 0; i < 16; i++) put8(&m, i == 15 ? 2u : i == 0 ? 0x20u : 0u);

  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, NULL);
  assert_int_equal(parse(&m, "www.example.com", LSMTP_DNS_AAAA, &b), LSMTP_DNS_NOERROR);
  assert_int_equal(b.addr_count, 2);
  char t[48];
  lsmtp_dns_addr_format(&b.addr[0], t, sizeof t);
  assert_string_equal(t, "2000::1");
  lsmtp_dns_addr_format(&b.addr[1], t, sizeof t);
  assert_string_equal(t, "2000::2");
  check_prefixes(&m, "www.example.com", LSMTP_DNS_AAAA);

  /* A wrong RDATA length for AAAA is malformed. */
  q = question(&m, 0x8180, 1, "h.example", 1);
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 1, 3);
  put8(&m, 1); put8(&m, 2); put8(&m, 3);
  assert_int_equal(parse(&m, "h.example", LSMTP_DNS_A, &b), LSMTP_DNS_TEMPFAIL);
  lsmtp__dns_abuf_free(&b);
}

static void test_wire_hostile_names(void **state) {
  (void)state;
  msg m;
  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, NULL);
  /* A pointer to itself, and one pointing forward: both refused. */
  size_t q = question(&m, 0x8180, 1, "example.com", 15);
  size_t here = m.n;
  put16(&m, 0xC000 | (unsigned)here);
  rr_head(&m, 15, 3);
  put16(&m, 1);
  put8(&m, 0);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  m.b[here + 1] = (unsigned char)(here + 2);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  /* Two pointers into each other further back: still refused. */
  header(&m, 0x8180, 0, 1);
  size_t a = m.n;
  put16(&m, 0xC000 | (unsigned)(a + 2));
  put16(&m, 0xC000 | (unsigned)a);
  rr_head(&m, 15, 3);
  put16(&m, 1);
  put8(&m, 0);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);

  /* Odd bytes in a label come out escaped, and the name is then unusable
   * for MX selection. */
  q = question(&m, 0x8180, 1, "example.com", 15);
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 15, 2 + 1 + 5 + 1);
  put16(&m, 5);
  put8(&m, 5);
  memcpy(m.b + m.n, "a.b \x01", 5);
  m.n += 5;
  put8(&m, 0);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_NOERROR);
  lsmtp_dns_answer ans;
  lsmtp__dns_abuf_answer(&b, "example.com", LSMTP_DNS_MX, &ans);
  assert_string_equal(ans.mx[0].host, "a\\.b\\032\\001");

  /* A name over 255 octets. */
  q = question(&m, 0x8180, 1, "example.com", 15);
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 15, 2 + 5 * 52 + 1);
  put16(&m, 5);
  for (int i = 0; i < 52; i++) {
    put8(&m, 4);
    memcpy(m.b + m.n, "abcd", 4);
    m.n += 4;
  }
  put8(&m, 0);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  /* RDATA that ends before the name does. */
  q = question(&m, 0x8180, 1, "example.com", 15);
  put16(&m, 0xC000 | (unsigned)q);
  rr_head(&m, 15, 4);
  put16(&m, 5);
  put8(&m, 1);
  put8(&m, 'a');
  put8(&m, 0);
  assert_int_equal(parse(&m, "example.com", LSMTP_DNS_MX, &b), LSMTP_DNS_TEMPFAIL);
  lsmtp__dns_abuf_free(&b);
}

static void test_wire_record_bound(void **state) {
  (void)state;
  /* 300 MX records of 17 octets each: more than LSMTP_DNS_MAX_RECORDS. */
  static unsigned char big[16384];
  msg *h = calloc(1, sizeof *h);
  assert_non_null(h);
  size_t q = question(h, 0x8180, 300, "example.com", 15);
  memcpy(big, h->b, h->n);
  size_t n = h->n;
  for (int i = 0; i < 300; i++) {
    big[n++] = (unsigned char)(0xC0 | (q >> 8));
    big[n++] = (unsigned char)q;
    /* type MX, class IN, TTL 300, RDLENGTH 5, preference i, "m" */
    const unsigned char rr[] = {0, 15, 0, 1, 0, 0, 1, 44, 0, 5, 0, 0, 1, 'm', 0};
    memcpy(big + n, rr, sizeof rr);
    big[n + 10] = (unsigned char)(i >> 8);
    big[n + 11] = (unsigned char)i;
    n += sizeof rr;
  }
  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, NULL);
  assert_int_equal(lsmtp__dns_parse_reply(big, n, "example.com", LSMTP_DNS_MX, &b),
                   LSMTP_DNS_NOERROR);
  assert_int_equal(b.mx_count, LSMTP_DNS_MAX_RECORDS);
  lsmtp_dns_answer a;
  lsmtp__dns_abuf_answer(&b, "example.com", LSMTP_DNS_MX, &a);
  assert_string_equal(a.mx[255].host, "m");
  assert_int_equal(a.mx[255].preference, 255);
  lsmtp__dns_abuf_free(&b);
  free(h);
}

/* ------------------------------------------------------------------ */
/* MX selection                                                        */
/* ------------------------------------------------------------------ */

static lsmtp_dns_answer mx_answer(const lsmtp_dns_mx *mx, size_t n) {
  lsmtp_dns_answer a;
  memset(&a, 0, sizeof a);
  a.status = LSMTP_OK;
  a.type = LSMTP_DNS_MX;
  a.name = "example.com";
  a.mx = mx;
  a.mx_count = n;
  return a;
}

static lsmtp_dns_answer mx_error(int status, lsmtp_dns_error e) {
  lsmtp_dns_answer a;
  memset(&a, 0, sizeof a);
  a.status = status;
  a.error = e;
  a.type = LSMTP_DNS_MX;
  a.name = "example.com";
  return a;
}

/* The plan's hosts as "name/pref name/pref ...". */
static const char *hosts_of(const lsmtp_mx_plan *p) {
  static char out[4096];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < lsmtp_mx_plan_host_count(p); i++) {
    uint16_t pref;
    const char *h = lsmtp_mx_plan_host(p, i, &pref);
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%s/%u", i ? " " : "", h, (unsigned)pref);
  }
  return out;
}

static lsmtp_mx_plan *new_plan(void) {
  lsmtp_mx_plan *p;
  assert_int_equal(lsmtp_mx_plan_new(&p, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_PENDING);
  return p;
}

static void test_mx_order_by_preference(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  const lsmtp_dns_mx mx[] = {{"c.example", 30}, {"a.example", 10}, {"b.example.", 20}, {"Z.example", 5}};
  lsmtp_dns_answer a = mx_answer(mx, 4);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_OK);
  assert_false(lsmtp_mx_plan_is_implicit(p));
  assert_string_equal(hosts_of(p), "z.example/5 a.example/10 b.example/20 c.example/30");
  assert_null(lsmtp_mx_plan_host(p, 4, NULL));
  /* Invalid inputs. */
  assert_int_equal(lsmtp_mx_plan_build(p, "192.0.2.1", &a), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_mx_plan_build(p, "[192.0.2.1]", &a), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_PENDING);
  assert_int_equal(lsmtp_mx_plan_host_count(p), 0);
  lsmtp_dns_answer wrong = a;
  wrong.type = LSMTP_DNS_A;
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &wrong), LSMTP_ERR_INVALID);
  lsmtp_mx_plan_del(p);
  lsmtp_mx_plan_del(NULL);
}

static void test_mx_seed_is_deterministic(void **state) {
  (void)state;
  const lsmtp_dns_mx mx[] = {{"a.example", 10}, {"b.example", 10}, {"c.example", 10},
                             {"d.example", 10}, {"e.example", 20}, {"f.example", 20}};
  lsmtp_dns_answer a = mx_answer(mx, 6);
  char first[256];
  lsmtp_mx_plan *p = new_plan();
  lsmtp_mx_plan_set_seed(p, 42);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  snprintf(first, sizeof first, "%s", hosts_of(p));
  lsmtp_mx_plan_set_seed(p, 42);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_string_equal(hosts_of(p), first);
  /* Some seed gives another order (else nothing is random at all). */
  int differs = 0;
  for (uint64_t seed = 0; seed < 20 && !differs; seed++) {
    lsmtp_mx_plan_set_seed(p, seed);
    assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
    differs = strcmp(hosts_of(p), first) != 0;
  }
  assert_true(differs);
  lsmtp_mx_plan_del(p);
}

/* Over many seeds, each order of equal preferences appears, about evenly,
 * and a better preference always comes first. */
static void test_mx_every_permutation(void **state) {
  (void)state;
  const lsmtp_dns_mx mx[] = {{"late.example", 50}, {"a.example", 10}, {"b.example", 10},
                             {"c.example", 10}, {"first.example", 1}};
  lsmtp_dns_answer a = mx_answer(mx, 5);
  const char *perms[6] = {"a b c", "a c b", "b a c", "b c a", "c a b", "c b a"};
  int seen[6] = {0};
  lsmtp_mx_plan *p = new_plan();
  for (uint64_t seed = 0; seed < 1200; seed++) {
    lsmtp_mx_plan_set_seed(p, seed * 7919u);
    assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
    assert_int_equal(lsmtp_mx_plan_host_count(p), 5);
    assert_string_equal(lsmtp_mx_plan_host(p, 0, NULL), "first.example");
    assert_string_equal(lsmtp_mx_plan_host(p, 4, NULL), "late.example");
    char key[8] = {lsmtp_mx_plan_host(p, 1, NULL)[0], ' ', lsmtp_mx_plan_host(p, 2, NULL)[0],
                   ' ', lsmtp_mx_plan_host(p, 3, NULL)[0], '\0'};
    int found = 0;
    for (int k = 0; k < 6; k++)
      if (strcmp(key, perms[k]) == 0) {
        seen[k]++;
        found = 1;
      }
    assert_true(found);
  }
  for (int k = 0; k < 6; k++) {
    assert_true(seen[k] > 120); /* expected 200 each */
    assert_true(seen[k] < 280);
  }
  lsmtp_mx_plan_del(p);
}

static uint32_t counter_rng(void *data) {
  uint32_t *c = data;
  return (*c)++;
}

static uint32_t zero_rng(void *data) {
  (void)data;
  return 0;
}

static void test_mx_random_function(void **state) {
  (void)state;
  const lsmtp_dns_mx mx[] = {{"a.example", 10}, {"b.example", 10}, {"c.example", 10}};
  lsmtp_dns_answer a = mx_answer(mx, 3);
  lsmtp_mx_plan *p = new_plan();
  uint32_t c = 0;
  lsmtp_mx_plan_set_random(p, counter_rng, &c);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  /* k=3: 0 is below the bias threshold (2^32 mod 3 = 1) and is drawn
   * again; 1 % 3 = 1 swaps [2] and [1]: a c b. k=2: 2 % 2 = 0 swaps [1]
   * and [0]: c a b. Three draws in all. */
  assert_string_equal(hosts_of(p), "c.example/10 a.example/10 b.example/10");
  assert_int_equal(c, 3);
  /* A source that always returns 0 falls in the rejected zone for k=3;
   * the shuffle still ends. */
  lsmtp_mx_plan_set_random(p, zero_rng, NULL);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_host_count(p), 3);
  lsmtp_mx_plan_del(p);
}

static void expect_failure(lsmtp_mx_result r, int temporary, int code, const char *enh) {
  const lsmtp_mx_failure *f = lsmtp_mx_result_failure(r);
  assert_non_null(f);
  assert_int_equal(f->temporary, temporary);
  assert_int_equal(f->reply_code, code);
  assert_string_equal(f->enhanced, enh);
  assert_true(strlen(f->text) > 0);
}

static void test_mx_null_mx(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  const lsmtp_dns_mx null1[] = {{".", 0}};
  lsmtp_dns_answer a = mx_answer(null1, 1);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_NULL_MX);
  assert_int_equal(lsmtp_mx_plan_host_count(p), 0);
  expect_failure(LSMTP_MX_NULL_MX, 0, 556, "5.1.10");
  /* "" is the root too; a repeated null MX is still a null MX. */
  const lsmtp_dns_mx null2[] = {{"", 0}, {".", 0}};
  a = mx_answer(null2, 2);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_NULL_MX);
  /* The root among real MXs is just an unusable record. */
  const lsmtp_dns_mx mixed[] = {{".", 0}, {"mx.example", 10}};
  a = mx_answer(mixed, 2);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_OK);
  assert_string_equal(hosts_of(p), "mx.example/10");
  /* The root at another preference is not RFC 7505's null MX, and it
   * names no host: nothing to try, permanently. */
  const lsmtp_dns_mx root10[] = {{".", 10}};
  a = mx_answer(root10, 1);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_NO_HOSTS);
  expect_failure(LSMTP_MX_NO_HOSTS, 0, 554, "5.4.4");
  lsmtp_mx_plan_del(p);
}

static void test_mx_implicit(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  lsmtp_dns_answer nodata = mx_error(LSMTP_ERR_DNS, LSMTP_DNS_NODATA);
  assert_int_equal(lsmtp_mx_plan_build(p, "Example.COM.", &nodata), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_OK);
  assert_true(lsmtp_mx_plan_is_implicit(p));
  assert_string_equal(hosts_of(p), "example.com/0");
  /* A NULL answer and an empty success mean the same. */
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", NULL), LSMTP_OK);
  assert_string_equal(hosts_of(p), "example.com/0");
  lsmtp_dns_answer empty = mx_answer(NULL, 0);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &empty), LSMTP_OK);
  assert_true(lsmtp_mx_plan_is_implicit(p));
  assert_string_equal(hosts_of(p), "example.com/0");
  lsmtp_mx_plan_del(p);
}

static void test_mx_errors(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  struct {
    int status;
    lsmtp_dns_error e;
    lsmtp_mx_result want;
  } cases[] = {
      {LSMTP_ERR_DNS, LSMTP_DNS_NXDOMAIN, LSMTP_MX_NO_DOMAIN},
      {LSMTP_ERR_DNS, LSMTP_DNS_TEMPFAIL, LSMTP_MX_TEMPFAIL},
      {LSMTP_ERR_TIMEOUT, LSMTP_DNS_TIMEOUT, LSMTP_MX_TEMPFAIL},
      {LSMTP_ERR_NOMEM, LSMTP_DNS_TEMPFAIL, LSMTP_MX_TEMPFAIL},
      {LSMTP_ERR_ABORTED, LSMTP_DNS_ABORTED, LSMTP_MX_ABORTED},
      {LSMTP_ERR_INVALID, LSMTP_DNS_BADNAME, LSMTP_MX_NO_DOMAIN},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lsmtp_dns_answer a = mx_error(cases[i].status, cases[i].e);
    assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
    assert_int_equal(lsmtp_mx_plan_result(p), cases[i].want);
    assert_int_equal(lsmtp_mx_plan_host_count(p), 0);
    assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_ERR_STATE);
  }
  expect_failure(LSMTP_MX_NO_DOMAIN, 0, 550, "5.1.2");
  expect_failure(LSMTP_MX_TEMPFAIL, 1, 451, "4.4.3");
  expect_failure(LSMTP_MX_LOOP, 0, 554, "5.4.6");
  expect_failure(LSMTP_MX_NO_ADDRESS, 0, 554, "5.4.4");
  expect_failure(LSMTP_MX_ABORTED, 1, 451, "4.4.3");
  expect_failure((lsmtp_mx_result)1000, 1, 451, "4.4.3");
  lsmtp_mx_plan_del(p);
}

static void test_mx_local_cutoff(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  const char *me[] = {"relay.example", "ME.example."};
  assert_int_equal(lsmtp_mx_plan_set_local_names(p, me, 2), LSMTP_OK);
  const lsmtp_dns_mx mx[] = {{"a.example", 10}, {"me.example", 20}, {"b.example", 30},
                             {"c.example", 20}, {"d.example", 5}};
  lsmtp_dns_answer a = mx_answer(mx, 5);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_OK);
  assert_string_equal(hosts_of(p), "d.example/5 a.example/10");
  /* Our best preference counts when we appear twice. */
  const lsmtp_dns_mx twice[] = {{"a.example", 10}, {"relay.example", 30}, {"me.example.", 8}};
  a = mx_answer(twice, 3);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_LOOP);
  /* We are the best MX: nothing better remains. */
  const lsmtp_dns_mx best[] = {{"Relay.Example", 10}, {"b.example", 20}};
  a = mx_answer(best, 2);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_LOOP);
  assert_int_equal(lsmtp_mx_plan_host_count(p), 0);
  /* The implicit MX of our own name loops as well. */
  assert_int_equal(lsmtp_mx_plan_build(p, "relay.example", NULL), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_LOOP);
  /* Without local names all are kept. */
  assert_int_equal(lsmtp_mx_plan_set_local_names(p, NULL, 0), LSMTP_OK);
  a = mx_answer(best, 2);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_string_equal(hosts_of(p), "relay.example/10 b.example/20");
  /* Limits and bad names. */
  const char *many[LSMTP_MX_MAX_LOCAL_NAMES + 1];
  for (size_t i = 0; i <= LSMTP_MX_MAX_LOCAL_NAMES; i++) many[i] = "x.example";
  assert_int_equal(lsmtp_mx_plan_set_local_names(p, many, LSMTP_MX_MAX_LOCAL_NAMES + 1),
                   LSMTP_ERR_LIMIT);
  const char *bad[] = {"ok.example", "not ok"};
  assert_int_equal(lsmtp_mx_plan_set_local_names(p, bad, 2), LSMTP_ERR_INVALID);
  lsmtp_mx_plan_del(p);
}

static void test_mx_duplicates_and_invalid_targets(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  const lsmtp_dns_mx mx[] = {
      {"b.example", 20},     {"B.EXAMPLE.", 5},   {"b.example", 40},  {"192.0.2.1", 1},
      {"[192.0.2.1]", 1},    {"2001:db8::1", 1},  {"1.2.3", 1},       {"a\\032b.example", 1},
      {"bad..example", 1},   {"a.example", 10},   {"a.example", 10},  {NULL, 3},
  };
  lsmtp_dns_answer a = mx_answer(mx, sizeof mx / sizeof mx[0]);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_OK);
  assert_string_equal(hosts_of(p), "b.example/5 a.example/10");
  /* Only unusable records: permanent. */
  a = mx_answer(mx + 3, 6);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_NO_HOSTS);
  lsmtp_mx_plan_del(p);
}

static void test_mx_host_bound(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  static char names[40][32];
  lsmtp_dns_mx mx[40];
  for (int i = 0; i < 40; i++) {
    snprintf(names[i], sizeof names[i], "mx%02d.example", i);
    mx[i].host = names[i];
    mx[i].preference = (uint16_t)(100 - i); /* mx39 is best */
  }
  lsmtp_dns_answer a = mx_answer(mx, 40);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_host_count(p), LSMTP_MX_MAX_HOSTS);
  uint16_t pref;
  assert_string_equal(lsmtp_mx_plan_host(p, 0, &pref), "mx39.example");
  assert_int_equal(pref, 61);
  assert_string_equal(lsmtp_mx_plan_host(p, 31, &pref), "mx08.example");
  assert_int_equal(pref, 92);
  lsmtp_mx_plan_del(p);
}

/* ---- address phase ---- */

static lsmtp_dns_answer addr_answer(lsmtp_dns_type t, const lsmtp_dns_addr *addrs, size_t n) {
  lsmtp_dns_answer a;
  memset(&a, 0, sizeof a);
  a.status = LSMTP_OK;
  a.type = t;
  a.name = "h";
  a.addr = addrs;
  a.addr_count = n;
  return a;
}

static lsmtp_dns_addr v4(unsigned last) {
  lsmtp_dns_addr a = {LSMTP_DNS_A, {192, 0, 2, (unsigned char)last}};
  return a;
}

static lsmtp_dns_addr v6(unsigned last) {
  lsmtp_dns_addr a = {LSMTP_DNS_AAAA, {0x20, 0x01, 0x0d, 0xb8, [14] = (unsigned char)(last >> 8),
                                       [15] = (unsigned char)last}};
  return a;
}

static const char *targets_of(const lsmtp_mx_plan *p) {
  static char out[8192];
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < lsmtp_mx_plan_target_count(p); i++) {
    const lsmtp_mx_target *t = lsmtp_mx_plan_target(p, i);
    char ip[48];
    assert_true(lsmtp_dns_addr_format(&t->addr, ip, sizeof ip) > 0);
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%s=%s", i ? " " : "", t->host, ip);
  }
  return out;
}

/* Two hosts: a (v4 .1 .2, v6 ::1), b (v4 .2 .3, NODATA v6). */
static lsmtp_mx_plan *two_hosts(lsmtp_mx_order order) {
  lsmtp_mx_plan *p = new_plan();
  lsmtp_mx_plan_set_order(p, order);
  const lsmtp_dns_mx mx[] = {{"a.example", 10}, {"b.example", 20}};
  lsmtp_dns_answer a = mx_answer(mx, 2);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &a), LSMTP_OK);
  lsmtp_dns_addr a4[] = {v4(1), v4(2), v4(1)};
  lsmtp_dns_addr a6[] = {v6(1)};
  lsmtp_dns_addr b4[] = {v4(2), v4(3)};
  lsmtp_dns_answer ans = addr_answer(LSMTP_DNS_A, a4, 3);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &ans), LSMTP_OK);
  ans = addr_answer(LSMTP_DNS_AAAA, a6, 1);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &ans), LSMTP_OK);
  ans = addr_answer(LSMTP_DNS_A, b4, 2);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 1, &ans), LSMTP_OK);
  ans.type = LSMTP_DNS_AAAA;
  ans.status = LSMTP_ERR_DNS;
  ans.error = LSMTP_DNS_NODATA;
  ans.addr = NULL;
  ans.addr_count = 0;
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 1, &ans), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_OK);
  return p;
}

static void test_addr_orders(void **state) {
  (void)state;
  lsmtp_mx_plan *p = two_hosts(LSMTP_MX_IPV6_FIRST);
  assert_string_equal(targets_of(p),
                      "a.example=2001:db8::1 a.example=192.0.2.1 a.example=192.0.2.2 "
                      "b.example=192.0.2.3");
  const lsmtp_mx_target *t = lsmtp_mx_plan_target(p, 3);
  assert_int_equal(t->host_index, 1);
  assert_int_equal(t->preference, 20);
  assert_null(lsmtp_mx_plan_target(p, 4));
  lsmtp_mx_plan_del(p);
  p = two_hosts(LSMTP_MX_IPV4_FIRST);
  assert_string_equal(targets_of(p),
                      "a.example=192.0.2.1 a.example=192.0.2.2 a.example=2001:db8::1 "
                      "b.example=192.0.2.3");
  lsmtp_mx_plan_del(p);
  p = two_hosts(LSMTP_MX_IPV6_ONLY);
  assert_string_equal(targets_of(p), "a.example=2001:db8::1");
  lsmtp_mx_plan_del(p);
  p = two_hosts(LSMTP_MX_IPV4_ONLY);
  assert_string_equal(targets_of(p), "a.example=192.0.2.1 a.example=192.0.2.2 b.example=192.0.2.3");
  /* Bad calls. */
  lsmtp_dns_answer mxa = mx_answer(NULL, 0);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &mxa), LSMTP_ERR_INVALID);
  lsmtp_dns_answer ok = addr_answer(LSMTP_DNS_A, NULL, 0);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 2, &ok), LSMTP_ERR_INVALID);
  lsmtp_mx_plan_del(p);
  p = new_plan();
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &ok), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_ERR_STATE);
  lsmtp_mx_plan_del(p);
}

static void test_addr_cap_is_fair(void **state) {
  (void)state;
  lsmtp_dns_addr a4[20], a6[20];
  for (unsigned i = 0; i < 20; i++) {
    a4[i] = v4(i + 1);
    a6[i] = v6(i + 1);
  }
  size_t want4[] = {20, 3, 0, 20};
  size_t want6[] = {20, 20, 20, 2};
  size_t kept4[] = {8, 3, 0, 14};
  size_t kept6[] = {8, 13, 16, 2};
  for (int c = 0; c < 4; c++) {
    lsmtp_mx_plan *p = new_plan();
    assert_int_equal(lsmtp_mx_plan_build(p, "h.example", NULL), LSMTP_OK);
    lsmtp_dns_answer ans = addr_answer(LSMTP_DNS_A, a4, want4[c]);
    assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &ans), LSMTP_OK);
    ans = addr_answer(LSMTP_DNS_AAAA, a6, want6[c]);
    assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &ans), LSMTP_OK);
    assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_OK);
    size_t n4 = 0, n6 = 0;
    for (size_t i = 0; i < lsmtp_mx_plan_target_count(p); i++) {
      const lsmtp_mx_target *t = lsmtp_mx_plan_target(p, i);
      if (t->addr.type == LSMTP_DNS_A) n4++;
      else n6++;
      /* IPv6 first: every v6 target precedes every v4 one. */
      if (t->addr.type == LSMTP_DNS_AAAA) assert_int_equal(n4, 0);
    }
    assert_int_equal(n4, kept4[c]);
    assert_int_equal(n6, kept6[c]);
    assert_true(n4 + n6 <= LSMTP_MX_MAX_ADDRS);
    lsmtp_mx_plan_del(p);
  }
}

static void test_addr_outcomes(void **state) {
  (void)state;
  lsmtp_mx_plan *p = new_plan();
  const lsmtp_dns_mx mx[] = {{"a.example", 10}, {"b.example", 20}};
  lsmtp_dns_answer m = mx_answer(mx, 2);
  lsmtp_dns_answer nx = mx_error(LSMTP_ERR_DNS, LSMTP_DNS_NXDOMAIN);
  lsmtp_dns_answer nd = mx_error(LSMTP_ERR_DNS, LSMTP_DNS_NODATA);
  lsmtp_dns_answer tf = mx_error(LSMTP_ERR_TIMEOUT, LSMTP_DNS_TIMEOUT);
  /* All permanent: no address. */
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &m), LSMTP_OK);
  for (size_t h = 0; h < 2; h++) {
    nx.type = LSMTP_DNS_A;
    nd.type = LSMTP_DNS_AAAA;
    assert_int_equal(lsmtp_mx_plan_add_addresses(p, h, &nx), LSMTP_OK);
    assert_int_equal(lsmtp_mx_plan_add_addresses(p, h, &nd), LSMTP_OK);
  }
  assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_NO_ADDRESS);
  assert_int_equal(lsmtp_mx_plan_target_count(p), 0);
  /* One timeout among them: retry later. */
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &m), LSMTP_OK);
  for (size_t h = 0; h < 2; h++) {
    assert_int_equal(lsmtp_mx_plan_add_addresses(p, h, &nx), LSMTP_OK);
    tf.type = LSMTP_DNS_AAAA;
    assert_int_equal(lsmtp_mx_plan_add_addresses(p, h, h ? &tf : &nd), LSMTP_OK);
  }
  assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_TEMPFAIL);
  /* A family never recorded counts as not known yet: retry later. */
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &m), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &nx), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_TEMPFAIL);
  /* ... unless the order excludes that family. */
  lsmtp_mx_plan_set_order(p, LSMTP_MX_IPV4_ONLY);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &m), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &nx), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 1, &nx), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_NO_ADDRESS);
  /* Some addresses despite a failure elsewhere: try them. */
  lsmtp_dns_addr one = v4(9);
  lsmtp_dns_answer ok = addr_answer(LSMTP_DNS_A, &one, 1);
  assert_int_equal(lsmtp_mx_plan_build(p, "example.com", &m), LSMTP_OK);
  tf.type = LSMTP_DNS_A;
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 0, &tf), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_add_addresses(p, 1, &ok), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_finish(p), LSMTP_OK);
  assert_int_equal(lsmtp_mx_plan_result(p), LSMTP_MX_OK);
  assert_string_equal(targets_of(p), "b.example=192.0.2.9");
  lsmtp_mx_plan_del(p);
}

/* ------------------------------------------------------------------ */
/* The lookup driver                                                   */
/* ------------------------------------------------------------------ */

typedef struct lk {
  int calls;
  lsmtp_mx_result result;
  char targets[1024];
  lsmtp_mx_lookup *self; /* deleted inside done when del_inside */
  int del_inside;
} lk;

static void lookup_done(void *data, lsmtp_mx_plan *p) {
  lk *k = data;
  k->calls++;
  k->result = lsmtp_mx_plan_result(p);
  snprintf(k->targets, sizeof k->targets, "%s", targets_of(p));
  if (k->del_inside) {
    lsmtp_mx_lookup_del(k->self);
    lsmtp_mx_lookup_del(k->self); /* twice inside done: still one free */
  }
}

static void test_lookup_immediate(void **state) {
  (void)state;
  lsmtp_dns_static *s = make_table(0);
  lsmtp_mx_plan *p = new_plan();
  lsmtp_mx_lookup *l;
  lk k;
  memset(&k, 0, sizeof k);
  assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, lsmtp_dns_static_resolver(s), p, "example.com",
                                       lookup_done, &k),
                   LSMTP_OK);
  assert_int_equal(k.calls, 1); /* all answered inside */
  assert_int_equal(k.result, LSMTP_MX_OK);
  assert_string_equal(k.targets,
                      "mx1.example.com=2001:db8::1 mx1.example.com=192.0.2.1 "
                      "mx2.example.com=192.0.2.2");
  lsmtp_mx_lookup_del(l);

  /* A null MX ends the lookup after the MX query. */
  memset(&k, 0, sizeof k);
  assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, lsmtp_dns_static_resolver(s), p, "null.example",
                                       lookup_done, &k),
                   LSMTP_OK);
  assert_int_equal(k.calls, 1);
  assert_int_equal(k.result, LSMTP_MX_NULL_MX);
  lsmtp_mx_lookup_del(l);

  /* Bad arguments: done never runs. */
  memset(&k, 0, sizeof k);
  assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, lsmtp_dns_static_resolver(s), p, "192.0.2.1",
                                       lookup_done, &k),
                   LSMTP_ERR_INVALID);
  assert_null(l);
  assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, NULL, p, "example.com", lookup_done, &k),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, lsmtp_dns_static_resolver(s), p, "example.com",
                                       NULL, &k),
                   LSMTP_ERR_INVALID);
  assert_int_equal(k.calls, 0);
  lsmtp_mx_lookup_del(NULL);
  lsmtp_mx_plan_del(p);
  lsmtp_dns_static_del(s);
}

static void test_lookup_deferred(void **state) {
  (void)state;
  lsmtp_dns_static *s = make_table(LSMTP_DNS_STATIC_DEFER);
  lsmtp_mx_plan *p = new_plan();
  lsmtp_mx_plan_set_order(p, LSMTP_MX_IPV4_FIRST);
  lsmtp_mx_lookup *l;
  lk k;
  memset(&k, 0, sizeof k);
  assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, lsmtp_dns_static_resolver(s), p, "example.com",
                                       lookup_done, &k),
                   LSMTP_OK);
  k.self = l;
  k.del_inside = 1;
  assert_int_equal(lsmtp_dns_static_pending(s), 1);
  assert_int_equal(lsmtp_dns_static_step(s), 1); /* MX */
  assert_int_equal(k.calls, 0);
  assert_int_equal(lsmtp_dns_static_pending(s), 4); /* A and AAAA for 2 hosts */
  assert_int_equal(lsmtp_dns_static_step(s), 4);
  assert_int_equal(k.calls, 1);
  assert_int_equal(k.result, LSMTP_MX_OK);
  assert_string_equal(k.targets,
                      "mx1.example.com=192.0.2.1 mx1.example.com=2001:db8::1 "
                      "mx2.example.com=192.0.2.2");
  /* l was freed inside done (ASan checks). */
  lsmtp_mx_plan_del(p);
  lsmtp_dns_static_del(s);
}

static void test_lookup_cancel_and_destroy(void **state) {
  (void)state;
  for (int when = 0; when < 2; when++) {
    /* Delete the lookup while the MX query (when 0) or the address
     * queries (when 1) are in flight. */
    lsmtp_dns_static *s = make_table(LSMTP_DNS_STATIC_DEFER);
    lsmtp_mx_plan *p = new_plan();
    lsmtp_mx_lookup *l;
    lk k;
    memset(&k, 0, sizeof k);
    assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, lsmtp_dns_static_resolver(s), p,
                                         "example.com", lookup_done, &k),
                     LSMTP_OK);
    if (when) assert_int_equal(lsmtp_dns_static_step(s), 1);
    assert_true(lsmtp_dns_static_pending(s) > 0);
    lsmtp_mx_lookup_del(l);
    assert_int_equal(k.calls, 1);
    assert_int_equal(k.result, LSMTP_MX_ABORTED);
    assert_int_equal(lsmtp_dns_static_pending(s), 0); /* its queries were cancelled */
    assert_int_equal(lsmtp_dns_static_step(s), 0);
    assert_int_equal(k.calls, 1);
    lsmtp_dns_static_del(s);
    assert_int_equal(k.calls, 1);
    lsmtp_mx_plan_del(p);
  }
  /* The resolver dies under a running lookup: the lookup ends aborted,
   * once, and can still be deleted afterwards. */
  for (int when = 0; when < 2; when++) {
    lsmtp_dns_static *s = make_table(LSMTP_DNS_STATIC_DEFER);
    lsmtp_mx_plan *p = new_plan();
    lsmtp_mx_lookup *l;
    lk k;
    memset(&k, 0, sizeof k);
    assert_int_equal(lsmtp_mx_lookup_new(&l, NULL, lsmtp_dns_static_resolver(s), p,
                                         "example.com", lookup_done, &k),
                     LSMTP_OK);
    if (when) assert_int_equal(lsmtp_dns_static_step(s), 1);
    lsmtp_dns_static_del(s);
    assert_int_equal(k.calls, 1);
    assert_int_equal(k.result, LSMTP_MX_ABORTED);
    lsmtp_mx_lookup_del(l);
    assert_int_equal(k.calls, 1);
    lsmtp_mx_plan_del(p);
  }
}

/* Walk an allocation failure through every allocation of a lookup with an
 * immediate static resolver: done runs exactly once or new fails. */
static void test_lookup_allocation_failures(void **state) {
  (void)state;
  int saw_success = 0;
  for (long n = 1; n <= 200 && !saw_success; n++) {
    failalloc f;
    failalloc_init(&f, n);
    const lsmtp_allocator *a = &f.alloc;
    lsmtp_dns_static *fs;
    int rc = lsmtp_dns_static_new(&fs, a, 0);
    lsmtp_mx_plan *p = NULL;
    if (rc == LSMTP_OK) rc = lsmtp_mx_plan_new(&p, a);
    if (rc == LSMTP_OK) {
      /* Copy the table into the failing one, tolerating failures. */
      (void)lsmtp_dns_static_add_mx(fs, "example.com", 10, "mx1.example.com");
      (void)lsmtp_dns_static_add_addr(fs, "mx1.example.com", "192.0.2.1");
      lk k;
      memset(&k, 0, sizeof k);
      lsmtp_mx_lookup *l = NULL;
      rc = lsmtp_mx_lookup_new(&l, a, lsmtp_dns_static_resolver(fs), p, "example.com",
                               lookup_done, &k);
      if (rc == LSMTP_OK) {
        assert_int_equal(k.calls, 1);
        if (k.result == LSMTP_MX_OK && strcmp(k.targets, "mx1.example.com=192.0.2.1") == 0)
          saw_success = !failalloc_reached(&f);
        lsmtp_mx_lookup_del(l);
      } else {
        assert_int_equal(rc, LSMTP_ERR_NOMEM);
        assert_int_equal(k.calls, 0);
      }
    } else {
      assert_int_equal(rc, LSMTP_ERR_NOMEM);
    }
    lsmtp_mx_plan_del(p);
    lsmtp_dns_static_del(fs);
  }
  assert_true(saw_success);
}

/* ------------------------------------------------------------------ */
/* The system resolver, offline only                                   */
/* ------------------------------------------------------------------ */

/* Non-zero when /etc/hosts maps name to an address of the family (so
 * getaddrinfo answers from the file and never asks a DNS server). */
static int hosts_file_has(const char *name, int want_v6) {
  FILE *f = fopen("/etc/hosts", "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *save = NULL, *addr = strtok_r(line, " \t\r\n", &save);
    if (!addr || (strchr(addr, ':') != NULL) != want_v6) continue;
    for (char *w; (w = strtok_r(NULL, " \t\r\n", &save));)
      if (strcmp(w, name) == 0) found = 1;
  }
  fclose(f);
  return found;
}

static void test_system_resolver_offline(void **state) {
  (void)state;
  lsmtp_dns_system *sys;
  int rc = lsmtp_dns_system_new(&sys, NULL);
  if (rc == LSMTP_ERR_UNSUPPORTED) {
    assert_null(sys);
    skip();
  }
  assert_int_equal(rc, LSMTP_OK);
  const lsmtp_dns_resolver *r = lsmtp_dns_system_resolver(sys);
  rec q[6];
  memset(q, 0, sizeof q);
  uint64_t id[6];
  /* Address literals: getaddrinfo parses them, no lookup. */
  r->start(r->user_data, "127.0.0.1", LSMTP_DNS_A, record, &q[0], &id[0]);
  assert_int_equal(q[0].calls, 1);
  assert_int_equal(q[0].status, LSMTP_OK);
  assert_string_equal(q[0].first, "127.0.0.1");
  assert_int_equal(q[0].count, 1);
  r->start(r->user_data, "::1", LSMTP_DNS_AAAA, record, &q[1], &id[1]);
  assert_int_equal(q[1].calls, 1);
  assert_int_equal(q[1].status, LSMTP_OK);
  assert_string_equal(q[1].first, "::1");
  assert_true(id[1] > id[0]);
  /* Bad names never reach the system: BADNAME, also for MX. */
  r->start(r->user_data, "bad name", LSMTP_DNS_A, record, &q[2], &id[2]);
  assert_int_equal(q[2].error, LSMTP_DNS_BADNAME);
  r->start(r->user_data, "192.0.2.1", LSMTP_DNS_MX, record, &q[3], &id[3]);
  assert_int_equal(q[3].calls, 1);
  assert_int_equal(q[3].error, LSMTP_DNS_BADNAME);
  lsmtp_dns_cancel(r, id[0]); /* completed: nothing */
  assert_int_equal(q[0].calls, 1);
  if (hosts_file_has("localhost", 0)) {
    lsmtp_dns_query(r, "localhost", LSMTP_DNS_A, record, &q[4], NULL);
    assert_int_equal(q[4].calls, 1);
    assert_int_equal(q[4].status, LSMTP_OK);
    assert_true(strncmp(q[4].first, "127.", 4) == 0);
  }
  if (hosts_file_has("localhost", 1)) {
    lsmtp_dns_query(r, "localhost", LSMTP_DNS_AAAA, record, &q[5], NULL);
    assert_int_equal(q[5].calls, 1);
    assert_int_equal(q[5].status, LSMTP_OK);
    assert_string_equal(q[5].first, "::1");
  }
  lsmtp_dns_system_del(sys);
  lsmtp_dns_system_del(NULL);
  assert_int_equal(lsmtp_dns_system_new(NULL, NULL), LSMTP_ERR_INVALID);
}

/* A DNS server on 127.0.0.1 that answers the system resolver's MX queries
 * from a script: the reply's RCODE and whether it carries two MX records
 * (one compressed), or no reply at all. Only loopback, never a real server. */
typedef struct fake_step {
  unsigned rcode; /* 0xff: do not answer */
  int with_records;
} fake_step;

typedef struct fake_dns {
  int fd;
  uint16_t port;
  const fake_step *steps;
  size_t nsteps, served;
  volatile int stop;
  pthread_t thread;
} fake_dns;

static void *fake_dns_run(void *arg) {
  fake_dns *f = arg;
  while (!f->stop) {
    unsigned char q[512], r[1024];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(f->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n < 12) continue; /* timeout tick or junk */
    /* The question ends after its name and 4 octets. */
    size_t p = 12;
    while (p < (size_t)n && q[p] != 0) p += 1u + q[p];
    p += 5;
    if (p > (size_t)n) continue;
    fake_step st = f->served < f->nsteps ? f->steps[f->served] : (fake_step){0xff, 0};
    f->served++;
    if (st.rcode == 0xff) continue;
    memcpy(r, q, p); /* id, flags, counts and question */
    r[2] = 0x81;     /* QR, RD */
    r[3] = (unsigned char)(0x80 | st.rcode);
    r[6] = 0;
    r[7] = st.with_records ? 2 : 0;
    r[8] = r[9] = r[10] = r[11] = 0; /* drop any EDNS record */
    size_t o = p;
    if (st.with_records) {
      static const unsigned char rr1[] = {0xc0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 8,
                                          0, 20, 3, 'm', 'x', '2', 0xc0, 12};
      static const unsigned char rr2[] = {0xc0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 7,
                                          0, 10, 3, 'm', 'x', '1', 0};
      memcpy(r + o, rr1, sizeof rr1);
      o += sizeof rr1;
      memcpy(r + o, rr2, sizeof rr2);
      o += sizeof rr2;
    }
    (void)sendto(f->fd, r, o, 0, (struct sockaddr *)&from, fl);
  }
  return NULL;
}

static void fake_dns_start(fake_dns *f, const fake_step *steps, size_t n) {
  memset(f, 0, sizeof *f);
  f->steps = steps;
  f->nsteps = n;
  f->fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(f->fd >= 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof sin), 0);
  socklen_t sl = sizeof sin;
  assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sin, &sl), 0);
  f->port = ntohs(sin.sin_port);
  struct timeval tv = {0, 100000};
  assert_int_equal(setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  assert_int_equal(pthread_create(&f->thread, NULL, fake_dns_run, f), 0);
}

static void fake_dns_stop(fake_dns *f) {
  f->stop = 1;
  pthread_join(f->thread, NULL);
  close(f->fd);
}

static void test_system_resolver_mx_loopback(void **state) {
  (void)state;
  lsmtp_dns_system *sys;
  int rc = lsmtp_dns_system_new(&sys, NULL);
  if (rc == LSMTP_ERR_UNSUPPORTED) skip();
  assert_int_equal(rc, LSMTP_OK);
  static const fake_step steps[] = {{0, 1}, {3, 0}, {0, 0}, {2, 0}, {0xff, 0}};
  fake_dns f;
  fake_dns_start(&f, steps, sizeof steps / sizeof steps[0]);
  assert_int_equal(lsmtp__dns_system_use_loopback(sys, f.port), LSMTP_OK);
  const lsmtp_dns_resolver *r = lsmtp_dns_system_resolver(sys);
  rec q[5];
  memset(q, 0, sizeof q);
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, record, &q[0], NULL);
  assert_int_equal(q[0].calls, 1);
  assert_int_equal(q[0].status, LSMTP_OK);
  assert_int_equal(q[0].count, 2);
  assert_string_equal(q[0].first, "mx2.example.com");
  assert_int_equal(q[0].first_pref, 20);
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, record, &q[1], NULL);
  assert_int_equal(q[1].error, LSMTP_DNS_NXDOMAIN);
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, record, &q[2], NULL);
  assert_int_equal(q[2].error, LSMTP_DNS_NODATA);
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, record, &q[3], NULL);
  assert_int_equal(q[3].status, LSMTP_ERR_DNS);
  assert_int_equal(q[3].error, LSMTP_DNS_TEMPFAIL);
  /* No answer: after the 1 s timeout, a temporary failure (libresolv does
   * not tell a timeout from SERVFAIL). */
  lsmtp_dns_query(r, "example.com", LSMTP_DNS_MX, record, &q[4], NULL);
  assert_int_equal(q[4].calls, 1);
  assert_int_equal(q[4].status, LSMTP_ERR_DNS);
  assert_int_equal(q[4].error, LSMTP_DNS_TEMPFAIL);
  for (int i = 0; i < 5; i++) assert_int_equal(q[i].calls, 1);
  fake_dns_stop(&f);
  assert_true(f.served >= 5);
  lsmtp_dns_system_del(sys);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_kinds),
      cmocka_unit_test(test_name_norm),
      cmocka_unit_test(test_static_answers),
      cmocka_unit_test(test_query_checks),
      cmocka_unit_test(test_defer_cancel_step),
      cmocka_unit_test(test_callbacks_start_and_cancel),
      cmocka_unit_test(test_destroy_in_flight),
      cmocka_unit_test(test_wire_mx),
      cmocka_unit_test(test_wire_rcodes),
      cmocka_unit_test(test_wire_cname_and_addresses),
      cmocka_unit_test(test_wire_hostile_names),
      cmocka_unit_test(test_wire_record_bound),
      cmocka_unit_test(test_mx_order_by_preference),
      cmocka_unit_test(test_mx_seed_is_deterministic),
      cmocka_unit_test(test_mx_every_permutation),
      cmocka_unit_test(test_mx_random_function),
      cmocka_unit_test(test_mx_null_mx),
      cmocka_unit_test(test_mx_implicit),
      cmocka_unit_test(test_mx_errors),
      cmocka_unit_test(test_mx_local_cutoff),
      cmocka_unit_test(test_mx_duplicates_and_invalid_targets),
      cmocka_unit_test(test_mx_host_bound),
      cmocka_unit_test(test_addr_orders),
      cmocka_unit_test(test_addr_cap_is_fair),
      cmocka_unit_test(test_addr_outcomes),
      cmocka_unit_test(test_lookup_immediate),
      cmocka_unit_test(test_lookup_deferred),
      cmocka_unit_test(test_lookup_cancel_and_destroy),
      cmocka_unit_test(test_lookup_allocation_failures),
      cmocka_unit_test(test_system_resolver_offline),
      cmocka_unit_test(test_system_resolver_mx_loopback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
