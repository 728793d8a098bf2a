/*
 * pem.c - RFC 7468 textual encoding (see smtpcert/pem.h).
 *
 * Decoding walks the text line by line: lines outside blocks are explanatory text
 * and ignored (RFC 7468 section 2); a line starting "-----BEGIN " opens a block
 * that must be closed by "-----END <same label>-----". The base64 inside is decoded
 * incrementally into one buffer that grows by doubling up to the caller's max_der,
 * reused for every block and freed before returning. RFC 1421 encapsulated headers
 * ("Proc-Type: 4,ENCRYPTED") are refused: we never handle encrypted PEM.
 *
 * Encoding needs no allocation: sc_pem_encode_framed() writes the whole block
 * in place (sc_pem_encode() is it with "\n" line ends), sc_pem_encode_lines()
 * hands each line to a callback from a fixed line buffer.
 *
 * Pure library code, used by smtpcertd (sending CERT/CERS replies), the
 * certificate module and the CLI.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcert/base64.h"
#include "base64_int.h"
#include "smtpcert/pem.h"

#define PEM_DASHES "-----"
#define PEM_BEGIN "-----BEGIN "
#define PEM_END "-----END "
#define PEM_COLS 64 /* RFC 7468 section 2: lines of exactly 64 characters */
#define PEM_FIRST_ALLOC 1024

/* A view of one line of the input, terminator excluded. */
struct line {
	const char *s;
	size_t n;
};

/* RFC 7468 section 3 eol = CRLF / CR / LF. @return 0 at the end of the text. */
static int next_line(const char *t, size_t len, size_t *pos, struct line *l)
{
	size_t i = *pos;

	if (i >= len)
		return 0;
	l->s = t + i;
	while (i < len && t[i] != '\n' && t[i] != '\r')
		i++;
	l->n = (size_t)(t + i - l->s);
	if (i < len && t[i] == '\r' && i + 1 < len && t[i + 1] == '\n')
		i += 2;
	else if (i < len)
		i++;
	*pos = i;
	return 1;
}

static int starts_with(const struct line *l, const char *prefix)
{
	size_t n = strlen(prefix);

	return l->n >= n && memcmp(l->s, prefix, n) == 0;
}

/* RFC 7468 section 3: labelchar = %x21-2C / %x2E-7E;
 * label = [ labelchar *( ["-" / SP] labelchar ) ]. */
static int label_ok(const char *s, size_t n)
{
	int prev_sep = 1; /* a separator may not come first */

	if (n > SC_PEM_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '-' || c == ' ') {
			if (prev_sep)
				return 0;
			prev_sep = 1;
		} else if (c >= 0x21 && c <= 0x7e) {
			prev_sep = 0;
		} else {
			return 0;
		}
	}
	return n == 0 || !prev_sep;
}

/* Parse "<prefix>LABEL-----" with optional trailing blanks (RFC 7468 section 3,
 * WSP after the boundary) into @p label. */
static sc_status parse_boundary(const struct line *l, const char *prefix,
				char label[SC_PEM_LABEL_MAX + 1])
{
	size_t n = l->n, p = strlen(prefix), ln;

	while (n > 0 && (l->s[n - 1] == ' ' || l->s[n - 1] == '\t'))
		n--;
	if (n < p + 5 || memcmp(l->s + n - 5, PEM_DASHES, 5) != 0)
		return SC_ERR_SYNTAX;
	ln = n - p - 5;
	if (!label_ok(l->s + p, ln))
		return SC_ERR_SYNTAX;
	memcpy(label, l->s + p, ln);
	label[ln] = '\0';
	return SC_OK;
}

/* Decoded bytes of the current block, bounded by max. */
struct dbuf {
	uint8_t *p;
	size_t len, cap, max;
};

static sc_status dbuf_put(struct dbuf *d, const uint8_t *b, size_t n)
{
	if (n > d->max - d->len)
		return SC_ERR_TOO_LONG;
	if (d->len + n > d->cap) {
		size_t ncap = d->cap ? d->cap : PEM_FIRST_ALLOC;
		uint8_t *np;

		while (ncap < d->len + n)
			ncap = ncap > d->max / 2 ? d->max : ncap * 2;
		if (ncap > d->max)
			ncap = d->max;
		np = realloc(d->p, ncap);
		SC_ENSURE(np != NULL, SC_ERR_NOMEM);
		d->p = np;
		d->cap = ncap;
	}
	memcpy(d->p + d->len, b, n);
	d->len += n;
	return SC_OK;
}

/* Incremental base64 (RFC 4648 section 4) state for one block. */
struct b64 {
	uint32_t acc;
	unsigned nd;  /* data characters in the current quantum */
	unsigned np;  /* '=' in the current quantum */
	int done;     /* padding completed: nothing but whitespace may follow */
};

/* Finish a padded quantum. Non-zero pad bits are refused (RFC 4648 3.5) so that
 * every accepted block has exactly one encoding. */
static sc_status b64_flush_padded(struct b64 *st, struct dbuf *d)
{
	uint8_t o[2];

	if (st->nd == 2) {
		if (st->acc & 0xf)
			return SC_ERR_ENCODING;
		o[0] = (uint8_t)(st->acc >> 4);
		SC_TRY(dbuf_put(d, o, 1));
	} else {
		if (st->acc & 0x3)
			return SC_ERR_ENCODING;
		o[0] = (uint8_t)(st->acc >> 10);
		o[1] = (uint8_t)(st->acc >> 2);
		SC_TRY(dbuf_put(d, o, 2));
	}
	st->done = 1;
	return SC_OK;
}

/* Feed one line of base64 text; W (RFC 7468 section 3) between characters. */
static sc_status b64_feed(struct b64 *st, struct dbuf *d, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f')
			continue;
		if (st->done)
			return SC_ERR_ENCODING; /* data after the padding */
		if (c == '=') {
			/* "xx==" or "xxx=": padding only after 2 or 3 data characters. */
			if (st->nd < 2 || st->nd + st->np >= 4)
				return SC_ERR_ENCODING;
			if (++st->np + st->nd == 4)
				SC_TRY(b64_flush_padded(st, d));
			continue;
		}
		v = sc_base64_value(c);
		if (v < 0 || st->np > 0)
			return SC_ERR_ENCODING;
		st->acc = (st->acc << 6) | (uint32_t)v;
		if (++st->nd == 4) {
			uint8_t o[3] = { (uint8_t)(st->acc >> 16), (uint8_t)(st->acc >> 8),
					 (uint8_t)st->acc };

			SC_TRY(dbuf_put(d, o, 3));
			st->acc = 0;
			st->nd = 0;
		}
	}
	return SC_OK;
}

/* Decode the body of one block up to and including its END line. */
static sc_status decode_block(const char *text, size_t len, size_t *pos, const char *label,
			      struct dbuf *d)
{
	struct b64 st = { 0, 0, 0, 0 };
	struct line l;
	char end_label[SC_PEM_LABEL_MAX + 1];

	while (next_line(text, len, pos, &l)) {
		if (starts_with(&l, PEM_END)) {
			SC_TRY(parse_boundary(&l, PEM_END, end_label));
			SC_ENSURE(strcmp(label, end_label) == 0, SC_ERR_SYNTAX);
			/* An unfinished quantum means truncated or unpadded data. */
			SC_ENSURE(st.nd == 0 || st.done, SC_ERR_ENCODING);
			return SC_OK;
		}
		/* A second BEGIN before END: a truncated block, not nesting. */
		SC_ENSURE(!starts_with(&l, PEM_BEGIN), SC_ERR_SYNTAX);
		/* RFC 1421 4.4 headers (Proc-Type:, DEK-Info:): encrypted PEM, refused. */
		SC_ENSURE(memchr(l.s, ':', l.n) == NULL, SC_ERR_SYNTAX);
		SC_TRY(b64_feed(&st, d, l.s, l.n));
	}
	return SC_ERR_SYNTAX; /* BEGIN without END */
}

static sc_status pem_decode_all(const char *text, size_t len, size_t max_blocks,
				sc_pem_block_fn fn, void *arg, size_t *count, struct dbuf *d)
{
	static const uint8_t empty[1];
	size_t pos = 0;
	struct line l;
	char label[SC_PEM_LABEL_MAX + 1];

	while (next_line(text, len, &pos, &l)) {
		sc_status rc;

		if (!starts_with(&l, PEM_BEGIN))
			continue; /* explanatory text, RFC 7468 section 2 */
		SC_ENSURE(*count < max_blocks, SC_ERR_TOO_MANY);
		SC_TRY(parse_boundary(&l, PEM_BEGIN, label));
		d->len = 0;
		SC_TRY(decode_block(text, len, &pos, label, d));
		rc = fn(arg, label, d->p ? d->p : empty, d->len);
		(*count)++;
		if (rc != SC_OK)
			return rc;
	}
	return *count ? SC_OK : SC_ERR_NOT_FOUND;
}

sc_status sc_pem_decode(const char *text, size_t len, size_t max_der, size_t max_blocks,
			sc_pem_block_fn fn, void *arg, size_t *nblocks)
{
	struct dbuf d = { NULL, 0, 0, max_der };
	size_t count = 0;
	sc_status rc;

	if (nblocks)
		*nblocks = 0;
	SC_ENSURE_ARG(fn);
	SC_ENSURE(text != NULL || len == 0, SC_ERR_ARG);
	rc = pem_decode_all(text ? text : "", len, max_blocks, fn, arg, &count, &d);
	free(d.p);
	if (nblocks)
		*nblocks = count;
	return rc;
}

/* One boundary line: prefix, "-----BEGIN " label "-----", eol. */
static size_t framed_boundary(char *out, const char *prefix, size_t pl, const char *word,
			      const char *label, size_t ln, const char *eol, size_t el)
{
	size_t o = 0, wl = strlen(word);

	memcpy(out + o, prefix, pl);
	o += pl;
	memcpy(out + o, word, wl);
	o += wl;
	memcpy(out + o, label, ln);
	o += ln;
	memcpy(out + o, PEM_DASHES, 5);
	o += 5;
	memcpy(out + o, eol, el);
	return o + el;
}

static sc_status emit_boundary(const char *word, const char *label, size_t ln,
			       sc_pem_line_fn fn, void *arg)
{
	char line[sizeof PEM_BEGIN + SC_PEM_LABEL_MAX + sizeof PEM_DASHES];

	return fn(arg, line, framed_boundary(line, "", 0, word, label, ln, "", 0));
}

sc_status sc_pem_encode_lines(const uint8_t *der, size_t der_len, const char *label,
			      sc_pem_line_fn fn, void *arg)
{
	size_t ln;

	SC_ENSURE_ARG(fn);
	SC_ENSURE_ARG(label);
	SC_ENSURE(der != NULL || der_len == 0, SC_ERR_ARG);
	ln = strnlen(label, SC_PEM_LABEL_MAX + 1);
	SC_ENSURE(label_ok(label, ln), SC_ERR_ARG);
	SC_TRY(emit_boundary(PEM_BEGIN, label, ln, fn, arg));
	for (size_t off = 0; off < der_len; off += PEM_COLS / 4 * 3) {
		char line[PEM_COLS + 1];
		size_t chunk = der_len - off, n;

		if (chunk > PEM_COLS / 4 * 3)
			chunk = PEM_COLS / 4 * 3;
		SC_TRY(sc_base64_encode(der + off, chunk, line, sizeof line, &n));
		SC_TRY(fn(arg, line, n));
	}
	return emit_boundary(PEM_END, label, ln, fn, arg);
}

size_t sc_pem_encoded_size(size_t der_len, const char *label)
{
	size_t ln, chars, lines;

	if (!label)
		return 0;
	ln = strnlen(label, SC_PEM_LABEL_MAX + 1);
	if (der_len > SIZE_MAX / 2 - 1024)
		return SIZE_MAX;
	chars = (der_len + 2) / 3 * 4;
	lines = (chars + PEM_COLS - 1) / PEM_COLS;
	return (strlen(PEM_BEGIN) + ln + 5 + 1) + chars + lines +
	       (strlen(PEM_END) + ln + 5 + 1) + 1;
}

size_t sc_pem_framed_size(size_t der_len, const char *label, size_t prefix_len,
			  size_t eol_len)
{
	size_t ln, chars, lines;

	if (!label || prefix_len > 1024 || eol_len > 1024)
		return SIZE_MAX;
	ln = strnlen(label, SC_PEM_LABEL_MAX + 1);
	if (der_len > SIZE_MAX / 4 - 1024 * 1024)
		return SIZE_MAX;
	chars = (der_len + 2) / 3 * 4;
	lines = (chars + PEM_COLS - 1) / PEM_COLS + 2;
	if (lines > (SIZE_MAX / 4) / (prefix_len + eol_len + 1))
		return SIZE_MAX;
	return lines * (prefix_len + eol_len) + strlen(PEM_BEGIN) + ln + 5 + chars +
	       strlen(PEM_END) + ln + 5;
}

sc_status sc_pem_encode_framed(const uint8_t *der, size_t der_len, const char *label,
			       const char *prefix, const char *eol, char *out, size_t size,
			       size_t *out_len)
{
	size_t ln, pl, el, need, o;

	SC_ENSURE_ARG(label);
	SC_ENSURE_ARG(prefix);
	SC_ENSURE_ARG(eol);
	SC_ENSURE_ARG(out);
	SC_ENSURE(der != NULL || der_len == 0, SC_ERR_ARG);
	ln = strnlen(label, SC_PEM_LABEL_MAX + 1);
	SC_ENSURE(label_ok(label, ln), SC_ERR_ARG);
	pl = strnlen(prefix, 1025);
	el = strnlen(eol, 1025);
	/* the NUL sc_base64_encode() leaves after a line lands where eol goes */
	SC_ENSURE(el >= 1 && el <= 1024 && pl <= 1024, SC_ERR_ARG);
	need = sc_pem_framed_size(der_len, label, pl, el);
	SC_ENSURE(need != SIZE_MAX && need <= size, SC_ERR_TOO_LONG);
	/* All of the DER's cache lines asked for at once: a certificate of a
	 * large store is seldom cached, and line by line the encoder waited for
	 * each miss in turn (docs/performance.md, sixth round). */
	for (uintptr_t a = (uintptr_t)der & ~(uintptr_t)63; der_len > 0 &&
	     a < (uintptr_t)der + der_len; a += 64)
		__builtin_prefetch((const void *)a);
	o = framed_boundary(out, prefix, pl, PEM_BEGIN, label, ln, eol, el);
	for (size_t off = 0; off < der_len; off += PEM_COLS / 4 * 3) {
		size_t chunk = der_len - off, n;

		if (chunk > PEM_COLS / 4 * 3)
			chunk = PEM_COLS / 4 * 3;
		memcpy(out + o, prefix, pl);
		o += pl;
		if (chunk == PEM_COLS / 4 * 3) {
			/* a whole line: its groups may read ahead into the next
			 * line's octets (the vector path then covers all of it) */
			sc_b64_encode_groups(der + off, chunk, der_len - off, out + o);
			n = PEM_COLS;
		} else {
			/* the last, short line: padding; the NUL it leaves lands
			 * where the eol goes (room checked above) */
			SC_TRY(sc_base64_encode(der + off, chunk, out + o, size - o, &n));
		}
		o += n;
		memcpy(out + o, eol, el);
		o += el;
	}
	o += framed_boundary(out + o, prefix, pl, PEM_END, label, ln, eol, el);
	if (out_len)
		*out_len = o;
	return SC_OK;
}

sc_status sc_pem_encode(const uint8_t *der, size_t der_len, const char *label, char *out,
			size_t size, size_t *out_len)
{
	size_t n = 0;
	sc_status rc;

	SC_ENSURE_ARG(out);
	SC_ENSURE(size > 0, SC_ERR_TOO_LONG);
	/* the framed encoder without prefix, "\n" line ends, room kept for the NUL */
	rc = sc_pem_encode_framed(der, der_len, label, "", "\n", out, size - 1, &n);
	if (rc != SC_OK) {
		out[0] = '\0';
		return rc;
	}
	out[n] = '\0';
	if (out_len)
		*out_len = n;
	return SC_OK;
}
