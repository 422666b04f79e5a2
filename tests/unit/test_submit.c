/* lsmtp_submit and lsmtp_tcp_connect against an in-process scripted SMTP
 * server on a loopback socket. The server runs in a thread, answers each
 * command from a per-test script, records every byte it reads (and where
 * each read() ended) so the tests can compare the exact dialogue, and can
 * stall or hang up on cue to test timeouts and lost connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lsmtp/submit.h>
#include <lsmtp/tls.h>

#include "internal.h"

/* ---- the scripted server ---- */

#define RX_MAX 262144
#define MAX_READS 256

typedef struct script {
  const char *greeting;   /* default "220 test ESMTP" */
  const char *ehlo;       /* whole reply; default: PIPELINING, 8BITMIME, SIZE */
  const char *auth[4];    /* replies to the AUTH line and each SASL line */
  const char *mail;       /* default "250 2.1.0 Ok" */
  const char *rcpt[8];    /* in order; default "250 2.1.5 Ok" */
  const char *data;       /* default "354 go" (or 554 with no valid rcpt) */
  const char *dot;        /* default "250 2.0.0 queued" */
  const char *starttls;   /* reply to STARTTLS; default "502 5.5.1 no" (the
                             server never speaks TLS itself) */
  const char *stall_on;   /* command prefix: read it, never answer */
  const char *close_on;   /* command prefix: hang up instead of answering */
  int accept_ms;          /* how long to wait for the client (default 5 s) */
} script;

typedef struct server {
  int lfd;
  unsigned port;
  pthread_t thread;
  script s;
  int connections;
  char rx[RX_MAX];
  size_t rx_len;
  size_t read_end[MAX_READS]; /* rx offsets where each read() ended */
  size_t reads;
} server;

static void say(int fd, const char *reply) {
  char line[1024];
  int n = snprintf(line, sizeof line, "%s\r\n", reply);
  /* A multi-line reply is given with "\n" between lines. */
  char out[2048];
  size_t o = 0;
  for (int i = 0; i < n && o + 2 < sizeof out; i++) {
    if (line[i] == '\n' && i > 0 && line[i - 1] != '\r') out[o++] = '\r';
    out[o++] = line[i];
  }
  (void)!send(fd, out, o, MSG_NOSIGNAL);
}

static int prefix(const char *line, const char *p) {
  return p && strncasecmp(line, p, strlen(p)) == 0;
}

static void *server_main(void *arg) {
  server *sv = arg;
  const script *s = &sv->s;
  struct pollfd p = {.fd = sv->lfd, .events = POLLIN, .revents = 0};
  if (poll(&p, 1, s->accept_ms ? s->accept_ms : 5000) <= 0) return NULL;
  int fd = accept(sv->lfd, NULL, NULL);
  if (fd < 0) return NULL;
  sv->connections++;
  say(fd, s->greeting ? s->greeting : "220 test ESMTP");
  size_t cur = 0, rcpt_i = 0, auth_i = 0, accepted = 0;
  int in_data = 0, in_auth = 0, stalled = 0;
  for (;;) {
    struct pollfd q = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&q, 1, 10000) <= 0) break;
    ssize_t n = recv(fd, sv->rx + sv->rx_len, RX_MAX - 1 - sv->rx_len, 0);
    if (n <= 0) break;
    sv->rx_len += (size_t)n;
    sv->rx[sv->rx_len] = '\0';
    if (sv->reads < MAX_READS) sv->read_end[sv->reads++] = sv->rx_len;
    if (stalled) continue;
    for (;;) {
      if (in_data) {
        /* The body ends with CRLF "." CRLF (or is just "." CRLF). */
        const char *start = sv->rx + cur;
        const char *end = NULL;
        if (strncmp(start, ".\r\n", 3) == 0) end = start;
        else {
          const char *e = strstr(start, "\r\n.\r\n");
          if (e) end = e + 2;
        }
        if (!end) break;
        cur = (size_t)(end - sv->rx) + 3;
        in_data = 0;
        say(fd, s->dot ? s->dot : "250 2.0.0 queued");
        continue;
      }
      char *nl = strstr(sv->rx + cur, "\r\n");
      if (!nl) break;
      char line[1024];
      size_t len = (size_t)(nl - (sv->rx + cur));
      if (len >= sizeof line) len = sizeof line - 1;
      memcpy(line, sv->rx + cur, len);
      line[len] = '\0';
      cur = (size_t)(nl - sv->rx) + 2;
      if (prefix(line, s->stall_on)) {
        stalled = 1;
        break;
      }
      if (prefix(line, s->close_on)) goto out;
      if (in_auth || prefix(line, "AUTH ")) {
        const char *r = auth_i < 4 && s->auth[auth_i] ? s->auth[auth_i] : "535 5.7.8 no";
        auth_i++;
        in_auth = r[0] == '3';
        say(fd, r);
      } else if (prefix(line, "EHLO ")) {
        say(fd, s->ehlo ? s->ehlo
                        : "250-test\n250-PIPELINING\n250-8BITMIME\n250-SIZE 1000000\n"
                          "250 ENHANCEDSTATUSCODES");
      } else if (prefix(line, "MAIL ")) {
        say(fd, s->mail ? s->mail : "250 2.1.0 Ok");
      } else if (prefix(line, "RCPT ")) {
        const char *r = rcpt_i < 8 && s->rcpt[rcpt_i] ? s->rcpt[rcpt_i] : "250 2.1.5 Ok";
        rcpt_i++;
        if (r[0] == '2') accepted++;
        say(fd, r);
      } else if (prefix(line, "DATA")) {
        const char *r = s->data ? s->data : accepted ? "354 go" : "554 5.5.1 no valid recipients";
        in_data = r[0] == '3';
        say(fd, r);
      } else if (prefix(line, "RSET")) {
        rcpt_i = accepted = 0;
        say(fd, "250 2.0.0 Ok");
      } else if (prefix(line, "STARTTLS")) {
        say(fd, s->starttls ? s->starttls : "502 5.5.1 no");
      } else if (prefix(line, "QUIT")) {
        say(fd, "221 2.0.0 Bye");
        goto out;
      } else {
        say(fd, "500 5.5.2 what?");
      }
    }
  }
out:
  close(fd);
  return NULL;
}

static server *server_start(const script *s, int family) {
  server *sv = calloc(1, sizeof *sv);
  assert_non_null(sv);
  if (s) sv->s = *s;
  sv->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(sv->lfd >= 0);
  int one = 1;
  setsockopt(sv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  }
  assert_int_equal(bind(sv->lfd, (struct sockaddr *)&ss, len), 0);
  assert_int_equal(listen(sv->lfd, 4), 0);
  assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&ss, &len), 0);
  sv->port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  assert_int_equal(pthread_create(&sv->thread, NULL, server_main, sv), 0);
  return sv;
}

static void server_stop(server *sv) {
  pthread_join(sv->thread, NULL);
  close(sv->lfd);
  free(sv);
}

/* A port nothing listens on (bound, then closed). */
static unsigned dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

/* ---- helpers ---- */

typedef struct logbuf {
  char text[65536];
  size_t len;
} logbuf;

static void log_cb(void *ud, lsmtp_submit_log_kind kind, const char *line) {
  logbuf *l = ud;
  static const char *const tag[] = {"* ", "C: ", "S: "};
  int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s%s\n", tag[kind], line);
  if (n > 0 && l->len + (size_t)n < sizeof l->text) l->len += (size_t)n;
}

static void base_opts(lsmtp_submit_options *o, const server *sv) {
  lsmtp_submit_options_init(o);
  o->host = "127.0.0.1";
  o->port = sv ? sv->port : 0;
  o->from = "a@example.org";
  o->helo_name = "client.example";
  o->timeout_ms = 5000;
}

static const char *const two_rcpts[] = {"b@example.net", "c@example.net"};
static const char msg_text[] = "Subject: hi\r\n\r\nhello\r\n";

static uint64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- tests ---- */

static void test_pipelined_success(void **state) {
  (void)state;
  server *sv = server_start(NULL, AF_INET);
  lsmtp_submit_options o;
  base_opts(&o, sv);
  logbuf lb = {.len = 0};
  o.log = log_cb;
  o.log_user_data = &lb;
  lsmtp_submit_source src = lsmtp_submit_source_buffer(msg_text, strlen(msg_text));
  lsmtp_submit_result *res = NULL;
  int rc = lsmtp_submit(&o, two_rcpts, 2, &src, &res);
  pthread_join(sv->thread, NULL);
  assert_int_equal(rc, LSMTP_OK);
  assert_non_null(res);
  assert_int_equal(lsmtp_submit_result_status(res), LSMTP_OK);
  assert_int_equal(lsmtp_submit_result_temporary(res), 0);
  assert_int_equal(lsmtp_submit_result_accepted(res), 2);
  assert_int_equal(lsmtp_submit_result_rcpt_count(res), 2);
  assert_string_equal(lsmtp_submit_result_rcpt_address(res, 1), "c@example.net");
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(lsmtp_submit_result_rcpt_status(res, i), LSMTP_OK);
    const lsmtp_reply *r = lsmtp_submit_result_rcpt_reply(res, i);
    assert_non_null(r);
    assert_int_equal(r->code, 250);
    assert_int_equal(r->enhanced.cls, 2);
    assert_int_equal(r->enhanced.subject, 1);
    assert_int_equal(r->enhanced.detail, 5);
    assert_string_equal(r->text, "Ok");
  }
  assert_null(lsmtp_submit_result_rcpt_reply(res, 2));
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 2), LSMTP_ERR_INVALID);
  const lsmtp_reply *fin = lsmtp_submit_result_reply(res);
  assert_non_null(fin);
  assert_int_equal(fin->code, 250);
  assert_string_equal(fin->text, "queued");
  assert_string_equal(lsmtp_submit_result_verb(res), ".");
  assert_string_equal(lsmtp_submit_result_detail(res), "");
  char peer[64];
  snprintf(peer, sizeof peer, "127.0.0.1:%u", sv->port);
  assert_string_equal(lsmtp_submit_result_peer(res), peer);
  /* The exact dialogue, SIZE= from the buffer's length. */
  char want[1024];
  snprintf(want, sizeof want,
           "EHLO client.example\r\n"
           "MAIL FROM:<a@example.org> SIZE=%zu\r\n"
           "RCPT TO:<b@example.net>\r\n"
           "RCPT TO:<c@example.net>\r\n"
           "DATA\r\n"
           "%s.\r\n"
           "QUIT\r\n",
           strlen(msg_text), msg_text);
  assert_string_equal(sv->rx, want);
  /* MAIL, both RCPTs and DATA arrived in one read: one write, one group. */
  const char *group = strstr(sv->rx, "MAIL ");
  size_t gstart = (size_t)(group - sv->rx), gend = (size_t)(strstr(sv->rx, "DATA\r\n") + 6 - sv->rx);
  int one_read = 0;
  for (size_t i = 0; i < sv->reads; i++)
    if (sv->read_end[i] == gend && (i == 0 || sv->read_end[i - 1] == gstart)) one_read = 1;
  assert_true(one_read);
  /* The log: the dialogue with the message summarised. */
  assert_non_null(strstr(lb.text, "C: MAIL FROM:<a@example.org> SIZE="));
  assert_non_null(strstr(lb.text, "S: 354 go\n"));
  char summary[64];
  snprintf(summary, sizeof summary, "C: <message: %zu bytes>\n", strlen(msg_text));
  assert_non_null(strstr(lb.text, summary));
  assert_null(strstr(lb.text, "hello"));
  assert_non_null(strstr(lb.text, "C: QUIT\nS: 221 2.0.0 Bye\n"));
  lsmtp_submit_result_del(res);
  close(sv->lfd);
  free(sv);
}

static int run_script(const script *s, const char *const *rcpts, size_t n,
                      lsmtp_submit_options *o, lsmtp_submit_result **res, server **out) {
  server *sv = server_start(s, AF_INET);
  lsmtp_submit_options local;
  if (!o) o = &local;
  if (o == &local || o->host == NULL) base_opts(o, sv);
  o->port = sv->port;
  lsmtp_submit_source src = lsmtp_submit_source_buffer(msg_text, strlen(msg_text));
  int rc = lsmtp_submit(o, rcpts, n, &src, res);
  pthread_join(sv->thread, NULL);
  close(sv->lfd);
  *out = sv;
  return rc;
}

static void test_some_refused(void **state) {
  (void)state;
  script s = {.rcpt = {"550 5.1.1 no such user", "250 2.1.5 Ok"}};
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 2, NULL, &res, &sv);
  assert_int_equal(rc, LSMTP_OK);
  assert_int_equal(lsmtp_submit_result_accepted(res), 1);
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_REFUSED);
  assert_int_equal(lsmtp_submit_result_rcpt_reply(res, 0)->code, 550);
  assert_string_equal(lsmtp_submit_result_rcpt_reply(res, 0)->text, "no such user");
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 1), LSMTP_OK);
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_all_refused(void **state) {
  (void)state;
  /* One permanent and one temporary refusal: try again later. The 554 to
   * the pipelined DATA is a consequence, not a refusal of its own. */
  script s = {.rcpt = {"550 5.1.1 no such user", "450 4.2.1 busy"}};
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 2, NULL, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_TEMPFAIL);
  assert_int_equal(lsmtp_submit_result_temporary(res), 1);
  assert_null(lsmtp_submit_result_reply(res));
  assert_string_equal(lsmtp_submit_result_detail(res), "no recipient was accepted");
  assert_int_equal(lsmtp_submit_result_accepted(res), 0);
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_REFUSED);
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 1), LSMTP_ERR_TEMPFAIL);
  assert_non_null(strstr(sv->rx, "DATA\r\n"));
  assert_null(strstr(sv->rx, "hello")); /* no body went out */
  lsmtp_submit_result_del(res);
  free(sv);

  script p = {.rcpt = {"550 5.1.1 no", "551 5.1.6 moved"}};
  rc = run_script(&p, two_rcpts, 2, NULL, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_REFUSED);
  assert_int_equal(lsmtp_submit_result_temporary(res), 0);
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_message_refused(void **state) {
  (void)state;
  script s = {.dot = "554 5.7.1 spam"};
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 1, NULL, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_REFUSED);
  assert_string_equal(lsmtp_submit_result_verb(res), ".");
  assert_int_equal(lsmtp_submit_result_reply(res)->code, 554);
  /* Its RCPT was fine, the message was not. */
  assert_int_equal(lsmtp_submit_result_rcpt_reply(res, 0)->code, 250);
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_REFUSED);
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "spam"));
  lsmtp_submit_result_del(res);
  free(sv);

  script m = {.mail = "451 4.3.0 try later"};
  rc = run_script(&m, two_rcpts, 1, NULL, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_TEMPFAIL);
  assert_string_equal(lsmtp_submit_result_verb(res), "MAIL");
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_TEMPFAIL);
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_greeting_refused(void **state) {
  (void)state;
  script s = {.greeting = "554 5.3.2 go away"};
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 1, NULL, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_REFUSED);
  assert_string_equal(lsmtp_submit_result_verb(res), "GREETING");
  assert_int_equal(lsmtp_submit_result_reply(res)->code, 554);
  assert_string_equal(sv->rx, "QUIT\r\n");
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_auth_plain_redacted(void **state) {
  (void)state;
  script s = {.ehlo = "250-test\n250-PIPELINING\n250 AUTH PLAIN LOGIN",
              .auth = {"235 2.7.0 ok"}};
  lsmtp_submit_options o;
  base_opts(&o, NULL);
  o.username = "user";
  o.password = "secret";
  o.allow_plaintext_auth = 1;
  logbuf lb = {.len = 0};
  o.log = log_cb;
  o.log_user_data = &lb;
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_OK);
  /* base64("\0user\0secret") */
  assert_non_null(strstr(sv->rx, "EHLO client.example\r\nAUTH PLAIN AHVzZXIAc2VjcmV0\r\nMAIL FROM:"));
  assert_non_null(strstr(lb.text, "C: AUTH PLAIN <redacted>\n"));
  assert_null(strstr(lb.text, "AHVzZXIAc2VjcmV0"));
  assert_null(strstr(lb.text, "secret"));
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_auth_login_redacted(void **state) {
  (void)state;
  script s = {.ehlo = "250-test\n250 AUTH LOGIN",
              .auth = {"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 ok"}};
  lsmtp_submit_options o;
  base_opts(&o, NULL);
  o.username = "user";
  o.password = "secret";
  o.auth_mech = LSMTP_SASL_LOGIN;
  o.allow_plaintext_auth = 1;
  logbuf lb = {.len = 0};
  o.log = log_cb;
  o.log_user_data = &lb;
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_OK);
  assert_non_null(strstr(sv->rx, "AUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0\r\nMAIL FROM:"));
  assert_non_null(strstr(lb.text, "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: <redacted>\n"
                                  "S: 334 UGFzc3dvcmQ6\nC: <redacted>\nS: 235 2.7.0 ok\n"));
  assert_null(strstr(lb.text, "dXNlcg=="));
  assert_null(strstr(lb.text, "c2VjcmV0"));
  /* Without PIPELINING the commands go one by one. */
  assert_non_null(strstr(lb.text, "C: MAIL FROM:<a@example.org>\nS: 250 2.1.0 Ok\n"
                                  "C: RCPT TO:<b@example.net>\nS: 250 2.1.5 Ok\nC: DATA\n"));
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_auth_refused(void **state) {
  (void)state;
  script s = {.ehlo = "250-test\n250 AUTH PLAIN", .auth = {"535 5.7.8 bad credentials"}};
  lsmtp_submit_options o;
  base_opts(&o, NULL);
  o.username = "user";
  o.password = "wrong";
  o.allow_plaintext_auth = 1;
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_AUTH);
  assert_int_equal(lsmtp_submit_result_temporary(res), 0);
  assert_string_equal(lsmtp_submit_result_verb(res), "AUTH");
  assert_int_equal(lsmtp_submit_result_reply(res)->code, 535);
  assert_null(strstr(sv->rx, "MAIL"));
  assert_non_null(strstr(sv->rx, "QUIT\r\n"));
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_AUTH);
  lsmtp_submit_result_del(res);
  free(sv);

  /* No AUTH offered: nothing is sent but QUIT. */
  script n = {.ehlo = "250-test\n250 PIPELINING"};
  base_opts(&o, NULL);
  o.username = "user";
  o.password = "pw";
  o.allow_plaintext_auth = 1;
  rc = run_script(&n, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_UNSUPPORTED);
  assert_string_equal(sv->rx, "EHLO client.example\r\nQUIT\r\n");
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "no AUTH"));
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_refused_before_connecting(void **state) {
  (void)state;
  /* Nothing here may connect; the server gives up after 300 ms. */
  script quick = {.accept_ms = 300};
  server *sv = server_start(&quick, AF_INET);
  lsmtp_submit_options o;
  base_opts(&o, sv);
  lsmtp_submit_source src = lsmtp_submit_source_buffer(msg_text, strlen(msg_text));
  lsmtp_submit_result *res = NULL;
  /* Credentials without TLS and without the opt-in. */
  o.username = "user";
  o.password = "pw";
  assert_int_equal(lsmtp_submit(&o, two_rcpts, 1, &src, &res), LSMTP_ERR_INSECURE);
  assert_int_equal(lsmtp_submit_result_status(res), LSMTP_ERR_INSECURE);
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_INSECURE);
  lsmtp_submit_result_del(res);
  /* TLS settings that cannot work: a result says why, nothing connects. */
  struct {
    lsmtp_submit_tls tls;
    int requiretls, no_verify;
    const char *name, *ca, *why;
  } bad[] = {
      /* an IP address cannot be verified by mbedTLS 2.28: a name is needed */
      {LSMTP_SUBMIT_TLS_STARTTLS, 0, 0, NULL, NULL, "tls_name"},
      {LSMTP_SUBMIT_TLS_IMPLICIT, 0, 0, "", NULL, "tls_name"},
      {LSMTP_SUBMIT_TLS_OPPORTUNISTIC, 0, 0, NULL, NULL, "tls_name"},
      {LSMTP_SUBMIT_TLS_NONE, 1, 0, NULL, NULL, "REQUIRETLS needs TLS"},
      {LSMTP_SUBMIT_TLS_STARTTLS, 1, 1, NULL, NULL, "certificate verified"},
      {LSMTP_SUBMIT_TLS_STARTTLS, 0, 0, "mail.example", "/nonexistent/ca.pem",
       "/nonexistent/ca.pem"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (bad[i].tls != LSMTP_SUBMIT_TLS_NONE && !lsmtp_tls_available()) continue;
    base_opts(&o, sv);
    o.tls = bad[i].tls;
    o.requiretls = bad[i].requiretls;
    o.tls_no_verify = bad[i].no_verify;
    o.tls_name = bad[i].name;
    o.tls_ca_file = bad[i].ca;
    assert_int_equal(lsmtp_submit(&o, two_rcpts, 1, &src, &res), LSMTP_ERR_INVALID);
    assert_non_null(res);
    assert_int_equal(lsmtp_submit_result_status(res), LSMTP_ERR_INVALID);
    assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_INVALID);
    if (!strstr(lsmtp_submit_result_detail(res), bad[i].why))
      fail_msg("case %zu: detail \"%s\" lacks \"%s\"", i, lsmtp_submit_result_detail(res),
               bad[i].why);
    lsmtp_submit_result_del(res);
  }
  if (!lsmtp_tls_available()) {
    base_opts(&o, sv);
    o.tls = LSMTP_SUBMIT_TLS_IMPLICIT;
    o.tls_no_verify = 1;
    assert_int_equal(lsmtp_submit(&o, two_rcpts, 1, &src, &res), LSMTP_ERR_UNSUPPORTED);
    assert_non_null(strstr(lsmtp_submit_result_detail(res), "no TLS"));
    lsmtp_submit_result_del(res);
  }
  /* An unknown mode is a bad argument. */
  base_opts(&o, sv);
  o.tls = (lsmtp_submit_tls)42;
  assert_int_equal(lsmtp_submit(&o, two_rcpts, 1, &src, &res), LSMTP_ERR_INVALID);
  assert_null(res);
  /* Bad arguments: no result at all. */
  base_opts(&o, sv);
  assert_int_equal(lsmtp_submit(&o, two_rcpts, 0, &src, &res), LSMTP_ERR_INVALID);
  assert_null(res);
  o.host = NULL;
  assert_int_equal(lsmtp_submit(&o, two_rcpts, 1, &src, &res), LSMTP_ERR_INVALID);
  assert_null(res);
  assert_int_equal(lsmtp_submit(NULL, two_rcpts, 1, &src, &res), LSMTP_ERR_INVALID);
  lsmtp_submit_result_del(NULL);
  /* The server thread saw no connection; let it give up. */
  pthread_join(sv->thread, NULL);
  assert_int_equal(sv->connections, 0);
  struct pollfd p = {.fd = sv->lfd, .events = POLLIN, .revents = 0};
  assert_int_equal(poll(&p, 1, 0), 0); /* nobody waiting in the backlog either */
  close(sv->lfd);
  free(sv);
}

/* ---- TLS modes against a server that never speaks TLS ---- */

static void tls_opts(lsmtp_submit_options *o, lsmtp_submit_tls mode) {
  base_opts(o, NULL);
  o->tls = mode;
  o->tls_no_verify = 1; /* 127.0.0.1 has no name to verify */
}

static void test_starttls_required_but_missing(void **state) {
  (void)state;
  if (!lsmtp_tls_available()) skip();
  /* Not offered: QUIT right after EHLO, even with credentials waiting. */
  lsmtp_submit_options o;
  tls_opts(&o, LSMTP_SUBMIT_TLS_STARTTLS);
  o.username = "user";
  o.password = "pw";
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(NULL, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_TLS);
  assert_int_equal(lsmtp_submit_result_temporary(res), 1);
  assert_string_equal(sv->rx, "EHLO client.example\r\nQUIT\r\n");
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "does not offer STARTTLS"));
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_TLS);
  assert_string_equal(lsmtp_submit_result_tls_version(res), "");
  lsmtp_submit_result_del(res);
  free(sv);

  /* Offered but refused: the refusal is the decisive reply. */
  script s = {.ehlo = "250-test\n250-PIPELINING\n250 STARTTLS",
              .starttls = "454 4.7.0 TLS not available"};
  tls_opts(&o, LSMTP_SUBMIT_TLS_STARTTLS);
  rc = run_script(&s, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_TLS);
  assert_string_equal(sv->rx, "EHLO client.example\r\nSTARTTLS\r\nQUIT\r\n");
  assert_string_equal(lsmtp_submit_result_verb(res), "STARTTLS");
  assert_int_equal(lsmtp_submit_result_reply(res)->code, 454);
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "TLS not available"));
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_opportunistic_falls_back(void **state) {
  (void)state;
  if (!lsmtp_tls_available()) skip();
  lsmtp_submit_options o;
  lsmtp_submit_result *res = NULL;
  server *sv;
  logbuf lb = {.len = 0};
  /* Not offered: plaintext, and the log says so. */
  tls_opts(&o, LSMTP_SUBMIT_TLS_OPPORTUNISTIC);
  o.log = log_cb;
  o.log_user_data = &lb;
  int rc = run_script(NULL, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_OK);
  assert_true(strncmp(sv->rx, "EHLO client.example\r\nMAIL FROM:", 31) == 0);
  assert_non_null(strstr(lb.text, "does not offer STARTTLS: going on without TLS"));
  lsmtp_submit_result_del(res);
  free(sv);

  /* Refused: plaintext after the refusal. */
  script s = {.ehlo = "250-test\n250 STARTTLS", .starttls = "454 4.7.0 not now"};
  tls_opts(&o, LSMTP_SUBMIT_TLS_OPPORTUNISTIC);
  rc = run_script(&s, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_OK);
  assert_true(strncmp(sv->rx, "EHLO client.example\r\nSTARTTLS\r\nMAIL FROM:", 41) == 0);
  lsmtp_submit_result_del(res);
  free(sv);

  /* Credentials never go out in the clear on the fallback. */
  tls_opts(&o, LSMTP_SUBMIT_TLS_OPPORTUNISTIC);
  o.username = "user";
  o.password = "pw";
  script a = {.ehlo = "250-test\n250 AUTH PLAIN"};
  rc = run_script(&a, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_INSECURE);
  assert_string_equal(sv->rx, "EHLO client.example\r\nQUIT\r\n");
  lsmtp_submit_result_del(res);
  free(sv);

  /* REQUIRETLS turns the fallback off (it needs verification, so a name
   * and the system CAs; the handshake never happens here). */
  if (access(LSMTP_TLS_DEFAULT_CA_FILE, R_OK) == 0) {
    base_opts(&o, NULL);
    o.tls = LSMTP_SUBMIT_TLS_OPPORTUNISTIC;
    o.tls_name = "localhost";
    o.requiretls = 1;
    rc = run_script(NULL, two_rcpts, 1, &o, &res, &sv);
    assert_int_equal(rc, LSMTP_ERR_TLS);
    assert_string_equal(sv->rx, "EHLO client.example\r\nQUIT\r\n");
    lsmtp_submit_result_del(res);
    free(sv);
  }
}

/* RFC 3207 §6: a reply smuggled behind STARTTLS's 220 in the same read
 * must not be taken as the answer to anything: the run fails and sends
 * nothing more, not even a ClientHello or QUIT. */
static void test_starttls_response_injection(void **state) {
  (void)state;
  if (!lsmtp_tls_available()) skip();
  script s = {.ehlo = "250-test\n250 STARTTLS", .starttls = "220 go ahead\n250 injected"};
  lsmtp_submit_options o;
  tls_opts(&o, LSMTP_SUBMIT_TLS_STARTTLS);
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_PROTOCOL);
  assert_string_equal(sv->rx, "EHLO client.example\r\nSTARTTLS\r\n");
  assert_string_equal(lsmtp_submit_result_tls_version(res), "");
  lsmtp_submit_result_del(res);
  free(sv);
}

/* Implicit TLS to a plaintext server: its greeting is no TLS record. */
static void test_implicit_tls_to_plaintext_server(void **state) {
  (void)state;
  if (!lsmtp_tls_available()) skip();
  lsmtp_submit_options o;
  tls_opts(&o, LSMTP_SUBMIT_TLS_IMPLICIT);
  logbuf lb = {.len = 0};
  o.log = log_cb;
  o.log_user_data = &lb;
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(NULL, two_rcpts, 1, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_TLS);
  assert_int_equal(lsmtp_submit_result_temporary(res), 1);
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "TLS handshake with 127.0.0.1:"));
  /* No SMTP command was written: only the ClientHello (and an alert). */
  assert_null(strstr(sv->rx, "EHLO"));
  assert_null(strstr(lb.text, "C: "));
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_timeout(void **state) {
  (void)state;
  script s = {.stall_on = "MAIL"};
  lsmtp_submit_options o;
  base_opts(&o, NULL);
  o.timeout_ms = 300;
  lsmtp_submit_result *res = NULL;
  server *sv;
  uint64_t t0 = ms_now();
  int rc = run_script(&s, two_rcpts, 1, &o, &res, &sv);
  uint64_t took = ms_now() - t0;
  assert_int_equal(rc, LSMTP_ERR_TIMEOUT);
  assert_int_equal(lsmtp_submit_result_temporary(res), 1);
  assert_true(took >= 300 && took < 3000);
  assert_int_equal(lsmtp_submit_result_rcpt_status(res, 0), LSMTP_ERR_TIMEOUT);
  lsmtp_submit_result_del(res);
  free(sv);

  /* The total bound cuts a session whose every wait is within limits. */
  script g = {.stall_on = "EHLO"};
  base_opts(&o, NULL);
  o.timeout_ms = 0; /* RFC defaults: minutes */
  o.total_timeout_ms = 300;
  t0 = ms_now();
  rc = run_script(&g, two_rcpts, 1, &o, &res, &sv);
  took = ms_now() - t0;
  assert_int_equal(rc, LSMTP_ERR_TIMEOUT);
  assert_true(took < 3000);
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "total"));
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_connection_lost(void **state) {
  (void)state;
  script s = {.close_on = "MAIL"};
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, two_rcpts, 1, NULL, &res, &sv);
  assert_int_equal(rc, LSMTP_ERR_CLOSED);
  assert_int_equal(lsmtp_submit_result_temporary(res), 1);
  lsmtp_submit_result_del(res);
  free(sv);
}

static void test_connect_failures(void **state) {
  (void)state;
  lsmtp_submit_options o;
  base_opts(&o, NULL);
  o.port = dead_port();
  lsmtp_submit_source src = lsmtp_submit_source_buffer(msg_text, strlen(msg_text));
  lsmtp_submit_result *res = NULL;
  assert_int_equal(lsmtp_submit(&o, two_rcpts, 1, &src, &res), LSMTP_ERR_IO);
  assert_int_equal(lsmtp_submit_result_os_error(res), ECONNREFUSED);
  assert_int_equal(lsmtp_submit_result_temporary(res), 1);
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "refused"));
  lsmtp_submit_result_del(res);
  /* An empty label fails inside the resolver, without a DNS query. */
  o.host = "no-such-host..invalid";
  assert_int_equal(lsmtp_submit(&o, two_rcpts, 1, &src, &res), LSMTP_ERR_DNS);
  assert_int_equal(lsmtp_submit_result_temporary(res), 0);
  assert_string_equal(lsmtp_submit_result_peer(res), "");
  lsmtp_submit_result_del(res);
}

static void test_tcp_connect(void **state) {
  (void)state;
  lsmtp_tcp_connect_info info;
  int fd = -1;
  assert_int_equal(lsmtp_tcp_connect(NULL, 25, 100, &fd, &info), LSMTP_ERR_INVALID);
  assert_int_equal(lsmtp_tcp_connect("127.0.0.1", 0, 100, &fd, &info), LSMTP_ERR_INVALID);
  /* "localhost" may resolve to ::1 and 127.0.0.1; the server listens on
   * 127.0.0.1 only, so whichever comes first, the connect succeeds. */
  server *sv = server_start(NULL, AF_INET);
  assert_int_equal(lsmtp_tcp_connect("localhost", sv->port, 2000, &fd, &info), LSMTP_OK);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%u", sv->port);
  assert_string_equal(info.peer, want);
  assert_true(info.attempts >= 1);
  char buf[64];
  struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
  assert_int_equal(poll(&p, 1, 2000), 1);
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  assert_true(n > 3 && memcmp(buf, "220 ", 4) == 0);
  close(fd);
  server_stop(sv);
  /* IPv6 literal, bracketed, when the host has ::1. */
  int v6 = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a6;
  memset(&a6, 0, sizeof a6);
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  int have_v6 = v6 >= 0 && bind(v6, (struct sockaddr *)&a6, sizeof a6) == 0;
  if (v6 >= 0) close(v6);
  if (have_v6) {
    sv = server_start(NULL, AF_INET6);
    assert_int_equal(lsmtp_tcp_connect("[::1]", sv->port, 2000, &fd, &info), LSMTP_OK);
    snprintf(want, sizeof want, "[::1]:%u", sv->port);
    assert_string_equal(info.peer, want);
    close(fd);
    server_stop(sv);
  }
}

static int cb_reads;
static int chunked_read(void *ud, char *buf, size_t cap, size_t *len) {
  const char **p = ud;
  size_t n = strlen(*p);
  if (n > 3) n = 3; /* small pieces, to cross line ends */
  if (n > cap) n = cap;
  memcpy(buf, *p, n);
  *p += n;
  *len = n;
  cb_reads++;
  return n ? LSMTP_OK : LSMTP_DONE;
}

static void test_sources(void **state) {
  (void)state;
  /* Bare LF in, CRLF and dot-stuffing out, from each kind of source. */
  static const char in[] = "Subject: x\n\n.line\nlast";
  static const char wire[] = "Subject: x\r\n\r\n..line\r\nlast\r\n.\r\n";
  for (int kind = 0; kind < 3; kind++) {
    server *sv = server_start(NULL, AF_INET);
    lsmtp_submit_options o;
    base_opts(&o, sv);
    lsmtp_submit_source src;
    FILE *f = NULL;
    const char *cursor = in;
    if (kind == 0) {
      f = tmpfile();
      fwrite(in, 1, strlen(in), f);
      rewind(f);
      src = lsmtp_submit_source_file(f);
    } else if (kind == 1) {
      f = tmpfile();
      fwrite(in, 1, strlen(in), f);
      fflush(f);
      lseek(fileno(f), 0, SEEK_SET);
      src = lsmtp_submit_source_fd(fileno(f));
    } else {
      cb_reads = 0;
      src = lsmtp_submit_source_callback(chunked_read, &cursor);
    }
    lsmtp_submit_result *res = NULL;
    int rc = lsmtp_submit(&o, two_rcpts, 1, &src, &res);
    pthread_join(sv->thread, NULL);
    assert_int_equal(rc, LSMTP_OK);
    assert_non_null(strstr(sv->rx, wire));
    /* SIZE= only when the size is known (the files' is). */
    char size[32];
    snprintf(size, sizeof size, " SIZE=%zu\r\n", strlen(in));
    if (kind < 2) assert_non_null(strstr(sv->rx, size));
    else {
      assert_null(strstr(sv->rx, " SIZE="));
      assert_true(cb_reads > 5);
    }
    lsmtp_submit_result_del(res);
    if (f) fclose(f);
    close(sv->lfd);
    free(sv);
  }
}

static int failing_read(void *ud, char *buf, size_t cap, size_t *len) {
  (void)ud;
  (void)buf;
  (void)cap;
  *len = 0;
  return LSMTP_ERR_IO;
}

static void test_source_failure(void **state) {
  (void)state;
  server *sv = server_start(NULL, AF_INET);
  lsmtp_submit_options o;
  base_opts(&o, sv);
  lsmtp_submit_source src = lsmtp_submit_source_callback(failing_read, NULL);
  lsmtp_submit_result *res = NULL;
  int rc = lsmtp_submit(&o, two_rcpts, 1, &src, &res);
  pthread_join(sv->thread, NULL);
  assert_int_equal(rc, LSMTP_ERR_ABORTED);
  assert_non_null(strstr(lsmtp_submit_result_detail(res), "source failed"));
  /* The message never ended, so the server has no message. */
  assert_null(strstr(sv->rx, "\r\n.\r\n"));
  lsmtp_submit_result_del(res);
  close(sv->lfd);
  free(sv);
}

static void test_8bit_and_dsn(void **state) {
  (void)state;
  static const char body8[] = "Subject: caf\xc3\xa9\r\n\r\nx\r\n";
  script s = {.ehlo = "250-test\n250-PIPELINING\n250-8BITMIME\n250 DSN"};
  server *sv = server_start(&s, AF_INET);
  lsmtp_submit_options o;
  base_opts(&o, sv);
  o.dsn_notify = LSMTP_NOTIFY_FAILURE | LSMTP_NOTIFY_DELAY;
  o.dsn_ret = LSMTP_RET_HDRS;
  o.envid = "id+1";
  lsmtp_submit_source src = lsmtp_submit_source_buffer(body8, strlen(body8));
  lsmtp_submit_result *res = NULL;
  int rc = lsmtp_submit(&o, two_rcpts, 1, &src, &res);
  pthread_join(sv->thread, NULL);
  assert_int_equal(rc, LSMTP_OK);
  assert_non_null(strstr(sv->rx, "MAIL FROM:<a@example.org> BODY=8BITMIME RET=HDRS ENVID=id+2B1\r\n"
                                 "RCPT TO:<b@example.net> NOTIFY=FAILURE,DELAY\r\n"));
  lsmtp_submit_result_del(res);
  close(sv->lfd);
  free(sv);
}

static void test_null_sender_and_many_rcpts(void **state) {
  (void)state;
  const char *rcpts[5] = {"r1@x.example", "r2@x.example", "r3@x.example", "r4@x.example",
                          "r5@x.example"};
  script s = {.rcpt = {NULL, "452 4.5.3 too many", NULL, "550 5.1.1 no", NULL}};
  lsmtp_submit_options o;
  base_opts(&o, NULL);
  o.from = NULL;
  lsmtp_submit_result *res = NULL;
  server *sv;
  int rc = run_script(&s, rcpts, 5, &o, &res, &sv);
  assert_int_equal(rc, LSMTP_OK);
  assert_non_null(strstr(sv->rx, "MAIL FROM:<> SIZE="));
  assert_int_equal(lsmtp_submit_result_accepted(res), 3);
  const int want[5] = {LSMTP_OK, LSMTP_ERR_TEMPFAIL, LSMTP_OK, LSMTP_ERR_REFUSED, LSMTP_OK};
  for (size_t i = 0; i < 5; i++) assert_int_equal(lsmtp_submit_result_rcpt_status(res, i), want[i]);
  lsmtp_submit_result_del(res);
  free(sv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pipelined_success),
      cmocka_unit_test(test_some_refused),
      cmocka_unit_test(test_all_refused),
      cmocka_unit_test(test_message_refused),
      cmocka_unit_test(test_greeting_refused),
      cmocka_unit_test(test_auth_plain_redacted),
      cmocka_unit_test(test_auth_login_redacted),
      cmocka_unit_test(test_auth_refused),
      cmocka_unit_test(test_refused_before_connecting),
      cmocka_unit_test(test_starttls_required_but_missing),
      cmocka_unit_test(test_opportunistic_falls_back),
      cmocka_unit_test(test_starttls_response_injection),
      cmocka_unit_test(test_implicit_tls_to_plaintext_server),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_connection_lost),
      cmocka_unit_test(test_connect_failures),
      cmocka_unit_test(test_tcp_connect),
      cmocka_unit_test(test_sources),
      cmocka_unit_test(test_source_failure),
      cmocka_unit_test(test_8bit_and_dsn),
      cmocka_unit_test(test_null_sender_and_many_rcpts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
