/* The TLS filter over mbedTLS: ciphertext goes in and out through two
 * memory buffers (the BIO callbacks below never touch a socket), so
 * STARTTLS is just a state of whoever drives the session. Every TLS call of
 * the library lives in this file; version-specific calls are fenced so a
 * later mbedTLS 3.x is this file's work alone. */
#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "crypto.h"
#include "internal.h"
#include <lsmtp/tls.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define LSMTP__MBEDTLS3 1
#endif

/* Ciphertext we hold from the network before the host must read
 * plaintext out: a little more than one full TLS record. */
#define TLS_INPUT_BOUND (18u * 1024u + 512u)

/* Forward-secret AEAD suites only; TLS 1.2 is the floor. */
static const int lsmtp_tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
#ifdef MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
#endif
    MBEDTLS_TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
    0};

struct lsmtp_tls_config {
  const lsmtp_allocator *alloc;
  lsmtp_tls_role role;
  int verify;
  int ca_set;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt ca;
  mbedtls_x509_crt cert;
  mbedtls_pk_context key;
  char err[256];
};

struct lsmtp_tls {
  lsmtp_tls_config *cfg;
  mbedtls_ssl_context ssl;
  lsmtp__buf in; /* ciphertext from the peer, read from in_off */
  size_t in_off;
  lsmtp__buf out; /* ciphertext for the peer */
  int established;
  int failed;
  int closed;
  char err[512];
};

int lsmtp_tls_available(void) { return 1; }

static void set_mbed_error(char *dst, size_t cap, const char *what, int ret) {
  char text[200];
  mbedtls_strerror(ret, text, sizeof text);
  snprintf(dst, cap, "%s: %s (-0x%04x)", what, text, (unsigned)-ret);
}

int lsmtp_tls_config_new(lsmtp_tls_config **out, const lsmtp_allocator *alloc,
                         lsmtp_tls_role role) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (role != LSMTP_TLS_CLIENT && role != LSMTP_TLS_SERVER) return LSMTP_ERR_INVALID;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_tls_config *cfg = lsmtp__calloc(alloc, 1, sizeof *cfg);
  if (!cfg) return LSMTP_ERR_NOMEM;
  cfg->alloc = alloc;
  cfg->role = role;
  cfg->verify = role == LSMTP_TLS_CLIENT;
  mbedtls_entropy_init(&cfg->entropy);
  mbedtls_ctr_drbg_init(&cfg->drbg);
  mbedtls_ssl_config_init(&cfg->conf);
  mbedtls_x509_crt_init(&cfg->ca);
  mbedtls_x509_crt_init(&cfg->cert);
  mbedtls_pk_init(&cfg->key);

  static const unsigned char pers[] = "lsmtp tls";
  int ret = mbedtls_ctr_drbg_seed(&cfg->drbg, mbedtls_entropy_func, &cfg->entropy, pers,
                                  sizeof pers - 1);
  if (ret == 0)
    ret = mbedtls_ssl_config_defaults(
        &cfg->conf, role == LSMTP_TLS_SERVER ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) {
    lsmtp_tls_config_del(cfg);
    return LSMTP_ERR_TLS;
  }
  mbedtls_ssl_conf_rng(&cfg->conf, mbedtls_ctr_drbg_random, &cfg->drbg);
#ifdef LSMTP__MBEDTLS3
  mbedtls_ssl_conf_min_tls_version(&cfg->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(&cfg->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                               MBEDTLS_SSL_MINOR_VERSION_3);
#endif
  mbedtls_ssl_conf_ciphersuites(&cfg->conf, lsmtp_tls_suites);
  mbedtls_ssl_conf_authmode(&cfg->conf, cfg->verify ? MBEDTLS_SSL_VERIFY_REQUIRED
                                                    : MBEDTLS_SSL_VERIFY_NONE);
  *out = cfg;
  return LSMTP_OK;
}

void lsmtp_tls_config_del(lsmtp_tls_config *cfg) {
  if (!cfg) return;
  mbedtls_pk_free(&cfg->key);
  mbedtls_x509_crt_free(&cfg->cert);
  mbedtls_x509_crt_free(&cfg->ca);
  mbedtls_ssl_config_free(&cfg->conf);
  mbedtls_ctr_drbg_free(&cfg->drbg);
  mbedtls_entropy_free(&cfg->entropy);
  lsmtp__free(cfg->alloc, cfg);
}

const char *lsmtp_tls_config_error(const lsmtp_tls_config *cfg) {
  return cfg ? cfg->err : "";
}

/* Parse a key; mbedTLS 3 wants the RNG for blinding. */
static int parse_key(lsmtp_tls_config *cfg, const unsigned char *pem, size_t len,
                     const char *password) {
  const unsigned char *pw = (const unsigned char *)password;
  size_t pwlen = password ? strlen(password) : 0;
#ifdef LSMTP__MBEDTLS3
  return mbedtls_pk_parse_key(&cfg->key, pem, len, pw, pwlen, mbedtls_ctr_drbg_random,
                              &cfg->drbg);
#else
  return mbedtls_pk_parse_key(&cfg->key, pem, len, pw, pwlen);
#endif
}

static int check_pair(lsmtp_tls_config *cfg) {
#ifdef LSMTP__MBEDTLS3
  return mbedtls_pk_check_pair(&cfg->cert.pk, &cfg->key, mbedtls_ctr_drbg_random, &cfg->drbg);
#else
  return mbedtls_pk_check_pair(&cfg->cert.pk, &cfg->key);
#endif
}

/* mbedTLS parses PEM only from NUL-terminated buffers counted with the NUL. */
static unsigned char *nul_copy(lsmtp_tls_config *cfg, const char *s, size_t len) {
  return (unsigned char *)lsmtp__strndup(cfg->alloc, s, len);
}

static int install_cert(lsmtp_tls_config *cfg) {
  int ret = check_pair(cfg);
  if (ret != 0) {
    set_mbed_error(cfg->err, sizeof cfg->err, "certificate and key do not match", ret);
    return LSMTP_ERR_TLS;
  }
  ret = mbedtls_ssl_conf_own_cert(&cfg->conf, &cfg->cert, &cfg->key);
  if (ret != 0) {
    set_mbed_error(cfg->err, sizeof cfg->err, "cannot use certificate", ret);
    return LSMTP_ERR_TLS;
  }
  return LSMTP_OK;
}

int lsmtp_tls_config_set_cert_files(lsmtp_tls_config *cfg, const char *cert_file,
                                    const char *key_file, const char *key_password) {
  if (!cfg || !cert_file || !key_file) return LSMTP_ERR_INVALID;
  mbedtls_x509_crt_free(&cfg->cert);
  mbedtls_x509_crt_init(&cfg->cert);
  mbedtls_pk_free(&cfg->key);
  mbedtls_pk_init(&cfg->key);
  int ret = mbedtls_x509_crt_parse_file(&cfg->cert, cert_file);
  if (ret != 0) {
    set_mbed_error(cfg->err, sizeof cfg->err, cert_file, ret);
    return LSMTP_ERR_TLS;
  }
#ifdef LSMTP__MBEDTLS3
  ret = mbedtls_pk_parse_keyfile(&cfg->key, key_file, key_password, mbedtls_ctr_drbg_random,
                                 &cfg->drbg);
#else
  ret = mbedtls_pk_parse_keyfile(&cfg->key, key_file, key_password);
#endif
  if (ret != 0) {
    set_mbed_error(cfg->err, sizeof cfg->err, key_file, ret);
    return LSMTP_ERR_TLS;
  }
  return install_cert(cfg);
}

int lsmtp_tls_config_set_cert_pem(lsmtp_tls_config *cfg, const char *cert_pem, size_t cert_len,
                                  const char *key_pem, size_t key_len,
                                  const char *key_password) {
  if (!cfg || !cert_pem || !key_pem) return LSMTP_ERR_INVALID;
  mbedtls_x509_crt_free(&cfg->cert);
  mbedtls_x509_crt_init(&cfg->cert);
  mbedtls_pk_free(&cfg->key);
  mbedtls_pk_init(&cfg->key);
  unsigned char *c = nul_copy(cfg, cert_pem, cert_len);
  unsigned char *k = nul_copy(cfg, key_pem, key_len);
  int rc = LSMTP_OK;
  if (!c || !k) {
    rc = LSMTP_ERR_NOMEM;
  } else {
    int ret = mbedtls_x509_crt_parse(&cfg->cert, c, cert_len + 1);
    if (ret != 0) {
      set_mbed_error(cfg->err, sizeof cfg->err, "certificate", ret);
      rc = LSMTP_ERR_TLS;
    } else if ((ret = parse_key(cfg, k, key_len + 1, key_password)) != 0) {
      set_mbed_error(cfg->err, sizeof cfg->err, "private key", ret);
      rc = LSMTP_ERR_TLS;
    } else {
      rc = install_cert(cfg);
    }
  }
  if (k) lsmtp__wipe(k, key_len + 1);
  lsmtp__free(cfg->alloc, k);
  lsmtp__free(cfg->alloc, c);
  return rc;
}

int lsmtp_tls_config_set_ca_file(lsmtp_tls_config *cfg, const char *path) {
  if (!cfg || !path) return LSMTP_ERR_INVALID;
  int ret = mbedtls_x509_crt_parse_file(&cfg->ca, path);
  if (ret < 0) { /* > 0: some certificates in a bundle were skipped */
    set_mbed_error(cfg->err, sizeof cfg->err, path, ret);
    return LSMTP_ERR_TLS;
  }
  cfg->ca_set = 1;
  mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);
  return LSMTP_OK;
}

int lsmtp_tls_config_set_ca_pem(lsmtp_tls_config *cfg, const char *pem, size_t len) {
  if (!cfg || !pem) return LSMTP_ERR_INVALID;
  unsigned char *c = nul_copy(cfg, pem, len);
  if (!c) return LSMTP_ERR_NOMEM;
  int ret = mbedtls_x509_crt_parse(&cfg->ca, c, len + 1);
  lsmtp__free(cfg->alloc, c);
  if (ret < 0) {
    set_mbed_error(cfg->err, sizeof cfg->err, "CA certificates", ret);
    return LSMTP_ERR_TLS;
  }
  cfg->ca_set = 1;
  mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);
  return LSMTP_OK;
}

int lsmtp_tls_config_set_verify(lsmtp_tls_config *cfg, int verify) {
  if (!cfg) return LSMTP_ERR_INVALID;
  cfg->verify = verify != 0 && cfg->role == LSMTP_TLS_CLIENT;
  mbedtls_ssl_conf_authmode(&cfg->conf, cfg->verify ? MBEDTLS_SSL_VERIFY_REQUIRED
                                                    : MBEDTLS_SSL_VERIFY_NONE);
  return LSMTP_OK;
}

/* ---- BIO callbacks: memory only ---- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  lsmtp_tls *tls = ctx;
  if (len > (size_t)INT32_MAX) len = (size_t)INT32_MAX;
  if (lsmtp__buf_append(&tls->out, buf, len) != LSMTP_OK) return MBEDTLS_ERR_SSL_ALLOC_FAILED;
  return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  lsmtp_tls *tls = ctx;
  size_t avail = tls->in.len - tls->in_off;
  if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  if (len > avail) len = avail;
  if (len > (size_t)INT32_MAX) len = (size_t)INT32_MAX;
  memcpy(buf, tls->in.data + tls->in_off, len);
  tls->in_off += len;
  if (tls->in_off == tls->in.len) tls->in.len = tls->in_off = 0;
  return (int)len;
}

int lsmtp_tls_new(lsmtp_tls **out, lsmtp_tls_config *cfg, const char *server_name) {
  if (!out || !cfg) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (cfg->role == LSMTP_TLS_CLIENT && cfg->verify && !server_name) return LSMTP_ERR_INVALID;
  if (cfg->role == LSMTP_TLS_CLIENT && cfg->verify && !cfg->ca_set) {
    int rc = lsmtp_tls_config_set_ca_file(cfg, LSMTP_TLS_DEFAULT_CA_FILE);
    if (rc != LSMTP_OK) return rc;
  }
  lsmtp_tls *tls = lsmtp__calloc(cfg->alloc, 1, sizeof *tls);
  if (!tls) return LSMTP_ERR_NOMEM;
  tls->cfg = cfg;
  lsmtp__buf_init(&tls->in, cfg->alloc);
  lsmtp__buf_init(&tls->out, cfg->alloc);
  mbedtls_ssl_init(&tls->ssl);
  int ret = mbedtls_ssl_setup(&tls->ssl, &cfg->conf);
  if (ret == 0 && cfg->role == LSMTP_TLS_CLIENT && server_name)
    ret = mbedtls_ssl_set_hostname(&tls->ssl, server_name);
  if (ret != 0) {
    set_mbed_error(cfg->err, sizeof cfg->err, "TLS setup", ret);
    lsmtp_tls_del(tls);
    return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? LSMTP_ERR_NOMEM : LSMTP_ERR_TLS;
  }
  mbedtls_ssl_set_bio(&tls->ssl, tls, bio_send, bio_recv, NULL);
  *out = tls;
  return LSMTP_OK;
}

void lsmtp_tls_del(lsmtp_tls *tls) {
  if (!tls) return;
  mbedtls_ssl_free(&tls->ssl);
  lsmtp__buf_free(&tls->in);
  lsmtp__buf_free(&tls->out);
  lsmtp__free(tls->cfg->alloc, tls);
}

int lsmtp_tls_feed(lsmtp_tls *tls, const char *data, size_t len, size_t *consumed) {
  if (!tls || !consumed || (!data && len)) return LSMTP_ERR_INVALID;
  *consumed = 0;
  if (tls->failed) return LSMTP_ERR_FATAL;
  if (tls->in_off > 0) { /* compact before growing */
    lsmtp__buf_consume(&tls->in, tls->in_off);
    tls->in_off = 0;
  }
  size_t room = tls->in.len < TLS_INPUT_BOUND ? TLS_INPUT_BOUND - tls->in.len : 0;
  size_t take = len < room ? len : room;
  if (take && lsmtp__buf_append(&tls->in, data, take) != LSMTP_OK) return LSMTP_ERR_NOMEM;
  *consumed = take;
  return LSMTP_OK;
}

size_t lsmtp_tls_pending(const lsmtp_tls *tls, const char **data) {
  if (!tls || tls->out.len == 0) {
    if (data) *data = NULL;
    return 0;
  }
  if (data) *data = tls->out.data;
  return tls->out.len;
}

int lsmtp_tls_consume(lsmtp_tls *tls, size_t n) {
  if (!tls || n > tls->out.len) return LSMTP_ERR_INVALID;
  lsmtp__buf_consume(&tls->out, n);
  return LSMTP_OK;
}

/* Turn an mbedTLS failure into a sticky lsmtp status with its text. */
static int fail(lsmtp_tls *tls, const char *what, int ret) {
  tls->failed = 1;
  if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    char info[300];
    uint32_t flags = mbedtls_ssl_get_verify_result(&tls->ssl);
    int n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
    if (n > 0 && info[n - 1] == '\n') info[n - 1] = '\0';
    for (char *p = info; *p; p++)
      if (*p == '\n') *p = ';';
    snprintf(tls->err, sizeof tls->err, "certificate verification failed: %s", info);
    return LSMTP_ERR_CERT;
  }
  set_mbed_error(tls->err, sizeof tls->err, what, ret);
  return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? LSMTP_ERR_NOMEM : LSMTP_ERR_TLS;
}

int lsmtp_tls_handshake(lsmtp_tls *tls) {
  if (!tls) return LSMTP_ERR_INVALID;
  if (tls->failed) return LSMTP_ERR_FATAL;
  if (tls->established) return LSMTP_OK;
  int ret = mbedtls_ssl_handshake(&tls->ssl);
  if (ret == 0) {
    tls->established = 1;
    return LSMTP_OK;
  }
  if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
    return LSMTP_INCOMPLETE;
  return fail(tls, "TLS handshake", ret);
}

int lsmtp_tls_read(lsmtp_tls *tls, char *buf, size_t cap, size_t *n) {
  if (!tls || !n || (!buf && cap)) return LSMTP_ERR_INVALID;
  *n = 0;
  if (tls->failed) return LSMTP_ERR_FATAL;
  if (!tls->established) {
    int rc = lsmtp_tls_handshake(tls);
    if (rc != LSMTP_OK) return rc;
  }
  if (cap == 0) return LSMTP_INCOMPLETE;
  int ret = mbedtls_ssl_read(&tls->ssl, (unsigned char *)buf, cap);
  if (ret > 0) {
    *n = (size_t)ret;
    return LSMTP_OK;
  }
  if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return LSMTP_DONE;
  if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
    return LSMTP_INCOMPLETE;
  return fail(tls, "TLS read", ret);
}

int lsmtp_tls_write(lsmtp_tls *tls, const char *data, size_t len) {
  if (!tls || (!data && len)) return LSMTP_ERR_INVALID;
  if (tls->failed) return LSMTP_ERR_FATAL;
  if (tls->closed) return LSMTP_ERR_STATE;
  if (!tls->established) {
    int rc = lsmtp_tls_handshake(tls);
    if (rc != LSMTP_OK) return rc;
  }
  while (len > 0) {
    int ret = mbedtls_ssl_write(&tls->ssl, (const unsigned char *)data, len);
    if (ret > 0) {
      data += ret;
      len -= (size_t)ret;
    } else if (ret != MBEDTLS_ERR_SSL_WANT_WRITE && ret != MBEDTLS_ERR_SSL_WANT_READ) {
      return fail(tls, "TLS write", ret);
    }
  }
  return LSMTP_OK;
}

int lsmtp_tls_close(lsmtp_tls *tls) {
  if (!tls) return LSMTP_ERR_INVALID;
  if (tls->closed || tls->failed || !tls->established) {
    tls->closed = 1;
    return LSMTP_OK;
  }
  tls->closed = 1;
  int ret = mbedtls_ssl_close_notify(&tls->ssl);
  if (ret != 0 && ret != MBEDTLS_ERR_SSL_WANT_WRITE && ret != MBEDTLS_ERR_SSL_WANT_READ)
    return fail(tls, "TLS close", ret);
  return LSMTP_OK;
}

int lsmtp_tls_is_established(const lsmtp_tls *tls) { return tls && tls->established; }

const char *lsmtp_tls_version(const lsmtp_tls *tls) {
  if (!tls || !tls->established) return "";
  return mbedtls_ssl_get_version(&tls->ssl);
}

const char *lsmtp_tls_cipher(const lsmtp_tls *tls) {
  if (!tls || !tls->established) return "";
  const char *s = mbedtls_ssl_get_ciphersuite(&tls->ssl);
  return s ? s : "";
}

const char *lsmtp_tls_error_text(const lsmtp_tls *tls) { return tls ? tls->err : ""; }
