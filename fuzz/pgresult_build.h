/*
 * pgresult_build.h - for the fuzz targets of the PostgreSQL row decoders
 * (pgrow_fuzz.c, queuerow_fuzz.c): a result set as a hostile or broken database
 * could send it, built from fuzz input with libpq's own PGresult constructors.
 * Header-only (static inline) because each fuzz/<name>_fuzz.c is built alone, with
 * replay_main.c or libFuzzer, never with another fuzz source.
 *
 * Input from @p off on: rows, each column a big-endian u16 length (0xffff =
 * NULL) and that many bytes (cut at the end of the input), until the input ends
 * (at most @p max_rows rows). Columns are binary (format 1), variable length,
 * named "a", "b", ...
 */
#ifndef SC_FUZZ_PGRESULT_BUILD_H
#define SC_FUZZ_PGRESULT_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <libpq-fe.h>

#define FZ_PG_MAXCOLS 16

/* The PGresult (PQclear() it), or NULL when libpq refused to build it (out of
 * memory, or more than FZ_PG_MAXCOLS columns): nothing to decode then. */
static inline PGresult *fz_pgresult_build(const uint8_t *data, size_t size, size_t off,
					  int ncols, int max_rows)
{
	static char names[FZ_PG_MAXCOLS][2] = { "a", "b", "c", "d", "e", "f", "g", "h",
						"i", "j", "k", "l", "m", "n", "o", "p" };
	PGresAttDesc attrs[FZ_PG_MAXCOLS];
	PGresult *res;
	int nrows = 0;

	if (ncols < 0 || ncols > FZ_PG_MAXCOLS)
		return NULL;
	res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	if (!res)
		return NULL;
	memset(attrs, 0, sizeof(attrs));
	for (int c = 0; c < ncols; c++) {
		attrs[c].name = names[c];
		attrs[c].format = 1;
		attrs[c].typlen = -1;
		attrs[c].atttypmod = -1;
	}
	if (!PQsetResultAttrs(res, ncols, attrs))
		goto fail;
	while (off < size && nrows < max_rows) {
		for (int c = 0; c < ncols; c++) {
			size_t len;

			if (size - off < 2)
				return res;
			len = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
			if (len == 0xffff) {
				if (!PQsetvalue(res, nrows, c, NULL, -1))
					goto fail;
				continue;
			}
			if (len > size - off)
				len = size - off;
			/* PQsetvalue copies: the decoder reads libpq's buffers */
			if (!PQsetvalue(res, nrows, c, (char *)(data + off), (int)len))
				goto fail;
			off += len;
		}
		nrows++;
	}
	return res;
fail:
	PQclear(res);
	return NULL;
}

#endif
