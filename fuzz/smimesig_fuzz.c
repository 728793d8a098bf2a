/*
 * smimesig_fuzz.c - fuzz target for S/MIME verification (lib/smime_verify.c,
 * lib/smime_vcms.c, lib/smime_sig_io.c): the input is a message (or a bare CMS
 * structure) fed to sc_smime_verify() through a memory file, signature only
 * (no chain: no trust store is read per input). The first octet picks the mode:
 * 'D' splits the rest in two halves for sc_smime_verify_detached().
 *
 * Checks beyond "no crash, no leak": a failure writes nothing to the output, and
 * the status is one the header documents.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <smtpcert/smtpcert.h>
#include <smtpcert/smime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_fd(const char *name, const uint8_t *p, size_t n)
{
	int fd = memfd_create(name, 0);

	if (fd < 0)
		abort();
	if (n && write(fd, p, n) != (ssize_t)n)
		abort();
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

static int status_documented(sc_status st)
{
	switch (st) {
	case SC_OK: case SC_ERR_VERIFY: case SC_ERR_UNSUPPORTED: case SC_ERR_SYNTAX:
	case SC_ERR_TOO_LONG: case SC_ERR_TOO_MANY: case SC_ERR_ENCODING: case SC_ERR_IO:
	case SC_ERR_NOMEM:
		return 1;
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_smime_signer s;
	char err[512];
	int out = memfd_create("out", 0);
	sc_status st;

	if (out < 0)
		abort();
	if (size > 0 && data[0] == 'D') {
		size_t half = (size - 1) / 2;
		int sig = fuzz_fd("sig", data + 1, half);
		int content = fuzz_fd("content", data + 1 + half, size - 1 - half);

		st = sc_smime_verify_detached(sig, content, out, NULL, 1, &s, err, sizeof err);
		close(sig);
		close(content);
	} else {
		int in = fuzz_fd("in", data, size);

		st = sc_smime_verify(in, out, NULL, 1, &s, err, sizeof err);
		close(in);
	}
	if (!status_documented(st))
		abort();
	if (st != SC_OK && lseek(out, 0, SEEK_END) != 0)
		abort();
	close(out);
	return 0;
}
