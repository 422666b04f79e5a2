/* smtp-relay: an SMTP relay built on lsmtp. It accepts mail from allowed
 * clients (or for its own --domain list), spools every message durably
 * before answering 250, and forwards it by --route, --smarthost or MX
 * (through the system resolver, or the records of --dns-file),
 * retrying temporary failures on a schedule and bouncing permanent ones.
 * One event loop accepts connections and runs the queue's timers; the
 * blocking deliveries run in RL_WORKERS threads. See docs/man/smtp-relay.1
 * and docs/guide-relay.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"

/* How long SIGTERM waits for connections and deliveries in progress. */
#define GRACE_MS 3000u
#define ABANDON_MS 6000u

static const char usage_text[] =
    "usage: smtp-relay --listen ADDR:PORT [--listen ...] --spool DIR\n"
    "                  [--domain D ...] [--relay-from CIDR|IP ...]\n"
    "                  [--route DOMAIN=HOST:PORT ...] [--smarthost HOST:PORT]\n"
    "                  [--hostname NAME] [--max-size BYTES]\n"
    "                  [--retry-schedule 1m,5m,15m,1h] [--max-age 5d]\n"
    "                  [--starttls-mode opportunistic|required|off]\n"
    "                  [--timeout SECONDS] [--dns-file FILE] [--mx-port PORT]\n"
    "                  [-v]\n"
    "\n"
    "  --listen ADDR:PORT     listen on ADDR (IPv4, or [IPv6]); repeatable\n"
    "  --spool DIR            the queue directory (created if missing)\n"
    "  --domain D             accept mail for D from any client (a final\n"
    "                         destination; send it on with --route)\n"
    "  --relay-from CIDR|IP   clients allowed to relay to any domain\n"
    "                         (default 127.0.0.0/8 and ::1); repeatable\n"
    "  --route DOMAIN=HOST:PORT  next hop for DOMAIN (HOST may be [IPv6])\n"
    "  --smarthost HOST:PORT  next hop for every other domain (else MX)\n"
    "  --hostname NAME        name in the greeting, EHLO and Received:\n"
    "  --max-size BYTES       largest message (k/m/g suffixes; default 10m)\n"
    "  --retry-schedule LIST  waits between attempts (s/m/h/d suffixes; the\n"
    "                         last one repeats; default 1m,5m,15m,1h)\n"
    "  --max-age DURATION     give up and bounce after this (default 5d)\n"
    "  --starttls-mode MODE   opportunistic (default: TLS when offered, no\n"
    "                         certificate check), required, or off\n"
    "  --timeout SECONDS      one limit for every wait, both directions\n"
    "                         (default: the RFC 5321 values)\n"
    "  --dns-file FILE        answer every DNS lookup (MX, A, AAAA) from the\n"
    "                         records in FILE instead of the system resolver\n"
    "                         (for tests and closed setups; see the man page)\n"
    "  --mx-port PORT         port of next hops found through DNS (default 25;\n"
    "                         for tests and odd setups)\n"
    "  -v, --verbose          print sessions and the delivery dialogue\n"
    "  -h, --help             print this help\n"
    "\n"
    "Exit status: 0 after SIGTERM/SIGINT, 64 bad options, 69 cannot listen,\n"
    "71 system error, 73 cannot use the spool directory.\n";

/* "90", "90s", "5m", "1h", "5d" -> milliseconds; 0 on success. */
static int parse_duration(const char *s, uint64_t *ms) {
  size_t len = strlen(s);
  if (len == 0 || len > 15) return -1;
  uint64_t unit = 1000;
  char num[16];
  memcpy(num, s, len + 1);
  switch (num[len - 1]) {
    case 's': unit = 1000; num[--len] = '\0'; break;
    case 'm': unit = 60000; num[--len] = '\0'; break;
    case 'h': unit = 3600000; num[--len] = '\0'; break;
    case 'd': unit = 86400000; num[--len] = '\0'; break;
    default: break;
  }
  uint64_t v;
  if (cli_parse_u64(num, 100000000, &v) != 0) return -1;
  *ms = v * unit;
  return 0;
}

static int parse_schedule(rl_app *app, const char *s) {
  char copy[512];
  if (strlen(s) >= sizeof copy) return -1;
  strcpy(copy, s);
  app->nschedule = 0;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (app->nschedule == RL_MAX_SCHEDULE) return -1;
    if (parse_duration(tok, &app->schedule_ms[app->nschedule]) != 0) return -1;
    app->nschedule++;
  }
  return app->nschedule ? 0 : -1;
}

/* "HOST:PORT" or "[v6]:PORT" into r (domain untouched). */
static int parse_hostport(const char *s, rl_route *r) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s) return -1;
  uint64_t port;
  if (cli_parse_u64(colon + 1, 65535, &port) != 0 || port == 0) return -1;
  const char *h = s;
  size_t n = (size_t)(colon - s);
  if (h[0] == '[') {
    if (n < 3 || h[n - 1] != ']') return -1;
    h++;
    n -= 2;
  } else if (memchr(h, ':', n)) {
    return -1; /* IPv6 needs brackets */
  }
  if (n == 0 || n >= sizeof r->host) return -1;
  memcpy(r->host, h, n);
  r->host[n] = '\0';
  r->port = (unsigned)port;
  return 0;
}

static int parse_cidr(const char *s, rl_cidr *c) {
  char addr[64];
  const char *slash = strchr(s, '/');
  size_t n = slash ? (size_t)(slash - s) : strlen(s);
  if (n == 0 || n >= sizeof addr) return -1;
  memcpy(addr, s, n);
  addr[n] = '\0';
  if (inet_pton(AF_INET, addr, c->addr) == 1) {
    c->family = AF_INET;
    c->bits = 32;
  } else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
    c->family = AF_INET6;
    c->bits = 128;
  } else {
    return -1;
  }
  if (slash) {
    uint64_t bits;
    if (cli_parse_u64(slash + 1, c->bits, &bits) != 0) return -1;
    c->bits = (unsigned)bits;
  }
  return 0;
}

enum {
  OPT_LISTEN = 256, OPT_SPOOL, OPT_DOMAIN, OPT_RELAY_FROM, OPT_ROUTE, OPT_SMARTHOST,
  OPT_HOSTNAME, OPT_MAX_SIZE, OPT_RETRY, OPT_MAX_AGE, OPT_STARTTLS, OPT_TIMEOUT,
  OPT_DNS_FILE, OPT_MX_PORT
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"spool", required_argument, NULL, OPT_SPOOL},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"relay-from", required_argument, NULL, OPT_RELAY_FROM},
    {"route", required_argument, NULL, OPT_ROUTE},
    {"smarthost", required_argument, NULL, OPT_SMARTHOST},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"retry-schedule", required_argument, NULL, OPT_RETRY},
    {"max-age", required_argument, NULL, OPT_MAX_AGE},
    {"starttls-mode", required_argument, NULL, OPT_STARTTLS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"dns-file", required_argument, NULL, OPT_DNS_FILE},
    {"mx-port", required_argument, NULL, OPT_MX_PORT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

static int check_domain(const char *d) {
  lsmtp_domain_kind kind;
  return lsmtp_domain_check(d, strlen(d), LSMTP_ADDR_SMTPUTF8, &kind) == LSMTP_OK &&
                 kind == LSMTP_DOMAIN_NAME
             ? 0
             : -1;
}

/* Returns -1 to go on, or an exit code. */
static int parse_options(rl_app *app, int argc, char **argv) {
  parse_schedule(app, "1m,5m,15m,1h");
  app->max_age_ms = 5u * 86400000u;
  app->mx_port = 25;
  const char *dns_file = NULL;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":vh", long_options, NULL)) != -1) {
    switch (c) {
      case OPT_LISTEN: {
        struct sockaddr_storage ss;
        socklen_t len;
        if (lsmtp_net_addr_parse(optarg, &ss, &len) != LSMTP_OK)
          return cli_usage_error("--listen %s: want ADDR:PORT or [IPv6]:PORT", optarg);
        if (app->nlisten == RL_MAX_LISTEN) return cli_usage_error("too many --listen%s", "");
        app->listen[app->nlisten++] = optarg;
        break;
      }
      case OPT_SPOOL:
        if (!*optarg) return cli_usage_error("--spool %s: give a directory", optarg);
        app->spool_dir = optarg;
        break;
      case OPT_DOMAIN:
        if (check_domain(optarg) != 0) return cli_usage_error("--domain %s: not a domain", optarg);
        if (app->ndomains == RL_MAX_DOMAINS) return cli_usage_error("too many --domain%s", "");
        app->domains[app->ndomains++] = optarg;
        break;
      case OPT_RELAY_FROM:
        if (app->nrelay_from == RL_MAX_RELAY_FROM)
          return cli_usage_error("too many --relay-from%s", "");
        if (parse_cidr(optarg, &app->relay_from[app->nrelay_from]) != 0)
          return cli_usage_error("--relay-from %s: want an address or ADDR/BITS", optarg);
        app->nrelay_from++;
        break;
      case OPT_ROUTE: {
        if (app->nroutes == RL_MAX_ROUTES) return cli_usage_error("too many --route%s", "");
        rl_route *r = &app->routes[app->nroutes];
        const char *eq = strchr(optarg, '=');
        size_t n = eq ? (size_t)(eq - optarg) : 0;
        if (!eq || n == 0 || n >= sizeof r->domain)
          return cli_usage_error("--route %s: want DOMAIN=HOST:PORT", optarg);
        memcpy(r->domain, optarg, n);
        r->domain[n] = '\0';
        if (check_domain(r->domain) != 0 || parse_hostport(eq + 1, r) != 0)
          return cli_usage_error("--route %s: want DOMAIN=HOST:PORT", optarg);
        app->nroutes++;
        break;
      }
      case OPT_SMARTHOST:
        if (parse_hostport(optarg, &app->smarthost) != 0)
          return cli_usage_error("--smarthost %s: want HOST:PORT", optarg);
        app->have_smarthost = 1;
        break;
      case OPT_HOSTNAME:
        if (cli_set_hostname(app->hostname, sizeof app->hostname, optarg) != 0)
          return cli_usage_error("--hostname %s: not a host name", optarg);
        break;
      case OPT_MAX_SIZE:
        if (cli_parse_size(optarg, UINT64_MAX, &app->max_size) != 0)
          return cli_usage_error("--max-size %s: want a number of bytes", optarg);
        app->have_max_size = 1;
        break;
      case OPT_RETRY:
        if (parse_schedule(app, optarg) != 0)
          return cli_usage_error("--retry-schedule %s: want e.g. 1m,5m,15m,1h", optarg);
        break;
      case OPT_MAX_AGE:
        if (parse_duration(optarg, &app->max_age_ms) != 0)
          return cli_usage_error("--max-age %s: want e.g. 5d", optarg);
        break;
      case OPT_STARTTLS:
        if (!strcmp(optarg, "opportunistic")) app->tls_mode = RL_TLS_OPPORTUNISTIC;
        else if (!strcmp(optarg, "required")) app->tls_mode = RL_TLS_REQUIRED;
        else if (!strcmp(optarg, "off")) app->tls_mode = RL_TLS_OFF;
        else return cli_usage_error("--starttls-mode %s: opportunistic, required or off", optarg);
        break;
      case OPT_TIMEOUT:
        if (cli_parse_u64(optarg, 3600, &app->timeout_s) != 0 || app->timeout_s == 0)
          return cli_usage_error("--timeout %s: want 1..3600 seconds", optarg);
        break;
      case OPT_DNS_FILE:
        if (!*optarg) return cli_usage_error("--dns-file %s: give a file", optarg);
        dns_file = optarg;
        break;
      case OPT_MX_PORT: {
        uint64_t port;
        if (cli_parse_u64(optarg, 65535, &port) != 0 || port == 0)
          return cli_usage_error("--mx-port %s: want 1..65535", optarg);
        app->mx_port = (unsigned)port;
        break;
      }
      case 'v': app->verbosity++; break;
      case 'h': fputs(usage_text, stdout); return EX_OK;
      case ':': return cli_usage_error("%s needs an argument", argv[optind - 1]);
      default: return cli_usage_error("unknown option %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_usage_error("unexpected argument %s", argv[optind]);
  if (app->nlisten == 0) return cli_usage_error("%s", "--listen is required");
  if (!app->spool_dir) return cli_usage_error("%s", "--spool is required");
  if (app->tls_mode == RL_TLS_REQUIRED && !lsmtp_tls_available())
    return cli_usage_error("%s", "--starttls-mode required: this build has no TLS");
  if (app->nrelay_from == 0) {
    parse_cidr("127.0.0.0/8", &app->relay_from[0]);
    parse_cidr("::1", &app->relay_from[1]);
    app->nrelay_from = 2;
  }
  /* Read last, so a typo in another option is reported without it. */
  if (dns_file && rl_dnsfile_load(app, dns_file) != 0) return EX_USAGE;
  return -1;
}

/* ---- logging glue ---- */

static void net_log(void *ud, lsmtp_net_log_level level, const char *msg) {
  (void)ud;
  static const cli_level map[] = {CLI_ERROR, CLI_WARN, CLI_VERBOSE, CLI_DEBUG};
  cli_log(map[level <= LSMTP_NET_LOG_DEBUG ? level : LSMTP_NET_LOG_DEBUG], "%s", msg);
}

static void spool_log(void *ud, const char *msg) {
  (void)ud;
  cli_log(CLI_WARN, "spool: %s", msg);
}

/* ---- signals ---- */

static lsmtp_timer *abandon_timer;

static void on_abandon(lsmtp_timer *t, void *ud) {
  (void)t;
  rl_app *app = ud;
  cli_log(CLI_WARN, "giving up on %zu delivery(ies) in progress; they stay queued",
          rl_queue_in_flight(app));
  lsmtp_loop_stop(app->loop);
}

static void on_signal_pipe(lsmtp_io *io, int fd, unsigned events, void *ud) {
  (void)io;
  (void)events;
  rl_app *app = ud;
  int sig;
  while ((sig = cli_signal_read(fd)) != 0) {
    cli_log(CLI_INFO, "signal %d: stopping (%zu session(s), %zu delivery(ies) in progress)",
            sig, lsmtp_net_server_conn_count(app->ns), rl_queue_in_flight(app));
    int again = app->stopping;
    app->stopping = 1;
    rl_queue_stop(app);
    rl_workers_drop_pending(app); /* not started: they simply stay queued */
    lsmtp_net_server_shutdown(app->ns, again ? 0 : GRACE_MS);
    if (!again && lsmtp_loop_timer_new(app->loop, &abandon_timer, on_abandon, app) == LSMTP_OK)
      lsmtp_loop_timer_start(abandon_timer, again ? 0 : ABANDON_MS);
    if (again) lsmtp_loop_stop(app->loop);
    if (rl_queue_in_flight(app) == 0 && lsmtp_net_server_conn_count(app->ns) == 0)
      lsmtp_loop_stop(app->loop);
  }
}

/* ---- setup ---- */

static int configure(rl_app *app) {
  if (!app->hostname[0]) cli_default_hostname(app->hostname, sizeof app->hostname);
  if (lsmtp_server_config_new(&app->cfg, NULL) != LSMTP_OK) return EX_OSERR;
  if (lsmtp_server_config_set_hostname(app->cfg, app->hostname) != LSMTP_OK ||
      (app->have_max_size &&
       lsmtp_server_config_set_limit(app->cfg, LSMTP_SERVER_LIMIT_MESSAGE_SIZE,
                                     app->max_size) != LSMTP_OK) ||
      (app->timeout_s && lsmtp_server_config_set_all_timeouts(
                             app->cfg, (unsigned)(app->timeout_s * 1000u)) != LSMTP_OK)) {
    cli_log(CLI_ERROR, "a setting is out of the range lsmtp accepts");
    return EX_USAGE;
  }
  int rc = lsmtp_spool_new(&app->spool, NULL, app->spool_dir, 0, spool_log, app);
  if (rc != LSMTP_OK) {
    cli_log(CLI_ERROR, "cannot use the spool %s: %s: %s", app->spool_dir,
            lsmtp_strerror(rc), strerror(errno));
    return EX_CANTCREAT;
  }
  return -1;
}

static int start(rl_app *app) {
  if (lsmtp_loop_new(&app->loop, NULL) != LSMTP_OK) return EX_OSERR;
  lsmtp_loop_set_log(app->loop, net_log, app);
  if (cli_log_enabled(CLI_DEBUG)) lsmtp_loop_set_log_level(app->loop, LSMTP_NET_LOG_DEBUG);
  lsmtp_server_callbacks cb;
  lsmtp_net_server_hooks hooks;
  rl_accept_callbacks(&cb, &hooks);
  if (lsmtp_net_server_new(&app->ns, app->loop, app->cfg, &cb, &hooks, app) != LSMTP_OK)
    return EX_OSERR;
  for (size_t i = 0; i < app->nlisten; i++) {
    char bound[LSMTP_NET_ADDR_MAX];
    int rc = lsmtp_net_server_listen(app->ns, app->listen[i], bound, sizeof bound);
    if (rc != LSMTP_OK) {
      cli_log(CLI_ERROR, "cannot listen on %s: %s", app->listen[i],
              rc == LSMTP_ERR_IO ? strerror(errno) : lsmtp_strerror(rc));
      return EX_UNAVAILABLE;
    }
    cli_log(CLI_INFO, "listening on %s", bound);
  }
  if (rl_queue_new(app) != 0 || rl_workers_start(app) != 0) {
    cli_log(CLI_ERROR, "cannot start the delivery workers: %s", strerror(errno));
    return EX_OSERR;
  }
  if (rl_queue_load_all(app) != 0) return EX_CANTCREAT;
  return -1;
}

int main(int argc, char **argv) {
  static rl_app app;
  cli_log_init("smtp-relay", 0);
  int rc = parse_options(&app, argc, argv);
  if (rc >= 0) return rc;
  cli_log_init("smtp-relay", app.verbosity);

  lsmtp_io *sigio = NULL;
  int sigfd = -1;
  static const int sigs[] = {SIGTERM, SIGINT};
  /* Signals first, so that the worker threads inherit the SIGPIPE ignore. */
  if (cli_signal_pipe(sigs, 2, &sigfd) != 0) {
    cli_log(CLI_ERROR, "cannot set up signal handling: %s", strerror(errno));
    return EX_OSERR;
  }
  if ((rc = configure(&app)) < 0 && (rc = start(&app)) < 0 &&
      lsmtp_loop_io_new(app.loop, &sigio, sigfd, LSMTP_IO_READ, on_signal_pipe, &app) !=
          LSMTP_OK)
    rc = EX_OSERR;
  if (rc < 0) {
    cli_log(CLI_INFO, "ready: spool %s, %zu route(s)%s, STARTTLS %s, DNS %s%s, MX port %u",
            app.spool_dir, app.nroutes, app.have_smarthost ? ", smarthost" : "",
            app.tls_mode == RL_TLS_OFF ? "off"
            : app.tls_mode == RL_TLS_REQUIRED ? "required" : "opportunistic",
            app.dns_file ? "from " : "system", app.dns_file ? app.dns_file : "",
            app.mx_port);
    rc = lsmtp_loop_run(app.loop) == LSMTP_OK ? EX_OK : EX_OSERR;
  }
  if (rl_queue_in_flight(&app) > 0) {
    /* A worker is inside a blocking lsmtp_submit that cannot be
     * interrupted. Its message is still queued (its envelope was not
     * changed), so leaving now loses nothing; at worst the next hop gets
     * it twice. */
    cli_log(CLI_INFO, "stopped; %zu delivery(ies) abandoned, still queued",
            rl_queue_in_flight(&app));
    fflush(NULL);
    _exit(rc);
  }
  rl_workers_stop(&app);
  lsmtp_loop_timer_del(abandon_timer);
  lsmtp_loop_io_del(sigio);
  close(sigfd);
  lsmtp_net_server_del(app.ns);
  rl_queue_del(&app);
  lsmtp_loop_del(app.loop);
  lsmtp_spool_del(app.spool);
  lsmtp_server_config_del(app.cfg);
  rl_dnsfile_free(&app);
  if (rc == EX_OK) cli_log(CLI_INFO, "stopped");
  return rc;
}
