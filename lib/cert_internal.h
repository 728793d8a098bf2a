/*
 * cert_internal.h - helpers shared by lib/cert.c, lib/cert_email.c and lib/crl.c.
 * Not installed: only lib/ includes it, and it may name OpenSSL types.
 */
#ifndef SC_CERT_INTERNAL_H
#define SC_CERT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "smtpcert/addr.h"
#include "smtpcert/status.h"

/**
 * Collect the email addresses of @p x (SAN rfc822Name and SmtpUTF8Mailbox entries in
 * SAN order, then subject emailAddress attributes), de-duplicated by lookup key.
 * Entries that are not acceptable mailboxes are skipped; at most @p max are kept.
 * @return SC_OK, SC_ERR_SYNTAX (the subjectAltName extension itself is malformed),
 *         SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status cert_email_collect(const X509 *x, struct sc_addr *out, size_t max,
					   size_t *n);

/** Longest serial number accepted, in content octets (RFC 5280 4.1.2.2 allows 20). */
#define CERT_SERIAL_MAX 64

/**
 * The DER content octets of an INTEGER (RFC 5280 4.1.2.2 serialNumber), re-encoded
 * minimally: a negative serial keeps its two's-complement form, so it can never be
 * confused with a positive one. Certificates and CRL entries both go through this, so
 * their serials compare byte for byte.
 * @param buf at least CERT_SERIAL_MAX bytes
 * @return SC_OK, SC_ERR_TOO_LONG (over CERT_SERIAL_MAX), SC_ERR_ENCODING.
 */
SC_MUST_CHECK sc_status cert_integer_content(const ASN1_INTEGER *ai, uint8_t *buf,
					     size_t *len);

#endif
