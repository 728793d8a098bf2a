"""S/MIME encryption across implementations nobody here wrote.

- openssl cms -decrypt and openssl smime -decrypt read what `smtpcert encrypt`
  makes: AES-256-CBC enveloped-data to RSA and P-256 (ECDH) recipients, and
  AES-256-GCM authEnveloped-data when every recipient's SMIMECapabilities lists
  it; --lf output, --hide-subject, the sender's own certificate from the config;
- `smtpcert decrypt` reads what openssl cms -encrypt / openssl smime -encrypt
  make (AES-CBC, AES-GCM, RSA-OAEP, ECDH);
- the public vectors in ../shared/interop (RFC 4134, examples-cms with the
  RFC 9216 keys): every enveloped one OpenSSL 3.0 can decrypt is decrypted and
  its content asserted; X25519 recipients, ChaCha20-Poly1305 and RC2 fail cleanly
  (exit 6, "not supported" and the algorithm named, no crash);
- negative cases: wrong key, key not matching the certificate, truncated and
  corrupted ciphertext, input that is not encrypted, a recipient without a
  certificate (nothing on stdout); the certificate lookup against our daemon.
"""
import base64
import os
import shutil
import subprocess
import unittest

import sctest

INTEROP = os.environ.get("SC_INTEROP_DIR") or os.path.join(sctest.SOURCE_DIR, "..", "shared",
                                                          "interop")
CONTENT = b"This is some sample content."
MSG = (b"From: Alice <alice@example.test>\n"
       b"To: Bob <bob@example.test>\n"
       b"Subject: interop test\n"
       b"Date: Sat, 28 Nov 2026 12:00:00 +0000\n"
       b"Message-ID: <interop.1@example.test>\n"
       b"MIME-Version: 1.0\n"
       b"Content-Type: text/plain; charset=utf-8\n"
       b"X-Inner: only inside\n"
       b"\n"
       b"Hello Bob,\n"
       b"the secret is 42.\n")
# the entity openssl gets out of our messages: inner fields and body, CRLF
ENTITY = (b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
          b"X-Inner: only inside\r\n\r\nHello Bob,\r\nthe secret is 42.\r\n")
# RFC 4262 SMIMECapabilities: SEQUENCE { SEQUENCE { id-aes256-GCM } }
CAPS_GCM = "DER:300D300B060960864801650304012E"


def need(prog, package):
    if not shutil.which(prog):
        raise AssertionError("%s is missing: install the Debian package %s "
                             "(scripts/install-deps does)" % (prog, package))


def iv(rel):
    p = os.path.join(INTEROP, rel)
    if not os.path.exists(p):
        raise AssertionError("interop vector missing: %s (set SC_INTEROP_DIR)" % p)
    return p


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run(argv, data=None, timeout=60):
    return subprocess.run(argv, input=data, capture_output=True, timeout=timeout)


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def wrap_cms(path):
    """An S/MIME message around a CMS file (DER, or PEM "BEGIN CMS")."""
    data = read(path)
    if data.startswith(b"-----BEGIN"):
        body = b"\n".join(l for l in data.splitlines() if not l.startswith(b"-----"))
    else:
        body = base64.encodebytes(data)
    return (b"From: vectors@example.test\nSubject: vector\nMIME-Version: 1.0\n"
            b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; "
            b"name=smime.p7m\nContent-Transfer-Encoding: base64\n\n" + body + b"\n")


def body_of(msg):
    return msg.split(b"\r\n\r\n", 1)[1]


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need("openssl", "openssl")
        cls.pki = sctest.pki()
        cls.cli = sctest.binary("smtpcert")
        cls.tmp = sctest.mkdtemp("sc-smimeenc-")
        cls.conf = cls.file("client.conf", b"")
        # GCM-capable RSA and P-256 recipients, made with the openssl CLI
        cls.gcm_rsa = cls.selfsigned("gcm-rsa", "rsa", "gcm@example.test", CAPS_GCM)
        cls.ec = cls.selfsigned("ec", "ec", "erin@example.test", None)
        cls.gcm_ec = cls.selfsigned("gcm-ec", "ec", "frank@example.test", CAPS_GCM)

    @classmethod
    def file(cls, name, data):
        p = os.path.join(cls.tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    @classmethod
    def selfsigned(cls, name, kind, email, caps):
        key = os.path.join(cls.tmp, name + ".key")
        cert = os.path.join(cls.tmp, name + ".pem")
        if kind == "rsa":
            algo = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
            ku = "keyUsage=digitalSignature,keyEncipherment"
        else:
            algo = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
            ku = "keyUsage=digitalSignature,keyAgreement"
        r = run(["openssl", "genpkey"] + algo + ["-out", key])
        assert r.returncode == 0, r.stderr
        args = ["openssl", "req", "-x509", "-new", "-key", key, "-out", cert, "-days", "30",
                "-subj", "/CN=" + email, "-addext", "subjectAltName=email:" + email,
                "-addext", ku, "-addext", "extendedKeyUsage=emailProtection"]
        if caps:
            args += ["-addext", "1.2.840.113549.1.9.15=" + caps]
        r = run(args)
        assert r.returncode == 0, r.stderr
        return (cert, key)

    def smtpcert(self, *args, data=None, conf=None):
        return run([self.cli, args[0], "--config", conf or self.conf] + list(args[1:]), data)

    def encrypt(self, *args, data=MSG, conf=None):
        r = self.smtpcert("encrypt", *args, data=data, conf=conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def decrypt(self, data, cert, key):
        return self.smtpcert("decrypt", "--cert", cert, "--key", key, data=data)

    def openssl_decrypt(self, data, cert, key, tool="cms"):
        r = run(["openssl", tool, "-decrypt", "-recip", cert, "-inkey", key], data)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def assert_clean_failure(self, r, *words):
        """Exit 6 with a message, no signal, no sanitizer report, no stdout."""
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 6, err)
        self.assertEqual(r.stdout, b"")
        self.assertNotIn("Sanitizer", err)
        self.assertTrue(err.startswith("smtpcert: decrypt: "), err)
        for w in words:
            self.assertIn(w, err)


class OpensslReadsOurs(Base):
    def test_rsa_cbc(self):
        alice = self.pki.path("alice.pem")
        enc = self.encrypt("--to", "alice@example.test", "--cert", alice, "--no-self")
        self.assertIn(b"smime-type=enveloped-data", enc)
        self.assertTrue(enc.startswith(b"From: Alice <alice@example.test>\r\n"), enc[:200])
        self.assertIn(b"\r\nSubject: interop test\r\n", enc)
        self.assertNotIn(b"secret", enc)
        self.assertNotIn(b"X-Inner", enc)
        for tool in ("cms", "smime"):
            out = self.openssl_decrypt(enc, alice, self.pki.path("alice.key"), tool)
            self.assertEqual(crlf(out), ENTITY)
        # AES-256-CBC, key transport: what openssl sees inside
        der = base64.b64decode(body_of(enc))
        r = run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER"], der)
        self.assertIn(b"aes-256-cbc", r.stdout)
        self.assertIn(b"rsaEncryption", r.stdout)

    def test_gcm_when_all_recipients_advertise_it(self):
        (c1, k1), (c2, k2) = self.gcm_rsa, self.gcm_ec
        enc = self.encrypt("--to", "gcm@example.test, frank@example.test", "--cert", c1,
                           "--cert", c2, "--no-self")
        self.assertIn(b"smime-type=authEnveloped-data", enc)
        for c, k in ((c1, k1), (c2, k2)):
            self.assertEqual(crlf(self.openssl_decrypt(enc, c, k)), ENTITY)
        der = base64.b64decode(body_of(enc))
        r = run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER"], der)
        self.assertIn(b"aes-256-gcm", r.stdout)
        # --cbc, and a recipient without the capability, both give CBC
        enc = self.encrypt("--to", "gcm@example.test", "--cert", c1, "--no-self", "--cbc")
        self.assertIn(b"smime-type=enveloped-data", enc)
        self.assertEqual(crlf(self.openssl_decrypt(enc, c1, k1)), ENTITY)
        enc = self.encrypt("--to", "gcm@example.test", "--to", "alice@example.test", "--cert",
                           c1, "--cert", self.pki.path("alice.pem"), "--no-self")
        self.assertIn(b"smime-type=enveloped-data", enc)
        self.assertEqual(crlf(self.openssl_decrypt(enc, c1, k1)), ENTITY)

    def test_ecdh_and_lf(self):
        c, k = self.ec
        enc = self.encrypt("--to", "erin@example.test", "--cert", c, "--no-self", "--lf")
        self.assertNotIn(b"\r", enc)
        self.assertEqual(crlf(self.openssl_decrypt(enc, c, k)), ENTITY)
        der = base64.b64decode(enc.split(b"\n\n", 1)[1])
        r = run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER"], der)
        self.assertIn(b"dhSinglePass-stdDH-sha256kdf-scheme", r.stdout)

    def test_hide_subject_and_self_copy(self):
        conf = self.file("self.conf", ("cert = %s\n" % self.pki.path("alice.pem")).encode())
        c, k = self.gcm_rsa
        enc = self.encrypt("--to", "gcm@example.test", "--cert", c, "--hide-subject",
                           conf=conf)
        self.assertIn(b"\r\nSubject: ...\r\n", enc)
        self.assertNotIn(b"interop test", enc)
        # both the recipient and the sender (config `cert`) can read it
        self.assertIn(b"Subject: interop test\r\n", self.openssl_decrypt(enc, c, k))
        out = self.openssl_decrypt(enc, self.pki.path("alice.pem"), self.pki.path("alice.key"))
        self.assertIn(b"Subject: interop test\r\n", crlf(out))
        # and our decrypt puts the real Subject back, once
        r = self.decrypt(enc, self.pki.path("alice.pem"), self.pki.path("alice.key"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count(b"Subject:"), 1)
        self.assertIn(b"Subject: interop test\r\n", r.stdout)


class WeReadOpenssls(Base):
    def check(self, enc, cert, key):
        r = self.decrypt(enc, cert, key)
        self.assertEqual(r.returncode, 0, r.stderr)
        # openssl's text mode canonicalised our input: the whole message is the entity
        self.assertEqual(r.stdout, crlf(MSG))

    def test_openssl_cms_encrypt(self):
        alice = (self.pki.path("alice.pem"), self.pki.path("alice.key"))
        for cipher, recip, extra in (("-aes-256-cbc", alice, []),
                                     ("-aes-128-cbc", alice, []),
                                     ("-aes-256-gcm", alice, []),
                                     ("-aes-256-cbc", self.ec, []),
                                     ("-aes-256-gcm", self.ec, []),
                                     ("-aes-256-cbc", alice,
                                      ["-keyopt", "rsa_padding_mode:oaep"])):
            r = run(["openssl", "cms", "-encrypt", cipher, "-recip", recip[0]] + extra, MSG)
            self.assertEqual(r.returncode, 0, r.stderr)
            with self.subTest(cipher=cipher, recip=recip[0], extra=extra):
                self.check(r.stdout, *recip)

    def test_openssl_smime_encrypt(self):
        r = run(["openssl", "smime", "-encrypt", "-aes256", self.pki.path("alice.pem")], MSG)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check(r.stdout, self.pki.path("alice.pem"), self.pki.path("alice.key"))


class PublicVectors(Base):
    BOB9216 = ("rfc9216/bob.encrypt.crt", "rfc9216/bob.decrypt.key")
    DANA = ("rfc9216/unsupported-by-openssl-3.0/dana.encrypt.crt",
            "rfc9216/unsupported-by-openssl-3.0/dana.decrypt.key")
    BOB4134 = ("rfc4134/BobRSASignByCarl.cer", "rfc4134/BobPrivRSAEncrypt.pri")

    def dec(self, msg, who):
        return self.decrypt(msg, iv(who[0]), iv(who[1]))

    def test_decryptable(self):
        for vec, who in (("examples-cms/encryptedForBobRSAOaep.pem", self.BOB9216),
                         ("examples-cms/encryptedForBobAndDana.pem", self.BOB9216),
                         ("rfc4134/5.1.bin", self.BOB4134)):
            with self.subTest(vector=vec):
                r = self.dec(wrap_cms(iv(vec)), who)
                self.assertEqual(r.returncode, 0, r.stderr)
                # a bare CMS payload, not a MIME entity: it becomes the body
                self.assertEqual(r.stdout, b"From: vectors@example.test\r\nSubject: vector\r\n"
                                 b"\r\n" + CONTENT)

    def test_bare_cms(self):
        # the files as they are: PEM "BEGIN CMS" and DER, no MIME around them
        for vec, who in (("examples-cms/encryptedForBobRSAOaep.pem", self.BOB9216),
                         ("rfc4134/5.1.bin", self.BOB4134)):
            with self.subTest(vector=vec):
                r = self.dec(read(iv(vec)), who)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, CONTENT)
        self.assert_clean_failure(
            self.dec(read(iv("examples-cms/unsupported-by-openssl-3.0/"
                             "authEnvelopedForBobChaCha20Poly1305.pem")), self.BOB9216),
            "not supported", "ChaCha20")

    def test_rfc4134_5_3_eml(self):
        r = self.dec(read(iv("rfc4134/5.3.eml")), self.BOB4134)
        self.assertEqual(r.returncode, 0, r.stderr)
        head, body = r.stdout.split(b"\r\n\r\n", 1)
        self.assertEqual(body, CONTENT)
        self.assertIn(b"Subject: Example 5.3", head)
        self.assertNotIn(b"Content-Type", head)

    def test_unsupported_named(self):
        for vec, who, words in (
                ("examples-cms/encryptedForBobAndDana.pem", self.DANA, ("X25519",)),
                ("examples-cms/unsupported-by-openssl-3.0/authEnvelopedForDanaX25519HKDF.pem",
                 self.DANA, ("X25519",)),
                ("examples-cms/unsupported-by-openssl-3.0/"
                 "authEnvelopedForBobChaCha20Poly1305.pem", self.BOB9216, ("ChaCha20",)),
                ("rfc4134/5.2.bin", self.BOB4134, ("RC2",))):
            with self.subTest(vector=vec):
                self.assert_clean_failure(self.dec(wrap_cms(iv(vec)), who), "not supported",
                                          *words)

    def test_not_encrypted_vectors(self):
        for vec in ("rfc4134/4.9.eml", "rfc4134/4.8.eml"):
            with self.subTest(vector=vec):
                self.assert_clean_failure(self.dec(read(iv(vec)), self.BOB4134),
                                          "signed, not encrypted")
        # a signed-data CMS inside an enveloped-data label
        self.assert_clean_failure(self.dec(wrap_cms(iv("rfc4134/4.2.bin")), self.BOB4134),
                                  "not enveloped-data")
        # not for Bob of RFC 9216
        self.assertEqual(self.dec(wrap_cms(iv("rfc4134/5.1.bin")), self.BOB9216).returncode, 6)


class Negative(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        alice = cls.pki.path("alice.pem")
        r = run([cls.cli, "encrypt", "--config", cls.conf, "--to", "alice@example.test",
                 "--cert", alice, "--no-self"], MSG)
        assert r.returncode == 0, r.stderr
        cls.enc = r.stdout

    def test_wrong_key(self):
        r = self.decrypt(self.enc, self.pki.path("bob.pem"), self.pki.path("bob.key"))
        self.assert_clean_failure(r, "not encrypted to")
        r = self.decrypt(self.enc, self.pki.path("alice.pem"), self.pki.path("bob.key"))
        self.assert_clean_failure(r, "does not belong")

    def test_truncated_and_corrupted(self):
        alice = (self.pki.path("alice.pem"), self.pki.path("alice.key"))
        self.assert_clean_failure(self.decrypt(self.enc[:len(self.enc) // 2], *alice))
        head, body = self.enc.split(b"\r\n\r\n", 1)
        bad = head + b"\r\n\r\n" + b"AAAA" + body[4:]
        self.assert_clean_failure(self.decrypt(bad, *alice))
        self.assert_clean_failure(self.decrypt(head + b"\r\n\r\n" + b"!!" + body, *alice),
                                  "base64")

    def test_not_encrypted(self):
        r = self.decrypt(MSG, self.pki.path("alice.pem"), self.pki.path("alice.key"))
        self.assert_clean_failure(r, "not an encrypted S/MIME message")
        r = self.decrypt(b"", self.pki.path("alice.pem"), self.pki.path("alice.key"))
        self.assert_clean_failure(r)

    def test_missing_recipient_certificate(self):
        # a --cert for someone else, and a server that does not answer
        port = sctest.free_port()
        r = self.smtpcert("encrypt", "--to", "bob@example.test", "--server",
                          "127.0.0.1:%d" % port, "--no-self", data=MSG)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"bob@example.test", r.stderr)
        r = self.smtpcert("encrypt", "--to", "bob@example.test", "--cert",
                          self.pki.path("alice.pem"), "--no-self", data=MSG)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, b"")
        # an expired certificate given for the address
        r = self.smtpcert("encrypt", "--to", "dave@example.test", "--cert",
                          self.pki.path("dave.pem"), "--no-self", data=MSG)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertEqual(r.stdout, b"")
        r = self.smtpcert("encrypt", data=MSG)
        self.assertEqual(r.returncode, 2)


class TokenKey(Base):
    """The decryption key on a SoftHSM2 token (RSA key transport and ECDH)."""

    def import_key(self, hsm, pem, label, kid):
        """As softhsm.import_key, with CKA_DERIVE too: ECDH needs it."""
        der = os.path.join(self.tmp, "tok-%s.der" % kid)
        pub = os.path.join(self.tmp, "tok-%s.pub.der" % kid)
        hsm.run(["openssl", "pkey", "-in", pem, "-outform", "DER", "-out", der])
        hsm.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER", "-out", pub])
        try:
            hsm.pkcs11_tool("--write-object", der, "--type", "privkey", "--label", label,
                            "--id", kid, "--usage-decrypt", "--usage-derive")
            hsm.pkcs11_tool("--write-object", pub, "--type", "pubkey", "--label", label,
                            "--id", kid)
        finally:
            os.unlink(der)
            os.unlink(pub)

    def test_decrypt_with_pkcs11_key(self):
        import softhsm
        hsm = softhsm.SoftHSM()
        try:
            cases = (("rsa", self.pki.path("alice.pem"), self.pki.path("alice.key"),
                      "alice@example.test", "01"),
                     ("ec", self.ec[0], self.ec[1], "erin@example.test", "02"))
            for label, cert, key, addr, kid in cases:
                self.import_key(hsm, key, label, kid)
                enc = self.encrypt("--to", addr, "--cert", cert, "--no-self")
                pin = self.file("pin", hsm.pin.encode() + b"\n")
                r = subprocess.run([self.cli, "decrypt", "--config", self.conf, "--key",
                                    hsm.uri(object=label), "--passphrase-file", pin,
                                    "--cert", cert], input=enc, capture_output=True,
                                   timeout=60, env=hsm.env())
                with self.subTest(key=label):
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertIn(b"Hello Bob,\r\nthe secret is 42.\r\n", r.stdout)
        finally:
            hsm.cleanup()


class LookupFromOurDaemon(Base):
    def test_lookup_then_encrypt(self):
        with sctest.Daemon(certs=("alice",)) as d:
            lookup = ["--server", "127.0.0.1:%d" % d.port, "--ca-file", self.pki.path("ca.pem"),
                      "--no-cache", "--known-certs", "none", "--no-self"]
            enc = self.encrypt("--to", "alice@example.test", *lookup)
            out = self.openssl_decrypt(enc, self.pki.path("alice.pem"),
                                       self.pki.path("alice.key"))
            self.assertEqual(crlf(out), ENTITY)
            # bob has no certificate there: 550 -> exit 1, nothing written
            r = self.smtpcert("encrypt", "--to", "alice@example.test", "--to",
                              "bob@example.test", *lookup, data=MSG)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stdout, b"")
            self.assertIn(b"bob@example.test", r.stderr)


if __name__ == "__main__":
    unittest.main()
