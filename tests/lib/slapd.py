"""slapd - a private OpenLDAP server for ldap:// repository tests.

Everything lives in a temporary directory: slapd.conf (the system's /etc/ldap
config is never read), the mdb database, the pid file and the log. The suffix
is dc=example,dc=test with rootdn cn=admin,dc=example,dc=test (password
ROOTPW); the schemas are Debian's core, cosine and inetorgperson. slapd listens
on ldap://127.0.0.1:PORT/ and on the Unix socket DIR/ldapi (ldapi_url) only,
runs as the current user, and is stopped by
its PID (stop() keeps the data, so start() brings the same directory back).
A missing slapd or ldapadd is an error (AssertionError), never a skipped test:
scripts/install-deps installs slapd and ldap-utils.

    ldap = Slapd()
    ldap.start()                       # ldap.port, ldap.url
    ldap.add_person("alice", "alice@example.test", [der, ...])
    ldap.delete("uid=alice,ou=people," + SUFFIX)
    ldap.stop(); ldap.start(); ldap.cleanup()

slapd's size limit is 500 entries per plain search and unlimited in RFC 2696
pages (size.prtotal), as a directory set up for smtpcert's list should be.

DirectoryTestCase is a unittest base class with one such directory per class
(cls.slapd) holding alice and bob; populate() adds a test's own entries.
"""

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import sctest

SUFFIX = "dc=example,dc=test"
ROOTDN = "cn=admin," + SUFFIX
ROOTPW = "sc-test-secret"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"


def _tool(name, package):
    path = shutil.which(name) or os.path.join("/usr/sbin", name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s not found: install %s (scripts/install-deps)" % (name, package))
    return path


class Slapd:
    def __init__(self, directory=None):
        self.slapd = _tool("slapd", "slapd")
        self.ldapadd = _tool("ldapadd", "ldap-utils")
        self.ldapdelete = _tool("ldapdelete", "ldap-utils")
        self.dir = directory or tempfile.mkdtemp(prefix="sc-slapd-")
        self.db = os.path.join(self.dir, "db")
        self.conf = os.path.join(self.dir, "slapd.conf")
        self.pidfile = os.path.join(self.dir, "slapd.pid")
        self.logfile = os.path.join(self.dir, "slapd.log")
        self.port = sctest.free_port()
        self.proc = None
        self._loaded = False
        os.makedirs(self.db, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "include %s/core.schema" % SCHEMA_DIR,
                "include %s/cosine.schema" % SCHEMA_DIR,
                "include %s/inetorgperson.schema" % SCHEMA_DIR,
                "pidfile %s" % self.pidfile,
                "modulepath %s" % MODULE_DIR,
                "moduleload back_mdb",
                "database mdb",
                "maxsize 67108864",
                "suffix \"%s\"" % SUFFIX,
                "rootdn \"%s\"" % ROOTDN,
                "rootpw %s" % ROOTPW,
                "directory %s" % self.db,
                "sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited",
                "access to * by * read",
                "",
            ]))

    @property
    def url(self):
        return "ldap://127.0.0.1:%d" % self.port

    @property
    def ldapi_url(self):
        """The Unix socket slapd also listens on (OpenLDAP's ldapi://, the path
        percent-encoded)."""
        return "ldapi://" + urllib.parse.quote(os.path.join(self.dir, "ldapi"), safe="")

    def start(self, timeout=15):
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen([self.slapd, "-h", self.url + "/ " + self.ldapi_url,
                                      "-f", self.conf,
                                      "-d", "0"], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("slapd exited (%r):\n%s" % (self.proc.returncode,
                                                                 self.log_text()[-3000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise AssertionError("slapd did not listen on %d:\n%s"
                                 % (self.port, self.log_text()[-3000:]))
        if not self._loaded:
            self._add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\n"
                      "dc: example\no: smtpcert tests\n\n"
                      "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n"
                      % (SUFFIX, SUFFIX))
            self._loaded = True
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _add(self, ldif):
        r = subprocess.run([self.ldapadd, "-x", "-H", self.url, "-D", ROOTDN, "-w", ROOTPW],
                           input=ldif.encode("utf-8"), capture_output=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError("ldapadd failed (%d): %s%s\n%s"
                                 % (r.returncode, r.stdout.decode(errors="replace"),
                                    r.stderr.decode(errors="replace"), ldif[:2000]))

    def delete(self, dn):
        r = subprocess.run([self.ldapdelete, "-x", "-H", self.url, "-D", ROOTDN, "-w", ROOTPW,
                            dn], capture_output=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError("ldapdelete %s failed (%d): %s" % (
                dn, r.returncode, r.stderr.decode(errors="replace")))

    def add_person(self, uid, mail, ders=(), attribute="userCertificate;binary"):
        """An inetOrgPerson ou=people entry with @mail and @ders as @attribute."""
        lines = ["dn: uid=%s,ou=people,%s" % (uid, SUFFIX), "objectClass: inetOrgPerson",
                 "uid: %s" % uid, "cn: %s" % uid, "sn: %s" % uid,
                 "mail:: %s" % base64.b64encode(mail.encode("utf-8")).decode()]
        for der in ders:
            lines.append("%s:: %s" % (attribute, base64.b64encode(der).decode()))
        self._add("\n".join(lines) + "\n")

    def add_ca(self, dn, ders):
        """A pkiCA entry (RFC 4523) at @dn holding @ders as cACertificate;binary."""
        lines = ["dn: " + dn, "objectClass: organizationalUnit", "objectClass: pkiCA",
                 "ou: " + dn.split(",")[0].split("=", 1)[1]]
        for der in ders:
            lines.append("cACertificate;binary:: " + base64.b64encode(der).decode())
        self._add("\n".join(lines) + "\n")


class DirectoryTestCase(unittest.TestCase):
    """One slapd for the whole class (cls.slapd, removed in tearDownClass, or
    at once when setUpClass fails half way; cls.pki the test PKI) holding
    alice (alice-old's certificate) and bob; a subclass's populate() adds its
    own entries."""

    @classmethod
    def setUpClass(cls):
        cls.pki = sctest.pki()
        cls.slapd = Slapd()
        try:
            cls.slapd.start()
            # alice-old in the directory, alice (newer) in lmdb: the chain test
            # tells which store answered
            cls.slapd.add_person("alice", "alice@example.test", [cls.pki.der("alice-old")])
            cls.slapd.add_person("bob", "bob@example.test", [cls.pki.der("bob")])
            cls.populate()
        except BaseException:
            cls.slapd.cleanup()
            raise

    @classmethod
    def populate(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        cls.slapd.cleanup()
