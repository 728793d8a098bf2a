/*
 * ldaptest.h - private slapd instances for the unit tests of the ldap://
 * backend (library sc_testlib): Debian's slapd with its own slapd.conf and mdb
 * database in a temp dir (the system's /etc/ldap config is never read), on a
 * free 127.0.0.1 port and on a Unix socket in that dir (ldapi), started and
 * stopped by PID (stop keeps the data: start brings the same directory back).
 * Suffix dc=example,dc=test with ou=people; rootdn cn=admin (LT_ROOTPW); 500
 * entries per plain search, unlimited in RFC 2696 pages. A missing slapd fails
 * the test naming the package (scripts/install-deps installs slapd), never
 * skips. Test code: failures are cmocka assertions.
 */
#ifndef SC_LDAPTEST_H
#define SC_LDAPTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <ldap.h>
#include <openssl/x509.h>
#include <smtpcert/smtpcert.h>
#include "testcert.h"

#define LT_SUFFIX "dc=example,dc=test"
#define LT_PEOPLE "ou=people," LT_SUFFIX
#define LT_ROOTDN "cn=admin," LT_SUFFIX
#define LT_ROOTPW "sc-test-secret"
#define LT_SLAPD "/usr/sbin/slapd"

struct lt_slapd {
	char dir[512];
	char port[8];
	char url[64];    /* ldap://127.0.0.1:PORT */
	char ldapi[600]; /* ldapi://%2F...%2Fldapi: slapd's socket in dir */
	pid_t pid;
	int loaded;
};

/* The test CA (P-256, made on first use) that lt_make_leaf() signs with. */
extern tc_key *lt_key;
extern X509 *lt_ca;
void lt_pki_init(void);
void lt_pki_free(void);

/* Config in a new temp dir and a free port; lt_slapd_start() runs it (the first
 * time also adding the suffix and ou=people); lt_slapd_stop() SIGTERMs it and
 * waits (SIGKILL after 10 s); the caller removes d->dir with tc_rmtree(). */
void lt_slapd_init(struct lt_slapd *d);
void lt_slapd_start(struct lt_slapd *d);
void lt_slapd_stop(struct lt_slapd *d);

/* Add @p dn with object classes @p oc (NULL-terminated) and @p n attribute
 * values types[i] = vals[i] (lens[i] bytes); equal types in a row make one
 * multi-valued attribute. As rootdn. */
void lt_put(struct lt_slapd *d, const char *dn, const char *const *oc,
	    const char *const *types, const void *const *vals, const size_t *lens, size_t n);
/* An inetOrgPerson uid=@p uid under @p base (lt_add_person: ou=people) with the
 * mail values @p mails (NULL-terminated, may be NULL) and, when @p der, one
 * userCertificate;binary value. */
void lt_add_person_in(struct lt_slapd *d, const char *base, const char *uid,
		      const char *const *mails, const uint8_t *der, size_t derlen);
void lt_add_person(struct lt_slapd *d, const char *uid, const char *const *mails,
		   const uint8_t *der, size_t derlen);
void lt_del_person(struct lt_slapd *d, const char *uid);

/* A leaf for @p mail signed by lt_ca (serial 0: random; not_after: offset in
 * seconds, 0: 30 days); its DER (malloc'ed) and SHA-256 fingerprint. */
void lt_make_leaf(const char *mail, long serial, long not_after, uint8_t **der, size_t *len,
		  uint8_t fp[32]);

/* ldap://@p hosts/ou=people,...?userCertificate;binary?sub?(mail=%s)@p ext,
 * read-only, with that cache TTL and timeout. */
sc_repo *lt_open_store(const char *hosts, const char *ext, unsigned ttl, int timeout);

/* What a lookup served. */
struct lt_got {
	uint8_t fp[32];
	size_t n_der;
	int calls;
};

sc_status lt_count_visit(void *arg, const struct sc_repo_entry *e);
sc_status lt_got_visit(void *arg, const struct sc_repo_entry *e);
/* sc_repo_lookup() of @p addr at @p now under @p crls (lt_lookup: now, none). */
sc_status lt_lookup_at(sc_repo *r, const char *addr, time_t now, const sc_crlset *crls,
		       struct lt_got *g);
sc_status lt_lookup(sc_repo *r, const char *addr, struct lt_got *g);

#endif
