/* SMTP replies: the streaming parser a client uses to read them and the
 * formatter a server uses to write them (RFC 5321 §4.2, RFC 3463). */
#ifndef LSMTP_REPLY_H
#define LSMTP_REPLY_H

#include <stddef.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** An RFC 3463 enhanced status code "class.subject.detail"; cls == 0 when
 *  the reply carried none. */
typedef struct lsmtp_enhanced {
  unsigned short cls;     /* 2, 4 or 5 */
  unsigned short subject; /* 0..999 */
  unsigned short detail;  /* 0..999 */
} lsmtp_enhanced;

/** A complete reply as the parser hands it out. The text pointers stay valid
 *  until the next call on the parser. */
typedef struct lsmtp_reply {
  int code;                /* 200..599 */
  lsmtp_enhanced enhanced; /* from the first line; cls 0 when absent */
  /* The text of all lines joined by "\n" (no trailing newline), without
   * the "NNN-" / "NNN " prefixes and without the enhanced code of each
   * line. NUL-terminated for convenience; text_len excludes the NUL. */
  const char *text;
  size_t text_len;
  size_t lines; /* number of lines, >= 1 */
} lsmtp_reply;

/** Default bounds for the reply parser. RFC 5321 §4.5.3.1.5 sets 512 octets
 *  per reply line; real servers exceed it, so the default allows more. */
#define LSMTP_REPLY_DEFAULT_MAX_LINE 2048
#define LSMTP_REPLY_DEFAULT_MAX_LINES 100

typedef struct lsmtp_reply_parser lsmtp_reply_parser;

/** Create a reply parser. alloc may be NULL (default allocator). max_line
 *  (octets per line including CRLF) and max_lines bound the input; 0 picks
 *  the defaults above. Returns LSMTP_OK or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_reply_parser_new(lsmtp_reply_parser **out,
                                     const lsmtp_allocator *alloc,
                                     size_t max_line, size_t max_lines);

/** Destroy a parser; NULL does nothing. */
LSMTP_API void lsmtp_reply_parser_del(lsmtp_reply_parser *p);

/** Feed bytes. Stops after one complete reply so that pipelined replies can
 *  be matched one by one: *consumed says how many bytes were used (feed the
 *  rest again).
 *  Returns LSMTP_DONE when a reply is complete (see lsmtp_reply_parser_get),
 *  LSMTP_INCOMPLETE when all input was used and more is needed, or an error:
 *  LSMTP_ERR_BAD_REPLY (bad code, mixed codes across lines, bad separator),
 *  LSMTP_ERR_TOO_LONG (a line over max_line, or more than max_lines lines),
 *  LSMTP_ERR_BARE_EOL, LSMTP_ERR_NUL. Errors are fatal: the parser then
 *  returns LSMTP_ERR_FATAL until destroyed. */
LSMTP_API int lsmtp_reply_parser_feed(lsmtp_reply_parser *p, const char *data,
                                      size_t len, size_t *consumed);

/** The reply completed by the last feed that returned LSMTP_DONE; NULL
 *  otherwise. Valid until the next feed. */
LSMTP_API const lsmtp_reply *lsmtp_reply_parser_get(const lsmtp_reply_parser *p);

/** Parse "x.y.z" at the start of s (as in "2.1.0 Ok"): class 2, 4 or 5,
 *  subject and detail of 1-3 digits, followed by the end of s or a space
 *  (so "2.1.0ok" and "2.1.0.1" are not codes). On success stores the code,
 *  and the number of bytes used (not counting the space) in *used, and
 *  returns LSMTP_OK; otherwise LSMTP_ERR_SYNTAX. */
LSMTP_API int lsmtp_enhanced_parse(const char *s, size_t len,
                                   lsmtp_enhanced *out, size_t *used);

/** Format a reply into buf, exactly like snprintf: returns the number of
 *  bytes the whole reply needs, excluding the terminating NUL; when cap is
 *  too small it writes cap-1 bytes and a NUL. enhanced may be NULL or "x.y.z"
 *  and is repeated on each line. text may hold several lines separated by
 *  "\n" (a multi-line reply: "NNN-" on all but the last). Any CR, other
 *  control byte or NUL inside text becomes a space, so host text can never
 *  inject a line. code must be 2xx..5xx with a second digit 0..5 (RFC 5321
 *  §4.2: what the parser accepts); enhanced, when given, must be well
 *  formed and of the code's class. Otherwise nothing is written and 0 is
 *  returned. NULL text is the empty text. */
LSMTP_API size_t lsmtp_reply_format(char *buf, size_t cap, int code,
                                    const char *enhanced, const char *text,
                                    size_t text_len);

LSMTP_END_DECLS

#endif
