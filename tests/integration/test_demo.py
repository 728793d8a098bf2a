"""scripts/demo (what `make demo` runs after building), as INTERFACE.md describes it:
it sets up its state, prints commands a user can paste, serves alice and bob on
its port, and a second run reuses the state. The test runs it with its state in a
temp dir (DEMO_DIR) on a free port (DEMO_PORT) and pastes the printed commands."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import sctest
from sctest import pki

SCRIPT = os.path.join(sctest.SOURCE_DIR, "scripts", "demo")


class DemoTest(unittest.TestCase):

    def setUp(self):
        sctest.binary("smtpcertd")
        sctest.binary("smtpcert")
        self.tmp = tempfile.mkdtemp(prefix="sc-demo-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.state = os.path.join(self.tmp, "demo")
        # mkcerts is idempotent: seed the demo's PKI with the shared test PKI
        shutil.copytree(pki().dir, os.path.join(self.state, "pki"))
        self.port = sctest.free_port()
        self.env = dict(os.environ, DEMO_DIR=self.state, DEMO_PORT=str(self.port),
                        SC_BIN_DIR=os.path.abspath(sctest.BIN_DIR))

    def run_demo(self):
        """Start scripts/demo; wait for its banner. Returns (process, stdout text)."""
        out = open(os.path.join(self.tmp, "demo.out"), "w+")
        self.addCleanup(out.close)
        p = subprocess.Popen([SCRIPT], cwd=sctest.SOURCE_DIR, env=self.env,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.assertIsNone(p.poll(), "scripts/demo exited:\n" + self.read(out))
            try:
                with sctest.Client(self.port, timeout=5) as c:
                    self.assertEqual(c.banner.code, 220)
                    c.cmd("QUIT")
                    return p, self.read(out)
            except (ConnectionRefusedError, sctest.Closed):
                time.sleep(0.2)
        self.fail("demo server did not come up:\n" + self.read(out))

    @staticmethod
    def read(f):
        f.flush()
        with open(f.name) as g:
            return g.read()

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0, "demo server did not exit 0 on SIGTERM")

    def paste(self, line):
        return subprocess.run(line, shell=True, cwd=sctest.SOURCE_DIR, capture_output=True,
                              text=True, timeout=30)

    def printed(self, text, pattern):
        lines = [ln.strip() for ln in text.splitlines() if re.search(pattern, ln)]
        self.assertTrue(lines, "no printed line matching %r in:\n%s" % (pattern, text))
        return lines[0]

    def alice_der(self):
        return pki().der("alice")

    def test_demo_serves_printed_commands_and_reuses_state(self):
        p, text = self.run_demo()
        try:
            insecure = self.printed(text, r"smtpcert fetch --server 127\.0\.0\.1:%d --insecure "
                                    r"alice@example\.test" % self.port)
            r = self.paste(insecure)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]), self.alice_der())

            verified = self.printed(text, r"smtpcert fetch .*--ca-file \S+ca\.pem "
                                    r"alice@example\.test")
            r = self.paste(verified)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]), self.alice_der())

            s_client = self.printed(text, r"\| openssl s_client -starttls smtp")
            r = self.paste(s_client)
            self.assertIn("250 2.0.0 OK", r.stdout, r.stderr)
            self.assertEqual(sctest.pem_to_der(sctest.pem_certs(
                "\n".join(ln[4:] for ln in r.stdout.splitlines()))[0]), self.alice_der())

            # mail to bob is accepted and stored encrypted at rest; the printed
            # decrypt line recovers it
            swaks = self.printed(text, r"^\s*swaks --server 127\.0\.0\.1:%d " % self.port)
            r = self.paste(swaks)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            maildir = os.path.join(self.state, "mail", "example.test", "bob", "new")
            stored = os.listdir(maildir)
            self.assertEqual(len(stored), 1, stored)
            with open(os.path.join(maildir, stored[0]), "rb") as f:
                raw = f.read()
            self.assertIn(b"application/pkcs7-mime", raw)
            self.assertNotIn(b"hello bob", raw)
            r = self.paste(self.printed(text, r"smtpcert decrypt --key \S+bob\.key"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("hello bob", r.stdout)

            conf = os.path.join(self.state, "smtpcertd.conf")
            with open(conf) as f:
                conf_text = f.read()
            self.assertRegex(conf_text, r"(?m)^listen = 127\.0\.0\.1:%d$" % self.port)
            self.assertRegex(conf_text, r"(?m)^domains = example\.test$")
            self.assertIn("lmdb:", conf_text)
        finally:
            self.stop(p)

        # second run: same state, nothing imported again, still serving bob
        p, text2 = self.run_demo()
        try:
            self.assertNotIn("imported", text2)
            with open(conf) as f:
                self.assertEqual(f.read(), conf_text)
            with sctest.Client(self.port) as c:
                c.ehlo()
                r = c.cmd("CERT bob@example.test")
                self.assertEqual(r.ders()[0], pki().der("bob"))
            r = self.paste("%s admin -c %s list" % (os.path.join(sctest.BIN_DIR, "smtpcert"),
                                                    conf))
            self.assertEqual(r.stdout.count("@example.test"), 2, r.stdout)
        finally:
            self.stop(p)


if __name__ == "__main__":
    unittest.main()
