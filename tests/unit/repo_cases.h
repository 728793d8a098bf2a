/*
 * repo_cases.h - behaviour every repository backend must show, included by
 * test_repo_lmdb.c and test_repo_dir.c (each defines REPO_SCHEME first). Test code
 * only: certificates come from tests/lib/testcert.h at run time.
 */
#ifndef SC_REPO_CASES_H
#define SC_REPO_CASES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "repo_backend.h"
#include "testcert.h"

#define DAY 86400L

/* Each including test file runs the cases it needs. */
#pragma GCC diagnostic ignored "-Wunused-function"

static tc_key *g_cak, *g_k;
static X509 *g_ca;
static char g_tmp[512], g_path[600], g_spec[700];

static int group_setup(void **state)
{
	g_cak = tc_key_shared(TC_P256);
	g_k = tc_key_new(TC_P256);
	g_ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Repo Test CA", .is_ca = 1,
						   .not_before_offset = -30 * DAY,
						   .not_after_offset = 3650 * DAY },
			   g_cak, NULL, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	X509_free(g_ca);
	tc_key_free(g_k);
	return 0;
}

static int fx_setup(void **state)
{
	tc_tmpdir(g_tmp, sizeof g_tmp);
	snprintf(g_path, sizeof g_path, "%s/repo", g_tmp);
	snprintf(g_spec, sizeof g_spec, "%s:%s", REPO_SCHEME, g_path);
	sc_repo_lmdb_set_initial_mapsize(0);
	return 0;
}

static int fx_teardown(void **state)
{
	tc_rmtree(g_tmp);
	return 0;
}

/* A certificate for alice (unless opts say otherwise) issued by the test CA. */
static sc_cert *mk_cert(struct tc_cert_opts o, int with_chain, X509 **keep)
{
	X509 *x, *v[2];
	char *pem;
	size_t len;
	sc_cert *c;

	if (!o.emails[0])
		o.emails[0] = "alice@example.test";
	if (!o.cn)
		o.cn = "Test User";
	x = tc_cert_new(&o, g_k, g_ca, g_cak);
	v[0] = x;
	v[1] = g_ca;
	tc_chain_pem(v, with_chain ? 2 : 1, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	free(pem);
	if (keep)
		*keep = x;
	else
		X509_free(x);
	return c;
}

static struct sc_addr A(const char *s)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse(s, strlen(s), SC_ADDR_UTF8, &a, NULL), SC_OK);
	return a;
}

/* Given to every handle opened: test_repo_lmdb_index*.c run their cases once
 * with the index pointing into the map (0) and once with copies. */
static size_t g_index_copy_limit;

static sc_repo *open_repo(unsigned flags)
{
	sc_repo *r = NULL;
	char err[512];

	err[0] = '\0';
	if (sc_repo_open(g_spec, flags, &r, err, sizeof err) != SC_OK)
		fail_msg("open %s: %s", g_spec, err);
	sc_repo_index_copy_limit(r, g_index_copy_limit);
	return r;
}

static void store(sc_repo *r, const char *addr, const sc_cert *c)
{
	struct sc_addr a = A(addr);

	assert_int_equal(sc_repo_store(r, &a, c), SC_OK);
}

struct got {
	int calls;
	uint8_t fp[32];
	size_t n_der;
	char key[SC_ADDR_KEY_MAX];
	uint8_t chain1[4096];
	size_t chain1_len;
	sc_status ret;
};

static sc_status got_fn(void *arg, const struct sc_repo_entry *e)
{
	struct got *g = arg;

	g->calls++;
	memcpy(g->fp, e->fingerprint, 32);
	g->n_der = e->n_der;
	assert_true(e->key_len < sizeof g->key);
	assert_int_equal(strlen(e->key), e->key_len);
	memcpy(g->key, e->key, e->key_len + 1);
	g->chain1_len = 0;
	if (e->n_der > 1 && e->der_len[1] <= sizeof g->chain1) {
		memcpy(g->chain1, e->der[1], e->der_len[1]);
		g->chain1_len = e->der_len[1];
	}
	return g->ret;
}

static sc_status lookup(sc_repo *r, const char *addr, const sc_crlset *crls, struct got *g)
{
	struct sc_addr a = A(addr);

	memset(g, 0, sizeof *g);
	return sc_repo_lookup(r, &a, time(NULL), crls, got_fn, g);
}

/* sc_repo_lookup_ex() with SC_REPO_LOOKUP_LEAF (CERT). */
static sc_status lookup_leaf(sc_repo *r, const char *addr, const sc_crlset *crls, struct got *g)
{
	struct sc_addr a = A(addr);

	memset(g, 0, sizeof *g);
	return sc_repo_lookup_ex(r, &a, time(NULL), crls, SC_REPO_LOOKUP_LEAF, got_fn, g);
}

static sc_status count_fn(void *arg, const struct sc_repo_entry *e)
{
	(*(size_t *)arg)++;
	return SC_OK;
}

static size_t count_entries(sc_repo *r, const char *addr)
{
	struct sc_addr a = A(addr);
	size_t n = 0;

	assert_int_equal(sc_repo_entries(r, &a, count_fn, &n), SC_OK);
	return n;
}

static size_t count_all(sc_repo *r)
{
	size_t n = 0;

	assert_int_equal(sc_repo_list(r, count_fn, &n), SC_OK);
	return n;
}

static void assert_fp(const struct got *g, const sc_cert *c)
{
	uint8_t fp[32];

	sc_cert_fingerprint(c, fp);
	assert_memory_equal(g->fp, fp, 32);
}

/*
 * Run @p fn in a child process without root's override of file modes: as the
 * caller when not root, else as nobody (65534). @p fn returns 0 on success.
 * @return the child's exit status.
 */
static int unprivileged(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(100);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* ---- cases ----------------------------------------------------------------- */

static void case_store_lookup(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	uint8_t *cader;
	size_t calen;
	struct got g;

	store(r, "alice@example.test", c);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_int_equal(g.calls, 1);
	assert_fp(&g, c);
	assert_string_equal(g.key, "alice@example.test");
	assert_int_equal(g.n_der, 2);
	tc_cert_der(g_ca, &cader, &calen);
	assert_int_equal(g.chain1_len, calen);
	assert_memory_equal(g.chain1, cader, calen);
	free(cader);
	/* the lookup key folds case (design.md "Lookup key") */
	assert_int_equal(lookup(r, "<ALICE@Example.TEST>", NULL, &g), SC_OK);
	assert_int_equal(g.calls, 1);
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(g.calls, 0);
	/* a prefix of a stored key is another address */
	assert_int_equal(lookup(r, "alic@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(lookup(r, "alice@example.tes", NULL, &g), SC_ERR_NOT_FOUND);
	assert_string_equal(sc_repo_spec(r), g_spec);
	sc_cert_free(c);
	sc_repo_close(r);
}

static void case_newest_valid(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	X509 *xrev;
	sc_cert *old = mk_cert((struct tc_cert_opts){ .not_before_offset = -3 * DAY }, 0, NULL);
	sc_cert *best = mk_cert((struct tc_cert_opts){ .not_before_offset = -DAY }, 0, NULL);
	sc_cert *future = mk_cert((struct tc_cert_opts){ .not_before_offset = DAY,
							.not_after_offset = 9 * DAY }, 0, NULL);
	sc_cert *expired = mk_cert((struct tc_cert_opts){ .not_before_offset = -10 * DAY,
							 .not_after_offset = -1 }, 0, NULL);
	sc_cert *revoked = mk_cert((struct tc_cert_opts){ .not_before_offset = -3600,
							 .serial = 4242 }, 0, &xrev);
	const long serials[] = { 4242 };
	sc_crlset *crls;
	char *crl;
	size_t crllen;
	struct got g;

	tc_crl_new(g_ca, g_cak, serials, 1, 0, 0, &crl, &crllen);
	assert_int_equal(sc_crlset_new(&crls), SC_OK);
	assert_int_equal(sc_crlset_add_mem(crls, crl, crllen), SC_OK);
	free(crl);
	store(r, "alice@example.test", future);
	store(r, "alice@example.test", old);
	store(r, "alice@example.test", revoked);
	store(r, "alice@example.test", expired);
	store(r, "alice@example.test", best);
	assert_int_equal(count_entries(r, "alice@example.test"), 5);

	assert_int_equal(lookup(r, "alice@example.test", crls, &g), SC_OK);
	assert_int_equal(g.calls, 1);
	assert_fp(&g, best);
	/* without the CRL the newer revoked one wins */
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, revoked);

	/* only unusable ones left: not found, like no entry at all */
	{
		struct sc_addr a = A("alice@example.test");
		uint8_t fp[32];
		size_t n;

		sc_cert_fingerprint(best, fp);
		assert_int_equal(sc_repo_remove(r, &a, fp, &n), SC_OK);
		assert_int_equal(n, 1);
		sc_cert_fingerprint(old, fp);
		assert_int_equal(sc_repo_remove(r, &a, fp, &n), SC_OK);
	}
	assert_int_equal(lookup(r, "alice@example.test", crls, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(g.calls, 0);
	assert_int_equal(count_entries(r, "alice@example.test"), 3);

	sc_crlset_free(crls);
	X509_free(xrev);
	sc_cert_free(old);
	sc_cert_free(best);
	sc_cert_free(future);
	sc_cert_free(expired);
	sc_cert_free(revoked);
	sc_repo_close(r);
}

/* A leaf-only lookup chooses what a whole one chooses (newest valid, CRL
 * applied); the chain may be left out, never the leaf; unknown flags refused. */
static void case_leaf_only(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *old = mk_cert((struct tc_cert_opts){ .not_before_offset = -3 * DAY }, 1, NULL);
	sc_cert *best = mk_cert((struct tc_cert_opts){ .not_before_offset = -DAY }, 1, NULL);
	struct sc_addr a = A("alice@example.test");
	struct got g, whole;

	store(r, "alice@example.test", old);
	store(r, "alice@example.test", best);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &whole), SC_OK);
	assert_int_equal(whole.n_der, 2);
	assert_int_equal(lookup_leaf(r, "alice@example.test", NULL, &g), SC_OK);
	assert_int_equal(g.calls, 1);
	assert_memory_equal(g.fp, whole.fp, 32);
	assert_fp(&g, best);
	assert_true(g.n_der == 1 || g.n_der == 2);
	assert_int_equal(lookup_leaf(r, "nobody@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(g.calls, 0);
	assert_int_equal(sc_repo_lookup_ex(r, &a, time(NULL), NULL, 1u << 7, got_fn, &g),
			 SC_ERR_ARG);
	sc_cert_free(old);
	sc_cert_free(best);
	sc_repo_close(r);
}

/* sc_repo_lookup_key(): by the key the caller made, the same answer as by the
 * address; any other string finds nothing (each backend escapes it: no path,
 * no filter wildcard), and no key is empty or SC_ADDR_KEY_MAX long. */
static void case_by_key(void **state)
{
	static const char *const strangers[] = {
		"Alice@example.test", "*@example.test", "alice*", "*",
		"../alice@example.test", "alice@example.test/../x", "alice@example.test\\",
		"(alice@example.test)", "alice@example.test)(mail=*",
	};
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct sc_addr a = A("Alice@Example.TEST");
	char key[SC_ADDR_KEY_MAX + 8];
	size_t keylen;
	struct got g, want;

	(void)state;
	store(r, "alice@example.test", c);
	assert_int_equal(sc_addr_key(&a, key, sizeof key, &keylen), SC_OK);
	assert_string_equal(key, "alice@example.test");
	assert_int_equal(lookup(r, "alice@example.test", NULL, &want), SC_OK);
	memset(&g, 0, sizeof g);
	assert_int_equal(sc_repo_lookup_key(r, key, keylen, time(NULL), NULL, 0, got_fn, &g),
			 SC_OK);
	assert_int_equal(g.calls, 1);
	assert_memory_equal(g.fp, want.fp, 32);
	assert_int_equal(g.n_der, want.n_der);
	assert_string_equal(g.key, "alice@example.test");
	/* the leaf only, and a key that is not NUL-terminated where it ends */
	memcpy(key + keylen, "XYZ", 4);
	memset(&g, 0, sizeof g);
	assert_int_equal(sc_repo_lookup_key(r, key, keylen, time(NULL), NULL,
					    SC_REPO_LOOKUP_LEAF, got_fn, &g), SC_OK);
	assert_int_equal(g.calls, 1);
	assert_memory_equal(g.fp, want.fp, 32);
	for (size_t i = 0; i < sizeof strangers / sizeof strangers[0]; i++) {
		memset(&g, 0, sizeof g);
		if (sc_repo_lookup_key(r, strangers[i], strlen(strangers[i]), time(NULL), NULL, 0,
				       got_fn, &g) != SC_ERR_NOT_FOUND || g.calls != 0)
			fail_msg("key \"%s\" found something", strangers[i]);
	}
	/* the arguments */
	memset(key, 'a', sizeof key);
	assert_int_equal(sc_repo_lookup_key(r, key, SC_ADDR_KEY_MAX, time(NULL), NULL, 0, got_fn,
					    &g), SC_ERR_ARG);
	assert_int_equal(sc_repo_lookup_key(r, key, 0, time(NULL), NULL, 0, got_fn, &g),
			 SC_ERR_ARG);
	/* a NUL inside: not the key before it */
	assert_int_equal(sc_repo_lookup_key(r, "alice@example.test\0x", 20, time(NULL), NULL, 0,
					    got_fn, &g), SC_ERR_ARG);
	assert_int_equal(sc_repo_lookup_key(r, NULL, 5, time(NULL), NULL, 0, got_fn, &g),
			 SC_ERR_ARG);
	assert_int_equal(sc_repo_lookup_key(r, "alice@example.test", 18, time(NULL), NULL, 1u << 7,
					    got_fn, &g), SC_ERR_ARG);
	assert_int_equal(sc_repo_lookup_key(r, "alice@example.test", 18, time(NULL), NULL, 0, NULL,
					    &g), SC_ERR_ARG);
	assert_int_equal(sc_repo_lookup_key(NULL, "alice@example.test", 18, time(NULL), NULL, 0,
					    got_fn, &g), SC_ERR_ARG);
	sc_cert_free(c);
	sc_repo_close(r);
}

static void case_ties(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	int64_t nb = (int64_t)time(NULL) - DAY;
	sc_cert *a = mk_cert((struct tc_cert_opts){ .not_before_abs = nb,
						    .not_after_abs = nb + 10 * DAY }, 0, NULL);
	sc_cert *b = mk_cert((struct tc_cert_opts){ .not_before_abs = nb,
						    .not_after_abs = nb + 20 * DAY }, 0, NULL);
	sc_cert *c1 = mk_cert((struct tc_cert_opts){ .not_before_abs = nb,
						     .not_after_abs = nb + 20 * DAY }, 0, NULL);
	uint8_t fb[32], fc[32];
	struct got g;

	store(r, "alice@example.test", b);
	store(r, "alice@example.test", a);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, b); /* same notBefore: later notAfter */
	store(r, "alice@example.test", c1);
	sc_cert_fingerprint(b, fb);
	sc_cert_fingerprint(c1, fc);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	/* same both: the larger fingerprint, whatever the storage order */
	assert_fp(&g, memcmp(fb, fc, 32) > 0 ? b : c1);
	sc_cert_free(a);
	sc_cert_free(b);
	sc_cert_free(c1);
	sc_repo_close(r);
}

static void case_replace_and_remove(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c1 = mk_cert((struct tc_cert_opts){ .not_before_offset = -2 * DAY }, 0, NULL);
	sc_cert *c2 = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct sc_addr alice = A("alice@example.test"), bob = A("bob@example.test");
	uint8_t fp1[32], fp2[32], zero[32] = { 0 };
	size_t n = 99;
	struct got g;

	store(r, "alice@example.test", c1);
	store(r, "alice@example.test", c1); /* same leaf again: replaces */
	assert_int_equal(count_entries(r, "alice@example.test"), 1);
	store(r, "alice@example.test", c2);
	store(r, "bob@example.test", c1);
	assert_int_equal(count_all(r), 3);

	sc_cert_fingerprint(c1, fp1);
	sc_cert_fingerprint(c2, fp2);
	assert_int_equal(sc_repo_remove(r, &alice, zero, &n), SC_ERR_NOT_FOUND);
	assert_int_equal(n, 0);
	assert_int_equal(sc_repo_remove(r, &alice, fp2, &n), SC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_memory_equal(g.fp, fp1, 32);
	store(r, "alice@example.test", c2);
	assert_int_equal(sc_repo_remove(r, &alice, NULL, &n), SC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_repo_remove(r, &alice, NULL, &n), SC_ERR_NOT_FOUND);
	assert_int_equal(n, 0);
	assert_int_equal(sc_repo_remove(r, &alice, NULL, NULL), SC_ERR_NOT_FOUND);
	/* bob untouched */
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_OK);
	assert_memory_equal(g.fp, fp1, 32);
	assert_int_equal(sc_repo_remove(r, &bob, fp1, NULL), SC_OK);
	assert_int_equal(count_all(r), 0);
	sc_cert_free(c1);
	sc_cert_free(c2);
	sc_repo_close(r);
}

struct keys_seen {
	char keys[8][64];
	size_t n;
};

static sc_status keys_fn(void *arg, const struct sc_repo_entry *e)
{
	struct keys_seen *k = arg;

	assert_true(k->n < 8);
	snprintf(k->keys[k->n++], sizeof k->keys[0], "%s", e->key);
	return SC_OK;
}

static void case_list_order(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	sc_cert *c2 = mk_cert((struct tc_cert_opts){ .not_before_offset = -60 }, 0, NULL);
	struct keys_seen k = { .n = 0 };

	store(r, "carol@example.test", c);
	store(r, "a.b@example.test", c);
	store(r, "alice@example.test", c);
	store(r, "alice@example.test", c2);
	store(r, "a@example.test", c);
	assert_int_equal(sc_repo_list(r, keys_fn, &k), SC_OK);
	assert_int_equal(k.n, 5);
	assert_string_equal(k.keys[0], "a.b@example.test");
	assert_string_equal(k.keys[1], "a@example.test");
	assert_string_equal(k.keys[2], "alice@example.test");
	assert_string_equal(k.keys[3], "alice@example.test");
	assert_string_equal(k.keys[4], "carol@example.test");
	sc_cert_free(c);
	sc_cert_free(c2);
	sc_repo_close(r);
}

static void case_callback_status(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct sc_addr a = A("alice@example.test");
	struct got g = { .ret = SC_ERR_POLICY };

	store(r, "alice@example.test", c);
	store(r, "bob@example.test", c);
	assert_int_equal(sc_repo_lookup(r, &a, time(NULL), NULL, got_fn, &g), SC_ERR_POLICY);
	assert_int_equal(g.calls, 1);
	g.calls = 0;
	assert_int_equal(sc_repo_list(r, got_fn, &g), SC_ERR_POLICY);
	assert_int_equal(g.calls, 1); /* the walk stopped */
	g.calls = 0;
	assert_int_equal(sc_repo_entries(r, &a, got_fn, &g), SC_ERR_POLICY);
	assert_int_equal(g.calls, 1);
	/* the repository still works after a stopped walk */
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_OK);
	sc_cert_free(c);
	sc_repo_close(r);
}

static void case_rdonly_and_missing(void **state)
{
	sc_repo *r = NULL, *w;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct sc_addr a = A("alice@example.test");
	uint8_t fp[32];
	char err[512] = "";
	struct got g;

	assert_int_equal(sc_repo_open(g_spec, 0, &r, err, sizeof err), SC_ERR_NOT_FOUND);
	assert_null(r);
	assert_non_null(strstr(err, g_path));
	assert_int_equal(sc_repo_open(g_spec, SC_REPO_RDONLY, &r, err, sizeof err),
			 SC_ERR_NOT_FOUND);
	/* read-only + create (the daemon on a fresh install): an empty store that
	 * answers "not found" and refuses writes, and sees a later writer's import */
	r = open_repo(SC_REPO_RDONLY | SC_REPO_CREATE);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	assert_int_equal(sc_repo_store(r, &a, c), SC_ERR_PERM);
	assert_int_equal(count_all(r), 0);
	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	sc_repo_close(r);
	tc_rmtree(g_path);

	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	r = open_repo(SC_REPO_RDONLY);
	assert_int_equal(sc_repo_store(r, &a, c), SC_ERR_PERM);
	sc_cert_fingerprint(c, fp);
	assert_int_equal(sc_repo_remove(r, &a, fp, NULL), SC_ERR_PERM);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_int_equal(count_all(r), 1);
	sc_repo_close(r);
	/* opened again without CREATE: the store exists now */
	r = open_repo(0);
	assert_int_equal(count_all(r), 1);
	sc_repo_close(r);
	sc_cert_free(c);
}

/* The daemon keeps a read-only handle open; the admin's writes through another
 * handle are visible at its next lookup, without reopening. */
static void case_reader_sees_writes(void **state)
{
	sc_repo *w = open_repo(SC_REPO_CREATE), *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	sc_cert *c2 = mk_cert((struct tc_cert_opts){ .not_before_offset = -2 * DAY }, 0, NULL);
	struct sc_addr alice = A("alice@example.test");
	struct got g;

	store(w, "alice@example.test", c);
	r = open_repo(SC_REPO_RDONLY);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	store(w, "bob@example.test", c);
	assert_int_equal(lookup(r, "bob@example.test", NULL, &g), SC_OK);
	store(w, "alice@example.test", c2); /* older notBefore: still c */
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_fp(&g, c);
	assert_int_equal(sc_repo_remove(w, &alice, NULL, NULL), SC_OK);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_ERR_NOT_FOUND);
	sc_repo_close(r);
	sc_repo_close(w);
	sc_cert_free(c);
	sc_cert_free(c2);
}

#define FORK_ENTRIES 300

/* Another process (the admin CLI) writes, enough to grow an lmdb: map, while this
 * process holds a read-only handle. */
static void case_fork_writer(void **state)
{
	sc_repo *w, *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 1, NULL);
	struct got g;
	int status;
	pid_t pid;

	sc_repo_lmdb_set_initial_mapsize(64 * 1024);
	w = open_repo(SC_REPO_CREATE);
	store(w, "alice@example.test", c);
	sc_repo_close(w);
	r = open_repo(SC_REPO_RDONLY);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	assert_int_equal(lookup(r, "u299@example.test", NULL, &g), SC_ERR_NOT_FOUND);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* child: its own handle; the parent's env is not touched here */
		sc_repo *cw = NULL;
		int bad = 0;

		if (sc_repo_open(g_spec, 0, &cw, NULL, 0) != SC_OK)
			_exit(10);
		for (int i = 0; i < FORK_ENTRIES; i++) {
			char buf[64];
			struct sc_addr a;

			snprintf(buf, sizeof buf, "u%d@example.test", i);
			if (sc_addr_parse(buf, strlen(buf), 0, &a, NULL) != SC_OK ||
			    sc_repo_store(cw, &a, c) != SC_OK)
				bad = 1;
		}
		sc_repo_close(cw);
		_exit(bad ? 11 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (int i = 0; i < FORK_ENTRIES; i += 37) {
		char buf[64];

		snprintf(buf, sizeof buf, "u%d@example.test", i);
		assert_int_equal(lookup(r, buf, NULL, &g), SC_OK);
		assert_int_equal(g.n_der, 2);
		assert_fp(&g, c);
	}
	assert_int_equal(lookup(r, "u299@example.test", NULL, &g), SC_OK);
	assert_int_equal(count_all(r), FORK_ENTRIES + 1);
	sc_repo_close(r);
	sc_cert_free(c);
}

static void case_too_many(void **state)
{
	sc_repo *r = open_repo(SC_REPO_CREATE);
	struct sc_addr a = A("alice@example.test");
	sc_cert *first = NULL, *c;

	for (int i = 0; i < SC_REPO_ENTRIES_MAX; i++) {
		c = mk_cert((struct tc_cert_opts){ .not_before_offset = -100 - i }, 0, NULL);
		store(r, "alice@example.test", c);
		if (i == 0)
			first = c;
		else
			sc_cert_free(c);
	}
	c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	assert_int_equal(sc_repo_store(r, &a, c), SC_ERR_TOO_MANY);
	/* replacing an existing one is still allowed */
	assert_int_equal(sc_repo_store(r, &a, first), SC_OK);
	assert_int_equal(count_entries(r, "alice@example.test"), SC_REPO_ENTRIES_MAX);
	sc_cert_free(c);
	sc_cert_free(first);
	sc_repo_close(r);
}

/* SC_REPO_CREATE makes missing parents too (the default store is STATE_DIR/certs). */
static void case_create_parents(void **state)
{
	sc_repo *r;
	sc_cert *c = mk_cert((struct tc_cert_opts){ 0 }, 0, NULL);
	struct stat st;
	struct got g;

	snprintf(g_path, sizeof g_path, "%s/state/sub/certs/", g_tmp);
	snprintf(g_spec, sizeof g_spec, "%s:%s", REPO_SCHEME, g_path);
	r = open_repo(SC_REPO_CREATE);
	assert_int_equal(stat(g_path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	store(r, "alice@example.test", c);
	assert_int_equal(lookup(r, "alice@example.test", NULL, &g), SC_OK);
	sc_repo_close(r);
	sc_cert_free(c);
}

#define REPO_CASES                                                                 \
	cmocka_unit_test_setup_teardown(case_store_lookup, fx_setup, fx_teardown),       \
	cmocka_unit_test_setup_teardown(case_newest_valid, fx_setup, fx_teardown),       \
	cmocka_unit_test_setup_teardown(case_leaf_only, fx_setup, fx_teardown),          \
	cmocka_unit_test_setup_teardown(case_by_key, fx_setup, fx_teardown),             \
	cmocka_unit_test_setup_teardown(case_ties, fx_setup, fx_teardown),               \
	cmocka_unit_test_setup_teardown(case_replace_and_remove, fx_setup, fx_teardown), \
	cmocka_unit_test_setup_teardown(case_list_order, fx_setup, fx_teardown),         \
	cmocka_unit_test_setup_teardown(case_callback_status, fx_setup, fx_teardown),    \
	cmocka_unit_test_setup_teardown(case_rdonly_and_missing, fx_setup, fx_teardown), \
	cmocka_unit_test_setup_teardown(case_reader_sees_writes, fx_setup, fx_teardown), \
	cmocka_unit_test_setup_teardown(case_fork_writer, fx_setup, fx_teardown),        \
	cmocka_unit_test_setup_teardown(case_too_many, fx_setup, fx_teardown),           \
	cmocka_unit_test_setup_teardown(case_create_parents, fx_setup, fx_teardown)

#endif
