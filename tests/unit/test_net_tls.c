/* lsmtp_net_server with TLS over 127.0.0.1: an lsmtp_tls client against an
 * implicit-TLS listener and against STARTTLS (with plaintext injected
 * behind it), close_notify on QUIT, handshake failure and timeout, STARTTLS
 * accepted without a TLS configuration, and the listener flag checks.
 * Certificates come from LSMTP_TEST_CERTS, or tests/certs/make-certs.sh is
 * run into a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"

static char cert_dir[1024];

static const char *cert(const char *name) {
  static char path[2][1200];
  static int which;
  which ^= 1;
  snprintf(path[which], sizeof path[which], "%s/%s", cert_dir, name);
  return path[which];
}

/* ---- the server side ---- */

typedef struct ctx {
  lsmtp_loop *loop;
  lsmtp_net_server *ns;
  lsmtp_server_config *cfg;
  lsmtp_tls_config *tls;
  int closed, last_reason;
  int tls_calls, tls_status;
  char tls_msg[256];
  char tls_version[32];
  int session_tls; /* lsmtp_server_is_tls when on_close ran */
  char plain[LSMTP_NET_ADDR_MAX], implicit[LSMTP_NET_ADDR_MAX];
} ctx;

static void h_close(lsmtp_net_conn *conn, int reason, void *sud, void *ud) {
  (void)sud;
  ctx *x = ud;
  x->closed++;
  x->last_reason = reason;
  x->session_tls = lsmtp_server_is_tls(lsmtp_net_conn_session(conn));
}

static void h_tls(lsmtp_net_conn *conn, int status, const char *msg, void *sud,
                  void *ud) {
  (void)sud;
  ctx *x = ud;
  x->tls_calls++;
  x->tls_status = status;
  snprintf(x->tls_msg, sizeof x->tls_msg, "%s", msg);
  if (status == LSMTP_OK) {
    assert_true(lsmtp_tls_is_established(lsmtp_net_conn_tls(conn)));
    snprintf(x->tls_version, sizeof x->tls_version, "%s",
             lsmtp_tls_version(lsmtp_net_conn_tls(conn)));
  }
}

static void up(ctx *x, int with_tls, unsigned ext) {
  memset(x, 0, sizeof *x);
  assert_int_equal(lsmtp_loop_new(&x->loop, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_new(&x->cfg, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_hostname(x->cfg, "mx.test"), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_extensions(x->cfg, ext), LSMTP_OK);
  lsmtp_net_server_hooks hooks;
  memset(&hooks, 0, sizeof hooks);
  hooks.on_close = h_close;
  hooks.on_tls = h_tls;
  assert_int_equal(lsmtp_net_server_new(&x->ns, x->loop, x->cfg, NULL, &hooks, x),
                   LSMTP_OK);
  assert_int_equal(lsmtp_net_server_listen(x->ns, "127.0.0.1:0", x->plain,
                                           sizeof x->plain),
                   LSMTP_OK);
  if (!with_tls) return;
  assert_int_equal(lsmtp_tls_config_new(&x->tls, NULL, LSMTP_TLS_SERVER), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_cert_files(x->tls, cert("server.pem"),
                                                   cert("server.key"), NULL),
                   LSMTP_OK);
  assert_int_equal(lsmtp_net_server_set_tls(x->ns, x->tls), LSMTP_OK);
  assert_int_equal(lsmtp_net_server_listen_flags(x->ns, "127.0.0.1:0",
                                                 LSMTP_NET_LISTEN_TLS, x->implicit,
                                                 sizeof x->implicit),
                   LSMTP_OK);
}

static void down(ctx *x) {
  lsmtp_net_server_del(x->ns);
  lsmtp_loop_del(x->loop);
  lsmtp_server_config_del(x->cfg);
  lsmtp_tls_config_del(x->tls);
}

static void spin(ctx *x, unsigned ms) {
  uint64_t start = lsmtp__monotonic_ms();
  while (lsmtp__monotonic_ms() - start < ms)
    assert_int_equal(lsmtp_loop_run_once(x->loop, 5), LSMTP_OK);
}

/* ---- the client side: a socket and an lsmtp_tls, pumped by hand ---- */

typedef struct client {
  int fd;
  lsmtp_tls_config *cfg;
  lsmtp_tls *tls;
  char in[32768]; /* ciphertext read, not yet taken by the filter */
  size_t inlen;
  int eof;
} client;

static int connect_to(const char *addr) {
  struct sockaddr_storage ss;
  socklen_t len;
  assert_int_equal(lsmtp_net_addr_parse(addr, &ss, &len), LSMTP_OK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
  return fd;
}

static void client_tls(client *c) {
  assert_int_equal(lsmtp_tls_config_new(&c->cfg, NULL, LSMTP_TLS_CLIENT), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_ca_file(c->cfg, cert("ca.pem")), LSMTP_OK);
  assert_int_equal(lsmtp_tls_new(&c->tls, c->cfg, "localhost"), LSMTP_OK);
}

static void client_free(client *c) {
  lsmtp_tls_del(c->tls);
  lsmtp_tls_config_del(c->cfg);
  if (c->fd >= 0) close(c->fd);
}

/* One round: the server's loop, our ciphertext out, theirs in. */
static void pump(ctx *x, client *c) {
  assert_int_equal(lsmtp_loop_run_once(x->loop, 5), LSMTP_OK);
  const char *p;
  size_t k;
  while ((k = lsmtp_tls_pending(c->tls, &p)) > 0) {
    ssize_t n = send(c->fd, p, k, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;
    assert_int_equal(lsmtp_tls_consume(c->tls, (size_t)n), LSMTP_OK);
  }
  if (!c->eof && c->inlen < sizeof c->in) {
    ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, MSG_DONTWAIT);
    if (n > 0) c->inlen += (size_t)n;
    if (n == 0 || (n < 0 && errno == ECONNRESET)) c->eof = 1;
  }
  if (c->inlen) {
    size_t used = 0;
    assert_int_equal(lsmtp_tls_feed(c->tls, c->in, c->inlen, &used), LSMTP_OK);
    memmove(c->in, c->in + used, c->inlen - used);
    c->inlen -= used;
  }
}

static void handshake(ctx *x, client *c) {
  uint64_t start = lsmtp__monotonic_ms();
  int rc;
  while ((rc = lsmtp_tls_handshake(c->tls)) == LSMTP_INCOMPLETE) {
    pump(x, c);
    if (lsmtp__monotonic_ms() - start > 5000) fail_msg("handshake timed out");
  }
  assert_int_equal(rc, LSMTP_OK);
  assert_string_equal(lsmtp_tls_version(c->tls), "TLSv1.2");
}

static void say(ctx *x, client *c, const char *s) {
  assert_int_equal(lsmtp_tls_write(c->tls, s, strlen(s)), LSMTP_OK);
  pump(x, c);
}

/* Read decrypted replies until exactly want arrived (want NULL: until
 * close_notify; *status then gets LSMTP_DONE). */
static void expect(ctx *x, client *c, const char *want) {
  char got[4096];
  size_t len = 0;
  uint64_t start = lsmtp__monotonic_ms();
  for (;;) {
    size_t n = 0;
    int rc = lsmtp_tls_read(c->tls, got + len, sizeof got - 1 - len, &n);
    if (rc == LSMTP_OK) len += n;
    got[len] = '\0';
    if (want && len >= strlen(want)) break;
    if (!want && rc == LSMTP_DONE) break;
    if (rc != LSMTP_OK && rc != LSMTP_INCOMPLETE)
      fail_msg("TLS read: %s (got \"%s\")", lsmtp_status_name(rc), got);
    if (c->eof && c->inlen == 0 && rc == LSMTP_INCOMPLETE)
      fail_msg("connection closed; got \"%s\"", got);
    pump(x, c);
    if (lsmtp__monotonic_ms() - start > 5000)
      fail_msg("timed out waiting for \"%s\", got \"%s\"", want ? want : "close_notify",
               got);
  }
  if (want) assert_string_equal(got, want);
  else assert_int_equal(len, 0);
}

static void wait_eof(ctx *x, client *c) {
  uint64_t start = lsmtp__monotonic_ms();
  while (!c->eof) {
    pump(x, c);
    if (lsmtp__monotonic_ms() - start > 5000) fail_msg("server did not close");
  }
}

/* Plaintext: read exactly want from the socket (nothing more). */
static void expect_plain(ctx *x, int fd, const char *want) {
  char got[4096];
  size_t len = 0, wl = strlen(want);
  uint64_t start = lsmtp__monotonic_ms();
  while (len < wl) {
    assert_int_equal(lsmtp_loop_run_once(x->loop, 5), LSMTP_OK);
    ssize_t n = recv(fd, got + len, wl - len, MSG_DONTWAIT);
    if (n > 0) len += (size_t)n;
    if (n == 0) fail_msg("closed");
    if (lsmtp__monotonic_ms() - start > 5000) fail_msg("timed out");
  }
  got[len] = '\0';
  assert_string_equal(got, want);
}

static const char ehlo_tls[] =
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
    "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n"
    "250-BINARYMIME\r\n250-DSN\r\n250 HELP\r\n";

/* ---- tests ---- */

static void test_implicit_tls_greeting_after_handshake(void **state) {
  (void)state;
  ctx x;
  up(&x, 1, LSMTP_EXT_DEFAULT);
  client c = {.fd = connect_to(x.implicit)};
  client_tls(&c);
  /* Nothing in the clear before the handshake: the greeting waits. */
  spin(&x, 20);
  char b;
  assert_int_equal(recv(c.fd, &b, 1, MSG_DONTWAIT), -1);
  handshake(&x, &c);
  expect(&x, &c, "220 mx.test ESMTP\r\n");
  assert_int_equal(x.tls_calls, 1);
  assert_int_equal(x.tls_status, LSMTP_OK);
  assert_string_equal(x.tls_version, "TLSv1.2");
  say(&x, &c, "EHLO c.test\r\n");
  expect(&x, &c, ehlo_tls);
  /* QUIT: 221, then close_notify, then the socket closes. */
  say(&x, &c, "QUIT\r\n");
  expect(&x, &c, "221 2.0.0 Bye\r\n");
  expect(&x, &c, NULL);
  wait_eof(&x, &c);
  spin(&x, 10);
  assert_int_equal(x.closed, 1);
  assert_int_equal(x.last_reason, LSMTP_OK);
  assert_true(x.session_tls);
  client_free(&c);
  down(&x);
}

static void test_starttls_drops_injected_plaintext(void **state) {
  (void)state;
  ctx x;
  up(&x, 1, LSMTP_EXT_DEFAULT | LSMTP_EXT_STARTTLS);
  client c = {.fd = connect_to(x.plain)};
  expect_plain(&x, c.fd, "220 mx.test ESMTP\r\n");
  const char *s = "EHLO c.test\r\n";
  assert_int_equal(send(c.fd, s, strlen(s), 0), (ssize_t)strlen(s));
  expect_plain(&x, c.fd,
               "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
               "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
               "250-CHUNKING\r\n250-BINARYMIME\r\n250-DSN\r\n250-STARTTLS\r\n"
               "250 HELP\r\n");
  /* The injection: a command pipelined behind STARTTLS in one write. */
  s = "STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\n";
  assert_int_equal(send(c.fd, s, strlen(s), 0), (ssize_t)strlen(s));
  expect_plain(&x, c.fd, "220 2.0.0 Ready to start TLS\r\n");
  spin(&x, 20);
  char b;
  assert_int_equal(recv(c.fd, &b, 1, MSG_DONTWAIT), -1); /* nothing more */
  client_tls(&c);
  handshake(&x, &c);
  /* The first reply under TLS answers what we send now: the session
   * forgot EHLO (503 to MAIL) and never saw the injected MAIL. */
  say(&x, &c, "MAIL FROM:<good@x.test>\r\n");
  expect(&x, &c, "503 5.5.1 Error: send HELO/EHLO first\r\n");
  say(&x, &c, "EHLO c.test\r\n");
  expect(&x, &c, ehlo_tls); /* no STARTTLS any more */
  assert_int_equal(x.tls_calls, 1);
  assert_int_equal(x.tls_status, LSMTP_OK);
  /* The client goes away without QUIT or close_notify. */
  close(c.fd);
  c.fd = -1;
  spin(&x, 20);
  assert_int_equal(x.closed, 1);
  assert_int_equal(x.last_reason, LSMTP_ERR_CLOSED);
  assert_true(x.session_tls);
  client_free(&c);
  down(&x);
}

static void test_handshake_failure_and_timeout(void **state) {
  (void)state;
  ctx x;
  up(&x, 1, LSMTP_EXT_DEFAULT);
  /* A plaintext client on the TLS port: the handshake fails, no reply. */
  int fd = connect_to(x.implicit);
  const char *s = "EHLO plain.test\r\n";
  assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s));
  spin(&x, 50);
  assert_int_equal(x.closed, 1);
  assert_int_equal(x.last_reason, LSMTP_ERR_TLS);
  assert_int_equal(x.tls_calls, 1);
  assert_int_equal(x.tls_status, LSMTP_ERR_TLS);
  assert_non_null(strstr(x.tls_msg, "handshake"));
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  assert_true(n <= 0 || buf[0] == 0x15); /* EOF or a TLS alert record */
  close(fd);
  /* A client that never starts its handshake is dropped on time. */
  lsmtp_net_server_set_tls_timeout(x.ns, 60);
  fd = connect_to(x.implicit);
  spin(&x, 30);
  assert_int_equal(x.closed, 1);
  spin(&x, 100);
  assert_int_equal(x.closed, 2);
  assert_int_equal(x.last_reason, LSMTP_ERR_TIMEOUT);
  assert_int_equal(x.tls_calls, 2);
  assert_int_equal(x.tls_status, LSMTP_ERR_TIMEOUT);
  assert_int_equal(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  down(&x);
}

static void test_starttls_without_tls_config(void **state) {
  (void)state;
  ctx x;
  up(&x, 0, LSMTP_EXT_DEFAULT | LSMTP_EXT_STARTTLS);
  /* No configuration: implicit-TLS listeners cannot be made either. */
  assert_int_equal(lsmtp_net_server_listen_flags(x.ns, "127.0.0.1:0",
                                                 LSMTP_NET_LISTEN_TLS, NULL, 0),
                   LSMTP_ERR_STATE);
  assert_int_equal(lsmtp_net_server_listen_flags(x.ns, "127.0.0.1:0", 0x80u, NULL, 0),
                   LSMTP_ERR_INVALID);
  int fd = connect_to(x.plain);
  expect_plain(&x, fd, "220 mx.test ESMTP\r\n");
  const char *s = "EHLO c.test\r\nSTARTTLS\r\n";
  assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s));
  spin(&x, 50);
  assert_int_equal(x.closed, 1);
  assert_int_equal(x.last_reason, LSMTP_ERR_UNSUPPORTED);
  close(fd);
  down(&x);
}

static int made_cert_dir; /* ours to remove at the end */

static int make_certs(void) {
  const char *dir = getenv("LSMTP_TEST_CERTS");
  if (dir && *dir) {
    snprintf(cert_dir, sizeof cert_dir, "%s", dir);
    return 0;
  }
  char tmpl[] = "/tmp/lsmtp-net-tls-XXXXXX";
  if (!mkdtemp(tmpl)) return -1;
  snprintf(cert_dir, sizeof cert_dir, "%s", tmpl);
  made_cert_dir = 1;
  char cmd[2600];
  snprintf(cmd, sizeof cmd, "bash '%s/certs/make-certs.sh' '%s' >/dev/null 2>&1",
           LSMTP_TEST_DATA_DIR, cert_dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest no_certs[] = {
      cmocka_unit_test(test_starttls_without_tls_config),
  };
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_implicit_tls_greeting_after_handshake),
      cmocka_unit_test(test_starttls_drops_injected_plaintext),
      cmocka_unit_test(test_handshake_failure_and_timeout),
      cmocka_unit_test(test_starttls_without_tls_config),
  };
  /* Without TLS in the build, or without openssl to make certificates,
   * only the checks that need no handshake can run. */
  if (!lsmtp_tls_available() || make_certs() != 0) {
    printf("note: %s; running the tests without a handshake only\n",
           lsmtp_tls_available() ? "cannot make test certificates" : "no TLS in this build");
    return cmocka_run_group_tests(no_certs, NULL, NULL);
  }
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  if (made_cert_dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cert_dir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
  }
  return rc;
}
