/*
 * test_repo_batch.c - sc_repo_store_batch (lib/repo.c, lib/repo_lmdb.c): many
 * entries in one lmdb: transaction, all or nothing; the entry limit and argument
 * errors; map growth in the middle of a batch; the one-by-one path of a backend
 * without store_batch (dir:).
 */
#define REPO_SCHEME "lmdb"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "repo_cases.h"
#pragma GCC diagnostic pop

#define N 500

static struct sc_addr g_addrs[N];
static const sc_cert *g_certs[N];

static void fill(size_t n, const sc_cert *c)
{
	for (size_t i = 0; i < n; i++) {
		char buf[64];

		snprintf(buf, sizeof buf, "user%zu@example.test", i);
		g_addrs[i] = A(buf);
		g_certs[i] = c;
	}
}

static void test_batch_stores_all(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE), *ro;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct got g;
	size_t done = 7;

	fill(N, c);
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, N, &done), SC_OK);
	assert_int_equal(done, N);
	ro = open_repo(SC_REPO_RDONLY);
	assert_int_equal(lookup(ro, "user0@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(g.n_der, 2); /* the chain is stored too */
	assert_int_equal(lookup(ro, "USER499@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(lookup(ro, "user500@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(count_all(ro), N);
	/* storing again replaces: still one entry per address */
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, 10, NULL), SC_OK);
	assert_int_equal(count_all(ro), N);
	assert_int_equal(count_entries(ro, "user3@example.test"), 1);
	sc_repo_close(ro);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* 33 different certificates for one address: the 33rd fails and, lmdb: being one
 * transaction, nothing of the batch is stored. */
static void test_batch_all_or_nothing(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *cs[SC_REPO_ENTRIES_MAX + 1];
	size_t done = 99;

	for (size_t i = 0; i <= SC_REPO_ENTRIES_MAX; i++) {
		cs[i] = mk_cert((struct tc_cert_opts){ .not_before_offset = -100 - (long)i }, 0,
				NULL);
		g_addrs[i] = A("alice@example.test");
		g_certs[i] = cs[i];
	}
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, SC_REPO_ENTRIES_MAX + 1,
					     &done), SC_ERR_TOO_MANY);
	assert_int_equal(done, 0);
	assert_int_equal(count_entries(r, "alice@example.test"), 0);
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, SC_REPO_ENTRIES_MAX, &done),
			 SC_OK);
	assert_int_equal(done, SC_REPO_ENTRIES_MAX);
	assert_int_equal(count_entries(r, "alice@example.test"), SC_REPO_ENTRIES_MAX);
	for (size_t i = 0; i <= SC_REPO_ENTRIES_MAX; i++)
		sc_cert_free(cs[i]);
	sc_repo_close(r);
}

static void test_batch_args(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE), *ro;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	size_t done = 5;

	fill(3, c);
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, 0, &done), SC_OK);
	assert_int_equal(done, 0);
	assert_int_equal(sc_repo_store_batch(NULL, g_addrs, g_certs, 3, NULL), SC_ERR_ARG);
	assert_int_equal(sc_repo_store_batch(r, NULL, g_certs, 3, NULL), SC_ERR_ARG);
	assert_int_equal(sc_repo_store_batch(r, g_addrs, NULL, 3, NULL), SC_ERR_ARG);
	g_certs[1] = NULL;
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, 3, &done), SC_ERR_ARG);
	assert_int_equal(done, 0);
	assert_int_equal(count_all(r), 0);
	ro = open_repo(SC_REPO_RDONLY);
	g_certs[1] = c;
	assert_int_equal(sc_repo_store_batch(ro, g_addrs, g_certs, 3, &done), SC_ERR_PERM);
	assert_int_equal(count_all(ro), 0);
	sc_repo_close(ro);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* The map fills in the middle of a batch: it grows and the batch runs again whole. */
static void test_batch_map_growth(void **state)
{
	sc_repo *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct got g;

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	r = open_repo(SC_REPO_CREATE);
	fill(N, c);
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, N, NULL), SC_OK);
	assert_int_equal(count_all(r), N);
	assert_int_equal(lookup(r, "user250@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* dir: has no store_batch: lib/repo.c stores one by one and counts. */
static void test_batch_dir_fallback(void **state)
{
	sc_repo *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct got g;
	size_t done = 0;

	snprintf(g_spec, sizeof g_spec, "dir:%s", g_path);
	r = open_repo(SC_REPO_CREATE);
	fill(5, c);
	assert_int_equal(sc_repo_store_batch(r, g_addrs, g_certs, 5, &done), SC_OK);
	assert_int_equal(done, 5);
	assert_int_equal(lookup(r, "user4@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(count_all(r), 5);
	sc_repo_close(r);
	sc_cert_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_stores_all, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_all_or_nothing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_args, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_map_growth, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_dir_fallback, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
