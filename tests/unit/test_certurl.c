/*
 * test_certurl.c - cert_url expansion (the daemon's URL) and the web-root file
 * it names (export-www): percent-encoding, %n/%d from the key, bounds, and every
 * refusal of an unsafe file name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>

static void test_expand(void **state)
{
	char out[SC_CERT_URL_MAX];

	(void)state;
	assert_int_equal(sc_cert_url_expand("https://h.test/%u.pem", "alice@example.test", out,
					    sizeof out), SC_OK);
	assert_string_equal(out, "https://h.test/alice@example.test.pem");
	assert_int_equal(sc_cert_url_expand("https://h.test/%d/%n%%x", "a.b+c@ex.test", out,
					    sizeof out), SC_OK);
	assert_string_equal(out, "https://h.test/ex.test/a.b%2Bc%x");
	/* UTF-8 octet by octet; '/' and '"' encoded; an unknown "%z" is "z" */
	assert_int_equal(sc_cert_url_expand("https://h/%u%z", "\xe7\x94\xa8/\"@x.test", out,
					    sizeof out), SC_OK);
	assert_string_equal(out, "https://h/%E7%94%A8%2F%22@x.testz");
	/* %n splits at the last '@' (a quoted local part may hold one) */
	assert_int_equal(sc_cert_url_expand("x://h/%n|%d", "\"a@b\"@c.test", out, sizeof out),
			 SC_OK);
	assert_string_equal(out, "x://h/%22a@b%22|c.test");
}

static void test_expand_bounds(void **state)
{
	char out[24];

	(void)state;
	assert_int_equal(sc_cert_url_expand("https://h/%u", "a@b.test", out, 19), SC_OK);
	assert_string_equal(out, "https://h/a@b.test");
	assert_int_equal(sc_cert_url_expand("https://h/%u", "a@b.test", out, 18), SC_ERR_TOO_LONG);
	assert_int_equal(sc_cert_url_expand("https://h/%u", "\x01@b.test", out, 20),
			 SC_ERR_TOO_LONG);
	assert_int_equal(sc_cert_url_expand("https://h/%u", "\x01@b.test", out, 21), SC_OK);
	assert_string_equal(out, "https://h/%01@b.test");
	assert_int_equal(sc_cert_url_expand("https://h/%u", "nodomain", out, sizeof out),
			 SC_ERR_ARG);
	assert_int_equal(sc_cert_url_expand(NULL, "a@b", out, sizeof out), SC_ERR_ARG);
}

static void test_file(void **state)
{
	char f[512];

	(void)state;
	assert_int_equal(sc_cert_url_file("https://h.test:8443/certs/%u.pem", "alice@ex.test", f,
					  sizeof f), SC_OK);
	assert_string_equal(f, "certs/alice@ex.test.pem");
	assert_int_equal(sc_cert_url_file("https://h/%d/%n.pem", "\xe7\x94\xa8@ex.test", f,
					  sizeof f), SC_OK);
	assert_string_equal(f, "ex.test/\xe7\x94\xa8.pem");
	/* a local part with '/' becomes a subdirectory, as a web server maps it */
	assert_int_equal(sc_cert_url_file("https://h/%u", "a/b@ex.test", f, sizeof f), SC_OK);
	assert_string_equal(f, "a/b@ex.test");
}

static void test_file_refusals(void **state)
{
	char f[512];

	(void)state;
	/* climbing out of the web root, hidden files, empty segments */
	assert_int_equal(sc_cert_url_file("https://h/%n/x", "..@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_cert_url_file("https://h/%u", "../../etc/passwd@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_cert_url_file("https://h/%u", ".manifest@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_cert_url_file("https://h/%u", "a//b@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_cert_url_file("https://h/%u/", "a@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_cert_url_file("https://h/%u", "a\x01@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	/* literal escapes in the template: bad hex, encoded NUL */
	assert_int_equal(sc_cert_url_file("https://h/%%zz%u", "a@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_cert_url_file("https://h/%%00%u", "a@ex.test", f, sizeof f),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_cert_url_file("https://h/%u?x=1", "a@ex.test", f, sizeof f),
			 SC_ERR_UNSUPPORTED);
	assert_int_equal(sc_cert_url_file("https://h/%u#f", "a@ex.test", f, sizeof f),
			 SC_ERR_UNSUPPORTED);
	assert_int_equal(sc_cert_url_file("https://h%u", "a@ex.test", f, sizeof f),
			 SC_ERR_CONFIG);
	assert_int_equal(sc_cert_url_file("h/%u", "a@ex.test", f, sizeof f), SC_ERR_CONFIG);
	assert_int_equal(sc_cert_url_file("https://h/%u", "a@ex.test", f, 9), SC_ERR_TOO_LONG);
	assert_int_equal(sc_cert_url_file("https://h/%u", "a@ex.test", f, 10), SC_OK);
	assert_string_equal(f, "a@ex.test");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_bounds),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
