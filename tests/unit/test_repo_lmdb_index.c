/*
 * test_repo_lmdb_index.c - what the lookup index of read-only lmdb: handles
 * answers (lib/repo_lmdb_index.c, its use in lib/repo_lmdb.c,
 * sc_repo_index_wanted(), sc_repo_index_refresh() and sc_repo_prefetch() in
 * lib/repo.c), with no write racing a build: the answers through the index,
 * an empty store, broken data, handles and backends without an index, the
 * prefetch hint, and a build that fails. Writes during builds, concurrent builds and map growth are in
 * test_repo_lmdb_index_write.c; the key guess behind the prefetch in
 * test_addr_guess.c.
 *
 * What must hold: a lookup through the index answers exactly what the B-tree
 * answers, for found and missing addresses alike, with or without an index;
 * the prefetch hint changes no result whatever it is given; a build failing
 * on an LMDB error installs nothing, leaves an installed index in use and is
 * reported. Whether a lookup walked the B-tree is seen through the
 * interposed mdb_get() of repo_index_cases.h. A failing build racing a lookup
 * that adopts a grown map is in test_repo_lmdb_index_write.c.
 */
#include "repo_index_cases.h"
#include "lmdb_raw.h"

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

/* ---- 2. where there is no index -------------------------------------------------- */

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

/* ---- 3. the prefetch hint ----------------------------------------------------------- */

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

/* ---- 4. a build that fails ------------------------------------------------------ */

/* One refresh failing at mdb_stat() (HOOK_FAIL): SC_ERR_IO, nothing
 * installed; @p had_index: whether an index of the latest commit was in use
 * before (it stays in use). Lookups answer as before either way. */
static void refresh_fails(sc_repo *r, const struct answers *want, int had_index)
{
	size_t count = 9, bytes = 9;
	struct snap s;
	int walked;

	hook_set(HOOK_FAIL);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_ERR_IO);
	assert_true(g_hook_ran);
	assert_int_equal(count, 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(sc_repo_index_wanted(r), !had_index);
	answers_same(r, want);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_int_equal(walked, !had_index);
	assert_int_equal(leaf_walks(r, "nobody@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_int_equal(walked, !had_index);
}

static void assert_build_warning(const struct warns *w)
{
	assert_int_equal(w->n, 1);
	assert_non_null(strstr(w->last, "building the index"));
	assert_non_null(strstr(w->last, mdb_strerror(MDB_CORRUPTED)));
	assert_non_null(strstr(w->last, g_path));
}

static void test_build_fails(void **state)
{
	struct fixture f = { 0 };
	struct answers *want = calloc(1, sizeof *want);
	struct warns w = { 0 };
	size_t count = 0;
	struct snap s;
	sc_repo *r;
	int walked;

	assert_non_null(want);
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	answers_take(r, want);

	/* no warning callback: the message is held for one set later */
	refresh_fails(r, want, 0);
	sc_repo_set_warn(r, warn_keep, &w);
	assert_build_warning(&w);

	/* with one: reported at once */
	memset(&w, 0, sizeof w);
	refresh_fails(r, want, 0);
	assert_build_warning(&w);

	/* the failure was one build's: the next one installs */
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, STORED);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_false(walked);

	/* and a failing one leaves that index in use */
	memset(&w, 0, sizeof w);
	refresh_fails(r, want, 1);
	assert_build_warning(&w);
	sc_repo_close(r);
	free(want);
	fixture_free(&f);
}

/* sc_repo_index_cancel() (shutdown): builds are refused from then on, while
 * the index in use stays in use until a write makes it stale, and lookups go on. */
static void test_cancel(void **state)
{
	struct fixture f = { 0 };
	size_t count = 0, bytes = 1;
	struct snap s;
	sc_repo *r;
	int walked;

	(void)state;
	sc_repo_index_cancel(NULL); /* nothing */
	fill_store(&f);
	r = open_repo(SC_REPO_RDONLY);
	assert_int_equal(sc_repo_index_refresh(r, &count, NULL), SC_OK);
	assert_int_equal(count, STORED);
	sc_repo_index_cancel(r);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_OK);
	assert_false(walked); /* the installed index still answers */
	assert_int_equal(sc_repo_index_wanted(r), 0);

	/* a write: the stale index goes, and no new one is built */
	child_ok(&(struct child_op){ .addr = "alice@example.test" });
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(sc_repo_index_refresh(r, &count, &bytes), SC_ERR_TEMP);
	assert_int_equal(count, 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(sc_repo_index_wanted(r), 1);
	assert_int_equal(leaf_walks(r, "alice@example.test", &s, &walked), SC_ERR_NOT_FOUND);
	assert_true(walked);
	assert_int_equal(leaf_walks(r, "bob@example.test", &s, &walked), SC_OK);
	assert_true(walked);
	sc_repo_close(r);
	fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_answers, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_empty_store, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_through_index, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_prefetch, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_build_fails, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cancel, fx_setup, fx_teardown),
	};

	return run_with_and_without_copies(tests, sizeof tests / sizeof tests[0]);
}
