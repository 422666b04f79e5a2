/* The static resolver: answers from a table of records given in code,
 * either inside start or, with LSMTP_DNS_STATIC_DEFER, when the host calls
 * lsmtp_dns_static_step (so tests can hold queries in flight and cancel or
 * destroy them). Each completion builds its answer in its own builder, so a
 * callback that starts another query cannot overwrite the answer it is
 * still reading. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns_int.h"

typedef struct entry {
  char *name; /* normalised */
  lsmtp_dns_type type;
  lsmtp_dns_error error; /* NOERROR: a record; else a forced failure */
  uint16_t preference;
  char *host;
  unsigned char bytes[16];
} entry;

typedef struct pending {
  uint64_t id;
  char *name; /* as given */
  lsmtp_dns_type type;
  lsmtp_dns_done_fn done;
  void *done_data;
} pending;

struct lsmtp_dns_static {
  const lsmtp_allocator *alloc;
  unsigned flags;
  lsmtp_dns_resolver iface;
  entry *e;
  size_t n, cap;
  pending *q; /* FIFO, oldest first (ids ascending) */
  size_t qn, qcap;
  uint64_t last_id;
  int destroying;
};

/* Build the answer for name/type from the table and deliver it. */
static void answer_from_table(lsmtp_dns_static *s, const char *name,
                              lsmtp_dns_type type, lsmtp_dns_done_fn done,
                              void *done_data) {
  char norm[LSMTP__DNS_NAME_MAX + 1];
  lsmtp_dns_answer a;
  if (lsmtp__dns_name_norm(name, norm) == 0) {
    lsmtp__dns_answer_error(&a, name, type, LSMTP_DNS_BADNAME);
    done(done_data, &a);
    return;
  }
  int known = 0;
  for (size_t i = 0; i < s->n; i++) {
    const entry *e = &s->e[i];
    if (e->error != LSMTP_DNS_NOERROR && e->type == type && strcmp(e->name, norm) == 0) {
      lsmtp__dns_answer_error(&a, name, type, e->error);
      done(done_data, &a);
      return;
    }
  }
  lsmtp__dns_abuf b;
  lsmtp__dns_abuf_init(&b, s->alloc);
  int rc = LSMTP_OK;
  for (size_t i = 0; i < s->n && rc != LSMTP_ERR_NOMEM; i++) {
    const entry *e = &s->e[i];
    if (e->error != LSMTP_DNS_NOERROR || strcmp(e->name, norm) != 0) continue;
    known = 1;
    if (e->type != type) continue;
    if (type == LSMTP_DNS_MX)
      rc = lsmtp__dns_abuf_add_mx(&b, e->preference, e->host, strlen(e->host));
    else
      rc = lsmtp__dns_abuf_add_addr(&b, type, e->bytes);
  }
  if (rc == LSMTP_ERR_NOMEM) {
    lsmtp__dns_answer_error(&a, name, type, LSMTP_DNS_TEMPFAIL);
    a.status = LSMTP_ERR_NOMEM;
  } else if (!known) {
    lsmtp__dns_answer_error(&a, name, type, LSMTP_DNS_NXDOMAIN);
  } else {
    lsmtp__dns_abuf_answer(&b, name, type, &a);
  }
  done(done_data, &a);
  lsmtp__dns_abuf_free(&b);
}

/* Take q[i] out of the queue (keeping the order) and return it. */
static pending take(lsmtp_dns_static *s, size_t i) {
  pending p = s->q[i];
  memmove(&s->q[i], &s->q[i + 1], (s->qn - i - 1) * sizeof *s->q);
  s->qn--;
  return p;
}

static void complete_aborted(const char *name, lsmtp_dns_type type,
                             lsmtp_dns_done_fn done, void *done_data) {
  lsmtp_dns_answer a;
  lsmtp__dns_answer_error(&a, name, type, LSMTP_DNS_ABORTED);
  done(done_data, &a);
}

static void static_start(void *ud, const char *name, lsmtp_dns_type type,
                         lsmtp_dns_done_fn done, void *done_data,
                         uint64_t *query_id) {
  lsmtp_dns_static *s = ud;
  uint64_t dummy;
  if (!query_id) query_id = &dummy;
  *query_id = ++s->last_id;
  if (s->destroying) {
    complete_aborted(name, type, done, done_data);
    return;
  }
  if (!(s->flags & LSMTP_DNS_STATIC_DEFER) || !name) {
    answer_from_table(s, name, type, done, done_data);
    return;
  }
  char *copy = lsmtp__strndup(s->alloc, name, strnlen(name, LSMTP__DNS_NAME_MAX + 2));
  if (s->qn == s->qcap && copy) {
    size_t ncap = s->qcap ? s->qcap * 2 : 16;
    pending *nq = lsmtp__realloc(s->alloc, s->q, ncap * sizeof *nq);
    if (nq) {
      s->q = nq;
      s->qcap = ncap;
    }
  }
  if (!copy || s->qn == s->qcap) {
    lsmtp__free(s->alloc, copy);
    lsmtp_dns_answer a;
    lsmtp__dns_answer_error(&a, name, type, LSMTP_DNS_TEMPFAIL);
    a.status = LSMTP_ERR_NOMEM;
    done(done_data, &a);
    return;
  }
  s->q[s->qn++] = (pending){*query_id, copy, type, done, done_data};
}

static void static_cancel(void *ud, uint64_t id) {
  lsmtp_dns_static *s = ud;
  for (size_t i = 0; i < s->qn; i++) {
    if (s->q[i].id != id) continue;
    pending p = take(s, i);
    complete_aborted(p.name, p.type, p.done, p.done_data);
    lsmtp__free(s->alloc, p.name);
    return;
  }
}

int lsmtp_dns_static_new(lsmtp_dns_static **out, const lsmtp_allocator *alloc,
                         unsigned flags) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (flags & ~(unsigned)LSMTP_DNS_STATIC_DEFER) return LSMTP_ERR_INVALID;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_dns_static *s = lsmtp__calloc(alloc, 1, sizeof *s);
  if (!s) return LSMTP_ERR_NOMEM;
  s->alloc = alloc;
  s->flags = flags;
  s->iface.start = static_start;
  s->iface.cancel = static_cancel;
  s->iface.user_data = s;
  *out = s;
  return LSMTP_OK;
}

void lsmtp_dns_static_del(lsmtp_dns_static *s) {
  if (!s) return;
  s->destroying = 1;
  /* Callbacks may start queries; those complete at once (destroying). */
  while (s->qn > 0) {
    pending p = take(s, 0);
    complete_aborted(p.name, p.type, p.done, p.done_data);
    lsmtp__free(s->alloc, p.name);
  }
  for (size_t i = 0; i < s->n; i++) {
    lsmtp__free(s->alloc, s->e[i].name);
    lsmtp__free(s->alloc, s->e[i].host);
  }
  lsmtp__free(s->alloc, s->e);
  lsmtp__free(s->alloc, s->q);
  lsmtp__free(s->alloc, s);
}

const lsmtp_dns_resolver *lsmtp_dns_static_resolver(lsmtp_dns_static *s) {
  return s ? &s->iface : NULL;
}

/* Append an entry for name (normalised here); takes ownership of host. */
static int add_entry(lsmtp_dns_static *s, const char *name, entry *e) {
  char norm[LSMTP__DNS_NAME_MAX + 1];
  size_t len = lsmtp__dns_name_norm(name, norm);
  if (len == 0) return LSMTP_ERR_INVALID;
  if (s->n >= LSMTP_DNS_STATIC_MAX_ENTRIES) return LSMTP_ERR_LIMIT;
  if (s->n == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 16;
    entry *ne = lsmtp__realloc(s->alloc, s->e, ncap * sizeof *ne);
    if (!ne) return LSMTP_ERR_NOMEM;
    s->e = ne;
    s->cap = ncap;
  }
  e->name = lsmtp__strndup(s->alloc, norm, len);
  if (!e->name) return LSMTP_ERR_NOMEM;
  s->e[s->n++] = *e;
  return LSMTP_OK;
}

int lsmtp_dns_static_add_mx(lsmtp_dns_static *s, const char *name,
                            uint16_t preference, const char *host) {
  if (!s || !host) return LSMTP_ERR_INVALID;
  size_t hl = strnlen(host, LSMTP__DNS_NAME_MAX + 2);
  if (hl > LSMTP__DNS_NAME_MAX + 1) return LSMTP_ERR_INVALID;
  if (hl > 1 && host[hl - 1] == '.') hl--;
  if (hl == 0) { /* "" is the root, like "." */
    host = ".";
    hl = 1;
  }
  entry e;
  memset(&e, 0, sizeof e);
  e.type = LSMTP_DNS_MX;
  e.preference = preference;
  e.host = lsmtp__strndup(s->alloc, host, hl);
  if (!e.host) return LSMTP_ERR_NOMEM;
  int rc = add_entry(s, name, &e);
  if (rc != LSMTP_OK) lsmtp__free(s->alloc, e.host);
  return rc;
}

int lsmtp_dns_static_add_addr(lsmtp_dns_static *s, const char *name,
                              const char *ip) {
  if (!s || !ip) return LSMTP_ERR_INVALID;
  entry e;
  memset(&e, 0, sizeof e);
  if (inet_pton(AF_INET, ip, e.bytes) == 1)
    e.type = LSMTP_DNS_A;
  else if (inet_pton(AF_INET6, ip, e.bytes) == 1)
    e.type = LSMTP_DNS_AAAA;
  else
    return LSMTP_ERR_INVALID;
  return add_entry(s, name, &e);
}

int lsmtp_dns_static_set_error(lsmtp_dns_static *s, const char *name,
                               lsmtp_dns_type type, lsmtp_dns_error error) {
  if (!s || error == LSMTP_DNS_NOERROR || error == LSMTP_DNS_ABORTED ||
      (unsigned)error > (unsigned)LSMTP_DNS_BADNAME)
    return LSMTP_ERR_INVALID;
  if (type != LSMTP_DNS_A && type != LSMTP_DNS_AAAA && type != LSMTP_DNS_MX)
    return LSMTP_ERR_INVALID;
  entry e;
  memset(&e, 0, sizeof e);
  e.type = type;
  e.error = error;
  return add_entry(s, name, &e);
}

size_t lsmtp_dns_static_step(lsmtp_dns_static *s) {
  if (!s) return 0;
  /* Only queries started before this call: ids up to here. */
  uint64_t last = s->last_id;
  size_t done = 0;
  while (s->qn > 0 && s->q[0].id <= last) {
    pending p = take(s, 0);
    answer_from_table(s, p.name, p.type, p.done, p.done_data);
    lsmtp__free(s->alloc, p.name);
    done++;
  }
  return done;
}

size_t lsmtp_dns_static_pending(const lsmtp_dns_static *s) {
  return s ? s->qn : 0;
}
