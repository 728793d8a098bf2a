/*
 * record_fuzz.c - fuzz target for the repository record decoder (lib/record.c):
 * arbitrary bytes must decode or be refused without reading outside the input,
 * and whatever decodes must re-encode to the same bytes (the format has exactly
 * one encoding per entry).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_repo_entry e;
	uint8_t *copy, *again;
	size_t n;

	/* An exact-size copy, so a sanitizer sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (sc_record_decode(copy, size, &e) == SC_OK) {
		for (size_t i = 0; i < e.n_der; i++)
			if (e.der[i] < copy || e.der[i] + e.der_len[i] > copy + size)
				abort();
		again = malloc(size);
		if (!again || sc_record_encode(&e, again, size, &n) != SC_OK || n != size ||
		    memcmp(again, copy, size))
			abort();
		free(again);
	}
	free(copy);
	return 0;
}
