/* Fuzz the DNS reply parser (lib/dns/dns_wire.c) and MX selection.
 *
 * Input: byte 0 picks the query type (MX, A, AAAA) and whether local host
 * names are set; byte 1 seeds the shuffle; the rest is a DNS reply to a
 * query for "example.com". The parser must never read outside the message
 * and must hand out only bounded, printable names. An MX answer then goes
 * through lsmtp_mx_plan, whose host list must be ordered, free of
 * duplicates, address literals and our own names, and bounded; addresses
 * made from the input go through the address phase, whose targets must be
 * bounded and distinct. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_int.h"

#define CHECK(x)         \
  do {                   \
    if (!(x)) abort();   \
  } while (0)

static const char *const local_names[] = {"mx1.example.com", "relay.example"};

static void check_name(const char *h) {
  size_t n = strlen(h);
  CHECK(n >= 1 && n < 1024);
  for (size_t i = 0; i < n; i++) CHECK(h[i] > 0x20 && h[i] < 0x7f);
}

static void check_plan(lsmtp_mx_plan *p, const lsmtp_dns_answer *a,
                       const uint8_t *data, size_t size, int with_local) {
  int rc = lsmtp_mx_plan_build(p, "example.com", a);
  CHECK(rc == LSMTP_OK);
  lsmtp_mx_result r = lsmtp_mx_plan_result(p);
  CHECK(r != LSMTP_MX_PENDING && r != LSMTP_MX_NO_ADDRESS);
  size_t n = lsmtp_mx_plan_host_count(p);
  CHECK(n <= LSMTP_MX_MAX_HOSTS);
  CHECK((r == LSMTP_MX_OK) == (n > 0));
  CHECK(lsmtp_mx_result_failure(r) != NULL);
  if (a->status != LSMTP_OK && r == LSMTP_MX_OK) CHECK(lsmtp_mx_plan_is_implicit(p));
  uint16_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    uint16_t pref;
    const char *h = lsmtp_mx_plan_host(p, i, &pref);
    CHECK(h != NULL);
    CHECK(i == 0 || pref >= prev);
    prev = pref;
    char norm[LSMTP__DNS_NAME_MAX + 1];
    CHECK(lsmtp__dns_name_norm(h, norm) == strlen(h));
    CHECK(strcmp(norm, h) == 0);
    CHECK(!lsmtp__dns_is_ip_literal(h));
    if (with_local)
      for (size_t k = 0; k < 2; k++) CHECK(strcmp(h, local_names[k]) != 0);
    for (size_t j = 0; j < i; j++) CHECK(strcmp(h, lsmtp_mx_plan_host(p, j, NULL)) != 0);
  }
  if (r != LSMTP_MX_OK) return;
  /* Addresses from the input bytes: many repeats, both families. */
  lsmtp_dns_addr addrs[24];
  for (size_t i = 0; i < 24; i++) {
    memset(&addrs[i], 0, sizeof addrs[i]);
    addrs[i].type = i % 2 ? LSMTP_DNS_AAAA : LSMTP_DNS_A;
    addrs[i].bytes[3] = size ? (uint8_t)(data[i % size] & 7) : 0;
  }
  for (size_t i = 0; i < n; i++) {
    for (int fam = 0; fam < 2; fam++) {
      lsmtp_dns_answer aa;
      memset(&aa, 0, sizeof aa);
      aa.type = fam ? LSMTP_DNS_AAAA : LSMTP_DNS_A;
      aa.name = "x";
      aa.status = LSMTP_OK;
      aa.addr = addrs;
      aa.addr_count = size ? (size_t)(data[(i + (size_t)fam) % size] % 25) : 0;
      CHECK(lsmtp_mx_plan_add_addresses(p, i, &aa) == LSMTP_OK);
    }
  }
  CHECK(lsmtp_mx_plan_finish(p) == LSMTP_OK);
  size_t t = lsmtp_mx_plan_target_count(p);
  CHECK(t <= LSMTP_MX_MAX_HOSTS * LSMTP_MX_MAX_ADDRS);
  r = lsmtp_mx_plan_result(p);
  CHECK((r == LSMTP_MX_OK) == (t > 0));
  for (size_t i = 0; i < t; i++) {
    const lsmtp_mx_target *x = lsmtp_mx_plan_target(p, i);
    CHECK(x && x->host_index < n);
    CHECK(i == 0 || x->host_index >= lsmtp_mx_plan_target(p, i - 1)->host_index);
    for (size_t j = 0; j < i; j++) {
      const lsmtp_mx_target *y = lsmtp_mx_plan_target(p, j);
      CHECK(x->addr.type != y->addr.type || memcmp(x->addr.bytes, y->addr.bytes, 16) != 0);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const lsmtp_dns_type types[4] = {LSMTP_DNS_MX, LSMTP_DNS_A, LSMTP_DNS_AAAA, LSMTP_DNS_MX};
  if (size < 2) return 0;
  lsmtp_dns_type type = types[data[0] & 3];
  int with_local = (data[0] >> 2) & 1;
  uint64_t seed = data[1];
  const unsigned char *in = data + 2;
  size_t len = size - 2;

  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, NULL);
  lsmtp_dns_error e = lsmtp__dns_parse_reply(in, len, "example.com", type, &b);
  CHECK(e == LSMTP_DNS_NOERROR || e == LSMTP_DNS_NXDOMAIN || e == LSMTP_DNS_NODATA ||
        e == LSMTP_DNS_TEMPFAIL);
  CHECK(b.mx_count <= LSMTP_DNS_MAX_RECORDS && b.addr_count <= LSMTP_DNS_MAX_RECORDS);
  lsmtp_dns_answer a;
  if (e == LSMTP_DNS_NOERROR) {
    lsmtp__dns_abuf_answer(&b, "example.com", type, &a);
    CHECK(a.status == LSMTP_OK);
    if (type == LSMTP_DNS_MX) {
      CHECK(a.mx_count > 0 && b.addr_count == 0);
      for (size_t i = 0; i < a.mx_count; i++) check_name(a.mx[i].host);
    } else {
      CHECK(a.addr_count > 0 && b.mx_count == 0);
      for (size_t i = 0; i < a.addr_count; i++) CHECK(a.addr[i].type == type);
    }
  } else {
    lsmtp__dns_answer_error(&a, "example.com", type, e);
    CHECK(a.status == LSMTP_ERR_DNS);
  }
  if (type == LSMTP_DNS_MX) {
    lsmtp_mx_plan *p;
    CHECK(lsmtp_mx_plan_new(&p, NULL) == LSMTP_OK);
    lsmtp_mx_plan_set_seed(p, seed);
    lsmtp_mx_plan_set_order(p, (lsmtp_mx_order)(data[1] & 3));
    if (with_local) CHECK(lsmtp_mx_plan_set_local_names(p, local_names, 2) == LSMTP_OK);
    check_plan(p, &a, in, len, with_local);
    lsmtp_mx_plan_del(p);
  }
  lsmtp__dns_abuf_free(&b);
  return 0;
}
