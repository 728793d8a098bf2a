/*
 * notify.h - postmaster notices of CERC submissions, never silently lost.
 *
 * The proposal says the server MUST notify the postmaster of each submission.
 * A notice (an RFC 5322 message made by sc_notice_format) is first written
 * durably to STATE/notices/<submission-id> by the submission's worker job,
 * then delivered through the `delivery` key (delivery_send_buffer(): a
 * Maildir, the LMTP server, or the backend MTA of a proxy: deployment) to the
 * `postmaster` address, and removed once delivered. Whatever could not be
 * delivered stays in STATE/notices/ and is retried by a libevent timer every
 * NOTIFY_RETRY_SECONDS and once at start-up (leftovers of a crash); failures
 * are logged each time. Without `delivery` the notices stay in STATE/notices/
 * for the administrator (logged at warning).
 *
 * Threads: notify_save(), notify_deliver() and notify_flush() do blocking disk
 * work and run on worker threads (daemon/worker.h); a process-wide mutex
 * serialises deliveries so that a notice is never delivered twice by a
 * submission job and the retry timer racing. notify_start()/notify_stop() run
 * on the event loop thread. Daemon process only.
 */
#ifndef SMTPCERTD_NOTIFY_H
#define SMTPCERTD_NOTIFY_H

#include <stddef.h>
#include <event2/event.h>
#include <smtpcert/smtpcert.h>

/* Retry period of undelivered notices. */
#define NOTIFY_RETRY_SECONDS 60
/* Largest notice file read back for delivery. */
#define NOTIFY_MAX (64 * 1024)

/** Where notices go; plain copies, so a worker job may own one. */
struct notify_target {
	char state_dir[1024];
	char delivery[1024];   /**< "" when `delivery` is not set */
	struct sc_addr postmaster;
	char hostname[256];    /**< LHLO/EHLO name for lmtp:/proxy: ("" = the
				*  system's host name) */
	int timeout_ms;        /**< per network step (0 = the delivery default) */
};

/**
 * Durably store @p msg as STATE/notices/@p id (temporary file, fsync, rename,
 * fsync of the directory, which is created 0700 when missing).
 * @return SC_OK (on disk), SC_ERR_IO (message in @p err), SC_ERR_ARG.
 */
SC_MUST_CHECK sc_status notify_save(const char *state_dir, const char *id, const char *msg,
				    size_t len, char *err, size_t errlen);

/**
 * Deliver @p msg to t->postmaster now, through the configured delivery (null
 * reverse-path), without spooling it: the fallback when notify_save() failed.
 * @return SC_OK; SC_ERR_CONFIG (no `delivery`); SC_ERR_IO / SC_ERR_TEMP (a
 *         permanent refusal is reported as SC_ERR_IO too); message in @p err.
 */
SC_MUST_CHECK sc_status notify_send(const struct notify_target *t, const char *msg, size_t len,
				    char *err, size_t errlen);

/**
 * Deliver the stored notice @p id and remove it.
 * @return SC_OK (delivered and removed), SC_ERR_NOT_FOUND (already delivered),
 *         SC_ERR_CONFIG (no or unsupported `delivery`: the notice stays),
 *         SC_ERR_IO (stays; message in @p err).
 */
SC_MUST_CHECK sc_status notify_deliver(const struct notify_target *t, const char *id, char *err,
				       size_t errlen);

/**
 * Try every stored notice, oldest name order. *@p delivered and *@p left get
 * the counts; @p err the first failure.
 * @return SC_OK when nothing is left, otherwise the first failure's status.
 */
SC_MUST_CHECK sc_status notify_flush(const struct notify_target *t, unsigned *delivered,
				     unsigned *left, char *err, size_t errlen);

/** Fill @p t from the running configuration (runtime_current()). */
void notify_target_current(struct notify_target *t);

struct runtime;
/** Fill @p t from @p rt (any thread holding a reference to @p rt). */
void notify_target_fill(struct notify_target *t, const struct runtime *rt);

/**
 * Start the retry timer on @p base and run one pass at once (start-up
 * leftovers). The passes run on worker_default() (inline without one).
 */
SC_MUST_CHECK sc_status notify_start(struct event_base *base);
void notify_stop(void);

#endif
