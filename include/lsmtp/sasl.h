/* Client-side SASL (RFC 4422) for SMTP AUTH (RFC 4954): PLAIN (RFC 4616),
 * LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2, OAUTHBEARER (RFC 7628) and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677). The mechanisms work on raw bytes; the
 * base64 framing of AUTH lines is the client session's job (lsmtp/client.h).
 * Secrets are kept only inside the object and wiped when it is destroyed. */
#ifndef LSMTP_SASL_H
#define LSMTP_SASL_H

#include <stddef.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** SASL mechanisms the client knows. Each is also a bit (1u << mech) in the
 *  masks below and in lsmtp_client_auth_mechs(). */
typedef enum lsmtp_sasl_mech {
  LSMTP_SASL_NONE = 0, /* "choose for me" where a mechanism is asked for */
  LSMTP_SASL_PLAIN,
  LSMTP_SASL_LOGIN,
  LSMTP_SASL_CRAM_MD5,
  LSMTP_SASL_XOAUTH2,
  LSMTP_SASL_OAUTHBEARER,
  LSMTP_SASL_SCRAM_SHA_256
} lsmtp_sasl_mech;

/** The bit of a mechanism in a mechanism mask. */
#define LSMTP_SASL_BIT(mech) (1u << (unsigned)(mech))

/** What the host authenticates with. Strings are NUL-terminated and copied by
 *  lsmtp_sasl_client_new, so they may be freed after it returns.
 *  SASLprep (RFC 4013) decision: lsmtp accepts user names and passwords of
 *  printable ASCII (0x20..0x7E) only, which SASLprep leaves unchanged, and
 *  rejects anything else with LSMTP_ERR_UTF8 instead of sending a string the
 *  server might normalise differently. Tokens must be printable ASCII too. */
typedef struct lsmtp_sasl_credentials {
  const char *authzid;     /* identity to act as; NULL or "" for none */
  const char *username;    /* authentication identity */
  const char *password;    /* PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256 */
  const char *oauth_token; /* bearer token: XOAUTH2, OAUTHBEARER */
  const char *host;        /* OAUTHBEARER "host=" (optional, may be NULL) */
  unsigned port;           /* OAUTHBEARER "port=" (0 = not sent) */
} lsmtp_sasl_credentials;

typedef struct lsmtp_sasl_client lsmtp_sasl_client;

/** The IANA name of a mechanism ("SCRAM-SHA-256"...); "" for NONE. Static. */
LSMTP_API const char *lsmtp_sasl_mech_name(lsmtp_sasl_mech mech);

/** The mechanism with this name (case-insensitive); LSMTP_SASL_NONE when
 *  the name is not one lsmtp implements. */
LSMTP_API lsmtp_sasl_mech lsmtp_sasl_mech_from_name(const char *name,
                                                    size_t len);

/** Non-zero when this build can run the mechanism (SCRAM-SHA-256 and
 *  CRAM-MD5 need the crypto backend, i.e. a build with mbedTLS). */
LSMTP_API int lsmtp_sasl_mech_available(lsmtp_sasl_mech mech);

/** Pick the strongest mechanism of `offered` (a mask of LSMTP_SASL_BIT) that
 *  the credentials can use and this build supports. With an OAuth token:
 *  OAUTHBEARER, then XOAUTH2. With a password: SCRAM-SHA-256, then PLAIN,
 *  then LOGIN. CRAM-MD5 is never chosen here (it needs the password stored
 *  in the clear on the server and has no channel protection); ask for it by
 *  name. Returns LSMTP_SASL_NONE when nothing fits. */
LSMTP_API lsmtp_sasl_mech lsmtp_sasl_choose(unsigned offered,
                                            const lsmtp_sasl_credentials *creds);

/** Create a client for one exchange of `mech`. alloc may be NULL.
 *  Returns LSMTP_OK, LSMTP_ERR_INVALID (mech NONE, or a credential the
 *  mechanism needs is missing), LSMTP_ERR_UTF8 (see SASLprep above),
 *  LSMTP_ERR_UNSUPPORTED (mechanism needs crypto this build lacks),
 *  LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_sasl_client_new(lsmtp_sasl_client **out,
                                    const lsmtp_allocator *alloc,
                                    lsmtp_sasl_mech mech,
                                    const lsmtp_sasl_credentials *creds);

/** Destroy (secrets are zeroed first); NULL does nothing. */
LSMTP_API void lsmtp_sasl_client_del(lsmtp_sasl_client *s);

/** The mechanism of this client. */
LSMTP_API lsmtp_sasl_mech lsmtp_sasl_client_mech(const lsmtp_sasl_client *s);

/** Use this client nonce for SCRAM instead of random bytes (RFC test
 *  vectors, deterministic tests). Printable ASCII except ','; copied.
 *  Call before lsmtp_sasl_client_start. Returns LSMTP_OK, LSMTP_ERR_INVALID
 *  or LSMTP_ERR_STATE (not SCRAM, or already started). */
LSMTP_API int lsmtp_sasl_client_set_nonce(lsmtp_sasl_client *s,
                                          const char *nonce, size_t len);

/** Begin: the initial response. On LSMTP_OK *out and *out_len hold it (raw
 *  bytes, possibly empty; valid until the next call on s). Returns
 *  LSMTP_INCOMPLETE when the mechanism sends nothing before the first
 *  challenge (LOGIN, CRAM-MD5), LSMTP_ERR_STATE when called twice,
 *  LSMTP_ERR_UNSUPPORTED / LSMTP_ERR_NOMEM from the crypto backend. */
LSMTP_API int lsmtp_sasl_client_start(lsmtp_sasl_client *s, const char **out,
                                      size_t *out_len);

/** Answer a server challenge (already base64-decoded). On LSMTP_OK
 *  *out and *out_len hold the response to send (possibly empty).
 *  Returns LSMTP_OK, or LSMTP_ERR_AUTH when the challenge is malformed or
 *  the server failed to prove itself (SCRAM server signature, SCRAM "e="),
 *  in which case the exchange must be cancelled ("*"). For XOAUTH2 and
 *  OAUTHBEARER a challenge after the initial response is the server's error
 *  (JSON); it is kept (lsmtp_sasl_client_server_error) and the response is
 *  the one the mechanism prescribes so the server can send its failure. */
LSMTP_API int lsmtp_sasl_client_step(lsmtp_sasl_client *s,
                                     const char *challenge, size_t len,
                                     const char **out, size_t *out_len);

/** Non-zero when the exchange is complete from the client's side and, for
 *  SCRAM, the server's signature has been verified. The client session
 *  treats a 235 before that as an authentication failure. */
LSMTP_API int lsmtp_sasl_client_finished(const lsmtp_sasl_client *s);

/** The error text the server sent inside the exchange (OAuth JSON, SCRAM
 *  "e=" value); NULL when none. NUL-terminated, valid while s lives. */
LSMTP_API const char *lsmtp_sasl_client_server_error(const lsmtp_sasl_client *s);

LSMTP_END_DECLS

#endif
