/*
 * policy.c - the acceptance policy for submitted certificates (see
 * smtpcert/policy.h and docs/protocol.md "Acceptance policy"), the leaf's key
 * description and its RFC 4262 SMIMECapabilities. One verdict for both the daemon
 * (CERC) and `smtpcert check`, so an offline check predicts the server's answer.
 *
 * The checks run in a fixed order and the first failure gives the reason, a short
 * lower-case phrase that tests and scripts match; never change a phrase, add one.
 * The key checks look at the decoded certificate (OpenSSL's cached extension
 * flags), not at the text of the extensions, so that a critical keyUsage that
 * OpenSSL could not decode is refused rather than read as "absent".
 *
 * Owns nothing beyond the call: every OpenSSL object is freed before returning.
 * Runs in smtpcertd (the process that answers CERC) and in the CLI.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtpcert/smtpcert.h"

/* RFC 4262 section 2.1 (also RFC 8551 2.5.2): smimeCapabilities. */
#define POLICY_OID_SMIME_CAPS "1.2.840.113549.1.9.15"
/* Most capabilities listed; real ones carry about a dozen. */
#define POLICY_CAPS_MAX 64
/* RSA below this is factorable by well-funded attackers (NIST SP 800-131A). */
#define POLICY_RSA_MIN_BITS 2048
#define POLICY_EC_MIN_BITS 256

enum key_kind { KEY_RSA, KEY_EC, KEY_OTHER };

static sc_status refuse(char *reason, size_t reasonlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static sc_status refuse(char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	if (reason && reasonlen) {
		va_start(ap, fmt);
		vsnprintf(reason, reasonlen, fmt, ap);
		va_end(ap);
	}
	return SC_ERR_POLICY;
}

/* Certificate @p i (0: the leaf) as an OpenSSL object, from the DER the sc_cert holds. */
static X509 *cert_x509(const sc_cert *c, size_t i)
{
	const uint8_t *der;
	size_t len;

	if (!c || sc_cert_der(c, i, &der, &len) != SC_OK || len > SC_CERT_INPUT_MAX)
		return NULL;
	return d2i_X509(NULL, &der, (long)len);
}

/*
 * "P-256" for NIST curves (FIPS 186-4 names, what users know), else the SN.
 * @return the curve's NID, NID_undef for explicit parameters that match no named
 *         curve (OpenSSL names those that do).
 */
static int curve_name(const EVP_PKEY *pk, char *buf, size_t size)
{
	char group[80] = "";
	size_t glen = 0;
	const char *nist = NULL;
	int nid;

	if (!EVP_PKEY_get_group_name(pk, group, sizeof group, &glen) || !group[0]) {
		snprintf(buf, size, "unnamed curve");
		return NID_undef;
	}
	nid = OBJ_sn2nid(group);
	if (nid == NID_undef)
		nid = OBJ_txt2nid(group);
	if (nid != NID_undef)
		nist = EC_curve_nid2nist(nid);
	snprintf(buf, size, "%s", nist ? nist : group);
	return nid;
}

/*
 * Curves S/MIME clients implement for ECDH (RFC 5753, RFC 8551 2.7: P-256 and
 * up; RFC 5639 Brainpool as deployed in Germany). Others of 256 bits or more
 * (secp256k1, custom parameters) would leave senders unable to encrypt.
 */
static int curve_supported(int nid)
{
	switch (nid) {
	case NID_X9_62_prime256v1:
	case NID_secp384r1:
	case NID_secp521r1:
	case NID_brainpoolP256r1:
	case NID_brainpoolP384r1:
	case NID_brainpoolP512r1:
		return 1;
	default:
		return 0;
	}
}

static enum key_kind key_kind(const EVP_PKEY *pk)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		return KEY_RSA;
	case EVP_PKEY_EC:
		return KEY_EC;
	default:
		return KEY_OTHER;
	}
}

static void key_desc(const EVP_PKEY *pk, char *buf, size_t size)
{
	char curve[80];
	const char *name;

	if (!pk) {
		snprintf(buf, size, "unknown");
		return;
	}
	switch (key_kind(pk)) {
	case KEY_RSA:
		snprintf(buf, size, "RSA-%d", EVP_PKEY_get_bits(pk));
		return;
	case KEY_EC:
		curve_name(pk, curve, sizeof curve);
		snprintf(buf, size, "EC-%s", curve);
		return;
	default:
		break;
	}
	/* Signature-only and other keys: the names RFC 8410 and RFC 4055 use. */
	switch (EVP_PKEY_get_base_id(pk)) {
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

void sc_cert_key_desc(const sc_cert *c, char *buf, size_t size)
{
	X509 *x;

	if (!buf || !size)
		return;
	x = cert_x509(c, 0);
	key_desc(x ? X509_get0_pubkey(x) : NULL, buf, size);
	X509_free(x);
}

/*
 * RFC 5280 4.2.1.3: keyUsage, when present, limits the key. Encrypting to RSA
 * wraps the content key (keyEncipherment, RFC 8551 2.2 / RFC 3370 4.2); to EC it
 * runs ECDH (keyAgreement, RFC 5753 7.1). An extension OpenSSL could not decode
 * (present, yet no EXFLAG_KUSAGE) is refused: reading it as absent would accept a
 * certificate whose CA meant to restrict it.
 */
static int key_usage_ok(X509 *x, enum key_kind kind)
{
	uint32_t flags = X509_get_extension_flags(x);
	uint32_t ku = X509_get_key_usage(x);

	if (!(flags & EXFLAG_KUSAGE))
		return X509_get_ext_by_NID(x, NID_key_usage, -1) < 0;
	switch (kind) {
	case KEY_RSA:
		return (ku & KU_KEY_ENCIPHERMENT) != 0;
	case KEY_EC:
		return (ku & KU_KEY_AGREEMENT) != 0;
	default:
		return (ku & (KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)) != 0;
	}
}

/* RFC 5280 4.2.1.12; RFC 8550 4.4.4: emailProtection, or anyExtendedKeyUsage. */
static int ext_key_usage_ok(X509 *x)
{
	uint32_t flags = X509_get_extension_flags(x);

	if (!(flags & EXFLAG_XKUSAGE))
		return X509_get_ext_by_NID(x, NID_ext_key_usage, -1) < 0;
	return (X509_get_extended_key_usage(x) & (XKU_SMIME | XKU_ANYEKU)) != 0;
}

/* RSA >= 2048 bits; EC on a curve of 256 bits or more that clients support. */
static sc_status key_strength(const EVP_PKEY *pk, char *reason, size_t reasonlen)
{
	char name[80];
	int bits = EVP_PKEY_get_bits(pk), nid;

	switch (key_kind(pk)) {
	case KEY_RSA:
		if (bits < POLICY_RSA_MIN_BITS)
			return refuse(reason, reasonlen, "RSA key too small (%d bits)", bits);
		return SC_OK;
	case KEY_EC:
		nid = curve_name(pk, name, sizeof name);
		if (bits < POLICY_EC_MIN_BITS)
			return refuse(reason, reasonlen, "EC curve too small (%s)", name);
		if (!curve_supported(nid))
			return refuse(reason, reasonlen, "unsupported key type (EC-%s)", name);
		return SC_OK;
	default:
		key_desc(pk, name, sizeof name);
		return refuse(reason, reasonlen, "unsupported key type (%s)", name);
	}
}

/*
 * The leaf's intended use is judged by the rules above, not by OpenSSL's S/MIME
 * purpose, which insists on keyEncipherment (refusing EC keyAgreement keys) and
 * ignores anyExtendedKeyUsage. The purpose still applies to the CA certificates.
 */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_INVALID_PURPOSE &&
	    X509_STORE_CTX_get_error_depth(ctx) == 0)
		return 1;
	return ok;
}

/*
 * submission_ca_file: the leaf must chain, through the certificates submitted
 * with it, to one of the anchors, at @p now. The anchors may be intermediates
 * (partial chains allowed): the administrator names what they trust.
 */
static sc_status chain_check(const sc_cert *c, X509 *leaf, const char *ca_file, time_t now,
			     char *reason, size_t reasonlen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	sc_status st = SC_ERR_NOMEM;
	int rc;

	if (!store || !ctx || !untrusted)
		goto out;
	if (X509_STORE_load_file(store, ca_file) != 1) {
		refuse(reason, reasonlen, "cannot load submission_ca_file %s", ca_file);
		st = SC_ERR_CONFIG;
		goto out;
	}
	for (size_t i = 1; i < sc_cert_count(c); i++) {
		X509 *x = cert_x509(c, i);

		if (!x || !sk_X509_push(untrusted, x)) {
			X509_free(x);
			goto out;
		}
	}
	X509_STORE_set_verify_cb(store, verify_cb);
	if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
		goto out;
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	rc = X509_verify_cert(ctx);
	if (rc == 1)
		st = SC_OK;
	else
		st = refuse(reason, reasonlen, "does not chain to a submission anchor (%s)",
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	return st;
}

/*
 * The leaf is an end entity, and what came with it is a chain: each certificate
 * a CA that issued (name, key identifier, keyCertSign, signature) the one before
 * it. CERS serves the chain as given, so a wrong one would mislead every client;
 * and a CA certificate served as a user's, once trusted by a client, would let
 * its holder mint certificates for any address.
 */
static sc_status structure_check(const sc_cert *c, X509 *leaf, char *reason, size_t reasonlen)
{
	X509 *prev = leaf, *x = NULL;
	sc_status st = SC_OK;

	/* RFC 5280 4.2.1.9: cA asserted means a CA certificate */
	if (X509_get_extension_flags(leaf) & EXFLAG_CA)
		return refuse(reason, reasonlen, "certificate is a CA");
	for (size_t i = 1; i < sc_cert_count(c) && st == SC_OK; i++) {
		EVP_PKEY *pk;

		x = cert_x509(c, i);
		if (!x)
			return refuse(reason, reasonlen, "chain certificate %zu does not decode", i);
		pk = X509_get0_pubkey(x);
		if (X509_check_ca(x) == 0)
			st = refuse(reason, reasonlen, "chain certificate %zu is not a CA", i);
		else if (X509_check_issued(x, prev) != X509_V_OK || !pk ||
			 X509_verify(prev, pk) != 1)
			st = refuse(reason, reasonlen,
				    "chain certificate %zu did not issue certificate %zu", i, i - 1);
		if (prev != leaf)
			X509_free(prev);
		prev = x;
	}
	if (prev != leaf)
		X509_free(prev);
	return st;
}

/* Checks that need no OpenSSL object: identity, domain, validity, revocation. */
static sc_status identity_checks(const struct sc_policy *p, const sc_cert *c,
				 const struct sc_addr *addr, time_t now, char *reason,
				 size_t reasonlen)
{
	struct sc_addr emails[SC_CERT_EMAILS_MAX];
	sc_status st;

	if (sc_cert_emails(c, emails, SC_CERT_EMAILS_MAX) == 0)
		return refuse(reason, reasonlen, "no email address");
	if (!sc_cert_has_email(c, addr))
		return refuse(reason, reasonlen, "email address does not match");
	if (p->cfg && sc_config_domain_kind(p->cfg, addr->domain) == SC_DOMAIN_FOREIGN)
		return refuse(reason, reasonlen, "domain not served");
	st = sc_cert_check_time(c, now);
	if (st == SC_ERR_EXPIRED)
		return refuse(reason, reasonlen, "expired");
	if (st != SC_OK)
		return refuse(reason, reasonlen, "not yet valid");
	st = sc_crlset_check_cert(p->crls, c);
	if (st == SC_ERR_REVOKED)
		return refuse(reason, reasonlen, "revoked");
	/* An issuer name the CRL code cannot even compare is not "not revoked". */
	if (st != SC_OK)
		return st == SC_ERR_NOMEM ? st : refuse(reason, reasonlen, "revoked");
	return SC_OK;
}

sc_status sc_policy_check(const struct sc_policy *p, const sc_cert *c,
			  const struct sc_addr *addr, char *reason, size_t reasonlen)
{
	time_t now;
	X509 *x;
	EVP_PKEY *pk;
	enum key_kind kind;
	sc_status st;

	SC_ENSURE_ARG(p);
	SC_ENSURE_ARG(addr);
	if (reason && reasonlen)
		reason[0] = '\0';
	now = p->now ? p->now : time(NULL);
	x = cert_x509(c, 0);
	if (!x)
		return refuse(reason, reasonlen, "not a certificate");
	st = identity_checks(p, c, addr, now, reason, reasonlen);
	if (st != SC_OK)
		goto out;
	pk = X509_get0_pubkey(x);
	if (!pk) {
		st = refuse(reason, reasonlen, "unsupported key type (unknown)");
		goto out;
	}
	kind = key_kind(pk);
	if (!key_usage_ok(x, kind)) {
		st = refuse(reason, reasonlen, "keyUsage does not permit encryption");
		goto out;
	}
	if (!ext_key_usage_ok(x)) {
		st = refuse(reason, reasonlen, "extKeyUsage lacks emailProtection");
		goto out;
	}
	st = key_strength(pk, reason, reasonlen);
	if (st == SC_OK)
		st = structure_check(c, x, reason, reasonlen);
	if (st == SC_OK && p->ca_file)
		st = chain_check(c, x, p->ca_file, now, reason, reasonlen);
out:
	X509_free(x);
	/* Leave no decode or verify errors behind for the next TLS call to trip on. */
	ERR_clear_error();
	return st;
}

/* Append @p item to the comma-separated list in @p buf, only whole. */
static void list_add(char *buf, size_t size, size_t *used, const char *item)
{
	int n = snprintf(buf + *used, size - *used, "%s%s", *used ? "," : "", item);

	if (n < 0 || (size_t)n >= size - *used)
		buf[*used] = '\0'; /* truncated: keep only whole entries */
	else
		*used += (size_t)n;
}

/*
 * RFC 4262 2.1: SMIMECapabilities ::= SEQUENCE OF SMIMECapability,
 * SMIMECapability ::= SEQUENCE { capabilityID OBJECT IDENTIFIER, parameters ANY
 * OPTIONAL }. Walked with ASN1_get_object, each length bounded by its container.
 */
static sc_status caps_decode(const unsigned char *p, long len, char *buf, size_t size)
{
	const unsigned char *start, *end, *q, *cap_end;
	long clen, olen;
	int tag, cls, rc;
	size_t used = 0, count = 0;
	char name[128];

	start = p;
	rc = ASN1_get_object(&p, &clen, &tag, &cls, len);
	/* rc: 0x80 error or over the bound, 0x20 constructed, 0x01 indefinite (BER) */
	if (rc != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL ||
	    p + clen != start + len)
		return SC_ERR_SYNTAX;
	end = p + clen;
	buf[0] = '\0';
	while (p < end) {
		ASN1_OBJECT *obj;

		if (++count > POLICY_CAPS_MAX)
			return SC_ERR_SYNTAX;
		rc = ASN1_get_object(&p, &clen, &tag, &cls, end - p);
		if (rc != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL)
			return SC_ERR_SYNTAX;
		cap_end = p + clen;
		q = p;
		rc = ASN1_get_object(&q, &olen, &tag, &cls, cap_end - p);
		if (rc != 0 || tag != V_ASN1_OBJECT || cls != V_ASN1_UNIVERSAL)
			return SC_ERR_SYNTAX;
		q = p;
		obj = d2i_ASN1_OBJECT(NULL, &q, cap_end - p);
		if (!obj)
			return SC_ERR_SYNTAX;
		if (OBJ_obj2nid(obj) != NID_undef)
			snprintf(name, sizeof name, "%s", OBJ_nid2sn(OBJ_obj2nid(obj)));
		else if (OBJ_obj2txt(name, sizeof name, obj, 1) <= 0)
			name[0] = '\0';
		ASN1_OBJECT_free(obj);
		if (!name[0])
			return SC_ERR_SYNTAX;
		list_add(buf, size, &used, name);
		/* parameters, if any, are one more element; nothing may follow it */
		if (q < cap_end) {
			rc = ASN1_get_object(&q, &olen, &tag, &cls, cap_end - q);
			if ((rc & 0x80) || (rc & 0x01))
				return SC_ERR_SYNTAX; /* bad, over the bound, or indefinite */
			q += olen;
			if (q != cap_end)
				return SC_ERR_SYNTAX;
		}
		p = cap_end;
	}
	return p == end ? SC_OK : SC_ERR_SYNTAX;
}

sc_status sc_cert_smime_caps(const sc_cert *c, char *buf, size_t size)
{
	ASN1_OBJECT *oid;
	X509 *x;
	int i;
	sc_status st;

	SC_ENSURE_ARG(c);
	SC_ENSURE(buf && size, SC_ERR_ARG);
	buf[0] = '\0';
	x = cert_x509(c, 0);
	if (!x)
		return SC_ERR_SYNTAX;
	oid = OBJ_txt2obj(POLICY_OID_SMIME_CAPS, 1);
	if (!oid) {
		X509_free(x);
		return SC_ERR_NOMEM;
	}
	i = X509_get_ext_by_OBJ(x, oid, -1);
	if (i < 0) {
		st = SC_ERR_NOT_FOUND;
	} else if (X509_get_ext_by_OBJ(x, oid, i) >= 0) {
		st = SC_ERR_SYNTAX; /* RFC 5280 4.2: one instance per extension */
	} else {
		const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(X509_get_ext(x, i));

		st = caps_decode(ASN1_STRING_get0_data(v), ASN1_STRING_length(v), buf, size);
		if (st != SC_OK)
			buf[0] = '\0';
	}
	ASN1_OBJECT_free(oid);
	X509_free(x);
	ERR_clear_error();
	return st;
}
