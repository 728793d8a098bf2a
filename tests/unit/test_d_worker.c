/*
 * test_d_worker.c - daemon/worker.c: work runs on another thread, done runs on
 * the event loop thread in completion order, every done runs exactly once (also
 * through worker_destroy), the queue bound answers SC_ERR_TEMP, the cancel
 * pattern of worker.h keeps done away from a freed owner, bad arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>
#include "worker.h"

struct job {
	pthread_t loop_thread;
	pthread_t work_thread;
	int worked;
	int done;
	int on_loop;
	int sleep_ms;
	int *counter;          /* incremented in done when non-NULL */
	int cancelled;
	struct event_base *base;
	int stop_after;        /* break the loop when *counter reaches it */
};

static void job_work(void *arg)
{
	struct job *j = arg;

	j->work_thread = pthread_self();
	if (j->sleep_ms)
		usleep((useconds_t)j->sleep_ms * 1000);
	j->worked++;
}

static void job_done(void *arg)
{
	struct job *j = arg;

	j->done++;
	j->on_loop = pthread_equal(pthread_self(), j->loop_thread);
	if (j->counter) {
		(*j->counter)++;
		if (j->base && *j->counter >= j->stop_after)
			event_base_loopbreak(j->base);
	}
}

static void run_loop(struct event_base *base)
{
	struct timeval tv = { 5, 0 }; /* a hang fails the test instead of blocking */

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void test_roundtrip(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct job jobs[20];
	int count = 0;

	assert_non_null(base);
	assert_int_equal(worker_create(base, 3, &w), SC_OK);
	assert_ptr_equal(worker_base(w), base);
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < 20; i++) {
		jobs[i].loop_thread = pthread_self();
		jobs[i].counter = &count;
		jobs[i].base = base;
		jobs[i].stop_after = 20;
		jobs[i].sleep_ms = i % 3;
		assert_int_equal(worker_submit(w, job_work, job_done, &jobs[i]), SC_OK);
	}
	assert_int_equal(worker_pending(w), 20);
	run_loop(base);
	assert_int_equal(count, 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(jobs[i].worked, 1);
		assert_int_equal(jobs[i].done, 1);
		assert_true(jobs[i].on_loop);
		assert_false(pthread_equal(jobs[i].work_thread, pthread_self()));
	}
	assert_int_equal(worker_pending(w), 0);
	worker_destroy(w);
	event_base_free(base);
}

/* destroy finishes queued work and runs every done on the calling thread */
static void test_destroy_runs_done(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct job jobs[5];
	int count = 0;

	assert_int_equal(worker_create(base, 1, &w), SC_OK);
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < 5; i++) {
		jobs[i].loop_thread = pthread_self();
		jobs[i].counter = &count;
		jobs[i].sleep_ms = 5;
		assert_int_equal(worker_submit(w, job_work, i == 4 ? NULL : job_done, &jobs[i]),
				 SC_OK);
	}
	worker_set_default(w);
	assert_ptr_equal(worker_default(), w);
	worker_destroy(w);
	assert_null(worker_default());
	assert_int_equal(count, 4);
	for (int i = 0; i < 5; i++)
		assert_int_equal(jobs[i].worked, 1);
	assert_int_equal(jobs[4].done, 0); /* NULL done is allowed */
	event_base_free(base);
}

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;

static void gate_work(void *arg)
{
	pthread_mutex_lock(&gate_mu);
	pthread_mutex_unlock(&gate_mu);
}

/* WORKER_QUEUE_MAX bounds the waiting jobs */
static void test_queue_bound(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	int n = 0;
	sc_status rc = SC_OK;

	assert_int_equal(worker_create(base, 1, &w), SC_OK);
	pthread_mutex_lock(&gate_mu); /* the thread blocks on its first job */
	while (n < WORKER_QUEUE_MAX + 10) {
		rc = worker_submit(w, gate_work, NULL, NULL);
		if (rc != SC_OK)
			break;
		n++;
	}
	assert_int_equal(rc, SC_ERR_TEMP);
	/* the thread may hold one job already: at most one beyond the bound */
	assert_true(n >= WORKER_QUEUE_MAX && n <= WORKER_QUEUE_MAX + 1);
	pthread_mutex_unlock(&gate_mu);
	worker_destroy(w);
	event_base_free(base);
}

/* the cancel pattern of worker.h: the owner goes away, done frees the job */
struct owner {
	struct cjob *job;
	int replies;
};

struct cjob {
	struct owner *owner; /* NULL once cancelled */
	int *freed;
};

static void cjob_work(void *arg)
{
	usleep(20000);
}

static void cjob_done(void *arg)
{
	struct cjob *j = arg;

	if (j->owner) {
		j->owner->replies++;
		j->owner->job = NULL;
	}
	(*j->freed)++;
	free(j);
}

static void test_cancel_pattern(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct owner *o = calloc(1, sizeof *o);
	struct cjob *j = calloc(1, sizeof *j);
	int freed = 0;

	assert_int_equal(worker_create(base, 1, &w), SC_OK);
	j->owner = o;
	j->freed = &freed;
	o->job = j;
	assert_int_equal(worker_submit(w, cjob_work, cjob_done, j), SC_OK);
	/* the session closes while the job is in flight */
	o->job->owner = NULL;
	free(o);
	worker_destroy(w); /* runs done: must not touch the freed owner (ASan) */
	assert_int_equal(freed, 1);
	event_base_free(base);
}

static void test_bad_args(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = (struct worker *)1;

	assert_int_equal(worker_create(NULL, 1, &w), SC_ERR_ARG);
	assert_int_equal(worker_create(base, 0, &w), SC_ERR_ARG);
	assert_int_equal(worker_create(base, 1000, &w), SC_ERR_ARG);
	assert_int_equal(worker_create(base, 1, &w), SC_OK);
	assert_int_equal(worker_submit(NULL, job_work, NULL, NULL), SC_ERR_ARG);
	assert_int_equal(worker_submit(w, NULL, NULL, NULL), SC_ERR_ARG);
	worker_destroy(w);
	worker_destroy(NULL);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_destroy_runs_done),
		cmocka_unit_test(test_queue_bound),
		cmocka_unit_test(test_cancel_pattern),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
