/* Fuzz target for the DATA decoder and encoder.
 *
 * The first byte picks the decoder's flags and bounds, whether the span
 * callback pauses, and how the rest is cut into chunks. The rest is:
 *  1. decoded (with "\r\n.\r\n" appended so that it ends), chunk by chunk,
 *     and compared with a plain byte-at-a-time reference decoder written
 *     here: the end must be the first CRLF "." CRLF of the input (never a
 *     bare-CR/LF look-alike), and bytes, flags and size must agree;
 *  2. encoded chunk by chunk, then decoded again: the result must be the
 *     input with bare CR/LF made CRLF and a final CRLF added, ending
 *     exactly at the end of the encoded stream;
 *  3. scanned by each variant of the 64-byte block fast path (SSE2, AVX2
 *     where the CPU has it), which must agree, skip only well-formed lines
 *     (counting their lengths right) and stop early only for a reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "fuzz_data: check failed at line %d: %s\n", __LINE__,  \
              #cond);                                                         \
      abort();                                                                \
    }                                                                         \
  } while (0)

typedef struct out_buf {
  unsigned char *p;
  size_t len, cap;
  int pause;
} out_buf;

static int collect(void *ud, const char *data, size_t n) {
  out_buf *o = ud;
  CHECK(n > 0);
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 256;
    while (cap < o->len + n) cap *= 2;
    unsigned char *np = realloc(o->p, cap);
    CHECK(np != NULL);
    o->p = np;
    o->cap = cap;
  }
  memcpy(o->p + o->len, data, n);
  o->len += n;
  return o->pause ? LSMTP_PAUSED : 0;
}

static void put(out_buf *o, const char *s, size_t n) {
  int pause = o->pause;
  o->pause = 0;
  collect(o, s, n);
  o->pause = pause;
}

/* Chunk lengths: fixed, or read from a cycle over the input itself. */
typedef struct chunker {
  const uint8_t *src;
  size_t src_len, k;
  size_t fixed; /* 0: from src */
} chunker;

static size_t next_chunk(chunker *c, size_t left) {
  size_t n = c->fixed;
  if (!n) n = c->src_len ? 1 + (size_t)c->src[c->k++ % c->src_len] % 23 : 1;
  return n < left ? n : left;
}

/* The reference decoder: the obvious loop over a whole input that is known
 * to hold a terminator. Returns the offset after the terminator. */
static size_t reference_decode(const unsigned char *in, size_t n, int normalize,
                               size_t max_line, out_buf *out, unsigned *seen) {
  size_t i = 0, line = 0;
  int bol = 1;
  for (;;) {
    CHECK(i < n);
    if (bol && in[i] == '.') {
      if (i + 2 < n && in[i + 1] == '\r' && in[i + 2] == '\n') return i + 3;
      i++; /* dot-stuffing */
      bol = 0;
      continue;
    }
    bol = 0;
    unsigned char c = in[i];
    if (c == '\r' && i + 1 < n && in[i + 1] == '\n') {
      put(out, "\r\n", 2);
      if (line + 2 > max_line) *seen |= LSMTP_DATA_SAW_LONG_LINE;
      line = 0;
      bol = 1;
      i += 2;
      continue;
    }
    if (c == '\r' || c == '\n') {
      *seen |= c == '\r' ? LSMTP_DATA_SAW_BARE_CR : LSMTP_DATA_SAW_BARE_LF;
      if (normalize) {
        put(out, "\r\n", 2);
        if (line + 2 > max_line) *seen |= LSMTP_DATA_SAW_LONG_LINE;
        line = 0;
      } else {
        put(out, (const char *)&in[i], 1);
        line++;
      }
      i++;
      continue;
    }
    if (c == 0) *seen |= LSMTP_DATA_SAW_NUL;
    if (c >= 0x80) *seen |= LSMTP_DATA_SAW_8BIT;
    put(out, (const char *)&in[i], 1);
    line++;
    i++;
  }
}

/* Feed in[0..n) chunk by chunk until the end; returns the offset after the
 * terminator, or n when there was none. */
static size_t run_decoder(lsmtp_data_decoder *d, const unsigned char *in,
                          size_t n, chunker *ch, out_buf *out, int *done) {
  size_t off = 0;
  *done = 0;
  while (off < n) {
    size_t len = next_chunk(ch, n - off);
    /* The chunk in its own allocation, so over-reads are caught. */
    char *chunk = malloc(len);
    CHECK(chunk != NULL);
    memcpy(chunk, in + off, len);
    size_t pos = 0;
    int rc;
    for (;;) {
      size_t used = 0;
      size_t before = out->len;
      rc = lsmtp_data_decode(d, chunk + pos, len - pos, &used, collect, out);
      CHECK(used <= len - pos);
      pos += used;
      if (rc == LSMTP_PAUSED) {
        CHECK(out->pause && out->len > before);
        if (pos == len) break;
        continue;
      }
      CHECK(rc == LSMTP_DONE || rc == LSMTP_INCOMPLETE);
      if (rc == LSMTP_INCOMPLETE) CHECK(pos == len);
      break;
    }
    free(chunk);
    off += pos;
    if (rc == LSMTP_DONE) {
      *done = 1;
      return off;
    }
  }
  return off;
}

static size_t find_end(const unsigned char *in, size_t n) {
  if (n >= 3 && memcmp(in, ".\r\n", 3) == 0) return 3;
  for (size_t i = 0; i + 5 <= n; i++)
    if (memcmp(in + i, "\r\n.\r\n", 5) == 0) return i + 5;
  return 0;
}

static void check_decoder(const uint8_t *data, size_t size, unsigned sel) {
  const int normalize = (sel & 1) != 0;
  const size_t max_line = (sel & 2) ? 8 : LSMTP_DATA_DEFAULT_MAX_LINE;
  const uint64_t max_size = (sel & 4) ? 16 : 0;

  size_t n = size + 5;
  unsigned char *in = malloc(n);
  CHECK(in != NULL);
  if (size) memcpy(in, data, size);
  memcpy(in + size, "\r\n.\r\n", 5);

  out_buf want = {0};
  unsigned want_seen = 0;
  size_t want_end = reference_decode(in, n, normalize, max_line, &want,
                                     &want_seen);
  CHECK(want_end == find_end(in, n));
  uint64_t want_size = want.len;
  if (max_size && want.len > max_size) {
    want_seen |= LSMTP_DATA_OVER_SIZE;
    want.len = (size_t)max_size;
  }

  lsmtp_data_decoder *d;
  CHECK(lsmtp_data_decoder_new(&d, NULL,
                               normalize ? LSMTP_DATA_NORMALIZE_EOL : 0u,
                               (sel & 2) ? 8 : 0, max_size) == LSMTP_OK);
  out_buf got = {0};
  got.pause = (sel & 8) != 0;
  chunker ch = {data, size, 0, (sel >> 4) == 15 ? n : (sel >> 4)};
  int done;
  size_t end = run_decoder(d, in, n, &ch, &got, &done);
  CHECK(done);
  CHECK(end == want_end);
  CHECK(got.len == want.len);
  CHECK(got.len == 0 || memcmp(got.p, want.p, got.len) == 0);
  CHECK(lsmtp_data_decoder_seen(d) == want_seen);
  CHECK(lsmtp_data_decoder_size(d) == want_size);
  /* Nothing of the terminator it consumed is in the output. */
  if (!normalize) CHECK(want_size + 3 <= end);
  lsmtp_data_decoder_del(d);
  free(got.p);
  free(want.p);
  free(in);
}

static void check_round_trip(const uint8_t *data, size_t size, unsigned sel) {
  /* Expected: bare CR/LF as CRLF, a final CRLF added when missing. */
  out_buf want = {0};
  unsigned want_seen = 0;
  size_t line = 0;
  for (size_t i = 0; i < size; i++) {
    unsigned char c = data[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < size && data[i + 1] == '\n') {
        i++;
      } else {
        want_seen |= c == '\r' ? LSMTP_DATA_SAW_BARE_CR
                               : LSMTP_DATA_SAW_BARE_LF;
      }
      put(&want, "\r\n", 2);
      if (line + 2 > LSMTP_DATA_DEFAULT_MAX_LINE)
        want_seen |= LSMTP_DATA_SAW_LONG_LINE;
      line = 0;
      continue;
    }
    if (c == 0) want_seen |= LSMTP_DATA_SAW_NUL;
    if (c >= 0x80) want_seen |= LSMTP_DATA_SAW_8BIT;
    put(&want, (const char *)&data[i], 1);
    line++;
  }
  if (line) {
    put(&want, "\r\n", 2);
    if (line + 2 > LSMTP_DATA_DEFAULT_MAX_LINE)
      want_seen |= LSMTP_DATA_SAW_LONG_LINE;
  }

  lsmtp_data_encoder *e;
  CHECK(lsmtp_data_encoder_new(&e, NULL) == LSMTP_OK);
  out_buf enc = {0};
  chunker ch = {data, size, 3, (sel >> 4) == 15 ? size + 1 : (sel >> 4)};
  for (size_t off = 0; off < size;) {
    size_t len = next_chunk(&ch, size - off);
    CHECK(lsmtp_data_encode(e, (const char *)data + off, len, collect,
                            &enc) == LSMTP_OK);
    off += len;
  }
  CHECK(lsmtp_data_encode_finish(e, collect, &enc) == LSMTP_OK);
  CHECK(lsmtp_data_encoder_seen(e) == want_seen);
  lsmtp_data_encoder_del(e);

  /* The terminator is where the encoder put it, and only there. */
  CHECK(find_end(enc.p, enc.len) == enc.len);

  lsmtp_data_decoder *d;
  CHECK(lsmtp_data_decoder_new(&d, NULL, 0, 0, 0) == LSMTP_OK);
  out_buf got = {0};
  got.pause = (sel & 8) != 0;
  int done;
  size_t end = run_decoder(d, enc.p, enc.len, &ch, &got, &done);
  CHECK(done && end == enc.len);
  CHECK(got.len == want.len);
  CHECK(got.len == 0 || memcmp(got.p, want.p, got.len) == 0);
  CHECK((lsmtp_data_decoder_seen(d) &
         (LSMTP_DATA_SAW_BARE_CR | LSMTP_DATA_SAW_BARE_LF)) == 0);
  lsmtp_data_decoder_del(d);
  free(got.p);
  free(enc.p);
  free(want.p);
}


/* Whether the library has the block path (the test data_decode.c makes);
 * without it nothing is skipped, so there is no reason to stop for. */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_BLOCK_PATH 1
#else
#define HAVE_BLOCK_PATH 0
#endif

/* What the block path skipped from `start` to `pos` holds only well-formed
 * lines, counted as the byte-wise loops count them (line_len ll_in before
 * start); it stopped early only where the byte-wise code has something to
 * see; and it is at a line start exactly when it says so. */
static void check_skipped(const uint8_t *buf, size_t len, size_t start,
                          unsigned seen_in, size_t max_line, size_t ll_in,
                          size_t pos, size_t ll, size_t mk, unsigned so,
                          int bol) {
  size_t want_ll = ll_in, want_mk = start;
  unsigned want_so = 0;
  CHECK(pos >= start && pos <= len);
  for (size_t i = start; i < pos; i++) {
    if (buf[i] == '\r') CHECK(i + 1 < pos && buf[i + 1] == '\n');
    if (buf[i] == '\n') {
      CHECK(i > start && buf[i - 1] == '\r');
      CHECK(i + 1 == pos || buf[i + 1] != '.');
      if (want_ll + (i + 1 - want_mk) > max_line)
        want_so = LSMTP_DATA_SAW_LONG_LINE;
      want_ll = 0;
      want_mk = i + 1;
    }
    CHECK(buf[i] != 0 || (seen_in & LSMTP_DATA_SAW_NUL));
    CHECK(buf[i] < 0x80 || (seen_in & LSMTP_DATA_SAW_8BIT));
  }
  CHECK(ll == want_ll && mk == want_mk && so == want_so);
  if (bol)
    CHECK(pos > start && buf[pos - 1] == '\n');
  else
    CHECK(pos == start || (buf[pos - 1] != '\r' && buf[pos - 1] != '\n'));
  if (!HAVE_BLOCK_PATH || len - pos < 66) return; /* out of input */
  uint8_t c = buf[pos], next = buf[pos + 1];
  CHECK((bol && c == '.') || c == '\n' || (c == '\r' && next != '\n') ||
        (c != '\r' && next == '\n') ||
        (c == 0 && !(seen_in & LSMTP_DATA_SAW_NUL)) ||
        (c >= 0x80 && !(seen_in & LSMTP_DATA_SAW_8BIT)));
}

static void check_skip_variants(const uint8_t *data, size_t size,
                                unsigned sel) {
  static const unsigned seen_before[] = {
      0, LSMTP_DATA_SAW_NUL, LSMTP_DATA_SAW_8BIT,
      LSMTP_DATA_SAW_NUL | LSMTP_DATA_SAW_8BIT};
  unsigned seen = seen_before[(sel >> 4) & 3];
  static const size_t max_lines[] = {100, 8, 64, 1000};
  size_t max_line = max_lines[((sel >> 1) & 1) | ((sel >> 5) & 2)];
  for (size_t start = 0; start < size && start < 8; start++) {
    size_t ll[2], mk[2], pos[2];
    unsigned so[2];
    int bol[2];
    for (int impl = 0; impl < 2; impl++) {
      ll[impl] = 3;
      mk[impl] = start;
      so[impl] = 0;
      pos[impl] = lsmtp__data_skip_lines(data, start, size, seen, max_line,
                                         &ll[impl], &mk[impl], &so[impl],
                                         &bol[impl], impl);
    }
    CHECK(pos[0] == pos[1] && ll[0] == ll[1] && mk[0] == mk[1] &&
          so[0] == so[1] && bol[0] == bol[1]);
    check_skipped(data, size, start, seen, max_line, 3, pos[0], ll[0], mk[0],
                  so[0], bol[0]);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned sel = data[0];
  check_decoder(data + 1, size - 1, sel);
  check_round_trip(data + 1, size - 1, sel);
  check_skip_variants(data + 1, size - 1, sel);
  return 0;
}
