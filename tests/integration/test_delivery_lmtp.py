"""Delivery over LMTP into a real Dovecot (Debian's dovecot-lmtpd), run privately
by tests/lib/dovecot_lmtp.py: smtpcertd with `delivery = lmtp:127.0.0.1:PORT`
receives mail from smtplib and hands it to Dovecot, which files it into its
Maildir. Checked: each recipient's copy with smtpcertd's Received field and the
body intact; a recipient smtpcertd accepts but Dovecot does not know gets
Dovecot's 550 5.1.1 relayed; encryption at rest (`encrypt_at_rest = yes`, alice
has a certificate) stores an S/MIME message that `openssl cms -decrypt` opens
with alice's key, routing fields outside; a 4 MB message streams through
unchanged; Dovecot down -> 451 4.4.1, the client keeps the message.
"""

import hashlib
import os
import smtplib
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


if __name__ == "__main__":
    unittest.main()
