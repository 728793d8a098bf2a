/*
 * test_key.c - private keys (lib/key.c, lib/key_p11uri.c, lib/key_pkcs11.c):
 * every file form (PKCS#8 PEM/DER, encrypted or not, traditional RSA/EC with and
 * without Proc-Type encryption), passphrase handling (wrong, missing, extra),
 * refusals (missing, empty, directory, certificate only, garbage, NUL bytes,
 * truncated, oversized, DSA), key/certificate matching, the RFC 7512 URI parser
 * (escapes, id, duplicates, unknown and vendor attributes, type, pin-source),
 * and keys on a private SoftHSM2 token made by OpenSC's pkcs11-tool: load by label
 * and id, sign and decrypt on the token, wrong/missing PIN, missing token/key/module.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <smtpcert/smtpcert.h>
#include "key_int.h"
#include "testcert.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

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

static void write_bio(BIO *b, const char *name)
{
	char *data;
	long len = BIO_get_mem_data(b, &data);

	tc_write_file(path_of(name), data, (size_t)len);
	BIO_free(b);
}

static sc_status load(const char *name, const char *pass, sc_key **k)
{
	struct sc_key_opts o = { .passphrase = pass };

	err[0] = '\0';
	return sc_key_load(path_of(name), &o, k, err, sizeof err);
}

static sc_cert *cert_for(tc_key *k)
{
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "Key test",
			      .emails = { "alice@example.test" } }, k, NULL, NULL);
	sc_cert *c = NULL;
	char *pem;
	size_t len;

	tc_cert_pem(x, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	free(pem);
	X509_free(x);
	return c;
}

/* ---- files ------------------------------------------------------------------------ */

static void test_pkcs8_plain(void **state)
{
	tc_key *rsa = tc_key_shared(TC_RSA2048), *ec = tc_key_shared(TC_P256);
	sc_cert *crsa = cert_for(rsa), *cec = cert_for(ec);
	sc_key *k = NULL;
	char *pem;
	size_t len;

	tc_key_pem(rsa, &pem, &len);
	tc_write_file(path_of("rsa.pem"), pem, len);
	free(pem);
	tc_key_pem(ec, &pem, &len);
	tc_write_file(path_of("ec.pem"), pem, len);
	free(pem);

	assert_int_equal(load("rsa.pem", NULL, &k), SC_OK);
	assert_string_equal(sc_key_describe(k), "RSA-2048");
	assert_true(sc_key_matches(k, crsa));
	assert_false(sc_key_matches(k, cec));
	assert_ptr_not_equal(key_evp(k), NULL);
	assert_int_equal(EVP_PKEY_eq(key_evp(k), tc_key_pkey(rsa)), 1);
	sc_key_free(k);

	/* A passphrase given for an unencrypted key is not needed, and not an error. */
	assert_int_equal(load("ec.pem", "unused", &k), SC_OK);
	assert_string_equal(sc_key_describe(k), "EC-P-256");
	assert_true(sc_key_matches(k, cec));
	assert_false(sc_key_matches(k, crsa));
	assert_false(sc_key_matches(k, NULL));
	assert_false(sc_key_matches(NULL, cec));
	sc_key_free(k);
	sc_cert_free(crsa);
	sc_cert_free(cec);
	assert_null(key_evp(NULL));
	assert_string_equal(sc_key_describe(NULL), "none");
	sc_key_free(NULL);
}

static void test_pkcs8_encrypted(void **state)
{
	tc_key *ec = tc_key_shared(TC_P256);
	BIO *b = BIO_new(BIO_s_mem());
	sc_key *k = NULL;

	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, tc_key_pkey(ec), EVP_aes_256_cbc(),
						       NULL, 0, NULL, (void *)"s3cret pass"), 1);
	write_bio(b, "enc.pem");

	assert_int_equal(load("enc.pem", "s3cret pass", &k), SC_OK);
	assert_int_equal(EVP_PKEY_eq(key_evp(k), tc_key_pkey(ec)), 1);
	sc_key_free(k);
	k = NULL;

	assert_int_equal(load("enc.pem", "wrong", &k), SC_ERR_AUTH);
	assert_null(k);
	assert_non_null(strstr(err, "wrong passphrase"));
	assert_int_equal(load("enc.pem", "", &k), SC_ERR_AUTH);
	/* No passphrase: refused, and OpenSSL must not prompt (the test has no tty). */
	assert_int_equal(load("enc.pem", NULL, &k), SC_ERR_AUTH);
	assert_non_null(strstr(err, "encrypted"));
	assert_non_null(strstr(err, "enc.pem"));

	/* DER EncryptedPrivateKeyInfo (RFC 5958 section 3). */
	b = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_PKCS8PrivateKey_bio(b, tc_key_pkey(ec), EVP_aes_128_cbc(), NULL, 0,
						 NULL, (void *)"der pass"), 1);
	write_bio(b, "enc.der");
	assert_int_equal(load("enc.der", "der pass", &k), SC_OK);
	assert_string_equal(sc_key_describe(k), "EC-P-256");
	sc_key_free(k);
	assert_int_equal(load("enc.der", "nope", &k), SC_ERR_AUTH);
	assert_int_equal(load("enc.der", NULL, &k), SC_ERR_AUTH);
}

static void test_traditional(void **state)
{
	tc_key *rsa = tc_key_shared(TC_RSA2048), *ec = tc_key_shared(TC_P256);
	BIO *b;
	sc_key *k = NULL;

	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, tc_key_pkey(rsa), NULL, NULL, 0,
							      NULL, NULL), 1);
	write_bio(b, "rsa-trad.pem");
	assert_int_equal(load("rsa-trad.pem", NULL, &k), SC_OK);
	assert_string_equal(sc_key_describe(k), "RSA-2048");
	sc_key_free(k);

	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, tc_key_pkey(ec), NULL, NULL, 0,
							      NULL, NULL), 1);
	write_bio(b, "ec-trad.pem");
	assert_int_equal(load("ec-trad.pem", NULL, &k), SC_OK);
	assert_string_equal(sc_key_describe(k), "EC-P-256");
	sc_key_free(k);

	/* OpenSSL's Proc-Type: 4,ENCRYPTED form. */
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, tc_key_pkey(rsa),
							      EVP_aes_256_cbc(),
							      (unsigned char *)"trad", 4, NULL,
							      NULL), 1);
	write_bio(b, "rsa-trad-enc.pem");
	assert_int_equal(load("rsa-trad-enc.pem", "trad", &k), SC_OK);
	assert_int_equal(EVP_PKEY_eq(key_evp(k), tc_key_pkey(rsa)), 1);
	sc_key_free(k);
	assert_int_equal(load("rsa-trad-enc.pem", "bad", &k), SC_ERR_AUTH);
	assert_int_equal(load("rsa-trad-enc.pem", NULL, &k), SC_ERR_AUTH);

	/* Plain DER, traditional and PKCS#8. */
	b = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_PrivateKey_bio(b, tc_key_pkey(ec)), 1);
	write_bio(b, "ec.der");
	assert_int_equal(load("ec.der", NULL, &k), SC_OK);
	assert_string_equal(sc_key_describe(k), "EC-P-256");
	sc_key_free(k);
	b = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_PKCS8PrivateKey_bio(b, tc_key_pkey(rsa), NULL, NULL, 0, NULL, NULL),
			 1);
	write_bio(b, "rsa8.der");
	assert_int_equal(load("rsa8.der", NULL, &k), SC_OK);
	assert_string_equal(sc_key_describe(k), "RSA-2048");
	sc_key_free(k);
}

static void test_file_errors(void **state)
{
	static const char garbage[] = "-----BEGIN PRIVATE KEY-----\nnot base64 !!\n"
				      "-----END PRIVATE KEY-----\n";
	static const char nul[] = "-----BEGIN PRIVATE KEY-----\nMIIB\0AAA\n"
				  "-----END PRIVATE KEY-----\n";
	tc_key *ec = tc_key_shared(TC_P256);
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "c" }, ec, NULL, NULL);
	sc_key *k = (sc_key *)&k;
	char *pem, *big;
	size_t len;

	assert_int_equal(load("missing.pem", NULL, &k), SC_ERR_NOT_FOUND);
	assert_null(k);
	assert_non_null(strstr(err, "missing.pem"));
	tc_write_file(path_of("empty.pem"), "", 0);
	assert_int_equal(load("empty.pem", NULL, &k), SC_ERR_SYNTAX);
	assert_int_equal(mkdir(path_of("adir"), 0700), 0);
	assert_int_equal(load("adir", NULL, &k), SC_ERR_IO);

	tc_cert_pem(x, &pem, &len);
	tc_write_file(path_of("cert.pem"), pem, len);
	assert_int_equal(load("cert.pem", NULL, &k), SC_ERR_SYNTAX);
	assert_non_null(strstr(err, "no PRIVATE KEY"));
	free(pem);
	X509_free(x);

	tc_write_file(path_of("garbage.pem"), garbage, sizeof garbage - 1);
	assert_int_equal(load("garbage.pem", NULL, &k), SC_ERR_SYNTAX);
	tc_write_file(path_of("nul.pem"), nul, sizeof nul - 1);
	assert_int_equal(load("nul.pem", NULL, &k), SC_ERR_SYNTAX);
	tc_write_file(path_of("junk.der"), "\x30\x03\x02\x01\x00", 5);
	assert_int_equal(load("junk.der", NULL, &k), SC_ERR_SYNTAX);
	tc_write_file(path_of("text.txt"), "hello\n", 6);
	assert_int_equal(load("text.txt", NULL, &k), SC_ERR_SYNTAX);

	/* Truncated PEM: the END line is missing. */
	tc_key_pem(ec, &pem, &len);
	tc_write_file(path_of("trunc.pem"), pem, len / 2);
	assert_int_equal(load("trunc.pem", NULL, &k), SC_ERR_SYNTAX);
	free(pem);

	/* Over the read limit (256 KiB): refused before parsing. */
	big = malloc(300 * 1024);
	assert_non_null(big);
	memset(big, 'A', 300 * 1024);
	tc_write_file(path_of("big.pem"), big, 300 * 1024);
	free(big);
	assert_int_equal(load("big.pem", NULL, &k), SC_ERR_TOO_LONG);

	assert_int_equal(sc_key_load(NULL, NULL, &k, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_key_load("", NULL, &k, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_key_load("x", NULL, NULL, err, sizeof err), SC_ERR_ARG);
	/* NULL opts = no passphrase; NULL err is allowed. */
	assert_int_equal(sc_key_load(path_of("missing.pem"), NULL, &k, NULL, 0),
			 SC_ERR_NOT_FOUND);
}

static void test_unsupported_type(void **state)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
	EVP_PKEY *params = NULL, *dsa = NULL;
	EVP_PKEY_CTX *kc;
	BIO *b = BIO_new(BIO_s_mem());
	sc_key *k = NULL;

	assert_non_null(pc);
	assert_int_equal(EVP_PKEY_paramgen_init(pc), 1);
	assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_bits(pc, 1024), 1);
	assert_int_equal(EVP_PKEY_paramgen(pc, &params), 1);
	kc = EVP_PKEY_CTX_new(params, NULL);
	assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
	assert_int_equal(EVP_PKEY_keygen(kc, &dsa), 1);
	assert_int_equal(PEM_write_bio_PrivateKey(b, dsa, NULL, NULL, 0, NULL, NULL), 1);
	write_bio(b, "dsa.pem");
	assert_int_equal(load("dsa.pem", NULL, &k), SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "DSA"));
	assert_null(k);
	EVP_PKEY_free(dsa);
	EVP_PKEY_free(params);
	EVP_PKEY_CTX_free(kc);
	EVP_PKEY_CTX_free(pc);
}

/* ---- RFC 7512 URIs ------------------------------------------------------------------ */

static void test_is_pkcs11(void **state)
{
	assert_true(sc_key_is_pkcs11("pkcs11:token=a"));
	assert_true(sc_key_is_pkcs11("PKCS11:"));
	assert_false(sc_key_is_pkcs11("pkcs11"));
	assert_false(sc_key_is_pkcs11("/tmp/pkcs11:x"));
	assert_false(sc_key_is_pkcs11(""));
	assert_false(sc_key_is_pkcs11(NULL));
}

static void test_uri_parse(void **state)
{
	struct key_p11_uri u;
	char shown[64];

	assert_int_equal(key_p11_uri_parse("pkcs11:token=My%20Token;object=sign%3bkey;"
					   "id=%01%00%ff;manufacturer=SoftHSM%20project;"
					   "serial=0123;model=SoftHSM%20v2;type=private;"
					   "slot-id=7;x-vendor=1;library-version=2"
					   "?module-path=/usr/lib/softhsm/libsofthsm2.so"
					   "&pin-value=12%2634&module-name=softhsm2",
					   &u, err, sizeof err), SC_OK);
	assert_true(u.has_token);
	assert_string_equal(u.token, "My Token");
	assert_string_equal(u.object, "sign;key");
	assert_int_equal(u.id_len, 3);
	assert_memory_equal(u.id, "\x01\x00\xff", 3);
	assert_string_equal(u.manufacturer, "SoftHSM project");
	assert_string_equal(u.serial, "0123");
	assert_string_equal(u.model, "SoftHSM v2");
	assert_true(u.has_slot_id);
	assert_int_equal(u.slot_id, 7);
	assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(u.pin_value, "12&34");
	assert_false(u.has_pin_source);

	/* Empty path and empty pairs are fine: any token, the only key. */
	assert_int_equal(key_p11_uri_parse("pkcs11:", &u, err, sizeof err), SC_OK);
	assert_false(u.has_token);
	assert_int_equal(key_p11_uri_parse("pkcs11:;;object=a;?&", &u, err, sizeof err), SC_OK);
	assert_string_equal(u.object, "a");

	/* Errors. */
	assert_int_equal(key_p11_uri_parse("file:/x", &u, err, sizeof err), SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:token", &u, err, sizeof err), SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:token=a;token=b", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(key_p11_uri_parse("pkcs11:id=%01;id=%02", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:colour=blue", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_non_null(strstr(err, "colour"));
	assert_int_equal(key_p11_uri_parse("pkcs11:type=cert", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:object=%zz", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:object=ab%4", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:object=ab%", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:object=a%00b", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:object=a b", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:object=\xc3\xa9", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:slot-id=x1", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:slot-id=", &u, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_int_equal(key_p11_uri_parse("pkcs11:?pin-value=1&pin-source=/x", &u, err,
					   sizeof err), SC_ERR_SYNTAX);

	/* Bounds: one value over KEY_P11_ATTR_MAX, the whole URI over KEY_P11_URI_MAX. */
	{
		char big[KEY_P11_URI_MAX + 64];

		snprintf(big, sizeof big, "pkcs11:object=");
		memset(big + 14, 'a', KEY_P11_ATTR_MAX);
		big[14 + KEY_P11_ATTR_MAX] = '\0';
		assert_int_equal(key_p11_uri_parse(big, &u, err, sizeof err), SC_ERR_SYNTAX);
		memset(big + 14, 'a', sizeof big - 15);
		big[sizeof big - 1] = '\0';
		assert_int_equal(key_p11_uri_parse(big, &u, err, sizeof err), SC_ERR_TOO_LONG);
	}

	/* Messages never show the query (it may hold the PIN). */
	key_p11_uri_display("pkcs11:token=t?pin-value=1234", shown, sizeof shown);
	assert_string_equal(shown, "pkcs11:token=t");
}

static void test_uri_pin(void **state)
{
	struct key_p11_uri u;
	struct sc_key_opts o = { .pin = "from-opts" };
	char pin[64], uri[800];
	int have;

	assert_int_equal(key_p11_uri_parse("pkcs11:?pin-value=9876", &u, err, sizeof err), SC_OK);
	assert_int_equal(key_p11_pin(&u, &o, pin, sizeof pin, &have, err, sizeof err), SC_OK);
	assert_true(have);
	assert_string_equal(pin, "from-opts");
	assert_int_equal(key_p11_pin(&u, NULL, pin, sizeof pin, &have, err, sizeof err), SC_OK);
	assert_string_equal(pin, "9876");

	tc_write_file(path_of("pin.txt"), "4321\nrest\n", 10);
	snprintf(uri, sizeof uri, "pkcs11:?pin-source=file:%s", path_of("pin.txt"));
	assert_int_equal(key_p11_uri_parse(uri, &u, err, sizeof err), SC_OK);
	assert_int_equal(key_p11_pin(&u, NULL, pin, sizeof pin, &have, err, sizeof err), SC_OK);
	assert_true(have);
	assert_string_equal(pin, "4321");
	snprintf(uri, sizeof uri, "pkcs11:?pin-source=%s", path_of("nope.txt"));
	assert_int_equal(key_p11_uri_parse(uri, &u, err, sizeof err), SC_OK);
	assert_int_equal(key_p11_pin(&u, NULL, pin, sizeof pin, &have, err, sizeof err),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(key_p11_uri_parse("pkcs11:?pin-source=relative", &u, err, sizeof err),
			 SC_OK);
	assert_int_equal(key_p11_pin(&u, NULL, pin, sizeof pin, &have, err, sizeof err),
			 SC_ERR_SYNTAX);

	assert_int_equal(key_p11_uri_parse("pkcs11:token=x", &u, err, sizeof err), SC_OK);
	assert_int_equal(key_p11_pin(&u, NULL, pin, sizeof pin, &have, err, sizeof err), SC_OK);
	assert_false(have);

	/* Module: the URI's, the caller's, the environment's, p11-kit's proxy. */
	assert_string_equal(key_p11_module(&u, NULL), getenv("SMTPCERT_PKCS11_MODULE") ?
			    getenv("SMTPCERT_PKCS11_MODULE") : "p11-kit-proxy.so");
	assert_int_equal(key_p11_uri_parse("pkcs11:?module-path=/m.so", &u, err, sizeof err),
			 SC_OK);
	assert_string_equal(key_p11_module(&u, NULL), "/m.so");
	o.pkcs11_module = "/o.so";
	assert_string_equal(key_p11_module(&u, &o), "/m.so");
	assert_int_equal(key_p11_uri_parse("pkcs11:token=x", &u, err, sizeof err), SC_OK);
	assert_string_equal(key_p11_module(&u, &o), "/o.so");
}

/* ---- a SoftHSM2 token ---------------------------------------------------------------- */

static char hsm_conf[700];

/* Run a shell command with the private SoftHSM2 config; fail the test if it fails. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("command failed (%d): %s", rc, cmd);
}

static void hsm_init(void)
{
	FILE *f;

	if (access(SOFTHSM_MODULE, R_OK) != 0 || system("command -v softhsm2-util >/dev/null") ||
	    system("command -v pkcs11-tool >/dev/null"))
		fail_msg("SoftHSM2 / OpenSC missing: install softhsm2 and opensc "
			 "(scripts/install-deps)");
	snprintf(hsm_conf, sizeof hsm_conf, "%s/softhsm2.conf", dir);
	assert_int_equal(mkdir(path_of("tokens"), 0700), 0);
	f = fopen(hsm_conf, "w");
	assert_non_null(f);
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		path_of("tokens"));
	fclose(f);
	setenv("SOFTHSM2_CONF", hsm_conf, 1);
	sh("softhsm2-util --init-token --free --label unit --pin 1234 --so-pin 12345678 "
	   ">/dev/null");
}

#define P11TOOL "pkcs11-tool --module " SOFTHSM_MODULE " --token-label unit --login --pin 1234 "

static void test_pkcs11_token(void **state)
{
	tc_key *rsa = tc_key_shared(TC_RSA2048), *ec = tc_key_shared(TC_P256);
	sc_cert *crsa = cert_for(rsa), *cec = cert_for(ec);
	struct sc_key_opts o = { 0 };
	unsigned char sig[512], ct[512], pt[512];
	size_t siglen = sizeof sig, ctlen = sizeof ct, ptlen = sizeof pt;
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pc;
	sc_key *k = NULL;
	char uri[1024];
	BIO *b;

	hsm_init();
	/* Import our own keys (so the certificates match) with an independent tool. */
	b = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_PrivateKey_bio(b, tc_key_pkey(rsa)), 1);
	write_bio(b, "rsa-imp.der");
	b = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_PrivateKey_bio(b, tc_key_pkey(ec)), 1);
	write_bio(b, "ec-imp.der");
	sh(P11TOOL "--write-object %s --type privkey --label rsakey --id 01 --usage-sign "
	   "--usage-decrypt >/dev/null", path_of("rsa-imp.der"));
	sh(P11TOOL "--write-object %s --type privkey --label eckey --id 02 --usage-sign "
	   "--usage-derive >/dev/null", path_of("ec-imp.der"));

	/* By label, PIN in the URI. */
	snprintf(uri, sizeof uri, "pkcs11:token=unit;object=rsakey?module-path=%s&pin-value=1234",
		 SOFTHSM_MODULE);
	assert_int_equal(sc_key_load(uri, &o, &k, err, sizeof err), SC_OK);
	assert_string_equal(sc_key_describe(k), "RSA-2048");
	assert_true(sc_key_matches(k, crsa));
	assert_false(sc_key_matches(k, cec));
	/* Sign on the token, verify with the certificate's key. */
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key_evp(k)), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)"msg", 3), 1);
	EVP_MD_CTX_free(md);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, tc_key_pkey(rsa)), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, (const unsigned char *)"msg", 3), 1);
	EVP_MD_CTX_free(md);
	/* Decrypt on the token what the public key encrypted (RSA key transport). */
	pc = EVP_PKEY_CTX_new(tc_key_pkey(rsa), NULL);
	assert_int_equal(EVP_PKEY_encrypt_init(pc), 1);
	assert_int_equal(EVP_PKEY_encrypt(pc, ct, &ctlen, (const unsigned char *)"content key", 11),
			 1);
	EVP_PKEY_CTX_free(pc);
	pc = EVP_PKEY_CTX_new(key_evp(k), NULL);
	assert_int_equal(EVP_PKEY_decrypt_init(pc), 1);
	assert_int_equal(EVP_PKEY_decrypt(pc, pt, &ptlen, ct, ctlen), 1);
	assert_int_equal(ptlen, 11);
	assert_memory_equal(pt, "content key", 11);
	EVP_PKEY_CTX_free(pc);
	sc_key_free(k);

	/* By id, PIN from the options, module from the options. */
	o.pin = "1234";
	o.pkcs11_module = SOFTHSM_MODULE;
	assert_int_equal(sc_key_load("pkcs11:token=unit;id=%02", &o, &k, err, sizeof err), SC_OK);
	assert_string_equal(sc_key_describe(k), "EC-P-256");
	assert_true(sc_key_matches(k, cec));
	siglen = sizeof sig;
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key_evp(k)), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)"msg", 3), 1);
	EVP_MD_CTX_free(md);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, tc_key_pkey(ec)), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, (const unsigned char *)"msg", 3), 1);
	EVP_MD_CTX_free(md);
	sc_key_free(k);
	k = NULL;

	/* Two keys and nothing to choose with. */
	assert_int_equal(sc_key_load("pkcs11:token=unit", &o, &k, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_non_null(strstr(err, "object="));
	/* Errors: wrong PIN (once: tokens lock), no PIN, no key, no token, no module. */
	o.pin = "0000";
	assert_int_equal(sc_key_load("pkcs11:token=unit;object=rsakey", &o, &k, err, sizeof err),
			 SC_ERR_AUTH);
	assert_non_null(strstr(err, "wrong PIN"));
	assert_null(strstr(err, "0000"));
	o.pin = NULL;
	assert_int_equal(sc_key_load("pkcs11:token=unit;object=rsakey", &o, &k, err, sizeof err),
			 SC_ERR_AUTH);
	assert_non_null(strstr(err, "needs a PIN"));
	o.pin = "1234";
	assert_int_equal(sc_key_load("pkcs11:token=unit;object=nokey", &o, &k, err, sizeof err),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(sc_key_load("pkcs11:token=other;object=rsakey", &o, &k, err, sizeof err),
			 SC_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "no token"));
	o.pkcs11_module = "/nonexistent/module.so";
	assert_int_equal(sc_key_load("pkcs11:token=unit;object=rsakey", &o, &k, err, sizeof err),
			 SC_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "/nonexistent/module.so"));
	assert_null(k);
	assert_int_equal(sc_key_load("pkcs11:colour=red", &o, &k, err, sizeof err), SC_ERR_SYNTAX);
	sc_cert_free(crsa);
	sc_cert_free(cec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkcs8_plain),
		cmocka_unit_test(test_pkcs8_encrypted),
		cmocka_unit_test(test_traditional),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_unsupported_type),
		cmocka_unit_test(test_is_pkcs11),
		cmocka_unit_test(test_uri_parse),
		cmocka_unit_test(test_uri_pin),
		cmocka_unit_test(test_pkcs11_token),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
