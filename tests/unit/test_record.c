/*
 * test_record.c - the repository's binary record (lib/record.c): round trips,
 * zero-copy decoding, and rejection of every truncation, trailing bytes, unknown
 * versions and flags, and oversized counts and lengths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "record.h"

static uint8_t der_a[300], der_b[70], issuer[40], serial[20];

/* An entry with distinct byte patterns everywhere, so mix-ups show. */
static void make_entry(struct sc_repo_entry *e, size_t n_der)
{
	memset(e, 0, sizeof *e);
	for (size_t i = 0; i < sizeof der_a; i++)
		der_a[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof der_b; i++)
		der_b[i] = (uint8_t)(0xa0 ^ i);
	for (size_t i = 0; i < sizeof issuer; i++)
		issuer[i] = (uint8_t)(0x30 + i);
	for (size_t i = 0; i < sizeof serial; i++)
		serial[i] = (uint8_t)(0x80 | i);
	e->n_der = n_der;
	for (size_t i = 0; i < n_der; i++) {
		e->der[i] = i % 2 ? der_b : der_a;
		e->der_len[i] = i % 2 ? sizeof der_b : sizeof der_a;
	}
	e->not_before = 1700000000;
	e->not_after = 1800000000;
	e->added = -5;
	for (int i = 0; i < 32; i++)
		e->fingerprint[i] = (uint8_t)(255 - i);
	e->issuer = issuer;
	e->issuer_len = sizeof issuer;
	e->serial = serial;
	e->serial_len = sizeof serial;
}

static uint8_t *encode(const struct sc_repo_entry *e, size_t *len)
{
	size_t size = sc_record_size(e);
	uint8_t *buf;

	assert_true(size > 0);
	buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(sc_record_encode(e, buf, size, len), SC_OK);
	assert_int_equal(*len, size);
	return buf;
}

/* Offset of the n_der byte in a record of make_entry(). */
static size_t n_der_offset(void)
{
	return SC_RECORD_HEADER_LEN + 2 + sizeof issuer + 2 + sizeof serial;
}

static void test_round_trip(void **state)
{
	for (size_t n = 1; n <= SC_CHAIN_MAX; n++) {
		struct sc_repo_entry in, out;
		size_t len;
		uint8_t *buf;

		make_entry(&in, n);
		buf = encode(&in, &len);
		memset(&out, 0xee, sizeof out);
		out.key = "kept";
		assert_int_equal(sc_record_decode(buf, len, &out), SC_OK);
		assert_string_equal(out.key, "kept"); /* the key is not in the record */
		assert_int_equal(out.n_der, n);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(out.der_len[i], in.der_len[i]);
			assert_memory_equal(out.der[i], in.der[i], in.der_len[i]);
			/* zero copy: the view points into the record itself */
			assert_true(out.der[i] > buf && out.der[i] + out.der_len[i] <= buf + len);
		}
		assert_true(out.not_before == in.not_before);
		assert_true(out.not_after == in.not_after);
		assert_true(out.added == -5);
		assert_memory_equal(out.fingerprint, in.fingerprint, 32);
		assert_int_equal(out.issuer_len, sizeof issuer);
		assert_memory_equal(out.issuer, issuer, sizeof issuer);
		assert_true(out.issuer > buf && out.issuer < buf + len);
		assert_int_equal(out.serial_len, sizeof serial);
		assert_memory_equal(out.serial, serial, sizeof serial);
		free(buf);
	}
}

static void test_extreme_times(void **state)
{
	struct sc_repo_entry in, out;
	size_t len;
	uint8_t *buf;

	make_entry(&in, 1);
	in.not_before = INT64_MIN;
	in.not_after = INT64_MAX;
	in.added = 0;
	buf = encode(&in, &len);
	/* big-endian: INT64_MIN is 0x80 then zeros */
	assert_int_equal(buf[12], 0x80);
	assert_int_equal(sc_record_decode(buf, len, &out), SC_OK);
	assert_true(out.not_before == INT64_MIN);
	assert_true(out.not_after == INT64_MAX);
	assert_true(out.added == 0);
	free(buf);
}

static void test_layout_is_big_endian(void **state)
{
	struct sc_repo_entry in;
	size_t len, off;
	uint8_t *buf;

	make_entry(&in, 1);
	in.not_before = 0x0102030405060708LL;
	buf = encode(&in, &len);
	assert_int_equal(buf[0], SC_RECORD_MAGIC);
	assert_int_equal(buf[1], SC_RECORD_VERSION);
	assert_int_equal(buf[2] | buf[3], 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(buf[12 + i], i + 1);
	off = n_der_offset();
	assert_int_equal(buf[off], 1);
	/* u32 length of the 300-byte certificate */
	assert_int_equal(buf[off + 1], 0);
	assert_int_equal(buf[off + 2], 0);
	assert_int_equal(buf[off + 3], 1);
	assert_int_equal(buf[off + 4], 300 - 256);
	free(buf);
}

static void test_every_truncation(void **state)
{
	struct sc_repo_entry in, out;
	size_t len;
	uint8_t *buf;

	make_entry(&in, 3);
	buf = encode(&in, &len);
	for (size_t cut = 0; cut < len; cut++) {
		/* a fresh copy of exactly cut bytes, so ASan catches any over-read */
		uint8_t *t = malloc(cut ? cut : 1);

		assert_non_null(t);
		memcpy(t, buf, cut);
		assert_int_not_equal(sc_record_decode(t, cut, &out), SC_OK);
		free(t);
	}
	assert_int_equal(sc_record_decode(NULL, 0, &out), SC_ERR_SYNTAX);
	free(buf);
}

static void test_trailing_bytes(void **state)
{
	struct sc_repo_entry in, out;
	size_t len;
	uint8_t *buf, *t;

	make_entry(&in, 2);
	buf = encode(&in, &len);
	t = malloc(len + 1);
	assert_non_null(t);
	memcpy(t, buf, len);
	t[len] = 0;
	assert_int_equal(sc_record_decode(t, len + 1, &out), SC_ERR_SYNTAX);
	free(t);
	free(buf);
}

static void test_bad_header(void **state)
{
	struct sc_repo_entry in, out;
	size_t len;
	uint8_t *buf;

	make_entry(&in, 1);
	buf = encode(&in, &len);
	buf[0] ^= 1;
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	buf[0] ^= 1;
	buf[1] = SC_RECORD_VERSION + 1;
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_UNSUPPORTED);
	buf[1] = 0;
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_UNSUPPORTED);
	buf[1] = SC_RECORD_VERSION;
	buf[3] = 1; /* reserved flag */
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_UNSUPPORTED);
	buf[3] = 0;
	assert_int_equal(sc_record_decode(buf, len, &out), SC_OK);
	free(buf);
}

static void test_bad_counts(void **state)
{
	struct sc_repo_entry in, out;
	size_t len, off = n_der_offset();
	uint8_t *buf;

	make_entry(&in, 1);
	buf = encode(&in, &len);
	buf[off] = 0;
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	buf[off] = SC_CHAIN_MAX + 1;
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_TOO_MANY);
	buf[off] = 255;
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_TOO_MANY);
	buf[off] = 2; /* claims a second certificate that is not there */
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	buf[off] = 1;

	/* certificate length: 0, over the limit, and 4 GiB - 1 */
	memset(buf + off + 1, 0, 4);
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	buf[off + 2] = 0x01;
	buf[off + 4] = 0x01; /* 65537 > SC_CERT_INPUT_MAX */
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_TOO_LONG);
	memset(buf + off + 1, 0xff, 4);
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_TOO_LONG);
	buf[off + 1] = 0;
	buf[off + 2] = 0;
	buf[off + 3] = 1;
	buf[off + 4] = 45; /* 301: one byte past the end */
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	free(buf);
}

static void test_bad_fields(void **state)
{
	struct sc_repo_entry in, out;
	size_t len, ioff = SC_RECORD_HEADER_LEN;
	uint8_t *buf;

	make_entry(&in, 1);
	buf = encode(&in, &len);
	buf[ioff] = 0;
	buf[ioff + 1] = 0; /* empty issuer */
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	buf[ioff] = 0xff;
	buf[ioff + 1] = 0xff; /* issuer longer than the record */
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	buf[ioff] = 0;
	buf[ioff + 1] = sizeof issuer;
	buf[ioff + 2 + sizeof issuer + 1] = 0; /* empty serial */
	assert_int_equal(sc_record_decode(buf, len, &out), SC_ERR_SYNTAX);
	free(buf);
}

static void test_encode_errors(void **state)
{
	struct sc_repo_entry e;
	uint8_t small[16];
	size_t len = 99;

	make_entry(&e, 1);
	assert_int_equal(sc_record_encode(&e, small, sizeof small, &len), SC_ERR_TOO_LONG);
	assert_int_equal(len, 99);
	e.n_der = 0;
	assert_int_equal(sc_record_size(&e), 0);
	assert_int_equal(sc_record_encode(&e, small, sizeof small, NULL), SC_ERR_ARG);
	e.n_der = SC_CHAIN_MAX + 1;
	assert_int_equal(sc_record_encode(&e, small, sizeof small, NULL), SC_ERR_ARG);
	make_entry(&e, 1);
	e.der_len[0] = 0;
	assert_int_equal(sc_record_size(&e), 0);
	e.der_len[0] = SC_CERT_INPUT_MAX + 1;
	assert_int_equal(sc_record_size(&e), 0);
	make_entry(&e, 1);
	e.issuer_len = 0x10000;
	assert_int_equal(sc_record_size(&e), 0);
	make_entry(&e, 1);
	e.serial = NULL;
	assert_int_equal(sc_record_encode(&e, small, sizeof small, NULL), SC_ERR_ARG);
	assert_int_equal(sc_record_encode(NULL, small, sizeof small, NULL), SC_ERR_ARG);
	assert_int_equal(sc_record_size(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_extreme_times),
		cmocka_unit_test(test_layout_is_big_endian),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_bad_counts),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_encode_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
