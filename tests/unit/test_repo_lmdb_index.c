/*
 * test_repo_lmdb_index.c - the lookup index of read-only lmdb: handles
 * (lib/repo_lmdb_index.c, its use in lib/repo_lmdb.c, sc_repo_index_wanted(),
 * sc_repo_index_refresh() and sc_repo_prefetch() in lib/repo.c) and the key
 * guess behind the prefetch (sc_addr_key_guess(), lib/addr.c).
 *
 * What must hold: a lookup through the index answers exactly what the B-tree
 * answers; the index never answers after a write committed by another process
 * (LMDB forbids one environment open twice in one process, lib/repo_lmdb.c, so
 * writers here are forked children); a build racing lookups, a second build, a
 * write or a map growth during a build leave every lookup right and install
 * nothing stale; the prefetch hint changes no result whatever it is given.
 *
 * How the tests see inside: this binary defines mdb_get() and mdb_stat(), which
 * take the place of LMDB's for the library linked into it and call LMDB's own
 * (dlsym RTLD_NEXT). Counting mdb_get() calls tells whether a lookup walked the
 * B-tree (a CERT lookup through the index calls it not at all); mdb_stat() is
 * called once per index build, right after the build took its snapshot, so a
 * hook there runs code at that exact point (a write, a second build, lookups
 * from another thread) without any timing. Each test checks that its hook ran.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define REPO_SCHEME "lmdb"
#include "repo_cases.h"

#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>

#include "addr_int.h"

/* ---- LMDB interposition ---------------------------------------------------- */

typedef int (*mdb_get_fn)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);
typedef int (*mdb_stat_fn)(MDB_txn *, MDB_dbi, MDB_stat *);

static mdb_get_fn real_get;
static mdb_stat_fn real_stat;
static unsigned long g_gets;  /* mdb_get() calls (atomic) */
static int g_stat_calls;      /* mdb_stat() calls (atomic) */

/* What the next mdb_stat() call (an index build) does first; one-shot. */
enum hook { HOOK_NONE, HOOK_CHILD_WRITE, HOOK_WAIT_MAIN };
static int g_hook;            /* enum hook (atomic) */
static int g_hook_ran;        /* atomic */

static void hook_run(void);

static void resolve_real(void)
{
	void *g = dlsym(RTLD_NEXT, "mdb_get"), *s = dlsym(RTLD_NEXT, "mdb_stat");

	if (!g || !s) {
		fprintf(stderr, "dlsym(RTLD_NEXT) found no LMDB mdb_get/mdb_stat\n");
		abort();
	}
	memcpy(&real_get, &g, sizeof g);
	memcpy(&real_stat, &s, sizeof s);
}

int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
	__atomic_add_fetch(&g_gets, 1, __ATOMIC_RELAXED);
	return real_get(txn, dbi, key, data);
}

int mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *st)
{
	__atomic_add_fetch(&g_stat_calls, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&g_hook, __ATOMIC_ACQUIRE) != HOOK_NONE)
		hook_run();
	return real_stat(txn, dbi, st);
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

/* Generous bound only against hangs; nothing asserts on time. */
static void deadline(struct timespec *ts, int seconds)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += seconds;
}

static void hook_run(void)
{
	int h = __atomic_exchange_n(&g_hook, HOOK_NONE, __ATOMIC_ACQ_REL);
	struct timespec ts;

	if (h == HOOK_NONE)
		return;
	__atomic_store_n(&g_hook_ran, 1, __ATOMIC_RELEASE);
	if (h == HOOK_CHILD_WRITE) {
		g_hook_child_rc = child_write(&g_hook_op);
		return;
	}
	/* HOOK_WAIT_MAIN: the build holds its snapshot until main lets it go */
	deadline(&ts, 120);
	pthread_mutex_lock(&g_mu);
	g_in_build = 1;
	pthread_cond_broadcast(&g_cv);
	while (!g_release)
		if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&g_mu);
}

static void hook_set(enum hook h)
{
	__atomic_store_n(&g_hook_ran, 0, __ATOMIC_RELEASE);
	g_in_build = g_release = 0;
	g_hook_child_rc = -1;
	__atomic_store_n(&g_hook, h, __ATOMIC_RELEASE);
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

struct answers {
	struct snap s[NPROBES][HOW_COUNT];
};

static void answers_take(sc_repo *r, struct answers *ans)
{
	for (size_t i = 0; i < NPROBES; i++)
		for (int h = 0; h < HOW_COUNT; h++)
			probe(r, g_probes[i], (enum how)h, &ans->s[i][h]);
}

static void answers_same(sc_repo *r, const struct answers *want)
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

/* ---- 1. the index answers what the B-tree answers ------------------------------ */

static void test_same_answers(void **state)
{
	struct fixture f = { 0 };
	struct answers *before = calloc(1, sizeof *before);
	struct snap s;
	sc_repo *r;
	size_t count = 0, bytes = 0;
	int walked;

	assert_non_null(before);
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	answers_take(r, before);
	/* what the answers are, not only that they stay the same */
	assert_int_equal(before->s[0][HOW_FULL].st, SC_OK);
	assert_int_equal(before->s[0][HOW_FULL].e[0].n_der, 2);
	assert_int_equal(before->s[0][HOW_LEAF].e[0].n_der, 1);
	assert_int_equal(before->s[2][HOW_ENTRIES].calls, 2);
	assert_snap_fp(&before->s[2][HOW_FULL], f.best);
	assert_int_equal(before->s[4][HOW_FULL].st, SC_ERR_NOT_FOUND);
	assert_int_equal(before->s[4][HOW_ENTRIES].calls, 1);
	assert_int_equal(before->s[8][HOW_LEAF].st, SC_ERR_NOT_FOUND);
	assert_int_equal(before->s[8][HOW_LEAF].calls, 0);
	assert_int_equal(before->s[11][HOW_LEAF].st, SC_OK);   /* quoted */
	assert_int_equal(before->s[12][HOW_LEAF].st, SC_OK);   /* folded */
	assert_int_equal(before->s[13][HOW_FULL].st, SC_OK);   /* longest */
	assert_int_equal(before->s[14][HOW_LEAF].st, SC_ERR_NOT_FOUND);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_true(walked); /* the interposed mdb_get() sees the B-tree walk */

	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, STORED);
	assert_true(bytes > 0);
	assert_int_equal(sc_repo_index_wanted(r), 0);
	assert_int_equal(g_stat_calls > 0, 1);
	answers_same(r, before);
	/* answered by the index: no B-tree walk for found or missing addresses */
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_int_equal(leaf_walks(r, "nobody@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);
	assert_int_equal(leaf_walks(r, "<BOB@example.TEST>", &s, &walked), SC_OK);
	assert_false(walked);
	assert_snap_fp(&s, f.best);

	/* a second refresh of an unchanged store replaces the index alike */
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_int_equal(sc_repo_index_wanted(r), 0);
	answers_same(r, before);
	assert_int_equal(count_all(r), STORED + 1); /* bob's two entries */
	sc_repo_close(r);

	/* a new handle without an index answers the same again */
	r = open_repo(SC_REPO_RDONLY);
	answers_same(r, before);
	sc_repo_close(r);
	free(before);
	fixture_free(&f);
}

/* An empty store: an index of nothing, and then an address appears. */
static void test_empty_store(void **state)
{
	sc_repo *w = open_repo(SC_REPO_CREATE), *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	size_t count = 99, bytes = 0;
	struct snap s;
	int walked;

	sc_repo_close(w);
	r = open_repo(SC_REPO_RDONLY);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, 0);
	assert_true(bytes > 0);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);
	child_ok(&(struct child_op){ .addr = "alice@example.test", .cert = c });
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_true(walked);
	assert_snap_fp(&s, c);
	sc_repo_close(r);

	/* the daemon on a fresh install: the store created empty, then indexed */
	tc_rmtree(g_path);
	r = open_repo(SC_REPO_RDONLY | SC_REPO_CREATE);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, 0);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* Write one raw key/value pair with LMDB itself, as a buggy writer would (no
 * handle of the store may be open: one environment once per process). */
static void raw_put(const char *dbname, const void *k, size_t klen, const void *v, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static size_t raw_get(const char *dbname, const void *k, size_t klen, void *out, size_t size)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { klen, (void *)k }, val;
	size_t n = 0;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS | MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	if (mdb_get(txn, dbi, &key, &val) == 0 && val.mv_size <= size) {
		memcpy(out, val.mv_data, val.mv_size);
		n = val.mv_size;
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

static void warn_count(void *arg, const char *msg)
{
	(*(int *)arg)++;
}

/* Broken data found through the index is treated as the B-tree path treats
 * it: an entry whose chain certificate is missing is skipped by CERS and
 * served by CERT, a broken entry list is no entry, each with a warning; keys
 * that no lookup can ask for are not counted as addresses. */
static void test_corrupt_through_index(void **state)
{
	static const char *const addrs[] = { "alice@example.test", "carol@example.test",
					     "bob@example.test" };
	sc_repo *w = open_repo(SC_REPO_CREATE), *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	static uint8_t val[16384];
	struct snap want[3][HOW_COUNT], now;
	int warns = 0, warns_before;
	size_t len, count = 0;

	store(w, "alice@example.test", c);
	sc_repo_close(w);
	len = raw_get("entries", "alice@example.test", 19, val, sizeof val);
	assert_true(len > 6);
	assert_int_equal(val[5], 1); /* count, u32 length, then nchain */
	val[6] ^= 0xff;              /* names a chain certificate not stored */
	raw_put("entries", "carol@example.test", 19, val, len);
	raw_put("entries", "bob@example.test", 17, "\x01\0\0\0\xff", 5);
	raw_put("entries", "nonul", 5, val, len);      /* no NUL: never asked for */

	r = open_repo(SC_REPO_RDONLY);
	sc_repo_set_warn(r, warn_count, &warns);
	for (int i = 0; i < 3; i++)
		for (int h = 0; h < HOW_COUNT; h++)
			probe(r, addrs[i], (enum how)h, &want[i][h]);
	assert_int_equal(want[0][HOW_FULL].st, SC_OK);
	assert_int_equal(want[1][HOW_FULL].st, SC_ERR_NOT_FOUND);
	assert_int_equal(want[1][HOW_LEAF].st, SC_OK);
	assert_int_equal(want[2][HOW_LEAF].st, SC_ERR_NOT_FOUND);
	warns_before = warns;
	assert_true(warns_before >= 2);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, 3);
	warns = 0;
	for (int i = 0; i < 3; i++)
		for (int h = 0; h < HOW_COUNT; h++) {
			probe(r, addrs[i], (enum how)h, &now);
			if (memcmp(&now, &want[i][h], sizeof now) != 0)
				fail_msg("%s (how %d) differs through the index", addrs[i], h);
		}
	assert_int_equal(warns, warns_before);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* ---- 2. never stale ---------------------------------------------------------------- */

static void test_never_stale(void **state)
{
	struct fixture f = { 0 };
	sc_cert *newc = mk_cert((struct tc_cert_opts){ .emails = { "new@example.test" } }, 1, NULL);
	sc_cert *bob2 = mk_cert((struct tc_cert_opts){ .not_before_offset = -60 }, 0, NULL);
	size_t count = 0, bytes = 0;
	struct snap s;
	sc_repo *r;
	int walked;

	fill_store(&f);
	r = refreshed(STORED);
	assert_int_equal(leaf_walks(r, "new@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);

	/* an address added by another process: found at once, no refresh */
	child_ok(&(struct child_op){ .addr = "new@example.test", .cert = newc });
	probe(r, "new@example.test", HOW_FULL, &s);
	assert_int_equal(s.st, SC_OK);
	assert_snap_fp(&s, newc);
	assert_int_equal(s.e[0].n_der, 2);
	assert_int_equal(leaf_walks(r, "new@example.test", &s, &walked), SC_OK);
	assert_true(walked); /* the stale index was dropped, the B-tree answers */
	assert_snap_fp(&s, newc);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_true(walked);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, STORED + 1);
	assert_int_equal(sc_repo_index_wanted(r), 0);
	assert_int_equal(leaf_walks(r, "new@example.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_snap_fp(&s, newc);

	/* an address removed: gone at once, for CERS and CERT alike */
	child_ok(&(struct child_op){ .addr = "alice@example.test" });
	probe(r, "alice@example.test", HOW_FULL, &s);
	assert_int_equal(s.st, SC_ERR_NOT_FOUND);
	assert_int_equal(s.calls, 0);
	probe(r, "alice@example.test", HOW_LEAF, &s);
	assert_int_equal(s.st, SC_ERR_NOT_FOUND);
	probe(r, "alice@example.test", HOW_ENTRIES, &s);
	assert_int_equal(s.calls, 0);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, STORED);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);

	/* a newer entry for an indexed address: served at once, without asking
	 * wanted() first (the lookup itself sees the index is old) */
	assert_int_equal(leaf_walks(r, "bob@example.test", &s, &walked), SC_OK);
	assert_snap_fp(&s, f.best);
	child_ok(&(struct child_op){ .addr = "bob@example.test", .cert = bob2 });
	assert_int_equal(leaf_walks(r, "bob@example.test", &s, &walked), SC_OK);
	assert_true(walked);
	assert_snap_fp(&s, bob2);
	probe(r, "bob@example.test", HOW_ENTRIES, &s);
	assert_int_equal(s.calls, 3);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, STORED);
	assert_int_equal(leaf_walks(r, "bob@example.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_snap_fp(&s, bob2);
	sc_repo_close(r);
	sc_cert_free(newc);
	sc_cert_free(bob2);
	fixture_free(&f);
}

/* ---- 3. where there is no index -------------------------------------------------- */

static void test_unsupported(void **state)
{
	sc_repo *w = open_repo(SC_REPO_CREATE), *d = NULL;
	size_t count = 7, bytes = 7;
	char spec[800];
	const char *args[1] = { "alice@example.test" };
	size_t lens[1] = { 18 };

	/* a writable handle: its own writes would make an index stale at once */
	assert_int_equal(sc_repo_index_wanted(w), 0);
	assert_int_equal(sc_repo_index_refresh(w, &count, &bytes), SC_ERR_UNSUPPORTED);
	assert_int_equal(sc_repo_index_refresh(w, NULL, NULL), SC_ERR_UNSUPPORTED);
	sc_repo_prefetch(w, args, lens, 1);
	sc_repo_close(w);

	/* dir: has no index at all, read-only or not */
	snprintf(spec, sizeof spec, "dir:%s/dirrepo", g_tmp);
	assert_int_equal(sc_repo_open(spec, SC_REPO_CREATE, &d, NULL, 0), SC_OK);
	assert_int_equal(sc_repo_index_wanted(d), 0);
	assert_int_equal(sc_repo_index_refresh(d, &count, &bytes), SC_ERR_UNSUPPORTED);
	sc_repo_prefetch(d, args, lens, 1);
	sc_repo_close(d);
	assert_int_equal(sc_repo_open(spec, SC_REPO_RDONLY, &d, NULL, 0), SC_OK);
	assert_int_equal(sc_repo_index_wanted(d), 0);
	assert_int_equal(sc_repo_index_refresh(d, NULL, NULL), SC_ERR_UNSUPPORTED);
	assert_int_equal(sc_repo_index_wanted(d), 0);
	sc_repo_close(d);

	assert_int_equal(sc_repo_index_refresh(NULL, &count, &bytes), SC_ERR_ARG);
	assert_int_equal(sc_repo_index_wanted(NULL), 0);
	sc_repo_prefetch(NULL, args, lens, 1);
}

/* ---- 4. builds racing lookups ------------------------------------------------------ */

/* The answer of a CERT (@p leaf) or CERS lookup of each probe, in short. */
struct brief {
	sc_status st;
	int calls;
	uint8_t fp[32];
	size_t n_der;
};

static void brief_of(sc_repo *r, const char *addr, int leaf, struct brief *b)
{
	struct sc_addr a = A(addr);
	struct got g;

	memset(&g, 0, sizeof g);
	b->st = leaf ? sc_repo_lookup_ex(r, &a, g_now, NULL, SC_REPO_LOOKUP_LEAF, got_fn, &g)
		     : sc_repo_lookup(r, &a, g_now, NULL, got_fn, &g);
	b->calls = g.calls;
	memcpy(b->fp, g.fp, 32);
	b->n_der = g.n_der;
}

static void briefs_take(sc_repo *r, struct brief want[NPROBES][2])
{
	for (size_t i = 0; i < NPROBES; i++)
		for (int leaf = 0; leaf < 2; leaf++)
			brief_of(r, g_probes[i], leaf, &want[i][leaf]);
}

/* @p n lookups round the probes, each compared with what it must answer. */
static void lookups_right(sc_repo *r, struct brief want[NPROBES][2], int n)
{
	for (int i = 0; i < n; i++) {
		size_t p = (size_t)i % NPROBES;
		int leaf = (i / (int)NPROBES) % 2;
		struct brief b;

		brief_of(r, g_probes[p], leaf, &b);
		if (b.st != want[p][leaf].st || b.calls != want[p][leaf].calls ||
		    b.n_der != want[p][leaf].n_der || memcmp(b.fp, want[p][leaf].fp, 32) != 0)
			fail_msg("lookup %d of %s (leaf %d): %s, %d calls, n_der %zu", i,
				 g_probes[p], leaf, sc_strerror(b.st), b.calls, b.n_der);
	}
}

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
	struct timespec ts;

	deadline(&ts, 120);
	pthread_mutex_lock(&g_mu);
	while (!g_in_build)
		if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&g_mu);
	if (!g_in_build)
		fail_msg("the index build never reached mdb_stat()");
}

static void release_build(void)
{
	pthread_mutex_lock(&g_mu);
	g_release = 1;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

static void test_concurrent(void **state)
{
	struct fixture f = { 0 };
	struct brief want[NPROBES][2];
	struct refresher t = { 0 }, t2 = { 0 };
	pthread_t th, th2;
	size_t count = 0;
	struct snap s;
	sc_repo *r;
	int walked, n;

	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	briefs_take(r, want);
	assert_int_equal(want[0][0].st, SC_OK);
	assert_int_equal(want[0][0].n_der, 2);
	assert_int_equal(want[8][1].st, SC_ERR_NOT_FOUND);

	/* a build held at its snapshot on another thread: lookups go on (the
	 * B-tree), and a second refresh meanwhile is refused */
	t.r = r;
	hook_set(HOOK_WAIT_MAIN);
	assert_int_equal(pthread_create(&th, NULL, refresh_main, &t), 0);
	wait_in_build();
	lookups_right(r, want, 3000);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_true(walked);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_ERR_TEMP);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	release_build();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(t.st, SC_OK);
	assert_int_equal(t.count, STORED);
	assert_int_equal(sc_repo_index_wanted(r), 0);
	lookups_right(r, want, 3000);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_false(walked);

	/* unheld: a new index replaces the old one while lookups run */
	memset(&t, 0, sizeof t);
	t.r = r;
	assert_int_equal(pthread_create(&th, NULL, refresh_main, &t), 0);
	for (n = 0; n < 2000 || !__atomic_load_n(&t.done, __ATOMIC_ACQUIRE); n += 50)
		lookups_right(r, want, 50);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(t.st, SC_OK);
	assert_int_equal(t.count, STORED);

	/* two at once: at least one builds, the other builds too or is refused */
	memset(&t, 0, sizeof t);
	t.r = t2.r = r;
	assert_int_equal(pthread_create(&th, NULL, refresh_main, &t), 0);
	assert_int_equal(pthread_create(&th2, NULL, refresh_main, &t2), 0);
	lookups_right(r, want, 2000);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pthread_join(th2, NULL), 0);
	assert_true(t.st == SC_OK || t2.st == SC_OK);
	assert_true(t.st == SC_OK || t.st == SC_ERR_TEMP);
	assert_true(t2.st == SC_OK || t2.st == SC_ERR_TEMP);
	assert_int_equal(sc_repo_index_wanted(r), 0);
	lookups_right(r, want, 1000);
	assert_int_equal(leaf_walks(r, "u39@bulk.test", &s, &walked), SC_OK);
	assert_false(walked);
	sc_repo_close(r);
	fixture_free(&f);
}

/* ---- 5. a write committed while a build runs ----------------------------------------- */

static void test_write_during_build(void **state)
{
	struct fixture f = { 0 };
	sc_cert *late = mk_cert((struct tc_cert_opts){ .emails = { "late@example.test" } }, 1,
				NULL);
	size_t count = 9, bytes = 9;
	struct snap s;
	sc_repo *r;
	int walked;

	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	/* the child commits after the build took its snapshot, before it ends */
	g_hook_op = (struct child_op){ .addr = "late@example.test", .cert = late };
	hook_set(HOOK_CHILD_WRITE);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_ERR_CHANGED);
	assert_true(g_hook_ran);
	assert_int_equal(g_hook_child_rc, 0);
	assert_int_equal(count, 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(sc_repo_index_wanted(r), 1); /* nothing installed */
	assert_int_equal(leaf_walks(r, "late@example.test", &s, &walked), SC_OK);
	assert_true(walked);
	assert_snap_fp(&s, late);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, STORED + 1);

	/* the same with an index installed: the old one is not kept in use, the
	 * removal is seen at once */
	g_hook_op = (struct child_op){ .addr = "late@example.test" };
	hook_set(HOOK_CHILD_WRITE);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_ERR_CHANGED);
	assert_true(g_hook_ran);
	assert_int_equal(g_hook_child_rc, 0);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(leaf_walks(r, "late@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_true(walked);
	probe(r, "late@example.test", HOW_FULL, &s);
	assert_int_equal(s.st, SC_ERR_NOT_FOUND);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, STORED);
	assert_int_equal(leaf_walks(r, "late@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);
	sc_repo_close(r);
	sc_cert_free(late);
	fixture_free(&f);
}

/* ---- 6. another process grows the map ------------------------------------------------ */

static off_t data_size(void)
{
	char p[800];
	struct stat st;

	snprintf(p, sizeof p, "%s/data.mdb", g_path);
	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

static void test_map_growth(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	sc_repo *w, *r;
	size_t count = 0;
	const char *args[2] = { "alice@example.test", "<g399@GROW.test>" };
	size_t lens[2] = { 18, 16 };
	struct snap s;
	int walked;
	sc_status st;

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	r = refreshed(1); /* maps 64 KiB */

	child_ok(&(struct child_op){ .grow = 400, .cert = c });
	assert_true(data_size() > 64 * 1024); /* past the reader's map */
	sc_repo_prefetch(r, args, lens, 2); /* into the stale index: still mapped */
	probe(r, "alice@example.test", HOW_FULL, &s);
	assert_int_equal(s.st, SC_OK);
	assert_snap_fp(&s, c);
	assert_int_equal(s.e[0].n_der, 2);
	assert_int_equal(leaf_walks(r, "g399@grow.test", &s, &walked), SC_OK);
	assert_true(walked);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, 401);
	assert_int_equal(leaf_walks(r, "g0@grow.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_snap_fp(&s, c);
	probe(r, "g200@grow.test", HOW_FULL, &s);
	assert_int_equal(s.st, SC_OK);
	assert_int_equal(s.e[0].n_der, 2);

	/* grown again, and a refresh before any lookup: it may find the map not
	 * yet adopted (SC_ERR_TEMP, repo.h); after a lookup it builds */
	child_ok(&(struct child_op){ .grow = 3000, .prefix = "h", .cert = c });
	assert_int_equal(sc_repo_index_wanted(r), 1);
	st = sc_repo_index_refresh(r, &count, NULL);
	if (getenv("IXTEST_VERBOSE"))
		fprintf(stderr, "refresh before the map is adopted: %s\n", sc_strerror(st));
	assert_true(st == SC_OK || st == SC_ERR_TEMP);
	assert_int_equal(leaf_walks(r, "h2999@grow.test", &s, &walked), SC_OK);
	assert_snap_fp(&s, c);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, 3401);
	assert_int_equal(leaf_walks(r, "h1234@grow.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_int_equal(leaf_walks(r, "h3000@grow.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);
	sc_repo_close(r);
	sc_cert_free(c);
}

/*
 * KNOWN TO FAIL until lib/repo_lmdb*.c adopts a grown map outside lookups:
 * after another process grew the map, sc_repo_index_refresh() must succeed
 * without a lookup in between. The daemon's index check (daemon/repo_index.c)
 * calls wanted() and refresh() every second; on a server that gets no CERT
 * after an import grew the map, each build gets MDB_MAP_RESIZED (SC_ERR_TEMP)
 * and nothing adopts the new size, so no index is built and a "busy" line is
 * logged every second until the first lookup. A fix may ask for one retry.
 */
static void test_refresh_after_growth_without_lookup(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	sc_repo *w, *r;
	size_t count = 0;
	sc_status st = SC_ERR_INTERNAL;

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	r = refreshed(1);
	child_ok(&(struct child_op){ .grow = 400, .cert = c });
	assert_true(data_size() > 64 * 1024);
	for (int i = 0; i < 3 && st != SC_OK; i++) {
		assert_int_equal(sc_repo_index_wanted(r), 1);
		st = sc_repo_index_refresh(r, &count, NULL);
	}
	sc_repo_close(r);
	sc_cert_free(c);
	if (st != SC_OK)
		fail_msg("refresh after another process grew the map, no lookup between: "
			 "%s three times", sc_strerror(st));
	assert_int_equal(count, 401);
}

/* The map grown by a child while a build reads its snapshot. */
static void test_growth_during_build(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	sc_repo *w, *r;
	size_t count = 0;
	struct snap s;
	int walked;

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	r = open_repo(SC_REPO_RDONLY);
	g_hook_op = (struct child_op){ .grow = 1000, .cert = c };
	hook_set(HOOK_CHILD_WRITE);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_ERR_CHANGED);
	assert_true(g_hook_ran);
	assert_int_equal(g_hook_child_rc, 0);
	assert_true(data_size() > 64 * 1024);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(leaf_walks(r, "g999@grow.test", &s, &walked), SC_OK);
	assert_snap_fp(&s, c);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, 1001);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_false(walked);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* The map size a reader opening the store now would map (no handle open). */
static size_t reader_mapsize(void)
{
	MDB_env *env;
	MDB_envinfo info;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, g_path, MDB_NOTLS | MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_env_info(env, &info), 0);
	mdb_env_close(env);
	return info.me_mapsize;
}

struct looker {
	sc_repo *r;
	struct sc_addr addr;
	sc_status st;
	int calls;
	uint8_t fp[32];
	int done; /* atomic */
};

/* No cmocka on other threads: the answer is checked by the main one. */
static sc_status looker_fn(void *arg, const struct sc_repo_entry *e)
{
	struct looker *l = arg;

	l->calls++;
	memcpy(l->fp, e->fingerprint, 32);
	return SC_OK;
}

static void *lookup_main(void *arg)
{
	struct looker *l = arg;

	l->st = sc_repo_lookup_ex(l->r, &l->addr, g_now, NULL, SC_REPO_LOOKUP_LEAF, looker_fn,
				  l);
	__atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A lookup that must adopt a grown map while a build on another thread still
 * reads the old one waits for the build to let go of it; the build stops
 * (more than the 4096 addresses between its checks of the cancel flag) or ends
 * without installing anything, and the lookup gets the right answer. */
static void test_adopt_waits_for_build(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct refresher t = { 0 };
	struct looker l = { 0 };
	pthread_t th, lh;
	size_t map, count = 0;
	struct snap s;
	sc_repo *w, *r;
	uint8_t fp[32];
	int walked;

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	child_ok(&(struct child_op){ .grow = 6000, .cert = c });
	map = reader_mapsize();
	r = open_repo(SC_REPO_RDONLY);
	t.r = r;
	hook_set(HOOK_WAIT_MAIN);
	assert_int_equal(pthread_create(&th, NULL, refresh_main, &t), 0);
	wait_in_build();
	child_ok(&(struct child_op){ .grow = 12000, .prefix = "h", .cert = c });
	assert_true((size_t)data_size() > map); /* the reader must remap */
	l.r = r;
	l.addr = A("h11999@grow.test");
	assert_int_equal(pthread_create(&lh, NULL, lookup_main, &l), 0);
	/* not a bound on time: a lookup that finished here would have remapped
	 * under a build still reading the old map */
	usleep(200 * 1000);
	assert_false(__atomic_load_n(&l.done, __ATOMIC_ACQUIRE));
	release_build();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pthread_join(lh, NULL), 0);
	if (getenv("IXTEST_VERBOSE"))
		fprintf(stderr, "build under a remap: %s\n", sc_strerror(t.st));
	assert_true(t.st == SC_ERR_TEMP || t.st == SC_ERR_CHANGED);
	assert_int_equal(l.st, SC_OK);
	assert_int_equal(l.calls, 1);
	sc_cert_fingerprint(c, fp);
	assert_memory_equal(l.fp, fp, 32);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, 1 + 6000 + 12000);
	assert_int_equal(leaf_walks(r, "g5999@grow.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_int_equal(leaf_walks(r, "h0@grow.test", &s, &walked), SC_OK);
	assert_false(walked);
	/* every address through the index (18001 slots probed), and as many that
	 * are not there */
	{
		unsigned long gets = gets_now();
		int found = 0, missing = 0;

		for (int i = 0; i < 12000; i++) {
			char buf[64];
			struct sc_addr a;

			for (int k = 0; k < 3; k++) {
				snprintf(buf, sizeof buf, "%s%d@grow.test", k == 0 ? "g" :
					 k == 1 ? "h" : "x", i);
				a = A(buf);
				memset(&l, 0, sizeof l);
				l.st = sc_repo_lookup_ex(r, &a, g_now, NULL, SC_REPO_LOOKUP_LEAF,
							 looker_fn, &l);
				if (l.st == SC_OK && l.calls == 1 && memcmp(l.fp, fp, 32) == 0)
					found++;
				else if (l.st == SC_ERR_NOT_FOUND && l.calls == 0)
					missing++;
			}
		}
		assert_int_equal(found, 6000 + 12000);
		assert_int_equal(missing, 6000 + 12000);
		assert_true(gets_now() == gets);
	}
	sc_repo_close(r);
	sc_cert_free(c);
}

/* ---- 7. the prefetch hint ----------------------------------------------------------- */

static void prefetch_garbage(sc_repo *r, const struct answers *want)
{
	static char over[2000], longest[SC_ADDR_KEY_MAX - 1], toolong[SC_ADDR_KEY_MAX];
	const char *args[SC_REPO_PREFETCH_MAX + 8];
	size_t lens[SC_REPO_PREFETCH_MAX + 8];
	static const struct {
		const char *s;
		size_t len;
	} odd[] = {
		{ "", 0 }, { "<>", 2 }, { "\"a b\"@example.test", 18 },
		{ "\"alice\"@example.test", 20 }, { "a@b\0c", 5 },
		{ "alice@example.test\0x", 20 }, { "alice@example.test", 0 },
		{ "alice@example.test", 18 }, { "<ALICE@EXAMPLE.TEST>", 20 },
		{ "<bob@example.test.>", 19 }, { "nobody@example.test", 19 },
		{ "\xff\xfe@\x80\x80", 5 }, { "@", 1 }, { "<", 1 }, { "a@", 2 },
		{ "jörg@bücher.example", 21 }, { "u1@bulk.test", 12 },
	};
	size_t n = 0;

	memset(over, 'a', sizeof over);
	over[700] = '@';
	memset(longest, 'b', sizeof longest);
	longest[100] = '@';
	memset(toolong, 'c', sizeof toolong);
	toolong[100] = '@';
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		args[n] = odd[i].s;
		lens[n++] = odd[i].len;
	}
	args[n] = over;
	lens[n++] = sizeof over;
	args[n] = longest; /* a key of SC_ADDR_KEY_MAX - 1 octets: the most there is */
	lens[n++] = sizeof longest;
	args[n] = toolong;
	lens[n++] = sizeof toolong;
	while (n < SC_REPO_PREFETCH_MAX + 8) {
		args[n] = "carol@example.test";
		lens[n++] = 18;
	}
	for (size_t i = 0; i < n; i++) {
		sc_repo_prefetch(r, &args[i], &lens[i], 1);
		sc_repo_prefetch(r, &args[i], &lens[i], n - i < SC_REPO_PREFETCH_MAX
							? n - i : SC_REPO_PREFETCH_MAX);
	}
	sc_repo_prefetch(r, args, lens, 0);
	sc_repo_prefetch(r, args, lens, SC_REPO_PREFETCH_MAX);
	sc_repo_prefetch(r, args, lens, n); /* more than it looks at */
	sc_repo_prefetch(r, args, lens, SIZE_MAX); /* those beyond the maximum are skipped */
	sc_repo_prefetch(r, NULL, lens, 3);
	sc_repo_prefetch(r, args, NULL, 3);
	sc_repo_prefetch(r, NULL, NULL, 3);
	sc_repo_prefetch(r, NULL, NULL, 0);
	answers_same(r, want);
}

static void test_prefetch(void **state)
{
	struct fixture f = { 0 };
	sc_cert *newc = mk_cert((struct tc_cert_opts){ .emails = { "u1@bulk.test" } }, 0, NULL);
	struct answers *want = calloc(1, sizeof *want);
	struct snap s;
	sc_repo *r;
	int walked;

	assert_non_null(want);
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	answers_take(r, want);
	prefetch_garbage(r, want); /* without an index */
	r = (sc_repo_close(r), refreshed(STORED));
	prefetch_garbage(r, want); /* with one */
	assert_int_equal(sc_repo_index_wanted(r), 0); /* still in use */
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_false(walked);
	/* with a stale one: the hint reads the old snapshot, answers are new */
	child_ok(&(struct child_op){ .addr = "u1@bulk.test", .cert = newc });
	{
		const char *a1[1] = { "u1@bulk.test" };
		size_t l1[1] = { 12 };

		sc_repo_prefetch(r, a1, l1, 1);
	}
	probe(r, "u1@bulk.test", HOW_ENTRIES, &s);
	assert_int_equal(s.calls, 2);
	sc_repo_close(r);
	free(want);
	sc_cert_free(newc);
	fixture_free(&f);
}

/* ---- 8. the key guess ------------------------------------------------------------- */

static void guess_equals_key(const char *text, unsigned flags)
{
	size_t len = strlen(text), klen = 0, g;
	struct sc_addr a;
	char key[SC_ADDR_KEY_MAX], buf[SC_ADDR_KEY_MAX + 8];

	if (sc_addr_parse(text, len, flags, &a, NULL) != SC_OK) {
		/* sc_addr_parse() refuses a trailing dot of the domain, which
		 * sc_addr_key() drops (certificates may carry one): the key of the
		 * address with the dot put back into its domain */
		char plain[SC_ADDR_KEY_MAX];
		size_t n = len, dn;

		assert_true(len < sizeof plain && len >= 2);
		memcpy(plain, text, len + 1);
		if (plain[n - 1] == '>')
			n--;
		if (plain[n - 1] != '.')
			fail_msg("test address does not parse: %s", text);
		memmove(plain + n - 1, plain + n, len - n + 1);
		if (sc_addr_parse(plain, len - 1, flags, &a, NULL) != SC_OK)
			fail_msg("test address does not parse: %s", plain);
		dn = strlen(a.domain);
		assert_true(dn + 1 < sizeof a.domain);
		a.domain[dn] = '.';
		a.domain[dn + 1] = '\0';
	}
	assert_int_equal(sc_addr_key(&a, key, sizeof key, &klen), SC_OK);
	memset(buf, 'Z', sizeof buf);
	g = sc_addr_key_guess(text, len, buf, sizeof buf);
	if (g != klen || strcmp(buf, key) != 0)
		fail_msg("guess for %s: %zu \"%.*s\", key %zu \"%s\"", text, g, (int)g, buf,
			 klen, key);
	/* exactly the room for the key and its NUL is enough; one less is not,
	 * and then nothing is written past it */
	memset(buf, 'Z', sizeof buf);
	assert_int_equal(sc_addr_key_guess(text, len, buf, klen + 1), klen);
	assert_string_equal(buf, key);
	memset(buf, 'Z', sizeof buf);
	assert_int_equal(sc_addr_key_guess(text, len, buf, klen), 0);
	for (size_t i = klen; i < sizeof buf; i++)
		assert_int_equal(buf[i], 'Z');
}

static void guess_refuses(const char *text, size_t len)
{
	char buf[SC_ADDR_KEY_MAX];

	if (sc_addr_key_guess(text, len, buf, sizeof buf) != 0)
		fail_msg("a guess for \"%.*s\" (%zu octets)", (int)len, text, len);
}

static void test_key_guess(void **state)
{
	static const char *const same[] = {
		"alice@example.test", "Alice@Example.TEST", "<Alice@Example.TEST>",
		"alice@example.test.", "<ALICE@EXAMPLE.TEST.>", "x@y",
		"First.Last+Tag@Sub.Example.Test", "a!#$%&'*+/=?^_`{|}~-@x.test",
		"jörg@bücher.example", "JÖRG@Bücher.Example.", "<δοκιμή@παράδειγμα.δοκιμή>",
		"用户@例子.广告", "user@[192.0.2.1]", "user@[IPv6:2001:DB8::1]",
	};
	static const char *const refused[] = {
		"\"alice\"@example.test", "\"a b\"@x.test", "<\"a\\\"b\"@x.test>",
		"a b@x.test", " a@x.test", "a@x.test ", "a\tb@x.test", "a\\b@x.test",
		"alice.example.test", "@example.test", "<@example.test>", "alice@",
		"<alice@>", "alice@.", "<>", "<", ">", "<a@b", "a@b>", "<<a@b>>",
		"a\x7f@x.test", "a@b,<c@d>", "",
	};
	char longest[SC_LOCAL_MAX + 1 + SC_DOMAIN_MAX + 1], over[2001];
	char buf[SC_ADDR_KEY_MAX];

	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
		guess_equals_key(same[i], SC_ADDR_UTF8 | SC_ADDR_LITERAL);
	/* the longest address there is: 64 + '@' + 4 labels of 63 and 3 dots */
	memset(longest, 'a', SC_LOCAL_MAX);
	longest[SC_LOCAL_MAX] = '@';
	memset(longest + SC_LOCAL_MAX + 1, 'B', SC_DOMAIN_MAX);
	for (int i = 1; i < 4; i++)
		longest[SC_LOCAL_MAX + i * 64] = '.';
	longest[sizeof longest - 1] = '\0';
	assert_int_equal(strlen(longest), SC_LOCAL_MAX + 1 + SC_DOMAIN_MAX);
	guess_equals_key(longest, 0);

	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		guess_refuses(refused[i], strlen(refused[i]));
	guess_refuses("a@b\0c", 5);          /* embedded NUL */
	guess_refuses("a\0@b.test", 9);
	guess_refuses("alice@example.test", 0);
	memset(over, 'a', sizeof over);
	over[1000] = '@';
	guess_refuses(over, sizeof over); /* 2001 octets: no key that long */
	assert_int_equal(sc_addr_key_guess("a@b", 3, buf, 0), 0);
	assert_int_equal(sc_addr_key_guess("a@b", 3, buf, 3), 0);
	assert_int_equal(sc_addr_key_guess("a@b", 3, buf, 4), 3);
	assert_string_equal(buf, "a@b");
	/* the trailing dot goes before the room is counted, brackets too */
	assert_int_equal(sc_addr_key_guess("<A@B.>", 6, buf, 4), 3);
	assert_string_equal(buf, "a@b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_answers, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_empty_store, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_through_index, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_never_stale, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_during_build, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_map_growth, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_growth_during_build, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refresh_after_growth_without_lookup, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_adopt_waits_for_build, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_prefetch, fx_setup, fx_teardown),
		cmocka_unit_test(test_key_guess),
	};

	resolve_real();
	g_now = time(NULL);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
