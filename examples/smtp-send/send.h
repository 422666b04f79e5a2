/* Internal interfaces of smtp-send: the RFC 5322 address-list parser used
 * by -t and --to (addrlist.c) and the message preparation (message.c). */
#ifndef SMTP_SEND_H
#define SMTP_SEND_H

#include <stddef.h>
#include <stdio.h>

/* ---- addrlist.c ---- */

/* Called for each addr-spec found, NUL-terminated ("local@domain", a
 * quoted local part keeps its quotes). Return 0 to go on, -1 to stop. */
typedef int (*addrlist_cb)(void *user_data, const char *addr);

/* Parse an RFC 5322 address-list (§3.4; also obs-addr-list forms: empty
 * members, spaces around dots, routes inside <>), as found in To/Cc/Bcc
 * field bodies, possibly folded: display names, comments (nested),
 * quoted strings, domain literals and groups ("list: a@x, b@y;") are
 * understood. Returns 0, or -1 with *err set to a static message (a
 * syntax error, or the callback said stop). */
int addrlist_parse(const char *text, size_t len, addrlist_cb cb,
                   void *user_data, const char **err);

/* ---- message.c ---- */

/* A list of recipients (owned strings, duplicates dropped). */
typedef struct rcpt_list {
  char **addr;
  size_t n, cap;
} rcpt_list;

/* Add addr unless it is already there. Returns 0 or -1 (no memory). */
int rcpt_list_add(rcpt_list *l, const char *addr);
void rcpt_list_free(rcpt_list *l);

/* The largest message smtp-send reads. */
#define MESSAGE_MAX (512u * 1024u * 1024u)

typedef struct message {
  char *data; /* the message as it will be sent */
  size_t len;
} message;

/* Read all of in into memory (at most MESSAGE_MAX bytes). Returns 0, or
 * a sysexits code after logging (EX_IOERR, EX_DATAERR when too large,
 * EX_OSERR). */
int message_read(FILE *in, const char *name, message *m);

/* Prepare the message for sending: drop Bcc fields, add Date and
 * Message-ID when missing (id_domain names the Message-ID's right side),
 * and, when rcpts is not NULL (-t), add every address of To, Cc and Bcc to
 * it. Returns 0 or a sysexits code after logging (EX_DATAERR for a bad
 * address field, EX_OSERR). */
int message_prepare(message *m, const char *id_domain, rcpt_list *rcpts);

void message_free(message *m);

#endif
