#!/usr/bin/python3
"""Postfix's smtp-source drives smtp-receive with 20 parallel sessions of
200 messages each (4000 in all), then an LMTP run. Every message must be
stored exactly once (4000 files, 4000 distinct Message-Ids) with the body
smtp-source sent, byte for byte."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as t  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"

# What smtp-source writes after DATA (Postfix 3.x): four headers, a blank
# line and four fixed body lines. Date and Message-Id vary per message.
HEADER_RE = re.compile(
    rb"\AFrom: <a@example\.com>\r\nTo: <b@example\.com>\r\nDate: [^\r\n]+\r\n"
    rb"Message-Id: <(?P<id>[^\r\n>]+)>\r\n\r\n")
BODY = b"".join(b"La de da de da %d.\r\n" % i for i in range(1, 5))


def run_source(rx, args, timeout=150):
    argv = [t.require_program(SMTP_SOURCE)] + args + ["127.0.0.1:%d" % rx.port]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    t.check(p.returncode == 0, "%s exited %d:\n%s", " ".join(argv), p.returncode, out[-3000:])


def check_all_stored(rx, local, count, helo, proto):
    files = rx.new_files(local)
    t.check_eq(len(files), count, "files in %s/new" % local)
    ids = set()
    for path in files:
        with open(path, "rb") as f:
            m = t.parse_stored(f.read(), path)
        t.check_eq(m.return_path, b"a@example.com", "Return-Path of %s" % path)
        t.check_eq(m.fields["helo"], helo, "Received from in %s" % path)
        t.check_eq(m.fields["proto"], proto, "Received with in %s" % path)
        h = HEADER_RE.match(m.body)
        t.check(h is not None, "%s: headers are not what smtp-source sent: %r", path, m.body[:300])
        t.check_eq(m.body[h.end():], BODY, "body of %s" % path)
        ids.add(h.group("id"))
    t.check_eq(len(ids), count, "distinct Message-Ids (each message exactly once)")
    t.check_eq(rx.tmp_files(), [], "files left in tmp/")


def test_20_sessions_of_200_messages():
    with t.Receiver(domains=["example.com"], extra=["--max-clients", "64"]) as rx:
        run_source(rx, ["-s", "20", "-m", "4000", "-d", "-M", "example.com",
                        "-f", "a@example.com", "-t", "b@example.com"])
        check_all_stored(rx, "b", 4000, b"example.com", b"SMTP")
        t.check_eq(rx.mailboxes(), ["b"], "mailboxes")


def test_lmtp_sessions():
    with t.Receiver(domains=["example.com"], lmtp=True) as rx:
        run_source(rx, ["-L", "-s", "5", "-m", "100", "-d", "-M", "example.com",
                        "-f", "a@example.com", "-t", "b@example.com"])
        check_all_stored(rx, "b", 100, b"example.com", b"LMTP")


if __name__ == "__main__":
    try:
        t.require_program(SMTP_SOURCE)
    except t.Skip as e:
        t._skip(str(e))
    t.run([test_20_sessions_of_200_messages, test_lmtp_sessions])
