"""dnszone - a private authoritative DNS server for the sender-side tests.

Zone: a DNSSEC-signed (or, with signed=False, unsigned) zone such as
example.test, written at test time, signed with ldns-keygen/ldns-signzone
(ECDSA P-256, a KSK and a ZSK, signatures valid for 30 days from now), served by
a private nsd (`nsd -d -c CONF`, its own pidfile, zone list, xfrd state and log
in a temp dir) on a free loopback port, running as the current user, stopped by
PID. libunbound reaches it through the lookup's `resolver` option
(`--resolver 127.0.0.1@PORT`) with `anchor` (the KSK's DS record) as DNSSEC trust
anchor (`--dnssec-anchor`). Never touches the packaged nsd or its config.

    z = Zone("example.test", [
            "@ MX 10 mx",
            "mx A 127.0.0.1",
            "_2525._tcp.mx TLSA 3 1 1 " + spki_sha256_hex(pem)])
    z.start(); ...; z.stop(); z.cleanup()

A missing binary is an AssertionError naming the Debian package (never a skip).
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import sctest

BINARIES = {"nsd": "nsd", "ldns-keygen": "ldnsutils", "ldns-signzone": "ldnsutils"}


def _which(name):
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/usr/bin", "/sbin"]:
        p = os.path.join(d, name)
        if d and os.access(p, os.X_OK):
            return p
    raise AssertionError("%s not found: install the Debian package %s "
                         "(scripts/install-deps)" % (name, BINARIES[name]))


def spki_sha256_hex(pem_path):
    """SHA-256 of the SubjectPublicKeyInfo of the certificate in @pem_path (the
    data of a TLSA 3 1 1 / 2 1 1 record)."""
    pub = subprocess.run(["openssl", "x509", "-in", pem_path, "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def cert_sha256_hex(pem_path):
    """SHA-256 of the whole certificate (TLSA selector 0, matching type 1)."""
    der = subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "DER"],
                         capture_output=True, check=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def _free_udp_tcp_port():
    for _ in range(50):
        port = sctest.free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise AssertionError("no free loopback port for nsd")


class Zone:
    def __init__(self, name, records, signed=True):
        self.name = name.rstrip(".")
        self.records = list(records)
        self.signed = signed
        self.dir = tempfile.mkdtemp(prefix="sc-dns-")
        self.port = _free_udp_tcp_port()
        self.proc = None
        self.anchor = None
        self.zonefile = None

    # --- zone -------------------------------------------------------------

    def _write_zone(self):
        origin = self.name + "."
        lines = ["$ORIGIN %s" % origin, "$TTL 300",
                 "@ SOA ns hostmaster 1 3600 600 86400 300",
                 "@ NS ns", "ns A 127.0.0.1"] + self.records
        path = os.path.join(self.dir, self.name + ".zone")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _sign(self, path):
        keygen, signer = _which("ldns-keygen"), _which("ldns-signzone")

        def gen(*extra):
            r = subprocess.run([keygen, "-a", "ECDSAP256SHA256"] + list(extra) + [self.name],
                               cwd=self.dir, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise AssertionError("ldns-keygen failed: %s" % r.stderr)
            return os.path.join(self.dir, r.stdout.strip())

        ksk = gen("-k")
        zsk = gen()
        expire = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 30 * 86400))
        incept = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 86400))
        r = subprocess.run([signer, "-e", expire, "-i", incept, "-f", path + ".signed",
                            path, zsk, ksk], cwd=self.dir, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("ldns-signzone failed: %s" % r.stderr)
        self.anchor = os.path.join(self.dir, "anchor.ds")
        shutil.copyfile(ksk + ".ds", self.anchor)
        return path + ".signed"

    def _write_conf(self):
        conf = os.path.join(self.dir, "nsd.conf")
        d = self.dir
        with open(conf, "w") as f:
            f.write("server:\n"
                    "  ip-address: 127.0.0.1\n"
                    "  port: %d\n"
                    "  username: \"\"\n"
                    "  chroot: \"\"\n"
                    "  zonesdir: \"%s\"\n"
                    "  database: \"\"\n"
                    "  pidfile: \"%s/nsd.pid\"\n"
                    "  logfile: \"%s/nsd.log\"\n"
                    "  xfrdfile: \"%s/xfrd.state\"\n"
                    "  zonelistfile: \"%s/zone.list\"\n"
                    "  xfrdir: \"%s\"\n"
                    "  server-count: 1\n"
                    "  verbosity: 1\n"
                    "  hide-version: yes\n"
                    "remote-control:\n"
                    "  control-enable: no\n"
                    "zone:\n"
                    "  name: %s\n"
                    "  zonefile: \"%s\"\n" % (self.port, d, d, d, d, d, d, self.name,
                                              self.zonefile))
        return conf

    # --- server -------------------------------------------------------------

    def start(self):
        path = self._write_zone()
        self.zonefile = self._sign(path) if self.signed else path
        conf = self._write_conf()
        nsd = _which("nsd")
        self.log = open(os.path.join(self.dir, "nsd.stderr"), "w")
        self.proc = subprocess.Popen([nsd, "-d", "-c", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _query_soa(self):
        """A raw SOA query over UDP: True when nsd answers it."""
        qname = b"".join(bytes([len(p)]) + p.encode() for p in self.name.split(".")) + b"\0"
        msg = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x06\x00\x01"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(msg, ("127.0.0.1", self.port))
            data = s.recv(4096)
            return data[:2] == b"\x12\x34" and (data[3] & 0x0f) == 0
        except OSError:
            return False
        finally:
            s.close()

    def _wait_ready(self, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("nsd exited (%d): %s" % (self.proc.returncode,
                                                              self.log_text()))
            if self._query_soa():
                return
            time.sleep(0.1)
        raise AssertionError("nsd did not answer within %.0f s: %s" % (timeout,
                                                                       self.log_text()))

    def log_text(self):
        out = []
        for name in ("nsd.stderr", "nsd.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f.read())
            except OSError:
                pass
        return "\n".join(out)

    @property
    def resolver(self):
        return "127.0.0.1@%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        if not sctest.KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
