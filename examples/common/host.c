/* Host names for the tools' greetings and Received: lines. */
#include <string.h>
#include <unistd.h>

#include <lsmtp/lsmtp.h>

#include "cli.h"

int cli_set_hostname(char *buf, size_t cap, const char *name) {
  size_t len = strlen(name);
  if (len >= cap || lsmtp_domain_check(name, len, 0, NULL) != LSMTP_OK) return -1;
  memcpy(buf, name, len + 1);
  return 0;
}

void cli_default_hostname(char *buf, size_t cap) {
  char name[256] = "";
  if (gethostname(name, sizeof name - 1) != 0 || cli_set_hostname(buf, cap, name) != 0)
    (void)cli_set_hostname(buf, cap, "localhost");
}
