#!/usr/bin/python3
"""Hostile clients against smtp-receive: SMTP smuggling with every bare
CR/LF/NUL end-of-data look-alike, overlong and NUL-laden command lines,
commands out of order, pipelined junk, the recipient limit, abrupt
disconnects, path-escaping local parts, 300 concurrent sessions, the size
limit, the error limit and the idle timeout. After each case a fresh
connection must still be served normally."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as t  # noqa: E402

DOM = "example.org"
HELO = "hostile.test.example"


def replies_until_quit(c, timeout=5.0):
    """Send QUIT and collect every reply up to its 221 (or the close)."""
    c.send(b"QUIT\r\n")
    c.sock.settimeout(timeout)
    out = []
    try:
        while True:
            r = c.read_reply()
            out.append(r)
            if r.code == 221:
                break
    except (ConnectionError, socket.timeout):
        pass
    return out


def codes(replies):
    return [(r.code, r.enhanced) for r in replies]


def nothing_stored(rx, what):
    t.check_eq(rx.all_new_files(), [], "stored messages after %s" % what)


def wait_no_tmp(rx, what, timeout=3.0):
    deadline = time.monotonic() + timeout
    while rx.tmp_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    t.check_eq(rx.tmp_files(), [], "files left in tmp/ after %s" % what)


# ---------------------------------------------------------------------------

SMUGGLE_VARIANTS = [
    b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\n", b"\r.\r\n", b"\r\n.\r",
    b"\r\n.\x00\r\n", b"\r\n\x00.\r\n",
]
SMUGGLED = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@" + DOM.encode() + b">\r\n"
            b"DATA\r\nFrom: <ceo@" + DOM.encode() + b">\r\nSubject: smuggled\r\n\r\nsmuggled\r\n")


def test_smuggling_variants(rx):
    problems = []
    for variant in SMUGGLE_VARIANTS:
        for split in (False, True):
            what = "smuggling %r%s" % (variant, " (split writes)" if split else "")
            c = rx.connect()
            c.ehlo(HELO)
            c.expect("MAIL FROM:<sender@client.test.example>", 250)
            c.expect("RCPT TO:<rcpt@%s>" % DOM, 250)
            c.expect("DATA", 354)
            head = b"Subject: outer\r\n\r\nhello"
            tail = SMUGGLED + b".\r\n"
            if split:
                for part in (head, variant, tail):
                    c.send(part)
                    time.sleep(0.02)
            else:
                c.send(head + variant + tail)
            got = codes(replies_until_quit(c))
            c.close()
            # Never a second message, whatever the policy.
            if rx.new_files("victim"):
                problems.append("%s: the smuggled message was delivered" % what)
            # The default policy refuses the message itself.
            if got[:1] != [(550, "5.6.0")] or len(got) != 2 or got[1][0] != 221:
                problems.append("%s: expected 550 5.6.0 then 221, got %r" % (what, got))
            if rx.all_new_files():
                problems.append("%s: stored %r" % (what, rx.all_new_files()))
            rx.clear()
    t.check(not problems, "\n".join(problems))
    served_normally(rx)


def test_overlong_command_lines(rx):
    c = rx.connect()
    c.ehlo(HELO)
    c.expect("NOOP " + "x" * 3000, 500, "5.5.2")
    c.expect("NOOP", 250)
    c.expect("MAIL FROM:<" + "a" * 5000 + "@client.test.example>", 500, "5.5.2")
    # A megabyte without a line end must be discarded, not buffered.
    c.send(b"NOOP " + b"y" * (1 << 20))
    c.expect("", 500, "5.5.2")
    c.expect("NOOP", 250)
    body = b"Subject: after long lines\r\n\r\nstill fine\r\n"
    c.send_message("long@client.test.example", ["long@" + DOM], body)
    c.expect("QUIT", 221)
    c.close()
    msgs = rx.messages("long")
    t.check_eq([m.body for m in msgs], [body], "message after overlong lines")
    rx.clear()
    served_normally(rx)


def test_nul_in_commands(rx):
    c = rx.connect()
    for line in (b"NO\x00OP", b"EHLO a\x00b.example", b"\x00"):
        r = c.cmd(line)
        t.check(r.code in (500, 501), "sent %r: expected 500/501, got %r", line, r)
    c.ehlo(HELO)
    r = c.cmd(b"MAIL FROM:<a\x00b@client.test.example>")
    t.check(r.code in (500, 501, 553), "MAIL with NUL: expected 500/501/553, got %r", r)
    c.expect("MAIL FROM:<nul@client.test.example>", 250)
    r = c.cmd(b"RCPT TO:<x\x00y@" + DOM.encode() + b">")
    t.check(r.code in (500, 501, 553), "RCPT with NUL: expected 500/501/553, got %r", r)
    c.expect("RSET", 250)
    c.expect("QUIT", 221)
    c.close()
    nothing_stored(rx, "NUL in commands")
    served_normally(rx)


def expect_no_rcpt_data(c):
    """DATA after MAIL with no accepted RCPT: RFC 5321 §3.3 allows 503
    (out of sequence) or 554 (no valid recipients)."""
    r = c.cmd("DATA")
    t.check(r.code in (503, 554) and r.enhanced in (None, "5.5.1", "5.5.0"),
            "DATA without a valid recipient: expected 503/554, got %r", r)


def test_commands_out_of_order(rx):
    # Two sessions, so the error limit never gets in the way.
    c = rx.connect()
    c.expect("MAIL FROM:<o@client.test.example>", 503)  # before EHLO
    c.expect("RCPT TO:<o@%s>" % DOM, 503)
    c.expect("DATA", 503)
    c.expect("QUIT", 221)
    c.close()
    c = rx.connect()
    c.ehlo(HELO)
    c.expect("RCPT TO:<o@%s>" % DOM, 503)             # before MAIL
    c.expect("DATA", 503)                             # before MAIL
    c.expect("MAIL FROM:<o@client.test.example>", 250)
    c.expect("MAIL FROM:<o2@client.test.example>", 503)  # nested MAIL
    expect_no_rcpt_data(c)                            # no recipient yet
    c.expect("RCPT TO:<o@other.example>", 550)
    expect_no_rcpt_data(c)                            # still no valid recipient
    c.expect("RSET", 250)
    c.expect("RCPT TO:<o@%s>" % DOM, 503)             # RSET forgot MAIL
    body = b"Subject: in order\r\n\r\nnow in order\r\n"
    c.send_message("o@client.test.example", ["order@" + DOM], body)
    c.expect("QUIT", 221)
    c.close()
    t.check_eq([m.body for m in rx.messages("order")], [body], "message after 503s")
    rx.clear()
    served_normally(rx)


def test_pipelined_junk_after_data(rx):
    # (a) Commands pipelined behind DATA, before its 354: they can only be
    # message text (or the server refuses the DATA); never commands.
    c = rx.connect()
    c.ehlo(HELO)
    c.send("MAIL FROM:<pj@client.test.example>\r\nRCPT TO:<pj@%s>\r\nDATA\r\n"
           "RSET\r\nMAIL FROM:<junk@attacker.example>\r\n" % DOM)
    first = [c.read_reply() for _ in range(3)]
    t.check_eq([r.code for r in first[:2]], [250, 250], "MAIL/RCPT replies")
    if first[2].code == 354:
        c.send(b".\r\n")
        rest = replies_until_quit(c)
        t.check_eq([r.code for r in rest], [250, 221], "replies after the dot")
        msgs = rx.messages("pj")
        t.check_eq([m.body for m in msgs],
                   [b"RSET\r\nMAIL FROM:<junk@attacker.example>\r\n"], "stored message")
    else:
        t.check(500 <= first[2].code < 600, "DATA with junk behind it: %r", first[2])
        replies_until_quit(c)
        nothing_stored(rx, "refused pipelined DATA")
    c.close()
    rx.clear()

    # (b) Junk right behind the final dot is the next command.
    c = rx.connect()
    c.ehlo(HELO)
    c.expect("MAIL FROM:<pj@client.test.example>", 250)
    c.expect("RCPT TO:<pj2@%s>" % DOM, 250)
    c.expect("DATA", 354)
    body = b"Subject: junk after\r\n\r\nbody\r\n"
    c.send(body + b".\r\nXJUNK whatever\r\nNOOP\r\n")
    got = [c.read_reply().code for _ in range(3)]
    t.check_eq(got, [250, 500, 250], "replies to message, junk, NOOP")
    c.expect("QUIT", 221)
    c.close()
    t.check_eq([m.body for m in rx.messages("pj2")], [body], "message before the junk")
    rx.clear()
    served_normally(rx)


def test_101_recipients(rx):
    c = rx.connect()
    c.ehlo(HELO)
    c.expect("MAIL FROM:<many@client.test.example>", 250)
    c.send("".join("RCPT TO:<r%d@%s>\r\n" % (i, DOM) for i in range(101)))
    replies = [c.read_reply() for _ in range(101)]
    t.check_eq([r.code for r in replies[:100]], [250] * 100, "first 100 RCPT replies")
    t.check_eq((replies[100].code, replies[100].enhanced), (452, "4.5.3"), "101st RCPT reply")
    c.expect("DATA", 354)
    body = b"Subject: many\r\n\r\nto a hundred\r\n"
    c.send(body + b".\r\n")
    t.check_eq(c.read_reply().code, 250, "end of data")
    c.expect("QUIT", 221)
    c.close()
    t.check_eq(len(rx.mailboxes()), 100, "mailboxes")
    for i in range(100):
        msgs = rx.messages("r%d" % i)
        t.check_eq([m.body for m in msgs], [body], "copy for r%d" % i)
    t.check_eq(rx.new_files("r100"), [], "copies for the refused 101st")
    rx.clear()
    served_normally(rx)


def test_disconnect_mid_data(rx):
    for rst in (False, True):
        what = "disconnect mid-DATA (%s)" % ("RST" if rst else "FIN")
        c = rx.connect()
        c.ehlo(HELO)
        c.expect("MAIL FROM:<gone@client.test.example>", 250)
        c.expect("RCPT TO:<gone@%s>" % DOM, 250)
        c.expect("RCPT TO:<gone2@%s>" % DOM, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: cut\r\n\r\n" + b"partial line\r\n" * 5000 + b"no end")
        time.sleep(0.2)
        c.reset_close() if rst else c.close()
        wait_no_tmp(rx, what)
        nothing_stored(rx, what)
    served_normally(rx)


ESCAPES_SYNTAX_OK = ["a/b", '"../../etc"', '"a/b"', '"..\\\\x"', '".hidden"', '"a\\\\b"']
ESCAPES_SYNTAX_BAD = ["../x", ".hidden", "..", "x/../../y", "a..b"]


def test_path_escaping_local_parts(rx):
    # One session per address, so the error limit never gets in the way.
    for local in ESCAPES_SYNTAX_OK + ESCAPES_SYNTAX_BAD:
        c = rx.connect()
        c.ehlo(HELO)
        c.expect("MAIL FROM:<esc@client.test.example>", 250)
        r = c.cmd("RCPT TO:<%s@%s>" % (local, DOM))
        if local in ESCAPES_SYNTAX_OK:
            ok = (r.code, r.enhanced) == (550, "5.1.3")
        else:  # not even RFC 5321 syntax: a syntax reply is fine too
            ok = r.code in (501, 550, 553) and (r.enhanced or "").startswith("5.1.")
        t.check(ok, "RCPT TO:<%s@%s>: expected %s, got %r", local, DOM,
                "550 5.1.3" if local in ESCAPES_SYNTAX_OK else "501/550/553 5.1.x", r)
        expect_no_rcpt_data(c)  # it was not accepted
        c.expect("RCPT TO:<esc@%s>" % DOM, 250)
        body = b"Subject: escape\r\n\r\nonly for esc, not " + local.encode() + b"\r\n"
        c.expect("DATA", 354)
        c.send(body + b".\r\n")
        t.check_eq(c.read_reply().code, 250, "end of data")
        c.expect("QUIT", 221)
        c.close()
        t.check_eq(rx.mailboxes(), ["esc"], "mailboxes under the root after %r" % local)
        t.check_eq(sorted(os.listdir(rx.root)), ["maildir", "smtp-receive.log"],
                   "entries beside the Maildir root after %r" % local)
        t.check_eq([m.body for m in rx.messages("esc")], [body], "copy for esc")
        rx.clear()
    served_normally(rx)


def test_too_many_errors(rx):
    c = rx.connect()
    c.ehlo(HELO)
    seen = []
    for _ in range(100):
        r = c.cmd("BOGUS%d" % len(seen))
        seen.append(r.code)
        if r.code == 421:
            break
    t.check(seen[-1] == 421, "no 421 after %d bad commands: %r", len(seen), seen[-5:])
    t.check(all(code == 500 for code in seen[:-1]), "replies before the 421: %r", seen)
    t.check(c.at_eof(), "connection still open after 421")
    c.close()
    served_normally(rx)


# ---------------------------------------------------------------------------
# Cases with their own receiver configuration
# ---------------------------------------------------------------------------

def served_normally(rx):
    t.served_normally(rx)
    rx.clear()


def test_concurrent_300():
    n = 300
    with t.Receiver(extra=["--max-clients", "400"]) as rx:
        barrier = threading.Barrier(n, timeout=60)
        errors = []

        def client(i):
            try:
                c = rx.connect(timeout=60)
                barrier.wait()
                c.ehlo("c%d.test.example" % i)
                body = b"Subject: concurrent %d\r\n\r\nmessage number %d\r\n" % (i, i)
                c.send_message("c%d@client.test.example" % i, ["conc@" + DOM], body)
                c.expect("QUIT", 221)
                c.close()
            except Exception as e:  # noqa: BLE001 - collected and reported
                errors.append("client %d: %r" % (i, e))
                try:
                    barrier.abort()
                except Exception:  # noqa: BLE001
                    pass

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        t.check(not errors, "%d clients failed, e.g. %s", len(errors), errors[:3])
        msgs = rx.messages("conc")
        t.check_eq(len(msgs), n, "messages stored")
        want = sorted(b"Subject: concurrent %d\r\n\r\nmessage number %d\r\n" % (i, i)
                      for i in range(n))
        t.check_eq(sorted(m.body for m in msgs), want, "stored bodies")
        t.check_eq(len(set(m.return_path for m in msgs)), n, "distinct senders")
        served_normally(rx)


def test_max_size():
    with t.Receiver(extra=["--max-size", "10000"]) as rx:
        c = rx.connect()
        r = c.ehlo(HELO)
        sizes = [l for l in r.lines if l.upper().startswith(b"SIZE")]
        t.check_eq(sizes, [b"SIZE 10000"], "SIZE in the EHLO reply")
        c.expect("MAIL FROM:<big@client.test.example> SIZE=20000", 552, "5.3.4")
        c.expect("MAIL FROM:<big@client.test.example>", 250)
        c.expect("RCPT TO:<big@%s>" % DOM, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: too big\r\n\r\n" + b"0123456789012345678901234567890123456789\r\n" * 500
               + b".\r\n")
        r = c.read_reply()
        t.check((r.code, r.enhanced) == (552, "5.3.4"), "oversized DATA: got %r", r)
        nothing_stored(rx, "an oversized message")
        # The session goes on, and a message under the limit is stored.
        body = b"Subject: small\r\n\r\n" + b"x" * 8000 + b"\r\n"
        c.send_message("big@client.test.example", ["big@" + DOM], body)
        c.expect("QUIT", 221)
        c.close()
        t.check_eq([m.body for m in rx.messages("big")], [body], "message under the limit")
        wait_no_tmp(rx, "an oversized message")
        rx.clear()
        served_normally(rx)


def test_idle_timeout():
    with t.Receiver(extra=["--timeout", "2"]) as rx:
        c = rx.connect()
        c.ehlo(HELO)
        c.expect("MAIL FROM:<slow@client.test.example>", 250)
        c.expect("RCPT TO:<slow@%s>" % DOM, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: slow\r\n\r\nhalf a message\r\n")
        start = time.monotonic()
        c.sock.settimeout(10)
        try:
            r = c.read_reply()
            t.check_eq(r.code, 421, "reply when the client stalls in DATA")
        except ConnectionError:
            pass  # closing without a 421 is allowed after a timeout
        waited = time.monotonic() - start
        t.check(1.5 <= waited <= 8, "timed out after %.1fs with --timeout 2", waited)
        t.check(c.at_eof(), "connection still open after the timeout")
        c.close()
        wait_no_tmp(rx, "a timeout in DATA")
        nothing_stored(rx, "a timeout in DATA")
        served_normally(rx)


def default_limit_cases():
    """The cases run with the default limits, each on a fresh receiver."""
    cases = [test_smuggling_variants, test_overlong_command_lines, test_nul_in_commands,
             test_commands_out_of_order, test_pipelined_junk_after_data, test_101_recipients,
             test_disconnect_mid_data, test_path_escaping_local_parts, test_too_many_errors]
    wrapped = []
    for case in cases:
        def run_case(case=case):
            with t.Receiver() as rx:
                case(rx)
        run_case.__name__ = case.__name__
        wrapped.append(run_case)
    return wrapped


if __name__ == "__main__":
    t.run(default_limit_cases() + [test_concurrent_300, test_max_size, test_idle_timeout])
