/* Private declarations shared by the library's modules. Never installed;
 * tests include it to reach internals. Modules with larger private state
 * keep their own "<module>_int.h" beside their .c file. */
#ifndef LSMTP_INTERNAL_H
#define LSMTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lsmtp/lsmtp.h>

/* ---- allocation (alloc.c) ---- */
void *lsmtp__malloc(const lsmtp_allocator *a, size_t size);
void *lsmtp__calloc(const lsmtp_allocator *a, size_t n, size_t size);
void *lsmtp__realloc(const lsmtp_allocator *a, void *ptr, size_t size);
void lsmtp__free(const lsmtp_allocator *a, void *ptr);
char *lsmtp__strndup(const lsmtp_allocator *a, const char *s, size_t n);
#define LSMTP__ALLOC_OR_DEFAULT(a) ((a) ? (a) : lsmtp_allocator_default())

/* ---- ASCII helpers (locale-independent) ---- */
static inline int lsmtp__is_alpha(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static inline int lsmtp__is_digit(int c) { return c >= '0' && c <= '9'; }
static inline int lsmtp__to_lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}
/* Case-insensitive ASCII comparison of n bytes; 1 when equal. */
static inline int lsmtp__ieq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lsmtp__to_lower((unsigned char)a[i]) != lsmtp__to_lower((unsigned char)b[i]))
      return 0;
  return 1;
}

/* ---- UTF-8 (address.c) ----
 * Length of the well-formed UTF-8 sequence at p (at most avail bytes): no
 * overlongs, surrogates or code points above U+10FFFF. Returns 0 when the
 * bytes are not one; stores the code point in *cp (cp may be NULL). */
size_t lsmtp__utf8_seq(const unsigned char *p, size_t avail, uint32_t *cp);

/* ---- DATA scanning, shared by decoder and encoder (data_decode.c) ----
 * lsmtp__data_scan: the first byte at or after p that is CR or LF, or (when
 * asked) NUL or 8-bit; len when there is none.
 * lsmtp__data_skip_lines: skips runs of well-formed CRLF lines with vector
 * code, stopping exactly at the first problem (a line-start dot, a bare
 * CR/LF, NUL or 8-bit); impl 0 = the best the CPU has, 1 = SSE2 only,
 * 2 = no vector code (the tests compare them). See data_decode.c. */
size_t lsmtp__data_scan(const unsigned char *s, size_t p, size_t len,
                        int stop_nul, int stop_8bit);
size_t lsmtp__data_skip_lines(const unsigned char *s, size_t p, size_t len,
                              unsigned seen, size_t max_line,
                              size_t *line_len, size_t *mark,
                              unsigned *seen_out, int *at_bol, int impl);

/* ---- password file (lib/roles/authfile.c) ----
 * The iteration count of the dummy entry that unknown users are checked
 * against, so that they cost as much as known ones (for tests). */
struct lsmtp_authfile;
uint32_t lsmtp__authfile_dummy_iterations(const struct lsmtp_authfile *af);

/* ---- unique names for role files (lib/roles/unique.c) ----
 * lsmtp__unique_token: a random 64-bit token per object (/dev/urandom, or
 * time, pid and salt when there is none); not for secrets.
 * lsmtp__mix64: the splitmix64 finaliser, to spread counters. */
uint64_t lsmtp__unique_token(const void *salt);
uint64_t lsmtp__mix64(uint64_t x);

/* ---- growable byte buffer (buf.c) ---- */
typedef struct lsmtp__buf {
  char *data;
  size_t len;
  size_t cap;
  const lsmtp_allocator *alloc;
} lsmtp__buf;
void lsmtp__buf_init(lsmtp__buf *b, const lsmtp_allocator *alloc);
void lsmtp__buf_free(lsmtp__buf *b);
/* Make room for n more bytes; LSMTP_OK or LSMTP_ERR_NOMEM. */
int lsmtp__buf_reserve(lsmtp__buf *b, size_t n);
int lsmtp__buf_append(lsmtp__buf *b, const void *p, size_t n);
/* Drop n bytes from the front. */
void lsmtp__buf_consume(lsmtp__buf *b, size_t n);

/* ---- CRLF line framing (line.c), shared by command and reply reading ----
 * Collects one line up to and including CRLF, bounded by max (including the
 * CRLF). A bare CR or LF does not end a line: it stays inside it (the
 * command/reply parser then rejects it). A line longer than max is
 * discarded up to its CRLF and reported as LSMTP_ERR_TOO_LONG, after which
 * the reader is usable again. When the whole line lies inside the input,
 * it is returned without copying. */
typedef struct lsmtp__line_reader {
  lsmtp__buf buf;
  size_t max;
  unsigned char discarding; /* inside an overlong line */
  unsigned char saw_cr;     /* discarding: last byte seen was CR */
} lsmtp__line_reader;
void lsmtp__line_init(lsmtp__line_reader *r, const lsmtp_allocator *alloc,
                      size_t max);
void lsmtp__line_free(lsmtp__line_reader *r);
/* Change the bound (e.g. AUTH continuation lines); takes effect at once,
 * so call it between lines. */
void lsmtp__line_set_max(lsmtp__line_reader *r, size_t max);
/* Forget a partial line (e.g. after STARTTLS). */
void lsmtp__line_reset(lsmtp__line_reader *r);
/* Non-zero while part of a line is buffered. */
int lsmtp__line_pending(const lsmtp__line_reader *r);
/* Returns LSMTP_OK with *line and *line_len (CRLF included; valid until the
 * next call) and *consumed, LSMTP_INCOMPLETE (all consumed), or
 * LSMTP_ERR_TOO_LONG (*consumed through the CRLF of the overlong line), or
 * LSMTP_ERR_NOMEM. */
int lsmtp__line_feed(lsmtp__line_reader *r, const char *data, size_t len,
                     size_t *consumed, const char **line, size_t *line_len);

#endif
