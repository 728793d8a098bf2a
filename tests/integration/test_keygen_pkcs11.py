"""smtpcert keygen and PKCS#11 keys, checked by tools we did not write.

- keygen with --passphrase-file: `openssl verify` accepts the self-signed
  certificate for S/MIME, `openssl x509 -text` shows the extensions, `openssl pkey`
  reads the encrypted key with the passphrase only, `smtpcert check` accepts it.
- keygen on a terminal (a pty): asks twice with echo off, recommends a passphrase
  different from the mailbox password; without a terminal and without
  --passphrase-file / --no-passphrase it refuses (exit 2), writing nothing.
- the configuration: `keygen = no` in the system file disables keygen even when the
  user's file says yes; the user's file ($XDG_CONFIG_HOME, ~/.config,
  $SMTPCERT_CONFIG, --config) is found and its errors name FILE:LINE.
- PKCS#11 on a private SoftHSM2 token: keygen --pkcs11 makes the key pair on the
  token (pkcs11-tool sees it sensitive and never extractable, with the
  certificate's public key); a key made by OpenSC's pkcs11-tool signs through a
  pkcs11: URI (`smtpcert sign`, verified by `openssl smime`); token keys from
  keygen decrypt what `openssl cms -encrypt` made (RSA and ECDH on the token); a
  wrong PIN is a clear error.
"""
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import sctest
from softhsm import SoftHSM

OPENSSL = shutil.which("openssl")
KEEP = os.environ.get("SC_KEEP") == "1"


class Base(unittest.TestCase):
    def setUp(self):
        if not OPENSSL:
            raise AssertionError("openssl is missing: install the openssl package")
        self.smtpcert = sctest.binary("smtpcert")
        self.dir = tempfile.mkdtemp(prefix="sc-keygen-")
        self.home = os.path.join(self.dir, "home")
        os.mkdir(self.home)
        self.env = dict(os.environ)
        for k in ("SMTPCERT_CONFIG", "XDG_CONFIG_HOME", "SMTPCERT_PKCS11_MODULE"):
            self.env.pop(k, None)
        self.env["HOME"] = self.home
        # A system file that does not exist unless a test writes it.
        self.system_conf = self.path("system.conf")
        self.env["SMTPCERT_SYSTEM_CONFIG"] = self.system_conf

    def tearDown(self):
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text, mode=0o600):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def run_cli(self, *args, env=None, input=b""):
        # A new session: no controlling terminal, so /dev/tty cannot be opened.
        return subprocess.run([self.smtpcert] + list(args), env=env or self.env,
                              input=input, capture_output=True, timeout=120,
                              start_new_session=True)

    def openssl(self, *args, check=True):
        p = subprocess.run([OPENSSL] + list(args), capture_output=True, timeout=60)
        if check and p.returncode != 0:
            self.fail("openssl %s failed: %s%s" % (" ".join(args), p.stdout.decode(),
                                                   p.stderr.decode()))
        return p

    def cert_text(self, cert):
        return self.openssl("x509", "-in", cert, "-noout", "-text").stdout.decode()

    def pubkey_der(self, cert):
        return self.openssl("x509", "-in", cert, "-noout", "-pubkey").stdout


class KeygenFiles(Base):
    def test_rsa_with_passphrase_file(self):
        pw = self.write("pw", "a long passphrase\n")
        key, cert = self.path("alice.key"), self.path("alice.pem")
        p = self.run_cli("keygen", "--email", "alice@example.test", "--passphrase-file", pw,
                         "--out-key", key, "--out-cert", cert, "--days", "90")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("RSA-3072", out)
        self.assertIn("next: smtpcert submit --cert %s alice@example.test" % cert, out)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        with open(key) as f:
            self.assertIn("-----BEGIN ENCRYPTED PRIVATE KEY-----", f.read())

        # OpenSSL verifies the self-signed certificate for S/MIME use.
        v = self.openssl("verify", "-CAfile", cert, "-purpose", "smimeencrypt", cert)
        self.assertIn(b": OK", v.stdout)
        self.openssl("verify", "-CAfile", cert, "-purpose", "smimesign", cert)
        text = self.cert_text(cert)
        self.assertIn("Public-Key: (3072 bit)", text)
        self.assertRegex(text, r"Key Usage: critical\s+Digital Signature, Key Encipherment\n")
        self.assertIn("E-mail Protection", text)
        self.assertIn("email:alice@example.test", text)
        self.assertIn("S/MIME Capabilities", text)
        self.assertIn("Subject Key Identifier", text)
        self.assertIn("CA:FALSE", text)
        enddate = self.openssl("x509", "-in", cert, "-noout", "-enddate").stdout.decode()
        end = time.mktime(time.strptime(enddate.strip().split("=", 1)[1],
                                        "%b %d %H:%M:%S %Y %Z"))
        self.assertLess(abs(end - time.time() - 90 * 86400), 2 * 86400)

        # The key opens with the passphrase, not without, and matches the certificate.
        pub = self.openssl("pkey", "-in", key, "-passin", "file:" + pw, "-pubout").stdout
        self.assertEqual(pub, self.pubkey_der(cert))
        bad = self.write("bad", "wrong\n")
        self.assertNotEqual(self.openssl("pkey", "-in", key, "-passin", "file:" + bad,
                                         "-noout", check=False).returncode, 0)
        self.assertNotEqual(self.openssl("pkey", "-in", key, "-passin", "pass:",
                                         "-noout", check=False).returncode, 0)
        # Our own acceptance policy agrees.
        c = self.run_cli("check", cert, "--email", "alice@example.test")
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)

    def test_p256_csr_and_utf8_mailbox(self):
        pw = self.write("pw", "pass\n")
        who = "j\u00f6rg@example.test"
        key, csr, cert = self.path("j.key"), self.path("j.csr"), self.path("j.pem")
        p = self.run_cli("keygen", "--email", who, "--key-type", "p256",
                         "--passphrase-file", pw, "--out-key", key, "--out-csr", csr,
                         "--out-cert", cert)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = self.openssl("req", "-in", csr, "-noout", "-verify", "-text")
        self.assertIn(b"verify OK", r.stdout + r.stderr)
        text = r.stdout.decode()
        self.assertIn("Requested Extensions", text)
        self.assertRegex(text, r"Key Usage: critical\s+Digital Signature, Key Agreement\n")
        self.assertIn("ASN1 OID: prime256v1", text)
        # RFC 9598: SmtpUTF8Mailbox otherName (1.3.6.1.5.5.7.8.9), UTF8String, no
        # rfc822Name for a non-ASCII local part.
        der = self.openssl("x509", "-in", cert, "-outform", "DER").stdout
        self.assertIn(b"\x06\x08\x2b\x06\x01\x05\x05\x07\x08\x09", der)
        self.assertIn(b"\x0c" + bytes([len(who.encode())]) + who.encode(), der)
        self.assertNotIn("email:", self.cert_text(cert))
        c = self.run_cli("check", cert, "--email", who)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)

    def test_no_passphrase_is_explicit(self):
        key, cert = self.path("n.key"), self.path("n.pem")
        p = self.run_cli("keygen", "--email", "n@example.test", "--key-type", "p256",
                         "--no-passphrase", "--out-key", key, "--out-cert", cert)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"NOT encrypted", p.stdout)
        with open(key) as f:
            self.assertIn("-----BEGIN PRIVATE KEY-----", f.read())
        self.openssl("pkey", "-in", key, "-noout")

    def test_no_tty_no_option_refused(self):
        key, cert = self.path("t.key"), self.path("t.pem")
        p = self.run_cli("keygen", "--email", "t@example.test", "--key-type", "p256",
                         "--out-key", key, "--out-cert", cert)
        self.assertEqual(p.returncode, 2, p.stderr)
        err = p.stderr.decode()
        self.assertIn("--passphrase-file", err)
        self.assertIn("--no-passphrase", err)
        self.assertFalse(os.path.exists(key))
        self.assertFalse(os.path.exists(cert))

    def test_never_overwrites(self):
        key = self.write("old.key", "precious\n")
        p = self.run_cli("keygen", "--email", "o@example.test", "--key-type", "p256",
                         "--no-passphrase", "--out-key", key, "--out-cert", self.path("o.pem"))
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(b"exists", p.stderr)
        with open(key) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertFalse(os.path.exists(self.path("o.pem")))

    def test_usage_errors(self):
        for args in (["--out-key", "k", "--out-cert", "c"],                     # no email
                     ["--email", "a@b.test", "--out-key", "k"],                  # no output
                     ["--email", "a@b.test", "--out-cert", "c"],                 # no key file
                     ["--email", "a@b.test", "--out-key", "k", "--out-cert", "c",
                      "--key-type", "dsa"],
                     ["--email", "a@b.test", "--out-key", "k", "--out-cert", "c",
                      "--days", "0"],
                     ["--email", "a@b.test", "--out-key", "k", "--out-cert", "c",
                      "--no-passphrase", "--passphrase-file", "p"],
                     ["--email", "not an address", "--out-key", "k", "--out-cert", "c",
                      "--no-passphrase"],
                     ["--email", "a@b.test", "--pkcs11", "pkcs11:token=x", "--out-key", "k",
                      "--out-cert", "c"]):
            p = self.run_cli("keygen", *args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertTrue(p.stderr.startswith(b"smtpcert: keygen: "), p.stderr)
        h = self.run_cli("keygen", "--help")
        self.assertEqual(h.returncode, 0)
        self.assertIn(b"different from your mailbox password", h.stdout)
        self.assertEqual(os.listdir(self.dir), ["home"])

    def test_prompt_on_terminal(self):
        """Asked twice with echo off on the controlling terminal (a pty here)."""
        key, cert = self.path("p.key"), self.path("p.pem")
        argv = [self.smtpcert, "keygen", "--email", "p@example.test", "--key-type", "p256",
                "--out-key", key, "--out-cert", cert]
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(argv[0], argv, self.env)
            finally:
                os._exit(127)
        seen = b""
        pos = 0     # where the next expected text may start

        def expect(what, timeout=30):
            """Wait for @what after everything matched so far, so that an answer
            is never typed before its prompt (the prompt flushes typed-ahead input)."""
            nonlocal seen, pos
            end = time.time() + timeout
            while what not in seen[pos:]:
                r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
                if not r:
                    self.fail("no %r on the terminal; got %r" % (what, seen))
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    chunk = b""
                if not chunk:
                    self.fail("terminal closed before %r; got %r" % (what, seen))
                seen += chunk
            pos = seen.index(what, pos) + len(what)

        status = None
        try:
            expect(b"Passphrase: ")
            os.write(fd, b"first try\n")
            expect(b"Same passphrase again: ")
            os.write(fd, b"different\n")          # mismatch: asked again
            expect(b"differ")
            expect(b"Passphrase: ")
            os.write(fd, b"tty secret 42\n")
            expect(b"Same passphrase again: ")
            os.write(fd, b"tty secret 42\n")
            expect(b"next: smtpcert submit")
            _, status = os.waitpid(pid, 0)
        finally:
            if status is None:          # the test failed: do not leave it waiting
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, seen)
        self.assertIn(b"different from your mailbox password", seen)
        self.assertNotIn(b"tty secret", seen)     # echo was off
        self.assertNotIn(b"first try", seen)
        self.openssl("pkey", "-in", key, "-passin", "pass:tty secret 42", "-noout")


class ClientConfig(Base):
    def keygen(self, *extra, env=None):
        return self.run_cli("keygen", "--email", "c@example.test", "--key-type", "p256",
                            "--no-passphrase", "--out-key", self.path("c.key"),
                            "--out-cert", self.path("c.pem"), *extra, env=env)

    def test_system_file_disables_keygen(self):
        self.write("system.conf", "# site policy\nkeygen = no\n", 0o644)
        user = os.path.join(self.home, ".config", "smtpcert")
        os.makedirs(user)
        with open(os.path.join(user, "config"), "w") as f:
            f.write("keygen = yes\n")        # cannot turn it back on
        p = self.keygen()
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertIn(b"disabled by the administrator", p.stderr)
        self.assertIn(self.system_conf.encode(), p.stderr)
        explicit = self.write("mine.conf", "keygen = yes\n")
        p = self.keygen("--config", explicit)
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertFalse(os.path.exists(self.path("c.key")))
        # keygen = yes (or nothing) in the system file leaves it on.
        self.write("system.conf", "keygen = yes\nencrypt = always\n", 0o644)
        self.assertEqual(self.keygen().returncode, 0)

    def test_user_file_locations(self):
        # ~/.config/smtpcert/config when XDG_CONFIG_HOME is unset
        user = os.path.join(self.home, ".config", "smtpcert")
        os.makedirs(user)
        with open(os.path.join(user, "config"), "w") as f:
            f.write("keygen = no\n")
        p = self.keygen()
        self.assertEqual(p.returncode, 7)
        self.assertIn(b"keygen = no in " + os.path.join(user, "config").encode(), p.stderr)
        # $XDG_CONFIG_HOME/smtpcert/config takes its place
        xdg = os.path.join(self.dir, "xdg")
        os.makedirs(os.path.join(xdg, "smtpcert"))
        with open(os.path.join(xdg, "smtpcert", "config"), "w") as f:
            f.write("sign = yes\n")
        env = dict(self.env, XDG_CONFIG_HOME=xdg)
        self.assertEqual(self.keygen(env=env).returncode, 0)
        os.unlink(self.path("c.key"))
        os.unlink(self.path("c.pem"))
        # $SMTPCERT_CONFIG, then --config, override both
        bad = self.write("bad.conf", "sign = yes\nencrypt = sometimes\n")
        p = self.keygen(env=dict(env, SMTPCERT_CONFIG=bad))
        self.assertEqual(p.returncode, 7)
        self.assertIn(("%s:2: encrypt" % bad).encode(), p.stderr)
        good = self.write("good.conf", "keygen = yes\n")
        self.assertEqual(self.keygen("--config", good,
                                     env=dict(env, SMTPCERT_CONFIG=bad)).returncode, 0)
        # a file named explicitly must exist
        p = self.keygen("--config", self.path("missing.conf"))
        self.assertEqual(p.returncode, 7)
        self.assertIn(b"missing.conf", p.stderr)
        # the system file's errors are reported too
        self.write("system.conf", "domains = example.test\n", 0o644)
        p = self.keygen("--config", good)
        self.assertEqual(p.returncode, 7)
        self.assertIn(b"system.conf:1: domains: unknown configuration key", p.stderr)


class Pkcs11(Base):
    def setUp(self):
        super().setUp()
        self.hsm = SoftHSM(label="mail-token", pin="4711")
        self.env = self.hsm.env(self.env)
        self.pin = self.write("pin", "4711\n")

    def tearDown(self):
        self.hsm.cleanup()
        super().tearDown()

    def test_keygen_on_token(self):
        cert = self.path("tok.pem")
        uri = self.hsm.uri(object="mail")
        p = self.run_cli("keygen", "--email", "tok@example.test", "--key-type", "p256",
                         "--pkcs11", uri, "--pin-file", self.pin, "--out-cert", cert)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"generated on the token", p.stdout)
        self.openssl("verify", "-CAfile", cert, "-purpose", "smimesign", cert)
        objects = self.hsm.objects()
        self.assertIn("label:      mail", objects)
        self.assertIn("never extractable", objects)
        # The certificate carries the token's public key.
        pub = self.path("tok-pub.der")
        self.hsm.pkcs11_tool("--read-object", "--type", "pubkey", "--label", "mail",
                             "-o", pub)
        tok = self.openssl("pkey", "-pubin", "-inform", "DER", "-in", pub).stdout
        self.assertEqual(tok, self.pubkey_der(cert))
        # Never a second key with the same label; a wrong PIN is said plainly.
        p = self.run_cli("keygen", "--email", "tok@example.test", "--key-type", "p256",
                         "--pkcs11", uri, "--pin-file", self.pin,
                         "--out-cert", self.path("tok2.pem"))
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(b"already holds a key", p.stderr)
        wrong = self.write("wrong", "0000\n")
        p = self.run_cli("keygen", "--email", "tok@example.test", "--key-type", "p256",
                         "--pkcs11", self.hsm.uri(object="other"), "--pin-file", wrong,
                         "--out-cert", self.path("tok3.pem"))
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertIn(b"wrong PIN", p.stderr)
        self.assertNotIn(b"0000", p.stderr)
        self.assertFalse(os.path.exists(self.path("tok3.pem")))
        # No PIN anywhere and no terminal to ask on.
        p = self.run_cli("keygen", "--email", "tok@example.test", "--key-type", "p256",
                         "--pkcs11", self.hsm.uri(object="other"),
                         "--out-cert", self.path("tok4.pem"))
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertIn(b"needs a PIN", p.stderr)

    def test_token_keys_decrypt_cms(self):
        """Keys made by keygen --pkcs11 decrypt what openssl cms encrypted to their
        certificates: RSA key transport and ECDH (RFC 5753) run on the token."""
        msg = b"From: a@example.test\r\nTo: d@example.test\r\nSubject: x\r\n\r\nfor the token\r\n"
        plain = self.write("msg", msg.decode())
        for kt, label in (("p256", "ec"), ("rsa3072", "rsa")):
            cert = self.path(label + ".pem")
            p = self.run_cli("keygen", "--email", "d@example.test", "--key-type", kt,
                             "--pkcs11", self.hsm.uri(object=label), "--pin-file", self.pin,
                             "--out-cert", cert)
            self.assertEqual(p.returncode, 0, p.stderr)
            enc = self.path(label + ".eml")
            self.openssl("cms", "-encrypt", "-aes256", "-in", plain, "-out", enc, cert)
            p = self.run_cli("decrypt", "--key", self.hsm.uri(object=label), "--cert", cert,
                             "--passphrase-file", self.pin, "--in", enc)
            self.assertEqual(p.returncode, 0, (kt, p.stderr))
            self.assertIn(b"for the token", p.stdout)

    def test_pkcs11_tool_key_signs_through_uri(self):
        """A key pair made by OpenSC's pkcs11-tool, loaded with a pkcs11: URI."""
        self.hsm.generate_key("signer", "0a", "rsa:2048")
        pub = self.path("signer-pub.der")
        self.hsm.pkcs11_tool("--read-object", "--type", "pubkey", "--label", "signer",
                             "-o", pub)
        pubpem = self.path("signer-pub.pem")
        self.openssl("pkey", "-pubin", "-inform", "DER", "-in", pub, "-out", pubpem)
        # A small CA certifies the token's public key (the CSR only names the subject).
        ca_key, ca = self.path("ca.key"), self.path("ca.pem")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", ca_key, "-out", ca, "-subj", "/CN=Token test CA",
                     "-days", "2")
        ext = self.write("ext.cnf", "[e]\nsubjectAltName=email:signer@example.test\n"
                                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                    "extendedKeyUsage=emailProtection\n")
        tmpkey, csr, cert = self.path("tmp.key"), self.path("s.csr"), self.path("s.pem")
        self.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", tmpkey, "-out", csr, "-subj", "/CN=signer")
        self.openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-days", "2",
                     "-force_pubkey", pubpem, "-extfile", ext, "-extensions", "e",
                     "-out", cert)
        msg = (b"From: signer@example.test\r\nTo: bob@example.test\r\n"
               b"Subject: token\r\n\r\nsigned on a SoftHSM2 token\r\n")
        uri = self.hsm.uri(id_hex="0a")
        p = self.run_cli("sign", "--key", uri, "--cert", cert, "--passphrase-file", self.pin,
                         input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        signed = self.path("signed.eml")
        with open(signed, "wb") as f:
            f.write(p.stdout)
        v = self.openssl("smime", "-verify", "-in", signed, "-CAfile", ca, "-purpose", "any")
        self.assertIn(b"signed on a SoftHSM2 token", v.stdout)
        self.assertIn(b"Verification successful", v.stderr)
        # The PIN inside the URI (pin-value) works too.
        p = self.run_cli("sign", "--key", self.hsm.uri(id_hex="0a", pin="4711"), "--cert",
                         cert, input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        # Wrong PIN: a clear message, no output.
        wrong = self.write("wrong-pin", "1111\n")
        p = self.run_cli("sign", "--key", uri, "--cert", cert, "--passphrase-file", wrong,
                         input=msg)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"wrong PIN", p.stderr)
        self.assertNotIn(b"1111", p.stderr)
        self.assertEqual(p.stdout, b"")
        # No such key on the token.
        p = self.run_cli("sign", "--key", self.hsm.uri(object="nope", pin="4711"), "--cert",
                         cert, input=msg)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"no such private key", p.stderr)


if __name__ == "__main__":
    unittest.main()
