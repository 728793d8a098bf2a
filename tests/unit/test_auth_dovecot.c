/*
 * test_auth_dovecot.c - the dovecot: source (lib/auth_dovecot.c) against a fake
 * Dovecot auth server in a thread on a UNIX socket: the client handshake and
 * the AUTH line (service, secured, rip, PLAIN response), OK with and without
 * user= (tab-escaped), FAIL, FAIL temp, CONT, wrong request id, wrong major
 * version, no PLAIN mechanism, garbage, an endless line, a NUL byte, EOF at
 * each step, a server that never answers (timeout), no socket (Dovecot down),
 * a client IP with a tab, and bad socket specs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"

enum script {
	S_OK, S_OK_USER, S_FAIL, S_FAIL_TEMP, S_CONT, S_WRONG_ID, S_BAD_VERSION, S_NO_PLAIN,
	S_GARBAGE, S_ENDLESS, S_NUL, S_EOF_HANDSHAKE, S_EOF_AUTH, S_SILENT, S_SILENT_AUTH
};

struct server {
	int lfd;
	enum script script;
	char client_lines[4096]; /* what the client sent, as received */
	pthread_t th;
};

static char g_tmp[512];
static char g_sock[600];
static char g_spec[620];

static int setup(void **state)
{
	tc_tmpdir(g_tmp, sizeof g_tmp);
	snprintf(g_sock, sizeof g_sock, "%s/auth-client", g_tmp);
	snprintf(g_spec, sizeof g_spec, "dovecot:%s", g_sock);
	return 0;
}

static int teardown(void **state)
{
	tc_rmtree(g_tmp);
	return 0;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Read until @p count LFs arrived in total (or 2 s pass). */
static void read_lines(int fd, struct server *sv, int count)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		size_t have = strlen(sv->client_lines);
		int lf = 0;
		ssize_t r;

		for (size_t i = 0; i < have; i++)
			lf += sv->client_lines[i] == '\n';
		if (lf >= count || have + 1 >= sizeof sv->client_lines)
			return;
		if (poll(&p, 1, 2000) <= 0)
			return;
		r = recv(fd, sv->client_lines + have, sizeof sv->client_lines - have - 1, 0);
		if (r <= 0)
			return;
		sv->client_lines[have + (size_t)r] = '\0';
	}
}

static const char handshake[] = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
				"SPID\t123\nCUID\t7\nCOOKIE\t0123456789abcdef\nDONE\n";

/* The id the client put in its AUTH line. */
static unsigned auth_id(const struct server *sv)
{
	const char *a = strstr(sv->client_lines, "AUTH\t");

	return a ? (unsigned)strtoul(a + 5, NULL, 10) : 0;
}

static void *server_main(void *arg)
{
	struct server *sv = arg;
	char buf[256];
	int fd = accept(sv->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	read_lines(fd, sv, 2); /* VERSION, CPID */
	switch (sv->script) {
	case S_BAD_VERSION:
		send_str(fd, "VERSION\t2\t0\nMECH\tPLAIN\nDONE\n");
		break;
	case S_NO_PLAIN:
		send_str(fd, "VERSION\t1\t2\nMECH\tCRAM-MD5\nDONE\n");
		break;
	case S_EOF_HANDSHAKE:
		send_str(fd, "VERSION\t1\t2\nMECH\tPLAIN\n");
		break;
	case S_SILENT:
		sleep(1);
		break;
	default:
		send_str(fd, handshake);
		break;
	}
	if (sv->script == S_BAD_VERSION || sv->script == S_NO_PLAIN ||
	    sv->script == S_EOF_HANDSHAKE || sv->script == S_SILENT) {
		/* the client sends no AUTH after an unusable handshake; it closes
		 * (or we do, for EOF in the handshake) */
		if (sv->script != S_EOF_HANDSHAKE)
			read_lines(fd, sv, 3);
		close(fd);
		return NULL;
	}
	read_lines(fd, sv, 3);
	switch (sv->script) {
	case S_OK:
		snprintf(buf, sizeof buf, "OK\t%u\n", auth_id(sv));
		break;
	case S_OK_USER:
		snprintf(buf, sizeof buf, "OK\t%u\tuser=Alice@Example.test\001tx\tnologin\n",
			 auth_id(sv));
		break;
	case S_FAIL:
		snprintf(buf, sizeof buf, "FAIL\t%u\tuser=alice@example.test\treason=nope\n",
			 auth_id(sv));
		break;
	case S_FAIL_TEMP:
		snprintf(buf, sizeof buf, "FAIL\t%u\ttemp\n", auth_id(sv));
		break;
	case S_CONT:
		snprintf(buf, sizeof buf, "CONT\t%u\t\n", auth_id(sv));
		break;
	case S_WRONG_ID:
		snprintf(buf, sizeof buf, "OK\t%u\n", auth_id(sv) + 1);
		break;
	case S_GARBAGE:
		snprintf(buf, sizeof buf, "HELLO\tworld\n");
		break;
	case S_NUL:
		send_all(fd, "OK\t1\0\n", 6);
		buf[0] = '\0';
		break;
	case S_ENDLESS: {
		char chunk[1024];

		memset(chunk, 'x', sizeof chunk);
		for (int i = 0; i < 40; i++)
			send_all(fd, chunk, sizeof chunk);
		buf[0] = '\0';
		break;
	}
	case S_SILENT_AUTH:
		sleep(1);
		buf[0] = '\0';
		break;
	default:
		buf[0] = '\0';
		break;
	}
	send_str(fd, buf);
	usleep(50000);
	close(fd);
	return NULL;
}

static void server_start(struct server *sv, enum script script)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(sv, 0, sizeof *sv);
	sv->script = script;
	unlink(g_sock);
	memcpy(sa.sun_path, g_sock, strlen(g_sock) + 1);
	sv->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(sv->lfd >= 0);
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(sv->lfd, 4), 0);
	assert_int_equal(pthread_create(&sv->th, NULL, server_main, sv), 0);
}

static void server_stop(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
}

static sc_auth *open_ok(void)
{
	sc_auth *a = NULL;
	char err[256];

	assert_int_equal(sc_auth_open(g_spec, &a, err, sizeof err), SC_OK);
	return a;
}

/* One verification against @p script. */
static sc_status run(enum script script, struct server *sv, int timeout_ms, char *canon,
		     size_t canonlen)
{
	sc_auth *a = open_ok();
	sc_status rc;

	server_start(sv, script);
	rc = sc_auth_verify(a, "alice@example.test", "s3cret pw", "192.0.2.7", timeout_ms, canon,
			    canonlen);
	server_stop(sv);
	sc_auth_close(a);
	return rc;
}

static void test_ok_and_request(void **state)
{
	struct server sv;
	char canon[128];
	const char *auth;
	/* base64("\0alice@example.test\0s3cret pw") */
	static const char resp[] = "resp=AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQgcHc=\n";

	assert_int_equal(run(S_OK, &sv, 2000, canon, sizeof canon), SC_OK);
	assert_string_equal(canon, "alice@example.test");
	assert_non_null(strstr(sv.client_lines, "VERSION\t1\t1\nCPID\t"));
	auth = strstr(sv.client_lines, "AUTH\t");
	assert_non_null(auth);
	assert_non_null(strstr(auth, "\tPLAIN\tservice=smtp\tsecured\t"));
	assert_non_null(strstr(auth, "\trip=192.0.2.7\t"));
	assert_non_null(strstr(auth, resp));
}

static void test_ok_user(void **state)
{
	struct server sv;
	char canon[128];

	assert_int_equal(run(S_OK_USER, &sv, 2000, canon, sizeof canon), SC_OK);
	/* tab-escaping undone */
	assert_string_equal(canon, "Alice@Example.test\tx");
	assert_int_equal(run(S_OK_USER, &sv, 2000, NULL, 0), SC_OK);
	/* an identity that does not fit is never truncated */
	assert_int_equal(run(S_OK_USER, &sv, 2000, canon, 8), SC_ERR_TEMP);
	assert_string_equal(canon, "");
}

static void test_fail(void **state)
{
	struct server sv;
	char canon[128] = "junk";

	assert_int_equal(run(S_FAIL, &sv, 2000, canon, sizeof canon), SC_ERR_REJECTED);
	assert_string_equal(canon, "");
	assert_int_equal(run(S_FAIL_TEMP, &sv, 2000, NULL, 0), SC_ERR_TEMP);
}

static void test_protocol_errors(void **state)
{
	static const enum script bad[] = { S_CONT, S_WRONG_ID, S_BAD_VERSION, S_NO_PLAIN,
					   S_GARBAGE, S_ENDLESS, S_NUL, S_EOF_HANDSHAKE,
					   S_EOF_AUTH };
	struct server sv;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sc_status rc = run(bad[i], &sv, 2000, NULL, 0);

		if (rc != SC_ERR_TEMP)
			fail_msg("script %zu: %s", i, sc_strerror(rc));
	}
}

static void test_timeout(void **state)
{
	struct server sv;
	struct timespec t0, t1;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(run(S_SILENT, &sv, 200, NULL, 0), SC_ERR_TIMEOUT);
	assert_int_equal(run(S_SILENT_AUTH, &sv, 200, NULL, 0), SC_ERR_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* each waited its 200 ms, not the server's second */
	ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
	assert_true(ms >= 400);
	/* server_stop waited for the sleeping threads: allow for that */
	assert_true(ms < 4000);
}

static void test_down(void **state)
{
	sc_auth *a = open_ok();

	/* no socket: Dovecot is not running */
	assert_int_equal(sc_auth_verify(a, "alice@example.test", "pw", NULL, 500, NULL, 0),
			 SC_ERR_TEMP);
	/* a socket nobody listens on */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		memcpy(sa.sun_path, g_sock, strlen(g_sock) + 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
		assert_int_equal(sc_auth_verify(a, "alice@example.test", "pw", NULL, 500, NULL, 0),
				 SC_ERR_TEMP);
		close(fd);
	}
	sc_auth_close(a);
}

static void test_unsafe_ip(void **state)
{
	struct server sv;
	sc_auth *a = open_ok();

	server_start(&sv, S_OK);
	/* a value that would break the line is left out, not sent */
	assert_int_equal(sc_auth_verify(a, "alice@example.test", "pw", "1.2.3.4\tx=y", 2000,
					NULL, 0), SC_OK);
	server_stop(&sv);
	assert_null(strstr(sv.client_lines, "rip="));
	assert_null(strstr(sv.client_lines, "x=y"));
	sc_auth_close(a);
}

static void test_specs(void **state)
{
	sc_auth *a = NULL;
	char err[256], longp[200];

	assert_int_equal(sc_auth_open("dovecot:relative/socket", &a, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "absolute"));
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	snprintf(g_spec, sizeof g_spec, "dovecot:%s", longp);
	assert_int_equal(sc_auth_open(g_spec, &a, err, sizeof err), SC_ERR_CONFIG);
	assert_null(a);
	snprintf(g_spec, sizeof g_spec, "dovecot:%s", g_sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_and_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ok_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_ip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_specs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
