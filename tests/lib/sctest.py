"""sctest - harness for smtpcert's Python integration tests (stdlib only).

Runs the real binaries against a throw-away PKI on loopback:
  Pki         the PKI of scripts/mkcerts, shared by the test processes (pki()).
  Daemon      writes a config, imports certificates with `smtpcert admin`, starts
              `smtpcertd -c CONF -f -d` on a free loopback port, exposes its log,
              reload() (SIGHUP) and stop() (SIGTERM, asserts exit status 0).
  Client      raw socket SMTP client: send bytes, read complete replies.
  smtp()      an smtplib.SMTP connected to a daemon.
  s_client()  `openssl s_client -starttls smtp` fed a list of commands.
Environment (set by tests/CMakeLists.txt): SC_BIN_DIR (smtpcertd, smtpcert),
SC_SOURCE_DIR (the repository). SC_KEEP=1 keeps temp dirs for debugging.
SC_TEST_REPO=dir makes Daemon use a dir: repository and write certificate files
instead of running `smtpcert admin import` (the daemon tests then run against the
dir backend, or without the CLI).
SC_VALGRIND=1 runs smtpcertd under `valgrind --leak-check=full --error-exitcode=99`
(children too: the privileged helper); stop() fails on any error or leak and shows
TMP/valgrind.*.log. Slow, so not part of ctest: run a test file by hand, e.g.
SC_VALGRIND=1 SC_BIN_DIR=build/bin PYTHONPATH=tests/lib python3 tests/integration/test_cerc.py
A missing binary is a test failure with a clear message, never a skip.
"""
import atexit
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time

SOURCE_DIR = os.environ.get("SC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.environ.get("SC_BIN_DIR") or os.path.join(SOURCE_DIR, "build", "bin")
KEEP = os.environ.get("SC_KEEP") == "1"
TEST_REPO = os.environ.get("SC_TEST_REPO", "lmdb")
VALGRIND = os.environ.get("SC_VALGRIND") == "1"

HOSTNAME = "test.example"
CRLF = b"\r\n"


def _isolate_user_state():
    """The CLI remembers fetched certificates (known_certs) and caches them under
    the XDG data/cache directories: give every test process its own, so tests
    never read or write the developer's and never see each other's."""
    base = tempfile.mkdtemp(prefix="sc-xdg-")
    if not KEEP:
        atexit.register(shutil.rmtree, base, True)
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME"):
        os.environ[var] = os.path.join(base, var.lower())


_isolate_user_state()


def binary(name):
    """Absolute path of a built program; AssertionError when it is missing."""
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s not built: %s does not exist or is not executable "
                             "(set SC_BIN_DIR or build first)" % (name, path))
    return path


def sanitized(path):
    """True when @path is built with AddressSanitizer (its RSS then includes the
    quarantine of freed memory, so memory bounds must be looser)."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A loopback TCP port that was free a moment ago (callers retry on races)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_port6(testcase):
    """A free port on [::1], or skip @testcase when this host has no IPv6 loopback."""
    try:
        return free_port(socket.AF_INET6, "::1")
    except OSError as e:
        testcase.skipTest("no IPv6 loopback here: %s" % e)


def mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    if not KEEP:
        atexit.register(shutil.rmtree, d, True)
    return d


# --- PKI ------------------------------------------------------------------------

def pem_certs(text):
    """The PEM CERTIFICATE blocks in @text, each as a normalised string."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return re.findall(r"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----",
                      text, re.S)


def pem_to_der(pem):
    body = re.sub(r"-----[^-]+-----", "", pem)
    return base64.b64decode("".join(body.split()), validate=True)


class Pki:
    """The PKI scripts/mkcerts makes (see its header for the layout)."""

    def __init__(self, directory):
        self.dir = directory
        self._der = {}

    def path(self, name):
        """Path of a file in the PKI dir; 'alice' means alice.pem."""
        if not name.endswith((".pem", ".key", ".der", ".txt")):
            name += ".pem"
        p = os.path.join(self.dir, name)
        if not os.path.exists(p):
            raise AssertionError("PKI file missing: " + p)
        return p

    def pem(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def der(self, name):
        """DER of a certificate, as `openssl x509 -outform DER` writes it."""
        if name not in self._der:
            out = subprocess.run(["openssl", "x509", "-in", self.path(name), "-outform", "DER"],
                                 capture_output=True, timeout=30, check=True)
            self._der[name] = out.stdout
        return self._der[name]

    def fingerprint(self, name):
        """SHA-256 fingerprint of a certificate, lower-case hex without colons."""
        import hashlib
        return hashlib.sha256(self.der(name)).hexdigest()

    def chain(self, name):
        return self.path(name + ".chain.pem")


_pki = None


def _pki_cache_root():
    """Where PKIs are shared between test processes: next to the binaries' build
    dir (SC_PKI_CACHE overrides), else the temp dir."""
    root = os.environ.get("SC_PKI_CACHE")
    if not root:
        if not os.path.isdir(BIN_DIR):
            return None
        root = os.path.join(os.path.dirname(os.path.abspath(BIN_DIR).rstrip("/")), "test-pki")
    try:
        os.makedirs(root, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    return None


def pki():
    """The test PKI, made on first use.

    scripts/mkcerts takes seconds of CPU (a dozen RSA keys), and ctest runs several
    test processes at once, so one PKI is shared by all processes of one build: it
    lives in BUILD/test-pki/<UTC date>-<hash of mkcerts>/ (a new one each day and
    whenever the script changes; older ones are removed), made once under a file
    lock. Tests only read it. Without a writable cache it goes to a temp dir."""
    global _pki
    if _pki is not None:
        return _pki
    import fcntl
    import hashlib
    script = os.path.join(SOURCE_DIR, "scripts", "mkcerts")
    with open(script, "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:12]
    root = _pki_cache_root()
    if root is None:
        d = mkdtemp("sc-pki-")
        lock = None
    else:
        d = os.path.join(root, time.strftime("%Y%m%d", time.gmtime()) + "-" + tag)
        lock = open(os.path.join(root, ".lock"), "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        if not os.path.exists(os.path.join(d, ".done")):
            r = subprocess.run([script, d], capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise AssertionError("scripts/mkcerts failed (%d): %s%s"
                                     % (r.returncode, r.stdout, r.stderr))
        if root is not None:
            # PKIs from two or more days ago are no longer used by anyone
            for old in os.listdir(root):
                p = os.path.join(root, old)
                if (old != os.path.basename(d) and not old.startswith(".")
                        and time.time() - os.path.getmtime(p) > 2 * 86400):
                    shutil.rmtree(p, ignore_errors=True)
    finally:
        if lock is not None:
            lock.close()
    _pki = Pki(d)
    return _pki


def parse_cert(pem):
    """`openssl x509 -noout -subject` of @pem: proves it parses; returns the subject."""
    r = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("certificate does not parse: %r\n%s" % (pem, r.stderr))
    return r.stdout.decode().strip()


def write_passwd(path, users):
    """An auth = passwd: file: user@domain:crypt-hash lines from `openssl passwd -6`."""
    lines = []
    for user, password in users.items():
        r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                           capture_output=True, text=True, timeout=30, check=True)
        lines.append("%s:%s\n" % (user, r.stdout.strip()))
    with open(path, "w") as f:
        f.writelines(lines)


# --- replies and the raw client ------------------------------------------------

class Reply:
    """One complete SMTP reply: code, the text of each line, and the raw bytes."""

    def __init__(self, raw_lines):
        self.raw = b"".join(raw_lines)
        self.lines = []
        self.code = None
        for ln in raw_lines:
            s = ln.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            if len(s) < 3 or not s[:3].isdigit():
                raise AssertionError("malformed reply line %r" % ln)
            if self.code is None:
                self.code = int(s[:3])
            elif int(s[:3]) != self.code:
                raise AssertionError("reply code changes inside a reply: %r" % self.raw)
            self.lines.append(s[4:])

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def last(self):
        """The final line, e.g. '250 2.0.0 OK'."""
        return "%d %s" % (self.code, self.lines[-1])

    @property
    def first(self):
        return "%d %s" % (self.code, self.lines[0])

    def certs(self):
        """The PEM certificates carried in the reply lines."""
        return pem_certs("\n".join(self.lines) + "\n")

    def ders(self):
        return [pem_to_der(p) for p in self.certs()]

    def __repr__(self):
        return "Reply(%r)" % self.raw


class Closed(Exception):
    """The server closed the connection."""


class Client:
    """A raw SMTP client over a (possibly TLS-wrapped) socket."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, banner=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.banner = self.reply() if banner else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            raise Closed("connection closed; unread %r" % self.buf)
        self.buf += data

    def line(self, timeout=None):
        """One line including its line end (LF or CRLF)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete line; have %r" % self.buf)
            self._fill(left)
        i = self.buf.index(b"\n") + 1
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln

    def reply(self, timeout=None):
        """Read one complete reply (lines up to 'NNN ' or a bare 'NNN')."""
        lines = []
        while True:
            ln = self.line(timeout)
            lines.append(ln)
            if len(ln) < 4 or ln[3:4] != b"-":
                return Reply(lines)

    def cmd(self, line, timeout=None):
        """Send one command (CRLF added) and read its reply."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + CRLF)
        return self.reply(timeout)

    def ehlo(self, name="client.test"):
        r = self.cmd("EHLO " + name)
        if r.code != 250:
            raise AssertionError("EHLO refused: %r" % r)
        return r

    def pending(self, wait=0.3):
        """Whatever the server sends within @wait seconds (b'' if nothing)."""
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                self._fill(left)
            except (socket.timeout, TimeoutError):
                break
            except Closed:
                break
        data, self.buf = self.buf, b""
        return data

    def is_closed(self, timeout=5.0):
        """True when the server closes the connection within @timeout (data ignored)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self._fill(end - time.monotonic())
            except Closed:
                return True
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, ssl.SSLError, OSError):
                return True
            self.buf = b""
        return False

    def starttls(self, ctx=None, server_hostname="localhost"):
        """STARTTLS, check nothing else arrived in plaintext, then handshake."""
        r = self.cmd("STARTTLS")
        if r.code != 220:
            raise AssertionError("STARTTLS refused: %r" % r)
        self.wrap_tls(ctx, server_hostname)
        return r

    def wrap_tls(self, ctx=None, server_hostname="localhost"):
        if self.buf:
            raise AssertionError("plaintext after the STARTTLS reply: %r" % self.buf)
        ctx = ctx or tls_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)


def tls_context(cafile=None):
    """A client context trusting the test root (TLS 1.2+, hostname checked)."""
    ctx = ssl.create_default_context(cafile=cafile or pki().path("ca"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_context_unchecked():
    """A client context for smtplib STARTTLS in tests about what follows it
    (AUTH, CERC): the test root loaded, but neither hostname nor certificate
    checked."""
    ctx = ssl.create_default_context(cafile=pki().path("ca.pem"))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def smtp(port, timeout=10):
    """smtplib client; smtp(port).docmd('CERT', addr) returns (code, msg bytes)."""
    return smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=timeout)


def s_client(port, commands, args=(), timeout=30, cafile=None):
    """`openssl s_client -starttls smtp ... -crlf -quiet` fed @commands (one per line).
    Returns the CompletedProcess (stdout/stderr as text); TimeoutExpired on a hang."""
    cmd = ["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % port,
           "-crlf", "-quiet"]
    if cafile:
        cmd += ["-CAfile", cafile, "-verify_return_error"]
    cmd += list(args)
    data = "".join(c + "\n" for c in commands)
    return subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=timeout,
                          errors="replace")


def replies_from_text(text):
    """Split a transcript of reply lines into Replies (other lines are ignored)."""
    out, cur = [], []
    for ln in text.splitlines():
        if not re.match(r"^\d{3}[ -]", ln) and not re.match(r"^\d{3}$", ln):
            continue
        cur.append((ln + "\r\n").encode("utf-8", "surrogateescape"))
        if len(ln) < 4 or ln[3] == " ":
            out.append(Reply(cur))
            cur = []
    return out


def lookup_key(address):
    """The repository key of a simple dot-atom address: ASCII letters lower-cased."""
    return "".join(ch.lower() if ch.isascii() else ch for ch in address)


def dir_file_name(key):
    """File name stem of @key in a dir: repository (repo.h: %XX outside [A-Za-z0-9@._+-])."""
    out = []
    for b in key.encode("utf-8"):
        c = chr(b)
        out.append(c if (c.isascii() and (c.isalnum() or c in "@._+-")) else "%%%02X" % b)
    return "".join(out)


# --- the daemon ------------------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


class HungServer:
    """A TCP server on loopback that accepts connections and never answers
    (a hung directory or database: the deadlines of ldap: and pgsql: stores)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "ldap://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)  # held open, never read, never answered

    def close(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(5)


class Daemon:
    """A running smtpcertd with its own config, repository and state in a temp dir.

    overrides: config keys to set (None deletes a default; a list value becomes one
    line per item, for repeatable keys such as crl_file). certs: PKI names imported
    (their chain files: leaf + intermediate + root) before the start. dir_certs:
    PKI names written into TMP/dir as <address>.pem (a dir: repository).
    """

    START_TIMEOUT = 60 if VALGRIND else 15
    STOP_TIMEOUT = 60 if VALGRIND else 10

    def __init__(self, overrides=None, certs=("alice", "bob"), dir_certs=(), start=True,
                 chain=True):
        self.pki = pki()
        self.smtpcertd = binary("smtpcertd")
        self.tmp = tempfile.mkdtemp(prefix="sc-daemon-")
        self.conf = os.path.join(self.tmp, "smtpcertd.conf")
        self.logfile = os.path.join(self.tmp, "daemon.log")
        self.dir_repo = os.path.join(self.tmp, "dir")
        self.proc = None
        self.port = None
        self.overrides = dict(overrides or {})
        try:
            os.makedirs(os.path.join(self.tmp, "state"))
            os.makedirs(self.dir_repo)
            for name in dir_certs:
                self.put_dir_cert(name, chain=chain)
            self.port = free_port()
            self.write_config()
            if certs:
                self.import_certs(certs, chain=chain)
            if start:
                self.start()
        except BaseException:
            self.cleanup()
            raise

    # config
    def base_config(self):
        p = self.pki
        return {
            "hostname": HOSTNAME,
            "listen": "127.0.0.1:%d" % self.port,
            "domains": "example.test",
            "gateway_domains": "gw.test",
            "repository": ("dir:" + self.dir_repo if TEST_REPO == "dir"
                           else "lmdb:" + os.path.join(self.tmp, "repo")),
            "tls_cert_file": p.path("server.chain.pem"),
            "tls_key_file": p.path("server.key"),
            "crl_file": p.path("crl.pem"),
            "state_dir": os.path.join(self.tmp, "state"),
            "submissions": "off",
            # valgrind does not emulate seccomp(2) (an "unhandled syscall" in its
            # log); the filter itself is tested without valgrind (test_privsep)
            "seccomp": "no" if VALGRIND else None,
        }

    def config_text(self, overrides=None, extra=""):
        cfg = self.base_config()
        cfg.update(self.overrides if overrides is None else overrides)
        out = ["# written by tests/lib/sctest.py"]
        for k, v in cfg.items():
            if v is None:
                continue
            for item in (v if isinstance(v, (list, tuple)) else [v]):
                out.append("%s = %s" % (k, item))
        return "\n".join(out) + "\n" + extra

    def write_config(self, overrides=None, extra=""):
        """(Re)write the config file; @overrides replaces the constructor's ones."""
        if overrides is not None:
            self.overrides = dict(overrides)
        text = self.config_text(None, extra)
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)
        return text

    @property
    def smtpcert(self):
        return binary("smtpcert")

    # repository
    def admin(self, *args, timeout=30):
        return subprocess.run([self.smtpcert, "admin", "-c", self.conf] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def import_certs(self, names, chain=True):
        if TEST_REPO == "dir" and not self.overrides.get("repository"):
            for n in names:
                main = os.path.join(self.dir_repo, dir_file_name(self.address_of(n)) + ".pem")
                self.put_dir_cert(n, chain=chain, sub=n if os.path.exists(main) else None)
            return None
        files = [self.pki.chain(n) if chain else self.pki.path(n) for n in names]
        r = self.admin("import", *files)
        if r.returncode != 0:
            raise AssertionError("smtpcert admin import %s failed (%d): %s%s"
                                 % (" ".join(names), r.returncode, r.stdout, r.stderr))
        return r

    def put_dir_cert(self, name, address=None, chain=True, sub=None):
        """Write a PKI certificate into the dir: repository (atomically)."""
        address = address or self.address_of(name)
        text = self.pki.pem(name + ".chain" if chain else name)
        d = self.dir_repo
        if sub:
            d = os.path.join(self.dir_repo, dir_file_name(address) + ".d")
            os.makedirs(d, exist_ok=True)
        final = os.path.join(d, (sub or dir_file_name(address)) + ".pem")
        with open(final + ".tmp", "w") as f:
            f.write(text)
        os.replace(final + ".tmp", final)
        return final

    def address_of(self, name):
        with open(os.path.join(self.pki.dir, "users.txt"), encoding="utf-8") as f:
            for ln in f:
                parts = ln.split()
                if parts and parts[0] == name:
                    return lookup_key(parts[1])
        raise KeyError(name)

    # process
    def start(self):
        last = ""
        for attempt in range(5):
            if attempt:
                self.port = free_port()
                self.write_config()
            self._log = open(self.logfile, "ab")
            self.proc = subprocess.Popen(self.valgrind_prefix() +
                                         [self.smtpcertd, "-c", self.conf, "-f", "-d"],
                                         stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=self._log)
            if self._wait_ready():
                return self
            last = self.log_text()
            if self.proc.poll() is None:
                self._kill()
            self._log.close()
            if not re.search(r"in use|EADDRINUSE|bind", last, re.I):
                break
        raise AssertionError("smtpcertd did not start (exit %r); config:\n%s\nlog:\n%s"
                             % (self.proc.returncode, self.config_text(), last[-4000:]))

    def valgrind_prefix(self):
        """The valgrind command line under SC_VALGRIND=1, else nothing. Its report
        goes to TMP/valgrind.<pid>.log, never into the daemon log the tests read."""
        if not VALGRIND:
            return []
        return ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                "--show-leak-kinds=definite,possible", "--errors-for-leak-kinds=definite,possible",
                "--trace-children=yes", "--child-silent-after-fork=no",
                # the daemon drops privileges: valgrind could not remove its
                # gdbserver FIFOs in /tmp then, and would say so in the log
                "--vgdb=no",
                # third-party code only (the file says why for each entry)
                "--suppressions=" + os.path.join(SOURCE_DIR, "tests", "valgrind.supp"),
                "--log-file=" + os.path.join(self.tmp, "valgrind.%p.log")]

    def valgrind_report(self):
        """Contents of the non-empty valgrind logs ('' without SC_VALGRIND)."""
        out = []
        for name in sorted(os.listdir(self.tmp)) if VALGRIND else ():
            if name.startswith("valgrind.") and name.endswith(".log"):
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    text = f.read()
                if text.strip():
                    out.append("--- %s ---\n%s" % (name, text))
        return "\n".join(out)

    def _wait_ready(self):
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with Client(self.port, timeout=5) as c:
                    if c.banner.code != 220:
                        raise AssertionError("banner is not 220: %r" % c.banner)
                    c.send(b"QUIT\r\n")
                    return True
            except (ConnectionRefusedError, ConnectionResetError, Closed):
                time.sleep(0.05)
        return False

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=5.0, start=0):
        """Wait for @pattern (regex) in the log after offset @start; the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log_text()[start:], re.M)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def log_has(self, text, timeout=5.0, start=0):
        """True once the literal @text is in the log after @start.  The daemon
        writes its log once per event-loop round, after the replies of that
        round may already be on the wire: a test never reads the log right
        after a reply without waiting."""
        return self.wait_log(re.escape(text), timeout, start) is not None

    def reload(self, timeout=5.0):
        """SIGHUP; wait for a log line about the reload (or a short poll)."""
        mark = len(self.log_text())
        self.proc.send_signal(signal.SIGHUP)
        m = self.wait_log(r"(?i)reload|sighup", timeout, mark)
        time.sleep(0.2 if m else 0.5)
        return mark

    def client(self, **kw):
        return Client(self.port, **kw)

    def rss_kb(self):
        return rss_kb(self.proc.pid)

    def _kill(self):
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self, check=True):
        """SIGTERM and wait; kill -9 after 10 s. Asserts exit status 0 when @check."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                rc = "killed after SIGTERM timeout"
        self._log.close()
        report = self.valgrind_report()
        if check and (rc != 0 or report):
            raise AssertionError("smtpcertd exit status %r; log tail:\n%s\n%s"
                                 % (rc, self.log_text()[-3000:], report[-20000:]))
        return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self._kill()
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if not KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        try:
            if etype is None:
                self.stop()
            else:
                self.stop(check=False)
                import sys
                sys.stderr.write("--- smtpcertd log (%s) ---\n%s\n"
                                 % (self.logfile, self.log_text()[-3000:]))
        finally:
            self.cleanup()
        return False
