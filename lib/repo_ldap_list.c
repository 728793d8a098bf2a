/*
 * repo_ldap_list.c - list() of the ldap:// backend (repo_backend.h): every
 * certificate under the URL's base and scope whose entry matches the URL's
 * filter with the address left open ("(mail=%s)" becomes "(mail=*)"), read in
 * RFC 2696 pages, keyed by the addresses in the attribute the filter names
 * (normalised by sc_addr_key, as lookups are), at most SC_REPO_LDAP_LIST_MAX,
 * sorted by key. Owns the certificates it read until it returns. Runs in the
 * admin CLI (list, export-www).
 */
#include <ldap.h>
#include <stdlib.h>
#include <string.h>

#include "repo_backend.h"
#include "repo_ldap.h"

struct list_item {
	char *key;
	size_t cert; /* index into list_run.certs */
};

struct list_run {
	struct sc_repo_ldap *s;
	const char *key_attr;
	sc_cert **certs;
	size_t ncert;
	struct list_item *items;
	size_t nitem;
	size_t skipped; /* values of key_attr that are no address */
};

static int list_item_cmp(const void *a, const void *b)
{
	const struct list_item *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->cert > y->cert) - (x->cert < y->cert);
}

/* The lookup key of one value of the address attribute; 0 if it is no address
 * (counted, reported once: entries no CERT could ever find). */
static int list_key(struct list_run *x, const struct berval *v, char *key, size_t size)
{
	struct sc_addr a;
	size_t len;

	if (sc_addr_parse(v->bv_val, v->bv_len, SC_ADDR_UTF8, &a, NULL) == SC_OK &&
	    sc_addr_key(&a, key, size, &len) == SC_OK)
		return 1;
	x->skipped++;
	return 0;
}

/* One entry: its certificates, once per address. */
static sc_status list_entry(struct list_run *x, LDAP *ld, LDAPMessage *m)
{
	struct berval **mails = ldap_get_values_len(ld, m, x->key_attr);
	size_t first = x->ncert, n = 0;
	sc_cert *certs[SC_REPO_ENTRIES_MAX];
	sc_status st = SC_OK;

	sc_repo_ldap_entry_certs(x->s->repo, x->s->url.uri, ld, m, x->key_attr, certs, &n,
				 SC_REPO_ENTRIES_MAX);
	for (size_t i = 0; i < n; i++) {
		if (x->ncert == SC_REPO_LDAP_LIST_MAX) {
			st = SC_ERR_TOO_MANY;
			for (size_t j = i; j < n; j++)
				sc_cert_free(certs[j]);
			break;
		}
		x->certs[x->ncert++] = certs[i];
	}
	for (size_t v = 0; st == SC_OK && mails && mails[v]; v++) {
		char key[SC_ADDR_KEY_MAX];

		if (!list_key(x, mails[v], key, sizeof key))
			continue;
		for (size_t i = first; st == SC_OK && i < x->ncert; i++) {
			if (x->nitem == SC_REPO_LDAP_LIST_MAX) {
				st = SC_ERR_TOO_MANY;
			} else if (!(x->items[x->nitem].key = strdup(key))) {
				st = SC_ERR_NOMEM;
			} else {
				x->items[x->nitem].cert = i;
				x->nitem++;
			}
		}
	}
	ldap_value_free_len(mails);
	return st;
}

/* The page response control's cookie (RFC 2696 3), copied into *@p cookie
 * (empty at the last page). @return the LDAP result code of the page. */
static int list_page_end(LDAP *ld, LDAPMessage *res, struct berval **cookie)
{
	LDAPControl **ctrls = NULL, *c;
	ber_int_t count = 0;
	struct berval ck = { 0, NULL };
	int rc, err = LDAP_SUCCESS;

	rc = ldap_parse_result(ld, res, &err, NULL, NULL, NULL, &ctrls, 0);
	if (rc != LDAP_SUCCESS)
		return rc;
	ber_bvfree(*cookie);
	*cookie = NULL;
	c = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, NULL);
	if (c && ldap_parse_pageresponse_control(ld, c, &count, &ck) == LDAP_SUCCESS &&
	    ck.bv_len > 0) {
		*cookie = ber_bvdup(&ck);
		if (!*cookie)
			err = LDAP_NO_MEMORY;
	}
	ber_memfree(ck.bv_val);
	ldap_controls_free(ctrls);
	return err;
}

/* All pages of the search on @p ld. @return SC_OK; SC_ERR_TEMP (*@p rc set);
 * SC_ERR_TOO_MANY; SC_ERR_NOMEM. */
static sc_status list_search(struct list_run *x, LDAP *ld, const char *filter, int *rc)
{
	struct sc_repo_ldap *s = x->s;
	struct timeval tv = { .tv_sec = s->timeout };
	char *attrs[SC_REPO_LDAP_ATTRS_MAX + 2] = { NULL };
	struct berval *cookie = NULL;
	sc_status st = SC_OK;

	for (size_t i = 0; i < s->url.nattrs; i++)
		attrs[i] = s->url.attrs[i];
	attrs[s->url.nattrs] = (char *)x->key_attr;
	do {
		LDAPControl *page = NULL, *ctrls[2] = { NULL, NULL };
		LDAPMessage *res = NULL;

		*rc = ldap_create_page_control(ld, SC_REPO_LDAP_PAGE, cookie, 1, &page);
		if (*rc != LDAP_SUCCESS)
			break;
		ctrls[0] = page;
		*rc = ldap_search_ext_s(ld, s->url.base, s->url.scope, filter, attrs, 0, ctrls,
					NULL, &tv, 0, &res);
		ldap_control_free(page);
		if (*rc == LDAP_SUCCESS) {
			for (LDAPMessage *m = ldap_first_entry(ld, res); m && st == SC_OK;
			     m = ldap_next_entry(ld, m))
				st = list_entry(x, ld, m);
			*rc = list_page_end(ld, res, &cookie);
		}
		ldap_msgfree(res);
	} while (st == SC_OK && *rc == LDAP_SUCCESS && cookie);
	ber_bvfree(cookie);
	if (st == SC_OK && *rc == LDAP_NO_SUCH_OBJECT)
		*rc = LDAP_SUCCESS; /* no base: nothing stored */
	if (st == SC_OK && *rc != LDAP_SUCCESS)
		st = SC_ERR_TEMP;
	return st;
}

static sc_status list_visit(struct list_run *x, sc_repo_entry_fn fn, void *arg)
{
	sc_status st = SC_OK;

	qsort(x->items, x->nitem, sizeof *x->items, list_item_cmp);
	for (size_t i = 0; st == SC_OK && i < x->nitem; i++) {
		struct sc_repo_entry e;

		sc_repo_entry_from_cert(x->certs[x->items[i].cert], &e);
		e.key = x->items[i].key;
		e.key_len = strlen(e.key);
		st = fn(arg, &e);
	}
	return st;
}

sc_status sc_repo_ldap_list(void *state, sc_repo_entry_fn fn, void *arg)
{
	struct sc_repo_ldap *s = state;
	char filter[SC_REPO_LDAP_FILTER_MAX], attr[64];
	struct list_run x = { .s = s, .key_attr = attr };
	LDAP *ld = NULL;
	sc_status st;
	int reused, rc = LDAP_SUCCESS;

	st = sc_repo_ldap_filter_all(s->url.filter, filter, sizeof filter, attr, sizeof attr);
	if (st != SC_OK)
		return st;
	if (!attr[0]) {
		sc_repo_warn(s->repo, "%s: cannot list: the filter %s does not say which "
			     "attribute holds the address (e.g. (mail=%%s))", s->url.uri,
			     s->url.filter);
		return SC_ERR_UNSUPPORTED;
	}
	x.certs = calloc(SC_REPO_LDAP_LIST_MAX, sizeof *x.certs);
	x.items = calloc(SC_REPO_LDAP_LIST_MAX, sizeof *x.items);
	if (!x.certs || !x.items) {
		st = SC_ERR_NOMEM;
		goto out;
	}
	st = sc_repo_ldap_pool_get(s->pool, &ld, &reused);
	if (st != SC_OK)
		goto out;
	st = list_search(&x, ld, filter, &rc);
	if (st == SC_OK && s->url.ca_dn[0]) {
		struct stack_st_X509 *cas = NULL;

		/* one read of the CA entry for every bare leaf; a leaf without its
		 * chain is still listed */
		for (size_t i = 0; i < x.ncert; i++) {
			if (sc_cert_count(x.certs[i]) != 1)
				continue;
			if (!cas)
				rc = sc_repo_ldap_ca_fetch(ld, s->url.ca_dn, s->timeout, &cas);
			if (sc_repo_ldap_chain(cas, &x.certs[i]) != SC_OK)
				sc_repo_warn(s->repo, "%s: no chain from %s (cACertificate;binary)",
					     s->url.uri, s->url.ca_dn);
		}
		sc_repo_ldap_ca_free(cas);
	}
	sc_repo_ldap_pool_put(s->pool, ld, sc_repo_ldap_conn_after(rc));
	if (st == SC_ERR_TEMP && rc == LDAP_SIZELIMIT_EXCEEDED)
		sc_repo_warn(s->repo, "%s: list stopped by the directory's size limit for "
			     "paged searches (slapd: limits ... size.prtotal=unlimited for "
			     "the bind DN)", s->url.uri);
	else if (st == SC_ERR_TEMP && sc_repo_ldap_conn_after(rc) == SC_REPO_LDAP_CONN_OK)
		sc_repo_warn(s->repo, "%s: list failed: %s", s->url.uri, ldap_err2string(rc));
	if (x.skipped)
		sc_repo_warn(s->repo, "%s: %zu value%s of %s %s not an address; skipped",
			     s->url.uri, x.skipped, x.skipped == 1 ? "" : "s", attr,
			     x.skipped == 1 ? "is" : "are");
	if (st == SC_OK)
		st = list_visit(&x, fn, arg);
out:
	for (size_t i = 0; x.items && i < x.nitem; i++)
		free(x.items[i].key);
	for (size_t i = 0; x.certs && i < x.ncert; i++)
		sc_cert_free(x.certs[i]);
	free(x.items);
	free(x.certs);
	return st;
}
