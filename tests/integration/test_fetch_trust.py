"""`smtpcert fetch` without --server: MX lookup through libunbound against a
private DNSSEC-signed zone (tests/lib/dnszone.py: nsd + ldns-signzone), then
CERT from our daemon over a channel authenticated by DANE (RFC 7672) or PKIX;
the known-certificates store (a changed certificate is refused unless
--accept-new or it chains to --smime-ca-file) and the cache (served without a
connection once the daemon is gone)."""
import json
import os
import subprocess
import tempfile
import unittest

import sctest
from sctest import Daemon, pki
from dnszone import Zone, cert_sha256_hex, spki_sha256_hex

MX_HOST = "mx.example.test"


def make_mx_cert(directory):
    """A TLS certificate for mx.example.test issued by the test intermediate CA:
    (chain file leaf + intermediate, key file, leaf file)."""
    p = pki()
    key = os.path.join(directory, "mx.key")
    csr = os.path.join(directory, "mx.csr")
    leaf = os.path.join(directory, "mx.pem")
    ext = os.path.join(directory, "mx.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n" % MX_HOST)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-subj", "/CN=" + MX_HOST, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", p.path("intermediate"),
        "-CAkey", p.path("intermediate.key"), "-CAcreateserial", "-days", "30",
        "-extfile", ext, "-out", leaf)
    chain = os.path.join(directory, "mx.chain.pem")
    with open(leaf) as f:
        text = f.read()
    with open(chain, "w") as f:
        f.write(text + p.pem("intermediate"))
    return chain, key, leaf


class FetchTrustTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.bin = sctest.binary("smtpcert")
        cls.tmp = sctest.mkdtemp("sc-trust-")
        cls.mx_chain, cls.mx_key, cls.mx_leaf = make_mx_cert(cls.tmp)
        cls.d = Daemon(overrides={"tls_cert_file": cls.mx_chain, "tls_key_file": cls.mx_key},
                       certs=("alice", "bob"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def setUp(self):
        # a fresh known-certificates store and cache for each test
        self.state = tempfile.mkdtemp(prefix="t-", dir=self.tmp)
        self.known = os.path.join(self.state, "known_certs")

    def zone(self, records, signed=True):
        z = Zone("example.test", records, signed=signed)
        self.addCleanup(z.cleanup)
        return z.start()

    def mx_records(self, tlsa=None, host="mx"):
        recs = ["@ MX 10 %s" % host, "%s A 127.0.0.1" % host]
        if tlsa:
            recs.append("_%d._tcp.%s TLSA %s" % (self.d.port, host, tlsa))
        return recs

    def fetch(self, z, *args, address="alice@example.test", anchor=True, port=None):
        cmd = [self.bin, "fetch", "--resolver", z.resolver, "--mx-port",
               str(port or self.d.port), "--known-certs", self.known, "--json"]
        if anchor:
            # an unsigned zone: no anchor at all, not the system's root key
            # (which would make every answer from this private server bogus)
            cmd += ["--dnssec-anchor", z.anchor or "none"]
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(self.state, "cache"))
        return subprocess.run(cmd + list(args) + [address], capture_output=True, text=True,
                              timeout=60, env=env)

    def assert_alice(self, r):
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        pems = data["certificates"]
        self.assertEqual(sctest.pem_to_der(pems[0]["pem"]), self.pki.der("alice"))
        self.assertEqual(data["fingerprint"], self.pki.fingerprint("alice"))
        return data

    # --- DANE ----------------------------------------------------------------

    def test_dane_ee_trusted_without_ca(self):
        # no --ca-file: the test CA is in no trust store, so only DANE can succeed
        z = self.zone(self.mx_records("3 1 1 " + spki_sha256_hex(self.mx_leaf)))
        r = self.fetch(z)
        data = self.assert_alice(r)
        self.assertEqual(data["trust"], "dane", r.stderr)
        self.assertIs(data["dnssec"], True)
        self.assertEqual(data["server"], "%s:%d" % (MX_HOST, self.d.port))
        self.assertEqual(data["pin"], "new")
        self.assertIn("DANE-EE(3)", data["detail"])
        self.assertRegex(r.stderr, r"trust dane")

    def test_dane_ta_with_name_check(self):
        # DANE-TA(2) on the intermediate: the chain must lead there and the name
        # must be the MX host's (RFC 7672 3.2.2)
        z = self.zone(self.mx_records("2 0 1 " + cert_sha256_hex(self.pki.path("intermediate"))))
        data = self.assert_alice(self.fetch(z))
        self.assertEqual(data["trust"], "dane")
        self.assertIn("DANE-TA(2)", data["detail"])

    def test_dane_ee_ignores_names(self):
        # RFC 7672 3.2.1: with DANE-EE(3) the key is the identity; the
        # certificate names mx, the MX host is mx2: still authenticated
        z = self.zone(self.mx_records("3 1 1 " + spki_sha256_hex(self.mx_leaf), host="mx2"))
        data = self.assert_alice(self.fetch(z))
        self.assertEqual(data["trust"], "dane")
        self.assertEqual(data["server"], "mx2.example.test:%d" % self.d.port)

    def test_dane_ta_name_mismatch_refused(self):
        # RFC 7672 3.2.2: with DANE-TA(2) the certificate must name the MX host
        z = self.zone(self.mx_records("2 0 1 " + cert_sha256_hex(self.pki.path("intermediate")),
                                      host="mx2"))
        r = self.fetch(z)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("mx2.example.test", r.stderr)

    def test_dane_mismatch_refused(self):
        z = self.zone(self.mx_records("3 1 1 " + "00" * 32))
        r = self.fetch(z, "--ca-file", self.pki.path("ca"))
        # the CA would vouch for the server, but DANE is what the domain published
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertRegex(r.stderr, r"(?i)verif|dane|tlsa")

    def test_bogus_dnssec_refused(self):
        # the anchor of another signing of the same zone: every answer is bogus
        other = Zone("example.test", [], signed=True)
        self.addCleanup(other.cleanup)
        other._sign(other._write_zone())
        z = self.zone(self.mx_records("3 1 1 " + spki_sha256_hex(self.mx_leaf)))
        cmd_anchor = other.anchor
        r = self.fetch(z, "--dnssec-anchor", cmd_anchor, anchor=False)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("DNSSEC validation failed", r.stderr)

    def test_bad_anchor_file_is_a_local_error(self):
        z = self.zone(self.mx_records())
        bad = os.path.join(self.state, "anchor")
        with open(bad, "w") as f:
            f.write("this is not a DS record\n")
        for anchor, text in ((bad, "trust anchor"),
                             (os.path.join(self.state, "missing"), "No such file")):
            r = self.fetch(z, "--dnssec-anchor", anchor, anchor=False)
            self.assertEqual(r.returncode, 7, r.stdout + r.stderr)
            self.assertIn(text, r.stderr)
            self.assertEqual(r.stdout, "")

    # --- PKIX ------------------------------------------------------------------

    def test_unsigned_zone_pkix(self):
        z = self.zone(self.mx_records("3 1 1 " + "00" * 32), signed=False)
        # insecure TLSA records are ignored (RFC 7672 2.2); PKIX decides
        r = self.fetch(z, "--ca-file", self.pki.path("ca"))
        data = self.assert_alice(r)
        self.assertEqual(data["trust"], "pkix")
        self.assertIs(data["dnssec"], False)

    def test_unsigned_zone_untrusted_ca_refused(self):
        z = self.zone(self.mx_records(), signed=False)
        r = self.fetch(z)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("verif", r.stderr)

    def test_tls_name_mismatch_refused(self):
        # the MX host is mx2, the server's certificate names mx
        z = self.zone(self.mx_records(host="mx2"), signed=False)
        r = self.fetch(z, "--ca-file", self.pki.path("ca"))
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("mx2.example.test", r.stderr)
        self.assertRegex(r.stderr, r"(?i)hostname mismatch|verification failed")

    def test_null_mx_not_found(self):
        z = self.zone(["@ MX 0 ."])
        r = self.fetch(z)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("null MX", r.stderr)

    def test_mx_order_skips_dead_host(self):
        # the preferred MX has no listener: the next one answers (RFC 5321 5.1)
        dead = sctest.free_port()
        z = self.zone(["@ MX 5 dead", "@ MX 10 mx", "dead A 127.0.0.2", "mx A 127.0.0.1",
                       "_%d._tcp.mx TLSA 3 1 1 %s" % (self.d.port,
                                                      spki_sha256_hex(self.mx_leaf))])
        data = self.assert_alice(self.fetch(z))
        self.assertEqual(data["server"], "%s:%d" % (MX_HOST, self.d.port))
        del dead

    def test_not_found_exit_1(self):
        z = self.zone(self.mx_records("3 1 1 " + spki_sha256_hex(self.mx_leaf)))
        r = self.fetch(z, address="nobody@example.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("5.1.1", r.stderr)


class KnownCertsTest(unittest.TestCase):
    """Trust on first use, with --server (the channel is not the point here)."""

    def setUp(self):
        self.pki = pki()
        self.bin = sctest.binary("smtpcert")
        self.state = sctest.mkdtemp("sc-known-")
        self.known = os.path.join(self.state, "known_certs")
        self.d = Daemon(certs=("alice-old",))
        self.addCleanup(self.d.cleanup)
        self.addCleanup(self.d.stop)

    def fetch(self, *args, cache=False):
        cmd = [self.bin, "fetch", "--server", "127.0.0.1:%d" % self.d.port, "--ca-file",
               self.pki.path("ca"), "--known-certs", self.known, "--json"]
        if not cache:
            cmd.append("--no-cache")
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(self.state, "cache"))
        return subprocess.run(cmd + list(args) + ["alice@example.test"], capture_output=True,
                              text=True, timeout=60, env=env)

    def test_changed_certificate_refused_then_accepted(self):
        r = self.fetch()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["pin"], "new")
        r = self.fetch()
        self.assertEqual(json.loads(r.stdout)["pin"], "same", r.stderr)
        with open(self.known) as f:
            line = f.read()
        self.assertIn("alice@example.test\t" + self.pki.fingerprint("alice-old"), line)
        self.assertEqual(os.stat(self.known).st_mode & 0o777, 0o600)

        # the administrator publishes a new certificate for the same address
        r = self.d.admin("import", self.pki.chain("alice"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.fetch()
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("CHANGED", r.stderr)
        self.assertIn(self.pki.fingerprint("alice-old"), r.stderr)
        self.assertIn(self.pki.fingerprint("alice"), r.stderr)

        r = self.fetch("--accept-new")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        self.assertEqual(data["pin"], "accepted-new")
        self.assertEqual(data["fingerprint"], self.pki.fingerprint("alice"))
        r = self.fetch()
        self.assertEqual(json.loads(r.stdout)["pin"], "same", r.stderr)

    def test_changed_certificate_accepted_when_it_chains_to_smime_ca(self):
        self.assertEqual(self.fetch().returncode, 0)
        self.d.admin("import", self.pki.chain("alice"))
        r = self.fetch("--chain", "--smime-ca-file", self.pki.path("ca"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["pin"], "changed-ca")
        # an unrelated CA does not vouch for it
        with open(self.known, "w") as f:
            f.write("alice@example.test\t%s\t2026-01-01T00:00:00Z\t2026-01-01T00:00:00Z\n"
                    % self.pki.fingerprint("alice-old"))
        r = self.fetch("--chain", "--smime-ca-file", self.pki.path("other-ca"))
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("CHANGED", r.stderr)

    def test_cache_hit_without_a_connection(self):
        r = self.fetch(cache=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["trust"], "pkix")
        self.d.stop()
        r = self.fetch(cache=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        self.assertEqual(data["trust"], "cache")
        self.assertEqual(data["pin"], "same")
        self.assertIsNone(data["server"])
        self.assertIn("trusted by pkix", data["detail"])
        self.assertEqual(data["fingerprint"], self.pki.fingerprint("alice-old"))
        # --no-cache goes to the (stopped) server
        r = self.fetch(cache=False)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
