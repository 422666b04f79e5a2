/* Trace header fields a receiver prepends to each stored message:
 * "Return-Path:" and "Received:" (RFC 5321 §4.4, RFC 5322 §3.6.7), with the
 * "with" protocol names of RFC 3848 and RFC 6531 and an RFC 5322 date.
 *
 * Everything the peer chose (HELO name, addresses) and everything DNS
 * returned is sanitised byte for byte (same length), so a hostile value can
 * neither end the header line nor forge a clause or a comment. Because the
 * replacement keeps lengths, the folding can be planned from lengths alone
 * and the output stays snprintf-like without any scratch buffer.
 *
 * Decisions the header leaves open:
 * - Folding is greedy per clause ("from X", "(TCP-info)", "(using ...)",
 *   "by Y (lsmtp)", "with P", "id I", "for <R>;", date): a clause that
 *   would take the line past 78 octets starts a new line "\r\n\t". The ";"
 *   sticks to the clause before the date.
 * - The TLS comment goes before "by" (CFWS is allowed there), where Postfix
 *   puts it and where readers look for it.
 * - The day of the month is not padded ("Mon, 2 Nov 2026").
 * - Square brackets are kept in names: a HELO argument may be an address
 *   literal "[192.0.2.1]", and without a space they cannot start a clause. */
#include <lsmtp/deliver.h>

#include "internal.h"

/* The output: writes what fits, counts everything (snprintf-like). */
typedef struct out {
  char *buf;
  size_t cap;
  size_t len;
  size_t line_start; /* len at the start of the current line */
} out;

static void put_byte(out *o, char c) {
  if (o->len < o->cap) o->buf[o->len] = c;
  o->len++;
}

static void put_raw(out *o, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) put_byte(o, s[i]);
}

static void put_str(out *o, const char *s) { put_raw(o, s, strlen(s)); }

/* NUL-terminate without counting it, as snprintf does. */
static size_t finish(out *o) {
  if (o->cap > 0) o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
  return o->len;
}

/* How a piece of text is written. */
typedef enum piece_kind {
  PIECE_RAW,   /* our own text */
  PIECE_TOKEN, /* a name or value: printable, no space, parens, ";", "\\" */
  PIECE_ADDR   /* an address inside <>: printable */
} piece_kind;

static char sanitize(unsigned char c, piece_kind kind) {
  if (kind == PIECE_RAW) return (char)c;
  if (c < 0x20 || c == 0x7f) return '?';
  if (kind == PIECE_TOKEN &&
      (c == ' ' || c == '(' || c == ')' || c == ';' || c == '\\'))
    return '?';
  return (char)c;
}

/* A clause is written in one go, so its length must be known first. */
#define MAX_PIECES 8
typedef struct clause {
  const char *text[MAX_PIECES];
  piece_kind kind[MAX_PIECES];
  size_t n;
} clause;

static void add(clause *c, const char *text, piece_kind kind) {
  c->text[c->n] = text;
  c->kind[c->n] = kind;
  c->n++;
}

static size_t clause_len(const clause *c) {
  size_t len = 0;
  for (size_t i = 0; i < c->n; i++) len += strlen(c->text[i]);
  return len;
}

static void put_clause(out *o, const clause *c) {
  for (size_t i = 0; i < c->n; i++)
    for (const char *p = c->text[i]; *p; p++) put_byte(o, sanitize((unsigned char)*p, c->kind[i]));
}

/* Longest line of a folded field, excluding the CRLF (RFC 5322 §2.1.1). */
#define FOLD_AT 78

/* Join a clause to the field: after a space, or on a new line when the
 * current one would grow past FOLD_AT. The first clause starts the line. */
static void put_folded(out *o, const clause *c, int first) {
  size_t len = clause_len(c);
  if (!first) {
    if (o->len - o->line_start + 1 + len > FOLD_AT) {
      put_raw(o, "\r\n", 2);
      o->line_start = o->len;
      put_byte(o, '\t');
    } else {
      put_byte(o, ' ');
    }
  }
  put_clause(o, c);
}

static const char *nonempty(const char *s) { return (s && s[0]) ? s : NULL; }

const char *lsmtp_trace_protocol(unsigned flags) {
  /* Index: bit 0 TLS ("S"), bit 1 AUTH ("A"), bit 2 LMTP, bit 3 UTF8. */
  static const char *const names[16] = {
      "ESMTP",    "ESMTPS",    "ESMTPA",    "ESMTPSA",    "LMTP",     "LMTPS",
      "LMTPA",    "LMTPSA",    "UTF8SMTP",  "UTF8SMTPS",  "UTF8SMTPA", "UTF8SMTPSA",
      "UTF8LMTP", "UTF8LMTPS", "UTF8LMTPA", "UTF8LMTPSA"};
  unsigned idx = ((flags & LSMTP_TRACE_TLS) ? 1u : 0u) | ((flags & LSMTP_TRACE_AUTH) ? 2u : 0u) |
                 ((flags & LSMTP_TRACE_LMTP) ? 4u : 0u) | ((flags & LSMTP_TRACE_UTF8) ? 8u : 0u);
  if (idx == 0 && !(flags & LSMTP_TRACE_ESMTP)) return "SMTP"; /* plain HELO */
  return names[idx];
}

/* ---- dates ---- */

/* Days since 1970-01-01 to a civil date (proleptic Gregorian), after
 * Howard Hinnant's public-domain algorithm "civil_from_days". */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Format into date (at least 32 bytes); returns the length or 0. */
static size_t format_date(char date[32], time_t t, int utc_offset) {
  static const char *const wdays[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (utc_offset < -1439 || utc_offset > 1439) return 0;
  /* Years 1900..9999 keep every value far from int64_t overflow. */
  const int64_t min_t = -2208988800LL, max_t = 253402300799LL;
  int64_t local = (int64_t)t;
  if (local < min_t - 86400 || local > max_t + 86400) return 0;
  local += (int64_t)utc_offset * 60;
  int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  int64_t secs = local - days * 86400;
  int64_t year;
  unsigned month, mday;
  civil_from_days(days, &year, &month, &mday);
  if (year < 1900 || year > 9999) return 0;
  unsigned wday = (unsigned)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
  unsigned off = (unsigned)(utc_offset < 0 ? -utc_offset : utc_offset);

  out o = {date, 32, 0, 0};
  char num[8];
  put_str(&o, wdays[wday]);
  put_raw(&o, ", ", 2);
  size_t n = 0;
  if (mday >= 10) num[n++] = (char)('0' + mday / 10);
  num[n++] = (char)('0' + mday % 10);
  put_raw(&o, num, n);
  put_byte(&o, ' ');
  put_str(&o, months[month - 1]);
  put_byte(&o, ' ');
  unsigned y = (unsigned)year;
  char yb[4] = {(char)('0' + y / 1000), (char)('0' + y / 100 % 10), (char)('0' + y / 10 % 10),
                (char)('0' + y % 10)};
  put_raw(&o, yb, 4);
  unsigned hms[3] = {(unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60)};
  for (int i = 0; i < 3; i++) {
    put_byte(&o, i == 0 ? ' ' : ':');
    put_byte(&o, (char)('0' + hms[i] / 10));
    put_byte(&o, (char)('0' + hms[i] % 10));
  }
  put_byte(&o, ' ');
  put_byte(&o, utc_offset < 0 ? '-' : '+');
  unsigned hh = off / 60, mm = off % 60;
  char zb[4] = {(char)('0' + hh / 10), (char)('0' + hh % 10), (char)('0' + mm / 10),
                (char)('0' + mm % 10)};
  put_raw(&o, zb, 4);
  return finish(&o);
}

size_t lsmtp_trace_date(char *buf, size_t cap, time_t t, int utc_offset) {
  char date[32];
  size_t n = format_date(date, t, utc_offset);
  if (n == 0) return 0;
  out o = {buf, buf ? cap : 0, 0, 0};
  put_raw(&o, date, n);
  return finish(&o);
}

/* ---- header fields ---- */

/* "IPv6:" unless the caller already wrote it; IPv4 needs no tag. */
static const char *ip_tag(const char *ip) {
  if (!strchr(ip, ':')) return "";
  if (strlen(ip) >= 5 && lsmtp__ieq(ip, "IPv6:", 5)) return "";
  return "IPv6:";
}

size_t lsmtp_trace_received(char *buf, size_t cap, const lsmtp_trace_info *info) {
  if (!info) return 0;
  char date[32];
  if (format_date(date, info->time, info->utc_offset) == 0) return 0;

  const char *helo = nonempty(info->helo), *rdns = nonempty(info->rdns);
  const char *ip = nonempty(info->ip), *by = nonempty(info->by), *id = nonempty(info->id);
  const char *rcpt = nonempty(info->rcpt), *tls = nonempty(info->tls_version);
  const char *cipher = nonempty(info->tls_cipher);

  clause cl[9];
  size_t n = 0;
  memset(cl, 0, sizeof cl);

  add(&cl[n], "Received: from ", PIECE_RAW);
  add(&cl[n++], helo ? helo : "unknown", PIECE_TOKEN);
  if (ip) {
    add(&cl[n], "(", PIECE_RAW);
    add(&cl[n], rdns ? rdns : "unknown", PIECE_TOKEN);
    add(&cl[n], " [", PIECE_RAW);
    add(&cl[n], ip_tag(ip), PIECE_RAW);
    add(&cl[n], ip, PIECE_TOKEN);
    add(&cl[n++], "])", PIECE_RAW);
  }
  if (tls) {
    add(&cl[n], "(using ", PIECE_RAW);
    add(&cl[n], tls, PIECE_TOKEN);
    if (cipher) {
      add(&cl[n], " with cipher ", PIECE_RAW);
      add(&cl[n], cipher, PIECE_TOKEN);
    }
    add(&cl[n++], ")", PIECE_RAW);
  }
  add(&cl[n], "by ", PIECE_RAW);
  add(&cl[n], by ? by : "localhost", PIECE_TOKEN);
  add(&cl[n++], " (lsmtp)", PIECE_RAW);
  add(&cl[n], "with ", PIECE_RAW);
  add(&cl[n++], lsmtp_trace_protocol(info->flags), PIECE_RAW);
  if (id) {
    add(&cl[n], "id ", PIECE_RAW);
    add(&cl[n++], id, PIECE_TOKEN);
  }
  if (rcpt) {
    add(&cl[n], "for <", PIECE_RAW);
    add(&cl[n], rcpt, PIECE_ADDR);
    add(&cl[n++], ">", PIECE_RAW);
  }
  add(&cl[n - 1], ";", PIECE_RAW);
  add(&cl[n++], date, PIECE_RAW);

  out o = {buf, buf ? cap : 0, 0, 0};
  for (size_t i = 0; i < n; i++) put_folded(&o, &cl[i], i == 0);
  put_raw(&o, "\r\n", 2);
  return finish(&o);
}

size_t lsmtp_trace_return_path(char *buf, size_t cap, const char *reverse_path) {
  out o = {buf, buf ? cap : 0, 0, 0};
  clause c = {{NULL}, {PIECE_RAW}, 0};
  add(&c, "Return-Path: <", PIECE_RAW);
  if (nonempty(reverse_path)) add(&c, reverse_path, PIECE_ADDR);
  add(&c, ">\r\n", PIECE_RAW);
  put_clause(&o, &c);
  return finish(&o);
}
