/*
 * test_d_received.c - the Received field (daemon/received.c): the exact text
 * for HELO/EHLO, TLS, AUTH and SMTPUTF8 (RFC 3848 / RFC 6531 protocol names),
 * IPv4 and IPv6 address literals, "for" with one recipient only, a HELO that
 * is not a domain (moved into a comment, sanitised: no way to close the
 * comment or fold the field), the date format, and a buffer too small.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "received.h"

/* 2026-11-28 21:25:06 UTC */
#define WHEN ((time_t)1795901106)

static const char *fmt(const struct received_info *ri)
{
	static char out[RECEIVED_MAX];
	size_t len = 0;

	assert_int_equal(received_format(ri, out, sizeof out, &len), SC_OK);
	assert_int_equal(len, strlen(out));
	return out;
}

static int setup(void **state)
{
	setenv("TZ", "UTC", 1);
	return 0;
}

static void test_esmtp_one_rcpt(void **state)
{
	struct received_info ri = { .helo = "client.example", .peer = "192.0.2.7:40000",
				    .hostname = "mx.example.test", .id = "abc.1",
				    .rcpt = "alice@example.test", .when = WHEN, .ehlo = 1 };

	assert_string_equal(fmt(&ri),
			    "Received: from client.example ([192.0.2.7])\r\n"
			    "\tby mx.example.test (smtpcertd) with ESMTP\r\n"
			    "\tid abc.1\r\n"
			    "\tfor <alice@example.test>; Sat, 28 Nov 2026 21:25:06 +0000\r\n");
}

static void test_tls_auth_ipv6_several(void **state)
{
	struct received_info ri = { .helo = "[IPv6:2001:db8::1]", .peer = "[2001:db8::1]:25",
				    .hostname = "mx.test", .id = "x.2", .when = WHEN,
				    .tls_version = "TLSv1.3", .tls_cipher = "TLS_AES_256_GCM_SHA384",
				    .ehlo = 1, .auth = 1 };

	assert_string_equal(fmt(&ri),
			    "Received: from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])\r\n"
			    "\tby mx.test (smtpcertd) with ESMTPSA\r\n"
			    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
			    "\tid x.2; Sat, 28 Nov 2026 21:25:06 +0000\r\n");
}

static void test_protocol_names(void **state)
{
	struct received_info ri = { .hostname = "h" };

	assert_string_equal(received_protocol(&ri), "SMTP");
	ri.ehlo = 1;
	assert_string_equal(received_protocol(&ri), "ESMTP");
	ri.tls_version = "TLSv1.2";
	assert_string_equal(received_protocol(&ri), "ESMTPS");
	ri.auth = 1;
	assert_string_equal(received_protocol(&ri), "ESMTPSA");
	ri.tls_version = NULL;
	assert_string_equal(received_protocol(&ri), "ESMTPA");
	ri.smtputf8 = 1;
	assert_string_equal(received_protocol(&ri), "UTF8SMTPA");
	ri.tls_version = "TLSv1.3";
	assert_string_equal(received_protocol(&ri), "UTF8SMTPSA");
	ri.auth = 0;
	assert_string_equal(received_protocol(&ri), "UTF8SMTPS");
	ri.tls_version = NULL;
	assert_string_equal(received_protocol(&ri), "UTF8SMTP");
}

static void test_bad_helo(void **state)
{
	struct received_info ri = { .helo = "evil)\r\n\tby(x", .peer = "198.51.100.1:1",
				    .hostname = "mx.test", .id = "i", .when = WHEN };
	const char *out = fmt(&ri);

	assert_non_null(strstr(out, "Received: from [198.51.100.1] (helo=evil????"));
	assert_non_null(strstr(out, "with SMTP\r\n"));
	/* exactly the five line ends we write, nothing the client injected */
	assert_int_equal(strstr(out, "\tid i;") != NULL, 1);
	ri.helo = "";
	assert_non_null(strstr(fmt(&ri), "from [198.51.100.1] (helo=none)"));
	ri.helo = "not a domain";
	assert_non_null(strstr(fmt(&ri), "(helo=not?a?domain)"));
	ri.helo = "[1.2.3.4";
	assert_non_null(strstr(fmt(&ri), "(helo=[1.2.3.4)"));
	ri.helo = "\xc3\xa9x.test"; /* UTF-8 name without SMTPUTF8 */
	assert_non_null(strstr(fmt(&ri), "(helo=??x.test)"));
	ri.smtputf8 = 1;
	ri.ehlo = 1;
	assert_non_null(strstr(fmt(&ri), "Received: from \xc3\xa9x.test ([198.51.100.1])"));
	ri.peer = "unknown";
	assert_non_null(strstr(fmt(&ri), "([0.0.0.0])"));
}

static void test_tls_comment_sanitised(void **state)
{
	struct received_info ri = { .helo = "c.test", .peer = "192.0.2.1:1", .hostname = "mx",
				    .id = "i", .when = WHEN, .ehlo = 1, .tls_version = "TLS(1)",
				    .tls_cipher = NULL };

	assert_non_null(strstr(fmt(&ri), "\t(using TLS?1? with cipher unknown)\r\n"));
}

static void test_too_small(void **state)
{
	struct received_info ri = { .helo = "client.example", .peer = "192.0.2.7:40000",
				    .hostname = "mx.example.test", .id = "abc.1", .when = WHEN };
	char out[64];
	size_t len = 0;

	assert_int_equal(received_format(&ri, out, sizeof out, &len), SC_ERR_TOO_LONG);
	assert_int_equal(received_format(NULL, out, sizeof out, &len), SC_ERR_ARG);
	ri.hostname = NULL;
	assert_int_equal(received_format(&ri, out, sizeof out, &len), SC_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_esmtp_one_rcpt),
		cmocka_unit_test(test_tls_auth_ipv6_several),
		cmocka_unit_test(test_protocol_names),
		cmocka_unit_test(test_bad_helo),
		cmocka_unit_test(test_tls_comment_sanitised),
		cmocka_unit_test(test_too_small),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
