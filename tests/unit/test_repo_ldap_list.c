/*
 * test_repo_ldap_list.c - list() of the ldap:// backend (lib/repo_ldap_list.c)
 * against a real slapd (tests/lib/ldaptest.h) whose size limit is 500 per plain
 * search: 510 entries read in RFC 2696 pages, keys from the filter's address
 * attribute normalised and sorted, one certificate under two addresses, values
 * that are no address counted in one warning, a template with more around %s,
 * bare leaves completed from the x-ca-dn entry, and filters that cannot be
 * listed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <ldap.h>

#include <smtpcert/smtpcert.h>
#include "repo_backend.h"
#include "repo_ldap.h"
#include "ldaptest.h"
#include "testsrv.h"

static struct lt_slapd g_a;

/* ---- list ---- */

#define LISTOU "ou=list," LT_SUFFIX
#define NLIST 510 /* more than one page (SC_REPO_LDAP_PAGE) and slapd's sizelimit */

struct listed {
	char keys[NLIST + 8][64];
	size_t n_der[NLIST + 8];
	size_t n;
};

static sc_status list_visit(void *arg, const struct sc_repo_entry *e)
{
	struct listed *l = arg;

	assert_true(l->n < NLIST + 8);
	assert_int_equal(strlen(e->key), e->key_len);
	snprintf(l->keys[l->n], sizeof l->keys[0], "%s", e->key);
	l->n_der[l->n++] = e->n_der;
	return SC_OK;
}

static char g_warned[1024];

static void keep_warn(void *arg, const char *msg)
{
	(void)arg;
	snprintf(g_warned, sizeof g_warned, "%s", msg);
}

static sc_repo *open_list_store(const char *filter, const char *ext)
{
	struct sc_repo_ldap_opts o = { .timeout = 10 };
	char spec[512], err[512];
	sc_repo *r = NULL;

	snprintf(spec, sizeof spec, "%s/" LISTOU "?userCertificate;binary?one?%s%s", g_a.url,
		 filter, ext ? ext : "");
	assert_int_equal(sc_repo_open_ex(spec, SC_REPO_RDONLY, &o, &r, err, sizeof err), SC_OK);
	sc_repo_set_warn(r, keep_warn, NULL);
	return r;
}

static void test_list(void **state)
{
	static const char *const ou[] = { "organizationalUnit", NULL };
	static const char *const ca_oc[] = { "organizationalUnit", "pkiCA", NULL };
	const char *t[] = { "ou", "cACertificate;binary" };
	const void *v[2];
	size_t l[2], calen;
	uint8_t *ca_der, *der, fp[32];
	const char *multi[] = { "M1@Example.TEST", "m2@example.test", NULL };
	const char *bad[] = { "not an address", NULL };
	struct listed *got = calloc(1, sizeof *got);
	char ext[128];
	sc_repo *r;
	int n = 0;

	(void)state;
	assert_non_null(got);
	v[0] = "list", l[0] = 4;
	lt_put(&g_a, LISTOU, ou, t, v, l, 1);
	tc_cert_der(lt_ca, &ca_der, &calen);
	v[0] = "ca", l[0] = 2, v[1] = ca_der, l[1] = calen;
	lt_put(&g_a, "ou=ca," LT_SUFFIX, ca_oc, t, v, l, 2);
	for (int i = 0; i < NLIST; i++) {
		char uid[16], mail[64];
		const char *mails[] = { mail, NULL };
		size_t len;

		snprintf(uid, sizeof uid, "p%03d", i);
		snprintf(mail, sizeof mail, "p%03d@example.test", i);
		lt_make_leaf(mail, 0, 0, &der, &len, fp);
		lt_add_person_in(&g_a, LISTOU, uid, mails, der, len);
		if (i == 0) {
			/* the same leaf for two addresses, a junk address, no certificate */
			lt_add_person_in(&g_a, LISTOU, "multi", multi, der, len);
			lt_add_person_in(&g_a, LISTOU, "bad", bad, der, len);
			lt_add_person_in(&g_a, LISTOU, "nocert", bad, NULL, 0);
		}
		free(der);
	}
	r = open_list_store("(mail=%s)", NULL);
	assert_int_equal(sc_repo_list(r, list_visit, got), SC_OK);
	sc_repo_close(r);
	/* every page read; the keys normalised (sc_addr_key) and in order */
	assert_int_equal(got->n, NLIST + 2);
	assert_string_equal(got->keys[0], "m1@example.test");
	assert_string_equal(got->keys[1], "m2@example.test");
	assert_string_equal(got->keys[2], "p000@example.test");
	assert_string_equal(got->keys[NLIST + 1], "p509@example.test");
	for (size_t i = 1; i < got->n; i++)
		assert_true(strcmp(got->keys[i - 1], got->keys[i]) < 0);
	assert_int_equal(got->n_der[2], 1);
	/* the entries no address can find are reported, once */
	assert_non_null(strstr(g_warned, ": 2 values of mail are not an address; skipped"));
	/* a filter with more around %s; bare leaves get their chain from x-ca-dn */
	memset(got, 0, sizeof *got);
	snprintf(ext, sizeof ext, "?x-ca-dn=ou=ca%%2C%s", "dc=example%2Cdc=test");
	r = open_list_store("(%26(objectClass=inetOrgPerson)(mail=p00%s))", ext);
	assert_int_equal(sc_repo_list(r, list_visit, got), SC_OK);
	sc_repo_close(r);
	assert_int_equal(got->n, 10);
	assert_string_equal(got->keys[9], "p009@example.test");
	assert_int_equal(got->n_der[9], 2);
	/* a filter that names no attribute for the address cannot be listed;
	 * one naming a non-address attribute lists nothing */
	r = open_list_store("(mail~=%s)", NULL);
	assert_int_equal(sc_repo_list(r, lt_count_visit, &n), SC_ERR_UNSUPPORTED);
	sc_repo_close(r);
	r = open_list_store("(uid=%s)", NULL);
	assert_int_equal(sc_repo_list(r, lt_count_visit, &n), SC_OK);
	sc_repo_close(r);
	assert_int_equal(n, 0);
	assert_non_null(strstr(g_warned, ": 513 values of uid are not an address"));
	/* a missing base is an empty store */
	{
		struct sc_repo_ldap_opts o = { .timeout = 10 };
		char spec[512], err[512];

		snprintf(spec, sizeof spec, "%s/ou=missing," LT_SUFFIX "?userCertificate;binary"
			 "?one?(mail=%%s)", g_a.url);
		assert_int_equal(sc_repo_open_ex(spec, SC_REPO_RDONLY, &o, &r, err, sizeof err),
				 SC_OK);
		n = 0;
		assert_int_equal(sc_repo_list(r, lt_count_visit, &n), SC_OK);
		assert_int_equal(n, 0);
		sc_repo_close(r);
	}
	free(ca_der);
	free(got);
}

static int group_setup(void **state)
{
	(void)state;
	lt_pki_init();
	lt_slapd_init(&g_a);
	lt_slapd_start(&g_a);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	lt_slapd_stop(&g_a);
	tc_rmtree(g_a.dir);
	lt_pki_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
