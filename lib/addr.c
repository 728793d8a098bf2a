/*
 * addr.c - mailbox parsing (RFC 5321 4.1.2, RFC 6531 3.3) and domain checks
 * (see smtpcert/addr.h). What is derived from a parsed address (the normalised
 * lookup key every repository indexes on, the canonical spelling, comparisons)
 * is lib/addr_key.c.
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
 *   Mailbox in RFC 5321 4.1.2); sc_domain_equal() (lib/addr_key.c) ignores one
 *   so DNS-style names from elsewhere still compare equal.
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
 * The octet class table (what each octet is; lib/addr_int.h says why a table
 * and what ADDR_OCTET_ATEXT and ADDR_OCTET_LETDIG mean), written out by the
 * preprocessor here, once, from the grammar's definitions.
 */
#define LETDIG(c) \
	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))
#define ATEXT_SPECIAL(c) \
	((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' || \
	 (c) == '*' || (c) == '+' || (c) == '-' || (c) == '/' || (c) == '=' || (c) == '?' || \
	 (c) == '^' || (c) == '_' || (c) == '`' || (c) == '{' || (c) == '|' || (c) == '}' || \
	 (c) == '~')
#define OCTET_CLASS(c) \
	(LETDIG(c) ? ADDR_OCTET_ATEXT | ADDR_OCTET_LETDIG : ATEXT_SPECIAL(c) ? ADDR_OCTET_ATEXT : 0)

const unsigned char sc_addr_octet_class[256] = { ADDR_T256(OCTET_CLASS) };

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

#define SCAN_NUL 1u
#define SCAN_HIGH 2u

/*
 * The two checks that precede the grammar, in one pass and eight octets at a
 * time: is there a NUL, is there an octet >= 0x80 (a memchr() and a loop per
 * octet were two passes over every CERT argument; docs/performance.md, sixth
 * round). A word has a zero octet exactly when (w - ADDR_ONES) & ~w &
 * ADDR_HIGHS is not zero; a final word overlapping the previous one covers the
 * tail.
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
		zero |= (w - ADDR_ONES) & ~w;
		high |= w;
	}
	memcpy(&w, s + len - 8, 8);
	zero |= (w - ADDR_ONES) & ~w;
	high |= w;
	return ((zero & ADDR_HIGHS) ? SCAN_NUL : 0) | ((high & ADDR_HIGHS) ? SCAN_HIGH : 0);
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
		} else if (c < 0x80 && !sc_addr_is_atext(c)) {
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

			if (sc_addr_octet_class[c] & ADDR_OCTET_LETDIG) {
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
			/* letters and digits went on above: only a hyphen is left */
			if (c != '-')
				FAIL(SC_ERR_SYNTAX, "invalid character in domain");
			if (i == start)
				FAIL(SC_ERR_SYNTAX, "label starts with a hyphen");
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

		if (sc_addr_is_atext(c)) {
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
