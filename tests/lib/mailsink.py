"""mailsink - a small recording SMTP server for integration tests (stdlib only).

Plays the submission server (or an MX, or with lmtp=True an LMTP server) that
`smtpcert send` talks to: EHLO/LHLO, STARTTLS with the ssl module, AUTH PLAIN
(only inside TLS, as RFC 4954 4 asks), MAIL/RCPT/DATA/RSET/NOOP/QUIT. Every
transaction that reaches the end of DATA is kept as a Message (envelope, the
data with dot-stuffing undone, TLS and AUTH state); every command line is kept
in `commands`, so a test can assert that nothing was sent at all.

Replies can be scripted: rcpt_replies maps an address to the reply for its
RCPT (e.g. "550 5.1.1 no such user"), mail_reply and data_reply replace the 250
of MAIL and of the end of DATA.

    with MailSink(tls=(chain, key), users={"alice@example.test": "pw"}) as sink:
        ... run smtpcert send --submit 127.0.0.1:%d % sink.port ...
        msg = sink.wait_message()
"""
import base64
import socket
import ssl
import threading
import time


class Message:
    def __init__(self, mail_from, rcpts, data, tls, user, params):
        self.mail_from = mail_from
        self.rcpts = rcpts
        self.data = data          # bytes, CRLF line ends, dot-stuffing undone
        self.tls = tls
        self.user = user          # AUTH identity, or None
        self.params = params      # MAIL FROM parameters ("SIZE=.. BODY=8BITMIME")

    @property
    def text(self):
        return self.data.decode("utf-8", "replace")

    def header(self):
        """The header block as text (up to the first empty line)."""
        return self.text.split("\r\n\r\n", 1)[0] + "\r\n"

    def __repr__(self):
        return "Message(from=%r, rcpts=%r, %d octets)" % (self.mail_from, self.rcpts,
                                                          len(self.data))


class _Conn:
    def __init__(self, sink, sock):
        self.sink = sink
        self.sock = sock
        self.buf = b""
        self.tls = False
        self.user = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.params = ""
        self.rcpts = []

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
            if len(self.buf) > 1 << 20:
                return None
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln[:-1] if ln.endswith(b"\r") else ln

    def ehlo_lines(self, name):
        s = self.sink
        lines = ["%s greets %s" % (s.hostname, name), "PIPELINING", "8BITMIME",
                 "SIZE 104857600", "SMTPUTF8"]
        if s.tls_ctx and not self.tls:
            lines.append("STARTTLS")
        if s.users is not None and (self.tls or s.auth_plaintext):
            lines.append("AUTH PLAIN")
        lines.append("ENHANCEDSTATUSCODES")
        return "\r\n".join(("250-" if i < len(lines) - 1 else "250 ") + t
                           for i, t in enumerate(lines))

    def auth(self, arg):
        s = self.sink
        parts = arg.split(" ", 1)
        if s.users is None or (not self.tls and not s.auth_plaintext):
            return "503 5.5.1 AUTH not available"
        if parts[0].upper() != "PLAIN":
            return "504 5.5.4 Unrecognized authentication type"
        if len(parts) == 2:
            resp = parts[1]
        else:
            self.send("334 ")
            resp = (self.line() or b"").decode("ascii", "replace")
        try:
            _, user, pw = base64.b64decode(resp, validate=True).split(b"\0")
        except Exception:
            return "501 5.5.2 Bad base64"
        user, pw = user.decode("utf-8"), pw.decode("utf-8")
        if s.users.get(user) != pw:
            return "535 5.7.8 Authentication credentials invalid"
        self.user = user
        return "235 2.7.0 Authentication successful"

    def data(self):
        """The data up to CRLF "." CRLF, dot-stuffing undone (RFC 5321 4.5.2).
        Collected as raw octets first, so a large message is not re-split per line."""
        raw = bytearray(self.buf)
        self.buf = b""
        if raw.startswith(b".\r\n"):
            self.buf = bytes(raw[3:])
            return b""
        scan = 0
        while True:
            end = raw.find(b"\r\n.\r\n", scan)
            if end >= 0:
                break
            scan = max(0, len(raw) - 4)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            raw += chunk
            if len(raw) > self.sink.max_data:
                return None
        self.buf = bytes(raw[end + 5:])
        lines = bytes(raw[:end]).split(b"\r\n")
        return b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines)

    def run(self):
        s = self.sink
        self.send("220 %s ESMTP mailsink" % s.hostname)
        while True:
            raw = self.line()
            if raw is None:
                return
            cmd = raw.decode("utf-8", "replace")
            with s.lock:
                s.commands.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            arg = cmd[len(verb) + 1:] if " " in cmd else ""
            if verb in ("EHLO", "LHLO") and (verb == "LHLO") == s.lmtp:
                self.reset()
                self.send(self.ehlo_lines(arg))
            elif verb == "HELO" and not s.lmtp:
                self.send("250 %s" % s.hostname)
            elif verb == "STARTTLS" and s.tls_ctx and not self.tls:
                self.send("220 2.0.0 Ready to start TLS")
                if self.buf:
                    return  # pipelined plaintext after STARTTLS: refuse
                self.sock = s.tls_ctx.wrap_socket(self.sock, server_side=True)
                self.tls = True
                self.reset()
            elif verb == "AUTH":
                self.send(self.auth(arg))
            elif verb == "MAIL" and arg.upper().startswith("FROM:"):
                if s.require_auth and not self.user:
                    self.send("530 5.7.0 Authentication required")
                    continue
                path = arg[5:].strip()
                addr, _, params = path.partition(" ")
                self.mail_from = addr.strip("<>")
                self.params = params.strip()
                self.rcpts = []
                self.send(s.mail_reply or "250 2.1.0 Ok")
            elif verb == "RCPT" and arg.upper().startswith("TO:"):
                if self.mail_from is None:
                    self.send("503 5.5.1 MAIL first")
                    continue
                addr = arg[3:].strip().split(" ")[0].strip("<>")
                reply = s.rcpt_replies.get(addr, "250 2.1.5 Ok")
                if reply.startswith("2"):
                    self.rcpts.append(addr)
                self.send(reply)
            elif verb == "DATA":
                if not self.rcpts:
                    self.send("554 5.5.1 No valid recipients")
                    continue
                self.send("354 End data with <CR><LF>.<CR><LF>")
                data = self.data()
                if data is None:
                    return
                msg = Message(self.mail_from, list(self.rcpts), data, self.tls, self.user,
                              self.params)
                if s.lmtp:
                    replies = [s.rcpt_data_replies.get(r, "250 2.0.0 <%s> delivered" % r)
                               for r in self.rcpts]
                    ok = any(r.startswith("2") for r in replies)
                    self.sock.sendall("".join(r + "\r\n" for r in replies).encode())
                else:
                    reply = s.data_reply or "250 2.0.0 Ok: queued as %d" % (len(s.messages) + 1)
                    ok = reply.startswith("2")
                    self.send(reply)
                if ok:
                    with s.lock:
                        s.messages.append(msg)
                self.reset()
            elif verb == "RSET":
                self.reset()
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.1 Command not implemented")


class MailSink:
    def __init__(self, tls=None, users=None, require_auth=False, auth_plaintext=False,
                 rcpt_replies=None, mail_reply=None, data_reply=None, lmtp=False,
                 rcpt_data_replies=None, hostname="sink.test"):
        """tls: (chain_file, key_file) to offer STARTTLS; users: {user: password}
        for AUTH PLAIN (None: no AUTH)."""
        self.hostname = hostname
        self.tls_ctx = None
        if tls:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(tls[0], tls[1])
        self.users = users
        self.require_auth = require_auth
        self.auth_plaintext = auth_plaintext
        self.rcpt_replies = dict(rcpt_replies or {})
        self.rcpt_data_replies = dict(rcpt_data_replies or {})
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.lmtp = lmtp
        self.max_data = 64 << 20
        self.messages = []
        self.commands = []
        self.connections = 0
        self.lock = threading.Lock()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            sock.settimeout(30)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        conn = _Conn(self, sock)
        try:
            conn.run()
        except (OSError, ssl.SSLError):
            pass
        finally:
            # after STARTTLS conn.sock is the TLS socket wrapping @sock
            for s in (conn.sock, sock):
                try:
                    s.close()
                except OSError:
                    pass

    def wait_message(self, n=1, timeout=10):
        """The @n-th message (1-based) once it arrived; AssertionError after @timeout."""
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if len(self.messages) >= n:
                    return self.messages[n - 1]
            time.sleep(0.05)
        raise AssertionError("mailsink: no message %d within %ss; commands: %r"
                             % (n, timeout, self.commands))

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
