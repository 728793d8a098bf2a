/*
 * test_smime_encrypt.c - unit tests for lib/smime_encrypt.c and
 * lib/smime_decrypt.c: in-process encrypt/decrypt round trips with test
 * certificates (RSA key transport, P-256 ECDH, several recipients), the cipher
 * choice from SMIMECapabilities (AES-256-GCM authEnveloped-data), the header
 * split and hidden Subject, CRLF/LF input and output, a 50 MB message streamed
 * through a pipe with bounded memory, and the failures: wrong recipient, key not
 * matching the certificate, truncated/corrupted/altered ciphertext, input that
 * is not encrypted, unsupported key types.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <smtpcert/smtpcert.h>
#include "smime_int.h"
#include "testcert.h"

struct party {
	tc_key *k;
	sc_cert *cert;
	sc_key *key;
};

static char tmpdir[512];

/* Add an RFC 4262 SMIMECapabilities extension listing @p nids and re-sign. */
static void add_caps(X509 *x, tc_key *k, const int *nids, size_t n)
{
	STACK_OF(X509_ALGOR) *caps = sk_X509_ALGOR_new_null();
	unsigned char *der = NULL;
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	int len;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(PKCS7_simple_smimecap(caps, nids[i], 0), 1);
	len = i2d_X509_ALGORS(caps, &der);
	assert_true(len > 0);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, len), 1);
	{
		X509_EXTENSION *ext = X509_EXTENSION_create_by_NID(NULL, NID_SMIMECapabilities,
								   0, os);

		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, tc_key_pkey(k), EVP_sha256()) > 0);
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(os);
	sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
}

static void party_init(struct party *p, enum tc_keytype type, const char *email, int gcm)
{
	static const int caps_gcm[] = { NID_aes_256_gcm, NID_aes_128_gcm, NID_aes_256_cbc };
	static const int caps_cbc[] = { NID_aes_256_cbc, NID_aes_128_cbc };
	char path[600], errbuf[256], *pem;
	size_t len;
	X509 *x;

	p->k = tc_key_new(type);
	x = tc_cert_new(&(struct tc_cert_opts){ .cn = email, .emails = { email },
						.eku = TC_EKU_EMAIL_PROTECTION },
			p->k, NULL, NULL);
	if (gcm >= 0)
		add_caps(x, p->k, gcm ? caps_gcm : caps_cbc, gcm ? 3 : 2);
	tc_cert_pem(x, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &p->cert), SC_OK);
	free(pem);
	X509_free(x);
	tc_key_pem(p->k, &pem, &len);
	snprintf(path, sizeof path, "%s/%s.key", tmpdir, email);
	tc_write_file(path, pem, len);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (sc_key_load(path, &(struct sc_key_opts){ 0 }, &p->key, errbuf, sizeof errbuf) != SC_OK)
		fail_msg("sc_key_load: %s", errbuf);
}

static void party_fini(struct party *p)
{
	sc_cert_free(p->cert);
	sc_key_free(p->key);
	tc_key_free(p->k);
}

static struct party alice, bob, carol, dave; /* RSA, P-256 (GCM), RSA (GCM), P-256 */

static int setup(void **state)
{
	(void)state;
	tc_tmpdir(tmpdir, sizeof tmpdir);
	party_init(&alice, TC_RSA2048, "alice@example.test", -1);
	party_init(&bob, TC_P256, "bob@example.test", 1);
	party_init(&carol, TC_RSA2048, "carol@example.test", 1);
	party_init(&dave, TC_P256, "dave@example.test", 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	party_fini(&alice);
	party_fini(&bob);
	party_fini(&carol);
	party_fini(&dave);
	tc_rmtree(tmpdir);
	return 0;
}

/* An in-memory file holding @p len octets, positioned at the start. */
static int memfile(const void *data, size_t len)
{
	int fd = memfd_create("smime-test", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* The whole content of @p fd (NUL-terminated, malloc'ed). */
static char *slurp(int fd, size_t *len)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)n + 1);

	assert_non_null(buf);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(read(fd, buf, (size_t)n), (ssize_t)n);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static sc_status encrypt(const char *msg, const struct party *const *to, size_t n, unsigned flags,
			 char **out, size_t *outlen, char *errbuf, size_t errlen)
{
	const sc_cert *certs[8];
	int in = memfile(msg, strlen(msg)), o = memfile("", 0);
	sc_status rc;

	for (size_t i = 0; i < n; i++)
		certs[i] = to[i]->cert;
	rc = sc_smime_encrypt(in, o, certs, n, flags, errbuf, errlen);
	*out = slurp(o, outlen);
	close(in);
	close(o);
	return rc;
}

static sc_status decrypt(const char *msg, size_t len, const struct party *p, const sc_cert *cert,
			 char **out, size_t *outlen, char *errbuf, size_t errlen)
{
	int in = memfile(msg, len), o = memfile("", 0);
	sc_status rc = sc_smime_decrypt(in, o, p->key, cert ? cert : p->cert, errbuf, errlen);

	*out = slurp(o, outlen);
	close(in);
	close(o);
	return rc;
}

static const char msg_crlf[] =
	"Received: from x by y\r\nFrom: Alice <alice@example.test>\r\n"
	"To: bob@example.test\r\nSubject: the plan\r\nDate: Sat, 28 Nov 2026 21:00:00 +0000\r\n"
	"Message-ID: <1@example.test>\r\nMIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\nX-Secret: inner\r\n\r\n"
	"The secret plan.\r\nLine two\r\n";

/* What decryption gives back for msg_crlf. */
static const char dec_crlf[] =
	"Received: from x by y\r\nFrom: Alice <alice@example.test>\r\n"
	"To: bob@example.test\r\nSubject: the plan\r\nDate: Sat, 28 Nov 2026 21:00:00 +0000\r\n"
	"Message-ID: <1@example.test>\r\nMIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\nX-Secret: inner\r\n\r\n"
	"The secret plan.\r\nLine two\r\n";

static void roundtrip(const struct party *const *to, size_t n, unsigned flags,
		      const char *want_type)
{
	char errbuf[512], *enc, *dec;
	size_t elen, dlen;

	if (encrypt(msg_crlf, to, n, flags, &enc, &elen, errbuf, sizeof errbuf) != SC_OK)
		fail_msg("encrypt: %s", errbuf);
	assert_non_null(strstr(enc, want_type));
	assert_non_null(strstr(enc, "\r\nFrom: Alice <alice@example.test>\r\n"));
	assert_non_null(strstr(enc, "\r\nSubject: the plan\r\n"));
	assert_non_null(strstr(enc, "Content-Transfer-Encoding: base64\r\n"));
	assert_null(strstr(enc, "secret"));
	assert_null(strstr(enc, "X-Secret"));
	assert_null(strstr(enc, "charset"));
	for (size_t i = 0; i < n; i++) {
		if (decrypt(enc, elen, to[i], NULL, &dec, &dlen, errbuf, sizeof errbuf) != SC_OK)
			fail_msg("decrypt for %zu: %s", i, errbuf);
		assert_string_equal(dec, dec_crlf);
		free(dec);
	}
	free(enc);
}

static void test_rsa(void **state)
{
	const struct party *to[] = { &alice };

	(void)state;
	roundtrip(to, 1, 0, "smime-type=enveloped-data");
}

static void test_p256(void **state)
{
	const struct party *to[] = { &dave };

	(void)state;
	roundtrip(to, 1, 0, "smime-type=enveloped-data");
}

static void test_many(void **state)
{
	const struct party *to[] = { &alice, &bob, &carol, &dave };

	(void)state;
	roundtrip(to, 4, 0, "smime-type=enveloped-data");
}

static void test_gcm(void **state)
{
	const struct party *to[] = { &bob, &carol };
	const sc_cert *c1[] = { bob.cert, carol.cert }, *c2[] = { bob.cert, alice.cert },
		      *c3[] = { dave.cert };

	(void)state;
	assert_int_equal(sc_smime_choose_cipher(c1, 2, 0), SC_SMIME_AES256_GCM);
	assert_int_equal(sc_smime_choose_cipher(c1, 2, SC_SMIME_CBC_ONLY), SC_SMIME_AES256_CBC);
	assert_int_equal(sc_smime_choose_cipher(c2, 2, 0), SC_SMIME_AES256_CBC);
	assert_int_equal(sc_smime_choose_cipher(c3, 1, 0), SC_SMIME_AES256_CBC);
	assert_int_equal(sc_smime_choose_cipher(NULL, 0, 0), SC_SMIME_AES256_CBC);
	roundtrip(to, 2, 0, "smime-type=authEnveloped-data");
	roundtrip(to, 2, SC_SMIME_CBC_ONLY, "smime-type=enveloped-data");
}

static void test_hide_subject(void **state)
{
	const struct party *to[] = { &alice };
	char errbuf[256], *enc, *dec;
	size_t elen, dlen;

	(void)state;
	assert_int_equal(encrypt(msg_crlf, to, 1, SC_SMIME_HIDE_SUBJECT, &enc, &elen, errbuf,
				 sizeof errbuf), SC_OK);
	assert_non_null(strstr(enc, "\r\nSubject: ...\r\n"));
	assert_null(strstr(enc, "the plan"));
	assert_int_equal(decrypt(enc, elen, &alice, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_OK);
	/* The protected Subject comes back once, with the entity. */
	assert_null(strstr(dec, "Subject: ..."));
	assert_non_null(strstr(dec, "\r\nSubject: the plan\r\n"));
	assert_null(strstr(strstr(dec, "Subject: the plan") + 1, "Subject:"));
	free(enc);
	free(dec);
}

static void test_lf(void **state)
{
	const struct party *to[] = { &alice };
	const char *lf = "From: a@example.test\nTo: b@example.test\nSubject: s\n\nbody\nmore\n";
	const char *want = "From: a@example.test\r\nTo: b@example.test\r\nSubject: s\r\n\r\n"
			   "body\r\nmore\r\n";
	char errbuf[256], *enc, *dec;
	size_t elen, dlen;

	(void)state;
	/* LF in, LF out (Maildir) */
	assert_int_equal(encrypt(lf, to, 1, SC_SMIME_OUT_LF, &enc, &elen, errbuf, sizeof errbuf),
			 SC_OK);
	assert_null(memchr(enc, '\r', elen));
	assert_non_null(strstr(enc, "\nContent-Type: application/pkcs7-mime"));
	assert_int_equal(decrypt(enc, elen, &alice, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_OK);
	assert_string_equal(dec, want);
	free(enc);
	free(dec);
	/* no body, no final line end */
	assert_int_equal(encrypt("Subject: x", to, 1, 0, &enc, &elen, errbuf, sizeof errbuf),
			 SC_OK);
	assert_int_equal(decrypt(enc, elen, &alice, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_OK);
	assert_string_equal(dec, "Subject: x\r\n\r\n");
	free(enc);
	free(dec);
}

static void test_decrypt_errors(void **state)
{
	const struct party *to[] = { &alice };
	char errbuf[256], *enc, *dec, *bad;
	size_t elen, dlen, body, cut;

	(void)state;
	assert_int_equal(encrypt(msg_crlf, to, 1, 0, &enc, &elen, errbuf, sizeof errbuf), SC_OK);
	/* not a recipient */
	assert_int_equal(decrypt(enc, elen, &carol, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_ERR_NOT_FOUND);
	assert_non_null(strstr(errbuf, "not encrypted to"));
	assert_int_equal(dlen, 0);
	free(dec);
	/* key of another certificate */
	assert_int_equal(decrypt(enc, elen, &carol, alice.cert, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_MISMATCH);
	assert_int_equal(dlen, 0);
	free(dec);
	/* truncated after a whole base64 line (a cut inside a 4-octet group would
	 * be bad base64 instead, SC_ERR_ENCODING: where the middle falls moved
	 * with the length of the random parts of the message) */
	body = (size_t)(strstr(enc, "\r\n\r\n") - enc) + 4;
	cut = (size_t)(strstr(enc + body + (elen - body) / 2, "\r\n") - enc) + 2;
	assert_int_equal(decrypt(enc, cut, &alice, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_ERR_SYNTAX);
	assert_int_equal(dlen, 0);
	free(dec);
	/* corrupted structure: the ContentInfo's first octets */
	bad = malloc(elen + 1);
	memcpy(bad, enc, elen + 1);
	memcpy(bad + body, "AAAA", 4);
	assert_int_equal(decrypt(bad, elen, &alice, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_ERR_SYNTAX);
	assert_int_equal(dlen, 0);
	free(dec);
	/* invalid base64 */
	memcpy(bad, enc, elen + 1);
	bad[body + 10] = '*';
	assert_int_equal(decrypt(bad, elen, &alice, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_ERR_ENCODING);
	free(dec);
	free(bad);
	free(enc);
	/* not encrypted at all, signed, PGP/MIME, empty */
	assert_int_equal(decrypt(msg_crlf, strlen(msg_crlf), &alice, NULL, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(errbuf, "not an encrypted S/MIME message"));
	free(dec);
	bad = "Content-Type: multipart/signed; boundary=x\r\n\r\n--x--\r\n";
	assert_int_equal(decrypt(bad, strlen(bad), &alice, NULL, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(errbuf, "signed"));
	free(dec);
	bad = "Content-Type: application/pkcs7-mime; smime-type=compressed-data\r\n\r\nMA==\r\n";
	assert_int_equal(decrypt(bad, strlen(bad), &alice, NULL, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(errbuf, "compressed-data"));
	free(dec);
	bad = "Content-Type: multipart/encrypted; boundary=x\r\n\r\n--x--\r\n";
	assert_int_equal(decrypt(bad, strlen(bad), &alice, NULL, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_UNSUPPORTED);
	free(dec);
	bad = "Content-Type: application/pkcs7-mime\r\n\r\n";
	assert_int_equal(decrypt(bad, strlen(bad), &alice, NULL, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_SYNTAX);
	free(dec);
	bad = "Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: quoted-"
	      "printable\r\n\r\nx";
	assert_int_equal(decrypt(bad, strlen(bad), &alice, NULL, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_UNSUPPORTED);
	free(dec);
	/* a header that does not parse */
	bad = " bad\r\n\r\n";
	assert_int_equal(decrypt(bad, strlen(bad), &alice, NULL, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_SYNTAX);
	free(dec);
	/* arguments */
	assert_int_equal(sc_smime_decrypt(0, 1, NULL, alice.cert, errbuf, sizeof errbuf),
			 SC_ERR_ARG);
	assert_int_equal(sc_smime_decrypt(-1, 1, alice.key, alice.cert, errbuf, sizeof errbuf),
			 SC_ERR_ARG);
}

/*
 * Re-encode @p enc with one bit of its encrypted content flipped, @p from_end
 * octets before the end of the ciphertext (decoded, changed with OpenSSL's own
 * accessor, encoded again; NO_FLIP: unchanged). Malloc'ed, NUL-terminated.
 */
#define NO_FLIP ((size_t)-1)

static char *tamper(const char *enc, size_t elen, size_t from_end, size_t *outlen)
{
	size_t body = (size_t)(strstr(enc, "\r\n\r\n") - enc) + 4;
	unsigned char *der = malloc(elen), *p, *out = NULL;
	const unsigned char *q;
	EVP_ENCODE_CTX *e = EVP_ENCODE_CTX_new();
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING **ct;
	int outl, fin, derlen;
	char *msg;

	EVP_DecodeInit(e);
	assert_true(EVP_DecodeUpdate(e, der, &outl, (const unsigned char *)enc + body,
				     (int)(elen - body)) >= 0);
	assert_int_equal(EVP_DecodeFinal(e, der + outl, &fin), 1);
	EVP_ENCODE_CTX_free(e);
	q = der;
	cms = d2i_CMS_ContentInfo(NULL, &q, outl + fin);
	assert_non_null(cms);
	ct = CMS_get0_content(cms);
	assert_true(ct && *ct);
	if (from_end != NO_FLIP) {
		assert_true((size_t)ASN1_STRING_length(*ct) > from_end);
		p = (unsigned char *)ASN1_STRING_get0_data(*ct);
		p[ASN1_STRING_length(*ct) - 1 - (int)from_end] ^= 0x01;
	}
	derlen = i2d_CMS_ContentInfo(cms, &out);
	assert_true(derlen > 0);
	msg = malloc(body + (size_t)derlen * 2 + 16);
	memcpy(msg, enc, body);
	*outlen = body + (size_t)EVP_EncodeBlock((unsigned char *)msg + body, out, derlen);
	msg[*outlen] = '\0';
	OPENSSL_free(out);
	CMS_ContentInfo_free(cms);
	free(der);
	return msg;
}

/* Altered ciphertext: AES-GCM fails its tag check (RFC 5084 3), AES-CBC its
 * padding (a flipped bit in the last byte of the next-to-last block flips the
 * padding octet); neither yields plaintext. */
static void test_tamper(void **state)
{
	const struct party *gcm[] = { &carol }, *cbc[] = { &alice };
	char errbuf[256], *enc, *dec, *bad;
	size_t elen, dlen, blen;

	(void)state;
	assert_int_equal(encrypt(msg_crlf, gcm, 1, 0, &enc, &elen, errbuf, sizeof errbuf), SC_OK);
	assert_non_null(strstr(enc, "authEnveloped-data"));
	bad = tamper(enc, elen, 100, &blen);
	assert_int_equal(decrypt(bad, blen, &carol, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_ERR_CRYPTO);
	assert_int_equal(dlen, 0);
	free(dec);
	free(bad);
	/* untouched, the re-encoding decrypts: the test changes only that bit */
	bad = tamper(enc, elen, NO_FLIP, &blen);
	assert_int_equal(decrypt(bad, blen, &carol, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_OK);
	assert_string_equal(dec, dec_crlf);
	free(dec);
	free(bad);
	free(enc);

	assert_int_equal(encrypt(msg_crlf, cbc, 1, 0, &enc, &elen, errbuf, sizeof errbuf), SC_OK);
	bad = tamper(enc, elen, 16, &blen);
	assert_int_equal(decrypt(bad, blen, &alice, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_ERR_CRYPTO);
	assert_non_null(strstr(errbuf, "decryption failed"));
	assert_int_equal(dlen, 0);
	free(dec);
	free(bad);
	free(enc);
}

/* A bare CMS structure (DER, PEM) decrypts to the content as it is. */
static void test_bare_cms(void **state)
{
	const struct party *to[] = { &bob };
	char errbuf[256], *enc, *dec, *pem, *bare;
	size_t elen, dlen, body, n;
	const char *entity = strstr(dec_crlf, "MIME-Version");

	(void)state;
	assert_int_equal(encrypt(msg_crlf, to, 1, 0, &enc, &elen, errbuf, sizeof errbuf), SC_OK);
	body = (size_t)(strstr(enc, "\r\n\r\n") - enc) + 4;
	bare = malloc(elen);
	{
		EVP_ENCODE_CTX *e = EVP_ENCODE_CTX_new();
		int outl, fin;

		EVP_DecodeInit(e);
		assert_true(EVP_DecodeUpdate(e, (unsigned char *)bare, &outl,
					     (unsigned char *)enc + body, (int)(elen - body)) >= 0);
		assert_int_equal(EVP_DecodeFinal(e, (unsigned char *)bare + outl, &fin), 1);
		n = (size_t)(outl + fin);
		EVP_ENCODE_CTX_free(e);
	}
	assert_int_equal(decrypt(bare, n, &bob, NULL, &dec, &dlen, errbuf, sizeof errbuf), SC_OK);
	assert_string_equal(dec, entity);
	free(dec);
	pem = malloc(elen + 64);
	n = (size_t)snprintf(pem, elen + 64, "-----BEGIN CMS-----\n%.*s-----END CMS-----\n",
			     (int)(elen - body), enc + body);
	assert_int_equal(decrypt(pem, n, &bob, NULL, &dec, &dlen, errbuf, sizeof errbuf), SC_OK);
	assert_string_equal(dec, entity);
	free(dec);
	/* truncated DER */
	assert_int_equal(decrypt(bare, 40, &bob, NULL, &dec, &dlen, errbuf, sizeof errbuf),
			 SC_ERR_SYNTAX);
	assert_int_equal(dlen, 0);
	free(dec);
	free(pem);
	free(bare);
	free(enc);
}

static void test_encrypt_errors(void **state)
{
	const struct party *to[] = { &alice };
	const sc_cert *certs[] = { alice.cert };
	tc_key *ed = tc_key_new(TC_ED25519);
	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "CA", .is_ca = 1 }, alice.k, NULL,
			       NULL);
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "ed", .emails = { "e@example.test" } },
			      ed, ca, alice.k);
	sc_cert *edc;
	char errbuf[256], *pem, *enc;
	size_t len;
	int in, out;
	EVP_PKEY *xk;

	(void)state;
	tc_cert_pem(x, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &edc), SC_OK);
	free(pem);
	in = memfile(msg_crlf, strlen(msg_crlf));
	out = memfile("", 0);
	certs[0] = edc;
	assert_int_equal(sc_smime_encrypt(in, out, certs, 1, 0, errbuf, sizeof errbuf),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(errbuf, "Ed25519"));
	assert_int_equal(lseek(out, 0, SEEK_END), 0); /* nothing written */
	assert_int_equal(sc_smime_encrypt(in, out, certs, 0, 0, errbuf, sizeof errbuf),
			 SC_ERR_ARG);
	assert_int_equal(sc_smime_encrypt(in, out, NULL, 1, 0, errbuf, sizeof errbuf), SC_ERR_ARG);
	close(in);
	close(out);
	/* a header that does not parse writes nothing */
	assert_int_equal(encrypt(" folded\r\n\r\nbody", to, 1, 0, &enc, &len, errbuf,
				 sizeof errbuf), SC_ERR_SYNTAX);
	assert_int_equal(len, 0);
	free(enc);
	/* key types decryption refuses, named */
	xk = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	assert_non_null(xk);
	assert_non_null(strstr(smime_key_unsupported(xk, 1), "X25519"));
	assert_non_null(strstr(smime_key_unsupported(xk, 1), "not supported"));
	EVP_PKEY_free(xk);
	assert_null(smime_key_unsupported(tc_key_pkey(alice.k), 1));
	assert_null(smime_key_unsupported(tc_key_pkey(bob.k), 0));
	sc_cert_free(edc);
	X509_free(x);
	X509_free(ca);
	tc_key_free(ed);
}

/* X25519 private key: decryption says so before touching the message. */
static void test_x25519_key(void **state)
{
	EVP_PKEY *xk = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	char path[600], errbuf[256], *dec;
	sc_key *k;
	size_t dlen;
	struct party p;
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long len;

	(void)state;
	assert_int_equal(PEM_write_bio_PrivateKey(b, xk, NULL, NULL, 0, NULL, NULL), 1);
	len = BIO_get_mem_data(b, &pem);
	snprintf(path, sizeof path, "%s/x25519.key", tmpdir);
	tc_write_file(path, pem, (size_t)len);
	assert_int_equal(sc_key_load(path, &(struct sc_key_opts){ 0 }, &k, errbuf, sizeof errbuf),
			 SC_OK);
	p.key = k;
	assert_int_equal(decrypt(msg_crlf, strlen(msg_crlf), &p, alice.cert, &dec, &dlen, errbuf,
				 sizeof errbuf), SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(errbuf, "X25519"));
	assert_non_null(strstr(errbuf, "not supported"));
	free(dec);
	sc_key_free(k);
	BIO_free(b);
	EVP_PKEY_free(xk);
}

/* --- a large message through a pipe, memory bounded ----------------------- */

#define BIG_LINES (50u * 1024 * 1024 / 64)

static void big_line(unsigned i, char line[65])
{
	snprintf(line, 65, "%08u The quick brown fox jumps over the lazy dog. 012345678\n", i);
}

static void big_writer(int fd)
{
	char line[65];
	const char *hdr = "From: a@example.test\nTo: b@example.test\nSubject: big\n\n";

	if (write(fd, hdr, strlen(hdr)) != (ssize_t)strlen(hdr))
		_exit(1);
	static char chunk[64 * 256];

	for (unsigned i = 0; i < BIG_LINES; i += 256) {
		for (unsigned j = 0; j < 256; j++) {
			big_line(i + j, line);
			memcpy(chunk + 64 * j, line, 64);
		}
		if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
			_exit(1);
	}
	_exit(0);
}

static void test_large_streaming(void **state)
{
	char path[600], errbuf[256];
	int p[2], out, status;
	pid_t writer, child;
	const sc_cert *certs[] = { alice.cert, bob.cert };

	(void)state;
	snprintf(path, sizeof path, "%s/big.eml", tmpdir);
	/* The encryption runs in a child so that its peak RSS is its own. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct rusage ru;
		long limit_kb;
		sc_status rc;

		if (pipe(p) != 0)
			_exit(2);
		writer = fork();
		if (writer == 0) {
			close(p[0]);
			big_writer(p[1]);
		}
		close(p[1]);
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		rc = sc_smime_encrypt(p[0], out, certs, 2, 0, errbuf, sizeof errbuf);
		close(out);
		close(p[0]);
		if (waitpid(writer, &status, 0) != writer || status != 0)
			_exit(3);
		if (rc != SC_OK) {
			fprintf(stderr, "encrypt: %s\n", errbuf);
			_exit(4);
		}
		getrusage(RUSAGE_SELF, &ru);
		/* A sanity bound far above the ~1 MiB of buffers the encryption
		 * holds, far below the 50 MB message (ASan adds its quarantine). */
#if defined(__SANITIZE_ADDRESS__)
		limit_kb = 45 * 1024 + 300 * 1024;
#else
		limit_kb = 45 * 1024;
#endif
		if (ru.ru_maxrss > limit_kb) {
			fprintf(stderr, "peak RSS %ld KiB over %ld KiB\n", ru.ru_maxrss, limit_kb);
			_exit(5);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* Bob decrypts it; the body comes back line for line. */
	{
		int in = open(path, O_RDONLY), o;
		char opath[600], line[65], *buf;
		FILE *f;
		const char *want_hdr = "From: a@example.test\r\nTo: b@example.test\r\n"
				       "Subject: big\r\n\r\n";
		unsigned i;

		snprintf(opath, sizeof opath, "%s/big.out", tmpdir);
		o = open(opath, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_true(in >= 0 && o >= 0);
		if (sc_smime_decrypt(in, o, bob.key, bob.cert, errbuf, sizeof errbuf) != SC_OK)
			fail_msg("decrypt: %s", errbuf);
		close(in);
		close(o);
		f = fopen(opath, "rb");
		assert_non_null(f);
		buf = malloc(4096);
		assert_int_equal(fread(buf, 1, strlen(want_hdr), f), strlen(want_hdr));
		assert_memory_equal(buf, want_hdr, strlen(want_hdr));
		for (i = 0; i < BIG_LINES; i++) {
			big_line(i, line);
			line[63] = '\r';
			assert_int_equal(fread(buf, 1, 65, f), 65);
			assert_memory_equal(buf, line, 64);
			assert_int_equal(buf[64], '\n');
		}
		assert_int_equal(fread(buf, 1, 1, f), 0);
		fclose(f);
		free(buf);
		unlink(opath);
	}
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa),
		cmocka_unit_test(test_p256),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_gcm),
		cmocka_unit_test(test_hide_subject),
		cmocka_unit_test(test_lf),
		cmocka_unit_test(test_decrypt_errors),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_bare_cms),
		cmocka_unit_test(test_encrypt_errors),
		cmocka_unit_test(test_x25519_key),
		cmocka_unit_test(test_large_streaming),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
