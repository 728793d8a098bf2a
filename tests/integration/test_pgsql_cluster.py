"""Several smtpcertd nodes on one PostgreSQL database (docs/scaling.md): the
certificates and the review queue of CERC submissions are shared, so a
submission taken by one node and decided by an administrator on another is
served by all (lib/queue_pgsql.c, lib/repo_pgsql.c, issue 6).

One private cluster (tests/lib/pgsql.py: initdb on a loopback port), a fresh
database per test, two daemons with `repository = pgsql:...`, each with its
own hostname, state_dir and port, submissions over STARTTLS + AUTH (smtplib),
`smtpcert admin -c NODE.conf` on either node. Covered: CERC on A, pending and
accept on B, CERT answered by A and B; reject on the other node; audit rows
naming both nodes; accept or reject of an id the other node already decided
(a clear error, nothing changed); an admin whose first store is local is
warned (the other nodes would not serve it); the database stopped during a CERC (451
4.3.0, nothing queued) and started again (the resend works, without
restarting the daemons); a node started while the database is down (CERC
451 until it answers); both nodes started at once on an empty database (one
migration) with submissions = auto (served by the other node at once).
"""
import os
import re
import smtplib
import threading
import time
import unittest

import sctest
from sctest import Client, Daemon, pki
from pgsql import ClusterTestCase

USERS = {"alice@example.test": "alice-secret", "bob@example.test": "bob-secret"}
ID_RE = r"250 2\.0\.0 ([0-9a-f]{32}) (queued|accepted)"


class Node(Daemon):
    """smtpcertd on the shared database: auth, delivery and state of its own."""

    def __init__(self, name, spec, submissions="review", start=True):
        overrides = {"hostname": name, "repository": spec, "submissions": submissions}
        super().__init__(overrides=overrides, certs=None, start=False)
        try:
            self.name = name
            self.passwd = os.path.join(self.tmp, "passwd")
            sctest.write_passwd(self.passwd, USERS)
            self.overrides["auth"] = "passwd:" + self.passwd
            self.overrides["delivery"] = "maildir:" + os.path.join(self.tmp, "mail", "%d", "%n")
            self.write_config()
            if start:
                self.start()
        except BaseException:
            self.cleanup()
            raise

    def session(self, user):
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        s.ehlo("client.test")
        s.starttls(context=sctest.tls_context_unchecked())
        s.ehlo("client.test")
        s.login(user, USERS[user])
        return s

    def submit(self, user, pem):
        """CERC + DATA as @user for @user's address: the final reply as text."""
        s = self.session(user)
        try:
            code, msg = s.docmd("CERC", user)
            if code != 250:
                return "%d %s" % (code, msg.decode())
            code, msg = s.data(pem)
            return "%d %s" % (code, msg.decode())
        finally:
            s.quit()

    def cert(self, addr):
        with Client(self.port, timeout=30) as c:
            c.ehlo()
            return c.cmd("CERT " + addr)

    def pending(self):
        r = self.admin("pending")
        if r.returncode != 0:
            raise AssertionError("%s: admin pending failed (%d): %s%s"
                                 % (self.name, r.returncode, r.stdout, r.stderr))
        return r.stdout


class PgsqlClusterTest(ClusterTestCase):
    DB_PREFIX = "c"

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        super().setUpClass()

    def setUp(self):
        self.db = self.fresh_db()
        self.spec = "pgsql:" + self.pg.conninfo(self.db, timeout=3)

    def node(self, name, **kw):
        n = Node(name, self.spec, **kw)
        self.addCleanup(self._stop, n)
        return n

    @staticmethod
    def _stop(n):
        try:
            n.stop(check=False)
        finally:
            n.cleanup()

    def sql(self, query):
        return self.pg.psql(query, dbname=self.db).strip()

    def pem(self, name):
        return self.pki.pem(name + ".chain")

    def test_review_across_nodes(self):
        a = self.node("mx-a.example.test")
        b = self.node("mx-b.example.test")
        last = a.submit("alice@example.test", self.pem("alice"))
        m = re.match(ID_RE, last)
        self.assertTrue(m, last)
        sid = m.group(1)
        self.assertEqual(m.group(2), "queued")
        # not served before a decision, by either node
        self.assertEqual(a.cert("alice@example.test").code, 550)
        self.assertEqual(b.cert("alice@example.test").code, 550)
        # taken by A, listed by the admin of B
        self.assertIn(sid, b.pending())
        self.assertIn(sid, a.pending())
        r = b.admin("accept", sid)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("accepted " + sid, r.stdout)
        # served by both nodes, without a restart
        for n in (a, b):
            got = n.cert("alice@example.test")
            self.assertEqual(got.code, 250, "%s: %r" % (n.name, got))
            self.assertEqual(got.ders()[0], self.pki.der("alice"))
        self.assertNotIn(sid, a.pending())
        # already decided on B: A's admin gets a clear error, nothing changes
        r = a.admin("accept", sid)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s: already accepted" % sid, r.stderr)
        r = a.admin("reject", sid, "--reason", "too late")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s: already accepted" % sid, r.stderr)
        self.assertEqual(self.sql("SELECT state || ' ' || reason FROM submissions"), "1")
        # the audit names both nodes: submit on A, accept on B
        rows = self.sql("SELECT action || ' ' || node || ' ' || actor FROM audit "
                        "WHERE id = '%s' ORDER BY seq" % sid).splitlines()
        self.assertEqual(len(rows), 2, rows)
        self.assertEqual(rows[0], "submit mx-a.example.test alice@example.test")
        self.assertRegex(rows[1], r"^accept mx-b\.example\.test admin:")
        # the directory queue under state_dir was never used
        self.assertFalse(os.path.exists(os.path.join(a.tmp, "state", "submissions")))

    def test_reject_on_other_node(self):
        a = self.node("mx-a.example.test")
        b = self.node("mx-b.example.test")
        last = b.submit("bob@example.test", self.pem("bob"))
        sid = re.match(ID_RE, last).group(1)
        r = a.admin("reject", sid, "--reason", "not our CA")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = b.admin("show", sid)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^state: +rejected$")
        self.assertRegex(r.stdout, r"(?m)^reason: +not our CA$")
        for n in (a, b):
            self.assertEqual(n.cert("bob@example.test").code, 550)
            self.assertNotIn(sid, n.pending())
        r = b.admin("accept", sid)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already rejected", r.stderr)
        self.assertEqual(self.sql("SELECT string_agg(action || '@' || node, ',' ORDER BY seq) "
                                  "FROM audit"),
                         "submit@mx-b.example.test,reject@mx-a.example.test")

    def test_local_first_store_warns(self):
        # an admin whose first store is a local lmdb: accepts into it, with a
        # warning; the other node (reading only the database) does not serve it
        a = self.node("mx-a.example.test")
        c = Node("mx-c.example.test", self.spec, start=False)
        self.addCleanup(c.cleanup)
        # a password in the conninfo (trust ignores it) must never be shown
        c.write_config({"hostname": c.name, "auth": c.overrides["auth"],
                        "delivery": c.overrides["delivery"], "submissions": "review",
                        "repository": ["lmdb:" + os.path.join(c.tmp, "repo"),
                                       self.spec + " password=s3cret"]})
        sid = re.match(ID_RE, a.submit("alice@example.test", self.pem("alice"))).group(1)
        r = c.admin("accept", sid)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("warning: the submission queue is in the pgsql: database", r.stderr)
        self.assertNotIn("s3cret", r.stdout + r.stderr)
        self.assertEqual(a.cert("alice@example.test").code, 550)
        self.assertEqual(self.sql("SELECT count(*) FROM certs"), "0")

    def test_database_down_during_cerc(self):
        a = self.node("mx-a.example.test")
        b = self.node("mx-b.example.test")
        self.pg.stop()
        try:
            last = a.submit("alice@example.test", self.pem("alice"))
            self.assertTrue(last.startswith("451 4.3.0"), last)
            self.assertTrue(a.wait_log(r"cmd=CERC .*result=451", timeout=10), a.log_text()[-2000:])
            # the log says why: the database's own message
            self.assertTrue(a.wait_log(r"submission queue: pgsql", timeout=10),
                            a.log_text()[-2000:])
            # the admin says why, not a crash
            r = b.admin("pending")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("pgsql", r.stderr)
        finally:
            self.pg.start()
        # nothing was queued by the failed try; the resend works on the same
        # daemons
        self.assertEqual(self.sql("SELECT count(*) FROM submissions"), "0")
        sid = self.resend_until_queued(a, "alice@example.test", self.pem("alice"))
        self.assertIn(sid, b.pending())
        self.assertTrue(a.alive() and b.alive())

    def resend_until_queued(self, node, user, pem):
        """A client's retries after 451 (the pool waits a second after a failed
        connect, so a resend at once may still get 451)."""
        for attempt in range(20):
            last = node.submit(user, pem)
            if not last.startswith("451 4.3.0"):
                break
            time.sleep(0.5)
        m = re.match(ID_RE, last)
        self.assertTrue(m, "%s\n%s" % (last, node.log_text()[-3000:]))
        return m.group(1)

    def test_node_starts_while_database_down(self):
        self.pg.stop()
        try:
            # a node starts anyway (as with its pgsql: repository): CERC is 451
            a = self.node("mx-a.example.test")
            last = a.submit("alice@example.test", self.pem("alice"))
            self.assertTrue(last.startswith("451 4.3.0"), last)
        finally:
            self.pg.start()
        sid = self.resend_until_queued(a, "alice@example.test", self.pem("alice"))
        self.assertEqual(self.sql("SELECT id FROM submissions"), sid)

    def test_start_together_auto(self):
        # both nodes start at once on an empty database: one migrates, both serve
        nodes = [Node(n, self.spec, submissions="auto", start=False)
                 for n in ("mx-a.example.test", "mx-b.example.test")]
        for n in nodes:
            self.addCleanup(self._stop, n)
        errors = []

        def start(n):
            try:
                n.start()
            except Exception as e:  # reported below, in the test's thread
                errors.append(e)

        threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        a, b = nodes
        self.assertEqual(self.sql("SELECT count(*) FROM smtpcert_schema"), "1")
        # submissions = auto on B stores into the shared first repository
        last = b.submit("alice@example.test", self.pem("alice"))
        m = re.match(ID_RE, last)
        self.assertTrue(m, last)
        self.assertEqual(m.group(2), "accepted")
        got = a.cert("alice@example.test")
        self.assertEqual(got.code, 250)
        self.assertEqual(got.ders()[0], self.pki.der("alice"))
        self.assertEqual(self.sql("SELECT string_agg(action || '@' || node || ':' || actor, ',' "
                                  "ORDER BY seq) FROM audit"),
                         "submit@mx-b.example.test:alice@example.test,"
                         "accept@mx-b.example.test:auto")


if __name__ == "__main__":
    unittest.main()
