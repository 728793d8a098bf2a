/*
 * smime_sign.c - sc_smime_sign(): S/MIME version 4 signing (RFC 8551) of an
 * RFC 5322 message read from a file descriptor, with OpenSSL's CMS.
 *
 * Two forms: multipart/signed with a detached application/pkcs7-signature
 * (RFC 8551 3.5.3, RFC 1847 2.1), the default because a reader without S/MIME
 * still sees the text; or application/pkcs7-mime signed-data (RFC 8551 3.5.2),
 * "opaque", when asked. The routing fields (sc_mime_field_is_outer()) stay in the
 * outer header; every other field and the body form the signed entity, in CRLF
 * canonical form (RFC 8551 3.1.1).
 *
 * Streaming: the entity passes once through the CMS digest (detached) or the CMS
 * streaming encoder (opaque) and straight to the output; only the header block
 * and fixed buffers are held, so memory does not grow with the message. The key
 * is used only through EVP_PKEY operations (a PKCS#11 token key signs on the
 * token, at CMS_dataFinal()).
 *
 * Owns nothing after it returns; no global state (CLI and daemon workers).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "smtpcert/smime.h"
#include "key_int.h"
#include "smime_sig_int.h"

/* "=_" can occur neither in base64 nor in quoted-printable output, so a
 * boundary containing it cannot collide with an encoded body (the classic
 * choice); 128 random bits make a collision with an 8-bit or 7-bit body a
 * 2^-128 event, and sign_body() still checks every line (RFC 2046 5.1.1). */
#define SIGN_BOUNDARY_PREFIX "----=_smtpcert_"
#define SIGN_BOUNDARY_RANDOM 16

struct sign_ctx {
	struct sig_in in;
	struct sig_out out;
	sc_mime_header *hdr;
	char *block;
	CMS_ContentInfo *cms;
	X509 *signer;
	BIO *sink;             /* digest chain (detached) or CMS stream BIO (opaque) */
	BIO *mem;              /* opaque: the DER as it is produced */
	int opaque;
	int prev_cr;           /* canonicalisation state */
	char boundary[sizeof(SIGN_BOUNDARY_PREFIX) + 2 * SIGN_BOUNDARY_RANDOM];
	char scratch[2 * SIG_SEGMENT_MAX];
};

/*
 * RFC 8551 2.5.2: SMIMECapabilities in order of preference. The same list as
 * the certificates keygen makes (RFC 4262): AES-GCM first (authEnveloped-data,
 * RFC 5083/5084), then the RFC 8551 2.7 MUST, AES-CBC. Nothing weaker, unlike
 * OpenSSL's default list (DES, RC2-40).
 */
static const int sign_caps[] = {
	NID_aes_256_gcm, NID_aes_128_gcm, NID_aes_256_cbc, NID_aes_128_cbc,
};

/* Canonical octets into the CMS sink and, for multipart/signed, the output. */
static sc_status sign_emit(struct sign_ctx *c, const char *p, size_t n, char *err,
			   size_t errlen)
{
	size_t k = sig_canon(p, n, &c->prev_cr, c->scratch);

	if (k == 0)
		return SC_OK;
	if (BIO_write(c->sink, c->scratch, (int)k) != (int)k)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: digest/stream write failed");
	if (c->opaque) {
		if (sig_b64_drain(&c->out, c->mem, 0) != SC_OK)
			return sig_fail(err, errlen, SC_ERR_IO, 0, "sign: write failed");
		return SC_OK;
	}
	if (sig_out_text(&c->out, c->scratch, k) != SC_OK)
		return sig_fail(err, errlen, SC_ERR_IO, 0, "sign: write failed");
	return SC_OK;
}

static int sign_is_delimiter(const struct sign_ctx *c, const char *p, size_t n)
{
	size_t blen = strlen(c->boundary);

	return n >= blen + 2 && p[0] == '-' && p[1] == '-' && !memcmp(p + 2, c->boundary, blen);
}

/* The signed entity: the inner fields, the empty line, the body. */
static sc_status sign_entity(struct sign_ctx *c, char *err, size_t errlen)
{
	size_t nf = sc_mime_header_count(c->hdr);
	const char *p;
	size_t n;
	int bol;
	sc_status rc;

	for (size_t i = 0; i < nf; i++) {
		const struct sc_mime_field *f = sc_mime_header_field(c->hdr, i);

		if (sc_mime_field_is_outer(f, 0))
			continue;
		if (!c->opaque && sign_is_delimiter(c, f->raw, f->raw_len))
			return sig_fail(err, errlen, SC_ERR_INTERNAL, 0,
					"sign: boundary occurs in the message");
		SC_TRY(sign_emit(c, f->raw, f->raw_len, err, errlen));
		/* the last field of a message without body or final newline */
		if (!sig_field_ends_line(f))
			SC_TRY(sign_emit(c, "\r\n", 2, err, errlen));
	}
	SC_TRY(sign_emit(c, "\r\n", 2, err, errlen));
	while ((rc = sig_in_segment(&c->in, &p, &n, &bol)) == SC_OK) {
		if (!c->opaque && bol && sign_is_delimiter(c, p, n))
			return sig_fail(err, errlen, SC_ERR_INTERNAL, 0,
					"sign: boundary occurs in the message");
		SC_TRY(sign_emit(c, p, n, err, errlen));
	}
	if (rc != SC_EOF)
		return sig_fail(err, errlen, rc, 0, "sign: cannot read the message");
	return SC_OK;
}

static sc_status sign_outer_header(struct sign_ctx *c)
{
	size_t nf = sc_mime_header_count(c->hdr);

	for (size_t i = 0; i < nf; i++) {
		const struct sc_mime_field *f = sc_mime_header_field(c->hdr, i);

		if (sc_mime_field_is_outer(f, 0))
			SC_TRY(sig_out_field(&c->out, f));
	}
	return sig_out_line(&c->out, "MIME-Version: 1.0");
}

static sc_status sign_setup(struct sign_ctx *c, EVP_PKEY *pk, const sc_cert *cert,
			    char *err, size_t errlen)
{
	unsigned flags = CMS_PARTIAL | CMS_BINARY | CMS_STREAM | CMS_NOSMIMECAP;
	STACK_OF(X509_ALGOR) *caps = NULL;
	CMS_SignerInfo *si;
	int ok = 1;

	if (!c->opaque)
		flags |= CMS_DETACHED;
	c->cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	if (!c->cms)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: cannot create signed-data");
	/* RFC 8551 2.1: SHA-256 is the MUST for sending; micalg says sha-256. */
	si = CMS_add1_signer(c->cms, c->signer, pk, EVP_sha256(), flags);
	if (!si)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: cannot add the signer");
	/* RFC 8551 2.5: signingTime is added when the signature is made;
	 * SMIMECapabilities (2.5.2) here. */
	for (size_t i = 0; ok && i < sizeof(sign_caps) / sizeof(sign_caps[0]); i++)
		ok = CMS_add_simple_smimecap(&caps, sign_caps[i], -1);
	ok = ok && CMS_add_smimecap(si, caps);
	sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
	if (!ok)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: cannot add SMIMECapabilities");
	/* RFC 8551 3.5.3 / RFC 5652 5.1: the chain goes along so that the
	 * recipient can build the path to its trust anchor. */
	for (size_t i = 1; i < sc_cert_count(cert); i++) {
		X509 *x = sig_cert_x509(cert, i);

		ok = x && CMS_add1_cert(c->cms, x);
		X509_free(x);
		if (!ok)
			return sig_fail(err, errlen, SC_ERR_CRYPTO, 1,
					"sign: cannot add chain certificate %zu", i);
	}
	return SC_OK;
}

static sc_status sign_detached(struct sign_ctx *c, char *err, size_t errlen)
{
	unsigned char rnd[SIGN_BOUNDARY_RANDOM];
	char hex[2 * SIGN_BOUNDARY_RANDOM + 1];
	char line[256];
	int ok;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: no random boundary");
	sc_hex(rnd, sizeof(rnd), hex);
	snprintf(c->boundary, sizeof(c->boundary), "%s%s", SIGN_BOUNDARY_PREFIX, hex);

	c->sink = CMS_dataInit(c->cms, NULL);
	if (!c->sink)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: cannot start the digest");
	SC_TRY(sign_outer_header(c));
	/* RFC 1847 2.1 / RFC 8551 3.5.3.2: protocol and micalg are required. */
	SC_TRY(sig_out_line(&c->out, "Content-Type: multipart/signed;"));
	SC_TRY(sig_out_line(&c->out, "\tprotocol=\"application/pkcs7-signature\";"));
	snprintf(line, sizeof(line), "\tmicalg=sha-256; boundary=\"%s\"", c->boundary);
	SC_TRY(sig_out_line(&c->out, line));
	SC_TRY(sig_out_line(&c->out, ""));
	SC_TRY(sig_out_line(&c->out, "This is an S/MIME signed message."));
	SC_TRY(sig_out_line(&c->out, ""));
	snprintf(line, sizeof(line), "--%s", c->boundary);
	SC_TRY(sig_out_line(&c->out, line));
	SC_TRY(sign_entity(c, err, errlen));

	ok = CMS_dataFinal(c->cms, c->sink);
	sig_free_sink(&c->sink, c->mem);
	if (!ok)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: signing failed");
	/* RFC 2046 5.1.1: the CRLF before a delimiter belongs to the delimiter. */
	SC_TRY(sig_out_line(&c->out, ""));
	SC_TRY(sig_out_line(&c->out, line));
	SC_TRY(sig_out_line(&c->out, "Content-Type: application/pkcs7-signature; name=\"smime.p7s\""));
	SC_TRY(sig_out_line(&c->out, "Content-Transfer-Encoding: base64"));
	SC_TRY(sig_out_line(&c->out,
			    "Content-Disposition: attachment; filename=\"smime.p7s\""));
	SC_TRY(sig_out_line(&c->out, ""));
	c->mem = BIO_new(BIO_s_mem());
	if (!c->mem || !i2d_CMS_bio(c->mem, c->cms))
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: cannot encode the signature");
	SC_TRY(sig_b64_drain(&c->out, c->mem, 1));
	SC_TRY(sig_out_line(&c->out, ""));
	snprintf(line, sizeof(line), "--%s--", c->boundary);
	return sig_out_line(&c->out, line);
}

static sc_status sign_opaque(struct sign_ctx *c, char *err, size_t errlen)
{
	SC_TRY(sign_outer_header(c));
	/* RFC 8551 3.5.2 */
	SC_TRY(sig_out_line(&c->out, "Content-Type: application/pkcs7-mime; "
				     "smime-type=signed-data; name=\"smime.p7m\""));
	SC_TRY(sig_out_line(&c->out, "Content-Transfer-Encoding: base64"));
	SC_TRY(sig_out_line(&c->out,
			    "Content-Disposition: attachment; filename=\"smime.p7m\""));
	SC_TRY(sig_out_line(&c->out, ""));
	c->mem = BIO_new(BIO_s_mem());
	if (!c->mem)
		return SC_ERR_NOMEM;
	/* BIO_new_CMS() writes BER with indefinite lengths as the content comes:
	 * the eContent never sits in memory as a whole. */
	c->sink = BIO_new_CMS(c->mem, c->cms);
	if (!c->sink)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: cannot start the stream");
	SC_TRY(sign_entity(c, err, errlen));
	if (BIO_flush(c->sink) != 1)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "sign: signing failed");
	sig_free_sink(&c->sink, c->mem);
	return sig_b64_drain(&c->out, c->mem, 1);
}

static sc_status sign_check_key(const sc_key *key, const sc_cert *cert, char *err,
			       size_t errlen)
{
	EVP_PKEY *pk = key_evp(key);
	int id = EVP_PKEY_get_base_id(pk);

	if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"sign: %s signatures (RFC 8419) are not supported by OpenSSL 3.0 CMS",
				id == EVP_PKEY_ED25519 ? "Ed25519" : "Ed448");
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_RSA_PSS && id != EVP_PKEY_EC)
		return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
				"sign: key type %s is not supported (RSA or EC only)",
				OBJ_nid2sn(id));
	if (!sc_key_matches(key, cert))
		return sig_fail(err, errlen, SC_ERR_MISMATCH, 0,
				"sign: the key does not belong to the certificate");
	return SC_OK;
}

sc_status sc_smime_sign(int in_fd, int out_fd, const sc_key *key, const sc_cert *cert,
			int opaque, unsigned flags, char *err, size_t errlen)
{
	struct sign_ctx *c;
	EVP_PKEY *pk = key_evp(key);
	sc_status rc;

	if (err && errlen)
		err[0] = '\0';
	if (!pk || !cert || in_fd < 0 || out_fd < 0)
		return sig_fail(err, errlen, SC_ERR_ARG, 0, "sign: key, certificate and files needed");
	c = calloc(1, sizeof(*c));
	if (!c)
		return SC_ERR_NOMEM;
	c->opaque = opaque;
	sig_out_init(&c->out, out_fd, (flags & SC_SMIME_OUT_LF) != 0);
	rc = sig_in_init(&c->in, in_fd);
	if (rc != SC_OK)
		goto out;
	c->signer = sig_cert_x509(cert, 0);
	if (!c->signer) {
		rc = sig_fail(err, errlen, SC_ERR_SYNTAX, 1, "sign: unreadable certificate");
		goto out;
	}
	rc = sign_check_key(key, cert, err, errlen);
	if (rc != SC_OK)
		goto out;
	rc = sig_read_header(&c->in, &c->hdr, &c->block);
	if (rc != SC_OK) {
		rc = sig_fail(err, errlen, rc, 0, "sign: message header: %s", sc_strerror(rc));
		goto out;
	}
	rc = sign_setup(c, pk, cert, err, errlen);
	if (rc == SC_OK)
		rc = opaque ? sign_opaque(c, err, errlen) : sign_detached(c, err, errlen);
	if (rc == SC_OK)
		rc = sig_out_flush(&c->out);
	if (rc == SC_ERR_IO && err && errlen && !err[0])
		sig_fail(err, errlen, rc, 0, "sign: write failed");
out:
	sig_free_sink(&c->sink, c->mem);
	BIO_free(c->mem);
	CMS_ContentInfo_free(c->cms);
	X509_free(c->signer);
	sc_mime_header_free(c->hdr);
	free(c->block);
	sig_in_fini(&c->in);
	OPENSSL_cleanse(c->scratch, sizeof(c->scratch));
	free(c);
	return rc;
}
