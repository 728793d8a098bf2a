/*
 * test_d_conn_limits.c - daemon/conn_limits.c: conn_limits_now() is the whole
 * seconds of CLOCK_MONOTONIC_COARSE plus one (never 0, which means "no line"),
 * within a tick of CLOCK_MONOTONIC, and never goes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "conn.h"

static void test_now_is_coarse_seconds(void **state)
{
	for (int i = 0; i < 1000; i++) {
		struct timespec cb, ca;
		long now;

		clock_gettime(CLOCK_MONOTONIC_COARSE, &cb);
		now = conn_limits_now();
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ca);
		assert_true(now != 0);
		assert_true(now >= (long)cb.tv_sec + 1);
		assert_true(now <= (long)ca.tv_sec + 1);
	}
}

static void test_now_follows_monotonic(void **state)
{
	struct timespec res, fb, fa;
	long prev = conn_limits_now();

	/* the coarse clock ticks at least every 10 ms (HZ >= 100) */
	assert_int_equal(clock_getres(CLOCK_MONOTONIC_COARSE, &res), 0);
	assert_int_equal(res.tv_sec, 0);
	assert_true(res.tv_nsec <= 10 * 1000 * 1000);
	for (int i = 0; i < 1000; i++) {
		long now;

		clock_gettime(CLOCK_MONOTONIC, &fb);
		now = conn_limits_now();
		clock_gettime(CLOCK_MONOTONIC, &fa);
		assert_true(now >= prev);
		/* a tick behind the fine clock at most: the same second, or
		 * the one before when a second has just begun */
		assert_true(now <= (long)fa.tv_sec + 1);
		assert_true(now + 1 >= (long)fb.tv_sec + 1);
		/* ... just begun: a few ticks at most (100 ms leaves room for
		 * a loaded virtual machine's late ticks) */
		if (now < (long)fb.tv_sec + 1)
			assert_true(fb.tv_nsec < 100 * 1000 * 1000L);
		prev = now;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_is_coarse_seconds),
		cmocka_unit_test(test_now_follows_monotonic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
