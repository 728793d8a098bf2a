/*
 * worker.h - a small thread pool so that blocking work (password hashing, the
 * Dovecot socket, durable queue writes with fsync) never runs on the event loop.
 *
 * worker_submit() hands a job to one of a few threads; when its work function
 * returns, the job's done function runs later ON THE EVENT LOOP THREAD (the
 * completion is signalled through a pipe registered with libevent), in the order
 * the work finished. Every submitted job's done runs exactly once, also when
 * the pool is destroyed (then on the thread calling worker_destroy()).
 *
 * Cancellation is the caller's: a session that closes while its job is in
 * flight must not be touched by done. The pattern is a job struct owned jointly:
 * the session sets job->cancelled (loop thread) and forgets the job; done (loop
 * thread too, so no lock is needed) sees the flag, skips the session and frees
 * the job. The work function must never touch the session.
 */
#ifndef SMTPCERTD_WORKER_H
#define SMTPCERTD_WORKER_H

#include <stddef.h>
#include <event2/event.h>
#include <smtpcert/smtpcert.h>

/* Threads in the daemon's pool: crypt() of yescrypt takes tens of ms of CPU. */
#define WORKER_THREADS_DEFAULT 4
/* Jobs waiting for a thread; beyond this worker_submit() says SC_ERR_TEMP so a
 * flood of AUTH commands cannot grow memory without bound. */
#define WORKER_QUEUE_MAX 1024

struct worker;

typedef void (*worker_fn)(void *arg);

/**
 * Start @p threads threads whose completions are delivered on @p base.
 * @return SC_OK; SC_ERR_NOMEM or SC_ERR_IO (pipe, thread creation failed).
 */
SC_MUST_CHECK sc_status worker_create(struct event_base *base, unsigned threads,
				      struct worker **out);

/**
 * Finish every queued job, join the threads and run the outstanding done
 * functions on the calling thread. NULL is a no-op.
 */
void worker_destroy(struct worker *w);

/**
 * Queue @p work(@p arg) for a worker thread; @p done(@p arg) then runs on the
 * event loop thread. @p done may be NULL. @p arg is the caller's until done.
 * @return SC_OK; SC_ERR_TEMP when WORKER_QUEUE_MAX jobs already wait;
 *         SC_ERR_NOMEM; SC_ERR_ARG.
 */
SC_MUST_CHECK sc_status worker_submit(struct worker *w, worker_fn work, worker_fn done,
				      void *arg);

/** Threads the pool was created with. */
unsigned worker_threads(const struct worker *w);

/** The event base completions run on (for timers of the job's owner). */
struct event_base *worker_base(const struct worker *w);

/** Jobs submitted whose done has not run yet. */
size_t worker_pending(const struct worker *w);

/** The daemon's pool, set by main.c (NULL in tests that do not set one). */
struct worker *worker_default(void);
void worker_set_default(struct worker *w);

#endif
