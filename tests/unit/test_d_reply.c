/*
 * test_d_reply.c - daemon/reply.c: reply lines get CRLF, are cut at 512 octets
 * (RFC 5321 4.5.3.1.5), record code and RFC 3463 status of final lines only;
 * PEM replies are "250-" + 64-column lines that decode back to the DER, within
 * the size reply_pem_size() promises, for every length up to a few KiB; a reply
 * that does not fit marks the session out_failed instead of growing the buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "reply.h"
#include "session.h"

static const char *text(struct session *s)
{
	static char buf[SESSION_OUT_MAX + 1];
	size_t n = session_out_len(s);

	memcpy(buf, n ? sc_buf_data(s->out) : "", n);
	buf[n] = '\0';
	if (s->out)
		sc_buf_clear(s->out);
	return buf;
}

static void test_lines_and_status(void **state)
{
	struct session s;

	memset(&s, 0, sizeof s);
	assert_int_equal(reply(&s, "250 2.0.0 OK"), SC_OK);
	assert_string_equal(text(&s), "250 2.0.0 OK\r\n");
	assert_int_equal(s.last_code, 250);
	assert_string_equal(s.last_status, "2.0.0");
	/* continuation lines do not change the recorded result */
	assert_int_equal(reply(&s, "214-help %d", 1), SC_OK);
	assert_int_equal(s.last_code, 250);
	assert_int_equal(reply(&s, "550 5.1.1 Certificate Not Found"), SC_OK);
	assert_int_equal(s.last_code, 550);
	assert_string_equal(s.last_status, "5.1.1");
	/* no enhanced code: status "-" */
	assert_int_equal(reply(&s, "250 mx.test greets x"), SC_OK);
	assert_int_equal(s.last_code, 250);
	assert_string_equal(s.last_status, "-");
	assert_int_equal(reply(&s, "221 2.0.0x"), SC_OK);
	assert_string_equal(s.last_status, "-");
	assert_int_equal(reply(&s, "421 4.7.0 mx Too many errors"), SC_OK);
	assert_int_equal(s.last_code, 421);
	assert_string_equal(s.last_status, "4.7.0");
	text(&s);
	reply_note(&s, 0, NULL);
	assert_string_equal(s.last_status, "-");
	sc_buf_free(s.out);
}

static void test_truncated_at_512(void **state)
{
	struct session s;
	char big[2000];
	const char *t;

	memset(&s, 0, sizeof s);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(reply(&s, "250 %s", big), SC_OK);
	t = text(&s);
	assert_int_equal(strlen(t), SESSION_LINE_MAX);
	assert_string_equal(t + SESSION_LINE_MAX - 2, "\r\n");
	assert_int_equal(reply(&s, "%s", ""), SC_OK); /* degenerate: just CRLF */
	assert_string_equal(text(&s), "\r\n");
	sc_buf_free(s.out);
}

struct one {
	uint8_t der[8192];
	size_t len;
	int n;
};

static sc_status grab(void *arg, const char *label, const uint8_t *der, size_t len)
{
	struct one *o = arg;

	assert_string_equal(label, "CERTIFICATE");
	memcpy(o->der, der, len);
	o->len = len;
	o->n++;
	return SC_OK;
}

static void test_pem_roundtrip_and_size(void **state)
{
	static uint8_t der[5000];
	static char pem[16384];
	struct session s;

	for (size_t i = 0; i < sizeof der; i++)
		der[i] = (uint8_t)(i * 7 + 3);
	memset(&s, 0, sizeof s);
	for (size_t len = 1; len <= sizeof der; len += (len < 200 ? 1 : 97)) {
		struct one o = { .n = 0 };
		const char *t, *p;
		size_t n = 0, o_len = 0;

		assert_int_equal(reply_pem(&s, der, len), SC_OK);
		t = text(&s);
		assert_true(strlen(t) <= reply_pem_size(len));
		assert_true(strncmp(t, "250------BEGIN CERTIFICATE-----\r\n", 33) == 0);
		/* strip "250-" and CRLF; every line at most 64 columns */
		for (p = t; *p; n++) {
			const char *eol = strstr(p, "\r\n");

			assert_non_null(eol);
			assert_true(strncmp(p, "250-", 4) == 0);
			assert_true(eol - p - 4 <= 64);
			memcpy(pem + o_len, p + 4, (size_t)(eol - p - 4));
			o_len += (size_t)(eol - p - 4);
			pem[o_len++] = '\n';
			p = eol + 2;
		}
		assert_int_equal(sc_pem_decode(pem, o_len, sizeof o.der, 2, grab, &o, NULL), SC_OK);
		assert_int_equal(o.n, 1);
		assert_int_equal(o.len, len);
		assert_memory_equal(o.der, der, len);
	}
	sc_buf_free(s.out);
}

static void test_overflow_marks_failed(void **state)
{
	struct session s;
	static char fill[SESSION_OUT_MAX];
	static uint8_t der[4000];

	memset(&s, 0, sizeof s);
	assert_int_equal(reply_room(&s), SESSION_OUT_MAX);
	/* fill the buffer to within a few bytes of its maximum */
	memset(fill, 'a', sizeof fill);
	assert_int_equal(sc_buf_append(s.out, fill, SESSION_OUT_MAX - 10), SC_OK);
	assert_int_equal(reply_room(&s), 10);
	assert_false(s.out_failed);
	assert_int_not_equal(reply(&s, "250 2.0.0 OK"), SC_OK);
	assert_true(s.out_failed);
	s.out_failed = 0;
	assert_int_not_equal(reply_pem(&s, der, sizeof der), SC_OK);
	assert_true(s.out_failed);
	assert_true(sc_buf_len(s.out) <= SESSION_OUT_MAX);
	sc_buf_free(s.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_and_status),
		cmocka_unit_test(test_truncated_at_512),
		cmocka_unit_test(test_pem_roundtrip_and_size),
		cmocka_unit_test(test_overflow_marks_failed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
