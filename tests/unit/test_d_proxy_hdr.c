/*
 * test_d_proxy_hdr.c - daemon/proxy_hdr.c and daemon/proxy_data.c, the pure
 * parts of proxy mode: RFC 3461 xtext; XCLIENT lines (attribute selection by
 * what the backend offers, odd HELO names escaped, 512-octet lines, LOGIN
 * alone, over-long values as [UNAVAILABLE]); the PROXY v2 header byte for
 * byte for IPv4, IPv6, IPv4-mapped and LOCAL against hand-computed vectors;
 * the EHLO merge (backend STARTTLS/AUTH/XCLIENT never passed on); backend
 * reply lines; the DATA filter (end of data only at CRLF.CRLF, bare CR/LF
 * neutralised so that smuggling cannot end the message early, any split).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "proxy_data.h"
#include "proxy_hdr.h"

static void test_xtext(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(proxy_xtext("mail.example", 12, out, sizeof out), SC_OK);
	assert_string_equal(out, "mail.example");
	/* RFC 3461 4: "+", "=", space, controls and 8-bit octets are hexchars */
	assert_int_equal(proxy_xtext("a+b=c d\x01\xc3\xa9", 10, out, sizeof out), SC_OK);
	assert_string_equal(out, "a+2Bb+3Dc+20d+01+C3+A9");
	/* embedded NUL is just an octet */
	assert_int_equal(proxy_xtext("a\0b", 3, out, sizeof out), SC_OK);
	assert_string_equal(out, "a+00b");
	assert_int_equal(proxy_xtext("", 0, out, sizeof out), SC_OK);
	assert_string_equal(out, "");
	/* too small: never a truncated encoding */
	assert_int_equal(proxy_xtext("abc", 3, out, 3), SC_ERR_TOO_LONG);
	assert_int_equal(proxy_xtext("a=", 2, out, 4), SC_ERR_TOO_LONG);
	assert_int_equal(proxy_xtext("a=", 2, out, 5), SC_OK);
	assert_string_equal(out, "a+3D");
}

static void test_xclient_offered(void **state)
{
	const char *all = " NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT";

	(void)state;
	assert_int_equal(proxy_xclient_offered(all, strlen(all)),
			 PROXY_XA_NAME | PROXY_XA_ADDR | PROXY_XA_PROTO | PROXY_XA_HELO |
			 PROXY_XA_PORT | PROXY_XA_LOGIN | PROXY_XA_DESTADDR | PROXY_XA_DESTPORT);
	assert_int_equal(proxy_xclient_offered(" name addr", 10), PROXY_XA_NAME | PROXY_XA_ADDR);
	assert_int_equal(proxy_xclient_offered(" NAMES ADDRX", 12), 0);
	assert_int_equal(proxy_xclient_offered("", 0), 0);
}

static void test_xclient_lines(void **state)
{
	struct proxy_xclient x = { 0 };
	char out[PROXY_XCLIENT_BUF_MAX];
	size_t n = 99;

	(void)state;
	x.addr = "192.0.2.1";
	x.port = 51000;
	x.proto = "ESMTP";
	x.helo = "odd name+x=y";
	x.helo_len = strlen(x.helo);
	x.destaddr = "198.51.100.7";
	x.destport = 25;
	assert_int_equal(proxy_xclient_lines(&x, 0xff, out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(out, "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.1 PORT=51000 PROTO=ESMTP "
				 "HELO=odd+20name+2Bx+3Dy DESTADDR=198.51.100.7 DESTPORT=25\r\n"
				 "XCLIENT LOGIN=[UNAVAILABLE]\r\n");
	/* only what the backend offers; IPv6 with its prefix; a login */
	x.addr = "2001:db8::1";
	x.login = "alice@example.test";
	assert_int_equal(proxy_xclient_lines(&x, PROXY_XA_ADDR | PROXY_XA_HELO | PROXY_XA_LOGIN,
					     out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(out, "XCLIENT ADDR=IPV6:2001:db8::1 HELO=odd+20name+2Bx+3Dy\r\n"
				 "XCLIENT LOGIN=alice@example.test\r\n");
	/* nothing offered: no line */
	assert_int_equal(proxy_xclient_lines(&x, 0, out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
	/* buffer too small */
	assert_int_equal(proxy_xclient_lines(&x, 0xff, out, 40, &n), SC_ERR_TOO_LONG);
}

/* Every line within 512 octets; a HELO that cannot fit is [UNAVAILABLE]. */
static void test_xclient_long(void **state)
{
	struct proxy_xclient x = { 0 };
	char helo[500], out[PROXY_XCLIENT_BUF_MAX];
	size_t n = 0;
	const char *p;

	(void)state;
	memset(helo, 'h', sizeof helo);
	x.addr = "192.0.2.1";
	x.port = 1;
	x.proto = "SMTP";
	x.helo = helo;
	x.helo_len = 480; /* fits alone: a line of its own */
	assert_int_equal(proxy_xclient_lines(&x, 0xff & ~PROXY_XA_LOGIN, out, sizeof out, &n),
			 SC_OK);
	assert_int_equal(n, 2);
	for (p = out; *p; ) {
		const char *e = strstr(p, "\r\n");

		assert_non_null(e);
		assert_true((size_t)(e - p) + 2 <= PROXY_XCLIENT_LINE_MAX);
		p = e + 2;
	}
	assert_non_null(strstr(out, "\r\nXCLIENT HELO=hhhh"));
	/* 500 octets of "=" encode to 1500: never fits, sent as unavailable */
	memset(helo, '=', sizeof helo);
	x.helo_len = sizeof helo;
	assert_int_equal(proxy_xclient_lines(&x, PROXY_XA_HELO, out, sizeof out, &n), SC_OK);
	assert_string_equal(out, "XCLIENT HELO=[UNAVAILABLE]\r\n");
}

static const uint8_t v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

static void sin4(struct sockaddr_in *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
}

static void sin6(struct sockaddr_in6 *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof *a);
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
}

static void test_v2_ipv4(void **state)
{
	/* 192.0.2.1:51000 -> 198.51.100.7:25, proxy-protocol.txt 2.2 */
	static const uint8_t want[28] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x11, 0x00, 0x0c,
		0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07,
		0xc7, 0x38, 0x00, 0x19 };
	struct sockaddr_in src, dst;
	struct sockaddr_in6 m6s, m6d;
	uint8_t out[PROXY_V2_MAX];
	size_t len = 0;

	(void)state;
	sin4(&src, "192.0.2.1", 51000);
	sin4(&dst, "198.51.100.7", 25);
	assert_int_equal(proxy_v2_header((struct sockaddr *)&src, (struct sockaddr *)&dst, out,
					 sizeof out, &len), SC_OK);
	assert_int_equal(len, sizeof want);
	assert_memory_equal(out, want, sizeof want);
	/* the same addresses as IPv4-mapped IPv6 (a dual-stack socket) */
	sin6(&m6s, "::ffff:192.0.2.1", 51000);
	sin6(&m6d, "::ffff:198.51.100.7", 25);
	memset(out, 0, sizeof out);
	assert_int_equal(proxy_v2_header((struct sockaddr *)&m6s, (struct sockaddr *)&m6d, out,
					 sizeof out, &len), SC_OK);
	assert_int_equal(len, sizeof want);
	assert_memory_equal(out, want, sizeof want);
	/* too small a buffer */
	assert_int_equal(proxy_v2_header((struct sockaddr *)&src, (struct sockaddr *)&dst, out,
					 27, &len), SC_ERR_TOO_LONG);
	assert_int_equal(proxy_v2_header((struct sockaddr *)&src, (struct sockaddr *)&dst, out,
					 15, &len), SC_ERR_TOO_LONG);
}

static void test_v2_ipv6(void **state)
{
	/* [2001:db8::1]:1234 -> [2001:db8::25]:25 */
	static const uint8_t want[52] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x21, 0x00, 0x24,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25,
		0x04, 0xd2, 0x00, 0x19 };
	struct sockaddr_in6 src, dst;
	uint8_t out[PROXY_V2_MAX];
	size_t len = 0;

	(void)state;
	sin6(&src, "2001:db8::1", 1234);
	sin6(&dst, "2001:db8::25", 25);
	assert_int_equal(proxy_v2_header((struct sockaddr *)&src, (struct sockaddr *)&dst, out,
					 sizeof out, &len), SC_OK);
	assert_int_equal(len, sizeof want);
	assert_memory_equal(out, want, sizeof want);
	assert_int_equal(proxy_v2_header((struct sockaddr *)&src, (struct sockaddr *)&dst, out,
					 51, &len), SC_ERR_TOO_LONG);
}

/* Unknown or mixed families: LOCAL, no address block. */
static void test_v2_local(void **state)
{
	struct sockaddr_in src;
	struct sockaddr_in6 dst;
	uint8_t out[PROXY_V2_MAX];
	size_t len = 0;

	(void)state;
	sin4(&src, "192.0.2.1", 1);
	sin6(&dst, "2001:db8::25", 25);
	assert_int_equal(proxy_v2_header((struct sockaddr *)&src, (struct sockaddr *)&dst, out,
					 sizeof out, &len), SC_OK);
	assert_int_equal(len, 16);
	assert_memory_equal(out, v2_sig, sizeof v2_sig);
	assert_int_equal(out[12], 0x20);
	assert_int_equal(out[13], 0x00);
	assert_int_equal(out[14], 0);
	assert_int_equal(out[15], 0);
	assert_int_equal(proxy_v2_header(NULL, NULL, out, sizeof out, &len), SC_OK);
	assert_int_equal(len, 16);
	assert_int_equal(out[12], 0x20);
}

static const char *join(const char **v, size_t n)
{
	static char buf[512];
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, sizeof buf - used, "%s|", v[i]);
	return buf;
}

static void test_ehlo_merge(void **state)
{
	/* Postfix 3.7's keywords, XCLIENT allowed */
	const char *kw[] = { "PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "STARTTLS",
			     "AUTH PLAIN LOGIN", "AUTH=PLAIN LOGIN",
			     "XCLIENT NAME ADDR PROTO HELO", "XFORWARD NAME ADDR",
			     "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING",
			     "CERT", "bad\x01keyword", "" };
	const char *out[32];
	size_t n;

	(void)state;
	n = proxy_ehlo_merge(kw, sizeof kw / sizeof kw[0], PROXY_OURS_STARTTLS | PROXY_OURS_CERC,
			     out, 32);
	assert_string_equal(join(out, n), "PIPELINING|SIZE 10240000|VRFY|ETRN|8BITMIME|DSN|SMTPUTF8|"
				    "CHUNKING|ENHANCEDSTATUSCODES|STARTTLS|CERT|CERS|CERC|HELP|");
	/* inside TLS with auth: our AUTH, never the backend's; no CERC when off */
	n = proxy_ehlo_merge(kw, 7, PROXY_OURS_AUTH, out, 32);
	assert_string_equal(join(out, n), "PIPELINING|SIZE 10240000|VRFY|ETRN|ENHANCEDSTATUSCODES|"
				    "AUTH PLAIN LOGIN|CERT|CERS|HELP|");
	/* backend unreachable: ours only */
	n = proxy_ehlo_merge(NULL, 0, 0, out, 32);
	assert_int_equal(n, 5);
	assert_string_equal(out[0], "PIPELINING");
	assert_string_equal(out[4], "HELP");
	/* bounded by max */
	assert_int_equal(proxy_ehlo_merge(kw, 14, 0, out, 3), 3);
}

static void test_reply_line(void **state)
{
	int last = -1;

	(void)state;
	assert_int_equal(proxy_reply_line("250 2.0.0 Ok", 12, &last), 250);
	assert_int_equal(last, 1);
	assert_int_equal(proxy_reply_line("250-SIZE 1", 10, &last), 250);
	assert_int_equal(last, 0);
	assert_int_equal(proxy_reply_line("354", 3, &last), 354);
	assert_int_equal(last, 1);
	assert_int_equal(proxy_reply_line("25", 2, &last), -1);          /* truncated */
	assert_int_equal(proxy_reply_line("2x0 x", 5, &last), -1);       /* not digits */
	assert_int_equal(proxy_reply_line("150 x", 5, &last), -1);       /* no 1yz in SMTP */
	assert_int_equal(proxy_reply_line("650 x", 5, &last), -1);
	assert_int_equal(proxy_reply_line("250x", 4, &last), -1);        /* separator */
	assert_int_equal(proxy_reply_line("250 a\rb", 7, &last), -1);    /* bare CR */
	assert_int_equal(proxy_reply_line("250 a\0b", 7, &last), -1);    /* NUL */
	assert_int_equal(proxy_reply_line("250 caf\xc3\xa9", 9, &last), 250); /* UTF-8 ok */
}

/* Run the filter over @p in split at every position; @return the output. */
static size_t dot_run(const char *in, size_t len, size_t split, char *out, size_t size,
		      size_t *consumed, struct proxy_dot *st)
{
	size_t n = 0, used = 0, olen = 0;

	proxy_data_begin(st);
	/* two feeds: [0, split) then the rest, with what the first left over */
	used = proxy_dot_filter(st, in, split, out, size, &olen);
	n += olen;
	if (!st->done) {
		used += proxy_dot_filter(st, in + used, len - used, out + n, size - n, &olen);
		n += olen;
	}
	*consumed = used;
	return n;
}

static void dot_case(const char *in, const char *want, size_t want_used)
{
	size_t len = strlen(in);
	char out[1024];

	for (size_t split = 0; split <= len; split++) {
		struct proxy_dot st;
		size_t used = 0, n = dot_run(in, len, split, out, sizeof out, &used, &st);

		out[n] = '\0';
		assert_string_equal(out, want);
		assert_int_equal(used, want_used);
		assert_true(st.done);
	}
}

static void test_dot_filter(void **state)
{
	(void)state;
	/* plain message; what follows the end stays unconsumed */
	dot_case("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		 "Subject: x\r\n\r\nbody\r\n.\r\n", 23);
	/* empty message */
	dot_case(".\r\n", ".\r\n", 3);
	/* a stuffed line passes as it came: the backend unstuffs */
	dot_case("..hidden\r\n.\r\n", "..hidden\r\n.\r\n", 13);
	/* smuggling: <LF>.<CR><LF> is no end: the dot becomes a stuffed line */
	dot_case("a\n.\r\nMAIL FROM:<evil>\r\n.\r\n",
		 "a\r\n..\r\nMAIL FROM:<evil>\r\n.\r\n", 26);
	/* <CR>.<CR><LF> likewise; <LF>.<LF> too */
	dot_case("a\r.\r\nb\n.\nc\r\n.\r\n", "a\r\n..\r\nb\r\n..\r\nc\r\n.\r\n", 15);
	/* <CR><LF>.<LF> is no end either (only CRLF.CRLF): the dot is
	 * unstuffed, never a lone "." line for the backend (found by fuzzing) */
	dot_case("a\r\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n.\r\n", 11);
	dot_case("a\r\n.\r\xd7\r\n.\r\n", "a\r\n\r\n\xd7\r\n.\r\n", 11);
	/* a stuffed dot that stays first after unstuffing is stuffed again */
	dot_case("...\r\n.\r\n", "...\r\n.\r\n", 8);
}

/* Undecided prefixes wait; a small output buffer just slows it down. */
static void test_dot_filter_partial(void **state)
{
	struct proxy_dot st;
	char out[64];
	size_t olen = 0;

	(void)state;
	proxy_data_begin(&st);
	assert_int_equal(proxy_dot_filter(&st, "ab\r", 3, out, sizeof out, &olen), 2);
	assert_int_equal(olen, 2);
	proxy_data_begin(&st);
	assert_int_equal(proxy_dot_filter(&st, ".", 1, out, sizeof out, &olen), 0);
	assert_int_equal(proxy_dot_filter(&st, ".\r", 2, out, sizeof out, &olen), 0);
	assert_false(st.done);
	/* output room below PROXY_DOT_EXPAND + 2: nothing, no overrun */
	assert_int_equal(proxy_dot_filter(&st, "abc", 3, out, 4, &olen), 0);
	assert_int_equal(olen, 0);
	assert_int_equal(proxy_dot_filter(&st, "abc", 3, out, 6, &olen), 2);
	assert_int_equal(st.bare, 0);
	/* NUL and 8-bit octets are data */
	proxy_data_begin(&st);
	assert_int_equal(proxy_dot_filter(&st, "a\0\xff\r\n.\r\n", 8, out, sizeof out, &olen), 8);
	assert_int_equal(olen, 8);
	assert_memory_equal(out, "a\0\xff\r\n.\r\n", 8);
	assert_true(st.done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_xclient_offered),
		cmocka_unit_test(test_xclient_lines),
		cmocka_unit_test(test_xclient_long),
		cmocka_unit_test(test_v2_ipv4),
		cmocka_unit_test(test_v2_ipv6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_ehlo_merge),
		cmocka_unit_test(test_reply_line),
		cmocka_unit_test(test_dot_filter),
		cmocka_unit_test(test_dot_filter_partial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
