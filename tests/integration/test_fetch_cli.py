"""`smtpcert fetch` against the real daemon: PEM on stdout, --chain, exit codes
(0 found, 1 not found, 4 network/TLS), --insecure's warning, TLS verification
with --ca-file, --json, and refusals never printing a certificate."""
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import unittest
import urllib.parse

import sctest
from sctest import Daemon, free_port6, pki


def find_pems(obj):
    """Every PEM certificate inside any string of a JSON value, in document order."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from find_pems(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from find_pems(v)
    elif isinstance(obj, str):
        yield from sctest.pem_certs(obj)


class FetchTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.bin = sctest.binary("smtpcert")
        cls.d = Daemon(certs=("alice", "bob", "utf8"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def fetch(self, *args, port=None, ca="ca"):
        cmd = [self.bin, "fetch", "--server", "127.0.0.1:%d" % (port or self.d.port)]
        if ca:
            cmd += ["--ca-file", self.pki.path(ca)]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)

    def test_fetch_prints_pem(self):
        r = self.fetch("alice@example.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        pems = sctest.pem_certs(r.stdout)
        self.assertEqual(len(pems), 1, r.stdout)
        self.assertEqual(sctest.pem_to_der(pems[0]), self.pki.der("alice"))
        # stdout is only the PEM: openssl reads it as is
        out = subprocess.run(["openssl", "x509", "-outform", "DER"], input=r.stdout.encode(),
                             capture_output=True, timeout=30)
        self.assertEqual(out.stdout, self.pki.der("alice"))
        self.assertEqual(r.stdout.strip().splitlines()[0], "-----BEGIN CERTIFICATE-----")
        self.assertEqual(r.stdout.strip().splitlines()[-1], "-----END CERTIFICATE-----")

    def test_fetch_angle_brackets_and_case(self):
        r = self.fetch("<Bob@Example.TEST>")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]), self.pki.der("bob"))

    def test_fetch_utf8_address(self):
        r = self.fetch("用户@example.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]), self.pki.der("utf8"))

    def test_fetch_chain(self):
        r = self.fetch("--chain", "alice@example.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        ders = [sctest.pem_to_der(p) for p in sctest.pem_certs(r.stdout)]
        self.assertGreaterEqual(len(ders), 2, r.stdout)
        self.assertEqual(ders[0], self.pki.der("alice"))
        self.assertEqual(ders[1], self.pki.der("intermediate"))

    def test_fetch_not_found_exit_1(self):
        r = self.fetch("nobody@example.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("BEGIN CERTIFICATE", r.stdout)
        self.assertIn("5.1.1", r.stderr, "the server's reply text is not reported")

    def test_fetch_insecure_warns(self):
        r = self.fetch("--insecure", "alice@example.test", ca=None)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]),
                         self.pki.der("alice"))
        self.assertRegex(r.stderr, r"(?i)insecure|not verif|unverified|no verification")

    def test_fetch_wrong_ca_exit_4_no_output(self):
        r = self.fetch("alice@example.test", ca="other-ca")
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertNotEqual(r.stderr.strip(), "")

    def test_fetch_json(self):
        r = self.fetch("--json", "alice@example.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        self.assertIsInstance(data, dict)
        pems = list(find_pems(data))
        self.assertGreaterEqual(len(pems), 1, data)
        self.assertEqual(sctest.pem_to_der(pems[0]), self.pki.der("alice"))
        text = json.dumps(data, ensure_ascii=False)
        self.assertIn("alice@example.test", text)
        self.assertIn(self.pki.fingerprint("alice"), text.lower().replace(":", ""))

    def test_fetch_server_down_exit_4(self):
        port = sctest.free_port()
        r = self.fetch("alice@example.test", port=port)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")

    def test_fetch_foreign_domain_refused(self):
        r = self.fetch("mallory@other.test")
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("BEGIN CERTIFICATE", r.stdout)
        self.assertIn("5.7.1", r.stderr)

    def test_fetch_bad_address_usage(self):
        r = self.fetch("not-an-address")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")

    def test_fetch_no_argument_usage(self):
        r = subprocess.run([self.bin, "fetch"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)


class PemServer:
    """A loopback HTTPS server (the test TLS certificate) serving PEM files by
    path, recording the paths asked for."""

    def __init__(self, files):
        outer = self
        self.files = files
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = urllib.parse.unquote(self.path)
                outer.requests.append(path)
                body = outer.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki().path("server.chain.pem"), pki().path("server.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class FetchCertUrlTest(unittest.TestCase):
    """INTERFACE.md: with cert_url set the server answers CERT with a URL and
    `smtpcert fetch` follows it (over HTTPS, verified with --ca-file)."""

    def test_fetch_follows_cert_url(self):
        web = PemServer({"/alice@example.test.pem": pki().pem("alice").encode()})
        self.addCleanup(web.close)
        url = "https://127.0.0.1:%d/%%u.pem" % web.port
        with Daemon(overrides={"cert_url": url}) as d:
            r = subprocess.run([sctest.binary("smtpcert"), "fetch", "--server",
                                "127.0.0.1:%d" % d.port, "--ca-file", pki().path("ca"),
                                "alice@example.test"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            pems = sctest.pem_certs(r.stdout)
            self.assertEqual(len(pems), 1, r.stdout)
            self.assertEqual(sctest.pem_to_der(pems[0]), pki().der("alice"))
            self.assertEqual(web.requests, ["/alice@example.test.pem"])


class FakeServer:
    """A scripted plaintext SMTP server for one connection: answers EHLO without
    STARTTLS, then answers CERT/CERS with @cert_reply (bytes)."""

    def __init__(self, cert_reply):
        self.cert_reply = cert_reply
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            f = conn.makefile("rb")
            try:
                conn.sendall(b"220 fake.test ESMTP\r\n")
                for line in f:
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        conn.sendall(b"250-fake.test\r\n250-CERT\r\n250 CERS\r\n")
                    elif verb in (b"CERT", b"CERS"):
                        conn.sendall(self.cert_reply)
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        conn.sendall(b"500 what\r\n")
            except OSError:
                pass

    def close(self):
        self.sock.close()


class FetchHostileServerTest(unittest.TestCase):
    """fetch checks what it receives: bad data is a protocol error (exit 5), never
    printed, and an endless reply does not make it hang or grow without bound."""

    def fetch(self, port):
        return subprocess.run([sctest.binary("smtpcert"), "fetch", "--server",
                               "127.0.0.1:%d" % port, "--insecure", "alice@example.test"],
                              capture_output=True, timeout=60)

    def test_unparsable_certificate_exit_5(self):
        fake = FakeServer(b"250------BEGIN CERTIFICATE-----\r\n250-!!not base64!!\r\n"
                          b"250------END CERTIFICATE-----\r\n250 2.0.0 OK\r\n")
        self.addCleanup(fake.close)
        r = self.fetch(fake.port)
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_wrong_certificate_address_not_printed_as_is(self):
        # a well-formed certificate for someone else: printed only if fetch says so
        pem = pki().pem("bob").strip().splitlines()
        body = b"".join(b"250-" + ln.encode() + b"\r\n" for ln in pem)
        fake = FakeServer(body + b"250 2.0.0 OK\r\n")
        self.addCleanup(fake.close)
        r = self.fetch(fake.port)
        self.assertNotEqual(r.returncode, 0, "a certificate for bob accepted for alice")
        self.assertEqual(r.stdout, b"")

    def test_trusted_certificate_label_accepted(self):
        # docs/protocol.md 4.3: a client MUST accept the proposal's label too
        pem = pki().pem("alice").strip().replace("BEGIN CERTIFICATE", "BEGIN TRUSTED CERTIFICATE")
        pem = pem.replace("END CERTIFICATE", "END TRUSTED CERTIFICATE").splitlines()
        body = b"".join(b"250-" + ln.encode() + b"\r\n" for ln in pem)
        fake = FakeServer(body + b"250 OK\r\n")
        self.addCleanup(fake.close)
        r = self.fetch(fake.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        pems = sctest.pem_certs(r.stdout)
        self.assertEqual(len(pems), 1, r.stdout)
        self.assertEqual(sctest.pem_to_der(pems[0]), pki().der("alice"))

    def test_endless_reply_is_bounded(self):
        line = b"250-" + b"A" * 64 + b"\r\n"
        fake = FakeServer(b"250------BEGIN CERTIFICATE-----\r\n" + line * 200000)
        self.addCleanup(fake.close)
        r = self.fetch(fake.port)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(r.returncode, (4, 5), r.stderr)
        self.assertEqual(r.stdout, b"")


class FetchIpv6Test(unittest.TestCase):

    def test_server_ipv6_literal(self):
        port6 = free_port6(self)
        d = Daemon(start=False)
        with d:
            d.overrides["listen"] = "127.0.0.1:%d, [::1]:%d" % (d.port, port6)
            d.write_config()
            d.start()
            r = subprocess.run([sctest.binary("smtpcert"), "fetch", "--server",
                                "[::1]:%d" % port6, "--ca-file", pki().path("ca"),
                                "alice@example.test"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]),
                             pki().der("alice"))


class FetchTemporaryFailureTest(unittest.TestCase):

    def test_451_exit_3(self):
        d = Daemon(certs=(), start=False)
        with d:
            d.overrides["repository"] = "dir:" + d.dir_repo
            d.put_dir_cert("alice")
            d.write_config()
            d.start()
            os.rename(d.dir_repo, d.dir_repo + ".away")
            with open(d.dir_repo, "w") as f:
                f.write("not a directory\n")
            r = subprocess.run([sctest.binary("smtpcert"), "fetch", "--server",
                                "127.0.0.1:%d" % d.port, "--ca-file", pki().path("ca"),
                                "alice@example.test"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertIn("4.3.0", r.stderr)


class FetchNoTlsTest(unittest.TestCase):
    """A server without STARTTLS: fetch refuses (exit 4) unless --insecure."""

    def test_no_starttls(self):
        with Daemon(overrides={"tls_cert_file": None, "tls_key_file": None}) as d:
            base = [sctest.binary("smtpcert"), "fetch", "--server", "127.0.0.1:%d" % d.port]
            r = subprocess.run(base + ["--ca-file", pki().path("ca"), "alice@example.test"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
            self.assertEqual(r.stdout, "")
            r = subprocess.run(base + ["--insecure", "alice@example.test"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sctest.pem_to_der(sctest.pem_certs(r.stdout)[0]),
                             pki().der("alice"))


if __name__ == "__main__":
    unittest.main()
