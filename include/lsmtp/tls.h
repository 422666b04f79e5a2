/* TLS as a memory-in / memory-out filter between a session and the
 * network (RFC 3207 STARTTLS, RFC 8314 implicit TLS). The host moves
 * ciphertext between the socket and the filter and plaintext between the
 * filter and the SMTP session; the filter itself does no I/O.
 *
 *   socket --read--> lsmtp_tls_feed --> lsmtp_tls_read --> session_feed
 *   socket <-write-- lsmtp_tls_pending <-- lsmtp_tls_write <-- session_pending
 *
 * Built on mbedTLS when lsmtp is built with LSMTP_WITH_MBEDTLS; otherwise
 * every constructor returns LSMTP_ERR_UNSUPPORTED and lsmtp_tls_available()
 * is 0, so a host can simply not offer TLS. */
#ifndef LSMTP_TLS_H
#define LSMTP_TLS_H

#include <stddef.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** Non-zero when this build of lsmtp has TLS. */
LSMTP_API int lsmtp_tls_available(void);

/** Which end of the connection a configuration is for. */
typedef enum lsmtp_tls_role {
  LSMTP_TLS_CLIENT = 0,
  LSMTP_TLS_SERVER = 1
} lsmtp_tls_role;

/** The system CA bundle used by clients when no CA is configured. */
#define LSMTP_TLS_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* ---- configuration: shared by many connections, read-only once used ---- */

typedef struct lsmtp_tls_config lsmtp_tls_config;

/** Create a configuration for one role: TLS 1.2 minimum, the library's
 *  default cipher suites (forward-secret AEAD suites first), a DRBG seeded
 *  from the system's entropy. Clients verify the server's certificate
 *  against LSMTP_TLS_DEFAULT_CA_FILE (loaded when the first connection is
 *  made, unless a CA is set) and check its name. alloc may be NULL; it is
 *  used for lsmtp's own objects (mbedTLS allocates with calloc/free).
 *  Returns LSMTP_OK, LSMTP_ERR_NOMEM, LSMTP_ERR_TLS (the random generator
 *  could not be seeded) or LSMTP_ERR_UNSUPPORTED (no TLS in this build). */
LSMTP_API int lsmtp_tls_config_new(lsmtp_tls_config **out,
                                   const lsmtp_allocator *alloc,
                                   lsmtp_tls_role role);

/** Destroy a configuration; NULL does nothing. No connection may use it. */
LSMTP_API void lsmtp_tls_config_del(lsmtp_tls_config *cfg);

/** The certificate chain (leaf first) and private key, PEM, from files.
 *  Required for servers; optional for clients (client certificates).
 *  key_password may be NULL. Returns LSMTP_OK, LSMTP_ERR_TLS (unreadable or
 *  unparsable, or key and certificate do not match; see
 *  lsmtp_tls_config_error) or LSMTP_ERR_INVALID. */
LSMTP_API int lsmtp_tls_config_set_cert_files(lsmtp_tls_config *cfg,
                                              const char *cert_file,
                                              const char *key_file,
                                              const char *key_password);

/** As lsmtp_tls_config_set_cert_files, from PEM text in memory (copied). */
LSMTP_API int lsmtp_tls_config_set_cert_pem(lsmtp_tls_config *cfg,
                                            const char *cert_pem,
                                            size_t cert_len,
                                            const char *key_pem, size_t key_len,
                                            const char *key_password);

/** Trust anchors for verifying the peer, from a PEM file (may hold many
 *  certificates) instead of the system bundle. Returns LSMTP_OK or
 *  LSMTP_ERR_TLS. */
LSMTP_API int lsmtp_tls_config_set_ca_file(lsmtp_tls_config *cfg,
                                           const char *path);

/** Trust anchors from PEM text in memory. Returns LSMTP_OK or LSMTP_ERR_TLS. */
LSMTP_API int lsmtp_tls_config_set_ca_pem(lsmtp_tls_config *cfg,
                                          const char *pem, size_t len);

/** Peer verification: 1 (the default for clients) refuses a peer whose
 *  certificate does not verify or does not name the expected host; 0 turns
 *  verification off (an explicit opt-out such as smtp-send --insecure).
 *  Servers do not ask for client certificates. Returns LSMTP_OK. */
LSMTP_API int lsmtp_tls_config_set_verify(lsmtp_tls_config *cfg, int verify);

/** mbedTLS's text for the last configuration error ("" when none); static
 *  until the next call on cfg. */
LSMTP_API const char *lsmtp_tls_config_error(const lsmtp_tls_config *cfg);

/* ---- one connection ---- */

typedef struct lsmtp_tls lsmtp_tls;

/** Create a TLS connection filter. cfg must outlive it. For clients,
 *  server_name is sent as SNI and is the name the certificate must carry
 *  (mbedTLS 2.28 cannot check IP-address names: give a DNS name); it may be
 *  NULL only when verification is off. Servers pass NULL. Returns LSMTP_OK,
 *  LSMTP_ERR_INVALID, LSMTP_ERR_NOMEM or LSMTP_ERR_TLS. */
LSMTP_API int lsmtp_tls_new(lsmtp_tls **out, lsmtp_tls_config *cfg,
                            const char *server_name);

/** Destroy; NULL does nothing. Does not send close_notify (see
 *  lsmtp_tls_close). */
LSMTP_API void lsmtp_tls_del(lsmtp_tls *tls);

/** Give the filter ciphertext read from the network. Takes as much as its
 *  bounded input buffer holds (*consumed); feed the rest after reading
 *  plaintext. Returns LSMTP_OK, LSMTP_ERR_NOMEM or LSMTP_ERR_FATAL. */
LSMTP_API int lsmtp_tls_feed(lsmtp_tls *tls, const char *data, size_t len,
                             size_t *consumed);

/** Ciphertext waiting to be written to the network: sets *data and returns
 *  the byte count (0 when none). Valid until the next call on tls. */
LSMTP_API size_t lsmtp_tls_pending(const lsmtp_tls *tls, const char **data);

/** Mark n pending ciphertext bytes as written. Returns LSMTP_OK or
 *  LSMTP_ERR_INVALID (n larger than pending). */
LSMTP_API int lsmtp_tls_consume(lsmtp_tls *tls, size_t n);

/** Advance the handshake with what was fed. Returns LSMTP_OK once it is
 *  complete (also on later calls), LSMTP_INCOMPLETE when it needs more
 *  input (write what is pending, then feed), LSMTP_ERR_CERT (the peer's
 *  certificate was refused; lsmtp_tls_error_text says why) or LSMTP_ERR_TLS
 *  (any other failure, e.g. no shared cipher, a non-TLS peer). Errors are
 *  fatal: write what is pending (an alert), then close. */
LSMTP_API int lsmtp_tls_handshake(lsmtp_tls *tls);

/** Read decrypted application data into buf. Returns LSMTP_OK with *n > 0,
 *  LSMTP_INCOMPLETE when no whole record is buffered (feed more), LSMTP_DONE
 *  when the peer sent close_notify, or LSMTP_ERR_TLS. Runs the handshake
 *  first when it is not complete. */
LSMTP_API int lsmtp_tls_read(lsmtp_tls *tls, char *buf, size_t cap,
                             size_t *n);

/** Encrypt len bytes of application data into the pending ciphertext.
 *  Returns LSMTP_OK (all of it taken), LSMTP_INCOMPLETE (handshake not
 *  complete yet), LSMTP_ERR_STATE (closed) or LSMTP_ERR_TLS. */
LSMTP_API int lsmtp_tls_write(lsmtp_tls *tls, const char *data, size_t len);

/** Queue close_notify; write what is pending afterwards, then close the
 *  socket. Returns LSMTP_OK (also when already closed) or LSMTP_ERR_TLS. */
LSMTP_API int lsmtp_tls_close(lsmtp_tls *tls);

/** Non-zero once the handshake completed. */
LSMTP_API int lsmtp_tls_is_established(const lsmtp_tls *tls);

/** The negotiated protocol ("TLSv1.2") and cipher suite
 *  ("TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384") for logs and Received:
 *  headers; "" before the handshake. Static strings. */
LSMTP_API const char *lsmtp_tls_version(const lsmtp_tls *tls);
LSMTP_API const char *lsmtp_tls_cipher(const lsmtp_tls *tls);

/** Why the last call failed, in mbedTLS's words (with the certificate
 *  verification details for LSMTP_ERR_CERT); "" when nothing failed. Valid
 *  until the next call on tls. */
LSMTP_API const char *lsmtp_tls_error_text(const lsmtp_tls *tls);

LSMTP_END_DECLS

#endif
