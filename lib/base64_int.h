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

/** The group encoders (lib/base64.c), chosen at run time by the CPU's features. */
enum sc_b64_path {
	SC_B64_BEST,  /**< the fastest the CPU has (the default) */
	SC_B64_PAIRS, /**< two table lookups per group, any CPU */
	SC_B64_SSSE3, /**< 12 octets per step, then pairs */
	SC_B64_VBMI,  /**< 48 octets per step (AVX-512 VBMI), then SSSE3, then pairs */
};

/**
 * Make every later encoding use @p path (for the tests, which compare the
 * paths; not thread-safe: call before other threads encode).
 * @return 1, or 0 (nothing changed) when this CPU or build lacks it.
 */
int sc_b64_use(enum sc_b64_path path);

#endif
