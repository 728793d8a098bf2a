/*
 * pgsql_row.c - decoding the binary rows of the pgsql: repository's reads
 * into repository entries (lib/pgsql_row.h). Pure: no connection, no state;
 * runs in whatever thread made the query (daemon workers, the CLI).
 */
#include <string.h>

#include "pgsql_row.h"

#define PGROW_FP_LEN 32 /* SHA-256 */

int sc_pgrow_int8(const PGresult *res, int row, int col, int64_t *out)
{
	const uint8_t *p = (const uint8_t *)PQgetvalue(res, row, col);
	uint64_t v = 0;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return -1;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	*out = (int64_t)v;
	return 0;
}

static int pgrow_same_entry(const PGresult *res, int a, int b)
{
	for (int col = SC_PGROW_ADDR; col <= SC_PGROW_FP; col++)
		if (PQgetlength(res, a, col) != PQgetlength(res, b, col) ||
		    memcmp(PQgetvalue(res, a, col), PQgetvalue(res, b, col),
			   (size_t)PQgetlength(res, a, col)))
			return 0;
	return 1;
}

int sc_pgrow_decode(const PGresult *res, int *row, struct sc_pgrow_entry *out)
{
	struct sc_repo_entry *e = &out->e;
	int first = *row, n = PQntuples(res), bad = 0;
	uint8_t fp[PGROW_FP_LEN];
	size_t klen;

	memset(out, 0, sizeof(*out));
	if (first < 0 || first >= n || PQnfields(res) != SC_PGROW_NCOLS) {
		*row = n; /* not our statement's shape: nothing to decode */
		return -1;
	}
	while (*row < n && pgrow_same_entry(res, first, *row))
		(*row)++;
	klen = (size_t)PQgetlength(res, first, SC_PGROW_ADDR);
	e->key = PQgetvalue(res, first, SC_PGROW_ADDR); /* libpq NUL-terminates values */
	e->key_len = klen;
	if (PQgetisnull(res, first, SC_PGROW_ADDR) || klen == 0 || klen >= SC_ADDR_KEY_MAX ||
	    strlen(e->key) != klen || PQgetlength(res, first, SC_PGROW_FP) != PGROW_FP_LEN ||
	    PQgetisnull(res, first, SC_PGROW_LEAF) || PQgetlength(res, first, SC_PGROW_LEAF) == 0 ||
	    sc_pgrow_int8(res, first, SC_PGROW_NB, &e->not_before) ||
	    sc_pgrow_int8(res, first, SC_PGROW_NA, &e->not_after) ||
	    sc_pgrow_int8(res, first, SC_PGROW_ADDED, &e->added))
		return -1;
	memcpy(e->fingerprint, PQgetvalue(res, first, SC_PGROW_FP), PGROW_FP_LEN);
	e->der[0] = (const uint8_t *)PQgetvalue(res, first, SC_PGROW_LEAF);
	e->der_len[0] = (size_t)PQgetlength(res, first, SC_PGROW_LEAF);
	e->n_der = 1;
	/* chain rows: ordinality 1, 2, ... in order; NULL when the chain is empty */
	for (int i = first; i < *row && !PQgetisnull(res, i, SC_PGROW_ORD); i++) {
		int64_t ord;

		if (sc_pgrow_int8(res, i, SC_PGROW_ORD, &ord) || ord != (int64_t)e->n_der ||
		    e->n_der >= SC_CHAIN_MAX || PQgetisnull(res, i, SC_PGROW_DER) ||
		    PQgetlength(res, i, SC_PGROW_DER) == 0) {
			bad = 1; /* e.g. a chain fingerprint missing from chain_certs */
			break;
		}
		e->der[e->n_der] = (const uint8_t *)PQgetvalue(res, i, SC_PGROW_DER);
		e->der_len[e->n_der] = (size_t)PQgetlength(res, i, SC_PGROW_DER);
		e->n_der++;
	}
	if (bad || e->der[0][0] != 0x30 ||
	    sc_cert_parse(e->der[0], e->der_len[0], &out->leaf) != SC_OK)
		return -1;
	sc_cert_fingerprint(out->leaf, fp);
	if (sc_cert_count(out->leaf) != 1 || memcmp(fp, e->fingerprint, PGROW_FP_LEN)) {
		sc_cert_free(out->leaf);
		out->leaf = NULL;
		return -1;
	}
	sc_cert_issuer_der(out->leaf, &e->issuer, &e->issuer_len);
	sc_cert_serial_raw(out->leaf, &e->serial, &e->serial_len);
	return 0;
}
