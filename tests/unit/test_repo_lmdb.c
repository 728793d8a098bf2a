/*
 * test_repo_lmdb.c - the lmdb: backend (lib/repo_lmdb.c): the behaviour shared by
 * all backends (repo_cases.h), plus map growth seen by a read-only handle, corrupt
 * records skipped, the format mark, and the files LMDB creates.
 */
#define REPO_SCHEME "lmdb"
#include "repo_cases.h"

#include <lmdb.h>

static void test_map_growth(void **state)
{
	sc_repo *w, *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct got g;
	struct stat st;
	char data[800];

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	w = open_repo(SC_REPO_CREATE);
	store(w, "first@example.test", c);
	r = open_repo(SC_REPO_RDONLY); /* maps the small size */
	for (int i = 0; i < 400; i++) {
		char buf[64];

		snprintf(buf, sizeof buf, "user%d@example.test", i);
		store(w, buf, c);
	}
	snprintf(data, sizeof data, "%s/data.mdb", g_path);
	assert_int_equal(stat(data, &st), 0);
	assert_true(st.st_size > 64 * 1024); /* the writer grew the map */
	assert_int_equal(lookup(r, "user399@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(lookup(r, "user0@example.test", NULL, &g), SC_OK);
	assert_int_equal(lookup(w, "user200@example.test", NULL, &g), SC_OK);
	assert_int_equal(count_all(r), 401);
	sc_repo_close(r);
	sc_repo_close(w);
	/* reopened, the existing (grown) environment keeps working */
	r = open_repo(SC_REPO_RDONLY);
	assert_int_equal(lookup(r, "user123@example.test", NULL, &g), SC_OK);
	sc_repo_close(r);
	sc_cert_free(c);
}

struct warns {
	int n;
	char last[1024];
};

static void warn_fn(void *arg, const char *msg)
{
	struct warns *w = arg;

	w->n++;
	snprintf(w->last, sizeof w->last, "%s", msg);
}

/* Write raw key/value pairs with LMDB itself, as a buggy or hostile writer would. */
static void raw_put(const char *dbname, const void *k, size_t klen, const void *v, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void test_corrupt_record_skipped(void **state)
{
	sc_repo *w = open_repo(SC_REPO_CREATE), *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ .not_before_offset = -DAY }, 0, NULL);
	uint8_t key[64] = "alice@example.test";
	size_t klen = strlen((char *)key) + 1 + 32;
	struct warns wn = { 0 };
	struct got g;

	store(w, "alice@example.test", c);
	sc_repo_close(w);
	/* an entry that sorts among alice's but whose value is junk */
	memset(key + strlen((char *)key) + 1, 0xff, 32);
	raw_put("certs", key, klen, "junk", 4);
	/* a key of the right prefix but the wrong length */
	raw_put("certs", key, klen - 1, "junk", 4);

	r = open_repo(SC_REPO_RDONLY);
	sc_repo_set_warn(r, warn_fn, &wn);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(wn.n, 1);
	assert_non_null(strstr(wn.last, "corrupt"));
	assert_int_equal(count_entries(r, "alice@example.test"), 1);
	sc_repo_close(r);
	sc_cert_free(c);
}

static void test_format_mark(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	char err[512] = "";

	sc_repo_close(r);
	raw_put("meta", "format", 6, "\0\0\0\x09", 4);
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "format"));
	assert_int_equal(sc_repo_open(g_spec, 0, &r, err, sizeof err), SC_ERR_UNSUPPORTED);
}

static void test_not_ours(void **state)
{
	MDB_env *env;
	sc_repo *r = NULL;
	char err[512] = "";

	/* an LMDB environment without our databases */
	assert_int_equal(mkdir(g_path, 0700), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, g_path, 0, 0600), 0);
	mdb_env_close(env);
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "not an smtpcert repository"));
	assert_null(r);
}

static void test_files_and_modes(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	char p[800];
	struct stat st;

	assert_int_equal(stat(g_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(p, sizeof p, "%s/lock.mdb", g_path);
	assert_int_equal(stat(p, &st), 0);
	sc_repo_close(r);
	/* a plain file where the environment should be */
	tc_rmtree(g_path);
	tc_write_file(g_path, "x", 1);
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_CREATE, &r, NULL, 0), SC_ERR_CONFIG);
}

/* Read-only opening still needs to write lock.mdb (the reader table). */
static int open_rdonly_expect_perm(void)
{
	sc_repo *r = NULL;
	char err[512] = "";
	sc_status st = sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err);

	if (st != SC_ERR_PERM || !strstr(err, g_path)) {
		fprintf(stderr, "open as unprivileged user: %s (%s)\n", sc_strerror(st), err);
		return 1;
	}
	return 0;
}

static int store_expect_perm(void)
{
	sc_repo *r = NULL;

	/* a store it cannot write: refused at open, never half-written */
	return sc_repo_open(g_spec, SC_REPO_CREATE, &r, NULL, 0) == SC_ERR_PERM ? 0 : 1;
}

static void test_permission_denied(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	char p[800];

	sc_repo_close(r);
	assert_int_equal(chmod(g_tmp, 0755), 0);
	assert_int_equal(chmod(g_path, 0755), 0);
	snprintf(p, sizeof p, "%s/lock.mdb", g_path);
	assert_int_equal(chmod(p, 0644), 0);
	snprintf(p, sizeof p, "%s/data.mdb", g_path);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(unprivileged(open_rdonly_expect_perm), 0);
	assert_int_equal(unprivileged(store_expect_perm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		REPO_CASES,
		cmocka_unit_test_setup_teardown(test_map_growth, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_skipped, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_format_mark, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_not_ours, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_files_and_modes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_permission_denied, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
