/* smtp-receive's TLS and AUTH: the options that turn them on (STARTTLS
 * with --tls-cert/--tls-key, implicit TLS with --tls-listen, --require-tls,
 * --auth-file, --allow-plaintext-auth), loading the certificate and the
 * password file before privileges are dropped, checking AUTH credentials,
 * and the --hash-password helper that makes password file lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "receive.h"

static int wants_tls(const rx_app *app) {
  return app->tls_cert || app->tls_key || app->ntls_listen || app->require_tls;
}

static int usage(const char *msg) {
  cli_log(CLI_ERROR, "%s (try --help)", msg);
  return EX_USAGE;
}

int rx_secure_check_options(const rx_app *app) {
  if (wants_tls(app) && !lsmtp_tls_available()) {
    cli_log(CLI_ERROR, "TLS options given, but this smtp-receive was built "
                       "without TLS (lsmtp without mbedTLS)");
    return EX_CONFIG;
  }
  if (!!app->tls_cert != !!app->tls_key)
    return usage("--tls-cert and --tls-key go together");
  if ((app->ntls_listen || app->require_tls) && !app->tls_cert)
    return usage("--tls-listen and --require-tls need --tls-cert and --tls-key");
  if (app->allow_plaintext_auth && !app->auth_file)
    return usage("--allow-plaintext-auth needs --auth-file");
  if (app->auth_file && !app->tls_cert && !app->allow_plaintext_auth)
    return usage("--auth-file: AUTH is only offered under TLS; give "
                 "--tls-cert/--tls-key, or --allow-plaintext-auth");
  return -1;
}

int rx_secure_setup(rx_app *app) {
  if (app->tls_cert) {
    int rc = lsmtp_tls_config_new(&app->tls, NULL, LSMTP_TLS_SERVER);
    if (rc == LSMTP_OK)
      rc = lsmtp_tls_config_set_cert_files(app->tls, app->tls_cert,
                                           app->tls_key, NULL);
    if (rc != LSMTP_OK) {
      const char *why = app->tls ? lsmtp_tls_config_error(app->tls) : "";
      cli_log(CLI_ERROR, "cannot use --tls-cert %s / --tls-key %s: %s",
              app->tls_cert, app->tls_key, why[0] ? why : lsmtp_strerror(rc));
      return rc == LSMTP_ERR_NOMEM ? EX_OSERR : EX_CONFIG;
    }
  }
  if (app->auth_file) {
    int rc = lsmtp_authfile_load(&app->authfile, NULL, app->auth_file);
    if (rc != LSMTP_OK) {
      const char *why = app->authfile ? lsmtp_authfile_error(app->authfile) : "";
      cli_log(CLI_ERROR, "--auth-file %s: %s", app->auth_file,
              why[0] ? why : lsmtp_strerror(rc));
      if (rc == LSMTP_ERR_NOMEM) return EX_OSERR;
      if (rc == LSMTP_ERR_IO) return EX_NOINPUT;
      return rc == LSMTP_ERR_UNSUPPORTED ? EX_CONFIG : EX_DATAERR;
    }
    cli_log(CLI_INFO, "AUTH PLAIN LOGIN for %zu user(s) from %s%s",
            lsmtp_authfile_count(app->authfile), app->auth_file,
            app->allow_plaintext_auth ? " (also without TLS)" : " (under TLS)");
  }
  return -1;
}

unsigned rx_secure_flags(const rx_app *app) {
  return (app->require_tls ? LSMTP_SERVER_REQUIRE_TLS : 0u) |
         (app->allow_plaintext_auth ? LSMTP_SERVER_ALLOW_PLAINTEXT_AUTH : 0u);
}

unsigned rx_secure_extensions(const rx_app *app) {
  /* STARTTLS is offered on the plain listeners whenever we have a
   * certificate; the session stops offering it once TLS is on. */
  return LSMTP_EXT_DEFAULT | (app->tls ? LSMTP_EXT_STARTTLS : 0u);
}

void rx_secure_cleanup(rx_app *app) {
  lsmtp_authfile_del(app->authfile);
  app->authfile = NULL;
  lsmtp_tls_config_del(app->tls);
  app->tls = NULL;
}

/* ---- checking credentials ----
 * The check runs PBKDF2 (about 0.1 s at the default iteration count), so
 * it runs on a worker (workers.c) while the session waits; the authfile is
 * read-only after loading, so workers may check at the same time. */

/* The SASL server's bound on a password (lsmtp/sasl_server.h); a longer
 * one could not be in the file (--hash-password refuses it). */
#define RX_PASSWORD_MAX 1024

typedef struct auth_job {
  rx_job base;
  const lsmtp_authfile *af;
  uint64_t session_id;
  char mech[16];
  char user[LSMTP_AUTHFILE_USER_MAX + 1];
  size_t user_len;
  char password[RX_PASSWORD_MAX + 1]; /* wiped right after the check */
  size_t password_len;
  int rc; /* lsmtp_authfile_check's answer */
} auth_job;

static void free_auth_job(auth_job *j) {
  rx_wipe(j->password, sizeof j->password);
  free(j);
}

static void auth_work(rx_job *job, int cancelled) {
  auth_job *j = (auth_job *)(void *)job;
  j->rc = cancelled ? LSMTP_ERR_AUTH
                    : lsmtp_authfile_check(j->af, j->user, j->user_len,
                                           j->password, j->password_len);
  rx_wipe(j->password, sizeof j->password);
  j->password_len = 0;
}

/* The log line and the reply for an answer of lsmtp_authfile_check. */
static int auth_outcome(uint64_t id, const char *mech, const char *user, int rc) {
  if (rc == LSMTP_OK) {
    cli_log(CLI_INFO, "session %llu: AUTH %s as %s: accepted",
            (unsigned long long)id, mech, user);
    return 0;
  }
  if (rc == LSMTP_ERR_AUTH) {
    cli_log(CLI_INFO, "session %llu: AUTH %s as %s: refused",
            (unsigned long long)id, mech, user);
    return 535;
  }
  cli_log(CLI_ERROR, "session %llu: AUTH %s as %s: cannot check: %s",
          (unsigned long long)id, mech, user, lsmtp_strerror(rc));
  return 454;
}

static void auth_finish(rx_job *job, rx_session *s) {
  auth_job *j = (auth_job *)(void *)job;
  if (s) {
    int code = auth_outcome(j->session_id, j->mech, j->user, j->rc);
    /* 535 5.7.8 / 454 4.7.0 with the RFC 4954 texts (NULL: defaults). */
    int rc = lsmtp_server_answer(lsmtp_net_conn_session(s->conn), code, NULL, NULL);
    if (rc < 0)
      cli_log(CLI_WARN, "session %llu: cannot answer AUTH: %s",
              (unsigned long long)s->id, lsmtp_strerror(rc));
    lsmtp_net_conn_kick(s->conn);
  }
  free_auth_job(j);
}

int rx_on_auth(lsmtp_server *srv, const char *mech, const char *authzid,
               const char *authcid, const char *password, size_t password_len,
               void *ud) {
  (void)srv;
  (void)authzid; /* proxy authorization is not enabled: always "" or ours */
  rx_session *s = ud;
  size_t user_len = strlen(authcid);
  if (user_len > LSMTP_AUTHFILE_USER_MAX || password_len > RX_PASSWORD_MAX ||
      strlen(mech) >= sizeof ((auth_job *)0)->mech) {
    /* No such entry can be in the file: refused without a check. */
    auth_outcome(s->id, mech, authcid, LSMTP_ERR_AUTH);
    return LSMTP_ERR_AUTH;
  }
  auth_job *j = calloc(1, sizeof *j);
  if (!j) {
    auth_outcome(s->id, mech, authcid, LSMTP_ERR_NOMEM);
    return LSMTP_ERR_TEMPFAIL;
  }
  j->base.work = auth_work;
  j->base.finish = auth_finish;
  j->base.is_auth = 1;
  j->af = s->app->authfile;
  j->session_id = s->id;
  memcpy(j->mech, mech, strlen(mech) + 1);
  memcpy(j->user, authcid, user_len + 1);
  j->user_len = user_len;
  memcpy(j->password, password, password_len);
  j->password_len = password_len;
  if (rx_pool_submit(s->app, s, &j->base) != 0) {
    /* Every worker busy and the queue full: "try later" beats blocking
     * the loop (and every other session) on PBKDF2. */
    cli_log(CLI_WARN, "session %llu: AUTH %s as %s: too many checks waiting, "
                      "454", (unsigned long long)s->id, mech, authcid);
    free_auth_job(j);
    return LSMTP_ERR_TEMPFAIL;
  }
  return LSMTP_SERVER_DEFER;
}

/* ---- --hash-password ---- */

/* Read one line from stdin into buf (without its line end); the echo is
 * turned off while reading from a terminal. Returns the length or -1. */
static long read_password(char *buf, size_t cap) {
  struct termios old, quiet;
  int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    fputs("Password: ", stderr);
    fflush(stderr);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  long len = -1;
  if (fgets(buf, (int)cap, stdin)) {
    size_t n = strlen(buf);
    int whole = n > 0 && buf[n - 1] == '\n';
    if (whole) buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
    /* A line that did not fit is refused rather than cut short. */
    if (whole || feof(stdin)) len = (long)n;
  }
  if (tty) {
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  return len;
}

int rx_hash_password(const char *user) {
  char password[1100]; /* the SASL bound (1024) plus a line end, and a bit */
  char line[LSMTP_AUTHFILE_LINE_MAX];
  long n = read_password(password, sizeof password);
  if (n < 0) {
    cli_log(CLI_ERROR, "--hash-password: no password line on standard input "
                       "(or one over 1024 octets)");
    return EX_DATAERR;
  }
  if (n == 0 || memchr(password, '\0', (size_t)n)) {
    cli_log(CLI_ERROR, "--hash-password: the password is empty");
    return EX_DATAERR;
  }
  int rc = lsmtp_authfile_hash_line(line, sizeof line, user, password, 0);
  memset(password, 0, sizeof password);
  switch (rc) {
    case LSMTP_OK:
      if (printf("%s\n", line) < 0 || fflush(stdout) != 0) {
        cli_log(CLI_ERROR, "cannot write to standard output: %s", strerror(errno));
        return EX_IOERR;
      }
      return EX_OK;
    case LSMTP_ERR_INVALID:
      cli_log(CLI_ERROR, "--hash-password %s: not a user name the password "
                         "file can hold (1..255 octets of UTF-8, no ':', no "
                         "control characters, no leading or trailing space)",
              user);
      return EX_USAGE;
    case LSMTP_ERR_UTF8:
      cli_log(CLI_ERROR, "--hash-password: the password is not UTF-8");
      return EX_DATAERR;
    case LSMTP_ERR_TOO_LONG:
      cli_log(CLI_ERROR, "--hash-password: the password is over 1024 octets");
      return EX_DATAERR;
    case LSMTP_ERR_UNSUPPORTED:
      cli_log(CLI_ERROR, "--hash-password: this build of lsmtp has no crypto "
                         "backend (mbedTLS)");
      return EX_CONFIG;
    default:
      cli_log(CLI_ERROR, "--hash-password: %s", lsmtp_strerror(rc));
      return EX_SOFTWARE;
  }
}
