/* smtp-send: submit one message to a mail server, like msmtp or
 * "sendmail -t". Reads the message from FILE or stdin, takes recipients
 * from --to and (with -t) from To/Cc/Bcc, and sends it with lsmtp_submit.
 * Exit codes are those of <sysexits.h>; see docs/man/smtp-send.1. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <lsmtp/lsmtp.h>
#include <lsmtp/submit.h>

#include "cli.h"
#include "send.h"

#define DEFAULT_PORT 587u
#define SECRET_MAX 4096

static const char usage_text[] =
    "usage: smtp-send --server HOST[:PORT] --from ADDR (--to ADDR ... | -t)\n"
    "                 [--user NAME (--password-file F | --password-env VAR |\n"
    "                  --oauth2-token-file F)] [--auth MECH]\n"
    "                 [--allow-plaintext-auth] [--helo NAME]\n"
    "                 [--starttls | --tls | --no-tls] [--ca-file F]\n"
    "                 [--tls-name NAME] [--insecure]\n"
    "                 [--timeout SECONDS] [--dsn-notify LIST]\n"
    "                 [--dsn-ret FULL|HDRS] [--envid ID] [--requiretls]\n"
    "                 [-v] [FILE|-]\n"
    "\n"
    "  --server HOST[:PORT]    the submission server; PORT defaults to 587\n"
    "                          (STARTTLS required); 465 means implicit TLS;\n"
    "                          IPv6 literals in brackets: [::1]:2525. Every\n"
    "                          address HOST resolves to is tried in turn\n"
    "  --from ADDR, -f ADDR    envelope sender (\"\" or \"<>\": null sender)\n"
    "  --to ADDR               a recipient (an address list is accepted);\n"
    "                          may be given more than once\n"
    "  -t                      also take recipients from To:, Cc: and Bcc:\n"
    "  --user NAME             authenticate (AUTH) as NAME with the secret from\n"
    "  --password-file F       the first line of F,\n"
    "  --password-env VAR      the environment variable VAR, or\n"
    "  --oauth2-token-file F   an OAuth 2.0 bearer token (first line of F)\n"
    "  --auth MECH             SASL mechanism (PLAIN, LOGIN, CRAM-MD5,\n"
    "                          SCRAM-SHA-256, XOAUTH2, OAUTHBEARER); default:\n"
    "                          the strongest the server offers\n"
    "  --allow-plaintext-auth  send credentials even without TLS\n"
    "  --starttls              require STARTTLS (RFC 3207; the default on\n"
    "                          port 587): no STARTTLS, no message\n"
    "  --tls                   implicit TLS (RFC 8314; the default on 465)\n"
    "  --no-tls                plaintext, also on ports 587 and 465\n"
    "  --ca-file F             trust the CA certificates in F (PEM) instead\n"
    "                          of the system's\n"
    "  --tls-name NAME         the name the server's certificate must carry\n"
    "                          (default: HOST; needed when HOST is an IP\n"
    "                          address)\n"
    "  --insecure              do not verify the server's certificate\n"
    "  --helo NAME             EHLO name (default: this host's name)\n"
    "  --timeout SECONDS       limit for the connect and for each server reply\n"
    "                          (default: 30 s connect, RFC 5321 reply limits)\n"
    "  --dsn-notify LIST       NEVER, or SUCCESS,FAILURE,DELAY (RFC 3461)\n"
    "  --dsn-ret FULL|HDRS     what a bounce returns\n"
    "  --envid ID              envelope identifier for DSNs\n"
    "  --requiretls            RFC 8689 REQUIRETLS (implies --starttls on\n"
    "                          ports other than 465)\n"
    "  -v, --verbose           print the dialogue on stderr (no secrets)\n"
    "  -i, -oi                 accepted for sendmail compatibility (a lone\n"
    "                          \".\" never ends the input anyway)\n"
    "  -h, --help              print this help\n"
    "\n"
    "The message is read to the end of FILE (or stdin for \"-\" or none).\n"
    "Bcc: is removed; Date: and Message-ID: are added when missing.\n"
    "Exit status: 0 sent to at least one recipient; 64 usage; 65 bad\n"
    "message; 66 cannot read input; 68 unknown host; 69 refused\n"
    "permanently or certificate refused; 74 input error; 75 temporary\n"
    "failure (try later), STARTTLS missing or TLS handshake failed;\n"
    "77 authentication refused; 78 configuration error.\n";

enum {
  OPT_SERVER = 256, OPT_FROM, OPT_TO, OPT_USER, OPT_PASSWORD_FILE,
  OPT_PASSWORD_ENV, OPT_OAUTH_FILE, OPT_AUTH, OPT_PLAIN_AUTH, OPT_HELO,
  OPT_TIMEOUT, OPT_DSN_NOTIFY, OPT_DSN_RET, OPT_ENVID, OPT_REQUIRETLS,
  OPT_STARTTLS, OPT_TLS, OPT_NO_TLS, OPT_CA_FILE, OPT_TLS_NAME, OPT_INSECURE
};

static const struct option long_options[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"user", required_argument, NULL, OPT_USER},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"password-env", required_argument, NULL, OPT_PASSWORD_ENV},
    {"oauth2-token-file", required_argument, NULL, OPT_OAUTH_FILE},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"allow-plaintext-auth", no_argument, NULL, OPT_PLAIN_AUTH},
    {"helo", required_argument, NULL, OPT_HELO},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"dsn-notify", required_argument, NULL, OPT_DSN_NOTIFY},
    {"dsn-ret", required_argument, NULL, OPT_DSN_RET},
    {"envid", required_argument, NULL, OPT_ENVID},
    {"requiretls", no_argument, NULL, OPT_REQUIRETLS},
    {"starttls", no_argument, NULL, OPT_STARTTLS},
    {"tls", no_argument, NULL, OPT_TLS},
    {"no-tls", no_argument, NULL, OPT_NO_TLS},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"tls-name", required_argument, NULL, OPT_TLS_NAME},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

typedef struct config {
  char host[256];
  unsigned port;
  const char *from;
  int from_set;
  int take_headers; /* -t */
  const char *user, *password_file, *password_env, *oauth_file;
  lsmtp_sasl_mech mech;
  int plain_auth;
  const char *helo;
  uint32_t timeout_ms;
  unsigned notify;
  lsmtp_dsn_ret ret;
  const char *envid;
  int requiretls;
  int opt_starttls, opt_tls, opt_no_tls; /* as given */
  const char *ca_file, *tls_name;
  int insecure;
  lsmtp_submit_tls tls;   /* the mode chosen from the options and the port */
  const char *tls_reason; /* why TLS is on: the option or the port */
  int verbose;
  const char *input;
  rcpt_list rcpts;
} config;

/* ---- option values ---- */

/* "host", "host:port", "[v6]", "[v6]:port"; a bare IPv6 address (more than
 * one colon) is a host without a port. */
static int parse_server(const char *s, config *c) {
  const char *host = s, *port = NULL;
  size_t hlen;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || (close[1] != '\0' && close[1] != ':')) return -1;
    host = s + 1;
    hlen = (size_t)(close - host);
    if (close[1] == ':') port = close + 2;
  } else {
    const char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) colon = NULL; /* bare IPv6 */
    hlen = colon ? (size_t)(colon - s) : strlen(s);
    if (colon) port = colon + 1;
  }
  if (hlen == 0 || hlen >= sizeof c->host) return -1;
  memcpy(c->host, host, hlen);
  c->host[hlen] = '\0';
  c->port = DEFAULT_PORT;
  if (port) {
    uint64_t v;
    if (cli_parse_u64(port, 65535, &v) != 0 || v == 0) return -1;
    c->port = (unsigned)v;
  }
  return 0;
}

/* A mailbox as --from/--to take it: "a@b" or "<a@b>"; "" / "<>" is the
 * null path (only for --from). */
static int check_mailbox(const char *addr, int reverse) {
  char buf[LSMTP_MAX_PATH + 3];
  size_t n = strlen(addr);
  if (n + 2 >= sizeof buf) return -1;
  buf[0] = '<';
  memcpy(buf + 1, addr, n);
  buf[n + 1] = '>';
  lsmtp_path path;
  size_t used = 0;
  if (lsmtp_path_parse(buf, n + 2, LSMTP_ADDR_SMTPUTF8, reverse, !reverse, &path, &used) !=
      LSMTP_OK)
    return -1;
  return used == n + 2 && !path.had_route ? 0 : -1;
}

static const char *strip_angle(const char *s, char *buf, size_t cap) {
  size_t n = strlen(s);
  if (n >= 2 && s[0] == '<' && s[n - 1] == '>' && n - 2 < cap) {
    memcpy(buf, s + 1, n - 2);
    buf[n - 2] = '\0';
    return buf;
  }
  return s;
}

static int parse_notify(const char *s, unsigned *out) {
  unsigned bits = 0;
  char buf[64];
  if (strlen(s) >= sizeof buf) return -1;
  strcpy(buf, s);
  for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
    if (strcasecmp(w, "NEVER") == 0) bits |= LSMTP_NOTIFY_NEVER;
    else if (strcasecmp(w, "SUCCESS") == 0) bits |= LSMTP_NOTIFY_SUCCESS;
    else if (strcasecmp(w, "FAILURE") == 0) bits |= LSMTP_NOTIFY_FAILURE;
    else if (strcasecmp(w, "DELAY") == 0) bits |= LSMTP_NOTIFY_DELAY;
    else return -1;
  }
  if (!bits || ((bits & LSMTP_NOTIFY_NEVER) && bits != LSMTP_NOTIFY_NEVER)) return -1;
  *out = bits;
  return 0;
}

static int add_to_cb(void *ud, const char *addr) {
  if (check_mailbox(addr, 0) != 0) {
    cli_log(CLI_ERROR, "bad recipient address: %s", addr);
    return -1;
  }
  return rcpt_list_add(ud, addr) == 0 ? 0 : -1;
}

/* --to takes an address list, so "Name <a@b>, c@d" works too. */
static int add_to(config *c, const char *arg) {
  const char *err = NULL;
  if (addrlist_parse(arg, strlen(arg), add_to_cb, &c->rcpts, &err) != 0) {
    if (strcmp(err, "stopped") != 0) cli_log(CLI_ERROR, "bad --to \"%s\": %s", arg, err);
    return EX_USAGE;
  }
  return 0;
}

/* The TLS mode: an explicit option wins; otherwise the port decides (587
 * submission: STARTTLS required; 465 submissions: implicit TLS; others:
 * plaintext). */
static int choose_tls(config *c) {
  if (c->opt_starttls + c->opt_tls + c->opt_no_tls > 1)
    return cli_usage_error("give only one of --starttls, --tls and --no-tls%s", NULL);
  const int tls_setting = c->ca_file || c->tls_name || c->insecure;
  if (c->opt_starttls) {
    c->tls = LSMTP_SUBMIT_TLS_STARTTLS;
    c->tls_reason = "--starttls";
  } else if (c->opt_tls) {
    c->tls = LSMTP_SUBMIT_TLS_IMPLICIT;
    c->tls_reason = "--tls";
  } else if (c->opt_no_tls) {
    c->tls = LSMTP_SUBMIT_TLS_NONE;
    if (c->requiretls) return cli_usage_error("--requiretls needs TLS: drop --no-tls%s", NULL);
    if (tls_setting)
      return cli_usage_error("--ca-file, --tls-name and --insecure do not go with --no-tls%s", NULL);
  } else if (c->port == 465) {
    c->tls = LSMTP_SUBMIT_TLS_IMPLICIT;
    c->tls_reason = "port 465 (implicit TLS)";
  } else if (c->port == DEFAULT_PORT) {
    c->tls = LSMTP_SUBMIT_TLS_STARTTLS;
    c->tls_reason = "port 587 (STARTTLS required)";
  } else if (c->requiretls) {
    c->tls = LSMTP_SUBMIT_TLS_STARTTLS;
    c->tls_reason = "--requiretls";
  } else if (tls_setting) {
    return cli_usage_error("--ca-file, --tls-name and --insecure need TLS: add --starttls or --tls "
                       "(ports 587 and 465 use TLS by default)%s", NULL);
  }
  if (c->requiretls && c->insecure)
    return cli_usage_error("--requiretls needs a verified certificate: drop --insecure%s", NULL);
  return 0;
}

static int parse_args(int argc, char **argv, config *c) {
  int opt, rc;
  while ((opt = getopt_long(argc, argv, "f:io:tvh", long_options, NULL)) != -1) {
    switch (opt) {
    case OPT_SERVER:
      if (parse_server(optarg, c) != 0) return cli_usage_error("bad --server \"%s\"", optarg);
      break;
    case 'f':
    case OPT_FROM:
      c->from = optarg;
      c->from_set = 1;
      break;
    case OPT_TO:
      if ((rc = add_to(c, optarg)) != 0) return rc;
      break;
    case 't': c->take_headers = 1; break;
    case 'i': break;
    case 'o':
      if (strcmp(optarg, "i") != 0) return cli_usage_error("unsupported option -o%s", optarg);
      break;
    case OPT_USER: c->user = optarg; break;
    case OPT_PASSWORD_FILE: c->password_file = optarg; break;
    case OPT_PASSWORD_ENV: c->password_env = optarg; break;
    case OPT_OAUTH_FILE: c->oauth_file = optarg; break;
    case OPT_AUTH:
      c->mech = lsmtp_sasl_mech_from_name(optarg, strlen(optarg));
      if (c->mech == LSMTP_SASL_NONE) return cli_usage_error("unknown --auth mechanism \"%s\"", optarg);
      break;
    case OPT_PLAIN_AUTH: c->plain_auth = 1; break;
    case OPT_HELO:
      if (lsmtp_domain_check(optarg, strlen(optarg), 0, NULL) != LSMTP_OK)
        return cli_usage_error("bad --helo \"%s\" (a domain or [address literal])", optarg);
      c->helo = optarg;
      break;
    case OPT_TIMEOUT: {
      uint64_t v;
      if (cli_parse_u64(optarg, 86400, &v) != 0 || v == 0)
        return cli_usage_error("bad --timeout \"%s\" (1..86400 seconds)", optarg);
      c->timeout_ms = (uint32_t)(v * 1000u);
      break;
    }
    case OPT_DSN_NOTIFY:
      if (parse_notify(optarg, &c->notify) != 0)
        return cli_usage_error("bad --dsn-notify \"%s\" (NEVER or SUCCESS,FAILURE,DELAY)", optarg);
      break;
    case OPT_DSN_RET:
      if (strcasecmp(optarg, "FULL") == 0) c->ret = LSMTP_RET_FULL;
      else if (strcasecmp(optarg, "HDRS") == 0) c->ret = LSMTP_RET_HDRS;
      else return cli_usage_error("bad --dsn-ret \"%s\" (FULL or HDRS)", optarg);
      break;
    case OPT_ENVID: c->envid = optarg; break;
    case OPT_REQUIRETLS: c->requiretls = 1; break;
    case OPT_STARTTLS: c->opt_starttls = 1; break;
    case OPT_TLS: c->opt_tls = 1; break;
    case OPT_NO_TLS: c->opt_no_tls = 1; break;
    case OPT_CA_FILE: c->ca_file = optarg; break;
    case OPT_TLS_NAME:
      if (lsmtp_domain_check(optarg, strlen(optarg), 0, NULL) != LSMTP_OK || optarg[0] == '[')
        return cli_usage_error("bad --tls-name \"%s\" (a host name)", optarg);
      c->tls_name = optarg;
      break;
    case OPT_INSECURE: c->insecure = 1; break;
    case 'v': c->verbose++; break;
    case 'h':
      fputs(usage_text, stdout);
      exit(0);
    default: return cli_usage_error("bad option%s", NULL);
    }
  }
  if (optind < argc) c->input = argv[optind++];
  if (optind < argc) return cli_usage_error("unexpected argument \"%s\"", argv[optind]);
  if (!c->host[0]) return cli_usage_error("--server is required%s", NULL);
  if (!c->from_set) return cli_usage_error("--from is required%s", NULL);
  if (!c->take_headers && c->rcpts.n == 0) return cli_usage_error("no recipient: give --to or -t%s", NULL);
  int secrets = !!c->password_file + !!c->password_env + !!c->oauth_file;
  if (secrets > 1)
    return cli_usage_error("give one of --password-file, --password-env, --oauth2-token-file%s", NULL);
  if (c->user && secrets == 0)
    return cli_usage_error("--user needs --password-file, --password-env or --oauth2-token-file%s", NULL);
  if (!c->user && secrets) return cli_usage_error("a password or token needs --user%s", NULL);
  return choose_tls(c);
}

/* ---- secrets ---- */

/* The first line of path, without its line end. */
static int read_secret_file(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    cli_log(CLI_ERROR, "cannot read %s: %s", path, strerror(errno));
    return EX_CONFIG;
  }
  int ok = fgets(out, (int)cap, f) != NULL;
  fclose(f);
  if (!ok) {
    cli_log(CLI_ERROR, "%s is empty", path);
    return EX_CONFIG;
  }
  out[strcspn(out, "\r\n")] = '\0';
  return 0;
}

static int load_secret(const config *c, char *out, size_t cap) {
  out[0] = '\0';
  if (c->password_file) return read_secret_file(c->password_file, out, cap);
  if (c->oauth_file) return read_secret_file(c->oauth_file, out, cap);
  if (c->password_env) {
    const char *v = getenv(c->password_env);
    if (!v) {
      cli_log(CLI_ERROR, "environment variable %s is not set", c->password_env);
      return EX_CONFIG;
    }
    if (strlen(v) >= cap) {
      cli_log(CLI_ERROR, "environment variable %s is too long", c->password_env);
      return EX_CONFIG;
    }
    strcpy(out, v);
  }
  return 0;
}

/* ---- output ---- */

static void on_log(void *ud, lsmtp_submit_log_kind kind, const char *line) {
  (void)ud;
  static const char *const arrows[] = {"*", "->", "<-"};
  cli_log(CLI_VERBOSE, "%s %s", arrows[kind], line);
}

/* "250 2.1.5 Ok" in one line. */
static void format_reply(const lsmtp_reply *r, char *out, size_t cap) {
  char enh[24] = "";
  if (r->enhanced.cls)
    snprintf(enh, sizeof enh, "%u.%u.%u ", r->enhanced.cls, r->enhanced.subject,
             r->enhanced.detail);
  snprintf(out, cap, "%d %s%s", r->code, enh, r->text);
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
}

static void report(const lsmtp_submit_result *res) {
  char text[1200];
  const size_t n = lsmtp_submit_result_rcpt_count(res);
  const lsmtp_reply *final = lsmtp_submit_result_reply(res);
  int any_rcpt_reply = 0;
  for (size_t i = 0; i < n; i++) any_rcpt_reply |= lsmtp_submit_result_rcpt_reply(res, i) != NULL;
  for (size_t i = 0; any_rcpt_reply && i < n; i++) {
    const char *addr = lsmtp_submit_result_rcpt_address(res, i);
    const lsmtp_reply *r = lsmtp_submit_result_rcpt_reply(res, i);
    const int st = lsmtp_submit_result_rcpt_status(res, i);
    if (r) format_reply(r, text, sizeof text);
    if (st == LSMTP_OK) cli_log(CLI_INFO, "%s: %s", addr, text);
    else if (r && r->code / 100 != 2)
      cli_log(CLI_INFO, "%s: %s: %s", addr,
              r->code / 100 == 4 ? "refused temporarily" : "refused", text);
    else cli_log(CLI_INFO, "%s: not sent (%s)", addr, lsmtp_strerror(st));
  }
  int st = lsmtp_submit_result_status(res);
  if (st == LSMTP_OK) {
    if (final) {
      format_reply(final, text, sizeof text);
      cli_log(CLI_VERBOSE, "* message accepted: %s", text);
    }
    return;
  }
  cli_log(CLI_ERROR, "%s", lsmtp_submit_result_detail(res));
}

static int exit_code(const lsmtp_submit_result *res) {
  const int st = lsmtp_submit_result_status(res);
  switch (st) {
  case LSMTP_OK: return 0;
  case LSMTP_ERR_DNS: return lsmtp_submit_result_temporary(res) ? EX_TEMPFAIL : EX_NOHOST;
  case LSMTP_ERR_AUTH: return EX_NOPERM;
  case LSMTP_ERR_INSECURE:
  case LSMTP_ERR_INVALID: return EX_CONFIG; /* TLS settings that cannot work */
  case LSMTP_ERR_CERT: return EX_UNAVAILABLE;
  case LSMTP_ERR_TLS: return EX_TEMPFAIL;
  case LSMTP_ERR_REFUSED:
  case LSMTP_ERR_UNSUPPORTED:
  case LSMTP_ERR_LIMIT: return EX_UNAVAILABLE;
  case LSMTP_ERR_SYNTAX:
  case LSMTP_ERR_TOO_LONG:
  case LSMTP_ERR_UTF8: return EX_DATAERR;
  case LSMTP_ERR_ABORTED: return EX_IOERR;
  case LSMTP_ERR_NOMEM: return EX_OSERR;
  default: return lsmtp_submit_result_temporary(res) ? EX_TEMPFAIL : EX_SOFTWARE;
  }
}

/* The default EHLO name: this host's name when it is a valid domain. */
static const char *default_helo(char *buf, size_t cap) {
  if (gethostname(buf, cap) == 0) {
    buf[cap - 1] = '\0';
    if (lsmtp_domain_check(buf, strlen(buf), 0, NULL) == LSMTP_OK) return buf;
  }
  return "localhost";
}

static int run(config *c) {
  /* The message first: an unreadable input never opens a connection. */
  FILE *in = stdin;
  const char *name = "stdin";
  if (c->input && strcmp(c->input, "-") != 0) {
    in = fopen(c->input, "rb");
    if (!in) {
      cli_log(CLI_ERROR, "cannot open %s: %s", c->input, strerror(errno));
      return EX_NOINPUT;
    }
    name = c->input;
  }
  message msg = {NULL, 0};
  int rc = message_read(in, name, &msg);
  if (in != stdin) fclose(in);
  if (rc != 0) return rc;

  char hostname[256];
  const char *helo = c->helo ? c->helo : default_helo(hostname, sizeof hostname);
  char from_buf[LSMTP_MAX_PATH + 1];
  const char *from = strip_angle(c->from, from_buf, sizeof from_buf);
  if (*from && check_mailbox(from, 1) != 0) {
    rc = cli_usage_error("bad --from \"%s\"", c->from);
    goto out;
  }
  const char *at = strrchr(from, '@');
  rc = message_prepare(&msg, at && at[1] ? at + 1 : helo, c->take_headers ? &c->rcpts : NULL);
  if (rc != 0) goto out;
  if (c->rcpts.n == 0) {
    rc = cli_usage_error("no recipient found (To:, Cc: and Bcc: are empty)%s", NULL);
    goto out;
  }
  for (size_t i = 0; i < c->rcpts.n; i++)
    if (check_mailbox(c->rcpts.addr[i], 0) != 0) {
      cli_log(CLI_ERROR, "bad recipient address: %s", c->rcpts.addr[i]);
      rc = EX_DATAERR;
      goto out;
    }

  char secret[SECRET_MAX];
  if ((rc = load_secret(c, secret, sizeof secret)) != 0) goto out;

  lsmtp_submit_options opts;
  lsmtp_submit_options_init(&opts);
  opts.host = c->host;
  opts.port = c->port;
  opts.timeout_ms = c->timeout_ms;
  opts.helo_name = helo;
  opts.from = from;
  if (c->user) {
    opts.username = c->user;
    if (c->oauth_file) opts.oauth_token = secret;
    else opts.password = secret;
  }
  opts.auth_mech = c->mech;
  opts.allow_plaintext_auth = c->plain_auth;
  opts.dsn_notify = c->notify;
  opts.dsn_ret = c->ret;
  opts.envid = c->envid;
  opts.requiretls = c->requiretls;
  opts.tls = c->tls;
  opts.tls_ca_file = c->ca_file;
  opts.tls_name = c->tls_name;
  opts.tls_no_verify = c->insecure;
  if (c->verbose) opts.log = on_log;

  lsmtp_submit_source src = lsmtp_submit_source_buffer(msg.data, msg.len);
  lsmtp_submit_result *res = NULL;
  int st = lsmtp_submit(&opts, (const char *const *)c->rcpts.addr, c->rcpts.n, &src, &res);
  memset(secret, 0, sizeof secret);
  if (!res) {
    cli_log(CLI_ERROR, "cannot submit: %s", lsmtp_strerror(st));
    rc = st == LSMTP_ERR_NOMEM ? EX_OSERR : EX_SOFTWARE;
    goto out;
  }
  report(res);
  rc = exit_code(res);
  if (st == LSMTP_ERR_INVALID && !c->tls_name && strstr(lsmtp_submit_result_detail(res), "tls_name"))
    cli_log(CLI_ERROR, "give the certificate's name with --tls-name NAME (or --insecure)");
  lsmtp_submit_result_del(res);
out:
  message_free(&msg);
  return rc;
}

/* A build without mbedTLS cannot do what the options or the port ask. */
static int check_tls_build(const config *c) {
  if (c->tls == LSMTP_SUBMIT_TLS_NONE || lsmtp_tls_available()) return 0;
  if (c->opt_starttls || c->opt_tls || c->ca_file || c->tls_name || c->insecure)
    cli_log(CLI_ERROR, "this smtp-send was built without TLS (mbedTLS): %s, --ca-file, "
                       "--tls-name and --insecure are not available",
            c->opt_tls ? "--tls" : "--starttls");
  else
    cli_log(CLI_ERROR, "%s needs TLS, but this smtp-send was built without it (mbedTLS); "
                       "add --no-tls to send in plaintext",
            c->tls_reason);
  return EX_CONFIG;
}

int main(int argc, char **argv) {
  cli_log_init(argv[0], 0);
  /* A server that hangs up must never kill us with SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  config c;
  memset(&c, 0, sizeof c);
  int rc = parse_args(argc, argv, &c);
  if (rc == 0) {
    cli_log_init(argv[0], c.verbose);
    rc = check_tls_build(&c);
    if (rc != 0) {
      /* said why */
    } else if (!c.plain_auth && c.user && c.tls == LSMTP_SUBMIT_TLS_NONE) {
      cli_log(CLI_ERROR, "refusing to send credentials without TLS; use --starttls or --tls, "
                         "or add --allow-plaintext-auth to send them in the clear");
      rc = EX_CONFIG;
    } else {
      rc = run(&c);
    }
  }
  rcpt_list_free(&c.rcpts);
  return rc;
}
