/*
 * repo_pgsql.c - the pgsql: repository backend ("pgsql:CONNINFO"): certificates
 * in PostgreSQL, so that several smtpcertd nodes serve one shared state. The
 * daemon looks up from its worker threads (remote = 1), the admin CLI writes.
 * Connections, deadline and schema are lib/pgsql_db.c's; this file only maps
 * entries to the tables certs and chain_certs (lib/pgsql_db.h).
 *
 * An entry is a row of certs (addr, fingerprint) with its leaf; its chain is
 * an array of chain_certs fingerprints, so an intermediate shared by thousands
 * of users is stored once. A lookup is one statement joining the two, binary
 * results, at most SC_REPO_ENTRIES_MAX + 1 entries of at most SC_CHAIN_MAX
 * certificates. list() pages through the primary key (keyset pagination,
 * PG_LIST_PAGE entries a statement), so memory stays bounded whatever the size
 * of the table and no statement stays open while the visitor runs.
 *
 * Rows are decoded by lib/pgsql_row.c (fuzz/pgrow_fuzz.c).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql_db.h"
#include "pgsql_row.h"
#include "repo_backend.h"

#define FP_LEN 32
#define PG_LIST_PAGE 64
#define PG_CHAIN_SLOTS (SC_CHAIN_MAX - 1)
/* pg_advisory_xact_lock(PG_ADDR_LOCK, hashtext(addr)) serialises the writers
 * of one address, so two nodes storing at once cannot pass the 32-entry bound
 * ("scad"; the two-int4 lock space is apart from SC_PG_LOCK's bigint one). */
#define PG_ADDR_LOCK "1935892836"

struct pgr_state {
	sc_repo *r;
	sc_pg_pool *pool;
	unsigned flags;
};

/* Result columns of every read (binary format): lib/pgsql_row.h's order. */
#define PG_SELECT                                                                  \
	"SELECT c.addr, c.fingerprint,"                                              \
	" CASE WHEN length(c.leaf) <= %d THEN c.leaf END,"                           \
	" c.not_before, c.not_after, c.added, u.o,"                                  \
	" CASE WHEN length(cc.der) <= %d THEN cc.der END"                            \
	" FROM (SELECT * FROM certs WHERE "
#define PG_JOIN                                                                    \
	" ORDER BY addr, fingerprint LIMIT %d) c"                                    \
	" LEFT JOIN LATERAL unnest(c.chain[1:%d]) WITH ORDINALITY AS u(fp, o) ON true" \
	" LEFT JOIN chain_certs cc ON cc.fingerprint = u.fp"                         \
	" ORDER BY c.addr, c.fingerprint, u.o"

static char sql_lookup[768], sql_list_first[768], sql_list_next[768];
static void pgr_init_store_sql(void);

static void pgr_init_sql(void)
{
	pgr_init_store_sql();
	/* The bounds are compile-time constants, written into the SQL once. A
	 * certificate over SC_CERT_INPUT_MAX comes back as NULL (a corrupt entry),
	 * so one result holds at most (33 * 7) rows of 64 KiB values whatever a
	 * writer put in the tables: libpq buffers a whole result in memory. */
	snprintf(sql_lookup, sizeof(sql_lookup), PG_SELECT "addr = $1" PG_JOIN,
		 SC_CERT_INPUT_MAX, SC_CERT_INPUT_MAX, SC_REPO_ENTRIES_MAX + 1, PG_CHAIN_SLOTS);
	snprintf(sql_list_first, sizeof(sql_list_first), PG_SELECT "true" PG_JOIN,
		 SC_CERT_INPUT_MAX, SC_CERT_INPUT_MAX, PG_LIST_PAGE, PG_CHAIN_SLOTS);
	snprintf(sql_list_next, sizeof(sql_list_next),
		 PG_SELECT "(addr, fingerprint) > ($1, $2)" PG_JOIN, SC_CERT_INPUT_MAX,
		 SC_CERT_INPUT_MAX, PG_LIST_PAGE, PG_CHAIN_SLOTS);
}

/* ---- open / close ------------------------------------------------------------ */

static void pgr_close(void *state)
{
	struct pgr_state *s = state;

	if (!s)
		return;
	sc_pg_pool_free(s->pool);
	free(s);
}

static sc_status pgr_open(sc_repo *r, const char *conninfo, unsigned flags, void **state,
			  char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct pgr_state *s;
	sc_pg *db = NULL;
	sc_status st;

	pthread_once(&once, pgr_init_sql);
	s = calloc(1, sizeof(*s));
	if (!s)
		return SC_ERR_NOMEM;
	s->r = r;
	s->flags = flags;
	st = sc_pg_pool_new(conninfo, &s->pool, err, errlen);
	/* The first connection creates or migrates the schema, and says now
	 * whether the conninfo, the credentials and the schema version are right. */
	if (st == SC_OK)
		st = sc_pg_pool_get(s->pool, &db, err, errlen);
	if (st == SC_OK) {
		sc_pg_pool_put(s->pool, db);
	} else if (st == SC_ERR_TEMP && (flags & SC_REPO_RDONLY) && s->pool) {
		/* the daemon starts while the database is down: lookups answer
		 * 451 until it is back, as they would had it gone down later */
		sc_repo_warn(r, "%s (lookups fail temporarily until it answers)", err);
		st = SC_OK;
	}
	if (st != SC_OK) {
		pgr_close(s);
		return st;
	}
	*state = s;
	return SC_OK;
}

/* ---- reads ------------------------------------------------------------------- */

/* Run a read: borrow a connection, give it back as soon as the result is here. */
static sc_status pgr_read(struct pgr_state *s, const char *name, const char *sql,
			  int nparams, const char *const *values, const int *lengths,
			  const int *formats, PGresult **res)
{
	char err[512];
	sc_pg *db;
	sc_status st;

	st = sc_pg_pool_get(s->pool, &db, err, sizeof(err));
	if (st == SC_OK) {
		st = sc_pg_exec_prepared(db, name, sql, nparams, values, lengths, formats, 1,
					 res, err, sizeof(err));
		sc_pg_pool_put(s->pool, db);
	}
	if (st != SC_OK) {
		sc_repo_warn(s->r, "%s", err);
		/* whatever went wrong, the store cannot answer now: 451, not 550 */
		return SC_ERR_TEMP;
	}
	return SC_OK;
}

static sc_status pgr_lookup(void *state, const char *key, size_t keylen,
			    sc_repo_entry_fn visit, void *arg)
{
	struct pgr_state *s = state;
	struct sc_pgrow_entry *ents;
	const char *vals[1] = {key};
	PGresult *res;
	size_t n = 0;
	sc_status st = SC_OK;

	if (keylen == 0 || keylen >= SC_ADDR_KEY_MAX)
		return visit(arg, NULL);
	SC_TRY(pgr_read(s, "sc_lookup", sql_lookup, 1, vals, NULL, NULL, &res));
	ents = calloc(SC_REPO_ENTRIES_MAX, sizeof(*ents));
	if (!ents) {
		PQclear(res);
		return SC_ERR_NOMEM;
	}
	for (int row = 0; row < PQntuples(res);) {
		if (n == SC_REPO_ENTRIES_MAX) {
			sc_repo_warn(s->r, "pgsql: %s: more than %d entries, rest ignored", key,
				     SC_REPO_ENTRIES_MAX);
			break;
		}
		if (sc_pgrow_decode(res, &row, &ents[n]) != 0 ||
		    ents[n].e.key_len != keylen || memcmp(ents[n].e.key, key, keylen)) {
			sc_cert_free(ents[n].leaf);
			sc_repo_warn(s->r, "pgsql: %s: corrupt entry skipped", key);
			continue;
		}
		n++;
	}
	for (size_t i = 0; i < n && st == SC_OK; i++)
		st = visit(arg, &ents[i].e);
	if (st == SC_OK)
		st = visit(arg, NULL); /* every entry still valid */
	for (size_t i = 0; i < n; i++)
		sc_cert_free(ents[i].leaf);
	free(ents);
	PQclear(res);
	return st;
}

static sc_status pgr_list(void *state, sc_repo_entry_fn fn, void *arg)
{
	struct pgr_state *s = state;
	/* keyset position: the key and fingerprint of the page's last entry, as
	 * stored (also when corrupt, so that the walk always moves forward) */
	char *last = NULL;
	const char *vals[2] = {NULL, NULL};
	int lens[2] = {0, 0}, fmts[2] = {0, 1};
	sc_status st = SC_OK;

	for (;;) {
		PGresult *res;
		int rows, entries = 0;

		st = pgr_read(s, last ? "sc_list_next" : "sc_list_first",
			      last ? sql_list_next : sql_list_first, last ? 2 : 0, vals, lens,
			      fmts, &res);
		if (st != SC_OK)
			break;
		rows = PQntuples(res);
		for (int row = 0; row < rows && st == SC_OK;) {
			struct sc_pgrow_entry pe;
			int start = row;
			size_t klen = (size_t)PQgetlength(res, start, SC_PGROW_ADDR);
			size_t fplen = (size_t)PQgetlength(res, start, SC_PGROW_FP);
			char *p;

			entries++;
			if (sc_pgrow_decode(res, &row, &pe) != 0) {
				sc_repo_warn(s->r, "pgsql: %.*s: corrupt entry skipped",
					     klen > 320 ? 320 : (int)klen,
					     PQgetvalue(res, start, SC_PGROW_ADDR));
			} else {
				st = fn(arg, &pe.e);
				sc_cert_free(pe.leaf);
			}
			p = realloc(last, klen + 1 + fplen + 1);
			if (!p) {
				st = SC_ERR_NOMEM;
				break;
			}
			last = p;
			memcpy(last, PQgetvalue(res, start, SC_PGROW_ADDR), klen + 1);
			memcpy(last + klen + 1, PQgetvalue(res, start, SC_PGROW_FP), fplen);
			vals[0] = last;
			vals[1] = last + klen + 1;
			lens[1] = (int)fplen;
		}
		PQclear(res);
		if (st != SC_OK || entries < PG_LIST_PAGE)
			break;
	}
	free(last);
	return st;
}

/* ---- writes -------------------------------------------------------------------- */

static char sql_store[1536];

static const char sql_lock[] = "SELECT pg_advisory_xact_lock(" PG_ADDR_LOCK ", hashtext($1))";
static const char sql_count[] =
	"SELECT count(*) FROM certs WHERE addr = $1 AND fingerprint <> $2";
static const char sql_remove_one[] = "DELETE FROM certs WHERE addr = $1 AND fingerprint = $2";
static const char sql_remove_all[] = "DELETE FROM certs WHERE addr = $1";

/*
 * The chain certificates go into chain_certs once (their SHA-256 computed by
 * the server: no digest code here), the entry into certs with the chain's
 * fingerprints in order; the same (addr, fingerprint) replaces the old row.
 */
static void pgr_init_store_sql(void)
{
	char slots[PG_CHAIN_SLOTS * 16] = "";
	size_t off = 0;

	for (int i = 0; i < PG_CHAIN_SLOTS; i++)
		off += (size_t)snprintf(slots + off, sizeof(slots) - off, "%s$%d::bytea",
					i ? "," : "", 7 + i);
	snprintf(sql_store, sizeof(sql_store),
		 "WITH ch AS (INSERT INTO chain_certs (fingerprint, der)"
		 " SELECT DISTINCT sha256(d), d FROM unnest(ARRAY[%s]) AS u(d)"
		 " WHERE d IS NOT NULL ON CONFLICT (fingerprint) DO NOTHING)"
		 " INSERT INTO certs (addr, fingerprint, leaf, chain, not_before, not_after, added)"
		 " VALUES ($1, $2, $3, ARRAY(SELECT sha256(d) FROM unnest(ARRAY[%s])"
		 " WITH ORDINALITY AS u(d, o) WHERE d IS NOT NULL ORDER BY o),"
		 " $4::bigint, $5::bigint, $6::bigint)"
		 " ON CONFLICT (addr, fingerprint) DO UPDATE SET leaf = EXCLUDED.leaf,"
		 " chain = EXCLUDED.chain, not_before = EXCLUDED.not_before,"
		 " not_after = EXCLUDED.not_after, added = EXCLUDED.added",
		 slots, slots);
}

/* One entry inside the caller's transaction. */
static sc_status pgr_put(sc_pg *db, const struct sc_repo_entry *e, char *err, size_t errlen)
{
	char nb[24], na[24], added[24];
	const char *vals[6 + PG_CHAIN_SLOTS] = {e->key, (const char *)e->fingerprint};
	int lens[6 + PG_CHAIN_SLOTS] = {0, FP_LEN}, fmts[6 + PG_CHAIN_SLOTS] = {0, 1, 1};
	PGresult *res;
	int64_t others = 0;
	int bad;

	if (!e->key || e->key_len == 0 || e->key_len >= SC_ADDR_KEY_MAX ||
	    strlen(e->key) != e->key_len)
		return SC_ERR_TOO_LONG;
	if (e->n_der == 0 || e->n_der > SC_CHAIN_MAX)
		return SC_ERR_ARG;
	for (size_t i = 0; i < e->n_der; i++)
		if (!e->der[i] || e->der_len[i] == 0 || e->der_len[i] > SC_CERT_INPUT_MAX)
			return e->der_len[i] > SC_CERT_INPUT_MAX ? SC_ERR_TOO_LONG : SC_ERR_ARG;
	SC_TRY(sc_pg_exec(db, sql_lock, 1, vals, NULL, NULL, 0, NULL, err, errlen));
	/* SC_REPO_ENTRIES_MAX bounds every lookup; under the address lock, so
	 * the count cannot change before the insert */
	SC_TRY(sc_pg_exec(db, sql_count, 2, vals, lens, fmts, 1, &res, err, errlen));
	bad = PQntuples(res) != 1 || sc_pgrow_int8(res, 0, 0, &others);
	PQclear(res);
	if (bad)
		return SC_ERR_IO;
	if (others >= SC_REPO_ENTRIES_MAX)
		return SC_ERR_TOO_MANY;
	snprintf(nb, sizeof(nb), "%" PRId64, e->not_before);
	snprintf(na, sizeof(na), "%" PRId64, e->not_after);
	snprintf(added, sizeof(added), "%" PRId64, e->added);
	vals[2] = (const char *)e->der[0];
	lens[2] = (int)e->der_len[0];
	vals[3] = nb;
	vals[4] = na;
	vals[5] = added;
	for (size_t i = 1; i < e->n_der; i++) {
		vals[5 + i] = (const char *)e->der[i];
		lens[5 + i] = (int)e->der_len[i];
		fmts[5 + i] = 1;
	}
	return sc_pg_exec(db, sql_store, 6 + PG_CHAIN_SLOTS, vals, lens, fmts, 0, NULL, err,
			  errlen);
}

/* @p n entries in one transaction, all or nothing. */
static sc_status pgr_write(struct pgr_state *s, const struct sc_repo_entry *e, size_t n)
{
	char err[512] = "";
	sc_pg *db;
	sc_status st;

	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	st = sc_pg_pool_get(s->pool, &db, err, sizeof(err));
	if (st != SC_OK) {
		sc_repo_warn(s->r, "%s", err);
		return st == SC_ERR_CONFIG ? st : SC_ERR_TEMP;
	}
	st = sc_pg_begin(db, err, sizeof(err));
	for (size_t i = 0; i < n && st == SC_OK; i++)
		st = pgr_put(db, &e[i], err, sizeof(err));
	if (st == SC_OK)
		st = sc_pg_commit(db, err, sizeof(err));
	if (st != SC_OK) {
		sc_pg_rollback(db);
		if (err[0])
			sc_repo_warn(s->r, "%s", err);
	}
	sc_pg_pool_put(s->pool, db);
	return st;
}

static sc_status pgr_store(void *state, const char *key, size_t keylen,
			   const struct sc_repo_entry *e)
{
	struct sc_repo_entry one = *e;

	one.key = key;
	one.key_len = keylen;
	return pgr_write(state, &one, 1);
}

static sc_status pgr_store_batch(void *state, const struct sc_repo_entry *e, size_t n)
{
	return pgr_write(state, e, n);
}

static sc_status pgr_remove(void *state, const char *key, size_t keylen,
			    const uint8_t *fingerprint, size_t *removed)
{
	struct pgr_state *s = state;
	const char *vals[2] = {key, (const char *)fingerprint};
	int lens[2] = {0, FP_LEN}, fmts[2] = {0, 1};
	char err[512] = "";
	PGresult *res;
	sc_pg *db;
	sc_status st;
	char *end;
	unsigned long n;

	*removed = 0;
	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	if (keylen == 0 || keylen >= SC_ADDR_KEY_MAX)
		return SC_OK;
	st = sc_pg_pool_get(s->pool, &db, err, sizeof(err));
	if (st == SC_OK) {
		st = sc_pg_exec(db, fingerprint ? sql_remove_one : sql_remove_all,
				fingerprint ? 2 : 1, vals, lens, fmts, 0, &res, err, sizeof(err));
		sc_pg_pool_put(s->pool, db);
	}
	if (st != SC_OK) {
		sc_repo_warn(s->r, "%s", err);
		return st == SC_ERR_CONFIG || st == SC_ERR_IO ? st : SC_ERR_TEMP;
	}
	n = strtoul(PQcmdTuples(res), &end, 10);
	if (*end == '\0')
		*removed = n;
	PQclear(res);
	/* Chain certificates stay in chain_certs: shared by other entries, few
	 * (the intermediates of a handful of CAs), and a sweep would scan certs. */
	return SC_OK;
}

const struct sc_repo_backend sc_repo_pgsql_backend = {
	.scheme = "pgsql",
	.open = pgr_open,
	.close = pgr_close,
	.lookup = pgr_lookup,
	.store = pgr_store,
	.store_batch = pgr_store_batch,
	.remove = pgr_remove,
	.list = pgr_list,
	.remote = 1,
	/* lookups and lists share only the pool, which locks */
	.threadsafe = 1,
};
