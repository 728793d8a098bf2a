/*
 * base64_int.h - the group encoder behind sc_base64_encode(), for the PEM
 * encoder in lib/pem.c, which may let it read ahead inside the DER it walks.
 * Internal to libsmtpcert.
 */
#ifndef SC_BASE64_INT_H
#define SC_BASE64_INT_H

#include <stddef.h>
#include <stdint.h>

/**
 * Encode the whole 3-octet groups of @p in[0..n) (@p n a multiple of 3) into
 * @p out (4 * n / 3 characters, no NUL). @p avail >= @p n octets of @p in may be
 * read: with more than @p n the vector path covers the last groups too.
 */
void sc_b64_encode_groups(const uint8_t *in, size_t n, size_t avail, char *out);

#endif
