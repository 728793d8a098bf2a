"""ldap:// repositories end to end (lib/repo_ldap.c) against a real slapd
(tests/lib/slapd.py): smtpcertd serves a certificate found in the directory,
550 for an unknown address, 451 4.3.0 (never 550) while the directory is down
and the same certificate again once it is back, without restarting smtpcertd;
a chain `lmdb:..., ldap://...` where the first store answers for its addresses
and the directory for the others; and addresses carrying filter syntax never
match someone else's entry."""
import os
import subprocess
import time
import unittest

import sctest
from sctest import Client, Daemon, pki
from slapd import Slapd, SUFFIX


def ldap_spec(slapd):
    return "%s/ou=people,%s?userCertificate;binary?sub?(mail=%%s)" % (slapd.url, SUFFIX)


class LdapRepoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.slapd = Slapd()
        try:
            cls.slapd.start()
            # alice-old in the directory, alice (newer) in lmdb: the chain test
            # tells which store answered
            cls.slapd.add_person("alice", "alice@example.test", [cls.pki.der("alice-old")])
            cls.slapd.add_person("bob", "bob@example.test", [cls.pki.der("bob")])
            # an entry whose mail is literally "*": a filter injection that
            # matched it (or everyone) would be visible
            cls.slapd.add_person("star", "x*@example.test", [cls.pki.der("Mixed")])
            # userSMIMECertificate: a certs-only PKCS #7 (chain in reverse order,
            # as an unordered set may come)
            chain = sctest.pem_certs(cls.pki.pem("alice.chain"))
            rev = os.path.join(cls.slapd.dir, "reversed.pem")
            with open(rev, "w") as f:
                f.write("\n".join(reversed(chain)) + "\n")
            p7 = subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-outform", "DER",
                                 "-certfile", rev],
                                capture_output=True, timeout=30, check=True).stdout
            cls.slapd.add_person("smime", "smime@example.test", [p7],
                                 attribute="userSMIMECertificate")
            # a bare leaf whose chain comes from the CA entry (x-ca-dn)
            cls.slapd.add_person("bare", "bare@example.test", [cls.pki.der("alice")])
            cls.chain = [sctest.pem_to_der(c) for c in chain]
            cls.slapd.add_ca("ou=ca," + SUFFIX, cls.chain[1:])
        except BaseException:
            cls.slapd.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.slapd.cleanup()

    def daemon(self, repository, certs=(), **extra):
        # no cache unless a test asks: down/up tests must see the directory itself
        cfg = {"repository": repository, "ldap_timeout": "3", "ldap_cache_ttl": "0"}
        cfg.update(extra)
        d = Daemon(cfg, certs=certs)
        self.addCleanup(d.cleanup)
        return d

    def cert(self, d, address):
        with Client(d.port) as c:
            c.ehlo()
            return c.cmd("CERT " + address)

    def test_served_unknown_down_and_back(self):
        d = self.daemon(ldap_spec(self.slapd))
        r = self.cert(d, "bob@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("bob")])
        r = self.cert(d, "nobody@example.test")
        self.assertEqual(r.code, 550, r.text)
        self.assertIn("5.1.1", r.text)
        self.slapd.stop()
        try:
            for _ in range(2):
                r = self.cert(d, "bob@example.test")
                self.assertEqual(r.code, 451, r.text)
                self.assertIn("4.3.0", r.text)
            # unknown is not "not found" either while the directory is down
            self.assertEqual(self.cert(d, "nobody@example.test").code, 451)
        finally:
            self.slapd.start()
        # after a failed connect the store answers 451 at once for ldap_timeout
        # (3 s here) without trying, then reconnects by itself
        deadline = time.monotonic() + 10
        while True:
            r = self.cert(d, "bob@example.test")
            if r.code != 451 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("bob")])

    def test_chain_first_store_answers(self):
        repo = "lmdb:%s" % sctest.mkdtemp("sc-ldap-lmdb-")
        d = self.daemon([repo, ldap_spec(self.slapd)], certs=None)
        r = d.admin("import", self.pki.path("alice"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.cert(d, "alice@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("alice")])  # lmdb's, not LDAP's alice-old
        r = self.cert(d, "bob@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("bob")])  # from the directory
        self.assertEqual(self.cert(d, "nobody@example.test").code, 550)

    def test_smime_attribute(self):
        spec = "%s/ou=people,%s?userSMIMECertificate,userCertificate;binary?sub?(mail=%%s)" % (
            self.slapd.url, SUFFIX)
        d = self.daemon(spec)
        with Client(d.port) as c:
            c.ehlo()
            r = c.cmd("CERS smime@example.test")
        self.assertEqual(r.code, 250, r.text)
        chain = [sctest.pem_to_der(p) for p in sctest.pem_certs(self.pki.pem("alice.chain"))]
        self.assertEqual(r.ders(), chain)  # leaf first, then its issuers, in order
        r = self.cert(d, "bob@example.test")  # the second attribute still counts
        self.assertEqual(r.ders(), [self.pki.der("bob")])

    def test_ca_entry_chain(self):
        spec = ldap_spec(self.slapd) + "?x-ca-dn=ou=ca%2C" + SUFFIX.replace(",", "%2C")
        d = self.daemon(spec)
        with Client(d.port) as c:
            c.ehlo()
            r = c.cmd("CERS bare@example.test")
            self.assertEqual(r.code, 250, r.text)
            self.assertEqual(r.ders(), self.chain)
            r = c.cmd("CERT bare@example.test")
            self.assertEqual(r.ders(), self.chain[:1])

    def test_filter_injection(self):
        d = self.daemon(ldap_spec(self.slapd))
        for address in ("*@example.test", "x*@example.test".replace("x", "*"),
                        "b*@example.test", "bob)(mail=*@example.test",
                        "\\2a@example.test", "*)(|(mail=*@example.test"):
            r = self.cert(d, address)
            self.assertIn(r.code, (501, 550), "%s: %s" % (address, r.text))
            self.assertEqual(r.ders(), [])
        # the literal address is found: escaping does not break normal matches
        r = self.cert(d, "x*@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("Mixed")])


if __name__ == "__main__":
    unittest.main()
