/*
 * known_fuzz.c - fuzz target for the sender's trust files (lib/lookup_known.c,
 * lib/lookup_cache.c): arbitrary contents of a known-certificates file and of a
 * cache file must be read or refused without reading outside them.
 *
 * Invariants (abort() when broken): only the documented statuses; after a
 * lookup that succeeds the same certificate is "same"; after a refused change,
 * accept_new replaces it and the next lookup is "same"; a cache hit has an
 * authenticated trust and a certificate. The certificate compared is made once
 * in-process (nothing committed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lookup_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KNOWN_KEY "a@example.test"
#define FUZZ_NOW ((time_t)1800000000)

static char dir[64];
static char known[128];
static sc_cert *cert;

static void die(const char *what)
{
	fprintf(stderr, "known_fuzz: %s\n", what);
	abort();
}

/* A self-signed certificate for KNOWN_KEY. */
static sc_cert *make_cert(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	unsigned char *der = NULL;
	sc_cert *c = NULL;
	int len;

	if (!k || !x)
		die("key");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "email:" KNOWN_KEY);
	if (!ext || !X509_add_ext(x, ext, -1) || !X509_sign(x, k, EVP_sha256()))
		die("certificate");
	X509_EXTENSION_free(ext);
	len = i2d_X509(x, &der);
	if (len <= 0 || sc_cert_parse(der, (size_t)len, &c) != SC_OK)
		die("parse");
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

static void cleanup(void)
{
	char path[256], name[70];

	unlink(known);
	lookup_cache_name("q", name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
	rmdir(dir);
	sc_cert_free(cert);
}

static void init(void)
{
	snprintf(dir, sizeof dir, "/tmp/known_fuzz.XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(known, sizeof known, "%s/known_certs", dir);
	cert = make_cert();
	atexit(cleanup);
}

static void put(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		die(path);
}

static void fuzz_known(const uint8_t *data, size_t size)
{
	enum sc_pin pin;
	char err[512];
	sc_status st;

	put(known, data, size);
	st = lookup_known_check(known, KNOWN_KEY, cert, 0, 0, FUZZ_NOW, &pin, err, sizeof err);
	if (st == SC_ERR_TOO_LONG || st == SC_ERR_NOMEM)
		return;
	if (st == SC_ERR_CHANGED) {
		if (!strstr(err, "CHANGED"))
			abort();
		st = lookup_known_check(known, KNOWN_KEY, cert, 0, 1, FUZZ_NOW, &pin, err,
					sizeof err);
		if (st != SC_OK || pin != SC_PIN_ACCEPTED_NEW)
			abort();
	} else if (st != SC_OK || (pin != SC_PIN_NEW && pin != SC_PIN_SAME)) {
		abort();
	}
	if (lookup_known_check(known, KNOWN_KEY, cert, 0, 0, FUZZ_NOW, &pin, err, sizeof err) !=
		    SC_OK || pin != SC_PIN_SAME)
		abort();
}

static void fuzz_cache(const uint8_t *data, size_t size)
{
	struct lookup_cache_meta m;
	char path[256], name[70];
	sc_cert *c = NULL;
	sc_status st;

	lookup_cache_name("q", name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	put(path, data, size);
	st = lookup_cache_get(dir, "q", 1 << 30, FUZZ_NOW, &c, &m);
	if (st == SC_OK) {
		if (!c || (m.trust != SC_TRUST_PKIX && m.trust != SC_TRUST_DANE) ||
		    m.fetched > FUZZ_NOW || strchr(m.server, '\n'))
			abort();
		sc_cert_free(c);
	} else if (st != SC_ERR_NOT_FOUND || c) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cert)
		init();
	if (size > 256 * 1024)
		return 0;
	fuzz_known(data, size);
	fuzz_cache(data, size);
	return 0;
}
