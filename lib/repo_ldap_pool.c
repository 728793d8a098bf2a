/*
 * repo_ldap_pool.c - the connections of one ldap:// store (repo_ldap.h): up to
 * SC_REPO_LDAP_POOL_MAX libldap handles, each used by one thread at a time,
 * opened lazily (connect, StartTLS, simple bind), closed and replaced when
 * broken, aged out after SC_REPO_LDAP_CONN_MAX_AGE so that a failover to a later
 * URI does not stick. Owns the handles, the bind password copy and the "down"
 * backoff of the store. Runs in the daemon's worker threads and the admin CLI.
 */
#include <errno.h>
#include <ldap.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo_backend.h"
#include "repo_ldap.h"

struct pool_slot {
	LDAP *ld;      /* NULL: free */
	int busy;      /* lent to a thread */
	time_t opened; /* monotonic seconds */
};

struct sc_repo_ldap_pool {
	char *uri, *bind_dn, *ca_file, *password;
	char *uris[SC_REPO_LDAP_HOSTS_MAX]; /* into uri, split at spaces */
	size_t nuris;
	time_t uri_down[SC_REPO_LDAP_HOSTS_MAX]; /* monotonic: skip it until then */
	size_t password_len;
	int starttls, timeout;
	sc_repo *repo;
	pthread_mutex_t lock;
	pthread_cond_t freed;   /* a connection came back, or a connect ended */
	struct pool_slot slot[SC_REPO_LDAP_POOL_MAX];
	size_t nopen;           /* slots with a handle */
	size_t connecting;      /* connects in progress (outside the lock) */
	time_t down_until;      /* monotonic: after a failed connect, fail at once */
};

static time_t pool_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int pool_dup(const char *in, char **out)
{
	*out = NULL;
	return in && !(*out = strdup(in));
}

sc_status sc_repo_ldap_pool_new(const struct sc_repo_ldap_pool_cfg *cfg,
				struct sc_repo_ldap_pool **out)
{
	struct sc_repo_ldap_pool *p;
	pthread_condattr_t ca;

	SC_ENSURE_ARG(cfg && cfg->uri && out && cfg->timeout > 0);
	*out = NULL;
	p = calloc(1, sizeof *p);
	if (!p)
		return SC_ERR_NOMEM;
	p->password = malloc(cfg->password_len + 1);
	if (pool_dup(cfg->uri, &p->uri) || pool_dup(cfg->bind_dn, &p->bind_dn) ||
	    pool_dup(cfg->ca_file, &p->ca_file) || !p->password) {
		free(p->uri);
		free(p->bind_dn);
		free(p->ca_file);
		free(p->password);
		free(p);
		return SC_ERR_NOMEM;
	}
	/* one URI per attempt (pool_connect): libldap's own list moves on only when
	 * the TCP connect fails, not when a server accepts and never answers */
	for (char *u = p->uri, *sp; u && *u && p->nuris < SC_REPO_LDAP_HOSTS_MAX; u = sp) {
		sp = strchr(u, ' ');
		if (sp)
			*sp++ = '\0';
		p->uris[p->nuris++] = u;
	}
	if (cfg->password_len)
		memcpy(p->password, cfg->password, cfg->password_len);
	p->password[cfg->password_len] = '\0';
	p->password_len = cfg->password_len;
	p->starttls = cfg->starttls;
	p->timeout = cfg->timeout;
	p->repo = cfg->repo;
	pthread_mutex_init(&p->lock, NULL);
	/* waits have a deadline on the clock the backoff uses */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->freed, &ca);
	pthread_condattr_destroy(&ca);
	*out = p;
	return SC_OK;
}

void sc_repo_ldap_pool_free(struct sc_repo_ldap_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < SC_REPO_LDAP_POOL_MAX; i++)
		if (p->slot[i].ld)
			ldap_unbind_ext_s(p->slot[i].ld, NULL, NULL);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	explicit_bzero(p->password, p->password_len);
	free(p->password);
	free(p->uri);
	free(p->bind_dn);
	free(p->ca_file);
	free(p);
}

static int pool_transport_error(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR;
}

/* Connect to @p uri, StartTLS, bind: a new handle. Runs without the lock (it
 * may take up to one ldap_timeout). SC_ERR_TEMP on failure. */
static sc_status pool_connect_one(struct sc_repo_ldap_pool *p, const char *uri, LDAP **out)
{
	struct timeval tv = { .tv_sec = p->timeout };
	int version = LDAP_VERSION3, rc;
	struct berval cred = { .bv_val = p->password, .bv_len = p->password_len };
	LDAP *ld = NULL;

	*out = NULL;
	if (ldap_initialize(&ld, uri) != LDAP_SUCCESS || !ld)
		return SC_ERR_TEMP;
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	/* a dead server must not hold a lookup longer than ldap_timeout */
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (p->ca_file) {
		int demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;

		ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, p->ca_file);
		ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
		ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	}
	/* RFC 4513 3: StartTLS before the bind, so the password never goes in clear;
	 * a failed StartTLS is a failure, not a fallback to plaintext */
	if (p->starttls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		sc_repo_warn(p->repo, "%s: StartTLS failed: %s", uri, ldap_err2string(rc));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return SC_ERR_TEMP;
	}
	/* RFC 4513 5.1: a simple bind, anonymous when no DN is configured; it also
	 * makes libldap connect now rather than at the first search */
	rc = ldap_sasl_bind_s(ld, p->bind_dn ? p->bind_dn : "", LDAP_SASL_SIMPLE, &cred, NULL,
			      NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		if (!pool_transport_error(rc))
			sc_repo_warn(p->repo, "%s: bind failed: %s", uri, ldap_err2string(rc));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return SC_ERR_TEMP;
	}
	*out = ld;
	return SC_OK;
}

/*
 * Failover: the URL's servers in order, from the first every time (so a
 * connection opened again goes back to it), skipping one that failed less than
 * ldap_timeout ago: a dead first server costs one timeout per period, after
 * which new connections go straight to the next. Runs without the lock.
 */
static sc_status pool_connect(struct sc_repo_ldap_pool *p, LDAP **out)
{
	for (size_t i = 0; i < p->nuris; i++) {
		int skip;

		pthread_mutex_lock(&p->lock);
		skip = pool_now() < p->uri_down[i];
		pthread_mutex_unlock(&p->lock);
		if (skip)
			continue;
		if (pool_connect_one(p, p->uris[i], out) == SC_OK)
			return SC_OK;
		pthread_mutex_lock(&p->lock);
		p->uri_down[i] = pool_now() + p->timeout;
		pthread_mutex_unlock(&p->lock);
	}
	return SC_ERR_TEMP;
}

/* Close slot @p i. Called with the lock held. */
static void pool_close_slot(struct sc_repo_ldap_pool *p, size_t i)
{
	ldap_unbind_ext_s(p->slot[i].ld, NULL, NULL);
	memset(&p->slot[i], 0, sizeof p->slot[i]);
	p->nopen--;
}

/* An idle connection, marked busy; SIZE_MAX if none. Called with the lock held. */
static size_t pool_take_idle(struct sc_repo_ldap_pool *p)
{
	for (size_t i = 0; i < SC_REPO_LDAP_POOL_MAX; i++) {
		if (p->slot[i].ld && !p->slot[i].busy) {
			p->slot[i].busy = 1;
			return i;
		}
	}
	return SIZE_MAX;
}

/* Open a connection into a free slot. Called and returns with the lock held,
 * drops it during the connect. */
static sc_status pool_open(struct sc_repo_ldap_pool *p, LDAP **ld)
{
	sc_status st;
	LDAP *nld;

	p->connecting++;
	pthread_mutex_unlock(&p->lock);
	st = pool_connect(p, &nld);
	pthread_mutex_lock(&p->lock);
	p->connecting--;
	pthread_cond_broadcast(&p->freed);
	if (st != SC_OK) {
		p->down_until = pool_now() + p->timeout;
		return st;
	}
	for (size_t i = 0; i < SC_REPO_LDAP_POOL_MAX; i++) {
		if (!p->slot[i].ld) {
			p->slot[i].ld = nld;
			p->slot[i].busy = 1;
			p->slot[i].opened = pool_now();
			p->nopen++;
			*ld = nld;
			return SC_OK;
		}
	}
	/* cannot happen: nopen + connecting <= SC_REPO_LDAP_POOL_MAX */
	ldap_unbind_ext_s(nld, NULL, NULL);
	return SC_ERR_INTERNAL;
}

sc_status sc_repo_ldap_pool_get(struct sc_repo_ldap_pool *p, LDAP **ld, int *reused)
{
	struct timespec deadline;
	sc_status st = SC_ERR_TEMP;

	SC_ENSURE_ARG(p && ld && reused);
	*ld = NULL;
	*reused = 0;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->timeout;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		size_t i = pool_take_idle(p);

		if (i != SIZE_MAX) {
			*ld = p->slot[i].ld;
			*reused = 1;
			st = SC_OK;
			break;
		}
		if (pool_now() < p->down_until)
			break;
		/* Room for one more; while nothing is open, one connect at a time:
		 * the others wait for its outcome instead of each paying a timeout. */
		if (p->nopen + p->connecting < SC_REPO_LDAP_POOL_MAX &&
		    (p->nopen > 0 || p->connecting == 0)) {
			st = pool_open(p, ld);
			break;
		}
		if (pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&p->lock);
	return st;
}

void sc_repo_ldap_pool_put(struct sc_repo_ldap_pool *p, LDAP *ld,
			   enum sc_repo_ldap_conn_state how)
{
	time_t now = pool_now();

	if (!p || !ld)
		return;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < SC_REPO_LDAP_POOL_MAX; i++) {
		if (p->slot[i].ld != ld)
			continue;
		p->slot[i].busy = 0;
		if (how != SC_REPO_LDAP_CONN_OK ||
		    now - p->slot[i].opened >= SC_REPO_LDAP_CONN_MAX_AGE)
			pool_close_slot(p, i);
		break;
	}
	if (how != SC_REPO_LDAP_CONN_OK) {
		/* The idle ones went to the same server: after a restart they are all
		 * dead, and each would cost a failed query; reconnecting is cheaper. */
		for (size_t i = 0; i < SC_REPO_LDAP_POOL_MAX; i++)
			if (p->slot[i].ld && !p->slot[i].busy)
				pool_close_slot(p, i);
	}
	/* no answer at all: the server (or the path to it) is gone; a connect now
	 * would cost another timeout */
	if (how == SC_REPO_LDAP_CONN_TIMEOUT)
		p->down_until = now + p->timeout;
	pthread_cond_broadcast(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

size_t sc_repo_ldap_pool_open_count(struct sc_repo_ldap_pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->nopen;
	pthread_mutex_unlock(&p->lock);
	return n;
}
