"""Shared helpers for the smtp-receive integration tests.

Starts BUILD/bin/smtp-receive on a loopback port, talks to it over raw
sockets, reads what it stored in a temporary Maildir tree and stops it with
SIGTERM. Standard library only. A test file lists its test functions and
calls run(); a missing peer program exits 77 (skipped), or fails when the
environment says CI=true.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77

BUILD_DIR = os.environ.get("LSMTP_BUILD_DIR", "")
SOURCE_DIR = os.environ.get(
    "LSMTP_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class Skip(Exception):
    """A peer program is missing: skip the whole file (exit 77)."""


def in_ci():
    return os.environ.get("CI", "").lower() == "true"


def require_program(path):
    """Return path if it is an executable; otherwise skip (or fail in CI)."""
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    found = shutil.which(os.path.basename(path)) if not os.path.isabs(path) else None
    if found:
        return found
    raise Skip("missing program: %s" % path)


def receiver_binary():
    candidates = []
    if BUILD_DIR:
        candidates.append(os.path.join(BUILD_DIR, "bin", "smtp-receive"))
    candidates.append(os.environ.get("LSMTP_SMTP_RECEIVE", ""))
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise Skip("smtp-receive not built (LSMTP_BUILD_DIR=%r)" % BUILD_DIR)


class TestFailure(AssertionError):
    pass


def check(cond, msg, *args):
    """Assert with a message that says what was expected and what came."""
    if not cond:
        raise TestFailure(msg % args if args else msg)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: expected %r, got %r" % (what, want, got))


# ---------------------------------------------------------------------------
# Ports and the receiver process
# ---------------------------------------------------------------------------

def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (the receiver retries on a clash)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def make_temp_root(prefix="lsmtp-it-"):
    return tempfile.mkdtemp(prefix=prefix)


class Receiver:
    """One smtp-receive process. Use as a context manager:

        with Receiver(domains=["example.org"]) as rx:
            c = rx.connect()
    """

    def __init__(self, domains=("example.org",), host="127.0.0.1", sink=False, lmtp=False,
                 hostname="mx.test.example", extra=(), root=None):
        self.binary = receiver_binary()
        self.host = host
        self.domains = list(domains)
        self.root = root or make_temp_root()
        self.own_root = root is None
        # The Maildir tree lives one level down so a test can see that nothing
        # was written beside it.
        self.maildir = os.path.join(self.root, "maildir")
        os.makedirs(self.maildir, exist_ok=True)
        self.sink = sink
        self.lmtp = lmtp
        self.hostname = hostname
        self.extra = list(extra)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.root, "smtp-receive.log")
        self.log = None
        self.returncode = None

    def argv(self, port):
        hostpart = "[%s]" % self.host if ":" in self.host else self.host
        argv = [self.binary, "--listen", "%s:%d" % (hostpart, port)]
        for d in self.domains:
            argv += ["--domain", d]
        argv += ["--sink"] if self.sink else ["--maildir", self.maildir]
        if self.hostname:
            argv += ["--hostname", self.hostname]
        if self.lmtp:
            argv.append("--lmtp")
        argv += self.extra
        return argv

    def start(self, timeout=10.0):
        last = None
        for _attempt in range(3):
            port = free_port(self.host)
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self.argv(port), stdin=subprocess.DEVNULL,
                                         stdout=self.log, stderr=subprocess.STDOUT)
            self.port = port
            try:
                self._wait_ready(timeout)
                return self
            except TestFailure as e:
                last = e
                self._kill()
        raise last

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("smtp-receive exited with %d at start; log:\n%s"
                                  % (self.proc.returncode, self.read_log()))
            try:
                c = SmtpClient(self.host, self.port, timeout=2.0)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                code, _ = c.greeting()
                check_eq(code, 220, "greeting code")
                c.close()
                return
            except (OSError, TestFailure):
                c.close()
                time.sleep(0.05)
        raise TestFailure("smtp-receive did not greet on %s:%d within %.0fs; log:\n%s"
                          % (self.host, self.port, timeout, self.read_log()))

    def connect(self, timeout=10.0, greet=True):
        c = SmtpClient(self.host, self.port, timeout=timeout)
        if greet:
            code, text = c.greeting()
            check_eq(code, 220, "greeting (%s)" % text)
        return c

    def stop(self, timeout=10.0):
        """SIGTERM by PID; returns the exit status (fails on a hang)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise TestFailure("smtp-receive did not exit within %.0fs of SIGTERM" % timeout)
        finally:
            self.proc = None
            if self.log:
                self.log.close()
                self.log = None
        return self.returncode

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc is not None:
                rc = self.stop()
                if exc_type is None:
                    check_eq(rc, 0, "smtp-receive exit status after SIGTERM")
        finally:
            self._kill()
            if self.own_root and exc_type is None:
                shutil.rmtree(self.root, ignore_errors=True)
            elif exc_type is not None:
                sys.stderr.write("(kept %s for inspection; log tail:)\n%s\n"
                                 % (self.root, self.read_log()))
        return False

    # ---- what was stored ----

    def mailboxes(self):
        try:
            return sorted(os.listdir(self.maildir))
        except FileNotFoundError:
            return []

    def new_files(self, local):
        d = os.path.join(self.maildir, local, "new")
        try:
            return sorted(os.path.join(d, n) for n in os.listdir(d))
        except FileNotFoundError:
            return []

    def tmp_files(self, local=None):
        out = []
        for box in ([local] if local else self.mailboxes()):
            d = os.path.join(self.maildir, box, "tmp")
            try:
                out += [os.path.join(d, n) for n in os.listdir(d)]
            except (FileNotFoundError, NotADirectoryError):
                pass
        return out

    def all_new_files(self):
        out = []
        for box in self.mailboxes():
            out += self.new_files(box)
        return out

    def messages(self, local):
        """Each stored copy for local, parsed (see parse_stored)."""
        out = []
        for p in self.new_files(local):
            with open(p, "rb") as f:
                out.append(parse_stored(f.read(), p))
        return out

    def wait_files(self, local, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.new_files(local)) >= count:
                break
            time.sleep(0.05)
        return self.new_files(local)

    def clear(self):
        """Forget all stored mail (between cases on a shared receiver)."""
        for box in self.mailboxes():
            shutil.rmtree(os.path.join(self.maildir, box), ignore_errors=True)


# ---------------------------------------------------------------------------
# Stored messages
# ---------------------------------------------------------------------------

RETURN_PATH_RE = re.compile(rb"\AReturn-Path: <([^\r\n>]*)>\r\n")
DATE_RE = rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}"
RECEIVED_RE = re.compile(
    rb"\AReceived: from (?P<helo>\S+) (\((?P<tcpinfo>[^()]*)\) )?(\(using [^()]*\) )?"
    rb"by (?P<by>\S+) \(lsmtp\) with (?P<proto>[A-Z0-9]+)( id (?P<id>\S+))?"
    rb"( for <(?P<rcpt>[^\r\n>]*)>)?; (?P<date>" + DATE_RE + rb")\Z")


class Stored:
    def __init__(self, path, return_path, received, unfolded, fields, body):
        self.path = path
        self.return_path = return_path  # bytes, without brackets
        self.received = received        # the raw field, folded, with CRLF
        self.received_unfolded = unfolded
        self.fields = fields            # dict of the Received clauses
        self.body = body                # the message as the client sent it


def parse_stored(data, path="?"):
    """Split a stored file into Return-Path, Received and the message, and
    check that both trace fields are well formed (lines <= 998, folded lines
    start with a TAB or space, nothing but CRLF line ends)."""
    m = RETURN_PATH_RE.match(data)
    check(m is not None, "%s: no Return-Path first: %r", path, data[:200])
    rest = data[m.end():]
    check(rest.startswith(b"Received: "), "%s: no Received second: %r", path, rest[:200])
    end = 0
    while True:
        nl = rest.find(b"\r\n", end)
        check(nl >= 0, "%s: Received field not terminated", path)
        line = rest[end:nl]
        check(b"\n" not in line and b"\r" not in line, "%s: bare CR/LF in Received: %r", path, line)
        check(len(line) <= 998, "%s: Received line longer than 998", path)
        end = nl + 2
        if rest[end:end + 1] not in (b"\t", b" "):
            break
    received = rest[:end]
    # lsmtp folds with "\r\n\t" where a space was; unfold back to one space.
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", received[:-2])
    fm = RECEIVED_RE.match(unfolded)
    check(fm is not None, "%s: Received field does not parse: %r", path, received)
    return Stored(path, m.group(1), received, unfolded, fm.groupdict(), rest[end:])


# ---------------------------------------------------------------------------
# A raw SMTP client: byte-exact, no helpful normalisation
# ---------------------------------------------------------------------------

class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # text after "NNN-"/"NNN ", as bytes

    @property
    def text(self):
        return b"\n".join(self.lines).decode("utf-8", "replace")

    @property
    def enhanced(self):
        m = re.match(rb"([245]\.\d{1,3}\.\d{1,3})( |$)", self.lines[0]) if self.lines else None
        return m.group(1).decode() if m else None

    def __repr__(self):
        return "Reply(%d %r)" % (self.code, self.text)


class SmtpClient:
    def __init__(self, host, port, timeout=10.0, source=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.closed_by_peer = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset_close(self):
        """Abort the connection with a TCP RST."""
        import struct
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed_by_peer = True
            raise ConnectionError("connection closed by smtp-receive")
        self.buf += chunk

    def read_line(self):
        while b"\r\n" not in self.buf:
            check(len(self.buf) < 100000, "reply line too long")
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self):
        lines = []
        while True:
            line = self.read_line()
            m = re.match(rb"(\d{3})([ -])(.*)\Z", line, re.S)
            if m is None and re.match(rb"\d{3}\Z", line):
                m = re.match(rb"(\d{3})()(.*)\Z", line)
            check(m is not None, "malformed reply line %r", line)
            lines.append(m.group(3))
            if m.group(2) != b"-":
                return Reply(int(m.group(1)), lines)

    def greeting(self):
        r = self.read_reply()
        return r.code, r.text

    def cmd(self, line):
        """Send one command (CRLF added) and return its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_reply()

    def expect(self, line, code, enhanced=None):
        r = self.cmd(line)
        check(r.code == code and (enhanced is None or r.enhanced == enhanced),
              "sent %r: expected %d%s, got %r", line, code,
              " " + enhanced if enhanced else "", r)
        return r

    def ehlo(self, name="client.test.example"):
        return self.expect("EHLO " + name, 250)

    def at_eof(self, timeout=3.0):
        """True when the server closes the connection (no more bytes)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def send_message(self, sender, rcpts, data, expect_final=250):
        """MAIL, RCPT..., DATA, the dot-stuffed data and "."; data must be
        already stuffed and end in CRLF. Returns the final reply."""
        self.expect("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250)
        self.expect("DATA", 354)
        self.send(data + b".\r\n")
        r = self.read_reply()
        if expect_final is not None:
            check(r.code == expect_final, "end of data: expected %d, got %r", expect_final, r)
        return r


def dot_stuff(body):
    """What a client puts on the wire for body (which ends with CRLF)."""
    out = re.sub(rb"(?m)^\.", b"..", body)
    return out


def served_normally(rx, local="served", domain=None):
    """A fresh connection delivers one message: the receiver survived."""
    domain = domain or rx.domains[0]
    before = len(rx.new_files(local))
    c = rx.connect()
    try:
        c.ehlo()
        body = b"Subject: still alive\r\n\r\nok\r\n"
        c.send_message("check@client.test.example", ["%s@%s" % (local, domain)], body)
        c.expect("QUIT", 221)
    finally:
        c.close()
    files = rx.wait_files(local, before + 1)
    check_eq(len(files), before + 1, "messages for %s after a normal session" % local)


# ---------------------------------------------------------------------------
# Running the tests of one file
# ---------------------------------------------------------------------------

def run(tests):
    """Run the test functions in order; exit 0, 1 (a failure) or 77."""
    failed = 0
    started = time.monotonic()
    try:
        receiver_binary()
    except Skip as e:
        return _skip(str(e))
    for fn in tests:
        t0 = time.monotonic()
        try:
            fn()
            print("ok   %-45s %.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
        except Skip as e:
            return _skip(str(e))
        except Exception:  # noqa: BLE001 - report every kind of failure
            failed += 1
            print("FAIL %-45s %.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
    print("%d of %d failed (%.1fs)" % (failed, len(tests), time.monotonic() - started))
    sys.exit(1 if failed else 0)


def _skip(reason):
    if in_ci():
        print("FAIL (CI=true, so a missing peer is an error): " + reason)
        sys.exit(1)
    print("SKIP: " + reason)
    sys.exit(SKIP)
