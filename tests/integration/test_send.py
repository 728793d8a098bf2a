"""`smtpcert send`: the sendmail-compatible sender, end to end.

A recording submission server (tests/lib/mailsink.py: STARTTLS with the ssl
module, AUTH PLAIN) receives what `smtpcert send` submits; recipients'
certificates come from our own daemon (sctest.Daemon with alice's and bob's
certificates imported). What arrives is checked with independent tools:
`openssl cms -decrypt` with the recipient's key (and the sender's, for the
sent copy), `openssl cms -verify` against the test CA.
"""
import os
import subprocess
import time
import unittest

import sctest
from mailsink import MailSink

MSG = (b"From: Alice <alice@example.test>\n"
       b"To: Bob <bob@example.test>\n"
       b"Subject: the plan\n"
       b"\n"
       b"Meet at noon.\n"
       b".hidden line starting with a dot\n")


def run_measured(cmd, data, timeout=120):
    """subprocess.run, also sampling the child's peak RSS (VmHWM, KiB) from /proc
    while it runs: getrusage(RUSAGE_CHILDREN) would count the pages a forked
    child shares with this (large) Python process before exec."""
    import threading
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = {}
    th = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"),
                                                       p.communicate(data, timeout))))
    th.start()
    peak = 0
    while th.is_alive():
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for ln in f:
                    if ln.startswith("VmHWM:"):
                        peak = max(peak, int(ln.split()[1]))
        except (OSError, ValueError):
            pass
        th.join(0.02)
    r = subprocess.CompletedProcess(cmd, p.returncode, out.get("stdout"), out.get("stderr"))
    r.peak_kb = peak
    return r


class SendBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = sctest.pki()
        cls.smtpcert = sctest.binary("smtpcert")
        cls.daemon = sctest.Daemon(certs=("alice", "bob", "Mixed"))
        cls.tmp = sctest.mkdtemp("sc-send-")
        cls.pwfile = os.path.join(cls.tmp, "password")
        with open(cls.pwfile, "w") as f:
            f.write("s3cret\n")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.daemon.cleanup()

    def setUp(self):
        self.sink = MailSink(tls=(self.pki.path("server.chain.pem"), self.pki.path("server.key")),
                             users={"alice@example.test": "s3cret"}, require_auth=True)
        self.addCleanup(self.sink.stop)
        self.conf = self.write_config()

    def write_config(self, **extra):
        p = self.pki
        keys = {
            "from": "alice@example.test",
            "submit": "127.0.0.1:%d" % self.sink.port,
            "submit_user": "alice@example.test",
            "submit_password_file": self.pwfile,
            "ca_file": p.path("ca.pem"),
            "cert": p.chain("alice"),   # leaf + intermediate + root, sent with signatures
            "key": p.path("alice.key"),
            "known_certs": os.path.join(self.tmp, "known_%s" % self.id().split(".")[-1]),
            "cache_dir": "none",
            "timeout": "10",
        }
        keys.update(extra)
        path = os.path.join(self.tmp, "config_%s" % self.id().split(".")[-1])
        with open(path, "w") as f:
            for k, v in keys.items():
                if v is not None:
                    f.write("%s = %s\n" % (k, v))
        return path

    def send(self, args, message=MSG, lookup=True, config=None, measure=False):
        cmd = [self.smtpcert, "send", "--config", config or self.conf]
        if lookup:
            cmd += ["--server", "127.0.0.1:%d" % self.daemon.port]
        cmd += list(args)
        if measure:
            r = run_measured(cmd, message)
        else:
            r = subprocess.run(cmd, input=message, capture_output=True, timeout=60)
        r.err = r.stderr.decode("utf-8", "replace")
        return r

    def assertSent(self, r):
        self.assertEqual(r.returncode, 0, "smtpcert send failed: %s" % r.err)

    def openssl(self, args, data):
        r = subprocess.run(["openssl"] + args, input=data, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("openssl %s failed: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout

    def decrypt(self, data, who):
        return self.openssl(["cms", "-decrypt", "-recip", self.pki.path(who),
                             "-inkey", self.pki.path(who + ".key")], data)


class PlaintextTest(SendBase):
    """--encrypt never: what sendmail users rely on."""

    def test_submits_with_tls_and_auth(self):
        r = self.send(["--encrypt", "never", "bob@example.test"])
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertEqual(m.mail_from, "alice@example.test")
        self.assertEqual(m.rcpts, ["bob@example.test"])
        self.assertTrue(m.tls)
        self.assertEqual(m.user, "alice@example.test")
        self.assertIn("Subject: the plan\r\n", m.text)
        # the body's line starting with a dot arrives intact (dot-stuffing undone)
        self.assertIn("\r\n.hidden line starting with a dot\r\n", m.text)
        # Date and Message-ID were added; From was kept, not duplicated
        hdr = m.header()
        self.assertRegex(hdr, r"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n")
        self.assertRegex(hdr, r"\r\nMessage-ID: <[0-9a-f]{32}@example\.test>\r\n")
        self.assertEqual(hdr.count("From:"), 1)

    def test_t_takes_recipients_and_removes_bcc(self):
        msg = (b"To: bob@example.test\nCc: Carol <carol@example.test>\n"
               b"Bcc: dave@example.test,\n  erin@example.test\nSubject: t\n\nbody\n")
        r = self.send(["-t", "-i", "--encrypt", "never"], msg)
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertEqual(sorted(m.rcpts), ["bob@example.test", "carol@example.test",
                                           "dave@example.test", "erin@example.test"])
        self.assertNotIn("Bcc", m.text)
        self.assertNotIn("dave@", m.text)
        self.assertNotIn("erin@", m.text)
        # From added from the config
        self.assertIn("\r\nFrom: alice@example.test\r\n", m.header())

    def test_sendmail_options_are_accepted(self):
        # what mutt (-oem -oi --), cron (-FCronDaemon -i -B8BITMIME -oem) and
        # git send-email (-i -f) pass
        msg = b"Subject: cron\n\nline one\n.\nline after a lone dot\n"
        r = self.send(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-odi", "-f",
                       "alice@example.test", "-U", "--encrypt=never", "--",
                       "bob@example.test"], msg)
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertIn("\r\n.\r\nline after a lone dot\r\n", m.text)
        self.assertIn('From: "CronDaemon" <alice@example.test>', m.header())

    def test_linked_as_sendmail(self):
        # programs that run /usr/sbin/sendmail: a link named sendmail is `send`
        link = os.path.join(self.tmp, "sendmail")
        if not os.path.exists(link):
            os.symlink(self.smtpcert, link)
        r = subprocess.run([link, "-t", "-oi", "--config", self.conf, "--encrypt", "never"],
                           input=b"To: bob@example.test\nSubject: cron\n\noutput\n",
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.sink.wait_message()
        self.assertEqual(m.rcpts, ["bob@example.test"])
        self.assertIn("Subject: cron", m.text)

    def test_envelope_sender_forms(self):
        # -f root: a local user at this host; -f '<>': the null reverse-path
        r = self.send(["--encrypt", "never", "-f", "root", "bob@example.test"],
                      b"Subject: x\n\nhi\n")
        self.assertSent(r)
        m = self.sink.wait_message(1)
        self.assertRegex(m.mail_from, r"^root@[A-Za-z0-9.-]+$")
        self.assertIn("From: " + m.mail_from + "\r\n", m.header())
        r = self.send(["--encrypt", "never", "-f<>", "bob@example.test"],
                      b"From: alice@example.test\nSubject: x\n\nbounce\n")
        self.assertSent(r)
        self.assertEqual(self.sink.wait_message(2).mail_from, "")
        r = self.send(["--encrypt", "never", "-f", "a@@b", "bob@example.test"], lookup=False)
        self.assertEqual(r.returncode, 64, r.err)

    def test_lone_dot_ends_input_without_i(self):
        msg = b"Subject: dot\n\nbefore\n.\nafter\n"
        r = self.send(["--encrypt", "never", "bob@example.test"], msg)
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertIn("before\r\n", m.text)
        self.assertNotIn("after", m.text)

    def test_bare_user_is_qualified(self):
        r = self.send(["--encrypt", "never", "bob"], b"Subject: x\n\nhi\n")
        self.assertSent(r)
        self.assertEqual(self.sink.wait_message().rcpts, ["bob@example.test"])

    def test_headerless_input(self):
        r = self.send(["--encrypt", "never", "bob@example.test"], b"just a body\n")
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertIn("\r\nFrom: alice@example.test\r\n", "\r\n" + m.header())
        self.assertTrue(m.text.endswith("\r\n\r\njust a body\r\n"), m.text)

    def test_eight_bit_body(self):
        msg = "Subject: 8bit\nContent-Type: text/plain; charset=utf-8\n\nGrüße\n".encode()
        r = self.send(["--encrypt", "never", "bob@example.test"], msg)
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertIn("BODY=8BITMIME", m.params)
        # RFC 1870: the size on the wire, CRLF line ends included
        self.assertIn("SIZE=%d" % (len(m.data)), m.params.split())
        self.assertIn("Grüße", m.text)


class FailureTest(SendBase):
    """Exit codes sendmail users expect, and errors that name the recipient."""

    def test_usage(self):
        r = self.send([], lookup=False)
        self.assertEqual(r.returncode, 64, r.err)
        self.assertIn("no recipients", r.err)
        r = self.send(["--bogus", "bob@example.test"], lookup=False)
        self.assertEqual(r.returncode, 64, r.err)
        r = self.send(["-bs"], lookup=False)
        self.assertEqual(r.returncode, 64, r.err)
        r = self.send(["--encrypt", "sometimes", "bob@example.test"], lookup=False)
        self.assertEqual(r.returncode, 64, r.err)
        self.assertEqual(self.sink.commands, [])

    def test_unknown_user_refused(self):
        self.sink.rcpt_replies["nobody@example.test"] = "550 5.1.1 No such user"
        r = self.send(["--encrypt", "never", "bob@example.test", "nobody@example.test"])
        self.assertEqual(r.returncode, 67, r.err)
        self.assertIn("nobody@example.test: refused by 127.0.0.1: 550 5.1.1 No such user",
                      r.err)
        # all or nothing: bob did not get it either, and is named
        self.assertIn("bob@example.test: not sent", r.err)
        self.assertEqual(self.sink.messages, [])
        self.assertNotIn("DATA", self.sink.commands)

    def test_temporary_failure(self):
        self.sink.rcpt_replies["bob@example.test"] = "451 4.3.0 Try again later"
        r = self.send(["--encrypt", "never", "bob@example.test"])
        self.assertEqual(r.returncode, 75, r.err)
        self.assertIn("bob@example.test", r.err)

    def test_message_refused_after_data(self):
        self.sink.data_reply = "554 5.7.1 Spam"
        r = self.send(["--encrypt", "never", "bob@example.test"])
        self.assertEqual(r.returncode, 69, r.err)
        self.assertIn("554 5.7.1 Spam", r.err)

    def test_wrong_password(self):
        with open(os.path.join(self.tmp, "wrongpw"), "w") as f:
            f.write("nope\n")
        conf = self.write_config(submit_password_file=os.path.join(self.tmp, "wrongpw"))
        r = self.send(["--encrypt", "never", "bob@example.test"], config=conf)
        self.assertEqual(r.returncode, 77, r.err)
        self.assertIn("authentication", r.err)
        self.assertEqual(self.sink.messages, [])

    def test_server_down(self):
        conf = self.write_config(submit="127.0.0.1:%d" % sctest.free_port())
        r = self.send(["--encrypt", "never", "bob@example.test"], config=conf)
        self.assertEqual(r.returncode, 75, r.err)

    def test_bad_header(self):
        msg = b"Subject: " + b"x" * 2000 + b"\n\nbody\n"
        r = self.send(["--encrypt", "never", "bob@example.test"], msg)
        self.assertEqual(r.returncode, 65, r.err)
        self.assertEqual(self.sink.commands, [])

    def test_too_large(self):
        r = self.send(["--encrypt", "never", "--max-size", "100", "bob@example.test"],
                      b"Subject: x\n\n" + b"y" * 200 + b"\n")
        self.assertEqual(r.returncode, 65, r.err)
        self.assertEqual(self.sink.commands, [])

    def test_untrusted_submission_server(self):
        conf = self.write_config(ca_file=self.pki.path("other-ca.pem"))
        r = self.send(["--encrypt", "never", "bob@example.test"], config=conf)
        self.assertEqual(r.returncode, 69, r.err)
        # no password went to a server we could not authenticate
        self.assertFalse(any(c.startswith("AUTH") for c in self.sink.commands))


class EncryptTest(SendBase):
    """S/MIME: certificates fetched from our daemon, checked with openssl cms."""

    def test_bcc_recipient_gets_a_copy_of_its_own(self):
        # Bob is only in Bcc: the copy for the To recipient must not name him,
        # not even as a RecipientInfo of the encryption
        msg = (b"From: alice@example.test\nTo: Mixed.Case@Example.TEST\n"
               b"Bcc: bob@example.test\nSubject: bcc\n\nsecret plan\n")
        r = self.send(["--encrypt", "always", "-t"], msg)
        self.assertSent(r)
        main, copy = self.sink.wait_message(1), self.sink.wait_message(2)
        self.assertEqual(main.rcpts, ["Mixed.Case@Example.TEST"])
        self.assertEqual(copy.rcpts, ["bob@example.test"])
        for m in (main, copy):
            self.assertNotIn(b"bob@example.test", m.data)
            self.assertNotIn(b"secret plan", m.data)
            # the sender can read both
            self.assertIn(b"secret plan", self.decrypt(m.data, "alice"))
        self.assertIn(b"secret plan", self.decrypt(main.data, "Mixed"))
        self.assertIn(b"secret plan", self.decrypt(copy.data, "bob"))
        with self.assertRaises(AssertionError):
            self.decrypt(main.data, "bob")
        with self.assertRaises(AssertionError):
            self.decrypt(copy.data, "Mixed")

    def test_large_message_streams(self):
        # 24 MB through send (spool, header, lookup, encryption, DATA): the
        # process never holds the message (RFC 5321 limits aside, memory must
        # not grow with it)
        body = b"".join(b"line %07d of a long message, padded to some length ....\n" % i
                        for i in range(400000))
        msg = MSG + body
        r = self.send(["--encrypt", "always", "--max-size", str(64 << 20),
                       "bob@example.test"], msg, measure=True)
        self.assertSent(r)
        # peak RSS (VmHWM) of smtpcert send; ASan keeps freed memory in quarantine
        # (about 9 MiB measured; holding the 24 MB message would pass 30 MiB)
        limit = 200 if sctest.sanitized(self.smtpcert) else 24
        self.assertLess(r.peak_kb, limit * 1024, "smtpcert send peaked at %d KiB" % r.peak_kb)
        self.assertGreater(r.peak_kb, 0)
        m = self.sink.wait_message(timeout=60)
        self.assertGreater(len(m.data), len(body))
        plain = self.decrypt(m.data, "bob")
        self.assertIn(b"line 0399999 of a long message", plain)

    def test_always_refuses_recipient_without_certificate(self):
        r = self.send(["--encrypt", "always", "bob@example.test", "nobody@example.test"])
        self.assertEqual(r.returncode, 67, r.err)
        self.assertIn("nobody@example.test", r.err)
        self.assertIn("nothing was sent", r.err)
        self.assertEqual(self.sink.connections, 0)
        self.assertEqual(self.sink.messages, [])

    def test_opportunistic_falls_back_to_plaintext(self):
        r = self.send(["--encrypt", "opportunistic", "bob@example.test",
                       "nobody@example.test"])
        self.assertSent(r)
        self.assertIn("plaintext", r.err)
        self.assertIn("nobody@example.test", r.err)
        m = self.sink.wait_message()
        self.assertIn(b"Meet at noon.", m.data)

    def test_sign_only(self):
        r = self.send(["--encrypt", "never", "--sign", "bob@example.test"])
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertIn("multipart/signed", m.header())
        out = self.openssl(["cms", "-verify", "-CAfile", self.pki.path("ca.pem")], m.data)
        self.assertIn(b"Meet at noon.", out)

    def test_always_encrypts_to_recipient_and_sender(self):
        r = self.send(["--encrypt", "always", "bob@example.test"])
        self.assertSent(r)
        m = self.sink.wait_message()
        hdr = m.header()
        self.assertIn("application/pkcs7-mime", hdr)
        for field in ("From: Alice <alice@example.test>", "To: Bob <bob@example.test>",
                      "Date: ", "Message-ID: "):
            self.assertIn(field, hdr)
        self.assertNotIn(b"Meet at noon", m.data)
        for who in ("bob", "alice"):
            plain = self.decrypt(m.data, who)
            self.assertIn(b"Meet at noon.", plain)
            self.assertIn(b".hidden line starting with a dot", plain)

    def test_opportunistic_encrypts_when_all_have_certificates(self):
        r = self.send(["-t"])   # default mode from the config: opportunistic
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertNotIn(b"Meet at noon", m.data)
        self.assertIn(b"Meet at noon.", self.decrypt(m.data, "bob"))

    def test_sign_then_encrypt(self):
        r = self.send(["--encrypt", "always", "--sign", "bob@example.test"])
        self.assertSent(r)
        m = self.sink.wait_message()
        inner = self.decrypt(m.data, "bob")
        self.assertIn(b"multipart/signed", inner)
        out = self.openssl(["cms", "-verify", "-CAfile", self.pki.path("ca.pem")], inner)
        self.assertIn(b"Meet at noon.", out)


class MxTest(SendBase):
    """Without a submission server: straight to the recipient domain's MX hosts,
    found through a private DNSSEC-signed zone (tests/lib/dnszone.py) with the
    lookup's resolver; the mail sink plays the MX (--mx-port)."""

    def zone(self, records):
        from dnszone import Zone
        z = Zone("example.test", records, signed=True)
        self.addCleanup(z.cleanup)
        return z.start()

    def send_mx(self, z, args, message=MSG):
        conf = self.write_config(submit=None, submit_user=None, submit_password_file=None)
        self.sink.require_auth = False   # an MX takes mail for its domain without AUTH
        return self.send(["--resolver", z.resolver, "--dnssec-anchor", z.anchor,
                          "--mx-port", str(self.sink.port)] + list(args), message,
                         config=conf)

    def test_direct_to_mx_encrypted(self):
        z = self.zone(["@ MX 10 mx", "mx A 127.0.0.1"])
        r = self.send_mx(z, ["-v", "--encrypt", "always", "bob@example.test",
                             "Mixed.Case@Example.TEST"])
        self.assertSent(r)
        self.assertIn("trying mx.example.test[127.0.0.1]", r.err)
        # bob (in To) gets the main copy; Mixed, only on the command line, a
        # copy of its own; each over opportunistic TLS, without AUTH
        main, copy = self.sink.wait_message(1), self.sink.wait_message(2)
        self.assertEqual(main.rcpts, ["bob@example.test"])
        self.assertEqual(copy.rcpts, ["Mixed.Case@Example.TEST"])
        for m in (main, copy):
            self.assertTrue(m.tls)
            self.assertIsNone(m.user)
        self.assertIn(b"Meet at noon.", self.decrypt(main.data, "bob"))
        self.assertIn(b"Meet at noon.", self.decrypt(copy.data, "Mixed"))

    def test_one_transaction_per_domain(self):
        z = self.zone(["@ MX 10 mx", "mx A 127.0.0.1"])
        msg = b"To: bob@example.test, Mixed.Case@Example.TEST\nSubject: x\n\nhi\n"
        r = self.send_mx(z, ["--encrypt", "never", "-t"], msg)
        self.assertSent(r)
        m = self.sink.wait_message()
        self.assertEqual(m.rcpts, ["bob@example.test", "Mixed.Case@Example.TEST"])
        self.assertEqual(len(self.sink.messages), 1)

    def test_second_mx_when_first_is_down(self):
        # the preferred host's address has nothing listening
        z = self.zone(["@ MX 5 dead", "@ MX 10 mx", "dead A 127.0.0.2", "mx A 127.0.0.1"])
        r = self.send_mx(z, ["--encrypt", "never", "bob@example.test"])
        self.assertSent(r)
        self.assertEqual(self.sink.wait_message().rcpts, ["bob@example.test"])

    def test_null_mx_is_no_host(self):
        z = self.zone(["@ MX 0 ."])
        r = self.send_mx(z, ["--encrypt", "never", "bob@example.test"])
        self.assertEqual(r.returncode, 68, r.err)
        self.assertIn("bob@example.test", r.err)
        self.assertEqual(self.sink.connections, 0)


class EndToEndTest(unittest.TestCase):
    """The issue's scenario: Alice's `smtpcert send` fetches Bob's certificate
    from smtpcertd, encrypts, and submits to the same smtpcertd (mail reception,
    `delivery = maildir:`); the message lands encrypted in Bob's Maildir and
    `smtpcert decrypt` with Bob's key recovers the plaintext."""

    @classmethod
    def setUpClass(cls):
        cls.pki = sctest.pki()
        cls.smtpcert = sctest.binary("smtpcert")
        cls.d = sctest.Daemon(certs=("alice", "bob"), start=False)
        cls.mail = os.path.join(cls.d.tmp, "mail")
        rcpts = os.path.join(cls.d.tmp, "recipients")
        with open(rcpts, "w") as f:
            f.write("alice@example.test\nbob@example.test\n")
        cls.d.overrides.update({"delivery": "maildir:%s/%%d/%%n" % cls.mail,
                                "recipients": rcpts})
        cls.d.write_config()
        cls.d.start()
        cls.tmp = sctest.mkdtemp("sc-send-e2e-")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()

    def test_encrypted_into_maildir(self):
        conf = os.path.join(self.tmp, "config")
        with open(conf, "w") as f:
            f.write("from = alice@example.test\n"
                    "submit = 127.0.0.1:%d\n"
                    "ca_file = %s\n"
                    "cert = %s\n"
                    "known_certs = %s\n"
                    "cache_dir = none\n"
                    % (self.d.port, self.pki.path("ca.pem"), self.pki.chain("alice"),
                       os.path.join(self.tmp, "known")))
        r = subprocess.run([self.smtpcert, "send", "--config", conf, "--encrypt", "always",
                            "--server", "127.0.0.1:%d" % self.d.port, "-v", "-t"],
                           input=MSG, capture_output=True, timeout=60)
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, err)
        new = os.path.join(self.mail, "example.test", "bob", "new")
        deadline = time.time() + 10
        while time.time() < deadline and not (os.path.isdir(new) and os.listdir(new)):
            time.sleep(0.1)
        files = os.listdir(new)
        self.assertEqual(len(files), 1, files)
        with open(os.path.join(new, files[0]), "rb") as f:
            stored = f.read()
        self.assertIn(b"application/pkcs7-mime", stored)
        self.assertNotIn(b"Meet at noon", stored)
        self.assertIn(b"To: Bob <bob@example.test>", stored)
        r = subprocess.run([self.smtpcert, "decrypt", "--key", self.pki.path("bob.key"),
                            "--cert", self.pki.path("bob")], input=stored,
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace"))
        self.assertIn(b"Meet at noon.", r.stdout)
        self.assertIn(b".hidden line starting with a dot", r.stdout)
        self.assertIn(b"Subject: the plan", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
