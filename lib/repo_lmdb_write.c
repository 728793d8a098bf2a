/*
 * repo_lmdb_write.c - the writing half of the lmdb: backend (layout in
 * repo_lmdb.h): store, batch store, remove, the reference-counted chain
 * certificates, and the conversion of a format 1 store. Runs in the admin CLI
 * (and bench/mkrepo), never in the daemon, which opens stores read-only.
 *
 * Each write is a read-modify-write of one address's entry list inside one LMDB
 * transaction, so a concurrent reader sees the list before or after it. Chain
 * certificates are stored once under their SHA-256 with a count of the entries
 * that name them: storing takes a reference first and replacing or removing an
 * entry gives its references back, so a certificate shared by a million
 * addresses is written once and goes with the last of them.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "record.h"
#include "repo_lmdb.h"

/* Chain fingerprints of the last certificates seen: a batch passes the same
 * certificate for many addresses, and hashing its chain again each time would
 * cost more than storing the entry. Keyed by the DER's address and length, which
 * stay valid and unchanged during one store call. */
struct fp_cache {
	const uint8_t *der[SC_CHAIN_MAX];
	size_t len[SC_CHAIN_MAX];
	uint8_t fp[SC_CHAIN_MAX][LMDB_FP_LEN];
};

static sc_status chain_fp(struct fp_cache *fc, size_t i, const uint8_t *der, size_t len,
			  uint8_t fp[LMDB_FP_LEN])
{
	if (fc->der[i] != der || fc->len[i] != len) {
		if (!EVP_Digest(der, len, fc->fp[i], NULL, EVP_sha256(), NULL)) {
			fc->der[i] = NULL;
			return SC_ERR_CRYPTO;
		}
		fc->der[i] = der;
		fc->len[i] = len;
	}
	memcpy(fp, fc->fp[i], LMDB_FP_LEN);
	return SC_OK;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Take a reference on chain certificate @p fp, storing @p der when it is new. */
static int chain_ref(struct lmdb_state *s, MDB_txn *txn, const uint8_t *fp,
		     const uint8_t *der, size_t len)
{
	MDB_val k = { LMDB_FP_LEN, (void *)fp }, v;
	uint8_t cnt[8];
	uint64_t n = 0;
	int rc = mdb_get(txn, s->refs, &k, &v);

	if (rc == MDB_SUCCESS && v.mv_size == sizeof cnt)
		n = get_u64(v.mv_data);
	else if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return rc;
	if (n == 0) {
		MDB_val d = { len, (void *)der };

		rc = mdb_put(txn, s->chains, &k, &d, 0);
		if (rc != MDB_SUCCESS)
			return rc;
	}
	put_u64(cnt, n + 1);
	v.mv_size = sizeof cnt;
	v.mv_data = cnt;
	return mdb_put(txn, s->refs, &k, &v, 0);
}

/* Give back a reference; the certificate goes with the last one. */
static int chain_unref(struct lmdb_state *s, MDB_txn *txn, const uint8_t *fp)
{
	MDB_val k = { LMDB_FP_LEN, (void *)fp }, v;
	uint8_t cnt[8];
	uint64_t n = 0;
	int rc = mdb_get(txn, s->refs, &k, &v);

	if (rc == MDB_NOTFOUND)
		return MDB_SUCCESS; /* already gone: nothing to give back */
	if (rc != MDB_SUCCESS)
		return rc;
	if (v.mv_size == sizeof cnt)
		n = get_u64(v.mv_data);
	if (n <= 1) {
		rc = mdb_del(txn, s->refs, &k, NULL);
		if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND)
			rc = mdb_del(txn, s->chains, &k, NULL);
		return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
	}
	put_u64(cnt, n - 1);
	v.mv_size = sizeof cnt;
	v.mv_data = cnt;
	return mdb_put(txn, s->refs, &k, &v, 0);
}

/* The references an (old) entry holds, copied out of the map before it changes. */
static size_t entry_refs(struct lmdb_span sp, uint8_t fps[SC_CHAIN_MAX][LMDB_FP_LEN])
{
	size_t n = sp.len >= 1 ? sp.p[0] : 0;

	if (n >= SC_CHAIN_MAX || sp.len < 1 + n * LMDB_FP_LEN)
		return 0; /* corrupt: holds nothing we can give back */
	for (size_t i = 0; i < n; i++)
		memcpy(fps[i], sp.p + 1 + i * LMDB_FP_LEN, LMDB_FP_LEN);
	return n;
}

/* The leaf fingerprint of an entry (in its record), or NULL when too short. */
static const uint8_t *entry_leaf_fp(struct lmdb_span sp)
{
	size_t off = sp.len >= 1 ? 1 + (size_t)sp.p[0] * LMDB_FP_LEN : 0;

	/* the record's fingerprint follows magic, version, flags and three i64 */
	off += 1 + 1 + 2 + 8 + 8 + 8;
	return sp.len >= off + LMDB_FP_LEN ? sp.p + off : NULL;
}

static sc_status wbuf_reserve(struct lmdb_state *s, size_t size)
{
	uint8_t *p;

	if (size <= s->wbuf_size)
		return SC_OK;
	p = realloc(s->wbuf, size);
	if (!p)
		return SC_ERR_NOMEM;
	s->wbuf = p;
	s->wbuf_size = size;
	return SC_OK;
}

/* Write @p n spans, with @p add (may be NULL) inserted in fingerprint order, as the
 * entry list of @p k; an empty list deletes the key. @p add's bytes are built in
 * place by the caller at s->wbuf + the offset returned by list_layout(). */
static int list_put(struct lmdb_state *s, MDB_txn *txn, MDB_val *k, const uint8_t *buf,
		    size_t len)
{
	MDB_val v = { len, (void *)buf };

	if (len == 1 && buf[0] == 0) {
		int rc = mdb_del(txn, s->entries, k, NULL);

		return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
	}
	return mdb_put(txn, s->entries, k, &v, 0);
}

/* Append one framed entry to @p out at *@p off. */
static void frame(uint8_t *out, size_t *off, const uint8_t *p, size_t len)
{
	put_u32(out + *off, (uint32_t)len);
	memcpy(out + *off + 4, p, len);
	*off += 4 + len;
}

/* Store @p e under @p key (NUL-terminated, @p keylen without it) inside @p txn:
 * replace the entry with the same leaf, or add one (SC_ERR_TOO_MANY past
 * SC_REPO_ENTRIES_MAX); the chain goes to "chains" by reference. */
static int put_entry(struct lmdb_state *s, MDB_txn *txn, const char *key, size_t keylen,
		     const struct sc_repo_entry *e, struct fp_cache *fc, sc_status *st)
{
	MDB_val k = { keylen + 1, (void *)key }, v;
	struct lmdb_span sp[SC_REPO_ENTRIES_MAX];
	struct sc_repo_entry leaf = *e;
	uint8_t fps[SC_CHAIN_MAX][LMDB_FP_LEN], old[SC_CHAIN_MAX][LMDB_FP_LEN];
	size_t nchain = e->n_der - 1, nold = 0, reclen, elen, total, off = 1, eoff;
	int n = 0, replace = -1, rc;
	uint8_t *ent, count = 0;

	if (keylen + 1 > LMDB_KEY_MAX || e->n_der < 1 || e->n_der > SC_CHAIN_MAX) {
		*st = SC_ERR_TOO_LONG;
		return MDB_SUCCESS;
	}
	leaf.n_der = 1;
	reclen = sc_record_size(&leaf);
	if (reclen == 0) {
		*st = SC_ERR_TOO_LONG;
		return MDB_SUCCESS;
	}
	for (size_t i = 0; i < nchain; i++) {
		if (e->der_len[1 + i] == 0 || e->der_len[1 + i] > SC_CERT_INPUT_MAX) {
			*st = SC_ERR_TOO_LONG;
			return MDB_SUCCESS;
		}
		*st = chain_fp(fc, i, e->der[1 + i], e->der_len[1 + i], fps[i]);
		if (*st != SC_OK)
			return MDB_SUCCESS;
	}
	elen = 1 + nchain * LMDB_FP_LEN + reclen;

	rc = mdb_get(txn, s->entries, &k, &v);
	if (rc == MDB_SUCCESS) {
		n = lmdb_list_split(v.mv_data, v.mv_size, sp);
		if (n < 0) {
			/* never silently drop what an administrator stored */
			sc_repo_warn(s->r, "lmdb:%s: %s: corrupt entry list, not replaced",
				     s->path, key);
			*st = SC_ERR_IO;
			return MDB_SUCCESS;
		}
	} else if (rc != MDB_NOTFOUND) {
		return rc;
	}
	total = 1 + 4 + elen;
	for (int i = 0; i < n; i++) {
		const uint8_t *fp = entry_leaf_fp(sp[i]);

		if (fp && !memcmp(fp, e->fingerprint, LMDB_FP_LEN))
			replace = i;
		else
			total += 4 + sp[i].len;
	}
	if (replace < 0 && n >= SC_REPO_ENTRIES_MAX) {
		*st = SC_ERR_TOO_MANY;
		return MDB_SUCCESS;
	}
	*st = wbuf_reserve(s, total);
	if (*st != SC_OK)
		return MDB_SUCCESS;
	if (replace >= 0)
		nold = entry_refs(sp[replace], old);
	/* the new list, in leaf-fingerprint order, built before any write moves
	 * the old value (sp[] points into the map) */
	eoff = 0;
	for (int i = 0; i <= n; i++) {
		const uint8_t *fp = i < n ? entry_leaf_fp(sp[i]) : NULL;

		if (!eoff && (i == n || !fp || memcmp(fp, e->fingerprint, LMDB_FP_LEN) > 0)) {
			/* reserve the new entry's slot here; encoded below */
			put_u32(s->wbuf + off, (uint32_t)elen);
			eoff = off + 4;
			off = eoff + elen;
			count++;
		}
		if (i < n && i != replace) {
			frame(s->wbuf, &off, sp[i].p, sp[i].len);
			count++;
		}
	}
	s->wbuf[0] = count;
	ent = s->wbuf + eoff;
	ent[0] = (uint8_t)nchain;
	for (size_t i = 0; i < nchain; i++)
		memcpy(ent + 1 + i * LMDB_FP_LEN, fps[i], LMDB_FP_LEN);
	*st = sc_record_encode(&leaf, ent + 1 + nchain * LMDB_FP_LEN, reclen, NULL);
	if (*st != SC_OK)
		return MDB_SUCCESS;
	/* new references first: a chain kept by the replacement never hits 0 */
	for (size_t i = 0; i < nchain; i++) {
		rc = chain_ref(s, txn, fps[i], e->der[1 + i], e->der_len[1 + i]);
		if (rc != MDB_SUCCESS)
			return rc;
	}
	for (size_t i = 0; i < nold; i++) {
		rc = chain_unref(s, txn, old[i]);
		if (rc != MDB_SUCCESS)
			return rc;
	}
	return list_put(s, txn, &k, s->wbuf, off);
}

struct store_ctx {
	const char *key;
	size_t keylen;
	const struct sc_repo_entry *e;
	size_t n;
	struct fp_cache fc;
};

static int store_fn(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st)
{
	struct store_ctx *c = ctx;

	return put_entry(s, txn, c->key, c->keylen, c->e, &c->fc, st);
}

/* Every entry of the batch in one transaction; on MDB_MAP_FULL lmdb_write_txn()
 * grows the map and runs this again from the first entry. */
static int batch_fn(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st)
{
	struct store_ctx *c = ctx;

	for (size_t i = 0; i < c->n; i++) {
		const struct sc_repo_entry *e = &c->e[i];
		int rc = put_entry(s, txn, e->key, e->key_len, e, &c->fc, st);

		if (rc != MDB_SUCCESS || *st != SC_OK)
			return rc;
	}
	return MDB_SUCCESS;
}

sc_status lmdb_store_batch(void *state, const struct sc_repo_entry *e, size_t n)
{
	struct lmdb_state *s = state;
	struct store_ctx c = { .e = e, .n = n };

	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	return lmdb_write_txn(s, batch_fn, &c, "store");
}

sc_status lmdb_store(void *state, const char *key, size_t keylen,
		     const struct sc_repo_entry *e)
{
	struct lmdb_state *s = state;
	struct store_ctx c = { .key = key, .keylen = keylen, .e = e };

	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	if (keylen + 1 > LMDB_KEY_MAX)
		return SC_ERR_TOO_LONG;
	return lmdb_write_txn(s, store_fn, &c, "store");
}

struct remove_ctx {
	const char *key;
	size_t keylen;
	const uint8_t *fp; /* NULL: all */
	size_t removed;
};

static int remove_fn(struct lmdb_state *s, MDB_txn *txn, void *ctx, sc_status *st)
{
	struct remove_ctx *c = ctx;
	MDB_val k = { c->keylen + 1, (void *)c->key }, v;
	struct lmdb_span sp[SC_REPO_ENTRIES_MAX];
	uint8_t refs[SC_REPO_ENTRIES_MAX][SC_CHAIN_MAX][LMDB_FP_LEN];
	size_t nrefs[SC_REPO_ENTRIES_MAX], off = 1;
	uint8_t count = 0;
	int n, rc;

	c->removed = 0; /* the transaction may be re-run after growing the map */
	rc = mdb_get(txn, s->entries, &k, &v);
	if (rc == MDB_NOTFOUND)
		return MDB_SUCCESS;
	if (rc != MDB_SUCCESS)
		return rc;
	n = lmdb_list_split(v.mv_data, v.mv_size, sp);
	if (n < 0) {
		if (c->fp) {
			*st = SC_ERR_IO; /* cannot find one entry in a broken list */
			return MDB_SUCCESS;
		}
		c->removed = 1; /* removing all: the broken list goes */
		return list_put(s, txn, &k, (const uint8_t *)"", 1);
	}
	*st = wbuf_reserve(s, v.mv_size);
	if (*st != SC_OK)
		return MDB_SUCCESS;
	for (int i = 0; i < n; i++) {
		const uint8_t *fp = entry_leaf_fp(sp[i]);

		if (!c->fp || (fp && !memcmp(fp, c->fp, LMDB_FP_LEN))) {
			nrefs[c->removed] = entry_refs(sp[i], refs[c->removed]);
			c->removed++;
		} else {
			frame(s->wbuf, &off, sp[i].p, sp[i].len);
			count++;
		}
	}
	if (c->removed == 0)
		return MDB_SUCCESS;
	s->wbuf[0] = count;
	for (size_t i = 0; i < c->removed; i++)
		for (size_t j = 0; j < nrefs[i]; j++) {
			rc = chain_unref(s, txn, refs[i][j]);
			if (rc != MDB_SUCCESS)
				return rc;
		}
	return list_put(s, txn, &k, s->wbuf, count ? off : 1);
}

sc_status lmdb_remove(void *state, const char *key, size_t keylen,
		      const uint8_t *fingerprint, size_t *removed)
{
	struct lmdb_state *s = state;
	struct remove_ctx c = { .key = key, .keylen = keylen, .fp = fingerprint };
	sc_status st;

	*removed = 0;
	if (s->flags & SC_REPO_RDONLY)
		return SC_ERR_PERM;
	if (keylen + 1 > LMDB_KEY_MAX)
		return SC_OK;
	st = lmdb_write_txn(s, remove_fn, &c, "remove");
	if (st == SC_OK)
		*removed = c.removed;
	return st;
}

int lmdb_migrate_v1(struct lmdb_state *s, MDB_txn *txn, size_t *n, sc_status *st)
{
	MDB_cursor *cur;
	MDB_val k, v, fk = { 6, "format" }, fv;
	struct fp_cache fc;
	uint8_t mark[4];
	int rc;

	memset(&fc, 0, sizeof fc);
	*n = 0; /* the transaction may be re-run after growing the map */
	rc = mdb_cursor_open(txn, s->v1certs, &cur);
	if (rc != MDB_SUCCESS)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char key[LMDB_KEY_MAX];
		const uint8_t *kp = k.mv_data;
		size_t keylen;
		struct sc_repo_entry e;

		/* format 1: "key\0" + leaf fingerprint -> record with the chain */
		if (k.mv_size < 2 + LMDB_FP_LEN || k.mv_size > LMDB_V1_KEY_MAX ||
		    kp[k.mv_size - LMDB_FP_LEN - 1] != '\0' ||
		    sc_record_decode(v.mv_data, v.mv_size, &e) != SC_OK) {
			sc_repo_warn(s->r, "lmdb:%s: format 1: corrupt record not converted",
				     s->path);
			continue;
		}
		keylen = k.mv_size - LMDB_FP_LEN - 1;
		memcpy(key, kp, keylen + 1);
		rc = put_entry(s, txn, key, keylen, &e, &fc, st);
		if (rc != MDB_SUCCESS || *st != SC_OK)
			break;
		++*n;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return rc;
	if (*st != SC_OK)
		return MDB_SUCCESS;
	rc = mdb_drop(txn, s->v1certs, 0); /* emptied, kept: see repo_lmdb.h */
	put_u32(mark, LMDB_FORMAT);
	fv.mv_size = sizeof mark;
	fv.mv_data = mark;
	if (rc == MDB_SUCCESS)
		rc = mdb_put(txn, s->meta, &fk, &fv, 0);
	return rc;
}
