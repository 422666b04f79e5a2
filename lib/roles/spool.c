/* The spool: a durable queue directory (see include/lsmtp/spool.h for the
 * layout and docs/guide-relay.md for the envelope format).
 *
 * Decisions the header leaves open:
 * - Every file operation goes through directory descriptors (openat,
 *   renameat), files are created O_EXCL|O_NOFOLLOW in tmp/.
 * - The envelope is text, one field per line, every value written as
 *   "=" followed by the bytes with space, control, 8-bit and "%" as "%XX":
 *   a value can never break a line or a field, and the parser is strict
 *   (fixed field order, bounded numbers, "end" last) so that a torn or
 *   hand-edited file is recognised as corrupt rather than half-read.
 * - Envelope order on disk: ID.msg renamed first, ID.env last; ID.env
 *   removed first. A lone ID.msg is therefore garbage after a crash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lsmtp/spool.h>

#include "internal.h"

#define SPOOL_BUF_SIZE (64u * 1024u)
#define SPOOL_MAGIC "lsmtp-spool 1"

struct lsmtp_spool {
  const lsmtp_allocator *alloc;
  unsigned flags;
  int dfd, tmp_dfd, queue_dfd, corrupt_dfd;
  lsmtp_spool_log_fn log;
  void *log_data;
  uint64_t counter;
  uint32_t token;
  int err;
  const char *op;
};

typedef struct spool_rcpt_int {
  lsmtp_spool_rcpt pub;
  char *address, *orcpt, *status, *text, *remote; /* owned; "" is static */
} spool_rcpt_int;

struct lsmtp_spool_entry {
  const lsmtp_allocator *alloc;
  char id[LSMTP_SPOOL_ID_MAX];
  char *from, *envid;
  lsmtp_dsn_ret ret;
  uint64_t arrival, next, size;
  unsigned attempts;
  spool_rcpt_int *rcpts;
  size_t nrcpts, cap;
};

enum writer_state { W_OPEN, W_COMMITTED, W_FAILED };

struct lsmtp_spool_writer {
  lsmtp_spool *sp;
  lsmtp_spool_entry *e;
  enum writer_state state;
  int fd;
  int have_tmp; /* tmp/name exists and is ours */
  char name[LSMTP_SPOOL_ID_MAX + 8];
  char *buf;
  size_t buf_len;
  uint64_t size;
};

static const char empty_[] = "";

/* ---- small helpers ---- */

static int fail(lsmtp_spool *sp, const char *op) {
  sp->err = errno;
  sp->op = op;
  return LSMTP_ERR_STORAGE;
}

static void logf_(lsmtp_spool *sp, const char *fmt, const char *a, const char *b) {
  if (!sp->log) return;
  char line[512];
  snprintf(line, sizeof line, fmt, a, b ? b : "");
  sp->log(sp->log_data, line);
}

static int do_fsync(const lsmtp_spool *sp, int fd) {
  return (sp->flags & LSMTP_SPOOL_NO_FSYNC) ? 0 : fsync(fd);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int valid_id(const char *id) {
  size_t n = 0;
  for (; id[n]; n++) {
    unsigned char c = (unsigned char)id[n];
    if (!(lsmtp__is_alpha(c) || lsmtp__is_digit(c) || (c == '.' && n > 0)))
      return 0;
  }
  return n > 0 && n < LSMTP_SPOOL_ID_MAX - 5; /* room for ".env" */
}

static int file_name(char *out, size_t cap, const char *id, const char *ext) {
  int n = snprintf(out, cap, "%s.%s", id, ext);
  return n > 0 && (size_t)n < cap ? 0 : -1;
}

static char *dup_value(const lsmtp_allocator *a, const char *s) {
  if (!s || !*s) return (char *)empty_;
  return lsmtp__strndup(a, s, strlen(s));
}

static void free_value(const lsmtp_allocator *a, char *s) {
  if (s && s != empty_) lsmtp__free(a, s);
}

/* ---- open ---- */

static int open_sub(lsmtp_spool *sp, const char *name, int *fd, int *made) {
  if (mkdirat(sp->dfd, name, 0700) == 0)
    *made = 1;
  else if (errno != EEXIST)
    return fail(sp, "mkdir");
  *fd = openat(sp->dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return *fd < 0 ? fail(sp, "open") : LSMTP_OK;
}

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n > m && memcmp(s + n - m, suffix, m) == 0;
}

/* Remove leftovers of a crash: all of tmp/, and queue/ID.msg without
 * ID.env. */
static int recover(lsmtp_spool *sp) {
  int fd = dup(sp->tmp_dfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0) close(fd);
    return fail(sp, "opendir");
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    if (unlinkat(sp->tmp_dfd, de->d_name, 0) == 0)
      logf_(sp, "removed unfinished file tmp/%s%s", de->d_name, NULL);
  }
  closedir(d);
  fd = dup(sp->queue_dfd);
  d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0) close(fd);
    return fail(sp, "opendir");
  }
  int removed = 0;
  while ((de = readdir(d)) != NULL) {
    if (!has_suffix(de->d_name, ".msg")) continue;
    char env[NAME_MAX + 1];
    size_t n = strlen(de->d_name) - 4;
    memcpy(env, de->d_name, n);
    memcpy(env + n, ".env", 5);
    struct stat st;
    if (fstatat(sp->queue_dfd, env, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT &&
        unlinkat(sp->queue_dfd, de->d_name, 0) == 0) {
      logf_(sp, "removed queue/%s (no envelope: enqueue or removal cut short)%s",
            de->d_name, NULL);
      removed = 1;
    }
  }
  closedir(d);
  if (removed && do_fsync(sp, sp->queue_dfd) != 0) return fail(sp, "fsync");
  return LSMTP_OK;
}


int lsmtp_spool_new(lsmtp_spool **out, const lsmtp_allocator *alloc, const char *dir,
                    unsigned flags, lsmtp_spool_log_fn log, void *log_data) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!dir || !dir[0] || (flags & ~LSMTP_SPOOL_NO_FSYNC)) return LSMTP_ERR_INVALID;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_spool *sp = lsmtp__calloc(alloc, 1, sizeof *sp);
  if (!sp) return LSMTP_ERR_NOMEM;
  sp->alloc = alloc;
  sp->flags = flags;
  sp->log = log;
  sp->log_data = log_data;
  sp->dfd = sp->tmp_dfd = sp->queue_dfd = sp->corrupt_dfd = -1;
  sp->op = "";
  int rc = LSMTP_OK, made = 0;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    rc = fail(sp, "mkdir");
  if (rc == LSMTP_OK) {
    sp->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dfd < 0) rc = fail(sp, "open");
  }
  if (rc == LSMTP_OK) rc = open_sub(sp, "tmp", &sp->tmp_dfd, &made);
  if (rc == LSMTP_OK) rc = open_sub(sp, "queue", &sp->queue_dfd, &made);
  if (rc == LSMTP_OK) rc = open_sub(sp, "corrupt", &sp->corrupt_dfd, &made);
  if (rc == LSMTP_OK && made && do_fsync(sp, sp->dfd) != 0) rc = fail(sp, "fsync");
  if (rc == LSMTP_OK) rc = recover(sp);
  if (rc != LSMTP_OK) {
    int e = sp->err;
    lsmtp_spool_del(sp);
    errno = e;
    return rc;
  }
  sp->token = (uint32_t)lsmtp__unique_token(sp);
  *out = sp;
  return LSMTP_OK;
}

void lsmtp_spool_del(lsmtp_spool *sp) {
  if (!sp) return;
  int fds[] = {sp->dfd, sp->tmp_dfd, sp->queue_dfd, sp->corrupt_dfd};
  for (size_t i = 0; i < 4; i++)
    if (fds[i] >= 0) close(fds[i]);
  lsmtp__free(sp->alloc, sp);
}

int lsmtp_spool_errno(const lsmtp_spool *sp) { return sp ? sp->err : 0; }
const char *lsmtp_spool_failed_op(const lsmtp_spool *sp) { return sp ? sp->op : ""; }

/* ---- entries ---- */

static lsmtp_spool_entry *entry_new(const lsmtp_allocator *a) {
  lsmtp_spool_entry *e = lsmtp__calloc(a, 1, sizeof *e);
  if (!e) return NULL;
  e->alloc = a;
  e->from = e->envid = (char *)empty_;
  return e;
}

static void rcpt_free(const lsmtp_allocator *a, spool_rcpt_int *r) {
  free_value(a, r->address);
  free_value(a, r->orcpt);
  free_value(a, r->status);
  free_value(a, r->text);
  free_value(a, r->remote);
}

void lsmtp_spool_entry_del(lsmtp_spool_entry *e) {
  if (!e) return;
  for (size_t i = 0; i < e->nrcpts; i++) rcpt_free(e->alloc, &e->rcpts[i]);
  lsmtp__free(e->alloc, e->rcpts);
  free_value(e->alloc, e->from);
  free_value(e->alloc, e->envid);
  lsmtp__free(e->alloc, e);
}

static void rcpt_sync(spool_rcpt_int *r) {
  r->pub.address = r->address;
  r->pub.orcpt = r->orcpt;
  r->pub.status = r->status;
  r->pub.text = r->text;
  r->pub.remote = r->remote;
}

/* Append a recipient; values are taken over (freed on failure). */
static int entry_add(lsmtp_spool_entry *e, spool_rcpt_int *r) {
  if (e->nrcpts == LSMTP_SPOOL_MAX_RCPTS) {
    rcpt_free(e->alloc, r);
    return LSMTP_ERR_LIMIT;
  }
  if (e->nrcpts == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 4;
    spool_rcpt_int *n = lsmtp__realloc(e->alloc, e->rcpts, cap * sizeof *n);
    if (!n) {
      rcpt_free(e->alloc, r);
      return LSMTP_ERR_NOMEM;
    }
    e->rcpts = n;
    e->cap = cap;
  }
  /* Pointers into the array move with realloc: refresh them all. */
  e->rcpts[e->nrcpts++] = *r;
  for (size_t i = 0; i < e->nrcpts; i++) rcpt_sync(&e->rcpts[i]);
  return LSMTP_OK;
}

/* A value may hold anything but NUL, CR and LF (the encoding would carry
 * them, but no SMTP value has them and refusing keeps the files tame). */
static int check_value(const char *s, size_t max) {
  if (!s) return LSMTP_OK;
  size_t n = strlen(s);
  if (n > max) return LSMTP_ERR_TOO_LONG;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n') return LSMTP_ERR_INVALID;
  return LSMTP_OK;
}

const char *lsmtp_spool_entry_id(const lsmtp_spool_entry *e) { return e->id; }
const char *lsmtp_spool_entry_from(const lsmtp_spool_entry *e) { return e->from; }
const char *lsmtp_spool_entry_envid(const lsmtp_spool_entry *e) { return e->envid; }
lsmtp_dsn_ret lsmtp_spool_entry_ret(const lsmtp_spool_entry *e) { return e->ret; }
uint64_t lsmtp_spool_entry_arrival(const lsmtp_spool_entry *e) { return e->arrival; }
unsigned lsmtp_spool_entry_attempts(const lsmtp_spool_entry *e) { return e->attempts; }
uint64_t lsmtp_spool_entry_next_attempt(const lsmtp_spool_entry *e) { return e->next; }
uint64_t lsmtp_spool_entry_size(const lsmtp_spool_entry *e) { return e->size; }
size_t lsmtp_spool_entry_rcpt_count(const lsmtp_spool_entry *e) { return e->nrcpts; }

const lsmtp_spool_rcpt *lsmtp_spool_entry_rcpt(const lsmtp_spool_entry *e, size_t i) {
  return e && i < e->nrcpts ? &e->rcpts[i].pub : NULL;
}

size_t lsmtp_spool_entry_pending(const lsmtp_spool_entry *e) {
  size_t n = 0;
  for (size_t i = 0; i < e->nrcpts; i++)
    if (e->rcpts[i].pub.state == LSMTP_SPOOL_PENDING) n++;
  return n;
}

int lsmtp_spool_entry_set_rcpt(lsmtp_spool_entry *e, size_t i, lsmtp_spool_state state,
                               int code, const char *status, const char *text,
                               const char *remote) {
  if (!e || i >= e->nrcpts || state > LSMTP_SPOOL_FAILED || code < 0 || code > 999)
    return LSMTP_ERR_INVALID;
  if ((status && strlen(status) > 32) || (text && strlen(text) > LSMTP_SPOOL_MAX_TEXT) ||
      (remote && strlen(remote) > LSMTP_SPOOL_MAX_TEXT))
    return LSMTP_ERR_TOO_LONG;
  if (check_value(status, 32) != LSMTP_OK || check_value(remote, LSMTP_SPOOL_MAX_TEXT) != LSMTP_OK)
    return LSMTP_ERR_INVALID;
  char *s = dup_value(e->alloc, status);
  char *t = dup_value(e->alloc, text);
  char *m = dup_value(e->alloc, remote);
  if (!s || !t || !m) {
    free_value(e->alloc, s);
    free_value(e->alloc, t);
    free_value(e->alloc, m);
    return LSMTP_ERR_NOMEM;
  }
  for (char *p = t; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
  spool_rcpt_int *r = &e->rcpts[i];
  free_value(e->alloc, r->status);
  free_value(e->alloc, r->text);
  free_value(e->alloc, r->remote);
  r->status = s;
  r->text = t;
  r->remote = m;
  r->pub.state = state;
  r->pub.code = code;
  rcpt_sync(r);
  return LSMTP_OK;
}

void lsmtp_spool_entry_set_schedule(lsmtp_spool_entry *e, unsigned attempts,
                                    uint64_t next_attempt_ms) {
  if (!e) return;
  e->attempts = attempts;
  e->next = next_attempt_ms;
}

/* ---- envelope format ---- */

static int put_value(lsmtp__buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  if (lsmtp__buf_append(b, " =", 2) != LSMTP_OK) return LSMTP_ERR_NOMEM;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
    int plain = *p > 0x20 && *p < 0x7f && *p != '%';
    if (lsmtp__buf_append(b, plain ? (const char *)p : esc, plain ? 1 : 3) != LSMTP_OK)
      return LSMTP_ERR_NOMEM;
  }
  return LSMTP_OK;
}

static int put_text(lsmtp__buf *b, const char *s) {
  return lsmtp__buf_append(b, s, strlen(s));
}

static int put_num(lsmtp__buf *b, uint64_t v) {
  char num[24];
  int n = snprintf(num, sizeof num, " %llu", (unsigned long long)v);
  return lsmtp__buf_append(b, num, (size_t)n);
}

static int serialize(const lsmtp_spool_entry *e, lsmtp__buf *b) {
  int bad = put_text(b, SPOOL_MAGIC "\nid") || put_value(b, e->id) ||
            put_text(b, "\nfrom") || put_value(b, e->from) ||
            put_text(b, "\nenvid") || put_value(b, e->envid) ||
            put_text(b, "\nret") || put_num(b, (uint64_t)e->ret) ||
            put_text(b, "\narrival") || put_num(b, e->arrival) ||
            put_text(b, "\nattempts") || put_num(b, e->attempts) ||
            put_text(b, "\nnext") || put_num(b, e->next) ||
            put_text(b, "\nsize") || put_num(b, e->size) || put_text(b, "\n");
  for (size_t i = 0; !bad && i < e->nrcpts; i++) {
    const spool_rcpt_int *r = &e->rcpts[i];
    bad = put_text(b, "rcpt") || put_num(b, (uint64_t)r->pub.state) ||
          put_num(b, r->pub.notify) || put_num(b, (uint64_t)r->pub.code) ||
          put_value(b, r->address) || put_value(b, r->orcpt) ||
          put_value(b, r->status) || put_value(b, r->remote) ||
          put_value(b, r->text) || put_text(b, "\n");
  }
  if (!bad) bad = put_text(b, "end\n");
  return bad ? LSMTP_ERR_NOMEM : LSMTP_OK;
}

/* A cursor over one envelope line. */
typedef struct cursor {
  const char *p, *end;
} cursor;

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* " =value": decoded into a fresh string (or empty_). */
static int get_value(cursor *c, const lsmtp_allocator *a, size_t max, char **out) {
  *out = NULL;
  if (c->end - c->p < 2 || c->p[0] != ' ' || c->p[1] != '=') return LSMTP_ERR_SYNTAX;
  c->p += 2;
  const char *start = c->p;
  size_t n = 0;
  while (c->p < c->end && *c->p != ' ') {
    unsigned char ch = (unsigned char)*c->p;
    if (ch == '%') {
      if (c->end - c->p < 3) return LSMTP_ERR_SYNTAX;
      int hi = hexval(c->p[1]), lo = hexval(c->p[2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return LSMTP_ERR_SYNTAX;
      c->p += 3;
    } else if (ch <= 0x20 || ch >= 0x7f) {
      return LSMTP_ERR_SYNTAX;
    } else {
      c->p++;
    }
    if (++n > max) return LSMTP_ERR_SYNTAX;
  }
  if (n == 0) {
    *out = (char *)empty_;
    return LSMTP_OK;
  }
  char *s = lsmtp__malloc(a, n + 1);
  if (!s) return LSMTP_ERR_NOMEM;
  size_t o = 0;
  for (const char *q = start; q < c->p;) {
    if (*q == '%') {
      s[o++] = (char)(hexval(q[1]) * 16 + hexval(q[2]));
      q += 3;
    } else {
      s[o++] = *q++;
    }
  }
  s[o] = '\0';
  *out = s;
  return LSMTP_OK;
}

static int get_num(cursor *c, uint64_t max, uint64_t *out) {
  if (c->p >= c->end || *c->p != ' ') return LSMTP_ERR_SYNTAX;
  c->p++;
  uint64_t v = 0;
  const char *start = c->p;
  while (c->p < c->end && lsmtp__is_digit(*c->p)) {
    unsigned d = (unsigned)(*c->p - '0');
    if (d > max || v > (max - d) / 10) return LSMTP_ERR_SYNTAX;
    v = v * 10 + d;
    c->p++;
  }
  if (c->p == start || c->p - start > 20 || (*start == '0' && c->p - start > 1))
    return LSMTP_ERR_SYNTAX;
  *out = v;
  return LSMTP_OK;
}

/* Take the next line starting with key; c is set to the rest of it. */
static int next_line(cursor *file, const char *key, cursor *line) {
  const char *nl = memchr(file->p, '\n', (size_t)(file->end - file->p));
  if (!nl) return LSMTP_ERR_SYNTAX;
  size_t k = strlen(key);
  if ((size_t)(nl - file->p) < k || memcmp(file->p, key, k) != 0) return LSMTP_ERR_SYNTAX;
  line->p = file->p + k;
  line->end = nl;
  file->p = nl + 1;
  return LSMTP_OK;
}

static int line_done(const cursor *c) { return c->p == c->end ? LSMTP_OK : LSMTP_ERR_SYNTAX; }

static int parse_rcpt(lsmtp_spool_entry *e, cursor *l) {
  uint64_t state, notify, code;
  spool_rcpt_int r;
  memset(&r, 0, sizeof r);
  int rc = get_num(l, LSMTP_SPOOL_FAILED, &state);
  if (rc == LSMTP_OK) rc = get_num(l, 15, &notify);
  if (rc == LSMTP_OK) rc = get_num(l, 999, &code);
  if (rc == LSMTP_OK) rc = get_value(l, e->alloc, LSMTP_SPOOL_MAX_ADDRESS, &r.address);
  if (rc == LSMTP_OK) rc = get_value(l, e->alloc, LSMTP_SPOOL_MAX_ADDRESS, &r.orcpt);
  if (rc == LSMTP_OK) rc = get_value(l, e->alloc, 32, &r.status);
  if (rc == LSMTP_OK) rc = get_value(l, e->alloc, LSMTP_SPOOL_MAX_TEXT, &r.remote);
  if (rc == LSMTP_OK) rc = get_value(l, e->alloc, LSMTP_SPOOL_MAX_TEXT, &r.text);
  if (rc == LSMTP_OK) rc = line_done(l);
  if (rc == LSMTP_OK && !r.address[0]) rc = LSMTP_ERR_SYNTAX;
  if (rc != LSMTP_OK) {
    rcpt_free(e->alloc, &r);
    return rc;
  }
  r.pub.state = (lsmtp_spool_state)state;
  r.pub.notify = (unsigned)notify;
  r.pub.code = (int)code;
  rc = entry_add(e, &r);
  return rc == LSMTP_ERR_LIMIT ? LSMTP_ERR_SYNTAX : rc;
}

static int parse(lsmtp_spool_entry *e, const char *data, size_t len, const char *id) {
  cursor f = {data, data + len}, l;
  char *s = NULL;
  uint64_t v;
  int rc = next_line(&f, SPOOL_MAGIC, &l);
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK) rc = next_line(&f, "id", &l);
  if (rc == LSMTP_OK) rc = get_value(&l, e->alloc, LSMTP_SPOOL_ID_MAX, &s);
  if (rc == LSMTP_OK && strcmp(s, id) != 0) rc = LSMTP_ERR_SYNTAX;
  free_value(e->alloc, s);
  if (rc == LSMTP_OK) rc = line_done(&l);
  snprintf(e->id, sizeof e->id, "%s", id);
  if (rc == LSMTP_OK) rc = next_line(&f, "from", &l);
  if (rc == LSMTP_OK) rc = get_value(&l, e->alloc, LSMTP_SPOOL_MAX_ADDRESS, &e->from);
  if (!e->from) e->from = (char *)empty_;
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK) rc = next_line(&f, "envid", &l);
  if (rc == LSMTP_OK) rc = get_value(&l, e->alloc, LSMTP_SPOOL_MAX_ADDRESS, &e->envid);
  if (!e->envid) e->envid = (char *)empty_;
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK) rc = next_line(&f, "ret", &l);
  if (rc == LSMTP_OK) rc = get_num(&l, LSMTP_RET_HDRS, &v);
  if (rc == LSMTP_OK) e->ret = (lsmtp_dsn_ret)v;
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK) rc = next_line(&f, "arrival", &l);
  if (rc == LSMTP_OK) rc = get_num(&l, UINT64_MAX, &e->arrival);
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK) rc = next_line(&f, "attempts", &l);
  if (rc == LSMTP_OK) rc = get_num(&l, UINT32_MAX, &v);
  if (rc == LSMTP_OK) e->attempts = (unsigned)v;
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK) rc = next_line(&f, "next", &l);
  if (rc == LSMTP_OK) rc = get_num(&l, UINT64_MAX, &e->next);
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK) rc = next_line(&f, "size", &l);
  if (rc == LSMTP_OK) rc = get_num(&l, UINT64_MAX, &e->size);
  if (rc == LSMTP_OK) rc = line_done(&l);
  while (rc == LSMTP_OK && next_line(&f, "rcpt", &l) == LSMTP_OK)
    rc = parse_rcpt(e, &l);
  if (rc == LSMTP_OK && e->nrcpts == 0) rc = LSMTP_ERR_SYNTAX;
  if (rc == LSMTP_OK) rc = next_line(&f, "end", &l);
  if (rc == LSMTP_OK) rc = line_done(&l);
  if (rc == LSMTP_OK && f.p != f.end) rc = LSMTP_ERR_SYNTAX;
  return rc;
}

/* Write e's envelope as tmp/ID.env, fsync it, rename it to queue/ID.env. */
static int store_envelope(lsmtp_spool *sp, const lsmtp_spool_entry *e, int sync_queue) {
  lsmtp__buf b;
  lsmtp__buf_init(&b, sp->alloc);
  int rc = serialize(e, &b);
  char name[LSMTP_SPOOL_ID_MAX + 8];
  if (rc == LSMTP_OK && file_name(name, sizeof name, e->id, "env") != 0) rc = LSMTP_ERR_INVALID;
  if (rc != LSMTP_OK) {
    lsmtp__buf_free(&b);
    return rc;
  }
  unlinkat(sp->tmp_dfd, name, 0); /* a leftover of a failed update */
  int fd = openat(sp->tmp_dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
  if (fd < 0) rc = fail(sp, "open");
  else if (write_all(fd, b.data, b.len) != 0) rc = fail(sp, "write");
  else if (do_fsync(sp, fd) != 0) rc = fail(sp, "fsync");
  if (fd >= 0 && close(fd) != 0 && rc == LSMTP_OK) rc = fail(sp, "close");
  if (rc == LSMTP_OK && renameat(sp->tmp_dfd, name, sp->queue_dfd, name) != 0)
    rc = fail(sp, "rename");
  if (rc == LSMTP_OK && sync_queue && do_fsync(sp, sp->queue_dfd) != 0) rc = fail(sp, "fsync");
  if (rc != LSMTP_OK && fd >= 0) {
    int saved = errno;
    unlinkat(sp->tmp_dfd, name, 0);
    errno = saved;
  }
  lsmtp__buf_free(&b);
  return rc;
}

/* ---- enqueue ---- */

static uint64_t now_ms(void) {
  struct timespec ts = {0, 0};
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int lsmtp_spool_writer_new(lsmtp_spool_writer **out, lsmtp_spool *sp, const char *from,
                           const char *envid, lsmtp_dsn_ret ret, uint64_t arrival_ms) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!sp || ret > LSMTP_RET_HDRS) return LSMTP_ERR_INVALID;
  int rc = check_value(from, LSMTP_SPOOL_MAX_ADDRESS);
  if (rc == LSMTP_OK) rc = check_value(envid, LSMTP_SPOOL_MAX_ADDRESS);
  if (rc != LSMTP_OK) return rc;
  lsmtp_spool_writer *w = lsmtp__calloc(sp->alloc, 1, sizeof *w);
  if (!w) return LSMTP_ERR_NOMEM;
  w->sp = sp;
  w->fd = -1;
  w->state = W_FAILED; /* until the file is open */
  w->e = entry_new(sp->alloc);
  w->buf = lsmtp__malloc(sp->alloc, SPOOL_BUF_SIZE);
  if (w->e) {
    w->e->from = dup_value(sp->alloc, from);
    w->e->envid = dup_value(sp->alloc, envid);
  }
  if (!w->e || !w->buf || !w->e->from || !w->e->envid) {
    if (w->e && !w->e->from) w->e->from = (char *)empty_;
    if (w->e && !w->e->envid) w->e->envid = (char *)empty_;
    lsmtp_spool_writer_del(w);
    return LSMTP_ERR_NOMEM;
  }
  lsmtp_spool_entry *e = w->e;
  e->ret = ret;
  e->arrival = e->next = arrival_ms;
  /* Id: the time, a per-process random token and a counter; unique across
   * restarts because the time moves on and the token changes. */
  for (int tries = 0; tries < 8 && w->fd < 0; tries++) {
    sp->counter++;
    snprintf(e->id, sizeof e->id, "%llX.%08X.%llX", (unsigned long long)now_ms(),
             (unsigned)sp->token, (unsigned long long)sp->counter);
    file_name(w->name, sizeof w->name, e->id, "msg");
    struct stat st;
    if (fstatat(sp->queue_dfd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
    w->fd = openat(sp->tmp_dfd, w->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0600);
    if (w->fd >= 0) w->have_tmp = 1;
    if (w->fd < 0 && errno != EEXIST) break;
  }
  if (w->fd < 0) {
    rc = fail(sp, "open");
    lsmtp_spool_writer_del(w);
    return rc;
  }
  w->state = W_OPEN;
  *out = w;
  return LSMTP_OK;
}

int lsmtp_spool_writer_add_rcpt(lsmtp_spool_writer *w, const char *address, const char *orcpt,
                                unsigned notify) {
  if (!w || !address || !address[0] || notify > 15) return LSMTP_ERR_INVALID;
  if (w->state != W_OPEN) return LSMTP_ERR_STATE;
  int rc = check_value(address, LSMTP_SPOOL_MAX_ADDRESS);
  if (rc == LSMTP_OK) rc = check_value(orcpt, LSMTP_SPOOL_MAX_ADDRESS);
  if (rc != LSMTP_OK) return rc;
  if (w->e->nrcpts == LSMTP_SPOOL_MAX_RCPTS) return LSMTP_ERR_LIMIT;
  spool_rcpt_int r;
  memset(&r, 0, sizeof r);
  r.address = dup_value(w->e->alloc, address);
  r.orcpt = dup_value(w->e->alloc, orcpt);
  r.status = r.text = r.remote = (char *)empty_;
  r.pub.notify = notify;
  if (!r.address || !r.orcpt) {
    rcpt_free(w->e->alloc, &r);
    return LSMTP_ERR_NOMEM;
  }
  return entry_add(w->e, &r);
}

static void writer_abandon(lsmtp_spool_writer *w) {
  int saved = errno;
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
  if (w->have_tmp) unlinkat(w->sp->tmp_dfd, w->name, 0);
  w->have_tmp = 0;
  errno = saved;
}

static int writer_flush(lsmtp_spool_writer *w) {
  if (w->buf_len && write_all(w->fd, w->buf, w->buf_len) != 0) {
    int rc = fail(w->sp, "write");
    w->state = W_FAILED;
    writer_abandon(w);
    return rc;
  }
  w->buf_len = 0;
  return LSMTP_OK;
}

int lsmtp_spool_writer_write(lsmtp_spool_writer *w, const void *data, size_t len) {
  if (!w || (!data && len)) return LSMTP_ERR_INVALID;
  if (w->state != W_OPEN) return w->state == W_FAILED ? LSMTP_ERR_STORAGE : LSMTP_ERR_STATE;
  const char *p = data;
  while (len > 0) {
    size_t room = SPOOL_BUF_SIZE - w->buf_len;
    size_t n = len < room ? len : room;
    memcpy(w->buf + w->buf_len, p, n);
    w->buf_len += n;
    p += n;
    len -= n;
    w->size += n;
    if (w->buf_len == SPOOL_BUF_SIZE) {
      int rc = writer_flush(w);
      if (rc != LSMTP_OK) return rc;
    }
  }
  return LSMTP_OK;
}

int lsmtp_spool_writer_commit(lsmtp_spool_writer *w) {
  if (!w) return LSMTP_ERR_INVALID;
  if (w->state != W_OPEN || w->e->nrcpts == 0) return LSMTP_ERR_STATE;
  lsmtp_spool *sp = w->sp;
  int rc = writer_flush(w);
  if (rc != LSMTP_OK) return rc;
  w->e->size = w->size;
  if (do_fsync(sp, w->fd) != 0) rc = fail(sp, "fsync");
  else if (close(w->fd) != 0) rc = fail(sp, "close");
  w->fd = -1;
  if (rc == LSMTP_OK && renameat(sp->tmp_dfd, w->name, sp->queue_dfd, w->name) != 0)
    rc = fail(sp, "rename");
  if (rc != LSMTP_OK) {
    w->state = W_FAILED;
    writer_abandon(w);
    return rc;
  }
  w->have_tmp = 0;
  /* The message is in queue/ now but not queued until ID.env exists. */
  rc = store_envelope(sp, w->e, 1);
  if (rc != LSMTP_OK) {
    int saved = errno;
    unlinkat(sp->queue_dfd, w->name, 0);
    errno = saved;
    w->state = W_FAILED;
    return rc;
  }
  w->state = W_COMMITTED;
  return LSMTP_OK;
}

const char *lsmtp_spool_writer_id(const lsmtp_spool_writer *w) { return w ? w->e->id : ""; }
uint64_t lsmtp_spool_writer_size(const lsmtp_spool_writer *w) { return w ? w->size : 0; }

void lsmtp_spool_writer_del(lsmtp_spool_writer *w) {
  if (!w) return;
  if (w->state != W_COMMITTED) writer_abandon(w);
  lsmtp_spool_entry_del(w->e);
  lsmtp__free(w->sp->alloc, w->buf);
  lsmtp__free(w->sp->alloc, w);
}

/* ---- the queue ---- */

int lsmtp_spool_scan(lsmtp_spool *sp, lsmtp_spool_scan_fn fn, void *user_data) {
  if (!sp || !fn) return LSMTP_ERR_INVALID;
  int fd = dup(sp->queue_dfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0) close(fd);
    return fail(sp, "opendir");
  }
  /* Collect first: the callback may change the directory. */
  lsmtp__buf ids;
  lsmtp__buf_init(&ids, sp->alloc);
  int rc = LSMTP_OK;
  rewinddir(d);
  struct dirent *de;
  while (rc == LSMTP_OK && (de = readdir(d)) != NULL) {
    if (!has_suffix(de->d_name, ".env")) continue;
    size_t n = strlen(de->d_name) - 4;
    char id[LSMTP_SPOOL_ID_MAX];
    if (n >= sizeof id) continue;
    memcpy(id, de->d_name, n);
    id[n] = '\0';
    if (!valid_id(id)) continue;
    if (lsmtp__buf_append(&ids, id, n + 1) != LSMTP_OK) rc = LSMTP_ERR_NOMEM;
  }
  closedir(d);
  for (size_t off = 0; rc == LSMTP_OK && off < ids.len;) {
    const char *id = ids.data + off;
    off += strlen(id) + 1;
    rc = fn(user_data, id);
  }
  lsmtp__buf_free(&ids);
  return rc;
}

/* Move queue/ID.env and queue/ID.msg into corrupt/. */
static void move_aside(lsmtp_spool *sp, const char *id, const char *why) {
  char name[LSMTP_SPOOL_ID_MAX + 8];
  int moved = 0;
  static const char *const exts[] = {"env", "msg"};
  for (size_t i = 0; i < 2; i++) {
    if (file_name(name, sizeof name, id, exts[i]) == 0 &&
        renameat(sp->queue_dfd, name, sp->corrupt_dfd, name) == 0)
      moved = 1;
  }
  if (moved) {
    do_fsync(sp, sp->corrupt_dfd);
    do_fsync(sp, sp->queue_dfd);
  }
  logf_(sp, "queue file %s: %s; moved into corrupt/", id, why);
}

int lsmtp_spool_load(lsmtp_spool_entry **out, lsmtp_spool *sp, const char *id) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!sp || !id || !valid_id(id)) return LSMTP_ERR_INVALID;
  char name[LSMTP_SPOOL_ID_MAX + 8];
  file_name(name, sizeof name, id, "env");
  int fd = openat(sp->queue_dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail(sp, "open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int rc = fail(sp, "stat");
    close(fd);
    return rc;
  }
  if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
      (uint64_t)st.st_size > LSMTP_SPOOL_MAX_ENVELOPE) {
    close(fd);
    move_aside(sp, id, S_ISREG(st.st_mode) ? "envelope size out of bounds" : "not a file");
    return LSMTP_ERR_SYNTAX;
  }
  size_t len = (size_t)st.st_size;
  char *data = lsmtp__malloc(sp->alloc, len);
  if (!data) {
    close(fd);
    return LSMTP_ERR_NOMEM;
  }
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, data + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  int rc = got == len ? LSMTP_OK : fail(sp, "read");
  close(fd);
  lsmtp_spool_entry *e = NULL;
  if (rc == LSMTP_OK) {
    e = entry_new(sp->alloc);
    if (!e) rc = LSMTP_ERR_NOMEM;
  }
  if (rc == LSMTP_OK) rc = parse(e, data, len, id);
  lsmtp__free(sp->alloc, data);
  const char *why = "envelope does not parse";
  if (rc == LSMTP_OK) {
    file_name(name, sizeof name, id, "msg");
    if (fstatat(sp->queue_dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      why = "message file missing";
      rc = LSMTP_ERR_SYNTAX;
    } else if ((uint64_t)st.st_size != e->size) {
      why = "message file has the wrong size";
      rc = LSMTP_ERR_SYNTAX;
    }
  }
  if (rc != LSMTP_OK) {
    lsmtp_spool_entry_del(e);
    if (rc == LSMTP_ERR_SYNTAX) move_aside(sp, id, why);
    return rc;
  }
  *out = e;
  return LSMTP_OK;
}

int lsmtp_spool_remove(lsmtp_spool *sp, const char *id) {
  if (!sp || !id || !valid_id(id)) return LSMTP_ERR_INVALID;
  char name[LSMTP_SPOOL_ID_MAX + 8];
  file_name(name, sizeof name, id, "env");
  if (unlinkat(sp->queue_dfd, name, 0) != 0) return fail(sp, "unlink");
  file_name(name, sizeof name, id, "msg");
  /* Gone from the queue already; a failure here leaves garbage that the
   * next start removes. */
  unlinkat(sp->queue_dfd, name, 0);
  if (do_fsync(sp, sp->queue_dfd) != 0) return fail(sp, "fsync");
  return LSMTP_OK;
}

int lsmtp_spool_update(lsmtp_spool *sp, const lsmtp_spool_entry *e) {
  if (!sp || !e || !valid_id(e->id)) return LSMTP_ERR_INVALID;
  if (lsmtp_spool_entry_pending(e) == 0) {
    int rc = lsmtp_spool_remove(sp, e->id);
    return rc == LSMTP_OK ? LSMTP_DONE : rc;
  }
  return store_envelope(sp, e, 1);
}

int lsmtp_spool_open_message(lsmtp_spool *sp, const lsmtp_spool_entry *e, int *fd) {
  if (!sp || !e || !fd) return LSMTP_ERR_INVALID;
  char name[LSMTP_SPOOL_ID_MAX + 8];
  if (file_name(name, sizeof name, e->id, "msg") != 0) return LSMTP_ERR_INVALID;
  *fd = openat(sp->queue_dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  return *fd < 0 ? fail(sp, "open") : LSMTP_OK;
}
