/*
 * queue_pgrow.h - the decoder of the review queue's PostgreSQL rows
 * (lib/queue_pgrow.c), internal to libsmtpcert: used by lib/queue_pgsql.c and
 * driven by fuzz/queuerow_fuzz.c. Rows come back in binary format; whoever can
 * write the submissions table (another program, a hostile administrator, a
 * broken replica) controls every byte, so every value is checked here as an
 * entry file is by lib/queue_entry.c.
 */
#ifndef SC_QUEUE_PGROW_H
#define SC_QUEUE_PGROW_H

#include <libpq-fe.h>
#include "smtpcert/smtpcert.h"

/* The metadata columns, in this order, of every SELECT the queue makes. */
#define SC_QPG_COLS "id, state, address, auth_user, client, received, decided, " \
		    "fingerprint, subject, issuer, not_before, not_after, reason"
#define SC_QPG_NCOLS 13

/**
 * Decode row @p row of a binary result whose first SC_QPG_NCOLS columns are
 * SC_QPG_COLS into @p s (zeroed first).
 * @return SC_OK; SC_ERR_SYNTAX (NULL, wrong integer width, embedded NUL, bad id,
 *         fingerprint or state, too few columns or rows); SC_ERR_TOO_LONG (a
 *         value that does not fit its field: refused, not cut).
 */
SC_MUST_CHECK sc_status sc_queue_pg_row(const PGresult *r, int row, struct sc_submission *s);

/**
 * The certificates of row @p row (column @p col: leaf then chain, DER back to
 * back), checked against @p s->fingerprint: an entry is never served with
 * another certificate than the one it names. *@p out is the caller's.
 * @return SC_OK; SC_ERR_MISMATCH; SC_ERR_SYNTAX / SC_ERR_TOO_LONG or the
 *         parser's status (sc_cert_parse) for a bad value.
 */
SC_MUST_CHECK sc_status sc_queue_pg_row_cert(const PGresult *r, int row, int col,
					     const struct sc_submission *s, sc_cert **out);

/** One text column into a field of @p size bytes, as sc_queue_pg_row() checks it. */
SC_MUST_CHECK sc_status sc_queue_pg_text(const PGresult *r, int row, int col, char *dst,
					 size_t size);

#endif
