"""Privilege separation (issue 7): smtpcertd started as root with `user = nobody`.

The processes and their identities in /proc: the network process runs as
nobody under a seccomp filter (Seccomp: 2, NoNewPrivs: 1), the writer and the
reload helper stay root, filtered too. What nobody can do to the files (tried with runuser): nothing to the
queue, the audit log or the LMDB data file; it may create files in state_dir
(the mail spool) and write its own notices. CERC over STARTTLS + AUTH is queued
by the writer (the entry is root's, `smtpcert admin pending` lists it) and
`submissions = auto` stores through it; after the writer is killed CERC
answers 451 4.3.0, the log says so (at once and at the next CERC), and CERT
still works. Under the filter:
CERT, mail delivery into a Maildir and SIGHUP still work; `smtpcertd
--check-seccomp` shows execve refused; `seccomp = no` leaves no filter.
packaging/smtpcertd.service passes `systemd-analyze verify` and its ExecStart
options are accepted by the binary.
Needs root (the suite runs as root in CI); the `nobody` account must exist.
"""
import os
import pwd
import re
import shutil
import signal
import smtplib
import stat
import subprocess
import time
import unittest

import sctest
from sctest import Daemon, pki

# under valgrind (which cannot run seccomp filters) sctest sets seccomp = no
FILTERED = "0" if sctest.VALGRIND else "2"
USERS = {"alice@example.test": "alice-secret", "bob@example.test": "bob-secret"}
ID_RE = r"250 2\.0\.0 ([0-9a-f]{32}) (queued|accepted)"


def status_of(pid):
    """/proc/PID/status as a dict of its fields."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def children_of(pid):
    """{pid: comm} of the processes whose parent is @pid."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        # comm may hold spaces: the fields after the last ')'
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out[int(name)] = comm
    return out


class PrivsepDaemon(Daemon):
    """Root-started daemon with user = nobody, AUTH, Maildir delivery, CERC."""

    def __init__(self, submissions="review", extra=None):
        overrides = {"submissions": submissions, "user": "nobody"}
        overrides.update(extra or {})
        super().__init__(overrides=overrides, certs=("bob",), start=False)
        try:
            os.chmod(self.tmp, 0o755)  # config, passwd, repository reachable by nobody
            self.passwd = os.path.join(self.tmp, "passwd")
            sctest.write_passwd(self.passwd, USERS)
            os.chmod(self.passwd, 0o644)
            self.mail = os.path.join(self.tmp, "mail")
            os.makedirs(self.mail)
            nobody = pwd.getpwnam("nobody")
            os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
            self.overrides.setdefault("auth", "passwd:" + self.passwd)
            self.overrides.setdefault("delivery", "maildir:" + self.mail + "/%d/%n")
            self.write_config()
            self.start()
        except BaseException:
            self.cleanup()
            raise

    def session(self, user):
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=40)
        s.ehlo("client.test")
        s.starttls(context=sctest.tls_context_unchecked())
        s.ehlo("client.test")
        s.login(user, USERS[user])
        return s

    def writer(self):
        kids = children_of(self.pid)
        pids = [p for p, comm in kids.items() if comm == "smtpcertd-write"]
        if len(pids) != 1:
            raise AssertionError("expected one writer process, children: %r" % kids)
        return pids[0]

    def pending(self):
        r = self.admin("pending")
        if r.returncode != 0:
            raise AssertionError("admin pending failed (%d): %s%s"
                                 % (r.returncode, r.stdout, r.stderr))
        return r.stdout


def submit(s, addr, pem):
    code, msg = s.docmd("CERC", addr)
    if code != 250:
        return "%d %s" % (code, msg.decode())
    code, msg = s.data(pem)
    return "%d %s" % (code, msg.decode())


def as_nobody(*cmd):
    """Run @cmd as nobody; its exit status."""
    return subprocess.run(["runuser", "-u", "nobody", "--"] + list(cmd),
                          capture_output=True, timeout=30).returncode


class PrivsepTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("test_privsep needs root (the suite runs as root)")
        try:
            cls.nobody = pwd.getpwnam("nobody")
        except KeyError:
            raise AssertionError("test_privsep needs the account 'nobody'")
        cls.pki = pki()

    def test_processes_files_and_review_queue(self):
        with PrivsepDaemon() as d:
            # --- processes and identities
            net = status_of(d.pid)
            self.assertEqual(net["Uid"].split(), [str(self.nobody.pw_uid)] * 4)
            self.assertEqual(net["Seccomp"], FILTERED, "network process not filtered")
            self.assertEqual(net["NoNewPrivs"], "0" if sctest.VALGRIND else "1")
            wpid = d.writer()
            ws = status_of(wpid)
            self.assertEqual(ws["Uid"].split()[1], "0", "the writer runs as root")
            self.assertEqual(ws["Seccomp"], FILTERED, "the writer is filtered too")
            self.assertTrue(d.wait_log(r"privsep: writer process %d owns the queue" % wpid))
            helpers = [p for p, comm in children_of(d.pid).items() if comm == "smtpcertd-priv"]
            self.assertEqual(len(helpers), 1, children_of(d.pid))
            hs = status_of(helpers[0])
            self.assertEqual((hs["Uid"].split()[1], hs["Seccomp"]), ("0", FILTERED))
            self.assertTrue(d.wait_log(r"seccomp = no" if sctest.VALGRIND else
                                       r"seccomp: system call filter installed"))

            # --- what nobody may do to the files
            state = os.path.join(d.tmp, "state")
            sub = os.path.join(state, "submissions")
            st = os.stat(sub)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o700))
            st = os.stat(state)
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                             (0, self.nobody.pw_gid, 0o1770))
            repo = os.path.join(d.tmp, "repo")
            for path in (os.path.join(sub, "pending"), os.path.join(state, "audit.log"),
                         os.path.join(repo, "data.mdb"), repo):
                self.assertNotEqual(as_nobody("test", "-w", path), 0, path)
            self.assertNotEqual(as_nobody("touch", os.path.join(sub, "pending", "x")), 0)
            self.assertNotEqual(as_nobody("sh", "-c", "echo x >> " + os.path.join(
                state, "audit.log")), 0)
            self.assertNotEqual(as_nobody("mv", sub, os.path.join(state, "moved")), 0,
                                "sticky state_dir: nobody must not rename root's queue")
            self.assertNotEqual(as_nobody("sh", "-c", "echo x >> " + os.path.join(
                repo, "data.mdb")), 0)
            # the LMDB reader table and the network process's own files
            self.assertEqual(as_nobody("test", "-w", os.path.join(repo, "lock.mdb")), 0)
            self.assertEqual(as_nobody("test", "-w", os.path.join(state, "notices")), 0)
            self.assertTrue(os.path.exists(sub), "the queue was moved")

            # --- CERC through the writer
            s = d.session("alice@example.test")
            last = submit(s, "alice@example.test", self.pki.pem("alice.chain"))
            m = re.match(ID_RE, last)
            self.assertTrue(m, last + "\n" + d.log_text()[-2000:])
            self.assertEqual(m.group(2), "queued")
            # CERT still served in the same session (lookups under the filter)
            self.assertEqual(s.docmd("CERT", "bob@example.test")[0], 250)
            s.quit()
            self.assertIn(m.group(1), d.pending())
            entry = os.path.join(sub, "pending", m.group(1))
            self.assertEqual(os.stat(entry).st_uid, 0, "queued by the writer (root)")
            with open(os.path.join(state, "audit.log")) as f:
                self.assertRegex(f.read(), r"submit.*%s" % m.group(1))
            self.assertTrue(d.wait_log(r"cmd=CERC addr=alice@example.test .*result=250"))
            # the postmaster notice: spooled in notices/ and delivered by the
            # network process as nobody (the writer only queues)
            pm = os.path.join(d.mail, "example.test", "postmaster", "new")
            self.assertEqual(len(os.listdir(pm)), 1, d.log_text()[-2000:])
            notice = os.path.join(pm, os.listdir(pm)[0])
            self.assertEqual(os.stat(notice).st_uid, self.nobody.pw_uid)
            with open(notice, errors="replace") as f:
                self.assertIn(m.group(1), f.read())

            # --- mail delivery under the filter (worker thread, Maildir)
            with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as c:
                c.ehlo("client.test")
                refused = c.sendmail("sender@other.test", ["bob@example.test"],
                                     b"Subject: privsep\r\n\r\nhello\r\n")
                self.assertEqual(refused, {})
            new = os.path.join(d.mail, "example.test", "bob", "new")
            self.assertEqual(len(os.listdir(new)), 1)
            self.assertEqual(os.stat(os.path.join(new, os.listdir(new)[0])).st_uid,
                             self.nobody.pw_uid)

            # --- SIGHUP under the filter (the TLS key is root's: privhelper)
            mark = len(d.log_text())
            d.write_config(dict(d.overrides, hostname="reloaded.example"))
            d.reload()
            with d.client() as c:
                self.assertEqual(c.banner.last, "220 reloaded.example ESMTP smtpcertd",
                                 d.log_text()[mark:][-2000:])
                c.ehlo()
                c.starttls(sctest.tls_context())
                c.ehlo()
                self.assertEqual(c.cmd("CERT bob@example.test").code, 250)
            self.assertFalse(d.log_has("Operation not permitted", timeout=0.5, start=mark),
                             d.log_text()[mark:])
            d.stop()

    def test_auto_stores_through_the_writer(self):
        with PrivsepDaemon(submissions="auto") as d:
            s = d.session("alice@example.test")
            last = submit(s, "alice@example.test", self.pki.pem("alice.chain"))
            m = re.match(ID_RE, last)
            self.assertTrue(m, last + "\n" + d.log_text()[-2000:])
            self.assertEqual(m.group(2), "accepted", d.log_text()[-2000:])
            code, msg = s.docmd("CERT", "alice@example.test")
            self.assertEqual(code, 250)
            s.quit()
            self.assertNotIn(m.group(1), d.pending())
            r = d.admin("show", m.group(1))
            self.assertIn("accepted", r.stdout + r.stderr)

    def test_writer_killed(self):
        with PrivsepDaemon() as d:
            wpid = d.writer()
            os.kill(wpid, signal.SIGKILL)
            # logged when it happens (SIGCHLD), not only at the next CERC
            self.assertTrue(d.wait_log(r"privsep: writer process %d ended \(killed by signal 9\)"
                                       % wpid), d.log_text()[-2000:])
            s = d.session("alice@example.test")
            last = submit(s, "alice@example.test", self.pki.pem("alice.chain"))
            self.assertTrue(last.startswith("451 4.3.0"), last)
            self.assertTrue(d.wait_log(r"privsep: writer process %d is gone \(killed by signal 9\)"
                                       % wpid), d.log_text()[-2000:])
            # the daemon goes on serving
            self.assertEqual(s.docmd("CERT", "bob@example.test")[0], 250)
            last = submit(s, "alice@example.test", self.pki.pem("alice.chain"))
            self.assertTrue(last.startswith("451 4.3.0"), last)
            s.quit()
            self.assertTrue(d.alive())
            self.assertNotIn("alice", d.pending())

    def test_seccomp_off_and_check(self):
        r = subprocess.run([sctest.binary("smtpcertd"), "--check-seccomp"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"execve\(/bin/true\)\s+refused: Operation not permitted")
        self.assertIn("seccomp check passed", r.stdout)
        with PrivsepDaemon(extra={"seccomp": "no"}) as d:
            self.assertEqual(status_of(d.pid)["Seccomp"], "0")
            self.assertEqual(status_of(d.writer())["Seccomp"], "0")
            self.assertTrue(d.wait_log(r"seccomp = no"))

    def test_systemd_unit(self):
        """packaging/smtpcertd.service as `make install` writes it: systemd accepts
        it, ExecStart names the installed smtpcertd, and its options are ones the
        binary takes."""
        built = os.path.join(os.path.dirname(sctest.BIN_DIR), "packaging", "smtpcertd.service")
        with open(built) as f:
            unit = f.read()
        starts = re.findall(r"^ExecStart=(\S+) (.*)$", unit, re.M)
        self.assertEqual(len(starts), 1, unit)
        exe, args = starts[0]
        self.assertTrue(exe.startswith("/") and exe.endswith("/sbin/smtpcertd"), exe)
        self.assertEqual(args, "-c /etc/smtpcert/smtpcertd.conf -f")
        for key in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                    "ProtectHome=yes", "SystemCallFilter=@system-service",
                    "ExecReload=/bin/kill -HUP $MAINPID", "Type=exec",
                    "StateDirectory=smtpcert"):
            self.assertIn("\n" + key + "\n", unit)
        caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
        self.assertIn("CAP_NET_BIND_SERVICE", caps)
        self.assertNotIn("CAP_SYS_ADMIN", caps)
        if not shutil.which("systemd-analyze"):
            raise AssertionError("systemd-analyze missing: install the package systemd")
        tmp = sctest.mkdtemp("sc-unit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # verify needs the binary to exist: point the unit at the one under test
        test_unit = os.path.join(tmp, "smtpcertd.service")
        with open(test_unit, "w") as f:
            f.write(unit.replace(exe, sctest.binary("smtpcertd")))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", test_unit],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")
        # the daemon takes the unit's options (-n: check the config and exit)
        with Daemon(start=False) as d:
            cmd = [sctest.binary("smtpcertd")] + args.replace(
                "/etc/smtpcert/smtpcertd.conf", d.conf).split() + ["-n"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("configuration OK", r.stdout)


if __name__ == "__main__":
    unittest.main()
