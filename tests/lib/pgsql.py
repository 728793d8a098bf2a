"""pgsql - a private PostgreSQL cluster for pgsql: repository and queue tests.

Everything lives in a temporary directory: initdb's data directory, the unix
socket, the server log. The packaged cluster (/etc/postgresql, the system
service) is never touched. The server listens on 127.0.0.1:PORT only (a free
port), with trust authentication for local and loopback connections; the
superuser role is SUPERUSER and the database DB exists. fsync is off: the data
is thrown away.

initdb and postgres refuse to run as root: as root, both run as the
`postgres` account (or `nobody` when there is none), with the temp dir
chowned to it. The server is started directly (not through pg_ctl), so stop()
signals its own PID; stop() keeps the data, so start() brings the same cluster
back (tests of "database down, then back"). A missing initdb or postgres is an
error (AssertionError), never a skipped test: scripts/install-deps installs
postgresql.

    pg = Postgres()
    pg.start()                                   # pg.port, pg.conninfo()
    pg.psql("SELECT 1")                          # -> output text
    pg.createdb("other"); pg.conninfo("other", timeout=3)
    pg.stop(); pg.start(); pg.cleanup()

ClusterTestCase is a unittest base class with one cluster per class (cls.pg)
and fresh_db() for a new database per test.

Run as a script it serves C tests: see main().
"""

import atexit
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import sctest

SUPERUSER = "sc"
DB = "smtpcert"
PACKAGE = "postgresql"


def bindir():
    """The newest /usr/lib/postgresql/<ver>/bin holding initdb, postgres and psql."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        try:
            ver = int(os.path.basename(os.path.dirname(d)))
        except ValueError:
            continue
        if all(os.access(os.path.join(d, t), os.X_OK) for t in ("initdb", "postgres", "psql")):
            found.append((ver, d))
    if not found:
        raise AssertionError("PostgreSQL server binaries (initdb, postgres, psql) not found in "
                             "/usr/lib/postgresql/*/bin: install %s (scripts/install-deps)"
                             % PACKAGE)
    return max(found)[1]


def _run_as():
    """(uid, gid) the server runs as: ourselves, or an unprivileged account as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    raise AssertionError("running as root and neither a postgres nor a nobody account "
                         "exists: initdb refuses to run as root")


class Postgres:
    def __init__(self, directory=None):
        self.bin = bindir()
        self.dir = directory or tempfile.mkdtemp(prefix="sc-pg-")
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        self.port = sctest.free_port()
        self.proc = None
        self.ids = _run_as()
        os.chmod(self.dir, 0o700)
        if self.ids:
            os.chown(self.dir, self.ids[0], self.ids[1])
        self._initdb()
        # a failing test must not leave a server behind
        atexit.register(self.stop)

    def _tool(self, name):
        return os.path.join(self.bin, name)

    def _popen_args(self):
        if not self.ids:
            return {}
        return {"user": self.ids[0], "group": self.ids[1], "extra_groups": []}

    def _initdb(self):
        r = subprocess.run([self._tool("initdb"), "-D", self.data, "-U", SUPERUSER,
                            "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                           capture_output=True, timeout=120, cwd=self.dir,
                           **self._popen_args())
        if r.returncode != 0:
            raise AssertionError("initdb failed (%d): %s%s" % (
                r.returncode, r.stdout.decode(errors="replace"),
                r.stderr.decode(errors="replace")))

    def conninfo(self, dbname=DB, user=SUPERUSER, timeout=5, **extra):
        """A libpq conninfo for @dbname over TCP (what pgsql: specs carry)."""
        parts = ["host=127.0.0.1", "port=%d" % self.port, "dbname=%s" % dbname,
                 "user=%s" % user, "connect_timeout=%d" % timeout]
        parts += ["%s=%s" % kv for kv in sorted(extra.items())]
        return " ".join(parts)

    def start(self, timeout=60):
        for attempt in range(3):
            if self._start_once(timeout):
                break
            # the free port was taken between free_port() and bind()
            self.port = sctest.free_port()
        else:
            raise AssertionError("postgres could not bind a port:\n" + self.log_text()[-3000:])
        if not getattr(self, "_created", False):
            self.createdb(DB)
            self._created = True
        return self

    def _start_once(self, timeout):
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [self._tool("postgres"), "-D", self.data, "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + self.dir,
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=60", "-c", "shared_buffers=16MB",
             "-c", "logging_collector=off", "-c", "log_min_messages=warning"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir,
            start_new_session=True, **self._popen_args())
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log_text()
                self.proc = None
                if "could not bind" in text[-2000:] or "Address already in use" in text[-2000:]:
                    return False
                raise AssertionError("postgres exited:\n" + text[-3000:])
            r = subprocess.run([self._tool("pg_isready"), "-q", "-h", "127.0.0.1",
                                "-p", str(self.port), "-t", "1"], capture_output=True)
            if r.returncode == 0:
                return True
            time.sleep(0.1)
        self.stop()
        raise AssertionError("postgres not ready on %d within %d s:\n%s"
                             % (self.port, timeout, self.log_text()[-3000:]))

    def stop(self):
        """Fast shutdown (SIGINT: roll back open transactions) of our own PID."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # immediate shutdown, then the whole process group
                self.proc.send_signal(signal.SIGQUIT)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        if not sctest.KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def psql(self, sql, dbname=DB, user=SUPERUSER, check=True):
        """Run @sql with psql (ON_ERROR_STOP); the unaligned, tuples-only output."""
        r = subprocess.run([self._tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", dbname,
                            "-c", sql], capture_output=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("psql failed (%d) on %r: %s" % (
                r.returncode, sql, r.stderr.decode(errors="replace")))
        return r.stdout.decode("utf-8", "replace")

    def createdb(self, name):
        self.psql('CREATE DATABASE "%s"' % name, dbname="postgres")
        return name


class ClusterTestCase(unittest.TestCase):
    """One private cluster for the whole class (cls.pg, removed in
    tearDownClass even when setUpClass fails half way); fresh_db() creates the
    next database DB_PREFIX + N."""
    DB_PREFIX = "t"

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()
        try:
            cls.pg.start()
        except BaseException:
            cls.pg.cleanup()
            raise
        cls.dbs = 0

    @classmethod
    def tearDownClass(cls):
        cls.pg.cleanup()

    def fresh_db(self):
        type(self).dbs += 1
        return self.pg.createdb("%s%d" % (self.DB_PREFIX, self.dbs))


def main():
    """`python3 pgsql.py`: start a cluster, print its conninfo (database DB) on
    one line, keep it until stdin closes, then stop it and remove it. Used by
    C unit tests (tests/lib/pgtest.c), whose exit, even by a crash,
    closes the pipe and so stops the server."""
    import sys
    pg = None
    try:
        pg = Postgres()
        pg.start()
        sys.stdout.write(pg.conninfo() + "\n")
        sys.stdout.flush()
        sys.stdin.read()
    except AssertionError as e:
        sys.stdout.write("ERROR " + " ".join(str(e).split())[:2000] + "\n")
        sys.stdout.flush()
        return 1
    finally:
        if pg is not None:
            pg.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
