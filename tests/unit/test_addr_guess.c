/*
 * test_addr_guess.c - unit tests for sc_addr_key_guess() (lib/addr_key.c, declared
 * in lib/addr_int.h): the lookup key guessed from a raw CERT/CERS argument
 * without a full parse, which sc_repo_prefetch() uses as a hint.
 *
 * What must hold: for an address without quotes, escapes or spaces (UTF-8,
 * address literals, a trailing dot of the domain, the longest address) the
 * guess is exactly the key sc_addr_key() gives; quoted local parts, spaces,
 * control characters, an embedded NUL, no local part or domain, unbalanced
 * brackets and input longer than any key get no guess; a guess never writes
 * past the room it is given, and one that does not fit is no guess.
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

static void guess_equals_key(const char *text, unsigned flags)
{
	size_t len = strlen(text), klen = 0, g;
	struct sc_addr a;
	char key[SC_ADDR_KEY_MAX], buf[SC_ADDR_KEY_MAX + 8];

	if (sc_addr_parse(text, len, flags, &a, NULL) != SC_OK) {
		/* sc_addr_parse() refuses a trailing dot of the domain, which
		 * sc_addr_key() drops (certificates may carry one): the key of the
		 * address with the dot put back into its domain */
		char plain[SC_ADDR_KEY_MAX];
		size_t n = len, dn;

		assert_true(len < sizeof plain && len >= 2);
		memcpy(plain, text, len + 1);
		if (plain[n - 1] == '>')
			n--;
		if (plain[n - 1] != '.')
			fail_msg("test address does not parse: %s", text);
		memmove(plain + n - 1, plain + n, len - n + 1);
		if (sc_addr_parse(plain, len - 1, flags, &a, NULL) != SC_OK)
			fail_msg("test address does not parse: %s", plain);
		dn = strlen(a.domain);
		assert_true(dn + 1 < sizeof a.domain);
		a.domain[dn] = '.';
		a.domain[dn + 1] = '\0';
	}
	assert_int_equal(sc_addr_key(&a, key, sizeof key, &klen), SC_OK);
	memset(buf, 'Z', sizeof buf);
	g = sc_addr_key_guess(text, len, buf, sizeof buf);
	if (g != klen || strcmp(buf, key) != 0)
		fail_msg("guess for %s: %zu \"%.*s\", key %zu \"%s\"", text, g, (int)g, buf,
			 klen, key);
	/* exactly the room for the key and its NUL is enough; one less is not,
	 * and then nothing is written past it */
	memset(buf, 'Z', sizeof buf);
	assert_int_equal(sc_addr_key_guess(text, len, buf, klen + 1), klen);
	assert_string_equal(buf, key);
	memset(buf, 'Z', sizeof buf);
	assert_int_equal(sc_addr_key_guess(text, len, buf, klen), 0);
	for (size_t i = klen; i < sizeof buf; i++)
		assert_int_equal(buf[i], 'Z');
}

static void guess_refuses(const char *text, size_t len)
{
	char buf[SC_ADDR_KEY_MAX];

	if (sc_addr_key_guess(text, len, buf, sizeof buf) != 0)
		fail_msg("a guess for \"%.*s\" (%zu octets)", (int)len, text, len);
}

static void test_key_guess(void **state)
{
	static const char *const same[] = {
		"alice@example.test", "Alice@Example.TEST", "<Alice@Example.TEST>",
		"alice@example.test.", "<ALICE@EXAMPLE.TEST.>", "x@y",
		"First.Last+Tag@Sub.Example.Test", "a!#$%&'*+/=?^_`{|}~-@x.test",
		"jörg@bücher.example", "JÖRG@Bücher.Example.", "<δοκιμή@παράδειγμα.δοκιμή>",
		"用户@例子.广告", "user@[192.0.2.1]", "user@[IPv6:2001:DB8::1]",
	};
	static const char *const refused[] = {
		"\"alice\"@example.test", "\"a b\"@x.test", "<\"a\\\"b\"@x.test>",
		"a b@x.test", " a@x.test", "a@x.test ", "a\tb@x.test", "a\\b@x.test",
		"alice.example.test", "@example.test", "<@example.test>", "alice@",
		"<alice@>", "alice@.", "<>", "<", ">", "<a@b", "a@b>", "<<a@b>>",
		"a\x7f@x.test", "a@b,<c@d>", "",
	};
	char longest[SC_LOCAL_MAX + 1 + SC_DOMAIN_MAX + 1], over[2001];
	char buf[SC_ADDR_KEY_MAX];

	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
		guess_equals_key(same[i], SC_ADDR_UTF8 | SC_ADDR_LITERAL);
	/* the longest address there is: 64 + '@' + 4 labels of 63 and 3 dots */
	memset(longest, 'a', SC_LOCAL_MAX);
	longest[SC_LOCAL_MAX] = '@';
	memset(longest + SC_LOCAL_MAX + 1, 'B', SC_DOMAIN_MAX);
	for (int i = 1; i < 4; i++)
		longest[SC_LOCAL_MAX + i * 64] = '.';
	longest[sizeof longest - 1] = '\0';
	assert_int_equal(strlen(longest), SC_LOCAL_MAX + 1 + SC_DOMAIN_MAX);
	guess_equals_key(longest, 0);

	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		guess_refuses(refused[i], strlen(refused[i]));
	guess_refuses("a@b\0c", 5);          /* embedded NUL */
	guess_refuses("a\0@b.test", 9);
	guess_refuses("alice@example.test", 0);
	memset(over, 'a', sizeof over);
	over[1000] = '@';
	guess_refuses(over, sizeof over); /* 2001 octets: no key that long */
	assert_int_equal(sc_addr_key_guess("a@b", 3, buf, 0), 0);
	assert_int_equal(sc_addr_key_guess("a@b", 3, buf, 3), 0);
	assert_int_equal(sc_addr_key_guess("a@b", 3, buf, 4), 3);
	assert_string_equal(buf, "a@b");
	/* the trailing dot goes before the room is counted, brackets too */
	assert_int_equal(sc_addr_key_guess("<A@B.>", 6, buf, 4), 3);
	assert_string_equal(buf, "a@b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_guess),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
