/* smtp-relay --dns-file: static DNS records from a text file, so the MX
 * path can run without any network (tests, closed setups). The file is
 * read and checked once at start (errors name the line); each worker
 * thread then builds its own lsmtp_dns_static from the parsed records,
 * because a resolver belongs to one thread (include/lsmtp/dns.h).
 *
 * Format (one record a line; blank lines and "#" comments ignored; fields
 * separated by spaces or tabs; names without regard to case or a trailing
 * dot):
 *   NAME MX PREFERENCE HOST      ("." as HOST: RFC 7505 null MX)
 *   NAME A IPV4
 *   NAME AAAA IPV6
 *   NAME SERVFAIL|TIMEOUT|NXDOMAIN|NODATA [MX|A|AAAA]
 * The last form makes queries for NAME fail (of one type, or of all three).
 * A name the file does not mention answers NXDOMAIN. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "relay.h"

/* Bounds: a longer line or more records is refused, not truncated. */
#define DNSFILE_MAX_LINE 1024
#define DNSFILE_MAX_RECORDS 4096
#define DNSFILE_MAX_FIELDS 5

struct rl_dns_record {
  unsigned line;
  char name[256];
  enum { REC_MX, REC_ADDR, REC_ERROR } kind;
  uint16_t preference;       /* REC_MX */
  char value[256];           /* REC_MX: host; REC_ADDR: address text */
  lsmtp_dns_error error;     /* REC_ERROR */
  unsigned types;            /* REC_ERROR: bit 0 MX, 1 A, 2 AAAA */
};

static const lsmtp_dns_type error_types[3] = {LSMTP_DNS_MX, LSMTP_DNS_A, LSMTP_DNS_AAAA};

/* Add one record to s; LSMTP_OK or the first failing status. */
static int add_record(lsmtp_dns_static *s, const rl_dns_record *r) {
  switch (r->kind) {
    case REC_MX: return lsmtp_dns_static_add_mx(s, r->name, r->preference, r->value);
    case REC_ADDR: return lsmtp_dns_static_add_addr(s, r->name, r->value);
    case REC_ERROR:
      for (size_t t = 0; t < 3; t++) {
        if (!(r->types & (1u << t))) continue;
        int rc = lsmtp_dns_static_set_error(s, r->name, error_types[t], r->error);
        if (rc != LSMTP_OK) return rc;
      }
      return LSMTP_OK;
  }
  return LSMTP_ERR_INVALID;
}

static int parse_error_kind(const char *s, lsmtp_dns_error *out) {
  /* SERVFAIL is what an operator sees in dig; it is a temporary failure. */
  if (!strcasecmp(s, "SERVFAIL") || !strcasecmp(s, "TEMPFAIL")) *out = LSMTP_DNS_TEMPFAIL;
  else if (!strcasecmp(s, "TIMEOUT")) *out = LSMTP_DNS_TIMEOUT;
  else if (!strcasecmp(s, "NXDOMAIN")) *out = LSMTP_DNS_NXDOMAIN;
  else if (!strcasecmp(s, "NODATA")) *out = LSMTP_DNS_NODATA;
  else return -1;
  return 0;
}

/* One non-empty line into r; NULL on success, else why it is wrong. */
static const char *parse_line(char *line, rl_dns_record *r) {
  char *f[DNSFILE_MAX_FIELDS];
  size_t n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
    if (n == DNSFILE_MAX_FIELDS) return "too many fields";
    f[n++] = tok;
  }
  if (n < 2) return "want NAME TYPE ...";
  if (strlen(f[0]) >= sizeof r->name) return "name too long";
  strcpy(r->name, f[0]);
  if (!strcasecmp(f[1], "MX")) {
    uint64_t pref;
    if (n != 4) return "want NAME MX PREFERENCE HOST";
    if (cli_parse_u64(f[2], 65535, &pref) != 0) return "MX preference must be 0..65535";
    if (strlen(f[3]) >= sizeof r->value) return "MX host too long";
    r->kind = REC_MX;
    r->preference = (uint16_t)pref;
    strcpy(r->value, f[3]);
    return NULL;
  }
  if (!strcasecmp(f[1], "A") || !strcasecmp(f[1], "AAAA")) {
    if (n != 3) return "want NAME A|AAAA ADDRESS";
    int v6 = strchr(f[2], ':') != NULL;
    if (v6 != (strcasecmp(f[1], "AAAA") == 0)) return "address does not match the type";
    if (strlen(f[2]) >= sizeof r->value) return "address too long";
    r->kind = REC_ADDR;
    strcpy(r->value, f[2]);
    return NULL;
  }
  if (parse_error_kind(f[1], &r->error) == 0) {
    if (n > 3) return "want NAME SERVFAIL|TIMEOUT|NXDOMAIN|NODATA [MX|A|AAAA]";
    r->kind = REC_ERROR;
    r->types = 7u;
    if (n == 3) {
      if (!strcasecmp(f[2], "MX")) r->types = 1u;
      else if (!strcasecmp(f[2], "A")) r->types = 2u;
      else if (!strcasecmp(f[2], "AAAA")) r->types = 4u;
      else return "failure type must be MX, A or AAAA";
    }
    return NULL;
  }
  return "unknown type (MX, A, AAAA, SERVFAIL, TIMEOUT, NXDOMAIN, NODATA)";
}

int rl_dnsfile_load(rl_app *app, const char *path) {
  FILE *fp = fopen(path, "r");
  if (!fp) {
    cli_log(CLI_ERROR, "--dns-file %s: %s", path, strerror(errno));
    return -1;
  }
  rl_dns_record *recs = NULL;
  size_t n = 0, cap = 0;
  char buf[DNSFILE_MAX_LINE + 2];
  unsigned lineno = 0;
  int ok = 1;
  /* Every record goes into a scratch resolver too, so a record the
   * library refuses (a bad name, address) is reported with its line. */
  lsmtp_dns_static *check = NULL;
  if (lsmtp_dns_static_new(&check, NULL, 0) != LSMTP_OK) {
    cli_log(CLI_ERROR, "--dns-file %s: out of memory", path);
    fclose(fp);
    return -1;
  }
  while (ok && fgets(buf, sizeof buf, fp)) {
    lineno++;
    size_t len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n') buf[--len] = '\0';
    else if (!feof(fp)) {
      cli_log(CLI_ERROR, "--dns-file %s:%u: line longer than %d bytes", path, lineno,
              DNSFILE_MAX_LINE);
      ok = 0;
      break;
    }
    if (len > 0 && buf[len - 1] == '\r') buf[--len] = '\0';
    char *hash = strchr(buf, '#');
    if (hash) *hash = '\0';
    if (buf[strspn(buf, " \t")] == '\0') continue;
    if (n == DNSFILE_MAX_RECORDS) {
      cli_log(CLI_ERROR, "--dns-file %s:%u: more than %d records", path, lineno,
              DNSFILE_MAX_RECORDS);
      ok = 0;
      break;
    }
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      rl_dns_record *nr = realloc(recs, ncap * sizeof *nr);
      if (!nr) {
        cli_log(CLI_ERROR, "--dns-file %s: out of memory", path);
        ok = 0;
        break;
      }
      recs = nr;
      cap = ncap;
    }
    rl_dns_record *r = &recs[n];
    memset(r, 0, sizeof *r);
    r->line = lineno;
    const char *why = parse_line(buf, r);
    int rc = why ? LSMTP_OK : add_record(check, r);
    if (why || rc != LSMTP_OK) {
      cli_log(CLI_ERROR, "--dns-file %s:%u: %s", path, lineno,
              why ? why : rc == LSMTP_ERR_INVALID ? "not a host name or address"
                                                  : lsmtp_strerror(rc));
      ok = 0;
      break;
    }
    n++;
  }
  if (ok && ferror(fp)) {
    cli_log(CLI_ERROR, "--dns-file %s: %s", path, strerror(errno));
    ok = 0;
  }
  fclose(fp);
  lsmtp_dns_static_del(check);
  if (!ok) {
    free(recs);
    return -1;
  }
  app->dns_records = recs;
  app->ndns_records = n;
  app->dns_file = path;
  return 0;
}

void rl_dnsfile_free(rl_app *app) {
  free(app->dns_records);
  app->dns_records = NULL;
  app->ndns_records = 0;
}

int rl_dnsfile_resolver(const rl_app *app, lsmtp_dns_static **out) {
  lsmtp_dns_static *s = NULL;
  int rc = lsmtp_dns_static_new(&s, NULL, 0);
  for (size_t i = 0; rc == LSMTP_OK && i < app->ndns_records; i++)
    rc = add_record(s, &app->dns_records[i]);
  if (rc != LSMTP_OK) {
    lsmtp_dns_static_del(s);
    return rc;
  }
  *out = s;
  return LSMTP_OK;
}
