/*
 * test_lookup.c - unit tests for the sender's trust state and checks:
 * sc_cert_check_for_encryption() (every refusal), the known-certificates store
 * (new, same, changed, --accept-new, CA rule, corrupt lines, atomic 0600
 * rewrite), the CA rule itself (lookup_chains_to_ca), the cache (hit, expiry,
 * other question, bad files) and sc_lookup_cert() answering from the cache
 * without a connection. Certificates are made at run time (tests/lib/testcert.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "smtpcert/smtpcert.h"
#include "smtpcert/lookup.h"
#include "lookup_int.h"
#include "testcert.h"

static tc_key *ca_key, *rsa, *ec;
static X509 *ca, *other_ca;
static char dir[512];

static int setup(void **state)
{
	(void)state;
	ca_key = tc_key_shared(TC_P256);
	rsa = tc_key_shared(TC_RSA2048);
	ec = tc_key_new(TC_P256);
	ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Lookup CA", .is_ca = 1,
						 .key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			 ca_key, NULL, NULL);
	other_ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Other CA", .is_ca = 1,
						       .key_usage = TC_KU_KEY_CERT_SIGN },
			       tc_key_shared(TC_P384), NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca);
	X509_free(other_ca);
	tc_key_free(ec);
	return 0;
}

static int per_test_setup(void **state)
{
	(void)state;
	tc_tmpdir(dir, sizeof dir);
	return 0;
}

static int per_test_teardown(void **state)
{
	(void)state;
	tc_rmtree(dir);
	return 0;
}

/* A leaf for @p email from @p o (emails[0] filled in), issued by the CA, with
 * the CA as its chain. */
static sc_cert *leaf(struct tc_cert_opts o, tc_key *k, const char *email)
{
	X509 *x, *chain[2];
	sc_cert *c = NULL;
	char *pem;
	size_t len;

	if (!o.emails[0])
		o.emails[0] = email;
	x = tc_cert_new(&o, k, ca, ca_key);
	chain[0] = x;
	chain[1] = ca;
	tc_chain_pem(chain, 2, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	free(pem);
	X509_free(x);
	return c;
}

static sc_cert *good_rsa(const char *email)
{
	return leaf((struct tc_cert_opts){ .key_usage = TC_KU_DIGITAL_SIGNATURE |
							TC_KU_KEY_ENCIPHERMENT,
					   .eku = TC_EKU_EMAIL_PROTECTION }, rsa, email);
}

static struct sc_addr addr(const char *s)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse(s, strlen(s), SC_ADDR_UTF8, &a, NULL), SC_OK);
	return a;
}

static void fp_hex(const sc_cert *c, char out[65])
{
	uint8_t fp[32];

	sc_cert_fingerprint(c, fp);
	sc_hex(fp, sizeof fp, out);
}

/* ---- sc_cert_check_for_encryption ------------------------------------------------ */

static sc_status check(sc_cert *c, const char *email, char *err, size_t errlen)
{
	struct sc_addr a = addr(email);
	sc_status st = sc_cert_check_for_encryption(c, &a, time(NULL), err, errlen);

	sc_cert_free(c);
	return st;
}

static void test_check_ok(void **state)
{
	char err[256] = "x";

	(void)state;
	assert_int_equal(check(good_rsa("alice@example.test"), "Alice@EXAMPLE.test", err,
			       sizeof err), SC_OK);
	assert_string_equal(err, "");
	/* no keyUsage, no extKeyUsage: nothing restricts the key */
	assert_int_equal(check(leaf((struct tc_cert_opts){ 0 }, rsa, "a@example.test"),
			       "a@example.test", NULL, 0), SC_OK);
	/* EC with keyAgreement (RFC 8550 4.4.2) */
	assert_int_equal(check(leaf((struct tc_cert_opts){ .key_usage = TC_KU_KEY_AGREEMENT |
								   TC_KU_DIGITAL_SIGNATURE,
							   .eku = TC_EKU_EMAIL_PROTECTION },
				    ec, "e@example.test"), "e@example.test", NULL, 0), SC_OK);
}

static void test_check_refusals(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(check(good_rsa("alice@example.test"), "bob@example.test", err,
			       sizeof err), SC_ERR_MISMATCH);
	assert_non_null(strstr(err, "not for bob@example.test"));

	assert_int_equal(check(leaf((struct tc_cert_opts){ .not_before_offset = -400L * 86400,
							   .not_after_offset = -86400 },
				    rsa, "a@example.test"), "a@example.test", err, sizeof err),
			 SC_ERR_EXPIRED);
	assert_non_null(strstr(err, "expired"));
	assert_int_equal(check(leaf((struct tc_cert_opts){ .not_before_offset = 86400,
							   .not_after_offset = 90 * 86400 },
				    rsa, "a@example.test"), "a@example.test", err, sizeof err),
			 SC_ERR_NOT_YET_VALID);

	/* RSA without keyEncipherment: a signing-only certificate */
	assert_int_equal(check(leaf((struct tc_cert_opts){ .key_usage = TC_KU_DIGITAL_SIGNATURE },
				    rsa, "a@example.test"), "a@example.test", err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "keyEncipherment"));
	/* EC without keyAgreement */
	assert_int_equal(check(leaf((struct tc_cert_opts){ .key_usage = TC_KU_DIGITAL_SIGNATURE },
				    ec, "a@example.test"), "a@example.test", err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "keyAgreement"));
	/* EC with keyEncipherment only is still not key agreement */
	assert_int_equal(check(leaf((struct tc_cert_opts){ .key_usage = TC_KU_KEY_ENCIPHERMENT },
				    ec, "a@example.test"), "a@example.test", NULL, 0),
			 SC_ERR_UNSUPPORTED);
	/* extKeyUsage without emailProtection */
	assert_int_equal(check(leaf((struct tc_cert_opts){ .eku = TC_EKU_SERVER_AUTH },
				    rsa, "a@example.test"), "a@example.test", err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "emailProtection"));
	/* weak RSA */
	assert_int_equal(check(leaf((struct tc_cert_opts){ 0 }, tc_key_shared(TC_RSA1024),
				    "a@example.test"), "a@example.test", err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "1024"));
	/* Ed25519: an algorithm we do not encrypt to, said clearly */
	assert_int_equal(check(leaf((struct tc_cert_opts){ 0 }, tc_key_shared(TC_ED25519),
				    "a@example.test"), "a@example.test", err, sizeof err),
			 SC_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "not supported"));
}

static void test_check_args(void **state)
{
	struct sc_addr a = addr("a@example.test");
	sc_cert *c = good_rsa("a@example.test");

	(void)state;
	assert_int_equal(sc_cert_check_for_encryption(NULL, &a, time(NULL), NULL, 0), SC_ERR_ARG);
	assert_int_equal(sc_cert_check_for_encryption(c, NULL, time(NULL), NULL, 0), SC_ERR_ARG);
	sc_cert_free(c);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(sc_trust_name(SC_TRUST_DANE), "dane");
	assert_string_equal(sc_trust_name(SC_TRUST_PKIX), "pkix");
	assert_string_equal(sc_trust_name(SC_TRUST_CACHE), "cache");
	assert_string_equal(sc_trust_name(SC_TRUST_TLS_ONLY), "tls-only");
	assert_string_equal(sc_trust_name(SC_TRUST_INSECURE), "insecure");
	assert_string_equal(sc_trust_name((enum sc_trust)99), "unknown");
	assert_string_equal(sc_pin_name(SC_PIN_CHANGED_CA), "changed-ca");
	assert_string_equal(sc_pin_name((enum sc_pin)-1), "unknown");
}

/* ---- known-certificates store ---------------------------------------------------- */

static void known_path(char *out, size_t size)
{
	snprintf(out, size, "%s/known_certs", dir);
}

static void test_known_new_same_changed(void **state)
{
	char path[600], err[512], fp1[65], fp2[65], *text;
	sc_cert *c1 = good_rsa("a@example.test"), *c2 = good_rsa("a@example.test");
	enum sc_pin pin;
	struct stat sb;
	size_t len;

	(void)state;
	known_path(path, sizeof path);
	fp_hex(c1, fp1);
	fp_hex(c2, fp2);
	assert_string_not_equal(fp1, fp2);

	assert_int_equal(lookup_known_check(path, "a@example.test", c1, 0, 0, 1000000000, &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_NEW);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(tc_read_file(path, &text, &len), 0);
	assert_non_null(strstr(text, "a@example.test\t"));
	assert_non_null(strstr(text, fp1));
	assert_non_null(strstr(text, "\t2001-09-09T01:46:40Z\t2001-09-09T01:46:40Z\n"));
	free(text);

	/* same: last-seen moves, first-seen stays */
	assert_int_equal(lookup_known_check(path, "a@example.test", c1, 0, 0, 1000086400, &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_SAME);
	assert_int_equal(tc_read_file(path, &text, &len), 0);
	assert_non_null(strstr(text, "\t2001-09-09T01:46:40Z\t2001-09-10T01:46:40Z\n"));
	free(text);

	/* changed: refused, both fingerprints named, file untouched */
	assert_int_equal(lookup_known_check(path, "a@example.test", c2, 0, 0, 1000090000, &pin,
					    err, sizeof err), SC_ERR_CHANGED);
	assert_non_null(strstr(err, fp1));
	assert_non_null(strstr(err, fp2));
	assert_non_null(strstr(err, "--accept-new"));
	assert_int_equal(tc_read_file(path, &text, &len), 0);
	assert_null(strstr(text, fp2));
	free(text);

	/* another address is independent */
	assert_int_equal(lookup_known_check(path, "b@example.test", c2, 0, 0, 1000090000, &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_NEW);

	/* CA rule, then accept_new */
	assert_int_equal(lookup_known_check(path, "a@example.test", c2, 1, 0, 1000090000, &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_CHANGED_CA);
	assert_int_equal(lookup_known_check(path, "a@example.test", c1, 0, 1, 1000090000, &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_ACCEPTED_NEW);
	assert_int_equal(lookup_known_check(path, "a@example.test", c1, 0, 0, 1000090001, &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_SAME);
	/* still one line per address, no temporary files left behind */
	assert_int_equal(tc_read_file(path, &text, &len), 0);
	assert_null(strstr(strstr(text, "a@example.test") + 1, "\na@example.test"));
	free(text);
	sc_cert_free(c1);
	sc_cert_free(c2);
}

static void test_known_corrupt_lines(void **state)
{
	static const char head[] =
		"# comment line\n"
		"\n"
		"garbage without tabs\n"
		"a@example.test\tnothex\t2020-01-01T00:00:00Z\t2020-01-01T00:00:00Z\n"
		"a@example.test\t%s\t2020-01-01T00:00:00Z\t2020-01-01T00:00:00Z\textra\n"
		"a@example.test\t%s\tyesterday\t2020-01-01T00:00:00Z\n";
	char path[600], err[512], fp[65], other[65], buf[4096], *text;
	sc_cert *c = good_rsa("a@example.test"), *d = good_rsa("a@example.test");
	enum sc_pin pin;
	FILE *f;
	size_t len;

	(void)state;
	known_path(path, sizeof path);
	fp_hex(c, fp);
	fp_hex(d, other);
	f = fopen(path, "w");
	assert_non_null(f);
	/* none of these lines counts as a record for a@example.test */
	fprintf(f, head, other, other);
	/* an over-long line and one with a NUL */
	for (int i = 0; i < 3000; i++)
		fputc('x', f);
	fputs("\nb@example.test\t", f);
	fputc('\0', f);
	fputs("\t\n", f);
	fclose(f);
	assert_int_equal(lookup_known_check(path, "a@example.test", c, 0, 0, time(NULL), &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_NEW);
	assert_int_equal(tc_read_file(path, &text, &len), 0);
	/* kept verbatim: comments and unparsable lines */
	assert_non_null(strstr(text, "# comment line\n\ngarbage without tabs\n"));
	snprintf(buf, sizeof buf, "a@example.test\t%s\tyesterday\t", other);
	assert_non_null(strstr(text, buf));
	/* the over-long and NUL lines became markers */
	assert_null(strstr(text, "xxxxxxxxxx"));
	assert_non_null(strstr(text, "# (corrupt line dropped"));
	assert_int_equal(strlen(text), len);
	/* the new record was appended and is used */
	snprintf(buf, sizeof buf, "\na@example.test\t%s\t", fp);
	assert_non_null(strstr(text, buf));
	free(text);
	assert_int_equal(lookup_known_check(path, "a@example.test", c, 0, 0, time(NULL), &pin,
					    err, sizeof err), SC_OK);
	assert_int_equal(pin, SC_PIN_SAME);
	sc_cert_free(c);
	sc_cert_free(d);
}

static void test_known_errors(void **state)
{
	char err[512];
	sc_cert *c = good_rsa("a@example.test");
	enum sc_pin pin;

	(void)state;
	/* a directory cannot be read as the store */
	assert_int_equal(lookup_known_check(dir, "a@example.test", c, 0, 0, time(NULL), &pin, err,
					    sizeof err), SC_ERR_IO);
	assert_int_equal(lookup_known_check(NULL, "a@example.test", c, 0, 0, 0, &pin, NULL, 0),
			 SC_ERR_ARG);
	/* a key with a tab or newline would forge a line */
	assert_int_equal(lookup_known_check("/nonexistent/x", "a\t@example.test", c, 0, 0, 0, &pin,
					    NULL, 0), SC_ERR_ARG);
	assert_int_equal(lookup_known_check("/nonexistent/x", "a@example.test\n", c, 0, 0, 0, &pin,
					    NULL, 0), SC_ERR_ARG);
	/* unwritable location */
	assert_int_equal(lookup_known_check("/nonexistent/dir/known", "a@example.test", c, 0, 0,
					    time(NULL), &pin, err, sizeof err), SC_ERR_IO);
	sc_cert_free(c);
}

/* ---- CA rule ------------------------------------------------------------------------ */

static void write_pem_file(const char *path, X509 *x)
{
	char *pem;
	size_t len;

	tc_cert_pem(x, &pem, &len);
	tc_write_file(path, pem, len);
	free(pem);
}

static void test_chains_to_ca(void **state)
{
	char capath[600], otherpath[600];
	sc_cert *c = good_rsa("a@example.test");
	sc_cert *signing = leaf((struct tc_cert_opts){ .key_usage = TC_KU_DIGITAL_SIGNATURE,
						       .eku = TC_EKU_EMAIL_PROTECTION },
				rsa, "a@example.test");

	(void)state;
	snprintf(capath, sizeof capath, "%s/ca.pem", dir);
	snprintf(otherpath, sizeof otherpath, "%s/other.pem", dir);
	write_pem_file(capath, ca);
	write_pem_file(otherpath, other_ca);
	assert_true(lookup_chains_to_ca(c, capath, time(NULL)));
	assert_false(lookup_chains_to_ca(c, otherpath, time(NULL)));
	assert_false(lookup_chains_to_ca(c, "/nonexistent/ca.pem", time(NULL)));
	assert_false(lookup_chains_to_ca(c, NULL, time(NULL)));
	/* long after the certificate expired */
	assert_false(lookup_chains_to_ca(c, capath, time(NULL) + 400L * 86400));
	/* the S/MIME encryption purpose checks key usage too */
	assert_false(lookup_chains_to_ca(signing, capath, time(NULL)));
	sc_cert_free(c);
	sc_cert_free(signing);
}

/* ---- cache ---------------------------------------------------------------------------- */

static void test_cache_put_get_expiry(void **state)
{
	struct lookup_cache_meta m = { .fetched = 1800000000, .trust = SC_TRUST_DANE, .dnssec = 1 };
	struct lookup_cache_meta got;
	char cdir[600], name[70], path[800];
	sc_cert *c = good_rsa("a@example.test"), *out = NULL;
	struct stat sb;
	uint8_t f1[32], f2[32];

	(void)state;
	snprintf(cdir, sizeof cdir, "%s/cache/smtpcert", dir);
	snprintf(m.server, sizeof m.server, "mx.example.test:25");
	assert_int_equal(lookup_cache_put(cdir, "q1", c, &m, NULL, 0), SC_OK);
	lookup_cache_name("q1", name);
	assert_int_equal(strlen(name), 68);
	snprintf(path, sizeof path, "%s/%s", cdir, name);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(cdir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	assert_int_equal(lookup_cache_get(cdir, "q1", 3600, 1800000000 + 3599, &out, &got), SC_OK);
	sc_cert_fingerprint(c, f1);
	sc_cert_fingerprint(out, f2);
	assert_memory_equal(f1, f2, 32);
	assert_int_equal(sc_cert_count(out), 2);
	assert_int_equal(got.trust, SC_TRUST_DANE);
	assert_int_equal(got.dnssec, 1);
	assert_int_equal(got.fetched, 1800000000);
	assert_string_equal(got.server, "mx.example.test:25");
	sc_cert_free(out);

	/* expired, from the future, another question */
	assert_int_equal(lookup_cache_get(cdir, "q1", 3600, 1800000000 + 3600, &out, &got),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(lookup_cache_get(cdir, "q1", 3600, 1800000000 - 1, &out, &got),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(lookup_cache_get(cdir, "q2", 3600, 1800000000, &out, &got),
			 SC_ERR_NOT_FOUND);
	assert_null(out);

	/* unauthenticated answers are never cached */
	m.trust = SC_TRUST_TLS_ONLY;
	assert_int_equal(lookup_cache_put(cdir, "q3", c, &m, NULL, 0), SC_ERR_ARG);
	m.trust = SC_TRUST_PKIX;
	snprintf(m.server, sizeof m.server, "evil\nfetched: 1");
	assert_int_equal(lookup_cache_put(cdir, "q3", c, &m, NULL, 0), SC_ERR_ARG);

	lookup_cache_drop(cdir, "q1");
	assert_int_not_equal(stat(path, &sb), 0);
	sc_cert_free(c);
}

static void test_cache_bad_files(void **state)
{
	static const char *const bad[] = {
		"garbage\n",
		"smtpcert-cache: 1\nfetched: x\ntrust: pkix\ndnssec: 0\nserver: s\n",
		"smtpcert-cache: 1\nfetched: 1800000000\ntrust: insecure\ndnssec: 0\nserver: s\n",
		"smtpcert-cache: 1\nfetched: 1800000000\ntrust: pkix\ndnssec: 0\n",
		"smtpcert-cache: 1\nfetched: 1800000000\ntrust: pkix\ndnssec: 0\nserver: s\n"
		"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
		"smtpcert-cache: 2\nfetched: 1800000000\ntrust: pkix\ndnssec: 0\nserver: s\n",
	};
	struct lookup_cache_meta got;
	char name[70], path[800];
	sc_cert *out = NULL;

	(void)state;
	lookup_cache_name("q", name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tc_write_file(path, bad[i], strlen(bad[i]));
		assert_int_equal(lookup_cache_get(dir, "q", 3600, 1800000001, &out, &got),
				 SC_ERR_NOT_FOUND);
		assert_null(out);
	}
	/* oversized */
	{
		size_t n = SC_CERT_INPUT_MAX + 4096;
		char *big = malloc(n);

		assert_non_null(big);
		memset(big, 'A', n);
		memcpy(big, "smtpcert-cache: 1\n", 18);
		tc_write_file(path, big, n);
		free(big);
		assert_int_equal(lookup_cache_get(dir, "q", 3600, 1800000001, &out, &got),
				 SC_ERR_NOT_FOUND);
	}
}

/* ---- sc_lookup_cert from the cache --------------------------------------------------- */

static void test_lookup_from_cache(void **state)
{
	struct sc_lookup_opts o = { 0 };
	struct sc_lookup_result r;
	struct lookup_cache_meta m = { .trust = SC_TRUST_PKIX };
	struct sc_addr a = addr("a@example.test");
	char cdir[600], known[600], q[2048], err[512];
	sc_cert *c = good_rsa("a@example.test"), *d = good_rsa("a@example.test");
	sc_cert *old = leaf((struct tc_cert_opts){ .not_before_offset = -400L * 86400,
						   .not_after_offset = -86400 },
			    rsa, "a@example.test");

	(void)state;
	snprintf(cdir, sizeof cdir, "%s/cache", dir);
	snprintf(known, sizeof known, "%s/known", dir);
	o.server = "127.0.0.1:1"; /* nothing listens: a network answer would fail */
	o.cache_dir = cdir;
	o.known_file = known;
	o.timeout_ms = 2000;
	lookup_question("a@example.test", &o, q, sizeof q);
	m.fetched = time(NULL) - 10;
	snprintf(m.server, sizeof m.server, "127.0.0.1:1");
	assert_int_equal(lookup_cache_put(cdir, q, c, &m, NULL, 0), SC_OK);

	assert_int_equal(sc_lookup_cert(&a, &o, &r, err, sizeof err), SC_OK);
	assert_int_equal(r.trust, SC_TRUST_CACHE);
	assert_int_equal(r.pin, SC_PIN_NEW);
	assert_string_equal(r.server, "");
	assert_non_null(strstr(r.detail, "trusted by pkix"));
	sc_cert_free(r.cert);

	/* --insecure never reads the cache */
	o.insecure = 1;
	assert_int_not_equal(sc_lookup_cert(&a, &o, &r, err, sizeof err), SC_OK);
	assert_null(r.cert);
	o.insecure = 0;

	/* a cached answer that differs from the remembered one is stale: dropped,
	 * and the network asked (here: nothing listens) */
	assert_int_equal(lookup_cache_put(cdir, q, d, &m, NULL, 0), SC_OK);
	assert_int_equal(sc_lookup_cert(&a, &o, &r, err, sizeof err), SC_ERR_NETWORK);
	assert_null(r.cert);
	{
		struct lookup_cache_meta m2;
		sc_cert *none = NULL;

		assert_int_equal(lookup_cache_get(cdir, q, 3600, time(NULL), &none, &m2),
				 SC_ERR_NOT_FOUND);
	}
	m.trust = SC_TRUST_PKIX;

	/* a cached certificate that has expired since is dropped, then refetched */
	assert_int_equal(lookup_cache_put(cdir, q, old, &m, NULL, 0), SC_OK);
	assert_int_equal(sc_lookup_cert(&a, &o, &r, err, sizeof err), SC_ERR_NETWORK);
	{
		struct lookup_cache_meta m2;
		sc_cert *none = NULL;

		assert_int_equal(lookup_cache_get(cdir, q, 3600, time(NULL), &none, &m2),
				 SC_ERR_NOT_FOUND);
		assert_null(none);
	}

	/* "" turns the cache off */
	assert_int_equal(lookup_cache_put(cdir, q, c, &m, NULL, 0), SC_OK);
	o.cache_dir = "";
	assert_int_equal(sc_lookup_cert(&a, &o, &r, err, sizeof err), SC_ERR_NETWORK);
	o.cache_dir = cdir;

	/* a different question (chain flag) is a miss */
	o.chain = 1;
	assert_int_equal(sc_lookup_cert(&a, &o, &r, err, sizeof err), SC_ERR_NETWORK);

	/* malformed --server */
	o.server = "[::1";
	assert_int_equal(sc_lookup_cert(&a, &o, &r, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_lookup_cert(NULL, &o, &r, err, sizeof err), SC_ERR_ARG);
	sc_cert_free(c);
	sc_cert_free(d);
	sc_cert_free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_ok),
		cmocka_unit_test(test_check_refusals),
		cmocka_unit_test(test_check_args),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_known_new_same_changed, per_test_setup,
						per_test_teardown),
		cmocka_unit_test_setup_teardown(test_known_corrupt_lines, per_test_setup,
						per_test_teardown),
		cmocka_unit_test_setup_teardown(test_known_errors, per_test_setup,
						per_test_teardown),
		cmocka_unit_test_setup_teardown(test_chains_to_ca, per_test_setup,
						per_test_teardown),
		cmocka_unit_test_setup_teardown(test_cache_put_get_expiry, per_test_setup,
						per_test_teardown),
		cmocka_unit_test_setup_teardown(test_cache_bad_files, per_test_setup,
						per_test_teardown),
		cmocka_unit_test_setup_teardown(test_lookup_from_cache, per_test_setup,
						per_test_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
