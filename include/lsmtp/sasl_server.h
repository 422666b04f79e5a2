/* Server-side SASL (RFC 4422) for SMTP AUTH (RFC 4954): the exchange of the
 * PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) mechanisms,
 * sans-I/O. The server session feeds it the AUTH command's mechanism and
 * initial response, then each continuation line the client sends; it hands
 * back the base64 challenge to send after "334 " or, at the end, the
 * decoded identities and password for the host to check (for example with
 * lsmtp/authfile.h). The object never decides whether credentials are
 * right: that, and whether proxy authorization is allowed, is the host's.
 *
 *   rc = lsmtp_sasl_server_new(&s, alloc, mech, mech_len, ir, ir_len);
 *   if (rc == LSMTP_OK) rc = lsmtp_sasl_server_start(s, &ch);
 *   while (rc == LSMTP_INCOMPLETE) {
 *     send "334 " ch CRLF; read one line (without CRLF);
 *     rc = lsmtp_sasl_server_step(s, line, line_len, &ch);
 *   }
 *   if (rc == LSMTP_DONE) rc = host_check(authzid, authcid, password);
 *   send the reply lsmtp_sasl_server_reply(rc, ...) names;
 *   lsmtp_sasl_server_del(s);
 *
 * Replies of the AUTH exchange (RFC 4954 §4, §6; RFC 3463 codes):
 *   334 <challenge>   LSMTP_INCOMPLETE: send the challenge, read a line.
 *   235 2.7.0         the host accepted the credentials (LSMTP_OK).
 *   535 5.7.8         the host refused the credentials (LSMTP_ERR_AUTH),
 *                     also for a proxy authorization it does not allow.
 *   454 4.7.0         the host could not check now (LSMTP_ERR_TEMPFAIL).
 *   501 5.5.2         malformed response: LSMTP_ERR_SYNTAX, _TOO_LONG,
 *                     _UTF8, _NUL (see lsmtp_sasl_server_step).
 *   501 5.0.0         the client cancelled with "*" (LSMTP_ERR_REFUSED).
 *   504 5.5.4         unknown or unoffered mechanism (LSMTP_ERR_UNSUPPORTED
 *                     from lsmtp_sasl_server_new).
 *   538 5.7.11        the mechanism needs TLS and the session is not
 *                     encrypted (LSMTP_ERR_INSECURE; a session decision:
 *                     PLAIN and LOGIN send the password readable, so the
 *                     session refuses them before STARTTLS by default).
 * Replies the session sends on its own, listed here so the set is whole:
 *   530 5.7.0         MAIL (or another command) while the host requires
 *                     authentication and none succeeded.
 *   500 5.5.6         a continuation line longer than the session's bound
 *                     (LSMTP_SERVER_LIMIT_AUTH_LINE, 12288 by default).
 *   503 5.5.1         AUTH after a successful AUTH, or inside a mail
 *                     transaction.
 * lsmtp_sasl_server_reply maps a status to the first group's replies. */
#ifndef LSMTP_SASL_SERVER_H
#define LSMTP_SASL_SERVER_H

#include <stddef.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>
#include <lsmtp/sasl.h>

LSMTP_BEGIN_DECLS

/** Bounds on the decoded fields, in octets. A response with a longer field
 *  is refused with LSMTP_ERR_TOO_LONG. RFC 4616 §2 asks servers to take at
 *  least 255 octets for each identity and password; passwords get more
 *  room because generated ones and pass phrases are long. */
#define LSMTP_SASL_SERVER_AUTHZID_MAX 255
#define LSMTP_SASL_SERVER_AUTHCID_MAX 255
#define LSMTP_SASL_SERVER_PASSWORD_MAX 1024

/** The LOGIN mechanism's challenges: base64 of "Username:" and
 *  "Password:", the texts every LOGIN client expects. */
#define LSMTP_SASL_LOGIN_CHALLENGE_USER "VXNlcm5hbWU6"
#define LSMTP_SASL_LOGIN_CHALLENGE_PASS "UGFzc3dvcmQ6"

typedef struct lsmtp_sasl_server lsmtp_sasl_server;

/** The mechanisms the server side implements, as a mask of LSMTP_SASL_BIT
 *  (PLAIN and LOGIN). They need no crypto backend. */
LSMTP_API unsigned lsmtp_sasl_server_mechs(void);

/** Begin the exchange of one AUTH command. mech[0..mech_len) is the
 *  mechanism name as the client wrote it (case-insensitive, need not be
 *  NUL-terminated). initial[0..initial_len) is the initial response as
 *  sent (base64 text, "=" for an empty one), or NULL / length 0 when the
 *  command had none; it is copied, and only looked at by
 *  lsmtp_sasl_server_start, so all its errors are reported there.
 *  alloc may be NULL (default allocator).
 *  Returns LSMTP_OK, LSMTP_ERR_UNSUPPORTED (not PLAIN or LOGIN: reply
 *  504 5.5.4; *out is NULL), LSMTP_ERR_INVALID (NULL pointers with
 *  lengths) or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_sasl_server_new(lsmtp_sasl_server **out,
                                    const lsmtp_allocator *alloc,
                                    const char *mech, size_t mech_len,
                                    const char *initial, size_t initial_len);

/** Destroy; the decoded password and every copy of client data are zeroed
 *  first. NULL does nothing. */
LSMTP_API void lsmtp_sasl_server_del(lsmtp_sasl_server *s);

/** The mechanism of this exchange (LSMTP_SASL_PLAIN or LSMTP_SASL_LOGIN). */
LSMTP_API lsmtp_sasl_mech lsmtp_sasl_server_mech(const lsmtp_sasl_server *s);

/** Process the initial response given to lsmtp_sasl_server_new, or produce
 *  the first challenge when there was none. Call once. Returns what
 *  lsmtp_sasl_server_step returns (LSMTP_INCOMPLETE with *challenge,
 *  LSMTP_DONE, or an error), and LSMTP_ERR_STATE when called twice. */
LSMTP_API int lsmtp_sasl_server_start(lsmtp_sasl_server *s,
                                      const char **challenge);

/** Process one continuation line from the client: line[0..len) is the
 *  text without its CRLF. Strict base64 (RFC 4648, padding required, no
 *  whitespace; an empty line is an empty response). Returns:
 *   - LSMTP_INCOMPLETE: send "334 " *challenge CRLF (a static,
 *     NUL-terminated base64 string; "" for PLAIN's empty challenge, which
 *     gives "334 ") and call again with the client's next line;
 *   - LSMTP_DONE: the exchange is complete; read the identities and the
 *     password with the getters below and decide (235 / 535);
 *   - LSMTP_ERR_REFUSED: the line was "*", the client cancelled (501 5.0.0);
 *   - LSMTP_ERR_SYNTAX: not base64, PLAIN without exactly two NUL
 *     separators, or an empty authentication identity or password (RFC
 *     4616 §2 and LOGIN both require them non-empty) (501 5.5.2);
 *   - LSMTP_ERR_TOO_LONG: a field over its LSMTP_SASL_SERVER_*_MAX
 *     (501 5.5.2);
 *   - LSMTP_ERR_UTF8: a field is not well-formed UTF-8 (501 5.5.2);
 *   - LSMTP_ERR_NUL: a LOGIN field contains a NUL octet (501 5.5.2);
 *   - LSMTP_ERR_STATE: not started, or already done or failed;
 *   - LSMTP_ERR_INVALID: NULL pointers.
 *  Every error ends the exchange: later calls return LSMTP_ERR_STATE. */
LSMTP_API int lsmtp_sasl_server_step(lsmtp_sasl_server *s, const char *line,
                                     size_t len, const char **challenge);

/** After LSMTP_DONE: the authorization identity the client asked to act as,
 *  "" when it gave none (always "" for LOGIN). NUL-terminated, no NUL
 *  inside, well-formed UTF-8; *len (len may be NULL) gets its length.
 *  Valid until lsmtp_sasl_server_del. NULL before LSMTP_DONE. */
LSMTP_API const char *lsmtp_sasl_server_authzid(const lsmtp_sasl_server *s,
                                                size_t *len);

/** After LSMTP_DONE: the authentication identity (the user name whose
 *  password is checked); non-empty; otherwise as lsmtp_sasl_server_authzid. */
LSMTP_API const char *lsmtp_sasl_server_authcid(const lsmtp_sasl_server *s,
                                                size_t *len);

/** After LSMTP_DONE: the password; non-empty; otherwise as
 *  lsmtp_sasl_server_authzid. Zeroed by lsmtp_sasl_server_del. */
LSMTP_API const char *lsmtp_sasl_server_password(const lsmtp_sasl_server *s,
                                                 size_t *len);

/** After LSMTP_DONE: non-zero when the client asks to act as someone other
 *  than itself (a non-empty authzid that differs octet for octet from the
 *  authcid). Such a request is proxy authorization (RFC 4422 §2); a host
 *  that does not allow it for this authcid must refuse with 535 5.7.8
 *  even when the password is right. 0 before LSMTP_DONE. */
LSMTP_API int lsmtp_sasl_server_is_proxy(const lsmtp_sasl_server *s);

/** The reply for a status of an AUTH exchange (see the table at the top):
 *  returns the reply code and sets *enhanced (e.g. "5.5.2") and *text (a
 *  short reply text) to static strings; either pointer may be NULL.
 *  LSMTP_OK is the host's acceptance (235), LSMTP_ERR_AUTH its refusal
 *  (535), LSMTP_ERR_TEMPFAIL its failure to decide (454).
 *  LSMTP_INCOMPLETE gives 334 with *enhanced and *text NULL: the challenge
 *  is the text. LSMTP_DONE gives 0: the host decides first. Any other
 *  error gives 454 4.7.0. */
LSMTP_API int lsmtp_sasl_server_reply(int status, const char **enhanced,
                                      const char **text);

LSMTP_END_DECLS

#endif
