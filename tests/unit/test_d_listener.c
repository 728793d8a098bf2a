/*
 * test_d_listener.c - daemon/listener.c: parsing `listen` entries (IPv4, [IPv6],
 * wildcard, malformed), binding port 0 on loopback and reporting the bound
 * address, failing cleanly on a bad entry or an address in use, and Nagle off
 * on accepted TCP connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"

static void split_ok(const char *spec, const char *host, const char *port)
{
	char h[64], p[16];

	assert_int_equal(listener_split(spec, h, sizeof h, p, sizeof p), SC_OK);
	assert_string_equal(h, host);
	assert_string_equal(p, port);
}

static void split_bad(const char *spec)
{
	char h[64], p[16];

	if (listener_split(spec, h, sizeof h, p, sizeof p) != SC_ERR_SYNTAX)
		fail_msg("\"%s\" accepted", spec);
}

static void test_split(void **state)
{
	split_ok("127.0.0.1:25", "127.0.0.1", "25");
	split_ok("[::1]:2525", "::1", "2525");
	split_ok("[::]:25", "::", "25");
	split_ok("*:25", "0.0.0.0", "25");
	split_ok(":25", "0.0.0.0", "25");
	split_ok("localhost:587", "localhost", "587");
	split_bad("127.0.0.1");
	split_bad("127.0.0.1:");
	split_bad("::1:25");          /* IPv6 needs brackets */
	split_bad("[::1]25");
	split_bad("[::1:25");
	split_bad("127.0.0.1:2x5");
	split_bad("127.0.0.1:-1");
	split_bad("");
	split_bad("127.0.0.1:123456789012345678901");
}

static void test_bind_port0(void **state)
{
	const char *specs[] = { "127.0.0.1:0", "[::1]:0" };
	char err[256] = "";
	const char *name;
	size_t n = 2;

	if (listener_bind_all(specs, n, err, sizeof err) != SC_OK) {
		/* a machine without IPv6 loopback: IPv4 alone */
		n = 1;
		assert_int_equal(listener_bind_all(specs, n, err, sizeof err), SC_OK);
	}
	name = listener_name(0);
	assert_non_null(name);
	assert_true(strncmp(name, "127.0.0.1:", 10) == 0);
	assert_string_not_equal(name, "127.0.0.1:0");
	if (n == 2)
		assert_true(strncmp(listener_name(1), "[::1]:", 6) == 0);
	assert_null(listener_name(n));
	listener_close_all();
	assert_null(listener_name(0));
}

static void test_bind_errors(void **state)
{
	const char *bad[] = { "127.0.0.1:0", "nonsense" };
	const char *none[] = { NULL };
	const char *taken[2];
	char err[256] = "", used[64];

	assert_int_equal(listener_bind_all(bad, 2, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "nonsense"));
	/* nothing stays bound after a failure */
	assert_null(listener_name(0));
	assert_int_equal(listener_bind_all(none, 0, err, sizeof err), SC_ERR_CONFIG);

	/* the same port twice: the second bind fails and names the entry */
	taken[0] = "127.0.0.1:0";
	assert_int_equal(listener_bind_all(taken, 1, err, sizeof err), SC_OK);
	snprintf(used, sizeof used, "%s", listener_name(0));
	listener_close_all();
	taken[0] = used;
	taken[1] = used;
	assert_int_equal(listener_bind_all(taken, 2, err, sizeof err), SC_ERR_NETWORK);
	assert_non_null(strstr(err, used));
	assert_null(listener_name(0));
}

static int nodelay_of(int fd)
{
	int v = -1;
	socklen_t len = sizeof v;

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	return v;
}

/* An accepted loopback connection gets TCP_NODELAY; a UNIX socket is left
 * alone (and nothing fails). */
static void test_nodelay(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = socket(AF_INET, SOCK_STREAM, 0), afd;
	int sv[2];
	struct sockaddr un = { .sa_family = AF_UNIX };

	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(lfd >= 0 && cfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof sa), 0);
	len = sizeof sa;
	afd = accept(lfd, (struct sockaddr *)&sa, &len);
	assert_true(afd >= 0);
	assert_int_equal(nodelay_of(afd), 0); /* the kernel's default */
	listener_nodelay(afd, (struct sockaddr *)&sa);
	assert_int_not_equal(nodelay_of(afd), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	listener_nodelay(sv[0], &un);
	close(sv[0]);
	close(sv[1]);
	close(afd);
	close(cfd);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_bind_port0),
		cmocka_unit_test(test_bind_errors),
		cmocka_unit_test(test_nodelay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
