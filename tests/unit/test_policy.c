/*
 * test_policy.c - the CERC acceptance policy (lib/policy.c) on certificates made
 * at test time: every refusal reason and the accept path, key types and sizes,
 * keyUsage/extKeyUsage variants (including an undecodable keyUsage), CRLs, the
 * optional chain to submission_ca_file, the key description, and RFC 4262
 * SMIMECapabilities present, absent, garbled, duplicated and truncated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"

#define OID_SMIME_CAPS "1.2.840.113549.1.9.15"

static char dir[512], root_file[600], other_file[600];
static tc_key *cak;
static X509 *ca;
static sc_config *cfg;

static int setup(void **state)
{
	static const char conf[] = "domains = example.test\ngateway_domains = gw.test\n";
	tc_key *ok = tc_key_shared(TC_RSA2048);
	X509 *other;
	char *pem, err[256];
	size_t len;

	cak = tc_key_shared(TC_P256);
	ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Policy CA", .is_ca = 1,
			 .key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			 cak, NULL, NULL);
	other = tc_cert_new(&(struct tc_cert_opts){ .cn = "Other CA", .is_ca = 1 }, ok, NULL,
			    NULL);
	tc_tmpdir(dir, sizeof dir);
	snprintf(root_file, sizeof root_file, "%s/root.pem", dir);
	snprintf(other_file, sizeof other_file, "%s/other.pem", dir);
	tc_cert_pem(ca, &pem, &len);
	tc_write_file(root_file, pem, len);
	free(pem);
	tc_cert_pem(other, &pem, &len);
	tc_write_file(other_file, pem, len);
	free(pem);
	X509_free(other);
	if (sc_config_parse(conf, sizeof conf - 1, "test.conf", &cfg, err, sizeof err) != SC_OK) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	X509_free(ca);
	sc_config_free(cfg);
	tc_rmtree(dir);
	return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static struct sc_addr addr(const char *s)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse(s, strlen(s), SC_ADDR_UTF8, &a, NULL), SC_OK);
	return a;
}

/* sc_cert from one or more X509 (leaf first). */
static sc_cert *to_cert(X509 *const *xs, size_t n)
{
	sc_cert *c = NULL;
	char *pem;
	size_t len;

	tc_chain_pem(xs, n, &pem, &len);
	assert_int_equal(sc_cert_parse(pem, len, &c), SC_OK);
	free(pem);
	return c;
}

/* A leaf for alice@example.test issued by the test CA; @p o may override fields. */
static X509 *leaf(struct tc_cert_opts o, enum tc_keytype kt)
{
	if (!o.emails[0] && !o.subject_email)
		o.emails[0] = "alice@example.test";
	if (!o.cn)
		o.cn = "Alice";
	return tc_cert_new(&o, tc_key_shared(kt), ca, cak);
}

/* Add an extension with raw DER content and sign again with the CA key. */
static void add_raw_ext(X509 *x, int nid, const char *oid, const uint8_t *der, size_t len,
			int critical)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *obj = oid ? OBJ_txt2obj(oid, 1) : OBJ_nid2obj(nid);
	X509_EXTENSION *ext;

	assert_non_null(os);
	assert_non_null(obj);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, (int)len), 1);
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, critical, os);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	assert_true(X509_sign(x, tc_key_pkey(cak), EVP_sha256()) > 0);
}

struct verdict {
	sc_status st;
	char reason[256];
};

static struct verdict judge_x(X509 *const *xs, size_t n, const char *who,
			      const struct sc_policy *p)
{
	static const struct sc_policy dflt;
	struct verdict v = { 0 };
	struct sc_policy pol = p ? *p : dflt;
	struct sc_addr a = addr(who);
	sc_cert *c = to_cert(xs, n);

	if (!p)
		pol.cfg = cfg;
	v.st = sc_policy_check(&pol, c, &a, v.reason, sizeof v.reason);
	sc_cert_free(c);
	return v;
}

/* Judge a leaf alone (freed) as a submission for @p who under the default policy. */
static struct verdict judge(X509 *x, const char *who)
{
	struct verdict v = judge_x(&x, 1, who, NULL);

	X509_free(x);
	return v;
}

#define ASSERT_OK(v)                                                                 \
	do {                                                                         \
		struct verdict v_ = (v);                                             \
		if (v_.st != SC_OK)                                                  \
			fail_msg("refused: %s (%s)", v_.reason, sc_strerror(v_.st)); \
		assert_string_equal(v_.reason, "");                                  \
	} while (0)

#define ASSERT_REFUSED(v, why)                                 \
	do {                                                   \
		struct verdict v_ = (v);                       \
		assert_int_equal(v_.st, SC_ERR_POLICY);        \
		assert_string_equal(v_.reason, (why));         \
	} while (0)

#define KU_RSA (TC_KU_DIGITAL_SIGNATURE | TC_KU_KEY_ENCIPHERMENT)
#define KU_EC (TC_KU_DIGITAL_SIGNATURE | TC_KU_KEY_AGREEMENT)

/* ---- identity, domain, time, revocation -------------------------------------------- */

static void test_accept_typical(void **state)
{
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .key_usage = KU_EC,
					.eku = TC_EKU_EMAIL_PROTECTION }, TC_P256),
			"alice@example.test"));
	/* no keyUsage and no extKeyUsage at all: nothing restricts the key */
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ 0 }, TC_P256), "alice@example.test"));
	/* the address compares by lookup key: case of the local part and domain */
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ 0 }, TC_P256), "<Alice@EXAMPLE.test>"));
	/* gateway domains are served too */
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .emails = { "gw@gw.test" } }, TC_P256),
			"gw@gw.test"));
	/* subject emailAddress only (RFC 8550 3) and SmtpUTF8Mailbox (RFC 8398) */
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .subject_email = "alice@example.test" },
			     TC_P256),
			"alice@example.test"));
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .emails = { "x@example.test" },
					.utf8_mailboxes = { "j\xc3\xb6rg@example.test" } },
			     TC_P256),
			"j\xc3\xb6rg@example.test"));
}

static void test_not_a_certificate(void **state)
{
	struct sc_policy p = { .cfg = cfg };
	struct sc_addr a = addr("alice@example.test");
	char reason[64] = "x";

	assert_int_equal(sc_policy_check(&p, NULL, &a, reason, sizeof reason), SC_ERR_POLICY);
	assert_string_equal(reason, "not a certificate");
	assert_int_equal(sc_policy_check(NULL, NULL, &a, reason, sizeof reason), SC_ERR_ARG);
	assert_int_equal(sc_policy_check(&p, NULL, NULL, reason, sizeof reason), SC_ERR_ARG);
	/* no reason buffer: the verdict alone */
	assert_int_equal(sc_policy_check(&p, NULL, &a, NULL, 0), SC_ERR_POLICY);
}

static void test_identity(void **state)
{
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .emails = { "bob@example.test" } },
				  TC_P256),
			     "alice@example.test"),
		       "email address does not match");
	/* a dNSName is not an email address */
	ASSERT_REFUSED(judge(tc_cert_new(&(struct tc_cert_opts){ .cn = "alice@example.test",
					 .dns_names = { "example.test" } },
					 tc_key_shared(TC_P256), ca, cak),
			     "alice@example.test"),
		       "no email address");
}

/* an rfc822Name with a NUL inside is skipped, leaving none */
static void test_identity_nul(void **state)
{
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice",
				.raw_email = "alice@example.test\0.evil", .raw_email_len = 24 },
			       tc_key_shared(TC_P256), ca, cak);

	ASSERT_REFUSED(judge(x, "alice@example.test"), "no email address");
}

static void test_domain_not_served(void **state)
{
	struct sc_policy any = { 0 };
	X509 *x = leaf((struct tc_cert_opts){ .emails = { "carol@elsewhere.test" } }, TC_P256);

	ASSERT_REFUSED(judge_x(&x, 1, "carol@elsewhere.test", NULL), "domain not served");
	/* without a configuration (smtpcert check without -c) any domain is judged */
	ASSERT_OK(judge_x(&x, 1, "carol@elsewhere.test", &any));
	X509_free(x);
}

static void test_validity(void **state)
{
	struct sc_policy later = { .cfg = cfg, .now = time(NULL) + 60L * 24 * 3600 };
	X509 *x = leaf((struct tc_cert_opts){ 0 }, TC_P256);

	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .not_after_offset = -60 }, TC_P256),
			     "alice@example.test"),
		       "expired");
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .not_before_offset = 3600 }, TC_P256),
			     "alice@example.test"),
		       "not yet valid");
	/* judged at p->now: 60 days on, the 30-day certificate has expired */
	ASSERT_REFUSED(judge_x(&x, 1, "alice@example.test", &later), "expired");
	X509_free(x);
}

static void test_revoked(void **state)
{
	sc_crlset *crls;
	long serial = 4242;
	char *pem;
	size_t len;
	struct sc_policy p = { .cfg = cfg };
	X509 *x = leaf((struct tc_cert_opts){ .serial = 4242 }, TC_P256);
	X509 *y = leaf((struct tc_cert_opts){ .serial = 4243 }, TC_P256);

	assert_int_equal(sc_crlset_new(&crls), SC_OK);
	tc_crl_new(ca, cak, &serial, 1, 0, 0, &pem, &len);
	assert_int_equal(sc_crlset_add_mem(crls, pem, len), SC_OK);
	free(pem);
	p.crls = crls;
	ASSERT_REFUSED(judge_x(&x, 1, "alice@example.test", &p), "revoked");
	ASSERT_OK(judge_x(&y, 1, "alice@example.test", &p));
	X509_free(x);
	X509_free(y);
	sc_crlset_free(crls);
}

/* ---- keyUsage and extKeyUsage ---------------------------------------------------------- */

static void test_key_usage(void **state)
{
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .key_usage = KU_RSA }, TC_RSA2048),
			"alice@example.test"));
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .key_usage = TC_KU_DIGITAL_SIGNATURE },
				  TC_RSA2048),
			     "alice@example.test"),
		       "keyUsage does not permit encryption");
	/* RSA with keyAgreement only cannot wrap a content key */
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .key_usage = TC_KU_KEY_AGREEMENT },
				  TC_RSA2048),
			     "alice@example.test"),
		       "keyUsage does not permit encryption");
	/* EC encrypts by key agreement (RFC 5753): keyEncipherment alone is wrong */
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .key_usage = KU_EC }, TC_P256),
			"alice@example.test"));
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .key_usage = TC_KU_KEY_ENCIPHERMENT },
				  TC_P256),
			     "alice@example.test"),
		       "keyUsage does not permit encryption");
}

static void test_key_usage_undecodable(void **state)
{
	static const uint8_t garbage[] = { 0x04, 0x02, 0xff }; /* truncated */
	static const uint8_t wrong_type[] = { 0x02, 0x01, 0x05 }; /* INTEGER */
	X509 *x = leaf((struct tc_cert_opts){ 0 }, TC_P256);
	X509 *y = leaf((struct tc_cert_opts){ 0 }, TC_RSA2048);

	add_raw_ext(x, NID_key_usage, NULL, garbage, sizeof garbage, 1);
	ASSERT_REFUSED(judge(x, "alice@example.test"), "keyUsage does not permit encryption");
	add_raw_ext(y, NID_key_usage, NULL, wrong_type, sizeof wrong_type, 0);
	ASSERT_REFUSED(judge(y, "alice@example.test"), "keyUsage does not permit encryption");
}

static void test_ext_key_usage(void **state)
{
	static const uint8_t garbage[] = { 0x30, 0x05, 0x06 };
	X509 *any = leaf((struct tc_cert_opts){ 0 }, TC_P256);
	X509 *bad = leaf((struct tc_cert_opts){ 0 }, TC_P256);
	X509_EXTENSION *ext;

	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .eku = TC_EKU_EMAIL_PROTECTION |
						    TC_EKU_CLIENT_AUTH }, TC_P256),
			"alice@example.test"));
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .eku = TC_EKU_SERVER_AUTH }, TC_P256),
			     "alice@example.test"),
		       "extKeyUsage lacks emailProtection");
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .eku = TC_EKU_SERVER_AUTH |
						       TC_EKU_CLIENT_AUTH }, TC_P256),
			     "alice@example.test"),
		       "extKeyUsage lacks emailProtection");
	/* anyExtendedKeyUsage (RFC 5280 4.2.1.12) permits email protection */
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "anyExtendedKeyUsage");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(any, ext, -1), 1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(any, tc_key_pkey(cak), EVP_sha256()) > 0);
	ASSERT_OK(judge(any, "alice@example.test"));
	add_raw_ext(bad, NID_ext_key_usage, NULL, garbage, sizeof garbage, 0);
	ASSERT_REFUSED(judge(bad, "alice@example.test"), "extKeyUsage lacks emailProtection");
}

/* ---- key types and sizes -------------------------------------------------------------- */

static void test_key_strength(void **state)
{
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .key_usage = KU_RSA }, TC_RSA2048),
			"alice@example.test"));
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ .key_usage = KU_RSA }, TC_RSA1024),
			     "alice@example.test"),
		       "RSA key too small (1024 bits)");
	ASSERT_OK(judge(leaf((struct tc_cert_opts){ .key_usage = KU_EC }, TC_P384),
			"alice@example.test"));
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ 0 }, TC_P224), "alice@example.test"),
		       "EC curve too small (P-224)");
	/* Ed25519 signs; it cannot receive encrypted mail */
	ASSERT_REFUSED(judge(leaf((struct tc_cert_opts){ 0 }, TC_ED25519), "alice@example.test"),
		       "unsupported key type (Ed25519)");
}

/* A P-256 leaf whose key is replaced by one on @p curve, signed again. */
static X509 *leaf_on_curve(const char *curve)
{
	X509 *x = leaf((struct tc_cert_opts){ .key_usage = KU_EC }, TC_P256);
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	assert_non_null(pk);
	assert_int_equal(X509_set_pubkey(x, pk), 1);
	assert_true(X509_sign(x, tc_key_pkey(cak), EVP_sha256()) > 0);
	EVP_PKEY_free(pk);
	return x;
}

static void test_curves(void **state)
{
	ASSERT_OK(judge(leaf_on_curve("P-521"), "alice@example.test"));
	ASSERT_OK(judge(leaf_on_curve("brainpoolP256r1"), "alice@example.test"));
	/* 256 bits, but no S/MIME client does ECDH on it */
	ASSERT_REFUSED(judge(leaf_on_curve("secp256k1"), "alice@example.test"),
		       "unsupported key type (EC-secp256k1)");
	ASSERT_REFUSED(judge(leaf_on_curve("P-192"), "alice@example.test"),
		       "EC curve too small (P-192)");
}

static void test_key_desc(void **state)
{
	static const struct {
		enum tc_keytype kt;
		const char *want;
	} cases[] = {
		{ TC_RSA2048, "RSA-2048" }, { TC_RSA1024, "RSA-1024" }, { TC_P256, "EC-P-256" },
		{ TC_P384, "EC-P-384" }, { TC_P224, "EC-P-224" }, { TC_ED25519, "Ed25519" },
	};
	char buf[64], tiny[5];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		X509 *x = leaf((struct tc_cert_opts){ 0 }, cases[i].kt);
		sc_cert *c = to_cert(&x, 1);

		sc_cert_key_desc(c, buf, sizeof buf);
		assert_string_equal(buf, cases[i].want);
		sc_cert_key_desc(c, tiny, sizeof tiny);
		assert_int_equal(strlen(tiny), sizeof tiny - 1);
		sc_cert_key_desc(c, NULL, 0); /* no buffer: nothing happens */
		sc_cert_free(c);
		X509_free(x);
	}
	sc_cert_key_desc(NULL, buf, sizeof buf);
	assert_string_equal(buf, "unknown");
}

/* ---- chain to submission_ca_file ------------------------------------------------------- */

static void test_chain(void **state)
{
	struct sc_policy p = { .cfg = cfg, .ca_file = root_file };
	tc_key *ik = tc_key_shared(TC_P384);
	X509 *inter = tc_cert_new(&(struct tc_cert_opts){ .cn = "Intermediate", .is_ca = 1,
				   .key_usage = TC_KU_KEY_CERT_SIGN },
				  ik, ca, cak);
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice",
			       .emails = { "alice@example.test" }, .key_usage = KU_EC,
			       .eku = TC_EKU_EMAIL_PROTECTION },
			      tc_key_shared(TC_P256), inter, ik);
	X509 *direct = leaf((struct tc_cert_opts){ .key_usage = KU_EC }, TC_P256);
	X509 *chain[2] = { x, inter };
	struct verdict v;

	/* issued by the anchor itself; EC keyAgreement passes (our KU rule, not OpenSSL's
	 * S/MIME purpose which would insist on keyEncipherment) */
	ASSERT_OK(judge_x(&direct, 1, "alice@example.test", &p));
	/* through the intermediate submitted with it */
	ASSERT_OK(judge_x(chain, 2, "alice@example.test", &p));
	/* without it: no path */
	ASSERT_REFUSED(judge_x(&x, 1, "alice@example.test", &p),
		       "does not chain to a submission anchor "
		       "(unable to get local issuer certificate)");
	/* some other anchor */
	p.ca_file = other_file;
	v = judge_x(chain, 2, "alice@example.test", &p);
	assert_int_equal(v.st, SC_ERR_POLICY);
	assert_non_null(strstr(v.reason, "does not chain to a submission anchor ("));
	/* unreadable anchors: a configuration problem, not the submitter's */
	p.ca_file = "/nonexistent/anchors.pem";
	v = judge_x(chain, 2, "alice@example.test", &p);
	assert_int_equal(v.st, SC_ERR_CONFIG);
	X509_free(x);
	X509_free(inter);
	X509_free(direct);
}

static void test_chain_ca_not_for_email(void **state)
{
	struct sc_policy p = { .cfg = cfg, .ca_file = root_file };
	tc_key *ik = tc_key_shared(TC_P384);
	/* an intermediate restricted to TLS servers may not vouch for S/MIME keys */
	X509 *inter = tc_cert_new(&(struct tc_cert_opts){ .cn = "TLS Intermediate", .is_ca = 1,
				   .key_usage = TC_KU_KEY_CERT_SIGN,
				   .eku = TC_EKU_SERVER_AUTH },
				  ik, ca, cak);
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice",
			       .emails = { "alice@example.test" } },
			      tc_key_shared(TC_P256), inter, ik);
	X509 *chain[2] = { x, inter };

	ASSERT_REFUSED(judge_x(chain, 2, "alice@example.test", &p),
		       "does not chain to a submission anchor (unsuitable certificate purpose)");
	X509_free(x);
	X509_free(inter);
}

static void test_structure(void **state)
{
	tc_key *ik = tc_key_shared(TC_P384), *ok = tc_key_shared(TC_RSA2048);
	X509 *inter = tc_cert_new(&(struct tc_cert_opts){ .cn = "Intermediate", .is_ca = 1,
				   .key_usage = TC_KU_KEY_CERT_SIGN },
				  ik, ca, cak);
	/* same name as the real intermediate, another key */
	X509 *fake = tc_cert_new(&(struct tc_cert_opts){ .cn = "Intermediate", .is_ca = 1 },
				 ok, ca, cak);
	X509 *x = tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice",
			       .emails = { "alice@example.test" } },
			      tc_key_shared(TC_P256), inter, ik);
	X509 *peer = leaf((struct tc_cert_opts){ .emails = { "bob@example.test" } }, TC_P256);
	X509 *good[3] = { x, inter, ca }, *skip[2] = { x, ca }, *notca[2] = { x, peer };
	X509 *forged[2] = { x, fake }, *backwards[3] = { x, ca, inter };

	ASSERT_OK(judge_x(good, 3, "alice@example.test", NULL));
	ASSERT_REFUSED(judge_x(skip, 2, "alice@example.test", NULL),
		       "chain certificate 1 did not issue certificate 0");
	ASSERT_REFUSED(judge_x(notca, 2, "alice@example.test", NULL),
		       "chain certificate 1 is not a CA");
	ASSERT_REFUSED(judge_x(forged, 2, "alice@example.test", NULL),
		       "chain certificate 1 did not issue certificate 0");
	ASSERT_REFUSED(judge_x(backwards, 3, "alice@example.test", NULL),
		       "chain certificate 1 did not issue certificate 0");
	/* a CA certificate is not a user's certificate, even self-signed for the address */
	ASSERT_REFUSED(judge(tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice", .is_ca = 1,
					 .emails = { "alice@example.test" } },
					 tc_key_shared(TC_P256), NULL, NULL),
			     "alice@example.test"),
		       "certificate is a CA");
	/* self-signed end entity: fine (the proposal's self-made certificates) */
	ASSERT_OK(judge(tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice",
				    .emails = { "alice@example.test" } },
				    tc_key_shared(TC_P256), NULL, NULL),
			"alice@example.test"));
	X509_free(x);
	X509_free(inter);
	X509_free(fake);
	X509_free(peer);
}

/* ---- SMIMECapabilities ------------------------------------------------------------------ */

/* SEQUENCE { {aes256-CBC}, {aes128-CBC}, {1.2.3.4, INTEGER 128} } */
static const uint8_t caps_good[] = {
	0x30, 0x25,
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a,
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02,
	0x30, 0x09, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x02, 0x02, 0x00, 0x80,
};

static sc_status caps_of(const uint8_t *der, size_t len, int twice, char *buf, size_t size)
{
	X509 *x = leaf((struct tc_cert_opts){ 0 }, TC_P256);
	sc_cert *c;
	sc_status st;

	if (der) {
		add_raw_ext(x, 0, OID_SMIME_CAPS, der, len, 0);
		if (twice)
			add_raw_ext(x, 0, OID_SMIME_CAPS, der, len, 0);
	}
	c = to_cert(&x, 1);
	st = sc_cert_smime_caps(c, buf, size);
	/* the extension never changes the verdict */
	if (der) {
		struct sc_policy p = { .cfg = cfg };
		struct sc_addr a = addr("alice@example.test");

		assert_int_equal(sc_policy_check(&p, c, &a, NULL, 0), SC_OK);
	}
	sc_cert_free(c);
	X509_free(x);
	return st;
}

static void test_smime_caps(void **state)
{
	char buf[256], small[24];

	assert_int_equal(caps_of(caps_good, sizeof caps_good, 0, buf, sizeof buf), SC_OK);
	assert_string_equal(buf, "AES-256-CBC,AES-128-CBC,1.2.3.4");
	/* a short buffer keeps whole entries only */
	assert_int_equal(caps_of(caps_good, sizeof caps_good, 0, small, sizeof small), SC_OK);
	assert_string_equal(small, "AES-256-CBC,AES-128-CBC");
	/* absent */
	assert_int_equal(caps_of(NULL, 0, 0, buf, sizeof buf), SC_ERR_NOT_FOUND);
	assert_string_equal(buf, "");
	/* an empty SEQUENCE OF is well-formed */
	assert_int_equal(caps_of((const uint8_t[]){ 0x30, 0x00 }, 2, 0, buf, sizeof buf), SC_OK);
	assert_string_equal(buf, "");
	/* twice: RFC 5280 4.2 allows one instance */
	assert_int_equal(caps_of(caps_good, sizeof caps_good, 1, buf, sizeof buf), SC_ERR_SYNTAX);
}

static void test_smime_caps_garbage(void **state)
{
	static const struct {
		const char *what;
		uint8_t der[16];
		size_t len;
	} bad[] = {
		{ "not a SEQUENCE", { 0x04, 0x01, 0x00 }, 3 },
		{ "truncated outer", { 0x30, 0x0b, 0x30, 0x03, 0x06, 0x01, 0x2a }, 7 },
		{ "trailing bytes", { 0x30, 0x05, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x00 }, 8 },
		{ "element not a SEQUENCE", { 0x30, 0x03, 0x06, 0x01, 0x2a }, 5 },
		{ "capability without OID", { 0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01 }, 7 },
		{ "empty capability", { 0x30, 0x02, 0x30, 0x00 }, 4 },
		{ "bad OID", { 0x30, 0x04, 0x30, 0x02, 0x06, 0x00 }, 6 },
		{ "two parameters",
		  { 0x30, 0x09, 0x30, 0x07, 0x06, 0x01, 0x2a, 0x05, 0x00, 0x05, 0x00 }, 11 },
		{ "parameter overruns",
		  { 0x30, 0x07, 0x30, 0x05, 0x06, 0x01, 0x2a, 0x02, 0x05 }, 9 },
		{ "indefinite length", { 0x30, 0x80, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x00, 0x00 }, 9 },
		{ "huge length", { 0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30 }, 7 },
		{ "empty", { 0 }, 0 },
	};
	char buf[128];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sc_status st = caps_of(bad[i].der, bad[i].len, 0, buf, sizeof buf);

		if (st != SC_ERR_SYNTAX)
			fail_msg("%s: %s", bad[i].what, sc_strerror(st));
		assert_string_equal(buf, "");
	}
}

static void test_smime_caps_bounded(void **state)
{
	/* 65 capabilities: over the limit of 64 */
	uint8_t der[2 + 4 + 65 * 5];
	size_t n = 0;
	char buf[1024];

	der[n++] = 0x30;
	der[n++] = 0x82;
	der[n++] = (uint8_t)((65 * 5) >> 8);
	der[n++] = (uint8_t)((65 * 5) & 0xff);
	for (int i = 0; i < 65; i++) {
		static const uint8_t cap[] = { 0x30, 0x03, 0x06, 0x01, 0x2a };

		memcpy(der + n, cap, sizeof cap);
		n += sizeof cap;
	}
	assert_int_equal(caps_of(der, n, 0, buf, sizeof buf), SC_ERR_SYNTAX);
	/* 64 are fine */
	der[2] = (uint8_t)((64 * 5) >> 8);
	der[3] = (uint8_t)((64 * 5) & 0xff);
	assert_int_equal(caps_of(der, n - 5, 0, buf, sizeof buf), SC_OK);
	assert_non_null(strstr(buf, "member-body,member-body,")); /* OID 1.2 */
}

static void test_smime_caps_args(void **state)
{
	char buf[8];

	assert_int_equal(sc_cert_smime_caps(NULL, buf, sizeof buf), SC_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_typical),
		cmocka_unit_test(test_not_a_certificate),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_identity_nul),
		cmocka_unit_test(test_domain_not_served),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_key_usage),
		cmocka_unit_test(test_key_usage_undecodable),
		cmocka_unit_test(test_ext_key_usage),
		cmocka_unit_test(test_key_strength),
		cmocka_unit_test(test_curves),
		cmocka_unit_test(test_key_desc),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_chain_ca_not_for_email),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_smime_caps),
		cmocka_unit_test(test_smime_caps_garbage),
		cmocka_unit_test(test_smime_caps_bounded),
		cmocka_unit_test(test_smime_caps_args),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
