/* The byte transport under lsmtp_submit: a connected non-blocking socket,
 * optionally with the TLS filter (lsmtp/tls.h) between it and the session.
 * The session above only ever sees plaintext; STARTTLS and implicit TLS
 * differ only in when lsmtp__xport_start_tls is called. Private to
 * lib/roles/submit*.c. */
#ifndef LSMTP_SUBMIT_XPORT_H
#define LSMTP_SUBMIT_XPORT_H

#include <stddef.h>

#include <lsmtp/tls.h>

#define LSMTP__XPORT_CIPHER_BUF 16384

typedef struct lsmtp__xport {
  int fd;
  lsmtp_tls *tls; /* NULL: plaintext */
  /* ciphertext read from the socket that the filter has not taken yet */
  char cbuf[LSMTP__XPORT_CIPHER_BUF];
  size_t clen, coff;
  int eof;      /* the socket said end of file */
  int os_error; /* errno behind the last LSMTP_ERR_IO */
} lsmtp__xport;

/* Everything below returns LSMTP_OK, LSMTP_INCOMPLETE (would block: poll
 * for lsmtp__xport_events) or an error status: LSMTP_ERR_IO (os_error
 * says why), LSMTP_ERR_TLS / LSMTP_ERR_CERT (lsmtp_tls_error_text), or
 * LSMTP_ERR_NOMEM. */

/* Put TLS on the connection from now on (tls is owned by x afterwards,
 * freed by lsmtp__xport_close). Any ciphertext must come after this. */
void lsmtp__xport_start_tls(lsmtp__xport *x, lsmtp_tls *tls);

/* Advance the handshake: write what the filter has, read what the socket
 * has. LSMTP_OK once it is complete. */
int lsmtp__xport_handshake(lsmtp__xport *x);

/* Write plaintext. *taken gets how much of p was accepted (0 with
 * LSMTP_INCOMPLETE while earlier ciphertext is still on its way). */
int lsmtp__xport_write(lsmtp__xport *x, const char *p, size_t n, size_t *taken);

/* Write ciphertext still held by the filter. */
int lsmtp__xport_flush(lsmtp__xport *x);

/* Read plaintext: LSMTP_OK with *n > 0, LSMTP_INCOMPLETE when nothing is
 * available now, LSMTP_DONE at the end of the stream (EOF or TLS
 * close_notify). Call until it stops returning LSMTP_OK: TLS may hold
 * decrypted bytes that poll() cannot see. */
int lsmtp__xport_read(lsmtp__xport *x, char *buf, size_t cap, size_t *n);

/* POLLIN / POLLOUT bits to wait for, given whether the caller wants to
 * read: POLLOUT while ciphertext waits to be written. */
short lsmtp__xport_events(const lsmtp__xport *x, int want_read);

/* Best effort: send close_notify (TLS) without blocking, close the socket
 * and free the filter. */
void lsmtp__xport_close(lsmtp__xport *x);

#endif
