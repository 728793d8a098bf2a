/*
 * cert_email.c - the email addresses a certificate binds its subject to: SAN
 * rfc822Name (RFC 5280 4.2.1.6), SAN otherName SmtpUTF8Mailbox (RFC 9598, which
 * obsoletes RFC 8398) and the subject's emailAddress attribute (RFC 8550 section 3:
 * receiving agents MUST recognise it). Part of sc_cert_parse(); no state.
 *
 * Each candidate goes through sc_addr_parse(), so only real mailboxes reach the
 * repository key. Malformed entries are skipped, not fatal: a certificate may carry
 * other names we have no use for, and the caller refuses a certificate without
 * any usable address itself.
 */
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "smtpcert/addr.h"
#include "cert_internal.h"

/* DER content of id-on-SmtpUTF8Mailbox, 1.3.6.1.5.5.7.8.9 (RFC 9598 section 3). */
static const unsigned char oid_smtputf8mailbox[] = { 0x2b, 0x06, 0x01, 0x05, 0x05,
						     0x07, 0x08, 0x09 };

struct email_list {
	struct sc_addr *out;
	size_t max, n;
};

/* Append unless an address with the same lookup key is already there. */
static void email_push(struct email_list *l, const struct sc_addr *a)
{
	for (size_t i = 0; i < l->n; i++)
		if (sc_addr_equal(&l->out[i], a))
			return;
	if (l->n < l->max)
		l->out[l->n++] = *a;
}

/* An IA5String address (rfc822Name, emailAddress): 7-bit only, no NUL or other
 * control characters (X.680 IA5 allows them; a mailbox never has them). */
static void email_ascii(struct email_list *l, const ASN1_STRING *s)
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int len = ASN1_STRING_length(s);
	struct sc_addr a;

	if (!d || len <= 0)
		return;
	for (int i = 0; i < len; i++)
		if (d[i] < 0x20 || d[i] > 0x7e)
			return;
	if (sc_addr_parse((const char *)d, (size_t)len, 0, &a, NULL) == SC_OK)
		email_push(l, &a);
}

/*
 * SmtpUTF8Mailbox: a UTF8String holding an RFC 6531 Mailbox. RFC 9598 section 3
 * requires non-ASCII domain labels to be stored as A-labels, so a domain with raw
 * UTF-8 is not conforming and is skipped (we do not convert U-labels, and keying it
 * as written would make a second spelling of the same mailbox). An all-ASCII local
 * part should have been an rfc822Name; it names the same mailbox, so it is kept.
 */
static void email_utf8(struct email_list *l, const OTHERNAME *on)
{
	const ASN1_STRING *s;
	const unsigned char *d;
	struct sc_addr a;
	int len;

	if (!on || !on->type_id || !on->value)
		return;
	if (OBJ_length(on->type_id) != sizeof oid_smtputf8mailbox ||
	    memcmp(OBJ_get0_data(on->type_id), oid_smtputf8mailbox,
		   sizeof oid_smtputf8mailbox) != 0)
		return;
	if (on->value->type != V_ASN1_UTF8STRING)
		return;
	s = on->value->value.utf8string;
	d = ASN1_STRING_get0_data(s);
	len = ASN1_STRING_length(s);
	if (!d || len <= 0)
		return;
	for (int i = 0; i < len; i++)
		if (d[i] < 0x20 || d[i] == 0x7f)
			return;
	if (sc_addr_parse((const char *)d, (size_t)len, SC_ADDR_UTF8, &a, NULL) != SC_OK)
		return;
	for (const char *p = a.domain; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return;
	email_push(l, &a);
}

static void email_subject(struct email_list *l, const X509_NAME *name)
{
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(name, NID_pkcs9_emailAddress, i)) >= 0) {
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		int t = s ? ASN1_STRING_type(s) : -1;

		/* PKCS #9 says IA5String; some CAs write UTF8String (ASCII checked). */
		if (t == V_ASN1_IA5STRING || t == V_ASN1_UTF8STRING)
			email_ascii(l, s);
	}
}

sc_status cert_email_collect(const X509 *x, struct sc_addr *out, size_t max, size_t *n)
{
	struct email_list l = { out, max, 0 };
	GENERAL_NAMES *gens;
	int crit = -1;

	*n = 0;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	/* crit: -1 absent; -2 present more than once (RFC 5280 4.2 allows one: which
	 * would count?); otherwise gens is NULL only when undecodable. */
	if (!gens && crit != -1)
		return SC_ERR_SYNTAX;
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_EMAIL)
			email_ascii(&l, g->d.rfc822Name);
		else if (g->type == GEN_OTHERNAME)
			email_utf8(&l, g->d.otherName);
	}
	GENERAL_NAMES_free(gens);
	email_subject(&l, X509_get_subject_name(x));
	*n = l.n;
	return SC_OK;
}
