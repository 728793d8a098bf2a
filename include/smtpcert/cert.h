/*
 * smtpcert/cert.h - X.509 certificate intake and inspection.
 *
 * An sc_cert is a leaf certificate plus the chain certificates that came with it,
 * in the order given (leaf first, then toward the root). Input may be PEM (one or
 * more CERTIFICATE or TRUSTED CERTIFICATE blocks, RFC 7468) or DER (one certificate,
 * or several concatenated). Email addresses come from the subjectAltName rfc822Name
 * entries, RFC 8398/9598 SmtpUTF8Mailbox otherNames (1.3.6.1.5.5.7.8.9), and the
 * subject's emailAddress attribute (RFC 8550 section 3).
 *
 * Ownership: sc_cert_parse() returns a new object that the caller frees with
 * sc_cert_free(); pointers returned by accessors live as long as the object.
 */
#ifndef SMTPCERT_CERT_H
#define SMTPCERT_CERT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "status.h"
#include "addr.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most certificates in one input (leaf + chain). */
#define SC_CHAIN_MAX 8
/** Largest input sc_cert_parse() accepts (a PEM file or a CERC upload). */
#define SC_CERT_INPUT_MAX (64 * 1024)
/** Most email addresses taken from one certificate. */
#define SC_CERT_EMAILS_MAX 16

typedef struct sc_cert sc_cert;

/**
 * Parse PEM or DER (detected from the content: a first octet 0x30 means DER).
 * DER: certificates back to back, nothing else (trailing bytes are an error).
 * PEM: CERTIFICATE and TRUSTED CERTIFICATE blocks are read (the OpenSSL trust data
 * is dropped); other blocks are skipped, but a block whose label ends in
 * "PRIVATE KEY" refuses the whole input with SC_ERR_SYNTAX, so that a private key
 * is never stored or published. A leaf with two subjectAltName extensions or an
 * undecodable one is SC_ERR_SYNTAX (its addresses would be ambiguous).
 * @return SC_OK; SC_ERR_NOT_FOUND (no certificate in the input); SC_ERR_SYNTAX /
 *         SC_ERR_ENCODING (malformed); SC_ERR_TOO_LONG (over SC_CERT_INPUT_MAX);
 *         SC_ERR_TOO_MANY (over SC_CHAIN_MAX); SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status sc_cert_parse(const void *data, size_t len, sc_cert **out);

/** Read and parse a file (same rules as sc_cert_parse; SC_ERR_IO if unreadable). */
SC_MUST_CHECK sc_status sc_cert_load_file(const char *path, sc_cert **out);

void sc_cert_free(sc_cert *c);

/** @return number of certificates: 1 (leaf) + chain length. */
size_t sc_cert_count(const sc_cert *c);

/** DER of certificate @p i (0 = leaf). @return SC_OK or SC_ERR_ARG when out of range. */
SC_MUST_CHECK sc_status sc_cert_der(const sc_cert *c, size_t i, const uint8_t **der,
				    size_t *len);

/**
 * Email addresses of the leaf, de-duplicated by lookup key, SAN entries first (in
 * SAN order), then subject emailAddress attributes. At most SC_CERT_EMAILS_MAX are
 * kept. Skipped: entries that do not parse as mailboxes, rfc822Name/emailAddress
 * values with control or 8-bit octets (IA5String, 7-bit only), SmtpUTF8Mailbox
 * values that are not UTF8String or whose domain is not all-ASCII (RFC 9598
 * section 3 requires A-labels there).
 * @return how many were written to @p out (at most @p max).
 */
size_t sc_cert_emails(const sc_cert *c, struct sc_addr *out, size_t max);

/** @return non-zero when one of the leaf's email addresses equals @p a. */
int sc_cert_has_email(const sc_cert *c, const struct sc_addr *a);

/** Validity window of the leaf as seconds since the epoch (UTC). */
int64_t sc_cert_not_before(const sc_cert *c);
int64_t sc_cert_not_after(const sc_cert *c);

/** @return SC_OK, SC_ERR_EXPIRED or SC_ERR_NOT_YET_VALID for the leaf at @p now. */
SC_MUST_CHECK sc_status sc_cert_check_time(const sc_cert *c, time_t now);

/** SHA-256 of the leaf's DER. */
void sc_cert_fingerprint(const sc_cert *c, uint8_t out[32]);

/** Leaf subject / issuer as an RFC 2253 string in UTF-8 (control characters
 *  escaped), truncated to fit without splitting a character, NUL-terminated. */
void sc_cert_subject(const sc_cert *c, char *buf, size_t size);
void sc_cert_issuer(const sc_cert *c, char *buf, size_t size);

/** Leaf serial number as upper-case hex pairs like `openssl x509 -serial` ("-"
 *  first for a negative serial), NUL-terminated, truncated to whole pairs. */
void sc_cert_serial_hex(const sc_cert *c, char *buf, size_t size);

/**
 * Raw fields the repository stores beside the DER so that lookups need not parse it:
 * the DER encoding of the leaf's issuer Name and the content octets of its serial
 * INTEGER (RFC 5280 4.1.2.2), as minimal DER: a negative serial (some broken CAs)
 * keeps its two's-complement form, so it never equals a positive one; CRL entries
 * are keyed the same way. Serials over 64 octets are refused at parse time
 * (SC_ERR_SYNTAX). Valid as long as @p c.
 */
void sc_cert_issuer_der(const sc_cert *c, const uint8_t **der, size_t *len);
void sc_cert_serial_raw(const sc_cert *c, const uint8_t **der, size_t *len);

/** Lower-case hex of @p n bytes into @p out (2n + 1 bytes). */
void sc_hex(const uint8_t *in, size_t n, char *out);

#ifdef __cplusplus
}
#endif
#endif
