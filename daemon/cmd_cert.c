/*
 * cmd_cert.c - CERT and CERS (the certificate service proposal; replies
 * per INTERFACE.md and docs/design.md). Daemon process; reads the repositories
 * of the session's runtime on the event loop: an LMDB lookup is a read of the
 * memory map (no allocation, no blocking call besides page faults), and the PEM
 * is encoded straight from the entry into the output buffer. Not-found answers
 * go through harvest.c (delays and limits against address harvesting).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "harvest.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"

struct cert_emit {
	struct session *s;
	int chain;     /* CERS: leaf and chain; CERT: leaf only */
	int too_big;   /* the reply would not fit the output buffer */
	const char *url;
	const struct sc_addr *addr;
	const char *key;
};

static sc_status cert_emit_entry(void *arg, const struct sc_repo_entry *e)
{
	struct cert_emit *ce = arg;
	size_t n = ce->chain ? e->n_der : 1, need = 16;

	if (ce->url) {
		char url[SESSION_LINE_MAX - 8];

		/* lib/certurl.c: the same expansion export-www writes files by */
		if (sc_cert_url_expand(ce->url, ce->key, url, sizeof url) != SC_OK) {
			ce->too_big = 1;
			return SC_ERR_TOO_LONG;
		}
		return reply(ce->s, "250-%s", url);
	}
	if (n > SC_CHAIN_MAX)
		n = SC_CHAIN_MAX;
	for (size_t i = 0; i < n; i++)
		need += reply_pem_size(e->der_len[i]);
	/* all or nothing: a reply is never cut in the middle of a certificate */
	if (need > reply_room(ce->s)) {
		ce->too_big = 1;
		return SC_ERR_TOO_LONG;
	}
	for (size_t i = 0; i < n; i++)
		SC_TRY(reply_pem(ce->s, e->der[i], e->der_len[i]));
	return SC_OK;
}

/* The current domains, repositories and CRLs, even in a session older than a
 * reload: a revocation applies at once (runtime.h). */
static struct runtime *cert_runtime(const struct session *s)
{
	return runtime_current() ? runtime_current() : s->rt;
}

/* Parse the argument and check the domain (also for CERC, cmd_cerc.c).
 * @return 0 when a reply was given. */
int cert_address(struct session *s, struct request *rq, struct sc_addr *a)
{
	const char *why = NULL;
	sc_status rc;

	/* UTF-8 local parts are always accepted (docs/design.md); address literals
	 * are refused (no SC_ADDR_LITERAL). */
	rc = sc_addr_parse(rq->arg, rq->arglen, SC_ADDR_UTF8, a, &why);
	if (rc != SC_OK) {
		log_escape(rq->arg, rq->arglen, rq->logaddr, 96);
		if (rc == SC_ERR_UNSUPPORTED)
			why = "address literals are not served";
		reply(s, "501 5.5.4 Syntax: %s (%s)", rq->cmd->usage, why ? why : sc_strerror(rc));
		return 0;
	}
	if (sc_addr_key(a, rq->logaddr, sizeof rq->logaddr, NULL) != SC_OK) {
		reply(s, "501 5.5.4 Syntax: %s (address too long)", rq->cmd->usage);
		return 0;
	}
	/* Never a certificate for, and never a relay to, a foreign domain. */
	if (sc_config_domain_kind(cert_runtime(s)->cfg, a->domain) == SC_DOMAIN_FOREIGN) {
		reply(s, "550 5.7.1 Domain not served here: certificates are not relayed");
		return 0;
	}
	return 1;
}

/* sc_repo_entries() callback: stop at the first entry, whatever its state. */
static sc_status cert_any_entry(void *arg, const struct sc_repo_entry *e)
{
	(void)e;
	*(int *)arg = 1;
	return SC_ERR_EXISTS;
}

/* Does the store hold the address at all (even only expired or revoked entries)? */
static int cert_store_has(struct runtime_repo *rr, const struct sc_addr *a)
{
	int found = 0;

	if (sc_repo_entries(rr->repo, a, cert_any_entry, &found) != SC_OK && !found)
		return 0;
	return found;
}

/*
 * `repository` is an ordered list: the first store that has the address answers
 * (INTERFACE.md), so an expired or revoked certificate in the first store is
 * never shadowed by an older copy in a later one. A store that is unavailable
 * does not stop the search (a later store may answer), but when no store found
 * the address and one was unavailable the answer is 451, never 550: we cannot
 * know it does not exist.
 */
static int cert_lookup(struct session *s, struct request *rq, int chain)
{
	struct runtime *rt = cert_runtime(s);
	struct cert_emit ce = { .s = s, .chain = chain, .url = rt->cert_url };
	struct sc_addr a;
	time_t now = time(NULL);
	int unavailable = 0;

	if (!cert_address(s, rq, &a))
		return 0;
	ce.addr = &a;
	ce.key = rq->logaddr;
	for (size_t i = 0; i < rt->nrepos; i++) {
		sc_status rc = sc_repo_lookup(rt->repos[i]->repo, &a, now, rt->crls,
					      cert_emit_entry, &ce);

		if (rc == SC_OK) {
			reply(s, "250 2.0.0 OK");
			return 0;
		}
		if (ce.too_big) {
			log_msg(LOG_WARNING, "client=%s session=%s addr=%s certificate too large to send",
				s->peer, s->id, rq->logaddr);
			reply(s, "554 5.3.4 Certificate too large to send");
			return 0;
		}
		switch (rc) {
		case SC_ERR_NOT_FOUND:
		case SC_ERR_EXPIRED:
		case SC_ERR_NOT_YET_VALID:
		case SC_ERR_REVOKED:
			if (cert_store_has(rt->repos[i], &a))
				i = rt->nrepos; /* this store has the address: it answers */
			continue;
		default:
			log_msg(LOG_WARNING, "client=%s session=%s addr=%s repository %s: %s",
				s->peer, s->id, rq->logaddr, sc_repo_spec(rt->repos[i]->repo),
				sc_strerror(rc));
			if (s->out_failed)
				return 0;
			unavailable = 1;
		}
	}
	if (unavailable) {
		reply(s, "451 4.3.0 Certificate repository temporarily unavailable");
		return 0;
	}
	/* identical for unknown, expired and revoked: answers reveal nothing */
	reply(s, "550 5.1.1 Certificate Not Found");
	return 1;
}

void cmd_cert(struct session *s, struct request *rq)
{
	/* harvest.c counts not-found answers and may delay or refuse (harvest.h) */
	harvest_cert(s, rq, 0, cert_lookup);
}

void cmd_cers(struct session *s, struct request *rq)
{
	/* The chain as stored, in order; missing ones are never fetched (proposal:
	 * SHOULD NOT complete the chain). */
	harvest_cert(s, rq, 1, cert_lookup);
}
