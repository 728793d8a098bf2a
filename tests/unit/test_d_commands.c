/*
 * test_d_commands.c - daemon/commands.c: splitting a command line into verb and
 * argument (blanks, empty lines, NUL, bare CR, non-ASCII) and the table lookup
 * (case-insensitive, exact length, unknown and over-long verbs), plus the table's
 * flags for the rows the protocol rules depend on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "commands.h"

static void split_ok(const char *line, size_t len, const char *verb, const char *arg)
{
	struct command_line cl;

	assert_int_equal(command_split(line, len, &cl), SC_OK);
	assert_int_equal(cl.verb_len, strlen(verb));
	assert_memory_equal(cl.verb, verb, cl.verb_len);
	if (!arg) {
		assert_null(cl.arg);
		assert_int_equal(cl.arg_len, 0);
	} else {
		assert_non_null(cl.arg);
		assert_int_equal(cl.arg_len, strlen(arg));
		assert_memory_equal(cl.arg, arg, cl.arg_len);
	}
}

#define SPLIT(line, verb, arg) split_ok(line, sizeof(line) - 1, verb, arg)

static void test_split_basic(void **state)
{
	SPLIT("NOOP", "NOOP", NULL);
	SPLIT("CERT alice@example.test", "CERT", "alice@example.test");
	SPLIT("cert <a@b>", "cert", "<a@b>");
	SPLIT("EHLO client.example.org", "EHLO", "client.example.org");
}

static void test_split_blanks(void **state)
{
	/* trailing blanks are no argument; extra blanks and tabs are trimmed */
	SPLIT("RSET ", "RSET", NULL);
	SPLIT("RSET \t \t", "RSET", NULL);
	SPLIT("CERT   a@b  ", "CERT", "a@b");
	SPLIT("CERT \ta@b\t", "CERT", "a@b");
	SPLIT("HELP cert more words", "HELP", "cert more words");
}

static void test_split_bare_cr_stays(void **state)
{
	/* docs/design.md: a bare CR stays in the line and so fails parsing later */
	SPLIT("NOOP\r", "NOOP\r", NULL);
	SPLIT("CERT a@b\r", "CERT", "a@b\r");
	SPLIT("CERT a\rb@c", "CERT", "a\rb@c");
}

static void test_split_refused(void **state)
{
	struct command_line cl;

	assert_int_equal(command_split("", 0, &cl), SC_ERR_SYNTAX);
	assert_int_equal(command_split(" NOOP", 5, &cl), SC_ERR_SYNTAX);
	assert_int_equal(command_split("   ", 3, &cl), SC_ERR_SYNTAX);
	assert_int_equal(command_split("NO\0OP", 5, &cl), SC_ERR_SYNTAX);
	assert_int_equal(command_split("CERT a@b\0", 9, &cl), SC_ERR_SYNTAX);
	assert_int_equal(command_split("\0", 1, &cl), SC_ERR_SYNTAX);
}

static void test_split_non_ascii(void **state)
{
	/* bytes are bytes: the verb simply will not be found */
	SPLIT("\xc3\xa9HLO x", "\xc3\xa9HLO", "x");
	SPLIT("CERT \xe7\x94\xa8\xe6\x88\xb7@example.test", "CERT",
	      "\xe7\x94\xa8\xe6\x88\xb7@example.test");
	SPLIT("\xff\xfe\xfd", "\xff\xfe\xfd", NULL);
}

static void test_lookup(void **state)
{
	const struct command *c;

	c = command_lookup("CERT", 4);
	assert_non_null(c);
	assert_string_equal(c->verb, "CERT");
	/* RFC 5321 2.4: verbs are case-insensitive */
	assert_ptr_equal(command_lookup("cErT", 4), c);
	assert_ptr_equal(command_lookup("starttls", 8), command_lookup("STARTTLS", 8));
	assert_non_null(command_lookup("CERS", 4));
	assert_non_null(command_lookup("CERC", 4));
	assert_non_null(command_lookup("ehlo", 4));
	assert_non_null(command_lookup("helo", 4));
	assert_non_null(command_lookup("MAIL", 4));
	/* exact length: no prefixes, no extensions of a verb */
	assert_null(command_lookup("CER", 3));
	assert_null(command_lookup("CERTX", 5));
	assert_null(command_lookup("CERT", 3));
	assert_null(command_lookup("STARTTLSX", 9));
	assert_null(command_lookup("", 0));
	assert_null(command_lookup("VRFY", 4));
	assert_null(command_lookup("NOOP\r", 5));
	assert_null(command_lookup("NO\0P", 4));
	assert_null(command_lookup("\xc3\xa9HLO", 5));
}

static void test_table_flags(void **state)
{
	const struct command *c;

	/* RFC 5321 4.1.4: CERT & co. need a greeting first; HELO/EHLO do not */
	assert_true(command_lookup("CERT", 4)->flags & CMD_NEEDS_GREETING);
	assert_true(command_lookup("CERS", 4)->flags & CMD_NEEDS_GREETING);
	assert_true(command_lookup("CERC", 4)->flags & CMD_NEEDS_GREETING);
	assert_false(command_lookup("EHLO", 4)->flags & CMD_NEEDS_GREETING);
	assert_false(command_lookup("STARTTLS", 8)->flags & CMD_NEEDS_GREETING);
	/* RFC 3207 4.2 / RFC 2920 3.1: these end a pipelined group */
	c = command_lookup("STARTTLS", 8);
	assert_true(c->flags & CMD_ENDS_PIPELINE_GROUP);
	assert_true(c->flags & CMD_NO_ARG);
	assert_true(command_lookup("QUIT", 4)->flags & CMD_ENDS_PIPELINE_GROUP);
	assert_false(command_lookup("CERT", 4)->flags & CMD_ENDS_PIPELINE_GROUP);
	assert_true(command_lookup("CERT", 4)->flags & CMD_TAKES_ARG);
	assert_true(command_lookup("RSET", 4)->flags & CMD_NO_ARG);
	assert_string_equal(command_lookup("CERT", 4)->usage, "CERT <address>");
	assert_string_equal(command_lookup("STARTTLS", 8)->usage, "STARTTLS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_basic),
		cmocka_unit_test(test_split_blanks),
		cmocka_unit_test(test_split_bare_cr_stays),
		cmocka_unit_test(test_split_refused),
		cmocka_unit_test(test_split_non_ascii),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_table_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
