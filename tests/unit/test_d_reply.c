/*
 * test_d_reply.c - daemon/reply.c: reply lines get CRLF, are cut at 512 octets
 * (RFC 5321 4.5.3.1.5), record code and RFC 3463 status of final lines only;
 * PEM replies are "250-" + 64-column lines that decode back to the DER, within
 * the size reply_pem_size() promises, for every length up to a few KiB; a reply
 * that does not fit marks the session out_failed instead of growing the buffer.
 * Constant lines (written straight into the buffer) give the same bytes, status
 * and failures as formatted ones; a released buffer that held a burst of CERT
 * answers is kept whole for the next one; an idle session holds no buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
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

/* reply() of a line that is not a literal: the constant path (no '%'). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-security"
static sc_status reply_text(struct session *s, const char *line)
{
	return reply(s, line);
}
#pragma GCC diagnostic pop

/* The constant path and the formatted one ("%s") agree on bytes and status. */
static void same_both_ways(const char *line, const char *want, int code, const char *status)
{
	struct session s;

	memset(&s, 0, sizeof s);
	reply_note(&s, 0, "-");
	assert_int_equal(reply_text(&s, line), SC_OK);
	assert_string_equal(text(&s), want);
	assert_int_equal(s.last_code, code);
	assert_string_equal(s.last_status, status);
	reply_note(&s, 0, "-");
	assert_int_equal(reply(&s, "%s", line), SC_OK);
	assert_string_equal(text(&s), want);
	assert_int_equal(s.last_code, code);
	assert_string_equal(s.last_status, status);
	sc_buf_free(s.out);
}

static void test_constant_lines(void **state)
{
	static char big[700], want[700];
	struct session s;

	same_both_ways("250 2.0.0 OK", "250 2.0.0 OK\r\n", 250, "2.0.0");
	same_both_ways("550 5.1.1 Certificate Not Found", "550 5.1.1 Certificate Not Found\r\n",
		       550, "5.1.1");
	same_both_ways("250 mx.test greets x", "250 mx.test greets x\r\n", 250, "-");
	/* the longest status kept is 11 octets; a longer one is no status */
	same_both_ways("250 12345678901 x", "250 12345678901 x\r\n", 250, "12345678901");
	same_both_ways("250 2.0.0.0.0.0.0 x", "250 2.0.0.0.0.0.0 x\r\n", 250, "-");
	same_both_ways("451 4.3.0", "451 4.3.0\r\n", 451, "4.3.0");
	same_both_ways("451 4.3", "451 4.3\r\n", 451, "-");
	same_both_ways("250", "250\r\n", 0, "-"); /* not a final line: nothing recorded */
	same_both_ways("", "\r\n", 0, "-");
	/* cut at 512 octets with its CRLF (RFC 5321 4.5.3.1.5) */
	memset(big, 'y', sizeof big - 1);
	memcpy(big, "250 2.0.0 ", 10);
	memcpy(want, big, SESSION_LINE_MAX - 2);
	memcpy(want + SESSION_LINE_MAX - 2, "\r\n", 3);
	same_both_ways(big, want, 250, "2.0.0");
	/* a '%' anywhere makes it a format: "%%" is one '%' */
	memset(&s, 0, sizeof s);
	assert_int_equal(reply(&s, "250 100%% sure"), SC_OK);
	assert_string_equal(text(&s), "250 100% sure\r\n");
	sc_buf_free(s.out);
}

/* A constant line that does not fit: nothing of it is queued, the session is
 * out_failed; one that fits exactly is queued whole. */
static void test_constant_line_room(void **state)
{
	static char fill[SESSION_OUT_MAX];
	struct session s;

	memset(&s, 0, sizeof s);
	memset(fill, 'a', sizeof fill);
	assert_int_equal(reply_room(&s), SESSION_OUT_MAX);
	assert_int_equal(sc_buf_append(s.out, fill, SESSION_OUT_MAX - 13), SC_OK);
	assert_int_equal(reply(&s, "250 2.0.0 OK"), SC_ERR_TOO_LONG);
	assert_true(s.out_failed);
	assert_int_equal(sc_buf_len(s.out), SESSION_OUT_MAX - 13);
	/* the line's status is recorded all the same, as before it was queued */
	assert_int_equal(s.last_code, 250);
	s.out_failed = 0;
	sc_buf_consume(s.out, 1);
	assert_int_equal(reply(&s, "250 2.0.0 OK"), SC_OK);
	assert_false(s.out_failed);
	assert_int_equal(sc_buf_len(s.out), SESSION_OUT_MAX);
	assert_memory_equal(sc_buf_data(s.out) + SESSION_OUT_MAX - 14, "250 2.0.0 OK\r\n", 14);
	sc_buf_free(s.out);
}

static void test_note(void **state)
{
	struct session s;

	memset(&s, 0, sizeof s);
	reply_note(&s, 550, "5.1.1");
	assert_int_equal(s.last_code, 550);
	assert_string_equal(s.last_status, "5.1.1");
	reply_note(&s, 0, "-");
	assert_int_equal(s.last_code, 0);
	assert_string_equal(s.last_status, "-");
	reply_note(&s, 250, "-x");
	assert_string_equal(s.last_status, "-x");
	reply_note(&s, 1, "2.0.0.0.0.0.0.0");
	assert_string_equal(s.last_status, "2.0.0.0.0.0");
	reply_note(&s, 2, NULL);
	assert_int_equal(s.last_code, 2);
	assert_string_equal(s.last_status, "-");
}

/* The answers to 16 pipelined CERTs (~30 KB) fit the spare a session gets
 * back: it is not cut to 16 KiB at release and grown again at the next burst.
 * Anything over 64 KiB is given back; a drained session holds no buffer. */
static void test_spare_keeps_a_burst(void **state)
{
	static char burst[100 * 1024];
	struct session s;
	const char *mem;

	memset(burst, 'b', sizeof burst);
	memset(&s, 0, sizeof s);
	reply_spares_free();
	assert_int_equal(reply_room(&s), SESSION_OUT_MAX);
	assert_int_equal(sc_buf_append(s.out, burst, 30 * 1024), SC_OK);
	mem = sc_buf_data(s.out);
	assert_true(malloc_usable_size((void *)mem) >= 30 * 1024);
	sc_buf_clear(s.out);
	reply_release(&s);
	assert_null(s.out);
	/* the next session's buffer is that one, still holding 30 KiB */
	assert_int_equal(reply(&s, "250 2.0.0 OK"), SC_OK);
	assert_ptr_equal(sc_buf_data(s.out), mem);
	assert_true(malloc_usable_size((void *)sc_buf_data(s.out)) >= 30 * 1024);
	assert_string_equal(text(&s), "250 2.0.0 OK\r\n");
	/* a bigger one is cut to 64 KiB when released */
	assert_int_equal(sc_buf_append(s.out, burst, sizeof burst), SC_OK);
	sc_buf_clear(s.out);
	reply_release(&s);
	assert_null(s.out);
	assert_int_equal(reply_room(&s), SESSION_OUT_MAX);
	assert_true(malloc_usable_size((void *)sc_buf_data(s.out)) < 64 * 1024 + 64);
	assert_true(malloc_usable_size((void *)sc_buf_data(s.out)) >= 64 * 1024);
	reply_release(&s);
	reply_spares_free();
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
		cmocka_unit_test(test_constant_lines),
		cmocka_unit_test(test_constant_line_room),
		cmocka_unit_test(test_note),
		cmocka_unit_test(test_spare_keeps_a_burst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
