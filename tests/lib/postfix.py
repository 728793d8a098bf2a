"""postfix - a private Postfix instance for smtpcert's integration tests (stdlib only).

Runs Debian's postfix binaries with a config directory of its own under a temp
dir (`postfix -c CONFDIR start`, as root): its own queue and data directories,
smtpd listening on free loopback ports only, mail for example.test delivered by
virtual(8) into TMP/vmail/<domain>/<user>/ (Maildir, one per address listed in
`users`), its log in TMP/maillog (postlogd, Postfix >= 3.4). XCLIENT is allowed
from 127.0.0.0/8 (smtpd_authorized_xclient_hosts), so smtpcertd's proxy mode
can say who the real client is. A second smtpd listener (`proxy_port`) expects
the HAProxy PROXY protocol (smtpd_upstream_proxy_protocol = haproxy).

The packaged instance (/etc/postfix) is never started or touched. stop() runs
`postfix -c CONFDIR stop` and then kills the master by its PID.

    with Postfix(users=("alice", "bob")) as pf:
        pf.port, pf.proxy_port       # smtpd listeners on 127.0.0.1
        pf.wait_for_mail("alice")    # -> list of message texts in the Maildir
        pf.log_text()

A missing postfix binary is a test failure with a clear message (install it with
scripts/install-deps), never a skip.
"""
import glob
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import sctest

POSTFIX = "/usr/sbin/postfix"
DOMAIN = "example.test"

MASTER_CF = """\
# written by tests/lib/postfix.py: a private instance on loopback ports
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{proxy_port} inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
smtp      unix - - n - - smtp
local     unix - n n - - local
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


# a PROXY protocol v2 header with command LOCAL (no addresses): what a health
# check sends to a listener with smtpd_upstream_proxy_protocol = haproxy
V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"


class PostfixError(AssertionError):
    pass


def require_root():
    if os.geteuid() != 0:
        raise PostfixError("the private Postfix instance must be started as root "
                           "(postfix -c CONFDIR start); run the tests as root")


class Postfix:
    """A running private Postfix; see the module docstring."""

    START_TIMEOUT = 20

    def __init__(self, users=("alice", "bob"), extra=None, start=True):
        if not os.path.exists(POSTFIX):
            raise PostfixError("%s is missing: install the postfix package "
                               "(scripts/install-deps)" % POSTFIX)
        require_root()
        self.tmp = tempfile.mkdtemp(prefix="sc-postfix-")
        os.chmod(self.tmp, 0o755)
        self.conf = os.path.join(self.tmp, "conf")
        self.queue = os.path.join(self.tmp, "queue")
        self.data = os.path.join(self.tmp, "data")
        self.vmail = os.path.join(self.tmp, "vmail")
        self.maillog = os.path.join(self.tmp, "maillog")
        self.users = list(users)
        self.extra = dict(extra or {})
        self.port = sctest.free_port()
        self.proxy_port = sctest.free_port()
        while self.proxy_port == self.port:
            self.proxy_port = sctest.free_port()
        self.running = False
        try:
            self._write_config()
            if start:
                self.start()
        except BaseException:
            self.cleanup()
            raise

    # configuration
    def _owner(self):
        """virtual(8) delivers as this uid/gid: the postfix account (>= 100, so
        virtual_minimum_uid is satisfied; root can read what it writes)."""
        pw = pwd.getpwnam("postfix")
        return pw.pw_uid, pw.pw_gid

    def main_cf(self):
        uid, gid = self._owner()
        cfg = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "backend.example.test",
            "mydomain": DOMAIN,
            "myorigin": DOMAIN,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "alias_maps": "",
            "alias_database": "",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_maps": "texthash:" + os.path.join(self.conf, "vmailbox"),
            "virtual_mailbox_base": self.vmail,
            "virtual_uid_maps": "static:%d" % uid,
            "virtual_gid_maps": "static:%d" % gid,
            "virtual_mailbox_limit": "0",
            "message_size_limit": str(64 * 1024 * 1024),
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.tmp,
            "smtpd_banner": "$myhostname ESMTP backend",
            "biff": "no",
            # the tests' clients are local: no DNS anywhere
            "smtp_host_lookup": "native",
            "disable_dns_lookups": "yes",
            "smtpd_peername_lookup": "no",
        }
        cfg.update(self.extra)
        return "".join("%s = %s\n" % (k, v) for k, v in cfg.items())

    def _write_config(self):
        os.makedirs(self.conf)
        os.makedirs(self.vmail)
        os.makedirs(self.queue)   # root-owned; `postfix check` makes what is inside
        os.makedirs(self.data)
        uid, gid = self._owner()
        os.chown(self.vmail, uid, gid)
        os.chown(self.data, uid, gid)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(self.main_cf())
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port, proxy_port=self.proxy_port))
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            for u in self.users:
                f.write("%s@%s %s/%s/\n" % (u, DOMAIN, DOMAIN, u))
        # dynamicmaps.cf and postfix-files live in meta_directory (/etc/postfix)

    def postfix(self, *args, check=True, timeout=60):
        r = subprocess.run([POSTFIX, "-c", self.conf] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            # postfix(1) logs to stderr only when it is a terminal: get the reason
            why = subprocess.run(["script", "-qec", " ".join([POSTFIX, "-c", self.conf] +
                                                            list(args)), "/dev/null"],
                                 capture_output=True, text=True, timeout=timeout).stdout
            raise PostfixError("postfix %s failed (%d): %s%s%s\nmaillog:\n%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr, why,
                self.log_text()[-3000:]))
        return r

    def _make_queue(self):
        """The queue directories with the owners and modes of Debian's
        postfix-files, so that `postfix start` may skip its integrity check
        (the `quick-start` flag file): `postfix check` takes seconds."""
        uid, gid = self._owner()
        postdrop = grp.getgrnam("postdrop").gr_gid
        for sub, owner, group, mode in (
                ("active", uid, gid, 0o700), ("bounce", uid, gid, 0o700),
                ("corrupt", uid, gid, 0o700), ("defer", uid, gid, 0o700),
                ("deferred", uid, gid, 0o700), ("flush", uid, gid, 0o700),
                ("hold", uid, gid, 0o700), ("incoming", uid, gid, 0o700),
                ("private", uid, gid, 0o700), ("saved", uid, gid, 0o700),
                ("trace", uid, gid, 0o700), ("maildrop", uid, postdrop, 0o730),
                ("public", uid, postdrop, 0o710), ("pid", 0, 0, 0o755)):
            path = os.path.join(self.queue, sub)
            os.makedirs(path, exist_ok=True)
            os.chown(path, owner, group)
            os.chmod(path, mode)
        open(os.path.join(self.queue, "quick-start"), "w").close()

    # lifecycle
    def start(self, check=False):
        """Start the master. @check runs `postfix check` (slow) instead of
        making the queue directories here."""
        if check:
            self.postfix("check")
        else:
            self._make_queue()
        self.postfix("start")
        self.running = True
        deadline = time.time() + self.START_TIMEOUT
        while time.time() < deadline:
            if self._listening(self.port) and self._listening(self.proxy_port, V2_LOCAL):
                return
            time.sleep(0.1)
        raise PostfixError("private Postfix did not listen on %d/%d\nmaillog:\n%s" % (
            self.port, self.proxy_port, self.log_text()[-3000:]))

    @staticmethod
    def _listening(port, preamble=b""):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(5)
                s.sendall(preamble)
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if not self.running:
            return
        pid = self.master_pid()
        self.postfix("stop", check=False, timeout=30)
        if pid:
            deadline = time.time() + 10
            while time.time() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.running = False

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not sctest.KEEP:
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                print("kept Postfix dir", self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # results
    def log_text(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def maildir(self, user):
        return os.path.join(self.vmail, DOMAIN, user)

    def messages(self, user):
        """Texts of the messages in the user's Maildir new/ (and cur/), oldest first."""
        files = []
        for sub in ("new", "cur"):
            files += glob.glob(os.path.join(self.maildir(user), sub, "*"))
        files.sort(key=os.path.getmtime)
        out = []
        for p in files:
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def wait_for_mail(self, user, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.messages(user)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.1)
        raise PostfixError("no mail for %s within %ds (have %d)\nmaillog:\n%s" % (
            user, timeout, len(self.messages(user)), self.log_text()[-4000:]))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purposes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
