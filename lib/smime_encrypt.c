/*
 * smime_encrypt.c - sc_smime_encrypt() and sc_smime_choose_cipher(): S/MIME
 * version 4 encryption (RFC 8551 3.3) of an RFC 5322 message read from a file
 * descriptor, with OpenSSL's CMS. Also the key-type and SMIMECapabilities
 * helpers of smime_int.h, which decryption shares.
 *
 * The result is application/pkcs7-mime with enveloped-data (AES-256-CBC, the
 * RFC 8551 2.7 MUST) or, when every recipient advertises id-aes256-GCM in its
 * RFC 4262 SMIMECapabilities certificate extension, authEnveloped-data with
 * AES-256-GCM (RFC 5083, RFC 5084). RSA recipients get key transport with
 * RSAES-PKCS1-v1_5 (RFC 8551 2.3: every receiving agent supports it, OAEP is
 * not universal); EC recipients get ECDH key agreement with
 * dhSinglePass-stdDH-sha256kdf-scheme and AES key wrap (RFC 5753 / RFC 8551
 * 2.3), not OpenSSL's SHA-1 KDF default.
 *
 * Header split (docs/protocol.md "S/MIME messages"): the fields
 * sc_mime_field_is_outer() names stay in the outer header; every other field
 * and the body form the encrypted entity, canonicalised to CRLF (RFC 8551
 * 3.1.1). With SC_SMIME_HIDE_SUBJECT the Subject goes inside and the outer one
 * reads "...".
 *
 * Streaming: the entity goes once through OpenSSL's streaming encoder
 * (BIO_new_CMS: BER with indefinite lengths) into a memory BIO that is drained
 * as base64 after every write, so memory stays bounded whatever the message
 * size. Nothing reaches @p out_fd before every recipient has been accepted
 * and the CMS structure is ready, and nothing of the plaintext ever does.
 *
 * Owns nothing after it returns; no global state (CLI, daemon delivery workers).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "smtpcert/smime.h"
#include "smime_int.h"
#include "smime_sig_int.h"

/* Octets of plaintext per encrypted OCTET STRING chunk. */
#define ENC_CHUNK (16 * 1024)

struct enc_ctx {
	struct sig_in in;
	struct sig_out out;
	sc_mime_header *hdr;
	char *block;
	STACK_OF(X509) *certs;
	CMS_ContentInfo *cms;
	BIO *mem;              /* the DER as it is produced */
	BIO *sink;             /* BIO_new_CMS() chain on top of mem */
	int prev_cr;           /* canonicalisation state */
	char scratch[2 * SIG_SEGMENT_MAX];
};

const char *smime_key_unsupported(const EVP_PKEY *pk, int decrypting)
{
	if (!pk)
		return "no public key";
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_EC:
		return NULL;
	case EVP_PKEY_X25519:
		return "X25519 key agreement (RFC 8418) is not supported by OpenSSL 3.0 CMS";
	case EVP_PKEY_X448:
		return "X448 key agreement (RFC 8418) is not supported by OpenSSL 3.0 CMS";
	case EVP_PKEY_ED25519:
		return decrypting ? "an Ed25519 key only signs: decryption is not supported"
				  : "an Ed25519 key only signs: encryption to it is not supported";
	case EVP_PKEY_ED448:
		return decrypting ? "an Ed448 key only signs: decryption is not supported"
				  : "an Ed448 key only signs: encryption to it is not supported";
	case EVP_PKEY_RSA_PSS:
		return "an RSASSA-PSS key only signs: key transport is not supported";
	case EVP_PKEY_DSA:
		return "a DSA key only signs: encryption is not supported";
	default:
		return "this key type is not supported for S/MIME encryption";
	}
}

int smime_cert_has_cap(const X509 *x, int nid)
{
	int idx = X509_get_ext_by_NID(x, NID_SMIMECapabilities, -1);
	const ASN1_OCTET_STRING *os;
	const unsigned char *p;
	STACK_OF(X509_ALGOR) *caps;
	int found = 0;

	if (idx < 0)
		return 0;
	os = X509_EXTENSION_get_data(X509_get_ext(x, idx));
	if (!os)
		return 0;
	/* RFC 4262 / RFC 8551 2.5.2: SEQUENCE OF SMIMECapability, each shaped like
	 * an AlgorithmIdentifier (capabilityID, optional parameters). */
	p = ASN1_STRING_get0_data(os);
	caps = d2i_X509_ALGORS(NULL, &p, ASN1_STRING_length(os));
	for (int i = 0; caps && i < sk_X509_ALGOR_num(caps); i++) {
		const ASN1_OBJECT *obj;

		X509_ALGOR_get0(&obj, NULL, NULL, sk_X509_ALGOR_value(caps, i));
		if (OBJ_obj2nid(obj) == nid)
			found = 1;
	}
	sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
	ERR_clear_error();
	return found;
}

enum sc_smime_cipher sc_smime_choose_cipher(const sc_cert *const *rcpts, size_t n,
					    unsigned flags)
{
	if ((flags & SC_SMIME_CBC_ONLY) || !rcpts || n == 0)
		return SC_SMIME_AES256_CBC;
	for (size_t i = 0; i < n; i++) {
		X509 *x = rcpts[i] ? sig_cert_x509(rcpts[i], 0) : NULL;
		int gcm = x && smime_cert_has_cap(x, NID_aes_256_gcm);

		X509_free(x);
		if (!gcm)
			return SC_SMIME_AES256_CBC;
	}
	return SC_SMIME_AES256_GCM;
}

/* The leaf of every recipient, checked for a key type CMS can encrypt to. */
static sc_status enc_recipients(struct enc_ctx *c, const sc_cert *const *rcpts, size_t n,
				char *err, size_t errlen)
{
	c->certs = sk_X509_new_null();
	if (!c->certs)
		return SC_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		X509 *x = rcpts[i] ? sig_cert_x509(rcpts[i], 0) : NULL;
		const char *why;
		char subj[256];

		if (!x)
			return sig_fail(err, errlen, SC_ERR_SYNTAX, 1,
					"encrypt: recipient %zu: unreadable certificate", i + 1);
		if (!sk_X509_push(c->certs, x)) {
			X509_free(x);
			return SC_ERR_NOMEM;
		}
		why = smime_key_unsupported(X509_get0_pubkey(x), 0);
		if (why) {
			sc_cert_subject(rcpts[i], subj, sizeof(subj));
			return sig_fail(err, errlen, SC_ERR_UNSUPPORTED, 0,
					"encrypt: recipient %s: %s", subj, why);
		}
	}
	return SC_OK;
}

static sc_status enc_setup(struct enc_ctx *c, enum sc_smime_cipher cipher, char *err,
			   size_t errlen)
{
	const unsigned flags = CMS_BINARY | CMS_STREAM | CMS_PARTIAL;
	const EVP_CIPHER *ciph =
		cipher == SC_SMIME_AES256_GCM ? EVP_aes_256_gcm() : EVP_aes_256_cbc();
	BIO *buf;

	c->cms = CMS_encrypt(NULL, NULL, ciph, flags);
	if (!c->cms)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "encrypt: cannot create enveloped-data");
	for (int i = 0; i < sk_X509_num(c->certs); i++) {
		X509 *x = sk_X509_value(c->certs, i);
		CMS_RecipientInfo *ri = CMS_add1_recipient_cert(c->cms, x, flags);

		if (!ri)
			return sig_fail(err, errlen, SC_ERR_CRYPTO, 1,
					"encrypt: cannot add recipient %d", i + 1);
		if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE) {
			/* RFC 8551 2.3 / RFC 5753 7.1.4: SHA-256 in the X9.63 KDF;
			 * OpenSSL would take SHA-1 when not told. */
			EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

			if (!pctx || EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) <= 0)
				return sig_fail(err, errlen, SC_ERR_CRYPTO, 1,
						"encrypt: cannot set the ECDH KDF");
		}
	}
	c->mem = BIO_new(BIO_s_mem());
	if (!c->mem)
		return SC_ERR_NOMEM;
	/* BER with indefinite lengths as the content comes: the encrypted
	 * content never sits in memory as a whole. The content key is made and
	 * wrapped for every recipient here, before any output. */
	c->sink = BIO_new_CMS(c->mem, c->cms);
	if (!c->sink)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "encrypt: cannot start the stream");
	/* Every write to the encoder becomes one OCTET STRING chunk: collect
	 * lines into chunks of ENC_CHUNK octets first. */
	buf = BIO_new(BIO_f_buffer());
	if (!buf || BIO_set_write_buffer_size(buf, ENC_CHUNK) != 1) {
		BIO_free(buf);
		return SC_ERR_NOMEM;
	}
	c->sink = BIO_push(buf, c->sink);
	return SC_OK;
}

static sc_status enc_outer_header(struct enc_ctx *c, enum sc_smime_cipher cipher, int hide)
{
	size_t nf = sc_mime_header_count(c->hdr);

	for (size_t i = 0; i < nf; i++) {
		const struct sc_mime_field *f = sc_mime_header_field(c->hdr, i);

		if (sc_mime_field_is_outer(f, hide)) {
			SC_TRY(sig_out_field(&c->out, f));
		} else if (hide && f->name_len == 7 && !strncasecmp(f->name, "Subject", 7))
			/* The placeholder most header-protecting clients use. */
			SC_TRY(sig_out_line(&c->out, "Subject: ..."));
	}
	SC_TRY(sig_out_line(&c->out, "MIME-Version: 1.0"));
	/* RFC 8551 3.2.2 smime-type, 3.3 the enveloped-data form; RFC 5083 3
	 * names authEnveloped-data. */
	SC_TRY(sig_out_line(&c->out, cipher == SC_SMIME_AES256_GCM
				     ? "Content-Type: application/pkcs7-mime; "
				       "smime-type=authEnveloped-data; name=\"smime.p7m\""
				     : "Content-Type: application/pkcs7-mime; "
				       "smime-type=enveloped-data; name=\"smime.p7m\""));
	SC_TRY(sig_out_line(&c->out, "Content-Transfer-Encoding: base64"));
	SC_TRY(sig_out_line(&c->out, "Content-Disposition: attachment; filename=\"smime.p7m\""));
	return sig_out_line(&c->out, "");
}

/* Canonical octets into the encoder; the ciphertext produced so far out. */
static sc_status enc_emit(struct enc_ctx *c, const char *p, size_t n, char *err, size_t errlen)
{
	size_t k = sig_canon(p, n, &c->prev_cr, c->scratch);

	if (k == 0)
		return SC_OK;
	if (BIO_write(c->sink, c->scratch, (int)k) != (int)k)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "encrypt: stream write failed");
	if (sig_b64_drain(&c->out, c->mem, 0) != SC_OK)
		return sig_fail(err, errlen, SC_ERR_IO, 0, "encrypt: write failed");
	return SC_OK;
}

/* The entity: the inner fields, the empty line, the body. */
static sc_status enc_entity(struct enc_ctx *c, int hide, char *err, size_t errlen)
{
	size_t nf = sc_mime_header_count(c->hdr);
	const char *p;
	size_t n;
	int bol;
	sc_status rc;

	for (size_t i = 0; i < nf; i++) {
		const struct sc_mime_field *f = sc_mime_header_field(c->hdr, i);

		if (sc_mime_field_is_outer(f, hide))
			continue;
		SC_TRY(enc_emit(c, f->raw, f->raw_len, err, errlen));
		if (!sig_field_ends_line(f))
			SC_TRY(enc_emit(c, "\r\n", 2, err, errlen));
	}
	SC_TRY(enc_emit(c, "\r\n", 2, err, errlen));
	while ((rc = sig_in_segment(&c->in, &p, &n, &bol)) == SC_OK)
		SC_TRY(enc_emit(c, p, n, err, errlen));
	if (rc != SC_EOF)
		return sig_fail(err, errlen, rc, 0, "encrypt: cannot read the message");
	if (BIO_flush(c->sink) != 1)
		return sig_fail(err, errlen, SC_ERR_CRYPTO, 1, "encrypt: encryption failed");
	if (sig_b64_drain(&c->out, c->mem, 1) != SC_OK)
		return sig_fail(err, errlen, SC_ERR_IO, 0, "encrypt: write failed");
	return SC_OK;
}

sc_status sc_smime_encrypt(int in_fd, int out_fd, const sc_cert *const *rcpts, size_t n,
			   unsigned flags, char *err, size_t errlen)
{
	struct enc_ctx *c;
	enum sc_smime_cipher cipher;
	int hide = (flags & SC_SMIME_HIDE_SUBJECT) != 0;
	sc_status rc;

	if (err && errlen)
		err[0] = '\0';
	if (!rcpts || n == 0)
		return sig_fail(err, errlen, SC_ERR_ARG, 0, "encrypt: no recipient");
	if (in_fd < 0 || out_fd < 0)
		return sig_fail(err, errlen, SC_ERR_ARG, 0, "encrypt: bad file descriptor");
	c = calloc(1, sizeof(*c));
	if (!c)
		return SC_ERR_NOMEM;
	sig_out_init(&c->out, out_fd, (flags & SC_SMIME_OUT_LF) != 0);
	rc = sig_in_init(&c->in, in_fd);
	if (rc != SC_OK)
		goto out;
	rc = enc_recipients(c, rcpts, n, err, errlen);
	if (rc != SC_OK)
		goto out;
	cipher = sc_smime_choose_cipher(rcpts, n, flags);
	rc = sig_read_header(&c->in, &c->hdr, &c->block);
	if (rc != SC_OK) {
		rc = sig_fail(err, errlen, rc, 0, "encrypt: message header: %s%s", sc_strerror(rc),
			      rc == SC_ERR_SYNTAX ? " (an RFC 5322 message is needed: header "
			      "fields, an empty line, the body)" : "");
		goto out;
	}
	rc = enc_setup(c, cipher, err, errlen);
	if (rc == SC_OK)
		rc = enc_outer_header(c, cipher, hide);
	if (rc == SC_OK)
		rc = enc_entity(c, hide, err, errlen);
	if (rc == SC_OK)
		rc = sig_out_flush(&c->out);
	if (rc == SC_ERR_IO && err && errlen && !err[0])
		sig_fail(err, errlen, rc, 0, "encrypt: write failed");
out:
	if (rc == SC_ERR_NOMEM && err && errlen && !err[0])
		sig_fail(err, errlen, rc, 0, "encrypt: out of memory");
	sig_free_sink(&c->sink, c->mem);
	BIO_free(c->mem);
	CMS_ContentInfo_free(c->cms);
	sk_X509_pop_free(c->certs, X509_free);
	sc_mime_header_free(c->hdr);
	free(c->block);
	sig_in_fini(&c->in);
	OPENSSL_cleanse(c->scratch, sizeof(c->scratch));
	OPENSSL_cleanse(c->out.buf, sizeof(c->out.buf));
	free(c);
	return rc;
}
