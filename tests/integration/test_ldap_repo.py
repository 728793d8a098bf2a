"""ldap:// repositories end to end (lib/repo_ldap.c) against a real slapd
(tests/lib/slapd.py): smtpcertd serves a certificate found in the directory,
550 for an unknown address, 451 4.3.0 (never 550) while the directory is down
and the same certificate again once it is back, without restarting smtpcertd;
a chain `lmdb:..., ldap://...` where the first store answers for its addresses
and the directory for the others; and addresses carrying filter syntax never
match someone else's entry."""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import sctest
from sctest import Client, Daemon, pki
from slapd import DirectoryTestCase, Slapd, SUFFIX


def ldap_spec(slapd):
    return "%s/ou=people,%s?userCertificate;binary?sub?(mail=%%s)" % (slapd.url, SUFFIX)


class LdapRepoTest(DirectoryTestCase):
    @classmethod
    def populate(cls):
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

    def test_bind_refused_is_logged(self):
        # a refused bind is the administrator's to fix: 451 for the client, the
        # directory's reason in the daemon log, the password nowhere
        pw = os.path.join(tempfile.mkdtemp(prefix="sc-ldappw-"), "pw")
        self.addCleanup(shutil.rmtree, os.path.dirname(pw), True)
        with open(pw, "w") as f:
            f.write("not-the-password\n")
        d = self.daemon(ldap_spec(self.slapd), ldap_bind_dn="cn=nobody," + SUFFIX,
                        ldap_bind_password_file=pw)
        r = self.cert(d, "alice@example.test")
        self.assertEqual(r.code, 451, r.text)
        self.assertTrue(d.log_has("bind failed"), d.log_text()[-2000:])
        line = [l for l in d.log_text().splitlines() if "bind failed" in l][0]
        self.assertIn("repository ldap://", line)
        self.assertIn("Invalid credentials", line)
        self.assertNotIn("not-the-password", d.log_text())

    def test_ldapi_socket(self):
        spec = "%s/ou=people,%s?userCertificate;binary?sub?(mail=%%s)" % (self.slapd.ldapi_url,
                                                                         SUFFIX)
        d = self.daemon(spec)
        r = self.cert(d, "bob@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("bob")])
        self.assertEqual(self.cert(d, "nobody@example.test").code, 550)

    def test_filter_injection(self):
        d = self.daemon(ldap_spec(self.slapd))
        for address in ("*@example.test", "x*@example.test".replace("x", "*"),
                        "b*@example.test", "bob)(mail=*@example.test",
                        "\\2a@example.test", "*)(|(mail=*@example.test",
                        "bob\\@example.test", "bob\x00@example.test",
                        "bob)@example.test", "(bob@example.test"):
            r = self.cert(d, address)
            self.assertIn(r.code, (500, 501, 550), "%r: %s" % (address, r.text))
            self.assertEqual(r.ders(), [])
        # the literal address is found: escaping does not break normal matches
        r = self.cert(d, "x*@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("Mixed")])


def people_spec(*servers, ext=""):
    hosts = ",".join("127.0.0.1:%d" % s.port for s in servers)
    return "ldap://%s/ou=people,%s?userCertificate;binary?sub?(mail=%%s)%s" % (hosts, SUFFIX,
                                                                           ext)


def poll(fn, want, timeout=20):
    """fn() until its reply code is @want or @timeout seconds passed; the last reply.
    A deadline against hangs only: nothing here asserts on how long it took."""
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r.code == want or time.monotonic() > deadline:
            return r
        time.sleep(0.3)


class LdapPoolCacheTest(unittest.TestCase):
    """Failover across two slapds with the same data, the answer cache
    (ldap_cache_ttl) with CRLs applied to cached entries, concurrent clients on
    the connection pool, and admin list / export-www reading the directory."""

    def slapd(self, people=("alice", "bob")):
        s = Slapd()
        self.addCleanup(s.cleanup)
        s.start()
        for name in people:
            s.add_person(name, "%s@example.test" % name, [pki().der(name)])
        return s

    def daemon(self, repository, **extra):
        cfg = {"repository": repository, "ldap_timeout": "2", "ldap_cache_ttl": "0"}
        cfg.update(extra)
        d = Daemon(cfg, certs=None)
        self.addCleanup(d.cleanup)
        return d

    def cert(self, d, address, verb="CERT"):
        with Client(d.port) as c:
            c.ehlo()
            return c.cmd("%s %s" % (verb, address))

    def test_failover_and_recovery(self):
        s1, s2 = self.slapd(), self.slapd()
        d = self.daemon(people_spec(s1, s2))
        r = self.cert(d, "bob@example.test")
        self.assertEqual(r.code, 250, r.text)
        # the first directory goes: the second answers, no 451 in between
        s1.stop()
        r = self.cert(d, "bob@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [pki().der("bob")])
        # both gone: 451 4.3.0, never 550, also for an unknown address
        s2.stop()
        for address in ("bob@example.test", "bob@example.test", "nobody@example.test"):
            r = self.cert(d, address)
            self.assertEqual(r.code, 451, r.text)
            self.assertIn("4.3.0", r.text)
        # one comes back: answered again without restarting the daemon
        s2.start()
        r = poll(lambda: self.cert(d, "bob@example.test"), 250)
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [pki().der("bob")])
        self.assertEqual(self.cert(d, "nobody@example.test").code, 550)

    def test_cache_ttl(self):
        s = self.slapd(people=("alice", "bob"))
        cached = self.daemon(people_spec(s), ldap_cache_ttl="3")
        fresh = self.daemon(people_spec(s))
        t0 = time.monotonic()
        self.assertEqual(self.cert(cached, "bob@example.test").code, 250)
        self.assertEqual(self.cert(fresh, "bob@example.test").code, 250)
        s.delete("uid=bob,ou=people," + SUFFIX)
        # ldap_cache_ttl = 0: the change is seen at once
        self.assertEqual(self.cert(fresh, "bob@example.test").code, 550)
        # within the TTL (the cache counts whole seconds: certainly within it
        # while less than TTL - 1 s has passed) the cached answer stands...
        r = self.cert(cached, "bob@example.test")
        if time.monotonic() - t0 < 1.5:
            self.assertEqual(r.code, 250, r.text)
            self.assertEqual(r.ders(), [pki().der("bob")])
        # ...and after it the directory's: 550
        r = poll(lambda: self.cert(cached, "bob@example.test"), 550)
        self.assertEqual(r.code, 550, r.text)

    def test_cached_certificate_revoked_by_reloaded_crl(self):
        s = self.slapd(people=("alice",))
        d = self.daemon(people_spec(s), ldap_cache_ttl="3600")
        self.assertEqual(self.cert(d, "alice@example.test").code, 250)
        # gone from the directory, still served from the cache (TTL 3600 s)
        s.delete("uid=alice,ou=people," + SUFFIX)
        r = self.cert(d, "alice@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [pki().der("alice")])
        # a CRL revoking it, loaded by SIGHUP: the cached entry is not served
        d.overrides["crl_file"] = pki().path("crl-alice.pem")
        d.write_config()
        d.reload()
        r = poll(lambda: self.cert(d, "alice@example.test"), 550)
        self.assertEqual(r.code, 550, r.text)
        self.assertEqual(r.ders(), [])

    def test_concurrent_clients(self):
        s = self.slapd()
        d = self.daemon(people_spec(s))
        results = []

        def worker(i):
            name = ("alice", "bob")[i % 2]
            with Client(d.port) as c:
                c.ehlo()
                for _ in range(5):
                    r = c.cmd("CERT %s@example.test" % name)
                    results.append((name, r.code, r.ders()))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(results), 60)
        for name, code, ders in results:
            self.assertEqual((code, ders), (250, [pki().der(name)]), name)

    def test_admin_list_and_export_www(self):
        s = self.slapd(people=("bob",))
        s.add_person("bare", "Mixed.Case@Example.TEST", [pki().der("alice")])
        chain = [sctest.pem_to_der(c) for c in sctest.pem_certs(pki().pem("alice.chain"))]
        s.add_ca("ou=ca," + SUFFIX, chain[1:])
        spec = people_spec(s, ext="?x-ca-dn=ou=ca%2C" + SUFFIX.replace(",", "%2C"))
        www = sctest.mkdtemp("sc-ldap-www-")
        self.addCleanup(shutil.rmtree, www, True)
        d = self.daemon(spec, cert_url="https://certs.example.test/c/%u.pem")
        r = d.admin("list")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual([ln.split()[0] for ln in lines],
                         ["bob@example.test", "mixed.case@example.test"])
        self.assertTrue(all(ln.split()[1] == "valid" for ln in lines), r.stdout)
        r = d.admin("export-www", www)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("2 written, 0 removed, 0 skipped, 2 addresses", r.stdout)
        with open(os.path.join(www, "c", "mixed.case@example.test.pem")) as f:
            ders = [sctest.pem_to_der(p) for p in sctest.pem_certs(f.read())]
        self.assertEqual(ders, chain)  # the leaf and its chain from the CA entry
        # gone from the directory: its file goes on the next run
        s.delete("uid=bob,ou=people," + SUFFIX)
        r = d.admin("export-www", www)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 written, 1 removed, 0 skipped, 1 addresses", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(www, "c", "bob@example.test.pem")))
        # the directory down: a temporary failure, and nothing is removed
        s.stop()
        r = d.admin("export-www", www)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(os.path.join(www, "c", "mixed.case@example.test.pem")))
        r = d.admin("list")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
