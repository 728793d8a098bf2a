"""CERC: authenticated certificate submission against the real smtpcertd, driven
by Python's smtplib (STARTTLS + AUTH) and the raw client, with `smtpcert admin`
for the review queue (INTERFACE.md, docs/protocol.md, issue 3).

Every reply of the CERC flow: submissions off, before AUTH, a stranger's
submission for someone else's address, an admin identity, garbage, truncated
base64, a 5 MB upload (552, the session goes on), an upload cut off mid-stream
(nothing queued), kill -9 right after the 250 then restart (still pending, the
notice is in the postmaster's Maildir), accept and reject while the daemon runs
(the accepted certificate is served by CERT without a restart), the notice's
content, submissions = auto (served at once), policy refusals (expired, wrong
email, RSA-1024 made with the openssl CLI), notices without delivery and their
retry at start-up, and the commands allowed while a CERC is pending.
"""
import glob
import os
import re
import signal
import smtplib
import socket
import subprocess
import time
import unittest

import sctest
from sctest import Daemon, pki

USERS = {
    "alice@example.test": "alice-secret",
    "bob@example.test": "bob-secret",
    "dave@example.test": "dave-secret",
    "admin@example.test": "admin-secret",
}
ID_RE = r"250 2\.0\.0 ([0-9a-f]{32}) (queued|accepted)"


class CercDaemon(Daemon):
    """A daemon with `auth = passwd:`, a Maildir delivery and submissions on."""

    def __init__(self, submissions="review", extra=None, certs=("bob",), start=True):
        overrides = {"submissions": submissions}
        overrides.update(extra or {})
        super().__init__(overrides=overrides, certs=certs, start=False)
        try:
            self.passwd = os.path.join(self.tmp, "passwd")
            sctest.write_passwd(self.passwd, USERS)
            self.mail = os.path.join(self.tmp, "mail")
            self.overrides.setdefault("auth", "passwd:" + self.passwd)
            self.overrides.setdefault("delivery", "maildir:" + self.mail + "/%d/%n")
            self.write_config()
            if start:
                self.start()
        except BaseException:
            self.cleanup()
            raise

    def session(self, user=None):
        """smtplib session after EHLO, STARTTLS, EHLO and (when @user) AUTH."""
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        s.ehlo("client.test")
        s.starttls(context=sctest.tls_context_unchecked())
        s.ehlo("client.test")
        if user:
            s.login(user, USERS[user])
        return s

    def notices(self):
        """Texts of the messages in the postmaster's Maildir (new/)."""
        out = []
        for p in sorted(glob.glob(os.path.join(self.mail, "example.test", "postmaster",
                                               "new", "*"))):
            with open(p, encoding="utf-8", errors="replace") as f:
                out.append(f.read())
        return out

    def spooled(self):
        d = os.path.join(self.tmp, "state", "notices")
        return sorted(n for n in os.listdir(d) if not n.startswith(".")) if os.path.isdir(d) else []

    def pending(self):
        r = self.admin("pending")
        if r.returncode != 0:
            raise AssertionError("admin pending failed (%d): %s%s"
                                 % (r.returncode, r.stdout, r.stderr))
        return r.stdout


def submit(s, addr, data):
    """CERC addr + DATA: (code, text) of the CERC reply, then of the final reply."""
    code, msg = s.docmd("CERC", addr)
    if code != 250:
        return (code, msg.decode()), None
    code2, msg2 = s.data(data)
    return (code, msg.decode()), (code2, msg2.decode())


def openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout


class CercTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()

    def pem(self, name):
        return self.pki.pem(name + ".chain")

    def cert_of(self, d, addr):
        with d.client() as c:
            c.ehlo()
            return c.cmd("CERT " + addr)

    # --- replies before the upload ------------------------------------------

    def test_off(self):
        with Daemon() as d:  # submissions = off by default
            s = smtplib.SMTP("127.0.0.1", d.port, timeout=20)
            code, ehlo = s.ehlo("client.test")
            self.assertNotIn(b"CERC", ehlo)
            self.assertEqual(s.docmd("CERC", "alice@example.test"),
                             (550, b"5.7.0 Service Unavailable"))
            s.quit()

    def test_before_auth(self):
        with CercDaemon() as d:
            s = smtplib.SMTP("127.0.0.1", d.port, timeout=20)
            code, ehlo = s.ehlo("client.test")
            self.assertIn(b"CERC", ehlo)
            self.assertEqual(s.docmd("CERC", "alice@example.test"),
                             (530, b"5.7.0 Authentication required"))
            s.starttls(context=sctest.tls_context_unchecked())
            s.ehlo("client.test")
            self.assertEqual(s.docmd("CERC", "alice@example.test"),
                             (530, b"5.7.0 Authentication required"))
            # without a pending CERC, DATA belongs to a mail transaction,
            # and there is none (RFC 5321 4.1.4: bad sequence)
            self.assertEqual(s.docmd("DATA")[0], 503)
            s.quit()
            self.assertNotIn("example.test", d.pending())

    def test_stranger_for_someone_else(self):
        with CercDaemon() as d:
            s = d.session("bob@example.test")
            code, msg = s.docmd("CERC", "alice@example.test")
            self.assertEqual(code, 550)
            self.assertRegex(msg.decode(), r"^5\.7\.1 Not authorized")
            # no upload was started: DATA is refused (no mail transaction
            # either), the session goes on
            self.assertEqual(s.docmd("DATA")[0], 503)
            self.assertEqual(s.docmd("NOOP")[0], 250)
            # case and quoting do not let bob through either
            self.assertEqual(s.docmd("CERC", "<ALICE@Example.TEST>")[0], 550)
            s.quit()
            self.assertNotIn("alice", d.pending())
            self.assertEqual(d.notices(), [])
            self.assertTrue(d.wait_log(r"cmd=CERC addr=alice@example.test user=bob@example.test "
                                       r"refused: not authorized"))

    def test_syntax_and_foreign_domain(self):
        with CercDaemon() as d:
            s = d.session("alice@example.test")
            code, msg = s.docmd("CERC", "not an address")
            self.assertEqual(code, 501)
            self.assertTrue(msg.startswith(b"5.5.4"))
            code, msg = s.docmd("CERC", "mallory@other.test")
            self.assertEqual(code, 550)
            self.assertTrue(msg.startswith(b"5.7.1"))
            self.assertEqual(s.docmd("CERC")[0], 501)
            s.quit()

    def test_admin_identity_may_submit_for_others(self):
        with CercDaemon(extra={"submission_admins": "admin@example.test"}) as d:
            s = d.session("admin@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            self.assertEqual(first, (250, "2.0.0 Send the certificate with DATA"))
            m = re.match(ID_RE, "%d %s" % last)
            self.assertTrue(m, last)
            self.assertEqual(m.group(2), "queued")
            s.quit()
            self.assertIn(m.group(1), d.pending())
            self.assertTrue(d.wait_log(r"cmd=CERC addr=alice@example.test user=admin@example.test "
                                       r"result=250 status=2\.0\.0 id=" + m.group(1)))

    def test_commands_while_pending(self):
        with CercDaemon() as d:
            s = d.session("alice@example.test")
            self.assertEqual(s.docmd("CERC", "alice@example.test")[0], 250)
            # anything but DATA/RSET/NOOP/HELP/QUIT/EHLO: 503, the CERC stays
            self.assertEqual(s.docmd("CERT", "bob@example.test")[0], 503)
            self.assertEqual(s.docmd("CERC", "alice@example.test")[0], 503)
            self.assertEqual(s.docmd("MAIL", "FROM:<a@example.test>")[0], 503)
            self.assertEqual(s.docmd("NOOP")[0], 250)
            self.assertEqual(s.docmd("RSET")[0], 250)
            # RSET cancelled it
            self.assertEqual(s.docmd("DATA")[0], 503)
            self.assertEqual(s.docmd("CERT", "bob@example.test")[0], 250)
            s.quit()

    # --- the upload ------------------------------------------------------------

    def test_review_notice_accept_served_without_restart(self):
        with CercDaemon() as d:
            self.assertTrue(self.cert_of(d, "alice@example.test").code == 550)
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            m = re.match(ID_RE, "%d %s" % last)
            self.assertTrue(m, last)
            sid = m.group(1)
            self.assertEqual(m.group(2), "queued")
            # the session goes on after the submission
            self.assertEqual(s.docmd("NOOP")[0], 250)
            s.quit()
            # not served before the admin decides
            self.assertEqual(self.cert_of(d, "alice@example.test").code, 550)
            self.assertIn(sid, d.pending())
            # the postmaster notice: address, fingerprint, exact commands
            notices = d.notices()
            self.assertEqual(len(notices), 1, notices)
            n = notices[0]
            self.assertIn("alice@example.test", n)
            fp = self.pki.fingerprint("alice").lower().replace(":", "")
            self.assertIn(fp, re.sub(r"[^0-9a-f\n]", "", n.lower()))
            self.assertIn("smtpcert admin -c %s accept %s" % (d.conf, sid), n)
            self.assertIn("reject %s" % sid, n)
            self.assertRegex(n, r"(?m)^Subject: ")
            self.assertRegex(n, r"(?mi)^To: .*postmaster@example\.test")
            self.assertEqual(d.spooled(), [])  # delivered, so no longer spooled
            # accept while the daemon runs; CERT serves it at once
            r = d.admin("accept", sid)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            got = self.cert_of(d, "alice@example.test")
            self.assertEqual(got.code, 250)
            self.assertEqual(got.ders()[0], self.pki.der("alice"))
            self.assertNotIn(sid, d.pending())

    def test_reject_while_running(self):
        with CercDaemon() as d:
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            sid = re.match(ID_RE, "%d %s" % last).group(1)
            s.quit()
            r = d.admin("reject", sid, "--reason", "not today")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn(sid, d.pending())
            self.assertEqual(self.cert_of(d, "alice@example.test").code, 550)
            r = d.admin("show", sid)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r"(?i)rejected")

    def test_auto_serves_at_once(self):
        with CercDaemon(submissions="auto") as d:
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            m = re.match(ID_RE, "%d %s" % last)
            self.assertTrue(m, last)
            self.assertEqual(m.group(2), "accepted")
            # served by the same session and by others, without a restart
            code, msg = s.docmd("CERT", "alice@example.test")
            self.assertEqual(code, 250)
            s.quit()
            got = self.cert_of(d, "alice@example.test")
            self.assertEqual(got.ders()[0], self.pki.der("alice"))
            self.assertNotIn(m.group(1), d.pending())
            # the postmaster is still notified
            notices = d.notices()
            self.assertEqual(len(notices), 1)
            self.assertIn(m.group(1), notices[0])
            self.assertRegex(notices[0], r"(?i)accepted")

    def test_reload_to_auto_keeps_read_only_store(self):
        # LMDB allows one handle per process: a reload cannot reopen the store
        # read-write, so submissions stay pending and the log says why
        with CercDaemon() as d:
            d.overrides["submissions"] = "auto"
            d.write_config()
            mark = d.reload()
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            m = re.match(ID_RE, "%d %s" % last)
            self.assertTrue(m, last)
            self.assertEqual(m.group(2), "queued")
            s.quit()
            self.assertIn(m.group(1), d.pending())
            self.assertTrue(d.wait_log(r"opened read-only: restart smtpcertd", start=mark))
            self.assertEqual(self.cert_of(d, "alice@example.test").code, 550)

    def test_garbage_and_truncated_base64(self):
        with CercDaemon() as d:
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", "hello world\r\nthis is no certificate\r\n")
            self.assertEqual(last[0], 550)
            self.assertRegex(last[1], r"^5\.7\.1 Invalid Certificate")
            pem = self.pki.pem("alice")
            lines = pem.strip().splitlines()
            truncated = "\n".join(lines[:len(lines) // 2] + [lines[-1]]) + "\n"
            first, last = submit(s, "alice@example.test", truncated)
            self.assertEqual(last[0], 550)
            self.assertRegex(last[1], r"^5\.7\.1 Invalid Certificate")
            # a private key is never taken
            first, last = submit(s, "alice@example.test", pem + self.pki.pem("alice.key"))
            self.assertEqual(last[0], 550)
            self.assertEqual(s.docmd("NOOP")[0], 250)
            s.quit()
            self.assertNotIn("alice", d.pending())
            self.assertEqual(d.notices(), [])

    def test_five_megabytes_then_session_goes_on(self):
        with CercDaemon() as d:
            s = d.session("alice@example.test")
            line = "A" * 76 + "\r\n"
            big = line * (5 * 1024 * 1024 // len(line))
            first, last = submit(s, "alice@example.test", big)
            self.assertEqual(last, (552, "5.3.4 Certificate upload too large"))
            # in sync: the next commands work, and a proper upload too
            self.assertEqual(s.docmd("NOOP"), (250, b"2.0.0 OK"))
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            self.assertEqual(last[0], 250, last)
            s.quit()

    def test_cut_off_mid_stream_queues_nothing(self):
        with CercDaemon() as d:
            s = d.session("alice@example.test")
            self.assertEqual(s.docmd("CERC", "alice@example.test")[0], 250)
            self.assertEqual(s.docmd("DATA")[0], 354)
            pem = self.pem("alice")
            s.send(pem[:len(pem) // 2].replace("\n", "\r\n").encode())
            # a real close (smtplib's file object would keep the socket open)
            s.sock.shutdown(socket.SHUT_RDWR)
            s.close()
            self.assertTrue(d.wait_log(r"session=\S+ disconnect reason=(eof|tls-error|read-error) commands=6"))
            time.sleep(0.3)
            self.assertNotIn("alice", d.pending())
            self.assertEqual(d.notices(), [])
            self.assertEqual(d.spooled(), [])
            # a line that *looks* like the end after a bare LF is not the end
            with d.client() as c:
                c.ehlo()
                c.starttls(sctest.tls_context_unchecked())
                c.ehlo()
                import base64
                cred = base64.b64encode(b"\0alice@example.test\0alice-secret").decode()
                self.assertEqual(c.cmd("AUTH PLAIN " + cred).code, 235)
                self.assertEqual(c.cmd("CERC alice@example.test").code, 250)
                self.assertEqual(c.cmd("DATA").code, 354)
                c.send(b"garbage\n.\nNOOP\r\n")
                self.assertEqual(c.pending(0.5), b"")  # still in the upload
                c.send(b".\r\n")
                r = c.reply()
                self.assertEqual(r.code, 550)  # "garbage . NOOP" is no certificate

    def test_pipelined_upload_keeps_order(self):
        with CercDaemon() as d:
            with d.client() as c:
                c.ehlo()
                c.starttls(sctest.tls_context_unchecked())
                c.ehlo()
                import base64
                cred = base64.b64encode(b"\0alice@example.test\0alice-secret").decode()
                self.assertEqual(c.cmd("AUTH PLAIN " + cred).code, 235)
                body = self.pem("alice").replace("\n", "\r\n").encode()
                c.send(b"CERC alice@example.test\r\nDATA\r\n" + body + b".\r\nNOOP\r\nCERT bob@example.test\r\n")
                self.assertEqual(c.reply().code, 250)
                self.assertEqual(c.reply().code, 354)
                r = c.reply()
                self.assertRegex(r.text, r"^2\.0\.0 [0-9a-f]{32} queued")
                self.assertEqual(c.reply().code, 250)   # NOOP after the job
                self.assertEqual(c.reply().code, 250)   # CERT bob

    def test_kill9_after_250_then_restart(self):
        with CercDaemon() as d:
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            sid = re.match(ID_RE, "%d %s" % last).group(1)
            os.kill(d.pid, signal.SIGKILL)
            d.proc.wait(10)
            try:
                s.close()
            except OSError:
                pass
            # durable: pending without the daemon, and after a restart
            self.assertIn(sid, d.pending())
            d._log.close()
            d.start()
            self.assertIn(sid, d.pending())
            notices = d.notices()
            self.assertEqual(len(notices), 1)
            self.assertIn(sid, notices[0])

    def test_policy_refusals(self):
        with CercDaemon() as d:
            s = d.session("dave@example.test")
            first, last = submit(s, "dave@example.test", self.pem("dave"))
            self.assertEqual(last[0], 550)
            self.assertRegex(last[1], r"^5\.7\.1 Invalid Certificate: .*expired")
            s.quit()
            s = d.session("alice@example.test")
            # bob's certificate for alice's address
            first, last = submit(s, "alice@example.test", self.pem("bob"))
            self.assertEqual(last[0], 550)
            self.assertRegex(last[1], r"^5\.7\.1 Invalid Certificate: .*(email|address)")
            # RSA-1024, self-made with the openssl CLI
            key = os.path.join(d.tmp, "weak.key")
            openssl("genrsa", "-out", key, "1024")
            weak = openssl("req", "-new", "-x509", "-key", key, "-days", "30",
                           "-subj", "/CN=Alice weak",
                           "-addext", "subjectAltName=email:alice@example.test").decode()
            first, last = submit(s, "alice@example.test", weak)
            self.assertEqual(last[0], 550)
            self.assertRegex(last[1], r"^5\.7\.1 Invalid Certificate: .*(RSA|1024|key)")
            s.quit()
            self.assertNotIn("example.test", d.pending())
            self.assertEqual(d.notices(), [])

    def test_notices_without_delivery_stay_then_retry_at_start(self):
        with CercDaemon(extra={"delivery": None}) as d:
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            sid = re.match(ID_RE, "%d %s" % last).group(1)
            s.quit()
            # not lost: spooled in STATE/notices, and logged
            self.assertEqual(d.spooled(), [sid])
            self.assertTrue(d.wait_log(r"(?i)notice.*not delivered"))
            d.stop()
            # with a delivery, a restart delivers the leftover
            d.overrides["delivery"] = "maildir:" + d.mail + "/%d/%n"
            d.write_config()
            d.start()
            deadline = time.monotonic() + 10
            while d.spooled() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(d.spooled(), [])
            notices = d.notices()
            self.assertEqual(len(notices), 1)
            self.assertIn(sid, notices[0])

    def test_delivery_failure_is_retried_not_lost(self):
        with CercDaemon(start=False) as d:
            # the Maildir's parent is a file: delivery fails
            with open(d.mail, "w") as f:
                f.write("not a directory\n")
            d.start()
            s = d.session("alice@example.test")
            first, last = submit(s, "alice@example.test", self.pem("alice"))
            self.assertEqual(last[0], 250, last)  # the submission itself is fine
            sid = re.match(ID_RE, "%d %s" % last).group(1)
            s.quit()
            self.assertEqual(d.spooled(), [sid])
            self.assertTrue(d.wait_log(r"postmaster notice not delivered"))
            os.unlink(d.mail)
            d.stop()
            d.start()
            deadline = time.monotonic() + 10
            while d.spooled() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(d.spooled(), [])
            self.assertEqual(len(d.notices()), 1)


if __name__ == "__main__":
    unittest.main()
