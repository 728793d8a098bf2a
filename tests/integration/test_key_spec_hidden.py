"""A key spec in an error message never shows a PIN (cli/keyload.c).

sign, decrypt and send print the key they could not load; for an RFC 7512
pkcs11: URI that is everything before its query, because the query may hold
pin-value. A wrong PIN given as pin-value on a SoftHSM2 token (tests/lib/softhsm.py)
must fail with the verb's exit code and a message naming the token URI, without
the PIN anywhere on stderr or stdout. Runs without a controlling terminal (a new
session), so nothing is asked.
"""
import os
import subprocess
import sys
import unittest

import sctest

MSG = (b"From: alice@example.test\nTo: bob@example.test\nSubject: t\n\nHello\n")
WRONG_PIN = "97531864"


class KeySpecHidden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import softhsm
        cls.pki = sctest.pki()
        cls.cli = sctest.binary("smtpcert")
        cls.tmp = sctest.mkdtemp("sc-keyspec-")
        cls.conf = os.path.join(cls.tmp, "client.conf")
        open(cls.conf, "w").close()
        cls.hsm = softhsm.SoftHSM()
        cls.hsm.import_key(cls.pki.path("alice.key"), "alice", "01")

    @classmethod
    def tearDownClass(cls):
        cls.hsm.cleanup()

    def smtpcert(self, *args):
        return subprocess.run([self.cli, args[0], "--config", self.conf] + list(args[1:]),
                              input=MSG, capture_output=True, timeout=60,
                              env=self.hsm.env(), start_new_session=True)

    def check(self, verb, r):
        uri = self.hsm.uri(object="alice", pin=WRONG_PIN)
        shown = uri.split("?", 1)[0]
        self.assertNotIn(WRONG_PIN.encode(), r.stderr + r.stdout, verb)
        self.assertNotIn(b"pin-value", r.stderr, verb)
        self.assertIn(("smtpcert: %s: %s" % (verb, shown)).encode(), r.stderr)

    def test_sign_wrong_pin_value(self):
        uri = self.hsm.uri(object="alice", pin=WRONG_PIN)
        r = self.smtpcert("sign", "--key", uri, "--cert", self.pki.chain("alice"))
        self.assertEqual(r.returncode, 6, r.stderr)
        self.check("sign", r)

    def test_decrypt_wrong_pin_value(self):
        uri = self.hsm.uri(object="alice", pin=WRONG_PIN)
        r = self.smtpcert("decrypt", "--key", uri, "--cert", self.pki.chain("alice"))
        self.assertEqual(r.returncode, 6, r.stderr)
        self.check("decrypt", r)


if __name__ == "__main__":
    unittest.main(verbosity=2 if "-v" in sys.argv else 1)
