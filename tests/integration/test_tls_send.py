"""smtp-send with TLS: against aiosmtpd (Debian's python3-aiosmtpd) with
STARTTLS required by the server and with implicit TLS, and against lsmtp's
own smtp-receive with AUTH over STARTTLS. Always by the name "localhost"
with --ca-file pointing at the test CA (tests/certs/make-certs.sh, env
LSMTP_TEST_CERTS).

Checked: byte-exact delivery over STARTTLS (aiosmtpd saw session.ssl) and
implicit TLS; AUTH PLAIN only under TLS, without --allow-plaintext-auth;
-v names the TLS version, cipher and verified name; a certificate for
another name (--tls-name) exits 69 and no MAIL is sent; a server without
STARTTLS under --starttls exits 75 and no MAIL is sent; a self-signed
server is refused (69) unless --insecure; an IP address without
--tls-name is a configuration error (78); contradictory options are
usage errors (64).
"""

import os
import re
import ssl
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore", message="Session.login_data")
warnings.filterwarnings("ignore", category=DeprecationWarning)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as T  # noqa: E402

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:  # pragma: no cover - depends on the machine
    Controller = None

RUN_TIMEOUT = 30
CERTS = os.environ.get("LSMTP_TEST_CERTS", "")


def send_binary():
    path = os.path.join(T.BUILD_DIR, "bin", "smtp-send") if T.BUILD_DIR else ""
    if path and os.access(path, os.X_OK):
        return path
    raise T.Skip("smtp-send not built (LSMTP_BUILD_DIR=%r)" % T.BUILD_DIR)


def cert(name):
    return os.path.join(CERTS, name)


def built_with_tls():
    rc, err = smtp_send(["--server", "localhost:1", "--tls", "--from", "a@example.org",
                         "--to", "b@example.net"], b"x\r\n")
    return not (rc == 78 and "built without TLS" in err)


def require_setup():
    send_binary()
    if Controller is None:
        raise T.Skip("python3-aiosmtpd is not installed")
    if not CERTS or not os.path.exists(cert("ca.pem")):
        raise T.Skip("test certificates missing (LSMTP_TEST_CERTS=%r; run through ctest)" % CERTS)


def smtp_send(args, data=b"Subject: t\r\n\r\nx\r\n", env=None, timeout=RUN_TIMEOUT):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([send_binary()] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=e)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def expect_rc(got, want, err):
    T.check(got == want, "smtp-send exit %d, expected %d; stderr:\n%s", got, want, err)


def server_ctx(name="server"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert(name + ".pem"), cert(name + ".key"))
    return ctx


class Handler:
    def __init__(self):
        self.messages = []
        self.mails = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mails += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server, session, envelope):
        sslobj = server.transport.get_extra_info("ssl_object")
        self.messages.append({
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "content": envelope.original_content or envelope.content,
            "starttls": session.ssl is not None,
            "tls_version": sslobj.version() if sslobj else None,
            "authenticated": bool(session.authenticated),
        })
        return "250 2.0.0 stored"


class Auth:
    def __init__(self):
        self.seen = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"user"
              and auth_data.password == b"s3cret pass")
        self.seen.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)


class Server:
    """aiosmtpd on 127.0.0.1: mode "starttls" (required by the server),
    "implicit" (TLS from the first byte) or "plain" (no STARTTLS)."""

    def __init__(self, mode="starttls", certname="server", auth=None):
        self.handler = Handler()
        self.port = T.free_port()
        kwargs = {"hostname": "127.0.0.1", "port": self.port, "server_hostname": "aio.test",
                  "ready_timeout": 10}
        if mode == "starttls":
            kwargs.update(tls_context=server_ctx(certname), require_starttls=True)
        elif mode == "implicit":
            kwargs.update(ssl_context=server_ctx(certname))
        if auth:
            kwargs.update(authenticator=auth, auth_require_tls=True)
        self.ctl = Controller(self.handler, **kwargs)

    def __enter__(self):
        self.ctl.start()
        return self

    def __exit__(self, *exc):
        self.ctl.stop()
        return False

    def arg(self, host="localhost"):
        return "%s:%d" % (host, self.port)


MSG = (b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
       b"Message-ID: <tls@example.org>\r\n"
       b"From: a@example.org\r\n"
       b"Subject: over TLS\r\n"
       b"\r\n"
       b".leading dot\r\n"
       b".\r\n"
       b"\xc3\xa9 8-bit\r\n")

TLS_LINE = re.compile(r"\* TLS: TLSv1\.[23], cipher [A-Z0-9-]+, certificate verified for localhost")


def base(s, *extra):
    return ["--server", s.arg(), "--from", "a@example.org", "--to", "b@example.net",
            "--ca-file", cert("ca.pem"), "-v"] + list(extra)


# ---------------------------------------------------------------------------


def test_starttls_byte_exact():
    with Server("starttls") as s:
        rc, err = smtp_send(base(s, "--starttls"), MSG)
        expect_rc(rc, 0, err)
        T.check_eq(len(s.handler.messages), 1, "messages")
        m = s.handler.messages[0]
        T.check_eq(m["content"], MSG, "content")
        T.check(m["starttls"], "aiosmtpd saw no STARTTLS (session.ssl is None)")
        T.check_eq(m["tls_version"], "TLSv1.2", "TLS version seen by the server")
        T.check(TLS_LINE.search(err) is not None, "no TLS line in -v output:\n%s", err)
        # STARTTLS, then the handshake, then EHLO again before MAIL.
        i_tls = err.index("-> STARTTLS")
        i_hs = err.index("* TLS: ")
        i_ehlo2 = err.index("-> EHLO", i_hs)
        i_mail = err.index("-> MAIL")
        T.check(i_tls < i_hs < i_ehlo2 < i_mail, "order of STARTTLS/TLS/EHLO/MAIL:\n%s", err)


def test_auth_plain_over_starttls():
    auth = Auth()
    root = T.make_temp_root()
    pw = os.path.join(root, "pw")
    with open(pw, "w") as f:
        f.write("s3cret pass\n")
    with Server("starttls", auth=auth) as s:
        # No --allow-plaintext-auth: TLS makes it unnecessary.
        rc, err = smtp_send(base(s, "--starttls", "--user", "user", "--password-file", pw,
                                 "--auth", "PLAIN"), MSG)
        expect_rc(rc, 0, err)
        T.check_eq(auth.seen, [("PLAIN", True)], "AUTH seen by aiosmtpd")
        m = s.handler.messages[0]
        T.check(m["authenticated"] and m["starttls"], "session not authenticated under TLS: %r", m)
        T.check_eq(m["content"], MSG, "content")
        T.check(err.index("* TLS: ") < err.index("-> AUTH PLAIN <redacted>"),
                "AUTH before TLS:\n%s", err)
        for secret in ("s3cret", "AHVzZXIAczNjcmV0IHBhc3M="):
            T.check(secret not in err, "secret %r in -v output", secret)
        # Without TLS the same credentials are refused before connecting.
        rc, err = smtp_send(["--server", s.arg(), "--from", "a@example.org", "--to",
                             "b@example.net", "--no-tls", "--user", "user", "--password-file", pw],
                            MSG)
        expect_rc(rc, 78, err)
        T.check_eq(len(auth.seen), 1, "AUTH attempts after the refusal")


def test_implicit_tls():
    with Server("implicit") as s:
        rc, err = smtp_send(base(s, "--tls"), MSG)
        expect_rc(rc, 0, err)
        m = s.handler.messages[0]
        T.check_eq(m["content"], MSG, "content")
        T.check_eq(m["tls_version"], "TLSv1.2", "implicit TLS version")
        T.check(not m["starttls"], "STARTTLS used on an implicit-TLS port")
        T.check("-> STARTTLS" not in err, "STARTTLS sent under implicit TLS:\n%s", err)
        T.check(TLS_LINE.search(err) is not None, "no TLS line:\n%s", err)
        T.check(err.index("* TLS: ") < err.index("<- 220"), "greeting before TLS:\n%s", err)


def test_certificate_name_checked():
    with Server("starttls") as s:
        rc, err = smtp_send(base(s, "--starttls", "--tls-name", "wrong.example"), MSG)
        expect_rc(rc, 69, err)
        T.check("-> MAIL" not in err and s.handler.mails == 0, "MAIL sent:\n%s", err)
        T.check("wrong.example" in err and "refused" in err, "stderr:\n%s", err)
        # By IP address: the name must be given (mbedTLS checks no IP names).
        args = base(s, "--starttls")
        args[1] = s.arg("127.0.0.1")
        rc, err = smtp_send(args, MSG)
        expect_rc(rc, 78, err)
        T.check("--tls-name" in err, "no hint at --tls-name:\n%s", err)
        T.check("-> EHLO" not in err, "connected anyway:\n%s", err)
        rc, err = smtp_send(args + ["--tls-name", "localhost"], MSG)
        expect_rc(rc, 0, err)
        T.check_eq(len(s.handler.messages), 1, "messages")


def test_starttls_not_offered():
    with Server("plain") as s:
        rc, err = smtp_send(base(s, "--starttls"), MSG)
        expect_rc(rc, 75, err)
        T.check("does not offer STARTTLS" in err, "stderr:\n%s", err)
        T.check("-> MAIL" not in err and s.handler.mails == 0, "MAIL sent:\n%s", err)
        T.check("-> QUIT" in err, "no QUIT:\n%s", err)
        # Implicit TLS to a plaintext server: the handshake fails, 75.
        rc, err = smtp_send(base(s, "--tls"), MSG)
        expect_rc(rc, 75, err)
        T.check("-> EHLO" not in err, "EHLO without TLS:\n%s", err)
        T.check_eq(s.handler.mails, 0, "MAILs")


def test_self_signed_needs_insecure():
    with Server("starttls", certname="selfsigned") as s:
        rc, err = smtp_send(base(s, "--starttls"), MSG)
        expect_rc(rc, 69, err)
        T.check_eq(s.handler.mails, 0, "MAILs after a refused certificate")
        rc, err = smtp_send(base(s, "--starttls", "--insecure"), MSG)
        expect_rc(rc, 0, err)
        T.check("certificate NOT verified" in err, "-v does not say so:\n%s", err)
        T.check_eq(s.handler.messages[0]["content"], MSG, "content")


def test_option_errors():
    common = ["--from", "a@example.org", "--to", "b@example.net"]
    for args in (["--server", "localhost:2525", "--starttls", "--tls"],
                 ["--server", "localhost:2525", "--no-tls", "--starttls"],
                 ["--server", "localhost:2525", "--no-tls", "--requiretls"],
                 ["--server", "localhost:2525", "--ca-file", "x.pem"],
                 ["--server", "localhost", "--no-tls", "--insecure"],
                 ["--server", "localhost:2525", "--tls-name", "[127.0.0.1]", "--tls"],
                 ["--server", "localhost", "--requiretls", "--insecure"]):
        rc, err = smtp_send(args + common)
        expect_rc(rc, 64, err)
    # Port 587 (the default) requires STARTTLS: an IP address without a
    # name to verify is refused before connecting.
    rc, err = smtp_send(["--server", "127.0.0.1"] + common)
    expect_rc(rc, 78, err)
    T.check("--tls-name" in err, "stderr:\n%s", err)
    # An unreadable CA file is a configuration error too.
    rc, err = smtp_send(["--server", "localhost:2525", "--starttls", "--ca-file",
                         "/nonexistent/ca.pem"] + common)
    expect_rc(rc, 78, err)
    T.check("/nonexistent/ca.pem" in err, "stderr:\n%s", err)


def receiver_has_tls():
    p = subprocess.run([T.receiver_binary(), "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return b"--tls-cert" in p.stdout


def test_to_smtp_receive_with_auth():
    if not receiver_has_tls():
        print("(smtp-receive has no --tls-cert yet: this case is skipped)")
        return
    root = T.make_temp_root()
    p = subprocess.run([T.receiver_binary(), "--hash-password", "user"], input=b"s3cret pass\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    T.check(p.returncode == 0, "--hash-password failed: %r", p.stderr)
    authfile = os.path.join(root, "auth")
    with open(authfile, "wb") as f:
        f.write(p.stdout)
    pw = os.path.join(root, "pw")
    with open(pw, "w") as f:
        f.write("s3cret pass\n")
    extra = ["--tls-cert", cert("server.pem"), "--tls-key", cert("server.key"),
             "--auth-file", authfile, "--require-tls"]
    with T.Receiver(domains=["example.org"], extra=extra) as rx:
        rc, err = smtp_send(["--server", "localhost:%d" % rx.port, "--starttls",
                             "--ca-file", cert("ca.pem"), "--from", "a@client.example",
                             "--to", "alice@example.org", "--user", "user",
                             "--password-file", pw, "-v"], MSG)
        expect_rc(rc, 0, err)
        T.check(TLS_LINE.search(err) is not None, "no TLS line:\n%s", err)
        T.check("-> AUTH " in err, "no AUTH:\n%s", err)
        T.check_eq(len(rx.wait_files("alice", 1)), 1, "stored copies")
        stored = rx.messages("alice")[0]
        T.check_eq(stored.body, MSG, "stored message")
        T.check_eq(stored.fields["proto"], b"ESMTPSA", "Received ... with")
        # A wrong password: 77, nothing stored.
        with open(pw, "w") as f:
            f.write("wrong\n")
        rc, err = smtp_send(["--server", "localhost:%d" % rx.port, "--starttls",
                             "--ca-file", cert("ca.pem"), "--from", "a@client.example",
                             "--to", "alice@example.org", "--user", "user",
                             "--password-file", pw], MSG)
        expect_rc(rc, 77, err)
        T.check_eq(len(rx.messages("alice")), 1, "copies after a refused login")


def test_build_without_tls():
    """A build without mbedTLS: every TLS option, and port 587's default
    STARTTLS requirement, is a configuration error (78) that says so."""
    common = ["--from", "a@example.org", "--to", "b@example.net"]
    for args in (["--server", "localhost"], ["--server", "localhost:465"],
                 ["--server", "localhost:2525", "--starttls"],
                 ["--server", "localhost:2525", "--tls"],
                 ["--server", "localhost", "--insecure"]):
        rc, err = smtp_send(args + common)
        expect_rc(rc, 78, err)
        T.check("built without" in err, "stderr:\n%s", err)
    rc, err = smtp_send(["--server", "localhost"] + common)
    T.check("--no-tls" in err, "no hint at --no-tls:\n%s", err)
    # The opt-out works: plaintext to a server on another port.
    with Server("plain") as s:
        rc, err = smtp_send(["--server", s.arg(), "--no-tls"] + common, MSG)
        expect_rc(rc, 0, err)
        T.check_eq(s.handler.messages[0]["content"], MSG, "content")


if __name__ == "__main__":
    try:
        send_binary()
        if not built_with_tls():
            if Controller is None:
                T._skip("python3-aiosmtpd is not installed")
            T.run([test_build_without_tls])
            sys.exit(0)
        require_setup()
    except T.Skip as e:
        T._skip(str(e))
    T.run([
        test_starttls_byte_exact,
        test_auth_plain_over_starttls,
        test_implicit_tls,
        test_certificate_name_checked,
        test_starttls_not_offered,
        test_self_signed_needs_insecure,
        test_option_errors,
        test_to_smtp_receive_with_auth,
    ])
