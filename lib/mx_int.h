/*
 * mx_int.h - private to lib/mx.c and its tests: the DNS answer parser behind
 * sc_mx_lookup(), separate so tests can feed it hand-built answers.
 */
#ifndef SMTPCERT_MX_INT_H
#define SMTPCERT_MX_INT_H

#include <stddef.h>
#include "smtpcert/smtpcert.h"

/*
 * Parse a DNS response to an MX query for @p domain into @p hosts (sorted by
 * preference; equal preferences keep answer order unless @p shuffle).
 * @return SC_OK (*n may be 0: no MX records), SC_ERR_NOT_FOUND (null MX),
 *         SC_ERR_SYNTAX (malformed answer).
 */
sc_status mx_parse_answer(const unsigned char *answer, size_t len,
			  char hosts[][SC_DOMAIN_MAX + 1], size_t max, size_t *n, int shuffle,
			  char *err, size_t errlen);

#endif
