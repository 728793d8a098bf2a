/*
 * test_base64.c - RFC 4648 section 10 vectors and every refusal of the strict decoder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>

#include "base64_int.h"

static const struct { const char *plain, *enc; } vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_vectors(void **state)
{
	char enc[32];
	uint8_t dec[32];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		size_t plen = strlen(vectors[i].plain);

		assert_int_equal(sc_base64_encode(vectors[i].plain, plen, enc, sizeof enc, &n), SC_OK);
		assert_string_equal(enc, vectors[i].enc);
		assert_int_equal(n, SC_BASE64_LEN(plen));
		assert_int_equal(sc_base64_decode(vectors[i].enc, strlen(vectors[i].enc), dec,
						  sizeof dec, &n), SC_OK);
		assert_int_equal(n, plen);
		assert_memory_equal(dec, vectors[i].plain, plen);
	}
}

static void test_all_bytes_round_trip(void **state)
{
	uint8_t in[256], out[256];
	char enc[SC_BASE64_LEN(256) + 1];
	size_t n, m;

	(void)state;
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)i;
	for (size_t len = 0; len <= sizeof in; len++) {
		assert_int_equal(sc_base64_encode(in, len, enc, sizeof enc, &n), SC_OK);
		assert_int_equal(sc_base64_decode(enc, n, out, sizeof out, &m), SC_OK);
		assert_int_equal(m, len);
		assert_memory_equal(out, in, len);
	}
}

/* Every 12-bit half of a group, in both positions, against a character-at-a-time
 * encoder (the encoder looks pairs up in a table built by the preprocessor). */
static void test_every_pair(void **state)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static uint8_t in[4096 * 3];
	static char enc[SC_BASE64_LEN(sizeof in) + 1];
	size_t n;

	(void)state;
	for (uint32_t k = 0; k < 4096; k++) {
		uint32_t v = k << 12 | (4095 - k);

		in[k * 3] = (uint8_t)(v >> 16);
		in[k * 3 + 1] = (uint8_t)(v >> 8);
		in[k * 3 + 2] = (uint8_t)v;
	}
	assert_int_equal(sc_base64_encode(in, sizeof in, enc, sizeof enc, &n), SC_OK);
	assert_int_equal(n, 4096 * 4);
	for (uint32_t k = 0; k < 4096; k++) {
		uint32_t v = k << 12 | (4095 - k);
		char want[4] = { abc[v >> 18], abc[v >> 12 & 63], abc[v >> 6 & 63], abc[v & 63] };

		assert_memory_equal(enc + k * 4, want, 4);
	}
}

/* The group encoder reads ahead only within avail, and gives the same text
 * whatever it may read (vector steps or pair lookups), at every length and
 * offset. */
static void test_groups_read_ahead(void **state)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t in[96];
	char out[128], want[128];

	(void)state;
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= 60; n += 3) {
		for (size_t avail = n; avail <= n + 20 && avail <= sizeof in; avail++) {
			/* a heap copy of exactly avail octets: ASan sees any read past it */
			uint8_t *exact = malloc(avail ? avail : 1);

			assert_non_null(exact);
			memcpy(exact, in, avail);
			memset(out, '#', sizeof out);
			sc_b64_encode_groups(exact, n, avail, out);
			for (size_t g = 0; g < n / 3; g++) {
				uint32_t v = (uint32_t)in[g * 3] << 16 | (uint32_t)in[g * 3 + 1] << 8 |
					     in[g * 3 + 2];

				want[g * 4] = abc[v >> 18];
				want[g * 4 + 1] = abc[v >> 12 & 63];
				want[g * 4 + 2] = abc[v >> 6 & 63];
				want[g * 4 + 3] = abc[v & 63];
			}
			assert_memory_equal(out, want, n / 3 * 4);
			assert_int_equal(out[n / 3 * 4], '#'); /* nothing past the text */
			free(exact);
		}
	}
}

static void test_refusals(void **state)
{
	static const char *bad[] = {
		"Zg=", "Zg", "Z===", "Zm9v=Zm9", "Zh==", "Zm9=", "Zm 9v", "Zm9v\n", "Zm-v",
		"Zm_v", "=Zm9", "Zg==Zg==", "Zm9\x80",
	};
	uint8_t out[16];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (sc_base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n) !=
		    SC_ERR_ENCODING)
			fail_msg("accepted \"%s\"", bad[i]);
	/* embedded NUL */
	assert_int_equal(sc_base64_decode("Zm\0v", 4, out, sizeof out, &n), SC_ERR_ENCODING);
}

static void test_limits(void **state)
{
	char enc[8];
	uint8_t out[2];
	size_t n;

	(void)state;
	/* "foo" needs 4 characters plus the NUL */
	assert_int_equal(sc_base64_encode("foo", 3, enc, 4, &n), SC_ERR_TOO_LONG);
	assert_int_equal(sc_base64_encode("foo", 3, enc, 5, &n), SC_OK);
	assert_int_equal(sc_base64_decode("Zm9v", 4, out, sizeof out, &n), SC_ERR_TOO_LONG);
	assert_int_equal(sc_base64_decode("Zm8=", 4, out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(sc_base64_encode(NULL, 1, enc, sizeof enc, &n), SC_ERR_ARG);
	assert_int_equal(sc_base64_decode("Zm8=", 4, out, sizeof out, NULL), SC_ERR_ARG);
	assert_int_equal(sc_base64_value('A'), 0);
	assert_int_equal(sc_base64_value('/'), 63);
	assert_int_equal(sc_base64_value('='), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_all_bytes_round_trip),
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_groups_read_ahead),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
