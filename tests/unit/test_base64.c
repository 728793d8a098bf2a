/*
 * test_base64.c - RFC 4648 section 10 vectors and every refusal of the strict
 * decoder. The encoding tests run once per group encoder this CPU has
 * (sc_b64_use()): each must give the same text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include <smtpcert/smtpcert.h>

#include "base64_int.h"

static const struct {
	enum sc_b64_path path;
	const char *name;
} paths[] = {
	{ SC_B64_PAIRS, "pairs" },
	{ SC_B64_SSSE3, "ssse3" },
	{ SC_B64_VBMI, "avx512vbmi" },
	{ SC_B64_BEST, "best" },
};

/* Run @p fn under every encoder this CPU has; the pairs one is everywhere. */
static void each_path(void (*fn)(void))
{
	int ran = 0;

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		if (!sc_b64_use(paths[i].path)) {
			print_message("base64: no %s encoder on this CPU, not tested\n",
				      paths[i].name);
			continue;
		}
		fn();
		ran++;
	}
	assert_int_equal(sc_b64_use(SC_B64_BEST), 1);
	assert_true(ran >= 2);
}

static const struct { const char *plain, *enc; } vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void vectors_once(void)
{
	char enc[32];
	uint8_t dec[32];
	size_t n;

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

static void test_vectors(void **state)
{
	(void)state;
	each_path(vectors_once);
}

static void round_trip_once(void)
{
	uint8_t in[256], out[256];
	char enc[SC_BASE64_LEN(256) + 1];
	size_t n, m;

	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)i;
	for (size_t len = 0; len <= sizeof in; len++) {
		assert_int_equal(sc_base64_encode(in, len, enc, sizeof enc, &n), SC_OK);
		assert_int_equal(sc_base64_decode(enc, n, out, sizeof out, &m), SC_OK);
		assert_int_equal(m, len);
		assert_memory_equal(out, in, len);
	}
}

static void test_all_bytes_round_trip(void **state)
{
	(void)state;
	each_path(round_trip_once);
}

/* Every 12-bit half of a group, in both positions, against a character-at-a-time
 * encoder (the encoder looks pairs up in a table built by the preprocessor). */
static void every_pair_once(void)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static uint8_t in[4096 * 3];
	static char enc[SC_BASE64_LEN(sizeof in) + 1];
	size_t n;

	memset(enc, '#', sizeof enc);
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

static void test_every_pair(void **state)
{
	(void)state;
	each_path(every_pair_once);
}

/* The group encoder reads ahead only within avail, and gives the same text
 * whatever it may read (vector steps or pair lookups), at every length and
 * offset: up to three 48-octet steps and every remainder after them. */
static void read_ahead_once(void)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t in[192];
	char out[256], want[256];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *guard_end;

	assert_true(pages != MAP_FAILED);
	assert_int_equal(mprotect(pages + page, page, PROT_NONE), 0);
	guard_end = pages + page;
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= 159; n += 3) {
		for (size_t avail = n; avail <= n + 20 && avail <= sizeof in; avail++) {
			/* exactly avail octets, ending where an unreadable page
			 * begins: a vector load past them faults (ASan does not
			 * see inside the vector intrinsics) */
			uint8_t *exact = guard_end - avail;

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
		}
	}
	assert_int_equal(munmap(pages, 2 * page), 0);
}

static void test_groups_read_ahead(void **state)
{
	(void)state;
	each_path(read_ahead_once);
}

/* An unknown encoder is refused and changes nothing. */
static void test_use_refusal(void **state)
{
	char enc[8];
	size_t n;

	(void)state;
	assert_int_equal(sc_b64_use((enum sc_b64_path)99), 0);
	assert_int_equal(sc_base64_encode("foo", 3, enc, sizeof enc, &n), SC_OK);
	assert_string_equal(enc, "Zm9v");
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
		cmocka_unit_test(test_use_refusal),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
