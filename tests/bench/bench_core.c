/* Benchmark of the core parsers (not a test): command lines through the
 * line reader and lsmtp_cmd_parse, and the DATA decoder and encoder against
 * memcpy of the same bytes in the same run. Prints a Markdown table.
 *
 * Usage: bench_core [--quick | --count N]
 *   --quick: shorter runs, for a smoke check; numbers are rougher.
 *   --count N: no timing; decode the message N times, then encode it N
 *     times, and stop. For counting instructions, which unlike times are
 *     repeatable on a busy machine:
 *       valgrind --tool=callgrind --toggle-collect=decode_wire \
 *         --toggle-collect=encode_message bench_core --count 20
 *     (or one --toggle-collect each, for each count alone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define CHUNK 16384 /* bytes handed over per call, like one socket read */
#define MESSAGE_BYTES (1u << 20)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_core: %s\n", what);
  exit(1);
}

/* ---- growing a buffer ---- */

typedef struct bytes {
  char *p;
  size_t len, cap;
} bytes;

static void add(bytes *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) die("out of memory");
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void addf(bytes *b, const char *fmt, int i) {
  char line[256];
  int n = snprintf(line, sizeof line, fmt, i, i);
  if (n < 0 || (size_t)n >= sizeof line) die("line too long");
  add(b, line, (size_t)n);
}

/* ---- timing ----
 * A run repeats one piece of work for at least min_s seconds; a rate is the
 * best of several runs. Runs of the things compared with each other are
 * interleaved, so that a busy moment on the machine does not favour one. */

typedef size_t (*work_fn)(void *ctx); /* returns units done (for checking) */

typedef struct measure {
  work_fn fn;
  void *ctx;
  double units_per_call;
  double best; /* units per second */
} measure;

static void run_once(measure *m, double min_s) {
  size_t calls = 0;
  double t0 = now(), t;
  do {
    m->fn(m->ctx);
    calls++;
    t = now();
  } while (t - t0 < min_s);
  double rate = m->units_per_call * (double)calls / (t - t0);
  if (rate > m->best) m->best = rate;
}

static void measure_all(measure *ms, size_t n, int runs, double min_s) {
  for (size_t i = 0; i < n; i++) ms[i].fn(ms[i].ctx); /* warm up */
  for (int r = 0; r < runs; r++)
    for (size_t i = 0; i < n; i++) run_once(&ms[i], min_s);
}

/* ---- (1) commands ---- */

typedef struct cmd_ctx {
  bytes stream;
  size_t commands; /* expected per pass */
  lsmtp__line_reader reader;
} cmd_ctx;

static size_t parse_commands(void *p) {
  cmd_ctx *c = p;
  size_t count = 0;
  for (size_t off = 0; off < c->stream.len;) {
    size_t n = c->stream.len - off < CHUNK ? c->stream.len - off : CHUNK;
    const char *chunk = c->stream.p + off;
    size_t pos = 0;
    while (pos < n) {
      size_t used;
      const char *line;
      size_t line_len;
      int rc = lsmtp__line_feed(&c->reader, chunk + pos, n - pos, &used, &line,
                                &line_len);
      pos += used;
      if (rc == LSMTP_INCOMPLETE) break;
      if (rc != LSMTP_OK) die("line reader failed");
      lsmtp_cmd cmd;
      if (lsmtp_cmd_parse(line, line_len, 0, &cmd) != LSMTP_OK ||
          cmd.verb == LSMTP_VERB_UNKNOWN)
        die("command did not parse");
      count++;
    }
    off += n;
  }
  if (count != c->commands) die("wrong number of commands");
  return count;
}

static void build_commands(cmd_ctx *c) {
  memset(c, 0, sizeof *c);
  add(&c->stream, "EHLO client.example.org\r\n", 25);
  c->commands = 1;
  for (int i = 0; c->stream.len < 256 * 1024; i++) {
    addf(&c->stream, "MAIL FROM:<sender-%d@mail.example.org> SIZE=%d0417\r\n",
         i);
    addf(&c->stream, "RCPT TO:<alice-%d@example.net>\r\n", i);
    addf(&c->stream, "RCPT TO:<bob-%d@example.net> NOTIFY=FAILURE\r\n", i);
    addf(&c->stream, "RCPT TO:<carol-%d@lists.example.com>\r\n", i);
    add(&c->stream, "DATA\r\n", 6);
    add(&c->stream, "RSET\r\n", 6);
    c->commands += 6;
  }
  lsmtp__line_init(&c->reader, NULL, LSMTP_CMD_DEFAULT_MAX_LINE);
}

/* ---- (2), (3) DATA ---- */

typedef struct data_ctx {
  bytes message; /* 1 MiB of 78-char lines + CRLF, some starting with "." */
  bytes wire;    /* the same, dot-stuffed, with ".\r\n" after it */
  char *copy;    /* memcpy destination */
  size_t out;    /* octets the span callback saw */
  lsmtp_data_decoder *dec;
  lsmtp_data_encoder *enc;
} data_ctx;

static int count_span(void *ud, const char *p, size_t n) {
  (void)p;
  ((data_ctx *)ud)->out += n;
  return 0;
}

static void build_message(data_ctx *c) {
  memset(c, 0, sizeof *c);
  char line[80];
  for (int i = 0; c->message.len + 80 <= MESSAGE_BYTES; i++) {
    for (int k = 0; k < 78; k++) line[k] = (char)('A' + (i + k) % 58);
    if (i % 16 == 0) line[0] = '.';
    line[78] = '\r';
    line[79] = '\n';
    add(&c->message, line, 80);
    if (line[0] == '.') add(&c->wire, ".", 1);
    add(&c->wire, line, 80);
  }
  add(&c->wire, ".\r\n", 3);
  c->copy = malloc(c->wire.len);
  if (!c->copy) die("out of memory");
  if (lsmtp_data_decoder_new(&c->dec, NULL, 0, 0, 0) != LSMTP_OK ||
      lsmtp_data_encoder_new(&c->enc, NULL) != LSMTP_OK)
    die("cannot create decoder/encoder");
}

static size_t copy_wire(void *p) {
  data_ctx *c = p;
  memcpy(c->copy, c->wire.p, c->wire.len);
  /* Read the copy back so the compiler keeps it. */
  return (size_t)(unsigned char)((volatile char *)c->copy)[c->wire.len / 2];
}

static size_t decode_wire(void *p) {
  data_ctx *c = p;
  c->out = 0;
  lsmtp_data_decoder_reset(c->dec);
  int rc = LSMTP_INCOMPLETE;
  for (size_t off = 0; off < c->wire.len && rc == LSMTP_INCOMPLETE;) {
    size_t n = c->wire.len - off < CHUNK ? c->wire.len - off : CHUNK;
    size_t used;
    rc = lsmtp_data_decode(c->dec, c->wire.p + off, n, &used, count_span, c);
    off += used;
  }
  if (rc != LSMTP_DONE || c->out != c->message.len) die("decode failed");
  return c->out;
}

static size_t encode_message(void *p) {
  data_ctx *c = p;
  c->out = 0;
  lsmtp_data_encoder_reset(c->enc);
  for (size_t off = 0; off < c->message.len;) {
    size_t n = c->message.len - off < CHUNK ? c->message.len - off : CHUNK;
    if (lsmtp_data_encode(c->enc, c->message.p + off, n, count_span, c) !=
        LSMTP_OK)
      die("encode failed");
    off += n;
  }
  if (lsmtp_data_encode_finish(c->enc, count_span, c) != LSMTP_OK ||
      c->out != c->wire.len)
    die("encode gave the wrong size");
  return c->out;
}

/* --count N: the work alone, a fixed number of times. */
static int count_only(unsigned long passes) {
  data_ctx data;
  build_message(&data);
  for (unsigned long i = 0; i < passes; i++) decode_wire(&data);
  for (unsigned long i = 0; i < passes; i++) encode_message(&data);
  printf("decoded and encoded %lu times: %zu octets on the wire, %zu of "
         "message\n",
         passes, data.wire.len, data.message.len);
  lsmtp_data_decoder_del(data.dec);
  lsmtp_data_encoder_del(data.enc);
  free(data.message.p);
  free(data.wire.p);
  free(data.copy);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--count") == 0) {
    char *end;
    unsigned long passes = strtoul(argv[2], &end, 10);
    if (*end == '\0' && passes > 0 && passes <= 100000)
      return count_only(passes);
  }
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  if (argc > 2 || (argc == 2 && !quick)) {
    fprintf(stderr, "usage: bench_core [--quick | --count N]\n");
    return 2;
  }
  const int runs = quick ? 3 : 5;
  const double min_s = quick ? 0.05 : 0.2;

  cmd_ctx cmds;
  build_commands(&cmds);
  data_ctx data;
  build_message(&data);
  double wire_mb = (double)data.wire.len / 1e6;
  double msg_mb = (double)data.message.len / 1e6;
  measure ms[] = {
      {parse_commands, &cmds, (double)cmds.commands, 0},
      {copy_wire, &data, wire_mb, 0},
      {decode_wire, &data, wire_mb, 0},
      {encode_message, &data, msg_mb, 0},
  };
  measure_all(ms, sizeof ms / sizeof ms[0], runs, min_s);
  double cmd_rate = ms[0].best;
  double cmd_mb = cmd_rate * (double)cmds.stream.len /
                  (double)cmds.commands / 1e6;
  double copy_rate = ms[1].best, dec_rate = ms[2].best, enc_rate = ms[3].best;

  printf("| Benchmark | Input | Result | memcpy | Ratio |\n");
  printf("|---|---|---|---|---|\n");
  printf("| Command lines (lsmtp__line_feed + lsmtp_cmd_parse) | %zu commands, "
         "%.0f KiB pipelined, %d-byte reads | %.2f M commands/s (%.0f MB/s) "
         "| | |\n",
         cmds.commands, (double)cmds.stream.len / 1024.0, CHUNK,
         cmd_rate / 1e6, cmd_mb);
  printf("| DATA decode (lsmtp_data_decode) | 1 MiB, 78-char lines, 1 in 16 "
         "dot-stuffed, %d-byte reads | %.0f MB/s | %.0f MB/s | %.2f |\n",
         CHUNK, dec_rate, copy_rate, dec_rate / copy_rate);
  printf("| DATA encode (lsmtp_data_encode) | the same message, %d-byte "
         "chunks | %.0f MB/s | %.0f MB/s | %.2f |\n",
         CHUNK, enc_rate, copy_rate, enc_rate / copy_rate);
  if (quick) printf("\n(--quick: %d runs of >= %.2f s; rough)\n", runs, min_s);

  lsmtp__line_free(&cmds.reader);
  free(cmds.stream.p);
  lsmtp_data_decoder_del(data.dec);
  lsmtp_data_encoder_del(data.enc);
  free(data.message.p);
  free(data.wire.p);
  free(data.copy);
  return 0;
}
