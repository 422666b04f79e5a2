/* Password files (lsmtp/authfile.h): PBKDF2-HMAC-SHA-256 against RFC 7914
 * §11 and vectors computed independently with Python's hashlib, lines made
 * by lsmtp_authfile_hash_line checked back, every malformed-line message
 * with its line number, file-level limits, truncated files, allocation
 * failure at every allocation, and the unknown-user dummy work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "internal.h"
#include "support_failalloc.h"
#include <lsmtp/authfile.h>

static char tmpdir[] = "/tmp/lsmtp-authfile-XXXXXX";
static char path[sizeof tmpdir + 32];

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(tmpdir)) return -1;
  snprintf(path, sizeof path, "%s/users", tmpdir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(path);
  rmdir(tmpdir);
  return 0;
}

static void write_file(const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (len) assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

/* Load text as the password file; returns the status, *out the object. */
static int load_text(const char *text, lsmtp_authfile **out) {
  write_file(text, strlen(text));
  return lsmtp_authfile_load(out, NULL, path);
}

static void need_crypto(void) {
  if (!lsmtp__crypto_available()) skip();
}

/* A line of the known vector: P="passwordPASSWORDpassword",
 * S="saltSALTsaltSALTsaltSALTsaltSALTsalt", c=4096. The hash was computed
 * with /usr/bin/python3 hashlib.pbkdf2_hmac and matches the published
 * PBKDF2-HMAC-SHA256 vector 348c89db...d53e1. */
#define VEC_SALT "c2FsdFNBTFRzYWx0U0FMVHNhbHRTQUxUc2FsdFNBTFRzYWx0"
#define VEC_HASH "NIyJ28vTKy8y2BS4EW6EzysXNH68GAAYHE4qH7jdU+E="
#define VEC_PASS "passwordPASSWORDpassword"
#define VEC_LINE(user) user ":$pbkdf2-sha256$4096$" VEC_SALT "$" VEC_HASH

static void check_pw(const lsmtp_authfile *af, const char *user,
                         const char *pw, int rc) {
  assert_int_equal(lsmtp_authfile_check(af, user, strlen(user), pw, strlen(pw)), rc);
}

/* ---- the crypto adapter against RFC 7914 §11 ---- */

static void test_pbkdf2_rfc7914(void **state) {
  (void)state;
  need_crypto();
  static const unsigned char v1[64] = {
      0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25,
      0x44, 0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b,
      0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc, 0x49, 0xca, 0x9c, 0xcc, 0xf1, 0x79, 0xb6,
      0x45, 0x99, 0x16, 0x64, 0xb3, 0x9d, 0x77, 0xef, 0x31, 0x7c, 0x71, 0xb8, 0x45,
      0xb1, 0xe3, 0x0b, 0xd5, 0x09, 0x11, 0x20, 0x41, 0xd3, 0xa1, 0x97, 0x83};
  static const unsigned char v2[64] = {
      0x4d, 0xdc, 0xd8, 0xf6, 0x0b, 0x98, 0xbe, 0x21, 0x83, 0x0c, 0xee, 0x5e, 0xf2,
      0x27, 0x01, 0xf9, 0x64, 0x1a, 0x44, 0x18, 0xd0, 0x4c, 0x04, 0x14, 0xae, 0xff,
      0x08, 0x87, 0x6b, 0x34, 0xab, 0x56, 0xa1, 0xd4, 0x25, 0xa1, 0x22, 0x58, 0x33,
      0x54, 0x9a, 0xdb, 0x84, 0x1b, 0x51, 0xc9, 0xb3, 0x17, 0x6a, 0x27, 0x2b, 0xde,
      0xbb, 0xa1, 0xd0, 0x78, 0x47, 0x8f, 0x62, 0xb3, 0x97, 0xf3, 0x3c, 0x8d};
  unsigned char out[64];
  assert_int_equal(lsmtp__pbkdf2_sha256("passwd", 6, "salt", 4, 1, out, 64), LSMTP_OK);
  assert_memory_equal(out, v1, 64);
  assert_int_equal(lsmtp__pbkdf2_sha256("Password", 8, "NaCl", 4, 80000, out, 64), LSMTP_OK);
  assert_memory_equal(out, v2, 64);
}

/* ---- loading and checking ---- */

static void test_known_vector_file(void **state) {
  (void)state;
  need_crypto();
  lsmtp_authfile *af = NULL;
  assert_int_equal(load_text("# users\n\n" VEC_LINE("alice") "\n", &af), LSMTP_OK);
  assert_string_equal(lsmtp_authfile_error(af), "");
  assert_int_equal(lsmtp_authfile_count(af), 1);
  check_pw(af, "alice", VEC_PASS, LSMTP_OK);
  check_pw(af, "alice", "passwordPASSWORDpassworD", LSMTP_ERR_AUTH);
  check_pw(af, "alice", "passwordPASSWORDpasswor", LSMTP_ERR_AUTH);
  check_pw(af, "alice", "", LSMTP_ERR_AUTH);
  /* User names are exact: no case folding, no trimming, no prefixes. */
  check_pw(af, "Alice", VEC_PASS, LSMTP_ERR_AUTH);
  check_pw(af, "alice ", VEC_PASS, LSMTP_ERR_AUTH);
  check_pw(af, "alic", VEC_PASS, LSMTP_ERR_AUTH);
  check_pw(af, "bob", VEC_PASS, LSMTP_ERR_AUTH);
  check_pw(af, "", VEC_PASS, LSMTP_ERR_AUTH);
  /* Lengths, not NUL terminators, delimit the arguments. */
  assert_int_equal(lsmtp_authfile_check(af, "alice:x", 5, VEC_PASS "zz", 24), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_check(af, NULL, 0, "", 0), LSMTP_ERR_AUTH);
  assert_int_equal(lsmtp_authfile_check(NULL, "alice", 5, "", 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_authfile_check(af, NULL, 5, "", 0), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_authfile_check(af, "alice", 5, NULL, 3), LSMTP_ERR_INVALID);
  lsmtp_authfile_del(af);
  lsmtp_authfile_del(NULL);
}

static void test_long_password_vector(void **state) {
  (void)state;
  need_crypto();
  /* P = "päss " * 20 (120 octets, longer than the HMAC block), S =
   * "0123456789abcdef", c = 1000, from Python's hashlib: the file stores
   * plain PBKDF2 even though long passwords are hashed first inside. */
  char pw[121];
  for (int i = 0; i < 20; i++) memcpy(pw + 6 * i, "p\xc3\xa4ss ", 6);
  pw[120] = '\0';
  lsmtp_authfile *af = NULL;
  assert_int_equal(load_text("long:$pbkdf2-sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg==$"
                             "29fzF7xGUuYxJjQir3hwbtxFeh5IsIiiEH2WwCEPYW4=\n",
                             &af),
                   LSMTP_OK);
  check_pw(af, "long", pw, LSMTP_OK);
  pw[119] = 'x';
  check_pw(af, "long", pw, LSMTP_ERR_AUTH);
  lsmtp_authfile_del(af);
}

static void test_layout_variants(void **state) {
  (void)state;
  need_crypto();
  lsmtp_authfile *af = NULL;
  /* CRLF endings, indented comments, blank lines of spaces and tabs, no
   * final newline; users with spaces inside, UTF-8 and '$'. */
  const char *text = "  # indented comment\r\n"
                     "\t \r\n"
                     "\n" VEC_LINE("j\xc3\xbcrgen m") "\r\n"
                     "#" VEC_LINE("commented") "\n" VEC_LINE("a$b") "\n" VEC_LINE("z");
  assert_int_equal(load_text(text, &af), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_count(af), 3);
  check_pw(af, "j\xc3\xbcrgen m", VEC_PASS, LSMTP_OK);
  check_pw(af, "a$b", VEC_PASS, LSMTP_OK);
  check_pw(af, "z", VEC_PASS, LSMTP_OK);
  check_pw(af, "commented", VEC_PASS, LSMTP_ERR_AUTH);
  check_pw(af, "#commented", VEC_PASS, LSMTP_ERR_AUTH);
  lsmtp_authfile_del(af);

  /* An empty file and a comments-only file hold no users. */
  assert_int_equal(load_text("", &af), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_count(af), 0);
  check_pw(af, "alice", VEC_PASS, LSMTP_ERR_AUTH);
  lsmtp_authfile_del(af);
  assert_int_equal(load_text("# nobody\n", &af), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_count(af), 0);
  lsmtp_authfile_del(af);
}

/* ---- malformed files ---- */

static void expect_load_error(const char *text, int rc, unsigned line,
                              const char *message) {
  lsmtp_authfile *af = NULL;
  assert_int_equal(load_text(text, &af), rc);
  assert_non_null(af);
  char want[512];
  snprintf(want, sizeof want, "%s:%u: %s", path, line, message);
  assert_string_equal(lsmtp_authfile_error(af), want);
  assert_int_equal(lsmtp_authfile_count(af), 0);
  /* A failed object refuses to check anything. */
  assert_int_equal(lsmtp_authfile_check(af, "alice", 5, VEC_PASS, 24), LSMTP_ERR_STATE);
  lsmtp_authfile_del(af);
}

#define H "$pbkdf2-sha256$"
#define ITER_RANGE "iteration count out of range (1000..10000000)"

static void test_malformed_lines(void **state) {
  (void)state;
  need_crypto();
  static const struct {
    const char *text;
    unsigned line;
    const char *message;
  } cases[] = {
      {"alice\n", 1, "missing ':' after the user name"},
      {"# c\n\nalice:$pbkdf2-sha1$4096$" VEC_SALT "$" VEC_HASH "\n", 3,
       "unknown hash scheme (expected $pbkdf2-sha256$)"},
      {"alice:" VEC_HASH "\n", 1, "unknown hash scheme (expected $pbkdf2-sha256$)"},
      {"alice:$PBKDF2-SHA256$4096$" VEC_SALT "$" VEC_HASH, 1,
       "unknown hash scheme (expected $pbkdf2-sha256$)"},
      {":" H "4096$" VEC_SALT "$" VEC_HASH, 1, "empty user name"},
      {" alice:" H "4096$" VEC_SALT "$" VEC_HASH, 1, "user name starts or ends with a space"},
      {"alice :" H "4096$" VEC_SALT "$" VEC_HASH, 1, "user name starts or ends with a space"},
      {"al\tice:" H "4096$" VEC_SALT "$" VEC_HASH, 1, "control character in the user name"},
      {"al\x7fice:" H "4096$" VEC_SALT "$" VEC_HASH, 1, "control character in the user name"},
      {"al\xc3ice:" H "4096$" VEC_SALT "$" VEC_HASH, 1, "user name is not well-formed UTF-8"},
      {"alice:" H "999$" VEC_SALT "$" VEC_HASH, 1, ITER_RANGE},
      {"alice:" H "10000001$" VEC_SALT "$" VEC_HASH, 1, ITER_RANGE},
      {"alice:" H "99999999999999999999$" VEC_SALT "$" VEC_HASH, 1, ITER_RANGE},
      {"alice:" H "04096$" VEC_SALT "$" VEC_HASH, 1, "iteration count has a leading zero"},
      {"alice:" H "$" VEC_SALT "$" VEC_HASH, 1,
       "iteration count is not a decimal number followed by '$'"},
      {"alice:" H "+4096$" VEC_SALT "$" VEC_HASH, 1,
       "iteration count is not a decimal number followed by '$'"},
      {"alice:" H "4096 $" VEC_SALT "$" VEC_HASH, 1,
       "iteration count is not a decimal number followed by '$'"},
      {"alice:" H "4096", 1, "iteration count is not a decimal number followed by '$'"},
      {"alice:" H "4096$" VEC_SALT, 1, "missing '$' between salt and hash"},
      {"alice:" H "4096$c2FsdFNBTFRzYWx0U0FMVHNhbHRTQUxUc2FsdFNBTFRzYWx$" VEC_HASH, 1,
       "salt is not base64 with padding"},
      {"alice:" H "4096$$" VEC_HASH, 1, "salt shorter than 8 octets"},
      {"alice:" H "4096$=$" VEC_HASH, 1, "salt is not base64 with padding"},
      {"alice:" H "4096$c2FsdA==$" VEC_HASH, 1, "salt shorter than 8 octets"},
      {"alice:" H "4096$" /* 65 octets of 'a' */
       "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
       "$" VEC_HASH,
       1, "salt longer than 64 octets"},
      {"alice:" H "4096$" VEC_SALT "$" VEC_HASH " \n", 1, "hash is not base64 with padding"},
      {"alice:" H "4096$" VEC_SALT "$" VEC_HASH "$x\n", 1, "hash is not base64 with padding"},
      {"alice:" H "4096$" VEC_SALT "$NIyJ28vTKy8y2BS4EW6EzysXNH68GAAYHE4qH7jdU-E=\n", 1,
       "hash is not base64 with padding"},
      {"alice:" H "4096$" VEC_SALT "$NIyJ28vTKy8y2BS4EW6EzysXNH68GAAYHE4qH7jdUw==\n", 1,
       "hash is not 32 octets"},
      {"alice:" H "4096$" VEC_SALT "$\n", 1, "hash is not 32 octets"},
      {"alice:" H "4096$" VEC_SALT "$" VEC_HASH "AAAA\n", 1, "hash is not base64 with padding"},
      {"# one\n" VEC_LINE("alice") "\n" VEC_LINE("bob") "\n" VEC_LINE("alice") "\n", 4,
       "duplicate user 'alice' (first on line 2)"},
      {VEC_LINE("x") "\n" VEC_LINE("y") "\nbroken\n" VEC_LINE("z") "\n", 3,
       "missing ':' after the user name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_load_error(cases[i].text, LSMTP_ERR_SYNTAX, cases[i].line, cases[i].message);

  /* A NUL inside the user name (strlen would stop early: write by hand). */
  static const char nul_user[] = "al\0ice:" H "4096$" VEC_SALT "$" VEC_HASH "\n";
  write_file(nul_user, sizeof nul_user - 1);
  lsmtp_authfile *af = NULL;
  assert_int_equal(lsmtp_authfile_load(&af, NULL, path), LSMTP_ERR_SYNTAX);
  char want[512];
  snprintf(want, sizeof want, "%s:1: control character in the user name", path);
  assert_string_equal(lsmtp_authfile_error(af), want);
  lsmtp_authfile_del(af);
}

static void test_file_limits(void **state) {
  (void)state;
  need_crypto();
  /* A line of 1023 octets plus its newline is allowed; one more is not. */
  char *text = malloc(4096);
  assert_non_null(text);
  memset(text, '#', 1023);
  strcpy(text + 1023, "\n" VEC_LINE("a") "\n");
  lsmtp_authfile *af = NULL;
  assert_int_equal(load_text(text, &af), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_count(af), 1);
  lsmtp_authfile_del(af);
  strcpy(text, VEC_LINE("a") "\n");
  size_t n = strlen(text);
  memset(text + n, '#', 1024);
  strcpy(text + n + 1024, "\n");
  expect_load_error(text, LSMTP_ERR_TOO_LONG, 2, "line longer than 1024 octets");
  /* Also without a final newline. */
  text[n + 1024] = '\0';
  expect_load_error(text, LSMTP_ERR_TOO_LONG, 2, "line longer than 1024 octets");
  free(text);

  /* One user more than LSMTP_AUTHFILE_MAX_USERS. */
  const size_t per = strlen(VEC_LINE("u0000000")) + 1;
  const size_t users = LSMTP_AUTHFILE_MAX_USERS + 1;
  text = malloc(users * per + 1);
  assert_non_null(text);
  for (size_t i = 0; i < users; i++) {
    char one[256];
    int k = snprintf(one, sizeof one, "u%07zu:" H "4096$" VEC_SALT "$" VEC_HASH "\n", i);
    assert_int_equal(k, per);
    memcpy(text + i * per, one, per);
  }
  text[users * per] = '\0';
  char msg[64];
  snprintf(msg, sizeof msg, "more than %u users", (unsigned)LSMTP_AUTHFILE_MAX_USERS);
  expect_load_error(text, LSMTP_ERR_LIMIT, (unsigned)users, msg);
  /* Exactly the maximum loads, and lookups work in a large table. */
  text[(users - 1) * per] = '\0';
  assert_int_equal(load_text(text, &af), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_count(af), LSMTP_AUTHFILE_MAX_USERS);
  check_pw(af, "u0031337", VEC_PASS, LSMTP_OK);
  check_pw(af, "u0099999", VEC_PASS, LSMTP_OK);
  check_pw(af, "u0100000", VEC_PASS, LSMTP_ERR_AUTH);
  lsmtp_authfile_del(af);
  free(text);

  /* A file over LSMTP_AUTHFILE_MAX_SIZE octets (comment lines). */
  const size_t size = LSMTP_AUTHFILE_MAX_SIZE + 1;
  text = malloc(size + 1);
  assert_non_null(text);
  for (size_t i = 0; i < size; i++) text[i] = (i % 100 == 99) ? '\n' : '#';
  text[size] = '\0';
  write_file(text, size);
  assert_int_equal(lsmtp_authfile_load(&af, NULL, path), LSMTP_ERR_LIMIT);
  char want[512];
  snprintf(want, sizeof want, "%s: larger than %u octets", path,
           (unsigned)LSMTP_AUTHFILE_MAX_SIZE);
  assert_string_equal(lsmtp_authfile_error(af), want);
  lsmtp_authfile_del(af);
  /* Exactly the maximum is read. */
  write_file(text, size - 1);
  assert_int_equal(lsmtp_authfile_load(&af, NULL, path), LSMTP_OK);
  lsmtp_authfile_del(af);
  free(text);
}

static void test_missing_file(void **state) {
  (void)state;
  need_crypto();
  char missing[sizeof path + 16];
  snprintf(missing, sizeof missing, "%s/nope", tmpdir);
  lsmtp_authfile *af = NULL;
  assert_int_equal(lsmtp_authfile_load(&af, NULL, missing), LSMTP_ERR_IO);
  char want[512];
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
  assert_string_equal(lsmtp_authfile_error(af), want);
  assert_int_equal(lsmtp_authfile_check(af, "a", 1, "b", 1), LSMTP_ERR_STATE);
  lsmtp_authfile_del(af);
  /* A directory opens but cannot be read. */
  assert_int_equal(lsmtp_authfile_load(&af, NULL, tmpdir), LSMTP_ERR_IO);
  snprintf(want, sizeof want, "%s: cannot read: Is a directory", tmpdir);
  assert_string_equal(lsmtp_authfile_error(af), want);
  lsmtp_authfile_del(af);
  af = (lsmtp_authfile *)&af;
  assert_int_equal(lsmtp_authfile_load(&af, NULL, NULL), LSMTP_ERR_INVALID);
  assert_null(af);
  assert_int_equal(lsmtp_authfile_load(NULL, NULL, path), LSMTP_ERR_INVALID);
  assert_string_equal(lsmtp_authfile_error(NULL), "");
  assert_int_equal(lsmtp_authfile_count(NULL), 0);
}

/* Every prefix of a valid file loads or fails cleanly: a cut inside the
 * last entry is a syntax error, a cut at a line boundary loads fewer
 * users. */
static void test_truncated_files(void **state) {
  (void)state;
  need_crypto();
  const char *text = "# users\n" VEC_LINE("alice") "\n\n" VEC_LINE("bob") "\r\n";
  const size_t len = strlen(text);
  for (size_t cut = 0; cut <= len; cut++) {
    write_file(text, cut);
    lsmtp_authfile *af = NULL;
    int rc = lsmtp_authfile_load(&af, NULL, path);
    assert_non_null(af);
    size_t bob_end = len - 2; /* "...bob line" before "\r\n" */
    size_t alice_end = strlen("# users\n" VEC_LINE("alice"));
    size_t alice_start = strlen("# users\n");
    size_t bob_start = alice_end + 2;
    if (cut <= alice_start || (cut >= alice_end && cut <= bob_start)) {
      assert_int_equal(rc, LSMTP_OK);
      assert_int_equal(lsmtp_authfile_count(af), cut >= alice_end ? 1 : 0);
    } else if (cut >= bob_end) {
      assert_int_equal(rc, LSMTP_OK);
      assert_int_equal(lsmtp_authfile_count(af), 2);
    } else {
      assert_int_equal(rc, LSMTP_ERR_SYNTAX);
      assert_int_equal(lsmtp_authfile_count(af), 0);
    }
    lsmtp_authfile_del(af);
  }
}

/* ---- making lines ---- */

static void test_hash_line_round_trip(void **state) {
  (void)state;
  need_crypto();
  char line1[LSMTP_AUTHFILE_LINE_MAX], line2[LSMTP_AUTHFILE_LINE_MAX];
  assert_int_equal(lsmtp_authfile_hash_line(line1, sizeof line1, "bob", "s3cret p\xc3\xa4ss", 1000),
                   LSMTP_OK);
  assert_int_equal(lsmtp_authfile_hash_line(line2, sizeof line2, "bob", "s3cret p\xc3\xa4ss", 1000),
                   LSMTP_OK);
  /* user ":" scheme iterations "$" 16-octet salt (24) "$" 32-octet hash (44) */
  const char *prefix = "bob:$pbkdf2-sha256$1000$";
  assert_int_equal(strncmp(line1, prefix, strlen(prefix)), 0);
  assert_int_equal(strlen(line1), strlen(prefix) + 24 + 1 + 44);
  assert_int_equal(line1[strlen(prefix) + 24], '$');
  assert_int_equal(line1[strlen(line1) - 1], '=');
  assert_null(strchr(line1, '\n'));
  /* A fresh salt each time. */
  assert_int_not_equal(memcmp(line1 + strlen(prefix), line2 + strlen(prefix), 24), 0);

  char text[3 * LSMTP_AUTHFILE_LINE_MAX];
  char carol[LSMTP_AUTHFILE_LINE_MAX];
  char long_pw[1025];
  memset(long_pw, 'L', 1024);
  long_pw[1024] = '\0';
  assert_int_equal(lsmtp_authfile_hash_line(carol, sizeof carol, "carol", long_pw, 1000), LSMTP_OK);
  snprintf(text, sizeof text, "# made by hash_line\n%s\n%s\n", line1, carol);
  lsmtp_authfile *af = NULL;
  assert_int_equal(load_text(text, &af), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_count(af), 2);
  check_pw(af, "bob", "s3cret p\xc3\xa4ss", LSMTP_OK);
  check_pw(af, "bob", "s3cret pass", LSMTP_ERR_AUTH);
  check_pw(af, "carol", long_pw, LSMTP_OK);
  long_pw[1023] = '\0';
  check_pw(af, "carol", long_pw, LSMTP_ERR_AUTH);
  check_pw(af, "dave", "s3cret p\xc3\xa4ss", LSMTP_ERR_AUTH);
  lsmtp_authfile_del(af);

  /* Iterations 0 means the default. */
  assert_int_equal(lsmtp_authfile_hash_line(line1, sizeof line1, "eve", "x", 0), LSMTP_OK);
  assert_int_equal(strncmp(line1, "eve:$pbkdf2-sha256$100000$", 26), 0);
}

static void test_hash_line_errors(void **state) {
  (void)state;
  need_crypto();
  char buf[LSMTP_AUTHFILE_LINE_MAX];
  char user256[257];
  memset(user256, 'u', 256);
  user256[256] = '\0';
  static const char *const bad_users[] = {"", "a:b", "#x", " x", "x ", "a\tb",
                                          "a\nb", "\xff", "caf\xc3"};
  for (size_t i = 0; i < sizeof bad_users / sizeof bad_users[0]; i++) {
    strcpy(buf, "junk");
    assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, bad_users[i], "pw", 1000),
                     LSMTP_ERR_INVALID);
    assert_string_equal(buf, "");
  }
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, user256, "pw", 1000),
                   LSMTP_ERR_INVALID);
  user256[255] = '\0';
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, user256, "pw", 1000), LSMTP_OK);
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, "u", "pw", 999), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, "u", "pw", 10000001),
                   LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, "u", "p\xe9", 1000), LSMTP_ERR_UTF8);
  char pw[1026];
  memset(pw, 'p', 1025);
  pw[1025] = '\0';
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, "u", pw, 1000), LSMTP_ERR_TOO_LONG);
  assert_int_equal(lsmtp_authfile_hash_line(NULL, 10, "u", "p", 1000), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, NULL, "p", 1000), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, "u", NULL, 1000), LSMTP_ERR_INVALID);
  /* Room: the line and its NUL exactly, then one octet less. */
  const size_t need = strlen("u:$pbkdf2-sha256$1000$") + 24 + 1 + 44 + 1;
  assert_int_equal(lsmtp_authfile_hash_line(buf, need, "u", "p", 1000), LSMTP_OK);
  assert_int_equal(strlen(buf), need - 1);
  strcpy(buf, "junk");
  assert_int_equal(lsmtp_authfile_hash_line(buf, need - 1, "u", "p", 1000), LSMTP_ERR_TOO_LONG);
  assert_string_equal(buf, "");
}

/* ---- unknown users cost a PBKDF2 run too ----
 * No clock here (tests never time things): the dummy entry that unknown
 * users are checked against must carry the file's most common iteration
 * count, not the cheapest one, and an unknown user is refused like a
 * wrong password. */

static void test_unknown_user_costs_the_same(void **state) {
  (void)state;
  need_crypto();
  char line[LSMTP_AUTHFILE_LINE_MAX], text[3 * LSMTP_AUTHFILE_LINE_MAX];
  assert_int_equal(lsmtp_authfile_hash_line(line, sizeof line, "known", "pw", 100000), LSMTP_OK);
  /* A third user with a low count must not make the dummy cheap: the
   * most common count (100000, twice) wins. */
  char line2[LSMTP_AUTHFILE_LINE_MAX];
  assert_int_equal(lsmtp_authfile_hash_line(line2, sizeof line2, "other", "pw", 100000), LSMTP_OK);
  snprintf(text, sizeof text, "%s\n%s\n" VEC_LINE("cheap") "\n", line, line2);
  lsmtp_authfile *af = NULL;
  assert_int_equal(load_text(text, &af), LSMTP_OK);
  assert_int_equal(lsmtp__authfile_dummy_iterations(af), 100000);
  assert_int_equal(lsmtp_authfile_check(af, "nobody", 6, "pw", 2), LSMTP_ERR_AUTH);
  assert_int_equal(lsmtp_authfile_check(af, "known", 5, "wrong", 5), LSMTP_ERR_AUTH);
  assert_int_equal(lsmtp_authfile_check(af, "known", 5, "pw", 2), LSMTP_OK);
  lsmtp_authfile_del(af);
}

/* ---- allocation failure at every allocation ---- */

static void test_allocation_failures(void **state) {
  (void)state;
  need_crypto();
  /* Enough entries that the table grows, plus a bad line at the end so
   * the error path allocates too. */
  char *text = malloc(40 * 200);
  assert_non_null(text);
  text[0] = '\0';
  for (int i = 0; i < 20; i++) {
    char one[200];
    snprintf(one, sizeof one, "u%02d:" H "4096$" VEC_SALT "$" VEC_HASH "\n", i);
    strcat(text, one);
  }
  for (int bad = 0; bad < 2; bad++) {
    write_file(text, strlen(text));
    if (bad) {
      FILE *f = fopen(path, "ab");
      assert_non_null(f);
      fputs("broken\n", f);
      fclose(f);
    }
    long ok_at = -1;
    /* n allocations succeed, the next one fails; ok_at: how many the
     * load makes when none fails. */
    for (long n = 0; n < 1000 && ok_at < 0; n++) {
      failalloc fa;
      failalloc_init(&fa, n + 1);
      lsmtp_authfile *af = NULL;
      int rc = lsmtp_authfile_load(&af, &fa.alloc, path);
      if (!failalloc_reached(&fa)) { /* no allocation failed: done */
        assert_int_equal(rc, bad ? LSMTP_ERR_SYNTAX : LSMTP_OK);
        ok_at = n;
      } else {
        assert_int_equal(rc, LSMTP_ERR_NOMEM);
        assert_null(af);
      }
      if (af && !bad) {
        assert_int_equal(lsmtp_authfile_count(af), 20);
        check_pw(af, "u13", VEC_PASS, LSMTP_OK);
      }
      lsmtp_authfile_del(af);
      assert_int_equal(fa.live, 0);
    }
    assert_true(ok_at > 20); /* the walk went through every allocation */
  }
  free(text);
}

/* ---- a build without mbedTLS ---- */

static void test_without_crypto(void **state) {
  (void)state;
  if (lsmtp__crypto_available()) skip();
  write_file(VEC_LINE("alice") "\n", strlen(VEC_LINE("alice")) + 1);
  lsmtp_authfile *af = NULL;
  assert_int_equal(lsmtp_authfile_load(&af, NULL, path), LSMTP_ERR_UNSUPPORTED);
  assert_non_null(af);
  assert_true(strstr(lsmtp_authfile_error(af), "mbedTLS") != NULL);
  assert_int_equal(lsmtp_authfile_check(af, "alice", 5, VEC_PASS, 24), LSMTP_ERR_STATE);
  lsmtp_authfile_del(af);
  char buf[LSMTP_AUTHFILE_LINE_MAX];
  assert_int_equal(lsmtp_authfile_hash_line(buf, sizeof buf, "u", "p", 0), LSMTP_ERR_UNSUPPORTED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pbkdf2_rfc7914),
      cmocka_unit_test(test_known_vector_file),
      cmocka_unit_test(test_long_password_vector),
      cmocka_unit_test(test_layout_variants),
      cmocka_unit_test(test_malformed_lines),
      cmocka_unit_test(test_file_limits),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_truncated_files),
      cmocka_unit_test(test_hash_line_round_trip),
      cmocka_unit_test(test_hash_line_errors),
      cmocka_unit_test(test_unknown_user_costs_the_same),
      cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_without_crypto),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
