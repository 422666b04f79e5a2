/* The server's command-line parser: splits one CRLF-terminated line into
 * verb and argument, and rejects the bytes that make smuggling and
 * injection possible (bare CR/LF, NUL, 8-bit outside SMTPUTF8).
 *
 * It runs once per command a server receives, so it does one pass over
 * the line with a class table, then recognises the verb by its length and
 * first letter with a single 4-byte case-folded compare. Nothing is
 * copied or allocated: the result points into the caller's line.
 *
 * Decisions the header leaves open:
 * - Verb token: the bytes before the first SP. A token that starts with a
 *   known verb but is longer ("MAILX", "DATA\t", "MAIL:FROM") is
 *   LSMTP_ERR_SYNTAX (501), not an unknown command: the client meant the
 *   verb and got the separator wrong. Any other token, including one with
 *   a TAB or other control byte, is LSMTP_VERB_UNKNOWN (500). An empty
 *   token (the line starts with SP) is LSMTP_ERR_SYNTAX.
 * - Precedence when a line has several faults: bare CR/LF, then NUL, then
 *   8-bit, then syntax. Framing problems come first because they are the
 *   security-relevant ones.
 * - LSMTP_CMD_ALLOW_8BIT admits 8-bit bytes in the argument only; the
 *   verb stays ASCII (RFC 6531 extends addresses, not verbs).
 * - On LSMTP_ERR_UTF8 caused by the argument the result is still filled
 *   in, so a server can answer an 8-bit MAIL/RCPT outside SMTPUTF8 with
 *   "553 5.6.7" (RFC 6531's X.6.7) and anything else with 500. On every
 *   other error (and 8-bit in the verb) the result is LSMTP_VERB_UNKNOWN
 *   with an empty verb and arg.
 * - Trailing SP/TAB are stripped from the argument ("DATA ", "QUIT " are
 *   common); leading spaces are kept for the argument's own parser.
 * - When there is no argument, arg points at the line's CRLF with
 *   arg_len 0, so it always lies inside the line. */
#include "internal.h"

/* Byte classes, combined with OR over the whole line. */
enum {
  CLS_EOL = 1,  /* CR or LF inside the line */
  CLS_NUL = 2,
  CLS_HIGH = 4  /* 0x80..0xFF */
};

#define HIGH8_(b) CLS_HIGH, CLS_HIGH, CLS_HIGH, CLS_HIGH, CLS_HIGH, CLS_HIGH, CLS_HIGH, CLS_HIGH
#define HIGH64_ HIGH8_(0), HIGH8_(1), HIGH8_(2), HIGH8_(3), HIGH8_(4), HIGH8_(5), HIGH8_(6), HIGH8_(7)
static const unsigned char byte_class[256] = {
    [0] = CLS_NUL, ['\n'] = CLS_EOL, ['\r'] = CLS_EOL,
    [128] = HIGH64_, HIGH64_,
};
#undef HIGH64_
#undef HIGH8_

static const char *const verb_names[] = {
    [LSMTP_VERB_UNKNOWN] = "",      [LSMTP_VERB_EHLO] = "EHLO",
    [LSMTP_VERB_HELO] = "HELO",     [LSMTP_VERB_LHLO] = "LHLO",
    [LSMTP_VERB_MAIL] = "MAIL",     [LSMTP_VERB_RCPT] = "RCPT",
    [LSMTP_VERB_DATA] = "DATA",     [LSMTP_VERB_BDAT] = "BDAT",
    [LSMTP_VERB_RSET] = "RSET",     [LSMTP_VERB_NOOP] = "NOOP",
    [LSMTP_VERB_QUIT] = "QUIT",     [LSMTP_VERB_VRFY] = "VRFY",
    [LSMTP_VERB_EXPN] = "EXPN",     [LSMTP_VERB_HELP] = "HELP",
    [LSMTP_VERB_STARTTLS] = "STARTTLS", [LSMTP_VERB_AUTH] = "AUTH",
};

const char *lsmtp_verb_name(lsmtp_verb verb) {
  if ((unsigned)verb >= sizeof verb_names / sizeof verb_names[0]) return "";
  return verb_names[verb];
}

/* Four bytes as one integer; memcpy keeps it alignment- and
 * aliasing-safe and compiles to a single load. */
static inline uint32_t load4(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* OR-ing 0x20 lower-cases ASCII letters and maps no other byte onto a
 * lower-case letter, so comparing against a lower-case constant is an
 * exact case-insensitive match for the all-letter verbs. */
#define FOLD4 0x20202020u

/* The 4-letter verb whose text is p[0..4), or LSMTP_VERB_UNKNOWN. */
static int match4(const char *p) {
  uint32_t w = load4(p) | FOLD4;
  switch (p[0] | 0x20) {
    case 'a': return w == load4("auth") ? LSMTP_VERB_AUTH : LSMTP_VERB_UNKNOWN;
    case 'b': return w == load4("bdat") ? LSMTP_VERB_BDAT : LSMTP_VERB_UNKNOWN;
    case 'd': return w == load4("data") ? LSMTP_VERB_DATA : LSMTP_VERB_UNKNOWN;
    case 'e':
      if (w == load4("ehlo")) return LSMTP_VERB_EHLO;
      return w == load4("expn") ? LSMTP_VERB_EXPN : LSMTP_VERB_UNKNOWN;
    case 'h':
      if (w == load4("helo")) return LSMTP_VERB_HELO;
      return w == load4("help") ? LSMTP_VERB_HELP : LSMTP_VERB_UNKNOWN;
    case 'l': return w == load4("lhlo") ? LSMTP_VERB_LHLO : LSMTP_VERB_UNKNOWN;
    case 'm': return w == load4("mail") ? LSMTP_VERB_MAIL : LSMTP_VERB_UNKNOWN;
    case 'n': return w == load4("noop") ? LSMTP_VERB_NOOP : LSMTP_VERB_UNKNOWN;
    case 'q': return w == load4("quit") ? LSMTP_VERB_QUIT : LSMTP_VERB_UNKNOWN;
    case 'r':
      if (w == load4("rcpt")) return LSMTP_VERB_RCPT;
      return w == load4("rset") ? LSMTP_VERB_RSET : LSMTP_VERB_UNKNOWN;
    case 'v': return w == load4("vrfy") ? LSMTP_VERB_VRFY : LSMTP_VERB_UNKNOWN;
    default: return LSMTP_VERB_UNKNOWN;
  }
}

static int match_starttls(const char *p) {
  return (load4(p) | FOLD4) == load4("star") &&
         (load4(p + 4) | FOLD4) == load4("ttls");
}

/* The verb of a token of tok_len bytes, or -1 when the token is a known
 * verb with extra bytes glued on ("MAILX"). */
static int classify_token(const char *tok, size_t tok_len) {
  if (tok_len < 4) return LSMTP_VERB_UNKNOWN;
  if (tok_len == 4) return match4(tok);
  if (tok_len >= 8 && match_starttls(tok))
    return tok_len == 8 ? LSMTP_VERB_STARTTLS : -1;
  return match4(tok) != LSMTP_VERB_UNKNOWN ? -1 : LSMTP_VERB_UNKNOWN;
}

static int has_high_byte(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] >= 0x80) return 1;
  return 0;
}

static void clear_cmd(lsmtp_cmd *out, const char *line, size_t body) {
  out->verb = LSMTP_VERB_UNKNOWN;
  out->verb_text = line;
  out->verb_len = 0;
  out->arg = body ? line + body : line; /* never NULL + 0 */
  out->arg_len = 0;
}

int lsmtp_cmd_parse(const char *line, size_t line_len, unsigned flags,
                    lsmtp_cmd *out) {
  if (!out || (!line && line_len)) return LSMTP_ERR_INVALID;
  if (line_len < 2 || line[line_len - 2] != '\r' || line[line_len - 1] != '\n') {
    clear_cmd(out, line, 0);
    return LSMTP_ERR_BARE_EOL;
  }
  const size_t body = line_len - 2;
  clear_cmd(out, line, body);

  unsigned seen = 0;
  for (size_t i = 0; i < body; i++) seen |= byte_class[(unsigned char)line[i]];
  if (seen & CLS_EOL) return LSMTP_ERR_BARE_EOL;
  if (seen & CLS_NUL) return LSMTP_ERR_NUL;

  const char *sp = memchr(line, ' ', body);
  const size_t tok_len = sp ? (size_t)(sp - line) : body;

  /* 8-bit bytes are allowed by the flag in the argument only; in the verb
   * they are an error whose result carries no verb. */
  int bad_8bit = 0;
  if (seen & CLS_HIGH) {
    if (has_high_byte(line, tok_len)) return LSMTP_ERR_UTF8;
    bad_8bit = !(flags & LSMTP_CMD_ALLOW_8BIT);
  }
  int verb = tok_len ? classify_token(line, tok_len) : -1;
  if (verb < 0) return bad_8bit ? LSMTP_ERR_UTF8 : LSMTP_ERR_SYNTAX;

  out->verb = (lsmtp_verb)verb;
  out->verb_len = tok_len;
  if (sp) {
    const char *arg = sp + 1;
    size_t arg_len = body - tok_len - 1;
    while (arg_len && (arg[arg_len - 1] == ' ' || arg[arg_len - 1] == '\t')) arg_len--;
    out->arg = arg;
    out->arg_len = arg_len;
  }
  return bad_8bit ? LSMTP_ERR_UTF8 : LSMTP_OK;
}
