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

/* Bounds of one decoded RFC 7512 attribute value and of a file name in a URI. */
#define KEY_P11_ATTR_MAX 256
#define KEY_P11_PATH_MAX 1024
/* Longest URI accepted. */
#define KEY_P11_URI_MAX 4096

/** An RFC 7512 URI, percent-decoded. A has_* flag says the attribute was given. */
struct key_p11_uri {
	/* path attributes (RFC 7512 section 2.3) that select the token and slot */
	char token[KEY_P11_ATTR_MAX], manufacturer[KEY_P11_ATTR_MAX];
	char serial[KEY_P11_ATTR_MAX], model[KEY_P11_ATTR_MAX];
	char slot_description[KEY_P11_ATTR_MAX], slot_manufacturer[KEY_P11_ATTR_MAX];
	char library_description[KEY_P11_ATTR_MAX], library_manufacturer[KEY_P11_ATTR_MAX];
	unsigned long slot_id;
	int has_token, has_manufacturer, has_serial, has_model, has_slot_description,
	    has_slot_manufacturer, has_slot_id, has_library_description,
	    has_library_manufacturer;
	/* ... and the object */
	char object[KEY_P11_ATTR_MAX];
	unsigned char id[KEY_P11_ATTR_MAX];
	size_t id_len;
	char type[16];
	int has_object, has_id, has_type;
	/* query attributes */
	char module_path[KEY_P11_PATH_MAX];
	char pin_value[KEY_P11_ATTR_MAX];
	char pin_source[KEY_P11_PATH_MAX];
	int has_module_path, has_pin_value, has_pin_source;
};

/**
 * Parse @p uri ("pkcs11:" + path + optional "?" query). Unknown standard path
 * attributes are refused (they would select something we ignore); vendor ones
 * ("x-...") and unknown query attributes are ignored.
 * @return SC_OK; SC_ERR_SYNTAX; SC_ERR_TOO_LONG. A message goes to @p err.
 */
SC_MUST_CHECK sc_status key_p11_uri_parse(const char *uri, struct key_p11_uri *u, char *err,
					  size_t errlen);

/** @p uri without its query (which may hold a PIN), for messages. */
void key_p11_uri_display(const char *uri, char *buf, size_t size);

/** The module to load: the URI's module-path, the caller's, $SMTPCERT_PKCS11_MODULE,
 *  else p11-kit's proxy. */
const char *key_p11_module(const struct key_p11_uri *u, const struct sc_key_opts *o);

/**
 * The PIN: the caller's, the URI's pin-value, or the first line of pin-source
 * (a file name or a file: URI). *@p have is 0 when there is none.
 * @return SC_OK; SC_ERR_IO / SC_ERR_NOT_FOUND / SC_ERR_TOO_LONG (pin-source).
 */
SC_MUST_CHECK sc_status key_p11_pin(const struct key_p11_uri *u, const struct sc_key_opts *o,
				    char *pin, size_t size, int *have, char *err,
				    size_t errlen);

/** key_p11_load() for an already parsed URI (@p shown names it in messages). */
SC_MUST_CHECK sc_status key_p11_load_parsed(const struct key_p11_uri *u, const char *shown,
					    const struct sc_key_opts *o, EVP_PKEY **pk,
					    struct key_p11 **p11, char *err, size_t errlen);

/** "RSA-3072", "EC-P-256", "Ed25519" ... for @p pk into @p buf. */
void key_describe_evp(const EVP_PKEY *pk, char *buf, size_t size);

#endif
