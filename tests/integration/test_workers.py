"""`workers = 2` (daemon/prefork.c, daemon/shared.c): a master and two serving
processes on the same listening socket.

Which process accepts a connection is the kernel's choice; the tests choose by
stopping one serving process (SIGSTOP) while connecting, so that the other one
takes the connection. With that: max_connections_per_ip, max_connections and
harvest_ip_limit count a client across both processes (one process refuses on
what the other one holds), and a max_connections place that a per-network
limit then refuses is given back; session ids differ; SIGHUP reloads both; a serving
process killed with SIGKILL is restarted and the server goes on, and the
connections it held no longer count against the client's network; AUTH failures
through one process and then the other add up to auth_max_failures, per IP and
per user; SIGTERM stops all with exit status 0. Started as root with `user = nobody`: one writer, both
serving processes run as nobody under the filter, each with its reload helper,
and a CERC through each one is queued by the one writer.
"""
import base64
import os
import pwd
import re
import signal
import socket
import time
import unittest

import sctest
from sctest import Client, Daemon
from test_privsep import FILTERED, ID_RE, PrivsepDaemon, children_of, status_of, submit


USERS = {"alice@example.test": "correct horse", "bob@example.test": "b0b-secret"}


def b64(s):
    return base64.b64encode(s.encode()).decode()


def servers(d, n=2, timeout=30):
    """The serving processes' pids (children named smtpcertd-serve), sorted,
    once each has logged its start-up line (it then serves, as its user, under
    its filter: main.c logs the line just before its loop runs)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = sorted(p for p, comm in children_of(d.proc.pid).items()
                      if comm == "smtpcertd-serve")
        log = d.log_text()
        started = [p for p in pids if re.search(r"smtpcertd\[%d\]: smtpcertd \S+ \(libsmtpcert "
                                                r"\S+\) starting:" % p, log)]
        if (len(pids) == n and len(started) == n) or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


class Only:
    """While in the block, only serving process @keep accepts: the others are
    stopped (SIGSTOP), so a connection made now is @keep's."""

    def __init__(self, d, keep):
        self.others = [p for p in servers(d) if p != keep]

    def __enter__(self):
        for p in self.others:
            os.kill(p, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        for p in self.others:
            os.kill(p, signal.SIGCONT)


class SourceClient(Client):
    """A Client from loopback address @src (127.0.0.2, ...): another client
    network for the per-network limits, since every test client is 127.0.0.1."""

    def __init__(self, port, src, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(src, 0))
        self.timeout = timeout
        self.buf = b""
        self.banner = self.reply()


def served_by(d, port, host="127.0.0.1"):
    """The pid whose log line says it accepted the client @host on local @port."""
    m = d.wait_log(r"smtpcertd\[(\d+)\]: client=%s:%d session=\S+ connect"
                   % (re.escape(host), port), 10)
    return int(m.group(1)) if m else None


class WorkersTest(unittest.TestCase):

    def daemon(self, **extra):
        overrides = {"workers": "2", "limits_exempt_loopback": "no"}
        overrides.update(extra)
        return Daemon(overrides=overrides)

    def test_processes_and_session_ids(self):
        with self.daemon() as d:
            self.assertEqual(len(servers(d)), 2, children_of(d.proc.pid))
            self.assertEqual(status_of(d.proc.pid)["Name"], "smtpcertd")
            a, b = servers(d)
            ids = set()
            for pid in (a, b):
                with Only(d, pid):
                    c = d.client()
                    self.addCleanup(c.close)
                    c.ehlo()
                    self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
                self.assertEqual(served_by(d, c.local_port), pid)
                m = d.wait_log(r"smtpcertd\[%d\]: client=127\.0\.0\.1:%d session=(\S+) connect"
                               % (pid, c.local_port), 10)
                ids.add(m.group(1))
            self.assertEqual(len(ids), 2, ids)
            # start second (8 hex), slot (2 hex), serial: the slots differ even
            # when both processes started in the same second
            self.assertTrue(all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids), ids)
            self.assertEqual(sorted(i[8:10] for i in ids), ["00", "01"], ids)

    def test_per_ip_limit_counts_both_processes(self):
        with self.daemon(max_connections_per_ip="3") as d:
            a, b = servers(d)
            held = []
            with Only(d, a):
                for _ in range(2):
                    held.append(d.client())
            with Only(d, b):
                held.append(d.client())
                refused = Client(d.port)
            for c in held:
                self.addCleanup(c.close)
                self.assertEqual(c.banner.code, 220)
            refused.close()
            self.assertEqual(refused.banner.code, 421, refused.banner)
            self.assertIn("4.7.0", refused.banner.text)
            self.assertTrue(d.wait_log(r"smtpcertd\[%d\]: warning: client=\S+ refused: 421 4\.7\.0 too many "
                                       r"connections from this network" % b, 10),
                            d.log_text()[-2000:])

    def test_max_connections_counts_both_processes(self):
        with self.daemon(max_connections="2") as d:
            a, b = servers(d)
            with Only(d, a):
                c1 = d.client()
            self.addCleanup(c1.close)
            with Only(d, b):
                c2 = d.client()
                refused = Client(d.port)
            self.addCleanup(c2.close)
            refused.close()
            self.assertEqual((c1.banner.code, c2.banner.code), (220, 220))
            self.assertEqual(refused.banner.code, 421, refused.banner)
            self.assertTrue(d.wait_log(r"smtpcertd\[%d\]: warning: client=\S+ refused: 421 4\.7\.0 too many "
                                       r"connections \(2 open, max_connections=2\)" % b, 10),
                            d.log_text()[-2000:])
            # one goes: there is room again, whichever process takes it
            mark = len(d.log_text())
            c1.cmd("QUIT")
            c1.close()
            self.assertTrue(d.wait_log(r"smtpcertd\[%d\]: .* disconnect reason=quit" % a, 10,
                                       mark))
            with d.client() as c3:
                self.assertEqual(c3.banner.code, 220)

    def test_refused_by_another_limit_gives_its_place_back(self):
        # the place of max_connections is taken before the per-network limits
        # are asked (shared.c, conn.c): a refusal by them gives it back, or
        # the second process would count one place too many for good
        with self.daemon(max_connections="2", max_connections_per_ip="1") as d:
            a, b = servers(d)
            with Only(d, a):
                held = d.client()
            self.addCleanup(held.close)
            with Only(d, b):
                for _ in range(3):
                    refused = d.client()
                    refused.close()
                    self.assertEqual(refused.banner.code, 421, refused.banner)
                other = SourceClient(d.port, "127.0.0.2")
            self.addCleanup(other.close)
            self.assertEqual(held.banner.code, 220)
            self.assertEqual(other.banner.code, 220, other.banner)
            self.assertEqual(served_by(d, other.local_port, "127.0.0.2"), b)
            self.assertTrue(d.wait_log(r"smtpcertd\[%d\]: warning: client=\S+ refused: 421 4\.7\.0 too many "
                                       r"connections from this network" % b, 10),
                            d.log_text()[-2000:])
            # now both places are taken
            with Only(d, a):
                full = SourceClient(d.port, "127.0.0.3")
            full.close()
            self.assertEqual(full.banner.code, 421, full.banner)
            self.assertTrue(d.wait_log(r"smtpcertd\[%d\]: warning: client=127\.0\.0\.3:\d+ refused: 421 "
                                       r"4\.7\.0 too many connections \(2 open, max_connections=2\)"
                                       % a, 10), d.log_text()[-2000:])

    def test_harvest_budget_counts_both_processes(self):
        with self.daemon(harvest_ip_limit="2") as d:
            a, b = servers(d)
            with Only(d, a):
                c = d.client()
            with c:
                c.ehlo()
                for who in ("nobody1", "nobody2"):
                    self.assertEqual(c.cmd("CERT %s@example.test" % who).code, 550)
            with Only(d, b):
                c = d.client()
            port = c.local_port
            with c:
                c.ehlo()
                r = c.cmd("CERT alice@example.test")
                self.assertEqual(r.code, 421, r)
                self.assertIn("Too many unknown addresses", r.text)
            self.assertEqual(served_by(d, port), b)

    def test_sighup_kill_and_stop(self):
        with self.daemon() as d:
            a, b = servers(d)
            mark = len(d.log_text())
            d.proc.send_signal(signal.SIGHUP)
            for pid in (a, b):
                self.assertTrue(d.wait_log(r"smtpcertd\[%d\]: reloaded " % pid, 30, mark),
                                d.log_text()[mark:])
            os.kill(a, signal.SIGKILL)
            self.assertTrue(d.wait_log(r"workers: serving process 0 \(pid %d\) killed by signal 9; "
                                       r"restarting it" % a, 10), d.log_text()[-2000:])
            pids = servers(d)
            deadline = time.monotonic() + 10
            while (len(pids) != 2 or a in pids) and time.monotonic() < deadline:
                time.sleep(0.1)
                pids = servers(d)
            self.assertEqual(len(pids), 2, pids)
            self.assertNotIn(a, pids)
            new = [p for p in pids if p != b][0]
            with Only(d, new):
                c = d.client()
            port = c.local_port
            with c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT bob@example.test").code, 250)
            self.assertEqual(served_by(d, port), new)
            self.assertEqual(d.stop(), 0)
            self.assertTrue(d.log_has("workers: serving process 0 is pid %d" % new))
            for pid in (new, b):
                self.assertFalse(os.path.exists("/proc/%d" % pid), "still running: %d" % pid)


    def test_killed_process_releases_its_connections(self):
        # a process killed with its sessions cannot count them down: the
        # master drops the per-network open counts, or the network would stay
        # at its limit for good
        with self.daemon(max_connections_per_ip="2") as d:
            a, b = servers(d)
            with Only(d, a):
                held = [d.client(), d.client()]
            for c in held:
                self.assertEqual(c.banner.code, 220)
            os.kill(a, signal.SIGKILL)
            self.assertTrue(d.wait_log(r"serving process 0 \(pid %d\) killed by signal 9" % a, 10))
            for c in held:
                c.close()
            self.assertEqual(len(servers(d)), 2)
            again = [d.client(), d.client()]
            for c in again:
                self.addCleanup(c.close)
                self.assertEqual(c.banner.code, 220, c.banner)


class WorkersAuthTest(unittest.TestCase):
    """auth_max_failures counts failures across the serving processes
    (authlimit.c's tables in shared.c's mapping): failures through one
    process and then through the other add up, so that neither reaches the
    limit alone and the attempt after the one that makes the total is
    refused. A table of each process's own would answer it 535 or 235."""

    MAX = 4  # auth_max_failures: 2 failures through each process

    def daemon(self):
        tmp = sctest.mkdtemp("sc-workers-auth-")
        passwd = os.path.join(tmp, "passwd")
        sctest.write_passwd(passwd, USERS)
        d = Daemon(overrides={"workers": "2", "auth": "passwd:" + passwd,
                              "auth_fail_delay": "1", "auth_max_failures": str(self.MAX)})
        self.addCleanup(d.cleanup)
        self.addCleanup(d.stop)
        return d

    def session(self, d, pid, src=None):
        """A client in TLS, after EHLO, whose connection serving process @pid
        accepted (the other one stopped meanwhile), from loopback @src."""
        with Only(d, pid):
            c = SourceClient(d.port, src) if src else d.client()
        self.addCleanup(c.close)
        self.assertEqual(served_by(d, c.local_port, src or "127.0.0.1"), pid)
        c.ehlo()
        c.starttls()
        c.ehlo()
        return c

    def auth(self, c, user, password):
        return c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, password)), timeout=30)

    def test_ip_failures_add_up_across_processes(self):
        d = self.daemon()
        a, b = servers(d)
        # a user name each time: only the IP's counter (127.0.0.1) adds up
        n = 0
        for pid in (a, b):
            c = self.session(d, pid)
            for _ in range(self.MAX // 2):
                r = self.auth(c, "user%d@example.test" % n, "wrong")
                self.assertEqual(r.code, 535, "failure %d through %d: %r" % (n + 1, pid, r))
                n += 1
        # B has seen 2 failures itself, A 2: together the limit
        r = self.auth(c, "bob@example.test", USERS["bob@example.test"])
        self.assertEqual(r.code, 454, r)
        self.assertEqual(r.last, "454 4.7.0 Too many authentication failures")
        # and A refuses too
        c = self.session(d, a)
        r = self.auth(c, "alice@example.test", USERS["alice@example.test"])
        self.assertEqual(r.last, "454 4.7.0 Too many authentication failures")

    def test_user_failures_add_up_across_processes(self):
        d = self.daemon()
        a, b = servers(d)
        # another client network each time: only alice's counter adds up
        for pid, src in ((a, "127.0.0.2"), (b, "127.0.0.3")):
            c = self.session(d, pid, src)
            for i in range(self.MAX // 2):
                r = self.auth(c, "alice@example.test", "wrong%d" % i)
                self.assertEqual(r.code, 535, "through %d from %s: %r" % (pid, src, r))
        # the right password, through B, from a network without failures
        c = self.session(d, b, "127.0.0.4")
        mark = len(d.log_text())
        r = self.auth(c, "alice@example.test", USERS["alice@example.test"])
        self.assertEqual(r.last, "454 4.7.0 Too many authentication failures")
        self.assertTrue(d.wait_log(r"smtpcertd\[%d\]: client=127\.0\.0\.4:%d session=\S+ cmd=AUTH "
                                   r"mech=PLAIN user=alice@example\.test result=454 status=4\.7\.0$"
                                   % (b, c.local_port), 10, mark), d.log_text()[mark:])
        # the limit is alice's, not the network's: bob gets in
        r = self.auth(c, "bob@example.test", USERS["bob@example.test"])
        self.assertEqual(r.code, 235, r)


class WorkersPrivsepTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("test_workers needs root (the suite runs as root)")
        cls.pki = sctest.pki()

    def test_one_writer_two_serving_processes(self):
        with PrivsepDaemon(extra={"workers": "2"}) as d:
            kids = children_of(d.proc.pid)
            writers = [p for p, comm in kids.items() if comm == "smtpcertd-write"]
            self.assertEqual(len(writers), 1, kids)
            self.assertEqual(status_of(d.proc.pid)["Uid"].split()[1], "0")
            pids = servers(d)
            self.assertEqual(len(pids), 2, kids)
            for pid in pids:
                st = status_of(pid)
                self.assertEqual(st["Uid"].split()[1], str(pwd.getpwnam("nobody").pw_uid))
                self.assertEqual(st["Seccomp"], FILTERED)
                helpers = [p for p, comm in children_of(pid).items() if comm == "smtpcertd-priv"]
                self.assertEqual(len(helpers), 1, children_of(pid))
            # a CERC through each serving process: both reach the one writer
            ids = []
            for pid in pids:
                with Only(d, pid):
                    s = d.session("alice@example.test")
                last = submit(s, "alice@example.test", self.pki.pem("alice.chain"))
                s.quit()
                m = re.match(ID_RE, last)
                self.assertTrue(m, last + "\n" + d.log_text()[-2000:])
                self.assertEqual(m.group(2), "queued")
                ids.append(m.group(1))
            pending = d.pending()
            for i in ids:
                self.assertIn(i, pending)
            for pid in pids:
                self.assertTrue(d.log_has("smtpcertd[%d]: " % pid), pid)
            # the writer is the master's child: the master reaps it and says how
            os.kill(writers[0], signal.SIGKILL)
            self.assertTrue(d.wait_log(r"privsep: writer process %d ended \(killed by signal 9\)"
                                       % writers[0], 10), d.log_text()[-2000:])
            with Only(d, pids[0]):
                s = d.session("alice@example.test")
            last = submit(s, "alice@example.test", self.pki.pem("alice.chain"))
            self.assertTrue(last.startswith("451 4.3.0"), last)
            self.assertEqual(s.docmd("CERT", "bob@example.test")[0], 250)
            s.quit()


if __name__ == "__main__":
    unittest.main(verbosity=2)
