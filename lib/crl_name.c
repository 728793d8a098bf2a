/*
 * crl_name.c - canonical form of a DER Name for issuer matching between
 * certificates and CRLs (see crl_name.h). Pure function, no allocation, so that
 * sc_crlset_check() can run it for every CERT request.
 *
 * RFC 5280 7.1 compares names attribute by attribute after string preparation
 * (case folding, insignificant space handling), and 4.1.2.4 notes that a CA may
 * re-encode its name (PrintableString vs UTF8String) between certificates and CRLs.
 * The canonical form here follows what OpenSSL's X509_NAME_cmp does: directory
 * strings (Printable, UTF8, IA5, Visible, Numeric, T61 as Latin-1, BMP, Universal)
 * become UTF-8 with ASCII letters lower-cased, leading and trailing white space
 * removed and inner runs collapsed to one space; any other value is kept as its raw
 * tag and octets. Attribute types (OIDs) and RDN order are kept as they are.
 *
 * Output layout, unambiguous because every variable part is length-prefixed:
 *   per RDN 'R'; per attribute 'A' oid-len(2) oid, then either
 *   'S' len(4) canonical-utf8  or  'T' tag len(4) raw-octets.
 */
#include <string.h>

#include "crl_name.h"
#include "utf8.h"

struct tlv {
	uint8_t tag;
	const uint8_t *val;
	size_t len;
};

struct out {
	uint8_t *p;
	size_t size, len;
	int full;
};

/* One DER TLV from [*p, end): low tag numbers only, definite lengths up to 2^32. */
static int tlv_read(const uint8_t **p, const uint8_t *end, struct tlv *t)
{
	const uint8_t *q = *p;
	size_t len;

	if (end - q < 2)
		return -1;
	t->tag = *q++;
	if ((t->tag & 0x1f) == 0x1f)
		return -1;
	len = *q++;
	if (len & 0x80) {
		size_t n = len & 0x7f;

		if (n == 0 || n > 4 || (size_t)(end - q) < n)
			return -1;
		len = 0;
		while (n--)
			len = (len << 8) | *q++;
	}
	if ((size_t)(end - q) < len)
		return -1;
	t->val = q;
	t->len = len;
	*p = q + len;
	return 0;
}

static void out_byte(struct out *o, uint8_t b)
{
	if (o->len < o->size)
		o->p[o->len] = b;
	else
		o->full = 1;
	o->len++;
}

static void out_be(struct out *o, size_t v, int n)
{
	while (n--)
		out_byte(o, (uint8_t)(v >> (8 * n)));
}

static void out_bytes(struct out *o, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out_byte(o, b[i]);
}

static void out_utf8(struct out *o, uint32_t cp)
{
	if (cp < 0x80) {
		out_byte(o, (uint8_t)cp);
	} else if (cp < 0x800) {
		out_byte(o, (uint8_t)(0xc0 | (cp >> 6)));
		out_byte(o, (uint8_t)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		out_byte(o, (uint8_t)(0xe0 | (cp >> 12)));
		out_byte(o, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		out_byte(o, (uint8_t)(0x80 | (cp & 0x3f)));
	} else {
		out_byte(o, (uint8_t)(0xf0 | (cp >> 18)));
		out_byte(o, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
		out_byte(o, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		out_byte(o, (uint8_t)(0x80 | (cp & 0x3f)));
	}
}

/* Octets per character of a directory string type; 0 = not one we fold. */
static int string_unit(uint8_t tag)
{
	switch (tag) {
	case 0x0c: /* UTF8String: variable, handled apart */
	case 0x12: /* NumericString */
	case 0x13: /* PrintableString */
	case 0x14: /* T61String, read as Latin-1 like OpenSSL */
	case 0x16: /* IA5String */
	case 0x1a: /* VisibleString */
		return 1;
	case 0x1e: /* BMPString */
		return 2;
	case 0x1c: /* UniversalString */
		return 4;
	}
	return 0;
}

/* Next code point of @p t at *i; -1 when the string is not well formed. */
static int64_t string_next(const struct tlv *t, size_t *i)
{
	const uint8_t *v = t->val + *i;
	size_t left = t->len - *i;
	uint32_t cp;

	switch (t->tag) {
	case 0x0c: {
		size_t n = sc_utf8_seq(v, left);

		if (n == 0)
			return -1;
		cp = n == 1 ? v[0] : n == 2 ? (uint32_t)(v[0] & 0x1f) : n == 3 ? (uint32_t)(v[0] & 0x0f)
										: (uint32_t)(v[0] & 0x07);
		for (size_t k = 1; k < n; k++)
			cp = (cp << 6) | (v[k] & 0x3f);
		*i += n;
		return cp;
	}
	case 0x14:
		*i += 1;
		return v[0];
	case 0x1e:
		if (left < 2)
			return -1;
		*i += 2;
		cp = (uint32_t)v[0] << 8 | v[1];
		return cp >= 0xd800 && cp <= 0xdfff ? -1 : (int64_t)cp;
	case 0x1c:
		if (left < 4)
			return -1;
		*i += 4;
		cp = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
		return cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? -1 : (int64_t)cp;
	default: /* the 7-bit types */
		if (v[0] >= 0x80)
			return -1;
		*i += 1;
		return v[0];
	}
}

static int is_space(uint32_t cp)
{
	return cp == ' ' || (cp >= '\t' && cp <= '\r');
}

/* Check first, so that a malformed string falls back to the raw form whole. */
static int string_ok(const struct tlv *t)
{
	size_t i = 0;

	if (!string_unit(t->tag))
		return 0;
	while (i < t->len)
		if (string_next(t, &i) < 0)
			return 0;
	return 1;
}

static void canon_value(struct out *o, const struct tlv *t)
{
	size_t i = 0, len_at;
	int pending_space = 0, started = 0;

	if (!string_ok(t)) {
		out_byte(o, 'T');
		out_byte(o, t->tag);
		out_be(o, t->len, 4);
		out_bytes(o, t->val, t->len);
		return;
	}
	out_byte(o, 'S');
	len_at = o->len;
	out_be(o, 0, 4);
	while (i < t->len) {
		uint32_t cp = (uint32_t)string_next(t, &i);

		if (is_space(cp)) {
			pending_space = started;
			continue;
		}
		if (pending_space)
			out_byte(o, ' ');
		pending_space = 0;
		started = 1;
		if (cp >= 'A' && cp <= 'Z')
			cp += 'a' - 'A';
		out_utf8(o, cp);
	}
	if (!o->full) {
		size_t n = o->len - len_at - 4;

		for (int k = 0; k < 4; k++)
			o->p[len_at + (size_t)k] = (uint8_t)(n >> (8 * (3 - k)));
	}
}

size_t crl_name_canon_max(size_t der_len)
{
	/* Per input octet at most 2 output octets (T61 Latin-1 -> UTF-8, BMP 2 -> 3),
	 * plus at most 6 octets of framing per attribute, whose own DER framing is at
	 * least 6 octets: 4x covers all of it with room to spare. */
	return 4 * der_len + 16;
}

sc_status crl_name_canon(const uint8_t *der, size_t len, uint8_t *out, size_t size,
			 size_t *out_len)
{
	struct out o = { out, size, 0, 0 };
	const uint8_t *p = der, *end = der + len;
	struct tlv name, rdn, ava, oid, val;

	if (!der || tlv_read(&p, end, &name) != 0 || name.tag != 0x30 || p != end)
		return SC_ERR_ENCODING;
	p = name.val;
	end = name.val + name.len;
	while (p < end) {
		const uint8_t *q, *qend;

		if (tlv_read(&p, end, &rdn) != 0 || rdn.tag != 0x31 || rdn.len == 0)
			return SC_ERR_ENCODING;
		out_byte(&o, 'R');
		q = rdn.val;
		qend = rdn.val + rdn.len;
		while (q < qend) {
			const uint8_t *r, *rend;

			if (tlv_read(&q, qend, &ava) != 0 || ava.tag != 0x30)
				return SC_ERR_ENCODING;
			r = ava.val;
			rend = ava.val + ava.len;
			if (tlv_read(&r, rend, &oid) != 0 || oid.tag != 0x06 || oid.len == 0 ||
			    oid.len > 0xffff || tlv_read(&r, rend, &val) != 0 || r != rend)
				return SC_ERR_ENCODING;
			out_byte(&o, 'A');
			out_be(&o, oid.len, 2);
			out_bytes(&o, oid.val, oid.len);
			canon_value(&o, &val);
		}
	}
	if (o.full)
		return SC_ERR_TOO_LONG;
	*out_len = o.len;
	return SC_OK;
}
