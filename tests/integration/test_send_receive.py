"""smtp-send into lsmtp's own smtp-receive (one role against the other):
the message lands byte-exact in DIR/<local>/new/ behind the receiver's
Return-Path and Received fields, once per recipient; -t and Bcc removal
end to end; a refused recipient is reported while the others get it."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as T  # noqa: E402


def send_binary():
    path = os.path.join(T.BUILD_DIR, "bin", "smtp-send") if T.BUILD_DIR else ""
    if path and os.access(path, os.X_OK):
        return path
    raise T.Skip("smtp-send not built (LSMTP_BUILD_DIR=%r)" % T.BUILD_DIR)


def smtp_send(args, data, timeout=30):
    p = subprocess.run([send_binary()] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace")


EXACT = (b"Date: Tue, 02 Jan 2024 10:00:00 +0100\r\n"
         b"Message-ID: <exact-1@client.example>\r\n"
         b"From: a@client.example\r\n"
         b"To: alice@example.org\r\n"
         b"Subject: byte exact\r\n"
         b"\r\n"
         b".starts with a dot\r\n"
         b".\r\n"
         b"\xc3\xa9 8-bit line\r\n"
         b"end\r\n")


def test_lands_byte_exact():
    with T.Receiver(domains=["example.org"]) as rx:
        rc, err = smtp_send(["--server", "127.0.0.1:%d" % rx.port, "--from", "a@client.example",
                             "--to", "alice@example.org", "--helo", "client.example", "-v"],
                            EXACT)
        T.check(rc == 0, "exit %d: %s", rc, err)
        # -v summarises the message (DATA or BDAT, whichever was offered).
        T.check(re.search(r"-> <(message|last chunk): \d+ bytes>", err) is not None,
                "no message summary in -v output: %s", err)
        T.check("starts with a dot" not in err, "message text in -v output: %s", err)
        files = rx.wait_files("alice", 1)
        T.check_eq(len(files), 1, "stored copies")
        stored = rx.messages("alice")[0]
        T.check_eq(stored.body, EXACT, "stored message")
        T.check_eq(stored.return_path, b"a@client.example", "Return-Path")
        T.check_eq(stored.fields["helo"], b"client.example", "HELO in Received")


def test_t_two_mailboxes_bcc_gone_and_refusal():
    msg = (b"From: a@client.example\n"
           b"To: Alice <alice@example.org>, nobody@elsewhere.example\n"
           b"Bcc: bob@example.org\n"
           b"Subject: lf input\n"
           b"\n"
           b"body\n")
    with T.Receiver(domains=["example.org"]) as rx:
        rc, err = smtp_send(["--server", "127.0.0.1:%d" % rx.port, "--from", "a@client.example",
                             "-t"], msg)
        T.check(rc == 0, "exit %d: %s", rc, err)
        T.check("nobody@elsewhere.example: refused" in err, "refusal not reported: %s", err)
        for box in ("alice", "bob"):
            T.check_eq(len(rx.wait_files(box, 1)), 1, "copies for %s" % box)
        body = rx.messages("bob")[0].body
        head, _, rest = body.partition(b"\r\n\r\n")
        T.check(b"Bcc" not in head and b"bob@" not in head, "Bcc still there: %r", head)
        T.check(b"\nDate: " in head and b"\r\nMessage-ID: <" in head, "Date/Message-ID: %r", head)
        T.check_eq(rest, b"body\r\n", "body")
        T.check_eq(rx.messages("alice")[0].body, body, "both copies equal")
        # Every recipient refused: permanent, exit 69.
        rc, err = smtp_send(["--server", "127.0.0.1:%d" % rx.port, "--from", "a@client.example",
                             "--to", "x@elsewhere.example"], b"Subject: no\r\n\r\nx\r\n")
        T.check(rc == 69, "exit %d (want 69): %s", rc, err)


if __name__ == "__main__":
    try:
        send_binary()
    except T.Skip as e:
        T._skip(str(e))
    T.run([test_lands_byte_exact, test_t_two_mailboxes_bcc_gone_and_refusal])
