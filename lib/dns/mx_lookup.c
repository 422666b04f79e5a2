/* The MX lookup driver: runs the queries an MX plan needs through any
 * resolver (the MX query, then A and/or AAAA for every host, all at once)
 * and calls the host back exactly once.
 *
 * Resolvers may complete inside start (the system and static resolvers
 * do), so completions that arrive while this file is still starting
 * queries are only recorded; whoever started them moves the lookup on
 * afterwards. The user's done is always the last thing a code path does,
 * because done may delete the lookup. */
#include "dns_int.h"

#define SLOT_MX 0
#define NSLOTS (1 + 2 * LSMTP_MX_MAX_HOSTS)

typedef struct slot {
  lsmtp_mx_lookup *l;
  uint64_t id;
  size_t host; /* address slots: the plan's host index */
  int active;
} slot;

struct lsmtp_mx_lookup {
  const lsmtp_allocator *alloc;
  const lsmtp_dns_resolver *r;
  lsmtp_mx_plan *plan;
  char domain[LSMTP__DNS_NAME_MAX + 1];
  lsmtp_mx_lookup_done_fn done;
  void *user_data;
  slot slots[NSLOTS];
  size_t outstanding;
  int addr_phase;
  int issuing;     /* starting queries: completions only record */
  int cancelling;  /* being deleted before completion */
  int nomem;       /* the plan could not be built */
  int aborted;     /* a query was aborted (cancel, resolver destroyed) */
  int completed;   /* done has been called */
  int in_done;
  int del_pending; /* deleted from inside done: free afterwards */
};

static void free_lookup(lsmtp_mx_lookup *l) {
  lsmtp__free(l->alloc, l);
}

/* Give the plan an outcome without records (no allocation on this path). */
static void force_result(lsmtp_mx_lookup *l, lsmtp_dns_error e) {
  lsmtp_dns_answer a;
  lsmtp__dns_answer_error(&a, l->domain, LSMTP_DNS_MX, e);
  (void)lsmtp_mx_plan_build(l->plan, l->domain, &a);
}

static void call_done(lsmtp_mx_lookup *l) {
  l->completed = 1;
  l->in_done = 1;
  l->done(l->user_data, l->plan);
  l->in_done = 0;
  if (l->del_pending) free_lookup(l);
}

static void on_answer(void *data, const lsmtp_dns_answer *a);
static void advance(lsmtp_mx_lookup *l);

static void start_query(lsmtp_mx_lookup *l, size_t k, const char *name,
                        lsmtp_dns_type type, size_t host) {
  slot *s = &l->slots[k];
  s->l = l;
  s->host = host;
  s->active = 1;
  l->outstanding++;
  lsmtp_dns_query(l->r, name, type, on_answer, s, &s->id);
}

static void on_answer(void *data, const lsmtp_dns_answer *a) {
  slot *s = data;
  lsmtp_mx_lookup *l = s->l;
  if (!s->active) return; /* a resolver breaking the exactly-once rule */
  s->active = 0;
  l->outstanding--;
  if (a->status == LSMTP_ERR_ABORTED) l->aborted = 1;
  if (!l->cancelling) {
    if (s == &l->slots[SLOT_MX]) {
      if (lsmtp_mx_plan_build(l->plan, l->domain, a) == LSMTP_ERR_NOMEM) l->nomem = 1;
    } else {
      (void)lsmtp_mx_plan_add_addresses(l->plan, s->host, a);
    }
  }
  if (!l->issuing) advance(l);
}

/* Called whenever nothing is outstanding and nothing is being started. */
static void advance(lsmtp_mx_lookup *l) {
  if (l->outstanding > 0 || l->completed) return;
  if (!l->addr_phase && !l->cancelling && !l->nomem && !l->aborted &&
      lsmtp_mx_plan_result(l->plan) == LSMTP_MX_OK) {
    l->addr_phase = 1;
    lsmtp_mx_order order = lsmtp__mx_plan_order(l->plan);
    l->issuing = 1;
    size_t n = lsmtp_mx_plan_host_count(l->plan);
    for (size_t i = 0; i < n; i++) {
      const char *h = lsmtp_mx_plan_host(l->plan, i, NULL);
      if (order != LSMTP_MX_IPV4_ONLY) start_query(l, 1 + 2 * i, h, LSMTP_DNS_AAAA, i);
      if (order != LSMTP_MX_IPV6_ONLY) start_query(l, 2 + 2 * i, h, LSMTP_DNS_A, i);
    }
    l->issuing = 0;
    if (l->outstanding > 0) return; /* the last completion comes back here */
  }
  if (l->cancelling || l->aborted)
    force_result(l, LSMTP_DNS_ABORTED);
  else if (l->nomem)
    force_result(l, LSMTP_DNS_TEMPFAIL);
  else if (l->addr_phase)
    (void)lsmtp_mx_plan_finish(l->plan);
  call_done(l); /* last: done may free l */
}

int lsmtp_mx_lookup_new(lsmtp_mx_lookup **out, const lsmtp_allocator *alloc,
                        const lsmtp_dns_resolver *r, lsmtp_mx_plan *p,
                        const char *domain, lsmtp_mx_lookup_done_fn done,
                        void *user_data) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  char dom[LSMTP__DNS_NAME_MAX + 1];
  if (!r || !r->start || !p || !done || lsmtp__dns_name_norm(domain, dom) == 0 ||
      lsmtp__dns_is_ip_literal(dom))
    return LSMTP_ERR_INVALID;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_mx_lookup *l = lsmtp__calloc(alloc, 1, sizeof *l);
  if (!l) return LSMTP_ERR_NOMEM;
  l->alloc = alloc;
  l->r = r;
  l->plan = p;
  memcpy(l->domain, dom, sizeof dom);
  l->done = done;
  l->user_data = user_data;
  *out = l;
  l->issuing = 1;
  start_query(l, SLOT_MX, l->domain, LSMTP_DNS_MX, 0);
  l->issuing = 0;
  advance(l); /* last: done may free l */
  return LSMTP_OK;
}

void lsmtp_mx_lookup_del(lsmtp_mx_lookup *l) {
  if (!l) return;
  if (l->in_done) {
    l->del_pending = 1;
    return;
  }
  if (l->completed) {
    free_lookup(l);
    return;
  }
  /* Cancel everything in flight; each query completes (ABORTED) inside
   * cancel, then done runs once and the lookup is freed after it. */
  l->cancelling = 1;
  l->issuing = 1;
  for (size_t k = 0; k < NSLOTS; k++)
    if (l->slots[k].active) lsmtp_dns_cancel(l->r, l->slots[k].id);
  l->issuing = 0;
  l->del_pending = 1;
  l->outstanding = 0; /* a resolver that did not complete on cancel is ignored */
  advance(l);
}
