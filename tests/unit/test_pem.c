/*
 * test_pem.c - unit tests for lib/pem.c: encode/decode round trips, several
 * blocks among explanatory text, CRLF/LF/CR line ends, and every refusal
 * (mismatched or missing END, bad base64, bad padding, limits, headers, labels).
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

#define MAX_BLOCKS 8

/* Collects decoded blocks. */
struct got {
	size_t n;
	char label[MAX_BLOCKS][SC_PEM_LABEL_MAX + 1];
	uint8_t *der[MAX_BLOCKS];
	size_t len[MAX_BLOCKS];
	sc_status stop_at; /* returned by the callback for block stop_index */
	size_t stop_index;
};

static sc_status collect(void *arg, const char *label, const uint8_t *der, size_t len)
{
	struct got *g = arg;

	assert_true(g->n < MAX_BLOCKS);
	assert_non_null(der);
	snprintf(g->label[g->n], sizeof g->label[0], "%s", label);
	g->der[g->n] = malloc(len + 1);
	assert_non_null(g->der[g->n]);
	memcpy(g->der[g->n], der, len);
	g->len[g->n] = len;
	g->n++;
	if (g->stop_at != SC_OK && g->n - 1 == g->stop_index)
		return g->stop_at;
	return SC_OK;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->der[i]);
	memset(g, 0, sizeof *g);
}

static sc_status decode(const char *text, size_t max_der, size_t max_blocks, struct got *g,
			size_t *nblocks)
{
	memset(g, 0, sizeof *g);
	return sc_pem_decode(text, strlen(text), max_der, max_blocks, collect, g, nblocks);
}

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* "hello" is aGVsbG8= and "hi" is aGk= (RFC 4648 section 10 style vectors). */
static const char hello_pem[] = "-----BEGIN CERTIFICATE-----\n"
				"aGVsbG8=\n"
				"-----END CERTIFICATE-----\n";

static void test_encode_known(void **state)
{
	char out[256];
	size_t n = 0;

	(void)state;
	assert_int_equal(sc_pem_encode((const uint8_t *)"hello", 5, "CERTIFICATE", out,
				       sizeof out, &n), SC_OK);
	assert_string_equal(out, hello_pem);
	assert_int_equal(n, strlen(hello_pem));
	assert_int_equal(sc_pem_encoded_size(5, "CERTIFICATE"), strlen(hello_pem) + 1);
	/* Exactly the needed size works, one byte less does not. */
	assert_int_equal(sc_pem_encode((const uint8_t *)"hello", 5, "CERTIFICATE", out,
				       strlen(hello_pem) + 1, NULL), SC_OK);
	assert_int_equal(sc_pem_encode((const uint8_t *)"hello", 5, "CERTIFICATE", out,
				       strlen(hello_pem), NULL), SC_ERR_TOO_LONG);
	assert_string_equal(out, "");
	/* Empty DER: just the boundaries. */
	assert_int_equal(sc_pem_encode(NULL, 0, "X", out, sizeof out, &n), SC_OK);
	assert_string_equal(out, "-----BEGIN X-----\n-----END X-----\n");
	assert_int_equal(sc_pem_encoded_size(0, "X"), n + 1);
	/* Bad labels are the caller's bug. */
	assert_int_equal(sc_pem_encode((const uint8_t *)"a", 1, "-X", out, sizeof out, NULL),
			 SC_ERR_ARG);
	assert_int_equal(sc_pem_encode((const uint8_t *)"a", 1, "A\nB", out, sizeof out, NULL),
			 SC_ERR_ARG);
	assert_int_equal(sc_pem_encode((const uint8_t *)"a", 1, NULL, out, sizeof out, NULL),
			 SC_ERR_ARG);
	assert_int_equal(sc_pem_encode(NULL, 1, "X", out, sizeof out, NULL), SC_ERR_ARG);
}

struct lines {
	size_t n, longest, fail_at;
};

static sc_status count_line(void *arg, const char *line, size_t len)
{
	struct lines *l = arg;

	assert_null(memchr(line, '\n', len));
	if (len > l->longest)
		l->longest = len;
	if (++l->n == l->fail_at)
		return SC_ERR_IO;
	return SC_OK;
}

static void test_encode_lines(void **state)
{
	uint8_t der[100];
	struct lines l = { 0, 0, 0 };

	(void)state;
	memset(der, 0xab, sizeof der);
	/* 100 bytes = 136 base64 characters = 64 + 64 + 8: 3 lines + 2 boundaries. */
	assert_int_equal(sc_pem_encode_lines(der, sizeof der, "CERTIFICATE", count_line, &l),
			 SC_OK);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.longest, 64);
	/* The callback's failure stops the encoder and is passed back. */
	l = (struct lines){ 0, 0, 2 };
	assert_int_equal(sc_pem_encode_lines(der, sizeof der, "CERTIFICATE", count_line, &l),
			 SC_ERR_IO);
	assert_int_equal(l.n, 2);
}

/* Round trip of random sizes 0..5000 with CRLF, LF and extra text around. */
static void test_round_trip(void **state)
{
	static uint8_t der[5001];
	static char pem[8000], text[9000];

	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		size_t len = iter < 100 ? (size_t)iter : rng() % 5001, n, nb;
		struct got g;

		for (size_t i = 0; i < len; i++)
			der[i] = (uint8_t)rng();
		assert_int_equal(sc_pem_encode(der, len, "CERTIFICATE", pem, sizeof pem, &n),
				 SC_OK);
		assert_int_equal(sc_pem_encoded_size(len, "CERTIFICATE"), n + 1);
		assert_int_equal(decode(pem, 5000, 1, &g, &nb), SC_OK);
		assert_int_equal(nb, 1);
		assert_int_equal(g.len[0], len);
		assert_memory_equal(g.der[0], der, len);
		assert_string_equal(g.label[0], "CERTIFICATE");
		got_free(&g);
		/* The same with CRLF line ends and text before and after. */
		size_t t = 0;
		t += (size_t)snprintf(text, sizeof text, "Subject: x\r\n\r\n");
		for (size_t i = 0; i < n; i++) {
			if (pem[i] == '\n')
				text[t++] = '\r';
			text[t++] = pem[i];
		}
		t += (size_t)snprintf(text + t, sizeof text - t, "trailer\r\n");
		assert_int_equal(decode(text, len, 1, &g, NULL), SC_OK);
		assert_int_equal(g.len[0], len);
		assert_memory_equal(g.der[0], der, len);
		got_free(&g);
		/* One byte under the limit. */
		if (len > 0) {
			assert_int_equal(decode(pem, len - 1, 1, &g, NULL), SC_ERR_TOO_LONG);
			got_free(&g);
		}
	}
}

static void test_multiple_blocks(void **state)
{
	const char *text = "junk before\n"
			   "-----BEGIN CERTIFICATE-----\n"
			   "aGVsbG8=\n"
			   "-----END CERTIFICATE-----\n"
			   "--- junk between -----\n"
			   "-----END NOTHING-----\n" /* stray END outside a block: text */
			   "-----BEGIN TRUSTED CERTIFICATE-----   \r\n"
			   "  aG k =  \r\n"
			   "\r\n"
			   "-----END TRUSTED CERTIFICATE-----\t\r\n"
			   "-----BEGIN X509 CRL-----\r"
			   "\r"
			   "-----END X509 CRL-----"; /* no final newline */
	struct got g;
	size_t nb = 99;

	(void)state;
	assert_int_equal(decode(text, 100, 5, &g, &nb), SC_OK);
	assert_int_equal(nb, 3);
	assert_string_equal(g.label[0], "CERTIFICATE");
	assert_int_equal(g.len[0], 5);
	assert_memory_equal(g.der[0], "hello", 5);
	assert_string_equal(g.label[1], "TRUSTED CERTIFICATE");
	assert_int_equal(g.len[1], 2);
	assert_memory_equal(g.der[1], "hi", 2);
	assert_string_equal(g.label[2], "X509 CRL");
	assert_int_equal(g.len[2], 0);
	got_free(&g);
	/* Limits on the number of blocks. */
	assert_int_equal(decode(text, 100, 2, &g, &nb), SC_ERR_TOO_MANY);
	assert_int_equal(nb, 2);
	got_free(&g);
	assert_int_equal(decode(text, 100, 0, &g, &nb), SC_ERR_TOO_MANY);
	assert_int_equal(nb, 0);
	got_free(&g);
	/* The callback may stop the walk; its status comes back. */
	memset(&g, 0, sizeof g);
	g.stop_at = SC_ERR_MISMATCH;
	g.stop_index = 1;
	assert_int_equal(sc_pem_decode(text, strlen(text), 100, 5, collect, &g, &nb),
			 SC_ERR_MISMATCH);
	assert_int_equal(nb, 2);
	got_free(&g);
}

struct bad {
	const char *text;
	sc_status want;
};

#define B "-----BEGIN CERTIFICATE-----\n"
#define E "-----END CERTIFICATE-----\n"

static void test_refusals(void **state)
{
	static const struct bad bad[] = {
		{ "", SC_ERR_NOT_FOUND },
		{ "just text\nno blocks\n", SC_ERR_NOT_FOUND },
		{ "-----BEGINCERTIFICATE-----\naGk=\n", SC_ERR_NOT_FOUND },
		/* structure */
		{ B "aGk=\n", SC_ERR_SYNTAX },                                  /* missing END */
		{ B "aGk=\n-----END CRL-----\n", SC_ERR_SYNTAX },              /* label mismatch */
		{ B "aGk=\n-----END certificate-----\n", SC_ERR_SYNTAX },
		{ B "aGk=\n-----END CERTIFICATE----\n", SC_ERR_SYNTAX },
		{ B "aGk=\n" B "aGk=\n" E, SC_ERR_SYNTAX },                   /* BEGIN in block */
		{ "-----BEGIN CERTIFICATE\naGk=\n" E, SC_ERR_SYNTAX },
		{ "-----BEGIN -CERT-----\naGk=\n-----END -CERT-----\n", SC_ERR_SYNTAX },
		{ "-----BEGIN CERT------\naGk=\n-----END CERT------\n", SC_ERR_SYNTAX },
		{ "-----BEGIN A  B-----\naGk=\n-----END A  B-----\n", SC_ERR_SYNTAX },
		{ "-----BEGIN A\x01" "B-----\naGk=\n-----END A\x01" "B-----\n", SC_ERR_SYNTAX },
		{ "-----BEGIN A\xc3\xa9-----\naGk=\n-----END A\xc3\xa9-----\n", SC_ERR_SYNTAX },
		/* RFC 1421 headers: encrypted PEM */
		{ B "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\naGk=\n" E, SC_ERR_SYNTAX },
		/* base64 */
		{ B "aGk*\n" E, SC_ERR_ENCODING },
		{ B "aG-k\n" E, SC_ERR_ENCODING },
		{ B "aGk\n" E, SC_ERR_ENCODING },            /* missing padding */
		{ B "aG\n" E, SC_ERR_ENCODING },
		{ B "a\n" E, SC_ERR_ENCODING },
		{ B "aGk==\n" E, SC_ERR_ENCODING },          /* extra padding */
		{ B "aG=\n" E, SC_ERR_ENCODING },            /* half padding */
		{ B "aG=k\n" E, SC_ERR_ENCODING },
		{ B "a===\n" E, SC_ERR_ENCODING },
		{ B "====\n" E, SC_ERR_ENCODING },
		{ B "aGk=aGk=\n" E, SC_ERR_ENCODING },       /* data after padding */
		{ B "aGk=\nQQ==\n" E, SC_ERR_ENCODING },
		{ B "aGl=\n" E, SC_ERR_ENCODING },           /* non-zero pad bits */
		{ B "aR==\n" E, SC_ERR_ENCODING },
		{ B "aGk=\x00\n" E, SC_ERR_SYNTAX },         /* strlen stops at the NUL: no END */
		{ B "aG\x80k=\n" E, SC_ERR_ENCODING },
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct got g;
		sc_status rc = decode(bad[i].text, 1000, 4, &g, NULL);

		if (rc != bad[i].want)
			fail_msg("case %zu: got %s, want %s", i, sc_strerror(rc),
				 sc_strerror(bad[i].want));
		got_free(&g);
	}
}

static void test_nul_and_limits(void **state)
{
	const char text[] = B "aG\0k=\n" E;
	char big[200];
	struct got g;
	size_t nb;

	(void)state;
	/* An embedded NUL inside the base64 (text length given explicitly). */
	memset(&g, 0, sizeof g);
	assert_int_equal(sc_pem_decode(text, sizeof text - 1, 100, 4, collect, &g, &nb),
			 SC_ERR_ENCODING);
	assert_int_equal(nb, 0);
	got_free(&g);
	/* Label of exactly SC_PEM_LABEL_MAX is fine, one more is not. */
	char label[SC_PEM_LABEL_MAX + 2];
	memset(label, 'L', sizeof label);
	label[SC_PEM_LABEL_MAX] = '\0';
	assert_int_equal(sc_pem_encode((const uint8_t *)"hi", 2, label, big, sizeof big, NULL),
			 SC_OK);
	assert_int_equal(decode(big, 10, 1, &g, NULL), SC_OK);
	assert_string_equal(g.label[0], label);
	got_free(&g);
	label[SC_PEM_LABEL_MAX] = 'L';
	label[SC_PEM_LABEL_MAX + 1] = '\0';
	assert_int_equal(sc_pem_encode((const uint8_t *)"hi", 2, label, big, sizeof big, NULL),
			 SC_ERR_ARG);
	snprintf(big, sizeof big, "-----BEGIN %s-----\naGk=\n-----END %s-----\n", label, label);
	assert_int_equal(decode(big, 10, 1, &g, NULL), SC_ERR_SYNTAX);
	got_free(&g);
	/* max_der 0: only empty blocks pass. */
	assert_int_equal(decode(hello_pem, 0, 1, &g, NULL), SC_ERR_TOO_LONG);
	got_free(&g);
	assert_int_equal(decode("-----BEGIN X-----\n-----END X-----\n", 0, 1, &g, NULL), SC_OK);
	got_free(&g);
	/* Arguments. */
	assert_int_equal(sc_pem_decode(NULL, 1, 10, 1, collect, &g, NULL), SC_ERR_ARG);
	assert_int_equal(sc_pem_decode("x", 1, 10, 1, NULL, NULL, NULL), SC_ERR_ARG);
}

/* The framed encoding is sc_pem_encode()'s text with every line wrapped in
 * prefix and eol, of exactly sc_pem_framed_size() octets, for every length
 * across several lines; a buffer one octet short is refused untouched. */
static void test_encode_framed(void **state)
{
	static uint8_t der[300];
	static char plain[1024], framed[2048], want[2048];
	size_t n, m, w;

	(void)state;
	for (size_t i = 0; i < sizeof der; i++)
		der[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof der; len++) {
		size_t need = sc_pem_framed_size(len, "CERTIFICATE", 4, 2);

		assert_int_equal(sc_pem_encode(der, len, "CERTIFICATE", plain, sizeof plain, &n),
				 SC_OK);
		w = 0;
		for (char *line = plain; *line;) {
			char *nl = strchr(line, '\n');

			memcpy(want + w, "250-", 4);
			memcpy(want + w + 4, line, (size_t)(nl - line));
			w += 4 + (size_t)(nl - line);
			memcpy(want + w, "\r\n", 2);
			w += 2;
			line = nl + 1;
		}
		memset(framed, '#', sizeof framed);
		assert_int_equal(sc_pem_encode_framed(der, len, "CERTIFICATE", "250-", "\r\n",
						      framed, need, &m), SC_OK);
		assert_int_equal(m, need);
		assert_int_equal(m, w);
		assert_memory_equal(framed, want, w);
		assert_int_equal(framed[m], '#'); /* nothing past the end, no NUL */
		memset(framed, '#', sizeof framed);
		assert_int_equal(sc_pem_encode_framed(der, len, "CERTIFICATE", "250-", "\r\n",
						      framed, need - 1, &m), SC_ERR_TOO_LONG);
		assert_int_equal(framed[0], '#');
	}
	/* no prefix, LF: sc_pem_encode() without its NUL */
	assert_int_equal(sc_pem_encode_framed(der, 100, "X509 CRL", "", "\n", framed,
					      sizeof framed, &m), SC_OK);
	assert_int_equal(sc_pem_encode(der, 100, "X509 CRL", plain, sizeof plain, &n), SC_OK);
	assert_int_equal(m, n);
	assert_memory_equal(framed, plain, n);
	/* refusals */
	assert_int_equal(sc_pem_encode_framed(der, 3, "CERTIFICATE", "250-", "", framed,
					      sizeof framed, &m), SC_ERR_ARG);
	assert_int_equal(sc_pem_encode_framed(der, 3, "bad-label-", "", "\n", framed,
					      sizeof framed, &m), SC_ERR_ARG);
	assert_int_equal(sc_pem_encode_framed(der, 3, "CERTIFICATE", NULL, "\n", framed,
					      sizeof framed, &m), SC_ERR_ARG);
	assert_int_equal(sc_pem_encode_framed(NULL, 3, "CERTIFICATE", "", "\n", framed,
					      sizeof framed, &m), SC_ERR_ARG);
	assert_int_equal(sc_pem_framed_size(SIZE_MAX - 5, "CERTIFICATE", 4, 2), SIZE_MAX);
	assert_int_equal(sc_pem_framed_size(10, NULL, 4, 2), SIZE_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_known),
		cmocka_unit_test(test_encode_lines),
		cmocka_unit_test(test_encode_framed),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_multiple_blocks),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_nul_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
