/*
 * key_p11gen.c - generate a key pair on a PKCS#11 token (`smtpcert keygen --pkcs11`).
 * libp11 0.4.12 can only make RSA keys (PKCS11_generate_key, deprecated), so the
 * pair is made with C_GenerateKeyPair directly (PKCS#11 v2.40 section 5.14) in a
 * short read-write session of our own; the module is then released and the new
 * key loaded through libp11 like any other (lib/key_pkcs11.c). Runs in the smtpcert
 * client's process.
 *
 * The private key is CKA_SENSITIVE and not CKA_EXTRACTABLE: it never leaves the
 * token. A key with the same label or id already on the token is never replaced
 * (SC_ERR_EXISTS). The PIN buffer is wiped.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit-1/p11-kit/pkcs11.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "smtpcert/smtpcert.h"
#include "key_int.h"
#include "errmsg.h"

#define GEN_SLOTS_MAX 64
#define GEN_DEFAULT_LABEL "smtpcert"

/* DER of the OID prime256v1 / secp256r1 (RFC 5480 section 2.1.1.1), CKA_EC_PARAMS. */
static const unsigned char p256_params[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
					     0x3d, 0x03, 0x01, 0x07 };
static const unsigned char rsa_f4[] = { 0x01, 0x00, 0x01 };

struct gen {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	int initialized; /* we called C_Initialize, so we call C_Finalize */
	CK_SESSION_HANDLE session;
	int open;
};

static void gen_close(struct gen *g)
{
	if (g->open) {
		g->f->C_Logout(g->session);
		g->f->C_CloseSession(g->session);
	}
	if (g->initialized)
		g->f->C_Finalize(NULL);
	if (g->dl)
		dlclose(g->dl);
	memset(g, 0, sizeof *g);
}

static sc_status gen_load(struct gen *g, const char *module, char *err, size_t errlen)
{
	CK_C_GetFunctionList get;
	CK_RV rv;

	g->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (!g->dl)
		return sc_fail(err, errlen, SC_ERR_NOT_FOUND,
				"cannot load the PKCS#11 module %s", module);
	get = (CK_C_GetFunctionList)dlsym(g->dl, "C_GetFunctionList");
	if (!get || get(&g->f) != CKR_OK || !g->f)
		return sc_fail(err, errlen, SC_ERR_UNSUPPORTED, "%s: not a PKCS#11 module",
				module);
	rv = g->f->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return sc_fail(err, errlen, SC_ERR_IO, "%s: C_Initialize failed (0x%lx)",
				module, (unsigned long)rv);
	g->initialized = rv == CKR_OK;
	return SC_OK;
}

/* Fixed-width, blank-padded token strings against a URI value. */
static int gen_eq(const unsigned char *field, size_t width, const char *want)
{
	size_t n = width, wl = strlen(want);

	while (n && field[n - 1] == ' ')
		n--;
	return n == wl && !memcmp(field, want, n);
}

static sc_status gen_find_slot(struct gen *g, const struct key_p11_uri *u, CK_SLOT_ID *out,
			       char *label, size_t lsize, char *err, size_t errlen)
{
	CK_SLOT_ID slots[GEN_SLOTS_MAX];
	CK_ULONG n = GEN_SLOTS_MAX;
	unsigned found = 0;

	if (g->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return sc_fail(err, errlen, SC_ERR_IO, "cannot list the token slots");
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		CK_SLOT_INFO si;

		if (g->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    g->f->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if ((u->has_token && !gen_eq(ti.label, sizeof ti.label, u->token)) ||
		    (u->has_manufacturer &&
		     !gen_eq(ti.manufacturerID, sizeof ti.manufacturerID, u->manufacturer)) ||
		    (u->has_serial && !gen_eq(ti.serialNumber, sizeof ti.serialNumber, u->serial)) ||
		    (u->has_model && !gen_eq(ti.model, sizeof ti.model, u->model)) ||
		    (u->has_slot_description &&
		     !gen_eq(si.slotDescription, sizeof si.slotDescription,
			     u->slot_description)) ||
		    (u->has_slot_id && slots[i] != u->slot_id))
			continue;
		if (found++ == 0) {
			size_t l = sizeof ti.label;

			*out = slots[i];
			while (l && ti.label[l - 1] == ' ')
				l--;
			snprintf(label, lsize, "%.*s", (int)l, (const char *)ti.label);
		}
	}
	if (!found)
		return sc_fail(err, errlen, SC_ERR_NOT_FOUND, "no token matches");
	if (found > 1)
		return sc_fail(err, errlen, SC_ERR_ARG,
				"%u tokens match: name one with token= in the URI", found);
	return SC_OK;
}

/* @return 1 when a private key with this label or id is already on the token. */
static int gen_exists(struct gen *g, CK_ATTRIBUTE *what)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof cls }, *what };
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 0;

	if (g->f->C_FindObjectsInit(g->session, t, 2) != CKR_OK)
		return 0;
	if (g->f->C_FindObjects(g->session, &h, 1, &n) != CKR_OK)
		n = 0;
	g->f->C_FindObjectsFinal(g->session);
	return n > 0;
}

static sc_status gen_pair(struct gen *g, enum sc_keygen_type type, char *label,
			  unsigned char *id, size_t id_len, char *err, size_t errlen)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 3072;
	CK_MECHANISM mech = { type == SC_KEYGEN_P256 ? CKM_EC_KEY_PAIR_GEN
						    : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[8], priv[10];
	CK_ULONG np = 0, nv = 0;
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_RV rv;

#define ATTR(arr, n, t, p, l) (arr[n].type = (t), arr[n].pValue = (void *)(p), \
			       arr[n].ulValueLen = (l), n++)
	ATTR(pub, np, CKA_TOKEN, &yes, sizeof yes);
	ATTR(pub, np, CKA_VERIFY, &yes, sizeof yes);
	ATTR(pub, np, CKA_LABEL, label, strlen(label));
	ATTR(pub, np, CKA_ID, id, id_len);
	ATTR(priv, nv, CKA_TOKEN, &yes, sizeof yes);
	ATTR(priv, nv, CKA_PRIVATE, &yes, sizeof yes);
	ATTR(priv, nv, CKA_SENSITIVE, &yes, sizeof yes);
	ATTR(priv, nv, CKA_EXTRACTABLE, &no, sizeof no);
	ATTR(priv, nv, CKA_SIGN, &yes, sizeof yes);
	ATTR(priv, nv, CKA_LABEL, label, strlen(label));
	ATTR(priv, nv, CKA_ID, id, id_len);
	if (type == SC_KEYGEN_P256) {
		/* RFC 5753: S/MIME decryption with an EC key is ECDH key agreement. */
		ATTR(pub, np, CKA_EC_PARAMS, p256_params, sizeof p256_params);
		ATTR(priv, nv, CKA_DERIVE, &yes, sizeof yes);
	} else {
		ATTR(pub, np, CKA_ENCRYPT, &yes, sizeof yes);
		ATTR(pub, np, CKA_MODULUS_BITS, &bits, sizeof bits);
		ATTR(pub, np, CKA_PUBLIC_EXPONENT, rsa_f4, sizeof rsa_f4);
		ATTR(priv, nv, CKA_DECRYPT, &yes, sizeof yes);
		ATTR(priv, nv, CKA_UNWRAP, &yes, sizeof yes);
	}
#undef ATTR
	rv = g->f->C_GenerateKeyPair(g->session, &mech, pub, np, priv, nv, &hpub, &hpriv);
	if (rv == CKR_MECHANISM_INVALID)
		return sc_fail(err, errlen, SC_ERR_UNSUPPORTED,
				"the token cannot generate %s keys",
				type == SC_KEYGEN_P256 ? "P-256" : "RSA-3072");
	if (rv != CKR_OK)
		return sc_fail(err, errlen, SC_ERR_IO, "key generation on the token failed (0x%lx)",
				(unsigned long)rv);
	return SC_OK;
}

/* Generate in our own session; on SC_OK @p u names the new key (label and id). */
static sc_status gen_on_token(struct key_p11_uri *u, const struct sc_key_opts *o,
			      enum sc_keygen_type type, const char *shown, char *err,
			      size_t errlen)
{
	struct gen g = { 0 };
	CK_SLOT_ID slot = 0;
	char pin[KEY_P11_ATTR_MAX], token[64];
	CK_ATTRIBUTE by_label = { CKA_LABEL, u->object, 0 };
	CK_ATTRIBUTE by_id = { CKA_ID, u->id, 0 };
	int have_pin = 0;
	CK_RV rv;
	sc_status st;

	if (!u->has_object) {
		snprintf(u->object, sizeof u->object, "%s", GEN_DEFAULT_LABEL);
		u->has_object = 1;
	}
	if (!u->has_id) {
		/* A random CKA_ID ties the two halves (and a certificate stored later). */
		if (RAND_bytes(u->id, 16) != 1)
			return sc_fail(err, errlen, SC_ERR_CRYPTO, "no random bytes");
		u->id_len = 16;
		u->has_id = 1;
	}
	by_label.ulValueLen = strlen(u->object);
	by_id.ulValueLen = u->id_len;
	st = key_p11_pin(u, o, pin, sizeof pin, &have_pin, err, errlen);
	if (st == SC_OK)
		st = gen_load(&g, key_p11_module(u, o), err, errlen);
	if (st == SC_OK)
		st = gen_find_slot(&g, u, &slot, token, sizeof token, err, errlen);
	if (st == SC_OK) {
		rv = g.f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					&g.session);
		if (rv == CKR_OK)
			g.open = 1;
		else
			st = sc_fail(err, errlen, SC_ERR_IO, "%s: cannot open a session (0x%lx)",
				      shown, (unsigned long)rv);
	}
	if (st == SC_OK && !have_pin)
		st = sc_fail(err, errlen, SC_ERR_AUTH, "%s: token \"%s\" needs a PIN", shown,
			      token);
	if (st == SC_OK) {
		rv = g.f->C_Login(g.session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE)
			st = sc_fail(err, errlen, SC_ERR_AUTH, "%s: wrong PIN for token \"%s\"",
				      shown, token);
		else if (rv == CKR_PIN_LOCKED)
			st = sc_fail(err, errlen, SC_ERR_AUTH,
				      "%s: the PIN of token \"%s\" is locked", shown, token);
		else if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
			st = sc_fail(err, errlen, SC_ERR_AUTH,
				      "%s: login to token \"%s\" failed (0x%lx)", shown, token,
				      (unsigned long)rv);
	}
	OPENSSL_cleanse(pin, sizeof pin);
	if (st == SC_OK && (gen_exists(&g, &by_label) || gen_exists(&g, &by_id)))
		st = sc_fail(err, errlen, SC_ERR_EXISTS,
			      "%s: token \"%s\" already holds a key labelled \"%s\" or with that "
			      "id (not replaced)", shown, token, u->object);
	if (st == SC_OK)
		st = gen_pair(&g, type, u->object, u->id, u->id_len, err, errlen);
	gen_close(&g);
	return st;
}

sc_status key_p11_generate(const char *uri, const struct sc_key_opts *o,
			   enum sc_keygen_type type, EVP_PKEY **pk, struct key_p11 **p11,
			   char *err, size_t errlen)
{
	struct key_p11_uri *u = malloc(sizeof *u);
	char shown[256];
	sc_status st;

	if (!u)
		return SC_ERR_NOMEM;
	*pk = NULL;
	*p11 = NULL;
	key_p11_uri_display(uri, shown, sizeof shown);
	st = key_p11_uri_parse(uri, u, err, errlen);
	if (st == SC_OK)
		st = gen_on_token(u, o, type, shown, err, errlen);
	if (st == SC_OK)
		st = key_p11_load_parsed(u, shown, o, pk, p11, err, errlen);
	OPENSSL_cleanse(u, sizeof *u);
	free(u);
	return st;
}
