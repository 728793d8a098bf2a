/*
 * smtpcert/repo.h - certificate repositories.
 *
 * A repository maps a normalised address key (sc_addr_key) to one or more
 * certificate entries. Backends are named by the scheme of the spec string:
 *   lmdb:/path/to/dir   embedded LMDB environment (the default); lookups are
 *                       zero-copy reads from the memory map and run concurrently
 *                       with another process (the admin CLI) writing.
 *   dir:/path           a directory of PEM files an administrator can edit by hand:
 *                       <dir>/<key>.pem holds leaf then chain; further certificates
 *                       for the same address go in <dir>/<key>.d/<anything>.pem.
 *                       Characters outside [A-Za-z0-9@._+-] in the key are written
 *                       as %XX in file names.
 *   pgsql:CONNINFO      PostgreSQL (libpq conninfo, e.g. "pgsql:host=db
 *                       dbname=smtpcert"): a store several daemons share; the
 *                       schema is created and migrated on open (lib/pgsql_db.h).
 *                       Unreachable or timed out (the conninfo's connect_timeout,
 *                       default 10 s, bounds every query) = SC_ERR_TEMP.
 *   ldap://host:port/base?attribute?scope?filter  (RFC 4516; also ldaps://)
 *                       a read-only directory: the filter's %s is the lookup key,
 *                       escaped per RFC 4515 3; the attribute defaults to
 *                       userCertificate;binary. Unreachable = SC_ERR_TEMP.
 * Adding a backend is one lib/repo_<name>.c file plus one line in the registry
 * table in lib/repo.c.
 *
 * Lookups choose among the entries of an address: entries outside their validity
 * window at the given time or revoked by the given CRL set are skipped; of the rest
 * the one with the latest notBefore wins (ties: latest notAfter, then fingerprint).
 *
 * Ownership: an sc_repo_entry passed to a callback is a borrowed view into the
 * backend's storage (the LMDB map itself for lmdb:, or the copies of its lookup
 * index) and is valid only during that call. Copy what you need.
 */
#ifndef SMTPCERT_REPO_H
#define SMTPCERT_REPO_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "status.h"
#include "addr.h"
#include "cert.h"
#include "crl.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A repository entry: one certificate (leaf + chain) stored for one address. */
struct sc_repo_entry {
	const char *key;                  /**< lookup key, NUL-terminated */
	size_t key_len;
	size_t n_der;                     /**< 1 + chain certificates */
	const uint8_t *der[SC_CHAIN_MAX]; /**< der[0] is the leaf */
	size_t der_len[SC_CHAIN_MAX];
	int64_t not_before;               /**< leaf validity, seconds since the epoch */
	int64_t not_after;
	int64_t added;                    /**< when it was stored (0 if unknown) */
	uint8_t fingerprint[32];          /**< SHA-256 of der[0] */
	const uint8_t *issuer;            /**< DER of the leaf's issuer Name */
	size_t issuer_len;
	const uint8_t *serial;            /**< content octets of the leaf's serial */
	size_t serial_len;
};

/** Entry callback. Return SC_OK to go on; any other status stops the walk and is
 *  returned by the function that called it. */
typedef sc_status (*sc_repo_entry_fn)(void *arg, const struct sc_repo_entry *e);

enum sc_repo_flags {
	SC_REPO_RDONLY = 1u << 0, /**< lookups and list only (the daemon) */
	SC_REPO_CREATE = 1u << 1, /**< create the store when missing (admin import); with
				   *  SC_REPO_RDONLY: create it empty, then open it
				   *  read-only (the daemon on a fresh install) */
	SC_REPO_CHECK = 1u << 2   /**< with SC_REPO_RDONLY, not SC_REPO_CREATE: open to
				   *  see that the store opens and write nothing, not
				   *  even LMDB's lock file (smtpcertd -n); lookups
				   *  work but are not safe against a concurrent
				   *  writer, so close it again soon */
};

typedef struct sc_repo sc_repo;

/**
 * Open a repository from its spec ("lmdb:/path", "dir:/path").
 * @return SC_OK; SC_ERR_CONFIG (unknown scheme or bad spec); SC_ERR_NOT_FOUND (store
 *         missing and no SC_REPO_CREATE); SC_ERR_IO / SC_ERR_PERM / SC_ERR_TEMP.
 *         A message for the administrator is written to @p err when non-NULL.
 */
SC_MUST_CHECK sc_status sc_repo_open(const char *spec, unsigned flags, sc_repo **out,
				     char *err, size_t errlen);
void sc_repo_close(sc_repo *r);

/** Settings of ldap:// and ldaps:// stores (smtpcertd.conf ldap_* keys). Strings
 *  are copied by sc_repo_open_ex(); NULL members take the defaults. */
struct sc_repo_ldap_opts {
	const char *bind_dn;            /**< NULL: anonymous */
	const char *bind_password_file; /**< password for bind_dn (first line) */
	int starttls;                   /**< StartTLS on ldap:// (RFC 4513 3), required */
	const char *ca_file;            /**< trust anchors for the server's certificate */
	int timeout;                    /**< seconds per operation; <= 0: 10 */
	unsigned cache_ttl;             /**< seconds an answer (the entries found, or
					 *  none) is reused; 0: no cache. Validity
					 *  and CRLs are applied to cached entries on
					 *  every lookup, as to fresh ones */
};

/**
 * sc_repo_open() with settings for remote stores: @p ldap (may be NULL) applies
 * to ldap:// and ldaps:// specs and is ignored by the others.
 */
SC_MUST_CHECK sc_status sc_repo_open_ex(const char *spec, unsigned flags,
					const struct sc_repo_ldap_opts *ldap, sc_repo **out,
					char *err, size_t errlen);

struct sc_config;

/**
 * Fill @p o from the ldap_* keys of @p cfg (smtpcertd.conf(5): ldap_bind_dn,
 * ldap_bind_password_file, ldap_starttls, ldap_ca_file, ldap_timeout,
 * ldap_cache_ttl), so every program opening the configured stores uses the same
 * settings. Strings point into @p cfg and live as long as it.
 */
void sc_repo_ldap_opts_from_config(const struct sc_config *cfg, struct sc_repo_ldap_opts *o);

/** @return non-zero when lookups in @p r go over the network (ldap://): the daemon
 *  then runs them off the event loop. */
int sc_repo_is_remote(const sc_repo *r);

/*
 * Lookup index. An lmdb: store opened SC_REPO_RDONLY (the daemon's) can keep
 * an index of every address in memory, 36 bytes per address, that saves a
 * lookup the walk down the B-tree (several cache misses with a large store),
 * and copies of the entry lists beside it (sc_repo_index_copy_limit()).
 * It is used only while nothing was written since it was built; after a write
 * lookups read the store directly, exactly as without it, until the next
 * sc_repo_index_refresh(). Other backends have none.
 */

/** Most arguments one sc_repo_prefetch() call looks at. */
#define SC_REPO_PREFETCH_MAX 32

/**
 * @return 1 when sc_repo_index_refresh() would build an index that lookups use:
 *         the backend has one, @p r is read-only and has no index of the latest
 *         commit. A stale index is taken out of use here and its snapshot
 *         released (it keeps writers from reusing pages; its memory is
 *         unmapped by the next sc_repo_index_refresh(), off this thread, or by
 *         sc_repo_close()), and a map that another
 *         process grew is adopted here as a lookup would (waiting for a build
 *         of this handle to stop, which it does within a few thousand
 *         addresses). 0 otherwise.
 */
int sc_repo_index_wanted(sc_repo *r);

/**
 * Build an index of the latest commit and let lookups use it, after unmapping
 * the memory of indexes taken out of use since the last call. Reads the whole
 * store (1-2 s per million addresses, more with copies): call it off the event loop;
 * lookups on other threads go on meanwhile. One build per @p r at a time.
 * @param count (may be NULL) gets the number of addresses indexed
 * @param bytes (may be NULL) gets the memory the index takes, its copies too
 * @return SC_OK; SC_ERR_UNSUPPORTED (no index for this backend, or @p r is
 *         writable); SC_ERR_CHANGED (a write was committed meanwhile: nothing
 *         installed, try later); SC_ERR_TEMP (another build runs, it was
 *         cancelled, or the map was being resized); SC_ERR_IO (LMDB failed
 *         reading the store, e.g. MDB_CORRUPTED: reported through the warning
 *         callback; lookups read the store directly); SC_ERR_NOMEM;
 *         SC_ERR_TOO_LONG (over 2^32 slots).
 */
SC_MUST_CHECK sc_status sc_repo_index_refresh(sc_repo *r, size_t *count, size_t *bytes);

/**
 * Let later sc_repo_index_refresh() builds of @p r copy each address's entry
 * list (its certificates) into the index's own memory, huge pages where the
 * kernel gives them, until @p bytes are used (0, the default: no copies). A
 * lookup through the index then reads no page of the store's file map, whose
 * random 4 KiB pages can cost microseconds each under a hypervisor; the price is
 * about the store's size in memory again (1 GB per million addresses with one
 * certificate each). Copies are of the same snapshot: answers do not change.
 * Any thread.
 */
void sc_repo_index_copy_limit(sc_repo *r, size_t bytes);

/**
 * @return the memory the copies of @p r's indexes take: the current one's
 *         (part of the bytes sc_repo_index_refresh() reported) and those of
 *         indexes taken out of use whose memory the next refresh unmaps; 0
 *         without copies.
 */
size_t sc_repo_index_copy_bytes(sc_repo *r);

/**
 * Let later sc_repo_index_refresh() builds of @p r take the index's table and
 * copies from the kernel's reserved 2 MiB huge pages (hugetlbfs; the pool of
 * /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages, which is
 * vm.nr_hugepages where 2 MiB is the default size) when it has room, and
 * ordinary memory with transparent huge pages otherwise (@p on 0, the
 * default: always the latter). The table and the copies are each all in the
 * pool or not at all, and the copies need room for their upper bound (about
 * the store's file size, or the copy limit if less) during the build; what
 * they did not use goes back at its end, and the pages of the index a build
 * replaces go back before it starts. Pool pages are on no LRU list, so DAMON's
 * physical-address monitoring (as of Linux 6.18), idle page tracking and
 * khugepaged pass them by, which on machines that run those keeps periodic
 * stalls out of lookups. Pool memory is not in the process's RSS. Any thread.
 */
void sc_repo_index_huge_pages(sc_repo *r, int on);

/**
 * @return the part of the index the last successful sc_repo_index_refresh()
 *         of @p r installed (of the bytes it reported: table and copies) that
 *         is in reserved huge pages: all of it when the pool held everything,
 *         0 when none of it or no index was built. The pool pages it took are
 *         these bytes rounded up to whole pages, table and copies each.
 */
size_t sc_repo_index_huge_bytes(sc_repo *r);

/**
 * For shutting down: a sc_repo_index_refresh() running on another thread stops
 * within a few thousand addresses (SC_ERR_TEMP), and later ones are refused
 * the same way. Lookups, and an index already in use, are not affected. Any
 * thread; NULL or a backend without an index: nothing.
 */
void sc_repo_index_cancel(sc_repo *r);

/**
 * A hint: start loading from memory what looking up the CERT arguments @p args
 * will read, so that the misses of several pipelined commands overlap instead
 * of coming one after the other. An argument is a mailbox as received ("<a@b>"
 * or "a@b", @p lens[i] octets); one whose key needs a full parse (a quoted local
 * part) is skipped, and so are arguments beyond SC_REPO_PREFETCH_MAX. Does
 * nothing without an index; never fails and changes no result.
 */
void sc_repo_prefetch(sc_repo *r, const char *const args[], const size_t lens[], size_t n);

/** Message callback: @p msg is NUL-terminated and valid only during the call. */
typedef void (*sc_repo_warn_fn)(void *arg, const char *msg);

/**
 * Report problems an administrator should fix but that do not fail the operation,
 * e.g. a file in a dir: store that does not parse (it is skipped), or a database
 * that was down when the store was opened read-only. The last message reported
 * before a callback was set (by the open itself) is delivered to @p fn at once;
 * otherwise, without a callback, messages are skipped silently.
 */
void sc_repo_set_warn(sc_repo *r, sc_repo_warn_fn fn, void *arg);

/** The spec the repository was opened with. */
const char *sc_repo_spec(const sc_repo *r);

/** The spec for logs and messages: a pgsql: conninfo's password (password=
 *  keyword, user:password@ and ?password= of the URI form) shows as "*****". */
const char *sc_repo_name(const sc_repo *r);

/** The same for a spec string: written into @p out (always NUL-terminated; a
 *  pgsql: spec that does not fit is replaced, never cut inside a secret). */
void sc_repo_spec_redact(const char *spec, char *out, size_t size);

/** @return non-zero when @p spec names a scheme that some backend handles. */
int sc_repo_scheme_known(const char *spec);

/**
 * Find the certificate to serve for @p addr at time @p now.
 * @param crls revocation set to apply (may be NULL)
 * @param fn called exactly once, with the chosen entry, when the result is SC_OK
 * @return SC_OK; SC_ERR_NOT_FOUND (no entry, or none valid and unrevoked);
 *         SC_ERR_TEMP (backend unreachable: the daemon answers 451);
 *         or the callback's status.
 */
SC_MUST_CHECK sc_status sc_repo_lookup(sc_repo *r, const struct sc_addr *addr, time_t now,
				       const sc_crlset *crls, sc_repo_entry_fn fn, void *arg);

/** Options of sc_repo_lookup_ex(). */
enum sc_repo_lookup_flags {
	/** The caller needs the leaf only (CERT): the entry's chain may be left
	 *  out (n_der == 1). lmdb: saves a read of "chains" per chain certificate,
	 *  and an entry whose chain certificate is missing is still served (its
	 *  leaf is intact); other backends ignore it. */
	SC_REPO_LOOKUP_LEAF = 1u << 0
};

/** sc_repo_lookup() with @p flags (enum sc_repo_lookup_flags): the same
 *  choice among the entries that can be read; with SC_REPO_LOOKUP_LEAF an lmdb
 *  entry whose chain certificate is missing can be read too (its leaf is
 *  intact), so it may be chosen where a whole lookup skips it. */
SC_MUST_CHECK sc_status sc_repo_lookup_ex(sc_repo *r, const struct sc_addr *addr, time_t now,
					  const sc_crlset *crls, unsigned flags,
					  sc_repo_entry_fn fn, void *arg);

/**
 * sc_repo_lookup_ex() by the address's key, for a caller that made it already
 * (smtpcertd logs it): the lookup then does not make it again.
 * @param key what sc_addr_key() wrote for the address (@p keylen octets, no
 *        NUL needed). Any other string is looked up as it is: every backend
 *        escapes keys, so it can only find what was stored under that string.
 * @return as sc_repo_lookup_ex(); SC_ERR_ARG for an empty key, one of
 *         SC_ADDR_KEY_MAX octets or more (no key is that long), or one with a
 *         NUL in its @p keylen octets (no key has one).
 */
SC_MUST_CHECK sc_status sc_repo_lookup_key(sc_repo *r, const char *key, size_t keylen,
					   time_t now, const sc_crlset *crls, unsigned flags,
					   sc_repo_entry_fn fn, void *arg);

/**
 * Store @p c (leaf + chain) under @p addr. Storing the same leaf again replaces
 * its entry (and chain). Atomic: a concurrent lookup sees the old or the new state.
 * @return SC_OK; SC_ERR_PERM (opened read-only); SC_ERR_IO; SC_ERR_TOO_LONG;
 *         SC_ERR_TOO_MANY (the address already holds 32 other entries: the bound
 *         that keeps every lookup's work fixed).
 */
SC_MUST_CHECK sc_status sc_repo_store(sc_repo *r, const struct sc_addr *addr,
				      const sc_cert *c);

/**
 * Store many certificates in as few transactions as the backend allows: certs[i]
 * under addrs[i] for i < @p n. For lmdb: the whole call is one transaction (one
 * commit, one fsync), so a bulk import should pass a few thousand at a time; a
 * backend without transactions stores them one by one. Same rules per entry as
 * sc_repo_store(); the same certificate may be passed for many addresses.
 * @param done (optional) number of entries stored: @p n on SC_OK; for lmdb: 0 on
 *        failure (nothing was committed), else those before the failing one
 * @return SC_OK or the status of the first failing entry (see sc_repo_store()).
 */
SC_MUST_CHECK sc_status sc_repo_store_batch(sc_repo *r, const struct sc_addr *addrs,
					    const sc_cert *const *certs, size_t n,
					    size_t *done);

/**
 * Remove entries of @p addr: the one whose leaf has @p fingerprint, or all when
 * @p fingerprint is NULL. *@p removed (optional) gets the count.
 * @return SC_OK (at least one removed), SC_ERR_NOT_FOUND, SC_ERR_PERM, SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sc_repo_remove(sc_repo *r, const struct sc_addr *addr,
				       const uint8_t *fingerprint, size_t *removed);

/** Every entry, valid or not, in key order. */
SC_MUST_CHECK sc_status sc_repo_list(sc_repo *r, sc_repo_entry_fn fn, void *arg);

/** Every entry of one address, valid or not (SC_OK also when there is none). */
SC_MUST_CHECK sc_status sc_repo_entries(sc_repo *r, const struct sc_addr *addr,
					sc_repo_entry_fn fn, void *arg);

/**
 * Is @p e servable at @p now under @p crls? (The rule sc_repo_lookup applies.)
 * @return SC_OK, SC_ERR_EXPIRED, SC_ERR_NOT_YET_VALID or SC_ERR_REVOKED.
 */
SC_MUST_CHECK sc_status sc_repo_entry_usable(const struct sc_repo_entry *e, time_t now,
					     const sc_crlset *crls);

#ifdef __cplusplus
}
#endif
#endif
