/* Password files for SMTP AUTH on the receiving side (smtp-receive
 * --auth-file): one user per line with a salted PBKDF2-HMAC-SHA-256 hash,
 * never the password itself. docs/auth.md describes the format:
 *
 *   # comment
 *   alice:$pbkdf2-sha256$100000$<salt, base64>$<hash, base64>
 *
 * The salt and the 32-octet hash are standard base64 (RFC 4648 §4) with
 * padding; the hash is PBKDF2 (RFC 8018) with HMAC-SHA-256 of the password
 * with that salt and iteration count. User names are compared exactly,
 * octet for octet (case-sensitive, no normalisation).
 * Needs the crypto backend: in a build without mbedTLS every function
 * returns LSMTP_ERR_UNSUPPORTED. */
#ifndef LSMTP_AUTHFILE_H
#define LSMTP_AUTHFILE_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** Iteration counts: what lsmtp_authfile_hash_line uses for 0, and the
 *  range a file may use. Below the minimum a stolen file is cheap to
 *  attack; above the maximum one login costs seconds of CPU. */
#define LSMTP_AUTHFILE_DEFAULT_ITERATIONS 100000u
#define LSMTP_AUTHFILE_MIN_ITERATIONS 1000u
#define LSMTP_AUTHFILE_MAX_ITERATIONS 10000000u

/** Salt lengths a file may use, in octets (RFC 8018 §4.1 asks for at least
 *  64 bits). lsmtp_authfile_hash_line makes 16 random octets. */
#define LSMTP_AUTHFILE_MIN_SALT 8
#define LSMTP_AUTHFILE_MAX_SALT 64

/** Longest user name, in octets (the SASL bound of lsmtp/sasl_server.h). */
#define LSMTP_AUTHFILE_USER_MAX 255

/** A buffer this large always holds a line of lsmtp_authfile_hash_line;
 *  also the longest line a file may have (including its newline). */
#define LSMTP_AUTHFILE_LINE_MAX 1024

/** Bounds on a whole file. */
#define LSMTP_AUTHFILE_MAX_USERS 100000u
#define LSMTP_AUTHFILE_MAX_SIZE (16u * 1024u * 1024u)

typedef struct lsmtp_authfile lsmtp_authfile;

/** Read and check a password file (see the top of this header). Every line
 *  must be a comment (first non-blank character '#'), blank (spaces and
 *  tabs only) or an entry; lines end with LF (a CR before it is ignored).
 *  An entry is "user:$pbkdf2-sha256$ITERATIONS$SALT$HASH" with nothing
 *  else on the line: user 1..255 octets of UTF-8 without control
 *  characters or ':' and without leading or trailing space; ITERATIONS in
 *  decimal without leading zeros, LSMTP_AUTHFILE_MIN_ITERATIONS to
 *  LSMTP_AUTHFILE_MAX_ITERATIONS; SALT 8..64 octets; HASH 32 octets.
 *  A user may appear once.
 *  *out receives an object whenever the return is not LSMTP_ERR_INVALID or
 *  LSMTP_ERR_NOMEM, also on failure: lsmtp_authfile_error then explains
 *  it, and lsmtp_authfile_del must be called either way. alloc may be NULL.
 *  Returns LSMTP_OK; LSMTP_ERR_IO (cannot open or read the file);
 *  LSMTP_ERR_SYNTAX (a malformed entry, or a duplicate user);
 *  LSMTP_ERR_TOO_LONG (a line over LSMTP_AUTHFILE_LINE_MAX);
 *  LSMTP_ERR_LIMIT (more than LSMTP_AUTHFILE_MAX_USERS entries or
 *  LSMTP_AUTHFILE_MAX_SIZE octets); LSMTP_ERR_UNSUPPORTED (no crypto
 *  backend in this build); LSMTP_ERR_INVALID (out or path NULL);
 *  LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_authfile_load(lsmtp_authfile **out,
                                  const lsmtp_allocator *alloc,
                                  const char *path);

/** Why the last load failed, e.g. "users.txt:3: iteration count out of
 *  range (1000..10000000)": NUL-terminated, one line, names the file and
 *  (for a bad line) its number, never repeats a hash. "" after a
 *  successful load; "" for NULL. Valid until lsmtp_authfile_del. */
LSMTP_API const char *lsmtp_authfile_error(const lsmtp_authfile *af);

/** Number of users loaded. */
LSMTP_API size_t lsmtp_authfile_count(const lsmtp_authfile *af);

/** Check a password: user[0..user_len) exactly as stored (case-sensitive),
 *  password[0..len) the octets the client sent. Returns LSMTP_OK when the
 *  user exists and the password matches, LSMTP_ERR_AUTH otherwise (also
 *  for an unknown user), LSMTP_ERR_STATE (the load failed),
 *  LSMTP_ERR_INVALID (NULL pointers), LSMTP_ERR_UNSUPPORTED or
 *  LSMTP_ERR_NOMEM from the crypto backend.
 *  Timing: the hash comparison takes the same time whatever the octets,
 *  and an unknown user costs the same PBKDF2 work as a known one (against
 *  a dummy entry with the file's most common iteration count), so the
 *  time taken does not tell which users exist. This call is slow on
 *  purpose (about 0.1 s at the default count); hosts that serve many
 *  connections run it off their event loop. The object is read-only
 *  after loading, so threads may call this at the same time. */
LSMTP_API int lsmtp_authfile_check(const lsmtp_authfile *af, const char *user,
                                   size_t user_len, const char *password,
                                   size_t len);

/** Make one password file line for user and password (NUL-terminated)
 *  with 16 fresh random octets of salt and the given iteration count
 *  (0 = LSMTP_AUTHFILE_DEFAULT_ITERATIONS). Writes the line, without a
 *  newline, NUL-terminated, into buf[0..cap); LSMTP_AUTHFILE_LINE_MAX is
 *  always enough. Returns LSMTP_OK; LSMTP_ERR_INVALID (NULL pointers, a
 *  user name the file format cannot hold, iterations out of range);
 *  LSMTP_ERR_UTF8 (the password is not well-formed UTF-8: SASL clients
 *  send UTF-8, so it could never match); LSMTP_ERR_TOO_LONG (cap too
 *  small, or a password over 1024 octets, the SASL server's bound; buf
 *  then holds ""); LSMTP_ERR_UNSUPPORTED (no crypto backend) or an error
 *  of the random generator. */
LSMTP_API int lsmtp_authfile_hash_line(char *buf, size_t cap, const char *user,
                                       const char *password,
                                       uint32_t iterations);

/** Destroy (the stored hashes are zeroed first); NULL does nothing. */
LSMTP_API void lsmtp_authfile_del(lsmtp_authfile *af);

LSMTP_END_DECLS

#endif
