/*
 * smtpcert/smime.h - S/MIME version 4 (RFC 8551) on RFC 5322 messages, with
 * OpenSSL's CMS: encrypt (enveloped-data, or authEnveloped-data with AES-GCM,
 * RFC 5083/5084), sign (multipart/signed with a detached signature, RFC 1847),
 * decrypt and verify (opaque and detached forms).
 *
 * Messages stream between file descriptors: only the header block (at most
 * SC_MIME_HEADER_MAX) is held in memory, so memory does not grow with message
 * size. The header split is sc_mime_field_is_outer(): routing fields stay in
 * the outer header, the MIME entity (Content-* fields, every other field and
 * the body) is what gets encrypted or signed. Input line ends may be LF or CRLF;
 * the protected entity is canonicalised to CRLF (RFC 8551 3.1.1); output uses
 * CRLF unless SC_SMIME_OUT_LF.
 *
 * Thread-safe: no global state (worker threads of the daemon encrypt at rest).
 */
#ifndef SMTPCERT_SMIME_H
#define SMTPCERT_SMIME_H

#include <stddef.h>
#include "status.h"
#include "cert.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sc_smime_flags {
	SC_SMIME_HIDE_SUBJECT = 1u << 0, /**< Subject goes inside; outside it reads "..." */
	SC_SMIME_CBC_ONLY = 1u << 1,     /**< AES-256-CBC even when all recipients take GCM */
	SC_SMIME_OUT_LF = 1u << 2        /**< write LF line ends (Maildir's local format) */
};

/** Content-encryption algorithm chosen for a recipient set. */
enum sc_smime_cipher {
	SC_SMIME_AES256_CBC = 0, /**< RFC 8551 2.7: MUST; our default */
	SC_SMIME_AES256_GCM      /**< authEnveloped-data; only when every recipient's
				  *  SMIMECapabilities (RFC 4262) lists it */
};

/**
 * The cipher sc_smime_encrypt() would use for @p rcpts (leaf certificates):
 * AES-256-GCM when each of them advertises id-aes256-GCM in SMIMECapabilities
 * and @p flags lacks SC_SMIME_CBC_ONLY, else AES-256-CBC.
 */
enum sc_smime_cipher sc_smime_choose_cipher(const sc_cert *const *rcpts, size_t n,
					    unsigned flags);

/**
 * Encrypt the message read from @p in_fd to every certificate in @p rcpts (the
 * leaf of each; RSA key transport or ECDH key agreement) and write the
 * application/pkcs7-mime message to @p out_fd. The sender's own certificate
 * belongs in @p rcpts when the sent copy must stay readable (the CLI adds it).
 * @return SC_OK; SC_ERR_ARG (no recipient); SC_ERR_UNSUPPORTED (a recipient key
 *         type we cannot encrypt to, e.g. Ed25519); SC_ERR_SYNTAX / SC_ERR_TOO_LONG
 *         (header block); SC_ERR_IO; SC_ERR_CRYPTO. A message goes to @p err.
 */
SC_MUST_CHECK sc_status sc_smime_encrypt(int in_fd, int out_fd, const sc_cert *const *rcpts,
					 size_t n, unsigned flags, char *err, size_t errlen);

/**
 * Sign the message from @p in_fd with @p key and the leaf of @p cert (its chain
 * certificates are included in the signature) and write multipart/signed
 * (protocol="application/pkcs7-signature", micalg from the digest: sha-256) to
 * @p out_fd. With @p opaque, write application/pkcs7-mime signed-data instead.
 * Of @p flags only SC_SMIME_OUT_LF applies (a signature hides nothing, so the
 * Subject stays outside either way).
 * @return SC_OK; SC_ERR_MISMATCH (key does not belong to the certificate);
 *         header errors as above; SC_ERR_IO; SC_ERR_CRYPTO (token errors included).
 */
SC_MUST_CHECK sc_status sc_smime_sign(int in_fd, int out_fd, const sc_key *key,
				      const sc_cert *cert, int opaque, unsigned flags,
				      char *err, size_t errlen);

/**
 * Decrypt the application/pkcs7-mime enveloped-data or authEnveloped-data
 * message from @p in_fd with @p key (for the recipient @p cert) and write the
 * outer header (its Content-* fields removed) followed by the decrypted entity.
 * A bare CMS structure (DER, or PEM "CMS"/"PKCS7") is accepted too; its
 * content is written as it is. Nothing is written unless decryption succeeded.
 * @return SC_OK; SC_ERR_UNSUPPORTED (not an encrypted S/MIME message, or an
 *         algorithm OpenSSL lacks, e.g. X25519: the message says which);
 *         SC_ERR_NOT_FOUND (no RecipientInfo for this certificate);
 *         SC_ERR_MISMATCH (@p key is not the key of @p cert);
 *         SC_ERR_CRYPTO (decryption or GCM tag check failed); SC_ERR_SYNTAX;
 *         SC_ERR_ENCODING (bad base64); SC_ERR_TOO_LONG; SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sc_smime_decrypt(int in_fd, int out_fd, const sc_key *key,
					 const sc_cert *cert, char *err, size_t errlen);

/** Who signed, as sc_smime_verify() found it. */
struct sc_smime_signer {
	char subject[256];
	char email[SC_ADDR_KEY_MAX];   /**< first email of the signer certificate ("" none) */
	char digest[32];               /**< "sha256" ... */
	int chain_verified;            /**< non-zero: the signer chains to a trust anchor */
	/** RFC 8550 3: 1 when an address of the From (or Sender) field is one of
	 *  the signer certificate's; 0 when none is (the caller warns); -1 when
	 *  there is nothing to compare (bare CMS input, no From field). */
	int from_match;
};

/**
 * Verify a multipart/signed or application/pkcs7-mime signed-data message from
 * @p in_fd. The signature must be valid; the signer certificate is checked
 * against @p ca_file (NULL = system store) unless @p no_chain, in which case
 * only the signature is checked and signer->chain_verified says 0. The signed
 * entity is written to @p out_fd (-1: not written), only after it verified,
 * preceded by the outer header's fields other than Content-* (as
 * sc_smime_decrypt() does), so that the output is the message as it was before
 * signing; for a bare CMS input, the content alone.
 * @return SC_OK; SC_ERR_VERIFY (bad signature, or signer not trusted: the
 *         message says which); SC_ERR_UNSUPPORTED (not signed, or an algorithm
 *         OpenSSL lacks, e.g. Ed25519); SC_ERR_SYNTAX; SC_ERR_IO.
 */
SC_MUST_CHECK sc_status sc_smime_verify(int in_fd, int out_fd, const char *ca_file, int no_chain,
					struct sc_smime_signer *signer, char *err,
					size_t errlen);

/**
 * Verify a bare CMS SignedData (DER, or PEM "CMS"/"PKCS7") from @p sig_fd whose
 * content is detached and read from @p content_fd exactly as it is (no line-end
 * canonicalisation), as `openssl cms -verify -binary -content F` does. Checks
 * and results as sc_smime_verify(); the content is written to @p out_fd (-1:
 * not written). sc_smime_verify() itself also takes a bare CMS SignedData with
 * encapsulated content, DER or PEM, besides the two S/MIME forms.
 */
SC_MUST_CHECK sc_status sc_smime_verify_detached(int sig_fd, int content_fd, int out_fd,
						 const char *ca_file, int no_chain,
						 struct sc_smime_signer *signer, char *err,
						 size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
