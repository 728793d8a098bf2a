/*
 * ldaptest.c - private slapd instances and small helpers for the unit tests of
 * the ldap:// backend (ldaptest.h). Test code only; runs in the test process
 * and the slapd it forks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "ldaptest.h"
#include "testsrv.h"

tc_key *lt_key;
X509 *lt_ca;

void lt_pki_init(void)
{
	if (lt_ca)
		return;
	lt_key = tc_key_shared(TC_P256);
	lt_ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "LDAP Test CA", .is_ca = 1,
						    .key_usage = TC_KU_KEY_CERT_SIGN |
								 TC_KU_CRL_SIGN },
			    lt_key, NULL, NULL);
}

void lt_pki_free(void)
{
	X509_free(lt_ca);
	lt_ca = NULL;
}

void lt_slapd_init(struct lt_slapd *d)
{
	char conf[600];
	FILE *f;

	if (access(LT_SLAPD, X_OK) != 0)
		fail_msg("%s not found: install slapd (scripts/install-deps)", LT_SLAPD);
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
		"database mdb\nmaxsize 67108864\nsuffix \"" LT_SUFFIX "\"\n"
		"rootdn \"" LT_ROOTDN "\"\nrootpw " LT_ROOTPW "\ndirectory %s/db\n"
		/* 500 per plain search, unlimited in pages (RFC 2696): list() must
		 * page to see more than 500 entries */
		"sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited\n"
		"access to * by * read\n", d->dir, d->dir);
	fclose(f);
}

static LDAP *lt_admin_conn(struct lt_slapd *d)
{
	struct berval pw = { .bv_val = LT_ROOTPW, .bv_len = strlen(LT_ROOTPW) };
	int v3 = LDAP_VERSION3;
	LDAP *ld = NULL;

	assert_int_equal(ldap_initialize(&ld, d->url), LDAP_SUCCESS);
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	assert_int_equal(ldap_sasl_bind_s(ld, LT_ROOTDN, LDAP_SASL_SIMPLE, &pw, NULL, NULL, NULL),
			 LDAP_SUCCESS);
	return ld;
}

/* Add @p dn with attributes given as NULL-terminated (type, value, len) triples
 * per attribute: one LDAPMod per type, one value each. */
void lt_put(struct lt_slapd *d, const char *dn, const char *const *oc,
		     const char *const *types, const void *const *vals, const size_t *lens,
		     size_t n)
{
	LDAPMod mods[16], *pm[17];
	struct berval bv[16], *bvp[16][8], ocv[4], *ocp[5];
	LDAP *ld = lt_admin_conn(d);
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
void lt_add_person_in(struct lt_slapd *d, const char *base, const char *uid,
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
	lt_put(d, dn, oc, types, vals, lens, n);
}

void lt_add_person(struct lt_slapd *d, const char *uid, const char *const *mails,
		       const uint8_t *der, size_t derlen)
{
	lt_add_person_in(d, LT_PEOPLE, uid, mails, der, derlen);
}

void lt_del_person(struct lt_slapd *d, const char *uid)
{
	LDAP *ld = lt_admin_conn(d);
	char dn[256];

	snprintf(dn, sizeof dn, "uid=%s," LT_PEOPLE, uid);
	assert_int_equal(ldap_delete_ext_s(ld, dn, NULL, NULL), LDAP_SUCCESS);
	ldap_unbind_ext_s(ld, NULL, NULL);
}

void lt_slapd_start(struct lt_slapd *d)
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
		execl(LT_SLAPD, "slapd", "-h", listen, "-f", conf, "-d", "0", (char *)NULL);
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

		lt_put(d, LT_SUFFIX, dc, t1, v1, l1, 2);
		lt_put(d, LT_PEOPLE, ou, t2, v2, l2, 1);
		d->loaded = 1;
	}
}

void lt_slapd_stop(struct lt_slapd *d)
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
void lt_make_leaf(const char *mail, long serial, long not_after, uint8_t **der,
		      size_t *len, uint8_t fp[32])
{
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = mail, .emails = { mail },
						      .serial = serial,
						      .not_after_offset = not_after,
						      .eku = TC_EKU_EMAIL_PROTECTION },
			      lt_key, lt_ca, lt_key);
	sc_cert *c;

	tc_cert_der(x, der, len);
	X509_free(x);
	assert_int_equal(sc_cert_parse(*der, *len, &c), SC_OK);
	sc_cert_fingerprint(c, fp);
	sc_cert_free(c);
}

sc_repo *lt_open_store(const char *hosts, const char *ext, unsigned ttl, int timeout)
{
	struct sc_repo_ldap_opts o = { .timeout = timeout, .cache_ttl = ttl };
	char spec[512], err[512];
	sc_repo *r = NULL;

	snprintf(spec, sizeof spec, "ldap://%s/" LT_PEOPLE "?userCertificate;binary?sub?(mail=%%s)%s",
		 hosts, ext ? ext : "");
	assert_int_equal(sc_repo_open_ex(spec, SC_REPO_RDONLY, &o, &r, err, sizeof err), SC_OK);
	return r;
}

sc_status lt_count_visit(void *arg, const struct sc_repo_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return SC_OK;
}

sc_status lt_got_visit(void *arg, const struct sc_repo_entry *e)
{
	struct lt_got *g = arg;

	memcpy(g->fp, e->fingerprint, 32);
	g->n_der = e->n_der;
	g->calls++;
	return SC_OK;
}

sc_status lt_lookup_at(sc_repo *r, const char *addr, time_t now, const sc_crlset *crls,
			   struct lt_got *g)
{
	struct sc_addr a;

	memset(g, 0, sizeof *g);
	if (sc_addr_parse(addr, strlen(addr), SC_ADDR_UTF8, &a, NULL) != SC_OK)
		return SC_ERR_ARG;
	return sc_repo_lookup(r, &a, now, crls, lt_got_visit, g);
}

sc_status lt_lookup(sc_repo *r, const char *addr, struct lt_got *g)
{
	return lt_lookup_at(r, addr, time(NULL), NULL, g);
}
