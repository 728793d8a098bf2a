/*
 * test_repo_lmdb.c - the lmdb: backend (lib/repo_lmdb.c, repo_lmdb_write.c): the
 * behaviour shared by all backends (repo_cases.h), plus map growth seen by a
 * read-only handle, corrupt entries skipped, the format mark, chain certificates
 * stored once and reference-counted (format 2), the conversion of a format 1
 * store, and the files LMDB creates.
 */
#define REPO_SCHEME "lmdb"
#include "repo_cases.h"
#include "lmdb_raw.h"

#include <lmdb.h>

#include "record.h"

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
	if (getenv("REPO_TEST_WARN"))
		fprintf(stderr, "warn: %s\n", msg);
	snprintf(w->last, sizeof w->last, "%s", msg);
}

/* Entries in DB @p dbname. */
static size_t raw_count(const char *dbname)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS | MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_entries;
}

static void test_corrupt_record_skipped(void **state)
{
	sc_repo *w = open_repo(SC_REPO_CREATE), *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ .not_before_offset = -DAY }, 1, NULL);
	const char *key = "alice@example.test";
	static uint8_t val[16384];
	size_t len;
	static uint8_t missing[16384];
	struct warns wn = { 0 };
	struct got g;

	store(w, key, c);
	sc_repo_close(w);
	/* a second entry in alice's list whose record is junk */
	len = raw_get("entries", key, strlen(key) + 1, val, sizeof val - 16);
	assert_true(len > 0);
	assert_int_equal(val[0], 1);
	/* carol: alice's entry naming a chain certificate that is not stored */
	assert_int_equal(val[5], 1); /* count, u32 length, then nchain */
	memcpy(missing, val, len);
	missing[6] ^= 0xff;
	raw_put("entries", "carol@example.test", 19, missing, len);
	val[0] = 2;
	memcpy(val + len, "\0\0\0\x05\0junk", 9);
	raw_put("entries", key, strlen(key) + 1, val, len + 9);
	/* an entry list whose framing is broken */
	raw_put("entries", "bob@example.test", 17, "\x01\0\0\0\xff", 5);

	r = open_repo(SC_REPO_RDONLY);
	sc_repo_set_warn(r, warn_fn, &wn);
	assert_int_equal(lookup(r, key, NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(g.n_der, 2);
	assert_int_equal(wn.n, 1);
	assert_non_null(strstr(wn.last, "corrupt record"));
	assert_int_equal(count_entries(r, key), 1);
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_non_null(strstr(wn.last, "corrupt entry list"));
	assert_int_equal(lookup(r, "carol@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_non_null(strstr(wn.last, "carol@example.test: corrupt record"));
	/* CERT reads no chain: carol's leaf is intact and served */
	assert_int_equal(lookup_leaf(r, "carol@example.test", NULL, &g), SC_OK);
	assert_int_equal(g.n_der, 1);
	assert_fp(&g, c);
	assert_int_equal(lookup_leaf(r, key, NULL, &g), SC_OK);
	assert_int_equal(g.n_der, 1); /* lmdb leaves the chain out */
	assert_fp(&g, c);
	assert_int_equal(count_all(r), 1);
	sc_repo_close(r);
	/* a writer does not silently replace a broken list, and removes it whole */
	w = open_repo(0);
	{
		struct sc_addr a = A("bob@example.test");
		uint8_t fp[32] = { 0 };
		size_t removed = 9;

		assert_int_equal(sc_repo_store(w, &a, c), SC_ERR_IO);
		assert_int_equal(sc_repo_remove(w, &a, fp, &removed), SC_ERR_IO);
		assert_int_equal(sc_repo_remove(w, &a, NULL, &removed), SC_OK);
		assert_int_equal(removed, 1);
		store(w, "bob@example.test", c);
	}
	sc_repo_close(w);
	sc_cert_free(c);
}

/* Entries of DB @p dbname, with the handle *@p w closed meanwhile: LMDB forbids
 * one environment open twice in one process (repo_lmdb.c). */
static size_t count_closed(sc_repo **w, const char *dbname)
{
	size_t n;

	sc_repo_close(*w);
	n = raw_count(dbname);
	*w = open_repo(0);
	return n;
}

/* Format 2: one copy of a chain certificate for all entries, counted. */
static void test_chain_stored_once(void **state)
{
	sc_repo *w = open_repo(SC_REPO_CREATE);
	sc_cert *c1 = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	sc_cert *c2 = mk_cert((struct tc_cert_opts){ .emails = { "bob@example.test" } }, 1, NULL);
	sc_cert *lone = mk_cert((struct tc_cert_opts){ .not_before_offset = -DAY }, 0, NULL);
	struct sc_addr addrs[3] = { A("a1@example.test"), A("a2@example.test"),
				    A("a3@example.test") };
	struct sc_addr alice = A("alice@example.test");
	const sc_cert *certs[3] = { c1, c1, c2 };
	size_t done = 0, removed = 0;
	struct got g;

	assert_int_equal(sc_repo_store_batch(w, addrs, certs, 3, &done), SC_OK);
	assert_int_equal(done, 3);
	store(w, "alice@example.test", c1);
	assert_int_equal(count_closed(&w, "chains"), 1);
	assert_int_equal(count_closed(&w, "chainrefs"), 1);
	assert_int_equal(count_closed(&w, "certs"), 0);
	assert_int_equal(lookup(w, "a3@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c2);
	assert_int_equal(g.n_der, 2);
	assert_true(g.chain1_len > 0);
	/* replacing alice's entry by itself keeps the chain */
	store(w, "alice@example.test", c1);
	assert_int_equal(count_closed(&w, "chains"), 1);
	/* a second, chainless entry for alice: the list holds both */
	store(w, "alice@example.test", lone);
	assert_int_equal(count_entries(w, "alice@example.test"), 2);
	assert_int_equal(sc_repo_remove(w, &alice, NULL, &removed), SC_OK);
	assert_int_equal(removed, 2);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(count_closed(&w, "chains"), 1);
		assert_int_equal(sc_repo_remove(w, &addrs[i], NULL, &removed), SC_OK);
		assert_int_equal(removed, 1);
	}
	/* the last reference took the certificate with it */
	assert_int_equal(count_closed(&w, "chains"), 0);
	assert_int_equal(count_closed(&w, "chainrefs"), 0);
	assert_int_equal(count_all(w), 0);
	sc_repo_close(w);
	sc_cert_free(c1);
	sc_cert_free(c2);
	sc_cert_free(lone);
}

/* Write a format 1 store (every record in "certs" with its chain inline). */
static void write_v1(const char *key, const sc_cert *c)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi certs, meta;
	struct sc_repo_entry e;
	uint8_t k[128];
	static uint8_t rec[16384];
	size_t klen = strlen(key), rlen;
	MDB_val mk = { 6, "format" }, mv = { 4, "\0\0\0\x01" }, kv, vv;

	sc_repo_entry_from_cert(c, &e);
	assert_int_equal(sc_record_encode(&e, rec, sizeof rec, &rlen), SC_OK);
	memcpy(k, key, klen + 1);
	memcpy(k + klen + 1, e.fingerprint, 32);
	kv.mv_size = klen + 1 + 32;
	kv.mv_data = k;
	vv.mv_size = rlen;
	vv.mv_data = rec;
	mkdir(g_path, 0700);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "certs", MDB_CREATE, &certs), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	assert_int_equal(mdb_put(txn, meta, &mk, &mv, 0), 0);
	assert_int_equal(mdb_put(txn, certs, &kv, &vv, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void test_format1_converted(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	sc_cert *b = mk_cert((struct tc_cert_opts){ .emails = { "bob@example.test" } }, 1, NULL);
	struct warns wn = { 0 };
	char err[512] = "";
	sc_repo *r = NULL;
	struct got g;

	write_v1("alice@example.test", c);
	write_v1("bob@example.test", b);
	/* the daemon (read-only) refuses, saying what to do */
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_null(r);
	assert_non_null(strstr(err, "format 1"));
	assert_non_null(strstr(err, "admin"));
	/* a writer converts it */
	r = open_repo(0);
	assert_int_equal(count_all(r), 2);
	sc_repo_close(r);
	assert_int_equal(raw_count("certs"), 0);
	assert_int_equal(raw_count("entries"), 2);
	assert_int_equal(raw_count("chains"), 1);
	r = open_repo(SC_REPO_RDONLY);
	sc_repo_set_warn(r, warn_fn, &wn);
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_OK);
	assert_fp(&g, b);
	assert_int_equal(g.n_der, 2);
	assert_true(g.chain1_len > 0);
	assert_int_equal(wn.n, 0);
	sc_repo_close(r);
	sc_cert_free(c);
	sc_cert_free(b);
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

/* SC_REPO_CHECK (smtpcertd -n): the store opens and answers, and nothing is
 * written, not even the lock file a plain read-only open creates; with a
 * writing or creating open it is refused. */
static void test_check_writes_nothing(void **state)
{
	sc_repo *w = open_repo(SC_REPO_CREATE), *r = NULL;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	char lock[800], data[800];
	struct stat before, after;
	struct got g;

	(void)state;
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	snprintf(lock, sizeof lock, "%s/lock.mdb", g_path);
	snprintf(data, sizeof data, "%s/data.mdb", g_path);
	assert_int_equal(unlink(lock), 0);
	assert_int_equal(stat(data, &before), 0);
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY | SC_REPO_CHECK, &r, NULL, 0), SC_OK);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	sc_repo_close(r);
	assert_int_equal(access(lock, F_OK), -1);
	assert_int_equal(stat(data, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	/* a plain read-only open does create it: what the flag is for */
	r = open_repo(SC_REPO_RDONLY);
	sc_repo_close(r);
	assert_int_equal(access(lock, F_OK), 0);

	assert_int_equal(sc_repo_open(g_spec, SC_REPO_CHECK, &r, NULL, 0), SC_ERR_ARG);
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY | SC_REPO_CHECK | SC_REPO_CREATE, &r,
				      NULL, 0),
			 SC_ERR_ARG);
	assert_null(r);
	sc_cert_free(c);
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
		cmocka_unit_test_setup_teardown(test_chain_stored_once, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_format1_converted, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_format_mark, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_not_ours, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_files_and_modes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_permission_denied, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_check_writes_nothing, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
