/* MX selection (RFC 5321 §5.1, RFC 7505) as pure logic: from an MX answer
 * to an ordered list of hosts, and from their A/AAAA answers to an ordered
 * list of (host, address) targets. No I/O, no clock, no global random
 * state: the shuffle among equal preferences draws from a seed or from a
 * function the caller gives. */
#include "dns_int.h"

typedef struct host {
  char name[LSMTP__DNS_NAME_MAX + 1];
  uint16_t preference;
  lsmtp_dns_addr v4[LSMTP_MX_MAX_ADDRS], v6[LSMTP_MX_MAX_ADDRS];
  size_t n4, n6;
  /* The recorded outcome per family; -1 while none was recorded. */
  int err4, err6;
} host;

struct lsmtp_mx_plan {
  const lsmtp_allocator *alloc;
  char *local[LSMTP_MX_MAX_LOCAL_NAMES];
  size_t nlocal;
  uint64_t rng_state;
  lsmtp_random_fn rnd;
  void *rnd_data;
  lsmtp_mx_order order;
  lsmtp_mx_result result;
  int implicit;
  int built; /* build gave LSMTP_MX_OK: addresses may be added */
  host hosts[LSMTP_MX_MAX_HOSTS];
  size_t nhosts;
  lsmtp_mx_target targets[LSMTP_MX_MAX_HOSTS * LSMTP_MX_MAX_ADDRS];
  size_t ntargets;
};

/* ---- failures ---- */

static const lsmtp_mx_failure failures[] = {
    [LSMTP_MX_OK] = {1, 451, "4.4.3", "no route computed"},
    [LSMTP_MX_PENDING] = {1, 451, "4.4.3", "no route computed"},
    [LSMTP_MX_NULL_MX] = {0, 556, "5.1.10", "recipient domain does not accept mail (null MX)"},
    [LSMTP_MX_NO_DOMAIN] = {0, 550, "5.1.2", "recipient domain does not exist"},
    [LSMTP_MX_TEMPFAIL] = {1, 451, "4.4.3", "temporary DNS failure while looking up the mail exchangers"},
    [LSMTP_MX_LOOP] = {0, 554, "5.4.6", "mail for the domain loops back to this host"},
    [LSMTP_MX_NO_HOSTS] = {0, 554, "5.4.4", "no usable mail exchanger (invalid MX records)"},
    [LSMTP_MX_NO_ADDRESS] = {0, 554, "5.4.4", "no address found for any mail exchanger"},
    [LSMTP_MX_ABORTED] = {1, 451, "4.4.3", "mail exchanger lookup cancelled"},
};

const lsmtp_mx_failure *lsmtp_mx_result_failure(lsmtp_mx_result r) {
  if ((unsigned)r >= sizeof failures / sizeof failures[0]) return &failures[LSMTP_MX_PENDING];
  return &failures[r];
}

/* ---- randomness ---- */

static uint32_t next32(lsmtp_mx_plan *p) {
  if (p->rnd) return p->rnd(p->rnd_data);
  /* splitmix64: tiny, and every seed (also 0) gives a good stream. */
  uint64_t z = (p->rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (uint32_t)(z >> 32);
}

/* Uniform in [0, n): reject the values that would bias r % n, but give up
 * after a few tries so a poor caller-supplied source cannot hang us. */
static uint32_t below(lsmtp_mx_plan *p, uint32_t n) {
  uint32_t threshold = (uint32_t)(0u - n) % n;
  uint32_t r = next32(p);
  for (int tries = 0; r < threshold && tries < 64; tries++) r = next32(p);
  return r % n;
}

/* ---- settings ---- */

int lsmtp_mx_plan_new(lsmtp_mx_plan **out, const lsmtp_allocator *alloc) {
  if (!out) return LSMTP_ERR_INVALID;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_mx_plan *p = lsmtp__calloc(alloc, 1, sizeof *p);
  *out = p;
  if (!p) return LSMTP_ERR_NOMEM;
  p->alloc = alloc;
  p->result = LSMTP_MX_PENDING;
  p->order = LSMTP_MX_IPV6_FIRST;
  return LSMTP_OK;
}

static void clear_local(lsmtp_mx_plan *p) {
  for (size_t i = 0; i < p->nlocal; i++) lsmtp__free(p->alloc, p->local[i]);
  p->nlocal = 0;
}

void lsmtp_mx_plan_del(lsmtp_mx_plan *p) {
  if (!p) return;
  clear_local(p);
  lsmtp__free(p->alloc, p);
}

int lsmtp_mx_plan_set_local_names(lsmtp_mx_plan *p, const char *const *names,
                                  size_t count) {
  if (!p || (count && !names)) return LSMTP_ERR_INVALID;
  if (count > LSMTP_MX_MAX_LOCAL_NAMES) return LSMTP_ERR_LIMIT;
  char norm[LSMTP_MX_MAX_LOCAL_NAMES][LSMTP__DNS_NAME_MAX + 1];
  size_t len[LSMTP_MX_MAX_LOCAL_NAMES];
  for (size_t i = 0; i < count; i++)
    if ((len[i] = lsmtp__dns_name_norm(names[i], norm[i])) == 0) return LSMTP_ERR_INVALID;
  char *copy[LSMTP_MX_MAX_LOCAL_NAMES];
  for (size_t i = 0; i < count; i++) {
    copy[i] = lsmtp__strndup(p->alloc, norm[i], len[i]);
    if (!copy[i]) {
      while (i > 0) lsmtp__free(p->alloc, copy[--i]);
      return LSMTP_ERR_NOMEM;
    }
  }
  clear_local(p);
  for (size_t i = 0; i < count; i++) p->local[i] = copy[i];
  p->nlocal = count;
  return LSMTP_OK;
}

void lsmtp_mx_plan_set_seed(lsmtp_mx_plan *p, uint64_t seed) {
  if (!p) return;
  p->rng_state = seed;
  p->rnd = NULL;
  p->rnd_data = NULL;
}

void lsmtp_mx_plan_set_random(lsmtp_mx_plan *p, lsmtp_random_fn fn, void *random_data) {
  if (!p) return;
  p->rnd = fn;
  p->rnd_data = fn ? random_data : NULL;
}

lsmtp_mx_order lsmtp__mx_plan_order(const lsmtp_mx_plan *p) {
  return p->order;
}

void lsmtp_mx_plan_set_order(lsmtp_mx_plan *p, lsmtp_mx_order order) {
  if (p && (unsigned)order <= (unsigned)LSMTP_MX_IPV4_ONLY) p->order = order;
}

/* ---- the host list ---- */

static int is_local(const lsmtp_mx_plan *p, const char *norm) {
  for (size_t i = 0; i < p->nlocal; i++)
    if (strcmp(p->local[i], norm) == 0) return 1;
  return 0;
}

/* An MX must name a host: no address literal, and (RFC 1123 §2.1) the
 * last label of a host name is not all digits. */
static int usable_host(const char *norm, size_t len) {
  if (lsmtp__dns_is_ip_literal(norm)) return 0;
  size_t i = len;
  while (i > 0 && norm[i - 1] != '.') {
    if (!lsmtp__is_digit((unsigned char)norm[i - 1])) return 1;
    i--;
  }
  return 0;
}

static int is_root(const char *h) {
  return h == NULL || h[0] == '\0' || (h[0] == '.' && h[1] == '\0');
}

typedef struct cand {
  char name[LSMTP__DNS_NAME_MAX + 1];
  uint16_t preference;
} cand;

/* Sort by preference (insertion sort: stable, n <= LSMTP_DNS_MAX_RECORDS),
 * then shuffle each run of equal preference (Fisher-Yates). */
static void order_hosts(lsmtp_mx_plan *p, cand *c, size_t n) {
  for (size_t i = 1; i < n; i++) {
    cand t = c[i];
    size_t j = i;
    while (j > 0 && c[j - 1].preference > t.preference) {
      c[j] = c[j - 1];
      j--;
    }
    c[j] = t;
  }
  for (size_t start = 0; start < n;) {
    size_t end = start + 1;
    while (end < n && c[end].preference == c[start].preference) end++;
    for (size_t k = end - start; k > 1; k--) {
      size_t r = below(p, (uint32_t)k);
      cand t = c[start + k - 1];
      c[start + k - 1] = c[start + r];
      c[start + r] = t;
    }
    start = end;
  }
}

static void reset(lsmtp_mx_plan *p) {
  p->result = LSMTP_MX_PENDING;
  p->implicit = 0;
  p->built = 0;
  p->nhosts = 0;
  p->ntargets = 0;
}

/* Keep the candidates (already ordered) as the plan's hosts. */
static void take_hosts(lsmtp_mx_plan *p, const cand *c, size_t n) {
  if (n > LSMTP_MX_MAX_HOSTS) n = LSMTP_MX_MAX_HOSTS;
  for (size_t i = 0; i < n; i++) {
    host *h = &p->hosts[i];
    memcpy(h->name, c[i].name, sizeof h->name);
    h->preference = c[i].preference;
    h->n4 = h->n6 = 0;
    h->err4 = h->err6 = -1;
  }
  p->nhosts = n;
  p->result = LSMTP_MX_OK;
  p->built = 1;
}

static lsmtp_mx_result classify_failure(const lsmtp_dns_answer *a) {
  if (a->status == LSMTP_ERR_ABORTED || a->error == LSMTP_DNS_ABORTED) return LSMTP_MX_ABORTED;
  if (a->status == LSMTP_ERR_DNS && a->error == LSMTP_DNS_NXDOMAIN) return LSMTP_MX_NO_DOMAIN;
  if (a->status == LSMTP_ERR_INVALID && a->error == LSMTP_DNS_BADNAME) return LSMTP_MX_NO_DOMAIN;
  return LSMTP_MX_TEMPFAIL; /* SERVFAIL, timeout, no memory, anything odd */
}

int lsmtp_mx_plan_build(lsmtp_mx_plan *p, const char *domain,
                        const lsmtp_dns_answer *mx) {
  if (!p) return LSMTP_ERR_INVALID;
  reset(p);
  char dom[LSMTP__DNS_NAME_MAX + 1];
  size_t dlen = lsmtp__dns_name_norm(domain, dom);
  if (dlen == 0 || !usable_host(dom, dlen)) return LSMTP_ERR_INVALID;
  if (mx && mx->type != LSMTP_DNS_MX) return LSMTP_ERR_INVALID;

  int nodata = !mx || (mx->status == LSMTP_OK && (mx->mx_count == 0 || !mx->mx)) ||
               (mx->status == LSMTP_ERR_DNS && mx->error == LSMTP_DNS_NODATA);
  if (mx && !nodata && mx->status != LSMTP_OK) {
    p->result = classify_failure(mx);
    return LSMTP_OK;
  }

  cand *c = NULL;
  size_t n = 0;
  if (nodata) {
    /* RFC 5321 §5.1: no MX at all is an implicit MX of preference 0
     * pointing at the domain itself (its A/AAAA records). */
    c = lsmtp__malloc(p->alloc, sizeof *c);
    if (!c) return LSMTP_ERR_NOMEM;
    memcpy(c[0].name, dom, dlen + 1);
    c[0].preference = 0;
    n = 1;
    p->implicit = 1;
  } else {
    size_t in = mx->mx_count < LSMTP_DNS_MAX_RECORDS ? mx->mx_count : LSMTP_DNS_MAX_RECORDS;
    /* RFC 7505 §3: a single MX of preference 0 whose exchange is the root
     * says "no mail here". Repeated copies of it count as one. */
    int all_root = 1, root_zero = 0;
    for (size_t i = 0; i < in; i++) {
      if (!is_root(mx->mx[i].host)) all_root = 0;
      else if (mx->mx[i].preference == 0) root_zero = 1;
    }
    if (all_root && root_zero) {
      p->result = LSMTP_MX_NULL_MX;
      return LSMTP_OK;
    }
    c = lsmtp__calloc(p->alloc, in, sizeof *c);
    if (!c) return LSMTP_ERR_NOMEM;
    for (size_t i = 0; i < in; i++) {
      char norm[LSMTP__DNS_NAME_MAX + 1];
      const char *h = mx->mx[i].host;
      size_t len = is_root(h) ? 0 : lsmtp__dns_name_norm(h, norm);
      /* The root among other MXs, escapes, address literals: unusable. */
      if (len == 0 || !usable_host(norm, len)) continue;
      size_t k = 0;
      while (k < n && strcmp(c[k].name, norm) != 0) k++;
      if (k < n) { /* the same host twice: its best preference counts */
        if (mx->mx[i].preference < c[k].preference) c[k].preference = mx->mx[i].preference;
        continue;
      }
      memcpy(c[n].name, norm, len + 1);
      c[n].preference = mx->mx[i].preference;
      n++;
    }
    if (n == 0) {
      lsmtp__free(p->alloc, c);
      p->result = LSMTP_MX_NO_HOSTS;
      return LSMTP_OK;
    }
  }

  /* RFC 5321 §5.1: when we are one of the MXs, drop ourselves and every MX
   * that is not better than us, or mail would go round in circles. */
  int cut = 0;
  uint32_t own = 0;
  for (size_t i = 0; i < n; i++)
    if (is_local(p, c[i].name) && (!cut || c[i].preference < own)) {
      own = c[i].preference;
      cut = 1;
    }
  if (cut) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
      if (c[i].preference < own) c[kept++] = c[i];
    n = kept;
  }
  if (n == 0) {
    lsmtp__free(p->alloc, c);
    p->result = LSMTP_MX_LOOP;
    return LSMTP_OK;
  }
  order_hosts(p, c, n);
  take_hosts(p, c, n);
  lsmtp__free(p->alloc, c);
  return LSMTP_OK;
}

lsmtp_mx_result lsmtp_mx_plan_result(const lsmtp_mx_plan *p) {
  return p ? p->result : LSMTP_MX_PENDING;
}

int lsmtp_mx_plan_is_implicit(const lsmtp_mx_plan *p) {
  return p ? p->implicit : 0;
}

size_t lsmtp_mx_plan_host_count(const lsmtp_mx_plan *p) {
  return p && p->built ? p->nhosts : 0;
}

const char *lsmtp_mx_plan_host(const lsmtp_mx_plan *p, size_t i, uint16_t *preference) {
  if (!p || !p->built || i >= p->nhosts) return NULL;
  if (preference) *preference = p->hosts[i].preference;
  return p->hosts[i].name;
}

/* ---- addresses ---- */

static int wants(const lsmtp_mx_plan *p, lsmtp_dns_type t) {
  if (t == LSMTP_DNS_A) return p->order != LSMTP_MX_IPV6_ONLY;
  return p->order != LSMTP_MX_IPV4_ONLY;
}

static int same_addr(const lsmtp_dns_addr *a, const lsmtp_dns_addr *b) {
  return a->type == b->type && memcmp(a->bytes, b->bytes, a->type == LSMTP_DNS_A ? 4 : 16) == 0;
}

int lsmtp_mx_plan_add_addresses(lsmtp_mx_plan *p, size_t i,
                                const lsmtp_dns_answer *a) {
  if (!p || !a) return LSMTP_ERR_INVALID;
  if (!p->built) return LSMTP_ERR_STATE;
  if (i >= p->nhosts || (a->type != LSMTP_DNS_A && a->type != LSMTP_DNS_AAAA))
    return LSMTP_ERR_INVALID;
  host *h = &p->hosts[i];
  int v4 = a->type == LSMTP_DNS_A;
  lsmtp_dns_addr *list = v4 ? h->v4 : h->v6;
  size_t *count = v4 ? &h->n4 : &h->n6;
  int *err = v4 ? &h->err4 : &h->err6;
  if (a->status == LSMTP_OK && a->addr && a->addr_count > 0) {
    *err = LSMTP_DNS_NOERROR;
    size_t in = a->addr_count < LSMTP_DNS_MAX_RECORDS ? a->addr_count : LSMTP_DNS_MAX_RECORDS;
    for (size_t k = 0; k < in && *count < LSMTP_MX_MAX_ADDRS; k++) {
      if (a->addr[k].type != a->type) continue;
      size_t j = 0;
      while (j < *count && !same_addr(&list[j], &a->addr[k])) j++;
      if (j == *count) list[(*count)++] = a->addr[k];
    }
  } else if (a->status == LSMTP_OK) {
    *err = LSMTP_DNS_NODATA;
  } else if (a->status == LSMTP_ERR_DNS &&
             (a->error == LSMTP_DNS_NXDOMAIN || a->error == LSMTP_DNS_NODATA)) {
    *err = (int)a->error;
  } else if (a->status == LSMTP_ERR_INVALID) {
    *err = LSMTP_DNS_BADNAME;
  } else {
    *err = LSMTP_DNS_TEMPFAIL; /* timeouts, aborts, no memory */
  }
  return LSMTP_OK;
}

static void add_target(lsmtp_mx_plan *p, size_t hi, const lsmtp_dns_addr *a) {
  for (size_t t = 0; t < p->ntargets; t++)
    if (same_addr(&p->targets[t].addr, a)) return; /* an earlier host has it */
  lsmtp_mx_target *t = &p->targets[p->ntargets++];
  t->host = p->hosts[hi].name;
  t->preference = p->hosts[hi].preference;
  t->host_index = hi;
  t->addr = *a;
}

/* A family whose lookup failed for a reason worth retrying. */
static int retry_worth(const lsmtp_mx_plan *p, lsmtp_dns_type t, int err) {
  if (!wants(p, t)) return 0;
  return err < 0 || err == LSMTP_DNS_TEMPFAIL;
}

int lsmtp_mx_plan_finish(lsmtp_mx_plan *p) {
  if (!p || !p->built) return LSMTP_ERR_STATE;
  p->ntargets = 0;
  int temp = 0;
  for (size_t i = 0; i < p->nhosts; i++) {
    const host *h = &p->hosts[i];
    size_t n4 = wants(p, LSMTP_DNS_A) ? h->n4 : 0;
    size_t n6 = wants(p, LSMTP_DNS_AAAA) ? h->n6 : 0;
    /* Share LSMTP_MX_MAX_ADDRS fairly, so a broken family cannot crowd the
     * other one out. */
    while (n4 + n6 > LSMTP_MX_MAX_ADDRS) {
      if (n6 >= n4) n6--;
      else n4--;
    }
    int v4_first = p->order == LSMTP_MX_IPV4_FIRST;
    for (size_t k = 0; k < (v4_first ? n4 : n6); k++) add_target(p, i, v4_first ? &h->v4[k] : &h->v6[k]);
    for (size_t k = 0; k < (v4_first ? n6 : n4); k++) add_target(p, i, v4_first ? &h->v6[k] : &h->v4[k]);
    if (retry_worth(p, LSMTP_DNS_A, h->err4) || retry_worth(p, LSMTP_DNS_AAAA, h->err6)) temp = 1;
  }
  if (p->ntargets > 0) p->result = LSMTP_MX_OK;
  else p->result = temp ? LSMTP_MX_TEMPFAIL : LSMTP_MX_NO_ADDRESS;
  return LSMTP_OK;
}

size_t lsmtp_mx_plan_target_count(const lsmtp_mx_plan *p) {
  return p ? p->ntargets : 0;
}

const lsmtp_mx_target *lsmtp_mx_plan_target(const lsmtp_mx_plan *p, size_t i) {
  if (!p || i >= p->ntargets) return NULL;
  return &p->targets[i];
}
