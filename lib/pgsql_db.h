/*
 * pgsql_db.h - the PostgreSQL side shared by the pgsql: repository
 * (lib/repo_pgsql.c) and the shared review queue (lib/queue_pgsql.c), internal
 * to libsmtpcert. Owns connections, the client-side deadline of every query,
 * a small connection pool, and the versioned schema.
 *
 * Why asynchronous libpq: PQexec() has no client-side timeout, so a database
 * behind a dead network would hang the calling thread for the TCP timeout
 * (minutes). Every statement here is sent with PQsendQueryParams() and its
 * result awaited with poll() against a deadline (the conninfo's
 * connect_timeout, default 10 s); on expiry the query is cancelled, the
 * connection dropped and the caller gets SC_ERR_TEMP (the daemon answers 451).
 * The daemon calls these from worker threads, never from its event loop.
 *
 * Schema (version 1), created by the first sc_pg_connect() on an empty
 * database and migrated forward by later versions; the migration runs in one
 * transaction under pg_advisory_xact_lock(SC_PG_LOCK) so that several nodes
 * starting together migrate once. A database whose version is newer than this
 * program knows is refused (SC_ERR_CONFIG), never written.
 *
 *	smtpcert_schema (version integer NOT NULL)          -- one row
 *	chain_certs (fingerprint bytea PRIMARY KEY,         -- SHA-256 of der
 *	             der bytea NOT NULL)                     -- stored once, shared
 *	certs (addr text NOT NULL,                           -- sc_addr_key()
 *	       fingerprint bytea NOT NULL,                   -- SHA-256 of leaf
 *	       leaf bytea NOT NULL,
 *	       chain bytea[] NOT NULL DEFAULT '{}',          -- chain_certs fingerprints, in order
 *	       not_before bigint NOT NULL, not_after bigint NOT NULL,
 *	       added bigint NOT NULL,
 *	       PRIMARY KEY (addr, fingerprint))
 *	submissions (id text PRIMARY KEY,                    -- 32 lower-case hex
 *	       state smallint NOT NULL,                      -- enum sc_submission_state
 *	       address text NOT NULL, auth_user text NOT NULL, client text NOT NULL,
 *	       received bigint NOT NULL, decided bigint NOT NULL DEFAULT 0,
 *	       fingerprint text NOT NULL, subject text NOT NULL, issuer text NOT NULL,
 *	       not_before bigint NOT NULL, not_after bigint NOT NULL,
 *	       reason text NOT NULL DEFAULT '',
 *	       certs bytea NOT NULL)                         -- leaf then chain, DER, concatenated
 *	       INDEX (state, received)
 *	audit (seq bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),
 *	       node text NOT NULL,                           -- host name of the writer
 *	       actor text NOT NULL, action text NOT NULL, id text NOT NULL,
 *	       address text NOT NULL, detail text NOT NULL)
 */
#ifndef SC_PGSQL_DB_H
#define SC_PGSQL_DB_H

#include <stddef.h>
#include <libpq-fe.h>
#include "smtpcert/status.h"

#define SC_PG_SCHEMA_VERSION 1
/* pg_advisory_xact_lock key of the migration ("smtpcert" in ASCII, truncated) */
#define SC_PG_LOCK 0x736d747063657274LL
/* Connections one pool keeps open at most (one per concurrent worker thread). */
#define SC_PG_POOL_MAX 8

typedef struct sc_pg sc_pg;           /* one connection */
typedef struct sc_pg_pool sc_pg_pool; /* up to SC_PG_POOL_MAX of them, thread-safe */

/**
 * Connect (non-blocking connect with the deadline) and bring the schema to
 * SC_PG_SCHEMA_VERSION. @p conninfo is the libpq conninfo (after "pgsql:").
 * @return SC_OK; SC_ERR_TEMP (server unreachable, timed out); SC_ERR_CONFIG
 *         (bad conninfo, authentication refused, newer schema); a message in @p err.
 */
SC_MUST_CHECK sc_status sc_pg_connect(const char *conninfo, sc_pg **out, char *err,
				      size_t errlen);
void sc_pg_close(sc_pg *db);

/**
 * Run one parameterised statement ($1..$n), text parameters unless @p formats
 * says 1 (binary) for one; results in text (@p binary_result 0) or binary.
 * @param res on SC_OK the result (PGRES_COMMAND_OK or PGRES_TUPLES_OK), the
 *        caller PQclear()s it; NULL on failure
 * @return SC_OK; SC_ERR_TEMP (connection lost, deadline passed: the connection
 *         is then unusable, sc_pg_ok() says 0); SC_ERR_EXISTS (unique violation,
 *         SQLSTATE 23505); SC_ERR_IO (any other SQL error, message in @p err).
 */
SC_MUST_CHECK sc_status sc_pg_exec(sc_pg *db, const char *sql, int nparams,
				   const char *const *values, const int *lengths,
				   const int *formats, int binary_result, PGresult **res,
				   char *err, size_t errlen);

/**
 * Bring the schema of @p db to SC_PG_SCHEMA_VERSION (lib/pgsql_schema.c; run by
 * sc_pg_connect()). A database already at this version is only read, so a
 * role with SELECT rights alone may connect (lookups through a read-only user).
 * @return SC_OK; SC_ERR_CONFIG (newer schema, or an older one this role may not
 *         migrate); SC_ERR_TEMP as sc_pg_exec.
 */
SC_MUST_CHECK sc_status sc_pg_migrate(sc_pg *db, char *err, size_t errlen);

/**
 * sc_pg_exec() of a statement prepared once per connection under @p name (a
 * static string: compared, and kept, by the connection). The first call on a
 * connection prepares it; beyond 8 names a statement runs unprepared.
 */
SC_MUST_CHECK sc_status sc_pg_exec_prepared(sc_pg *db, const char *name, const char *sql,
					    int nparams, const char *const *values,
					    const int *lengths, const int *formats,
					    int binary_result, PGresult **res, char *err,
					    size_t errlen);

/** @return non-zero while the connection can be used. */
int sc_pg_ok(const sc_pg *db);

/** BEGIN / COMMIT / ROLLBACK with the same deadline and statuses as sc_pg_exec. */
SC_MUST_CHECK sc_status sc_pg_begin(sc_pg *db, char *err, size_t errlen);
SC_MUST_CHECK sc_status sc_pg_commit(sc_pg *db, char *err, size_t errlen);
void sc_pg_rollback(sc_pg *db);

/** Milliseconds of the monotonic clock: the deadlines of every statement. */
long long sc_pg_now_ms(void);

/** A pool for @p conninfo; connects lazily (the first get), so creating it
 *  only checks the conninfo syntax (SC_ERR_CONFIG). */
SC_MUST_CHECK sc_status sc_pg_pool_new(const char *conninfo, sc_pg_pool **out, char *err,
				       size_t errlen);
void sc_pg_pool_free(sc_pg_pool *p);

/**
 * Borrow a connection: an idle one, or a new one while fewer than
 * SC_PG_POOL_MAX exist, else wait for one to come back (at most the deadline).
 * @return SC_OK; SC_ERR_TEMP (cannot connect; a failed connect is not retried
 *         for a second, so a dead server costs one timeout, not one per query).
 */
SC_MUST_CHECK sc_status sc_pg_pool_get(sc_pg_pool *p, sc_pg **out, char *err, size_t errlen);

/** Give a connection back; one that is no longer sc_pg_ok() is closed. */
void sc_pg_pool_put(sc_pg_pool *p, sc_pg *db);

/** Query deadline in seconds of this pool's connections (connect_timeout). */
int sc_pg_pool_timeout(const sc_pg_pool *p);

#endif
