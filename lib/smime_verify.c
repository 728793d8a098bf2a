/*
 * smime_verify.c - sc_smime_verify() and sc_smime_verify_detached(): read a
 * signed message and hand its CMS SignedData to sig_verify_cms()
 * (lib/smime_vcms.c), then write what was signed.
 *
 * Inputs: multipart/signed with an application/(x-)pkcs7-signature part (RFC
 * 8551 3.5.3, RFC 1847), application/(x-)pkcs7-mime signed-data (RFC 8551
 * 3.5.2), or a bare CMS SignedData in DER or PEM (what other tools and the RFC
 * 4134 examples hold). The first part of a multipart/signed is canonicalised to
 * CRLF (RFC 8551 3.1.1: the signature covers the canonical form) and spooled to
 * an unlinked temporary file, so memory does not grow with it; it is written
 * out only after the signature verified. An opaque signature carries the
 * content inside the CMS structure, which OpenSSL decodes in memory: it is
 * bounded by VERIFY_OPAQUE_MAX.
 *
 * Owns its temporary file and buffers until it returns; no global state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/pem.h> /* before cms.h: PEM_read_bio_CMS() */
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "smtpcert/smime.h"
#include "smime_sig_int.h"

/* A detached signature with a chain of SC_CHAIN_MAX certificates is a few tens
 * of KiB; a megabyte leaves room for CRLs and still bounds a hostile input. */
#define VERIFY_SIG_MAX (1024 * 1024)
/* Opaque signed-data and bare CMS are decoded in memory by OpenSSL. */
#define VERIFY_OPAQUE_MAX (64 * 1024 * 1024)
/* The spooled content of a detached signature: on disk, but still bounded
 * (the same ceiling as an encrypted message, lib/smime_decrypt.c). */
#define VERIFY_CONTENT_MAX (1024ULL * 1024 * 1024)
/* Header block of the signature part. */
#define VERIFY_PART_HEADER_MAX (16 * 1024)
/* RFC 2046 5.1.1: a boundary is at most 70 characters. */
#define VERIFY_BOUNDARY_MAX 70

struct verify_ctx {
	struct sig_in in;
	sc_mime_header *hdr;   /* NULL for a bare CMS input */
	char *block;
	FILE *spool;           /* the detached content */
	unsigned char *der;
	size_t der_len;
	size_t der_cap;
	CMS_ContentInfo *cms;
	X509 *signer;
	char boundary[VERIFY_BOUNDARY_MAX + 1];
	char ct[2048];
	char type[128];
	char part[VERIFY_PART_HEADER_MAX];
	size_t part_len;
	unsigned long long spooled; /* octets in spool */
};

static sc_status verify_grow(struct verify_ctx *c, size_t more, size_t max)
{
	unsigned char *p;
	size_t cap;

	if (c->der_len + more <= c->der_cap)
		return SC_OK;
	if (c->der_len + more > max)
		return SC_ERR_TOO_LONG;
	cap = c->der_cap ? c->der_cap : 64 * 1024;
	while (cap < c->der_len + more)
		cap *= 2;
	if (cap > max)
		cap = max;
	p = realloc(c->der, cap);
	if (!p)
		return SC_ERR_NOMEM;
	c->der = p;
	c->der_cap = cap;
	return SC_OK;
}

/* Base64 body text (RFC 2045 6.8: line breaks and white space ignored). */
static sc_status verify_b64(struct verify_ctx *c, EVP_ENCODE_CTX *e, const char *p, size_t n,
			    size_t max)
{
	int outl = 0;

	SC_TRY(verify_grow(c, n / 4 * 3 + 80, max));
	if (EVP_DecodeUpdate(e, c->der + c->der_len, &outl, (const unsigned char *)p,
			     (int)n) < 0)
		return SC_ERR_ENCODING;
	c->der_len += (size_t)outl;
	return SC_OK;
}

static sc_status verify_b64_final(struct verify_ctx *c, EVP_ENCODE_CTX *e)
{
	int outl = 0;

	SC_TRY(verify_grow(c, 80, c->der_cap + 80));
	if (EVP_DecodeFinal(e, c->der + c->der_len, &outl) < 0)
		return SC_ERR_ENCODING;
	c->der_len += (size_t)outl;
	return SC_OK;
}

/* RFC 2046 5.1.1: "--" boundary, "--" for the last one, transport padding. */
static int verify_is_delim(const struct verify_ctx *c, const char *p, size_t n, int *close)
{
	size_t blen = strlen(c->boundary);
	size_t i;

	if (n < blen + 2 || p[0] != '-' || p[1] != '-' || memcmp(p + 2, c->boundary, blen))
		return 0;
	i = blen + 2;
	*close = n >= i + 2 && p[i] == '-' && p[i + 1] == '-';
	if (*close)
		i += 2;
	for (; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

static sc_status verify_decode_cms(struct verify_ctx *c, char *err, size_t errlen)
{
	const unsigned char *p = c->der;

	if (c->der_len == 0 || c->der_len > VERIFY_OPAQUE_MAX)
		return sig_fail(err, errlen, SC_ERR_SYNTAX, 0, "verify: empty CMS structure");
	c->cms = d2i_CMS_ContentInfo(NULL, &p, (long)c->der_len);
	if (!c->cms)
		return sig_fail(err, errlen, SC_ERR_SYNTAX, 1, "verify: not a CMS structure");
	return SC_OK;
}

/* RFC 8551 3.1.2 wants base64 for the CMS structure; a missing field is
 * taken as base64 too (DER is never 7-bit text), only an explicit binary or
 * 8bit means raw octets. */
static int verify_cte_is_b64(const char *cte)
{
	return strcasecmp(cte, "binary") && strcasecmp(cte, "8bit");
}

/* The signature part's header: application/(x-)pkcs7-signature, base64. */
static sc_status verify_sig_header(struct verify_ctx *c, int *b64, char *err, size_t errlen)
{
	sc_mime_header *h = NULL;
	size_t used;
	char cte[64], type[128];
	sc_status rc = sc_mime_header_parse(c->part, c->part_len, 1, &h, &used);

	if (rc != SC_OK)
		return sig_fail(err, errlen, rc, 0, "verify: signature part header: %s",
				sc_strerror(rc));
	rc = sig_field(h, "Content-Type", c->ct, sizeof(c->ct));
	if (rc == SC_OK)
		rc = sig_ct_type(c->ct, type, sizeof(type));
	if (rc == SC_OK)
		rc = sig_field(h, "Content-Transfer-Encoding", cte, sizeof(cte));
	sc_mime_header_free(h);
	if (rc != SC_OK || (strcmp(type, "application/pkcs7-signature") &&
			    strcmp(type, "application/x-pkcs7-signature")))
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: the second part is not an S/MIME signature");
	*b64 = verify_cte_is_b64(cte);
	return SC_OK;
}

static sc_status verify_spool(struct verify_ctx *c, const char *p, size_t n, int *prev_cr)
{
	char buf[2 * 4096];

	while (n > 0) {
		size_t k = n < 4096 ? n : 4096;
		size_t w = sig_canon(p, k, prev_cr, buf);

		c->spooled += w;
		if (c->spooled > VERIFY_CONTENT_MAX)
			return SC_ERR_TOO_LONG;
		if (fwrite(buf, 1, w, c->spool) != w)
			return SC_ERR_IO;
		p += k;
		n -= k;
	}
	return SC_OK;
}

/* multipart/signed: spool part one, decode part two. */
static sc_status verify_multipart(struct verify_ctx *c, char *err, size_t errlen)
{
	enum { PREAMBLE, CONTENT, SIGHEAD, SIGBODY, DONE } st = PREAMBLE;
	EVP_ENCODE_CTX *e = NULL;
	char proto[128];
	const char *p;
	size_t n;
	int bol, close = 0, b64 = 1, prev_cr = 0, lines = 0;
	sc_status rc;

	rc = sig_ct_param(c->ct, "boundary", c->boundary, sizeof(c->boundary));
	if (rc != SC_OK || !c->boundary[0])
		return sig_fail(err, errlen, SC_ERR_SYNTAX, 0,
				"verify: multipart/signed without a usable boundary");
	if (sig_ct_param(c->ct, "protocol", proto, sizeof(proto)) == SC_OK &&
	    strcasecmp(proto, "application/pkcs7-signature") &&
	    strcasecmp(proto, "application/x-pkcs7-signature"))
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: multipart/signed with protocol %.60s is not S/MIME", proto);
	c->spool = tmpfile();
	e = EVP_ENCODE_CTX_new();
	if (!c->spool || !e) {
		EVP_ENCODE_CTX_free(e);
		return sig_fail(err, errlen, SC_ERR_IO, 0, "verify: no temporary file");
	}
	EVP_DecodeInit(e);
	while (st != DONE && (rc = sig_in_segment(&c->in, &p, &n, &bol)) == SC_OK) {
		int delim = bol && verify_is_delim(c, p, n, &close);

		if (delim && (st == PREAMBLE ? close : st == SIGHEAD)) {
			rc = SC_ERR_SYNTAX;
			break;
		}
		switch (st) {
		case PREAMBLE:
			if (delim)
				st = CONTENT;
			break;
		case CONTENT:
			if (delim) {
				/* RFC 2046 5.1.1: the CRLF before the delimiter is
				 * the delimiter's; the spool ends in it when the
				 * part has any line. */
				long end = ftell(c->spool);

				if (lines && (fflush(c->spool) || end < 2 ||
					      ftruncate(fileno(c->spool), end - 2) ||
					      fseek(c->spool, end - 2, SEEK_SET)))
					rc = SC_ERR_IO;
				st = close ? DONE : SIGHEAD;
				if (close)
					rc = SC_ERR_SYNTAX;
				break;
			}
			lines = 1;
			rc = verify_spool(c, p, n, &prev_cr);
			break;
		case SIGHEAD:
			if (c->part_len + n > sizeof(c->part)) {
				rc = SC_ERR_TOO_LONG;
				break;
			}
			memcpy(c->part + c->part_len, p, n);
			c->part_len += n;
			if (bol && (n == 1 || (n == 2 && p[0] == '\r')) && p[n - 1] == '\n') {
				rc = verify_sig_header(c, &b64, err, errlen);
				st = SIGBODY;
			}
			break;
		case SIGBODY:
			if (delim) {
				st = DONE;
				break;
			}
			if (b64)
				rc = verify_b64(c, e, p, n, VERIFY_SIG_MAX);
			else if ((rc = verify_grow(c, n, VERIFY_SIG_MAX)) == SC_OK) {
				memcpy(c->der + c->der_len, p, n);
				c->der_len += n;
			}
			break;
		case DONE:
			break;
		}
		if (rc != SC_OK)
			break;
	}
	if (rc == SC_OK && b64)
		rc = verify_b64_final(c, e);
	EVP_ENCODE_CTX_free(e);
	if (rc == SC_EOF || (rc == SC_OK && st != DONE))
		return sig_fail(err, errlen, SC_ERR_SYNTAX, 0,
				"verify: multipart/signed is truncated or malformed");
	if (rc != SC_OK)
		return (err && errlen && err[0]) ? rc :
		       sig_fail(err, errlen, rc, 0, "verify: multipart/signed: %s",
				sc_strerror(rc));
	if (fflush(c->spool) || fseek(c->spool, 0, SEEK_SET))
		return sig_fail(err, errlen, SC_ERR_IO, 0, "verify: temporary file");
	return verify_decode_cms(c, err, errlen);
}

/* application/pkcs7-mime: the body is the CMS structure. */
static sc_status verify_opaque(struct verify_ctx *c, char *err, size_t errlen)
{
	char stype[64] = "", cte[64];
	EVP_ENCODE_CTX *e;
	const char *p;
	size_t n;
	int bol, b64;
	sc_status rc;

	if (sig_ct_param(c->ct, "smime-type", stype, sizeof(stype)) == SC_OK &&
	    strcasecmp(stype, "signed-data"))
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: not signed but %.40s%s", stype,
				strstr(stype, "enveloped") ? " (decrypt it first)" : "");
	SC_TRY(sig_field(c->hdr, "Content-Transfer-Encoding", cte, sizeof(cte)));
	b64 = verify_cte_is_b64(cte);
	e = EVP_ENCODE_CTX_new();
	if (!e)
		return SC_ERR_NOMEM;
	EVP_DecodeInit(e);
	while ((rc = sig_in_segment(&c->in, &p, &n, &bol)) == SC_OK) {
		if (b64)
			rc = verify_b64(c, e, p, n, VERIFY_OPAQUE_MAX);
		else if ((rc = verify_grow(c, n, VERIFY_OPAQUE_MAX)) == SC_OK) {
			memcpy(c->der + c->der_len, p, n);
			c->der_len += n;
		}
		if (rc != SC_OK)
			break;
	}
	if (rc == SC_EOF)
		rc = b64 ? verify_b64_final(c, e) : SC_OK;
	EVP_ENCODE_CTX_free(e);
	if (rc != SC_OK)
		return sig_fail(err, errlen, rc, 0, "verify: signed-data body: %s",
				sc_strerror(rc));
	return verify_decode_cms(c, err, errlen);
}

/* A bare CMS structure, DER or PEM, from the whole input. */
static sc_status verify_bare(struct verify_ctx *c, struct sig_in *in, char *err, size_t errlen)
{
	const char *p;
	size_t n;
	int bol;
	sc_status rc;

	while ((rc = sig_in_segment(in, &p, &n, &bol)) == SC_OK) {
		if ((rc = verify_grow(c, n, VERIFY_OPAQUE_MAX)) != SC_OK)
			break;
		memcpy(c->der + c->der_len, p, n);
		c->der_len += n;
	}
	if (rc != SC_EOF)
		return sig_fail(err, errlen, rc, 0, "verify: CMS input: %s", sc_strerror(rc));
	if (c->der_len && c->der[0] != 0x30) {
		BIO *b = BIO_new_mem_buf(c->der, (int)c->der_len);

		c->cms = b ? PEM_read_bio_CMS(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!c->cms)
			return sig_fail(err, errlen, SC_ERR_SYNTAX, 1,
					"verify: neither an S/MIME message nor a CMS structure");
		return SC_OK;
	}
	return verify_decode_cms(c, err, errlen);
}

/* RFC 8550 3: From (or Sender) must name an address of the signer. */
static int verify_from_match(const struct verify_ctx *c)
{
	static const char *const fields[] = { "From", "Sender" };
	unsigned char *der = NULL;
	int len, match = -1;
	sc_cert *cert = NULL;

	if (!c->hdr || !c->signer)
		return -1;
	len = i2d_X509(c->signer, &der);
	if (len <= 0 || sc_cert_parse(der, (size_t)len, &cert) != SC_OK)
		cert = NULL;
	OPENSSL_free(der);
	for (size_t i = 0; i < 2; i++) {
		const struct sc_mime_field *f = sc_mime_header_find(c->hdr, fields[i], 0);
		struct sc_addr a[8];
		char v[1024];
		size_t na = 0;

		if (!f)
			continue;
		if (match < 0)
			match = 0;
		if (sc_mime_unfold(f, v, sizeof(v)) != SC_OK ||
		    sc_mime_addresses(v, strlen(v), a, 8, &na) != SC_OK)
			continue;
		for (size_t k = 0; cert && k < na; k++)
			if (sc_cert_has_email(cert, &a[k]))
				match = 1;
	}
	sc_cert_free(cert);
	return match;
}

/* Does the entity's own header (before the first empty line) have MIME-Version? */
static int verify_entity_has_mv(const char *p, size_t n)
{
	int bol = 1;

	for (size_t i = 0; i < n; i++) {
		if (bol && (p[i] == '\n' || (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')))
			return 0;
		if (bol && n - i >= 13 && !strncasecmp(p + i, "MIME-Version:", 13))
			return 1;
		bol = p[i] == '\n';
	}
	return 0;
}

static sc_status verify_output(struct verify_ctx *c, int out_fd)
{
	struct sig_out *o = malloc(sizeof(*o));
	ASN1_OCTET_STRING **pos = c->spool ? NULL : CMS_get0_content(c->cms);
	const char *data = pos && *pos ? (const char *)(*pos)->data : "";
	size_t len = pos && *pos ? (size_t)(*pos)->length : 0;
	char buf[8192];
	sc_status rc = SC_OK;
	size_t k;

	if (!o)
		return SC_ERR_NOMEM;
	sig_out_init(o, out_fd, 0);
	if (c->spool) {
		k = fread(buf, 1, sizeof(buf), c->spool);
		data = buf;
		len = k;
	}
	for (size_t i = 0; c->hdr && i < sc_mime_header_count(c->hdr) && rc == SC_OK; i++) {
		const struct sc_mime_field *f = sc_mime_header_field(c->hdr, i);

		if (f->name_len >= 8 && !strncasecmp(f->name, "Content-", 8))
			continue;
		if (f->name_len == 12 && !strncasecmp(f->name, "MIME-Version", 12) &&
		    verify_entity_has_mv(data, len))
			continue;
		rc = sig_out_text(o, f->raw, f->raw_len);
	}
	while (rc == SC_OK && len > 0) {
		rc = sig_out_raw(o, data, len);
		len = 0;
		if (c->spool && rc == SC_OK)
			len = fread(buf, 1, sizeof(buf), c->spool);
	}
	if (rc == SC_OK && c->spool && ferror(c->spool))
		rc = SC_ERR_IO;
	if (rc == SC_OK)
		rc = sig_out_flush(o);
	free(o);
	return rc;
}

static sc_status verify_run(struct verify_ctx *c, BIO *dcont, int out_fd, const char *ca_file,
			    int no_chain, struct sc_smime_signer *signer, char *err,
			    size_t errlen)
{
	BIO *spool_bio = NULL;
	sc_status rc;

	if (!dcont && c->spool) {
		spool_bio = BIO_new_fp(c->spool, BIO_NOCLOSE);
		if (!spool_bio)
			return SC_ERR_NOMEM;
		dcont = spool_bio;
	}
	rc = sig_verify_cms(c->cms, dcont, ca_file, no_chain, signer, &c->signer, err, errlen);
	BIO_free(spool_bio);
	if (rc != SC_OK)
		return rc;
	signer->from_match = verify_from_match(c);
	if (out_fd < 0)
		return SC_OK;
	if (c->spool && fseek(c->spool, 0, SEEK_SET))
		return sig_fail(err, errlen, SC_ERR_IO, 0, "verify: temporary file");
	rc = verify_output(c, out_fd);
	if (rc != SC_OK)
		return sig_fail(err, errlen, rc, 0, "verify: cannot write the signed content");
	return SC_OK;
}

static void verify_fini(struct verify_ctx *c)
{
	sig_in_fini(&c->in);
	sc_mime_header_free(c->hdr);
	free(c->block);
	if (c->spool)
		fclose(c->spool);
	free(c->der);
	CMS_ContentInfo_free(c->cms);
	X509_free(c->signer);
	free(c);
}

static struct verify_ctx *verify_new(struct sc_smime_signer *signer, char *err, size_t errlen)
{
	struct verify_ctx *c = calloc(1, sizeof(*c));

	if (err && errlen)
		err[0] = '\0';
	if (signer) {
		memset(signer, 0, sizeof(*signer));
		signer->from_match = -1;
	}
	return c;
}

static sc_status verify_message(struct verify_ctx *c, char *err, size_t errlen)
{
	const char *p;
	size_t n;
	sc_status rc;

	SC_TRY(sig_in_peek(&c->in, &p, &n));
	if ((n > 0 && (unsigned char)p[0] == 0x30) || (n >= 11 && !memcmp(p, "-----BEGIN ", 11)))
		return verify_bare(c, &c->in, err, errlen);
	rc = sig_read_header(&c->in, &c->hdr, &c->block);
	if (rc == SC_OK)
		rc = sig_field(c->hdr, "Content-Type", c->ct, sizeof(c->ct));
	if (rc != SC_OK)
		return sig_fail(err, errlen, rc, 0, "verify: message header: %s", sc_strerror(rc));
	if (!c->ct[0] || sig_ct_type(c->ct, c->type, sizeof(c->type)) != SC_OK)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"verify: not a signed message (no Content-Type)");
	if (!strcmp(c->type, "multipart/signed"))
		return verify_multipart(c, err, errlen);
	if (!strcmp(c->type, "application/pkcs7-mime") ||
	    !strcmp(c->type, "application/x-pkcs7-mime"))
		return verify_opaque(c, err, errlen);
	return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
			"verify: not a signed message (Content-Type %.60s)", c->type);
}

sc_status sc_smime_verify(int in_fd, int out_fd, const char *ca_file, int no_chain,
			  struct sc_smime_signer *signer, char *err, size_t errlen)
{
	struct verify_ctx *c;
	sc_status rc;

	if (!signer || in_fd < 0)
		return sig_fail(err, errlen, SC_ERR_ARG, 0, "verify: input and signer needed");
	c = verify_new(signer, err, errlen);
	if (!c)
		return SC_ERR_NOMEM;
	rc = sig_in_init(&c->in, in_fd);
	if (rc == SC_OK)
		rc = verify_message(c, err, errlen);
	if (rc == SC_OK)
		rc = verify_run(c, NULL, out_fd, ca_file, no_chain, signer, err, errlen);
	verify_fini(c);
	return rc;
}

sc_status sc_smime_verify_detached(int sig_fd, int content_fd, int out_fd, const char *ca_file,
				   int no_chain, struct sc_smime_signer *signer, char *err,
				   size_t errlen)
{
	struct verify_ctx *c;
	char buf[8192];
	ssize_t r;
	sc_status rc;

	if (!signer || sig_fd < 0 || content_fd < 0)
		return sig_fail(err, errlen, SC_ERR_ARG, 0,
				"verify: signature, content and signer needed");
	c = verify_new(signer, err, errlen);
	if (!c)
		return SC_ERR_NOMEM;
	rc = sig_in_init(&c->in, sig_fd);
	if (rc == SC_OK)
		rc = verify_bare(c, &c->in, err, errlen);
	if (rc == SC_OK && !(c->spool = tmpfile()))
		rc = sig_fail(err, errlen, SC_ERR_IO, 0, "verify: no temporary file");
	/* The content as it is: the caller's bytes are what was signed. */
	while (rc == SC_OK && (r = read(content_fd, buf, sizeof(buf))) != 0) {
		if (r > 0 && (c->spooled += (size_t)r) > VERIFY_CONTENT_MAX)
			rc = sig_fail(err, errlen, SC_ERR_TOO_LONG, 0, "verify: content too large");
		else if (r < 0 || fwrite(buf, 1, (size_t)r, c->spool) != (size_t)r)
			rc = sig_fail(err, errlen, SC_ERR_IO, 0, "verify: cannot read the content");
	}
	if (rc == SC_OK && (fflush(c->spool) || fseek(c->spool, 0, SEEK_SET)))
		rc = sig_fail(err, errlen, SC_ERR_IO, 0, "verify: temporary file");
	if (rc == SC_OK)
		rc = verify_run(c, NULL, out_fd, ca_file, no_chain, signer, err, errlen);
	verify_fini(c);
	return rc;
}
