"""smtp-send against aiosmtpd (Debian's python3-aiosmtpd), run in this
process: byte-exact envelope and content, Date/Message-ID added, -t with
tricky address headers and Bcc removed, AUTH PLAIN and LOGIN with redacted
-v output, per-recipient refusals and the exit codes (sysexits.h) for
each kind of failure.

Exit-code decisions checked here (see docs/man/smtp-send.1): 0 when at
least one recipient took the message; 69 when every refusal was
permanent; 75 when any was temporary, or the connection failed or timed
out; 77 (EX_NOPERM, as msmtp) when the server refused the credentials;
78 for credentials without TLS and no --allow-plaintext-auth; 68 unknown
host; 66 unreadable input; 64 usage.
"""

import os
import re
import socket
import subprocess
import sys
import time
import warnings

# aiosmtpd 1.4 warns about its own deprecated attribute on every AUTH.
warnings.filterwarnings("ignore", message="Session.login_data")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as T  # noqa: E402

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:  # pragma: no cover - depends on the machine
    Controller = None

RUN_TIMEOUT = 30


def send_binary():
    path = os.path.join(T.BUILD_DIR, "bin", "smtp-send") if T.BUILD_DIR else ""
    if path and os.access(path, os.X_OK):
        return path
    raise T.Skip("smtp-send not built (LSMTP_BUILD_DIR=%r)" % T.BUILD_DIR)


def require_aiosmtpd():
    if Controller is None:
        raise T.Skip("python3-aiosmtpd is not installed")


class Handler:
    """Stores each message; refuses RCPTs by local part (bad* -> 550,
    busy* -> 450)."""

    def __init__(self):
        self.messages = []
        self.sessions = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("bad"):
            return "550 5.1.1 no such user"
        if local.startswith("busy"):
            return "450 4.2.1 mailbox busy"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "content": envelope.original_content or envelope.content,
            "authenticated": bool(session.authenticated),
        })
        return "250 2.0.0 stored"


class Auth:
    def __init__(self, user=b"user", password=b"s3cret pass"):
        self.user, self.password = user, password
        self.seen = []
        self.results = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.seen.append(mechanism)
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user
              and auth_data.password == self.password)
        self.results.append((auth_data.login if isinstance(auth_data, LoginPassword) else None, ok))
        return AuthResult(success=ok, handled=False)


class Server:
    def __init__(self, auth=None, host="127.0.0.1"):
        require_aiosmtpd()
        self.handler = Handler()
        self.auth = auth
        self.host = host
        kwargs = {"hostname": host, "port": T.free_port(host), "server_hostname": "aio.test",
                  "ready_timeout": 10}
        if auth:
            kwargs.update(authenticator=auth, auth_require_tls=False)
        self.ctl = Controller(self.handler, **kwargs)

    @property
    def server_arg(self):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (h, self.ctl.port)

    def __enter__(self):
        self.ctl.start()
        return self

    def __exit__(self, *exc):
        self.ctl.stop()
        return False


def smtp_send(args, data=None, env=None, timeout=RUN_TIMEOUT):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([send_binary()] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=e)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def expect_rc(got, want, err):
    T.check(got == want, "smtp-send exit %d, expected %d; stderr:\n%s", got, want, err)


DATE_RE = re.compile(rb"^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|"
                     rb"Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r$", re.M)
MSGID_RE = re.compile(rb"^Message-ID: <[0-9]{14}\.\d+\.[0-9a-f]{16}@([^>\s]+)>\r$", re.M)

FULL = (b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <fixed@example.org>\r\n"
        b"From: A <a@example.org>\r\n"
        b"Subject: exact\r\n"
        b"\r\n"
        b".leading dot\r\n"
        b".\r\n"
        b"..two dots\r\n"
        b"last line without end")


# ---------------------------------------------------------------------------


def test_exact_envelope_and_content():
    with Server() as s:
        rc, err = smtp_send(["--server", s.server_arg, "--from", "a@example.org",
                             "--to", "r1@example.net", "--to", "R2 <r2@example.net>",
                             "--helo", "client.test"], FULL)
        expect_rc(rc, 0, err)
        T.check_eq(len(s.handler.messages), 1, "messages stored")
        m = s.handler.messages[0]
        T.check_eq(m["from"], "a@example.org", "MAIL FROM")
        T.check_eq(m["to"], ["r1@example.net", "r2@example.net"], "RCPT TO")
        # Nothing added (Date and Message-ID are there), only the missing
        # final CRLF; a lone "." inside never ended the message.
        T.check_eq(m["content"], FULL + b"\r\n", "content")
        T.check("r1@example.net: 250 2.1.5 OK" in err, "summary line missing: %s", err)


def test_file_argument_and_sendmail_habits():
    with Server() as s:
        root = T.make_temp_root()
        path = os.path.join(root, "msg.eml")
        with open(path, "wb") as f:
            f.write(b"Subject: lf\n\nline one\n.\nline three\n")
        rc, err = smtp_send(["--server", s.server_arg, "-f", "<s@example.org>", "-i", "-oi",
                             "--to", "x@example.net", path])
        expect_rc(rc, 0, err)
        m = s.handler.messages[0]
        T.check_eq(m["from"], "s@example.org", "MAIL FROM with -f")
        c = m["content"]
        T.check(b"\n" not in c.replace(b"\r\n", b""), "bare LF left in %r", c)
        T.check(c.endswith(b"\r\n\r\nline one\r\n.\r\nline three\r\n"), "body %r", c)
        T.check(DATE_RE.search(c) is not None, "no Date added: %r", c)
        mid = MSGID_RE.search(c)
        T.check(mid is not None, "no Message-ID added: %r", c)
        T.check_eq(mid.group(1), b"example.org", "Message-ID domain")
        # Null sender from stdin ("-").
        rc, err = smtp_send(["--server", s.server_arg, "--from", "", "--to", "x@example.net", "-"],
                            b"Subject: null\r\n\r\nx\r\n")
        expect_rc(rc, 0, err)
        T.check_eq(s.handler.messages[1]["from"], "<>", "null reverse-path")


TRICKY = (b"From: Sender <s@example.org>\r\n"
          b"To: \"Doe, John\" <john@example.net>, plain@example.net (a comment, with comma),\r\n"
          b"\t\"quoted local\"@example.net\r\n"
          b"Cc: undisclosed-recipients:;, team: m1@example.net, M Two <m2@example.net>;,\r\n"
          b"  <@route.example:routed@example.net>\r\n"
          b"cc: (nested (comment)) spaced . dots @ example . net\r\n"
          b"Bcc: hidden@example.net,\r\n"
          b" plain@example.net\r\n"
          b"Subject: t\r\n"
          b"\r\n"
          b"Bcc: not a header\r\n")


def test_t_takes_recipients_from_headers():
    with Server() as s:
        rc, err = smtp_send(["--server", s.server_arg, "--from", "s@example.org", "-t",
                             "--to", "extra@example.net"], TRICKY)
        expect_rc(rc, 0, err)
        m = s.handler.messages[0]
        T.check_eq(m["to"], ["extra@example.net", "john@example.net", "plain@example.net",
                             '"quoted local"@example.net', "m1@example.net", "m2@example.net",
                             "routed@example.net", "spaced.dots@example.net",
                             "hidden@example.net"], "recipients from -t")
        c = m["content"]
        T.check(b"hidden@" not in c.split(b"\r\n\r\n")[0], "Bcc not removed: %r", c)
        T.check(b"\r\n\r\nBcc: not a header\r\n" in c, "body changed: %r", c)
        T.check(c.startswith(TRICKY.split(b"Bcc:")[0]), "fields before Bcc changed: %r", c)
        # A bad address in To: is a data error, nothing is sent.
        rc, err = smtp_send(["--server", s.server_arg, "--from", "s@example.org", "-t"],
                            b"To: <broken\r\n\r\nx\r\n")
        expect_rc(rc, 65, err)
        rc, err = smtp_send(["--server", s.server_arg, "--from", "s@example.org", "-t"],
                            b"To: group:;\r\n\r\nx\r\n")
        expect_rc(rc, 64, err)
        T.check_eq(len(s.handler.messages), 1, "messages after the failures")


def test_refused_recipients_and_exit_codes():
    with Server() as s:
        base = ["--server", s.server_arg, "--from", "a@example.org"]
        msg = b"Subject: r\r\n\r\nx\r\n"
        rc, err = smtp_send(base + ["--to", "bad1@example.net", "--to", "ok@example.net"], msg)
        expect_rc(rc, 0, err)
        T.check("bad1@example.net: refused: 550 5.1.1 no such user" in err, "stderr: %s", err)
        T.check("ok@example.net: 250 2.1.5 OK" in err, "stderr: %s", err)
        T.check_eq(s.handler.messages[-1]["to"], ["ok@example.net"], "accepted recipients")
        n = len(s.handler.messages)
        rc, err = smtp_send(base + ["--to", "bad1@example.net", "--to", "bad2@example.net"], msg)
        expect_rc(rc, 69, err)
        rc, err = smtp_send(base + ["--to", "bad1@example.net", "--to", "busy@example.net"], msg)
        expect_rc(rc, 75, err)
        T.check("busy@example.net: refused temporarily: 450 4.2.1 mailbox busy" in err, "%s", err)
        T.check_eq(len(s.handler.messages), n, "no message after all refusals")


def test_auth_plain_and_login():
    auth = Auth()
    with Server(auth=auth) as s:
        root = T.make_temp_root()
        pwfile = os.path.join(root, "pw")
        with open(pwfile, "w") as f:
            f.write("s3cret pass\n")
        base = ["--server", s.server_arg, "--from", "a@example.org", "--to", "x@example.net",
                "--user", "user", "--allow-plaintext-auth", "-v"]
        msg = b"Subject: a\r\n\r\nx\r\n"
        rc, err = smtp_send(base + ["--password-file", pwfile], msg)
        expect_rc(rc, 0, err)
        T.check("-> AUTH PLAIN <redacted>" in err, "no redacted AUTH line: %s", err)
        rc, err2 = smtp_send(base + ["--password-env", "SEND_PW", "--auth", "LOGIN"], msg,
                             env={"SEND_PW": "s3cret pass"})
        expect_rc(rc, 0, err2)
        T.check_eq(auth.seen, ["PLAIN", "LOGIN"], "mechanisms used")
        T.check(err2.count("-> <redacted>") == 2, "LOGIN responses not redacted: %s", err2)
        for e in (err, err2):
            for secret in ("s3cret", "czNjcmV0", "AHVzZXIAczNjcmV0IHBhc3M=", "dXNlcg=="):
                T.check(secret not in e, "secret %r in -v output:\n%s", secret, e)
        T.check_eq(auth.results, [(b"user", True), (b"user", True)], "logins")
        T.check_eq([m["authenticated"] for m in s.handler.messages], [True, True], "sessions")
        # Wrong password: 535 -> 77, no MAIL.
        n = len(s.handler.messages)
        rc, err = smtp_send(base + ["--password-env", "SEND_PW"], msg, env={"SEND_PW": "nope"})
        expect_rc(rc, 77, err)
        T.check("-> MAIL" not in err, "MAIL sent after failed AUTH: %s", err)
        T.check_eq(len(s.handler.messages), n, "messages after a failed AUTH")


def test_no_plaintext_credentials_without_opt_in():
    # Nothing listens: the refusal must come before any connection.
    port = T.free_port()
    root = T.make_temp_root()
    pwfile = os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write("pw\n")
    rc, err = smtp_send(["--server", "127.0.0.1:%d" % port, "--from", "a@example.org",
                         "--to", "x@example.net", "--user", "u", "--password-file", pwfile],
                        b"x\r\n")
    expect_rc(rc, 78, err)
    T.check("--allow-plaintext-auth" in err, "message does not say how: %s", err)


def test_connection_failures():
    msg = b"Subject: f\r\n\r\nx\r\n"
    port = T.free_port()
    rc, err = smtp_send(["--server", "127.0.0.1:%d" % port, "--from", "a@example.org",
                         "--to", "x@example.net"], msg)
    expect_rc(rc, 75, err)
    T.check("Connection refused" in err, "stderr: %s", err)
    # An empty label fails in the resolver itself: no DNS query leaves.
    # (--no-tls: port 587 would otherwise need TLS, which a build without
    # mbedTLS refuses with 78 before resolving anything.)
    rc, err = smtp_send(["--server", "no-such-host..invalid", "--no-tls", "--from",
                         "a@example.org", "--to", "x@example.net"], msg)
    expect_rc(rc, 68, err)
    # A server that accepts and never greets: bounded by --timeout.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    t0 = time.monotonic()
    rc, err = smtp_send(["--server", "127.0.0.1:%d" % lsock.getsockname()[1], "--timeout", "1",
                         "--from", "a@example.org", "--to", "x@example.net"], msg)
    took = time.monotonic() - t0
    lsock.close()
    expect_rc(rc, 75, err)
    T.check(took < 10, "timeout took %.1fs", took)
    T.check("timed out" in err, "stderr: %s", err)


def test_usage_and_input_errors():
    rc, err = smtp_send(["--from", "a@example.org", "--to", "x@example.net"], b"")
    expect_rc(rc, 64, err)
    rc, err = smtp_send(["--server", "127.0.0.1:1", "--to", "x@example.net"], b"")
    expect_rc(rc, 64, err)
    rc, err = smtp_send(["--server", "127.0.0.1:1", "--from", "a@example.org"], b"")
    expect_rc(rc, 64, err)
    rc, err = smtp_send(["--server", "127.0.0.1:99999", "--from", "a@example.org",
                         "--to", "x@example.net"], b"")
    expect_rc(rc, 64, err)
    rc, err = smtp_send(["--server", "127.0.0.1:1", "--from", "a@example.org",
                         "--to", "not an address"], b"")
    expect_rc(rc, 64, err)
    rc, err = smtp_send(["--server", "127.0.0.1:1", "--from", "a@example.org",
                         "--to", "x@example.net", "/nonexistent/message"], b"")
    expect_rc(rc, 66, err)
    rc, err = smtp_send(["--help"], b"")
    expect_rc(rc, 0, err)


def test_ipv6_literal():
    if not T.ipv6_loopback_available():
        print("(no ::1 here; IPv6 part skipped)")
        return
    with Server(host="::1") as s:
        T.check(s.server_arg.startswith("[::1]:"), "server arg %s", s.server_arg)
        rc, err = smtp_send(["--server", s.server_arg, "--from", "a@example.org",
                             "--to", "x@example.net"], b"Subject: 6\r\n\r\nx\r\n")
        expect_rc(rc, 0, err)
        T.check_eq(len(s.handler.messages), 1, "messages over IPv6")


if __name__ == "__main__":
    try:
        send_binary()
        require_aiosmtpd()
    except T.Skip as e:
        T._skip(str(e))
    T.run([
        test_exact_envelope_and_content,
        test_file_argument_and_sendmail_habits,
        test_t_takes_recipients_from_headers,
        test_refused_recipients_and_exit_codes,
        test_auth_plain_and_login,
        test_no_plaintext_credentials_without_opt_in,
        test_connection_failures,
        test_usage_and_input_errors,
        test_ipv6_literal,
    ])
