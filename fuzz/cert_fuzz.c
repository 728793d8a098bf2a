/*
 * cert_fuzz.c - fuzz target for sc_cert_parse(): any input (PEM or DER) must either
 * fail cleanly or yield an object on which every accessor works. Also replayed
 * over fuzz/corpus/cert by ctest (fuzz/cert).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcert/cert.h"
#include "smtpcert/crl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The statuses do not matter here, only that nothing crashes or leaks. */
static void ignore(sc_status st)
{
	(void)st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_addr emails[SC_CERT_EMAILS_MAX];
	char buf[512], hex[2 * 32 + 1];
	uint8_t fp[32];
	const uint8_t *p;
	sc_crlset *set = NULL;
	sc_cert *c = NULL;
	size_t len, n;

	if (sc_cert_parse(data, size, &c) != SC_OK)
		return 0;
	for (size_t i = 0; i <= sc_cert_count(c); i++)
		if (sc_cert_der(c, i, &p, &len) == SC_OK && len > 0 && p[0] != 0x30)
			abort(); /* stored DER must be a SEQUENCE */
	n = sc_cert_emails(c, emails, SC_CERT_EMAILS_MAX);
	for (size_t i = 0; i < n; i++)
		if (!sc_cert_has_email(c, &emails[i]))
			abort();
	(void)sc_cert_not_before(c);
	(void)sc_cert_not_after(c);
	ignore(sc_cert_check_time(c, 0));
	ignore(sc_cert_check_time(c, (time_t)sc_cert_not_after(c)));
	sc_cert_fingerprint(c, fp);
	sc_hex(fp, sizeof fp, hex);
	sc_cert_subject(c, buf, sizeof buf);
	sc_cert_issuer(c, buf, 7);
	sc_cert_serial_hex(c, buf, sizeof buf);
	sc_cert_issuer_der(c, &p, &len);
	sc_cert_serial_raw(c, &p, &len);
	if (sc_crlset_new(&set) == SC_OK) {
		ignore(sc_crlset_check_cert(set, c));
		sc_crlset_free(set);
	}
	sc_cert_free(c);
	return 0;
}
