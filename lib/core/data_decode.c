/* The DATA decoder (RFC 5321 §4.1.1.4, §4.5.2): finds the end of data and
 * removes dot-stuffing while the message streams through, without copying
 * it.
 *
 * Only the exact input sequence CRLF "." CRLF ends the message (the first
 * CRLF may be the one "before" the first line). A line, for ending the
 * message and for unstuffing, starts only after a real CRLF in the input:
 * a bare CR or LF never starts one, so "\n.\r\n", "\r.\r\n" and the like
 * are message content and never the end (SMTP smuggling). Normalising bare
 * line endings (LSMTP_DATA_NORMALIZE_EOL) changes only what is emitted,
 * never where the message ends.
 *
 * Output spans point into the input. The only byte ever held back across a
 * chunk boundary is the CR of a line that so far reads ".\r" (it is part of
 * the terminator if LF follows); it and the inserted line-ending bytes of
 * the normalising mode are emitted from constant strings. */
#include "internal.h"

/* Vector scanning: SSE2 is part of x86-64; AVX2 is used when the CPU has
 * it, checked at run time (GCC and Clang only). */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define LSMTP__DATA_SSE2 1
#if defined(__x86_64__)
#include <immintrin.h>
#define LSMTP__DATA_AVX2 1
#endif
#endif

/* Where the decoder is between two input bytes. */
enum decode_state {
  ST_BOL,    /* at the start of a line (after CRLF, or at message start) */
  ST_MID,    /* inside a line */
  ST_CR,     /* a CR was just read (and emitted); LF or not decides */
  ST_DOT,    /* the line so far is "." (the dot is dropped) */
  ST_DOT_CR, /* the line so far is ".\r"; the CR is held back */
  ST_DONE    /* the terminator was read */
};

struct lsmtp_data_decoder {
  const lsmtp_allocator *alloc;
  unsigned flags;
  size_t max_line;
  uint64_t max_size;
  enum decode_state state;
  unsigned seen;
  uint64_t size;
  size_t line_len; /* octets of the current output line read so far */
};

/* Find the first byte at or after p that needs a look: CR, LF, and, until
 * they have been seen once, NUL and 8-bit bytes (stop_nul/stop_8bit). Returns
 * len when there is none. Shared with the encoder. */
size_t lsmtp__data_scan(const unsigned char *s, size_t p, size_t len,
                        int stop_nul, int stop_8bit) {
#ifdef LSMTP__DATA_SSE2
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  /* Comparing with CR a second time is how "do not stop at NUL" is said. */
  const __m128i nul = stop_nul ? _mm_setzero_si128() : cr;
  const __m128i high = _mm_set1_epi8((char)(stop_8bit ? 0x80 : 0));
  while (len - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
    __m128i hit = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
        _mm_or_si128(_mm_cmpeq_epi8(v, nul), _mm_and_si128(v, high)));
    unsigned mask = (unsigned)_mm_movemask_epi8(hit);
    if (mask) return p + (size_t)__builtin_ctz(mask);
    p += 16;
  }
#endif
  for (; p < len; p++) {
    unsigned char c = s[p];
    if (c == '\r' || c == '\n' || (c == 0 && stop_nul) ||
        (c >= 0x80 && stop_8bit))
      return p;
  }
  return len;
}

/* ---- the fast path: whole 64-byte blocks of well-formed lines ----
 *
 * A block is taken at once when it holds only well-formed text: every CR
 * followed by LF and every LF preceded by CR, no "." at a line start, and
 * (unless already seen) no NUL or 8-bit byte. Anything else is left to the
 * byte-wise state machine. The vector part finds CR/LF/dot positions as
 * bit masks (SSE2, or AVX2 when the CPU has it); the rest is shared. */

typedef struct skip_state {
  uint64_t carry_cr, carry_lf; /* the previous block ended in CR / LF */
  size_t line_len, mark;       /* as in the decoder's and encoder's loops */
  size_t max_line;
  unsigned long_line;          /* a line over max_line was seen */
} skip_state;

/* Take the block at b (= s + p) given its CR, LF and dot masks (bit i =
 * byte i; `dots` may be 0 when the caller checked dots itself). Returns 0
 * when the block is not plain well-formed lines. */
static inline int take_block(skip_state *st, const unsigned char *b, size_t p,
                             uint64_t crs, uint64_t lfs, uint64_t dots) {
  uint64_t starts = (lfs << 1) | st->carry_lf;
  if (lfs != ((crs << 1) | st->carry_cr)) return 0; /* bare CR or LF */
  if ((dots & starts) || (st->carry_lf && b[0] == '.')) return 0;
  if (st->max_line >= 64) {
    /* Only the block's first line can be too long. Written without
     * branches: whether a block holds an LF follows the text, not a
     * pattern a predictor learns. */
    uint64_t l = lfs ? lfs : (uint64_t)1 << 63;
    size_t end = p + (size_t)__builtin_ctzll(l) + 1;
    st->long_line |= (unsigned)(lfs != 0) &
                     (unsigned)(st->line_len + (end - st->mark) > st->max_line);
    size_t after_last = p + 64 - (size_t)__builtin_clzll(l);
    st->mark = lfs ? after_last : st->mark;
    st->line_len = lfs ? 0 : st->line_len;
  } else {
    for (uint64_t m = lfs; m; m &= m - 1) {
      size_t end = p + (size_t)__builtin_ctzll(m) + 1;
      if (st->line_len + (end - st->mark) > st->max_line) st->long_line = 1;
      st->line_len = 0;
      st->mark = end;
    }
  }
  st->carry_cr = crs >> 63;
  st->carry_lf = lfs >> 63;
  return 1;
}

#ifdef LSMTP__DATA_SSE2
static size_t skip_sse2(skip_state *out, const unsigned char *s, size_t p,
                        size_t len, unsigned seen) {
  skip_state local = *out, *st = &local; /* kept in registers */
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i dot = _mm_set1_epi8('.');
  /* High bit finds 8-bit bytes, "min == 0" finds NUL; once seen, neither
   * is looked for (the masks below are then 0). */
  const __m128i zero = _mm_setzero_si128();
  const __m128i high =
      _mm_set1_epi8((char)(seen & LSMTP_DATA_SAW_8BIT ? 0 : 0x80));
  const __m128i nul_on =
      _mm_set1_epi8((char)(seen & LSMTP_DATA_SAW_NUL ? 0 : 0xff));
  for (; len - p >= 64; p += 64) {
    const unsigned char *b = s + p;
#define LOAD_(off) _mm_loadu_si128((const __m128i *)(const void *)(b + (off)))
    __m128i v0 = LOAD_(0), v1 = LOAD_(16), v2 = LOAD_(32), v3 = LOAD_(48);
    __m128i lo = _mm_min_epu8(_mm_min_epu8(v0, v1), _mm_min_epu8(v2, v3));
    __m128i hi = _mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3));
    __m128i l0 = _mm_cmpeq_epi8(v0, lf), l1 = _mm_cmpeq_epi8(v1, lf);
    __m128i l2 = _mm_cmpeq_epi8(v2, lf), l3 = _mm_cmpeq_epi8(v3, lf);
    /* "The next byte is a dot", lined up with the LF masks. The last
     * vector is shifted instead of loaded so nothing past the block is
     * read; a dot after the block is the next block's (carry_lf). */
    __m128i d0 = _mm_cmpeq_epi8(LOAD_(1), dot);
    __m128i d1 = _mm_cmpeq_epi8(LOAD_(17), dot);
    __m128i d2 = _mm_cmpeq_epi8(LOAD_(33), dot);
    __m128i d3 = _mm_srli_si128(_mm_cmpeq_epi8(v3, dot), 1);
#undef LOAD_
    __m128i bad = _mm_or_si128(
        _mm_or_si128(_mm_and_si128(_mm_cmpeq_epi8(lo, zero), nul_on),
                     _mm_and_si128(hi, high)),
        _mm_or_si128(
            _mm_or_si128(_mm_and_si128(l0, d0), _mm_and_si128(l1, d1)),
            _mm_or_si128(_mm_and_si128(l2, d2), _mm_and_si128(l3, d3))));
    if (_mm_movemask_epi8(bad)) break;
#define MASK_(v) ((uint64_t)(unsigned)_mm_movemask_epi8(v))
    uint64_t crs = MASK_(_mm_cmpeq_epi8(v0, cr)) |
                   MASK_(_mm_cmpeq_epi8(v1, cr)) << 16 |
                   MASK_(_mm_cmpeq_epi8(v2, cr)) << 32 |
                   MASK_(_mm_cmpeq_epi8(v3, cr)) << 48;
    uint64_t lfs = MASK_(l0) | MASK_(l1) << 16 | MASK_(l2) << 32 |
                   MASK_(l3) << 48;
#undef MASK_
    if (!take_block(st, b, p, crs, lfs, 0)) break;
  }
  *out = local;
  return p;
}
#endif

#ifdef LSMTP__DATA_AVX2
__attribute__((target("avx2"))) static size_t
skip_avx2(skip_state *out, const unsigned char *s, size_t p, size_t len,
          unsigned seen) {
  skip_state local = *out, *st = &local; /* kept in registers */
  const __m256i cr = _mm256_set1_epi8('\r');
  const __m256i lf = _mm256_set1_epi8('\n');
  const __m256i dot = _mm256_set1_epi8('.');
  const __m256i high =
      _mm256_set1_epi8((char)(seen & LSMTP_DATA_SAW_8BIT ? 0 : 0x80));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i nul_on =
      _mm256_set1_epi8((char)(seen & LSMTP_DATA_SAW_NUL ? 0 : 0xff));
  for (; len - p >= 64; p += 64) {
    const unsigned char *b = s + p;
    __m256i v0 = _mm256_loadu_si256((const __m256i *)(const void *)b);
    __m256i v1 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 32));
    __m256i bad = _mm256_or_si256(
        _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(v0, v1), zero),
                         nul_on),
        _mm256_and_si256(_mm256_or_si256(v0, v1), high));
    if (_mm256_movemask_epi8(bad)) break;
#define MASK_(v) ((uint64_t)(unsigned)_mm256_movemask_epi8(v))
    uint64_t crs = MASK_(_mm256_cmpeq_epi8(v0, cr)) |
                   MASK_(_mm256_cmpeq_epi8(v1, cr)) << 32;
    uint64_t lfs = MASK_(_mm256_cmpeq_epi8(v0, lf)) |
                   MASK_(_mm256_cmpeq_epi8(v1, lf)) << 32;
    uint64_t dots = MASK_(_mm256_cmpeq_epi8(v0, dot)) |
                    MASK_(_mm256_cmpeq_epi8(v1, dot)) << 32;
#undef MASK_
    if (!take_block(st, b, p, crs, lfs, dots)) break;
  }
  *out = local;
  return p;
}
#endif

/* Skip whole blocks of well-formed lines from p. Line lengths are checked
 * on the way: *line_len counts the current line up to *mark, as in the
 * loops of the decoder and encoder; a line over max_line sets
 * LSMTP_DATA_SAW_LONG_LINE in *seen_out. Must be entered inside a line,
 * just after a byte that is not an unresolved CR, and with s[p] not part
 * of a CRLF. Returns the position reached: again inside a line after a
 * non-CR byte (*at_bol = 0), or at the start of a line (*at_bol = 1).
 * impl: 0 = the best the CPU has, 1 = SSE2 only, 2 = no vector code (skips
 * nothing); all give the same result, which the tests check.
 * Shared with the encoder. */
size_t lsmtp__data_skip_lines(const unsigned char *s, size_t p, size_t len,
                              unsigned seen, size_t max_line,
                              size_t *line_len, size_t *mark,
                              unsigned *seen_out, int *at_bol, int impl) {
  skip_state st = {0, 0, *line_len, *mark, max_line, 0};
#if defined(LSMTP__DATA_AVX2)
  if (impl == 0 && __builtin_cpu_supports("avx2"))
    p = skip_avx2(&st, s, p, len, seen);
  else if (impl != 2)
    p = skip_sse2(&st, s, p, len, seen);
#elif defined(LSMTP__DATA_SSE2)
  if (impl != 2) p = skip_sse2(&st, s, p, len, seen);
#else
  (void)s; (void)len; (void)seen; (void)impl;
#endif
  *line_len = st.line_len;
  *mark = st.mark;
  if (st.long_line) *seen_out |= LSMTP_DATA_SAW_LONG_LINE;
  *at_bol = 0;
  if (st.carry_cr) return p - 1; /* leave that CR to the caller */
  *at_bol = st.carry_lf != 0;
  return p;
}

int lsmtp_data_decoder_new(lsmtp_data_decoder **out,
                           const lsmtp_allocator *alloc, unsigned flags,
                           size_t max_line, uint64_t max_size) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (flags & ~LSMTP_DATA_NORMALIZE_EOL) return LSMTP_ERR_INVALID;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_data_decoder *d = lsmtp__calloc(alloc, 1, sizeof *d);
  if (!d) return LSMTP_ERR_NOMEM;
  d->alloc = alloc;
  d->flags = flags;
  d->max_line = max_line ? max_line : LSMTP_DATA_DEFAULT_MAX_LINE;
  d->max_size = max_size;
  lsmtp_data_decoder_reset(d);
  *out = d;
  return LSMTP_OK;
}

void lsmtp_data_decoder_del(lsmtp_data_decoder *d) {
  if (d) lsmtp__free(d->alloc, d);
}

void lsmtp_data_decoder_reset(lsmtp_data_decoder *d) {
  if (!d) return;
  d->state = ST_BOL;
  d->seen = 0;
  d->size = 0;
  d->line_len = 0;
}

unsigned lsmtp_data_decoder_seen(const lsmtp_data_decoder *d) {
  return d ? d->seen : 0;
}

uint64_t lsmtp_data_decoder_size(const lsmtp_data_decoder *d) {
  return d ? d->size : 0;
}

/* Hand n output octets to the host, counting them; past max_size they are
 * counted but no longer handed out. Returns 0, LSMTP_PAUSED or a negative
 * status from the callback. */
static int put(lsmtp_data_decoder *d, const char *p, size_t n,
               lsmtp_span_cb emit, void *ud) {
  if (n == 0) return 0;
  uint64_t before = d->size;
  d->size += n;
  if (d->max_size && d->size > d->max_size) {
    d->seen |= LSMTP_DATA_OVER_SIZE;
    if (before >= d->max_size) return 0;
    n = (size_t)(d->max_size - before);
  }
  int rc = emit(ud, p, n);
  if (rc == LSMTP_PAUSED || rc < 0) return rc;
  return 0; /* other values mean "go on" */
}

/* A line of the output ended with `n` octets; flag it when too long. */
static void line_done(lsmtp_data_decoder *d, size_t n) {
  if (n > d->max_line) d->seen |= LSMTP_DATA_SAW_LONG_LINE;
  d->line_len = 0;
}

/* Emit helpers for the loop below: on pause or error leave with *consumed
 * at `at`, the state already set for resuming there. */
#define PUT_OR_LEAVE(ptr, n, at)                                              \
  do {                                                                        \
    int put_rc_ = put(d, (ptr), (n), emit, ud);                               \
    if (put_rc_ != 0) {                                                       \
      d->line_len += (at) - mark;                                             \
      *consumed = (at);                                                       \
      return put_rc_;                                                         \
    }                                                                         \
  } while (0)

int lsmtp_data_decode(lsmtp_data_decoder *d, const char *in, size_t len,
                      size_t *consumed, lsmtp_span_cb emit, void *ud) {
  if (consumed) *consumed = 0;
  if (!d || !consumed || !emit || (!in && len)) return LSMTP_ERR_INVALID;
  if (d->state == ST_DONE) return LSMTP_DONE;
  if (len == 0) return LSMTP_INCOMPLETE; /* (in may be NULL then) */
  const unsigned char *s = (const unsigned char *)in;
  const int normalize = (d->flags & LSMTP_DATA_NORMALIZE_EOL) != 0;
  size_t p = 0;    /* next input byte to look at */
  size_t run = 0;  /* first input byte not yet emitted; [run, p) is output */
  size_t mark = 0; /* d->line_len counts the current line up to here */

  for (;;) {
    switch (d->state) {
    case ST_BOL:
      if (p == len) goto used_all;
      if (s[p] != '.') {
        d->state = ST_MID;
        break;
      }
      /* A leading dot is dropped: stuffing, or the start of the end. */
      PUT_OR_LEAVE(in + run, p - run, p);
      p++;
      run = mark = p;
      d->state = ST_DOT;
      break;

    case ST_DOT:
      if (p == len) goto used_all;
      if (s[p] == '\r') {
        p++;
        run = mark = p; /* hold the CR back until we know what follows */
        d->state = ST_DOT_CR;
      } else {
        d->state = ST_MID;
      }
      break;

    case ST_DOT_CR:
      if (p == len) goto used_all;
      if (s[p] == '\n') {
        d->state = ST_DONE;
        *consumed = p + 1;
        return LSMTP_DONE;
      }
      /* ".\r" and something else: the line is "\r..." after unstuffing. */
      d->seen |= LSMTP_DATA_SAW_BARE_CR;
      d->state = ST_MID;
      if (normalize) {
        line_done(d, 2);
        PUT_OR_LEAVE("\r\n", 2, p);
      } else {
        d->line_len += 1;
        PUT_OR_LEAVE("\r", 1, p);
      }
      break;

    case ST_CR: /* the CR before p is already in the output */
      if (p == len) goto used_all;
      if (s[p] == '\n') {
        p++;
        line_done(d, d->line_len + (p - mark));
        mark = p;
        d->state = ST_BOL;
        break;
      }
      d->seen |= LSMTP_DATA_SAW_BARE_CR;
      if (normalize) {
        PUT_OR_LEAVE(in + run, p - run, p); /* resumes here, still ST_CR */
        run = p;
        d->state = ST_MID;
        line_done(d, d->line_len + (p - mark) + 1);
        mark = p;
        PUT_OR_LEAVE("\n", 1, p);
      }
      d->state = ST_MID;
      break;

    case ST_MID:
      for (;;) {
        if (len - p >= 128) {
          int at_bol;
          p = lsmtp__data_skip_lines(s, p, len, d->seen, d->max_line,
                                     &d->line_len, &mark, &d->seen, &at_bol,
                                     0);
          if (at_bol) {
            d->state = ST_BOL;
            break;
          }
        }
        p = lsmtp__data_scan(s, p, len, !(d->seen & LSMTP_DATA_SAW_NUL),
                             !(d->seen & LSMTP_DATA_SAW_8BIT));
        if (p == len) goto used_all;
        unsigned char c = s[p];
        if (c == '\r') {
          /* The common case stays in this loop: CRLF, then a line that
           * does not start with a dot. */
          if (len - p > 2 && s[p + 1] == '\n' && s[p + 2] != '.') {
            p += 2;
            size_t n = d->line_len + (p - mark);
            if (n > d->max_line) d->seen |= LSMTP_DATA_SAW_LONG_LINE;
            d->line_len = 0;
            mark = p;
            continue;
          }
          p++;
          d->state = ST_CR;
          break;
        }
        if (c == '\n') { /* a CR before it would have been handled above */
          d->seen |= LSMTP_DATA_SAW_BARE_LF;
          if (normalize) {
            PUT_OR_LEAVE(in + run, p - run, p);
            line_done(d, d->line_len + (p - mark) + 2);
            run = mark = ++p;
            PUT_OR_LEAVE("\r\n", 2, p);
          } else {
            p++;
          }
          continue;
        }
        d->seen |= c ? LSMTP_DATA_SAW_8BIT : LSMTP_DATA_SAW_NUL;
        p++;
      }
      break;

    case ST_DONE:
      *consumed = p;
      return LSMTP_DONE;
    }
  }

used_all:
  d->line_len += len - mark;
  if (d->line_len > d->max_line) d->seen |= LSMTP_DATA_SAW_LONG_LINE;
  mark = len;
  PUT_OR_LEAVE(in + run, len - run, len);
  *consumed = len;
  return LSMTP_INCOMPLETE;
}
