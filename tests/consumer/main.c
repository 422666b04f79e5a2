/* Uses the installed headers and library: parse a reply, check versions. */
#include <lsmtp/lsmtp.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  if (strcmp(lsmtp_version(), LSMTP_VERSION_STRING) != 0) {
    fprintf(stderr, "header %s, library %s\n", LSMTP_VERSION_STRING, lsmtp_version());
    return 1;
  }
  lsmtp_reply_parser *p = NULL;
  if (lsmtp_reply_parser_new(&p, NULL, 0, 0) != LSMTP_OK) return 1;
  const char in[] = "250-mx.example\r\n250 2.0.0 PIPELINING\r\n";
  size_t used = 0;
  int rc = lsmtp_reply_parser_feed(p, in, sizeof in - 1, &used);
  const lsmtp_reply *r = lsmtp_reply_parser_get(p);
  int ok = rc == LSMTP_DONE && used == sizeof in - 1 && r && r->code == 250 && r->lines == 2;
  lsmtp_reply_parser_del(p);
  printf("consumer: %s, reply %s\n", lsmtp_version(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
