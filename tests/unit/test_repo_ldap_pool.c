/*
 * test_repo_ldap_pool.c - the ldap:// backend against real slapd instances
 * (Debian's slapd, private config and data in a temp dir, loopback port, stopped
 * by PID): the connection pool (lib/repo_ldap_pool.c) under 12 threads (never
 * more than 8 connections, every answer right), connections killed by a slapd
 * restart replaced, failover across the URL's hosts and back to the first on
 * re-open, the answer cache (lib/repo_cache.c) with validity and CRLs rechecked
 * on cached entries, TEMP never cached, and list() (lib/repo_ldap_list.c) with
 * paged results, address keys and x-ca-dn chains. A missing slapd fails the test
 * naming the package (scripts/install-deps installs it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <ldap.h>

#include <smtpcert/smtpcert.h>
#include "repo_backend.h"
#include "repo_ldap.h"
#include "testcert.h"
#include "testsrv.h"

#define SUFFIX "dc=example,dc=test"
#define PEOPLE "ou=people," SUFFIX
#define ROOTDN "cn=admin," SUFFIX
#define ROOTPW "sc-test-secret"
#define SLAPD "/usr/sbin/slapd"

struct slapd {
	char dir[512];
	char port[8];
	char url[64];
	char ldapi[600]; /* ldapi://%2F...%2Fldapi: slapd's socket in dir */
	pid_t pid;
	int loaded;
};

static struct slapd g_a, g_b;
static tc_key *g_key;
static X509 *g_ca;

static void slapd_init(struct slapd *d)
{
	char conf[600];
	FILE *f;

	if (access(SLAPD, X_OK) != 0)
		fail_msg("%s not found: install slapd (scripts/install-deps)", SLAPD);
	memset(d, 0, sizeof *d);
	tc_tmpdir(d->dir, sizeof d->dir);
	assert_int_equal(ts_dead_port(d->port), 0);
	snprintf(d->url, sizeof d->url, "ldap://127.0.0.1:%s", d->port);
	{
		size_t o = snprintf(d->ldapi, sizeof d->ldapi, "ldapi://");

		for (const char *p = d->dir; *p && o + 4 < sizeof d->ldapi; p++)
			o += (size_t)snprintf(d->ldapi + o, sizeof d->ldapi - o,
					      *p == '/' ? "%%2F" : "%c", *p);
		snprintf(d->ldapi + o, sizeof d->ldapi - o, "%%2Fldapi");
	}
	snprintf(conf, sizeof conf, "%s/db", d->dir);
	assert_int_equal(mkdir(conf, 0700), 0);
	snprintf(conf, sizeof conf, "%s/slapd.conf", d->dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "include /etc/ldap/schema/core.schema\n"
		"include /etc/ldap/schema/cosine.schema\n"
		"include /etc/ldap/schema/inetorgperson.schema\n"
		"pidfile %s/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n"
		"database mdb\nmaxsize 67108864\nsuffix \"" SUFFIX "\"\n"
		"rootdn \"" ROOTDN "\"\nrootpw " ROOTPW "\ndirectory %s/db\n"
		/* 500 per plain search, unlimited in pages (RFC 2696): list() must
		 * page to see more than 500 entries */
		"sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited\n"
		"access to * by * read\n", d->dir, d->dir);
	fclose(f);
}

static LDAP *admin_conn(struct slapd *d)
{
	struct berval pw = { .bv_val = ROOTPW, .bv_len = strlen(ROOTPW) };
	int v3 = LDAP_VERSION3;
	LDAP *ld = NULL;

	assert_int_equal(ldap_initialize(&ld, d->url), LDAP_SUCCESS);
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	assert_int_equal(ldap_sasl_bind_s(ld, ROOTDN, LDAP_SASL_SIMPLE, &pw, NULL, NULL, NULL),
			 LDAP_SUCCESS);
	return ld;
}

/* Add @p dn with attributes given as NULL-terminated (type, value, len) triples
 * per attribute: one LDAPMod per type, one value each. */
static void ldap_put(struct slapd *d, const char *dn, const char *const *oc,
		     const char *const *types, const void *const *vals, const size_t *lens,
		     size_t n)
{
	LDAPMod mods[16], *pm[17];
	struct berval bv[16], *bvp[16][8], ocv[4], *ocp[5];
	LDAP *ld = admin_conn(d);
	size_t k = 0, i = 0, m = 1;

	for (; oc[k]; k++) {
		ocv[k].bv_val = (char *)oc[k];
		ocv[k].bv_len = strlen(oc[k]);
		ocp[k] = &ocv[k];
	}
	ocp[k] = NULL;
	mods[0].mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES;
	mods[0].mod_type = "objectClass";
	mods[0].mod_bvalues = ocp;
	pm[0] = &mods[0];
	/* values of one type in a row go into one modification */
	for (i = 0; i < n; i++) {
		size_t v = 0;

		bv[i].bv_val = (char *)vals[i];
		bv[i].bv_len = lens[i];
		if (i > 0 && !strcmp(types[i], types[i - 1])) {
			while (bvp[m - 1][v])
				v++;
			assert_true(v < 7);
			bvp[m - 1][v] = &bv[i];
			bvp[m - 1][v + 1] = NULL;
			continue;
		}
		bvp[m][0] = &bv[i];
		bvp[m][1] = NULL;
		mods[m].mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES;
		mods[m].mod_type = (char *)types[i];
		mods[m].mod_bvalues = bvp[m];
		pm[m] = &mods[m];
		m++;
	}
	pm[m] = NULL;
	assert_int_equal(ldap_add_ext_s(ld, dn, pm, NULL, NULL), LDAP_SUCCESS);
	ldap_unbind_ext_s(ld, NULL, NULL);
}

/* An inetOrgPerson uid=@p uid under @p base with @p mails and a DER value. */
static void add_person_in(struct slapd *d, const char *base, const char *uid,
			  const char *const *mails, const uint8_t *der, size_t derlen)
{
	static const char *const oc[] = { "inetOrgPerson", NULL };
	const char *types[8];
	const void *vals[8];
	size_t lens[8], n = 0;
	char dn[256];

	snprintf(dn, sizeof dn, "uid=%s,%s", uid, base);
	types[n] = "uid", vals[n] = uid, lens[n++] = strlen(uid);
	types[n] = "cn", vals[n] = uid, lens[n++] = strlen(uid);
	types[n] = "sn", vals[n] = uid, lens[n++] = strlen(uid);
	for (size_t i = 0; mails && mails[i] && n < 7; i++)
		types[n] = "mail", vals[n] = mails[i], lens[n++] = strlen(mails[i]);
	if (der)
		types[n] = "userCertificate;binary", vals[n] = der, lens[n++] = derlen;
	ldap_put(d, dn, oc, types, vals, lens, n);
}

static void add_person(struct slapd *d, const char *uid, const char *const *mails,
		       const uint8_t *der, size_t derlen)
{
	add_person_in(d, PEOPLE, uid, mails, der, derlen);
}

static void del_person(struct slapd *d, const char *uid)
{
	LDAP *ld = admin_conn(d);
	char dn[256];

	snprintf(dn, sizeof dn, "uid=%s," PEOPLE, uid);
	assert_int_equal(ldap_delete_ext_s(ld, dn, NULL, NULL), LDAP_SUCCESS);
	ldap_unbind_ext_s(ld, NULL, NULL);
}

static void slapd_start(struct slapd *d)
{
	char conf[600], log[600], listen[700];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int ok = 0;

	snprintf(conf, sizeof conf, "%s/slapd.conf", d->dir);
	snprintf(log, sizeof log, "%s/slapd.log", d->dir);
	snprintf(listen, sizeof listen, "%s/ %s", d->url, d->ldapi);
	d->pid = fork();
	assert_true(d->pid >= 0);
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(SLAPD, "slapd", "-h", listen, "-f", conf, "-d", "0", (char *)NULL);
		_exit(127);
	}
	sa.sin_port = htons((uint16_t)strtol(d->port, NULL, 10));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 300 && !ok; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0), st;

		ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
		close(s);
		if (!ok) {
			if (waitpid(d->pid, &st, WNOHANG) == d->pid)
				fail_msg("slapd exited at start, see %s", log);
			usleep(50000);
		}
	}
	if (!ok)
		fail_msg("slapd did not listen on %s, see %s", d->port, log);
	if (!d->loaded) {
		static const char *const dc[] = { "dcObject", "organization", NULL };
		static const char *const ou[] = { "organizationalUnit", NULL };
		const char *t1[] = { "dc", "o" }, *t2[] = { "ou" };
		const void *v1[] = { "example", "tests" }, *v2[] = { "people" };
		size_t l1[] = { 7, 5 }, l2[] = { 6 };

		ldap_put(d, SUFFIX, dc, t1, v1, l1, 2);
		ldap_put(d, PEOPLE, ou, t2, v2, l2, 1);
		d->loaded = 1;
	}
}

static void slapd_stop(struct slapd *d)
{
	int st;

	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return;
		}
		usleep(50000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
}

/* A leaf for @p mail signed by the test CA; its DER (malloc'ed) and SHA-256. */
static void make_leaf(const char *mail, long serial, long not_after, uint8_t **der,
		      size_t *len, uint8_t fp[32])
{
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = mail, .emails = { mail },
						      .serial = serial,
						      .not_after_offset = not_after,
						      .eku = TC_EKU_EMAIL_PROTECTION },
			      g_key, g_ca, g_key);
	sc_cert *c;

	tc_cert_der(x, der, len);
	X509_free(x);
	assert_int_equal(sc_cert_parse(*der, *len, &c), SC_OK);
	sc_cert_fingerprint(c, fp);
	sc_cert_free(c);
}

static sc_repo *open_store(const char *hosts, const char *ext, unsigned ttl, int timeout)
{
	struct sc_repo_ldap_opts o = { .timeout = timeout, .cache_ttl = ttl };
	char spec[512], err[512];
	sc_repo *r = NULL;

	snprintf(spec, sizeof spec, "ldap://%s/" PEOPLE "?userCertificate;binary?sub?(mail=%%s)%s",
		 hosts, ext ? ext : "");
	assert_int_equal(sc_repo_open_ex(spec, SC_REPO_RDONLY, &o, &r, err, sizeof err), SC_OK);
	return r;
}

static sc_status count_visit(void *arg, const struct sc_repo_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return SC_OK;
}

struct got {
	uint8_t fp[32];
	size_t n_der;
	int calls;
};

static sc_status got_visit(void *arg, const struct sc_repo_entry *e)
{
	struct got *g = arg;

	memcpy(g->fp, e->fingerprint, 32);
	g->n_der = e->n_der;
	g->calls++;
	return SC_OK;
}

static sc_status lookup_at(sc_repo *r, const char *addr, time_t now, const sc_crlset *crls,
			   struct got *g)
{
	struct sc_addr a;

	memset(g, 0, sizeof *g);
	if (sc_addr_parse(addr, strlen(addr), SC_ADDR_UTF8, &a, NULL) != SC_OK)
		return SC_ERR_ARG;
	return sc_repo_lookup(r, &a, now, crls, got_visit, g);
}

static sc_status lookup(sc_repo *r, const char *addr, struct got *g)
{
	return lookup_at(r, addr, time(NULL), NULL, g);
}

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
		struct got g;

		snprintf(addr, sizeof addr, "user%d@example.test", u);
		if (lookup(w->repo, addr, &g) != SC_OK || g.calls != 1 ||
		    memcmp(g.fp, g_user_fp[u], 32))
			w->bad++;
		if (lookup(w->repo, "nobody@example.test", &g) != SC_ERR_NOT_FOUND)
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
	r = open_store(g_a.url + 7, NULL, 0, 10);
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
	slapd_stop(&g_a);
	slapd_start(&g_a);
	for (int u = 0; u < NUSERS; u++) {
		char addr[64];
		struct got g;

		snprintf(addr, sizeof addr, "user%d@example.test", u);
		assert_int_equal(lookup(r, addr, &g), SC_OK);
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
	struct got g;
	sc_repo *r;

	(void)state;
	slapd_init(&g_b);
	slapd_start(&g_b);
	make_leaf("fo@example.test", 0, 0, &da, &la, fpa);
	make_leaf("fo@example.test", 0, 0, &db, &lb, fpb);
	add_person(&g_a, "fo", mail, da, la);
	add_person(&g_b, "fo", mail, db, lb);
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s,127.0.0.1:%s", g_a.port, g_b.port);
	r = open_store(hosts, NULL, 0, 2);
	/* both up: the first answers */
	assert_int_equal(lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpa, 32);
	/* first down: the second answers, without a SC_ERR_TEMP in between */
	slapd_stop(&g_a);
	assert_int_equal(lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpb, 32);
	/* first back: the pooled connection to the second stays (until it ages
	 * out, SC_REPO_LDAP_CONN_MAX_AGE)... */
	slapd_start(&g_a);
	assert_int_equal(lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpb, 32);
	/* ...and a connection opened again goes to the first, the second still up,
	 * once the first's backoff (ldap_timeout, 2 s here, counted from its
	 * failure) is over: until then new connections skip it */
	sleep(3);
	slapd_stop(&g_b);
	slapd_start(&g_b);
	assert_int_equal(lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpa, 32);
	sc_repo_close(r);
	/* a refused first host in a fresh store: straight to the second */
	assert_int_equal(ts_dead_port(dead), 0);
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s,127.0.0.1:%s", dead, g_b.port);
	r = open_store(hosts, NULL, 0, 3);
	assert_int_equal(lookup(r, "fo@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fpb, 32);
	/* both down: SC_ERR_TEMP (451), never "not found"; the second back: served
	 * again once the backoff (one ldap_timeout) has passed */
	slapd_stop(&g_b);
	assert_int_equal(lookup(r, "fo@example.test", &g), SC_ERR_TEMP);
	assert_int_equal(lookup(r, "nobody@example.test", &g), SC_ERR_TEMP);
	slapd_start(&g_b);
	for (int i = 0; i < 100 && lookup(r, "fo@example.test", &g) == SC_ERR_TEMP; i++)
		usleep(100000);
	assert_memory_equal(g.fp, fpb, 32);
	sc_repo_close(r);
	slapd_stop(&g_b);
	tc_rmtree(g_b.dir);
	free(da);
	free(db);
}

/* ---- the cache ---- */

static void test_cache(void **state)
{
	const char *m1[] = { "c1@example.test", NULL }, *m2[] = { "c2@example.test", NULL };
	uint8_t *d1, *d2, fp1[32], fp2[32];
	size_t l1, l2;
	long revoked = 5001;
	char *crl;
	size_t crllen;
	sc_crlset *crls;
	struct got g;
	sc_repo *cached, *fresh;

	(void)state;
	make_leaf("c1@example.test", 5001, 0, &d1, &l1, fp1);
	make_leaf("c2@example.test", 5002, 0, &d2, &l2, fp2);
	add_person(&g_a, "c1", m1, d1, l1);
	cached = open_store(g_a.url + 7, NULL, 3600, 3);
	fresh = open_store(g_a.url + 7, NULL, 0, 3);
	assert_int_equal(lookup(cached, "c1@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fp1, 32);
	/* "no entries" is remembered too */
	assert_int_equal(lookup(cached, "c2@example.test", &g), SC_ERR_NOT_FOUND);
	del_person(&g_a, "c1");
	add_person(&g_a, "c2", m2, d2, l2);
	/* within the TTL the cached answers stand; without a cache the directory's */
	assert_int_equal(lookup(cached, "c1@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fp1, 32);
	assert_int_equal(lookup(cached, "c2@example.test", &g), SC_ERR_NOT_FOUND);
	assert_int_equal(lookup(fresh, "c1@example.test", &g), SC_ERR_NOT_FOUND);
	assert_int_equal(lookup(fresh, "c2@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, fp2, 32);
	/* validity and CRLs are applied to the cached entry at every answer */
	assert_int_equal(lookup_at(cached, "c1@example.test", time(NULL) + 31 * 86400, NULL, &g),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(lookup_at(cached, "c1@example.test", time(NULL) - 2 * 86400, NULL, &g),
			 SC_ERR_NOT_FOUND);
	tc_crl_new(g_ca, g_key, &revoked, 1, 0, 0, &crl, &crllen);
	assert_int_equal(sc_crlset_new(&crls), SC_OK);
	assert_int_equal(sc_crlset_add_mem(crls, crl, crllen), SC_OK);
	assert_int_equal(lookup_at(cached, "c1@example.test", time(NULL), crls, &g),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(g.calls, 0);
	/* and the same entry, still cached, is served when it is usable */
	assert_int_equal(lookup(cached, "c1@example.test", &g), SC_OK);
	sc_crlset_free(crls);
	free(crl);
	/* SC_ERR_TEMP is never cached: an address first asked while the directory
	 * is down is found once it is back */
	slapd_stop(&g_a);
	assert_int_equal(lookup(cached, "user1@example.test", &g), SC_ERR_TEMP);
	assert_int_equal(lookup(cached, "c1@example.test", &g), SC_OK); /* cached */
	slapd_start(&g_a);
	for (int i = 0; i < 100 && lookup(cached, "user1@example.test", &g) == SC_ERR_TEMP; i++)
		usleep(100000);
	assert_memory_equal(g.fp, g_user_fp[1], 32);
	sc_repo_close(cached);
	sc_repo_close(fresh);
	free(d1);
	free(d2);
}

/* ---- a server that accepts connections and never answers ---- */

static void *silent_worker(void *arg)
{
	struct worker *w = arg;
	struct got g;

	if (lookup(w->repo, "user1@example.test", &g) != SC_ERR_TEMP)
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
	struct got g;
	sc_repo *r;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s", port);
	r = open_store(hosts, NULL, 0, 2);
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
	assert_int_equal(lookup(r, "user1@example.test", &g), SC_ERR_TEMP);
	assert_int_equal(silent_drain(fd), 0);
	sc_repo_close(r);
	/* silent first, a real server second: the first lookup waits one timeout
	 * and is answered by the second; then the silent one is skipped while
	 * 8 threads open more connections (its backoff is 5 s) */
	snprintf(hosts, sizeof hosts, "127.0.0.1:%s,127.0.0.1:%s", port, g_a.port);
	r = open_store(hosts, NULL, 0, 5);
	assert_int_equal(lookup(r, "user1@example.test", &g), SC_OK);
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
	struct got g;
	sc_repo *r = NULL;

	(void)state;
	snprintf(spec, sizeof spec, "%s/" PEOPLE "?userCertificate;binary?sub?(mail=%%s)",
		 g_a.ldapi);
	assert_int_equal(sc_repo_open_ex(spec, SC_REPO_RDONLY, &o, &r, err, sizeof err), SC_OK);
	assert_int_equal(lookup(r, "user3@example.test", &g), SC_OK);
	assert_memory_equal(g.fp, g_user_fp[3], 32);
	assert_int_equal(lookup(r, "nobody@example.test", &g), SC_ERR_NOT_FOUND);
	sc_repo_close(r);
}

/* ---- list ---- */

#define LISTOU "ou=list," SUFFIX
#define NLIST 510 /* more than one page (SC_REPO_LDAP_PAGE) and slapd's sizelimit */

struct listed {
	char keys[NLIST + 8][64];
	size_t n_der[NLIST + 8];
	size_t n;
};

static sc_status list_visit(void *arg, const struct sc_repo_entry *e)
{
	struct listed *l = arg;

	assert_true(l->n < NLIST + 8);
	assert_int_equal(strlen(e->key), e->key_len);
	snprintf(l->keys[l->n], sizeof l->keys[0], "%s", e->key);
	l->n_der[l->n++] = e->n_der;
	return SC_OK;
}

static char g_warned[1024];

static void keep_warn(void *arg, const char *msg)
{
	(void)arg;
	snprintf(g_warned, sizeof g_warned, "%s", msg);
}

static sc_repo *open_list_store(const char *filter, const char *ext)
{
	struct sc_repo_ldap_opts o = { .timeout = 10 };
	char spec[512], err[512];
	sc_repo *r = NULL;

	snprintf(spec, sizeof spec, "%s/" LISTOU "?userCertificate;binary?one?%s%s", g_a.url,
		 filter, ext ? ext : "");
	assert_int_equal(sc_repo_open_ex(spec, SC_REPO_RDONLY, &o, &r, err, sizeof err), SC_OK);
	sc_repo_set_warn(r, keep_warn, NULL);
	return r;
}

static void test_list(void **state)
{
	static const char *const ou[] = { "organizationalUnit", NULL };
	static const char *const ca_oc[] = { "organizationalUnit", "pkiCA", NULL };
	const char *t[] = { "ou", "cACertificate;binary" };
	const void *v[2];
	size_t l[2], calen;
	uint8_t *ca_der, *der, fp[32];
	const char *multi[] = { "M1@Example.TEST", "m2@example.test", NULL };
	const char *bad[] = { "not an address", NULL };
	struct listed *got = calloc(1, sizeof *got);
	char ext[128];
	sc_repo *r;
	int n = 0;

	(void)state;
	assert_non_null(got);
	v[0] = "list", l[0] = 4;
	ldap_put(&g_a, LISTOU, ou, t, v, l, 1);
	tc_cert_der(g_ca, &ca_der, &calen);
	v[0] = "ca", l[0] = 2, v[1] = ca_der, l[1] = calen;
	ldap_put(&g_a, "ou=ca," SUFFIX, ca_oc, t, v, l, 2);
	for (int i = 0; i < NLIST; i++) {
		char uid[16], mail[64];
		const char *mails[] = { mail, NULL };
		size_t len;

		snprintf(uid, sizeof uid, "p%03d", i);
		snprintf(mail, sizeof mail, "p%03d@example.test", i);
		make_leaf(mail, 0, 0, &der, &len, fp);
		add_person_in(&g_a, LISTOU, uid, mails, der, len);
		if (i == 0) {
			/* the same leaf for two addresses, a junk address, no certificate */
			add_person_in(&g_a, LISTOU, "multi", multi, der, len);
			add_person_in(&g_a, LISTOU, "bad", bad, der, len);
			add_person_in(&g_a, LISTOU, "nocert", bad, NULL, 0);
		}
		free(der);
	}
	r = open_list_store("(mail=%s)", NULL);
	assert_int_equal(sc_repo_list(r, list_visit, got), SC_OK);
	sc_repo_close(r);
	/* every page read; the keys normalised (sc_addr_key) and in order */
	assert_int_equal(got->n, NLIST + 2);
	assert_string_equal(got->keys[0], "m1@example.test");
	assert_string_equal(got->keys[1], "m2@example.test");
	assert_string_equal(got->keys[2], "p000@example.test");
	assert_string_equal(got->keys[NLIST + 1], "p509@example.test");
	for (size_t i = 1; i < got->n; i++)
		assert_true(strcmp(got->keys[i - 1], got->keys[i]) < 0);
	assert_int_equal(got->n_der[2], 1);
	/* the entries no address can find are reported, once */
	assert_non_null(strstr(g_warned, ": 2 values of mail are not an address; skipped"));
	/* a filter with more around %s; bare leaves get their chain from x-ca-dn */
	memset(got, 0, sizeof *got);
	snprintf(ext, sizeof ext, "?x-ca-dn=ou=ca%%2C%s", "dc=example%2Cdc=test");
	r = open_list_store("(%26(objectClass=inetOrgPerson)(mail=p00%s))", ext);
	assert_int_equal(sc_repo_list(r, list_visit, got), SC_OK);
	sc_repo_close(r);
	assert_int_equal(got->n, 10);
	assert_string_equal(got->keys[9], "p009@example.test");
	assert_int_equal(got->n_der[9], 2);
	/* a filter that names no attribute for the address cannot be listed;
	 * one naming a non-address attribute lists nothing */
	r = open_list_store("(mail~=%s)", NULL);
	assert_int_equal(sc_repo_list(r, count_visit, &n), SC_ERR_UNSUPPORTED);
	sc_repo_close(r);
	r = open_list_store("(uid=%s)", NULL);
	assert_int_equal(sc_repo_list(r, count_visit, &n), SC_OK);
	sc_repo_close(r);
	assert_int_equal(n, 0);
	assert_non_null(strstr(g_warned, ": 513 values of uid are not an address"));
	/* a missing base is an empty store */
	r = open_store(g_a.url + 7, NULL, 0, 3);
	sc_repo_close(r);
	free(ca_der);
	free(got);
}

static int group_setup(void **state)
{
	(void)state;
	g_key = tc_key_shared(TC_P256);
	g_ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "LDAP Test CA", .is_ca = 1,
						   .key_usage = TC_KU_KEY_CERT_SIGN |
								TC_KU_CRL_SIGN },
			   g_key, NULL, NULL);
	slapd_init(&g_a);
	slapd_start(&g_a);
	for (int u = 0; u < NUSERS; u++) {
		char uid[16], mail[64];
		const char *mails[] = { mail, NULL };
		uint8_t *der;
		size_t len;

		snprintf(uid, sizeof uid, "user%d", u);
		snprintf(mail, sizeof mail, "user%d@example.test", u);
		make_leaf(mail, 0, 0, &der, &len, g_user_fp[u]);
		add_person(&g_a, uid, mails, der, len);
		free(der);
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	slapd_stop(&g_a);
	slapd_stop(&g_b);
	tc_rmtree(g_a.dir);
	X509_free(g_ca);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_threads),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_ldapi),
		cmocka_unit_test(test_silent_server),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
