/*
 * worker.c - the blocking-work thread pool (see worker.h). Owns its threads,
 * the job queue (mutex + condition variable), the completed list and the
 * self-pipe that wakes the event loop. Daemon process: threads run work
 * functions only; everything else runs on the event loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

struct worker_job {
	worker_fn work;
	worker_fn done;
	void *arg;
	struct worker_job *next;
};

struct worker {
	struct event_base *base;
	struct event *ev;            /* read end of the pipe */
	int pipefd[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct worker_job *q_head, *q_tail;   /* waiting for a thread */
	struct worker_job *d_head, *d_tail;   /* work done, done() pending */
	size_t queued;
	size_t pending;              /* loop thread only: submitted, done() not run */
	int stopping;
	int woken;                   /* a byte is in the pipe (avoids filling it) */
	pthread_t *threads;
	unsigned nthreads;
};

static struct worker *worker_global;

struct worker *worker_default(void)
{
	return worker_global;
}

void worker_set_default(struct worker *w)
{
	worker_global = w;
}

unsigned worker_threads(const struct worker *w)
{
	return w->nthreads;
}

struct event_base *worker_base(const struct worker *w)
{
	return w->base;
}

size_t worker_pending(const struct worker *w)
{
	return w->pending;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct worker_job *j;
		int wake;

		while (!w->q_head && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		j = w->q_head;
		if (!j)
			break; /* stopping and the queue is drained */
		w->q_head = j->next;
		if (!w->q_head)
			w->q_tail = NULL;
		w->queued--;
		pthread_mutex_unlock(&w->mu);

		j->work(j->arg);

		pthread_mutex_lock(&w->mu);
		j->next = NULL;
		if (w->d_tail)
			w->d_tail->next = j;
		else
			w->d_head = j;
		w->d_tail = j;
		wake = !w->woken;
		w->woken = 1;
		if (wake) {
			char b = 1;

			/* one byte per batch: the pipe never fills */
			while (write(w->pipefd[1], &b, 1) < 0 && errno == EINTR)
				;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Run the done functions of finished jobs (event loop thread). */
static void worker_run_done(struct worker *w)
{
	struct worker_job *list;
	char junk[64];

	pthread_mutex_lock(&w->mu);
	list = w->d_head;
	w->d_head = w->d_tail = NULL;
	w->woken = 0;
	while (read(w->pipefd[0], junk, sizeof junk) > 0)
		;
	pthread_mutex_unlock(&w->mu);
	while (list) {
		struct worker_job *j = list;

		list = j->next;
		w->pending--;
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void worker_event(evutil_socket_t fd, short what, void *arg)
{
	worker_run_done(arg);
}

static sc_status worker_pipe(struct worker *w)
{
	if (pipe2(w->pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
		w->pipefd[0] = w->pipefd[1] = -1;
		return SC_ERR_IO;
	}
	return SC_OK;
}

sc_status worker_create(struct event_base *base, unsigned threads, struct worker **out)
{
	struct worker *w;
	sigset_t all, old;
	sc_status rc = SC_OK;

	SC_ENSURE_ARG(base);
	SC_ENSURE_ARG(out);
	SC_ENSURE(threads > 0 && threads <= 64, SC_ERR_ARG);
	*out = NULL;
	w = calloc(1, sizeof *w);
	if (!w)
		return SC_ERR_NOMEM;
	w->base = base;
	if (worker_pipe(w) != SC_OK) {
		free(w);
		return SC_ERR_IO;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->ev = event_new(base, w->pipefd[0], EV_READ | EV_PERSIST, worker_event, w);
	w->threads = calloc(threads, sizeof *w->threads);
	if (!w->ev || !w->threads || event_add(w->ev, NULL) != 0) {
		worker_destroy(w);
		return SC_ERR_NOMEM;
	}
	/* Signals belong to the event loop thread (libevent's evsignal): the
	 * workers start with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
			rc = SC_ERR_IO;
			break;
		}
		w->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != SC_OK) {
		worker_destroy(w);
		return rc;
	}
	*out = w;
	return SC_OK;
}

sc_status worker_submit(struct worker *w, worker_fn work, worker_fn done, void *arg)
{
	struct worker_job *j;

	SC_ENSURE_ARG(w);
	SC_ENSURE_ARG(work);
	j = calloc(1, sizeof *j);
	if (!j)
		return SC_ERR_NOMEM;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->mu);
	if (w->queued >= WORKER_QUEUE_MAX || w->stopping) {
		pthread_mutex_unlock(&w->mu);
		free(j);
		return SC_ERR_TEMP;
	}
	if (w->q_tail)
		w->q_tail->next = j;
	else
		w->q_head = j;
	w->q_tail = j;
	w->queued++;
	w->pending++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return SC_OK;
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	if (w->pipefd[0] >= 0)
		worker_run_done(w);
	if (w->ev)
		event_free(w->ev);
	if (worker_global == w)
		worker_global = NULL;
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	if (w->pipefd[0] >= 0)
		close(w->pipefd[0]);
	if (w->pipefd[1] >= 0)
		close(w->pipefd[1]);
	free(w->threads);
	free(w);
}
