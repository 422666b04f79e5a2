/* -v: the protocol dialogue as "C:" and "S:" lines on stderr. Bytes come
 * from the net server's trace hook as they pass the socket, so lines are
 * reassembled here. Message content is not printed, only its size: after
 * a 354 reply the client's lines up to "." are counted, and the chunk after
 * "BDAT n" is skipped by length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "receive.h"

#define LINE_MAX_SHOWN 512

typedef struct side {
  char line[LINE_MAX_SHOWN];
  size_t len;
  int truncated;
} side;

struct rx_dialogue {
  side client, server;
  int in_data;           /* between 354 and "." */
  uint64_t data_octets;  /* of the message being counted */
  uint64_t bdat_left;    /* chunk bytes still to skip */
  uint64_t bdat_total;
};

rx_dialogue *rx_dialogue_new(void) { return calloc(1, sizeof(rx_dialogue)); }

void rx_dialogue_del(rx_dialogue *d) { free(d); }

static void print_line(uint64_t id, const char *who, const side *l) {
  char shown[LINE_MAX_SHOWN * 4 + 1];
  size_t n = 0;
  for (size_t i = 0; i < l->len; i++) {
    unsigned char c = (unsigned char)l->line[i];
    if (c >= 0x20 && c < 0x7f) shown[n++] = (char)c;
    else n += (size_t)snprintf(shown + n, sizeof shown - n, "\\x%02x", c);
  }
  shown[n] = '\0';
  cli_log(CLI_VERBOSE, "session %llu %s %s%s", (unsigned long long)id, who,
          shown, l->truncated ? "..." : "");
}

/* A complete line (CRLF stripped) from one side. */
static void client_line(rx_dialogue *d, uint64_t id) {
  side *c = &d->client;
  if (d->in_data) {
    if (c->len == 1 && c->line[0] == '.' && !c->truncated) {
      d->in_data = 0;
      cli_log(CLI_VERBOSE, "session %llu C: (message, %llu octets)",
              (unsigned long long)id, (unsigned long long)d->data_octets);
      print_line(id, "C:", c);
    }
    return;
  }
  print_line(id, "C:", c);
  if (c->len > 5 && strncasecmp(c->line, "BDAT ", 5) == 0) {
    char num[24];
    size_t k = 0;
    for (size_t i = 5; i < c->len && k + 1 < sizeof num; i++) {
      if (c->line[i] < '0' || c->line[i] > '9') break;
      num[k++] = c->line[i];
    }
    num[k] = '\0';
    uint64_t v;
    if (k && cli_parse_u64(num, UINT64_MAX, &v) == 0) d->bdat_left = d->bdat_total = v;
  }
}

static void feed_side(rx_dialogue *d, uint64_t id, int from_client,
                      const char *p, size_t n) {
  side *l = from_client ? &d->client : &d->server;
  for (size_t i = 0; i < n; i++) {
    if (from_client && d->bdat_left) {
      size_t take = n - i;
      if (take > d->bdat_left) take = (size_t)d->bdat_left;
      d->bdat_left -= take;
      i += take - 1;
      if (!d->bdat_left)
        cli_log(CLI_VERBOSE, "session %llu C: (chunk, %llu octets)",
                (unsigned long long)id, (unsigned long long)d->bdat_total);
      continue;
    }
    char ch = p[i];
    if (from_client && d->in_data) d->data_octets++;
    if (ch == '\n') {
      if (l->len && l->line[l->len - 1] == '\r') l->len--;
      if (from_client) {
        client_line(d, id);
      } else {
        print_line(id, "S:", l);
        if (l->len >= 4 && memcmp(l->line, "354 ", 4) == 0) {
          d->in_data = 1;
          d->data_octets = 0;
        }
      }
      l->len = 0;
      l->truncated = 0;
      continue;
    }
    if (l->len < sizeof l->line) l->line[l->len++] = ch;
    else l->truncated = 1;
  }
}

void rx_dialogue_trace(rx_dialogue *d, uint64_t id, int from_client,
                       const char *data, size_t len) {
  if (d) feed_side(d, id, from_client, data, len);
}
