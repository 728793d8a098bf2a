/*
 * mx.c - MX lookup for the CLI (smtpcert fetch without --server): res_nquery()
 * with a private resolver state, answers parsed with ns_parserr(). Implements the
 * RFC 5321 5.1 rules: preference order, random among equal preferences, implicit
 * MX when there is none, and RFC 7505 null MX. Runs in the CLI's process; it
 * blocks, which the CLI may do and the daemon never calls it.
 */
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"
#include "mx_int.h"

/* UDP answers are at most 512 octets without EDNS0; allow for TCP retries. */
#define MX_ANSWER_MAX 65535

struct mx_rr {
	unsigned pref;
	unsigned order;
	char name[SC_DOMAIN_MAX + 1];
};

static int mx_cmp(const void *a, const void *b)
{
	const struct mx_rr *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void normalise(char *name)
{
	size_t len = strlen(name);

	if (len && name[len - 1] == '.')
		name[--len] = '\0';
	for (char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

sc_status mx_parse_answer(const unsigned char *answer, size_t len,
			  char hosts[][SC_DOMAIN_MAX + 1], size_t max, size_t *n, int shuffle,
			  char *err, size_t errlen)
{
	struct mx_rr rrs[SC_MX_MAX * 2];
	size_t count = 0;
	ns_msg msg;
	int nan;

	*n = 0;
	if (len > MX_ANSWER_MAX || ns_initparse(answer, (int)len, &msg) != 0) {
		snprintf(err, errlen, "malformed DNS answer");
		return SC_ERR_SYNTAX;
	}
	nan = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < nan; i++) {
		ns_rr rr;
		const unsigned char *rd;

		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
			snprintf(err, errlen, "malformed DNS answer record");
			return SC_ERR_SYNTAX;
		}
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in)
			continue; /* CNAMEs on the way, signatures */
		rd = ns_rr_rdata(rr);
		if (ns_rr_rdlen(rr) < 3 || count == sizeof rrs / sizeof rrs[0])
			continue;
		rrs[count].pref = ns_get16(rd);
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 2, rrs[count].name,
			      sizeof rrs[count].name) < 0) {
			snprintf(err, errlen, "malformed MX record");
			return SC_ERR_SYNTAX;
		}
		normalise(rrs[count].name);
		/* RFC 7505 3: exchange "." means the domain accepts no mail at all. */
		if (!rrs[count].name[0] || !strcmp(rrs[count].name, ".")) {
			snprintf(err, errlen, "domain accepts no mail (null MX, RFC 7505)");
			return SC_ERR_NOT_FOUND;
		}
		rrs[count].order = (unsigned)count;
		count++;
	}
	/* RFC 5321 5.1: equal preferences SHOULD be tried in random order. */
	if (shuffle && count > 1) {
		unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

		for (size_t i = 0; i < count; i++)
			rrs[i].order = (unsigned)rand_r(&seed);
	}
	qsort(rrs, count, sizeof rrs[0], mx_cmp);
	for (size_t i = 0; i < count && *n < max; i++) {
		int dup = 0;

		for (size_t j = 0; j < *n; j++)
			dup |= !strcmp(hosts[j], rrs[i].name);
		if (!dup)
			memcpy(hosts[(*n)++], rrs[i].name, sizeof rrs[i].name);
	}
	return SC_OK;
}

sc_status sc_mx_lookup(const char *domain, char hosts[][SC_DOMAIN_MAX + 1], size_t max,
		       size_t *n, char *err, size_t errlen)
{
	struct __res_state rs;
	unsigned char *answer;
	char dom[SC_DOMAIN_MAX + 1], dummy[1];
	int len;
	sc_status st;

	SC_ENSURE_ARG(domain);
	SC_ENSURE_ARG(hosts);
	SC_ENSURE_ARG(n);
	SC_ENSURE(max > 0, SC_ERR_ARG);
	*n = 0;
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	if (strlen(domain) > SC_DOMAIN_MAX ||
	    sc_domain_check(domain, strlen(domain), SC_ADDR_UTF8) != SC_OK) {
		snprintf(err, errlen, "%s: not a valid domain name", domain);
		return SC_ERR_ARG;
	}
	memcpy(dom, domain, strlen(domain) + 1);
	normalise(dom);
	memset(&rs, 0, sizeof rs);
	if (res_ninit(&rs) != 0) {
		snprintf(err, errlen, "cannot initialise the DNS resolver");
		return SC_ERR_NETWORK;
	}
	answer = malloc(MX_ANSWER_MAX);
	if (!answer) {
		res_nclose(&rs);
		return SC_ERR_NOMEM;
	}
	len = res_nquery(&rs, dom, ns_c_in, ns_t_mx, answer, MX_ANSWER_MAX);
	if (len < 0) {
		switch (rs.res_h_errno) {
		case HOST_NOT_FOUND:
			snprintf(err, errlen, "%s: domain does not exist", dom);
			st = SC_ERR_NOT_FOUND;
			break;
		case NO_DATA:
			st = SC_OK; /* no MX records: the implicit MX below */
			break;
		case TRY_AGAIN:
			snprintf(err, errlen, "%s: DNS lookup failed temporarily", dom);
			st = SC_ERR_TEMP;
			break;
		default:
			snprintf(err, errlen, "%s: DNS lookup failed", dom);
			st = SC_ERR_TEMP;
			break;
		}
	} else {
		st = mx_parse_answer(answer, (size_t)len, hosts, max, n, 1, err, errlen);
		if (st == SC_ERR_SYNTAX)
			st = SC_ERR_TEMP;
	}
	free(answer);
	res_nclose(&rs);
	if (st == SC_OK && *n == 0) {
		/* RFC 5321 5.1: no MX records, so the domain itself is the host. */
		memcpy(hosts[0], dom, strlen(dom) + 1);
		*n = 1;
	}
	return st;
}
