/* The password file of the receiving side: load and check
 * "user:$pbkdf2-sha256$ITERATIONS$SALT$HASH" lines (lsmtp/authfile.h),
 * check a password against them, and make such lines.
 *
 * Decisions the header leaves to this file:
 * - The whole file is read first and then parsed, so a bad line never
 *   leaves half a table behind, and the error names the first bad line.
 * - Entries are sorted by user name once; a lookup is a binary search.
 *   Which user exists is not revealed by the search (it takes log2(n)
 *   memcmp calls either way, far below the PBKDF2 work that follows).
 * - An unknown user is checked against a dummy entry with the file's most
 *   common iteration count: a file made by one tool has one count, and
 *   then every check costs the same.
 * - Passwords longer than the SHA-256 block (64 octets) are hashed before
 *   PBKDF2. HMAC does that to such keys anyway (RFC 2104 §2), so the
 *   result is the same PBKDF2 value, but mbedTLS 2.x restarts HMAC with
 *   the raw key in every iteration: without this a long password would
 *   multiply the cost of each login attempt by its length.
 * - The error text repeats user names (they are checked to hold no
 *   control characters) but never salts or hashes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lsmtp/authfile.h>
#include <lsmtp/sasl_server.h>

#include "crypto.h"
#include "internal.h"

#define SCHEME "$pbkdf2-sha256$"
#define SCHEME_LEN (sizeof SCHEME - 1)
#define HASH_LEN LSMTP__SHA256_LEN
#define NEW_SALT_LEN 16
#define HMAC_BLOCK 64 /* SHA-256 block size */

struct entry {
  char *user; /* NUL-terminated copy */
  size_t user_len;
  uint32_t iterations;
  unsigned line;
  size_t salt_len;
  unsigned char salt[LSMTP_AUTHFILE_MAX_SALT];
  unsigned char hash[HASH_LEN];
};

struct lsmtp_authfile {
  const lsmtp_allocator *alloc;
  struct entry *entries; /* sorted by user */
  size_t count, cap;
  struct entry dummy; /* checked for unknown users */
  int status;         /* of the load */
  char *error;        /* NULL: no error */
};

/* ---- shared checks ---- */

/* Why a user name cannot be in the file, or NULL when it can. */
static const char *user_problem(const char *user, size_t n) {
  const unsigned char *u = (const unsigned char *)user;
  if (n == 0) return "empty user name";
  if (n > LSMTP_AUTHFILE_USER_MAX) return "user name longer than 255 octets";
  if (u[0] == ' ' || u[n - 1] == ' ')
    return "user name starts or ends with a space";
  if (u[0] == '#') return "user name starts with '#' (a comment)";
  for (size_t i = 0; i < n;) {
    if (u[i] < 0x20 || u[i] == 0x7f) return "control character in the user name";
    if (u[i] == ':') return "':' in the user name";
    size_t k = lsmtp__utf8_seq(u + i, n - i, NULL);
    if (k == 0) return "user name is not well-formed UTF-8";
    i += k;
  }
  return NULL;
}

/* PBKDF2-HMAC-SHA-256 into out[HASH_LEN], hashing long passwords first
 * (see the top of the file). */
static int derive(const char *password, size_t len, const unsigned char *salt,
                  size_t salt_len, uint32_t iterations,
                  unsigned char out[HASH_LEN]) {
  unsigned char digest[HASH_LEN];
  const void *key = len ? (const void *)password : (const void *)"";
  size_t key_len = len;
  int rc = LSMTP_OK;
  if (len > HMAC_BLOCK) {
    rc = lsmtp__sha256(password, len, digest);
    key = digest;
    key_len = sizeof digest;
  }
  if (rc == LSMTP_OK)
    rc = lsmtp__pbkdf2_sha256(key, key_len, salt, salt_len, iterations, out,
                              HASH_LEN);
  lsmtp__wipe(digest, sizeof digest);
  return rc;
}

/* ---- the object ---- */

void lsmtp_authfile_del(lsmtp_authfile *af) {
  if (!af) return;
  const lsmtp_allocator *a = af->alloc;
  for (size_t i = 0; i < af->count; i++) lsmtp__free(a, af->entries[i].user);
  if (af->entries) lsmtp__wipe(af->entries, af->cap * sizeof *af->entries);
  lsmtp__free(a, af->entries);
  lsmtp__free(a, af->error);
  lsmtp__wipe(af, sizeof *af);
  lsmtp__free(a, af);
}

const char *lsmtp_authfile_error(const lsmtp_authfile *af) {
  return af && af->error ? af->error : "";
}

size_t lsmtp_authfile_count(const lsmtp_authfile *af) {
  return af && af->status == LSMTP_OK ? af->count : 0;
}

/* Record why the load failed and return status (or LSMTP_ERR_NOMEM when
 * even the message cannot be kept). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static int set_error(lsmtp_authfile *af, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  lsmtp__free(af->alloc, af->error);
  af->error = lsmtp__malloc(af->alloc, (size_t)n + 1);
  if (!af->error) return LSMTP_ERR_NOMEM;
  va_start(ap, fmt);
  vsnprintf(af->error, (size_t)n + 1, fmt, ap);
  va_end(ap);
  af->status = status;
  return status;
}

/* ---- reading ---- */

/* Read the whole file into *data (allocated with af->alloc). */
static int read_file(lsmtp_authfile *af, const char *path, char **data,
                     size_t *len) {
  *data = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    char why[128] = "unknown error";
    int err = errno;
    (void)strerror_r(err, why, sizeof why);
    return set_error(af, LSMTP_ERR_IO, "%s: cannot open: %s", path, why);
  }
  size_t cap = 4096, used = 0;
  char *buf = lsmtp__malloc(af->alloc, cap);
  int rc = buf ? LSMTP_OK : LSMTP_ERR_NOMEM;
  while (rc == LSMTP_OK) {
    if (used == cap) {
      if (cap > LSMTP_AUTHFILE_MAX_SIZE) {
        rc = set_error(af, LSMTP_ERR_LIMIT, "%s: larger than %u octets", path,
                       (unsigned)LSMTP_AUTHFILE_MAX_SIZE);
        break;
      }
      char *nb = lsmtp__realloc(af->alloc, buf, cap * 2);
      if (!nb) {
        rc = LSMTP_ERR_NOMEM;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + used, cap - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      char why[128] = "unknown error";
      int err = errno;
      (void)strerror_r(err, why, sizeof why);
      rc = set_error(af, LSMTP_ERR_IO, "%s: cannot read: %s", path, why);
      break;
    }
    if (n == 0) break;
    used += (size_t)n;
  }
  close(fd);
  if (rc == LSMTP_OK && used > LSMTP_AUTHFILE_MAX_SIZE)
    rc = set_error(af, LSMTP_ERR_LIMIT, "%s: larger than %u octets", path,
                   (unsigned)LSMTP_AUTHFILE_MAX_SIZE);
  if (rc != LSMTP_OK) {
    if (buf) lsmtp__wipe(buf, cap);
    lsmtp__free(af->alloc, buf);
    return rc;
  }
  *data = buf;
  *len = used;
  return LSMTP_OK;
}

/* ---- parsing ---- */

static int is_blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t') return 0;
  return 1;
}

static int is_comment(const char *p, size_t n) {
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
  return i < n && p[i] == '#';
}

/* Parse "ITERATIONS$" at p[0..n); *used gets the octets through the '$'.
 * Returns NULL or the problem. */
static const char *parse_iterations(const char *p, size_t n, uint32_t *out,
                                    size_t *used) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < n && lsmtp__is_digit((unsigned char)p[i])) {
    if (i == 9) return "iteration count out of range (1000..10000000)";
    v = v * 10 + (uint64_t)(p[i] - '0');
    i++;
  }
  if (i == 0 || i == n || p[i] != '$')
    return "iteration count is not a decimal number followed by '$'";
  if (p[0] == '0') return "iteration count has a leading zero";
  if (v < LSMTP_AUTHFILE_MIN_ITERATIONS || v > LSMTP_AUTHFILE_MAX_ITERATIONS)
    return "iteration count out of range (1000..10000000)";
  *out = (uint32_t)v;
  *used = i + 1;
  return NULL;
}

/* Parse one entry p[0..n) (no newline) into e; NULL or the problem. */
static const char *parse_entry(const char *p, size_t n, struct entry *e) {
  const char *colon = memchr(p, ':', n);
  if (!colon) return "missing ':' after the user name";
  size_t user_len = (size_t)(colon - p);
  const char *why = user_problem(p, user_len);
  if (why) return why;
  e->user_len = user_len;
  const char *r = colon + 1;
  size_t rn = n - user_len - 1;
  if (rn < SCHEME_LEN || memcmp(r, SCHEME, SCHEME_LEN) != 0)
    return "unknown hash scheme (expected $pbkdf2-sha256$)";
  r += SCHEME_LEN, rn -= SCHEME_LEN;
  size_t used;
  if ((why = parse_iterations(r, rn, &e->iterations, &used)) != NULL) return why;
  r += used, rn -= used;
  const char *dollar = memchr(r, '$', rn);
  if (!dollar) return "missing '$' between salt and hash";
  size_t salt_text = (size_t)(dollar - r);
  int rc = lsmtp_base64_decode(e->salt, sizeof e->salt, &e->salt_len, r, salt_text);
  if (rc == LSMTP_ERR_TOO_LONG) return "salt longer than 64 octets";
  if (rc != LSMTP_OK || (salt_text == 1 && r[0] == '='))
    return "salt is not base64 with padding";
  if (e->salt_len < LSMTP_AUTHFILE_MIN_SALT) return "salt shorter than 8 octets";
  r = dollar + 1, rn -= salt_text + 1;
  size_t hash_len = 0;
  rc = lsmtp_base64_decode(e->hash, sizeof e->hash, &hash_len, r, rn);
  if (rc == LSMTP_ERR_SYNTAX) return "hash is not base64 with padding";
  if (rc != LSMTP_OK || hash_len != HASH_LEN) return "hash is not 32 octets";
  return NULL;
}

static int add_entry(lsmtp_authfile *af, const char *p, struct entry *e) {
  if (af->count == af->cap) {
    size_t cap = af->cap ? af->cap * 2 : 16;
    struct entry *ne = lsmtp__realloc(af->alloc, af->entries, cap * sizeof *ne);
    if (!ne) return LSMTP_ERR_NOMEM;
    af->entries = ne;
    af->cap = cap;
  }
  e->user = lsmtp__strndup(af->alloc, p, e->user_len);
  if (!e->user) return LSMTP_ERR_NOMEM;
  af->entries[af->count++] = *e;
  return LSMTP_OK;
}

static int parse(lsmtp_authfile *af, const char *path, const char *data,
                 size_t len) {
  unsigned line = 0;
  size_t pos = 0;
  while (pos < len) {
    line++;
    const char *p = data + pos;
    const char *nl = memchr(p, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - p) : len - pos;
    pos += n + (nl ? 1 : 0);
    if (n + 1 > LSMTP_AUTHFILE_LINE_MAX)
      return set_error(af, LSMTP_ERR_TOO_LONG, "%s:%u: line longer than %u octets",
                       path, line, (unsigned)LSMTP_AUTHFILE_LINE_MAX);
    if (n > 0 && p[n - 1] == '\r') n--;
    if (is_blank(p, n) || is_comment(p, n)) continue;
    if (af->count == LSMTP_AUTHFILE_MAX_USERS)
      return set_error(af, LSMTP_ERR_LIMIT, "%s:%u: more than %u users", path,
                       line, (unsigned)LSMTP_AUTHFILE_MAX_USERS);
    struct entry e;
    memset(&e, 0, sizeof e);
    e.line = line;
    const char *why = parse_entry(p, n, &e);
    int rc = why ? set_error(af, LSMTP_ERR_SYNTAX, "%s:%u: %s", path, line, why)
                 : add_entry(af, p, &e);
    lsmtp__wipe(&e, sizeof e);
    if (rc != LSMTP_OK) return rc;
  }
  return LSMTP_OK;
}

static int cmp_user(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

static int cmp_entry(const void *x, const void *y) {
  const struct entry *a = x, *b = y;
  return cmp_user(a->user, a->user_len, b->user, b->user_len);
}

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

/* Sort, refuse duplicates, and set up the dummy entry. */
static int finish(lsmtp_authfile *af, const char *path) {
  if (af->count > 1)
    qsort(af->entries, af->count, sizeof *af->entries, cmp_entry);
  for (size_t i = 1; i < af->count; i++) {
    const struct entry *a = &af->entries[i - 1], *b = &af->entries[i];
    if (cmp_entry(a, b) == 0) {
      unsigned first = a->line < b->line ? a->line : b->line;
      unsigned second = a->line < b->line ? b->line : a->line;
      return set_error(af, LSMTP_ERR_SYNTAX, "%s:%u: duplicate user '%s' (first on line %u)",
                       path, second, a->user, first);
    }
  }
  /* The most common iteration count (the larger one on a tie). */
  uint32_t best = LSMTP_AUTHFILE_DEFAULT_ITERATIONS;
  if (af->count > 0) {
    uint32_t *it = lsmtp__malloc(af->alloc, af->count * sizeof *it);
    if (!it) return LSMTP_ERR_NOMEM;
    for (size_t i = 0; i < af->count; i++) it[i] = af->entries[i].iterations;
    qsort(it, af->count, sizeof *it, cmp_u32);
    size_t best_run = 0;
    for (size_t i = 0; i < af->count;) {
      size_t j = i;
      while (j < af->count && it[j] == it[i]) j++;
      if (j - i >= best_run) best_run = j - i, best = it[i];
      i = j;
    }
    lsmtp__free(af->alloc, it);
  }
  af->dummy.iterations = best;
  af->dummy.salt_len = NEW_SALT_LEN;
  return LSMTP_OK;
}

int lsmtp_authfile_load(lsmtp_authfile **out, const lsmtp_allocator *alloc,
                        const char *path) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!path) return LSMTP_ERR_INVALID;
  const lsmtp_allocator *a = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_authfile *af = lsmtp__calloc(a, 1, sizeof *af);
  if (!af) return LSMTP_ERR_NOMEM;
  af->alloc = a;
  af->status = LSMTP_OK;
  int rc;
  if (!lsmtp__crypto_available()) {
    rc = set_error(af, LSMTP_ERR_UNSUPPORTED,
                   "%s: password files need a build with mbedTLS", path);
  } else {
    char *data = NULL;
    size_t len = 0;
    rc = read_file(af, path, &data, &len);
    if (rc == LSMTP_OK) rc = parse(af, path, data, len);
    if (data) lsmtp__wipe(data, len);
    lsmtp__free(a, data);
    if (rc == LSMTP_OK) rc = finish(af, path);
  }
  if (rc == LSMTP_ERR_NOMEM) {
    lsmtp_authfile_del(af);
    return rc;
  }
  af->status = rc;
  *out = af;
  return rc;
}

/* ---- checking ---- */

static const struct entry *find(const lsmtp_authfile *af, const char *user,
                                size_t len) {
  size_t lo = 0, hi = af->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct entry *e = &af->entries[mid];
    int c = cmp_user(user, len, e->user, e->user_len);
    if (c == 0) return e;
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

int lsmtp_authfile_check(const lsmtp_authfile *af, const char *user,
                         size_t user_len, const char *password, size_t len) {
  if (!af || (!user && user_len) || (!password && len)) return LSMTP_ERR_INVALID;
  if (af->status != LSMTP_OK) return LSMTP_ERR_STATE;
  const struct entry *e = user ? find(af, user, user_len) : NULL;
  const int known = e != NULL;
  if (!known) e = &af->dummy;
  unsigned char got[HASH_LEN];
  int rc = derive(password, len, e->salt, e->salt_len, e->iterations, got);
  if (rc != LSMTP_OK) {
    lsmtp__wipe(got, sizeof got);
    return rc;
  }
  /* Look at every octet whatever the earlier ones were. */
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < HASH_LEN; i++)
    diff = (unsigned char)(diff | (got[i] ^ e->hash[i]));
  lsmtp__wipe(got, sizeof got);
  return (known & (diff == 0)) ? LSMTP_OK : LSMTP_ERR_AUTH;
}

uint32_t lsmtp__authfile_dummy_iterations(const lsmtp_authfile *af) {
  return af ? af->dummy.iterations : 0;
}

/* ---- making lines ---- */

int lsmtp_authfile_hash_line(char *buf, size_t cap, const char *user,
                             const char *password, uint32_t iterations) {
  if (!buf || !user || !password) return LSMTP_ERR_INVALID;
  if (cap > 0) buf[0] = '\0';
  if (iterations == 0) iterations = LSMTP_AUTHFILE_DEFAULT_ITERATIONS;
  if (iterations < LSMTP_AUTHFILE_MIN_ITERATIONS ||
      iterations > LSMTP_AUTHFILE_MAX_ITERATIONS)
    return LSMTP_ERR_INVALID;
  const size_t user_len = strlen(user);
  if (user_problem(user, user_len)) return LSMTP_ERR_INVALID;
  const size_t pw_len = strlen(password);
  if (pw_len > LSMTP_SASL_SERVER_PASSWORD_MAX) return LSMTP_ERR_TOO_LONG;
  for (size_t i = 0; i < pw_len;) {
    size_t k = lsmtp__utf8_seq((const unsigned char *)password + i, pw_len - i, NULL);
    if (k == 0) return LSMTP_ERR_UTF8;
    i += k;
  }
  if (!lsmtp__crypto_available()) return LSMTP_ERR_UNSUPPORTED;

  unsigned char salt[NEW_SALT_LEN], hash[HASH_LEN];
  int rc = lsmtp__random_bytes(salt, sizeof salt);
  if (rc == LSMTP_OK) rc = derive(password, pw_len, salt, sizeof salt, iterations, hash);
  if (rc == LSMTP_OK) {
    char salt64[LSMTP_BASE64_ENCODED_LEN(NEW_SALT_LEN) + 1];
    char hash64[LSMTP_BASE64_ENCODED_LEN(HASH_LEN) + 1];
    lsmtp_base64_encode(salt64, sizeof salt64, salt, sizeof salt);
    lsmtp_base64_encode(hash64, sizeof hash64, hash, sizeof hash);
    int n = snprintf(NULL, 0, "%s:" SCHEME "%lu$%s$%s", user,
                     (unsigned long)iterations, salt64, hash64);
    if (n < 0 || (size_t)n >= cap) {
      rc = LSMTP_ERR_TOO_LONG;
    } else {
      snprintf(buf, cap, "%s:" SCHEME "%lu$%s$%s", user,
               (unsigned long)iterations, salt64, hash64);
    }
    lsmtp__wipe(hash64, sizeof hash64);
  }
  lsmtp__wipe(hash, sizeof hash);
  return rc;
}
