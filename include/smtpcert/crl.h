/*
 * smtpcert/crl.h - a set of certificate revocation lists (RFC 5280 section 5).
 *
 * The set is loaded once (startup, SIGHUP) from the configured crl_file entries,
 * each PEM (one or more X509 CRL blocks) or DER. Checking a certificate matches the
 * CRL by issuer name (RFC 5280 5.1.2.3 / 7.1 name comparison) and then by serial
 * number. A check is a hash lookup plus a binary search and never allocates, so it
 * may run for every CERT request. An expired CRL (nextUpdate in the past) still
 * revokes what it lists: revocation is never undone by staleness.
 *
 * CRL signatures are not verified (the set holds no CA certificates): crl_file is
 * trusted administrator input. Refused with SC_ERR_UNSUPPORTED and a message: delta
 * CRLs (RFC 5280 5.2.4), indirect CRLs (5.2.5, certificateIssuer entries) and CRLs
 * with other unrecognised critical extensions (5.2). Entries with reason
 * removeFromCRL are ignored; certificateHold entries revoke.
 *
 * Ownership: the set owns everything it loaded; it is immutable once built, so one
 * set may be shared by all sessions and swapped as a whole on reload.
 */
#ifndef SMTPCERT_CRL_H
#define SMTPCERT_CRL_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "cert.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sc_crlset sc_crlset;

/** Largest CRL file (or memory input) accepted. */
#define SC_CRL_INPUT_MAX (64 * 1024 * 1024)

SC_MUST_CHECK sc_status sc_crlset_new(sc_crlset **out);
void sc_crlset_free(sc_crlset *s);

/**
 * Add every CRL in a file.
 * @return SC_OK; SC_ERR_IO (unreadable); SC_ERR_SYNTAX / SC_ERR_ENCODING (not a CRL;
 *         nothing from this file is added); SC_ERR_UNSUPPORTED (delta, indirect or
 *         unknown critical extension; nothing added); SC_ERR_TOO_LONG (over
 *         SC_CRL_INPUT_MAX); SC_ERR_NOMEM. On failure a message naming the file is
 *         written to @p err when non-NULL.
 */
SC_MUST_CHECK sc_status sc_crlset_add_file(sc_crlset *s, const char *path, char *err,
					   size_t errlen);

/** Add CRLs from memory (PEM or DER), same rules as sc_crlset_add_file(). */
SC_MUST_CHECK sc_status sc_crlset_add_mem(sc_crlset *s, const void *data, size_t len);

/** @return number of CRLs and of revoked entries loaded. */
size_t sc_crlset_crl_count(const sc_crlset *s);
size_t sc_crlset_entry_count(const sc_crlset *s);

/**
 * Is (issuer, serial) revoked?
 * @param issuer DER of the certificate's issuer Name
 * @param serial content octets of the certificate's serial INTEGER
 * @return SC_OK (not listed on any CRL of that issuer) or SC_ERR_REVOKED;
 *         SC_ERR_ARG when @p issuer is not a DER Name; SC_ERR_NOMEM only for issuer
 *         names over about 500 octets (shorter ones never allocate).
 */
SC_MUST_CHECK sc_status sc_crlset_check(const sc_crlset *s, const uint8_t *issuer,
					size_t issuer_len, const uint8_t *serial,
					size_t serial_len);

/** Same for a parsed certificate's leaf. A NULL set revokes nothing. */
SC_MUST_CHECK sc_status sc_crlset_check_cert(const sc_crlset *s, const sc_cert *c);

#ifdef __cplusplus
}
#endif
#endif
