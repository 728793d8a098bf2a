/*
 * test_queue_pgsql.c - the PostgreSQL backend of the review queue
 * (lib/queue_pgsql.c) against a real server: a private cluster started by
 * tests/lib/pgsql.py (through tests/lib/pgtest.c), one fresh database per
 * test. The same calls as the directory form (add/get/list/decide/audit, ids,
 * states), then what only a shared database shows: two handles (two nodes)
 * deciding one submission, audit rows naming the node, the list bound over the
 * oldest rows, rows a hostile writer left (bad state, oversized text, forged
 * certificate), text from a peer that is not UTF-8, an unreachable server
 * (SC_ERR_TEMP), a server connection killed under an open queue. A missing
 * PostgreSQL fails the test (scripts/install-deps installs it).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "pgsql_db.h"
#include "pgtest.h"
#include "queue_int.h"
#include "testcert.h"
#include "testsrv.h"

static struct pt_cluster g_pg = PT_CLUSTER_INIT;
static char g_spec[700];     /* "pgsql:" + the test's own database */
static char g_db[32];
static int g_dbno;
static sc_cert *g_cert, *g_cert2;
static struct sc_addr g_alice;

static sc_cert *make_cert(const char *cn, int chain)
{
	return tc_email_cert("Queue CA", cn, "alice@example.test", tc_key_shared(TC_P256), chain);
}

/* Start tests/lib/pgsql.py, read its conninfo line. */
static int group_setup(void **state)
{
	if (pt_cluster_start(&g_pg, "test_queue_pgsql") != 0)
		return -1;
	g_cert = make_cert("Alice \\ \"Q\"\nInjected: yes \xc3\xa9", 1);
	g_cert2 = make_cert("Alice two", 0);
	assert_int_equal(sc_addr_parse("Alice@Example.TEST", 18, 0, &g_alice, NULL), SC_OK);
	return 0;
}

static int group_teardown(void **state)
{
	sc_cert_free(g_cert);
	sc_cert_free(g_cert2);
	pt_cluster_stop(&g_pg);
	return 0;
}

/* The cluster's conninfo with dbname=@p db. */
static void conninfo_for(char *buf, size_t size, const char *db)
{
	pt_conninfo(&g_pg, buf, size, db, 0);
}

static PGresult *sql(const char *db, const char *q)
{
	return pt_sql(&g_pg, db, q);
}

/* The one value of a one-row, one-column query, as text (static buffer). */
static const char *sql_one(const char *q)
{
	static char buf[2048];
	PGresult *r = sql(g_db, q);

	assert_int_equal(PQntuples(r), 1);
	snprintf(buf, sizeof buf, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return buf;
}

static int fx_setup(void **state)
{
	char q[128];

	snprintf(g_db, sizeof g_db, "q%d_%d", (int)getpid(), ++g_dbno);
	snprintf(q, sizeof q, "CREATE DATABASE %s", g_db);
	PQclear(sql("postgres", q));
	memcpy(g_spec, "pgsql:", 6);
	conninfo_for(g_spec + 6, sizeof g_spec - 6, g_db);
	return 0;
}

static int fx_teardown(void **state)
{
	return 0;
}

static sc_queue *open_q(const char *node)
{
	sc_queue *q = NULL;
	char err[512] = "";

	if (sc_queue_open_ex(NULL, g_spec, &q, err, sizeof err) != SC_OK)
		fail_msg("open %s: %s", g_spec, err);
	sc_queue_set_node(q, node);
	return q;
}

struct seen {
	size_t n;
	char ids[8][SC_QUEUE_ID_LEN + 1];
	int64_t received[8];
};

static sc_status seen_fn(void *arg, const struct sc_submission *s)
{
	struct seen *v = arg;

	if (v->n < 8) {
		memcpy(v->ids[v->n], s->id, sizeof v->ids[0]);
		v->received[v->n] = s->received;
	}
	v->n++;
	return SC_OK;
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

/* add / get / list / decide on one node: the same answers as the directory form. */
static void test_round_trip(void **state)
{
	sc_queue *q = open_q("mx1.example.test");
	struct sc_submission s, g;
	struct seen v = { 0 };
	sc_cert *c = NULL;
	char query[256];

	assert_int_equal(sc_queue_add(q, g_cert, &g_alice, "alice@example.test",
				      "192.0.2.1:40000", &s), SC_OK);
	assert_true(sc_queue_id_valid(s.id));
	assert_string_equal(s.address, "alice@example.test");
	/* committed: another connection sees the row at once */
	snprintf(query, sizeof query, "SELECT state FROM submissions WHERE id = '%s'", s.id);
	assert_string_equal(sql_one(query), "0");
	assert_int_equal(sc_queue_get(q, s.id, &g, &c), SC_OK);
	assert_int_equal(g.state, SC_SUB_PENDING);
	assert_string_equal(g.auth_user, "alice@example.test");
	assert_string_equal(g.client, "192.0.2.1:40000");
	assert_string_equal(g.fingerprint, s.fingerprint);
	assert_string_equal(g.subject, s.subject);
	assert_int_equal(g.received, s.received);
	assert_int_equal(g.not_after, s.not_after);
	assert_int_equal(g.decided, 0);
	assert_int_equal(sc_cert_count(c), 2);
	sc_cert_free(c);
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, seen_fn, &v), SC_OK);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.ids[0], s.id);
	assert_int_equal(sc_queue_decide(q, s.id, 0, "not our CA", "admin:root"), SC_OK);
	assert_int_equal(sc_queue_get(q, s.id, &g, NULL), SC_OK);
	assert_int_equal(g.state, SC_SUB_REJECTED);
	assert_string_equal(g.reason, "not our CA");
	assert_true(g.decided > 0);
	memset(&v, 0, sizeof v);
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, seen_fn, &v), SC_OK);
	assert_int_equal(v.n, 0);
	assert_int_equal(sc_queue_list(q, SC_SUB_REJECTED, seen_fn, &v), SC_OK);
	assert_int_equal(v.n, 1);
	/* audit rows: submit then reject, both naming this node */
	assert_string_equal(sql_one("SELECT string_agg(action || ':' || node || ':' || actor, ',' "
				    "ORDER BY seq) FROM audit"),
			    "submit:mx1.example.test:alice@example.test,"
			    "reject:mx1.example.test:admin:root");
	assert_int_equal(sc_queue_audit(q, "admin:x", "notify", s.id, "alice@example.test",
					"decision notice delivered"), SC_OK);
	assert_string_equal(sql_one("SELECT detail FROM audit WHERE action = 'notify'"),
			    "decision notice delivered");
	/* ids: syntax before any query; unknown ids */
	assert_int_equal(sc_queue_get(q, "../etc/passwd", &g, NULL), SC_ERR_SYNTAX);
	assert_int_equal(sc_queue_decide(q, "0123456789ABCDEF0123456789abcdef", 1, NULL, "x"),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_queue_get(q, "0123456789abcdef0123456789abcdef", &g, NULL),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(sc_queue_decide(q, "0123456789abcdef0123456789abcdef", 1, NULL, "x"),
			 SC_ERR_NOT_FOUND);
	sc_queue_close(q);
}

/* Two nodes on one database: one takes the submission, the other decides it;
 * a second decision (either node) is SC_ERR_EXISTS and changes nothing. */
static void test_two_nodes(void **state)
{
	sc_queue *a = open_q("mx-a"), *b = open_q("mx-b");
	struct sc_submission s1, s2, g;
	struct seen v = { 0 };

	assert_int_equal(sc_queue_add(a, g_cert, &g_alice, "alice", "c1", &s1), SC_OK);
	assert_int_equal(sc_queue_add(a, g_cert2, &g_alice, "alice", "c2", &s2), SC_OK);
	assert_string_not_equal(s1.id, s2.id);
	assert_int_equal(sc_queue_list(b, SC_SUB_PENDING, seen_fn, &v), SC_OK);
	assert_int_equal(v.n, 2);
	assert_true(v.received[0] <= v.received[1]);
	assert_int_equal(sc_queue_decide(b, s1.id, 1, NULL, "admin:bob"), SC_OK);
	assert_int_equal(sc_queue_decide(a, s1.id, 0, "late", "admin:ann"), SC_ERR_EXISTS);
	assert_int_equal(sc_queue_decide(b, s1.id, 1, NULL, "admin:bob"), SC_ERR_EXISTS);
	assert_int_equal(sc_queue_get(a, s1.id, &g, NULL), SC_OK);
	assert_int_equal(g.state, SC_SUB_ACCEPTED);
	assert_string_equal(g.reason, "");
	assert_int_equal(sc_queue_decide(a, s2.id, 0, NULL, "admin:ann"), SC_OK);
	assert_string_equal(sql_one("SELECT string_agg(action || '@' || node, ',' ORDER BY seq) "
				    "FROM audit"),
			    "submit@mx-a,submit@mx-a,accept@mx-b,reject@mx-a");
	sc_queue_close(a);
	sc_queue_close(b);
}

/* Concurrent deciders in separate processes: exactly one wins. */
static void test_concurrent_decide(void **state)
{
	enum { N = 4 };
	sc_queue *q = open_q("mx");
	struct sc_submission s;
	pid_t pids[N];
	int status, won = 0, lost = 0;

	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s), SC_OK);
	sc_queue_close(q);
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			sc_queue *cq = NULL;
			char err[256];
			sc_status st = sc_queue_open_ex(NULL, g_spec, &cq, err, sizeof err);

			if (st == SC_OK)
				st = sc_queue_decide(cq, s.id, i & 1, NULL, "racer");
			sc_queue_close(cq);
			_exit(st == SC_OK ? 0 : st == SC_ERR_EXISTS ? 1 : 2);
		}
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		won += WEXITSTATUS(status) == 0;
		lost += WEXITSTATUS(status) == 1;
	}
	assert_int_equal(won, 1);
	assert_int_equal(lost, N - 1);
	assert_string_equal(sql_one("SELECT count(*) FROM audit WHERE action IN "
				    "('accept','reject')"), "1");
}

/* The list bound: the oldest SC_QUEUE_LIST_MAX, then SC_ERR_TOO_MANY. */
static void test_list_bound(void **state)
{
	sc_queue *q = open_q("mx");
	struct seen v = { 0 };

	/* rows another program wrote: ids from md5, received ascending */
	PQclear(sql(g_db, "INSERT INTO submissions (id, state, address, auth_user, client, "
		    "received, fingerprint, subject, issuer, not_before, not_after, certs) "
		    "SELECT md5(i::text), 0, 'a@example.test', 'a', 'c', 1000 + i, "
		    "repeat('ab', 32), 'CN=x', 'CN=y', 0, 1, '\\x30'::bytea "
		    "FROM generate_series(1, 10001) AS i"));
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, seen_fn, &v), SC_ERR_TOO_MANY);
	assert_int_equal(v.n, SC_QUEUE_LIST_MAX);
	assert_int_equal(v.received[0], 1001);
	assert_int_equal(v.received[1], 1002);
	PQclear(sql(g_db, "DELETE FROM submissions WHERE received = 1001"));
	memset(&v, 0, sizeof v);
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, seen_fn, &v), SC_OK);
	assert_int_equal(v.n, SC_QUEUE_LIST_MAX);
	sc_queue_close(q);
}

/* Rows a hostile or broken writer left: skipped by list with a warning,
 * refused by get; a certificate that is not the one the row names is never
 * returned. */
static void test_hostile_rows(void **state)
{
	sc_queue *q = open_q("mx");
	struct sc_submission s, s2, g;
	struct warns w = { 0 };
	struct seen v = { 0 };
	sc_cert *c = NULL;
	char query[512];

	sc_queue_set_warn(q, warn_fn, &w);
	assert_int_equal(sc_queue_add(q, g_cert, &g_alice, "alice", "c", &s), SC_OK);
	PQclear(sql(g_db, "INSERT INTO submissions (id, state, address, auth_user, client, "
		    "received, fingerprint, subject, issuer, not_before, not_after, certs) VALUES "
		    "('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 7, 'a', 'a', 'c', 1, repeat('ab', 32), "
		    "'s', 'i', 0, 1, '\\x30'), "
		    "('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 0, 'a', repeat('u', 5000), 'c', 2, "
		    "repeat('ab', 32), 's', 'i', 0, 1, '\\x30'), "
		    "('cccccccccccccccccccccccccccccccc', 0, 'a', 'a', 'c', 3, 'nothex', "
		    "'s', 'i', 0, 1, '\\x30'), "
		    "('NOT-AN-ID', 0, 'a', 'a', 'c', 4, repeat('ab', 32), 's', 'i', 0, 1, '\\x30')"));
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, seen_fn, &v), SC_OK);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.ids[0], s.id);
	assert_int_equal(w.n, 3);
	assert_non_null(strstr(w.last, "unreadable entry"));
	assert_int_equal(sc_queue_get(q, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &g, NULL),
			 SC_ERR_SYNTAX);
	assert_int_equal(sc_queue_get(q, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", &g, NULL),
			 SC_ERR_TOO_LONG);
	assert_int_equal(sc_queue_get(q, "cccccccccccccccccccccccccccccccc", &g, NULL),
			 SC_ERR_SYNTAX);
	/* another certificate under this row's fingerprint: MISMATCH, never served */
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "a", "c", &s2), SC_OK);
	snprintf(query, sizeof query, "UPDATE submissions SET certs = (SELECT certs FROM "
		 "submissions WHERE id = '%s') WHERE id = '%s'", s2.id, s.id);
	PQclear(sql(g_db, query));
	assert_int_equal(sc_queue_get(q, s.id, &g, &c), SC_ERR_MISMATCH);
	assert_null(c);
	assert_int_equal(sc_queue_get(q, s.id, &g, NULL), SC_OK); /* metadata alone is fine */
	/* a truncated DER body */
	snprintf(query, sizeof query, "UPDATE submissions SET certs = '\\x3082' WHERE id = '%s'",
		 s2.id);
	PQclear(sql(g_db, query));
	assert_int_not_equal(sc_queue_get(q, s2.id, &g, &c), SC_OK);
	assert_null(c);
	/* a damaged entry can still be decided (the claim reads no certificate) */
	assert_int_equal(sc_queue_decide(q, s2.id, 0, "damaged", "admin:root"), SC_OK);
	sc_queue_close(q);
}

/* Text from a peer: bytes that are not UTF-8 become '?' (PostgreSQL would
 * refuse the row otherwise and the 250 must not depend on a user name). */
static void test_text_cleaned(void **state)
{
	sc_queue *q = open_q("node\xff");
	struct sc_submission s, g;

	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "al\xffice\xc3", "1.2.3.4:5\x80", &s),
			 SC_OK);
	assert_int_equal(sc_queue_get(q, s.id, &g, NULL), SC_OK);
	assert_string_equal(g.auth_user, "al?ice?");
	assert_string_equal(g.client, "1.2.3.4:5?");
	assert_int_equal(sc_queue_decide(q, s.id, 0, "bad\xfe reason\nline2", "admin:\xff"),
			 SC_OK);
	assert_int_equal(sc_queue_get(q, s.id, &g, NULL), SC_OK);
	assert_string_equal(g.reason, "bad? reason\nline2");
	assert_string_equal(sql_one("SELECT node || ' ' || actor FROM audit WHERE action = "
				    "'reject'"), "node? admin:?");
	sc_queue_close(q);
}

/* An unreachable server: SC_ERR_TEMP at open (the daemon answers 451); a
 * pooled connection the server dropped under an open queue: the next call
 * succeeds on a new connection (write and read). */
static void test_unreachable(void **state)
{
	char port[8], spec[256], err[512] = "";
	struct sc_submission s;
	struct seen v = { 0 };
	sc_queue *q = NULL;

	assert_int_equal(ts_dead_port(port), 0);
	snprintf(spec, sizeof spec, "pgsql:host=127.0.0.1 port=%s dbname=x user=sc "
		 "connect_timeout=3", port);
	assert_int_equal(sc_queue_open_ex(NULL, spec, &q, err, sizeof err), SC_ERR_TEMP);
	assert_null(q);
	assert_true(err[0] != '\0');
	/* the daemon's open: a handle whose calls say SC_ERR_TEMP until it answers */
	assert_int_equal(sc_queue_open_lazy(NULL, spec, &q, err, sizeof err), SC_OK);
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s), SC_ERR_TEMP);
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, seen_fn, &v), SC_ERR_TEMP);
	assert_int_equal(sc_queue_decide(q, "0123456789abcdef0123456789abcdef", 1, NULL, "x"),
			 SC_ERR_TEMP);
	sc_queue_close(q);
	/* a server that accepts and never answers: the deadline, then SC_ERR_TEMP
	 * (lazily too); the listen backlog takes the connections */
	{
		char lport[8];
		int lfd = ts_listen(lport);

		assert_true(lfd >= 0);
		snprintf(spec, sizeof spec, "pgsql:host=127.0.0.1 port=%s dbname=x user=sc "
			 "connect_timeout=1", lport);
		assert_int_equal(sc_queue_open_ex(NULL, spec, &q, err, sizeof err), SC_ERR_TEMP);
		assert_int_equal(sc_queue_open_lazy(NULL, spec, &q, err, sizeof err), SC_OK);
		assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s),
				 SC_ERR_TEMP);
		sc_queue_close(q);
		close(lfd);
	}
	/* a conninfo libpq cannot parse fails even lazily */
	assert_int_equal(sc_queue_open_lazy(NULL, "pgsql:host=127.0.0.1 nosuchkey=1", &q, err,
					    sizeof err), SC_ERR_CONFIG);
	q = NULL;
	q = open_q("mx");
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s), SC_OK);
	PQclear(sql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		    "WHERE datname LIKE 'q%' AND pid <> pg_backend_pid()"));
	/* the pooled connection is dead: one retry on a new one, nothing lost */
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s), SC_OK);
	PQclear(sql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		    "WHERE datname LIKE 'q%' AND pid <> pg_backend_pid()"));
	memset(&v, 0, sizeof v);
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, seen_fn, &v), SC_OK);
	assert_int_equal(v.n, 2);
	assert_int_equal(sc_queue_decide(q, s.id, 1, NULL, "auto"), SC_OK);
	sc_queue_close(q);
}

#define PGCASE(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PGCASE(test_round_trip),
		PGCASE(test_two_nodes),
		PGCASE(test_concurrent_decide),
		PGCASE(test_list_bound),
		PGCASE(test_hostile_rows),
		PGCASE(test_text_cleaned),
		PGCASE(test_unreachable),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
