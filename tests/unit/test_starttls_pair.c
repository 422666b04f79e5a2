/* STARTTLS end to end in memory: an lsmtp_client and an lsmtp_server joined
 * by two byte queues ("wires"), each side with its own lsmtp_tls filter
 * once STARTTLS is accepted, as a host would drive them. The ciphertext
 * crosses in chunks of 1, 2, 3, 7, 100 and 65536 bytes, so every record
 * and handshake message is split at every byte boundary. Also: response
 * injection against the client, command injection against the server, and
 * the certificates the client must refuse. Certificates come from
 * tests/certs/make-certs.sh (env LSMTP_TEST_CERTS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lsmtp/client.h>
#include <lsmtp/server.h>
#include <lsmtp/tls.h>

static char cert_dir[1024];

static const char *cert(const char *name) {
  static char path[2][1200];
  static int which;
  which ^= 1;
  snprintf(path[which], sizeof path[which], "%s/%s", cert_dir, name);
  return path[which];
}

/* ---- a wire: bytes written by one side, not yet read by the other ---- */

typedef struct wire {
  char *d;
  size_t len, cap;
  char *log; /* everything that ever crossed, for "no plaintext" checks */
  size_t log_len, log_cap;
} wire;

static void grow(char **d, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 1024;
  while (c < need)
    c *= 2;
  *d = realloc(*d, c);
  assert_non_null(*d);
  *cap = c;
}

static void wire_put(wire *w, const char *p, size_t n) {
  grow(&w->d, &w->cap, w->len + n);
  memcpy(w->d + w->len, p, n);
  w->len += n;
  grow(&w->log, &w->log_cap, w->log_len + n + 1);
  memcpy(w->log + w->log_len, p, n);
  w->log_len += n;
  w->log[w->log_len] = '\0';
}

static void wire_take(wire *w, size_t n) {
  memmove(w->d, w->d + n, w->len - n);
  w->len -= n;
}

static void wire_free(wire *w) {
  free(w->d);
  free(w->log);
}

static int wire_has(const wire *w, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= w->log_len; i++)
    if (memcmp(w->log + i, s, n) == 0) return 1;
  return 0;
}

/* ---- the two hosts ---- */

typedef struct pair {
  /* configuration of the run */
  const char *srv_cert, *srv_key, *name;
  int verify;
  size_t chunk;
  /* client */
  lsmtp_client *cli;
  lsmtp_tls_config *ccfg;
  lsmtp_tls *ctls;
  int c_go, c_up, c_tls_rc;
  int c_auth_early_rc, auth_status, msg_status, closed_status, closed;
  int step; /* the client's script: 0 STARTTLS, 1 AUTH, 2 message, 3 QUIT */
  size_t body_off;
  /* server */
  lsmtp_server_config *scfg_smtp;
  lsmtp_server *srv;
  lsmtp_tls_config *scfg;
  lsmtp_tls *stls;
  int s_up;
  char got[4096];
  size_t got_len;
  int auths;
  /* the network */
  wire c2s, s2c;
} pair;

static const char body[] = "Subject: over TLS\r\n\r\nline one\r\n.dot line\r\n";
static const char body_on_wire[] = "Subject: over TLS\r\n\r\nline one\r\n..dot line\r\n";

/* -- client callbacks -- */

static int body_read(void *ud, char *buf, size_t cap, size_t *len) {
  pair *p = ud;
  size_t left = sizeof body - 1 - p->body_off;
  *len = left < cap ? left : cap;
  memcpy(buf, body + p->body_off, *len);
  p->body_off += *len;
  return *len ? LSMTP_OK : LSMTP_DONE;
}

static int c_ready(void *ud) {
  pair *p = ud;
  switch (p->step++) {
  case 0: {
    /* Credentials never go out before TLS. */
    lsmtp_sasl_credentials cr = {.username = "user", .password = "pass word"};
    p->c_auth_early_rc = lsmtp_client_auth(p->cli, LSMTP_SASL_PLAIN, &cr);
    return lsmtp_client_starttls(p->cli);
  }
  case 1: {
    assert_false(lsmtp_client_extensions(p->cli) & LSMTP_EXT_STARTTLS);
    lsmtp_sasl_credentials cr = {.username = "user", .password = "pass word"};
    return lsmtp_client_auth(p->cli, LSMTP_SASL_PLAIN, &cr);
  }
  case 2: {
    static const lsmtp_client_rcpt rc[] = {{.address = "rcpt@example.org"}};
    lsmtp_client_message m = {
        .reverse_path = "from@example.net", .rcpts = rc, .n_rcpts = 1, .read = body_read};
    return lsmtp_client_send(p->cli, &m);
  }
  default:
    return lsmtp_client_quit(p->cli);
  }
}

static int c_starttls(void *ud, int status, const lsmtp_reply *r) {
  pair *p = ud;
  (void)r;
  if (status == LSMTP_OK) p->c_go = 1;
  return 0;
}

static int c_auth_done(void *ud, int status, const lsmtp_reply *r) {
  (void)r;
  ((pair *)ud)->auth_status = status;
  return 0;
}

static int c_message_done(void *ud, int status, const lsmtp_reply *r) {
  (void)r;
  ((pair *)ud)->msg_status = status;
  return 0;
}

static void c_closed(void *ud, int status, const lsmtp_reply *r) {
  (void)r;
  pair *p = ud;
  p->closed = 1;
  p->closed_status = status;
}

/* -- server callbacks -- */

static int s_auth(lsmtp_server *srv, const char *mech, const char *authzid, const char *authcid,
                  const char *password, size_t password_len, void *ud) {
  (void)srv;
  (void)authzid;
  pair *p = ud;
  p->auths++;
  assert_string_equal(mech, "PLAIN");
  return strcmp(authcid, "user") == 0 && password_len == 9 && memcmp(password, "pass word", 9) == 0
             ? LSMTP_OK
             : LSMTP_ERR_AUTH;
}

static int s_chunk(lsmtp_server *srv, const char *data, size_t len, void *ud) {
  (void)srv;
  pair *p = ud;
  assert_true(p->got_len + len < sizeof p->got);
  memcpy(p->got + p->got_len, data, len);
  p->got_len += len;
  return LSMTP_OK;
}

/* -- setup -- */

static void pair_init(pair *p, const char *crt, const char *key, const char *name, int verify,
                      size_t chunk) {
  memset(p, 0, sizeof *p);
  p->srv_cert = crt;
  p->srv_key = key;
  p->name = name;
  p->verify = verify;
  p->chunk = chunk;
  p->c_tls_rc = LSMTP_INCOMPLETE;

  lsmtp_client_config *cc;
  assert_int_equal(lsmtp_client_config_new(&cc, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_client_config_set_helo_name(cc, "client.example"), LSMTP_OK);
  lsmtp_client_callbacks cb = {.on_ready = c_ready,
                               .on_starttls = c_starttls,
                               .on_auth_done = c_auth_done,
                               .on_message_done = c_message_done,
                               .on_closed = c_closed};
  assert_int_equal(lsmtp_client_new(&p->cli, cc, &cb, p), LSMTP_OK);
  lsmtp_client_config_del(cc);

  assert_int_equal(lsmtp_server_config_new(&p->scfg_smtp, NULL), LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_hostname(p->scfg_smtp, "mx.example"), LSMTP_OK);
  assert_int_equal(
      lsmtp_server_config_set_extensions(p->scfg_smtp, LSMTP_EXT_DEFAULT | LSMTP_EXT_STARTTLS),
      LSMTP_OK);
  assert_int_equal(lsmtp_server_config_set_flags(p->scfg_smtp, LSMTP_SERVER_REQUIRE_TLS |
                                                                   LSMTP_SERVER_REQUIRE_AUTH),
                   LSMTP_OK);
  lsmtp_server_callbacks sb;
  memset(&sb, 0, sizeof sb);
  sb.on_auth = s_auth;
  sb.on_data_chunk = s_chunk;
  assert_int_equal(lsmtp_server_new(&p->srv, p->scfg_smtp, &sb, p), LSMTP_OK);

  assert_int_equal(lsmtp_tls_config_new(&p->scfg, NULL, LSMTP_TLS_SERVER), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_cert_files(p->scfg, cert(crt), cert(key), NULL), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_new(&p->ccfg, NULL, LSMTP_TLS_CLIENT), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_ca_file(p->ccfg, cert("ca.pem")), LSMTP_OK);
  assert_int_equal(lsmtp_tls_config_set_verify(p->ccfg, verify), LSMTP_OK);
}

static void pair_free(pair *p) {
  lsmtp_client_del(p->cli);
  lsmtp_server_del(p->srv);
  lsmtp_tls_del(p->ctls);
  lsmtp_tls_del(p->stls);
  lsmtp_tls_config_del(p->ccfg);
  lsmtp_tls_config_del(p->scfg);
  lsmtp_server_config_del(p->scfg_smtp);
  wire_free(&p->c2s);
  wire_free(&p->s2c);
}

/* -- the client host -- */

static void client_feed_plain(pair *p, const char *d, size_t n) {
  size_t used = 0;
  (void)lsmtp_client_feed(p->cli, d, n, &used);
}

/* Returns the bytes taken from the wire. */
static size_t client_input(pair *p) {
  size_t n = p->s2c.len < p->chunk ? p->s2c.len : p->chunk;
  if (n == 0) return 0;
  if (!p->ctls) {
    client_feed_plain(p, p->s2c.d, n);
    wire_take(&p->s2c, n);
    return n;
  }
  size_t used = 0;
  if (lsmtp_tls_feed(p->ctls, p->s2c.d, n, &used) != LSMTP_OK) { /* failed: hang up */
    wire_take(&p->s2c, n);
    return n;
  }
  wire_take(&p->s2c, used);
  if (p->c_up) {
    char buf[512];
    size_t got;
    while (lsmtp_tls_read(p->ctls, buf, sizeof buf, &got) == LSMTP_OK)
      client_feed_plain(p, buf, got);
  }
  return used;
}

static void client_output(pair *p) {
  if (p->c_go) { /* after the feed that brought the 220 */
    p->c_go = 0;
    assert_int_equal(lsmtp_tls_new(&p->ctls, p->ccfg, p->name), LSMTP_OK);
  }
  if (p->ctls && !p->c_up && p->c_tls_rc == LSMTP_INCOMPLETE) {
    p->c_tls_rc = lsmtp_tls_handshake(p->ctls);
    if (p->c_tls_rc == LSMTP_OK) {
      p->c_up = 1;
      assert_int_equal(lsmtp_client_tls_started(p->cli), LSMTP_OK);
    }
  }
  const char *d;
  size_t n;
  while ((n = lsmtp_client_pending(p->cli, &d)) > 0) {
    if (p->ctls) {
      assert_true(p->c_up); /* nothing in the clear once TLS began */
      assert_int_equal(lsmtp_tls_write(p->ctls, d, n), LSMTP_OK);
    } else {
      wire_put(&p->c2s, d, n);
    }
    lsmtp_client_consume(p->cli, n);
  }
  if (p->ctls && (n = lsmtp_tls_pending(p->ctls, &d)) > 0) {
    wire_put(&p->c2s, d, n);
    assert_int_equal(lsmtp_tls_consume(p->ctls, n), LSMTP_OK);
  }
}

/* -- the server host -- */

static void server_flush_plain(pair *p) {
  const char *d;
  size_t n;
  while ((n = lsmtp_server_pending(p->srv, &d)) > 0) {
    if (p->stls)
      assert_int_equal(lsmtp_tls_write(p->stls, d, n), LSMTP_OK);
    else
      wire_put(&p->s2c, d, n);
    assert_int_equal(lsmtp_server_consume(p->srv, n), LSMTP_OK);
  }
}

static void server_feed_plain(pair *p, const char *d, size_t n) {
  size_t used = 0;
  int rc = lsmtp_server_feed(p->srv, d, n, &used);
  assert_true(rc == LSMTP_OK || rc == LSMTP_PAUSED || rc == LSMTP_DONE);
  if (lsmtp_server_starttls_pending(p->srv) && !p->stls) {
    /* The 220 leaves in the clear; whatever else was read is dropped. */
    server_flush_plain(p);
    assert_int_equal(lsmtp_tls_new(&p->stls, p->scfg, NULL), LSMTP_OK);
  }
}

static size_t server_input(pair *p) {
  size_t n = p->c2s.len < p->chunk ? p->c2s.len : p->chunk;
  if (n == 0) return 0;
  if (!p->stls) {
    server_feed_plain(p, p->c2s.d, n);
    wire_take(&p->c2s, n);
    return n;
  }
  size_t used = 0;
  if (lsmtp_tls_feed(p->stls, p->c2s.d, n, &used) != LSMTP_OK) { /* failed: hang up */
    wire_take(&p->c2s, n);
    return n;
  }
  wire_take(&p->c2s, used);
  if (!p->s_up) {
    int rc = lsmtp_tls_handshake(p->stls);
    if (rc == LSMTP_OK) {
      p->s_up = 1;
      assert_int_equal(
          lsmtp_server_tls_started(p->srv, lsmtp_tls_version(p->stls), lsmtp_tls_cipher(p->stls)),
          LSMTP_OK);
    }
  }
  if (p->s_up) {
    char buf[512];
    size_t got;
    while (lsmtp_tls_read(p->stls, buf, sizeof buf, &got) == LSMTP_OK)
      server_feed_plain(p, buf, got);
  }
  return used;
}

static void server_output(pair *p) {
  if (p->stls && !p->s_up) (void)lsmtp_tls_handshake(p->stls); /* may have output */
  if (!p->stls || p->s_up) server_flush_plain(p);
  const char *d;
  size_t n;
  if (p->stls && (n = lsmtp_tls_pending(p->stls, &d)) > 0) {
    wire_put(&p->s2c, d, n);
    assert_int_equal(lsmtp_tls_consume(p->stls, n), LSMTP_OK);
  }
}

/* Run until nothing moves. */
static void run(pair *p) {
  assert_int_equal(lsmtp_server_start(p->srv), LSMTP_OK);
  for (int round = 0; round < 1000000; round++) {
    server_output(p);
    client_output(p);
    size_t moved = client_input(p) + server_input(p);
    if (moved == 0 && p->c2s.len == 0 && p->s2c.len == 0) {
      server_output(p);
      client_output(p);
      if (p->c2s.len == 0 && p->s2c.len == 0) return;
    }
  }
  fail_msg("the pair never settled");
}

/* ---- tests ---- */

static void test_full_dialogue_every_chunk_size(void **state) {
  (void)state;
  static const size_t chunks[] = {1, 2, 3, 7, 100, 65536};
  for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
    pair p;
    pair_init(&p, "server.pem", "server.key", "localhost", 1, chunks[i]);
    run(&p);
    assert_int_equal(p.c_auth_early_rc, LSMTP_ERR_INSECURE);
    assert_int_equal(p.c_tls_rc, LSMTP_OK);
    assert_int_equal(p.auth_status, LSMTP_OK);
    assert_int_equal(p.msg_status, LSMTP_OK);
    assert_true(p.closed);
    assert_int_equal(p.closed_status, LSMTP_OK);
    assert_int_equal(p.auths, 1);
    assert_true(lsmtp_server_is_tls(p.srv));
    assert_string_equal(lsmtp_server_tls_version(p.srv), "TLSv1.2");
    assert_string_equal(lsmtp_tls_version(p.ctls), "TLSv1.2");
    assert_int_equal(p.got_len, strlen(body));
    assert_memory_equal(p.got, body, p.got_len);
    /* In the clear: greeting, EHLO, STARTTLS and its 220 only. */
    assert_true(wire_has(&p.c2s, "EHLO client.example\r\nSTARTTLS\r\n"));
    assert_false(wire_has(&p.c2s, "AUTH"));
    assert_false(wire_has(&p.c2s, "dXNlcg"));   /* base64 of "user" at any offset */
    assert_false(wire_has(&p.c2s, "AHVzZXIA")); /* "\0user\0" */
    assert_false(wire_has(&p.c2s, "MAIL FROM"));
    assert_false(wire_has(&p.c2s, body_on_wire));
    assert_false(wire_has(&p.s2c, "235 2.7.0")); /* long enough not to occur in ciphertext by chance */
    assert_true(wire_has(&p.s2c, "220 2.0.0 Ready to start TLS\r\n"));
    pair_free(&p);
  }
}

/* The client's certificate checks, through the session: the handshake is
 * refused, tls_started is never called, nothing else leaves in the clear. */
static void expect_refused(const char *crt, const char *key, const char *name) {
  static const size_t chunks[] = {1, 65536};
  for (size_t i = 0; i < 2; i++) {
    pair p;
    pair_init(&p, crt, key, name, 1, chunks[i]);
    run(&p);
    assert_int_equal(p.c_tls_rc, LSMTP_ERR_CERT);
    assert_false(p.c_up);
    assert_int_equal(lsmtp_client_state_get(p.cli), LSMTP_CLIENT_STARTTLS);
    assert_int_equal(p.auths, 0);
    assert_false(wire_has(&p.c2s, "AUTH"));
    assert_false(wire_has(&p.c2s, "MAIL"));
    assert_false(lsmtp_server_is_tls(p.srv));
    pair_free(&p);
  }
  /* Verification off: the same server is accepted and the message goes. */
  pair p;
  pair_init(&p, crt, key, NULL, 0, 65536);
  run(&p);
  assert_int_equal(p.c_tls_rc, LSMTP_OK);
  assert_int_equal(p.msg_status, LSMTP_OK);
  assert_int_equal(p.closed_status, LSMTP_OK);
  assert_memory_equal(p.got, body, strlen(body));
  pair_free(&p);
}

static void test_wrong_name_refused(void **state) {
  (void)state;
  expect_refused("wrongname.pem", "wrongname.key", "localhost");
  /* and the right certificate under another name */
  expect_refused("server.pem", "server.key", "other.example");
}

static void test_self_signed_refused(void **state) {
  (void)state;
  expect_refused("selfsigned.pem", "selfsigned.key", "localhost");
}

static void test_expired_refused(void **state) {
  (void)state;
  expect_refused("expired.pem", "expired.key", "localhost");
}

/* RFC 3207 §6 response injection: "250 injected" rides behind the 220 in
 * one write. Fed whole, byte by byte, and split at every position, the
 * client fails and has nothing more to send. */
static void test_response_injection(void **state) {
  (void)state;
  static const char inj[] = "220 go ahead\r\n250 injected\r\n";
  const size_t n = sizeof inj - 1;
  for (size_t cut = 0; cut <= n + 1; cut++) { /* 0: the 220 alone; n: whole; n+1: bytewise */
    pair p;
    pair_init(&p, "server.pem", "server.key", "localhost", 1, 65536);
    client_feed_plain(&p, "220 mx ESMTP\r\n", 14);
    client_output(&p);
    client_feed_plain(&p, "250-mx\r\n250 STARTTLS\r\n", 22);
    client_output(&p);
    assert_string_equal(p.c2s.log, "EHLO client.example\r\nSTARTTLS\r\n");
    if (cut == 0) {
      /* The 220 alone is fine: the host would start TLS now. */
      client_feed_plain(&p, inj, 14);
      assert_int_equal(lsmtp_client_state_get(p.cli), LSMTP_CLIENT_STARTTLS);
      assert_int_equal(p.c_go, 1);
      pair_free(&p);
      continue;
    }
    if (cut == n + 1) {
      for (size_t i = 0; i < n; i++)
        client_feed_plain(&p, inj + i, 1);
    } else {
      client_feed_plain(&p, inj, cut);
      if (cut < n) client_feed_plain(&p, inj + cut, n - cut);
    }
    assert_int_equal(lsmtp_client_state_get(p.cli), LSMTP_CLIENT_FAILED);
    assert_int_equal(lsmtp_client_error(p.cli), LSMTP_ERR_PROTOCOL);
    assert_true(p.closed);
    const char *d;
    assert_int_equal(lsmtp_client_pending(p.cli, &d), 0);
    assert_int_equal(lsmtp_client_tls_started(p.cli), LSMTP_ERR_FATAL);
    p.c_go = 0; /* a careful host checks the state before starting TLS */
    client_output(&p);
    assert_string_equal(p.c2s.log, "EHLO client.example\r\nSTARTTLS\r\n");
    pair_free(&p);
  }
}

/* Command injection against the server: "MAIL" pipelined behind STARTTLS
 * in plaintext is thrown away, never answered, also after the handshake.
 * Fed whole and split at every position. */
static void test_command_injection(void **state) {
  (void)state;
  static const char inj[] = "STARTTLS\r\nMAIL FROM:<evil@x>\r\n";
  const size_t n = sizeof inj - 1;
  for (size_t cut = 1; cut <= n; cut++) {
    pair p;
    pair_init(&p, "server.pem", "server.key", "localhost", 1, 65536);
    assert_int_equal(lsmtp_server_start(p.srv), LSMTP_OK);
    server_feed_plain(&p, "EHLO evil.example\r\n", 19);
    server_flush_plain(&p);
    size_t before = p.s2c.len;
    server_feed_plain(&p, inj, cut);
    if (cut < n) server_feed_plain(&p, inj + cut, n - cut);
    assert_true(lsmtp_server_starttls_pending(p.srv) || p.stls != NULL);
    assert_int_equal(lsmtp_server_discarded(p.srv), strlen("MAIL FROM:<evil@x>\r\n"));
    /* The only new plaintext is the 220. */
    assert_string_equal(p.s2c.log + before, "220 2.0.0 Ready to start TLS\r\n");
    assert_int_equal(p.s2c.len - before, 30);
    /* A real TLS client now completes the handshake and says EHLO. */
    wire_take(&p.s2c, p.s2c.len);
    lsmtp_tls *t;
    assert_int_equal(lsmtp_tls_new(&t, p.ccfg, "localhost"), LSMTP_OK);
    char got[4096];
    size_t got_len = 0;
    int sent_ehlo = 0;
    for (int round = 0; round < 1000; round++) {
      int hs = lsmtp_tls_handshake(t);
      assert_true(hs == LSMTP_OK || hs == LSMTP_INCOMPLETE);
      if (hs == LSMTP_OK && !sent_ehlo) {
        assert_int_equal(lsmtp_tls_write(t, "EHLO good.example\r\nNOOP\r\n", 25), LSMTP_OK);
        sent_ehlo = 1;
      }
      const char *d;
      size_t k = lsmtp_tls_pending(t, &d);
      if (k) {
        wire_put(&p.c2s, d, k);
        assert_int_equal(lsmtp_tls_consume(t, k), LSMTP_OK);
      }
      server_input(&p);
      server_output(&p);
      if (p.s2c.len) {
        size_t used;
        assert_int_equal(lsmtp_tls_feed(t, p.s2c.d, p.s2c.len, &used), LSMTP_OK);
        wire_take(&p.s2c, used);
      }
      size_t r;
      while (lsmtp_tls_read(t, got + got_len, sizeof got - 1 - got_len, &r) == LSMTP_OK)
        got_len += r;
      got[got_len] = '\0';
      if (strstr(got, "250 2.0.0 Ok\r\n") || strstr(got, "250 2.0.0 OK\r\n")) break;
    }
    /* EHLO's reply, then NOOP's: nothing ever answered the MAIL. */
    assert_true(strncmp(got, "250-mx.example", 14) == 0);
    assert_null(strstr(got, "2.1.0"));
    assert_null(strstr(got, "evil"));
    assert_null(strstr(got, "503"));
    const char *noop = strstr(got, "\r\n250 ");
    assert_non_null(noop);
    assert_non_null(strstr(noop + 2, "\r\n250 2.0.0"));
    assert_null(lsmtp_server_mail_from(p.srv));
    lsmtp_tls_del(t);
    pair_free(&p);
  }
}

int main(void) {
  if (!lsmtp_tls_available()) {
    fprintf(stderr, "TLS is not built in\n");
    return 77;
  }
  const char *dir = getenv("LSMTP_TEST_CERTS");
  if (!dir || !*dir) {
    fprintf(stderr, "LSMTP_TEST_CERTS is not set (run through ctest)\n");
    return 1;
  }
  snprintf(cert_dir, sizeof cert_dir, "%s", dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_dialogue_every_chunk_size),
      cmocka_unit_test(test_wrong_name_refused),
      cmocka_unit_test(test_self_signed_refused),
      cmocka_unit_test(test_expired_refused),
      cmocka_unit_test(test_response_injection),
      cmocka_unit_test(test_command_injection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
