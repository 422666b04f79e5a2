/* SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash), client side, without
 * channel binding ("n,," gs2 header). The server must prove it knows the
 * password too: the exchange only counts as finished once the server
 * signature ("v=") has been verified. */
#include "sasl_int.h"

/* Bounds on what the server may ask for. The minimum follows RFC 7677 §4
 * (4096); the maximum keeps a hostile server from making us spin for
 * minutes in PBKDF2. */
#define SCRAM_MIN_ITERATIONS 4096u
#define SCRAM_MAX_ITERATIONS 1000000u
#define SCRAM_MAX_SALT 256
#define SCRAM_RANDOM_BYTES 24

static int put(lsmtp__buf *b, const char *s, size_t n) {
  return lsmtp__buf_append(b, s, n);
}
static int puts_(lsmtp__buf *b, const char *s) { return put(b, s, strlen(s)); }

static int put_saslname(lsmtp__buf *b, const char *name) {
  int rc = LSMTP_OK;
  for (const char *p = name; *p && rc == LSMTP_OK; p++) {
    if (*p == ',') rc = put(b, "=2C", 3);
    else if (*p == '=') rc = put(b, "=3D", 3);
    else rc = put(b, p, 1);
  }
  return rc;
}

/* gs2-header: "n," [ "a=" saslname ] "," */
static int put_gs2_header(lsmtp_sasl_client *s, lsmtp__buf *b) {
  int rc = puts_(b, "n,");
  if (rc == LSMTP_OK && s->authzid) {
    rc = puts_(b, "a=");
    if (rc == LSMTP_OK) rc = put_saslname(b, s->authzid);
  }
  if (rc == LSMTP_OK) rc = puts_(b, ",");
  return rc;
}

int lsmtp__scram_start(lsmtp_sasl_client *s) {
  if (s->nonce_len == 0) {
    unsigned char raw[SCRAM_RANDOM_BYTES];
    int rc = lsmtp__random_bytes(raw, sizeof raw);
    if (rc != LSMTP_OK) return rc;
    /* Base64 never produces ',' and stays printable. */
    s->nonce_len = lsmtp_base64_encode(s->nonce, sizeof s->nonce, raw, sizeof raw);
    lsmtp__wipe(raw, sizeof raw);
  }
  s->first_bare.len = 0;
  int rc = puts_(&s->first_bare, "n=");
  if (rc == LSMTP_OK) rc = put_saslname(&s->first_bare, s->user);
  if (rc == LSMTP_OK) rc = puts_(&s->first_bare, ",r=");
  if (rc == LSMTP_OK) rc = put(&s->first_bare, s->nonce, s->nonce_len);
  if (rc == LSMTP_OK) rc = put_gs2_header(s, &s->out);
  if (rc == LSMTP_OK) rc = put(&s->out, s->first_bare.data, s->first_bare.len);
  return rc;
}

/* Find attribute `name` ("r", "s", "i", "v", "e") in a comma-separated
 * list of "x=value"; only the attributes before any unknown one are
 * searched in order (RFC 5802 fixes their order). */
static int find_attr(const char *in, size_t len, char name, const char **val,
                     size_t *val_len) {
  size_t i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && in[end] != ',') end++;
    if (end - i >= 2 && in[i] == name && in[i + 1] == '=') {
      *val = in + i + 2;
      *val_len = end - i - 2;
      return 1;
    }
    i = end + 1;
  }
  return 0;
}

static int parse_iterations(const char *v, size_t n, uint32_t *out) {
  if (n == 0 || n > 10) return LSMTP_ERR_AUTH;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (!lsmtp__is_digit((unsigned char)v[i])) return LSMTP_ERR_AUTH;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  if (x < SCRAM_MIN_ITERATIONS || x > SCRAM_MAX_ITERATIONS) return LSMTP_ERR_AUTH;
  *out = (uint32_t)x;
  return LSMTP_OK;
}

/* server-first-message -> client-final-message. */
static int scram_final(lsmtp_sasl_client *s, const char *in, size_t len) {
  const char *nonce, *salt64, *iter;
  size_t nonce_len, salt64_len, iter_len;
  /* "m=" (mandatory extension) is not supported; "r=" must come first. */
  if (len < 2 || in[0] != 'r' || in[1] != '=') return LSMTP_ERR_AUTH;
  if (!find_attr(in, len, 'r', &nonce, &nonce_len) ||
      !find_attr(in, len, 's', &salt64, &salt64_len) ||
      !find_attr(in, len, 'i', &iter, &iter_len))
    return LSMTP_ERR_AUTH;
  /* The server's nonce extends ours. */
  if (nonce_len <= s->nonce_len || memcmp(nonce, s->nonce, s->nonce_len) != 0)
    return LSMTP_ERR_AUTH;
  for (size_t i = 0; i < nonce_len; i++)
    if ((unsigned char)nonce[i] < 0x21 || (unsigned char)nonce[i] > 0x7e)
      return LSMTP_ERR_AUTH;
  unsigned char salt[SCRAM_MAX_SALT];
  size_t salt_len;
  if (lsmtp_base64_decode(salt, sizeof salt, &salt_len, salt64, salt64_len) !=
          LSMTP_OK || salt_len == 0)
    return LSMTP_ERR_AUTH;
  uint32_t iterations;
  if (parse_iterations(iter, iter_len, &iterations) != LSMTP_OK)
    return LSMTP_ERR_AUTH;

  /* client-final-message-without-proof = "c=" base64(gs2-header) ",r=" nonce */
  lsmtp__buf gs2, auth_msg;
  lsmtp__buf_init(&gs2, s->alloc);
  lsmtp__buf_init(&auth_msg, s->alloc);
  unsigned char salted[LSMTP__SHA256_LEN], client_key[LSMTP__SHA256_LEN],
      stored_key[LSMTP__SHA256_LEN], client_sig[LSMTP__SHA256_LEN],
      server_key[LSMTP__SHA256_LEN];
  char b64[LSMTP_BASE64_ENCODED_LEN(LSMTP__SHA256_LEN) + 1];
  int rc = put_gs2_header(s, &gs2);
  if (rc == LSMTP_OK) rc = puts_(&s->out, "c=");
  if (rc == LSMTP_OK) {
    size_t need = lsmtp_base64_encode(NULL, 0, gs2.data, gs2.len);
    rc = lsmtp__buf_reserve(&s->out, need + 1);
    if (rc == LSMTP_OK) {
      lsmtp_base64_encode(s->out.data + s->out.len, need + 1, gs2.data, gs2.len);
      s->out.len += need;
    }
  }
  if (rc == LSMTP_OK) rc = puts_(&s->out, ",r=");
  if (rc == LSMTP_OK) rc = put(&s->out, nonce, nonce_len);
  /* AuthMessage = client-first-bare "," server-first "," client-final-w/o-proof */
  if (rc == LSMTP_OK) rc = put(&auth_msg, s->first_bare.data, s->first_bare.len);
  if (rc == LSMTP_OK) rc = put(&auth_msg, ",", 1);
  if (rc == LSMTP_OK) rc = put(&auth_msg, in, len);
  if (rc == LSMTP_OK) rc = put(&auth_msg, ",", 1);
  if (rc == LSMTP_OK) rc = put(&auth_msg, s->out.data, s->out.len);

  if (rc == LSMTP_OK)
    rc = lsmtp__pbkdf2_sha256(s->pass, strlen(s->pass), salt, salt_len,
                              iterations, salted, sizeof salted);
  if (rc == LSMTP_OK)
    rc = lsmtp__hmac_sha256(salted, sizeof salted, "Client Key", 10, client_key);
  if (rc == LSMTP_OK) rc = lsmtp__sha256(client_key, sizeof client_key, stored_key);
  if (rc == LSMTP_OK)
    rc = lsmtp__hmac_sha256(stored_key, sizeof stored_key, auth_msg.data,
                            auth_msg.len, client_sig);
  if (rc == LSMTP_OK)
    rc = lsmtp__hmac_sha256(salted, sizeof salted, "Server Key", 10, server_key);
  if (rc == LSMTP_OK)
    rc = lsmtp__hmac_sha256(server_key, sizeof server_key, auth_msg.data,
                            auth_msg.len, s->server_sig);
  if (rc == LSMTP_OK) {
    for (size_t i = 0; i < LSMTP__SHA256_LEN; i++) client_key[i] ^= client_sig[i];
    lsmtp_base64_encode(b64, sizeof b64, client_key, sizeof client_key);
    rc = puts_(&s->out, ",p=");
    if (rc == LSMTP_OK) rc = puts_(&s->out, b64);
  }
  lsmtp__wipe(salted, sizeof salted);
  lsmtp__wipe(client_key, sizeof client_key);
  lsmtp__wipe(stored_key, sizeof stored_key);
  lsmtp__wipe(client_sig, sizeof client_sig);
  lsmtp__wipe(server_key, sizeof server_key);
  lsmtp__buf_free(&gs2);
  lsmtp__buf_free(&auth_msg);
  return rc;
}

/* server-final-message: "v=" signature, or "e=" error. */
static int scram_verify(lsmtp_sasl_client *s, const char *in, size_t len) {
  const char *v;
  size_t v_len;
  if (len >= 2 && in[0] == 'e' && in[1] == '=') {
    size_t end = 2;
    while (end < len && in[end] != ',') end++;
    int rc = lsmtp__sasl_set_error(s, in + 2, end - 2);
    return rc == LSMTP_OK ? LSMTP_ERR_AUTH : rc;
  }
  if (len < 2 || in[0] != 'v' || in[1] != '=' ||
      !find_attr(in, len, 'v', &v, &v_len))
    return LSMTP_ERR_AUTH;
  unsigned char sig[LSMTP__SHA256_LEN + 4];
  size_t sig_len;
  if (lsmtp_base64_decode(sig, sizeof sig, &sig_len, v, v_len) != LSMTP_OK ||
      sig_len != LSMTP__SHA256_LEN)
    return LSMTP_ERR_AUTH;
  /* Constant time: the comparison must not leak how much matched. */
  unsigned char diff = 0;
  for (size_t i = 0; i < LSMTP__SHA256_LEN; i++) diff |= (unsigned char)(sig[i] ^ s->server_sig[i]);
  if (diff != 0) return LSMTP_ERR_AUTH;
  s->finished = 1;
  return LSMTP_OK; /* the response is empty */
}

int lsmtp__scram_step(lsmtp_sasl_client *s, const char *in, size_t len) {
  if (s->step == 1) return scram_final(s, in, len);
  if (s->step == 2) return scram_verify(s, in, len);
  return LSMTP_ERR_AUTH;
}
