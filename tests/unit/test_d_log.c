/*
 * test_d_log.c - daemon/log.c: log_escape() turns any client bytes into one
 * printable token (controls, space, backslash, NUL, CR/LF, 8-bit) and truncates
 * with "..." without overflowing; log_msg() honours the debug switch.
 * log_request() writes what the printf format wrote, byte for byte, cut at any
 * octet, in the batch and directly; a request line's stamp derived from its
 * monotonic reading is that reading's wall-clock time to the millisecond.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>

#include "log.h"

#define ESC(in, out) esc_ok(in, sizeof(in) - 1, out)

static void esc_ok(const char *in, size_t len, const char *want)
{
	char buf[256];

	assert_ptr_equal(log_escape(in, len, buf, sizeof buf), buf);
	assert_string_equal(buf, want);
}

static void test_escape_plain(void **state)
{
	ESC("alice@example.test", "alice@example.test");
	ESC("", "");
	ESC("<a@b>", "<a@b>");
}

static void test_escape_specials(void **state)
{
	ESC("a b", "a\\x20b");
	ESC("a\r\nb", "a\\x0d\\x0ab");
	ESC("x\0y", "x\\x00y");
	ESC("back\\slash", "back\\x5cslash");
	ESC("\x7f\x80\xff", "\\x7f\\x80\\xff");
	ESC("\xe7\x94\xa8", "\\xe7\\x94\\xa8");
	ESC("\x1b[31m", "\\x1b[31m");
}

static void test_escape_truncates(void **state)
{
	char big[1000], buf[16];

	memset(big, 'a', sizeof big);
	log_escape(big, sizeof big, buf, sizeof buf);
	assert_int_equal(strlen(buf), 15);
	assert_string_equal(buf + 12, "...");
	/* an escape never gets cut in half */
	memset(big, '\n', sizeof big);
	log_escape(big, sizeof big, buf, sizeof buf);
	assert_string_equal(buf, "\\x0a\\x0a\\x0a...");
	/* tiny buffers */
	log_escape("abc", 3, buf, 1);
	assert_string_equal(buf, "");
	log_escape("abc", 3, buf, 4);
	assert_string_equal(buf, "...");
	log_escape("abc", 3, buf, 0); /* no write at all */
}

static void test_log_debug_switch(void **state)
{
	int fds[2], saved;
	char out[512] = "";
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	log_init(LOG_SINK_STDERR, 0);
	assert_false(log_debug_enabled());
	log_msg(LOG_DEBUG, "hidden %d", 1);
	log_msg(LOG_INFO, "shown %d", 2);
	log_init(LOG_SINK_STDERR, 1);
	assert_true(log_debug_enabled());
	log_msg(LOG_DEBUG, "debug %d", 3);
	log_msg(LOG_WARNING, "warned");
	dup2(saved, 2);
	close(fds[1]);
	n = read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "smtpcertd["));
	assert_non_null(strstr(out, "]: shown 2\n"));
	assert_non_null(strstr(out, "]: debug: debug 3\n"));
	assert_non_null(strstr(out, "]: warning: warned\n"));
	assert_non_null(strstr(out, "Z smtpcertd[")); /* UTC timestamp */
}

/* A message over 2047 octets is cut there and its line still ends in a newline,
 * on the batch path and on the direct one. */
static void test_log_long_line(void **state)
{
	static char msg[3001], out[8192];
	struct event_base *base = event_base_new();
	int fds[2], saved;
	ssize_t n;
	char *p, *nl;

	memset(msg, 'x', sizeof msg - 1);
	msg[sizeof msg - 1] = '\0';
	assert_non_null(base);
	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	log_init(LOG_SINK_STDERR, 0);
	log_msg(LOG_WARNING, "%s", msg); /* direct */
	assert_int_equal(log_attach(base), 0);
	log_msg(LOG_WARNING, "%s", msg); /* batched */
	log_msg(LOG_INFO, "after");
	event_base_loop(base, EVLOOP_NONBLOCK);
	log_detach();
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	event_base_free(base);
	assert_true(n > 0);
	out[n] = '\0';
	p = out;
	for (int i = 0; i < 2; i++) {
		p = strstr(p, "]: warning: x");
		assert_non_null(p);
		p += strlen("]: warning: ");
		nl = strchr(p, '\n');
		assert_non_null(nl);
		assert_int_equal(nl - p, 2047);
		assert_int_equal(strspn(p, "x"), 2047);
		p = nl;
	}
	assert_non_null(strstr(p, "]: after\n"));
}

/* log_request() writes what the printf format of the request lines wrote. */
static void test_log_request(void **state)
{
	static char big[4000], out[16384];
	int fds[2], saved;
	ssize_t n;
	char *p;

	memset(big, 'a', sizeof big - 1);
	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	log_init(LOG_SINK_STDERR, 0);
	log_request(&(struct log_request){ .peer = "127.0.0.1:4000", .session = "S1",
					   .cmd = "CERT", .addr = "bob@example.org", .result = 250,
					   .status = "2.0.0", .us = 1234, .delayed = -1 });
	log_request(&(struct log_request){ .peer = "[::1]:5", .session = "S2", .cmd = "NOOP",
					   .addr = "", .result = 500, .status = "-", .us = 0,
					   .delayed = -1 });
	log_request(&(struct log_request){ .peer = "p", .session = "S3", .cmd = "CERS",
					   .addr = "x@y", .result = 550, .status = "5.1.1",
					   .delayed = 12 });
	log_request(&(struct log_request){ .peer = "p", .session = "S4", .cmd = "X",
					   .result = -7, .status = "-", .us = -1,
					   .delayed = -1 });
	log_request(&(struct log_request){ .peer = big, .session = "S5", .cmd = "X",
					   .result = 1, .status = "-", .delayed = -1 });
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "]: client=127.0.0.1:4000 session=S1 cmd=CERT "
				    "addr=bob@example.org result=250 status=2.0.0 us=1234\n"));
	assert_non_null(strstr(out, "]: client=[::1]:5 session=S2 cmd=NOOP result=500 "
				    "status=- us=0\n"));
	assert_non_null(strstr(out, "]: client=p session=S3 cmd=CERS addr=x@y result=550 "
				    "status=5.1.1 delayed=12s\n"));
	assert_non_null(strstr(out, "]: client=p session=S4 cmd=X result=-7 status=- us=-1\n"));
	/* an over-long field cuts the message at 2047 octets, one line */
	p = strstr(out, "]: client=aaaa");
	assert_non_null(p);
	p += 3;
	assert_int_equal(strchr(p, '\n') - p, 2047);
}

/* Everything written to fd 2 while @p fn runs (direct, or through the batch of
 * an event loop when @p batched). */
static size_t capture(void (*fn)(void *), void *arg, int batched, char *out, size_t size)
{
	struct event_base *base = event_base_new();
	int fds[2], saved;
	size_t used = 0;
	ssize_t n;

	assert_non_null(base);
	assert_int_equal(pipe(fds), 0);
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) >= (1 << 18));
	saved = dup(2);
	dup2(fds[1], 2);
	log_init(LOG_SINK_STDERR, 0);
	if (batched)
		assert_int_equal(log_attach(base), 0);
	fn(arg);
	event_base_loop(base, EVLOOP_NONBLOCK);
	log_detach();
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	while ((n = read(fds[0], out + used, size - 1 - used)) > 0)
		used += (size_t)n;
	close(fds[0]);
	out[used] = '\0';
	event_base_free(base);
	return used;
}

struct req_case {
	struct log_request r;
	long mono_sec;
};

static void log_one(void *arg)
{
	log_request(&((struct req_case *)arg)->r);
}

/* The message after "]: " of the one line in @p out. */
static const char *message(const char *out)
{
	const char *p = strstr(out, "]: ");
	const char *nl;

	assert_non_null(p);
	nl = strchr(p, '\n');
	assert_non_null(nl);
	assert_string_equal(nl, "\n");
	return p + 3;
}

/* Every field and key cut at every octet near the 2047-octet end, in the
 * batch and directly: the printf format's text, cut where it was cut. */
static void test_log_request_like_printf(void **state)
{
	static char peer[2100], want[4096], out[8192];

	memset(peer, 'p', sizeof peer);
	for (size_t plen = 1960; plen <= 2047; plen++) {
		for (int batched = 0; batched < 2; batched++) {
			struct req_case c = { .r = { .peer = peer, .session = "S0123456",
						     .cmd = "CERT", .addr = "bob@example.org",
						     .result = 250, .status = "2.0.0",
						     .us = -123456, .delayed = -1 } };
			const char *m;

			peer[plen] = '\0';
			snprintf(want, sizeof want, "client=%s session=%s cmd=%s addr=%s result=%d "
					     "status=%s us=%ld", peer, c.r.session, c.r.cmd,
				 c.r.addr, c.r.result, c.r.status, c.r.us);
			want[2047] = '\0'; /* where a message is cut */
			capture(log_one, &c, batched, out, sizeof out);
			m = message(out);
			assert_int_equal(strlen(m) - 1, strlen(want));
			assert_memory_equal(m, want, strlen(want));
			/* and the delayed form */
			c.r.delayed = 7;
			c.r.addr = NULL;
			snprintf(want, sizeof want, "client=%s session=%s cmd=%s result=%d "
					     "status=%s delayed=%lds", peer, c.r.session, c.r.cmd,
				 c.r.result, c.r.status, c.r.delayed);
			want[2047] = '\0';
			capture(log_one, &c, batched, out, sizeof out);
			m = message(out);
			assert_int_equal(strlen(m) - 1, strlen(want));
			assert_memory_equal(m, want, strlen(want));
			peer[plen] = 'p';
		}
	}
}

/* Numbers at every digit count and both signs, as printf writes them. */
static void test_log_request_numbers(void **state)
{
	static char want[256], out[8192];
	const long vals[] = { 0, 1, 9, 10, 99, 100, 999, 1000, 123456789, -1, -9, -10, -100,
			      2147483647L, -2147483647L - 1, LONG_MAX, LONG_MIN };

	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		for (int delayed = 0; delayed < 2; delayed++) {
			struct req_case c = { .r = { .peer = "p", .session = "S", .cmd = "X",
						     .status = "-", .us = vals[i],
						     .delayed = delayed ? vals[i] : -1 } };

			c.r.result = vals[i] >= INT_MIN && vals[i] <= INT_MAX ? (int)vals[i] : 0;
			if (delayed && vals[i] < 0)
				continue; /* negative: us= */
			if (delayed)
				snprintf(want, sizeof want, "client=p session=S cmd=X result=%d "
					 "status=- delayed=%lds\n", c.r.result, vals[i]);
			else
				snprintf(want, sizeof want, "client=p session=S cmd=X result=%d "
					 "status=- us=%ld\n", c.r.result, vals[i]);
			capture(log_one, &c, 1, out, sizeof out);
			assert_string_equal(message(out), want);
		}
	}
}

/* A stamp "YYYY-MM-DDTHH:MM:SS.mmmZ" as milliseconds since the epoch. */
static long long stamp_ms(const char *line)
{
	struct tm tm;
	int ms = -1, used = 0;

	memset(&tm, 0, sizeof tm);
	assert_int_equal(sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n", &tm.tm_year, &tm.tm_mon,
				&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used), 7);
	assert_int_equal(used, 25);
	assert_true(ms >= 0 && ms <= 999);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

static long long ts_ms(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000 + t->tv_nsec / 1000000;
}

/* A batched request line with a monotonic reading is stamped with that
 * reading's wall-clock time (also for readings in the past, whatever their
 * nanoseconds); a line written directly reads the wall clock. */
static void test_log_request_stamp(void **state)
{
	static char out[8192];
	const long nsecs[] = { 0, 1, 499999999, 999999999 };

	for (size_t i = 0; i < sizeof nsecs / sizeof nsecs[0]; i++) {
		for (int batched = 0; batched < 2; batched++) {
			struct timespec r0, m0, m, r1, want;
			struct req_case c = { .r = { .peer = "p", .session = "S", .cmd = "CERT",
						     .result = 250, .status = "2.0.0", .us = 1,
						     .delayed = -1, .mono = &m } };
			long long got;

			clock_gettime(CLOCK_REALTIME, &r0);
			clock_gettime(CLOCK_MONOTONIC, &m0);
			/* 3 to 4 seconds ago */
			m.tv_sec = m0.tv_sec - 4;
			m.tv_nsec = nsecs[i];
			capture(log_one, &c, batched, out, sizeof out);
			clock_gettime(CLOCK_REALTIME, &r1);
			assert_string_equal(message(out), "client=p session=S cmd=CERT "
							  "result=250 status=2.0.0 us=1\n");
			got = stamp_ms(out);
			if (!batched) {
				/* not on the loop: the wall clock now */
				assert_true(got >= ts_ms(&r0) && got <= ts_ms(&r1));
				continue;
			}
			/* r0 + (m - m0), give or take the reads around it */
			want.tv_sec = r0.tv_sec + (m.tv_sec - m0.tv_sec);
			want.tv_nsec = r0.tv_nsec + (m.tv_nsec - m0.tv_nsec);
			while (want.tv_nsec < 0) {
				want.tv_nsec += 1000000000L;
				want.tv_sec--;
			}
			while (want.tv_nsec >= 1000000000L) {
				want.tv_nsec -= 1000000000L;
				want.tv_sec++;
			}
			assert_true(got >= ts_ms(&want) - 1);
			assert_true(got <= ts_ms(&want) + (ts_ms(&r1) - ts_ms(&r0)) + 1);
			assert_true(got < ts_ms(&r0) - 2900);
		}
	}
}

/* Lines of one round, whose monotonic readings lie in the past, later in the
 * same second, and in a later second than the offset was sampled in: the
 * first samples the offset, the second reuses it, the third samples it again.
 * Each is stamped with its own reading's wall-clock time. */
enum { ROUND_LINES = 4 };
static struct timespec round_mono[ROUND_LINES];

static void log_round(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUND_LINES; i++)
		log_request(&(struct log_request){ .peer = "p", .session = "S", .cmd = "CERT",
						   .result = 250, .status = "2.0.0", .us = i,
						   .delayed = -1, .mono = &round_mono[i] });
}

static void test_log_request_stamp_round(void **state)
{
	static char out[8192];
	/* seconds and nanoseconds from now (monotonic) of each line */
	const long secs[ROUND_LINES] = { -4, -4, -2, 3 };
	const long nsecs[ROUND_LINES] = { 100000000, 900000000, 0, 500000000 };
	struct timespec r0, m0, r1;
	const char *line = out;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &r0);
	clock_gettime(CLOCK_MONOTONIC, &m0);
	for (int i = 0; i < ROUND_LINES; i++) {
		round_mono[i].tv_sec = m0.tv_sec + secs[i];
		round_mono[i].tv_nsec = nsecs[i];
	}
	capture(log_round, NULL, 1, out, sizeof out);
	clock_gettime(CLOCK_REALTIME, &r1);
	for (int i = 0; i < ROUND_LINES; i++) {
		/* r0 + (mono - m0), give or take the reads around it */
		long long want = ts_ms(&r0) + (round_mono[i].tv_sec - m0.tv_sec) * 1000LL +
				 (round_mono[i].tv_nsec - m0.tv_nsec) / 1000000;
		long long got;
		char us[16];

		assert_non_null(line);
		got = stamp_ms(line);
		if (got < want - 2 || got > want + (ts_ms(&r1) - ts_ms(&r0)) + 2)
			fail_msg("line %d: stamped %lld ms, want %lld", i, got, want);
		snprintf(us, sizeof us, " us=%d\n", i);
		assert_non_null(strstr(line, us));
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	assert_true(line && *line == '\0');
}

static void *other_thread(void *arg)
{
	log_msg(LOG_INFO, "from a worker");
	return NULL;
}

/* Read what is in the pipe now (non-blocking). */
static size_t drain(int fd, char *out, size_t size)
{
	ssize_t n = read(fd, out, size - 1);

	out[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/* Lines logged on the loop thread wait for the end of the loop round and go out
 * in one write; a line from another thread goes out at once, after them. */
static void test_log_batch(void **state)
{
	struct event_base *base = event_base_new();
	int fds[2], saved;
	char out[8192];
	pthread_t t;
	size_t n;

	assert_non_null(base);
	assert_int_equal(pipe(fds), 0);
	/* the reader polls; the writer (the logger) blocks as stderr would, and
	 * the pipe holds all 2000 lines below (~130 KB) */
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) >= (1 << 18));
	saved = dup(2);
	dup2(fds[1], 2);
	log_init(LOG_SINK_STDERR, 0);
	assert_int_equal(log_attach(base), 0);
	log_msg(LOG_INFO, "one");
	log_msg(LOG_INFO, "two");
	assert_int_equal(drain(fds[0], out, sizeof out), 0); /* still batched */
	event_base_loop(base, EVLOOP_NONBLOCK);
	n = drain(fds[0], out, sizeof out);
	assert_true(n > 0);
	assert_non_null(strstr(out, "]: one\n"));
	assert_true(strstr(out, "]: one\n") < strstr(out, "]: two\n"));

	log_msg(LOG_INFO, "three");
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* the worker's line flushed "three" first, without the loop running */
	n = drain(fds[0], out, sizeof out);
	assert_non_null(strstr(out, "]: three\n"));
	assert_non_null(strstr(out, "]: from a worker\n"));
	assert_true(strstr(out, "three") < strstr(out, "from a worker"));

	/* more than the batch holds in one round: written in pieces, none lost */
	for (int i = 0; i < 2000; i++)
		log_msg(LOG_INFO, "line %04d", i);
	{
		static char all[1 << 20];
		size_t used = 0;
		char *p;

		for (int round = 0; round < 10; round++) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			while ((n = drain(fds[0], all + used, sizeof all - used)) > 0)
				used += n;
		}
		n = 0;
		for (p = all; (p = strstr(p, "]: line ")) != NULL; p++)
			n++;
		assert_int_equal(n, 2000);
		assert_non_null(strstr(all, "]: line 1999\n"));
	}

	/* detach writes what is left and stops batching */
	log_msg(LOG_INFO, "last");
	log_detach();
	n = drain(fds[0], out, sizeof out);
	assert_non_null(strstr(out, "]: last\n"));
	log_msg(LOG_INFO, "direct");
	assert_non_null(strstr((drain(fds[0], out, sizeof out), out), "]: direct\n"));
	dup2(saved, 2);
	close(saved);
	close(fds[0]);
	close(fds[1]);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_plain),
		cmocka_unit_test(test_escape_specials),
		cmocka_unit_test(test_escape_truncates),
		cmocka_unit_test(test_log_debug_switch),
		cmocka_unit_test(test_log_batch),
		cmocka_unit_test(test_log_long_line),
		cmocka_unit_test(test_log_request),
		cmocka_unit_test(test_log_request_like_printf),
		cmocka_unit_test(test_log_request_stamp),
		cmocka_unit_test(test_log_request_stamp_round),
		cmocka_unit_test(test_log_request_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
