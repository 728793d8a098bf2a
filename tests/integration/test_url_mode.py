"""URL mode end to end (docs/protocol.md 10.2): `smtpcert admin export-www DIR`
writes the files cert_url points at, a real HTTPS server (Python's http.server
with the test PKI's server certificate) serves DIR on loopback, and `smtpcert
fetch` follows the daemon's URL with verification, then checks what it got as
it checks an inline certificate."""
import functools
import http.server
import os
import shutil
import ssl
import subprocess
import threading
import unittest

import sctest
from sctest import Daemon, pki


class WebRoot:
    """http.server over HTTPS serving @root from @host (the test server
    certificate names 127.0.0.1, ::1 and localhost only)."""

    def __init__(self, root, host="127.0.0.1"):
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=root)
        self.httpd = http.server.ThreadingHTTPServer((host, 0), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki().path("server.chain.pem"), pki().path("server.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class UrlModeTest(unittest.TestCase):
    HOST = "127.0.0.1"

    def setUp(self):
        self.www = sctest.mkdtemp("sc-www-")
        self.addCleanup(shutil.rmtree, self.www, True)
        self.web = WebRoot(self.www, self.HOST)
        self.addCleanup(self.web.close)
        url = "https://%s:%d/certs/%%u.pem" % (self.HOST, self.web.port)
        # lmdb: holds alice, bob, utf8 and erin (not yet valid); a dir: store
        # after it holds dave (expired) and carol (revoked by crl.pem): the
        # import refuses those, a hand-edited dir: store does not
        self.d = Daemon(overrides={"cert_url": url},
                        certs=("alice", "bob", "utf8", "erin"), start=False)
        self.addCleanup(self.d.cleanup)
        if not self.d.base_config()["repository"].startswith("dir:"):
            self.d.overrides["repository"] = [self.d.base_config()["repository"],
                                              "dir:" + self.d.dir_repo]
            self.d.write_config()
        self.d.put_dir_cert("dave")
        self.d.put_dir_cert("carol")
        self.d.start()

    def export(self):
        r = self.d.admin("export-www", self.www)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"^export-www: \d+ written, \d+ removed, 0 skipped")
        return r

    def path(self, address):
        return os.path.join(self.www, "certs", address + ".pem")

    def fetch(self, address, *extra):
        return subprocess.run([sctest.binary("smtpcert"), "fetch", "--server",
                               "127.0.0.1:%d" % self.d.port, "--ca-file", pki().path("ca")]
                              + list(extra) + [address],
                              capture_output=True, text=True, timeout=60)

    def test_export_then_fetch_follows_url(self):
        r = self.export()
        self.assertIn("3 written, 0 removed", r.stdout)
        with open(self.path("alice@example.test")) as f:
            pems = sctest.pem_certs(f.read())
        # leaf then chain: the one file serves CERT and CERS
        self.assertEqual(sctest.pem_to_der(pems[0]), pki().der("alice"))
        self.assertGreaterEqual(len(pems), 2)
        self.assertEqual(os.stat(self.path("alice@example.test")).st_mode & 0o777, 0o644)
        self.assertTrue(os.path.exists(self.path("用户@example.test")))
        r = self.fetch("alice@example.test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([sctest.pem_to_der(p) for p in sctest.pem_certs(r.stdout)],
                         [pki().der("alice")])
        self.assertIn("/certs/alice@example.test.pem", self.web.requests)
        # CERS answers with the same URL; the file's chain comes along
        r = self.fetch("alice@example.test", "--chain")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ders = [sctest.pem_to_der(p) for p in sctest.pem_certs(r.stdout)]
        self.assertEqual(ders[0], pki().der("alice"))
        self.assertEqual(ders, [sctest.pem_to_der(p) for p in pems])
        r = self.fetch("用户@example.test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]), pki().der("utf8"))
        # nothing but our files and the manifest in the web root
        self.assertEqual(sorted(os.listdir(self.www)), [".smtpcert-export", "certs"])
        self.assertEqual(sorted(os.listdir(os.path.join(self.www, "certs"))),
                         ["alice@example.test.pem", "bob@example.test.pem",
                          "用户@example.test.pem"])

    def test_revoked_and_expired_not_exported(self):
        self.export()
        self.assertFalse(os.path.exists(self.path("carol@example.test")))
        self.assertFalse(os.path.exists(self.path("dave@example.test")))
        self.assertFalse(os.path.exists(self.path("erin@example.test")))
        # alice revoked after the first export: her file goes on the next one
        self.d.overrides["crl_file"] = pki().path("crl-alice.pem")
        self.d.write_config()
        r = self.export()
        self.assertIn("2 written, 1 removed", r.stdout)
        self.assertFalse(os.path.exists(self.path("alice@example.test")))

    def test_removed_address_file_disappears(self):
        self.export()
        foreign = os.path.join(self.www, "certs", "keep-me.pem")
        with open(foreign, "w") as f:
            f.write("not ours\n")
        r = self.d.admin("remove", "bob@example.test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.export()
        self.assertIn("2 written, 1 removed", r.stdout)
        self.assertFalse(os.path.exists(self.path("bob@example.test")))
        self.assertTrue(os.path.exists(self.path("alice@example.test")))
        # a file export-www did not write is never touched
        self.assertTrue(os.path.exists(foreign))
        # nor one a tampered manifest points at outside DIR or at a hidden file
        outside = os.path.join(sctest.mkdtemp("sc-outside-"), "victim")
        with open(outside, "w") as f:
            f.write("x\n")
        hidden = os.path.join(self.www, "certs", ".hidden")
        with open(hidden, "w") as f:
            f.write("x\n")
        with open(os.path.join(self.www, ".smtpcert-export"), "a") as f:
            f.write(os.path.relpath(outside, self.www) + "\n" + outside + "\ncerts/.hidden\n")
        r = self.export()
        self.assertIn("2 written, 0 removed", r.stdout)
        self.assertTrue(os.path.exists(outside))
        self.assertTrue(os.path.exists(hidden))
        r = self.fetch("bob@example.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_wrong_certificate_in_file_refused(self):
        self.export()
        # the web server holds bob's certificate under alice's name
        shutil.copy(pki().path("bob"), self.path("alice@example.test"))
        r = self.fetch("alice@example.test")
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
        self.assertNotIn("BEGIN CERTIFICATE", r.stdout)
        self.assertIn("the certificate is not for alice@example.test", r.stderr)

    def test_export_usage_and_config_errors(self):
        r = self.d.admin("export-www")
        self.assertEqual(r.returncode, 2)
        r = self.d.admin("export-www", os.path.join(self.www, "missing"))
        self.assertEqual(r.returncode, 7, r.stderr)
        r = self.d.admin("export-www", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("cert_url", r.stdout)


class UrlModeNameMismatchTest(UrlModeTest):
    """The web server's certificate does not name 127.0.0.2: the fetch fails
    verification, prints nothing and never sends the request."""
    HOST = "127.0.0.2"

    def test_name_mismatch_refused(self):
        self.export()
        r = self.fetch("alice@example.test")
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertNotIn("BEGIN CERTIFICATE", r.stdout)
        self.assertIn("hostname mismatch", r.stderr)
        self.assertEqual(self.web.requests, [])


def load_tests(loader, tests, pattern):
    """The mismatch class runs its own test only, not the inherited ones."""
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(UrlModeTest))
    suite.addTest(UrlModeNameMismatchTest("test_name_mismatch_refused"))
    return suite


if __name__ == "__main__":
    unittest.main()
