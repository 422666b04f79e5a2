#!/usr/bin/python3
"""smtp-receive against Python's smtplib and a raw pipelining client:
several messages per connection, several recipients, dot-stuffing, 8-bit
bodies, a 1 MiB message, IPv6 and other loopback addresses, LMTP, --sink,
and a graceful SIGTERM. Every stored copy is compared byte for byte."""

import os
import random
import shutil
import signal
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as t  # noqa: E402

DOM = "example.org"
HELO = "client.test.example"


def check_copy(rx, local, body, sender, rcpt=None, helo=HELO, ip="127.0.0.1", proto="ESMTP"):
    """Exactly one stored copy for local, with the given body and traces."""
    msgs = rx.messages(local)
    t.check_eq(len(msgs), 1, "copies stored for %s" % local)
    m = msgs[0]
    t.check_eq(m.body, body, "stored body for %s" % local)
    t.check_eq(m.return_path, sender.encode(), "Return-Path for %s" % local)
    f = m.fields
    t.check_eq(f["helo"], helo.encode(), "Received from")
    t.check_eq(f["by"], rx.hostname.encode(), "Received by")
    t.check_eq(f["proto"], proto.encode(), "Received with")
    t.check(f["tcpinfo"] is not None and f["tcpinfo"].endswith(b"[" + ip.encode() + b"]"),
            "Received TCP-info %r should end with [%s]", f["tcpinfo"], ip)
    if f["rcpt"] is not None and rcpt is not None:
        t.check_eq(f["rcpt"].lower(), rcpt.lower().encode(), "Received for")
    size_tag = os.path.basename(m.path).split(",S=")
    if len(size_tag) == 2:
        t.check_eq(int(size_tag[1].split(",")[0].split(":")[0]), os.path.getsize(m.path),
                   "the ,S= size in the file name")
    return m


def test_several_messages_and_recipients():
    with t.Receiver(domains=[DOM, "second.example"]) as rx:
        s = smtplib.SMTP(rx.host, rx.port, local_hostname=HELO, timeout=10)
        code, _ = s.ehlo()
        t.check_eq(code, 250, "EHLO")
        m1 = b"Subject: one\r\n\r\nfirst message\r\n"
        m2 = b"Subject: two\r\nTo: many\r\n\r\nsecond message\r\nline two\r\n"
        m3 = b"Subject: three\r\n\r\nfor the postmaster\r\n"
        t.check_eq(s.sendmail("s1@sender.example", ["alice@" + DOM], m1), {}, "refused (m1)")
        refused = s.sendmail("s2@sender.example",
                             ["bob@" + DOM, "Carol@EXAMPLE.ORG", "dave@Second.Example",
                              "eve@other.example"], m2)
        t.check_eq(list(refused), ["eve@other.example"], "refused recipients (m2)")
        code, text = refused["eve@other.example"]
        t.check(code == 550 and text.startswith(b"5.7.1"),
                "RCPT to a foreign domain: expected 550 5.7.1, got %d %r", code, text)
        t.check_eq(s.sendmail("", ["postmaster"], m3), {}, "refused (m3)")
        try:
            s.sendmail("s4@sender.example", ["mallory@other.example"], m1)
            t.check(False, "a message to a foreign domain only was accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients["mallory@other.example"]
            t.check(code == 550 and text.startswith(b"5.7.1"), "got %d %r", code, text)
        s.quit()

        check_copy(rx, "alice", m1, "s1@sender.example", "alice@" + DOM)
        check_copy(rx, "bob", m2, "s2@sender.example", "bob@" + DOM)
        check_copy(rx, "carol", m2, "s2@sender.example", "carol@example.org")
        check_copy(rx, "dave", m2, "s2@sender.example", "dave@second.example")
        check_copy(rx, "postmaster", m3, "", "postmaster")
        t.check_eq(rx.mailboxes(), ["alice", "bob", "carol", "dave", "postmaster"], "mailboxes")
        t.check_eq(rx.tmp_files(), [], "files left in tmp/")


def test_pipelined_in_one_write():
    with t.Receiver() as rx:
        c = rx.connect()
        r = c.ehlo(HELO)
        t.check(any(l.upper().startswith(b"PIPELINING") for l in r.lines),
                "EHLO does not offer PIPELINING: %r", r)
        c.send("MAIL FROM:<p@sender.example>\r\nRCPT TO:<a1@%s>\r\nRCPT TO:<x@other.example>\r\n"
               "RCPT TO:<a2@%s>\r\nDATA\r\n" % (DOM, DOM))
        codes = [c.read_reply().code for _ in range(5)]
        t.check_eq(codes, [250, 250, 550, 250, 354], "replies to a pipelined group")
        body = b"Subject: pipelined\r\n\r\nbody\r\n"
        c.send(body + b".\r\nNOOP\r\n")  # the next command right behind the dot
        t.check_eq(c.read_reply().code, 250, "end of data")
        t.check_eq(c.read_reply().code, 250, "NOOP pipelined after the dot")
        c.expect("QUIT", 221)
        c.close()
        check_copy(rx, "a1", body, "p@sender.example", "a1@" + DOM)
        check_copy(rx, "a2", body, "p@sender.example", "a2@" + DOM)
        t.check_eq(rx.mailboxes(), ["a1", "a2"], "mailboxes")


def test_dot_stuffing():
    body = (b".\r\n"             # a lone dot as the very first line
            b"..\r\n"
            b".leading dot\r\n"
            b"..two dots\r\n"
            b". \r\n"
            b"middle . dot\r\n"
            b"...\r\n"
            b"end\r\n")
    with t.Receiver() as rx:
        # By smtplib, which stuffs for us.
        s = smtplib.SMTP(rx.host, rx.port, local_hostname=HELO, timeout=10)
        t.check_eq(s.sendmail("d@sender.example", ["dots@" + DOM], body), {}, "refused")
        s.quit()
        check_copy(rx, "dots", body, "d@sender.example", "dots@" + DOM)
        # And by hand, with the stuffing checked independently of smtplib.
        wire = t.dot_stuff(body)
        t.check(wire.startswith(b"..\r\n...\r\n"), "test helper does not stuff: %r", wire[:20])
        c = rx.connect()
        c.ehlo(HELO)
        c.send_message("d@sender.example", ["dots2@" + DOM], wire)
        c.expect("QUIT", 221)
        c.close()
        check_copy(rx, "dots2", body, "d@sender.example", "dots2@" + DOM)


def test_8bitmime_body():
    body = (b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            b"gr\xc3\xbc\xc3\x9fe \xe2\x82\xac\r\n" + bytes(range(0x80, 0x100)) + b"\r\n")
    with t.Receiver() as rx:
        s = smtplib.SMTP(rx.host, rx.port, local_hostname=HELO, timeout=10)
        s.ehlo()
        t.check(s.has_extn("8bitmime"), "EHLO does not offer 8BITMIME")
        t.check_eq(s.sendmail("e@sender.example", ["eight@" + DOM], body,
                              mail_options=["BODY=8BITMIME"]), {}, "refused")
        s.quit()
        check_copy(rx, "eight", body, "e@sender.example", "eight@" + DOM)


def test_one_mebibyte():
    rnd = random.Random(5321)
    lines = [b"Subject: big\r\n\r\n"]
    size = len(lines[0])
    while size < 1024 * 1024:
        n = rnd.randint(0, 900)
        line = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz .,-0123456789") for _ in range(n))
        if rnd.random() < 0.05:
            line = b"." + line
        lines.append(line + b"\r\n")
        size += n + 2
    body = b"".join(lines)
    with t.Receiver(extra=["--max-size", str(4 * 1024 * 1024)]) as rx:
        s = smtplib.SMTP(rx.host, rx.port, local_hostname=HELO, timeout=30)
        t.check_eq(s.sendmail("big@sender.example", ["big@" + DOM, "big2@" + DOM], body), {},
                   "refused")
        s.quit()
        check_copy(rx, "big", body, "big@sender.example", "big@" + DOM)
        check_copy(rx, "big2", body, "big@sender.example", "big2@" + DOM)


def test_ipv6_loopback():
    if not t.ipv6_loopback_available():
        print("  (no IPv6 loopback here: case not run)")
        return
    with t.Receiver(host="::1") as rx:
        s = smtplib.SMTP("::1", rx.port, local_hostname=HELO, timeout=10)
        body = b"Subject: v6\r\n\r\nover IPv6\r\n"
        t.check_eq(s.sendmail("six@sender.example", ["six@" + DOM], body), {}, "refused")
        s.quit()
        check_copy(rx, "six", body, "six@sender.example", "six@" + DOM, ip="IPv6:::1")


def test_other_loopback_address():
    with t.Receiver(host="127.0.0.2") as rx:
        # From 127.0.0.3, so the Received field must name that address.
        c = t.SmtpClient("127.0.0.2", rx.port, source="127.0.0.3")
        t.check_eq(c.greeting()[0], 220, "greeting")
        c.ehlo(HELO)
        body = b"Subject: other\r\n\r\nvia 127.0.0.2\r\n"
        c.send_message("o@sender.example", ["other@" + DOM], body)
        c.expect("QUIT", 221)
        c.close()
        check_copy(rx, "other", body, "o@sender.example", "other@" + DOM, ip="127.0.0.3")
        # Nothing listens on 127.0.0.1 at that port.
        try:
            socket.create_connection(("127.0.0.1", rx.port), timeout=2).close()
            t.check(False, "smtp-receive --listen 127.0.0.2 also accepts on 127.0.0.1")
        except ConnectionRefusedError:
            pass


def test_helo_gives_smtp_protocol():
    with t.Receiver() as rx:
        c = rx.connect()
        c.expect("HELO old.client.example", 250)
        body = b"Subject: helo\r\n\r\nold style\r\n"
        c.send_message("h@sender.example", ["helo@" + DOM], body)
        c.expect("QUIT", 221)
        c.close()
        check_copy(rx, "helo", body, "h@sender.example", "helo@" + DOM,
                   helo="old.client.example", proto="SMTP")


def test_lmtp():
    with t.Receiver(lmtp=True) as rx:
        s = smtplib.LMTP(rx.host, rx.port, local_hostname=HELO, timeout=10)
        body = b"Subject: lmtp\r\n\r\nover LMTP\r\n"
        t.check_eq(s.sendmail("l@sender.example", ["l1@" + DOM, "l2@" + DOM], body), {},
                   "refused")
        s.quit()
        check_copy(rx, "l1", body, "l@sender.example", "l1@" + DOM, proto="LMTP")
        check_copy(rx, "l2", body, "l@sender.example", "l2@" + DOM, proto="LMTP")
        # One reply per accepted recipient after the dot (RFC 2033 §4.2).
        c = rx.connect()
        c.expect("LHLO " + HELO, 250)
        c.expect("MAIL FROM:<l@sender.example>", 250)
        c.expect("RCPT TO:<l3@%s>" % DOM, 250)
        c.expect("RCPT TO:<l4@%s>" % DOM, 250)
        c.expect("DATA", 354)
        c.send(body + b".\r\n")
        t.check_eq([c.read_reply().code, c.read_reply().code], [250, 250], "LMTP replies")
        c.expect("QUIT", 221)
        c.close()
        t.check_eq(len(rx.new_files("l3")) + len(rx.new_files("l4")), 2, "LMTP copies")


def test_sink_stores_nothing():
    with t.Receiver(sink=True) as rx:
        s = smtplib.SMTP(rx.host, rx.port, local_hostname=HELO, timeout=10)
        t.check_eq(s.sendmail("k@sender.example", ["k@" + DOM], b"Subject: x\r\n\r\ny\r\n"), {},
                   "refused")
        # --sink is documented to accept every recipient (smtp-receive --help).
        t.check_eq(s.sendmail("k@sender.example", ["k@other.example"], b"x\r\n"), {},
                   "refused with --sink")
        s.quit()
        t.check_eq(rx.mailboxes(), [], "files under the Maildir root with --sink")


def test_sigterm_lets_session_finish():
    rx = t.Receiver()
    rx.start()
    try:
        c = rx.connect()
        c.ehlo(HELO)
        c.expect("MAIL FROM:<term@sender.example>", 250)
        c.expect("RCPT TO:<term@%s>" % DOM, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: sigterm\r\n\r\nfirst half\r\n")
        time.sleep(0.2)
        rx.proc.send_signal(signal.SIGTERM)  # by PID, like rx.stop()
        time.sleep(0.5)
        t.check(rx.alive(), "smtp-receive exited with a session in DATA")
        c.send(b"second half\r\n.\r\n")
        r = c.read_reply()
        t.check_eq(r.code, 250, "end of data after SIGTERM (%r)" % r)
        try:
            r = c.cmd("QUIT")
            t.check(r.code in (221, 421), "QUIT after SIGTERM: %r", r)
        except ConnectionError:
            pass  # the server may close right after the transaction
        c.close()
        rc = rx.stop(timeout=10)
        t.check_eq(rc, 0, "exit status after SIGTERM")
        check_copy(rx, "term", b"Subject: sigterm\r\n\r\nfirst half\r\nsecond half\r\n",
                   "term@sender.example", "term@" + DOM)
        shutil.rmtree(rx.root, ignore_errors=True)
    finally:
        rx._kill()


if __name__ == "__main__":
    t.run([
        test_several_messages_and_recipients,
        test_pipelined_in_one_write,
        test_dot_stuffing,
        test_8bitmime_body,
        test_one_mebibyte,
        test_ipv6_loopback,
        test_other_loopback_address,
        test_helo_gives_smtp_protocol,
        test_lmtp,
        test_sink_stores_nothing,
        test_sigterm_lets_session_finish,
    ])
