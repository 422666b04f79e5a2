/* The DATA decoder and encoder (lib/core/data_decode.c, data_encode.c):
 * end detection, dot-(un)stuffing, SMTP smuggling variants, flags, bounds,
 * pausing, and encode/decode round trips. Every decoder case is fed whole,
 * byte by byte, split at every position (and at every pair of positions for
 * short inputs), with and without a callback that pauses after each span;
 * all of these must give the same bytes, status and consumed count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support_failalloc.h"

#define S_(lit) lit, (sizeof lit - 1) /* a literal and its length */


/* ---- collecting spans ---- */

typedef struct sink {
  char *buf;
  size_t len, cap;
  size_t calls;
  int pause;     /* answer LSMTP_PAUSED to every span */
  int fail_at;   /* answer LSMTP_ERR_ABORTED on this call (1-based); 0 never */
} sink;

static int sink_cb(void *ud, const char *p, size_t n) {
  sink *k = ud;
  assert_true(n > 0); /* empty spans are never handed out */
  k->calls++;
  if (k->fail_at && k->calls == (size_t)k->fail_at) return LSMTP_ERR_ABORTED;
  if (k->len + n > k->cap) {
    size_t cap = k->cap ? k->cap : 64;
    while (cap < k->len + n) cap *= 2;
    k->buf = realloc(k->buf, cap);
    assert_non_null(k->buf);
    k->cap = cap;
  }
  memcpy(k->buf + k->len, p, n);
  k->len += n;
  return k->pause ? LSMTP_PAUSED : 0;
}

static void sink_free(sink *k) {
  free(k->buf);
  memset(k, 0, sizeof *k);
}

/* ---- driving the decoder ---- */

typedef struct dec_case {
  const char *in;
  size_t in_len;
  unsigned flags;
  size_t max_line;
  uint64_t max_size;
  /* expected */
  int rc; /* LSMTP_DONE or LSMTP_INCOMPLETE */
  size_t consumed;
  const char *out;
  size_t out_len;
  unsigned seen;
} dec_case;

typedef struct dec_result {
  int rc;
  size_t consumed;
  unsigned seen;
  uint64_t size;
  sink out;
} dec_result;

/* Feed `in` cut at cuts[0..ncuts) (increasing). Each chunk sits in its own
 * exact-size allocation so that a read past it is caught by ASan. */
static void decode_cut(const dec_case *c, const size_t *cuts, size_t ncuts,
                       int pause, dec_result *r) {
  lsmtp_data_decoder *d = NULL;
  assert_int_equal(lsmtp_data_decoder_new(&d, NULL, c->flags, c->max_line,
                                          c->max_size),
                   LSMTP_OK);
  memset(r, 0, sizeof *r);
  r->out.pause = pause;
  r->rc = LSMTP_INCOMPLETE;
  size_t start = 0;
  for (size_t k = 0; k <= ncuts && r->rc != LSMTP_DONE; k++) {
    size_t end = k < ncuts ? cuts[k] : c->in_len;
    size_t n = end - start;
    char *chunk = malloc(n ? n : 1);
    assert_non_null(chunk);
    if (n) memcpy(chunk, c->in + start, n);
    size_t off = 0;
    for (int guard = 0;; guard++) {
      assert_true(guard < 100000);
      size_t used = 12345;
      size_t calls_before = r->out.calls;
      int rc = lsmtp_data_decode(d, chunk + off, n - off, &used,
                                 sink_cb, &r->out);
      assert_true(used <= n - off);
      off += used;
      if (rc == LSMTP_PAUSED) {
        assert_true(pause);
        assert_int_equal(r->out.calls, calls_before + 1); /* stopped at once */
        if (off == n) break; /* this chunk is used up */
        continue;
      }
      if (rc == LSMTP_DONE) {
        r->rc = LSMTP_DONE;
        r->consumed = start + off;
        break;
      }
      assert_int_equal(rc, LSMTP_INCOMPLETE);
      assert_int_equal(off, n);
      break;
    }
    free(chunk);
    if (r->rc != LSMTP_DONE) r->consumed = end;
    start = end;
  }
  r->seen = lsmtp_data_decoder_seen(d);
  r->size = lsmtp_data_decoder_size(d);
  lsmtp_data_decoder_del(d);
}

static void print_bytes(const char *label, const char *p, size_t n) {
  fprintf(stderr, "%s (%zu): \"", label, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch == '\r') fprintf(stderr, "\\r");
    else if (ch == '\n') fprintf(stderr, "\\n");
    else if (ch < 0x20 || ch >= 0x7f) fprintf(stderr, "\\x%02x", ch);
    else fputc(ch, stderr);
  }
  fprintf(stderr, "\"\n");
}

static void expect_result(const dec_case *c, dec_result *r, const char *how) {
  if (r->rc != c->rc || r->consumed != c->consumed || r->seen != c->seen ||
      r->out.len != c->out_len ||
      (c->out_len && memcmp(r->out.buf, c->out, c->out_len) != 0)) {
    fprintf(stderr, "decoding failed when fed %s, flags %u\n", how, c->flags);
    print_bytes("input", c->in, c->in_len);
    print_bytes("want", c->out, c->out_len);
    print_bytes("got ", r->out.buf ? r->out.buf : "", r->out.len);
    fprintf(stderr, "rc %d/%d consumed %zu/%zu seen 0x%x/0x%x\n", r->rc, c->rc,
            r->consumed, c->consumed, r->seen, c->seen);
    fail();
  }
  sink_free(&r->out);
}

/* Whole, byte by byte, every split, every double split (short inputs),
 * each with and without pausing. */
static void check_decode(const dec_case *c) {
  dec_result r;
  size_t *cuts = malloc((c->in_len + 2) * sizeof *cuts);
  assert_non_null(cuts);
  for (int pause = 0; pause <= 1; pause++) {
    const char *how = pause ? "with pauses" : "without pauses";
    decode_cut(c, NULL, 0, pause, &r);
    expect_result(c, &r, how);
    for (size_t i = 0; i + 1 < c->in_len; i++) cuts[i] = i + 1;
    decode_cut(c, cuts, c->in_len ? c->in_len - 1 : 0, pause, &r);
    expect_result(c, &r, "byte by byte");
    for (size_t i = 0; i <= c->in_len; i++) {
      cuts[0] = i;
      decode_cut(c, cuts, 1, pause, &r);
      expect_result(c, &r, "split in two");
    }
    if (c->in_len <= 48) {
      for (size_t i = 0; i <= c->in_len; i++)
        for (size_t j = i; j <= c->in_len; j++) {
          cuts[0] = i;
          cuts[1] = j;
          decode_cut(c, cuts, 2, pause, &r);
          expect_result(c, &r, "split in three");
        }
    }
  }
  free(cuts);
}

/* A case that ends: expected output and consumed count given. */
static void dec_done(const char *in, size_t in_len, unsigned flags,
                     const char *out, size_t out_len, size_t consumed,
                     unsigned seen) {
  dec_case c = {in, in_len, flags, 0, 0, LSMTP_DONE, consumed,
                out, out_len, seen};
  check_decode(&c);
}

/* ---- decoder: plain messages ---- */

static void test_decode_plain(void **state) {
  (void)state;
  dec_done(S_("Hello\r\nWorld\r\n.\r\n"), 0, S_("Hello\r\nWorld\r\n"), 17, 0);
  dec_done(S_("Hello\r\nWorld\r\n.\r\n"), LSMTP_DATA_NORMALIZE_EOL,
           S_("Hello\r\nWorld\r\n"), 17, 0);
  /* Empty message: the state at the start is "just after CRLF". */
  dec_done(S_(".\r\n"), 0, S_(""), 3, 0);
  dec_done(S_(".\r\nQUIT\r\n"), 0, S_(""), 3, 0);
  /* Empty lines. */
  dec_done(S_("\r\n\r\n.\r\n"), 0, S_("\r\n\r\n"), 7, 0);
  /* Trailing bytes (pipelined commands) stay unconsumed. */
  dec_done(S_("x\r\n.\r\nQUIT\r\n"), 0, S_("x\r\n"), 6, 0);
  dec_done(S_("x\r\n.\r\n.\r\n"), 0, S_("x\r\n"), 6, 0);
}

static void test_decode_unstuff(void **state) {
  (void)state;
  dec_done(S_("..foo\r\n..\r\n...\r\n.\r\n"), 0, S_(".foo\r\n.\r\n..\r\n"),
           19, 0);
  /* A leading dot that was not doubled is still removed (§4.5.2). */
  dec_done(S_(".x\r\n. y\r\n.\r\n"), 0, S_("x\r\n y\r\n"), 12, 0);
  /* Only at the start of a line. */
  dec_done(S_("a.b\r\na..\r\n.\r\n"), 0, S_("a.b\r\na..\r\n"), 13, 0);
  /* ".." then CRLF is a line holding one dot, not the end. */
  dec_done(S_("..\r\n.\r\n"), 0, S_(".\r\n"), 7, 0);
  /* A dot line in the middle of longer content. */
  dec_done(S_("line one\r\n..\r\nline three\r\n.\r\nRSET\r\n"), 0,
           S_("line one\r\n.\r\nline three\r\n"), 29, 0);
}

static void test_decode_incomplete(void **state) {
  (void)state;
  /* Without the terminator everything is consumed; what can be decided is
   * emitted, the CR of ".\r" is held back. */
  dec_case c1 = {S_("ab\r\n.\r"), 0, 0, 0, LSMTP_INCOMPLETE, 6, S_("ab\r\n"), 0};
  check_decode(&c1);
  dec_case c2 = {S_("ab\r\n."), 0, 0, 0, LSMTP_INCOMPLETE, 5, S_("ab\r\n"), 0};
  check_decode(&c2);
  dec_case c3 = {S_("ab\r"), 0, 0, 0, LSMTP_INCOMPLETE, 3, S_("ab\r"), 0};
  check_decode(&c3);
  dec_case c4 = {S_("ab\r"), LSMTP_DATA_NORMALIZE_EOL, 0, 0, LSMTP_INCOMPLETE,
                 3, S_("ab\r"), 0};
  check_decode(&c4);
  dec_case c5 = {S_(""), 0, 0, 0, LSMTP_INCOMPLETE, 0, S_(""), 0};
  check_decode(&c5);
}

/* ---- decoder: smuggling ---- */

/* "Hi" + variant + "MAIL FROM:<e@x>\r\n" + real end + "QUIT\r\n": the
 * variant must not end the message; what follows it is content. */
static void smuggle(const char *v, size_t vlen, const char *plain,
                    size_t plain_len, unsigned plain_seen, const char *norm,
                    size_t norm_len) {
  static const char tail[] = "MAIL FROM:<e@x>\r\n";
  static const char end[] = ".\r\nQUIT\r\n";
  char in[256], want_plain[256], want_norm[256];
  size_t n = 0;
  memcpy(in + n, "Hi", 2), n += 2;
  memcpy(in + n, v, vlen), n += vlen;
  memcpy(in + n, tail, sizeof tail - 1), n += sizeof tail - 1;
  size_t consumed = n + 3;
  memcpy(in + n, end, sizeof end - 1), n += sizeof end - 1;

  size_t wp = 0, wn = 0;
  memcpy(want_plain + wp, "Hi", 2), wp += 2;
  memcpy(want_plain + wp, plain, plain_len), wp += plain_len;
  memcpy(want_plain + wp, tail, sizeof tail - 1), wp += sizeof tail - 1;
  memcpy(want_norm + wn, "Hi", 2), wn += 2;
  memcpy(want_norm + wn, norm, norm_len), wn += norm_len;
  memcpy(want_norm + wn, tail, sizeof tail - 1), wn += sizeof tail - 1;

  /* The bare line endings are reported in both modes. */
  dec_done(in, n, 0, want_plain, wp, consumed, plain_seen);
  dec_done(in, n, LSMTP_DATA_NORMALIZE_EOL, want_norm, wn, consumed,
           plain_seen);
}

#define BLF LSMTP_DATA_SAW_BARE_LF
#define BCR LSMTP_DATA_SAW_BARE_CR

static void test_decode_smuggling(void **state) {
  (void)state;
  /* variant, default-mode output, flags, normalised output */
  smuggle(S_("\n.\n"), S_("\n.\n"), BLF, S_("\r\n.\r\n"));
  smuggle(S_("\r.\r"), S_("\r.\r"), BCR, S_("\r\n.\r\n"));
  smuggle(S_("\n.\r\n"), S_("\n.\r\n"), BLF, S_("\r\n.\r\n"));
  smuggle(S_("\r.\n"), S_("\r.\n"), BCR | BLF, S_("\r\n.\r\n"));
  smuggle(S_("\r.\r\n"), S_("\r.\r\n"), BCR, S_("\r\n.\r\n"));
  /* After a real CRLF the dot is unstuffed, but a bare ending after it is
   * content, not the end. */
  smuggle(S_("\r\n.\n"), S_("\r\n\n"), BLF, S_("\r\n\r\n"));
  smuggle(S_("\r\n.\r"), S_("\r\n\r"), BCR, S_("\r\n\r\n"));
  smuggle(S_("\r\n.\r.\r"), S_("\r\n\r.\r"), BCR, S_("\r\n\r\n.\r\n"));
  smuggle(S_("\n\n.\n\n"), S_("\n\n.\n\n"), BLF, S_("\r\n\r\n.\r\n\r\n"));
  smuggle(S_("\r\r.\r\r"), S_("\r\r.\r\r"), BCR,
          S_("\r\n\r\n.\r\n\r\n"));
  /* NUL next to the dot. */
  smuggle(S_("\r\n.\0\r\n"), S_("\r\n\0\r\n"), LSMTP_DATA_SAW_NUL,
          S_("\r\n\0\r\n"));
  smuggle(S_("\r\n\0.\r\n"), S_("\r\n\0.\r\n"), LSMTP_DATA_SAW_NUL,
          S_("\r\n\0.\r\n"));
  smuggle(S_("\r\n.\r\0\n"), S_("\r\n\r\0\n"), BCR | BLF | LSMTP_DATA_SAW_NUL,
          S_("\r\n\r\n\0\r\n"));
  /* A bare ending followed by a real CRLF "." CRLF: that is the end, and
   * the bare ending is content before it. */
  dec_done(S_("Hi\n\r\n.\r\nX"), 0, S_("Hi\n\r\n"), 8, BLF);
  dec_done(S_("Hi\n\r\n.\r\nX"), LSMTP_DATA_NORMALIZE_EOL, S_("Hi\r\n\r\n"),
           8, BLF);
  dec_done(S_("Hi\r\r\n.\r\nX"), 0, S_("Hi\r\r\n"), 8, BCR);
  dec_done(S_("Hi\r\r\n.\r\nX"), LSMTP_DATA_NORMALIZE_EOL, S_("Hi\r\n\r\n"),
           8, BCR);
  /* Bare endings right at the message start. */
  dec_done(S_("\n.\r\n.\r\n"), 0, S_("\n.\r\n"), 7, BLF);
  dec_done(S_(".\n.\r\n.\r\n"), 0, S_("\n.\r\n"), 8, BLF);
  dec_done(S_(".\r.\r\n.\r\n"), LSMTP_DATA_NORMALIZE_EOL, S_("\r\n.\r\n"), 8,
           BCR);
}

/* ---- decoder: flags and bounds ---- */

static void test_decode_flags(void **state) {
  (void)state;
  dec_done(S_("caf\xc3\xa9\r\n.\r\n"), 0, S_("caf\xc3\xa9\r\n"), 10,
           LSMTP_DATA_SAW_8BIT);
  dec_done(S_("a\0b\r\n.\r\n"), 0, S_("a\0b\r\n"), 8, LSMTP_DATA_SAW_NUL);
  /* Long enough for the vector scan, with 8-bit and NUL after 16 bytes. */
  dec_done(S_("0123456789abcdefghij\x80kl\0m\r\n.\r\n"), 0,
           S_("0123456789abcdefghij\x80kl\0m\r\n"), 30,
           LSMTP_DATA_SAW_8BIT | LSMTP_DATA_SAW_NUL);
}

static void test_decode_long_line(void **state) {
  (void)state;
  /* max_line 10: 11 octets with CRLF is too long, 10 is not; counted after
   * unstuffing; the line is passed through intact. */
  dec_case c1 = {S_("123456789\r\n.\r\n"), 0, 10, 0, LSMTP_DONE, 14,
                 S_("123456789\r\n"), LSMTP_DATA_SAW_LONG_LINE};
  check_decode(&c1);
  dec_case c2 = {S_("12345678\r\n.\r\n"), 0, 10, 0, LSMTP_DONE, 13,
                 S_("12345678\r\n"), 0};
  check_decode(&c2);
  dec_case c3 = {S_("..2345678\r\n.\r\n"), 0, 10, 0, LSMTP_DONE, 14,
                 S_(".2345678\r\n"), 0};
  check_decode(&c3);
  dec_case c4 = {S_("...345678\r\n.\r\n"), 0, 10, 0, LSMTP_DONE, 14,
                 S_("..345678\r\n"), 0};
  check_decode(&c4);
  /* A long line without its end yet is flagged too. */
  dec_case c5 = {S_("12345678901"), 0, 10, 0, LSMTP_INCOMPLETE, 11,
                 S_("12345678901"), LSMTP_DATA_SAW_LONG_LINE};
  check_decode(&c5);
  /* ".\r" then not LF, normalised: the output line "\r\n" counts 2. */
  dec_case c5b = {S_(".\rX"), LSMTP_DATA_NORMALIZE_EOL, 1, 0,
                  LSMTP_INCOMPLETE, 3, S_("\r\nX"),
                  BCR | LSMTP_DATA_SAW_LONG_LINE};
  check_decode(&c5b);
  dec_case c5c = {S_(".\rX"), 0, 1, 0, LSMTP_INCOMPLETE, 3, S_("\rX"),
                  BCR | LSMTP_DATA_SAW_LONG_LINE};
  check_decode(&c5c);
  /* With normalising, a bare LF ends the output line. */
  dec_case c6 = {S_("12345\n12345\r\n.\r\n"), LSMTP_DATA_NORMALIZE_EOL, 10, 0,
                 LSMTP_DONE, 16, S_("12345\r\n12345\r\n"), BLF};
  check_decode(&c6);

  /* The default bound: 1000 octets with CRLF. */
  char big[1010];
  memset(big, 'x', sizeof big);
  memcpy(big + 998, "\r\n.\r\n", 5);
  dec_case c7 = {big, 1003, 0, 0, 0, LSMTP_DONE, 1003, big, 1000, 0};
  dec_result r;
  decode_cut(&c7, NULL, 0, 0, &r);
  expect_result(&c7, &r, "whole");
  memset(big, 'x', sizeof big);
  memcpy(big + 999, "\r\n.\r\n", 5);
  dec_case c8 = {big, 1004, 0, 0, 0, LSMTP_DONE, 1004, big, 1001,
                 LSMTP_DATA_SAW_LONG_LINE};
  decode_cut(&c8, NULL, 0, 0, &r);
  expect_result(&c8, &r, "whole");
}

static void test_decode_max_size(void **state) {
  (void)state;
  /* 36 octets of message, bound 15: output stops at 15, the input is read
   * to the end, the size keeps counting. */
  dec_case c = {S_("0123456789\r\n0123456789\r\n0123456789\r\n.\r\nQUIT\r\n"),
                0, 0, 15, LSMTP_DONE, 39, S_("0123456789\r\n012"),
                LSMTP_DATA_OVER_SIZE};
  check_decode(&c);
  dec_result r;
  decode_cut(&c, NULL, 0, 0, &r);
  assert_int_equal(r.size, 36);
  sink_free(&r.out);
  /* Exactly at the bound is fine. */
  dec_case c2 = {S_("0123456789\r\n.\r\n"), 0, 0, 12, LSMTP_DONE, 15,
                 S_("0123456789\r\n"), 0};
  check_decode(&c2);
  /* The size counts unstuffed and normalised octets. */
  dec_case c3 = {S_("..a\nb\r\n.\r\n"), LSMTP_DATA_NORMALIZE_EOL, 0, 4,
                 LSMTP_DONE, 10, S_(".a\r\n"), BLF | LSMTP_DATA_OVER_SIZE};
  check_decode(&c3);
  decode_cut(&c3, NULL, 0, 0, &r);
  assert_int_equal(r.size, 7);
  sink_free(&r.out);
}

/* ---- decoder: pausing, aborting, lifecycle ---- */

static void test_decode_pause_exact(void **state) {
  (void)state;
  /* "a\r\n" is emitted, then the dot of ".b" is dropped: the pause after
   * the first span leaves *consumed right before the dot. */
  lsmtp_data_decoder *d;
  assert_int_equal(lsmtp_data_decoder_new(&d, NULL, 0, 0, 0), LSMTP_OK);
  sink k = {0};
  k.pause = 1;
  const char in[] = "a\r\n.b\r\n.\r\nQUIT";
  size_t used;
  assert_int_equal(lsmtp_data_decode(d, in, sizeof in - 1, &used, sink_cb, &k),
                   LSMTP_PAUSED);
  assert_int_equal(used, 3);
  assert_int_equal(k.len, 3);
  assert_memory_equal(k.buf, "a\r\n", 3);
  size_t off = used;
  assert_int_equal(
      lsmtp_data_decode(d, in + off, sizeof in - 1 - off, &used, sink_cb, &k),
      LSMTP_PAUSED);
  off += used;
  assert_int_equal(off, 7); /* "b\r\n" up to the next dot */
  assert_int_equal(
      lsmtp_data_decode(d, in + off, sizeof in - 1 - off, &used, sink_cb, &k),
      LSMTP_DONE);
  off += used;
  assert_int_equal(off, 10);
  assert_int_equal(k.len, 6);
  assert_memory_equal(k.buf, "a\r\nb\r\n", 6);
  /* After the end: DONE again, nothing consumed; reset starts anew. */
  assert_int_equal(lsmtp_data_decode(d, "x", 1, &used, sink_cb, &k),
                   LSMTP_DONE);
  assert_int_equal(used, 0);
  lsmtp_data_decoder_reset(d);
  k.pause = 0;
  assert_int_equal(lsmtp_data_decode(d, S_("z\r\n.\r\n"), &used, sink_cb, &k),
                   LSMTP_DONE);
  assert_int_equal(used, 6);
  assert_int_equal(k.len, 9);
  assert_memory_equal(k.buf + 6, "z\r\n", 3);
  lsmtp_data_decoder_del(d);
  sink_free(&k);
}

static void test_decode_abort(void **state) {
  (void)state;
  lsmtp_data_decoder *d;
  assert_int_equal(lsmtp_data_decoder_new(&d, NULL, 0, 0, 0), LSMTP_OK);
  sink k = {0};
  k.fail_at = 2;
  size_t used;
  assert_int_equal(
      lsmtp_data_decode(d, S_("a\r\n.b\r\n.\r\n"), &used, sink_cb, &k),
      LSMTP_ERR_ABORTED);
  assert_true(used <= 10);
  assert_int_equal(k.len, 3);
  lsmtp_data_decoder_del(d);
  sink_free(&k);
}

static void test_decode_args(void **state) {
  (void)state;
  lsmtp_data_decoder *d = (lsmtp_data_decoder *)&d;
  assert_int_equal(lsmtp_data_decoder_new(NULL, NULL, 0, 0, 0),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_data_decoder_new(&d, NULL, 0x80, 0, 0),
                   LSMTP_ERR_INVALID);
  assert_null(d);
  assert_int_equal(lsmtp_data_decoder_new(&d, NULL, 0, 0, 0), LSMTP_OK);
  size_t used = 99;
  sink k = {0};
  assert_int_equal(lsmtp_data_decode(d, NULL, 1, &used, sink_cb, &k),
                   LSMTP_ERR_INVALID);
  assert_int_equal(used, 0);
  assert_int_equal(lsmtp_data_decode(d, "x", 1, NULL, sink_cb, &k),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_data_decode(d, "x", 1, &used, NULL, &k),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_data_decode(d, NULL, 0, &used, sink_cb, &k),
                   LSMTP_INCOMPLETE);
  assert_int_equal(k.calls, 0);
  lsmtp_data_decoder_del(d);
  lsmtp_data_decoder_del(NULL);
  lsmtp_data_encoder_del(NULL);
  assert_int_equal(lsmtp_data_decoder_seen(NULL), 0);
  assert_int_equal(lsmtp_data_encoder_seen(NULL), 0);
}

static void test_allocator(void **state) {
  (void)state;
  failalloc failing, counting;
  failalloc_init_sticky(&failing, 1); /* every allocation fails */
  failalloc_init(&counting, 0);       /* none fails */
  lsmtp_data_decoder *d = NULL;
  lsmtp_data_encoder *e = NULL;
  assert_int_equal(lsmtp_data_decoder_new(&d, &failing.alloc, 0, 0, 0),
                   LSMTP_ERR_NOMEM);
  assert_int_equal(lsmtp_data_encoder_new(&e, &failing.alloc), LSMTP_ERR_NOMEM);
  assert_null(d);
  assert_null(e);
  assert_int_equal(failing.live, 0); /* nothing freed that it did not hand out */
  assert_int_equal(lsmtp_data_decoder_new(&d, &counting.alloc, 0, 0, 0), LSMTP_OK);
  assert_int_equal(lsmtp_data_encoder_new(&e, &counting.alloc), LSMTP_OK);
  assert_int_equal(counting.live, 2);
  lsmtp_data_decoder_del(d);
  lsmtp_data_encoder_del(e);
  assert_int_equal(counting.live, 0);
}

/* ---- encoder ---- */

/* Encode `in` cut at cuts, then finish; the output goes to k. */
static unsigned encode_cut(const char *in, size_t len, const size_t *cuts,
                           size_t ncuts, sink *k) {
  lsmtp_data_encoder *e;
  assert_int_equal(lsmtp_data_encoder_new(&e, NULL), LSMTP_OK);
  size_t start = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    char *chunk = malloc(end - start ? end - start : 1);
    assert_non_null(chunk);
    memcpy(chunk, in + start, end - start);
    assert_int_equal(lsmtp_data_encode(e, chunk, end - start, sink_cb, k),
                     LSMTP_OK);
    free(chunk);
    start = end;
  }
  assert_int_equal(lsmtp_data_encode_finish(e, sink_cb, k), LSMTP_OK);
  unsigned seen = lsmtp_data_encoder_seen(e);
  lsmtp_data_encoder_del(e);
  return seen;
}

static void check_encode(const char *in, size_t len, const char *want,
                         size_t want_len, unsigned want_seen) {
  size_t *cuts = malloc((len + 1) * sizeof *cuts);
  assert_non_null(cuts);
  for (int mode = 0; mode < 3; mode++) {
    size_t n_modes = mode == 2 ? len + 1 : 1;
    for (size_t m = 0; m < n_modes; m++) {
      size_t ncuts = 0;
      if (mode == 1) {
        for (size_t i = 0; i + 1 < len; i++) cuts[i] = i + 1;
        ncuts = len ? len - 1 : 0;
      } else if (mode == 2) {
        cuts[0] = m;
        ncuts = 1;
      }
      sink k = {0};
      unsigned seen = encode_cut(in, len, cuts, ncuts, &k);
      if (k.len != want_len || memcmp(k.buf, want, want_len) != 0 ||
          seen != want_seen) {
        fprintf(stderr, "encoding failed (mode %d, cut %zu)\n", mode, m);
        print_bytes("input", in, len);
        print_bytes("want", want, want_len);
        print_bytes("got ", k.buf, k.len);
        fprintf(stderr, "seen 0x%x/0x%x\n", seen, want_seen);
        fail();
      }
      sink_free(&k);
    }
  }
  free(cuts);
}

static void test_encode_cases(void **state) {
  (void)state;
  check_encode(S_(""), S_(".\r\n"), 0);
  check_encode(S_("abc"), S_("abc\r\n.\r\n"), 0);
  check_encode(S_("abc\r\n"), S_("abc\r\n.\r\n"), 0);
  check_encode(S_("a\r\n.b\r\n"), S_("a\r\n..b\r\n.\r\n"), 0);
  check_encode(S_("."), S_("..\r\n.\r\n"), 0);
  check_encode(S_(".\r\n..\r\n"), S_("..\r\n...\r\n.\r\n"), 0);
  check_encode(S_("\r\n\r\n"), S_("\r\n\r\n.\r\n"), 0);
  check_encode(S_("a\nb"), S_("a\r\nb\r\n.\r\n"), BLF);
  check_encode(S_("a\rb"), S_("a\r\nb\r\n.\r\n"), BCR);
  check_encode(S_("a\r"), S_("a\r\n.\r\n"), BCR);
  check_encode(S_("a\n"), S_("a\r\n.\r\n"), BLF);
  check_encode(S_("\r\r\n"), S_("\r\n\r\n.\r\n"), BCR);
  check_encode(S_("\n\r"), S_("\r\n\r\n.\r\n"), BLF | BCR);
  check_encode(S_("x\n.\r."), S_("x\r\n..\r\n..\r\n.\r\n"), BLF | BCR);
  check_encode(S_("\r.\n."), S_("\r\n..\r\n..\r\n.\r\n"), BLF | BCR);
  check_encode(S_("a\0b\r\n"), S_("a\0b\r\n.\r\n"), LSMTP_DATA_SAW_NUL);
  check_encode(S_("caf\xc3\xa9"), S_("caf\xc3\xa9\r\n.\r\n"),
               LSMTP_DATA_SAW_8BIT);
  /* A message that already looks like a terminator is stuffed. */
  check_encode(S_("hi\r\n.\r\nMAIL FROM:<e@x>\r\n"),
               S_("hi\r\n..\r\nMAIL FROM:<e@x>\r\n.\r\n"), 0);
}

static void test_encode_long_line(void **state) {
  (void)state;
  /* 1000 octets with CRLF is allowed; 1001 is flagged (and still sent). */
  char line[1001];
  memset(line, 'y', sizeof line);
  memcpy(line + 998, "\r\n", 2);
  sink k = {0};
  size_t cut = 500;
  assert_int_equal(encode_cut(line, 1000, &cut, 1, &k), 0);
  assert_int_equal(k.len, 1003);
  sink_free(&k);
  memset(line, 'y', sizeof line);
  memcpy(line + 999, "\r\n", 2);
  assert_int_equal(encode_cut(line, 1001, &cut, 1, &k),
                   LSMTP_DATA_SAW_LONG_LINE);
  assert_int_equal(k.len, 1004);
  assert_memory_equal(k.buf, line, 1001);
  sink_free(&k);
  /* A last line without CRLF counts the CRLF that finish adds. */
  assert_int_equal(encode_cut(line, 998, NULL, 0, &k), 0);
  sink_free(&k);
  assert_int_equal(encode_cut(line, 999, NULL, 0, &k),
                   LSMTP_DATA_SAW_LONG_LINE);
  sink_free(&k);
}

static void test_encode_lifecycle(void **state) {
  (void)state;
  lsmtp_data_encoder *e;
  assert_int_equal(lsmtp_data_encoder_new(NULL, NULL), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_data_encoder_new(&e, NULL), LSMTP_OK);
  sink k = {0};
  assert_int_equal(lsmtp_data_encode(e, NULL, 1, sink_cb, &k),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_data_encode(e, "a", 1, NULL, &k), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_data_encode(e, "x\n", 2, sink_cb, &k), LSMTP_OK);
  assert_int_equal(lsmtp_data_encode_finish(e, sink_cb, &k), LSMTP_OK);
  assert_int_equal(lsmtp_data_encode(e, "a", 1, sink_cb, &k), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_data_encode_finish(e, sink_cb, &k), LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_data_encoder_seen(e), BLF);
  lsmtp_data_encoder_reset(e);
  assert_int_equal(lsmtp_data_encoder_seen(e), 0);
  assert_int_equal(lsmtp_data_encode(e, ".", 1, sink_cb, &k), LSMTP_OK);
  assert_int_equal(lsmtp_data_encode_finish(e, sink_cb, &k), LSMTP_OK);
  assert_int_equal(k.len, 13);
  assert_memory_equal(k.buf, "x\r\n.\r\n..\r\n.\r\n", 13);
  sink_free(&k);
  /* The callback's error is returned. */
  lsmtp_data_encoder_reset(e);
  k.fail_at = 1;
  assert_int_equal(lsmtp_data_encode(e, "abc", 3, sink_cb, &k),
                   LSMTP_ERR_ABORTED);
  lsmtp_data_encoder_reset(e);
  k.fail_at = (int)k.calls + 1;
  assert_int_equal(lsmtp_data_encode_finish(e, sink_cb, &k),
                   LSMTP_ERR_ABORTED);
  sink_free(&k);
  lsmtp_data_encoder_del(e);
}

/* ---- round trip ---- */

/* What the decoder gives back for an encoded message: bare CR and LF as
 * CRLF, and a final CRLF when the message lacks one. */
static size_t normalise(const char *in, size_t len, char *out) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (in[i] == '\r') {
      out[n++] = '\r';
      out[n++] = '\n';
      if (i + 1 < len && in[i + 1] == '\n') i++;
    } else if (in[i] == '\n') {
      out[n++] = '\r';
      out[n++] = '\n';
    } else {
      out[n++] = in[i];
    }
  }
  if (n && !(n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n')) {
    out[n++] = '\r';
    out[n++] = '\n';
  }
  return n;
}

static void round_trip(const char *msg, size_t len, size_t cut) {
  sink enc = {0};
  size_t cuts[1] = {cut};
  encode_cut(msg, len, cuts, cut <= len ? 1 : 0, &enc);
  char *want = malloc(2 * len + 3);
  assert_non_null(want);
  size_t want_len = normalise(msg, len, want);
  dec_case c = {enc.buf, enc.len, 0, 0, 0, LSMTP_DONE, enc.len,
                want, want_len, 0};
  /* The decoder does not flag anything the encoder did not see. */
  unsigned enc_seen = 0;
  for (size_t i = 0; i < len; i++) {
    if (msg[i] == 0) enc_seen |= LSMTP_DATA_SAW_NUL;
    if ((unsigned char)msg[i] >= 0x80) enc_seen |= LSMTP_DATA_SAW_8BIT;
  }
  c.seen = enc_seen;
  dec_result r;
  decode_cut(&c, NULL, 0, 0, &r);
  expect_result(&c, &r, "whole (round trip)");
  size_t mid = enc.len / 2;
  decode_cut(&c, &mid, 1, 1, &r);
  expect_result(&c, &r, "split, with pauses (round trip)");
  free(want);
  sink_free(&enc);
}

static void test_round_trip(void **state) {
  (void)state;
  round_trip(S_("...\r\n..\r\n.\r\n.\r\n"), 3);
  round_trip(S_("\r\n\r\n\r\n"), 1);
  round_trip(S_("no final line end"), 5);
  round_trip(S_("."), 0);
  round_trip(S_(".\n.\r.\r\n."), 4);
  round_trip(S_(""), 0);
  /* Random messages over an alphabet rich in line structure. */
  static const char alphabet[] = ".\r\na.\r\nb \0\x80";
  uint32_t seed = 12345;
  char msg[96];
  for (int iter = 0; iter < 3000; iter++) {
    seed = seed * 1103515245u + 12345u;
    size_t len = (seed >> 16) % sizeof msg;
    for (size_t i = 0; i < len; i++) {
      seed = seed * 1103515245u + 12345u;
      msg[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
    }
    seed = seed * 1103515245u + 12345u;
    round_trip(msg, len, len ? (seed >> 16) % (len + 1) : 0);
  }
}

/* ---- long inputs: the 64-byte block path, against a plain reference ---- */

/* The obvious decoder, one byte at a time over a whole input that holds a
 * terminator; fills c's expected fields. */
static void reference_decode(dec_case *c, char *out) {
  const char *in = c->in;
  size_t i = 0, n = 0, line = 0;
  size_t max_line = c->max_line ? c->max_line : LSMTP_DATA_DEFAULT_MAX_LINE;
  int bol = 1, normalize = (c->flags & LSMTP_DATA_NORMALIZE_EOL) != 0;
  c->seen = 0;
  for (;;) {
    assert_true(i < c->in_len);
    unsigned char ch = (unsigned char)in[i];
    if (bol && ch == '.') {
      if (i + 2 < c->in_len && in[i + 1] == '\r' && in[i + 2] == '\n') break;
      i++;
      bol = 0;
      continue;
    }
    bol = 0;
    if (ch == '\r' && i + 1 < c->in_len && in[i + 1] == '\n') {
      out[n++] = '\r';
      out[n++] = '\n';
      if (line + 2 > max_line) c->seen |= LSMTP_DATA_SAW_LONG_LINE;
      line = 0;
      bol = 1;
      i += 2;
      continue;
    }
    if (ch == '\r' || ch == '\n') {
      c->seen |= ch == '\r' ? BCR : BLF;
      if (normalize) {
        out[n++] = '\r';
        out[n++] = '\n';
        if (line + 2 > max_line) c->seen |= LSMTP_DATA_SAW_LONG_LINE;
        line = 0;
      } else {
        out[n++] = (char)ch;
        line++;
      }
      i++;
      continue;
    }
    if (ch == 0) c->seen |= LSMTP_DATA_SAW_NUL;
    if (ch >= 0x80) c->seen |= LSMTP_DATA_SAW_8BIT;
    out[n++] = (char)ch;
    line++;
    i++;
  }
  c->rc = LSMTP_DONE;
  c->consumed = i + 3;
  c->out = out;
  c->out_len = n;
}

static uint32_t next_rand(uint32_t *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return *seed >> 16;
}

/* Mostly well-formed lines of 0..130 octets, with now and then a stuffed
 * dot, a bare CR or LF, a NUL or an 8-bit byte; then the terminator. */
static size_t long_message(uint32_t *seed, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 140 < cap - 8) {
    size_t line = next_rand(seed) % 131;
    uint32_t twist = next_rand(seed) % 40;
    if (twist == 0) buf[n++] = '.';
    for (size_t k = 0; k < line; k++, n++)
      buf[n] = (char)('a' + (k + n) % 26);
    if (line && twist == 1) buf[n - 1 - next_rand(seed) % line] = '\r';
    if (line && twist == 2) buf[n - 1 - next_rand(seed) % line] = '\n';
    if (line && twist == 3) buf[n - 1 - next_rand(seed) % line] = '\0';
    if (line && twist == 4) buf[n - 1 - next_rand(seed) % line] = (char)0xe9;
    buf[n++] = '\r';
    buf[n++] = '\n';
    if (next_rand(seed) % 8 == 0) break;
  }
  memcpy(buf + n, ".\r\nQUIT\r\n", 9);
  return n + 9;
}

static void test_decode_long_inputs(void **state) {
  (void)state;
  static const size_t max_lines[] = {0, 40, 100};
  uint32_t seed = 777;
  char in[1400], out[2800];
  for (int iter = 0; iter < 90; iter++) {
    dec_case c = {0};
    c.in = in;
    c.in_len = long_message(&seed, in, sizeof in);
    c.flags = iter % 2 ? LSMTP_DATA_NORMALIZE_EOL : 0;
    c.max_line = max_lines[(iter / 2) % 3];
    reference_decode(&c, out);
    check_decode(&c);
  }
}

static void test_round_trip_long(void **state) {
  (void)state;
  uint32_t seed = 4242;
  char msg[1400];
  for (int iter = 0; iter < 200; iter++) {
    size_t len = long_message(&seed, msg, sizeof msg) - 9;
    /* Turn some stuffed-looking lines into plain dot lines and cut the end
     * off at random, so the encoder sees both. */
    len -= next_rand(&seed) % 3;
    for (size_t cut = 0; cut <= len; cut += 1 + next_rand(&seed) % 97)
      round_trip(msg, len, cut);
  }
}

/* Lines of exactly max_line octets are fine, one more is flagged, also
 * when the line ends inside the 64-byte block path. */
static void long_line_fast(size_t max_line, size_t n_lines, size_t long_at) {
  char in[4096], out[4096];
  size_t n = 0;
  for (size_t i = 0; i < n_lines; i++) {
    size_t body = max_line - 2 + (i == long_at ? 1 : 0);
    for (size_t k = 0; k < body; k++) in[n++] = (char)('a' + (i + k) % 26);
    in[n++] = '\r';
    in[n++] = '\n';
  }
  memcpy(in + n, ".\r\n", 3);
  dec_case c = {0};
  c.in = in;
  c.in_len = n + 3;
  c.max_line = max_line;
  reference_decode(&c, out);
  assert_int_equal(c.seen, long_at < n_lines ? LSMTP_DATA_SAW_LONG_LINE : 0);
  check_decode(&c);
  /* The encoder's bound is the default one. */
  if (max_line == LSMTP_DATA_DEFAULT_MAX_LINE) {
    sink k = {0};
    assert_int_equal(encode_cut(in, n, NULL, 0, &k), c.seen);
    sink_free(&k);
  }
}

static void test_long_line_block_path(void **state) {
  (void)state;
  for (size_t at = 0; at <= 12; at += 3) { /* 12: none is long */
    long_line_fast(100, 12, at);
    long_line_fast(30, 12, at);
    long_line_fast(64, 12, at);
  }
  long_line_fast(LSMTP_DATA_DEFAULT_MAX_LINE, 3, 1);
  long_line_fast(LSMTP_DATA_DEFAULT_MAX_LINE, 3, 3);
}

/* Whether the library has the block path (the test data_decode.c makes);
 * without it nothing is skipped, so there is no reason to stop for. */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_BLOCK_PATH 1
#else
#define HAVE_BLOCK_PATH 0
#endif

/* What lsmtp__data_skip_lines skipped from `start` to `pos` holds only
 * well-formed lines, it stopped early only where the byte-wise code has
 * something to see, and it counted the lines as the byte-wise loops do
 * (line_len ll_in before start). */
static void check_skipped(const unsigned char *buf, size_t len, size_t start,
                          unsigned seen_in, size_t max_line, size_t ll_in,
                          size_t pos, size_t ll, size_t mk, unsigned so,
                          int bol) {
  size_t want_ll = ll_in, want_mk = start;
  unsigned want_so = 0;
  assert_true(pos >= start && pos <= len);
  for (size_t i = start; i < pos; i++) {
    if (buf[i] == '\r') assert_true(i + 1 < pos && buf[i + 1] == '\n');
    if (buf[i] == '\n') {
      assert_true(i > start && buf[i - 1] == '\r');
      if (i + 1 < pos) assert_int_not_equal(buf[i + 1], '.');
      if (want_ll + (i + 1 - want_mk) > max_line)
        want_so = LSMTP_DATA_SAW_LONG_LINE;
      want_ll = 0;
      want_mk = i + 1;
    }
    if (buf[i] == 0) assert_true(seen_in & LSMTP_DATA_SAW_NUL);
    if (buf[i] >= 0x80) assert_true(seen_in & LSMTP_DATA_SAW_8BIT);
  }
  assert_int_equal(ll, want_ll);
  assert_int_equal(mk, want_mk);
  assert_int_equal(so, want_so);
  /* At a line start after a CRLF, or inside a line after neither CR nor
   * LF (or where it began). */
  if (bol)
    assert_true(pos > start && buf[pos - 1] == '\n');
  else
    assert_true(pos == start ||
                (buf[pos - 1] != '\r' && buf[pos - 1] != '\n'));
  if (!HAVE_BLOCK_PATH || len - pos < 66) return; /* out of input */
  unsigned char c = buf[pos], next = buf[pos + 1];
  int reason = (bol && c == '.') || c == '\n' ||
               (c == '\r' && next != '\n') || (c != '\r' && next == '\n') ||
               (c == 0 && !(seen_in & LSMTP_DATA_SAW_NUL)) ||
               (c >= 0x80 && !(seen_in & LSMTP_DATA_SAW_8BIT));
  if (!reason) {
    fprintf(stderr, "stopped at %zu from %zu, seen 0x%x\n", pos, start,
            seen_in);
    print_bytes("block input", (const char *)buf, len);
  }
  assert_true(reason);
}

/* The SSE2 and AVX2 block scanners agree with each other, at every start
 * offset, on text made to hit every reason to stop. */
static void test_skip_variants_agree(void **state) {
  (void)state;
  uint32_t seed = 99;
  unsigned char buf[700];
  static const char pieces[] = "abcdefgh.\r\n\r\n\r\n..\0\x80";
  for (int iter = 0; iter < 400; iter++) {
    size_t len = 64 + next_rand(&seed) % (sizeof buf - 64);
    for (size_t i = 0; i < len; i++)
      buf[i] = (unsigned char)('a' + i % 26);
    /* A few of everything, fewer as iterations go so long runs appear. */
    size_t twists = next_rand(&seed) % (2 + (size_t)iter % 12);
    for (size_t t = 0; t < twists; t++)
      buf[next_rand(&seed) % len] =
          (unsigned char)pieces[next_rand(&seed) % (sizeof pieces - 1)];
    /* And well-formed line ends. */
    for (size_t i = 70; i + 1 < len; i += 50 + next_rand(&seed) % 60) {
      buf[i] = '\r';
      buf[i + 1] = '\n';
      if (i + 2 < len && next_rand(&seed) % 4 == 0) buf[i + 2] = '.';
    }
    static const unsigned seen_before[] = {
        0, LSMTP_DATA_SAW_NUL, LSMTP_DATA_SAW_8BIT,
        LSMTP_DATA_SAW_NUL | LSMTP_DATA_SAW_8BIT};
    unsigned seen_in = seen_before[iter % 4];
    static const size_t max_lines[] = {30, 64, 100, 1000};
    size_t max_line = max_lines[(iter / 4) % 4];
    for (size_t start = 0; start < 70 && start < len; start++) {
      size_t ll[3], mk[3], pos[3];
      unsigned so[3];
      int bol[3];
      for (int impl = 0; impl < 3; impl++) {
        ll[impl] = 7;
        mk[impl] = start;
        so[impl] = 0;
        pos[impl] = lsmtp__data_skip_lines(buf, start, len, seen_in, max_line,
                                           &ll[impl], &mk[impl], &so[impl],
                                           &bol[impl], impl);
      }
      if (pos[0] != pos[1]) {
        fprintf(stderr, "start %zu seen 0x%x max_line %zu\n", start, seen_in,
                max_line);
        print_bytes("block input", (const char *)buf, len);
      }
      assert_int_equal(pos[0], pos[1]);
      assert_int_equal(ll[0], ll[1]);
      assert_int_equal(mk[0], mk[1]);
      assert_int_equal(so[0], so[1]);
      assert_int_equal(bol[0], bol[1]);
      /* Without vector code nothing is skipped. */
      assert_int_equal(pos[2], start);
      assert_int_equal(ll[2], 7);
      assert_int_equal(so[2], 0);
      assert_int_equal(bol[2], 0);
      check_skipped(buf, len, start, seen_in, max_line, 7, pos[0], ll[0],
                    mk[0], so[0], bol[0]);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_plain),
      cmocka_unit_test(test_decode_unstuff),
      cmocka_unit_test(test_decode_incomplete),
      cmocka_unit_test(test_decode_smuggling),
      cmocka_unit_test(test_decode_flags),
      cmocka_unit_test(test_decode_long_line),
      cmocka_unit_test(test_decode_max_size),
      cmocka_unit_test(test_decode_pause_exact),
      cmocka_unit_test(test_decode_abort),
      cmocka_unit_test(test_decode_args),
      cmocka_unit_test(test_allocator),
      cmocka_unit_test(test_encode_cases),
      cmocka_unit_test(test_encode_long_line),
      cmocka_unit_test(test_encode_lifecycle),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_decode_long_inputs),
      cmocka_unit_test(test_round_trip_long),
      cmocka_unit_test(test_long_line_block_path),
      cmocka_unit_test(test_skip_variants_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
