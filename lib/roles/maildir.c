/* Maildir delivery: stream one message into tmp/, make it durable, move it
 * into new/. The order of the steps is the whole point of Maildir: a
 * reader only ever sees complete files in new/, and we only report success
 * once both the file and the directory entry that names it are on disk.
 *
 * Decisions the header leaves open:
 * - All work inside the Maildir goes through directory descriptors
 *   (openat/renameat), so a concurrent rename of the path cannot redirect a
 *   delivery half-way; the message file is opened O_EXCL|O_NOFOLLOW.
 * - When we create a directory we also fsync its parent, otherwise a crash
 *   could lose new/ together with an acknowledged message.
 * - If fsync of new/ fails after the rename, the file is unlinked again: the
 *   client will retry after our 4xx and a duplicate is worse than a retry.
 * - A storage failure aborts the delivery at once (tmp file removed), so a
 *   host that forgets to abort leaks nothing on disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lsmtp/deliver.h>

#include "internal.h"

/* Write buffer: large enough that a typical message takes a few write
 * calls, small enough to keep thousands of deliveries open at once. */
#define MAILDIR_BUF_SIZE (64u * 1024u)
/* O_EXCL collisions are retried with the next counter this many times. */
#define MAILDIR_OPEN_TRIES 8

struct lsmtp_maildir_ctx {
  const lsmtp_allocator *alloc;
  char *host; /* encoded host name */
  unsigned flags;
  uint64_t counter; /* deliveries started with this context */
  uint64_t token;   /* random, tells contexts of one process apart */
};

enum maildir_state { MD_OPEN, MD_COMMITTED, MD_CLOSED };

struct lsmtp_maildir {
  const lsmtp_allocator *alloc;
  unsigned flags;
  enum maildir_state state;
  int fd;      /* the message file in tmp/ while MD_OPEN */
  int tmp_dfd; /* dir/tmp */
  int new_dfd; /* dir/new */
  char *name;  /* tmp name, then the final name after commit */
  size_t name_cap;
  char *buf;
  size_t buf_len;
  uint64_t size;
  int err;
  const char *op;
};

/* ---- naming context ---- */


/* Bytes that stay as they are in the host part of a file name. */
static int host_byte_plain(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '/' && c != ':' && c != '\\';
}

int lsmtp_maildir_ctx_new(lsmtp_maildir_ctx **out, const lsmtp_allocator *alloc,
                          const char *hostname, unsigned flags) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  char sysname[256];
  if (!hostname) {
    if (gethostname(sysname, sizeof sysname) != 0) return LSMTP_ERR_STORAGE;
    sysname[sizeof sysname - 1] = '\0';
    hostname = sysname;
  }
  size_t len = strlen(hostname);
  if (len == 0 || len > 255) return LSMTP_ERR_INVALID;

  lsmtp_maildir_ctx *ctx = lsmtp__calloc(alloc, 1, sizeof *ctx);
  if (!ctx) return LSMTP_ERR_NOMEM;
  ctx->alloc = alloc;
  ctx->flags = flags;
  ctx->host = lsmtp__malloc(alloc, len * 4 + 1);
  if (!ctx->host) {
    lsmtp__free(alloc, ctx);
    return LSMTP_ERR_NOMEM;
  }
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)hostname[i];
    if (host_byte_plain(c)) {
      ctx->host[o++] = (char)c;
    } else {
      ctx->host[o++] = '\\';
      ctx->host[o++] = (char)('0' + ((c >> 6) & 7));
      ctx->host[o++] = (char)('0' + ((c >> 3) & 7));
      ctx->host[o++] = (char)('0' + (c & 7));
    }
  }
  ctx->host[o] = '\0';
  ctx->token = lsmtp__unique_token(ctx);
  *out = ctx;
  return LSMTP_OK;
}

void lsmtp_maildir_ctx_del(lsmtp_maildir_ctx *ctx) {
  if (!ctx) return;
  lsmtp__free(ctx->alloc, ctx->host);
  lsmtp__free(ctx->alloc, ctx);
}

/* ---- directories ---- */

/* fsync the directory that contains path (the part before its last name). */
static int fsync_parent(const char *path) {
  size_t end = strlen(path);
  while (end > 1 && path[end - 1] == '/') end--; /* trailing slashes */
  while (end > 0 && path[end - 1] != '/') end--; /* the last name */
  while (end > 1 && path[end - 1] == '/') end--; /* its separator */
  char parent[4096];
  if (end == 0) {
    parent[0] = '.';
    parent[1] = '\0';
  } else {
    if (end >= sizeof parent) {
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(parent, path, end);
    parent[end] = '\0';
  }
  int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* ---- delivery ---- */

static int fail(lsmtp_maildir *m, const char *op) {
  m->err = errno;
  m->op = op;
  return LSMTP_ERR_STORAGE;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Remove the tmp file and release the descriptor; keeps errno. */
static void discard(lsmtp_maildir *m) {
  int saved = errno;
  if (m->state == MD_OPEN) {
    close_fd(&m->fd);
    unlinkat(m->tmp_dfd, m->name, 0);
    m->state = MD_CLOSED;
  }
  errno = saved;
}

/* Free everything; keeps errno (lsmtp_maildir_open reports through it). */
static void destroy(lsmtp_maildir *m) {
  int saved = errno;
  discard(m);
  close_fd(&m->fd);
  close_fd(&m->tmp_dfd);
  close_fd(&m->new_dfd);
  lsmtp__free(m->alloc, m->name);
  lsmtp__free(m->alloc, m->buf);
  lsmtp__free(m->alloc, m);
  errno = saved;
}

/* Create (unless told not to) and open the Maildir's directories. */
static int open_dirs(lsmtp_maildir *m, const char *dir, unsigned flags) {
  int create = !(flags & LSMTP_MAILDIR_NO_CREATE);
  int sync = !(flags & LSMTP_MAILDIR_NO_FSYNC);
  if (create) {
    if (mkdir(dir, 0700) == 0) {
      if (sync && fsync_parent(dir) != 0) return fail(m, "fsync");
    } else if (errno != EEXIST) {
      return fail(m, "mkdir");
    }
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail(m, "open");
  static const char *const subdirs[] = {"tmp", "new", "cur"};
  int made = 0;
  for (size_t i = 0; create && i < 3; i++) {
    if (mkdirat(dfd, subdirs[i], 0700) == 0) {
      made = 1;
    } else if (errno != EEXIST) {
      int rc = fail(m, "mkdir");
      close(dfd);
      return rc;
    }
  }
  if (made && sync && fsync(dfd) != 0) {
    int rc = fail(m, "fsync");
    close(dfd);
    return rc;
  }
  m->tmp_dfd = openat(dfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (m->tmp_dfd < 0) {
    int rc = fail(m, "open");
    close(dfd);
    return rc;
  }
  m->new_dfd = openat(dfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (m->new_dfd < 0) {
    int rc = fail(m, "open");
    close(dfd);
    return rc;
  }
  if (!create) {
    /* cur/ is not used here, but a Maildir without it is broken. */
    struct stat st;
    int bad = fstatat(dfd, "cur", &st, 0) != 0;
    if (!bad && !S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      bad = 1;
    }
    if (bad) {
      int rc = fail(m, "stat");
      close(dfd);
      return rc;
    }
  }
  close(dfd);
  return LSMTP_OK;
}

int lsmtp_maildir_open(lsmtp_maildir **out, const lsmtp_allocator *alloc, const char *dir,
                       lsmtp_maildir_ctx *ctx, time_t now, long usec) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!dir || !dir[0] || !ctx) return LSMTP_ERR_INVALID;
  if (now == (time_t)-1) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return LSMTP_ERR_STORAGE;
    now = ts.tv_sec;
    usec = ts.tv_nsec / 1000;
  }
  if (now < 0 || usec < 0 || usec > 999999) return LSMTP_ERR_INVALID;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);

  lsmtp_maildir *m = lsmtp__calloc(alloc, 1, sizeof *m);
  if (!m) return LSMTP_ERR_NOMEM;
  m->alloc = alloc;
  m->flags = ctx->flags;
  m->state = MD_CLOSED;
  m->fd = m->tmp_dfd = m->new_dfd = -1;
  m->op = "";
  /* Room for the name, ",S=" and 20 digits of size. */
  m->name_cap = strlen(ctx->host) + 128;
  m->name = lsmtp__malloc(alloc, m->name_cap);
  m->buf = lsmtp__malloc(alloc, MAILDIR_BUF_SIZE);
  if (!m->name || !m->buf) {
    destroy(m);
    return LSMTP_ERR_NOMEM;
  }
  int rc = open_dirs(m, dir, ctx->flags);
  if (rc != LSMTP_OK) {
    errno = m->err;
    destroy(m);
    return rc;
  }
  long pid = (long)getpid(); /* read each time: correct after fork */
  for (int tries = 0; tries < MAILDIR_OPEN_TRIES; tries++) {
    ctx->counter++;
    snprintf(m->name, m->name_cap, "%lld.M%ldP%ldQ%lluR%016llx.%s", (long long)now, usec, pid,
             (unsigned long long)ctx->counter,
             (unsigned long long)lsmtp__mix64(ctx->token + ctx->counter), ctx->host);
    m->fd = openat(m->tmp_dfd, m->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0600);
    if (m->fd >= 0 || errno != EEXIST) break;
  }
  if (m->fd < 0) {
    fail(m, "open");
    errno = m->err;
    destroy(m);
    return LSMTP_ERR_STORAGE;
  }
  m->state = MD_OPEN;
  *out = m;
  return LSMTP_OK;
}

/* write() all of it, across short writes and signals. */
static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += (size_t)n;
    len -= (size_t)n;
  }
  return 0;
}

static int flush(lsmtp_maildir *m) {
  if (m->buf_len == 0) return LSMTP_OK;
  if (write_all(m->fd, m->buf, m->buf_len) != 0) {
    int rc = fail(m, "write");
    discard(m);
    return rc;
  }
  m->buf_len = 0;
  return LSMTP_OK;
}

int lsmtp_maildir_write(lsmtp_maildir *m, const void *data, size_t len) {
  if (!m || (!data && len)) return LSMTP_ERR_INVALID;
  if (m->state != MD_OPEN) return LSMTP_ERR_STATE;
  if (UINT64_MAX - m->size < len) {
    errno = EFBIG;
    int rc = fail(m, "write");
    discard(m);
    return rc;
  }
  const char *p = data;
  if (len >= MAILDIR_BUF_SIZE) {
    /* Big chunks go straight to the file after what is buffered. */
    int rc = flush(m);
    if (rc != LSMTP_OK) return rc;
    if (write_all(m->fd, p, len) != 0) {
      rc = fail(m, "write");
      discard(m);
      return rc;
    }
  } else {
    if (MAILDIR_BUF_SIZE - m->buf_len < len) {
      int rc = flush(m);
      if (rc != LSMTP_OK) return rc;
    }
    memcpy(m->buf + m->buf_len, p, len);
    m->buf_len += len;
  }
  m->size += len;
  return LSMTP_OK;
}

int lsmtp_maildir_commit(lsmtp_maildir *m) {
  if (!m) return LSMTP_ERR_INVALID;
  if (m->state != MD_OPEN) return LSMTP_ERR_STATE;
  int sync = !(m->flags & LSMTP_MAILDIR_NO_FSYNC);
  int rc = flush(m);
  if (rc != LSMTP_OK) return rc;
  if (sync && fsync(m->fd) != 0) {
    rc = fail(m, "fsync");
    discard(m);
    return rc;
  }
  /* close() can report a deferred write error (NFS): it counts. */
  int cfd = m->fd;
  m->fd = -1;
  if (close(cfd) != 0 && errno != EINTR) {
    rc = fail(m, "close");
    discard(m);
    return rc;
  }
  size_t base = strlen(m->name);
  char *final_name = lsmtp__malloc(m->alloc, m->name_cap);
  if (!final_name) {
    discard(m);
    return LSMTP_ERR_NOMEM;
  }
  memcpy(final_name, m->name, base + 1);
  if (!(m->flags & LSMTP_MAILDIR_NO_SIZE))
    snprintf(final_name + base, m->name_cap - base, ",S=%llu", (unsigned long long)m->size);
  if (renameat(m->tmp_dfd, m->name, m->new_dfd, final_name) != 0) {
    rc = fail(m, "rename");
    lsmtp__free(m->alloc, final_name);
    discard(m);
    return rc;
  }
  if (sync && fsync(m->new_dfd) != 0) {
    rc = fail(m, "fsync");
    int saved = errno;
    unlinkat(m->new_dfd, final_name, 0);
    errno = saved;
    lsmtp__free(m->alloc, final_name);
    m->state = MD_CLOSED;
    return rc;
  }
  lsmtp__free(m->alloc, m->name);
  m->name = final_name;
  m->state = MD_COMMITTED;
  return LSMTP_OK;
}

void lsmtp_maildir_abort(lsmtp_maildir *m) {
  if (m) discard(m);
}

void lsmtp_maildir_del(lsmtp_maildir *m) {
  if (m) destroy(m);
}

int lsmtp_maildir_errno(const lsmtp_maildir *m) { return m ? m->err : 0; }

const char *lsmtp_maildir_failed_op(const lsmtp_maildir *m) { return m ? m->op : ""; }

const char *lsmtp_maildir_name(const lsmtp_maildir *m) { return m ? m->name : ""; }

uint64_t lsmtp_maildir_size(const lsmtp_maildir *m) { return m ? m->size : 0; }

/* ---- folder names ---- */

int lsmtp_maildir_safe_name(const char *local, size_t len, char *out, size_t cap,
                            size_t *out_len) {
  if (!local || len == 0 || len > LSMTP_MAILDIR_NAME_MAX) return LSMTP_ERR_INVALID;
  if (local[0] == '.') return LSMTP_ERR_INVALID;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)local[i];
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '"') return LSMTP_ERR_INVALID;
    if (c == '.' && i + 1 < len && local[i + 1] == '.') return LSMTP_ERR_INVALID;
  }
  if (!out || cap < len + 1) return LSMTP_ERR_TOO_LONG;
  for (size_t i = 0; i < len; i++) out[i] = (char)lsmtp__to_lower((unsigned char)local[i]);
  out[len] = '\0';
  if (out_len) *out_len = len;
  return LSMTP_OK;
}
