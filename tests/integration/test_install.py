"""`make install` layout: binaries, library, public header, pkg-config file and man
pages land under DESTDIR/PREFIX, and a program compiled against the installed
header and pkg-config file links and reports the library version. Installing one
build tree under two prefixes in turn: each install's libsmtpcert.pc and
smtpcertd.service name its own prefix, never the configured one nor DESTDIR."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

BIN_DIR = os.environ.get("SC_BIN_DIR", "")
BUILD_DIR = os.path.dirname(BIN_DIR.rstrip("/"))
SOURCE_DIR = os.environ.get("SC_SOURCE_DIR", "")


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sc-install-")
        cls.dest = os.path.join(cls.tmp, "dest")
        env = dict(os.environ, DESTDIR=cls.dest)
        cls.proc = subprocess.run(
            ["cmake", "--install", BUILD_DIR, "--prefix", "/usr/local"],
            env=env, capture_output=True, text=True, timeout=120)
        cls.root = os.path.join(cls.dest, "usr", "local")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_install_succeeds(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)

    def test_files_present(self):
        libdir = None
        for cand in ("lib", "lib64", "lib/x86_64-linux-gnu"):
            if os.path.exists(os.path.join(self.root, cand, "libsmtpcert.a")):
                libdir = cand
        self.assertIsNotNone(libdir, "libsmtpcert.a not installed")
        expected = [
            "sbin/smtpcertd", "bin/smtpcert",
            "include/smtpcert/smtpcert.h", "include/smtpcert/repo.h",
            libdir + "/pkgconfig/libsmtpcert.pc",
            "share/man/man8/smtpcertd.8", "share/man/man5/smtpcertd.conf.5",
            "share/man/man1/smtpcert.1", "share/man/man3/libsmtpcert.3",
        ]
        missing = [p for p in expected if not os.path.exists(os.path.join(self.root, p))]
        self.assertEqual(missing, [])
        self.assertTrue(os.access(os.path.join(self.root, "sbin/smtpcertd"), os.X_OK))

    def test_pkgconfig_program_builds(self):
        libdir = next(c for c in ("lib", "lib64", "lib/x86_64-linux-gnu")
                      if os.path.isdir(os.path.join(self.root, c, "pkgconfig")))
        pcdir = os.path.join(self.root, libdir, "pkgconfig")
        src = os.path.join(self.tmp, "v.c")
        with open(src, "w") as f:
            f.write('#include <smtpcert/smtpcert.h>\n#include <stdio.h>\n#include <string.h>\n'
                    'int main(void){ printf("%s\\n", smtpcert_version());\n'
                    ' return strcmp(smtpcert_version(), SMTPCERT_VERSION_STRING) != 0; }\n')
        env = dict(os.environ, PKG_CONFIG_PATH=pcdir, PKG_CONFIG_SYSROOT_DIR=self.dest)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "--static", "libsmtpcert"],
                               env=env, capture_output=True, text=True)
        self.assertEqual(flags.returncode, 0, flags.stderr)
        exe = os.path.join(self.tmp, "v")
        extra = []
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            if "SC_SANITIZE:BOOL=ON" in f.read():
                # an instrumented library needs the sanitizer runtimes in the program
                extra = ["-fsanitize=address,undefined"]
        cc = subprocess.run(["cc", "-o", exe, src] + flags.stdout.split() + extra,
                            capture_output=True, text=True)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        run = subprocess.run([exe], capture_output=True, text=True,
                             env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(self.root, libdir)))
        self.assertEqual(run.returncode, 0)
        self.assertRegex(run.stdout.strip(), r"^\d+\.\d+\.\d+$")


def installed_files(top):
    """Every file under top, as paths relative to it."""
    found = []
    for d, _, names in os.walk(top):
        found += [os.path.relpath(os.path.join(d, n), top) for n in names]
    return found


class PrefixTest(unittest.TestCase):
    """`make install PREFIX=P DESTDIR=D` twice from the same build tree, as after a
    `make` with the default prefix: the text of the configured files follows P.
    The prefixes differ from each other, so at most one can be the configured one."""
    PREFIXES = ("/opt/sc-prefix-one", "/usr")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sc-prefix-")
        # the Makefile's own install recipe on the build tree under test; -o build:
        # this tree is already built, and rebuilding it would disturb the tests
        # running from it at the same time
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR")}
        cls.procs = []
        for i, prefix in enumerate(cls.PREFIXES):
            dest = os.path.join(cls.tmp, "dest%d" % i)
            cls.procs.append((prefix, dest, subprocess.run(
                ["make", "-C", SOURCE_DIR, "-o", "build", "install",
                 "BUILD=" + BUILD_DIR, "PREFIX=" + prefix, "DESTDIR=" + dest],
                env=env, capture_output=True, text=True, timeout=120)))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_install(self, prefix, dest, proc):
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        # DESTDIR staging: everything lands under DEST/PREFIX (or under DEST/the unit
        # directory, when one was configured as an absolute path) and nowhere else
        files = installed_files(dest)
        roots = [prefix]
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            unitdir = re.search(r"^SC_SYSTEMD_UNITDIR:\w+=(.*)$", f.read(), re.M)
        if unitdir and unitdir.group(1).startswith("/"):
            roots.append(unitdir.group(1).rstrip("/"))
        self.assertEqual([f for f in files
                          if not any(("/" + f).startswith(r + "/") for r in roots)], [])
        pcs = [f for f in files if f.endswith("/pkgconfig/libsmtpcert.pc")]
        units = [f for f in files if f.endswith("/smtpcertd.service")]
        self.assertEqual(len(pcs), 1, files)
        self.assertEqual(len(units), 1, files)

        # the .pc: prefix, and libdir/includedir where this install put the library
        # and the headers, as pkg-config itself reads them (no sysroot)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(os.path.join(dest, pcs[0])))
        env.pop("PKG_CONFIG_SYSROOT_DIR", None)
        got = {}
        for var in ("prefix", "libdir", "includedir"):
            r = subprocess.run(["pkg-config", "--variable=" + var, "libsmtpcert"],
                               env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            got[var] = r.stdout.strip()
        libdir = "/" + os.path.dirname(os.path.dirname(pcs[0]))
        self.assertEqual(got, {"prefix": prefix, "libdir": libdir,
                               "includedir": prefix + "/include"})
        self.assertTrue(libdir.startswith(prefix + "/"), libdir)
        self.assertTrue(os.path.exists(dest + libdir + "/libsmtpcert.a"), libdir)
        self.assertTrue(os.path.exists(dest + got["includedir"] + "/smtpcert/smtpcert.h"))

        # the unit: both ExecStartPre and ExecStart run this install's smtpcertd
        with open(os.path.join(dest, units[0])) as f:
            unit = f.read()
        exes = re.findall(r"^ExecStart(?:Pre)?=(\S+)", unit, re.M)
        self.assertEqual(exes, [prefix + "/sbin/smtpcertd"] * 2, unit)
        self.assertTrue(os.access(dest + exes[0], os.X_OK), exes[0])
        self.assertNotIn(dest, unit)

    def test_first_prefix(self):
        self.check_install(*self.procs[0])

    def test_second_prefix(self):
        """the install that follows another one from the same tree"""
        self.check_install(*self.procs[1])


if __name__ == "__main__":
    unittest.main()
