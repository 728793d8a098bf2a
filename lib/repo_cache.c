/*
 * repo_cache.c - the answer cache of remote repository backends (repo_cache.h):
 * a hash table of answers by key, plus a list in insertion order for eviction of
 * the oldest (expired ones are dropped when met). One answer is one allocation
 * holding the entries and copies of everything they point at; readers hold a
 * reference, so an answer evicted while a lookup replays it is freed by the last
 * reader and the cache's lock is never held during a visitor. Runs in the
 * daemon's worker threads (and the admin CLI, where it is off).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo_cache.h"
#include "repo_backend.h"

struct cache_rec {
	struct cache_rec *hnext;       /* hash chain */
	struct cache_rec *older, *newer;
	unsigned refs;                 /* the cache's (while linked) + readers' */
	int linked;
	time_t at;
	size_t bytes;                  /* the whole allocation */
	uint32_t hash;
	char *key;
	size_t keylen;
	size_t n;
	struct sc_repo_entry e[];      /* then the key and the copies */
};

struct sc_repo_cache {
	pthread_mutex_t lock;
	unsigned ttl;
	size_t max_keys, max_bytes;
	size_t nkeys, bytes;
	size_t nbuckets;               /* a power of two */
	struct cache_rec **bucket;
	struct cache_rec *oldest, *newest;
};

/* FNV-1a: keys are addresses chosen by peers, but a bucket's length is bounded
 * by max_keys anyway, so a collision flood costs time linear in the cache only. */
static uint32_t cache_hash(const char *k, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h;
}

sc_status sc_repo_cache_new(unsigned ttl, size_t max_keys, size_t max_bytes,
			    struct sc_repo_cache **out)
{
	struct sc_repo_cache *c;

	SC_ENSURE_ARG(out);
	*out = NULL;
	SC_ENSURE_ARG(ttl > 0);
	c = calloc(1, sizeof *c);
	if (!c)
		return SC_ERR_NOMEM;
	c->ttl = ttl;
	c->max_keys = max_keys ? max_keys : SC_REPO_CACHE_KEYS;
	c->max_bytes = max_bytes ? max_bytes : SC_REPO_CACHE_BYTES;
	c->nbuckets = 16;
	while (c->nbuckets < c->max_keys && c->nbuckets < ((size_t)1 << 20))
		c->nbuckets *= 2;
	c->bucket = calloc(c->nbuckets, sizeof *c->bucket);
	if (!c->bucket) {
		free(c);
		return SC_ERR_NOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return SC_OK;
}

static void cache_release(struct cache_rec *r)
{
	if (--r->refs == 0)
		free(r);
}

/* Take @p r out of the table and the age list. Called with the lock held. */
static void cache_unlink(struct sc_repo_cache *c, struct cache_rec *r)
{
	struct cache_rec **pp = &c->bucket[r->hash & (c->nbuckets - 1)];

	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
	if (r->older)
		r->older->newer = r->newer;
	else
		c->oldest = r->newer;
	if (r->newer)
		r->newer->older = r->older;
	else
		c->newest = r->older;
	r->linked = 0;
	c->nkeys--;
	c->bytes -= r->bytes;
	cache_release(r);
}

void sc_repo_cache_free(struct sc_repo_cache *c)
{
	if (!c)
		return;
	while (c->oldest)
		cache_unlink(c, c->oldest);
	pthread_mutex_destroy(&c->lock);
	free(c->bucket);
	free(c);
}

static struct cache_rec *cache_find(struct sc_repo_cache *c, const char *key, size_t keylen,
				    uint32_t h)
{
	for (struct cache_rec *r = c->bucket[h & (c->nbuckets - 1)]; r; r = r->hnext)
		if (r->hash == h && r->keylen == keylen && !memcmp(r->key, key, keylen))
			return r;
	return NULL;
}

int sc_repo_cache_answer(struct sc_repo_cache *c, const char *key, size_t keylen, time_t now,
			 sc_repo_entry_fn visit, void *arg, sc_status *st)
{
	uint32_t h = cache_hash(key, keylen);
	struct cache_rec *r;
	sc_status s = SC_OK;

	if (!c || !visit || !st)
		return 0;
	pthread_mutex_lock(&c->lock);
	r = cache_find(c, key, keylen, h);
	if (r && (now < r->at || now - r->at >= (time_t)c->ttl)) {
		cache_unlink(c, r); /* expired (or the clock went back): ask again */
		r = NULL;
	}
	if (r)
		r->refs++;
	pthread_mutex_unlock(&c->lock);
	if (!r)
		return 0;
	for (size_t i = 0; s == SC_OK && i < r->n; i++)
		s = visit(arg, &r->e[i]);
	if (s == SC_OK)
		s = visit(arg, NULL);
	pthread_mutex_lock(&c->lock);
	cache_release(r);
	pthread_mutex_unlock(&c->lock);
	*st = s;
	return 1;
}

/* Bytes of one answer's allocation; 0 when it overflows. */
static size_t cache_rec_size(size_t keylen, const struct sc_repo_entry *e, size_t n)
{
	size_t sz = sizeof(struct cache_rec) + n * sizeof *e + keylen + 1;

	for (size_t i = 0; i < n; i++) {
		if (e[i].n_der > SC_CHAIN_MAX)
			return 0;
		for (size_t j = 0; j < e[i].n_der; j++)
			sz += e[i].der_len[j];
		sz += e[i].issuer_len + e[i].serial_len;
	}
	return sz;
}

static uint8_t *cache_copy(uint8_t *w, const uint8_t *src, size_t len, const uint8_t **dst)
{
	*dst = len ? w : NULL;
	if (len)
		memcpy(w, src, len);
	return w + len;
}

/* One allocation: the record, the entries, the key, then the copied bytes. */
static struct cache_rec *cache_rec_make(const char *key, size_t keylen,
					const struct sc_repo_entry *e, size_t n, size_t sz)
{
	struct cache_rec *r = malloc(sz);
	uint8_t *w;

	if (!r)
		return NULL;
	memset(r, 0, sizeof *r);
	r->bytes = sz;
	r->n = n;
	r->key = (char *)&r->e[n];
	memcpy(r->key, key, keylen);
	r->key[keylen] = '\0';
	r->keylen = keylen;
	w = (uint8_t *)r->key + keylen + 1;
	for (size_t i = 0; i < n; i++) {
		struct sc_repo_entry *d = &r->e[i];

		*d = e[i];
		d->key = r->key;
		d->key_len = keylen;
		for (size_t j = 0; j < e[i].n_der; j++)
			w = cache_copy(w, e[i].der[j], e[i].der_len[j], &d->der[j]);
		for (size_t j = e[i].n_der; j < SC_CHAIN_MAX; j++) {
			d->der[j] = NULL;
			d->der_len[j] = 0;
		}
		w = cache_copy(w, e[i].issuer, e[i].issuer_len, &d->issuer);
		w = cache_copy(w, e[i].serial, e[i].serial_len, &d->serial);
	}
	return r;
}

sc_status sc_repo_cache_put(struct sc_repo_cache *c, const char *key, size_t keylen,
			    time_t now, const struct sc_repo_entry *e, size_t n)
{
	struct cache_rec *r, *old;
	size_t sz;

	SC_ENSURE_ARG(c && key && (e || n == 0));
	if (n > SC_REPO_ENTRIES_MAX)
		return SC_ERR_TOO_LONG;
	sz = cache_rec_size(keylen, e, n);
	if (sz == 0 || sz > c->max_bytes)
		return SC_ERR_TOO_LONG;
	r = cache_rec_make(key, keylen, e, n, sz);
	if (!r)
		return SC_ERR_NOMEM;
	r->at = now;
	r->hash = cache_hash(key, keylen);
	r->refs = 1;
	pthread_mutex_lock(&c->lock);
	old = cache_find(c, key, keylen, r->hash);
	if (old)
		cache_unlink(c, old);
	/* the oldest answers make room; the bounds hold after every put */
	while (c->oldest && (c->nkeys + 1 > c->max_keys || c->bytes + sz > c->max_bytes))
		cache_unlink(c, c->oldest);
	r->hnext = c->bucket[r->hash & (c->nbuckets - 1)];
	c->bucket[r->hash & (c->nbuckets - 1)] = r;
	r->older = c->newest;
	if (c->newest)
		c->newest->newer = r;
	else
		c->oldest = r;
	c->newest = r;
	r->linked = 1;
	c->nkeys++;
	c->bytes += sz;
	pthread_mutex_unlock(&c->lock);
	return SC_OK;
}

void sc_repo_cache_usage(struct sc_repo_cache *c, size_t *keys, size_t *bytes)
{
	pthread_mutex_lock(&c->lock);
	if (keys)
		*keys = c->nkeys;
	if (bytes)
		*bytes = c->bytes;
	pthread_mutex_unlock(&c->lock);
}
