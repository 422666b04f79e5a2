/* SMTP replies (RFC 5321 §4.2, enhanced codes RFC 3463): the streaming
 * parser a client reads them with, and the formatter a server writes them
 * with. The parser is strict (CRLF only, no NUL, one code per reply) because
 * a client that reads replies loosely can be made to match the wrong reply
 * to a pipelined command. The formatter can never emit more lines than the
 * host asked for, whatever bytes the host's text holds. */
#include "internal.h"

struct lsmtp_reply_parser {
  const lsmtp_allocator *alloc;
  lsmtp__line_reader reader;
  size_t max_lines;
  /* The reply being collected. */
  int code; /* 0 before its first line */
  size_t lines;
  lsmtp_enhanced enhanced;
  lsmtp__buf text; /* lines joined by "\n", NUL kept past text.len */
  /* The last complete reply, handed out until the next feed. */
  int done;
  int fatal;
  lsmtp_reply reply;
};

int lsmtp_reply_parser_new(lsmtp_reply_parser **out,
                           const lsmtp_allocator *alloc, size_t max_line,
                           size_t max_lines) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_reply_parser *p = lsmtp__calloc(alloc, 1, sizeof *p);
  if (!p) return LSMTP_ERR_NOMEM;
  p->alloc = alloc;
  lsmtp__line_init(&p->reader, alloc,
                   max_line ? max_line : LSMTP_REPLY_DEFAULT_MAX_LINE);
  p->max_lines = max_lines ? max_lines : LSMTP_REPLY_DEFAULT_MAX_LINES;
  lsmtp__buf_init(&p->text, alloc);
  *out = p;
  return LSMTP_OK;
}

void lsmtp_reply_parser_del(lsmtp_reply_parser *p) {
  if (!p) return;
  lsmtp__line_free(&p->reader);
  lsmtp__buf_free(&p->text);
  lsmtp__free(p->alloc, p);
}

const lsmtp_reply *lsmtp_reply_parser_get(const lsmtp_reply_parser *p) {
  return (p && p->done) ? &p->reply : NULL;
}

/* ---- enhanced status codes ---- */

/* 1 to 3 digits; returns how many were used, 0 when none. A fourth digit
 * is left for the caller, whose delimiter check then rejects it. */
static size_t parse_number(const char *s, size_t len, unsigned short *out) {
  size_t n = 0;
  unsigned v = 0;
  while (n < len && n < 3 && lsmtp__is_digit((unsigned char)s[n])) {
    v = v * 10 + (unsigned)(s[n] - '0');
    n++;
  }
  *out = (unsigned short)v;
  return n;
}

/* class "." subject "." detail, class 2, 4 or 5 and the others 1-3 digits
 * (RFC 3463 §2). The code must end the input or be followed by a space, so
 * "2.1.0ok" or "2.1.0.1" are not mistaken for codes. */
int lsmtp_enhanced_parse(const char *s, size_t len, lsmtp_enhanced *out,
                         size_t *used) {
  lsmtp_enhanced e;
  size_t i = 0, n;
  if (!s || len < 5) return LSMTP_ERR_SYNTAX;
  if (s[0] != '2' && s[0] != '4' && s[0] != '5') return LSMTP_ERR_SYNTAX;
  e.cls = (unsigned short)(s[0] - '0');
  if (s[1] != '.') return LSMTP_ERR_SYNTAX;
  i = 2;
  n = parse_number(s + i, len - i, &e.subject);
  if (n == 0) return LSMTP_ERR_SYNTAX;
  i += n;
  if (i >= len || s[i] != '.') return LSMTP_ERR_SYNTAX;
  i++;
  n = parse_number(s + i, len - i, &e.detail);
  if (n == 0) return LSMTP_ERR_SYNTAX;
  i += n;
  if (i < len && s[i] != ' ') return LSMTP_ERR_SYNTAX;
  if (out) *out = e;
  if (used) *used = i;
  return LSMTP_OK;
}

/* ---- the parser ---- */

static int valid_code_digits(const char *s) {
  return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '5' &&
         s[2] >= '0' && s[2] <= '9';
}

/* One complete line, CRLF included. Returns LSMTP_OK (more lines follow),
 * LSMTP_DONE (that was the last line) or an error. */
static int take_line(lsmtp_reply_parser *p, const char *line, size_t len) {
  size_t n = len - 2; /* without the CRLF */
  for (size_t i = 0; i < n; i++) {
    if (line[i] == '\0') return LSMTP_ERR_NUL;
    if (line[i] == '\r' || line[i] == '\n') return LSMTP_ERR_BARE_EOL;
  }
  if (n < 3 || !valid_code_digits(line)) return LSMTP_ERR_BAD_REPLY;
  int last;
  if (n == 3 || line[3] == ' ')
    last = 1;
  else if (line[3] == '-')
    last = 0;
  else
    return LSMTP_ERR_BAD_REPLY;
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (p->code != 0 && code != p->code) return LSMTP_ERR_BAD_REPLY;
  if (p->lines >= p->max_lines) return LSMTP_ERR_TOO_LONG;

  const char *text = n > 3 ? line + 4 : line + n;
  size_t text_len = n > 3 ? n - 4 : 0;
  lsmtp_enhanced e;
  size_t used;
  /* A reply uses enhanced codes when its first line starts with one of its
   * class (RFC 2034 §3); then each line's code is stripped. A code-like
   * start of a later line of a reply without one is text. */
  if ((p->lines == 0 || p->enhanced.cls != 0) &&
      lsmtp_enhanced_parse(text, text_len, &e, &used) == LSMTP_OK &&
      e.cls == (unsigned short)(line[0] - '0')) {
    if (p->lines == 0) p->enhanced = e;
    if (used < text_len) used++; /* the space after the code */
    text += used;
    text_len -= used;
  }
  /* Room for the "\n" joiner and the final NUL as well. */
  int rc = lsmtp__buf_reserve(&p->text, text_len + 2);
  if (rc != LSMTP_OK) return rc;
  if (p->lines > 0) p->text.data[p->text.len++] = '\n';
  if (text_len) memcpy(p->text.data + p->text.len, text, text_len);
  p->text.len += text_len;
  p->text.data[p->text.len] = '\0';
  p->code = code;
  p->lines++;
  return last ? LSMTP_DONE : LSMTP_OK;
}

static void start_reply(lsmtp_reply_parser *p) {
  p->done = 0;
  p->code = 0;
  p->lines = 0;
  p->enhanced.cls = p->enhanced.subject = p->enhanced.detail = 0;
  p->text.len = 0;
}

int lsmtp_reply_parser_feed(lsmtp_reply_parser *p, const char *data,
                            size_t len, size_t *consumed) {
  if (!consumed) return LSMTP_ERR_INVALID;
  *consumed = 0;
  if (!p || (!data && len)) return LSMTP_ERR_INVALID;
  if (p->fatal) return LSMTP_ERR_FATAL;
  if (p->done) start_reply(p);
  size_t off = 0;
  int rc = LSMTP_INCOMPLETE;
  while (off < len) {
    size_t used;
    const char *line;
    size_t line_len;
    rc = lsmtp__line_feed(&p->reader, data + off, len - off, &used, &line,
                          &line_len);
    off += used;
    if (rc == LSMTP_INCOMPLETE) {
      /* Fail as soon as a line is known to be overlong rather than wait
       * for a CRLF a hostile server may never send. */
      if (p->reader.discarding) rc = LSMTP_ERR_TOO_LONG;
      break;
    }
    if (rc != LSMTP_OK) break;
    rc = take_line(p, line, line_len);
    if (rc != LSMTP_OK) break;
  }
  *consumed = off;
  if (rc == LSMTP_DONE) {
    p->done = 1;
    p->reply.code = p->code;
    p->reply.enhanced = p->enhanced;
    p->reply.text = p->text.data ? p->text.data : "";
    p->reply.text_len = p->text.len;
    p->reply.lines = p->lines;
    return LSMTP_DONE;
  }
  if (rc < 0) {
    p->fatal = 1;
    return rc;
  }
  return LSMTP_INCOMPLETE;
}

/* ---- the formatter ---- */

/* snprintf-style output: counts every byte, stores what fits (leaving room
 * for the NUL) and saturates instead of wrapping on absurd sizes. */
typedef struct out_buf {
  char *buf;
  size_t cap;
  size_t need;
} out_buf;

static void put(out_buf *o, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (o->cap > 0 && o->need < o->cap - 1) o->buf[o->need] = s[i];
    if (o->need == SIZE_MAX) return;
    o->need++;
  }
}

/* Host text byte as it may appear on the wire: control bytes (TAB, CR, NUL,
 * DEL, ...) become spaces so nothing can end the line early. */
static char safe_byte(char c) {
  unsigned char u = (unsigned char)c;
  return (u < 0x20 || u == 0x7f) ? ' ' : c;
}

size_t lsmtp_reply_format(char *buf, size_t cap, int code,
                          const char *enhanced, const char *text,
                          size_t text_len) {
  if (code < 200 || code > 599 || (code / 10) % 10 > 5) return 0;
  char digits[3] = {(char)('0' + code / 100), (char)('0' + (code / 10) % 10),
                    (char)('0' + code % 10)};
  size_t enh_len = 0;
  if (enhanced && enhanced[0]) {
    lsmtp_enhanced e;
    size_t slen = strlen(enhanced);
    if (lsmtp_enhanced_parse(enhanced, slen, &e, &enh_len) != LSMTP_OK ||
        enh_len != slen || e.cls != (unsigned short)(code / 100))
      return 0;
  }
  if (!text) text_len = 0;
  /* A single trailing "\n" ends the last line rather than starting one. */
  if (text_len > 0 && text[text_len - 1] == '\n') text_len--;

  out_buf o = {buf, cap, 0};
  size_t start = 0;
  for (;;) {
    size_t end = start;
    while (end < text_len && text[end] != '\n') end++;
    int last = end >= text_len;
    put(&o, digits, 3);
    if (!last)
      put(&o, "-", 1);
    else if (enh_len || end > start)
      put(&o, " ", 1);
    if (enh_len) {
      put(&o, enhanced, enh_len);
      if (end > start) put(&o, " ", 1);
    }
    for (size_t i = start; i < end; i++) {
      char c = safe_byte(text[i]);
      put(&o, &c, 1);
    }
    put(&o, "\r\n", 2);
    if (last) break;
    start = end + 1;
  }
  if (cap > 0) o.buf[o.need < cap ? o.need : cap - 1] = '\0';
  return o.need;
}
