/* The status table, version and allocator basics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "internal.h"

static void test_strerror_and_names(void **state) {
  (void)state;
  assert_string_equal(lsmtp_strerror(LSMTP_OK), "success");
  assert_string_equal(lsmtp_status_name(LSMTP_ERR_SYNTAX), "LSMTP_ERR_SYNTAX");
  assert_string_equal(lsmtp_strerror(12345), "unknown status");
  assert_string_equal(lsmtp_status_name(-9999), "LSMTP_UNKNOWN");
  assert_true(lsmtp_status_is_fatal(LSMTP_ERR_NOMEM));
  assert_false(lsmtp_status_is_fatal(LSMTP_ERR_SYNTAX));
  assert_false(lsmtp_status_is_fatal(LSMTP_INCOMPLETE));
}

static void test_every_error_is_negative_and_named(void **state) {
  (void)state;
#define CHECK_(name, value, fatal, msg)                                      \
  assert_true(((value) < 0) == (strncmp(#name, "ERR_", 4) == 0));            \
  assert_string_equal(lsmtp_status_name(value), "LSMTP_" #name);
  LSMTP_STATUS_MAP(CHECK_)
#undef CHECK_
}

static void test_version(void **state) {
  (void)state;
  assert_string_equal(lsmtp_version(), LSMTP_VERSION_STRING);
  assert_int_equal(lsmtp_version_num(), LSMTP_VERSION_NUM);
}

static void test_buf(void **state) {
  (void)state;
  lsmtp__buf b;
  lsmtp__buf_init(&b, NULL);
  for (int i = 0; i < 1000; i++) assert_int_equal(lsmtp__buf_append(&b, "abc", 3), LSMTP_OK);
  assert_int_equal(b.len, 3000);
  lsmtp__buf_consume(&b, 2998);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.data, "bc", 2);
  lsmtp__buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strerror_and_names),
      cmocka_unit_test(test_every_error_is_negative_and_named),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_buf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
