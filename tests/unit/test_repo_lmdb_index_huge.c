/*
 * test_repo_lmdb_index_huge.c - a lookup index in the kernel's reserved huge
 * pages (sc_repo_index_huge_pages(), sc_repo_index_huge_bytes(),
 * lib/repo_lmdb_index.c): taken from the 2 MiB pool when it has room, in
 * ordinary memory when it has not or when not asked for, and every page given
 * back (the copies' unused reservation at once, the rest with the index).
 *
 * The pool is the machine's: run as root (CI) the tests size it themselves
 * and put it back as it was; otherwise they use what it has and skip what it
 * cannot show. Either way under a lock (POOL_LOCK), which the daemon's test of
 * the same key (tests/integration/test_repo_index.py) takes too, so that no
 * index is built in the pool while these count its pages.
 */
#include "repo_index_cases.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>

#define POOL_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define HUGE_PAGE (2u << 20)
#define POOL_LOCK "/tmp/smtpcert-test-hugepages.lock"

static int g_lock_fd = -1;
static long g_pool_was = -1; /* nr_hugepages before a test changed it */

static long pool_get(const char *name)
{
	char path[256], buf[64];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof path, POOL_DIR "%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof buf, f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

static int pool_set(long n)
{
	FILE *f = fopen(POOL_DIR "nr_hugepages", "w");
	int ok;

	if (!f)
		return 0;
	ok = fprintf(f, "%ld\n", n) > 0;
	ok = (fclose(f) == 0) && ok;
	return ok && pool_get("nr_hugepages") == n;
}

/* Free pages nobody has reserved: what a build can take. */
static long pool_room(void)
{
	long free_p = pool_get("free_hugepages"), resv = pool_get("resv_hugepages");

	return free_p < 0 || resv < 0 ? -1 : free_p - resv;
}

static void pool_lock(void)
{
	if (g_lock_fd >= 0)
		return;
	g_lock_fd = open(POOL_LOCK, O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
	assert_true(g_lock_fd >= 0);
	assert_int_equal(flock(g_lock_fd, LOCK_EX), 0);
}

/* Make the pool's room exactly @p pages. @return 0 when it cannot be done
 * (not root, no 2 MiB pool, memory short). */
static int pool_room_set(long pages)
{
	long nr, room;

	pool_lock(); /* before reading: the daemon's test may be giving pages back */
	nr = pool_get("nr_hugepages");
	room = pool_room();
	if (nr < 0 || room < 0 || geteuid() != 0)
		return 0;
	if (g_pool_was < 0)
		g_pool_was = nr;
	return pool_set(nr - room + pages) && pool_room() == pages;
}

/* Put the pool back, also after a failed test; only then say whether that
 * worked (a store a failed test left open still holds pages: the pool then
 * shrinks when they are freed, at exit at the latest). */
static int pool_teardown(void **state)
{
	long was = g_pool_was;
	int put_back = was < 0 || pool_set(was);

	g_pool_was = -1;
	if (g_lock_fd >= 0)
		close(g_lock_fd);
	g_lock_fd = -1;
	if (fx_teardown(state) != 0)
		return -1;
	if (!put_back)
		fprintf(stderr, "the huge page pool was not put back to %ld pages\n", was);
	return put_back ? 0 : -1;
}

/* Whether @p p lies in a mapping of the pool (/proc/self/maps names those
 * "/anon_hugepage"). */
static int in_pool(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = -1;

	assert_non_null(f);
	while (found < 0 && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)p >= lo &&
		    (uintptr_t)p < hi)
			found = strstr(line, "anon_hugepage") != NULL;
	}
	fclose(f);
	assert_true(found >= 0);
	return found;
}

/* Room in the pool: the table and the copies are taken from it in whole
 * pages, the copies' unused reservation is given back at once, answers do not
 * change, and closing gives every page back. */
static void test_in_pool(void **state)
{
	struct fixture f = { 0 };
	struct answers *before = calloc(1, sizeof *before);
	size_t bytes = 0, huge;
	sc_repo *r;
	long room;

	(void)state;
	assert_non_null(before);
	if (!pool_room_set(64) && pool_room() < 8) {
		free(before);
		skip(); /* neither root nor a pool with room: nothing to show */
	}
	room = pool_room();

	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	answers_take(r, before);
	sc_repo_index_copy_limit(r, SIZE_MAX);
	sc_repo_index_huge_pages(r, 1);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes), SC_OK);
	huge = sc_repo_index_huge_bytes(r);
	assert_int_equal(huge, bytes); /* all of it */
	/* one page of table, one of copies (a small store), and nothing more held
	 * back: the reservation of the copies was trimmed to the page they use */
	assert_int_equal(pool_room(), room - 2);
	assert_true(in_pool(first_leaf(r, "carol@example.test")));
	answers_same(r, before);

	/* a new build replaces it: the old pages go back with the old index */
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_int_equal(sc_repo_index_huge_bytes(r), bytes);
	assert_int_equal(pool_room(), room - 2);

	/* not asked for: ordinary memory, the pool untouched */
	sc_repo_index_huge_pages(r, 0);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_int_equal(sc_repo_index_huge_bytes(r), 0);
	assert_false(in_pool(first_leaf(r, "carol@example.test")));
	assert_int_equal(pool_room(), room);
	answers_same(r, before);
	sc_repo_index_huge_pages(r, 1);
	assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
	assert_int_equal(pool_room(), room - 2);
	sc_repo_close(r);
	assert_int_equal(pool_room(), room);
	free(before);
	fixture_free(&f);
}

/* A store whose copies take several pages: reserved for the worst case (more
 * than the room left after the table would refuse them), then cut back to
 * whole pages of what they use; a stale index's pages go with the refresh. */
static void test_large_store_in_pool(void **state)
{
	struct fixture f = { 0 };
	struct sc_addr *addrs = fill_big_store(&f);
	size_t copies, bytes = 0, table, pages;
	sc_repo *r;
	long room;

	(void)state;
	if (!pool_room_set(64) && pool_room() < 32) {
		free(addrs);
		fixture_free(&f);
		skip();
	}
	room = pool_room();
	r = open_repo(SC_REPO_RDONLY);
	sc_repo_index_copy_limit(r, SIZE_MAX);
	sc_repo_index_huge_pages(r, 1);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes), SC_OK);
	copies = sc_repo_index_copy_bytes(r);
	assert_true(copies > 2 * HUGE_PAGE); /* several pages */
	assert_int_equal(sc_repo_index_huge_bytes(r), bytes);
	/* the table's page(s) and the copies' rounded up: nothing else kept */
	table = bytes - copies;
	pages = (table + HUGE_PAGE - 1) / HUGE_PAGE + (copies + HUGE_PAGE - 1) / HUGE_PAGE;
	assert_int_equal(pool_room(), room - (long)pages);
	assert_true(in_pool(first_leaf(r, "big11999@bulk.test")));

	/* a limit short of a page: the pool's whole page is no licence to copy
	 * past it */
	sc_repo_index_copy_limit(r, 1u << 20);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes), SC_OK);
	assert_true(sc_repo_index_copy_bytes(r) > (1u << 19));
	assert_true(sc_repo_index_copy_bytes(r) <= (1u << 20));
	assert_int_equal(sc_repo_index_huge_bytes(r), bytes);
	assert_int_equal(pool_room(), room - 2);
	sc_repo_index_copy_limit(r, SIZE_MAX);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes), SC_OK);
	assert_int_equal(pool_room(), room - (long)pages);

	/* stale after a write: its pages are held until the next refresh */
	child_ok(&(struct child_op){ .addr = "big5@bulk.test" });
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(pool_room(), room - (long)pages);
	assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes), SC_OK);
	assert_int_equal(sc_repo_index_huge_bytes(r), bytes);
	copies = sc_repo_index_copy_bytes(r);
	pages = (bytes - copies + HUGE_PAGE - 1) / HUGE_PAGE + (copies + HUGE_PAGE - 1) / HUGE_PAGE;
	assert_int_equal(pool_room(), room - (long)pages);
	sc_repo_close(r);
	assert_int_equal(pool_room(), room);
	free(addrs);
	fixture_free(&f);
}

/* No room, or room for the table only: what does not fit is in ordinary
 * memory, the answers are the same, and nothing is left reserved. */
static void test_pool_short(void **state)
{
	struct fixture f = { 0 };
	struct answers *before = calloc(1, sizeof *before);
	size_t bytes = 0;
	sc_repo *r;

	(void)state;
	assert_non_null(before);
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	answers_take(r, before);
	sc_repo_index_copy_limit(r, SIZE_MAX);
	sc_repo_index_huge_pages(r, 1);
	if (pool_room_set(0) || pool_room() == 0) {
		assert_int_equal(sc_repo_index_refresh(r, NULL, NULL), SC_OK);
		assert_int_equal(sc_repo_index_huge_bytes(r), 0);
		assert_false(in_pool(first_leaf(r, "carol@example.test")));
		answers_same(r, before);
	} else {
		print_message("not root and the pool has room: no room not tested\n");
	}
	if (!pool_room_set(1)) {
		print_message("not root: the pool's room for the table alone not tested\n");
	} else {
		/* the table first: it fits, the copies do not */
		assert_int_equal(sc_repo_index_refresh(r, NULL, &bytes), SC_OK);
		assert_int_equal(sc_repo_index_huge_bytes(r), bytes - sc_repo_index_copy_bytes(r));
		assert_true(sc_repo_index_copy_bytes(r) > 0);
		assert_false(in_pool(first_leaf(r, "carol@example.test")));
		assert_int_equal(pool_room(), 0);
		answers_same(r, before);
	}
	sc_repo_close(r);
	if (g_pool_was >= 0)
		assert_int_equal(pool_room(), 1);
	free(before);
	fixture_free(&f);
}

/* No handle, a backend without an index, or no index yet: nothing held. */
static void test_no_index(void **state)
{
	char spec[sizeof g_tmp + 16];
	sc_repo *d, *r;

	(void)state;
	sc_repo_index_huge_pages(NULL, 1);
	assert_int_equal(sc_repo_index_huge_bytes(NULL), 0);
	snprintf(spec, sizeof spec, "dir:%s/dirrepo", g_tmp);
	assert_int_equal(sc_repo_open(spec, SC_REPO_RDONLY | SC_REPO_CREATE, &d, NULL, 0), SC_OK);
	sc_repo_index_huge_pages(d, 1);
	assert_int_equal(sc_repo_index_huge_bytes(d), 0);
	sc_repo_close(d);
	r = open_repo(SC_REPO_CREATE);
	sc_repo_close(r);
	r = open_repo(SC_REPO_RDONLY);
	sc_repo_index_huge_pages(r, 1);
	assert_int_equal(sc_repo_index_huge_bytes(r), 0);
	sc_repo_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_pool, fx_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(test_large_store_in_pool, fx_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(test_pool_short, fx_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(test_no_index, fx_setup, pool_teardown),
	};

	resolve_real();
	g_now = time(NULL);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
