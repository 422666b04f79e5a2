/* Helpers shared by the example tools (smtp-receive, smtp-send, ...):
 * logging to stderr, strict number parsing, a signal self-pipe and
 * dropping root privileges. Tools exit with <sysexits.h> codes. */
#ifndef LSMTP_EXAMPLES_CLI_H
#define LSMTP_EXAMPLES_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

/* ---- logging (log.c): "<prog>: <message>\n" on stderr ---- */

typedef enum cli_level {
  CLI_ERROR = 0, /* always shown */
  CLI_WARN,      /* always shown */
  CLI_INFO,      /* always shown: one line per session, per message */
  CLI_VERBOSE,   /* -v: protocol dialogue */
  CLI_DEBUG      /* -vv: library debug messages */
} cli_level;

/* prog: the name to prefix (argv[0]'s last component is used);
 * verbosity: number of -v given. */
void cli_log_init(const char *prog, int verbosity);
/* Non-zero when messages of this level are printed. */
int cli_log_enabled(cli_level level);
void cli_log(cli_level level, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The program name given to cli_log_init. */
const char *cli_prog(void);
/* A bad command line: logs fmt with arg (NULL: "") in place of its one %s,
 * then " (try --help)", and returns EX_USAGE for the tool to exit with. */
int cli_usage_error(const char *fmt, const char *arg);

/* ---- host names (host.c) ---- */

/* Copy name into buf when it is a valid host name (RFC 5321 domain) that
 * fits; returns 0, or -1 (buf unchanged). */
int cli_set_hostname(char *buf, size_t cap, const char *name);
/* Fill buf with the system's host name when it is a valid domain, else
 * "localhost" (the greeting and Received: need a name). */
void cli_default_hostname(char *buf, size_t cap);

/* ---- numbers (parse.c) ---- */

/* Parse a decimal number (digits only, no sign, no spaces) not above max.
 * Returns 0 on success, -1 otherwise. */
int cli_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* As cli_parse_u64 with an optional k/K, m/M or g/G suffix (powers of
 * 1024). */
int cli_parse_size(const char *s, uint64_t max, uint64_t *out);

/* ---- signals (signals.c) ---- */

/* Route the given signals into a non-blocking, close-on-exec pipe: the
 * handler writes one byte (the signal number) per signal. Watch *read_fd
 * in the event loop and read the bytes with cli_signal_read. SIGPIPE is
 * ignored. Returns 0, or -1 with errno set. One pipe per process. */
int cli_signal_pipe(const int *signals, size_t count, int *read_fd);
/* Read the next pending signal number from the pipe; 0 when none. */
int cli_signal_read(int read_fd);

/* ---- privileges (privs.c) ---- */

/* Become user (name or numeric uid): initgroups, setgid, setuid, then
 * check that root cannot be regained. Returns 0 or a sysexits code
 * (EX_NOUSER, EX_NOPERM, EX_OSERR) after logging why. */
int cli_drop_privileges(const char *user);

/* Create a directory and its missing parents (mode for the ones created).
 * Returns 0, or -1 with errno set. */
int cli_mkdirs(const char *path, unsigned mode);

#endif
