/*
 * test_d_data.c - the mail data reader (daemon/data.c): end of data only at
 * <CRLF>.<CRLF>; every SMTP smuggling variant ("\n.\n", "\r\n.\n", "\n.\r\n",
 * "\r.\r", ".\r\r\n", a lone CR) is data and refuses the message (bare CR / LF);
 * dot-unstuffing; the 1000-octet line limit (stuffed dot not counted); the size
 * limit while reading (and exactly at it); what follows the end marker is left
 * for the command reader; embedded NUL and non-UTF-8 octets kept; chunk mode
 * (BDAT: no dots, CRLF split between chunks, last line completed, trailing CR);
 * write errors (EBADF -> DATA_IO, /dev/full -> DATA_NOSPACE); the spool file
 * (anonymous: nothing in the directory); and every input split at every byte
 * boundary and fed octet by octet gives the same result.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "data.h"
#include "testcert.h"

struct result {
	sc_status feed;     /* last data_feed() status */
	size_t used;        /* octets consumed in all */
	sc_status fin;      /* data_finish(), when the end was reached */
	enum data_verdict verdict;
	uint64_t size;
	char out[8192];     /* what was written */
	size_t outlen;
	unsigned bare_cr, bare_lf;
};

static int memfd(void)
{
	int fd = memfd_create("spool", 0);

	assert_true(fd >= 0);
	return fd;
}

static void slurp(int fd, struct result *r)
{
	ssize_t n = pread(fd, r->out, sizeof r->out - 1, 0);

	assert_true(n >= 0);
	r->outlen = (size_t)n;
	r->out[n] = '\0';
}

/* Feed @p in (length @p n) in pieces cut at @p cuts (ascending, may be empty),
 * or octet by octet when @p bytewise. */
static void run(enum data_mode mode, uint64_t max, const char *in, size_t n, const size_t *cuts,
		size_t ncuts, int bytewise, struct result *r)
{
	struct data_reader *d = malloc(sizeof *d);
	int fd = memfd();
	size_t pos = 0, c = 0;

	assert_non_null(d);
	memset(r, 0, sizeof *r);
	data_init(d, fd, max, mode);
	r->feed = SC_AGAIN;
	while (pos < n && r->feed == SC_AGAIN) {
		size_t end = bytewise ? pos + 1 : c < ncuts ? cuts[c++] : n, used = 0;

		if (end > n)
			end = n;
		r->feed = data_feed(d, in + pos, end - pos, &used);
		assert_true(used <= end - pos);
		if (r->feed == SC_AGAIN && mode == DATA_MODE_DOT)
			assert_int_equal(used, end - pos); /* all taken until the end */
		pos += used;
	}
	r->used = pos;
	if (r->feed == SC_OK || mode == DATA_MODE_CHUNK)
		r->fin = data_finish(d);
	r->verdict = d->verdict;
	r->size = d->size;
	r->bare_cr = d->bare_cr;
	r->bare_lf = d->bare_lf;
	slurp(fd, r);
	close(fd);
	free(d);
}

static void dot(const char *in, uint64_t max, struct result *r)
{
	run(DATA_MODE_DOT, max, in, strlen(in), NULL, 0, 0, r);
}

static void test_plain_message(void **state)
{
	struct result r;
	const char *in = "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";

	dot(in, 0, &r);
	assert_int_equal(r.feed, SC_OK);
	assert_int_equal(r.fin, SC_OK);
	assert_int_equal(r.verdict, DATA_OK);
	/* the command after the end is not consumed */
	assert_int_equal(r.used, strlen(in) - strlen("QUIT\r\n"));
	assert_string_equal(r.out, "Subject: x\r\n\r\nbody\r\n");
	assert_int_equal(r.size, strlen("Subject: x\r\n\r\nbody\r\n"));
}

static void test_empty_and_incomplete(void **state)
{
	struct result r;

	dot(".\r\n", 0, &r);
	assert_int_equal(r.feed, SC_OK);
	assert_int_equal(r.outlen, 0);
	dot("no end yet\r\n.", 0, &r);
	assert_int_equal(r.feed, SC_AGAIN);
	dot("no end yet\r\n.\r", 0, &r);
	assert_int_equal(r.feed, SC_AGAIN);
	dot("", 0, &r);
	assert_int_equal(r.feed, SC_AGAIN);
}

static void test_dot_unstuffing(void **state)
{
	struct result r;

	dot("..leading\r\n...\r\n..\r\n. \r\n.x\r\n.\r\n", 0, &r);
	assert_int_equal(r.verdict, DATA_OK);
	/* RFC 5321 4.5.2: one leading dot removed from each line */
	assert_string_equal(r.out, ".leading\r\n..\r\n.\r\n \r\nx\r\n");
	/* a dot that is not at the start of a line stays */
	dot("a.b\r\n a\r\n.\r\n", 0, &r);
	assert_string_equal(r.out, "a.b\r\n a\r\n");
}

/* The 2023 SMTP smuggling variants: none of them ends the data. */
static void test_smuggling_variants(void **state)
{
	static const struct {
		const char *end;
		int cr, lf;
	} v[] = {
		{ "\n.\n", 0, 1 },
		{ "\r\n.\n", 0, 1 },
		{ "\n.\r\n", 0, 1 },
		{ "\r.\r", 1, 0 },
		{ "\r\n.\r\r\n", 1, 0 },
		{ "\r.\r\n", 1, 0 },
		{ "\n.\r", 1, 1 },
	};
	char in[512];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct result r;
		int n = snprintf(in, sizeof in, "Subject: a\r\n\r\nfirst%s"
				 "MAIL FROM:<evil@x.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
				 "smuggled\r\n.\r\nNOOP\r\n", v[i].end);

		dot(in, 0, &r);
		/* the only end is the real <CRLF>.<CRLF> */
		assert_int_equal(r.feed, SC_OK);
		assert_int_equal(r.used, (size_t)n - strlen("NOOP\r\n"));
		assert_int_equal(r.verdict, DATA_BARE_EOL);
		assert_int_equal(r.fin, SC_ERR_REJECTED);
		assert_int_equal(r.bare_cr, v[i].cr);
		assert_int_equal(r.bare_lf, v[i].lf);
	}
}

static void test_bare_anywhere(void **state)
{
	struct result r;

	dot("header\nbody\r\n.\r\n", 0, &r);
	assert_int_equal(r.verdict, DATA_BARE_EOL);
	assert_true(r.bare_lf);
	dot("a\rb\r\n.\r\n", 0, &r);
	assert_int_equal(r.verdict, DATA_BARE_EOL);
	assert_true(r.bare_cr && !r.bare_lf);
	dot("a\r\r\n.\r\n", 0, &r);
	assert_int_equal(r.verdict, DATA_BARE_EOL);
	/* refused: nothing of it is stored */
	assert_int_equal(r.outlen, 0);
}

static void test_binary_octets_kept(void **state)
{
	static const char in[] = "a\0b\xff\xfe\xc3\x28\r\n.\r\n";
	struct result r;

	run(DATA_MODE_DOT, 0, in, sizeof in - 1, NULL, 0, 0, &r);
	assert_int_equal(r.verdict, DATA_OK);
	assert_int_equal(r.outlen, 9);
	assert_memory_equal(r.out, "a\0b\xff\xfe\xc3\x28\r\n", 9);
}

static void test_line_limit(void **state)
{
	char *in = malloc(4096);
	struct result r;

	/* 998 + CRLF = 1000: the limit */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 6);
	dot(in, 0, &r);
	assert_int_equal(r.verdict, DATA_OK);
	/* 999 + CRLF: over */
	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 6);
	dot(in, 0, &r);
	assert_int_equal(r.verdict, DATA_LINE_TOO_LONG);
	assert_int_equal(r.feed, SC_OK); /* still read to the end: in sync */
	assert_int_equal(r.fin, SC_ERR_REJECTED);
	/* the dot doubled for transparency does not count (RFC 5321 4.5.3.1.6) */
	in[0] = '.';
	memset(in + 1, 'x', 998);
	memcpy(in + 999, "\r\n.\r\n", 6);
	dot(in, 0, &r);
	assert_int_equal(r.verdict, DATA_OK);
	assert_int_equal(r.size, 1000);
	/* a line with no end at all */
	memset(in, 'y', 3000);
	memcpy(in + 3000, "\r\n.\r\n", 6);
	dot(in, 0, &r);
	assert_int_equal(r.verdict, DATA_LINE_TOO_LONG);
	assert_int_equal(r.feed, SC_OK);
	free(in);
}

static void test_size_limit(void **state)
{
	struct result r;

	/* exactly the limit: 10 octets */
	dot("12345678\r\n.\r\nNOOP\r\n", 10, &r);
	assert_int_equal(r.verdict, DATA_OK);
	assert_string_equal(r.out, "12345678\r\n");
	dot("123456789\r\n.\r\nNOOP\r\n", 10, &r);
	assert_int_equal(r.verdict, DATA_TOO_BIG);
	assert_int_equal(r.feed, SC_OK);
	assert_int_equal(r.used, strlen("123456789\r\n.\r\n"));
	assert_int_equal(r.outlen, 0);
	assert_int_equal(r.fin, SC_ERR_REJECTED);
}

static void test_put_not_counted(void **state)
{
	struct data_reader *d = malloc(sizeof *d);
	int fd = memfd();
	size_t used;
	struct result r;

	data_init(d, fd, 5, DATA_MODE_DOT);
	assert_int_equal(data_put(d, "Received: x\r\n", 13), SC_OK);
	assert_int_equal(data_feed(d, "abc\r\n.\r\n", 8, &used), SC_OK);
	assert_int_equal(data_finish(d), SC_OK);
	assert_int_equal(d->size, 5);
	assert_int_equal(d->written, 18);
	slurp(fd, &r);
	assert_string_equal(r.out, "Received: x\r\nabc\r\n");
	/* after the end nothing more is taken */
	assert_int_equal(data_feed(d, "MAIL", 4, &used), SC_OK);
	assert_int_equal(used, 0);
	close(fd);
	free(d);
}

static void test_chunk_mode(void **state)
{
	static const char in[] = "Subject: c\r\n\r\n.\r\nline\r\n";
	size_t cut[] = { 11 }; /* between CR and LF */
	struct result r;

	run(DATA_MODE_CHUNK, 0, in, sizeof in - 1, cut, 1, 0, &r);
	assert_int_equal(r.verdict, DATA_OK);
	assert_int_equal(r.fin, SC_OK);
	assert_string_equal(r.out, in); /* no dot handling */
	run(DATA_MODE_CHUNK, 0, "no newline", 10, NULL, 0, 0, &r);
	assert_int_equal(r.fin, SC_OK);
	assert_string_equal(r.out, "no newline\r\n");
	run(DATA_MODE_CHUNK, 0, "ends in CR\r", 11, NULL, 0, 0, &r);
	assert_int_equal(r.verdict, DATA_BARE_EOL);
	run(DATA_MODE_CHUNK, 0, "a\nb\r\n", 5, NULL, 0, 0, &r);
	assert_int_equal(r.verdict, DATA_BARE_EOL);
	run(DATA_MODE_CHUNK, 4, "abcde", 5, NULL, 0, 0, &r);
	assert_int_equal(r.verdict, DATA_TOO_BIG);
}

static void test_write_errors(void **state)
{
	struct data_reader *d = malloc(sizeof *d);
	int fd = open("/dev/null", O_RDONLY);
	char *big = malloc(3 * DATA_WBUF);
	size_t used;

	assert_true(fd >= 0);
	memset(big, 'a', 3 * DATA_WBUF);
	for (size_t i = 900; i < 3 * DATA_WBUF; i += 900)
		memcpy(big + i - 2, "\r\n", 2);
	data_init(d, fd, 0, DATA_MODE_CHUNK);
	(void)data_feed(d, big, 3 * DATA_WBUF, &used);
	assert_int_equal(d->verdict, DATA_IO);
	assert_int_equal(data_finish(d), SC_ERR_IO);
	assert_string_equal(data_verdict_name(d), "spool-write-error");
	close(fd);
	fd = open("/dev/full", O_WRONLY);
	if (fd >= 0) {
		data_init(d, fd, 0, DATA_MODE_DOT);
		assert_int_equal(data_feed(d, "abc\r\n.\r\n", 8, &used), SC_OK);
		assert_int_equal(data_finish(d), SC_ERR_IO);
		assert_int_equal(d->verdict, DATA_NOSPACE);
		close(fd);
	}
	/* fd -1: counted only */
	data_init(d, -1, 0, DATA_MODE_DOT);
	assert_int_equal(data_feed(d, "abc\r\n.\r\n", 8, &used), SC_OK);
	assert_int_equal(data_finish(d), SC_OK);
	assert_int_equal(d->written, 5);
	free(big);
	free(d);
}

static void test_spool_open(void **state)
{
	char dir[512];
	int fd = -1, entries = 0;
	DIR *dp;
	struct dirent *de;

	tc_tmpdir(dir, sizeof dir);
	assert_int_equal(data_spool_open(dir, &fd), SC_OK);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	dp = opendir(dir);
	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			entries++;
	closedir(dp);
	assert_int_equal(entries, 0); /* anonymous: a crash leaves nothing */
	close(fd);
	assert_int_equal(data_spool_open("/nonexistent/dir", &fd), SC_ERR_IO);
	assert_int_equal(fd, -1);
	tc_rmtree(dir);
}

/* Every split point, and octet by octet, gives the same result as one feed. */
static void test_split_everywhere(void **state)
{
	static const char *const inputs[] = {
		"Subject: s\r\n\r\n..a\r\nb\r\n.\r\nNOOP\r\n",
		"x\n.\nMAIL FROM:<e@x>\r\n.\r\nQUIT\r\n",
		"x\r\n.\nRCPT\r\n.\r\n",
		"x\n.\r\ny\r\n.\r\n",
		"x\r.\ry\r\n.\r\n",
		".\r\n",
		"..\r\n.\r\r\n.\r\n",
	};

	for (int mode = 0; mode < 2; mode++)
		for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
			const char *in = inputs[k];
			size_t n = strlen(in);
			struct result whole, part;

			run(mode ? DATA_MODE_CHUNK : DATA_MODE_DOT, 0, in, n, NULL, 0, 0, &whole);
			run(mode ? DATA_MODE_CHUNK : DATA_MODE_DOT, 0, in, n, NULL, 0, 1, &part);
			assert_int_equal(part.used, whole.used);
			assert_int_equal(part.verdict, whole.verdict);
			assert_int_equal(part.outlen, whole.outlen);
			assert_memory_equal(part.out, whole.out, whole.outlen);
			for (size_t cut = 1; cut < n; cut++) {
				size_t cuts[2] = { cut, n };

				run(mode ? DATA_MODE_CHUNK : DATA_MODE_DOT, 0, in, n, cuts, 2, 0, &part);
				assert_int_equal(part.feed, whole.feed);
				assert_int_equal(part.used, whole.used);
				assert_int_equal(part.verdict, whole.verdict);
				assert_int_equal(part.bare_cr, whole.bare_cr);
				assert_int_equal(part.bare_lf, whole.bare_lf);
				assert_int_equal(part.outlen, whole.outlen);
				assert_memory_equal(part.out, whole.out, whole.outlen);
			}
		}
}

/* Size and line limits crossed in one read: the verdict is the one an
 * octet-by-octet reader reaches, whatever the cuts (found by libFuzzer). */
static void test_limits_order(void **state)
{
	char *in = malloc(2100);
	struct result whole, part;

	for (int mode = 0; mode < 2; mode++)
		for (uint64_t max = 300; max <= 1300; max += 1000) {
			memset(in, 'y', 2000);
			memcpy(in + 2000, "\r\n.\r\n", 5);
			run(mode ? DATA_MODE_CHUNK : DATA_MODE_DOT, max, in, 2005, NULL, 0, 0, &whole);
			run(mode ? DATA_MODE_CHUNK : DATA_MODE_DOT, max, in, 2005, NULL, 0, 1, &part);
			assert_int_equal(whole.verdict, part.verdict);
			/* 300: the size is crossed first; 1300: the line length */
			assert_int_equal(whole.verdict, max == 300 ? DATA_TOO_BIG : DATA_LINE_TOO_LONG);
			for (size_t cut = 1; cut < 2005; cut += 61) {
				size_t cuts[2] = { cut, 2005 };

				run(mode ? DATA_MODE_CHUNK : DATA_MODE_DOT, max, in, 2005, cuts, 2, 0, &part);
				assert_int_equal(whole.verdict, part.verdict);
			}
		}
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_message),
		cmocka_unit_test(test_empty_and_incomplete),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_smuggling_variants),
		cmocka_unit_test(test_bare_anywhere),
		cmocka_unit_test(test_binary_octets_kept),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_put_not_counted),
		cmocka_unit_test(test_chunk_mode),
		cmocka_unit_test(test_write_errors),
		cmocka_unit_test(test_spool_open),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_limits_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
