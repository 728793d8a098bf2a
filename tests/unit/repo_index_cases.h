/*
 * repo_index_cases.h - helpers shared by the tests of the lookup index of
 * read-only lmdb: handles (test_repo_lmdb_index.c, test_repo_lmdb_index_write.c):
 * the interposed mdb_get()/mdb_stat()/pthread_rwlock_wrlock() and the hook run
 * inside an index build, writes from a forked child, a full record of what a
 * lookup answers, and the store every comparison starts from. Test code only;
 * include it once per test binary, first (it defines LMDB symbols, see below).
 *
 * How the tests see inside: the including binary defines mdb_get() and
 * mdb_stat(), which take the place of LMDB's for the library linked into it
 * (every tests/unit/test_*.c is its own executable linked with smtpcert_static,
 * tests/CMakeLists.txt) and call LMDB's own (dlsym RTLD_NEXT; main() calls
 * resolve_real() first). Counting mdb_get() calls tells whether a lookup walked
 * the B-tree (a CERT lookup through the index calls it not at all); mdb_stat()
 * is called once per index build, right after the build took its snapshot, so
 * a hook there runs code at that exact point (a write, a second build, lookups
 * from another thread) or a failure (HOOK_FAIL: an LMDB error instead of the
 * count) without any timing. Each test checks that its hook ran. The binary's
 * pthread_rwlock_wrlock() likewise tells a test when the thread it armed
 * (wr_arm()) next asks for an exclusive lock: in the library only
 * lmdb_map_adopt() takes one (the map lock, when a lookup adopts a map another
 * process grew; OpenSSL's locks pass here too, on whatever thread, hence the
 * one armed thread), so the test knows, without sleeping, that the lookup is
 * waiting for a build to let go of the map.
 *
 * Writers are forked children: LMDB forbids one environment open twice in one
 * process (lib/repo_lmdb.c).
 */
#ifndef SC_REPO_INDEX_CASES_H
#define SC_REPO_INDEX_CASES_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define REPO_SCHEME "lmdb"
#include "repo_cases.h"

#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>

/* ---- LMDB interposition ---------------------------------------------------- */

typedef int (*mdb_get_fn)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);
typedef int (*mdb_stat_fn)(MDB_txn *, MDB_dbi, MDB_stat *);
typedef int (*wrlock_fn)(pthread_rwlock_t *);

static mdb_get_fn real_get;
static mdb_stat_fn real_stat;
static wrlock_fn real_wrlock; /* atomic: OpenSSL may lock before resolve_real() */
static unsigned long g_gets;  /* mdb_get() calls (atomic) */
static int g_stat_calls;      /* mdb_stat() calls (atomic) */

/* What the next mdb_stat() call (an index build) does first; one-shot.
 * HOOK_FAIL, alone or added to another: then fail with MDB_CORRUPTED. */
enum hook { HOOK_NONE, HOOK_CHILD_WRITE, HOOK_WAIT_MAIN, HOOK_FAIL = 0x10 };
static int g_hook;            /* enum hook (atomic) */
static int g_hook_ran;        /* atomic */

static int hook_run(void);
static void wr_entered(void);

static void *resolve_one(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p) {
		fprintf(stderr, "dlsym(RTLD_NEXT) found no %s\n", name);
		abort();
	}
	return p;
}

static void resolve_real(void)
{
	void *g = resolve_one("mdb_get"), *s = resolve_one("mdb_stat");
	void *w = resolve_one("pthread_rwlock_wrlock");
	wrlock_fn wf;

	memcpy(&real_get, &g, sizeof g);
	memcpy(&real_stat, &s, sizeof s);
	memcpy(&wf, &w, sizeof w);
	__atomic_store_n(&real_wrlock, wf, __ATOMIC_RELEASE);
}

int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
	__atomic_add_fetch(&g_gets, 1, __ATOMIC_RELAXED);
	return real_get(txn, dbi, key, data);
}

int mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *st)
{
	__atomic_add_fetch(&g_stat_calls, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&g_hook, __ATOMIC_ACQUIRE) != HOOK_NONE &&
	    (hook_run() & HOOK_FAIL))
		return MDB_CORRUPTED; /* as a damaged page would */
	return real_stat(txn, dbi, st);
}

/* The thread whose next exclusive lock request is reported (wr_arm()). */
static pthread_t g_wr_thread;
static int g_wr_armed;        /* atomic */

int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	wrlock_fn real = __atomic_load_n(&real_wrlock, __ATOMIC_ACQUIRE);

	if (!real) {
		resolve_real();
		real = __atomic_load_n(&real_wrlock, __ATOMIC_ACQUIRE);
	}
	if (__atomic_load_n(&g_wr_armed, __ATOMIC_ACQUIRE) &&
	    pthread_equal(pthread_self(), g_wr_thread) &&
	    __atomic_exchange_n(&g_wr_armed, 0, __ATOMIC_ACQ_REL))
		wr_entered(); /* before the request: it may wait for a held build */
	return real(l);
}

static unsigned long gets_now(void)
{
	return __atomic_load_n(&g_gets, __ATOMIC_RELAXED);
}

/* ---- writes from another process -------------------------------------------- */

struct child_op {
	const char *addr;    /* store: under this address; remove: all of it */
	const sc_cert *cert; /* NULL: remove */
	int grow;            /* > 0: store cert under this many more addresses */
	const char *prefix;  /* they are <prefix><i>@grow.test; NULL: "g" */
};

/* The bulk part of a child's write, in transactions of 500 (the writer grows
 * the map on MDB_MAP_FULL as often as it needs). */
static int child_grow(sc_repo *w, const struct child_op *op)
{
	enum { CHUNK = 500 };
	static struct sc_addr a[CHUNK];
	const sc_cert *c[CHUNK];

	for (int i = 0; i < op->grow; i += CHUNK) {
		int n = op->grow - i < CHUNK ? op->grow - i : CHUNK;
		size_t done = 0;

		for (int j = 0; j < n; j++) {
			char buf[96];

			snprintf(buf, sizeof buf, "%s%d@grow.test", op->prefix ? op->prefix : "g",
				 i + j);
			if (sc_addr_parse(buf, strlen(buf), 0, &a[j], NULL) != SC_OK)
				return 14;
			c[j] = op->cert;
		}
		if (sc_repo_store_batch(w, a, c, (size_t)n, &done) != SC_OK)
			return 15;
	}
	return 0;
}

/* Run @p op in a forked child on its own read-write handle. Never calls cmocka
 * (it may run inside the mdb_stat() hook). @return 0 or the child's failure. */
static int child_write(const struct child_op *op)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 200;
	if (pid == 0) {
		sc_repo *w = NULL;
		struct sc_addr a;
		int bad = 0;

		__atomic_store_n(&g_hook, HOOK_NONE, __ATOMIC_RELEASE);
		if (sc_repo_open(g_spec, 0, &w, NULL, 0) != SC_OK)
			_exit(10);
		if (op->addr && sc_addr_parse(op->addr, strlen(op->addr), SC_ADDR_UTF8, &a,
					      NULL) != SC_OK)
			_exit(11);
		if (op->addr && op->cert && sc_repo_store(w, &a, op->cert) != SC_OK)
			bad = 12;
		if (op->addr && !op->cert && sc_repo_remove(w, &a, NULL, NULL) != SC_OK)
			bad = 13;
		if (!bad && op->grow > 0)
			bad = child_grow(w, op);
		sc_repo_close(w);
		_exit(bad);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 201;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 202;
}

static void child_ok(const struct child_op *op)
{
	assert_int_equal(child_write(op), 0);
}

/* ---- the hook ---------------------------------------------------------------- */

static struct child_op g_hook_op;
static int g_hook_child_rc = -1;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_in_build, g_release;
static int g_wr_entered, g_wr_release; /* under g_mu */

/* Generous bound only against hangs; nothing asserts on time. */
static void deadline(struct timespec *ts, int seconds)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += seconds;
}

/* @return the hook that ran (HOOK_NONE: none was set). */
static int hook_run(void)
{
	int h = __atomic_exchange_n(&g_hook, HOOK_NONE, __ATOMIC_ACQ_REL);
	struct timespec ts;

	if (h == HOOK_NONE)
		return h;
	__atomic_store_n(&g_hook_ran, 1, __ATOMIC_RELEASE);
	if ((h & ~HOOK_FAIL) == HOOK_CHILD_WRITE)
		g_hook_child_rc = child_write(&g_hook_op);
	if ((h & ~HOOK_FAIL) != HOOK_WAIT_MAIN)
		return h;
	/* HOOK_WAIT_MAIN: the build holds its snapshot (and the map lock) until
	 * main, or the armed wrlock (wr_arm()), lets it go */
	deadline(&ts, 120);
	pthread_mutex_lock(&g_mu);
	g_in_build = 1;
	pthread_cond_broadcast(&g_cv);
	while (!g_release)
		if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&g_mu);
	return h;
}

/* @p h: an enum hook, HOOK_FAIL possibly added. */
static void hook_set(int h)
{
	__atomic_store_n(&g_hook_ran, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&g_mu);
	g_in_build = g_release = 0;
	g_wr_entered = g_wr_release = 0;
	pthread_mutex_unlock(&g_mu);
	g_hook_child_rc = -1;
	__atomic_store_n(&g_hook, h, __ATOMIC_RELEASE);
}

/* Report the calling thread's next exclusive lock request (g_wr_entered);
 * with @p release, let a build held by HOOK_WAIT_MAIN go at that moment. */
static void wr_arm(int release)
{
	__atomic_store_n(&g_wr_armed, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&g_mu);
	g_wr_release = release;
	pthread_mutex_unlock(&g_mu);
	g_wr_thread = pthread_self();
	__atomic_store_n(&g_wr_armed, 1, __ATOMIC_RELEASE);
}

static void wr_entered(void)
{
	pthread_mutex_lock(&g_mu);
	g_wr_entered = 1;
	if (g_wr_release)
		g_release = 1;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

/* Wait (bounded, against hangs only) until *@p flag is set under g_mu.
 * @return the flag. */
static int wait_flag(const int *flag)
{
	struct timespec ts;
	int v;

	deadline(&ts, 120);
	pthread_mutex_lock(&g_mu);
	while (!*flag)
		if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) == ETIMEDOUT)
			break;
	v = *flag;
	pthread_mutex_unlock(&g_mu);
	return v;
}

/* A refresh on its own thread (refresh_main()). */
struct refresher {
	sc_repo *r;
	sc_status st;
	size_t count;
	int done; /* atomic */
};

static void *refresh_main(void *arg)
{
	struct refresher *t = arg;

	t->st = sc_repo_index_refresh(t->r, &t->count, NULL);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Wait (bounded) until the hook holds a build at its snapshot. */
static void wait_in_build(void)
{
	if (!wait_flag(&g_in_build))
		fail_msg("the index build never reached mdb_stat()");
}

static void release_build(void)
{
	pthread_mutex_lock(&g_mu);
	g_release = 1;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

/* Messages of a warning callback (sc_repo_set_warn()). */
struct warns {
	int n;
	char last[1024];
};

static void warn_keep(void *arg, const char *msg)
{
	struct warns *w = arg;

	w->n++;
	snprintf(w->last, sizeof w->last, "%s", msg);
}

/* ---- what a lookup answers, in full ------------------------------------------ */

#define SNAP_ENTRIES 4
#define SNAP_DER 3
#define SNAP_DER_MAX 2048

struct snap_entry {
	uint8_t fp[32];
	char key[SC_ADDR_KEY_MAX];
	size_t n_der;
	int64_t not_before, not_after, added;
	size_t der_len[SNAP_DER];
	uint8_t der[SNAP_DER][SNAP_DER_MAX];
};

struct snap {
	sc_status st;
	int calls;
	int bad; /* an entry did not fit the snapshot */
	struct snap_entry e[SNAP_ENTRIES];
};

static sc_status snap_fn(void *arg, const struct sc_repo_entry *e)
{
	struct snap *s = arg;
	struct snap_entry *x;

	if (s->calls >= SNAP_ENTRIES || e->key_len >= sizeof x->key || e->n_der > SNAP_DER) {
		s->bad = 1;
		s->calls++;
		return SC_OK;
	}
	x = &s->e[s->calls++];
	memcpy(x->fp, e->fingerprint, 32);
	memcpy(x->key, e->key, e->key_len);
	x->n_der = e->n_der;
	x->not_before = e->not_before;
	x->not_after = e->not_after;
	x->added = e->added;
	for (size_t i = 0; i < e->n_der; i++) {
		if (e->der_len[i] > SNAP_DER_MAX) {
			s->bad = 1;
			continue;
		}
		x->der_len[i] = e->der_len[i];
		memcpy(x->der[i], e->der[i], e->der_len[i]);
	}
	return SC_OK;
}

/* How a probe asks: CERS (whole lookup), CERT (leaf only), every entry. */
enum how { HOW_FULL, HOW_LEAF, HOW_ENTRIES, HOW_COUNT };

static time_t g_now;

static void probe(sc_repo *r, const char *addr, enum how how, struct snap *s)
{
	struct sc_addr a = A(addr);

	memset(s, 0, sizeof *s);
	if (how == HOW_FULL)
		s->st = sc_repo_lookup(r, &a, g_now, NULL, snap_fn, s);
	else if (how == HOW_LEAF)
		s->st = sc_repo_lookup_ex(r, &a, g_now, NULL, SC_REPO_LOOKUP_LEAF, snap_fn, s);
	else
		s->st = sc_repo_entries(r, &a, snap_fn, s);
	assert_false(s->bad);
}

/* The longest address (RFC 5321 4.5.3.1: 64 + '@' + 255 octets). */
#define S8 "abcdefgh"
#define S63 S8 S8 S8 S8 S8 S8 S8 "abcdefg"
#define LONGEST S8 S8 S8 S8 S8 S8 S8 S8 "@" S63 "." S63 "." S63 "." S63

/* The addresses every comparison looks at: stored ones (with a chain, several
 * entries, no chain, expired only, UTF-8, spelled in other case, a quoted
 * local part, the longest address) and missing ones (a prefix of a stored key,
 * a neighbour of the bulk ones, another quoted local part). */
static const char *const g_probes[] = {
	"alice@example.test", "<ALICE@Example.TEST>", "bob@example.test",
	"carol@example.test", "dave@example.test", "jörg@bücher.example",
	"u0@bulk.test", "u39@bulk.test", "nobody@example.test", "alic@example.test",
	"u40@bulk.test", "\"John Doe\"@example.test", "\"john doe\"@EXAMPLE.test",
	LONGEST, "\"john  doe\"@example.test",
};
#define NPROBES (sizeof g_probes / sizeof g_probes[0])
#define BULK 40
#define STORED (7 + BULK) /* addresses in the store of fill_store() */

struct fixture {
	sc_cert *chain, *old, *best, *lone, *expired, *extra;
};

static void fixture_free(struct fixture *f)
{
	sc_cert_free(f->chain);
	sc_cert_free(f->old);
	sc_cert_free(f->best);
	sc_cert_free(f->lone);
	sc_cert_free(f->expired);
	sc_cert_free(f->extra);
}

/* A store of STORED addresses, closed again; the certificates stay in @p f. */
static void fill_store(struct fixture *f)
{
	sc_repo *w = open_repo(SC_REPO_CREATE);
	static struct sc_addr addrs[BULK];
	const sc_cert *certs[BULK];
	size_t done = 0;

	f->chain = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	f->old = mk_cert((struct tc_cert_opts){ .not_before_offset = -3 * DAY }, 1, NULL);
	f->best = mk_cert((struct tc_cert_opts){ .not_before_offset = -DAY }, 0, NULL);
	f->lone = mk_cert((struct tc_cert_opts){ .not_before_offset = -2 * DAY }, 0, NULL);
	f->expired = mk_cert((struct tc_cert_opts){ .not_before_offset = -10 * DAY,
						    .not_after_offset = -DAY }, 0, NULL);
	f->extra = mk_cert((struct tc_cert_opts){ .not_before_offset = -3600 }, 1, NULL);
	store(w, "alice@example.test", f->chain);
	store(w, "bob@example.test", f->old);
	store(w, "bob@example.test", f->best);
	store(w, "carol@example.test", f->lone);
	store(w, "dave@example.test", f->expired);
	store(w, "jörg@bücher.example", f->chain);
	store(w, "\"John Doe\"@example.test", f->lone);
	store(w, LONGEST, f->chain);
	for (int i = 0; i < BULK; i++) {
		char buf[64];

		snprintf(buf, sizeof buf, "u%d@bulk.test", i);
		addrs[i] = A(buf);
		certs[i] = i % 2 ? f->lone : f->chain;
	}
	assert_int_equal(sc_repo_store_batch(w, addrs, certs, BULK, &done), SC_OK);
	assert_int_equal(done, BULK);
	sc_repo_close(w);
}

/* A CERT lookup of @p addr: its status, and whether it walked the B-tree. */
static sc_status leaf_walks(sc_repo *r, const char *addr, struct snap *s, int *walked)
{
	unsigned long before = gets_now();

	probe(r, addr, HOW_LEAF, s);
	*walked = gets_now() != before;
	return s->st;
}

static void assert_snap_fp(const struct snap *s, const sc_cert *c)
{
	uint8_t fp[32];

	assert_int_equal(s->calls, 1);
	sc_cert_fingerprint(c, fp);
	assert_memory_equal(s->e[0].fp, fp, 32);
}

static sc_repo *refreshed(size_t want_count)
{
	sc_repo *r = open_repo(SC_REPO_RDONLY);
	size_t count = 0, bytes = 0;

	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, want_count);
	assert_true(bytes > 0);
	assert_int_equal(sc_repo_index_wanted(r), 0);
	return r;
}

/* ---- what every probe answers ------------------------------------------------ */

struct answers {
	struct snap s[NPROBES][HOW_COUNT];
};

/* BIG_STORE addresses, big0@bulk.test .., each with the same certificate
 * (f->lone): copies of several MiB. @return the addresses (free() them). */
#define BIG_STORE 12000

static inline struct sc_addr *fill_big_store(struct fixture *f)
{
	struct sc_addr *addrs = calloc(BIG_STORE, sizeof *addrs);
	const sc_cert **certs = calloc(BIG_STORE, sizeof *certs);
	size_t done = 0;
	sc_repo *w;

	assert_non_null(addrs);
	assert_non_null(certs);
	f->lone = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	w = open_repo(SC_REPO_CREATE);
	for (int i = 0; i < BIG_STORE; i++) {
		char buf[64];

		snprintf(buf, sizeof buf, "big%d@bulk.test", i);
		addrs[i] = A(buf);
		certs[i] = f->lone;
	}
	assert_int_equal(sc_repo_store_batch(w, addrs, certs, BIG_STORE, &done), SC_OK);
	assert_int_equal(done, BIG_STORE);
	sc_repo_close(w);
	free(certs);
	return addrs;
}

static inline sc_status leaf_fn(void *arg, const struct sc_repo_entry *e)
{
	*(const uint8_t **)arg = e->der[0];
	return SC_OK;
}

/* Where the leaf of @p addr's answer lies (valid only as long as what holds it). */
static inline const uint8_t *first_leaf(sc_repo *r, const char *addr)
{
	struct sc_addr a = A(addr);
	const uint8_t *leaf = NULL;

	assert_int_equal(sc_repo_lookup(r, &a, g_now, NULL, leaf_fn, &leaf), SC_OK);
	assert_non_null(leaf);
	return leaf;
}

static inline void answers_take(sc_repo *r, struct answers *ans)
{
	for (size_t i = 0; i < NPROBES; i++)
		for (int h = 0; h < HOW_COUNT; h++)
			probe(r, g_probes[i], (enum how)h, &ans->s[i][h]);
}

static inline void answers_same(sc_repo *r, const struct answers *want)
{
	struct snap now;

	for (size_t i = 0; i < NPROBES; i++)
		for (int h = 0; h < HOW_COUNT; h++) {
			probe(r, g_probes[i], (enum how)h, &now);
			if (memcmp(&now, &want->s[i][h], sizeof now) != 0)
				fail_msg("%s (how %d): %s, %d calls; expected %s, %d calls",
					 g_probes[i], h, sc_strerror(now.st), now.calls,
					 sc_strerror(want->s[i][h].st), want->s[i][h].calls);
		}
}

/* main(): @p tests once with the index pointing into the map, once with every
 * entry list copied into it (g_index_copy_limit, given to each handle opened). */
static inline int run_with_and_without_copies(const struct CMUnitTest tests[], size_t n)
{
	int failed;

	resolve_real();
	g_now = time(NULL);
	g_index_copy_limit = 0;
	failed = _cmocka_run_group_tests("index into the map", tests, n, group_setup,
					 group_teardown);
	g_index_copy_limit = SIZE_MAX;
	failed += _cmocka_run_group_tests("index with copies", tests, n, group_setup,
					  group_teardown);
	return failed;
}

#endif
