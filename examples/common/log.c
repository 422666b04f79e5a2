/* Logging for the example tools: one line per message on stderr, prefixed
 * with the program name. The library itself never prints; tools route its
 * log callbacks here. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *log_prog = "lsmtp";
static int log_verbosity;

void cli_log_init(const char *prog, int verbosity) {
  if (prog) {
    const char *slash = strrchr(prog, '/');
    log_prog = slash ? slash + 1 : prog;
  }
  log_verbosity = verbosity;
  /* Whole lines in one write, even with several writers on one terminal. */
  static char buf[8192];
  setvbuf(stderr, buf, _IOLBF, sizeof buf);
}

const char *cli_prog(void) { return log_prog; }

int cli_log_enabled(cli_level level) {
  if (level <= CLI_INFO) return 1;
  return (int)level - (int)CLI_INFO <= log_verbosity;
}

void cli_log(cli_level level, const char *fmt, ...) {
  if (!cli_log_enabled(level)) return;
  static const char *const tags[] = {"error: ", "warning: ", "", "", "debug: "};
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  fprintf(stderr, "%s: %s%s\n", log_prog, tags[level], line);
}

int cli_usage_error(const char *fmt, const char *arg) {
  char msg[512];
  snprintf(msg, sizeof msg, fmt, arg ? arg : "");
  cli_log(CLI_ERROR, "%s (try --help)", msg);
  return EX_USAGE;
}
