/*
 * repo_lmdb.c - the lmdb: repository backend ("lmdb:/path/to/envdir"), the default
 * store: opening the environment, lookups and the listing. Writes (store, remove,
 * the conversion of format 1) are in repo_lmdb_write.c, the layout (format 2) in
 * repo_lmdb.h. The daemon opens it read-only and looks certificates up with
 * zero-copy reads from the memory map while the admin CLI writes from another
 * process; each write is one transaction, so a lookup sees the state before or
 * after it. A lookup is one mdb_get() of the address's entry list, O(log n) in
 * the size of the repository, bounded by SC_REPO_ENTRIES_MAX entries, plus one
 * mdb_get() per chain certificate; while a read-only handle has a lookup index
 * of the latest commit (repo_lmdb_index.c) the entry list comes from the index
 * instead, in one hash probe, and the index's snapshot stays open until a write
 * makes it stale.
 *
 * Concurrency (LMDB's rules, and how they are met):
 * - Read-only opening (SC_REPO_RDONLY, the daemon) still writes the reader table in
 *   lock.mdb, so the daemon's user needs write access to that file.
 * - One read transaction per handle is reset after each lookup and renewed before
 *   the next: a renewed transaction sees the latest commit, so an admin import is
 *   visible to the daemon's next CERT, and no reader holds old pages between
 *   requests. A lookup allocates nothing.
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
 * - A format 1 store (written by an older smtpcert) is refused by read-only
 *   handles with a message saying how to convert it; a read-write handle (the
 *   admin CLI) converts it in one transaction when it opens it.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record.h"
#include "repo_lmdb.h"

/* Growth stops at 1 TiB (or a quarter of the address space on 32-bit systems). */
#define MAPSIZE_MAX                                                                \
	(SIZE_MAX / 4 < ((uint64_t)1 << 40) ? SIZE_MAX / 4 : (size_t)((uint64_t)1 << 40))

static size_t initial_mapsize = SC_REPO_LMDB_MAPSIZE;

void sc_repo_lmdb_set_initial_mapsize(size_t bytes)
{
	initial_mapsize = bytes ? bytes : SC_REPO_LMDB_MAPSIZE;
}

sc_status lmdb_status_for(int rc, sc_status otherwise)
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

sc_status lmdb_fail(struct lmdb_state *s, int rc, const char *what, sc_status otherwise)
{
	sc_repo_warn(s->r, "lmdb:%s: %s: %s", s->path, what, mdb_strerror(rc));
	return lmdb_status_for(rc, otherwise);
}

void lmdb_rtxn_drop(struct lmdb_state *s)
{
	if (s->rtxn)
		mdb_txn_abort(s->rtxn);
	s->rtxn = NULL;
}

int lmdb_map_adopt(struct lmdb_state *s)
{
	int rc;

	lmdb_rtxn_drop(s);
	lmdb_index_drop(s);
	__atomic_store_n(&s->index_cancel, 1, __ATOMIC_RELEASE);
	pthread_rwlock_wrlock(&s->map_lock);
	rc = mdb_env_set_mapsize(s->env, 0);
	pthread_rwlock_unlock(&s->map_lock);
	__atomic_store_n(&s->index_cancel, 0, __ATOMIC_RELEASE);
	return rc;
}

/* Make s->rtxn an active read transaction. */
static int rtxn_begin(struct lmdb_state *s)
{
	int rc = MDB_MAP_RESIZED;

	for (int tries = 0; tries < 3; tries++) {
		if (s->rtxn) {
			rc = mdb_txn_renew(s->rtxn);
			if (rc != MDB_SUCCESS)
				lmdb_rtxn_drop(s);
		} else {
			rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
			if (rc != MDB_SUCCESS)
				s->rtxn = NULL;
		}
		if (rc == MDB_SUCCESS)
			return rc;
		if (rc != MDB_MAP_RESIZED)
			return rc;
		/* Another process grew the map: adopt its size and try again. */
		rc = lmdb_map_adopt(s);
		if (rc != MDB_SUCCESS)
			return rc;
		rc = MDB_MAP_RESIZED;
	}
	return rc;
}

static int wtxn_begin(struct lmdb_state *s, MDB_txn **txn)
{
	int rc = MDB_MAP_RESIZED;

	for (int tries = 0; tries < 3 && rc == MDB_MAP_RESIZED; tries++) {
		rc = mdb_txn_begin(s->env, NULL, 0, txn);
		if (rc == MDB_MAP_RESIZED && lmdb_map_adopt(s) != MDB_SUCCESS)
			break;
	}
	return rc;
}

/* Double the map after MDB_MAP_FULL (no transaction of ours may be active). */
static int grow(struct lmdb_state *s)
{
	MDB_envinfo info;

	lmdb_rtxn_drop(s);
	if (mdb_env_info(s->env, &info) != MDB_SUCCESS)
		return MDB_MAP_FULL;
	if (info.me_mapsize >= MAPSIZE_MAX / 2)
		return MDB_MAP_FULL;
	return mdb_env_set_mapsize(s->env, info.me_mapsize * 2);
}

sc_status lmdb_write_txn(struct lmdb_state *s, lmdb_write_fn fn, void *ctx, const char *what)
{
	for (int attempt = 0; attempt < 24; attempt++) {
		MDB_txn *txn;
		sc_status st = SC_OK;
		int rc = wtxn_begin(s, &txn);

		if (rc != MDB_SUCCESS)
			return lmdb_fail(s, rc, what, SC_ERR_IO);
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
			return lmdb_fail(s, rc, what, SC_ERR_IO);
		rc = grow(s);
		if (rc != MDB_SUCCESS)
			return lmdb_fail(s, rc, "growing the map", SC_ERR_IO);
	}
	return lmdb_fail(s, MDB_MAP_FULL, what, SC_ERR_IO);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int lmdb_list_split(const void *val, size_t len, struct lmdb_span out[SC_REPO_ENTRIES_MAX])
{
	const uint8_t *p = val;
	size_t n, off = 1;

	if (len < 1)
		return -1;
	n = p[0];
	if (n == 0 || n > SC_REPO_ENTRIES_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t el;

		if (len - off < 4)
			return -1;
		el = get_u32(p + off);
		off += 4;
		if (el == 0 || el > len - off)
			return -1;
		out[i].p = p + off;
		out[i].len = el;
		off += el;
	}
	return off == len ? (int)n : -1;
}

sc_status lmdb_entry_decode(struct lmdb_state *s, MDB_txn *txn, struct lmdb_span sp,
			    int leaf_only, struct sc_repo_entry *e)
{
	size_t nchain, off;

	SC_ENSURE(sp.len >= 1, SC_ERR_SYNTAX);
	nchain = sp.p[0];
	SC_ENSURE(nchain < SC_CHAIN_MAX, SC_ERR_SYNTAX);
	off = 1 + nchain * LMDB_FP_LEN;
	SC_ENSURE(sp.len > off, SC_ERR_SYNTAX);
	SC_TRY(sc_record_decode(sp.p + off, sp.len - off, e));
	SC_ENSURE(e->n_der == 1, SC_ERR_SYNTAX);
	if (leaf_only)
		return SC_OK; /* CERT: one B-tree walk per chain certificate fewer */
	for (size_t i = 0; i < nchain; i++) {
		MDB_val k = { LMDB_FP_LEN, (void *)(sp.p + 1 + i * LMDB_FP_LEN) }, v;
		int rc = mdb_get(txn, s->chains, &k, &v);

		if (rc == MDB_NOTFOUND)
			return SC_ERR_SYNTAX; /* a reference without its certificate */
		if (rc != MDB_SUCCESS)
			return SC_ERR_TEMP;
		SC_ENSURE(v.mv_size > 0 && v.mv_size <= SC_CERT_INPUT_MAX, SC_ERR_SYNTAX);
		e->der[1 + i] = v.mv_data;
		e->der_len[1 + i] = v.mv_size;
	}
	e->n_der = 1 + nchain;
	return SC_OK;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int open_dbi(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
	return mdb_dbi_open(txn, name, flags, dbi);
}

/* The format mark: 0 when there is none. */
static int read_format(MDB_txn *txn, MDB_dbi meta, uint32_t *format)
{
	MDB_val k = { 6, "format" }, v;
	int rc = mdb_get(txn, meta, &k, &v);

	*format = 0;
	if (rc == MDB_NOTFOUND)
		return MDB_SUCCESS;
	if (rc != MDB_SUCCESS)
		return rc;
	*format = v.mv_size == 4 ? get_u32(v.mv_data) : UINT32_MAX;
	return MDB_SUCCESS;
}

/* A fresh store (SC_REPO_CREATE, no format mark yet): the databases of format 2
 * and the mark, in the open transaction. */
static int create_dbs(struct lmdb_state *s, MDB_txn *txn)
{
	MDB_val k = { 6, "format" }, v;
	uint8_t mark[4];
	int rc;

	put_u32(mark, LMDB_FORMAT);
	v.mv_size = sizeof mark;
	v.mv_data = mark;
	rc = open_dbi(txn, "certs", MDB_CREATE, &s->v1certs);
	if (rc == MDB_SUCCESS)
		rc = mdb_put(txn, s->meta, &k, &v, 0);
	return rc;
}

static int migrate_fn(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st)
{
	/* every handle again: those of the aborted first transaction are gone */
	int rc = open_dbi(txn, "meta", 0, &s->meta);

	if (rc == MDB_SUCCESS)
		rc = open_dbi(txn, "entries", MDB_CREATE, &s->entries);
	if (rc == MDB_SUCCESS)
		rc = open_dbi(txn, "chains", MDB_CREATE, &s->chains);
	if (rc == MDB_SUCCESS)
		rc = open_dbi(txn, "chainrefs", MDB_CREATE, &s->refs);
	if (rc == MDB_SUCCESS)
		rc = open_dbi(txn, "certs", 0, &s->v1certs);
	if (rc == MDB_SUCCESS)
		rc = lmdb_migrate_v1(s, txn, ctx, st);
	return rc;
}

/* Open the databases (creating them and the format mark with SC_REPO_CREATE) and
 * check the format; a read-write handle converts format 1. DBI handles opened in a
 * committed transaction last for the env. */
static sc_status open_dbs(struct lmdb_state *s, char *err, size_t errlen)
{
	int ro = (s->flags & SC_REPO_RDONLY) != 0, create = (s->flags & SC_REPO_CREATE) != 0;
	MDB_txn *txn;
	uint32_t format = 0;
	size_t migrated = 0;
	sc_status st;
	int rc;

again:
	rc = ro ? mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) : wtxn_begin(s, &txn);
	if (ro && rc == MDB_MAP_RESIZED && mdb_env_set_mapsize(s->env, 0) == MDB_SUCCESS)
		rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn); /* grown since open */
	if (rc != MDB_SUCCESS) {
		snprintf(err, errlen, "lmdb:%s: %s", s->path, mdb_strerror(rc));
		return lmdb_status_for(rc, SC_ERR_TEMP);
	}
	rc = open_dbi(txn, "meta", create ? MDB_CREATE : 0, &s->meta);
	if (rc == MDB_SUCCESS)
		rc = read_format(txn, s->meta, &format);
	if (rc == MDB_SUCCESS && format == 0 && create) {
		rc = create_dbs(s, txn);
		format = LMDB_FORMAT;
	}
	if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && format == 0)) {
		mdb_txn_abort(txn);
		snprintf(err, errlen, "lmdb:%s: not an smtpcert repository (no meta database "
			 "or format mark)", s->path);
		return SC_ERR_CONFIG;
	}
	if (rc == MDB_SUCCESS && format == 1) {
		mdb_txn_abort(txn);
		if (ro) {
			snprintf(err, errlen, "lmdb:%s: repository format 1 (written by an older "
				 "smtpcert); this version reads format %u: any write by its admin "
				 "CLI (e.g. `smtpcert admin import`) converts the store",
				 s->path, LMDB_FORMAT);
			return SC_ERR_UNSUPPORTED;
		}
		st = lmdb_write_txn(s, migrate_fn, &migrated, "converting format 1");
		if (st != SC_OK) {
			snprintf(err, errlen, "lmdb:%s: converting format 1 to %u failed: %s",
				 s->path, LMDB_FORMAT, sc_strerror(st));
			return st;
		}
		sc_repo_warn(s->r, "lmdb:%s: converted %zu entries from format 1 to format %u",
			     s->path, migrated, LMDB_FORMAT);
		goto again;
	}
	if (rc == MDB_SUCCESS && format != LMDB_FORMAT) {
		mdb_txn_abort(txn);
		snprintf(err, errlen, "lmdb:%s: repository format not supported by this "
			 "version (expected format %u)", s->path, LMDB_FORMAT);
		return SC_ERR_UNSUPPORTED;
	}
	if (rc == MDB_SUCCESS)
		rc = open_dbi(txn, "entries", create ? MDB_CREATE : 0, &s->entries);
	if (rc == MDB_SUCCESS)
		rc = open_dbi(txn, "chains", create ? MDB_CREATE : 0, &s->chains);
	if (rc == MDB_SUCCESS)
		rc = open_dbi(txn, "chainrefs", create ? MDB_CREATE : 0, &s->refs);
	if (rc != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND) {
			snprintf(err, errlen, "lmdb:%s: not an smtpcert repository (format %u "
				 "without its databases)", s->path, LMDB_FORMAT);
			return SC_ERR_CONFIG;
		}
		snprintf(err, errlen, "lmdb:%s: %s", s->path, mdb_strerror(rc));
		return lmdb_status_for(rc, SC_ERR_IO);
	}
	rc = mdb_txn_commit(txn);
	if (rc != MDB_SUCCESS) {
		snprintf(err, errlen, "lmdb:%s: %s", s->path, mdb_strerror(rc));
		return lmdb_status_for(rc, SC_ERR_IO);
	}
	return SC_OK;
}

static sc_status prepare_dir(struct lmdb_state *s, int *fresh, char *err, size_t errlen)
{
	char data[PATH_MAX + 16];
	struct stat st;

	if ((s->flags & SC_REPO_CREATE) && sc_repo_mkdirs(s->path, 0700) != 0) {
		snprintf(err, errlen, "lmdb:%s: cannot create: %s", s->path, strerror(errno));
		return lmdb_status_for(errno, SC_ERR_IO);
	}
	if (stat(s->path, &st) != 0) {
		snprintf(err, errlen, "lmdb:%s: %s", s->path, strerror(errno));
		return lmdb_status_for(errno, SC_ERR_IO);
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
	lmdb_rtxn_drop(s);
	lmdb_index_drop(s);
	lmdb_index_free_dead(lmdb_index_detach_dead(s));
	if (s->env)
		mdb_env_close(s->env);
	pthread_rwlock_destroy(&s->map_lock);
	free(s->wbuf);
	free(s);
}

static sc_status lmdb_open(sc_repo *r, const char *path, unsigned flags, void **state,
			   char *err, size_t errlen)
{
	struct lmdb_state *s;
	/* MDB_NOLOCK for a check: LMDB would create lock.mdb, and register as a
	 * reader in it, even read-only */
	unsigned envflags = MDB_NOTLS | ((flags & SC_REPO_RDONLY) ? MDB_RDONLY : 0) |
			    ((flags & SC_REPO_CHECK) ? MDB_NOLOCK : 0);
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
	if (pthread_rwlock_init(&s->map_lock, NULL) != 0) {
		free(s);
		return SC_ERR_NOMEM;
	}
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
		rc = mdb_env_set_maxdbs(s->env, 8);
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
		st = lmdb_status_for(rc, rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH
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

static sc_status lmdb_lookup_ex(void *state, const char *key, size_t keylen, unsigned flags,
				sc_repo_entry_fn visit, void *arg)
{
	struct lmdb_state *s = state;
	MDB_val k = { keylen + 1, (void *)key }, v; /* key with its NUL: "key\0" */
	struct lmdb_span sp[SC_REPO_ENTRIES_MAX];
	MDB_txn *txn = NULL;
	sc_status st = SC_OK;
	int n, rc;

	if (keylen + 1 > LMDB_KEY_MAX)
		return visit(arg, NULL);
	if (lmdb_index_current(s)) {
		/* the latest commit's snapshot, held open by the index */
		txn = lmdb_index_txn(s);
		rc = lmdb_index_get(s, key, keylen, &v) == SC_OK ? MDB_SUCCESS : MDB_NOTFOUND;
	} else {
		if (s->idx)
			lmdb_index_drop(s); /* stale: let writers reuse its pages */
		rc = rtxn_begin(s);
		if (rc != MDB_SUCCESS)
			return lmdb_fail(s, rc, "lookup", SC_ERR_TEMP);
		rc = mdb_get(s->rtxn, s->entries, &k, &v);
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
			mdb_txn_reset(s->rtxn);
			return lmdb_fail(s, rc, "lookup", SC_ERR_TEMP);
		}
	}
	n = rc == MDB_SUCCESS ? lmdb_list_split(v.mv_data, v.mv_size, sp) : 0;
	if (n < 0)
		sc_repo_warn(s->r, "lmdb:%s: %s: corrupt entry list skipped", s->path, key);
	for (int i = 0; i < n && st == SC_OK; i++) {
		struct sc_repo_entry e;
		sc_status dst = lmdb_entry_decode(s, txn ? txn : s->rtxn, sp[i],
						  (flags & SC_REPO_LOOKUP_LEAF) != 0, &e);

		if (dst == SC_ERR_TEMP) {
			st = lmdb_fail(s, MDB_PANIC, "lookup", SC_ERR_TEMP);
			break;
		}
		if (dst != SC_OK) {
			sc_repo_warn(s->r, "lmdb:%s: %s: corrupt record skipped", s->path, key);
			continue;
		}
		e.key = key; /* NUL-terminated, the caller's for the whole call */
		e.key_len = keylen;
		st = visit(arg, &e);
	}
	if (st == SC_OK)
		st = visit(arg, NULL); /* entries still valid: txn not reset yet */
	if (!txn)
		mdb_txn_reset(s->rtxn);
	return st;
}

static sc_status lmdb_lookup(void *state, const char *key, size_t keylen,
			     sc_repo_entry_fn visit, void *arg)
{
	return lmdb_lookup_ex(state, key, keylen, 0, visit, arg);
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
		rc = lmdb_map_adopt(s);
		if (rc == MDB_SUCCESS)
			rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	}
	if (rc != MDB_SUCCESS)
		return lmdb_fail(s, rc, "list", SC_ERR_TEMP);
	rc = mdb_cursor_open(txn, s->entries, &cur);
	if (rc != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		return lmdb_fail(s, rc, "list", SC_ERR_TEMP);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && st == SC_OK;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;
		struct lmdb_span sp[SC_REPO_ENTRIES_MAX];
		int n;

		if (k.mv_size < 2 || kp[k.mv_size - 1] != '\0' ||
		    memchr(kp, '\0', k.mv_size - 1) ||
		    (n = lmdb_list_split(v.mv_data, v.mv_size, sp)) < 0) {
			sc_repo_warn(s->r, "lmdb:%s: corrupt entry list skipped", s->path);
			continue;
		}
		for (int i = 0; i < n && st == SC_OK; i++) {
			struct sc_repo_entry e;

			if (lmdb_entry_decode(s, txn, sp[i], 0, &e) != SC_OK) {
				sc_repo_warn(s->r, "lmdb:%s: %s: corrupt record skipped",
					     s->path, (const char *)kp);
				continue;
			}
			e.key = k.mv_data; /* NUL-terminated inside the map */
			e.key_len = k.mv_size - 1;
			st = fn(arg, &e);
		}
	}
	if (st == SC_OK && rc != MDB_NOTFOUND)
		st = lmdb_fail(s, rc, "list", SC_ERR_TEMP);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return st;
}

/* The index's entry points for lib/repo.c (repo_backend.h). */
static int lmdb_index_wanted(void *state)
{
	struct lmdb_state *s = state;

	if (!(s->flags & SC_REPO_RDONLY))
		return 0;
	if (lmdb_index_current(s))
		return 0;
	lmdb_index_drop(s); /* stale: release its snapshot now, not at the next lookup */
	/* A map grown by another process is adopted by a lookup; without lookups
	 * the build would find MDB_MAP_RESIZED every time. */
	if (rtxn_begin(s) == MDB_SUCCESS)
		mdb_txn_reset(s->rtxn);
	return 1;
}

static sc_status lmdb_index_build_be(void *state, size_t copy_limit, int huge, void **out)
{
	struct lmdb_index *ix;
	sc_status st = lmdb_index_build(state, copy_limit, huge, &ix);

	*out = ix;
	return st;
}

static sc_status lmdb_index_install_be(void *state, void *ix)
{
	return lmdb_index_install(state, ix);
}

static size_t lmdb_index_size_be(void *state, size_t *bytes, size_t *copy_bytes,
				 size_t *huge_bytes)
{
	struct lmdb_state *s = state;

	/* right after a successful install, under the same lock: it is the
	 * index just built even if a commit landed since */
	return lmdb_index_size(s, bytes, copy_bytes, huge_bytes);
}

static void *lmdb_index_detach_dead_be(void *state)
{
	return lmdb_index_detach_dead(state);
}

static void lmdb_index_free_dead_be(void *dead)
{
	lmdb_index_free_dead(dead);
}

static void lmdb_index_cancel_be(void *state)
{
	lmdb_index_cancel(state);
}

static void lmdb_prefetch_be(void *state, const char *const keys[], const size_t lens[],
			     size_t n)
{
	lmdb_index_prefetch(state, keys, lens, n);
}

const struct sc_repo_backend sc_repo_lmdb_backend = {
	.scheme = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.lookup = lmdb_lookup,
	.lookup_ex = lmdb_lookup_ex,
	.store = lmdb_store,
	.store_batch = lmdb_store_batch,
	.remove = lmdb_remove,
	.list = lmdb_list,
	.index_wanted = lmdb_index_wanted,
	.index_build = lmdb_index_build_be,
	.index_install = lmdb_index_install_be,
	.index_size = lmdb_index_size_be,
	.index_cancel = lmdb_index_cancel_be,
	.index_detach_dead = lmdb_index_detach_dead_be,
	.index_free_dead = lmdb_index_free_dead_be,
	.prefetch = lmdb_prefetch_be,
};
