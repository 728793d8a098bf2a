/*
 * pgrow_fuzz.c - fuzz target for the pgsql: repository's row decoder
 * (lib/pgsql_row.c): a result set as a hostile or broken database could send
 * it, built with libpq's own PGresult constructors (pgresult_build.h), must
 * decode or be refused entry by entry, without reading outside a value, and
 * the walk over the rows must always end.
 *
 * Input: byte 0 low bit: 7 columns instead of 8 (a result of the wrong shape);
 * then rows, each column a big-endian u16 length (0xffff = NULL) and that
 * many bytes, until the input ends (at most 64 rows).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgresult_build.h"
#include "pgsql_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PGresult *res;

	if (size < 1)
		return 0;
	res = fz_pgresult_build(data, size, 1, (data[0] & 1) ? SC_PGROW_NCOLS - 1 : SC_PGROW_NCOLS,
				64);
	if (!res)
		return 0;
	for (int row = 0; row < PQntuples(res);) {
		struct sc_pgrow_entry pe;
		int before = row;

		if (sc_pgrow_decode(res, &row, &pe) == 0) {
			if (pe.e.n_der < 1 || pe.e.n_der > SC_CHAIN_MAX || !pe.leaf ||
			    strlen(pe.e.key) != pe.e.key_len)
				abort();
			for (size_t i = 0; i < pe.e.n_der; i++)
				if (!pe.e.der[i] || pe.e.der_len[i] == 0)
					abort();
		}
		sc_cert_free(pe.leaf);
		if (row <= before)
			abort(); /* the walk must move forward */
	}
	PQclear(res);
	return 0;
}
