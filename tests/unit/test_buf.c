/*
 * test_buf.c - unit tests for lib/buf.c: limits, lazy growth, the CRLF line
 * reader at its 512-octet boundary, over-long line resynchronisation, reserve/commit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>

static sc_buf *mkbuf(size_t max)
{
	sc_buf *b = NULL;

	assert_int_equal(sc_buf_new(max, &b), SC_OK);
	assert_non_null(b);
	return b;
}

static void put(sc_buf *b, const char *s)
{
	assert_int_equal(sc_buf_append(b, s, strlen(s)), SC_OK);
}

/* Expect a complete line with the given content; consume it. */
static void expect_line(sc_buf *b, size_t max_line, const char *want, int want_bare)
{
	const char *line;
	size_t len, consumed;
	int bare = -1;

	assert_int_equal(sc_buf_line(b, max_line, &line, &len, &consumed, &bare), SC_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(line, want, len);
	assert_int_equal(bare, want_bare);
	assert_int_equal(consumed, len + (want_bare ? 1 : 2));
	sc_buf_consume(b, consumed);
}

static void expect_status(sc_buf *b, size_t max_line, sc_status want)
{
	const char *line;
	size_t len, consumed;
	int bare;

	assert_int_equal(sc_buf_line(b, max_line, &line, &len, &consumed, &bare), want);
}

static void test_new_args(void **state)
{
	sc_buf *b = NULL;

	(void)state;
	assert_int_equal(sc_buf_new(0, &b), SC_ERR_ARG);
	assert_null(b);
	assert_int_equal(sc_buf_new(10, NULL), SC_ERR_ARG);
	b = mkbuf(10);
	assert_int_equal(sc_buf_max(b), 10);
	assert_int_equal(sc_buf_len(b), 0);
	assert_int_equal(sc_buf_room(b), 10);
	/* Lazy: nothing allocated until data arrives. */
	assert_null(sc_buf_data(b));
	assert_int_equal(sc_buf_append(b, NULL, 0), SC_OK);
	assert_int_equal(sc_buf_append(b, NULL, 1), SC_ERR_ARG);
	sc_buf_free(b);
	sc_buf_free(NULL);
	assert_int_equal(sc_buf_len(NULL), 0);
	assert_int_equal(sc_buf_room(NULL), 0);
}

static void test_append_limit(void **state)
{
	sc_buf *b = mkbuf(8);

	(void)state;
	put(b, "12345");
	assert_int_equal(sc_buf_room(b), 3);
	/* Too much: nothing appended at all. */
	assert_int_equal(sc_buf_append(b, "6789", 4), SC_ERR_TOO_LONG);
	assert_int_equal(sc_buf_len(b), 5);
	assert_memory_equal(sc_buf_data(b), "12345", 5);
	put(b, "678");
	assert_int_equal(sc_buf_room(b), 0);
	assert_int_equal(sc_buf_append(b, "x", 1), SC_ERR_TOO_LONG);
	assert_memory_equal(sc_buf_data(b), "12345678", 8);
	sc_buf_free(b);
}

/* Growth well past the first allocation, with consumption in between, keeps the
 * data intact (compaction and realloc) and never exceeds max. */
static void test_growth_and_compaction(void **state)
{
	sc_buf *b = mkbuf(5000);
	char chunk[333];
	size_t total = 0, read_pos = 0;
	unsigned char expect = 0;

	(void)state;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof chunk; i++)
			chunk[i] = (char)((total + i) & 0xff);
		if (sc_buf_room(b) >= sizeof chunk) {
			assert_int_equal(sc_buf_append(b, chunk, sizeof chunk), SC_OK);
			total += sizeof chunk;
		} else {
			assert_int_equal(sc_buf_append(b, chunk, sizeof chunk), SC_ERR_TOO_LONG);
		}
		/* Consume a varying amount and check the bytes are the right ones. */
		size_t n = (size_t)(round * 37 % 500);
		if (n > sc_buf_len(b))
			n = sc_buf_len(b);
		for (size_t i = 0; i < n; i++) {
			expect = (unsigned char)((read_pos + i) & 0xff);
			assert_int_equal((unsigned char)sc_buf_data(b)[i], expect);
		}
		sc_buf_consume(b, n);
		read_pos += n;
		assert_true(sc_buf_len(b) <= 5000);
		assert_int_equal(sc_buf_len(b), total - read_pos);
	}
	sc_buf_consume(b, 999999); /* clamped */
	assert_int_equal(sc_buf_len(b), 0);
	sc_buf_free(b);
}

static void test_line_basic(void **state)
{
	sc_buf *b = mkbuf(1024);

	(void)state;
	expect_status(b, 512, SC_AGAIN);
	put(b, "EHLO a");
	expect_status(b, 512, SC_AGAIN);
	put(b, ".test\r");
	/* CR without LF yet: still incomplete. */
	expect_status(b, 512, SC_AGAIN);
	put(b, "\nNOOP\nQU");
	expect_line(b, 512, "EHLO a.test", 0);
	expect_line(b, 512, "NOOP", 1); /* bare LF reported */
	expect_status(b, 512, SC_AGAIN);
	put(b, "IT\r\n");
	expect_line(b, 512, "QUIT", 0);
	expect_status(b, 512, SC_AGAIN);
	/* Empty lines. */
	put(b, "\r\n\n");
	expect_line(b, 512, "", 0);
	expect_line(b, 512, "", 1);
	/* A CR not followed by LF stays in the line. */
	put(b, "A\rB\r\n");
	expect_line(b, 512, "A\rB", 0);
	put(b, "A\r\r\n");
	expect_line(b, 512, "A\r", 0);
	assert_int_equal(sc_buf_len(b), 0);
	sc_buf_free(b);
}

static void test_line_nul(void **state)
{
	sc_buf *b = mkbuf(64);
	const char *line;
	size_t len, consumed;
	int bare;

	(void)state;
	assert_int_equal(sc_buf_append(b, "NO\0OP\r\n", 7), SC_OK);
	assert_int_equal(sc_buf_line(b, 512, &line, &len, &consumed, &bare), SC_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(line, "NO\0OP", 5);
	assert_int_equal(consumed, 7);
	/* bare_lf is optional. */
	assert_int_equal(sc_buf_line(b, 512, &line, &len, &consumed, NULL), SC_OK);
	assert_int_equal(sc_buf_line(NULL, 512, &line, &len, &consumed, NULL), SC_ERR_ARG);
	assert_int_equal(sc_buf_line(b, 0, &line, &len, &consumed, NULL), SC_ERR_ARG);
	sc_buf_free(b);
}

/* RFC 5321 4.5.3.1.4: 512 octets including CRLF. */
static void test_line_boundary_512(void **state)
{
	sc_buf *b = mkbuf(2048);
	char line[600];

	(void)state;
	memset(line, 'a', sizeof line);
	/* 510 + CRLF = 512: accepted. */
	assert_int_equal(sc_buf_append(b, line, 510), SC_OK);
	expect_status(b, 512, SC_AGAIN);
	put(b, "\r\n");
	expect_status(b, 512, SC_OK);
	sc_buf_clear(b);
	/* 511 + LF = 512: accepted. */
	assert_int_equal(sc_buf_append(b, line, 511), SC_OK);
	expect_status(b, 512, SC_AGAIN);
	put(b, "\n");
	expect_status(b, 512, SC_OK);
	sc_buf_clear(b);
	/* 511 + CRLF = 513: too long, even though the CR is within 512. */
	assert_int_equal(sc_buf_append(b, line, 511), SC_OK);
	put(b, "\r\n");
	expect_status(b, 512, SC_ERR_TOO_LONG);
	sc_buf_clear(b);
	/* 512 bytes and no LF: already too long, reported before more arrives. */
	assert_int_equal(sc_buf_append(b, line, 511), SC_OK);
	expect_status(b, 512, SC_AGAIN);
	put(b, "a");
	expect_status(b, 512, SC_ERR_TOO_LONG);
	sc_buf_clear(b);
	/* A good line followed by a long partial one: the good one comes first. */
	put(b, "NOOP\r\n");
	assert_int_equal(sc_buf_append(b, line, 600), SC_OK);
	expect_line(b, 512, "NOOP", 0);
	expect_status(b, 512, SC_ERR_TOO_LONG);
	sc_buf_free(b);
}

/* Over-long line arriving in several reads, then resync on the next LF. */
static void test_skip_line_resync(void **state)
{
	sc_buf *b = mkbuf(600);
	char junk[300];

	(void)state;
	memset(junk, 'x', sizeof junk);
	assert_int_equal(sc_buf_skip_line(b), SC_AGAIN); /* empty */
	assert_int_equal(sc_buf_append(b, junk, 300), SC_OK);
	expect_status(b, 256, SC_ERR_TOO_LONG);
	assert_int_equal(sc_buf_skip_line(b), SC_AGAIN);
	assert_int_equal(sc_buf_len(b), 0);
	assert_int_equal(sc_buf_append(b, junk, 300), SC_OK);
	assert_int_equal(sc_buf_skip_line(b), SC_AGAIN);
	/* The CR of the CRLF at the end of a read, its LF in the next one. */
	assert_int_equal(sc_buf_append(b, junk, 100), SC_OK);
	put(b, "\r");
	assert_int_equal(sc_buf_skip_line(b), SC_AGAIN);
	put(b, "\nNOOP\r\nRSET\r\n");
	assert_int_equal(sc_buf_skip_line(b), SC_OK);
	expect_line(b, 256, "NOOP", 0);
	expect_line(b, 256, "RSET", 0);
	/* Skip within one buffer keeps what follows the LF. */
	assert_int_equal(sc_buf_append(b, junk, 280), SC_OK);
	put(b, "\nQUIT\r\n");
	expect_status(b, 256, SC_ERR_TOO_LONG);
	assert_int_equal(sc_buf_skip_line(b), SC_OK);
	expect_line(b, 256, "QUIT", 0);
	sc_buf_free(b);
}

static void test_reserve_commit(void **state)
{
	sc_buf *b = mkbuf(300);
	char *p;
	size_t room, total = 0;

	(void)state;
	assert_int_equal(sc_buf_reserve(b, &p, &room), SC_OK);
	assert_true(room >= 1 && room <= 300);
	memcpy(p, "HELO x\r\n", 8);
	sc_buf_commit(b, 8);
	expect_line(b, 512, "HELO x", 0);
	/* Fill to the maximum through reserve/commit. */
	while (sc_buf_reserve(b, &p, &room) == SC_OK) {
		assert_true(room >= 1);
		assert_true(room <= sc_buf_room(b));
		memset(p, 'z', room);
		sc_buf_commit(b, room);
		total += room;
		assert_true(total <= 300);
	}
	assert_int_equal(total, 300);
	assert_int_equal(sc_buf_len(b), 300);
	assert_int_equal(sc_buf_reserve(b, &p, &room), SC_ERR_TOO_LONG);
	/* Consume some; reserve reuses the freed front (compaction). */
	sc_buf_consume(b, 100);
	assert_int_equal(sc_buf_reserve(b, &p, &room), SC_OK);
	assert_int_equal(room, 100);
	memset(p, 'y', room);
	sc_buf_commit(b, 1000); /* clamped to what was reserved */
	assert_int_equal(sc_buf_len(b), 300);
	assert_int_equal(sc_buf_data(b)[199], 'z');
	assert_int_equal(sc_buf_data(b)[200], 'y');
	assert_int_equal(sc_buf_reserve(NULL, &p, &room), SC_ERR_ARG);
	sc_buf_free(b);
}

static void test_set_max(void **state)
{
	sc_buf *b = mkbuf(16);

	(void)state;
	put(b, "0123456789");
	assert_int_equal(sc_buf_set_max(b, 5), SC_ERR_TOO_LONG);
	assert_int_equal(sc_buf_max(b), 16);
	assert_int_equal(sc_buf_set_max(b, 0), SC_ERR_ARG);
	assert_int_equal(sc_buf_set_max(b, 4096), SC_OK);
	assert_int_equal(sc_buf_room(b), 4086);
	char big[3000];
	memset(big, 'q', sizeof big);
	assert_int_equal(sc_buf_append(b, big, sizeof big), SC_OK);
	assert_int_equal(sc_buf_len(b), 3010);
	sc_buf_consume(b, 3000);
	/* Shrink below the current allocation: data preserved. */
	assert_int_equal(sc_buf_set_max(b, 12), SC_OK);
	assert_int_equal(sc_buf_len(b), 10);
	assert_memory_equal(sc_buf_data(b), "qqqqqqqqqq", 10);
	assert_int_equal(sc_buf_append(b, "abc", 3), SC_ERR_TOO_LONG);
	put(b, "ab");
	assert_int_equal(sc_buf_room(b), 0);
	sc_buf_free(b);
}

/* The buffer maximum equal to max_line must not deadlock: a full buffer without
 * LF is reported as too long, not "again". */
static void test_full_buffer_is_too_long(void **state)
{
	sc_buf *b = mkbuf(512);
	char line[512];

	(void)state;
	memset(line, 'a', sizeof line);
	assert_int_equal(sc_buf_append(b, line, sizeof line), SC_OK);
	expect_status(b, 512, SC_ERR_TOO_LONG);
	assert_int_equal(sc_buf_skip_line(b), SC_AGAIN);
	assert_int_equal(sc_buf_len(b), 0);
	sc_buf_free(b);
}

/* Exactly n contiguous octets, growing within the maximum; over it nothing
 * changes. */
static void test_reserve_n(void **state)
{
	sc_buf *b = NULL;
	char *p = NULL;

	(void)state;
	assert_int_equal(sc_buf_new(10000, &b), SC_OK);
	assert_int_equal(sc_buf_append(b, "abc", 3), SC_OK);
	sc_buf_consume(b, 2); /* offset inside the memory: compaction path */
	assert_int_equal(sc_buf_reserve_n(b, 6000, &p), SC_OK);
	memset(p, 'x', 6000);
	sc_buf_commit(b, 6000);
	assert_int_equal(sc_buf_len(b), 6001);
	assert_memory_equal(sc_buf_data(b), "c", 1);
	assert_int_equal(sc_buf_data(b)[6000], 'x');
	p = NULL;
	assert_int_equal(sc_buf_reserve_n(b, 4000, &p), SC_ERR_TOO_LONG);
	assert_null(p);
	assert_int_equal(sc_buf_len(b), 6001);
	assert_int_equal(sc_buf_reserve_n(b, 3999, &p), SC_OK);
	memcpy(p, "end", 3);
	sc_buf_commit(b, 3);
	assert_int_equal(sc_buf_len(b), 6004);
	assert_memory_equal(sc_buf_data(b) + 6001, "end", 3);
	assert_int_equal(sc_buf_reserve_n(NULL, 1, &p), SC_ERR_ARG);
	assert_int_equal(sc_buf_reserve_n(b, 1, NULL), SC_ERR_ARG);
	sc_buf_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_args),
		cmocka_unit_test(test_append_limit),
		cmocka_unit_test(test_growth_and_compaction),
		cmocka_unit_test(test_line_basic),
		cmocka_unit_test(test_line_nul),
		cmocka_unit_test(test_line_boundary_512),
		cmocka_unit_test(test_skip_line_resync),
		cmocka_unit_test(test_reserve_commit),
		cmocka_unit_test(test_reserve_n),
		cmocka_unit_test(test_set_max),
		cmocka_unit_test(test_full_buffer_is_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
