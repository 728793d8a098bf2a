/*
 * testcert.h - in-process test PKI for the unit tests (library sc_testlib).
 *
 * Tests never commit certificates: they generate keys, CA and leaf certificates and
 * CRLs at run time with OpenSSL through these helpers, so nothing expires in the
 * repository. Test code only: it may include OpenSSL headers, and every helper
 * aborts the test program with a message on an OpenSSL or system failure (a broken
 * generator is a broken test, not a case to handle), so no return value needs
 * checking.
 *
 * Ownership: tc_key_new() keys are freed with tc_key_free(); tc_key_shared() keys
 * belong to the library (never free them). X509 * results are freed with X509_free().
 * Buffers returned through char ** / uint8_t ** are malloc'ed and freed with free();
 * PEM buffers are also NUL-terminated (the length excludes the NUL).
 *
 * Typical use:
 *	tc_key *cak = tc_key_shared(TC_P256), *k = tc_key_shared(TC_P256);
 *	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Test CA", .is_ca = 1 },
 *			       cak, NULL, NULL);
 *	X509 *leaf = tc_cert_new(&(struct tc_cert_opts){ .cn = "Alice",
 *				 .emails = { "alice@example.test" },
 *				 .eku = TC_EKU_EMAIL_PROTECTION }, k, ca, cak);
 *	char *pem; size_t len;
 *	tc_cert_pem(leaf, &pem, &len);
 */
#ifndef SC_TESTCERT_H
#define SC_TESTCERT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* TC_ED25519 keys can be certified but not sign a certificate here (tc_cert_new
 * signs with SHA-256); P-224 is for "curve too small" cases. */
enum tc_keytype { TC_RSA2048, TC_RSA3072, TC_P256, TC_RSA1024, TC_P384, TC_P224, TC_ED25519 };

typedef struct tc_key tc_key;

/** Generate a new key (RSA 3072 takes a second or more: prefer tc_key_shared()). */
tc_key *tc_key_new(enum tc_keytype type);
/** One key per type, generated on first use and kept for the process. Never free it. */
tc_key *tc_key_shared(enum tc_keytype type);
void tc_key_free(tc_key *k);
/** The OpenSSL key (owned by @p k). */
EVP_PKEY *tc_key_pkey(tc_key *k);

/* keyUsage bits (RFC 5280 4.2.1.3); 0 = no keyUsage extension. */
#define TC_KU_DIGITAL_SIGNATURE 0x001
#define TC_KU_NON_REPUDIATION 0x002
#define TC_KU_KEY_ENCIPHERMENT 0x004
#define TC_KU_DATA_ENCIPHERMENT 0x008
#define TC_KU_KEY_AGREEMENT 0x010
#define TC_KU_KEY_CERT_SIGN 0x020
#define TC_KU_CRL_SIGN 0x040

/* extKeyUsage bits (RFC 5280 4.2.1.12); 0 = no extKeyUsage extension. */
#define TC_EKU_EMAIL_PROTECTION 0x1
#define TC_EKU_SERVER_AUTH 0x2
#define TC_EKU_CLIENT_AUTH 0x4

/**
 * What goes into a certificate. Every field is optional (zero = absent / default);
 * designated initialisers keep call sites short.
 */
struct tc_cert_opts {
	const char *cn;                  /**< subject commonName (UTF-8) */
	const char *o;                   /**< subject organizationName */
	const char *subject_email;       /**< subject emailAddress attribute (IA5String) */
	/** name strings as PrintableString instead of UTF8String (for encoding-variant
	 *  tests: same name, different DER) */
	int name_printable;
	const char *emails[8];           /**< SAN rfc822Name entries (IA5String) */
	/** SAN otherName SmtpUTF8Mailbox (1.3.6.1.5.5.7.8.9, RFC 9598), UTF8String */
	const char *utf8_mailboxes[4];
	/** one SAN rfc822Name with exact bytes (may hold NUL or 8-bit octets) */
	const char *raw_email;
	size_t raw_email_len;
	/** one SAN SmtpUTF8Mailbox with exact bytes (e.g. invalid UTF-8) */
	const char *raw_utf8_mailbox;
	size_t raw_utf8_mailbox_len;
	const char *dns_names[4];        /**< SAN dNSName entries */
	const char *ip;                  /**< SAN iPAddress, "127.0.0.1" or "::1" */
	/** notBefore = now + offset seconds; 0 means one hour ago */
	long not_before_offset;
	/** notAfter = now + offset seconds; 0 means 30 days from now */
	long not_after_offset;
	/** absolute times (epoch seconds) overriding the offsets when non-zero, e.g.
	 *  253402300799 for 99991231235959Z (RFC 5280 4.1.2.5: no expiration) */
	int64_t not_before_abs;
	int64_t not_after_abs;
	int is_ca;                       /**< basicConstraints CA:TRUE (else CA:FALSE) */
	long serial;                     /**< 0 = random positive 128-bit serial */
	const char *serial_hex;          /**< serial as hex (overrides serial), e.g. 20 octets */
	unsigned key_usage;              /**< TC_KU_* bits */
	unsigned eku;                    /**< TC_EKU_* bits */
};

/**
 * Create and sign a certificate.
 * @param subject_key key certified (its public half)
 * @param issuer issuing CA certificate, or NULL for self-signed
 * @param issuer_key key signing; NULL together with @p issuer == NULL means
 *        @p subject_key signs (self-signed)
 * @return a new X509 (X509_free()), never NULL.
 */
X509 *tc_cert_new(const struct tc_cert_opts *o, tc_key *subject_key, X509 *issuer,
		  tc_key *issuer_key);

/** PEM ("CERTIFICATE") of one certificate; malloc'ed, NUL-terminated. */
void tc_cert_pem(X509 *x, char **out, size_t *len);
/** PEM of several certificates concatenated in the given order (leaf first). */
void tc_chain_pem(X509 *const *certs, size_t n, char **out, size_t *len);
/**
 * A parsed email certificate for @p email (emailProtection, key @p k) issued by
 * a fresh CA named @p ca_cn (shared P-256 key), with that CA as its chain when
 * @p chain: the submission the queue tests store. Aborts on failure.
 * @return a new sc_cert (sc_cert_free()).
 */
struct sc_cert *tc_email_cert(const char *ca_cn, const char *cn, const char *email,
			      tc_key *k, int chain);
/** DER of one certificate; malloc'ed. */
void tc_cert_der(X509 *x, uint8_t **out, size_t *len);
/** Unencrypted PKCS#8 PEM ("PRIVATE KEY"); malloc'ed, NUL-terminated. */
void tc_key_pem(tc_key *k, char **out, size_t *len);

/** What goes into a CRL (all optional). */
struct tc_crl_opts {
	const long *serials;             /**< revoked serial numbers */
	size_t nserials;
	const char *const *serial_hex;   /**< more revoked serials as hex (any length) */
	size_t nserial_hex;
	long last_update_offset;         /**< thisUpdate = now + offset; 0 = one hour ago */
	long next_update_offset;         /**< nextUpdate = now + offset; 0 = 7 days ahead */
	long crl_number;                 /**< cRLNumber; 0 = 1 */
	/** CRLReason (RFC 5280 5.3.1) per serials[] entry when non-NULL; -1 = none */
	const int *reasons;
	int delta;                       /**< add a deltaCRLIndicator (RFC 5280 5.2.4) */
	int indirect;                    /**< add an issuingDistributionPoint, indirectCRL */
	int unknown_critical;            /**< add a critical extension nobody knows */
	int as_der;                      /**< output DER instead of PEM ("X509 CRL") */
};

/**
 * Create a CRL issued and signed by @p issuer / @p issuer_key (the CRL issuer name is
 * the DER of @p issuer's subject, byte for byte). Output malloc'ed; PEM is
 * NUL-terminated.
 */
void tc_crl_new_ex(X509 *issuer, tc_key *issuer_key, const struct tc_crl_opts *o,
		   char **out, size_t *len);
/** Short form: @p n revoked serials, nextUpdate = now + @p next_update_offset (0 = 7 days). */
void tc_crl_new(X509 *issuer, tc_key *issuer_key, const long *revoked_serials, size_t n,
		long next_update_offset, int as_der, char **out, size_t *len);

/** Write @p len bytes to @p path (created 0600 or truncated). */
void tc_write_file(const char *path, const void *data, size_t len);
/** Read a whole file (malloc'ed, NUL-terminated); returns 0, or -1 if it cannot be read. */
int tc_read_file(const char *path, char **out, size_t *len);

/** Create a fresh directory under $TMPDIR (or /tmp); its path goes into @p buf. */
void tc_tmpdir(char *buf, size_t len);
/** Remove @p path and everything below it (no error if it is missing). */
void tc_rmtree(const char *path);

#ifdef __cplusplus
}
#endif
#endif
