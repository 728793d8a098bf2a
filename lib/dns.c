/*
 * dns.c - DNSSEC-aware DNS queries for the sender's certificate lookup, through
 * libunbound: MX (RFC 5321 5.1 order, implicit MX, RFC 7505 null MX), A/AAAA of
 * the MX hosts and TLSA (RFC 6698, RFC 7672 2.2). Every answer carries its
 * DNSSEC status: secure, insecure, or bogus (validation failed: an attack or a
 * broken zone, never used). Owns the ub_ctx. Runs in the CLI's process; every
 * query waits at most the caller's timeout (asynchronous query + poll).
 *
 * Resolver: the `resolver` option forwards every query to ADDR[@PORT] (tests
 * point it at a private nsd); otherwise the system's (/etc/resolv.conf,
 * /etc/hosts). Trust anchor: the `dnssec_anchor` file (DS or DNSKEY records in
 * zone file format), else /usr/share/dns/root.key when present; without one
 * every answer is insecure, so DANE is never used and PKIX decides.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "dns_int.h"
#include "lookup_int.h"
#include "errmsg.h"

#define DNS_ROOT_KEY "/usr/share/dns/root.key"
#define DNS_TYPE_A 1
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_TLSA 52
#define DNS_CLASS_IN 1
#define DNS_RCODE_SERVFAIL 2

struct dns_ctx {
	struct ub_ctx *ub;
	int timeout_ms;
	int anchored; /* a trust anchor is loaded: "insecure" means provably so */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sc_status dns_open(const char *resolver, const char *anchor, int timeout_ms,
		   struct dns_ctx **out, char *err, size_t errlen)
{
	struct dns_ctx *d;
	int r;

	SC_ENSURE_ARG(out);
	*out = NULL;
	d = calloc(1, sizeof *d);
	if (!d)
		return SC_ERR_NOMEM;
	d->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	d->ub = ub_ctx_create();
	if (!d->ub) {
		free(d);
		sc_errf(err, errlen, "DNS: cannot create a resolver context");
		return SC_ERR_NOMEM;
	}
	/* Answers are collected with ub_process() on the caller's thread. */
	(void)ub_ctx_async(d->ub, 0);
	if (resolver && *resolver) {
		/* A forwarder on loopback (a local validating resolver, or a test's
		 * private server) must be allowed. */
		(void)ub_ctx_set_option(d->ub, "do-not-query-localhost:", "no");
		/* RFC 6761 6.2: unbound answers "test." itself (NXDOMAIN) by
		 * default; a resolver the user names may serve it (test set-ups). */
		(void)ub_ctx_set_option(d->ub, "local-zone:", "test. transparent");
		r = ub_ctx_set_fwd(d->ub, resolver);
		if (r) {
			sc_errf(err, errlen, "DNS: resolver '%s': %s", resolver, ub_strerror(r));
			dns_close(d);
			return SC_ERR_CONFIG;
		}
	} else {
		/* No resolv.conf: libunbound resolves from the root itself. */
		(void)ub_ctx_resolvconf(d->ub, NULL);
		(void)ub_ctx_hosts(d->ub, NULL);
	}
	if (!anchor && access(DNS_ROOT_KEY, R_OK) == 0)
		anchor = DNS_ROOT_KEY;
	if (anchor && *anchor) {
		/* libunbound reads the file only at the first query, and then
		 * reports a vague "initialization failure": check it here. */
		if (access(anchor, R_OK) != 0) {
			sc_errf(err, errlen, "DNS: trust anchor %s: %s", anchor,
				      strerror(errno));
			dns_close(d);
			return SC_ERR_CONFIG;
		}
		r = ub_ctx_add_ta_file(d->ub, anchor);
		if (r) {
			sc_errf(err, errlen, "DNS: trust anchor %s: %s", anchor,
				      r == UB_READFILE ? strerror(errno) : ub_strerror(r));
			dns_close(d);
			return SC_ERR_CONFIG;
		}
		d->anchored = 1;
	}
	*out = d;
	return SC_OK;
}

void dns_close(struct dns_ctx *d)
{
	if (!d)
		return;
	if (d->ub)
		ub_ctx_delete(d->ub);
	free(d);
}

struct dns_wait {
	int done;
	int err;
	struct ub_result *result;
};

static void dns_done(void *arg, int err, struct ub_result *result)
{
	struct dns_wait *w = arg;

	w->done = 1;
	w->err = err;
	w->result = result;
}

/* One query, waiting at most the context's timeout. */
static sc_status dns_query(struct dns_ctx *d, const char *name, int type,
			   struct ub_result **out, char *err, size_t errlen)
{
	struct dns_wait w = { 0 };
	long long deadline = now_ms() + d->timeout_ms;
	int id, r;

	*out = NULL;
	r = ub_resolve_async(d->ub, name, type, DNS_CLASS_IN, &w, dns_done, &id);
	if (r == UB_INITFAIL) {
		/* The context is set up at the first query: a trust anchor file that
		 * does not parse fails here (libunbound logs the line to stderr). */
		sc_errf(err, errlen, "DNS: resolver set-up failed (trust anchor or "
			      "resolver settings): %s", ub_strerror(r));
		return SC_ERR_CONFIG;
	}
	if (r) {
		sc_errf(err, errlen, "DNS: %s: %s", name, ub_strerror(r));
		return SC_ERR_NETWORK;
	}
	while (!w.done) {
		struct pollfd p = { .fd = ub_fd(d->ub), .events = POLLIN };
		long long left = deadline - now_ms();

		if (left <= 0) {
			(void)ub_cancel(d->ub, id);
			sc_errf(err, errlen, "DNS: %s: no answer within %d ms", name,
				      d->timeout_ms);
			return SC_ERR_TIMEOUT;
		}
		r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR) {
			(void)ub_cancel(d->ub, id);
			sc_errf(err, errlen, "DNS: poll: %s", strerror(errno));
			return SC_ERR_NETWORK;
		}
		if (r > 0 && (r = ub_process(d->ub)) != 0) {
			sc_errf(err, errlen, "DNS: %s: %s", name, ub_strerror(r));
			return SC_ERR_NETWORK;
		}
	}
	if (w.err) {
		sc_errf(err, errlen, "DNS: %s: %s", name, ub_strerror(w.err));
		ub_resolve_free(w.result);
		return SC_ERR_NETWORK;
	}
	*out = w.result;
	return SC_OK;
}

/* The DNSSEC verdict, and SERVFAIL as a temporary failure. */
static sc_status dns_verdict(const struct dns_ctx *d, const struct ub_result *r,
			     const char *name, enum dns_sec *sec, char *err, size_t errlen)
{
	if (r->bogus) {
		*sec = DNS_BOGUS;
		sc_errf(err, errlen, "DNS: %s: DNSSEC validation failed (bogus answer): %s",
			      name, r->why_bogus ? r->why_bogus : "no reason given");
		return SC_ERR_VERIFY;
	}
	*sec = r->secure && d->anchored ? DNS_SECURE : DNS_INSECURE;
	if (r->rcode == DNS_RCODE_SERVFAIL) {
		sc_errf(err, errlen, "DNS: %s: server failure", name);
		return SC_ERR_TEMP;
	}
	return SC_OK;
}

const char *dns_sec_name(enum dns_sec s)
{
	return s == DNS_SECURE ? "secure" : s == DNS_BOGUS ? "bogus" : "insecure";
}

/*
 * An uncompressed wire-format name (RFC 1035 3.1; rdata in libunbound results
 * is uncompressed) at @p p, at most @p len octets, as lower-case text without
 * the trailing dot ("" for the root). @return octets used, or 0 if malformed.
 */
static size_t wire_name(const unsigned char *p, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;

	while (i < len) {
		size_t l = p[i++];

		if (l == 0) {
			out[o] = '\0';
			return i;
		}
		if (l > 63 || i + l > len || o + l + 2 > size)
			return 0;
		if (o)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			unsigned char c = p[i + k];

			/* Host names only (RFC 5321 2.3.5); '.' inside a label is not. */
			if (c <= 0x20 || c >= 0x7f || c == '.')
				return 0;
			out[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		i += l;
	}
	return 0;
}

struct mx_entry {
	unsigned pref, order;
	char name[SC_DOMAIN_MAX + 1];
};

static int mx_cmp(const void *a, const void *b)
{
	const struct mx_entry *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

sc_status dns_mx(struct dns_ctx *d, const char *domain, char hosts[][SC_DOMAIN_MAX + 1],
		 size_t max, size_t *n, enum dns_sec *sec, char *err, size_t errlen)
{
	struct mx_entry mx[SC_MX_MAX];
	struct ub_result *r;
	size_t count = 0;
	sc_status st;

	SC_ENSURE_ARG(d && domain && hosts && n && sec);
	*n = 0;
	*sec = DNS_INSECURE;
	SC_TRY(dns_query(d, domain, DNS_TYPE_MX, &r, err, errlen));
	st = dns_verdict(d, r, domain, sec, err, errlen);
	if (st != SC_OK)
		goto out;
	if (r->nxdomain) {
		sc_errf(err, errlen, "DNS: %s: no such domain", domain);
		st = SC_ERR_NOT_FOUND;
		goto out;
	}
	for (int i = 0; r->havedata && r->data[i] && count < SC_MX_MAX; i++) {
		const unsigned char *p = (const unsigned char *)r->data[i];
		size_t len = (size_t)r->len[i];

		if (len < 3 || wire_name(p + 2, len - 2, mx[count].name, sizeof mx[count].name) !=
				       len - 2)
			continue; /* malformed record: skip, others may do */
		mx[count].pref = (unsigned)p[0] << 8 | p[1];
		/* RFC 5321 5.1: equal preferences in random order (spreads load; a
		 * predictable order would not hurt security, only balance). */
		if (getrandom(&mx[count].order, sizeof mx[count].order, GRND_NONBLOCK) !=
		    (ssize_t)sizeof mx[count].order)
			mx[count].order = (unsigned)(now_ms() * 2654435761u + count);
		count++;
	}
	/* RFC 7505 3: a single MX with the root as exchange: no mail here. */
	for (size_t i = 0; i < count; i++) {
		if (!mx[i].name[0]) {
			sc_errf(err, errlen, "DNS: %s publishes a null MX (RFC 7505): it "
				      "accepts no mail", domain);
			st = SC_ERR_NOT_FOUND;
			goto out;
		}
	}
	if (count == 0) {
		/* RFC 5321 5.1: no MX records: the domain is its own mail exchanger. */
		snprintf(hosts[0], SC_DOMAIN_MAX + 1, "%s", domain);
		*n = max ? 1 : 0;
		goto out;
	}
	qsort(mx, count, sizeof mx[0], mx_cmp);
	for (size_t i = 0; i < count && *n < max; i++)
		memcpy(hosts[(*n)++], mx[i].name, sizeof mx[i].name);
out:
	ub_resolve_free(r);
	return st;
}

/* Append the addresses of one A or AAAA answer. */
static sc_status dns_addr_type(struct dns_ctx *d, const char *host, int type,
			       char addrs[][DNS_ADDR_MAX], size_t max, size_t *n,
			       enum dns_sec *sec, char *err, size_t errlen)
{
	struct ub_result *r;
	sc_status st;

	SC_TRY(dns_query(d, host, type, &r, err, errlen));
	st = dns_verdict(d, r, host, sec, err, errlen);
	for (int i = 0; st == SC_OK && r->havedata && r->data[i] && *n < max; i++) {
		int want = type == DNS_TYPE_A ? 4 : 16;

		if (r->len[i] != want ||
		    !inet_ntop(type == DNS_TYPE_A ? AF_INET : AF_INET6, r->data[i], addrs[*n],
			       DNS_ADDR_MAX))
			continue;
		(*n)++;
	}
	ub_resolve_free(r);
	return st;
}

sc_status dns_addrs(struct dns_ctx *d, const char *host, char addrs[][DNS_ADDR_MAX],
		    size_t max, size_t *n, enum dns_sec *sec, char *err, size_t errlen)
{
	enum dns_sec s4 = DNS_INSECURE, s6 = DNS_INSECURE;
	sc_status st;

	SC_ENSURE_ARG(d && host && addrs && n && sec);
	*n = 0;
	*sec = DNS_INSECURE;
	st = dns_addr_type(d, host, DNS_TYPE_A, addrs, max, n, &s4, err, errlen);
	if (st == SC_ERR_VERIFY) {
		*sec = DNS_BOGUS;
		return st;
	}
	if (st == SC_OK || st == SC_ERR_TEMP) {
		sc_status st6 = dns_addr_type(d, host, DNS_TYPE_AAAA, addrs, max, n, &s6, err,
					      errlen);

		if (st6 == SC_ERR_VERIFY) {
			*sec = DNS_BOGUS;
			return st6;
		}
		if (st != SC_OK)
			st = st6;
	}
	/* RFC 7672 2.2.2: TLSA records count only when the address records that
	 * lead to the server are secure too. */
	*sec = s4 == DNS_SECURE && s6 == DNS_SECURE ? DNS_SECURE : DNS_INSECURE;
	if (st == SC_OK && *n == 0) {
		sc_errf(err, errlen, "DNS: %s has no address records", host);
		return SC_ERR_NOT_FOUND;
	}
	return *n ? SC_OK : st;
}

void dns_tlsa_free(struct dns_tlsa *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free((void *)t->rr[i].data);
	t->n = 0;
}

sc_status dns_tlsa(struct dns_ctx *d, const char *port, const char *host, struct dns_tlsa *t,
		   enum dns_sec *sec, char *err, size_t errlen)
{
	char name[SC_DOMAIN_MAX + 16];
	struct ub_result *r;
	sc_status st;

	SC_ENSURE_ARG(d && port && host && t && sec);
	memset(t, 0, sizeof *t);
	*sec = DNS_INSECURE;
	/* RFC 6698 3: _port._tcp.host. */
	if (snprintf(name, sizeof name, "_%s._tcp.%s", port, host) >= (int)sizeof name)
		return SC_ERR_TOO_LONG;
	snprintf(t->name, sizeof t->name, "%s", name);
	SC_TRY(dns_query(d, name, DNS_TYPE_TLSA, &r, err, errlen));
	st = dns_verdict(d, r, name, sec, err, errlen);
	for (int i = 0; st == SC_OK && r->havedata && r->data[i] && t->n < DNS_TLSA_MAX; i++) {
		const unsigned char *p = (const unsigned char *)r->data[i];
		size_t len = (size_t)r->len[i];
		uint8_t *copy;

		/* usage, selector, matching type, then at least one octet of data */
		if (len < 4 || len > 3 + DNS_TLSA_DATA_MAX)
			continue;
		copy = malloc(len - 3);
		if (!copy) {
			st = SC_ERR_NOMEM;
			break;
		}
		memcpy(copy, p + 3, len - 3);
		t->rr[t->n].usage = p[0];
		t->rr[t->n].selector = p[1];
		t->rr[t->n].mtype = p[2];
		t->rr[t->n].data = copy;
		t->rr[t->n].len = len - 3;
		t->n++;
	}
	ub_resolve_free(r);
	if (st != SC_OK)
		dns_tlsa_free(t);
	return st;
}
