/*
 * test_cert.c - unit tests for lib/cert.c and lib/cert_email.c: PEM/DER intake,
 * chains, email extraction (rfc822Name, SmtpUTF8Mailbox, subject emailAddress),
 * validity, fingerprints, raw fields, and every input error. Certificates are made
 * at run time with tests/lib/testcert.h; public interop vectors are read from
 * $SC_INTEROP_DIR when it exists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "smtpcert/cert.h"
#include "testcert.h"

static tc_key *ca_key, *leaf_key;
static X509 *ca;

static int setup(void **state)
{
	(void)state;
	ca_key = tc_key_shared(TC_P256);
	leaf_key = tc_key_new(TC_P256);
	ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Test CA", .o = "smtpcert",
						 .is_ca = 1,
						 .key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			 ca_key, NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca);
	tc_key_free(leaf_key);
	return 0;
}

static X509 *mkleaf(const struct tc_cert_opts *o)
{
	return tc_cert_new(o, leaf_key, ca, ca_key);
}

/* Parse the PEM of @p x; asserts success. */
static sc_cert *parse_pem(X509 *x)
{
	char *pem;
	size_t len;
	sc_cert *c = NULL;

	tc_cert_pem(x, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	assert_non_null(c);
	free(pem);
	return c;
}

static void assert_email(const struct sc_addr *a, const char *local, const char *domain)
{
	assert_string_equal(a->local, local);
	assert_string_equal(a->domain, domain);
}

static void assert_der_is(const sc_cert *c, size_t i, X509 *x)
{
	const uint8_t *der;
	uint8_t *want;
	size_t len, wlen;

	tc_cert_der(x, &want, &wlen);
	assert_int_equal(sc_cert_der(c, i, &der, &len), SC_OK);
	assert_int_equal(len, wlen);
	assert_memory_equal(der, want, len);
	free(want);
}

static void test_pem_single(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .cn = "Alice",
						 .emails = { "alice@example.test" } });
	sc_cert *c = parse_pem(x);
	struct sc_addr a[4];
	uint8_t fp[32], want[32];
	uint8_t *der;
	size_t len;
	const uint8_t *d;
	size_t dl;

	(void)state;
	assert_int_equal(sc_cert_count(c), 1);
	assert_der_is(c, 0, x);
	assert_int_equal(sc_cert_der(c, 1, &d, &dl), SC_ERR_ARG);
	assert_int_equal(sc_cert_emails(c, a, 4), 1);
	assert_email(&a[0], "alice", "example.test");
	/* `openssl x509 -fingerprint -sha256` hashes the DER. */
	tc_cert_der(x, &der, &len);
	assert_true(EVP_Digest(der, len, want, NULL, EVP_sha256(), NULL));
	sc_cert_fingerprint(c, fp);
	assert_memory_equal(fp, want, 32);
	free(der);
	sc_cert_free(c);
	X509_free(x);
}

static void test_der_and_chain(void **state)
{
	X509 *inter = tc_cert_new(&(struct tc_cert_opts){ .cn = "Intermediate", .is_ca = 1 },
				  tc_key_shared(TC_P256), ca, ca_key);
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "Bob",
						      .emails = { "bob@example.test" } },
			      leaf_key, inter, tc_key_shared(TC_P256));
	X509 *chain[3] = { x, inter, ca };
	uint8_t *buf = NULL, *der;
	size_t blen = 0, len;
	char *pem;
	sc_cert *c = NULL;

	(void)state;
	/* DER, one certificate */
	tc_cert_der(x, &der, &len);
	assert_int_equal(sc_cert_parse(der, len, &c), SC_OK);
	assert_int_equal(sc_cert_count(c), 1);
	sc_cert_free(c);
	free(der);
	/* DER, three concatenated, order kept */
	for (int i = 0; i < 3; i++) {
		tc_cert_der(chain[i], &der, &len);
		buf = realloc(buf, blen + len);
		assert_non_null(buf);
		memcpy(buf + blen, der, len);
		blen += len;
		free(der);
	}
	assert_int_equal(sc_cert_parse(buf, blen, &c), SC_OK);
	assert_int_equal(sc_cert_count(c), 3);
	for (size_t i = 0; i < 3; i++)
		assert_der_is(c, i, chain[i]);
	assert_true(sc_cert_has_email(c, &(struct sc_addr){ "bob", "example.test", 0 }));
	sc_cert_free(c);
	/* DER with trailing garbage */
	buf = realloc(buf, blen + 1);
	buf[blen] = 'x';
	assert_int_equal(sc_cert_parse(buf, blen + 1, &c), SC_ERR_ENCODING);
	assert_null(c);
	free(buf);
	/* PEM chain, with text around the blocks */
	tc_chain_pem(chain, 3, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	assert_int_equal(sc_cert_count(c), 3);
	for (size_t i = 0; i < 3; i++)
		assert_der_is(c, i, chain[i]);
	sc_cert_free(c);
	free(pem);
	X509_free(x);
	X509_free(inter);
}

static void test_trusted_certificate(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .emails = { "t@example.test" } });
	ASN1_OBJECT *obj = OBJ_nid2obj(NID_email_protect);
	BIO *b = BIO_new(BIO_s_mem());
	sc_cert *c = NULL;
	char *p;
	long n;

	(void)state;
	assert_int_equal(X509_add1_trust_object(x, obj), 1);
	assert_int_equal(PEM_write_bio_X509_AUX(b, x), 1);
	n = BIO_get_mem_data(b, &p);
	assert_non_null(strstr(p, "BEGIN TRUSTED CERTIFICATE"));
	assert_int_equal(sc_cert_parse(p, (size_t)n, &c), SC_OK);
	/* The stored DER is the certificate alone, without OpenSSL's trust data. */
	assert_der_is(c, 0, x);
	assert_true(sc_cert_has_email(c, &(struct sc_addr){ "t", "example.test", 0 }));
	sc_cert_free(c);
	BIO_free(b);
	X509_free(x);
}

static void test_smtputf8_mailbox(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){
		.utf8_mailboxes = { "用户@example.test", "用户@例子.test", "plain@example.test",
				    "not an address" } });
	sc_cert *c = parse_pem(x);
	struct sc_addr a[4];

	(void)state;
	/* The U-label domain breaks RFC 9598 section 3 (A-labels only): skipped. */
	assert_int_equal(sc_cert_emails(c, a, 4), 2);
	assert_email(&a[0], "用户", "example.test");
	assert_true(a[0].flags & SC_ADDR_IS_UTF8);
	assert_email(&a[1], "plain", "example.test");
	sc_cert_free(c);
	X509_free(x);
}

static void test_subject_email_only(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .cn = "Carol",
						 .subject_email = "carol@example.test" });
	sc_cert *c = parse_pem(x);
	struct sc_addr a[2];

	(void)state;
	assert_int_equal(sc_cert_emails(c, a, 2), 1);
	assert_email(&a[0], "carol", "example.test");
	sc_cert_free(c);
	X509_free(x);
}

static void test_mixed_and_duplicates(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){
		.emails = { "Alice@Example.Test", "alice@example.test", "bob@example.test" },
		.utf8_mailboxes = { "用户@example.test", "ALICE@example.test" },
		.subject_email = "alice@EXAMPLE.test",
		.dns_names = { "host.example.test" } });
	sc_cert *c = parse_pem(x);
	struct sc_addr a[SC_CERT_EMAILS_MAX];

	(void)state;
	assert_int_equal(sc_cert_emails(c, a, SC_CERT_EMAILS_MAX), 3);
	assert_email(&a[0], "Alice", "Example.Test"); /* first spelling wins */
	assert_email(&a[1], "bob", "example.test");
	assert_email(&a[2], "用户", "example.test");
	/* max honoured */
	assert_int_equal(sc_cert_emails(c, a, 1), 1);
	assert_int_equal(sc_cert_emails(c, a, 0), 0);
	assert_true(sc_cert_has_email(c, &(struct sc_addr){ "ALICE", "example.TEST", 0 }));
	assert_false(sc_cert_has_email(c, &(struct sc_addr){ "carol", "example.test", 0 }));
	sc_cert_free(c);
	X509_free(x);
}

static void test_no_email(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .cn = "server", .dns_names = { "a.test" },
						 .ip = "127.0.0.1" });
	sc_cert *c = parse_pem(x);
	struct sc_addr a[2];

	(void)state;
	assert_int_equal(sc_cert_emails(c, a, 2), 0);
	sc_cert_free(c);
	X509_free(x);
}

static void test_bad_email_bytes(void **state)
{
	static const char nul[] = "evil\0@example.test";
	static const char high[] = "caf\xc3\xa9@example.test";
	static const char badutf8[] = "\xff\xfe@example.test";
	struct {
		const char *raw;
		size_t len;
		int utf8;
	} cases[] = {
		{ nul, sizeof nul - 1, 0 },
		{ high, sizeof high - 1, 0 }, /* 8-bit in an IA5String */
		{ "a@b\x01.test", 9, 0 },
		{ badutf8, sizeof badutf8 - 1, 1 },
		{ nul, sizeof nul - 1, 1 },
		{ "", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tc_cert_opts o = { .emails = { "good@example.test" } };
		struct sc_addr a[4];
		sc_cert *c;
		X509 *x;

		if (cases[i].utf8) {
			o.raw_utf8_mailbox = cases[i].raw;
			o.raw_utf8_mailbox_len = cases[i].len;
		} else {
			o.raw_email = cases[i].raw;
			o.raw_email_len = cases[i].len;
		}
		x = mkleaf(&o);
		c = parse_pem(x);
		assert_int_equal(sc_cert_emails(c, a, 4), 1);
		assert_email(&a[0], "good", "example.test");
		sc_cert_free(c);
		X509_free(x);
	}
}

static void test_duplicate_san_refused(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .emails = { "a@example.test" } });
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	char *pem;
	size_t len;
	sc_cert *c = NULL;

	(void)state;
	/* RFC 5280 4.2: an extension appears at most once. Which SAN would count? */
	assert_int_equal(ASN1_STRING_set(s, "b@example.test", -1), 1);
	GENERAL_NAME_set0_value(g, GEN_EMAIL, s);
	assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND), 1);
	GENERAL_NAMES_free(gens);
	assert_true(X509_sign(x, tc_key_pkey(ca_key), EVP_sha256()) > 0);
	tc_cert_pem(x, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_ERR_SYNTAX);
	assert_null(c);
	free(pem);
	X509_free(x);

	/* one SAN extension whose value is not GeneralNames */
	x = mkleaf(NULL);
	{
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
		X509_EXTENSION *e;

		assert_int_equal(ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2), 1);
		e = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, v);
		assert_non_null(e);
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
		ASN1_OCTET_STRING_free(v);
	}
	assert_true(X509_sign(x, tc_key_pkey(ca_key), EVP_sha256()) > 0);
	tc_cert_pem(x, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_ERR_SYNTAX);
	assert_null(c);
	free(pem);
	X509_free(x);
}

static void test_validity(void **state)
{
	time_t now = time(NULL);
	X509 *expired = mkleaf(&(struct tc_cert_opts){ .not_before_offset = -7200,
						       .not_after_offset = -60 });
	X509 *future = mkleaf(&(struct tc_cert_opts){ .not_before_offset = 3600,
						      .not_after_offset = 7200 });
	X509 *valid = mkleaf(NULL);
	/* GeneralizedTime: 2050 and RFC 5280 4.1.2.5's 99991231235959Z */
	X509 *late = mkleaf(&(struct tc_cert_opts){ .not_before_abs = 2524608000,
						    .not_after_abs = 253402300799 });
	sc_cert *c;

	(void)state;
	c = parse_pem(expired);
	assert_int_equal(sc_cert_check_time(c, now), SC_ERR_EXPIRED);
	assert_true(sc_cert_not_after(c) >= (int64_t)now - 61 &&
		    sc_cert_not_after(c) <= (int64_t)now + 1);
	assert_int_equal(sc_cert_check_time(c, (time_t)sc_cert_not_after(c)), SC_OK);
	assert_int_equal(sc_cert_check_time(c, (time_t)sc_cert_not_after(c) + 1),
			 SC_ERR_EXPIRED);
	sc_cert_free(c);

	c = parse_pem(future);
	assert_int_equal(sc_cert_check_time(c, now), SC_ERR_NOT_YET_VALID);
	assert_int_equal(sc_cert_check_time(c, (time_t)sc_cert_not_before(c)), SC_OK);
	assert_int_equal(sc_cert_check_time(c, (time_t)sc_cert_not_before(c) - 1),
			 SC_ERR_NOT_YET_VALID);
	sc_cert_free(c);

	c = parse_pem(valid);
	assert_int_equal(sc_cert_check_time(c, now), SC_OK);
	assert_true(sc_cert_not_before(c) <= (int64_t)now);
	sc_cert_free(c);

	c = parse_pem(late);
	assert_int_equal(sc_cert_not_before(c), 2524608000LL);
	assert_int_equal(sc_cert_not_after(c), 253402300799LL);
	assert_int_equal(sc_cert_check_time(c, now), SC_ERR_NOT_YET_VALID);
	assert_int_equal(sc_cert_check_time(c, (time_t)2524608000 + 1), SC_OK);
	sc_cert_free(c);

	X509_free(expired);
	X509_free(future);
	X509_free(valid);
	X509_free(late);
}

static void test_names_and_serial(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .cn = "Dave, Jr.", .o = "Ex+ample",
						 .serial_hex = "00FF" });
	X509 *neg = mkleaf(&(struct tc_cert_opts){ .serial = -1 });
	X509 *big = mkleaf(&(struct tc_cert_opts){
		.serial_hex = "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" });
	X509 *utf = mkleaf(&(struct tc_cert_opts){ .cn = "J\xc3\xb6rg\r" });
	sc_cert *c = parse_pem(x);
	char buf[256], small[5];
	const uint8_t *raw;
	unsigned char *want = NULL;
	size_t len;
	int wlen;

	(void)state;
	sc_cert_subject(c, buf, sizeof buf);
	assert_string_equal(buf, "CN=Dave\\, Jr.,O=Ex\\+ample");
	sc_cert_issuer(c, buf, sizeof buf);
	assert_string_equal(buf, "CN=Test CA,O=smtpcert");
	sc_cert_subject(c, small, sizeof small);
	assert_string_equal(small, "CN=D");
	sc_cert_subject(c, small, 0); /* must not write */
	sc_cert_serial_hex(c, buf, sizeof buf);
	assert_string_equal(buf, "FF");
	sc_cert_serial_hex(c, small, 2); /* no room for a pair */
	assert_string_equal(small, "");
	sc_cert_serial_raw(c, &raw, &len);
	assert_int_equal(len, 2);
	assert_memory_equal(raw, "\x00\xff", 2);
	/* issuer DER is the CA subject, byte for byte */
	sc_cert_issuer_der(c, &raw, &len);
	wlen = i2d_X509_NAME(X509_get_subject_name(ca), &want);
	assert_int_equal(len, (size_t)wlen);
	assert_memory_equal(raw, want, len);
	OPENSSL_free(want);
	sc_cert_free(c);

	/* UTF-8 names stay UTF-8 and are never cut inside a character */
	c = parse_pem(utf);
	sc_cert_subject(c, buf, sizeof buf);
	assert_string_equal(buf, "CN=J\xc3\xb6rg\\0D");
	sc_cert_subject(c, small, sizeof small);
	assert_string_equal(small, "CN=J");
	sc_cert_subject(c, buf, 6);
	assert_string_equal(buf, "CN=J");
	sc_cert_subject(c, buf, 7);
	assert_string_equal(buf, "CN=J\xc3\xb6");
	sc_cert_free(c);

	/* A negative serial keeps its two's complement: never equal to +255. */
	c = parse_pem(neg);
	sc_cert_serial_raw(c, &raw, &len);
	assert_int_equal(len, 1);
	assert_int_equal(raw[0], 0xff);
	sc_cert_serial_hex(c, buf, sizeof buf);
	assert_string_equal(buf, "-01");
	sc_cert_free(c);

	c = parse_pem(big);
	sc_cert_serial_raw(c, &raw, &len);
	assert_int_equal(len, 20);
	sc_cert_serial_hex(c, buf, sizeof buf);
	assert_string_equal(buf, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
	sc_cert_free(c);
	X509_free(x);
	X509_free(neg);
	X509_free(big);
	X509_free(utf);
}

static void test_truncated(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .emails = { "t@example.test" } });
	uint8_t *der;
	char *pem;
	size_t len, plen;

	(void)state;
	tc_cert_der(x, &der, &len);
	for (size_t n = 0; n < len; n++) {
		sc_cert *c = NULL;
		sc_status rc = sc_cert_parse(der, n, &c);

		assert_int_not_equal(rc, SC_OK);
		assert_null(c);
	}
	tc_cert_pem(x, &pem, &plen);
	/* cut inside the base64 and inside the END line */
	for (size_t n = 1; n < plen - 1; n += 7) {
		sc_cert *c = NULL;

		assert_int_not_equal(sc_cert_parse(pem, n, &c), SC_OK);
		assert_null(c);
	}
	free(pem);
	free(der);
	X509_free(x);
}

static void test_garbage_and_empty(void **state)
{
	static const uint8_t seq0[] = { 0x30, 0x00 };
	static const uint8_t seqbig[] = { 0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00 };
	static const char notcert[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	static const char crlonly[] = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
	sc_cert *c = NULL;
	uint8_t rnd[600];

	(void)state;
	assert_int_equal(sc_cert_parse("", 0, &c), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_cert_parse(NULL, 0, &c), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_cert_parse(NULL, 5, &c), SC_ERR_ARG);
	assert_int_equal(sc_cert_parse("x", 1, NULL), SC_ERR_ARG);
	assert_int_equal(sc_cert_parse("  \n\n", 4, &c), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_cert_parse("hello world", 11, &c), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_cert_parse(crlonly, sizeof crlonly - 1, &c), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_cert_parse(seq0, sizeof seq0, &c), SC_ERR_ENCODING);
	assert_int_equal(sc_cert_parse(seqbig, sizeof seqbig, &c), SC_ERR_ENCODING);
	assert_int_equal(sc_cert_parse(notcert, sizeof notcert - 1, &c), SC_ERR_ENCODING);
	srand(42);
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < sizeof rnd; i++)
			rnd[i] = (uint8_t)rand();
		rnd[0] = round & 1 ? 0x30 : rnd[0];
		assert_int_not_equal(sc_cert_parse(rnd, sizeof rnd, &c), SC_OK);
	}
	assert_null(c);
}

static void test_limits(void **state)
{
	X509 *x = mkleaf(NULL);
	X509 *nine[9];
	char *pem, *big;
	uint8_t *der, *buf;
	size_t len, blen;
	sc_cert *c = NULL;

	(void)state;
	/* oversized: a valid PEM padded with text past the limit */
	tc_cert_pem(x, &pem, &len);
	big = malloc(SC_CERT_INPUT_MAX + 1);
	assert_non_null(big);
	memset(big, '\n', SC_CERT_INPUT_MAX + 1);
	memcpy(big, pem, len);
	assert_int_equal(sc_cert_parse(big, SC_CERT_INPUT_MAX + 1, &c), SC_ERR_TOO_LONG);
	assert_int_equal(sc_cert_parse(big, SC_CERT_INPUT_MAX, &c), SC_OK);
	sc_cert_free(c);
	c = NULL;
	free(big);
	free(pem);

	/* SC_CHAIN_MAX certificates parse, one more is too many (PEM and DER) */
	for (int i = 0; i < 9; i++)
		nine[i] = x;
	tc_chain_pem(nine, 8, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	assert_int_equal(sc_cert_count(c), 8);
	sc_cert_free(c);
	c = NULL;
	free(pem);
	tc_chain_pem(nine, 9, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_ERR_TOO_MANY);
	assert_null(c);
	free(pem);
	tc_cert_der(x, &der, &len);
	blen = 9 * len;
	buf = malloc(blen);
	assert_non_null(buf);
	for (int i = 0; i < 9; i++)
		memcpy(buf + (size_t)i * len, der, len);
	assert_int_equal(sc_cert_parse(buf, blen, &c), SC_ERR_TOO_MANY);
	free(buf);
	free(der);
	X509_free(x);

	/* serials: 64 content octets accepted, 65 refused */
	{
		char hex[2 * 65 + 1];
		const uint8_t *raw;

		memset(hex, '1', sizeof hex - 1);
		hex[2 * 64] = '\0';
		x = mkleaf(&(struct tc_cert_opts){ .serial_hex = hex });
		tc_cert_pem(x, &pem, &len);
		assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
		sc_cert_serial_raw(c, &raw, &blen);
		assert_int_equal(blen, 64);
		sc_cert_free(c);
		c = NULL;
		free(pem);
		X509_free(x);
		hex[2 * 64] = '1';
		hex[2 * 65] = '\0';
		x = mkleaf(&(struct tc_cert_opts){ .serial_hex = hex });
		tc_cert_pem(x, &pem, &len);
		assert_int_equal(sc_cert_parse(pem, len, &c), SC_ERR_SYNTAX);
		assert_null(c);
		free(pem);
		X509_free(x);
	}
}

static void test_private_key_refused(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .emails = { "k@example.test" } });
	char *pem, *key, *both;
	size_t len, klen;
	sc_cert *c = NULL;
	static const char rsa_label[] =
		"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";

	(void)state;
	tc_cert_pem(x, &pem, &len);
	tc_key_pem(leaf_key, &key, &klen);
	both = malloc(len + klen + sizeof rsa_label);
	assert_non_null(both);
	/* key after the certificate */
	memcpy(both, pem, len);
	memcpy(both + len, key, klen);
	assert_int_equal(sc_cert_parse(both, len + klen, &c), SC_ERR_SYNTAX);
	assert_null(c);
	/* key before */
	memcpy(both, key, klen);
	memcpy(both + klen, pem, len);
	assert_int_equal(sc_cert_parse(both, len + klen, &c), SC_ERR_SYNTAX);
	/* any "... PRIVATE KEY" label, even with a body that is not a key */
	memcpy(both, pem, len);
	memcpy(both + len, rsa_label, sizeof rsa_label - 1);
	assert_int_equal(sc_cert_parse(both, len + sizeof rsa_label - 1, &c), SC_ERR_SYNTAX);
	assert_null(c);
	free(both);
	free(key);
	free(pem);
	X509_free(x);
}

static void test_load_file(void **state)
{
	X509 *x = mkleaf(&(struct tc_cert_opts){ .emails = { "f@example.test" } });
	char dir[256], path[512], *pem, *big;
	size_t len;
	sc_cert *c = NULL;

	(void)state;
	tc_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/cert.pem", dir);
	tc_cert_pem(x, &pem, &len);
	tc_write_file(path, pem, len);
	assert_int_equal(sc_cert_load_file(path, &c), SC_OK);
	assert_true(sc_cert_has_email(c, &(struct sc_addr){ "f", "example.test", 0 }));
	sc_cert_free(c);
	c = NULL;
	big = calloc(1, SC_CERT_INPUT_MAX + 10);
	assert_non_null(big);
	memcpy(big, pem, len);
	memset(big + len, ' ', SC_CERT_INPUT_MAX + 10 - len);
	tc_write_file(path, big, SC_CERT_INPUT_MAX + 10);
	assert_int_equal(sc_cert_load_file(path, &c), SC_ERR_TOO_LONG);
	assert_int_equal(sc_cert_load_file(dir, &c), SC_ERR_IO);
	snprintf(path, sizeof path, "%s/missing.pem", dir);
	assert_int_equal(sc_cert_load_file(path, &c), SC_ERR_IO);
	assert_int_equal(sc_cert_load_file(NULL, &c), SC_ERR_ARG);
	assert_null(c);
	free(big);
	free(pem);
	tc_rmtree(dir);
	X509_free(x);
}

static void test_hex(void **state)
{
	char out[9];

	(void)state;
	sc_hex((const uint8_t *)"\x00\xab\x10\xff", 4, out);
	assert_string_equal(out, "00ab10ff");
	sc_hex(NULL, 0, out);
	assert_string_equal(out, "");
}

/* ---- public interop vectors (../shared/interop) ---- */

static sc_cert *load_interop(const char *rel)
{
	const char *dir = getenv("SC_INTEROP_DIR");
	char path[1024];
	sc_cert *c = NULL;

	if (!dir)
		return NULL;
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	if (access(path, R_OK) != 0) {
		printf("note: interop vector %s missing, skipped\n", path);
		return NULL;
	}
	assert_int_equal(sc_cert_load_file(path, &c), SC_OK);
	return c;
}

static void test_interop_rfc9216(void **state)
{
	sc_cert *c = load_interop("rfc9216/alice.encrypt.crt");
	struct sc_addr a[4];
	char buf[256];

	(void)state;
	if (!c)
		return;
	assert_int_equal(sc_cert_emails(c, a, 4), 1);
	assert_email(&a[0], "alice", "smime.example");
	sc_cert_serial_hex(c, buf, sizeof buf);
	assert_string_equal(buf, "0F2D25BD1139974ACE425487A1EE3D34068AB4");
	sc_cert_issuer(c, buf, sizeof buf);
	assert_string_equal(buf,
			    "CN=Sample LAMPS RSA Certification Authority,OU=LAMPS WG,O=IETF");
	assert_int_equal(sc_cert_check_time(c, 1764000000), SC_OK);
	assert_int_equal(sc_cert_not_after(c), 2611032858LL); /* 2052-09-27 06:54:18Z */
	sc_cert_free(c);

	c = load_interop("rfc9216/ca.rsa.crt");
	assert_non_null(c);
	assert_int_equal(sc_cert_emails(c, a, 4), 0);
	sc_cert_subject(c, buf, sizeof buf);
	assert_string_equal(buf,
			    "CN=Sample LAMPS RSA Certification Authority,OU=LAMPS WG,O=IETF");
	sc_cert_free(c);
}

static void test_interop_rfc4134(void **state)
{
	sc_cert *c = load_interop("rfc4134/AliceRSASignByCarl.cer");
	struct sc_addr a[4];
	char buf[64];

	(void)state;
	if (!c)
		return;
	assert_int_equal(sc_cert_count(c), 1);
	assert_int_equal(sc_cert_emails(c, a, 4), 1);
	assert_email(&a[0], "AliceRSA", "example.com");
	sc_cert_serial_hex(c, buf, sizeof buf);
	assert_string_equal(buf, "46346BC7800056BC11D36E2EC410B3B0");
	assert_int_equal(sc_cert_not_after(c), 2208988799LL); /* 20391231235959Z */
	sc_cert_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pem_single),
		cmocka_unit_test(test_der_and_chain),
		cmocka_unit_test(test_trusted_certificate),
		cmocka_unit_test(test_smtputf8_mailbox),
		cmocka_unit_test(test_subject_email_only),
		cmocka_unit_test(test_mixed_and_duplicates),
		cmocka_unit_test(test_no_email),
		cmocka_unit_test(test_bad_email_bytes),
		cmocka_unit_test(test_duplicate_san_refused),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_names_and_serial),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_garbage_and_empty),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_private_key_refused),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_interop_rfc9216),
		cmocka_unit_test(test_interop_rfc4134),
	};

	if (!getenv("SC_INTEROP_DIR"))
		printf("note: SC_INTEROP_DIR not set, interop vectors skipped\n");
	return cmocka_run_group_tests(tests, setup, teardown);
}
