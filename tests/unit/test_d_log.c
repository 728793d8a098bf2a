/*
 * test_d_log.c - daemon/log.c: log_escape() turns any client bytes into one
 * printable token (controls, space, backslash, NUL, CR/LF, 8-bit) and truncates
 * with "..." without overflowing; log_msg() honours the debug switch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

#define ESC(in, out) esc_ok(in, sizeof(in) - 1, out)

static void esc_ok(const char *in, size_t len, const char *want)
{
	char buf[256];

	assert_ptr_equal(log_escape(in, len, buf, sizeof buf), buf);
	assert_string_equal(buf, want);
}

static void test_escape_plain(void **state)
{
	ESC("alice@example.test", "alice@example.test");
	ESC("", "");
	ESC("<a@b>", "<a@b>");
}

static void test_escape_specials(void **state)
{
	ESC("a b", "a\\x20b");
	ESC("a\r\nb", "a\\x0d\\x0ab");
	ESC("x\0y", "x\\x00y");
	ESC("back\\slash", "back\\x5cslash");
	ESC("\x7f\x80\xff", "\\x7f\\x80\\xff");
	ESC("\xe7\x94\xa8", "\\xe7\\x94\\xa8");
	ESC("\x1b[31m", "\\x1b[31m");
}

static void test_escape_truncates(void **state)
{
	char big[1000], buf[16];

	memset(big, 'a', sizeof big);
	log_escape(big, sizeof big, buf, sizeof buf);
	assert_int_equal(strlen(buf), 15);
	assert_string_equal(buf + 12, "...");
	/* an escape never gets cut in half */
	memset(big, '\n', sizeof big);
	log_escape(big, sizeof big, buf, sizeof buf);
	assert_string_equal(buf, "\\x0a\\x0a\\x0a...");
	/* tiny buffers */
	log_escape("abc", 3, buf, 1);
	assert_string_equal(buf, "");
	log_escape("abc", 3, buf, 4);
	assert_string_equal(buf, "...");
	log_escape("abc", 3, buf, 0); /* no write at all */
}

static void test_log_debug_switch(void **state)
{
	int fds[2], saved;
	char out[512] = "";
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	log_init(LOG_SINK_STDERR, 0);
	assert_false(log_debug_enabled());
	log_msg(LOG_DEBUG, "hidden %d", 1);
	log_msg(LOG_INFO, "shown %d", 2);
	log_init(LOG_SINK_STDERR, 1);
	assert_true(log_debug_enabled());
	log_msg(LOG_DEBUG, "debug %d", 3);
	log_msg(LOG_WARNING, "warned");
	dup2(saved, 2);
	close(fds[1]);
	n = read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "smtpcertd["));
	assert_non_null(strstr(out, "]: shown 2\n"));
	assert_non_null(strstr(out, "]: debug: debug 3\n"));
	assert_non_null(strstr(out, "]: warning: warned\n"));
	assert_non_null(strstr(out, "Z smtpcertd[")); /* UTC timestamp */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_plain),
		cmocka_unit_test(test_escape_specials),
		cmocka_unit_test(test_escape_truncates),
		cmocka_unit_test(test_log_debug_switch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
