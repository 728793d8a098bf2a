/*
 * repo_backend.h - the vtable every repository backend implements, internal to
 * libsmtpcert. lib/repo.c owns the registry (one line per backend) and the
 * behaviour common to all backends: spec parsing, read-only enforcement, the
 * lookup key, and the choice among several entries of one address (repo.h).
 * A backend only stores and enumerates entries.
 *
 * Pointer lifetimes: entries a backend passes to a visitor point into the
 * backend's storage (the LMDB map, or certificates parsed for this lookup) and
 * stay valid until the backend function that made the call returns.
 */
#ifndef SC_REPO_BACKEND_H
#define SC_REPO_BACKEND_H

#include "smtpcert/repo.h"

/* Most entries one address may hold. Bounds the work of one lookup (and of one
 * dir: lookup: files opened) whatever the size of the repository; store refuses
 * more with SC_ERR_TOO_MANY. */
#define SC_REPO_ENTRIES_MAX 32

struct sc_repo_backend {
	const char *scheme; /* without the ':' */

	/* @p path is the spec after "scheme:". Writes a message to @p err on failure. */
	sc_status (*open)(sc_repo *r, const char *path, unsigned flags, void **state,
			  char *err, size_t errlen);
	void (*close)(void *state);

	/*
	 * Call @p visit for each entry stored under the key, then once more with
	 * e == NULL while every entry passed before is still valid; that last call's
	 * status is the result (a non-OK status from an earlier call stops the walk
	 * and is returned without the final call). @p key is NUL-terminated.
	 * SC_ERR_TEMP when the store cannot be read.
	 */
	sc_status (*lookup)(void *state, const char *key, size_t keylen,
			    sc_repo_entry_fn visit, void *arg);

	/* Optional: lookup() with enum sc_repo_lookup_flags; NULL means the
	 * backend has no use for them and lookup() is called instead. */
	sc_status (*lookup_ex)(void *state, const char *key, size_t keylen, unsigned flags,
			       sc_repo_entry_fn visit, void *arg);

	/* Store @p e (key field ignored) under @p key; same fingerprint replaces. */
	sc_status (*store)(void *state, const char *key, size_t keylen,
			   const struct sc_repo_entry *e);

	/* Optional: store @p n entries (keys in e[i].key, NUL-terminated) in one
	 * transaction, all or nothing. Without it lib/repo.c calls store() per entry. */
	sc_status (*store_batch)(void *state, const struct sc_repo_entry *e, size_t n);

	/* Remove the entry with @p fingerprint, or every entry when NULL. */
	sc_status (*remove)(void *state, const char *key, size_t keylen,
			    const uint8_t *fingerprint, size_t *removed);

	/* Every entry (e->key set), in key order. No final NULL call. */
	sc_status (*list)(void *state, sc_repo_entry_fn fn, void *arg);

	/*
	 * Optional, all or none: a lookup index (sc_repo_index_refresh()).
	 * index_build() runs without the sc_repo's lock, on any thread, while
	 * lookups go on; the others run under it. index_wanted() says whether a
	 * new index would be used, and drops a stale one.
	 */
	int (*index_wanted)(void *state);
	/* @p copy_limit: sc_repo_index_copy_limit(); @p huge:
	 * sc_repo_index_huge_pages() */
	sc_status (*index_build)(void *state, size_t copy_limit, int huge, void **index);
	/* frees @p index when it is not installed */
	sc_status (*index_install)(void *state, void *index);
	/* addresses; *bytes (memory), *copy_bytes (of it, copies) and *huge_bytes
	 * (of it, in reserved huge pages) may be NULL */
	size_t (*index_size)(void *state, size_t *bytes, size_t *copy_bytes, size_t *huge_bytes);
	/* any thread, without the lock: stop a build now and refuse later ones */
	void (*index_cancel)(void *state);
	/* the memory of indexes taken out of use: detached under the lock, freed
	 * without it (on the refreshing thread, not a lookup's) */
	void *(*index_detach_dead)(void *state);
	void (*index_free_dead)(void *dead);
	/* Optional: start loading what looking up @p keys will touch (a hint). */
	void (*prefetch)(void *state, const char *const keys[], const size_t lens[],
			 size_t n);

	/* Non-zero: lookups go over the network (sc_repo_is_remote()). */
	int remote;

	/* Non-zero: lookup() and list() may run in several threads at once on one
	 * state (the backend locks what it shares, e.g. ldap's connection pool), so
	 * lib/repo.c does not serialise them with the sc_repo's lock. */
	int threadsafe;
};

extern const struct sc_repo_backend sc_repo_lmdb_backend;
extern const struct sc_repo_backend sc_repo_dir_backend;
extern const struct sc_repo_backend sc_repo_ldap_backend;
extern const struct sc_repo_backend sc_repo_ldaps_backend;
extern const struct sc_repo_backend sc_repo_ldapi_backend;

/* The ldap settings given to sc_repo_open_ex() (NULL when none), for a backend's
 * open(); valid during open() only. */
const struct sc_repo_ldap_opts *sc_repo_ldap_opts_of(const sc_repo *r);

/* Report something the administrator should fix (a junk file in a dir: store)
 * through the callback set with sc_repo_set_warn(); silent without one. */
void sc_repo_warn(sc_repo *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* mkdir -p for SC_REPO_CREATE: missing parents 0755, @p path itself @p mode.
 * @return 0, or -1 with errno set (EEXIST is success). */
int sc_repo_mkdirs(const char *path, unsigned mode);

/* Fill @p e from a parsed certificate (pointers into @p c; key left NULL). */
void sc_repo_entry_from_cert(const sc_cert *c, struct sc_repo_entry *e);

/* Test hook: initial map size of lmdb: environments created from now on
 * (default SC_REPO_LMDB_MAPSIZE). */
#define SC_REPO_LMDB_MAPSIZE ((size_t)1 << 30)
void sc_repo_lmdb_set_initial_mapsize(size_t bytes);

#endif
