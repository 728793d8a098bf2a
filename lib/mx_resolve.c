/*
 * mx_resolve.c - sc_mx_resolve(): the mail exchangers of a domain and their
 * addresses through the DNSSEC-aware resolver of the certificate lookup
 * (lib/dns.c, libunbound), for `smtpcert send` delivering directly to a
 * recipient domain: the same resolver (and `resolver`/`dnssec_anchor`
 * settings) that found the certificate also finds where the mail goes, and a
 * bogus answer is refused for both. Owns nothing past a call. Runs in the CLI's
 * process.
 */
#include <stdio.h>
#include <string.h>

#include "smtpcert/smtpcert.h"
#include "dns_int.h"

sc_status sc_mx_resolve(const char *domain, const char *resolver, const char *anchor,
			int timeout_ms, struct sc_mx_host *hosts, size_t max, size_t *n,
			char *err, size_t errlen)
{
	char names[SC_MX_MAX][SC_DOMAIN_MAX + 1];
	struct dns_ctx *d = NULL;
	size_t nnames = 0;
	enum dns_sec sec;
	sc_status st, last = SC_ERR_NOT_FOUND;

	SC_ENSURE_ARG(domain);
	SC_ENSURE_ARG(hosts);
	SC_ENSURE_ARG(n);
	*n = 0;
	if (err && errlen)
		err[0] = '\0';
	SC_ENSURE(max > 0 && domain[0], SC_ERR_ARG);
	SC_TRY(dns_open(resolver, anchor, timeout_ms, &d, err, errlen));
	st = dns_mx(d, domain, names, max < SC_MX_MAX ? max : SC_MX_MAX, &nnames, &sec, err,
		    errlen);
	if (st == SC_OK && sec == DNS_BOGUS)
		st = SC_ERR_VERIFY;
	for (size_t i = 0; st == SC_OK && i < nnames; i++) {
		struct sc_mx_host *h = &hosts[*n];
		char addrs[SC_MX_ADDRS_MAX][DNS_ADDR_MAX];
		size_t na = 0;
		sc_status ast;

		/* RFC 5321 5.1: a host whose addresses cannot be found is skipped;
		 * the next one may do. A bogus address answer is never used. */
		ast = dns_addrs(d, names[i], addrs, SC_MX_ADDRS_MAX, &na, &sec, NULL, 0);
		if (ast == SC_OK && sec == DNS_BOGUS)
			ast = SC_ERR_VERIFY;
		if (ast != SC_OK || na == 0) {
			if (ast != SC_ERR_NOT_FOUND)
				last = ast;
			continue;
		}
		memcpy(h->name, names[i], strnlen(names[i], SC_DOMAIN_MAX) + 1);
		h->name[SC_DOMAIN_MAX] = '\0';
		for (size_t k = 0; k < na; k++) {
			size_t l = strnlen(addrs[k], DNS_ADDR_MAX - 1);

			memcpy(h->addrs[k], addrs[k], l);
			h->addrs[k][l] = '\0';
		}
		h->naddrs = na;
		(*n)++;
	}
	dns_close(d);
	if (st != SC_OK)
		return st;
	if (*n == 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: no mail exchanger has an address%s", domain,
				 last == SC_ERR_VERIFY ? " that validates (DNSSEC bogus)" : "");
		return last == SC_ERR_NOT_FOUND ? SC_ERR_NOT_FOUND : last;
	}
	return SC_OK;
}
