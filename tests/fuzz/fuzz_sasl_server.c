/* Fuzz the server side of SMTP AUTH (lsmtp/sasl_server.h).
 *
 * Input: the first byte picks the mechanism name (low two bits: "PLAIN",
 * "login", "Plain", or an unknown one) and whether the first line is an
 * initial response (bit 2); the rest is split at '\n' into lines, fed to
 * lsmtp_sasl_server_step until the exchange ends. Checked on the way:
 * - only the documented statuses come back, each with a reply code from
 *   the table, and after the end every step is LSMTP_ERR_STATE;
 * - a challenge is one of the three the mechanisms use;
 * - on LSMTP_DONE the fields respect their bounds, hold no NUL, are
 *   well-formed UTF-8, and re-encoding them gives the client's last line
 *   back (strict base64 is canonical), so nothing was lost or invented;
 * - before LSMTP_DONE no credentials are visible. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include <lsmtp/sasl_server.h>

#define CHECK(x)       \
  do {                 \
    if (!(x)) abort(); \
  } while (0)

static const char *const mech_names[] = {"PLAIN", "login", "Plain", "CRAM-MD5"};

/* Exact-size heap copy, so ASan catches reads past the end. */
static char *copy(const uint8_t *data, size_t size) {
  char *p = malloc(size ? size : 1);
  CHECK(p != NULL);
  if (size) memcpy(p, data, size);
  return p;
}

static void check_field(const char *p, size_t len, size_t max, int may_be_empty) {
  CHECK(p != NULL);
  CHECK(len <= max);
  CHECK(may_be_empty || len > 0);
  CHECK(p[len] == '\0');
  CHECK(strlen(p) == len);
  for (size_t i = 0; i < len;) {
    size_t k = lsmtp__utf8_seq((const unsigned char *)p + i, len - i, NULL);
    CHECK(k > 0);
    i += k;
  }
}

/* The base64 of what the client must have sent for the decoded result. */
static void check_round_trip(const lsmtp_sasl_server *s, const char *line,
                             size_t len, int was_initial) {
  size_t zl, cl, pl;
  const char *z = lsmtp_sasl_server_authzid(s, &zl);
  const char *c = lsmtp_sasl_server_authcid(s, &cl);
  const char *p = lsmtp_sasl_server_password(s, &pl);
  check_field(z, zl, LSMTP_SASL_SERVER_AUTHZID_MAX, 1);
  check_field(c, cl, LSMTP_SASL_SERVER_AUTHCID_MAX, 0);
  check_field(p, pl, LSMTP_SASL_SERVER_PASSWORD_MAX, 0);
  int proxy = zl > 0 && (zl != cl || memcmp(z, c, zl) != 0);
  CHECK(lsmtp_sasl_server_is_proxy(s) == proxy);
  char raw[LSMTP_SASL_SERVER_AUTHZID_MAX + LSMTP_SASL_SERVER_AUTHCID_MAX +
           LSMTP_SASL_SERVER_PASSWORD_MAX + 2];
  size_t n = 0;
  if (lsmtp_sasl_server_mech(s) == LSMTP_SASL_PLAIN) {
    memcpy(raw, z, zl), n += zl;
    raw[n++] = '\0';
    memcpy(raw + n, c, cl), n += cl;
    raw[n++] = '\0';
  } else {
    CHECK(zl == 0);
  }
  memcpy(raw + n, p, pl), n += pl;
  char enc[LSMTP_BASE64_ENCODED_LEN(sizeof raw) + 1];
  size_t el = lsmtp_base64_encode(enc, sizeof enc, raw, n);
  (void)was_initial; /* a DONE response is never empty, so never "=" */
  CHECK(el == len && memcmp(enc, line, len) == 0);
}

static int known_status(int rc) {
  return rc == LSMTP_INCOMPLETE || rc == LSMTP_DONE || rc == LSMTP_ERR_REFUSED ||
         rc == LSMTP_ERR_SYNTAX || rc == LSMTP_ERR_TOO_LONG ||
         rc == LSMTP_ERR_UTF8 || rc == LSMTP_ERR_NUL;
}

static void check_status(const lsmtp_sasl_server *s, int rc, const char *ch) {
  CHECK(known_status(rc));
  int code = lsmtp_sasl_server_reply(rc, NULL, NULL);
  if (rc == LSMTP_INCOMPLETE) {
    CHECK(code == 334);
    CHECK(ch != NULL);
    CHECK(strcmp(ch, "") == 0 || strcmp(ch, LSMTP_SASL_LOGIN_CHALLENGE_USER) == 0 ||
          strcmp(ch, LSMTP_SASL_LOGIN_CHALLENGE_PASS) == 0);
  } else {
    CHECK(ch == NULL);
    CHECK(code == (rc == LSMTP_DONE ? 0 : 501));
  }
  if (rc != LSMTP_DONE) {
    CHECK(lsmtp_sasl_server_authcid(s, NULL) == NULL);
    CHECK(lsmtp_sasl_server_password(s, NULL) == NULL);
    CHECK(lsmtp_sasl_server_is_proxy(s) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const char *mech = mech_names[data[0] & 3];
  const int with_initial = (data[0] & 4) != 0;
  char *in = copy(data + 1, size - 1);
  const size_t len = size - 1;
  size_t pos = 0;

  /* The next line of the input as its own exact-size allocation. */
#define NEXT_LINE(line, line_len)                                   \
  do {                                                              \
    const char *nl_ = memchr(in + pos, '\n', len - pos);            \
    line_len = nl_ ? (size_t)(nl_ - (in + pos)) : len - pos;        \
    line = copy((const uint8_t *)in + pos, line_len);               \
    pos += line_len + (nl_ ? 1 : 0);                                \
  } while (0)

  char *ir = NULL;
  size_t ir_len = 0;
  if (with_initial) NEXT_LINE(ir, ir_len);
  lsmtp_sasl_server *s = NULL;
  int rc = lsmtp_sasl_server_new(&s, NULL, mech, strlen(mech), ir, ir_len);
  if ((data[0] & 3) == 3) {
    CHECK(rc == LSMTP_ERR_UNSUPPORTED && s == NULL);
    free(ir);
    free(in);
    return 0;
  }
  CHECK(rc == LSMTP_OK && s != NULL);
  const char *ch = "junk";
  rc = lsmtp_sasl_server_start(s, &ch);
  check_status(s, rc, ch);
  if (rc == LSMTP_DONE) check_round_trip(s, ir, ir_len, 1);
  free(ir);

  while (rc == LSMTP_INCOMPLETE && pos < len) {
    char *line;
    size_t line_len;
    NEXT_LINE(line, line_len);
    ch = "junk";
    rc = lsmtp_sasl_server_step(s, line, line_len, &ch);
    check_status(s, rc, ch);
    if (rc == LSMTP_DONE) check_round_trip(s, line, line_len, 0);
    free(line);
  }
  if (rc != LSMTP_INCOMPLETE) {
    CHECK(lsmtp_sasl_server_step(s, "*", 1, &ch) == LSMTP_ERR_STATE);
    CHECK(lsmtp_sasl_server_start(s, &ch) == LSMTP_ERR_STATE);
  }
  lsmtp_sasl_server_del(s);
  free(in);
  return 0;
#undef NEXT_LINE
}
