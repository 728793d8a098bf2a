/*
 * test_repo.c - the backend-independent part of repositories (lib/repo.c): the
 * usability rule at the exact validity bounds (RFC 5280 4.1.2.5: inclusive), CRL
 * matching by issuer and serial, spec parsing and the registry, argument checks.
 * Backend behaviour is in test_repo_lmdb.c / test_repo_dir.c.
 */
#define REPO_SCHEME "lmdb"
#include "repo_cases.h"

static struct sc_repo_entry entry_of(const sc_cert *c)
{
	struct sc_repo_entry e;

	sc_repo_entry_from_cert(c, &e);
	return e;
}

static sc_crlset *crl_of(X509 *ca, tc_key *cak, long serial)
{
	sc_crlset *s;
	char *pem;
	size_t len;

	tc_crl_new(ca, cak, &serial, 1, 0, 0, &pem, &len);
	assert_int_equal(sc_crlset_new(&s), SC_OK);
	assert_int_equal(sc_crlset_add_mem(s, pem, len), SC_OK);
	free(pem);
	return s;
}

static void test_usable_bounds(void **state)
{
	const int64_t t = 1900000000;
	sc_cert *c = mk_cert((struct tc_cert_opts){ .not_before_abs = t,
						    .not_after_abs = t + 100 }, 0, NULL);
	struct sc_repo_entry e = entry_of(c);

	assert_true(e.not_before == t);
	assert_true(e.not_after == t + 100);
	assert_int_equal(sc_repo_entry_usable(&e, (time_t)(t - 1), NULL), SC_ERR_NOT_YET_VALID);
	assert_int_equal(sc_repo_entry_usable(&e, (time_t)t, NULL), SC_OK);
	assert_int_equal(sc_repo_entry_usable(&e, (time_t)(t + 100), NULL), SC_OK);
	assert_int_equal(sc_repo_entry_usable(&e, (time_t)(t + 101), NULL), SC_ERR_EXPIRED);
	assert_int_equal(sc_repo_entry_usable(NULL, 0, NULL), SC_ERR_ARG);
	sc_cert_free(c);
}

static void test_usable_far_future(void **state)
{
	/* 99991231235959Z: "no well-defined expiration date" (RFC 5280 4.1.2.5) */
	sc_cert *c = mk_cert((struct tc_cert_opts){ .not_after_abs = 253402300799LL }, 0, NULL);
	struct sc_repo_entry e = entry_of(c);

	assert_int_equal(sc_repo_entry_usable(&e, time(NULL), NULL), SC_OK);
	assert_int_equal(sc_repo_entry_usable(&e, (time_t)253402300799LL, NULL), SC_OK);
	sc_cert_free(c);
}

static void test_usable_crl(void **state)
{
	tc_key *otherk = tc_key_new(TC_P256);
	X509 *other = tc_cert_new(&(struct tc_cert_opts){ .cn = "Other CA", .is_ca = 1 },
				  otherk, NULL, NULL);
	sc_cert *c = mk_cert((struct tc_cert_opts){ .serial = 77 }, 0, NULL);
	struct sc_repo_entry e = entry_of(c);
	sc_crlset *ours = crl_of(g_ca, g_cak, 77), *theirs = crl_of(other, otherk, 77);
	sc_crlset *unrelated = crl_of(g_ca, g_cak, 78);
	time_t now = time(NULL);

	assert_int_equal(sc_repo_entry_usable(&e, now, ours), SC_ERR_REVOKED);
	/* same serial, another issuer: not this certificate */
	assert_int_equal(sc_repo_entry_usable(&e, now, theirs), SC_OK);
	assert_int_equal(sc_repo_entry_usable(&e, now, unrelated), SC_OK);
	/* the time check comes first: an expired revoked cert says expired */
	assert_int_equal(sc_repo_entry_usable(&e, (time_t)(e.not_after + 1), ours),
			 SC_ERR_EXPIRED);
	sc_crlset_free(ours);
	sc_crlset_free(theirs);
	sc_crlset_free(unrelated);
	sc_cert_free(c);
	X509_free(other);
	tc_key_free(otherk);
}

/* The same bounds through sc_repo_lookup() with an explicit clock. */
static void test_lookup_at_bounds(void **state)
{
	const int64_t t = 1900000000;
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ .not_before_abs = t,
						    .not_after_abs = t + 100 }, 0, NULL);
	sc_cert *later = mk_cert((struct tc_cert_opts){ .not_before_abs = t + 50,
							.not_after_abs = t + 200 }, 0, NULL);
	struct sc_addr a = A("alice@example.test");
	struct got g = { 0 };

	store(r, "alice@example.test", c);
	store(r, "alice@example.test", later);
	assert_int_equal(sc_repo_lookup(r, &a, (time_t)(t - 1), NULL, got_fn, &g),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(g.calls, 0);
	assert_int_equal(sc_repo_lookup(r, &a, (time_t)t, NULL, got_fn, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(sc_repo_lookup(r, &a, (time_t)(t + 49), NULL, got_fn, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(sc_repo_lookup(r, &a, (time_t)(t + 50), NULL, got_fn, &g), SC_OK);
	assert_fp(&g, later); /* newer notBefore wins from its first second */
	assert_int_equal(sc_repo_lookup(r, &a, (time_t)(t + 200), NULL, got_fn, &g), SC_OK);
	assert_fp(&g, later);
	assert_int_equal(sc_repo_lookup(r, &a, (time_t)(t + 201), NULL, got_fn, &g),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(g.calls, 4); /* exactly once per successful lookup */
	sc_cert_free(c);
	sc_cert_free(later);
	sc_repo_close(r);
}

static void test_schemes(void **state)
{
	assert_true(sc_repo_scheme_known("lmdb:/var/lib/smtpcert"));
	assert_true(sc_repo_scheme_known("dir:certs"));
	assert_true(sc_repo_scheme_known("ldap://ldap.example.test/o=x?userCertificate"));
	assert_true(sc_repo_scheme_known("pgsql:host=db dbname=certs"));
	assert_false(sc_repo_scheme_known("lmdbx:/x"));
	assert_false(sc_repo_scheme_known("lmd:/x"));
	assert_false(sc_repo_scheme_known("LMDB:/x")); /* schemes are exact */
	assert_false(sc_repo_scheme_known("lmdb"));
	assert_false(sc_repo_scheme_known(""));
	assert_false(sc_repo_scheme_known(":/x"));
	assert_false(sc_repo_scheme_known(NULL));
}

static void test_open_errors(void **state)
{
	sc_repo *r = (sc_repo *)&r;
	char err[512];

	assert_int_equal(sc_repo_open("mongodb:host=db", 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_null(r);
	assert_non_null(strstr(err, "mongodb:host=db"));
	assert_non_null(strstr(err, "unknown repository type"));
	assert_int_equal(sc_repo_open("lmdb:", 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "no path"));
	assert_int_equal(sc_repo_open("dir:", SC_REPO_CREATE, &r, NULL, 0), SC_ERR_CONFIG);
	assert_int_equal(sc_repo_open("/just/a/path", 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_int_equal(sc_repo_open(NULL, 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_int_equal(sc_repo_open("lmdb:/x", 0, NULL, NULL, 0), SC_ERR_ARG);
	/* a tiny error buffer is fine */
	assert_int_equal(sc_repo_open("bogus:x", 0, &r, err, 4), SC_ERR_CONFIG);
	assert_int_equal(strlen(err), 3);
}

static void test_null_args(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct sc_addr a = A("alice@example.test");
	struct got g;

	assert_int_equal(sc_repo_lookup(NULL, &a, 0, NULL, got_fn, &g), SC_ERR_ARG);
	assert_int_equal(sc_repo_lookup(r, NULL, 0, NULL, got_fn, &g), SC_ERR_ARG);
	assert_int_equal(sc_repo_lookup(r, &a, 0, NULL, NULL, &g), SC_ERR_ARG);
	assert_int_equal(sc_repo_store(r, &a, NULL), SC_ERR_ARG);
	assert_int_equal(sc_repo_store(NULL, &a, c), SC_ERR_ARG);
	assert_int_equal(sc_repo_remove(r, NULL, NULL, NULL), SC_ERR_ARG);
	assert_int_equal(sc_repo_list(r, NULL, NULL), SC_ERR_ARG);
	assert_int_equal(sc_repo_entries(r, &a, NULL, NULL), SC_ERR_ARG);
	assert_null(sc_repo_spec(NULL));
	sc_repo_set_warn(NULL, NULL, NULL);
	sc_repo_close(NULL);
	sc_cert_free(c);
	sc_repo_close(r);
}

/* Logs name a store by sc_repo_name(): never a database password. */
static void test_spec_redact(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "pgsql:host=db password=s3cret dbname=x", "pgsql:host=db password=***** dbname=x" },
		{ "pgsql:password = 'a b\\' c' host=db", "pgsql:password=***** host=db" },
		{ "pgsql:PASSWORD=x", "pgsql:PASSWORD=*****" },
		{ "pgsql:host=db passfile=/etc/pgpass", "pgsql:host=db passfile=/etc/pgpass" },
		{ "pgsql:postgresql://sc:s3cret@db:5432/certs?sslmode=require",
		  "pgsql:postgresql://sc:*****@db:5432/certs?sslmode=require" },
		{ "pgsql:postgresql://db/certs?user=sc&password=s3cret&sslmode=verify-full",
		  "pgsql:postgresql://db/certs?user=sc&password=*****&sslmode=verify-full" },
		{ "pgsql:postgresql://sc@db/certs", "pgsql:postgresql://sc@db/certs" },
		{ "lmdb:/var/lib/smtpcert/certs", "lmdb:/var/lib/smtpcert/certs" },
		{ "ldap://h/dc=x?userCertificate;binary?sub?(mail=%s)",
		  "ldap://h/dc=x?userCertificate;binary?sub?(mail=%s)" },
		{ "pgsql:", "pgsql:" },
		/* a word without "=" (a broken spec: what error messages show) */
		{ "pgsql:host=db junk password=s3cret", "pgsql:host=db junk password=*****" },
		{ "pgsql:junk", "pgsql:junk" },
		/* "password" with its "=" forgotten: the next word is still hidden */
		{ "pgsql:host=db password s3cret dbname=x", "pgsql:host=db password ***** dbname=x" },
		{ "pgsql:Password  s3cret", "pgsql:Password  *****" },
		{ "pgsql:host=db password", "pgsql:host=db password" },
		/* "://" inside a value is not the URI form */
		{ "pgsql:application_name=a://b password=s3cret",
		  "pgsql:application_name=a://b password=*****" },
		{ "pgsql:POSTGRES://sc:s3cret@db/x", "pgsql:POSTGRES://sc:*****@db/x" },
	};
	char out[128];
	sc_repo *r = NULL;
	char dir[] = "/tmp/sc-redact-XXXXXX";
	char spec[64];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sc_repo_spec_redact(cases[i].in, out, sizeof out);
		assert_string_equal(out, cases[i].out);
		assert_null(strstr(out, "s3cret"));
	}
	/* too small: the type only, never the start of a secret */
	sc_repo_spec_redact("pgsql:host=db password=s3cret", out, 24);
	assert_null(strstr(out, "s3"));
	assert_int_equal(strncmp(out, "pgsql:", 6), 0);
	sc_repo_spec_redact(NULL, out, sizeof out);
	assert_string_equal(out, "");
	/* an opened store carries its display name */
	assert_non_null(mkdtemp(dir));
	snprintf(spec, sizeof spec, "dir:%s", dir);
	assert_int_equal(sc_repo_open(spec, SC_REPO_RDONLY, &r, NULL, 0), SC_OK);
	assert_string_equal(sc_repo_name(r), spec);
	sc_repo_close(r);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usable_bounds),
		cmocka_unit_test(test_usable_far_future),
		cmocka_unit_test(test_usable_crl),
		cmocka_unit_test_setup_teardown(test_lookup_at_bounds, fx_setup, fx_teardown),
		cmocka_unit_test(test_schemes),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_spec_redact),
		cmocka_unit_test_setup_teardown(test_null_args, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
