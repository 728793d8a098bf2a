/*
 * smime_decrypt.c - sc_smime_decrypt(): S/MIME decryption (RFC 8551 3.3) of an
 * application/pkcs7-mime enveloped-data or authEnveloped-data message read from
 * a file descriptor, with OpenSSL's CMS.
 *
 * Output: the outer header without its Content-* fields, then the decrypted
 * entity. An outer field whose name also occurs in the entity's own header is
 * dropped, so the protected copy wins: a hidden Subject ("Subject: ..." outside),
 * MIME-Version. The outer MIME-Version, which the S/MIME wrapper needed, is
 * also dropped when the entity has no MIME fields at all. Decrypted content that is not a MIME entity (a bare CMS payload
 * such as the RFC 4134 samples) becomes the body after an empty line.
 *
 * A bare CMS structure (DER, or PEM "CMS"/"PKCS7", RFC 7468) is read too; its
 * content is written as it is.
 *
 * Before the key is used: the key type must be one OpenSSL 3.0 CMS can decrypt
 * with (not X25519/X448, RFC 8418), the key must belong to the certificate, the
 * content-encryption algorithm must be available (not ChaCha20-Poly1305 of
 * RFC 8103, not RC2 without the legacy provider), and a RecipientInfo must name
 * the certificate. Each failure has its own status and a message naming the
 * algorithm.
 *
 * Memory: OpenSSL has no streaming CMS parser, so the DER (3/4 of the base64
 * body) is held in memory, at most SMIME_DECRYPT_MAX; the plaintext is
 * collected in one buffer the size of the DER and written only after
 * decryption (and the AES-GCM tag check, RFC 5084 3) succeeded, so an altered
 * message never yields partial plaintext. Buffers holding plaintext are wiped.
 *
 * Owns nothing after it returns; no global state (CLI, daemon workers).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/buffer.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "smtpcert/smime.h"
#include "key_int.h"
#include "smime_int.h"
#include "smime_sig_int.h"

struct dec_ctx {
	struct sig_in in;
	struct sig_out out;
	sc_mime_header *hdr;     /* outer header */
	char *block;
	X509 *x;
	unsigned char *der;      /* the CMS DER, decoded from base64 */
	size_t derlen, dercap;
	BIO *plain;              /* the decrypted entity */
	CMS_ContentInfo *cms;
	int bare;                /* a CMS structure without MIME header (DER or PEM) */
};

/* --- the body: base64 (or binary) to DER --------------------------------- */

/* Grow by doubling (realloc can move large blocks without copying them). */
static sc_status der_append(struct dec_ctx *c, const unsigned char *p, size_t n)
{
	if (c->derlen + n > c->dercap) {
		size_t cap = c->dercap ? c->dercap : 64 * 1024;
		unsigned char *nb;

		while (cap < c->derlen + n)
			cap *= 2;
		nb = realloc(c->der, cap);
		if (!nb)
			return SC_ERR_NOMEM;
		c->der = nb;
		c->dercap = cap;
	}
	memcpy(c->der + c->derlen, p, n);
	c->derlen += n;
	return SC_OK;
}

static sc_status dec_read_body(struct dec_ctx *c, int b64, char *err, size_t errlen)
{
	EVP_ENCODE_CTX *ectx = NULL;
	unsigned char out[(SIG_SEGMENT_MAX / 4 + 1) * 3 + 16];
	size_t total = 0;
	const char *p;
	size_t n;
	int bol, outl;
	sc_status rc = SC_OK;

	if (b64) {
		ectx = EVP_ENCODE_CTX_new();
		if (!ectx)
			return SC_ERR_NOMEM;
		EVP_DecodeInit(ectx);
	}
	while ((rc = sig_in_segment(&c->in, &p, &n, &bol)) == SC_OK) {
		const unsigned char *w = (const unsigned char *)p;

		/* a bare PEM CMS: its BEGIN/END lines (RFC 7468) are not base64 */
		if (c->bare && b64 && bol && n >= 5 && !memcmp(p, "-----", 5))
			continue;

		outl = (int)n;
		if (b64) {
			/* EVP_DecodeUpdate skips white space and line ends; any
			 * other non-alphabet octet is an error. */
			if (EVP_DecodeUpdate(ectx, out, &outl, w, (int)n) < 0) {
				rc = sig_fail(err, errlen, SC_ERR_ENCODING, 0,
					      "decrypt: the body is not valid base64");
				goto done;
			}
			w = out;
		}
		total += (size_t)outl;
		if (total > SMIME_DECRYPT_MAX) {
			rc = sig_fail(err, errlen, SC_ERR_TOO_LONG, 0,
				      "decrypt: encrypted content over %zu octets",
				      (size_t)SMIME_DECRYPT_MAX);
			goto done;
		}
		if (outl > 0 && der_append(c, w, (size_t)outl) != SC_OK) {
			rc = SC_ERR_NOMEM;
			goto done;
		}
	}
	if (rc != SC_EOF) {
		rc = sig_fail(err, errlen, rc, 0, "decrypt: cannot read the message");
		goto done;
	}
	rc = SC_OK;
	if (b64) {
		if (EVP_DecodeFinal(ectx, out, &outl) < 0) {
			rc = sig_fail(err, errlen, SC_ERR_ENCODING, 0,
				      "decrypt: the body is not valid base64");
			goto done;
		}
		if (outl > 0 && der_append(c, out, (size_t)outl) != SC_OK)
			rc = SC_ERR_NOMEM;
	}
done:
	EVP_ENCODE_CTX_free(ectx);
	return rc;
}

/* --- what the message needs, checked before the key is used -------------- */

/* One TLV header; *p moves past it. @return 0, or -1 when malformed. */
static int der_hdr(const unsigned char **p, long *left, int *tag, int *cls, long *len, int *inf)
{
	const unsigned char *q = *p;
	int r = ASN1_get_object(&q, len, tag, cls, *left);

	if (r & 0x80)
		return -1;
	*inf = r & 0x01;
	*left -= (long)(q - *p);
	*p = q;
	return 0;
}

/* Skip a whole definite-length element. */
static int der_skip(const unsigned char **p, long *left)
{
	int tag, cls, inf;
	long len;

	if (der_hdr(p, left, &tag, &cls, &len, &inf) != 0 || inf || len > *left)
		return -1;
	*p += len;
	*left -= len;
	return 0;
}

/*
 * The contentEncryptionAlgorithm OID of an (Auth)EnvelopedData ContentInfo
 * (RFC 5652 6.1, RFC 5083 2.1), as dotted text into @p buf.
 * @return 0, or -1 when it cannot be found (OpenSSL's parser decides then).
 */
static int dec_content_alg(const unsigned char *der, long len, char *buf, size_t size)
{
	const unsigned char *p = der;
	long left = len, l;
	int tag, cls, inf;
	ASN1_OBJECT *obj;
	const unsigned char *start;

	/* ContentInfo SEQUENCE, contentType, [0], (Auth)EnvelopedData SEQUENCE */
	if (der_hdr(&p, &left, &tag, &cls, &l, &inf) || der_skip(&p, &left) ||
	    der_hdr(&p, &left, &tag, &cls, &l, &inf) || der_hdr(&p, &left, &tag, &cls, &l, &inf))
		return -1;
	if (der_skip(&p, &left)) /* version */
		return -1;
	start = p;
	if (der_hdr(&p, &left, &tag, &cls, &l, &inf))
		return -1;
	/* originatorInfo [0] IMPLICIT is optional; recipientInfos SET follows */
	left += (long)(p - start);
	p = start;
	if (cls == V_ASN1_CONTEXT_SPECIFIC && der_skip(&p, &left))
		return -1;
	if (der_skip(&p, &left)) /* recipientInfos */
		return -1;
	/* EncryptedContentInfo SEQUENCE { contentType, contentEncryptionAlgorithm } */
	if (der_hdr(&p, &left, &tag, &cls, &l, &inf) || der_skip(&p, &left) ||
	    der_hdr(&p, &left, &tag, &cls, &l, &inf))
		return -1;
	obj = d2i_ASN1_OBJECT(NULL, &p, left);
	if (!obj)
		return -1;
	l = OBJ_obj2txt(buf, (int)size, obj, 1);
	ASN1_OBJECT_free(obj);
	return l > 0 && (size_t)l < size ? 0 : -1;
}

static const struct {
	const char *oid;
	const char *what;
} known_algs[] = {
	{ "1.2.840.113549.1.9.16.3.18", "ChaCha20-Poly1305 (RFC 8103)" },
	{ "1.2.840.113549.3.2", "RC2-CBC (only in OpenSSL's legacy provider, which is not loaded)" },
	{ "1.3.14.3.2.7", "DES-CBC (only in OpenSSL's legacy provider, which is not loaded)" },
};

/* The content-encryption algorithm must be one this OpenSSL can run. */
static sc_status dec_check_alg(const unsigned char *der, long len, char *err, size_t errlen)
{
	char oid[128];
	EVP_CIPHER *ciph;
	ASN1_OBJECT *obj;
	int nid;

	if (dec_content_alg(der, len, oid, sizeof(oid)) != 0)
		return SC_OK;
	obj = OBJ_txt2obj(oid, 1);
	nid = obj ? OBJ_obj2nid(obj) : NID_undef;
	ASN1_OBJECT_free(obj);
	ciph = nid != NID_undef ? EVP_CIPHER_fetch(NULL, OBJ_nid2sn(nid), NULL) : NULL;
	if (ciph) {
		EVP_CIPHER_free(ciph);
		return SC_OK;
	}
	ERR_clear_error();
	for (size_t i = 0; i < sizeof(known_algs) / sizeof(known_algs[0]); i++)
		if (!strcmp(oid, known_algs[i].oid))
			return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
					"decrypt: content encryption algorithm %s is not supported",
					known_algs[i].what);
	return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
			"decrypt: content encryption algorithm %s (%s) is not supported",
			nid != NID_undef ? OBJ_nid2ln(nid) : "unknown", oid);
}

/* Some RecipientInfo must name our certificate (RFC 5652 6.2). */
static int dec_has_recipient(CMS_ContentInfo *cms, X509 *x)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);

	for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		int type = CMS_RecipientInfo_type(ri);

		if (type == CMS_RECIPINFO_TRANS && CMS_RecipientInfo_ktri_cert_cmp(ri, x) == 0)
			return 1;
		if (type == CMS_RECIPINFO_AGREE) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks =
				CMS_RecipientInfo_kari_get0_reks(ri);

			for (int j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks); j++)
				if (CMS_RecipientEncryptedKey_cert_cmp(
					    sk_CMS_RecipientEncryptedKey_value(reks, j), x) == 0)
					return 1;
		}
	}
	return 0;
}

/* --- header checks and output --------------------------------------------- */

/* An encrypted S/MIME message, and whether its body is base64. */
static sc_status dec_check_header(struct dec_ctx *c, int *b64, char *err, size_t errlen)
{
	char ct[1024], type[128], cte[128];
	enum sc_mime_kind kind = sc_mime_header_kind(c->hdr);

	if (sig_field(c->hdr, "Content-Type", ct, sizeof(ct)) != SC_OK ||
	    sig_ct_type(ct, type, sizeof(type)) != SC_OK)
		type[0] = '\0';
	if (kind == SC_MIME_SIGNED)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"decrypt: the message is signed, not encrypted "
				"(smtpcert verify reads it)");
	if (kind == SC_MIME_COMPRESSED)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"decrypt: compressed-data (RFC 3274) is not supported: "
				"not an encrypted message");
	if (kind != SC_MIME_ENCRYPTED)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"decrypt: not an encrypted S/MIME message (Content-Type %s)",
				type[0] ? type : "text/plain");
	if (!strcmp(type, "multipart/encrypted"))
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"decrypt: multipart/encrypted (OpenPGP) is not supported: "
				"not an S/MIME message");
	if (sig_field(c->hdr, "Content-Transfer-Encoding", cte, sizeof(cte)) != SC_OK)
		cte[0] = '\0';
	/* RFC 8551 3.1.3: base64 for 7-bit transports; binary where allowed. */
	if (!cte[0] || !strcasecmp(cte, "base64")) {
		*b64 = 1;
	} else if (!strcasecmp(cte, "binary") || !strcasecmp(cte, "8bit") ||
		   !strcasecmp(cte, "7bit")) {
		*b64 = 0;
	} else {
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"decrypt: Content-Transfer-Encoding %s is not supported", cte);
	}
	return SC_OK;
}

static int field_in(const sc_mime_header *h, const struct sc_mime_field *f)
{
	for (size_t i = 0; h && i < sc_mime_header_count(h); i++) {
		const struct sc_mime_field *g = sc_mime_header_field(h, i);

		if (g->name_len == f->name_len && !strncasecmp(g->name, f->name, f->name_len))
			return 1;
	}
	return 0;
}

static sc_status dec_write(struct dec_ctx *c)
{
	char *data = NULL;
	long len = BIO_get_mem_data(c->plain, &data);
	sc_mime_header *inner = NULL;
	size_t used = 0;
	int is_entity;

	if (len < 0)
		return SC_ERR_INTERNAL;
	if (c->bare) {
		/* no message around it: the content as it is */
		SC_TRY(sig_out_raw(&c->out, data, (size_t)len));
		return sig_out_flush(&c->out);
	}
	is_entity = sc_mime_header_parse(data, (size_t)len, 1, &inner, &used) == SC_OK;
	for (size_t i = 0; i < sc_mime_header_count(c->hdr); i++) {
		const struct sc_mime_field *f = sc_mime_header_field(c->hdr, i);

		if (f->name_len >= 8 && !strncasecmp(f->name, "Content-", 8))
			continue;
		if (field_in(inner, f))
			continue;
		/* MIME-Version belongs to the S/MIME wrapper; it stays only for an
		 * entity that has MIME fields but no MIME-Version of its own. */
		if (f->name_len == 12 && !strncasecmp(f->name, "MIME-Version", 12) &&
		    !sc_mime_header_find(inner, "Content-Type", 0) &&
		    !sc_mime_header_find(inner, "Content-Transfer-Encoding", 0))
			continue;
		if (sig_out_text(&c->out, f->raw, f->raw_len) != SC_OK ||
		    (f->raw[f->raw_len - 1] != '\n' && sig_out_text(&c->out, "\r\n", 2) != SC_OK)) {
			sc_mime_header_free(inner);
			return SC_ERR_IO;
		}
	}
	sc_mime_header_free(inner);
	if (!is_entity)
		SC_TRY(sig_out_text(&c->out, "\r\n", 2));
	SC_TRY(sig_out_raw(&c->out, data, (size_t)len));
	return sig_out_flush(&c->out);
}

/*
 * A message (header, then the body dec_check_header() accepts), or a bare CMS
 * structure as `openssl cms -encrypt -outform DER|PEM` writes it: DER starts
 * with a SEQUENCE (0x30), PEM with "-----BEGIN CMS-----" or "PKCS7".
 */
static sc_status dec_read_start(struct dec_ctx *c, int *b64, char *err, size_t errlen)
{
	const char *p;
	size_t n;
	sc_status rc;

	if (sig_in_peek(&c->in, &p, &n) != SC_OK)
		return sig_fail(err, errlen, SC_ERR_IO, 0, "decrypt: cannot read the message");
	if (n > 0 && (unsigned char)p[0] == 0x30) {
		c->bare = 1;
		*b64 = 0;
		return SC_OK;
	}
	if ((n >= 19 && !memcmp(p, "-----BEGIN CMS-----", 19)) ||
	    (n >= 21 && !memcmp(p, "-----BEGIN PKCS7-----", 21))) {
		c->bare = 1;
		*b64 = 1;
		return SC_OK;
	}
	rc = sig_read_header(&c->in, &c->hdr, &c->block);
	if (rc != SC_OK)
		return sig_fail(err, errlen, rc, 0, "decrypt: message header: %s", sc_strerror(rc));
	return dec_check_header(c, b64, err, errlen);
}

static sc_status dec_run(struct dec_ctx *c, const sc_key *key, const sc_cert *cert,
			 EVP_PKEY *pk, char *err, size_t errlen)
{
	const char *why = smime_key_unsupported(pk, 1);
	const unsigned char *der = NULL;
	long derlen;
	int b64 = 1, nid;
	char subj[256];
	unsigned long e;
	BUF_MEM *bm;

	if (why)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0, "decrypt: %s", why);
	/* sc_key_matches() also proves possession of a token key that lacks
	 * its public half. */
	if (!sc_key_matches(key, cert))
		return sig_fail(err, errlen, SC_ERR_MISMATCH, 0,
				"decrypt: the key does not belong to the certificate");
	SC_TRY(dec_read_start(c, &b64, err, errlen));
	SC_TRY(dec_read_body(c, b64, err, errlen));
	der = c->der;
	derlen = (long)c->derlen;
	c->cms = derlen > 0 ? d2i_CMS_ContentInfo(NULL, &der, derlen) : NULL;
	if (!c->cms)
		return sig_fail(err, errlen, SC_ERR_SYNTAX, 1,
				"decrypt: the body is not a CMS structure");
	nid = OBJ_obj2nid(CMS_get0_type(c->cms));
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"decrypt: CMS content type %s is not enveloped-data",
				OBJ_nid2ln(nid));
	SC_TRY(dec_check_alg(c->der, derlen, err, errlen));
	sc_cert_subject(cert, subj, sizeof(subj));
	if (!dec_has_recipient(c->cms, c->x))
		return sig_fail(err, errlen, SC_ERR_NOT_FOUND, 0,
				"decrypt: the message is not encrypted to %s", subj);
	/* The plaintext is shorter than the DER: one allocation, never moved
	 * (a growing memory BIO copies and wipes its buffer at every step). It is
	 * wiped when freed (BUF_MEM_free uses OPENSSL_clear_free). */
	bm = BUF_MEM_new();
	if (!bm || !BUF_MEM_grow(bm, c->derlen)) {
		BUF_MEM_free(bm);
		return SC_ERR_NOMEM;
	}
	bm->length = 0;
	c->plain = BIO_new(BIO_s_mem());
	if (!c->plain) {
		BUF_MEM_free(bm);
		return SC_ERR_NOMEM;
	}
	BIO_set_mem_buf(c->plain, bm, BIO_CLOSE);
	if (CMS_decrypt(c->cms, pk, c->x, NULL, c->plain, CMS_BINARY) == 1)
		return SC_OK;
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_CMS && (ERR_GET_REASON(e) == CMS_R_UNKNOWN_CIPHER ||
					      ERR_GET_REASON(e) == CMS_R_NOT_SUPPORTED_FOR_THIS_KEY_TYPE))
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 1,
				"decrypt: algorithm not supported");
	return sig_fail(err, errlen, SC_ERR_CRYPTO, 1,
			"decrypt: decryption failed (wrong key, or the message was altered)");
}

sc_status sc_smime_decrypt(int in_fd, int out_fd, const sc_key *key, const sc_cert *cert,
			   char *err, size_t errlen)
{
	struct dec_ctx *c;
	EVP_PKEY *pk = key_evp(key);
	sc_status rc;

	if (err && errlen)
		err[0] = '\0';
	if (!pk || !cert || in_fd < 0 || out_fd < 0)
		return sig_fail(err, errlen, SC_ERR_ARG, 0,
				"decrypt: key, certificate and files needed");
	c = calloc(1, sizeof(*c));
	if (!c)
		return SC_ERR_NOMEM;
	sig_out_init(&c->out, out_fd, 0);
	rc = sig_in_init(&c->in, in_fd);
	if (rc != SC_OK)
		goto out;
	c->x = sig_cert_x509(cert, 0);
	if (!c->x) {
		rc = sig_fail(err, errlen, SC_ERR_SYNTAX, 1, "decrypt: unreadable certificate");
		goto out;
	}
	rc = dec_run(c, key, cert, pk, err, errlen);
	if (rc == SC_OK) {
		rc = dec_write(c);
		if (rc != SC_OK)
			sig_fail(err, errlen, rc, 0, "decrypt: write failed");
	}
out:
	if (rc == SC_ERR_NOMEM && err && errlen && !err[0])
		sig_fail(err, errlen, rc, 0, "decrypt: out of memory");
	CMS_ContentInfo_free(c->cms);
	free(c->der);
	BIO_free(c->plain);
	X509_free(c->x);
	sc_mime_header_free(c->hdr);
	free(c->block);
	sig_in_fini(&c->in);
	OPENSSL_cleanse(c->out.buf, sizeof(c->out.buf));
	free(c);
	return rc;
}
