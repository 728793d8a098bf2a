/*
 * record.c - encoder and zero-copy decoder of the repository's binary record (the
 * format is described in record.h). Used by lib/repo_lmdb.c in every process that
 * opens an lmdb: repository: the daemon decodes on each lookup, the admin CLI
 * encodes on import. No allocation, no state.
 */
#include <string.h>

#include "record.h"

/* A read cursor over the record: every get checks the remaining length first. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static int rd_take(struct rd *r, size_t n, const uint8_t **out)
{
	if (n > r->left)
		return 0;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return 1;
}

static int rd_u8(struct rd *r, unsigned *v)
{
	const uint8_t *p;

	if (!rd_take(r, 1, &p))
		return 0;
	*v = p[0];
	return 1;
}

static int rd_u16(struct rd *r, size_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 2, &p))
		return 0;
	*v = (size_t)p[0] << 8 | p[1];
	return 1;
}

static int rd_u32(struct rd *r, size_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 4, &p))
		return 0;
	*v = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	return 1;
}

static int rd_i64(struct rd *r, int64_t *v)
{
	const uint8_t *p;
	uint64_t u = 0;

	if (!rd_take(r, 8, &p))
		return 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	/* Two's complement by definition; memcpy avoids implementation-defined casts. */
	memcpy(v, &u, sizeof *v);
	return 1;
}

sc_status sc_record_decode(const uint8_t *buf, size_t len, struct sc_repo_entry *e)
{
	struct rd r = { buf, len };
	const uint8_t *p;
	unsigned magic, version, n;
	size_t flags;

	SC_ENSURE_ARG(e);
	SC_ENSURE(buf != NULL || len == 0, SC_ERR_ARG);
	SC_ENSURE(rd_u8(&r, &magic) && rd_u8(&r, &version), SC_ERR_SYNTAX);
	SC_ENSURE(magic == SC_RECORD_MAGIC, SC_ERR_SYNTAX);
	SC_ENSURE(version == SC_RECORD_VERSION, SC_ERR_UNSUPPORTED);
	SC_ENSURE(rd_u16(&r, &flags), SC_ERR_SYNTAX);
	SC_ENSURE(flags == 0, SC_ERR_UNSUPPORTED);
	SC_ENSURE(rd_i64(&r, &e->added) && rd_i64(&r, &e->not_before) &&
		  rd_i64(&r, &e->not_after), SC_ERR_SYNTAX);
	SC_ENSURE(rd_take(&r, 32, &p), SC_ERR_SYNTAX);
	memcpy(e->fingerprint, p, 32);

	SC_ENSURE(rd_u16(&r, &e->issuer_len) && e->issuer_len > 0 &&
		  rd_take(&r, e->issuer_len, &e->issuer), SC_ERR_SYNTAX);
	SC_ENSURE(rd_u16(&r, &e->serial_len) && e->serial_len > 0 &&
		  rd_take(&r, e->serial_len, &e->serial), SC_ERR_SYNTAX);

	SC_ENSURE(rd_u8(&r, &n), SC_ERR_SYNTAX);
	SC_ENSURE(n > 0, SC_ERR_SYNTAX);
	SC_ENSURE(n <= SC_CHAIN_MAX, SC_ERR_TOO_MANY);
	e->n_der = n;
	for (unsigned i = 0; i < n; i++) {
		size_t dl;

		SC_ENSURE(rd_u32(&r, &dl) && dl > 0, SC_ERR_SYNTAX);
		SC_ENSURE(dl <= SC_CERT_INPUT_MAX, SC_ERR_TOO_LONG);
		SC_ENSURE(rd_take(&r, dl, &e->der[i]), SC_ERR_SYNTAX);
		e->der_len[i] = dl;
	}
	/* Trailing bytes mean a writer and reader disagree on the format: refuse. */
	SC_ENSURE(r.left == 0, SC_ERR_SYNTAX);
	return SC_OK;
}

size_t sc_record_size(const struct sc_repo_entry *e)
{
	size_t n;

	if (!e || e->n_der == 0 || e->n_der > SC_CHAIN_MAX || e->issuer_len == 0 ||
	    e->issuer_len > SC_RECORD_FIELD_MAX || e->serial_len == 0 ||
	    e->serial_len > SC_RECORD_FIELD_MAX)
		return 0;
	n = SC_RECORD_HEADER_LEN + 2 + e->issuer_len + 2 + e->serial_len + 1;
	for (size_t i = 0; i < e->n_der; i++) {
		if (e->der_len[i] == 0 || e->der_len[i] > SC_CERT_INPUT_MAX)
			return 0;
		n += 4 + e->der_len[i];
	}
	return n;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
	return p + bytes;
}

static uint8_t *put_i64(uint8_t *p, int64_t v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof u);
	return put_be(p, u, 8);
}

sc_status sc_record_encode(const struct sc_repo_entry *e, uint8_t *out, size_t size,
			   size_t *out_len)
{
	size_t need;
	uint8_t *p = out;

	SC_ENSURE_ARG(e);
	SC_ENSURE_ARG(out);
	SC_ENSURE(e->n_der > 0 && e->n_der <= SC_CHAIN_MAX, SC_ERR_ARG);
	SC_ENSURE(e->issuer && e->serial, SC_ERR_ARG);
	need = sc_record_size(e);
	SC_ENSURE(need != 0, SC_ERR_TOO_LONG);
	SC_ENSURE(need <= size, SC_ERR_TOO_LONG);

	*p++ = SC_RECORD_MAGIC;
	*p++ = SC_RECORD_VERSION;
	p = put_be(p, 0, 2);
	p = put_i64(p, e->added);
	p = put_i64(p, e->not_before);
	p = put_i64(p, e->not_after);
	memcpy(p, e->fingerprint, 32);
	p += 32;
	p = put_be(p, e->issuer_len, 2);
	memcpy(p, e->issuer, e->issuer_len);
	p += e->issuer_len;
	p = put_be(p, e->serial_len, 2);
	memcpy(p, e->serial, e->serial_len);
	p += e->serial_len;
	*p++ = (uint8_t)e->n_der;
	for (size_t i = 0; i < e->n_der; i++) {
		SC_ENSURE(e->der[i] != NULL, SC_ERR_ARG);
		p = put_be(p, e->der_len[i], 4);
		memcpy(p, e->der[i], e->der_len[i]);
		p += e->der_len[i];
	}
	if (out_len)
		*out_len = (size_t)(p - out);
	return SC_OK;
}
