/*
 * data_fuzz.c - fuzz target for the mail data reader (daemon/data.c).
 *
 * Byte 0 chooses the mode (bit 0: BDAT chunk mode) and the size limit (bits
 * 1-7: 0 = none, else 64 * n octets); byte 1 the piece size (1..256). The
 * rest is fed once whole and once in pieces: the verdict, the octets used and
 * the stored octets must be the same (abort() otherwise). For an accepted DATA
 * message: the stored text has only CRLF line ends, and stuffing it again
 * (RFC 5321 4.5.2) plus ".\r\n" reads back to the same text, ending exactly at
 * the end marker.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	enum data_verdict verdict;
	sc_status fin;
	size_t used;
	int done;
	char *text;
	size_t len;
};

static void fuzz_run(enum data_mode mode, uint64_t max, const char *in, size_t n, size_t piece,
		     struct out *o)
{
	struct data_reader *d = malloc(sizeof *d);
	int fd = memfd_create("data_fuzz", 0);
	size_t pos = 0;
	sc_status rc = SC_AGAIN;
	ssize_t r;

	if (!d || fd < 0)
		abort();
	data_init(d, fd, max, mode);
	while (pos < n && rc == SC_AGAIN) {
		size_t k = n - pos < piece ? n - pos : piece, used = 0;

		rc = data_feed(d, in + pos, k, &used);
		if (used > k || (rc == SC_AGAIN && used != k))
			abort();
		pos += used;
	}
	o->used = pos;
	o->done = rc == SC_OK;
	o->fin = o->done || mode == DATA_MODE_CHUNK ? data_finish(d) : SC_AGAIN;
	o->verdict = d->verdict;
	o->text = malloc(2 * n + 8);
	if (!o->text)
		abort();
	r = pread(fd, o->text, 2 * n + 8, 0);
	if (r < 0)
		abort();
	o->len = (size_t)r;
	close(fd);
	free(d);
}

static void fuzz_same(const struct out *a, const struct out *b)
{
	if (a->verdict != b->verdict || a->used != b->used || a->done != b->done ||
	    a->len != b->len || memcmp(a->text, b->text, a->len) != 0)
		abort();
}

/* Accepted DATA text: CRLF only, and it survives stuffing and reading back. */
static void fuzz_roundtrip(const struct out *o)
{
	char *st = malloc(2 * o->len + 8);
	size_t n = 0;
	struct out back;

	if (!st)
		abort();
	for (size_t i = 0; i < o->len; i++) {
		if (o->text[i] == '\n' && (i == 0 || o->text[i - 1] != '\r'))
			abort();
		if (o->text[i] == '\r' && (i + 1 >= o->len || o->text[i + 1] != '\n'))
			abort();
		if (o->text[i] == '.' && (i == 0 || o->text[i - 1] == '\n'))
			st[n++] = '.';
		st[n++] = o->text[i];
	}
	memcpy(st + n, ".\r\n", 3);
	n += 3;
	fuzz_run(DATA_MODE_DOT, 0, st, n, n, &back);
	if (!back.done || back.used != n || back.len != o->len ||
	    memcmp(back.text, o->text, o->len) != 0)
		abort();
	free(back.text);
	free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum data_mode mode;
	uint64_t max;
	size_t piece;
	struct out whole, parts;

	if (size < 2 || size > 65536)
		return 0;
	mode = data[0] & 1 ? DATA_MODE_CHUNK : DATA_MODE_DOT;
	max = (uint64_t)(data[0] >> 1) * 64;
	piece = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	fuzz_run(mode, max, (const char *)data, size, size ? size : 1, &whole);
	fuzz_run(mode, max, (const char *)data, size, piece, &parts);
	fuzz_same(&whole, &parts);
	if (mode == DATA_MODE_DOT && whole.done && whole.verdict == DATA_OK)
		fuzz_roundtrip(&whole);
	free(whole.text);
	free(parts.text);
	return 0;
}
