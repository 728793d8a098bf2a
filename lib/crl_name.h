/*
 * crl_name.h - canonical form of a DER-encoded X.501 Name, so that a certificate's
 * issuer and a CRL's issuer compare equal when they differ only in string type,
 * case or insignificant spaces (RFC 5280 section 7.1). Internal to lib/.
 */
#ifndef SC_CRL_NAME_H
#define SC_CRL_NAME_H

#include <stddef.h>
#include <stdint.h>

#include "smtpcert/status.h"

/** Output size that always suffices for a Name of @p der_len octets. */
size_t crl_name_canon_max(size_t der_len);

/**
 * Write the canonical form of the Name in @p der into @p out. Two Names are the same
 * for revocation purposes when their canonical forms are equal byte for byte.
 * No allocation.
 * @return SC_OK; SC_ERR_ENCODING (not a DER Name, or bytes after it);
 *         SC_ERR_TOO_LONG (@p size too small).
 */
SC_MUST_CHECK sc_status crl_name_canon(const uint8_t *der, size_t len, uint8_t *out,
				       size_t size, size_t *out_len);

#endif
