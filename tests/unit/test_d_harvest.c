/*
 * test_d_harvest.c - daemon/harvest.c through the session: not-found CERT/CERS
 * answers counted, every answer past harvest_threshold delayed on a timer
 * (SESSION_CERT_WAIT, no input taken, the wake-up afterwards, found answers
 * delayed as long as not-found ones), 421 4.7.0 at harvest_limit and at the
 * per-network harvest_ip_limit (a new session from the same network, another
 * network unaffected), loopback exempt unless configured, without a worker the
 * answer is immediate, and a session that ends during its delay is never
 * touched again (ASan).
 *
 * Lookups as worker jobs (cert_job.c, SESSION_LOOKUP): forced for the dir:
 * store (found, chain, not found counted when the answer arrives, delay then
 * job, 421 at the limit), a session freed or timed out while its job runs,
 * the pool's queue full (451 at once), and a real remote store: a chain of
 * [dir:, ldap:// to a server that accepts and never answers] where the first
 * store answers what it has and the hung one makes the rest 451, never 550.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include <event2/event.h>
#include "test_d_fixture.h"
#include "testsrv.h"
#include "anvil.h"
#include "cert_job.h"
#include "input.h"
#include "log.h"
#include "reply.h"
#include "session.h"
#include "worker.h"

static struct dfix fix;
static int g_woken;

static void setup_with(const char *extra)
{
	log_init(LOG_SINK_NONE, 0);
	anvil_reset();
	dfix_setup(&fix, extra, 0);
}

static int setup(void **state)
{
	(void)state;
	setup_with("harvest_threshold = 2\nharvest_limit = 4\nharvest_ip_limit = 6\n"
		   "max_errors = 100\nlimits_exempt_loopback = no\n");
	return 0;
}

static int setup_default(void **state)
{
	(void)state;
	setup_with("harvest_threshold = 1\nharvest_ip_limit = 2\nmax_errors = 100\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	dfix_teardown(&fix);
	return 0;
}

static const char *cmd(struct session *s, const char *line)
{
	session_line(s, line, strlen(line));
	return dfix_take(s);
}

static void wake(struct session *s)
{
	(void)s;
	g_woken++;
}

static void open_session(struct session *s, const char *peer)
{
	memset(s, 0, sizeof *s);
	session_init(s, fix.rt, peer, "harv0001");
	session_greet(s);
	(void)dfix_take(s);
	assert_memory_equal(cmd(s, "EHLO client.test"), "250", 3);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

static const char *run_delayed(struct event_base *base, struct session *s, const char *line,
			       long min_ms)
{
	struct timespec t0;
	struct timeval tv = { 30, 0 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	g_woken = 0;
	assert_string_equal(cmd(s, line), "");
	assert_int_equal(s->state, SESSION_CERT_WAIT);
	/* pipelined commands wait their turn */
	assert_false(input_session_ready(s));
	event_base_loopexit(base, &tv);
	while (!g_woken && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(g_woken, 1);
	assert_true(ms_since(&t0) >= min_ms);
	assert_int_not_equal(s->state, SESSION_CERT_WAIT);
	return dfix_take(s);
}

static void test_session(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct session s;
	const char *r;

	(void)state;
	assert_int_equal(worker_create(base, 1, &w), SC_OK);
	worker_set_default(w);
	open_session(&s, "192.0.2.1:1234");
	s.wake = wake;
	assert_string_equal(cmd(&s, "CERT nobody1@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	/* a syntax error or a foreign domain is not a not-found answer */
	assert_memory_equal(cmd(&s, "CERT nobody"), "501 ", 4);
	assert_memory_equal(cmd(&s, "CERT x@other.test"), "550 5.7.1 ", 10);
	/* expired and revoked count as not found (identical answers) */
	assert_string_equal(cmd(&s, "CERT dave@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	assert_int_equal(s.cert_misses, 2);
	/* past the threshold: 1 s, found or not */
	r = run_delayed(base, &s, "CERT alice@example.test", 1000);
	assert_non_null(strstr(r, "-----BEGIN CERTIFICATE-----"));
	assert_non_null(strstr(r, "250 2.0.0 OK\r\n"));
	assert_int_equal(s.cert_misses, 2);
	assert_int_equal(s.state, SESSION_READY);
	/* still 2 misses: 1 s again */
	assert_string_equal(run_delayed(base, &s, "CERS nobody2@example.test", 1000),
			    "550 5.1.1 Certificate Not Found\r\n");
	/* 3 misses: 2 s; the fourth ends the session (harvest_limit = 4) */
	r = run_delayed(base, &s, "CERT nobody3@example.test", 2000);
	assert_memory_equal(r, "550 5.1.1 Certificate Not Found\r\n421 4.7.0 ", 43);
	assert_int_equal(s.state, SESSION_CLOSING);
	session_fini(&s);

	/* the network's budget (6): 4 spent; a new session spends 2 more, then 421 */
	open_session(&s, "192.0.2.1:5555");
	assert_string_equal(cmd(&s, "CERT nobody4@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	assert_string_equal(cmd(&s, "CERT nobody5@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	assert_memory_equal(cmd(&s, "CERT alice@example.test"), "421 4.7.0 ", 10);
	assert_int_equal(s.state, SESSION_CLOSING);
	session_fini(&s);
	/* another network is not affected */
	open_session(&s, "198.51.100.1:1");
	assert_string_equal(cmd(&s, "CERT nobody6@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	session_fini(&s);

	/* a session that ends during its delay: the timer goes with it */
	{
		struct session *sp = calloc(1, sizeof *sp);

		open_session(sp, "203.0.113.1:1");
		sp->wake = wake;
		(void)cmd(sp, "CERT a1@example.test");
		(void)cmd(sp, "CERT a2@example.test");
		assert_string_equal(cmd(sp, "CERT a3@example.test"), "");
		assert_int_equal(sp->state, SESSION_CERT_WAIT);
		assert_non_null(sp->harvest);
		session_fini(sp);
		free(sp);
		/* and one that a timeout closed during it: the answer is dropped */
		sp = calloc(1, sizeof *sp);
		open_session(sp, "203.0.113.2:1");
		sp->wake = wake;
		(void)cmd(sp, "CERT a1@example.test");
		(void)cmd(sp, "CERT a2@example.test");
		assert_string_equal(cmd(sp, "CERT a3@example.test"), "");
		session_timeout(sp);
		assert_memory_equal(dfix_take(sp), "421 4.4.2 ", 10);
		{
			struct timeval tv = { 3, 0 };

			event_base_loopexit(base, &tv);
			event_base_dispatch(base);
		}
		assert_string_equal(dfix_take(sp), "");
		assert_int_equal(sp->state, SESSION_CLOSING);
		assert_null(sp->harvest);
		session_fini(sp);
		free(sp);
	}
	worker_destroy(w);
	event_base_free(base);
}

static void test_no_worker_and_loopback(void **state)
{
	struct session s;

	(void)state;
	/* loopback is exempt by default: nothing counted, nothing delayed */
	open_session(&s, "127.0.0.1:1");
	for (int i = 0; i < 5; i++)
		assert_string_equal(cmd(&s, "CERT nobody@example.test"),
				    "550 5.1.1 Certificate Not Found\r\n");
	assert_int_equal(s.cert_misses, 0);
	session_fini(&s);
	/* no worker (no loop): past the threshold the answer comes at once */
	open_session(&s, "192.0.2.9:1");
	assert_string_equal(cmd(&s, "CERT nobody@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	assert_int_equal(s.cert_misses, 1);
	assert_string_equal(cmd(&s, "CERT nobody2@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	assert_int_equal(s.cert_misses, 2);
	session_fini(&s);
	/* harvest_ip_limit = 2: the next session from there is refused at CERT */
	open_session(&s, "192.0.2.9:2");
	assert_memory_equal(cmd(&s, "CERS alice@example.test"), "421 4.7.0 ", 10);
	session_fini(&s);
}

/* Run the loop until the session's job (or timer) woke it. */
static void wait_woken(struct event_base *base)
{
	struct timeval tv = { 30, 0 };

	event_base_loopexit(base, &tv);
	while (!g_woken && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(g_woken, 1);
}

/* A command answered by a worker job: nothing at once, then the reply. */
static const char *run_job(struct event_base *base, struct session *s, const char *line)
{
	g_woken = 0;
	assert_string_equal(cmd(s, line), "");
	assert_int_equal(s->state, SESSION_LOOKUP);
	assert_non_null(s->lookup);
	/* pipelined commands wait their turn */
	assert_false(input_session_ready(s));
	wait_woken(base);
	assert_null(s->lookup);
	assert_int_not_equal(s->state, SESSION_LOOKUP);
	return dfix_take(s);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_async(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct session s;
	const char *r;

	(void)state;
	assert_int_equal(worker_create(base, 2, &w), SC_OK);
	worker_set_default(w);
	cert_job_force_async(1);
	open_session(&s, "192.0.2.1:1234");
	s.wake = wake;
	r = run_job(base, &s, "CERT alice@example.test");
	assert_int_equal(count(r, "-----BEGIN CERTIFICATE-----"), 1);
	assert_non_null(strstr(r, "\r\n250 2.0.0 OK\r\n"));
	assert_memory_equal(r, "250------BEGIN CERTIFICATE-----\r\n", 33);
	assert_int_equal(s.state, SESSION_READY);
	/* CERS: leaf and CA, in order, as the synchronous path sends them */
	r = run_job(base, &s, "CERS alice@example.test");
	assert_int_equal(count(r, "-----BEGIN CERTIFICATE-----"), 2);
	/* syntax and foreign domains are answered at once, no job */
	assert_memory_equal(cmd(&s, "CERT nobody"), "501 ", 4);
	assert_memory_equal(cmd(&s, "CERT x@other.test"), "550 5.7.1 ", 10);
	assert_null(s.lookup);
	/* not found: counted when the answer arrives */
	assert_string_equal(run_job(base, &s, "CERT nobody1@example.test"),
			    "550 5.1.1 Certificate Not Found\r\n");
	assert_int_equal(s.cert_misses, 1);
	assert_string_equal(run_job(base, &s, "CERT dave@example.test"),
			    "550 5.1.1 Certificate Not Found\r\n");
	assert_int_equal(s.cert_misses, 2);
	/* past the threshold: the delay first, then the job */
	r = run_delayed(base, &s, "CERT alice@example.test", 1000);
	assert_non_null(strstr(r, "250 2.0.0 OK\r\n"));
	assert_int_equal(s.cert_misses, 2);
	r = run_delayed(base, &s, "CERS nobody2@example.test", 1000);
	assert_string_equal(r, "550 5.1.1 Certificate Not Found\r\n");
	assert_int_equal(s.cert_misses, 3);
	/* the fourth not-found answer ends the session (harvest_limit = 4) */
	r = run_delayed(base, &s, "CERT nobody3@example.test", 2000);
	assert_memory_equal(r, "550 5.1.1 Certificate Not Found\r\n421 4.7.0 ", 43);
	assert_int_equal(s.state, SESSION_CLOSING);
	session_fini(&s);

	/* a session freed while its job runs: done frees the job alone (ASan) */
	{
		struct session *sp = calloc(1, sizeof *sp);

		open_session(sp, "203.0.113.1:1");
		sp->wake = wake;
		assert_string_equal(cmd(sp, "CERT alice@example.test"), "");
		assert_non_null(sp->lookup);
		session_fini(sp);
		assert_null(sp->lookup);
		free(sp);
		/* and one a timeout closed meanwhile: the answer is dropped */
		sp = calloc(1, sizeof *sp);
		open_session(sp, "203.0.113.2:1");
		g_woken = 0;
		sp->wake = wake;
		assert_string_equal(cmd(sp, "CERT alice@example.test"), "");
		session_timeout(sp);
		assert_memory_equal(dfix_take(sp), "421 4.4.2 ", 10);
		while (worker_pending(w) > 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
			;
		assert_int_equal(g_woken, 0);
		assert_string_equal(dfix_take(sp), "");
		assert_int_equal(sp->state, SESSION_CLOSING);
		assert_null(sp->lookup);
		session_fini(sp);
		free(sp);
	}
	cert_job_force_async(0);
	/* local stores without forcing: the synchronous path, no job */
	open_session(&s, "192.0.2.50:1");
	r = cmd(&s, "CERT alice@example.test");
	assert_non_null(strstr(r, "250 2.0.0 OK\r\n"));
	session_fini(&s);
	worker_destroy(w);
	worker_set_default(NULL);
	event_base_free(base);
}

static volatile int g_release, g_blocking;

static void blocker(void *arg)
{
	(void)arg;
	__atomic_store_n(&g_blocking, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&g_release, __ATOMIC_ACQUIRE))
		usleep(1000);
}

static void nothing(void *arg)
{
	(void)arg;
}

static void set_flag(void *arg)
{
	*(int *)arg = 1;
}

/* worker_submit() refusing (queue full): 451 4.3.0 at once, nothing counted. */
static void test_queue_full(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct session s;
	size_t n = 0;

	(void)state;
	assert_int_equal(worker_create(base, 1, &w), SC_OK);
	worker_set_default(w);
	cert_job_force_async(1);
	g_release = 0;
	g_blocking = 0;
	assert_int_equal(worker_submit(w, blocker, NULL, NULL), SC_OK);
	/* the thread holds the blocker: what is queued now stays queued */
	while (!__atomic_load_n(&g_blocking, __ATOMIC_ACQUIRE))
		usleep(1000);
	while (worker_submit(w, nothing, NULL, NULL) == SC_OK)
		assert_true(++n <= WORKER_QUEUE_MAX);
	open_session(&s, "192.0.2.1:1");
	assert_string_equal(cmd(&s, "CERT alice@example.test"),
			    "451 4.3.0 Certificate repository temporarily unavailable\r\n");
	assert_int_equal(s.state, SESSION_READY);
	assert_null(s.lookup);
	assert_int_equal(s.cert_misses, 0);
	__atomic_store_n(&g_release, 1, __ATOMIC_RELEASE);
	/* then the queue drains and jobs run again */
	while (worker_pending(w) > 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	s.wake = wake;
	assert_non_null(strstr(run_job(base, &s, "CERT alice@example.test"), "250 2.0.0 OK"));
	/* the job's reply is bounded by the room the session had when it asked:
	 * one that would not fit is refused whole (554 5.3.4), as synchronously */
	{
		static char junk[SESSION_OUT_MAX - 300];
		const char *out;

		memset(junk, 'x', sizeof junk);
		assert_true(reply_room(&s) > sizeof junk);
		assert_int_equal(sc_buf_append(s.out, junk, sizeof junk), SC_OK);
		g_woken = 0;
		session_line(&s, "CERT alice@example.test", 23);
		assert_int_equal(s.state, SESSION_LOOKUP);
		wait_woken(base);
		out = dfix_take(&s);
		assert_string_equal(out + sizeof junk, "554 5.3.4 Certificate too large to send\r\n");
		assert_int_equal(s.state, SESSION_READY);
	}
	session_fini(&s);
	cert_job_force_async(0);
	worker_destroy(w);
	worker_set_default(NULL);
	event_base_free(base);
}

/* A runtime with [dir:, ldap:// to @p port] and ldap_timeout = 1, made
 * current (the caller restores fix.rt with hung_runtime_end()). */
static struct runtime *hung_runtime(const char *port, const char *name)
{
	struct runtime *rt = NULL;
	char conf[700], text[2048], err[512] = "";

	snprintf(text, sizeof text,
		 "hostname = mx.test\nlisten = 127.0.0.1:25\ndomains = example.test\n"
		 "repository = dir:%s/repo, ldap://127.0.0.1:%s/dc=example,dc=test?"
		 "userCertificate;binary?sub?(mail=%%s)\n"
		 "ldap_timeout = 1\ncrl_file = %s/crl.pem\nstate_dir = %s\n"
		 "limits_exempt_loopback = no\nharvest_threshold = 10\n",
		 fix.dir, port, fix.dir, fix.dir);
	snprintf(conf, sizeof conf, "%s/%s.conf", fix.dir, name);
	tc_write_file(conf, text, strlen(text));
	if (runtime_load(conf, NULL, &rt, err, sizeof err) != SC_OK)
		fail_msg("runtime_load: %s", err);
	runtime_ref(rt); /* runtime_set_current() takes one reference */
	runtime_set_current(rt);
	assert_true(cert_job_wanted(rt));
	return rt;
}

static void hung_runtime_end(struct runtime *rt)
{
	runtime_ref(fix.rt);
	runtime_set_current(fix.rt);
	runtime_unref(rt);
}

/* A real remote store that hangs: [dir:, ldap:// accepting and never
 * answering], ldap_timeout = 1. The walk runs as a job without forcing. */
static void test_hung_directory(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct runtime *rt;
	struct session s;
	char port[8];
	int lfd = ts_listen(port);
	const char *r;

	(void)state;
	assert_true(lfd >= 0);
	rt = hung_runtime(port, "hung1");
	assert_int_equal(worker_create(base, 2, &w), SC_OK);
	worker_set_default(w);
	memset(&s, 0, sizeof s);
	session_init(&s, rt, "192.0.2.7:1", "hung0001");
	session_greet(&s);
	(void)dfix_take(&s);
	assert_memory_equal(cmd(&s, "EHLO client.test"), "250", 3);
	s.wake = wake;
	/* the first store has it: served, the directory is never asked */
	r = run_job(base, &s, "CERT alice@example.test");
	assert_non_null(strstr(r, "250 2.0.0 OK\r\n"));
	/* expired in the first store: that store answers (550), not the directory */
	assert_string_equal(run_job(base, &s, "CERT dave@example.test"),
			    "550 5.1.1 Certificate Not Found\r\n");
	/* unknown to the first store, the directory hangs: 451, never 550, and
	 * not counted as a not-found answer */
	assert_string_equal(run_job(base, &s, "CERT nobody@example.test"),
			    "451 4.3.0 Certificate repository temporarily unavailable\r\n");
	assert_int_equal(s.cert_misses, 1);
	session_fini(&s);
	worker_destroy(w);
	worker_set_default(NULL);
	hung_runtime_end(rt);
	close(lfd);
	event_base_free(base);
}

/* More lookups than slots on a hung store (a fresh one: a store that just
 * timed out answers at once for a while): threads - 1 run, the rest
 * wait in line, and a thread of the pool stays free for other work (AUTH,
 * CERC): its job is done while lookups still wait. */
static void test_lookup_slots(void **state)
{
	/* a pool bigger than the default (worker_threads): its threads - 1 slots */
	enum { THREADS = WORKER_THREADS_DEFAULT + 2, N = THREADS - 1 + 2 };
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct runtime *rt;
	struct session *ss = calloc(N, sizeof *ss);
	char port[8];
	int lfd = ts_listen(port), other = 0, waiting = 0, answered = 0;
	unsigned refs;

	(void)state;
	assert_true(lfd >= 0);
	assert_non_null(ss);
	rt = hung_runtime(port, "hung2");
	assert_int_equal(worker_create(base, THREADS, &w), SC_OK);
	assert_int_equal(worker_threads(w), THREADS);
	worker_set_default(w);
	for (int i = 0; i < N; i++) {
		char peer[32];

		snprintf(peer, sizeof peer, "192.0.2.%d:1", 20 + i);
		session_init(&ss[i], rt, peer, "hung0002");
		assert_memory_equal(cmd(&ss[i], "EHLO client.test"), "250", 3);
		assert_string_equal(cmd(&ss[i], "CERT nobody@example.test"), "");
		assert_int_equal(ss[i].state, SESSION_LOOKUP);
	}
	assert_int_equal(worker_submit(w, nothing, set_flag, &other), SC_OK);
	while (!other && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	for (int i = 0; i < N; i++)
		waiting += ss[i].state == SESSION_LOOKUP;
	/* the other job was done while every lookup still hangs (1 s) */
	assert_int_equal(waiting, N);
	/* one session leaves while waiting for a slot: its job leaves the line
	 * at once (the session's and the job's runtime references go), not
	 * when a slot frees up */
	refs = rt->refs;
	session_fini(&ss[N - 1]);
	assert_int_equal(rt->refs, refs - 2);
	while (worker_pending(w) > 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	for (int i = 0; i < N - 1; i++) {
		assert_int_equal(ss[i].state, SESSION_READY);
		answered += strcmp(dfix_take(&ss[i]), "451 4.3.0 Certificate repository "
				   "temporarily unavailable\r\n") == 0;
		session_fini(&ss[i]);
	}
	assert_int_equal(answered, N - 1);
	free(ss);
	worker_destroy(w);
	worker_set_default(NULL);
	hung_runtime_end(rt);
	close(lfd);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_worker_and_loopback, setup_default, teardown),
		cmocka_unit_test_setup_teardown(test_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_slots, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
