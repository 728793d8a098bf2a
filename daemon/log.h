/*
 * log.h - smtpcertd logging: stderr with timestamps in the foreground (batched
 * per event-loop round, see log.c), syslog (LOG_MAIL) otherwise. Runs in the
 * daemon process only.
 *
 * Anything that came from a client goes through log_escape() first so that a
 * log line can never be forged or broken by the peer.
 */
#ifndef SMTPCERTD_LOG_H
#define SMTPCERTD_LOG_H

#include <stddef.h>
#include <syslog.h>
#include <time.h>

enum log_sink {
	LOG_SINK_SYSLOG = 0, /**< openlog() with LOG_MAIL (daemon mode) */
	LOG_SINK_STDERR = 1, /**< stderr with a timestamp (-f / -d) */
	LOG_SINK_NONE = 2    /**< discard (fuzz target) */
};

/**
 * @param sink an enum log_sink value
 * @param debug emit LOG_DEBUG lines too
 */
void log_init(int sink, int debug);

struct event_base;

/**
 * From now on, stderr lines logged on the calling thread (the event loop's) are
 * batched and written when @p base's current round of callbacks ends.
 * @return 0; -1 when no event could be made (lines are then written at once).
 */
int log_attach(struct event_base *base);

/** Write what is batched and stop batching (before the event base goes away). */
void log_detach(void);

/** Write what is batched now (also runs at exit and before fork()). */
void log_flush(void);

/** @return non-zero when debug lines are emitted (skip building them otherwise). */
int log_debug_enabled(void);

/** Log one line at syslog priority @p prio (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG). */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** The fields of a request's log line (log_request()). */
struct log_request {
	const char *peer;    /**< client= */
	const char *session; /**< session= */
	const char *cmd;     /**< cmd= */
	const char *addr;    /**< addr=, left out when NULL or "" */
	int result;          /**< result= (the reply code) */
	const char *status;  /**< status= (RFC 3463) */
	long us;             /**< us= when delayed < 0 */
	long delayed;        /**< delayed=Ns when >= 0 (harvest.c) */
	/** NULL, or a CLOCK_MONOTONIC reading taken just now (as the request
	 *  ended, for us=): the event loop's line is then stamped from it and
	 *  a per-round offset instead of reading the wall clock (log.c:
	 *  log_stamp_time()). Ignored off the loop thread. */
	const struct timespec *mono;
};

/**
 * Log a request's line at LOG_INFO: "client=P session=S cmd=C[ addr=A]
 * result=N status=X us=U" (or "delayed=Ns"), the same text log_msg() would
 * write, built without printf (one per CERT: vsnprintf was the daemon's
 * largest single cost after the lookup and the base64, docs/performance.md).
 * Every string must already be safe for a log line (log_escape()).
 */
void log_request(const struct log_request *r);

/**
 * Copy @p len bytes of @p in to @p out as printable ASCII: bytes outside 0x21..0x7e
 * (and the backslash) become \xHH, so the result holds no space, control character
 * or non-ASCII byte. Truncates (with "...") to fit @p size; always NUL-terminates.
 * @return @p out, for use in argument lists.
 */
const char *log_escape(const char *in, size_t len, char *out, size_t size);

#endif
