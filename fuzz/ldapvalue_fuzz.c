/*
 * ldapvalue_fuzz.c - fuzz target for what the ldap:// backend takes from a
 * directory server and from list(): attribute values decoded as certificates
 * (lib/repo_ldap_cert.c sc_repo_ldap_value: a DER certificate, or a PKCS #7
 * SignedData whose certificate set is put in chain order), and the list filter
 * built from the URL's template (lib/repo_ldap_url.c sc_repo_ldap_filter_all).
 *
 * Byte 0: bit 0 picks the filter template (the rest, NUL-terminated at the
 * first NUL) over a value (the rest, as bytes). Invariants (abort() when
 * broken): only the documented statuses; a decoded value is 1 to SC_CHAIN_MAX
 * certificates; a built filter and attribute are NUL-terminated inside their
 * buffers, and the attribute holds only RFC 4512 descr/option characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo_ldap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_value(const uint8_t *data, size_t size)
{
	sc_cert *c = NULL;
	sc_status rc = sc_repo_ldap_value(data, size, &c);

	if (rc == SC_OK) {
		if (!c || sc_cert_count(c) < 1 || sc_cert_count(c) > SC_CHAIN_MAX)
			abort();
		sc_cert_free(c);
	} else if (c) {
		abort();
	}
}

static void fuzz_filter(const uint8_t *data, size_t size)
{
	char *tmpl = malloc(size + 1), out[SC_REPO_LDAP_FILTER_MAX], attr[64];
	sc_status rc;

	if (!tmpl)
		abort();
	memcpy(tmpl, data, size);
	tmpl[size] = '\0';
	rc = sc_repo_ldap_filter_all(tmpl, out, sizeof out, attr, sizeof attr);
	if (rc == SC_OK) {
		if (!memchr(out, '\0', sizeof out) || !memchr(attr, '\0', sizeof attr))
			abort();
		for (const char *p = attr; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '-' || *p == ';' || *p == '.'))
				abort();
	} else if (rc != SC_ERR_TOO_LONG && rc != SC_ERR_SYNTAX) {
		abort();
	}
	free(tmpl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 70000)
		return 0;
	if (data[0] & 1)
		fuzz_filter(data + 1, size - 1);
	else
		fuzz_value(data + 1, size - 1);
	return 0;
}
