/*
 * test_d_auth.c - the AUTH command in the session (daemon/cmd_auth.c with
 * session.c, commands.c, input.c): the EHLO keyword only inside TLS, 538 before
 * TLS, 502 without `auth`, PLAIN and LOGIN dialogues, the 12288-octet response
 * limit only inside the dialogue (500 5.5.6 beyond it, 500 5.5.2 for a long
 * command), cancel, bad base64, unknown mechanism, 503 after success, the
 * failure limits, and the asynchronous path on a real worker pool: the 535
 * timer, wake-up, and a session that ends while its verification runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <crypt.h>
#include <cmocka.h>

#include <event2/event.h>
#include "test_d_fixture.h"
#include "authlimit.h"
#include "cmd_auth.h"
#include "input.h"
#include "log.h"
#include "session.h"
#include "worker.h"

static struct dfix fix;
static char g_pw_dir[512];

/* "\0alice@example.test\0secret" */
#define ALICE_OK "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="
/* "\0alice@example.test\0wrong" */
#define ALICE_BAD "AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw=="

static void setup_with(int with_auth, int delay, int max)
{
	char path[600], text[800], extra[1200], salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	log_init(LOG_SINK_NONE, 0);
	authlimit_reset();
	tc_tmpdir(g_pw_dir, sizeof g_pw_dir);
	memset(&cd, 0, sizeof cd);
	assert_non_null(crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof salt));
	assert_non_null(crypt_rn("secret", salt, &cd, sizeof cd));
	snprintf(text, sizeof text, "alice@example.test:%s\n", cd.output);
	snprintf(path, sizeof path, "%s/passwd", g_pw_dir);
	tc_write_file(path, text, strlen(text));
	if (with_auth)
		snprintf(extra, sizeof extra,
			 "auth = passwd:%s\nauth_fail_delay = %d\nauth_max_failures = %d\n", path,
			 delay, max);
	else
		extra[0] = '\0';
	dfix_setup(&fix, extra, 1);
}

static int setup(void **state)
{
	setup_with(1, 0, 3);
	return 0;
}

static int setup_delay(void **state)
{
	setup_with(1, 1, 100);
	return 0;
}

static int setup_noauth(void **state)
{
	setup_with(0, 0, 0);
	return 0;
}

static int teardown(void **state)
{
	dfix_teardown(&fix);
	tc_rmtree(g_pw_dir);
	return 0;
}

static const char *cmd(struct session *s, const char *line)
{
	session_line(s, line, strlen(line));
	return dfix_take(s);
}

/* base64 of @p len bytes into @p out (test helper) */
static void b64(const unsigned char *in, size_t len, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

#define EXPECT(s, line, want) assert_string_equal(cmd(s, line), want "\r\n")

/* A greeted session, inside TLS when @p tls. */
static void open_session(struct session *s, int tls)
{
	memset(s, 0, sizeof *s);
	session_init(s, fix.rt, "192.0.2.1:1234", "auth0001");
	s->tls_active = tls ? 1 : 0;
	cmd(s, "EHLO client.test");
	assert_int_equal(s->state, SESSION_READY);
}

static void test_advertised(void **state)
{
	struct session s;

	memset(&s, 0, sizeof s);
	session_init(&s, fix.rt, "192.0.2.1:1234", "auth0001");
	assert_null(strstr(cmd(&s, "EHLO client.test"), "AUTH"));
	EXPECT(&s, "AUTH PLAIN " ALICE_OK,
	       "538 5.7.11 Encryption required for requested authentication mechanism");
	s.tls_active = 1;
	assert_non_null(strstr(cmd(&s, "EHLO client.test"), "250-AUTH PLAIN LOGIN\r\n"));
	session_fini(&s);
}

static void test_not_configured(void **state)
{
	struct session s;

	open_session(&s, 1);
	assert_null(strstr(cmd(&s, "EHLO client.test"), "AUTH"));
	EXPECT(&s, "AUTH PLAIN " ALICE_OK, "502 5.5.1 AUTH not available");
	session_fini(&s);
}

static void test_plain(void **state)
{
	struct session s;

	open_session(&s, 1);
	EXPECT(&s, "AUTH PLAIN " ALICE_OK, "235 2.7.0 Authentication successful");
	assert_string_equal(s.auth_user, "alice@example.test");
	assert_int_equal(s.state, SESSION_READY);
	EXPECT(&s, "AUTH PLAIN " ALICE_OK, "503 5.5.1 Already authenticated");
	/* RSET and EHLO keep the identity (RFC 4954 4) */
	EXPECT(&s, "RSET", "250 2.0.0 OK");
	cmd(&s, "EHLO again");
	assert_string_equal(s.auth_user, "alice@example.test");
	/* a TLS restart forgets it (RFC 3207 4.2) */
	session_tls_done(&s);
	assert_string_equal(s.auth_user, "");
	session_fini(&s);
}

static void test_plain_dialogue(void **state)
{
	struct session s;

	open_session(&s, 1);
	EXPECT(&s, "auth plain", "334 ");
	assert_int_equal(s.state, SESSION_AUTH);
	/* a response line is not a command */
	EXPECT(&s, ALICE_OK, "235 2.7.0 Authentication successful");
	session_fini(&s);
}

static void test_login(void **state)
{
	struct session s;

	open_session(&s, 1);
	EXPECT(&s, "AUTH LOGIN", "334 VXNlcm5hbWU6");
	EXPECT(&s, "YWxpY2VAZXhhbXBsZS50ZXN0", "334 UGFzc3dvcmQ6");
	EXPECT(&s, "c2VjcmV0", "235 2.7.0 Authentication successful");
	session_fini(&s);
	open_session(&s, 1);
	EXPECT(&s, "AUTH LOGIN YWxpY2VAZXhhbXBsZS50ZXN0", "334 UGFzc3dvcmQ6");
	EXPECT(&s, "d3Jvbmc=", "535 5.7.8 Authentication credentials invalid");
	assert_string_equal(s.auth_user, "");
	/* "=" is an empty response: not a user name */
	EXPECT(&s, "AUTH LOGIN", "334 VXNlcm5hbWU6");
	EXPECT(&s, "=", "501 5.5.2 Malformed user name");
	EXPECT(&s, "AUTH LOGIN", "334 VXNlcm5hbWU6");
	EXPECT(&s, "YQ==", "334 UGFzc3dvcmQ6");
	EXPECT(&s, "=", "501 5.5.2 Malformed password");
	session_fini(&s);
}

static void test_errors(void **state)
{
	struct session s;

	open_session(&s, 1);
	EXPECT(&s, "AUTH CRAM-MD5", "504 5.5.4 Unrecognized authentication type");
	EXPECT(&s, "AUTH PLAINX", "504 5.5.4 Unrecognized authentication type");
	EXPECT(&s, "AUTH", "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
	EXPECT(&s, "AUTH PLAIN a b", "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
	EXPECT(&s, "AUTH PLAIN !!!!", "501 5.5.2 Cannot decode response");
	EXPECT(&s, "AUTH PLAIN YWxpY2U=", "501 5.5.2 Malformed PLAIN response");
	EXPECT(&s, "AUTH LOGIN", "334 VXNlcm5hbWU6");
	EXPECT(&s, "*", "501 5.7.0 Authentication cancelled");
	assert_int_equal(s.state, SESSION_READY);
	EXPECT(&s, "AUTH PLAIN", "334 ");
	EXPECT(&s, "YWJj\x01", "501 5.5.2 Cannot decode response");
	/* authzid for someone else: refused like wrong credentials */
	EXPECT(&s, "AUTH PLAIN Ym9iQGV4YW1wbGUudGVzdABhbGljZUBleGFtcGxlLnRlc3QAc2VjcmV0",
	       "535 5.7.8 Authentication credentials invalid");
	EXPECT(&s, "NOOP", "250 2.0.0 OK");
	/* a user name longer than any address: wrong credentials, never truncated */
	session_fini(&s);
	open_session(&s, 1);
	{
		unsigned char msg[600];
		char line[900];

		memset(msg, 'a', sizeof msg);
		msg[0] = '\0';
		memcpy(msg + 400, "@example.test", 13);
		msg[413] = '\0';
		memcpy(msg + 414, "secret", 6);
		memcpy(line, "AUTH PLAIN ", 11);
		b64(msg, 420, line + 11);
		EXPECT(&s, line, "535 5.7.8 Authentication credentials invalid");
		assert_string_equal(s.auth_user, "");
	}
	session_fini(&s);
	/* before EHLO after TLS */
	memset(&s, 0, sizeof s);
	session_init(&s, fix.rt, "192.0.2.1:1234", "auth0002");
	s.tls_active = 1;
	EXPECT(&s, "AUTH PLAIN", "503 5.5.1 Send HELO/EHLO first");
	session_fini(&s);
}

/* Lines through the real line reader (input.c): the limit is raised only
 * inside the dialogue. */
static void test_line_limits(void **state)
{
	struct input_state st;
	struct session s;
	sc_buf *in;
	char *line;
	size_t n = 12288;

	memset(&st, 0, sizeof st);
	open_session(&s, 1);
	assert_int_equal(session_line_max(&s), SESSION_LINE_MAX);
	assert_int_equal(sc_buf_new(20000, &in), SC_OK);
	line = malloc(n + 3);
	assert_non_null(line);
	/* 12288 octets of valid base64 inside the dialogue: decoded, not a PLAIN message */
	memset(line, 'A', n);
	memcpy(line + n, "\r\n", 3);
	assert_int_equal(sc_buf_append(in, "AUTH PLAIN\r\n", 12), SC_OK);
	assert_int_equal(sc_buf_append(in, line, n + 2), SC_OK);
	input_process(&s, in, &st);
	assert_string_equal(dfix_take(&s), "334 \r\n501 5.5.2 Malformed PLAIN response\r\n");
	/* one octet more: 500 5.5.6, and the rest of the line is skipped */
	assert_int_equal(sc_buf_append(in, "AUTH PLAIN\r\n", 12), SC_OK);
	input_process(&s, in, &st);
	assert_int_equal(session_line_max(&s), CMD_AUTH_LINE_MAX);
	line[n] = 'A';
	memcpy(line + n + 1, "\r\n", 2);
	assert_int_equal(sc_buf_append(in, line, n + 1), SC_OK);
	input_process(&s, in, &st);
	assert_int_equal(sc_buf_append(in, "\r\nNOOP\r\n", 8), SC_OK);
	input_process(&s, in, &st);
	assert_string_equal(dfix_take(&s), "334 \r\n500 5.5.6 Authentication Exchange line is too long\r\n"
				      "250 2.0.0 OK\r\n");
	/* outside the dialogue a long command line is still 500 5.5.2 */
	memcpy(line, "NOOP ", 5);
	memcpy(line + 600, "\r\n", 2);
	assert_int_equal(sc_buf_append(in, line, 602), SC_OK);
	input_process(&s, in, &st);
	assert_string_equal(dfix_take(&s), "500 5.5.2 Line too long\r\n");
	free(line);
	sc_buf_free(in);
	session_fini(&s);
}

static void test_limits(void **state)
{
	struct session s;

	open_session(&s, 1);
	for (int i = 0; i < 3; i++)
		EXPECT(&s, "AUTH PLAIN " ALICE_BAD, "535 5.7.8 Authentication credentials invalid");
	/* the IP is over the limit: refused before any dialogue */
	EXPECT(&s, "AUTH PLAIN " ALICE_OK, "454 4.7.0 Too many authentication failures");
	EXPECT(&s, "AUTH LOGIN", "454 4.7.0 Too many authentication failures");
	session_fini(&s);
	/* per user: failures from many IPs, the name in varying case */
	authlimit_reset();
	for (int i = 0; i < 3; i++) {
		char peer[32];

		memset(&s, 0, sizeof s);
		snprintf(peer, sizeof peer, "198.51.100.%d:1000", i);
		session_init(&s, fix.rt, peer, "auth0004");
		s.tls_active = 1;
		cmd(&s, "EHLO x");
		/* "\0ALICE@Example.test\0wrong" / "\0alice@example.test\0wrong" */
		EXPECT(&s, i == 1 ? "AUTH PLAIN AEFMSUNFQEV4YW1wbGUudGVzdAB3cm9uZw==" : "AUTH PLAIN " ALICE_BAD,
		       "535 5.7.8 Authentication credentials invalid");
		session_fini(&s);
	}
	/* another IP, same user: refused after the user name is known */
	memset(&s, 0, sizeof s);
	session_init(&s, fix.rt, "[2001:db8::9]:4000", "auth0003");
	s.tls_active = 1;
	cmd(&s, "EHLO x");
	EXPECT(&s, "AUTH PLAIN " ALICE_OK, "454 4.7.0 Too many authentication failures");
	assert_string_equal(s.auth_user, "");
	session_fini(&s);
}

/* --- the asynchronous path ------------------------------------------------ */

static int g_woken;

static void wake(struct session *s)
{
	g_woken++;
	event_base_loopbreak(worker_base(worker_default()));
}

static void run_until_woken(struct event_base *base)
{
	struct timeval tv = { 10, 0 };

	g_woken = 0;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void test_async(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct session s;
	struct timespec t0, t1;

	assert_int_equal(worker_create(base, 2, &w), SC_OK);
	worker_set_default(w);
	open_session(&s, 1);
	s.wake = wake;
	/* success: no reply until the job is done, then a wake-up */
	assert_string_equal(cmd(&s, "AUTH PLAIN " ALICE_OK), "");
	assert_int_equal(s.state, SESSION_AUTH_WAIT);
	/* no input is taken meanwhile (pipelined commands wait their turn) */
	assert_false(input_session_ready(&s));
	run_until_woken(base);
	assert_int_equal(g_woken, 1);
	assert_string_equal(dfix_take(&s), "235 2.7.0 Authentication successful\r\n");
	assert_int_equal(s.state, SESSION_READY);
	session_fini(&s);

	/* failure: 535 only after auth_fail_delay (1 s), from a timer */
	open_session(&s, 1);
	s.wake = wake;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_string_equal(cmd(&s, "AUTH PLAIN " ALICE_BAD), "");
	run_until_woken(base);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(g_woken, 1);
	assert_string_equal(dfix_take(&s), "535 5.7.8 Authentication credentials invalid\r\n");
	assert_true((t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L >= 900);
	session_fini(&s);

	/* the session ends while the job runs, or during the delay: nothing
	 * touches it afterwards (ASan would see a use after free) */
	{
		struct session *sp = calloc(1, sizeof *sp);

		open_session(sp, 1);
		sp->wake = wake;
		assert_string_equal(cmd(sp, "AUTH PLAIN " ALICE_OK), "");
		session_fini(sp);
		free(sp);
		sp = calloc(1, sizeof *sp);
		open_session(sp, 1);
		sp->wake = wake;
		assert_string_equal(cmd(sp, "AUTH PLAIN " ALICE_BAD), "");
		while (worker_pending(w) > 0)
			event_base_loop(base, EVLOOP_ONCE);
		assert_int_equal(sp->state, SESSION_AUTH_WAIT); /* waiting for the timer */
		session_fini(sp);
		free(sp);
	}
	worker_destroy(w);
	assert_null(worker_default());
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_advertised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_configured, setup_noauth, teardown),
		cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_dialogue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async, setup_delay, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
