"""`smtpcert check` and `smtpcert submit` (INTERFACE.md, smtpcert(1)) against the
test PKI and the real smtpcertd.

check: the verdict line for every PKI user (valid, revoked with the daemon's
crl_file, expired, not yet valid, foreign domain, someone else's address), the
submission_ca_file chain rule, a private key, usage errors; and that the reason
equals the one the daemon gives in "550 5.7.1 Invalid Certificate: <reason>".

submit: a queued submission (id and state on stdout), auto acceptance served by
CERT at once, a wrong password, a refused certificate, someone else's address,
submissions off, --insecure, the password never on the command line (no
terminal and no --password-file is a usage error), an empty password file.
"""
import os
import re
import smtplib
import subprocess
import unittest

import sctest
from sctest import Daemon, pki

USERS = {
    "alice@example.test": "alice-secret",
    "bob@example.test": "bob-secret",
    "dave@example.test": "dave-secret",
}
ID_LINE = r"^[0-9a-f]{32} (queued|accepted)\n$"


def smtpcert(*args, timeout=60):
    # start_new_session: no controlling terminal, so /dev/tty cannot be opened
    return subprocess.run([sctest.binary("smtpcert")] + list(args), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          start_new_session=True)


class SubmitDaemon(Daemon):
    """A daemon with `auth = passwd:` and submissions on."""

    def __init__(self, submissions="review", certs=("bob",)):
        super().__init__(overrides={"submissions": submissions}, certs=certs, start=False)
        try:
            self.passwd = os.path.join(self.tmp, "passwd")
            sctest.write_passwd(self.passwd, USERS)
            self.overrides["auth"] = "passwd:" + self.passwd
            self.overrides["delivery"] = "maildir:" + os.path.join(self.tmp, "mail", "%d", "%n")
            self.write_config()
            self.start()
        except BaseException:
            self.cleanup()
            raise

    def password_file(self, user, password=None):
        p = os.path.join(self.tmp, "pw-" + user)
        with open(p, "w") as f:
            f.write((USERS[user] if password is None else password) + "\n")
        return p

    def submit(self, cert, address, user=None, password=None, extra=()):
        user = user or address
        args = ["submit", "--cert", cert, "--server", "127.0.0.1:%d" % self.port,
                "--ca-file", self.pki.path("ca.pem"), "--password-file",
                self.password_file(user, password)]
        if user != address:
            args += ["--user", user]
        return smtpcert(*(args + list(extra) + [address]))


class CheckTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.tmp = sctest.mkdtemp("sc-check-")
        cls.conf = os.path.join(cls.tmp, "smtpcertd.conf")
        with open(cls.conf, "w") as f:
            f.write("domains = example.test\ngateway_domains = gw.test\n"
                    "crl_file = %s\n" % cls.pki.path("crl.pem"))
        cls.anchored = os.path.join(cls.tmp, "anchored.conf")
        with open(cls.anchored, "w") as f:
            f.write("domains = example.test\nsubmission_ca_file = %s\n"
                    % cls.pki.path("ca.pem"))
        cls.other = os.path.join(cls.tmp, "other.conf")
        with open(cls.other, "w") as f:
            f.write("domains = example.test\nsubmission_ca_file = %s\n"
                    % cls.pki.path("other-ca.pem"))

    def check(self, name, address, conf=None):
        args = ["check", self.pki.path(name), "--email", address]
        if conf:
            args += ["-c", conf]
        return smtpcert(*args)

    def assertVerdict(self, r, verdict, code):
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], verdict, r.stdout)

    def test_acceptable(self):
        r = self.check("alice.chain", "alice@example.test", self.conf)
        self.assertVerdict(r, "acceptable", 0)
        self.assertIn("\nkey: RSA-2048\n", r.stdout)
        self.assertIn("\nsmime-capabilities: (none)\n", r.stdout)
        self.assertIn("sha256: " + self.pki.fingerprint("alice"), r.stdout)
        # without a config any domain is judged
        self.assertVerdict(self.check("mallory", "mallory@other.test"), "acceptable", 0)
        # SmtpUTF8Mailbox only (RFC 8398)
        self.assertVerdict(self.check("utf8", "用户@example.test", self.conf), "acceptable", 0)

    def test_refusals(self):
        cases = [
            ("carol", "carol@example.test", "revoked"),
            ("dave", "dave@example.test", "expired"),
            ("erin", "erin@example.test", "not yet valid"),
            ("mallory", "mallory@other.test", "domain not served"),
            ("bob", "alice@example.test", "email address does not match"),
            ("server", "alice@example.test", "no email address"),
        ]
        for name, address, reason in cases:
            with self.subTest(name=name):
                self.assertVerdict(self.check(name, address, self.conf),
                                   "not acceptable: " + reason, 6)

    def test_anchors(self):
        self.assertVerdict(self.check("alice.chain", "alice@example.test", self.anchored),
                           "acceptable", 0)
        self.assertVerdict(self.check("alice", "alice@example.test", self.anchored),
                           "not acceptable: does not chain to a submission anchor "
                           "(unable to get local issuer certificate)", 6)
        r = self.check("alice.chain", "alice@example.test", self.other)
        self.assertEqual(r.returncode, 6)
        self.assertTrue(r.stdout.startswith("not acceptable: does not chain to a "
                                            "submission anchor ("), r.stdout)

    def test_not_a_certificate(self):
        r = self.check("alice.key", "alice@example.test")
        self.assertVerdict(r, "not acceptable: not a certificate", 6)
        r = smtpcert("check", os.path.join(self.tmp, "missing.pem"), "--email", "a@example.test")
        self.assertEqual(r.returncode, 7)
        self.assertIn("cannot read", r.stderr)

    def test_usage(self):
        for args in (["check"], ["check", self.pki.path("alice")],
                     ["check", self.pki.path("alice"), "--email", "not an address"],
                     ["check", "--email", "a@example.test"],
                     ["check", self.pki.path("alice"), "--email", "a@example.test", "--bogus"]):
            with self.subTest(args=args):
                r = smtpcert(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
        r = smtpcert("check", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: smtpcert check", r.stdout)
        r = smtpcert("check", self.pki.path("alice"), "--email", "alice@example.test",
                     "-c", os.path.join(self.tmp, "missing.conf"))
        self.assertEqual(r.returncode, 7)


class SubmitTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()

    def test_queued_then_same_verdict_as_check(self):
        with SubmitDaemon() as d:
            r = d.submit(self.pki.chain("alice"), "alice@example.test")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, ID_LINE)
            self.assertTrue(r.stdout.rstrip().endswith(" queued"))
            # the daemon's reason is check's reason
            r = d.submit(self.pki.chain("dave"), "dave@example.test")
            self.assertEqual(r.returncode, 6, r.stderr)
            m = re.search(r"550 5\.7\.1 Invalid Certificate: (.*)$", r.stderr.strip())
            self.assertIsNotNone(m, r.stderr)
            c = smtpcert("check", self.pki.chain("dave"), "--email", "dave@example.test",
                         "-c", d.conf)
            self.assertEqual(c.stdout.splitlines()[0], "not acceptable: " + m.group(1))

    def test_auto_is_served_at_once(self):
        with SubmitDaemon(submissions="auto") as d:
            r = d.submit(self.pki.chain("alice"), "alice@example.test")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.rstrip().endswith(" accepted"), r.stdout)
            f = smtpcert("fetch", "--server", "127.0.0.1:%d" % d.port, "--ca-file",
                         self.pki.path("ca.pem"), "alice@example.test")
            self.assertEqual(f.returncode, 0, f.stderr)
            self.assertEqual(sctest.pem_certs(f.stdout), sctest.pem_certs(self.pki.pem("alice")))

    def test_refused(self):
        with SubmitDaemon() as d:
            r = d.submit(self.pki.chain("alice"), "alice@example.test", password="wrong")
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertIn("535", r.stderr)
            self.assertEqual(r.stdout, "")
            # bob may not submit for alice
            r = d.submit(self.pki.chain("alice"), "alice@example.test", user="bob@example.test")
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertRegex(r.stderr, r"5\d\d 5\.7\.\d")
            # an empty password file
            r = d.submit(self.pki.chain("alice"), "alice@example.test", password="")
            self.assertEqual(r.returncode, 6, r.stderr)

    def test_submissions_off(self):
        with SubmitDaemon(submissions="off") as d:
            r = d.submit(self.pki.chain("alice"), "alice@example.test")
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertEqual(r.stdout, "")
        # /dev/null holds no password: refused before connecting
        r = smtpcert("submit", "--cert", self.pki.chain("alice"), "--server", "127.0.0.1:1",
                     "--password-file", os.devnull, "alice@example.test")
        self.assertEqual(r.returncode, 6, r.stderr)

    def test_insecure_and_no_terminal(self):
        with SubmitDaemon() as d:
            pw = d.password_file("alice@example.test")
            r = smtpcert("submit", "--cert", self.pki.chain("alice"), "--server",
                         "127.0.0.1:%d" % d.port, "--insecure", "--password-file", pw,
                         "alice@example.test")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("--insecure", r.stderr)
            self.assertRegex(r.stdout, ID_LINE)
            # without the CA the server is not trusted
            r = smtpcert("submit", "--cert", self.pki.chain("alice"), "--server",
                         "127.0.0.1:%d" % d.port, "--password-file", pw, "alice@example.test")
            self.assertEqual(r.returncode, 4, r.stderr)
            # no --password-file and no terminal: never reads the password elsewhere
            r = smtpcert("submit", "--cert", self.pki.chain("alice"), "--server",
                         "127.0.0.1:%d" % d.port, "alice@example.test")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--password-file", r.stderr)

    def test_usage(self):
        for args in (["submit", "alice@example.test"],
                     ["submit", "--cert", self.pki.chain("alice")],
                     ["submit", "--cert", self.pki.chain("alice"), "--server", "[::1",
                      "--password-file", os.devnull, "alice@example.test"],
                     ["submit", "--cert", self.pki.chain("alice"), "nobody"]):
            with self.subTest(args=args):
                r = smtpcert(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
        r = smtpcert("submit", "--cert", self.pki.path("alice.key"), "--server",
                     "127.0.0.1:1", "--password-file", os.devnull, "alice@example.test")
        self.assertEqual(r.returncode, 6, r.stderr)


if __name__ == "__main__":
    unittest.main()
