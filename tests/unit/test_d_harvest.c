/*
 * test_d_harvest.c - daemon/harvest.c through the session: not-found CERT/CERS
 * answers counted, every answer past harvest_threshold delayed on a timer
 * (SESSION_CERT_WAIT, no input taken, the wake-up afterwards, found answers
 * delayed as long as not-found ones), 421 4.7.0 at harvest_limit and at the
 * per-network harvest_ip_limit (a new session from the same network, another
 * network unaffected), loopback exempt unless configured, without a worker the
 * answer is immediate, and a session that ends during its delay is never
 * touched again (ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include <event2/event.h>
#include "test_d_fixture.h"
#include "anvil.h"
#include "input.h"
#include "log.h"
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

static const char *take(struct session *s)
{
	static char text[SESSION_OUT_MAX + 1];
	size_t n = session_out_len(s);

	assert_true(n < sizeof text);
	if (n)
		memcpy(text, sc_buf_data(s->out), n);
	text[n] = '\0';
	if (s->out)
		sc_buf_consume(s->out, n);
	return text;
}

static const char *cmd(struct session *s, const char *line)
{
	session_line(s, line, strlen(line));
	return take(s);
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
	(void)take(s);
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
	return take(s);
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
		assert_memory_equal(take(sp), "421 4.4.2 ", 10);
		{
			struct timeval tv = { 3, 0 };

			event_base_loopexit(base, &tv);
			event_base_dispatch(base);
		}
		assert_string_equal(take(sp), "");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_worker_and_loopback, setup_default, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
