/* Status codes returned by every lsmtp call: 0 is success, negative is an
 * error, small positive values are non-error outcomes ("need more input",
 * "found the end"). One table below generates the enum, the names and the
 * messages, so they cannot drift apart. */
#ifndef LSMTP_STATUS_H
#define LSMTP_STATUS_H

#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/* X(NAME, value, fatal, message)
 * fatal = 1: the object that returned it is unusable; only _del is legal. */
#define LSMTP_STATUS_MAP(X)                                                     \
  X(OK,              0, 0, "success")                                           \
  X(INCOMPLETE,      1, 0, "more input is needed")                              \
  X(DONE,            2, 0, "end of the unit reached")                           \
  X(PAUSED,          3, 0, "paused by a callback")                              \
  X(ERR_NOMEM,      -1, 1, "out of memory")                                     \
  X(ERR_INVALID,    -2, 0, "invalid argument")                                  \
  X(ERR_STATE,      -3, 0, "call not valid in this state")                      \
  X(ERR_SYNTAX,     -4, 0, "syntax error")                                      \
  X(ERR_TOO_LONG,   -5, 0, "line or field too long")                            \
  X(ERR_BARE_EOL,   -6, 0, "bare CR or LF where CRLF is required")              \
  X(ERR_NUL,        -7, 0, "NUL byte in input")                                 \
  X(ERR_UTF8,       -8, 0, "non-ASCII or malformed UTF-8 where not allowed")    \
  X(ERR_PARAM,      -9, 0, "unknown or invalid ESMTP parameter")                \
  X(ERR_DUP_PARAM, -10, 0, "duplicate ESMTP parameter")                         \
  X(ERR_LIMIT,     -11, 0, "limit exceeded")                                    \
  X(ERR_BAD_REPLY, -12, 1, "malformed reply from the server")                   \
  X(ERR_PROTOCOL,  -13, 1, "protocol violation by the peer")                    \
  X(ERR_UNSUPPORTED,-14, 0, "not supported by the peer or this build")          \
  X(ERR_REFUSED,   -15, 0, "refused by the peer")                               \
  X(ERR_TEMPFAIL,  -16, 0, "temporary failure reported by the peer")            \
  X(ERR_AUTH,      -17, 0, "authentication failed")                             \
  X(ERR_TLS,       -18, 1, "TLS failure")                                       \
  X(ERR_CERT,      -19, 1, "certificate verification failed")                   \
  X(ERR_IO,        -20, 1, "I/O error")                                         \
  X(ERR_CLOSED,    -21, 1, "connection closed")                                 \
  X(ERR_TIMEOUT,   -22, 1, "timed out")                                         \
  X(ERR_DNS,       -23, 0, "name resolution failed")                            \
  X(ERR_ABORTED,   -24, 1, "aborted by a callback")                             \
  X(ERR_FATAL,     -25, 1, "object unusable after an earlier fatal error")      \
  X(ERR_STORAGE,   -26, 0, "storing the message failed")                        \
  X(ERR_INSECURE,  -27, 0, "refused: would send secrets without TLS")

/** Every status value. Negative values are errors. */
typedef enum lsmtp_status {
#define LSMTP_STATUS_ENUM_(name, value, fatal, msg) LSMTP_##name = (value),
  LSMTP_STATUS_MAP(LSMTP_STATUS_ENUM_)
#undef LSMTP_STATUS_ENUM_
} lsmtp_status;

/** A human-readable message for a status; never NULL ("unknown status" for
 *  values not in the table). The string is static. */
LSMTP_API const char *lsmtp_strerror(int status);

/** The symbolic name of a status, e.g. "LSMTP_ERR_SYNTAX"; never NULL. */
LSMTP_API const char *lsmtp_status_name(int status);

/** Non-zero when the status leaves the object that returned it unusable
 *  (sticky: every later call on it returns LSMTP_ERR_FATAL). */
LSMTP_API int lsmtp_status_is_fatal(int status);

LSMTP_END_DECLS

#endif
