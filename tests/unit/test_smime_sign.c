/*
 * test_smime_sign.c - unit tests for lib/smime_sign.c, lib/smime_verify.c,
 * lib/smime_vcms.c and lib/smime_sig_io.c: sign and verify round trips (RSA and
 * P-256, detached and opaque, LF and CRLF input, LF output), the structure of
 * what we write (micalg, boundary, CRLF entity, signed attributes), tampering,
 * wrong and missing trust anchors, --no-chain, chains through an intermediate,
 * bare CMS input (DER, PEM, detached), a large message streamed in bounded
 * memory, and the refusals (key mismatch, Ed25519, not signed, malformed,
 * truncated, NUL). Certificates are made at run time (tests/lib/testcert.h);
 * RFC 4134 / examples-cms vectors are read from $SC_INTEROP_DIR.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "smtpcert/smtpcert.h"
#include "smtpcert/smime.h"
#include "key_int.h"
#include "smime_sig_int.h"
#include "testcert.h"

static char dir[512];
static tc_key *ca_key, *rsa_key, *ec_key, *other_ca_key;
static X509 *ca, *other_ca, *inter;
static X509 *rsa_leaf, *ec_leaf, *inter_leaf;
static char ca_file[600], other_ca_file[600];

static const char msg_lf[] =
	"From: Alice <alice@example.test>\n"
	"To: bob@example.test\n"
	"Subject: test\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"X-Mailer: test\n"
	"\n"
	"Hello\n"
	"world, trailing space \n"
	"--not-a-boundary\n";

static char *path_of(const char *name)
{
	static char p[4][700];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static X509 *mkleaf(tc_key *k, X509 *issuer, tc_key *ik, const char *email)
{
	return tc_cert_new(&(struct tc_cert_opts){ .cn = email, .emails = { email },
				   .key_usage = TC_KU_DIGITAL_SIGNATURE | TC_KU_KEY_ENCIPHERMENT,
				   .eku = TC_EKU_EMAIL_PROTECTION }, k, issuer, ik);
}

static int setup(void **state)
{
	char *pem;
	size_t len;

	(void)state;
	tc_tmpdir(dir, sizeof dir);
	ca_key = tc_key_shared(TC_P256);
	other_ca_key = tc_key_new(TC_P256);
	rsa_key = tc_key_shared(TC_RSA2048);
	ec_key = tc_key_new(TC_P256);
	ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Test CA", .is_ca = 1,
				 .key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			 ca_key, NULL, NULL);
	other_ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Other CA", .is_ca = 1,
				       .key_usage = TC_KU_KEY_CERT_SIGN },
			       other_ca_key, NULL, NULL);
	inter = tc_cert_new(&(struct tc_cert_opts){ .cn = "Intermediate", .is_ca = 1,
				    .key_usage = TC_KU_KEY_CERT_SIGN },
			    other_ca_key, ca, ca_key);
	rsa_leaf = mkleaf(rsa_key, ca, ca_key, "alice@example.test");
	ec_leaf = mkleaf(ec_key, ca, ca_key, "alice@example.test");
	inter_leaf = mkleaf(ec_key, inter, other_ca_key, "carol@example.test");
	snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
	snprintf(other_ca_file, sizeof other_ca_file, "%s/other.pem", dir);
	tc_cert_pem(ca, &pem, &len);
	tc_write_file(ca_file, pem, len);
	free(pem);
	tc_cert_pem(other_ca, &pem, &len);
	tc_write_file(other_ca_file, pem, len);
	free(pem);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca);
	X509_free(other_ca);
	X509_free(inter);
	X509_free(rsa_leaf);
	X509_free(ec_leaf);
	X509_free(inter_leaf);
	tc_key_free(ec_key);
	tc_key_free(other_ca_key);
	tc_rmtree(dir);
	return 0;
}

static sc_key *wrap(tc_key *k)
{
	EVP_PKEY *pk = tc_key_pkey(k);
	sc_key *out = NULL;

	assert_int_equal(EVP_PKEY_up_ref(pk), 1);
	assert_int_equal(key_wrap(pk, NULL, &out), SC_OK);
	return out;
}

static sc_cert *certs(X509 *const *x, size_t n)
{
	char *pem;
	size_t len;
	sc_cert *c = NULL;

	tc_chain_pem(x, n, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	free(pem);
	return c;
}

static int open_in(const void *data, size_t len)
{
	int fd;

	tc_write_file(path_of("in"), data, len);
	fd = open(path_of("in"), O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

static int open_out(const char *name)
{
	int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	return fd;
}

static char *slurp(const char *name, size_t *len)
{
	char *s;

	assert_int_equal(tc_read_file(path_of(name), &s, len), 0);
	return s;
}

static sc_status do_sign(const char *msg, size_t len, tc_key *k, X509 *const *x, size_t nx,
			 int opaque, unsigned flags, char **out, size_t *outlen)
{
	sc_key *key = wrap(k);
	sc_cert *c = certs(x, nx);
	int in = open_in(msg, len), fd = open_out("signed");
	char err[256] = "";
	sc_status st = sc_smime_sign(in, fd, key, c, opaque, flags, err, sizeof err);

	if (st != SC_OK)
		print_message("sign: %s\n", err);
	close(in);
	close(fd);
	sc_key_free(key);
	sc_cert_free(c);
	*out = slurp("signed", outlen);
	return st;
}

static sc_status do_verify(const char *data, size_t len, const char *cafile, int no_chain,
			   struct sc_smime_signer *s, char **out, size_t *outlen, char *err,
			   size_t errlen)
{
	int in = open_in(data, len), fd = open_out("verified");
	sc_status st = sc_smime_verify(in, fd, cafile, no_chain, s, err, errlen);

	close(in);
	close(fd);
	*out = slurp("verified", outlen);
	return st;
}

/* msg_lf with CRLF line ends: what a verified message reads back as. */
static char *crlf(const char *s, size_t *len)
{
	char *o = malloc(2 * strlen(s) + 1);
	size_t k = 0;

	assert_non_null(o);
	for (; *s; s++) {
		if (*s == '\n')
			o[k++] = '\r';
		o[k++] = *s;
	}
	o[k] = '\0';
	*len = k;
	return o;
}

static void roundtrip(tc_key *k, X509 *leaf, int opaque, const char *msg, unsigned flags)
{
	char *sig, *out, *want, err[256] = "";
	size_t siglen, outlen, wantlen;
	struct sc_smime_signer s;

	assert_int_equal(do_sign(msg, strlen(msg), k, &leaf, 1, opaque, flags, &sig, &siglen),
			 SC_OK);
	if (opaque)
		assert_non_null(strstr(sig, "application/pkcs7-mime; smime-type=signed-data"));
	else
		assert_non_null(strstr(sig, "micalg=sha-256"));
	assert_true(!!strstr(sig, "\r\n") == !(flags & SC_SMIME_OUT_LF));
	assert_int_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err, sizeof err),
			 SC_OK);
	want = crlf(msg_lf, &wantlen);
	assert_int_equal(outlen, wantlen);
	assert_memory_equal(out, want, wantlen);
	assert_string_equal(s.email, "alice@example.test");
	assert_string_equal(s.digest, "sha256");
	assert_int_equal(s.chain_verified, 1);
	assert_int_equal(s.from_match, 1);
	assert_non_null(strstr(s.subject, "alice@example.test"));
	free(sig);
	free(out);
	free(want);
}

static void test_roundtrip_rsa_detached(void **state)
{
	(void)state;
	roundtrip(rsa_key, rsa_leaf, 0, msg_lf, 0);
}

static void test_roundtrip_rsa_opaque(void **state)
{
	(void)state;
	roundtrip(rsa_key, rsa_leaf, 1, msg_lf, 0);
}

static void test_roundtrip_p256_detached(void **state)
{
	(void)state;
	roundtrip(ec_key, ec_leaf, 0, msg_lf, 0);
}

static void test_roundtrip_p256_opaque(void **state)
{
	(void)state;
	roundtrip(ec_key, ec_leaf, 1, msg_lf, 0);
}

static void test_roundtrip_crlf_input_lf_output(void **state)
{
	size_t len;
	char *m = crlf(msg_lf, &len);

	(void)state;
	roundtrip(ec_key, ec_leaf, 0, m, 0);
	roundtrip(ec_key, ec_leaf, 0, msg_lf, SC_SMIME_OUT_LF);
	roundtrip(ec_key, ec_leaf, 1, m, SC_SMIME_OUT_LF);
	free(m);
}

/* A header-only message without a final newline: every field keeps its own
 * line (the last one used to run into the MIME-Version line), outer and inner,
 * and it verifies. */
static void test_header_only_no_newline(void **state)
{
	static const char *const msgs[] = { "Subject: x", "Subject: x\nX-Inner: y" };
	char *sig, *out, err[256] = "";
	size_t siglen, outlen;
	struct sc_smime_signer s;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		for (int opaque = 0; opaque < 2; opaque++) {
			assert_int_equal(do_sign(msgs[i], strlen(msgs[i]), ec_key, &ec_leaf, 1,
						 opaque, 0, &sig, &siglen), SC_OK);
			assert_true(!strncmp(sig, "Subject: x\r\nMIME-Version: 1.0\r\n",
					     strlen("Subject: x\r\nMIME-Version: 1.0\r\n")));
			assert_int_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err,
						   sizeof err), SC_OK);
			assert_non_null(strstr(out, "Subject: x\r\n"));
			if (i == 1)
				assert_non_null(strstr(out, "X-Inner: y\r\n"));
			free(sig);
			free(out);
		}
	}
}

/* What we write: outer routing fields, the entity in CRLF, a fresh boundary,
 * and a SignerInfo with signingTime and SMIMECapabilities (RFC 8551 2.5). */
static void test_structure(void **state)
{
	char *a, *b, *p, bnd[128];
	size_t alen, blen;
	const char *q;
	BIO *bio;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;

	(void)state;
	assert_int_equal(do_sign(msg_lf, strlen(msg_lf), ec_key, &ec_leaf, 1, 0, 0, &a, &alen),
			 SC_OK);
	assert_int_equal(do_sign(msg_lf, strlen(msg_lf), ec_key, &ec_leaf, 1, 0, 0, &b, &blen),
			 SC_OK);
	assert_true(!strncmp(a, "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
				"Subject: test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed;",
			     strlen("From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
				    "Subject: test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed;")));
	assert_non_null(strstr(a, "protocol=\"application/pkcs7-signature\""));
	p = strstr(a, "boundary=\"");
	assert_non_null(p);
	q = strchr(p + 10, '"');
	assert_non_null(q);
	snprintf(bnd, sizeof bnd, "%.*s", (int)(q - (p + 10)), p + 10);
	assert_true(strlen(bnd) > 30);
	assert_null(strstr(b, bnd)); /* random per message */
	/* the entity: inner fields (X-Mailer too), CRLF, then the delimiter */
	assert_non_null(strstr(a, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
				  "charset=utf-8\r\nX-Mailer: test\r\n\r\nHello\r\n"
				  "world, trailing space \r\n--not-a-boundary\r\n\r\n--"));
	assert_non_null(strstr(a, "Content-Type: application/pkcs7-signature"));
	/* the signature itself */
	p = strstr(a, "filename=\"smime.p7s\"\r\n\r\n");
	assert_non_null(p);
	bio = BIO_new_mem_buf(p + 24, (int)(alen - (size_t)(p + 24 - a)));
	{
		BIO *b64 = BIO_new(BIO_f_base64());

		bio = BIO_push(b64, bio);
	}
	cms = d2i_CMS_bio(bio, NULL);
	assert_non_null(cms);
	assert_int_equal(CMS_is_detached(cms), 1);
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1) >= 0);
	CMS_ContentInfo_free(cms);
	BIO_free_all(bio);
	free(a);
	free(b);
}

static void test_tampered(void **state)
{
	char *sig, *out, *p, err[256] = "";
	size_t siglen, outlen;
	struct sc_smime_signer s;

	(void)state;
	for (int opaque = 0; opaque < 2; opaque++) {
		assert_int_equal(do_sign(msg_lf, strlen(msg_lf), rsa_key, &rsa_leaf, 1, opaque, 0,
					 &sig, &siglen), SC_OK);
		if (opaque) {
			/* flip a base64 character in the middle of the eContent */
			p = strstr(sig, "smime.p7m\"\r\n\r\n") + 20 + 200;
			*p = *p == 'A' ? 'B' : 'A';
		} else {
			p = strstr(sig, "Hello");
			assert_non_null(p);
			p[1] = 'a';
		}
		assert_int_not_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err,
					       sizeof err), SC_OK);
		assert_int_equal(outlen, 0); /* nothing unverified is written */
		free(sig);
		free(out);
	}
	/* detached: a changed body is exactly a BAD signature */
	assert_int_equal(do_sign(msg_lf, strlen(msg_lf), rsa_key, &rsa_leaf, 1, 0, 0, &sig,
				 &siglen), SC_OK);
	p = strstr(sig, "world");
	p[0] = 'W';
	assert_int_equal(do_verify(sig, siglen, NULL, 1, &s, &out, &outlen, err, sizeof err),
			 SC_ERR_VERIFY);
	assert_non_null(strstr(err, "BAD signature"));
	free(sig);
	free(out);
}

static void test_wrong_ca_and_no_chain(void **state)
{
	char *sig, *out, err[256] = "";
	size_t siglen, outlen;
	struct sc_smime_signer s;

	(void)state;
	assert_int_equal(do_sign(msg_lf, strlen(msg_lf), ec_key, &ec_leaf, 1, 0, 0, &sig, &siglen),
			 SC_OK);
	assert_int_equal(do_verify(sig, siglen, other_ca_file, 0, &s, &out, &outlen, err,
				   sizeof err), SC_ERR_VERIFY);
	assert_non_null(strstr(err, "not trusted"));
	assert_int_equal(outlen, 0);
	free(out);
	assert_int_equal(do_verify(sig, siglen, other_ca_file, 1, &s, &out, &outlen, err,
				   sizeof err), SC_OK);
	assert_int_equal(s.chain_verified, 0);
	assert_true(outlen > 0);
	free(out);
	assert_int_equal(do_verify(sig, siglen, path_of("missing.pem"), 0, &s, &out, &outlen, err,
				   sizeof err), SC_ERR_IO);
	free(out);
	free(sig);
}

/* The intermediate travels in the signature; the CA file holds only the root. */
static void test_chain_included(void **state)
{
	X509 *chain[2] = { inter_leaf, inter };
	char *sig, *out, err[256] = "";
	size_t siglen, outlen;
	struct sc_smime_signer s;
	const char *m = "From: carol@example.test\nSubject: x\n\nbody\n";

	(void)state;
	assert_int_equal(do_sign(m, strlen(m), ec_key, chain, 2, 0, 0, &sig, &siglen), SC_OK);
	assert_int_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err, sizeof err),
			 SC_OK);
	assert_int_equal(s.chain_verified, 1);
	assert_string_equal(s.email, "carol@example.test");
	free(sig);
	free(out);
	/* without the intermediate the path does not build */
	assert_int_equal(do_sign(m, strlen(m), ec_key, chain, 1, 0, 0, &sig, &siglen), SC_OK);
	assert_int_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err, sizeof err),
			 SC_ERR_VERIFY);
	free(sig);
	free(out);
}

static void test_from_mismatch(void **state)
{
	const char *m = "From: mallory@example.test\nSubject: x\n\nbody\n";
	char *sig, *out, err[256];
	size_t siglen, outlen;
	struct sc_smime_signer s;

	(void)state;
	assert_int_equal(do_sign(m, strlen(m), ec_key, &ec_leaf, 1, 0, 0, &sig, &siglen), SC_OK);
	assert_int_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err, sizeof err),
			 SC_OK);
	assert_int_equal(s.from_match, 0);
	free(sig);
	free(out);
	m = "Subject: no from\n\nbody\n";
	assert_int_equal(do_sign(m, strlen(m), ec_key, &ec_leaf, 1, 1, 0, &sig, &siglen), SC_OK);
	assert_int_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err, sizeof err),
			 SC_OK);
	assert_int_equal(s.from_match, -1);
	/* no body at all and no MIME header inside: an empty entity header */
	assert_non_null(strstr(out, "Subject: no from\r\nMIME-Version: 1.0\r\n\r\nbody\r\n"));
	free(sig);
	free(out);
}

static void test_sign_refusals(void **state)
{
	tc_key *ed = tc_key_new(TC_ED25519);
	X509 *edx = mkleaf(ed, ca, ca_key, "ed@example.test");
	char *out, err[256] = "";
	size_t outlen;
	sc_key *key;
	sc_cert *c;
	int in, fd;

	(void)state;
	assert_int_equal(do_sign(msg_lf, strlen(msg_lf), rsa_key, &ec_leaf, 1, 0, 0, &out,
				 &outlen), SC_ERR_MISMATCH);
	free(out);
	assert_int_equal(do_sign(msg_lf, strlen(msg_lf), ed, &edx, 1, 0, 0, &out, &outlen),
			 SC_ERR_UNSUPPORTED);
	free(out);
	/* header errors: NUL, over-long line */
	assert_int_equal(do_sign("From: a\0b\n\nx\n", 13, ec_key, &ec_leaf, 1, 0, 0, &out,
				 &outlen), SC_ERR_SYNTAX);
	free(out);
	{
		char *big = malloc(2000);

		memset(big, 'a', 2000);
		memcpy(big, "X-Long: ", 8);
		big[1998] = '\n';
		big[1999] = '\n';
		assert_int_equal(do_sign(big, 2000, ec_key, &ec_leaf, 1, 0, 0, &out, &outlen),
				 SC_ERR_TOO_LONG);
		free(out);
		free(big);
	}
	/* bad arguments, unwritable output */
	key = wrap(ec_key);
	c = certs(&ec_leaf, 1);
	assert_int_equal(sc_smime_sign(-1, 1, key, c, 0, 0, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_smime_sign(0, 1, NULL, c, 0, 0, err, sizeof err), SC_ERR_ARG);
	in = open_in(msg_lf, strlen(msg_lf));
	fd = open(path_of("in"), O_RDONLY);
	assert_int_equal(sc_smime_sign(in, fd, key, c, 0, 0, err, sizeof err), SC_ERR_IO);
	close(in);
	close(fd);
	sc_key_free(key);
	sc_cert_free(c);
	X509_free(edx);
	tc_key_free(ed);
}

static void expect_verify(const char *data, size_t len, sc_status want, const char *msg)
{
	char *out, err[256] = "";
	size_t outlen;
	struct sc_smime_signer s;

	sc_status st = do_verify(data, len, ca_file, 0, &s, &out, &outlen, err, sizeof err);

	if (st != want)
		fail_msg("status %d (%s), want %d", st, err, want);
	if (msg && !strstr(err, msg))
		fail_msg("error '%s' lacks '%s'", err, msg);
	assert_int_equal(outlen, 0);
	free(out);
}

static void test_verify_refusals(void **state)
{
	char *sig, *p;
	size_t siglen;
	static const char enc[] = "Content-Type: application/pkcs7-mime; "
				  "smime-type=enveloped-data\n\nMIIB\n";
	static const char pgp[] = "Content-Type: multipart/signed; boundary=x; "
				  "protocol=\"application/pgp-signature\"\n\n--x\n\nb\n--x--\n";

	(void)state;
	expect_verify(msg_lf, strlen(msg_lf), SC_ERR_UNSUPPORTED, "not a signed message");
	expect_verify("Subject: x\n\nbody\n", 17, SC_ERR_UNSUPPORTED, "no Content-Type");
	expect_verify(enc, strlen(enc), SC_ERR_UNSUPPORTED, "decrypt it first");
	expect_verify(pgp, strlen(pgp), SC_ERR_UNSUPPORTED, "not S/MIME");
	expect_verify("Content-Type: multipart/signed\n\n", 32, SC_ERR_SYNTAX, "boundary");
	expect_verify("Content-Type: multipart/signed; boundary=x\n\nno parts\n", 53,
		      SC_ERR_SYNTAX, "truncated");
	expect_verify("", 0, SC_ERR_UNSUPPORTED, NULL);
	expect_verify("\x30\x03\x02\x01\x00", 5, SC_ERR_SYNTAX, "not a CMS");
	expect_verify("-----BEGIN CMS-----\nAAAA\n-----END CMS-----\n", 43, SC_ERR_SYNTAX, NULL);
	expect_verify("Content-Type: multi\0part/signed\n\n", 33, SC_ERR_SYNTAX, NULL);
	/* no Content-Transfer-Encoding: base64 all the same */
	expect_verify("Content-Type: application/pkcs7-mime\n\n!!!!\n", 43, SC_ERR_ENCODING,
		      "signed-data body");
	expect_verify("Content-Type: application/pkcs7-mime\nContent-Transfer-Encoding: binary\n"
		      "\n!!!!\n", 77, SC_ERR_SYNTAX, "not a CMS");
	expect_verify("Content-Type: application/pkcs7-mime\nContent-Transfer-Encoding: base64\n"
		      "\nMIIB-\n", 74, SC_ERR_ENCODING, "signed-data body");

	assert_int_equal(do_sign(msg_lf, strlen(msg_lf), ec_key, &ec_leaf, 1, 0, 0, &sig,
				 &siglen), SC_OK);
	/* truncated before the closing delimiter */
	p = strstr(sig, "smime.p7s\"\r\n\r\n");
	expect_verify(sig, (size_t)(p - sig) + 40, SC_ERR_SYNTAX, "truncated");
	/* signature part of the wrong type */
	memcpy(strstr(sig, "application/pkcs7-signature;"), "application/pkcs7-signaturX;", 28);
	expect_verify(sig, siglen, SC_ERR_UNSUPPORTED, "not an S/MIME signature");
	free(sig);
	/* non-UTF-8 and 8-bit in the body sign and verify as they are */
	{
		static const char m8[] = "From: alice@example.test\nSubject: x\n\n\xff\xfe\x80 \x01\n";
		char *out, err[256];
		size_t outlen;
		struct sc_smime_signer s;

		assert_int_equal(do_sign(m8, strlen(m8), ec_key, &ec_leaf, 1, 0, 0, &sig, &siglen),
				 SC_OK);
		assert_int_equal(do_verify(sig, siglen, ca_file, 0, &s, &out, &outlen, err,
					   sizeof err), SC_OK);
		assert_non_null(strstr(out, "\r\n\r\n\xff\xfe\x80 \x01\r\n"));
		free(out);
		free(sig);
	}
}

/* Bare CMS from OpenSSL itself: DER opaque, PEM opaque, DER detached. */
static void test_bare_cms(void **state)
{
	static const char content[] = "bare content\n";
	BIO *in = BIO_new_mem_buf(content, (int)strlen(content)), *mem = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms;
	char *der_buf, *out, err[256] = "";
	long derlen;
	size_t outlen;
	struct sc_smime_signer s;
	int sfd, cfd, ofd;

	(void)state;
	cms = CMS_sign(ec_leaf, tc_key_pkey(ec_key), NULL, in, CMS_BINARY);
	assert_non_null(cms);
	assert_int_equal(i2d_CMS_bio(mem, cms), 1);
	derlen = BIO_get_mem_data(mem, &der_buf);
	assert_int_equal(do_verify(der_buf, (size_t)derlen, ca_file, 0, &s, &out, &outlen, err,
				   sizeof err), SC_OK);
	assert_int_equal(outlen, strlen(content));
	assert_memory_equal(out, content, outlen);
	assert_int_equal(s.from_match, -1);
	free(out);
	(void)BIO_reset(mem);
	assert_int_equal(PEM_write_bio_CMS(mem, cms), 1);
	derlen = BIO_get_mem_data(mem, &der_buf);
	assert_int_equal(do_verify(der_buf, (size_t)derlen, ca_file, 0, &s, &out, &outlen, err,
				   sizeof err), SC_OK);
	assert_memory_equal(out, content, outlen);
	free(out);
	CMS_ContentInfo_free(cms);

	(void)BIO_reset(in);
	cms = CMS_sign(rsa_leaf, tc_key_pkey(rsa_key), NULL, in, CMS_BINARY | CMS_DETACHED);
	assert_non_null(cms);
	(void)BIO_reset(mem);
	assert_int_equal(i2d_CMS_bio(mem, cms), 1);
	derlen = BIO_get_mem_data(mem, &der_buf);
	/* detached without content: refused */
	expect_verify(der_buf, (size_t)derlen, SC_ERR_UNSUPPORTED, "without its content");
	tc_write_file(path_of("sig.der"), der_buf, (size_t)derlen);
	tc_write_file(path_of("content"), content, strlen(content));
	for (int round = 0; round < 2; round++) {
		if (round)
			tc_write_file(path_of("content"), "changed\n", 8);
		sfd = open(path_of("sig.der"), O_RDONLY);
		cfd = open(path_of("content"), O_RDONLY);
		ofd = open_out("verified");
		assert_int_equal(sc_smime_verify_detached(sfd, cfd, ofd, ca_file, 0, &s, err,
							  sizeof err),
				 round ? SC_ERR_VERIFY : SC_OK);
		close(sfd);
		close(cfd);
		close(ofd);
		out = slurp("verified", &outlen);
		if (!round)
			assert_memory_equal(out, content, outlen);
		else
			assert_int_equal(outlen, 0);
		free(out);
	}
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(mem);
}

/* 24 MiB through sign (both forms) and verify: the resident set must not grow
 * by the message size (the implementation streams; only the opaque verify
 * buffers, and is not run here). */
static void test_big_streamed(void **state)
{
	const size_t total = 24u << 20;
	char line[100];
	struct rusage ru0, ru1;
	struct sc_smime_signer s;
	sc_key *key = wrap(ec_key);
	sc_cert *c = certs(&ec_leaf, 1);
	char err[256] = "";
	struct stat st;
	int in, fd;
	FILE *f = fopen(path_of("big"), "w");

	(void)state;
	assert_non_null(f);
	fputs("From: alice@example.test\nSubject: big\n\n", f);
	memset(line, 'x', sizeof line);
	line[sizeof line - 1] = '\n';
	for (size_t n = 0; n < total; n += sizeof line)
		assert_int_equal(fwrite(line, 1, sizeof line, f), sizeof line);
	fclose(f);
	getrusage(RUSAGE_SELF, &ru0);
	in = open(path_of("big"), O_RDONLY);
	fd = open_out("big.signed");
	assert_int_equal(sc_smime_sign(in, fd, key, c, 0, 0, err, sizeof err), SC_OK);
	close(in);
	close(fd);
	/* opaque signing streams too (BER with indefinite lengths) */
	in = open(path_of("big"), O_RDONLY);
	fd = open_out("big.p7m");
	assert_int_equal(sc_smime_sign(in, fd, key, c, 1, 0, err, sizeof err), SC_OK);
	close(in);
	close(fd);
	assert_int_equal(stat(path_of("big.p7m"), &st), 0);
	assert_true((size_t)st.st_size > total * 4 / 3);
	in = open(path_of("big.signed"), O_RDONLY);
	fd = open_out("big.out");
	assert_int_equal(sc_smime_verify(in, fd, ca_file, 0, &s, err, sizeof err), SC_OK);
	close(in);
	close(fd);
	getrusage(RUSAGE_SELF, &ru1);
	assert_int_equal(stat(path_of("big.out"), &st), 0);
	/* CRLF adds one octet per line */
	assert_int_equal((size_t)st.st_size,
			 strlen("From: alice@example.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n\r\n") +
			 (total + sizeof line - 1) / sizeof line * (sizeof line + 1));
	assert_true((size_t)(ru1.ru_maxrss - ru0.ru_maxrss) * 1024 < total / 2);
	sc_key_free(key);
	sc_cert_free(c);
}

static char *interop(const char *rel)
{
	static char p[1024];
	const char *d = getenv("SC_INTEROP_DIR");

	snprintf(p, sizeof p, "%s/%s", d ? d : "../../shared/interop", rel);
	return access(p, R_OK) == 0 ? p : NULL;
}

static void test_interop_vectors(void **state)
{
	char *data, *out, err[256] = "", ca_p[1024];
	size_t len, outlen;
	struct sc_smime_signer s;
	const char *p;

	(void)state;
	if (!(p = interop("rfc4134/4.8.eml")))
		fail_msg("interop vectors missing: set SC_INTEROP_DIR");
	assert_int_equal(tc_read_file(p, &data, &len), 0);
	snprintf(ca_p, sizeof ca_p, "%s", interop("rfc4134/pem/CarlDSSSelf.pem"));
	assert_int_equal(do_verify(data, len, ca_p, 0, &s, &out, &outlen, err, sizeof err),
			 SC_OK);
	assert_string_equal(s.digest, "sha1");
	assert_int_equal(s.chain_verified, 1);
	assert_true(outlen > 30);
	assert_memory_equal(out + outlen - 30, "\r\nThis is some sample content.", 30);
	free(out);
	free(data);

	assert_int_equal(tc_read_file(interop("examples-cms/unsupported-by-openssl-3.0/"
					      "signedByCarlosEd25519.pem"), &data, &len), 0);
	assert_int_equal(do_verify(data, len, NULL, 1, &s, &out, &outlen, err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "Ed25519"));
	free(out);
	free(data);

	assert_int_equal(tc_read_file(interop("examples-cms/signedByAliceRSAPSS.pem"), &data,
				      &len), 0);
	snprintf(ca_p, sizeof ca_p, "%s", interop("rfc9216/ca.rsa.crt"));
	assert_int_equal(do_verify(data, len, ca_p, 0, &s, &out, &outlen, err, sizeof err),
			 SC_OK);
	assert_string_equal(s.email, "alice@smime.example");
	assert_int_equal(outlen, 28);
	assert_memory_equal(out, "This is some sample content.", 28);
	free(out);
	free(data);
}

/* lib/smime_sig_io.c: Content-Type parameters and canonicalisation. */
static void test_io_helpers(void **state)
{
	char type[64], v[80], dst[64];
	int prev_cr = 0;
	size_t n;

	(void)state;
	assert_int_equal(sig_ct_type(" (c) Multipart/Signed ; x=y", type, sizeof type), SC_OK);
	assert_string_equal(type, "multipart/signed");
	assert_int_equal(sig_ct_type("", type, sizeof type), SC_ERR_SYNTAX);
	assert_int_equal(sig_ct_type("multipart/signed", type, 5), SC_ERR_TOO_LONG);
	static const char *ct = "multipart/signed; (comment) Protocol = "
				"\"application/pkcs7-signature\"; micalg=sha-256;\r\n\t"
				"boundary=\"a\\\"b c\"";
	assert_int_equal(sig_ct_param(ct, "protocol", v, sizeof v), SC_OK);
	assert_string_equal(v, "application/pkcs7-signature");
	assert_int_equal(sig_ct_param(ct, "MICALG", v, sizeof v), SC_OK);
	assert_string_equal(v, "sha-256");
	assert_int_equal(sig_ct_param(ct, "boundary", v, sizeof v), SC_OK);
	assert_string_equal(v, "a\"b c");
	assert_int_equal(sig_ct_param(ct, "charset", v, sizeof v), SC_ERR_NOT_FOUND);
	assert_int_equal(sig_ct_param(ct, "boundary", v, 3), SC_ERR_TOO_LONG);
	assert_int_equal(sig_ct_param("a/b; x", "x", v, sizeof v), SC_ERR_SYNTAX);
	assert_int_equal(sig_ct_param("a/b; x=\"open", "x", v, sizeof v), SC_ERR_SYNTAX);
	n = sig_canon("a\nb\r\nc\rd\r", 9, &prev_cr, dst);
	n += sig_canon("\ne\n", 3, &prev_cr, dst + n);
	assert_int_equal(n, 14);
	assert_memory_equal(dst, "a\r\nb\r\nc\rd\r\ne\r\n", 14);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_rsa_detached),
		cmocka_unit_test(test_roundtrip_rsa_opaque),
		cmocka_unit_test(test_roundtrip_p256_detached),
		cmocka_unit_test(test_roundtrip_p256_opaque),
		cmocka_unit_test(test_roundtrip_crlf_input_lf_output),
		cmocka_unit_test(test_header_only_no_newline),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_wrong_ca_and_no_chain),
		cmocka_unit_test(test_chain_included),
		cmocka_unit_test(test_from_mismatch),
		cmocka_unit_test(test_sign_refusals),
		cmocka_unit_test(test_verify_refusals),
		cmocka_unit_test(test_bare_cms),
		cmocka_unit_test(test_big_streamed),
		cmocka_unit_test(test_interop_vectors),
		cmocka_unit_test(test_io_helpers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
