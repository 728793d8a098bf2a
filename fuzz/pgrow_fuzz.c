/*
 * pgrow_fuzz.c - fuzz target for the pgsql: repository's row decoder
 * (lib/pgsql_row.c): a result set as a hostile or broken database could send
 * it, built with libpq's own PGresult constructors, must decode or be refused
 * entry by entry, without reading outside a value, and the walk over the rows
 * must always end.
 *
 * Input: byte 0 low bit: 7 columns instead of 8 (a result of the wrong shape);
 * then rows, each column a big-endian u16 length (0xffff = NULL) and that
 * many bytes, until the input ends (at most 64 rows).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char names[SC_PGROW_NCOLS][2] = {"a", "b", "c", "d", "e", "f", "g", "h"};
	PGresAttDesc attrs[SC_PGROW_NCOLS];
	PGresult *res;
	size_t off = 1;
	int ncols, nrows = 0;

	if (size < 1)
		return 0;
	ncols = (data[0] & 1) ? SC_PGROW_NCOLS - 1 : SC_PGROW_NCOLS;
	res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	if (!res)
		return 0;
	memset(attrs, 0, sizeof(attrs));
	for (int c = 0; c < ncols; c++) {
		attrs[c].name = names[c];
		attrs[c].format = 1;
		attrs[c].typlen = -1;
		attrs[c].atttypmod = -1;
	}
	if (!PQsetResultAttrs(res, ncols, attrs))
		goto out;
	while (off < size && nrows < 64) {
		for (int c = 0; c < ncols; c++) {
			size_t len;

			if (size - off < 2)
				goto rows_done;
			len = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
			if (len == 0xffff) {
				if (!PQsetvalue(res, nrows, c, NULL, -1))
					goto out;
				continue;
			}
			if (len > size - off)
				len = size - off;
			/* PQsetvalue copies: the decoder reads libpq's buffers */
			if (!PQsetvalue(res, nrows, c, (char *)(data + off), (int)len))
				goto out;
			off += len;
		}
		nrows++;
	}
rows_done:
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
out:
	PQclear(res);
	return 0;
}
