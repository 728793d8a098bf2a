/*
 * deliver_job.h - the delivery of one complete message: on the event loop,
 * the per-recipient certificates for encryption at rest are looked up through
 * the repositories CERT uses (revoked, expired and not yet valid ones never
 * used); a worker thread (worker.h) then runs delivery_run() (delivery.h) on
 * copies the job owns; back on the loop the session gets one reply.
 *
 * Reply (SMTP has one per message, and smtpcertd has no queue to send a
 * bounce from; docs/protocol.md "Mail reception"):
 *   every recipient delivered            -> 250 2.0.0 <id> delivered
 *   some not delivered, one of them 4xx  -> 451 (the client retries the whole
 *                                           message; delivered recipients may
 *                                           get it twice: never lost)
 *   some not delivered, all of them 5xx  -> 554 5.x.x (one recipient: its own
 *                                           reply), so the sender's bounce covers
 *                                           them; 250 is never sent unless every
 *                                           recipient has the message
 * While the job runs the session is in SESSION_DELIVER and reads nothing.
 */
#ifndef SMTPCERTD_DELIVER_JOB_H
#define SMTPCERTD_DELIVER_JOB_H

#include <smtpcert/smtpcert.h>

#include "delivery.h"

struct session;
struct deliver_job;

/**
 * The message in s->tx is complete and acceptable: hand the spool (the job
 * takes the descriptor) and the envelope to a job, enter SESSION_DELIVER.
 * The reply comes when the job is done (or at once when it cannot start).
 */
void deliver_job_start(struct session *s);

/** The session is going away: the job completes without it. */
void deliver_job_detach(struct deliver_job *j);

/** What the worker runs: delivery_run(), replaceable by unit tests. */
typedef sc_status (*deliver_job_fn)(const struct delivery_cfg *cfg, struct delivery_msg *m);
void deliver_job_set_runner(deliver_job_fn fn);

#endif
