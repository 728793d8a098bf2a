"""S/MIME signatures across implementations nobody here wrote.

- openssl cms -verify and openssl smime -verify accept what `smtpcert sign` makes
  (detached and opaque, CRLF and --lf), with the chain;
- `smtpcert verify` accepts what openssl cms -sign / openssl smime -sign make
  (detached and -nodetach), refuses a tampered copy (exit 6, "BAD signature") and
  an untrusted signer, and takes --no-chain;
- the public vectors in ../shared/interop (RFC 4134, examples-cms/RFC 9216): every
  signed one OpenSSL 3.0 can verify is verified with its content asserted; the
  Ed25519 ones, DSA parameter inheritance and non-signed structures fail cleanly
  (exit 6, the algorithm named);
- GnuPG's gpgsm (private GNUPGHOME, gpg-agent killed in teardown) verifies our
  detached and opaque signatures as GOODSIG + TRUST_FULLY, and what gpgsm encrypts
  to our certificate decrypts; sign-then-encrypt nesting decrypts then verifies;
- a key on a SoftHSM2 token (tests/lib/softhsm.py) signs, openssl accepts it.
"""
import base64
import os
import re
import shutil
import subprocess
import sys
import unittest

import sctest

INTEROP = os.environ.get("SC_INTEROP_DIR") or os.path.join(sctest.SOURCE_DIR, "..", "shared",
                                                          "interop")
CONTENT = b"This is some sample content."
MSG = (b"From: Alice <alice@example.test>\n"
       b"To: bob@example.test\n"
       b"Subject: interop test\n"
       b"Date: Sat, 28 Nov 2026 12:00:00 +0000\n"
       b"MIME-Version: 1.0\n"
       b"Content-Type: text/plain; charset=utf-8\n"
       b"\n"
       b"Hello Bob,\n"
       b"line with trailing space \n"
       b"From the start of a line\n"
       b"-- \n"
       b"Alice\n")


def need(prog, package):
    if not shutil.which(prog):
        raise AssertionError("%s is missing: install the Debian package %s "
                             "(scripts/install-deps does)" % (prog, package))


def iv(rel):
    p = os.path.join(INTEROP, rel)
    if not os.path.exists(p):
        raise AssertionError("interop vector missing: %s (set SC_INTEROP_DIR)" % p)
    return p


def run(argv, data=None, env=None, timeout=60):
    return subprocess.run(argv, input=data, capture_output=True, timeout=timeout, env=env)


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def split_signed(msg):
    """(signed entity, DER signature) of a multipart/signed message of ours."""
    b = re.search(rb'boundary="([^"]+)"', msg).group(1)
    parts = msg.split(b"\r\n--" + b)
    assert len(parts) == 4 and parts[3].startswith(b"--"), parts
    entity = parts[1][2:]
    sig = parts[2].split(b"\r\n\r\n", 1)[1]
    return entity, base64.b64decode(sig)


def opaque_der(msg):
    return base64.b64decode(msg.split(b"\r\n\r\n", 1)[1])


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need("openssl", "openssl")
        cls.pki = sctest.pki()
        cls.cli = sctest.binary("smtpcert")
        cls.tmp = sctest.mkdtemp("sc-smimesig-")
        # an empty client configuration: the user's own must not leak in
        cls.conf = os.path.join(cls.tmp, "client.conf")
        open(cls.conf, "w").close()

    def smtpcert(self, *args, data=None, env=None):
        return run([self.cli, args[0], "--config", self.conf] + list(args[1:]), data, env)

    def sign(self, *extra, key="alice.key", cert=None, data=MSG):
        r = self.smtpcert("sign", "--key", self.pki.path(key), "--cert",
                          cert or self.pki.chain("alice"), *extra, data=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def verify(self, data, *extra, ca=None):
        args = ["--ca-file", ca or self.pki.path("ca")] if ca != "" else []
        return self.smtpcert("verify", "--out", "-", *(args + list(extra)), data=data)

    def openssl_verify(self, data, *extra):
        return run(["openssl", "cms", "-verify", "-CAfile", self.pki.path("ca"),
                    "-purpose", "smimesign"] + list(extra), data)


class OpensslAndUs(Base):
    def test_openssl_verifies_ours(self):
        for extra in ((), ("--opaque",), ("--lf",), ("--opaque", "--lf")):
            signed = self.sign(*extra)
            self.assertEqual(b"\r\n" in signed, "--lf" not in extra)
            r = self.openssl_verify(signed)
            self.assertEqual(r.returncode, 0, (extra, r.stderr))
            self.assertIn(b"Verification successful", r.stderr)
            # what openssl extracts is our signed entity, canonical
            self.assertIn(b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob,\r\n"
                          b"line with trailing space \r\nFrom the start", crlf(r.stdout))
            r = run(["openssl", "smime", "-verify", "-CAfile", self.pki.path("ca")], signed)
            self.assertEqual(r.returncode, 0, (extra, r.stderr))

    def test_ours_structure(self):
        signed = self.sign()
        head = signed.split(b"\r\n\r\n", 1)[0]
        self.assertIn(b"From: Alice <alice@example.test>\r\n", head)
        self.assertIn(b"Subject: interop test\r\n", head)
        self.assertIn(b'protocol="application/pkcs7-signature"', head)
        self.assertIn(b"micalg=sha-256", head)
        entity, der = split_signed(signed)
        self.assertTrue(entity.startswith(b"MIME-Version: 1.0\r\nContent-Type: text/plain"))
        r = run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER"], der)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = r.stdout.decode()
        for want in ("signingTime", "S/MIME Capabilities", "aes-256-gcm", "sha256",
                     "smtpcert Test"):
            self.assertIn(want, text)
        self.assertNotIn("des-cbc", text)
        # the detached signature verifies over the entity, as binary
        with open(os.path.join(self.tmp, "entity"), "wb") as f:
            f.write(entity)
        r = run(["openssl", "cms", "-verify", "-inform", "DER", "-binary", "-content",
                 os.path.join(self.tmp, "entity"), "-CAfile", self.pki.path("ca")], der)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_we_verify_openssl(self):
        msg = os.path.join(self.tmp, "plain.eml")
        with open(msg, "wb") as f:
            f.write(MSG)
        common = ["-signer", self.pki.path("alice"), "-inkey", self.pki.path("alice.key"),
                  "-certfile", self.pki.path("intermediate"), "-in", msg]
        for argv in (["openssl", "cms", "-sign"], ["openssl", "cms", "-sign", "-nodetach"],
                     ["openssl", "smime", "-sign"], ["openssl", "smime", "-sign", "-nodetach"]):
            r = run(argv + common)
            self.assertEqual(r.returncode, 0, r.stderr)
            v = self.verify(r.stdout)
            self.assertEqual(v.returncode, 0, (argv, v.stderr))
            self.assertIn(b"signature valid, signed by alice@example.test", v.stderr)
            self.assertIn(b"chain verified", v.stderr)
            self.assertIn(b"\r\n\r\nHello Bob,\r\nline with trailing space \r\n", v.stdout)

    def test_our_roundtrip_and_output(self):
        for extra in ((), ("--opaque",)):
            v = self.verify(self.sign(*extra))
            self.assertEqual(v.returncode, 0, v.stderr)
            self.assertEqual(v.stdout, crlf(MSG))
            out = os.path.join(self.tmp, "out.eml")
            v = self.smtpcert("verify", "--ca-file", self.pki.path("ca"), "--out", out,
                              data=self.sign(*extra))
            self.assertEqual(v.returncode, 0, v.stderr)
            self.assertIn(b"signature valid, signed by alice@example.test", v.stdout)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), crlf(MSG))

    def test_tampered_untrusted_no_chain(self):
        signed = self.sign()
        bad = signed.replace(b"Hello Bob", b"Hello Eve")
        out = os.path.join(self.tmp, "bad.out")
        v = self.smtpcert("verify", "--ca-file", self.pki.path("ca"), "--out", out, data=bad)
        self.assertEqual(v.returncode, 6, v.stderr)
        self.assertIn(b"BAD signature", v.stderr)
        self.assertFalse(os.path.exists(out), "unverified content written")
        self.assertNotEqual(self.openssl_verify(bad).returncode, 0)
        v = self.verify(signed, ca=self.pki.path("other-ca"))
        self.assertEqual(v.returncode, 6)
        self.assertIn(b"not trusted", v.stderr)
        self.assertEqual(v.stdout, b"")
        v = self.verify(signed, "--no-chain", ca=self.pki.path("other-ca"))
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertIn(b"chain not checked", v.stderr)
        # a signer whose certificate does not name the From address is flagged
        v = self.verify(self.sign(data=MSG.replace(b"alice@example.test", b"bob@example.test")))
        self.assertEqual(v.returncode, 0)
        self.assertIn(b"WARNING: the From field does not name the signer", v.stderr)

    def test_errors(self):
        v = self.verify(MSG)
        self.assertEqual(v.returncode, 6)
        self.assertIn(b"not a signed message", v.stderr)
        r = self.smtpcert("sign", "--key", self.pki.path("bob.key"), "--cert",
                          self.pki.path("alice"), data=MSG)
        self.assertEqual(r.returncode, 6)
        self.assertIn(b"does not belong", r.stderr)
        r = self.smtpcert("sign", "--cert", self.pki.path("alice"), data=MSG)
        self.assertEqual(r.returncode, 2)
        r = self.smtpcert("verify", "--bogus", data=MSG)
        self.assertEqual(r.returncode, 2)
        for verb in ("sign", "verify"):
            r = self.smtpcert(verb, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn(b"usage: smtpcert " + verb.encode(), r.stdout)
        # an encrypted PEM key without / with its passphrase
        enc = os.path.join(self.tmp, "alice.enc.key")
        pw = os.path.join(self.tmp, "pw")
        with open(pw, "w") as f:
            f.write("correct horse\n")
        r = run(["openssl", "pkcs8", "-topk8", "-in", self.pki.path("alice.key"), "-out", enc,
                 "-passout", "file:" + pw])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.smtpcert("sign", "--key", enc, "--cert", self.pki.path("alice"), data=MSG)
        self.assertEqual(r.returncode, 6)
        self.assertIn(b"--passphrase-file", r.stderr)
        r = self.smtpcert("sign", "--key", enc, "--cert", self.pki.chain("alice"),
                          "--passphrase-file", pw, data=MSG)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.openssl_verify(r.stdout).returncode, 0)
        with open(pw, "w") as f:
            f.write("wrong horse\n")
        r = self.smtpcert("sign", "--key", enc, "--cert", self.pki.chain("alice"),
                          "--passphrase-file", pw, data=MSG)
        self.assertEqual(r.returncode, 6)
        self.assertEqual(r.stdout, b"")


class Prompt(Base):
    """Without --passphrase-file, sign asks on the terminal, with echo off."""

    def converse(self, argv, answers):
        import pty
        import select
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        seen = b""
        answers = list(answers)
        answered = 0
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 20)
                if not ready:
                    os.kill(pid, 9)
                    raise AssertionError("no prompt: %r" % seen)
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                if answers and seen.count(b"Passphrase for") > answered:
                    os.write(fd, answers.pop(0) + b"\n")
                    answered += 1
        finally:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), seen

    def test_passphrase_asked(self):
        enc = os.path.join(self.tmp, "prompt.key")
        msg = os.path.join(self.tmp, "prompt.eml")
        out = os.path.join(self.tmp, "prompt.out")
        with open(msg, "wb") as f:
            f.write(MSG)
        r = run(["openssl", "pkcs8", "-topk8", "-in", self.pki.path("alice.key"), "-out", enc,
                 "-passout", "pass:typed secret"])
        self.assertEqual(r.returncode, 0, r.stderr)
        argv = [self.cli, "sign", "--config", self.conf, "--key", enc, "--cert",
                self.pki.chain("alice"), "--in", msg, "--out", out]
        code, seen = self.converse(argv, [b"typed secret"])
        self.assertEqual(code, 0, seen)
        self.assertIn(b"Passphrase for " + enc.encode(), seen)
        self.assertNotIn(b"typed secret", seen)  # not echoed
        with open(out, "rb") as f:
            self.assertEqual(self.openssl_verify(f.read()).returncode, 0)
        os.unlink(out)
        code, seen = self.converse(argv, [b"wrong 1", b"wrong 2", b"wrong 3"])
        self.assertEqual(code, 6, seen)
        self.assertEqual(seen.count(b"Passphrase for"), 3)
        self.assertFalse(os.path.exists(out))


class Vectors(Base):
    """../shared/interop (README.md there gives the openssl command for each)."""

    def check_ok(self, rel, ca, content=CONTENT, extra=(), digest=None):
        v = self.smtpcert("verify", "--in", iv(rel), "--ca-file", iv(ca), "--out", "-",
                          *extra)
        self.assertEqual(v.returncode, 0, (rel, v.stderr))
        self.assertIn(b"chain verified", v.stderr)
        if content is not None:
            self.assertEqual(v.stdout, content, rel)
        return v

    def check_fail(self, rel, ca, words, extra=()):
        v = self.smtpcert("verify", "--in", iv(rel), "--ca-file", iv(ca), "--out", "-",
                          *extra)
        self.assertEqual(v.returncode, 6, (rel, v.stderr))
        self.assertEqual(v.stdout, b"", rel)
        for w in words:
            self.assertIn(w, v.stderr, rel)
        self.assertNotIn(b"signature valid, signed by", v.stderr)

    def test_rfc4134(self):
        dss, rsa = "rfc4134/pem/CarlDSSSelf.pem", "rfc4134/pem/CarlRSASelf.pem"
        for rel, ca in (("4.1.bin", dss), ("4.2.bin", rsa), ("4.4.bin", dss), ("4.5.bin", rsa),
                        ("4.7.bin", dss), ("4.10.bin", dss)):
            v = self.check_ok("rfc4134/" + rel, ca)
            self.assertIn(b"weak digest algorithm sha1", v.stderr)
        self.check_ok("rfc4134/4.3.bin", dss,
                      extra=("--content", iv("rfc4134/ExContent.bin")))
        # the .eml forms: the signed entity is CRLF + the content, after the header
        for rel in ("4.8.eml", "4.9.eml"):
            v = self.check_ok("rfc4134/" + rel, dss, content=None)
            self.assertTrue(v.stdout.endswith(b"\r\n\r\n" + CONTENT), v.stdout)
            self.assertIn(b"Subject: Example " + rel[:3].encode() + b"\r\n", v.stdout)
        # a changed detached content is a BAD signature
        bad = os.path.join(self.tmp, "ExContent.bad")
        with open(bad, "wb") as f:
            f.write(CONTENT.replace(b"some", b"more"))
        self.check_fail("rfc4134/4.3.bin", dss, [b"BAD signature"], extra=("--content", bad))
        self.check_fail("rfc4134/4.2.bin", dss, [b"not trusted"])
        self.check_fail("rfc4134/4.11.bin", dss, [b"without a signer"])
        for rel in ("3.1.bin", "6.0.bin", "7.1.bin", "5.1.bin"):
            self.check_fail("rfc4134/" + rel, dss, [b"not signed"])
        self.check_fail("rfc4134/5.3.eml", dss, [b"decrypt it first"])
        self.check_fail("rfc4134/unsupported-by-openssl-3.0/4.6.bin", dss,
                        [b"public key cannot be used", b"inherited"])

    def test_examples_cms(self):
        for rel in ("signedByAliceRSA.pem", "signedByAliceRSAPSS.pem"):
            v = self.check_ok("examples-cms/" + rel, "rfc9216/ca.rsa.crt")
            self.assertIn(b"signed by alice@smime.example", v.stderr)
        self.check_fail("examples-cms/signedByAliceRSA.pem", "rfc4134/pem/CarlRSASelf.pem",
                        [b"not trusted", b"unable to get local issuer certificate"])
        un, ca = "examples-cms/unsupported-by-openssl-3.0/", \
            "rfc9216/unsupported-by-openssl-3.0/ca.25519.crt"
        for rel, extra in (("signedByCarlosEd25519.pem", ()),
                           ("signedByCarlosDetached.pem",
                            ("--content", iv("rfc4134/ExContent.bin"))),
                           ("signedByAliceAndCarlosNoCerts.pem", ())):
            self.check_fail(un + rel, ca, [b"Ed25519", b"not supported"], extra=extra)
        for rel in ("encryptedForBobRSAOaep.pem", "encryptedForBobAndDana.pem"):
            self.check_fail("examples-cms/" + rel, "rfc9216/ca.rsa.crt", [b"not signed"])


class GpgsmAndNesting(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        need("gpgsm", "gpgsm")
        need("gpgconf", "gpgconf")
        cls.home = os.path.join(cls.tmp, "gnupg")
        os.mkdir(cls.home, 0o700)
        with open(os.path.join(cls.home, "gpgsm.conf"), "w") as f:
            f.write("disable-crl-checks\n")
        fp = run(["openssl", "x509", "-in", cls.pki.path("ca"), "-noout", "-fingerprint",
                  "-sha1"]).stdout.decode().strip().split("=", 1)[1]
        with open(os.path.join(cls.home, "trustlist.txt"), "w") as f:
            f.write(fp + " S\n")
        for name in ("ca", "intermediate", "alice"):
            r = cls.gpgsm_run("--import", cls.pki.path(name))
            if r.returncode != 0:
                raise AssertionError("gpgsm --import %s: %s" % (name, r.stderr))

    @classmethod
    def tearDownClass(cls):
        run(["gpgconf", "--homedir", cls.home, "--kill", "all"])

    @classmethod
    def gpgsm_run(cls, *args, data=None):
        return run(["gpgsm", "--homedir", cls.home, "--batch", "--status-fd", "2"]
                   + list(args), data)

    def test_gpgsm_verifies_ours(self):
        entity, der = split_signed(self.sign())
        sig = os.path.join(self.tmp, "sig.p7s")
        data = os.path.join(self.tmp, "signed.part")
        with open(sig, "wb") as f:
            f.write(der)
        with open(data, "wb") as f:
            f.write(entity)
        r = self.gpgsm_run("--verify", sig, data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"[GNUPG:] GOODSIG", r.stderr)
        self.assertIn(b"[GNUPG:] TRUST_FULLY", r.stderr)
        # a changed entity: BADSIG
        with open(data, "wb") as f:
            f.write(entity.replace(b"Bob", b"Eve"))
        r = self.gpgsm_run("--verify", sig, data)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"[GNUPG:] BADSIG", r.stderr)
        # opaque: gpgsm writes the content back
        opaque = os.path.join(self.tmp, "opaque.p7m")
        with open(opaque, "wb") as f:
            f.write(opaque_der(self.sign("--opaque")))
        r = self.gpgsm_run("--verify", "--output", "-", opaque)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"[GNUPG:] GOODSIG", r.stderr)
        self.assertIn(b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob,", r.stdout)

    def test_gpgsm_encrypts_to_us(self):
        inner = crlf(b"Content-Type: text/plain\n\nfor alice only\n")
        r = self.gpgsm_run("--encrypt", "-r", "alice@example.test", data=inner)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"encrypted data created", r.stderr)
        msg = (b"From: bob@example.test\r\nTo: alice@example.test\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; "
               b"name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               + base64.encodebytes(r.stdout).replace(b"\n", b"\r\n"))
        out = self.decrypt(msg)
        self.assertTrue(out.endswith(b"\r\n\r\nfor alice only\r\n"), out)
        # and it is not a signed message
        self.assertEqual(self.verify(out).returncode, 6)

    def decrypt(self, msg):
        """`smtpcert decrypt` (helper smimeenc's verb) as alice."""
        r = self.smtpcert("decrypt", "--key", self.pki.path("alice.key"), "--cert",
                          self.pki.path("alice"), data=msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_sign_then_encrypt(self):
        signed = self.sign()
        ours = self.smtpcert("encrypt", "--to", "alice@example.test", "--cert",
                             self.pki.path("alice"), data=signed)
        self.assertEqual(ours.returncode, 0, ours.stderr)
        theirs = run(["openssl", "smime", "-encrypt", "-aes256", self.pki.path("alice")],
                     signed)
        self.assertEqual(theirs.returncode, 0, theirs.stderr)
        for enc in (ours.stdout, theirs.stdout):
            self.assertIn(b"enveloped-data", enc)
            self.assertNotIn(b"Hello Bob", enc)
            plain = self.decrypt(enc)
            self.assertIn(b"multipart/signed", plain)
            v = self.verify(plain)
            self.assertEqual(v.returncode, 0, v.stderr)
            self.assertIn(b"signature valid, signed by alice@example.test", v.stderr)
            self.assertIn(b"\r\n\r\nHello Bob,\r\n", v.stdout)
            self.assertIn(b"Subject: interop test\r\n", v.stdout)
        # OpenSSL alone unwraps our nesting too
        r = run(["openssl", "cms", "-decrypt", "-recip", self.pki.path("alice"), "-inkey",
                 self.pki.path("alice.key")], ours.stdout)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.openssl_verify(r.stdout)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Hello Bob,", r.stdout)
        # a signature broken inside the encryption is still found
        bad = self.decrypt(ours.stdout).replace(b"Hello Bob", b"Hello Eve")
        self.assertEqual(self.verify(bad).returncode, 6)


class SoftHSM(Base):
    def ec_leaf(self):
        """A P-256 key and its certificate (alice@example.test, chain appended),
        issued by the test PKI's intermediate."""
        key = os.path.join(self.tmp, "alice-ec.key")
        csr = os.path.join(self.tmp, "alice-ec.csr")
        ext = os.path.join(self.tmp, "alice-ec.ext")
        crt = os.path.join(self.tmp, "alice-ec.pem")
        with open(ext, "w") as f:
            f.write("subjectAltName=email:alice@example.test\n"
                    "keyUsage=critical,digitalSignature,keyAgreement\n"
                    "extendedKeyUsage=emailProtection\n")
        for argv in (["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                      "-subj", "/CN=Alice EC"],
                     ["openssl", "x509", "-req", "-in", csr, "-CA",
                      self.pki.path("intermediate"), "-CAkey",
                      self.pki.path("intermediate.key"), "-set_serial", "4242", "-days", "2",
                      "-extfile", ext, "-out", crt]):
            r = run(argv)
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(crt, "a") as f, open(self.pki.path("intermediate")) as i:
            f.write(i.read())
        return key, crt

    def test_token_key_signs(self):
        import softhsm
        hsm = softhsm.SoftHSM()
        try:
            hsm.import_key(self.pki.path("alice.key"), "alice", "01")
            hsm.import_cert(self.pki.path("alice"), "alice", "01")
            pin = os.path.join(self.tmp, "pin")
            with open(pin, "w") as f:
                f.write(hsm.pin + "\n")
            for uri, extra in ((hsm.uri(object="alice", pin=hsm.pin), ()),
                               (hsm.uri(object="alice"), ("--passphrase-file", pin))):
                for form in ((), ("--opaque",)):
                    r = self.smtpcert("sign", "--key", uri, "--cert", self.pki.chain("alice"),
                                      *(extra + form), data=MSG, env=hsm.env())
                    self.assertEqual(r.returncode, 0, r.stderr)
                    v = self.openssl_verify(r.stdout)
                    self.assertEqual(v.returncode, 0, v.stderr)
                    self.assertIn(b"Hello Bob,", v.stdout)
            # an EC P-256 key on the token: ECDSA through the token
            eckey, eccert = self.ec_leaf()
            hsm.import_key(eckey, "alice-ec", "02")
            r = self.smtpcert("sign", "--key", hsm.uri(object="alice-ec", pin=hsm.pin),
                              "--cert", eccert, data=MSG, env=hsm.env())
            self.assertEqual(r.returncode, 0, r.stderr)
            v = self.openssl_verify(r.stdout)
            self.assertEqual(v.returncode, 0, v.stderr)
            self.assertIn(b"ecdsa-with-SHA256", run(
                ["openssl", "cms", "-cmsout", "-print", "-inform", "DER"],
                split_signed(r.stdout)[1]).stdout)
            with open(pin, "w") as f:
                f.write("9999\n")
            r = self.smtpcert("sign", "--key", hsm.uri(object="alice"), "--cert",
                              self.pki.chain("alice"), "--passphrase-file", pin, data=MSG,
                              env=hsm.env())
            self.assertEqual(r.returncode, 6, r.stderr)
            self.assertEqual(r.stdout, b"")
        finally:
            hsm.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2 if "-v" in sys.argv else 1)
