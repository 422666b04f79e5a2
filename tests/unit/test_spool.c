/* The spool (lib/roles/spool.c): enqueue, scan, load, update, remove;
 * exact round trips of awkward values; crash leftovers (tmp/ files, a
 * message without envelope); corrupt envelopes (garbage, every truncation
 * of a valid one, a message of the wrong size) moved aside without a
 * crash; bounds; and a walk of an allocation failure through every
 * allocation. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <lsmtp/spool.h>

#include "support_failalloc.h"
#include "support_fs.h"
#include "internal.h"

#define T_ARRIVAL 1795905918123ull

typedef struct fixture {
  char root[64];
  char dir[128];
  int logs;          /* log lines seen */
  char last_log[512];
} fixture;

static void on_log(void *ud, const char *msg) {
  fixture *f = ud;
  f->logs++;
  snprintf(f->last_log, sizeof f->last_log, "%s", msg);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  strcpy(f->root, "/tmp/lsmtp-spool-XXXXXX");
  if (!mkdtemp(f->root)) return -1;
  snprintf(f->dir, sizeof f->dir, "%s/spool", f->root);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  fs_remove_tree(f->root);
  free(f);
  return 0;
}

static int count_in(const fixture *f, const char *sub) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", f->dir, sub);
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static void path_of(const fixture *f, char *out, size_t cap, const char *sub,
                    const char *id, const char *ext) {
  snprintf(out, cap, "%s/%s/%s.%s", f->dir, sub, id, ext);
}

static char *read_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
  p[n] = '\0';
  *len = (size_t)n;
  return p;
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, len, fp), len);
  fclose(fp);
}

/* Enqueue one message with two recipients; returns its id in id. */
static void enqueue(lsmtp_spool *sp, const char *body, size_t len, char *id, size_t cap) {
  lsmtp_spool_writer *w;
  assert_int_equal(lsmtp_spool_writer_new(&w, sp, "sender@example.org", "env%2Bid",
                                          LSMTP_RET_HDRS, T_ARRIVAL),
                   LSMTP_OK);
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, "a@example.net", NULL, 0), LSMTP_OK);
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, "\"b c\"@example.com", "rfc822;b+20c@x",
                                               LSMTP_NOTIFY_FAILURE | LSMTP_NOTIFY_DELAY),
                   LSMTP_OK);
  /* In pieces, so the buffer fills and flushes in the middle. */
  for (size_t off = 0; off < len;) {
    size_t n = len - off < 7777 ? len - off : 7777;
    assert_int_equal(lsmtp_spool_writer_write(w, body + off, n), LSMTP_OK);
    off += n;
  }
  assert_int_equal(lsmtp_spool_writer_size(w), len);
  assert_int_equal(lsmtp_spool_writer_commit(w), LSMTP_OK);
  assert_int_equal(lsmtp_spool_writer_commit(w), LSMTP_ERR_STATE);
  snprintf(id, cap, "%s", lsmtp_spool_writer_id(w));
  lsmtp_spool_writer_del(w);
}

static char *make_body(size_t len) {
  char *b = malloc(len);
  assert_non_null(b);
  for (size_t i = 0; i < len; i++) b[i] = (char)(i * 7 + i / 251);
  return b;
}

/* ---- enqueue, load, update, remove ---- */

static void test_enqueue_and_load(void **state) {
  fixture *f = *state;
  lsmtp_spool *sp;
  assert_int_equal(lsmtp_spool_new(&sp, NULL, f->dir, 0, on_log, f), LSMTP_OK);
  size_t len = 200000;
  char *body = make_body(len);
  char id[LSMTP_SPOOL_ID_MAX];
  enqueue(sp, body, len, id, sizeof id);
  assert_int_equal(count_in(f, "tmp"), 0);
  assert_int_equal(count_in(f, "queue"), 2);

  char path[512];
  size_t got;
  path_of(f, path, sizeof path, "queue", id, "msg");
  char *stored = read_file(path, &got);
  assert_non_null(stored);
  assert_int_equal(got, len);
  assert_memory_equal(stored, body, len);
  free(stored);

  lsmtp_spool_entry *e;
  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_OK);
  assert_string_equal(lsmtp_spool_entry_id(e), id);
  assert_string_equal(lsmtp_spool_entry_from(e), "sender@example.org");
  assert_string_equal(lsmtp_spool_entry_envid(e), "env%2Bid");
  assert_int_equal(lsmtp_spool_entry_ret(e), LSMTP_RET_HDRS);
  assert_int_equal(lsmtp_spool_entry_arrival(e), T_ARRIVAL);
  assert_int_equal(lsmtp_spool_entry_next_attempt(e), T_ARRIVAL);
  assert_int_equal(lsmtp_spool_entry_attempts(e), 0);
  assert_int_equal(lsmtp_spool_entry_size(e), len);
  assert_int_equal(lsmtp_spool_entry_rcpt_count(e), 2);
  assert_int_equal(lsmtp_spool_entry_pending(e), 2);
  const lsmtp_spool_rcpt *r = lsmtp_spool_entry_rcpt(e, 1);
  assert_string_equal(r->address, "\"b c\"@example.com");
  assert_string_equal(r->orcpt, "rfc822;b+20c@x");
  assert_int_equal(r->notify, LSMTP_NOTIFY_FAILURE | LSMTP_NOTIFY_DELAY);
  assert_int_equal(r->state, LSMTP_SPOOL_PENDING);
  assert_int_equal(r->code, 0);
  assert_string_equal(r->status, "");
  assert_string_equal(r->text, "");
  assert_null(lsmtp_spool_entry_rcpt(e, 2));

  int fd;
  assert_int_equal(lsmtp_spool_open_message(sp, e, &fd), LSMTP_OK);
  char first[16];
  assert_int_equal(read(fd, first, sizeof first), (ssize_t)sizeof first);
  assert_memory_equal(first, body, sizeof first);
  close(fd);

  /* One recipient delivered, one deferred: stored, then read back. */
  assert_int_equal(lsmtp_spool_entry_set_rcpt(e, 0, LSMTP_SPOOL_DELIVERED, 250, "2.0.0",
                                              "Ok: queued as X", "mx.example.net"),
                   LSMTP_OK);
  assert_int_equal(lsmtp_spool_entry_set_rcpt(e, 1, LSMTP_SPOOL_PENDING, 451, "4.3.0",
                                              "try\nlater 100% sure \xc3\xa9", "[::1]:25"),
                   LSMTP_OK);
  lsmtp_spool_entry_set_schedule(e, 3, T_ARRIVAL + 60000);
  assert_int_equal(lsmtp_spool_update(sp, e), LSMTP_OK);
  assert_int_equal(count_in(f, "tmp"), 0);
  lsmtp_spool_entry_del(e);

  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_OK);
  assert_int_equal(lsmtp_spool_entry_attempts(e), 3);
  assert_int_equal(lsmtp_spool_entry_next_attempt(e), T_ARRIVAL + 60000);
  assert_int_equal(lsmtp_spool_entry_pending(e), 1);
  r = lsmtp_spool_entry_rcpt(e, 0);
  assert_int_equal(r->state, LSMTP_SPOOL_DELIVERED);
  assert_int_equal(r->code, 250);
  assert_string_equal(r->text, "Ok: queued as X");
  assert_string_equal(r->remote, "mx.example.net");
  r = lsmtp_spool_entry_rcpt(e, 1);
  assert_int_equal(r->code, 451);
  assert_string_equal(r->status, "4.3.0");
  /* The line break became a space; everything else is kept. */
  assert_string_equal(r->text, "try later 100% sure \xc3\xa9");
  assert_string_equal(r->remote, "[::1]:25");

  /* The last recipient done: the message leaves the queue. */
  assert_int_equal(lsmtp_spool_entry_set_rcpt(e, 1, LSMTP_SPOOL_FAILED, 550, "5.1.1",
                                              "no such user", "mx"),
                   LSMTP_OK);
  assert_int_equal(lsmtp_spool_update(sp, e), LSMTP_DONE);
  assert_int_equal(count_in(f, "queue"), 0);
  assert_int_equal(lsmtp_spool_remove(sp, id), LSMTP_ERR_STORAGE);
  lsmtp_spool_entry_del(e);
  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_ERR_STORAGE);
  assert_null(e);
  free(body);
  assert_int_equal(f->logs, 0);
  lsmtp_spool_del(sp);
}

static int collect(void *ud, const char *id) {
  char *all = ud;
  strcat(all, id);
  strcat(all, " ");
  return LSMTP_OK;
}

static int stop_at_first(void *ud, const char *id) {
  (void)id;
  (*(int *)ud)++;
  return LSMTP_ERR_ABORTED;
}

static void test_scan_and_null_sender(void **state) {
  fixture *f = *state;
  lsmtp_spool *sp;
  assert_int_equal(lsmtp_spool_new(&sp, NULL, f->dir, LSMTP_SPOOL_NO_FSYNC, on_log, f),
                   LSMTP_OK);
  char ids[3][LSMTP_SPOOL_ID_MAX];
  for (int i = 0; i < 3; i++) enqueue(sp, "x\r\n", 3, ids[i], sizeof ids[i]);
  assert_string_not_equal(ids[0], ids[1]);
  assert_string_not_equal(ids[1], ids[2]);
  /* A null reverse path with no ENVID round-trips as "". */
  lsmtp_spool_writer *w;
  assert_int_equal(lsmtp_spool_writer_new(&w, sp, NULL, NULL, LSMTP_RET_NONE, 5), LSMTP_OK);
  assert_int_equal(lsmtp_spool_writer_commit(w), LSMTP_ERR_STATE); /* no recipient */
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, "x@y", NULL, 0), LSMTP_OK);
  assert_int_equal(lsmtp_spool_writer_commit(w), LSMTP_OK);
  char bounce[LSMTP_SPOOL_ID_MAX];
  snprintf(bounce, sizeof bounce, "%s", lsmtp_spool_writer_id(w));
  lsmtp_spool_writer_del(w);

  char all[1024] = "";
  assert_int_equal(lsmtp_spool_scan(sp, collect, all), LSMTP_OK);
  for (int i = 0; i < 3; i++) assert_non_null(strstr(all, ids[i]));
  assert_non_null(strstr(all, bounce));
  int calls = 0;
  assert_int_equal(lsmtp_spool_scan(sp, stop_at_first, &calls), LSMTP_ERR_ABORTED);
  assert_int_equal(calls, 1);

  lsmtp_spool_entry *e;
  assert_int_equal(lsmtp_spool_load(&e, sp, bounce), LSMTP_OK);
  assert_string_equal(lsmtp_spool_entry_from(e), "");
  assert_string_equal(lsmtp_spool_entry_envid(e), "");
  assert_int_equal(lsmtp_spool_entry_size(e), 0);
  lsmtp_spool_entry_del(e);
  assert_int_equal(lsmtp_spool_remove(sp, bounce), LSMTP_OK);
  assert_int_equal(lsmtp_spool_load(&e, sp, "../x"), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_spool_remove(sp, "a/b"), LSMTP_ERR_INVALID);
  lsmtp_spool_del(sp);
  lsmtp_spool_del(NULL);
  lsmtp_spool_writer_del(NULL);
  lsmtp_spool_entry_del(NULL);
}

/* ---- crash leftovers ---- */

static void test_recovery_at_start(void **state) {
  fixture *f = *state;
  lsmtp_spool *sp;
  assert_int_equal(lsmtp_spool_new(&sp, NULL, f->dir, 0, on_log, f), LSMTP_OK);
  char id[LSMTP_SPOOL_ID_MAX];
  enqueue(sp, "kept\r\n", 6, id, sizeof id);
  /* A writer abandoned leaves nothing behind. */
  lsmtp_spool_writer *w;
  assert_int_equal(lsmtp_spool_writer_new(&w, sp, "a@b", NULL, LSMTP_RET_NONE, 1), LSMTP_OK);
  assert_int_equal(lsmtp_spool_writer_write(w, "half", 4), LSMTP_OK);
  assert_int_equal(count_in(f, "tmp"), 1);
  lsmtp_spool_writer_del(w);
  assert_int_equal(count_in(f, "tmp"), 0);
  lsmtp_spool_del(sp);

  /* A crash: a half-written file in tmp/, a message whose envelope never
   * arrived. */
  char path[512];
  snprintf(path, sizeof path, "%s/tmp/123.4.5.msg", f->dir);
  write_file(path, "partial", 7);
  snprintf(path, sizeof path, "%s/queue/999.1.1.msg", f->dir);
  write_file(path, "orphan", 6);
  assert_int_equal(lsmtp_spool_new(&sp, NULL, f->dir, 0, on_log, f), LSMTP_OK);
  assert_int_equal(f->logs, 2);
  assert_int_equal(count_in(f, "tmp"), 0);
  assert_int_equal(count_in(f, "queue"), 2); /* the real message stays */
  lsmtp_spool_entry *e;
  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_OK);
  assert_int_equal(lsmtp_spool_entry_size(e), 6);
  lsmtp_spool_entry_del(e);
  lsmtp_spool_del(sp);
}

/* ---- corrupt envelopes ---- */

static void expect_corrupt(fixture *f, lsmtp_spool *sp, const char *id) {
  int logs = f->logs;
  lsmtp_spool_entry *e = (lsmtp_spool_entry *)1;
  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_ERR_SYNTAX);
  assert_null(e);
  assert_int_equal(f->logs, logs + 1);
  assert_non_null(strstr(f->last_log, id));
  assert_non_null(strstr(f->last_log, "corrupt/"));
  char path[512];
  path_of(f, path, sizeof path, "corrupt", id, "env");
  assert_int_equal(access(path, F_OK), 0);
  path_of(f, path, sizeof path, "queue", id, "env");
  assert_int_not_equal(access(path, F_OK), 0);
}

static void test_corrupt_envelopes(void **state) {
  fixture *f = *state;
  lsmtp_spool *sp;
  assert_int_equal(lsmtp_spool_new(&sp, NULL, f->dir, LSMTP_SPOOL_NO_FSYNC, on_log, f),
                   LSMTP_OK);
  char id[LSMTP_SPOOL_ID_MAX], path[512], msgpath[512];
  enqueue(sp, "body\r\n", 6, id, sizeof id);
  path_of(f, path, sizeof path, "queue", id, "env");
  path_of(f, msgpath, sizeof msgpath, "queue", id, "msg");
  size_t len;
  char *good = read_file(path, &len);
  assert_non_null(good);

  /* Every truncation of a valid envelope is refused, never half-read. */
  for (size_t cut = 0; cut < len; cut++) {
    write_file(path, good, cut);
    write_file(msgpath, "body\r\n", 6);
    expect_corrupt(f, sp, id);
    char moved[512];
    path_of(f, moved, sizeof moved, "corrupt", id, "msg");
    assert_int_equal(access(moved, F_OK), 0); /* the message went along */
  }
  /* Garbage, trailing bytes, bad escapes, out-of-range numbers. */
  const char *bad[] = {
      "\x01\x02garbage",
      NULL, /* good + trailing line: filled below */
      "lsmtp-spool 2\n",
  };
  char trailing[4096];
  snprintf(trailing, sizeof trailing, "%sextra\n", good);
  bad[1] = trailing;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(path, bad[i], strlen(bad[i]));
    write_file(msgpath, "body\r\n", 6);
    expect_corrupt(f, sp, id);
  }
  struct {
    const char *from, *to;
  } edits[] = {
      {"\nret 2\n", "\nret 3\n"},
      {"\nret 2\n", "\nret 02\n"},
      {"\nsize 6\n", "\nsize 7\n"},           /* message of the wrong size */
      {"\nsize 6\n", "\nsize 99999999999999999999999\n"},
      {"rcpt 0 0 0 =a@", "rcpt 3 0 0 =a@"},   /* unknown state */
      {"rcpt 0 0 0 =a@", "rcpt 0 0 0 =a%0@"}, /* bad escape */
      {"rcpt 0 0 0 =a@", "rcpt 0 0 0 =a%00@"}, /* NUL */
      {"rcpt 0 0 0 =a@", "rcpt 0 0 0 = a@"},
      {"=sender@", "=sen der@"},
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    char *at = strstr(good, edits[i].from);
    assert_non_null(at);
    char buf[4096];
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - good), good, edits[i].to,
             at + strlen(edits[i].from));
    write_file(path, buf, strlen(buf));
    write_file(msgpath, "body\r\n", 6);
    expect_corrupt(f, sp, id);
  }
  /* The message file itself missing. */
  write_file(path, good, len);
  unlink(msgpath);
  expect_corrupt(f, sp, id);
  /* And the intact file still loads (the edits were the only problem). */
  write_file(path, good, len);
  write_file(msgpath, "body\r\n", 6);
  lsmtp_spool_entry *e;
  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_OK);
  lsmtp_spool_entry_del(e);
  free(good);
  lsmtp_spool_del(sp);
}

/* ---- bounds ---- */

static void test_bounds(void **state) {
  fixture *f = *state;
  lsmtp_spool *sp;
  assert_int_equal(lsmtp_spool_new(&sp, NULL, f->dir, LSMTP_SPOOL_NO_FSYNC, NULL, NULL),
                   LSMTP_OK);
  lsmtp_spool_writer *w;
  assert_int_equal(lsmtp_spool_writer_new(&w, sp, "a\r\nb", NULL, LSMTP_RET_NONE, 1),
                   LSMTP_ERR_INVALID);
  assert_null(w);
  char big[LSMTP_SPOOL_MAX_ADDRESS + 2];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(lsmtp_spool_writer_new(&w, sp, big, NULL, LSMTP_RET_NONE, 1),
                   LSMTP_ERR_TOO_LONG);
  assert_int_equal(lsmtp_spool_writer_new(&w, sp, "a@b", NULL, (lsmtp_dsn_ret)7, 1),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_spool_writer_new(&w, sp, "a@b", NULL, LSMTP_RET_NONE, 1), LSMTP_OK);
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, big, NULL, 0), LSMTP_ERR_TOO_LONG);
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, "", NULL, 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, "x\n@y", NULL, 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, "x@y", NULL, 16), LSMTP_ERR_INVALID);
  char addr[32];
  for (int i = 0; i < LSMTP_SPOOL_MAX_RCPTS; i++) {
    snprintf(addr, sizeof addr, "r%d@example.net", i);
    assert_int_equal(lsmtp_spool_writer_add_rcpt(w, addr, NULL, 0), LSMTP_OK);
  }
  assert_int_equal(lsmtp_spool_writer_add_rcpt(w, "one@too.many", NULL, 0), LSMTP_ERR_LIMIT);
  assert_int_equal(lsmtp_spool_writer_commit(w), LSMTP_OK);
  char id[LSMTP_SPOOL_ID_MAX];
  snprintf(id, sizeof id, "%s", lsmtp_spool_writer_id(w));
  lsmtp_spool_writer_del(w);
  lsmtp_spool_entry *e;
  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_OK);
  assert_int_equal(lsmtp_spool_entry_rcpt_count(e), LSMTP_SPOOL_MAX_RCPTS);
  assert_string_equal(lsmtp_spool_entry_rcpt(e, 999)->address, "r999@example.net");
  char text[LSMTP_SPOOL_MAX_TEXT + 2];
  memset(text, 't', sizeof text - 1);
  text[sizeof text - 1] = '\0';
  assert_int_equal(lsmtp_spool_entry_set_rcpt(e, 0, LSMTP_SPOOL_FAILED, 550, "5.0.0", text, NULL),
                   LSMTP_ERR_TOO_LONG);
  assert_int_equal(lsmtp_spool_entry_set_rcpt(e, 1000, LSMTP_SPOOL_FAILED, 550, NULL, NULL, NULL),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_spool_entry_rcpt(e, 0)->state, LSMTP_SPOOL_PENDING);
  lsmtp_spool_entry_del(e);
  /* A file bigger than the bound is corrupt without being read. */
  char path[512];
  path_of(f, path, sizeof path, "queue", id, "env");
  assert_int_equal(truncate(path, (off_t)LSMTP_SPOOL_MAX_ENVELOPE + 1), 0);
  assert_int_equal(lsmtp_spool_load(&e, sp, id), LSMTP_ERR_SYNTAX);
  assert_int_equal(count_in(f, "corrupt"), 2);
  lsmtp_spool_del(sp);
  assert_int_equal(lsmtp_spool_new(&sp, NULL, "", 0, NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_spool_new(&sp, NULL, "/proc/no/such/dir", 0, NULL, NULL),
                   LSMTP_ERR_STORAGE);
  assert_null(sp);
}

/* ---- allocation failures ---- */

static int scan_load(void *ud, const char *id) {
  (void)ud;
  (void)id;
  return LSMTP_OK;
}

static void test_allocation_failures(void **state) {
  fixture *f = *state;
  failalloc fa;
  const lsmtp_allocator *a = &fa.alloc;
  int succeeded = 0, failures = 0;
  for (int n = 0; n < 200 && !succeeded; n++) {
    failalloc_init_sticky(&fa, n + 1); /* allocation n+1 and all after it fail */
    lsmtp_spool *sp = NULL;
    lsmtp_spool_writer *w = NULL;
    lsmtp_spool_entry *e = NULL;
    char id[LSMTP_SPOOL_ID_MAX] = "";
    int rc = lsmtp_spool_new(&sp, a, f->dir, LSMTP_SPOOL_NO_FSYNC, NULL, NULL);
    if (rc == LSMTP_OK) rc = lsmtp_spool_writer_new(&w, sp, "s@x", "e", LSMTP_RET_FULL, 9);
    for (int i = 0; i < 6 && rc == LSMTP_OK; i++)
      rc = lsmtp_spool_writer_add_rcpt(w, i % 2 ? "r1@y" : "r2@y", "rfc822;o", 0);
    if (rc == LSMTP_OK) rc = lsmtp_spool_writer_write(w, "msg\r\n", 5);
    if (rc == LSMTP_OK) rc = lsmtp_spool_writer_commit(w);
    if (rc == LSMTP_OK) snprintf(id, sizeof id, "%s", lsmtp_spool_writer_id(w));
    lsmtp_spool_writer_del(w);
    if (rc == LSMTP_OK) rc = lsmtp_spool_scan(sp, scan_load, NULL);
    if (rc == LSMTP_OK) rc = lsmtp_spool_load(&e, sp, id);
    if (rc == LSMTP_OK)
      rc = lsmtp_spool_entry_set_rcpt(e, 0, LSMTP_SPOOL_FAILED, 550, "5.1.1", "no", "mx");
    if (rc == LSMTP_OK) rc = lsmtp_spool_update(sp, e);
    for (size_t i = 1; e && rc == LSMTP_OK && i < 6; i++)
      rc = lsmtp_spool_entry_set_rcpt(e, i, LSMTP_SPOOL_DELIVERED, 250, NULL, NULL, NULL);
    if (rc == LSMTP_OK) {
      assert_int_equal(lsmtp_spool_update(sp, e), LSMTP_DONE);
      succeeded = 1;
    } else {
      assert_int_equal(rc, LSMTP_ERR_NOMEM);
      failures++;
      if (id[0]) assert_int_equal(lsmtp_spool_remove(sp, id), LSMTP_OK);
    }
    lsmtp_spool_entry_del(e);
    lsmtp_spool_del(sp);
    assert_int_equal(fa.live, 0);
    /* Nothing left behind, whatever failed. */
    assert_true(count_in(f, "tmp") <= 0);
    assert_true(count_in(f, "queue") <= 0);
  }
  assert_true(succeeded);
  assert_true(failures > 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_enqueue_and_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scan_and_null_sender, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recovery_at_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_envelopes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
