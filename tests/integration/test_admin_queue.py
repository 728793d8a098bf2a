#!/usr/bin/env python3
"""smtpcert admin pending / show / accept / reject against a review queue written
the way the daemon writes it (the entry format of lib/queue_int.h, so this test
also pins the on-disk format an administrator reads with cat): listing oldest
first (text and JSON), show with the policy verdict now and the PEM, accept
storing into the repository and auditing, the policy re-check at accept time
(and --force, which never overrides the identity), a failed store deciding
nothing, reject with a reason, decision notices to the submitter, bad ids, and a
damaged entry. The tests need no running daemon: the queue is plain files (the
CERC tests in test_cerc.py decide while the daemon runs)."""
import glob
import json
import os
import secrets
import shutil
import sys
import unittest

import sctest
from sctest import Daemon, pki


def iso(t):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def esc(v):
    """The entry format's escaping: backslash and control octets."""
    out = []
    for ch in v:
        if ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


class QueueTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()

    def setUp(self):
        self.d = Daemon(certs=(), start=False)
        self.addCleanup(self.d.cleanup)
        self.state = os.path.join(self.d.tmp, "state")
        self.q = os.path.join(self.state, "submissions")
        for sub in ("tmp", "pending", "accepted", "rejected"):
            os.makedirs(os.path.join(self.q, sub), mode=0o700, exist_ok=True)

    def entry(self, name, address, received=1795892400, auth="alice@example.test",
              subject="CN=Test User"):
        """Write a pending entry for PKI certificate @name; return its id."""
        sid = secrets.token_hex(16)
        text = "".join([
            "smtpcert-submission: 1\n",
            "id: %s\n" % sid,
            "address: %s\n" % address,
            "auth-user: %s\n" % esc(auth),
            "client: 127.0.0.1:40000\n",
            "received: %s\n" % iso(received),
            "fingerprint: %s\n" % self.pki.fingerprint(name),
            "subject: %s\n" % esc(subject),
            "issuer: CN=smtpcert Test Intermediate CA\n",
            "not-before: 2026-01-01T00:00:00Z\n",
            "not-after: 2036-01-01T00:00:00Z\n",
            "\n",
        ]) + self.pki.pem(name + ".chain")
        with open(os.path.join(self.q, "pending", sid), "w", encoding="utf-8") as f:
            f.write(text)
        return sid

    def admin(self, *args):
        return self.d.admin(*args)

    def audit(self):
        p = os.path.join(self.state, "audit.log")
        if not os.path.exists(p):
            return ""
        with open(p, encoding="utf-8") as f:
            return f.read()

    def where(self, sid):
        return [s for s in ("pending", "accepted", "rejected")
                if os.path.exists(os.path.join(self.q, s, sid))]

    # --- reading ------------------------------------------------------------

    def test_pending_oldest_first_text_and_json(self):
        newer = self.entry("bob", "bob@example.test", received=1795892500,
                           auth="bob@example.test")
        older = self.entry("alice", "alice@example.test", received=1795892400,
                           subject="CN=Evil\nforged line")
        r = self.admin("pending")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertTrue(lines[0].startswith(older + "  2026-11-28T19:00:00Z  alice@example.test"
                                            "  alice@example.test  "
                                            + self.pki.fingerprint("alice")), lines[0])
        self.assertIn("CN=Evil?forged line", lines[0])  # still one line
        self.assertTrue(lines[1].startswith(newer + "  "))
        r = self.admin("pending", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        v = json.loads(r.stdout)
        self.assertEqual([o["id"] for o in v], [older, newer])
        self.assertEqual(v[0]["address"], "alice@example.test")
        self.assertEqual(v[0]["received"], "2026-11-28T19:00:00Z")
        self.assertEqual(v[0]["fingerprint_sha256"], self.pki.fingerprint("alice"))
        self.assertEqual(v[0]["auth_user"], "alice@example.test")
        self.assertEqual(v[0]["client"], "127.0.0.1:40000")
        self.assertEqual(v[1]["auth_user"], "bob@example.test")
        # an empty queue
        shutil.rmtree(os.path.join(self.q, "pending"))
        os.mkdir(os.path.join(self.q, "pending"))
        r = self.admin("pending", "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, []))

    def test_show(self):
        sid = self.entry("alice", "alice@example.test")
        r = self.admin("show", sid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("id:           %s\n" % sid, r.stdout)
        self.assertIn("state:        pending\n", r.stdout)
        self.assertIn("address:      alice@example.test\n", r.stdout)
        self.assertIn("fingerprint:  %s\n" % self.pki.fingerprint("alice"), r.stdout)
        self.assertIn("key:          RSA-2048\n", r.stdout)
        self.assertIn("chain:        2\n", r.stdout)
        self.assertIn("policy:       acceptable now\n", r.stdout)
        certs = sctest.pem_certs(r.stdout)
        self.assertEqual(len(certs), 3)
        self.assertEqual(sctest.pem_to_der(certs[0]), self.pki.der("alice"))
        # the verdict is computed now: a revoked certificate is refused now
        sid = self.entry("carol", "carol@example.test")
        r = self.admin("show", sid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"policy:       refused now: .*revoked")

    # --- deciding -----------------------------------------------------------

    def test_accept_stores_and_audits(self):
        sid = self.entry("alice", "alice@example.test")
        r = self.admin("accept", sid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("accepted %s" % sid, r.stdout)
        self.assertEqual(self.where(sid), ["accepted"])
        with open(os.path.join(self.q, "accepted", sid), encoding="utf-8") as f:
            text = f.read()
        self.assertRegex(text, r"\ndecided: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n")
        r = self.admin("list")
        self.assertIn(self.pki.fingerprint("alice"), r.stdout)
        self.assertRegex(self.audit(), r"actor=admin:\S+ action=accept id=%s "
                                       r"address=alice@example.test\n" % sid)
        # decided once only
        r = self.admin("accept", sid)
        self.assertEqual(r.returncode, 6)
        self.assertIn("already accepted", r.stderr)
        r = self.admin("reject", sid)
        self.assertEqual(r.returncode, 6)
        self.assertIn("already accepted", r.stderr)
        self.assertEqual(self.audit().count("action=accept"), 1)

    def test_accept_rechecks_policy(self):
        sid = self.entry("carol", "carol@example.test")  # revoked by crl_file
        r = self.admin("accept", sid)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertRegex(r.stderr, r"refused: .*revoked.*--force")
        self.assertEqual(self.where(sid), ["pending"])
        self.assertNotIn(self.pki.fingerprint("carol"), self.admin("list").stdout)
        r = self.admin("accept", sid, "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("despite the policy", r.stderr)
        self.assertEqual(self.where(sid), ["accepted"])
        self.assertIn('detail=forced', self.audit())

    def test_force_never_overrides_identity(self):
        # alice's certificate queued for bob (a forged or broken entry)
        sid = self.entry("alice", "bob@example.test")
        r = self.admin("accept", sid, "--force")
        self.assertEqual(r.returncode, 6)
        self.assertIn("does not name bob@example.test", r.stderr)
        self.assertEqual(self.where(sid), ["pending"])
        self.assertEqual(self.admin("list").stdout, "")

    def test_failed_store_decides_nothing(self):
        blocker = os.path.join(self.d.tmp, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("x")
        self.d.write_config({"repository": "lmdb:" + blocker + "/repo"})
        sid = self.entry("alice", "alice@example.test")
        r = self.admin("accept", sid)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.where(sid), ["pending"])
        self.assertNotIn("action=accept", self.audit())

    def test_reject_with_reason_and_notices(self):
        mail = os.path.join(self.d.tmp, "mail")
        self.d.write_config({"notify_submitter": "yes",
                             "delivery": "maildir:" + mail + "/%d/%n"})
        a = self.entry("alice", "alice@example.test")
        b = self.entry("bob", "bob@example.test", auth="bob@example.test")
        r = self.admin("reject", a, "--reason", "not issued by \"our\" CA")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.where(a), ["rejected"])
        with open(os.path.join(self.q, "rejected", a), encoding="utf-8") as f:
            self.assertIn('\nreason: not issued by "our" CA\n', f.read())
        r = self.admin("show", a)
        self.assertIn('reason:       not issued by "our" CA\n', r.stdout)
        self.assertIn("state:        rejected\n", r.stdout)
        r = self.admin("accept", b)
        self.assertEqual(r.returncode, 0, r.stderr)
        notes = {}
        for who in ("alice", "bob"):
            files = glob.glob(os.path.join(mail, "example.test", who, "new", "*"))
            self.assertEqual(len(files), 1, who)
            with open(files[0], encoding="utf-8") as f:
                notes[who] = f.read()
        self.assertIn("To: <alice@example.test>\n", notes["alice"])
        self.assertIn("Subject: Your certificate for alice@example.test was rejected\n",
                      notes["alice"])
        self.assertIn('Reason:         not issued by "our" CA\n', notes["alice"])
        self.assertIn("Subject: Your certificate for bob@example.test was accepted\n",
                      notes["bob"])
        self.assertEqual(self.audit().count("action=notify "), 2)

    def test_no_notice_without_the_option(self):
        mail = os.path.join(self.d.tmp, "mail")
        self.d.write_config({"delivery": "maildir:" + mail + "/%d/%n"})
        sid = self.entry("alice", "alice@example.test")
        self.assertEqual(self.admin("reject", sid).returncode, 0)
        self.assertFalse(os.path.exists(mail))

    # --- bad input ------------------------------------------------------------

    def test_bad_ids(self):
        for bad in ("../../etc/passwd", "ABCDEF0123456789ABCDEF0123456789", "1234", ""):
            for verb in ("show", "accept", "reject"):
                r = self.admin(verb, bad)
                self.assertEqual(r.returncode, 2, (verb, bad, r.stderr))
        for verb in ("show", "accept", "reject"):
            r = self.admin(verb, "0" * 32)
            self.assertEqual(r.returncode, 1, (verb, r.stderr))
            self.assertIn("no such submission", r.stderr)
            r = self.admin(verb)
            self.assertEqual(r.returncode, 2)
        self.assertEqual(self.admin("pending", "--bogus").returncode, 2)

    def test_damaged_entry(self):
        good = self.entry("alice", "alice@example.test")
        bad = secrets.token_hex(16)
        with open(os.path.join(self.q, "pending", bad), "w") as f:
            f.write("smtpcert-submission: 1\nid: %s\naddress: x\n" % bad)
        r = self.admin("pending")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(good, r.stdout)
        self.assertNotIn(bad, r.stdout)
        self.assertIn(bad, r.stderr)  # named in a warning
        r = self.admin("show", bad)
        self.assertEqual(r.returncode, 6)
        self.assertIn("cannot be read", r.stderr)
        self.assertNotEqual(self.admin("accept", bad).returncode, 0)
        # a damaged entry can still be cleared away
        r = self.admin("reject", bad, "--reason", "damaged")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.where(bad), ["rejected"])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + [a for a in sys.argv[1:] if a == "-v"])
