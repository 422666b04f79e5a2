/* Private state of the SASL client (sasl.c) shared with the SCRAM
 * mechanism (sasl_scram.c). */
#ifndef LSMTP_SASL_INT_H
#define LSMTP_SASL_INT_H

#include <lsmtp/sasl.h>

#include "crypto.h"
#include "internal.h"

#define LSMTP__SCRAM_NONCE_MAX 128

struct lsmtp_sasl_client {
  const lsmtp_allocator *alloc;
  lsmtp_sasl_mech mech;
  unsigned step;          /* messages produced so far */
  unsigned char started;
  unsigned char finished; /* nothing more to send; SCRAM: server verified */
  char *authzid, *user, *pass, *token, *host; /* NUL-terminated copies */
  unsigned port;
  lsmtp__buf out;     /* the last message produced */
  char *server_error; /* error text the server sent inside the exchange */
  /* SCRAM */
  char nonce[LSMTP__SCRAM_NONCE_MAX];
  size_t nonce_len;
  lsmtp__buf first_bare; /* client-first-message-bare, for AuthMessage */
  unsigned char server_sig[LSMTP__SHA256_LEN];
};

/* Set s->server_error to a copy of text (control bytes become spaces). */
int lsmtp__sasl_set_error(lsmtp_sasl_client *s, const char *text, size_t len);

/* SCRAM-SHA-256 steps; output goes to s->out. */
int lsmtp__scram_start(lsmtp_sasl_client *s);
int lsmtp__scram_step(lsmtp_sasl_client *s, const char *in, size_t len);

#endif
