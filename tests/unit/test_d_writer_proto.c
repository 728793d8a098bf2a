/*
 * test_d_writer_proto.c - daemon/writer_proto.c: round trips of every message
 * type, and the refusals that keep a compromised network process from
 * confusing the writer: truncated headers and payloads, a length past the end,
 * a header length that disagrees with the datagram, oversized messages and
 * fields, another version, bad magic, a request decoded as another type,
 * trailing octets, embedded NUL in strings, ids that are not the queue's form
 * and an error reply that claims success.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "writer_proto.h"

#define ID "0123456789abcdef0123456789abcdef"

static uint8_t buf[WP_MSG_MAX + 64];

static void set_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static struct wp_submit sample_submit(void)
{
	static const uint8_t der[] = { 0x30, 0x03, 0x02, 0x01, 0x00, 0x00, 0x30 };
	struct wp_submit s;

	memset(&s, 0, sizeof s);
	s.chain = der; /* a blob may hold NUL octets */
	s.chain_len = sizeof der;
	snprintf(s.address, sizeof s.address, "alice@example.org");
	snprintf(s.auth_user, sizeof s.auth_user, "alice@example.org");
	snprintf(s.client, sizeof s.client, "192.0.2.1:4711");
	return s;
}

static void test_submit_round_trip(void **state)
{
	struct wp_submit in = sample_submit(), out;
	struct wp_msg m;
	size_t len;

	(void)state;
	assert_int_equal(wp_encode_submit(buf, sizeof buf, 7, &in, &len), SC_OK);
	assert_memory_equal(buf, "SCWP\0\1\0\1\0\0\0\7", 12);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(m.type, WP_SUBMIT);
	assert_int_equal(m.seq, 7);
	assert_int_equal(m.len, len - WP_HDR_LEN);
	assert_int_equal(wp_decode_submit(&m, &out), SC_OK);
	assert_int_equal(out.chain_len, in.chain_len);
	assert_memory_equal(out.chain, in.chain, in.chain_len);
	assert_string_equal(out.address, "alice@example.org");
	assert_string_equal(out.auth_user, "alice@example.org");
	assert_string_equal(out.client, "192.0.2.1:4711");
}

static void test_store_round_trip(void **state)
{
	char id[SC_QUEUE_ID_LEN + 1];
	struct wp_msg m;
	size_t len;

	(void)state;
	assert_int_equal(wp_encode_store(buf, sizeof buf, 1, ID, &len), SC_OK);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_store(&m, id), SC_OK);
	assert_string_equal(id, ID);
	/* only the queue's id form is ever encoded */
	assert_int_equal(wp_encode_store(buf, sizeof buf, 1, "../../etc/passwd", &len),
			 SC_ERR_SYNTAX);
	assert_int_equal(wp_encode_store(buf, sizeof buf, 1, "0123456789ABCDEF0123456789ABCDEF",
					 &len), SC_ERR_SYNTAX);
}

static void test_sub_round_trip(void **state)
{
	struct sc_submission in, out;
	struct wp_msg m;
	size_t len;

	(void)state;
	memset(&in, 0, sizeof in);
	snprintf(in.id, sizeof in.id, "%s", ID);
	in.state = SC_SUB_ACCEPTED;
	snprintf(in.address, sizeof in.address, "bob@example.org");
	snprintf(in.auth_user, sizeof in.auth_user, "admin@example.org");
	snprintf(in.client, sizeof in.client, "[2001:db8::1]:25");
	in.received = 1700000000;
	in.decided = 1700000001;
	memset(in.fingerprint, 'a', 64);
	snprintf(in.subject, sizeof in.subject, "CN=Bob, O=\xc3\xa9xample");
	snprintf(in.issuer, sizeof in.issuer, "CN=CA");
	in.not_before = -1; /* before 1970 survives the u64 */
	in.not_after = 4102444800;
	assert_int_equal(wp_encode_sub(buf, sizeof buf, 99, &in, &len), SC_OK);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(m.seq, 99);
	assert_int_equal(wp_decode_sub(&m, &out), SC_OK);
	assert_string_equal(out.id, ID);
	assert_int_equal(out.state, SC_SUB_ACCEPTED);
	assert_string_equal(out.address, "bob@example.org");
	assert_string_equal(out.auth_user, "admin@example.org");
	assert_string_equal(out.client, "[2001:db8::1]:25");
	assert_true(out.received == 1700000000 && out.decided == 1700000001);
	assert_string_equal(out.fingerprint, in.fingerprint);
	assert_string_equal(out.subject, in.subject);
	assert_string_equal(out.issuer, "CN=CA");
	assert_true(out.not_before == -1 && out.not_after == 4102444800);
	assert_string_equal(out.reason, "");
}

static void test_err_round_trip(void **state)
{
	char msg[WP_ERRMSG_MAX], long_msg[1000];
	struct wp_msg m;
	sc_status st;
	size_t len;

	(void)state;
	assert_int_equal(wp_encode_err(buf, sizeof buf, 3, SC_ERR_IO, "disk full", &len), SC_OK);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_err(&m, &st, msg, sizeof msg), SC_OK);
	assert_int_equal(st, SC_ERR_IO);
	assert_string_equal(msg, "disk full");
	/* long messages are cut, small destinations get a prefix */
	memset(long_msg, 'x', sizeof long_msg - 1);
	long_msg[sizeof long_msg - 1] = '\0';
	assert_int_equal(wp_encode_err(buf, sizeof buf, 3, SC_ERR_IO, long_msg, &len), SC_OK);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_err(&m, &st, msg, 5), SC_OK);
	assert_string_equal(msg, "xxxx");
	/* an "error" that says OK would become a 250 */
	assert_int_equal(wp_encode_err(buf, sizeof buf, 3, SC_OK, "", &len), SC_OK);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_err(&m, &st, msg, sizeof msg), SC_ERR_SYNTAX);
}

static void test_header_refusals(void **state)
{
	struct wp_submit in = sample_submit();
	struct wp_msg m;
	size_t len;

	(void)state;
	assert_int_equal(wp_encode_submit(buf, sizeof buf, 1, &in, &len), SC_OK);
	/* truncated: every prefix of the datagram is refused */
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(wp_header_decode(buf, n, &m), SC_OK);
	/* longer than the header says */
	assert_int_equal(wp_header_decode(buf, len + 1, &m), SC_ERR_SYNTAX);
	/* bad magic */
	buf[0] = 'X';
	assert_int_equal(wp_header_decode(buf, len, &m), SC_ERR_SYNTAX);
	buf[0] = 'S';
	/* another version: refused, but type and seq are known for the reply */
	buf[5] = 2;
	assert_int_equal(wp_header_decode(buf, len, &m), SC_ERR_UNSUPPORTED);
	assert_int_equal(m.type, WP_SUBMIT);
	assert_int_equal(m.seq, 1);
	buf[5] = 1;
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	/* oversized datagram */
	memset(buf + WP_HDR_LEN, 0, WP_PAYLOAD_MAX + 1);
	set_be32(buf + 12, WP_PAYLOAD_MAX + 1);
	assert_int_equal(wp_header_decode(buf, WP_MSG_MAX + 1, &m), SC_ERR_TOO_LONG);
	/* the largest one passes the header check */
	set_be32(buf + 12, WP_PAYLOAD_MAX);
	assert_int_equal(wp_header_decode(buf, WP_MSG_MAX, &m), SC_OK);
	assert_int_equal(wp_header_decode(NULL, 0, &m), SC_ERR_SYNTAX);
}

static void test_wrong_type(void **state)
{
	struct wp_submit in = sample_submit(), s;
	struct sc_submission sub;
	char id[SC_QUEUE_ID_LEN + 1], msg[64];
	struct wp_msg m;
	sc_status st;
	size_t len;

	(void)state;
	assert_int_equal(wp_encode_submit(buf, sizeof buf, 1, &in, &len), SC_OK);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_store(&m, id), SC_ERR_PROTOCOL);
	assert_int_equal(wp_decode_sub(&m, &sub), SC_ERR_PROTOCOL);
	assert_int_equal(wp_decode_err(&m, &st, msg, sizeof msg), SC_ERR_PROTOCOL);
	/* an unknown type number decodes as nothing */
	buf[7] = 0x42;
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(m.type, 0x42);
	assert_int_equal(wp_decode_submit(&m, &s), SC_ERR_PROTOCOL);
}

/* A hand-made SUBMIT payload: fields given as (length, bytes) pairs. */
static size_t make_submit(uint8_t *p, const uint32_t *lens, const char *const *vals, int n,
			  size_t extra)
{
	size_t o = WP_HDR_LEN;

	memcpy(p, "SCWP\0\1\0\1\0\0\0\1", 12);
	for (int i = 0; i < n; i++) {
		size_t have = vals[i] ? strlen(vals[i]) : 0;

		set_be32(p + o, lens[i]);
		o += 4;
		memcpy(p + o, vals[i] ? vals[i] : "", have);
		o += have;
	}
	memset(p + o, 'z', extra);
	o += extra;
	set_be32(p + 12, (uint32_t)(o - WP_HDR_LEN));
	return o;
}

static void test_payload_refusals(void **state)
{
	static const char *const vals[] = { "0\x03\x02", "a@example.org", "u", "c" };
	uint32_t lens[] = { 3, 13, 1, 1 };
	struct wp_submit s;
	struct wp_msg m;
	size_t len;

	(void)state;
	len = make_submit(buf, lens, vals, 4, 0);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &s), SC_OK);
	assert_string_equal(s.address, "a@example.org");
	/* trailing octets */
	len = make_submit(buf, lens, vals, 4, 1);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &s), SC_ERR_SYNTAX);
	/* a field missing (payload truncated at a field boundary) */
	len = make_submit(buf, lens, vals, 3, 0);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &s), SC_ERR_SYNTAX);
	/* truncated inside a length */
	len = make_submit(buf, lens, vals, 3, 2);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &s), SC_ERR_SYNTAX);
	/* a length past the end of the datagram */
	lens[3] = 0xffffffffu;
	len = make_submit(buf, lens, vals, 4, 0);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &s), SC_ERR_SYNTAX);
	assert_string_equal(s.client, "");
	lens[3] = 2;
	len = make_submit(buf, lens, vals, 4, 0);
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &s), SC_ERR_SYNTAX);
	lens[3] = 1;
	/* an empty chain or address is not a request */
	lens[0] = 0;
	{
		static const char *const v2[] = { "", "a@example.org", "u", "c" };

		len = make_submit(buf, lens, v2, 4, 0);
	}
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &s), SC_ERR_SYNTAX);
	lens[0] = 3;
}

static void test_embedded_nul_and_caps(void **state)
{
	struct wp_submit in = sample_submit(), out;
	struct wp_msg m;
	size_t len, at;

	(void)state;
	assert_int_equal(wp_encode_submit(buf, sizeof buf, 1, &in, &len), SC_OK);
	/* put a NUL into the address field: "alice@exa\0ple.org" */
	at = WP_HDR_LEN + 4 + in.chain_len + 4 + 9;
	assert_int_equal(buf[at], 'm');
	buf[at] = '\0';
	assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
	assert_int_equal(wp_decode_submit(&m, &out), SC_ERR_SYNTAX);
	/* client is capped at 63 octets: 64 are refused on decode ... */
	{
		static char client[65];
		const char *vals[] = { "0\x03\x02", "a@example.org", "u", client };
		uint32_t lens[] = { 3, 13, 1, 64 };

		memset(client, 'c', 64);
		len = make_submit(buf, lens, vals, 4, 0);
		assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
		assert_int_equal(wp_decode_submit(&m, &out), SC_ERR_TOO_LONG);
		client[63] = '\0';
		lens[3] = 63;
		len = make_submit(buf, lens, vals, 4, 0);
		assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
		assert_int_equal(wp_decode_submit(&m, &out), SC_OK);
		assert_int_equal(strlen(out.client), 63);
	}
	/* ... and a reply's state must be one the queue knows */
	{
		struct sc_submission sub, back;

		memset(&sub, 0, sizeof sub);
		snprintf(sub.id, sizeof sub.id, "%s", ID);
		assert_int_equal(wp_encode_sub(buf, sizeof buf, 1, &sub, &len), SC_OK);
		assert_int_equal(wp_header_decode(buf, len, &m), SC_OK);
		assert_int_equal(wp_decode_sub(&m, &back), SC_OK);
		/* state out of range */
		buf[WP_HDR_LEN + 4 + 32 + 3] = 7;
		assert_int_equal(wp_decode_sub(&m, &back), SC_ERR_SYNTAX);
	}
}

static void test_encoder_bounds(void **state)
{
	struct wp_submit in = sample_submit();
	uint8_t *large = malloc(WP_PAYLOAD_MAX + 1);
	size_t len;

	(void)state;
	assert_non_null(large);
	/* too small a buffer */
	assert_int_equal(wp_encode_submit(buf, 20, 1, &in, &len), SC_ERR_TOO_LONG);
	assert_int_equal(wp_encode_submit(buf, 4, 1, &in, &len), SC_ERR_TOO_LONG);
	/* a chain that cannot fit one message */
	memset(large, 0x30, WP_PAYLOAD_MAX + 1);
	in.chain = large;
	in.chain_len = WP_PAYLOAD_MAX + 1;
	assert_int_equal(wp_encode_submit(buf, sizeof buf, 1, &in, &len), SC_ERR_TOO_LONG);
	in.chain_len = WP_PAYLOAD_MAX - 100;
	assert_int_equal(wp_encode_submit(buf, sizeof buf, 1, &in, &len), SC_OK);
	assert_true(len <= WP_MSG_MAX);
	free(large);
	/* missing arguments */
	assert_int_equal(wp_encode_submit(buf, sizeof buf, 1, NULL, &len), SC_ERR_ARG);
	assert_int_equal(wp_encode_store(buf, sizeof buf, 1, NULL, &len), SC_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_round_trip),
		cmocka_unit_test(test_store_round_trip),
		cmocka_unit_test(test_sub_round_trip),
		cmocka_unit_test(test_err_round_trip),
		cmocka_unit_test(test_header_refusals),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_payload_refusals),
		cmocka_unit_test(test_embedded_nul_and_caps),
		cmocka_unit_test(test_encoder_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
