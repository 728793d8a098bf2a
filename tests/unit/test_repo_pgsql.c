/*
 * test_repo_pgsql.c - the pgsql: backend (lib/repo_pgsql.c) and its connection
 * layer (lib/pgsql_db.c, lib/pgsql_schema.c) against a real PostgreSQL: a
 * private cluster started by tests/lib/pgsql.py through tests/lib/pgtest.c
 * (initdb on a free loopback port), one fresh database per test. The behaviour shared by all backends
 * (repo_cases.h), then what only a database shows: schema versions, two
 * migrations at once, deadlines against a silent server, the pool, SQL errors,
 * rows a hostile writer left, shared chain certificates, paged listing.
 * A missing PostgreSQL fails the test (scripts/install-deps installs it).
 */
#define REPO_SCHEME "pgsql"
#include "repo_cases.h"

#include <pthread.h>
#include <signal.h>

#include "pgsql_db.h"
#include "pgtest.h"
#include "testsrv.h"

static char g_conninfo[600];  /* of the test's own database */
static struct pt_cluster g_pg = PT_CLUSTER_INIT;
static int g_dbno;

/* Start tests/lib/pgsql.py, read its conninfo line. */
static int pg_group_setup(void **state)
{
	if (pt_cluster_start(&g_pg, "test_repo_pgsql") != 0)
		return -1;
	return group_setup(state);
}

static int pg_group_teardown(void **state)
{
	group_teardown(state);
	pt_cluster_stop(&g_pg);
	return 0;
}

/* The cluster's conninfo with dbname=@p db (and connect_timeout=@p timeout when > 0). */
static void conninfo_for(char *buf, size_t size, const char *db, int timeout)
{
	pt_conninfo(&g_pg, buf, size, db, timeout);
}

static PGresult *sql(const char *db, const char *q)
{
	return pt_sql(&g_pg, db, q);
}

static long sql_long(const char *db, const char *q)
{
	PGresult *r = sql(db, q);
	long v;

	assert_int_equal(PQntuples(r), 1);
	v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static char g_db[32];

/* A fresh database per test; g_spec = "pgsql:" its conninfo. */
static int pg_fx_setup(void **state)
{
	char q[128];

	fx_setup(state);
	snprintf(g_db, sizeof g_db, "t%d_%d", (int)getpid(), ++g_dbno);
	snprintf(q, sizeof q, "CREATE DATABASE %s", g_db);
	PQclear(sql("postgres", q));
	conninfo_for(g_conninfo, sizeof g_conninfo, g_db, 0);
	snprintf(g_spec, sizeof g_spec, "pgsql:%s", g_conninfo);
	return 0;
}

#define PGCASE(f) cmocka_unit_test_setup_teardown(f, pg_fx_setup, fx_teardown)

/* ---- schema ------------------------------------------------------------------ */

static void test_schema_created(void **state)
{
	sc_repo *r = open_repo(0);

	assert_int_equal(sql_long(g_db, "SELECT version FROM smtpcert_schema"),
			 SC_PG_SCHEMA_VERSION);
	assert_int_equal(sql_long(g_db, "SELECT count(*) FROM pg_tables WHERE tablename IN "
				  "('smtpcert_schema','chain_certs','certs','submissions',"
				  "'audit')"),
			 5);
	sc_repo_close(r);
	/* opened again: nothing migrated twice */
	r = open_repo(SC_REPO_RDONLY);
	assert_int_equal(sql_long(g_db, "SELECT count(*) FROM smtpcert_schema"), 1);
	sc_repo_close(r);
}

static void test_schema_newer_refused(void **state)
{
	sc_repo *r = open_repo(0);
	sc_pg *db = NULL;
	char err[512] = "";

	sc_repo_close(r);
	PQclear(sql(g_db, "UPDATE smtpcert_schema SET version = 99"));
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "version 99 is newer"));
	assert_int_equal(sc_pg_connect(g_conninfo, &db, err, sizeof err), SC_ERR_CONFIG);
	assert_null(db);
	/* never written */
	assert_int_equal(sql_long(g_db, "SELECT version FROM smtpcert_schema"), 99);
	PQclear(sql(g_db, "INSERT INTO smtpcert_schema VALUES (1)"));
	assert_int_equal(sc_pg_connect(g_conninfo, &db, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "one row"));
}

/* Nodes starting together on an empty database: all succeed, one migrates. */
static void test_migrate_concurrently(void **state)
{
	enum { N = 4 };
	pid_t pids[N];
	int status;

	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			sc_pg *db = NULL;
			char err[512];
			sc_status st = sc_pg_connect(g_conninfo, &db, err, sizeof err);

			if (st != SC_OK)
				fprintf(stderr, "child %d: %s\n", i, err);
			sc_pg_close(db);
			_exit(st == SC_OK ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(sql_long(g_db, "SELECT count(*) FROM smtpcert_schema"), 1);
	assert_int_equal(sql_long(g_db, "SELECT max(version) FROM smtpcert_schema"),
			 SC_PG_SCHEMA_VERSION);
}

/* A role that may only read (the daemon's, for lookups) connects to a migrated
 * database, and cannot migrate an empty one. */
static void test_readonly_role(void **state)
{
	sc_repo *w = open_repo(0), *r = NULL;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	char ci[700], q[256], err[512] = "";
	struct got g;

	store(w, "alice@example.test", c);
	sc_repo_close(w);
	snprintf(q, sizeof q, "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE "
		 "rolname = 'screader') THEN CREATE ROLE screader LOGIN; END IF; END$$");
	PQclear(sql(g_db, q));
	PQclear(sql(g_db, "REVOKE CREATE ON SCHEMA public FROM PUBLIC"));
	PQclear(sql(g_db, "GRANT SELECT ON smtpcert_schema, certs, chain_certs TO screader"));
	snprintf(ci, sizeof ci, "pgsql:%s user=screader", g_conninfo);
	assert_int_equal(sc_repo_open(ci, SC_REPO_RDONLY, &r, err, sizeof err), SC_OK);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_int_equal(g.n_der, 2);
	assert_fp(&g, c);
	assert_int_equal(count_all(r), 1);
	sc_repo_close(r);
	/* the same role on a database without the schema: a configuration error */
	PQclear(sql(g_db, "DROP TABLE smtpcert_schema"));
	assert_int_equal(sc_repo_open(ci, SC_REPO_RDONLY, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "permission denied"));
	sc_cert_free(c);
}

/* ---- connections and deadlines ----------------------------------------------- */

static void test_bad_conninfo(void **state)
{
	sc_repo *r = NULL;
	sc_pg_pool *p = NULL;
	char err[512] = "";

	assert_int_equal(sc_repo_open("pgsql:port=", 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_int_equal(sc_repo_open("pgsql:nokey", 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "conninfo"));
	assert_int_equal(sc_pg_pool_new("host=x connect_timeout=-1", &p, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "connect_timeout"));
	assert_int_equal(sc_pg_pool_new("host=x connect_timeout=1x", &p, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_null(p);
	assert_int_equal(sc_pg_pool_new("host=x", &p, err, sizeof err), SC_OK);
	assert_int_equal(sc_pg_pool_timeout(p), 10);
	sc_pg_pool_free(p);
	assert_int_equal(sc_pg_pool_new("host=x connect_timeout=3", &p, err, sizeof err), SC_OK);
	assert_int_equal(sc_pg_pool_timeout(p), 3);
	sc_pg_pool_free(p);
	/* an unknown role: the administrator must fix it, 5xx-class */
	conninfo_for(err, sizeof err, g_db, 0);
	snprintf(g_spec, sizeof g_spec, "pgsql:%s user=nosuchrole", err);
	assert_int_equal(sc_repo_open(g_spec, 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "nosuchrole"));
}

static void test_refused_is_temporary(void **state)
{
	sc_repo *r = NULL;
	struct got g;
	char port[8], err[512] = "";

	assert_int_equal(ts_dead_port(port), 0);
	snprintf(g_spec, sizeof g_spec, "pgsql:host=127.0.0.1 port=%s dbname=x user=sc "
		 "connect_timeout=5", port);
	assert_int_equal(sc_repo_open(g_spec, 0, &r, err, sizeof err), SC_ERR_TEMP);
	assert_non_null(strstr(err, "refused"));
	/* the daemon (read-only) starts anyway and answers 451 */
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err), SC_OK);
	assert_true(sc_repo_is_remote(r));
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_TEMP);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_TEMP);
	assert_int_equal(g.calls, 0);
	assert_int_equal(sc_repo_list(r, count_fn, &(size_t){ 0 }), SC_ERR_TEMP);
	sc_repo_close(r);
}

/* A server that accepts TCP and never says a word: the deadline, not the
 * kernel's TCP timeout, ends the wait. */
static void test_silent_server(void **state)
{
	char port[8], err[512] = "";
	int fd = ts_listen(port);
	sc_pg *db = NULL;
	sc_repo *r = NULL;
	struct got g;

	assert_true(fd >= 0);
	snprintf(g_spec, sizeof g_spec, "host=127.0.0.1 port=%s dbname=x user=sc "
		 "connect_timeout=1", port);
	assert_int_equal(sc_pg_connect(g_spec, &db, err, sizeof err), SC_ERR_TEMP);
	assert_non_null(strstr(err, "no answer within 1 s"));
	assert_null(db);
	memmove(g_spec + 6, g_spec, strlen(g_spec) + 1);
	memcpy(g_spec, "pgsql:", 6);
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err), SC_OK);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_TEMP);
	sc_repo_close(r);
	close(fd);
}

static void test_query_deadline(void **state)
{
	char ci[700], err[512] = "";
	sc_pg *db = NULL;
	PGresult *res = (PGresult *)&res;
	long left = 1;

	conninfo_for(ci, sizeof ci, g_db, 1);
	assert_int_equal(sc_pg_connect(ci, &db, err, sizeof err), SC_OK);
	assert_true(sc_pg_ok(db));
	assert_int_equal(sc_pg_exec(db, "SELECT pg_sleep(30)", 0, NULL, NULL, NULL, 0, &res, err,
				    sizeof err),
			 SC_ERR_TEMP);
	assert_null(res);
	assert_non_null(strstr(err, "no answer within 1 s"));
	assert_false(sc_pg_ok(db));
	assert_int_equal(sc_pg_exec(db, "SELECT 1", 0, NULL, NULL, NULL, 0, &res, err,
				    sizeof err),
			 SC_ERR_TEMP);
	sc_pg_close(db);
	/* the statement was cancelled on the server (by the cancel thread; wait
	 * for it, generously) */
	for (int i = 0; i < 200 && left; i++) {
		left = sql_long("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
				"query = 'SELECT pg_sleep(30)' AND state = 'active'");
		if (left)
			usleep(50 * 1000);
	}
	assert_int_equal(left, 0);
}

static void test_exec_statuses(void **state)
{
	char err[512] = "";
	sc_pg *db = NULL;
	PGresult *res;
	const char *vals[2] = { "\\x00", "\\x01" };

	assert_int_equal(sc_pg_connect(g_conninfo, &db, err, sizeof err), SC_OK);
	assert_int_equal(sc_pg_exec(db, "SELEC 1", 0, NULL, NULL, NULL, 0, &res, err, sizeof err),
			 SC_ERR_IO);
	assert_non_null(strstr(err, "syntax error"));
	assert_null(strchr(err, '\n'));
	assert_true(sc_pg_ok(db)); /* an SQL error leaves the connection usable */
	assert_int_equal(sc_pg_exec(db, "INSERT INTO chain_certs VALUES ($1, $2)", 2, vals,
				    NULL, NULL, 0, NULL, err, sizeof err),
			 SC_OK);
	assert_int_equal(sc_pg_exec(db, "INSERT INTO chain_certs VALUES ($1, $2)", 2, vals,
				    NULL, NULL, 0, NULL, err, sizeof err),
			 SC_ERR_EXISTS);
	/* a transaction rolled back leaves nothing */
	assert_int_equal(sc_pg_begin(db, err, sizeof err), SC_OK);
	assert_int_equal(sc_pg_exec(db, "DELETE FROM chain_certs", 0, NULL, NULL, NULL, 0, NULL,
				    err, sizeof err),
			 SC_OK);
	sc_pg_rollback(db);
	assert_int_equal(sc_pg_exec(db, "SELECT count(*) FROM chain_certs", 0, NULL, NULL, NULL,
				    0, &res, err, sizeof err),
			 SC_OK);
	assert_string_equal(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	/* the server ends the session: the next statement says so, 4xx-class */
	PQclear(sql(g_db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
		    "datname = current_database() AND pid <> pg_backend_pid()"));
	assert_int_equal(sc_pg_exec(db, "SELECT 1", 0, NULL, NULL, NULL, 0, NULL, err,
				    sizeof err),
			 SC_ERR_TEMP);
	assert_false(sc_pg_ok(db));
	sc_pg_close(db);
}

static void test_pool(void **state)
{
	char ci[700], err[512] = "";
	sc_pg_pool *p = NULL;
	sc_pg *dbs[SC_PG_POOL_MAX], *extra = NULL, *again = NULL;

	conninfo_for(ci, sizeof ci, g_db, 1);
	assert_int_equal(sc_pg_pool_new(ci, &p, err, sizeof err), SC_OK);
	for (int i = 0; i < SC_PG_POOL_MAX; i++)
		assert_int_equal(sc_pg_pool_get(p, &dbs[i], err, sizeof err), SC_OK);
	/* all borrowed: the next waits for the deadline */
	assert_int_equal(sc_pg_pool_get(p, &extra, err, sizeof err), SC_ERR_TEMP);
	assert_non_null(strstr(err, "busy"));
	assert_null(extra);
	sc_pg_pool_put(p, dbs[3]);
	assert_int_equal(sc_pg_pool_get(p, &again, err, sizeof err), SC_OK);
	assert_ptr_equal(again, dbs[3]); /* reused, not a new connection */
	/* a connection left in a transaction is rolled back when put back */
	assert_int_equal(sc_pg_begin(again, err, sizeof err), SC_OK);
	sc_pg_pool_put(p, again);
	assert_int_equal(sc_pg_pool_get(p, &again, err, sizeof err), SC_OK);
	assert_int_equal(sc_pg_begin(again, err, sizeof err), SC_OK);
	assert_int_equal(sc_pg_commit(again, err, sizeof err), SC_OK);
	dbs[3] = again;
	for (int i = 0; i < SC_PG_POOL_MAX; i++)
		sc_pg_pool_put(p, dbs[i]);
	sc_pg_pool_free(p);
}

static void test_pool_backoff(void **state)
{
	char port[8], ci[256], err[512] = "";
	sc_pg_pool *p = NULL;
	sc_pg *db = NULL;

	assert_int_equal(ts_dead_port(port), 0);
	snprintf(ci, sizeof ci, "host=127.0.0.1 port=%s dbname=x connect_timeout=2", port);
	assert_int_equal(sc_pg_pool_new(ci, &p, err, sizeof err), SC_OK);
	assert_int_equal(sc_pg_pool_get(p, &db, err, sizeof err), SC_ERR_TEMP);
	assert_non_null(strstr(err, "refused"));
	/* within a second: the same failure, no new attempt */
	assert_int_equal(sc_pg_pool_get(p, &db, err, sizeof err), SC_ERR_TEMP);
	assert_non_null(strstr(err, "retried after"));
	assert_null(db);
	sc_pg_pool_free(p);
	sc_pg_pool_put(NULL, NULL);
	sc_pg_pool_free(NULL);
	sc_pg_close(NULL);
	assert_false(sc_pg_ok(NULL));
}

/* ---- what the backend stores --------------------------------------------------- */

static void test_chain_stored_once(void **state)
{
	sc_repo *r = open_repo(0);
	sc_cert *a = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	sc_cert *b = mk_cert((struct tc_cert_opts){ .emails = { "bob@example.test" } }, 1, NULL);
	struct got g;

	store(r, "alice@example.test", a);
	store(r, "bob@example.test", b);
	store(r, "bob@example.test", b); /* replaced, not added */
	assert_int_equal(sql_long(g_db, "SELECT count(*) FROM chain_certs"), 1);
	assert_int_equal(sql_long(g_db, "SELECT count(*) FROM certs"), 2);
	assert_int_equal(sql_long(g_db, "SELECT count(*) FROM certs WHERE chain[1] = "
				  "(SELECT fingerprint FROM chain_certs)"),
			 2);
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_OK);
	assert_int_equal(g.n_der, 2);
	assert_int_equal(g.chain1_len, i2d_X509(g_ca, NULL));
	sc_cert_free(a);
	sc_cert_free(b);
	sc_repo_close(r);
}

#define ZERO31 "00000000000000000000000000000000000000000000000000000000000000"

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

/* Rows a buggy or hostile writer left: skipped with a warning, never served,
 * never a crash; the good entry next to them still answers. */
static void test_corrupt_rows_skipped(void **state)
{
	sc_repo *r = open_repo(0);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct warns wn = { 0 };
	struct got g;
	size_t n = 0;

	store(r, "alice@example.test", c);
	/* junk leaf; a real leaf under a wrong fingerprint; a chain certificate
	 * missing from chain_certs; an oversized leaf; a short fingerprint (list) */
	PQclear(sql(g_db, "INSERT INTO certs VALUES ('alice@example.test', "
		    "'\\x" ZERO31 "01', '\\x3003020100', '{}', 0, 9999999999, 0)"));
	PQclear(sql(g_db, "INSERT INTO certs SELECT addr, '\\x" ZERO31 "02', leaf, chain, "
		    "not_before, not_after, added FROM certs WHERE length(leaf) > 5"));
	PQclear(sql(g_db, "INSERT INTO certs SELECT addr, '\\x" ZERO31 "03', leaf, "
		    "ARRAY['\\xdead'::bytea], not_before, not_after, added FROM certs "
		    "WHERE fingerprint = '\\x" ZERO31 "02'"));
	/* a leaf over SC_CERT_INPUT_MAX never leaves the server */
	PQclear(sql(g_db, "INSERT INTO certs VALUES ('alice@example.test', "
		    "'\\x" ZERO31 "04', decode('30' || repeat('00', 70000), 'hex'), '{}', 0, "
		    "9999999999, 0)"));
	PQclear(sql(g_db, "INSERT INTO certs VALUES ('zed@example.test', '\\x01', "
		    "'\\x3003020100', '{}', 0, 1, 0)"));
	sc_repo_set_warn(r, warn_fn, &wn);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(g.n_der, 2);
	assert_int_equal(wn.n, 4);
	assert_non_null(strstr(wn.last, "corrupt"));
	assert_int_equal(count_entries(r, "alice@example.test"), 1);
	/* list walks past every corrupt row, including the short key */
	assert_int_equal(sc_repo_list(r, count_fn, &n), SC_OK);
	assert_int_equal(n, 1);
	sc_cert_free(c);
	sc_repo_close(r);
}

/* More entries than one list page, across several pages, in key order. */
static void test_list_pages(void **state)
{
	enum { N = 150 };
	sc_repo *r = open_repo(0);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct sc_addr addrs[N];
	const sc_cert *certs[N];
	size_t done = 0, n = 0;

	for (int i = 0; i < N; i++) {
		char buf[64];

		snprintf(buf, sizeof buf, "u%03d@example.test", i);
		addrs[i] = A(buf);
		certs[i] = c;
	}
	assert_int_equal(sc_repo_store_batch(r, addrs, certs, N, &done), SC_OK);
	assert_int_equal(done, N);
	assert_int_equal(sc_repo_list(r, count_fn, &n), SC_OK);
	assert_int_equal(n, N);
	sc_cert_free(c);
	sc_repo_close(r);
}

/* store_batch is one transaction: a failing entry leaves nothing behind. */
static void test_batch_all_or_nothing(void **state)
{
	sc_repo *r = open_repo(0);
	struct sc_addr addrs[SC_REPO_ENTRIES_MAX + 2];
	const sc_cert *certs[SC_REPO_ENTRIES_MAX + 2];
	sc_cert *cs[SC_REPO_ENTRIES_MAX + 2];
	size_t done = 99;

	addrs[0] = A("bob@example.test");
	cs[0] = mk_cert((struct tc_cert_opts){ .emails = { "bob@example.test" } }, 0, NULL);
	certs[0] = cs[0];
	for (int i = 1; i < SC_REPO_ENTRIES_MAX + 2; i++) {
		addrs[i] = A("alice@example.test");
		cs[i] = mk_cert((struct tc_cert_opts){ .not_before_offset = -i }, 0, NULL);
		certs[i] = cs[i];
	}
	assert_int_equal(sc_repo_store_batch(r, addrs, certs, SC_REPO_ENTRIES_MAX + 2, &done),
			 SC_ERR_TOO_MANY);
	assert_int_equal(sql_long(g_db, "SELECT count(*) FROM certs"), 0);
	assert_int_equal(count_all(r), 0);
	for (int i = 0; i < SC_REPO_ENTRIES_MAX + 2; i++)
		sc_cert_free(cs[i]);
	sc_repo_close(r);
}

struct lookup_thread {
	sc_repo *r;
	const sc_cert *c;
	int failures;
};

static void *lookup_thread_main(void *arg)
{
	struct lookup_thread *t = arg;
	struct sc_addr a;
	uint8_t want[32];

	sc_cert_fingerprint(t->c, want);
	if (sc_addr_parse("alice@example.test", 18, 0, &a, NULL) != SC_OK) {
		t->failures++;
		return NULL;
	}
	for (int i = 0; i < 40; i++) {
		struct got g = { 0 };

		if (sc_repo_lookup(t->r, &a, time(NULL), NULL, got_fn, &g) != SC_OK ||
		    g.calls != 1 || memcmp(g.fp, want, 32) || g.n_der != 2)
			t->failures++;
	}
	return NULL;
}

/* The backend is threadsafe (lib/repo.c does not serialise its reads): the
 * daemon's workers look up in parallel, each on a pooled connection. */
static void test_parallel_lookups(void **state)
{
	enum { T = 6 };
	sc_repo *w = open_repo(0), *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct lookup_thread t[T];
	pthread_t tid[T];

	store(w, "alice@example.test", c);
	r = open_repo(SC_REPO_RDONLY);
	for (int i = 0; i < T; i++) {
		t[i] = (struct lookup_thread){ .r = r, .c = c };
		assert_int_equal(pthread_create(&tid[i], NULL, lookup_thread_main, &t[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(t[i].failures, 0);
	}
	/* at most SC_PG_POOL_MAX connections, whatever the number of threads */
	assert_true(sql_long(g_db, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
			     "current_database() AND pid <> pg_backend_pid()") <= 2 * SC_PG_POOL_MAX);
	sc_repo_close(r);
	sc_repo_close(w);
	sc_cert_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PGCASE(case_store_lookup),
		PGCASE(case_newest_valid),
		PGCASE(case_ties),
		PGCASE(case_replace_and_remove),
		PGCASE(case_list_order),
		PGCASE(case_callback_status),
		PGCASE(case_reader_sees_writes),
		PGCASE(case_fork_writer),
		PGCASE(case_too_many),
		PGCASE(test_schema_created),
		PGCASE(test_schema_newer_refused),
		PGCASE(test_migrate_concurrently),
		PGCASE(test_readonly_role),
		PGCASE(test_bad_conninfo),
		PGCASE(test_refused_is_temporary),
		PGCASE(test_silent_server),
		PGCASE(test_query_deadline),
		PGCASE(test_exec_statuses),
		PGCASE(test_pool),
		PGCASE(test_pool_backoff),
		PGCASE(test_chain_stored_once),
		PGCASE(test_corrupt_rows_skipped),
		PGCASE(test_list_pages),
		PGCASE(test_batch_all_or_nothing),
		PGCASE(test_parallel_lookups),
	};

	return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
