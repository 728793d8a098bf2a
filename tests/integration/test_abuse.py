"""Abuse resistance (issue 7): the per-IP connection limit and connection rate
(421 4.7.0 for one source address while another still connects), command_timeout
against a client that drips a command line byte by byte, session_timeout against
one that keeps its session alive with NOOPs, harvest protection (escalating delays
on every CERT answer past harvest_threshold, 421 4.7.0 at harvest_limit) and the
per-network not-found budget that survives reconnecting (harvest_ip_limit).

Loopback clients are exempt from these limits by default (limits_exempt_loopback),
so every daemon here turns the exemption off; 127.0.0.2 is a second source address
on the loopback interface. Timing assertions are lower bounds only."""
import socket
import time
import unittest

import sctest
from sctest import Client, Closed, Daemon

UNKNOWN = "nobody%d@example.test"


def client_from(d, src, timeout=10.0):
    """A Client whose connection comes from the local address @src."""
    c = Client.__new__(Client)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.settimeout(timeout)
    c.sock.bind((src, 0))
    c.sock.connect(("127.0.0.1", d.port))
    c.timeout = timeout
    c.buf = b""
    c.banner = c.reply()
    return c


def daemon(**overrides):
    base = {"limits_exempt_loopback": "no"}
    base.update({k: str(v) for k, v in overrides.items()})
    return Daemon(overrides=base)


class PerIpLimitTest(unittest.TestCase):

    def test_connections_per_ip(self):
        with daemon(max_connections_per_ip=2, max_connection_rate=0) as d:
            # the start-up probe (sctest: banner, QUIT) counts until the daemon
            # has seen it close: under valgrind that can be after our connects
            self.assertTrue(d.log_has("disconnect reason=quit", timeout=30))
            held = [client_from(d, "127.0.0.1") for _ in range(2)]
            try:
                for c in held:
                    self.assertEqual(c.banner.code, 220)
                with client_from(d, "127.0.0.1") as extra:
                    self.assertTrue(extra.banner.last.startswith("421 4.7.0 "),
                                    extra.banner)
                    self.assertTrue(extra.is_closed(5))
                # another source address is not affected
                with client_from(d, "127.0.0.2") as other:
                    self.assertEqual(other.banner.code, 220)
                    other.ehlo()
                    r = other.cmd("CERT alice@example.test")
                    self.assertEqual(r.code, 250)
                    self.assertEqual(len(r.certs()), 1)
                # a connection from the first address ends: one more may come
                held.pop().cmd("QUIT")
                deadline = time.monotonic() + 5
                while True:
                    with client_from(d, "127.0.0.1") as c:
                        if c.banner.code == 220 or time.monotonic() > deadline:
                            self.assertEqual(c.banner.code, 220, c.banner)
                            break
                    time.sleep(0.1)
                self.assertTrue(d.log_has("max_connections_per_ip"), d.log_text())
            finally:
                for c in held:
                    c.close()

    def test_connection_rate(self):
        # 127.0.0.3: the harness's readiness probes come from 127.0.0.1
        with daemon(max_connections_per_ip=0, max_connection_rate=3) as d:
            for _ in range(3):
                with client_from(d, "127.0.0.3") as c:
                    self.assertEqual(c.banner.code, 220)
                    c.cmd("QUIT")
            with client_from(d, "127.0.0.3") as c:
                self.assertTrue(c.banner.last.startswith("421 4.7.0 "), c.banner)
                self.assertTrue(c.is_closed(5))
            with client_from(d, "127.0.0.2") as c:
                self.assertEqual(c.banner.code, 220)
            self.assertTrue(d.log_has("max_connection_rate"), d.log_text())

    def test_loopback_exempt_by_default(self):
        with Daemon(overrides={"max_connections_per_ip": "1"}) as d:
            with d.client() as a, d.client() as b:
                self.assertEqual(a.banner.code, 220)
                self.assertEqual(b.banner.code, 220)


class SlowClientTest(unittest.TestCase):

    def test_command_timeout_cuts_a_drip(self):
        with daemon(command_timeout=2, idle_timeout=60) as d:
            drip = client_from(d, "127.0.0.1")
            with drip:
                drip.ehlo()
                t0 = time.monotonic()
                closed = False
                for ch in b"CERT alice@example.test" * 4:
                    try:
                        drip.send(bytes([ch]))
                    except OSError:
                        closed = True
                        break
                    if b"421" in drip.pending(0.4):
                        closed = True
                        break
                    # a normal client is served meanwhile
                    if ch == ord("R"):
                        with client_from(d, "127.0.0.2") as c:
                            c.ehlo()
                            self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
                self.assertTrue(closed, "the dripping client was never cut")
                self.assertGreaterEqual(time.monotonic() - t0, 2.0)
                self.assertTrue(drip.is_closed(5))
            self.assertTrue(d.log_has("Command timeout"), d.log_text())

    def test_session_timeout(self):
        with daemon(session_timeout=3, idle_timeout=60) as d:
            with client_from(d, "127.0.0.1") as c:
                t0 = time.monotonic()
                c.ehlo()
                last = None
                try:
                    for _ in range(20):
                        last = c.cmd("NOOP")
                        if last.code != 250:
                            break
                        time.sleep(0.5)
                except Closed:
                    pass
                self.assertIsNotNone(last)
                self.assertTrue(last.last.startswith("421 4.4.2 ")
                                and "Session timeout" in last.last, last)
                self.assertGreaterEqual(time.monotonic() - t0, 3.0)
                self.assertTrue(c.is_closed(5))


class HarvestTest(unittest.TestCase):

    def timed(self, c, line):
        t0 = time.monotonic()
        r = c.cmd(line, timeout=30)
        return r, time.monotonic() - t0

    def test_session_delay_then_421(self):
        with daemon(harvest_threshold=2, harvest_limit=5, harvest_ip_limit=0,
                    max_errors=100) as d:
            with client_from(d, "127.0.0.1") as c:
                c.ehlo()
                for i in range(2):
                    r, _ = self.timed(c, "CERT " + UNKNOWN % i)
                    self.assertEqual(r.last, "550 5.1.1 Certificate Not Found")
                # past the threshold: 1 s, then 2 s
                r, dt = self.timed(c, "CERT " + UNKNOWN % 2)
                self.assertEqual(r.last, "550 5.1.1 Certificate Not Found")
                self.assertGreaterEqual(dt, 1.0)
                r, dt = self.timed(c, "CERS " + UNKNOWN % 3)
                self.assertEqual(r.last, "550 5.1.1 Certificate Not Found")
                self.assertGreaterEqual(dt, 2.0)
                # a found address waits as long: timing tells nothing
                c.send(b"CERT alice@example.test\r\n")
                t0 = time.monotonic()
                # the event loop is not blocked: another client is answered
                # while this one waits
                with client_from(d, "127.0.0.2") as o:
                    o.ehlo()
                    self.assertEqual(o.cmd("CERT alice@example.test").code, 250)
                self.assertEqual(c.pending(0.05), b"")
                r = c.reply(timeout=30)
                self.assertGreaterEqual(time.monotonic() - t0, 4.0)
                self.assertEqual(r.code, 250)
                self.assertEqual(len(r.certs()), 1)
                # the fifth not-found answer ends the session
                r, dt = self.timed(c, "CERT " + UNKNOWN % 4)
                self.assertEqual(r.last, "550 5.1.1 Certificate Not Found")
                self.assertGreaterEqual(dt, 4.0)
                bye = c.reply(timeout=10)
                self.assertTrue(bye.last.startswith("421 4.7.0 "), bye)
                self.assertTrue(c.is_closed(5))
            self.assertTrue(d.log_has("harvest delay"), d.log_text())
            self.assertTrue(d.log_has("harvest limit"), d.log_text())

    def test_session_timeout_during_delay(self):
        # the delayed answer never comes after the 421: the session is over
        with daemon(harvest_threshold=1, harvest_limit=0, harvest_ip_limit=0,
                    session_timeout=2, max_errors=100) as d:
            with client_from(d, "127.0.0.1") as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT " + UNKNOWN % 0).code, 550)
                got = []
                try:
                    for i in range(1, 4):
                        r = c.cmd("CERT " + UNKNOWN % i, timeout=30)
                        got.append(r.last)
                        if r.code == 421:
                            break
                except Closed:
                    pass
                self.assertTrue(got and got[-1].startswith("421 4.4.2 "), got)
                self.assertTrue(c.is_closed(10))
                self.assertNotIn(b"550", c.buf)

    def test_ip_budget_survives_reconnect(self):
        with daemon(harvest_threshold=0, harvest_limit=0, harvest_ip_limit=3,
                    max_errors=100) as d:
            with client_from(d, "127.0.0.1") as c:
                c.ehlo()
                for i in range(2):
                    self.assertEqual(c.cmd("CERT " + UNKNOWN % i).code, 550)
                c.cmd("QUIT")
            with client_from(d, "127.0.0.1") as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT " + UNKNOWN % 2).code, 550)
                # the budget is spent: even a known address ends the session
                r = c.cmd("CERT alice@example.test")
                self.assertTrue(r.last.startswith("421 4.7.0 "), r)
                self.assertTrue(c.is_closed(5))
            with client_from(d, "127.0.0.1") as c:
                c.ehlo()
                self.assertTrue(c.cmd("CERT " + UNKNOWN % 3).last.startswith("421 4.7.0 "))
            # another network has its own budget
            with client_from(d, "127.0.0.2") as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT " + UNKNOWN % 4).last,
                                 "550 5.1.1 Certificate Not Found")
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)


if __name__ == "__main__":
    unittest.main()
