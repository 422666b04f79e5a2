"""smtp-send against Postfix's smtp-sink (its own counters must show every
message and session) and against a raw server that records where each
read() ended, to check that MAIL, the RCPTs and DATA leave as one
pipelined group (RFC 2920), in one write with TCP_NODELAY, rather than
line by line (the 40 ms-per-message Nagle stall msmtp has)."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as T  # noqa: E402

SINK = "/usr/sbin/smtp-sink"


def send_binary():
    path = os.path.join(T.BUILD_DIR, "bin", "smtp-send") if T.BUILD_DIR else ""
    if path and os.access(path, os.X_OK):
        return path
    raise T.Skip("smtp-send not built (LSMTP_BUILD_DIR=%r)" % T.BUILD_DIR)


def smtp_send(args, data, timeout=30):
    p = subprocess.run([send_binary()] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace")


class Sink:
    """smtp-sink -c on a loopback port; counters read from its stdout."""

    COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")

    def __enter__(self):
        T.require_program(SINK)
        self.out = tempfile.NamedTemporaryFile(prefix="smtp-sink-", delete=False)
        self.port = T.free_port()
        argv = [SINK]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        argv += ["-c", "127.0.0.1:%d" % self.port, "100"]
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            T.check(self.proc.poll() is None, "smtp-sink exited at start")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                T.check(time.monotonic() < deadline, "smtp-sink did not listen")
                time.sleep(0.05)
        # The probe above was one session: count from here.
        self.base = self.wait_counters(lambda c: c[0] >= 1, 2.0)
        return self

    def counters(self):
        with open(self.out.name, "rb") as f:
            found = self.COUNTERS.findall(f.read())
        return tuple(int(x) for x in found[-1]) if found else (0, 0, 0)

    def wait_counters(self, pred, timeout):
        deadline = time.monotonic() + timeout
        c = self.counters()
        while not pred(c) and time.monotonic() < deadline:
            time.sleep(0.02)
            c = self.counters()
        return c

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        os.unlink(self.out.name)
        return False


MSG = b"From: a@example.org\nSubject: sink\n\n" + b"x" * 70 + b"\n.\n..\nend\n"


def test_sink_counts_every_message():
    with Sink() as sink:
        n = 5
        for i in range(n):
            rc, err = smtp_send(["--server", "127.0.0.1:%d" % sink.port, "--from", "a@example.org",
                                 "--to", "b%d@example.net" % i, "--to", "c@example.net"], MSG)
            T.check(rc == 0, "run %d: exit %d: %s", i, rc, err)
        b = sink.base
        c = sink.wait_counters(lambda c: c[2] - b[2] >= n and c[1] - b[1] >= n, 5.0)
        T.check_eq((c[0] - b[0], c[1] - b[1], c[2] - b[2]), (n, n, n),
                   "smtp-sink sessions/quits/messages")


class RecordingServer(threading.Thread):
    """A raw SMTP server offering PIPELINING that keeps every recv() chunk."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.chunks = []
        self.error = None

    def run(self):
        try:
            self._serve()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.sock.close()

    def _serve(self):
        c, _ = self.sock.accept()
        c.settimeout(10)
        c.sendall(b"220 rec ESMTP\r\n")
        buf = b""
        in_data = False
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            self.chunks.append(chunk)
            buf += chunk
            while True:
                if in_data:
                    end = buf.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    buf = buf[end + 5:]
                    in_data = False
                    c.sendall(b"250 2.0.0 ok\r\n")
                    continue
                if b"\r\n" not in buf:
                    break
                line, buf = buf.split(b"\r\n", 1)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    c.sendall(b"250-rec\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    in_data = True
                    buf = b"\r\n" + buf  # the body may start with "."
                    c.sendall(b"354 go\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    c.close()
                    return
                else:
                    c.sendall(b"250 ok\r\n")


def test_pipelined_group_is_one_write():
    srv = RecordingServer()
    srv.start()
    rc, err = smtp_send(["--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.org",
                         "--to", "r1@example.net", "--to", "r2@example.net",
                         "--to", "r3@example.net", "--helo", "c.example"], MSG)
    srv.join(15)
    T.check(srv.error is None, "server failed: %r", srv.error)
    T.check(rc == 0, "exit %d: %s", rc, err)
    group = (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@example.net>\r\n"
             b"RCPT TO:<r2@example.net>\r\nRCPT TO:<r3@example.net>\r\nDATA\r\n")
    T.check(group in srv.chunks, "the MAIL/RCPT/DATA group was split across reads: %r",
            srv.chunks)
    T.check_eq(srv.chunks[0], b"EHLO c.example\r\n", "first read")
    T.check_eq(srv.chunks[-1], b"QUIT\r\n", "last read")


if __name__ == "__main__":
    try:
        send_binary()
    except T.Skip as e:
        T._skip(str(e))
    T.run([test_sink_counts_every_message, test_pipelined_group_is_one_write])
