/*
 * smtpcert/base64.h - RFC 4648 section 4 base64, the one codec of the project
 * (PEM bodies, SMTP AUTH, RFC 2047 encoded words). Strict on input: no whitespace,
 * length a multiple of 4, '=' only as final padding, zero pad bits (RFC 4648 3.5),
 * so every accepted string has exactly one encoding. No allocation.
 */
#ifndef SMTPCERT_BASE64_H
#define SMTPCERT_BASE64_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Characters sc_base64_encode() writes for @p n bytes (without the NUL). */
#define SC_BASE64_LEN(n) ((((n) + 2) / 3) * 4)

/** Value of one base64 character, or -1 when @p c is not in the alphabet. */
int sc_base64_value(unsigned char c);

/**
 * Encode @p n bytes into @p out, NUL-terminated.
 * @return SC_OK, or SC_ERR_TOO_LONG when @p size < SC_BASE64_LEN(n) + 1 (nothing
 *         written). *@p outlen (optional) receives the length without the NUL.
 */
SC_MUST_CHECK sc_status sc_base64_encode(const void *in, size_t n, char *out, size_t size,
					 size_t *outlen);

/**
 * Decode @p len characters into @p out (at most @p size bytes; not NUL-terminated).
 * @return SC_OK, SC_ERR_ENCODING (not canonical base64), SC_ERR_TOO_LONG (@p out too
 *         small). *@p outlen receives the decoded length.
 */
SC_MUST_CHECK sc_status sc_base64_decode(const char *in, size_t len, void *out, size_t size,
					 size_t *outlen);

#ifdef __cplusplus
}
#endif
#endif
