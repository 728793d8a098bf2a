/*
 * testcert.c - in-process test PKI (keys, certificates, CRLs) built with OpenSSL,
 * plus small file helpers for unit tests. See testcert.h. Test code only: runs in
 * the test programs, aborts on any failure of the generator itself.
 */
#include "testcert.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <smtpcert/cert.h>

struct tc_key {
	EVP_PKEY *pkey;
};

/* RFC 9598 section 3: id-on-SmtpUTF8Mailbox. */
#define TC_OID_SMTPUTF8MAILBOX "1.3.6.1.5.5.7.8.9"

static void tc_die(const char *what)
{
	fprintf(stderr, "testcert: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	abort();
}

#define TC_CHECK(cond, what)               \
	do {                               \
		if (!(cond))               \
			tc_die(what);      \
	} while (0)

tc_key *tc_key_new(enum tc_keytype type)
{
	tc_key *k = calloc(1, sizeof *k);

	TC_CHECK(k != NULL, "calloc");
	switch (type) {
	case TC_RSA1024:
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
		break;
	case TC_RSA2048:
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case TC_RSA3072:
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case TC_P256:
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case TC_P384:
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case TC_P224:
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-224");
		break;
	case TC_ED25519:
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	}
	TC_CHECK(k->pkey != NULL, "key generation");
	return k;
}

static tc_key *tc_shared[TC_ED25519 + 1];

static void tc_shared_free(void)
{
	for (size_t i = 0; i < sizeof tc_shared / sizeof tc_shared[0]; i++) {
		tc_key_free(tc_shared[i]);
		tc_shared[i] = NULL;
	}
}

tc_key *tc_key_shared(enum tc_keytype type)
{
	static int registered;

	TC_CHECK((unsigned)type < sizeof tc_shared / sizeof tc_shared[0], "key type");
	if (!tc_shared[type]) {
		tc_shared[type] = tc_key_new(type);
		/* Freed at exit so leak checkers see a clean process. */
		if (!registered) {
			registered = 1;
			atexit(tc_shared_free);
		}
	}
	return tc_shared[type];
}

void tc_key_free(tc_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

EVP_PKEY *tc_key_pkey(tc_key *k)
{
	return k->pkey;
}

static void tc_set_time(ASN1_TIME *t, int64_t abs, long offset, long dflt)
{
	if (abs != 0)
		TC_CHECK(ASN1_TIME_set(t, (time_t)abs) != NULL, "ASN1_TIME_set");
	else
		TC_CHECK(X509_gmtime_adj(t, offset != 0 ? offset : dflt) != NULL,
			 "X509_gmtime_adj");
}

static void tc_name_add(X509_NAME *n, int nid, const char *val, int printable)
{
	int type = printable ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;

	if (nid == NID_pkcs9_emailAddress)
		type = V_ASN1_IA5STRING;
	TC_CHECK(X509_NAME_add_entry_by_NID(n, nid, type, (const unsigned char *)val,
					    (int)strlen(val), -1, 0) == 1,
		 "X509_NAME_add_entry");
}

static void tc_set_serial(X509 *x, const struct tc_cert_opts *o)
{
	BIGNUM *bn = BN_new();
	ASN1_INTEGER *ai;

	TC_CHECK(bn != NULL, "BN_new");
	if (o->serial_hex) {
		TC_CHECK(BN_hex2bn(&bn, o->serial_hex) > 0, "BN_hex2bn");
	} else if (o->serial != 0) {
		TC_CHECK(BN_set_word(bn, (BN_ULONG)(o->serial < 0 ? -o->serial : o->serial)),
			 "BN_set_word");
		BN_set_negative(bn, o->serial < 0);
	} else {
		/* Random 127 bits, top bit clear: unique, positive, 16 octets. */
		TC_CHECK(BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "BN_rand");
		if (BN_is_zero(bn))
			TC_CHECK(BN_set_word(bn, 1), "BN_set_word");
	}
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	TC_CHECK(ai != NULL, "BN_to_ASN1_INTEGER");
	TC_CHECK(X509_set_serialNumber(x, ai) == 1, "X509_set_serialNumber");
	ASN1_INTEGER_free(ai);
	BN_free(bn);
}

static void tc_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	TC_CHECK(ext != NULL, value);
	TC_CHECK(X509_add_ext(x, ext, -1) == 1, "X509_add_ext");
	X509_EXTENSION_free(ext);
}

static void tc_gen_push(GENERAL_NAMES *gens, GENERAL_NAME *g)
{
	TC_CHECK(sk_GENERAL_NAME_push(gens, g) > 0, "sk_GENERAL_NAME_push");
}

static void tc_san_string(GENERAL_NAMES *gens, int type, const char *s, size_t len)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *str = ASN1_IA5STRING_new();

	TC_CHECK(g != NULL && str != NULL, "GENERAL_NAME_new");
	TC_CHECK(ASN1_STRING_set(str, s, (int)len) == 1, "ASN1_STRING_set");
	GENERAL_NAME_set0_value(g, type, str);
	tc_gen_push(gens, g);
}

static void tc_san_utf8_mailbox(GENERAL_NAMES *gens, const char *s, size_t len)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_OBJECT *oid = OBJ_txt2obj(TC_OID_SMTPUTF8MAILBOX, 1);
	ASN1_TYPE *val = ASN1_TYPE_new();
	ASN1_UTF8STRING *str = ASN1_UTF8STRING_new();

	TC_CHECK(g && oid && val && str, "otherName alloc");
	TC_CHECK(ASN1_STRING_set(str, s, (int)len) == 1, "ASN1_STRING_set");
	ASN1_TYPE_set(val, V_ASN1_UTF8STRING, str);
	TC_CHECK(GENERAL_NAME_set0_othername(g, oid, val) == 1, "set0_othername");
	tc_gen_push(gens, g);
}

static void tc_add_san(X509 *x, const struct tc_cert_opts *o)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

	TC_CHECK(gens != NULL, "sk_GENERAL_NAME_new_null");
	for (size_t i = 0; i < sizeof o->emails / sizeof o->emails[0] && o->emails[i]; i++)
		tc_san_string(gens, GEN_EMAIL, o->emails[i], strlen(o->emails[i]));
	if (o->raw_email)
		tc_san_string(gens, GEN_EMAIL, o->raw_email, o->raw_email_len);
	for (size_t i = 0; i < sizeof o->utf8_mailboxes / sizeof o->utf8_mailboxes[0] &&
			   o->utf8_mailboxes[i];
	     i++)
		tc_san_utf8_mailbox(gens, o->utf8_mailboxes[i], strlen(o->utf8_mailboxes[i]));
	if (o->raw_utf8_mailbox)
		tc_san_utf8_mailbox(gens, o->raw_utf8_mailbox, o->raw_utf8_mailbox_len);
	for (size_t i = 0; i < sizeof o->dns_names / sizeof o->dns_names[0] && o->dns_names[i];
	     i++)
		tc_san_string(gens, GEN_DNS, o->dns_names[i], strlen(o->dns_names[i]));
	if (o->ip) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(o->ip);

		TC_CHECK(g != NULL && ip != NULL, "a2i_IPADDRESS");
		GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		tc_gen_push(gens, g);
	}
	if (sk_GENERAL_NAME_num(gens) > 0)
		TC_CHECK(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1,
			 "X509_add1_ext_i2d(subjectAltName)");
	GENERAL_NAMES_free(gens);
}

static void tc_add_key_usage(X509 *x, X509V3_CTX *ctx, unsigned ku)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ TC_KU_DIGITAL_SIGNATURE, "digitalSignature" },
		{ TC_KU_NON_REPUDIATION, "nonRepudiation" },
		{ TC_KU_KEY_ENCIPHERMENT, "keyEncipherment" },
		{ TC_KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		{ TC_KU_KEY_AGREEMENT, "keyAgreement" },
		{ TC_KU_KEY_CERT_SIGN, "keyCertSign" },
		{ TC_KU_CRL_SIGN, "cRLSign" },
	};
	char buf[256] = "critical";
	size_t used = strlen(buf);

	if (ku == 0)
		return;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(ku & names[i].bit))
			continue;
		int n = snprintf(buf + used, sizeof buf - used, ",%s", names[i].name);
		TC_CHECK(n > 0 && (size_t)n < sizeof buf - used, "keyUsage string");
		used += (size_t)n;
	}
	tc_add_ext(x, ctx, NID_key_usage, buf);
}

static void tc_add_eku(X509 *x, X509V3_CTX *ctx, unsigned eku)
{
	char buf[128] = "";
	size_t used = 0;
	const char *parts[3] = { NULL, NULL, NULL };
	size_t np = 0;

	if (eku & TC_EKU_EMAIL_PROTECTION)
		parts[np++] = "emailProtection";
	if (eku & TC_EKU_SERVER_AUTH)
		parts[np++] = "serverAuth";
	if (eku & TC_EKU_CLIENT_AUTH)
		parts[np++] = "clientAuth";
	if (np == 0)
		return;
	for (size_t i = 0; i < np; i++) {
		int n = snprintf(buf + used, sizeof buf - used, "%s%s", i ? "," : "", parts[i]);
		TC_CHECK(n > 0 && (size_t)n < sizeof buf - used, "extKeyUsage string");
		used += (size_t)n;
	}
	tc_add_ext(x, ctx, NID_ext_key_usage, buf);
}

X509 *tc_cert_new(const struct tc_cert_opts *o, tc_key *subject_key, X509 *issuer,
		  tc_key *issuer_key)
{
	static const struct tc_cert_opts none;
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX ctx;
	EVP_PKEY *signer;

	if (!o)
		o = &none;
	TC_CHECK(x != NULL && subject_key != NULL, "X509_new");
	TC_CHECK(X509_set_version(x, X509_VERSION_3) == 1, "X509_set_version");
	tc_set_serial(x, o);
	tc_set_time(X509_getm_notBefore(x), o->not_before_abs, o->not_before_offset, -3600);
	tc_set_time(X509_getm_notAfter(x), o->not_after_abs, o->not_after_offset,
		    30L * 24 * 3600);

	name = X509_get_subject_name(x);
	if (o->o)
		tc_name_add(name, NID_organizationName, o->o, o->name_printable);
	if (o->cn)
		tc_name_add(name, NID_commonName, o->cn, o->name_printable);
	if (o->subject_email)
		tc_name_add(name, NID_pkcs9_emailAddress, o->subject_email, 0);
	/* Copying the issuer's subject keeps its exact DER (X509_NAME_dup re-parses). */
	TC_CHECK(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1,
		 "X509_set_issuer_name");
	TC_CHECK(X509_set_pubkey(x, subject_key->pkey) == 1, "X509_set_pubkey");

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	tc_add_ext(x, &ctx, NID_basic_constraints, o->is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	tc_add_ext(x, &ctx, NID_subject_key_identifier, "hash");
	if (issuer)
		tc_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
	tc_add_key_usage(x, &ctx, o->key_usage);
	tc_add_eku(x, &ctx, o->eku);
	tc_add_san(x, o);

	signer = issuer_key ? issuer_key->pkey : subject_key->pkey;
	TC_CHECK(X509_sign(x, signer, EVP_sha256()) > 0, "X509_sign");
	return x;
}

/* Drain a memory BIO into a malloc'ed, NUL-terminated buffer. */
static void tc_bio_take(BIO *b, char **out, size_t *len)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);

	TC_CHECK(n >= 0, "BIO_get_mem_data");
	*out = malloc((size_t)n + 1);
	TC_CHECK(*out != NULL, "malloc");
	memcpy(*out, p, (size_t)n);
	(*out)[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
}

void tc_cert_pem(X509 *x, char **out, size_t *len)
{
	tc_chain_pem(&x, 1, out, len);
}

void tc_chain_pem(X509 *const *certs, size_t n, char **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());

	TC_CHECK(b != NULL, "BIO_new");
	for (size_t i = 0; i < n; i++)
		TC_CHECK(PEM_write_bio_X509(b, certs[i]) == 1, "PEM_write_bio_X509");
	tc_bio_take(b, out, len);
}

void tc_cert_der(X509 *x, uint8_t **out, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509(x, &p);

	TC_CHECK(n > 0, "i2d_X509");
	*out = malloc((size_t)n);
	TC_CHECK(*out != NULL, "malloc");
	memcpy(*out, p, (size_t)n);
	OPENSSL_free(p);
	*len = (size_t)n;
}

void tc_key_pem(tc_key *k, char **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());

	TC_CHECK(b != NULL, "BIO_new");
	TC_CHECK(PEM_write_bio_PrivateKey(b, k->pkey, NULL, NULL, 0, NULL, NULL) == 1,
		 "PEM_write_bio_PrivateKey");
	tc_bio_take(b, out, len);
}

static void tc_crl_revoke(X509_CRL *crl, BIGNUM *bn, int reason)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
	ASN1_TIME *t = ASN1_TIME_new();

	TC_CHECK(r && ai && t, "X509_REVOKED alloc");
	TC_CHECK(X509_gmtime_adj(t, -1800) != NULL, "X509_gmtime_adj");
	TC_CHECK(X509_REVOKED_set_serialNumber(r, ai) == 1, "set_serialNumber");
	TC_CHECK(X509_REVOKED_set_revocationDate(r, t) == 1, "set_revocationDate");
	if (reason >= 0) {
		ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();

		TC_CHECK(e != NULL && ASN1_ENUMERATED_set(e, reason) == 1, "ASN1_ENUMERATED");
		TC_CHECK(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0) == 1,
			 "X509_REVOKED_add1_ext_i2d");
		ASN1_ENUMERATED_free(e);
	}
	TC_CHECK(X509_CRL_add0_revoked(crl, r) == 1, "X509_CRL_add0_revoked");
	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(t);
}

static void tc_crl_add_int_ext(X509_CRL *crl, int nid, long v)
{
	ASN1_INTEGER *ai = ASN1_INTEGER_new();

	TC_CHECK(ai != NULL && ASN1_INTEGER_set(ai, v) == 1, "ASN1_INTEGER_set");
	TC_CHECK(X509_CRL_add1_ext_i2d(crl, nid, ai, nid == NID_delta_crl,
				       X509V3_ADD_DEFAULT) == 1,
		 "X509_CRL_add1_ext_i2d");
	ASN1_INTEGER_free(ai);
}

void tc_crl_new_ex(X509 *issuer, tc_key *issuer_key, const struct tc_crl_opts *o,
		   char **out, size_t *len)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	BIGNUM *bn = BN_new();
	BIO *b = BIO_new(BIO_s_mem());

	TC_CHECK(crl && t && bn && b, "X509_CRL_new");
	TC_CHECK(X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1, "X509_CRL_set_version");
	TC_CHECK(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) == 1,
		 "X509_CRL_set_issuer_name");
	TC_CHECK(X509_gmtime_adj(t, o->last_update_offset ? o->last_update_offset : -3600),
		 "X509_gmtime_adj");
	TC_CHECK(X509_CRL_set1_lastUpdate(crl, t) == 1, "set1_lastUpdate");
	TC_CHECK(X509_gmtime_adj(t, o->next_update_offset ? o->next_update_offset
							  : 7L * 24 * 3600),
		 "X509_gmtime_adj");
	TC_CHECK(X509_CRL_set1_nextUpdate(crl, t) == 1, "set1_nextUpdate");
	for (size_t i = 0; i < o->nserials; i++) {
		long s = o->serials[i];

		TC_CHECK(BN_set_word(bn, (BN_ULONG)(s < 0 ? -s : s)), "BN_set_word");
		BN_set_negative(bn, s < 0);
		tc_crl_revoke(crl, bn, o->reasons ? o->reasons[i] : -1);
	}
	for (size_t i = 0; i < o->nserial_hex; i++) {
		TC_CHECK(BN_hex2bn(&bn, o->serial_hex[i]) > 0, "BN_hex2bn");
		tc_crl_revoke(crl, bn, -1);
	}
	tc_crl_add_int_ext(crl, NID_crl_number, o->crl_number ? o->crl_number : 1);
	if (o->delta)
		tc_crl_add_int_ext(crl, NID_delta_crl, 1);
	if (o->indirect) {
		ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();

		TC_CHECK(idp != NULL, "ISSUING_DIST_POINT_new");
		idp->indirectCRL = 1;
		TC_CHECK(X509_CRL_add1_ext_i2d(crl, NID_issuing_distribution_point, idp, 1,
					       X509V3_ADD_DEFAULT) == 1,
			 "X509_CRL_add1_ext_i2d(idp)");
		ISSUING_DIST_POINT_free(idp);
	}
	if (o->unknown_critical) {
		ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
		X509_EXTENSION *ext;

		TC_CHECK(obj && v && ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2),
			 "unknown extension");
		ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, v);
		TC_CHECK(ext != NULL && X509_CRL_add_ext(crl, ext, -1) == 1, "X509_CRL_add_ext");
		X509_EXTENSION_free(ext);
		ASN1_OCTET_STRING_free(v);
		ASN1_OBJECT_free(obj);
	}
	TC_CHECK(X509_CRL_sort(crl) == 1, "X509_CRL_sort");
	TC_CHECK(X509_CRL_sign(crl, issuer_key->pkey, EVP_sha256()) > 0, "X509_CRL_sign");
	if (o->as_der)
		TC_CHECK(i2d_X509_CRL_bio(b, crl) == 1, "i2d_X509_CRL_bio");
	else
		TC_CHECK(PEM_write_bio_X509_CRL(b, crl) == 1, "PEM_write_bio_X509_CRL");
	tc_bio_take(b, out, len);
	BN_free(bn);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

void tc_crl_new(X509 *issuer, tc_key *issuer_key, const long *revoked_serials, size_t n,
		long next_update_offset, int as_der, char **out, size_t *len)
{
	struct tc_crl_opts o = {
		.serials = revoked_serials,
		.nserials = n,
		.next_update_offset = next_update_offset,
		.as_der = as_der,
	};

	tc_crl_new_ex(issuer, issuer_key, &o, out, len);
}

void tc_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	if (fd < 0) {
		fprintf(stderr, "testcert: open %s: %s\n", path, strerror(errno));
		abort();
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		TC_CHECK(n > 0, "write");
		p += n;
		len -= (size_t)n;
	}
	TC_CHECK(close(fd) == 0, "close");
}

int tc_read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	size_t n;

	if (!f)
		return -1;
	if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
		fclose(f);
		return -1;
	}
	*out = malloc((size_t)st.st_size + 1);
	TC_CHECK(*out != NULL, "malloc");
	n = fread(*out, 1, (size_t)st.st_size, f);
	fclose(f);
	(*out)[n] = '\0';
	*len = n;
	return 0;
}

void tc_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (!base || !*base)
		base = "/tmp";
	n = snprintf(buf, len, "%s/sctest.XXXXXX", base);
	TC_CHECK(n > 0 && (size_t)n < len, "tc_tmpdir: buffer too small");
	if (!mkdtemp(buf)) {
		fprintf(stderr, "testcert: mkdtemp %s: %s\n", buf, strerror(errno));
		abort();
	}
}

static int tc_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "testcert: remove %s: %s\n", path, strerror(errno));
	return 0;
}

void tc_rmtree(const char *path)
{
	if (!path || !*path)
		return;
	(void)nftw(path, tc_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct sc_cert *tc_email_cert(const char *ca_cn, const char *cn, const char *email,
			      tc_key *k, int chain)
{
	tc_key *cak = tc_key_shared(TC_P256);
	struct tc_cert_opts ca_o = { .cn = ca_cn, .is_ca = 1 };
	struct tc_cert_opts o = { .cn = cn, .emails = { email },
				  .eku = TC_EKU_EMAIL_PROTECTION };
	X509 *v[2];
	char *pem;
	size_t len;
	sc_cert *c = NULL;

	v[1] = tc_cert_new(&ca_o, cak, NULL, NULL);
	v[0] = tc_cert_new(&o, k, v[1], cak);
	tc_chain_pem(v, chain ? 2 : 1, &pem, &len);
	if (sc_cert_parse(pem, len, &c) != SC_OK) {
		fprintf(stderr, "tc_email_cert: generated certificate does not parse\n");
		abort();
	}
	free(pem);
	X509_free(v[0]);
	X509_free(v[1]);
	return c;
}
