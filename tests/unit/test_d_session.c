/*
 * test_d_session.c - the session state machine and the command handlers
 * (daemon/session.c, commands.c, cmd_basic.c, cmd_cert.c, reply.c) driven without
 * sockets: lines in, the queued reply bytes out. Covers the banner, HELO/EHLO
 * (keywords and order), CERT/CERS found (PEM decodes to the stored DER, chain
 * order), not found / revoked / expired / not yet valid (identical 550),
 * foreign domain (550 5.7.1 even when stored), gateway domain, syntax errors,
 * NUL bytes, address literals, over-long lines, unknown commands, MAIL/RCPT/DATA,
 * CERC, STARTTLS without TLS and with an argument, QUIT, the error limit, idle
 * timeout and shutdown replies, and every state transition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_d_fixture.h"
#include "session.h"
#include "log.h"

static struct dfix fix;

static int setup(void **state)
{
	log_init(LOG_SINK_STDERR, 0);
	dfix_setup(&fix, "max_errors = 8\n", 0);
	return 0;
}

static int teardown(void **state)
{
	dfix_teardown(&fix);
	return 0;
}

static void new_session(struct session *s)
{
	memset(s, 0, sizeof *s);
	session_init(s, fix.rt, "192.0.2.1:1234", "test0001");
}

/* Take what the session queued, as a NUL-terminated string (static buffer). */
static const char *cmd(struct session *s, const char *line)
{
	session_line(s, line, strlen(line));
	return dfix_take(s);
}

static void greet(struct session *s)
{
	new_session(s);
	assert_string_equal(dfix_take(s), "");
	session_greet(s);
	assert_string_equal(dfix_take(s), "220 mx.test ESMTP smtpcertd\r\n");
	assert_int_equal(s->state, SESSION_CONNECTED);
	assert_non_null(strstr(cmd(s, "EHLO client.test"), "250 HELP\r\n"));
	assert_int_equal(s->state, SESSION_READY);
}

struct ders {
	size_t n;
	uint8_t der[4][4096];
	size_t len[4];
};

static sc_status collect(void *arg, const char *label, const uint8_t *der, size_t len)
{
	struct ders *d = arg;

	assert_string_equal(label, "CERTIFICATE");
	assert_true(d->n < 4 && len <= sizeof d->der[0]);
	memcpy(d->der[d->n], der, len);
	d->len[d->n++] = len;
	return SC_OK;
}

/* Check a CERT/CERS reply's shape and decode the certificates in it. */
static void decode_reply(const char *reply, struct ders *d)
{
	char pem[64 * 1024];
	size_t o = 0;
	const char *p = reply;

	memset(d, 0, sizeof *d);
	while (strncmp(p, "250-", 4) == 0) {
		const char *eol = strstr(p, "\r\n");

		assert_non_null(eol);
		/* 64-column base64 (RFC 7468), each line its own 250- line */
		assert_true(eol - p - 4 <= 64);
		memcpy(pem + o, p + 4, (size_t)(eol - p - 4));
		o += (size_t)(eol - p - 4);
		pem[o++] = '\n';
		p = eol + 2;
	}
	assert_string_equal(p, "250 2.0.0 OK\r\n");
	assert_int_equal(sc_pem_decode(pem, o, 8192, 4, collect, d, NULL), SC_OK);
}

static void test_banner_and_ehlo(void **state)
{
	struct session s;
	const char *r;

	new_session(&s);
	session_greet(&s);
	assert_string_equal(dfix_take(&s), "220 mx.test ESMTP smtpcertd\r\n");
	r = cmd(&s, "EHLO client.test");
	assert_string_equal(r, "250-mx.test greets client.test\r\n"
			       "250-PIPELINING\r\n"
			       "250-SIZE 10485760\r\n"
			       "250-8BITMIME\r\n"
			       "250-ENHANCEDSTATUSCODES\r\n"
			       "250-SMTPUTF8\r\n"
			       "250-CERT\r\n"
			       "250-CERS\r\n"
			       "250 HELP\r\n");
	assert_int_equal(s.state, SESSION_READY);
	/* the EHLO argument is echoed printable only: no reply injection */
	r = cmd(&s, "EHLO a\rb\x01\xff");
	assert_string_equal(strstr(r, "\r\n") + 0, strstr(r, "\r\n"));
	assert_true(strncmp(r, "250-mx.test greets a?b??\r\n", 26) == 0);
	r = cmd(&s, "HELO x.test");
	assert_string_equal(r, "250 mx.test greets x.test\r\n");
	r = cmd(&s, "EHLO");
	assert_string_equal(r, "501 5.5.4 Syntax: EHLO <domain>\r\n");
	session_fini(&s);
}

static void test_before_greeting(void **state)
{
	struct session s;

	new_session(&s);
	assert_string_equal(cmd(&s, "CERT alice@example.test"), "503 5.5.1 Send HELO/EHLO first\r\n");
	assert_string_equal(cmd(&s, "CERS alice@example.test"), "503 5.5.1 Send HELO/EHLO first\r\n");
	assert_string_equal(cmd(&s, "CERC alice@example.test"), "503 5.5.1 Send HELO/EHLO first\r\n");
	assert_string_equal(cmd(&s, "NOOP"), "250 2.0.0 OK\r\n");
	assert_int_equal(s.state, SESSION_CONNECTED);
	/* HELO is enough */
	assert_string_equal(cmd(&s, "HELO x"), "250 mx.test greets x\r\n");
	assert_int_equal(s.state, SESSION_READY);
	assert_true(strncmp(cmd(&s, "CERT alice@example.test"), "250------BEGIN CERTIFICATE", 26) ==
		    0);
	session_fini(&s);
}

static void test_cert_found(void **state)
{
	struct session s;
	struct ders d;

	greet(&s);
	decode_reply(cmd(&s, "CERT alice@example.test"), &d);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.len[0], fix.alice_len);
	assert_memory_equal(d.der[0], fix.alice_der, fix.alice_len);
	assert_int_equal(s.last_code, 250);
	assert_string_equal(s.last_status, "2.0.0");
	/* brackets optional, case-insensitive address */
	decode_reply(cmd(&s, "CERT <Alice@EXAMPLE.test>"), &d);
	assert_memory_equal(d.der[0], fix.alice_der, fix.alice_len);
	decode_reply(cmd(&s, "cert   alice@example.test  "), &d);
	assert_int_equal(d.n, 1);
	/* CERS: leaf then the stored chain, in order */
	decode_reply(cmd(&s, "CERS alice@example.test"), &d);
	assert_int_equal(d.n, 2);
	assert_memory_equal(d.der[0], fix.alice_der, fix.alice_len);
	assert_int_equal(d.len[1], fix.ca_len);
	assert_memory_equal(d.der[1], fix.ca_der, fix.ca_len);
	/* gateway domains are served */
	decode_reply(cmd(&s, "CERT grace@gw.test"), &d);
	assert_int_equal(d.n, 1);
	assert_int_equal(s.errors, 0);
	session_fini(&s);
}

static void test_cert_too_big_for_buffer(void **state)
{
	static char fill[SESSION_OUT_MAX];
	struct session s;
	const char *r;

	greet(&s);
	/* leave room for a short reply but not for the certificate */
	session_line(&s, "NOOP", 4);
	memset(fill, 'a', sizeof fill);
	assert_int_equal(sc_buf_append(s.out, fill, sc_buf_room(s.out) - 300), SC_OK);
	session_line(&s, "CERT alice@example.test", 23);
	r = dfix_take(&s);
	/* all or nothing: no half certificate, a clear 554 instead */
	assert_null(strstr(r, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(r, "250 2.0.0 OK\r\naaaa"));
	assert_string_equal(r + strlen(r) - 41, "554 5.3.4 Certificate too large to send\r\n");
	assert_int_equal(s.state, SESSION_READY);
	session_fini(&s);
}

static void test_cert_not_found_identical(void **state)
{
	static const char nf[] = "550 5.1.1 Certificate Not Found\r\n";
	struct session s;

	greet(&s);
	assert_string_equal(cmd(&s, "CERT nobody@example.test"), nf);
	assert_string_equal(cmd(&s, "CERT carol@example.test"), nf); /* revoked */
	assert_string_equal(cmd(&s, "CERT dave@example.test"), nf);  /* expired */
	assert_string_equal(cmd(&s, "CERS erin@example.test"), nf);  /* not yet valid */
	assert_int_equal(s.last_code, 550);
	assert_string_equal(s.last_status, "5.1.1");
	session_fini(&s);
}

static void test_foreign_domain(void **state)
{
	static const char foreign[] =
		"550 5.7.1 Domain not served here: certificates are not relayed\r\n";
	struct session s;

	greet(&s);
	/* stored, but never served: the domain is not ours */
	assert_string_equal(cmd(&s, "CERT mallory@other.test"), foreign);
	assert_string_equal(cmd(&s, "CERS someone@example.org"), foreign);
	assert_string_equal(cmd(&s, "CERT alice@example.test.evil"), foreign);
	session_fini(&s);
}

static void test_syntax(void **state)
{
	struct session s;
	const char *r;

	greet(&s);
	assert_string_equal(cmd(&s, "CERT"), "501 5.5.4 Syntax: CERT <address>\r\n");
	assert_string_equal(cmd(&s, "CERS   "), "501 5.5.4 Syntax: CERS <address>\r\n");
	r = cmd(&s, "CERT a@[192.0.2.1]");
	assert_string_equal(r, "501 5.5.4 Syntax: CERT <address> (address literals are not served)\r\n");
	r = cmd(&s, "CERT not-an-address");
	assert_true(strncmp(r, "501 5.5.4 Syntax: CERT <address>", 32) == 0);
	r = cmd(&s, "CERT a@b\r");
	assert_true(strncmp(r, "501 5.5.4 ", 10) == 0);
	r = cmd(&s, "CERT \xff\xfe@example.test");
	assert_true(strncmp(r, "501 5.5.4 ", 10) == 0);
	session_fini(&s);
}

static void test_nul_and_unknown(void **state)
{
	struct session s;

	new_session(&s);
	session_line(&s, "NO\0OP", 5);
	assert_string_equal(dfix_take(&s), "500 5.5.2 Syntax error\r\n");
	session_line(&s, "", 0);
	assert_string_equal(dfix_take(&s), "500 5.5.2 Syntax error\r\n");
	assert_string_equal(cmd(&s, "FOO bar"), "500 5.5.1 Command unrecognized\r\n");
	assert_string_equal(cmd(&s, "NOOP\r"), "500 5.5.1 Command unrecognized\r\n");
	assert_string_equal(cmd(&s, "VRFY x"), "500 5.5.1 Command unrecognized\r\n");
	assert_int_equal(s.errors, 5);
	session_line_too_long(&s);
	assert_string_equal(dfix_take(&s), "500 5.5.2 Line too long\r\n");
	assert_int_equal(s.errors, 6);
	assert_int_equal(s.state, SESSION_CONNECTED);
	session_line_too_long(&s);
	session_line_too_long(&s);
	assert_string_equal(dfix_take(&s), "500 5.5.2 Line too long\r\n500 5.5.2 Line too long\r\n"
				      "421 4.7.0 mx.test Too many errors, closing connection\r\n");
	/* max_errors = 8: the eighth error ends the session */
	assert_int_equal(s.state, SESSION_CLOSING);
	assert_string_equal(s.close_reason, "too-many-errors");
	session_fini(&s);
}

static void test_error_limit(void **state)
{
	struct session s;
	const char *r = "";

	greet(&s);
	for (int i = 0; i < 7; i++)
		assert_string_equal(cmd(&s, "BOGUS"), "500 5.5.1 Command unrecognized\r\n");
	assert_int_equal(s.state, SESSION_READY);
	r = cmd(&s, "BOGUS");
	assert_string_equal(r, "500 5.5.1 Command unrecognized\r\n"
			       "421 4.7.0 mx.test Too many errors, closing connection\r\n");
	assert_int_equal(s.state, SESSION_CLOSING);
	/* nothing more is executed */
	assert_string_equal(cmd(&s, "NOOP"), "");
	session_fini(&s);
}

static void test_basic_commands(void **state)
{
	struct session s;
	const char *r;

	greet(&s);
	assert_string_equal(cmd(&s, "NOOP"), "250 2.0.0 OK\r\n");
	assert_string_equal(cmd(&s, "NOOP anything at all"), "250 2.0.0 OK\r\n");
	assert_string_equal(cmd(&s, "RSET"), "250 2.0.0 OK\r\n");
	assert_int_equal(s.state, SESSION_READY); /* RSET keeps the greeting */
	assert_string_equal(cmd(&s, "RSET now"), "501 5.5.4 Syntax: RSET\r\n");
	r = cmd(&s, "HELP");
	assert_true(strncmp(r, "214-", 4) == 0);
	assert_non_null(strstr(r, "\r\n214 2.0.0 "));
	assert_string_equal(cmd(&s, "MAIL FROM:<a@example.test>"), "502 5.5.1 Command not implemented\r\n");
	assert_string_equal(cmd(&s, "RCPT TO:<a@example.test>"), "502 5.5.1 Command not implemented\r\n");
	assert_string_equal(cmd(&s, "DATA"), "502 5.5.1 Command not implemented\r\n");
	/* submissions = off */
	assert_string_equal(cmd(&s, "CERC alice@example.test"), "550 5.7.0 Service Unavailable\r\n");
	assert_false(s.discard_input);
	assert_string_equal(cmd(&s, "QUIT now"), "501 5.5.4 Syntax: QUIT\r\n");
	assert_string_equal(cmd(&s, "QUIT"), "221 2.0.0 mx.test closing connection\r\n");
	assert_int_equal(s.state, SESSION_CLOSING);
	assert_true(s.discard_input); /* RFC 2920 3.1: ends the group */
	assert_string_equal(s.close_reason, "quit");
	session_fini(&s);
}

static void test_starttls_unconfigured(void **state)
{
	struct session s;

	greet(&s);
	assert_string_equal(cmd(&s, "STARTTLS"), "502 5.5.1 STARTTLS not available\r\n");
	assert_true(s.discard_input);
	s.discard_input = 0;
	assert_string_equal(cmd(&s, "STARTTLS now"), "501 5.5.4 Syntax: STARTTLS\r\n");
	assert_int_equal(s.state, SESSION_READY);
	session_fini(&s);
}

static void test_timeout_shutdown_tls_done(void **state)
{
	struct session s;

	greet(&s);
	session_timeout(&s);
	assert_string_equal(dfix_take(&s), "421 4.4.2 mx.test Idle timeout, closing connection\r\n");
	assert_int_equal(s.state, SESSION_CLOSING);
	session_shutdown(&s); /* already closing: nothing more */
	assert_string_equal(dfix_take(&s), "");
	session_fini(&s);

	greet(&s);
	session_shutdown(&s);
	assert_string_equal(dfix_take(&s), "421 4.3.2 mx.test Service shutting down\r\n");
	assert_string_equal(s.close_reason, "shutdown");
	session_fini(&s);

	/* RFC 3207 4.2: after the handshake the client must greet again */
	greet(&s);
	s.state = SESSION_STARTTLS;
	assert_string_equal(cmd(&s, "CERT alice@example.test"), ""); /* not executed */
	session_tls_done(&s);
	assert_int_equal(s.state, SESSION_CONNECTED);
	assert_true(s.tls_active);
	assert_string_equal(cmd(&s, "CERT alice@example.test"), "503 5.5.1 Send HELO/EHLO first\r\n");
	assert_string_equal(cmd(&s, "STARTTLS"), "503 5.5.1 TLS already active\r\n");
	assert_null(strstr(cmd(&s, "EHLO x"), "STARTTLS"));
	session_fini(&s);
}

/* Run @p line with stderr captured; return what was logged (static buffer). */
static const char *logged(struct session *s, const char *line, size_t len)
{
	static char out[4096];
	int fds[2], saved;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	session_line(s, line, len);
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	out[n > 0 ? n : 0] = '\0';
	dfix_take(s);
	return out;
}

static void test_request_log_line(void **state)
{
	struct session s;
	const char *l;

	greet(&s);
	/* docs/design.md: one greppable line per request */
	l = logged(&s, "CERT <Alice@Example.TEST>", 25);
	assert_non_null(strstr(l, "]: client=192.0.2.1:1234 session=test0001 cmd=CERT "
				  "addr=alice@example.test result=250 status=2.0.0 us="));
	l = logged(&s, "cers nobody@example.test", 24);
	assert_non_null(strstr(l, " cmd=CERS addr=nobody@example.test result=550 status=5.1.1 us="));
	l = logged(&s, "NOOP", 4);
	assert_non_null(strstr(l, " cmd=NOOP result=250 status=2.0.0 us="));
	/* client bytes are escaped: no raw control characters or spaces */
	l = logged(&s, "X\x1b[2J\rY Z", 9);
	assert_non_null(strstr(l, " cmd=X\\x1b[2J\\x0dY result=500 status=5.5.1 us="));
	l = logged(&s, "CERT bad\x01 addr", 14);
	assert_non_null(strstr(l, " cmd=CERT addr=bad\\x01\\x20addr result=501 status=5.5.4 "));
	assert_null(strchr(l, '\x01'));
	session_fini(&s);
}

static void test_state_names(void **state)
{
	assert_string_equal(session_state_name(SESSION_CONNECTED), "CONNECTED");
	assert_string_equal(session_state_name(SESSION_READY), "READY");
	assert_string_equal(session_state_name(SESSION_STARTTLS), "STARTTLS");
	assert_string_equal(session_state_name(SESSION_CLOSING), "CLOSING");
	assert_string_equal(session_state_name((enum session_state)99), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_banner_and_ehlo),
		cmocka_unit_test(test_before_greeting),
		cmocka_unit_test(test_cert_found),
		cmocka_unit_test(test_cert_too_big_for_buffer),
		cmocka_unit_test(test_cert_not_found_identical),
		cmocka_unit_test(test_foreign_domain),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_nul_and_unknown),
		cmocka_unit_test(test_error_limit),
		cmocka_unit_test(test_basic_commands),
		cmocka_unit_test(test_starttls_unconfigured),
		cmocka_unit_test(test_timeout_shutdown_tls_done),
		cmocka_unit_test(test_request_log_line),
		cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
