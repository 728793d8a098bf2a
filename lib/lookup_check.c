/*
 * lookup_check.c - is a certificate fit to encrypt to an address? The checks
 * every fetched certificate goes through before anyone encrypts to it (and that
 * `encrypt --cert` applies to a given file), plus the CA rule of the pin check
 * (does a changed certificate chain to a trusted S/MIME CA?). Runs in the CLI's
 * process; pure functions of the certificate, the time and the anchor file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "lookup_int.h"
#include "errmsg.h"

/* RFC 8551 2.4.2 / BCP 195: smaller RSA keys are not worth encrypting to. */
#define CHECK_RSA_MIN_BITS 2048

static X509 *leaf_x509(const sc_cert *c)
{
	const uint8_t *der;
	const unsigned char *p;
	size_t len;

	if (sc_cert_der(c, 0, &der, &len) != SC_OK || len > SC_CERT_INPUT_MAX)
		return NULL;
	p = der;
	return d2i_X509(NULL, &p, (long)len);
}

/*
 * Key type and the keyUsage bit it needs for key transport or key agreement
 * (RFC 8550 4.4.2: keyEncipherment for RSA, keyAgreement for (EC)DH).
 */
static sc_status check_key(X509 *x, const char *who, char *err, size_t errlen)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	uint32_t ku = X509_get_key_usage(x); /* UINT32_MAX: no keyUsage extension */
	uint32_t need;
	const char *what;

	if (!pk) {
		ERR_clear_error();
		sc_errf(err, errlen, "%s: the public key cannot be decoded", who);
		return SC_ERR_UNSUPPORTED;
	}
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) < CHECK_RSA_MIN_BITS) {
			sc_errf(err, errlen, "%s: RSA key of %d bits is too weak to encrypt to "
				      "(at least %d)", who, EVP_PKEY_get_bits(pk),
				      CHECK_RSA_MIN_BITS);
			return SC_ERR_UNSUPPORTED;
		}
		need = KU_KEY_ENCIPHERMENT;
		what = "keyEncipherment";
		break;
	case EVP_PKEY_EC:
		need = KU_KEY_AGREEMENT;
		what = "keyAgreement";
		break;
	default:
		/* RSA-PSS keys may not do key transport (RFC 4056 3); Ed25519/X25519
		 * and DSA are not something we encrypt to. */
		sc_errf(err, errlen, "%s: key type %s is not supported for encryption "
			      "(algorithm not supported)", who,
			      OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
		return SC_ERR_UNSUPPORTED;
	}
	if (ku != UINT32_MAX && !(ku & need)) {
		sc_errf(err, errlen, "%s: keyUsage does not allow %s: not for encryption",
			      who, what);
		return SC_ERR_UNSUPPORTED;
	}
	return SC_OK;
}

/* RFC 8550 4.4.4: when extKeyUsage is present it must allow email protection. */
static sc_status check_eku(X509 *x, const char *who, char *err, size_t errlen)
{
	uint32_t xku = X509_get_extended_key_usage(x); /* UINT32_MAX: absent */

	if (xku != UINT32_MAX && !(xku & (XKU_SMIME | XKU_ANYEKU))) {
		sc_errf(err, errlen, "%s: extKeyUsage lacks emailProtection", who);
		return SC_ERR_UNSUPPORTED;
	}
	return SC_OK;
}

sc_status sc_cert_check_for_encryption(const sc_cert *c, const struct sc_addr *addr,
				       time_t now, char *err, size_t errlen)
{
	char who[SC_ADDR_KEY_MAX + 40];
	X509 *x;
	sc_status st;

	SC_ENSURE_ARG(c);
	SC_ENSURE_ARG(addr);
	if (err && errlen)
		err[0] = '\0';
	if (sc_addr_format(addr, who, sizeof who - 20) != SC_OK)
		snprintf(who, sizeof who, "(address)");
	if (!sc_cert_has_email(c, addr)) {
		sc_errf(err, errlen, "the certificate is not for %s", who);
		return SC_ERR_MISMATCH;
	}
	st = sc_cert_check_time(c, now);
	if (st != SC_OK) {
		sc_errf(err, errlen, "the certificate for %s is %s", who,
			      st == SC_ERR_EXPIRED ? "expired" : "not yet valid");
		return st;
	}
	snprintf(who + strlen(who), sizeof who - strlen(who), "'s certificate");
	ERR_clear_error();
	x = leaf_x509(c);
	if (!x) {
		ERR_clear_error();
		sc_errf(err, errlen, "%s cannot be decoded", who);
		return SC_ERR_UNSUPPORTED;
	}
	/* Computes the cached extension flags; failure means a broken extension. */
	if (X509_check_purpose(x, -1, 0) != 1 || (X509_get_extension_flags(x) & EXFLAG_INVALID)) {
		/* OpenSSL also flags unknown signature algorithms as invalid; the key
		 * checks below decide for those. */
		ERR_clear_error();
	}
	st = check_key(x, who, err, errlen);
	if (st == SC_OK)
		st = check_eku(x, who, err, errlen);
	X509_free(x);
	ERR_clear_error();
	return st;
}

static X509 *cert_x509(const sc_cert *c, size_t i)
{
	const uint8_t *der;
	const unsigned char *p;
	size_t len;

	if (sc_cert_der(c, i, &der, &len) != SC_OK || len > SC_CERT_INPUT_MAX)
		return NULL;
	p = der;
	return d2i_X509(NULL, &p, (long)len);
}

int lookup_chains_to_ca(const sc_cert *c, const char *ca_file, time_t now)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509 *leaf = NULL;
	int ok = 0;

	if (!c || !ca_file || !*ca_file)
		return 0;
	ERR_clear_error();
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	untrusted = sk_X509_new_null();
	leaf = cert_x509(c, 0);
	if (!store || !ctx || !untrusted || !leaf ||
	    X509_STORE_load_file(store, ca_file) != 1)
		goto out;
	for (size_t i = 1; i < sc_cert_count(c); i++) {
		X509 *x = cert_x509(c, i);

		if (!x || !sk_X509_push(untrusted, x)) {
			X509_free(x);
			goto out;
		}
	}
	if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
		goto out;
	X509_STORE_CTX_set_time(ctx, 0, now);
	/* RFC 8550 4.4.4 / OpenSSL's smimeencrypt purpose: key usage and EKU too. */
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
	ok = X509_verify_cert(ctx) == 1;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	return ok;
}
