/*
 * crl.c - the set of certificate revocation lists (see smtpcert/crl.h).
 *
 * Built once from the configured crl_file entries at startup or on SIGHUP by the
 * daemon's runtime, then shared read-only by every session; the CLI's admin import
 * uses it too. Every CRL is reduced at load time to what a check needs: the
 * canonical form of its issuer name (crl_name.c) and its revoked serials as sorted
 * DER content octets (cert_integer_content(), the same form sc_cert_serial_raw()
 * gives), so sc_crlset_check() is a hash lookup plus a binary search.
 *
 * Decisions:
 * - Signatures are not verified: the set holds no CA certificates, and crl_file is
 *   trusted administrator input, like the configuration file itself.
 * - A file is all or nothing: if any CRL in it is refused, nothing is added.
 * - Delta CRLs (RFC 5280 5.2.4) are refused: their removeFromCRL entries undo
 *   revocations of a base CRL, which a set of independent lists cannot express.
 *   Indirect CRLs (5.2.5, 5.3.3 certificateIssuer) and any other unknown critical
 *   CRL or entry extension are refused too (5.2: a CRL with an unrecognised
 *   critical extension must not be used), with a message saying so.
 * - An entry with reason removeFromCRL in a full CRL (only meaningful in a delta,
 *   5.3.1) revokes nothing and is skipped; certificateHold entries do revoke.
 * - A serial longer than CERT_SERIAL_MAX octets cannot belong to any certificate we
 *   accept and is skipped.
 * - nextUpdate is ignored: a stale CRL still revokes what it lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtpcert/crl.h"
#include "smtpcert/pem.h"
#include "cert_internal.h"
#include "crl_name.h"

/* Most PEM blocks read from one file. */
#define CRL_PEM_BLOCKS_MAX 1024
/* Canonical issuer names up to this size are built on the stack during a check. */
#define CRL_CANON_STACK 2048
/* RFC 5280 5.3.1 CRLReason removeFromCRL. */
#define CRL_REASON_REMOVE 8

struct crl_serial {
	uint32_t off; /* into crl.bytes */
	uint32_t len;
};

struct crl {
	uint8_t *canon; /* canonical issuer name */
	size_t canon_len;
	uint64_t hash;
	uint8_t *bytes; /* all serials, back to back */
	struct crl_serial *serials; /* sorted by (len, octets) */
	size_t n;
};

struct sc_crlset {
	struct crl *crls;
	size_t n;
	size_t entries;
	uint32_t *table; /* open addressing: CRL index + 1, 0 = empty */
	size_t mask;
};

/* A batch of CRLs parsed from one input, added only if all of it is good. */
struct crl_batch {
	struct crl *crls;
	size_t n, cap;
	const char *why;
};

static uint64_t crl_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void crl_clear(struct crl *c)
{
	free(c->canon);
	free(c->bytes);
	free(c->serials);
	memset(c, 0, sizeof *c);
}

sc_status sc_crlset_new(sc_crlset **out)
{
	SC_ENSURE_ARG(out);
	*out = calloc(1, sizeof **out);
	return *out ? SC_OK : SC_ERR_NOMEM;
}

void sc_crlset_free(sc_crlset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		crl_clear(&s->crls[i]);
	free(s->crls);
	free(s->table);
	free(s);
}

size_t sc_crlset_crl_count(const sc_crlset *s)
{
	return s ? s->n : 0;
}

size_t sc_crlset_entry_count(const sc_crlset *s)
{
	return s ? s->entries : 0;
}

static int serial_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

static int crl_serial_qcmp(const void *x, const void *y, void *arg)
{
	const struct crl_serial *a = x, *b = y;
	const uint8_t *bytes = arg;

	return serial_cmp(bytes + a->off, a->len, bytes + b->off, b->len);
}

/* RFC 5280 5.2: refuse what we cannot honour rather than misread it. */
static sc_status crl_check_extensions(const X509_CRL *x, const char **why)
{
	const STACK_OF(X509_EXTENSION) *exts = X509_CRL_get0_extensions(x);
	ISSUING_DIST_POINT *idp;
	int crit = -1;

	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));

		if (nid == NID_delta_crl) {
			*why = "delta CRLs are not supported (load the full CRL)";
			return SC_ERR_UNSUPPORTED;
		}
		if (X509_EXTENSION_get_critical(e) && nid != NID_issuing_distribution_point &&
		    nid != NID_crl_number && nid != NID_authority_key_identifier) {
			*why = "unsupported critical CRL extension";
			return SC_ERR_UNSUPPORTED;
		}
	}
	idp = X509_CRL_get_ext_d2i(x, NID_issuing_distribution_point, &crit, NULL);
	if (!idp && crit >= 0) {
		*why = "malformed issuingDistributionPoint";
		return SC_ERR_SYNTAX;
	}
	if (idp && idp->indirectCRL) {
		ISSUING_DIST_POINT_free(idp);
		*why = "indirect CRLs are not supported";
		return SC_ERR_UNSUPPORTED;
	}
	ISSUING_DIST_POINT_free(idp);
	return SC_OK;
}

/* @return 1 when the entry revokes, 0 when it is to be skipped, -1 refused. */
static int crl_entry_revokes(const X509_REVOKED *r, const char **why)
{
	const STACK_OF(X509_EXTENSION) *exts = X509_REVOKED_get0_extensions(r);
	ASN1_ENUMERATED *reason;
	int crit = -1, rc = 1;

	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

		/* certificateIssuer is the critical one in practice (5.3.3). */
		if (X509_EXTENSION_get_critical(e)) {
			*why = "unsupported critical CRL entry extension (indirect CRL?)";
			return -1;
		}
	}
	reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
	if (reason && ASN1_ENUMERATED_get(reason) == CRL_REASON_REMOVE)
		rc = 0;
	ASN1_ENUMERATED_free(reason);
	return rc;
}

static sc_status crl_index(const X509_CRL *x, struct crl *c, const char **why)
{
	const STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED((X509_CRL *)x);
	int nrev = revs ? sk_X509_REVOKED_num(revs) : 0;
	unsigned char *name = NULL;
	size_t used = 0;
	int nlen;
	sc_status rc;

	SC_TRY(crl_check_extensions(x, why));
	nlen = i2d_X509_NAME(X509_CRL_get_issuer(x), &name);
	if (nlen <= 0) {
		*why = "bad issuer name";
		return SC_ERR_ENCODING;
	}
	c->canon = malloc(crl_name_canon_max((size_t)nlen));
	if (!c->canon) {
		OPENSSL_free(name);
		return SC_ERR_NOMEM;
	}
	rc = crl_name_canon(name, (size_t)nlen, c->canon, crl_name_canon_max((size_t)nlen),
			    &c->canon_len);
	OPENSSL_free(name);
	if (rc != SC_OK) {
		*why = "bad issuer name";
		return SC_ERR_ENCODING;
	}
	c->hash = crl_hash(c->canon, c->canon_len);
	if (nrev == 0)
		return SC_OK;
	c->serials = calloc((size_t)nrev, sizeof *c->serials);
	c->bytes = malloc((size_t)nrev * CERT_SERIAL_MAX);
	if (!c->serials || !c->bytes)
		return SC_ERR_NOMEM;
	for (int i = 0; i < nrev; i++) {
		const X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
		size_t len;
		int k = crl_entry_revokes(r, why);

		if (k < 0)
			return SC_ERR_UNSUPPORTED;
		if (k == 0)
			continue;
		rc = cert_integer_content(X509_REVOKED_get0_serialNumber(r), c->bytes + used, &len);
		if (rc == SC_ERR_TOO_LONG)
			continue;
		if (rc != SC_OK) {
			*why = "bad serial number";
			return rc;
		}
		c->serials[c->n].off = (uint32_t)used;
		c->serials[c->n].len = (uint32_t)len;
		c->n++;
		used += len;
	}
	if (used > 0) { /* give back the worst-case reservation */
		uint8_t *shrunk = realloc(c->bytes, used);

		if (shrunk)
			c->bytes = shrunk;
	}
	qsort_r(c->serials, c->n, sizeof *c->serials, crl_serial_qcmp, c->bytes);
	return SC_OK;
}

/* Consumes @p x. */
static sc_status crl_batch_add(struct crl_batch *b, X509_CRL *x)
{
	sc_status rc;

	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 4;
		struct crl *n = realloc(b->crls, cap * sizeof *n);

		if (!n) {
			X509_CRL_free(x);
			return SC_ERR_NOMEM;
		}
		b->crls = n;
		b->cap = cap;
	}
	memset(&b->crls[b->n], 0, sizeof b->crls[b->n]);
	rc = crl_index(x, &b->crls[b->n], &b->why);
	X509_CRL_free(x);
	if (rc != SC_OK) {
		crl_clear(&b->crls[b->n]);
		return rc;
	}
	b->n++;
	return SC_OK;
}

static sc_status crl_pem_block(void *arg, const char *label, const uint8_t *der,
			       size_t der_len)
{
	struct crl_batch *b = arg;
	const unsigned char *p = der;
	X509_CRL *x;

	if (strcmp(label, "X509 CRL") != 0)
		return SC_OK;
	x = d2i_X509_CRL(NULL, &p, (long)der_len);
	if (!x || p != der + der_len) {
		X509_CRL_free(x);
		b->why = "malformed CRL";
		return SC_ERR_ENCODING;
	}
	return crl_batch_add(b, x);
}

static sc_status crl_parse(struct crl_batch *b, const uint8_t *data, size_t len)
{
	sc_status rc;

	if (len > SC_CRL_INPUT_MAX) {
		b->why = "file too large";
		return SC_ERR_TOO_LONG;
	}
	if (len > 0 && data[0] == 0x30) {
		const unsigned char *p = data, *end = data + len;

		while (p < end) {
			X509_CRL *x = d2i_X509_CRL(NULL, &p, (long)(end - p));

			if (!x) {
				b->why = "malformed DER CRL";
				return SC_ERR_ENCODING;
			}
			SC_TRY(crl_batch_add(b, x));
		}
		return SC_OK;
	}
	rc = sc_pem_decode((const char *)data, len, SC_CRL_INPUT_MAX, CRL_PEM_BLOCKS_MAX,
			   crl_pem_block, b, NULL);
	if (rc == SC_OK && b->n == 0)
		rc = SC_ERR_NOT_FOUND;
	if (rc == SC_ERR_NOT_FOUND) {
		b->why = "no CRL found (expected PEM \"X509 CRL\" blocks or DER)";
		return SC_ERR_SYNTAX;
	}
	if (rc != SC_OK && !b->why)
		b->why = rc == SC_ERR_ENCODING   ? "bad base64 in PEM"
			 : rc == SC_ERR_TOO_MANY ? "too many PEM blocks"
			 : rc == SC_ERR_TOO_LONG ? "PEM block too large"
						 : "malformed PEM";
	return rc;
}

static void table_insert(uint32_t *table, size_t mask, const struct crl *c, uint32_t v)
{
	size_t i = (size_t)c->hash & mask;

	while (table[i])
		i = (i + 1) & mask;
	table[i] = v;
}

/* Append the batch and rebuild the table; on failure the set is unchanged. */
static sc_status crl_commit(sc_crlset *s, struct crl_batch *b)
{
	size_t n = s->n + b->n, tsize = 16;
	struct crl *crls;
	uint32_t *table;

	if (n > UINT32_MAX / 4)
		return SC_ERR_TOO_MANY;
	while (tsize < 2 * n)
		tsize *= 2;
	table = calloc(tsize, sizeof *table);
	if (!table)
		return SC_ERR_NOMEM;
	crls = realloc(s->crls, (n ? n : 1) * sizeof *crls);
	if (!crls) {
		free(table);
		return SC_ERR_NOMEM;
	}
	s->crls = crls;
	memcpy(s->crls + s->n, b->crls, b->n * sizeof *b->crls);
	for (size_t i = s->n; i < n; i++)
		s->entries += s->crls[i].n;
	s->n = n;
	b->n = 0;
	for (size_t i = 0; i < n; i++)
		table_insert(table, tsize - 1, &s->crls[i], (uint32_t)i + 1);
	free(s->table);
	s->table = table;
	s->mask = tsize - 1;
	return SC_OK;
}

static sc_status crl_add(sc_crlset *s, const void *data, size_t len, const char **why)
{
	struct crl_batch b = { NULL, 0, 0, NULL };
	sc_status rc = crl_parse(&b, data, len);

	if (rc == SC_OK)
		rc = crl_commit(s, &b);
	if (rc == SC_ERR_NOMEM && !b.why)
		b.why = "out of memory";
	for (size_t i = 0; i < b.n; i++)
		crl_clear(&b.crls[i]);
	free(b.crls);
	*why = b.why;
	return rc;
}

sc_status sc_crlset_add_mem(sc_crlset *s, const void *data, size_t len)
{
	const char *why;

	SC_ENSURE_ARG(s);
	SC_ENSURE(data != NULL || len == 0, SC_ERR_ARG);
	return crl_add(s, data, len, &why);
}

/* Read a whole file, bounded by SC_CRL_INPUT_MAX (+1 to detect an oversized one). */
static sc_status crl_read_file(const char *path, uint8_t **out, size_t *len, int *err)
{
	struct stat st;
	uint8_t *buf;
	size_t cap, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	*err = 0;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*err = fd < 0 ? errno : EINVAL;
		if (fd >= 0)
			close(fd);
		return SC_ERR_IO;
	}
	if (st.st_size > SC_CRL_INPUT_MAX) {
		close(fd);
		return SC_ERR_TOO_LONG;
	}
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return SC_ERR_NOMEM;
	}
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = errno;
			free(buf);
			close(fd);
			return SC_ERR_IO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n == cap) { /* grew while we read it */
		free(buf);
		return SC_ERR_TOO_LONG;
	}
	*out = buf;
	*len = n;
	return SC_OK;
}

sc_status sc_crlset_add_file(sc_crlset *s, const char *path, char *err, size_t errlen)
{
	const char *why = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int syserr;
	sc_status rc;

	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(path);
	rc = crl_read_file(path, &data, &len, &syserr);
	if (rc == SC_OK)
		rc = crl_add(s, data, len, &why);
	else if (rc == SC_ERR_IO)
		why = syserr ? strerror(syserr) : "not a regular file";
	else if (rc == SC_ERR_TOO_LONG)
		why = "file too large";
	free(data);
	if (rc != SC_OK && err && errlen > 0)
		snprintf(err, errlen, "CRL file %s: %s", path, why ? why : sc_strerror(rc));
	return rc;
}

static int crl_lists(const struct crl *c, const uint8_t *serial, size_t len)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct crl_serial *e = &c->serials[mid];
		int d = serial_cmp(serial, len, c->bytes + e->off, e->len);

		if (d == 0)
			return 1;
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

sc_status sc_crlset_check(const sc_crlset *s, const uint8_t *issuer, size_t issuer_len,
			  const uint8_t *serial, size_t serial_len)
{
	uint8_t stack[CRL_CANON_STACK], *canon = stack;
	size_t max, clen, i;
	uint64_t h;
	sc_status rc = SC_OK;

	if (!s || s->n == 0)
		return SC_OK;
	SC_ENSURE_ARG(issuer);
	SC_ENSURE_ARG(serial);
	max = crl_name_canon_max(issuer_len);
	if (max > sizeof stack) {
		/* Only for issuer names over ~500 octets. */
		canon = malloc(max);
		if (!canon)
			return SC_ERR_NOMEM;
	}
	if (crl_name_canon(issuer, issuer_len, canon, max, &clen) != SC_OK) {
		rc = SC_ERR_ARG;
		goto out;
	}
	h = crl_hash(canon, clen);
	/* Every CRL of this issuer: a serial listed on any of them is revoked. */
	for (i = (size_t)h & s->mask; s->table[i]; i = (i + 1) & s->mask) {
		const struct crl *c = &s->crls[s->table[i] - 1];

		if (c->hash == h && c->canon_len == clen && memcmp(c->canon, canon, clen) == 0 &&
		    crl_lists(c, serial, serial_len)) {
			rc = SC_ERR_REVOKED;
			break;
		}
	}
out:
	if (canon != stack)
		free(canon);
	return rc;
}

sc_status sc_crlset_check_cert(const sc_crlset *s, const sc_cert *c)
{
	const uint8_t *issuer, *serial;
	size_t ilen, slen;

	if (!s)
		return SC_OK;
	SC_ENSURE_ARG(c);
	sc_cert_issuer_der(c, &issuer, &ilen);
	sc_cert_serial_raw(c, &serial, &slen);
	return sc_crlset_check(s, issuer, ilen, serial, slen);
}
