/*
 * repo_ldap_cert.c - certificates out of directory values for the ldap://
 * backend (repo_ldap.h): a DER certificate (userCertificate;binary), a PKCS #7
 * certs-only SignedData (userSMIMECertificate) put in chain order, and a bare
 * leaf's chain from the CA entry named by the URL's x-ca-dn extension
 * (cACertificate;binary). Owns nothing beyond one call. Runs in the daemon's
 * worker threads and the admin CLI.
 */
#include <ldap.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "repo_backend.h"
#include "repo_ldap.h"

/* The cert after @p cur in the chain: the one in @p sk whose subject is cur's
 * issuer, not already @p used; -1 at a self-signed cert or a gap. */
static int ldap_cert_next(STACK_OF(X509) *sk, X509 *cur, const unsigned char *used)
{
	if (!X509_NAME_cmp(X509_get_subject_name(cur), X509_get_issuer_name(cur)))
		return -1;
	for (int j = 0; j < sk_X509_num(sk) && j < SC_REPO_LDAP_CA_MAX; j++)
		if (!used[j] && !X509_NAME_cmp(X509_get_subject_name(sk_X509_value(sk, j)),
					       X509_get_issuer_name(cur)))
			return j;
	return -1;
}

/* The DER sequence sc_cert_parse() takes: @p leaf, then its issuers found by
 * name in @p sk (RFC 5280 6.1: issuer of one = subject of the next). */
static sc_status ldap_cert_order(STACK_OF(X509) *sk, X509 *leaf, sc_cert **out)
{
	unsigned char used[SC_REPO_LDAP_CA_MAX] = { 0 }, *buf = malloc(SC_CERT_INPUT_MAX);
	size_t blen = 0, k = 0;
	X509 *x = leaf;
	sc_status st = SC_ERR_SYNTAX;

	if (!buf)
		return SC_ERR_NOMEM;
	while (x && k++ < SC_CHAIN_MAX) {
		int l = i2d_X509(x, NULL), next;
		unsigned char *w = buf + blen;

		if (l <= 0 || (size_t)l > SC_CERT_INPUT_MAX - blen)
			goto out;
		blen += (size_t)i2d_X509(x, &w);
		for (int j = 0; j < sk_X509_num(sk) && j < SC_REPO_LDAP_CA_MAX; j++)
			if (sk_X509_value(sk, j) == x)
				used[j] = 1;
		next = ldap_cert_next(sk, x, used);
		x = next >= 0 ? sk_X509_value(sk, next) : NULL;
	}
	st = sc_cert_parse(buf, blen, out);
out:
	free(buf);
	return st;
}

/*
 * userSMIMECertificate (RFC 2798 2.8) holds a PKCS #7 SignedData whose
 * certificates field (RFC 2315 9.1) is an unordered set: the leaf is the one that
 * issued none of the others, then its chain follows issuer names.
 */
static sc_status ldap_cert_p7(const void *der, size_t len, sc_cert **out)
{
	const unsigned char *p = der;
	PKCS7 *p7 = len <= SC_CERT_INPUT_MAX ? d2i_PKCS7(NULL, &p, (long)len) : NULL;
	STACK_OF(X509) *sk = p7 && PKCS7_type_is_signed(p7) && p7->d.sign ?
		p7->d.sign->cert : NULL;
	int n = sk ? sk_X509_num(sk) : 0, cur = -1;
	sc_status st = SC_ERR_SYNTAX;

	if (!p7 || p != (const unsigned char *)der + len || n <= 0 || n > SC_CHAIN_MAX)
		goto out;
	for (int i = 0; i < n && cur < 0; i++) {
		int issues = 0;

		for (int j = 0; j < n && !issues; j++)
			issues = j != i && !X509_NAME_cmp(X509_get_subject_name(sk_X509_value(sk, i)),
							 X509_get_issuer_name(sk_X509_value(sk, j)));
		if (!issues)
			cur = i;
	}
	if (cur >= 0)
		st = ldap_cert_order(sk, sk_X509_value(sk, cur), out);
out:
	PKCS7_free(p7);
	return st;
}

sc_status sc_repo_ldap_value(const void *val, size_t len, sc_cert **out)
{
	SC_ENSURE_ARG(val && out);
	if (len > SC_CERT_INPUT_MAX)
		return SC_ERR_TOO_LONG;
	if (sc_cert_parse(val, len, out) == SC_OK)
		return SC_OK;
	return ldap_cert_p7(val, len, out);
}

int sc_repo_ldap_ca_fetch(struct ldap *ld, const char *dn, int timeout,
			  struct stack_st_X509 **out)
{
	struct timeval tv = { .tv_sec = timeout };
	char attr[] = "cACertificate;binary", *attrs[] = { attr, NULL };
	STACK_OF(X509) *sk = sk_X509_new_null();
	LDAPMessage *res = NULL, *e;
	struct berval **vals = NULL;
	int rc;

	*out = NULL;
	if (!sk)
		return LDAP_NO_MEMORY;
	/* RFC 4523 2.2: the CA entry's certificates, one value each */
	rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL,
			       NULL, &tv, 1, &res);
	e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	vals = e ? ldap_get_values_len(ld, e, attr) : NULL;
	for (size_t i = 0; vals && vals[i] && sk_X509_num(sk) < SC_REPO_LDAP_CA_MAX; i++) {
		const unsigned char *p = (const unsigned char *)vals[i]->bv_val;
		X509 *x = vals[i]->bv_len <= SC_CERT_INPUT_MAX ?
			d2i_X509(NULL, &p, (long)vals[i]->bv_len) : NULL;

		if (x && !sk_X509_push(sk, x))
			X509_free(x);
	}
	ldap_value_free_len(vals);
	ldap_msgfree(res);
	*out = sk;
	return rc;
}

void sc_repo_ldap_ca_free(struct stack_st_X509 *cas)
{
	sk_X509_pop_free(cas, X509_free);
}

sc_status sc_repo_ldap_chain(struct stack_st_X509 *cas, sc_cert **c)
{
	const uint8_t *der;
	size_t len;
	X509 *leaf;
	sc_cert *full = NULL;
	sc_status st;

	SC_ENSURE_ARG(c && *c);
	if (!cas || sk_X509_num(cas) == 0 || sc_cert_der(*c, 0, &der, &len) != SC_OK)
		return SC_ERR_NOT_FOUND;
	leaf = d2i_X509(NULL, &der, (long)len);
	if (!leaf)
		return SC_ERR_SYNTAX;
	st = ldap_cert_order(cas, leaf, &full);
	X509_free(leaf);
	if (st != SC_OK)
		return st;
	if (sc_cert_count(full) < 2) {
		sc_cert_free(full);
		return SC_ERR_NOT_FOUND; /* no issuer of this leaf in the CA entry */
	}
	sc_cert_free(*c);
	*c = full;
	return SC_OK;
}

void sc_repo_ldap_entry_certs(struct sc_repo *repo, const char *uri, struct ldap *ld,
			      struct ldapmsg *e, const char *skip, sc_cert **certs, size_t *n,
			      size_t max)
{
	BerElement *ber = NULL;

	for (char *a = ldap_first_attribute(ld, e, &ber); a; a = ldap_next_attribute(ld, e, ber)) {
		struct berval **vals = skip && !strcasecmp(a, skip) ? NULL :
			ldap_get_values_len(ld, e, a);

		for (size_t i = 0; vals && vals[i] && *n < max; i++) {
			if (sc_repo_ldap_value(vals[i]->bv_val, vals[i]->bv_len,
					       &certs[*n]) != SC_OK) {
				sc_repo_warn(repo, "%s: a value of %s is not a certificate; "
					     "skipped", uri, a);
				continue;
			}
			(*n)++;
		}
		ldap_value_free_len(vals);
		ldap_memfree(a);
	}
	ber_free(ber, 0);
}
