/*
 * auth_int.h - the vtable every SMTP AUTH credential source implements,
 * internal to libsmtpcert. lib/auth.c owns the registry (one line per source)
 * and the checks common to all sources (argument bounds); a source only
 * verifies a user name and password. Every function is called from worker
 * threads concurrently: a source guards its own shared state.
 */
#ifndef SC_AUTH_INT_H
#define SC_AUTH_INT_H

#include <stddef.h>
#include "smtpcert/auth.h"

/* Longest user name and password a source is asked about (RFC 4954 4 limits
 * the SASL exchange to 12288 octets of base64, which is at most 9216 octets,
 * so these only bound what a client may make us hash). */
#define SC_AUTH_USER_MAX 512
#define SC_AUTH_PASS_MAX 1024

struct sc_auth_source {
	const char *scheme; /* without the ':' */
	sc_status (*open)(const char *arg, void **state, char *err, size_t errlen);
	void (*close)(void *state);
	/* as sc_auth_verify(); user and password are within the bounds above */
	sc_status (*verify)(void *state, const char *user, const char *password,
			    const char *remote_ip, int timeout_ms, char *canon, size_t canonlen);
};

extern const struct sc_auth_source sc_auth_passwd_source;
extern const struct sc_auth_source sc_auth_dovecot_source;

/* Compare two strings in time that depends only on their lengths.
 * @return non-zero when equal. */
int sc_auth_equal_ct(const char *a, const char *b);

#endif
