/*
 * addr_fuzz.c - fuzz target for sc_addr_parse() and the key/format functions.
 *
 * Every flag combination is tried. Invariants (abort() when broken): a failure
 * carries a reason and a documented status; an accepted address always has a key
 * and a display form; the display form parses again to the same key; the key is
 * itself a mailbox whose key is unchanged (normalisation is idempotent); the
 * prefetch's key guess (sc_addr_key_guess()), when it makes one for what CERT
 * accepts, is the key; a parse gives the same fields and flags whatever the
 * struct held before; a bare key is the local part and the domain folded one
 * octet at a time (the library folds eight at a time).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <smtpcert/smtpcert.h>

#include "addr_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A key without quotes: local '@' domain without one trailing dot, A-Z folded. */
static void check_bare_key(const struct sc_addr *a, const char *key, size_t klen)
{
	size_t nl = strlen(a->local), nd = strlen(a->domain);

	if (key[0] == '"')
		return;
	if (nd > 1 && a->domain[nd - 1] == '.')
		nd--;
	if (klen != nl + 1 + nd || key[nl] != '@')
		abort();
	for (size_t i = 0; i < nl; i++)
		if (key[i] != fold(a->local[i]))
			abort();
	for (size_t i = 0; i < nd; i++)
		if (key[nl + 1 + i] != fold(a->domain[i]))
			abort();
}

/* The same parse into a struct that held something else: same result. */
static void check_fresh(const char *s, size_t len, unsigned flags, sc_status rc,
			const struct sc_addr *a)
{
	struct sc_addr b;
	const char *why = NULL;

	memset(&b, 0xA5, sizeof b);
	if (sc_addr_parse(s, len, flags, &b, &why) != rc || b.flags != a->flags ||
	    strcmp(b.local, a->local) != 0 || strcmp(b.domain, a->domain) != 0)
		abort();
}

static void check_roundtrip(const char *s, size_t len, unsigned flags)
{
	struct sc_addr a, b;
	const char *why = NULL;
	char key[SC_ADDR_KEY_MAX], key2[SC_ADDR_KEY_MAX], fmt[SC_ADDR_KEY_MAX + 2];
	size_t klen, flen;
	sc_status rc = sc_addr_parse(s, len, flags, &a, &why);

	check_fresh(s, len, flags, rc, &a);
	if (rc != SC_OK) {
		if (!why || !*why)
			abort();
		if (rc != SC_ERR_SYNTAX && rc != SC_ERR_TOO_LONG && rc != SC_ERR_ENCODING &&
		    rc != SC_ERR_UNSUPPORTED)
			abort();
		return;
	}
	if (strlen(a.local) > SC_LOCAL_MAX || strlen(a.domain) > SC_DOMAIN_MAX)
		abort();
	if (sc_addr_key(&a, key, sizeof key, &klen) != SC_OK || klen != strlen(key))
		abort();
	check_bare_key(&a, key, klen);
	/* CERT's flags (no literal, no route): a guess is either none or right */
	if ((flags & ~(unsigned)SC_ADDR_UTF8) == 0) {
		size_t glen = sc_addr_key_guess(s, len, key2, sizeof key2);

		if (glen && (glen != klen || memcmp(key2, key, klen) != 0))
			abort();
	}
	/* The display form, bracketed when brackets are required. */
	fmt[0] = '<';
	if (sc_addr_format(&a, fmt + 1, sizeof fmt - 2) != SC_OK)
		abort();
	flen = strlen(fmt);
	fmt[flen++] = '>';
	fmt[flen] = '\0';
	if (sc_addr_parse(fmt, flen, flags, &b, &why) != SC_OK)
		abort();
	if (sc_addr_key(&b, key2, sizeof key2, NULL) != SC_OK || strcmp(key, key2) != 0)
		abort();
	if ((a.flags & SC_ADDR_IS_UTF8) != (b.flags & SC_ADDR_IS_UTF8) ||
	    (a.flags & SC_ADDR_IS_LITERAL) != (b.flags & SC_ADDR_IS_LITERAL))
		abort();
	if (!sc_addr_equal(&a, &b))
		abort();
	/* The key is a mailbox too, and normalising it changes nothing. */
	if (sc_addr_parse(key, klen, flags & ~(unsigned)SC_ADDR_BRACKETS, &b, &why) != SC_OK)
		abort();
	if (sc_addr_key(&b, key2, sizeof key2, NULL) != SC_OK || strcmp(key, key2) != 0)
		abort();
	/* The domain of a non-literal passes the config-time check. */
	if (!(a.flags & SC_ADDR_IS_LITERAL) &&
	    sc_domain_check(a.domain, strlen(a.domain), flags) != SC_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Longer inputs only exercise the limits; keep runs fast. */
	if (size > 2048)
		return 0;
	for (unsigned flags = 0; flags < 16; flags++)
		check_roundtrip((const char *)data, size, flags);
	if (size > 0) {
		/* sc_domain_check on the same bytes, and the equality helper. */
		char tmp[2049];

		sc_status rc = sc_domain_check((const char *)data, size, SC_ADDR_UTF8);

		if (rc != SC_OK && rc != SC_ERR_SYNTAX && rc != SC_ERR_TOO_LONG &&
		    rc != SC_ERR_ENCODING)
			abort();
		memcpy(tmp, data, size);
		tmp[size] = '\0';
		if (!sc_domain_equal(tmp, tmp))
			abort();
	}
	return 0;
}
