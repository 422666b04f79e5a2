/* The client configuration: defaults (RFC 5321 §4.5.3.2 timers) and
 * setters. The session copies it, so one config can serve many sessions. */
#include "client_int.h"

static const uint32_t default_timeouts[LSMTP_CLIENT_TIMER_COUNT_] = {
    5u * 60u * 1000u,  /* greeting */
    5u * 60u * 1000u,  /* MAIL */
    5u * 60u * 1000u,  /* RCPT */
    2u * 60u * 1000u,  /* DATA initiation */
    3u * 60u * 1000u,  /* data block */
    10u * 60u * 1000u, /* data termination */
    5u * 60u * 1000u,  /* everything else */
};

int lsmtp_client_config_new(lsmtp_client_config **out,
                            const lsmtp_allocator *alloc) {
  if (!out) return LSMTP_ERR_INVALID;
  const lsmtp_allocator *a = LSMTP__ALLOC_OR_DEFAULT(alloc);
  lsmtp_client_config *cfg = lsmtp__calloc(a, 1, sizeof *cfg);
  *out = NULL;
  if (!cfg) return LSMTP_ERR_NOMEM;
  cfg->alloc = a;
  memcpy(cfg->helo, "localhost", sizeof "localhost");
  cfg->max_line = LSMTP_REPLY_DEFAULT_MAX_LINE;
  cfg->max_lines = LSMTP_REPLY_DEFAULT_MAX_LINES;
  cfg->chunk_size = LSMTP__CLIENT_DEFAULT_CHUNK;
  cfg->max_rcpts = 1000;
  cfg->pipelining = 1;
  cfg->chunking = 1;
  cfg->policy = LSMTP_RCPT_ANY;
  memcpy(cfg->timeouts, default_timeouts, sizeof default_timeouts);
  *out = cfg;
  return LSMTP_OK;
}

void lsmtp_client_config_del(lsmtp_client_config *cfg) {
  if (cfg) lsmtp__free(cfg->alloc, cfg);
}

int lsmtp_client_config_set_helo_name(lsmtp_client_config *cfg,
                                      const char *name) {
  if (!cfg || !name) return LSMTP_ERR_INVALID;
  size_t len = strlen(name);
  if (len > LSMTP__CLIENT_HELO_MAX) return LSMTP_ERR_TOO_LONG;
  int rc = lsmtp_domain_check(name, len, 0, NULL);
  if (rc != LSMTP_OK) return rc;
  memcpy(cfg->helo, name, len + 1);
  return LSMTP_OK;
}

void lsmtp_client_config_set_reply_limits(lsmtp_client_config *cfg,
                                          size_t max_line, size_t max_lines) {
  if (!cfg) return;
  cfg->max_line = max_line ? max_line : LSMTP_REPLY_DEFAULT_MAX_LINE;
  cfg->max_lines = max_lines ? max_lines : LSMTP_REPLY_DEFAULT_MAX_LINES;
}

void lsmtp_client_config_set_pipelining(lsmtp_client_config *cfg, int enable) {
  if (cfg) cfg->pipelining = enable != 0;
}

void lsmtp_client_config_set_chunking(lsmtp_client_config *cfg, int enable,
                                      size_t chunk_size) {
  if (!cfg) return;
  cfg->chunking = enable != 0;
  if (chunk_size == 0) chunk_size = LSMTP__CLIENT_DEFAULT_CHUNK;
  if (chunk_size > LSMTP__CLIENT_MAX_CHUNK) chunk_size = LSMTP__CLIENT_MAX_CHUNK;
  if (chunk_size < 2) chunk_size = 2; /* room for one repaired line end */
  cfg->chunk_size = chunk_size;
}

void lsmtp_client_config_set_rcpt_policy(lsmtp_client_config *cfg,
                                         lsmtp_rcpt_policy policy) {
  if (cfg) cfg->policy = policy == LSMTP_RCPT_ALL ? LSMTP_RCPT_ALL : LSMTP_RCPT_ANY;
}

void lsmtp_client_config_set_allow_insecure_auth(lsmtp_client_config *cfg,
                                                 int allow) {
  if (cfg) cfg->allow_insecure_auth = allow != 0;
}

void lsmtp_client_config_set_timeout(lsmtp_client_config *cfg,
                                     lsmtp_client_timer timer, uint32_t ms) {
  if (!cfg || (unsigned)timer >= LSMTP_CLIENT_TIMER_COUNT_) return;
  cfg->timeouts[timer] = ms ? ms : default_timeouts[timer];
}

void lsmtp_client_config_set_max_recipients(lsmtp_client_config *cfg,
                                            size_t max) {
  if (cfg) cfg->max_rcpts = max ? max : 1000;
}
