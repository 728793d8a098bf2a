/*
 * harvest.c - delays and limits on CERT/CERS for clients that ask for many
 * unknown addresses (see harvest.h). Owns the session's pending delayed answer
 * (struct harvest, allocated only while one waits). Daemon process, event loop.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>

#include "anvil.h"
#include "commands.h"
#include "harvest.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "worker.h"

struct harvest {
	struct event *ev;
	harvest_lookup_fn fn;
	const struct command *cmd;
	int chain;
	long delay;
	size_t arglen;
	char arg[SESSION_LINE_MAX];
};

/* No harvest limit applies to loopback clients when limits_exempt_loopback is
 * set (the default): a local proxy or filter speaks for many clients, and a
 * local user can read the repository anyway. */
static int harvest_exempt(const struct session *s)
{
	return s->rt->limits_exempt_loopback && s->peer_loopback;
}

static void harvest_close(struct session *s, const char *why)
{
	/* RFC 5321 3.8 / 4.2.5: 421 closes the transmission channel */
	reply(s, "421 4.7.0 %s Too many unknown addresses, try later", s->rt->hostname);
	log_msg(LOG_NOTICE, "client=%s session=%s harvest limit: %s (not-found=%u)", s->peer,
		s->id, why, s->cert_misses);
	s->close_reason = "harvest-limit";
	session_enter(s, SESSION_CLOSING);
}

void harvest_answered(struct session *s, int not_found)
{
	if (!not_found || harvest_exempt(s))
		return;
	s->cert_misses++;
	(void)anvil_harvest_miss(s->peer, time(NULL));
	if (s->rt->harvest_limit > 0 && s->cert_misses >= (unsigned long)s->rt->harvest_limit &&
	    s->state != SESSION_CLOSING)
		harvest_close(s, "session");
}

long harvest_delay(const struct session *s)
{
	return s->harvest ? s->harvest->delay : -1;
}

/* Run the lookup; count a not-found answer now, or let the job count it.
 * @return the lookup's harvest_result. */
static int harvest_answer(struct session *s, struct request *rq, int chain,
			  harvest_lookup_fn fn)
{
	int r = fn(s, rq, chain);

	if (r != HARVEST_LATER)
		harvest_answered(s, r == HARVEST_NOT_FOUND);
	return r;
}

void harvest_free(struct session *s)
{
	if (!s->harvest)
		return;
	if (s->harvest->ev)
		event_free(s->harvest->ev);
	free(s->harvest);
	s->harvest = NULL;
}

static void harvest_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct harvest *h = s->harvest;
	struct request rq;

	(void)fd;
	(void)what;
	if (s->state != SESSION_CERT_WAIT) {
		/* a timeout or shutdown closed the session meanwhile (421 queued) */
		harvest_free(s);
		return;
	}
	memset(&rq, 0, sizeof rq);
	rq.cmd = h->cmd;
	rq.arg = h->arg;
	rq.arglen = h->arglen;
	session_enter(s, SESSION_READY);
	reply_note(s, 0, "-");
	if (harvest_answer(s, &rq, h->chain, h->fn) == HARVEST_LATER) {
		/* the job logs the request (with this delay) and wakes the session */
		harvest_free(s);
		return;
	}
	/* the command's log line, as command_dispatch() writes it for the others */
	log_request(&(struct log_request){ .peer = s->peer, .session = s->id, .cmd = rq.cmd->verb,
					   .addr = rq.logaddr, .result = s->last_code,
					   .status = s->last_status, .delayed = h->delay });
	/* RFC 5321 4.2.1: a 5yz answer counts as a failed command, as elsewhere */
	if (s->last_code >= 500 && s->state != SESSION_CLOSING)
		session_count_error(s);
	harvest_free(s);
	if (s->wake)
		s->wake(s);
}

/* Queue the answer behind a timer. @return 0 when no timer could be set. */
static int harvest_defer(struct session *s, struct request *rq, int chain, harvest_lookup_fn fn,
			 long delay)
{
	struct worker *w = worker_default();
	/* + 20 ms: libevent may read a coarse clock (CLOCK_MONOTONIC_COARSE, one
	 * jiffy), and the delay is promised as a minimum */
	struct timeval tv = { delay, 20000 };
	struct harvest *h;

	if (!w || rq->arglen > sizeof h->arg || !(h = calloc(1, sizeof *h)))
		return 0;
	h->ev = evtimer_new(worker_base(w), harvest_timer_cb, s);
	/* from now, not from the loop's cached time (the start of this round):
	 * the delay is a lower bound the client can measure */
	(void)event_base_update_cache_time(worker_base(w));
	if (!h->ev || evtimer_add(h->ev, &tv) != 0) {
		if (h->ev)
			event_free(h->ev);
		free(h);
		return 0;
	}
	h->fn = fn;
	h->cmd = rq->cmd;
	h->chain = chain;
	h->delay = delay;
	h->arglen = rq->arglen;
	if (rq->arglen)
		memcpy(h->arg, rq->arg, rq->arglen);
	s->harvest = h;
	session_enter(s, SESSION_CERT_WAIT);
	return 1;
}

void harvest_cert(struct session *s, struct request *rq, int chain, harvest_lookup_fn fn)
{
	long delay;

	if (harvest_exempt(s)) {
		harvest_answer(s, rq, chain, fn);
		return;
	}
	if (s->rt->harvest_ip_limit > 0 &&
	    anvil_harvest_blocked(s->peer, s->rt->harvest_ip_limit, time(NULL))) {
		harvest_close(s, "network budget spent");
		return;
	}
	delay = anvil_harvest_delay(s->cert_misses, s->rt->harvest_threshold);
	if (delay > 0 && !s->harvest) {
		log_msg(LOG_INFO, "client=%s session=%s harvest delay %lds (not-found=%u)",
			s->peer, s->id, delay, s->cert_misses);
		if (harvest_defer(s, rq, chain, fn, delay))
			return;
		/* no timer (tests without a loop, no memory): answer now */
	}
	harvest_answer(s, rq, chain, fn);
}
