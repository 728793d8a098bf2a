/*
 * test_repo_cache.c - the answer cache of remote backends (lib/repo_cache.c):
 * answers replayed as a backend's lookup does (entries, then the final NULL),
 * "no entries" cached too, the TTL on the caller's clock (a fake one here),
 * replacement, eviction of the oldest by key count and by bytes, an answer
 * larger than the cache refused, copies independent of the caller's buffers,
 * visitor errors passed on, and several threads reading and writing at once
 * while answers are evicted under readers; and the cache inside the ldap://
 * backend against a real slapd, where lib/repo.c still applies validity and
 * CRLs to cached entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "repo_backend.h"
#include "repo_cache.h"
#include "ldaptest.h"

/* A fake entry whose bytes all derive from @p tag, so a replay can be checked. */
struct fake {
	uint8_t leaf[64], ca[32], issuer[8], serial[4];
	struct sc_repo_entry e;
};

static void fake_make(struct fake *f, uint8_t tag)
{
	memset(f, 0, sizeof *f);
	memset(f->leaf, tag, sizeof f->leaf);
	memset(f->ca, tag ^ 0x55, sizeof f->ca);
	memset(f->issuer, tag ^ 0x11, sizeof f->issuer);
	memset(f->serial, tag ^ 0x22, sizeof f->serial);
	f->e.n_der = 2;
	f->e.der[0] = f->leaf;
	f->e.der_len[0] = sizeof f->leaf;
	f->e.der[1] = f->ca;
	f->e.der_len[1] = sizeof f->ca;
	f->e.not_before = 1000 + tag;
	f->e.not_after = 2000 + tag;
	memset(f->e.fingerprint, tag, sizeof f->e.fingerprint);
	f->e.issuer = f->issuer;
	f->e.issuer_len = sizeof f->issuer;
	f->e.serial = f->serial;
	f->e.serial_len = sizeof f->serial;
}

struct seen {
	int n, finals;
	uint8_t tags[8];
	char key[64];
	sc_status fail_at_entry; /* non-OK: return it for the first entry */
};

static sc_status seen_visit(void *arg, const struct sc_repo_entry *e)
{
	struct seen *s = arg;

	if (!e) {
		s->finals++;
		return SC_OK;
	}
	if (s->fail_at_entry != SC_OK)
		return s->fail_at_entry;
	/* every field is a faithful copy */
	assert_int_equal(e->n_der, 2);
	assert_int_equal(e->der_len[0], 64);
	assert_int_equal(e->der_len[1], 32);
	for (size_t i = 0; i < 64; i++)
		assert_int_equal(e->der[0][i], e->der[0][0]);
	assert_int_equal(e->der[1][0], e->der[0][0] ^ 0x55);
	assert_int_equal(e->issuer_len, 8);
	assert_int_equal(e->issuer[7], e->der[0][0] ^ 0x11);
	assert_int_equal(e->serial_len, 4);
	assert_int_equal(e->serial[3], e->der[0][0] ^ 0x22);
	assert_int_equal(e->not_before, 1000 + e->der[0][0]);
	assert_int_equal(e->not_after, 2000 + e->der[0][0]);
	assert_int_equal(e->fingerprint[31], e->der[0][0]);
	assert_non_null(e->key);
	assert_int_equal(strlen(e->key), e->key_len);
	snprintf(s->key, sizeof s->key, "%s", e->key);
	if (s->n < 8)
		s->tags[s->n] = e->der[0][0];
	s->n++;
	return SC_OK;
}

static int answer(struct sc_repo_cache *c, const char *key, time_t now, struct seen *s,
		  sc_status *st)
{
	memset(s, 0, sizeof *s);
	return sc_repo_cache_answer(c, key, strlen(key), now, seen_visit, s, st);
}

static void test_put_answer_ttl(void **state)
{
	struct sc_repo_cache *c;
	struct fake f[2];
	struct sc_repo_entry e[2];
	struct seen s;
	sc_status st = SC_ERR_INTERNAL;
	size_t keys, bytes;

	(void)state;
	assert_int_equal(sc_repo_cache_new(60, 0, 0, &c), SC_OK);
	/* empty cache: ask the backend */
	assert_int_equal(answer(c, "a@x", 100, &s, &st), 0);
	assert_int_equal(s.finals, 0);
	fake_make(&f[0], 7);
	fake_make(&f[1], 9);
	e[0] = f[0].e;
	e[1] = f[1].e;
	assert_int_equal(sc_repo_cache_put(c, "a@x", 3, 100, e, 2), SC_OK);
	/* the caller's buffers may go away: the cache holds copies */
	memset(&f, 0xee, sizeof f);
	memset(&e, 0xee, sizeof e);
	assert_int_equal(answer(c, "a@x", 159, &s, &st), 1);
	assert_int_equal(st, SC_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.finals, 1);
	assert_int_equal(s.tags[0], 7);
	assert_int_equal(s.tags[1], 9);
	assert_string_equal(s.key, "a@x");
	/* another key, a prefix, a longer one: misses */
	assert_int_equal(answer(c, "a@", 100, &s, &st), 0);
	assert_int_equal(answer(c, "a@xy", 100, &s, &st), 0);
	/* the TTL: at 160 the answer is 60 s old, gone (and dropped) */
	assert_int_equal(answer(c, "a@x", 160, &s, &st), 0);
	sc_repo_cache_usage(c, &keys, &bytes);
	assert_int_equal(keys, 0);
	assert_int_equal(bytes, 0);
	/* "no entries" is an answer too: the final call only */
	assert_int_equal(sc_repo_cache_put(c, "none@x", 6, 200, NULL, 0), SC_OK);
	assert_int_equal(answer(c, "none@x", 201, &s, &st), 1);
	assert_int_equal(st, SC_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.finals, 1);
	/* a clock that goes back is not trusted */
	assert_int_equal(answer(c, "none@x", 199, &s, &st), 0);
	sc_repo_cache_free(c);
	sc_repo_cache_free(NULL);
}

static void test_replace_and_visitor_error(void **state)
{
	struct sc_repo_cache *c;
	struct fake f;
	struct seen s;
	sc_status st;

	(void)state;
	assert_int_equal(sc_repo_cache_new(10, 0, 0, &c), SC_OK);
	fake_make(&f, 1);
	assert_int_equal(sc_repo_cache_put(c, "k", 1, 0, &f.e, 1), SC_OK);
	fake_make(&f, 2);
	assert_int_equal(sc_repo_cache_put(c, "k", 1, 5, &f.e, 1), SC_OK);
	assert_int_equal(answer(c, "k", 14, &s, &st), 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.tags[0], 2); /* the newer answer, with its own time */
	/* a visitor's error stops the replay and is returned, no final call */
	memset(&s, 0, sizeof s);
	s.fail_at_entry = SC_ERR_NOMEM;
	assert_int_equal(sc_repo_cache_answer(c, "k", 1, 14, seen_visit, &s, &st), 1);
	assert_int_equal(st, SC_ERR_NOMEM);
	assert_int_equal(s.finals, 0);
	/* bad arguments */
	assert_int_equal(sc_repo_cache_answer(c, "k", 1, 14, NULL, &s, &st), 0);
	assert_int_equal(sc_repo_cache_answer(NULL, "k", 1, 14, seen_visit, &s, &st), 0);
	assert_int_equal(sc_repo_cache_put(c, "k", 1, 0, NULL, 1), SC_ERR_ARG);
	assert_int_equal(sc_repo_cache_put(c, "k", 1, 0, &f.e, SC_REPO_ENTRIES_MAX + 1),
			 SC_ERR_TOO_LONG);
	f.e.n_der = SC_CHAIN_MAX + 1;
	assert_int_equal(sc_repo_cache_put(c, "k", 1, 0, &f.e, 1), SC_ERR_TOO_LONG);
	sc_repo_cache_free(c);
	assert_int_equal(sc_repo_cache_new(0, 0, 0, &c), SC_ERR_ARG);
	assert_null(c);
}

static void test_bounds_evict_oldest(void **state)
{
	struct sc_repo_cache *c;
	struct fake f;
	struct seen s;
	sc_status st;
	size_t keys, bytes, one;
	char key[16];

	(void)state;
	/* by key count: 4 keys, the fifth put drops the oldest */
	assert_int_equal(sc_repo_cache_new(100, 4, 0, &c), SC_OK);
	fake_make(&f, 3);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(sc_repo_cache_put(c, key, strlen(key), i, &f.e, 1), SC_OK);
	}
	sc_repo_cache_usage(c, &keys, &bytes);
	assert_int_equal(keys, 4);
	assert_int_equal(answer(c, "k0", 10, &s, &st), 0);
	for (int i = 1; i < 5; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(answer(c, key, 10, &s, &st), 1);
	}
	/* replacing k1 makes it the newest: k2 goes next */
	assert_int_equal(sc_repo_cache_put(c, "k1", 2, 11, &f.e, 1), SC_OK);
	assert_int_equal(sc_repo_cache_put(c, "k5", 2, 12, &f.e, 1), SC_OK);
	assert_int_equal(answer(c, "k2", 12, &s, &st), 0);
	assert_int_equal(answer(c, "k1", 12, &s, &st), 1);
	sc_repo_cache_usage(c, &keys, &one);
	assert_int_equal(keys, 4);
	one /= 4; /* bytes of one answer (same sizes) */
	sc_repo_cache_free(c);

	/* by bytes: room for three answers */
	assert_int_equal(sc_repo_cache_new(100, 0, 3 * one + one / 2, &c), SC_OK);
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "b%d", i);
		assert_int_equal(sc_repo_cache_put(c, key, strlen(key), i, &f.e, 1), SC_OK);
		sc_repo_cache_usage(c, &keys, &bytes);
		assert_true(bytes <= 3 * one + one / 2);
	}
	assert_int_equal(keys, 3);
	assert_int_equal(answer(c, "b6", 10, &s, &st), 0);
	assert_int_equal(answer(c, "b9", 10, &s, &st), 1);
	sc_repo_cache_free(c);

	/* an answer larger than the whole cache is refused, the rest stays */
	assert_int_equal(sc_repo_cache_new(100, 0, one / 2, &c), SC_OK);
	assert_int_equal(sc_repo_cache_put(c, "big", 3, 0, &f.e, 1), SC_ERR_TOO_LONG);
	assert_int_equal(answer(c, "big", 0, &s, &st), 0);
	sc_repo_cache_free(c);
}

/* Readers replay while writers replace and evict the same keys: each replay is
 * whole (an evicted answer lives until its last reader is done). */
struct race {
	struct sc_repo_cache *c;
	int id;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	struct fake f;
	char key[16];

	fake_make(&f, (uint8_t)(r->id + 1));
	for (int i = 0; i < 3000; i++) {
		struct seen s;
		sc_status st;

		snprintf(key, sizeof key, "r%d", i % 7);
		if ((i + r->id) % 3 == 0) {
			if (sc_repo_cache_put(r->c, key, strlen(key), i / 100, &f.e, 1) != SC_OK)
				abort();
		} else if (answer(r->c, key, i / 100, &s, &st)) {
			if (st != SC_OK || s.n != 1 || s.finals != 1)
				abort();
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct sc_repo_cache *c;
	pthread_t t[8];
	struct race r[8];
	size_t keys;

	(void)state;
	/* 3 keys for 7 names: constant eviction */
	assert_int_equal(sc_repo_cache_new(5, 3, 0, &c), SC_OK);
	for (int i = 0; i < 8; i++) {
		r[i].c = c;
		r[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	sc_repo_cache_usage(c, &keys, NULL);
	assert_true(keys <= 3);
	sc_repo_cache_free(c);
}

/* The cache inside the ldap:// backend, against a real slapd
 * (tests/lib/ldaptest.h): answers (and "none") reused within the TTL, off
 * with TTL 0, validity and CRLs applied by lib/repo.c to cached entries at
 * every lookup, SC_ERR_TEMP never cached. */
static void test_cache_in_ldap_store(void **state)
{
	const char *m1[] = { "c1@example.test", NULL }, *m2[] = { "c2@example.test", NULL };
	const char *m3[] = { "c3@example.test", NULL };
	uint8_t *d1, *d2, *d3, fp1[32], fp2[32], fp3[32];
	size_t l1, l2, l3;
	struct lt_slapd g_a;
	long revoked = 5001;
	char *crl;
	size_t crllen;
	sc_crlset *crls;
	struct lt_got g;
	sc_repo *cached, *fresh;

	(void)state;
	lt_pki_init();
	lt_slapd_init(&g_a);
	lt_slapd_start(&g_a);
	lt_make_leaf("c3@example.test", 5003, 0, &d3, &l3, fp3);
	lt_add_person(&g_a, "c3", m3, d3, l3);
	lt_make_leaf("c1@example.test", 5001, 0, &d1, &l1, fp1);
	lt_make_leaf("c2@example.test", 5002, 0, &d2, &l2, fp2);
	lt_add_person(&g_a, "c1", m1, d1, l1);
	cached = lt_open_store(g_a.url + 7, NULL, 3600, 3);
	fresh = lt_open_store(g_a.url + 7, NULL, 0, 3);
	assert_int_equal(lt_lookup(cached, "c1@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fp1, 32);
	/* "no entries" is remembered too */
	assert_int_equal(lt_lookup(cached, "c2@example.test", &g), SC_ERR_NOT_FOUND);
	lt_del_person(&g_a, "c1");
	lt_add_person(&g_a, "c2", m2, d2, l2);
	/* within the TTL the cached answers stand; without a cache the directory's */
	assert_int_equal(lt_lookup(cached, "c1@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fp1, 32);
	assert_int_equal(lt_lookup(cached, "c2@example.test", &g), SC_ERR_NOT_FOUND);
	assert_int_equal(lt_lookup(fresh, "c1@example.test", &g), SC_ERR_NOT_FOUND);
	assert_int_equal(lt_lookup(fresh, "c2@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fp2, 32);
	/* validity and CRLs are applied to the cached entry at every answer */
	assert_int_equal(lt_lookup_at(cached, "c1@example.test", time(NULL) + 31 * 86400, NULL, &g),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(lt_lookup_at(cached, "c1@example.test", time(NULL) - 2 * 86400, NULL, &g),
			 SC_ERR_NOT_FOUND);
	tc_crl_new(lt_ca, lt_key, &revoked, 1, 0, 0, &crl, &crllen);
	assert_int_equal(sc_crlset_new(&crls), SC_OK);
	assert_int_equal(sc_crlset_add_mem(crls, crl, crllen), SC_OK);
	assert_int_equal(lt_lookup_at(cached, "c1@example.test", time(NULL), crls, &g),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(g.calls, 0);
	/* and the same entry, still cached, is served when it is usable */
	assert_int_equal(lt_lookup(cached, "c1@example.test", &g), SC_OK);
	sc_crlset_free(crls);
	free(crl);
	/* SC_ERR_TEMP is never cached: an address first asked while the directory
	 * is down is found once it is back */
	lt_slapd_stop(&g_a);
	assert_int_equal(lt_lookup(cached, "c3@example.test", &g), SC_ERR_TEMP);
	assert_int_equal(lt_lookup(cached, "c1@example.test", &g), SC_OK); /* cached */
	lt_slapd_start(&g_a);
	for (int i = 0; i < 100 && lt_lookup(cached, "c3@example.test", &g) == SC_ERR_TEMP; i++)
		usleep(100000);
	assert_memory_equal(g.fp, fp3, 32);
	sc_repo_close(cached);
	sc_repo_close(fresh);
	lt_slapd_stop(&g_a);
	tc_rmtree(g_a.dir);
	lt_pki_free();
	free(d1);
	free(d2);
	free(d3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_answer_ttl),
		cmocka_unit_test(test_replace_and_visitor_error),
		cmocka_unit_test(test_bounds_evict_oldest),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_cache_in_ldap_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
