/*
 * test_d_ready.c - daemon/seccomp.c's start-up handshake of the root children
 * (writer, reload helper): the parent goes on only after the child's "ready"
 * octet, which the child sends once its system call filter is installed; a
 * child that ends first, or says something else, is an error, not a hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "seccomp_filter.h"

/* Fork a child that runs @p what on its end; the parent's end. */
static int child_with(int what, pid_t *pid)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		close(sv[0]);
		if (what == 1)
			/* a configuration that cannot be read means "seccomp = yes" */
			seccomp_filter_child("/nonexistent/smtpcertd.conf", "test child", sv[1]);
		else if (what == 2)
			(void)!send(sv[1], "x", 1, 0);
		_exit(0);
	}
	close(sv[1]);
	return sv[0];
}

static void reap(pid_t pid)
{
	int status = 0;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
}

static void test_ready(void **state)
{
	char err[256] = "";
	pid_t pid;
	int fd = child_with(1, &pid);

	(void)state;
	assert_int_equal(seccomp_child_wait(fd, "test child", err, sizeof err), SC_OK);
	close(fd);
	reap(pid);
}

static void test_ended_before_ready(void **state)
{
	char err[256] = "";
	pid_t pid;
	int fd = child_with(0, &pid);

	(void)state;
	assert_int_equal(seccomp_child_wait(fd, "test child", err, sizeof err), SC_ERR_IO);
	assert_non_null(strstr(err, "test child: ended before it was ready"));
	close(fd);
	reap(pid);
}

static void test_wrong_octet(void **state)
{
	char err[256] = "";
	pid_t pid;
	int fd = child_with(2, &pid);

	(void)state;
	assert_int_equal(seccomp_child_wait(fd, "test child", err, sizeof err), SC_ERR_IO);
	close(fd);
	reap(pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready),
		cmocka_unit_test(test_ended_before_ready),
		cmocka_unit_test(test_wrong_octet),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
