/*
 * test_repo_ldap.c - the ldap:// backend without a server (lib/repo_ldap.c,
 * lib/repo_ldap_url.c): RFC 4516 URL parsing and its errors, RFC 4515 escaping of
 * the key (no filter injection: '*', '(', ')', '\', NUL), filter construction,
 * option handling at open, read-only behaviour, and an unreachable server as
 * SC_ERR_TEMP (never "not found"). tests/integration/test_ldap_repo.py runs a
 * real slapd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <ldap.h>

#include <smtpcert/smtpcert.h>
#include "repo_backend.h"
#include "repo_ldap.h"

static void test_url_full(void **state)
{
	struct sc_repo_ldap_url u;
	char err[256];

	(void)state;
	assert_int_equal(sc_repo_ldap_url_parse("ldap", "//127.0.0.1:3890/ou=people,dc=example,"
						"dc=test?userSMIMECertificate,userCertificate;binary"
						"?sub?(%26(objectClass=inetOrgPerson)(mail=%s))",
						&u, err, sizeof err), SC_OK);
	assert_string_equal(u.uri, "ldap://127.0.0.1:3890");
	assert_string_equal(u.base, "ou=people,dc=example,dc=test");
	assert_int_equal(u.nattrs, 2);
	assert_string_equal(u.attrs[0], "userSMIMECertificate");
	assert_string_equal(u.attrs[1], "userCertificate;binary");
	assert_int_equal(u.scope, LDAP_SCOPE_SUBTREE);
	/* the filter keeps its %XX until substitution */
	assert_string_equal(u.filter, "(%26(objectClass=inetOrgPerson)(mail=%s))");
}

static void test_url_defaults_and_hosts(void **state)
{
	struct sc_repo_ldap_url u;
	char err[256];

	(void)state;
	assert_int_equal(sc_repo_ldap_url_parse("ldaps", "//a.example:636,b.example/dc=x",
						&u, err, sizeof err), SC_OK);
	/* several hosts: libldap's space-separated list, tried in order (failover) */
	assert_string_equal(u.uri, "ldaps://a.example:636 ldaps://b.example");
	assert_string_equal(u.base, "dc=x");
	assert_int_equal(u.nattrs, 1);
	assert_string_equal(u.attrs[0], "userCertificate;binary");
	assert_int_equal(u.scope, LDAP_SCOPE_BASE); /* RFC 4516 2 default */
	assert_string_equal(u.filter, "(mail=%s)");
	assert_int_equal(sc_repo_ldap_url_parse("ldap", "///o=a%20b??one?(uid=%s)", &u, err,
						sizeof err), SC_OK);
	assert_string_equal(u.uri, "ldap://");
	assert_string_equal(u.base, "o=a b");
	assert_int_equal(u.scope, LDAP_SCOPE_ONELEVEL);
}

static sc_status count_visit(void *arg, const struct sc_repo_entry *e);

/* ldapi:// (OpenLDAP): the host is a percent-encoded absolute socket path,
 * passed to libldap encoded again; "" is libldap's default socket. */
static void test_url_ldapi(void **state)
{
	static const char *const bad[] = {
		"//run%2Fslapd%2Fldapi/dc=x",         /* relative */
		"//%2Frun%2Fs%20d/dc=x",              /* space */
		"//%2Frun%2Fs%0Ad/dc=x",              /* control */
		"//%2Frun,/dc=x",                     /* empty second */
	};
	struct sc_repo_ldap_url u;
	char err[256], big[512];
	sc_repo *r = NULL;

	(void)state;
	assert_int_equal(sc_repo_ldap_url_parse("ldapi", "//%2Frun%2Fslapd%2Fldapi/dc=x??sub?"
						"(mail=%s)", &u, err, sizeof err), SC_OK);
	assert_string_equal(u.uri, "ldapi://%2Frun%2Fslapd%2Fldapi");
	assert_string_equal(u.base, "dc=x");
	/* a literal '/' is not a host delimiter problem once encoded; odd bytes
	 * are encoded; several sockets fail over like hosts */
	assert_int_equal(sc_repo_ldap_url_parse("ldapi", "//%2Fa%2Fb:c,%2Fd_e.f~g/dc=x", &u, err,
						sizeof err), SC_OK);
	assert_string_equal(u.uri, "ldapi://%2Fa%2Fb%3Ac ldapi://%2Fd_e.f~g");
	assert_int_equal(sc_repo_ldap_url_parse("ldapi", "///dc=x", &u, err, sizeof err), SC_OK);
	assert_string_equal(u.uri, "ldapi://");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sc_repo_ldap_url_parse("ldapi", bad[i], &u, err, sizeof err),
				 SC_ERR_CONFIG);
	/* longer than sun_path */
	memcpy(big, "//%2F", 5);
	memset(big + 5, 'a', 120);
	memcpy(big + 125, "/dc=x", 6);
	assert_int_equal(sc_repo_ldap_url_parse("ldapi", big, &u, err, sizeof err), SC_ERR_CONFIG);
	/* a registered scheme, remote (a local directory server may block too) */
	assert_true(sc_repo_scheme_known("ldapi:///dc=x"));
	assert_int_equal(sc_repo_open("ldapi://%2Fnonexistent%2Fsock/dc=x??sub?(mail=%s)",
				      SC_REPO_RDONLY, &r, err, sizeof err), SC_OK);
	assert_true(sc_repo_is_remote(r));
	{
		struct sc_addr a;
		int n = 0;

		assert_int_equal(sc_addr_parse("a@example.test", 14, 0, &a, NULL), SC_OK);
		assert_int_equal(sc_repo_lookup(r, &a, time(NULL), NULL, count_visit, &n),
				 SC_ERR_TEMP);
	}
	sc_repo_close(r);
}

static void test_url_extensions(void **state)
{
	struct sc_repo_ldap_url u;
	char err[256];

	(void)state;
	assert_int_equal(sc_repo_ldap_url_parse("ldap", "//h/dc=x??sub?(mail=%s)?e-bindname=x,"
						"!x-ca-dn=ou=ca%2Cdc=x", &u, err, sizeof err), SC_OK);
	assert_string_equal(u.ca_dn, "ou=ca,dc=x"); /* a non-critical unknown is ignored */
	assert_int_equal(sc_repo_ldap_url_parse("ldap", "//h/dc=x??sub?(mail=%s)?", &u, err,
						sizeof err), SC_OK);
	assert_string_equal(u.ca_dn, "");
	assert_string_equal(u.filter, "(mail=%s)");
}

static void test_url_errors(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1/dc=x",                       /* no // */
		"//h/dc=x??bogus?(mail=%s)",            /* scope */
		"//h/dc=x??sub?(mail=foo)",             /* no %s */
		"//h/dc=x??sub?(mail=%s)%zz",           /* bad escape in filter */
		"//h/dc=x??sub?(mail=%s)%00",           /* NUL in filter */
		"//h/dc=x%00y??sub?(mail=%s)",          /* NUL in base */
		"//h/dc=x%2??sub?(mail=%s)",            /* truncated escape */
		"//h/dc=x?a(b?sub?(mail=%s)",           /* bad attribute */
		"//h/dc=x?a,b,c,d,e?sub?(mail=%s)",     /* too many attributes */
		"//h/dc=x?a,,b?sub?(mail=%s)",          /* empty attribute */
		"//h/dc=x??sub?(mail=%s)?!e-bindname=x",/* critical, unknown */
		"//h/dc=x??sub?(mail=%s)?x-ca-dn=",     /* empty CA DN */
		"//h/dc=x??sub?(mail=%s)?x-ca-dn=a%00", /* NUL in the CA DN */
		"//h/dc=x??sub?(mail=%s)?a?b",          /* too many fields */
		"//h,,k/dc=x??sub?(mail=%s)",           /* empty host */
		"//h,/dc=x??sub?(mail=%s)",             /* empty last host */
		"//a,b,c,d,e,f,g,h,i/dc=x",             /* 9 hosts */
		"//h%20k/dc=x??sub?(mail=%s)",          /* space in a host */
	};
	struct sc_repo_ldap_url u;
	char err[256], big[2048];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(sc_repo_ldap_url_parse("ldap", bad[i], &u, err, sizeof err),
				 SC_ERR_CONFIG);
		assert_true(err[0] != '\0');
	}
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "//h/", 4);
	assert_int_equal(sc_repo_ldap_url_parse("ldap", big, &u, err, sizeof err),
			 SC_ERR_CONFIG);
	snprintf(big, sizeof big, "//h/dc=x??sub?(mail=%%s)%0900d", 0);
	assert_int_equal(sc_repo_ldap_url_parse("ldap", big, &u, err, sizeof err),
			 SC_ERR_CONFIG);
}

static void test_escape(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	assert_int_equal(sc_repo_ldap_escape("a*b(c)d\\e", 9, out, sizeof out, &n), SC_OK);
	assert_string_equal(out, "a\\2ab\\28c\\29d\\5ce");
	assert_int_equal(n, strlen(out));
	assert_int_equal(sc_repo_ldap_escape("x\0y", 3, out, sizeof out, &n), SC_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "x\\00y", 6);
	/* UTF-8 passes through (RFC 4515 3: only the five are special) */
	assert_int_equal(sc_repo_ldap_escape("j\xc3\xb6rg", 5, out, sizeof out, &n), SC_OK);
	assert_string_equal(out, "j\xc3\xb6rg");
	/* bounds: exactly fits, one short */
	assert_int_equal(sc_repo_ldap_escape("abc", 3, out, 4, &n), SC_OK);
	assert_int_equal(sc_repo_ldap_escape("abc", 3, out, 3, &n), SC_ERR_TOO_LONG);
	assert_int_equal(sc_repo_ldap_escape("*", 1, out, 4, &n), SC_OK);
	assert_int_equal(sc_repo_ldap_escape("*", 1, out, 3, &n), SC_ERR_TOO_LONG);
	assert_int_equal(sc_repo_ldap_escape("", 0, out, 1, &n), SC_OK);
	assert_string_equal(out, "");
}

static void test_filter(void **state)
{
	char out[128];
	char big[SC_REPO_LDAP_FILTER_MAX + 8];

	(void)state;
	assert_int_equal(sc_repo_ldap_filter("(%26(mail=%s)(uid=%s))", "a*@x", 4, out,
					     sizeof out), SC_OK);
	assert_string_equal(out, "(&(mail=a\\2a@x)(uid=a\\2a@x))");
	/* an injection attempt stays one assertion value */
	assert_int_equal(sc_repo_ldap_filter("(mail=%s)", "*)(mail=*", 9, out, sizeof out),
			 SC_OK);
	assert_string_equal(out, "(mail=\\2a\\29\\28mail=\\2a)");
	/* %25s is the text "%s", never a second placeholder */
	assert_int_equal(sc_repo_ldap_filter("(cn=%25s)(mail=%s)", "k", 1, out, sizeof out),
			 SC_OK);
	assert_string_equal(out, "(cn=%s)(mail=k)");
	assert_int_equal(sc_repo_ldap_filter("(mail=%s)%0", "k", 1, out, sizeof out),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_repo_ldap_filter("(mail=%s)", "abcdefgh", 8, out, 12),
			 SC_ERR_TOO_LONG);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(sc_repo_ldap_filter("(mail=%s)", big, strlen(big), out, sizeof out),
			 SC_ERR_TOO_LONG);
}

/* list(): %s becomes an unescaped '*' (presence or substrings, RFC 4515 3), the
 * rest of the template is kept and decoded; the address attribute is the one
 * the first %s is a value of, in an equality or substrings item only. */
static void test_filter_all(void **state)
{
	static const struct {
		const char *tmpl, *filter, *attr;
	} ok[] = {
		{ "(mail=%s)", "(mail=*)", "mail" },
		{ "(%26(objectClass=inetOrgPerson)(mail=%s))",
		  "(&(objectClass=inetOrgPerson)(mail=*))", "mail" },
		{ "(|(mail=%s)(mailAlternateAddress=%s))", "(|(mail=*)(mailAlternateAddress=*))",
		  "mail" },
		{ "(mail=x%s)", "(mail=x*)", "mail" },
		{ "(mail;lang-en=%s)", "(mail;lang-en=*)", "mail;lang-en" },
		{ "(mail~=%s)", "(mail~=*)", "" },
		{ "(mail:caseExactMatch:=%s)", "(mail:caseExactMatch:=*)", "" },
		{ "(cn=%25s)(mail=%s)", "(cn=%s)(mail=*)", "mail" },
		{ "%s", "*", "" },
		{ "(=%s)", "(=*)", "" },
	};
	char out[128], attr[16];

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(sc_repo_ldap_filter_all(ok[i].tmpl, out, sizeof out, attr,
							 sizeof attr), SC_OK);
		assert_string_equal(out, ok[i].filter);
		assert_string_equal(attr, ok[i].attr);
	}
	/* an attribute name too long for the buffer is "cannot tell" */
	assert_int_equal(sc_repo_ldap_filter_all("(averyveryverylongattribute=%s)", out,
						 sizeof out, attr, sizeof attr), SC_OK);
	assert_string_equal(attr, "");
	assert_int_equal(sc_repo_ldap_filter_all("(mail=%s)", out, sizeof out, NULL, 0), SC_OK);
	assert_int_equal(sc_repo_ldap_filter_all("(mail=%s)%zz", out, sizeof out, attr,
						 sizeof attr), SC_ERR_SYNTAX);
	assert_int_equal(sc_repo_ldap_filter_all("(mail=%s)%00", out, sizeof out, attr,
						 sizeof attr), SC_ERR_SYNTAX);
	assert_int_equal(sc_repo_ldap_filter_all("(mail=%s)", out, 8, attr, sizeof attr),
			 SC_ERR_TOO_LONG);
	assert_int_equal(sc_repo_ldap_filter_all("(mail=%s)", out, 9, attr, sizeof attr),
			 SC_OK);
}

static sc_status count_visit(void *arg, const struct sc_repo_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return SC_OK;
}

static void test_open_options(void **state)
{
	struct sc_repo_ldap_opts o = { .bind_dn = "cn=admin,dc=example,dc=test",
				       .bind_password_file = "/nonexistent/pw" };
	char err[512], pw[] = "/tmp/test_repo_ldap_pwXXXXXX";
	sc_repo *r = NULL;
	int fd;

	(void)state;
	assert_int_equal(sc_repo_open_ex("ldap://127.0.0.1:1/dc=x??sub?(mail=%s)", 0, &o, &r,
					 err, sizeof err), SC_ERR_CONFIG);
	assert_null(r);
	assert_non_null(strstr(err, "ldap_bind_password_file"));
	fd = mkstemp(pw);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "secret\nignored\n", 15), 15);
	close(fd);
	o.bind_password_file = pw;
	assert_int_equal(sc_repo_open_ex("ldap://127.0.0.1:1/dc=x??sub?(mail=%s)", 0, &o, &r,
					 err, sizeof err), SC_OK);
	assert_true(sc_repo_is_remote(r));
	sc_repo_close(r);
	/* StartTLS inside TLS makes no sense */
	o.starttls = 1;
	assert_int_equal(sc_repo_open_ex("ldaps://127.0.0.1:1/dc=x??sub?(mail=%s)", 0, &o, &r,
					 err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "ldap_starttls"));
	unlink(pw);
	/* a URL error names the spec */
	assert_int_equal(sc_repo_open("ldap://h/dc=x??never?(mail=%s)", 0, &r, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "scope"));
	/* a local store is not remote */
	assert_true(sc_repo_scheme_known("ldap://h/"));
	assert_true(sc_repo_scheme_known("ldaps://h/"));
	assert_false(sc_repo_is_remote(NULL));
}

/* Nothing listens on port 1: every lookup is SC_ERR_TEMP (451), never NOT_FOUND
 * (550); the store stays usable for the next lookup; writes are refused. */
static void test_unreachable_and_readonly(void **state)
{
	struct sc_repo_ldap_opts o = { .timeout = 2 };
	struct sc_addr a;
	const char *why = NULL;
	sc_repo *r = NULL;
	char err[256];
	size_t removed = 9;
	int n = 0;

	(void)state;
	assert_int_equal(sc_repo_open_ex("ldap://127.0.0.1:1/dc=example,dc=test??sub?(mail=%s)",
					 SC_REPO_RDONLY, &o, &r, err, sizeof err), SC_OK);
	assert_int_equal(sc_addr_parse("alice@example.test", 18, 0, &a, &why), SC_OK);
	for (int i = 0; i < 2; i++)
		assert_int_equal(sc_repo_lookup(r, &a, time(NULL), NULL, count_visit, &n),
				 SC_ERR_TEMP);
	assert_int_equal(sc_repo_entries(r, &a, count_visit, &n), SC_ERR_TEMP);
	assert_int_equal(n, 0);
	assert_int_equal(sc_repo_remove(r, &a, NULL, &removed), SC_ERR_PERM);
	assert_int_equal(removed, 0);
	assert_int_equal(sc_repo_list(r, count_visit, &n), SC_ERR_TEMP);
	sc_repo_close(r);
	/* opened writable, the directory is still never written */
	assert_int_equal(sc_repo_open("ldap://127.0.0.1:1/dc=x??sub?(mail=%s)", 0, &r, err,
				      sizeof err), SC_OK);
	assert_int_equal(sc_repo_remove(r, &a, NULL, &removed), SC_ERR_PERM);
	sc_repo_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_full),
		cmocka_unit_test(test_url_defaults_and_hosts),
		cmocka_unit_test(test_url_extensions),
		cmocka_unit_test(test_url_ldapi),
		cmocka_unit_test(test_url_errors),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_filter_all),
		cmocka_unit_test(test_open_options),
		cmocka_unit_test(test_unreachable_and_readonly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
