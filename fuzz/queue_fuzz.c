/*
 * queue_fuzz.c - fuzz target for the review-queue entry decoder (lib/queue_entry.c):
 * arbitrary file contents must decode or be refused without reading outside the
 * input; a header that decodes must re-encode to a header that decodes to the same
 * submission; the certificate body is parsed and checked against the header's
 * fingerprint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_submission s, again;
	char *copy, *hdr;
	size_t body, hlen, body2;
	sc_cert *c = NULL;

	if (size > SC_QUEUE_ENTRY_MAX)
		return 0;
	/* An exact-size copy, so a sanitizer sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	/* Header-only decoding (sc_queue_list) accepts what full decoding accepts. */
	if (sc_queue_entry_decode(copy, size, 1, &s, &body) != SC_OK &&
	    sc_queue_entry_decode(copy, size, 0, &s, &body) == SC_OK)
		abort();
	if (sc_queue_entry_decode(copy, size, 0, &s, &body) == SC_OK) {
		if (body > size)
			abort();
		hdr = malloc(SC_QUEUE_HEADER_MAX);
		if (!hdr || sc_queue_entry_header(&s, hdr, SC_QUEUE_HEADER_MAX, &hlen) != SC_OK ||
		    sc_queue_entry_decode(hdr, hlen, 1, &again, &body2) != SC_OK ||
		    body2 != hlen || memcmp(&s, &again, sizeof s))
			abort();
		free(hdr);
		if (sc_queue_entry_cert(&s, copy + body, size - body, &c) == SC_OK)
			sc_cert_free(c);
	}
	free(copy);
	return 0;
}
