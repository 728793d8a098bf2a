/*
 * upload_fuzz.c - fuzz target for the CERC data phase reader (daemon/upload.c):
 * the certificate text a client sends after "354".
 *
 * Byte 0 chooses the size limit (64 * (n + 1) octets), byte 1 the piece size
 * (1..256). The rest is fed once whole and once in pieces, as reads from a
 * socket would arrive. Invariants (abort() when broken): the same status,
 * verdict, octets seen and text both ways; a refused upload keeps no text; an
 * accepted text fits the limit, has only "\n" line ends and no line over the
 * RFC 5321 4.5.3.1.6 bound (999 octets before a bare LF, 998 before CRLF);
 * stuffing it again (RFC 5321 4.5.2) with CRLF line ends and ".\r\n" reads
 * back to the same text, ending exactly at the marker.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	sc_status rc;
	enum upload_verdict verdict;
	int done;
	size_t seen, left;
	char *text;
	size_t len;
};

static void fuzz_run(size_t max, const char *in, size_t n, size_t piece, struct out *o)
{
	struct upload u;
	sc_buf *b;
	size_t pos = 0;
	const char *t;

	if (sc_buf_new(n + 1, &b) != SC_OK)
		abort();
	upload_init(&u, max);
	o->rc = SC_AGAIN;
	while (pos < n && o->rc == SC_AGAIN) {
		size_t k = n - pos < piece ? n - pos : piece;

		if (sc_buf_append(b, in + pos, k) != SC_OK)
			abort();
		pos += k;
		o->rc = upload_feed(&u, b);
	}
	if (o->rc != SC_OK && o->rc != SC_AGAIN)
		abort();
	if ((o->rc == SC_OK) != !!u.done)
		abort();
	/* bytes after the end marker stay for the next command */
	o->left = sc_buf_len(b) + (n - pos);
	o->done = u.done;
	o->verdict = u.verdict;
	o->seen = u.seen;
	if (o->done && o->seen + o->left != n)
		abort();
	t = upload_data(&u, &o->len);
	if (u.verdict != UPLOAD_OK && t)
		abort();
	o->text = malloc(o->len + 1);
	if (!o->text)
		abort();
	if (o->len)
		memcpy(o->text, t, o->len);
	upload_fini(&u);
	sc_buf_free(b);
}

static void fuzz_same(const struct out *a, const struct out *b)
{
	if (a->rc != b->rc || a->verdict != b->verdict || a->done != b->done ||
	    a->seen != b->seen || a->left != b->left || a->len != b->len ||
	    memcmp(a->text, b->text, a->len) != 0)
		abort();
}

/* An accepted text: bounded, "\n" line ends, and it survives stuffing. */
static void fuzz_roundtrip(const struct out *o, size_t max)
{
	char *st = malloc(2 * o->len + 8);
	size_t n = 0, line = 0, longest = 0;
	struct out back;

	if (!st || o->len > max || (o->len && o->text[o->len - 1] != '\n'))
		abort();
	for (size_t i = 0; i < o->len; i++) {
		if (o->text[i] == '\n') {
			if (line > longest)
				longest = line;
			line = 0;
			st[n++] = '\r';
			st[n++] = '\n';
			continue;
		}
		if (o->text[i] == '.' && line == 0)
			st[n++] = '.';
		st[n++] = o->text[i];
		line++;
	}
	/* 1000 octets with the terminator: a bare LF leaves room for 999 */
	if (longest + 1 > UPLOAD_LINE_MAX)
		abort();
	/* stuffed again, a line may gain a dot and a CR */
	if (longest + 3 > UPLOAD_LINE_MAX) {
		free(st);
		return;
	}
	memcpy(st + n, ".\r\n", 3);
	n += 3;
	fuzz_run(max, st, n, n, &back);
	if (!back.done || back.verdict != UPLOAD_OK || back.left != 0 ||
	    back.len != o->len || memcmp(back.text, o->text, o->len) != 0)
		abort();
	free(back.text);
	free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max, piece;
	struct out whole, parts;

	if (size < 2 || size > 65536)
		return 0;
	max = ((size_t)data[0] + 1) * 64;
	piece = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	fuzz_run(max, (const char *)data, size, size ? size : 1, &whole);
	fuzz_run(max, (const char *)data, size, piece, &parts);
	fuzz_same(&whole, &parts);
	if (whole.done && whole.verdict == UPLOAD_OK)
		fuzz_roundtrip(&whole, max);
	free(whole.text);
	free(parts.text);
	return 0;
}
