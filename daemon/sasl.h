/*
 * sasl.h - the pure parts of SMTP AUTH (RFC 4954): strict base64 of the
 * responses (RFC 4648 4) and the PLAIN message (RFC 4616 2). No I/O; used by
 * cmd_auth.c and the unit tests.
 */
#ifndef SMTPCERTD_SASL_H
#define SMTPCERTD_SASL_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/* RFC 4954 4: a response line may be 12288 octets; its decoded form is 3/4. */
#define SASL_B64_MAX 12288
#define SASL_DECODED_MAX (SASL_B64_MAX / 4 * 3)

/**
 * Decode @p len bytes of base64 (padding required, no whitespace) into @p out.
 * "=" alone is the empty response (RFC 4954 4). The result is NUL-terminated
 * (it may also contain NULs: PLAIN's separators).
 * @return SC_OK; SC_ERR_ENCODING (bad alphabet, length or padding);
 *         SC_ERR_TOO_LONG (does not fit @p size with its NUL).
 */
SC_MUST_CHECK sc_status sasl_b64_decode(const char *in, size_t len, char *out, size_t size,
					size_t *outlen);

/**
 * Split a PLAIN message "authzid NUL authcid NUL passwd" (RFC 4616 2) held in
 * @p msg (@p len bytes and a NUL at msg[len], as sasl_b64_decode() leaves it;
 * modified: NULs terminate the parts).
 * @return SC_OK with *@p authcid and *@p passwd pointing into @p msg;
 *         SC_ERR_SYNTAX (not three parts, empty authcid or passwd);
 *         SC_ERR_MISMATCH (an authzid different from authcid: we act for
 *         nobody else).
 */
SC_MUST_CHECK sc_status sasl_plain_split(char *msg, size_t len, const char **authcid,
					 const char **passwd);

#endif
