/* Fuzz the reply parser and formatter.
 *
 * Input: byte 0 picks the bounds, byte 1 seeds the chunk sizes, the rest is
 * the server's byte stream. The stream is parsed once whole and once in
 * chunks; both must give the same replies at the same offsets and the same
 * final status. Every reply is checked for the contract's invariants and
 * formatted back, and what the formatter writes must parse as one reply. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(x)         \
  do {                   \
    if (!(x)) abort();   \
  } while (0)

typedef struct seen {
  int code;
  lsmtp_enhanced enh;
  size_t lines, end, text_len;
  char *text;
} seen;

typedef struct run {
  seen *r;
  size_t n, cap;
  int final;
} run;

static void check_reply(const lsmtp_reply *r, size_t max_lines) {
  CHECK(r->code >= 200 && r->code <= 559 && (r->code / 10) % 10 <= 5);
  CHECK(r->enhanced.cls == 0 || r->enhanced.cls == r->code / 100);
  CHECK(r->enhanced.subject <= 999 && r->enhanced.detail <= 999);
  CHECK(r->lines >= 1 && r->lines <= max_lines);
  CHECK(r->text != NULL && strlen(r->text) == r->text_len);
  CHECK(memchr(r->text, '\r', r->text_len) == NULL);
}

/* Format a parsed reply back; it must read as exactly one reply with the
 * same code, and the same enhanced code and text unless the formatter had
 * to change the text (control bytes become spaces, a trailing empty line
 * goes). */
static void round_trip(const lsmtp_reply *r) {
  char enh[24] = "";
  if (r->enhanced.cls)
    snprintf(enh, sizeof enh, "%u.%u.%u", (unsigned)r->enhanced.cls,
             (unsigned)r->enhanced.subject, (unsigned)r->enhanced.detail);
  size_t need = lsmtp_reply_format(NULL, 0, r->code, enh, r->text, r->text_len);
  CHECK(need >= 5);
  char *buf = malloc(need + 1);
  CHECK(buf != NULL);
  CHECK(lsmtp_reply_format(buf, need + 1, r->code, enh, r->text, r->text_len) == need);
  CHECK(buf[need] == '\0');
  CHECK(buf[need - 2] == '\r' && buf[need - 1] == '\n');

  lsmtp_reply_parser *p;
  size_t used;
  CHECK(lsmtp_reply_parser_new(&p, NULL, 8192, 0) == LSMTP_OK);
  CHECK(lsmtp_reply_parser_feed(p, buf, need, &used) == LSMTP_DONE);
  CHECK(used == need);
  const lsmtp_reply *back = lsmtp_reply_parser_get(p);
  CHECK(back->code == r->code);
  int changed = r->text_len > 0 && r->text[r->text_len - 1] == '\n';
  for (size_t i = 0; i < r->text_len; i++) {
    unsigned char c = (unsigned char)r->text[i];
    if ((c < 0x20 && c != '\n') || c == 0x7f) changed = 1;
  }
  /* Unchanged text reads back the same. (A control byte turned into a
   * space may make a text such as "5.1.1\x01x" start with a code.) */
  if (!changed) {
    CHECK(back->enhanced.cls == r->enhanced.cls);
    CHECK(back->enhanced.subject == r->enhanced.subject);
    CHECK(back->enhanced.detail == r->enhanced.detail);
    CHECK(back->text_len == r->text_len);
    CHECK(memcmp(back->text, r->text, r->text_len) == 0);
    CHECK(back->lines == r->lines);
  }
  lsmtp_reply_parser_del(p);
  free(buf);
}

/* Parse in chunks; chunk_seed 0 means one feed for the whole stream.
 * With want non-NULL, compare against that earlier run as we go. */
static void parse(const char *in, size_t len, size_t max_line, size_t max_lines,
                  uint32_t chunk_seed, run *out, const run *want) {
  lsmtp_reply_parser *p;
  CHECK(lsmtp_reply_parser_new(&p, NULL, max_line, max_lines) == LSMTP_OK);
  size_t real_max_lines = max_lines ? max_lines : LSMTP_REPLY_DEFAULT_MAX_LINES;
  uint32_t x = chunk_seed;
  size_t off = 0, n = 0;
  int rc = LSMTP_INCOMPLETE;
  while (off < len) {
    size_t chunk = len - off;
    if (chunk_seed) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      size_t c = 1 + x % ((chunk_seed & 1) ? 8u : 200u);
      if (c < chunk) chunk = c;
    }
    size_t used = 0;
    rc = lsmtp_reply_parser_feed(p, in + off, chunk, &used);
    CHECK(used <= chunk);
    off += used;
    if (rc == LSMTP_INCOMPLETE) {
      CHECK(used == chunk);
      CHECK(lsmtp_reply_parser_get(p) == NULL);
      continue;
    }
    if (rc != LSMTP_DONE) break;
    const lsmtp_reply *r = lsmtp_reply_parser_get(p);
    CHECK(r != NULL);
    check_reply(r, real_max_lines);
    if (want) {
      CHECK(n < want->n);
      const seen *w = &want->r[n];
      CHECK(w->code == r->code && w->lines == r->lines && w->end == off);
      CHECK(w->enh.cls == r->enhanced.cls && w->enh.subject == r->enhanced.subject &&
            w->enh.detail == r->enhanced.detail);
      CHECK(w->text_len == r->text_len && memcmp(w->text, r->text, r->text_len) == 0);
    } else {
      if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 8;
        out->r = realloc(out->r, out->cap * sizeof *out->r);
        CHECK(out->r != NULL);
      }
      seen *s = &out->r[out->n++];
      s->code = r->code;
      s->enh = r->enhanced;
      s->lines = r->lines;
      s->end = off;
      s->text_len = r->text_len;
      s->text = malloc(r->text_len + 1);
      CHECK(s->text != NULL);
      memcpy(s->text, r->text, r->text_len + 1);
      round_trip(r);
    }
    n++;
  }
  if (rc == LSMTP_DONE) rc = LSMTP_INCOMPLETE; /* nothing left over */
  if (rc < 0) {
    size_t used = 1;
    CHECK(rc != LSMTP_ERR_FATAL);
    CHECK(lsmtp_reply_parser_feed(p, "250 x\r\n", 7, &used) == LSMTP_ERR_FATAL);
    CHECK(used == 0 && lsmtp_reply_parser_get(p) == NULL);
  }
  if (want) {
    CHECK(n == want->n);
    CHECK(rc == want->final);
  } else {
    out->final = rc;
  }
  lsmtp_reply_parser_del(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t max_lines_choice[4] = {0, 1, 3, 10};
  static const size_t max_line_choice[4] = {0, 8, 32, 512};
  if (size < 2) return 0;
  size_t max_line = max_line_choice[data[0] & 3];
  size_t max_lines = max_lines_choice[(data[0] >> 2) & 3];
  uint32_t seed = (uint32_t)data[1] * 2654435761u | (data[1] & 1u) | 0x100u;
  const char *in = (const char *)data + 2;
  size_t len = size - 2;

  run whole = {NULL, 0, 0, 0};
  parse(in, len, max_line, max_lines, 0, &whole, NULL);
  parse(in, len, max_line, max_lines, seed, NULL, &whole);
  for (size_t i = 0; i < whole.n; i++) free(whole.r[i].text);
  free(whole.r);

  /* Feed the raw bytes to the formatter too: it never writes more than it
   * says and never emits a bare CR or LF. */
  char out[256];
  static const int codes[4] = {220, 250, 451, 554};
  int code = codes[data[1] & 3];
  size_t need = lsmtp_reply_format(out, sizeof out, code, NULL, in, len);
  if (need > 0) {
    size_t kept = need < sizeof out ? need : sizeof out - 1;
    CHECK(out[kept] == '\0');
    for (size_t i = 0; i < kept; i++) {
      if (out[i] == '\r') CHECK(i + 1 >= kept || out[i + 1] == '\n');
      if (out[i] == '\n') CHECK(i > 0 && out[i - 1] == '\r');
      CHECK(out[i] != '\0');
    }
  }
  return 0;
}
