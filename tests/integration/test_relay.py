"""smtp-relay end to end, with lsmtp's own smtp-receive as next hops
(--route) and smtplib / raw sockets as submitting clients, loopback only:
byte-exact relaying behind the added Received: field; two recipients on
two routes; a next hop that is down at first (retried on the schedule,
delivered exactly once); a 550 from the next hop bounced as an RFC 3464
DSN to the sender's mailbox; kill -9 after the 250 and a restart on the
same spool (delivered exactly once); and no open relay for a client
outside --relay-from. The MX path runs without any network through
--dns-file (static records) and --mx-port: an unreachable preferred MX
then the next one (delivered exactly once), an implicit MX (A record
only), null MX (bounce 5.1.10), NXDOMAIN (bounce 5.1.2) and SERVFAIL
(stays queued, retried, never bounced)."""

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as T  # noqa: E402


def relay_binary():
    path = os.path.join(T.BUILD_DIR, "bin", "smtp-relay") if T.BUILD_DIR else ""
    if path and os.access(path, os.X_OK):
        return path
    raise T.Skip("smtp-relay not built (LSMTP_BUILD_DIR=%r)" % T.BUILD_DIR)


class Relay:
    """One smtp-relay process on a fixed spool directory."""

    def __init__(self, root, routes, extra=(), relay_from=None, port=None):
        self.binary = relay_binary()
        self.root = root
        self.spool = os.path.join(root, "spool")
        self.routes = routes  # {domain: port}
        self.extra = list(extra)
        self.relay_from = relay_from
        self.port = port
        self.proc = None
        self.log_path = os.path.join(root, "smtp-relay.log")

    def argv(self):
        a = [self.binary, "--listen", "127.0.0.1:%d" % self.port, "--spool", self.spool,
             "--hostname", "relay.test.example", "--retry-schedule", "1s",
             "--timeout", "5", "--starttls-mode", "off"]
        for d, p in sorted(self.routes.items()):
            a += ["--route", "%s=127.0.0.1:%d" % (d, p)]
        if self.relay_from:
            a += ["--relay-from", self.relay_from]
        return a + self.extra

    def start(self):
        if self.port is None:
            self.port = T.free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            T.check(self.proc.poll() is None, "smtp-relay exited at start:\n%s", self.log())
            try:
                c = T.SmtpClient("127.0.0.1", self.port, timeout=2)
                code, _ = c.greeting()
                c.close()
                if code == 220:
                    return self
            except OSError:
                time.sleep(0.05)
        raise T.TestFailure("smtp-relay did not start:\n" + self.log())

    def stop(self):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise T.TestFailure("smtp-relay did not stop on SIGTERM:\n" + self.log())
        self.proc = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-6000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def queued(self):
        try:
            return sorted(n for n in os.listdir(os.path.join(self.spool, "queue"))
                          if n.endswith(".env"))
        except FileNotFoundError:
            return []

    def wait_log(self, pattern, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log()):
                return
            time.sleep(0.05)
        raise T.TestFailure("no %r in the relay log:\n%s" % (pattern, self.log()))

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if self.proc is not None:
            rc = self.stop()
            if exc_type is None:
                T.check_eq(rc, 0, "smtp-relay exit status after SIGTERM")
        if exc_type is not None:
            sys.stderr.write("relay log:\n%s\n" % self.log())
        return False


def fixed_receiver(port, domains, root, host="127.0.0.1"):
    """A Receiver that listens on a port chosen beforehand (so the relay can
    be told about it while nothing listens there yet)."""
    rx = T.Receiver(domains=domains, root=root, host=host)
    rx.port = port
    log = open(rx.log_path, "ab")
    rx.log = log
    rx.proc = subprocess.Popen(rx.argv(port), stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT)
    rx._wait_ready(10.0)
    return rx


def strip_first_received(body):
    """The relay's Received: field (folded) in front of the original."""
    T.check(body.startswith(b"Received: from "), "no relay Received: %r", body[:200])
    end = 0
    while True:
        nl = body.index(b"\r\n", end)
        end = nl + 2
        if body[end:end + 1] not in (b"\t", b" "):
            break
    return body[:end], body[end:]


MSG = (b"From: alice@example.org\r\n"
       b"To: bob@example.net\r\n"
       b"Subject: relayed byte exact\r\n"
       b"\r\n"
       b".a line with a dot\r\n"
       b"\xc3\xa9 8-bit\r\n"
       b"last\r\n")


def send(port, sender, rcpts, data, source=None):
    c = T.SmtpClient("127.0.0.1", port, source=source)
    try:
        code, _ = c.greeting()
        T.check_eq(code, 220, "relay greeting")
        c.ehlo()
        r = c.send_message(sender, rcpts, T.dot_stuff(data))
        c.expect("QUIT", 221)
        return r
    finally:
        c.close()


def test_byte_exact_and_two_routes():
    root = T.make_temp_root("lsmtp-relay-")
    with T.Receiver(domains=["example.net"]) as rx1, T.Receiver(domains=["example.com"]) as rx2:
        with Relay(root, {"example.net": rx1.port, "example.com": rx2.port}) as rl:
            r = send(rl.port, "alice@example.org", ["bob@example.net"], MSG)
            T.check(r.enhanced == "2.0.0" and re.search(r"Ok: queued as [0-9A-F.]+$", r.text)
                    is not None, "250 text %r", r)
            files = rx1.wait_files("bob", 1)
            T.check_eq(len(files), 1, "copies for bob")
            st = rx1.messages("bob")[0]
            T.check_eq(st.return_path, b"alice@example.org", "Return-Path at the next hop")
            T.check_eq(st.fields["helo"], b"relay.test.example", "EHLO name of the relay")
            hdr, rest = strip_first_received(st.body)
            T.check_eq(rest, MSG, "message after the relay's Received:")
            T.check(b"by relay.test.example (lsmtp)" in hdr and b"for <bob@example.net>" in
                    re.sub(rb"\r\n\t", b" ", hdr), "relay Received: %r", hdr)
            rl.wait_log(r"to=<bob@example.net> relay=\S+ status=sent \(250 ")

            # One message, two recipients on two routes: each gets one copy.
            smtp = smtplib.SMTP("127.0.0.1", rl.port, timeout=10)
            refused = smtp.sendmail("alice@example.org", ["carol@example.net", "dave@example.com"],
                                    b"Subject: two routes\r\n\r\nboth\r\n")
            smtp.quit()
            T.check_eq(refused, {}, "refused recipients")
            T.check_eq(len(rx1.wait_files("carol", 1)), 1, "copies for carol")
            T.check_eq(len(rx2.wait_files("dave", 1)), 1, "copies for dave")
            for box, rx in (("carol", rx1), ("dave", rx2)):
                _, rest = strip_first_received(rx.messages(box)[0].body)
                T.check_eq(rest, b"Subject: two routes\r\n\r\nboth\r\n", "copy for %s" % box)
            deadline = time.monotonic() + 5
            while rl.queued() and time.monotonic() < deadline:
                time.sleep(0.05)
            T.check_eq(rl.queued(), [], "queue after delivery")
        T.check_eq(rx1.mailboxes(), ["bob", "carol"], "mailboxes at route 1")
        T.check_eq(rx2.mailboxes(), ["dave"], "mailboxes at route 2")


def test_next_hop_down_then_up():
    root = T.make_temp_root("lsmtp-relay-")
    hop_port = T.free_port()
    with Relay(root, {"example.net": hop_port}) as rl:
        send(rl.port, "alice@example.org", ["bob@example.net"], MSG)
        rl.wait_log(r"to=<bob@example.net> relay=\S+ status=deferred")
        T.check_eq(len(rl.queued()), 1, "queued while the hop is down")
        rx = fixed_receiver(hop_port, ["example.net"], T.make_temp_root())
        try:
            T.check_eq(len(rx.wait_files("bob", 1, timeout=10)), 1, "delivered after retry")
            rl.wait_log(r"status=sent")
            time.sleep(2.5)  # two more retry periods: nothing else arrives
            T.check_eq(len(rx.new_files("bob")), 1, "delivered exactly once")
            T.check_eq(rl.queued(), [], "queue after delivery")
            _, rest = strip_first_received(rx.messages("bob")[0].body)
            T.check_eq(rest, MSG, "message after the retry")
        finally:
            T.check_eq(rx.stop(), 0, "smtp-receive exit")


def test_bounce_on_550():
    root = T.make_temp_root("lsmtp-relay-")
    # refused.example is routed to a receiver that does not take it (550
    # 5.7.1); the sender's domain example.org to a second receiver.
    with T.Receiver(domains=["example.net"]) as hop, T.Receiver(domains=["example.org"]) as home:
        with Relay(root, {"refused.example": hop.port, "example.net": hop.port,
                          "example.org": home.port}) as rl:
            data = (b"From: alice@example.org\r\nSubject: will bounce\r\n"
                    b"Message-ID: <orig-1@example.org>\r\n\r\nbody\r\n")
            send(rl.port, "alice@example.org", ["nobody@refused.example", "bob@example.net"], data)
            T.check_eq(len(hop.wait_files("bob", 1)), 1, "the good recipient got it")
            files = home.wait_files("alice", 1)
            T.check_eq(len(files), 1, "DSNs for the sender")
            dsn = home.messages("alice")[0]
            T.check_eq(dsn.return_path, b"", "DSN reverse path is <>")
            body = dsn.body
            T.check(re.search(rb"(?m)^Content-Type: multipart/report; report-type=delivery-status;",
                              body) is not None, "not a multipart/report: %r", body[:600])
            T.check(b"Content-Type: message/delivery-status" in body, "no delivery-status part")
            T.check(b"Final-Recipient: rfc822; nobody@refused.example\r\n" in body,
                    "recipient not named: %r", body)
            T.check(b"Action: failed\r\n" in body, "no Action: failed")
            T.check(re.search(rb"Status: 5\.7\.1\r\n", body) is not None, "no 5.x.x status")
            T.check(b"Diagnostic-Code: smtp; 550 5.7.1 " in body, "no diagnostic code")
            T.check(b"bob@example.net" not in body.split(b"message/delivery-status")[1]
                    .split(b"text/rfc822-headers")[0], "the delivered recipient is in the DSN")
            T.check(b"Message-ID: <orig-1@example.org>" in body, "original headers missing")
            T.check(b"\r\nbody\r\n" not in body, "the original body came back")
            rl.wait_log(r"to=<nobody@refused.example> relay=\S+ status=bounced \(550 5\.7\.1")
            # The DSN itself is never bounced: a null sender gets none.
            send(rl.port, "", ["ghost@refused.example"], b"Subject: x\r\n\r\ny\r\n")
            rl.wait_log(r"to=<ghost@refused.example> relay=\S+ status=bounced")
            time.sleep(1.0)
            T.check_eq(len(home.new_files("alice")), 1, "DSNs after a bounce of <>")
            T.check_eq(rl.queued(), [], "queue at the end")


def test_crash_after_ack_then_restart():
    root = T.make_temp_root("lsmtp-relay-")
    hop_port = T.free_port()
    rl = Relay(root, {"example.net": hop_port}).start()
    try:
        send(rl.port, "alice@example.org", ["bob@example.net"], MSG)
        rl.wait_log(r"status=deferred")
        rl.kill9()
        T.check_eq(len(rl.queued()), 1, "queued after kill -9")
        rl.start()
        rl.wait_log(r"queue: 1 message\(s\) to deliver")
        rx = fixed_receiver(hop_port, ["example.net"], T.make_temp_root())
        try:
            T.check_eq(len(rx.wait_files("bob", 1, timeout=10)), 1, "delivered after restart")
            time.sleep(2.5)
            T.check_eq(len(rx.new_files("bob")), 1, "delivered exactly once")
            _, rest = strip_first_received(rx.messages("bob")[0].body)
            T.check_eq(rest, MSG, "message after the restart")
        finally:
            T.check_eq(rx.stop(), 0, "smtp-receive exit")
        T.check_eq(rl.queued(), [], "queue after delivery")
        T.check_eq(os.listdir(os.path.join(rl.spool, "tmp")), [], "tmp/ after delivery")
    finally:
        if rl.proc is not None:
            T.check_eq(rl.stop(), 0, "smtp-relay exit status")


def test_not_an_open_relay():
    root = T.make_temp_root("lsmtp-relay-")
    with T.Receiver(domains=["example.net"]) as rx:
        with Relay(root, {"example.net": rx.port, "elsewhere.example": rx.port,
                          "example.org": rx.port},
                   relay_from="127.0.0.1", extra=["--domain", "example.net"]) as rl:
            c = T.SmtpClient("127.0.0.1", rl.port, source="127.0.0.2")
            try:
                c.greeting()
                c.ehlo()
                c.expect("MAIL FROM:<spammer@elsewhere.example>", 250)
                c.expect("RCPT TO:<victim@elsewhere.example>", 554, "5.7.1")
                # Our own domain is fine from anywhere.
                c.expect("RCPT TO:<bob@example.net>", 250)
                c.expect("DATA", 354)
                c.send(b"Subject: inbound\r\n\r\nok\r\n.\r\n")
                T.check_eq(c.read_reply().code, 250, "end of data")
                c.expect("QUIT", 221)
            finally:
                c.close()
            T.check_eq(len(rx.wait_files("bob", 1)), 1, "inbound copy")
            # From an allowed address the same foreign recipient is relayed.
            send(rl.port, "a@example.org", ["victim@elsewhere.example"], b"Subject: ok\r\n\r\nx\r\n")
            rl.wait_log(r"to=<victim@elsewhere.example> relay=\S+ status=bounced")
            T.check(re.search(r"refused <victim@elsewhere.example> from 127\.0\.0\.2", rl.log())
                    is not None, "refusal not logged")


# ---- the MX path, with static DNS records (--dns-file) ----

def write_dns_file(root, text):
    path = os.path.join(root, "dns.txt")
    with open(path, "w") as f:
        f.write(text)
    return path


def port_closed(host, port):
    """True when a connection to host:port is refused (nothing listens)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    finally:
        s.close()


def count_log(rl, pattern):
    return len(re.findall(pattern, rl.log()))


def test_mx_preference_fallback_and_implicit_mx():
    root = T.make_temp_root("lsmtp-relay-")
    # Every MX host listens on the same --mx-port: mx1 (preferred) on
    # 127.0.0.2 where nothing listens, mx2 on 127.0.0.3 (smtp-receive).
    port = T.free_port("127.0.0.3")
    T.check(port_closed("127.0.0.2", port), "something listens on 127.0.0.2:%d", port)
    dns = write_dns_file(root, (
        "# static records for the test\n"
        "example.net MX 20 mx2.example.net\n"
        "EXAMPLE.NET. MX 10 mx1.example.net.   # the preferred one, down\n"
        "mx1.example.net A 127.0.0.2\n"
        "mx2.example.net\tA\t127.0.0.3\n"
        "\n"
        "implicit.example A 127.0.0.3\n"))
    rx = fixed_receiver(port, ["example.net", "implicit.example"], T.make_temp_root(),
                        host="127.0.0.3")
    try:
        with Relay(root, {}, extra=["--dns-file", dns, "--mx-port", str(port)]) as rl:
            # (a) the preferred MX refuses the connection: the next one gets it.
            send(rl.port, "alice@example.org", ["bob@example.net"], MSG)
            T.check_eq(len(rx.wait_files("bob", 1)), 1, "copies via the second MX")
            rl.wait_log(r"to=<bob@example\.net> relay=mx2\.example\.net\[127\.0\.0\.3\]:%d "
                        r"status=sent \(250 " % port)
            T.check(re.search(r": mx1\.example\.net\[127\.0\.0\.2\]:%d: cannot connect .*; "
                              r"trying the next host\n(.*\n)*.*status=sent" % port, rl.log())
                    is not None,
                    "the preferred MX was not tried first:\n%s", rl.log())
            st = rx.messages("bob")[0]
            T.check_eq(st.return_path, b"alice@example.org", "Return-Path at the MX")
            _, rest = strip_first_received(st.body)
            T.check_eq(rest, MSG, "message after the relay's Received:")

            # (e) no MX record, an A record: the domain itself is the MX.
            send(rl.port, "alice@example.org", ["erin@implicit.example"],
                 b"Subject: implicit\r\n\r\nvia A\r\n")
            T.check_eq(len(rx.wait_files("erin", 1)), 1, "copies via the implicit MX")
            rl.wait_log(r"to=<erin@implicit\.example> relay=implicit\.example"
                        r"\[127\.0\.0\.3\]:%d status=sent" % port)
            _, rest = strip_first_received(rx.messages("erin")[0].body)
            T.check_eq(rest, b"Subject: implicit\r\n\r\nvia A\r\n", "implicit MX copy")

            time.sleep(2.5)  # retry periods go by: nothing is sent again
            T.check_eq(len(rx.new_files("bob")), 1, "delivered exactly once (bob)")
            T.check_eq(len(rx.new_files("erin")), 1, "delivered exactly once (erin)")
            T.check_eq(count_log(rl, r"to=<bob@example\.net> relay=\S+ status="), 1,
                       "outcomes logged for bob")
            T.check_eq(rl.queued(), [], "queue after delivery")
        T.check_eq(rx.mailboxes(), ["bob", "erin"], "mailboxes at the MX")
    finally:
        T.check_eq(rx.stop(), 0, "smtp-receive exit")


def dsn_for(home, rcpt):
    """The one DSN at alice that names rcpt, as bytes."""
    found = [m.body for m in home.messages("alice")
             if b"Final-Recipient: rfc822; " + rcpt + b"\r\n" in m.body]
    T.check_eq(len(found), 1, "DSNs naming %r" % rcpt)
    return found[0]


def test_mx_failures_null_mx_nxdomain_servfail():
    root = T.make_temp_root("lsmtp-relay-")
    dns = write_dns_file(root, (
        "nullmx.example MX 0 .\n"
        "gone.example NXDOMAIN\n"
        "broken.example SERVFAIL\n"))
    # The sender's domain has a route, so the DSNs reach alice without DNS.
    with T.Receiver(domains=["example.org"]) as home:
        with Relay(root, {"example.org": home.port},
                   extra=["--dns-file", dns, "--mx-port", str(T.free_port())]) as rl:
            t0 = time.monotonic()
            # (b) null MX: bounced at the first attempt, 556 5.1.10.
            send(rl.port, "alice@example.org", ["nobody@nullmx.example"],
                 b"Subject: null mx\r\nMessage-ID: <nullmx-1@example.org>\r\n\r\nx\r\n")
            rl.wait_log(r"to=<nobody@nullmx\.example> relay=none status=bounced "
                        r"\(556 5\.1\.10 recipient domain does not accept mail \(null MX\)\)")
            # (c) NXDOMAIN: bounced, 550 5.1.2.
            send(rl.port, "alice@example.org", ["nobody@gone.example"],
                 b"Subject: nxdomain\r\nMessage-ID: <gone-1@example.org>\r\n\r\nx\r\n")
            rl.wait_log(r"to=<nobody@gone\.example> relay=none status=bounced "
                        r"\(550 5\.1\.2 recipient domain does not exist\)")
            T.check_eq(len(home.wait_files("alice", 2)), 2, "DSNs for alice")
            T.check(time.monotonic() - t0 < 5.0, "the bounces were not immediate")
            for rcpt, status, diag, mid in (
                    (b"nobody@nullmx.example", b"5.1.10", b"556 5.1.10", b"<nullmx-1@example.org>"),
                    (b"nobody@gone.example", b"5.1.2", b"550 5.1.2", b"<gone-1@example.org>")):
                body = dsn_for(home, rcpt)
                T.check(b"Action: failed\r\n" in body, "no Action: failed for %r" % rcpt)
                T.check(b"Status: " + status + b"\r\n" in body, "status of %r: %r" % (rcpt, body))
                T.check(b"Diagnostic-Code: smtp; " + diag + b" " in body,
                        "diagnostic of %r: %r" % (rcpt, body))
                T.check(b"Remote-MTA:" not in body, "a Remote-MTA without a remote MTA")
                T.check(b"Message-ID: " + mid in body, "original headers of %r" % rcpt)
            T.check_eq(count_log(rl, r"nullmx\.example> relay=\S+ status=deferred"), 0,
                       "null MX deferred")
            T.check_eq(count_log(rl, r"gone\.example> relay=\S+ status=deferred"), 0,
                       "NXDOMAIN deferred")

            # (d) SERVFAIL: temporary; retried on the 1s schedule, never bounced.
            send(rl.port, "alice@example.org", ["carol@broken.example"],
                 b"Subject: servfail\r\n\r\nx\r\n")
            deferred = (r"to=<carol@broken\.example> relay=none status=deferred \(451 4\.4\.3 "
                        r"temporary DNS failure while looking up the mail exchangers\)")
            rl.wait_log(deferred)
            deadline = time.monotonic() + 6
            while count_log(rl, deferred) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            T.check(count_log(rl, deferred) >= 3, "SERVFAIL not retried:\n%s", rl.log())
            T.check_eq(count_log(rl, r"carol@broken\.example> relay=\S+ status=(sent|bounced)"),
                       0, "final outcomes for the SERVFAIL domain")
            T.check_eq(len(rl.queued()), 1, "queued while DNS fails")
            T.check_eq(len(home.new_files("alice")), 2, "DSNs after SERVFAIL (none new)")


if __name__ == "__main__":
    T.run([test_byte_exact_and_two_routes, test_next_hop_down_then_up, test_bounce_on_550,
           test_crash_after_ack_then_restart, test_not_an_open_relay,
           test_mx_preference_fallback_and_implicit_mx,
           test_mx_failures_null_mx_nxdomain_servfail])
