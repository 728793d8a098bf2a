/*
 * repo_lmdb.h - internals of the lmdb: repository backend, shared by
 * lib/repo_lmdb.c (environment, read transactions, lookup, list) and
 * lib/repo_lmdb_write.c (store, remove, chain references, migration of format 1).
 * Internal to libsmtpcert; only these two files include LMDB's header for it.
 *
 * Layout of the environment, format version 2:
 *	DB "meta":      "format" -> u32 big-endian format version (2)
 *	DB "entries":   key = lookup key + '\0'; value = the address's entry list:
 *	                  u8 n (1..SC_REPO_ENTRIES_MAX), then n times u32 len + entry,
 *	                  ordered by the leaf's fingerprint; an entry is
 *	                  u8 nchain (0..SC_CHAIN_MAX-1), nchain x 32-byte SHA-256 of
 *	                  a chain certificate, then the lib/record.h record of the
 *	                  leaf alone (n_der = 1)
 *	DB "chains":    SHA-256 of a chain certificate -> its DER, stored once however
 *	                many entries name it
 *	DB "chainrefs": the same key -> u64 big-endian count of the entries naming it;
 *	                the certificate goes when the count reaches 0
 *	DB "certs":     empty: format 1 kept every entry here with its chain inline;
 *	                an older smtpcert opening a format 2 store finds it, reads the
 *	                format mark and refuses instead of calling the store foreign
 * Why: with the chain inline, a million addresses under one CA held a million
 * copies of the chain (3.6 GB), one leaf page per address, and a lookup walked
 * on to the next page to see that the address had no further entry. Now a
 * lookup is one mdb_get() of a small record (2-3 per page) plus one mdb_get()
 * per chain certificate in a table that stays in the cache.
 */
#ifndef SC_REPO_LMDB_H
#define SC_REPO_LMDB_H

#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "repo_backend.h"

#define LMDB_FORMAT 2u
#define LMDB_FP_LEN 32
/* lookup key + '\0'; fits LMDB's default 511-byte key limit */
#define LMDB_KEY_MAX (SC_ADDR_KEY_MAX + 1)
/* format 1's key: lookup key + '\0' + SHA-256 of the leaf */
#define LMDB_V1_KEY_MAX (SC_ADDR_KEY_MAX + 1 + LMDB_FP_LEN)

struct lmdb_index;

struct lmdb_state {
	sc_repo *r;
	MDB_env *env;
	MDB_dbi meta, entries, chains, refs, v1certs;
	MDB_txn *rtxn;  /* reused read transaction, reset between lookups */
	struct lmdb_index *idx; /* read-only handles: repo_lmdb_index.c, or NULL */
	struct lmdb_index *dead; /* dropped indexes whose memory is still mapped */
	size_t dead_copies;      /* the bytes of their copies */
	/* Held (shared) by an index build for as long as its snapshot is read;
	 * lmdb_map_adopt() takes it exclusively to remap, after setting
	 * index_cancel so that a build stops soon. */
	pthread_rwlock_t map_lock;
	int index_cancel;  /* lmdb_map_adopt() wants the map lock (atomic) */
	int index_closing; /* sc_repo_index_cancel(): no build from now on (atomic) */
	unsigned flags;
	uint8_t *wbuf;  /* writers: scratch for a new entry list */
	size_t wbuf_size;
	char path[PATH_MAX];
};

/* An entry inside an entry list (a view into the value). */
struct lmdb_span {
	const uint8_t *p;
	size_t len;
};

/* Map an LMDB or errno code to a status. */
sc_status lmdb_status_for(int rc, sc_status otherwise);
/* Map the error of a running store and tell the administrator what failed. */
sc_status lmdb_fail(struct lmdb_state *s, int rc, const char *what, sc_status otherwise);

/* Drop the cached read transaction (before the map is resized). */
void lmdb_rtxn_drop(struct lmdb_state *s);

/* After MDB_MAP_RESIZED: drop every transaction of this handle (the index's
 * too), wait for a build to let go of the map, and adopt the size another
 * process grew it to. */
int lmdb_map_adopt(struct lmdb_state *s);

/*
 * The lookup index (repo_lmdb_index.c). lmdb_index_build() may run on any
 * thread while lookups go on, and so may lmdb_index_cancel() and
 * lmdb_index_free_dead(); every other function runs under the sc_repo's lock,
 * like lookups. The index answers only while lmdb_index_current().
 */
/* @p copy_limit: most bytes of keys and entry lists to copy into the index's
 * own memory (0: none; they are then read from the map). @p huge: take the
 * table and the copies from the reserved huge pages when the pool has them. */
sc_status lmdb_index_build(struct lmdb_state *s, size_t copy_limit, int huge,
			   struct lmdb_index **out);
/* Make @p ix the handle's index (ownership passes); SC_ERR_CHANGED (and @p ix
 * freed) when a write was committed since its snapshot. */
sc_status lmdb_index_install(struct lmdb_state *s, struct lmdb_index *ix);
/* Take the handle's index out of use, releasing its snapshot; its memory
 * waits on s->dead for lmdb_index_free_dead(). */
void lmdb_index_drop(struct lmdb_state *s);
/* The dropped indexes (under the lock), to be freed with
 * lmdb_index_free_dead() (without it: unmapping gigabytes takes time). */
struct lmdb_index *lmdb_index_detach_dead(struct lmdb_state *s);
void lmdb_index_free_dead(struct lmdb_index *dead);
/* Non-zero when the handle has an index of the latest commit. */
int lmdb_index_current(struct lmdb_state *s);
/* The entry list of @p key (without its NUL) from the current index: SC_OK
 * with *@p val pointing into the index's snapshot or its copy (valid as long
 * as the index), or SC_ERR_NOT_FOUND. */
sc_status lmdb_index_get(struct lmdb_state *s, const char *key, size_t keylen,
			 MDB_val *val);
/* Stop a running build and refuse later ones (any thread, no lock). */
void lmdb_index_cancel(struct lmdb_state *s);
/* The index's snapshot, for the chain certificates of an entry it found. */
MDB_txn *lmdb_index_txn(const struct lmdb_state *s);
/* Addresses in the index (0 without one); *@p bytes gets its memory (table
 * and copies), *@p copy_bytes the copies' part, and those of dropped indexes
 * not yet unmapped, *@p huge_bytes the part of *@p bytes in reserved huge
 * pages (any may be NULL). */
size_t lmdb_index_size(const struct lmdb_state *s, size_t *bytes, size_t *copy_bytes,
		       size_t *huge_bytes);
/* Start loading the slots, keys and entry lists of @p n keys (a hint). */
void lmdb_index_prefetch(struct lmdb_state *s, const char *const keys[],
			 const size_t lens[], size_t n);

/* One write transaction: @p fn does the work, a non-OK *st aborts it;
 * MDB_MAP_FULL anywhere grows the map and runs @p fn again from the start. */
typedef int (*lmdb_write_fn)(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st);
sc_status lmdb_write_txn(struct lmdb_state *s, lmdb_write_fn fn, void *ctx, const char *what);

/**
 * Split an entry list value into its entries.
 * @return the number of entries (spans in @p out), or -1 when the framing is
 *         broken (lengths past the end, trailing bytes, count out of range).
 */
int lmdb_list_split(const void *val, size_t len, struct lmdb_span out[SC_REPO_ENTRIES_MAX]);

/**
 * Decode one entry inside @p txn: the leaf from the record, the chain
 * certificates from "chains" (pointers into the map, valid while @p txn is),
 * unless @p leaf_only (then n_der is 1 and "chains" is not read).
 * @return SC_OK; SC_ERR_SYNTAX (corrupt, or a chain certificate missing); an
 *         LMDB failure as SC_ERR_TEMP.
 */
sc_status lmdb_entry_decode(struct lmdb_state *s, MDB_txn *txn, struct lmdb_span sp,
			    int leaf_only, struct sc_repo_entry *e);

/* Writers (repo_lmdb_write.c), as the backend vtable wants them. */
sc_status lmdb_store(void *state, const char *key, size_t keylen,
		     const struct sc_repo_entry *e);
sc_status lmdb_store_batch(void *state, const struct sc_repo_entry *e, size_t n);
sc_status lmdb_remove(void *state, const char *key, size_t keylen,
		      const uint8_t *fingerprint, size_t *removed);

/**
 * Convert a format 1 store inside @p txn (read-write): every record of "certs"
 * becomes an entry of "entries" with its chain in "chains", "certs" is emptied
 * and the format mark set to 2. *@p n gets the number of entries converted.
 */
int lmdb_migrate_v1(struct lmdb_state *s, MDB_txn *txn, size_t *n, sc_status *st);

#endif
