/* Base64 (RFC 4648, for SASL) and xtext (RFC 3461, for DSN and AUTH=). */
#ifndef LSMTP_BASE64_H
#define LSMTP_BASE64_H

#include <stddef.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** Bytes needed to base64-encode n bytes (with padding, without NUL). */
#define LSMTP_BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/** Encode in[0..len) into out. Returns the encoded length; writes nothing
 *  and returns the length needed when cap is too small (then out may be
 *  NULL). NUL-terminates when room is left. */
LSMTP_API size_t lsmtp_base64_encode(char *out, size_t cap, const void *in,
                                     size_t len);

/** Decode strict base64 (padding required, no whitespace). On success
 *  stores the decoded length in *out_len and returns LSMTP_OK; returns
 *  LSMTP_ERR_SYNTAX for bad input (also when cap is too small as well),
 *  LSMTP_ERR_TOO_LONG when cap is too small (*out_len then holds the size
 *  needed), LSMTP_ERR_INVALID for NULL pointers with a non-zero length.
 *  "=" alone (an empty SASL response) decodes to zero bytes. */
LSMTP_API int lsmtp_base64_decode(void *out, size_t cap, size_t *out_len,
                                  const char *in, size_t len);

/** Decode xtext ("+XX" hex escapes, upper-case hex) into out; returns
 *  LSMTP_OK, LSMTP_ERR_SYNTAX or LSMTP_ERR_TOO_LONG. */
LSMTP_API int lsmtp_xtext_decode(char *out, size_t cap, size_t *out_len,
                                 const char *in, size_t len);

/** Check that in[0..len) is valid xtext. Returns LSMTP_OK or
 *  LSMTP_ERR_SYNTAX. */
LSMTP_API int lsmtp_xtext_check(const char *in, size_t len);

/** Encode into xtext (bytes outside "!".."~", "+" and "=" become "+XX").
 *  Returns the length needed; when cap is too small nothing but an empty
 *  string is written (never a truncated value). */
LSMTP_API size_t lsmtp_xtext_encode(char *out, size_t cap, const char *in,
                                    size_t len);

LSMTP_END_DECLS

#endif
