#!/usr/bin/python3
"""smtp-receive with TLS and AUTH against real clients over 127.0.0.1:
Python's smtplib (STARTTLS and SMTP_SSL against --tls-listen), openssl
s_client -starttls smtp, swaks --tls / --tls-on-connect; the STARTTLS
command injection (CVE-2011-0411) must not reach the session; --require-tls
gives 530 before STARTTLS; AUTH from an --auth-file made with
--hash-password works only under TLS unless --allow-plaintext-auth; a
plaintext client on the implicit-TLS port is dropped without harm.

Certificates: LSMTP_TEST_CERTS (made by ctest's fixture), else
tests/certs/make-certs.sh is run into a temporary folder."""

import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as t  # noqa: E402

DOM = "example.org"
HELO = "client.test.example"
OPENSSL = "/usr/bin/openssl"
SWAKS = "/usr/bin/swaks"
CERTS = None  # set by main()


def cert(name):
    return os.path.join(CERTS, name)


def tls_args():
    return ["--tls-cert", cert("server.pem"), "--tls-key", cert("server.key")]


def client_context():
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class TlsReceiver(t.Receiver):
    """A receiver with STARTTLS, and an implicit-TLS listener on tls_port."""

    def __init__(self, extra=(), implicit=False, **kw):
        self.implicit = implicit
        self.tls_port = None
        super().__init__(extra=list(extra), **kw)

    def argv(self, port):
        argv = super().argv(port)
        if self.implicit:
            self.tls_port = t.free_port(self.host)
            argv += ["--tls-listen", "%s:%d" % (self.host, self.tls_port)]
        return argv


def smtp_starttls(rx, login=None):
    """smtplib over STARTTLS, verifying the certificate for "localhost"."""
    s = smtplib.SMTP(rx.host, rx.port, local_hostname=HELO, timeout=20)
    code, _ = s.ehlo()
    t.check_eq(code, 250, "EHLO before STARTTLS")
    t.check(s.has_extn("starttls"), "STARTTLS not advertised: %r", s.esmtp_features)
    # smtplib checks the certificate against the host it connected to;
    # we connect to 127.0.0.1 but want the name "localhost" checked.
    s._host = "localhost"
    code, text = s.starttls(context=client_context())
    t.check_eq(code, 220, "STARTTLS reply (%r)" % text)
    t.check_eq(s.sock.version(), "TLSv1.2", "negotiated TLS version")
    code, _ = s.ehlo()
    t.check_eq(code, 250, "EHLO after STARTTLS")
    t.check(not s.has_extn("starttls"), "STARTTLS advertised again under TLS")
    if login:
        code, text = s.login(*login)
        t.check_eq(code, 235, "AUTH reply (%r)" % text)
    return s


class SMTPSSLLocalhost(smtplib.SMTP_SSL):
    """SMTP_SSL to 127.0.0.1 that checks the certificate for "localhost"."""

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(sock, server_hostname="localhost")


def only_copy(rx, local):
    msgs = rx.wait_files(local, 1) and rx.messages(local)
    t.check(msgs and len(msgs) == 1, "expected one copy for %s, got %r", local, msgs)
    return msgs[0]


def check_tls_received(m, proto):
    t.check_eq(m.fields["proto"], proto.encode(), "Received with")
    t.check(re.search(rb"\(using TLSv1\.2 with cipher TLS-[A-Z0-9-]+\) by ", m.received_unfolded),
            "Received: lacks the TLS comment: %r", m.received_unfolded)


# ---------------------------------------------------------------------------

def test_starttls_smtplib_delivers_exactly():
    body = (b"Subject: over STARTTLS\r\n\r\n.leading dot line\r\n" +
            bytes(range(0x80, 0x100)) + b"\r\n" + b"x" * 5000 + b"\r\nend\r\n")
    with TlsReceiver(extra=tls_args()) as rx:
        s = smtp_starttls(rx)
        t.check_eq(s.sendmail("s@sender.example", ["bob@" + DOM], body), {}, "refused")
        # 2 MiB in the same session: many TLS records, and the glue's
        # buffers fill up and drain again.
        big = b"Subject: big\r\n\r\n" + b"".join(
            b"%07d %s\r\n" % (i, b"y" * (i % 990)) for i in range(4100))
        t.check(len(big) > 2 * 1000 * 1000, "big message is %d octets", len(big))
        t.check_eq(s.sendmail("s@sender.example", ["ivan@" + DOM], big), {}, "refused")
        s.quit()
        m = only_copy(rx, "bob")
        t.check_eq(m.body, body, "stored body")
        t.check_eq(m.fields["helo"], HELO.encode(), "Received from")
        check_tls_received(m, "ESMTPS")
        t.check_eq(only_copy(rx, "ivan").body, big, "stored big body")


def test_implicit_tls_smtp_ssl():
    body = b"Subject: implicit TLS\r\n\r\nport 465 style\r\n"
    with TlsReceiver(extra=tls_args(), implicit=True) as rx:
        s = SMTPSSLLocalhost(rx.host, rx.tls_port, local_hostname=HELO, timeout=20,
                             context=client_context())
        t.check_eq(s.sock.version(), "TLSv1.2", "negotiated TLS version")
        code, _ = s.ehlo()
        t.check_eq(code, 250, "EHLO")
        t.check(not s.has_extn("starttls"), "STARTTLS offered under implicit TLS")
        t.check_eq(s.sendmail("i@sender.example", ["carol@" + DOM], body), {}, "refused")
        s.quit()
        m = only_copy(rx, "carol")
        t.check_eq(m.body, body, "stored body")
        check_tls_received(m, "ESMTPS")
        # The plain listener still works next to it, in the clear.
        c = rx.connect()
        r = c.ehlo()
        t.check(b"STARTTLS" in r.lines, "STARTTLS not offered on the plain port: %r", r)
        c.close()


def test_openssl_s_client_starttls():
    openssl = t.require_program(OPENSSL)
    with TlsReceiver(extra=tls_args()) as rx:
        p = subprocess.run(
            [openssl, "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % rx.port,
             "-CAfile", cert("ca.pem"), "-servername", "localhost", "-verify_hostname",
             "localhost", "-ign_eof"],
            input=b"EHLO s-client.test\r\nQUIT\r\n", stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode("utf-8", "replace")
        t.check("Verify return code: 0 (ok)" in out, "certificate not verified:\n%s", out)
        t.check("Protocol  : TLSv1.2" in out or "Protocol: TLSv1.2" in out
                or "TLSv1.2" in out, "not TLSv1.2:\n%s", out)
        # After the handshake: our EHLO's reply, then QUIT's.
        after = out.split("Verify return code: 0 (ok)")[-1]
        t.check(re.search(r"250-%s\r?\n" % re.escape(rx.hostname), after),
                "no EHLO reply after the handshake:\n%s", after)
        t.check("221 2.0.0 Bye" in after, "no QUIT reply after the handshake:\n%s", after)


def swaks_options(path):
    """The certificate options this swaks knows (older ones lack some)."""
    try:
        with open(path, "rb") as f:
            script = f.read()
    except OSError:
        script = b""
    opts = []
    if b"'tls-verify'" in script and b"'tls-ca-path'" in script:
        opts += ["--tls-verify", "--tls-ca-path", cert("ca.pem")]
    if b"'tls-sni'" in script:
        opts += ["--tls-sni", "localhost"]
    return opts


def swaks(rx, port, *args):
    path = t.require_program(SWAKS)
    argv = [path, "--server", rx.host, "--port", str(port),
            "--helo", "swaks.test.example", "--timeout", "20"] + swaks_options(path)
    argv += list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    t.check(p.returncode == 0, "swaks %s exited %d:\n%s", " ".join(args), p.returncode, out)
    return out


def test_swaks_starttls_and_tls_on_connect():
    t.require_program(SWAKS)
    text = b"Subject: swaks over TLS\n\n.dot line\nbody"
    want = text.replace(b"\n", b"\r\n") + b"\r\n"
    with TlsReceiver(extra=tls_args(), implicit=True) as rx:
        path = os.path.join(rx.root, "data.txt")
        with open(path, "wb") as f:
            f.write(text)
        out = swaks(rx, rx.port, "--tls", "--from", "w@sender.example",
                    "--to", "dave@" + DOM, "--data", "@" + path)
        t.check("STARTTLS" in out, "swaks did not use STARTTLS:\n%s", out)
        m = only_copy(rx, "dave")
        t.check_eq(m.body, want, "stored body (STARTTLS)")
        check_tls_received(m, "ESMTPS")
        swaks(rx, rx.tls_port, "--tls-on-connect", "--from", "w@sender.example",
              "--to", "erin@" + DOM, "--data", "@" + path)
        m = only_copy(rx, "erin")
        t.check_eq(m.body, want, "stored body (implicit TLS)")
        check_tls_received(m, "ESMTPS")


def test_starttls_injection_is_not_answered():
    """RFC 3207 §4.2 / CVE-2011-0411: plaintext pipelined behind STARTTLS
    is thrown away; the TLS session starts from scratch."""
    with TlsReceiver(extra=tls_args()) as rx:
        c = rx.connect()
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n")
        # Exactly the 220 and nothing else before the handshake.
        r = c.read_reply()
        t.check_eq(r.code, 220, "STARTTLS reply")
        t.check_eq(c.buf, b"", "bytes after the 220 in the clear")
        tls = client_context().wrap_socket(c.sock, server_hostname="localhost")
        tls.settimeout(10)

        def reply():
            data = b""
            while not re.search(rb"(^|\r\n)\d{3} [^\r\n]*\r\n\Z", data):
                chunk = tls.recv(65536)
                t.check(chunk, "connection closed; got %r", data)
                data += chunk
            return data

        # The injected MAIL was never seen: the first thing we hear is the
        # reply to what we send now. MAIL before EHLO gets 503.
        tls.sendall(b"MAIL FROM:<good@x.example>\r\n")
        got = reply()
        t.check(got.startswith(b"503 "), "MAIL before EHLO after STARTTLS: %r", got)
        tls.sendall(b"EHLO " + HELO.encode() + b"\r\n")
        got = reply()
        t.check(got.startswith(b"250-" + rx.hostname.encode() + b"\r\n"),
                "EHLO after STARTTLS: %r", got)
        tls.sendall(b"QUIT\r\n")
        got = reply()
        t.check(got.startswith(b"221 "), "QUIT: %r", got)
        tls.close()
        t.check("evil" not in rx.read_log(), "the injected command was seen")
        t.served_normally(rx)


def test_require_tls():
    with TlsReceiver(extra=tls_args() + ["--require-tls"]) as rx:
        c = rx.connect()
        c.ehlo()
        c.expect("MAIL FROM:<a@sender.example>", 530, "5.7.0")
        c.expect("QUIT", 221)
        c.close()
        s = smtp_starttls(rx)
        body = b"Subject: required TLS\r\n\r\nok\r\n"
        t.check_eq(s.sendmail("a@sender.example", ["frank@" + DOM], body), {}, "refused")
        s.quit()
        t.check_eq(only_copy(rx, "frank").body, body, "stored body")


def make_auth_file(root, user, password):
    p = subprocess.run([t.receiver_binary(), "--hash-password", user],
                       input=password.encode() + b"\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    t.check_eq(p.returncode, 0, "--hash-password exit status (%r)" % p.stderr)
    line = p.stdout.decode()
    t.check(re.fullmatch(r"%s:\$pbkdf2-sha256\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\n"
                         % re.escape(user), line), "--hash-password printed %r", line)
    path = os.path.join(root, "users")
    with open(path, "w") as f:
        f.write("# test users\n" + line)
    return path


def test_auth_under_tls():
    root = t.make_temp_root()
    users = make_auth_file(root, "alice", "correct horse")
    with TlsReceiver(extra=tls_args() + ["--auth-file", users], root=root) as rx:
        # Not offered in the clear.
        c = rx.connect()
        r = c.ehlo()
        t.check(not any(l.startswith(b"AUTH") for l in r.lines), "AUTH before TLS: %r", r)
        c.close()
        # A wrong password gets 535.
        s = smtp_starttls(rx)
        t.check(s.has_extn("auth"), "AUTH not offered under TLS: %r", s.esmtp_features)
        try:
            s.login("alice", "wrong horse")
            t.check(False, "a wrong password was accepted")
        except smtplib.SMTPAuthenticationError as e:
            t.check_eq(e.smtp_code, 535, "wrong password reply")
        s.quit()
        # The right one gets 235, and the Received: says ESMTPSA.
        s = smtp_starttls(rx, login=("alice", "correct horse"))
        body = b"Subject: authenticated\r\n\r\nhello\r\n"
        t.check_eq(s.sendmail("alice@sender.example", ["gina@" + DOM], body), {}, "refused")
        s.quit()
        m = only_copy(rx, "gina")
        t.check_eq(m.body, body, "stored body")
        check_tls_received(m, "ESMTPSA")


def test_auth_plaintext_allowed():
    root = t.make_temp_root()
    users = make_auth_file(root, "bob", "pw")
    with t.Receiver(extra=["--auth-file", users, "--allow-plaintext-auth"], root=root) as rx:
        s = smtplib.SMTP(rx.host, rx.port, local_hostname=HELO, timeout=20)
        s.ehlo()
        t.check(s.has_extn("auth"), "AUTH not offered with --allow-plaintext-auth")
        code, _ = s.login("bob", "pw")
        t.check_eq(code, 235, "AUTH in the clear")
        body = b"Subject: plain auth\r\n\r\nhi\r\n"
        t.check_eq(s.sendmail("bob@sender.example", ["hank@" + DOM], body), {}, "refused")
        s.quit()
        m = only_copy(rx, "hank")
        t.check_eq(m.fields["proto"], b"ESMTPA", "Received with")


def test_plaintext_client_on_tls_port_is_dropped():
    with TlsReceiver(extra=tls_args(), implicit=True) as rx:
        c = t.SmtpClient(rx.host, rx.tls_port, timeout=10)
        c.send(b"EHLO plain.test\r\n")
        t.check(c.at_eof(timeout=10), "server kept a non-TLS client on the TLS port")
        # Whatever came back was a TLS alert, never an SMTP reply.
        t.check(not re.match(rb"\d{3}[ -]", c.buf), "SMTP reply on the TLS port: %r", c.buf)
        c.close()
        t.check("TLS handshake failed: " in rx.read_log(),
                "handshake failure not logged:\n%s", rx.read_log())
        # Still serving TLS clients.
        s = SMTPSSLLocalhost(rx.host, rx.tls_port, local_hostname=HELO, timeout=20,
                             context=client_context())
        s.ehlo()
        s.quit()


def test_bad_tls_options():
    binary = t.receiver_binary()
    root = t.make_temp_root()
    try:
        cases = [
            (["--tls-cert", cert("server.pem")], 64),
            (["--require-tls"], 64),
            (["--allow-plaintext-auth"], 64),
            (["--tls-cert", cert("server.pem"), "--tls-key", cert("wrongname.key")], 78),
            (tls_args() + ["--auth-file", os.path.join(root, "missing")], 66),
        ]
        for extra, want in cases:
            p = subprocess.run([binary, "--listen", "127.0.0.1:0", "--sink"] + extra,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=20)
            t.check(p.returncode == want, "%r: exit %d, want %d (%r)", extra, p.returncode,
                    want, p.stderr)
            t.check_eq(p.stdout, b"", "stdout of a failed start")
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)


TESTS = [
    test_starttls_smtplib_delivers_exactly,
    test_implicit_tls_smtp_ssl,
    test_starttls_injection_is_not_answered,
    test_require_tls,
    test_auth_under_tls,
    test_auth_plaintext_allowed,
    test_plaintext_client_on_tls_port_is_dropped,
    test_bad_tls_options,
    test_openssl_s_client_starttls,
    test_swaks_starttls_and_tls_on_connect,
]


def built_without_tls():
    """A build without mbedTLS must refuse TLS options with exit 78."""
    p = subprocess.run([t.receiver_binary(), "--listen", "127.0.0.1:0", "--sink",
                        "--tls-cert", "x.pem", "--tls-key", "x.key"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    if p.returncode != 78 or b"without TLS" not in p.stderr:
        return False
    return True


def main():
    global CERTS
    try:
        t.receiver_binary()
    except t.Skip as e:
        t._skip(str(e))
    if built_without_tls():
        print("ok   smtp-receive without TLS refuses TLS options with exit 78")
        sys.exit(0)
    CERTS = os.environ.get("LSMTP_TEST_CERTS")
    if not CERTS or not os.path.isfile(os.path.join(CERTS, "server.pem")):
        if not os.path.isfile(OPENSSL):
            t._skip("no LSMTP_TEST_CERTS and no openssl to make certificates")
        CERTS = tempfile.mkdtemp(prefix="lsmtp-certs-")
        subprocess.run(["bash", os.path.join(t.SOURCE_DIR, "tests", "certs", "make-certs.sh"),
                        CERTS], check=True, stdout=subprocess.DEVNULL, timeout=120)
    t.run(TESTS)


if __name__ == "__main__":
    main()
