/* The server side of SMTP AUTH: the PLAIN and LOGIN exchanges, from the
 * client's base64 lines to the decoded identities and password.
 *
 * Decisions the header leaves to this file:
 * - Everything lives in one fixed-size allocation: the bounds are small
 *   and known, and no buffer ever grows with client input.
 * - "*" cancels only in a continuation line (RFC 4954 §4); as an initial
 *   response it is simply not base64. "=" means "empty" only as an
 *   initial response, where RFC 4954 needs it because an empty argument
 *   cannot be written; in a continuation line the empty line is the empty
 *   response and "=" is malformed, like any other non-canonical base64.
 * - Fields are checked for well-formed UTF-8 (RFC 4616 §2 defines them as
 *   UTF-8) but not SASLprep-normalised: the host compares octets, and a
 *   normalisation here would be a second, silent notion of equality.
 * - The decoded response is kept in a scratch area that is wiped as soon
 *   as it has been split, so the password exists in one place only. */
#include <lsmtp/sasl_server.h>

#include "crypto.h"
#include "internal.h"

/* The longest decoded response: PLAIN's authzid NUL authcid NUL password. */
#define RESPONSE_MAX                                                       \
  (LSMTP_SASL_SERVER_AUTHZID_MAX + 1 + LSMTP_SASL_SERVER_AUTHCID_MAX + 1 + \
   LSMTP_SASL_SERVER_PASSWORD_MAX)
/* The longest base64 line that can decode to a valid response. */
#define LINE_MAX_B64 LSMTP_BASE64_ENCODED_LEN(RESPONSE_MAX)

enum phase {
  PH_NEW,       /* created, start not called yet */
  PH_WAIT_PLAIN, /* PLAIN: sent the empty challenge */
  PH_WAIT_USER, /* LOGIN: sent "Username:" */
  PH_WAIT_PASS, /* LOGIN: sent "Password:" */
  PH_DONE,      /* credentials available */
  PH_FAILED     /* an error ended the exchange */
};

struct lsmtp_sasl_server {
  const lsmtp_allocator *alloc;
  lsmtp_sasl_mech mech;
  enum phase phase;
  unsigned char has_initial;
  unsigned char initial_too_long;
  size_t initial_len;
  size_t authzid_len, authcid_len, password_len;
  char initial[LINE_MAX_B64];
  char authzid[LSMTP_SASL_SERVER_AUTHZID_MAX + 1];
  char authcid[LSMTP_SASL_SERVER_AUTHCID_MAX + 1];
  char password[LSMTP_SASL_SERVER_PASSWORD_MAX + 1];
  unsigned char scratch[RESPONSE_MAX];
};

unsigned lsmtp_sasl_server_mechs(void) {
  return LSMTP_SASL_BIT(LSMTP_SASL_PLAIN) | LSMTP_SASL_BIT(LSMTP_SASL_LOGIN);
}

int lsmtp_sasl_server_new(lsmtp_sasl_server **out, const lsmtp_allocator *alloc,
                          const char *mech, size_t mech_len,
                          const char *initial, size_t initial_len) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if ((!mech && mech_len) || (!initial && initial_len)) return LSMTP_ERR_INVALID;
  lsmtp_sasl_mech m = lsmtp_sasl_mech_from_name(mech, mech_len);
  if (m != LSMTP_SASL_PLAIN && m != LSMTP_SASL_LOGIN)
    return LSMTP_ERR_UNSUPPORTED;
  const lsmtp_allocator *a = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_sasl_server *s = lsmtp__calloc(a, 1, sizeof *s);
  if (!s) return LSMTP_ERR_NOMEM;
  s->alloc = a;
  s->mech = m;
  s->phase = PH_NEW;
  if (initial_len > 0) {
    s->has_initial = 1;
    if (initial_len > sizeof s->initial) {
      s->initial_too_long = 1; /* reported by start, like every IR error */
    } else {
      memcpy(s->initial, initial, initial_len);
      s->initial_len = initial_len;
    }
  }
  *out = s;
  return LSMTP_OK;
}

void lsmtp_sasl_server_del(lsmtp_sasl_server *s) {
  if (!s) return;
  const lsmtp_allocator *a = s->alloc;
  lsmtp__wipe(s, sizeof *s);
  lsmtp__free(a, s);
}

lsmtp_sasl_mech lsmtp_sasl_server_mech(const lsmtp_sasl_server *s) {
  return s ? s->mech : LSMTP_SASL_NONE;
}

/* Forget every decoded field: used when the exchange fails. */
static int fail(lsmtp_sasl_server *s, int rc) {
  lsmtp__wipe(s->scratch, sizeof s->scratch);
  lsmtp__wipe(s->authzid, sizeof s->authzid);
  lsmtp__wipe(s->authcid, sizeof s->authcid);
  lsmtp__wipe(s->password, sizeof s->password);
  s->authzid_len = s->authcid_len = s->password_len = 0;
  s->phase = PH_FAILED;
  return rc;
}

/* Decode one response into s->scratch. is_initial allows the "=" of an
 * empty initial response. */
static int decode(lsmtp_sasl_server *s, const char *text, size_t len,
                  int is_initial, size_t *out_len) {
  if (len == 1 && text[0] == '=' && !is_initial) return LSMTP_ERR_SYNTAX;
  if (len > LINE_MAX_B64) return LSMTP_ERR_TOO_LONG;
  return lsmtp_base64_decode(s->scratch, sizeof s->scratch, out_len, text, len);
}

/* A field must fit its bound, be well-formed UTF-8 without NUL and, unless
 * it is an authzid, not be empty. */
static int check_field(const unsigned char *p, size_t n, size_t max,
                       int may_be_empty) {
  if (n > max) return LSMTP_ERR_TOO_LONG;
  if (n == 0 && !may_be_empty) return LSMTP_ERR_SYNTAX;
  for (size_t i = 0; i < n;) {
    if (p[i] == 0) return LSMTP_ERR_NUL;
    size_t k = lsmtp__utf8_seq(p + i, n - i, NULL);
    if (k == 0) return LSMTP_ERR_UTF8;
    i += k;
  }
  return LSMTP_OK;
}

/* Copy a checked field into its NUL-terminated home. */
static void keep(char *dst, size_t *dst_len, const unsigned char *p, size_t n) {
  if (n) memcpy(dst, p, n);
  dst[n] = '\0';
  *dst_len = n;
}

/* RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. */
static int plain_message(lsmtp_sasl_server *s, size_t n) {
  const unsigned char *m = s->scratch;
  size_t nul[2], count = 0;
  for (size_t i = 0; i < n; i++) {
    if (m[i] != 0) continue;
    if (count == 2) return LSMTP_ERR_SYNTAX; /* a third NUL */
    nul[count++] = i;
  }
  if (count != 2) return LSMTP_ERR_SYNTAX;
  const unsigned char *zid = m, *cid = m + nul[0] + 1, *pw = m + nul[1] + 1;
  size_t zid_len = nul[0], cid_len = nul[1] - nul[0] - 1, pw_len = n - nul[1] - 1;
  int rc = check_field(zid, zid_len, LSMTP_SASL_SERVER_AUTHZID_MAX, 1);
  if (rc == LSMTP_OK)
    rc = check_field(cid, cid_len, LSMTP_SASL_SERVER_AUTHCID_MAX, 0);
  if (rc == LSMTP_OK)
    rc = check_field(pw, pw_len, LSMTP_SASL_SERVER_PASSWORD_MAX, 0);
  if (rc != LSMTP_OK) return rc;
  keep(s->authzid, &s->authzid_len, zid, zid_len);
  keep(s->authcid, &s->authcid_len, cid, cid_len);
  keep(s->password, &s->password_len, pw, pw_len);
  return LSMTP_OK;
}

/* One response (initial or continuation) in the current phase. */
static int respond(lsmtp_sasl_server *s, const char *text, size_t len,
                   int is_initial, const char **challenge) {
  size_t n = 0;
  int rc = decode(s, text, len, is_initial, &n);
  if (rc != LSMTP_OK) return fail(s, rc == LSMTP_ERR_INVALID ? LSMTP_ERR_SYNTAX : rc);
  switch (s->phase) {
  case PH_WAIT_PLAIN:
    rc = plain_message(s, n);
    if (rc == LSMTP_OK) s->phase = PH_DONE;
    break;
  case PH_WAIT_USER:
    rc = check_field(s->scratch, n, LSMTP_SASL_SERVER_AUTHCID_MAX, 0);
    if (rc == LSMTP_OK) {
      keep(s->authcid, &s->authcid_len, s->scratch, n);
      s->phase = PH_WAIT_PASS;
      *challenge = LSMTP_SASL_LOGIN_CHALLENGE_PASS;
    }
    break;
  case PH_WAIT_PASS:
    rc = check_field(s->scratch, n, LSMTP_SASL_SERVER_PASSWORD_MAX, 0);
    if (rc == LSMTP_OK) {
      keep(s->password, &s->password_len, s->scratch, n);
      s->authzid[0] = '\0';
      s->authzid_len = 0;
      s->phase = PH_DONE;
    }
    break;
  default:
    rc = LSMTP_ERR_STATE;
    break;
  }
  lsmtp__wipe(s->scratch, n);
  if (rc != LSMTP_OK) return fail(s, rc);
  return s->phase == PH_DONE ? LSMTP_DONE : LSMTP_INCOMPLETE;
}

int lsmtp_sasl_server_start(lsmtp_sasl_server *s, const char **challenge) {
  if (!s || !challenge) return LSMTP_ERR_INVALID;
  *challenge = NULL;
  if (s->phase != PH_NEW) return LSMTP_ERR_STATE;
  s->phase = s->mech == LSMTP_SASL_PLAIN ? PH_WAIT_PLAIN : PH_WAIT_USER;
  if (s->initial_too_long) return fail(s, LSMTP_ERR_TOO_LONG);
  if (!s->has_initial) {
    /* PLAIN asks for the whole message with an empty challenge ("334 "). */
    *challenge = s->mech == LSMTP_SASL_PLAIN ? "" : LSMTP_SASL_LOGIN_CHALLENGE_USER;
    return LSMTP_INCOMPLETE;
  }
  /* LOGIN's initial response is the user name (draft-murchison-sasl-login
   * §2.1), so the next challenge asks for the password. */
  int rc = respond(s, s->initial, s->initial_len, 1, challenge);
  lsmtp__wipe(s->initial, s->initial_len);
  s->initial_len = 0;
  return rc;
}

int lsmtp_sasl_server_step(lsmtp_sasl_server *s, const char *line, size_t len,
                           const char **challenge) {
  if (!s || !challenge || (!line && len)) return LSMTP_ERR_INVALID;
  *challenge = NULL;
  if (s->phase != PH_WAIT_PLAIN && s->phase != PH_WAIT_USER &&
      s->phase != PH_WAIT_PASS)
    return LSMTP_ERR_STATE;
  if (len == 1 && line[0] == '*') return fail(s, LSMTP_ERR_REFUSED);
  return respond(s, line, len, 0, challenge);
}

const char *lsmtp_sasl_server_authzid(const lsmtp_sasl_server *s, size_t *len) {
  if (!s || s->phase != PH_DONE) return NULL;
  if (len) *len = s->authzid_len;
  return s->authzid;
}

const char *lsmtp_sasl_server_authcid(const lsmtp_sasl_server *s, size_t *len) {
  if (!s || s->phase != PH_DONE) return NULL;
  if (len) *len = s->authcid_len;
  return s->authcid;
}

const char *lsmtp_sasl_server_password(const lsmtp_sasl_server *s, size_t *len) {
  if (!s || s->phase != PH_DONE) return NULL;
  if (len) *len = s->password_len;
  return s->password;
}

int lsmtp_sasl_server_is_proxy(const lsmtp_sasl_server *s) {
  if (!s || s->phase != PH_DONE || s->authzid_len == 0) return 0;
  return s->authzid_len != s->authcid_len ||
         memcmp(s->authzid, s->authcid, s->authzid_len) != 0;
}

int lsmtp_sasl_server_reply(int status, const char **enhanced,
                            const char **text) {
  int code;
  const char *enh, *txt;
  switch (status) {
  case LSMTP_INCOMPLETE:
    code = 334, enh = NULL, txt = NULL;
    break;
  case LSMTP_DONE:
    code = 0, enh = NULL, txt = NULL;
    break;
  case LSMTP_OK:
    code = 235, enh = "2.7.0", txt = "Authentication successful";
    break;
  case LSMTP_ERR_AUTH:
    code = 535, enh = "5.7.8", txt = "Authentication credentials invalid";
    break;
  case LSMTP_ERR_SYNTAX:
  case LSMTP_ERR_TOO_LONG:
  case LSMTP_ERR_UTF8:
  case LSMTP_ERR_NUL:
    code = 501, enh = "5.5.2", txt = "Cannot decode response";
    break;
  case LSMTP_ERR_REFUSED:
    code = 501, enh = "5.0.0", txt = "Authentication cancelled";
    break;
  case LSMTP_ERR_UNSUPPORTED:
    code = 504, enh = "5.5.4", txt = "Unrecognized authentication type";
    break;
  case LSMTP_ERR_INSECURE:
    code = 538, enh = "5.7.11",
    txt = "Encryption required for requested authentication mechanism";
    break;
  default: /* LSMTP_ERR_TEMPFAIL and anything unexpected */
    code = 454, enh = "4.7.0", txt = "Temporary authentication failure";
    break;
  }
  if (enhanced) *enhanced = enh;
  if (text) *text = txt;
  return code;
}
