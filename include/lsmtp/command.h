/* SMTP command lines (RFC 5321 §4.1 and extensions): the verb table and
 * the parser a server uses on each complete line. */
#ifndef LSMTP_COMMAND_H
#define LSMTP_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** Command verbs. LSMTP_VERB_UNKNOWN for anything else. */
typedef enum lsmtp_verb {
  LSMTP_VERB_UNKNOWN = 0,
  LSMTP_VERB_EHLO,
  LSMTP_VERB_HELO,
  LSMTP_VERB_LHLO,
  LSMTP_VERB_MAIL,
  LSMTP_VERB_RCPT,
  LSMTP_VERB_DATA,
  LSMTP_VERB_BDAT,
  LSMTP_VERB_RSET,
  LSMTP_VERB_NOOP,
  LSMTP_VERB_QUIT,
  LSMTP_VERB_VRFY,
  LSMTP_VERB_EXPN,
  LSMTP_VERB_HELP,
  LSMTP_VERB_STARTTLS,
  LSMTP_VERB_AUTH
} lsmtp_verb;

/** Default bound on a command line including CRLF. RFC 5321 §4.5.3.1.4 says
 *  512, and RFC 1870, 3461, 4954 and 6531 add to MAIL and RCPT. */
#define LSMTP_CMD_DEFAULT_MAX_LINE 2048
/** Bound on an AUTH continuation line (RFC 4954 §4: 12288 octets). */
#define LSMTP_AUTH_DEFAULT_MAX_LINE 12288

/** A parsed command line. Pointers point into the line given to the parser. */
typedef struct lsmtp_cmd {
  lsmtp_verb verb;
  const char *verb_text; /* the verb as written */
  size_t verb_len;
  const char *arg; /* after the space following the verb, trailing SP/TAB
                      stripped; not NUL-terminated (with no argument it
                      points at the CRLF and arg_len is 0) */
  size_t arg_len;  /* excludes the CRLF */
} lsmtp_cmd;

/** Parse one complete command line, which must end in CRLF (line_len counts
 *  it). Verbs are matched case-insensitively; "MAIL FROM:" and "RCPT TO:"
 *  keep their "FROM:"/"TO:" in arg (see lsmtp_mail_parse/_rcpt_parse).
 *  Returns LSMTP_OK (verb may be LSMTP_VERB_UNKNOWN: answer 500 5.5.1),
 *  LSMTP_ERR_BARE_EOL (CR or LF inside the line, or no CRLF at its end),
 *  LSMTP_ERR_NUL, LSMTP_ERR_UTF8 (8-bit byte: commands are ASCII; RFC 6531
 *  addresses are checked by the address parser, which is handed the arg
 *  only after this check when flags has LSMTP_CMD_ALLOW_8BIT),
 *  LSMTP_ERR_SYNTAX (empty line, or a known verb glued to more bytes as in
 *  "MAILX" or "DATA\t"). When several faults are present the first in
 *  this order wins: bare EOL, NUL, 8-bit, syntax. LSMTP_CMD_ALLOW_8BIT
 *  allows 8-bit bytes in the argument only; on an LSMTP_ERR_UTF8 from the
 *  argument, out still holds the verb and argument (so a server can answer
 *  553 5.6.7 to MAIL/RCPT). */
LSMTP_API int lsmtp_cmd_parse(const char *line, size_t line_len, unsigned flags,
                              lsmtp_cmd *out);
#define LSMTP_CMD_ALLOW_8BIT 0x1u /* SMTPUTF8 session: UTF-8 in arguments */

/** The canonical upper-case name of a verb ("EHLO"...; "" for unknown). */
LSMTP_API const char *lsmtp_verb_name(lsmtp_verb verb);

/** Parse a BDAT argument "chunk-size [LAST]" (RFC 3030). chunk-size is
 *  1*DIGIT and must fit in uint64_t. Returns LSMTP_OK or LSMTP_ERR_SYNTAX. */
LSMTP_API int lsmtp_bdat_parse(const char *arg, size_t len, uint64_t *size,
                               int *last);

/** Write "BDAT <size>[ LAST]\r\n" into buf (snprintf-like: returns the
 *  length needed, writes at most cap bytes, NUL-terminates when room). */
LSMTP_API size_t lsmtp_bdat_format(char *buf, size_t cap, uint64_t size,
                                   int last);

LSMTP_END_DECLS

#endif
