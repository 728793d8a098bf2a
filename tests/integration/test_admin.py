"""`smtpcert admin -c FILE import|list|remove` on the daemon's repository, and
changes made while the daemon runs being visible to its next CERT without a
restart (INTERFACE.md "Administration"); a hand-edited dir: repository too."""
import json
import os
import re
import unittest

import sctest
from sctest import Daemon, pki

NOT_FOUND = "550 5.1.1 Certificate Not Found"


def strings_in(obj):
    """Every string (and number as text) anywhere in a JSON value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from strings_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings_in(v)
    elif obj is not None:
        yield str(obj)


def hexnorm(s):
    return re.sub(r"[^0-9a-f]", "", s.lower())


class AdminTest(unittest.TestCase):

    def setUp(self):
        self.pki = pki()

    def cert(self, d, addr):
        with d.client() as c:
            c.ehlo()
            return c.cmd("CERT " + addr)

    def test_import_takes_address_from_certificate(self):
        with Daemon(certs=(), start=False) as d:
            r = d.admin("import", self.pki.path("bob"))
            self.assertEqual(r.returncode, 0, r.stderr)
            r = d.admin("list")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("bob@example.test", r.stdout)
            self.assertNotIn("alice@example.test", r.stdout)
            d.start()
            got = self.cert(d, "bob@example.test")
            self.assertEqual(got.ders()[0], self.pki.der("bob"))

    def test_import_several_files_at_once(self):
        with Daemon(certs=(), start=False) as d:
            r = d.admin("import", self.pki.chain("alice"), self.pki.chain("bob"),
                        self.pki.chain("utf8"))
            self.assertEqual(r.returncode, 0, r.stderr)
            out = d.admin("list").stdout
            for a in ("alice@example.test", "bob@example.test", "用户@example.test"):
                self.assertIn(a, out)

    def test_import_refuses_foreign_domain(self):
        with Daemon(certs=(), start=False) as d:
            r = d.admin("import", self.pki.path("mallory"))
            self.assertEqual(r.returncode, 6, r.stdout + r.stderr)  # bad data
            self.assertIn("other.test", r.stderr)
            self.assertNotIn("mallory", d.admin("list").stdout)

    def test_import_refuses_expired(self):
        with Daemon(certs=(), start=False) as d:
            r = d.admin("import", self.pki.path("dave"))
            self.assertEqual(r.returncode, 6, r.stdout + r.stderr)
            self.assertRegex(r.stderr, r"(?i)expired")
            self.assertNotIn("dave@example.test", d.admin("list").stdout)

    def test_import_refuses_revoked(self):
        with Daemon(certs=(), start=False) as d:
            r = d.admin("import", self.pki.path("carol"))
            self.assertEqual(r.returncode, 6, r.stdout + r.stderr)
            self.assertRegex(r.stderr, r"(?i)revoked")
            self.assertNotIn("carol@example.test", d.admin("list").stdout)

    def test_import_not_yet_valid_is_not_served(self):
        # design.md refuses expired and revoked certificates at import; a not yet
        # valid one may be stored ahead of time, but is never served before then
        with Daemon(certs=("bob",), start=False) as d:
            r = d.admin("import", self.pki.path("erin"))
            if r.returncode == 0:
                d.start()
                got = self.cert(d, "erin@example.test")
                self.assertEqual(got.last, NOT_FOUND)
                self.assertNotIn(b"CERTIFICATE", got.raw)
            else:
                self.assertEqual(r.returncode, 6, r.stdout + r.stderr)

    def test_import_refuses_garbage(self):
        with Daemon(certs=(), start=False) as d:
            bad = os.path.join(d.tmp, "bad.pem")
            with open(bad, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n")
            r = d.admin("import", bad)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("bad.pem", r.stderr)
            missing = os.path.join(d.tmp, "missing.pem")
            r = d.admin("import", missing)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("missing.pem", r.stderr)

    def test_list_fields(self):
        # one line per certificate: address, validity, SHA-256 fingerprint, subject
        with Daemon(certs=("alice", "bob"), start=False) as d:
            r = d.admin("list")
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [ln for ln in r.stdout.splitlines() if "@" in ln]
            self.assertEqual(len(lines), 2, r.stdout)
            for ln, name, cn in zip(lines, ("alice", "bob"), ("Alice Example", "Bob Example")):
                self.assertIn("%s@example.test" % name, ln, "list is in key order")
                self.assertIn(self.pki.fingerprint(name), hexnorm(ln), ln)
                self.assertIn(cn, ln)
                self.assertRegex(ln, r"20\d\d-\d\d-\d\d|20\d\d\d\d\d\d", "no validity date")

    def test_list_json(self):
        with Daemon(certs=("alice", "bob"), start=False) as d:
            r = d.admin("list", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            data = json.loads(r.stdout)
            entries = data if isinstance(data, list) else next(
                v for v in data.values() if isinstance(v, list))
            self.assertEqual(len(entries), 2, data)
            for e, name in zip(entries, ("alice", "bob")):
                self.assertIsInstance(e, dict)
                values = list(strings_in(e))
                self.assertIn("%s@example.test" % name, values, e)
                fp = self.pki.fingerprint(name)
                self.assertTrue(any(hexnorm(v) == fp for v in values),
                                "no SHA-256 fingerprint %s in %r" % (fp, e))

    def test_list_marks_unservable_entries(self):
        # an entry revoked after import is listed with a note
        with Daemon(certs=("alice",), start=False) as d:
            d.write_config({"crl_file": self.pki.path("crl-alice.pem")})
            r = d.admin("list")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"alice@example\.test.*(?i:revoked)")

    def test_remove_seen_by_running_daemon(self):
        with Daemon(certs=("alice", "bob")) as d:
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
                r = d.admin("remove", "alice@example.test")
                self.assertEqual(r.returncode, 0, r.stderr)
                # same session, next CERT
                self.assertEqual(c.cmd("CERT alice@example.test").last, NOT_FOUND)
            self.assertEqual(self.cert(d, "alice@example.test").last, NOT_FOUND)
            self.assertEqual(self.cert(d, "bob@example.test").code, 250)
            self.assertNotIn("alice@example.test", d.admin("list").stdout)

    def test_remove_is_case_insensitive_and_reports_missing(self):
        with Daemon(certs=("alice",), start=False) as d:
            r = d.admin("remove", "Alice@EXAMPLE.test")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = d.admin("remove", "alice@example.test")
            self.assertEqual(r.returncode, 1, "removing a missing address: %r" % r)

    def test_fresh_install_starts_with_empty_repository(self):
        # no import before the start: the daemon creates the empty store and
        # answers 550 until the admin's first import, which it then serves
        with Daemon(certs=()) as d:
            self.assertEqual(self.cert(d, "alice@example.test").last, NOT_FOUND)
            d.import_certs(["alice"])
            got = self.cert(d, "alice@example.test")
            self.assertEqual(got.code, 250, got)
            self.assertEqual(got.ders()[0], self.pki.der("alice"))

    def test_import_while_running_seen_by_next_cert(self):
        with Daemon(certs=("alice",)) as d:
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT bob@example.test").last, NOT_FOUND)
                d.import_certs(["bob"])
                r = c.cmd("CERT bob@example.test")
                self.assertEqual(r.code, 250, r)
                self.assertEqual(r.ders()[0], self.pki.der("bob"))

    def test_newest_valid_certificate_served(self):
        with Daemon(certs=("alice-old", "alice")) as d:
            r = d.admin("list")
            self.assertEqual(r.stdout.count("alice@example.test"), 2, r.stdout)
            got = self.cert(d, "alice@example.test")
            self.assertEqual(got.ders()[0], self.pki.der("alice"),
                             "not the valid certificate with the latest notBefore")
            # import order does not matter
            r = d.admin("remove", "alice@example.test")
            self.assertEqual(r.returncode, 0, r.stderr)
            d.import_certs(["alice", "alice-old"])
            self.assertEqual(self.cert(d, "alice@example.test").ders()[0],
                             self.pki.der("alice"))

    def test_reimport_same_certificate_replaces(self):
        with Daemon(certs=("alice",), start=False) as d:
            d.import_certs(["alice"])
            self.assertEqual(d.admin("list").stdout.count("alice@example.test"), 1)

    def test_dir_repository_hand_edited_file_picked_up(self):
        with Daemon(certs=(), start=False) as d:
            d.overrides["repository"] = "dir:" + d.dir_repo
            d.put_dir_cert("alice")
            d.write_config()
            d.start()
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT bob@example.test").last, NOT_FOUND)
                d.put_dir_cert("bob")
                r = c.cmd("CERS bob@example.test")
                self.assertEqual(r.code, 250, r)
                self.assertEqual(r.ders()[0], self.pki.der("bob"))
                self.assertEqual(r.ders()[1], self.pki.der("intermediate"))
                # a newer certificate in <key>.d/ wins over an older <key>.pem,
                # and a not-yet-valid one (the newest notBefore) is skipped
                d.put_dir_cert("alice-old")
                d.put_dir_cert("alice", sub="renewed")
                d.put_dir_cert("alice-future", sub="next")
                self.assertEqual(c.cmd("CERT alice@example.test").ders()[0],
                                 self.pki.der("alice"))
                # and the file removed by hand is gone
                os.remove(os.path.join(d.dir_repo, "bob@example.test.pem"))
                self.assertEqual(c.cmd("CERT bob@example.test").last, NOT_FOUND)

    def test_repository_list_first_store_with_address_answers(self):
        with Daemon(certs=("alice",), start=False) as d:
            d.overrides["repository"] = "lmdb:%s, dir:%s" % (os.path.join(d.tmp, "repo"),
                                                              d.dir_repo)
            d.put_dir_cert("alice-old")
            d.put_dir_cert("bob")
            d.write_config()
            d.start()
            self.assertEqual(self.cert(d, "alice@example.test").ders()[0],
                             self.pki.der("alice"))
            self.assertEqual(self.cert(d, "bob@example.test").ders()[0], self.pki.der("bob"))

    def test_first_store_with_only_expired_entry_still_answers(self):
        """The first store that has the address answers: its expired certificate
        is not served, and a copy in a later store does not shadow that."""
        with Daemon(certs=(), start=False) as d:
            second = os.path.join(d.tmp, "second")
            os.makedirs(second)
            d.overrides["repository"] = "dir:%s, dir:%s" % (d.dir_repo, second)
            d.put_dir_cert("dave")  # expired, in the first store
            with open(os.path.join(second, "dave@example.test.pem"), "w") as f:
                f.write(self.pki.pem("alice.chain"))
            with open(os.path.join(second, "bob@example.test.pem"), "w") as f:
                f.write(self.pki.pem("bob.chain"))
            d.write_config()
            d.start()
            self.assertEqual(self.cert(d, "dave@example.test").last, NOT_FOUND)
            # an address the first store lacks is still found in the second
            self.assertEqual(self.cert(d, "bob@example.test").ders()[0], self.pki.der("bob"))

    def test_admin_unknown_config_key_fails_with_location(self):
        with Daemon(certs=(), start=False) as d:
            d.write_config(extra="no_such_key = 1\n")
            r = d.admin("list")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("no_such_key", r.stderr)
            self.assertIn(d.conf, r.stderr)


if __name__ == "__main__":
    unittest.main()
