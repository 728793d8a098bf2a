/*
 * repo_ldap.h - internal to libsmtpcert: the LDAP URL and filter helpers of the
 * ldap:// repository backend (lib/repo_ldap_url.c), exposed for unit tests.
 */
#ifndef SC_REPO_LDAP_H
#define SC_REPO_LDAP_H

#include <stddef.h>
#include "smtpcert/status.h"

#define SC_REPO_LDAP_ATTRS_MAX 4
#define SC_REPO_LDAP_FILTER_MAX 1024

/* An RFC 4516 URL, split. Strings are NUL-terminated and percent-decoded, except
 * filter which keeps the URL's %XX and %s (decoded at substitution time, so that
 * a %25s in the URL stays the text "%s" and never becomes a placeholder). */
struct sc_repo_ldap_url {
	char uri[1024];  /* for ldap_initialize(): "ldap://h1:389 ldap://h2:389" */
	char base[512];
	char attrs[SC_REPO_LDAP_ATTRS_MAX][64];
	size_t nattrs;
	int scope;       /* LDAP_SCOPE_BASE / ONELEVEL / SUBTREE */
	char filter[512];
	char ca_dn[512];  /* extension x-ca-dn: entry whose cACertificate;binary
			   * values complete a bare leaf's chain ("" = none) */
};

/* Parse "//hostport[,hostport...]/base?attrs?scope?filter" (after "ldap:" or
 * "ldaps:"; @p scheme is "ldap" or "ldaps"). Defaults: attribute
 * userCertificate;binary, scope base (RFC 4516 2), filter (mail=%s).
 * Extensions: x-ca-dn=DN (commas as %2C, RFC 4516 2); other non-critical ones
 * are ignored, a critical ('!') unknown one is an error.
 * @return SC_OK; SC_ERR_CONFIG with a message in @p err. */
SC_MUST_CHECK sc_status sc_repo_ldap_url_parse(const char *scheme, const char *rest,
					       struct sc_repo_ldap_url *u, char *err,
					       size_t errlen);

/* RFC 4515 3: write @p in as an assertion value: '*', '(', ')', '\' and NUL
 * become \2a \28 \29 \5c \00. @return SC_OK; SC_ERR_TOO_LONG. */
SC_MUST_CHECK sc_status sc_repo_ldap_escape(const char *in, size_t len, char *out,
					    size_t size, size_t *outlen);

/* The search filter: @p tmpl (sc_repo_ldap_url.filter) with each %s replaced by
 * the escaped key and each %XX decoded. @return SC_OK; SC_ERR_TOO_LONG;
 * SC_ERR_SYNTAX (bad % sequence). */
SC_MUST_CHECK sc_status sc_repo_ldap_filter(const char *tmpl, const char *key, size_t keylen,
					    char *out, size_t size);

#endif
