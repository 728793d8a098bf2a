/*
 * test_mime.c - unit tests for lib/mime.c and lib/mime_addr.c: header block
 * parsing (CRLF/LF, folding, limits, NUL, incremental SC_AGAIN), lookup,
 * unfolding, the message kind from Content-Type, the S/MIME outer/inner split
 * and RFC 5322 address lists (display names, comments, groups, obsolete forms).
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

static sc_mime_header *parse_ok(const char *s, int is_all, size_t want_consumed)
{
	sc_mime_header *h = NULL;
	size_t used = 99;

	assert_int_equal(sc_mime_header_parse(s, strlen(s), is_all, &h, &used), SC_OK);
	assert_non_null(h);
	assert_int_equal(used, want_consumed);
	return h;
}

static sc_status parse_rc(const char *s, size_t len, int is_all)
{
	sc_mime_header *h = (sc_mime_header *)1;
	size_t used = 99;
	sc_status rc = sc_mime_header_parse(s, len, is_all, &h, &used);

	if (rc != SC_OK) {
		assert_null(h);
		assert_int_equal(used, 0);
	}
	sc_mime_header_free(rc == SC_OK ? h : NULL);
	return rc;
}

static void assert_field(const struct sc_mime_field *f, const char *name, const char *value)
{
	assert_non_null(f);
	assert_int_equal(f->name_len, strlen(name));
	assert_memory_equal(f->name, name, f->name_len);
	assert_int_equal(f->value_len, strlen(value));
	assert_memory_equal(f->value, value, f->value_len);
}

static void test_parse_crlf(void **state)
{
	const char *m = "From: a@b\r\nTo: c@d,\r\n e@f\r\nSubject: hi\r\n\r\nbody\r\n";
	sc_mime_header *h = parse_ok(m, 1, strlen(m) - 6);
	const struct sc_mime_field *f;

	(void)state;
	assert_int_equal(sc_mime_header_count(h), 3);
	assert_field(sc_mime_header_field(h, 0), "From", " a@b");
	assert_field(sc_mime_header_field(h, 1), "To", " c@d,\r\n e@f");
	f = sc_mime_header_field(h, 1);
	assert_int_equal(f->raw_len, strlen("To: c@d,\r\n e@f\r\n"));
	assert_memory_equal(f->raw, "To: c@d,\r\n e@f\r\n", f->raw_len);
	assert_null(sc_mime_header_field(h, 3));
	assert_ptr_equal(sc_mime_header_find(h, "subject", 0), sc_mime_header_field(h, 2));
	assert_null(sc_mime_header_find(h, "subject", 1));
	assert_null(sc_mime_header_find(h, "Subj", 0));
	sc_mime_header_free(h);
}

static void test_parse_lf(void **state)
{
	const char *m = "Received: x\nReceived: y\n\tz\nX-A:\n\nbody";
	sc_mime_header *h = parse_ok(m, 0, strlen(m) - 4);

	(void)state;
	assert_int_equal(sc_mime_header_count(h), 3);
	assert_field(sc_mime_header_find(h, "received", 1), "Received", " y\n\tz");
	assert_field(sc_mime_header_field(h, 2), "X-A", "");
	sc_mime_header_free(h);
}

static void test_parse_edges(void **state)
{
	sc_mime_header *h;
	const char *obs = "Subject : x\r\n\r\n";

	(void)state;
	/* no body at all, header only (RFC 5322 3.5) */
	h = parse_ok("A: 1\r\nB: 2", 1, strlen("A: 1\r\nB: 2"));
	assert_int_equal(sc_mime_header_count(h), 2);
	assert_field(sc_mime_header_field(h, 1), "B", " 2");
	sc_mime_header_free(h);
	/* empty header */
	h = parse_ok("\r\nbody", 1, 2);
	assert_int_equal(sc_mime_header_count(h), 0);
	sc_mime_header_free(h);
	h = parse_ok("", 1, 0);
	assert_int_equal(sc_mime_header_count(h), 0);
	sc_mime_header_free(h);
	/* obs-optional: white space before the colon */
	h = parse_ok(obs, 1, strlen(obs));
	assert_field(sc_mime_header_field(h, 0), "Subject", " x");
	sc_mime_header_free(h);
	/* 8-bit values (RFC 6532 UTF-8, or not UTF-8 at all) are kept as octets */
	h = parse_ok("Subject: J\xc3\xbcrgen \xff\xfe\r\n\r\n", 1, 23);
	assert_field(sc_mime_header_field(h, 0), "Subject", " J\xc3\xbcrgen \xff\xfe");
	sc_mime_header_free(h);
	/* a CR inside a line stays in the value */
	h = parse_ok("A: x\ry\r\n\r\n", 1, 10);
	assert_field(sc_mime_header_field(h, 0), "A", " x\ry");
	sc_mime_header_free(h);
}

static void test_parse_errors(void **state)
{
	char *big;
	size_t i, n;

	(void)state;
	assert_int_equal(parse_rc(" folded first\r\n\r\n", 17, 1), SC_ERR_SYNTAX);
	assert_int_equal(parse_rc("no colon\r\n\r\n", 12, 1), SC_ERR_SYNTAX);
	assert_int_equal(parse_rc(": empty name\r\n\r\n", 16, 1), SC_ERR_SYNTAX);
	assert_int_equal(parse_rc("Bad\x01Name: x\r\n\r\n", 16, 1), SC_ERR_SYNTAX);
	assert_int_equal(parse_rc("B\xc3\xa4" "d: x\r\n\r\n", 12, 1), SC_ERR_SYNTAX);
	assert_int_equal(parse_rc("A: x\0y\r\n\r\n", 10, 1), SC_ERR_SYNTAX);
	assert_int_equal(parse_rc("A: x\0y", 6, 0), SC_ERR_SYNTAX);
	assert_int_equal(parse_rc("From someone Sat\r\n\r\n", 20, 1), SC_ERR_SYNTAX);
	/* incomplete: more input needed */
	assert_int_equal(parse_rc("A: x\r\nB: y\r\n", 12, 0), SC_AGAIN);
	assert_int_equal(parse_rc("A: x\r\nB: y\r", 11, 0), SC_AGAIN);
	assert_int_equal(parse_rc("", 0, 0), SC_AGAIN);
	assert_int_equal(parse_rc(NULL, 0, 0), SC_AGAIN);
	assert_int_equal(sc_mime_header_parse("x", 1, 1, NULL, &n), SC_ERR_ARG);

	/* a line over 998 octets, complete or not */
	big = malloc(SC_MIME_HEADER_MAX + 4096);
	assert_non_null(big);
	memcpy(big, "A: ", 3);
	memset(big + 3, 'x', 996);
	memcpy(big + 999, "\r\n\r\n", 4);
	assert_int_equal(parse_rc(big, 1003, 1), SC_ERR_TOO_LONG);
	assert_int_equal(parse_rc(big, 1002, 0), SC_ERR_TOO_LONG);
	memcpy(big + 998, "\r\n\r\n", 4); /* exactly 998: fine */
	assert_int_equal(parse_rc(big, 1002, 1), SC_OK);
	assert_int_equal(parse_rc(big, 1001, 0), SC_AGAIN);

	/* too many fields */
	for (i = 0, n = 0; i < SC_MIME_FIELDS_MAX + 1; i++)
		n += (size_t)snprintf(big + n, 16, "F%zu: v\n", i);
	memcpy(big + n, "\n", 1);
	assert_int_equal(parse_rc(big, n + 1, 1), SC_ERR_TOO_MANY);

	/* a block over SC_MIME_HEADER_MAX: continuation lines of 100 octets */
	memcpy(big, "A: x\n", 5);
	for (n = 5; n + 101 < SC_MIME_HEADER_MAX + 2048; n += 101) {
		memset(big + n, 'y', 100);
		big[n] = ' ';
		big[n + 100] = '\n';
	}
	big[n] = '\n';
	assert_int_equal(parse_rc(big, n + 1, 1), SC_ERR_TOO_LONG);
	assert_int_equal(parse_rc(big, n, 0), SC_ERR_TOO_LONG);
	assert_int_equal(parse_rc(big, SC_MIME_HEADER_MAX, 0), SC_ERR_TOO_LONG);
	free(big);
}

static void test_unfold(void **state)
{
	const char *m = "Subject:  a\r\n  b\r\n\tc  \r\n\r\n";
	sc_mime_header *h = parse_ok(m, 1, strlen(m));
	char buf[64];

	(void)state;
	assert_int_equal(sc_mime_unfold(sc_mime_header_field(h, 0), buf, sizeof buf), SC_OK);
	assert_string_equal(buf, "a  b\tc");
	assert_int_equal(sc_mime_unfold(sc_mime_header_field(h, 0), buf, 6), SC_ERR_TOO_LONG);
	assert_int_equal(sc_mime_unfold(sc_mime_header_field(h, 0), buf, 7), SC_OK);
	assert_int_equal(sc_mime_unfold(NULL, buf, 7), SC_ERR_ARG);
	sc_mime_header_free(h);
}

static enum sc_mime_kind kind_of(const char *ct)
{
	char m[512];
	sc_mime_header *h = NULL;
	size_t used;
	enum sc_mime_kind k;

	snprintf(m, sizeof m, "From: a@b\r\n%s\r\n\r\n", ct);
	assert_int_equal(sc_mime_header_parse(m, strlen(m), 1, &h, &used), SC_OK);
	k = sc_mime_header_kind(h);
	sc_mime_header_free(h);
	return k;
}

static void test_kind(void **state)
{
	(void)state;
	assert_int_equal(kind_of("X-A: b"), SC_MIME_PLAIN);
	assert_int_equal(kind_of("Content-Type: text/plain; charset=utf-8"), SC_MIME_PLAIN);
	assert_int_equal(kind_of("Content-Type: application/pkcs7-mime; "
				 "smime-type=enveloped-data; name=smime.p7m"), SC_MIME_ENCRYPTED);
	assert_int_equal(kind_of("Content-Type: Application/X-PKCS7-MIME;\r\n"
				 "\tname=\"smime.p7m\"; smime-type=\"authEnveloped-data\""),
			 SC_MIME_ENCRYPTED);
	assert_int_equal(kind_of("Content-Type: application/pkcs7-mime"), SC_MIME_ENCRYPTED);
	assert_int_equal(kind_of("Content-Type: application/pkcs7-mime (c) ; "
				 "smime-type = signed-data"), SC_MIME_SIGNED);
	assert_int_equal(kind_of("Content-Type: application/pkcs7-mime; smime-type=compressed-data"),
			 SC_MIME_COMPRESSED);
	assert_int_equal(kind_of("Content-Type: application/pkcs7-mime; smime-type=certs-only"),
			 SC_MIME_PLAIN);
	assert_int_equal(kind_of("Content-Type: multipart/signed; protocol=\"application/"
				 "pkcs7-signature\"; micalg=sha-256; boundary=x"), SC_MIME_SIGNED);
	assert_int_equal(kind_of("Content-Type: multipart/encrypted; boundary=x"),
			 SC_MIME_ENCRYPTED);
	assert_int_equal(kind_of("Content-Type: multipart/mixed; boundary=x"), SC_MIME_PLAIN);
	assert_int_equal(kind_of("Content-Type: application/pkcs7-signature"), SC_MIME_PLAIN);
	assert_int_equal(kind_of("Content-Type: garbage"), SC_MIME_PLAIN);
	assert_int_equal(kind_of("Content-Type: application/pkcs7-mime; smime-type=\"unterminated"),
			 SC_MIME_ENCRYPTED);
	assert_int_equal(sc_mime_header_kind(NULL), SC_MIME_PLAIN);
}

static void test_outer(void **state)
{
	const char *m = "Return-Path: <a@b>\r\nReceived: x\r\nFROM: a@b\r\nSender: a@b\r\n"
			"Reply-To: a@b\r\nTo: c@d\r\nCc: e@f\r\nDate: x\r\nMessage-ID: <x@y>\r\n"
			"In-Reply-To: <x@y>\r\nReferences: <x@y>\r\nResent-From: a@b\r\n"
			"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
			"Bcc: g@h\r\nX-Mailer: m\r\nResent: x\r\n\r\n";
	sc_mime_header *h = parse_ok(m, 1, strlen(m));
	size_t i;

	(void)state;
	assert_int_equal(sc_mime_header_count(h), 18);
	for (i = 0; i < 12; i++) {
		assert_true(sc_mime_field_is_outer(sc_mime_header_field(h, i), 0));
		assert_true(sc_mime_field_is_outer(sc_mime_header_field(h, i), 1));
	}
	assert_true(sc_mime_field_is_outer(sc_mime_header_field(h, 12), 0));
	assert_false(sc_mime_field_is_outer(sc_mime_header_field(h, 12), 1));
	for (i = 13; i < 18; i++)
		assert_false(sc_mime_field_is_outer(sc_mime_header_field(h, i), 0));
	assert_false(sc_mime_field_is_outer(NULL, 0));
	sc_mime_header_free(h);
}

struct addr_list_case {
	const char *in;
	sc_status want;
	const char *keys; /* space-separated lookup keys */
};

static const struct addr_list_case list_cases[] = {
	{ "a@b.test", SC_OK, "a@b.test" },
	{ " Alice <Alice@Example.test>, bob@x.test ", SC_OK, "alice@example.test bob@x.test" },
	{ "\"Doe, John\" <john@x.test>", SC_OK, "john@x.test" },
	{ "john@x.test (John, the <best>)", SC_OK, "john@x.test" },
	{ "(c) john (x) . (y) doe @ x . test", SC_OK, "john.doe@x.test" },
	{ "Friends: a@x.test, \"B\" <b@x.test>;, c@x.test", SC_OK, "a@x.test b@x.test c@x.test" },
	{ "undisclosed-recipients:;", SC_OK, "" },
	{ "", SC_OK, "" },
	{ " , ,a@x.test,,", SC_OK, "a@x.test" },
	{ "<@r1.test,@r2.test:u@x.test>", SC_OK, "u@x.test" },
	{ "Name <\r\n u@x.test>", SC_OK, "u@x.test" },
	{ "\"q u\"@x.test", SC_OK, "\"q u\"@x.test" },
	{ "J\xc3\xbcrgen <j\xc3\xbc@x.test>", SC_OK, "j\xc3\xbc@x.test" },
	{ "=?utf-8?q?J=C3=BC?= <j@x.test>", SC_OK, "j@x.test" },
	{ "a@[192.0.2.1]", SC_ERR_SYNTAX, NULL },
	{ "<>", SC_ERR_SYNTAX, NULL },
	{ "a@x.test junk", SC_ERR_SYNTAX, NULL },
	{ "Name <a@x.test> junk", SC_ERR_SYNTAX, NULL },
	{ "Name <a@x.test", SC_ERR_SYNTAX, NULL },
	{ "a@x.test>", SC_ERR_SYNTAX, NULL },
	{ "\"unterminated <a@x.test>", SC_ERR_SYNTAX, NULL },
	{ "(unterminated a@x.test", SC_ERR_SYNTAX, NULL },
	{ "G: a@x.test", SC_ERR_SYNTAX, NULL },
	{ "G: H: a@x.test;", SC_ERR_SYNTAX, NULL },
	{ "a@x.test;", SC_ERR_SYNTAX, NULL },
	{ "nodomain", SC_ERR_SYNTAX, NULL },
	{ "a@x.test\xff", SC_ERR_SYNTAX, NULL },
};

static void test_addresses(void **state)
{
	struct sc_addr out[8];
	size_t i, j, n;

	(void)state;
	for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
		const struct addr_list_case *c = &list_cases[i];
		sc_status rc = sc_mime_addresses(c->in, strlen(c->in), out, 8, &n);
		char got[512] = "";
		size_t o = 0;

		if (rc != c->want)
			fail_msg("case %zu \"%s\": got %d want %d", i, c->in, rc, c->want);
		if (rc != SC_OK)
			continue;
		for (j = 0; j < n; j++) {
			char key[SC_ADDR_KEY_MAX];

			assert_int_equal(sc_addr_key(&out[j], key, sizeof key, NULL), SC_OK);
			o += (size_t)snprintf(got + o, sizeof got - o, "%s%s", j ? " " : "", key);
		}
		if (strcmp(got, c->keys) != 0)
			fail_msg("case %zu \"%s\": got \"%s\" want \"%s\"", i, c->in, got, c->keys);
	}
	/* embedded NUL, too many, argument errors */
	assert_int_equal(sc_mime_addresses("a@x.test\0b", 10, out, 8, &n), SC_ERR_SYNTAX);
	assert_int_equal(sc_mime_addresses("a@x.test, b@x.test, c@x.test", 28, out, 2, &n),
			 SC_ERR_TOO_MANY);
	assert_int_equal(sc_mime_addresses("a@x.test", 8, NULL, 0, &n), SC_ERR_TOO_MANY);
	assert_int_equal(sc_mime_addresses("a@x.test", 8, out, 8, NULL), SC_ERR_ARG);
}

/* A header split into pieces parses the same once complete (SC_AGAIN before). */
static void test_incremental(void **state)
{
	const char *m = "From: a@b\r\nTo: c@d,\r\n e@f\r\n\r\nbody";
	size_t len = strlen(m), k;

	(void)state;
	for (k = 0; k <= len; k++) {
		sc_mime_header *h = NULL;
		size_t used = 0;
		sc_status rc = sc_mime_header_parse(m, k, 0, &h, &used);

		if (k < 29) {
			assert_int_equal(rc, SC_AGAIN);
		} else {
			assert_int_equal(rc, SC_OK);
			assert_int_equal(used, 29);
			assert_int_equal(sc_mime_header_count(h), 2);
			sc_mime_header_free(h);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_crlf),
		cmocka_unit_test(test_parse_lf),
		cmocka_unit_test(test_parse_edges),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_unfold),
		cmocka_unit_test(test_kind),
		cmocka_unit_test(test_outer),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_incremental),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
