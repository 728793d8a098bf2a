/*
 * repo_ldap.c - the ldap:// and ldaps:// repository backend (repo.h): a read-only
 * store whose entries are certificates in a directory, found with an RFC 4516
 * URL whose filter holds the lookup key (escaped, lib/repo_ldap_url.c); also
 * ldapi:// (OpenLDAP's LDAP over a Unix socket). Lookups
 * run on the daemon's worker threads at the same time: each takes a connection
 * of the store's pool (lib/repo_ldap_pool.c: lazy connects, failover across the
 * URL's hosts, broken connections replaced, backoff while down) and answers from
 * the store's cache when ldap_cache_ttl allows (lib/repo_cache.c). Unreachable,
 * timed out or refusing = SC_ERR_TEMP, so the daemon answers 451, never 550, and
 * a directory that comes back is used without a restart. list() is in
 * lib/repo_ldap_list.c. Runs in the daemon and the admin CLI.
 */
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtpcert/config.h"
#include "repo_backend.h"
#include "repo_cache.h"
#include "repo_ldap.h"

#define LDAP_PASSWORD_MAX 256
#define LDAP_TIMEOUT_DEFAULT 10

static time_t repo_ldap_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static sc_status repo_ldap_read_password(const char *path, char *pw, size_t size, size_t *len,
					 char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		snprintf(err, errlen, "ldap_bind_password_file %s: cannot open", path);
		return SC_ERR_CONFIG;
	}
	n = fread(pw, 1, size - 1, f);
	fclose(f);
	/* first line only; a trailing newline is not part of the password */
	pw[n] = '\0';
	*len = strcspn(pw, "\r\n");
	pw[*len] = '\0';
	return SC_OK;
}

enum sc_repo_ldap_conn_state sc_repo_ldap_conn_after(int rc)
{
	switch (rc) {
	case LDAP_TIMEOUT:
		return SC_REPO_LDAP_CONN_TIMEOUT;
	case LDAP_SERVER_DOWN:
	case LDAP_CONNECT_ERROR:
	case LDAP_LOCAL_ERROR:
	case LDAP_ENCODING_ERROR:
	case LDAP_DECODING_ERROR:
	case LDAP_NO_MEMORY:
		return SC_REPO_LDAP_CONN_BROKEN;
	default:
		/* an answer (even a refusal) came back: the connection works */
		return SC_REPO_LDAP_CONN_OK;
	}
}

/*
 * One search on a pooled connection, kept in *@p ld on success for the caller to
 * read @p res and give back. A connection the server closed while idle fails on
 * first use: one retry on a new connection before calling the store
 * unavailable. No retry after a timeout: the server is not answering, and
 * trying again would make this lookup cost two timeouts.
 */
static sc_status repo_ldap_search(struct sc_repo_ldap *s, const char *filter, LDAP **ld,
				  LDAPMessage **res)
{
	struct timeval tv = { .tv_sec = s->timeout };
	char *attrs[SC_REPO_LDAP_ATTRS_MAX + 1] = { NULL };
	int reused, rc;

	for (size_t i = 0; i < s->url.nattrs; i++)
		attrs[i] = s->url.attrs[i];
	for (int attempt = 0;; attempt++) {
		enum sc_repo_ldap_conn_state how;

		*res = NULL;
		SC_TRY(sc_repo_ldap_pool_get(s->pool, ld, &reused));
		rc = ldap_search_ext_s(*ld, s->url.base, s->url.scope, filter, attrs, 0, NULL,
				       NULL, &tv, SC_REPO_ENTRIES_MAX, res);
		if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED)
			return SC_OK; /* at most the first SC_REPO_ENTRIES_MAX entries */
		ldap_msgfree(*res);
		*res = NULL;
		how = sc_repo_ldap_conn_after(rc);
		sc_repo_ldap_pool_put(s->pool, *ld, how);
		*ld = NULL;
		if (rc == LDAP_NO_SUCH_OBJECT)
			return SC_ERR_NOT_FOUND; /* the base is missing: nothing under it */
		if (how == SC_REPO_LDAP_CONN_BROKEN && reused && attempt == 0)
			continue;
		if (how == SC_REPO_LDAP_CONN_OK)
			sc_repo_warn(s->repo, "%s: search failed: %s", s->url.uri,
				     ldap_err2string(rc));
		return SC_ERR_TEMP;
	}
}

/* x-ca-dn: complete the bare leaves among @p certs from the CA entry, so CERS
 * sends leaf + chain like the local stores; on any failure a leaf stays alone
 * (CERT needs nothing more) and it is reported. @return the LDAP result code. */
static int repo_ldap_add_chains(struct sc_repo_ldap *s, LDAP *ld, sc_cert **certs, size_t n)
{
	struct stack_st_X509 *cas = NULL;
	int rc = LDAP_SUCCESS;

	for (size_t i = 0; i < n; i++) {
		if (sc_cert_count(certs[i]) != 1)
			continue;
		if (!cas)
			rc = sc_repo_ldap_ca_fetch(ld, s->url.ca_dn, s->timeout, &cas);
		if (sc_repo_ldap_chain(cas, &certs[i]) != SC_OK)
			sc_repo_warn(s->repo, "%s: no chain from %s (cACertificate;binary)",
				     s->url.uri, s->url.ca_dn);
	}
	sc_repo_ldap_ca_free(cas);
	return rc;
}

/* The backend's answer for @p key: the certificates found (chains completed),
 * remembered in the cache, then passed to @p visit. */
static sc_status repo_ldap_lookup(void *state, const char *key, size_t keylen,
				  sc_repo_entry_fn visit, void *arg)
{
	struct sc_repo_ldap *s = state;
	char filter[SC_REPO_LDAP_FILTER_MAX];
	sc_cert *certs[SC_REPO_ENTRIES_MAX];
	struct sc_repo_entry e[SC_REPO_ENTRIES_MAX];
	LDAPMessage *res = NULL;
	LDAP *ld = NULL;
	time_t now = repo_ldap_now();
	size_t n = 0;
	sc_status st;
	int rc = LDAP_SUCCESS;

	if (sc_repo_ldap_filter(s->url.filter, key, keylen, filter, sizeof filter) != SC_OK)
		return visit(arg, NULL); /* no directory entry can match */
	if (sc_repo_cache_answer(s->cache, key, keylen, now, visit, arg, &st))
		return st;
	st = repo_ldap_search(s, filter, &ld, &res);
	if (st == SC_ERR_NOT_FOUND)
		return visit(arg, NULL);
	if (st != SC_OK)
		return st; /* SC_ERR_TEMP: never cached */
	for (LDAPMessage *m = ldap_first_entry(ld, res); m; m = ldap_next_entry(ld, m))
		sc_repo_ldap_entry_certs(s->repo, s->url.uri, ld, m, NULL, certs, &n,
					 SC_REPO_ENTRIES_MAX);
	ldap_msgfree(res);
	if (s->url.ca_dn[0])
		rc = repo_ldap_add_chains(s, ld, certs, n);
	sc_repo_ldap_pool_put(s->pool, ld, sc_repo_ldap_conn_after(rc));
	for (size_t i = 0; i < n; i++) {
		sc_repo_entry_from_cert(certs[i], &e[i]);
		e[i].key = key;
		e[i].key_len = keylen;
	}
	/* what the directory holds, valid or not: lib/repo.c judges validity and
	 * revocation at every answer, cached or fresh. A cache failure (memory, an
	 * answer bigger than the cache) only means the next lookup asks again. */
	if (s->cache && sc_repo_cache_put(s->cache, key, keylen, now, e, n) != SC_OK)
		sc_repo_warn(s->repo, "%s: answer for %s not cached", s->url.uri, key);
	st = SC_OK;
	for (size_t i = 0; st == SC_OK && i < n; i++)
		st = visit(arg, &e[i]);
	if (st == SC_OK)
		st = visit(arg, NULL); /* certificates are freed only below */
	for (size_t i = 0; i < n; i++)
		sc_cert_free(certs[i]);
	return st;
}

/* The directory is managed by its own tools: smtpcert never writes to it. */
static sc_status repo_ldap_store(void *state, const char *key, size_t keylen,
			    const struct sc_repo_entry *e)
{
	(void)state, (void)key, (void)keylen, (void)e;
	return SC_ERR_PERM;
}

static sc_status repo_ldap_remove(void *state, const char *key, size_t keylen,
			     const uint8_t *fingerprint, size_t *removed)
{
	(void)state, (void)key, (void)keylen, (void)fingerprint;
	*removed = 0;
	return SC_ERR_PERM;
}

void sc_repo_ldap_opts_from_config(const sc_config *cfg, struct sc_repo_ldap_opts *o)
{
	long long t = sc_config_int(cfg, "ldap_timeout"), ttl = sc_config_int(cfg, "ldap_cache_ttl");

	memset(o, 0, sizeof *o);
	o->bind_dn = sc_config_str(cfg, "ldap_bind_dn");
	o->bind_password_file = sc_config_str(cfg, "ldap_bind_password_file");
	o->starttls = sc_config_bool(cfg, "ldap_starttls");
	o->ca_file = sc_config_str(cfg, "ldap_ca_file");
	/* lib/config_keys.c bounds both; out of range here means "the default" */
	o->timeout = t > 0 && t <= 3600 ? (int)t : LDAP_TIMEOUT_DEFAULT;
	o->cache_ttl = ttl >= 0 && ttl <= 86400 ? (unsigned)ttl : 60;
}

static void repo_ldap_close(void *state)
{
	struct sc_repo_ldap *s = state;

	if (!s)
		return;
	sc_repo_ldap_pool_free(s->pool);
	sc_repo_cache_free(s->cache);
	free(s);
}

static sc_status repo_ldap_open_scheme(const char *scheme, sc_repo *r, const char *path,
				       void **state, char *err, size_t errlen)
{
	const struct sc_repo_ldap_opts *o = sc_repo_ldap_opts_of(r);
	struct sc_repo_ldap *s = calloc(1, sizeof *s);
	struct sc_repo_ldap_pool_cfg pc = { .repo = r };
	char why[256] = "", pw[LDAP_PASSWORD_MAX] = "";
	sc_status st;

	if (!s)
		return SC_ERR_NOMEM;
	s->repo = r;
	s->timeout = o && o->timeout > 0 ? o->timeout : LDAP_TIMEOUT_DEFAULT;
	st = sc_repo_ldap_url_parse(scheme, path, &s->url, why, sizeof why);
	if (st == SC_OK && o && o->starttls && !strcmp(scheme, "ldaps")) {
		snprintf(why, sizeof why, "ldap_starttls with ldaps:// (already TLS)");
		st = SC_ERR_CONFIG;
	}
	if (st == SC_OK && o && o->bind_password_file)
		st = repo_ldap_read_password(o->bind_password_file, pw, sizeof pw,
					     &pc.password_len, why, sizeof why);
	if (st == SC_OK) {
		pc.uri = s->url.uri;
		pc.bind_dn = o ? o->bind_dn : NULL;
		pc.password = pw;
		/* a Unix socket never leaves the host: StartTLS only on the wire */
		pc.starttls = o && o->starttls && strcmp(scheme, "ldapi");
		pc.ca_file = o ? o->ca_file : NULL;
		pc.timeout = s->timeout;
		st = sc_repo_ldap_pool_new(&pc, &s->pool);
	}
	explicit_bzero(pw, sizeof pw);
	/* no options (the admin CLI's one-shot runs): no cache */
	if (st == SC_OK && o && o->cache_ttl > 0)
		st = sc_repo_cache_new(o->cache_ttl, 0, 0, &s->cache);
	if (st != SC_OK) {
		if (err && errlen)
			snprintf(err, errlen, "%s:%s: %s", scheme, path, why[0] ? why :
				 sc_strerror(st));
		repo_ldap_close(s);
		return st;
	}
	/* no connection yet: a directory that is down at startup gives 451s until
	 * it is back, it does not stop the daemon */
	*state = s;
	return SC_OK;
}

static sc_status repo_ldap_open(sc_repo *r, const char *path, unsigned flags, void **state,
			   char *err, size_t errlen)
{
	(void)flags; /* read-only whatever is asked: writes fail with SC_ERR_PERM */
	return repo_ldap_open_scheme("ldap", r, path, state, err, errlen);
}

static sc_status repo_ldaps_open(sc_repo *r, const char *path, unsigned flags, void **state,
			    char *err, size_t errlen)
{
	(void)flags;
	return repo_ldap_open_scheme("ldaps", r, path, state, err, errlen);
}

static sc_status repo_ldapi_open(sc_repo *r, const char *path, unsigned flags, void **state,
				 char *err, size_t errlen)
{
	(void)flags;
	return repo_ldap_open_scheme("ldapi", r, path, state, err, errlen);
}

const struct sc_repo_backend sc_repo_ldap_backend = {
	.scheme = "ldap",
	.open = repo_ldap_open,
	.close = repo_ldap_close,
	.lookup = repo_ldap_lookup,
	.store = repo_ldap_store,
	.remove = repo_ldap_remove,
	.list = sc_repo_ldap_list,
	.remote = 1,
	.threadsafe = 1,
};

const struct sc_repo_backend sc_repo_ldaps_backend = {
	.scheme = "ldaps",
	.open = repo_ldaps_open,
	.close = repo_ldap_close,
	.lookup = repo_ldap_lookup,
	.store = repo_ldap_store,
	.remove = repo_ldap_remove,
	.list = sc_repo_ldap_list,
	.remote = 1,
	.threadsafe = 1,
};

/* ldapi:// (a Unix socket on this host): the same store; "remote" still, since
 * the directory server may block as any other. */
const struct sc_repo_backend sc_repo_ldapi_backend = {
	.scheme = "ldapi",
	.open = repo_ldapi_open,
	.close = repo_ldap_close,
	.lookup = repo_ldap_lookup,
	.store = repo_ldap_store,
	.remove = repo_ldap_remove,
	.list = sc_repo_ldap_list,
	.remote = 1,
	.threadsafe = 1,
};
