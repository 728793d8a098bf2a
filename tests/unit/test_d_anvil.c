/*
 * test_d_anvil.c - daemon/anvil.c: per-network connection count and rate,
 * the hourly not-found budget, IPv6 /64 and v4-mapped keying, loopback
 * detection, the escalating harvest delay, and memory bounded under a flood
 * of distinct networks (new ones go untracked, live ones are never evicted).
 * Time is passed in, so windows are tested without sleeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "anvil.h"

static int reset(void **state)
{
	(void)state;
	anvil_reset();
	return 0;
}

static void test_conn_limit(void **state)
{
	time_t now = 1000000;

	(void)state;
	assert_int_equal(anvil_connect("192.0.2.1:1000", 2, 0, now), ANVIL_OK);
	assert_int_equal(anvil_connect("192.0.2.1:1001", 2, 0, now), ANVIL_OK);
	assert_int_equal(anvil_connect("192.0.2.1:1002", 2, 0, now), ANVIL_TOO_MANY);
	/* another address is independent */
	assert_int_equal(anvil_connect("192.0.2.2:1000", 2, 0, now), ANVIL_OK);
	/* one closes: one more may come in */
	anvil_disconnect("192.0.2.1:1000");
	assert_int_equal(anvil_connect("192.0.2.1:1003", 2, 0, now), ANVIL_OK);
	assert_int_equal(anvil_connect("192.0.2.1:1004", 2, 0, now), ANVIL_TOO_MANY);
	/* no limit */
	assert_int_equal(anvil_connect("192.0.2.1:1005", 0, 0, now), ANVIL_OK);
	/* disconnecting more than connected never underflows */
	for (int i = 0; i < 10; i++)
		anvil_disconnect("192.0.2.1:1");
	assert_int_equal(anvil_connect("192.0.2.1:1006", 1, 0, now), ANVIL_OK);
	assert_int_equal(anvil_connect("192.0.2.1:1007", 1, 0, now), ANVIL_TOO_MANY);
}

static void test_rate(void **state)
{
	time_t now = 2000000;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(anvil_connect("198.51.100.7:1", 0, 3, now + i), ANVIL_OK);
		anvil_disconnect("198.51.100.7:1");
	}
	assert_int_equal(anvil_connect("198.51.100.7:1", 0, 3, now + 10), ANVIL_TOO_FAST);
	/* refusals are not counted: the next window starts fresh */
	assert_int_equal(anvil_connect("198.51.100.7:1", 0, 3, now + ANVIL_RATE_WINDOW - 1),
			 ANVIL_TOO_FAST);
	assert_int_equal(anvil_connect("198.51.100.7:1", 0, 3, now + ANVIL_RATE_WINDOW), ANVIL_OK);
}

static void test_ipv6_prefix(void **state)
{
	time_t now = 3000000;

	(void)state;
	/* one /64 is one client network, whatever the interface identifier */
	assert_int_equal(anvil_connect("[2001:db8:1:2::1]:25", 2, 0, now), ANVIL_OK);
	assert_int_equal(anvil_connect("[2001:db8:1:2:ffff::9]:25", 2, 0, now), ANVIL_OK);
	assert_int_equal(anvil_connect("[2001:db8:1:2::abcd]:25", 2, 0, now), ANVIL_TOO_MANY);
	assert_int_equal(anvil_connect("[2001:db8:1:3::1]:25", 2, 0, now), ANVIL_OK);
	/* ::ffff:192.0.2.9 is 192.0.2.9 */
	assert_int_equal(anvil_connect("192.0.2.9:1", 1, 0, now), ANVIL_OK);
	assert_int_equal(anvil_connect("[::ffff:192.0.2.9]:1", 1, 0, now), ANVIL_TOO_MANY);
}

static void test_bad_peer(void **state)
{
	unsigned long long k;

	(void)state;
	assert_false(anvil_key("unknown", &k));
	assert_false(anvil_key("", &k));
	assert_false(anvil_key("[2001:db8::g]:25", &k));
	assert_false(anvil_key("300.1.1.1:25", &k));
	assert_false(anvil_key("[192.0.2.1\xff]:25", &k));
	assert_int_equal(anvil_connect("unknown", 1, 1, 1), ANVIL_UNTRACKED);
	assert_false(anvil_harvest_blocked("unknown", 1, 1));
	assert_int_equal(anvil_harvest_miss("unknown", 1), 0);
	anvil_disconnect("unknown");
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(anvil_is_loopback("127.0.0.1:25"));
	assert_true(anvil_is_loopback("127.0.0.2:4000"));
	assert_true(anvil_is_loopback("[::1]:25"));
	assert_true(anvil_is_loopback("[::ffff:127.0.0.1]:25"));
	assert_false(anvil_is_loopback("128.0.0.1:25"));
	assert_false(anvil_is_loopback("[::2]:25"));
	assert_false(anvil_is_loopback("[::ffff:192.0.2.1]:25"));
	assert_false(anvil_is_loopback("unknown"));
}

static void test_harvest_budget(void **state)
{
	time_t now = 4000000;

	(void)state;
	assert_false(anvil_harvest_blocked("203.0.113.5:1", 3, now));
	assert_int_equal(anvil_harvest_miss("203.0.113.5:1", now), 1);
	assert_int_equal(anvil_harvest_miss("203.0.113.5:2", now + 5), 2);
	assert_false(anvil_harvest_blocked("203.0.113.5:3", 3, now + 6));
	assert_int_equal(anvil_harvest_miss("203.0.113.5:4", now + 7), 3);
	/* the port (a new session) does not matter */
	assert_true(anvil_harvest_blocked("203.0.113.5:5", 3, now + 8));
	assert_false(anvil_harvest_blocked("203.0.113.6:5", 3, now + 8));
	/* 0 = no limit */
	assert_false(anvil_harvest_blocked("203.0.113.5:5", 0, now + 8));
	/* the hour ends */
	assert_true(anvil_harvest_blocked("203.0.113.5:5", 3, now + ANVIL_HARVEST_WINDOW - 1));
	assert_false(anvil_harvest_blocked("203.0.113.5:5", 3, now + ANVIL_HARVEST_WINDOW));
	assert_int_equal(anvil_harvest_miss("203.0.113.5:4", now + ANVIL_HARVEST_WINDOW), 1);
}

static void test_delay(void **state)
{
	(void)state;
	assert_int_equal(anvil_harvest_delay(0, 3), 0);
	assert_int_equal(anvil_harvest_delay(2, 3), 0);
	assert_int_equal(anvil_harvest_delay(3, 3), 1);
	assert_int_equal(anvil_harvest_delay(4, 3), 2);
	assert_int_equal(anvil_harvest_delay(5, 3), 4);
	assert_int_equal(anvil_harvest_delay(6, 3), 8);
	assert_int_equal(anvil_harvest_delay(7, 3), ANVIL_DELAY_MAX);
	assert_int_equal(anvil_harvest_delay(100000, 3), ANVIL_DELAY_MAX);
	assert_int_equal(anvil_harvest_delay(~0u, 1), ANVIL_DELAY_MAX);
	/* threshold 0 = never */
	assert_int_equal(anvil_harvest_delay(1000, 0), 0);
	assert_int_equal(anvil_harvest_delay(1000, -1), 0);
}

static void test_flood(void **state)
{
	time_t now = 5000000;
	char peer[64];
	int untracked = 0;

	(void)state;
	/* the victim's open connection is never evicted by a flood */
	assert_int_equal(anvil_connect("192.0.2.77:1", 1, 0, now), ANVIL_OK);
	for (int i = 0; i < 4 * ANVIL_SLOTS; i++) {
		snprintf(peer, sizeof peer, "10.%d.%d.%d:1", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		if (anvil_connect(peer, 5, 0, now) == ANVIL_UNTRACKED)
			untracked++;
	}
	/* the table did not grow (static): networks beyond it are not tracked */
	assert_true(untracked >= 3 * ANVIL_SLOTS - 1);
	assert_int_equal(anvil_connect("192.0.2.77:2", 1, 0, now), ANVIL_TOO_MANY);
	/* entries with nothing to remember are reused once their windows end */
	anvil_reset();
	for (int i = 0; i < 4 * ANVIL_SLOTS; i++) {
		snprintf(peer, sizeof peer, "10.%d.%d.%d:1", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		(void)anvil_harvest_miss(peer, now + i / 2);
	}
	assert_int_equal(anvil_harvest_miss("192.0.2.1:1", now + 2 * ANVIL_SLOTS + ANVIL_HARVEST_WINDOW),
			 1);
	assert_int_equal(anvil_harvest_miss("192.0.2.1:1", now + 2 * ANVIL_SLOTS + ANVIL_HARVEST_WINDOW),
			 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_conn_limit, reset),
		cmocka_unit_test_setup(test_rate, reset),
		cmocka_unit_test_setup(test_ipv6_prefix, reset),
		cmocka_unit_test_setup(test_bad_peer, reset),
		cmocka_unit_test_setup(test_loopback, reset),
		cmocka_unit_test_setup(test_harvest_budget, reset),
		cmocka_unit_test_setup(test_delay, reset),
		cmocka_unit_test_setup(test_flood, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
