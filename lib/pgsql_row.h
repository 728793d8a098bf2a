/*
 * pgsql_row.h - decoding the rows that the pgsql: repository's reads return
 * (lib/repo_pgsql.c), internal to libsmtpcert. Every read selects, in binary
 * format and in this column order, one row per chain certificate of an entry
 * (or one row with NULL ordinality when its chain is empty):
 *	addr text, fingerprint bytea, leaf bytea, not_before int8, not_after int8,
 *	added int8, ordinality int8, chain certificate bytea
 * ordered by addr, fingerprint, ordinality. The database is not trusted: every
 * length and NULL is checked, so any PGresult is safe (fuzz/pgrow_fuzz.c).
 */
#ifndef SC_PGSQL_ROW_H
#define SC_PGSQL_ROW_H

#include <stdint.h>
#include <libpq-fe.h>

#include "smtpcert/repo.h"

enum sc_pgrow_col {
	SC_PGROW_ADDR,
	SC_PGROW_FP,
	SC_PGROW_LEAF,
	SC_PGROW_NB,
	SC_PGROW_NA,
	SC_PGROW_ADDED,
	SC_PGROW_ORD,
	SC_PGROW_DER,
	SC_PGROW_NCOLS
};

/* One decoded entry: pointers into the PGresult, and the leaf parsed again for
 * its issuer and serial (the CRL check), which also proves that the row holds
 * the certificate its fingerprint names. Valid until the PGresult is cleared
 * and sc_cert_free(leaf) is called (leaf is NULL after a failed decode). */
struct sc_pgrow_entry {
	struct sc_repo_entry e;
	sc_cert *leaf;
};

/**
 * Decode the rows [*@p row, next entry) into @p out. *@p row is advanced past
 * the entry even when it is corrupt (to the end when @p res is not shaped as
 * above).
 * @return 0, or -1 for a corrupt entry (bad lengths, NULLs, a leaf that does
 *         not parse or does not match its fingerprint, a gap in the chain, more
 *         than SC_CHAIN_MAX certificates).
 */
int sc_pgrow_decode(const PGresult *res, int *row, struct sc_pgrow_entry *out);

/** A binary int8 value. @return 0, or -1 when NULL or not 8 bytes. */
int sc_pgrow_int8(const PGresult *res, int row, int col, int64_t *out);

#endif
