/*
 * key_int.h - private to lib/: the OpenSSL side of an sc_key (include/smtpcert/key.h).
 * lib/key.c owns the handle and file keys, lib/key_pkcs11.c the PKCS#11 tokens
 * (libp11), lib/keygen.c generation; the S/MIME modules take the EVP_PKEY from here.
 * Not installed: only lib/ includes it, and it names OpenSSL types.
 */
#ifndef SC_KEY_INT_H
#define SC_KEY_INT_H

#include <stddef.h>
#include <openssl/evp.h>

#include "smtpcert/key.h"

/**
 * The key as OpenSSL sees it, usable for CMS signing and decryption (a token key
 * runs its operations on the token). Borrowed: valid as long as @p k; NULL when
 * @p k is NULL.
 */
EVP_PKEY *key_evp(const sc_key *k);

/** Token state a PKCS#11 key needs while it is used (context, slots, session). */
struct key_p11;

/**
 * Wrap @p pk (ownership taken, also on failure) and the token state @p p11 (may be
 * NULL; ownership taken) into a new sc_key.
 * @return SC_OK or SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status key_wrap(EVP_PKEY *pk, struct key_p11 *p11, sc_key **out);

/**
 * Open the token named by the RFC 7512 URI @p uri, log in, and return its private
 * key (selected by the URI's object / id) in *@p pk and the token state in
 * *@p p11 (released with key_p11_release() after the key is freed).
 * Errors as sc_key_load().
 */
SC_MUST_CHECK sc_status key_p11_load(const char *uri, const struct sc_key_opts *o,
				     EVP_PKEY **pk, struct key_p11 **p11, char *err,
				     size_t errlen);

/**
 * Generate a key pair on the token named by @p uri (object label and id taken
 * from the URI; label "smtpcert" and a random id when absent), then load its
 * private key as key_p11_load() does.
 * @return SC_OK; SC_ERR_EXISTS (a key with that label/id is already there);
 *         SC_ERR_UNSUPPORTED; errors as sc_key_load().
 */
SC_MUST_CHECK sc_status key_p11_generate(const char *uri, const struct sc_key_opts *o,
					 enum sc_keygen_type type, EVP_PKEY **pk,
					 struct key_p11 **p11, char *err, size_t errlen);

void key_p11_release(struct key_p11 *p11);

/** "RSA-3072", "EC-P-256", "Ed25519" ... for @p pk into @p buf. */
void key_describe_evp(const EVP_PKEY *pk, char *buf, size_t size);

#endif
