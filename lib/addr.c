/*
 * addr.c - mailbox parsing (RFC 5321 4.1.2, RFC 6531 3.3), domain checks and the
 * normalised lookup key every repository indexes on (see smtpcert/addr.h).
 *
 * Pure functions on caller-owned memory, no allocation: used by smtpcertd for
 * CERT/CERS/CERC/RCPT arguments, by the certificate module for subjectAltName
 * addresses, and by the CLI.
 *
 * Decisions (docs/design.md "Addresses"):
 * - Angle brackets are optional unless SC_ADDR_BRACKETS. "<>" (the null reverse
 *   path) names no mailbox and is a syntax error here.
 * - A source route ("<@a,@b:user@d>") is a syntax error unless SC_ADDR_ROUTE:
 *   CERT takes a mailbox, not a Path (docs/protocol.md 4.1). With the flag it is
 *   accepted inside brackets and ignored, as RFC 5321 4.1.2 and Appendix C tell
 *   servers to do for MAIL/RCPT; its domains must still be valid.
 * - A trailing dot in the domain is rejected ("user@example.test." is not a
 *   Mailbox in RFC 5321 4.1.2); sc_domain_equal() ignores one so DNS-style names
 *   from elsewhere still compare equal.
 * - An empty quoted local part ("\"\"@d") is grammatical but names nobody we would
 *   hold a certificate for: rejected as "empty local part".
 * - The 64-octet local-part limit (RFC 5321 4.5.3.1.1) is applied to the
 *   canonical spelling (sc_addr_key before case folding), so every spelling of the
 *   same mailbox is treated alike and anything accepted can be formatted back.
 * - U-labels (RFC 6531 3.3) are checked for UTF-8 validity and LDH structure, not
 *   for IDNA2008 code point rules; their 63-octet limit is counted in UTF-8 octets.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "addr_int.h"
#include "smtpcert/addr.h"
#include "utf8.h"

#define LABEL_MAX 63 /* RFC 1035 2.3.4, kept by RFC 5321 4.1.2 */

#define FAIL(status, reason)            \
	do {                            \
		*why = (reason);        \
		return (status);        \
	} while (0)

static int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * What each octet is, one table load per octet (a strchr() per octet was a
 * tenth of the address work of every CERT, and the bit table after it still
 * most of the key's checks; docs/performance.md, sixth round). The table is
 * written out by the preprocessor from the definitions:
 * - OCTET_ATEXT: RFC 5322 3.2.3 atext, ASCII part: ALPHA / DIGIT /
 *   "!#$%&'*+-/=?^_`{|}~". RFC 6531 3.3 adds UTF8-non-ascii (checked by the
 *   callers, since whether it is allowed depends on the flags).
 * - OCTET_LETDIG: RFC 5321 4.1.2 Let-dig, ALPHA / DIGIT.
 */
#define OCTET_ATEXT 1u
#define OCTET_LETDIG 2u
#define LETDIG(c) \
	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))
#define ATEXT_SPECIAL(c) \
	((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' || \
	 (c) == '*' || (c) == '+' || (c) == '-' || (c) == '/' || (c) == '=' || (c) == '?' || \
	 (c) == '^' || (c) == '_' || (c) == '`' || (c) == '{' || (c) == '|' || (c) == '}' || \
	 (c) == '~')
#define OCTET_CLASS(c) (LETDIG(c) ? OCTET_ATEXT | OCTET_LETDIG : ATEXT_SPECIAL(c) ? OCTET_ATEXT : 0)
/* F(c) for c = 0..255, as initialisers */
#define T4(F, c) F(c), F((c) + 1), F((c) + 2), F((c) + 3)
#define T16(F, c) T4(F, c), T4(F, (c) + 4), T4(F, (c) + 8), T4(F, (c) + 12)
#define T64(F, c) T16(F, c), T16(F, (c) + 16), T16(F, (c) + 32), T16(F, (c) + 48)
#define T256(F) T64(F, 0), T64(F, 64), T64(F, 128), T64(F, 192)

static const unsigned char octet_class[256] = { T256(OCTET_CLASS) };

static int is_atext(unsigned char c)
{
	return octet_class[c] & OCTET_ATEXT;
}

/* RFC 5321 4.1.2 qtextSMTP: %d32-33 / %d35-91 / %d93-126. */
static int is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

static int has_high_byte(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define SCAN_NUL 1u
#define SCAN_HIGH 2u

/*
 * The two checks that precede the grammar, in one pass and eight octets at a
 * time: is there a NUL, is there an octet >= 0x80 (a memchr() and a loop per
 * octet were two passes over every CERT argument; docs/performance.md, sixth
 * round). A word has a zero octet exactly when (w - ONES) & ~w & HIGHS is not
 * zero; a final word overlapping the previous one covers the tail.
 * @return SCAN_NUL and/or SCAN_HIGH.
 */
static unsigned scan_nul_high(const char *s, size_t len)
{
	uint64_t zero = 0, high = 0, w;
	size_t i;

	if (len < 8) {
		unsigned r = 0;

		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == 0)
				r |= SCAN_NUL;
			else if (c >= 0x80)
				r |= SCAN_HIGH;
		}
		return r;
	}
	for (i = 0; i + 8 < len; i += 8) {
		memcpy(&w, s + i, 8);
		zero |= (w - ONES) & ~w;
		high |= w;
	}
	memcpy(&w, s + len - 8, 8);
	zero |= (w - ONES) & ~w;
	high |= w;
	return ((zero & HIGHS) ? SCAN_NUL : 0) | ((high & HIGHS) ? SCAN_HIGH : 0);
}

/* Dot-string (RFC 5321 4.1.2) over already validated bytes; UTF-8 counts as atext
 * because only UTF-8 addresses can contain it. */
static int is_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (c < 0x80 && !is_atext(c)) {
			return 0;
		}
	}
	return 1;
}

/* Octets of the canonical local part: bare when a dot-atom, else minimal quoting. */
static size_t canonical_local_len(const char *s, size_t n)
{
	size_t q = 2 + n;

	if (is_dot_atom(s, n))
		return n;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '"' || s[i] == '\\')
			q++;
	return q;
}

/*
 * Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 4.1.2), or a U-label when UTF-8 is allowed (RFC 6531 3.3).
 */
static sc_status domain_check(const char *s, size_t len, int utf8_ok, const char **why)
{
	size_t i = 0;

	if (len == 0)
		FAIL(SC_ERR_SYNTAX, "empty domain");
	if (len > SC_DOMAIN_MAX)
		FAIL(SC_ERR_TOO_LONG, "domain too long");
	while (i <= len) {
		size_t start = i;

		while (i < len && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];

			if (octet_class[c] & OCTET_LETDIG) {
				i++; /* nearly every octet */
				continue;
			}
			if (c >= 0x80) {
				size_t n;

				if (!utf8_ok)
					FAIL(SC_ERR_ENCODING, "non-ASCII domain without SMTPUTF8");
				n = sc_utf8_seq((const unsigned char *)s + i, len - i);
				if (n == 0)
					FAIL(SC_ERR_ENCODING, "invalid UTF-8 in domain");
				i += n;
				continue;
			}
			if (c == '-') {
				if (i == start)
					FAIL(SC_ERR_SYNTAX, "label starts with a hyphen");
			} else if (!is_alpha(c) && !is_digit(c)) {
				FAIL(SC_ERR_SYNTAX, "invalid character in domain");
			}
			i++;
		}
		if (i == start) {
			if (start == 0)
				FAIL(SC_ERR_SYNTAX, "domain starts with a dot");
			if (i == len)
				FAIL(SC_ERR_SYNTAX, "trailing dot in domain");
			FAIL(SC_ERR_SYNTAX, "empty label in domain");
		}
		if (s[i - 1] == '-')
			FAIL(SC_ERR_SYNTAX, "label ends with a hyphen");
		if (i - start > LABEL_MAX)
			FAIL(SC_ERR_TOO_LONG, "label too long");
		i++; /* skip the dot, or step past the end */
	}
	return SC_OK;
}

sc_status sc_domain_check(const char *s, size_t len, unsigned flags)
{
	const char *why;

	SC_ENSURE(s != NULL || len == 0, SC_ERR_ARG);
	if (len > 0 && memchr(s, '\0', len))
		return SC_ERR_SYNTAX;
	return domain_check(s, len, (flags & SC_ADDR_UTF8) != 0, &why);
}

/* RFC 5321 4.1.3 IPv4-address-literal: Snum 3("." Snum), Snum = 1*3DIGIT <= 255. */
static int ipv4_literal_ok(const char *s, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
		while (i < len && is_digit((unsigned char)s[i]) && digits < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return 0;
	}
	return i == len;
}

/* RFC 5321 4.1.3 General-address-literal: Standardized-tag ":" 1*dcontent. */
static int general_literal_ok(const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	size_t tag, i;

	if (!colon || colon == s || (size_t)(colon - s) + 1 == len)
		return 0;
	tag = (size_t)(colon - s);
	if (s[0] == '-' || s[tag - 1] == '-')
		return 0;
	for (i = 0; i < tag; i++)
		if (!is_alpha((unsigned char)s[i]) && !is_digit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	for (i = tag + 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return 0;
	}
	return 1;
}

/*
 * RFC 5321 4.1.3 IPv6-addr. inet_pton() checks the hex groups and the embedded
 * IPv4 part, but accepts compressed forms RFC 5321 does not: IPv6-comp allows at
 * most 6 groups around "::" (IPv6v4-comp at most 4), and no zone index.
 */
static int ipv6_literal_ok(const char *s, size_t len)
{
	char tmp[64];
	unsigned char bin[16];
	size_t groups = 0;
	int v4 = memchr(s, '.', len) != NULL;

	if (len == 0 || len >= sizeof tmp)
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET6, tmp, bin) != 1)
		return 0;
	if (!strstr(tmp, "::"))
		return 1; /* full forms: inet_pton already required all groups */
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.')
			break;
		if (s[i] != ':' && (i == 0 || s[i - 1] == ':'))
			groups++;
	}
	if (v4)
		groups--; /* the IPv4 part was counted as a group */
	return groups <= (v4 ? 4u : 6u);
}

/* address-literal = "[" ( IPv4 / IPv6 / General ) "]", RFC 5321 4.1.2 and 4.1.3. */
static sc_status literal_check(const char *s, size_t len, unsigned flags, const char **why)
{
	const char *in = s + 1;
	size_t n;

	if (!(flags & SC_ADDR_LITERAL))
		FAIL(SC_ERR_UNSUPPORTED, "address literal not accepted");
	if (len < 2 || s[len - 1] != ']')
		FAIL(SC_ERR_SYNTAX, "unterminated address literal");
	n = len - 2;
	if (n > 5 && strncasecmp(in, "IPv6:", 5) == 0) {
		if (!ipv6_literal_ok(in + 5, n - 5))
			FAIL(SC_ERR_SYNTAX, "invalid IPv6 address literal");
		return SC_OK;
	}
	if (ipv4_literal_ok(in, n))
		return SC_OK;
	if (general_literal_ok(in, n))
		FAIL(SC_ERR_UNSUPPORTED, "unsupported address literal");
	FAIL(SC_ERR_SYNTAX, "invalid address literal");
}

/* A-d-l = At-domain *( "," At-domain ) ":" (RFC 5321 4.1.2); *p is at the '@'. */
static sc_status skip_route(const char **pp, const char *end, unsigned flags, const char **why)
{
	const char *p = *pp;

	for (;;) {
		const char *d;

		if (p >= end || *p != '@')
			FAIL(SC_ERR_SYNTAX, "invalid source route");
		d = ++p;
		while (p < end && *p != ',' && *p != ':')
			p++;
		if (p >= end)
			FAIL(SC_ERR_SYNTAX, "invalid source route");
		SC_TRY(domain_check(d, (size_t)(p - d), (flags & SC_ADDR_UTF8) != 0, why));
		if (*p++ == ':')
			break;
	}
	*pp = p;
	return SC_OK;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE; quoted-pairSMTP = %d92 %d32-126. */
static sc_status parse_quoted(const char **pp, const char *end, char *local, size_t *n,
			      const char **why)
{
	const char *p = *pp + 1;

	*n = 0;
	for (;;) {
		unsigned char c;
		size_t k = 1;

		if (p >= end)
			FAIL(SC_ERR_SYNTAX, "unterminated quoted string");
		c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c == '\\') {
			if (p + 1 >= end || p[1] < 32 || p[1] > 126)
				FAIL(SC_ERR_SYNTAX, "invalid quoted-pair");
			p++;
		} else if (c >= 0x80) {
			/* RFC 6531 3.3 qtextSMTP =/ UTF8-non-ascii; validity checked up front. */
			k = sc_utf8_seq((const unsigned char *)p, (size_t)(end - p));
			if (k == 0)
				FAIL(SC_ERR_ENCODING, "invalid UTF-8 in local part");
		} else if (!is_qtext(c)) {
			FAIL(SC_ERR_SYNTAX, "invalid character in quoted string");
		}
		if (*n + k > SC_LOCAL_MAX)
			FAIL(SC_ERR_TOO_LONG, "local part too long");
		/* a memcpy() call per octet was most of the parse (sixth round) */
		if (k == 1)
			local[*n] = *p;
		else
			memcpy(local + *n, p, k);
		*n += k;
		p += k;
	}
	*pp = p + 1;
	return SC_OK;
}

/*
 * Dot-string = Atom *("." Atom), RFC 5321 4.1.2; stops at '@' or the end. The
 * local part is the input verbatim, so it is copied once at the end (a
 * memcpy() call per octet was most of the parse; docs/performance.md, sixth
 * round). On success it is a Dot-string by construction, which addr_parse()
 * relies on.
 */
static sc_status parse_dot_string(const char **pp, const char *end, char *local, size_t *n,
				  const char **why)
{
	const char *start = *pp, *p = start;

	while (p < end && *p != '@') {
		unsigned char c = (unsigned char)*p;
		size_t k = 1;

		if (is_atext(c)) {
			/* nearly every octet */
		} else if (c == '.') {
			if (p == start)
				FAIL(SC_ERR_SYNTAX, "local part starts with a dot");
			if (p[-1] == '.')
				FAIL(SC_ERR_SYNTAX, "consecutive dots in local part");
		} else if (c >= 0x80) {
			k = sc_utf8_seq((const unsigned char *)p, (size_t)(end - p));
			if (k == 0)
				FAIL(SC_ERR_ENCODING, "invalid UTF-8 in local part");
		} else {
			FAIL(SC_ERR_SYNTAX, "invalid character in local part");
		}
		if ((size_t)(p - start) + k > SC_LOCAL_MAX)
			FAIL(SC_ERR_TOO_LONG, "local part too long");
		p += k;
	}
	*n = (size_t)(p - start);
	if (*n > 0 && p[-1] == '.')
		FAIL(SC_ERR_SYNTAX, "local part ends with a dot");
	memcpy(local, start, *n);
	*pp = p;
	return SC_OK;
}

static sc_status addr_parse(const char *s, size_t len, unsigned flags, struct sc_addr *out,
			    const char **why)
{
	const char *p = s, *end = s + len;
	size_t nlocal = 0, ndomain;
	int quoted = 0;
	unsigned scan;

	if (len == 0)
		FAIL(SC_ERR_SYNTAX, "empty address");
	scan = scan_nul_high(s, len);
	if (scan & SCAN_NUL)
		FAIL(SC_ERR_SYNTAX, "NUL byte in address");
	/* Encoding first, so the grammar below only ever sees valid UTF-8. */
	if (scan & SCAN_HIGH) {
		if (!(flags & SC_ADDR_UTF8))
			FAIL(SC_ERR_ENCODING, "non-ASCII address without SMTPUTF8");
		if (!sc_utf8_valid(s, len))
			FAIL(SC_ERR_ENCODING, "invalid UTF-8");
	}
	if (*p == '<') {
		if (len < 2 || end[-1] != '>')
			FAIL(SC_ERR_SYNTAX, "missing '>'");
		p++;
		end--;
		if (p == end)
			FAIL(SC_ERR_SYNTAX, "null path <> names no mailbox");
		if (*p == '@') {
			if (!(flags & SC_ADDR_ROUTE))
				FAIL(SC_ERR_SYNTAX, "source route not accepted");
			SC_TRY(skip_route(&p, end, flags, why));
		}
	} else if (flags & SC_ADDR_BRACKETS) {
		FAIL(SC_ERR_SYNTAX, "missing '<'");
	}
	if (p < end && *p == '"') {
		quoted = 1;
		SC_TRY(parse_quoted(&p, end, out->local, &nlocal, why));
	} else {
		SC_TRY(parse_dot_string(&p, end, out->local, &nlocal, why));
	}
	if (nlocal == 0)
		FAIL(SC_ERR_SYNTAX, "empty local part");
	/* a Dot-string is its own canonical form, of at most SC_LOCAL_MAX octets */
	if (quoted && canonical_local_len(out->local, nlocal) > SC_LOCAL_MAX)
		FAIL(SC_ERR_TOO_LONG, "local part too long");
	if (p >= end)
		FAIL(SC_ERR_SYNTAX, "missing @");
	if (*p != '@')
		FAIL(SC_ERR_SYNTAX, quoted ? "text after quoted string" : "invalid character in local part");
	p++;
	ndomain = (size_t)(end - p);
	if (ndomain > SC_DOMAIN_MAX)
		FAIL(SC_ERR_TOO_LONG, "domain too long");
	if (ndomain > 0 && *p == '[') {
		SC_TRY(literal_check(p, ndomain, flags, why));
		out->flags |= SC_ADDR_IS_LITERAL;
	} else {
		SC_TRY(domain_check(p, ndomain, (flags & SC_ADDR_UTF8) != 0, why));
	}
	out->local[nlocal] = '\0';
	memcpy(out->domain, p, ndomain);
	out->domain[ndomain] = '\0';
	if (quoted)
		out->flags |= SC_ADDR_IS_QUOTED;
	/* an ASCII argument (nearly all) needs no second look; otherwise the
	 * non-ASCII octets may all have been in a skipped source route */
	if ((scan & SCAN_HIGH) &&
	    (has_high_byte(out->local, nlocal) || has_high_byte(out->domain, ndomain)))
		out->flags |= SC_ADDR_IS_UTF8;
	return SC_OK;
}

sc_status sc_addr_parse(const char *s, size_t len, unsigned flags, struct sc_addr *out,
			const char **why)
{
	const char *reason = "";
	sc_status rc;

	if (why)
		*why = "invalid argument";
	SC_ENSURE_ARG(out);
	SC_ENSURE(s != NULL || len == 0, SC_ERR_ARG);
	/*
	 * Only what a success must define is written: the flags, and each field
	 * up to its NUL (smtpcert/addr.h promises no more, and no caller reads
	 * past the NUL). Clearing all 328 octets first cost every CERT a memset
	 * (docs/performance.md, sixth round). A failure still leaves the whole
	 * struct zeroed, never half an address.
	 */
	out->flags = 0;
	rc = addr_parse(s ? s : "", len, flags, out, &reason);
	if (rc != SC_OK)
		memset(out, 0, sizeof *out);
	if (why)
		*why = reason;
	return rc;
}

/* Bounded output for key/format: records overflow instead of writing past size. */
struct out {
	char *buf;
	size_t size, len;
};

static void out_put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static char fold(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Local part in canonical spelling (RFC 5321 4.1.2 Dot-string when @p atom, else
 * a Quoted-string escaping only what qtextSMTP excludes), optionally case-folded. */
static void out_local(struct out *o, const char *l, size_t n, int atom, int lower)
{
	int q = !atom;

	if (q)
		out_put(o, '"');
	for (size_t i = 0; i < n; i++) {
		if (q && (l[i] == '"' || l[i] == '\\'))
			out_put(o, '\\');
		/* Bytes of UTF-8 sequences are >= 0x80, so folding A-Z never touches them. */
		out_put(o, lower ? fold(l[i]) : l[i]);
	}
	if (q)
		out_put(o, '"');
}

static sc_status out_finish(struct out *o, size_t *len)
{
	if (o->size == 0)
		return SC_ERR_TOO_LONG;
	if (o->len >= o->size) {
		o->buf[0] = '\0';
		return SC_ERR_TOO_LONG;
	}
	o->buf[o->len] = '\0';
	if (len)
		*len = o->len;
	return SC_OK;
}

/*
 * What sc_addr_key() and sc_addr_format() must know about a struct, which may
 * have been built by hand: each field terminated, not empty, and holding only
 * what a parse could have produced (printable ASCII or valid UTF-8), so keys
 * (file names, log fields) never carry control characters; and whether the
 * local part is a Dot-string. The local part is walked once for all of it and
 * the domain eight octets at a time (strnlen, two printable checks and
 * is_dot_atom() were five passes for every key; docs/performance.md, sixth
 * round).
 */
struct facts {
	size_t nl, nd;
	int atom;
};

/* One octet of a hand-built local part that is not atext (is_atext()). */
#define LOCAL_BAD 1u      /* a control or DEL: no key */
#define LOCAL_NONATOM 2u  /* not a Dot-string: quoted in the key */
#define LOCAL_HIGH 4u     /* non-ASCII: the UTF-8 must be valid */

static unsigned local_octet(const char *l, size_t i)
{
	unsigned char c = (unsigned char)l[i];

	if (c == '.')
		return i == 0 || l[i - 1] == '.' ? LOCAL_NONATOM : 0;
	if (c >= 0x80)
		return LOCAL_HIGH;
	return c < 32 || c == 127 ? LOCAL_BAD | LOCAL_NONATOM : LOCAL_NONATOM;
}

/*
 * Whether any of the @p n non-NUL octets at @p s is a control or DEL
 * (SPAN_CTL) or non-ASCII (SPAN_HIGH). For a word w with x = w & 0x7f..7f, the
 * top bit of each octet of x + 0x60..60 says x >= 0x20 and that of x + 0x01..01
 * says x == 0x7f, without carries between octets; ~w drops octets >= 0x80.
 */
#define SPAN_CTL 1u
#define SPAN_HIGH 2u

static uint64_t span_word(const char *s, uint64_t *high)
{
	uint64_t w, x;

	memcpy(&w, s, 8);
	x = w & ~HIGHS;
	*high |= w;
	return (~(x + 0x6060606060606060ULL) | (x + ONES)) & ~w;
}

static unsigned span_scan(const char *s, size_t n)
{
	uint64_t ctl = 0, high = 0;
	size_t i;

	if (n < 8) {
		unsigned r = 0;

		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c >= 0x80)
				r |= SPAN_HIGH;
			else if (c < 32 || c == 127)
				r |= SPAN_CTL;
		}
		return r;
	}
	for (i = 0; i + 8 < n; i += 8)
		ctl |= span_word(s + i, &high);
	ctl |= span_word(s + n - 8, &high);
	return ((ctl & HIGHS) ? SPAN_CTL : 0) | ((high & HIGHS) ? SPAN_HIGH : 0);
}

static sc_status addr_facts(const struct sc_addr *a, struct facts *f)
{
	const char *l = a->local;
	unsigned seen = 0, span;
	size_t n;

	for (n = 0; n < sizeof a->local; n++) {
		if (!is_atext((unsigned char)l[n])) {
			if (l[n] == '\0')
				break;
			seen |= local_octet(l, n);
		}
	}
	SC_ENSURE(n > 0 && n < sizeof a->local && !(seen & LOCAL_BAD), SC_ERR_ARG);
	/* printable ASCII needs no UTF-8 walk (nearly every address) */
	SC_ENSURE(!(seen & LOCAL_HIGH) || sc_utf8_valid(l, n), SC_ERR_ARG);
	f->nl = n;
	f->atom = !(seen & LOCAL_NONATOM) && l[n - 1] != '.';
	n = strnlen(a->domain, sizeof a->domain);
	SC_ENSURE(n > 0 && n < sizeof a->domain, SC_ERR_ARG);
	span = span_scan(a->domain, n);
	SC_ENSURE(!(span & SPAN_CTL), SC_ERR_ARG);
	SC_ENSURE(!(span & SPAN_HIGH) || sc_utf8_valid(a->domain, n), SC_ERR_ARG);
	f->nd = n;
	return SC_OK;
}

/*
 * @p n octets of @p src into @p dst with ASCII A-Z folded, eight at a time: for
 * x = w & 0x7f..7f the top bit of x + 0x3f..3f says x >= 'A' and that of
 * x + 0x25..25 says x > 'Z'; octets >= 0x80 (UTF-8) are left alone. A last word
 * overlapping the previous one covers the tail, so nothing past @p n is read
 * or written.
 */
static void fold_word(char *dst, const char *src)
{
	uint64_t w, x, upper;

	memcpy(&w, src, 8);
	x = w & ~HIGHS;
	upper = (x + 0x3f3f3f3f3f3f3f3fULL) & ~(x + 0x2525252525252525ULL) & ~w & HIGHS;
	w |= upper >> 2;
	memcpy(dst, &w, 8);
}

static void fold_copy(char *dst, const char *src, size_t n)
{
	size_t i;

	if (n < 8) {
		for (i = 0; i < n; i++)
			dst[i] = fold(src[i]);
		return;
	}
	for (i = 0; i + 8 < n; i += 8)
		fold_word(dst + i, src + i);
	fold_word(dst + n - 8, src + n - 8);
}

sc_status sc_addr_key(const struct sc_addr *a, char *buf, size_t size, size_t *len)
{
	struct out o = { buf, size, 0 };
	struct facts f;
	size_t nl, nd;

	SC_ENSURE_ARG(a);
	SC_ENSURE_ARG(buf);
	SC_TRY(addr_facts(a, &f));
	nl = f.nl;
	nd = f.nd;
	/* One trailing dot means the same domain (absolute vs relative form). */
	if (nd > 1 && a->domain[nd - 1] == '.')
		nd--;
	if (nl + 1 + nd < size && f.atom) {
		/* the common case, bare and fitting: no quoting and no check per
		 * octet (every CERT computes a key) */
		fold_copy(buf, a->local, nl);
		buf[nl] = '@';
		fold_copy(buf + nl + 1, a->domain, nd);
		buf[nl + 1 + nd] = '\0';
		if (len)
			*len = nl + 1 + nd;
		return SC_OK;
	}
	out_local(&o, a->local, nl, f.atom, 1);
	out_put(&o, '@');
	for (size_t i = 0; i < nd; i++)
		out_put(&o, fold(a->domain[i]));
	return out_finish(&o, len);
}

sc_status sc_addr_format(const struct sc_addr *a, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };
	struct facts f;
	size_t nl, nd;

	SC_ENSURE_ARG(a);
	SC_ENSURE_ARG(buf);
	SC_TRY(addr_facts(a, &f));
	nl = f.nl;
	nd = f.nd;
	out_local(&o, a->local, nl, f.atom, 0);
	out_put(&o, '@');
	for (size_t i = 0; i < nd; i++)
		out_put(&o, a->domain[i]);
	return out_finish(&o, NULL);
}

int sc_addr_equal(const struct sc_addr *a, const struct sc_addr *b)
{
	char ka[SC_ADDR_KEY_MAX], kb[SC_ADDR_KEY_MAX];

	if (!a || !b)
		return 0;
	if (sc_addr_key(a, ka, sizeof ka, NULL) != SC_OK ||
	    sc_addr_key(b, kb, sizeof kb, NULL) != SC_OK)
		return 0;
	return strcmp(ka, kb) == 0;
}

int sc_domain_equal(const char *a, const char *b)
{
	size_t na, nb;

	if (!a || !b)
		return 0;
	na = strlen(a);
	nb = strlen(b);
	if (na > 0 && a[na - 1] == '.')
		na--;
	if (nb > 0 && b[nb - 1] == '.')
		nb--;
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (fold(a[i]) != fold(b[i]))
			return 0;
	return 1;
}

/*
 * The key guess's view of each octet: 0 when it needs a full parse (quoting,
 * spaces and controls, a second address), else the octet folded as in the key.
 * One table load instead of six comparisons and a fold per octet
 * (docs/performance.md, sixth round).
 */
#define GUESS_REFUSED(c) \
	((c) <= ' ' || (c) == 127 || (c) == '"' || (c) == '\\' || (c) == '<' || (c) == '>')
#define GUESS_OCTET(c) (GUESS_REFUSED(c) ? 0 : ((c) >= 'A' && (c) <= 'Z') ? (c) | 0x20 : (c))

static const unsigned char guess_octet[256] = { T256(GUESS_OCTET) };

size_t sc_addr_key_guess(const char *arg, size_t len, char *buf, size_t size)
{
	size_t at = 0, n;

	if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>')
		arg++, len -= 2;
	/* one trailing dot of the domain goes, as in sc_addr_key() */
	if (len > 1 && arg[len - 1] == '.')
		len--;
	if (len == 0 || len >= size)
		return 0;
	for (n = 0; n < len; n++) {
		unsigned char c = guess_octet[(unsigned char)arg[n]];

		if (c == 0)
			return 0; /* quoting, spaces, a second address: a full parse */
		if (c == '@')
			at = n + 1;
		buf[n] = (char)c;
	}
	if (at < 2 || at == len)
		return 0;
	buf[len] = '\0';
	return len;
}
