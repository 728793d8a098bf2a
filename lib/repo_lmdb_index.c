/*
 * repo_lmdb_index.c - the lookup index of a read-only lmdb: handle (the daemon's):
 * a hash table in anonymous memory from each key of "entries" to its entry list,
 * pointing into one read snapshot that stays open as long as the index lives.
 *
 * Why: a CERT over a large store walks four B-tree levels, and with a million
 * addresses the lower two are a cache miss each, plus one per node the binary
 * search looks at. On the machines we measured (docs/performance.md) a miss
 * costs about 400 ns, so the walk cost more than everything else a CERT does.
 * Through the index a lookup is one miss for the slot and one for the key and
 * entry list, and sc_repo_prefetch() lets pipelined CERTs overlap even those.
 *
 * Never stale: the index is used only while its snapshot is the latest commit
 * (lmdb_index_current(), one read of the meta page per lookup); after any write
 * lookups go to the B-tree again and the index is dropped at once, releasing
 * its snapshot so that writers can reuse pages. A new one is built by
 * sc_repo_index_refresh() on a thread of the caller's choosing (the daemon's
 * index thread), while lookups go on: building reads the whole store (about
 * 1 s per million addresses here).
 *
 * Memory: 24 bytes per slot, 1.5 slots per address (36 MB per million).
 *
 * Copies: with a copy limit (sc_repo_index_copy_limit(); the daemon's
 * repository_index_copy) the build also copies each key and entry list into
 * anonymous memory of its own, huge pages where the kernel gives them, until
 * the limit is spent; a slot then points at its copy and a lookup through the
 * index reads no page of the map. Why: on the machine of docs/performance.md
 * a random read of a 4 KiB page of a large file map cost up to several
 * microseconds in some minutes (the hypervisor, not the cache: the same read
 * in huge pages stayed near 50 ns), which halved the CERT rate over a million
 * addresses. The copy is of the same snapshot, so it is exactly as current.
 *
 * Reserved huge pages (sc_repo_index_huge_pages()): the slots and the copies
 * may come from the kernel's 2 MiB pool (MAP_HUGETLB) instead of transparent
 * huge pages. Why: pool pages are on no LRU list, so whatever samples or
 * reclaims memory by physical page (DAMON's paddr operations, idle page
 * tracking, khugepaged, compaction) passes them by. On the machine of
 * docs/performance.md the kernel's DAMON sampled 9.6 GiB of physical memory
 * every 500 ms, and each pass (one each 512 ms, as observed) cost the lookups
 * through a transparent-huge-page index about 10 ms of stalled memory reads,
 * which set the p99 latency at 256 x 16. The pool is asked for 2 MiB pages by
 * name, so that every length unmapped is a known multiple; mmap() reserves them
 * at once (no MAP_NORESERVE, which would turn a short pool into SIGBUS at the
 * first touch), and a short pool is ordinary memory. The table and the copies
 * are each in the pool whole or not at all.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "repo_lmdb.h"

/* Addresses per check of the cancel flag while building (see lmdb_map_adopt()). */
#define INDEX_CANCEL_EVERY 4096
/* Copies start on this boundary, as LMDB's values start on an even one. */
#define INDEX_COPY_ALIGN 8
/* The unused end of the copies' memory is given back in these units, so that
 * little is kept beyond what the copies use and the pages given back are
 * mostly whole huge pages (x86-64 and arm64 with 4 KiB pages). */
#define INDEX_COPY_TRIM (2u << 20)
/* How much of an entry list a prefetch asks for: its header and a leaf of
 * usual size (an RSA-2048 leaf is about 1.2 KB of DER). A CERT reads all of
 * it; the rest (a CERS's chain) the hardware follows on to. */
#define INDEX_PREFETCH_BYTES 2048u
/* The size of the reserved huge pages asked for (MAP_HUGE_2MB). */
#define INDEX_HUGE_PAGE (2u << 20)
_Static_assert(INDEX_COPY_TRIM % INDEX_HUGE_PAGE == 0,
	       "copies_trim() unmaps pool memory in whole pages");
/* glibc has the shift but not the sizes of <linux/mman.h>: log2 of the size */
#if defined(MAP_HUGETLB) && defined(MAP_HUGE_SHIFT) && !defined(MAP_HUGE_2MB)
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

struct lmdb_slot {
	const uint8_t *key; /* NUL-terminated, in the map or the copies; NULL = empty */
	const uint8_t *val;
	uint32_t vlen;
	uint16_t klen;      /* without the NUL */
	uint16_t tag;       /* high bits of the hash: most probes never touch the key */
};

struct lmdb_index {
	struct lmdb_index *next_dead; /* dropped, on lmdb_state.dead */
	MDB_txn *txn;       /* the snapshot every pointer points into */
	size_t txnid;
	struct lmdb_slot *slots;
	size_t cap, n, bytes;
	size_t slots_map;   /* bytes mapped at slots (bytes, or whole huge pages) */
	int slots_pool;     /* slots and copies: in reserved huge pages (index_map()) */
	int copies_pool;
	uint64_t seed;
	uint8_t *copies;    /* keys and entry lists copied out of the map, or NULL */
	size_t copies_map;  /* bytes mapped at copies */
	size_t copies_room; /* of them, what the copies may fill (the limit) */
	size_t copies_used; /* bytes filled */
};

/* A seeded 64-bit hash; keys are short (about 30 octets). The seed is random
 * per index so that nobody can choose addresses that collide. */
static uint64_t index_hash(uint64_t seed, const char *p, size_t n)
{
	const uint64_t m = 0x9e3779b97f4a7c15ull;
	uint64_t h = seed ^ (n * m);

	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = (h ^ w) * m;
		h ^= h >> 29;
	}
	if (n) {
		uint64_t w = 0;

		memcpy(&w, p, n);
		h = (h ^ w) * m;
	}
	/* final mix (MurmurHash3's fmix64): every input bit reaches the top bits */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* First slot to probe: the low 32 bits scaled to the table (no power of two needed). */
static size_t index_home(const struct lmdb_index *ix, uint64_t h)
{
	return (size_t)(((h & 0xffffffffu) * (uint64_t)ix->cap) >> 32);
}

static uint16_t index_tag(uint64_t h)
{
	return (uint16_t)(h >> 48);
}

static const struct lmdb_slot *index_find(const struct lmdb_index *ix, const char *key,
					  size_t keylen)
{
	uint64_t h = index_hash(ix->seed, key, keylen);
	uint16_t tag = index_tag(h);

	/* at most 2/3 full, so an empty slot always ends the probe */
	for (size_t i = index_home(ix, h);; i = i + 1 == ix->cap ? 0 : i + 1) {
		const struct lmdb_slot *sl = &ix->slots[i];

		if (!sl->key)
			return NULL;
		if (sl->tag == tag && sl->klen == keylen && memcmp(sl->key, key, keylen) == 0)
			return sl;
	}
}

static void index_free(struct lmdb_index *ix)
{
	if (!ix)
		return;
	if (ix->txn)
		mdb_txn_abort(ix->txn);
	if (ix->slots)
		munmap(ix->slots, ix->slots_map);
	if (ix->copies)
		munmap(ix->copies, ix->copies_map);
	free(ix);
}

/* The snapshot goes at once, so that writers may reuse its pages; the memory,
 * up to gigabytes of copies, is unmapped later by whoever calls
 * lmdb_index_free_dead() without the lock (sc_repo_index_refresh(), off the
 * thread whose lookup found the index stale: the daemon's event loop). */
static void index_retire(struct lmdb_state *s, struct lmdb_index *ix)
{
	if (ix->txn)
		mdb_txn_abort(ix->txn);
	ix->txn = NULL;
	s->dead_copies += ix->copies_used;
	ix->next_dead = s->dead;
	s->dead = ix;
}

void lmdb_index_drop(struct lmdb_state *s)
{
	if (s->idx)
		index_retire(s, s->idx);
	s->idx = NULL;
}

struct lmdb_index *lmdb_index_detach_dead(struct lmdb_state *s)
{
	struct lmdb_index *dead = s->dead;

	s->dead = NULL;
	s->dead_copies = 0;
	return dead;
}

void lmdb_index_free_dead(struct lmdb_index *dead)
{
	while (dead) {
		struct lmdb_index *next = dead->next_dead;

		index_free(dead);
		dead = next;
	}
}

/* The id of the latest commit, what a read transaction begun now would see. */
static size_t last_txnid(struct lmdb_state *s)
{
	MDB_envinfo info;

	if (mdb_env_info(s->env, &info) != MDB_SUCCESS)
		return 0; /* cannot happen for an open environment; 0 is never current */
	return info.me_last_txnid;
}

int lmdb_index_current(struct lmdb_state *s)
{
	return s->idx && s->idx->txnid == last_txnid(s);
}

sc_status lmdb_index_get(struct lmdb_state *s, const char *key, size_t keylen,
			 MDB_val *val)
{
	const struct lmdb_slot *sl = index_find(s->idx, key, keylen);

	if (!sl)
		return SC_ERR_NOT_FOUND;
	val->mv_data = (void *)sl->val;
	val->mv_size = sl->vlen;
	return SC_OK;
}

void lmdb_index_cancel(struct lmdb_state *s)
{
	__atomic_store_n(&s->index_closing, 1, __ATOMIC_RELEASE);
}

MDB_txn *lmdb_index_txn(const struct lmdb_state *s)
{
	return s->idx ? s->idx->txn : NULL;
}

size_t lmdb_index_size(const struct lmdb_state *s, size_t *bytes, size_t *copy_bytes,
		       size_t *huge_bytes)
{
	if (huge_bytes) /* of *bytes: all of it when the pool held everything */
		*huge_bytes = !s->idx ? 0 :
			      (s->idx->slots_pool ? s->idx->bytes : 0) +
				      (s->idx->copies_pool ? s->idx->copies_used : 0);
	if (bytes)
		*bytes = s->idx ? s->idx->bytes + s->idx->copies_used : 0;
	if (copy_bytes) /* the dropped ones' too: their memory is still taken */
		*copy_bytes = (s->idx ? s->idx->copies_used : 0) + s->dead_copies;
	return s->idx ? s->idx->n : 0;
}

void lmdb_index_prefetch(struct lmdb_state *s, const char *const keys[],
			 const size_t lens[], size_t n)
{
	const struct lmdb_index *ix = s->idx;
	uint64_t h[SC_REPO_PREFETCH_MAX];
	unsigned sink = 0;

	if (!ix || n > SC_REPO_PREFETCH_MAX)
		return; /* no index: nothing to load ahead */
	/* Two rounds so that the misses of all keys overlap: first every slot,
	 * then, the slots having arrived meanwhile, every key and entry list. */
	for (size_t i = 0; i < n; i++) {
		h[i] = index_hash(ix->seed, keys[i], lens[i]);
		__builtin_prefetch(&ix->slots[index_home(ix, h[i])]);
	}
	for (size_t i = 0; i < n; i++) {
		size_t j = index_home(ix, h[i]);
		uint16_t tag = index_tag(h[i]);

		/* by the tag alone, a few slots on: a third of the keys were moved on
		 * by a collision (linear probing at 2/3 load) */
		for (int k = 0; k < 4; k++, j = j + 1 == ix->cap ? 0 : j + 1) {
			const struct lmdb_slot *sl = &ix->slots[j];

			if (!sl->key)
				break;
			if (sl->tag == tag && sl->klen == lens[i]) {
				/* A load, not a prefetch instruction: on the machine
				 * of docs/performance.md prefetches into the map hid
				 * nothing (the key compare still missed), while
				 * independent loads do overlap. The rest of the entry
				 * list, as far as a leaf usually goes: prefetches. In
				 * the copies (huge pages) this took 8-13% of the CPU
				 * per CERT at 256 x 16 off the PEM encoder, which had
				 * waited for each line of the DER in turn; with 256
				 * bytes the hardware had not followed on. */
				sink += *(const volatile uint8_t *)sl->key;
				for (uint32_t o = 64; o < sl->vlen && o < INDEX_PREFETCH_BYTES;
				     o += 64)
					__builtin_prefetch(sl->val + o);
				break;
			}
		}
	}
	(void)sink;
}

/* Anonymous memory, zeroed, in huge pages where the kernel gives them (every
 * lookup lands on a random place in it): reserved ones first when @p huge and
 * the pool has enough free, else transparent ones. *@p mapped gets the length
 * to unmap. NULL when there is none. */
static void *index_map(size_t len, int flags, int huge, size_t *mapped, int *in_pool)
{
	void *p;

	*in_pool = 0;
#if defined(MAP_HUGETLB) && defined(MAP_HUGE_2MB)
	if (huge && len <= SIZE_MAX - INDEX_HUGE_PAGE) {
		size_t whole = (len + INDEX_HUGE_PAGE - 1) / INDEX_HUGE_PAGE * INDEX_HUGE_PAGE;

		p = mmap(NULL, whole, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB |
				 (flags & ~MAP_NORESERVE), -1, 0);
		if (p != MAP_FAILED) {
			*mapped = whole;
			*in_pool = 1;
			return p;
		}
	}
#else
	(void)huge;
#endif
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, len, MADV_HUGEPAGE);
#endif
	*mapped = len;
	return p;
}

static sc_status index_alloc(struct lmdb_index *ix, size_t entries, int huge)
{
	size_t cap = entries + entries / 2 + 16;

	if (cap > UINT32_MAX || cap > SIZE_MAX / sizeof *ix->slots)
		return SC_ERR_TOO_LONG;
	ix->cap = cap;
	ix->bytes = cap * sizeof *ix->slots;
	/* zeroed: every slot empty */
	ix->slots = index_map(ix->bytes, 0, huge, &ix->slots_map, &ix->slots_pool);
	if (!ix->slots)
		return SC_ERR_NOMEM;
	if (getrandom(&ix->seed, sizeof ix->seed, 0) != (ssize_t)sizeof ix->seed)
		ix->seed = (uint64_t)(uintptr_t)ix ^ 0x5bd1e9955bd1e995ull;
	return SC_OK;
}

/* Room for the copies: at most @p limit, and no more than the keys and values
 * can take (every leaf and overflow page full, plus the alignment). No room
 * is no copies, not a failure: the index then points into the map. */
static void copies_alloc(struct lmdb_index *ix, const MDB_stat *st, size_t limit, int huge)
{
	size_t pages = st->ms_leaf_pages + st->ms_overflow_pages;
	size_t need = SIZE_MAX;

	if (limit == 0 || pages == 0)
		return;
	if (pages <= SIZE_MAX / st->ms_psize &&
	    st->ms_entries <= (SIZE_MAX - pages * st->ms_psize) / INDEX_COPY_ALIGN)
		need = pages * st->ms_psize + st->ms_entries * INDEX_COPY_ALIGN;
	/* an upper bound: only the pages the copies touch are taken (reserved
	 * huge pages are all taken; copies_trim() gives back the rest) */
	ix->copies_room = need < limit ? need : limit;
	/* the pool's whole pages may go past the limit: the room does not */
	ix->copies = index_map(ix->copies_room, MAP_NORESERVE, huge, &ix->copies_map,
			       &ix->copies_pool);
	if (!ix->copies)
		ix->copies_map = ix->copies_room = 0;
}

/* Give back what the copies did not use: the reservation was an upper bound.
 * In reserved huge pages both lengths are whole pages (INDEX_COPY_TRIM is
 * one, the mapping starts on one), as munmap() wants them there. */
static void copies_trim(struct lmdb_index *ix)
{
	size_t keep = (ix->copies_used + INDEX_COPY_TRIM - 1) / INDEX_COPY_TRIM * INDEX_COPY_TRIM;

	if (!ix->copies)
		return;
	if (ix->copies_used == 0) {
		munmap(ix->copies, ix->copies_map);
		ix->copies = NULL;
		ix->copies_pool = 0;
		ix->copies_map = ix->copies_room = 0;
	} else if (keep < ix->copies_map) {
		munmap(ix->copies + keep, ix->copies_map - keep);
		ix->copies_map = keep;
		if (ix->copies_room > keep)
			ix->copies_room = keep;
	}
}

/* Copy a key ("key\0") and its entry list next to each other, if the room
 * allows; *@p key and *@p val are left pointing into the map otherwise. */
static void copy_entry(struct lmdb_index *ix, const MDB_val *k, const MDB_val *v,
		       const uint8_t **key, const uint8_t **val)
{
	size_t left = ix->copies_room - ix->copies_used, pad;
	uint8_t *p;

	if (!ix->copies || k->mv_size > left || v->mv_size > left - k->mv_size)
		return;
	p = ix->copies + ix->copies_used;
	memcpy(p, k->mv_data, k->mv_size);
	memcpy(p + k->mv_size, v->mv_data, v->mv_size);
	*key = p;
	*val = p + k->mv_size;
	ix->copies_used += k->mv_size + v->mv_size;
	pad = (INDEX_COPY_ALIGN - ix->copies_used % INDEX_COPY_ALIGN) % INDEX_COPY_ALIGN;
	/* the next copy starts aligned, or not at all */
	ix->copies_used = pad <= ix->copies_room - ix->copies_used ? ix->copies_used + pad :
			  ix->copies_room;
}

static sc_status index_insert(struct lmdb_index *ix, const MDB_val *k, const MDB_val *v)
{
	const uint8_t *kp = k->mv_data;
	size_t klen;
	uint64_t h;

	/* keys as lmdb_lookup_ex() asks for them: "key\0"; anything else is
	 * never asked for, and list() reports it */
	if (k->mv_size < 2 || kp[k->mv_size - 1] != '\0' || k->mv_size - 1 > UINT16_MAX ||
	    memchr(kp, '\0', k->mv_size - 1))
		return SC_OK;
	if (v->mv_size > UINT32_MAX)
		return SC_ERR_TOO_LONG;
	if (ix->n + 1 > ix->cap / 3 * 2)
		return SC_ERR_INTERNAL; /* more than the snapshot's own count */
	klen = k->mv_size - 1;
	h = index_hash(ix->seed, (const char *)kp, klen);
	for (size_t i = index_home(ix, h);; i = i + 1 == ix->cap ? 0 : i + 1) {
		struct lmdb_slot *sl = &ix->slots[i];

		if (sl->key)
			continue; /* LMDB keys are unique: no match to replace */
		sl->key = kp;
		sl->val = v->mv_data;
		copy_entry(ix, k, v, &sl->key, &sl->val);
		sl->vlen = (uint32_t)v->mv_size;
		sl->klen = (uint16_t)klen;
		sl->tag = index_tag(h);
		ix->n++;
		return SC_OK;
	}
}

/* Fill @p ix from its snapshot; SC_ERR_TEMP when lmdb_map_adopt() cancels it.
 * An LMDB failure is left in *@p failed: the caller reports it once the map
 * lock is released (the warning callback may take the sc_repo's lock, which a
 * lookup waiting in lmdb_map_adopt() holds) and returns SC_ERR_IO, so that the
 * daemon warns and waits a minute rather than trying again at once. */
static sc_status index_fill(struct lmdb_state *s, struct lmdb_index *ix, size_t copy_limit,
			    int huge, int *failed)
{
	MDB_cursor *cur;
	MDB_stat stat;
	MDB_val k, v;
	sc_status st = SC_OK;
	size_t seen = 0;
	int rc;

	rc = mdb_stat(ix->txn, s->entries, &stat);
	if (rc != MDB_SUCCESS) {
		*failed = rc;
		return SC_ERR_TEMP;
	}
	SC_TRY(index_alloc(ix, stat.ms_entries, huge));
	copies_alloc(ix, &stat, copy_limit, huge);
	rc = mdb_cursor_open(ix->txn, s->entries, &cur);
	if (rc != MDB_SUCCESS) {
		*failed = rc;
		return SC_ERR_TEMP;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && st == SC_OK;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (++seen % INDEX_CANCEL_EVERY == 0 &&
		    (__atomic_load_n(&s->index_cancel, __ATOMIC_ACQUIRE) ||
		     __atomic_load_n(&s->index_closing, __ATOMIC_ACQUIRE))) {
			st = SC_ERR_TEMP;
			break;
		}
		st = index_insert(ix, &k, &v);
	}
	mdb_cursor_close(cur);
	if (st == SC_OK && rc != MDB_NOTFOUND) {
		*failed = rc;
		st = SC_ERR_TEMP;
	}
	copies_trim(ix);
	return st;
}

sc_status lmdb_index_build(struct lmdb_state *s, size_t copy_limit, int huge,
			   struct lmdb_index **out)
{
	struct lmdb_index *ix;
	sc_status st;
	int rc, failed = MDB_SUCCESS;

	*out = NULL; /* read-only handles only: sc_repo_index_refresh() checks */
	if (__atomic_load_n(&s->index_closing, __ATOMIC_ACQUIRE))
		return SC_ERR_TEMP;
	ix = calloc(1, sizeof *ix);
	if (!ix)
		return SC_ERR_NOMEM;
	/* The map is not remapped while this holds the lock (lmdb_map_adopt()). */
	pthread_rwlock_rdlock(&s->map_lock);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &ix->txn);
	if (rc != MDB_SUCCESS) {
		ix->txn = NULL;
		/* MDB_MAP_RESIZED: sc_repo_index_wanted() or a lookup adopts the
		 * new size first */
		if (rc != MDB_MAP_RESIZED)
			failed = rc;
		st = SC_ERR_TEMP;
	} else {
		ix->txnid = mdb_txn_id(ix->txn);
		st = index_fill(s, ix, copy_limit, huge, &failed);
	}
	if (st != SC_OK && ix->txn) {
		/* while the map cannot be remapped: LMDB allows that only with no
		 * transaction open (a built index's snapshot stays open past the
		 * unlock, until lmdb_index_install(): a remap meanwhile is a commit,
		 * so install refuses it and no pointer into the old map is used) */
		mdb_txn_abort(ix->txn);
		ix->txn = NULL;
	}
	pthread_rwlock_unlock(&s->map_lock);
	if (failed != MDB_SUCCESS)
		st = lmdb_fail(s, failed, "building the index", SC_ERR_IO);
	if (st != SC_OK) {
		index_free(ix);
		return st;
	}
	*out = ix;
	return SC_OK;
}

sc_status lmdb_index_install(struct lmdb_state *s, struct lmdb_index *ix)
{
	/* The map may have been remapped since the build (a writer grew it, which
	 * is a commit too): the txnid check comes before any use of a pointer. */
	if (ix->txnid != last_txnid(s)) {
		index_retire(s, ix); /* unmapped after the lock, like a dropped one */
		return SC_ERR_CHANGED;
	}
	lmdb_index_drop(s);
	s->idx = ix;
	return SC_OK;
}
