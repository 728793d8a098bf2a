/*
 * ldapurl_fuzz.c - fuzz target for the ldap:// repository's URL and filter
 * helpers (lib/repo_ldap_url.c): the repository URL from smtpcertd.conf(5)
 * (RFC 4516) and the search filter built from it and a looked-up address
 * (RFC 4515 escaping).
 *
 * Byte 0: bit 0 picks "ldaps" over "ldap". The rest up to the first NUL is the
 * URL after the scheme's colon; what follows the NUL is the key. Invariants
 * (abort() when broken): only the documented statuses; every string of a parsed
 * URL is NUL-terminated inside its field and nattrs is within its bound; an
 * escaped key holds none of '*', '(', ')', NUL unescaped and fits its buffer;
 * a built filter is NUL-terminated inside its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo_ldap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_repo_ldap_url *u;
	char err[256], esc[SC_REPO_LDAP_FILTER_MAX], filter[SC_REPO_LDAP_FILTER_MAX];
	char *url;
	const char *key;
	size_t urllen, keylen, esclen = 0;
	sc_status rc;

	if (size < 1 || size > 8192)
		return 0;
	url = malloc(size);
	u = malloc(sizeof *u);
	if (!url || !u)
		abort();
	memcpy(url, data + 1, size - 1);
	url[size - 1] = '\0';
	urllen = strlen(url);
	key = urllen + 1 < size - 1 ? url + urllen + 1 : "";
	keylen = urllen + 1 < size - 1 ? size - 1 - urllen - 1 : 0;

	rc = sc_repo_ldap_escape(key, keylen, esc, sizeof esc, &esclen);
	if (rc == SC_OK) {
		if (esclen >= sizeof esc || esc[esclen] != '\0')
			abort();
		for (size_t i = 0; i < esclen; i++)
			if (esc[i] == '*' || esc[i] == '(' || esc[i] == ')' || esc[i] == '\0')
				abort();
	} else if (rc != SC_ERR_TOO_LONG) {
		abort();
	}

	err[0] = '\0';
	rc = sc_repo_ldap_url_parse(data[0] & 1 ? "ldaps" : "ldap", url, u, err, sizeof err);
	if (rc == SC_OK) {
		if (!TERMINATED(u->uri) || !TERMINATED(u->base) || !TERMINATED(u->filter) ||
		    u->nattrs > SC_REPO_LDAP_ATTRS_MAX)
			abort();
		for (size_t i = 0; i < u->nattrs; i++)
			if (!TERMINATED(u->attrs[i]))
				abort();
		rc = sc_repo_ldap_filter(u->filter, key, keylen, filter, sizeof filter);
		if (rc == SC_OK && !TERMINATED(filter))
			abort();
		if (rc != SC_OK && rc != SC_ERR_TOO_LONG && rc != SC_ERR_SYNTAX)
			abort();
	} else if (rc != SC_ERR_CONFIG || !TERMINATED(err)) {
		abort();
	}
	free(u);
	free(url);
	return 0;
}
