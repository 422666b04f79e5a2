/* The TLS filter in memory: a client and a server joined by two byte
 * queues, no sockets. Certificates come from tests/certs/make-certs.sh
 * (run by ctest as a fixture; LSMTP_TEST_CERTS names the folder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include <lsmtp/tls.h>

static char cert_dir[1024];

static const char *cert(const char *name) {
  static char path[2][1200];
  static int which;
  which ^= 1;
  snprintf(path[which], sizeof path[which], "%s/%s", cert_dir, name);
  return path[which];
}

typedef struct pair {
  lsmtp_tls_config *ccfg, *scfg;
  lsmtp_tls *cli, *srv;
} pair;

static void pair_make(pair *p, const char *server_cert, const char *server_key,
                      const char *name, int verify) {
  memset(p, 0, sizeof *p);
  assert_int_equal(lsmtp_tls_config_new(&p->scfg, NULL, LSMTP_TLS_SERVER), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_cert_files(p->scfg, cert(server_cert), cert(server_key),
                                                   NULL),
                   LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_new(&p->ccfg, NULL, LSMTP_TLS_CLIENT), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_ca_file(p->ccfg, cert("ca.pem")), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_verify(p->ccfg, verify), LSMTP_OK);
  assert_int_equal(lsmtp_tls_new(&p->srv, p->scfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_tls_new(&p->cli, p->ccfg, name), LSMTP_OK);
}

static void pair_free(pair *p) {
  lsmtp_tls_del(p->cli);
  lsmtp_tls_del(p->srv);
  lsmtp_tls_config_del(p->ccfg);
  lsmtp_tls_config_del(p->scfg);
}

/* Move at most chunk bytes of pending ciphertext from one side to the
 * other; returns the number moved. */
static size_t move(lsmtp_tls *from, lsmtp_tls *to, size_t chunk) {
  const char *d;
  size_t n = lsmtp_tls_pending(from, &d);
  if (n > chunk) n = chunk;
  if (n == 0) return 0;
  size_t used = 0;
  assert_int_equal(lsmtp_tls_feed(to, d, n, &used), LSMTP_OK);
  assert_int_equal(lsmtp_tls_consume(from, used), LSMTP_OK);
  return used;
}

/* Run both handshakes, moving chunk bytes at a time, until both finish or
 * one fails. Returns the client's final status; *srv_rc the server's. */
static int handshake(pair *p, size_t chunk, int *srv_rc) {
  int c = LSMTP_INCOMPLETE, s = LSMTP_INCOMPLETE;
  for (int round = 0; round < 200000; round++) {
    if (c == LSMTP_INCOMPLETE) c = lsmtp_tls_handshake(p->cli);
    if (s == LSMTP_INCOMPLETE) s = lsmtp_tls_handshake(p->srv);
    size_t moved = move(p->cli, p->srv, chunk) + move(p->srv, p->cli, chunk);
    if (moved == 0 && c != LSMTP_INCOMPLETE && s != LSMTP_INCOMPLETE) break;
    if (moved == 0 && (c < 0 || s < 0)) break;
  }
  if (srv_rc) *srv_rc = s;
  return c;
}

/* Read everything the side can decrypt into out; returns the byte count. */
static size_t read_all(lsmtp_tls *t, char *out, size_t cap, int *last) {
  size_t total = 0, n = 0;
  int rc;
  while ((rc = lsmtp_tls_read(t, out + total, cap - total, &n)) == LSMTP_OK) total += n;
  if (last) *last = rc;
  return total;
}

static void test_handshake_and_data(void **state) {
  (void)state;
  pair p;
  pair_make(&p, "server.pem", "server.key", "localhost", 1);
  int s;
  assert_int_equal(handshake(&p, 65536, &s), LSMTP_OK);
  assert_int_equal(s, LSMTP_OK);
  assert_true(lsmtp_tls_is_established(p.cli));
  assert_string_equal(lsmtp_tls_version(p.cli), "TLSv1.2");
  assert_string_equal(lsmtp_tls_version(p.srv), "TLSv1.2");
  assert_true(strstr(lsmtp_tls_cipher(p.srv), "GCM") || strstr(lsmtp_tls_cipher(p.srv), "CHACHA"));

  /* 100 KiB client -> server, split across records */
  size_t big = 100 * 1024;
  char *msg = malloc(big), *got = malloc(big + 1);
  for (size_t i = 0; i < big; i++) msg[i] = (char)('a' + i % 26);
  assert_int_equal(lsmtp_tls_write(p.cli, msg, big), LSMTP_OK);
  size_t have = 0;
  int last;
  while (have < big) {
    assert_true(move(p.cli, p.srv, 4096) > 0);
    have += read_all(p.srv, got + have, big + 1 - have, &last);
    assert_int_equal(last, LSMTP_INCOMPLETE);
  }
  assert_int_equal(have, big);
  assert_memory_equal(got, msg, big);

  /* reply server -> client */
  assert_int_equal(lsmtp_tls_write(p.srv, "250 ok\r\n", 8), LSMTP_OK);
  move(p.srv, p.cli, 65536);
  char buf[64];
  assert_int_equal(read_all(p.cli, buf, sizeof buf, &last), 8);
  assert_memory_equal(buf, "250 ok\r\n", 8);

  /* close_notify reaches the server as LSMTP_DONE */
  assert_int_equal(lsmtp_tls_close(p.cli), LSMTP_OK);
  move(p.cli, p.srv, 65536);
  read_all(p.srv, buf, sizeof buf, &last);
  assert_int_equal(last, LSMTP_DONE);
  assert_int_equal(lsmtp_tls_write(p.cli, "x", 1), LSMTP_ERR_STATE);
  free(msg);
  free(got);
  pair_free(&p);
}

/* The same handshake with the ciphertext moved in chunks of every size
 * from 1 byte up: every record and message boundary gets split. */
static void test_handshake_split_everywhere(void **state) {
  (void)state;
  static const size_t chunks[] = {1, 2, 3, 5, 7, 11, 64, 300, 1000, 1500, 4096};
  for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
    pair p;
    pair_make(&p, "server.pem", "server.key", "localhost", 1);
    int s;
    assert_int_equal(handshake(&p, chunks[i], &s), LSMTP_OK);
    assert_int_equal(s, LSMTP_OK);
    assert_int_equal(lsmtp_tls_write(p.srv, "220 ready\r\n", 11), LSMTP_OK);
    char buf[32];
    size_t have = 0;
    int last;
    while (move(p.srv, p.cli, chunks[i]) > 0) have += read_all(p.cli, buf + have, sizeof buf - have, &last);
    assert_int_equal(have, 11);
    assert_memory_equal(buf, "220 ready\r\n", 11);
    pair_free(&p);
  }
}

/* Split the client's first flight (ClientHello) at every byte position:
 * the server must wait, never fail, on each prefix. */
static void test_client_hello_every_position(void **state) {
  (void)state;
  pair p0;
  pair_make(&p0, "server.pem", "server.key", "localhost", 1);
  assert_int_equal(lsmtp_tls_handshake(p0.cli), LSMTP_INCOMPLETE);
  const char *d;
  size_t hello_len = lsmtp_tls_pending(p0.cli, &d);
  assert_true(hello_len > 50);
  pair_free(&p0);

  for (size_t cut = 1; cut < hello_len; cut++) {
    pair p;
    pair_make(&p, "server.pem", "server.key", "localhost", 1);
    assert_int_equal(lsmtp_tls_handshake(p.cli), LSMTP_INCOMPLETE);
    move(p.cli, p.srv, cut);
    assert_int_equal(lsmtp_tls_handshake(p.srv), LSMTP_INCOMPLETE);
    assert_int_equal(lsmtp_tls_pending(p.srv, &d), 0); /* nothing until the hello is whole */
    int s;
    assert_int_equal(handshake(&p, 65536, &s), LSMTP_OK);
    assert_int_equal(s, LSMTP_OK);
    pair_free(&p);
  }
}

static void expect_cert_refused(const char *crt, const char *key, const char *name,
                                const char *why) {
  pair p;
  pair_make(&p, crt, key, name, 1);
  int s;
  assert_int_equal(handshake(&p, 65536, &s), LSMTP_ERR_CERT);
  assert_false(lsmtp_tls_is_established(p.cli));
  assert_non_null(strstr(lsmtp_tls_error_text(p.cli), why));
  /* sticky */
  assert_int_equal(lsmtp_tls_handshake(p.cli), LSMTP_ERR_FATAL);
  char buf[8];
  size_t n;
  assert_int_equal(lsmtp_tls_read(p.cli, buf, sizeof buf, &n), LSMTP_ERR_FATAL);
  pair_free(&p);
}

static void test_wrong_name_refused(void **state) {
  (void)state;
  expect_cert_refused("wrongname.pem", "wrongname.key", "localhost", "CN");
}

static void test_self_signed_refused(void **state) {
  (void)state;
  expect_cert_refused("selfsigned.pem", "selfsigned.key", "localhost", "not correctly signed");
}

static void test_expired_refused(void **state) {
  (void)state;
  expect_cert_refused("expired.pem", "expired.key", "localhost", "expired");
}

static void test_insecure_opt_out(void **state) {
  (void)state;
  pair p;
  pair_make(&p, "selfsigned.pem", "selfsigned.key", NULL, 0);
  int s;
  assert_int_equal(handshake(&p, 65536, &s), LSMTP_OK);
  assert_int_equal(s, LSMTP_OK);
  pair_free(&p);
}

static void test_verify_needs_a_name(void **state) {
  (void)state;
  lsmtp_tls_config *c;
  lsmtp_tls *t = (lsmtp_tls *)&t;
  assert_int_equal(lsmtp_tls_config_new(&c, NULL, LSMTP_TLS_CLIENT), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_ca_file(c, cert("ca.pem")), LSMTP_OK);
  assert_int_equal(lsmtp_tls_new(&t, c, NULL), LSMTP_ERR_INVALID);
  assert_null(t);
  lsmtp_tls_config_del(c);
}

static void test_plaintext_peer_fails(void **state) {
  (void)state;
  pair p;
  pair_make(&p, "server.pem", "server.key", "localhost", 1);
  const char junk[] = "EHLO client.example\r\nMAIL FROM:<a@b>\r\n";
  size_t used;
  assert_int_equal(lsmtp_tls_feed(p.srv, junk, sizeof junk - 1, &used), LSMTP_OK);
  assert_int_equal(used, sizeof junk - 1);
  assert_int_equal(lsmtp_tls_handshake(p.srv), LSMTP_ERR_TLS);
  assert_true(strlen(lsmtp_tls_error_text(p.srv)) > 0);
  pair_free(&p);
}

static void test_key_mismatch_and_bad_files(void **state) {
  (void)state;
  lsmtp_tls_config *c;
  assert_int_equal(lsmtp_tls_config_new(&c, NULL, LSMTP_TLS_SERVER), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_cert_files(c, cert("server.pem"), cert("wrongname.key"), NULL),
                   LSMTP_ERR_TLS);
  assert_non_null(strstr(lsmtp_tls_config_error(c), "do not match"));
  assert_int_equal(lsmtp_tls_config_set_cert_files(c, cert("missing.pem"), cert("server.key"), NULL),
                   LSMTP_ERR_TLS);
  assert_int_equal(lsmtp_tls_config_set_ca_file(c, cert("missing.pem")), LSMTP_ERR_TLS);
  lsmtp_tls_config_del(c);
}

/* Certificates from memory work like files. */
static void test_pem_from_memory(void **state) {
  (void)state;
  char *crt = NULL, *key = NULL, *ca = NULL;
  size_t crt_len = 0, key_len = 0, ca_len = 0;
  FILE *f;
  assert_non_null(f = fopen(cert("server.pem"), "rb"));
  assert_true(getdelim(&crt, &crt_len, '\0', f) > 0);
  crt_len = strlen(crt);
  fclose(f);
  assert_non_null(f = fopen(cert("server.key"), "rb"));
  assert_true(getdelim(&key, &key_len, '\0', f) > 0);
  key_len = strlen(key);
  fclose(f);
  assert_non_null(f = fopen(cert("ca.pem"), "rb"));
  assert_true(getdelim(&ca, &ca_len, '\0', f) > 0);
  ca_len = strlen(ca);
  fclose(f);

  pair p;
  memset(&p, 0, sizeof p);
  assert_int_equal(lsmtp_tls_config_new(&p.scfg, NULL, LSMTP_TLS_SERVER), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_cert_pem(p.scfg, crt, crt_len, key, key_len, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_new(&p.ccfg, NULL, LSMTP_TLS_CLIENT), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_ca_pem(p.ccfg, ca, ca_len), LSMTP_OK);
  assert_int_equal(lsmtp_tls_new(&p.srv, p.scfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_tls_new(&p.cli, p.ccfg, "localhost"), LSMTP_OK);
  int s;
  assert_int_equal(handshake(&p, 65536, &s), LSMTP_OK);
  pair_free(&p);
  free(crt);
  free(key);
  free(ca);
}

/* The input buffer is bounded: a flood is taken only in part. */
static void test_feed_is_bounded(void **state) {
  (void)state;
  pair p;
  pair_make(&p, "server.pem", "server.key", "localhost", 1);
  size_t big = 1 << 20;
  char *junk = calloc(1, big);
  size_t used;
  assert_int_equal(lsmtp_tls_feed(p.srv, junk, big, &used), LSMTP_OK);
  assert_true(used > 0 && used < 64 * 1024);
  free(junk);
  pair_free(&p);
}

int main(void) {
  const char *dir = getenv("LSMTP_TEST_CERTS");
  if (!dir || !*dir) {
    fprintf(stderr, "LSMTP_TEST_CERTS is not set (run through ctest)\n");
    return 1;
  }
  snprintf(cert_dir, sizeof cert_dir, "%s", dir);
  if (!lsmtp_tls_available()) {
    fprintf(stderr, "TLS is not built in\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_and_data),
      cmocka_unit_test(test_handshake_split_everywhere),
      cmocka_unit_test(test_client_hello_every_position),
      cmocka_unit_test(test_wrong_name_refused),
      cmocka_unit_test(test_self_signed_refused),
      cmocka_unit_test(test_expired_refused),
      cmocka_unit_test(test_insecure_opt_out),
      cmocka_unit_test(test_verify_needs_a_name),
      cmocka_unit_test(test_plaintext_peer_fails),
      cmocka_unit_test(test_key_mismatch_and_bad_files),
      cmocka_unit_test(test_pem_from_memory),
      cmocka_unit_test(test_feed_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
