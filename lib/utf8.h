/*
 * utf8.h - strict UTF-8 validation (RFC 3629), internal to libsmtpcert.
 *
 * Shared by the address parser (RFC 6531 local parts and U-labels) and any other
 * lib/ module that must reject malformed UTF-8 before trusting it.
 */
#ifndef SC_UTF8_H
#define SC_UTF8_H

#include <stddef.h>

/**
 * Length of the valid UTF-8 sequence starting at @p s (at most @p len bytes
 * available). RFC 3629 section 4: no overlong forms, no surrogates (U+D800..DFFF),
 * nothing above U+10FFFF.
 * @return 1..4, or 0 when the bytes at @p s are not a valid sequence (including a
 *         sequence truncated by @p len). @p len == 0 returns 0.
 */
size_t sc_utf8_seq(const unsigned char *s, size_t len);

/** @return non-zero when all @p len bytes of @p s are valid UTF-8 (NUL allowed). */
int sc_utf8_valid(const char *s, size_t len);

#endif
