"""The lookup index smtpcertd keeps of its lmdb: store (repository_index,
daemon/repo_index.c, lib/repo_lmdb_index.c): built after the start and logged,
the same answers with it as without it (one at a time and pipelined, where the
daemon prefetches, against a daemon with `repository_index = no`), and without
copies of the entry lists (`repository_index_copy = 0`), a write seen
by the very next CERT, a new index after the write, and connections ready
together answered each with its own (daemon/conn_batch.c)."""
import fcntl
import os
import re
import time
import unittest

import sctest
from sctest import Daemon, pki

NOT_FOUND = "550 5.1.1 Certificate Not Found"
INDEX_LINE = (r"repository lmdb:\S+: index of (\d+) addresses \((\d+) KiB; copies (\d+) KiB "
              r"of at most (\d+) KiB; (\d+) KiB in reserved huge pages\) built in \d+ ms")

# what the prefetch's key guess must get right or leave alone: case, brackets,
# a trailing dot, a quoted local part, garbage, an unknown address
ADDRESSES = [
    "alice@example.test",
    "<bob@example.test>",
    "ALICE@Example.Test",
    "mixed.case@example.test",
    "Mixed.Case@EXAMPLE.test.",
    '"alice"@example.test',
    "nobody@example.test",
    "bob@example.test",
    "@example.test",
    "<>",
]


@unittest.skipIf(sctest.TEST_REPO == "dir", "the index is the lmdb: store's")
class RepoIndexTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = pki()

    def one_by_one(self, d, addrs):
        out = []
        with d.client() as c:
            c.ehlo()
            for a in addrs:
                out.append(c.cmd("CERT " + a))
        return out

    def pipelined(self, d, addrs):
        with d.client() as c:
            c.ehlo()
            c.send("".join("CERT %s\r\n" % a for a in addrs).encode())
            return [c.reply() for _ in addrs]

    def test_index_built_and_same_answers(self):
        # not-found answers and syntax errors count towards max_errors
        with Daemon(certs=("alice", "bob", "Mixed"), overrides={"max_errors": "100"}) as d:
            m = d.wait_log(INDEX_LINE, timeout=20)
            self.assertIsNotNone(m, d.log_text()[-2000:])
            self.assertEqual(int(m.group(1)), 3)
            # repository_index_copy's default, 2048 MiB (or a quarter of the
            # machine's memory), holds three certificates
            self.assertGreater(int(m.group(3)), 0, m.group(0))
            quarter = os.sysconf("SC_PHYS_PAGES") // 4 * os.sysconf("SC_PAGE_SIZE")
            self.assertEqual(int(m.group(4)), min(2048 << 20, quarter) // 1024, m.group(0))
            # repository_index_huge_pages is off by default: none from the pool
            self.assertEqual(m.group(5), "0", m.group(0))
            got = [r.raw for r in self.one_by_one(d, ADDRESSES)]
            self.assertEqual([r.raw for r in self.pipelined(d, ADDRESSES)], got)
            self.assertEqual([r.raw for r in self.pipelined(d, ADDRESSES * 3)], got * 3)
            by = dict(zip(ADDRESSES, self.one_by_one(d, ADDRESSES)))
        with Daemon(certs=("alice", "bob", "Mixed"),
                    overrides={"max_errors": "100", "repository_index": "no"}) as plain:
            self.assertEqual([r.raw for r in self.one_by_one(plain, ADDRESSES)], got)
            for a in ("alice@example.test", "ALICE@Example.Test", '"alice"@example.test'):
                self.assertEqual(by[a].ders(), [self.pki.der("alice")], a)
            self.assertEqual(by["<bob@example.test>"].ders(), [self.pki.der("bob")])
            self.assertEqual(by["mixed.case@example.test"].ders(),
                             [self.pki.der("Mixed")])
            self.assertEqual(by["nobody@example.test"].last, NOT_FOUND)
        # the index pointing into the store's map instead of its copies
        with Daemon(certs=("alice", "bob", "Mixed"),
                    overrides={"max_errors": "100", "repository_index_copy": "0"}) as nocopy:
            m = nocopy.wait_log(INDEX_LINE, timeout=20)
            self.assertIsNotNone(m, nocopy.log_text()[-2000:])
            self.assertEqual((m.group(1), m.group(3), m.group(4)), ("3", "0", "0"))
            self.assertEqual([r.raw for r in self.one_by_one(nocopy, ADDRESSES)], got)
            self.assertEqual([r.raw for r in self.pipelined(nocopy, ADDRESSES * 2)], got * 2)

    def huge_daemon(self):
        """A daemon with repository_index_huge_pages; its index line, whether
        the warning came, and whether its answers were the same."""
        with Daemon(certs=("alice", "bob", "Mixed"),
                    overrides={"max_errors": "100",
                               "repository_index_huge_pages": "yes"}) as d:
            m = d.wait_log(INDEX_LINE, timeout=20)
            self.assertIsNotNone(m, d.log_text()[-2000:])
            self.assertEqual(m.group(1), "3")
            self.assertLessEqual(int(m.group(5)), int(m.group(2)), m.group(0))
            warned = re.search(r"warning: repository lmdb:\S+: repository_index_huge_pages: "
                               r"the reserved 2 MiB huge pages did not hold the whole index",
                               d.log_text())
            got = [r.raw for r in self.one_by_one(d, ADDRESSES)]
            self.assertEqual([r.raw for r in self.pipelined(d, ADDRESSES * 2)], got * 2)
            by = dict(zip(ADDRESSES, self.one_by_one(d, ADDRESSES)))
            self.assertEqual(by["ALICE@Example.Test"].ders(), [self.pki.der("alice")])
            self.assertEqual(by["nobody@example.test"].last, NOT_FOUND)
            return int(m.group(5)), int(m.group(2)), warned is not None

    def test_huge_pages(self):
        # From the machine's 2 MiB pool, under the lock that
        # tests/unit/test_repo_lmdb_index_huge.c counts its pages under. As
        # root (CI) the pool is made empty, then given room, and put back:
        # none of the index in it and a warning, then all of it and none.
        # Otherwise whatever the pool has: the warning iff not all fitted.
        lock = os.open("/tmp/smtpcert-test-hugepages.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        self.addCleanup(os.close, lock)
        fcntl.flock(lock, fcntl.LOCK_EX)
        pool = "/sys/kernel/mm/hugepages/hugepages-2048kB/"

        def read(name):
            with open(pool + name) as f:
                return int(f.read())

        def room():
            return read("free_hugepages") - read("resv_hugepages")

        def set_room(pages):
            try:
                with open(pool + "nr_hugepages", "w") as f:
                    f.write("%d\n" % (read("nr_hugepages") - room() + pages))
            except OSError:
                return False
            return room() == pages

        if os.geteuid() != 0 or not os.path.exists(pool):
            huge, size, warned = self.huge_daemon()
            self.assertEqual(warned, huge < size)
            return
        was = read("nr_hugepages")

        def put_back():
            with open(pool + "nr_hugepages", "w") as f:
                f.write("%d\n" % was)
        self.addCleanup(put_back)
        self.assertTrue(set_room(0))
        huge, size, warned = self.huge_daemon()
        self.assertEqual((huge, warned), (0, True))
        self.assertTrue(set_room(8))
        huge, size, warned = self.huge_daemon()
        self.assertEqual((huge, warned), (size, False))
        self.assertGreater(huge, 0)
        self.assertEqual(room(), 8)  # all given back at the daemon's exit

    def test_write_seen_at_once_then_new_index(self):
        with Daemon(certs=("alice", "bob")) as d:
            self.assertIsNotNone(d.wait_log(INDEX_LINE, timeout=20), d.log_text()[-2000:])
            mark = len(d.log_text())
            with d.client() as c:
                c.ehlo()
                self.assertEqual(c.cmd("CERT alice@example.test").code, 250)
                r = d.admin("remove", "alice@example.test")
                self.assertEqual(r.returncode, 0, r.stderr)
                # the index is of the old snapshot: never used after the write
                self.assertEqual(c.cmd("CERT alice@example.test").last, NOT_FOUND)
                c.send(b"CERT alice@example.test\r\nCERT bob@example.test\r\n")
                self.assertEqual(c.reply().last, NOT_FOUND)
                self.assertEqual(c.reply().ders(), [self.pki.der("bob")])
            m = d.wait_log(INDEX_LINE, timeout=20, start=mark)
            self.assertIsNotNone(m, d.log_text()[mark:])
            self.assertEqual(int(m.group(1)), 1)
            self.assertGreater(int(m.group(3)), 0, m.group(0))
            # the 550s above were answered before any new index existed: the
            # stale index was not used, and the store was read directly
            after = d.log_text()[mark:]
            first_550 = re.search(r"cmd=CERT addr=alice@example\.test result=550", after)
            self.assertIsNotNone(first_550, after)
            self.assertLess(first_550.start(), m.start(), after)
            # and the new index has it gone too; an import is seen at once
            got = self.pipelined(d, ["alice@example.test", "bob@example.test"])
            self.assertEqual(got[0].last, NOT_FOUND)
            d.import_certs(["alice"])
            got = self.pipelined(d, ["bob@example.test", "alice@example.test"])
            self.assertEqual(got[1].ders(), [self.pki.der("alice")])

    def test_connections_ready_together(self):
        # conn_batch.c: the CERTs of all connections readable in one loop round
        # are read first and answered after; each gets its own answer, also a
        # connection that leaves (RST) right after its command
        import socket
        import struct
        want = {"alice@example.test": [self.pki.der("alice")],
                "bob@example.test": [self.pki.der("bob")],
                "nobody@example.test": None}
        names = list(want)
        with Daemon(certs=("alice", "bob")) as d:
            self.assertIsNotNone(d.wait_log(INDEX_LINE, timeout=20), d.log_text()[-2000:])
            for rnd in range(3):
                clients = []
                for i in range(24):
                    c = d.client()
                    c.ehlo()
                    clients.append(c)
                gone = clients[5]
                for i, c in enumerate(clients):
                    c.send(("CERT %s\r\n" % names[(i + rnd) % 3]).encode())
                gone.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
                gone.close()
                for i, c in enumerate(clients):
                    if c is gone:
                        continue
                    r = c.reply()
                    exp = want[names[(i + rnd) % 3]]
                    if exp is None:
                        self.assertEqual(r.last, NOT_FOUND)
                    else:
                        self.assertEqual(r.ders(), exp, (rnd, i))
                    c.close()
            # and the daemon still serves
            self.assertEqual(self.one_by_one(d, ["bob@example.test"])[0].ders(),
                             [self.pki.der("bob")])

    def test_repository_index_no(self):
        with Daemon(certs=("alice",), overrides={"repository_index": "no"}) as d:
            got = self.pipelined(d, ["alice@example.test", "alice@example.test"])
            self.assertEqual(got[1].ders(), [self.pki.der("alice")])
            time.sleep(2.5)  # the check runs every second
            self.assertIsNone(re.search(INDEX_LINE, d.log_text()), d.log_text()[-2000:])

    def test_copy_limit_shared_by_stores(self):
        # repository_index_copy is for all stores of a process together: the
        # second store may copy what the first left of the 1 MiB
        with Daemon(certs=("alice", "bob"), start=False) as d:
            second = "lmdb:" + os.path.join(d.tmp, "repo2")
            d.write_config({"repository": second})
            d.import_certs(["Mixed"])
            d.write_config({"repository": ["lmdb:" + os.path.join(d.tmp, "repo"), second],
                            "repository_index_copy": "1"})
            d.start()
            first = d.wait_log(INDEX_LINE.replace(r"lmdb:\S+", re.escape(
                "lmdb:" + os.path.join(d.tmp, "repo"))), timeout=20)
            self.assertIsNotNone(first, d.log_text()[-2000:])
            other = d.wait_log(INDEX_LINE.replace(r"lmdb:\S+", re.escape(second)), timeout=20)
            self.assertIsNotNone(other, d.log_text()[-2000:])
            self.assertEqual(first.group(1), "2")
            self.assertGreater(int(first.group(3)), 0, first.group(0))
            self.assertEqual(int(first.group(4)), 1024, first.group(0))
            self.assertEqual(other.group(1), "1")
            self.assertGreater(int(other.group(3)), 0, other.group(0))
            self.assertEqual(int(other.group(4)), 1024 - int(first.group(3)), other.group(0))
            got = self.pipelined(d, ["bob@example.test", "mixed.case@example.test"])
            self.assertEqual(got[0].ders(), [self.pki.der("bob")])
            self.assertEqual(got[1].ders(), [self.pki.der("Mixed")])


if __name__ == "__main__":
    unittest.main()
