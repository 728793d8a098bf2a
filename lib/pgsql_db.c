/*
 * pgsql_db.c - PostgreSQL connections with a client-side deadline, and a small
 * thread-safe pool of them (lib/pgsql_db.h). Used by the pgsql: repository
 * (lib/repo_pgsql.c) and the shared review queue (lib/queue_pgsql.c), in the
 * daemon's worker threads and in the smtpcert CLI; never on an event loop.
 *
 * Owns: every PGconn of the library. The schema migration lives in
 * lib/pgsql_schema.c and is run by sc_pg_connect().
 *
 * Every wait is a poll() on the connection's socket against a deadline
 * (connect_timeout of the conninfo, default 10 s): libpq's blocking calls
 * (PQexec, PQconnectdb) would wait for the kernel's TCP timeout on a dead
 * network. PQcancel() itself blocks without a timeout in libpq 15 (connect,
 * send, wait for EOF), so a query that missed its deadline is cancelled from a
 * short-lived detached thread while the caller already has its SC_ERR_TEMP.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errmsg.h"
#include "pgsql_db.h"

#define PG_TIMEOUT_DEFAULT 10 /* seconds, when the conninfo says none (or 0) */
#define PG_TIMEOUT_MAX 3600
#define PG_RETRY_MS 1000       /* a failed pool connect is not retried sooner */
#define PG_CANCEL_THREADS_MAX 4 /* cancels in flight; more are skipped */

#define PG_PREPARED_MAX 8 /* statements one connection keeps prepared */

struct sc_pg {
	PGconn *conn;
	int timeout; /* seconds per statement */
	int broken;  /* deadline passed or connection lost: close it */
	/* names (the callers' static strings) prepared on this connection */
	const char *prepared[PG_PREPARED_MAX];
	size_t nprepared;
};

struct sc_pg_pool {
	pthread_mutex_t lock;
	pthread_cond_t back; /* a connection was put back or closed */
	char *conninfo;
	int timeout;
	sc_pg *idle[SC_PG_POOL_MAX];
	size_t nidle;
	size_t total;          /* idle + borrowed + being connected */
	long long failed_at;   /* monotonic ms of the last failed connect, 0 none */
	sc_status failed_st;
	char failed_msg[256];
};

static atomic_int pg_cancels;

long long sc_pg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq messages end with a newline and may span lines; one line for logs. */
static void pg_msg(char *err, size_t errlen, const char *prefix, const char *msg)
{
	size_t n;

	if (!err || !errlen)
		return;
	sc_errf(err, errlen, "%s%s", prefix, msg && *msg ? msg : "unknown error");
	n = strlen(err);
	while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (err[i] == '\n' || err[i] == '\t')
			err[i] = ' ';
}

/* NOTICEs (e.g. "relation already exists, skipping") would go to stderr. */
static void pg_notice_drop(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * The statement deadline from the conninfo's connect_timeout. libpq applies
 * connect_timeout only in its blocking connect; we apply it to every wait.
 */
static sc_status pg_parse_conninfo(const char *conninfo, int *timeout, char *err,
				   size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);

	*timeout = PG_TIMEOUT_DEFAULT;
	if (!opts) {
		pg_msg(err, errlen, "pgsql: bad conninfo: ", perr ? perr : "out of memory");
		PQfreemem(perr);
		return SC_ERR_CONFIG;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		char *end;
		long v;

		if (strcmp(o->keyword, "connect_timeout") || !o->val || !*o->val)
			continue;
		errno = 0;
		v = strtol(o->val, &end, 10);
		if (errno || *end || end == o->val || v < 0 || v > PG_TIMEOUT_MAX) {
			PQconninfoFree(opts);
			return sc_fail(err, errlen, SC_ERR_CONFIG,
				       "pgsql: connect_timeout must be 0..%d seconds",
				       PG_TIMEOUT_MAX);
		}
		if (v > 0)
			*timeout = (int)v;
	}
	PQconninfoFree(opts);
	return SC_OK;
}

/* Wait for @p events on the connection's socket until @p deadline (ms).
 * @return 1 ready, 0 deadline passed, -1 poll failed. */
static int pg_wait(PGconn *conn, short events, long long deadline)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = events};

	if (pfd.fd < 0)
		return -1;
	for (;;) {
		long long left = deadline - sc_pg_now_ms();
		int rc;

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/*
 * A refused login is something the administrator must fix (wrong password,
 * unknown role or database, pg_hba.conf); anything else at connect time (no
 * route, refused, "the database system is starting up", too many clients)
 * may pass by itself.
 */
static sc_status pg_connect_failure_status(PGconn *conn)
{
	static const char *const config_markers[] = {
		"authentication failed", "pg_hba.conf", "does not exist",
		"password is required", "no password supplied", "permission denied",
		"invalid ", "unsupported"};
	const char *msg = PQerrorMessage(conn);

	if (PQconnectionNeedsPassword(conn))
		return SC_ERR_CONFIG;
	for (size_t i = 0; i < sizeof(config_markers) / sizeof(config_markers[0]); i++)
		if (strstr(msg, config_markers[i]))
			return SC_ERR_CONFIG;
	return SC_ERR_TEMP;
}

/* PQconnectStart/PQconnectPoll, each step awaited against the deadline. */
static sc_status pg_open(const char *conninfo, int timeout, sc_pg **out, char *err,
			 size_t errlen)
{
	long long deadline = sc_pg_now_ms() + (long long)timeout * 1000;
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	sc_pg *db;
	PGconn *conn;

	conn = PQconnectStart(conninfo);
	if (!conn)
		return sc_fail(err, errlen, SC_ERR_NOMEM, "pgsql: out of memory");
	if (PQstatus(conn) == CONNECTION_BAD) {
		pg_msg(err, errlen, "pgsql: ", PQerrorMessage(conn));
		PQfinish(conn);
		return SC_ERR_CONFIG;
	}
	/* libpq docs: act as if PGRES_POLLING_WRITING had been returned first */
	while (ps != PGRES_POLLING_OK) {
		int w;

		if (ps == PGRES_POLLING_FAILED) {
			sc_status st = pg_connect_failure_status(conn);

			pg_msg(err, errlen, "pgsql: connect: ", PQerrorMessage(conn));
			PQfinish(conn);
			return st;
		}
		w = pg_wait(conn, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
		if (w <= 0) {
			PQfinish(conn);
			return sc_fail(err, errlen, SC_ERR_TEMP,
				       w == 0 ? "pgsql: connect: no answer within %d s"
					      : "pgsql: connect: poll failed (%d s deadline)",
				       timeout);
		}
		ps = PQconnectPoll(conn);
	}
	if (PQsetnonblocking(conn, 1) != 0) {
		pg_msg(err, errlen, "pgsql: ", PQerrorMessage(conn));
		PQfinish(conn);
		return SC_ERR_TEMP;
	}
	PQsetNoticeProcessor(conn, pg_notice_drop, NULL);
	db = calloc(1, sizeof(*db));
	if (!db) {
		PQfinish(conn);
		return sc_fail(err, errlen, SC_ERR_NOMEM, "pgsql: out of memory");
	}
	db->conn = conn;
	db->timeout = timeout;
	*out = db;
	return SC_OK;
}

sc_status sc_pg_connect(const char *conninfo, sc_pg **out, char *err, size_t errlen)
{
	sc_pg *db = NULL;
	int timeout;
	sc_status st;

	SC_ENSURE_ARG(conninfo);
	SC_ENSURE_ARG(out);
	*out = NULL;
	SC_TRY(pg_parse_conninfo(conninfo, &timeout, err, errlen));
	SC_TRY(pg_open(conninfo, timeout, &db, err, errlen));
	st = sc_pg_migrate(db, err, errlen);
	if (st != SC_OK) {
		sc_pg_close(db);
		return st;
	}
	*out = db;
	return SC_OK;
}

void sc_pg_close(sc_pg *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	free(db);
}

int sc_pg_ok(const sc_pg *db)
{
	return db && !db->broken && PQstatus(db->conn) == CONNECTION_OK;
}

static void *pg_cancel_thread(void *arg)
{
	PGcancel *c = arg;
	char buf[256];

	(void)PQcancel(c, buf, sizeof(buf));
	PQfreeCancel(c);
	atomic_fetch_sub(&pg_cancels, 1);
	return NULL;
}

/*
 * The deadline passed with a statement running: ask the server to stop it so
 * it does not hold locks for nothing, and never reuse the connection (its
 * protocol state is unknown).
 */
static void pg_abandon(sc_pg *db)
{
	PGcancel *c;
	pthread_attr_t attr;
	pthread_t t;

	db->broken = 1;
	if (PQstatus(db->conn) != CONNECTION_OK)
		return;
	if (atomic_fetch_add(&pg_cancels, 1) >= PG_CANCEL_THREADS_MAX) {
		atomic_fetch_sub(&pg_cancels, 1);
		return;
	}
	c = PQgetCancel(db->conn);
	if (!c) {
		atomic_fetch_sub(&pg_cancels, 1);
		return;
	}
	if (pthread_attr_init(&attr) != 0)
		goto fail;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, pg_cancel_thread, c) != 0) {
		pthread_attr_destroy(&attr);
		goto fail;
	}
	pthread_attr_destroy(&attr);
	return;
fail:
	PQfreeCancel(c);
	atomic_fetch_sub(&pg_cancels, 1);
}

static sc_status pg_lost(sc_pg *db, char *err, size_t errlen, const char *what)
{
	db->broken = 1;
	pg_msg(err, errlen, what, PQerrorMessage(db->conn));
	return SC_ERR_TEMP;
}

static sc_status pg_timeout(sc_pg *db, char *err, size_t errlen)
{
	pg_abandon(db);
	return sc_fail(err, errlen, SC_ERR_TEMP, "pgsql: no answer within %d s", db->timeout);
}

/* Send the whole query (non-blocking mode may leave some of it queued). */
static sc_status pg_flush(sc_pg *db, long long deadline, char *err, size_t errlen)
{
	for (;;) {
		int rc = PQflush(db->conn), w;

		if (rc == 0)
			return SC_OK;
		if (rc < 0)
			return pg_lost(db, err, errlen, "pgsql: send: ");
		/* libpq docs: wait for read-ready too and consume, or the server
		 * may block on its own output */
		w = pg_wait(db->conn, POLLIN | POLLOUT, deadline);
		if (w == 0)
			return pg_timeout(db, err, errlen);
		if (w < 0 || !PQconsumeInput(db->conn))
			return pg_lost(db, err, errlen, "pgsql: send: ");
	}
}

/* Map a failed result to a status: SQLSTATE class 08 (connection), 57P0x
 * (shutdown), 53 (resources), 40 (serialization, deadlock) may pass. */
static sc_status pg_result_status(sc_pg *db, const PGresult *r, char *err, size_t errlen)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	pg_msg(err, errlen, "pgsql: ", PQresultErrorMessage(r));
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db->broken = 1;
		return SC_ERR_TEMP;
	}
	if (!state)
		return SC_ERR_IO;
	if (!strcmp(state, "23505"))
		return SC_ERR_EXISTS;
	if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3)) {
		db->broken = 1;
		return SC_ERR_TEMP;
	}
	if (!strncmp(state, "53", 2) || !strncmp(state, "40", 2))
		return SC_ERR_TEMP;
	return SC_ERR_IO;
}

/* A PQsend*() call refused: the connection is gone, or the statement is bad. */
static sc_status pg_send_failed(sc_pg *db, char *err, size_t errlen)
{
	if (PQstatus(db->conn) != CONNECTION_OK)
		return pg_lost(db, err, errlen, "pgsql: ");
	pg_msg(err, errlen, "pgsql: ", PQerrorMessage(db->conn));
	return SC_ERR_IO;
}

static sc_status pg_collect(sc_pg *db, long long deadline, PGresult **res, char *err,
			    size_t errlen);

sc_status sc_pg_exec(sc_pg *db, const char *sql, int nparams, const char *const *values,
		     const int *lengths, const int *formats, int binary_result,
		     PGresult **res, char *err, size_t errlen)
{
	long long deadline;

	SC_ENSURE_ARG(db);
	SC_ENSURE_ARG(sql);
	if (res)
		*res = NULL;
	if (!sc_pg_ok(db))
		return sc_fail(err, errlen, SC_ERR_TEMP, "pgsql: connection lost");
	deadline = sc_pg_now_ms() + (long long)db->timeout * 1000;
	if (!PQsendQueryParams(db->conn, sql, nparams, NULL, values, lengths, formats,
			       binary_result ? 1 : 0))
		return pg_send_failed(db, err, errlen);
	SC_TRY(pg_flush(db, deadline, err, errlen));
	return pg_collect(db, deadline, res, err, errlen);
}

/*
 * The frequent reads (a lookup per CERT) are planned once per connection: for
 * the lookup's join the planner took longer than the execution. The name is
 * the caller's static string; a connection that is replaced prepares again.
 */
sc_status sc_pg_exec_prepared(sc_pg *db, const char *name, const char *sql, int nparams,
			      const char *const *values, const int *lengths,
			      const int *formats, int binary_result, PGresult **res,
			      char *err, size_t errlen)
{
	long long deadline;
	size_t i;

	SC_ENSURE_ARG(db);
	SC_ENSURE_ARG(name);
	SC_ENSURE_ARG(sql);
	if (res)
		*res = NULL;
	if (!sc_pg_ok(db))
		return sc_fail(err, errlen, SC_ERR_TEMP, "pgsql: connection lost");
	for (i = 0; i < db->nprepared && strcmp(db->prepared[i], name) != 0; i++)
		;
	if (i == db->nprepared && i == PG_PREPARED_MAX)
		return sc_pg_exec(db, sql, nparams, values, lengths, formats, binary_result,
				  res, err, errlen);
	deadline = sc_pg_now_ms() + (long long)db->timeout * 1000;
	if (i == db->nprepared) {
		if (!PQsendPrepare(db->conn, name, sql, nparams, NULL))
			return pg_send_failed(db, err, errlen);
		SC_TRY(pg_flush(db, deadline, err, errlen));
		SC_TRY(pg_collect(db, deadline, NULL, err, errlen));
		db->prepared[db->nprepared++] = name;
	}
	if (!PQsendQueryPrepared(db->conn, name, nparams, values, lengths, formats,
				 binary_result ? 1 : 0))
		return pg_send_failed(db, err, errlen);
	SC_TRY(pg_flush(db, deadline, err, errlen));
	return pg_collect(db, deadline, res, err, errlen);
}

/* Read every result of the statement sent; *@p res (optional) gets it. */
static sc_status pg_collect(sc_pg *db, long long deadline, PGresult **res, char *err,
			    size_t errlen)
{
	PGresult *keep = NULL, *r;
	sc_status st;

	/* Every result up to the NULL that ends the statement must be read,
	 * or the connection stays busy; the first failure (if any) is kept. */
	for (;;) {
		while (PQisBusy(db->conn)) {
			int w = pg_wait(db->conn, POLLIN, deadline);

			if (w == 0) {
				PQclear(keep);
				return pg_timeout(db, err, errlen);
			}
			if (w < 0 || !PQconsumeInput(db->conn)) {
				PQclear(keep);
				return pg_lost(db, err, errlen, "pgsql: ");
			}
		}
		r = PQgetResult(db->conn);
		if (!r)
			break;
		if (!keep || (PQresultStatus(keep) != PGRES_FATAL_ERROR &&
			      PQresultStatus(r) == PGRES_FATAL_ERROR)) {
			PQclear(keep);
			keep = r;
		} else {
			PQclear(r);
		}
	}
	if (!keep) {
		if (PQstatus(db->conn) != CONNECTION_OK)
			return pg_lost(db, err, errlen, "pgsql: ");
		return sc_fail(err, errlen, SC_ERR_IO, "pgsql: no result");
	}
	switch (PQresultStatus(keep)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		if (res)
			*res = keep;
		else
			PQclear(keep);
		return SC_OK;
	default:
		st = pg_result_status(db, keep, err, errlen);
		PQclear(keep);
		return st;
	}
}

static sc_status pg_simple(sc_pg *db, const char *sql, char *err, size_t errlen)
{
	return sc_pg_exec(db, sql, 0, NULL, NULL, NULL, 0, NULL, err, errlen);
}

sc_status sc_pg_begin(sc_pg *db, char *err, size_t errlen)
{
	return pg_simple(db, "BEGIN", err, errlen);
}

sc_status sc_pg_commit(sc_pg *db, char *err, size_t errlen)
{
	return pg_simple(db, "COMMIT", err, errlen);
}

void sc_pg_rollback(sc_pg *db)
{
	char ignored[64];

	/* a connection that is gone rolls back by itself on the server */
	if (sc_pg_ok(db) && PQtransactionStatus(db->conn) != PQTRANS_IDLE &&
	    pg_simple(db, "ROLLBACK", ignored, sizeof(ignored)) != SC_OK)
		db->broken = 1;
}

/* ---- pool ------------------------------------------------------------------ */

sc_status sc_pg_pool_new(const char *conninfo, sc_pg_pool **out, char *err, size_t errlen)
{
	sc_pg_pool *p;
	pthread_condattr_t ca;
	int timeout;

	SC_ENSURE_ARG(conninfo);
	SC_ENSURE_ARG(out);
	*out = NULL;
	SC_TRY(pg_parse_conninfo(conninfo, &timeout, err, errlen));
	p = calloc(1, sizeof(*p));
	if (!p || !(p->conninfo = strdup(conninfo))) {
		free(p);
		return sc_fail(err, errlen, SC_ERR_NOMEM, "pgsql: out of memory");
	}
	p->timeout = timeout;
	pthread_mutex_init(&p->lock, NULL);
	/* waits are measured on the monotonic clock, immune to clock changes */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->back, &ca);
	pthread_condattr_destroy(&ca);
	*out = p;
	return SC_OK;
}

void sc_pg_pool_free(sc_pg_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nidle; i++)
		sc_pg_close(p->idle[i]);
	pthread_cond_destroy(&p->back);
	pthread_mutex_destroy(&p->lock);
	free(p->conninfo);
	free(p);
}

int sc_pg_pool_timeout(const sc_pg_pool *p)
{
	return p ? p->timeout : PG_TIMEOUT_DEFAULT;
}

/*
 * An idle connection the server has closed meanwhile (a restart sends "terminating
 * connection due to administrator command" and hangs up) is readable: consume
 * that now, so the next query does not fail on it with a needless 451.
 */
static int pg_idle_alive(sc_pg *db)
{
	struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};

	if (!sc_pg_ok(db) || pfd.fd < 0)
		return 0;
	if (poll(&pfd, 1, 0) == 0)
		return 1;
	return PQconsumeInput(db->conn) && PQstatus(db->conn) == CONNECTION_OK;
}

/* Called with the lock held; returns with it held. */
static sc_status pg_pool_connect(sc_pg_pool *p, sc_pg **out, char *err, size_t errlen)
{
	char msg[sizeof(p->failed_msg)] = "";
	sc_status st;

	p->total++;
	pthread_mutex_unlock(&p->lock);
	st = sc_pg_connect(p->conninfo, out, msg, sizeof(msg));
	pthread_mutex_lock(&p->lock);
	if (st == SC_OK) {
		p->failed_at = 0;
		return SC_OK;
	}
	p->total--;
	p->failed_at = sc_pg_now_ms();
	p->failed_st = st;
	memcpy(p->failed_msg, msg, sizeof(msg));
	pthread_cond_signal(&p->back);
	sc_errf(err, errlen, "%s", msg);
	return st;
}

sc_status sc_pg_pool_get(sc_pg_pool *p, sc_pg **out, char *err, size_t errlen)
{
	long long deadline;
	sc_status st = SC_OK;

	SC_ENSURE_ARG(p);
	SC_ENSURE_ARG(out);
	*out = NULL;
	deadline = sc_pg_now_ms() + (long long)p->timeout * 1000;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		long long now = sc_pg_now_ms();

		while (p->nidle) {
			sc_pg *db = p->idle[--p->nidle];

			if (pg_idle_alive(db)) {
				*out = db;
				goto done;
			}
			sc_pg_close(db);
			p->total--;
		}
		if (p->failed_at && now - p->failed_at < PG_RETRY_MS) {
			st = p->failed_st;
			sc_errf(err, errlen, "%s (retried after %d ms)", p->failed_msg,
				PG_RETRY_MS);
			goto done;
		}
		if (p->total < SC_PG_POOL_MAX) {
			st = pg_pool_connect(p, out, err, errlen);
			goto done;
		}
		if (now >= deadline) {
			st = sc_fail(err, errlen, SC_ERR_TEMP,
				     "pgsql: all %d connections busy for %d s", SC_PG_POOL_MAX,
				     p->timeout);
			goto done;
		}
		{
			struct timespec ts = {.tv_sec = deadline / 1000,
					      .tv_nsec = (deadline % 1000) * 1000000};

			pthread_cond_timedwait(&p->back, &p->lock, &ts);
		}
	}
done:
	pthread_mutex_unlock(&p->lock);
	return st;
}

void sc_pg_pool_put(sc_pg_pool *p, sc_pg *db)
{
	if (!p || !db)
		return;
	/* a connection left inside a transaction by an error path is rolled back
	 * before anyone else sees it */
	sc_pg_rollback(db);
	pthread_mutex_lock(&p->lock);
	if (sc_pg_ok(db) && p->nidle < SC_PG_POOL_MAX) {
		p->idle[p->nidle++] = db;
	} else {
		sc_pg_close(db);
		p->total--;
	}
	pthread_cond_signal(&p->back);
	pthread_mutex_unlock(&p->lock);
}
