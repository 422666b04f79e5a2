/* Maildir delivery in a temporary directory: directory creation, unique
 * names, exact file contents, abort and failure paths (each leaves nothing
 * in tmp/), allocation failures, and the folder-name check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lsmtp/deliver.h>

#include "internal.h"
#include "support_failalloc.h"
#include "support_fs.h"

#define T_SAT 1795905918

/* ---- helpers ---- */

typedef struct fixture {
  char root[64];
  char box[128];
  lsmtp_maildir_ctx *ctx;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  strcpy(f->root, "/tmp/lsmtp-maildir-XXXXXX");
  if (!mkdtemp(f->root)) return -1;
  snprintf(f->box, sizeof f->box, "%s/box", f->root);
  if (lsmtp_maildir_ctx_new(&f->ctx, NULL, "mx.example", 0) != LSMTP_OK) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  lsmtp_maildir_ctx_del(f->ctx);
  fs_remove_tree(f->root);
  free(f);
  return 0;
}

/* Number of entries in dir (without . and ..); the last one's name goes
 * into name when given. -1 when dir cannot be opened. */
static int count_entries(const char *dir, char *name, size_t cap) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    n++;
    if (name) snprintf(name, cap, "%s", e->d_name);
  }
  closedir(d);
  return n;
}

static int count_in(const fixture *f, const char *sub) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", f->box, sub);
  return count_entries(path, NULL, 0);
}

/* Read a whole file into a malloc'd buffer. */
static char *read_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (p && fread(p, 1, (size_t)n, fp) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(fp);
  if (p) *len = (size_t)n;
  return p;
}

static void check_mode(const char *path, mode_t mode) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, mode);
}

/* ---- delivery ---- */

static void test_deliver_creates_dirs_and_stores_exact_bytes(void **state) {
  fixture *f = *state;
  lsmtp_maildir *m = NULL;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, 123), LSMTP_OK);
  assert_non_null(m);
  const char *subs[] = {"", "/tmp", "/new", "/cur"};
  for (size_t i = 0; i < 4; i++) {
    char p[256];
    snprintf(p, sizeof p, "%s%s", f->box, subs[i]);
    check_mode(p, 0700);
  }
  /* <sec>.M<usec>P<pid>Q<counter>R<16 hex>.<host> */
  char prefix[64];
  snprintf(prefix, sizeof prefix, "1795905918.M123P%ldQ1R", (long)getpid());
  const char *name = lsmtp_maildir_name(m);
  assert_int_equal(strncmp(name, prefix, strlen(prefix)), 0);
  const char *r = name + strlen(prefix);
  for (int i = 0; i < 16; i++) assert_non_null(strchr("0123456789abcdef", r[i]));
  assert_string_equal(r + 16, ".mx.example");
  char tmp_name[256];
  snprintf(tmp_name, sizeof tmp_name, "%s", name);
  assert_int_equal(count_in(f, "tmp"), 1);

  /* Small chunks, a chunk bigger than the buffer, then small again. */
  size_t big_len = 200000;
  char *big = malloc(big_len);
  assert_non_null(big);
  for (size_t i = 0; i < big_len; i++) big[i] = (char)(i * 7 + 3);
  assert_int_equal(lsmtp_maildir_write(m, "Return-Path: <a@b>\r\n", 20), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_write(m, "", 0), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_write(m, big, big_len), LSMTP_OK);
  for (int i = 0; i < 1000; i++) assert_int_equal(lsmtp_maildir_write(m, "x\r\n", 3), LSMTP_OK);
  uint64_t total = 20 + big_len + 3000;
  assert_int_equal(lsmtp_maildir_size(m), total);
  assert_int_equal(count_in(f, "new"), 0); /* invisible until commit */

  assert_int_equal(lsmtp_maildir_commit(m), LSMTP_OK);
  char expected_name[300];
  snprintf(expected_name, sizeof expected_name, "%s,S=%llu", tmp_name, (unsigned long long)total);
  assert_string_equal(lsmtp_maildir_name(m), expected_name);
  assert_int_equal(lsmtp_maildir_errno(m), 0);
  assert_string_equal(lsmtp_maildir_failed_op(m), "");
  assert_int_equal(count_in(f, "tmp"), 0);
  assert_int_equal(count_in(f, "new"), 1);

  char path[512];
  snprintf(path, sizeof path, "%s/new/%s", f->box, expected_name);
  check_mode(path, 0600);
  size_t len = 0;
  char *data = read_file(path, &len);
  assert_non_null(data);
  assert_int_equal(len, total);
  assert_memory_equal(data, "Return-Path: <a@b>\r\n", 20);
  assert_memory_equal(data + 20, big, big_len);
  for (size_t i = 0; i < 1000; i++) assert_memory_equal(data + 20 + big_len + i * 3, "x\r\n", 3);

  /* Finished: further calls are refused, del keeps the message. */
  assert_int_equal(lsmtp_maildir_write(m, "y", 1), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_maildir_commit(m), LSMTP_ERR_STATE);
  lsmtp_maildir_abort(m); /* no effect after commit */
  lsmtp_maildir_del(m);
  assert_int_equal(count_in(f, "new"), 1);
  free(data);
  free(big);
}

static void test_counter_advances_and_names_differ(void **state) {
  fixture *f = *state;
  char first[256] = "";
  for (unsigned q = 1; q <= 3; q++) {
    lsmtp_maildir *m = NULL;
    assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, 0), LSMTP_OK);
    char needle[32];
    snprintf(needle, sizeof needle, "P%ldQ%uR", (long)getpid(), q);
    assert_non_null(strstr(lsmtp_maildir_name(m), needle));
    assert_int_equal(strncmp(lsmtp_maildir_name(m), "1795905918.M0P", 14), 0);
    if (q == 1) snprintf(first, sizeof first, "%s", lsmtp_maildir_name(m));
    else assert_string_not_equal(first, lsmtp_maildir_name(m));
    assert_int_equal(lsmtp_maildir_write(m, "hi\r\n", 4), LSMTP_OK);
    assert_int_equal(lsmtp_maildir_commit(m), LSMTP_OK);
    lsmtp_maildir_del(m);
  }
  assert_int_equal(count_in(f, "new"), 3);

  /* Two contexts with the same host, time and counter still differ. */
  lsmtp_maildir_ctx *other = NULL;
  assert_int_equal(lsmtp_maildir_ctx_new(&other, NULL, "mx.example", 0), LSMTP_OK);
  lsmtp_maildir *a = NULL, *b = NULL;
  lsmtp_maildir_ctx *fresh = NULL;
  assert_int_equal(lsmtp_maildir_ctx_new(&fresh, NULL, "mx.example", 0), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_open(&a, NULL, f->box, fresh, T_SAT, 0), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_open(&b, NULL, f->box, other, T_SAT, 0), LSMTP_OK);
  assert_string_not_equal(lsmtp_maildir_name(a), lsmtp_maildir_name(b));
  lsmtp_maildir_del(a);
  lsmtp_maildir_del(b);
  lsmtp_maildir_ctx_del(other);
  lsmtp_maildir_ctx_del(fresh);
  assert_int_equal(count_in(f, "tmp"), 0);
}

static void test_hostname_encoding_and_flags(void **state) {
  fixture *f = *state;
  lsmtp_maildir_ctx *ctx = NULL;
  assert_int_equal(
      lsmtp_maildir_ctx_new(&ctx, NULL, "a/b:c\\d e",
                            LSMTP_MAILDIR_NO_SIZE | LSMTP_MAILDIR_NO_FSYNC),
      LSMTP_OK);
  lsmtp_maildir *m = NULL;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, ctx, T_SAT, 999999), LSMTP_OK);
  const char *name = lsmtp_maildir_name(m);
  const char *host = ".a\\057b\\072c\\134d\\040e";
  assert_string_equal(name + strlen(name) - strlen(host), host);
  assert_int_equal(strncmp(name, "1795905918.M999999P", 19), 0);
  char tmp_name[256];
  snprintf(tmp_name, sizeof tmp_name, "%s", name);
  assert_int_equal(lsmtp_maildir_write(m, "abc", 3), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_commit(m), LSMTP_OK);
  assert_string_equal(lsmtp_maildir_name(m), tmp_name); /* NO_SIZE: no ",S=" */
  lsmtp_maildir_del(m);
  lsmtp_maildir_ctx_del(ctx);

  assert_int_equal(lsmtp_maildir_ctx_new(&ctx, NULL, "", 0), LSMTP_ERR_INVALID);
  assert_null(ctx);
  char longname[300];
  memset(longname, 'a', 256);
  longname[256] = '\0';
  assert_int_equal(lsmtp_maildir_ctx_new(&ctx, NULL, longname, 0), LSMTP_ERR_INVALID);
  longname[255] = '\0';
  assert_int_equal(lsmtp_maildir_ctx_new(&ctx, NULL, longname, 0), LSMTP_OK);
  lsmtp_maildir_ctx_del(ctx);
  /* NULL: the system's host name. */
  assert_int_equal(lsmtp_maildir_ctx_new(&ctx, NULL, NULL, 0), LSMTP_OK);
  lsmtp_maildir_ctx_del(ctx);
  lsmtp_maildir_ctx_del(NULL);
}

static void test_clock_when_time_not_given(void **state) {
  fixture *f = *state;
  lsmtp_maildir *m = NULL;
  time_t before = time(NULL);
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, (time_t)-1, 0), LSMTP_OK);
  long long sec = strtoll(lsmtp_maildir_name(m), NULL, 10);
  assert_true(sec >= (long long)before && sec <= (long long)time(NULL));
  lsmtp_maildir_del(m);
}

static void test_abort_and_del_remove_tmp_file(void **state) {
  fixture *f = *state;
  lsmtp_maildir *m = NULL;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, 1), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_write(m, "partial", 7), LSMTP_OK);
  assert_int_equal(count_in(f, "tmp"), 1);
  lsmtp_maildir_abort(m);
  assert_int_equal(count_in(f, "tmp"), 0);
  assert_int_equal(lsmtp_maildir_write(m, "more", 4), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_maildir_commit(m), LSMTP_ERR_STATE);
  lsmtp_maildir_abort(m); /* twice is fine */
  lsmtp_maildir_del(m);

  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, 2), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_write(m, "partial", 7), LSMTP_OK);
  lsmtp_maildir_del(m); /* never committed: aborted */
  assert_int_equal(count_in(f, "tmp"), 0);
  assert_int_equal(count_in(f, "new"), 0);
  lsmtp_maildir_del(NULL);
  lsmtp_maildir_abort(NULL);
}

static void test_open_errors(void **state) {
  fixture *f = *state;
  lsmtp_maildir *m = (lsmtp_maildir *)f; /* must be reset to NULL */
  assert_int_equal(lsmtp_maildir_open(&m, NULL, NULL, f->ctx, T_SAT, 0), LSMTP_ERR_INVALID);
  assert_null(m);
  assert_int_equal(lsmtp_maildir_open(&m, NULL, "", f->ctx, T_SAT, 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, NULL, T_SAT, 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, 1000000), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, -1), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_maildir_open(NULL, NULL, f->box, f->ctx, T_SAT, 0), LSMTP_ERR_INVALID);

  /* The parent must exist: only the last component is created. */
  char deep[256];
  snprintf(deep, sizeof deep, "%s/missing/box", f->root);
  errno = 0;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, deep, f->ctx, T_SAT, 0), LSMTP_ERR_STORAGE);
  assert_int_equal(errno, ENOENT);
  assert_null(m);

  /* The path is a regular file. */
  char file[256];
  snprintf(file, sizeof file, "%s/plainfile", f->root);
  int fd = open(file, O_CREAT | O_WRONLY, 0600);
  assert_true(fd >= 0);
  close(fd);
  errno = 0;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, file, f->ctx, T_SAT, 0), LSMTP_ERR_STORAGE);
  assert_int_equal(errno, ENOTDIR);

  /* NO_CREATE: a missing Maildir (or a missing cur/) is an error. */
  lsmtp_maildir_ctx *ctx = NULL;
  assert_int_equal(lsmtp_maildir_ctx_new(&ctx, NULL, "h", LSMTP_MAILDIR_NO_CREATE), LSMTP_OK);
  errno = 0;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, ctx, T_SAT, 0), LSMTP_ERR_STORAGE);
  assert_int_equal(errno, ENOENT);
  assert_int_equal(count_entries(f->box, NULL, 0), -1); /* nothing created */
  char sub[256];
  assert_int_equal(mkdir(f->box, 0700), 0);
  snprintf(sub, sizeof sub, "%s/tmp", f->box);
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(sub, sizeof sub, "%s/new", f->box);
  assert_int_equal(mkdir(sub, 0700), 0);
  errno = 0;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, ctx, T_SAT, 0), LSMTP_ERR_STORAGE);
  assert_int_equal(errno, ENOENT);
  snprintf(sub, sizeof sub, "%s/cur", f->box);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, ctx, T_SAT, 0), LSMTP_OK);
  lsmtp_maildir_del(m);
  lsmtp_maildir_ctx_del(ctx);
}

static void test_write_failure_aborts(void **state) {
  fixture *f = *state;
  /* A file size limit makes write() fail with EFBIG (SIGXFSZ ignored). */
  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  lsmtp_maildir *m = NULL;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, 0), LSMTP_OK);
  lim = old;
  lim.rlim_cur = 1000;
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  static char chunk[100000];
  memset(chunk, 'a', sizeof chunk);
  int rc = lsmtp_maildir_write(m, chunk, sizeof chunk);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, old_handler);
  assert_int_equal(rc, LSMTP_ERR_STORAGE);
  assert_int_equal(lsmtp_maildir_errno(m), EFBIG);
  assert_string_equal(lsmtp_maildir_failed_op(m), "write");
  assert_int_equal(count_in(f, "tmp"), 0); /* aborted at once */
  assert_int_equal(lsmtp_maildir_write(m, "a", 1), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_maildir_commit(m), LSMTP_ERR_STATE);
  lsmtp_maildir_del(m);
  assert_int_equal(count_in(f, "new"), 0);
}

static void test_rename_failure_aborts(void **state) {
  fixture *f = *state;
  lsmtp_maildir *m = NULL;
  assert_int_equal(lsmtp_maildir_open(&m, NULL, f->box, f->ctx, T_SAT, 0), LSMTP_OK);
  assert_int_equal(lsmtp_maildir_write(m, "body\r\n", 6), LSMTP_OK);
  char sub[256];
  snprintf(sub, sizeof sub, "%s/new", f->box);
  assert_int_equal(rmdir(sub), 0); /* new/ vanishes under us */
  assert_int_equal(lsmtp_maildir_commit(m), LSMTP_ERR_STORAGE);
  assert_int_equal(lsmtp_maildir_errno(m), ENOENT);
  assert_string_equal(lsmtp_maildir_failed_op(m), "rename");
  assert_int_equal(count_in(f, "tmp"), 0);
  lsmtp_maildir_del(m);
}

/* ---- allocation failures ---- */

static void test_allocation_failures(void **state) {
  fixture *f = *state;
  int succeeded = 0;
  /* Allocation n and every one after it fail. */
  for (long n = 1; n <= 20 && !succeeded; n++) {
    failalloc fa;
    failalloc_init_sticky(&fa, n);
    const lsmtp_allocator *a = &fa.alloc;
    lsmtp_maildir_ctx *ctx = NULL;
    lsmtp_maildir *m = NULL;
    int rc = lsmtp_maildir_ctx_new(&ctx, a, "h", 0);
    if (rc == LSMTP_OK) rc = lsmtp_maildir_open(&m, a, f->box, ctx, T_SAT, 0);
    if (rc == LSMTP_OK) rc = lsmtp_maildir_write(m, "x", 1);
    if (rc == LSMTP_OK) rc = lsmtp_maildir_commit(m);
    if (rc == LSMTP_OK) succeeded = 1;
    else assert_int_equal(rc, LSMTP_ERR_NOMEM);
    lsmtp_maildir_del(m);
    lsmtp_maildir_ctx_del(ctx);
    assert_int_equal(fa.live, 0);
    /* -1: the Maildir was not even created yet. */
    assert_true(count_in(f, "tmp") <= 0);
    int in_new = count_in(f, "new");
    assert_int_equal(in_new < 0 ? 0 : in_new, succeeded);
  }
  assert_true(succeeded);
}

/* ---- folder names ---- */

static void check_safe(const char *local, size_t len, const char *expected) {
  char out[LSMTP_MAILDIR_NAME_MAX + 1];
  size_t out_len = 0;
  assert_int_equal(lsmtp_maildir_safe_name(local, len, out, sizeof out, &out_len), LSMTP_OK);
  assert_string_equal(out, expected);
  assert_int_equal(out_len, strlen(expected));
}

static void check_unsafe(const char *local, size_t len) {
  char out[LSMTP_MAILDIR_NAME_MAX + 1] = "unchanged";
  assert_int_equal(lsmtp_maildir_safe_name(local, len, out, sizeof out, NULL), LSMTP_ERR_INVALID);
  assert_string_equal(out, "unchanged");
}

static void test_safe_name(void **state) {
  (void)state;
  check_safe("alice", 5, "alice");
  check_safe("Alice.Smith+Tag", 15, "alice.smith+tag");
  check_safe("A-B_C=D~E#F'G", 13, "a-b_c=d~e#f'g");
  check_safe("trailing.", 9, "trailing.");
  check_safe("j\xC3\x96rg", 5, "j\xC3\x96rg"); /* non-ASCII kept as is */
  check_safe("postmaster", 10, "postmaster");
  check_safe("bob@example.org", 3, "bob"); /* only len bytes are read */
  char max[LSMTP_MAILDIR_NAME_MAX + 2];
  memset(max, 'X', sizeof max);
  max[LSMTP_MAILDIR_NAME_MAX] = '\0';
  char lower[LSMTP_MAILDIR_NAME_MAX + 1];
  memset(lower, 'x', LSMTP_MAILDIR_NAME_MAX);
  lower[LSMTP_MAILDIR_NAME_MAX] = '\0';
  check_safe(max, LSMTP_MAILDIR_NAME_MAX, lower);

  check_unsafe(max, LSMTP_MAILDIR_NAME_MAX + 1);
  check_unsafe("", 0);
  check_unsafe(NULL, 3);
  check_unsafe(".", 1);
  check_unsafe("..", 2);
  check_unsafe(".hidden", 7);
  check_unsafe("a..b", 4);
  check_unsafe("../x", 4);
  check_unsafe("a/b", 3);
  check_unsafe("/etc", 4);
  check_unsafe("a\\b", 3);
  check_unsafe("\"../../etc\"", 11);
  check_unsafe("\"quoted\"", 8);
  check_unsafe("a\0b", 3);
  check_unsafe("a\rb", 3);
  check_unsafe("a\nb", 3);
  check_unsafe("a\tb", 3);
  check_unsafe("a\x7f", 2);
  for (int c = 1; c < 0x20; c++) {
    char s[3] = {'a', (char)c, '\0'};
    check_unsafe(s, 2);
  }

  /* Buffer too small (name plus NUL must fit). */
  char small[5];
  assert_int_equal(lsmtp_maildir_safe_name("alice", 5, small, sizeof small, NULL),
                   LSMTP_ERR_TOO_LONG);
  char fits[6];
  assert_int_equal(lsmtp_maildir_safe_name("ALICE", 5, fits, sizeof fits, NULL), LSMTP_OK);
  assert_string_equal(fits, "alice");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_deliver_creates_dirs_and_stores_exact_bytes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_counter_advances_and_names_differ, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostname_encoding_and_flags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_clock_when_time_not_given, setup, teardown),
      cmocka_unit_test_setup_teardown(test_abort_and_del_remove_tmp_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_failure_aborts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rename_failure_aborts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
      cmocka_unit_test(test_safe_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
