/*
 * test_addr_diff.c - differential safety net for lib/addr.c and lib/addr_key.c:
 * a large generated set of mailboxes goes through sc_addr_parse(), sc_addr_key(), sc_addr_format()
 * and sc_addr_key_guess(), and every observable result (status, reason, output
 * flags, fields, key, display form, their behaviour at the exact buffer size and
 * one short, the guess, and keys of hand-built structs) must be what the
 * implementation gave when the table below was recorded (commit "test_addr_diff:
 * record ...", before the sixth-round optimisations of docs/performance.md).
 *
 * The set: every input of tests/unit/data/addr.in and of the tables in
 * test_addr.c and test_addr_guess.c (copied below, so that a new golden line does
 * not move these hashes), plus generated seeds at the length limits; each seed
 * is varied (brackets on and off, case, quoting, a trailing or doubled dot, every
 * prefix, deletions, and insertions of NUL, controls, specials, 2/3/4-octet
 * UTF-8 and invalid UTF-8 at seven places), and each variant is parsed with six
 * flag sets.
 *
 * The results of one seed's variants are hashed (FNV-1a, 64 bits) into one
 * entry of want[], so a failure names the seed. To see what changed: run this
 * binary at the recorded commit and at yours with SC_ADDR_DIFF_DUMP=file (one
 * line per result) and diff the two files. SC_ADDR_DIFF_REGEN=1 prints a new
 * want[] table instead of checking; only for a deliberate change of behaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "addr_int.h"

#define U SC_ADDR_UTF8
#define L SC_ADDR_LITERAL
#define B SC_ADDR_BRACKETS
#define R SC_ADDR_ROUTE

struct seed {
	const char *s;
	size_t n;
};

#define S(lit) { lit, sizeof lit - 1 }

static const struct seed seeds[] = {
	S("alice@example.test"),
	S("Alice@Example.TEST"),
	S("<Alice@Example.TEST>"),
	S("ALICE.SMITH@MAIL.EXAMPLE.TEST"),
	S("a@b"),
	S("1@2"),
	S("first.middle.last@x.y"),
	S("a+tag@x.y"),
	S("!#$%&'*+-/=\?^_`{|}~@x.y"),
	S("a@x-y.z"),
	S("a@0.1.2.3"),
	S("a@xn--bcher-kva.de"),
	S("<a@b>"),
	S("<a@b"),
	S("a@b>"),
	S("<>"),
	S("<<a@b>>"),
	S("<a@b>>"),
	S("<"),
	S(">"),
	S("\"alice\"@example.test"),
	S("\"Alice\"@Example.Test"),
	S("\"alice.smith\"@x.y"),
	S("\"john doe\"@x.y"),
	S("\"John Doe\"@x.y"),
	S("\"a\\\"b\"@x"),
	S("\"a\\\\b\"@x"),
	S("\"\\a\\b\\c\"@x"),
	S("\"a..b\"@x"),
	S("\".a\"@x"),
	S("\"a.\"@x"),
	S("\"a@b\"@x"),
	S("\"a,b\"@x"),
	S("\"(comment)\"@x"),
	S("\"\"@x"),
	S("\"abc@x"),
	S("\"a\"b@x"),
	S("\"a\"\"b\"@x"),
	S("\"a\011b\"@x"),
	S("\"a\\\011b\"@x"),
	S("\"a\\\177\"@x"),
	S("\"a\177\"@x"),
	S("\"a\015b\"@x"),
	S("\"a\\"),
	S("\""),
	S("@x.y"),
	S(".a@x"),
	S("a.@x"),
	S("a..b@x"),
	S("a b@x"),
	S("a(b)@x"),
	S("a,b@x"),
	S("a\\b@x"),
	S("a[b@x"),
	S("a\"b@x"),
	S("alice"),
	S("alice@"),
	S("\"alice\""),
	S("a\000b@x"),
	S("a@x\000"),
	S("\000"),
	S(" a@x"),
	S("a@x "),
	S("a@x\015\012"),
	S("a\011@x"),
	S("a@.x"),
	S("a@x."),
	S("a@X.Y."),
	S("a@x..y"),
	S("a@.."),
	S("a@."),
	S("a@-x.y"),
	S("a@x-.y"),
	S("a@x.-y"),
	S("a@x_y"),
	S("a@x y"),
	S("a@b@c"),
	S("a@x.y:25"),
	S("a@*.x"),
	S("J\303\266rg@b\303\274cher.de"),
	S("joerg@b\303\274cher.de"),
	S("\303\226Z@X"),
	S("\"J\303\266 rg\"@x"),
	S("\"\303\266\"@x"),
	S("\342\202\254@x"),
	S("\360\237\230\200@x"),
	S("\347\224\250\346\210\267@\344\276\213\345\255\220.\345\271\277\345\221\212"),
	S("\320\277\320\276\321\207\321\202\320\260@\320\277\321\200\320\270\320\274\320\265\321\200.\321\200\321\204"),
	S("a@-\303\274.de"),
	S("a@\303\274-.de"),
	S("a@\303\274_x.de"),
	S("\300\257@x"),
	S("\301\201@x"),
	S("\340\200\257@x"),
	S("\360\200\200\257@x"),
	S("\355\240\200@x"),
	S("\355\277\277@x"),
	S("\364\220\200\200@x"),
	S("\370\210\200\200\200@x"),
	S("\303@x"),
	S("a@x\342\202"),
	S("\200@x"),
	S("\377@x"),
	S("\"\303\"@x"),
	S("a@b\303\274\303"),
	S("a@[192.0.2.1]"),
	S("a@[IPv6:2001:db8::1]"),
	S("a@[001.002.003.004]"),
	S("a@[IPv6:2001:DB8::1]"),
	S("a@[ipv6:::1]"),
	S("a@[IPv6:::ffff:192.0.2.1]"),
	S("a@[IPv6:1:2:3:4:5:6:7:8]"),
	S("a@[IPv6:1:2:3:4:5:6:7:8:9]"),
	S("a@[IPv6:2001:db8::g]"),
	S("a@[IPv6:1:2:3:4:5:6::]"),
	S("a@[IPv6:1:2:3:4:5:6:7::]"),
	S("a@[IPv6:1:2:3:4::192.0.2.1]"),
	S("a@[IPv6:1:2:3:4:5::192.0.2.1]"),
	S("a@[IPv6:1:2:3:4:5:6:192.0.2.1]"),
	S("a@[IPv6:fe80::1%eth0]"),
	S("a@[IPv6:]"),
	S("a@[256.0.0.1]"),
	S("a@[1.2.3]"),
	S("a@[1.2.3.4.5]"),
	S("a@[1.2.3.4"),
	S("a@[1.2.3.4]x"),
	S("a@[1..3.4]"),
	S("a@[1234.1.1.1]"),
	S("a@[x-tag:stuff]"),
	S("a@[tag:a]b]"),
	S("a@[]"),
	S("a@[ 1.2.3.4]"),
	S("a@x.y"),
	S("<@a,@b.c:u@d>"),
	S("<@a:U@D>"),
	S("<@\303\274.de:\303\274@x>"),
	S("<@a,u@d>"),
	S("<@a:>"),
	S("<@-a:u@d>"),
	S("<@a u@d>"),
	S("<@:u@d>"),
	S("<@a,:u@d>"),
	S("@a:u@d"),
	S("<@[1.2.3.4]:u@d>"),
	S("<@a.:u@d>"),
	S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x"),
	S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x"),
	S("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"@x"),
	S("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \"@x"),
	S("a@lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll.x"),
	S("a@llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll.x"),
	S("a@ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"),
	S("a@ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.e"),
	S("alice@EXAMPLE.test"),
	S("a.b.c@x.y"),
	S("a@1-2.x"),
	S(""),
	S("\"John.Doe\"@x.y"),
	S("\"\\a\\b\"@x"),
	S("a@"),
	S("\303\226@x"),
	S("J\303\266rg@x"),
	S("a@b\303\274cher.de"),
	S("a@[IPv6:1:2:3:4::1.2.3.4]"),
	S("a@[IPv6:1:2:3:4:5::1.2.3.4]"),
	S("alice@example.test."),
	S("<ALICE@EXAMPLE.TEST.>"),
	S("x@y"),
	S("First.Last+Tag@Sub.Example.Test"),
	S("a!#$%&'*+/=\?^_`{|}~-@x.test"),
	S("j\303\266rg@b\303\274cher.example"),
	S("J\303\226RG@B\303\274cher.Example."),
	S("<\316\264\316\277\316\272\316\271\316\274\316\256@\317\200\316\261\317\201\316\254\316\264\316\265\316\271\316\263\316\274\316\261.\316\264\316\277\316\272\316\271\316\274\316\256>"),
	S("user@[192.0.2.1]"),
	S("user@[IPv6:2001:DB8::1]"),
	S("\"a b\"@x.test"),
	S("<\"a\\\"b\"@x.test>"),
	S("a b@x.test"),
	S(" a@x.test"),
	S("a@x.test "),
	S("a\011b@x.test"),
	S("a\\b@x.test"),
	S("alice.example.test"),
	S("@example.test"),
	S("<@example.test>"),
	S("<alice@>"),
	S("alice@."),
	S("a\177@x.test"),
	S("a@b,<c@d>"),
};

/* Seeds at the RFC 5321 4.5.3.1 limits, built at run time (generated_seed()). */
#define GEN_SEEDS 24
#define SEEDS_ALL (sizeof seeds / sizeof seeds[0] + GEN_SEEDS)

static const unsigned flag_sets[] = { 0, U, L, U | L, B | R, U | L | B | R };

/* What is inserted into every seed, at seven places. */
static const struct seed inserts[] = {
	S("\000"), S("\001"), S("\t"), S(" "), S("\""), S("\\"), S("."), S(".."), S("@"),
	S("\177"), S("A"), S("-"), S("["), S("]"), S("<"), S(">"), S(":"), S(","),
	S("\303\266"),          /* U+00F6, 2 octets */
	S("\342\202\254"),      /* U+20AC, 3 octets */
	S("\360\237\230\200"),  /* U+1F600, 4 octets */
	S("\303"),              /* truncated */
	S("\200"),              /* lone continuation */
	S("\300\257"),          /* overlong */
	S("\355\240\200"),      /* surrogate */
	S("\364\220\200\200"),  /* above U+10FFFF */
	S("\377"),
	S("\\\""), S("\"\""),
};

/* ---- recording ---------------------------------------------------------------- */

struct rec {
	uint64_t hash;
	unsigned long count;
	FILE *dump;
};

static void rec_bytes(struct rec *r, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		r->hash ^= b[i];
		r->hash *= 0x100000001b3ULL;
	}
	if (r->dump) {
		for (size_t i = 0; i < n; i++) {
			if (b[i] < 0x20 || b[i] >= 0x7f || b[i] == '\\')
				fprintf(r->dump, "\\x%02x", b[i]);
			else
				fputc(b[i], r->dump);
		}
	}
}

static void rec_str(struct rec *r, const char *name, const char *s, size_t n)
{
	char len[32];

	rec_bytes(r, name, strlen(name));
	snprintf(len, sizeof len, "(%zu)=", n);
	rec_bytes(r, len, strlen(len));
	rec_bytes(r, s, n);
	rec_bytes(r, " ", 1);
}

static void rec_int(struct rec *r, const char *name, long long v)
{
	char t[64];

	snprintf(t, sizeof t, "%s=%lld ", name, v);
	rec_bytes(r, t, strlen(t));
}

/* One result per line in the dump. */
static void rec_end(struct rec *r)
{
	FILE *dump = r->dump;

	r->dump = NULL;
	rec_bytes(r, "\n", 1);
	r->dump = dump;
	if (dump)
		fputc('\n', dump);
	r->count++;
}

/* The key or display form at the room it needs, and one octet less. */
static void rec_sizes(struct rec *r, const struct sc_addr *a, size_t need, int key)
{
	char buf[SC_ADDR_KEY_MAX + 8];
	size_t len = 7777;
	sc_status rc;

	memset(buf, '#', sizeof buf);
	rc = key ? sc_addr_key(a, buf, need + 1, &len) : sc_addr_format(a, buf, need + 1);
	rec_int(r, "exact", rc);
	rec_str(r, "out", buf, strnlen(buf, need + 1));
	rec_int(r, "after", buf[need + 1]);
	if (key)
		rec_int(r, "len", (long long)len);
	memset(buf, '#', sizeof buf);
	len = 7777;
	rc = key ? sc_addr_key(a, buf, need, &len) : sc_addr_format(a, buf, need);
	rec_int(r, "short", rc);
	rec_int(r, "first", need ? buf[0] : -1);
	rec_int(r, "at", buf[need]);
	if (key)
		rec_int(r, "len", (long long)len);
}

static void rec_parse(struct rec *r, const char *s, size_t n, unsigned flags)
{
	static const struct sc_addr zero;
	struct sc_addr a;
	const char *why = "unset";
	char key[SC_ADDR_KEY_MAX + 8], fmt[SC_ADDR_KEY_MAX + 8];
	size_t klen = 7777, nl, nd;
	sc_status rc;

	memset(&a, 0xA5, sizeof a); /* whatever the caller's memory held */
	rc = sc_addr_parse(s, n, flags, &a, &why);
	rec_int(r, "flags", flags);
	rec_str(r, "in", s, n);
	rec_int(r, "rc", rc);
	assert_non_null(why);
	rec_str(r, "why", why, strlen(why));
	if (rc != SC_OK) {
		/* a failed parse leaves a zeroed struct */
		rec_int(r, "zeroed", memcmp(&a, &zero, sizeof a) == 0);
		rec_end(r);
		return;
	}
	nl = strnlen(a.local, sizeof a.local);
	nd = strnlen(a.domain, sizeof a.domain);
	assert_true(nl < sizeof a.local && nd < sizeof a.domain);
	rec_int(r, "aflags", a.flags);
	rec_str(r, "local", a.local, nl);
	rec_str(r, "domain", a.domain, nd);
	rc = sc_addr_key(&a, key, sizeof key, &klen);
	rec_int(r, "key_rc", rc);
	rec_str(r, "key", key, strnlen(key, sizeof key));
	rec_int(r, "klen", (long long)klen);
	if (rc == SC_OK)
		rec_sizes(r, &a, klen, 1);
	rc = sc_addr_format(&a, fmt, sizeof fmt);
	rec_int(r, "fmt_rc", rc);
	rec_str(r, "fmt", fmt, strnlen(fmt, sizeof fmt));
	if (rc == SC_OK)
		rec_sizes(r, &a, strlen(fmt), 0);
	rec_end(r);
}

/* The guess, at full room, at exactly its length and one more. */
static void rec_guess(struct rec *r, const char *s, size_t n)
{
	char buf[SC_ADDR_KEY_MAX + 8];
	size_t g;

	memset(buf, '#', sizeof buf);
	g = sc_addr_key_guess(s, n, buf, SC_ADDR_KEY_MAX);
	rec_str(r, "guess_in", s, n);
	rec_int(r, "g", (long long)g);
	if (g) {
		rec_str(r, "gkey", buf, strnlen(buf, sizeof buf));
		memset(buf, '#', sizeof buf);
		rec_int(r, "g1", (long long)sc_addr_key_guess(s, n, buf, g + 1));
		rec_str(r, "gkey1", buf, strnlen(buf, g + 1));
		memset(buf, '#', sizeof buf);
		rec_int(r, "g0", (long long)sc_addr_key_guess(s, n, buf, g));
		rec_int(r, "at", buf[g]);
	}
	rec_end(r);
}

/* A struct built by hand from the text around the '@' at @p at (or from all of
 * it as the local part): unterminated fields, controls and invalid UTF-8 reach
 * sc_addr_key()/sc_addr_format() this way, as they cannot through a parse. */
static void rec_hand(struct rec *r, const char *s, size_t n, size_t at)
{
	struct sc_addr a;
	char buf[SC_ADDR_KEY_MAX + 8];
	size_t nl = at < n ? at : n, nd = at < n ? n - at - 1 : 1, len = 7777;
	const char *d = at < n ? s + at + 1 : "x";
	sc_status rc;

	memset(&a, 0, sizeof a);
	memcpy(a.local, s, nl < sizeof a.local ? nl : sizeof a.local);
	memcpy(a.domain, d, nd < sizeof a.domain ? nd : sizeof a.domain);
	rec_str(r, "hand", s, n);
	rec_int(r, "split", (long long)at);
	rc = sc_addr_key(&a, buf, sizeof buf, &len);
	rec_int(r, "key_rc", rc);
	if (rc == SC_OK) {
		rec_str(r, "key", buf, len);
		rec_sizes(r, &a, len, 1);
	}
	rc = sc_addr_format(&a, buf, sizeof buf);
	rec_int(r, "fmt_rc", rc);
	if (rc == SC_OK)
		rec_str(r, "fmt", buf, strlen(buf));
	rec_end(r);
}

static void rec_input(struct rec *r, const char *in, size_t n)
{
	/* a heap copy of exactly n octets: the word-at-a-time scans must not
	 * read past the input, and ASan sees it if they do (the seeds, their
	 * prefixes and the variants all have more bytes after them) */
	char *s = malloc(n ? n : 1);
	const char *first, *last;

	assert_non_null(s);
	memcpy(s, in, n);
	first = memchr(s, '@', n);
	last = first;
	for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++)
		rec_parse(r, s, n, flag_sets[i]);
	rec_guess(r, s, n);
	while (last && memchr(last + 1, '@', n - (size_t)(last + 1 - s)))
		last = memchr(last + 1, '@', n - (size_t)(last + 1 - s));
	rec_hand(r, s, n, first ? (size_t)(first - s) : n);
	if (last != first)
		rec_hand(r, s, n, (size_t)(last - s));
	free(s);
}

/* ---- variants of a seed ------------------------------------------------------- */

#define VMAX 1200

static void variant(struct rec *r, const char *a, size_t an, const char *b, size_t bn,
		    const char *c, size_t cn)
{
	char v[VMAX];

	assert_true(an + bn + cn <= sizeof v);
	memcpy(v, a, an);
	memcpy(v + an, b, bn);
	memcpy(v + an + bn, c, cn);
	rec_input(r, v, an + bn + cn);
}

static void variants(struct rec *r, const char *s, size_t n)
{
	const char *atp = memchr(s, '@', n);
	size_t at = atp ? (size_t)(atp - s) : n / 2;
	size_t places[7] = { 0, 1, at ? at - 1 : 0, at, at + 1, n ? n - 1 : 0, n };
	char v[VMAX];
	size_t k;

	rec_input(r, s, n);
	/* brackets on, and off when present */
	variant(r, "<", 1, s, n, ">", 1);
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
		rec_input(r, s + 1, n - 2);
	/* all upper, all lower case (ASCII) */
	for (int up = 0; up < 2; up++) {
		for (size_t i = 0; i < n; i++) {
			char c = s[i];

			if (up && c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			else if (!up && c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			v[i] = c;
		}
		rec_input(r, v, n);
	}
	/* a trailing dot, inside and outside brackets */
	variant(r, s, n, ".", 1, "", 0);
	if (n >= 2 && s[n - 1] == '>')
		variant(r, s, n - 1, ".", 1, ">", 1);
	/* the local part quoted, escaping what must be */
	if (atp) {
		k = 0;
		v[k++] = '"';
		for (size_t i = 0; i < at && k + 4 < sizeof v; i++) {
			if (s[i] == '"' || s[i] == '\\')
				v[k++] = '\\';
			v[k++] = s[i];
		}
		v[k++] = '"';
		variant(r, v, k, s + at, n - at, "", 0);
	}
	/* every dot doubled, one at a time (first eight) */
	k = 0;
	for (size_t i = 0; i < n && k < 8; i++) {
		if (s[i] == '.') {
			variant(r, s, i + 1, ".", 1, s + i + 1, n - i - 1);
			k++;
		}
	}
	/* every prefix (first 96), and each deletion at the seven places */
	for (size_t i = 0; i < n && i < 96; i++)
		rec_input(r, s, i);
	for (size_t p = 0; p < 7; p++)
		if (places[p] < n)
			variant(r, s, places[p], "", 0, s + places[p] + 1, n - places[p] - 1);
	for (size_t p = 0; p < 7; p++) {
		if (places[p] > n)
			continue;
		for (size_t i = 0; i < sizeof inserts / sizeof inserts[0]; i++)
			variant(r, s, places[p], inserts[i].s, inserts[i].n, s + places[p],
				n - places[p]);
	}
}

/* Seed @p i of the generated ones, at the limits: local parts of 62..66 octets
 * (ASCII, 2-octet UTF-8 with an odd tail, quoted with spaces, quoted with
 * escapes), labels of 62..64 octets, domains of 253..257 octets. */
static size_t generated_seed(size_t i, char *v, size_t size)
{
	size_t n = 0, want;

	assert_true(size >= 600);
	if (i < 5) {                    /* local part 62..66 */
		memset(v, 'a', 62 + i);
		n = 62 + i;
		v[n - 1] = 'Z';
	} else if (i < 9) {             /* UTF-8 local part 63..66 octets */
		want = 63 + (i - 5);
		while (n + 2 <= want) {
			memcpy(v + n, "\303\266", 2);
			n += 2;
		}
		if (n < want)
			v[n++] = 'q';
	} else if (i < 13) {            /* quoted, spaces: content 61..64 */
		v[n++] = '"';
		memset(v + n, ' ', 61 + (i - 9));
		n += 61 + (i - 9);
		v[n++] = '"';
	} else if (i < 16) {            /* quoted escapes: 30..32 '"' (62..66 canonical) */
		v[n++] = '"';
		for (size_t j = 0; j < 30 + (i - 13); j++) {
			v[n++] = '\\';
			v[n++] = '"';
		}
		v[n++] = '"';
	} else {
		v[n++] = 'U';
	}
	v[n++] = '@';
	if (i < 16) {
		memcpy(v + n, "Example.TEST", 12);
		return n + 12;
	}
	if (i < 19) {                   /* one label of 62..64 */
		memset(v + n, 'L', 62 + (i - 16));
		n += 62 + (i - 16);
		memcpy(v + n, ".test", 5);
		return n + 5;
	}
	/* domains of 253..257 octets: labels of 63 and a tail */
	want = n + 253 + (i - 19);
	while (n < want) {
		size_t lab = want - n > 63 ? 63 : want - n;

		memset(v + n, 'd', lab);
		n += lab;
		if (n + 1 < want)
			v[n++] = '.';
		else if (n < want)
			v[n++] = 'e'; /* never a trailing dot */
	}
	return n;
}

/* ---- the check ---------------------------------------------------------------- */

static const struct {
	uint64_t hash;
	unsigned long count;
} want[] = {
	{ 0x97ea821d362e9b8eULL, 1879 },
	{ 0xfa6c62a6ed2374eeULL, 1879 },
	{ 0xa53474670de4286eULL, 1911 },
	{ 0xc3848a71979eaf36ULL, 1983 },
	{ 0xea8eba509b1dee21ULL, 1751 },
	{ 0xb0afed5fd6488111ULL, 1751 },
	{ 0x4bbdcc9b0fac6bcfULL, 1919 },
	{ 0x58676c19fb0a8ffeULL, 1807 },
	{ 0xb3d48e377908d565ULL, 1919 },
	{ 0xbb54053a660a427eULL, 1791 },
	{ 0xae45e339cbe77314ULL, 1823 },
	{ 0xfb2bb14170d79556ULL, 1879 },
	{ 0x4fdb76075f5c43c7ULL, 1783 },
	{ 0x193603918ab61542ULL, 1759 },
	{ 0x9e8232d3f34afe58ULL, 1767 },
	{ 0x92727a901eff72d9ULL, 1736 },
	{ 0x11b014f1bc0168bdULL, 1799 },
	{ 0x75b2d22373d5239fULL, 1791 },
	{ 0xdbaff50373d13e88ULL, 1704 },
	{ 0x480779689458c0dcULL, 1704 },
	{ 0xd292f39938a5d539ULL, 1895 },
	{ 0xdd63c1d57c712d99ULL, 1895 },
	{ 0xb54658eab90a886dULL, 1879 },
	{ 0x644951f4fdd78bacULL, 1847 },
	{ 0x4464e62867eccb2cULL, 1847 },
	{ 0xee6be296c8fdc0d3ULL, 1791 },
	{ 0xf6bcf9e5727545ddULL, 1791 },
	{ 0x03737d0a1d60cf67ULL, 1807 },
	{ 0x8f2b3ca8ab606193ULL, 1807 },
	{ 0x81c5e92ef4e5909eULL, 1783 },
	{ 0x184b462bbdf6909aULL, 1783 },
	{ 0xd805057e61ceb123ULL, 1991 },
	{ 0x32cb2e08c9ace5d0ULL, 1783 },
	{ 0x984949fc6897eddfULL, 1831 },
	{ 0x00ee30e4705f1ee5ULL, 1759 },
	{ 0xca3d9c9cc7395495ULL, 1775 },
	{ 0x01fe3699f780fa89ULL, 1775 },
	{ 0xf64b2bca473eddd1ULL, 1791 },
	{ 0xe403f310fc8c0f47ULL, 1783 },
	{ 0x3c73f87699f0b657ULL, 1791 },
	{ 0x85caa0399bf32f31ULL, 1783 },
	{ 0xe6b5503d03c0358eULL, 1775 },
	{ 0xb495941d5bd63d4bULL, 1783 },
	{ 0x6b2318723670ed5eULL, 1736 },
	{ 0xfd895c6a075032ecULL, 1704 },
	{ 0x1b658915756c7103ULL, 1767 },
	{ 0x9d8b05d2fb8fc9f1ULL, 1767 },
	{ 0x2978915e219bf003ULL, 1767 },
	{ 0xca4cfaebf2bc4522ULL, 1791 },
	{ 0xc986dee7367ecea7ULL, 1767 },
	{ 0x6f34fad921c68ea1ULL, 1775 },
	{ 0xea414a01b5e34389ULL, 1767 },
	{ 0xba0a9018d4696ccbULL, 1767 },
	{ 0xa193701cdba472a4ULL, 1767 },
	{ 0x30af179a7f9f0bc5ULL, 1767 },
	{ 0x1ba6f1679a753da8ULL, 1752 },
	{ 0x797e6599f2eb7235ULL, 1767 },
	{ 0x2d8002089f54270fULL, 1768 },
	{ 0x847c3450a80b86d7ULL, 1767 },
	{ 0x53c7324157c79e79ULL, 1759 },
	{ 0xe669dbf20ff66d90ULL, 1704 },
	{ 0x9e4b4ffe80bc3cbeULL, 1759 },
	{ 0x5902492051da9acfULL, 1759 },
	{ 0x84b1b4b65bdea5abULL, 1767 },
	{ 0xa8b20debcca6eb0fULL, 1759 },
	{ 0x95f5fa4ba55d708eULL, 1767 },
	{ 0x08cf2e12342e7184ULL, 1767 },
	{ 0x17b861aedab5e446ULL, 1791 },
	{ 0xc42ef7f74dec2f67ULL, 1791 },
	{ 0x0b4e443d2cdfd1d0ULL, 1775 },
	{ 0x59490c640434f3d5ULL, 1759 },
	{ 0x7f7aa43f85aec713ULL, 1783 },
	{ 0x20d0f12688708411ULL, 1783 },
	{ 0x251b8fff27916b02ULL, 1783 },
	{ 0xb4577f5a83e5976aULL, 1767 },
	{ 0x74aa28add4f8065fULL, 1767 },
	{ 0xf31ff3f771e19812ULL, 1974 },
	{ 0xe91b3939da98c455ULL, 1799 },
	{ 0xdf65570521190bc9ULL, 1775 },
	{ 0x7c48e4f11d208d64ULL, 1863 },
	{ 0x0d94227c5a2d224cULL, 1863 },
	{ 0x915039c3788cfee6ULL, 1767 },
	{ 0xa47cb4519f80c3f0ULL, 1807 },
	{ 0xbcc1d213b6dddaf7ULL, 1775 },
	{ 0x4e4aa92bb6180edeULL, 1767 },
	{ 0x51ed682134a15b3dULL, 1775 },
	{ 0xa0e0d8373a4c0819ULL, 1895 },
	{ 0x1583c153c7584affULL, 1959 },
	{ 0x88b2f241eb84ea6bULL, 1799 },
	{ 0x1b1bb87afb5c82a6ULL, 1799 },
	{ 0x42dc88c8019d2b52ULL, 1807 },
	{ 0x7ac4535326cb2e57ULL, 1759 },
	{ 0x5ed31fadc5c3ca86ULL, 1759 },
	{ 0xebbfe73f610c1dceULL, 1767 },
	{ 0x795f3111b435c8c4ULL, 1775 },
	{ 0x8043a6056b55b9e4ULL, 1767 },
	{ 0x708ad3f6d9b71a8cULL, 1767 },
	{ 0xab3c071d6f5a979bULL, 1775 },
	{ 0xf0ed0ffe96af9ae4ULL, 1783 },
	{ 0x5027a2843dadab41ULL, 1751 },
	{ 0x0746aa56db50e827ULL, 1767 },
	{ 0xd65f637e703c151eULL, 1751 },
	{ 0x8766b44dd40d5731ULL, 1751 },
	{ 0x2f9b869e76147fdaULL, 1767 },
	{ 0x025ab93853998e1dULL, 1775 },
	{ 0x3689e5c076146a01ULL, 1855 },
	{ 0x4d56e8f07cbc3cc3ULL, 1887 },
	{ 0x80d4ec72f7c9c560ULL, 1903 },
	{ 0x35590d8bafea63e3ULL, 1887 },
	{ 0xbe8b8202ebb80b94ULL, 1823 },
	{ 0xf5bc4bf9098d2bd2ULL, 1951 },
	{ 0x674170420062880cULL, 1919 },
	{ 0x385baab8694bdcedULL, 1935 },
	{ 0x893e3f5bc134a3e2ULL, 1887 },
	{ 0x36c82e7ba218c5fcULL, 1903 },
	{ 0xfc8d4d886cd838c4ULL, 1919 },
	{ 0xf3e221773b02ee0aULL, 1967 },
	{ 0xbcb6fb71f5d8d294ULL, 1983 },
	{ 0xe67f82c6f51e54b8ULL, 1991 },
	{ 0x41febd1d5ab66e58ULL, 1895 },
	{ 0xf577c4cffb227e37ULL, 1799 },
	{ 0x03de8403a69982d1ULL, 1855 },
	{ 0xc5a2e7be908550c6ULL, 1815 },
	{ 0x52931c91e9a8f905ULL, 1863 },
	{ 0x3ab62f4410e343dbULL, 1831 },
	{ 0x5155795ded0cea62ULL, 1847 },
	{ 0x55dc9a52ba82537dULL, 1831 },
	{ 0x34db4792d8a19860ULL, 1863 },
	{ 0x916f72b7648c224aULL, 1847 },
	{ 0x4ca40bc21fbc1220ULL, 1815 },
	{ 0x98aa81812d9bb076ULL, 1759 },
	{ 0x7613885588f750f2ULL, 1847 },
	{ 0xff7169eb97955d8cULL, 1775 },
	{ 0xfb6af4ae3979d892ULL, 2074 },
	{ 0x0d2eccf8993b99c0ULL, 2017 },
	{ 0xcdc2d84c287b5811ULL, 2066 },
	{ 0x95a17b460805a2bdULL, 2017 },
	{ 0x27e351a79554ededULL, 1783 },
	{ 0xcf7400be8fb299edULL, 2025 },
	{ 0xe52d4d119bfbf4dfULL, 2017 },
	{ 0x8405296f897bed82ULL, 2009 },
	{ 0xd07c4035f6db6b08ULL, 2025 },
	{ 0x7774ce31d2296bf9ULL, 1981 },
	{ 0xb0533516d6ddb94fULL, 2108 },
	{ 0x84c6c2c91599f78eULL, 2034 },
	{ 0xe562750cc11a256bULL, 2255 },
	{ 0x6b4a40a7e719acecULL, 2263 },
	{ 0xa428cfdf45e3b7d0ULL, 2271 },
	{ 0x043191392c01a104ULL, 2279 },
	{ 0x7984603fcdf09e2fULL, 2271 },
	{ 0xb998f52f482d7be4ULL, 2279 },
	{ 0x5d3d93f6b585c3b6ULL, 2519 },
	{ 0x98f3e5d572ccdb79ULL, 2527 },
	{ 0x69a1736997de67ceULL, 1879 },
	{ 0x81bcd2a807acabb9ULL, 1823 },
	{ 0xde180285a638e411ULL, 1791 },
	{ 0x46310ace22775c24ULL, 1200 },
	{ 0x5bc2edeb6d0e51e1ULL, 1855 },
	{ 0x6d4528460e7e463dULL, 1791 },
	{ 0x8599455515fb5de5ULL, 1735 },
	{ 0x1ec510581cafe2daULL, 1759 },
	{ 0x76123c1377825136ULL, 1783 },
	{ 0x03371247a13ded52ULL, 1831 },
	{ 0x4f1df44b31e08c10ULL, 1951 },
	{ 0x41f023242ad74186ULL, 1967 },
	{ 0x0ec877355d1f90e7ULL, 1895 },
	{ 0x7b61f1cb97ea77b1ULL, 1927 },
	{ 0x08b5539d135a9172ULL, 1751 },
	{ 0x641661cb06d364c1ULL, 1999 },
	{ 0x8c23c124dd6b5359ULL, 1951 },
	{ 0x725335eb4251cbbdULL, 1903 },
	{ 0x29ee6d0d251765fdULL, 1919 },
	{ 0x1c89c969b678b1a3ULL, 2135 },
	{ 0xa4c0a07bd1f101adULL, 1879 },
	{ 0xad61d9aa088057b3ULL, 1911 },
	{ 0x2716486f18ba8e74ULL, 1831 },
	{ 0x44ff0744d034b8adULL, 1871 },
	{ 0x8352d452e6bc1ad9ULL, 1815 },
	{ 0x3e959da78776ad97ULL, 1807 },
	{ 0x910fd1700edd0eb9ULL, 1807 },
	{ 0xf6b36787ef11403eULL, 1815 },
	{ 0xc0ac1e556c01b77aULL, 1815 },
	{ 0x969d691716080870ULL, 1872 },
	{ 0xdb20535ba3dd88f3ULL, 1839 },
	{ 0x678b1ad6e656e9edULL, 1871 },
	{ 0xaa3a74796069b678ULL, 1807 },
	{ 0xecaab81a6b23c72aULL, 1791 },
	{ 0x4de8282fe32dd35aULL, 1807 },
	{ 0xa085c5e7f2749174ULL, 2016 },
	{ 0xab153ec2d5a9b459ULL, 2335 },
	{ 0x59cc603fcc1a0bd8ULL, 2343 },
	{ 0x0587d37eff192565ULL, 2351 },
	{ 0xec0733370784db9dULL, 2359 },
	{ 0x60e2f6fed131c909ULL, 2367 },
	{ 0xf7e4ca77a52a0b0eULL, 2343 },
	{ 0xff081daba5835228ULL, 2351 },
	{ 0x9ab9f25a5395633eULL, 2359 },
	{ 0x546a0670eba01858ULL, 2367 },
	{ 0x134607f6cf395dcaULL, 2343 },
	{ 0x55fa5bbc67d4c6c9ULL, 2351 },
	{ 0xf28bb9d878d984eeULL, 2359 },
	{ 0x8a80b7385e323369ULL, 2367 },
	{ 0xc4c560ed09d33be5ULL, 2335 },
	{ 0xeb9a462242f30fe3ULL, 2351 },
	{ 0x022a8431c07dbea2ULL, 2367 },
	{ 0xd79713add4c24f1bULL, 2287 },
	{ 0xe3b3c6d8d00d2532ULL, 2295 },
	{ 0x742baa2691f58c03ULL, 2303 },
	{ 0x0d5ba25b574bfe42ULL, 2519 },
	{ 0x3a14107b90972eadULL, 2519 },
	{ 0x5cfc56c657a4a7beULL, 2519 },
	{ 0xb5661f8602063e9dULL, 2519 },
	{ 0x413765b70fee03f4ULL, 2527 },
};

static void test_diff(void **state)
{
	const char *dump = getenv("SC_ADDR_DIFF_DUMP");
	int regen = getenv("SC_ADDR_DIFF_REGEN") != NULL;
	struct rec r = { 0, 0, NULL };
	char gen[600];
	unsigned long total = 0;
	int bad = 0;

	(void)state;
	if (dump) {
		r.dump = fopen(dump, "w");
		assert_non_null(r.dump);
	}
	if (!regen)
		assert_int_equal(sizeof want / sizeof want[0], SEEDS_ALL);
	for (size_t i = 0; i < SEEDS_ALL; i++) {
		const char *s;
		size_t n;

		if (i < sizeof seeds / sizeof seeds[0]) {
			s = seeds[i].s;
			n = seeds[i].n;
		} else {
			n = generated_seed(i - sizeof seeds / sizeof seeds[0], gen, sizeof gen);
			s = gen;
		}
		r.hash = 0xcbf29ce484222325ULL;
		r.count = 0;
		variants(&r, s, n);
		total += r.count;
		if (regen) {
			printf("\t{ 0x%016llxULL, %lu },\n", (unsigned long long)r.hash, r.count);
		} else if (r.hash != want[i].hash || r.count != want[i].count) {
			print_error("seed %zu \"%.*s\": results changed (%lu results, want %lu)\n",
				    i, (int)n, s, r.count, want[i].count);
			bad++;
		}
	}
	if (r.dump)
		fclose(r.dump);
	print_message("%lu results from %zu seeds\n", total, SEEDS_ALL);
	assert_true(total > 100000);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
