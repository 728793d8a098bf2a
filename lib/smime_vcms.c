/*
 * smime_vcms.c - the CMS half of S/MIME verification (sig_verify_cms(), see
 * smime_sig_int.h): algorithm checks, the signature of every SignerInfo, then
 * the signer certificates' chains, and the description of who signed.
 *
 * The two checks run apart so that the caller can tell "BAD signature" from
 * "signed by someone you do not trust", and so that --no-chain still checks the
 * signature. Algorithms OpenSSL 3.0 CMS cannot use (Ed25519/Ed448, RFC 8419; a
 * DSA key inheriting its parameters, RFC 3279 2.3.2) are named in a clean
 * SC_ERR_UNSUPPORTED before anything runs.
 *
 * Owns nothing after it returns; no global state.
 */
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "smtpcert/smime.h"
#include "smime_sig_int.h"

static void vcms_alg_name(const X509_ALGOR *alg, char *buf, size_t size)
{
	const ASN1_OBJECT *o = NULL;

	X509_ALGOR_get0(&o, NULL, NULL, alg);
	if (!o || OBJ_obj2txt(buf, (int)size, o, 0) <= 0)
		snprintf(buf, size, "(unknown)");
}

/* RFC 8551 2.1-2.2 name what a receiver must handle; what OpenSSL lacks is
 * refused here with the algorithm's name rather than a late, vague error. */
static sc_status vcms_check_algs(CMS_SignerInfo *si, char *err, size_t errlen)
{
	X509_ALGOR *dig = NULL, *sig = NULL;
	const ASN1_OBJECT *o = NULL;
	char name[80];
	int nid;
	EVP_MD *md;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	X509_ALGOR_get0(&o, NULL, NULL, sig);
	nid = OBJ_obj2nid(o);
	if (nid == NID_ED25519 || nid == NID_ED448)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: signature algorithm %s (RFC 8419) is not supported "
				"by OpenSSL 3.0 CMS", nid == NID_ED25519 ? "Ed25519" : "Ed448");
	X509_ALGOR_get0(&o, NULL, NULL, dig);
	nid = OBJ_obj2nid(o);
	md = nid == NID_undef ? NULL : EVP_MD_fetch(NULL, OBJ_nid2sn(nid), NULL);
	if (!md) {
		vcms_alg_name(dig, name, sizeof(name));
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: digest algorithm %s is not supported", name);
	}
	EVP_MD_free(md);
	return SC_OK;
}

/* Every signer certificate present and its key decodable. */
static sc_status vcms_check_signers(CMS_ContentInfo *cms, STACK_OF(CMS_SignerInfo) *sis,
				    char *err, size_t errlen)
{
	(void)CMS_set1_signers_certs(cms, NULL, 0);
	ERR_clear_error();
	for (int i = 0; i < sk_CMS_SignerInfo_num(sis); i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);
		X509 *x = NULL;

		CMS_SignerInfo_get0_algs(si, NULL, &x, NULL, NULL);
		if (!x)
			return sig_fail(err, errlen, SC_ERR_VERIFY, 0,
					"verify: signer %d: its certificate is not in the message",
					i + 1);
		if (!X509_get0_pubkey(x))
			return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 1,
					"verify: signer %d: its public key cannot be used "
					"(e.g. DSA parameters inherited from the CA, RFC 3279 "
					"2.3.2, are not supported)", i + 1);
		ERR_clear_error();
	}
	return SC_OK;
}

/* A CMS_verify() failure: "operation not supported" style reasons are the
 * library's limit, anything else is a bad signature. */
static sc_status vcms_verify_failed(char *err, size_t errlen)
{
	unsigned long e;
	sc_status st = SC_ERR_VERIFY;
	char reason[200] = "";

	while ((e = ERR_get_error()) != 0) {
		const char *r = ERR_reason_error_string(e);
		int lib = ERR_GET_LIB(e), why = ERR_GET_REASON(e);

		if ((lib == ERR_LIB_EVP && (why == EVP_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE ||
					    why == EVP_R_UNSUPPORTED_ALGORITHM)) ||
		    (lib == ERR_LIB_CMS && why == CMS_R_UNKNOWN_DIGEST_ALGORITHM) ||
		    why == ERR_R_UNSUPPORTED)
			st = SC_ERR_UNSUPPORTED;
		if (r && !reason[0])
			snprintf(reason, sizeof(reason), "%s", r);
	}
	if (st == SC_ERR_UNSUPPORTED)
		return sig_fail(err, errlen, st, 0, "verify: algorithm not supported (%s)",
				reason[0] ? reason : "unknown");
	return sig_fail(err, errlen, st, 0, "verify: BAD signature (%s)",
			reason[0] ? reason : "verification failure");
}

static sc_status vcms_chain(CMS_ContentInfo *cms, STACK_OF(CMS_SignerInfo) *sis,
			    const char *ca_file, char *err, size_t errlen)
{
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *untrusted = CMS_get1_certs(cms);
	sc_status rc = SC_OK;
	int ok;

	if (!store) {
		sk_X509_pop_free(untrusted, X509_free);
		return SC_ERR_NOMEM;
	}
	ok = ca_file ? X509_STORE_load_file(store, ca_file) : X509_STORE_set_default_paths(store);
	if (ok != 1)
		rc = sig_fail(err, errlen, SC_ERR_IO, 1, "verify: cannot read the trust anchors %s",
			      ca_file ? ca_file : "(system store)");
	for (int i = 0; rc == SC_OK && i < sk_CMS_SignerInfo_num(sis); i++) {
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		X509 *x = NULL;

		CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(sis, i), NULL, &x, NULL, NULL);
		if (!ctx || !X509_STORE_CTX_init(ctx, store, x, untrusted)) {
			X509_STORE_CTX_free(ctx);
			rc = SC_ERR_NOMEM;
			break;
		}
		/* RFC 8550 4: the path to a trust anchor, with the S/MIME signing
		 * purpose (extKeyUsage emailProtection when present). */
		X509_STORE_CTX_set_default(ctx, "smime_sign");
		if (X509_verify_cert(ctx) != 1) {
			int e = X509_STORE_CTX_get_error(ctx);

			rc = sig_fail(err, errlen, SC_ERR_VERIFY, 0,
				      "verify: signature valid but the signer is not trusted: %s",
				      X509_verify_cert_error_string(e));
		}
		X509_STORE_CTX_free(ctx);
	}
	sk_X509_pop_free(untrusted, X509_free);
	X509_STORE_free(store);
	return rc;
}

static void vcms_describe(X509 *x, CMS_SignerInfo *si, struct sc_smime_signer *s)
{
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	sc_cert *c = NULL;
	X509_ALGOR *dig = NULL;
	const ASN1_OBJECT *o = NULL;
	struct sc_addr a;

	if (len > 0 && sc_cert_parse(der, (size_t)len, &c) == SC_OK) {
		sc_cert_subject(c, s->subject, sizeof(s->subject));
		if (sc_cert_emails(c, &a, 1) == 1 &&
		    sc_addr_format(&a, s->email, sizeof(s->email)) != SC_OK)
			s->email[0] = '\0';
		sc_cert_free(c);
	} else {
		X509_NAME_oneline(X509_get_subject_name(x), s->subject, (int)sizeof(s->subject));
	}
	OPENSSL_free(der);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	X509_ALGOR_get0(&o, NULL, NULL, dig);
	snprintf(s->digest, sizeof(s->digest), "%s", OBJ_nid2ln(OBJ_obj2nid(o)));
}

sc_status sig_verify_cms(CMS_ContentInfo *cms, BIO *dcont, const char *ca_file, int no_chain,
			 struct sc_smime_signer *signer, X509 **signer_cert, char *err,
			 size_t errlen)
{
	STACK_OF(CMS_SignerInfo) *sis;
	CMS_SignerInfo *first;
	X509 *x = NULL;
	int nid = OBJ_obj2nid(CMS_get0_type(cms));

	if (nid != NID_pkcs7_signed)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: not signed-data but %s", OBJ_nid2ln(nid));
	sis = CMS_get0_SignerInfos(cms);
	if (sk_CMS_SignerInfo_num(sis) <= 0)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: signed-data without a signer (certificates only)");
	if (dcont && !CMS_is_detached(cms))
		return sig_fail(err, errlen, SC_ERR_SYNTAX, 0,
				"verify: content given twice (detached and encapsulated)");
	if (!dcont && CMS_is_detached(cms))
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: detached signature without its content");
	for (int i = 0; i < sk_CMS_SignerInfo_num(sis); i++)
		SC_TRY(vcms_check_algs(sk_CMS_SignerInfo_value(sis, i), err, errlen));
	SC_TRY(vcms_check_signers(cms, sis, err, errlen));
	/* The signature only: chain checked below, on its own. */
	if (CMS_verify(cms, NULL, NULL, dcont, NULL, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
		return vcms_verify_failed(err, errlen);
	first = sk_CMS_SignerInfo_value(sis, 0);
	CMS_SignerInfo_get0_algs(first, NULL, &x, NULL, NULL);
	vcms_describe(x, first, signer);
	if (!no_chain) {
		SC_TRY(vcms_chain(cms, sis, ca_file, err, errlen));
		signer->chain_verified = 1;
	}
	if (signer_cert && X509_up_ref(x))
		*signer_cert = x;
	return SC_OK;
}
