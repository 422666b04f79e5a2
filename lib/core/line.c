/* CRLF line framing shared by the command and reply parsers.
 *
 * Only CRLF ends a line: a bare CR or LF stays inside it so that the parser
 * above can reject it (accepting either as a line end is how SMTP smuggling
 * works). Lines are bounded; an overlong line is skipped without being
 * stored, so memory stays bounded by max whatever the peer sends.
 *
 * A line handed out from the reader's own buffer stays there until the next
 * call. A buffered partial line can never end in CRLF (that would have ended
 * it), so "the buffer ends in CRLF" is how the next call recognises a line it
 * already handed out and must drop. */
#include "internal.h"

void lsmtp__line_init(lsmtp__line_reader *r, const lsmtp_allocator *alloc,
                      size_t max) {
  lsmtp__buf_init(&r->buf, alloc);
  r->max = max;
  r->discarding = 0;
  r->saw_cr = 0;
}

void lsmtp__line_free(lsmtp__line_reader *r) {
  lsmtp__buf_free(&r->buf);
  r->discarding = 0;
  r->saw_cr = 0;
}

/* Applied at once. Callers change the bound between lines, when nothing is
 * buffered; a partial line already past a smaller new bound is then treated
 * as overlong. */
void lsmtp__line_set_max(lsmtp__line_reader *r, size_t max) { r->max = max; }

void lsmtp__line_reset(lsmtp__line_reader *r) {
  r->buf.len = 0;
  r->discarding = 0;
  r->saw_cr = 0;
}

static int buf_holds_finished_line(const lsmtp__buf *b) {
  return b->len >= 2 && b->data[b->len - 2] == '\r' &&
         b->data[b->len - 1] == '\n';
}

int lsmtp__line_pending(const lsmtp__line_reader *r) {
  if (r->discarding) return 1;
  return r->buf.len > 0 && !buf_holds_finished_line(&r->buf);
}

/* Skip the rest of an overlong line up to and including its CRLF. */
static int discard(lsmtp__line_reader *r, const char *data, size_t len,
                   size_t start, size_t *consumed) {
  for (size_t i = start; i < len; i++) {
    if (data[i] == '\n' && r->saw_cr) {
      r->discarding = 0;
      r->saw_cr = 0;
      *consumed = i + 1;
      return LSMTP_ERR_TOO_LONG;
    }
    r->saw_cr = (unsigned char)(data[i] == '\r');
  }
  *consumed = len;
  return LSMTP_INCOMPLETE;
}

int lsmtp__line_feed(lsmtp__line_reader *r, const char *data, size_t len,
                     size_t *consumed, const char **line, size_t *line_len) {
  *consumed = 0;
  *line = NULL;
  *line_len = 0;
  if (buf_holds_finished_line(&r->buf)) r->buf.len = 0;
  if (len == 0) return LSMTP_INCOMPLETE;
  if (r->discarding) return discard(r, data, len, 0, consumed);

  size_t have = r->buf.len;
  int prev_cr = have > 0 && r->buf.data[have - 1] == '\r';
  /* Only the first (max - have) new bytes may still end the line within
   * the bound; past them the line is overlong whatever follows. */
  size_t room = r->max > have ? r->max - have : 0;
  size_t scan = len < room ? len : room;
  for (size_t i = 0; i < scan; i++) {
    if (data[i] != '\n') continue;
    if (!(i > 0 ? data[i - 1] == '\r' : prev_cr)) continue;
    if (have == 0) { /* the whole line is in the input: no copy */
      *line = data;
      *line_len = i + 1;
      *consumed = i + 1;
      return LSMTP_OK;
    }
    int rc = lsmtp__buf_append(&r->buf, data, i + 1);
    if (rc != LSMTP_OK) return rc;
    *line = r->buf.data;
    *line_len = r->buf.len;
    *consumed = i + 1;
    return LSMTP_OK;
  }
  if (len < room) { /* no line end yet, still within the bound */
    int rc = lsmtp__buf_append(&r->buf, data, len);
    if (rc != LSMTP_OK) return rc;
    *consumed = len;
    return LSMTP_INCOMPLETE;
  }
  /* Overlong: forget what was kept and skip to the line's CRLF. */
  r->saw_cr = (unsigned char)(scan > 0 ? data[scan - 1] == '\r' : prev_cr);
  r->discarding = 1;
  r->buf.len = 0;
  return discard(r, data, len, scan, consumed);
}
