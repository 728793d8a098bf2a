/*
 * key.c - private keys for S/MIME (include/smtpcert/key.h): the sc_key handle,
 * and loading a key from a file: PEM (PKCS#8, RFC 5958, encrypted or not; the
 * traditional "RSA PRIVATE KEY" / "EC PRIVATE KEY" forms, RFC 8017 A.1.2 / RFC
 * 5915, with or without OpenSSL's Proc-Type encryption) or DER (PKCS#8 or
 * traditional). "pkcs11:" URIs go to lib/key_pkcs11.c. Runs in the smtpcert
 * client's process (sign, decrypt, send).
 *
 * The passphrase is handed to OpenSSL through a callback and never copied; the
 * file's bytes, which may hold an unencrypted key, are wiped before they are freed.
 * OpenSSL is never left to prompt on the terminal: without a passphrase an
 * encrypted key fails with SC_ERR_AUTH.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "smtpcert/smtpcert.h"
#include "key_int.h"
#include "errmsg.h"

/* The largest key file read: an RSA-16384 PEM is about 13 KiB. */
#define KEY_FILE_MAX (256 * 1024)

struct sc_key {
	EVP_PKEY *pk;
	struct key_p11 *p11; /* token state, NULL for a key from a file */
	char desc[64];
};

int sc_key_is_pkcs11(const char *spec)
{
	return spec && !strncasecmp(spec, "pkcs11:", 7);
}

EVP_PKEY *key_evp(const sc_key *k)
{
	return k ? k->pk : NULL;
}

void key_describe_evp(const EVP_PKEY *pk, char *buf, size_t size)
{
	char group[80] = "";
	const char *name = NULL;
	size_t glen = 0;
	int nid;

	if (!buf || !size)
		return;
	if (!pk) {
		snprintf(buf, size, "unknown");
		return;
	}
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		snprintf(buf, size, "RSA-%d", EVP_PKEY_get_bits(pk));
		return;
	case EVP_PKEY_EC:
		/* "P-256" for NIST curves (FIPS 186-4 names), as sc_cert_key_desc() says. */
		if (EVP_PKEY_get_group_name(pk, group, sizeof group, &glen) && group[0]) {
			nid = OBJ_sn2nid(group);
			if (nid == NID_undef)
				nid = OBJ_txt2nid(group);
			name = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
			snprintf(buf, size, "EC-%s", name ? name : group);
		} else {
			snprintf(buf, size, "EC-%d", EVP_PKEY_get_bits(pk));
		}
		return;
	case EVP_PKEY_ED25519: name = "Ed25519"; break;
	case EVP_PKEY_ED448: name = "Ed448"; break;
	case EVP_PKEY_X25519: name = "X25519"; break;
	case EVP_PKEY_X448: name = "X448"; break;
	case EVP_PKEY_RSA_PSS: name = "RSA-PSS"; break;
	case EVP_PKEY_DSA: name = "DSA"; break;
	default: name = EVP_PKEY_get0_type_name(pk); break;
	}
	snprintf(buf, size, "%s", name ? name : "unknown");
}

sc_status key_wrap(EVP_PKEY *pk, struct key_p11 *p11, sc_key **out)
{
	sc_key *k = calloc(1, sizeof *k);

	if (!k) {
		EVP_PKEY_free(pk);
		key_p11_release(p11);
		return SC_ERR_NOMEM;
	}
	k->pk = pk;
	k->p11 = p11;
	key_describe_evp(pk, k->desc, sizeof k->desc);
	*out = k;
	return SC_OK;
}

void sc_key_free(sc_key *k)
{
	if (!k)
		return;
	/* The key refers to the token's context: free it first. */
	EVP_PKEY_free(k->pk);
	key_p11_release(k->p11);
	free(k);
}

const char *sc_key_describe(const sc_key *k)
{
	return k ? k->desc : "none";
}

/* Sign a fixed challenge with @p priv and verify it with @p pub. */
static int key_sign_check(EVP_PKEY *priv, EVP_PKEY *pub)
{
	static const unsigned char challenge[] = "smtpcert key/certificate match";
	unsigned char sig[1024];
	size_t siglen = sizeof sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = 0;

	if (!md)
		return 0;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, priv) == 1 &&
	    EVP_DigestSign(md, sig, &siglen, challenge, sizeof challenge) == 1) {
		EVP_MD_CTX_free(md);
		md = EVP_MD_CTX_new();
		ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
		     EVP_DigestVerify(md, sig, siglen, challenge, sizeof challenge) == 1;
	}
	EVP_MD_CTX_free(md);
	return ok;
}

int sc_key_matches(const sc_key *k, const sc_cert *c)
{
	const unsigned char *der;
	size_t len;
	X509 *x;
	int ok;

	if (!k || !k->pk || !c || sc_cert_der(c, 0, &der, &len) != SC_OK ||
	    len > SC_CERT_INPUT_MAX)
		return 0;
	x = d2i_X509(NULL, &der, (long)len);
	if (!x)
		return 0;
	ok = EVP_PKEY_eq(X509_get0_pubkey(x), k->pk) == 1;
	/* A token's private key object may lack the public half (an EC key without
	 * CKA_EC_POINT and no public key object beside it): prove possession instead. */
	if (!ok && k->p11 && X509_get0_pubkey(x))
		ok = key_sign_check(k->pk, X509_get0_pubkey(x));
	X509_free(x);
	ERR_clear_error();
	return ok;
}

/* Hands the caller's passphrase to OpenSSL; without one, refuses (no prompting). */
static int key_pass_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pass = u;
	size_t n;

	(void)rwflag;
	if (!pass || size <= 0)
		return -1;
	n = strlen(pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, pass, n);
	return (int)n;
}

/* Read at most KEY_FILE_MAX bytes; one more means "too large". */
static sc_status key_read_file(const char *path, unsigned char **out, size_t *outlen,
			       char *err, size_t errlen)
{
	struct stat sb;
	unsigned char *buf;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return sc_fail(err, errlen, errno == ENOENT ? SC_ERR_NOT_FOUND :
					     errno == EACCES ? SC_ERR_PERM : SC_ERR_IO,
				"%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return sc_fail(err, errlen, SC_ERR_IO, "%s: not a regular file", path);
	}
	buf = malloc(KEY_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return SC_ERR_NOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, KEY_FILE_MAX + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(fd);
			OPENSSL_clear_free(buf, len);
			return sc_fail(err, errlen, SC_ERR_IO, "%s: %s", path, strerror(e));
		}
		len += (size_t)r;
		if (r == 0 || len > KEY_FILE_MAX)
			break;
	}
	close(fd);
	if (len > KEY_FILE_MAX) {
		OPENSSL_clear_free(buf, len);
		return sc_fail(err, errlen, SC_ERR_TOO_LONG, "%s: larger than %d bytes", path,
				KEY_FILE_MAX);
	}
	*out = buf;
	*outlen = len;
	return SC_OK;
}

static int has_text(const unsigned char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (s[i] == (unsigned char)needle[0] && !memcmp(s + i, needle, n))
			return 1;
	return 0;
}

/* A DER blob that is an EncryptedPrivateKeyInfo (RFC 5958 section 3). */
static int der_is_encrypted(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_SIG *sig = d2i_X509_SIG(NULL, &p, (long)len);
	int yes = sig != NULL && p == der + len;

	X509_SIG_free(sig);
	return yes;
}

/* Types whose operations S/MIME has: signing, key transport or key agreement. */
static int key_type_usable(const EVP_PKEY *pk)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
	case EVP_PKEY_EC:
	case EVP_PKEY_ED25519:
	case EVP_PKEY_ED448:
	case EVP_PKEY_X25519:
	case EVP_PKEY_X448:
		return 1;
	default:
		return 0;
	}
}

static sc_status key_decode(const char *path, const unsigned char *data, size_t len,
			    const char *pass, EVP_PKEY **out, char *err, size_t errlen)
{
	int pem = has_text(data, len, "-----BEGIN ");
	int encrypted;
	EVP_PKEY *pk = NULL;
	BIO *bio;

	if (len == 0)
		return sc_fail(err, errlen, SC_ERR_SYNTAX, "%s: empty file", path);
	if (pem) {
		if (!has_text(data, len, "PRIVATE KEY-----"))
			return sc_fail(err, errlen, SC_ERR_SYNTAX,
					"%s: no PRIVATE KEY block (a certificate or public key?)",
					path);
		encrypted = has_text(data, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
			    has_text(data, len, "Proc-Type: 4,ENCRYPTED");
	} else {
		encrypted = der_is_encrypted(data, len);
	}
	if (encrypted && !pass)
		return sc_fail(err, errlen, SC_ERR_AUTH,
				"%s: the key is encrypted and no passphrase was given", path);
	bio = BIO_new_mem_buf(data, (int)len);
	if (!bio)
		return SC_ERR_NOMEM;
	if (pem)
		pk = PEM_read_bio_PrivateKey(bio, NULL, key_pass_cb, (void *)pass);
	else if (encrypted)
		pk = d2i_PKCS8PrivateKey_bio(bio, NULL, key_pass_cb, (void *)pass);
	else
		pk = d2i_PrivateKey_bio(bio, NULL);
	BIO_free(bio);
	if (!pk) {
		unsigned long e = ERR_peek_last_error();
		char why[160];

		ERR_error_string_n(e, why, sizeof why);
		ERR_clear_error();
		if (encrypted)
			return sc_fail(err, errlen, SC_ERR_AUTH,
					"%s: cannot decrypt the key: wrong passphrase", path);
		return sc_fail(err, errlen, SC_ERR_SYNTAX, "%s: not a private key (%s)", path,
				why);
	}
	ERR_clear_error();
	if (!key_type_usable(pk)) {
		char desc[64];

		key_describe_evp(pk, desc, sizeof desc);
		EVP_PKEY_free(pk);
		return sc_fail(err, errlen, SC_ERR_UNSUPPORTED,
				"%s: %s keys cannot be used for S/MIME", path, desc);
	}
	*out = pk;
	return SC_OK;
}

sc_status sc_key_load(const char *spec, const struct sc_key_opts *o, sc_key **out, char *err,
		      size_t errlen)
{
	static const struct sc_key_opts none;
	struct key_p11 *p11 = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	sc_status st;

	SC_ENSURE_ARG(out);
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!spec || !spec[0])
		return sc_fail(err, errlen, SC_ERR_ARG, "no key given");
	if (!o)
		o = &none;
	if (sc_key_is_pkcs11(spec)) {
		SC_TRY(key_p11_load(spec, o, &pk, &p11, err, errlen));
		return key_wrap(pk, p11, out);
	}
	SC_TRY(key_read_file(spec, &data, &len, err, errlen));
	st = key_decode(spec, data, len, o->passphrase, &pk, err, errlen);
	OPENSSL_clear_free(data, len);
	if (st != SC_OK)
		return st;
	return key_wrap(pk, NULL, out);
}
