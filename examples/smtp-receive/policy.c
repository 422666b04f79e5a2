/* Who may send to whom: recipients at the listed domains (compared without
 * regard to case) and <postmaster>; everything else is relaying and gets
 * 550 5.7.1. A local part becomes a folder under the Maildir root, so one
 * that could name anything but a plain folder there gets 550 5.1.3. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "receive.h"

static int domain_listed(const rx_app *app, const char *d, size_t len) {
  for (size_t i = 0; i < app->ndomains; i++) {
    const char *want = app->domains[i];
    if (strlen(want) == len && strncasecmp(want, d, len) == 0) return 1;
  }
  return 0;
}

int rx_on_mail(lsmtp_server *srv, const lsmtp_path *path,
               const lsmtp_mail_params *params, void *ud) {
  (void)srv;
  (void)path;
  rx_session *s = ud;
  rx_discard(s); /* a new transaction starts clean */
  s->smtputf8 = params->smtputf8;
  return LSMTP_OK;
}

static int add_rcpt(rx_session *s, const char *folder, size_t len) {
  if (s->nrcpts == s->rcpt_cap) {
    size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
    rx_rcpt *r = realloc(s->rcpts, cap * sizeof *r);
    if (!r) return -1;
    s->rcpts = r;
    s->rcpt_cap = cap;
  }
  rx_rcpt *r = &s->rcpts[s->nrcpts++];
  memcpy(r->folder, folder, len);
  r->folder[len] = '\0';
  r->md = NULL;
  r->failed = 0;
  return 0;
}

int rx_on_rcpt(lsmtp_server *srv, const lsmtp_path *path,
               const lsmtp_rcpt_params *params, void *ud) {
  (void)params;
  rx_session *s = ud;
  char folder[LSMTP_MAILDIR_NAME_MAX + 1];
  size_t folder_len;
  if (path->is_postmaster) {
    folder_len = strlen("postmaster");
    memcpy(folder, "postmaster", folder_len + 1);
  } else {
    if (path->domain_kind != LSMTP_DOMAIN_NAME ||
        !domain_listed(s->app, path->domain, path->domain_len)) {
      cli_log(CLI_VERBOSE, "session %llu: refused <%.*s>: relaying denied",
              (unsigned long long)s->id, (int)path->mailbox_len, path->mailbox);
      return lsmtp_server_set_reply(srv, 550, "5.7.1", "Relay access denied")
                 == LSMTP_OK ? LSMTP_OK : LSMTP_ERR_ABORTED;
    }
    /* "bob" and "\"bob\"" are the same mailbox; unquote before checking,
     * so quoting cannot smuggle a "/" or ".." past the check either. */
    char local[LSMTP_MAILDIR_NAME_MAX + 1];
    size_t n = lsmtp_local_unquote(path->local, path->local_len, local,
                                   sizeof local);
    if (n >= sizeof local ||
        lsmtp_maildir_safe_name(local, n, folder, sizeof folder, &folder_len) !=
            LSMTP_OK) {
      cli_log(CLI_VERBOSE, "session %llu: refused <%.*s>: unsafe local part",
              (unsigned long long)s->id, (int)path->mailbox_len, path->mailbox);
      return lsmtp_server_set_reply(srv, 550, "5.1.3",
                                    "Bad recipient address syntax") == LSMTP_OK
                 ? LSMTP_OK : LSMTP_ERR_ABORTED;
    }
  }
  if (add_rcpt(s, folder, folder_len) != 0)
    return lsmtp_server_set_reply(srv, 452, "4.3.1",
                                  "Insufficient system storage") == LSMTP_OK
               ? LSMTP_OK : LSMTP_ERR_ABORTED;
  return LSMTP_OK;
}
