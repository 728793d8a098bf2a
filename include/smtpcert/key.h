/*
 * smtpcert/key.h - private keys for S/MIME: loading one from a PEM file
 * (optionally PKCS#8-encrypted) or from a PKCS#11 token named by an RFC 7512
 * "pkcs11:" URI (libp11), and generating a key with its self-signed S/MIME
 * certificate or CSR (keygen).
 *
 * A key from a token never leaves it: signing and decryption run on the token.
 * Passphrases and PINs handed in are not kept; copies made here are wiped.
 */
#ifndef SMTPCERT_KEY_H
#define SMTPCERT_KEY_H

#include <stddef.h>
#include "status.h"
#include "addr.h"
#include "cert.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sc_key sc_key;

struct sc_key_opts {
	/** passphrase of an encrypted PEM key; NULL = the key must not be encrypted
	 *  (an encrypted one then fails with SC_ERR_AUTH) */
	const char *passphrase;
	/** PIN for a token; NULL = the URI's pin-value / pin-source, else SC_ERR_AUTH */
	const char *pin;
	/** PKCS#11 module for a URI without module-path (a URI's module-path wins);
	 *  NULL = $SMTPCERT_PKCS11_MODULE, else p11-kit-proxy */
	const char *pkcs11_module;
};

/** @return non-zero when @p spec is an RFC 7512 URI ("pkcs11:" prefix). */
int sc_key_is_pkcs11(const char *spec);

/**
 * Load the private key @p spec: a file name, or a "pkcs11:" URI (token, object /
 * id attributes select the key).
 * @return SC_OK; SC_ERR_NOT_FOUND (no such file / no such key on the token);
 *         SC_ERR_AUTH (wrong or missing passphrase or PIN); SC_ERR_SYNTAX (not a
 *         key, bad URI); SC_ERR_UNSUPPORTED (key type); SC_ERR_IO. A message goes
 *         to @p err.
 */
SC_MUST_CHECK sc_status sc_key_load(const char *spec, const struct sc_key_opts *o, sc_key **out,
				    char *err, size_t errlen);
void sc_key_free(sc_key *k);

/** @return non-zero when @p k is the private key of certificate @p c's leaf. */
int sc_key_matches(const sc_key *k, const sc_cert *c);

/** "RSA-3072", "EC-P-256", ... */
const char *sc_key_describe(const sc_key *k);

enum sc_keygen_type {
	SC_KEYGEN_RSA3072 = 0, /**< default */
	SC_KEYGEN_P256
};

struct sc_keygen_opts {
	const struct sc_addr *email;  /**< rfc822Name, or SmtpUTF8Mailbox (RFC 9598)
				       *  when the local part is not ASCII */
	enum sc_keygen_type type;
	const char *out_key;          /**< PKCS#8 PEM file (mode 0600); NULL with pkcs11 */
	const char *passphrase;       /**< encrypts out_key (AES-256-CBC, PBKDF2/scrypt);
				       *  NULL = unencrypted, only when the caller said so */
	const char *pkcs11_uri;       /**< generate on this token instead of a file */
	const struct sc_key_opts *pkcs11; /**< PIN and module for pkcs11_uri */
	const char *out_cert;         /**< self-signed certificate (PEM), or NULL */
	const char *out_csr;          /**< PKCS#10 request (PEM), or NULL */
	int days;                     /**< certificate validity; 0 = 365 */
};

/**
 * Generate a key and a self-signed S/MIME certificate (RFC 8550: SAN email,
 * keyUsage digitalSignature + keyEncipherment for RSA / keyAgreement for EC,
 * extKeyUsage emailProtection, RFC 4262 SMIMECapabilities listing AES-256-GCM,
 * AES-128-GCM, AES-256-CBC, AES-128-CBC) and/or a CSR carrying the same
 * extensions. Exactly what is asked is written; existing files are not
 * overwritten (SC_ERR_EXISTS).
 * @return SC_OK; SC_ERR_EXISTS; SC_ERR_ARG; SC_ERR_IO; PKCS#11 errors as
 *         sc_key_load(). A message goes to @p err.
 */
SC_MUST_CHECK sc_status sc_keygen(const struct sc_keygen_opts *o, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
