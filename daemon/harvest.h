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
 * At harvest_limit not-found answers in a session, or harvest_ip_limit per
 * network within the hour, the session ends with 421 4.7.0.
 */
#ifndef SMTPCERTD_HARVEST_H
#define SMTPCERTD_HARVEST_H

struct session;
struct request;

/** Runs the lookup and queues the reply. @return 1 when the answer was
 *  "550 5.1.1 Certificate Not Found". */
typedef int (*harvest_lookup_fn)(struct session *s, struct request *rq, int chain);

/**
 * Answer a CERT (@p chain 0) or CERS (@p chain 1) through @p fn, now, after a
 * delay (SESSION_CERT_WAIT; s->wake resumes the connection), or not at all
 * (421 4.7.0: the network's hourly budget is spent).
 */
void harvest_cert(struct session *s, struct request *rq, int chain, harvest_lookup_fn fn);

/** Release a pending delayed answer (session end). */
void harvest_free(struct session *s);

#endif
