/*
 * lookup_mx.c - fetching a certificate from the MX hosts of the address's domain
 * (RFC 5321 5.1 order). First version: the system resolver (sc_mx_lookup) and
 * PKIX authentication of each MX host; replaced by the DNSSEC-aware path.
 */
#include <stdio.h>
#include <string.h>

#include "lookup_int.h"

sc_status lookup_fetch_mx(const struct sc_addr *a, const struct sc_lookup_opts *o,
			  struct lookup_fetch *f, char *err, size_t errlen)
{
	char hosts[SC_MX_MAX][SC_DOMAIN_MAX + 1];
	const char *port = o->mx_port ? o->mx_port : LOOKUP_MX_PORT;
	size_t n = 0;
	sc_status st;

	SC_TRY(sc_mx_lookup(a->domain, hosts, SC_MX_MAX, &n, err, errlen));
	st = SC_ERR_NOT_FOUND;
	for (size_t i = 0; i < n; i++) {
		st = lookup_ask(a, o, hosts[i], port, hosts[i], NULL, 0, f, err, errlen);
		if (st == SC_OK || !lookup_try_next(st))
			break;
		sc_cert_free(f->cert);
		f->cert = NULL;
	}
	return st;
}
