/*
 * queue_pgrow.c - decoding the review queue's rows from PostgreSQL (binary
 * results of SC_QPG_COLS, queue_pgrow.h): integers by width, text bounded by
 * its field and refused when it does not fit, ids and fingerprints checked,
 * the certificates parsed and matched against the row's fingerprint. No state;
 * runs wherever lib/queue_pgsql.c runs (daemon workers, smtpcert admin).
 */
#include <stdint.h>
#include <string.h>

#include "queue_int.h"
#include "queue_pgrow.h"

/* A bigint column of a binary result (network byte order). */
static sc_status col_int(const PGresult *r, int row, int col, int64_t *out)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	uint64_t v = 0;
	int len = PQgetlength(r, row, col);

	if (PQgetisnull(r, row, col) || (len != 8 && len != 2))
		return SC_ERR_SYNTAX;
	for (int i = 0; i < len; i++)
		v = v << 8 | p[i];
	*out = len == 2 ? (int64_t)(int16_t)(uint16_t)v : (int64_t)v;
	return SC_OK;
}

/* A text column into a field: a value that does not fit is refused, not cut
 * (rows come from this program; anything else was written by hand). */
sc_status sc_queue_pg_text(const PGresult *r, int row, int col, char *dst, size_t size)
{
	int len = PQgetlength(r, row, col);
	const char *p = PQgetvalue(r, row, col);

	if (PQgetisnull(r, row, col) || memchr(p, '\0', (size_t)len))
		return SC_ERR_SYNTAX;
	if ((size_t)len >= size)
		return SC_ERR_TOO_LONG;
	/* libpq NUL-terminates every value, binary ones too */
	sc_queue_copy_text(dst, size, p);
	return SC_OK;
}

sc_status sc_queue_pg_row(const PGresult *r, int row, struct sc_submission *s)
{
	int64_t state;

	memset(s, 0, sizeof *s);
	/* out-of-range columns would read as "" from libpq: refuse the shape */
	SC_ENSURE(r && row >= 0 && row < PQntuples(r) && PQnfields(r) >= SC_QPG_NCOLS,
		  SC_ERR_SYNTAX);
	SC_TRY(sc_queue_pg_text(r, row, 0, s->id, sizeof s->id));
	SC_TRY(col_int(r, row, 1, &state));
	SC_TRY(sc_queue_pg_text(r, row, 2, s->address, sizeof s->address));
	SC_TRY(sc_queue_pg_text(r, row, 3, s->auth_user, sizeof s->auth_user));
	SC_TRY(sc_queue_pg_text(r, row, 4, s->client, sizeof s->client));
	SC_TRY(col_int(r, row, 5, &s->received));
	SC_TRY(col_int(r, row, 6, &s->decided));
	SC_TRY(sc_queue_pg_text(r, row, 7, s->fingerprint, sizeof s->fingerprint));
	SC_TRY(sc_queue_pg_text(r, row, 8, s->subject, sizeof s->subject));
	SC_TRY(sc_queue_pg_text(r, row, 9, s->issuer, sizeof s->issuer));
	SC_TRY(col_int(r, row, 10, &s->not_before));
	SC_TRY(col_int(r, row, 11, &s->not_after));
	SC_TRY(sc_queue_pg_text(r, row, 12, s->reason, sizeof s->reason));
	SC_ENSURE(sc_queue_id_valid(s->id) && sc_queue_lower_hex(s->fingerprint, 64) &&
		  s->fingerprint[64] == '\0', SC_ERR_SYNTAX);
	SC_ENSURE(state == SC_SUB_PENDING || state == SC_SUB_ACCEPTED ||
		  state == SC_SUB_REJECTED, SC_ERR_SYNTAX);
	s->state = (enum sc_submission_state)state;
	return SC_OK;
}

sc_status sc_queue_pg_row_cert(const PGresult *r, int row, int col,
			      const struct sc_submission *s, sc_cert **out)
{
	int len = PQgetlength(r, row, col);
	sc_cert *c = NULL;

	SC_ENSURE(r && row >= 0 && row < PQntuples(r) && col >= 0 && col < PQnfields(r),
		  SC_ERR_SYNTAX);
	SC_ENSURE(!PQgetisnull(r, row, col) && len > 0, SC_ERR_SYNTAX);
	SC_ENSURE((size_t)len <= SC_CERT_INPUT_MAX, SC_ERR_TOO_LONG);
	SC_TRY(sc_cert_parse(PQgetvalue(r, row, col), (size_t)len, &c));
	return sc_queue_cert_match(s, c, out);
}
