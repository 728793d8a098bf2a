/*
 * test_repo_lmdb_index_copy.c - the copies a lookup index may keep of the
 * entry lists (sc_repo_index_copy_limit(), sc_repo_index_copy_bytes(),
 * lib/repo_lmdb_index.c): where the answers' certificates then point, copies
 * that stop where the limit runs out (every limit up to the whole store, and a
 * store large enough that the unused end of the copies' memory is given back),
 * their accounting, and the memory of a dropped index, unmapped by the next
 * refresh rather than by the lookup that found the index stale. Everything else
 * about the index, with and without copies, is in test_repo_lmdb_index.c and
 * test_repo_lmdb_index_write.c.
 *
 * What must hold: copies change no answer; a lookup through an index with
 * copies reads the certificate from the copies, one without from the store's
 * map; the copies never exceed the limit; their memory outlives the index's
 * use until sc_repo_index_refresh() or sc_repo_close().
 */
#include "repo_index_cases.h"

#include <sys/mman.h>

/* Where @p p lies, per /proc/self/maps: MAP_STORE (the store's data file),
 * MAP_OTHER (anything else mapped, the copies among it) or MAP_NONE. */
enum map_kind { MAP_NONE, MAP_OTHER, MAP_STORE };

static enum map_kind map_kind(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	enum map_kind kind = MAP_NONE;

	assert_non_null(f);
	while (kind == MAP_NONE && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		int at = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) != 2 || at == 0)
			continue;
		if ((uintptr_t)p >= lo && (uintptr_t)p < hi)
			kind = strstr(line + at, g_path) && strstr(line + at, "/data.mdb") ?
				MAP_STORE : MAP_OTHER;
	}
	fclose(f);
	return kind;
}

struct where {
	int copied, mapped;
};

static sc_status where_fn(void *arg, const struct sc_repo_entry *e)
{
	struct where *w = arg;

	enum map_kind k = map_kind(e->der[0]);

	assert_int_not_equal(k, MAP_NONE);
	if (k == MAP_STORE)
		w->mapped++;
	else
		w->copied++;
	return SC_OK;
}

/* Where the leaves of every probe that is found point. */
static struct where where_all(sc_repo *r)
{
	struct where w = { 0, 0 };

	for (size_t i = 0; i < NPROBES; i++) {
		struct sc_addr a = A(g_probes[i]);
		sc_status st = sc_repo_lookup(r, &a, g_now, NULL, where_fn, &w);

		assert_true(st == SC_OK || st == SC_ERR_NOT_FOUND);
	}
	return w;
}

/* With a copy limit the build copies the entry lists into the index's own
 * memory until the limit is spent: the answers stay the same, the leaves
 * point into the copies, and the copies' bytes are counted and given back with
 * a stale index. */
static void test_copies(void **state)
{
	struct fixture f = { 0 };
	struct answers *before = calloc(1, sizeof *before);
	size_t bytes_map = 0, bytes_all = 0, bytes_part = 0, copies;
	struct where w;
	char spec[sizeof g_tmp + 16];
	sc_repo *r, *d;

	(void)state;
	assert_non_null(before);
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	answers_take(r, before);
	w = where_all(r);
	assert_int_equal(w.copied, 0); /* the B-tree: the map */
	assert_true(w.mapped >= 10);

	sc_repo_index_copy_limit(r, 0);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes_map), SC_OK);
	assert_int_equal(sc_repo_index_copy_bytes(r), 0);
	w = where_all(r);
	assert_int_equal(w.copied, 0);
	answers_same(r, before);

	sc_repo_index_copy_limit(r, SIZE_MAX);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes_all), SC_OK);
	copies = sc_repo_index_copy_bytes(r);
	assert_true(copies > 0);
	assert_int_equal(bytes_all, bytes_map + copies);
	w = where_all(r);
	assert_int_equal(w.mapped, 0);
	assert_true(w.copied >= 10);
	answers_same(r, before);

	/* half the room: the first entry lists in key order are copied, the
	 * others still read from the map, and the answers do not change */
	sc_repo_index_copy_limit(r, copies / 2);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes_part), SC_OK);
	assert_true(sc_repo_index_copy_bytes(r) > 0);
	assert_true(sc_repo_index_copy_bytes(r) <= copies / 2);
	assert_int_equal(bytes_part, bytes_map + sc_repo_index_copy_bytes(r));
	w = where_all(r);
	assert_true(w.copied > 0);
	assert_true(w.mapped > 0);
	answers_same(r, before);

	/* room for less than one entry list: none */
	sc_repo_index_copy_limit(r, 8);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes_part), SC_OK);
	assert_int_equal(sc_repo_index_copy_bytes(r), 0);
	assert_int_equal(bytes_part, bytes_map);

	/* a write makes the index stale: its copies count until the next
	 * refresh unmaps them, and go then */
	sc_repo_index_copy_limit(r, SIZE_MAX);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_int_equal(sc_repo_index_copy_bytes(r), copies);
	child_ok(&(struct child_op){ .addr = "alice@example.test" });
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_copy_bytes(r), copies);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_true(sc_repo_index_copy_bytes(r) > 0);
	assert_true(sc_repo_index_copy_bytes(r) < copies); /* alice's list is gone */
	sc_repo_close(r);

	/* no handle, or a backend without an index: nothing to set, nothing held */
	sc_repo_index_copy_limit(NULL, 1);
	assert_int_equal(sc_repo_index_copy_bytes(NULL), 0);
	snprintf(spec, sizeof spec, "dir:%s/dirrepo", g_tmp);
	assert_int_equal(sc_repo_open(spec, SC_REPO_RDONLY | SC_REPO_CREATE, &d, NULL, 0), SC_OK);
	sc_repo_index_copy_limit(d, SIZE_MAX);
	assert_int_equal(sc_repo_index_copy_bytes(d), 0);
	sc_repo_close(d);
	free(before);
	fixture_free(&f);
}

/* Limits from nothing to the whole store: the copies stop where the room runs
 * out, also within the alignment after a copy, and never change an answer. */
static void test_every_limit(void **state)
{
	struct fixture f = { 0 };
	struct answers *before = calloc(1, sizeof *before);
	size_t all, some = 0;
	sc_repo *r;

	(void)state;
	assert_non_null(before);
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	answers_take(r, before);
	sc_repo_index_copy_limit(r, SIZE_MAX);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	all = sc_repo_index_copy_bytes(r);
	assert_true(all > 0);
	/* every octet through the first entry lists, then in steps */
	for (size_t limit = 0; limit <= all + 8; limit += limit < 4096 || limit + 16 > all ? 1 : 13) {
		size_t got;
		struct snap s;
		int walked;

		sc_repo_index_copy_limit(r, limit);
		assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
		got = sc_repo_index_copy_bytes(r);
		if (got > limit)
			fail_msg("limit %zu: %zu bytes of copies", limit, got);
		if (limit >= all && got != all)
			fail_msg("limit %zu: %zu bytes of copies, not all %zu", limit, got, all);
		some += got > 0 && got < all;
		/* answered by the index; the last address in key order from the
		 * copies when all fit, from the map when none did */
		assert_int_equal(leaf_walks(r, "u9@bulk.test", &s, &walked), SC_OK);
		assert_false(walked);
		if (got == all || got == 0)
			assert_int_equal(map_kind(first_leaf(r, "u9@bulk.test")),
					 got ? MAP_OTHER : MAP_STORE);
		if (limit % 499 == 0 || limit + 8 >= all)
			answers_same(r, before);
	}
	assert_true(some > 0);
	sc_repo_close(r);
	free(before);
	fixture_free(&f);
}

/* BIG_STORE addresses: copies of several MiB, reserved for the worst case and
 * then cut back to what they use. */
static void test_large_store(void **state)
{
	struct fixture f = { 0 };
	sc_repo *r;
	struct sc_addr *addrs = fill_big_store(&f);
	size_t bytes = 0, count = 0, all;
	struct where wh;

	(void)state;
	r = open_repo(SC_REPO_RDONLY);
	sc_repo_index_copy_limit(r, SIZE_MAX);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_OK);
	assert_int_equal(count, BIG_STORE);
	all = sc_repo_index_copy_bytes(r);
	assert_true(all > (4u << 20)); /* beyond the first units of the trim */
	for (int i = 0; i < BIG_STORE; i += 997) {
		memset(&wh, 0, sizeof wh);
		assert_int_equal(sc_repo_lookup(r, &addrs[i], g_now, NULL, where_fn, &wh), SC_OK);
		assert_int_equal(wh.copied, 1);
	}
	/* a limit part of the way: the rest is read from the map */
	sc_repo_index_copy_limit(r, all / 3);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_true(sc_repo_index_copy_bytes(r) <= all / 3);
	assert_true(sc_repo_index_copy_bytes(r) > all / 4);
	memset(&wh, 0, sizeof wh);
	for (int i = 0; i < BIG_STORE; i += 101)
		assert_int_equal(sc_repo_lookup(r, &addrs[i], g_now, NULL, where_fn, &wh), SC_OK);
	assert_true(wh.copied > 0);
	assert_true(wh.mapped > 0);
	sc_repo_close(r);
	free(addrs);
	fixture_free(&f);
}

/* munmap() watched: whether the range holding g_watch was given back. */
static const void *g_watch;
static int g_watch_unmapped; /* atomic */

int munmap(void *addr, size_t len)
{
	int (*real)(void *, size_t) = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");

	if (g_watch && (uintptr_t)g_watch >= (uintptr_t)addr &&
	    (uintptr_t)g_watch - (uintptr_t)addr < len)
		__atomic_store_n(&g_watch_unmapped, 1, __ATOMIC_RELAXED);
	return real(addr, len);
}

static void watch(const void *p)
{
	g_watch = p;
	__atomic_store_n(&g_watch_unmapped, 0, __ATOMIC_RELAXED);
}

static int watched_unmapped(void)
{
	return __atomic_load_n(&g_watch_unmapped, __ATOMIC_RELAXED);
}

/* A lookup that finds the index stale only takes it out of use: its copies
 * stay mapped until the next refresh (off the lookup's thread in the daemon)
 * or the close, and are unmapped then. */
static void test_dropped_memory(void **state)
{
	struct fixture f = { 0 };
	const uint8_t *leaf;
	struct snap s;
	sc_repo *r;
	int walked;

	(void)state;
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	sc_repo_index_copy_limit(r, SIZE_MAX);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	leaf = first_leaf(r, "carol@example.test");
	assert_int_equal(map_kind(leaf), MAP_OTHER);
	watch(leaf);

	child_ok(&(struct child_op){ .addr = "alice@example.test" });
	assert_int_equal(leaf_walks(r, "carol@example.test", &s, &walked), SC_OK);
	assert_true(walked); /* stale: dropped by this lookup */
	assert_true(sc_repo_index_copy_bytes(r) > 0); /* still taken */
	assert_false(watched_unmapped());
	assert_int_equal(map_kind(leaf), MAP_OTHER);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_true(watched_unmapped());

	/* dropped and closed without another refresh: the close unmaps it */
	leaf = first_leaf(r, "carol@example.test");
	assert_int_equal(map_kind(leaf), MAP_OTHER);
	watch(leaf);
	child_ok(&(struct child_op){ .addr = "bob@example.test" });
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_false(watched_unmapped());
	sc_repo_close(r);
	assert_true(watched_unmapped());
	watch(NULL);
	fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copies, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_every_limit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_large_store, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dropped_memory, fx_setup, fx_teardown),
	};

	resolve_real();
	g_now = time(NULL);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
