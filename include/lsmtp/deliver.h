/* Local delivery helpers for a receiving host: durable Maildir storage that
 * streams the message to disk, a check that turns a local part into a safe
 * mailbox folder name, and the trace header fields (RFC 5321 §4.4) a
 * receiver prepends to every message it stores. This part of lsmtp does
 * file I/O; it still never writes to stdout/stderr and keeps no global
 * state (unique-name counters live in a lsmtp_maildir_ctx). */
#ifndef LSMTP_DELIVER_H
#define LSMTP_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/* ------------------------------------------------------------------------
 * Maildir delivery (https://cr.yp.to/proto/maildir.html)
 *
 * Typical use, once per stored copy of a message:
 *
 *   lsmtp_maildir *m;
 *   if (lsmtp_maildir_open(&m, NULL, "/var/mail/alice", ctx, now, usec) < 0)
 *     log(strerror(errno));
 *   lsmtp_maildir_write(m, hdr, hdr_len);       // trace fields first
 *   ... lsmtp_maildir_write(m, chunk, n) for every chunk of DATA ...
 *   rc = lsmtp_maildir_commit(m);               // 250 only if LSMTP_OK
 *   lsmtp_maildir_del(m);                       // aborts if not committed
 * ---------------------------------------------------------------------- */

/** Per-process state for unique file names: the encoded host name, a
 *  delivery counter and a random token. Not thread-safe: use one per thread
 *  (names stay unique across contexts thanks to the random token). */
typedef struct lsmtp_maildir_ctx lsmtp_maildir_ctx;

/** One message being written into tmp/ of a Maildir. */
typedef struct lsmtp_maildir lsmtp_maildir;

/* Flags for lsmtp_maildir_ctx_new. */
#define LSMTP_MAILDIR_NO_CREATE 0x1u /* fail if dir, tmp/, new/ or cur/ is missing */
#define LSMTP_MAILDIR_NO_SIZE 0x2u   /* leave ",S=<size>" out of the final name */
#define LSMTP_MAILDIR_NO_FSYNC 0x4u  /* skip fsync: for tests and benchmarks
                                        only, a crash may lose acknowledged mail */

/** Longest folder name lsmtp_maildir_safe_name accepts (RFC 5321 local-part
 *  limit); a buffer of LSMTP_MAILDIR_NAME_MAX + 1 bytes always suffices. */
#define LSMTP_MAILDIR_NAME_MAX 64

/** Create a naming context. hostname: the name to put into file names;
 *  NULL asks the system (gethostname). "/" and ":" in it are written as
 *  "\057" and "\072" (other control, space, backslash and 8-bit bytes also
 *  as "\ooo"), as the Maildir convention asks. flags: LSMTP_MAILDIR_*.
 *  alloc may be NULL. Returns LSMTP_OK, LSMTP_ERR_NOMEM, LSMTP_ERR_INVALID
 *  (empty hostname or one over 255 bytes) or LSMTP_ERR_STORAGE (the system
 *  host name could not be read; errno says why). */
LSMTP_API int lsmtp_maildir_ctx_new(lsmtp_maildir_ctx **out,
                                    const lsmtp_allocator *alloc,
                                    const char *hostname, unsigned flags);

/** Destroy a context; NULL does nothing. Deliveries opened with it must be
 *  deleted first. */
LSMTP_API void lsmtp_maildir_ctx_del(lsmtp_maildir_ctx *ctx);

/** Start a delivery into the Maildir at dir. dir itself and its tmp/, new/
 *  and cur/ are created (mode 0700) when missing, unless the context has
 *  LSMTP_MAILDIR_NO_CREATE; the parent of dir must exist. A new file
 *  (mode 0600, never following a symlink, never replacing a file) is opened
 *  in tmp/ under a unique name
 *      <sec>.M<usec>P<pid>Q<counter>R<random>.<host>
 *  now/usec: the current time, which the host supplies (now == (time_t)-1
 *  reads the system clock; usec 0..999999). The counter advances in ctx.
 *  alloc may be NULL. Returns LSMTP_OK, LSMTP_ERR_NOMEM, LSMTP_ERR_INVALID
 *  (NULL or empty dir, usec out of range) or LSMTP_ERR_STORAGE, in which
 *  case errno holds the system error when the call returns. */
LSMTP_API int lsmtp_maildir_open(lsmtp_maildir **out,
                                 const lsmtp_allocator *alloc, const char *dir,
                                 lsmtp_maildir_ctx *ctx, time_t now, long usec);

/** Append bytes to the message. Writes are buffered (a fixed buffer of a
 *  few dozen KiB, never the whole message). Returns LSMTP_OK,
 *  LSMTP_ERR_STATE (already committed, aborted or failed) or
 *  LSMTP_ERR_STORAGE (the delivery is then aborted: its tmp file is gone;
 *  see lsmtp_maildir_errno). */
LSMTP_API int lsmtp_maildir_write(lsmtp_maildir *m, const void *data,
                                  size_t len);

/** Make the message durable and visible: write out the buffer, fsync the
 *  file, close it, rename it into new/ (adding ",S=<size>") and fsync new/.
 *  Only LSMTP_OK means the message is stored; that is when a receiver may
 *  answer 250. Returns LSMTP_OK, LSMTP_ERR_STATE, or LSMTP_ERR_STORAGE (the
 *  tmp file has then been removed; see lsmtp_maildir_errno). */
LSMTP_API int lsmtp_maildir_commit(lsmtp_maildir *m);

/** Give up on the message: close and remove the tmp file. Safe to call in
 *  any state (does nothing after commit or an earlier abort). */
LSMTP_API void lsmtp_maildir_abort(lsmtp_maildir *m);

/** Free the delivery, aborting it first unless it was committed. NULL does
 *  nothing. */
LSMTP_API void lsmtp_maildir_del(lsmtp_maildir *m);

/** The errno of the failure that made a call return LSMTP_ERR_STORAGE
 *  (0 when nothing failed), for the host's log. */
LSMTP_API int lsmtp_maildir_errno(const lsmtp_maildir *m);

/** The system call that failed ("write", "fsync", "rename"...), or "" when
 *  nothing failed. Static string. */
LSMTP_API const char *lsmtp_maildir_failed_op(const lsmtp_maildir *m);

/** The file name (no directory): in tmp/ before commit, in new/ after a
 *  successful commit (then with ",S=<size>"). Valid until lsmtp_maildir_del. */
LSMTP_API const char *lsmtp_maildir_name(const lsmtp_maildir *m);

/** Bytes written so far (the size of the stored message after commit). */
LSMTP_API uint64_t lsmtp_maildir_size(const lsmtp_maildir *m);

/** Check a local part and turn it into a mailbox folder name under the
 *  Maildir root: ASCII letters are lower-cased, everything else is kept.
 *  Refused (LSMTP_ERR_INVALID): empty, longer than LSMTP_MAILDIR_NAME_MAX,
 *  a leading ".", "..", "/", "\\", NUL, control bytes (< 0x20, 0x7f) and
 *  the double quote (pass the local part as written or unquoted; neither
 *  may escape the root). On LSMTP_OK out holds the NUL-terminated name and
 *  *out_len (may be NULL) its length; LSMTP_ERR_TOO_LONG when cap is
 *  smaller than the name plus its NUL. */
LSMTP_API int lsmtp_maildir_safe_name(const char *local, size_t len, char *out,
                                      size_t cap, size_t *out_len);

/* ------------------------------------------------------------------------
 * Trace fields (RFC 5321 §4.4, RFC 5322 §3.6.7)
 * ---------------------------------------------------------------------- */

/* How the message came in; choose the "with" protocol (RFC 3848, RFC 6531). */
#define LSMTP_TRACE_ESMTP 0x01u /* EHLO (else HELO: "SMTP") */
#define LSMTP_TRACE_TLS 0x02u   /* STARTTLS or implicit TLS: "...S" */
#define LSMTP_TRACE_AUTH 0x04u  /* authenticated: "...A" */
#define LSMTP_TRACE_LMTP 0x08u  /* LMTP (LHLO): "LMTP" */
#define LSMTP_TRACE_UTF8 0x10u  /* MAIL had SMTPUTF8: "UTF8SMTP..." */

/** The "with" keyword for the flags: "SMTP", "ESMTP", "ESMTPS", "ESMTPA",
 *  "ESMTPSA", "LMTP", "LMTPS", "LMTPA", "LMTPSA", and with LSMTP_TRACE_UTF8
 *  "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA", "UTF8LMTP",
 *  "UTF8LMTPS", "UTF8LMTPA", "UTF8LMTPSA". TLS, AUTH or UTF8 without ESMTP
 *  count as ESMTP (they need EHLO). Static string. */
LSMTP_API const char *lsmtp_trace_protocol(unsigned flags);

/** What a Received: field records. Zero-initialise it and fill what you
 *  know; NULL strings are left out (or shown as "unknown" where the
 *  grammar needs a value). All strings are NUL-terminated. Values from the
 *  peer (helo, rdns, rcpt) are sanitised when written: control bytes
 *  become "?", and in helo/rdns/ip/by/id/tls_* also space, "(", ")", ";"
 *  and "\\", so nothing can end the line or forge a clause or comment. */
typedef struct lsmtp_trace_info {
  const char *helo;        /* the HELO/EHLO/LHLO argument; NULL: "unknown" */
  const char *rdns;        /* the peer's verified reverse DNS; NULL: "unknown" */
  const char *ip;          /* the peer's address "192.0.2.1" or "2001:db8::1"
                              ("IPv6:" is added); NULL: no TCP-info comment */
  const char *by;          /* our host name; NULL: "localhost" */
  const char *id;          /* queue id; NULL: no "id" clause */
  const char *rcpt;        /* the one recipient (no brackets); NULL: no "for" */
  const char *tls_version; /* e.g. "TLSv1.3"; NULL: no TLS comment */
  const char *tls_cipher;  /* e.g. "TLS_AES_256_GCM_SHA384"; NULL: version only */
  unsigned flags;          /* LSMTP_TRACE_* */
  time_t time;             /* when the message arrived (seconds since 1970) */
  int utc_offset;          /* minutes east of UTC, -1439..1439 */
} lsmtp_trace_info;

/** Format
 *    Received: from HELO (RDNS [IP]) (using TLSv1.3 with cipher C)
 *    \tby BY (lsmtp) with PROTOCOL id ID for <RCPT>;
 *    \tSat, 28 Nov 2026 22:45:18 +0000\r\n
 *  into buf. Clauses are joined by a space and folded ("\r\n\t") before a
 *  clause that would take a line past 78 octets; a single clause longer
 *  than that stays whole on its line. snprintf-like: returns the length the
 *  whole field needs (excluding the NUL), writes at most cap bytes and
 *  NUL-terminates when there is room; returns 0 for invalid input (info
 *  NULL, utc_offset out of range, a year outside 1900..9999). */
LSMTP_API size_t lsmtp_trace_received(char *buf, size_t cap,
                                      const lsmtp_trace_info *info);

/** Format "Return-Path: <reverse_path>\r\n" into buf; NULL or "" gives
 *  "Return-Path: <>\r\n". reverse_path is the mailbox without brackets;
 *  control bytes in it become "?". snprintf-like as above. */
LSMTP_API size_t lsmtp_trace_return_path(char *buf, size_t cap,
                                         const char *reverse_path);

/** Format an RFC 5322 date-time "Sat, 28 Nov 2026 22:45:18 +0000" for t
 *  shown at utc_offset minutes east of UTC; the day is not zero-padded
 *  ("Mon, 2 Nov 2026 ..."). snprintf-like (at most 31 bytes plus the NUL);
 *  0 for an offset out of range or a year outside 1900..9999. */
LSMTP_API size_t lsmtp_trace_date(char *buf, size_t cap, time_t t,
                                  int utc_offset);

LSMTP_END_DECLS

#endif
