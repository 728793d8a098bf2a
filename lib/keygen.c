/*
 * keygen.c - sc_keygen(): a key pair (RSA-3072 or P-256, in memory or on a PKCS#11
 * token) with a self-signed S/MIME certificate and/or a PKCS#10 request, ready for
 * `smtpcert submit`. Runs in the smtpcert client's process (`smtpcert keygen`).
 *
 * The certificate follows RFC 8550 section 4.4: the address in subjectAltName
 * (rfc822Name, or RFC 9598 SmtpUTF8Mailbox when the local part is not ASCII),
 * keyUsage (critical) digitalSignature plus keyEncipherment (RSA, RFC 8551 2.2) or
 * keyAgreement (EC, RFC 5753), extKeyUsage emailProtection, subjectKeyIdentifier,
 * and RFC 4262 SMIMECapabilities so senders know which content ciphers we read.
 * Before anything is written the certificate goes through our own parser and the
 * CERC acceptance policy: keygen never hands out what our server would refuse.
 *
 * Files: never overwritten (O_EXCL, SC_ERR_EXISTS); the key is PKCS#8 (RFC 5958)
 * encrypted with AES-256-CBC under scrypt (RFC 7914; N=2^14, r=8, p=1, as
 * `openssl pkcs8 -scrypt`), mode 0600. Files written before a later failure are
 * removed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtpcert/smtpcert.h"
#include "key_int.h"
#include "errmsg.h"

/* RFC 9598 section 3: id-on-SmtpUTF8Mailbox. */
#define OID_SMTPUTF8_MAILBOX "1.3.6.1.5.5.7.8.9"
/* RFC 4262 / RFC 8551 2.5.2: smimeCapabilities. */
#define OID_SMIME_CAPS "1.2.840.113549.1.9.15"

#define KEYGEN_DAYS_DEFAULT 365
#define KEYGEN_DAYS_MAX 3650
/* scrypt parameters: 16 MiB, well under OpenSSL's 32 MiB decoding limit. */
#define KEYGEN_SCRYPT_N (1u << 14)
#define KEYGEN_SCRYPT_R 8
#define KEYGEN_SCRYPT_P 1

/*
 * SMIMECapabilities ::= SEQUENCE OF SMIMECapability { capabilityID OID } in the
 * order of preference (RFC 8551 2.5.2): id-aes256-GCM, id-aes128-GCM (RFC 5084),
 * id-aes256-CBC, id-aes128-CBC (RFC 3565), none with parameters.
 */
static const unsigned char smime_caps_der[] = {
	0x30, 0x34,
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e,
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06,
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a,
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02,
};

static int is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* subjectAltName with the one address: rfc822Name, or SmtpUTF8Mailbox (RFC 9598). */
static X509_EXTENSION *kg_san(const struct sc_addr *a, const char *text)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	X509_EXTENSION *ext = NULL;

	if (!names || !gn)
		goto out;
	if (is_ascii(a->local)) {
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

		if (!ia5 || !ASN1_STRING_set(ia5, text, (int)strlen(text))) {
			ASN1_IA5STRING_free(ia5);
			goto out;
		}
		GENERAL_NAME_set0_value(gn, GEN_EMAIL, ia5);
	} else {
		/* RFC 9598 section 3: only when the local part is not ASCII, as UTF8String. */
		ASN1_OBJECT *oid = OBJ_txt2obj(OID_SMTPUTF8_MAILBOX, 1);
		ASN1_TYPE *val = ASN1_TYPE_new();
		ASN1_UTF8STRING *u8 = ASN1_UTF8STRING_new();

		if (!oid || !val || !u8 || !ASN1_STRING_set(u8, text, (int)strlen(text)) ||
		    !GENERAL_NAME_set0_othername(gn, oid, val)) {
			ASN1_OBJECT_free(oid);
			ASN1_TYPE_free(val);
			ASN1_UTF8STRING_free(u8);
			goto out;
		}
		ASN1_TYPE_set(val, V_ASN1_UTF8STRING, u8);
	}
	if (!sk_GENERAL_NAME_push(names, gn))
		goto out;
	gn = NULL;
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
out:
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return ext;
}

static X509_EXTENSION *kg_raw_ext(const char *oid_text, const unsigned char *der, size_t len)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(oid_text, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;

	if (oid && os && ASN1_OCTET_STRING_set(os, der, (int)len))
		ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(os);
	return ext;
}

/* The extensions both the certificate and the request carry. */
static STACK_OF(X509_EXTENSION) *kg_extensions(const struct sc_addr *a, const char *text,
					       int is_rsa)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e[5];
	size_t n = 0;

	if (!exts)
		return NULL;
	e[n++] = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:FALSE");
	e[n++] = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
				     is_rsa ? "critical,digitalSignature,keyEncipherment"
					    : "critical,digitalSignature,keyAgreement");
	e[n++] = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "emailProtection");
	e[n++] = kg_san(a, text);
	e[n++] = kg_raw_ext(OID_SMIME_CAPS, smime_caps_der, sizeof smime_caps_der);
	for (size_t i = 0; i < n; i++) {
		if (!e[i] || !sk_X509_EXTENSION_push(exts, e[i])) {
			for (size_t j = i; j < n; j++)
				X509_EXTENSION_free(e[j]);
			sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
			return NULL;
		}
	}
	return exts;
}

static X509_NAME *kg_subject(const char *text)
{
	X509_NAME *name = X509_NAME_new();

	if (name && !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
						(const unsigned char *)text, -1, -1, 0)) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

static X509 *kg_cert(EVP_PKEY *pk, X509_NAME *name, STACK_OF(X509_EXTENSION) *exts, int days)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ski;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int ok = 0;

	if (!x || RAND_bytes(serial, sizeof serial) != 1)
		goto out;
	serial[0] &= 0x7f; /* RFC 5280 4.1.2.2: positive */
	serial[0] |= 0x40; /* and a full 16 octets */
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (!bn || !X509_set_version(x, X509_VERSION_3) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    /* Five minutes back, for correspondents whose clocks run slow. */
	    !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) || !X509_set_pubkey(x, pk))
		goto out;
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		if (!X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1))
			goto out;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ski = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	if (!ski || !X509_add_ext(x, ski, -1)) {
		X509_EXTENSION_free(ski);
		goto out;
	}
	X509_EXTENSION_free(ski);
	ok = X509_sign(x, pk, EVP_sha256()) > 0;
out:
	BN_free(bn);
	OPENSSL_cleanse(serial, sizeof serial);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509_REQ *kg_csr(EVP_PKEY *pk, X509_NAME *name, STACK_OF(X509_EXTENSION) *exts)
{
	X509_REQ *r = X509_REQ_new();

	if (!r || !X509_REQ_set_version(r, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(r, name) || !X509_REQ_set_pubkey(r, pk) ||
	    !X509_REQ_add_extensions(r, exts) || X509_REQ_sign(r, pk, EVP_sha256()) <= 0) {
		X509_REQ_free(r);
		return NULL;
	}
	return r;
}

/* The certificate must pass our own parser and the CERC policy for the address. */
static sc_status kg_self_check(X509 *x, const struct sc_addr *a, char *err, size_t errlen)
{
	struct sc_policy pol = { .now = time(NULL) };
	unsigned char *der = NULL;
	char reason[256];
	sc_cert *c = NULL;
	int len = i2d_X509(x, &der);
	sc_status st;

	if (len <= 0)
		return sc_fail_ossl(err, errlen, SC_ERR_CRYPTO, "cannot encode the certificate");
	st = sc_cert_parse(der, (size_t)len, &c);
	OPENSSL_free(der);
	if (st != SC_OK)
		return sc_fail_ossl(err, errlen, SC_ERR_INTERNAL,
			       "the generated certificate does not parse: %s", sc_strerror(st));
	if (!sc_cert_has_email(c, a)) {
		sc_cert_free(c);
		return sc_fail_ossl(err, errlen, SC_ERR_INTERNAL,
			       "the generated certificate does not carry the address");
	}
	st = sc_policy_check(&pol, c, a, reason, sizeof reason);
	sc_cert_free(c);
	if (st != SC_OK)
		return sc_fail_ossl(err, errlen, SC_ERR_INTERNAL,
			       "the generated certificate would be refused: %s", reason);
	return SC_OK;
}

static sc_status kg_private_pem(EVP_PKEY *pk, const char *pass, BIO *out, char *err,
				size_t errlen)
{
	PKCS8_PRIV_KEY_INFO *p8;
	X509_ALGOR *pbe;
	X509_SIG *sig;
	int ok;

	if (!pass)
		return PEM_write_bio_PKCS8PrivateKey(out, pk, NULL, NULL, 0, NULL, NULL) == 1
			       ? SC_OK
			       : sc_fail_ossl(err, errlen, SC_ERR_CRYPTO, "cannot encode the key");
	/* PBES2 (RFC 8018 6.2) with scrypt as the KDF (RFC 7914 section 7). */
	pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 16, NULL, KEYGEN_SCRYPT_N,
				    KEYGEN_SCRYPT_R, KEYGEN_SCRYPT_P);
	p8 = EVP_PKEY2PKCS8(pk);
	if (!pbe || !p8) {
		X509_ALGOR_free(pbe);
		PKCS8_PRIV_KEY_INFO_free(p8);
		return sc_fail_ossl(err, errlen, SC_ERR_CRYPTO, "cannot encrypt the key");
	}
	sig = PKCS8_set0_pbe(pass, (int)strlen(pass), p8, pbe);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (!sig) {
		X509_ALGOR_free(pbe);
		return sc_fail_ossl(err, errlen, SC_ERR_CRYPTO, "cannot encrypt the key");
	}
	ok = PEM_write_bio_PKCS8(out, sig);
	X509_SIG_free(sig);
	return ok == 1 ? SC_OK : sc_fail_ossl(err, errlen, SC_ERR_CRYPTO, "cannot encode the key");
}

/* Write the memory BIO's bytes to a new file @p path (never an existing one). */
static sc_status kg_write(const char *path, BIO *b, mode_t mode, char *err, size_t errlen)
{
	char *data;
	long len = BIO_get_mem_data(b, &data);
	size_t off = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
		      mode);

	if (fd < 0)
		return sc_fail_ossl(err, errlen, errno == EEXIST ? SC_ERR_EXISTS : SC_ERR_IO,
			       "%s: %s", path,
			       errno == EEXIST ? "exists (not overwritten)" : strerror(errno));
	while (len > 0 && off < (size_t)len) {
		ssize_t w = write(fd, data + off, (size_t)len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != (size_t)len || fsync(fd) != 0 || close(fd) != 0) {
		int e = errno;

		close(fd);
		unlink(path);
		return sc_fail_ossl(err, errlen, SC_ERR_IO, "%s: %s", path, strerror(e));
	}
	return SC_OK;
}

static sc_status kg_check_args(const struct sc_keygen_opts *o, char *err, size_t errlen)
{
	const char *outs[3] = { o->out_key, o->out_cert, o->out_csr };
	struct stat sb;

	if (!o->email)
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, "no address given");
	if (o->email->flags & SC_ADDR_IS_LITERAL)
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, "an address literal is not a mailbox");
	if (!is_ascii(o->email->domain))
		return sc_fail_ossl(err, errlen, SC_ERR_UNSUPPORTED,
			       "write the domain %s in its ASCII form (A-labels, xn--...): "
			       "certificates carry it so (RFC 9598 section 3)",
			       o->email->domain);
	if (o->type != SC_KEYGEN_RSA3072 && o->type != SC_KEYGEN_P256)
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, "unknown key type");
	if (!o->out_cert && !o->out_csr)
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, "nothing to write: no certificate or "
			       "request file given");
	if (!o->pkcs11_uri == !o->out_key)
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, o->pkcs11_uri
			       ? "a key on a token is not written to a file"
			       : "no key file given");
	/* An empty passphrase would look encrypted and protect nothing. */
	if (o->passphrase && !o->passphrase[0])
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, "empty passphrase (pass NULL for an "
			       "unencrypted key)");
	if (o->days < 0 || o->days > KEYGEN_DAYS_MAX)
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, "validity must be 1 to %d days",
			       KEYGEN_DAYS_MAX);
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (outs[i] && outs[j] && !strcmp(outs[i], outs[j]))
				return sc_fail_ossl(err, errlen, SC_ERR_ARG,
					       "%s named twice", outs[i]);
	/* Checked up front so no key is generated for nothing; O_EXCL still decides. */
	for (int i = 0; i < 3; i++)
		if (outs[i] && lstat(outs[i], &sb) == 0)
			return sc_fail_ossl(err, errlen, SC_ERR_EXISTS, "%s: exists (not overwritten)",
				       outs[i]);
	return SC_OK;
}

static sc_status kg_new_key(const struct sc_keygen_opts *o, EVP_PKEY **pk, struct key_p11 **p11,
			    char *err, size_t errlen)
{
	*p11 = NULL;
	if (o->pkcs11_uri)
		return key_p11_generate(o->pkcs11_uri, o->pkcs11, o->type, pk, p11, err, errlen);
	*pk = o->type == SC_KEYGEN_P256 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
					: EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	return *pk ? SC_OK : sc_fail_ossl(err, errlen, SC_ERR_CRYPTO, "key generation failed");
}

/* Write what was asked; on failure remove what this call created. */
static sc_status kg_output(const struct sc_keygen_opts *o, EVP_PKEY *pk, X509 *x, X509_REQ *req,
			   char *err, size_t errlen)
{
	const char *written[3];
	size_t nw = 0;
	sc_status st = SC_OK;
	BIO *b;

	if (o->out_key) {
		b = BIO_new(BIO_s_secmem());
		st = b ? kg_private_pem(pk, o->passphrase, b, err, errlen) : SC_ERR_NOMEM;
		if (st == SC_OK)
			st = kg_write(o->out_key, b, 0600, err, errlen);
		if (st == SC_OK)
			written[nw++] = o->out_key;
		BIO_free(b);
	}
	if (st == SC_OK && o->out_cert) {
		b = BIO_new(BIO_s_mem());
		st = b && PEM_write_bio_X509(b, x) == 1 ? kg_write(o->out_cert, b, 0644, err, errlen)
							: SC_ERR_NOMEM;
		if (st == SC_OK)
			written[nw++] = o->out_cert;
		BIO_free(b);
	}
	if (st == SC_OK && o->out_csr) {
		b = BIO_new(BIO_s_mem());
		st = b && PEM_write_bio_X509_REQ(b, req) == 1
			     ? kg_write(o->out_csr, b, 0644, err, errlen)
			     : SC_ERR_NOMEM;
		if (st == SC_OK)
			written[nw++] = o->out_csr;
		BIO_free(b);
	}
	if (st != SC_OK)
		while (nw)
			unlink(written[--nw]);
	return st;
}

sc_status sc_keygen(const struct sc_keygen_opts *o, char *err, size_t errlen)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	struct key_p11 *p11 = NULL;
	char text[SC_ADDR_KEY_MAX + 8];
	X509_NAME *name = NULL;
	EVP_PKEY *pk = NULL;
	X509_REQ *req = NULL;
	X509 *x = NULL;
	sc_status st;

	SC_ENSURE_ARG(o);
	if (err && errlen)
		err[0] = '\0';
	SC_TRY(kg_check_args(o, err, errlen));
	if (sc_addr_format(o->email, text, sizeof text) != SC_OK)
		return sc_fail_ossl(err, errlen, SC_ERR_ARG, "address too long");
	SC_TRY(kg_new_key(o, &pk, &p11, err, errlen));
	exts = kg_extensions(o->email, text, EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA);
	name = kg_subject(text);
	if (exts && name)
		x = kg_cert(pk, name, exts, o->days ? o->days : KEYGEN_DAYS_DEFAULT);
	if (x && o->out_csr)
		req = kg_csr(pk, name, exts);
	if (!x || (o->out_csr && !req))
		st = sc_fail_ossl(err, errlen, SC_ERR_CRYPTO, "cannot make the %s",
			     x ? "certificate request" : "certificate");
	else
		st = kg_self_check(x, o->email, err, errlen);
	if (st == SC_OK)
		st = kg_output(o, pk, x, req, err, errlen);
	X509_free(x);
	X509_REQ_free(req);
	X509_NAME_free(name);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	EVP_PKEY_free(pk);
	key_p11_release(p11);
	ERR_clear_error();
	return st;
}
