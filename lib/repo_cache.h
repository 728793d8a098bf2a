/*
 * repo_cache.h - internal to libsmtpcert: a bounded, thread-safe cache of the
 * answers of a remote repository backend (ldap://, and any other that wants
 * it), lib/repo_cache.c. An answer is what the backend found for one key: copies
 * of its entries (leaf + chain DER and the fields of struct sc_repo_entry), or
 * "no entries". Failures (SC_ERR_TEMP) are never cached: a directory that is
 * down is asked again next time. Validity and CRLs are not the cache's business:
 * lib/repo.c applies them to every entry a backend passes on, cached or not, so
 * a certificate that expires or is revoked stops being served at once.
 *
 * Bounds: at most SC_REPO_CACHE_KEYS answers and SC_REPO_CACHE_BYTES bytes of
 * copies in one cache; when either would be exceeded the oldest answers go
 * first. 4096 keys of at most SC_REPO_ENTRIES_MAX entries, 16 MiB in all: the
 * recent correspondents of a busy host, at a memory cost that is fixed.
 */
#ifndef SC_REPO_CACHE_H
#define SC_REPO_CACHE_H

#include <stddef.h>
#include <time.h>
#include "smtpcert/repo.h"

#define SC_REPO_CACHE_KEYS 4096
#define SC_REPO_CACHE_BYTES ((size_t)16 << 20)

struct sc_repo_cache;

/* @p ttl seconds (> 0) an answer is reused; @p max_keys, @p max_bytes: bounds
 * (0: the defaults above). @return SC_OK; SC_ERR_NOMEM; SC_ERR_ARG. */
SC_MUST_CHECK sc_status sc_repo_cache_new(unsigned ttl, size_t max_keys, size_t max_bytes,
					  struct sc_repo_cache **out);
void sc_repo_cache_free(struct sc_repo_cache *c);

/*
 * The cached answer for @p key at @p now (seconds on any clock that does not go
 * back; the backends use CLOCK_MONOTONIC): when there is one younger than the
 * TTL, call @p visit for each entry and once with NULL, exactly as a backend's
 * lookup does (repo_backend.h), set *@p st to the result and return 1. Entries
 * are valid during the calls only; the cache is not locked during them.
 * @return 1 (answered from the cache), 0 (ask the backend).
 */
int sc_repo_cache_answer(struct sc_repo_cache *c, const char *key, size_t keylen, time_t now,
			 sc_repo_entry_fn visit, void *arg, sc_status *st);

/*
 * Remember that @p key has the @p n entries @p e (n = 0: none) at @p now,
 * replacing an older answer. Everything is copied. An answer larger than the
 * whole cache is not kept.
 * @return SC_OK; SC_ERR_NOMEM; SC_ERR_TOO_LONG (not kept); SC_ERR_ARG.
 */
SC_MUST_CHECK sc_status sc_repo_cache_put(struct sc_repo_cache *c, const char *key,
					  size_t keylen, time_t now,
					  const struct sc_repo_entry *e, size_t n);

/* Answers held and their bytes, for tests. */
void sc_repo_cache_usage(struct sc_repo_cache *c, size_t *keys, size_t *bytes);

#endif
