/*
 * test_d_commands.c - daemon/commands.c: splitting a command line into verb and
 * argument (blanks, empty lines, NUL, bare CR, non-ASCII) and the table lookup
 * (case-insensitive, exact length, unknown and over-long verbs), plus the table's
 * flags for the rows the protocol rules depend on; the lookup against strncasecmp()
 * for every byte at every position of every verb, and the verb each request's log
 * line names (the table's spelling, or the escaped unknown word).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <cmocka.h>

#include "commands.h"
#include "log.h"
#include "test_d_fixture.h"

static struct dfix fix;

static int setup(void **state)
{
	dfix_setup(&fix, "", 0);
	return 0;
}

static int teardown(void **state)
{
	dfix_teardown(&fix);
	return 0;
}

/* Every row of the table (command_lookup() relies on A-Z only verbs). */
static const char *const all_verbs[] = { "HELO", "EHLO", "NOOP", "RSET", "HELP", "QUIT",
					 "STARTTLS", "AUTH", "CERT", "CERS", "CERC", "MAIL",
					 "RCPT", "DATA", "BDAT" };
#define NVERBS (sizeof all_verbs / sizeof all_verbs[0])

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

/* What the lookup was before it compared bytes itself: strlen() and
 * strncasecmp() per row (the C locale: ASCII case folding only). */
static const char *lookup_reference(const char *verb, size_t len)
{
	for (size_t i = 0; i < NVERBS; i++)
		if (strlen(all_verbs[i]) == len && strncasecmp(all_verbs[i], verb, len) == 0)
			return all_verbs[i];
	return NULL;
}

static void test_lookup_rows(void **state)
{
	size_t rows = 0;

	/* the table itself: every verb A-Z only (the case folding of
	 * command_lookup() is exact only for those), its length in the row, and
	 * one of the verbs below */
	for (const struct command *c; (c = command_row(rows)) != NULL; rows++) {
		assert_int_equal(c->verb_len, strlen(c->verb));
		for (size_t k = 0; k < c->verb_len; k++)
			if (c->verb[k] < 'A' || c->verb[k] > 'Z')
				fail_msg("row %zu: verb \"%s\" is not A-Z only", rows, c->verb);
		assert_non_null(lookup_reference(c->verb, c->verb_len));
	}
	assert_int_equal(rows, NVERBS);
	for (size_t i = 0; i < NVERBS; i++) {
		const char *v = all_verbs[i];
		size_t len = strlen(v);
		const struct command *c = command_lookup(v, len);
		char lower[16], mixed[16];

		assert_non_null(c);
		assert_string_equal(c->verb, v);
		assert_int_equal(c->verb_len, len);
		/* the case folding is exact only for A-Z verbs */
		for (size_t k = 0; k < len; k++)
			assert_true(v[k] >= 'A' && v[k] <= 'Z');
		for (size_t k = 0; k < len; k++) {
			lower[k] = (char)(v[k] | 0x20);
			mixed[k] = (char)(k % 2 ? v[k] | 0x20 : v[k]);
		}
		assert_ptr_equal(command_lookup(lower, len), c);
		assert_ptr_equal(command_lookup(mixed, len), c);
		/* a prefix or an extension of a verb is no verb */
		assert_null(command_lookup(v, len - 1));
		assert_null(lookup_reference(v, len - 1));
		memcpy(lower + len, "S", 1);
		assert_null(command_lookup(lower, len + 1));
	}
}

/* Every byte value at every position of every verb: the same row as the
 * strncasecmp() lookup, including the bytes one bit away from a letter
 * ('@' and '`' around A, 0xc1 and 0xe1 above it, NUL). */
static void test_lookup_every_byte(void **state)
{
	size_t found = 0;

	for (size_t i = 0; i < NVERBS; i++) {
		size_t len = strlen(all_verbs[i]);

		for (size_t pos = 0; pos < len; pos++) {
			for (int b = 0; b < 256; b++) {
				char v[16];
				const struct command *c;
				const char *want;

				memcpy(v, all_verbs[i], len);
				v[pos] = (char)b;
				c = command_lookup(v, len);
				want = lookup_reference(v, len);
				if (!want) {
					assert_null(c);
					continue;
				}
				assert_non_null(c);
				assert_string_equal(c->verb, want);
				found++;
			}
		}
	}
	/* upper and lower case at each position, plus neighbours that are
	 * verbs too (CERT/CERS/CERC, HELO/HELP, ...) */
	assert_true(found > 2 * 4 * NVERBS);
}

/* Run @p line through the dispatcher of a fresh session (greeted when
 * @p greet) and return its request log line from the first "cmd=". */
static const char *dispatch_logged(const char *line, size_t len, int greet)
{
	static char out[8192];
	struct session s;
	int fds[2], saved;
	ssize_t n;
	char *p, *nl;

	memset(&s, 0, sizeof s);
	session_init(&s, fix.rt, "192.0.2.1:1234", "test0001");
	log_init(LOG_SINK_NONE, 0);
	if (greet) {
		session_line(&s, "EHLO x.test", 11);
		dfix_take(&s);
	}
	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	log_init(LOG_SINK_STDERR, 0);
	command_dispatch(&s, line, len);
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	dfix_take(&s);
	session_fini(&s);
	assert_true(n > 0);
	out[n] = '\0';
	p = strstr(out, "]: client=192.0.2.1:1234 session=test0001 cmd=");
	assert_non_null(p);
	p += strlen("]: client=192.0.2.1:1234 session=test0001 ");
	/* the time taken varies: cut the line at " us=" */
	nl = strstr(p, " us=");
	assert_non_null(nl);
	*nl = '\0';
	return p;
}

#define LOGGED(line, greet) dispatch_logged(line, sizeof(line) - 1, greet)

static void test_dispatch_logged_verb(void **state)
{
	/* known verbs: as the table spells them, whatever the client's case */
	assert_string_equal(LOGGED("cErT alice@example.test", 0),
			    "cmd=CERT result=503 status=5.5.1");
	assert_string_equal(LOGGED("noop", 1), "cmd=NOOP result=250 status=2.0.0");
	assert_string_equal(LOGGED("StartTLS x", 1), "cmd=STARTTLS result=501 status=5.5.4");
	/* unknown verbs: the client's word, escaped */
	assert_string_equal(LOGGED("VRFY x", 1), "cmd=VRFY result=500 status=5.5.1");
	assert_string_equal(LOGGED("vrfy", 1), "cmd=vrfy result=500 status=5.5.1");
	assert_string_equal(LOGGED("CER x", 1), "cmd=CER result=500 status=5.5.1");
	assert_string_equal(LOGGED("CERTX x", 1), "cmd=CERTX result=500 status=5.5.1");
	assert_string_equal(LOGGED("STARTTLSX", 1), "cmd=STARTTLSX result=500 status=5.5.1");
	assert_string_equal(LOGGED("\xc3\xa9HLO x", 1),
			    "cmd=\\xc3\\xa9HLO result=500 status=5.5.1");
	assert_string_equal(LOGGED("C\xc5RT a@b", 1), "cmd=C\\xc5RT result=500 status=5.5.1");
	assert_string_equal(LOGGED("CER\\ x", 1), "cmd=CER\\x5c result=500 status=5.5.1");
	/* a word longer than the escape buffer is cut with "..." */
	assert_string_equal(LOGGED("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01 x", 1),
			    "cmd=\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01"
			    "\\x01... result=500 status=5.5.1");
	/* NUL: a syntax error, logged from the first COMMAND_VERB_MAX bytes */
	assert_string_equal(LOGGED("NO\0OP", 1), "cmd=NO\\x00OP result=500 status=5.5.2");
	assert_string_equal(LOGGED("CERT a@b\0 and more", 1),
			    "cmd=CERT\\x20a@b result=500 status=5.5.2");
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
		cmocka_unit_test(test_lookup_rows),
		cmocka_unit_test(test_lookup_every_byte),
		cmocka_unit_test(test_dispatch_logged_verb),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
