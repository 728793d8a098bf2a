/*
 * smime_fuzz.c - fuzz target for the S/MIME decryption path (lib/smime_decrypt.c
 * and what it uses: the header reader, the Content-Type checks, the base64
 * body decoder, the DER walk that names the content-encryption algorithm, the
 * recipient match and OpenSSL's CMS parser) with a fixed test key.
 *
 * Input that starts with 0x30 is a CMS DER structure: of even length it is
 * wrapped in an S/MIME header (base64), of odd length it goes in bare, so the
 * CMS side is reached directly either way; anything else is the whole message. Invariants (abort() when broken): only the documented
 * statuses, a message for every failure, and no output unless it succeeded.
 *
 * The key is a P-256 test key made for this target only (it protects nothing;
 * the certificate is valid until the year 9966, and decryption does not check
 * validity anyway). Seeds in fuzz/corpus/smime/ are encrypted to it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <smtpcert/smtpcert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5gWR5BrMTvwTuGka\n"
	"/WfNHKNXVOj3n5kYUX4c1wkbOYGhRANCAARsmBDXXGXV8fDXftUHzkkrRA13JVz2\n"
	"lhrqmLRtNsyDoPO7/dKXEy+e6d2QsmYkXvehn1Q8REYzpq7xdIsz90q+\n"
	"-----END PRIVATE KEY-----\n";

static const char fuzz_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIB0TCCAXigAwIBAgIUez7FPOEMb1LOOhoxjUVRG3LCDgIwCgYIKoZIzj0EAwIw\n"
	"GDEWMBQGA1UEAwwNc210cGNlcnQgZnV6ejAgFw0yNjExMjgyMTQ4NTlaGA85OTY2\n"
	"MTEwMzIxNDg1OVowGDEWMBQGA1UEAwwNc210cGNlcnQgZnV6ejBZMBMGByqGSM49\n"
	"AgEGCCqGSM49AwEHA0IABGyYENdcZdXx8Nd+1QfOSStEDXclXPaWGuqYtG02zIOg\n"
	"87v90pcTL57p3ZCyZiRe96GfVDxERjOmrvF0izP3Sr6jgZ0wgZowHQYDVR0OBBYE\n"
	"FCijkFX9epRA0LgnTHOH7gsB3MOgMB8GA1UdIwQYMBaAFCijkFX9epRA0LgnTHOH\n"
	"7gsB3MOgMA8GA1UdEwEB/wQFMAMBAf8wHAYDVR0RBBUwE4ERZnV6ekBleGFtcGxl\n"
	"LnRlc3QwCwYDVR0PBAQDAgMIMBwGCSqGSIb3DQEJDwQPMA0wCwYJYIZIAWUDBAEu\n"
	"MAoGCCqGSM49BAMCA0cAMEQCIHPAQi/nTzy7idEGFoixIFc1FxtnoaSYawiepQPg\n"
	"pKvSAiAcDFKMAHV1R/Bidr0OA7Qz3Tb2/wSXEybZb1y6jfHgww==\n"
	"-----END CERTIFICATE-----\n";

static sc_key *key;
static sc_cert *cert;

static void init(void)
{
	char path[] = "/tmp/smime_fuzz_XXXXXX";
	char err[256];
	int fd;

	if (sc_cert_parse(fuzz_cert, sizeof(fuzz_cert) - 1, &cert) != SC_OK)
		abort();
	fd = mkstemp(path);
	if (fd < 0 || write(fd, fuzz_key, sizeof(fuzz_key) - 1) != (ssize_t)sizeof(fuzz_key) - 1)
		abort();
	close(fd);
	if (sc_key_load(path, &(struct sc_key_opts){ 0 }, &key, err, sizeof err) != SC_OK)
		abort();
	unlink(path);
}

static int memfile(const void *p, size_t n)
{
	int fd = memfd_create("smime-fuzz", 0);

	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n) || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

static const char wrap_hdr[] =
	"From: a@example.test\r\nMIME-Version: 1.0\r\n"
	"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char err[512];
	int in, out;
	sc_status rc;

	if (size > 256 * 1024)
		return 0;
	if (!key)
		init();
	if (size > 0 && data[0] == 0x30 && size % 2 == 0) {
		/* DER: base64 it under an S/MIME header */
		size_t n = sizeof(wrap_hdr) - 1, cap = n + (size + 2) / 3 * 4 + size / 57 * 2 + 8;
		char *m = malloc(cap);

		if (!m)
			abort();
		memcpy(m, wrap_hdr, n);
		for (size_t i = 0; i < size; i += 3) {
			uint32_t v = (uint32_t)data[i] << 16;

			v |= i + 1 < size ? (uint32_t)data[i + 1] << 8 : 0;
			v |= i + 2 < size ? data[i + 2] : 0;
			m[n++] = b64[v >> 18];
			m[n++] = b64[(v >> 12) & 63];
			m[n++] = i + 1 < size ? b64[(v >> 6) & 63] : '=';
			m[n++] = i + 2 < size ? b64[v & 63] : '=';
			if ((i / 3 + 1) % 19 == 0) {
				m[n++] = '\r';
				m[n++] = '\n';
			}
		}
		in = memfile(m, n);
		free(m);
	} else {
		in = memfile(data, size);
	}
	out = memfile("", 0);
	err[0] = '\0';
	rc = sc_smime_decrypt(in, out, key, cert, err, sizeof err);
	switch (rc) {
	case SC_OK:
		break;
	case SC_ERR_UNSUPPORTED:
	case SC_ERR_NOT_FOUND:
	case SC_ERR_CRYPTO:
	case SC_ERR_SYNTAX:
	case SC_ERR_TOO_LONG:
	case SC_ERR_TOO_MANY:
	case SC_ERR_ENCODING:
		if (!err[0] || lseek(out, 0, SEEK_END) != 0)
			abort();
		break;
	default:
		abort();
	}
	close(in);
	close(out);
	return 0;
}
