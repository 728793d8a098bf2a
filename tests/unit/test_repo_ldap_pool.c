/*
 * test_repo_ldap_pool.c - the connections of the ldap:// backend against real
 * slapd instances (tests/lib/ldaptest.h): the pool (lib/repo_ldap_pool.c)
 * under 12 threads (never more than 8 connections, each used by one thread,
 * every answer right), connections killed by a slapd restart replaced, failover
 * across two slapds in URL order and back to the first on re-open, a server
 * that accepts and never answers (one connect for 8 waiting threads, skipped
 * while it backs off, the next server answers), and ldapi:// on slapd's socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <ldap.h>

#include <smtpcert/smtpcert.h>
#include "repo_backend.h"
#include "repo_ldap.h"
#include "ldaptest.h"
#include "testsrv.h"

static struct lt_slapd g_a, g_b;

/* ---- the pool under threads ---- */

#define NUSERS 10
static uint8_t g_user_fp[NUSERS][32];

struct worker {
	struct sc_repo_ldap_pool *pool;
	sc_repo *repo;
	pthread_mutex_t *mu;
	int *held, *max_held;
	int id, bad;
};

static void *pool_worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 25; i++) {
		LDAP *ld;
		int reused, whoami;
		struct berval *authzid = NULL;

		if (sc_repo_ldap_pool_get(w->pool, &ld, &reused) != SC_OK) {
			w->bad++;
			continue;
		}
		pthread_mutex_lock(w->mu);
		if (++*w->held > *w->max_held)
			*w->max_held = *w->held;
		pthread_mutex_unlock(w->mu);
		/* one round trip on the connection, alone on it */
		whoami = ldap_whoami_s(ld, &authzid, NULL, NULL);
		ber_bvfree(authzid);
		if (whoami != LDAP_SUCCESS)
			w->bad++;
		pthread_mutex_lock(w->mu);
		--*w->held;
		pthread_mutex_unlock(w->mu);
		sc_repo_ldap_pool_put(w->pool, ld, SC_REPO_LDAP_CONN_OK);
	}
	return NULL;
}

static void *lookup_worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 20; i++) {
		int u = (w->id + i) % NUSERS;
		char addr[64];
		struct lt_got g;

		snprintf(addr, sizeof addr, "user%d@example.test", u);
		if (lt_lookup(w->repo, addr, &g) != SC_OK || g.calls != 1 ||
		    memcmp(g.fp, g_user_fp[u], 32))
			w->bad++;
		if (lt_lookup(w->repo, "nobody@example.test", &g) != SC_ERR_NOT_FOUND)
			w->bad++;
	}
	return NULL;
}

static void test_pool_threads(void **state)
{
	struct sc_repo_ldap_pool_cfg cfg = { .uri = g_a.url, .timeout = 10 };
	struct sc_repo_ldap_pool *pool;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int held = 0, max_held = 0;
	struct worker w[12];
	pthread_t t[12];
	sc_repo *r;

	(void)state;
	assert_int_equal(sc_repo_ldap_pool_new(&cfg, &pool), SC_OK);
	for (int i = 0; i < 12; i++) {
		w[i] = (struct worker){ .pool = pool, .mu = &mu, .held = &held,
					.max_held = &max_held, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, pool_worker, &w[i]), 0);
	}
	for (int i = 0; i < 12; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	/* 12 threads, never more than 8 connections, each used by one at a time */
	assert_true(max_held >= 1 && max_held <= SC_REPO_LDAP_POOL_MAX);
	assert_true(sc_repo_ldap_pool_open_count(pool) >= 1);
	assert_true(sc_repo_ldap_pool_open_count(pool) <= SC_REPO_LDAP_POOL_MAX);
	/* a broken one is closed, with the idle ones */
	{
		LDAP *ld;
		int reused;

		assert_int_equal(sc_repo_ldap_pool_get(pool, &ld, &reused), SC_OK);
		assert_true(reused);
		sc_repo_ldap_pool_put(pool, ld, SC_REPO_LDAP_CONN_BROKEN);
		assert_int_equal(sc_repo_ldap_pool_open_count(pool), 0);
	}
	sc_repo_ldap_pool_free(pool);

	/* the same through sc_repo_lookup: right answers in parallel, no cache */
	r = lt_open_store(g_a.url + 7, NULL, 0, 10);
	for (int i = 0; i < 12; i++) {
		w[i] = (struct worker){ .repo = r, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, lookup_worker, &w[i]), 0);
	}
	for (int i = 0; i < 12; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	/* every pooled connection dies with a restart: the next lookup replaces them
	 * (one retry on a new connection), no SC_ERR_TEMP */
	lt_slapd_stop(&g_a);
	lt_slapd_start(&g_a);
	for (int u = 0; u < NUSERS; u++) {
		char addr[64];
		struct lt_got g;

		snprintf(addr, sizeof addr, "user%d@example.test", u);
		assert_int_equal(lt_lookup(r, addr, &g), SC_OK);
		assert_memory_equal(g.fp, g_user_fp[u], 32);
	}
	sc_repo_close(r);
}

/* ---- failover ---- */

static void test_failover(void **state)
{
	uint8_t *da, *db, fpa[32], fpb[32];
	size_t la, lb;
	const char *mail[] = { "fo@example.test", NULL };
	char hosts[128], dead[8];
	struct lt_got g;
	sc_repo *r;

	(void)state;
	lt_slapd_init(&g_b);
	lt_slapd_start(&g_b);
	lt_make_leaf("fo@example.test", 0, 0, &da, &la, fpa);
	lt_make_leaf("fo@example.test", 0, 0, &db, &lb, fpb);
	lt_add_person(&g_a, "fo", mail, da, la);
	lt_add_person(&g_b, "fo", mail, db, lb);
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s,127.0.0.1:%s", g_a.port, g_b.port);
	r = lt_open_store(hosts, NULL, 0, 2);
	/* both up: the first answers */
	assert_int_equal(lt_lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpa, 32);
	/* first down: the second answers, without a SC_ERR_TEMP in between */
	lt_slapd_stop(&g_a);
	assert_int_equal(lt_lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpb, 32);
	/* first back: the pooled connection to the second stays (until it ages
	 * out, SC_REPO_LDAP_CONN_MAX_AGE)... */
	lt_slapd_start(&g_a);
	assert_int_equal(lt_lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpb, 32);
	/* ...and a connection opened again goes to the first, the second still up,
	 * once the first's backoff (ldap_timeout, 2 s here, counted from its
	 * failure) is over: until then new connections skip it */
	sleep(3);
	lt_slapd_stop(&g_b);
	lt_slapd_start(&g_b);
	assert_int_equal(lt_lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpa, 32);
	sc_repo_close(r);
	/* a refused first host in a fresh store: straight to the second */
	assert_int_equal(ts_dead_port(dead), 0);
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s,127.0.0.1:%s", dead, g_b.port);
	r = lt_open_store(hosts, NULL, 0, 3);
	assert_int_equal(lt_lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpb, 32);
	/* both down: SC_ERR_TEMP (451), never "not found"; the second back: served
	 * again once the backoff (one ldap_timeout) has passed */
	lt_slapd_stop(&g_b);
	assert_int_equal(lt_lookup(r, "fo@example.test", &g), SC_ERR_TEMP);
	assert_int_equal(lt_lookup(r, "nobody@example.test", &g), SC_ERR_TEMP);
	lt_slapd_start(&g_b);
	for (int i = 0; i < 100 && lt_lookup(r, "fo@example.test", &g) == SC_ERR_TEMP; i++)
		usleep(100000);
	assert_memory_equal(g.fp, fpb, 32);
	sc_repo_close(r);
	lt_slapd_stop(&g_b);
	tc_rmtree(g_b.dir);
	free(da);
	free(db);
}

/* ---- a server that accepts connections and never answers ---- */

static void *silent_worker(void *arg)
{
	struct worker *w = arg;
	struct lt_got g;

	if (lt_lookup(w->repo, "user1@example.test", &g) != SC_ERR_TEMP)
		w->bad++;
	return NULL;
}

/* Connections the kernel completed on @p fd (the backlog), accepted and closed. */
static int silent_drain(int fd)
{
	int n = 0, c;

	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		close(c);
		n++;
	}
	return n;
}

static void test_silent_server(void **state)
{
	char port[8], hosts[64];
	int fd = ts_listen(port);
	struct worker w[8];
	pthread_t t[8];
	struct lt_got g;
	sc_repo *r;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s", port);
	r = lt_open_store(hosts, NULL, 0, 2);
	/* 8 lookups at once while nothing is open: one thread connects, the others
	 * wait for its outcome; all SC_ERR_TEMP, one connection attempt in all */
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .repo = r, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, silent_worker, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	assert_int_equal(silent_drain(fd), 1);
	/* within the backoff: no attempt at all */
	assert_int_equal(lt_lookup(r, "user1@example.test", &g), SC_ERR_TEMP);
	assert_int_equal(silent_drain(fd), 0);
	sc_repo_close(r);
	/* silent first, a real server second: the first lookup waits one timeout
	 * and is answered by the second; then the silent one is skipped while
	 * 8 threads open more connections (its backoff is 5 s) */
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s,127.0.0.1:%s", port, g_a.port);
	r = lt_open_store(hosts, NULL, 0, 5);
	assert_int_equal(lt_lookup(r, "user1@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, g_user_fp[1], 32);
	assert_int_equal(silent_drain(fd), 1);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .repo = r, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, lookup_worker, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	assert_int_equal(silent_drain(fd), 0);
	sc_repo_close(r);
	close(fd);
}

/* ---- ldapi:// ---- */

static void test_ldapi(void **state)
{
	struct sc_repo_ldap_opts o = { .timeout = 5, .starttls = 1 /* ignored: a socket */ };
	char spec[800], err[512];
	struct lt_got g;
	sc_repo *r = NULL;

	(void)state;
	snprintf(spec, sizeof spec, "%s/" LT_PEOPLE "?userCertificate;binary?sub?(mail=%%s)",
		 g_a.ldapi);
	assert_int_equal(sc_repo_open_ex(spec, SC_REPO_RDONLY, &o, &r, err, sizeof err), SC_OK);
	assert_int_equal(lt_lookup(r, "user3@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, g_user_fp[3], 32);
	assert_int_equal(lt_lookup(r, "nobody@example.test", &g), SC_ERR_NOT_FOUND);
	sc_repo_close(r);
}

static int group_setup(void **state)
{
	(void)state;
	lt_pki_init();
	lt_slapd_init(&g_a);
	lt_slapd_start(&g_a);
	for (int u = 0; u < NUSERS; u++) {
		char uid[16], mail[64];
		const char *mails[] = { mail, NULL };
		uint8_t *der;
		size_t len;

		snprintf(uid, sizeof uid, "user%d", u);
		snprintf(mail, sizeof mail, "user%d@example.test", u);
		lt_make_leaf(mail, 0, 0, &der, &len, g_user_fp[u]);
		lt_add_person(&g_a, uid, mails, der, len);
		free(der);
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	lt_slapd_stop(&g_a);
	lt_slapd_stop(&g_b);
	tc_rmtree(g_a.dir);
	lt_pki_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_threads),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_ldapi),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
