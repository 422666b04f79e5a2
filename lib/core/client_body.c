/* Streaming the message body: pulled from the host's read callback only
 * when pending() is asked for bytes and little is waiting, so the session
 * never holds more than about one read (DATA) or one chunk (BDAT).
 * DATA bodies go through the DATA encoder (dot-stuffing, CRLF line ends,
 * the final "."); BDAT chunks (RFC 3030) are sent as they are, except that
 * text bodies get the same line-end repair as DATA, so the choice between
 * DATA and BDAT never changes what arrives. */
#include "client_int.h"

static int emit_out(void *ud, const char *data, size_t len) {
  return lsmtp__client_write(ud, data, len) == LSMTP_OK ? 0 : LSMTP_ERR_NOMEM;
}

int lsmtp__body_start(lsmtp_client *c) {
  lsmtp__txn *m = &c->m;
  if (!c->scratch) {
    c->scratch = lsmtp__malloc(c->alloc, LSMTP__CLIENT_READ_SIZE);
    if (!c->scratch) return LSMTP_ERR_NOMEM;
  }
  if (m->use_bdat && !c->chunk) {
    c->chunk = lsmtp__malloc(c->alloc, c->cfg.chunk_size);
    if (!c->chunk) return LSMTP_ERR_NOMEM;
  }
  m->body_state = LSMTP__BODY_STREAM;
  m->body_eof = 0;
  m->chunk_len = 0;
  m->prev_cr = 0;
  return LSMTP_OK;
}

int lsmtp_client_resume(lsmtp_client *c) {
  if (!c) return LSMTP_ERR_INVALID;
  if (c->fatal) return LSMTP_ERR_FATAL;
  if (c->m.body_state != LSMTP__BODY_PAUSED) return LSMTP_ERR_STATE;
  c->m.body_state = LSMTP__BODY_STREAM;
  return LSMTP_OK;
}

/* Call read(); returns <0 to fail the session, else 1 at the end of the
 * body, 0 otherwise. *n gets the bytes read. */
static int pull(lsmtp_client *c, char *buf, size_t cap, size_t *n) {
  *n = 0;
  int rc = c->m.read(c->ud, buf, cap, n);
  if (rc < 0 || *n > cap) return LSMTP_ERR_ABORTED;
  if (rc == LSMTP_PAUSED) {
    c->m.body_state = LSMTP__BODY_PAUSED;
    return 0;
  }
  if (rc == LSMTP_DONE || (rc == LSMTP_OK && *n == 0)) return 1;
  if (rc != LSMTP_OK) return LSMTP_ERR_ABORTED;
  return 0;
}

static int fill_data(lsmtp_client *c) {
  lsmtp__txn *m = &c->m;
  while (c->out.len < LSMTP__CLIENT_OUT_HIGH && m->body_state == LSMTP__BODY_STREAM) {
    size_t n;
    int end = pull(c, c->scratch, LSMTP__CLIENT_READ_SIZE, &n);
    if (end < 0) return end;
    if (n) {
      int rc = lsmtp_data_encode(c->enc, c->scratch, n, emit_out, c);
      if (rc != LSMTP_OK) return rc;
    }
    if (end) {
      int rc = lsmtp_data_encode_finish(c->enc, emit_out, c);
      if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_DOT, 0);
      m->body_state = LSMTP__BODY_IDLE;
      return rc;
    }
  }
  return LSMTP_OK;
}

/* Copy text into the chunk with bare CR and LF turned into CRLF. The
 * caller leaves room for twice n. */
static void repair_into_chunk(lsmtp_client *c, const char *in, size_t n) {
  lsmtp__txn *m = &c->m;
  char *out = c->chunk + m->chunk_len;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    const char ch = in[i];
    if (ch == '\r') {
      out[o++] = '\r';
      out[o++] = '\n';
      m->prev_cr = 1;
    } else if (ch == '\n') {
      if (!m->prev_cr) {
        out[o++] = '\r';
        out[o++] = '\n';
      }
      m->prev_cr = 0;
    } else {
      out[o++] = ch;
      m->prev_cr = 0;
    }
  }
  m->chunk_len += o;
}

static int flush_chunk(lsmtp_client *c, int last) {
  lsmtp__txn *m = &c->m;
  char head[64];
  size_t hn = lsmtp_bdat_format(head, sizeof head, m->chunk_len, last);
  if (hn >= sizeof head) return LSMTP_ERR_INVALID;
  int rc = lsmtp__client_write(c, head, hn);
  if (rc == LSMTP_OK) rc = lsmtp__client_write(c, c->chunk, m->chunk_len);
  if (rc == LSMTP_OK) rc = lsmtp__client_push(c, LSMTP__C_BDAT, last ? 1 : 0);
  m->chunk_len = 0;
  m->body_state = last ? LSMTP__BODY_IDLE : LSMTP__BODY_WAIT;
  return rc;
}

static int fill_bdat(lsmtp_client *c) {
  lsmtp__txn *m = &c->m;
  const int binary = m->body == LSMTP_BODY_BINARYMIME;
  while (c->out.len < LSMTP__CLIENT_OUT_HIGH && m->body_state == LSMTP__BODY_STREAM) {
    size_t room = c->cfg.chunk_size - m->chunk_len;
    size_t cap = binary ? room : room / 2;
    if (cap > LSMTP__CLIENT_READ_SIZE) cap = LSMTP__CLIENT_READ_SIZE;
    if (cap == 0) return flush_chunk(c, 0);
    size_t n;
    char *dst = binary ? c->chunk + m->chunk_len : c->scratch;
    int end = pull(c, dst, cap, &n);
    if (end < 0) return end;
    if (binary) m->chunk_len += n;
    else repair_into_chunk(c, c->scratch, n);
    if (end) return flush_chunk(c, 1);
  }
  return LSMTP_OK;
}

int lsmtp__body_fill(lsmtp_client *c) {
  return c->m.use_bdat ? fill_bdat(c) : fill_data(c);
}
