/*
 * pgsql_schema.c - the versioned schema of smtpcert's PostgreSQL database and
 * its migration (sc_pg_migrate(), run by every sc_pg_connect()). The tables
 * are described in lib/pgsql_db.h. Runs wherever a connection is opened: the
 * daemon's worker threads and the smtpcert CLI.
 *
 * Several nodes may start against one empty database at the same moment: the
 * migration takes pg_advisory_xact_lock(SC_PG_LOCK) inside its transaction and
 * reads the version again under the lock, so exactly one of them creates the
 * tables and the others find them done. The lock is released by COMMIT or
 * ROLLBACK (or by the server when the connection dies).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "pgsql_db.h"

/* Version 0 -> 1: statements run in order, one per sc_pg_exec() (the extended
 * query protocol takes one statement per call). Version N+1 appends an array
 * and a line to pg_steps; released steps never change. certs.addr sorts bytewise
 * (COLLATE "C") whatever the database's locale: list() walks the primary key in
 * the key order every backend uses (lmdb: memcmp). */
static const char *const pg_step1[] = {
	"CREATE TABLE smtpcert_schema (version integer NOT NULL)",
	"CREATE TABLE chain_certs (fingerprint bytea PRIMARY KEY, der bytea NOT NULL)",
	"CREATE TABLE certs (addr text COLLATE \"C\" NOT NULL, fingerprint bytea NOT NULL,"
	" leaf bytea NOT NULL, chain bytea[] NOT NULL DEFAULT '{}',"
	" not_before bigint NOT NULL, not_after bigint NOT NULL, added bigint NOT NULL,"
	" PRIMARY KEY (addr, fingerprint))",
	"CREATE TABLE submissions (id text PRIMARY KEY, state smallint NOT NULL,"
	" address text NOT NULL, auth_user text NOT NULL, client text NOT NULL,"
	" received bigint NOT NULL, decided bigint NOT NULL DEFAULT 0,"
	" fingerprint text NOT NULL, subject text NOT NULL, issuer text NOT NULL,"
	" not_before bigint NOT NULL, not_after bigint NOT NULL,"
	" reason text NOT NULL DEFAULT '', certs bytea NOT NULL)",
	"CREATE INDEX submissions_state_received ON submissions (state, received)",
	"CREATE TABLE audit (seq bigserial PRIMARY KEY,"
	" at timestamptz NOT NULL DEFAULT now(), node text NOT NULL,"
	" actor text NOT NULL, action text NOT NULL, id text NOT NULL,"
	" address text NOT NULL, detail text NOT NULL)",
	"INSERT INTO smtpcert_schema (version) VALUES (0)",
	NULL,
};

static const char *const *const pg_steps[SC_PG_SCHEMA_VERSION] = {pg_step1};

/* @return the version in the database, 0 when smtpcert_schema does not exist. */
static sc_status pg_schema_version(sc_pg *db, int *version, char *err, size_t errlen)
{
	PGresult *r = NULL;
	char *end;
	long v;
	int bad;

	*version = 0;
	SC_TRY(sc_pg_exec(db, "SELECT to_regclass('smtpcert_schema') IS NOT NULL", 0, NULL,
			  NULL, NULL, 0, &r, err, errlen));
	if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "t")) {
		PQclear(r);
		return SC_OK;
	}
	PQclear(r);
	SC_TRY(sc_pg_exec(db, "SELECT max(version), count(*) FROM smtpcert_schema", 0, NULL,
			  NULL, NULL, 0, &r, err, errlen));
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0) || strcmp(PQgetvalue(r, 0, 1), "1")) {
		PQclear(r);
		return sc_fail(err, errlen, SC_ERR_CONFIG,
			       "pgsql: table smtpcert_schema must hold exactly one row");
	}
	v = strtol(PQgetvalue(r, 0, 0), &end, 10);
	bad = *end != '\0' || v < 0 || v > 1000000;
	PQclear(r);
	if (bad)
		return sc_fail(err, errlen, SC_ERR_CONFIG, "pgsql: bad schema version");
	*version = (int)v;
	return SC_OK;
}

static sc_status pg_refuse_newer(int version, char *err, size_t errlen)
{
	return sc_fail(err, errlen, SC_ERR_CONFIG,
		       "pgsql: database schema version %d is newer than this program's (%d): "
		       "upgrade smtpcert, never downgrade a database",
		       version, SC_PG_SCHEMA_VERSION);
}

static sc_status pg_migrate_locked(sc_pg *db, char *err, size_t errlen)
{
	char lock[32], ver[16];
	const char *vals[1];
	int version;

	snprintf(lock, sizeof(lock), "%lld", (long long)SC_PG_LOCK);
	vals[0] = lock;
	SC_TRY(sc_pg_exec(db, "SELECT pg_advisory_xact_lock($1::bigint)", 1, vals, NULL, NULL,
			  0, NULL, err, errlen));
	/* again under the lock: another node may have migrated meanwhile */
	SC_TRY(pg_schema_version(db, &version, err, errlen));
	if (version > SC_PG_SCHEMA_VERSION)
		return pg_refuse_newer(version, err, errlen);
	for (int v = version; v < SC_PG_SCHEMA_VERSION; v++)
		for (const char *const *s = pg_steps[v]; *s; s++)
			SC_TRY(sc_pg_exec(db, *s, 0, NULL, NULL, NULL, 0, NULL, err, errlen));
	if (version == SC_PG_SCHEMA_VERSION)
		return SC_OK;
	snprintf(ver, sizeof(ver), "%d", SC_PG_SCHEMA_VERSION);
	vals[0] = ver;
	return sc_pg_exec(db, "UPDATE smtpcert_schema SET version = $1::integer", 1, vals,
			  NULL, NULL, 0, NULL, err, errlen);
}

sc_status sc_pg_migrate(sc_pg *db, char *err, size_t errlen)
{
	int version;
	sc_status st;

	SC_ENSURE_ARG(db);
	/* the common case reads only, so a role with SELECT rights alone works */
	SC_TRY(pg_schema_version(db, &version, err, errlen));
	if (version == SC_PG_SCHEMA_VERSION)
		return SC_OK;
	if (version > SC_PG_SCHEMA_VERSION)
		return pg_refuse_newer(version, err, errlen);
	/*
	 * A second try in a new transaction: a backend that waited for the lock
	 * while another node created the tables may still hold a cached "no such
	 * relation" (catalog invalidations are read at transaction start and
	 * relation locks, not by an advisory lock), so its CREATE TABLE fails;
	 * the next transaction sees the committed tables.
	 */
	for (int attempt = 0;; attempt++) {
		SC_TRY(sc_pg_begin(db, err, errlen));
		st = pg_migrate_locked(db, err, errlen);
		if (st == SC_OK)
			st = sc_pg_commit(db, err, errlen);
		if (st == SC_OK)
			return SC_OK;
		sc_pg_rollback(db);
		if (st != SC_ERR_IO || attempt == 1 || !sc_pg_ok(db))
			break;
	}
	/* e.g. "permission denied for schema public": a read-only role met an
	 * empty or old database */
	return st == SC_ERR_IO ? SC_ERR_CONFIG : st;
}
