/*
 * auth.c - SMTP AUTH credential sources (see smtpcert/auth.h): the registry of
 * sources by scheme, the argument bounds every source relies on, and the
 * constant-time comparison the sources share. Sources live in
 * lib/auth_<scheme>.c (auth_int.h). Runs in smtpcertd's worker threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_int.h"

/* The registry: adding a source is one line here plus its lib/auth_<x>.c. */
static const struct sc_auth_source *const sources[] = {
	&sc_auth_passwd_source,
	&sc_auth_dovecot_source,
};

struct sc_auth {
	const struct sc_auth_source *src;
	void *state;
};

sc_status sc_auth_open(const char *spec, sc_auth **out, char *err, size_t errlen)
{
	const char *colon;
	sc_auth *a;

	if (err && errlen)
		err[0] = '\0';
	SC_ENSURE_ARG(out);
	*out = NULL;
	colon = spec ? strchr(spec, ':') : NULL;
	for (size_t i = 0; colon && i < sizeof sources / sizeof sources[0]; i++) {
		size_t n = strlen(sources[i]->scheme);
		sc_status rc;

		if ((size_t)(colon - spec) != n || memcmp(spec, sources[i]->scheme, n) != 0)
			continue;
		if (!colon[1]) {
			snprintf(err, errlen, "%s: missing path after %s:", spec, sources[i]->scheme);
			return SC_ERR_CONFIG;
		}
		a = calloc(1, sizeof *a);
		if (!a)
			return SC_ERR_NOMEM;
		a->src = sources[i];
		rc = a->src->open(colon + 1, &a->state, err, errlen);
		if (rc != SC_OK) {
			free(a);
			return rc;
		}
		*out = a;
		return SC_OK;
	}
	if (err && errlen)
		snprintf(err, errlen, "%s: expected passwd:/path or dovecot:/path/to/auth-socket",
			 spec ? spec : "(null)");
	return SC_ERR_CONFIG;
}

void sc_auth_close(sc_auth *a)
{
	if (!a)
		return;
	a->src->close(a->state);
	free(a);
}

sc_status sc_auth_verify(sc_auth *a, const char *user, const char *password,
			 const char *remote_ip, int timeout_ms, char *canon, size_t canonlen)
{
	size_t ulen, plen;

	SC_ENSURE_ARG(a);
	SC_ENSURE_ARG(user);
	SC_ENSURE_ARG(password);
	if (canon && canonlen)
		canon[0] = '\0';
	ulen = strnlen(user, SC_AUTH_USER_MAX + 1);
	plen = strnlen(password, SC_AUTH_PASS_MAX + 1);
	/* RFC 4616 2: authcid and passwd are non-empty. Out-of-bounds values are
	 * wrong credentials, not an error the client could tell apart. */
	if (ulen == 0 || ulen > SC_AUTH_USER_MAX || plen == 0 || plen > SC_AUTH_PASS_MAX)
		return SC_ERR_REJECTED;
	if (timeout_ms <= 0)
		timeout_ms = 1;
	return a->src->verify(a->state, user, password, remote_ip, timeout_ms, canon, canonlen);
}

int sc_auth_equal_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	/* walk the longer string fully; bytes past the shorter one compare with 0 */
	for (size_t i = 0, n = la > lb ? la : lb; i < n; i++) {
		unsigned char x = i < la ? (unsigned char)a[i] : 0;
		unsigned char y = i < lb ? (unsigned char)b[i] : 0;

		diff |= x ^ y;
	}
	return diff == 0;
}
