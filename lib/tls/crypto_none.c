/* The crypto adapter of a build without mbedTLS: nothing is available, so
 * SCRAM-SHA-256 and CRAM-MD5 report LSMTP_ERR_UNSUPPORTED. */
#include "crypto.h"
#include "internal.h"

int lsmtp__crypto_available(void) { return 0; }

int lsmtp__sha256(const void *in, size_t len,
                  unsigned char out[LSMTP__SHA256_LEN]) {
  (void)in, (void)len, (void)out;
  return LSMTP_ERR_UNSUPPORTED;
}

int lsmtp__hmac_sha256(const void *key, size_t key_len, const void *in,
                       size_t len, unsigned char out[LSMTP__SHA256_LEN]) {
  (void)key, (void)key_len, (void)in, (void)len, (void)out;
  return LSMTP_ERR_UNSUPPORTED;
}

int lsmtp__pbkdf2_sha256(const void *password, size_t password_len,
                         const void *salt, size_t salt_len,
                         uint32_t iterations, unsigned char *out,
                         size_t out_len) {
  (void)password, (void)password_len, (void)salt, (void)salt_len;
  (void)iterations, (void)out, (void)out_len;
  return LSMTP_ERR_UNSUPPORTED;
}

int lsmtp__hmac_md5(const void *key, size_t key_len, const void *in,
                    size_t len, unsigned char out[LSMTP__MD5_LEN]) {
  (void)key, (void)key_len, (void)in, (void)len, (void)out;
  return LSMTP_ERR_UNSUPPORTED;
}

int lsmtp__random_bytes(void *out, size_t len) {
  (void)out, (void)len;
  return LSMTP_ERR_UNSUPPORTED;
}

void lsmtp__wipe(void *p, size_t len) {
  volatile unsigned char *v = p;
  while (len--) *v++ = 0;
}
