/*
 * queue_pgsql.c - the PostgreSQL backend of the review queue
 * (include/smtpcert/queue.h, vtable in queue_int.h): the `submissions` and `audit`
 * tables of schema v1 (lib/pgsql_db.h), used when the `repository` list holds a
 * pgsql: database, so that every smtpcertd node and every `smtpcert admin` that
 * share the database share one queue. Runs in the daemon's CERC workers and in
 * the admin CLI; connections come from a pool (lib/pgsql_db.c), every statement
 * has a client-side deadline, and an unreachable database is SC_ERR_TEMP (the
 * daemon answers 451 4.3.0 and the client resends).
 *
 * Durability: an add is INSERT submission + INSERT audit in one transaction, and
 * SC_OK only after COMMIT returned; PostgreSQL's commit is durable (WAL flushed,
 * synchronous_commit on). A COMMIT whose answer is lost may still have committed:
 * then the client's resend leaves two pending entries of the same certificate,
 * which the administrator sees side by side; never none behind a 250.
 *
 * Decisions: UPDATE ... WHERE id = $1 AND state = pending is the claim. Under READ
 * COMMITTED a second node's UPDATE waits for the first to commit, re-reads the
 * row, finds it decided and matches nothing: exactly one decider wins, as the
 * directory form's rename. The audit row goes in the same transaction, naming
 * this node (sc_queue_set_node()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgsql_db.h"
#include "queue_int.h"
#include "queue_pgrow.h"

struct qpg {
	struct sc_queue base;   /* first: the front's view */
	sc_pg_pool *pool;
};

static struct qpg *qpg_of(sc_queue *base)
{
	return (struct qpg *)base;
}

/* Borrow a connection; a failure is the database's, reported through warn. */
static sc_status qpg_conn(struct qpg *q, sc_pg **db)
{
	char err[512] = "";
	sc_status st = sc_pg_pool_get(q->pool, db, err, sizeof err);

	if (st != SC_OK)
		sc_queue_warnf(&q->base, "pgsql submission queue: %s",
			       err[0] ? err : sc_strerror(st));
	return st;
}

/* One statement with text parameters (binary where @p formats says so). */
static sc_status qpg_exec(struct qpg *q, sc_pg *db, const char *sql, int n,
			  const char *const *v, const int *lens, const int *formats,
			  PGresult **res)
{
	char err[512] = "";
	sc_status st = sc_pg_exec(db, sql, n, v, lens, formats, 1, res, err, sizeof err);

	if (st != SC_OK && st != SC_ERR_EXISTS)
		sc_queue_warnf(&q->base, "pgsql submission queue: %s",
			       err[0] ? err : sc_strerror(st));
	return st;
}

/* Worth a second try: a quick SC_ERR_TEMP is a connection that was already dead
 * (reset, EOF); a slow one is a deadline, and a retry would double the wait. */
static int qpg_retry(sc_status st, long long t0)
{
	return st == SC_ERR_TEMP && sc_pg_now_ms() - t0 < 1000;
}

/*
 * A connection with a transaction begun. A pooled connection the server dropped
 * meanwhile (a restart, an idle timeout) fails its first statement at once having
 * done nothing, so there is one retry on a new connection; a database that is
 * down fails both at once (the pool does not reconnect within a second).
 */
static sc_status qpg_begin_tx(struct qpg *q, sc_pg **db)
{
	char err[512] = "";
	sc_status st = SC_ERR_TEMP;
	long long t0;

	for (int i = 0; i < 2; i++) {
		SC_TRY(qpg_conn(q, db));
		t0 = sc_pg_now_ms();
		st = sc_pg_begin(*db, err, sizeof err);
		if (st == SC_OK)
			return SC_OK;
		sc_pg_pool_put(q->pool, *db);
		*db = NULL;
		if (!qpg_retry(st, t0))
			break;
	}
	sc_queue_warnf(&q->base, "pgsql submission queue: BEGIN: %s",
		       err[0] ? err : sc_strerror(st));
	return st;
}

/* One read-only statement on a pooled connection, retried once like BEGIN. */
static sc_status qpg_read(struct qpg *q, const char *sql, int n, const char *const *v,
			  PGresult **res)
{
	char err[512] = "";
	sc_status st = SC_ERR_TEMP;
	long long t0;
	sc_pg *db;

	for (int i = 0; i < 2; i++) {
		SC_TRY(qpg_conn(q, &db));
		t0 = sc_pg_now_ms();
		st = sc_pg_exec(db, sql, n, v, NULL, NULL, 1, res, err, sizeof err);
		sc_pg_pool_put(q->pool, db);
		if (!qpg_retry(st, t0))
			break;
	}
	if (st != SC_OK)
		sc_queue_warnf(&q->base, "pgsql submission queue: %s",
			       err[0] ? err : sc_strerror(st));
	return st;
}

static sc_status qpg_commit(struct qpg *q, sc_pg *db)
{
	char err[512] = "";
	sc_status st = sc_pg_commit(db, err, sizeof err);

	if (st != SC_OK)
		sc_queue_warnf(&q->base, "pgsql submission queue: COMMIT: %s",
			       err[0] ? err : sc_strerror(st));
	return st;
}

/* End the transaction qpg_begin_tx() opened: COMMIT when @p st is SC_OK (its
 * status is the result), else ROLLBACK and @p st; the connection goes back to
 * the pool either way. */
static sc_status qpg_end_tx(struct qpg *q, sc_pg *db, sc_status st)
{
	if (st == SC_OK)
		st = qpg_commit(q, db);
	else
		sc_pg_rollback(db);
	sc_pg_pool_put(q->pool, db);
	return st;
}

/* ---- audit ---- */

/* INSERT one audit row on @p db (inside the caller's transaction, if any). Every
 * value goes through sc_queue_copy_text: PostgreSQL refuses text that is not
 * valid in the database encoding, and an audit row must never fail for it. */
static sc_status qpg_audit_on(struct qpg *q, sc_pg *db, const char *actor, const char *action,
			      const char *id, const char *address, const char *detail)
{
	char a[256], act[64], i[64], addr[SC_ADDR_KEY_MAX], det[1024];
	const char *v[6] = { q->base.node, a, act, i, addr, det };
	PGresult *res = NULL;
	sc_status st;

	sc_queue_copy_text(a, sizeof a, actor ? actor : "");
	sc_queue_copy_text(act, sizeof act, action);
	sc_queue_copy_text(i, sizeof i, id ? id : "-");
	sc_queue_copy_text(addr, sizeof addr, address ? address : "-");
	sc_queue_copy_text(det, sizeof det, detail ? detail : "");
	st = qpg_exec(q, db, "INSERT INTO audit (node, actor, action, id, address, detail) "
		      "VALUES ($1, $2, $3, $4, $5, $6)", 6, v, NULL, NULL, &res);
	PQclear(res);
	return st;
}

static sc_status qpg_audit(sc_queue *base, const char *actor, const char *action,
			   const char *id, const char *address, const char *detail)
{
	struct qpg *q = qpg_of(base);
	sc_pg *db = NULL;
	sc_status st;

	/* a transaction of its own, for the retry of qpg_begin_tx */
	SC_TRY(qpg_begin_tx(q, &db));
	st = qpg_audit_on(q, db, actor, action, id, address, detail);
	return qpg_end_tx(q, db, st);
}

/* ---- add ---- */

/* Leaf then chain, DER back to back (sc_cert_parse reads it back). */
static sc_status qpg_certs(const sc_cert *c, char **out, size_t *len)
{
	size_t total = 0, n = sc_cert_count(c);
	const uint8_t *der;
	size_t dlen;
	char *buf;

	for (size_t i = 0; i < n; i++) {
		SC_TRY(sc_cert_der(c, i, &der, &dlen));
		total += dlen;
	}
	SC_ENSURE(total > 0 && total <= SC_CERT_INPUT_MAX, SC_ERR_TOO_LONG);
	buf = malloc(total);
	if (!buf)
		return SC_ERR_NOMEM;
	total = 0;
	for (size_t i = 0; i < n; i++) {
		if (sc_cert_der(c, i, &der, &dlen) != SC_OK) {
			free(buf);
			return SC_ERR_INTERNAL;
		}
		memcpy(buf + total, der, dlen);
		total += dlen;
	}
	*out = buf;
	*len = total;
	return SC_OK;
}

/* One try under the id in s->id: SC_ERR_EXISTS means "draw another id". */
static sc_status qpg_insert(struct qpg *q, const struct sc_submission *s, const char *certs,
			    size_t certs_len)
{
	sc_pg *db = NULL;
	char rcv[24], nb[24], na[24], detail[256];
	const char *v[11] = { s->id, s->address, s->auth_user, s->client, rcv, s->fingerprint,
			      s->subject, s->issuer, nb, na, certs };
	int lens[11] = { 0 }, formats[11] = { 0 };
	PGresult *res = NULL;
	sc_status st;

	snprintf(rcv, sizeof rcv, "%lld", (long long)s->received);
	snprintf(nb, sizeof nb, "%lld", (long long)s->not_before);
	snprintf(na, sizeof na, "%lld", (long long)s->not_after);
	lens[10] = (int)certs_len;
	formats[10] = 1; /* bytea, binary */
	SC_TRY(qpg_begin_tx(q, &db));
	st = qpg_exec(q, db, "INSERT INTO submissions (id, state, address, auth_user, client, "
		      "received, fingerprint, subject, issuer, not_before, not_after, certs) "
		      "VALUES ($1, 0, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
		      11, v, lens, formats, &res);
	PQclear(res);
	if (st == SC_OK) {
		snprintf(detail, sizeof detail, "client=%s fingerprint=%s", s->client,
			 s->fingerprint);
		st = qpg_audit_on(q, db, s->auth_user[0] ? s->auth_user : "-", "submit", s->id,
				  s->address, detail);
	}
	/* SC_ERR_TEMP from COMMIT is ambiguous (it may have committed): no retry,
	 * the client resends after its 451 (see the file header) */
	return qpg_end_tx(q, db, st);
}

static sc_status qpg_add(sc_queue *base, struct sc_submission *s, const sc_cert *c)
{
	struct qpg *q = qpg_of(base);
	char *certs = NULL;
	size_t len = 0;
	sc_status st;

	SC_TRY(qpg_certs(c, &certs, &len));
	/* 128 random bits do not collide; the primary key is the uniqueness proof. */
	st = SC_ERR_EXISTS;
	for (int tries = 0; tries < 8 && st == SC_ERR_EXISTS; tries++) {
		if ((st = sc_queue_new_id(s->id)) != SC_OK)
			break;
		st = qpg_insert(q, s, certs, len);
	}
	free(certs);
	return st;
}

/* ---- get / list ---- */

static sc_status qpg_get(sc_queue *base, const char *id, struct sc_submission *out,
			 sc_cert **cert)
{
	struct qpg *q = qpg_of(base);
	struct sc_submission s;
	PGresult *res = NULL;
	sc_status st;

	SC_TRY(qpg_read(q, "SELECT " SC_QPG_COLS ", certs FROM submissions WHERE id = $1", 1, &id,
			&res));
	if (PQntuples(res) != 1)
		st = SC_ERR_NOT_FOUND;
	else
		st = sc_queue_pg_row(res, 0, &s);
	if (st == SC_OK && strcmp(s.id, id))
		st = SC_ERR_MISMATCH;
	if (st == SC_OK && cert)
		st = sc_queue_pg_row_cert(res, 0, SC_QPG_NCOLS, &s, cert);
	PQclear(res);
	if (st == SC_OK)
		*out = s;
	return st;
}

static sc_status qpg_list(sc_queue *base, enum sc_submission_state state, sc_queue_fn fn,
			  void *arg)
{
	struct qpg *q = qpg_of(base);
	char st_txt[8], limit[16];
	const char *v[2] = { st_txt, limit };
	PGresult *res = NULL;
	sc_status st = SC_OK;
	int n;

	snprintf(st_txt, sizeof st_txt, "%d", (int)state);
	/* one row more than delivered tells "exactly the maximum" from "more" */
	snprintf(limit, sizeof limit, "%d", SC_QUEUE_LIST_MAX + 1);
	SC_TRY(qpg_read(q, "SELECT " SC_QPG_COLS " FROM submissions WHERE state = $1 "
			"ORDER BY received, id LIMIT $2", 2, v, &res));
	n = PQntuples(res);
	/* Ordered by the database: these are the oldest, unlike a directory scan. */
	for (int i = 0; i < n && i < SC_QUEUE_LIST_MAX && st == SC_OK; i++) {
		struct sc_submission s;
		sc_status rs = sc_queue_pg_row(res, i, &s);

		if (rs != SC_OK) {
			sc_queue_warnf(base, "pgsql submission queue: row %d of state %d: "
				       "unreadable entry: %s", i, (int)state, sc_strerror(rs));
			continue;
		}
		st = fn(arg, &s);
	}
	PQclear(res);
	if (st == SC_OK && n > SC_QUEUE_LIST_MAX)
		st = SC_ERR_TOO_MANY;
	return st;
}

/* ---- decide ---- */

/* Inside the transaction: claim the row; SC_ERR_EXISTS / NOT_FOUND when it
 * is not pending. *@p address receives the submission's address. */
static sc_status qpg_claim(struct qpg *q, sc_pg *db, const char *id, int accept,
			   const char *reason, char *address, size_t size)
{
	char st_txt[8], when[24], why[sizeof ((struct sc_submission *)0)->reason];
	const char *v[4] = { id, st_txt, when, why };
	PGresult *res = NULL;
	sc_status st;

	snprintf(st_txt, sizeof st_txt, "%d", accept ? SC_SUB_ACCEPTED : SC_SUB_REJECTED);
	snprintf(when, sizeof when, "%lld", (long long)time(NULL));
	sc_queue_copy_text(why, sizeof why, reason);
	SC_TRY(qpg_exec(q, db, "UPDATE submissions SET state = $2, decided = $3, reason = $4 "
			"WHERE id = $1 AND state = 0 RETURNING address", 4, v, NULL, NULL,
			&res));
	if (PQntuples(res) == 1) {
		st = sc_queue_pg_text(res, 0, 0, address, size);
		if (st != SC_OK)
			snprintf(address, size, "-");
		PQclear(res);
		return SC_OK;
	}
	PQclear(res);
	res = NULL;
	SC_TRY(qpg_exec(q, db, "SELECT state FROM submissions WHERE id = $1", 1, &id, NULL, NULL,
			&res));
	st = PQntuples(res) ? SC_ERR_EXISTS : SC_ERR_NOT_FOUND;
	PQclear(res);
	return st;
}

static sc_status qpg_decide(sc_queue *base, const char *id, int accept, const char *reason,
			    const char *actor)
{
	struct qpg *q = qpg_of(base);
	char address[SC_ADDR_KEY_MAX];
	sc_pg *db = NULL;
	sc_status st;

	SC_TRY(qpg_begin_tx(q, &db));
	st = qpg_claim(q, db, id, accept, reason, address, sizeof address);
	if (st == SC_OK)
		st = qpg_audit_on(q, db, actor ? actor : "-", accept ? "accept" : "reject", id,
				  address, reason);
	return qpg_end_tx(q, db, st);
}

/* ---- open / close ---- */

static void qpg_close(sc_queue *base)
{
	struct qpg *q = qpg_of(base);

	sc_pg_pool_free(q->pool);
	free(q);
}

static const struct sc_queue_ops qpg_ops = {
	.add = qpg_add,
	.get = qpg_get,
	.list = qpg_list,
	.decide = qpg_decide,
	.audit = qpg_audit,
	.close = qpg_close,
};

sc_status sc_queue_pg_open(const char *conninfo, int lazy, sc_queue **out, char *err,
			   size_t errlen)
{
	struct qpg *q = calloc(1, sizeof *q);
	sc_pg *db = NULL;
	sc_status st;

	if (!q)
		return SC_ERR_NOMEM;
	q->base.ops = &qpg_ops;
	st = sc_pg_pool_new(conninfo, &q->pool, err, errlen);
	/* Connect once now: the schema is created or checked (pgsql_db.h), and a
	 * wrong password or an unreachable server is reported at start-up; lazily,
	 * an unreachable one only at the first call (the pool connects then). */
	if (st == SC_OK)
		st = sc_pg_pool_get(q->pool, &db, err, errlen);
	if (st == SC_ERR_TEMP && lazy) {
		*out = &q->base;
		return SC_OK;
	}
	if (st != SC_OK) {
		if (q->pool)
			sc_pg_pool_free(q->pool);
		free(q);
		return st;
	}
	sc_pg_pool_put(q->pool, db);
	*out = &q->base;
	return SC_OK;
}
