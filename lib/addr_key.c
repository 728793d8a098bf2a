/*
 * addr_key.c - what is derived from a parsed mailbox (struct sc_addr, see
 * smtpcert/addr.h): the normalised lookup key every repository indexes on
 * (sc_addr_key), the canonical spelling (sc_addr_format), the comparisons
 * (sc_addr_equal, sc_domain_equal), and the key guessed from a raw argument
 * without a parse (sc_addr_key_guess, lib/addr_int.h). lib/addr.c parses.
 *
 * Pure functions on caller-owned memory, no allocation: used by smtpcertd's
 * network process for every CERT/CERS/CERC/RCPT (the key names the mailbox in
 * lookups and log lines; the guess feeds the repositories' prefetch), by the
 * repositories, the queue and the certificate module, and by the CLI.
 *
 * Decisions (docs/design.md "Addresses"):
 * - A struct may have been built by hand, so it is checked before a key or a
 *   spelling is made from it (see struct facts below).
 * - One trailing dot of the domain is ignored by the key and sc_domain_equal(),
 *   so DNS-style names from elsewhere still compare equal.
 */
#include <stdint.h>
#include <string.h>

#include "addr_int.h"
#include "smtpcert/addr.h"
#include "utf8.h"

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

/* One octet of a hand-built local part that is not atext (sc_addr_is_atext()). */
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
	x = w & ~ADDR_HIGHS;
	*high |= w;
	return (~(x + 0x6060606060606060ULL) | (x + ADDR_ONES)) & ~w;
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
	return ((ctl & ADDR_HIGHS) ? SPAN_CTL : 0) | ((high & ADDR_HIGHS) ? SPAN_HIGH : 0);
}

static sc_status addr_facts(const struct sc_addr *a, struct facts *f)
{
	const char *l = a->local;
	unsigned seen = 0, span;
	size_t n;

	for (n = 0; n < sizeof a->local; n++) {
		if (!sc_addr_is_atext((unsigned char)l[n])) {
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
	x = w & ~ADDR_HIGHS;
	upper = (x + 0x3f3f3f3f3f3f3f3fULL) & ~(x + 0x2525252525252525ULL) & ~w & ADDR_HIGHS;
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

	SC_ENSURE_ARG(a);
	SC_ENSURE_ARG(buf);
	SC_TRY(addr_facts(a, &f));
	out_local(&o, a->local, f.nl, f.atom, 0);
	out_put(&o, '@');
	for (size_t i = 0; i < f.nd; i++)
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

static const unsigned char guess_octet[256] = { ADDR_T256(GUESS_OCTET) };

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
