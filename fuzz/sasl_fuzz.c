/*
 * sasl_fuzz.c - fuzz target for the AUTH response parsers (daemon/sasl.c):
 * arbitrary bytes are decoded as a base64 response (RFC 4648, RFC 4954 4) and,
 * when that succeeds, split as a PLAIN message (RFC 4616 2).
 *
 * Invariants checked: a decoded response fits its bound, is NUL-terminated and
 * re-encodes to the input (the decoder is strict, so the encoding is unique);
 * a successful split yields a non-empty user and password inside the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t sasl_fuzz_encode(const unsigned char *in, size_t len, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? t[v & 63] : '=';
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char msg[SASL_DECODED_MAX + 1];
	static char again[SASL_B64_MAX + 4];
	const char *user, *pass;
	size_t n = 0;

	if (size > SASL_B64_MAX)
		return 0;
	if (sasl_b64_decode((const char *)data, size, msg, sizeof msg, &n) != SC_OK)
		return 0;
	if (n > SASL_DECODED_MAX || msg[n] != '\0')
		abort();
	if (!(size == 1 && data[0] == '=')) {
		size_t m = sasl_fuzz_encode((const unsigned char *)msg, n, again);

		if (m != size || memcmp(again, data, size) != 0)
			abort();
	}
	if (sasl_plain_split(msg, n, &user, &pass) == SC_OK) {
		if (!*user || !*pass || user < msg || pass > msg + n || user > pass)
			abort();
	}
	return 0;
}
