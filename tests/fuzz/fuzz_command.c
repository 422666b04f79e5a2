/* Fuzz the command-line parser on lines framed by the CRLF line reader, and
 * compare every result with a slow, obviously-correct model of the
 * documented rules (lib/core/command.c's header comment).
 *
 * Input: byte 0 holds the options: bit 0 = LSMTP_CMD_ALLOW_8BIT, bit 1 =
 * the AUTH line bound instead of the command bound, bits 2..7 seed the
 * chunk sizes. The rest is the byte stream a client sends. BDAT arguments
 * are parsed too and, when valid, formatted and parsed back; MAIL and RCPT
 * arguments are left to the address parser's own target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(x)       \
  do {                 \
    if (!(x)) abort(); \
  } while (0)

static const lsmtp_verb all_verbs[] = {
    LSMTP_VERB_EHLO, LSMTP_VERB_HELO, LSMTP_VERB_LHLO, LSMTP_VERB_MAIL,
    LSMTP_VERB_RCPT, LSMTP_VERB_DATA, LSMTP_VERB_BDAT, LSMTP_VERB_RSET,
    LSMTP_VERB_NOOP, LSMTP_VERB_QUIT, LSMTP_VERB_VRFY, LSMTP_VERB_EXPN,
    LSMTP_VERB_HELP, LSMTP_VERB_STARTTLS, LSMTP_VERB_AUTH,
};

static int any_byte(const char *p, size_t n, int (*pred)(unsigned char)) {
  for (size_t i = 0; i < n; i++)
    if (pred((unsigned char)p[i])) return 1;
  return 0;
}
static int is_eol(unsigned char c) { return c == '\r' || c == '\n'; }
static int is_nul(unsigned char c) { return c == 0; }
static int is_high(unsigned char c) { return c >= 0x80; }

/* The model. Fills *out like the parser and returns its status. */
static int model_parse(const char *line, size_t len, unsigned flags, lsmtp_cmd *out) {
  const size_t body = len - 2; /* the reader only hands out CRLF lines */
  out->verb = LSMTP_VERB_UNKNOWN;
  out->verb_text = line;
  out->verb_len = 0;
  out->arg = line + body;
  out->arg_len = 0;
  if (any_byte(line, body, is_eol)) return LSMTP_ERR_BARE_EOL;
  if (any_byte(line, body, is_nul)) return LSMTP_ERR_NUL;
  if (body == 0) return LSMTP_ERR_SYNTAX;
  size_t tok = 0;
  while (tok < body && line[tok] != ' ') tok++;
  if (any_byte(line, tok, is_high)) return LSMTP_ERR_UTF8;
  const int bad_8bit = any_byte(line, body, is_high) && !(flags & LSMTP_CMD_ALLOW_8BIT);

  lsmtp_verb verb = LSMTP_VERB_UNKNOWN;
  int glued = tok == 0;
  for (size_t i = 0; i < sizeof all_verbs / sizeof all_verbs[0]; i++) {
    const char *name = lsmtp_verb_name(all_verbs[i]);
    size_t n = strlen(name);
    if (tok >= n && lsmtp__ieq(line, name, n)) {
      if (tok == n) verb = all_verbs[i];
      else glued = 1;
    }
  }
  if (verb == LSMTP_VERB_UNKNOWN && glued)
    return bad_8bit ? LSMTP_ERR_UTF8 : LSMTP_ERR_SYNTAX;
  out->verb = verb;
  out->verb_len = tok;
  if (tok < body) {
    size_t end = body;
    while (end > tok + 1 && (line[end - 1] == ' ' || line[end - 1] == '\t')) end--;
    out->arg = line + tok + 1;
    out->arg_len = end - tok - 1;
  }
  return bad_8bit ? LSMTP_ERR_UTF8 : LSMTP_OK;
}

static void check_bdat(const lsmtp_cmd *cmd) {
  uint64_t size = 0;
  int last = 0;
  if (lsmtp_bdat_parse(cmd->arg, cmd->arg_len, &size, &last) != LSMTP_OK) return;
  char buf[64];
  size_t n = lsmtp_bdat_format(buf, sizeof buf, size, last);
  CHECK(n < sizeof buf);
  lsmtp_cmd again;
  CHECK(lsmtp_cmd_parse(buf, n, 0, &again) == LSMTP_OK);
  CHECK(again.verb == LSMTP_VERB_BDAT);
  uint64_t size2 = 0;
  int last2 = -1;
  CHECK(lsmtp_bdat_parse(again.arg, again.arg_len, &size2, &last2) == LSMTP_OK);
  CHECK(size2 == size && last2 == last);
}

static void check_line(const char *line, size_t len, unsigned flags) {
  CHECK(len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n');
  lsmtp_cmd cmd, want;
  int rc = lsmtp_cmd_parse(line, len, flags, &cmd);
  int want_rc = model_parse(line, len, flags, &want);
  CHECK(rc == want_rc);

  /* the result always lies inside the line, before its CRLF */
  CHECK(cmd.verb_text == line);
  CHECK(cmd.verb_len <= len - 2);
  CHECK(cmd.arg >= line && cmd.arg <= line + len - 2);
  CHECK(cmd.arg_len <= len && cmd.arg_len <= (size_t)(line + len - 2 - cmd.arg));

  CHECK(cmd.verb == want.verb);
  CHECK(cmd.verb_len == want.verb_len);
  CHECK(cmd.arg_len == want.arg_len);
  if (cmd.arg_len) CHECK(cmd.arg == want.arg);

  if (rc == LSMTP_OK && cmd.verb != LSMTP_VERB_UNKNOWN) {
    const char *name = lsmtp_verb_name(cmd.verb);
    CHECK(cmd.verb_len == strlen(name) && lsmtp__ieq(line, name, cmd.verb_len));
    if (cmd.verb == LSMTP_VERB_BDAT) check_bdat(&cmd);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const unsigned flags = (data[0] & 1u) ? LSMTP_CMD_ALLOW_8BIT : 0;
  const size_t max = (data[0] & 2u) ? LSMTP_AUTH_DEFAULT_MAX_LINE : LSMTP_CMD_DEFAULT_MAX_LINE;
  uint32_t x = (uint32_t)(data[0] >> 2) * 2654435761u | 1u;
  const size_t span = (data[0] & 4u) ? 3 : 700;
  const char *in = (const char *)data + 1;
  const size_t len = size - 1;

  lsmtp__line_reader r;
  lsmtp__line_init(&r, NULL, max);
  size_t off = 0;
  while (off < len) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    size_t chunk = 1 + x % span;
    if (chunk > len - off) chunk = len - off;
    /* an exact-size copy, so reading past a line is caught by ASan */
    char *buf = malloc(chunk);
    CHECK(buf != NULL);
    memcpy(buf, in + off, chunk);
    size_t pos = 0;
    while (pos < chunk) {
      size_t used = 0, line_len = 0;
      const char *line = NULL;
      int rc = lsmtp__line_feed(&r, buf + pos, chunk - pos, &used, &line, &line_len);
      CHECK(rc == LSMTP_OK || rc == LSMTP_INCOMPLETE || rc == LSMTP_ERR_TOO_LONG);
      if (rc == LSMTP_INCOMPLETE) break;
      pos += used;
      if (rc == LSMTP_OK) {
        CHECK(line_len <= max);
        check_line(line, line_len, flags);
      }
    }
    free(buf);
    off += chunk;
  }
  lsmtp__line_free(&r);
  return 0;
}
