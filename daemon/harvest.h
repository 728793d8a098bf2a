/*
 * harvest.h - address-harvest protection for CERT and CERS (docs/design.md
 * "Abuse resistance", docs/protocol.md "Security Considerations").
 *
 * Not-found answers (550 5.1.1) are counted per session and per client network
 * (anvil.c). Past harvest_threshold in a session EVERY further CERT/CERS answer,
 * found or not, waits 1, 2, 4, ... ANVIL_DELAY_MAX seconds: the delay is chosen
 * before the lookup, so its length reveals nothing about the address asked
 * (delaying only not-found answers would let a client tell them apart by
 * timing, before the reply even arrives). The wait is a timer on the event
 * loop: the session sits in SESSION_CERT_WAIT and reads no input, as AUTH_WAIT.
 * A lookup in a remote store then runs as a worker job (SESSION_LOOKUP) and is
 * counted when its answer is known (harvest_answered()).
 * At harvest_limit not-found answers in a session, or harvest_ip_limit per
 * network within the hour, the session ends with 421 4.7.0.
 */
#ifndef SMTPCERTD_HARVEST_H
#define SMTPCERTD_HARVEST_H

struct session;
struct request;

/** What a lookup function returns. */
enum harvest_result {
	HARVEST_ANSWERED = 0,  /**< replied, and not with 550 5.1.1 */
	HARVEST_NOT_FOUND = 1, /**< replied "550 5.1.1 Certificate Not Found" */
	HARVEST_LATER = 2      /**< a worker job answers (SESSION_LOOKUP, cert_job.h):
				*  it calls harvest_answered(), logs the request
				*  and wakes the session itself */
};

/** Runs the lookup and queues the reply, or starts it. @return a harvest_result. */
typedef int (*harvest_lookup_fn)(struct session *s, struct request *rq, int chain);

/**
 * Answer a CERT (@p chain 0) or CERS (@p chain 1) through @p fn, now, after a
 * delay (SESSION_CERT_WAIT; s->wake resumes the connection), or not at all
 * (421 4.7.0: the network's hourly budget is spent).
 */
void harvest_cert(struct session *s, struct request *rq, int chain, harvest_lookup_fn fn);

/**
 * The answer of a lookup that returned HARVEST_LATER is queued: count it
 * (@p not_found non-zero for 550 5.1.1); at harvest_limit this queues 421 4.7.0
 * and enters SESSION_CLOSING. The delay, if any, was applied before the lookup.
 */
void harvest_answered(struct session *s, int not_found);

/** Seconds the answer being looked up now was delayed (the lookup runs from
 *  the delay's timer), -1 when it was not: for the request's log line. */
long harvest_delay(const struct session *s);

/** Release a pending delayed answer (session end). */
void harvest_free(struct session *s);

#endif
