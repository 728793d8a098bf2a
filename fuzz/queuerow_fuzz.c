/*
 * queuerow_fuzz.c - fuzz target for the review queue's PostgreSQL row decoder
 * (lib/queue_pgrow.c): a result set as a hostile or broken database could send
 * it, built with libpq's own PGresult constructors (pgresult_build.h), must
 * decode or be refused row by row without reading outside a value; what
 * decodes must be a valid submission (id, fingerprint, state, NUL-terminated
 * UTF-8 fields), and a certificate is only ever returned with the fingerprint
 * its row names.
 *
 * Input: byte 0 low bit: SC_QPG_NCOLS columns only (list's shape) instead of
 * SC_QPG_NCOLS + 1 (get's, with the certificates); bit 1: one column fewer (a
 * result of the wrong shape); then rows, each column a big-endian u16 length
 * (0xffff = NULL) and that many bytes, until the input ends (at most 32 rows).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgresult_build.h"
#include "queue_int.h"
#include "queue_pgrow.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size || !sc_utf8_valid(s, n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PGresult *res;
	int ncols;

	if (size < 1)
		return 0;
	ncols = (data[0] & 1) ? SC_QPG_NCOLS : SC_QPG_NCOLS + 1;
	if (data[0] & 2)
		ncols--;
	res = fz_pgresult_build(data, size, 1, ncols, 32);
	if (!res)
		return 0;
	for (int row = 0; row <= PQntuples(res); row++) { /* one past the end too */
		struct sc_submission s;
		sc_cert *c = NULL;
		uint8_t fp[32];
		char hex[65];

		if (sc_queue_pg_row(res, row, &s) != SC_OK)
			continue;
		if (row >= PQntuples(res) || !sc_queue_id_valid(s.id) ||
		    strlen(s.fingerprint) != 64 || s.state > SC_SUB_REJECTED)
			abort();
		check_text(s.address, sizeof s.address);
		check_text(s.auth_user, sizeof s.auth_user);
		check_text(s.client, sizeof s.client);
		check_text(s.subject, sizeof s.subject);
		check_text(s.issuer, sizeof s.issuer);
		check_text(s.reason, sizeof s.reason);
		if (sc_queue_pg_row_cert(res, row, SC_QPG_NCOLS, &s, &c) != SC_OK)
			continue;
		sc_cert_fingerprint(c, fp);
		sc_hex(fp, 32, hex);
		if (strcmp(hex, s.fingerprint))
			abort();
		sc_cert_free(c);
	}
	PQclear(res);
	return 0;
}
