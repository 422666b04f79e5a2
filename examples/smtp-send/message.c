/* Getting the message ready, as sendmail and msmtp do: read it whole,
 * find the header section (RFC 5322 §2.2: fields up to the first empty
 * line, continuation lines start with a space or tab), take the
 * recipients from To/Cc/Bcc for -t, drop Bcc (it must never travel),
 * and add Date and Message-ID when missing. Line ends are left as they
 * came: the library sends every line end as CRLF. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "send.h"

/* ---- recipient list ---- */

int rcpt_list_add(rcpt_list *l, const char *addr) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->addr[i], addr) == 0) return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    char **v = realloc(l->addr, cap * sizeof *v);
    if (!v) return -1;
    l->addr = v;
    l->cap = cap;
  }
  l->addr[l->n] = strdup(addr);
  if (!l->addr[l->n]) return -1;
  l->n++;
  return 0;
}

void rcpt_list_free(rcpt_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->addr[i]);
  free(l->addr);
  memset(l, 0, sizeof *l);
}

/* ---- reading ---- */

int message_read(FILE *in, const char *name, message *m) {
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  if (!buf) return EX_OSERR;
  for (;;) {
    if (len == cap) {
      if (cap >= MESSAGE_MAX) {
        free(buf);
        cli_log(CLI_ERROR, "%s: message larger than %u MiB", name, MESSAGE_MAX >> 20);
        return EX_DATAERR;
      }
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        return EX_OSERR;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, in);
    len += n;
    if (n == 0) break;
  }
  if (ferror(in)) {
    int e = errno;
    free(buf);
    cli_log(CLI_ERROR, "%s: read error: %s", name, strerror(e));
    return EX_IOERR;
  }
  m->data = buf;
  m->len = len;
  return 0;
}

void message_free(message *m) {
  free(m->data);
  m->data = NULL;
  m->len = 0;
}

/* ---- header fields ---- */

/* Length of the line at p (through its LF, or to end). */
static size_t line_len(const char *p, const char *end) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  return nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
}

static int is_blank_line(const char *p, size_t n) {
  return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n') ||
         (n == 1 && p[0] == '\r');
}

/* Length of the field name when the line starts a header field
 * ("Name:" with printable ASCII name, RFC 5322 §2.2; obs-optional allows
 * spaces before the colon); 0 otherwise. */
static size_t field_name_len(const char *p, size_t n) {
  size_t i = 0;
  while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 && p[i] != ':') i++;
  size_t name = i;
  while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
  return name > 0 && i < n && p[i] == ':' ? name : 0;
}

static int name_is(const char *p, size_t n, const char *want) {
  size_t w = strlen(want);
  if (n != w) return 0;
  for (size_t i = 0; i < n; i++) {
    char a = p[i], b = want[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
    if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
    if (a != b) return 0;
  }
  return 1;
}

typedef struct builder {
  char *p;
  size_t len, cap;
} builder;

static int put(builder *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return 0;
}

static int add_rcpt_cb(void *ud, const char *addr) {
  return rcpt_list_add(ud, addr) == 0 ? 0 : -1;
}

static void make_date(char *out, size_t cap) {
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  /* %z gives the numeric zone RFC 5322 wants; the tool runs in the "C"
   * locale, so day and month names are English. */
  strftime(out, cap, "Date: %a, %d %b %Y %H:%M:%S %z\r\n", &tm);
}

static void make_message_id(char *out, size_t cap, const char *domain) {
  unsigned char rnd[8] = {0};
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
    /* Unique enough with the time and pid around it. */
    uint64_t t = (uint64_t)clock();
    memcpy(rnd, &t, sizeof rnd);
  }
  char hex[17];
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char stamp[20];
  strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
  snprintf(out, cap, "Message-ID: <%s.%ld.%s@%s>\r\n", stamp, (long)getpid(), hex, domain);
}

typedef struct header_state {
  builder out;
  rcpt_list *rcpts;
  int have_date, have_id;
} header_state;

/* One complete field [f, f + len) whose name is name_len bytes long. */
static int take_field(header_state *h, const char *f, size_t len, size_t name_len) {
  const char *value = (const char *)memchr(f, ':', len) + 1;
  const size_t vlen = len - (size_t)(value - f);
  const int is_bcc = name_is(f, name_len, "Bcc");
  if (name_is(f, name_len, "Date")) h->have_date = 1;
  if (name_is(f, name_len, "Message-ID")) h->have_id = 1;
  if (h->rcpts && (is_bcc || name_is(f, name_len, "To") || name_is(f, name_len, "Cc"))) {
    const char *err = NULL;
    if (addrlist_parse(value, vlen, add_rcpt_cb, h->rcpts, &err) != 0) {
      cli_log(CLI_ERROR, "bad address in the %.*s: field: %s", (int)name_len, f, err);
      return EX_DATAERR;
    }
  }
  if (is_bcc) return 0; /* never sent */
  if (put(&h->out, f, len)) return EX_OSERR;
  /* The input ended inside the field: end its line. */
  if (f[len - 1] != '\n' && put(&h->out, "\r\n", 2)) return EX_OSERR;
  return 0;
}

int message_prepare(message *m, const char *id_domain, rcpt_list *rcpts) {
  const char *p = m->data, *end = m->data + m->len;
  header_state h;
  memset(&h, 0, sizeof h);
  h.rcpts = rcpts;
  int rc = 0;
  const char *field = NULL; /* the field being collected */
  size_t field_len = 0, name_len = 0;
  const char *body = end;   /* where the body starts */
  int blank = 0;            /* the header section ended with an empty line */

  /* Walk whole fields: a start line plus its continuation lines. */
  while (p < end) {
    size_t n = line_len(p, end);
    if (field && (p[0] == ' ' || p[0] == '\t')) {
      field_len += n;
      p += n;
      continue;
    }
    if (field) {
      if ((rc = take_field(&h, field, field_len, name_len)) != 0) goto done;
      field = NULL;
    }
    if (is_blank_line(p, n)) {
      blank = 1;
      body = p;
      break;
    }
    name_len = field_name_len(p, n);
    if (name_len == 0) { /* not a field: the body starts without a blank line */
      body = p;
      break;
    }
    field = p;
    field_len = n;
    p += n;
  }
  if (field && (rc = take_field(&h, field, field_len, name_len)) != 0) goto done;
  char line[200];
  if (!h.have_date) {
    make_date(line, sizeof line);
    if (put(&h.out, line, strlen(line))) goto nomem;
  }
  if (!h.have_id) {
    make_message_id(line, sizeof line, id_domain);
    if (put(&h.out, line, strlen(line))) goto nomem;
  }
  /* Keep the body apart from the fields even when the input had no empty
   * line before it. */
  if (!blank && body < end && put(&h.out, "\r\n", 2)) goto nomem;
  if (body < end && put(&h.out, body, (size_t)(end - body))) goto nomem;
  free(m->data);
  m->data = h.out.p;
  m->len = h.out.len;
  return 0;
nomem:
  rc = EX_OSERR;
done:
  if (rc == EX_OSERR) cli_log(CLI_ERROR, "out of memory");
  free(h.out.p);
  return rc;
}
