/* BDAT framing helpers (RFC 3030): the "chunk-size [LAST]" argument parser
 * and the command formatter, alone and together with the command parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define S(lit) lit, sizeof(lit) - 1

typedef struct bdat_case {
  const char *arg;
  size_t len;
  int rc;
  uint64_t size;
  int last;
} bdat_case;

static const bdat_case cases[] = {
    {S("0"), LSMTP_OK, 0, 0},
    {S("1"), LSMTP_OK, 1, 0},
    {S("0 LAST"), LSMTP_OK, 0, 1},
    {S("100 LAST"), LSMTP_OK, 100, 1},
    {S("100 last"), LSMTP_OK, 100, 1},
    {S("100 LaSt"), LSMTP_OK, 100, 1},
    {S("65536"), LSMTP_OK, 65536, 0},
    {S("000000000000000000000000000042"), LSMTP_OK, 42, 0},
    {S("18446744073709551615"), LSMTP_OK, UINT64_MAX, 0},
    {S("18446744073709551615 LAST"), LSMTP_OK, UINT64_MAX, 1},
    {S("018446744073709551615"), LSMTP_OK, UINT64_MAX, 0},
    /* overflow */
    {S("18446744073709551616"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("18446744073709551620 LAST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("99999999999999999999"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("184467440737095516150"), LSMTP_ERR_SYNTAX, 0, 0},
    /* leading junk */
    {S(""), LSMTP_ERR_SYNTAX, 0, 0},
    {S(" 1"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("+1"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("-1"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("LAST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S(" LAST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("x1"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("\t1"), LSMTP_ERR_SYNTAX, 0, 0},
    /* trailing junk */
    {S("1 "), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1x"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("0x10"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1.5"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1  LAST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1\tLAST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 LAST "), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 LASTX"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 LAS"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 LAST LAST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 FIRST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1LAST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 2"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1\0"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 L\0ST"), LSMTP_ERR_SYNTAX, 0, 0},
    {S("1 \xCC\x81LAST"), LSMTP_ERR_SYNTAX, 0, 0},
};

static void test_parse_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const bdat_case *c = &cases[i];
    print_message("case %zu: %s\n", i, c->arg);
    uint64_t size = 12345;
    int last = 7;
    char *arg = malloc(c->len ? c->len : 1); /* exact size: over-reads fault */
    assert_non_null(arg);
    if (c->len) memcpy(arg, c->arg, c->len);
    int rc = lsmtp_bdat_parse(arg, c->len, &size, &last);
    free(arg);
    assert_int_equal(rc, c->rc);
    if (rc == LSMTP_OK) {
      assert_true(size == c->size);
      assert_int_equal(last, c->last);
    } else {
      /* outputs untouched on error */
      assert_true(size == 12345);
      assert_int_equal(last, 7);
    }
  }
}

static void test_parse_respects_len(void **state) {
  (void)state;
  uint64_t size = 0;
  int last = -1;
  /* not NUL-terminated: only len bytes count */
  const char buf[8] = {'1', '2', '3', ' ', 'L', 'A', 'S', 'T'};
  assert_int_equal(lsmtp_bdat_parse(buf, 3, &size, &last), LSMTP_OK);
  assert_true(size == 123);
  assert_int_equal(last, 0);
  assert_int_equal(lsmtp_bdat_parse(buf, 8, &size, &last), LSMTP_OK);
  assert_true(size == 123);
  assert_int_equal(last, 1);
  for (size_t n = 4; n < 8; n++)
    assert_int_equal(lsmtp_bdat_parse(buf, n, &size, &last), LSMTP_ERR_SYNTAX);
  /* outputs are optional; a NULL argument is a syntax error */
  assert_int_equal(lsmtp_bdat_parse(buf, 8, NULL, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_bdat_parse(NULL, 0, &size, &last), LSMTP_ERR_SYNTAX);
}

static void test_format(void **state) {
  (void)state;
  char buf[64];
  assert_int_equal(lsmtp_bdat_format(buf, sizeof buf, 0, 0), 8);
  assert_string_equal(buf, "BDAT 0\r\n");
  assert_int_equal(lsmtp_bdat_format(buf, sizeof buf, 0, 1), 13);
  assert_string_equal(buf, "BDAT 0 LAST\r\n");
  assert_int_equal(lsmtp_bdat_format(buf, sizeof buf, 1048576, 0), 14);
  assert_string_equal(buf, "BDAT 1048576\r\n");
  assert_int_equal(lsmtp_bdat_format(buf, sizeof buf, UINT64_MAX, 1), 32);
  assert_string_equal(buf, "BDAT 18446744073709551615 LAST\r\n");
  /* asking for the size */
  assert_int_equal(lsmtp_bdat_format(NULL, 0, 12345, 1), 17);
}

static void test_format_capacity(void **state) {
  (void)state;
  const char want[] = "BDAT 4096 LAST\r\n";
  const size_t need = sizeof want - 1;
  for (size_t cap = 0; cap <= need + 2; cap++) {
    char buf[32];
    memset(buf, '#', sizeof buf);
    assert_int_equal(lsmtp_bdat_format(buf, cap, 4096, 1), need);
    if (cap < need) {
      /* too small: an empty string, nothing else written */
      if (cap) assert_int_equal(buf[0], '\0');
      else assert_int_equal(buf[0], '#');
      for (size_t i = 1; i < sizeof buf; i++) assert_int_equal(buf[i], '#');
    } else {
      assert_memory_equal(buf, want, need);
      /* NUL only when there is room for it */
      assert_int_equal(buf[need], cap > need ? '\0' : '#');
      for (size_t i = need + 1; i < sizeof buf; i++) assert_int_equal(buf[i], '#');
    }
  }
}

/* What a client formats, a server parses back: through the command
 * parser, then the argument parser. */
static void test_format_parse_round_trip(void **state) {
  (void)state;
  uint64_t sizes[3 * 20 + 2];
  size_t n = 0;
  sizes[n++] = 0;
  sizes[n++] = UINT64_MAX;
  for (uint64_t p = 1, i = 0; i < 20; i++, p *= 10) {
    sizes[n++] = p;
    sizes[n++] = p - 1;
    sizes[n++] = p + 1;
  }
  for (size_t i = 0; i < n; i++) {
    for (int last = 0; last <= 1; last++) {
      char line[64];
      size_t len = lsmtp_bdat_format(line, sizeof line, sizes[i], last);
      assert_true(len < sizeof line);
      lsmtp_cmd cmd;
      assert_int_equal(lsmtp_cmd_parse(line, len, 0, &cmd), LSMTP_OK);
      assert_int_equal(cmd.verb, LSMTP_VERB_BDAT);
      uint64_t size = 0;
      int got_last = -1;
      assert_int_equal(lsmtp_bdat_parse(cmd.arg, cmd.arg_len, &size, &got_last), LSMTP_OK);
      assert_true(size == sizes[i]);
      assert_int_equal(got_last, last);
      /* and the text is the plain decimal */
      char want[64];
      snprintf(want, sizeof want, "BDAT %llu%s\r\n", (unsigned long long)sizes[i],
               last ? " LAST" : "");
      assert_string_equal(line, want);
    }
  }
}

/* The command parser hands BDAT its argument with trailing blanks gone;
 * anything else odd stays and is refused. */
static void test_via_command_line(void **state) {
  (void)state;
  static const struct {
    const char *line;
    int rc;
  } lines[] = {
      {"BDAT 100 LAST \r\n", LSMTP_OK},
      {"bdat 100\t\r\n", LSMTP_OK},
      {"BDAT  100\r\n", LSMTP_ERR_SYNTAX},
      {"BDAT\r\n", LSMTP_ERR_SYNTAX},
      {"BDAT 100 LAST\tX\r\n", LSMTP_ERR_SYNTAX},
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    lsmtp_cmd cmd;
    assert_int_equal(lsmtp_cmd_parse(lines[i].line, strlen(lines[i].line), 0, &cmd), LSMTP_OK);
    assert_int_equal(cmd.verb, LSMTP_VERB_BDAT);
    uint64_t size = 0;
    assert_int_equal(lsmtp_bdat_parse(cmd.arg, cmd.arg_len, &size, NULL), lines[i].rc);
    if (lines[i].rc == LSMTP_OK) assert_true(size == 100);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_cases),
      cmocka_unit_test(test_parse_respects_len),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_capacity),
      cmocka_unit_test(test_format_parse_round_trip),
      cmocka_unit_test(test_via_command_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
