/*
 * cert.c - X.509 certificate intake (PEM or DER, leaf + chain) and the accessors of
 * sc_cert (see smtpcert/cert.h). Email extraction lives in cert_email.c.
 *
 * An sc_cert owns the DER of every certificate it holds (re-encoded by i2d_X509,
 * which equals the input for DER-conforming certificates and is what
 * `openssl x509 -fingerprint` hashes), the parsed leaf, and everything derived from
 * the leaf at parse time (emails, validity, fingerprint, issuer DER, serial), so the
 * accessors never allocate except for the RFC 2253 strings. Runs wherever a
 * certificate is read: smtpcertd (CERC uploads, repository reads) and the CLI.
 *
 * Input decisions:
 * - A first octet 0x30 (SEQUENCE) means DER, anything else PEM text (RFC 7468).
 * - DER: certificates concatenated; each is parsed with the remaining length as
 *   bound, so trailing garbage or a truncated certificate is an error.
 * - PEM: "CERTIFICATE" and OpenSSL's "TRUSTED CERTIFICATE" (the trust settings after
 *   the certificate are dropped) are read; other blocks are skipped, except that any
 *   "... PRIVATE KEY" block makes the whole input SC_ERR_SYNTAX: a private key must
 *   never be stored or published by a certificate service, so we refuse rather than
 *   quietly drop it and let the uploader think all is well.
 * - A leaf with two subjectAltName extensions (RFC 5280 4.2: at most one of each)
 *   or an undecodable one is refused: its addresses would be ambiguous. Other
 *   extension problems are left to whoever verifies the certificate (OpenSSL's
 *   EXFLAG_INVALID is not used: OpenSSL 3.0 also sets it for signature algorithms
 *   it does not know, which must not stop us from storing such a certificate).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtpcert/cert.h"
#include "smtpcert/pem.h"
#include "cert_internal.h"

/* Other PEM blocks (keys we refuse, CRLs we skip) may come along with the chain. */
#define CERT_PEM_BLOCKS_MAX (4 * SC_CHAIN_MAX)

struct sc_cert {
	size_t n;                              /* certificates held, 1..SC_CHAIN_MAX */
	uint8_t *der[SC_CHAIN_MAX];
	size_t der_len[SC_CHAIN_MAX];
	X509 *leaf;
	int64_t not_before, not_after;
	uint8_t fingerprint[32];
	uint8_t *issuer_der;
	size_t issuer_len;
	uint8_t serial[CERT_SERIAL_MAX];
	size_t serial_len;
	struct sc_addr emails[SC_CERT_EMAILS_MAX];
	size_t nemails;
};

void sc_cert_free(sc_cert *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->der[i]);
	X509_free(c->leaf);
	OPENSSL_free(c->issuer_der);
	free(c);
}

/* Take ownership of @p x (consumed in every case). */
static sc_status cert_add(sc_cert *c, X509 *x)
{
	unsigned char *der = NULL;
	int n;

	if (c->n >= SC_CHAIN_MAX) {
		X509_free(x);
		return SC_ERR_TOO_MANY;
	}
	n = i2d_X509(x, &der);
	if (n <= 0) {
		X509_free(x);
		return SC_ERR_ENCODING;
	}
	c->der[c->n] = malloc((size_t)n);
	if (!c->der[c->n]) {
		OPENSSL_free(der);
		X509_free(x);
		return SC_ERR_NOMEM;
	}
	memcpy(c->der[c->n], der, (size_t)n);
	OPENSSL_free(der);
	c->der_len[c->n] = (size_t)n;
	if (c->n == 0)
		c->leaf = x;
	else
		X509_free(x);
	c->n++;
	return SC_OK;
}

static sc_status cert_parse_der(sc_cert *c, const uint8_t *data, size_t len)
{
	const unsigned char *p = data, *end = data + len;

	while (p < end) {
		X509 *x = d2i_X509(NULL, &p, (long)(end - p));

		if (!x)
			return SC_ERR_ENCODING;
		SC_TRY(cert_add(c, x));
	}
	return SC_OK;
}

static int label_is_private_key(const char *label)
{
	size_t n = strlen(label), k = strlen("PRIVATE KEY");

	return n >= k && memcmp(label + n - k, "PRIVATE KEY", k) == 0;
}

static sc_status cert_pem_block(void *arg, const char *label, const uint8_t *der,
				size_t der_len)
{
	sc_cert *c = arg;
	const unsigned char *p = der;
	X509 *x;

	if (label_is_private_key(label))
		return SC_ERR_SYNTAX;
	if (strcmp(label, "CERTIFICATE") == 0)
		x = d2i_X509(NULL, &p, (long)der_len);
	else if (strcmp(label, "TRUSTED CERTIFICATE") == 0)
		x = d2i_X509_AUX(NULL, &p, (long)der_len);
	else
		return SC_OK;
	/* One certificate per block, nothing after it but (for AUX) the trust data. */
	if (!x)
		return SC_ERR_ENCODING;
	if (p != der + der_len) {
		X509_free(x);
		return SC_ERR_ENCODING;
	}
	return cert_add(c, x);
}

/* Seconds since the epoch of an ASN1_TIME; GeneralizedTime up to 9999 included. */
static sc_status cert_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	time_t v;

	memset(&tm, 0, sizeof tm);
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return SC_ERR_SYNTAX;
	v = timegm(&tm);
	if (v == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
		return SC_ERR_SYNTAX;
	*out = (int64_t)v;
	return SC_OK;
}

sc_status cert_integer_content(const ASN1_INTEGER *ai, uint8_t *buf, size_t *len)
{
	uint8_t tmp[CERT_SERIAL_MAX + 2];
	unsigned char *p = tmp;
	int n = i2d_ASN1_INTEGER(ai, NULL);

	if (n <= 2)
		return SC_ERR_ENCODING;
	/* Short-form length only: content of at most CERT_SERIAL_MAX (< 128) octets. */
	if ((size_t)n > sizeof tmp)
		return SC_ERR_TOO_LONG;
	if (i2d_ASN1_INTEGER(ai, &p) != n || tmp[0] != V_ASN1_INTEGER ||
	    tmp[1] != (uint8_t)(n - 2))
		return SC_ERR_ENCODING;
	memcpy(buf, tmp + 2, (size_t)n - 2);
	*len = (size_t)n - 2;
	return SC_OK;
}

/* Everything derived from the leaf, computed once so accessors stay trivial. */
static sc_status cert_index_leaf(sc_cert *c)
{
	const X509 *x = c->leaf;
	unsigned char *der = NULL;
	int n;

	SC_TRY(cert_time(X509_get0_notBefore(x), &c->not_before));
	SC_TRY(cert_time(X509_get0_notAfter(x), &c->not_after));
	if (!EVP_Digest(c->der[0], c->der_len[0], c->fingerprint, NULL, EVP_sha256(), NULL))
		return SC_ERR_CRYPTO;
	n = i2d_X509_NAME(X509_get_issuer_name(x), &der);
	if (n <= 0)
		return SC_ERR_ENCODING;
	c->issuer_der = der;
	c->issuer_len = (size_t)n;
	if (cert_integer_content(X509_get0_serialNumber(x), c->serial, &c->serial_len) != SC_OK)
		return SC_ERR_SYNTAX;
	return cert_email_collect(x, c->emails, SC_CERT_EMAILS_MAX, &c->nemails);
}

sc_status sc_cert_parse(const void *data, size_t len, sc_cert **out)
{
	sc_cert *c;
	sc_status rc;

	SC_ENSURE_ARG(out);
	*out = NULL;
	SC_ENSURE(data != NULL || len == 0, SC_ERR_ARG);
	SC_ENSURE(len <= SC_CERT_INPUT_MAX, SC_ERR_TOO_LONG);
	SC_ENSURE(len > 0, SC_ERR_NOT_FOUND);
	c = calloc(1, sizeof *c);
	SC_ENSURE(c != NULL, SC_ERR_NOMEM);
	if (((const uint8_t *)data)[0] == 0x30)
		rc = cert_parse_der(c, data, len);
	else
		rc = sc_pem_decode(data, len, SC_CERT_INPUT_MAX, CERT_PEM_BLOCKS_MAX,
				   cert_pem_block, c, NULL);
	if (rc == SC_OK && c->n == 0)
		rc = SC_ERR_NOT_FOUND;
	if (rc == SC_OK)
		rc = cert_index_leaf(c);
	if (rc != SC_OK) {
		sc_cert_free(c);
		return rc;
	}
	*out = c;
	return SC_OK;
}

/* Read at most SC_CERT_INPUT_MAX + 1 octets so that an oversized file is detected
 * without reading all of it. */
sc_status sc_cert_load_file(const char *path, sc_cert **out)
{
	uint8_t *buf;
	size_t len = 0;
	struct stat st;
	sc_status rc;
	int fd;

	SC_ENSURE_ARG(path);
	SC_ENSURE_ARG(out);
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return SC_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return SC_ERR_IO;
	}
	buf = malloc(SC_CERT_INPUT_MAX + 1);
	if (!buf) {
		close(fd);
		return SC_ERR_NOMEM;
	}
	while (len < SC_CERT_INPUT_MAX + 1) {
		ssize_t n = read(fd, buf + len, SC_CERT_INPUT_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			close(fd);
			return SC_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	rc = len > SC_CERT_INPUT_MAX ? SC_ERR_TOO_LONG : sc_cert_parse(buf, len, out);
	free(buf);
	return rc;
}

size_t sc_cert_count(const sc_cert *c)
{
	return c ? c->n : 0;
}

sc_status sc_cert_der(const sc_cert *c, size_t i, const uint8_t **der, size_t *len)
{
	SC_ENSURE_ARG(c);
	SC_ENSURE_ARG(der);
	SC_ENSURE_ARG(len);
	SC_ENSURE(i < c->n, SC_ERR_ARG);
	*der = c->der[i];
	*len = c->der_len[i];
	return SC_OK;
}

size_t sc_cert_emails(const sc_cert *c, struct sc_addr *out, size_t max)
{
	size_t n = c->nemails < max ? c->nemails : max;

	if (n > 0)
		memcpy(out, c->emails, n * sizeof *out);
	return n;
}

int sc_cert_has_email(const sc_cert *c, const struct sc_addr *a)
{
	for (size_t i = 0; i < c->nemails; i++)
		if (sc_addr_equal(&c->emails[i], a))
			return 1;
	return 0;
}

int64_t sc_cert_not_before(const sc_cert *c)
{
	return c->not_before;
}

int64_t sc_cert_not_after(const sc_cert *c)
{
	return c->not_after;
}

/* RFC 5280 4.1.2.5: the validity period includes both notBefore and notAfter. */
sc_status sc_cert_check_time(const sc_cert *c, time_t now)
{
	SC_ENSURE_ARG(c);
	if ((int64_t)now < c->not_before)
		return SC_ERR_NOT_YET_VALID;
	if ((int64_t)now > c->not_after)
		return SC_ERR_EXPIRED;
	return SC_OK;
}

void sc_cert_fingerprint(const sc_cert *c, uint8_t out[32])
{
	memcpy(out, c->fingerprint, 32);
}

/* RFC 2253 rendering in UTF-8 (RFC 2253 section 2.4 allows it unescaped; control
 * characters are still escaped, so the result is safe for a log line). A cut never
 * splits a UTF-8 sequence. */
static void cert_name_string(const X509_NAME *name, char *buf, size_t size)
{
	BIO *b;
	char *p;
	long n;

	if (size == 0)
		return;
	buf[0] = '\0';
	b = BIO_new(BIO_s_mem());
	if (!b)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(b, &p);
		if (n > 0) {
			size_t k = (size_t)n < size - 1 ? (size_t)n : size - 1;

			if (k < (size_t)n)
				while (k > 0 && ((unsigned char)p[k] & 0xc0) == 0x80)
					k--;

			memcpy(buf, p, k);
			buf[k] = '\0';
		}
	}
	BIO_free(b);
}

void sc_cert_subject(const sc_cert *c, char *buf, size_t size)
{
	cert_name_string(X509_get_subject_name(c->leaf), buf, size);
}

void sc_cert_issuer(const sc_cert *c, char *buf, size_t size)
{
	cert_name_string(X509_get_issuer_name(c->leaf), buf, size);
}

/* Same form as `openssl x509 -serial`: the magnitude in upper-case hex pairs, a
 * leading '-' for a negative serial (only broken CAs issue those). */
void sc_cert_serial_hex(const sc_cert *c, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	const ASN1_INTEGER *ai = X509_get0_serialNumber(c->leaf);
	const unsigned char *d = ASN1_STRING_get0_data(ai);
	int len = ASN1_STRING_length(ai);
	size_t o = 0;

	if (size == 0)
		return;
	if (ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER && o + 1 < size)
		buf[o++] = '-';
	if (len <= 0 && o + 2 < size) {
		buf[o++] = '0';
		buf[o++] = '0';
	}
	for (int i = 0; i < len && o + 2 < size; i++) {
		buf[o++] = hex[d[i] >> 4];
		buf[o++] = hex[d[i] & 15];
	}
	buf[o] = '\0';
}

void sc_cert_issuer_der(const sc_cert *c, const uint8_t **der, size_t *len)
{
	*der = c->issuer_der;
	*len = c->issuer_len;
}

void sc_cert_serial_raw(const sc_cert *c, const uint8_t **der, size_t *len)
{
	*der = c->serial;
	*len = c->serial_len;
}

void sc_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}
