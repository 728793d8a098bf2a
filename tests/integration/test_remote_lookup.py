"""CERT/CERS against remote stores never block smtpcertd's event loop
(daemon/cert_job.c): with an ldap:// store the whole ordered repository walk
runs on a worker thread while the session waits in SESSION_LOOKUP.

Against a hung directory (a socket that accepts and never answers,
ldap_timeout = 3): another client is answered while the first one's lookup
hangs, then the first gets 451 4.3.0; a client that disconnects or times out
during its lookup, and SIGTERM with a lookup in flight (the answer, then 421,
then a clean exit; or, when the lookup outlasts the drain, the close and a
clean exit). Against a real slapd (tests/lib/slapd.py): pipelined
commands answered in order with the right content, URL mode, a chain of [lmdb, ldap]
where lmdb answers first, 40 concurrent clients, and the harvest limits
(delays, counting, 421) as with a local store."""
import os
import signal
import socket
import threading
import time
import unittest

import sctest
from sctest import Client, Daemon, HungServer
from slapd import DirectoryTestCase, SUFFIX

CRLF = b"\r\n"


def ldap_spec(url, ca_dn=None):
    spec = "%s/ou=people,%s?userCertificate;binary?sub?(mail=%%s)" % (url, SUFFIX)
    if ca_dn:
        spec += "?x-ca-dn=" + ca_dn.replace(",", "%2C")
    return spec


def nothing_arrived(client):
    """True when no byte from the server waits on @client's socket (now)."""
    if client.buf:
        return False
    # a socket with a timeout would poll for it first: look without waiting
    client.sock.settimeout(0)
    try:
        client.sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        client.sock.settimeout(client.timeout)
    return False


class RemoteLookupTest(DirectoryTestCase):
    @classmethod
    def populate(cls):
        chain = [sctest.pem_to_der(c)
                 for c in sctest.pem_certs(cls.pki.pem("alice.chain"))]
        cls.chain = chain
        # a bare leaf whose chain comes from the CA entry (CERS)
        cls.slapd.add_person("bare", "bare@example.test", [chain[0]])
        cls.ca_dn = "ou=ca," + SUFFIX
        cls.slapd.add_ca(cls.ca_dn, chain[1:])

    def daemon(self, repository, certs=None, **extra):
        cfg = {"repository": repository, "ldap_timeout": "3"}
        cfg.update(extra)
        d = Daemon(cfg, certs=certs)
        self.addCleanup(d.cleanup)
        return d

    def hung(self):
        h = HungServer()
        self.addCleanup(h.close)
        return h

    def client(self, d):
        c = Client(d.port, timeout=30)
        self.addCleanup(c.close)
        c.ehlo()
        return c

    def test_hung_directory_blocks_nobody(self):
        h = self.hung()
        d = self.daemon(ldap_spec(h.url))
        a = self.client(d)
        a.send(b"CERT bob@example.test" + CRLF)
        # A's lookup is on a worker (the log says the session entered LOOKUP)
        self.assertTrue(d.log_has("-> LOOKUP", timeout=10), d.log_text()[-2000:])
        b = Client(d.port, timeout=30)
        self.addCleanup(b.close)
        self.assertEqual(b.banner.code, 220)
        self.assertEqual(b.cmd("EHLO other.test").code, 250)
        self.assertEqual(b.cmd("NOOP").code, 250)
        self.assertEqual(b.cmd("HELP").code, 214)
        # B was answered in full while A still waits for the directory
        self.assertTrue(nothing_arrived(a), "A answered before B: %r" % a.buf)
        r = a.reply(timeout=30)
        self.assertEqual(r.last, "451 4.3.0 Certificate repository temporarily unavailable")
        self.assertEqual(r.ders(), [])
        # the session goes on after the answer
        self.assertEqual(a.cmd("NOOP").code, 250)
        self.assertIsNotNone(d.wait_log(
            r"cmd=CERT addr=bob@example\.test result=451 status=4\.3\.0 us=\d+"))
        self.assertIsNotNone(d.wait_log(r"addr=bob@example\.test repository ldap://127"))
        # exactly one log line for the request
        self.assertEqual(d.log_text().count("cmd=CERT addr=bob@example.test"), 1)

    def test_pipelined_in_order(self):
        d = self.daemon(ldap_spec(self.slapd.url, self.ca_dn))
        c = self.client(d)
        c.send(b"CERT bob@example.test\r\nCERS bare@example.test\r\n"
               b"CERT nobody@example.test\r\nNOOP\r\n")
        r1, r2, r3, r4 = (c.reply(timeout=30) for _ in range(4))
        self.assertEqual(r1.last, "250 2.0.0 OK")
        self.assertEqual(r1.ders(), [self.pki.der("bob")])
        self.assertEqual(r2.last, "250 2.0.0 OK")
        self.assertEqual(r2.ders(), self.chain)
        self.assertEqual(r3.last, "550 5.1.1 Certificate Not Found")
        self.assertEqual(r4.code, 250)
        self.assertEqual(c.pending(0.2), b"")
        for addr, res in (("bob", "250 status=2.0.0"), ("bare", "250 status=2.0.0"),
                          ("nobody", "550 status=5.1.1")):
            self.assertIsNotNone(d.wait_log(r"cmd=CER[TS] addr=%s@example\.test result=%s us="
                                            % (addr, res)), d.log_text()[-2000:])

    def test_url_mode(self):
        # cert_url: the job builds the URL line instead of the PEM lines
        d = self.daemon(ldap_spec(self.slapd.url),
                        cert_url="https://www.example.test/certs/%u.pem")
        c = self.client(d)
        c.send(b"CERT bob@example.test\r\nCERS bob@example.test\r\n"
               b"CERT nobody@example.test\r\n")
        for _ in range(2):
            r = c.reply(timeout=30)
            self.assertEqual(r.lines, ["https://www.example.test/certs/bob@example.test.pem",
                                       "2.0.0 OK"])
            self.assertEqual(r.code, 250)
        self.assertEqual(c.reply(timeout=30).last, "550 5.1.1 Certificate Not Found")

    def test_chain_lmdb_then_ldap(self):
        repo = "lmdb:%s" % sctest.mkdtemp("sc-remote-lmdb-")
        d = self.daemon([repo, ldap_spec(self.slapd.url)])
        r = d.admin("import", self.pki.path("alice"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        c = self.client(d)
        c.send(b"CERT alice@example.test\r\nCERT bob@example.test\r\n"
               b"CERT nobody@example.test\r\nNOOP\r\n")
        r1, r2, r3, r4 = (c.reply(timeout=30) for _ in range(4))
        self.assertEqual(r1.ders(), [self.pki.der("alice")])  # lmdb's, not alice-old
        self.assertEqual(r2.ders(), [self.pki.der("bob")])    # from the directory
        self.assertEqual(r3.last, "550 5.1.1 Certificate Not Found")
        self.assertEqual(r4.code, 250)

    def test_disconnect_during_lookup(self):
        h = self.hung()
        d = self.daemon(ldap_spec(h.url))
        a = Client(d.port, timeout=30)
        a.ehlo()
        a.send(b"CERT bob@example.test\r\nNOOP\r\n")
        self.assertTrue(d.log_has("-> LOOKUP", timeout=10))
        a.close()
        # the job completes after the client left; the daemon serves others
        self.assertIsNotNone(d.wait_log(r"cmd=CERT addr=bob@example\.test result=451",
                                        timeout=30), d.log_text()[-2000:])
        self.assertIsNotNone(d.wait_log(r"disconnect reason=", timeout=10))
        b = self.client(d)
        self.assertEqual(b.cmd("NOOP").code, 250)
        b.close()
        self.assertEqual(d.stop(), 0)  # ASan builds: exit status 0 = no report

    def cert_from_hung(self, **overrides):
        """A daemon (with @overrides) whose directory never answers, a client
        that sent CERT, and the first reply it got."""
        h = self.hung()
        d = self.daemon(ldap_spec(h.url), **overrides)
        a = self.client(d)
        a.send(b"CERT bob@example.test\r\n")
        return d, a, a.reply(timeout=30)

    def test_idle_timeout_waits_for_the_lookup(self):
        # the idle timeout (1 s) counts the client's silence, not the server's
        # own work: the hung directory's 451 (ldap_timeout 3 s) is the answer
        d, a, r = self.cert_from_hung(idle_timeout="1")
        self.assertEqual(r.last, "451 4.3.0 Certificate repository temporarily unavailable")
        self.assertEqual(a.cmd("NOOP").code, 250)
        # idle again: now the timeout applies
        r = a.reply(timeout=30)
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.4.2", r.text)
        self.assertEqual(d.stop(), 0)

    def test_timeout_during_lookup(self):
        # session_timeout (1 s) closes the session while the job waits for
        # the hung directory (3 s): the job is cancelled and freed by done
        d, a, r = self.cert_from_hung(session_timeout="1")
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.4.2", r.text)
        self.assertIn("Session timeout", r.text)
        self.assertTrue(a.is_closed(10))
        # the lookup ends later without a session: no answer is logged for it
        mark = len(d.log_text())
        time.sleep(4)
        self.assertNotIn("cmd=CERT addr=bob", d.log_text()[mark:])
        b = self.client(d)
        self.assertEqual(b.cmd("NOOP").code, 250)
        b.close()
        self.assertEqual(d.stop(), 0)

    def test_sigterm_during_lookup(self):
        h = self.hung()
        d = self.daemon(ldap_spec(h.url))
        a = self.client(d)
        a.send(b"CERT bob@example.test\r\nNOOP\r\n")
        self.assertTrue(d.log_has("-> LOOKUP", timeout=10))
        d.proc.send_signal(signal.SIGTERM)
        # the lookup finishes (451 within the 5 s drain), then 421 4.3.2; the
        # pipelined NOOP is not executed any more
        r = a.reply(timeout=30)
        self.assertEqual(r.last, "451 4.3.0 Certificate repository temporarily unavailable")
        r = a.reply(timeout=30)
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.3.2", r.text)
        self.assertEqual(d.proc.wait(30), 0, d.log_text()[-3000:])
        log = d.log_text()
        self.assertIn("all connections closed, exiting", log)
        self.assertIn("stopped", log)

    def test_sigterm_drain_ends_first(self):
        # ldap_timeout 8 s > the 5 s drain: the drain ends with the lookup in
        # flight; the session gets 421 4.3.2 and is closed, the job finishes without it (worker
        # threads are joined at exit) and the daemon exits cleanly
        h = self.hung()
        d = self.daemon(ldap_spec(h.url), ldap_timeout="8")
        a = self.client(d)
        a.send(b"CERT bob@example.test\r\n")
        self.assertTrue(d.log_has("-> LOOKUP", timeout=10))
        d.proc.send_signal(signal.SIGTERM)
        data = b""
        try:
            while True:
                a._fill(30)
        except sctest.Closed:
            data = a.buf
        except (ConnectionResetError, OSError):
            data = a.buf
        # never a certificate answer: the drain's end says why (conn_goodbye)
        self.assertNotIn(b"250", data)
        self.assertTrue(data.startswith(b"421 4.3.2 "), data)
        self.assertEqual(d.proc.wait(30), 0, d.log_text()[-3000:])
        log = d.log_text()
        self.assertIn("connections still open after", log)
        self.assertIn("stopped", log)
        self.assertNotIn("cmd=CERT addr=bob", log)

    def test_concurrent_clients(self):
        # worker_threads 9: eight lookups in flight on the pool's 8 connections
        d = self.daemon(ldap_spec(self.slapd.url), worker_threads="9")
        want = {"bob@example.test": [self.pki.der("bob")],
                "alice@example.test": [self.pki.der("alice-old")],
                "nobody@example.test": []}
        names = sorted(want)
        results = [None] * 40
        start = threading.Barrier(40)

        def run(i):
            try:
                with Client(d.port, timeout=60) as c:
                    c.ehlo()
                    start.wait(30)
                    addr = names[i % len(names)]
                    r = c.cmd("CERT " + addr, timeout=60)
                    results[i] = (addr, r.code, r.ders())
            except Exception as e:  # reported below
                results[i] = ("error", repr(e), None)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for i, res in enumerate(results):
            self.assertIsNotNone(res, "client %d did not finish" % i)
            addr, code, ders = res
            self.assertIn(addr, want, res)
            self.assertEqual(code, 250 if want[addr] else 550, res)
            self.assertEqual(ders, want[addr], "client %d (%s)" % (i, addr))

    def test_harvest_counting(self):
        d = self.daemon(ldap_spec(self.slapd.url), limits_exempt_loopback="no",
                        harvest_threshold="1", harvest_limit="3", max_errors="100")
        c = self.client(d)
        self.assertEqual(c.cmd("CERT nobody1@example.test").last,
                         "550 5.1.1 Certificate Not Found")
        # past the threshold: delayed (1 s), found or not; found is not counted
        r = c.cmd("CERT bob@example.test", timeout=30)
        self.assertEqual(r.ders(), [self.pki.der("bob")])
        self.assertEqual(c.cmd("CERT nobody2@example.test", timeout=30).last,
                         "550 5.1.1 Certificate Not Found")
        # the third not-found answer, then 421 4.7.0 and the end
        r = c.cmd("CERT nobody3@example.test", timeout=30)
        self.assertEqual(r.last, "550 5.1.1 Certificate Not Found")
        r = c.reply(timeout=30)
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.7.0", r.text)
        self.assertTrue(c.is_closed(10))
        self.assertIsNotNone(d.wait_log(r"harvest limit: session \(not-found=3\)"))
        self.assertIsNotNone(d.wait_log(
            r"cmd=CERT addr=bob@example\.test result=250 status=2\.0\.0 delayed=1s"))
        self.assertIsNotNone(d.wait_log(
            r"cmd=CERT addr=nobody1@example\.test result=550 status=5\.1\.1 us="))


if __name__ == "__main__":
    unittest.main()
