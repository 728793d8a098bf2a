/*
 * test_repo_lmdb_index_write.c - the lookup index of read-only lmdb: handles
 * (lib/repo_lmdb_index.c, its use in lib/repo_lmdb.c, sc_repo_index_wanted()
 * and sc_repo_index_refresh() in lib/repo.c) while others write: writes
 * committed by another process, builds racing lookups and each other, a write
 * or a map growth during a build, and a map grown by another process adopted
 * by lookups and builds, also by a lookup while a build fails. What the index
 * answers with no write racing it is in test_repo_lmdb_index.c.
 *
 * What must hold: the index never answers after a write committed by another
 * process (writers here are forked children: LMDB forbids one environment open
 * twice in one process, lib/repo_lmdb.c); a build racing lookups, a second
 * build, a write or a map growth during a build leave every lookup right and
 * install nothing stale; a lookup adopting a grown map waits for a build
 * reading the old one, which stops; a failing build never deadlocks with it.
 * Builds are held, interrupted or failed at their snapshot by the mdb_stat()
 * hook of repo_index_cases.h and released when a lookup asks for the map lock
 * (its pthread_rwlock_wrlock()), never by timing.
 */
#include "repo_index_cases.h"

#include <signal.h>

/* ---- 1. never stale ---------------------------------------------------------------- */

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

/* ---- 2. builds racing lookups ------------------------------------------------------ */

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

/* ---- 3. a write committed while a build runs ----------------------------------------- */

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

/* A store of one address in a 64 KiB map, which any bulk write must grow. */
static void small_store(const sc_cert *c)
{
	sc_repo *w;

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
}

/* ---- 4. another process grows the map ------------------------------------------------ */

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
	sc_repo *r;
	size_t count = 0;
	const char *args[2] = { "alice@example.test", "<g399@GROW.test>" };
	size_t lens[2] = { 18, 16 };
	struct snap s;
	int walked;

	small_store(c);
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

	/* grown again, and a refresh before any lookup: the first build must
	 * succeed. The daemon (daemon/repo_index.c) calls wanted() and refresh()
	 * every second; when only lookups adopted a grown map, a server that got
	 * no CERT after an import grew the map had every build fail with
	 * MDB_MAP_RESIZED and built no index until the first lookup. Now
	 * sc_repo_index_wanted() adopts the new size (lib/repo_lmdb.c). */
	child_ok(&(struct child_op){ .grow = 3000, .prefix = "h", .cert = c });
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, 3401);
	assert_int_equal(leaf_walks(r, "h2999@grow.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_snap_fp(&s, c);
	assert_int_equal(leaf_walks(r, "h1234@grow.test", &s, &walked), SC_OK);
	assert_false(walked);
	assert_int_equal(leaf_walks(r, "h3000@grow.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_false(walked);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* The map grown by a child while a build reads its snapshot. */
static void test_growth_during_build(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	sc_repo *r;
	size_t count = 0;
	struct snap s;
	int walked;

	small_store(c);
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
	int arm;  /* report its exclusive lock request (wr_arm()) */
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

	if (l->arm)
		wr_arm(0);
	l->st = sc_repo_lookup_ex(l->r, &l->addr, g_now, NULL, SC_REPO_LOOKUP_LEAF, looker_fn,
				  l);
	__atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A lookup that must adopt a grown map while a build on another thread still
 * reads the old one waits for the build to let go of it; the build, seeing the
 * cancel flag set before that wait, stops (its snapshot has more than the 4096
 * addresses between two checks, INDEX_CANCEL_EVERY, all read after the hook)
 * and installs nothing, and the lookup gets the right answer. Not by timing:
 * the build is released only once the lookup asked for the map lock (the
 * interposed pthread_rwlock_wrlock()), and the build holds that lock shared
 * until then, so the lookup cannot have finished. */
static void test_adopt_waits_for_build(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct refresher t = { 0 };
	struct looker l = { 0 };
	pthread_t th, lh;
	size_t map, count = 0;
	struct snap s;
	sc_repo *r;
	uint8_t fp[32];
	int walked;

	small_store(c);
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
	l.arm = 1;
	assert_int_equal(pthread_create(&lh, NULL, lookup_main, &l), 0);
	if (!wait_flag(&g_wr_entered)) {
		release_build();
		fail_msg("the lookup never asked for the map lock (no adopt)");
	}
	/* it waits for the build's shared hold: a lookup that finished here
	 * would have remapped under a build still reading the old map */
	assert_false(__atomic_load_n(&l.done, __ATOMIC_ACQUIRE));
	release_build();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pthread_join(lh, NULL), 0);
	assert_int_equal(t.st, SC_ERR_TEMP); /* cancelled, not built and refused */
	assert_int_equal(t.count, 0);
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

/* A deadlock fails test_failed_build_during_adopt() instead of hanging CI. */
static void watchdog(int sig)
{
	static const char msg[] = "watchdog: a failing index build and a lookup adopting "
				  "the grown map deadlocked\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
	_exit(3);
}

/* A build that fails (MDB_CORRUPTED from mdb_stat(), HOOK_FAIL) while a lookup
 * on this thread adopts a map a child grew: the lookup holds the sc_repo's
 * lock and waits for the map lock, which the build holds shared; with no
 * warning callback set, sc_repo_warn() takes the sc_repo's lock, so the build
 * must report its failure only after letting go of the map lock. The build is
 * held in mdb_stat() until this thread asks for the map lock (wr_arm(1)). */
static void test_failed_build_during_adopt(void **state)
{
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct refresher t = { 0 };
	struct warns wk = { 0 };
	size_t map, count = 0;
	pthread_t th;
	struct snap s;
	sc_repo *r;
	int walked;

	small_store(c);
	map = reader_mapsize();
	r = open_repo(SC_REPO_RDONLY); /* no warning callback */
	t.r = r;
	hook_set(HOOK_WAIT_MAIN | HOOK_FAIL);
	assert_int_equal(pthread_create(&th, NULL, refresh_main, &t), 0);
	wait_in_build();
	child_ok(&(struct child_op){ .grow = 1000, .cert = c });
	assert_true((size_t)data_size() > map); /* the lookup must remap */
	signal(SIGALRM, watchdog);
	alarm(20);
	wr_arm(1);
	probe(r, "g999@grow.test", HOW_FULL, &s);
	release_build(); /* already, unless the lookup never asked for the lock */
	assert_int_equal(pthread_join(th, NULL), 0);
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	assert_true(g_wr_entered); /* set on this thread: it adopted the map */
	assert_true(g_hook_ran);
	assert_int_equal(s.st, SC_OK);
	assert_snap_fp(&s, c);
	assert_int_equal(s.e[0].n_der, 1);
	assert_int_equal(t.st, SC_ERR_IO);
	assert_int_equal(t.count, 0);
	assert_int_equal(sc_repo_index_wanted(r), 1); /* nothing installed */
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_true(walked);
	/* the failure was reported, held for a callback set later */
	sc_repo_set_warn(r, warn_keep, &wk);
	assert_int_equal(wk.n, 1);
	assert_non_null(strstr(wk.last, "building the index"));
	assert_non_null(strstr(wk.last, mdb_strerror(MDB_CORRUPTED)));
	/* the map adopted by the lookup, the next build succeeds */
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, 1001);
	assert_int_equal(leaf_walks(r, "g500@grow.test", &s, &walked), SC_OK);
	assert_false(walked);
	sc_repo_close(r);
	sc_cert_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_never_stale, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_during_build, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_map_growth, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_growth_during_build, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_adopt_waits_for_build, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_failed_build_during_adopt, fx_setup,
						fx_teardown),
	};

	return run_with_and_without_copies(tests, sizeof tests / sizeof tests[0]);
}
