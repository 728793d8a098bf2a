"""Hostile and sloppy input: line length limits (RFC 5321 4.5.3.1.4), NUL bytes,
binary junk, bare LF / bare CR, the error limit, the idle timeout (RFC 5321
4.5.3.2.7), pipelining (RFC 2920) and a client that never reads its replies."""
import os
import signal
import socket
import subprocess
import time
import unittest

import sctest
from sctest import Daemon, pki


class InputTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()
        cls.d = Daemon(certs=("alice", "bob", "grace"), overrides={"max_errors": 1000})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def session(self):
        c = self.d.client()
        self.addCleanup(c.close)
        c.ehlo()
        return c

    def assertAlice(self, c):
        r = c.cmd("CERT alice@example.test")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(r.ders()[0], self.pki.der("alice"))

    def test_line_of_513_octets_rejected_then_next_works(self):
        c = self.session()
        line = b"NOOP " + b"x" * 506 + b"\r\n"
        self.assertEqual(len(line), 513)
        c.send(line)
        r = c.reply()
        self.assertEqual(r.last, "500 5.5.2 Line too long")
        self.assertAlice(c)

    def test_line_of_512_octets_accepted(self):
        c = self.session()
        line = b"NOOP " + b"x" * 505 + b"\r\n"
        self.assertEqual(len(line), 512)
        c.send(line)
        self.assertEqual(c.reply().last, "250 2.0.0 OK")
        self.assertAlice(c)

    def test_very_long_line_one_reply_rest_discarded(self):
        c = self.session()
        # 100 kB without a line end, then the end and a command in the same stream
        c.send(b"CERT " + b"A" * 100000 + b"\r\nNOOP\r\n")
        r = c.reply()
        self.assertEqual(r.last, "500 5.5.2 Line too long")
        self.assertEqual(c.reply().last, "250 2.0.0 OK")
        self.assertEqual(c.pending(0.3), b"", "more than one reply for one long line")
        self.assertAlice(c)

    def test_long_line_that_embeds_a_command_is_not_executed(self):
        c = self.session()
        c.send(b"NOOP " + b"y" * 600 + b" CERT alice@example.test\r\nNOOP\r\n")
        self.assertEqual(c.reply().last, "500 5.5.2 Line too long")
        r = c.reply()
        self.assertEqual(r.last, "250 2.0.0 OK")

    def test_nul_bytes(self):
        c = self.session()
        for line in (b"CERT alice@exa\x00mple.test\r\n", b"NO\x00OP\r\n", b"\x00\r\n",
                     b"CERT alice@example.test\x00\r\n"):
            c.send(line)
            r = c.reply()
            self.assertEqual(r.code, 500, (line, r))
            self.assertTrue(r.last.startswith("500 5.5.2"), (line, r))
            self.assertNotIn(b"CERTIFICATE", r.raw)
        self.assertAlice(c)

    def test_binary_junk(self):
        c = self.session()
        junk = bytes(range(256)).replace(b"\n", b"").replace(b"\r", b"") * 2
        c.send(junk + b"\r\n")
        r = c.reply()
        self.assertGreaterEqual(r.code, 500, r)
        self.assertLess(r.code, 600, r)
        c.send(b"\xff\xfe\xfd\xc0\x80 CERT\r\n")
        r = c.reply()
        self.assertEqual(r.code // 100, 5, r)
        self.assertAlice(c)

    def test_junk_before_ehlo_and_tls_record(self):
        with self.d.client() as c:
            # a TLS ClientHello-looking record on the plain port
            hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(14, 78))
            c.send(hello + b"\r\n")
            r = c.reply()
            self.assertEqual(r.code // 100, 5, r)
            c.ehlo()
            self.assertAlice(c)

    def test_bare_lf_line_end(self):
        with self.d.client() as c:
            c.send(b"EHLO lf.test\n")
            self.assertEqual(c.reply().code, 250)
            c.send(b"CERT alice@example.test\n")
            r = c.reply()
            self.assertEqual(r.code, 250, r)
            self.assertEqual(r.ders()[0], self.pki.der("alice"))

    def test_bare_cr_stays_in_line(self):
        c = self.session()
        c.send(b"CERT alice@example.test\rNOOP\r\n")
        r = c.reply()
        self.assertEqual(r.code // 100, 5, r)
        self.assertNotIn(b"CERTIFICATE", r.raw)
        self.assertEqual(c.pending(0.3), b"", "bare CR split the line into two commands")
        self.assertAlice(c)

    def test_command_split_across_segments(self):
        c = self.session()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"CERT alice@example.test\r\n":
            c.send(bytes([b]))
            time.sleep(0.002)
        r = c.reply()
        self.assertEqual(r.ders()[0], self.pki.der("alice"))

    def test_half_close_still_answered(self):
        # a client that sends its commands and shuts down its side still gets
        # every reply before the server closes
        with self.d.client() as c:
            c.send(b"EHLO h.test\r\nCERT alice@example.test\r\nCERT bob@example.test\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.reply().ders()[0], self.pki.der("alice"))
            self.assertEqual(c.reply().ders()[0], self.pki.der("bob"))
            self.assertTrue(c.is_closed(5))

    def test_nothing_after_quit_is_executed(self):
        with self.d.client() as c:
            c.send(b"EHLO q.test\r\nQUIT\r\nCERT alice@example.test\r\n")
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.reply().code, 221)
            rest = c.pending(0.5)
            self.assertNotIn(b"CERTIFICATE", rest)
            self.assertEqual(rest, b"")

    def test_pipelining_50_certs_in_order(self):
        c = self.session()
        want = []
        batch = b""
        for i in range(50):
            name = ("alice", "bob", None, "grace")[i % 4]
            addr = "%s@%s" % (name or "nobody%d" % i, "gw.test" if name == "grace"
                              else "example.test")
            batch += ("CERT %s\r\n" % addr).encode()
            want.append(name)
        c.send(batch)
        for i, name in enumerate(want):
            r = c.reply()
            if name is None:
                self.assertEqual(r.last, "550 5.1.1 Certificate Not Found", i)
            else:
                self.assertEqual(r.code, 250, (i, r))
                self.assertEqual(r.ders()[0], self.pki.der(name), "reply %d out of order" % i)
        self.assertEqual(c.pending(0.3), b"")

    def test_pipelined_group_with_quit(self):
        with self.d.client() as c:
            c.send(b"EHLO p.test\r\nCERT bob@example.test\r\nQUIT\r\n")
            # EHLO may end a group (RFC 2920 3.1) but a server must still answer all
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.reply().ders()[0], self.pki.der("bob"))
            self.assertEqual(c.reply().code, 221)
            self.assertTrue(c.is_closed())

    def test_many_connections_opened_and_dropped(self):
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
            s.close()
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
            s.sendall(b"EHLO x\r\nCERT alice@example.test\r\n")
            s.close()
        with self.d.client() as c:
            c.ehlo()
            self.assertAlice(c)
        self.assertTrue(self.d.alive())


class ErrorLimitTest(unittest.TestCase):

    def test_error_counter_ends_session_with_421(self):
        with Daemon(overrides={"max_errors": 3}) as d:
            with d.client() as c:
                c.ehlo()
                got = []
                closed = False
                for i in range(5):
                    try:
                        got.append(c.cmd("FROB %d" % i))
                        if got[-1].code != 421:
                            # a 421 may follow the reply at once: read it before
                            # sending more, so a reset cannot discard it
                            try:
                                got.append(c.reply(timeout=0.3))
                            except (TimeoutError, socket.timeout):
                                pass
                    except sctest.Closed:
                        closed = True
                        break
                    if got[-1].code == 421:
                        break
                codes = [r.code for r in got]
                self.assertFalse(closed and 421 not in codes, "closed without 421: %r" % got)
                self.assertIn(421, codes, got)
                # the limit is 3: the 421 comes with the 3rd or right after it
                self.assertIn(codes.index(421), (2, 3), codes)
                self.assertTrue(all(x == 500 for x in codes[:codes.index(421)]), codes)
                self.assertEqual(got[-1].last,
                                 "421 4.7.0 %s Too many errors, closing connection"
                                 % sctest.HOSTNAME)
                self.assertTrue(c.is_closed(), "still open after 421")
            # other sessions are unaffected
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)

    def test_bad_syntax_counts_as_error(self):
        with Daemon(overrides={"max_errors": 2}) as d:
            with d.client() as c:
                c.ehlo()
                codes = []
                for _ in range(3):
                    try:
                        codes.append(c.cmd("CERT a@").code)
                        if codes[-1] != 421:
                            try:
                                codes.append(c.reply(timeout=0.3).code)
                            except (TimeoutError, socket.timeout):
                                pass
                    except sctest.Closed:
                        break
                    if codes[-1] == 421:
                        break
                self.assertIn(421, codes)
                self.assertTrue(c.is_closed())


class IdleTimeoutTest(unittest.TestCase):

    def test_idle_timeout_421_then_close(self):
        with Daemon(overrides={"idle_timeout": 2}) as d:
            with d.client(timeout=10) as c:
                c.ehlo()
                t0 = time.monotonic()
                r = c.reply(timeout=8)
                waited = time.monotonic() - t0
                self.assertEqual(r.last, "421 4.4.2 %s Idle timeout, closing connection"
                                 % sctest.HOSTNAME)
                self.assertGreaterEqual(waited, 1.5)
                self.assertLess(waited, 6)
                self.assertTrue(c.is_closed(3))
            # an active session is not cut: commands every second for 4 s
            with d.client(timeout=10) as c:
                c.ehlo()
                for _ in range(4):
                    time.sleep(1)
                    self.assertEqual(c.cmd("NOOP").last, "250 2.0.0 OK")

    def test_silent_client_timed_out(self):
        # a client that never says anything is timed out too
        with Daemon(overrides={"idle_timeout": 1}) as d:
            with d.client(timeout=10) as c:
                r = c.reply(timeout=6)
                self.assertTrue(r.last.startswith("421 4.4.2"), r)
                self.assertTrue(c.is_closed(3))

    def test_partial_line_times_out(self):
        # an unfinished command line does not keep a session alive
        with Daemon(overrides={"idle_timeout": 2}) as d:
            with d.client(timeout=10) as c:
                c.ehlo()
                c.send(b"CERT ali")
                r = c.reply(timeout=8)
                self.assertTrue(r.last.startswith("421 4.4.2"), r)
                self.assertTrue(c.is_closed(3))


    def test_stalled_tls_handshake_times_out(self):
        # STARTTLS accepted, then no ClientHello: the handshake is bounded too
        with Daemon(overrides={"idle_timeout": 2}) as d:
            with d.client(timeout=10) as c:
                c.ehlo()
                self.assertEqual(c.cmd("STARTTLS").code, 220)
                t0 = time.monotonic()
                self.assertTrue(c.is_closed(10), "stalled handshake kept open")
                self.assertLess(time.monotonic() - t0, 8)
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)


class ResourceTest(unittest.TestCase):

    def test_no_fd_leak(self):
        with Daemon() as d:
            fds = lambda: len(os.listdir("/proc/%d/fd" % d.pid))
            with d.client() as c:
                c.ehlo()
            time.sleep(0.3)
            base = fds()
            for i in range(100):
                with d.client() as c:
                    if i % 3 == 0:
                        c.ehlo()
                        c.cmd("CERT alice@example.test")
                    if i % 3 == 1:
                        c.ehlo()
                        c.starttls(sctest.tls_context())
                        c.ehlo()
                        c.cmd("CERT bob@example.test")
                    # i % 3 == 2: drop right after the banner
            deadline = time.monotonic() + 5
            while fds() > base and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertLessEqual(fds(), base, "file descriptors leak per connection")

    def test_sigterm_with_stuck_writer_still_exits(self):
        # a client that never reads, with replies queued: SIGTERM must still end
        # the daemon in bounded time (idle_timeout bounds the wait)
        with Daemon(overrides={"idle_timeout": 3}) as d:
            hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.settimeout(5)
            hog.connect(("127.0.0.1", d.port))
            self.addCleanup(hog.close)
            hog.sendall(b"EHLO hog.test\r\n")
            hog.setblocking(False)
            try:
                for _ in range(200):
                    hog.send(b"CERS alice@example.test\r\n" * 40)
            except BlockingIOError:
                pass
            time.sleep(0.5)
            d.proc.send_signal(signal.SIGTERM)
            try:
                rc = d.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.fail("daemon still running 20 s after SIGTERM with a stuck client")
            self.assertEqual(rc, 0)


class SlowReaderTest(unittest.TestCase):
    """A client pipelining CERTs without ever reading: the daemon must stop reading
    it (back-pressure) instead of buffering every reply, and serve others."""

    def test_client_that_never_reads(self):
        with Daemon(overrides={"max_errors": 10000}) as d:
            rss0 = d.rss_kb()
            hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.settimeout(5)
            hog.connect(("127.0.0.1", d.port))
            hog.sendall(b"EHLO hog.test\r\n")
            hog.setblocking(False)
            # each 25-byte CERS asks for ~5 kB of reply: 1 MB of requests is ~200 MB
            # of replies if the daemon buffers them all; stop early if RSS climbs.
            chunk = b"CERS alice@example.test\r\n" * 400
            sent, limit = 0, 1024 * 1024
            stalled_since = None
            deadline = time.monotonic() + 20
            rss_peak = rss0
            while sent < limit and time.monotonic() < deadline:
                try:
                    sent += hog.send(chunk)
                    stalled_since = None
                except BlockingIOError:
                    if stalled_since is None:
                        stalled_since = time.monotonic()
                    elif time.monotonic() - stalled_since > 1.5:
                        break  # back-pressure: the daemon stopped reading us
                    time.sleep(0.05)
                rss_peak = max(rss_peak, d.rss_kb())
                if rss_peak - rss0 > 400 * 1024:
                    break
            time.sleep(0.5)
            rss1 = max(rss_peak, d.rss_kb())
            try:
                self.assertTrue(d.alive(), "daemon died under a non-reading client")
                # ASan keeps up to 256 MB of freed memory in quarantine
                bound = 320 if sctest.sanitized(d.smtpcertd) else 64
                self.assertLess(rss1 - rss0, bound * 1024,
                                "RSS grew from %d kB to %d kB after %d bytes of requests"
                                % (rss0, rss1, sent))
                with d.client(timeout=10) as c:
                    c.ehlo()
                    r = c.cmd("CERT bob@example.test")
                    self.assertEqual(r.code, 250, r)
                    self.assertEqual(r.ders()[0], pki().der("bob"))
            finally:
                hog.close()
            with d.client(timeout=10) as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)


if __name__ == "__main__":
    unittest.main()
