#!/usr/bin/python3
"""The pregreet test (smtp-receive --greet-delay): a client that talks
before the 220 gets 554 5.5.0 and is disconnected, nothing it sent is
executed; a client that waits for the greeting is served normally."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as t  # noqa: E402

DOM = "example.org"
DELAY_MS = 400


def test_early_talker_refused():
    with t.Receiver(extra=["--greet-delay", str(DELAY_MS)]) as rx:
        c = rx.connect(greet=False)
        # Straight after connect, well inside the delay: a whole transaction.
        c.send(b"EHLO spam.example\r\nMAIL FROM:<s@spam.example>\r\n"
               b"RCPT TO:<victim@example.org>\r\nDATA\r\nspam\r\n.\r\n")
        r = c.read_reply()
        t.check_eq(r.code, 554, "reply to an early talker")
        t.check(r.enhanced == "5.5.0", "enhanced code %r", r.enhanced)
        # Nothing else comes: no 220, no replies to the commands; then EOF.
        try:
            extra = c.sock.recv(4096)
        except socket.timeout:
            extra = b"<timeout>"
        t.check_eq(extra, b"", "bytes after the 554 (the connection must close)")
        c.close()
        time.sleep(0.2)
        t.check_eq(rx.mailboxes(), [], "mailboxes after an early talker")


def test_patient_client_served():
    with t.Receiver(extra=["--greet-delay", str(DELAY_MS)]) as rx:
        start = time.monotonic()
        c = rx.connect(greet=True)
        waited = time.monotonic() - start
        # Not a timing threshold on the code under test: the greeting must
        # simply not come before the configured delay has passed.
        t.check(waited >= DELAY_MS / 1000.0 * 0.9, "greeting after %.3fs, before the delay", waited)
        for line, code in ((b"EHLO ok.example\r\n", 250), (b"MAIL FROM:<a@ok.example>\r\n", 250),
                           (b"RCPT TO:<bob@example.org>\r\n", 250), (b"DATA\r\n", 354),
                           (b"Subject: hi\r\n\r\npatient\r\n.\r\n", 250), (b"QUIT\r\n", 221)):
            c.send(line)
            t.check_eq(c.read_reply().code, code, "reply to %r" % line)
        c.close()
        msgs = rx.wait_files("bob", 1)
        t.check_eq(len(msgs), 1, "messages delivered to bob")


if __name__ == "__main__":
    t.run([test_early_talker_refused, test_patient_client_served])
