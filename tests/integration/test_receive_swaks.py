#!/usr/bin/python3
"""swaks (/usr/bin/swaks) sends to smtp-receive: a message from a file with
dot lines, a pipelined multi-recipient send, swaks' own default message,
and a refused foreign recipient. The stored body must be exactly what
swaks put between DATA and the final dot, unstuffed."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as t  # noqa: E402

DOM = "example.org"
SWAKS = "/usr/bin/swaks"


def swaks(rx, *args, expect_rc=0):
    argv = [t.require_program(SWAKS), "--server", rx.host, "--port", str(rx.port),
            "--helo", "swaks.test.example", "--timeout", "20"] + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    t.check(p.returncode == expect_rc, "swaks %s exited %d (expected %d):\n%s",
            " ".join(args), p.returncode, expect_rc, out)
    return out


def only_copy(rx, local):
    msgs = rx.messages(local)
    t.check_eq(len(msgs), 1, "copies stored for %s" % local)
    return msgs[0]


def test_data_file_with_dot_lines():
    # No newline at the end of the file: swaks then adds exactly one CRLF.
    text = b"Subject: swaks file\n\n.leading dot\nplain\n..two dots\n.\n\nlast line"
    with t.Receiver() as rx:
        path = os.path.join(rx.root, "data.txt")
        with open(path, "wb") as f:
            f.write(text)
        swaks(rx, "--from", "s@sender.example", "--to", "sw@" + DOM, "--data", "@" + path)
        m = only_copy(rx, "sw")
        t.check_eq(m.body, text.replace(b"\n", b"\r\n") + b"\r\n", "stored body")
        t.check_eq(m.return_path, b"s@sender.example", "Return-Path")
        t.check_eq(m.fields["helo"], b"swaks.test.example", "Received from")
        t.check_eq(m.fields["proto"], b"ESMTP", "Received with")


def test_pipelined_two_recipients():
    text = b"Subject: pipelined swaks\n\nbody line"
    with t.Receiver() as rx:
        path = os.path.join(rx.root, "data.txt")
        with open(path, "wb") as f:
            f.write(text)
        out = swaks(rx, "--pipeline", "--from", "p@sender.example",
                    "--to", "one@%s,Two@%s" % (DOM, DOM.upper()), "--data", "@" + path)
        t.check("PIPELINING" in out, "swaks did not see PIPELINING:\n%s" % out)
        want = text.replace(b"\n", b"\r\n") + b"\r\n"
        t.check_eq(only_copy(rx, "one").body, want, "body for one")
        t.check_eq(only_copy(rx, "two").body, want, "body for two")
        t.check_eq(rx.mailboxes(), ["one", "two"], "mailboxes")


def test_default_message():
    with t.Receiver() as rx:
        swaks(rx, "--from", "d@sender.example", "--to", "dflt@" + DOM,
              "--body", "hello from swaks", "--header", "Subject: swaks default")
        body = only_copy(rx, "dflt").body
        t.check(body.startswith(b"Date: "), "stored message does not start with swaks' Date: %r",
                body[:80])
        for needle in (b"\r\nTo: dflt@example.org\r\n", b"\r\nFrom: d@sender.example\r\n",
                       b"\r\nSubject: swaks default\r\n", b"\r\n\r\nhello from swaks\r\n"):
            t.check(needle in body, "%r missing from the stored message %r", needle, body)
        t.check(b"\n" not in body.replace(b"\r\n", b""), "bare LF in the stored message")


def test_foreign_recipient_refused():
    with t.Receiver() as rx:
        out = swaks(rx, "--from", "f@sender.example", "--to", "x@other.example",
                    "--body", "nope", expect_rc=24)  # 24: RCPT TO failed
        t.check("550 5.7.1" in out, "swaks transcript lacks 550 5.7.1:\n%s" % out)
        t.check_eq(rx.mailboxes(), [], "mailboxes after a refused message")


if __name__ == "__main__":
    try:
        t.require_program(SWAKS)
    except t.Skip as e:
        t._skip(str(e))
    t.run([
        test_data_file_with_dot_lines,
        test_pipelined_two_recipients,
        test_default_message,
        test_foreign_recipient_refused,
    ])
