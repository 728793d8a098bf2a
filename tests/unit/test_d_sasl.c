/*
 * test_d_sasl.c - daemon/sasl.c: strict base64 (RFC 4648: alphabet, length,
 * padding only at the end, zero pad bits, "=" as the empty response of RFC 4954
 * 4, output bound) and the PLAIN message split (RFC 4616 2: three parts, empty
 * authcid/passwd refused, authzid equal to authcid or empty, embedded NUL in
 * the password refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sasl.h"

static sc_status dec(const char *in, char *out, size_t size, size_t *n)
{
	return sasl_b64_decode(in, strlen(in), out, size, n);
}

static void test_b64_good(void **state)
{
	char out[64];
	size_t n;

	assert_int_equal(dec("YWJj", out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 3);
	assert_string_equal(out, "abc");
	assert_int_equal(dec("YWI=", out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(out, "ab");
	assert_int_equal(dec("YQ==", out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 1);
	assert_string_equal(out, "a");
	assert_int_equal(dec("=", out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
	/* embedded NULs survive */
	assert_int_equal(dec("AGEAYg==", out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "\0a\0b", 4);
	assert_int_equal(dec("+/+/", out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 3);
}

static void test_b64_bad(void **state)
{
	static const char *const bad[] = {
		"", "Y", "YW", "YWJ", "YWJjZ", "YW=j", "Y===", "====", "YQ==YQ==", "YQ=a",
		"YR==",   /* pad bits not zero */
		"YWJ=",   /* valid */
		"YW J", "YWJ\n", "YWJ-", "YWJ_", "\xc3\xa9\xc3\xa9",
	};
	char out[64];
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sc_status rc = dec(bad[i], out, sizeof out, &n);

		if (i == 11) {
			assert_int_equal(rc, SC_ERR_ENCODING); /* "YWJ=": J has low bits set */
			continue;
		}
		if (rc != SC_ERR_ENCODING)
			fail_msg("\"%s\" decoded (%s)", bad[i], sc_strerror(rc));
	}
	/* embedded NUL in the base64 text */
	assert_int_equal(sasl_b64_decode("YW\0j", 4, out, sizeof out, &n), SC_ERR_ENCODING);
}

static void test_b64_bound(void **state)
{
	char out[4];
	size_t n;

	assert_int_equal(dec("YWJj", out, sizeof out, &n), SC_OK);
	assert_int_equal(dec("YWJjZA==", out, sizeof out, &n), SC_ERR_TOO_LONG);
	assert_int_equal(dec("YWJj", out, 3, &n), SC_ERR_TOO_LONG);
	assert_int_equal(dec("=", out, 0, &n), SC_ERR_TOO_LONG);
}

static sc_status split(const char *msg, size_t len, const char **u, const char **p)
{
	static char buf[128];

	memset(buf, 'X', sizeof buf); /* nothing past len may be read as the password */
	memcpy(buf, msg, len);
	buf[len] = '\0';
	return sasl_plain_split(buf, len, u, p);
}

#define SPLIT(lit, u, p) split(lit, sizeof(lit) - 1, u, p)

static void test_plain(void **state)
{
	const char *u, *p;

	assert_int_equal(SPLIT("\0alice@example.test\0pw", &u, &p), SC_OK);
	assert_string_equal(u, "alice@example.test");
	assert_string_equal(p, "pw");
	assert_int_equal(SPLIT("alice@example.test\0alice@example.test\0pw", &u, &p), SC_OK);
	assert_int_equal(SPLIT("ALICE@example.test\0alice@example.test\0pw", &u, &p), SC_OK);
	assert_int_equal(SPLIT("bob@example.test\0alice@example.test\0pw", &u, &p),
			 SC_ERR_MISMATCH);
	assert_string_equal(u, "alice@example.test");
	assert_int_equal(SPLIT("alice", &u, &p), SC_ERR_SYNTAX);
	assert_int_equal(SPLIT("\0alice", &u, &p), SC_ERR_SYNTAX);
	assert_int_equal(SPLIT("\0\0pw", &u, &p), SC_ERR_SYNTAX);
	assert_int_equal(SPLIT("\0alice\0", &u, &p), SC_ERR_SYNTAX);
	assert_int_equal(SPLIT("\0alice\0p\0w", &u, &p), SC_ERR_SYNTAX);
	assert_int_equal(split("", 0, &u, &p), SC_ERR_SYNTAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_good),
		cmocka_unit_test(test_b64_bad),
		cmocka_unit_test(test_b64_bound),
		cmocka_unit_test(test_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
