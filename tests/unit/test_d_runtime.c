/*
 * test_d_runtime.c - daemon/runtime.c: loading the bundle and every way it can
 * fail with a message an administrator can act on (missing file, unknown key
 * with FILE:LINE, half a TLS pair, unreadable TLS file, missing repository, bad
 * CRL), reload sharing open stores, generations, reference counting, and the
 * ordered `repository` list as cmd_cert.c uses it (first store that has the
 * address answers, an unavailable store gives 451 unless a later one answers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_d_fixture.h"
#include "log.h"
#include "session.h"

static struct dfix fix;

static int setup(void **state)
{
	log_init(LOG_SINK_NONE, 0);
	dfix_setup(&fix, "", 1);
	return 0;
}

static int teardown(void **state)
{
	dfix_teardown(&fix);
	return 0;
}

/* Write a config in the fixture dir: the fixture's keys replaced by @p body. */
static const char *write_conf(const char *name, const char *body)
{
	static char path[700];

	snprintf(path, sizeof path, "%s/%s", fix.dir, name);
	tc_write_file(path, body, strlen(body));
	return path;
}

static void load_fails(const char *body, sc_status want, const char *needle)
{
	struct runtime *rt = NULL;
	char err[1024] = "";
	sc_status rc = runtime_load(write_conf("bad.conf", body), NULL, &rt, err, sizeof err);

	if (rc != want)
		fail_msg("got %s (%s), want %s", sc_strerror(rc), err, sc_strerror(want));
	assert_null(rt);
	if (!strstr(err, needle))
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

static void test_load_ok(void **state)
{
	struct runtime *rt = fix.rt;

	assert_string_equal(rt->hostname, "mx.test");
	assert_non_null(rt->tls);
	assert_non_null(rt->crls);
	assert_int_equal(sc_crlset_crl_count(rt->crls), 1);
	assert_int_equal(rt->nrepos, 1);
	assert_int_equal(rt->idle_timeout, 300);
	assert_int_equal(rt->max_errors, 10);
	assert_int_equal(rt->max_connections, 4096);
	assert_int_equal(rt->submissions, RUNTIME_SUBMIT_OFF);
	assert_null(rt->cert_url);
	assert_ptr_equal(runtime_current(), rt);
}

static void test_load_errors(void **state)
{
	char body[2048], missing[600];
	struct runtime *rt = NULL;
	char err[512] = "";

	snprintf(missing, sizeof missing, "%s/nope.conf", fix.dir);
	assert_int_not_equal(runtime_load(missing, NULL, &rt, err, sizeof err), SC_OK);
	assert_null(rt);
	assert_non_null(strstr(err, "nope.conf"));

	load_fails("domains = example.test\nbogus = 1\n", SC_ERR_CONFIG, "bad.conf:2: bogus");
	snprintf(body, sizeof body, "domains = example.test\nrepository = dir:%s/repo\n"
		 "tls_cert_file = %s/tls.pem\n", fix.dir, fix.dir);
	load_fails(body, SC_ERR_CONFIG, "tls_cert_file and tls_key_file");
	snprintf(body, sizeof body, "domains = example.test\nrepository = dir:%s/repo\n"
		 "tls_cert_file = %s/none.pem\ntls_key_file = %s/tls.key\n", fix.dir, fix.dir,
		 fix.dir);
	load_fails(body, SC_ERR_IO, "bad.conf:3: tls_cert_file: ");
	load_fails(body, SC_ERR_IO, "none.pem");
	/* a store that cannot be created (its parent is a file) */
	snprintf(body, sizeof body,
		 "domains = example.test\nrepository = dir:%s/smtpcertd.conf/sub\n", fix.dir);
	load_fails(body, SC_ERR_IO, "bad.conf:2: repository: dir:");
	snprintf(body, sizeof body, "domains = example.test\nrepository = dir:%s/repo\n"
		 "crl_file = %s/smtpcertd.conf\n", fix.dir, fix.dir);
	load_fails(body, SC_ERR_SYNTAX, "bad.conf:3: crl_file: ");
	load_fails(body, SC_ERR_SYNTAX, "smtpcertd.conf");
}

static void test_reload_shares_stores(void **state)
{
	struct runtime *a = NULL, *b = NULL;
	char err[512] = "", text[64];

	assert_int_equal(runtime_load(fix.conf, fix.rt, &a, err, sizeof err), SC_OK);
	/* the same spec: the same open store (LMDB must not be opened twice) */
	assert_ptr_equal(a->repos[0], fix.rt->repos[0]);
	assert_int_equal(a->repos[0]->refs, 2);
	assert_true(a->generation > fix.rt->generation);
	/* without an old runtime: a store of its own */
	assert_int_equal(runtime_load(fix.conf, NULL, &b, err, sizeof err), SC_OK);
	assert_ptr_not_equal(b->repos[0], fix.rt->repos[0]);
	runtime_listen_text(a, text, sizeof text);
	assert_string_equal(text, "127.0.0.1:25");
	runtime_unref(b);
	runtime_unref(a);
	assert_int_equal(fix.rt->repos[0]->refs, 1);
}

/* repository_index is read at start: a reload keeps the running value, in
 * both directions (the index thread exists or not from the start on). */
static void test_repository_index_kept(void **state)
{
	struct runtime *off = NULL, *a = NULL, *b = NULL;
	char err[512] = "", body[sizeof fix.dir + 128];
	const char *conf;

	snprintf(body, sizeof body, "hostname = mx.test\ndomains = example.test\n"
		 "repository = dir:%s/repo\nrepository_index = no\n", fix.dir);
	conf = write_conf("noindex.conf", body);
	assert_true(fix.rt->repository_index);
	assert_int_equal(runtime_load(conf, NULL, &off, err, sizeof err), SC_OK);
	assert_false(off->repository_index);          /* at start: as configured */
	assert_int_equal(runtime_load(conf, fix.rt, &a, err, sizeof err), SC_OK);
	assert_true(a->repository_index);             /* a reload: as running */
	assert_int_equal(runtime_load(fix.conf, off, &b, err, sizeof err), SC_OK);
	assert_false(b->repository_index);
	runtime_unref(b);
	runtime_unref(a);
	runtime_unref(off);
}

static void test_current_swap(void **state)
{
	struct runtime *a = NULL;
	char err[512] = "";
	struct session s;

	assert_int_equal(runtime_load(fix.conf, fix.rt, &a, err, sizeof err), SC_OK);
	memset(&s, 0, sizeof s);
	session_init(&s, fix.rt, "p", "i");
	runtime_set_current(a);         /* a reload: drops the current's reference */
	assert_ptr_equal(runtime_current(), a);
	/* the session still holds the runtime it started with */
	assert_ptr_equal(s.rt, fix.rt);
	session_fini(&s);
	assert_int_equal(fix.rt->refs, 1); /* only the fixture's own now */
	runtime_ref(fix.rt);
	runtime_set_current(fix.rt);    /* back, for the other tests; frees a */
}

/* Two stores: A (empty, or broken for one address), then the fixture's repo. */
static void test_store_order_and_451(void **state)
{
	char body[2048], path[700], link[700], err[512] = "";
	struct runtime *rt = NULL;
	struct session s;
	const char *out;

	snprintf(path, sizeof path, "%s/a", fix.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	/* an entry that cannot be read: the store is "unavailable" for it */
	snprintf(link, sizeof link, "%s/a/loop@example.test.pem", fix.dir);
	assert_int_equal(symlink(link, link), 0);
	snprintf(link, sizeof link, "%s/a/alice@example.test.pem", fix.dir);
	assert_int_equal(symlink(link, link), 0);
	snprintf(body, sizeof body, "hostname = mx.test\ndomains = example.test\n"
		 "repository = dir:%s/a, dir:%s/repo\n", fix.dir, fix.dir);
	assert_int_equal(runtime_load(write_conf("two.conf", body), NULL, &rt, err, sizeof err),
			 SC_OK);
	assert_int_equal(rt->nrepos, 2);
	runtime_set_current(rt);
	memset(&s, 0, sizeof s);
	session_init(&s, rt, "p", "i");
	session_line(&s, "HELO x", 6);
	sc_buf_clear(s.out);
	/* in the second store only: found */
	session_line(&s, "CERT grace@gw.test", 18);
	assert_int_equal(s.last_code, 550); /* gw.test is not a domain of two.conf */
	session_line(&s, "CERT dave@example.test", 22);
	assert_int_equal(s.last_code, 550);
	/* unreadable in A, present in B: B answers */
	session_line(&s, "CERT alice@example.test", 23);
	assert_int_equal(s.last_code, 250);
	/* unreadable in A, absent from B: unsure, so 451 and never 550 */
	sc_buf_clear(s.out);
	session_line(&s, "CERT loop@example.test", 22);
	out = sc_buf_data(s.out);
	assert_non_null(out);
	assert_true(strncmp(out, "451 4.3.0 Certificate repository temporarily unavailable\r\n",
			    58) == 0);
	/* 4xx is our fault: not counted as a client error */
	assert_int_equal(s.errors, 2);
	session_fini(&s);
	runtime_ref(fix.rt);
	runtime_set_current(fix.rt); /* drops rt */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_ok),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_reload_shares_stores),
		cmocka_unit_test(test_current_swap),
		cmocka_unit_test(test_repository_index_kept),
		cmocka_unit_test(test_store_order_and_451),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
