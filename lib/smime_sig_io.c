/*
 * smime_sig_io.c - streaming helpers of S/MIME signing and verification (see
 * smime_sig_int.h): a bounded reader handing out line segments, a writer that
 * converts line ends, CRLF canonicalisation, the header block read, Content-Type
 * parameters, base64 output of CMS structures.
 *
 * Owns the buffers of its reader and writer, nothing global: runs in the CLI and
 * on the daemon's worker threads alike.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "smtpcert/base64.h"
#include "smime_sig_int.h"

/* Room for the largest header block plus one segment, so that the header is
 * parsed in place and a body segment never needs a second buffer. */
#define SIG_IN_CAP (SC_MIME_HEADER_MAX + SIG_SEGMENT_MAX)

/* RFC 2045 6.8: encoded lines at most 76 characters; 57 octets make 76. */
#define SIG_B64_GROUP 57

sc_status sig_fail(char *err, size_t errlen, sc_status st, int ossl, const char *fmt, ...)
{
	va_list ap;
	size_t used;
	unsigned long e;

	if (!err || !errlen) {
		ERR_clear_error();
		return st;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	e = ossl ? ERR_peek_last_error() : 0;
	used = strlen(err);
	if (e && used < errlen) {
		const char *r = ERR_reason_error_string(e);
		char tmp[256];

		if (!r) {
			ERR_error_string_n(e, tmp, sizeof tmp);
			r = tmp;
		}
		snprintf(err + used, errlen - used, " (%s)", r);
	}
	ERR_clear_error();
	return st;
}

sc_status sig_in_init(struct sig_in *in, int fd)
{
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->bol = 1;
	in->cap = SIG_IN_CAP;
	in->buf = malloc(in->cap);
	return in->buf ? SC_OK : SC_ERR_NOMEM;
}

void sig_in_fini(struct sig_in *in)
{
	free(in->buf);
	in->buf = NULL;
}

/* Read more input after compacting; sets eof at the end of the file. */
static sc_status sig_in_fill(struct sig_in *in)
{
	ssize_t r;

	if (in->eof)
		return SC_OK;
	if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	if (in->end == in->cap)
		return SC_OK;
	do {
		r = read(in->fd, in->buf + in->end, in->cap - in->end);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return SC_ERR_IO;
	if (r == 0)
		in->eof = 1;
	in->end += (size_t)r;
	in->total += (unsigned long long)r;
	return SC_OK;
}

sc_status sig_in_peek(struct sig_in *in, const char **p, size_t *n)
{
	while (!in->eof && in->end - in->start < 64)
		SC_TRY(sig_in_fill(in));
	*p = in->buf + in->start;
	*n = in->end - in->start;
	return SC_OK;
}

sc_status sig_in_segment(struct sig_in *in, const char **p, size_t *n, int *bol)
{
	size_t scanned = 0;

	for (;;) {
		size_t avail = in->end - in->start;
		size_t lim = avail < SIG_SEGMENT_MAX ? avail : SIG_SEGMENT_MAX;
		const char *lf = memchr(in->buf + in->start + scanned, '\n', lim - scanned);
		size_t len;

		if (lf)
			len = (size_t)(lf - (in->buf + in->start)) + 1;
		else if (avail >= SIG_SEGMENT_MAX || (in->eof && avail > 0))
			len = lim;
		else if (in->eof)
			return SC_EOF;
		else {
			scanned = lim;
			SC_TRY(sig_in_fill(in));
			continue;
		}
		*p = in->buf + in->start;
		*n = len;
		*bol = in->bol;
		in->bol = (*p)[len - 1] == '\n';
		in->start += len;
		return SC_OK;
	}
}

sc_status sig_read_header(struct sig_in *in, sc_mime_header **hdr, char **block)
{
	sc_mime_header *h = NULL;
	size_t used = 0;
	sc_status rc;
	char *copy;

	*hdr = NULL;
	*block = NULL;
	for (;;) {
		size_t avail = in->end - in->start;

		rc = sc_mime_header_parse(in->buf + in->start, avail, in->eof, &h, &used);
		if (rc != SC_AGAIN)
			break;
		if (avail >= SC_MIME_HEADER_MAX)
			return SC_ERR_TOO_LONG;
		SC_TRY(sig_in_fill(in));
	}
	if (rc != SC_OK)
		return rc;
	sc_mime_header_free(h);
	/* The reader's buffer moves on; the caller keeps the fields, so they get
	 * their own copy of the block. */
	copy = malloc(used ? used : 1);
	if (!copy)
		return SC_ERR_NOMEM;
	memcpy(copy, in->buf + in->start, used);
	rc = sc_mime_header_parse(copy, used, 1, &h, &used);
	if (rc != SC_OK) {
		free(copy);
		return rc;
	}
	in->start += used;
	*hdr = h;
	*block = copy;
	return SC_OK;
}

void sig_out_init(struct sig_out *o, int fd, int lf)
{
	o->fd = fd;
	o->lf = lf;
	o->prev_cr = 0;
	o->n = 0;
}

sc_status sig_out_flush(struct sig_out *o)
{
	size_t off = 0;

	while (off < o->n) {
		ssize_t w = write(o->fd, o->buf + off, o->n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SC_ERR_IO;
		off += (size_t)w;
	}
	o->n = 0;
	return SC_OK;
}

static sc_status sig_out_byte(struct sig_out *o, char c)
{
	if (o->n == sizeof(o->buf))
		SC_TRY(sig_out_flush(o));
	o->buf[o->n++] = c;
	return SC_OK;
}

sc_status sig_out_raw(struct sig_out *o, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		size_t room = sizeof(o->buf) - o->n;
		size_t k = n < room ? n : room;

		memcpy(o->buf + o->n, s, k);
		o->n += k;
		s += k;
		n -= k;
		if (o->n == sizeof(o->buf))
			SC_TRY(sig_out_flush(o));
	}
	return SC_OK;
}

sc_status sig_out_text(struct sig_out *o, const void *p, size_t n)
{
	const char *s = p;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (o->lf) {
			/* CRLF -> LF; a CR is held until we know what follows it. */
			if (o->prev_cr && c != '\n')
				SC_TRY(sig_out_byte(o, '\r'));
			o->prev_cr = c == '\r';
			if (c != '\r')
				SC_TRY(sig_out_byte(o, c));
		} else {
			if (c == '\n' && !o->prev_cr)
				SC_TRY(sig_out_byte(o, '\r'));
			o->prev_cr = c == '\r';
			SC_TRY(sig_out_byte(o, c));
		}
	}
	return SC_OK;
}

sc_status sig_out_line(struct sig_out *o, const char *s)
{
	SC_TRY(sig_out_text(o, s, strlen(s)));
	return sig_out_text(o, "\n", 1);
}

void sig_free_sink(BIO **sink, BIO *mem)
{
	BIO *b = *sink;

	while (b && b != mem) {
		BIO *next = BIO_pop(b);

		BIO_free(b);
		b = next;
	}
	*sink = NULL;
}

int sig_field_ends_line(const struct sc_mime_field *f)
{
	return f->raw_len > 0 && f->raw[f->raw_len - 1] == '\n';
}

sc_status sig_out_field(struct sig_out *o, const struct sc_mime_field *f)
{
	SC_TRY(sig_out_text(o, f->raw, f->raw_len));
	return sig_field_ends_line(f) ? SC_OK : sig_out_text(o, "\n", 1);
}

size_t sig_canon(const char *p, size_t n, int *prev_cr, char *dst)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && !*prev_cr)
			dst[k++] = '\r';
		dst[k++] = p[i];
		*prev_cr = p[i] == '\r';
	}
	return k;
}

static const char *skip_cfws(const char *s)
{
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s != '(')
			return s;
		/* RFC 5322 3.2.2 comment, nested, with quoted-pairs */
		int depth = 0;

		do {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')')
				depth--;
			s++;
		} while (*s && depth > 0);
	}
}

/* RFC 2045 5.1 token characters */
static int is_token(char c)
{
	return (unsigned char)c > ' ' && (unsigned char)c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

sc_status sig_ct_type(const char *value, char *type, size_t size)
{
	const char *s = skip_cfws(value);
	size_t k = 0;

	while (is_token(*s) || *s == '/') {
		if (k + 1 >= size)
			return SC_ERR_TOO_LONG;
		type[k++] = (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
		s++;
	}
	type[k] = '\0';
	return k ? SC_OK : SC_ERR_SYNTAX;
}

sc_status sig_ct_param(const char *value, const char *name, char *out, size_t size)
{
	const char *s = strchr(value, ';');
	size_t nlen = strlen(name);

	while (s && *s == ';') {
		const char *attr;
		size_t alen, k = 0;
		int match;

		s = skip_cfws(s + 1);
		attr = s;
		while (is_token(*s))
			s++;
		alen = (size_t)(s - attr);
		s = skip_cfws(s);
		if (*s != '=')
			return SC_ERR_SYNTAX;
		s = skip_cfws(s + 1);
		match = alen == nlen && !strncasecmp(attr, name, nlen);
		if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && s[1])
					s++;
				if (match) {
					if (k + 1 >= size)
						return SC_ERR_TOO_LONG;
					out[k++] = *s;
				}
			}
			if (*s != '"')
				return SC_ERR_SYNTAX;
			s++;
		} else {
			for (; is_token(*s); s++) {
				if (match) {
					if (k + 1 >= size)
						return SC_ERR_TOO_LONG;
					out[k++] = *s;
				}
			}
		}
		if (match) {
			out[k] = '\0';
			return SC_OK;
		}
		s = skip_cfws(s);
	}
	return SC_ERR_NOT_FOUND;
}

sc_status sig_field(const sc_mime_header *h, const char *name, char *buf, size_t size)
{
	const struct sc_mime_field *f = sc_mime_header_find(h, name, 0);

	if (!size)
		return SC_ERR_ARG;
	buf[0] = '\0';
	if (!f)
		return SC_OK;
	return sc_mime_unfold(f, buf, size);
}

sc_status sig_b64_drain(struct sig_out *o, BIO *mem, int final)
{
	unsigned char in[SIG_B64_GROUP * 64];
	char line[SC_BASE64_LEN(SIG_B64_GROUP) + 1];

	for (;;) {
		size_t pending = (size_t)BIO_ctrl_pending(mem);
		size_t take = pending < sizeof(in) ? pending : sizeof(in);
		int r;

		if (!final)
			take -= take % SIG_B64_GROUP;
		if (take == 0)
			return SC_OK;
		r = BIO_read(mem, in, (int)take);
		if (r <= 0 || (size_t)r != take)
			return SC_ERR_IO;
		for (size_t off = 0; off < take; off += SIG_B64_GROUP) {
			size_t k = take - off < SIG_B64_GROUP ? take - off : SIG_B64_GROUP;

			if (sc_base64_encode(in + off, k, line, sizeof(line), NULL) != SC_OK)
				return SC_ERR_INTERNAL;
			SC_TRY(sig_out_line(o, line));
		}
	}
}

X509 *sig_cert_x509(const sc_cert *c, size_t i)
{
	const uint8_t *der;
	size_t len;

	if (sc_cert_der(c, i, &der, &len) != SC_OK || len > SC_CERT_INPUT_MAX)
		return NULL;
	return d2i_X509(NULL, &der, (long)len);
}
