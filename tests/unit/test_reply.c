/*
 * test_reply.c - SMTP reply parser (lib/reply.c): single and multi-line replies,
 * code rules, separators, limits, enhanced status codes (RFC 3463).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>

static sc_status feed(sc_reply *r, const char *line)
{
	return sc_reply_feed(r, line, strlen(line));
}

static void test_single_line(void **state)
{
	sc_reply *r;
	size_t len;

	assert_int_equal(sc_reply_new(0, 0, &r), SC_OK);
	assert_int_equal(sc_reply_code(r), 0);
	assert_string_equal(sc_reply_message(r), "");
	assert_int_equal(feed(r, "220 mx.example.test ESMTP smtpcertd"), SC_OK);
	assert_int_equal(sc_reply_code(r), 220);
	assert_int_equal(sc_reply_count(r), 1);
	assert_string_equal(sc_reply_text(r, 0, &len), "mx.example.test ESMTP smtpcertd");
	assert_int_equal(len, 31);
	assert_string_equal(sc_reply_enhanced(r), "");
	assert_string_equal(sc_reply_message(r), "mx.example.test ESMTP smtpcertd");
	assert_null(sc_reply_text(r, 1, &len));
	/* fed after completion without reset: caller error */
	assert_int_equal(feed(r, "250 x"), SC_ERR_ARG);
	sc_reply_reset(r);
	assert_int_equal(sc_reply_count(r), 0);
	/* bare code, and code plus space */
	assert_int_equal(feed(r, "250"), SC_OK);
	assert_string_equal(sc_reply_text(r, 0, NULL), "");
	sc_reply_reset(r);
	assert_int_equal(feed(r, "354 "), SC_OK);
	assert_int_equal(sc_reply_code(r), 354);
	assert_string_equal(sc_reply_text(r, 0, NULL), "");
	sc_reply_free(r);
	sc_reply_free(NULL);
}

static void test_multi_line(void **state)
{
	sc_reply *r;

	assert_int_equal(sc_reply_new(0, 0, &r), SC_OK);
	assert_int_equal(feed(r, "250-mx.example.test greets me"), SC_AGAIN);
	assert_int_equal(feed(r, "250-CERT"), SC_AGAIN);
	assert_int_equal(feed(r, "250-"), SC_AGAIN);
	assert_int_equal(feed(r, "250 HELP"), SC_OK);
	assert_int_equal(sc_reply_count(r), 4);
	assert_string_equal(sc_reply_text(r, 0, NULL), "mx.example.test greets me");
	assert_string_equal(sc_reply_text(r, 1, NULL), "CERT");
	assert_string_equal(sc_reply_text(r, 2, NULL), "");
	assert_string_equal(sc_reply_text(r, 3, NULL), "HELP");
	assert_string_equal(sc_reply_message(r), "HELP");
	/* a PEM line starting with dashes stays intact after "250-" */
	sc_reply_reset(r);
	assert_int_equal(feed(r, "250------BEGIN CERTIFICATE-----"), SC_AGAIN);
	assert_string_equal(sc_reply_text(r, 0, NULL), "-----BEGIN CERTIFICATE-----");
	assert_int_equal(feed(r, "250 2.0.0 OK"), SC_OK);
	assert_string_equal(sc_reply_enhanced(r), "2.0.0");
	assert_string_equal(sc_reply_message(r), "OK");
	assert_string_equal(sc_reply_text(r, 1, NULL), "2.0.0 OK");
	sc_reply_free(r);
}

static void test_bad_lines(void **state)
{
	static const char *const bad[] = {
		"", "2", "25", "abc", "25x ok", "650 no", "160 no", "260 second digit",
		"2a0 x", "250_x", "250x", "250\tx", "-250 x", " 250 x",
	};
	sc_reply *r;

	assert_int_equal(sc_reply_new(0, 0, &r), SC_OK);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sc_reply_reset(r);
		if (feed(r, bad[i]) != SC_ERR_PROTOCOL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* code changes in the middle of a multi-line reply */
	sc_reply_reset(r);
	assert_int_equal(feed(r, "250-a"), SC_AGAIN);
	assert_int_equal(feed(r, "251 b"), SC_ERR_PROTOCOL);
	/* embedded NUL */
	sc_reply_reset(r);
	assert_int_equal(sc_reply_feed(r, "250 a\0b", 7), SC_ERR_PROTOCOL);
	/* 8-bit text is kept as is */
	sc_reply_reset(r);
	assert_int_equal(feed(r, "550 5.1.1 \xff\xfe not UTF-8"), SC_OK);
	assert_string_equal(sc_reply_message(r), "\xff\xfe not UTF-8");
	assert_int_equal(sc_reply_feed(NULL, "250", 3), SC_ERR_ARG);
	assert_int_equal(sc_reply_new(0, 0, NULL), SC_ERR_ARG);
	sc_reply_free(r);
}

static void test_limits(void **state)
{
	sc_reply *r;
	char line[200];

	assert_int_equal(sc_reply_new(3, 0, &r), SC_OK);
	assert_int_equal(feed(r, "250-a"), SC_AGAIN);
	assert_int_equal(feed(r, "250-b"), SC_AGAIN);
	assert_int_equal(feed(r, "250-c"), SC_AGAIN);
	assert_int_equal(feed(r, "250 d"), SC_ERR_TOO_MANY);
	sc_reply_free(r);

	assert_int_equal(sc_reply_new(0, 100, &r), SC_OK);
	memset(line, 'x', sizeof line);
	memcpy(line, "250-", 4);
	assert_int_equal(sc_reply_feed(r, line, 60), SC_AGAIN);
	assert_int_equal(sc_reply_feed(r, line, 41), SC_ERR_TOO_LONG);
	line[3] = ' ';
	assert_int_equal(sc_reply_feed(r, line, 40), SC_OK);
	sc_reply_reset(r);
	assert_int_equal(sc_reply_feed(r, line, 101), SC_ERR_TOO_LONG);
	assert_int_equal(sc_reply_feed(r, line, 100), SC_OK);
	sc_reply_free(r);

	/* many lines: storage grows correctly */
	assert_int_equal(sc_reply_new(0, 0, &r), SC_OK);
	for (int i = 0; i < 1000; i++) {
		snprintf(line, sizeof line, "250-line %d", i);
		assert_int_equal(feed(r, line), SC_AGAIN);
	}
	assert_int_equal(feed(r, "250 end"), SC_OK);
	assert_int_equal(sc_reply_count(r), 1001);
	assert_string_equal(sc_reply_text(r, 0, NULL), "line 0");
	assert_string_equal(sc_reply_text(r, 999, NULL), "line 999");
	sc_reply_free(r);
}

static void test_enhanced(void **state)
{
	static const struct {
		const char *line, *enhanced, *message;
	} cases[] = {
		{ "550 5.1.1 Certificate Not Found", "5.1.1", "Certificate Not Found" },
		{ "451 4.3.0 Repository unavailable", "4.3.0", "Repository unavailable" },
		{ "250 2.0.0", "2.0.0", "" },
		{ "250 2.0.0   OK", "2.0.0", "OK" },
		{ "550 5.123.456 x", "5.123.456", "x" },
		/* class must match the reply code's first digit (RFC 2034 4) */
		{ "550 2.0.0 mismatch", "", "2.0.0 mismatch" },
		{ "250 5.0.0 mismatch", "", "5.0.0 mismatch" },
		/* 3xx has no enhanced codes; class 3 is not defined */
		{ "354 3.0.0 go ahead", "", "3.0.0 go ahead" },
		{ "550 5.1234.1 too many digits", "", "5.1234.1 too many digits" },
		{ "550 5.1.1234 x", "", "5.1.1234 x" },
		{ "550 5.1 x", "", "5.1 x" },
		{ "550 5..1 x", "", "5..1 x" },
		{ "550 5.1.1x text", "", "5.1.1x text" },
		{ "550 5.1. x", "", "5.1. x" },
		{ "550 Certificate Not Found", "", "Certificate Not Found" },
	};
	sc_reply *r;

	assert_int_equal(sc_reply_new(0, 0, &r), SC_OK);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sc_reply_reset(r);
		assert_int_equal(feed(r, cases[i].line), SC_OK);
		if (strcmp(sc_reply_enhanced(r), cases[i].enhanced) ||
		    strcmp(sc_reply_message(r), cases[i].message))
			fail_msg("\"%s\": got \"%s\" / \"%s\"", cases[i].line, sc_reply_enhanced(r),
				 sc_reply_message(r));
	}
	/* only the last line counts */
	sc_reply_reset(r);
	assert_int_equal(feed(r, "550-5.1.1 first"), SC_AGAIN);
	assert_string_equal(sc_reply_enhanced(r), "");
	assert_int_equal(feed(r, "550 last"), SC_OK);
	assert_string_equal(sc_reply_enhanced(r), "");
	sc_reply_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_multi_line),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_enhanced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
