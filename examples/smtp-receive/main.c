/* smtp-receive: a small SMTP/LMTP receiver built on lsmtp. It listens on
 * the given addresses, accepts mail for the listed domains (and
 * <postmaster>) and stores each message once per recipient in a Maildir,
 * or throws everything away with --sink. With a certificate it offers
 * STARTTLS (and implicit TLS on --tls-listen addresses), with a password
 * file AUTH. See docs/man/smtp-receive.1. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cli.h"
#include "receive.h"

#define GRACE_MS 5000

static const char usage_text[] =
    "usage: smtp-receive --listen ADDR:PORT [--listen ...]\n"
    "                    --domain DOMAIN [--domain ...]\n"
    "                    (--maildir DIR | --sink)\n"
    "                    [--hostname NAME] [--max-size BYTES]\n"
    "                    [--max-recipients N] [--max-clients N]\n"
    "                    [--greet-delay MS]\n"
    "                    [--timeout SECONDS] [--user NAME] [--lmtp] [-v]\n"
    "                    [--tls-cert FILE --tls-key FILE [--require-tls]\n"
    "                     [--tls-listen ADDR:PORT ...]]\n"
    "                    [--auth-file FILE [--allow-plaintext-auth]]\n"
    "                    [--workers N]\n"
    "       smtp-receive --hash-password USER   (password on standard input)\n"
    "\n"
    "  --listen ADDR:PORT    listen on ADDR (IPv4, or IPv6 in brackets:\n"
    "                        [::1]:2525); may be given more than once\n"
    "  --domain DOMAIN       accept recipients at DOMAIN (and <postmaster>);\n"
    "                        may be given more than once\n"
    "  --maildir DIR         store each message in DIR/<local-part>/new/\n"
    "  --sink                accept every recipient and discard messages\n"
    "  --hostname NAME       name in the greeting and Received: (default:\n"
    "                        the system host name)\n"
    "  --max-size BYTES      largest message (k/m/g suffixes; default 10m;\n"
    "                        0: no limit)\n"
    "  --max-recipients N    recipients per message (default 100)\n"
    "  --max-clients N       concurrent connections (default 1000; 0: no\n"
    "                        limit); beyond that clients get 421 4.7.0\n"
    "  --greet-delay MS      wait MS before the greeting; a client that\n"
    "                        talks first gets 554 5.5.0 (default 0)\n"
    "  --timeout SECONDS     one idle limit for every state (default: the\n"
    "                        RFC 5321 values, 2 to 10 minutes)\n"
    "  --user NAME           run as NAME after binding (needs root)\n"
    "  --lmtp                speak LMTP (RFC 2033) instead of SMTP\n"
    "  --tls-cert FILE       certificate chain (PEM, leaf first): offer\n"
    "                        STARTTLS; needs --tls-key\n"
    "  --tls-key FILE        the certificate's private key (PEM)\n"
    "  --require-tls         refuse MAIL before STARTTLS (530 5.7.0)\n"
    "  --tls-listen ADDR:PORT  also listen with implicit TLS (RFC 8314,\n"
    "                        \"port 465\"); may be given more than once\n"
    "  --auth-file FILE      offer AUTH PLAIN LOGIN (under TLS) for the\n"
    "                        users in FILE (lines from --hash-password)\n"
    "  --allow-plaintext-auth  offer AUTH also without TLS\n"
    "  --hash-password USER  read a password on standard input, print a\n"
    "                        line for --auth-file, exit\n"
    "  --workers N           threads for password checks and Maildir\n"
    "                        commits (default 4; 1..64)\n"
    "  -v, --verbose         print the protocol dialogue (-vv: debug)\n"
    "  -h, --help            print this help\n"
    "\n"
    "Exit status: 0 after SIGTERM/SIGINT, 64 bad options, 65 bad auth file\n"
    "or password, 66 cannot read the auth file, 67 unknown user, 69 cannot\n"
    "listen, 71 system error, 73 cannot create DIR, 77 cannot change user,\n"
    "78 unusable certificate or no TLS in this build.\n";

enum {
  OPT_LISTEN = 256, OPT_DOMAIN, OPT_MAILDIR, OPT_SINK, OPT_HOSTNAME,
  OPT_MAX_SIZE, OPT_MAX_RCPTS, OPT_MAX_CLIENTS, OPT_TIMEOUT, OPT_USER, OPT_LMTP,
  OPT_TLS_CERT, OPT_TLS_KEY, OPT_REQUIRE_TLS, OPT_TLS_LISTEN, OPT_AUTH_FILE,
  OPT_ALLOW_PLAINTEXT_AUTH, OPT_HASH_PASSWORD, OPT_GREET_DELAY, OPT_WORKERS
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"maildir", required_argument, NULL, OPT_MAILDIR},
    {"sink", no_argument, NULL, OPT_SINK},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"max-recipients", required_argument, NULL, OPT_MAX_RCPTS},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"greet-delay", required_argument, NULL, OPT_GREET_DELAY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"user", required_argument, NULL, OPT_USER},
    {"lmtp", no_argument, NULL, OPT_LMTP},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"require-tls", no_argument, NULL, OPT_REQUIRE_TLS},
    {"tls-listen", required_argument, NULL, OPT_TLS_LISTEN},
    {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
    {"allow-plaintext-auth", no_argument, NULL, OPT_ALLOW_PLAINTEXT_AUTH},
    {"hash-password", required_argument, NULL, OPT_HASH_PASSWORD},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* Returns -1 to go on, or an exit code. */
static int parse_options(rx_app *app, int argc, char **argv) {
  app->max_clients = 1000;
  app->workers = RX_DEFAULT_WORKERS;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":vh", long_options, NULL)) != -1) {
    switch (c) {
      case OPT_LISTEN: {
        struct sockaddr_storage ss;
        socklen_t len;
        if (lsmtp_net_addr_parse(optarg, &ss, &len) != LSMTP_OK)
          return cli_usage_error("--listen %s: want ADDR:PORT or [IPv6]:PORT", optarg);
        if (app->nlisten == RX_MAX_LISTEN)
          return cli_usage_error("too many --listen options (at most %s)", "16");
        app->listen[app->nlisten++] = optarg;
        break;
      }
      case OPT_DOMAIN: {
        lsmtp_domain_kind kind;
        if (lsmtp_domain_check(optarg, strlen(optarg), LSMTP_ADDR_SMTPUTF8,
                               &kind) != LSMTP_OK ||
            kind != LSMTP_DOMAIN_NAME)
          return cli_usage_error("--domain %s: not a domain name", optarg);
        if (app->ndomains == RX_MAX_DOMAINS)
          return cli_usage_error("too many --domain options (at most %s)", "64");
        app->domains[app->ndomains++] = optarg;
        break;
      }
      case OPT_MAILDIR:
        if (app->maildir || !*optarg)
          return cli_usage_error("--maildir %s: give one non-empty directory", optarg);
        app->maildir = optarg;
        break;
      case OPT_SINK: app->sink = 1; break;
      case OPT_HOSTNAME:
        if (cli_set_hostname(app->hostname, sizeof app->hostname, optarg) != 0)
          return cli_usage_error("--hostname %s: not a host name", optarg);
        break;
      case OPT_MAX_SIZE:
        if (cli_parse_size(optarg, UINT64_MAX, &app->max_size) != 0)
          return cli_usage_error("--max-size %s: want a number of bytes", optarg);
        app->have_max_size = 1;
        break;
      case OPT_MAX_RCPTS:
        if (cli_parse_u64(optarg, 1000000, &app->max_rcpts) != 0 ||
            app->max_rcpts == 0)
          return cli_usage_error("--max-recipients %s: want 1..1000000", optarg);
        app->have_max_rcpts = 1;
        break;
      case OPT_MAX_CLIENTS:
        if (cli_parse_u64(optarg, 1000000, &app->max_clients) != 0)
          return cli_usage_error("--max-clients %s: want 0..1000000", optarg);
        break;
      case OPT_GREET_DELAY:
        if (cli_parse_u64(optarg, 60000, &app->greet_delay_ms) != 0)
          return cli_usage_error("--greet-delay %s: want 0..60000 ms", optarg);
        break;
      case OPT_TIMEOUT:
        if (cli_parse_u64(optarg, 4000000, &app->timeout_s) != 0 ||
            app->timeout_s == 0)
          return cli_usage_error("--timeout %s: want 1..4000000 seconds", optarg);
        app->have_timeout = 1;
        break;
      case OPT_USER: app->user = optarg; break;
      case OPT_LMTP: app->lmtp = 1; break;
      case OPT_TLS_CERT: app->tls_cert = optarg; break;
      case OPT_TLS_KEY: app->tls_key = optarg; break;
      case OPT_REQUIRE_TLS: app->require_tls = 1; break;
      case OPT_TLS_LISTEN: {
        struct sockaddr_storage ss;
        socklen_t len;
        if (lsmtp_net_addr_parse(optarg, &ss, &len) != LSMTP_OK)
          return cli_usage_error("--tls-listen %s: want ADDR:PORT or [IPv6]:PORT",
                             optarg);
        if (app->ntls_listen == RX_MAX_LISTEN)
          return cli_usage_error("too many --tls-listen options (at most %s)", "16");
        app->tls_listen[app->ntls_listen++] = optarg;
        break;
      }
      case OPT_AUTH_FILE: app->auth_file = optarg; break;
      case OPT_ALLOW_PLAINTEXT_AUTH: app->allow_plaintext_auth = 1; break;
      case OPT_HASH_PASSWORD: app->hash_password_user = optarg; break;
      case OPT_WORKERS:
        if (cli_parse_u64(optarg, RX_MAX_WORKERS, &app->workers) != 0 ||
            app->workers == 0)
          return cli_usage_error("--workers %s: want 1..64", optarg);
        break;
      case 'v': app->verbosity++; break;
      case 'h': fputs(usage_text, stdout); return EX_OK;
      case ':': return cli_usage_error("%s needs an argument", argv[optind - 1]);
      default: return cli_usage_error("unknown option %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_usage_error("unexpected argument %s", argv[optind]);
  if (app->hash_password_user) return -1; /* a mode of its own */
  if (app->nlisten == 0 && app->ntls_listen == 0)
    return cli_usage_error("%s", "--listen (or --tls-listen) is required");
  if (!!app->maildir == !!app->sink)
    return cli_usage_error("%s", "give exactly one of --maildir DIR and --sink");
  if (app->maildir && app->ndomains == 0)
    return cli_usage_error("%s", "--domain is required with --maildir");
  return rx_secure_check_options(app);
}

/* ---- logging glue ---- */

static void net_log(void *ud, lsmtp_net_log_level level, const char *msg) {
  (void)ud;
  static const cli_level map[] = {CLI_ERROR, CLI_WARN, CLI_INFO, CLI_DEBUG};
  cli_log(map[level <= LSMTP_NET_LOG_DEBUG ? level : LSMTP_NET_LOG_DEBUG], "%s",
          msg);
}

static void session_log(lsmtp_server *srv, lsmtp_server_log_level level,
                        const char *msg, void *ud) {
  (void)srv;
  rx_session *s = ud;
  /* The session warns about every refused command and misbehaving peer;
   * that is dialogue detail here (-v), not one of the per-session lines. */
  static const cli_level map[] = {CLI_ERROR, CLI_VERBOSE, CLI_VERBOSE, CLI_DEBUG};
  cli_level l = map[level <= LSMTP_SERVER_LOG_DEBUG ? level : LSMTP_SERVER_LOG_DEBUG];
  if (cli_log_enabled(l))
    cli_log(l, "session %llu: %s", (unsigned long long)s->id, msg);
}

/* ---- connection hooks ---- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void peer_ip(lsmtp_net_conn *conn, char *out, size_t cap) {
  socklen_t len;
  const struct sockaddr *sa = lsmtp_net_conn_peer_addr(conn, &len);
  out[0] = '\0';
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
              out, (socklen_t)cap);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6,
              &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
              (socklen_t)cap);
}

static int on_accept(lsmtp_net_conn *conn, void **session_ud, void *ud) {
  rx_app *app = ud;
  rx_session *s = calloc(1, sizeof *s);
  if (!s) return LSMTP_ERR_NOMEM;
  s->app = app;
  s->conn = conn;
  s->id = lsmtp_net_conn_id(conn);
  s->started_ms = now_ms();
  peer_ip(conn, s->ip, sizeof s->ip);
  if (cli_log_enabled(CLI_VERBOSE)) {
    s->dialogue = rx_dialogue_new();
    cli_log(CLI_VERBOSE, "session %llu: connect from %s to %s",
            (unsigned long long)s->id, lsmtp_net_conn_peer(conn),
            lsmtp_net_conn_local(conn));
  }
  *session_ud = s;
  return LSMTP_OK;
}

static void on_close(lsmtp_net_conn *conn, int reason, void *session_ud,
                     void *ud) {
  (void)ud;
  rx_session *s = session_ud;
  lsmtp_server *srv = lsmtp_net_conn_session(conn);
  const char *helo = srv ? lsmtp_server_helo(srv) : NULL;
  const char *tls = srv ? lsmtp_server_tls_version(srv) : NULL;
  const char *auth = srv ? lsmtp_server_auth_id(srv) : NULL;
  cli_log(CLI_INFO,
          "session %llu: from %s helo=%s%s%s%s%s messages=%llu "
          "duration=%llums: %s",
          (unsigned long long)s->id, lsmtp_net_conn_peer(conn),
          helo ? helo : "-", tls ? " tls=" : "", tls ? tls : "",
          auth ? " auth=" : "", auth ? auth : "",
          (unsigned long long)s->delivered,
          (unsigned long long)(now_ms() - s->started_ms),
          reason == LSMTP_OK ? "done" : lsmtp_strerror(reason));
  rx_pool_cancel(s->app, s); /* its result, when it comes, is dropped */
  rx_discard(s); /* a message not acknowledged is not kept */
  free(s->rcpts);
  rx_dialogue_del(s->dialogue);
  free(s);
}

static void on_trace(lsmtp_net_conn *conn, int from_client, const char *data,
                     size_t len, void *ud) {
  (void)ud;
  rx_session *s = lsmtp_net_conn_user_data(conn);
  if (s && s->dialogue)
    rx_dialogue_trace(s->dialogue, s->id, from_client, data, len);
}

static void on_drained(lsmtp_net_server *ns, void *ud) {
  (void)ns;
  rx_app *app = ud;
  lsmtp_loop_stop(app->loop);
}

/* ---- signals ---- */

static void on_signal_pipe(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)events;
  rx_app *app = ud;
  int sig;
  while ((sig = cli_signal_read(fd)) != 0) {
    cli_log(CLI_INFO, "signal %d: stopping (%zu session(s) open)", sig,
            lsmtp_net_server_conn_count(app->ns));
    /* A second signal cuts the grace period short. */
    static int seen;
    lsmtp_net_server_shutdown(app->ns, seen++ ? 0 : GRACE_MS);
  }
}

/* ---- setup ---- */

static int configure(rx_app *app) {
  if (!app->hostname[0]) cli_default_hostname(app->hostname, sizeof app->hostname);
  lsmtp_server_config *cfg;
  if (lsmtp_server_config_new(&cfg, NULL) != LSMTP_OK) return EX_OSERR;
  app->cfg = cfg;
  unsigned flags = (app->lmtp ? LSMTP_SERVER_LMTP : 0u) | rx_secure_flags(app);
  if (lsmtp_server_config_set_hostname(cfg, app->hostname) != LSMTP_OK ||
      lsmtp_server_config_set_flags(cfg, flags) != LSMTP_OK ||
      lsmtp_server_config_set_extensions(cfg, rx_secure_extensions(app)) !=
          LSMTP_OK ||
      (app->have_max_size &&
       lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_MESSAGE_SIZE,
                                     app->max_size) != LSMTP_OK) ||
      (app->have_max_rcpts &&
       lsmtp_server_config_set_limit(cfg, LSMTP_SERVER_LIMIT_RECIPIENTS,
                                     app->max_rcpts) != LSMTP_OK) ||
      (app->have_timeout &&
       lsmtp_server_config_set_all_timeouts(cfg, (unsigned)(app->timeout_s * 1000u)) !=
           LSMTP_OK)) {
    cli_log(CLI_ERROR, "a setting is out of the range lsmtp accepts");
    return EX_USAGE;
  }
  return -1;
}

static int start_network(rx_app *app) {
  if (lsmtp_loop_new(&app->loop, NULL) != LSMTP_OK) {
    cli_log(CLI_ERROR, "cannot create the event loop: %s", strerror(errno));
    return EX_OSERR;
  }
  lsmtp_loop_set_log(app->loop, net_log, app);
  if (cli_log_enabled(CLI_DEBUG))
    lsmtp_loop_set_log_level(app->loop, LSMTP_NET_LOG_DEBUG);
  lsmtp_server_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_log = session_log;
  cb.on_reset = rx_on_reset;
  if (app->authfile) cb.on_auth = rx_on_auth;
  if (app->sink) {
    cb.on_data_end = rx_sink_data_end;
  } else {
    cb.on_mail = rx_on_mail;
    cb.on_rcpt = rx_on_rcpt;
    cb.on_data_start = rx_on_data_start;
    cb.on_data_chunk = rx_on_data_chunk;
    cb.on_data_end = rx_on_data_end;
  }
  lsmtp_net_server_hooks hooks;
  memset(&hooks, 0, sizeof hooks);
  hooks.on_accept = on_accept;
  hooks.on_close = on_close;
  hooks.on_drained = on_drained;
  if (cli_log_enabled(CLI_VERBOSE)) hooks.on_trace = on_trace;
  if (lsmtp_net_server_new(&app->ns, app->loop, app->cfg, &cb, &hooks, app) !=
      LSMTP_OK)
    return EX_OSERR;
  lsmtp_net_server_set_max_clients(app->ns, (size_t)app->max_clients);
  lsmtp_net_server_set_greet_delay(app->ns, (unsigned)app->greet_delay_ms);
  if (app->tls) {
    if (lsmtp_net_server_set_tls(app->ns, app->tls) != LSMTP_OK) return EX_SOFTWARE;
    /* A client gets as long for its handshake as for a command. */
    if (app->have_timeout)
      lsmtp_net_server_set_tls_timeout(app->ns, (unsigned)(app->timeout_s * 1000u));
  }
  for (size_t i = 0; i < app->nlisten + app->ntls_listen; i++) {
    int implicit = i >= app->nlisten;
    const char *addr = implicit ? app->tls_listen[i - app->nlisten] : app->listen[i];
    char bound[LSMTP_NET_ADDR_MAX];
    int rc = lsmtp_net_server_listen_flags(
        app->ns, addr, implicit ? LSMTP_NET_LISTEN_TLS : 0u, bound, sizeof bound);
    if (rc != LSMTP_OK) {
      cli_log(CLI_ERROR, "cannot listen on %s: %s", addr,
              rc == LSMTP_ERR_IO ? strerror(errno) : lsmtp_strerror(rc));
      return EX_UNAVAILABLE;
    }
    cli_log(CLI_INFO, "listening on %s%s", bound,
            implicit ? " (implicit TLS)" : app->tls ? " (STARTTLS)" : "");
  }
  return -1;
}

static int prepare_storage(rx_app *app) {
  if (app->sink) return -1;
  if (cli_mkdirs(app->maildir, 0700) != 0 || access(app->maildir, W_OK | X_OK) != 0) {
    cli_log(CLI_ERROR, "cannot use %s: %s", app->maildir, strerror(errno));
    return EX_CANTCREAT;
  }
  if (lsmtp_maildir_ctx_new(&app->mdctx, NULL, app->hostname, 0) != LSMTP_OK) {
    cli_log(CLI_ERROR, "cannot set up Maildir naming");
    return EX_OSERR;
  }
  return -1;
}

static void cleanup(rx_app *app, lsmtp_io *sigio, int sigfd) {
  lsmtp_loop_io_del(sigio);
  if (sigfd >= 0) close(sigfd);
  lsmtp_net_server_del(app->ns);
  rx_pool_stop(app); /* after the sessions: waits for jobs still running */
  lsmtp_loop_del(app->loop);
  lsmtp_maildir_ctx_del(app->mdctx);
  lsmtp_server_config_del(app->cfg);
  rx_secure_cleanup(app);
}

int main(int argc, char **argv) {
  static rx_app app; /* large; also reachable from every callback */
  cli_log_init("smtp-receive", 0);
  int rc = parse_options(&app, argc, argv);
  if (rc >= 0) return rc;
  if (app.hash_password_user) return rx_hash_password(app.hash_password_user);
  cli_log_init("smtp-receive", app.verbosity);

  lsmtp_io *sigio = NULL;
  int sigfd = -1;
  /* Certificate and password file are read before privileges go. */
  if ((rc = rx_secure_setup(&app)) < 0 && (rc = configure(&app)) < 0 &&
      (rc = start_network(&app)) < 0) {
    /* Bound (privileged ports need root); now give root up. */
    if (app.user) rc = cli_drop_privileges(app.user);
    if (rc <= 0) rc = prepare_storage(&app);
    if (rc < 0 && (app.authfile || app.maildir))
      rc = rx_pool_start(&app, (unsigned)app.workers);
  }
  if (rc < 0) {
    static const int sigs[] = {SIGTERM, SIGINT};
    if (cli_signal_pipe(sigs, 2, &sigfd) != 0 ||
        lsmtp_loop_io_new(app.loop, &sigio, sigfd, LSMTP_IO_READ,
                          on_signal_pipe, &app) != LSMTP_OK) {
      cli_log(CLI_ERROR, "cannot set up signal handling: %s", strerror(errno));
      rc = EX_OSERR;
    }
  }
  if (rc < 0) {
    cli_log(CLI_INFO, "ready: %s, %s%s", app.lmtp ? "LMTP" : "SMTP",
            app.sink ? "discarding messages" : "delivering to ",
            app.sink ? "" : app.maildir);
    if (lsmtp_loop_run(app.loop) != LSMTP_OK) {
      cli_log(CLI_ERROR, "event loop failed: %s", strerror(errno));
      rc = EX_OSERR;
    } else {
      cli_log(CLI_INFO, "stopped after %llu message(s)",
              (unsigned long long)app.messages);
      rc = EX_OK;
    }
  }
  cleanup(&app, sigio, sigfd);
  return rc;
}
