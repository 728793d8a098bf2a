"""Proxy mode (`delivery = proxy:HOST:PORT`) in front of a real, private Postfix
(tests/lib/postfix.py), and in front of scripted backends that hang or die.

- CERT is still answered by smtpcertd; the EHLO reply merges Postfix's SIZE and
  friends with our CERT/CERS/STARTTLS, never Postfix's XCLIENT/AUTH.
- A message sent through the proxy (smtplib, and swaks) lands in Postfix's
  Maildir, and Postfix's Received field names the original client's HELO and
  address (the client connects from 127.0.0.2; smtpcertd reaches Postfix from
  127.0.0.1): XCLIENT, and the PROXY v2 header against a listener with
  smtpd_upstream_proxy_protocol = haproxy.
- Pipelined MAIL/RCPT/RCPT/DATA get their replies in order; Postfix's 550 for an
  unknown user comes back as it is.
- A bare LF before ".<CR><LF>" does not end the message (SMTP smuggling): the
  smuggled MAIL FROM stays message text, one message arrives.
- 20 MB stream through while the daemon's RSS stays small.
- Backend down: EHLO and CERT still work, MAIL gets 421 4.3.0 and the session
  closes; a backend that does not answer gets 451 4.4.2 after proxy_timeout and
  the session goes on; a backend that dies during DATA gives 451, never 250.
"""
import os
import shutil
import socket
import smtplib
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import postfix  # noqa: E402
import sctest  # noqa: E402

CLIENT_IP = "127.0.0.2"


def client_from(port, src=CLIENT_IP, timeout=30.0):
    """sctest.Client connected from another loopback address."""
    c = sctest.Client.__new__(sctest.Client)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                      source_address=(src, 0))
    c.timeout = timeout
    c.buf = b""
    c.banner = c.reply()
    return c


def received(msg):
    """The first Received field of a stored message, unfolded."""
    head = msg.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    fields, cur = [], None
    for ln in head.split("\n"):
        if ln[:1] in (" ", "\t") and cur is not None:
            cur += " " + ln.strip()
            continue
        if cur is not None:
            fields.append(cur)
        cur = ln
    fields.append(cur)
    for f in fields:
        if f.lower().startswith("received:"):
            return f
    raise AssertionError("no Received field in %r" % head)


class FakeBackend:
    """A scripted backend MTA on a free loopback port. mode: 'hang-mail' never
    answers MAIL; 'die-in-data' closes the connection after some message data;
    'close-after-data' says 421 and closes after each message."""

    # malformed replies to MAIL (proxy_conn.c must refuse each)
    BAD_REPLIES = {
        "not-digits": b"25x oops\r\n",
        "mixed-codes": b"250-first\r\n550 second\r\n",
        "long-line": b"250-" + b"x" * 5000 + b"\r\n250 ok\r\n",
        "control-char": b"250 ok\x00\r\n",
        "too-many-lines": b"250-x\r\n" * 100 + b"250 ok\r\n",
        "one-yz": b"150 what\r\n",
    }
    # replies to VRFY in mode 'replies': passed on as they are
    VRFY_421 = b"421 4.3.2 fake shutting down\r\n"

    def __init__(self, mode):
        self.mode = mode
        self.messages = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        f = c.makefile("rb")
        try:
            c.sendall(b"220 fake ESMTP\r\n")
            while True:
                ln = f.readline()
                if not ln:
                    return
                verb = ln[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    c.sendall(b"250-fake\r\n250-SIZE 1000000\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
                elif verb == b"RCPT" and self.mode == "hang-rcpt":
                    time.sleep(30)
                    return
                elif verb == b"MAIL" and self.mode == "hang-mail":
                    time.sleep(30)
                    return
                elif verb == b"MAIL" and self.mode in self.BAD_REPLIES:
                    c.sendall(self.BAD_REPLIES[self.mode])
                elif verb == b"DATA":
                    c.sendall(b"354 go\r\n")
                    if self.mode == "die-in-data":
                        f.read(10000)
                        c.close()
                        return
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self.messages += 1
                    c.sendall(b"250 2.0.0 stored\r\n")
                    if self.mode == "close-after-data":
                        c.sendall(b"421 4.4.2 fake closing\r\n")
                        c.close()
                        return
                elif verb == b"VRFY" and self.mode == "vrfy-421":
                    c.sendall(self.VRFY_421)
                    return
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 2.0.0 ok\r\n")
        except OSError:
            return

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class ProxyPostfixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pf = postfix.Postfix(users=("alice", "bob"),
                                 extra={"smtpd_sasl_authenticated_header": "yes"})
        try:
            cls.tmp = sctest.mkdtemp("sc-proxy-")
            cls.passwd = os.path.join(cls.tmp, "passwd")
            sctest.write_passwd(cls.passwd, {"alice@example.test": "alice-pw"})
            cls.d = sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % cls.pf.port,
                                   "proxy_timeout": "10", "auth": "passwd:" + cls.passwd,
                                   "auth_fail_delay": "0"})
        except BaseException:
            cls.pf.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
            cls.d.cleanup()
        finally:
            cls.pf.cleanup()

    def count(self, user):
        return len(self.pf.messages(user))

    def test_ehlo_merge_and_cert(self):
        with client_from(self.d.port) as c:
            r = c.ehlo("client.example")
            kws = [ln.split(" ")[0] for ln in r.lines[1:]]
            self.assertEqual(r.lines[0], "test.example greets client.example")
            self.assertIn("SIZE 67108864", r.lines)       # Postfix's message_size_limit
            for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN",
                      "ENHANCEDSTATUSCODES", "STARTTLS", "CERT", "CERS"):
                self.assertIn(k, kws)
            for k in ("XCLIENT", "AUTH", "XFORWARD", "CERC"):
                self.assertNotIn(k, kws)
            self.assertEqual(kws[-1], "HELP")
            self.assertEqual(len(kws), len(set(kws)), "a keyword twice: %r" % kws)
            r = c.cmd("CERT alice@example.test")
            self.assertEqual(r.code, 250)
            self.assertEqual(r.ders()[0], self.d.pki.der("alice"))
            self.assertEqual(c.cmd("NOOP").code, 250)
            # our own answers, not Postfix's
            self.assertIn("CERT", c.cmd("HELP").text)
            self.assertEqual(c.cmd("XCLIENT ADDR=10.0.0.1").code, 500)
            self.assertEqual(c.cmd("QUIT").code, 221)

    def test_certificate_clients_cost_the_backend_nothing(self):
        """Once one session learnt the backend's keywords, EHLO + CERT opens no
        backend connection (Postfix logs every "connect from")."""
        with client_from(self.d.port) as c:              # warms the keyword cache
            c.ehlo("warm.client.example")
            self.assertEqual(c.cmd("MAIL FROM:<w@client.example>").code, 250)
            c.cmd("QUIT")
        time.sleep(0.5)
        before = self.pf.log_text().count("connect from")
        for _ in range(3):
            with client_from(self.d.port) as c:
                r = c.ehlo("cert.client.example")
                self.assertIn("SIZE 67108864", r.lines)  # from the cache
                self.assertEqual(c.cmd("CERT bob@example.test").code, 250)
                c.cmd("QUIT")
        time.sleep(0.5)
        self.assertEqual(self.pf.log_text().count("connect from"), before)

    def test_delivery_xclient_smtplib(self):
        before = self.count("alice")
        s = smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="helo.client.example",
                         source_address=(CLIENT_IP, 0), timeout=30)
        try:
            refused = s.sendmail("sender@client.example", ["alice@example.test"],
                                 b"Subject: through the proxy\r\n\r\nhello alice\r\n")
            self.assertEqual(refused, {})
        finally:
            s.quit()
        msgs = self.pf.wait_for_mail("alice", before + 1)
        msg = msgs[-1]
        self.assertIn(b"hello alice", msg)
        rcv = received(msg)
        # XCLIENT HELO and ADDR: the client's, not smtpcertd's 127.0.0.1
        self.assertIn("from helo.client.example (", rcv)
        self.assertIn("[%s]" % CLIENT_IP, rcv)

    def test_helo_client(self):
        """A HELO (not EHLO) client: our plain 250, and the backend is told
        PROTO=SMTP and greeted with HELO."""
        before = self.count("alice")
        with client_from(self.d.port) as c:
            r = c.cmd("HELO old.client.example")
            self.assertEqual(r.last, "250 test.example greets old.client.example")
            self.assertEqual(c.cmd("MAIL FROM:<o@client.example>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            self.assertEqual(c.cmd("Subject: helo\r\n\r\nold school\r\n.").code, 250)
            c.cmd("QUIT")
        rcv = received(self.pf.wait_for_mail("alice", before + 1)[-1])
        self.assertIn("from old.client.example (", rcv)
        self.assertIn("[%s]" % CLIENT_IP, rcv)
        self.assertIn("with SMTP id", rcv)

    def test_swaks(self):
        swaks = shutil.which("swaks")
        self.assertIsNotNone(swaks, "swaks is missing: install it (scripts/install-deps)")
        before = self.count("bob")
        r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(self.d.port),
                            "--helo", "swaks.client.example", "--from", "s@client.example",
                            "--to", "bob@example.test", "--body", "from swaks",
                            "--header", "Subject: swaks via proxy", "--pipeline"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msg = self.pf.wait_for_mail("bob", before + 1)[-1]
        self.assertIn(b"from swaks", msg)
        self.assertIn("from swaks.client.example (", received(msg))

    def test_pipelined_transaction(self):
        before = self.count("alice")
        with client_from(self.d.port) as c:
            c.ehlo("pipe.client.example")
            c.send(b"MAIL FROM:<p@client.example>\r\nRCPT TO:<alice@example.test>\r\n"
                   b"RCPT TO:<nobody@example.test>\r\nDATA\r\n")
            codes = [c.reply().code for _ in range(4)]
            self.assertEqual(codes[:2], [250, 250])
            self.assertEqual(codes[2] // 100, 5)           # Postfix: unknown user
            self.assertEqual(codes[3], 354)
            c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\n")
            r = c.reply()
            self.assertEqual(r.code, 250, r)
            self.assertIn("queued", r.text)
            self.assertEqual(c.reply().code, 250)          # the NOOP after the data
            # RSET and a second transaction on the same backend connection
            self.assertEqual(c.cmd("RSET").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(b"Subject: second\r\n\r\n..dot line\r\n.\r\n")
            self.assertEqual(c.reply().code, 250)
            c.cmd("QUIT")
        msgs = self.pf.wait_for_mail("alice", before + 2)
        self.assertTrue(any(b"\n.dot line\n" in m for m in msgs), "dot-unstuffing broken")

    def test_smuggling_stays_text(self):
        """Fake ends of data (bare LF or CR around the dot) are message text for
        Postfix too: one message, one reply, the smuggled commands in its body."""
        for fake_end in (b"\n.\r\n", b"\r\n.\r", b"\r.\r\n", b"\n.\n"):
            before = self.count("bob")
            with client_from(self.d.port) as c:
                c.ehlo("smuggler.client.example")
                self.assertEqual(c.cmd("MAIL FROM:<a@client.example>").code, 250)
                self.assertEqual(c.cmd("RCPT TO:<bob@example.test>").code, 250)
                self.assertEqual(c.cmd("DATA").code, 354)
                c.send(b"Subject: smuggle\r\n\r\nhello" + fake_end +
                       b"MAIL FROM:<admin@example.test>\r\n"
                       b"RCPT TO:<alice@example.test>\r\nDATA\r\n\r\nforged\r\n.\r\n")
                r = c.reply()
                self.assertEqual(r.code, 250, "%r: %r" % (fake_end, r))
                # exactly one reply: the smuggled commands were message text
                self.assertEqual(c.pending(0.3), b"", fake_end)
                c.cmd("QUIT")
            msg = self.pf.wait_for_mail("bob", before + 1)[-1]
            self.assertIn(b"MAIL FROM:<admin@example.test>", msg, fake_end)
            time.sleep(0.3)
            self.assertEqual(self.count("bob"), before + 1, fake_end)

    def test_large_message_streams(self):
        before = self.count("alice")
        base = self.d.rss_kb()
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], self.d.rss_kb())
                except (OSError, AssertionError):
                    return
                time.sleep(0.02)

        t = threading.Thread(target=sample)
        t.start()
        line = b"x" * 998 + b"\r\n"
        try:
            with client_from(self.d.port, timeout=60) as c:
                c.ehlo("big.client.example")
                self.assertEqual(c.cmd("MAIL FROM:<big@client.example> SIZE=21000000").code, 250)
                self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
                self.assertEqual(c.cmd("DATA").code, 354)
                c.send(b"Subject: big\r\n\r\n")
                chunk = line * 1024                     # 1 MiB
                for _ in range(20):
                    c.sock.sendall(chunk)
                c.send(b".\r\n")
                r = c.reply(timeout=60)
                self.assertEqual(r.code, 250, r)
                c.cmd("QUIT")
        finally:
            done.set()
            t.join()
        msg = self.pf.wait_for_mail("alice", before + 1, timeout=60)[-1]
        # every line arrived (Maildir stores LF line ends)
        self.assertEqual(msg.count(b"x" * 998 + b"\n"), 20 * 1024)
        grew = peak[0] - base
        # ASan keeps up to 256 MB of freed memory in quarantine
        bound = 320 * 1024 if sctest.sanitized(self.d.smtpcertd) else 8 * 1024
        self.assertLess(grew, bound, "RSS grew by %d KiB for a 20 MiB message" % grew)


    def test_v2_header_reaches_postfix(self):
        """proxy_protocol = v2 against Postfix's haproxy listener."""
        before = self.count("bob")
        with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % self.pf.proxy_port,
                            "proxy_protocol": "v2"}, certs=()) as d:
            s = smtplib.SMTP("127.0.0.1", d.port, local_hostname="v2.client.example",
                             source_address=(CLIENT_IP, 0), timeout=30)
            try:
                self.assertEqual(s.sendmail("v@client.example", ["bob@example.test"],
                                            b"Subject: v2\r\n\r\nvia haproxy\r\n"), {})
            finally:
                s.quit()
        msg = self.pf.wait_for_mail("bob", before + 1)[-1]
        self.assertIn(b"via haproxy", msg)
        rcv = received(msg)
        self.assertIn("from v2.client.example (", rcv)
        self.assertIn("[%s]" % CLIENT_IP, rcv)

    def test_starttls_auth_login_reaches_postfix(self):
        """After STARTTLS the backend is greeted again; after AUTH it learns the
        identity (XCLIENT LOGIN), which Postfix puts in its Received field."""
        before = self.count("bob")
        s = smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="tls.client.example",
                         source_address=(CLIENT_IP, 0), timeout=30)
        try:
            s.starttls(context=sctest.tls_context())
            s.ehlo("tls.client.example")
            self.assertTrue(s.has_extn("auth"))
            self.assertFalse(s.has_extn("starttls"))
            self.assertIn("size", s.esmtp_features)          # Postfix's, after TLS too
            s.login("alice@example.test", "alice-pw")
            self.assertEqual(s.sendmail("alice@example.test", ["bob@example.test"],
                                        b"Subject: authenticated\r\n\r\nsigned in\r\n"), {})
        finally:
            s.quit()
        msg = self.pf.wait_for_mail("bob", before + 1)[-1]
        rcv = received(msg)
        self.assertIn("from tls.client.example (", rcv)
        self.assertIn("Authenticated sender: alice@example.test", rcv)

    def test_bdat_chunks(self):
        """CHUNKING (RFC 3030) is Postfix's: BDAT chunks go through raw."""
        before = self.count("alice")
        body = b"Subject: chunked\r\n\r\nfirst chunk\r\n.\r\nnot the end\r\n"
        with client_from(self.d.port) as c:
            self.assertIn("CHUNKING", c.ehlo("bdat.client.example").text)
            self.assertEqual(c.cmd("MAIL FROM:<c@client.example>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
            c.send(b"BDAT %d\r\n" % len(body) + body)
            self.assertEqual(c.reply().code, 250)
            tail = b"last chunk\r\n"
            c.send(b"BDAT %d LAST\r\n" % len(tail) + tail)
            r = c.reply()
            self.assertEqual(r.code, 250, r)
            self.assertEqual(c.cmd("BDAT x").code, 501)
            c.cmd("QUIT")
        msg = self.pf.wait_for_mail("alice", before + 1)[-1]
        self.assertIn(b"\n.\nnot the end\nlast chunk\n", msg)


class ProxyFailureTest(unittest.TestCase):
    def test_backend_closes_between_messages(self):
        """An idle backend connection that went away is opened again for the
        next transaction, transparently."""
        fb = FakeBackend("close-after-data")
        try:
            with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % fb.port}, certs=()) as d:
                with d.client() as c:
                    c.ehlo("again.client.example")
                    for _ in range(2):
                        self.assertEqual(c.cmd("MAIL FROM:<a@client.example>").code, 250)
                        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
                        self.assertEqual(c.cmd("DATA").code, 354)
                        r = c.cmd("Subject: x\r\n\r\nbody\r\n.")
                        self.assertEqual(r.code, 250, r)
                        time.sleep(0.3)
            self.assertEqual(fb.messages, 2)
        finally:
            fb.close()

    def test_backend_by_name(self):
        """A host name is resolved off the event loop, and each address tried
        (localhost may say ::1 first; the backend listens on 127.0.0.1)."""
        fb = FakeBackend("plain")
        try:
            with sctest.Daemon({"delivery": "proxy:localhost:%d" % fb.port}, certs=()) as d:
                with d.client() as c:
                    self.assertIn("SIZE 1000000", c.ehlo("name.client.example").lines)
                    self.assertEqual(c.cmd("MAIL FROM:<a@client.example>").code, 250)
        finally:
            fb.close()
        with sctest.Daemon({"delivery": "proxy:no-such-host.invalid:25"}, certs=()) as d:
            with d.client() as c:
                self.assertNotIn("SIZE", c.ehlo("name.client.example").text)
                # bounded by the resolver's own timeouts (resolv.conf)
                r = c.cmd("MAIL FROM:<a@client.example>", timeout=60)
                self.assertEqual(r.code, 421, r)

    def test_backend_down(self):
        port = sctest.free_port()                      # nothing listens there
        with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % port}) as d:
            with d.client() as c:
                r = c.ehlo("down.client.example")
                self.assertIn("CERT", r.text)
                self.assertNotIn("SIZE", r.text)
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
                t0 = time.monotonic()
                r = c.cmd("MAIL FROM:<a@client.example>")
                self.assertEqual(r.code, 421, r)
                self.assertIn("4.3.0", r.last)
                self.assertLess(time.monotonic() - t0, 5)
                self.assertTrue(c.is_closed())

    def test_postfix_stopped_mid_session(self):
        pf = postfix.Postfix(users=("alice",))
        try:
            with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % pf.port}) as d:
                with d.client() as c:
                    self.assertIn("SIZE", c.ehlo("stop.client.example").text)
                    pf.stop()
                    r = c.cmd("MAIL FROM:<a@client.example>", timeout=30)
                    self.assertIn(r.code, (421, 451), r)
                    self.assertTrue(r.last[4:9] in ("4.3.0", "4.4.2"), r)
        finally:
            pf.cleanup()

    def test_backend_hangs(self):
        fb = FakeBackend("hang-mail")
        try:
            with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % fb.port,
                                "proxy_timeout": "2"}) as d:
                with d.client() as c:
                    r = c.ehlo("slow.client.example")
                    self.assertIn("SIZE 1000000", r.lines)
                    self.assertEqual(r.text.count("STARTTLS"), 1)  # ours only
                    t0 = time.monotonic()
                    r = c.cmd("MAIL FROM:<a@client.example>", timeout=20)
                    self.assertEqual(r.code, 451, r)
                    self.assertIn("4.4.2", r.last)
                    self.assertLess(time.monotonic() - t0, 10)
                    # the session goes on: transaction lost until RSET
                    self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
                    self.assertEqual(c.cmd("RSET").code, 250)
                    self.assertEqual(c.cmd("QUIT").code, 221)
                self.assertTrue(d.log_has("backend timeout"), d.log_text())
        finally:
            fb.close()

    def test_refused_bdat_chunk_is_dropped(self):
        """RFC 3030 3: the chunk of a BDAT refused here (no greeting; backend lost
        inside the transaction) is read and dropped, never run as commands."""
        fb = FakeBackend("hang-rcpt")
        try:
            with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % fb.port,
                                "proxy_timeout": "1"}, certs=()) as d:
                with d.client() as c:
                    c.send(b"BDAT 6\r\nNOOP\r\nQUIT\r\n")
                    self.assertEqual(c.reply().code, 503)
                    self.assertEqual(c.reply().code, 221)       # not the NOOP's 250
                with d.client() as c:
                    c.ehlo("chunk.client.example")
                    self.assertEqual(c.cmd("MAIL FROM:<a@client.example>").code, 250)
                    self.assertEqual(c.cmd("RCPT TO:<b@example.test>", timeout=10).code, 451)
                    c.send(b"BDAT 12\r\nRSET\r\nNOOP\r\nQUIT\r\n")
                    r = c.reply()
                    self.assertEqual(r.code, 451, r)
                    self.assertIn("send RSET", r.last)
                    self.assertEqual(c.reply().code, 221)
        finally:
            fb.close()

    def test_malformed_backend_replies(self):
        """A reply that breaks RFC 5321 4.2 is a backend failure (451), never
        passed on; the session goes on."""
        for mode in sorted(FakeBackend.BAD_REPLIES):
            fb = FakeBackend(mode)
            try:
                with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % fb.port}, certs=()) as d:
                    with d.client() as c:
                        c.ehlo("bad.client.example")
                        r = c.cmd("MAIL FROM:<a@client.example>")
                        self.assertEqual(r.code, 451, "%s: %r" % (mode, r))
                        self.assertIn("4.4.2", r.last)
                        self.assertEqual(c.cmd("RSET").code, 250, mode)
                        self.assertEqual(c.cmd("NOOP").code, 250, mode)
                    self.assertTrue(d.log_has("malformed reply"), mode)
            finally:
                fb.close()

    def test_backend_421_closes_the_session(self):
        """RFC 5321 3.8: the backend's 421 is passed on and closes the session."""
        fb = FakeBackend("vrfy-421")
        try:
            with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % fb.port}, certs=()) as d:
                with d.client() as c:
                    c.ehlo("vrfy.client.example")
                    r = c.cmd("VRFY someone")
                    self.assertEqual(r.last, "421 4.3.2 fake shutting down")
                    self.assertTrue(c.is_closed())
        finally:
            fb.close()

    def test_backend_dies_during_data(self):
        fb = FakeBackend("die-in-data")
        try:
            with sctest.Daemon({"delivery": "proxy:127.0.0.1:%d" % fb.port,
                                "proxy_timeout": "5"}) as d:
                with d.client() as c:
                    c.ehlo("die.client.example")
                    self.assertEqual(c.cmd("MAIL FROM:<a@client.example>").code, 250)
                    self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
                    self.assertEqual(c.cmd("DATA").code, 354)
                    c.send(b"Subject: x\r\n\r\n" + (b"y" * 78 + b"\r\n") * 20000 + b".\r\n")
                    r = c.reply(timeout=20)
                    self.assertEqual(r.code, 451, r)     # never 250: not stored
                    self.assertEqual(c.cmd("NOOP").code, 250)
        finally:
            fb.close()


if __name__ == "__main__":
    unittest.main()
