/* The transcript runner (see support_transcript.h): parses C:/S:/E:/@ files
 * and replays them against a peer, whole, byte by byte and split at every
 * position, comparing the exact bytes written. */
#include "support_transcript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Unescape text[0..len) onto out. Returns 0 or -1 on a bad escape. */
static int unescape(lsmtp__buf *out, const char *text, size_t len) {
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (c != '\\') {
      if (lsmtp__buf_append(out, &c, 1) != LSMTP_OK) return -1;
      continue;
    }
    if (++i >= len) return -1;
    char e = text[i];
    char b;
    switch (e) {
    case 'r': b = '\r'; break;
    case 'n': b = '\n'; break;
    case 't': b = '\t'; break;
    case '0': b = '\0'; break;
    case '\\': b = '\\'; break;
    case 'x': {
      if (i + 2 >= len) return -1;
      int h = hexval((unsigned char)text[i + 1]), l = hexval((unsigned char)text[i + 2]);
      if (h < 0 || l < 0) return -1;
      b = (char)(h * 16 + l);
      i += 2;
      break;
    }
    case '*': { /* \*N:c */
      size_t n = 0, j = i + 1;
      while (j < len && text[j] >= '0' && text[j] <= '9') n = n * 10 + (size_t)(text[j++] - '0');
      if (j + 1 >= len || text[j] != ':') return -1;
      char r = text[j + 1];
      for (size_t k = 0; k < n; k++)
        if (lsmtp__buf_append(out, &r, 1) != LSMTP_OK) return -1;
      i = j + 1;
      continue;
    }
    default: return -1;
    }
    if (lsmtp__buf_append(out, &b, 1) != LSMTP_OK) return -1;
  }
  return 0;
}

void transcript_escape(lsmtp__buf *out, const char *data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)data[i];
    char tmp[5];
    size_t n = 1;
    if (c == '\r') memcpy(tmp, "\\r", n = 2);
    else if (c == '\n') memcpy(tmp, "\\n", n = 2);
    else if (c == '\\') memcpy(tmp, "\\\\", n = 2);
    else if (c < 0x20 || c >= 0x7f) n = (size_t)snprintf(tmp, sizeof tmp, "\\x%02X", c);
    else tmp[0] = (char)c;
    lsmtp__buf_append(out, tmp, n);
  }
}

void transcript_free(transcript *t) {
  lsmtp__buf_free(&t->input);
  lsmtp__buf_free(&t->output);
  lsmtp__buf_free(&t->events);
  for (size_t i = 0; i < t->ndirectives; i++) free(t->directives[i]);
  t->ndirectives = 0;
}

int transcript_parse(transcript *t, const char *name, const char *text,
                     size_t len, int input_is_client) {
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  lsmtp__buf_init(&t->input, NULL);
  lsmtp__buf_init(&t->output, NULL);
  lsmtp__buf_init(&t->events, NULL);
  size_t pos = 0, lineno = 0;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    const char *line = text + pos;
    size_t n = end - pos;
    pos = nl ? end + 1 : len;
    lineno++;
    if (n && line[n - 1] == '\r') n--; /* files edited on other systems */
    if (n == 0 || line[0] == '#') continue;
    if (line[0] == '@') {
      if (t->ndirectives == TRANSCRIPT_MAX_DIRECTIVES) goto bad;
      char *d = malloc(n);
      if (!d) goto bad;
      memcpy(d, line + 1, n - 1);
      d[n - 1] = '\0';
      if (strcmp(d, "close") == 0) t->expect_close = 1;
      t->directives[t->ndirectives++] = d;
      continue;
    }
    if (n < 2 || (line[1] != ':' && line[1] != '-') ||
        (n > 2 && line[2] != ' '))
      goto bad;
    const char *body = n > 3 ? line + 3 : line + n;
    size_t blen = n > 3 ? n - 3 : 0;
    int crlf = line[1] == ':';
    lsmtp__buf *dst;
    if (line[0] == 'E') {
      if (lsmtp__buf_append(&t->events, body, blen) != LSMTP_OK ||
          lsmtp__buf_append(&t->events, "\n", 1) != LSMTP_OK)
        goto bad;
      continue;
    } else if (line[0] == 'C') {
      dst = input_is_client ? &t->input : &t->output;
    } else if (line[0] == 'S') {
      dst = input_is_client ? &t->output : &t->input;
    } else {
      goto bad;
    }
    if (unescape(dst, body, blen) != 0) goto bad;
    if (crlf && lsmtp__buf_append(dst, "\r\n", 2) != LSMTP_OK) goto bad;
  }
  return 0;
bad:
  fprintf(stderr, "%s:%zu: bad transcript line\n", name, lineno);
  transcript_free(t);
  return -1;
}

int transcript_load(transcript *t, const char *path, int input_is_client) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return -1;
  }
  lsmtp__buf b;
  lsmtp__buf_init(&b, NULL);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) lsmtp__buf_append(&b, chunk, n);
  fclose(f);
  const char *base = strrchr(path, '/');
  int rc = transcript_parse(t, base ? base + 1 : path, b.data ? b.data : "", b.len,
                            input_is_client);
  lsmtp__buf_free(&b);
  return rc;
}

const char *transcript_directive(const transcript *t, const char *word,
                                 size_t from, size_t *next) {
  size_t wl = strlen(word);
  for (size_t i = from; i < t->ndirectives; i++) {
    const char *d = t->directives[i];
    if (strncmp(d, word, wl) == 0 && (d[wl] == '\0' || d[wl] == ' ')) {
      if (next) *next = i + 1;
      return d[wl] ? d + wl + 1 : d + wl;
    }
  }
  return NULL;
}

static void show_diff(const char *what, const lsmtp__buf *want,
                      const lsmtp__buf *got) {
  size_t i = 0;
  while (i < want->len && i < got->len && want->data[i] == got->data[i]) i++;
  size_t from = i > 60 ? i - 60 : 0;
  lsmtp__buf w, g;
  lsmtp__buf_init(&w, NULL);
  lsmtp__buf_init(&g, NULL);
  transcript_escape(&w, want->data ? want->data + from : "",
                    want->len > from ? (want->len - from < 300 ? want->len - from : 300) : 0);
  transcript_escape(&g, got->data ? got->data + from : "",
                    got->len > from ? (got->len - from < 300 ? got->len - from : 300) : 0);
  fprintf(stderr, "  %s differ at offset %zu\n  want: ...%.*s\n  got:  ...%.*s\n", what,
          i, (int)w.len, w.data ? w.data : "", (int)g.len, g.data ? g.data : "");
  lsmtp__buf_free(&w);
  lsmtp__buf_free(&g);
}

static int same(const lsmtp__buf *a, const lsmtp__buf *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int transcript_run_cuts(const transcript *t, const transcript_peer_ops *ops,
                        void *ctx, const size_t *cuts, size_t ncuts,
                        const char *how) {
  void *peer = ops->create(t, ctx);
  if (!peer) {
    fprintf(stderr, "%s (%s): cannot create the peer\n", t->name, how);
    return -1;
  }
  lsmtp__buf out, ev;
  lsmtp__buf_init(&out, NULL);
  lsmtp__buf_init(&ev, NULL);
  ops->drain(peer, &out);
  int failed = 0, done = ops->closed(peer);
  size_t start = 0;
  for (size_t k = 0; k <= ncuts && !done && !failed; k++) {
    size_t end = k < ncuts ? cuts[k] : t->input.len;
    const char *p = t->input.data + start;
    size_t rem = end - start;
    start = end;
    int stall = 0;
    while (rem && !done) {
      size_t used = 0;
      int rc = ops->feed(peer, p, rem, &used);
      if (used > rem) {
        fprintf(stderr, "%s (%s): consumed %zu > %zu\n", t->name, how, used, rem);
        failed = 1;
        break;
      }
      p += used;
      rem -= used;
      ops->drain(peer, &out);
      if (rc < 0) {
        fprintf(stderr, "%s (%s): feed failed: %s\n", t->name, how, lsmtp_status_name(rc));
        failed = 1;
        break;
      }
      if (ops->closed(peer)) done = 1;
      if (used == 0 && !done) {
        if (ops->unblock(peer)) {
          stall = 0;
          ops->drain(peer, &out);
        } else if (++stall > 2) {
          fprintf(stderr, "%s (%s): stuck with %zu bytes unread\n", t->name, how, rem);
          failed = 1;
          break;
        }
      }
    }
  }
  /* Decisions deferred by the last command are answered after the input. */
  while (!failed && !ops->closed(peer) && ops->unblock(peer)) ops->drain(peer, &out);
  ops->drain(peer, &out);
  ops->events(peer, &ev);
  if (!failed && !same(&t->output, &out)) {
    fprintf(stderr, "%s (%s): output\n", t->name, how);
    show_diff("replies", &t->output, &out);
    failed = 1;
  }
  if (!failed && !same(&t->events, &ev)) {
    fprintf(stderr, "%s (%s): events\n", t->name, how);
    show_diff("events", &t->events, &ev);
    failed = 1;
  }
  if (!failed && !ops->closed(peer) != !t->expect_close) {
    fprintf(stderr, "%s (%s): close state %d, expected %d\n", t->name, how,
            ops->closed(peer), t->expect_close);
    failed = 1;
  }
  ops->destroy(peer);
  lsmtp__buf_free(&out);
  lsmtp__buf_free(&ev);
  return failed ? -1 : 0;
}

int transcript_run_all(const transcript *t, const transcript_peer_ops *ops,
                       void *ctx) {
  size_t len = t->input.len;
  if (transcript_run_cuts(t, ops, ctx, NULL, 0, "whole") != 0) return -1;
  size_t *cuts = calloc(len ? len : 1, sizeof *cuts);
  if (!cuts) return -1;
  for (size_t i = 1; i < len; i++) cuts[i - 1] = i;
  int rc = transcript_run_cuts(t, ops, ctx, cuts, len ? len - 1 : 0, "byte by byte");
  for (size_t i = 1; rc == 0 && i < len; i++) {
    char how[64];
    snprintf(how, sizeof how, "split at %zu", i);
    rc = transcript_run_cuts(t, ops, ctx, &i, 1, how);
  }
  free(cuts);
  return rc;
}
