/*
 * test_crl.c - unit tests for lib/crl.c and lib/crl_name.c: revocation by issuer and
 * serial, several CRLs per issuer, PEM/DER/multi-CRL files, large serials, issuer
 * name encoding variants, refused CRL kinds, file errors, and the RFC 4134 CRLs from
 * $SC_INTEROP_DIR when present. CRLs and certificates are made with testcert.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "smtpcert/cert.h"
#include "smtpcert/crl.h"
#include "crl_name.h"
#include "testcert.h"

static tc_key *ca_key, *ca2_key, *leaf_key;
static X509 *ca, *ca2;

static int setup(void **state)
{
	(void)state;
	ca_key = tc_key_shared(TC_P256);
	ca2_key = tc_key_new(TC_P256);
	leaf_key = tc_key_new(TC_P256);
	ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Test CA", .o = "smtpcert", .is_ca = 1 },
			 ca_key, NULL, NULL);
	ca2 = tc_cert_new(&(struct tc_cert_opts){ .cn = "Other CA", .is_ca = 1 }, ca2_key,
			  NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca);
	X509_free(ca2);
	tc_key_free(ca2_key);
	tc_key_free(leaf_key);
	return 0;
}

/* A parsed leaf with the given serial, issued by @p issuer. */
static sc_cert *leaf(X509 *issuer, tc_key *ikey, long serial, const char *serial_hex)
{
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .serial = serial,
						      .serial_hex = serial_hex },
			      leaf_key, issuer, ikey);
	char *pem;
	size_t len;
	sc_cert *c = NULL;

	tc_cert_pem(x, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	free(pem);
	X509_free(x);
	return c;
}

static sc_status check(const sc_crlset *s, X509 *issuer, tc_key *ikey, long serial)
{
	sc_cert *c = leaf(issuer, ikey, serial, NULL);
	sc_status rc = sc_crlset_check_cert(s, c);

	sc_cert_free(c);
	return rc;
}

static sc_crlset *mkset(void)
{
	sc_crlset *s = NULL;

	assert_int_equal(sc_crlset_new(&s), SC_OK);
	assert_non_null(s);
	return s;
}

static void add(sc_crlset *s, X509 *issuer, tc_key *ikey, const long *serials, size_t n,
		int der)
{
	char *crl;
	size_t len;

	tc_crl_new(issuer, ikey, serials, n, 0, der, &crl, &len);
	assert_int_equal(sc_crlset_add_mem(s, crl, len), SC_OK);
	free(crl);
}

static void test_revoked_and_not(void **state)
{
	static const long rev[] = { 5 };
	sc_crlset *s = mkset();

	(void)state;
	assert_int_equal(check(s, ca, ca_key, 5), SC_OK); /* empty set */
	add(s, ca, ca_key, rev, 1, 0);
	assert_int_equal(sc_crlset_crl_count(s), 1);
	assert_int_equal(sc_crlset_entry_count(s), 1);
	assert_int_equal(check(s, ca, ca_key, 5), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca, ca_key, 6), SC_OK);
	assert_int_equal(check(s, ca, ca_key, 0x105), SC_OK);
	/* same serial, other issuer */
	assert_int_equal(check(s, ca2, ca2_key, 5), SC_OK);
	/* a NULL set revokes nothing */
	assert_int_equal(check(NULL, ca, ca_key, 5), SC_OK);
	assert_int_equal(sc_crlset_crl_count(NULL), 0);
	sc_crlset_free(s);
	sc_crlset_free(NULL);
}

static void test_two_crls_same_issuer(void **state)
{
	static const long a[] = { 5 }, b[] = { 7, 9 };
	sc_crlset *s = mkset();

	(void)state;
	add(s, ca, ca_key, a, 1, 0);
	add(s, ca, ca_key, b, 2, 1);
	add(s, ca2, ca2_key, b, 1, 1);
	assert_int_equal(sc_crlset_crl_count(s), 3);
	assert_int_equal(sc_crlset_entry_count(s), 4);
	assert_int_equal(check(s, ca, ca_key, 5), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca, ca_key, 7), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca, ca_key, 9), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca, ca_key, 6), SC_OK);
	assert_int_equal(check(s, ca2, ca2_key, 7), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca2, ca2_key, 9), SC_OK);
	sc_crlset_free(s);
}

static void test_multi_crl_inputs(void **state)
{
	static const long a[] = { 11 }, b[] = { 12 };
	char *c1, *c2, *buf;
	size_t l1, l2;
	sc_crlset *s = mkset();

	(void)state;
	/* PEM with two CRLs (two issuers) and a certificate block that is skipped */
	tc_crl_new(ca, ca_key, a, 1, 0, 0, &c1, &l1);
	tc_crl_new(ca2, ca2_key, b, 1, 0, 0, &c2, &l2);
	buf = malloc(l1 + l2 + 64);
	assert_non_null(buf);
	memcpy(buf, c1, l1);
	memcpy(buf + l1, "some text\n", 10);
	memcpy(buf + l1 + 10, c2, l2);
	assert_int_equal(sc_crlset_add_mem(s, buf, l1 + 10 + l2), SC_OK);
	assert_int_equal(sc_crlset_crl_count(s), 2);
	assert_int_equal(check(s, ca, ca_key, 11), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca2, ca2_key, 12), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca, ca_key, 12), SC_OK);
	free(c1);
	free(c2);
	sc_crlset_free(s);

	/* DER, two CRLs concatenated */
	s = mkset();
	tc_crl_new(ca, ca_key, a, 1, 0, 1, &c1, &l1);
	tc_crl_new(ca2, ca2_key, b, 1, 0, 1, &c2, &l2);
	memcpy(buf, c1, l1);
	memcpy(buf + l1, c2, l2);
	assert_int_equal(sc_crlset_add_mem(s, buf, l1 + l2), SC_OK);
	assert_int_equal(sc_crlset_crl_count(s), 2);
	assert_int_equal(check(s, ca2, ca2_key, 12), SC_ERR_REVOKED);
	/* trailing garbage after DER: nothing added */
	buf[l1 + l2] = 0x00;
	assert_int_not_equal(sc_crlset_add_mem(s, buf, l1 + l2 + 1), SC_OK);
	assert_int_equal(sc_crlset_crl_count(s), 2);
	free(c1);
	free(c2);
	free(buf);
	sc_crlset_free(s);
}

static void test_many_and_large_serials(void **state)
{
	long small[90];
	static const char *const large[10] = {
		"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "0100000000000000000000000000000000000000",
		"1234567890ABCDEF1234567890ABCDEF12345678", "00FF", "80",
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",  "4000000000000000000000000000000000000001",
		"1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222",
		"3333333333333333333333333333333333333333",
	};
	char *crl;
	size_t len;
	sc_crlset *s = mkset();

	(void)state;
	for (int i = 0; i < 90; i++)
		small[i] = 2 * i + 1; /* odd serials 1..179 */
	tc_crl_new_ex(ca, ca_key,
		      &(struct tc_crl_opts){ .serials = small, .nserials = 90, .serial_hex = large,
					     .nserial_hex = 10 },
		      &crl, &len);
	assert_int_equal(sc_crlset_add_mem(s, crl, len), SC_OK);
	free(crl);
	assert_int_equal(sc_crlset_entry_count(s), 100);
	/* raw check over a range: revoked exactly when odd and <= 179 */
	for (long v = 1; v < 400; v++) {
		sc_cert *c = leaf(ca, ca_key, v, NULL);
		int want = (v % 2 == 1 && v <= 179) || v == 0x80 || v == 0xff;

		assert_int_equal(sc_crlset_check_cert(s, c), want ? SC_ERR_REVOKED : SC_OK);
		sc_cert_free(c);
		if (v > 20 && v < 170)
			v += 6; /* keep the loop short but cross the whole range */
	}
	for (int i = 0; i < 10; i++) {
		sc_cert *c = leaf(ca, ca_key, 0, large[i]);

		assert_int_equal(sc_crlset_check_cert(s, c), SC_ERR_REVOKED);
		sc_cert_free(c);
	}
	{
		sc_cert *c = leaf(ca, ca_key, 0, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE");

		assert_int_equal(sc_crlset_check_cert(s, c), SC_OK);
		sc_cert_free(c);
	}
	sc_crlset_free(s);
}

static void test_negative_serials(void **state)
{
	static const long rev[] = { -1 };
	sc_crlset *s = mkset();

	(void)state;
	add(s, ca, ca_key, rev, 1, 0);
	assert_int_equal(check(s, ca, ca_key, -1), SC_ERR_REVOKED);
	assert_int_equal(check(s, ca, ca_key, 255), SC_OK);
	assert_int_equal(check(s, ca, ca_key, 1), SC_OK);
	sc_crlset_free(s);
}

static void test_issuer_encoding_variants(void **state)
{
	static const long rev[] = { 21 };
	/* same name as `ca`, PrintableString instead of UTF8String, same key */
	X509 *ca_p = tc_cert_new(&(struct tc_cert_opts){ .cn = "Test CA", .o = "smtpcert",
							 .is_ca = 1, .name_printable = 1 },
				 ca_key, NULL, NULL);
	/* case and insignificant spaces differ (RFC 5280 7.1) */
	X509 *ca_c = tc_cert_new(&(struct tc_cert_opts){ .cn = "  TEST   ca ", .o = "SMTPCERT",
							 .is_ca = 1 },
				 ca_key, NULL, NULL);
	X509 *ca_o = tc_cert_new(&(struct tc_cert_opts){ .cn = "Test CA2", .o = "smtpcert",
							 .is_ca = 1 },
				 ca_key, NULL, NULL);
	unsigned char *d1 = NULL, *d2 = NULL;
	int l1, l2;
	sc_cert *c = leaf(ca, ca_key, 21, NULL);
	sc_crlset *s;

	(void)state;
	/* the variant really is a different encoding of the name */
	l1 = i2d_X509_NAME(X509_get_subject_name(ca), &d1);
	l2 = i2d_X509_NAME(X509_get_subject_name(ca_p), &d2);
	assert_int_equal(l1, l2);
	assert_true(memcmp(d1, d2, (size_t)l1) != 0);
	OPENSSL_free(d1);
	OPENSSL_free(d2);

	s = mkset();
	add(s, ca_p, ca_key, rev, 1, 0);
	assert_int_equal(sc_crlset_check_cert(s, c), SC_ERR_REVOKED);
	sc_crlset_free(s);

	s = mkset();
	add(s, ca_c, ca_key, rev, 1, 1);
	assert_int_equal(sc_crlset_check_cert(s, c), SC_ERR_REVOKED);
	sc_crlset_free(s);

	s = mkset();
	add(s, ca_o, ca_key, rev, 1, 0);
	assert_int_equal(sc_crlset_check_cert(s, c), SC_OK);
	sc_crlset_free(s);

	sc_cert_free(c);
	X509_free(ca_p);
	X509_free(ca_c);
	X509_free(ca_o);
}

static void test_canon_name(void **state)
{
	/* SEQ { SET { SEQ { CN, PrintableString "A  b" } } } vs UTF8 "a b", BMP "A B" */
	static const uint8_t p1[] = { 0x30, 0x0f, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55,
				      0x04, 0x03, 0x13, 0x04, 'A', ' ', ' ', 'b' };
	static const uint8_t p2[] = { 0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55,
				      0x04, 0x03, 0x0c, 0x03, 'a', ' ', 'b' };
	static const uint8_t p3[] = { 0x30, 0x11, 0x31, 0x0f, 0x30, 0x0d, 0x06, 0x03, 0x55, 0x04,
				      0x03, 0x1e, 0x06, 0, 'A', 0, ' ', 0, 'B' };
	static const uint8_t bad_utf8[] = { 0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03,
					    0x55, 0x04, 0x03, 0x0c, 0x01, 0xff };
	uint8_t o1[128], o2[128], o3[128], small[4];
	size_t n1, n2, n3;

	(void)state;
	assert_int_equal(crl_name_canon(p1, sizeof p1, o1, sizeof o1, &n1), SC_OK);
	assert_int_equal(crl_name_canon(p2, sizeof p2, o2, sizeof o2, &n2), SC_OK);
	assert_int_equal(crl_name_canon(p3, sizeof p3, o3, sizeof o3, &n3), SC_OK);
	assert_int_equal(n1, n2);
	assert_memory_equal(o1, o2, n1);
	assert_int_equal(n1, n3);
	assert_memory_equal(o1, o3, n1);
	assert_true(n1 <= crl_name_canon_max(sizeof p1));
	assert_int_equal(crl_name_canon(p1, sizeof p1, small, sizeof small, &n1),
			 SC_ERR_TOO_LONG);
	/* invalid UTF-8 is kept raw, not an error */
	assert_int_equal(crl_name_canon(bad_utf8, sizeof bad_utf8, o1, sizeof o1, &n1), SC_OK);
	/* truncations are encoding errors */
	for (size_t n = 0; n < sizeof p1; n++)
		assert_int_equal(crl_name_canon(p1, n, o1, sizeof o1, &n2), SC_ERR_ENCODING);
	assert_int_equal(crl_name_canon(NULL, 0, o1, sizeof o1, &n2), SC_ERR_ENCODING);
}

static void test_refused_kinds(void **state)
{
	static const long rev[] = { 31, 32 };
	static const int reasons[] = { 8 /* removeFromCRL */, 6 /* certificateHold */ };
	struct {
		struct tc_crl_opts o;
		sc_status want;
	} cases[] = {
		{ { .serials = rev, .nserials = 1, .delta = 1 }, SC_ERR_UNSUPPORTED },
		{ { .serials = rev, .nserials = 1, .indirect = 1 }, SC_ERR_UNSUPPORTED },
		{ { .serials = rev, .nserials = 1, .unknown_critical = 1 }, SC_ERR_UNSUPPORTED },
	};
	char *crl;
	size_t len;
	sc_crlset *s = mkset();

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tc_crl_new_ex(ca, ca_key, &cases[i].o, &crl, &len);
		assert_int_equal(sc_crlset_add_mem(s, crl, len), cases[i].want);
		assert_int_equal(sc_crlset_crl_count(s), 0);
		free(crl);
	}
	/* removeFromCRL revokes nothing, certificateHold does */
	tc_crl_new_ex(ca, ca_key,
		      &(struct tc_crl_opts){ .serials = rev, .nserials = 2, .reasons = reasons },
		      &crl, &len);
	assert_int_equal(sc_crlset_add_mem(s, crl, len), SC_OK);
	free(crl);
	assert_int_equal(sc_crlset_entry_count(s), 1);
	assert_int_equal(check(s, ca, ca_key, 31), SC_OK);
	assert_int_equal(check(s, ca, ca_key, 32), SC_ERR_REVOKED);
	sc_crlset_free(s);
}

static void test_files_and_errors(void **state)
{
	static const long rev[] = { 41 };
	char dir[256], path[512], err[1024], *crl, *both;
	size_t len;
	sc_crlset *s = mkset();

	(void)state;
	tc_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/ok.crl", dir);
	tc_crl_new(ca, ca_key, rev, 1, 0, 1, &crl, &len);
	tc_write_file(path, crl, len);
	assert_int_equal(sc_crlset_add_file(s, path, err, sizeof err), SC_OK);
	assert_int_equal(check(s, ca, ca_key, 41), SC_ERR_REVOKED);
	free(crl);

	/* garbage: error names the file, nothing added */
	snprintf(path, sizeof path, "%s/bad.crl", dir);
	tc_write_file(path, "not a crl\n", 10);
	err[0] = '\0';
	assert_int_equal(sc_crlset_add_file(s, path, err, sizeof err), SC_ERR_SYNTAX);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "no CRL"));
	assert_int_equal(sc_crlset_crl_count(s), 1);
	/* NULL err buffer is fine */
	assert_int_equal(sc_crlset_add_file(s, path, NULL, 0), SC_ERR_SYNTAX);

	/* a good CRL followed by a broken block: all or nothing */
	tc_crl_new(ca2, ca2_key, rev, 1, 0, 0, &crl, &len);
	both = malloc(len + 100);
	assert_non_null(both);
	memcpy(both, crl, len);
	memcpy(both + len, "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n", 53);
	tc_write_file(path, both, len + 53);
	assert_int_equal(sc_crlset_add_file(s, path, err, sizeof err), SC_ERR_ENCODING);
	assert_non_null(strstr(err, path));
	assert_int_equal(sc_crlset_crl_count(s), 1);
	assert_int_equal(check(s, ca2, ca2_key, 41), SC_OK);
	free(both);
	free(crl);

	/* delta CRL file: message says why */
	tc_crl_new_ex(ca, ca_key, &(struct tc_crl_opts){ .serials = rev, .nserials = 1, .delta = 1 },
		      &crl, &len);
	tc_write_file(path, crl, len);
	assert_int_equal(sc_crlset_add_file(s, path, err, sizeof err), SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "delta"));
	free(crl);

	/* missing file, directory */
	snprintf(path, sizeof path, "%s/missing.crl", dir);
	assert_int_equal(sc_crlset_add_file(s, path, err, sizeof err), SC_ERR_IO);
	assert_non_null(strstr(err, path));
	assert_int_equal(sc_crlset_add_file(s, dir, err, sizeof err), SC_ERR_IO);
	assert_int_equal(sc_crlset_add_file(s, NULL, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_crlset_add_file(NULL, path, err, sizeof err), SC_ERR_ARG);

	/* empty input, oversized input, bad arguments to check */
	assert_int_equal(sc_crlset_add_mem(s, "", 0), SC_ERR_SYNTAX);
	both = calloc(1, (size_t)SC_CRL_INPUT_MAX + 1);
	assert_non_null(both);
	assert_int_equal(sc_crlset_add_mem(s, both, (size_t)SC_CRL_INPUT_MAX + 1), SC_ERR_TOO_LONG);
	free(both);
	assert_int_equal(sc_crlset_check(s, (const uint8_t *)"\x30\x01", 2,
					 (const uint8_t *)"\x01", 1),
			 SC_ERR_ARG);
	assert_int_equal(sc_crlset_check(s, NULL, 0, (const uint8_t *)"\x01", 1), SC_ERR_ARG);
	assert_int_equal(sc_crlset_check_cert(s, NULL), SC_ERR_ARG);
	assert_int_equal(sc_crlset_crl_count(s), 1);
	sc_crlset_free(s);
	tc_rmtree(dir);
}

static void test_truncated_crl(void **state)
{
	static const long rev[] = { 1, 2, 3 };
	char *crl;
	size_t len;
	sc_crlset *s = mkset();

	(void)state;
	tc_crl_new(ca, ca_key, rev, 3, 0, 1, &crl, &len);
	for (size_t n = 0; n < len; n++) {
		assert_int_not_equal(sc_crlset_add_mem(s, crl, n), SC_OK);
		assert_int_equal(sc_crlset_crl_count(s), 0);
	}
	assert_int_equal(sc_crlset_add_mem(s, crl, len), SC_OK);
	free(crl);
	sc_crlset_free(s);
}

static void test_interop_rfc4134(void **state)
{
	static const struct {
		const char *cert;
		int on_forall, on_forcarl;
	} certs[] = {
		{ "AliceRSASignByCarl.cer", 1, 0 },
		{ "BobRSASignByCarl.cer", 1, 0 },
		{ "DianeRSASignByCarl.cer", 1, 0 },
		{ "CarlRSASelf.cer", 0, 1 },
		{ "AliceDSSSignByCarlNoInherit.cer", 0, 0 }, /* issued by CarlDSS */
	};
	const char *dir = getenv("SC_INTEROP_DIR");
	char path[1024], err[1200];
	sc_crlset *all, *empty, *carl;

	(void)state;
	if (!dir) {
		printf("note: SC_INTEROP_DIR not set, RFC 4134 CRLs skipped\n");
		return;
	}
	snprintf(path, sizeof path, "%s/rfc4134/CarlRSACRLForAll.crl", dir);
	if (access(path, R_OK) != 0) {
		printf("note: %s missing, RFC 4134 CRLs skipped\n", path);
		return;
	}
	all = mkset();
	empty = mkset();
	carl = mkset();
	assert_int_equal(sc_crlset_add_file(all, path, err, sizeof err), SC_OK);
	assert_int_equal(sc_crlset_entry_count(all), 3);
	snprintf(path, sizeof path, "%s/rfc4134/CarlRSACRLEmpty.crl", dir);
	assert_int_equal(sc_crlset_add_file(empty, path, err, sizeof err), SC_OK);
	assert_int_equal(sc_crlset_entry_count(empty), 0);
	snprintf(path, sizeof path, "%s/rfc4134/CarlRSACRLForCarl.crl", dir);
	assert_int_equal(sc_crlset_add_file(carl, path, err, sizeof err), SC_OK);
	for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
		sc_cert *c = NULL;

		snprintf(path, sizeof path, "%s/rfc4134/%s", dir, certs[i].cert);
		assert_int_equal(sc_cert_load_file(path, &c), SC_OK);
		assert_int_equal(sc_crlset_check_cert(all, c),
				 certs[i].on_forall ? SC_ERR_REVOKED : SC_OK);
		assert_int_equal(sc_crlset_check_cert(carl, c),
				 certs[i].on_forcarl ? SC_ERR_REVOKED : SC_OK);
		assert_int_equal(sc_crlset_check_cert(empty, c), SC_OK);
		sc_cert_free(c);
	}
	sc_crlset_free(all);
	sc_crlset_free(empty);
	sc_crlset_free(carl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoked_and_not),
		cmocka_unit_test(test_two_crls_same_issuer),
		cmocka_unit_test(test_multi_crl_inputs),
		cmocka_unit_test(test_many_and_large_serials),
		cmocka_unit_test(test_negative_serials),
		cmocka_unit_test(test_issuer_encoding_variants),
		cmocka_unit_test(test_canon_name),
		cmocka_unit_test(test_refused_kinds),
		cmocka_unit_test(test_files_and_errors),
		cmocka_unit_test(test_truncated_crl),
		cmocka_unit_test(test_interop_rfc4134),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
