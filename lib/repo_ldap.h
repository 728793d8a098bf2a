/*
 * repo_ldap.h - internal to libsmtpcert: what the files of the ldap://,
 * ldaps:// and ldapi:// backend share (and the unit tests and fuzz targets
 * reach): URL and filter text (lib/repo_ldap_url.c), the connection pool
 * (lib/repo_ldap_pool.c), certificates out of directory values
 * (lib/repo_ldap_cert.c), the store itself (lib/repo_ldap.c) and its list()
 * (lib/repo_ldap_list.c).
 */
#ifndef SC_REPO_LDAP_H
#define SC_REPO_LDAP_H

#include <stddef.h>
#include "smtpcert/status.h"
#include "smtpcert/cert.h"
#include "smtpcert/repo.h"

#define SC_REPO_LDAP_ATTRS_MAX 4
#define SC_REPO_LDAP_FILTER_MAX 1024

struct ldap;
struct sc_repo_cache;

/* An RFC 4516 URL, split. Strings are NUL-terminated and percent-decoded, except
 * filter which keeps the URL's %XX and %s (decoded at substitution time, so that
 * a %25s in the URL stays the text "%s" and never becomes a placeholder). */
struct sc_repo_ldap_url {
	char uri[1024];  /* for ldap_initialize(): "ldap://h1:389 ldap://h2:389",
			  * "ldapi://%2Frun%2Fslapd%2Fldapi" */
	char base[512];
	char attrs[SC_REPO_LDAP_ATTRS_MAX][64];
	size_t nattrs;
	int scope;       /* LDAP_SCOPE_BASE / ONELEVEL / SUBTREE */
	char filter[512];
	char ca_dn[512];  /* extension x-ca-dn: entry whose cACertificate;binary
			   * values complete a bare leaf's chain ("" = none) */
};

/* Longest ldapi:// socket path (sun_path is 108 bytes on Linux, with the NUL). */
#define SC_REPO_LDAPI_PATH_MAX 108

/* Parse "//hostport[,hostport...]/base?attrs?scope?filter" (after "ldap:",
 * "ldaps:" or "ldapi:"; @p scheme is "ldap", "ldaps" or "ldapi"; for ldapi each
 * host is a percent-encoded absolute socket path, "" the libldap default
 * socket). Defaults: attribute
 * userCertificate;binary, scope base (RFC 4516 2), filter (mail=%s).
 * Extensions: x-ca-dn=DN (commas as %2C, RFC 4516 2); other non-critical ones
 * are ignored, a critical ('!') unknown one is an error.
 * @return SC_OK; SC_ERR_CONFIG with a message in @p err. */
SC_MUST_CHECK sc_status sc_repo_ldap_url_parse(const char *scheme, const char *rest,
					       struct sc_repo_ldap_url *u, char *err,
					       size_t errlen);

/* RFC 4515 3: write @p in as an assertion value: '*', '(', ')', '\' and NUL
 * become \2a \28 \29 \5c \00. @return SC_OK; SC_ERR_TOO_LONG. */
SC_MUST_CHECK sc_status sc_repo_ldap_escape(const char *in, size_t len, char *out,
					    size_t size, size_t *outlen);

/* The search filter: @p tmpl (sc_repo_ldap_url.filter) with each %s replaced by
 * the escaped key and each %XX decoded. @return SC_OK; SC_ERR_TOO_LONG;
 * SC_ERR_SYNTAX (bad % sequence). */
SC_MUST_CHECK sc_status sc_repo_ldap_filter(const char *tmpl, const char *key, size_t keylen,
					    char *out, size_t size);

/*
 * The connection pool of one ldap:// store (lib/repo_ldap_pool.c). Each
 * connection serves one thread at a time; connections are opened lazily
 * (connect, StartTLS when asked, simple bind), at most SC_REPO_LDAP_POOL_MAX
 * per store, so a daemon with more worker threads than that makes the rest wait
 * (at most ldap_timeout) instead of opening more. 8 is a few times the worker
 * count of a small host and far below any directory's connection limit.
 * Failover: the URL's servers (at most SC_REPO_LDAP_HOSTS_MAX) are tried in
 * order at each connect, one at a time, so a server that accepts connections
 * and never answers counts as down as well as one that refuses (libldap's own
 * list only moves on when the TCP connect fails); one that failed is skipped
 * for ldap_timeout. A new connection thus goes to the first server that
 * answers; a connection lives at most SC_REPO_LDAP_CONN_MAX_AGE seconds, after
 * which it is closed when returned, so connections that failed over to a later
 * server come back to the first one once it is up again.
 */
#define SC_REPO_LDAP_POOL_MAX 8
#define SC_REPO_LDAP_CONN_MAX_AGE 300
#define SC_REPO_LDAP_HOSTS_MAX 8

struct sc_repo_ldap_pool;

struct sc_repo_ldap_pool_cfg {
	const char *uri;        /* libldap's space-separated list */
	const char *bind_dn;    /* NULL: anonymous */
	const char *password;   /* with bind_dn */
	size_t password_len;
	int starttls;
	const char *ca_file;    /* NULL: libldap's defaults */
	int timeout;            /* seconds, > 0: connect, bind, each operation, backoff */
	struct sc_repo *repo;   /* for sc_repo_warn() */
};

/* How a connection comes back to the pool. */
enum sc_repo_ldap_conn_state {
	SC_REPO_LDAP_CONN_OK,      /* usable again */
	SC_REPO_LDAP_CONN_BROKEN,  /* transport error: close it and the idle ones */
	SC_REPO_LDAP_CONN_TIMEOUT  /* no answer in time: close, and back off */
};

/* Strings are copied. @return SC_OK; SC_ERR_NOMEM; SC_ERR_ARG. */
SC_MUST_CHECK sc_status sc_repo_ldap_pool_new(const struct sc_repo_ldap_pool_cfg *cfg,
					      struct sc_repo_ldap_pool **out);
void sc_repo_ldap_pool_free(struct sc_repo_ldap_pool *p);

/*
 * A connection for the calling thread alone until sc_repo_ldap_pool_put(): an
 * idle one (*@p reused = 1), else a new one. While a connect fails, the store is
 * "down" for ldap_timeout seconds: every get fails at once, and only one thread
 * at a time tries to connect, so a dead directory costs one timeout per period,
 * not one per query.
 * @return SC_OK; SC_ERR_TEMP (down, connect/bind failed, or no connection freed
 *         up within ldap_timeout).
 */
SC_MUST_CHECK sc_status sc_repo_ldap_pool_get(struct sc_repo_ldap_pool *p, struct ldap **ld,
					      int *reused);
void sc_repo_ldap_pool_put(struct sc_repo_ldap_pool *p, struct ldap *ld,
			   enum sc_repo_ldap_conn_state how);

/* Connections currently open (idle or in use), for tests. */
size_t sc_repo_ldap_pool_open_count(struct sc_repo_ldap_pool *p);

/* The filter of list(): @p tmpl with each %s replaced by "*" (a presence or
 * substring match on that attribute) and each %XX decoded. @p attr (optional)
 * gets the attribute the first %s is a value of, e.g. "mail" in "(mail=%s)";
 * "" when it cannot be told. @return SC_OK; SC_ERR_TOO_LONG; SC_ERR_SYNTAX. */
SC_MUST_CHECK sc_status sc_repo_ldap_filter_all(const char *tmpl, char *out, size_t size,
						char *attr, size_t attrsize);

/* Certificates out of directory values (lib/repo_ldap_cert.c). */
#define SC_REPO_LDAP_CA_MAX 16 /* cACertificate values read from one CA entry */
struct stack_st_X509;

/* A value: a DER certificate, or (userSMIMECertificate, RFC 2798 2.8) a PKCS #7
 * SignedData whose certificate set becomes leaf + chain in issuer order.
 * @return SC_OK; SC_ERR_TOO_LONG; SC_ERR_SYNTAX or a sc_cert_parse() error. */
SC_MUST_CHECK sc_status sc_repo_ldap_value(const void *val, size_t len, sc_cert **out);

/* The cACertificate;binary values of the entry @p dn (at most SC_REPO_LDAP_CA_MAX)
 * into *@p out (never NULL unless out of memory; free with sc_repo_ldap_ca_free).
 * @return the LDAP result code of the search. */
int sc_repo_ldap_ca_fetch(struct ldap *ld, const char *dn, int timeout,
			  struct stack_st_X509 **out);
void sc_repo_ldap_ca_free(struct stack_st_X509 *cas);

/* Replace the bare leaf *@p c by leaf + its issuers found by name in @p cas.
 * @return SC_OK (replaced); SC_ERR_NOT_FOUND (no issuer there: *c unchanged). */
SC_MUST_CHECK sc_status sc_repo_ldap_chain(struct stack_st_X509 *cas, sc_cert **c);

/* The certificates of the search result entry @p e: every value of every
 * attribute returned except @p skip (NULL: none; list's address attribute),
 * appended to @p certs while *@p n < @p max; values that are no certificate are
 * skipped and reported through sc_repo_warn(). */
struct ldapmsg;
void sc_repo_ldap_entry_certs(struct sc_repo *repo, const char *uri, struct ldap *ld,
			      struct ldapmsg *e, const char *skip, sc_cert **certs, size_t *n,
			      size_t max);

/* One ldap:// store (lib/repo_ldap.c; list() in lib/repo_ldap_list.c). */
struct sc_repo_ldap {
	struct sc_repo *repo;            /* for sc_repo_warn() */
	struct sc_repo_ldap_url url;
	struct sc_repo_ldap_pool *pool;
	struct sc_repo_cache *cache;     /* NULL: ldap_cache_ttl = 0 */
	int timeout;                     /* seconds */
};

/* Most entries list() returns from one directory: it sorts them by key in
 * memory, so the bound is what keeps the admin CLI's memory fixed (about 2 KiB
 * per certificate). Beyond it: SC_ERR_TOO_MANY. */
#define SC_REPO_LDAP_LIST_MAX 50000
/* Entries asked for per page (RFC 2696 paged results). */
#define SC_REPO_LDAP_PAGE 500

/* The backend's list() (repo_backend.h). */
SC_MUST_CHECK sc_status sc_repo_ldap_list(void *state, sc_repo_entry_fn fn, void *arg);

/* Map a libldap result code to how the connection goes back to the pool. */
enum sc_repo_ldap_conn_state sc_repo_ldap_conn_after(int rc);

#endif
