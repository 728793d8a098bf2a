"""CERT/CERS service over plain SMTP: every row of INTERFACE.md's reply table and of
docs/design.md's reply table that is reachable without mail reception, the EHLO
keywords, the session commands and the per-request log line.
Peers: a raw socket client and smtplib."""
import os
import socket
import unittest
import urllib.parse

import sctest
from sctest import Daemon, free_port6, pki

NOT_FOUND = "550 5.1.1 Certificate Not Found"


class CertServiceTest(unittest.TestCase):
    """One daemon, LMDB repository with alice, bob, grace (gateway domain), the UTF-8
    user and Mixed.Case imported from their chain files (leaf + intermediate + root)."""

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.d = Daemon(certs=("alice", "bob", "grace", "utf8", "Mixed"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def session(self):
        c = self.d.client()
        self.addCleanup(c.close)
        c.ehlo()
        return c

    def assertServes(self, reply, name):
        self.assertEqual(reply.code, 250, reply)
        self.assertEqual(reply.last, "250 2.0.0 OK")
        ders = reply.ders()
        self.assertGreaterEqual(len(ders), 1, reply)
        self.assertEqual(ders[0], self.pki.der(name), "served certificate is not %s's" % name)
        return ders

    def assertNoCert(self, reply):
        self.assertNotIn(b"BEGIN CERTIFICATE", reply.raw)
        self.assertNotIn(b"BEGIN TRUSTED CERTIFICATE", reply.raw)

    # banner and session commands
    def test_banner(self):
        with self.d.client() as c:
            self.assertEqual(c.banner.last, "220 %s ESMTP smtpcertd" % sctest.HOSTNAME)

    def test_cert_found_pem_parses_and_matches(self):
        r = self.session().cmd("CERT alice@example.test")
        self.assertServes(r, "alice")
        # every PEM line is its own 250- line, the label is CERTIFICATE (RFC 7468)
        self.assertEqual(r.lines[0], "-----BEGIN CERTIFICATE-----")
        self.assertEqual(r.lines[-2], "-----END CERTIFICATE-----")
        # strict RFC 7468 lines: 64 base64 characters, the last one shorter
        data = r.lines[1:-2]
        self.assertTrue(all(len(ln) == 64 for ln in data[:-1]), data)
        self.assertTrue(0 < len(data[-1]) <= 64)
        self.assertIn("Alice Example", sctest.parse_cert(r.certs()[0]))
        for raw in r.raw.split(b"\r\n")[:-1]:
            self.assertTrue(raw.startswith(b"250-") or raw.startswith(b"250 "), raw)

    def test_cert_leaf_only_no_chain(self):
        r = self.session().cmd("CERT alice@example.test")
        self.assertEqual(len(self.assertServes(r, "alice")), 1, "CERT sends the leaf only")

    def test_cers_leaf_then_chain_in_order(self):
        r = self.session().cmd("CERS alice@example.test")
        ders = self.assertServes(r, "alice")
        self.assertIn(len(ders), (2, 3), "CERS: leaf + intermediate (+ root if stored)")
        self.assertEqual(ders[1], self.pki.der("intermediate"))
        if len(ders) == 3:
            self.assertEqual(ders[2], self.pki.der("ca"))

    def test_unknown_local_user_not_found(self):
        r = self.session().cmd("CERT nobody@example.test")
        self.assertEqual(r.last, NOT_FOUND)
        self.assertNoCert(r)

    def test_cers_unknown_user_not_found(self):
        r = self.session().cmd("CERS nobody@example.test")
        self.assertEqual(r.last, NOT_FOUND)

    def test_foreign_domain_refused_without_certificate(self):
        c = self.session()
        for cmd in ("CERT mallory@other.test", "CERS mallory@other.test",
                    "CERT alice@example.test.other.test", "CERT alice@sub.example.test"):
            r = c.cmd(cmd)
            self.assertGreaterEqual(r.code, 500, (cmd, r))
            self.assertLess(r.code, 600, (cmd, r))
            self.assertNoCert(r)
        r = c.cmd("CERT mallory@other.test")
        self.assertEqual(r.last, "550 5.7.1 Domain not served here: certificates are not relayed")

    def test_gateway_domain_cert_served(self):
        r = self.session().cmd("CERT grace@gw.test")
        self.assertServes(r, "grace")

    def test_angle_brackets_optional(self):
        c = self.session()
        self.assertServes(c.cmd("CERT <alice@example.test>"), "alice")
        self.assertServes(c.cmd("CERS <bob@example.test>"), "bob")

    def test_address_case_insensitive(self):
        c = self.session()
        self.assertServes(c.cmd("CERT ALICE@EXAMPLE.TEST"), "alice")
        self.assertServes(c.cmd("CERT Alice@Example.Test"), "alice")
        self.assertServes(c.cmd("CERT mixed.case@example.test"), "Mixed")
        self.assertServes(c.cmd("cert MIXED.CASE@example.TEST"), "Mixed")

    def test_quoted_dot_atom_local_part_is_canonicalised(self):
        self.assertServes(self.session().cmd('CERT "alice"@example.test'), "alice")

    def test_utf8_address_found(self):
        r = self.session().cmd("CERT 用户@example.test")
        self.assertServes(r, "utf8")

    def test_bad_syntax_501(self):
        for cmd in ("CERT", "CERT ", "CERT a@", "CERT <a@b", "CERT a@[127.0.0.1]",
                    "CERT <alice@[127.0.0.1]>", "CERT @example.test", "CERT alice", "CERS",
                    "CERT <>", "CERT alice@@example.test"):
            with self.subTest(cmd=cmd):
                c = self.session()  # one session each: stay below max_errors
                r = c.cmd(cmd)
                self.assertTrue(r.last.startswith("501 5.5.4 Syntax: CER"), (cmd, r))
                self.assertNoCert(r)
                self.assertEqual(c.cmd("NOOP").last, "250 2.0.0 OK")

    def test_overlong_local_part_501(self):
        r = self.session().cmd("CERT " + "a" * 65 + "@example.test")
        self.assertTrue(r.last.startswith("501 5.5.4"), r)

    def test_invalid_utf8_address_501(self):
        c = self.session()
        r = c.cmd(b"CERT \xff\xfe@example.test")
        self.assertTrue(r.last.startswith("501 5.5.4"), r)
        self.assertEqual(c.cmd("NOOP").last, "250 2.0.0 OK")

    def test_cert_before_ehlo_503(self):
        with self.d.client() as c:
            r = c.cmd("CERT alice@example.test")
            self.assertEqual(r.last, "503 5.5.1 Send HELO/EHLO first")
            self.assertNoCert(r)
            r = c.cmd("CERS alice@example.test")
            self.assertEqual(r.last, "503 5.5.1 Send HELO/EHLO first")

    def test_helo_enables_cert(self):
        with self.d.client() as c:
            r = c.cmd("HELO client.test")
            self.assertEqual(r.code, 250, r)
            self.assertServes(c.cmd("CERT alice@example.test"), "alice")

    def test_cerc_with_submissions_off(self):
        r = self.session().cmd("CERC alice@example.test")
        self.assertEqual(r.last, "550 5.7.0 Service Unavailable")

    def test_mail_rcpt_data_not_implemented(self):
        c = self.session()
        for cmd in ("MAIL FROM:<x@client.test>", "RCPT TO:<alice@example.test>", "DATA"):
            r = c.cmd(cmd)
            self.assertEqual(r.last, "502 5.5.1 Command not implemented", cmd)

    def test_unknown_command_500(self):
        r = self.session().cmd("FROB alice@example.test")
        self.assertEqual(r.last, "500 5.5.1 Command unrecognized")

    # EHLO
    def ehlo_keywords(self, reply):
        return [ln.split()[0].upper() for ln in reply.lines[1:]]

    def test_ehlo_keywords(self):
        with self.d.client() as c:
            r = c.ehlo("client.test")
        self.assertEqual(r.lines[0], "%s greets client.test" % sctest.HOSTNAME)
        kw = self.ehlo_keywords(r)
        for k in ("CERT", "CERS", "ENHANCEDSTATUSCODES", "PIPELINING", "SMTPUTF8",
                  "STARTTLS", "8BITMIME", "SIZE", "HELP"):
            self.assertIn(k, kw, r)
        self.assertNotIn("CERC", kw, "CERC advertised with submissions = off")
        self.assertNotIn("AUTH", kw, "AUTH advertised before STARTTLS")
        self.assertEqual(len(kw), len(set(kw)), kw)
        size = [ln for ln in r.lines if ln.upper().startswith("SIZE")][0]
        self.assertRegex(size, r"^SIZE \d+$")

    def test_ehlo_keyword_order(self):
        with self.d.client() as c:
            kw = self.ehlo_keywords(c.ehlo())
        self.assertEqual(kw, ["PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES",
                              "SMTPUTF8", "STARTTLS", "CERT", "CERS", "HELP"])

    def test_ehlo_via_smtplib(self):
        s = sctest.smtp(self.d.port)
        self.addCleanup(s.close)
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        for k in ("cert", "cers", "starttls", "pipelining", "smtputf8"):
            self.assertTrue(s.has_extn(k), k)
        code, msg = s.docmd("CERT", "alice@example.test")
        self.assertEqual(code, 250)
        self.assertEqual(sctest.pem_to_der(sctest.pem_certs(msg)[0]), self.pki.der("alice"))
        code, msg = s.docmd("CERT", "nobody@example.test")
        self.assertEqual((code, msg), (550, b"5.1.1 Certificate Not Found"))
        s.quit()

    def test_noop_rset_help_quit(self):
        c = self.session()
        self.assertEqual(c.cmd("NOOP").last, "250 2.0.0 OK")
        self.assertEqual(c.cmd("NOOP anything goes").last, "250 2.0.0 OK")
        self.assertEqual(c.cmd("RSET").last, "250 2.0.0 OK")
        r = c.cmd("HELP")
        self.assertEqual(r.code, 214, r)
        self.assertTrue(r.last.startswith("214 2.0.0"), r)
        self.assertIn("CERT", r.text)
        r = c.cmd("QUIT")
        self.assertEqual(r.last, "221 2.0.0 %s closing connection" % sctest.HOSTNAME)
        self.assertTrue(c.is_closed(), "connection stays open after QUIT")

    def test_rset_keeps_ehlo(self):
        c = self.session()
        c.cmd("RSET")
        self.assertServes(c.cmd("CERT alice@example.test"), "alice")

    def test_log_line_per_request(self):
        c = self.session()
        c.cmd("CERT alice@example.test")
        c.cmd("CERT NoBody@Example.test")
        port = c.local_port
        ok = self.d.wait_log(r"client=127\.0\.0\.1:%d session=\S+ cmd=CERT "
                             r"addr=alice@example\.test result=250 status=2\.0\.0 us=\d+" % port)
        self.assertIsNotNone(ok, "no log line for CERT alice:\n" + self.d.log_text()[-2000:])
        ok = self.d.wait_log(r"client=127\.0\.0\.1:%d session=\S+ cmd=CERT "
                             r"addr=nobody@example\.test result=550 status=5\.1\.1 us=\d+" % port)
        self.assertIsNotNone(ok, "no log line for CERT nobody:\n" + self.d.log_text()[-2000:])
        # Certificates themselves are never logged.
        self.assertNotIn("BEGIN CERTIFICATE", self.d.log_text())

    def test_log_has_connect_and_disconnect(self):
        with self.d.client() as c:
            port = c.local_port
            c.cmd("QUIT")
            c.is_closed()
        for event in ("connect", "disconnect"):
            m = self.d.wait_log(r"^(?=.*client=127\.0\.0\.1:%d\b)(?=.*\b%s\b).*$"
                                % (port, event))
            self.assertIsNotNone(m, "no %s line:\n%s" % (event, self.d.log_text()[-2000:]))


class Ipv6ListenTest(unittest.TestCase):
    """listen takes a list, IPv6 in brackets: [::1]:PORT next to 127.0.0.1:PORT."""

    def test_listen_ipv4_and_ipv6(self):
        port6 = free_port6(self)
        d = Daemon(start=False)
        with d:
            d.overrides["listen"] = "127.0.0.1:%d, [::1]:%d" % (d.port, port6)
            d.write_config()
            d.start()
            c = socket.create_connection(("::1", port6), timeout=10)
            self.addCleanup(c.close)
            c.sendall(b"EHLO v6.test\r\nCERT alice@example.test\r\nQUIT\r\n")
            data = b""
            while not data.endswith(b"closing connection\r\n"):
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"220 " + sctest.HOSTNAME.encode()), data[:100])
            ders = [sctest.pem_to_der(p) for p in sctest.pem_certs(
                b"\n".join(ln[4:] for ln in data.split(b"\r\n")))]
            self.assertEqual(ders, [pki().der("alice")])
            self.assertIsNotNone(d.wait_log(r"client=\[?::1\]?:\d+ session=\S+ cmd=CERT "
                                            r"addr=alice@example\.test result=250"),
                                 d.log_text()[-2000:])


class InvisibleCertificatesTest(unittest.TestCase):
    """A dir: repository holding revoked (carol), expired (dave), not-yet-valid
    (erin) and foreign-domain (mallory) certificates next to valid ones: none of
    the former may ever be transmitted, and their answers must be byte-identical
    to the one for an address without any certificate."""

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.d = Daemon(certs=(), start=False)
        cls.d.overrides["repository"] = "dir:" + cls.d.dir_repo
        for n in ("alice", "bob", "carol", "dave", "erin", "mallory"):
            cls.d.put_dir_cert(n)
        cls.d.write_config()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def session(self):
        c = self.d.client()
        self.addCleanup(c.close)
        c.ehlo()
        return c

    def test_valid_cert_from_dir_repository(self):
        r = self.session().cmd("CERS bob@example.test")
        self.assertEqual(r.code, 250, r)
        ders = r.ders()
        self.assertEqual(ders[0], self.pki.der("bob"))
        self.assertEqual(ders[1], self.pki.der("intermediate"))

    def test_revoked_not_found(self):
        r = self.session().cmd("CERT carol@example.test")
        self.assertEqual(r.last, NOT_FOUND)
        self.assertNotIn(b"CERTIFICATE", r.raw)

    def test_expired_not_found(self):
        r = self.session().cmd("CERT dave@example.test")
        self.assertEqual(r.last, NOT_FOUND)
        self.assertNotIn(b"CERTIFICATE", r.raw)

    def test_not_yet_valid_not_found(self):
        r = self.session().cmd("CERT erin@example.test")
        self.assertEqual(r.last, NOT_FOUND)
        self.assertNotIn(b"CERTIFICATE", r.raw)

    def test_cers_never_sends_invisible_certs(self):
        c = self.session()
        for a in ("carol", "dave", "erin"):
            r = c.cmd("CERS %s@example.test" % a)
            self.assertEqual(r.last, NOT_FOUND)

    def test_known_and_unknown_users_byte_identical(self):
        c = self.session()
        ref = c.cmd("CERT nobody@example.test").raw
        self.assertEqual(ref, b"550 5.1.1 Certificate Not Found\r\n")
        for a in ("carol", "dave", "erin"):
            self.assertEqual(c.cmd("CERT %s@example.test" % a).raw, ref, a)

    def test_foreign_domain_never_served_even_if_stored(self):
        r = self.session().cmd("CERT mallory@other.test")
        self.assertTrue(r.last.startswith("550 5.7.1"), r)
        self.assertNotIn(b"CERTIFICATE", r.raw)


class UnreachableRepositoryTest(unittest.TestCase):
    """A dir: repository whose directory is replaced by a regular file while the
    daemon runs: lookups cannot be done, so the answer is 451 4.3.0, never 550."""

    def test_repository_unreachable_451(self):
        d = Daemon(certs=(), start=False)
        with d:
            d.overrides["repository"] = "dir:" + d.dir_repo
            d.put_dir_cert("alice")
            d.write_config()
            d.start()
            with d.client() as c:
                c.ehlo()
                r = c.cmd("CERT alice@example.test")
                self.assertEqual(r.code, 250, r)
                moved = d.dir_repo + ".away"
                os.rename(d.dir_repo, moved)
                with open(d.dir_repo, "w") as f:
                    f.write("not a directory\n")
                for addr in ("alice@example.test", "nobody@example.test"):
                    r = c.cmd("CERT " + addr)
                    self.assertEqual(r.code, 451, (addr, r))
                    self.assertTrue(r.last.startswith("451 4.3.0"), r)
                    self.assertNotIn(b"CERTIFICATE", r.raw)
                # temporarily: once the store is back the same session is served again
                os.remove(d.dir_repo)
                os.rename(moved, d.dir_repo)
                r = c.cmd("CERT alice@example.test")
                self.assertEqual(r.code, 250, r)
            self.assertIsNotNone(d.wait_log(r"cmd=CERT addr=alice@example\.test result=451 "
                                            r"status=4\.3\.0"), d.log_text()[-2000:])


    def test_unreadable_entry_451(self):
        # an entry that exists but cannot be read (here a symlink loop, which
        # stops root too) is not "no certificate": 451, never 550
        d = Daemon(certs=(), start=False)
        with d:
            d.overrides["repository"] = "dir:" + d.dir_repo
            d.put_dir_cert("alice")
            d.write_config()
            d.start()
            loop = os.path.join(d.dir_repo, "bob@example.test.pem")
            os.symlink(loop, loop)
            with d.client() as c:
                c.ehlo()
                r = c.cmd("CERT bob@example.test")
                self.assertTrue(r.last.startswith("451 4.3.0"), r)
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)


class CertUrlTest(unittest.TestCase):
    """cert_url set: CERT and CERS answer with the URL (250-URL, 250 2.0.0 OK)
    instead of the PEM, and only for addresses that have a usable certificate
    (docs/protocol.md 10.2)."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(overrides={"cert_url": "https://certs.example.test/%u.pem"})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def test_cert_and_cers_answer_with_url(self):
        with self.d.client() as c:
            c.ehlo()
            for verb in ("CERT", "CERS"):
                r = c.cmd("%s Alice@Example.test" % verb)
                self.assertEqual(r.code, 250, r)
                self.assertEqual(len(r.lines), 2, r)
                self.assertEqual(r.last, "250 2.0.0 OK")
                self.assertTrue(r.lines[0].startswith("https://certs.example.test/"), r)
                self.assertEqual(urllib.parse.unquote(r.lines[0]),
                                 "https://certs.example.test/alice@example.test.pem")
                self.assertNotIn(b"BEGIN", r.raw)

    def test_no_url_without_certificate(self):
        with self.d.client() as c:
            c.ehlo()
            self.assertEqual(c.cmd("CERT nobody@example.test").last, NOT_FOUND)


class SubmissionsReviewTest(unittest.TestCase):
    """submissions = review with auth configured: CERC is advertised and requires
    AUTH (which itself is only offered after STARTTLS)."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(start=False)
        passwd = os.path.join(cls.d.tmp, "passwd")
        sctest.write_passwd(passwd, {"alice@example.test": "secret"})
        cls.d.overrides.update({"submissions": "review", "auth": "passwd:" + passwd})
        cls.d.write_config()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def test_cerc_advertised_when_review(self):
        with self.d.client() as c:
            kw = [ln.split()[0].upper() for ln in c.ehlo().lines[1:]]
        self.assertIn("CERC", kw)
        self.assertEqual(kw.index("CERC"), kw.index("CERS") + 1, kw)

    def test_cerc_before_auth_530(self):
        with self.d.client() as c:
            c.ehlo()
            r = c.cmd("CERC alice@example.test")
            self.assertEqual(r.last, "530 5.7.0 Authentication required")
            self.assertEqual(c.cmd("NOOP").last, "250 2.0.0 OK")


if __name__ == "__main__":
    unittest.main()
