/* lsmtp_submit: one blocking call that submits a message. It connects
 * (lsmtp_tcp_connect), then drives the sans-I/O client session with a
 * poll() loop whose timer is the session's own per-state timeout
 * (lsmtp_client_timeout_ms, restarted when bytes move or the state
 * changes), so no wait is unbounded. The session's callbacks run the
 * script EHLO -> AUTH -> message -> QUIT and collect per-recipient
 * results. The dialogue log is made from the bytes actually written and
 * read, with credentials replaced and the message summarised.
 *
 * TLS: the loop moves bytes through the transport of submit_xport.c,
 * which puts the TLS filter between the session and the socket once a
 * handshake starts: right after the connect (implicit TLS) or after
 * STARTTLS's 220 (then lsmtp_client_tls_started sends EHLO again). The
 * script asks for STARTTLS before anything else, and a required STARTTLS
 * that cannot happen ends the session with QUIT, never with MAIL. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lsmtp/submit.h>

#include "internal.h"
#include "submit_xport.h"

#define SUBMIT_PORT 587u
#define READ_BUF 16384
#define LOG_LINE_MAX 1000
#define DETAIL_MAX 300

enum { SRC_BUFFER = 1, SRC_FILE, SRC_FD, SRC_CALLBACK };

/* ---- the result ---- */

typedef struct saved_reply {
  lsmtp_reply reply;
  char *text;
  int valid;
} saved_reply;

typedef struct rcpt_result {
  char *address;
  int status;
  saved_reply reply; /* RCPT's */
} rcpt_result;

struct lsmtp_submit_result {
  const lsmtp_allocator *alloc;
  int status;
  int temporary;
  int os_error;
  saved_reply reply;
  char verb[16];
  char detail[DETAIL_MAX];
  char peer[LSMTP_NET_ADDR_MAX];
  const char *tls_version, *tls_cipher; /* static strings of mbedTLS */
  char tls_verified[256];
  rcpt_result *rcpts;
  size_t n_rcpts, accepted;
};

static void saved_free(const lsmtp_allocator *a, saved_reply *s) {
  lsmtp__free(a, s->text);
  memset(s, 0, sizeof *s);
}

static int saved_set(const lsmtp_allocator *a, saved_reply *s, const lsmtp_reply *r) {
  saved_free(a, s);
  if (!r) return LSMTP_OK;
  s->text = lsmtp__strndup(a, r->text ? r->text : "", r->text ? r->text_len : 0);
  if (!s->text) return LSMTP_ERR_NOMEM;
  s->reply = *r;
  s->reply.text = s->text;
  s->valid = 1;
  return LSMTP_OK;
}

void lsmtp_submit_result_del(lsmtp_submit_result *res) {
  if (!res) return;
  const lsmtp_allocator *a = res->alloc;
  for (size_t i = 0; res->rcpts && i < res->n_rcpts; i++) {
    lsmtp__free(a, res->rcpts[i].address);
    saved_free(a, &res->rcpts[i].reply);
  }
  lsmtp__free(a, res->rcpts);
  saved_free(a, &res->reply);
  lsmtp__free(a, res);
}

int lsmtp_submit_result_status(const lsmtp_submit_result *res) {
  return res ? res->status : LSMTP_ERR_INVALID;
}
int lsmtp_submit_result_temporary(const lsmtp_submit_result *res) {
  return res ? res->temporary : 0;
}
const lsmtp_reply *lsmtp_submit_result_reply(const lsmtp_submit_result *res) {
  return res && res->reply.valid ? &res->reply.reply : NULL;
}
const char *lsmtp_submit_result_verb(const lsmtp_submit_result *res) {
  return res ? res->verb : "";
}
const char *lsmtp_submit_result_detail(const lsmtp_submit_result *res) {
  return res ? res->detail : "";
}
const char *lsmtp_submit_result_peer(const lsmtp_submit_result *res) {
  return res ? res->peer : "";
}
const char *lsmtp_submit_result_tls_version(const lsmtp_submit_result *res) {
  return res && res->tls_version ? res->tls_version : "";
}
const char *lsmtp_submit_result_tls_cipher(const lsmtp_submit_result *res) {
  return res && res->tls_cipher ? res->tls_cipher : "";
}
const char *lsmtp_submit_result_tls_verified_name(const lsmtp_submit_result *res) {
  return res ? res->tls_verified : "";
}
int lsmtp_submit_result_os_error(const lsmtp_submit_result *res) {
  return res ? res->os_error : 0;
}
size_t lsmtp_submit_result_rcpt_count(const lsmtp_submit_result *res) {
  return res ? res->n_rcpts : 0;
}
size_t lsmtp_submit_result_accepted(const lsmtp_submit_result *res) {
  return res ? res->accepted : 0;
}
const char *lsmtp_submit_result_rcpt_address(const lsmtp_submit_result *res,
                                             size_t i) {
  return res && i < res->n_rcpts ? res->rcpts[i].address : NULL;
}
int lsmtp_submit_result_rcpt_status(const lsmtp_submit_result *res, size_t i) {
  return res && i < res->n_rcpts ? res->rcpts[i].status : LSMTP_ERR_INVALID;
}
const lsmtp_reply *lsmtp_submit_result_rcpt_reply(const lsmtp_submit_result *res,
                                                  size_t i) {
  if (!res || i >= res->n_rcpts || !res->rcpts[i].reply.valid) return NULL;
  return &res->rcpts[i].reply.reply;
}

/* ---- options and sources ---- */

void lsmtp_submit_options_init(lsmtp_submit_options *opts) {
  if (opts) memset(opts, 0, sizeof *opts);
}

lsmtp_submit_source lsmtp_submit_source_buffer(const void *data, size_t len) {
  lsmtp_submit_source s;
  memset(&s, 0, sizeof s);
  s.kind_ = SRC_BUFFER;
  s.data = data;
  s.len = len;
  s.fd = -1;
  return s;
}

lsmtp_submit_source lsmtp_submit_source_file(FILE *file) {
  lsmtp_submit_source s;
  memset(&s, 0, sizeof s);
  s.kind_ = SRC_FILE;
  s.file = file;
  s.fd = -1;
  return s;
}

lsmtp_submit_source lsmtp_submit_source_fd(int fd) {
  lsmtp_submit_source s;
  memset(&s, 0, sizeof s);
  s.kind_ = SRC_FD;
  s.fd = fd;
  return s;
}

lsmtp_submit_source lsmtp_submit_source_callback(lsmtp_submit_read_cb read,
                                                 void *user_data) {
  lsmtp_submit_source s;
  memset(&s, 0, sizeof s);
  s.kind_ = SRC_CALLBACK;
  s.read = read;
  s.read_user_data = user_data;
  s.fd = -1;
  return s;
}

/* ---- one run ---- */

typedef enum out_mode { OUT_CMD = 0, OUT_BODY, OUT_BDAT } out_mode;

typedef struct submit_run {
  const lsmtp_submit_options *opts;
  const lsmtp_allocator *alloc;
  lsmtp_submit_result *res;
  lsmtp_client *cli;
  lsmtp__xport x;
  const lsmtp_submit_source *src;
  size_t src_off; /* buffer source: bytes handed out */
  int src_error;  /* the source failed: status */
  int src_errno;

  const char *const *rcpts;
  size_t n_rcpts;
  lsmtp_client_rcpt *crcpts;

  /* the script */
  int auth_started, auth_status;
  int msg_sent, msg_done, msg_status;
  saved_reply msg_reply, auth_reply, end_reply;
  char msg_verb[16], end_verb[16], last_verb[16];
  int closed, closed_status;
  int local_error; /* a call the script made failed before sending */
  uint64_t start_ms; /* when lsmtp_submit began (total_timeout_ms) */

  /* TLS */
  lsmtp_tls_config *tls_cfg;
  const char *tls_name;  /* name to verify and send as SNI; NULL: none */
  int starttls_required; /* STARTTLS, or OPPORTUNISTIC with REQUIRETLS */
  int starttls_tried;    /* the script asked for it (or found it missing) */
  int starttls_go;       /* 220 received: handshake after this read */
  int handshaking;
  saved_reply tls_reply; /* a refusal of STARTTLS */

  /* dialogue log */
  out_mode out_mode;
  char out_line[LOG_LINE_MAX + 1];
  size_t out_len;
  int out_bol, out_dot;      /* body end detection: ".\r\n" at a line start */
  uint64_t body_bytes;
  uint64_t bdat_left, bdat_total;
  int bdat_last;
  int auth_active;           /* between "AUTH ..." and its final reply */
  char in_line[LOG_LINE_MAX + 1];
  size_t in_len;
} submit_run;

static void set_detail(submit_run *r, const char *fmt, const char *a, const char *b) {
  snprintf(r->res->detail, sizeof r->res->detail, fmt, a ? a : "", b ? b : "");
}

static void copy_verb(char *dst, const char *verb) {
  snprintf(dst, 16, "%s", verb ? verb : "");
}

/* -- logging -- */

static void log_line(submit_run *r, lsmtp_submit_log_kind kind, const char *line) {
  if (r->opts->log) r->opts->log(r->opts->log_user_data, kind, line);
}

static void log_info(submit_run *r, const char *fmt, const char *a, const char *b) {
  if (!r->opts->log) return;
  char line[LOG_LINE_MAX + 1];
  snprintf(line, sizeof line, fmt, a ? a : "", b ? b : "");
  log_line(r, LSMTP_SUBMIT_LOG_INFO, line);
}

static int starts_with_ci(const char *s, size_t n, const char *prefix) {
  size_t p = strlen(prefix);
  return n >= p && lsmtp__ieq(s, prefix, p);
}

/* A command line is complete (without CRLF): log it with credentials
 * replaced, and notice BDAT chunks whose bytes follow raw. */
static void out_command(submit_run *r, char *line, size_t n) {
  line[n] = '\0';
  if (starts_with_ci(line, n, "AUTH ")) {
    r->auth_active = 1;
    char *sp = memchr(line + 5, ' ', n - 5);
    if (sp) snprintf(sp, (size_t)(line + sizeof r->out_line - sp), " <redacted>");
    log_line(r, LSMTP_SUBMIT_LOG_SENT, line);
    return;
  }
  if (r->auth_active && !(n == 1 && line[0] == '*')) {
    log_line(r, LSMTP_SUBMIT_LOG_SENT, "<redacted>");
    return;
  }
  log_line(r, LSMTP_SUBMIT_LOG_SENT, line);
  if (starts_with_ci(line, n, "BDAT ")) {
    uint64_t size = 0;
    size_t i = 5;
    while (i < n && lsmtp__is_digit((unsigned char)line[i]))
      size = size * 10u + (uint64_t)(line[i++] - '0');
    r->bdat_left = r->bdat_total = size;
    r->bdat_last = starts_with_ci(line + i, n - i, " LAST");
    if (size) r->out_mode = OUT_BDAT;
  }
}

static void log_summary(submit_run *r, const char *what, uint64_t bytes) {
  char line[64];
  snprintf(line, sizeof line, "<%s: %llu bytes>", what, (unsigned long long)bytes);
  log_line(r, LSMTP_SUBMIT_LOG_SENT, line);
}

/* Bytes that were written to the server. */
static void log_out(submit_run *r, const char *p, size_t n) {
  if (!r->opts->log) return;
  size_t i = 0;
  while (i < n) {
    if (r->out_mode == OUT_BDAT) {
      uint64_t take = r->bdat_left < n - i ? r->bdat_left : n - i;
      r->bdat_left -= take;
      i += (size_t)take;
      if (r->bdat_left == 0) {
        log_summary(r, r->bdat_last ? "last chunk" : "chunk", r->bdat_total);
        r->out_mode = OUT_CMD;
      }
    } else if (r->out_mode == OUT_BODY) {
      const char c = p[i++];
      r->body_bytes++;
      if (r->out_dot == 0 && r->out_bol && c == '.') r->out_dot = 1;
      else if (r->out_dot == 1 && c == '\r') r->out_dot = 2;
      else if (r->out_dot == 2 && c == '\n') {
        log_summary(r, "message", r->body_bytes - 3);
        r->out_mode = OUT_CMD;
        r->out_dot = 0;
        continue;
      } else r->out_dot = 0;
      r->out_bol = c == '\n';
    } else {
      const char c = p[i++];
      if (c == '\n') {
        size_t len = r->out_len;
        if (len && r->out_line[len - 1] == '\r') len--;
        out_command(r, r->out_line, len);
        r->out_len = 0;
      } else if (r->out_len < LOG_LINE_MAX) {
        r->out_line[r->out_len++] = c;
      }
    }
  }
}

/* Bytes read from the server. */
static void log_in(submit_run *r, const char *p, size_t n) {
  if (!r->opts->log) return;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      size_t len = r->in_len;
      if (len && r->in_line[len - 1] == '\r') len--;
      r->in_line[len] = '\0';
      log_line(r, LSMTP_SUBMIT_LOG_RECEIVED, r->in_line);
      r->in_len = 0;
    } else if (r->in_len < LOG_LINE_MAX) {
      r->in_line[r->in_len++] = p[i];
    }
  }
}

/* -- the message source (called from lsmtp_client_pending) -- */

static int source_read(void *ud, char *buf, size_t cap, size_t *len) {
  submit_run *r = ud;
  const lsmtp_submit_source *s = r->src;
  *len = 0;
  switch (s->kind_) {
  case SRC_BUFFER: {
    size_t left = s->len - r->src_off;
    size_t n = left < cap ? left : cap;
    if (n) memcpy(buf, s->data + r->src_off, n);
    r->src_off += n;
    *len = n;
    return n ? LSMTP_OK : LSMTP_DONE;
  }
  case SRC_FILE: {
    size_t n = fread(buf, 1, cap, s->file);
    *len = n;
    if (n) return LSMTP_OK;
    if (ferror(s->file)) break;
    return LSMTP_DONE;
  }
  case SRC_FD: {
    ssize_t n;
    do n = read(s->fd, buf, cap);
    while (n < 0 && errno == EINTR);
    if (n < 0) break;
    *len = (size_t)n;
    return n ? LSMTP_OK : LSMTP_DONE;
  }
  case SRC_CALLBACK: {
    int rc = s->read(s->read_user_data, buf, cap, len);
    if (rc == LSMTP_PAUSED || *len > cap) rc = LSMTP_ERR_INVALID;
    if (rc < 0) {
      *len = 0;
      r->src_error = rc;
      return rc;
    }
    return rc;
  }
  default: break;
  }
  r->src_errno = errno;
  r->src_error = LSMTP_ERR_IO;
  return LSMTP_ERR_IO;
}

/* Size for SIZE=: the buffer's, or what is left of a regular file. */
static uint64_t source_size(const lsmtp_submit_source *s) {
  int fd = s->kind_ == SRC_FD ? s->fd : s->kind_ == SRC_FILE ? fileno(s->file) : -1;
  if (s->kind_ == SRC_BUFFER) return s->len;
  if (fd < 0) return 0;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  off_t pos = s->kind_ == SRC_FILE ? ftello(s->file) : lseek(fd, 0, SEEK_CUR);
  if (pos < 0 || pos > st.st_size) return 0;
  return (uint64_t)(st.st_size - pos);
}

static int has_8bit(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] & 0x80u) return 1;
  return 0;
}

/* -- the script: callbacks of the session -- */

static void fail_local(submit_run *r, int status, const char *what) {
  if (!r->local_error) {
    r->local_error = status;
    set_detail(r, "%s: %s", what, lsmtp_strerror(status));
  }
}

/* As fail_local with the whole explanation given. */
static void fail_with(submit_run *r, int status, const char *fmt, const char *a, const char *b) {
  if (!r->local_error) {
    r->local_error = status;
    set_detail(r, fmt, a, b);
  }
}

/* First thing once EHLO is answered in plaintext: STARTTLS if the mode
 * asks for it. Returns 1 when it took over the turn (STARTTLS sent, or
 * QUIT because it is required and missing), 0 to go on in plaintext. */
static int maybe_starttls(submit_run *r, int *cb_rc) {
  const lsmtp_submit_tls mode = r->opts->tls;
  if (r->starttls_tried || r->x.tls ||
      (mode != LSMTP_SUBMIT_TLS_STARTTLS && mode != LSMTP_SUBMIT_TLS_OPPORTUNISTIC))
    return 0;
  r->starttls_tried = 1;
  *cb_rc = 0;
  if (lsmtp_client_extensions(r->cli) & LSMTP_EXT_STARTTLS) {
    int rc = lsmtp_client_starttls(r->cli);
    if (rc == LSMTP_OK) return 1;
    fail_local(r, rc, "STARTTLS");
  } else if (r->starttls_required) {
    fail_with(r, LSMTP_ERR_TLS,
              "%s does not offer STARTTLS, which is required: nothing was sent%s",
              r->res->peer, NULL);
  } else {
    log_info(r, "%s does not offer STARTTLS: going on without TLS%s", r->res->peer, NULL);
    return 0;
  }
  *cb_rc = lsmtp_client_quit(r->cli) == LSMTP_OK ? 0 : LSMTP_ERR_ABORTED;
  return 1;
}

static int start_message(submit_run *r) {
  const lsmtp_submit_options *o = r->opts;
  lsmtp_client_message m;
  memset(&m, 0, sizeof m);
  m.reverse_path = o->from;
  m.rcpts = r->crcpts;
  m.n_rcpts = r->n_rcpts;
  m.body = o->body;
  if (m.body == LSMTP_BODY_NONE && r->src->kind_ == SRC_BUFFER &&
      (lsmtp_client_extensions(r->cli) & LSMTP_EXT_8BITMIME) &&
      has_8bit(r->src->data, r->src->len))
    m.body = LSMTP_BODY_8BITMIME;
  m.size_hint = o->size_hint ? o->size_hint : source_size(r->src);
  m.ret = o->dsn_ret;
  m.envid = o->envid;
  m.requiretls = o->requiretls;
  m.read = source_read;
  int rc = lsmtp_client_send(r->cli, &m);
  if (rc != LSMTP_OK) {
    const char *why = "cannot send the message";
    if (rc == LSMTP_ERR_UNSUPPORTED)
      why = "the server lacks an extension the message needs (SMTPUTF8, "
            "8BITMIME or REQUIRETLS)";
    else if (rc == LSMTP_ERR_LIMIT)
      why = "the message is larger than the server's SIZE, or too many recipients";
    fail_local(r, rc, why);
    return lsmtp_client_quit(r->cli);
  }
  r->msg_sent = 1;
  return LSMTP_OK;
}

static int cb_ready(void *ud) {
  submit_run *r = ud;
  const lsmtp_submit_options *o = r->opts;
  if (r->local_error || (r->auth_started && r->auth_status != LSMTP_OK) || r->msg_done)
    return lsmtp_client_quit(r->cli) == LSMTP_OK ? 0 : LSMTP_ERR_ABORTED;
  int cb_rc;
  if (maybe_starttls(r, &cb_rc)) return cb_rc;
  if (!r->auth_started && (o->username || o->oauth_token)) {
    r->auth_started = 1;
    lsmtp_sasl_credentials creds;
    memset(&creds, 0, sizeof creds);
    creds.authzid = o->authzid;
    creds.username = o->username;
    creds.password = o->password;
    creds.oauth_token = o->oauth_token;
    creds.host = o->host;
    creds.port = o->port ? o->port : SUBMIT_PORT;
    int rc = lsmtp_client_auth(r->cli, o->auth_mech, &creds);
    if (rc != LSMTP_OK) {
      const char *why = "AUTH";
      if (rc == LSMTP_ERR_UNSUPPORTED)
        why = !(lsmtp_client_extensions(r->cli) & LSMTP_EXT_AUTH)
                  ? "the server offers no AUTH"
                  : "the server offers no usable AUTH mechanism for these credentials";
      fail_local(r, rc, why);
      r->auth_status = rc;
      return lsmtp_client_quit(r->cli) == LSMTP_OK ? 0 : LSMTP_ERR_ABORTED;
    }
    return 0;
  }
  if (!r->msg_sent) return start_message(r) == LSMTP_OK ? 0 : LSMTP_ERR_ABORTED;
  return lsmtp_client_quit(r->cli) == LSMTP_OK ? 0 : LSMTP_ERR_ABORTED;
}

static void cb_reply(void *ud, const char *verb, const lsmtp_reply *rep) {
  submit_run *r = ud;
  if (strcmp(verb, "QUIT") != 0) copy_verb(r->last_verb, verb);
  /* The body follows DATA's 354: from here the log summarises. */
  if (rep->code == 354 && strcmp(verb, "DATA") == 0) {
    r->out_mode = OUT_BODY;
    r->out_bol = 1;
    r->out_dot = 0;
    r->body_bytes = 0;
  }
}

static int cb_rcpt(void *ud, size_t index, const char *address, const lsmtp_reply *rep) {
  submit_run *r = ud;
  (void)address;
  if (index >= r->n_rcpts) return 0;
  return saved_set(r->alloc, &r->res->rcpts[index].reply, rep);
}

static int cb_message_done(void *ud, int status, const lsmtp_reply *rep) {
  submit_run *r = ud;
  r->msg_done = 1;
  r->msg_status = status;
  copy_verb(r->msg_verb, rep ? r->last_verb : "");
  return saved_set(r->alloc, &r->msg_reply, rep);
}

static int cb_auth_done(void *ud, int status, const lsmtp_reply *rep) {
  submit_run *r = ud;
  r->auth_active = 0;
  r->auth_status = status;
  if (status != LSMTP_OK) {
    const char *err = lsmtp_client_auth_error(r->cli);
    char code[16];
    snprintf(code, sizeof code, "%d", rep ? rep->code : 0);
    set_detail(r, "authentication failed: %s %s", code, rep ? rep->text : "");
    if (err) {
      size_t n = strlen(r->res->detail);
      snprintf(r->res->detail + n, sizeof r->res->detail - n, " (%s)", err);
    }
  }
  return saved_set(r->alloc, &r->auth_reply, rep);
}

static int cb_starttls(void *ud, int status, const lsmtp_reply *rep) {
  submit_run *r = ud;
  if (status == LSMTP_OK) {
    /* The handshake starts once the current read is fed: every byte that
     * came with the 220 must reach the session first (it fails on them). */
    r->starttls_go = 1;
    return 0;
  }
  char code[16];
  snprintf(code, sizeof code, "%d", rep ? rep->code : 0);
  if (r->starttls_required) {
    if (saved_set(r->alloc, &r->tls_reply, rep) != LSMTP_OK) return LSMTP_ERR_NOMEM;
    fail_with(r, LSMTP_ERR_TLS, "STARTTLS refused by the server: %s %s", code,
              rep ? rep->text : "");
  } else {
    log_info(r, "STARTTLS refused (%s %s): going on without TLS", code, rep ? rep->text : "");
  }
  return 0; /* the session is READY again: cb_ready quits or goes on */
}

static void cb_closed(void *ud, int status, const lsmtp_reply *rep) {
  submit_run *r = ud;
  r->closed = 1;
  r->closed_status = status;
  copy_verb(r->end_verb, rep ? r->last_verb : "");
  (void)saved_set(r->alloc, &r->end_reply, rep);
}

/* -- the I/O loop -- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int session_over(const submit_run *r) {
  lsmtp_client_state st = lsmtp_client_state_get(r->cli);
  return st == LSMTP_CLIENT_CLOSED || st == LSMTP_CLIENT_FAILED;
}

/* The connection broke under the session (status LSMTP_ERR_IO with
 * x.os_error, or a TLS failure): let the session account for that. */
static void connection_lost(submit_run *r, int status) {
  if (status == LSMTP_ERR_IO) r->res->os_error = r->x.os_error;
  if (!session_over(r)) (void)lsmtp_client_eof(r->cli);
  if (r->closed_status != LSMTP_OK || !r->closed) {
    char e[200];
    if (status == LSMTP_ERR_IO) snprintf(e, sizeof e, "%s", strerror(r->x.os_error));
    else snprintf(e, sizeof e, "%s", r->x.tls ? lsmtp_tls_error_text(r->x.tls) : "");
    set_detail(r, "connection to %s lost: %s", r->res->peer, e[0] ? e : lsmtp_strerror(status));
  }
}

/* Create the TLS filter and hand it to the transport. */
static int begin_handshake(submit_run *r) {
  lsmtp_tls *tls = NULL;
  int rc = lsmtp_tls_new(&tls, r->tls_cfg, r->tls_name);
  if (rc != LSMTP_OK) {
    fail_with(r, rc, "cannot set up TLS: %s%s", lsmtp_tls_config_error(r->tls_cfg), NULL);
    return rc;
  }
  lsmtp__xport_start_tls(&r->x, tls);
  r->handshaking = 1;
  log_info(r, "starting TLS%s%s", r->tls_name ? " for " : "", r->tls_name);
  return LSMTP_OK;
}

/* The handshake completed: note what was negotiated and tell the
 * session, which is secure from now on. */
static int handshake_done(submit_run *r) {
  lsmtp_submit_result *res = r->res;
  r->handshaking = 0;
  res->tls_version = lsmtp_tls_version(r->x.tls);
  res->tls_cipher = lsmtp_tls_cipher(r->x.tls);
  const int verified = !r->opts->tls_no_verify;
  if (verified) snprintf(res->tls_verified, sizeof res->tls_verified, "%s", r->tls_name);
  if (r->opts->log) {
    char line[LOG_LINE_MAX + 1];
    snprintf(line, sizeof line, "TLS: %s, cipher %s, %s%s", res->tls_version, res->tls_cipher,
             verified ? "certificate verified for "
                      : "certificate NOT verified (verification turned off)",
             verified ? r->tls_name : "");
    log_line(r, LSMTP_SUBMIT_LOG_INFO, line);
  }
  if (r->opts->tls == LSMTP_SUBMIT_TLS_IMPLICIT) {
    lsmtp_client_set_secure(r->cli, 1);
    return LSMTP_OK;
  }
  int rc = lsmtp_client_tls_started(r->cli);
  if (rc != LSMTP_OK) fail_local(r, rc, "after the TLS handshake");
  return rc;
}

static void handshake_failed(submit_run *r, int rc) {
  const char *why = lsmtp_tls_error_text(r->x.tls);
  if (rc == LSMTP_ERR_CERT)
    fail_with(r, rc, "the certificate of %s was refused: %s",
              r->tls_name ? r->tls_name : r->res->peer, why);
  else if (rc == LSMTP_ERR_IO)
    fail_with(r, rc, "connection lost during the TLS handshake: %s%s", strerror(r->x.os_error),
              NULL);
  else if (rc == LSMTP_ERR_TLS)
    fail_with(r, rc, "TLS handshake with %s failed: %s", r->res->peer,
              why[0] ? why : "the server closed the connection");
  else
    fail_local(r, rc, "TLS handshake");
  if (rc == LSMTP_ERR_IO) r->res->os_error = r->x.os_error;
}

/* Drain what can be read and feed it to the session. Returns 0 to go on,
 * 1 when the run is over. */
static int read_all(submit_run *r, char *buf, size_t cap, uint64_t *mark) {
  for (;;) {
    size_t n = 0;
    int rc = lsmtp__xport_read(&r->x, buf, cap, &n);
    if (rc == LSMTP_INCOMPLETE) return 0;
    if (rc == LSMTP_OK) {
      *mark = now_ms();
      log_in(r, buf, n);
      size_t used = 0;
      /* Also after STARTTLS's 220: the session fails on such bytes
       * (response injection), so they must reach it. */
      (void)lsmtp_client_feed(r->cli, buf, n, &used);
      if (session_over(r)) return 1;
      continue;
    }
    if (rc == LSMTP_DONE) {
      if (lsmtp_client_eof(r->cli) != LSMTP_OK)
        set_detail(r, "%s closed the connection unexpectedly", r->res->peer, NULL);
      return 1;
    }
    connection_lost(r, rc);
    return 1;
  }
}

/* Write what the session has. Returns 1 when writing would block, -1 when
 * the connection is lost, 0 when everything went out. */
static int write_all(submit_run *r, uint64_t *mark) {
  int rc = lsmtp__xport_flush(&r->x);
  if (rc == LSMTP_INCOMPLETE) return 1;
  if (rc != LSMTP_OK) {
    connection_lost(r, rc);
    return -1;
  }
  for (;;) {
    const char *p;
    size_t n = lsmtp_client_pending(r->cli, &p);
    if (n == 0) return 0;
    size_t taken = 0;
    rc = lsmtp__xport_write(&r->x, p, n, &taken);
    if (taken) {
      log_out(r, p, taken);
      lsmtp_client_consume(r->cli, taken);
      *mark = now_ms();
    }
    if (rc == LSMTP_INCOMPLETE) return 1;
    if (rc != LSMTP_OK) {
      connection_lost(r, rc);
      return -1;
    }
  }
}

static void drive(submit_run *r) {
  char buf[READ_BUF];
  const uint64_t start = r->start_ms;
  uint64_t mark = now_ms();
  uint32_t timer = lsmtp_client_timeout_ms(r->cli);
  const uint32_t total = r->opts->total_timeout_ms;
  if (r->opts->tls == LSMTP_SUBMIT_TLS_IMPLICIT && begin_handshake(r) != LSMTP_OK) return;
  for (;;) {
    short events;
    if (r->handshaking) {
      int rc = lsmtp__xport_handshake(&r->x);
      if (rc == LSMTP_OK) {
        if (handshake_done(r) != LSMTP_OK) return;
        mark = now_ms();
        /* The server's first records may have come with its last
         * handshake flight and now sit in the filter, where poll() cannot
         * see them (the implicit-TLS greeting does). */
        if (read_all(r, buf, sizeof buf, &mark)) return;
        continue;
      }
      if (rc != LSMTP_INCOMPLETE) {
        handshake_failed(r, rc);
        return;
      }
      events = lsmtp__xport_events(&r->x, 1);
      /* RFC 5321 has no timer for this; the "other commands" one fits. */
      timer = r->opts->timeout_ms ? r->opts->timeout_ms : 300000u;
    } else {
      const int w = write_all(r, &mark);
      if (w < 0 || session_over(r)) return;
      const uint32_t t = lsmtp_client_timeout_ms(r->cli);
      if (t != timer) {
        timer = t;
        mark = now_ms();
      }
      events = lsmtp__xport_events(&r->x, lsmtp_client_want_read(r->cli));
      if (w) events |= POLLOUT;
      if (!events) {
        /* Idle with nothing to wait for: the script has a hole. */
        fail_local(r, LSMTP_ERR_STATE, "the session stalled");
        return;
      }
    }
    if (!timer) timer = 300000u; /* never wait without a bound */
    uint64_t now = now_ms();
    uint64_t deadline = mark + timer;
    if (total && start + total < deadline) deadline = start + total;
    if (now >= deadline) {
      (void)lsmtp_client_timeout(r->cli);
      set_detail(r, "timed out waiting for %s (%s)", r->res->peer,
                 total && now >= start + total ? "total time limit"
                 : r->handshaking              ? "TLS handshake"
                                               : "server reply");
      return;
    }
    uint64_t wait = deadline - now;
    struct pollfd pfd = {.fd = r->x.fd, .events = events, .revents = 0};
    int pn = poll(&pfd, 1, wait > 600000u ? 600000 : (int)wait);
    if (pn < 0) {
      if (errno == EINTR) continue;
      r->x.os_error = errno;
      connection_lost(r, LSMTP_ERR_IO);
      return;
    }
    /* The handshake does its own reads and writes at the top. */
    if (pn == 0 || r->handshaking) continue;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      if (read_all(r, buf, sizeof buf, &mark)) return;
      if (r->starttls_go) {
        r->starttls_go = 0;
        if (begin_handshake(r) != LSMTP_OK) return;
        mark = now_ms();
      }
    }
  }
}

/* -- putting the outcome together -- */

static int is_temporary(int status) {
  switch (status) {
  case LSMTP_ERR_TEMPFAIL:
  case LSMTP_ERR_TIMEOUT:
  case LSMTP_ERR_IO:
  case LSMTP_ERR_CLOSED:
  case LSMTP_ERR_BAD_REPLY:
  case LSMTP_ERR_TLS: /* STARTTLS missing or a handshake failure may pass */
  case LSMTP_ERR_PROTOCOL: return 1;
  default: return 0;
  }
}

static int conclude(submit_run *r) {
  lsmtp_submit_result *res = r->res;
  const lsmtp_allocator *a = r->alloc;
  int status;
  const saved_reply *decisive = NULL;
  const char *verb = "";
  if (r->src_error) {
    status = LSMTP_ERR_ABORTED;
    if (r->src->kind_ != SRC_CALLBACK) {
      char e[128];
      snprintf(e, sizeof e, "%s", strerror(r->src_errno));
      set_detail(r, "reading the message failed: %s%s", e, NULL);
    } else {
      set_detail(r, "the message source failed: %s%s", lsmtp_strerror(r->src_error), NULL);
    }
  } else if (r->auth_started && r->auth_status != LSMTP_OK && !r->local_error) {
    status = r->auth_status;
    if (r->auth_reply.valid) {
      decisive = &r->auth_reply;
      verb = "AUTH";
    } else if (r->closed && r->closed_status != LSMTP_OK) {
      status = r->closed_status;
    }
  } else if (r->local_error) {
    status = r->local_error;
    if (r->tls_reply.valid) {
      decisive = &r->tls_reply;
      verb = "STARTTLS";
    }
  } else if (r->msg_done) {
    status = r->msg_status;
    if (r->msg_reply.valid) {
      decisive = &r->msg_reply;
      verb = r->msg_verb;
    }
    if (status == LSMTP_OK) res->detail[0] = '\0';
    else if (!decisive && !res->detail[0])
      set_detail(r, "%s", r->msg_status == LSMTP_ERR_TEMPFAIL || r->msg_status == LSMTP_ERR_REFUSED
                              ? "no recipient was accepted"
                              : lsmtp_strerror(r->msg_status), NULL);
  } else if (r->closed && r->closed_status != LSMTP_OK) {
    status = r->closed_status;
    if (r->end_reply.valid) {
      decisive = &r->end_reply;
      verb = r->end_verb;
    }
  } else {
    status = lsmtp_client_error(r->cli);
    if (status == LSMTP_OK) status = LSMTP_ERR_CLOSED;
  }
  if (status != LSMTP_OK && !res->detail[0]) {
    if (decisive)
      set_detail(r, "%s refused by the server: %s", verb[0] ? verb : "session",
                 decisive->reply.text);
    else
      set_detail(r, "%s%s", lsmtp_strerror(status), NULL);
  }
  res->status = status;
  res->temporary = is_temporary(status);
  copy_verb(res->verb, verb);
  if (decisive && saved_set(a, &res->reply, &decisive->reply) != LSMTP_OK)
    return LSMTP_ERR_NOMEM;

  /* Per recipient: its RCPT reply, then the fate of the message. */
  const int msg_outcome = r->msg_done ? r->msg_status : status;
  res->accepted = 0;
  for (size_t i = 0; i < res->n_rcpts; i++) {
    rcpt_result *rr = &res->rcpts[i];
    if (!rr->reply.valid) rr->status = msg_outcome == LSMTP_OK ? status : msg_outcome;
    else if (rr->reply.reply.code / 100 == 4) rr->status = LSMTP_ERR_TEMPFAIL;
    else if (rr->reply.reply.code / 100 != 2) rr->status = LSMTP_ERR_REFUSED;
    else rr->status = msg_outcome;
    if (rr->status == LSMTP_OK) res->accepted++;
  }
  if (status == LSMTP_OK && res->accepted == 0) status = res->status = LSMTP_ERR_PROTOCOL;
  return status;
}

/* -- setup -- */

static int make_result(const lsmtp_allocator *a, const char *const *rcpts, size_t n,
                       lsmtp_submit_result **out) {
  lsmtp_submit_result *res = lsmtp__calloc(a, 1, sizeof *res);
  if (!res) return LSMTP_ERR_NOMEM;
  res->alloc = a;
  res->rcpts = lsmtp__calloc(a, n, sizeof *res->rcpts);
  if (!res->rcpts) {
    lsmtp__free(a, res);
    return LSMTP_ERR_NOMEM;
  }
  res->n_rcpts = n;
  for (size_t i = 0; i < n; i++) {
    res->rcpts[i].address = lsmtp__strndup(a, rcpts[i], strlen(rcpts[i]));
    res->rcpts[i].status = LSMTP_ERR_INVALID;
    if (!res->rcpts[i].address) {
      lsmtp_submit_result_del(res);
      return LSMTP_ERR_NOMEM;
    }
  }
  *out = res;
  return LSMTP_OK;
}

static int make_session(submit_run *r) {
  const lsmtp_submit_options *o = r->opts;
  lsmtp_client_config *cfg;
  int rc = lsmtp_client_config_new(&cfg, r->alloc);
  if (rc != LSMTP_OK) return rc;
  if (o->helo_name && *o->helo_name)
    rc = lsmtp_client_config_set_helo_name(cfg, o->helo_name);
  if (rc != LSMTP_OK) {
    lsmtp_client_config_del(cfg);
    set_detail(r, "bad HELO name \"%s\"%s", o->helo_name, NULL);
    return rc;
  }
  lsmtp_client_config_set_allow_insecure_auth(cfg, o->allow_plaintext_auth);
  if (r->n_rcpts > 1000) lsmtp_client_config_set_max_recipients(cfg, r->n_rcpts);
  if (o->timeout_ms)
    for (int t = 0; t < (int)LSMTP_CLIENT_TIMER_COUNT_; t++)
      lsmtp_client_config_set_timeout(cfg, (lsmtp_client_timer)t, o->timeout_ms);
  lsmtp_client_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  cbs.on_reply = cb_reply;
  cbs.on_ready = cb_ready;
  cbs.on_rcpt = cb_rcpt;
  cbs.on_message_done = cb_message_done;
  cbs.on_auth_done = cb_auth_done;
  cbs.on_starttls = cb_starttls;
  cbs.on_closed = cb_closed;
  rc = lsmtp_client_new(&r->cli, cfg, &cbs, r);
  lsmtp_client_config_del(cfg);
  return rc;
}

static int connect_server(submit_run *r) {
  const lsmtp_submit_options *o = r->opts;
  const unsigned port = o->port ? o->port : SUBMIT_PORT;
  char portbuf[16];
  snprintf(portbuf, sizeof portbuf, "%u", port);
  log_info(r, "connecting to %s port %s", o->host, portbuf);
  lsmtp_tcp_connect_info info;
  uint32_t cto = o->timeout_ms;
  if (o->total_timeout_ms && (!cto || o->total_timeout_ms < cto)) cto = o->total_timeout_ms;
  int rc = lsmtp_tcp_connect(o->host, port, cto, &r->x.fd, &info);
  snprintf(r->res->peer, sizeof r->res->peer, "%s", info.peer);
  r->res->os_error = info.os_error;
  if (rc == LSMTP_OK) {
    log_info(r, "connected to %s%s", info.peer, NULL);
    return rc;
  }
  if (rc == LSMTP_ERR_DNS) {
    set_detail(r, "cannot resolve %s: %s", o->host, gai_strerror(info.gai_error));
    r->res->temporary = info.gai_error == EAI_AGAIN;
  } else {
    char e[128];
    snprintf(e, sizeof e, "%s", strerror(info.os_error ? info.os_error : ETIMEDOUT));
    set_detail(r, "cannot connect to %s: %s", info.peer[0] ? info.peer : o->host, e);
    r->res->temporary = rc == LSMTP_ERR_IO || rc == LSMTP_ERR_TIMEOUT;
  }
  log_info(r, "%s%s", r->res->detail, NULL);
  return rc;
}

static int check_args(const lsmtp_submit_options *opts, const char *const *rcpts,
                      size_t n, const lsmtp_submit_source *msg) {
  if (!opts || !opts->host || !*opts->host || !rcpts || n == 0 || !msg) return 0;
  if (opts->port > 65535) return 0;
  if ((unsigned)opts->tls > (unsigned)LSMTP_SUBMIT_TLS_OPPORTUNISTIC) return 0;
  for (size_t i = 0; i < n; i++)
    if (!rcpts[i] || !*rcpts[i]) return 0;
  switch (msg->kind_) {
  case SRC_BUFFER: return msg->data != NULL || msg->len == 0;
  case SRC_FILE: return msg->file != NULL;
  case SRC_FD: return msg->fd >= 0;
  case SRC_CALLBACK: return msg->read != NULL;
  default: return 0;
  }
}

/* host is an IPv4 or IPv6 address (IPv6 possibly in brackets). */
static int is_ip_literal(const char *host) {
  char name[64];
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    host++;
    n -= 2;
  }
  if (n == 0 || n >= sizeof name) return 0;
  memcpy(name, host, n);
  name[n] = '\0';
  unsigned char a[16];
  return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* Check the TLS settings and build the configuration, before connecting.
 * Returns LSMTP_OK or the status for refuse_early with the detail set. */
static int setup_tls(submit_run *r) {
  const lsmtp_submit_options *o = r->opts;
  if (o->tls == LSMTP_SUBMIT_TLS_NONE) {
    if (o->requiretls) {
      set_detail(r, "REQUIRETLS needs TLS: choose a TLS mode (STARTTLS or implicit)%s%s", NULL,
                 NULL);
      return LSMTP_ERR_INVALID;
    }
    return LSMTP_OK;
  }
  if (!lsmtp_tls_available()) {
    set_detail(r, "this build of lsmtp has no TLS (built without mbedTLS)%s%s", NULL, NULL);
    return LSMTP_ERR_UNSUPPORTED;
  }
  if (o->requiretls && o->tls_no_verify) {
    set_detail(r, "REQUIRETLS needs the server's certificate verified (RFC 8689 4.1)%s%s", NULL,
               NULL);
    return LSMTP_ERR_INVALID;
  }
  r->starttls_required = o->tls == LSMTP_SUBMIT_TLS_STARTTLS ||
                         (o->tls == LSMTP_SUBMIT_TLS_OPPORTUNISTIC && o->requiretls);
  if (o->tls_name && *o->tls_name) r->tls_name = o->tls_name;
  else if (!is_ip_literal(o->host)) r->tls_name = o->host;
  if (!r->tls_name && !o->tls_no_verify) {
    set_detail(r, "cannot verify a certificate for the IP address %s: give the name the "
                  "certificate must carry (tls_name)%s", o->host, NULL);
    return LSMTP_ERR_INVALID;
  }
  int rc = lsmtp_tls_config_new(&r->tls_cfg, r->alloc, LSMTP_TLS_CLIENT);
  if (rc != LSMTP_OK) {
    set_detail(r, "cannot set up TLS: %s%s", lsmtp_strerror(rc), NULL);
    return rc;
  }
  if (o->tls_no_verify) return lsmtp_tls_config_set_verify(r->tls_cfg, 0);
  const char *ca = o->tls_ca_file ? o->tls_ca_file : LSMTP_TLS_DEFAULT_CA_FILE;
  if (lsmtp_tls_config_set_ca_file(r->tls_cfg, ca) != LSMTP_OK) {
    set_detail(r, "cannot load the CA certificates from %s: %s", ca,
               lsmtp_tls_config_error(r->tls_cfg));
    return LSMTP_ERR_INVALID;
  }
  return LSMTP_OK;
}

/* Failures found before any connection: the result says why. */
static int refuse_early(submit_run *r, int status, const char *why) {
  r->res->status = status;
  r->res->temporary = 0;
  snprintf(r->res->detail, sizeof r->res->detail, "%s", why);
  for (size_t i = 0; i < r->res->n_rcpts; i++) r->res->rcpts[i].status = status;
  return status;
}

int lsmtp_submit(const lsmtp_submit_options *opts, const char *const *rcpts,
                 size_t n_rcpts, const lsmtp_submit_source *message,
                 lsmtp_submit_result **out) {
  if (!out) return LSMTP_ERR_INVALID;
  *out = NULL;
  if (!check_args(opts, rcpts, n_rcpts, message)) return LSMTP_ERR_INVALID;
  submit_run r;
  memset(&r, 0, sizeof r);
  r.opts = opts;
  r.alloc = LSMTP__ALLOC_OR_DEFAULT(opts->alloc);
  r.src = message;
  r.rcpts = rcpts;
  r.n_rcpts = n_rcpts;
  r.x.fd = -1;
  r.start_ms = now_ms();
  int rc = make_result(r.alloc, rcpts, n_rcpts, &r.res);
  if (rc != LSMTP_OK) return rc;
  *out = r.res;

  if ((opts->username || opts->oauth_token) && !opts->allow_plaintext_auth &&
      opts->tls == LSMTP_SUBMIT_TLS_NONE)
    return refuse_early(&r, LSMTP_ERR_INSECURE,
                        "refusing to send credentials over a connection "
                        "without TLS (use TLS, or allow plaintext "
                        "authentication to override)");
  rc = setup_tls(&r);
  if (rc == LSMTP_OK) {
    r.crcpts = lsmtp__calloc(r.alloc, n_rcpts, sizeof *r.crcpts);
    if (!r.crcpts) rc = LSMTP_ERR_NOMEM;
  }
  if (rc == LSMTP_OK) {
    for (size_t i = 0; i < n_rcpts; i++) {
      r.crcpts[i].address = rcpts[i];
      r.crcpts[i].notify = opts->dsn_notify;
    }
    rc = make_session(&r);
  }
  if (rc != LSMTP_OK) {
    lsmtp__free(r.alloc, r.crcpts);
    lsmtp_tls_config_del(r.tls_cfg);
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "%s", r.res->detail[0] ? r.res->detail : lsmtp_strerror(rc));
    return refuse_early(&r, rc, detail);
  }
  rc = connect_server(&r);
  if (rc == LSMTP_OK) {
    drive(&r);
    lsmtp__xport_close(&r.x);
    rc = conclude(&r);
  } else {
    int temp = r.res->temporary;
    char detail[DETAIL_MAX];
    memcpy(detail, r.res->detail, sizeof detail);
    refuse_early(&r, rc, detail);
    r.res->temporary = temp;
  }
  if (rc != LSMTP_OK && r.res->detail[0] && rc != LSMTP_ERR_DNS && rc != LSMTP_ERR_IO &&
      rc != LSMTP_ERR_TIMEOUT)
    log_info(&r, "%s%s", r.res->detail, NULL);
  lsmtp_client_del(r.cli);
  lsmtp__free(r.alloc, r.crcpts);
  saved_free(r.alloc, &r.msg_reply);
  saved_free(r.alloc, &r.auth_reply);
  saved_free(r.alloc, &r.end_reply);
  saved_free(r.alloc, &r.tls_reply);
  lsmtp_tls_config_del(r.tls_cfg);
  return rc;
}
