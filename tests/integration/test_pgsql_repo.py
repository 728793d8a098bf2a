"""pgsql: repositories end to end (lib/repo_pgsql.c, lib/pgsql_db.c) against a
real PostgreSQL (tests/lib/pgsql.py: a private cluster on a loopback port).

`smtpcert admin import/list/remove` write and read the database; smtpcertd
serves CERT/CERS from it (chain in order), two daemons on one database serve
what either node's admin stored; a revoked (crl_file) or expired certificate
stored there is never served; the database stopped means 451 4.3.0 (never 550)
and answers again once it is back, without restarting smtpcertd; a server that
accepts TCP and never answers costs the deadline, then 451; a database whose
schema is newer than the program is refused with a clear message; several
processes migrating one empty database at once all succeed, once."""
import os
import socket
import ssl
import subprocess
import time
import unittest

import sctest
from sctest import Client, Daemon, pki
from pgsql import ClusterTestCase


def cert_times(path):
    """(notBefore, notAfter) of a PEM certificate, seconds since the epoch."""
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-startdate", "-enddate"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    t = dict(line.split("=", 1) for line in out.strip().splitlines())
    return (int(ssl.cert_time_to_seconds(t["notBefore"])),
            int(ssl.cert_time_to_seconds(t["notAfter"])))


class PgsqlRepoTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        super().setUpClass()

    def spec(self, db, timeout=3):
        return "pgsql:" + self.pg.conninfo(db, timeout=timeout)

    def daemon(self, repository, **extra):
        cfg = {"repository": repository}
        cfg.update(extra)
        d = Daemon(cfg, certs=None)
        self.addCleanup(d.cleanup)
        return d

    def cmd(self, d, line):
        with Client(d.port, timeout=30) as c:
            c.ehlo()
            return c.cmd(line)

    def cmd_until_up(self, d, line):
        """@line until its reply is not 451 (the database is back; a failed
        connect is retried after a second): the last reply. A generous
        deadline against hangs only."""
        deadline = time.monotonic() + 30
        while True:
            r = self.cmd(d, line)
            if r.code != 451 or time.monotonic() > deadline:
                return r
            time.sleep(0.3)

    def insert_raw(self, db, name):
        """Store a PKI certificate with SQL, past the checks of admin import (a
        writer that imported it while it was still valid, or another tool)."""
        der = self.pki.der(name)
        nb, na = cert_times(self.pki.path(name))
        self.pg.psql("INSERT INTO certs (addr, fingerprint, leaf, not_before, not_after, added) "
                     "VALUES ('%s', sha256('\\x%s'::bytea), '\\x%s', %d, %d, 0)"
                     % (self.pki_address(name), der.hex(), der.hex(), nb, na), dbname=db)

    def pki_address(self, name):
        with open(os.path.join(self.pki.dir, "users.txt"), encoding="utf-8") as f:
            for ln in f:
                parts = ln.split()
                if parts and parts[0] == name:
                    return sctest.lookup_key(parts[1])
        raise KeyError(name)

    def test_admin_and_two_daemons(self):
        db = self.fresh_db()
        d = self.daemon(self.spec(db))
        d2 = self.daemon(self.spec(db))
        r = d.admin("import", self.pki.chain("alice"), self.pki.chain("bob"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # the intermediate and the root once, shared by both entries
        self.assertEqual(self.pg.psql("SELECT count(*) FROM chain_certs", dbname=db).strip(), "2")
        r = d.admin("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.strip().splitlines()
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertTrue(lines[0].startswith("alice@example.test"), r.stdout)
        self.assertIn("valid", lines[0])
        self.assertIn(self.pki.fingerprint("alice").lower(), r.stdout.lower())
        self.assertTrue(lines[1].startswith("bob@example.test"), r.stdout)
        chain = [sctest.pem_to_der(p) for p in sctest.pem_certs(self.pki.pem("alice.chain"))]
        for node in (d, d2):
            r = self.cmd(node, "CERS alice@example.test")
            self.assertEqual(r.code, 250, r.text)
            self.assertEqual(r.ders(), chain)  # leaf, intermediate, root: in order
            r = self.cmd(node, "CERT bob@example.test")
            self.assertEqual(r.code, 250, r.text)
            self.assertEqual(r.ders(), [self.pki.der("bob")])
            self.assertEqual(self.cmd(node, "CERT nobody@example.test").code, 550)
        # removed on one node: gone on both
        r = d2.admin("remove", "bob@example.test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("removed 1 certificate", r.stdout)
        for node in (d, d2):
            r = self.cmd(node, "CERT bob@example.test")
            self.assertEqual(r.code, 550, r.text)
        r = d.admin("remove", "bob@example.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_revoked_and_expired_never_served(self):
        db = self.fresh_db()
        d = self.daemon(self.spec(db))
        self.insert_raw(db, "carol")  # revoked by crl.pem, the default crl_file
        self.insert_raw(db, "dave")   # expired
        r = self.cmd(d, "CERT carol@example.test")
        self.assertEqual(r.code, 550, r.text)
        self.assertEqual(r.ders(), [])
        r = self.cmd(d, "CERT dave@example.test")
        self.assertEqual(r.code, 550, r.text)
        self.assertEqual(r.ders(), [])
        r = d.admin("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"carol@example.test\s+revoked")
        self.assertRegex(r.stdout, r"dave@example.test\s+expired")
        # an older valid certificate next to the revoked one is the answer
        self.insert_raw(db, "alice-old")
        self.pg.psql("UPDATE certs SET addr = 'carol@example.test' WHERE addr = "
                     "'alice@example.test'", dbname=db)
        r = self.cmd(d, "CERT carol@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("alice-old")])

    def test_database_down_and_back(self):
        db = self.fresh_db()
        d = self.daemon(self.spec(db))
        r = d.admin("import", self.pki.chain("bob"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.cmd(d, "CERT bob@example.test").code, 250)
        self.pg.stop()
        try:
            for _ in range(2):
                r = self.cmd(d, "CERT bob@example.test")
                self.assertEqual(r.code, 451, r.text)
                self.assertIn("4.3.0", r.text)
            # unknown is not "not found" either while the database is down
            self.assertEqual(self.cmd(d, "CERT nobody@example.test").code, 451)
            r = d.admin("list")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("pgsql", r.stderr)
        finally:
            self.pg.start()
        # a failed connect is retried after a second; generous deadline
        r = self.cmd_until_up(d, "CERT bob@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertEqual(r.ders(), [self.pki.der("bob")])
        self.assertTrue(d.alive())

    def test_silent_server(self):
        """Accepts TCP, never answers: the deadline (connect_timeout), then 451."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        self.addCleanup(s.close)
        spec = "pgsql:host=127.0.0.1 port=%d dbname=x user=sc connect_timeout=2" % (
            s.getsockname()[1])
        d = self.daemon(spec)  # starts: lookups fail temporarily until it answers
        r = self.cmd(d, "CERT alice@example.test")
        self.assertEqual(r.code, 451, r.text)
        self.assertIn("4.3.0", r.text)
        r = d.admin("import", self.pki.chain("alice"), timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no answer within 2 s", r.stderr)
        self.assertTrue(d.alive())

    def test_statement_deadline(self):
        """A statement that waits on a lock past connect_timeout: 451, the
        statement is cancelled on the server, and the next lookup after the lock
        is gone answers (the daemon keeps running)."""
        db = self.fresh_db()
        d = self.daemon(self.spec(db, timeout=2))
        r = d.admin("import", self.pki.chain("bob"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        locker = subprocess.Popen(
            [os.path.join(self.pg.bin, "psql"), "-X", "-q", "-h", "127.0.0.1",
             "-p", str(self.pg.port), "-U", "sc", "-d", db, "-c",
             "BEGIN; LOCK TABLE certs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while self.pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                               "c.oid = l.relation WHERE c.relname = 'certs' AND "
                               "l.mode = 'AccessExclusiveLock' AND l.granted",
                               dbname=db).strip() != "1":
                self.assertLess(time.monotonic(), deadline, "psql never took the lock")
                time.sleep(0.1)
            r = self.cmd(d, "CERT bob@example.test")
            self.assertEqual(r.code, 451, r.text)
            self.assertIn("4.3.0", r.text)
            # the daemon's cancel reached the server: no lookup left waiting
            deadline = time.monotonic() + 30
            while self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                               "query LIKE '%%FROM certs WHERE addr%%' AND "
                               "state = 'active' AND pid <> pg_backend_pid()",
                               dbname=db).strip() != "0":
                self.assertLess(time.monotonic(), deadline, "lookup not cancelled")
                time.sleep(0.1)
        finally:
            # the server notices a vanished client only after pg_sleep: end
            # the locking session on the server side
            self.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                         "query LIKE '%%pg_sleep(60)%%' AND pid <> pg_backend_pid()",
                         dbname=db)
            locker.kill()
            locker.wait()
        r = self.cmd_until_up(d, "CERT bob@example.test")
        self.assertEqual(r.code, 250, r.text)
        self.assertTrue(d.alive())

    def test_newer_schema_refused(self):
        db = self.fresh_db()
        self.pg.psql("CREATE TABLE smtpcert_schema (version integer NOT NULL); "
                     "INSERT INTO smtpcert_schema VALUES (99)", dbname=db)
        d = Daemon({"repository": self.spec(db)}, certs=None, start=False)
        self.addCleanup(d.cleanup)
        r = d.admin("list")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("schema version 99 is newer than this program's (1)", r.stderr)
        with self.assertRaises(AssertionError) as ctx:
            d.start()
        self.assertIn("version 99 is newer", str(ctx.exception))
        # refused, never written
        self.assertEqual(self.pg.psql("SELECT version FROM smtpcert_schema", dbname=db).strip(),
                         "99")
        self.assertEqual(self.pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = "
                                      "'certs'", dbname=db).strip(), "0")

    def test_concurrent_migration(self):
        db = self.fresh_db()
        d = Daemon({"repository": self.spec(db, timeout=30)}, certs=None, start=False)
        self.addCleanup(d.cleanup)
        procs = [subprocess.Popen([d.smtpcert, "admin", "-c", d.conf, "list"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, out + err)
            self.assertEqual(out, "")
        self.assertEqual(self.pg.psql("SELECT count(*), max(version) FROM smtpcert_schema",
                                      dbname=db).strip(), "1|1")


if __name__ == "__main__":
    unittest.main()
