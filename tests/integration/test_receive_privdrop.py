#!/usr/bin/python3
"""smtp-receive --user: binds as root, then runs as the named user; the
messages it stores belong to that user. Needs root (CI runs as root);
elsewhere the test is skipped (exit 77)."""

import os
import pwd
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsmtp_testlib as t  # noqa: E402

USER = "nobody"


def proc_uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def test_runs_as_user_and_stores_as_user():
    pw = pwd.getpwnam(USER)
    root = t.make_temp_root()
    os.chmod(root, 0o755)
    maildir = os.path.join(root, "maildir")
    os.makedirs(maildir)
    os.chown(maildir, pw.pw_uid, pw.pw_gid)
    with t.Receiver(root=root, extra=["--user", USER]) as rx:
        t.check_eq(proc_uids(rx.proc.pid), [pw.pw_uid] * 4,
                   "real, effective, saved and filesystem uid of smtp-receive")
        s = smtplib.SMTP(rx.host, rx.port, local_hostname="priv.example", timeout=10)
        s.sendmail("a@priv.example", ["dropped@example.org"], b"Subject: uid\r\n\r\nstored\r\n")
        s.quit()
        files = rx.wait_files("dropped", 1)
        t.check_eq(len(files), 1, "stored messages")
        st = os.stat(files[0])
        t.check_eq(st.st_uid, pw.pw_uid, "owner of the stored message")


def test_unknown_user_is_a_usage_error():
    import subprocess
    p = subprocess.run([t.receiver_binary(), "--listen", "127.0.0.1:%d" % t.free_port(),
                        "--domain", "example.org", "--sink", "--user", "no-such-user-xq"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    t.check_eq(p.returncode, 67, "exit status for an unknown --user (EX_NOUSER)")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("skipped: --user needs root")
        sys.exit(77)
    t.run([test_runs_as_user_and_stores_as_user, test_unknown_user_is_a_usage_error])
