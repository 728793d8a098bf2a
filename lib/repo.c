/*
 * repo.c - certificate repositories: the backend registry and everything common to
 * backends (spec parsing, read-only enforcement, lookup keys, and the rule that
 * picks the entry to serve among several of one address). Backends live in
 * lib/repo_<scheme>.c and only store and enumerate entries (repo_backend.h).
 * Runs in the daemon (lookups, read-only) and in the admin CLI (writes).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "addr_int.h"
#include "repo_backend.h"
#include "errmsg.h"

extern const struct sc_repo_backend sc_repo_pgsql_backend; /* lib/repo_pgsql.c */

/* The registry: adding a backend is one line here plus its lib/repo_<x>.c. */
static const struct sc_repo_backend *const backends[] = {
	&sc_repo_lmdb_backend,
	&sc_repo_dir_backend,
	&sc_repo_ldap_backend,
	&sc_repo_ldaps_backend,
	&sc_repo_ldapi_backend,
	&sc_repo_pgsql_backend,
};

struct sc_repo {
	const struct sc_repo_backend *be;
	void *state;
	unsigned flags;
	char *spec;
	char *name; /* spec without secrets (sc_repo_name) */
	sc_repo_warn_fn warn;
	void *warn_arg;
	char *warn_held; /* the last message before a callback was set (open()'s) */
	const struct sc_repo_ldap_opts *ldap; /* during open() only */
	/* Every backend call holds it, so one sc_repo may be used from several
	 * threads (the daemon's workers for remote chains): lmdb's cached read
	 * transaction (MDB_NOTLS) is then never used by two threads at once.
	 * Recursive: a visitor may call back into the same repository. */
	pthread_mutex_t lock;
	int index_building; /* sc_repo_index_refresh() running (atomic) */
	size_t index_copy_limit; /* sc_repo_index_copy_limit() (atomic) */
	int index_huge;          /* sc_repo_index_huge_pages() (atomic) */
	size_t index_huge_bytes; /* of the last index installed (atomic) */
};

static sc_status repo_locked_end(sc_repo *r, sc_status st)
{
	pthread_mutex_unlock(&r->lock);
	return st;
}

/* Reads (lookup, entries, list) of a thread-safe backend run in parallel: the
 * lock would make every worker wait for one network round trip at a time. */
static void repo_read_lock(sc_repo *r)
{
	if (!r->be->threadsafe)
		pthread_mutex_lock(&r->lock);
}

static sc_status repo_read_end(sc_repo *r, sc_status st)
{
	if (!r->be->threadsafe)
		pthread_mutex_unlock(&r->lock);
	return st;
}

/* Backend for "scheme:rest", with *rest pointing after the colon; NULL if none. */
static const struct sc_repo_backend *find_backend(const char *spec, const char **rest)
{
	const char *colon = spec ? strchr(spec, ':') : NULL;

	if (!colon)
		return NULL;
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
		size_t n = strlen(backends[i]->scheme);

		if ((size_t)(colon - spec) == n && !memcmp(spec, backends[i]->scheme, n)) {
			if (rest)
				*rest = colon + 1;
			return backends[i];
		}
	}
	return NULL;
}

int sc_repo_scheme_known(const char *spec)
{
	return find_backend(spec, NULL) != NULL;
}

sc_status sc_repo_open(const char *spec, unsigned flags, sc_repo **out, char *err,
		       size_t errlen)
{
	return sc_repo_open_ex(spec, flags, NULL, out, err, errlen);
}

const struct sc_repo_ldap_opts *sc_repo_ldap_opts_of(const sc_repo *r)
{
	return r ? r->ldap : NULL;
}

int sc_repo_is_remote(const sc_repo *r)
{
	return r && r->be->remote;
}

int sc_repo_index_wanted(sc_repo *r)
{
	int wanted;

	if (!r || !r->be->index_wanted)
		return 0;
	pthread_mutex_lock(&r->lock);
	wanted = r->be->index_wanted(r->state);
	pthread_mutex_unlock(&r->lock);
	return wanted;
}

/* Unmap the memory of the indexes taken out of use, on this thread and
 * without the lock: a lookup that finds its index stale only drops it. */
static void index_reap(sc_repo *r)
{
	void *dead;

	pthread_mutex_lock(&r->lock);
	dead = r->be->index_detach_dead(r->state);
	pthread_mutex_unlock(&r->lock);
	r->be->index_free_dead(dead);
}

sc_status sc_repo_index_refresh(sc_repo *r, size_t *count, size_t *bytes)
{
	void *ix = NULL;
	size_t n = 0, b = 0, h = 0;
	sc_status st;

	SC_ENSURE_ARG(r);
	if (!r->be->index_build || !(r->flags & SC_REPO_RDONLY))
		return SC_ERR_UNSUPPORTED;
	if (__atomic_exchange_n(&r->index_building, 1, __ATOMIC_ACQ_REL))
		return SC_ERR_TEMP;
	index_reap(r); /* the old memory goes before the new is taken */
	/* without the lock: lookups go on */
	st = r->be->index_build(r->state, __atomic_load_n(&r->index_copy_limit, __ATOMIC_RELAXED),
				__atomic_load_n(&r->index_huge, __ATOMIC_RELAXED), &ix);
	if (st == SC_OK) {
		pthread_mutex_lock(&r->lock);
		st = r->be->index_install(r->state, ix);
		if (st == SC_OK) {
			/* here, while it is surely the index just built: a lookup may
			 * drop it as soon as the lock is released */
			n = r->be->index_size(r->state, &b, NULL, &h);
			__atomic_store_n(&r->index_huge_bytes, h, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&r->lock);
		index_reap(r); /* the index the new one replaced */
	}
	__atomic_store_n(&r->index_building, 0, __ATOMIC_RELEASE);
	if (count)
		*count = n;
	if (bytes)
		*bytes = b;
	return st;
}

void sc_repo_index_copy_limit(sc_repo *r, size_t bytes)
{
	if (r)
		__atomic_store_n(&r->index_copy_limit, bytes, __ATOMIC_RELAXED);
}

size_t sc_repo_index_copy_bytes(sc_repo *r)
{
	size_t b = 0;

	if (!r || !r->be->index_size)
		return 0;
	pthread_mutex_lock(&r->lock);
	(void)r->be->index_size(r->state, NULL, &b, NULL);
	pthread_mutex_unlock(&r->lock);
	return b;
}

void sc_repo_index_huge_pages(sc_repo *r, int on)
{
	if (r)
		__atomic_store_n(&r->index_huge, on != 0, __ATOMIC_RELAXED);
}

size_t sc_repo_index_huge_bytes(sc_repo *r)
{
	return r ? __atomic_load_n(&r->index_huge_bytes, __ATOMIC_RELAXED) : 0;
}

void sc_repo_index_cancel(sc_repo *r)
{
	/* without the lock: the build to stop runs without it, and a lookup
	 * holding it may be waiting for that build (lmdb_map_adopt()) */
	if (r && r->be->index_cancel)
		r->be->index_cancel(r->state);
}

void sc_repo_prefetch(sc_repo *r, const char *const args[], const size_t lens[], size_t n)
{
	char keys[SC_REPO_PREFETCH_MAX][SC_ADDR_KEY_MAX];
	const char *kp[SC_REPO_PREFETCH_MAX];
	size_t kl[SC_REPO_PREFETCH_MAX], m = 0;

	if (!r || !r->be->prefetch || !args || !lens)
		return;
	for (size_t i = 0; i < n && i < SC_REPO_PREFETCH_MAX; i++) {
		kl[m] = sc_addr_key_guess(args[i], lens[i], keys[m], sizeof keys[m]);
		if (kl[m])
			kp[m] = keys[m], m++;
	}
	if (m == 0)
		return;
	pthread_mutex_lock(&r->lock);
	r->be->prefetch(r->state, kp, kl, m);
	pthread_mutex_unlock(&r->lock);
}

sc_status sc_repo_open_ex(const char *spec, unsigned flags,
			  const struct sc_repo_ldap_opts *ldap, sc_repo **out, char *err,
			  size_t errlen)
{
	const struct sc_repo_backend *be;
	const char *path = NULL;
	sc_repo *r;
	sc_status st;

	SC_ENSURE_ARG(out);
	*out = NULL;
	sc_errf(err, errlen, "%s", "");
	/* a check writes nothing: read-only, and nothing created */
	SC_ENSURE(!(flags & SC_REPO_CHECK) ||
			  ((flags & SC_REPO_RDONLY) && !(flags & SC_REPO_CREATE)),
		  SC_ERR_ARG);
	if (!spec) {
		sc_errf(err, errlen, "no repository given");
		return SC_ERR_CONFIG;
	}
	be = find_backend(spec, &path);
	if (!be) {
		sc_errf(err, errlen, "%s: unknown repository type (expected lmdb:/path, "
			"dir:/path, ldap://, ldaps:// or ldapi://host/base?attr?scope?filter, "
			"or pgsql:conninfo)", spec);
		return SC_ERR_CONFIG;
	}
	if (!*path) {
		sc_errf(err, errlen, "%s: no path after '%s:'", spec, be->scheme);
		return SC_ERR_CONFIG;
	}
	r = calloc(1, sizeof *r);
	if (r && (r->spec = strdup(spec))) {
		size_t nlen = strlen(spec) + 64;

		r->name = malloc(nlen);
		if (r->name)
			sc_repo_spec_redact(spec, r->name, nlen);
	}
	if (!r || !r->spec || !r->name) {
		if (r)
			free(r->spec);
		free(r);
		/* not the spec itself: a pgsql: conninfo may hold a password */
		sc_errf(err, errlen, "%s: repository: out of memory", be->scheme);
		return SC_ERR_NOMEM;
	}
	r->be = be;
	r->flags = flags;
	{
		pthread_mutexattr_t ma;

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&r->lock, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	r->ldap = ldap;
	st = be->open(r, path, flags, &r->state, err, errlen);
	r->ldap = NULL;
	if (st != SC_OK) {
		pthread_mutex_destroy(&r->lock);
		free(r->warn_held);
		free(r->spec);
		free(r->name);
		free(r);
		return st;
	}
	*out = r;
	return SC_OK;
}

void sc_repo_close(sc_repo *r)
{
	if (!r)
		return;
	r->be->close(r->state);
	pthread_mutex_destroy(&r->lock);
	free(r->warn_held);
	free(r->spec);
	free(r->name);
	free(r);
}

const char *sc_repo_spec(const sc_repo *r)
{
	return r ? r->spec : NULL;
}

const char *sc_repo_name(const sc_repo *r)
{
	return r ? r->name : NULL;
}

void sc_repo_set_warn(sc_repo *r, sc_repo_warn_fn fn, void *arg)
{
	if (!r)
		return;
	r->warn = fn;
	r->warn_arg = arg;
	if (fn && r->warn_held)
		fn(arg, r->warn_held);
	free(r->warn_held);
	r->warn_held = NULL;
}

void sc_repo_warn(sc_repo *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!r)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->warn) {
		r->warn(r->warn_arg, msg);
		return;
	}
	/* open() warns before anyone could set a callback: keep it for
	 * sc_repo_set_warn() (one message; a later one replaces it). The lock
	 * keeps two threads (an index build warns from its own) from freeing
	 * the held message twice; the callback itself is set once, after open,
	 * before any other thread uses @p r. */
	pthread_mutex_lock(&r->lock);
	free(r->warn_held);
	r->warn_held = strdup(msg);
	pthread_mutex_unlock(&r->lock);
}

int sc_repo_mkdirs(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	/* Parents first, each component once; "a//b" and a trailing '/' are fine. */
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != '/' || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		buf[i] = '/';
	}
	if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

void sc_repo_entry_from_cert(const sc_cert *c, struct sc_repo_entry *e)
{
	memset(e, 0, sizeof *e);
	e->n_der = sc_cert_count(c);
	if (e->n_der > SC_CHAIN_MAX)
		e->n_der = SC_CHAIN_MAX;
	for (size_t i = 0; i < e->n_der; i++)
		if (sc_cert_der(c, i, &e->der[i], &e->der_len[i]) != SC_OK)
			e->n_der = i; /* cannot happen: i < count */
	e->not_before = sc_cert_not_before(c);
	e->not_after = sc_cert_not_after(c);
	sc_cert_fingerprint(c, e->fingerprint);
	sc_cert_issuer_der(c, &e->issuer, &e->issuer_len);
	sc_cert_serial_raw(c, &e->serial, &e->serial_len);
}

/* RFC 5280 4.1.2.5: "The validity period for a certificate is the period of time
 * from notBefore through notAfter, inclusive." */
sc_status sc_repo_entry_usable(const struct sc_repo_entry *e, time_t now,
			       const sc_crlset *crls)
{
	SC_ENSURE_ARG(e);
	if ((int64_t)now < e->not_before)
		return SC_ERR_NOT_YET_VALID;
	if ((int64_t)now > e->not_after)
		return SC_ERR_EXPIRED;
	if (crls && sc_crlset_check(crls, e->issuer, e->issuer_len, e->serial,
				    e->serial_len) != SC_OK)
		return SC_ERR_REVOKED;
	return SC_OK;
}

static sc_status make_key(const struct sc_addr *addr, char *key, size_t size, size_t *len)
{
	sc_status st = sc_addr_key(addr, key, size, len);

	/* SC_ADDR_KEY_MAX always fits: anything else is a caller's broken address. */
	return st == SC_OK ? SC_OK : SC_ERR_ARG;
}

/* Lookup state: the best usable entry seen so far (a view into backend storage,
 * valid until the backend's lookup returns, which is after the final call). */
struct pick {
	time_t now;
	const sc_crlset *crls;
	sc_repo_entry_fn fn;
	void *arg;
	struct sc_repo_entry best;
	int have;
	int finished;
};

/* The selection rule of repo.h (design.md "Several certificates per address"):
 * latest notBefore, then latest notAfter, then the larger fingerprint so that the
 * choice never depends on storage order. */
static int better(const struct sc_repo_entry *a, const struct sc_repo_entry *b)
{
	if (a->not_before != b->not_before)
		return a->not_before > b->not_before;
	if (a->not_after != b->not_after)
		return a->not_after > b->not_after;
	return memcmp(a->fingerprint, b->fingerprint, sizeof a->fingerprint) > 0;
}

static sc_status pick_visit(void *arg, const struct sc_repo_entry *e)
{
	struct pick *p = arg;

	if (!e) {
		p->finished = 1;
		return p->have ? p->fn(p->arg, &p->best) : SC_ERR_NOT_FOUND;
	}
	if (sc_repo_entry_usable(e, p->now, p->crls) != SC_OK)
		return SC_OK;
	if (!p->have || better(e, &p->best)) {
		p->best = *e;
		p->have = 1;
	}
	return SC_OK;
}

sc_status sc_repo_lookup(sc_repo *r, const struct sc_addr *addr, time_t now,
			 const sc_crlset *crls, sc_repo_entry_fn fn, void *arg)
{
	return sc_repo_lookup_ex(r, addr, now, crls, 0, fn, arg);
}

sc_status sc_repo_lookup_ex(sc_repo *r, const struct sc_addr *addr, time_t now,
			    const sc_crlset *crls, unsigned flags, sc_repo_entry_fn fn, void *arg)
{
	char key[SC_ADDR_KEY_MAX];
	size_t keylen;

	SC_ENSURE_ARG(addr);
	SC_TRY(make_key(addr, key, sizeof key, &keylen));
	return sc_repo_lookup_key(r, key, keylen, now, crls, flags, fn, arg);
}

sc_status sc_repo_lookup_key(sc_repo *r, const char *key, size_t keylen, time_t now,
			     const sc_crlset *crls, unsigned flags, sc_repo_entry_fn fn, void *arg)
{
	struct pick p = { .now = now, .crls = crls, .fn = fn, .arg = arg };
	char own[SC_ADDR_KEY_MAX];
	sc_status st;

	SC_ENSURE_ARG(r);
	SC_ENSURE_ARG(key);
	SC_ENSURE_ARG(fn);
	/* no key holds a NUL: a backend that passes keys as C strings (pgsql's
	 * text parameters) would look up what comes before it */
	SC_ENSURE(keylen > 0 && keylen < SC_ADDR_KEY_MAX && !memchr(key, '\0', keylen),
		  SC_ERR_ARG);
	SC_ENSURE(!(flags & ~(unsigned)SC_REPO_LOOKUP_LEAF), SC_ERR_ARG);
	/* backends may hand the key on as the entries' NUL-terminated key */
	memcpy(own, key, keylen);
	own[keylen] = '\0';
	key = own;
	repo_read_lock(r);
	if (flags && r->be->lookup_ex)
		st = r->be->lookup_ex(r->state, key, keylen, flags, pick_visit, &p);
	else
		st = r->be->lookup(r->state, key, keylen, pick_visit, &p);
	st = repo_read_end(r, st);
	if (st == SC_OK && !p.finished)
		return SC_ERR_INTERNAL; /* backend broke the final-call contract */
	return st;
}

struct passthru {
	sc_repo_entry_fn fn;
	void *arg;
};

static sc_status passthru_visit(void *arg, const struct sc_repo_entry *e)
{
	struct passthru *p = arg;

	return e ? p->fn(p->arg, e) : SC_OK;
}

sc_status sc_repo_entries(sc_repo *r, const struct sc_addr *addr, sc_repo_entry_fn fn,
			  void *arg)
{
	char key[SC_ADDR_KEY_MAX];
	size_t keylen;
	struct passthru p = { fn, arg };

	SC_ENSURE_ARG(r);
	SC_ENSURE_ARG(addr);
	SC_ENSURE_ARG(fn);
	SC_TRY(make_key(addr, key, sizeof key, &keylen));
	repo_read_lock(r);
	return repo_read_end(r, r->be->lookup(r->state, key, keylen, passthru_visit, &p));
}

sc_status sc_repo_store(sc_repo *r, const struct sc_addr *addr, const sc_cert *c)
{
	char key[SC_ADDR_KEY_MAX];
	size_t keylen;
	struct sc_repo_entry e;

	SC_ENSURE_ARG(r);
	SC_ENSURE_ARG(addr);
	SC_ENSURE_ARG(c);
	SC_ENSURE(!(r->flags & SC_REPO_RDONLY), SC_ERR_PERM);
	SC_TRY(make_key(addr, key, sizeof key, &keylen));
	sc_repo_entry_from_cert(c, &e);
	SC_ENSURE(e.n_der > 0 && e.issuer && e.serial, SC_ERR_ARG);
	e.key = key;
	e.key_len = keylen;
	e.added = (int64_t)time(NULL);
	pthread_mutex_lock(&r->lock);
	return repo_locked_end(r, r->be->store(r->state, key, keylen, &e));
}

/* Bulk import (repo.h): keys go into one allocation, entries point into it and
 * into the certificates, so the backend gets the whole batch at once. */
sc_status sc_repo_store_batch(sc_repo *r, const struct sc_addr *addrs,
			      const sc_cert *const *certs, size_t n, size_t *done)
{
	struct sc_repo_entry *e;
	char *keys;
	int64_t now = (int64_t)time(NULL);
	sc_status st = SC_OK;
	size_t i;

	if (done)
		*done = 0;
	SC_ENSURE_ARG(r);
	SC_ENSURE_ARG(n == 0 || (addrs && certs));
	SC_ENSURE(!(r->flags & SC_REPO_RDONLY), SC_ERR_PERM);
	if (n == 0)
		return SC_OK;
	SC_ENSURE(n <= SIZE_MAX / SC_ADDR_KEY_MAX && n <= SIZE_MAX / sizeof *e, SC_ERR_TOO_LONG);
	e = calloc(n, sizeof *e);
	keys = malloc(n * SC_ADDR_KEY_MAX);
	if (!e || !keys) {
		free(e);
		free(keys);
		return SC_ERR_NOMEM;
	}
	for (i = 0; i < n && st == SC_OK; i++) {
		char *key = keys + i * SC_ADDR_KEY_MAX;
		size_t keylen;

		st = certs[i] ? make_key(&addrs[i], key, SC_ADDR_KEY_MAX, &keylen) : SC_ERR_ARG;
		if (st != SC_OK)
			break;
		sc_repo_entry_from_cert(certs[i], &e[i]); /* clears the key fields */
		if (e[i].n_der == 0 || !e[i].issuer || !e[i].serial)
			st = SC_ERR_ARG;
		e[i].key = key;
		e[i].key_len = keylen;
		e[i].added = now;
	}
	pthread_mutex_lock(&r->lock);
	if (st == SC_OK && r->be->store_batch) {
		st = r->be->store_batch(r->state, e, n);
		if (st == SC_OK && done)
			*done = n;
	} else if (st == SC_OK) {
		for (i = 0; i < n && st == SC_OK; i++) {
			st = r->be->store(r->state, e[i].key, e[i].key_len, &e[i]);
			if (st == SC_OK && done)
				*done = i + 1;
		}
	}
	pthread_mutex_unlock(&r->lock);
	free(e);
	free(keys);
	return st;
}

sc_status sc_repo_remove(sc_repo *r, const struct sc_addr *addr, const uint8_t *fingerprint,
			 size_t *removed)
{
	char key[SC_ADDR_KEY_MAX];
	size_t keylen, n = 0;
	sc_status st;

	if (removed)
		*removed = 0;
	SC_ENSURE_ARG(r);
	SC_ENSURE_ARG(addr);
	SC_ENSURE(!(r->flags & SC_REPO_RDONLY), SC_ERR_PERM);
	SC_TRY(make_key(addr, key, sizeof key, &keylen));
	pthread_mutex_lock(&r->lock);
	st = repo_locked_end(r, r->be->remove(r->state, key, keylen, fingerprint, &n));
	if (removed)
		*removed = n;
	if (st == SC_OK && n == 0)
		st = SC_ERR_NOT_FOUND;
	return st;
}

sc_status sc_repo_list(sc_repo *r, sc_repo_entry_fn fn, void *arg)
{
	SC_ENSURE_ARG(r);
	SC_ENSURE_ARG(fn);
	repo_read_lock(r);
	return repo_read_end(r, r->be->list(r->state, fn, arg));
}
