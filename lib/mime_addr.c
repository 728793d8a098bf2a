/*
 * mime_addr.c - the mailboxes of an RFC 5322 3.4 address-list (From, To, Cc,
 * Bcc, Reply-To): sc_mime_addresses() from smtpcert/mime.h.
 *
 * Pure function on caller memory; used by `smtpcert send -t` (recipients from
 * the header) and by the S/MIME code. No global state.
 *
 * How: the unfolded value is cut at top-level ',' (and at a group's ':' and
 * ';'), ignoring those inside quoted strings, comments, angle brackets and
 * domain literals. Each piece is one mailbox: the addr-spec inside <...> when
 * there is one (a display name before it is ignored; an obsolete route
 * "@a,@b:" inside is dropped, RFC 5322 4.4), else the piece itself with the
 * comments and folding white space removed (obs-local-part allows CFWS around
 * dots, RFC 5322 4.4). The result goes through sc_addr_parse(SC_ADDR_UTF8).
 * Empty pieces are obsolete list syntax (RFC 5322 4.4) and skipped, so an empty
 * group ("undisclosed-recipients:;") yields no mailbox.
 */
#include <string.h>

#include "smtpcert/mime.h"

/* An addr-spec with comments removed is at most local@domain plus quoting. */
#define SPEC_MAX (2 * SC_LOCAL_MAX + 4 + SC_DOMAIN_MAX + 2)

struct spec {
	char buf[SPEC_MAX + 1];
	size_t len;
	int overflow;
	int gap;     /* CFWS seen since the last octet put */
	int badgap;  /* CFWS inside an atom: "a b@x" is not an addr-spec */
};

static void spec_put(struct spec *s, char c)
{
	/* RFC 5322 4.4 allows CFWS only around the '.' and '@' separators. */
	if (s->gap && s->len > 0 && !strchr(".@", s->buf[s->len - 1]) && !strchr(".@", c))
		s->badgap = 1;
	s->gap = 0;
	if (s->len < SPEC_MAX)
		s->buf[s->len++] = c;
	else
		s->overflow = 1;
}

/*
 * Copy [v, v + n) into @p s without comments and white space outside quoted
 * strings and domain literals; inside those, keep everything but line ends.
 */
static sc_status strip_cfws(const char *v, size_t n, struct spec *s)
{
	size_t i = 0;

	while (i < n) {
		char c = v[i];

		if (c == '\r' || c == '\n' || c == ' ' || c == '\t') {
			s->gap = 1;
			i++;
		} else if (c == '(') {
			s->gap = 1;
			int depth = 0;

			for (; i < n; i++) {
				if (v[i] == '\\') {
					i++;
					continue;
				}
				if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0)
					break;
			}
			if (i >= n)
				return SC_ERR_SYNTAX;
			i++;
		} else if (c == '"' || c == '[') {
			char close = c == '"' ? '"' : ']';

			spec_put(s, c);
			for (i++; i < n && v[i] != close; i++) {
				if (v[i] == '\r' || v[i] == '\n')
					continue;
				if (v[i] == '\\' && i + 1 < n)
					spec_put(s, v[i++]);
				s->gap = 0; /* white space inside quotes is content */
				spec_put(s, v[i]);
			}
			if (i >= n)
				return SC_ERR_SYNTAX;
			spec_put(s, close);
			i++;
		} else {
			spec_put(s, c);
			i++;
		}
	}
	return s->overflow || s->badgap ? SC_ERR_SYNTAX : SC_OK;
}

/*
 * One list element [v, v + n): nothing (only CFWS), a name-addr or an
 * addr-spec. @return SC_OK with *@p found set when a mailbox was written.
 */
static sc_status element(const char *v, size_t n, struct sc_addr *out, int *found)
{
	struct spec s;
	size_t i, lt = n, gt = n;
	int inq = 0, depth = 0;
	const char *why;

	*found = 0;
	for (i = 0; i < n; i++) {
		char c = v[i];

		if (c == '\\' && (inq || depth)) {
			i++;
		} else if (inq) {
			inq = c != '"';
		} else if (depth) {
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
		} else if (c == '"') {
			inq = 1;
		} else if (c == '(') {
			depth = 1;
		} else if (c == '<' && lt == n) {
			lt = i;
		} else if (c == '>' && lt != n && gt == n) {
			gt = i;
		} else if (c == '<' || c == '>') {
			return SC_ERR_SYNTAX;
		}
	}
	if (inq || depth || (lt != n && gt == n))
		return SC_ERR_SYNTAX;
	memset(&s, 0, sizeof(s));
	if (lt != n) {
		struct spec rest;

		/* After the angle-addr only CFWS may follow (RFC 5322 3.4). */
		memset(&rest, 0, sizeof(rest));
		SC_TRY(strip_cfws(v + gt + 1, n - gt - 1, &rest));
		SC_ENSURE(rest.len == 0, SC_ERR_SYNTAX);
		SC_TRY(strip_cfws(v + lt + 1, gt - lt - 1, &s));
		if (s.len > 0 && s.buf[0] == '@') {
			/* RFC 5322 4.4 obs-route: "@a,@b:" before the addr-spec. */
			char *colon = memchr(s.buf, ':', s.len);

			SC_ENSURE(colon != NULL, SC_ERR_SYNTAX);
			s.len -= (size_t)(colon + 1 - s.buf);
			memmove(s.buf, colon + 1, s.len);
		}
		SC_ENSURE(s.len > 0, SC_ERR_SYNTAX); /* "<>" names no mailbox */
	} else {
		SC_TRY(strip_cfws(v, n, &s));
		if (s.len == 0)
			return SC_OK;
	}
	if (sc_addr_parse(s.buf, s.len, SC_ADDR_UTF8, out, &why) != SC_OK)
		return SC_ERR_SYNTAX;
	*found = 1;
	return SC_OK;
}

static sc_status emit(const char *v, size_t n, struct sc_addr *out, size_t max, size_t *count)
{
	struct sc_addr a;
	int found;

	SC_TRY(element(v, n, &a, &found));
	if (!found)
		return SC_OK;
	if (*count >= max)
		return SC_ERR_TOO_MANY;
	if (out)
		out[*count] = a;
	(*count)++;
	return SC_OK;
}

sc_status sc_mime_addresses(const char *value, size_t len, struct sc_addr *out, size_t max,
			    size_t *n)
{
	size_t i, start = 0, count = 0;
	int inq = 0, depth = 0, angle = 0, lit = 0, group = 0;

	SC_ENSURE_ARG(n);
	SC_ENSURE(value || len == 0, SC_ERR_ARG);
	*n = 0;
	if (len > 0 && memchr(value, '\0', len))
		return SC_ERR_SYNTAX;
	for (i = 0; i < len; i++) {
		char c = value[i];

		if (c == '\\' && (inq || depth)) {
			i++;
			continue;
		}
		if (inq) {
			inq = c != '"';
			continue;
		}
		if (depth) {
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			continue;
		}
		if (lit) {
			lit = c != ']';
			continue;
		}
		switch (c) {
		case '"':
			inq = 1;
			break;
		case '(':
			depth = 1;
			break;
		case '[':
			lit = 1;
			break;
		case '<':
			angle = 1;
			break;
		case '>':
			angle = 0;
			break;
		case ',':
			if (angle)
				break; /* an obs-route "<@a,@b:u@d>" */
			SC_TRY(emit(value + start, i - start, out, max, &count));
			start = i + 1;
			break;
		case ':':
			if (angle)
				break;
			/* RFC 5322 3.4 group: the text before is its display name. */
			SC_ENSURE(!group, SC_ERR_SYNTAX);
			group = 1;
			start = i + 1;
			break;
		case ';':
			SC_ENSURE(group && !angle, SC_ERR_SYNTAX);
			SC_TRY(emit(value + start, i - start, out, max, &count));
			group = 0;
			start = i + 1;
			break;
		default:
			break;
		}
	}
	if (inq || depth || lit || angle || group)
		return SC_ERR_SYNTAX;
	SC_TRY(emit(value + start, len - start, out, max, &count));
	*n = count;
	return SC_OK;
}
