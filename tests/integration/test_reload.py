"""Signals and configuration checking: SIGHUP reloads config, TLS files and CRLs
without dropping connections (and keeps the old config when the new one is
broken), `smtpcertd -n` validates a config, SIGTERM drains with 421 4.3.2."""
import os
import pwd
import shutil
import signal
import subprocess
import time
import unittest

import sctest
from sctest import Daemon, HungServer, pki

NOT_FOUND = "550 5.1.1 Certificate Not Found"


class ReloadTest(unittest.TestCase):

    def setUp(self):
        self.pki = pki()

    def test_sighup_new_crl_revokes_and_open_session_survives(self):
        d = Daemon(start=False)
        with d:
            crl = os.path.join(d.tmp, "crl.pem")
            shutil.copy(self.pki.path("crl.pem"), crl)
            d.overrides["crl_file"] = crl
            d.write_config()
            d.start()
            old = d.client()
            self.addCleanup(old.close)
            old.ehlo()
            self.assertEqual(old.cmd("CERT alice@example.test").code, 250)
            # the CRL file now also revokes alice
            shutil.copy(self.pki.path("crl-alice.pem"), crl + ".new")
            os.replace(crl + ".new", crl)
            d.reload()
            self.assertTrue(d.alive())
            with d.client() as c:
                c.ehlo()
                r = c.cmd("CERT alice@example.test")
                self.assertEqual(r.last, NOT_FOUND)
                self.assertNotIn(b"CERTIFICATE", r.raw)
                self.assertEqual(c.cmd("CERT bob@example.test").code, 250)
            # the session opened before the reload is still there and working
            self.assertEqual(old.cmd("NOOP").last, "250 2.0.0 OK")
            r = old.cmd("CERT bob@example.test")
            self.assertEqual(r.code, 250, r)
            self.assertEqual(r.ders()[0], self.pki.der("bob"))
            # a certificate on the CRL is never transmitted (proposal: MUST NOT),
            # not even to a session that began before the CRL was loaded
            r = old.cmd("CERT alice@example.test")
            self.assertEqual(r.last, NOT_FOUND)
            old.cmd("QUIT")

    def test_sighup_crl_file_key_changed(self):
        with Daemon() as d:
            d.write_config({"crl_file": [self.pki.path("crl.pem"),
                                         self.pki.path("crl-alice.pem")]})
            d.reload()
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").last, NOT_FOUND)
                self.assertEqual(c.cmd("CERT bob@example.test").code, 250)

    def test_sighup_der_crl_accepted(self):
        with Daemon(certs=("alice", "bob")) as d:
            d.write_config({"crl_file": self.pki.path("crl.der")})
            d.reload()
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)

    def test_sighup_applies_new_hostname(self):
        with Daemon() as d:
            old = d.client()
            self.addCleanup(old.close)
            old.ehlo()
            d.write_config({"hostname": "reloaded.example"})
            d.reload()
            with d.client() as c:
                self.assertEqual(c.banner.last, "220 reloaded.example ESMTP smtpcertd")
            # a session keeps the settings it started with
            r = old.cmd("QUIT")
            self.assertEqual(r.last, "221 2.0.0 %s closing connection" % sctest.HOSTNAME)

    def test_sighup_load_runs_off_the_loop(self):
        """The new configuration is loaded on a worker thread: a store that takes
        its whole connect_timeout to open (a database that accepts and never
        answers) does not stop CERT answers from the running configuration."""
        hung = HungServer()
        self.addCleanup(hung.close)
        with Daemon() as d:
            lmdb = d.base_config()["repository"]
            spec = ("pgsql:host=127.0.0.1 port=%d dbname=x user=sc connect_timeout=6"
                    % hung.port)
            d.write_config({"repository": [lmdb, spec]})
            mark = len(d.log_text())
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while not hung.conns and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(hung.conns, "the reload never connected to the hung database")
            # timed from the connect: a loop held by the load would send even
            # the banner only after the 6 s deadline
            t0 = time.monotonic()
            with d.client() as c:
                c.ehlo()
                r = c.cmd("CERT alice@example.test")
                took = time.monotonic() - t0
                self.assertEqual(r.code, 250, r)
                self.assertLess(took, 3, "CERT was answered only after the reload")
                # and the load had not ended when CERT was answered
                self.assertNotIn("reloaded ", d.log_text()[mark:],
                                 "the reload finished before CERT was answered")
            # a second SIGHUP meanwhile: one more reload after this one
            d.proc.send_signal(signal.SIGHUP)
            self.assertTrue(d.wait_log(r"reloading again after it", 10, mark))
            self.assertTrue(d.wait_log(r"reloaded .*generation 2\): 2 repositories", 30, mark))
            # what the open said about the database reaches the log (repo.h)
            self.assertTrue(d.wait_log(r"repository pgsql:host=127.0.0.1 .*lookups fail "
                                       r"temporarily until it answers", 5, mark))
            self.assertTrue(d.wait_log(r"reloaded .*generation 3\): 2 repositories", 30, mark))
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)

    def test_broken_config_on_sighup_keeps_old(self):
        with Daemon() as d:
            mark = len(d.log_text())
            d.write_config(extra="bogus_key = 1\n")
            d.proc.send_signal(signal.SIGHUP)
            m = d.wait_log(r"bogus_key", 5, mark)
            self.assertIsNotNone(m, "reload error not logged:\n" + d.log_text()[mark:])
            line = d.log_text()[mark:][m.start():].splitlines()[0]
            self.assertIn(d.conf, d.log_text()[mark:], "log does not name the file")
            self.assertTrue(d.alive(), "daemon exited on a broken config")
            with d.client() as c:
                self.assertEqual(c.banner.last, "220 %s ESMTP smtpcertd" % sctest.HOSTNAME)
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250, line)
            # fixing the file and reloading again works
            d.write_config({"hostname": "fixed.example"})
            d.reload()
            with d.client() as c:
                self.assertEqual(c.banner.last, "220 fixed.example ESMTP smtpcertd")

    def test_sighup_reloads_tls_files(self):
        with Daemon() as d:
            with d.client() as c:
                c.ehlo()
                c.starttls(sctest.tls_context())
                self.assertEqual(c.sock.getpeercert(binary_form=True), self.pki.der("server"))
            d.write_config({"tls_cert_file": self.pki.path("server2.chain.pem"),
                            "tls_key_file": self.pki.path("server2.key")})
            d.reload()
            with d.client() as c:
                c.ehlo()
                c.starttls(sctest.tls_context())
                self.assertEqual(c.sock.getpeercert(binary_form=True), self.pki.der("server2"))
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)

    def test_broken_tls_key_on_sighup_keeps_old(self):
        with Daemon() as d:
            d.write_config({"tls_key_file": self.pki.path("alice.key")})  # wrong key
            d.reload()
            self.assertTrue(d.alive())
            with d.client() as c:
                c.ehlo()
                c.starttls(sctest.tls_context())
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)

    def test_sigterm_idle_client_gets_421_and_exit_0(self):
        d = Daemon()
        with d:
            idle = d.client()
            self.addCleanup(idle.close)
            idle.ehlo()
            fresh = d.client()  # connected, banner read, no command yet
            self.addCleanup(fresh.close)
            d.proc.send_signal(signal.SIGTERM)
            for c in (idle, fresh):
                r = c.reply(timeout=5)
                self.assertEqual(r.last, "421 4.3.2 %s Service shutting down" % sctest.HOSTNAME)
                self.assertTrue(c.is_closed(5))
            rc = d.proc.wait(10)
            self.assertEqual(rc, 0, d.log_text()[-2000:])
            # no longer listening
            with self.assertRaises(OSError):
                sctest.Client(d.port, timeout=2)


class PrivilegeDropTest(unittest.TestCase):
    """Started as root with `user = nobody`: the daemon serves as nobody, admin
    changes made as root are seen, and SIGHUP still reloads config and TLS files
    (INTERFACE.md: user, SIGHUP), although the TLS key is readable by root only."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to test the `user` setting")
        try:
            self.nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody'")
        self.d = Daemon(certs=("alice",), start=False)
        self.addCleanup(self.d.cleanup)
        os.chmod(self.d.tmp, 0o755)  # config, state and repository reachable
        self.d.overrides["user"] = "nobody"
        self.d.write_config()
        self.assertEqual(os.stat(pki().path("server.key")).st_mode & 0o077, 0)
        self.d.start()

    def uids(self):
        with open("/proc/%d/status" % self.d.pid) as f:
            line = next(ln for ln in f if ln.startswith("Uid:"))
        return set(int(x) for x in line.split()[1:])

    def test_serves_as_user(self):
        self.assertEqual(self.uids(), {self.nobody.pw_uid})
        with self.d.client() as c:
            c.ehlo()
            self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
            self.d.import_certs(["bob"])
            self.assertEqual(c.cmd("CERT bob@example.test").ders()[0], pki().der("bob"))
            c.starttls(sctest.tls_context())
            c.ehlo()
            self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
        self.d.stop()

    def test_sighup_reloads_as_user(self):
        self.d.write_config(dict(self.d.overrides, hostname="reloaded.example",
                                 tls_cert_file=pki().path("server2.chain.pem"),
                                 tls_key_file=pki().path("server2.key")))
        self.d.reload()
        with self.d.client() as c:
            self.assertEqual(c.banner.last, "220 reloaded.example ESMTP smtpcertd",
                             self.d.log_text()[-1500:])
            c.ehlo()
            c.starttls(sctest.tls_context())
            self.assertEqual(c.sock.getpeercert(binary_form=True), pki().der("server2"))
        self.d.stop()


class ConfigCheckTest(unittest.TestCase):
    """smtpcertd -n: 0 on a valid config; otherwise non-zero naming FILE:LINE: and the key."""

    def setUp(self):
        self.d = Daemon(start=False)
        self.addCleanup(self.d.cleanup)

    def check(self):
        return subprocess.run([self.d.smtpcertd, "-n", "-c", self.d.conf],
                              capture_output=True, text=True, timeout=30)

    def test_valid_config_exit_0(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def assertRejected(self, key, line):
        r = self.check()
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("%s:%d:" % (self.d.conf, line), out)
        self.assertIn(key, out)

    def test_unknown_key(self):
        text = self.d.write_config(extra="# a comment\nfrobnicate = yes\n")
        self.assertRejected("frobnicate", text.count("\n"))

    def test_bad_value(self):
        text = self.d.write_config(extra="max_errors = lots\n")
        self.assertRejected("max_errors", text.count("\n"))

    def test_bad_listen(self):
        self.d.overrides["listen"] = "localhost"
        text = self.d.write_config()
        lines = text.splitlines()
        n = next(i for i, ln in enumerate(lines, 1) if ln.startswith("listen"))
        self.assertRejected("listen", n)

    def test_duplicate_scalar_key(self):
        text = self.d.write_config(extra="hostname = again.example\n")
        self.assertRejected("hostname", text.count("\n"))

    def test_missing_tls_file(self):
        missing = os.path.join(self.d.tmp, "no-such-cert.pem")
        self.d.overrides["tls_cert_file"] = missing
        self.d.write_config()
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(missing, r.stdout + r.stderr)

    def test_missing_crl_file(self):
        missing = os.path.join(self.d.tmp, "no-such-crl.pem")
        self.d.overrides["crl_file"] = missing
        self.d.write_config()
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(missing, r.stdout + r.stderr)

    def test_missing_file(self):
        r = subprocess.run([self.d.smtpcertd, "-n", "-c", self.d.conf + ".missing"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(self.d.conf + ".missing", r.stdout + r.stderr)

    def test_check_writes_nothing(self):
        """A check creates no store, no state directory and no queue, and does
        not contact a database: it says what the start would create."""
        store = os.path.join(self.d.tmp, "new-store")
        state = os.path.join(self.d.tmp, "new-state")
        hung = HungServer()
        self.addCleanup(hung.close)
        pgsql = "pgsql:host=127.0.0.1 port=%d dbname=x user=sc connect_timeout=20" % hung.port
        self.d.overrides.update({"repository": ["lmdb:" + store, pgsql],
                                 "state_dir": state, "submissions": "review"})
        self.d.write_config()
        r = self.check()
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("check: lmdb:%s: " % store, out)
        self.assertIn("smtpcertd creates it empty at start", out)
        self.assertIn("database not contacted by -n", out)
        self.assertFalse(os.path.exists(store), "the check created the store")
        self.assertFalse(os.path.exists(state), "the check created state_dir")
        self.assertEqual(hung.conns, [], "the check connected to the database")
        # a broken setting is still found with such stores in the list
        self.d.write_config(extra="max_errors = lots\n")
        self.assertNotEqual(self.check().returncode, 0)

    @unittest.skipIf(sctest.TEST_REPO == "dir", "LMDB's lock file")
    def test_check_opens_store_without_writing(self):
        # an existing store is opened (it must open) but not written, not even
        # LMDB's lock file, which a plain read-only open creates
        repo = os.path.join(self.d.tmp, "repo")
        lock = os.path.join(repo, "lock.mdb")
        os.unlink(lock)
        before = {n: os.stat(os.path.join(repo, n)).st_mtime_ns for n in os.listdir(repo)}
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(lock), "the check created lock.mdb")
        self.assertEqual({n: os.stat(os.path.join(repo, n)).st_mtime_ns
                          for n in os.listdir(repo)}, before)
        # and a store that does not open is still found
        with open(os.path.join(repo, "data.mdb"), "r+b") as f:
            f.write(b"\0" * 4096)
        r = self.check()
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(repo, r.stdout + r.stderr)

    def test_check_does_not_start_server(self):
        t0 = time.monotonic()
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.monotonic() - t0, 10)
        with self.assertRaises(OSError):
            sctest.Client(self.d.port, timeout=2)


if __name__ == "__main__":
    unittest.main()
