/*
 * smtpcert/pem.h - RFC 7468 textual encoding: decoding blocks out of arbitrary text
 * and encoding DER into 64-column lines.
 *
 * The decoder is strict about structure (matching BEGIN/END labels, base64 alphabet,
 * padding) and lax about whitespace as RFC 7468 section 3 allows (CRLF or LF, blank
 * lines, trailing spaces, text before and between blocks). It never allocates more
 * than the caller's limit.
 */
#ifndef SMTPCERT_PEM_H
#define SMTPCERT_PEM_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest label accepted, e.g. "TRUSTED CERTIFICATE". */
#define SC_PEM_LABEL_MAX 64

/**
 * Called for each block found. @p label is NUL-terminated; @p der/@p der_len are
 * valid only during the call. Return SC_OK to go on, anything else to stop (it is
 * passed back to the caller of sc_pem_decode()).
 */
typedef sc_status (*sc_pem_block_fn)(void *arg, const char *label, const uint8_t *der,
				     size_t der_len);

/**
 * Decode every PEM block in @p text.
 * @param max_der largest decoded block accepted (SC_ERR_TOO_LONG beyond it)
 * @param max_blocks most blocks accepted (SC_ERR_TOO_MANY beyond it)
 * @param nblocks optional: number of blocks delivered
 * @return SC_OK (zero blocks is SC_ERR_NOT_FOUND), SC_ERR_SYNTAX (BEGIN without END,
 *         label mismatch, bad header line), SC_ERR_ENCODING (bad base64),
 *         SC_ERR_TOO_LONG, SC_ERR_TOO_MANY, SC_ERR_NOMEM, or the callback's status.
 */
SC_MUST_CHECK sc_status sc_pem_decode(const char *text, size_t len, size_t max_der,
				      size_t max_blocks, sc_pem_block_fn fn, void *arg,
				      size_t *nblocks);

/** Called with each output line (no line terminator), valid only during the call. */
typedef sc_status (*sc_pem_line_fn)(void *arg, const char *line, size_t len);

/**
 * Encode @p der as a PEM block, one callback per line: "-----BEGIN label-----",
 * base64 lines of 64 characters, "-----END label-----". No allocation.
 * @return SC_OK or the first non-OK status returned by @p fn.
 */
SC_MUST_CHECK sc_status sc_pem_encode_lines(const uint8_t *der, size_t der_len,
					    const char *label, sc_pem_line_fn fn, void *arg);

/**
 * Encode @p der as a PEM block into @p out with "\n" line ends.
 * @return SC_OK, SC_ERR_TOO_LONG when @p size is too small; *@p out_len (optional)
 *         receives the length written, without the terminating NUL.
 */
SC_MUST_CHECK sc_status sc_pem_encode(const uint8_t *der, size_t der_len, const char *label,
				      char *out, size_t size, size_t *out_len);

/** @return the buffer size sc_pem_encode() needs for @p der_len bytes, NUL included. */
size_t sc_pem_encoded_size(size_t der_len, const char *label);

/**
 * Encode @p der as a PEM block into @p out in one pass, every line (boundaries
 * included) written as @p prefix, the line, @p eol: "250-" and "\r\n" make the
 * block an SMTP multi-line reply's text. No NUL is written. No allocation.
 * @param eol at least one character
 * @return SC_OK, SC_ERR_TOO_LONG when @p size is below sc_pem_framed_size()
 *         (nothing written), SC_ERR_ARG; *@p out_len (optional) the length.
 */
SC_MUST_CHECK sc_status sc_pem_encode_framed(const uint8_t *der, size_t der_len,
					     const char *label, const char *prefix,
					     const char *eol, char *out, size_t size,
					     size_t *out_len);

/** @return the size sc_pem_encode_framed() writes (SIZE_MAX when absurd). */
size_t sc_pem_framed_size(size_t der_len, const char *label, size_t prefix_len,
			  size_t eol_len);

#ifdef __cplusplus
}
#endif
#endif
