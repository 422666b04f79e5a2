/* The SASL client: mechanism names and choice, credential checks, and the
 * simple mechanisms (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER).
 * SCRAM-SHA-256 lives in sasl_scram.c. */
#include <stdio.h>

#include "sasl_int.h"

static const char *const mech_names[] = {
    "", "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256"};
#define MECH_COUNT (sizeof mech_names / sizeof mech_names[0])

const char *lsmtp_sasl_mech_name(lsmtp_sasl_mech mech) {
  if ((size_t)mech >= MECH_COUNT) return "";
  return mech_names[mech];
}

lsmtp_sasl_mech lsmtp_sasl_mech_from_name(const char *name, size_t len) {
  if (!name) return LSMTP_SASL_NONE;
  for (size_t i = 1; i < MECH_COUNT; i++)
    if (strlen(mech_names[i]) == len && lsmtp__ieq(name, mech_names[i], len))
      return (lsmtp_sasl_mech)i;
  return LSMTP_SASL_NONE;
}

int lsmtp_sasl_mech_available(lsmtp_sasl_mech mech) {
  switch (mech) {
  case LSMTP_SASL_PLAIN:
  case LSMTP_SASL_LOGIN:
  case LSMTP_SASL_XOAUTH2:
  case LSMTP_SASL_OAUTHBEARER:
    return 1;
  case LSMTP_SASL_CRAM_MD5:
  case LSMTP_SASL_SCRAM_SHA_256:
    return lsmtp__crypto_available();
  default:
    return 0;
  }
}

static int present(const char *s) { return s && *s; }

lsmtp_sasl_mech lsmtp_sasl_choose(unsigned offered,
                                  const lsmtp_sasl_credentials *creds) {
  static const lsmtp_sasl_mech by_token[] = {LSMTP_SASL_OAUTHBEARER,
                                             LSMTP_SASL_XOAUTH2};
  static const lsmtp_sasl_mech by_password[] = {
      LSMTP_SASL_SCRAM_SHA_256, LSMTP_SASL_PLAIN, LSMTP_SASL_LOGIN};
  if (!creds) return LSMTP_SASL_NONE;
  if (present(creds->oauth_token)) {
    for (size_t i = 0; i < sizeof by_token / sizeof by_token[0]; i++)
      if (offered & LSMTP_SASL_BIT(by_token[i])) return by_token[i];
  }
  if (creds->password && present(creds->username)) {
    for (size_t i = 0; i < sizeof by_password / sizeof by_password[0]; i++)
      if ((offered & LSMTP_SASL_BIT(by_password[i])) &&
          lsmtp_sasl_mech_available(by_password[i]))
        return by_password[i];
  }
  return LSMTP_SASL_NONE;
}

/* SASLprep decision (see sasl.h): printable ASCII only. */
static int check_ascii(const char *s) {
  if (!s) return LSMTP_OK;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p > 0x7e) return LSMTP_ERR_UTF8;
  return LSMTP_OK;
}

static int copy_opt(const lsmtp_allocator *a, const char *in, char **out) {
  *out = NULL;
  if (!in) return LSMTP_OK;
  *out = lsmtp__strndup(a, in, strlen(in));
  return *out ? LSMTP_OK : LSMTP_ERR_NOMEM;
}

static void wipe_free(const lsmtp_allocator *a, char *s) {
  if (!s) return;
  lsmtp__wipe(s, strlen(s));
  lsmtp__free(a, s);
}

static void buf_wipe_free(lsmtp__buf *b) {
  if (b->data) lsmtp__wipe(b->data, b->cap);
  lsmtp__buf_free(b);
}

void lsmtp_sasl_client_del(lsmtp_sasl_client *s) {
  if (!s) return;
  const lsmtp_allocator *a = s->alloc;
  wipe_free(a, s->authzid);
  wipe_free(a, s->user);
  wipe_free(a, s->pass);
  wipe_free(a, s->token);
  wipe_free(a, s->host);
  lsmtp__free(a, s->server_error);
  buf_wipe_free(&s->out);
  buf_wipe_free(&s->first_bare);
  lsmtp__wipe(s, sizeof *s);
  lsmtp__free(a, s);
}

int lsmtp_sasl_client_new(lsmtp_sasl_client **out, const lsmtp_allocator *alloc,
                          lsmtp_sasl_mech mech,
                          const lsmtp_sasl_credentials *creds) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!creds || mech == LSMTP_SASL_NONE || (size_t)mech >= MECH_COUNT)
    return LSMTP_ERR_INVALID;
  const int oauth = mech == LSMTP_SASL_XOAUTH2 || mech == LSMTP_SASL_OAUTHBEARER;
  if (oauth) {
    if (!present(creds->oauth_token)) return LSMTP_ERR_INVALID;
    if (mech == LSMTP_SASL_XOAUTH2 && !present(creds->username))
      return LSMTP_ERR_INVALID;
  } else if (!present(creds->username) || !creds->password) {
    return LSMTP_ERR_INVALID;
  }
  const char *fields[] = {creds->authzid, creds->username, creds->password,
                          creds->oauth_token, creds->host};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (check_ascii(fields[i]) != LSMTP_OK) return LSMTP_ERR_UTF8;
  if (!lsmtp_sasl_mech_available(mech)) return LSMTP_ERR_UNSUPPORTED;

  const lsmtp_allocator *a = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_sasl_client *s = lsmtp__calloc(a, 1, sizeof *s);
  if (!s) return LSMTP_ERR_NOMEM;
  s->alloc = a;
  s->mech = mech;
  s->port = creds->port;
  lsmtp__buf_init(&s->out, a);
  lsmtp__buf_init(&s->first_bare, a);
  int rc = LSMTP_OK;
  if (rc == LSMTP_OK && present(creds->authzid))
    rc = copy_opt(a, creds->authzid, &s->authzid);
  if (rc == LSMTP_OK) rc = copy_opt(a, creds->username, &s->user);
  if (rc == LSMTP_OK && !oauth) rc = copy_opt(a, creds->password, &s->pass);
  if (rc == LSMTP_OK && oauth) rc = copy_opt(a, creds->oauth_token, &s->token);
  if (rc == LSMTP_OK && present(creds->host)) rc = copy_opt(a, creds->host, &s->host);
  if (rc != LSMTP_OK) {
    lsmtp_sasl_client_del(s);
    return rc;
  }
  *out = s;
  return LSMTP_OK;
}

lsmtp_sasl_mech lsmtp_sasl_client_mech(const lsmtp_sasl_client *s) {
  return s ? s->mech : LSMTP_SASL_NONE;
}

int lsmtp_sasl_client_set_nonce(lsmtp_sasl_client *s, const char *nonce,
                                size_t len) {
  if (!s || !nonce || len == 0 || len >= LSMTP__SCRAM_NONCE_MAX)
    return LSMTP_ERR_INVALID;
  if (s->mech != LSMTP_SASL_SCRAM_SHA_256 || s->started) return LSMTP_ERR_STATE;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)nonce[i];
    if (c < 0x21 || c > 0x7e || c == ',') return LSMTP_ERR_INVALID;
  }
  memcpy(s->nonce, nonce, len);
  s->nonce_len = len;
  return LSMTP_OK;
}

int lsmtp__sasl_set_error(lsmtp_sasl_client *s, const char *text, size_t len) {
  lsmtp__free(s->alloc, s->server_error);
  s->server_error = lsmtp__strndup(s->alloc, text, len);
  if (!s->server_error) return LSMTP_ERR_NOMEM;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s->server_error[i];
    if (c < 0x20 || c == 0x7f) s->server_error[i] = ' ';
  }
  return LSMTP_OK;
}

static int put(lsmtp_sasl_client *s, const char *str) {
  return lsmtp__buf_append(&s->out, str, strlen(str));
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static int plain_message(lsmtp_sasl_client *s) {
  int rc = LSMTP_OK;
  if (s->authzid) rc = put(s, s->authzid);
  if (rc == LSMTP_OK) rc = lsmtp__buf_append(&s->out, "", 1);
  if (rc == LSMTP_OK) rc = put(s, s->user);
  if (rc == LSMTP_OK) rc = lsmtp__buf_append(&s->out, "", 1);
  if (rc == LSMTP_OK) rc = put(s, s->pass);
  return rc;
}

/* Google's XOAUTH2: "user=" U ^A "auth=Bearer " T ^A ^A. */
static int xoauth2_message(lsmtp_sasl_client *s) {
  int rc = put(s, "user=");
  if (rc == LSMTP_OK) rc = put(s, s->user);
  if (rc == LSMTP_OK) rc = put(s, "\001auth=Bearer ");
  if (rc == LSMTP_OK) rc = put(s, s->token);
  if (rc == LSMTP_OK) rc = put(s, "\001\001");
  return rc;
}

/* RFC 5802 saslname: "," and "=" escaped as "=2C" and "=3D" (also used
 * for the OAUTHBEARER gs2 header, RFC 7628 §3.1). */
static int put_saslname(lsmtp__buf *b, const char *name) {
  int rc = LSMTP_OK;
  for (const char *p = name; *p && rc == LSMTP_OK; p++) {
    if (*p == ',') rc = lsmtp__buf_append(b, "=2C", 3);
    else if (*p == '=') rc = lsmtp__buf_append(b, "=3D", 3);
    else rc = lsmtp__buf_append(b, p, 1);
  }
  return rc;
}

/* RFC 7628 §3.1: gs2-header kvsep [host kvsep] [port kvsep] auth kvsep kvsep.
 * The gs2 authzid is the authorization identity, else the user name. */
static int oauthbearer_message(lsmtp_sasl_client *s) {
  const char *who = s->authzid ? s->authzid : s->user;
  int rc = put(s, "n,");
  if (rc == LSMTP_OK && who) {
    rc = put(s, "a=");
    if (rc == LSMTP_OK) rc = put_saslname(&s->out, who);
  }
  if (rc == LSMTP_OK) rc = put(s, ",\001");
  if (rc == LSMTP_OK && s->host) {
    rc = put(s, "host=");
    if (rc == LSMTP_OK) rc = put(s, s->host);
    if (rc == LSMTP_OK) rc = put(s, "\001");
  }
  if (rc == LSMTP_OK && s->port) {
    char port[24];
    snprintf(port, sizeof port, "port=%u\001", s->port);
    rc = put(s, port);
  }
  if (rc == LSMTP_OK) rc = put(s, "auth=Bearer ");
  if (rc == LSMTP_OK) rc = put(s, s->token);
  if (rc == LSMTP_OK) rc = put(s, "\001\001");
  return rc;
}

/* RFC 2195: user SP hex(HMAC-MD5(password, challenge)). */
static int cram_md5_message(lsmtp_sasl_client *s, const char *in, size_t len) {
  unsigned char mac[LSMTP__MD5_LEN];
  int rc = lsmtp__hmac_md5(s->pass, strlen(s->pass), in, len, mac);
  if (rc != LSMTP_OK) return rc;
  char hex[2 * LSMTP__MD5_LEN + 1];
  for (size_t i = 0; i < LSMTP__MD5_LEN; i++)
    snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  lsmtp__wipe(mac, sizeof mac);
  rc = put(s, s->user);
  if (rc == LSMTP_OK) rc = put(s, " ");
  if (rc == LSMTP_OK) rc = put(s, hex);
  return rc;
}

static void reset_out(lsmtp_sasl_client *s) {
  if (s->out.data) lsmtp__wipe(s->out.data, s->out.len);
  s->out.len = 0;
}

static void give_out(lsmtp_sasl_client *s, const char **out, size_t *out_len) {
  *out = s->out.data ? s->out.data : "";
  *out_len = s->out.len;
}

int lsmtp_sasl_client_start(lsmtp_sasl_client *s, const char **out,
                            size_t *out_len) {
  if (!s || !out || !out_len) return LSMTP_ERR_INVALID;
  if (s->started) return LSMTP_ERR_STATE;
  s->started = 1;
  reset_out(s);
  int rc;
  switch (s->mech) {
  case LSMTP_SASL_PLAIN:
    rc = plain_message(s);
    s->finished = 1;
    break;
  case LSMTP_SASL_XOAUTH2:
    rc = xoauth2_message(s);
    s->finished = 1;
    break;
  case LSMTP_SASL_OAUTHBEARER:
    rc = oauthbearer_message(s);
    s->finished = 1;
    break;
  case LSMTP_SASL_SCRAM_SHA_256:
    rc = lsmtp__scram_start(s);
    break;
  default: /* LOGIN, CRAM-MD5: the server speaks first */
    return LSMTP_INCOMPLETE;
  }
  if (rc != LSMTP_OK) return rc;
  s->step++;
  give_out(s, out, out_len);
  return LSMTP_OK;
}

int lsmtp_sasl_client_step(lsmtp_sasl_client *s, const char *challenge,
                           size_t len, const char **out, size_t *out_len) {
  if (!s || !out || !out_len || (!challenge && len)) return LSMTP_ERR_INVALID;
  if (!s->started) return LSMTP_ERR_STATE;
  if (!challenge) challenge = "";
  reset_out(s);
  int rc = LSMTP_OK;
  switch (s->mech) {
  case LSMTP_SASL_LOGIN:
    /* The prompts ("Username:", "Password:") are informational only. */
    if (s->step == 0) rc = put(s, s->user);
    else if (s->step == 1) rc = put(s, s->pass), s->finished = 1;
    else rc = LSMTP_ERR_AUTH;
    break;
  case LSMTP_SASL_CRAM_MD5:
    if (s->step == 0) {
      rc = cram_md5_message(s, challenge, len);
      s->finished = 1;
    } else {
      rc = LSMTP_ERR_AUTH;
    }
    break;
  case LSMTP_SASL_XOAUTH2:
  case LSMTP_SASL_OAUTHBEARER:
    /* A challenge after the token is the server's error report (JSON);
     * the client answers so the server can send its final failure:
     * empty for XOAUTH2, a single ^A for OAUTHBEARER (RFC 7628 §3.2.3). */
    if (s->step != 1) return LSMTP_ERR_AUTH;
    rc = lsmtp__sasl_set_error(s, challenge, len);
    if (rc == LSMTP_OK && s->mech == LSMTP_SASL_OAUTHBEARER) rc = put(s, "\001");
    s->finished = 0; /* the server refused: this was not a success path */
    break;
  case LSMTP_SASL_SCRAM_SHA_256:
    rc = lsmtp__scram_step(s, challenge, len);
    break;
  default: /* PLAIN expects no challenge after its initial response */
    rc = LSMTP_ERR_AUTH;
    break;
  }
  if (rc != LSMTP_OK) return rc;
  s->step++;
  give_out(s, out, out_len);
  return LSMTP_OK;
}

int lsmtp_sasl_client_finished(const lsmtp_sasl_client *s) {
  return s ? s->finished : 0;
}

const char *lsmtp_sasl_client_server_error(const lsmtp_sasl_client *s) {
  return s ? s->server_error : NULL;
}
