"""STARTTLS (RFC 3207): certificates fetched over TLS by `openssl s_client` and by
Python's ssl module, TLS 1.2 as the floor, the command-injection defence
(CVE-2011-0411, RFC 3207 4.2), the session reset after the handshake (RFC 3207 4.2)
and the EHLO keywords before and after TLS."""
import ssl
import unittest
import warnings

import sctest
from sctest import Daemon, pki


def keywords(reply):
    return [ln.split()[0].upper() for ln in reply.lines[1:]]


class StartTlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.d = Daemon(certs=("alice", "bob"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def tls_session(self):
        c = self.d.client()
        self.addCleanup(c.close)
        c.ehlo()
        c.starttls(sctest.tls_context())
        return c

    def test_s_client_fetches_alice(self):
        r = sctest.s_client(self.d.port, ["EHLO me", "CERT alice@example.test", "QUIT"],
                            cafile=self.pki.path("ca"))
        self.assertEqual(r.returncode, 0, r.stderr)
        replies = sctest.replies_from_text(r.stdout)
        certs = [x for x in replies if x.certs()]
        self.assertEqual(len(certs), 1, r.stdout)
        self.assertEqual(certs[0].ders()[0], self.pki.der("alice"))
        self.assertEqual(certs[0].last, "250 2.0.0 OK")
        self.assertTrue(any(x.code == 221 for x in replies), r.stdout)

    def test_s_client_cers_chain(self):
        r = sctest.s_client(self.d.port, ["EHLO me", "CERS bob@example.test", "QUIT"],
                            cafile=self.pki.path("ca"))
        self.assertEqual(r.returncode, 0, r.stderr)
        ders = [sctest.pem_to_der(p) for p in sctest.pem_certs(
            "\n".join(ln[4:] for ln in r.stdout.splitlines() if ln.startswith("250")))]
        self.assertGreaterEqual(len(ders), 2, r.stdout)
        self.assertEqual(ders[0], self.pki.der("bob"))
        self.assertEqual(ders[1], self.pki.der("intermediate"))

    def test_server_certificate_verifies(self):
        # the chain in tls_cert_file (leaf + intermediate) verifies against the root
        c = self.tls_session()
        peer = c.sock.getpeercert(binary_form=True)
        self.assertEqual(peer, self.pki.der("server"))
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))

    def test_tls_1_1_refused(self):
        # The client is allowed to offer TLS 1.1 (SECLEVEL=0); the server must refuse.
        r = sctest.s_client(self.d.port, ["EHLO me", "CERT alice@example.test", "QUIT"],
                            args=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("BEGIN CERTIFICATE", r.stdout)

    def test_tls_1_1_refused_python(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ctx.set_ciphers("DEFAULT@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError) as e:
            self.fail("local OpenSSL cannot offer TLS 1.1: %s" % e)
        with self.d.client() as c:
            c.ehlo()
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                c.starttls(ctx)

    def test_starttls_injection_not_answered(self):
        with self.d.client() as c:
            c.ehlo()
            # STARTTLS and a CERT in one write: the CERT must be discarded.
            c.send(b"STARTTLS\r\nCERT alice@example.test\r\n")
            r = c.reply()
            self.assertEqual(r.last, "220 2.0.0 Ready to start TLS")
            # nothing may follow the 220 in plaintext
            self.assertEqual(c.buf, b"", "plaintext after 220: %r" % c.buf)
            c.wrap_tls(sctest.tls_context())
            c.send(b"EHLO after.test\r\n")
            r = c.reply()
            self.assertEqual(r.code, 250, r)
            self.assertTrue(r.lines[0].startswith(sctest.HOSTNAME), r)
            self.assertNotIn(b"CERTIFICATE", r.raw, "injected CERT was answered")
            # and nothing else is queued behind the EHLO reply
            self.assertEqual(c.pending(0.5), b"")

    def test_starttls_injection_of_several_commands_discarded(self):
        # Everything after STARTTLS in the same read is dropped, QUIT included:
        # the connection must survive into TLS.
        with self.d.client() as c:
            c.ehlo()
            c.send(b"STARTTLS\r\nNOOP\r\nCERT alice@example.test\r\nQUIT\r\n")
            r = c.reply()
            self.assertEqual(r.code, 220, r)
            self.assertEqual(c.buf, b"")
            c.wrap_tls(sctest.tls_context())
            r = c.cmd("EHLO after.test")
            self.assertEqual(r.code, 250, r)
            self.assertEqual(c.cmd("NOOP").last, "250 2.0.0 OK")

    def test_commands_before_starttls_in_same_write_are_answered(self):
        # RFC 2920: the commands before STARTTLS in a group are answered in order;
        # only what follows STARTTLS is discarded
        with self.d.client() as c:
            c.send(b"EHLO a.test\r\nNOOP\r\nSTARTTLS\r\nCERT alice@example.test\r\n")
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.reply().last, "250 2.0.0 OK")
            self.assertEqual(c.reply().last, "220 2.0.0 Ready to start TLS")
            self.assertEqual(c.buf, b"")
            c.wrap_tls(sctest.tls_context())
            self.assertEqual(c.cmd("EHLO b.test").code, 250)
            self.assertEqual(c.pending(0.3), b"")

    def test_pipelined_cers_over_tls(self):
        # ~100 kB of replies in one flush: partial TLS writes must not lose or
        # reorder anything
        c = self.tls_session()
        c.ehlo()
        c.send(b"CERS alice@example.test\r\nCERS bob@example.test\r\n" * 10)
        for i in range(20):
            r = c.reply()
            self.assertEqual(r.code, 250, r)
            self.assertEqual(r.ders()[0], self.pki.der("alice" if i % 2 == 0 else "bob"), i)
            self.assertEqual(r.ders()[1], self.pki.der("intermediate"))

    def test_long_line_inside_tls(self):
        c = self.tls_session()
        c.ehlo()
        c.send(b"NOOP " + b"z" * 5000 + b"\r\n")
        self.assertEqual(c.reply().last, "500 5.5.2 Line too long")
        self.assertEqual(c.cmd("CERT bob@example.test").ders()[0], self.pki.der("bob"))

    def test_session_reset_after_starttls(self):
        c = self.tls_session()
        r = c.cmd("CERT alice@example.test")
        self.assertTrue(r.last.startswith("503 5.5.1"), r)
        self.assertNotIn(b"CERTIFICATE", r.raw)
        c.ehlo("again.test")
        r = c.cmd("CERT alice@example.test")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(r.ders()[0], self.pki.der("alice"))

    def test_starttls_only_before_tls(self):
        with self.d.client() as c:
            before = keywords(c.ehlo())
            self.assertIn("STARTTLS", before)
            self.assertNotIn("AUTH", before)
            c.starttls(sctest.tls_context())
            after = keywords(c.ehlo())
            self.assertNotIn("STARTTLS", after)
            for k in ("CERT", "CERS", "PIPELINING", "ENHANCEDSTATUSCODES", "HELP"):
                self.assertIn(k, after)
            r = c.cmd("STARTTLS")
            self.assertEqual(r.last, "503 5.5.1 TLS already active")
            # the session is still usable
            self.assertEqual(c.cmd("CERT bob@example.test").ders()[0], self.pki.der("bob"))

    def test_starttls_with_argument_501(self):
        with self.d.client() as c:
            c.ehlo()
            r = c.cmd("STARTTLS now")
            self.assertTrue(r.last.startswith("501 5.5.4"), r)
            c.starttls(sctest.tls_context())  # the plain STARTTLS still works

    def test_tls_logged(self):
        c = self.tls_session()
        port = c.local_port
        m = self.d.wait_log(r"^(?=.*client=127\.0\.0\.1:%d\b)(?=.*\btls\b).*TLSv1\.[23].*$"
                            % port)
        self.assertIsNotNone(m, self.d.log_text()[-2000:])

    def test_abrupt_handshake_failure_does_not_hurt_daemon(self):
        # garbage instead of a ClientHello, then a clean session
        with self.d.client() as c:
            c.ehlo()
            self.assertEqual(c.cmd("STARTTLS").code, 220)
            c.send(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64)
            c.is_closed(5)
        with self.d.client() as c:
            c.ehlo()
            self.assertEqual(c.cmd("CERT alice@example.test").code, 250)


class NoTlsConfiguredTest(unittest.TestCase):
    """Without tls_cert_file/tls_key_file STARTTLS is neither offered nor accepted."""

    def test_no_starttls_without_tls_files(self):
        with Daemon(overrides={"tls_cert_file": None, "tls_key_file": None}) as d:
            with d.client() as c:
                kw = keywords(c.ehlo())
                self.assertNotIn("STARTTLS", kw)
                self.assertIn("CERT", kw)
                r = c.cmd("STARTTLS")
                self.assertEqual(r.last, "502 5.5.1 STARTTLS not available")
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)


if __name__ == "__main__":
    unittest.main()
