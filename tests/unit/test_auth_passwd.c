/*
 * test_auth_passwd.c - lib/auth.c and the passwd: source (lib/auth_passwd.c):
 * spec parsing, file errors reported as FILE:LINE at open (no '@', no hash, a
 * ':' in the hash, NUL byte, over-long line, duplicate user, missing file),
 * sha512-crypt / yescrypt / bcrypt hashes made here with libcrypt, wrong
 * password, unknown user, case-insensitive lookup key, the canonical name,
 * locked hashes, bounds on user and password, re-reading on change, a file
 * that breaks later failing closed (SC_ERR_TEMP), concurrent verification,
 * and the constant-time comparison.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "auth_int.h"
#include "testcert.h"

static char g_tmp[512];
static char g_file[600];
static char g_spec[620];

static int setup(void **state)
{
	tc_tmpdir(g_tmp, sizeof g_tmp);
	snprintf(g_file, sizeof g_file, "%s/passwd", g_tmp);
	snprintf(g_spec, sizeof g_spec, "passwd:%s", g_file);
	return 0;
}

static int teardown(void **state)
{
	tc_rmtree(g_tmp);
	return 0;
}

/* A hash of @p pw with @p prefix ("$6$", "$y$", "$2b$") from libcrypt. */
static void make_hash(const char *prefix, const char *pw, char *out, size_t size)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	memset(&cd, 0, sizeof cd);
	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof salt));
	assert_non_null(crypt_rn(pw, salt, &cd, sizeof cd));
	assert_true(strlen(cd.output) < size);
	snprintf(out, size, "%s", cd.output);
}

static void append(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);

	assert_true(n + strlen(s) < size);
	memcpy(buf + n, s, strlen(s) + 1);
}

static void write_text(const char *text)
{
	/* a new inode each time: the change is seen even within one second */
	char tmp[700];

	snprintf(tmp, sizeof tmp, "%s.tmp", g_file);
	tc_write_file(tmp, text, strlen(text));
	assert_int_equal(rename(tmp, g_file), 0);
}

static sc_auth *open_ok(void)
{
	sc_auth *a = NULL;
	char err[512];

	assert_int_equal(sc_auth_open(g_spec, &a, err, sizeof err), SC_OK);
	assert_non_null(a);
	return a;
}

static void open_fails(const char *text, const char *want_err)
{
	sc_auth *a = (sc_auth *)1;
	char err[512] = "";

	write_text(text);
	assert_int_equal(sc_auth_open(g_spec, &a, err, sizeof err), SC_ERR_CONFIG);
	assert_null(a);
	if (!strstr(err, want_err))
		fail_msg("error \"%s\" lacks \"%s\"", err, want_err);
}

static sc_status verify(sc_auth *a, const char *u, const char *p, char *canon, size_t n)
{
	return sc_auth_verify(a, u, p, "192.0.2.1", 5000, canon, n);
}

static void test_spec(void **state)
{
	sc_auth *a = (sc_auth *)1;
	char err[256];

	assert_int_equal(sc_auth_open("ldap:/x", &a, err, sizeof err), SC_ERR_CONFIG);
	assert_null(a);
	assert_non_null(strstr(err, "expected passwd:"));
	assert_int_equal(sc_auth_open("passwd", &a, err, sizeof err), SC_ERR_CONFIG);
	assert_int_equal(sc_auth_open("passwd:", &a, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "missing path"));
	assert_int_equal(sc_auth_open(NULL, &a, err, sizeof err), SC_ERR_CONFIG);
	assert_int_equal(sc_auth_open("passwd:/x", NULL, err, sizeof err), SC_ERR_ARG);
	sc_auth_close(NULL);
}

static void test_file_errors(void **state)
{
	sc_auth *a = NULL;
	char err[512], big[2000];

	assert_int_equal(sc_auth_open(g_spec, &a, err, sizeof err), SC_ERR_CONFIG); /* missing */
	assert_non_null(strstr(err, g_file));
	open_fails("# c\nalice.example.test:$6$abc$def\n", "passwd:2: expected user@domain:hash");
	open_fails("alice@example.test\n", "passwd:1: expected");
	open_fails("alice@example.test:\n", "passwd:1: missing or malformed hash");
	open_fails("alice@example.test:$6$a:b\n", "passwd:1: missing or malformed hash");
	open_fails("al ice@example.test:$6$ab$cd\n", "passwd:1: user is not an address");
	open_fails("alice@example.test:$6$ab$cd\nALICE@Example.TEST:$6$ef$gh\n", "listed twice");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "a@b.test:", 9);
	open_fails(big, "passwd:1: line longer than");
	{
		static const char nul[] = "alice@example.test:$6$ab\0cd\n";

		tc_write_file(g_file, nul, sizeof nul - 1);
		assert_int_equal(sc_auth_open(g_spec, &a, err, sizeof err), SC_ERR_CONFIG);
		assert_non_null(strstr(err, "NUL"));
	}
	/* a directory is not a passwd file */
	snprintf(g_spec, sizeof g_spec, "passwd:%s", g_tmp);
	assert_int_equal(sc_auth_open(g_spec, &a, err, sizeof err), SC_ERR_CONFIG);
	snprintf(g_spec, sizeof g_spec, "passwd:%s", g_file);
}

static void test_hashes(void **state)
{
	static const char *const prefixes[] = { "$6$", "$y$", "$2b$", "$5$" };
	char text[4096] = "# users\n\n", h[256], canon[128];
	sc_auth *a;

	for (size_t i = 0; i < 4; i++) {
		char line[400], pw[32];

		snprintf(pw, sizeof pw, "pw-%zu", i);
		make_hash(prefixes[i], pw, h, sizeof h);
		snprintf(line, sizeof line, "  User%zu@Example.TEST:%s  \n", i, h);
		append(text, sizeof text, line);
	}
	append(text, sizeof text, "locked@example.test:!\nstar@example.test:*\n");
	write_text(text);
	a = open_ok();
	for (size_t i = 0; i < 4; i++) {
		char user[64], pw[32];

		snprintf(user, sizeof user, "user%zu@example.test", i);
		snprintf(pw, sizeof pw, "pw-%zu", i);
		assert_int_equal(verify(a, user, pw, canon, sizeof canon), SC_OK);
		/* the canonical name is the file's spelling */
		snprintf(user, sizeof user, "User%zu@Example.TEST", i);
		assert_string_equal(canon, user);
		assert_int_equal(verify(a, user, "pw-x", canon, sizeof canon), SC_ERR_REJECTED);
		assert_string_equal(canon, "");
	}
	/* domain case folded; a trailing dot is the same domain */
	assert_int_equal(verify(a, "user0@EXAMPLE.test", "pw-0", NULL, 0), SC_OK);
	assert_int_equal(verify(a, "nobody@example.test", "pw-0", NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(verify(a, "not an address", "pw-0", NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(verify(a, "locked@example.test", "!", NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(verify(a, "star@example.test", "*", NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(verify(a, "user0@example.test", "", NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(verify(a, "", "pw-0", NULL, 0), SC_ERR_REJECTED);
	sc_auth_close(a);
}

static void test_bounds(void **state)
{
	char h[256], text[400], longpw[1100], longuser[600];
	sc_auth *a;

	make_hash("$6$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "a@example.test:%s\n", h);
	write_text(text);
	a = open_ok();
	memset(longpw, 'p', sizeof longpw - 1);
	longpw[sizeof longpw - 1] = '\0';
	memset(longuser, 'u', sizeof longuser - 1);
	longuser[sizeof longuser - 1] = '\0';
	assert_int_equal(verify(a, "a@example.test", longpw, NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(verify(a, longuser, "pw", NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(sc_auth_verify(NULL, "a", "b", NULL, 1, NULL, 0), SC_ERR_ARG);
	assert_int_equal(sc_auth_verify(a, NULL, "b", NULL, 1, NULL, 0), SC_ERR_ARG);
	assert_int_equal(sc_auth_verify(a, "a", NULL, NULL, 1, NULL, 0), SC_ERR_ARG);
	/* timeout 0 and no IP are fine for a file */
	assert_int_equal(sc_auth_verify(a, "a@example.test", "pw", NULL, 0, NULL, 0), SC_OK);
	sc_auth_close(a);
}

static void test_reread(void **state)
{
	char h1[256], h2[256], text[800];
	sc_auth *a;

	make_hash("$6$", "one", h1, sizeof h1);
	make_hash("$6$", "two", h2, sizeof h2);
	snprintf(text, sizeof text, "a@example.test:%s\n", h1);
	write_text(text);
	a = open_ok();
	assert_int_equal(verify(a, "a@example.test", "one", NULL, 0), SC_OK);
	assert_int_equal(verify(a, "b@example.test", "two", NULL, 0), SC_ERR_REJECTED);
	/* a user added, a password changed */
	snprintf(text, sizeof text, "a@example.test:%s\nb@example.test:%s\n", h2, h2);
	write_text(text);
	assert_int_equal(verify(a, "b@example.test", "two", NULL, 0), SC_OK);
	assert_int_equal(verify(a, "a@example.test", "one", NULL, 0), SC_ERR_REJECTED);
	assert_int_equal(verify(a, "a@example.test", "two", NULL, 0), SC_OK);
	/* broken later: fail closed rather than serve the old table */
	write_text("garbage\n");
	assert_int_equal(verify(a, "b@example.test", "two", NULL, 0), SC_ERR_TEMP);
	unlink(g_file);
	assert_int_equal(verify(a, "b@example.test", "two", NULL, 0), SC_ERR_TEMP);
	/* repaired */
	snprintf(text, sizeof text, "b@example.test:%s\n", h2);
	write_text(text);
	assert_int_equal(verify(a, "b@example.test", "two", NULL, 0), SC_OK);
	/* an empty file: everyone is unknown (and still costs a hash) */
	write_text("# nobody\n");
	assert_int_equal(verify(a, "b@example.test", "two", NULL, 0), SC_ERR_REJECTED);
	sc_auth_close(a);
}

struct thread_arg {
	sc_auth *a;
	int ok;
};

static void *thread_main(void *p)
{
	struct thread_arg *t = p;

	for (int i = 0; i < 10; i++) {
		char canon[64];

		if (verify(t->a, "a@example.test", "pw", canon, sizeof canon) == SC_OK &&
		    !strcmp(canon, "a@example.test") &&
		    verify(t->a, "a@example.test", "bad", NULL, 0) == SC_ERR_REJECTED)
			t->ok++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct thread_arg t[4];
	pthread_t th[4];
	char h[256], text[400];
	sc_auth *a;

	make_hash("$6$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "a@example.test:%s\n", h);
	write_text(text);
	a = open_ok();
	for (int i = 0; i < 4; i++) {
		t[i].a = a;
		t[i].ok = 0;
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].ok, 10);
	}
	sc_auth_close(a);
}

static void test_equal_ct(void **state)
{
	assert_true(sc_auth_equal_ct("", ""));
	assert_true(sc_auth_equal_ct("$6$ab$cd", "$6$ab$cd"));
	assert_false(sc_auth_equal_ct("$6$ab$cd", "$6$ab$ce"));
	assert_false(sc_auth_equal_ct("$6$ab$cd", "$6$ab$c"));
	assert_false(sc_auth_equal_ct("", "x"));
	assert_false(sc_auth_equal_ct("abc", "abcd"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hashes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test(test_equal_ct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
