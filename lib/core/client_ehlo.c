/* EHLO / HELO and the extension keywords of the EHLO reply (RFC 5321
 * §4.1.1.1; each keyword line read case-insensitively). The reply text is
 * already bounded by the reply parser; here every number is checked for
 * overflow and unknown keywords and mechanisms are ignored. */
#include "client_int.h"

int lsmtp__client_send_hello(lsmtp_client *c, int helo) {
  int rc = lsmtp__client_writes(c, helo ? "HELO " : "EHLO ");
  if (rc == LSMTP_OK) rc = lsmtp__client_writes(c, c->cfg.helo);
  if (rc == LSMTP_OK) rc = lsmtp__client_writes(c, "\r\n");
  if (rc == LSMTP_OK)
    rc = lsmtp__client_push(c, helo ? LSMTP__C_HELO : LSMTP__C_EHLO, 0);
  c->state = LSMTP_CLIENT_HELLO;
  return rc;
}

static int word_is(const char *w, size_t n, const char *name) {
  return strlen(name) == n && lsmtp__ieq(w, name, n);
}

/* Digits only, no overflow; 0 when absent or malformed. */
static uint64_t parse_size(const char *s, size_t n) {
  uint64_t v = 0;
  if (n == 0 || n > 20) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!lsmtp__is_digit((unsigned char)s[i])) return 0;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  return v;
}

/* Space-separated mechanism names into the mask. */
static void add_mechs(lsmtp_client *c, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i < n && s[i] == ' ') i++;
    size_t start = i;
    while (i < n && s[i] != ' ') i++;
    if (i > start) {
      lsmtp_sasl_mech m = lsmtp_sasl_mech_from_name(s + start, i - start);
      if (m != LSMTP_SASL_NONE) c->auth_mechs |= LSMTP_SASL_BIT(m);
    }
  }
}

static void parse_line(lsmtp_client *c, const char *s, size_t n) {
  size_t kw = 0;
  while (kw < n && s[kw] != ' ' && s[kw] != '=') kw++;
  const char *arg = s + kw;
  size_t arg_len = n - kw;
  if (arg_len) arg++, arg_len--; /* the space, or "=" of legacy AUTH= */
  static const struct {
    const char *name;
    unsigned bit;
  } plain[] = {
      {"PIPELINING", LSMTP_EXT_PIPELINING}, {"8BITMIME", LSMTP_EXT_8BITMIME},
      {"SMTPUTF8", LSMTP_EXT_SMTPUTF8},
      {"ENHANCEDSTATUSCODES", LSMTP_EXT_ENHANCEDSTATUSCODES},
      {"CHUNKING", LSMTP_EXT_CHUNKING}, {"BINARYMIME", LSMTP_EXT_BINARYMIME},
      {"DSN", LSMTP_EXT_DSN}, {"STARTTLS", LSMTP_EXT_STARTTLS},
      {"REQUIRETLS", LSMTP_EXT_REQUIRETLS}, {"HELP", LSMTP_EXT_HELP}};
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
    if (word_is(s, kw, plain[i].name)) {
      c->ext |= plain[i].bit;
      return;
    }
  if (word_is(s, kw, "SIZE")) {
    c->ext |= LSMTP_EXT_SIZE;
    size_t end = 0;
    while (end < arg_len && arg[end] != ' ') end++;
    c->size_limit = parse_size(arg, end);
  } else if (word_is(s, kw, "AUTH")) {
    c->ext |= LSMTP_EXT_AUTH;
    add_mechs(c, arg, arg_len);
  }
}

void lsmtp__client_parse_ehlo(lsmtp_client *c, const lsmtp_reply *r) {
  c->ext = 0;
  c->size_limit = 0;
  c->auth_mechs = 0;
  /* The first line is the server's name and greeting, not a keyword. */
  const char *p = r->text, *end = r->text + r->text_len;
  const char *nl = memchr(p, '\n', r->text_len);
  if (!nl) return;
  p = nl + 1;
  while (p < end) {
    nl = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = nl ? nl : end;
    parse_line(c, p, (size_t)(line_end - p));
    p = nl ? nl + 1 : end;
  }
}

int lsmtp__client_on_hello(lsmtp_client *c, lsmtp__ckind kind,
                           const lsmtp_reply *r) {
  if (r->code == 250) {
    if (kind == LSMTP__C_EHLO) {
      lsmtp__client_parse_ehlo(c, r);
      c->used_helo = 0;
    } else {
      c->ext = 0;
      c->size_limit = 0;
      c->auth_mechs = 0;
      c->used_helo = 1;
    }
    return lsmtp__client_ready(c);
  }
  /* RFC 5321 §3.2: a server that does not know EHLO says 500 or 502. */
  if (kind == LSMTP__C_EHLO && (r->code == 500 || r->code == 502))
    return lsmtp__client_send_hello(c, 1);
  if (r->code >= 400) return lsmtp__client_wind_down(c, lsmtp__client_fail_status(r), r);
  return LSMTP_ERR_PROTOCOL;
}
