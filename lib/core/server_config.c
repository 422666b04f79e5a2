/* The server configuration: defaults (RFC 5321 §4.5.3 where it gives one),
 * setters with range checks, and the per-session view of what is offered. */
#include "server_int.h"

#define MIN_MS(m) ((unsigned)(m) * 60u * 1000u)

static const uint64_t default_limits[LSMTP_SERVER_LIMIT_COUNT_] = {
    [LSMTP_SERVER_LIMIT_LINE] = LSMTP_CMD_DEFAULT_MAX_LINE,
    [LSMTP_SERVER_LIMIT_AUTH_LINE] = LSMTP_AUTH_DEFAULT_MAX_LINE,
    [LSMTP_SERVER_LIMIT_TEXT_LINE] = LSMTP_DATA_DEFAULT_MAX_LINE,
    [LSMTP_SERVER_LIMIT_MESSAGE_SIZE] = 10u * 1024u * 1024u,
    [LSMTP_SERVER_LIMIT_RECIPIENTS] = 100,
    [LSMTP_SERVER_LIMIT_ERRORS] = 20,
    [LSMTP_SERVER_LIMIT_MESSAGES] = 0,
    [LSMTP_SERVER_LIMIT_JUNK_COMMANDS] = 100,
    [LSMTP_SERVER_LIMIT_OUTPUT] = 65536,
};

static const unsigned default_timeouts[LSMTP_SERVER_TIMEOUT_COUNT_] = {
    [LSMTP_SERVER_TIMEOUT_GREETING] = MIN_MS(5),
    [LSMTP_SERVER_TIMEOUT_MAIL] = MIN_MS(5),
    [LSMTP_SERVER_TIMEOUT_RCPT] = MIN_MS(5),
    [LSMTP_SERVER_TIMEOUT_DATA_INIT] = MIN_MS(2),
    [LSMTP_SERVER_TIMEOUT_DATA_BLOCK] = MIN_MS(3),
    [LSMTP_SERVER_TIMEOUT_DATA_TERM] = MIN_MS(10),
    [LSMTP_SERVER_TIMEOUT_IDLE] = MIN_MS(5),
};

int lsmtp_server_config_new(lsmtp_server_config **out,
                            const lsmtp_allocator *alloc) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  alloc = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_server_config *c = lsmtp__calloc(alloc, 1, sizeof *c);
  if (!c) return LSMTP_ERR_NOMEM;
  c->alloc = alloc;
  c->hostname = lsmtp__strndup(alloc, "localhost", 9);
  if (!c->hostname) {
    lsmtp__free(alloc, c);
    return LSMTP_ERR_NOMEM;
  }
  c->ext = LSMTP_EXT_DEFAULT;
  memcpy(c->limits, default_limits, sizeof c->limits);
  memcpy(c->timeouts, default_timeouts, sizeof c->timeouts);
  *out = c;
  return LSMTP_OK;
}

void lsmtp_server_config_del(lsmtp_server_config *cfg) {
  if (!cfg) return;
  lsmtp__free(cfg->alloc, cfg->hostname);
  lsmtp__free(cfg->alloc, cfg->greeting);
  lsmtp__free(cfg->alloc, cfg);
}

int lsmtp_server_config_set_hostname(lsmtp_server_config *cfg,
                                     const char *hostname) {
  if (!cfg || !hostname) return LSMTP_ERR_INVALID;
  size_t n = strlen(hostname);
  if (n == 0 || n > LSMTP_MAX_DOMAIN) return LSMTP_ERR_INVALID;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)hostname[i];
    if (c <= ' ' || c >= 0x7f) return LSMTP_ERR_INVALID;
  }
  char *copy = lsmtp__strndup(cfg->alloc, hostname, n);
  if (!copy) return LSMTP_ERR_NOMEM;
  lsmtp__free(cfg->alloc, cfg->hostname);
  cfg->hostname = copy;
  return LSMTP_OK;
}

int lsmtp_server_config_set_greeting(lsmtp_server_config *cfg,
                                     const char *text) {
  if (!cfg || !text) return LSMTP_ERR_INVALID;
  size_t n = strlen(text);
  if (n > 512) return LSMTP_ERR_INVALID;
  char *copy = lsmtp__strndup(cfg->alloc, text, n);
  if (!copy) return LSMTP_ERR_NOMEM;
  /* One line only: the greeting's text never turns into a multi-line
   * reply or injects one. */
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)copy[i] < ' ' || copy[i] == 0x7f) copy[i] = ' ';
  lsmtp__free(cfg->alloc, cfg->greeting);
  cfg->greeting = copy;
  return LSMTP_OK;
}

int lsmtp_server_config_set_extensions(lsmtp_server_config *cfg, unsigned ext) {
  if (!cfg || (ext & ~(LSMTP_EXT_DEFAULT | LSMTP_EXT_STARTTLS | LSMTP_EXT_AUTH |
                LSMTP_EXT_REQUIRETLS)))
    return LSMTP_ERR_INVALID;
  cfg->ext = ext;
  return LSMTP_OK;
}

int lsmtp_server_config_set_flags(lsmtp_server_config *cfg, unsigned flags) {
  const unsigned known = LSMTP_SERVER_LMTP | LSMTP_SERVER_NORMALIZE_EOL |
                         LSMTP_SERVER_ALLOW_EARLY_TALKERS | LSMTP_SERVER_REQUIRE_TLS |
                         LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH | LSMTP_SERVER_REQUIRE_AUTH |
                         LSMTP_SERVER_ALLOW_PROXY_AUTH;
  if (!cfg || (flags & ~known)) return LSMTP_ERR_INVALID;
  cfg->flags = flags;
  return LSMTP_OK;
}

int lsmtp_server_config_set_limit(lsmtp_server_config *cfg,
                                  lsmtp_server_limit which, uint64_t value) {
  if (!cfg || (unsigned)which >= LSMTP_SERVER_LIMIT_COUNT_)
    return LSMTP_ERR_INVALID;
  switch (which) {
  case LSMTP_SERVER_LIMIT_LINE:
    if (value < 512 || value > 65536) return LSMTP_ERR_INVALID;
    break;
  case LSMTP_SERVER_LIMIT_AUTH_LINE:
    if (value < 512 || value > 1u << 20) return LSMTP_ERR_INVALID;
    break;
  case LSMTP_SERVER_LIMIT_TEXT_LINE:
    if (value < 3 || value > SIZE_MAX / 2) return LSMTP_ERR_INVALID;
    break;
  case LSMTP_SERVER_LIMIT_RECIPIENTS:
  case LSMTP_SERVER_LIMIT_OUTPUT:
    if (value < 1 || value > 1u << 30) return LSMTP_ERR_INVALID;
    break;
  case LSMTP_SERVER_LIMIT_ERRORS:
  case LSMTP_SERVER_LIMIT_JUNK_COMMANDS:
    if (value > 1u << 30) return LSMTP_ERR_INVALID;
    break;
  default:
    break;
  }
  cfg->limits[which] = value;
  return LSMTP_OK;
}

uint64_t lsmtp_server_config_get_limit(const lsmtp_server_config *cfg,
                                       lsmtp_server_limit which) {
  if (!cfg || (unsigned)which >= LSMTP_SERVER_LIMIT_COUNT_) return 0;
  return cfg->limits[which];
}

int lsmtp_server_config_set_timeout(lsmtp_server_config *cfg,
                                    lsmtp_server_timeout_kind which,
                                    unsigned ms) {
  if (!cfg || (unsigned)which >= LSMTP_SERVER_TIMEOUT_COUNT_)
    return LSMTP_ERR_INVALID;
  cfg->timeouts[which] = ms;
  return LSMTP_OK;
}

int lsmtp_server_config_set_all_timeouts(lsmtp_server_config *cfg, unsigned ms) {
  if (!cfg) return LSMTP_ERR_INVALID;
  for (unsigned i = 0; i < LSMTP_SERVER_TIMEOUT_COUNT_; i++)
    cfg->timeouts[i] = ms;
  return LSMTP_OK;
}

uint64_t lsmtp__srv_limit(const lsmtp_server *s, lsmtp_server_limit which) {
  return s->cfg->limits[which];
}

unsigned lsmtp__srv_offered(const lsmtp_server *s) {
  if (!s->esmtp) return 0;
  unsigned ext = s->cfg->ext & LSMTP_EXT_DEFAULT;
  /* RFC 3030: BINARYMIME only makes sense with BDAT. */
  if (!(ext & LSMTP_EXT_CHUNKING)) ext &= ~LSMTP_EXT_BINARYMIME;
  /* RFC 3207 §4.2: not offered again once TLS is up. */
  if ((s->cfg->ext & LSMTP_EXT_STARTTLS) && !s->tls) ext |= LSMTP_EXT_STARTTLS;
  if (lsmtp__srv_auth_offered(s)) ext |= LSMTP_EXT_AUTH;
  return ext;
}
