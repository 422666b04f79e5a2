/* Trace fields: exact bytes of Received:/Return-Path:, the folding, the
 * protocol names of RFC 3848 / RFC 6531, RFC 5322 dates, sanitising of
 * peer-supplied values and the snprintf contract at every buffer size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <lsmtp/deliver.h>

#include "internal.h"

/* 2026-11-28 22:45:18 UTC, a Saturday. */
#define T_SAT 1795905918

/* Check that a formatter honours snprintf semantics for every cap: same
 * return value, the prefix written, NUL-terminated, nothing past cap. */
typedef size_t (*fmt_fn)(char *buf, size_t cap, const void *arg);

static void check_every_cap(fmt_fn fn, const void *arg, const char *expected) {
  size_t len = strlen(expected);
  char buf[1024];
  assert_true(len + 2 < sizeof buf);
  assert_int_equal(fn(NULL, 0, arg), len);
  for (size_t cap = 0; cap <= len + 1; cap++) {
    memset(buf, 'Z', sizeof buf);
    assert_int_equal(fn(buf, cap, arg), len);
    if (cap > 0) {
      size_t n = cap - 1 < len ? cap - 1 : len;
      assert_memory_equal(buf, expected, n);
      assert_int_equal(buf[n], '\0');
    }
    assert_int_equal(buf[cap], 'Z');
  }
}

static size_t fmt_received(char *buf, size_t cap, const void *arg) {
  return lsmtp_trace_received(buf, cap, arg);
}

static size_t fmt_return_path(char *buf, size_t cap, const void *arg) {
  return lsmtp_trace_return_path(buf, cap, arg);
}

/* Every physical line at most 78 octets, CR and LF only as the fold
 * "\r\n\t" and the final CRLF. */
static void check_lines(const char *s) {
  size_t len = strlen(s);
  assert_true(len >= 2);
  assert_memory_equal(s + len - 2, "\r\n", 2);
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\r') {
      assert_int_equal(s[i + 1], '\n');
      assert_true(i - start <= 78);
      if (i + 2 < len) assert_int_equal(s[i + 2], '\t');
      start = i + 2;
      i++;
    } else {
      assert_int_not_equal(s[i], '\n');
      assert_false((unsigned char)s[i] < 0x20 && s[i] != '\t');
    }
  }
}

static void test_protocol_names(void **state) {
  (void)state;
  const unsigned E = LSMTP_TRACE_ESMTP, S = LSMTP_TRACE_TLS, A = LSMTP_TRACE_AUTH,
                 L = LSMTP_TRACE_LMTP, U = LSMTP_TRACE_UTF8;
  assert_string_equal(lsmtp_trace_protocol(0), "SMTP");
  assert_string_equal(lsmtp_trace_protocol(E), "ESMTP");
  assert_string_equal(lsmtp_trace_protocol(E | S), "ESMTPS");
  assert_string_equal(lsmtp_trace_protocol(E | A), "ESMTPA");
  assert_string_equal(lsmtp_trace_protocol(E | S | A), "ESMTPSA");
  assert_string_equal(lsmtp_trace_protocol(S), "ESMTPS"); /* TLS needs EHLO */
  assert_string_equal(lsmtp_trace_protocol(L), "LMTP");
  assert_string_equal(lsmtp_trace_protocol(L | E), "LMTP");
  assert_string_equal(lsmtp_trace_protocol(L | S), "LMTPS");
  assert_string_equal(lsmtp_trace_protocol(L | A), "LMTPA");
  assert_string_equal(lsmtp_trace_protocol(L | S | A), "LMTPSA");
  assert_string_equal(lsmtp_trace_protocol(E | U), "UTF8SMTP");
  assert_string_equal(lsmtp_trace_protocol(U), "UTF8SMTP");
  assert_string_equal(lsmtp_trace_protocol(E | U | S), "UTF8SMTPS");
  assert_string_equal(lsmtp_trace_protocol(E | U | A), "UTF8SMTPA");
  assert_string_equal(lsmtp_trace_protocol(E | U | S | A), "UTF8SMTPSA");
  assert_string_equal(lsmtp_trace_protocol(L | U), "UTF8LMTP");
  assert_string_equal(lsmtp_trace_protocol(L | U | S), "UTF8LMTPS");
  assert_string_equal(lsmtp_trace_protocol(L | U | A), "UTF8LMTPA");
  assert_string_equal(lsmtp_trace_protocol(L | U | S | A), "UTF8LMTPSA");
  /* Unknown bits are ignored. */
  assert_string_equal(lsmtp_trace_protocol(E | 0x100u), "ESMTP");
}

static void check_date(time_t t, int off, const char *expected) {
  char buf[64];
  assert_int_equal(lsmtp_trace_date(buf, sizeof buf, t, off), strlen(expected));
  assert_string_equal(buf, expected);
}

static void test_dates(void **state) {
  (void)state;
  check_date(T_SAT, 0, "Sat, 28 Nov 2026 22:45:18 +0000");
  check_date(0, 0, "Thu, 1 Jan 1970 00:00:00 +0000");
  check_date(-1, 0, "Wed, 31 Dec 1969 23:59:59 +0000");
  check_date(951782400, 60, "Tue, 29 Feb 2000 01:00:00 +0100");  /* leap day */
  check_date(1709251199, 0, "Thu, 29 Feb 2024 23:59:59 +0000");
  check_date(T_SAT, -330, "Sat, 28 Nov 2026 17:15:18 -0530");
  check_date(T_SAT, 120, "Sun, 29 Nov 2026 00:45:18 +0200");     /* next day */
  check_date(1793588645, 0, "Mon, 2 Nov 2026 03:04:05 +0000");     /* day unpadded */
  check_date(-2208988800LL, 0, "Mon, 1 Jan 1900 00:00:00 +0000");
  check_date((time_t)253402300799LL, 0, "Fri, 31 Dec 9999 23:59:59 +0000");
  check_date(T_SAT, 1439, "Sun, 29 Nov 2026 22:44:18 +2359");
  check_date(T_SAT, -1439, "Fri, 27 Nov 2026 22:46:18 -2359");

  char buf[64];
  assert_int_equal(lsmtp_trace_date(buf, sizeof buf, T_SAT, 1440), 0);
  assert_int_equal(lsmtp_trace_date(buf, sizeof buf, T_SAT, -1440), 0);
  assert_int_equal(lsmtp_trace_date(buf, sizeof buf, -2208988801LL, 0), 0);
  assert_int_equal(lsmtp_trace_date(buf, sizeof buf, (time_t)253402300800LL, 0), 0);
  /* snprintf-like when short. */
  memset(buf, 'Z', sizeof buf);
  assert_int_equal(lsmtp_trace_date(buf, 5, T_SAT, 0), 31);
  assert_string_equal(buf, "Sat,");
  assert_int_equal(buf[5], 'Z');
}

static void test_received_typical(void **state) {
  (void)state;
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.helo = "client.example";
  info.rdns = "client.example";
  info.ip = "127.0.0.1";
  info.by = "mx.example.org";
  info.id = "abc123";
  info.rcpt = "bob@example.org";
  info.flags = LSMTP_TRACE_ESMTP;
  info.time = T_SAT;
  const char *expected = "Received: from client.example (client.example [127.0.0.1])\r\n"
                         "\tby mx.example.org (lsmtp) with ESMTP id abc123 for <bob@example.org>;\r\n"
                         "\tSat, 28 Nov 2026 22:45:18 +0000\r\n";
  check_every_cap(fmt_received, &info, expected);
  check_lines(expected);
}

static void test_received_minimal_one_line(void **state) {
  (void)state;
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.helo = "a";
  info.by = "b";
  info.time = T_SAT;
  check_every_cap(fmt_received, &info,
                  "Received: from a by b (lsmtp) with SMTP; Sat, 28 Nov 2026 22:45:18 +0000\r\n");
  /* Empty strings count as absent; unknown helo and by get placeholders. */
  info.helo = "";
  info.by = NULL;
  info.rdns = "ignored.example"; /* no ip: no TCP-info comment at all */
  info.id = "";
  info.rcpt = "";
  check_every_cap(fmt_received, &info,
                  "Received: from unknown by localhost (lsmtp) with SMTP;\r\n"
                  "\tSat, 28 Nov 2026 22:45:18 +0000\r\n");
}

static void test_received_tls_ipv6(void **state) {
  (void)state;
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.helo = "[127.0.0.1]";
  info.ip = "::1";
  info.by = "mx.example.org";
  info.tls_version = "TLSv1.3";
  info.tls_cipher = "TLS_AES_256_GCM_SHA384";
  info.rcpt = "bob@example.org";
  info.flags = LSMTP_TRACE_ESMTP | LSMTP_TRACE_TLS | LSMTP_TRACE_AUTH;
  info.time = T_SAT;
  info.utc_offset = 60;
  const char *expected =
      "Received: from [127.0.0.1] (unknown [IPv6:::1])\r\n"
      "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384) by mx.example.org (lsmtp)\r\n"
      "\twith ESMTPSA for <bob@example.org>; Sat, 28 Nov 2026 23:45:18 +0100\r\n";
  check_every_cap(fmt_received, &info, expected);
  check_lines(expected);

  /* An ip already tagged is not tagged twice; no cipher: version only. */
  info.ip = "IPv6:2001:db8::1";
  info.tls_cipher = NULL;
  info.rcpt = NULL;
  info.flags = LSMTP_TRACE_LMTP | LSMTP_TRACE_UTF8;
  info.utc_offset = 0;
  check_every_cap(fmt_received, &info,
                  "Received: from [127.0.0.1] (unknown [IPv6:2001:db8::1]) (using TLSv1.3)\r\n"
                  "\tby mx.example.org (lsmtp) with UTF8LMTP; Sat, 28 Nov 2026 22:45:18 +0000\r\n");
}

static void test_received_hostile_values(void **state) {
  (void)state;
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.helo = "evil\r\nX-Injected: 1";
  info.rdns = "a(b)c";
  info.ip = "127.0.0.1";
  info.by = "mx";
  info.id = "i d;";
  info.rcpt = "x\r\n@y";
  info.flags = LSMTP_TRACE_ESMTP;
  info.time = T_SAT;
  const char *expected = "Received: from evil??X-Injected:?1 (a?b?c [127.0.0.1]) by mx (lsmtp)\r\n"
                         "\twith ESMTP id i?d? for <x??@y>; Sat, 28 Nov 2026 22:45:18 +0000\r\n";
  check_every_cap(fmt_received, &info, expected);
  check_lines(expected);

  /* Every control byte and DEL, in every peer-supplied field. */
  char ctl[40];
  size_t n = 0;
  for (int c = 1; c < 0x20; c++) ctl[n++] = (char)c;
  ctl[n++] = 0x7f;
  ctl[n] = '\0';
  info.helo = ctl;
  info.rdns = ctl;
  info.rcpt = ctl;
  info.id = ctl;
  char buf[512];
  size_t len = lsmtp_trace_received(buf, sizeof buf, &info);
  assert_true(len > 0 && len < sizeof buf);
  check_lines(buf);
  /* 8-bit bytes (SMTPUTF8 addresses) pass through unchanged. */
  info.helo = "mx.example";
  info.rdns = NULL;
  info.id = NULL;
  info.rcpt = "j\xc3\xb6rg@example.org";
  info.flags = LSMTP_TRACE_ESMTP | LSMTP_TRACE_UTF8;
  check_every_cap(fmt_received, &info,
                  "Received: from mx.example (unknown [127.0.0.1]) by mx (lsmtp) with UTF8SMTP\r\n"
                  "\tfor <j\xc3\xb6rg@example.org>; Sat, 28 Nov 2026 22:45:18 +0000\r\n");
}

static void test_received_long_clause_stays_whole(void **state) {
  (void)state;
  char helo[101];
  memset(helo, 'h', 100);
  helo[100] = '\0';
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.helo = helo;
  info.by = "mx";
  info.time = T_SAT;
  char expected[256];
  snprintf(expected, sizeof expected,
           "Received: from %s\r\n\tby mx (lsmtp) with SMTP; Sat, 28 Nov 2026 22:45:18 +0000\r\n",
           helo);
  check_every_cap(fmt_received, &info, expected);
}

static void test_received_invalid(void **state) {
  (void)state;
  char buf[256] = "untouched";
  assert_int_equal(lsmtp_trace_received(buf, sizeof buf, NULL), 0);
  lsmtp_trace_info info;
  memset(&info, 0, sizeof info);
  info.time = T_SAT;
  info.utc_offset = 1440;
  assert_int_equal(lsmtp_trace_received(buf, sizeof buf, &info), 0);
  info.utc_offset = 0;
  info.time = (time_t)253402300800LL;
  assert_int_equal(lsmtp_trace_received(buf, sizeof buf, &info), 0);
  assert_string_equal(buf, "untouched");
}

static void test_return_path(void **state) {
  (void)state;
  check_every_cap(fmt_return_path, "alice@example.org", "Return-Path: <alice@example.org>\r\n");
  check_every_cap(fmt_return_path, NULL, "Return-Path: <>\r\n");
  check_every_cap(fmt_return_path, "", "Return-Path: <>\r\n");
  check_every_cap(fmt_return_path, "a\r\nBcc: x@y\x7f@b", "Return-Path: <a??Bcc: x@y?@b>\r\n");
  check_every_cap(fmt_return_path, "\"a b\"@example.org",
                  "Return-Path: <\"a b\"@example.org>\r\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protocol_names),
      cmocka_unit_test(test_dates),
      cmocka_unit_test(test_received_typical),
      cmocka_unit_test(test_received_minimal_one_line),
      cmocka_unit_test(test_received_tls_ipv6),
      cmocka_unit_test(test_received_hostile_values),
      cmocka_unit_test(test_received_long_clause_stays_whole),
      cmocka_unit_test(test_received_invalid),
      cmocka_unit_test(test_return_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
