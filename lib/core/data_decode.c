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

/* ---- the fast path: runs of well-formed lines, 64 bytes at a time ----
 *
 * Byte i of a block is checked together with the two bytes after it (the
 * loads at +1 and +2 reach into the next block): a CR must have an LF at
 * i+1 and an LF a CR at i-1, which is one test, "CR at i <=> LF at i+1";
 * a CRLF must not be followed by "." ("CR at i and '.' at i+2"); and,
 * until seen once, no byte may be NUL or 8-bit. As every block also tests
 * the pairs reaching into the next one, nothing but the position passes
 * from block to block, and the line ending with the CR at i ends at i+2
 * in that block's count. The vector part gives a block's problems and
 * CRs as two bit masks (bit i = byte i; SSE2, or AVX2 when the CPU has
 * it); the rest is shared. A run stops at the first problem, taking the
 * text before it, and the byte-wise state machine deals with the problem.
 * It is one test and branch per 64 bytes, and the line lengths come from
 * bit positions, so the common case has no per-line work. */

typedef struct run_state {
  /* The block (its start, and its line ends as in count_lines) of the
   * last line end; at first made up so that the current line starts where
   * the caller's started: mark - line_len (modulo SIZE_MAX + 1, as that
   * line may have started in an earlier chunk). */
  size_t last_p;
  uint64_t last_ends;
  size_t near; /* a line ending within this many octets after last_p
                * cannot be too long */
  size_t max_line;
  unsigned long_line; /* a line over max_line was seen */
  uint64_t bad, crs;  /* the masks of the block where the run stopped;
                       * bad == 0: it stopped at the end of the input */
} run_state;

static void run_init(run_state *st, size_t line_start, size_t max_line) {
  st->last_p = line_start - 2;
  st->last_ends = 1;
  /* A line ending in block p starts after the last end, at or after
   * last_p + 2, and ends at p + 65 at the latest. */
  st->near = max_line >= 64 ? max_line - 63 : 0;
  st->max_line = max_line;
  st->long_line = 0;
  st->bad = st->crs = 0;
}

/* Where the current line started. */
static inline size_t run_line_start(const run_state *st) {
  return st->last_p + 65 - (size_t)__builtin_clzll(st->last_ends);
}

/* Count the lines a block ends: bit i of `ends` is a CR at p + i whose LF
 * follows, so a line ends at p + i + 2. Line lengths are only worked out
 * when a line may be too long: while lines are short, a block costs a
 * compare and two conditional moves. */
static inline void count_lines(run_state *st, size_t p, uint64_t ends) {
  if (p - st->last_p > st->near) {
    size_t line_start = run_line_start(st);
    for (uint64_t m = ends; m; m &= m - 1) {
      size_t end = p + (size_t)__builtin_ctzll(m) + 2;
      if (end - line_start > st->max_line) st->long_line = 1;
      line_start = end;
    }
  }
  st->last_p = ends ? p : st->last_p;
  st->last_ends = ends ? ends : st->last_ends;
}

#ifdef LSMTP__DATA_SSE2
#define LSMTP__ALWAYS_INLINE inline __attribute__((always_inline))

/* Bytes that are a problem until seen once, as "signed (byte ^ flip) <
 * limit": NUL and 8-bit are the bytes below 1, 8-bit alone those below 0,
 * none those below -128; NUL alone is the only byte that ^ 0x80 gives
 * -128. Only that case needs the ^, so the loops below are made twice,
 * with and without it (the compiler drops the unused one's code). */
static int byte_test(unsigned seen, char *limit) {
  int nul = !(seen & LSMTP_DATA_SAW_NUL), high = !(seen & LSMTP_DATA_SAW_8BIT);
  *limit = (char)(nul ? (high ? 1 : -127) : (high ? 0 : -128));
  return nul && !high;
}

static LSMTP__ALWAYS_INLINE size_t run_sse2_loop(run_state *st,
                                                 const unsigned char *s,
                                                 size_t p, size_t len,
                                                 char limit_c, int flip) {
  const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
  const __m128i dot = _mm_set1_epi8('.');
  const __m128i limit = _mm_set1_epi8(limit_c);
  const __m128i high = _mm_set1_epi8((char)(flip ? 0x80 : 0));
  for (const size_t stop = len - 66; p <= stop; p += 64) {
    const unsigned char *b = s + p;
#define LOAD_(off) _mm_loadu_si128((const __m128i *)(const void *)(b + (off)))
#define QUARTER_(k, c, bad)                                                   \
  __m128i c = _mm_cmpeq_epi8(LOAD_(16 * (k)), cr);                            \
  __m128i bad = _mm_or_si128(                                                 \
      _mm_or_si128(_mm_xor_si128(c, _mm_cmpeq_epi8(LOAD_(16 * (k) + 1), lf)), \
                   _mm_and_si128(c, _mm_cmpeq_epi8(LOAD_(16 * (k) + 2), dot))), \
      _mm_cmpgt_epi8(limit, flip ? _mm_xor_si128(LOAD_(16 * (k)), high)      \
                                 : LOAD_(16 * (k))))
    QUARTER_(0, c0, bad0);
    QUARTER_(1, c1, bad1);
    QUARTER_(2, c2, bad2);
    QUARTER_(3, c3, bad3);
#undef QUARTER_
#undef LOAD_
#define MASK_(v) ((uint64_t)(unsigned)_mm_movemask_epi8(v))
    uint64_t crs = MASK_(c0) | MASK_(c1) << 16 | MASK_(c2) << 32 |
                   MASK_(c3) << 48;
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(bad0, bad1),
                                       _mm_or_si128(bad2, bad3)))) {
      st->bad = MASK_(bad0) | MASK_(bad1) << 16 | MASK_(bad2) << 32 |
                MASK_(bad3) << 48;
      st->crs = crs;
      break;
    }
#undef MASK_
    count_lines(st, p, crs);
  }
  return p;
}

/* Take blocks from p while they are well-formed and 66 bytes are left;
 * returns where it stopped, with the masks of a block it stopped at in
 * out->bad and out->crs. */
static size_t run_sse2(run_state *out, const unsigned char *s, size_t p,
                       size_t len, unsigned seen) {
  run_state st = *out; /* kept in registers */
  char limit;
  if (byte_test(seen, &limit))
    p = run_sse2_loop(&st, s, p, len, limit, 1);
  else
    p = run_sse2_loop(&st, s, p, len, limit, 0);
  *out = st;
  return p;
}
#endif

#ifdef LSMTP__DATA_AVX2
__attribute__((target("avx2"))) static LSMTP__ALWAYS_INLINE size_t
run_avx2_loop(run_state *st, const unsigned char *s, size_t p, size_t len,
              char limit_c, int flip) {
  const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
  const __m256i dot = _mm256_set1_epi8('.');
  const __m256i limit = _mm256_set1_epi8(limit_c);
  const __m256i high = _mm256_set1_epi8((char)(flip ? 0x80 : 0));
  for (const size_t stop = len - 66; p <= stop; p += 64) {
    const unsigned char *b = s + p;
#define LOAD_(off)                                                            \
  _mm256_loadu_si256((const __m256i *)(const void *)(b + (off)))
#define HALF_(k, c, bad)                                                      \
  __m256i c = _mm256_cmpeq_epi8(LOAD_(32 * (k)), cr);                         \
  __m256i bad = _mm256_or_si256(                                              \
      _mm256_or_si256(                                                        \
          _mm256_xor_si256(c, _mm256_cmpeq_epi8(LOAD_(32 * (k) + 1), lf)),    \
          _mm256_and_si256(c, _mm256_cmpeq_epi8(LOAD_(32 * (k) + 2), dot))),  \
      _mm256_cmpgt_epi8(limit, flip ? _mm256_xor_si256(LOAD_(32 * (k)), high) \
                                    : LOAD_(32 * (k))))
    HALF_(0, c0, bad0);
    HALF_(1, c1, bad1);
#undef HALF_
#undef LOAD_
#define MASK_(v) ((uint64_t)(unsigned)_mm256_movemask_epi8(v))
    uint64_t crs = MASK_(c0) | MASK_(c1) << 32;
    __m256i bad = _mm256_or_si256(bad0, bad1);
    if (!_mm256_testz_si256(bad, bad)) {
      st->bad = MASK_(bad0) | MASK_(bad1) << 32;
      st->crs = crs;
      break;
    }
#undef MASK_
    count_lines(st, p, crs);
  }
  return p;
}

/* As run_sse2, 32 bytes at a time. */
__attribute__((target("avx2"))) static size_t
run_avx2(run_state *out, const unsigned char *s, size_t p, size_t len,
         unsigned seen) {
  run_state st = *out; /* kept in registers */
  char limit;
  if (byte_test(seen, &limit))
    p = run_avx2_loop(&st, s, p, len, limit, 1);
  else
    p = run_avx2_loop(&st, s, p, len, limit, 0);
  *out = st;
  return p;
}
#endif

/* Skip a run of well-formed lines from p. Line lengths are checked on the
 * way: *line_len counts the current line up to *mark, as in the loops of
 * the decoder and encoder; a line over max_line sets
 * LSMTP_DATA_SAW_LONG_LINE in *seen_out. Must be entered inside a line (a
 * dot at p is not looked at), just after a byte that is not an unresolved
 * CR. Returns the position reached: at the start of a line, after a CRLF
 * (*at_bol = 1), or else inside a line after a byte that is neither CR nor
 * LF, or where it began (*at_bol = 0). It stops early only where the bytes
 * at the returned position need the byte-wise code: a line starting with
 * ".", a bare CR or LF, or a NUL or 8-bit byte not seen before; otherwise
 * it goes on while 66 bytes are left.
 * impl: 0 = the best the CPU has, 1 = SSE2 only, 2 = no vector code (skips
 * nothing); 0 and 1 give the same result, which the tests check.
 * Shared with the encoder. */
size_t lsmtp__data_skip_lines(const unsigned char *s, size_t p, size_t len,
                              unsigned seen, size_t max_line,
                              size_t *line_len, size_t *mark,
                              unsigned *seen_out, int *at_bol, int impl) {
  *at_bol = 0;
  /* A LF here is a bare one (a CRLF's LF would follow an unresolved CR);
   * the blocks only look at LFs after their first byte. */
  if (len - p < 66 || s[p] == '\n') return p;
  const size_t start0 = *mark - *line_len;
  run_state st;
  run_init(&st, start0, max_line);
  size_t q = p; /* the start of the block where the run stopped */
#if defined(LSMTP__DATA_AVX2)
  if (impl == 0 && __builtin_cpu_supports("avx2"))
    q = run_avx2(&st, s, p, len, seen);
  else if (impl != 2)
    q = run_sse2(&st, s, p, len, seen);
#elif defined(LSMTP__DATA_SSE2)
  if (impl != 2) q = run_sse2(&st, s, p, len, seen);
#else
  (void)seen; (void)impl;
#endif
  size_t end = q;
  if (st.bad) {
    /* The first problem is at q + f; all before it is well-formed. */
    unsigned f = (unsigned)__builtin_ctzll(st.bad);
    uint64_t ends = st.crs & (((uint64_t)1 << f) - 1);
    const unsigned char *b = s + q;
    if (b[f] == '\n') { /* a CRLF's LF, and then a bare LF */
      end = q + f + 1;
    } else if (b[f] == '\r' && b[f + 1] == '\n') { /* CRLF "." */
      ends |= (uint64_t)1 << f;
      end = q + f + 2;
    } else { /* a bare CR, a byte before a bare LF, a NUL or 8-bit byte */
      end = q + f;
    }
    count_lines(&st, q, ends);
  } else if (q > p && s[q - 1] == '\r') {
    end = q + 1; /* the last block took the LF after its last byte, too */
  }
  /* Every LF taken is a CRLF's. */
  *at_bol = end > p && s[end - 1] == '\n';
  if (run_line_start(&st) != start0) { /* a line ended */
    *mark = run_line_start(&st);
    *line_len = 0;
  }
  if (st.long_line) *seen_out |= LSMTP_DATA_SAW_LONG_LINE;
  return end;
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
