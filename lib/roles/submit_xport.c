/* The transport of lsmtp_submit: plaintext straight to the socket, or
 * through the TLS filter. Reads are drained until the socket would block,
 * because a TLS record may hold more plaintext than one read returns and
 * poll() cannot see what the filter keeps. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "submit_xport.h"

void lsmtp__xport_start_tls(lsmtp__xport *x, lsmtp_tls *tls) {
  x->tls = tls;
  x->clen = x->coff = 0;
}

/* Ciphertext from the filter to the socket. */
int lsmtp__xport_flush(lsmtp__xport *x) {
  if (!x->tls) return LSMTP_OK;
  for (;;) {
    const char *p;
    size_t n = lsmtp_tls_pending(x->tls, &p);
    if (n == 0) return LSMTP_OK;
    ssize_t w = send(x->fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      (void)lsmtp_tls_consume(x->tls, (size_t)w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return LSMTP_INCOMPLETE;
    x->os_error = w < 0 ? errno : EPIPE;
    return LSMTP_ERR_IO;
  }
}

/* Give the filter ciphertext: what is left over first, else one read from
 * the socket. LSMTP_OK when something was fed. */
static int feed_cipher(lsmtp__xport *x) {
  if (x->coff == x->clen) {
    if (x->eof) return LSMTP_DONE;
    ssize_t r;
    do
      r = recv(x->fd, x->cbuf, sizeof x->cbuf, 0);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
      x->eof = 1;
      return LSMTP_DONE;
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return LSMTP_INCOMPLETE;
      x->os_error = errno;
      return LSMTP_ERR_IO;
    }
    x->clen = (size_t)r;
    x->coff = 0;
  }
  size_t used = 0;
  int rc = lsmtp_tls_feed(x->tls, x->cbuf + x->coff, x->clen - x->coff, &used);
  if (rc != LSMTP_OK) return rc == LSMTP_ERR_FATAL ? LSMTP_ERR_TLS : rc;
  x->coff += used;
  /* The filter's input is full yet it cannot make progress: a record
   * larger than TLS allows. */
  if (used == 0) return LSMTP_ERR_TLS;
  return LSMTP_OK;
}

int lsmtp__xport_handshake(lsmtp__xport *x) {
  for (;;) {
    int rc = lsmtp_tls_handshake(x->tls);
    int frc = lsmtp__xport_flush(x); /* also an alert after a failure */
    if (rc == LSMTP_OK) return frc == LSMTP_ERR_IO ? frc : LSMTP_OK;
    if (rc != LSMTP_INCOMPLETE) return rc;
    if (frc == LSMTP_ERR_IO) return frc;
    int f = feed_cipher(x);
    if (f == LSMTP_INCOMPLETE) return LSMTP_INCOMPLETE;
    if (f == LSMTP_DONE) return LSMTP_ERR_TLS; /* hung up mid-handshake */
    if (f != LSMTP_OK) return f;
  }
}

int lsmtp__xport_write(lsmtp__xport *x, const char *p, size_t n, size_t *taken) {
  *taken = 0;
  if (!x->tls) {
    ssize_t w;
    do
      w = send(x->fd, p, n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w > 0) {
      *taken = (size_t)w;
      return LSMTP_OK;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return LSMTP_INCOMPLETE;
    x->os_error = w < 0 ? errno : EPIPE;
    return LSMTP_ERR_IO;
  }
  /* Encrypt only once the last record left: keeps the filter's output
   * bounded by one write of the session. */
  int rc = lsmtp__xport_flush(x);
  if (rc != LSMTP_OK) return rc;
  rc = lsmtp_tls_write(x->tls, p, n);
  if (rc != LSMTP_OK) return rc == LSMTP_ERR_FATAL ? LSMTP_ERR_TLS : rc;
  *taken = n;
  rc = lsmtp__xport_flush(x);
  return rc == LSMTP_INCOMPLETE ? LSMTP_OK : rc;
}

int lsmtp__xport_read(lsmtp__xport *x, char *buf, size_t cap, size_t *n) {
  *n = 0;
  if (!x->tls) {
    if (x->eof) return LSMTP_DONE;
    ssize_t r;
    do
      r = recv(x->fd, buf, cap, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
      *n = (size_t)r;
      return LSMTP_OK;
    }
    if (r == 0) {
      x->eof = 1;
      return LSMTP_DONE;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return LSMTP_INCOMPLETE;
    x->os_error = errno;
    return LSMTP_ERR_IO;
  }
  for (;;) {
    int rc = lsmtp_tls_read(x->tls, buf, cap, n);
    if (rc == LSMTP_OK || rc == LSMTP_DONE) return rc;
    if (rc != LSMTP_INCOMPLETE) return rc == LSMTP_ERR_FATAL ? LSMTP_ERR_TLS : rc;
    /* A renegotiation-free TLS 1.2 read may still want to write (an
     * alert); keep the output moving. */
    int frc = lsmtp__xport_flush(x);
    if (frc == LSMTP_ERR_IO) return frc;
    int f = feed_cipher(x);
    if (f != LSMTP_OK) return f;
  }
}

short lsmtp__xport_events(const lsmtp__xport *x, int want_read) {
  short ev = want_read ? POLLIN : 0;
  if (x->tls && lsmtp_tls_pending(x->tls, NULL) > 0) ev |= POLLOUT;
  return ev;
}

void lsmtp__xport_close(lsmtp__xport *x) {
  if (x->tls) {
    if (lsmtp_tls_is_established(x->tls) && lsmtp_tls_close(x->tls) == LSMTP_OK)
      (void)lsmtp__xport_flush(x);
    lsmtp_tls_del(x->tls);
    x->tls = NULL;
  }
  if (x->fd >= 0) close(x->fd);
  x->fd = -1;
}
