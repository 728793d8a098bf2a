/*
 * test_repo_dir.c - the dir: backend (lib/repo_dir.c): the behaviour shared by all
 * backends (repo_cases.h), plus hand-written files (leaf + chain), junk skipped and
 * reported, file name escaping (no key escapes the directory), the .d directory,
 * hand edits visible at the next lookup, and atomic writes leaving no temp files.
 */
#define REPO_SCHEME "dir"
#include "repo_cases.h"

#include <dirent.h>

struct warns {
	int n;
	char last[1024];
};

static void warn_fn(void *arg, const char *msg)
{
	struct warns *w = arg;

	w->n++;
	snprintf(w->last, sizeof w->last, "%s", msg);
}

static int exists(const char *rel)
{
	char p[1200];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s", g_path, rel);
	return lstat(p, &st) == 0;
}

static void put(const char *rel, const void *data, size_t len)
{
	char p[1200];

	snprintf(p, sizeof p, "%s/%s", g_path, rel);
	tc_write_file(p, data, len);
}

static void rm(const char *rel)
{
	char p[1200];

	snprintf(p, sizeof p, "%s/%s", g_path, rel);
	tc_rmtree(p);
}

static void mkd(const char *rel)
{
	char p[1200];

	snprintf(p, sizeof p, "%s/%s", g_path, rel);
	assert_int_equal(mkdir(p, 0700), 0);
}

/* Number of entries in a directory, "." and ".." excluded. */
static int dir_count(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static char *pem_of(struct tc_cert_opts o, int chain, sc_cert **parsed)
{
	X509 *x, *v[2];
	char *pem;
	size_t len;

	if (!o.emails[0])
		o.emails[0] = "alice@example.test";
	x = tc_cert_new(&o, g_k, g_ca, g_cak);
	v[0] = x;
	v[1] = g_ca;
	tc_chain_pem(v, chain ? 2 : 1, &pem, &len);
	if (parsed)
		assert_int_equal(sc_cert_parse(pem, len, parsed), SC_OK);
	X509_free(x);
	return pem;
}

static void test_hand_written(void **state)
{
	sc_repo *r;
	sc_cert *c, *newer;
	char *pem = pem_of((struct tc_cert_opts){ .not_before_offset = -DAY }, 1, &c);
	char *pem2 = pem_of((struct tc_cert_opts){ 0 }, 0, &newer);
	char *text;
	struct warns wn = { 0 };
	struct got g;

	assert_int_equal(mkdir(g_path, 0700), 0);
	/* text around the block, as an admin's editor may leave it (RFC 7468 5.2) */
	assert_true(asprintf(&text, "Alice's certificate\n%s\n", pem) > 0);
	put("alice@example.test.pem", text, strlen(text));
	r = open_repo(SC_REPO_RDONLY);
	sc_repo_set_warn(r, warn_fn, &wn);
	assert_int_equal(lookup(r, "Alice@EXAMPLE.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(g.n_der, 2);
	assert_string_equal(g.key, "alice@example.test");

	/* the admin adds a newer one by hand: seen at the next lookup, no reopen */
	mkd("alice@example.test.d");
	put("alice@example.test.d/renewed.pem", pem2, strlen(pem2));
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, newer);
	assert_int_equal(g.n_der, 1);
	/* ... and breaks the first file: skipped, reported, the other still served */
	put("alice@example.test.pem", "-----BEGIN CERTIFICATE-----\nnope\n", 33);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, newer);
	assert_int_equal(wn.n, 1);
	assert_non_null(strstr(wn.last, "alice@example.test.pem"));
	rm("alice@example.test.d/renewed.pem");
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(wn.n, 2);
	free(text);
	free(pem);
	free(pem2);
	sc_cert_free(c);
	sc_cert_free(newer);
	sc_repo_close(r);
}

static void test_junk_skipped(void **state)
{
	sc_repo *r;
	sc_cert *c, *c2;
	char *pem = pem_of((struct tc_cert_opts){ 0 }, 0, &c);
	char *main_text;
	size_t main_len;
	struct warns wn = { 0 };
	struct got g;

	assert_int_equal(mkdir(g_path, 0700), 0);
	put("alice@example.test.pem", "junk\n", 5);
	mkd("alice@example.test.d");
	put("alice@example.test.d/x.pem", pem, strlen(pem));
	put("alice@example.test.d/y.pem", "\0\1\2", 3);
	put("alice@example.test.d/README", "not a .pem: ignored", 19);
	put("alice@example.test.d/.swp.pem", "hidden: ignored", 15);
	mkd("alice@example.test.d/z.pem"); /* a directory: skipped */
	r = open_repo(0);
	sc_repo_set_warn(r, warn_fn, &wn);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(wn.n, 3); /* main file, y.pem, z.pem */
	assert_int_equal(count_all(r), 1);

	/* storing never overwrites the admin's broken file: the new one goes to .d */
	c2 = mk_cert((struct tc_cert_opts){ .not_before_offset = -60 }, 0, NULL);
	store(r, "alice@example.test", c2);
	{
		char p[1200];

		snprintf(p, sizeof p, "%s/alice@example.test.pem", g_path);
		assert_int_equal(tc_read_file(p, &main_text, &main_len), 0);
		assert_int_equal(main_len, 5);
		assert_memory_equal(main_text, "junk\n", 5);
		free(main_text);
	}
	assert_int_equal(count_entries(r, "alice@example.test"), 2);
	free(pem);
	sc_cert_free(c);
	sc_cert_free(c2);
	sc_repo_close(r);
}

static void test_escaping(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct keys_seen k = { .n = 0 };
	struct got g;

	store(r, "a/b@example.test", c);
	assert_true(exists("a%2Fb@example.test.pem"));
	store(r, "\"../../evil\"@example.test", c);
	assert_true(exists("%22..%2F..%2Fevil%22@example.test.pem"));
	store(r, "j\xc3\xb6rg@example.test", c);
	assert_true(exists("j%C3%B6rg@example.test.pem"));
	store(r, "a%b@example.test", c);
	assert_true(exists("a%25b@example.test.pem"));
	store(r, "x+tag@example.test", c);
	assert_true(exists("x+tag@example.test.pem"));
	/* nothing was written anywhere but inside the repository directory */
	assert_int_equal(dir_count(g_tmp), 1);
	assert_int_equal(dir_count(g_path), 5);

	assert_int_equal(lookup(r, "\"../../evil\"@example.test", NULL, &g), SC_OK);
	assert_string_equal(g.key, "\"../../evil\"@example.test");
	assert_int_equal(lookup(r, "a/b@example.test", NULL, &g), SC_OK);
	assert_int_equal(sc_repo_list(r, keys_fn, &k), SC_OK);
	assert_int_equal(k.n, 5);
	assert_string_equal(k.keys[0], "\"../../evil\"@example.test");
	assert_string_equal(k.keys[1], "a%b@example.test");
	assert_string_equal(k.keys[2], "a/b@example.test");
	assert_string_equal(k.keys[3], "j\xc3\xb6rg@example.test");
	assert_string_equal(k.keys[4], "x+tag@example.test");
	sc_cert_free(c);
	sc_repo_close(r);
}

static void test_bad_names_in_list(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	char *pem = pem_of((struct tc_cert_opts){ 0 }, 0, NULL);
	struct warns wn = { 0 };

	sc_repo_set_warn(r, warn_fn, &wn);
	store(r, "alice@example.test", c);
	put(".hidden.pem", pem, strlen(pem));     /* hidden: ignored silently */
	put("notes.txt", "x", 1);                 /* not ours: ignored silently */
	put("%61lice@example.test.pem", pem, strlen(pem)); /* not the canonical name */
	put("bad%2@example.test.pem", pem, strlen(pem));   /* broken escape */
	assert_int_equal(count_all(r), 1);
	assert_int_equal(wn.n, 2);
	assert_non_null(strstr(wn.last, "not an escaped address key"));
	free(pem);
	sc_cert_free(c);
	sc_repo_close(r);
}

static void test_d_directory(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c1 = mk_cert((struct tc_cert_opts){ .not_before_offset = -DAY }, 0, NULL);
	sc_cert *c2 = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct sc_addr a = A("alice@example.test");
	uint8_t fp[32];
	char hex[65], rel[200];
	size_t n;
	struct got g;

	store(r, "alice@example.test", c1);
	store(r, "alice@example.test", c2);
	sc_cert_fingerprint(c2, fp);
	sc_hex(fp, 32, hex);
	snprintf(rel, sizeof rel, "alice@example.test.d/%s.pem", hex);
	assert_true(exists("alice@example.test.pem"));
	assert_true(exists(rel));
	/* storing c2 again replaces its file, no third one */
	store(r, "alice@example.test", c2);
	assert_int_equal(count_entries(r, "alice@example.test"), 2);
	/* remove the main file's certificate: the .d one is still served */
	sc_cert_fingerprint(c1, fp);
	assert_int_equal(sc_repo_remove(r, &a, fp, &n), SC_OK);
	assert_int_equal(n, 1);
	assert_false(exists("alice@example.test.pem"));
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c2);
	assert_int_equal(g.n_der, 2);
	/* a new store fills the free main file again */
	store(r, "alice@example.test", c1);
	assert_true(exists("alice@example.test.pem"));
	assert_int_equal(sc_repo_remove(r, &a, NULL, &n), SC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(dir_count(g_path), 0); /* .d removed too, no temp files */
	sc_cert_free(c1);
	sc_cert_free(c2);
	sc_repo_close(r);
}

static void test_too_long_key(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	char addr[400] = "";
	struct sc_addr a;
	struct got g;
	size_t o = 0;

	/* 32 two-octet characters escape to 192 bytes; with the domain > NAME_MAX */
	for (int i = 0; i < 32; i++)
		o += (size_t)snprintf(addr + o, sizeof addr - o, "\xc3\xa9");
	snprintf(addr + o, sizeof addr - o, "@%s.example.test",
		 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij");
	a = A(addr);
	assert_int_equal(sc_repo_store(r, &a, c), SC_ERR_TOO_LONG);
	assert_int_equal(lookup(r, addr, NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_repo_remove(r, &a, NULL, NULL), SC_ERR_NOT_FOUND);
	sc_cert_free(c);
	sc_repo_close(r);
}

static int lookup_expect_temp(void)
{
	sc_repo *r = NULL;
	struct sc_addr a;
	struct got g = { 0 };
	sc_status st;

	if (sc_repo_open(g_spec, SC_REPO_RDONLY, &r, NULL, 0) != SC_OK)
		return 1;
	if (sc_addr_parse("alice@example.test", 18, 0, &a, NULL) != SC_OK)
		return 2;
	/* 451, not 550: the certificate may well exist */
	st = sc_repo_lookup(r, &a, time(NULL), NULL, got_fn, &g);
	sc_repo_close(r);
	return st == SC_ERR_TEMP && g.calls == 0 ? 0 : 3;
}

static int store_expect_perm(void)
{
	sc_repo *r = NULL;
	sc_cert *c = mk_cert((struct tc_cert_opts){ .emails = { "bob@example.test" } }, 0,
			     NULL);
	struct sc_addr a;
	sc_status st;

	if (sc_repo_open(g_spec, 0, &r, NULL, 0) != SC_OK)
		return 1;
	if (sc_addr_parse("bob@example.test", 16, 0, &a, NULL) != SC_OK)
		return 2;
	st = sc_repo_store(r, &a, c);
	sc_repo_close(r);
	sc_cert_free(c);
	return st == SC_ERR_PERM ? 0 : 3;
}

static void test_unreadable_is_temporary(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	char p[1200];
	struct got g;

	store(r, "alice@example.test", c);
	assert_int_equal(chmod(g_tmp, 0755), 0);
	assert_int_equal(chmod(g_path, 0755), 0);
	snprintf(p, sizeof p, "%s/alice@example.test.pem", g_path);
	assert_int_equal(chmod(p, 0), 0);
	assert_int_equal(unprivileged(lookup_expect_temp), 0);
	assert_int_equal(unprivileged(store_expect_perm), 0);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	sc_cert_free(c);
	sc_repo_close(r);
}

/* The store moved away or replaced while open: 451 for every address, not 550. */
static void test_vanished_store_is_temporary(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	char away[800];
	struct got g;

	store(r, "alice@example.test", c);
	snprintf(away, sizeof away, "%s.away", g_path);
	assert_int_equal(rename(g_path, away), 0);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_TEMP);
	assert_int_equal(lookup(r, "nobody@example.test", NULL, &g), SC_ERR_TEMP);
	tc_write_file(g_path, "not a directory\n", 16);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_TEMP);
	assert_int_equal(lookup(r, "nobody@example.test", NULL, &g), SC_ERR_TEMP);
	assert_int_equal(g.calls, 0);
	assert_int_equal(unlink(g_path), 0);
	assert_int_equal(rename(away, g_path), 0);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_int_equal(lookup(r, "nobody@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	sc_cert_free(c);
	sc_repo_close(r);
}

static void test_not_a_directory(void **state)
{
	sc_repo *r = NULL;
	char err[512] = "";

	tc_write_file(g_path, "x", 1);
	assert_int_equal(sc_repo_open(g_spec, 0, &r, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, "not a directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		REPO_CASES,
		cmocka_unit_test_setup_teardown(test_hand_written, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_junk_skipped, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_escaping, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_in_list, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_d_directory, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_too_long_key, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_is_temporary, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_vanished_store_is_temporary, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_not_a_directory, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
