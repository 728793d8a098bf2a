/*
 * repo_ldap.c - the ldap:// and ldaps:// repository backend (repo.h): a read-only
 * store whose entries are certificates in a directory, found with an RFC 4516
 * URL whose filter holds the lookup key (escaped, lib/repo_ldap_url.c). Owns one
 * libldap connection per store, opened lazily, dropped on any transport error
 * and opened again by the next lookup: a directory that comes back is used
 * without a restart. Unreachable, timed out or refusing = SC_ERR_TEMP, so the
 * daemon answers 451, never 550. Lookups are serialised by a mutex (the daemon
 * runs them on worker threads). Runs in the daemon and the admin CLI.
 */
#include <ldap.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo_backend.h"
#include "repo_ldap.h"

#define LDAP_PASSWORD_MAX 256
#define LDAP_TIMEOUT_DEFAULT 10

struct ldap_state {
	sc_repo *repo; /* for sc_repo_warn() */
	struct sc_repo_ldap_url url;
	char *bind_dn;
	char password[LDAP_PASSWORD_MAX];
	size_t password_len;
	int starttls;
	char *ca_file;
	int timeout;
	pthread_mutex_t lock;
	LDAP *ld; /* NULL: not connected */
	time_t down_until; /* after a failed connect: answer SC_ERR_TEMP until then */
};

static void repo_ldap_drop(struct ldap_state *s)
{
	if (s->ld)
		ldap_unbind_ext_s(s->ld, NULL, NULL);
	s->ld = NULL;
}

static sc_status repo_ldap_read_password(struct ldap_state *s, const char *path, char *err,
				    size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		snprintf(err, errlen, "ldap_bind_password_file %s: cannot open", path);
		return SC_ERR_CONFIG;
	}
	n = fread(s->password, 1, sizeof s->password - 1, f);
	fclose(f);
	/* first line only; a trailing newline is not part of the password */
	s->password[n] = '\0';
	s->password_len = strcspn(s->password, "\r\n");
	s->password[s->password_len] = '\0';
	return SC_OK;
}

/* Connect, StartTLS, bind. Called with the lock held. SC_ERR_TEMP on failure. */
static sc_status repo_ldap_connect(struct ldap_state *s)
{
	struct timeval tv = { .tv_sec = s->timeout };
	int version = LDAP_VERSION3, rc;
	struct berval cred;

	if (ldap_initialize(&s->ld, s->url.uri) != LDAP_SUCCESS) {
		s->ld = NULL;
		return SC_ERR_TEMP;
	}
	ldap_set_option(s->ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	/* a dead server must not hold a lookup longer than ldap_timeout */
	ldap_set_option(s->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(s->ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(s->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (s->ca_file) {
		int demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;

		ldap_set_option(s->ld, LDAP_OPT_X_TLS_CACERTFILE, s->ca_file);
		ldap_set_option(s->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
		ldap_set_option(s->ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	}
	/* RFC 4513 3: StartTLS before the bind, so the password never goes in clear;
	 * a failed StartTLS is a failure, not a fallback to plaintext */
	if (s->starttls && ldap_start_tls_s(s->ld, NULL, NULL) != LDAP_SUCCESS) {
		sc_repo_warn(s->repo, "%s: StartTLS failed", s->url.uri);
		repo_ldap_drop(s);
		return SC_ERR_TEMP;
	}
	cred.bv_val = s->password;
	cred.bv_len = s->password_len;
	rc = ldap_sasl_bind_s(s->ld, s->bind_dn ? s->bind_dn : "", LDAP_SASL_SIMPLE,
			      &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		if (rc != LDAP_SERVER_DOWN && rc != LDAP_TIMEOUT && rc != LDAP_CONNECT_ERROR)
			sc_repo_warn(s->repo, "%s: bind failed: %s", s->url.uri,
				     ldap_err2string(rc));
		repo_ldap_drop(s);
		return SC_ERR_TEMP;
	}
	return SC_OK;
}

/* The cert after @p cur in the chain: the one in @p sk whose subject is cur's
 * issuer, not already @p used; NULL at a self-signed cert or a gap. */
static int repo_ldap_p7_next(STACK_OF(X509) *sk, X509 *cur, const unsigned char *used)
{
	if (!X509_NAME_cmp(X509_get_subject_name(cur), X509_get_issuer_name(cur)))
		return -1;
	for (int j = 0; j < sk_X509_num(sk); j++)
		if (!used[j] && !X509_NAME_cmp(X509_get_subject_name(sk_X509_value(sk, j)),
					       X509_get_issuer_name(cur)))
			return j;
	return -1;
}

/* The DER sequence sc_cert_parse() takes: sk[leaf], then its issuers found by
 * name in @p sk (RFC 5280 6.1: issuer of one = subject of the next). */
static sc_status repo_ldap_order(STACK_OF(X509) *sk, int leaf, sc_cert **out)
{
	unsigned char used[SC_CHAIN_MAX] = { 0 }, *buf = malloc(SC_CERT_INPUT_MAX);
	size_t blen = 0, k = 0;
	int cur = leaf;
	sc_status st = SC_ERR_SYNTAX;

	if (!buf)
		return SC_ERR_NOMEM;
	while (cur >= 0 && k++ < SC_CHAIN_MAX) {
		X509 *x = sk_X509_value(sk, cur);
		int l = i2d_X509(x, NULL);
		unsigned char *w = buf + blen;

		if (l <= 0 || (size_t)l > SC_CERT_INPUT_MAX - blen)
			goto out;
		blen += (size_t)i2d_X509(x, &w);
		used[cur] = 1;
		cur = repo_ldap_p7_next(sk, x, used);
	}
	st = sc_cert_parse(buf, blen, out);
out:
	free(buf);
	return st;
}

/*
 * userSMIMECertificate (RFC 2798 2.8) holds a PKCS #7 SignedData whose
 * certificates field (RFC 2315 9.1) is an unordered set: the leaf is the one that
 * issued none of the others, then its chain follows issuer names.
 */
static sc_status repo_ldap_p7_parse(const void *der, size_t len, sc_cert **out)
{
	const unsigned char *p = der;
	PKCS7 *p7 = len <= SC_CERT_INPUT_MAX ? d2i_PKCS7(NULL, &p, (long)len) : NULL;
	STACK_OF(X509) *sk = p7 && PKCS7_type_is_signed(p7) && p7->d.sign ?
		p7->d.sign->cert : NULL;
	int n = sk ? sk_X509_num(sk) : 0, cur = -1;
	sc_status st = SC_ERR_SYNTAX;

	if (!p7 || p != (const unsigned char *)der + len || n <= 0 || n > SC_CHAIN_MAX)
		goto out;
	for (int i = 0; i < n && cur < 0; i++) {
		int issues = 0;

		for (int j = 0; j < n && !issues; j++)
			issues = j != i && !X509_NAME_cmp(X509_get_subject_name(sk_X509_value(sk, i)),
							 X509_get_issuer_name(sk_X509_value(sk, j)));
		if (!issues)
			cur = i;
	}
	if (cur >= 0)
		st = repo_ldap_order(sk, cur, out);
out:
	PKCS7_free(p7);
	return st;
}

/*
 * x-ca-dn: a bare leaf's chain from the CA entry's cACertificate;binary values
 * (RFC 4523 2.2), so CERS sends leaf + chain like the local stores. On any
 * failure the leaf stays alone (CERT needs nothing more) and it is reported.
 */
static void repo_ldap_add_chain(struct ldap_state *s, sc_cert **c)
{
	struct timeval tv = { .tv_sec = s->timeout };
	char attr[] = "cACertificate;binary", *attrs[] = { attr, NULL };
	STACK_OF(X509) *sk = sk_X509_new_null();
	LDAPMessage *res = NULL, *e;
	struct berval **vals = NULL;
	const uint8_t *der;
	X509 *leaf;
	size_t len;
	sc_cert *full = NULL;
	int rc;

	if (!sk || sc_cert_der(*c, 0, &der, &len) != SC_OK)
		goto out;
	leaf = d2i_X509(NULL, &der, (long)len);
	if (!leaf || !sk_X509_push(sk, leaf)) {
		X509_free(leaf);
		goto out;
	}
	rc = ldap_search_ext_s(s->ld, s->url.ca_dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs,
			       0, NULL, NULL, &tv, 1, &res);
	e = rc == LDAP_SUCCESS ? ldap_first_entry(s->ld, res) : NULL;
	vals = e ? ldap_get_values_len(s->ld, e, attr) : NULL;
	for (size_t i = 0; vals && vals[i] && sk_X509_num(sk) < SC_CHAIN_MAX; i++) {
		const unsigned char *p = (const unsigned char *)vals[i]->bv_val;
		X509 *x = d2i_X509(NULL, &p, (long)vals[i]->bv_len);

		if (x && !sk_X509_push(sk, x))
			X509_free(x);
	}
	if (sk_X509_num(sk) > 1 && repo_ldap_order(sk, 0, &full) == SC_OK) {
		sc_cert_free(*c);
		*c = full;
	} else {
		sc_repo_warn(s->repo, "%s: no chain from %s (cACertificate;binary)", s->url.uri,
			     s->url.ca_dn);
	}
out:
	ldap_value_free_len(vals);
	ldap_msgfree(res);
	sk_X509_pop_free(sk, X509_free);
}

/* A value: a DER certificate, or (userSMIMECertificate) a PKCS #7 SignedData. */
static sc_status repo_ldap_value(const struct berval *v, sc_cert **out)
{
	if (v->bv_len > SC_CERT_INPUT_MAX)
		return SC_ERR_TOO_LONG;
	if (sc_cert_parse(v->bv_val, v->bv_len, out) == SC_OK)
		return SC_OK;
	return repo_ldap_p7_parse(v->bv_val, v->bv_len, out);
}

/* Parse every value of every returned attribute into @p certs (at most
 * SC_REPO_ENTRIES_MAX in all); values that are no certificate are skipped. */
static void repo_ldap_collect(struct ldap_state *s, LDAPMessage *res, sc_cert **certs, size_t *n)
{
	for (LDAPMessage *e = ldap_first_entry(s->ld, res); e; e = ldap_next_entry(s->ld, e)) {
		BerElement *ber = NULL;

		for (char *a = ldap_first_attribute(s->ld, e, &ber); a;
		     a = ldap_next_attribute(s->ld, e, ber)) {
			struct berval **vals = ldap_get_values_len(s->ld, e, a);

			for (size_t i = 0; vals && vals[i] && *n < SC_REPO_ENTRIES_MAX; i++) {
				if (repo_ldap_value(vals[i], &certs[*n]) != SC_OK) {
					sc_repo_warn(s->repo, "%s: a value of %s is not a "
						     "certificate; skipped", s->url.uri, a);
					continue;
				}
				(*n)++;
			}
			ldap_value_free_len(vals);
			ldap_memfree(a);
		}
		ber_free(ber, 0);
	}
}

/* One search. Transport errors drop the connection (the caller may retry once). */
static sc_status repo_ldap_search(struct ldap_state *s, const char *filter, LDAPMessage **res)
{
	struct timeval tv = { .tv_sec = s->timeout };
	char *attrs[SC_REPO_LDAP_ATTRS_MAX + 1] = { NULL };
	int rc;

	*res = NULL;
	if (!s->ld) {
		/* The daemon may run this on its event loop: an unreachable directory
		 * (packets dropped) costs one ldap_timeout, then for as long again
		 * every lookup fails at once instead of stalling the loop each time. */
		if (time(NULL) < s->down_until)
			return SC_ERR_TEMP;
		if (repo_ldap_connect(s) != SC_OK) {
			s->down_until = time(NULL) + s->timeout;
			return SC_ERR_TEMP;
		}
	}
	for (size_t i = 0; i < s->url.nattrs; i++)
		attrs[i] = s->url.attrs[i];
	rc = ldap_search_ext_s(s->ld, s->url.base, s->url.scope, filter, attrs, 0, NULL, NULL,
			       &tv, SC_REPO_ENTRIES_MAX, res);
	switch (rc) {
	case LDAP_SUCCESS:
	case LDAP_SIZELIMIT_EXCEEDED: /* the first SC_REPO_ENTRIES_MAX entries */
		return SC_OK;
	case LDAP_NO_SUCH_OBJECT: /* the base is missing: nothing under it */
		ldap_msgfree(*res);
		*res = NULL;
		return SC_ERR_NOT_FOUND;
	default:
		ldap_msgfree(*res);
		*res = NULL;
		if (rc != LDAP_SERVER_DOWN && rc != LDAP_TIMEOUT && rc != LDAP_CONNECT_ERROR)
			sc_repo_warn(s->repo, "%s: search failed: %s", s->url.uri,
				     ldap_err2string(rc));
		repo_ldap_drop(s);
		return SC_ERR_TEMP;
	}
}

static sc_status repo_ldap_lookup_locked(struct ldap_state *s, const char *key, size_t keylen,
				    sc_repo_entry_fn visit, void *arg)
{
	char filter[SC_REPO_LDAP_FILTER_MAX];
	sc_cert *certs[SC_REPO_ENTRIES_MAX];
	LDAPMessage *res = NULL;
	size_t n = 0;
	sc_status st;
	int had;

	if (sc_repo_ldap_filter(s->url.filter, key, keylen, filter, sizeof filter) != SC_OK)
		return visit(arg, NULL); /* no directory entry can match */
	/* a connection the server closed while idle fails on first use: one retry
	 * on a fresh connection before calling the store unavailable */
	had = s->ld != NULL;
	st = repo_ldap_search(s, filter, &res);
	if (st == SC_ERR_TEMP && had)
		st = repo_ldap_search(s, filter, &res);
	if (st == SC_ERR_NOT_FOUND)
		return visit(arg, NULL);
	if (st != SC_OK)
		return st;
	repo_ldap_collect(s, res, certs, &n);
	ldap_msgfree(res);
	for (size_t i = 0; s->url.ca_dn[0] && s->ld && i < n; i++)
		if (sc_cert_count(certs[i]) == 1)
			repo_ldap_add_chain(s, &certs[i]);
	for (size_t i = 0; st == SC_OK && i < n; i++) {
		struct sc_repo_entry e;

		sc_repo_entry_from_cert(certs[i], &e);
		e.key = key;
		e.key_len = keylen;
		st = visit(arg, &e);
	}
	if (st == SC_OK)
		st = visit(arg, NULL); /* certificates are freed only below */
	for (size_t i = 0; i < n; i++)
		sc_cert_free(certs[i]);
	return st;
}

static sc_status repo_ldap_lookup(void *state, const char *key, size_t keylen,
			     sc_repo_entry_fn visit, void *arg)
{
	struct ldap_state *s = state;
	sc_status st;

	pthread_mutex_lock(&s->lock);
	st = repo_ldap_lookup_locked(s, key, keylen, visit, arg);
	pthread_mutex_unlock(&s->lock);
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

static sc_status repo_ldap_list(void *state, sc_repo_entry_fn fn, void *arg)
{
	(void)state, (void)fn, (void)arg;
	return SC_ERR_UNSUPPORTED;
}

static void repo_ldap_close(void *state)
{
	struct ldap_state *s = state;

	if (!s)
		return;
	repo_ldap_drop(s);
	pthread_mutex_destroy(&s->lock);
	explicit_bzero(s->password, sizeof s->password);
	free(s->bind_dn);
	free(s->ca_file);
	free(s);
}

static sc_status repo_ldap_open_scheme(const char *scheme, sc_repo *r, const char *path,
				  void **state, char *err, size_t errlen)
{
	const struct sc_repo_ldap_opts *o = sc_repo_ldap_opts_of(r);
	struct ldap_state *s = calloc(1, sizeof *s);
	char why[256] = "";
	sc_status st;

	if (!s)
		return SC_ERR_NOMEM;
	s->repo = r;
	s->timeout = o && o->timeout > 0 ? o->timeout : LDAP_TIMEOUT_DEFAULT;
	s->starttls = o && o->starttls;
	pthread_mutex_init(&s->lock, NULL);
	st = sc_repo_ldap_url_parse(scheme, path, &s->url, why, sizeof why);
	if (st == SC_OK && s->starttls && !strcmp(scheme, "ldaps")) {
		snprintf(why, sizeof why, "ldap_starttls with ldaps:// (already TLS)");
		st = SC_ERR_CONFIG;
	}
	if (st == SC_OK && o && o->bind_dn && !(s->bind_dn = strdup(o->bind_dn)))
		st = SC_ERR_NOMEM;
	if (st == SC_OK && o && o->ca_file && !(s->ca_file = strdup(o->ca_file)))
		st = SC_ERR_NOMEM;
	if (st == SC_OK && o && o->bind_password_file)
		st = repo_ldap_read_password(s, o->bind_password_file, why, sizeof why);
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

const struct sc_repo_backend sc_repo_ldap_backend = {
	.scheme = "ldap",
	.open = repo_ldap_open,
	.close = repo_ldap_close,
	.lookup = repo_ldap_lookup,
	.store = repo_ldap_store,
	.remove = repo_ldap_remove,
	.list = repo_ldap_list,
	.remote = 1,
};

const struct sc_repo_backend sc_repo_ldaps_backend = {
	.scheme = "ldaps",
	.open = repo_ldaps_open,
	.close = repo_ldap_close,
	.lookup = repo_ldap_lookup,
	.store = repo_ldap_store,
	.remove = repo_ldap_remove,
	.list = repo_ldap_list,
	.remote = 1,
};
