"""`make install` layout: binaries, library, public header, pkg-config file and man
pages land under DESTDIR/PREFIX, and a program compiled against the installed
header and pkg-config file links and reports the library version."""
import os
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


if __name__ == "__main__":
    unittest.main()
