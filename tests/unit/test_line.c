/* The CRLF line reader (lib/core/line.c): framing, bounds, zero-copy and
 * allocation failure. Every case is fed whole, byte by byte and split in two
 * at every position, and must give the same lines each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support_failalloc.h"

#define MAX_EVENTS 16
#define MAX_LINE_BYTES 256

/* One outcome of lsmtp__line_feed: a line (with its bytes) or an error, and
 * the input offset just past it. */
typedef struct event {
  int status;
  size_t end;
  size_t len;
  char bytes[MAX_LINE_BYTES];
} event;

typedef struct outcome {
  event ev[MAX_EVENTS];
  size_t n;
  int pending; /* lsmtp__line_pending() after the last byte */
} outcome;

/* Feed in[0..len) in chunks ending at each cuts[i] (then the rest). Checks
 * the zero-copy promise on the way: a line that starts in the current chunk
 * is returned in place, one that started earlier comes from the buffer. */
static void drive(const char *in, size_t len, size_t max, const size_t *cuts,
                  size_t ncuts, outcome *out) {
  lsmtp__line_reader r;
  lsmtp__line_init(&r, NULL, max);
  memset(out, 0, sizeof *out);
  size_t start = 0;
  for (size_t c = 0; c <= ncuts; c++) {
    size_t stop = c < ncuts ? cuts[c] : len;
    /* A copy per chunk, so pointers into "the input" are well defined and
     * over-reads show up under ASan. */
    char *chunk = malloc(stop - start + 1);
    assert_non_null(chunk);
    memcpy(chunk, in + start, stop - start);
    size_t off = 0;
    for (;;) {
      int was_pending = lsmtp__line_pending(&r);
      size_t used = 0, line_len = 0;
      const char *line = NULL;
      int rc = lsmtp__line_feed(&r, chunk + off, stop - start - off, &used,
                                &line, &line_len);
      assert_true(used <= stop - start - off);
      if (rc == LSMTP_INCOMPLETE) {
        assert_int_equal(used, stop - start - off);
        assert_null(line);
        break;
      }
      assert_true(rc == LSMTP_OK || rc == LSMTP_ERR_TOO_LONG);
      assert_true(used > 0);
      off += used;
      assert_true(out->n < MAX_EVENTS);
      event *e = &out->ev[out->n++];
      e->status = rc;
      e->end = start + off;
      if (rc == LSMTP_OK) {
        assert_non_null(line);
        assert_true(line_len >= 2 && line_len <= max);
        assert_true(line_len <= MAX_LINE_BYTES);
        if (was_pending)
          assert_ptr_equal(line, r.buf.data);
        else
          assert_ptr_equal(line, chunk + off - used);
        memcpy(e->bytes, line, line_len);
        e->len = line_len;
      } else {
        assert_null(line);
      }
    }
    free(chunk);
    start = stop;
  }
  out->pending = lsmtp__line_pending(&r);
  lsmtp__line_free(&r);
}

typedef struct expect_line {
  int status;
  size_t end;
  const char *bytes; /* for LSMTP_OK */
} expect_line;

static void check(const outcome *got, const expect_line *want, size_t nwant,
                  int pending) {
  assert_int_equal(got->n, nwant);
  for (size_t i = 0; i < nwant; i++) {
    assert_int_equal(got->ev[i].status, want[i].status);
    assert_int_equal(got->ev[i].end, want[i].end);
    if (want[i].status == LSMTP_OK) {
      assert_int_equal(got->ev[i].len, strlen(want[i].bytes));
      assert_memory_equal(got->ev[i].bytes, want[i].bytes, got->ev[i].len);
    }
  }
  assert_int_equal(got->pending != 0, pending != 0);
}

/* Whole, byte by byte, and every two-way split. */
static void run_case(const char *in, size_t max, const expect_line *want,
                     size_t nwant, int pending) {
  size_t len = strlen(in);
  outcome got;
  drive(in, len, max, NULL, 0, &got);
  check(&got, want, nwant, pending);

  size_t *cuts = malloc((len + 1) * sizeof *cuts);
  assert_non_null(cuts);
  for (size_t i = 0; i < len; i++) cuts[i] = i + 1;
  drive(in, len, max, cuts, len, &got);
  check(&got, want, nwant, pending);
  free(cuts);

  for (size_t k = 0; k <= len; k++) {
    drive(in, len, max, &k, 1, &got);
    check(&got, want, nwant, pending);
  }
}

#define RUN(in, max, pending, ...)                                           \
  do {                                                                       \
    const expect_line want_[] = {__VA_ARGS__};                               \
    run_case(in, max, want_, sizeof want_ / sizeof want_[0], pending);       \
  } while (0)
#define RUN_NONE(in, max, pending) run_case(in, max, NULL, 0, pending)

static void test_simple_lines(void **state) {
  (void)state;
  RUN("HELO a\r\nNOOP\r\n", 64, 0, {LSMTP_OK, 8, "HELO a\r\n"},
      {LSMTP_OK, 14, "NOOP\r\n"});
  RUN("\r\n\r\n", 64, 0, {LSMTP_OK, 2, "\r\n"}, {LSMTP_OK, 4, "\r\n"});
  /* A partial line is kept and reported as pending. */
  RUN("QUIT\r\nRSET", 64, 1, {LSMTP_OK, 6, "QUIT\r\n"});
  RUN_NONE("RSET\r", 64, 1);
}

static void test_bare_cr_lf_stay_inside(void **state) {
  (void)state;
  /* Neither a bare LF nor a bare CR ends a line (SMTP smuggling). */
  RUN("a\nb\r\n", 64, 0, {LSMTP_OK, 5, "a\nb\r\n"});
  RUN("a\rb\r\n", 64, 0, {LSMTP_OK, 5, "a\rb\r\n"});
  RUN("\n.\n\r\n", 64, 0, {LSMTP_OK, 5, "\n.\n\r\n"});
  RUN("a\r\r\n", 64, 0, {LSMTP_OK, 4, "a\r\r\n"});
  RUN("a\n\r\n", 64, 0, {LSMTP_OK, 4, "a\n\r\n"});
  RUN_NONE("x\n\n\n", 64, 1);
}

static void test_bounds(void **state) {
  (void)state;
  /* Exactly max bytes including the CRLF is allowed ... */
  RUN("12345678\r\n", 10, 0, {LSMTP_OK, 10, "12345678\r\n"});
  /* ... one more is not, wherever the CR falls. */
  RUN("123456789\r\n", 10, 0, {LSMTP_ERR_TOO_LONG, 11, NULL});
  RUN("1234567890\r\n", 10, 0, {LSMTP_ERR_TOO_LONG, 12, NULL});
  /* The reader is usable again after the overlong line's CRLF; bare CR/LF
   * inside the skipped part do not end it. */
  RUN("0123456789abcdef\r\nok\r\n", 10, 0, {LSMTP_ERR_TOO_LONG, 18, NULL},
      {LSMTP_OK, 22, "ok\r\n"});
  RUN("0123456789\n\r\r\nab\r\n", 10, 0, {LSMTP_ERR_TOO_LONG, 14, NULL},
      {LSMTP_OK, 18, "ab\r\n"});
  RUN("ok\r\n0123456789abc\r\r\r\nok\r\n", 10, 0, {LSMTP_OK, 4, "ok\r\n"},
      {LSMTP_ERR_TOO_LONG, 21, NULL}, {LSMTP_OK, 25, "ok\r\n"});
  /* Still inside the overlong line: pending, nothing reported yet. */
  RUN_NONE("0123456789abc\r", 10, 1);
  /* Tiny bounds: every line is overlong, but CRLFs are still found. */
  RUN("\r\na\r\n", 2, 0, {LSMTP_OK, 2, "\r\n"}, {LSMTP_ERR_TOO_LONG, 5, NULL});
  RUN("\r\nab\r\n", 0, 0, {LSMTP_ERR_TOO_LONG, 2, NULL},
      {LSMTP_ERR_TOO_LONG, 6, NULL});
}

static void test_long_lines_grow_the_buffer(void **state) {
  (void)state;
  char in[200 + 2 + 4 + 1];
  memset(in, 'x', 200);
  memcpy(in + 200, "\r\nab\r\n", 7);
  char first[203];
  memcpy(first, in, 202);
  first[202] = '\0';
  RUN(in, 202, 0, {LSMTP_OK, 202, first}, {LSMTP_OK, 206, "ab\r\n"});
  RUN(in, 201, 0, {LSMTP_ERR_TOO_LONG, 202, NULL}, {LSMTP_OK, 206, "ab\r\n"});
}

static void test_reset_set_max_and_empty_feed(void **state) {
  (void)state;
  lsmtp__line_reader r;
  size_t used, ll;
  const char *line;
  lsmtp__line_init(&r, NULL, 64);
  assert_false(lsmtp__line_pending(&r));
  assert_int_equal(lsmtp__line_feed(&r, NULL, 0, &used, &line, &ll),
                   LSMTP_INCOMPLETE);
  assert_int_equal(used, 0);

  /* A reset forgets a partial line (STARTTLS discards plaintext). */
  assert_int_equal(lsmtp__line_feed(&r, "STARTTLS\r\nMAIL", 14, &used, &line, &ll),
                   LSMTP_OK);
  assert_int_equal(used, 10);
  assert_int_equal(lsmtp__line_feed(&r, "MAIL", 4, &used, &line, &ll),
                   LSMTP_INCOMPLETE);
  assert_true(lsmtp__line_pending(&r));
  lsmtp__line_reset(&r);
  assert_false(lsmtp__line_pending(&r));
  assert_int_equal(lsmtp__line_feed(&r, "EHLO\r\n", 6, &used, &line, &ll), LSMTP_OK);
  assert_int_equal(ll, 6);
  assert_memory_equal(line, "EHLO\r\n", 6);

  /* A reset also leaves an overlong line. */
  lsmtp__line_set_max(&r, 4);
  assert_int_equal(lsmtp__line_feed(&r, "abcdef", 6, &used, &line, &ll),
                   LSMTP_INCOMPLETE);
  assert_true(lsmtp__line_pending(&r));
  lsmtp__line_reset(&r);
  assert_int_equal(lsmtp__line_feed(&r, "ab\r\n", 4, &used, &line, &ll), LSMTP_OK);
  assert_int_equal(lsmtp__line_feed(&r, "abc\r\n", 5, &used, &line, &ll),
                   LSMTP_ERR_TOO_LONG);
  assert_int_equal(used, 5);

  /* A larger bound for, e.g., an AUTH continuation line. */
  lsmtp__line_set_max(&r, 12);
  assert_int_equal(lsmtp__line_feed(&r, "abcdefgh", 8, &used, &line, &ll),
                   LSMTP_INCOMPLETE);
  assert_int_equal(lsmtp__line_feed(&r, "ij\r\n", 4, &used, &line, &ll), LSMTP_OK);
  assert_int_equal(ll, 12);
  assert_memory_equal(line, "abcdefghij\r\n", 12);
  /* The handed-out buffered line is dropped on the next call. */
  assert_false(lsmtp__line_pending(&r));
  assert_int_equal(lsmtp__line_feed(&r, "z\r\n", 3, &used, &line, &ll), LSMTP_OK);
  assert_int_equal(ll, 3);
  assert_memory_equal(line, "z\r\n", 3);
  lsmtp__line_free(&r);
}

/* ---- allocation failure ---- */

/* Feeds a line split so that it must be buffered and the buffer must grow;
 * returns the first error or LSMTP_OK when everything went through. */
static int buffered_scenario(const lsmtp_allocator *a) {
  lsmtp__line_reader r;
  size_t used, ll;
  const char *line;
  char big[600];
  memset(big, 'y', sizeof big);
  lsmtp__line_init(&r, a, 1000);
  int rc = lsmtp__line_feed(&r, "ab", 2, &used, &line, &ll);
  if (rc == LSMTP_ERR_NOMEM) {
    assert_int_equal(used, 0);
    assert_false(lsmtp__line_pending(&r));
    goto out;
  }
  assert_int_equal(rc, LSMTP_INCOMPLETE);
  rc = lsmtp__line_feed(&r, big, sizeof big, &used, &line, &ll);
  if (rc == LSMTP_ERR_NOMEM) goto out;
  assert_int_equal(rc, LSMTP_INCOMPLETE);
  rc = lsmtp__line_feed(&r, "\r\n", 2, &used, &line, &ll);
  if (rc == LSMTP_ERR_NOMEM) goto out;
  assert_int_equal(rc, LSMTP_OK);
  assert_int_equal(ll, 604);
  assert_memory_equal(line, "abyyy", 5);
  rc = LSMTP_OK;
out:
  lsmtp__line_free(&r);
  return rc;
}

static void test_allocation_failure(void **state) {
  (void)state;
  long ok_at = failalloc_walk(buffered_scenario, 99);
  assert_true(ok_at > 1); /* at least one failure was actually walked */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_lines),
      cmocka_unit_test(test_bare_cr_lf_stay_inside),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_long_lines_grow_the_buffer),
      cmocka_unit_test(test_reset_set_max_and_empty_feed),
      cmocka_unit_test(test_allocation_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
