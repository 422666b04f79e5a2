/* Fuzz the CRLF line reader against a simple model of it.
 *
 * Input: byte 0 is the line bound (0..63 plus the CRLF, so tiny bounds get
 * exercised), byte 1 seeds the chunk sizes, the rest is the byte stream. The
 * model splits the whole stream at each CRLF: a piece of at most max bytes is
 * a line, a longer one is LSMTP_ERR_TOO_LONG. Fed in chunks, the reader must
 * report exactly those pieces, in place when the line lies inside the chunk
 * and from its buffer otherwise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(x)         \
  do {                   \
    if (!(x)) abort();   \
  } while (0)

/* The end (offset past the CRLF) of the first line starting at from, or 0
 * when the stream holds no further CRLF. */
static size_t next_line_end(const char *in, size_t len, size_t from) {
  for (size_t i = from + 1; i < len; i++)
    if (in[i] == '\n' && in[i - 1] == '\r') return i + 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t max = data[0] & 63u;
  uint32_t x = (uint32_t)data[1] * 2654435761u | 1u;
  size_t span = (data[1] & 1) ? 4 : 100;
  const char *in = (const char *)data + 2;
  size_t len = size - 2;

  lsmtp__line_reader r;
  lsmtp__line_init(&r, NULL, max);
  size_t off = 0;      /* bytes of the stream consumed so far */
  size_t line_at = 0;  /* where the model's current line starts */
  while (off < len) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    size_t chunk = 1 + x % span;
    if (chunk > len - off) chunk = len - off;
    /* Exact-size copy, so reads past the chunk are caught by ASan. */
    char *buf = malloc(chunk);
    CHECK(buf != NULL);
    memcpy(buf, in + off, chunk);
    size_t pos = 0;
    while (pos < chunk) {
      int was_pending = lsmtp__line_pending(&r);
      size_t used = 0, line_len = 0;
      const char *line = NULL;
      int rc = lsmtp__line_feed(&r, buf + pos, chunk - pos, &used, &line, &line_len);
      CHECK(used <= chunk - pos);
      size_t end = next_line_end(in, len, line_at);
      if (rc == LSMTP_INCOMPLETE) {
        CHECK(used == chunk - pos && line == NULL);
        /* The model agrees: no CRLF ends a line inside this chunk. */
        CHECK(end == 0 || end > off + chunk);
        pos = chunk;
        break;
      }
      pos += used;
      CHECK(end == off + pos); /* the reader stopped right after a CRLF */
      if (end - line_at <= max) {
        CHECK(rc == LSMTP_OK);
        CHECK(line_len == end - line_at);
        CHECK(memcmp(line, in + line_at, line_len) == 0);
        CHECK(was_pending ? line == r.buf.data : line == buf + pos - used);
      } else {
        CHECK(rc == LSMTP_ERR_TOO_LONG && line == NULL);
      }
      line_at = end;
    }
    free(buf);
    off += chunk;
  }
  CHECK((lsmtp__line_pending(&r) != 0) == (line_at < len));
  lsmtp__line_free(&r);
  return 0;
}
