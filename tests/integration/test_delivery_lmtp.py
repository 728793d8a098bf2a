"""Delivery over LMTP into a real Dovecot (Debian's dovecot-lmtpd), run privately
by tests/lib/dovecot_lmtp.py: smtpcertd with `delivery = lmtp:127.0.0.1:PORT`
receives mail from smtplib and hands it to Dovecot, which files it into its
Maildir. Checked: each recipient's copy with smtpcertd's Received field and the
body intact; a recipient smtpcertd accepts but Dovecot does not know gets
Dovecot's 550 5.1.1 relayed; encryption at rest (`encrypt_at_rest = yes`, alice
has a certificate) stores an S/MIME message that `openssl cms -decrypt` opens
with alice's key, routing fields outside; a 4 MB message streams through
unchanged; Dovecot down -> 451 4.4.1, the client keeps the message.
The postmaster notice of a CERC submission goes through the same delivery and
lands in Dovecot's postmaster Maildir; while Dovecot is down it stays spooled.
"""

import hashlib
import os
import smtplib
import ssl
import time
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sctest  # noqa: E402
from dovecot_lmtp import DovecotLmtp  # noqa: E402

DOVECOT_USERS = ["alice@example.test", "bob@example.test", "erin@example.test"]
# carol is a local recipient for smtpcertd but unknown to Dovecot
LOCAL = DOVECOT_USERS + ["carol@example.test"]


def message(subject, body, extra=""):
    return ("From: <sender@remote.test>\r\nTo: <bob@example.test>\r\n"
            "Subject: %s\r\nMessage-ID: <%s@remote.test>\r\n%s"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s"
            % (subject, hashlib.sha1(subject.encode()).hexdigest()[:12], extra, body)).encode()


class DeliveryLmtpTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lmtp = DovecotLmtp(DOVECOT_USERS)
        cls.lmtp.start()
        try:
            cls.rcpts = os.path.join(cls.lmtp.dir, "recipients")
            with open(cls.rcpts, "w") as f:
                f.write("".join(a + "\n" for a in LOCAL))
            cls.d = sctest.Daemon({"delivery": "lmtp:127.0.0.1:%d" % cls.lmtp.port,
                                   "recipients": cls.rcpts, "encrypt_at_rest": "yes",
                                   "delivery_timeout": "10"},
                                  certs=("alice",))
        except BaseException:
            cls.lmtp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()
            cls.lmtp.cleanup()

    def send(self, rcpts, msg, sender="sender@remote.test"):
        """(code, text) of the reply to the message data."""
        c = smtplib.SMTP("127.0.0.1", self.d.port, timeout=60)
        self.addCleanup(c.close)
        c.ehlo("client.test")
        self.assertEqual(c.mail(sender)[0], 250)
        for r in rcpts:
            code, text = c.rcpt(r)
            self.assertEqual(code, 250, text)
        code, text = c.data(msg)
        c.quit()
        return code, text.decode(errors="replace")

    def newest(self, address, before):
        msgs = self.lmtp.messages(address)
        self.assertEqual(len(msgs), before + 1, "messages in %s's Maildir" % address)
        return msgs[-1]

    def test_a_two_recipients(self):
        nb = len(self.lmtp.messages("bob@example.test"))
        ne = len(self.lmtp.messages("erin@example.test"))
        code, text = self.send(["bob@example.test", "erin@example.test"],
                               message("two", "hello both\r\n.leading dot\r\n"))
        self.assertEqual(code, 250, text)
        for addr, before in (("bob@example.test", nb), ("erin@example.test", ne)):
            m = self.newest(addr, before)
            head, _, body = m.partition(b"\n\n")
            # Dovecot's own trace fields (no Delivered-To: one transaction for
            # both), then ours (RFC 5321 4.4), then the message
            self.assertIn(b"with LMTP", head)
            self.assertIn(b"Return-Path: <sender@remote.test>", head)
            self.assertIn(b"by " + sctest.HOSTNAME.encode() + b" (smtpcertd)", head)
            self.assertIn(b"Subject: two", head)
            self.assertEqual(body, b"hello both\n.leading dot\n")

    def test_b_unknown_at_dovecot(self):
        code, text = self.send(["carol@example.test"], message("carol", "x\r\n"))
        self.assertEqual(code, 550, text)
        self.assertIn("5.1.1", text)
        self.assertIn("carol@example.test", text)
        # one known and one unknown: the known one has it, the client is told
        # the other was not delivered (a permanent failure)
        nb = len(self.lmtp.messages("bob@example.test"))
        code, text = self.send(["bob@example.test", "carol@example.test"],
                               message("mixed", "y\r\n"))
        self.assertEqual(code // 100, 5, text)
        self.assertIn("carol@example.test", text)
        self.assertIn(b"Subject: mixed", self.newest("bob@example.test", nb))

    def test_c_encrypted_at_rest(self):
        na = len(self.lmtp.messages("alice@example.test"))
        code, text = self.send(["alice@example.test"],
                               message("for alice", "the secret body\r\n",
                                       "X-Private: inside\r\n"))
        self.assertEqual(code, 250, text)
        m = self.newest("alice@example.test", na)
        head = m.partition(b"\n\n")[0]
        self.assertIn(b"application/pkcs7-mime", head)
        self.assertIn(b"Subject: for alice", head)
        self.assertIn(b"From: <sender@remote.test>", head)
        self.assertNotIn(b"X-Private", head)
        self.assertNotIn(b"the secret body", m)
        path = os.path.join(self.lmtp.dir, "alice.eml")
        with open(path, "wb") as f:
            f.write(m)
        p = sctest.pki()
        r = subprocess.run(["openssl", "cms", "-decrypt", "-in", path,
                            "-recip", p.path("alice"), "-inkey", p.path("alice.key")],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"X-Private: inside", r.stdout)
        self.assertIn(b"the secret body", r.stdout)
        # bob's key cannot open it
        r = subprocess.run(["openssl", "cms", "-decrypt", "-in", path,
                            "-recip", p.path("bob"), "-inkey", p.path("bob.key")],
                           capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)

    def test_d_large_message(self):
        line = b"0123456789" * 7 + b"\r\n"
        body = line * (4 * 1024 * 1024 // len(line))
        nb = len(self.lmtp.messages("bob@example.test"))
        code, text = self.send(["bob@example.test"], message("large", "") + body)
        self.assertEqual(code, 250, text)
        m = self.newest("bob@example.test", nb)
        got = m.partition(b"\n\n")[2]
        self.assertEqual(hashlib.sha256(got).hexdigest(),
                         hashlib.sha256(body.replace(b"\r\n", b"\n")).hexdigest())

    def test_z_dovecot_down(self):
        self.lmtp.stop()
        code, text = self.send(["bob@example.test", "erin@example.test"],
                               message("down", "z\r\n"))
        self.assertEqual(code, 451, text)
        self.assertIn("4.4.1", text)


class NoticeLmtpTest(unittest.TestCase):
    """Postmaster notices of submissions through `delivery = lmtp:`."""

    PASSWORD = "alice-secret-1"

    def setUp(self):
        self.lmtp = DovecotLmtp(["postmaster@example.test"])
        self.lmtp.start()
        self.addCleanup(self.lmtp.cleanup)
        passwd = os.path.join(self.lmtp.dir, "passwd")
        sctest.write_passwd(passwd, {"alice@example.test": self.PASSWORD})
        self.d = sctest.Daemon({"delivery": "lmtp:127.0.0.1:%d" % self.lmtp.port,
                                "auth": "passwd:" + passwd, "submissions": "review",
                                "delivery_timeout": "5"}, certs=())
        self.addCleanup(self.d.cleanup)
        self.addCleanup(self.d.stop)

    def submit(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=30)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.login("alice@example.test", self.PASSWORD)
        code, text = s.docmd("CERC", "alice@example.test")
        self.assertEqual(code, 250, text)
        code, text = s.data(sctest.pki().pem("alice.chain"))
        self.assertEqual(code, 250, text)
        s.quit()
        return text.decode().split()[1]

    def spooled(self):
        d = os.path.join(self.d.tmp, "state", "notices")
        return sorted(n for n in os.listdir(d) if not n.startswith(".")) \
            if os.path.isdir(d) else []

    def wait_for(self, cond, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.1)
        return cond()

    def test_notice_delivered_over_lmtp(self):
        sid = self.submit()
        self.assertTrue(self.wait_for(
            lambda: self.lmtp.messages("postmaster@example.test")), self.lmtp.read_log())
        n = self.lmtp.messages("postmaster@example.test")[0]
        self.assertIn(b"Return-Path: <>", n)
        self.assertIn(sid.encode(), n)
        self.assertIn(b"alice@example.test", n)
        self.assertEqual(self.spooled(), [])

    def test_notice_kept_while_dovecot_down(self):
        self.lmtp.stop()
        sid = self.submit()
        self.assertTrue(self.wait_for(lambda: sid in self.spooled()))
        time.sleep(0.5)
        self.assertEqual(self.spooled(), [sid])


if __name__ == "__main__":
    unittest.main()
