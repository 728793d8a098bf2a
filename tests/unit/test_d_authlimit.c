/*
 * test_d_authlimit.c - daemon/authlimit.c: counting up to the limit, IP and
 * user tables independent, the window expiring after AUTHLIMIT_WINDOW, memory
 * bounded under a flood of distinct names (old entries are reused, the table
 * never grows), and the peer string to IP conversion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "authlimit.h"

static int reset(void **state)
{
	authlimit_reset();
	return 0;
}

static void test_count(void **state)
{
	time_t now = 1000000;

	assert_false(authlimit_blocked(AUTHLIMIT_IP, "192.0.2.1", 3, now));
	assert_int_equal(authlimit_fail(AUTHLIMIT_IP, "192.0.2.1", now), 1);
	assert_int_equal(authlimit_fail(AUTHLIMIT_IP, "192.0.2.1", now + 1), 2);
	assert_false(authlimit_blocked(AUTHLIMIT_IP, "192.0.2.1", 3, now + 2));
	assert_int_equal(authlimit_fail(AUTHLIMIT_IP, "192.0.2.1", now + 2), 3);
	assert_true(authlimit_blocked(AUTHLIMIT_IP, "192.0.2.1", 3, now + 3));
	/* other keys and the other table are untouched */
	assert_false(authlimit_blocked(AUTHLIMIT_IP, "192.0.2.2", 1, now + 3));
	assert_false(authlimit_blocked(AUTHLIMIT_USER, "192.0.2.1", 1, now + 3));
	/* the window ends an hour after the first failure */
	assert_true(authlimit_blocked(AUTHLIMIT_IP, "192.0.2.1", 3, now + AUTHLIMIT_WINDOW - 1));
	assert_false(authlimit_blocked(AUTHLIMIT_IP, "192.0.2.1", 3, now + AUTHLIMIT_WINDOW));
	assert_int_equal(authlimit_fail(AUTHLIMIT_IP, "192.0.2.1", now + AUTHLIMIT_WINDOW), 1);
}

static void test_flood(void **state)
{
	time_t now = 2000000;
	char key[32];

	/* the victim fails first, then many more names than slots */
	for (int i = 0; i < 5; i++)
		authlimit_fail(AUTHLIMIT_USER, "victim@example.test", now);
	assert_true(authlimit_blocked(AUTHLIMIT_USER, "victim@example.test", 5, now));
	for (int i = 0; i < 4 * AUTHLIMIT_SLOTS; i++) {
		snprintf(key, sizeof key, "u%d@example.test", i);
		authlimit_fail(AUTHLIMIT_USER, key, now + 1 + i / 1000);
	}
	/* recent names are counted; the table did not grow (static), and the
	 * oldest entries made room */
	snprintf(key, sizeof key, "u%d@example.test", 4 * AUTHLIMIT_SLOTS - 1);
	assert_true(authlimit_blocked(AUTHLIMIT_USER, key, 1, now + 40));
}

static void test_peer_ip(void **state)
{
	char ip[64];

	authlimit_peer_ip("192.0.2.1:25", ip, sizeof ip);
	assert_string_equal(ip, "192.0.2.1");
	authlimit_peer_ip("[2001:db8::1]:587", ip, sizeof ip);
	assert_string_equal(ip, "2001:db8::1");
	authlimit_peer_ip("unknown", ip, sizeof ip);
	assert_string_equal(ip, "unknown");
	authlimit_peer_ip("192.0.2.1:25", ip, 4);
	assert_string_equal(ip, "192");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_count, reset),
		cmocka_unit_test_setup(test_flood, reset),
		cmocka_unit_test_setup(test_peer_ip, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
