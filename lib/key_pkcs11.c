/*
 * key_pkcs11.c - private keys on PKCS#11 tokens named by RFC 7512 "pkcs11:" URIs,
 * through libp11: load the module, pick the token (token, manufacturer, serial,
 * model, slot and library attributes), log in, pick the key (object label, id) and
 * hand OpenSSL an EVP_PKEY whose operations run on the token. Owns the libp11
 * context and slot list while the key lives (struct key_p11). Runs in the smtpcert
 * client's process.
 *
 * A wrong PIN is SC_ERR_AUTH and is never retried here: tokens lock after a few
 * failures. The PIN buffer is wiped; URIs in messages lose their query (pin-value).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "smtpcert/smtpcert.h"
#include "key_int.h"
#include "errmsg.h"

/* PKCS#11 v2.40 return values libp11 reports as the error reason of a failed login. */
#define KEY_CKR_PIN_INCORRECT 0xa0UL
#define KEY_CKR_PIN_INVALID 0xa1UL
#define KEY_CKR_PIN_LEN_RANGE 0xa2UL
#define KEY_CKR_PIN_EXPIRED 0xa3UL
#define KEY_CKR_PIN_LOCKED 0xa4UL

struct key_p11 {
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	int loaded;
};

void key_p11_release(struct key_p11 *h)
{
	if (!h)
		return;
	if (h->slots)
		PKCS11_release_all_slots(h->ctx, h->slots, h->nslots);
	if (h->loaded)
		PKCS11_CTX_unload(h->ctx);
	if (h->ctx)
		PKCS11_CTX_free(h->ctx);
	free(h);
}

/* PKCS#11 strings are blank-padded to a fixed width: compare without the padding. */
static int p11_eq(const char *have, const char *want)
{
	size_t hl, wl;

	if (!have)
		return !want[0];
	hl = strlen(have);
	wl = strlen(want);
	while (hl && have[hl - 1] == ' ')
		hl--;
	while (wl && want[wl - 1] == ' ')
		wl--;
	return hl == wl && !memcmp(have, want, hl);
}

/* Does the token in @p slot match every token/slot attribute of the URI? */
static int p11_slot_matches(const struct key_p11_uri *u, PKCS11_SLOT *slot)
{
	PKCS11_TOKEN *t = slot->token;

	if (!t || !t->initialized)
		return 0;
	if (u->has_token && !p11_eq(t->label, u->token))
		return 0;
	if (u->has_manufacturer && !p11_eq(t->manufacturer, u->manufacturer))
		return 0;
	if (u->has_serial && !p11_eq(t->serialnr, u->serial))
		return 0;
	if (u->has_model && !p11_eq(t->model, u->model))
		return 0;
	if (u->has_slot_description && !p11_eq(slot->description, u->slot_description))
		return 0;
	if (u->has_slot_manufacturer && !p11_eq(slot->manufacturer, u->slot_manufacturer))
		return 0;
	if (u->has_slot_id && PKCS11_get_slotid_from_slot(slot) != u->slot_id)
		return 0;
	return 1;
}

static int p11_key_matches(const struct key_p11_uri *u, const PKCS11_KEY *k)
{
	if (!k->isPrivate)
		return 0;
	if (u->has_object && (!k->label || strcmp(k->label, u->object)))
		return 0;
	if (u->has_id && (k->id_len != u->id_len || memcmp(k->id, u->id, u->id_len)))
		return 0;
	return 1;
}

static sc_status p11_open(const struct key_p11_uri *u, const struct sc_key_opts *o,
			  struct key_p11 **out, char *err, size_t errlen)
{
	const char *module = key_p11_module(u, o);
	struct key_p11 *h = calloc(1, sizeof *h);

	if (!h)
		return SC_ERR_NOMEM;
	h->ctx = PKCS11_CTX_new();
	if (!h->ctx) {
		free(h);
		return SC_ERR_NOMEM;
	}
	if (PKCS11_CTX_load(h->ctx, module) != 0) {
		key_p11_release(h);
		return sc_fail_ossl(err, errlen, SC_ERR_NOT_FOUND,
				"cannot load the PKCS#11 module %s (set module-path in the URI, "
				"pkcs11_module, or $SMTPCERT_PKCS11_MODULE)", module);
	}
	h->loaded = 1;
	if (PKCS11_enumerate_slots(h->ctx, &h->slots, &h->nslots) != 0) {
		key_p11_release(h);
		return sc_fail_ossl(err, errlen, SC_ERR_IO, "%s: cannot list the slots", module);
	}
	*out = h;
	return SC_OK;
}

static sc_status p11_login(PKCS11_SLOT *slot, const char *pin, int have_pin, const char *shown,
			   char *err, size_t errlen)
{
	unsigned long reason;
	int logged = 0;

	if (!slot->token->loginRequired)
		return SC_OK;
	if (PKCS11_is_logged_in(slot, 0, &logged) == 0 && logged)
		return SC_OK;
	if (!have_pin)
		return sc_fail_ossl(err, errlen, SC_ERR_AUTH,
				"%s: token \"%s\" needs a PIN (pin-value, pin-source or a PIN "
				"file)", shown, slot->token->label);
	if (PKCS11_login(slot, 0, pin) == 0)
		return SC_OK;
	reason = (unsigned long)ERR_GET_REASON(ERR_peek_last_error());
	switch (reason) {
	case KEY_CKR_PIN_INCORRECT:
	case KEY_CKR_PIN_INVALID:
	case KEY_CKR_PIN_LEN_RANGE:
		return sc_fail_ossl(err, errlen, SC_ERR_AUTH, "%s: wrong PIN for token \"%s\"", shown,
				slot->token->label);
	case KEY_CKR_PIN_LOCKED:
		return sc_fail_ossl(err, errlen, SC_ERR_AUTH, "%s: the PIN of token \"%s\" is locked",
				shown, slot->token->label);
	case KEY_CKR_PIN_EXPIRED:
		return sc_fail_ossl(err, errlen, SC_ERR_AUTH,
				"%s: the PIN of token \"%s\" has expired", shown,
				slot->token->label);
	default:
		return sc_fail_ossl(err, errlen, SC_ERR_AUTH, "%s: login to token \"%s\" failed",
				shown, slot->token->label);
	}
}

/* Find the one private key the URI names on the token in @p slot. */
static sc_status p11_find_key(const struct key_p11_uri *u, PKCS11_SLOT *slot, const char *shown,
			      PKCS11_KEY **out, char *err, size_t errlen)
{
	PKCS11_KEY *keys = NULL, *found = NULL;
	unsigned int n = 0, hits = 0;

	if (PKCS11_enumerate_keys(slot->token, &keys, &n) != 0)
		return sc_fail_ossl(err, errlen, SC_ERR_IO, "%s: cannot list the keys of token \"%s\"",
				shown, slot->token->label);
	for (unsigned int i = 0; i < n; i++)
		if (p11_key_matches(u, &keys[i])) {
			if (!found)
				found = &keys[i];
			hits++;
		}
	if (!found)
		return SC_ERR_NOT_FOUND;
	if (hits > 1 && !u->has_object && !u->has_id)
		return sc_fail_ossl(err, errlen, SC_ERR_SYNTAX,
				"%s: token \"%s\" holds %u private keys: name one with object= "
				"or id=", shown, slot->token->label, hits);
	*out = found;
	return SC_OK;
}

sc_status key_p11_load_parsed(const struct key_p11_uri *u, const char *shown,
			      const struct sc_key_opts *o, EVP_PKEY **pk, struct key_p11 **p11,
			      char *err, size_t errlen)
{
	struct key_p11 *h = NULL;
	PKCS11_SLOT *slot = NULL;
	PKCS11_KEY *key = NULL;
	char pin[KEY_P11_ATTR_MAX];
	unsigned tokens = 0;
	int have_pin = 0;
	sc_status st;

	*pk = NULL;
	*p11 = NULL;
	st = key_p11_pin(u, o, pin, sizeof pin, &have_pin, err, errlen);
	if (st == SC_OK)
		st = p11_open(u, o, &h, err, errlen);
	for (unsigned i = 0; st == SC_OK && i < h->nslots && !key; i++) {
		slot = &h->slots[i];
		if (!p11_slot_matches(u, slot))
			continue;
		tokens++;
		st = p11_login(slot, pin, have_pin, shown, err, errlen);
		if (st == SC_OK) {
			st = p11_find_key(u, slot, shown, &key, err, errlen);
			if (st == SC_ERR_NOT_FOUND)
				st = SC_OK;
		}
	}
	OPENSSL_cleanse(pin, sizeof pin);
	if (st == SC_OK && !tokens)
		st = sc_fail_ossl(err, errlen, SC_ERR_NOT_FOUND, "%s: no token matches (module %s)",
			      shown, key_p11_module(u, o));
	else if (st == SC_OK && !key)
		st = sc_fail_ossl(err, errlen, SC_ERR_NOT_FOUND, "%s: no such private key on the token",
			      shown);
	if (st == SC_OK) {
		*pk = PKCS11_get_private_key(key);
		if (!*pk)
			st = sc_fail_ossl(err, errlen, SC_ERR_UNSUPPORTED,
				      "%s: the token's key cannot be used (type not supported)",
				      shown);
	}
	if (st != SC_OK) {
		key_p11_release(h);
		return st;
	}
	ERR_clear_error();
	*p11 = h;
	return SC_OK;
}

sc_status key_p11_load(const char *uri, const struct sc_key_opts *o, EVP_PKEY **pk,
		       struct key_p11 **p11, char *err, size_t errlen)
{
	struct key_p11_uri *u = malloc(sizeof *u);
	char shown[256];
	sc_status st;

	if (!u)
		return SC_ERR_NOMEM;
	key_p11_uri_display(uri, shown, sizeof shown);
	st = key_p11_uri_parse(uri, u, err, errlen);
	if (st == SC_OK)
		st = key_p11_load_parsed(u, shown, o, pk, p11, err, errlen);
	OPENSSL_cleanse(u, sizeof *u);
	free(u);
	return st;
}
