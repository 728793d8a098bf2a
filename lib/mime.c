/*
 * mime.c - the header block of an RFC 5322 message (see smtpcert/mime.h):
 * bounded parsing into field views, lookup by name, unfolding, the message
 * kind from the top-level Content-Type, and the split between the outer
 * (routing) header and the protected MIME entity for S/MIME.
 *
 * Owns nothing but the field array of a parsed header; field views point into
 * the caller's block. No global state: used by the CLI (encrypt, sign, send -t),
 * by the daemon's delivery workers (encryption at rest) on any thread.
 * Address lists are in mime_addr.c.
 *
 * Decisions:
 * - Line ends may be CRLF or LF (a local file); a CR not followed by LF stays in
 *   the line. RFC 5322 2.1.1's 998-octet limit is enforced on every line, since
 *   the header is the part a peer controls before anything is checked.
 * - A field name is printable US-ASCII except ':' (RFC 5322 3.6.8); white space
 *   before the colon is tolerated (obs-optional, RFC 5322 4.5.8) and not part of
 *   the name. A continuation line before any field, a line without a colon, an
 *   empty name and a NUL anywhere are SC_ERR_SYNTAX.
 * - MIME-Version is not an outer field: the original goes inside with the
 *   entity, and the S/MIME writers put their own "MIME-Version: 1.0" on the outer
 *   header (RFC 2045 4 wants it at the top level of every MIME message).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpcert/mime.h"

struct sc_mime_header {
	size_t n;
	size_t cap;
	struct sc_mime_field *f;
};

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static sc_status header_add(struct sc_mime_header *h, const struct sc_mime_field *f)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 32;
		struct sc_mime_field *nf;

		if (cap > SC_MIME_FIELDS_MAX)
			cap = SC_MIME_FIELDS_MAX;
		if (h->n >= cap)
			return SC_ERR_TOO_MANY;
		nf = realloc(h->f, cap * sizeof(*nf));
		if (!nf)
			return SC_ERR_NOMEM;
		h->f = nf;
		h->cap = cap;
	}
	h->f[h->n++] = *f;
	return SC_OK;
}

/*
 * Start a field from the line [line, line + len) (without its line end): split
 * "name:value".
 */
static sc_status field_start(const char *line, size_t len, struct sc_mime_field *f)
{
	size_t i = 0, name_end;

	while (i < len && line[i] != ':' && !is_wsp(line[i])) {
		unsigned char c = (unsigned char)line[i];

		if (c < 33 || c > 126)
			return SC_ERR_SYNTAX;
		i++;
	}
	name_end = i;
	while (i < len && is_wsp(line[i]))
		i++;
	if (name_end == 0 || i >= len || line[i] != ':')
		return SC_ERR_SYNTAX;
	f->name = line;
	f->name_len = name_end;
	f->value = line + i + 1;
	f->value_len = len - i - 1;
	return SC_OK;
}

/* Parse into @p h; the caller frees @p h on failure. */
static sc_status header_scan(struct sc_mime_header *h, const char *data, size_t len, int is_all,
			     size_t *consumed)
{
	struct sc_mime_field cur;
	int have = 0;
	size_t pos = 0;

	memset(&cur, 0, sizeof(cur));
	for (;;) {
		const char *nl;
		size_t avail = len - pos, body, end;

		if (pos > SC_MIME_HEADER_MAX)
			return SC_ERR_TOO_LONG;
		if (avail == 0) {
			if (!is_all)
				return len >= SC_MIME_HEADER_MAX ? SC_ERR_TOO_LONG : SC_AGAIN;
			break; /* a message that is all header (RFC 5322 3.5: body optional) */
		}
		nl = memchr(data + pos, '\n', avail);
		if (nl) {
			end = (size_t)(nl - data) + 1;
			body = end - 1 - pos;
			if (body > 0 && data[pos + body - 1] == '\r')
				body--;
		} else {
			end = len;
			body = avail;
			/* Not complete yet: a truncated CRLF is not content. */
			if (!is_all) {
				if (body > SC_MIME_LINE_MAX + 1)
					return SC_ERR_TOO_LONG;
				if (memchr(data + pos, '\0', avail))
					return SC_ERR_SYNTAX;
				return len >= SC_MIME_HEADER_MAX ? SC_ERR_TOO_LONG : SC_AGAIN;
			}
			if (body > 0 && data[pos + body - 1] == '\r')
				body--;
		}
		if (body > SC_MIME_LINE_MAX)
			return SC_ERR_TOO_LONG;
		if (memchr(data + pos, '\0', end - pos))
			return SC_ERR_SYNTAX;
		if (body == 0 && nl) {
			/* The empty line ends the header (RFC 5322 2.1). */
			pos = end;
			break;
		}
		if (body == 0) {
			/* a lone CR at the very end of an all-header message */
			pos = end;
			break;
		}
		if (is_wsp(data[pos])) {
			/* RFC 5322 2.2.3: a folded continuation of the current field. */
			if (!have)
				return SC_ERR_SYNTAX;
			cur.value_len = (size_t)(data + pos + body - cur.value);
			cur.raw_len = end - (size_t)(cur.raw - data);
		} else {
			if (have)
				SC_TRY(header_add(h, &cur));
			SC_TRY(field_start(data + pos, body, &cur));
			cur.raw = data + pos;
			cur.raw_len = end - pos;
			have = 1;
		}
		pos = end;
	}
	if (pos > SC_MIME_HEADER_MAX)
		return SC_ERR_TOO_LONG;
	if (have)
		SC_TRY(header_add(h, &cur));
	*consumed = pos;
	return SC_OK;
}

sc_status sc_mime_header_parse(const char *data, size_t len, int is_all, sc_mime_header **out,
			       size_t *consumed)
{
	struct sc_mime_header *h;
	sc_status rc;
	size_t used = 0;

	SC_ENSURE_ARG(out);
	SC_ENSURE_ARG(consumed);
	SC_ENSURE(data || len == 0, SC_ERR_ARG);
	*out = NULL;
	*consumed = 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return SC_ERR_NOMEM;
	rc = header_scan(h, data ? data : "", len, is_all, &used);
	if (rc != SC_OK) {
		sc_mime_header_free(h);
		return rc;
	}
	*out = h;
	*consumed = used;
	return SC_OK;
}

void sc_mime_header_free(sc_mime_header *h)
{
	if (!h)
		return;
	free(h->f);
	free(h);
}

size_t sc_mime_header_count(const sc_mime_header *h)
{
	return h ? h->n : 0;
}

const struct sc_mime_field *sc_mime_header_field(const sc_mime_header *h, size_t i)
{
	if (!h || i >= h->n)
		return NULL;
	return &h->f[i];
}

static int name_is(const struct sc_mime_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

const struct sc_mime_field *sc_mime_header_find(const sc_mime_header *h, const char *name,
						size_t nth)
{
	size_t i;

	if (!h || !name)
		return NULL;
	for (i = 0; i < h->n; i++) {
		if (name_is(&h->f[i], name) && nth-- == 0)
			return &h->f[i];
	}
	return NULL;
}

sc_status sc_mime_unfold(const struct sc_mime_field *f, char *buf, size_t size)
{
	size_t i, o = 0;
	const char *v;
	size_t n;

	SC_ENSURE_ARG(f);
	SC_ENSURE(buf && size > 0, SC_ERR_ARG);
	v = f->value;
	n = f->value_len;
	/* RFC 5322 2.2.3: unfolding removes each CRLF that precedes WSP. */
	while (n > 0 && (is_wsp(v[0]) || v[0] == '\r' || v[0] == '\n')) {
		v++;
		n--;
	}
	while (n > 0 && (is_wsp(v[n - 1]) || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	for (i = 0; i < n; i++) {
		if (v[i] == '\n' || (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n'))
			continue;
		if (o + 1 >= size) {
			buf[0] = '\0';
			return SC_ERR_TOO_LONG;
		}
		buf[o++] = v[i];
	}
	buf[o] = '\0';
	return SC_OK;
}

/* --- Content-Type (RFC 2045 5.1) ------------------------------------------- */

/* Skip white space, line ends and (nested) comments (RFC 5322 3.2.2 CFWS). */
static size_t skip_cfws(const char *s, size_t n, size_t i)
{
	while (i < n) {
		if (is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n') {
			i++;
		} else if (s[i] == '(') {
			int depth = 0;

			while (i < n) {
				if (s[i] == '\\' && i + 1 < n) {
					i += 2;
					continue;
				}
				if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0) {
					i++;
					break;
				}
				i++;
			}
		} else {
			break;
		}
	}
	return i;
}

/* RFC 2045 5.1 token: any CHAR except SPACE, CTLs and tspecials. */
static int is_token_char(char ch)
{
	unsigned char c = (unsigned char)ch;

	return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

static size_t scan_token(const char *s, size_t n, size_t i)
{
	while (i < n && is_token_char(s[i]))
		i++;
	return i;
}

static int span_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

/*
 * Find parameter @p pname in the parameter list starting at @p i; its value
 * (token, or quoted-string without the quotes and with quoted-pairs still in)
 * goes to *@p val / *@p vlen. @return non-zero when found.
 */
static int ct_param(const char *s, size_t n, size_t i, const char *pname, const char **val,
		    size_t *vlen)
{
	for (;;) {
		size_t ns, ne, vs, ve;

		i = skip_cfws(s, n, i);
		if (i >= n || s[i] != ';')
			return 0;
		i = skip_cfws(s, n, i + 1);
		ns = i;
		ne = scan_token(s, n, i);
		if (ne == ns)
			return 0;
		i = skip_cfws(s, n, ne);
		if (i >= n || s[i] != '=')
			return 0;
		i = skip_cfws(s, n, i + 1);
		if (i < n && s[i] == '"') {
			vs = ++i;
			while (i < n && s[i] != '"')
				i += (s[i] == '\\' && i + 1 < n) ? 2 : 1;
			if (i >= n)
				return 0;
			ve = i++;
		} else {
			vs = i;
			ve = i = scan_token(s, n, i);
		}
		if (span_is(s + ns, ne - ns, pname)) {
			*val = s + vs;
			*vlen = ve - vs;
			return 1;
		}
	}
}

enum sc_mime_kind sc_mime_header_kind(const sc_mime_header *h)
{
	const struct sc_mime_field *f = sc_mime_header_find(h, "Content-Type", 0);
	const char *s, *st = NULL;
	size_t n, i, ts, te, ss, se, stlen = 0;

	if (!f)
		return SC_MIME_PLAIN; /* RFC 2045 5.2: text/plain by default */
	s = f->value;
	n = f->value_len;
	ts = skip_cfws(s, n, 0);
	te = scan_token(s, n, ts);
	i = skip_cfws(s, n, te);
	if (i >= n || s[i] != '/')
		return SC_MIME_PLAIN;
	ss = skip_cfws(s, n, i + 1);
	se = scan_token(s, n, ss);
	if (span_is(s + ts, te - ts, "multipart")) {
		if (span_is(s + ss, se - ss, "encrypted")) /* RFC 1847 2.2 */
			return SC_MIME_ENCRYPTED;
		if (span_is(s + ss, se - ss, "signed")) /* RFC 1847 2.1 */
			return SC_MIME_SIGNED;
		return SC_MIME_PLAIN;
	}
	if (!span_is(s + ts, te - ts, "application") ||
	    !(span_is(s + ss, se - ss, "pkcs7-mime") || span_is(s + ss, se - ss, "x-pkcs7-mime")))
		return SC_MIME_PLAIN;
	/* RFC 8551 3.2.2: smime-type says what the CMS object is; an old sender
	 * may leave it out of an enveloped-data message (RFC 2311 had none). */
	if (!ct_param(s, n, skip_cfws(s, n, se), "smime-type", &st, &stlen))
		return SC_MIME_ENCRYPTED;
	if (span_is(st, stlen, "enveloped-data") || span_is(st, stlen, "authEnveloped-data"))
		return SC_MIME_ENCRYPTED;
	if (span_is(st, stlen, "signed-data"))
		return SC_MIME_SIGNED;
	if (span_is(st, stlen, "compressed-data"))
		return SC_MIME_COMPRESSED;
	return SC_MIME_PLAIN; /* certs-only and unknown types protect nothing */
}

/* --- the S/MIME header split (docs/protocol.md "S/MIME messages") ---------- */

/*
 * Trace (RFC 5322 3.6.7) and routing fields stay readable to the MTAs and the
 * recipient's mail list; the resent-* block (3.6.6) is trace information too.
 */
static const char *const outer_fields[] = {
	"Return-Path", "Received", "From", "Sender", "Reply-To", "To", "Cc", "Date",
	"Message-ID", "In-Reply-To", "References",
};

int sc_mime_field_is_outer(const struct sc_mime_field *f, int hide_subject)
{
	size_t i;

	if (!f)
		return 0;
	for (i = 0; i < sizeof(outer_fields) / sizeof(outer_fields[0]); i++) {
		if (name_is(f, outer_fields[i]))
			return 1;
	}
	if (f->name_len > 7 && strncasecmp(f->name, "Resent-", 7) == 0)
		return 1;
	if (!hide_subject && name_is(f, "Subject"))
		return 1;
	return 0;
}
