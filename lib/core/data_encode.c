/* The DATA encoder (RFC 5321 §4.5.2): adds dot-stuffing, makes every line
 * end in CRLF and appends the terminator, streaming the message through
 * without copying it.
 *
 * Every bare CR and bare LF becomes CRLF, so what goes on the wire has one
 * notion of "line", the same one the receiving decoder uses; a line that
 * starts with "." gets another one. Output spans point into the input;
 * inserted bytes come from constant strings. A CR at the end of a chunk is
 * emitted at once (it is output whatever follows); the next chunk decides
 * whether its LF is still to come or a "\n" must be inserted. */
#include "internal.h"


struct lsmtp_data_encoder {
  const lsmtp_allocator *alloc;
  unsigned seen;
  size_t line_len;         /* octets of the current line so far */
  unsigned char at_bol;    /* the next byte starts a line */
  unsigned char after_cr;  /* the last byte was a CR, already emitted */
  unsigned char finished;  /* encode_finish was called */
};

int lsmtp_data_encoder_new(lsmtp_data_encoder **out,
                           const lsmtp_allocator *alloc) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_data_encoder *e = lsmtp__calloc(alloc, 1, sizeof *e);
  if (!e) return LSMTP_ERR_NOMEM;
  e->alloc = alloc;
  lsmtp_data_encoder_reset(e);
  *out = e;
  return LSMTP_OK;
}

void lsmtp_data_encoder_del(lsmtp_data_encoder *e) {
  if (e) lsmtp__free(e->alloc, e);
}

void lsmtp_data_encoder_reset(lsmtp_data_encoder *e) {
  if (!e) return;
  e->seen = 0;
  e->line_len = 0;
  e->at_bol = 1;
  e->after_cr = 0;
  e->finished = 0;
}

unsigned lsmtp_data_encoder_seen(const lsmtp_data_encoder *e) {
  return e ? e->seen : 0;
}

/* Encoding never pauses, so only a negative answer of the callback counts. */
static int put(const char *p, size_t n, lsmtp_span_cb emit, void *ud) {
  if (n == 0) return 0;
  int rc = emit(ud, p, n);
  return rc < 0 ? rc : 0;
}

#define PUT_OR_FAIL(ptr, n)                                                   \
  do {                                                                        \
    int put_rc_ = put((ptr), (n), emit, ud);                                  \
    if (put_rc_ != 0) return put_rc_;                                         \
  } while (0)

/* A line ended with n octets (CRLF included, stuffing dot not). */
static void line_done(lsmtp_data_encoder *e, size_t n) {
  if (n > LSMTP_DATA_DEFAULT_MAX_LINE) e->seen |= LSMTP_DATA_SAW_LONG_LINE;
  e->line_len = 0;
  e->at_bol = 1;
}

int lsmtp_data_encode(lsmtp_data_encoder *e, const char *in, size_t len,
                      lsmtp_span_cb emit, void *ud) {
  if (!e || !emit || (!in && len)) return LSMTP_ERR_INVALID;
  if (e->finished) return LSMTP_ERR_STATE;
  if (len == 0) return LSMTP_OK; /* (in may be NULL then) */
  const unsigned char *s = (const unsigned char *)in;
  size_t p = 0;    /* next input byte to look at */
  size_t run = 0;  /* first input byte not yet emitted */
  size_t mark = 0; /* e->line_len counts the current line up to here */

  if (e->after_cr) {
    e->after_cr = 0;
    if (s[0] == '\n') {
      p = 1; /* the CRLF is complete; the LF is part of the first run */
    } else {
      e->seen |= LSMTP_DATA_SAW_BARE_CR;
      PUT_OR_FAIL("\n", 1);
    }
    line_done(e, e->line_len + 1);
    mark = p;
  }

  while (p < len) {
    if (e->at_bol) {
      e->at_bol = 0;
      if (s[p] == '.') {
        PUT_OR_FAIL(in + run, p - run);
        run = p; /* the line's own dot follows the inserted one */
        PUT_OR_FAIL(".", 1);
      }
    }
    if (len - p >= 128) {
      int at_bol;
      p = lsmtp__data_skip_lines(s, p, len, e->seen,
                                 LSMTP_DATA_DEFAULT_MAX_LINE, &e->line_len,
                                 &mark, &e->seen, &at_bol, 0);
      if (at_bol) {
        e->at_bol = 1;
        continue;
      }
    }
    p = lsmtp__data_scan(s, p, len, !(e->seen & LSMTP_DATA_SAW_NUL),
                         !(e->seen & LSMTP_DATA_SAW_8BIT));
    if (p == len) break;
    unsigned char c = s[p];
    if (c == '\r') {
      if (p + 1 == len) { /* LF or not: the next chunk tells */
        p++;
        e->after_cr = 1;
        break;
      }
      if (s[p + 1] == '\n') {
        p += 2;
        line_done(e, e->line_len + (p - mark));
      } else {
        e->seen |= LSMTP_DATA_SAW_BARE_CR;
        p++;
        PUT_OR_FAIL(in + run, p - run);
        run = p;
        line_done(e, e->line_len + (p - mark) + 1);
        PUT_OR_FAIL("\n", 1);
      }
      mark = p;
    } else if (c == '\n') {
      e->seen |= LSMTP_DATA_SAW_BARE_LF;
      PUT_OR_FAIL(in + run, p - run);
      line_done(e, e->line_len + (p - mark) + 2);
      run = mark = ++p;
      PUT_OR_FAIL("\r\n", 2);
    } else {
      e->seen |= c ? LSMTP_DATA_SAW_8BIT : LSMTP_DATA_SAW_NUL;
      p++;
    }
  }
  e->line_len += len - mark;
  if (e->line_len > LSMTP_DATA_DEFAULT_MAX_LINE)
    e->seen |= LSMTP_DATA_SAW_LONG_LINE;
  return put(in + run, len - run, emit, ud);
}

int lsmtp_data_encode_finish(lsmtp_data_encoder *e, lsmtp_span_cb emit,
                             void *ud) {
  if (!e || !emit) return LSMTP_ERR_INVALID;
  if (e->finished) return LSMTP_ERR_STATE;
  e->finished = 1;
  if (e->after_cr) { /* a message ending in a bare CR */
    e->after_cr = 0;
    e->seen |= LSMTP_DATA_SAW_BARE_CR;
    line_done(e, e->line_len + 1);
    PUT_OR_FAIL("\n.\r\n", 4);
  } else if (!e->at_bol) {
    line_done(e, e->line_len + 2);
    PUT_OR_FAIL("\r\n.\r\n", 5);
  } else {
    PUT_OR_FAIL(".\r\n", 3);
  }
  return LSMTP_OK;
}
