/* The crypto adapter over mbedTLS 2.28 (md, pkcs5, entropy + CTR-DRBG).
 * Every call sets up and frees its own contexts: there is no global state,
 * and the callers (SASL exchanges) are rare enough that the cost of seeding
 * a DRBG per call does not matter. */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>

#include "crypto.h"
#include "internal.h"

int lsmtp__crypto_available(void) { return 1; }

static int map_err(int rc) {
  if (rc == 0) return LSMTP_OK;
  if (rc == MBEDTLS_ERR_MD_ALLOC_FAILED) return LSMTP_ERR_NOMEM;
  return LSMTP_ERR_INVALID;
}

int lsmtp__sha256(const void *in, size_t len,
                  unsigned char out[LSMTP__SHA256_LEN]) {
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  if (!md) return LSMTP_ERR_UNSUPPORTED;
  return map_err(mbedtls_md(md, in, len, out));
}

static int hmac(mbedtls_md_type_t type, const void *key, size_t key_len,
                const void *in, size_t len, unsigned char *out) {
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(type);
  if (!md) return LSMTP_ERR_UNSUPPORTED;
  return map_err(mbedtls_md_hmac(md, key, key_len, in, len, out));
}

int lsmtp__hmac_sha256(const void *key, size_t key_len, const void *in,
                       size_t len, unsigned char out[LSMTP__SHA256_LEN]) {
  return hmac(MBEDTLS_MD_SHA256, key, key_len, in, len, out);
}

int lsmtp__hmac_md5(const void *key, size_t key_len, const void *in,
                    size_t len, unsigned char out[LSMTP__MD5_LEN]) {
  return hmac(MBEDTLS_MD_MD5, key, key_len, in, len, out);
}

int lsmtp__pbkdf2_sha256(const void *password, size_t password_len,
                         const void *salt, size_t salt_len,
                         uint32_t iterations, unsigned char *out,
                         size_t out_len) {
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  if (!md) return LSMTP_ERR_UNSUPPORTED;
  if (out_len > UINT32_MAX) return LSMTP_ERR_INVALID;
  mbedtls_md_context_t ctx;
  mbedtls_md_init(&ctx);
  int rc = mbedtls_md_setup(&ctx, md, 1);
  if (rc == 0)
    rc = mbedtls_pkcs5_pbkdf2_hmac(&ctx, password, password_len, salt,
                                   salt_len, (unsigned int)iterations,
                                   (uint32_t)out_len, out);
  mbedtls_md_free(&ctx);
  return map_err(rc);
}

int lsmtp__random_bytes(void *out, size_t len) {
  static const char personal[] = "lsmtp random";
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                 (const unsigned char *)personal,
                                 sizeof personal - 1);
  unsigned char *p = out;
  while (rc == 0 && len > 0) {
    size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len
                                                  : MBEDTLS_CTR_DRBG_MAX_REQUEST;
    rc = mbedtls_ctr_drbg_random(&drbg, p, n);
    p += n;
    len -= n;
  }
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  return rc == 0 ? LSMTP_OK : LSMTP_ERR_UNSUPPORTED;
}

void lsmtp__wipe(void *p, size_t len) { mbedtls_platform_zeroize(p, len); }
