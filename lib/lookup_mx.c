/*
 * lookup_mx.c - fetching a certificate from the MX hosts of the address's
 * domain, in RFC 5321 5.1 order, each over a channel authenticated as RFC 7672
 * asks of SMTP clients:
 *   - MX answer secure (DNSSEC), the host's address records secure, and a
 *     secure TLSA RRset at _PORT._tcp.HOST with usable records (DANE-TA(2),
 *     DANE-EE(3)): the server must match a TLSA record (DANE);
 *   - otherwise: PKIX verification of the MX host name (RFC 6125) against the
 *     system store or --ca-file. RFC 7672 would allow unauthenticated TLS here;
 *     a certificate fetched over a forged channel is worse than none, so we
 *     authenticate anyway.
 * Bogus answers (DNSSEC validation failed) are never used: a bogus MX RRset
 * fails the lookup, a bogus address or TLSA RRset skips that host. Runs in the
 * CLI's process.
 */
#include <stdio.h>
#include <string.h>

#include "dns_int.h"
#include "lookup_int.h"
#include "errmsg.h"

/* Records OpenSSL can match and RFC 7672 3.1 lets SMTP use. */
static size_t usable_tlsa(const struct dns_tlsa *t, struct sc_tlsa *out)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++) {
		const struct sc_tlsa *r = &t->rr[i];

		if ((r->usage == 2 || r->usage == 3) && r->selector <= 1 && r->mtype <= 2)
			out[n++] = *r;
	}
	return n;
}

/* Is a failure about authentication (reported in preference to others)? */
static int security_failure(sc_status st)
{
	return st == SC_ERR_VERIFY || st == SC_ERR_TLS;
}

/* One MX host: its addresses, its TLSA records, then each address in turn. */
static sc_status ask_host(struct dns_ctx *d, const struct sc_addr *a,
			  const struct sc_lookup_opts *o, const char *host, const char *port,
			  int mx_secure, struct lookup_fetch *f, char *err, size_t errlen)
{
	char addrs[DNS_ADDRS_MAX][DNS_ADDR_MAX];
	struct sc_tlsa use[DNS_TLSA_MAX];
	struct dns_tlsa t = { .n = 0 };
	enum dns_sec asec, tsec = DNS_INSECURE;
	size_t na = 0, nuse = 0;
	sc_status st;

	st = dns_addrs(d, host, addrs, DNS_ADDRS_MAX, &na, &asec, err, errlen);
	/* A host without addresses is unreachable, not "no certificate". */
	if (st == SC_ERR_NOT_FOUND)
		return SC_ERR_NETWORK;
	SC_TRY(st);
	if (mx_secure && asec == DNS_SECURE && !o->insecure) {
		st = dns_tlsa(d, port, host, &t, &tsec, err, errlen);
		/* RFC 7672 2.2.1: a TLSA lookup that fails (bogus, SERVFAIL) must not
		 * fall back to weaker authentication for this host. */
		if (st != SC_OK)
			return st;
		if (tsec == DNS_SECURE)
			nuse = usable_tlsa(&t, use);
	}
	st = SC_ERR_NETWORK;
	for (size_t i = 0; i < na; i++) {
		sc_cert_free(f->cert);
		f->cert = NULL;
		st = lookup_ask(a, o, addrs[i], port, host, nuse ? use : NULL, nuse, f, err,
				errlen);
		if (st == SC_OK || (st != SC_ERR_NETWORK && st != SC_ERR_TIMEOUT))
			break;
	}
	if (st == SC_OK && nuse == 0 && tsec == DNS_SECURE && t.n)
		snprintf(f->detail + strlen(f->detail), sizeof f->detail - strlen(f->detail),
			 " (TLSA records present but none usable for SMTP)");
	dns_tlsa_free(&t);
	return st;
}

sc_status lookup_fetch_mx(const struct sc_addr *a, const struct sc_lookup_opts *o,
			  struct lookup_fetch *f, char *err, size_t errlen)
{
	char hosts[SC_MX_MAX][SC_DOMAIN_MAX + 1];
	char first_sec[512] = "";
	const char *port = o->mx_port ? o->mx_port : LOOKUP_MX_PORT;
	struct dns_ctx *d;
	enum dns_sec sec;
	size_t n = 0;
	sc_status st, sec_st = SC_OK;

	if (a->flags & SC_ADDR_IS_LITERAL) {
		sc_errf(err, errlen, "%s: an address literal has no MX records: use --server",
			      a->domain);
		return SC_ERR_ARG;
	}
	for (const char *p = a->domain; *p; p++) {
		if ((unsigned char)*p >= 0x80) {
			/* DNS needs A-labels (RFC 5890); no IDNA library here. */
			sc_errf(err, errlen, "%s: an internationalized domain must be given "
				      "in its A-label (xn--) form for the MX lookup", a->domain);
			return SC_ERR_UNSUPPORTED;
		}
	}
	SC_TRY(dns_open(o->resolver, o->dnssec_anchor, o->timeout_ms, &d, err, errlen));
	st = dns_mx(d, a->domain, hosts, SC_MX_MAX, &n, &sec, err, errlen);
	if (st != SC_OK)
		goto out;
	f->dnssec = sec == DNS_SECURE;
	st = SC_ERR_NOT_FOUND;
	for (size_t i = 0; i < n; i++) {
		sc_cert_free(f->cert);
		f->cert = NULL;
		st = ask_host(d, a, o, hosts[i], port, f->dnssec, f, err, errlen);
		if (st == SC_OK)
			break;
		if (security_failure(st) && sec_st == SC_OK) {
			sec_st = st;
			sc_errf(first_sec, sizeof first_sec, "%s", err ? err : "");
		}
		if (!lookup_try_next(st))
			break;
	}
	/* The MX hosts that did not authenticate matter more than the ones that
	 * were unreachable after them. */
	if (st != SC_OK && sec_st != SC_OK && lookup_try_next(st)) {
		st = sec_st;
		sc_errf(err, errlen, "%s", first_sec);
	}
out:
	dns_close(d);
	return st;
}
