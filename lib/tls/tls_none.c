/* The TLS filter in a build without mbedTLS: nothing can be created, so a
 * host sees lsmtp_tls_available() == 0 and does not offer TLS. */
#include "internal.h"
#include <lsmtp/tls.h>

int lsmtp_tls_available(void) { return 0; }

int lsmtp_tls_config_new(lsmtp_tls_config **out, const lsmtp_allocator *alloc,
                         lsmtp_tls_role role) {
  (void)alloc;
  (void)role;
  if (out) *out = NULL;
  return LSMTP_ERR_UNSUPPORTED;
}
void lsmtp_tls_config_del(lsmtp_tls_config *cfg) { (void)cfg; }
int lsmtp_tls_config_set_cert_files(lsmtp_tls_config *cfg, const char *c, const char *k,
                                    const char *p) {
  (void)cfg, (void)c, (void)k, (void)p;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_config_set_cert_pem(lsmtp_tls_config *cfg, const char *c, size_t cl,
                                  const char *k, size_t kl, const char *p) {
  (void)cfg, (void)c, (void)cl, (void)k, (void)kl, (void)p;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_config_set_ca_file(lsmtp_tls_config *cfg, const char *path) {
  (void)cfg, (void)path;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_config_set_ca_pem(lsmtp_tls_config *cfg, const char *pem, size_t len) {
  (void)cfg, (void)pem, (void)len;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_config_set_verify(lsmtp_tls_config *cfg, int verify) {
  (void)cfg, (void)verify;
  return LSMTP_ERR_UNSUPPORTED;
}
const char *lsmtp_tls_config_error(const lsmtp_tls_config *cfg) {
  (void)cfg;
  return "TLS is not available in this build";
}
int lsmtp_tls_new(lsmtp_tls **out, lsmtp_tls_config *cfg, const char *name) {
  (void)cfg, (void)name;
  if (out) *out = NULL;
  return LSMTP_ERR_UNSUPPORTED;
}
void lsmtp_tls_del(lsmtp_tls *tls) { (void)tls; }
int lsmtp_tls_feed(lsmtp_tls *tls, const char *d, size_t len, size_t *consumed) {
  (void)tls, (void)d, (void)len;
  if (consumed) *consumed = 0;
  return LSMTP_ERR_UNSUPPORTED;
}
size_t lsmtp_tls_pending(const lsmtp_tls *tls, const char **data) {
  (void)tls;
  if (data) *data = NULL;
  return 0;
}
int lsmtp_tls_consume(lsmtp_tls *tls, size_t n) {
  (void)tls, (void)n;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_handshake(lsmtp_tls *tls) {
  (void)tls;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_read(lsmtp_tls *tls, char *buf, size_t cap, size_t *n) {
  (void)tls, (void)buf, (void)cap;
  if (n) *n = 0;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_write(lsmtp_tls *tls, const char *d, size_t len) {
  (void)tls, (void)d, (void)len;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_close(lsmtp_tls *tls) {
  (void)tls;
  return LSMTP_ERR_UNSUPPORTED;
}
int lsmtp_tls_is_established(const lsmtp_tls *tls) {
  (void)tls;
  return 0;
}
const char *lsmtp_tls_version(const lsmtp_tls *tls) {
  (void)tls;
  return "";
}
const char *lsmtp_tls_cipher(const lsmtp_tls *tls) {
  (void)tls;
  return "";
}
const char *lsmtp_tls_error_text(const lsmtp_tls *tls) {
  (void)tls;
  return "TLS is not available in this build";
}
