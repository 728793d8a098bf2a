/*
 * cert_job.h - where a CERT/CERS lookup runs.
 *
 * The ordered walk of `repository` (cert_walk(): the first store that has the
 * address answers; an unavailable store makes the answer 451 4.3.0 unless a
 * later store answers) is one function, written to a sink: cmd_cert.c's sink
 * encodes straight into the session's output buffer (the zero-copy fast path of
 * a local-only runtime, on the event loop), the job's sink into memory the job
 * owns.
 *
 * When the current runtime holds a remote store (sc_repo_is_remote(): ldap://,
 * pgsql:), the whole walk runs as a worker job (worker.h) so that a slow or
 * hung server never stalls the event loop: the job holds a runtime reference
 * and copies of the address and key, builds the "250-" lines of the reply
 * (bounded by the output room the session had at submission), and its
 * answered() function runs on the loop thread with the outcome. Meanwhile the
 * session sits in SESSION_LOOKUP and reads no input, so pipelined commands are
 * answered in order after it.
 *
 * At most worker_threads - 1 lookups are handed to the pool at once, the
 * others wait in a FIFO on the loop thread: a directory that hangs holds at
 * most that many threads, and the rest of the pool keeps serving AUTH, CERC
 * and deliveries.
 *
 * Cancellation (worker.h pattern): session_fini() calls cert_job_cancel(). A
 * job still waiting for a slot is taken out of the line and freed at once;
 * one handed to the pool never touches the session again, its walk is skipped
 * if not started yet, and the done function frees it.
 */
#ifndef SMTPCERTD_CERT_JOB_H
#define SMTPCERTD_CERT_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <smtpcert/smtpcert.h>

#include "runtime.h"
#include "worker.h"

struct session;

/* At most this many lookups wait for a slot (slots: the pool's threads - 1). */
#define CERT_JOB_WAITING_MAX WORKER_QUEUE_MAX

enum cert_outcome {
	CERT_FOUND,       /**< the "250-" lines went to the sink: 250 2.0.0 */
	CERT_NOT_FOUND,   /**< unknown, expired or revoked: 550 5.1.1 */
	CERT_UNAVAILABLE, /**< no store has it and one failed: 451 4.3.0 */
	CERT_TOO_BIG,     /**< the reply would not fit: 554 5.3.4 */
	CERT_SINK_FAILED  /**< the sink could not take a line (no memory): close */
};

/** Where the walk writes the "250-" lines of a found entry. */
struct cert_sink {
	/** bytes the reply may still take */
	size_t (*room)(void *arg);
	/** one "250-@p text" line (URL mode) */
	sc_status (*line)(void *arg, const char *text);
	/** a certificate as "250-" PEM lines (reply_pem()) */
	sc_status (*pem)(void *arg, const uint8_t *der, size_t der_len);
	void *arg;
};

/** One walk: the inputs, then what it found. */
struct cert_walk {
	struct runtime *rt;           /**< borrowed: the caller holds it */
	const struct sc_addr *addr;
	const char *key;              /**< sc_addr_key() of addr: looked up, logged, put in URLs */
	int chain;                    /**< CERS: leaf and chain; CERT: leaf only */
	time_t now;
	enum cert_outcome outcome;
	/** SC_OK, or why store i failed (logged by the caller, in order) */
	sc_status store_rc[RUNTIME_REPOS_MAX];
};

/** Walk w->rt's stores in order for w->addr; sets outcome and store_rc.
 *  Runs on the loop (local runtimes) or on a worker thread (cert_job). */
void cert_walk(struct cert_walk *w, const struct cert_sink *sink);

/**
 * The CERT and CERS lines waiting in @p p (@p len octets of input, complete
 * lines only): let the local stores start loading what their lookups will read
 * (sc_repo_prefetch()), so that the memory misses of pipelined commands overlap
 * instead of following one another. A hint: no answer depends on it.
 */
void cert_prefetch(const struct runtime *rt, const char *p, size_t len);

/** The arguments of the CERT and CERS lines in @p p (@p len octets; a last
 *  line without its LF is not looked at), at most @p max of them, into @p args /
 *  @p lens, split as command_split() splits them (views into @p p).
 *  @return how many were found. */
size_t cert_prefetch_scan(const char *p, size_t len, const char **args, size_t *lens,
			  size_t max);

/** sc_repo_prefetch() of @p n CERT arguments in every local store of @p rt;
 *  nothing when its lookups run as jobs (cert_job_wanted()). */
void cert_prefetch_args(const struct runtime *rt, const char *const *args,
			const size_t *lens, size_t n);

/** @return non-zero when a lookup in @p rt must run as a job (a remote store,
 *  or cert_job_force_async() in tests). */
int cert_job_wanted(const struct runtime *rt);

struct cert_job;
/** Loop thread, session alive and still in SESSION_LOOKUP: send the answer. */
typedef void (*cert_job_answered_fn)(struct session *s, struct cert_job *j);

/* The job, shared by the session (loop thread) and one worker thread. */
struct cert_job {
	struct session *s;            /**< loop thread only; NULL once cancelled */
	int cancelled;                /**< atomic: set by the loop, read by the worker */
	struct runtime *rt;           /**< referenced until done */
	struct sc_addr addr;
	char key[SC_ADDR_KEY_MAX];
	const char *verb;             /**< "CERT" / "CERS" (static strings) */
	long delayed;                 /**< harvest delay before it, seconds; -1: none */
	struct timespec t0;           /**< submission (CLOCK_MONOTONIC) */
	size_t room;                  /**< bound of body (the session's reply room) */
	sc_buf *body;                 /**< the "250-" lines; NULL unless found */
	int body_failed;              /**< body could not be allocated */
	struct cert_walk walk;
	cert_job_answered_fn answered;
	struct cert_job *next;        /**< waiting for a slot (cert_job.c) */
};

/**
 * Submit the walk for @p addr / @p key in @p rt to the daemon's worker pool;
 * on SC_OK the session is attached (s->lookup) and the caller enters
 * SESSION_LOOKUP. @p room bounds the reply's "250-" lines.
 * @return SC_OK; SC_ERR_TEMP (no pool, or its queue or the waiting list is
 *         full); SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status cert_job_start(struct session *s, struct runtime *rt,
				       const struct sc_addr *addr, const char *key, int chain,
				       const char *verb, long delayed, size_t room,
				       cert_job_answered_fn answered);

/** Session end: detach the job in flight (if any); its done frees it. */
void cert_job_cancel(struct session *s);

/** Tests only: run every lookup as a job, local stores included. */
void cert_job_force_async(int on);

#endif
