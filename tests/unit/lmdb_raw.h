/*
 * lmdb_raw.h - read and write an lmdb: store's databases with LMDB itself, as a
 * buggy or hostile writer would, for the tests of the lmdb: backend
 * (test_repo_lmdb.c, test_repo_lmdb_index.c). The store is repo_cases.h's
 * g_path; no sc_repo handle of it may be open meanwhile (LMDB: one environment
 * once per process).
 */
#ifndef SC_TEST_LMDB_RAW_H
#define SC_TEST_LMDB_RAW_H

#include <lmdb.h>
#include <string.h>

#include "repo_cases.h"

/* Write one raw key/value pair into DB @p dbname. */
static void raw_put(const char *dbname, const void *k, size_t klen, const void *v, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Read one raw value into @p out (it must fit); 0 when the key is absent. */
static size_t raw_get(const char *dbname, const void *k, size_t klen, void *out, size_t size)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { klen, (void *)k }, val;
	size_t n = 0;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS | MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	if (mdb_get(txn, dbi, &key, &val) == 0) {
		assert_true(val.mv_size <= size);
		memcpy(out, val.mv_data, val.mv_size);
		n = val.mv_size;
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

#endif
