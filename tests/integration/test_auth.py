"""SMTP AUTH (RFC 4954) against the real daemon with Python's smtplib: PLAIN and
LOGIN only inside STARTTLS (538 before, not advertised), the passwd: source with
sha512-crypt (`openssl passwd -6`), yescrypt and bcrypt (`mkpasswd`) hashes, the
file re-read on change, cancel, bad base64, unknown mechanism, over-long
responses, 535 after auth_fail_delay, 454 after auth_max_failures per IP and per
user, 502 without `auth`, the log line (user, never the password), and the
dovecot: source against a real Dovecot (scripts/dovecot-test) including Dovecot
down -> 454."""
import base64
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

import sctest
from sctest import Daemon

PASSWORD = "correct horse"
USERS = {"alice@example.test": PASSWORD, "bob@example.test": "b0b-secret"}


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def mkpasswd(method, password):
    """A crypt hash from mkpasswd(1) (Debian's whois package), or None."""
    exe = shutil.which("mkpasswd")
    if not exe:
        return None
    r = subprocess.run([exe, "-m", method, "--stdin"], input=password, capture_output=True,
                       text=True, timeout=30)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.startswith("$") else None


def tls_smtp(d):
    c = sctest.smtp(d.port)
    c.ehlo()
    c.starttls(context=sctest.tls_context())
    c.ehlo()
    return c


class PasswdAuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sc-auth-")
        cls.passwd = os.path.join(cls.tmp, "passwd")
        sctest.write_passwd(cls.passwd, USERS)
        cls.extra = {}
        for method, user in (("yescrypt", "yes@example.test"), ("bcrypt", "bc@example.test")):
            h = mkpasswd(method, PASSWORD)
            if h:
                cls.extra[method] = user
                with open(cls.passwd, "a") as f:
                    f.write("# %s\n\n%s:%s\n" % (method, user, h))
        cls.d = Daemon({"auth": "passwd:" + cls.passwd, "auth_fail_delay": "1",
                        "auth_max_failures": "100"})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def session(self):
        c = tls_smtp(self.d)
        self.addCleanup(c.close)
        return c

    def test_not_offered_before_tls(self):
        c = sctest.smtp(self.d.port)
        self.addCleanup(c.close)
        c.ehlo()
        self.assertFalse(c.has_extn("auth"))
        code, msg = c.docmd("AUTH", "PLAIN " + b64("\0alice@example.test\0" + PASSWORD))
        self.assertEqual(code, 538)
        self.assertIn(b"5.7.11 Encryption required", msg)

    def test_advertised_after_tls(self):
        c = self.session()
        self.assertTrue(c.has_extn("auth"))
        self.assertEqual(c.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])

    def test_plain_sha512(self):
        c = self.session()
        mark = len(self.d.log_text())
        code, msg = c.login("alice@example.test", PASSWORD)
        self.assertEqual(code, 235)
        self.assertIn(b"2.7.0 Authentication successful", msg)
        m = self.d.wait_log(r"cmd=AUTH mech=PLAIN user=alice@example.test result=235", 5, mark)
        self.assertIsNotNone(m, self.d.log_text()[mark:])
        self.assertNotIn(PASSWORD.split()[0], self.d.log_text())
        # RFC 4954 4: no second AUTH
        code, msg = c.docmd("AUTH", "PLAIN " + b64("\0alice@example.test\0" + PASSWORD))
        self.assertEqual(code, 503)
        # RSET keeps the identity
        self.assertEqual(c.rset()[0], 250)
        self.assertEqual(c.docmd("AUTH", "LOGIN")[0], 503)

    def test_pipelined_auth_after_starttls_discarded(self):
        # RFC 3207 4.2 (CVE-2011-0411): AUTH with valid credentials in the same
        # write as STARTTLS is never executed, neither in clear nor inside TLS
        mark = len(self.d.log_text())
        cred = b64("\0alice@example.test\0" + PASSWORD)
        with self.d.client() as c:
            c.ehlo()
            c.send(("STARTTLS\r\nAUTH PLAIN %s\r\n" % cred).encode())
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.buf, b"", "plaintext after 220: %r" % c.buf)
            c.wrap_tls(sctest.tls_context())
            c.ehlo("after.test")
            self.assertEqual(c.pending(0.5), b"")
            # no identity survived: this AUTH is the first one (503 otherwise)
            self.assertEqual(c.cmd("AUTH PLAIN " + cred).code, 235)
        self.assertTrue(self.d.log_has("result=235", start=mark), self.d.log_text()[mark:])
        log = self.d.log_text()[mark:]
        ok = re.findall(r"session=(\S+) cmd=AUTH mech=PLAIN user=alice@example.test result=235",
                        log)
        self.assertEqual(len(ok), 1, log)
        # this session's lines only: the previous test's 538 (AUTH in clear) may
        # be written after `mark` (the log is written once per loop round)
        self.assertNotRegex(log, r"session=%s [^\n]*result=538" % re.escape(ok[0]))

    def test_case_insensitive_domain(self):
        c = self.session()
        self.assertEqual(c.login("Alice@EXAMPLE.Test", PASSWORD)[0], 235)

    def test_authzid(self):
        c = self.session()
        code, _ = c.docmd("AUTH", "PLAIN " + b64("alice@example.test\0alice@example.test\0"
                                                 + PASSWORD))
        self.assertEqual(code, 235)
        c2 = self.session()
        code, msg = c2.docmd("AUTH", "PLAIN " + b64("bob@example.test\0alice@example.test\0"
                                                    + PASSWORD))
        self.assertEqual(code, 535, msg)

    def test_yescrypt(self):
        if "yescrypt" not in self.extra:
            self.fail("mkpasswd -m yescrypt not available (package whois, scripts/install-deps)")
        self.assertEqual(self.session().login(self.extra["yescrypt"], PASSWORD)[0], 235)

    def test_bcrypt(self):
        if "bcrypt" not in self.extra:
            self.fail("mkpasswd -m bcrypt not available (package whois, scripts/install-deps)")
        self.assertEqual(self.session().login(self.extra["bcrypt"], PASSWORD)[0], 235)

    def test_wrong_password_after_delay(self):
        c = self.session()
        t0 = time.monotonic()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            c.login("alice@example.test", "wrong")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertIn(b"5.7.8", cm.exception.smtp_error)
        # the session goes on
        self.assertEqual(c.noop()[0], 250)

    def test_unknown_user(self):
        c = self.session()
        code, msg = c.docmd("AUTH", "PLAIN " + b64("\0nobody@example.test\0" + PASSWORD))
        self.assertEqual(code, 535, msg)

    def test_delay_does_not_block_others(self):
        c = self.session()
        c.sock.sendall(b"AUTH PLAIN " + b64("\0alice@example.test\0nope").encode() + b"\r\n")
        t0 = time.monotonic()
        other = self.session()   # the loop keeps serving while c waits for its 535
        self.assertEqual(other.noop()[0], 250)
        self.assertLess(time.monotonic() - t0, 0.9)
        self.assertEqual(c.getreply()[0], 535)

    def test_login_mechanism(self):
        c = self.session()
        code, msg = c.docmd("AUTH", "LOGIN")
        self.assertEqual((code, msg), (334, b"VXNlcm5hbWU6"))
        code, msg = c.docmd(b64("bob@example.test"))
        self.assertEqual((code, msg), (334, b"UGFzc3dvcmQ6"))
        code, msg = c.docmd(b64("b0b-secret"))
        self.assertEqual(code, 235, msg)

    def test_login_initial_response(self):
        c = self.session()
        code, msg = c.docmd("AUTH", "LOGIN " + b64("bob@example.test"))
        self.assertEqual((code, msg), (334, b"UGFzc3dvcmQ6"))
        self.assertEqual(c.docmd(b64("b0b-secret"))[0], 235)

    def test_plain_empty_challenge(self):
        c = self.session()
        code, msg = c.docmd("AUTH", "PLAIN")
        self.assertEqual(code, 334)
        self.assertEqual(c.docmd(b64("\0bob@example.test\0b0b-secret"))[0], 235)

    def test_cancel(self):
        c = self.session()
        self.assertEqual(c.docmd("AUTH", "LOGIN")[0], 334)
        code, msg = c.docmd("*")
        self.assertEqual(code, 501)
        self.assertIn(b"5.7.0", msg)
        self.assertEqual(c.noop()[0], 250)
        self.assertEqual(c.login("bob@example.test", "b0b-secret")[0], 235)

    def test_bad_base64(self):
        c = self.session()
        for bad in ("not-base64!", "YWJj=", "YQ==YQ==", "YR=="):
            code, msg = c.docmd("AUTH", "PLAIN " + bad)
            self.assertEqual(code, 501, bad)
            self.assertIn(b"5.5.2", msg)
        self.assertEqual(c.docmd("AUTH", "LOGIN")[0], 334)
        code, msg = c.docmd("%%%%")
        self.assertEqual(code, 501)
        self.assertEqual(c.noop()[0], 250)

    def test_malformed_plain(self):
        c = self.session()
        for bad in ("alice@example.test", "\0alice@example.test", "\0\0pw",
                    "\0alice@example.test\0"):
            code, msg = c.docmd("AUTH", "PLAIN " + b64(bad))
            self.assertEqual(code, 501, repr(bad))

    def test_unknown_mechanism(self):
        c = self.session()
        code, msg = c.docmd("AUTH", "CRAM-MD5")
        self.assertEqual(code, 504)
        self.assertIn(b"5.5.4", msg)
        self.assertEqual(c.docmd("AUTH")[0], 501)

    def test_before_ehlo(self):
        c = sctest.smtp(self.d.port)
        self.addCleanup(c.close)
        c.ehlo()
        c.starttls(context=sctest.tls_context())
        # RFC 3207 4.2: a new EHLO is due after TLS
        self.assertEqual(c.docmd("AUTH", "PLAIN")[0], 503)

    def test_long_response(self):
        c = self.session()
        self.assertEqual(c.docmd("AUTH", "PLAIN")[0], 334)
        # RFC 4954 4: up to 12288 octets are a response (this one decodes to garbage)
        code, msg = c.docmd(b64(b"x" * 9216))
        self.assertEqual(code, 501, msg)
        self.assertEqual(c.docmd("AUTH", "PLAIN")[0], 334)
        code, msg = c.docmd("A" * 13000)
        self.assertEqual(code, 500)
        self.assertIn(b"5.5.6", msg)
        self.assertEqual(c.noop()[0], 250)
        # back to the command limit after the dialogue
        self.assertEqual(c.docmd("NOOP " + "x" * 1000)[0], 500)

    def test_file_reread(self):
        with open(self.passwd) as f:
            old = f.read()
        self.addCleanup(self._restore, old)
        sctest.write_passwd(self.passwd + ".new", {"carol@example.test": "carol-pw"})
        with open(self.passwd + ".new") as f:
            new = f.read()
        with open(self.passwd, "a") as f:
            f.write(new)
        self.assertEqual(self.session().login("carol@example.test", "carol-pw")[0], 235)
        # removed again: refused
        self._restore(old)
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            self.session().login("carol@example.test", "carol-pw")

    def _restore(self, text):
        tmp = self.passwd + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.passwd)


class LimitTest(unittest.TestCase):
    """auth_max_failures per user and per IP (each test has its own daemon: the
    counters are process-wide)."""

    def daemon(self, **kw):
        tmp = tempfile.mkdtemp(prefix="sc-auth-")
        self.addCleanup(shutil.rmtree, tmp, True)
        passwd = os.path.join(tmp, "passwd")
        sctest.write_passwd(passwd, USERS)
        cfg = {"auth": "passwd:" + passwd, "auth_fail_delay": "0", "auth_max_failures": "3"}
        cfg.update(kw)
        d = Daemon(cfg)
        self.addCleanup(d.cleanup)
        self.addCleanup(d.stop)
        return d

    def fail(self, d, user, n):
        for _ in range(n):
            c = tls_smtp(d)
            code, _ = c.docmd("AUTH", "PLAIN " + b64("\0%s\0wrong" % user))
            c.close()
            self.assertEqual(code, 535)

    def test_per_user(self):
        d = self.daemon(auth_max_failures="3")
        # every test client is 127.0.0.1, so the IP counter reaches the limit
        # together with the user's; test_d_auth.c separates the two
        self.fail(d, "alice@example.test", 2)
        self.fail(d, "ALICE@example.test", 1)
        c = tls_smtp(d)
        self.addCleanup(c.close)
        code, msg = c.docmd("AUTH", "PLAIN " + b64("\0alice@example.test\0" + PASSWORD))
        self.assertEqual(code, 454, msg)
        self.assertIn(b"4.7.0 Too many authentication failures", msg)

    def test_per_ip(self):
        d = self.daemon(auth_max_failures="3")
        for i in range(3):
            self.fail(d, "user%d@example.test" % i, 1)
        c = tls_smtp(d)
        self.addCleanup(c.close)
        code, msg = c.docmd("AUTH", "PLAIN " + b64("\0bob@example.test\0b0b-secret"))
        self.assertEqual(code, 454, msg)
        self.assertEqual(c.docmd("AUTH", "LOGIN")[0], 454)


class NoAuthTest(unittest.TestCase):

    def test_not_configured(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        self.addCleanup(d.stop)
        c = tls_smtp(d)
        self.addCleanup(c.close)
        self.assertFalse(c.has_extn("auth"))
        code, msg = c.docmd("AUTH", "PLAIN " + b64("\0alice@example.test\0x"))
        self.assertEqual(code, 502)
        self.assertIn(b"5.5.1", msg)

    def test_bad_passwd_file_is_config_error(self):
        tmp = tempfile.mkdtemp(prefix="sc-auth-")
        self.addCleanup(shutil.rmtree, tmp, True)
        bad = os.path.join(tmp, "passwd")
        with open(bad, "w") as f:
            f.write("no-at-sign:$6$x$y\n")
        d = Daemon({"auth": "passwd:" + bad}, start=False)
        self.addCleanup(d.cleanup)
        r = subprocess.run([d.smtpcertd, "-c", d.conf, "-n"], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("passwd:1:", r.stderr + r.stdout)


class DovecotAuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # a missing server is a failure, never a skip (scripts/install-deps has it)
        if not (shutil.which("dovecot") or os.path.exists("/usr/sbin/dovecot")):
            raise AssertionError("dovecot-core not installed (scripts/install-deps)")
        cls.tmp = tempfile.mkdtemp(prefix="sc-dovecot-")
        users = os.path.join(cls.tmp, "users")
        h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=PASSWORD,
                           capture_output=True, text=True, check=True).stdout.strip()
        with open(users, "w") as f:
            f.write("alice@example.test:{SHA512-CRYPT}%s\n" % h)
            f.write("bob@example.test:{PLAIN}b0b-secret\n")
        cls.script = os.path.join(sctest.SOURCE_DIR, "scripts", "dovecot-test")
        r = subprocess.run([cls.script, "start", cls.tmp, users], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError("dovecot-test start failed: %s" % r.stderr)
        cls.sock = r.stdout.strip()
        try:
            cls.d = Daemon({"auth": "dovecot:" + cls.sock, "auth_fail_delay": "1"})
        except BaseException:
            cls.stop_dovecot()
            raise

    @classmethod
    def stop_dovecot(cls):
        subprocess.run([cls.script, "stop", cls.tmp], timeout=30)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()
            cls.stop_dovecot()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_a_login(self):
        c = tls_smtp(self.d)
        self.addCleanup(c.close)
        self.assertEqual(c.login("alice@example.test", PASSWORD)[0], 235)
        self.assertEqual(c.docmd("AUTH", "LOGIN")[0], 503)

    def test_a_login_mechanism(self):
        c = tls_smtp(self.d)
        self.addCleanup(c.close)
        self.assertEqual(c.docmd("AUTH", "LOGIN")[0], 334)
        self.assertEqual(c.docmd(b64("bob@example.test"))[0], 334)
        self.assertEqual(c.docmd(b64("b0b-secret"))[0], 235)

    def test_b_wrong_password(self):
        c = tls_smtp(self.d)
        self.addCleanup(c.close)
        t0 = time.monotonic()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            c.login("alice@example.test", "wrong")
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        c2 = tls_smtp(self.d)
        self.addCleanup(c2.close)
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            c2.login("nobody@example.test", "x")

    def test_z_dovecot_down(self):
        self.stop_dovecot()
        c = tls_smtp(self.d)
        self.addCleanup(c.close)
        code, msg = c.docmd("AUTH", "PLAIN " + b64("\0alice@example.test\0" + PASSWORD))
        self.assertEqual(code, 454, msg)
        self.assertIn(b"4.7.0 Temporary authentication failure", msg)


if __name__ == "__main__":
    unittest.main()
