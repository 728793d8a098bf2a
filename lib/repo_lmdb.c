/*
 * repo_lmdb.c - the lmdb: repository backend ("lmdb:/path/to/envdir"), the default
 * store. The daemon opens it read-only and looks certificates up with zero-copy
 * reads from the memory map while the admin CLI writes from another process; each
 * write is one transaction, so a lookup sees the state before or after it.
 *
 * Layout of the environment (format version 1):
 *	DB "certs": key = lookup key, '\0', 32-byte SHA-256 of the leaf (so the entries
 *	            of one address are adjacent and ordered); value = lib/record.h record
 *	DB "meta":  "format" -> u32 big-endian format version
 * A lookup is one MDB_SET_RANGE on "key\0" plus a walk while the prefix matches:
 * O(log n) in the size of the repository, bounded by SC_REPO_ENTRIES_MAX entries.
 *
 * Concurrency (LMDB's rules, and how they are met):
 * - Read-only opening (SC_REPO_RDONLY, the daemon) still writes the reader table in
 *   lock.mdb, so the daemon's user needs write access to that file.
 * - One read transaction per handle is reset after each lookup and renewed before
 *   the next: a renewed transaction sees the latest commit, so an admin import is
 *   visible to the daemon's next CERT, and no reader holds old pages between
 *   requests. The cursor is renewed too, so a lookup allocates nothing.
 * - MDB_NOTLS ties read slots to transactions, not threads, so list() can run
 *   its own read transaction while the handle's lookup transaction exists, and
 *   a threaded caller could use one handle per thread. Single-threaded callers
 *   (the daemon) lose nothing by it.
 * - LMDB forbids opening one environment twice in one process: closing either
 *   handle drops the process's POSIX lock on lock.mdb, after which a new process
 *   could wrongly reset the reader table. The daemon therefore keeps its handle
 *   across SIGHUP reloads (daemon/runtime.c reuses stores with the same spec);
 *   the admin CLI opens each store once.
 * - A writer that fills the map (MDB_MAP_FULL) doubles it and retries the whole
 *   transaction; readers of other processes then see MDB_MAP_RESIZED and adopt the
 *   new size (mdb_env_set_mapsize(env, 0)) before retrying.
 * - Stale reader slots of crashed processes are cleared at open (mdb_reader_check).
 */
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record.h"
#include "repo_backend.h"

#define FORMAT_VERSION 1u
/* Growth stops at 1 TiB (or a quarter of the address space on 32-bit systems). */
#define MAPSIZE_MAX                                                                \
	(SIZE_MAX / 4 < ((uint64_t)1 << 40) ? SIZE_MAX / 4 : (size_t)((uint64_t)1 << 40))
#define FP_LEN 32
/* lookup key + '\0' + fingerprint; fits LMDB's default 511-byte key limit. */
#define DBKEY_MAX (SC_ADDR_KEY_MAX + 1 + FP_LEN)

struct lmdb_state {
	sc_repo *r;
	MDB_env *env;
	MDB_dbi certs;
	MDB_dbi meta;
	MDB_txn *rtxn;    /* reused read transaction, reset between lookups */
	MDB_cursor *rcur; /* its cursor, renewed with it */
	unsigned flags;
	char path[PATH_MAX];
};

static size_t initial_mapsize = SC_REPO_LMDB_MAPSIZE;

void sc_repo_lmdb_set_initial_mapsize(size_t bytes)
{
	initial_mapsize = bytes ? bytes : SC_REPO_LMDB_MAPSIZE;
}

static sc_status status_for(int rc, sc_status otherwise)
{
	switch (rc) {
	case EACCES:
	case EPERM:
	case EROFS:
		return SC_ERR_PERM;
	case ENOENT:
		return SC_ERR_NOT_FOUND;
	case ENOMEM:
		return SC_ERR_NOMEM;
	default:
		return otherwise;
	}
}

/* Map an LMDB error of a running store and tell the administrator what failed. */
static sc_status fail(struct lmdb_state *s, int rc, const char *what, sc_status otherwise)
{
	sc_repo_warn(s->r, "lmdb:%s: %s: %s", s->path, what, mdb_strerror(rc));
	return status_for(rc, otherwise);
}

static void rtxn_drop(struct lmdb_state *s)
{
	if (s->rtxn)
		mdb_txn_abort(s->rtxn);
	s->rtxn = NULL;
}

/* Make s->rtxn an active read transaction with s->rcur bound to it. */
static int rtxn_begin(struct lmdb_state *s)
{
	int rc = MDB_MAP_RESIZED;

	for (int tries = 0; tries < 3; tries++) {
		if (s->rtxn) {
			rc = mdb_txn_renew(s->rtxn);
			if (rc != MDB_SUCCESS)
				rtxn_drop(s);
		} else {
			rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
			if (rc != MDB_SUCCESS)
				s->rtxn = NULL;
		}
		if (rc == MDB_SUCCESS)
			break;
		if (rc != MDB_MAP_RESIZED)
			return rc;
		/* Another process grew the map: adopt its size (no transaction of ours
		 * is active now) and try again. */
		rc = mdb_env_set_mapsize(s->env, 0);
		if (rc != MDB_SUCCESS)
			return rc;
		rc = MDB_MAP_RESIZED;
	}
	if (rc != MDB_SUCCESS)
		return rc;
	rc = s->rcur ? mdb_cursor_renew(s->rtxn, s->rcur)
		     : mdb_cursor_open(s->rtxn, s->certs, &s->rcur);
	if (rc != MDB_SUCCESS)
		mdb_txn_reset(s->rtxn);
	return rc;
}

static int wtxn_begin(struct lmdb_state *s, MDB_txn **txn)
{
	int rc = MDB_MAP_RESIZED;

	for (int tries = 0; tries < 3 && rc == MDB_MAP_RESIZED; tries++) {
		rc = mdb_txn_begin(s->env, NULL, 0, txn);
		if (rc == MDB_MAP_RESIZED) {
			rtxn_drop(s);
			if (mdb_env_set_mapsize(s->env, 0) != MDB_SUCCESS)
				break;
		}
	}
	return rc;
}

/* Double the map after MDB_MAP_FULL (no transaction of ours may be active). */
static int grow(struct lmdb_state *s)
{
	MDB_envinfo info;

	rtxn_drop(s);
	if (mdb_env_info(s->env, &info) != MDB_SUCCESS)
		return MDB_MAP_FULL;
	if (info.me_mapsize >= MAPSIZE_MAX / 2)
		return MDB_MAP_FULL;
	return mdb_env_set_mapsize(s->env, info.me_mapsize * 2);
}

/* One write transaction: @p fn does the work, a non-OK *st aborts it; MDB_MAP_FULL
 * anywhere grows the map and runs @p fn again from the start. */
typedef int (*write_fn)(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st);

static sc_status write_txn(struct lmdb_state *s, write_fn fn, void *ctx, const char *what)
{
	for (int attempt = 0; attempt < 24; attempt++) {
		MDB_txn *txn;
		sc_status st = SC_OK;
		int rc = wtxn_begin(s, &txn);

		if (rc != MDB_SUCCESS)
			return fail(s, rc, what, SC_ERR_IO);
		rc = fn(s, txn, ctx, &st);
		if (rc == MDB_SUCCESS && st != SC_OK) {
			mdb_txn_abort(txn);
			return st;
		}
		if (rc == MDB_SUCCESS)
			rc = mdb_txn_commit(txn); /* frees txn, even on failure */
		else
			mdb_txn_abort(txn);
		if (rc == MDB_SUCCESS)
			return SC_OK;
		if (rc != MDB_MAP_FULL)
			return fail(s, rc, what, SC_ERR_IO);
		rc = grow(s);
		if (rc != MDB_SUCCESS)
			return fail(s, rc, "growing the map", SC_ERR_IO);
	}
	return fail(s, MDB_MAP_FULL, what, SC_ERR_IO);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Open both DBs (creating them and the format mark with SC_REPO_CREATE) and check
 * the format. DBI handles opened in a committed transaction last for the env. */
static sc_status open_dbs(struct lmdb_state *s, char *err, size_t errlen)
{
	int ro = (s->flags & SC_REPO_RDONLY) != 0, create = (s->flags & SC_REPO_CREATE) != 0;
	unsigned dbflags = create ? MDB_CREATE : 0;
	MDB_txn *txn;
	MDB_val k = { 6, "format" }, v;
	uint8_t want[4];
	int rc;

	put_u32(want, FORMAT_VERSION);
	rc = ro ? mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) : wtxn_begin(s, &txn);
	if (ro && rc == MDB_MAP_RESIZED && mdb_env_set_mapsize(s->env, 0) == MDB_SUCCESS)
		rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn); /* grown since open */
	if (rc != MDB_SUCCESS) {
		snprintf(err, errlen, "lmdb:%s: %s", s->path, mdb_strerror(rc));
		return status_for(rc, SC_ERR_TEMP);
	}
	rc = mdb_dbi_open(txn, "certs", dbflags, &s->certs);
	if (rc == MDB_SUCCESS)
		rc = mdb_dbi_open(txn, "meta", dbflags, &s->meta);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		snprintf(err, errlen, "lmdb:%s: not an smtpcert repository (no certs/meta "
			 "database)", s->path);
		return SC_ERR_CONFIG;
	}
	if (rc == MDB_SUCCESS) {
		rc = mdb_get(txn, s->meta, &k, &v);
		if (rc == MDB_NOTFOUND && create) {
			v.mv_size = sizeof want;
			v.mv_data = want;
			rc = mdb_put(txn, s->meta, &k, &v, 0);
			if (rc == MDB_SUCCESS)
				rc = mdb_get(txn, s->meta, &k, &v);
		}
	}
	if (rc != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		snprintf(err, errlen, "lmdb:%s: %s", s->path, mdb_strerror(rc));
		return rc == MDB_NOTFOUND ? SC_ERR_CONFIG : status_for(rc, SC_ERR_IO);
	}
	if (v.mv_size != sizeof want || memcmp(v.mv_data, want, sizeof want)) {
		mdb_txn_abort(txn);
		snprintf(err, errlen, "lmdb:%s: repository format not supported by this "
			 "version (expected format %u)", s->path, FORMAT_VERSION);
		return SC_ERR_UNSUPPORTED;
	}
	rc = mdb_txn_commit(txn);
	if (rc != MDB_SUCCESS) {
		snprintf(err, errlen, "lmdb:%s: %s", s->path, mdb_strerror(rc));
		return status_for(rc, SC_ERR_IO);
	}
	return SC_OK;
}

static sc_status prepare_dir(struct lmdb_state *s, int *fresh, char *err, size_t errlen)
{
	char data[PATH_MAX + 16];
	struct stat st;

	if ((s->flags & SC_REPO_CREATE) && sc_repo_mkdirs(s->path, 0700) != 0) {
		snprintf(err, errlen, "lmdb:%s: cannot create: %s", s->path, strerror(errno));
		return status_for(errno, SC_ERR_IO);
	}
	if (stat(s->path, &st) != 0) {
		snprintf(err, errlen, "lmdb:%s: %s", s->path, strerror(errno));
		return status_for(errno, SC_ERR_IO);
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "lmdb:%s: not a directory", s->path);
		return SC_ERR_CONFIG;
	}
	snprintf(data, sizeof data, "%s/data.mdb", s->path);
	*fresh = stat(data, &st) != 0;
	if (*fresh && !(s->flags & SC_REPO_CREATE)) {
		snprintf(err, errlen, "lmdb:%s: no repository here (the admin's first import "
			 "creates it)", s->path);
		return SC_ERR_NOT_FOUND;
	}
	return SC_OK;
}

static void lmdb_close(void *state)
{
	struct lmdb_state *s = state;

	if (!s)
		return;
	if (s->rcur)
		mdb_cursor_close(s->rcur);
	rtxn_drop(s);
	if (s->env)
		mdb_env_close(s->env);
	free(s);
}

static sc_status lmdb_open(sc_repo *r, const char *path, unsigned flags, void **state,
			   char *err, size_t errlen)
{
	struct lmdb_state *s;
	unsigned envflags = MDB_NOTLS | ((flags & SC_REPO_RDONLY) ? MDB_RDONLY : 0);
	MDB_envinfo info;
	sc_status st;
	int fresh = 0, dead, rc;

	if (strlen(path) >= PATH_MAX - 16) {
		snprintf(err, errlen, "lmdb:%s: path too long", path);
		return SC_ERR_CONFIG;
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return SC_ERR_NOMEM;
	s->r = r;
	s->flags = flags;
	memcpy(s->path, path, strlen(path) + 1);
	st = prepare_dir(s, &fresh, err, errlen);
	if (st != SC_OK)
		goto out;
	/* Read-only with SC_REPO_CREATE (the daemon): a missing store is created
	 * empty by a short read-write open, so a fresh install starts serving (550
	 * for everyone) before the admin's first import. */
	if (fresh && (flags & SC_REPO_RDONLY) && (flags & SC_REPO_CREATE)) {
		void *w = NULL;

		st = lmdb_open(r, path, SC_REPO_CREATE, &w, err, errlen);
		if (st != SC_OK)
			goto out;
		lmdb_close(w);
		fresh = 0;
	}
	rc = mdb_env_create(&s->env);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_maxdbs(s->env, 4);
	/* A new environment starts at the initial size; an existing one keeps the size
	 * its writers grew it to (LMDB adopts the stored size when none is set). */
	if (rc == MDB_SUCCESS && fresh)
		rc = mdb_env_set_mapsize(s->env, initial_mapsize);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_open(s->env, s->path, envflags, 0660);
	if (rc == MDB_SUCCESS && !(flags & SC_REPO_RDONLY) && !fresh &&
	    mdb_env_info(s->env, &info) == MDB_SUCCESS && info.me_mapsize < initial_mapsize)
		rc = mdb_env_set_mapsize(s->env, initial_mapsize);
	if (rc != MDB_SUCCESS) {
		snprintf(err, errlen, "lmdb:%s: %s", s->path, mdb_strerror(rc));
		st = status_for(rc, rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH
					    ? SC_ERR_CONFIG : SC_ERR_IO);
		goto out;
	}
	/* Slots of readers that died without closing would pin old pages forever. */
	(void)mdb_reader_check(s->env, &dead);
	st = open_dbs(s, err, errlen);
out:
	if (st != SC_OK) {
		lmdb_close(s);
		return st;
	}
	*state = s;
	return SC_OK;
}

static sc_status lmdb_lookup(void *state, const char *key, size_t keylen,
			     sc_repo_entry_fn visit, void *arg)
{
	struct lmdb_state *s = state;
	MDB_val k = { keylen + 1, (void *)key }, v; /* key with its NUL: "key\0" */
	size_t n = 0;
	sc_status st = SC_OK;
	int rc;

	if (keylen + 1 + FP_LEN > DBKEY_MAX)
		return visit(arg, NULL);
	rc = rtxn_begin(s);
	if (rc != MDB_SUCCESS)
		return fail(s, rc, "lookup", SC_ERR_TEMP);
	for (rc = mdb_cursor_get(s->rcur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(s->rcur, &k, &v, MDB_NEXT)) {
		struct sc_repo_entry e;

		if (k.mv_size < keylen + 1 || memcmp(k.mv_data, key, keylen + 1))
			break;
		if (k.mv_size != keylen + 1 + FP_LEN)
			continue;
		if (++n > SC_REPO_ENTRIES_MAX) {
			sc_repo_warn(s->r, "lmdb:%s: %s: more than %d entries, rest ignored",
				     s->path, key, SC_REPO_ENTRIES_MAX);
			break;
		}
		if (sc_record_decode(v.mv_data, v.mv_size, &e) != SC_OK ||
		    memcmp(e.fingerprint, (const uint8_t *)k.mv_data + keylen + 1, FP_LEN)) {
			sc_repo_warn(s->r, "lmdb:%s: %s: corrupt record skipped", s->path, key);
			continue;
		}
		e.key = k.mv_data; /* NUL-terminated inside the map */
		e.key_len = keylen;
		st = visit(arg, &e);
		if (st != SC_OK)
			break;
	}
	if (st == SC_OK) {
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
			st = fail(s, rc, "lookup", SC_ERR_TEMP);
		else
			st = visit(arg, NULL); /* entries still valid: txn not reset yet */
	}
	mdb_txn_reset(s->rtxn);
	return st;
}

/* Put one entry inside @p txn; *st set to SC_ERR_TOO_MANY when the address is full. */
static int put_entry(struct lmdb_state *s, MDB_txn *txn, const uint8_t *dbkey,
		     size_t keylen, const struct sc_repo_entry *e, size_t size,
		     sc_status *st)
{
	MDB_cursor *cur;
	MDB_val k = { keylen + 1, (void *)dbkey }, v;
	size_t n = 0;
	int rc, replace = 0;

	/* Count the address's entries: SC_REPO_ENTRIES_MAX bounds every lookup. */
	rc = mdb_cursor_open(txn, s->certs, &cur);
	if (rc != MDB_SUCCESS)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == MDB_SUCCESS && k.mv_size >= keylen + 1 &&
	     !memcmp(k.mv_data, dbkey, keylen + 1);
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		n++;
		if (k.mv_size == keylen + 1 + FP_LEN && !memcmp(k.mv_data, dbkey, k.mv_size))
			replace = 1;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return rc;
	if (!replace && n >= SC_REPO_ENTRIES_MAX) {
		*st = SC_ERR_TOO_MANY;
		return MDB_SUCCESS;
	}
	k.mv_size = keylen + 1 + FP_LEN;
	k.mv_data = (void *)dbkey;
	v.mv_size = size;
	v.mv_data = NULL;
	/* MDB_RESERVE: encode straight into the page, no intermediate buffer. */
	rc = mdb_put(txn, s->certs, &k, &v, MDB_RESERVE);
	if (rc == MDB_SUCCESS)
		*st = sc_record_encode(e, v.mv_data, v.mv_size, NULL);
	return rc;
}

struct store_ctx {
	uint8_t dbkey[DBKEY_MAX];
	size_t keylen;
	const struct sc_repo_entry *e;
	size_t size;
};

static int store_fn(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st)
{
	struct store_ctx *c = ctx;

	return put_entry(s, txn, c->dbkey, c->keylen, c->e, c->size, st);
}

struct batch_ctx {
	const struct sc_repo_entry *e;
	size_t n;
};

/* Every entry of the batch in one transaction; on MDB_MAP_FULL write_txn() grows
 * the map and runs this again from the first entry. */
static int batch_fn(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st)
{
	struct batch_ctx *c = ctx;
	uint8_t dbkey[DBKEY_MAX];

	for (size_t i = 0; i < c->n; i++) {
		const struct sc_repo_entry *e = &c->e[i];
		size_t size = sc_record_size(e);
		int rc;

		if (e->key_len + 1 + FP_LEN > DBKEY_MAX || size == 0) {
			*st = SC_ERR_TOO_LONG;
			return MDB_SUCCESS;
		}
		memcpy(dbkey, e->key, e->key_len);
		dbkey[e->key_len] = '\0';
		memcpy(dbkey + e->key_len + 1, e->fingerprint, FP_LEN);
		rc = put_entry(s, txn, dbkey, e->key_len, e, size, st);
		if (rc != MDB_SUCCESS || *st != SC_OK)
			return rc;
	}
	return MDB_SUCCESS;
}

static sc_status lmdb_store_batch(void *state, const struct sc_repo_entry *e, size_t n)
{
	struct lmdb_state *s = state;
	struct batch_ctx c = { .e = e, .n = n };

	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	return write_txn(s, batch_fn, &c, "store");
}

static sc_status lmdb_store(void *state, const char *key, size_t keylen,
			    const struct sc_repo_entry *e)
{
	struct lmdb_state *s = state;
	struct store_ctx c = { .keylen = keylen, .e = e };

	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	if (keylen + 1 + FP_LEN > DBKEY_MAX)
		return SC_ERR_TOO_LONG;
	c.size = sc_record_size(e);
	if (c.size == 0)
		return SC_ERR_TOO_LONG;
	memcpy(c.dbkey, key, keylen);
	c.dbkey[keylen] = '\0';
	memcpy(c.dbkey + keylen + 1, e->fingerprint, FP_LEN);
	return write_txn(s, store_fn, &c, "store");
}

struct remove_ctx {
	uint8_t dbkey[DBKEY_MAX];
	size_t keylen;
	int one;
	size_t removed;
};

static int remove_fn(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st)
{
	struct remove_ctx *c = ctx;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	c->removed = 0; /* the transaction may be re-run after growing the map */
	if (c->one) {
		k.mv_size = c->keylen + 1 + FP_LEN;
		k.mv_data = c->dbkey;
		rc = mdb_del(txn, s->certs, &k, NULL);
		if (rc == MDB_SUCCESS)
			c->removed = 1;
		return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
	}
	rc = mdb_cursor_open(txn, s->certs, &cur);
	if (rc != MDB_SUCCESS)
		return rc;
	for (;;) {
		k.mv_size = c->keylen + 1;
		k.mv_data = c->dbkey;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != MDB_SUCCESS || k.mv_size < c->keylen + 1 ||
		    memcmp(k.mv_data, c->dbkey, c->keylen + 1))
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc != MDB_SUCCESS)
			break;
		c->removed++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? MDB_SUCCESS : rc;
}

static sc_status lmdb_remove(void *state, const char *key, size_t keylen,
			     const uint8_t *fingerprint, size_t *removed)
{
	struct lmdb_state *s = state;
	struct remove_ctx c = { .keylen = keylen, .one = fingerprint != NULL };
	sc_status st;

	*removed = 0;
	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	if (keylen + 1 + FP_LEN > DBKEY_MAX)
		return SC_OK;
	memcpy(c.dbkey, key, keylen);
	c.dbkey[keylen] = '\0';
	if (fingerprint)
		memcpy(c.dbkey + keylen + 1, fingerprint, FP_LEN);
	st = write_txn(s, remove_fn, &c, "remove");
	if (st == SC_OK)
		*removed = c.removed;
	return st;
}

static sc_status lmdb_list(void *state, sc_repo_entry_fn fn, void *arg)
{
	struct lmdb_state *s = state;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	sc_status st = SC_OK;
	int rc;

	/* A transaction of its own: @p fn may look addresses up meanwhile. */
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED) {
		rtxn_drop(s);
		rc = mdb_env_set_mapsize(s->env, 0);
		if (rc == MDB_SUCCESS)
			rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	}
	if (rc != MDB_SUCCESS)
		return fail(s, rc, "list", SC_ERR_TEMP);
	rc = mdb_cursor_open(txn, s->certs, &cur);
	if (rc != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		return fail(s, rc, "list", SC_ERR_TEMP);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;
		struct sc_repo_entry e;

		if (k.mv_size < 2 + FP_LEN || kp[k.mv_size - FP_LEN - 1] != '\0' ||
		    sc_record_decode(v.mv_data, v.mv_size, &e) != SC_OK) {
			sc_repo_warn(s->r, "lmdb:%s: corrupt record skipped", s->path);
			continue;
		}
		e.key = k.mv_data;
		e.key_len = k.mv_size - FP_LEN - 1;
		st = fn(arg, &e);
		if (st != SC_OK)
			break;
	}
	if (st == SC_OK && rc != MDB_NOTFOUND)
		st = fail(s, rc, "list", SC_ERR_TEMP);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return st;
}

const struct sc_repo_backend sc_repo_lmdb_backend = {
	.scheme = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.lookup = lmdb_lookup,
	.store = lmdb_store,
	.store_batch = lmdb_store_batch,
	.remove = lmdb_remove,
	.list = lmdb_list,
};
