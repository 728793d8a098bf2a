"""Many sessions at once against one daemon. 1000 plain sessions: every
connection gets the banner while all are open, then each does EHLO + CERT and must
receive alice's certificate; one thread drives all sockets with selectors (the
machine has 2 cores). 200 sessions inside TLS at the same time. max_connections."""
import concurrent.futures
import resource
import selectors
import socket
import threading
import time
import unittest

import sctest
from sctest import Daemon, pki

N = 1000
DEADLINE = 90  # seconds for the whole exchange


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        raise AssertionError("RLIMIT_NOFILE hard limit %d < %d needed" % (hard, want))
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Conn:
    __slots__ = ("sock", "buf", "state", "reply", "out", "error", "ok")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.state = "banner"
        self.reply = []
        self.out = b""
        self.error = None
        self.ok = False


def take_reply(conn):
    """Pop one complete reply (list of raw lines) from conn.buf, or None."""
    lines = []
    pos = 0
    while True:
        i = conn.buf.find(b"\n", pos)
        if i < 0:
            return None
        ln = conn.buf[pos:i + 1]
        lines.append(ln)
        pos = i + 1
        if len(ln) < 4 or ln[3:4] != b"-":
            conn.buf = conn.buf[pos:]
            return sctest.Reply(lines)


class ConcurrencyTest(unittest.TestCase):

    def test_1000_concurrent_sessions(self):
        # the daemon inherits our limit: 1000 sessions + listeners + repository
        raise_nofile(2 * N + 256)
        alice = pki().der("alice")
        with Daemon(certs=("alice",)) as d:
            sel = selectors.DefaultSelector()
            conns = []
            for i in range(N):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                err = s.connect_ex(("127.0.0.1", d.port))
                self.assertIn(err, (0, 115), "connect %d: errno %d" % (i, err))  # EINPROGRESS
                c = Conn(s)
                conns.append(c)
                sel.register(s, selectors.EVENT_READ, c)
            start = time.monotonic()
            banners = 0
            phase2 = False
            done = 0

            def send(c, data):
                c.out += data
                try:
                    n = c.sock.send(c.out)
                    c.out = c.out[n:]
                except BlockingIOError:
                    pass
                except OSError as e:
                    c.error = "send: %s" % e

            try:
                while done < N and time.monotonic() - start < DEADLINE:
                    for key, _ in sel.select(timeout=1.0):
                        c = key.data
                        try:
                            data = c.sock.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError as e:
                            c.error = "recv: %s" % e
                            data = b""
                        if not data:
                            if c.state != "quit" and not c.error:
                                c.error = "closed in state %s; buf %r" % (c.state, c.buf)
                            sel.unregister(c.sock)
                            c.sock.close()
                            done += 1
                            continue
                        c.buf += data
                        while True:
                            r = take_reply(c)
                            if r is None:
                                break
                            if c.state == "banner":
                                if r.code != 220:
                                    c.error = "banner %r" % r
                                c.state = "wait"
                                banners += 1
                                if banners == N:
                                    # every session is open now: start the exchanges
                                    phase2 = True
                                    for idx, x in enumerate(conns):
                                        if x.state == "wait":
                                            x.state = "ehlo"
                                            send(x, b"EHLO c%d.test\r\n" % idx)
                            elif c.state == "ehlo":
                                if r.code != 250:
                                    c.error = "EHLO %r" % r
                                c.state = "cert"
                                send(c, b"CERT alice@example.test\r\n")
                            elif c.state == "cert":
                                ders = r.ders() if r.code == 250 else []
                                if not ders or ders[0] != alice:
                                    c.error = "CERT %r" % r.raw[:200]
                                else:
                                    c.ok = True
                                c.state = "quit"
                                send(c, b"QUIT\r\n")
                            elif c.state == "quit":
                                if r.code != 221:
                                    c.error = "QUIT %r" % r
                            else:
                                c.error = "unexpected reply in %s: %r" % (c.state, r)
                    # flush pending output
                    for c in conns:
                        if c.out and c.error is None:
                            send(c, b"")
            finally:
                elapsed = time.monotonic() - start
                for c in conns:
                    try:
                        c.sock.close()
                    except OSError:
                        pass
                sel.close()
            errors = [c.error for c in conns if c.error]
            self.assertEqual(banners, N, "only %d of %d sessions got the banner (%.1f s)"
                             % (banners, N, elapsed))
            self.assertTrue(phase2)
            self.assertEqual(errors, [], "%d sessions failed, first: %s"
                             % (len(errors), errors[:3]))
            self.assertEqual(sum(c.ok for c in conns), N)
            self.assertTrue(d.alive())
            # the daemon still serves a fresh client afterwards
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").ders()[0], alice)


class TlsConcurrencyTest(unittest.TestCase):

    def test_200_simultaneous_tls_sessions(self):
        # 200 threads each complete STARTTLS, wait until all 200 are inside TLS at
        # the same time, then each fetches a certificate
        n = 200
        raise_nofile(2 * n + 256)
        alice, bob = pki().der("alice"), pki().der("bob")
        # deadlines against a hang only: 200 handshakes under valgrind take minutes
        limit = 600 if sctest.VALGRIND else 60
        barrier = threading.Barrier(n, timeout=limit)
        ctx = sctest.tls_context()

        def one(i):
            with sctest.Client(d.port, timeout=limit) as c:
                c.ehlo("t%d.test" % i)
                c.starttls(ctx)
                c.ehlo("t%d.test" % i)
                barrier.wait()
                who = "alice" if i % 2 else "bob"
                r = c.cmd("CERS %s@example.test" % who)
                ders = r.ders()
                if not ders or ders[0] != (alice if i % 2 else bob):
                    return "session %d: %r" % (i, r.raw[:200])
                if c.cmd("QUIT").code != 221:
                    return "session %d: QUIT" % i
                return None

        with Daemon(certs=("alice", "bob")) as d:
            with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
                results = list(pool.map(one, range(n)))
            errors = [r for r in results if r]
            self.assertEqual(errors, [], "%d TLS sessions failed" % len(errors))


class MaxConnectionsTest(unittest.TestCase):

    def test_too_many_connections_421(self):
        with Daemon(overrides={"max_connections": 3}) as d:
            held = [d.client() for _ in range(3)]
            try:
                for c in held:
                    self.assertEqual(c.banner.code, 220)
                extra = d.client()
                with extra:
                    self.assertEqual(extra.banner.last,
                                     "421 4.7.0 %s Too many connections, try later"
                                     % sctest.HOSTNAME)
                    self.assertTrue(extra.is_closed(5))
                # the sessions already open are unaffected
                held[0].ehlo()
                self.assertEqual(held[0].cmd("CERT alice@example.test").code, 250)
                # a freed slot is usable again
                freed = held.pop()
                freed.cmd("QUIT")
                freed.close()
                deadline = time.monotonic() + 5
                while True:
                    with d.client() as c:
                        if c.banner.code == 220 or time.monotonic() > deadline:
                            self.assertEqual(c.banner.code, 220, c.banner)
                            break
                    time.sleep(0.1)
            finally:
                for c in held:
                    c.close()


if __name__ == "__main__":
    unittest.main()
