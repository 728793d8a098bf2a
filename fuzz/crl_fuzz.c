/*
 * crl_fuzz.c - fuzz target for the CRL set: load the input as a CRL file (PEM or
 * DER) and run checks against it, including the input itself as an issuer name,
 * since certificate issuer names reach sc_crlset_check() from untrusted uploads.
 * Also replayed over fuzz/corpus/crl by ctest (fuzz/crl).
 */
#include <stdint.h>
#include <stdlib.h>

#include "smtpcert/crl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The statuses do not matter here, only that nothing crashes or leaks. */
static void ignore(sc_status st)
{
	(void)st;
}

/* DER of O=fuzz, CN=Fuzz CA: the issuer of the corpus CRLs. */
static const uint8_t fuzz_ca[] = { 0x30, 0x21, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55,
				   0x04, 0x0a, 0x0c, 0x04, 0x66, 0x75, 0x7a, 0x7a, 0x31,
				   0x10, 0x30, 0x0e, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c,
				   0x07, 0x46, 0x75, 0x7a, 0x7a, 0x20, 0x43, 0x41 };
static const uint8_t serial[] = { 0x12, 0x34 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sc_crlset *s = NULL;

	if (sc_crlset_new(&s) != SC_OK)
		return 0;
	ignore(sc_crlset_add_mem(s, data, size));
	ignore(sc_crlset_check(s, fuzz_ca, sizeof fuzz_ca, serial, sizeof serial));
	ignore(sc_crlset_check(s, data, size, data, size < 20 ? size : 20));
	/* a second load of the same input exercises several CRLs per issuer */
	if (sc_crlset_crl_count(s) > 0 && sc_crlset_add_mem(s, data, size) == SC_OK)
		ignore(sc_crlset_check(s, fuzz_ca, sizeof fuzz_ca, serial, sizeof serial));
	sc_crlset_free(s);
	return 0;
}
