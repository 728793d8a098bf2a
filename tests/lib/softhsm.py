"""softhsm - a private SoftHSM2 token for the PKCS#11 integration tests (stdlib only).

    hsm = SoftHSM()                    # temp dir, own softhsm2.conf, one fresh token
    hsm.generate_key("sign", "01", "rsa:2048")      # pkcs11-tool --keypairgen
    hsm.import_key("/path/key.pem", "mine", "02")   # PEM private key onto the token
    hsm.import_cert("/path/cert.pem", "mine", "02") # certificate object beside it
    uri = hsm.uri(object="mine")                    # pkcs11:token=...;object=mine?...
    subprocess.run([...], env=hsm.env())            # SOFTHSM2_CONF for child processes
    hsm.cleanup()

Nothing touches the system's token directory: SOFTHSM2_CONF points at a config in
the temp dir, and every child process (pkcs11-tool, smtpcert) gets it from env().
The module is Debian's /usr/lib/softhsm/libsofthsm2.so; keys are created with
OpenSC's pkcs11-tool, an implementation independent of libp11. A missing package
is an AssertionError naming it (the tests fail, never skip). SC_KEEP=1 keeps the dir.
"""
import os
import shutil
import subprocess
import tempfile

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
KEEP = os.environ.get("SC_KEEP") == "1"


def _need(path_or_name, package):
    found = path_or_name if os.path.isabs(path_or_name) else shutil.which(path_or_name)
    if not found or not os.path.exists(found):
        raise AssertionError("%s is missing: install the Debian package %s "
                             "(scripts/install-deps does)" % (path_or_name, package))
    return found


class SoftHSM:
    """One initialised token in a private SoftHSM2 store."""

    def __init__(self, label="smtpcert-test", pin="1234", so_pin="12345678"):
        _need(MODULE, "softhsm2")
        self.util = _need("softhsm2-util", "softhsm2")
        self.tool = _need("pkcs11-tool", "opensc")
        self.openssl = _need("openssl", "openssl")
        self.module = MODULE
        self.label = label
        self.pin = pin
        self.so_pin = so_pin
        self.dir = tempfile.mkdtemp(prefix="sc-softhsm-")
        tokens = os.path.join(self.dir, "tokens")
        os.mkdir(tokens, 0o700)
        self.conf = os.path.join(self.dir, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n" % tokens)
        self.run([self.util, "--init-token", "--free", "--label", label,
                  "--pin", pin, "--so-pin", so_pin])

    def env(self, base=None):
        """A copy of @base (default os.environ) with SOFTHSM2_CONF set."""
        e = dict(os.environ if base is None else base)
        e["SOFTHSM2_CONF"] = self.conf
        return e

    def run(self, argv, check=True, input=None):
        p = subprocess.run(argv, env=self.env(), input=input, capture_output=True,
                           timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" % (
                " ".join(argv), p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace")))
        return p

    def pkcs11_tool(self, *args, login=True, check=True):
        argv = [self.tool, "--module", self.module, "--token-label", self.label]
        if login:
            argv += ["--login", "--pin", self.pin]
        return self.run(argv + list(args), check=check)

    def generate_key(self, label, id_hex, key_type="rsa:2048"):
        """Key pair made on the token by pkcs11-tool (key_type e.g. rsa:2048,
        EC:prime256v1); the private key is sensitive and never leaves the token."""
        self.pkcs11_tool("--keypairgen", "--key-type", key_type, "--label", label,
                         "--id", id_hex, "--usage-sign", "--usage-decrypt")

    def import_key(self, pem_path, label, id_hex):
        """Write a PEM private key (unencrypted) to the token, with its public key."""
        der = os.path.join(self.dir, "import-%s.der" % id_hex)
        pub = os.path.join(self.dir, "import-%s.pub.der" % id_hex)
        self.run([self.openssl, "pkey", "-in", pem_path, "-outform", "DER", "-out", der])
        self.run([self.openssl, "pkey", "-in", pem_path, "-pubout", "-outform", "DER",
                  "-out", pub])
        try:
            self.pkcs11_tool("--write-object", der, "--type", "privkey", "--label", label,
                             "--id", id_hex, "--usage-sign", "--usage-decrypt")
            self.pkcs11_tool("--write-object", pub, "--type", "pubkey", "--label", label,
                             "--id", id_hex)
        finally:
            os.unlink(der)
            os.unlink(pub)

    def import_cert(self, pem_path, label, id_hex):
        der = os.path.join(self.dir, "cert-%s.der" % id_hex)
        self.run([self.openssl, "x509", "-in", pem_path, "-outform", "DER", "-out", der])
        try:
            self.pkcs11_tool("--write-object", der, "--type", "cert", "--label", label,
                             "--id", id_hex)
        finally:
            os.unlink(der)

    def objects(self):
        """pkcs11-tool --list-objects output (after login) as text."""
        return self.pkcs11_tool("--list-objects").stdout.decode(errors="replace")

    def uri(self, object=None, id_hex=None, pin=None, module=True, token=True):
        """RFC 7512 URI for a key on this token. pin: a PIN to embed as pin-value
        (None: no PIN in the URI); module: add module-path."""
        path = []
        if token:
            path.append("token=" + _pct(self.label))
        if object is not None:
            path.append("object=" + _pct(object))
        if id_hex is not None:
            path.append("id=" + "".join("%%%s" % id_hex[i:i + 2]
                                        for i in range(0, len(id_hex), 2)))
        query = []
        if module:
            query.append("module-path=" + _pct(self.module))
        if pin is not None:
            query.append("pin-value=" + _pct(pin))
        return "pkcs11:" + ";".join(path) + ("?" + "&".join(query) if query else "")

    def cleanup(self):
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


def _pct(s):
    """RFC 7512 section 2.3 percent-encoding of a path or query value."""
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:[]@!$'()*+,=/&")
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        out.append(c if c in ok and c not in ";?&" else "%%%02X" % b)
    return "".join(out)
