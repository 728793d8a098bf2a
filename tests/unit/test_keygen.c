/*
 * test_keygen.c - sc_keygen() (lib/keygen.c): RSA-3072 and P-256 certificates and
 * requests read back with OpenSSL (keyUsage bits and criticality, extKeyUsage,
 * subjectAltName rfc822Name or RFC 9598 SmtpUTF8Mailbox, RFC 4262
 * SMIMECapabilities content, subjectKeyIdentifier, basicConstraints, validity,
 * self-signature), the key file (mode 0600, PKCS#8 encrypted with scrypt, wrong
 * passphrase -> SC_ERR_AUTH, unencrypted only for a NULL passphrase), never
 * overwriting (nothing half-written), argument errors, and keys generated on a
 * private SoftHSM2 token (P-256 and RSA-3072; existing label, wrong/missing PIN).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"

static char dir[512];
static char err[512];

static int setup(void **state)
{
	tc_tmpdir(dir, sizeof dir);
	return 0;
}

static int teardown(void **state)
{
	tc_rmtree(dir);
	return 0;
}

static const char *path_of(const char *name)
{
	static char buf[8][700];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
	return buf[i];
}

static struct sc_addr addr(const char *s)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse(s, strlen(s), SC_ADDR_UTF8, &a, NULL), SC_OK);
	return a;
}

static int exists(const char *p)
{
	struct stat sb;

	return lstat(p, &sb) == 0;
}

static X509 *read_cert(const char *p)
{
	FILE *f = fopen(p, "r");
	X509 *x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static X509_REQ *read_csr(const char *p)
{
	FILE *f = fopen(p, "r");
	X509_REQ *r;

	assert_non_null(f);
	r = PEM_read_X509_REQ(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(r);
	return r;
}

static const X509_EXTENSION *ext_by_oid(const STACK_OF(X509_EXTENSION) *exts, const char *oid)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	const X509_EXTENSION *found = NULL;

	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

		if (!OBJ_cmp(X509_EXTENSION_get_object(e), o)) {
			assert_null(found); /* never twice */
			found = e;
		}
	}
	ASN1_OBJECT_free(o);
	return found;
}

/* The extensions both outputs carry; @p is_rsa selects the keyUsage expected. */
static void check_exts(const STACK_OF(X509_EXTENSION) *exts, int is_rsa, const char *email,
		       int utf8)
{
	static const unsigned char caps[] = {
		0x30, 0x34,
		0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e,
		0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06,
		0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a,
		0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02,
	};
	const X509_EXTENSION *ku = ext_by_oid(exts, "2.5.29.15");
	const X509_EXTENSION *eku = ext_by_oid(exts, "2.5.29.37");
	const X509_EXTENSION *san = ext_by_oid(exts, "2.5.29.17");
	const X509_EXTENSION *bc = ext_by_oid(exts, "2.5.29.19");
	const X509_EXTENSION *sc = ext_by_oid(exts, "1.2.840.113549.1.9.15");
	const ASN1_OCTET_STRING *os;
	ASN1_BIT_STRING *bits;
	EXTENDED_KEY_USAGE *ekus;
	GENERAL_NAMES *names;
	GENERAL_NAME *gn;
	BASIC_CONSTRAINTS *bcs;

	/* keyUsage: critical; RSA digitalSignature(0)+keyEncipherment(2), EC
	 * digitalSignature(0)+keyAgreement(4), nothing else. */
	assert_non_null(ku);
	assert_true(X509_EXTENSION_get_critical(ku));
	bits = X509V3_EXT_d2i((X509_EXTENSION *)ku);
	assert_non_null(bits);
	for (int b = 0; b < 9; b++)
		assert_int_equal(ASN1_BIT_STRING_get_bit(bits, b),
				 b == 0 || (is_rsa ? b == 2 : b == 4));
	ASN1_BIT_STRING_free(bits);

	assert_non_null(eku);
	ekus = X509V3_EXT_d2i((X509_EXTENSION *)eku);
	assert_int_equal(sk_ASN1_OBJECT_num(ekus), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(ekus, 0)), NID_email_protect);
	sk_ASN1_OBJECT_pop_free(ekus, ASN1_OBJECT_free);

	assert_non_null(bc);
	bcs = X509V3_EXT_d2i((X509_EXTENSION *)bc);
	assert_false(bcs->ca);
	BASIC_CONSTRAINTS_free(bcs);

	assert_non_null(san);
	names = X509V3_EXT_d2i((X509_EXTENSION *)san);
	assert_int_equal(sk_GENERAL_NAME_num(names), 1);
	gn = sk_GENERAL_NAME_value(names, 0);
	if (!utf8) {
		assert_int_equal(gn->type, GEN_EMAIL);
		assert_int_equal(ASN1_STRING_length(gn->d.rfc822Name), strlen(email));
		assert_memory_equal(ASN1_STRING_get0_data(gn->d.rfc822Name), email, strlen(email));
	} else {
		ASN1_OBJECT *want = OBJ_txt2obj("1.3.6.1.5.5.7.8.9", 1);

		assert_int_equal(gn->type, GEN_OTHERNAME);
		assert_int_equal(OBJ_cmp(gn->d.otherName->type_id, want), 0);
		assert_int_equal(gn->d.otherName->value->type, V_ASN1_UTF8STRING);
		assert_int_equal(ASN1_STRING_length(gn->d.otherName->value->value.utf8string),
				 strlen(email));
		assert_memory_equal(ASN1_STRING_get0_data(
					    gn->d.otherName->value->value.utf8string),
				    email, strlen(email));
		ASN1_OBJECT_free(want);
	}
	GENERAL_NAMES_free(names);

	/* RFC 4262: AES-256-GCM, AES-128-GCM, AES-256-CBC, AES-128-CBC, in that order. */
	assert_non_null(sc);
	assert_false(X509_EXTENSION_get_critical(sc));
	os = X509_EXTENSION_get_data((X509_EXTENSION *)sc);
	assert_int_equal(ASN1_STRING_length(os), sizeof caps);
	assert_memory_equal(ASN1_STRING_get0_data(os), caps, sizeof caps);
}

static void check_cert(const char *p, const char *email, int is_rsa, int utf8, int days)
{
	X509 *x = read_cert(p);
	const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(x);
	time_t now = time(NULL);
	int pday, psec;
	sc_cert *c = NULL;
	struct sc_addr a = addr(email);
	char *pem;
	size_t len;

	check_exts(exts, is_rsa, email, utf8);
	assert_non_null(ext_by_oid(exts, "2.5.29.14")); /* subjectKeyIdentifier */
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	/* Self-signed: the signature verifies with its own key. */
	assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(x)),
			 is_rsa ? EVP_PKEY_RSA : EVP_PKEY_EC);
	if (is_rsa)
		assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(x)), 3072);
	assert_true(X509_cmp_time(X509_get0_notBefore(x), &now) < 0);
	assert_int_equal(ASN1_TIME_diff(&pday, &psec, NULL, X509_get0_notAfter(x)), 1);
	assert_true(pday == days - 1 || pday == days);
	/* Our own library accepts it for the address. */
	assert_int_equal(tc_read_file(p, &pem, &len), 0);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	assert_true(sc_cert_has_email(c, &a));
	free(pem);
	sc_cert_free(c);
	X509_free(x);
}

static void check_key(const char *keyfile, const char *certfile, const char *pass)
{
	struct sc_key_opts o = { .passphrase = pass };
	struct stat sb;
	sc_cert *c = NULL;
	sc_key *k = NULL;
	char *pem;
	size_t len;

	assert_int_equal(stat(keyfile, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(tc_read_file(keyfile, &pem, &len), 0);
	if (pass) {
		assert_non_null(strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
	} else {
		assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
		assert_null(strstr(pem, "ENCRYPTED"));
	}
	free(pem);
	assert_int_equal(sc_key_load(keyfile, &o, &k, err, sizeof err), SC_OK);
	if (certfile) {
		assert_int_equal(sc_cert_load_file(certfile, &c), SC_OK);
		assert_true(sc_key_matches(k, c));
		sc_cert_free(c);
	}
	sc_key_free(k);
	k = NULL;
	if (pass) {
		o.passphrase = "not the passphrase";
		assert_int_equal(sc_key_load(keyfile, &o, &k, err, sizeof err), SC_ERR_AUTH);
		o.passphrase = NULL;
		assert_int_equal(sc_key_load(keyfile, &o, &k, err, sizeof err), SC_ERR_AUTH);
		assert_null(k);
	}
}

static void test_p256_cert_and_csr(void **state)
{
	struct sc_addr a = addr("alice@example.test");
	struct sc_keygen_opts o = { .email = &a, .type = SC_KEYGEN_P256,
				    .out_key = path_of("ec.key"), .passphrase = "correct horse",
				    .out_cert = path_of("ec.crt"), .out_csr = path_of("ec.csr"),
				    .days = 30 };
	X509_REQ *r;
	STACK_OF(X509_EXTENSION) *exts;
	sc_key *k = NULL;
	struct sc_key_opts ko = { .passphrase = "correct horse" };

	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_OK);
	check_cert(path_of("ec.crt"), "alice@example.test", 0, 0, 30);
	check_key(path_of("ec.key"), path_of("ec.crt"), "correct horse");
	assert_int_equal(sc_key_load(path_of("ec.key"), &ko, &k, err, sizeof err), SC_OK);
	assert_string_equal(sc_key_describe(k), "EC-P-256");
	sc_key_free(k);

	/* The request: signed by the key, same subject and extensions. */
	r = read_csr(path_of("ec.csr"));
	assert_int_equal(X509_REQ_verify(r, X509_REQ_get0_pubkey(r)), 1);
	exts = X509_REQ_get_extensions(r);
	check_exts(exts, 0, "alice@example.test", 0);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(r);
}

static void test_rsa_default(void **state)
{
	struct sc_addr a = addr("Bob.Smith@Example.TEST");
	struct sc_keygen_opts o = { .email = &a, .out_key = path_of("rsa.key"),
				    .passphrase = "pw", .out_cert = path_of("rsa.crt") };

	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_OK);
	check_cert(path_of("rsa.crt"), "Bob.Smith@Example.TEST", 1, 0, 365);
	check_key(path_of("rsa.key"), path_of("rsa.crt"), "pw");
	assert_false(exists(path_of("rsa.csr")));
}

static void test_smtputf8_mailbox(void **state)
{
	static const char who[] = "j\xc3\xb6rg@example.test";
	struct sc_addr a = addr(who);
	struct sc_keygen_opts o = { .email = &a, .type = SC_KEYGEN_P256,
				    .out_key = path_of("u.key"), .passphrase = "pw",
				    .out_cert = path_of("u.crt"), .out_csr = path_of("u.csr") };
	X509_REQ *r;
	STACK_OF(X509_EXTENSION) *exts;

	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_OK);
	check_cert(path_of("u.crt"), who, 0, 1, 365);
	r = read_csr(path_of("u.csr"));
	exts = X509_REQ_get_extensions(r);
	check_exts(exts, 0, who, 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(r);

	/* A non-ASCII domain must be given as A-labels. */
	a = addr("j\xc3\xb6rg@b\xc3\xbc" "cher.test");
	o.out_key = path_of("u2.key");
	o.out_cert = path_of("u2.crt");
	o.out_csr = NULL;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "A-labels"));
	assert_false(exists(path_of("u2.key")));
}

static void test_csr_only_unencrypted(void **state)
{
	struct sc_addr a = addr("carol@example.test");
	struct sc_keygen_opts o = { .email = &a, .type = SC_KEYGEN_P256,
				    .out_key = path_of("c.key"), .out_csr = path_of("c.csr") };
	X509_REQ *r;

	/* passphrase NULL: the caller asked for an unencrypted key. */
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_OK);
	check_key(path_of("c.key"), NULL, NULL);
	assert_false(exists(path_of("c.crt")));
	r = read_csr(path_of("c.csr"));
	assert_int_equal(X509_REQ_verify(r, X509_REQ_get0_pubkey(r)), 1);
	X509_REQ_free(r);
}

static void test_never_overwrite(void **state)
{
	struct sc_addr a = addr("dave@example.test");
	struct sc_keygen_opts o = { .email = &a, .type = SC_KEYGEN_P256,
				    .out_key = path_of("d.key"), .passphrase = "pw",
				    .out_cert = path_of("d.crt") };
	char *data;
	size_t len;

	tc_write_file(path_of("d.crt"), "keep me", 7);
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_EXISTS);
	assert_non_null(strstr(err, "d.crt"));
	assert_false(exists(path_of("d.key")));
	assert_int_equal(tc_read_file(path_of("d.crt"), &data, &len), 0);
	assert_string_equal(data, "keep me");
	free(data);

	tc_write_file(path_of("d2.key"), "old key", 7);
	o.out_key = path_of("d2.key");
	o.out_cert = path_of("d2.crt");
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_EXISTS);
	assert_false(exists(path_of("d2.crt")));
	assert_int_equal(tc_read_file(path_of("d2.key"), &data, &len), 0);
	assert_string_equal(data, "old key");
	free(data);

	/* A symlink is not followed, even a dangling one. */
	assert_int_equal(symlink(path_of("elsewhere"), path_of("link.key")), 0);
	o.out_key = path_of("link.key");
	o.out_cert = path_of("d3.crt");
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_EXISTS);
	assert_false(exists(path_of("elsewhere")));
}

static void test_args(void **state)
{
	struct sc_addr a = addr("erin@example.test");
	struct sc_keygen_opts base = { .email = &a, .type = SC_KEYGEN_P256,
				       .out_key = path_of("e.key"), .passphrase = "pw",
				       .out_cert = path_of("e.crt") };
	struct sc_keygen_opts o;

	assert_int_equal(sc_keygen(NULL, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.email = NULL;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.out_cert = NULL;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.out_key = NULL;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.pkcs11_uri = "pkcs11:token=x";
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.days = -1;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o.days = 100000;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.type = (enum sc_keygen_type)7;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.passphrase = "";
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	assert_non_null(strstr(err, "empty passphrase"));
	o = base;
	o.out_cert = o.out_key;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_ARG);
	o = base;
	o.out_key = "/nonexistent-dir/e.key";
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_IO);
	assert_false(exists(path_of("e.crt")));
	/* Nothing was left behind by any of these. */
	assert_false(exists(path_of("e.key")));
	assert_false(exists(path_of("e.crt")));
}

/* ---- on a SoftHSM2 token ---------------------------------------------------------- */

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

static void hsm_init(void)
{
	char conf[700], cmd[1024];
	FILE *f;

	if (access(SOFTHSM_MODULE, R_OK) != 0 || system("command -v softhsm2-util >/dev/null"))
		fail_msg("SoftHSM2 missing: install softhsm2 (scripts/install-deps)");
	snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
	assert_int_equal(mkdir(path_of("tokens"), 0700), 0);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		path_of("tokens"));
	fclose(f);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof cmd, "softhsm2-util --init-token --free --label gen --pin 1234 "
		 "--so-pin 12345678 >/dev/null");
	assert_int_equal(system(cmd), 0);
}

static void test_pkcs11(void **state)
{
	struct sc_addr a = addr("frank@example.test");
	struct sc_key_opts ko = { .pin = "1234", .pkcs11_module = SOFTHSM_MODULE };
	struct sc_keygen_opts o = { .email = &a, .type = SC_KEYGEN_P256,
				    .pkcs11_uri = "pkcs11:token=gen;object=mail;id=%05",
				    .pkcs11 = &ko, .out_cert = path_of("t.crt"),
				    .out_csr = path_of("t.csr") };
	sc_cert *c = NULL;
	sc_key *k = NULL;

	hsm_init();
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_OK);
	check_cert(path_of("t.crt"), "frank@example.test", 0, 0, 365);
	/* The certificate is for the key on the token, found by label or by id. */
	assert_int_equal(sc_cert_load_file(path_of("t.crt"), &c), SC_OK);
	assert_int_equal(sc_key_load("pkcs11:token=gen;object=mail", &ko, &k, err, sizeof err),
			 SC_OK);
	assert_string_equal(sc_key_describe(k), "EC-P-256");
	assert_true(sc_key_matches(k, c));
	sc_key_free(k);
	assert_int_equal(sc_key_load("pkcs11:token=gen;id=%05", &ko, &k, err, sizeof err), SC_OK);
	assert_true(sc_key_matches(k, c));
	sc_key_free(k);
	sc_cert_free(c);

	/* Never a second key under the same label or id. */
	o.out_cert = path_of("t2.crt");
	o.out_csr = NULL;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_EXISTS);
	assert_false(exists(path_of("t2.crt")));
	/* Wrong PIN, no PIN, no such token. */
	o.pkcs11_uri = "pkcs11:token=gen;object=other";
	ko.pin = "9999";
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_AUTH);
	assert_non_null(strstr(err, "wrong PIN"));
	ko.pin = NULL;
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_AUTH);
	ko.pin = "1234";
	o.pkcs11_uri = "pkcs11:token=nosuch";
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_ERR_NOT_FOUND);
	assert_false(exists(path_of("t2.crt")));

	/* RSA-3072 on the token, default label; the request only. */
	o.type = SC_KEYGEN_RSA3072;
	o.pkcs11_uri = "pkcs11:token=gen";
	o.out_cert = NULL;
	o.out_csr = path_of("t3.csr");
	assert_int_equal(sc_keygen(&o, err, sizeof err), SC_OK);
	assert_int_equal(sc_key_load("pkcs11:token=gen;object=smtpcert", &ko, &k, err, sizeof err),
			 SC_OK);
	assert_string_equal(sc_key_describe(k), "RSA-3072");
	sc_key_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_p256_cert_and_csr),
		cmocka_unit_test(test_rsa_default),
		cmocka_unit_test(test_smtputf8_mailbox),
		cmocka_unit_test(test_csr_only_unencrypted),
		cmocka_unit_test(test_never_overwrite),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_pkcs11),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
