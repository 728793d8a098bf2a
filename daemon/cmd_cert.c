/*
 * cmd_cert.c - CERT and CERS (the certificate service proposal; replies
 * per INTERFACE.md and docs/design.md). Daemon process, event loop. When every
 * store of the current runtime is local, the repositories are read on the
 * loop: an LMDB lookup is a read of the memory map (no allocation, no blocking
 * call besides page faults), and the PEM is encoded straight from the entry
 * into the output buffer. With a remote store (LDAP, PostgreSQL) the whole
 * walk runs on a worker thread (cert_job.c) and the answer is sent from its
 * done function. Not-found answers go through harvest.c (delays and limits
 * against address harvesting).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cert_job.h"
#include "commands.h"
#include "harvest.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "worker.h"

/* The session's sink: straight into the output buffer, no copy (the fast path
 * of local stores; reply_pem() reads the DER in place, from the LMDB map). */
static size_t cert_sink_room(void *arg)
{
	return reply_room(arg);
}

static sc_status cert_sink_line(void *arg, const char *text)
{
	return reply(arg, "250-%s", text);
}

static sc_status cert_sink_pem(void *arg, const uint8_t *der, size_t der_len)
{
	return reply_pem(arg, der, der_len);
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

/* Log what the walk met and queue the final reply line.
 * @return 1 when the answer is "550 5.1.1 Certificate Not Found". */
static int cert_finish(struct session *s, const struct cert_walk *w)
{
	for (size_t i = 0; i < w->rt->nrepos; i++)
		if (w->store_rc[i] != SC_OK)
			log_msg(LOG_WARNING, "client=%s session=%s addr=%s repository %s: %s",
				s->peer, s->id, w->key, sc_repo_name(w->rt->repos[i]->repo),
				sc_strerror(w->store_rc[i]));
	switch (w->outcome) {
	case CERT_FOUND:
		reply(s, "250 2.0.0 OK");
		return 0;
	case CERT_TOO_BIG:
		log_msg(LOG_WARNING, "client=%s session=%s addr=%s certificate too large to send",
			s->peer, s->id, w->key);
		reply(s, "554 5.3.4 Certificate too large to send");
		return 0;
	case CERT_SINK_FAILED:
		s->out_failed = 1; /* no memory for the reply: the session closes */
		return 0;
	case CERT_UNAVAILABLE:
		reply(s, "451 4.3.0 Certificate repository temporarily unavailable");
		return 0;
	case CERT_NOT_FOUND:
		break;
	}
	/* identical for unknown, expired and revoked: answers reveal nothing */
	reply(s, "550 5.1.1 Certificate Not Found");
	return 1;
}

/* Loop thread, the job done (cert_job.h): send what the worker built, count
 * it for harvest.c, write the request's log line (one per request, as
 * command_dispatch() or harvest.c would have) and take input again. */
static void cert_answered(struct session *s, struct cert_job *j)
{
	struct cert_walk *w = &j->walk;
	struct timespec t1;
	long us;

	session_enter(s, SESSION_READY);
	reply_note(s, 0, "-");
	if (w->outcome == CERT_FOUND && j->body && sc_buf_len(j->body) > 0) {
		size_t len = sc_buf_len(j->body);

		/* the room was measured at submission and nothing was queued since
		 * (a 421 would have ended SESSION_LOOKUP): this is a safety net */
		if (len + 16 > reply_room(s))
			w->outcome = s->out_failed ? CERT_SINK_FAILED : CERT_TOO_BIG;
		else if (sc_buf_append(s->out, sc_buf_data(j->body), len) != SC_OK)
			w->outcome = CERT_SINK_FAILED;
	}
	harvest_answered(s, cert_finish(s, w));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long)(t1.tv_sec - j->t0.tv_sec) * 1000000L + (t1.tv_nsec - j->t0.tv_nsec) / 1000L;
	log_request(&(struct log_request){ .peer = s->peer, .session = s->id, .cmd = j->verb,
					   .addr = j->key, .result = s->last_code,
					   .status = s->last_status, .us = us,
					   .delayed = j->delayed });
	/* RFC 5321 4.2.1: a 5yz answer counts as a failed command, as elsewhere */
	if (s->last_code >= 500 && s->state != SESSION_CLOSING)
		session_count_error(s);
	if (s->out_failed && s->state != SESSION_CLOSING) {
		s->close_reason = "output-error";
		session_enter(s, SESSION_CLOSING);
	}
	if (s->wake)
		s->wake(s);
}

/* A remote store: the whole walk on a worker thread (cert_job.h). */
static int cert_lookup_async(struct session *s, struct request *rq, struct runtime *rt,
			     const struct sc_addr *a, int chain)
{
	sc_status rc = cert_job_start(s, rt, a, rq->logaddr, chain, rq->cmd->verb,
				      harvest_delay(s), reply_room(s), cert_answered);

	if (rc != SC_OK) {
		/* the pool's queue is full (a hung directory and a flood): say so
		 * at once rather than wait */
		log_msg(LOG_WARNING, "client=%s session=%s addr=%s lookup not started: %s",
			s->peer, s->id, rq->logaddr, sc_strerror(rc));
		reply(s, "451 4.3.0 Certificate repository temporarily unavailable");
		return HARVEST_ANSWERED;
	}
	session_enter(s, SESSION_LOOKUP);
	return HARVEST_LATER;
}

/* harvest_lookup_fn: answer now (local stores, or no worker pool) or later. */
static int cert_lookup(struct session *s, struct request *rq, int chain)
{
	struct runtime *rt = cert_runtime(s);
	struct cert_sink sink = { cert_sink_room, cert_sink_line, cert_sink_pem, s };
	struct cert_walk w = { .rt = rt, .key = rq->logaddr, .chain = chain };
	struct sc_addr a;

	if (!cert_address(s, rq, &a))
		return HARVEST_ANSWERED;
	if (cert_job_wanted(rt) && worker_default())
		return cert_lookup_async(s, rq, rt, &a, chain);
	w.addr = &a;
	w.now = time(NULL);
	cert_walk(&w, &sink);
	return cert_finish(s, &w) ? HARVEST_NOT_FOUND : HARVEST_ANSWERED;
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
