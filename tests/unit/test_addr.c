/*
 * test_addr.c - unit tests for lib/addr.c, lib/addr_key.c (and lib/utf8.c): a
 * table of mailboxes with their expected status, reason and key, the golden files
 * tests/unit/data/addr.in / addr.ref, and the key/format/domain helpers.
 *
 * Golden format: addr.in has one case per line, "FLAGS INPUT" where FLAGS is "-"
 * or letters u (SC_ADDR_UTF8), l (SC_ADDR_LITERAL), b (SC_ADDR_BRACKETS), r
 * (SC_ADDR_ROUTE) and INPUT
 * is C-escaped (\\ \" \n \r \t \0 \xHH); '#' lines and blank lines are ignored.
 * addr.ref has one line per case: "OK key=KEY fmt=FORMAT" or "STATUS reason".
 * With SC_REGEN_GOLDEN=path set, the actual results are written there instead of
 * compared, for review before replacing addr.ref.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "utf8.h"

#define U SC_ADDR_UTF8
#define L SC_ADDR_LITERAL
#define B SC_ADDR_BRACKETS
#define R SC_ADDR_ROUTE

struct addr_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	unsigned flags;
	sc_status want;
	const char *key_or_why; /* key on SC_OK, reason otherwise (NULL: don't check) */
};

static const struct addr_case cases[] = {
	/* dot-atoms, brackets, case folding */
	{ "alice@example.test", 0, 0, SC_OK, "alice@example.test" },
	{ "<Alice@Example.TEST>", 0, 0, SC_OK, "alice@example.test" },
	{ "\"alice\"@example.test", 0, 0, SC_OK, "alice@example.test" },
	{ "alice@EXAMPLE.test", 0, 0, SC_OK, "alice@example.test" },
	{ "a.b.c@x.y", 0, 0, SC_OK, "a.b.c@x.y" },
	{ "!#$%&'*+-/=?^_`{|}~@x.y", 0, 0, SC_OK, "!#$%&'*+-/=?^_`{|}~@x.y" },
	{ "a@b", 0, 0, SC_OK, "a@b" },
	{ "a@1-2.x", 0, 0, SC_OK, "a@1-2.x" },
	{ "<a@b>", 0, B, SC_OK, "a@b" },
	{ "a@b", 0, B, SC_ERR_SYNTAX, "missing '<'" },
	{ "<a@b", 0, 0, SC_ERR_SYNTAX, "missing '>'" },
	{ "<", 0, 0, SC_ERR_SYNTAX, "missing '>'" },
	{ "a@b>", 0, 0, SC_ERR_SYNTAX, "invalid character in domain" },
	{ "<>", 0, 0, SC_ERR_SYNTAX, "null path <> names no mailbox" },
	{ "<<a@b>>", 0, 0, SC_ERR_SYNTAX, "invalid character in local part" },
	{ "", 0, 0, SC_ERR_SYNTAX, "empty address" },
	/* quoted local parts */
	{ "\"john doe\"@x.y", 0, 0, SC_OK, "\"john doe\"@x.y" },
	{ "\"John.Doe\"@x.y", 0, 0, SC_OK, "john.doe@x.y" },
	{ "\"a\\\"b\"@x", 0, 0, SC_OK, "\"a\\\"b\"@x" },
	{ "\"a\\\\b\"@x", 0, 0, SC_OK, "\"a\\\\b\"@x" },
	{ "\"\\a\\b\"@x", 0, 0, SC_OK, "ab@x" },
	{ "\"a..b\"@x", 0, 0, SC_OK, "\"a..b\"@x" },
	{ "\".a\"@x", 0, 0, SC_OK, "\".a\"@x" },
	{ "\"a@b\"@x", 0, 0, SC_OK, "\"a@b\"@x" },
	{ "\"\"@x", 0, 0, SC_ERR_SYNTAX, "empty local part" },
	{ "\"abc@x", 0, 0, SC_ERR_SYNTAX, "unterminated quoted string" },
	{ "\"a\"b@x", 0, 0, SC_ERR_SYNTAX, "text after quoted string" },
	{ "\"a\tb\"@x", 0, 0, SC_ERR_SYNTAX, "invalid character in quoted string" },
	{ "\"a\\\tb\"@x", 0, 0, SC_ERR_SYNTAX, "invalid quoted-pair" },
	{ "\"a\\", 0, 0, SC_ERR_SYNTAX, "invalid quoted-pair" },
	/* local-part structure */
	{ "@x.y", 0, 0, SC_ERR_SYNTAX, "empty local part" },
	{ ".a@x", 0, 0, SC_ERR_SYNTAX, "local part starts with a dot" },
	{ "a.@x", 0, 0, SC_ERR_SYNTAX, "local part ends with a dot" },
	{ "a..b@x", 0, 0, SC_ERR_SYNTAX, "consecutive dots in local part" },
	{ "a b@x", 0, 0, SC_ERR_SYNTAX, "invalid character in local part" },
	{ "a(b)@x", 0, 0, SC_ERR_SYNTAX, "invalid character in local part" },
	{ "alice", 0, 0, SC_ERR_SYNTAX, "missing @" },
	{ "\"alice\"", 0, 0, SC_ERR_SYNTAX, "missing @" },
	{ "a\0b@x", 5, 0, SC_ERR_SYNTAX, "NUL byte in address" },
	{ "a@x\0", 4, 0, SC_ERR_SYNTAX, "NUL byte in address" },
	{ " a@x", 0, 0, SC_ERR_SYNTAX, "invalid character in local part" },
	{ "a@x ", 0, 0, SC_ERR_SYNTAX, "invalid character in domain" },
	/* domains */
	{ "a@", 0, 0, SC_ERR_SYNTAX, "empty domain" },
	{ "a@.x", 0, 0, SC_ERR_SYNTAX, "domain starts with a dot" },
	{ "a@x.", 0, 0, SC_ERR_SYNTAX, "trailing dot in domain" },
	{ "a@x..y", 0, 0, SC_ERR_SYNTAX, "empty label in domain" },
	{ "a@-x.y", 0, 0, SC_ERR_SYNTAX, "label starts with a hyphen" },
	{ "a@x-.y", 0, 0, SC_ERR_SYNTAX, "label ends with a hyphen" },
	{ "a@x_y", 0, 0, SC_ERR_SYNTAX, "invalid character in domain" },
	{ "a@b@c", 0, 0, SC_ERR_SYNTAX, "invalid character in domain" },
	/* UTF-8 (RFC 6531 3.3, RFC 3629) */
	{ "J\xc3\xb6rg@b\xc3\xbc" "cher.de", 0, U, SC_OK, "j\xc3\xb6rg@b\xc3\xbc" "cher.de" },
	{ "\xc3\x96@x", 0, U, SC_OK, "\xc3\x96@x" }, /* no folding of non-ASCII */
	{ "\"J\xc3\xb6 rg\"@x", 0, U, SC_OK, "\"j\xc3\xb6 rg\"@x" },
	{ "\xe2\x82\xac@x", 0, U, SC_OK, "\xe2\x82\xac@x" },
	{ "\xf0\x9f\x98\x80@x", 0, U, SC_OK, "\xf0\x9f\x98\x80@x" },
	{ "J\xc3\xb6rg@x", 0, 0, SC_ERR_ENCODING, "non-ASCII address without SMTPUTF8" },
	{ "a@b\xc3\xbc" "cher.de", 0, 0, SC_ERR_ENCODING, NULL },
	{ "\xc0\xaf@x", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },          /* overlong */
	{ "\xe0\x80\xaf@x", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },      /* overlong */
	{ "\xed\xa0\x80@x", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },      /* surrogate */
	{ "\xf4\x90\x80\x80@x", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },  /* > U+10FFFF */
	{ "\xc3@x", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },              /* truncated */
	{ "a@x\xe2\x82", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },         /* truncated at end */
	{ "\x80@x", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },              /* lone continuation */
	{ "\xff@x", 0, U, SC_ERR_ENCODING, "invalid UTF-8" },
	/* address literals */
	{ "a@[192.0.2.1]", 0, 0, SC_ERR_UNSUPPORTED, "address literal not accepted" },
	{ "a@[192.0.2.1]", 0, L, SC_OK, "a@[192.0.2.1]" },
	{ "a@[IPv6:2001:DB8::1]", 0, L, SC_OK, "a@[ipv6:2001:db8::1]" },
	{ "a@[IPv6:::ffff:192.0.2.1]", 0, L, SC_OK, NULL },
	{ "a@[IPv6:2001:db8::g]", 0, L, SC_ERR_SYNTAX, "invalid IPv6 address literal" },
	/* RFC 5321 4.1.3: at most 6 groups besides "::" (4 with an IPv4 tail) */
	{ "a@[IPv6:1:2:3:4:5:6::]", 0, L, SC_OK, NULL },
	{ "a@[IPv6:1:2:3:4:5:6:7::]", 0, L, SC_ERR_SYNTAX, "invalid IPv6 address literal" },
	{ "a@[IPv6:1:2:3:4::1.2.3.4]", 0, L, SC_OK, NULL },
	{ "a@[IPv6:1:2:3:4:5::1.2.3.4]", 0, L, SC_ERR_SYNTAX, "invalid IPv6 address literal" },
	{ "a@[256.0.0.1]", 0, L, SC_ERR_SYNTAX, "invalid address literal" },
	{ "a@[1.2.3]", 0, L, SC_ERR_SYNTAX, "invalid address literal" },
	{ "a@[1.2.3.4.5]", 0, L, SC_ERR_SYNTAX, "invalid address literal" },
	{ "a@[1.2.3.4", 0, L, SC_ERR_SYNTAX, "unterminated address literal" },
	{ "a@[x-tag:stuff]", 0, L, SC_ERR_UNSUPPORTED, "unsupported address literal" },
	{ "a@[]", 0, L, SC_ERR_SYNTAX, "invalid address literal" },
	/* source routes: refused unless SC_ADDR_ROUTE, then accepted and ignored
	 * inside brackets (RFC 5321 4.1.2, Appendix C) */
	{ "<@a,@b.c:u@d>", 0, 0, SC_ERR_SYNTAX, "source route not accepted" },
	{ "<@a,@b.c:u@d>", 0, R, SC_OK, "u@d" },
	{ "<@a:U@D>", 0, B | R, SC_OK, "u@d" },
	{ "<@a,u@d>", 0, R, SC_ERR_SYNTAX, "invalid source route" },
	{ "<@a:>", 0, R, SC_ERR_SYNTAX, "empty local part" },
	{ "<@-a:u@d>", 0, R, SC_ERR_SYNTAX, "label starts with a hyphen" },
	{ "<@a u@d>", 0, R, SC_ERR_SYNTAX, "invalid source route" },
	{ "@a:u@d", 0, R, SC_ERR_SYNTAX, "empty local part" },
};

static void check_case(const struct addr_case *c)
{
	struct sc_addr a;
	const char *why = "unset";
	size_t len = c->len ? c->len : strlen(c->in);
	sc_status rc = sc_addr_parse(c->in, len, c->flags, &a, &why);

	if (rc != c->want)
		fail_msg("\"%s\": got %s (%s), want %s", c->in, sc_strerror(rc), why,
			 sc_strerror(c->want));
	assert_non_null(why);
	if (rc == SC_OK && c->key_or_why) {
		char key[SC_ADDR_KEY_MAX];
		size_t klen = 0;

		assert_int_equal(sc_addr_key(&a, key, sizeof key, &klen), SC_OK);
		assert_int_equal(klen, strlen(key));
		if (strcmp(key, c->key_or_why) != 0)
			fail_msg("\"%s\": key \"%s\", want \"%s\"", c->in, key, c->key_or_why);
	} else if (rc != SC_OK && c->key_or_why) {
		if (strcmp(why, c->key_or_why) != 0)
			fail_msg("\"%s\": reason \"%s\", want \"%s\"", c->in, why, c->key_or_why);
	}
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_case(&cases[i]);
}

static void test_output_flags(void **state)
{
	struct sc_addr a;
	const char *why;

	(void)state;
	assert_int_equal(sc_addr_parse("\"x\"@y", 5, 0, &a, &why), SC_OK);
	assert_int_equal(a.flags, SC_ADDR_IS_QUOTED);
	assert_string_equal(a.local, "x");
	assert_string_equal(a.domain, "y");
	assert_int_equal(sc_addr_parse("x@[1.2.3.4]", 11, L, &a, &why), SC_OK);
	assert_int_equal(a.flags, SC_ADDR_IS_LITERAL);
	assert_string_equal(a.domain, "[1.2.3.4]");
	assert_int_equal(sc_addr_parse("\xc3\xb6@y", 4, U, &a, &why), SC_OK);
	assert_int_equal(a.flags, SC_ADDR_IS_UTF8);
	assert_int_equal(sc_addr_parse("o@y", 3, U, &a, &why), SC_OK);
	assert_int_equal(a.flags, 0);
	/* A failed parse leaves a zeroed struct, never half an address. */
	assert_int_equal(sc_addr_parse("abc@x..y", 8, 0, &a, &why), SC_ERR_SYNTAX);
	assert_string_equal(a.local, "");
	/* Arguments. */
	assert_int_equal(sc_addr_parse(NULL, 3, 0, &a, &why), SC_ERR_ARG);
	assert_int_equal(sc_addr_parse("a@b", 3, 0, NULL, &why), SC_ERR_ARG);
	assert_int_equal(sc_addr_parse("a@b", 3, 0, &a, NULL), SC_OK);
}

static void fill(char *p, char c, size_t n)
{
	memset(p, c, n);
}

/* RFC 5321 4.5.3.1: 64-octet local part, 255-octet domain, 63-octet labels. */
static void test_limits(void **state)
{
	char s[600];
	struct sc_addr a;
	const char *why;
	size_t n;

	(void)state;
	/* 64-octet local part: ok; 65: too long. */
	fill(s, 'a', 64);
	memcpy(s + 64, "@x", 2);
	assert_int_equal(sc_addr_parse(s, 66, 0, &a, &why), SC_OK);
	fill(s, 'a', 65);
	memcpy(s + 65, "@x", 2);
	assert_int_equal(sc_addr_parse(s, 67, 0, &a, &why), SC_ERR_TOO_LONG);
	assert_string_equal(why, "local part too long");
	/* Quoted dot-atom of 64 (66 written): measured canonically, so ok. */
	s[0] = '"';
	fill(s + 1, 'b', 64);
	memcpy(s + 65, "\"@x", 3);
	assert_int_equal(sc_addr_parse(s, 68, 0, &a, &why), SC_OK);
	assert_int_equal(strlen(a.local), 64);
	/* Quoted non-atom content of 62 plus quotes = 64: ok; 63 + quotes: too long. */
	s[0] = '"';
	fill(s + 1, ' ', 62);
	memcpy(s + 63, "\"@x", 3);
	assert_int_equal(sc_addr_parse(s, 66, 0, &a, &why), SC_OK);
	fill(s + 1, ' ', 63);
	memcpy(s + 64, "\"@x", 3);
	assert_int_equal(sc_addr_parse(s, 67, 0, &a, &why), SC_ERR_TOO_LONG);
	/* Escapes count in the canonical form too: 31 '"' need 62 + 2. */
	n = 0;
	s[n++] = '"';
	for (int i = 0; i < 31; i++) {
		s[n++] = '\\';
		s[n++] = '"';
	}
	memcpy(s + n, "\"@x", 3);
	assert_int_equal(sc_addr_parse(s, n + 3, 0, &a, &why), SC_OK);
	/* Labels: 63 ok, 64 too long. */
	memcpy(s, "a@", 2);
	fill(s + 2, 'l', 63);
	assert_int_equal(sc_addr_parse(s, 65, 0, &a, &why), SC_OK);
	fill(s + 2, 'l', 64);
	assert_int_equal(sc_addr_parse(s, 66, 0, &a, &why), SC_ERR_TOO_LONG);
	assert_string_equal(why, "label too long");
	/* Domain: 255 ok (4 labels of 63 + 3 dots = 255), 257 too long. */
	n = 2;
	for (int i = 0; i < 4; i++) {
		if (i)
			s[n++] = '.';
		fill(s + n, 'd', 63);
		n += 63;
	}
	assert_int_equal(n - 2, 255);
	assert_int_equal(sc_addr_parse(s, n, 0, &a, &why), SC_OK);
	assert_int_equal(strlen(a.domain), 255);
	memcpy(s + n, ".e", 2);
	assert_int_equal(sc_addr_parse(s, n + 2, 0, &a, &why), SC_ERR_TOO_LONG);
	assert_string_equal(why, "domain too long");
	assert_int_equal(sc_domain_check(s + 2, n + 2 - 2, 0), SC_ERR_TOO_LONG);
}

static void test_key_format(void **state)
{
	struct sc_addr a, b;
	const char *why;
	char buf[SC_ADDR_KEY_MAX];
	size_t len;

	(void)state;
	assert_int_equal(sc_addr_parse("\"John \\\"J\\\" Doe\"@Example.TEST", 29, 0, &a, &why),
			 SC_OK);
	assert_string_equal(a.local, "John \"J\" Doe");
	assert_int_equal(sc_addr_format(&a, buf, sizeof buf), SC_OK);
	assert_string_equal(buf, "\"John \\\"J\\\" Doe\"@Example.TEST");
	assert_int_equal(sc_addr_key(&a, buf, sizeof buf, &len), SC_OK);
	assert_string_equal(buf, "\"john \\\"j\\\" doe\"@example.test");
	/* Too small buffers: TOO_LONG and an empty string, never an overflow. */
	assert_int_equal(sc_addr_key(&a, buf, 10, &len), SC_ERR_TOO_LONG);
	assert_string_equal(buf, "");
	assert_int_equal(sc_addr_format(&a, buf, 1), SC_ERR_TOO_LONG);
	assert_int_equal(sc_addr_format(&a, buf, 0), SC_ERR_TOO_LONG);
	/* Exactly fitting. */
	assert_int_equal(sc_addr_parse("ab@cd", 5, 0, &a, &why), SC_OK);
	assert_int_equal(sc_addr_key(&a, buf, 6, &len), SC_OK);
	assert_int_equal(len, 5);
	assert_int_equal(sc_addr_key(&a, buf, 5, &len), SC_ERR_TOO_LONG);
	/* Equality through keys. */
	assert_int_equal(sc_addr_parse("<AB@CD>", 7, 0, &b, &why), SC_OK);
	assert_true(sc_addr_equal(&a, &b));
	assert_int_equal(sc_addr_parse("\"ab\"@cD", 7, 0, &b, &why), SC_OK);
	assert_true(sc_addr_equal(&a, &b));
	assert_int_equal(sc_addr_parse("ab@cd.e", 7, 0, &b, &why), SC_OK);
	assert_false(sc_addr_equal(&a, &b));
	assert_false(sc_addr_equal(&a, NULL));
	/* Hand-built structs: a trailing dot is dropped from the key; unterminated
	 * or empty fields are refused. */
	memset(&b, 0, sizeof b);
	memcpy(b.local, "Ab", 2);
	memcpy(b.domain, "CD.", 3);
	assert_int_equal(sc_addr_key(&b, buf, sizeof buf, NULL), SC_OK);
	assert_string_equal(buf, "ab@cd");
	memset(b.local, 'x', sizeof b.local);
	assert_int_equal(sc_addr_key(&b, buf, sizeof buf, NULL), SC_ERR_ARG);
	memset(&b, 0, sizeof b);
	assert_int_equal(sc_addr_format(&b, buf, sizeof buf), SC_ERR_ARG);
	memcpy(b.local, "a\nb", 3);
	memcpy(b.domain, "x", 1);
	assert_int_equal(sc_addr_key(&b, buf, sizeof buf, NULL), SC_ERR_ARG);
	memcpy(b.local, "a\xc3", 2);
	b.local[2] = '\0';
	assert_int_equal(sc_addr_format(&b, buf, sizeof buf), SC_ERR_ARG);
	assert_false(sc_addr_equal(&b, &b));
	memcpy(b.local, "ok", 3);
	memcpy(b.domain, "x\x7f", 3);
	assert_int_equal(sc_addr_key(&b, buf, sizeof buf, NULL), SC_ERR_ARG);
	/* The worst case fits SC_ADDR_KEY_MAX: 64 octets of '"' quoted... cannot be
	 * parsed (canonical > 64), but a hand-built struct can hold it. */
	memset(&b, 0, sizeof b);
	memset(b.local, '"', SC_LOCAL_MAX);
	memset(b.domain, 'd', SC_DOMAIN_MAX);
	assert_int_equal(sc_addr_key(&b, buf, sizeof buf, &len), SC_OK);
	assert_int_equal(len, SC_ADDR_KEY_MAX - 1);
}

static void test_domain_helpers(void **state)
{
	(void)state;
	assert_true(sc_domain_equal("Example.TEST", "example.test"));
	assert_true(sc_domain_equal("example.test.", "EXAMPLE.test"));
	assert_true(sc_domain_equal("example.test.", "example.test."));
	assert_false(sc_domain_equal("example.test..", "example.test"));
	assert_false(sc_domain_equal("example.test", "example.tes"));
	assert_false(sc_domain_equal("b\xc3\xbc", "B\xc3\x9c")); /* ASCII folding only */
	assert_false(sc_domain_equal(NULL, "x"));

	assert_int_equal(sc_domain_check("example.test", 12, 0), SC_OK);
	assert_int_equal(sc_domain_check("example.test.", 13, 0), SC_ERR_SYNTAX);
	assert_int_equal(sc_domain_check("", 0, 0), SC_ERR_SYNTAX);
	assert_int_equal(sc_domain_check("a\0b", 3, 0), SC_ERR_SYNTAX);
	assert_int_equal(sc_domain_check("a b", 3, 0), SC_ERR_SYNTAX);
	assert_int_equal(sc_domain_check("[1.2.3.4]", 9, SC_ADDR_LITERAL), SC_ERR_SYNTAX);
	assert_int_equal(sc_domain_check("b\xc3\xbc" "cher.de", 9, 0), SC_ERR_ENCODING);
	assert_int_equal(sc_domain_check("b\xc3\xbc" "cher.de", 9, U), SC_OK);
	assert_int_equal(sc_domain_check("b\xc3" "cher.de", 8, U), SC_ERR_ENCODING);
	assert_int_equal(sc_domain_check("xn--bcher-kva.de", 16, 0), SC_OK);
	assert_int_equal(sc_domain_check(NULL, 1, 0), SC_ERR_ARG);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(sc_utf8_valid("", 0));
	assert_true(sc_utf8_valid("a\0b", 3));
	assert_true(sc_utf8_valid("\xc2\x80", 2));          /* U+0080 */
	assert_true(sc_utf8_valid("\xdf\xbf", 2));          /* U+07FF */
	assert_true(sc_utf8_valid("\xe0\xa0\x80", 3));      /* U+0800 */
	assert_true(sc_utf8_valid("\xed\x9f\xbf", 3));      /* U+D7FF */
	assert_true(sc_utf8_valid("\xee\x80\x80", 3));      /* U+E000 */
	assert_true(sc_utf8_valid("\xef\xbf\xbf", 3));      /* U+FFFF */
	assert_true(sc_utf8_valid("\xf0\x90\x80\x80", 4));  /* U+10000 */
	assert_true(sc_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	assert_false(sc_utf8_valid("\xc1\xbf", 2));         /* overlong */
	assert_false(sc_utf8_valid("\xe0\x9f\xbf", 3));     /* overlong */
	assert_false(sc_utf8_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong */
	assert_false(sc_utf8_valid("\xed\xbf\xbf", 3));     /* surrogate */
	assert_false(sc_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(sc_utf8_valid("\xf5\x80\x80\x80", 4));
	assert_false(sc_utf8_valid("\xe2\x82", 2));         /* truncated */
	assert_false(sc_utf8_valid("\xe2\x28\xa1", 3));     /* bad continuation */
	assert_false(sc_utf8_valid("\xf0\x90\x80\xc0", 4)); /* bad last continuation */
	assert_int_equal(sc_utf8_seq((const unsigned char *)"A", 1), 1);
	assert_int_equal(sc_utf8_seq((const unsigned char *)"\xe2\x82\xac", 3), 3);
	assert_int_equal(sc_utf8_seq((const unsigned char *)"\xe2\x82\xac", 2), 0);
	assert_int_equal(sc_utf8_seq((const unsigned char *)"", 0), 0);
}

/* ---- golden files ----------------------------------------------------------- */

static const char *status_name(sc_status rc)
{
	switch (rc) {
	case SC_OK: return "OK";
	case SC_ERR_SYNTAX: return "SYNTAX";
	case SC_ERR_TOO_LONG: return "TOO_LONG";
	case SC_ERR_ENCODING: return "ENCODING";
	case SC_ERR_UNSUPPORTED: return "UNSUPPORTED";
	default: return "OTHER";
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undo C escapes in place-independent fashion; @return decoded length. */
static size_t unescape(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; s[i] && n < size; i++) {
		char c = s[i];

		if (c == '\\' && s[i + 1]) {
			c = s[++i];
			switch (c) {
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case '0': c = '\0'; break;
			case 'x':
				assert_true(hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
				c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
				i += 2;
				break;
			default: break; /* \\ \" and anything else: the character itself */
			}
		}
		out[n++] = c;
	}
	return n;
}

/* Escape for the .ref file: backslash and control bytes; UTF-8 kept readable. */
static void escape(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; *s && n + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\') {
			out[n++] = '\\';
			out[n++] = '\\';
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

static void golden_result(const char *line, char *res, size_t size)
{
	unsigned flags = 0;
	const char *sp = strchr(line, ' ');
	char in[1024];
	size_t n;
	struct sc_addr a;
	const char *why = NULL;
	sc_status rc;

	assert_non_null(sp);
	for (const char *f = line; f < sp; f++) {
		switch (*f) {
		case 'u': flags |= U; break;
		case 'l': flags |= L; break;
		case 'b': flags |= B; break;
		case 'r': flags |= R; break;
		case '-': break;
		default: fail_msg("bad flag in golden line: %s", line);
		}
	}
	n = unescape(sp + 1, in, sizeof in);
	rc = sc_addr_parse(in, n, flags, &a, &why);
	if (rc == SC_OK) {
		char key[SC_ADDR_KEY_MAX], fmt[SC_ADDR_KEY_MAX], ek[4 * SC_ADDR_KEY_MAX],
			ef[4 * SC_ADDR_KEY_MAX];

		assert_int_equal(sc_addr_key(&a, key, sizeof key, NULL), SC_OK);
		assert_int_equal(sc_addr_format(&a, fmt, sizeof fmt), SC_OK);
		escape(key, ek, sizeof ek);
		escape(fmt, ef, sizeof ef);
		snprintf(res, size, "OK key=%s fmt=%s", ek, ef);
	} else {
		snprintf(res, size, "%s %s", status_name(rc), why);
	}
}

static FILE *open_data(const char *name)
{
	const char *dir = getenv("SC_SOURCE_DIR");
	char path[4096];
	FILE *f;

	if (!dir)
		dir = ".";
	snprintf(path, sizeof path, "%s/tests/unit/data/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s (set SC_SOURCE_DIR)", path);
	return f;
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static void test_golden(void **state)
{
	FILE *in = open_data("addr.in");
	const char *regen = getenv("SC_REGEN_GOLDEN");
	FILE *ref = NULL, *out = NULL;
	char line[2048], want[4096], got[4096];
	int cases_run = 0, lineno = 0;

	(void)state;
	if (regen) {
		out = fopen(regen, "w");
		assert_non_null(out);
	} else {
		ref = open_data("addr.ref");
	}
	while (fgets(line, sizeof line, in)) {
		lineno++;
		chomp(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		golden_result(line, got, sizeof got);
		cases_run++;
		if (out) {
			fprintf(out, "%s\n", got);
			continue;
		}
		if (!fgets(want, sizeof want, ref))
			fail_msg("addr.ref ends before addr.in line %d", lineno);
		chomp(want);
		if (strcmp(want, got) != 0)
			fail_msg("addr.in line %d \"%s\":\n  got  %s\n  want %s", lineno, line, got,
				 want);
	}
	if (ref) {
		assert_null(fgets(want, sizeof want, ref)); /* no extra expectations */
		fclose(ref);
	}
	if (out)
		fclose(out);
	fclose(in);
	assert_true(cases_run > 50);
}

/* Every octet in a bare local part: accepted exactly when it is RFC 5322 atext
 * (or the dot between two atoms), and the key is then the address folded; a
 * quoted local part holding the octet gets its key quoted unless it is atext. */
static void test_atext_every_octet(void **state)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";

	(void)state;
	for (int c = 0; c < 256; c++) {
		int atext = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || (c != 0 && strchr(specials, c));
		char in[16], key[64], want[64];
		struct sc_addr a;
		const char *why = NULL;
		sc_status rc;

		snprintf(in, sizeof in, "a%cb@Example.ORG", c);
		if (c == 0)
			memcpy(in, "a\0b@Example.ORG", 16);
		rc = sc_addr_parse(in, 15, 0, &a, &why);
		if (atext || c == '.') {
			assert_int_equal(rc, SC_OK);
			assert_int_equal(sc_addr_key(&a, key, sizeof key, NULL), SC_OK);
			snprintf(want, sizeof want, "a%cb@example.org",
				 c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
			assert_string_equal(key, want);
		} else {
			assert_int_not_equal(rc, SC_OK);
		}
		/* quoted: every printable ASCII octet is qtext or escaped */
		if (c >= 32 && c < 127) {
			char q[16];
			int qn = snprintf(q, sizeof q, "\"a%s%cb\"@x.org",
					  c == '"' || c == '\\' ? "\\" : "", c);

			assert_int_equal(sc_addr_parse(q, (size_t)qn, 0, &a, &why), SC_OK);
			assert_int_equal(sc_addr_key(&a, key, sizeof key, NULL), SC_OK);
			if (atext || c == '.')
				assert_true(key[0] != '"' || c == '.'); /* "a.b" is a dot-atom */
			else
				assert_int_equal(key[0], '"');
		}
	}
}

/* The key at the exact size and one octet short, bare and quoted, with the
 * trailing dot of an absolute domain dropped. */
static void test_key_exact_sizes(void **state)
{
	static const struct {
		const char *in, *key;
	} sizes[] = {
		{ "Bob@Example.ORG", "bob@example.org" },
		{ "\"B b\"@Example.ORG", "\"b b\"@example.org" },
		{ "a.B.c@x", "a.b.c@x" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct sc_addr a;
		const char *why = NULL;
		char buf[64];
		size_t n = strlen(sizes[i].key), len = 0;

		assert_int_equal(sc_addr_parse(sizes[i].in, strlen(sizes[i].in), 0, &a, &why),
				 SC_OK);
		memset(buf, '#', sizeof buf);
		assert_int_equal(sc_addr_key(&a, buf, n + 1, &len), SC_OK);
		assert_string_equal(buf, sizes[i].key);
		assert_int_equal(len, n);
		assert_int_equal(buf[n + 1], '#');
		memset(buf, '#', sizeof buf);
		assert_int_equal(sc_addr_key(&a, buf, n, &len), SC_ERR_TOO_LONG);
		assert_int_equal(buf[0], '\0');
		assert_int_equal(buf[n], '#');
	}
	/* a struct built by hand with an absolute domain: the dot is not keyed */
	{
		struct sc_addr a;
		char buf[32];
		size_t len = 0;

		memset(&a, 0, sizeof a);
		memcpy(a.local, "Bob", 4);
		memcpy(a.domain, "Example.ORG.", 13);
		assert_int_equal(sc_addr_key(&a, buf, 16, &len), SC_OK);
		assert_string_equal(buf, "bob@example.org");
		assert_int_equal(len, 15);
		assert_int_equal(sc_addr_key(&a, buf, 15, &len), SC_ERR_TOO_LONG);
		assert_int_equal(buf[0], '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_output_flags),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_key_format),
		cmocka_unit_test(test_domain_helpers),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_atext_every_octet),
		cmocka_unit_test(test_key_exact_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
