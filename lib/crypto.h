/* The private crypto adapter: every hash, MAC, key derivation and random
 * byte the library uses goes through these functions, so one file per
 * backend (lib/tls/crypto_mbedtls.c, lib/tls/crypto_none.c) decides where
 * they come from. All return LSMTP_OK, LSMTP_ERR_UNSUPPORTED (no backend in
 * this build) or LSMTP_ERR_NOMEM / LSMTP_ERR_INVALID from the backend.
 * No function keeps state between calls. */
#ifndef LSMTP_CRYPTO_H
#define LSMTP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define LSMTP__SHA256_LEN 32
#define LSMTP__MD5_LEN 16

/* Non-zero when the functions below work in this build. */
int lsmtp__crypto_available(void);

int lsmtp__sha256(const void *in, size_t len,
                  unsigned char out[LSMTP__SHA256_LEN]);

int lsmtp__hmac_sha256(const void *key, size_t key_len, const void *in,
                       size_t len, unsigned char out[LSMTP__SHA256_LEN]);

/* PBKDF2 (RFC 8018) with HMAC-SHA-256; out_len bytes of derived key. */
int lsmtp__pbkdf2_sha256(const void *password, size_t password_len,
                         const void *salt, size_t salt_len,
                         uint32_t iterations, unsigned char *out,
                         size_t out_len);

int lsmtp__hmac_md5(const void *key, size_t key_len, const void *in,
                    size_t len, unsigned char out[LSMTP__MD5_LEN]);

/* Fill out with len bytes from a cryptographically secure generator. */
int lsmtp__random_bytes(void *out, size_t len);

/* Zero memory in a way the compiler does not remove. */
void lsmtp__wipe(void *p, size_t len);

#endif
