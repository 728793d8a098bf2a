/*
 * test_maildir.c - Maildir delivery (lib/maildir.c): template expansion (%u %n %d
 * %%), refusal of expansions that could leave the base ('/', leading '.'), bad
 * templates, the tmp/new/cur layout created on demand with mode 0700, unique names
 * in the Maildir form, content stored with LF line ends, and I/O errors provoked
 * with a file where a directory should be.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"

static char g_tmp[512], g_tpl[1200];

static int fx_setup(void **state)
{
	tc_tmpdir(g_tmp, sizeof g_tmp);
	return 0;
}

static int fx_teardown(void **state)
{
	tc_rmtree(g_tmp);
	return 0;
}

static struct sc_addr addr(const char *s)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse(s, strlen(s), SC_ADDR_UTF8, &a, NULL), SC_OK);
	return a;
}

/* The only file in @p dir (relative to g_tmp); its name goes to @p name. */
static int only_file(const char *dir, char *name, size_t size)
{
	char p[1400];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(p, sizeof p, "%s/%s", g_tmp, dir);
	d = opendir(p);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (name)
			snprintf(name, size, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void test_deliver_layout(void **state)
{
	static const char msg[] = "Subject: hi\r\nTo: <a@b>\r\n\r\nline one\r\nbare\rcr\r\n";
	struct sc_addr a = addr("Alice@Example.TEST");
	char err[512] = "", name[512], p[1600], *content;
	struct stat st;
	size_t len;
	char host[256];

	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/mail/%%d/%%n", g_tmp);
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, msg, sizeof msg - 1, err, sizeof err), SC_OK);
	assert_string_equal(err, "");
	/* The lookup key's parts: lower-case local part and domain. */
	for (const char *sub = "tmp\0new\0cur\0"; *sub; sub += 4) {
		snprintf(p, sizeof p, "%s/mail/example.test/alice/%s", g_tmp, sub);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	assert_int_equal(only_file("mail/example.test/alice/tmp", NULL, 0), 0);
	assert_int_equal(only_file("mail/example.test/alice/cur", NULL, 0), 0);
	assert_int_equal(only_file("mail/example.test/alice/new", name, sizeof name), 1);
	/* time.M<usec>P<pid>Q<n>.<host> */
	{
		long long t;
		long us, pid;
		unsigned q;
		char rest[256];

		assert_int_equal(sscanf(name, "%lld.M%ldP%ldQ%u.%255s", &t, &us, &pid, &q, rest), 5);
		assert_int_equal(pid, (long)getpid());
		assert_int_equal(gethostname(host, sizeof host), 0);
		assert_string_equal(rest, host);
	}
	snprintf(p, sizeof p, "%s/mail/example.test/alice/new/%s", g_tmp, name);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tc_read_file(p, &content, &len), 0);
	/* CRLF became LF; a bare CR stays. */
	assert_string_equal(content, "Subject: hi\nTo: <a@b>\n\nline one\nbare\rcr\n");
	free(content);

	/* A second delivery: a second, different file. */
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, msg, sizeof msg - 1, err, sizeof err), SC_OK);
	assert_int_equal(only_file("mail/example.test/alice/new", NULL, 0), 2);
}

static void test_expansion(void **state)
{
	struct sc_addr a = addr("bob@example.test");
	char err[512] = "";

	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/u-%%u/100%%%%", g_tmp);
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x\r\n", 3, err, sizeof err), SC_OK);
	assert_int_equal(only_file("u-bob@example.test/100%/new", NULL, 0), 1);
	/* Quoted local parts use the lookup key form. */
	a = addr("\"b c\"@example.test");
	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/%%n", g_tmp);
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, err, sizeof err), SC_OK);
	assert_int_equal(only_file("\"b c\"/new", NULL, 0), 1);
	/* UTF-8 local parts as they are. */
	a = addr("j\xc3\xb6rg@example.test");
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, err, sizeof err), SC_OK);
	assert_int_equal(only_file("j\xc3\xb6rg/new", NULL, 0), 1);
}

/* A local part may hold '/' (RFC 5321 atext): never a path component. */
static void test_traversal_refused(void **state)
{
	static const char *const bad[] = { "a/b@example.test", "\"../../etc\"@example.test",
					   "\"/x\"@example.test" };
	char err[512];
	struct stat st;
	char p[1400];

	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/m/%%n", g_tmp);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sc_addr a = addr(bad[i]);

		err[0] = '\0';
		assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, err, sizeof err),
				 SC_ERR_SYNTAX);
		assert_non_null(strstr(err, "cannot be a path component"));
	}
	snprintf(p, sizeof p, "%s/m", g_tmp);
	assert_int_not_equal(stat(p, &st), 0); /* nothing created */
	/* %u holds the '/' too. */
	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/m/%%u", g_tmp);
	{
		struct sc_addr a = addr("a/b@example.test");

		assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, NULL, 0), SC_ERR_SYNTAX);
	}
	/* Not using the local part: fine. */
	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/m/%%d", g_tmp);
	{
		struct sc_addr a = addr("a/b@example.test");

		assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, NULL, 0), SC_OK);
	}
}

static void test_bad_templates(void **state)
{
	struct sc_addr a = addr("bob@example.test");
	char err[512] = "", longp[5000];

	assert_int_equal(sc_maildir_deliver("lmtp:127.0.0.1:24", &a, "x", 1, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_int_equal(sc_maildir_deliver("maildir:relative/%n", &a, "x", 1, err, sizeof err),
			 SC_ERR_CONFIG);
	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/%%x", g_tmp);
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "unknown variable %x"));
	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/%%", g_tmp);
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, err, sizeof err), SC_ERR_CONFIG);
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = 'm';
	memcpy(longp, "maildir:/", 9);
	longp[sizeof longp - 1] = '\0';
	assert_int_equal(sc_maildir_deliver(longp, &a, "x", 1, err, sizeof err), SC_ERR_TOO_LONG);
	assert_int_equal(sc_maildir_deliver(NULL, &a, "x", 1, err, sizeof err), SC_ERR_ARG);
}

static void test_io_errors(void **state)
{
	struct sc_addr a = addr("bob@example.test");
	char err[512] = "", p[1400];

	/* A file where a parent directory should be. */
	snprintf(p, sizeof p, "%s/file", g_tmp);
	tc_write_file(p, "x", 1);
	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/file/%%n", g_tmp);
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, err, sizeof err), SC_ERR_IO);
	assert_non_null(strstr(err, "cannot create the Maildir"));
	/* new/ is a file. */
	snprintf(p, sizeof p, "%s/mb", g_tmp);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/mb/new", g_tmp);
	tc_write_file(p, "x", 1);
	snprintf(g_tpl, sizeof g_tpl, "maildir:%s/mb", g_tmp);
	assert_int_equal(sc_maildir_deliver(g_tpl, &a, "x", 1, err, sizeof err), SC_ERR_IO);
	assert_int_equal(only_file("mb/tmp", NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliver_layout, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_expansion, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_traversal_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_templates, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_io_errors, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
