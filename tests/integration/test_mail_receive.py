"""Mail reception (issue 5, standalone): the real smtpcertd with `delivery =
maildir:TMP/mail/%d/%n`, driven by swaks and smtplib and by raw sockets.

Covers: delivery into the recipient's Maildir (new/, Received field with the
protocol and TLS details, "for" only with one recipient), several recipients,
unknown user 550 5.1.1, postmaster/abuse/<Postmaster>, relay attempts (other
domain, gateway domain, address literal: 554 5.7.1), max_recipients 452 4.5.3,
MAIL parameters (SIZE over the limit at MAIL: 552 5.3.4; unknown: 555),
SMTP smuggling attempts ("\\n.\\n", "\\r\\n.\\n", "\\n.\\r\\n", "\\r.\\r": never an
end of data, the message is refused with 554 5.6.11 and nothing is stored, the
session stays in sync), a 20 MB message streamed (daemon RSS stays small), the
size limit while reading (552 after the data), kill -9 during DATA (nothing in
new/ or tmp/, no spool file left), pipelining of MAIL/RCPT/DATA, BDAT (RFC
3030, refused BDAT skips its chunk), the grep-able log lines, passwd: users as
recipients (a user added to the file receives mail without a reload), and encryption
at rest (a recipient with a valid certificate gets an S/MIME enveloped copy
that `openssl cms -decrypt` opens; a recipient without one, or with a revoked
one, gets plaintext; an already-encrypted message is stored as it came).
"""
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import time
import unittest

import sctest

BODY = "Subject: hello\r\nFrom: sender@client.test\r\nTo: alice@example.test\r\n\r\nHello Alice.\r\n"


def maildir_files(root, domain, user, sub="new"):
    d = os.path.join(root, domain, user, sub)
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def read(path):
    """A stored message with CRLF line ends (a Maildir holds LF ones)."""
    with open(path, "rb") as f:
        return f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def need(binary):
    if not shutil.which(binary):
        raise AssertionError("%s is not installed (scripts/install-deps installs it)" % binary)


class MailBase(unittest.TestCase):
    EXTRA = {}

    @classmethod
    def setUpClass(cls):
        cls.d = sctest.Daemon(start=False)
        cls.mail = os.path.join(cls.d.tmp, "mail")
        rcpts = os.path.join(cls.d.tmp, "recipients")
        with open(rcpts, "w") as f:
            f.write("# local recipients\nalice@example.test\nbob@example.test\n"
                    "carol@example.test\nFrank@Example.Test\n")
        cfg = {"delivery": "maildir:%s/%%d/%%n" % cls.mail, "recipients": rcpts,
               "max_recipients": "5", "max_message_size": "22000000"}
        cfg.update(cls.EXTRA)
        cls.d.overrides.update(cfg)
        cls.d.write_config()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()

    def client(self):
        c = self.d.client()
        self.assertEqual(c.ehlo("client.test").code, 250)
        return c

    def envelope(self, c, rcpts=("alice@example.test",), mail="MAIL FROM:<sender@client.test>"):
        self.assertEqual(c.cmd(mail).code, 250)
        for r in rcpts:
            self.assertEqual(c.cmd("RCPT TO:<%s>" % r).code, 250, r)


class TestDelivery(MailBase):
    def test_swaks_plain_and_tls(self):
        need("swaks")
        before = len(maildir_files(self.mail, "example.test", "alice"))
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.d.port),
                            "--helo", "client.test", "--from", "sender@client.test",
                            "--to", "alice@example.test", "--body", "Hello from swaks",
                            "--h-Subject", "swaks test"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"<[-~] +250 2\.0\.0 \S+ delivered")
        # STARTTLS with smtplib (swaks needs Net::SSLeay for --tls)
        with sctest.smtp(self.d.port) as s:
            s.ehlo("client.test")
            s.starttls(context=sctest.tls_context())
            s.ehlo("client.test")
            s.sendmail("sender@client.test", ["alice@example.test"], "Subject: tls\r\n\r\nOver TLS\r\n")
        files = maildir_files(self.mail, "example.test", "alice")
        self.assertEqual(len(files), before + 2)
        texts = [read(f) for f in files]
        plain = [t for t in texts if b"Hello from swaks" in t][0]
        tls = [t for t in texts if b"Over TLS" in t][0]
        # RFC 5321 4.4: our field first, one recipient: "for"
        self.assertRegex(plain, rb"^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n"
                                rb"\tby test\.example \(smtpcertd\) with ESMTP\r\n\tid \S+\r\n"
                                rb"\tfor <alice@example\.test>; \w{3}, \d\d \w{3} \d{4} ")
        self.assertIn(b"Subject: swaks test", plain)
        self.assertRegex(tls, rb"with ESMTPS\r\n\t\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)")
        self.assertIsNotNone(self.d.wait_log(r"to=<alice@example\.test> result=250 status=2\.0\.0 delivered"))
        self.assertIsNotNone(self.d.wait_log(r"from=<sender@client\.test> nrcpt=1 size=\d+ result=250"))

    def test_smtplib_several_recipients(self):
        with sctest.smtp(self.d.port) as s:
            s.ehlo("client.test")
            self.assertIn("chunking", s.esmtp_features)
            self.assertEqual(s.esmtp_features["size"], "22000000")
            refused = s.sendmail("sender@client.test", ["bob@example.test", "frank@example.test",
                                                        "Bob@EXAMPLE.test"],
                                 "Subject: two\r\n\r\nfor both\r\n")
            self.assertEqual(refused, {})
        bob = maildir_files(self.mail, "example.test", "bob")
        frank = maildir_files(self.mail, "example.test", "frank")
        self.assertEqual(len(bob), 1, "duplicate recipient delivered once")
        self.assertEqual(len(frank), 1)
        self.assertNotIn(b"for <", read(bob[0]), "no 'for' clause with several recipients")
        self.assertIn(b"for both", read(frank[0]))

    def test_recipients_rules(self):
        with self.client() as c:
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").last, "503 5.5.1 Need MAIL before RCPT")
            self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)  # null reverse-path
            r = c.cmd("RCPT TO:<nobody@example.test>")
            self.assertEqual(r.last, "550 5.1.1 User unknown")
            for ok in ("postmaster@example.test", "abuse@example.test", "Postmaster",
                       "ALICE@example.test"):
                self.assertEqual(c.cmd("RCPT TO:<%s>" % ok).code, 250, ok)
            for relay in ("someone@other.test", "grace@gw.test", "alice@[127.0.0.1]",
                          "@hop.test:x@other.test"):
                r = c.cmd("RCPT TO:<%s>" % relay)
                self.assertEqual(r.code, 554, relay)
                self.assertTrue(r.last.startswith("554 5.7.1 Relay access denied"), r.last)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<carol@example.test>").code, 250)
            # five accepted (alice twice is one), then the limit
            self.assertEqual(c.cmd("RCPT TO:<frank@example.test>").code, 452)
            self.assertEqual(c.cmd("RSET").code, 250)
            self.assertEqual(c.cmd("DATA").code, 503)
        self.assertIsNotNone(self.d.wait_log(r"to=<someone@other\.test> rejected: relay denied"))
        self.assertIsNotNone(self.d.wait_log(r"to=<nobody@example\.test> rejected: unknown user"))

    def test_mail_parameters(self):
        with self.client() as c:
            r = c.cmd("MAIL FROM:<a@client.test> SIZE=22000001")
            self.assertEqual(r.last, "552 5.3.4 Message size exceeds fixed maximum message size (22000000)")
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test> RET=FULL").code, 555)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test> BODY=BINARYMIME").code, 555)
            self.assertEqual(c.cmd("MAIL FROM:a@client.test").code, 501)
            self.assertEqual(c.cmd("MAIL FROM:<j\u00f6rg@client.test>").code, 553)
            r = c.cmd("MAIL FROM:<j\u00f6rg@client.test> SIZE=100 BODY=8BITMIME SMTPUTF8 AUTH=<>")
            self.assertEqual(r.code, 250, r.last)
            self.assertEqual(c.cmd("MAIL FROM:<b@client.test>").code, 503)


class TestSmuggling(MailBase):
    VARIANTS = {
        "lf-dot-lf": b"\n.\n",
        "crlf-dot-lf": b"\r\n.\n",
        "lf-dot-crlf": b"\n.\r\n",
        "cr-dot-cr": b"\r.\r",
    }

    def test_smuggling_variants(self):
        for name, end in self.VARIANTS.items():
            with self.subTest(name), self.client() as c:
                self.envelope(c, ("carol@example.test",))
                self.assertEqual(c.cmd("DATA").code, 354)
                smuggled = (b"Subject: first\r\n\r\nfirst" + end +
                            b"MAIL FROM:<evil@client.test>\r\nRCPT TO:<bob@example.test>\r\n"
                            b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
                c.send(smuggled)
                r = c.reply()
                self.assertEqual(r.code, 554, "%s: %r" % (name, r))
                self.assertTrue(r.last.startswith("554 5.6.11"), r.last)
                # exactly one reply: nothing of the data was a command
                self.assertEqual(c.cmd("NOOP").last, "250 2.0.0 OK")
        self.assertEqual(maildir_files(self.mail, "example.test", "carol"), [])
        self.assertEqual(maildir_files(self.mail, "example.test", "bob"), [])
        self.assertIsNotNone(self.d.wait_log(r"status=5\.6\.11 rejected reason=\"bare-lf\""))
        self.assertIsNotNone(self.d.wait_log(r"status=5\.6\.11 rejected reason=\"bare-cr\""))

    def test_dot_stuffing(self):
        with self.client() as c:
            self.envelope(c, ("frank@example.test",))
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(b"Subject: dots\r\n\r\n..leading\r\n.\r\n")
            self.assertEqual(c.reply().code, 250)
        files = maildir_files(self.mail, "example.test", "frank")
        self.assertEqual(len(files), 1)
        self.assertTrue(read(files[0]).endswith(b"\r\n\r\n.leading\r\n"))


class TestBigAndPipelining(MailBase):
    def test_20mb_streamed(self):
        line = b"x" * 998 + b"\r\n"
        n = 20 * 1024 * 1024 // len(line)
        rss0 = self.d.rss_kb()
        peak = rss0
        with self.client() as c:
            self.envelope(c, ("bob@example.test",))
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(b"Subject: big\r\n\r\n")
            chunk = line * 256
            for i in range(0, n, 256):
                c.send(chunk)
                if i % (256 * 16) == 0:
                    peak = max(peak, self.d.rss_kb())
            c.send(b".\r\n")
            r = c.reply(timeout=60)
            self.assertEqual(r.code, 250, r)
            peak = max(peak, self.d.rss_kb())
        files = maildir_files(self.mail, "example.test", "bob")
        self.assertEqual(len(files), 1)
        self.assertGreater(os.path.getsize(files[0]), 20 * 1024 * 1024 - 2000)
        # streamed: the daemon never holds the message (under ASan its
        # allocator keeps freed buffers in quarantine, under valgrind its
        # freed-block queue (--freelist-vol, 20 MB) and shadow memory count
        # too: only a loose bound)
        with open("/proc/%d/maps" % self.d.pid) as f:
            asan = "libasan" in f.read()
        limit = (64 if asan or sctest.VALGRIND else 8) * 1024
        self.assertLess(peak - rss0, limit, "RSS grew by %d KiB" % (peak - rss0))

    def test_size_limit_while_reading(self):
        with self.client() as c:
            self.envelope(c, ("carol@example.test",))
            self.assertEqual(c.cmd("DATA").code, 354)
            block = (b"y" * 998 + b"\r\n") * 1024
            for _ in range(22):
                c.send(block)
            c.send(b".\r\n")
            r = c.reply(timeout=60)
            self.assertEqual(r.last, "552 5.3.4 Message size exceeds fixed maximum message size")
            self.assertEqual(c.cmd("NOOP").code, 250)
        self.assertEqual(maildir_files(self.mail, "example.test", "carol"), [])

    def test_pipelining(self):
        with self.client() as c:
            c.send(b"MAIL FROM:<p@client.test>\r\nRCPT TO:<frank@example.test>\r\n"
                   b"RCPT TO:<nobody@example.test>\r\nDATA\r\n")
            codes = [c.reply().code for _ in range(4)]
            self.assertEqual(codes, [250, 250, 550, 354])
            c.send(b"Subject: piped\r\n\r\npiped\r\n.\r\nMAIL FROM:<q@client.test>\r\n"
                   b"RCPT TO:<nobody@example.test>\r\nDATA\r\nNOOP\r\n")
            codes = [c.reply().code for _ in range(5)]
            self.assertEqual(codes, [250, 250, 550, 554, 250])
        self.assertTrue(any(b"piped" in read(f)
                            for f in maildir_files(self.mail, "example.test", "frank")))

    def test_bdat(self):
        with self.client() as c:
            # refused BDAT: its chunk is read and dropped, the session is in sync
            c.send(b"BDAT 10\r\nNOOP\r\nXX\r\n")
            self.assertEqual(c.reply().code, 503)
            self.assertEqual(c.cmd("NOOP").code, 250)
            self.envelope(c, ("alice@example.test",))
            head, tail = b"Subject: chunks\r\n\r\n", b"line1\r\n.\r\n\r\n"
            c.send(b"BDAT %d\r\n" % len(head) + head)
            self.assertEqual(c.reply().last, "250 2.0.0 %d octets received" % len(head))
            c.send(b"BDAT %d LAST\r\n" % len(tail) + tail)
            r = c.reply()
            self.assertEqual(r.code, 250, r)
            self.assertEqual(c.cmd("DATA").code, 503)  # the transaction is over
        texts = [read(f) for f in maildir_files(self.mail, "example.test", "alice")]
        self.assertTrue(any(t.endswith(b"Subject: chunks\r\n\r\nline1\r\n.\r\n\r\n") for t in texts))


class TestKill(unittest.TestCase):
    def test_kill_during_data(self):
        d = sctest.Daemon(start=False)
        try:
            mail = os.path.join(d.tmp, "mail")
            d.overrides.update({"delivery": "maildir:%s/%%d/%%n" % mail})
            d.write_config()
            d.start()
            c = d.client()
            c.ehlo()
            self.assertEqual(c.cmd("MAIL FROM:<k@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<postmaster@example.test>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(b"Subject: half\r\n\r\n" + (b"z" * 500 + b"\r\n") * 2000)
            time.sleep(0.3)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            c.close()
            for sub in ("new", "tmp", "cur"):
                self.assertEqual(maildir_files(mail, "example.test", "postmaster", sub), [], sub)
            leftovers = [f for f in os.listdir(os.path.join(d.tmp, "state")) if "spool" in f]
            self.assertEqual(leftovers, [])
        finally:
            d.stop(check=False)
            d.cleanup()


class TestPasswdUsers(unittest.TestCase):
    def test_passwd_users_receive_mail(self):
        d = sctest.Daemon(start=False)
        try:
            pw = os.path.join(d.tmp, "passwd")
            sctest.write_passwd(pw, {"dora@example.test": "secret1"})
            d.overrides.update({"delivery": "maildir:%s/mail/%%d/%%n" % d.tmp,
                                "auth": "passwd:" + pw})
            d.write_config()
            d.start()
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
                self.assertEqual(c.cmd("RCPT TO:<Dora@example.test>").code, 250)
                self.assertEqual(c.cmd("RCPT TO:<eve@example.test>").code, 550)
                # a user added to the file receives mail without a reload
                time.sleep(1.1)
                sctest.write_passwd(pw, {"dora@example.test": "secret1",
                                         "eve@example.test": "secret2"})
                time.sleep(1.1)
                self.assertEqual(c.cmd("RCPT TO:<eve@example.test>").code, 250)
        finally:
            d.stop(check=False)
            d.cleanup()


class TestEncryptAtRest(MailBase):
    EXTRA = {"encrypt_at_rest": "yes"}

    def decrypt(self, data, name):
        p = sctest.pki()
        r = subprocess.run(["openssl", "cms", "-decrypt", "-recip", p.path(name),
                            "-inkey", p.path(name + ".key")], input=data,
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def new_file(self, user, before):
        files = [f for f in maildir_files(self.mail, "example.test", user) if f not in before]
        self.assertEqual(len(files), 1, user)
        return read(files[0])

    def test_encrypted_for_certificate_holder_only(self):
        secret = "Subject: secret\r\nFrom: s@client.test\r\n\r\nThe secret text.\r\n"
        before = {u: maildir_files(self.mail, "example.test", u) for u in ("alice", "carol", "frank")}
        with sctest.smtp(self.d.port) as s:
            s.sendmail("s@client.test", ["alice@example.test", "carol@example.test",
                                         "frank@example.test"], secret)
        alice = self.new_file("alice", before["alice"])
        self.assertNotIn(b"The secret text.", alice)
        self.assertIn(b"application/pkcs7-mime", alice)
        self.assertIn(b"Received: from", alice)  # routing headers outside
        self.assertIn(b"The secret text.", self.decrypt(alice, "alice"))
        # carol's certificate is revoked (crl.pem): never used; frank has none
        for user in ("carol", "frank"):
            text = self.new_file(user, before[user])
            self.assertIn(b"The secret text.", text, user)
        self.assertIsNotNone(self.d.wait_log(r"to=<alice@example\.test> result=250 status=\S+ delivered encrypted=yes"))

    def test_already_encrypted_stored_as_is(self):
        p = sctest.pki()
        inner = b"Subject: inner\r\n\r\nAlready encrypted.\r\n"
        r = subprocess.run(["openssl", "cms", "-encrypt", "-aes256", p.path("alice")],
                           input=inner, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        enc = r.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        msg = b"From: s@client.test\r\nSubject: pre\r\n" + enc
        before = maildir_files(self.mail, "example.test", "alice")
        with sctest.smtp(self.d.port) as s:
            s.sendmail("s@client.test", ["alice@example.test"], msg)
        stored = self.new_file("alice", before)
        self.assertTrue(stored.endswith(msg), "stored as it came")
        self.assertIn(b"Already encrypted.", self.decrypt(stored, "alice"))


if __name__ == "__main__":
    unittest.main()
