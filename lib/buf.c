/*
 * buf.c - bounded byte buffers and the SMTP line reader (see smtpcert/buf.h).
 *
 * An sc_buf owns one heap block that starts empty, grows by doubling (from
 * BUF_MIN) as data arrives and never exceeds the maximum fixed at creation. Unread
 * data lives at mem[off .. off+len); consuming only advances off, and the data is
 * moved back to the front (one memmove) when the tail runs out of room, so a
 * long-lived connection never needs more than max bytes however much passes through.
 *
 * Used by every process that reads from the network or a pipe: smtpcertd sessions,
 * the SMTP client of the CLI, the reply parser.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpcert/buf.h"

/* First allocation: one SMTP command line (RFC 5321 4.5.3.1.4) fits. */
#define BUF_MIN 256

struct sc_buf {
	char *mem;
	size_t cap; /* allocated bytes, <= max */
	size_t off; /* start of unread data */
	size_t len; /* unread bytes */
	size_t max; /* never hold more than this */
};

sc_status sc_buf_new(size_t max, sc_buf **out)
{
	sc_buf *b;

	SC_ENSURE_ARG(out);
	*out = NULL;
	SC_ENSURE(max > 0, SC_ERR_ARG);
	b = calloc(1, sizeof *b);
	SC_ENSURE(b != NULL, SC_ERR_NOMEM);
	b->max = max;
	*out = b;
	return SC_OK;
}

void sc_buf_free(sc_buf *b)
{
	if (!b)
		return;
	free(b->mem);
	free(b);
}

/* Move the unread data to the front so all free space is at the tail. */
static void buf_compact(sc_buf *b)
{
	if (b->off == 0)
		return;
	if (b->len > 0)
		memmove(b->mem, b->mem + b->off, b->len);
	b->off = 0;
}

/*
 * Make at least @p need bytes writable after the data. The caller has checked
 * len + need <= max. Compacts before growing so storage only grows when the data
 * itself needs it.
 */
static sc_status buf_make_room(sc_buf *b, size_t need)
{
	size_t ncap;
	char *nmem;

	if (b->cap - b->off - b->len >= need)
		return SC_OK;
	if (b->cap - b->len >= need) {
		buf_compact(b);
		return SC_OK;
	}
	buf_compact(b);
	ncap = b->cap ? b->cap : BUF_MIN;
	while (ncap < b->len + need && ncap < b->max)
		ncap = ncap > b->max / 2 ? b->max : ncap * 2;
	if (ncap > b->max)
		ncap = b->max;
	nmem = realloc(b->mem, ncap);
	SC_ENSURE(nmem != NULL, SC_ERR_NOMEM);
	b->mem = nmem;
	b->cap = ncap;
	return SC_OK;
}

sc_status sc_buf_set_max(sc_buf *b, size_t max)
{
	SC_ENSURE_ARG(b);
	SC_ENSURE(max > 0, SC_ERR_ARG);
	SC_ENSURE(b->len <= max, SC_ERR_TOO_LONG);
	if (b->cap > max) {
		char *nmem;

		/* Lowering the cap (e.g. back to pre-auth limits) gives memory back. */
		buf_compact(b);
		nmem = realloc(b->mem, max);
		if (nmem) {
			b->mem = nmem;
			b->cap = max;
		} else {
			/* Shrinking failed: keep the larger block but never use the excess. */
			b->cap = max;
		}
	}
	b->max = max;
	return SC_OK;
}

size_t sc_buf_max(const sc_buf *b)
{
	return b ? b->max : 0;
}

size_t sc_buf_len(const sc_buf *b)
{
	return b ? b->len : 0;
}

size_t sc_buf_room(const sc_buf *b)
{
	return b ? b->max - b->len : 0;
}

const char *sc_buf_data(const sc_buf *b)
{
	if (!b || !b->mem)
		return NULL;
	return b->mem + b->off;
}

sc_status sc_buf_append(sc_buf *b, const void *data, size_t len)
{
	SC_ENSURE_ARG(b);
	if (len == 0)
		return SC_OK;
	SC_ENSURE_ARG(data);
	SC_ENSURE(len <= b->max - b->len, SC_ERR_TOO_LONG);
	SC_TRY(buf_make_room(b, len));
	memcpy(b->mem + b->off + b->len, data, len);
	b->len += len;
	return SC_OK;
}

sc_status sc_buf_reserve(sc_buf *b, char **p, size_t *room)
{
	size_t want;

	SC_ENSURE_ARG(b);
	SC_ENSURE_ARG(p);
	SC_ENSURE_ARG(room);
	SC_ENSURE(b->len < b->max, SC_ERR_TOO_LONG);
	/* Offer a useful read size (not a trickle of single bytes near the end). */
	want = b->max - b->len;
	if (want > BUF_MIN)
		want = BUF_MIN;
	SC_TRY(buf_make_room(b, want));
	*p = b->mem + b->off + b->len;
	*room = b->cap - b->off - b->len;
	if (*room > b->max - b->len)
		*room = b->max - b->len;
	return SC_OK;
}

sc_status sc_buf_reserve_n(sc_buf *b, size_t n, char **p)
{
	SC_ENSURE_ARG(b);
	SC_ENSURE_ARG(p);
	SC_ENSURE(n <= b->max - b->len, SC_ERR_TOO_LONG);
	SC_TRY(buf_make_room(b, n));
	*p = b->mem + b->off + b->len;
	return SC_OK;
}

void sc_buf_commit(sc_buf *b, size_t n)
{
	if (!b)
		return;
	/* Clamp: committing more than was reserved would be a caller bug. */
	if (n > b->cap - b->off - b->len)
		n = b->cap - b->off - b->len;
	if (n > b->max - b->len)
		n = b->max - b->len;
	b->len += n;
}

void sc_buf_consume(sc_buf *b, size_t n)
{
	if (!b)
		return;
	if (n >= b->len) {
		b->off = 0;
		b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}

void sc_buf_clear(sc_buf *b)
{
	sc_buf_consume(b, (size_t)-1);
}

sc_status sc_buf_line(const sc_buf *b, size_t max_line, const char **line, size_t *len,
		      size_t *consumed, int *bare_lf)
{
	const char *d, *lf;
	size_t scan, i;

	SC_ENSURE_ARG(b);
	SC_ENSURE_ARG(line);
	SC_ENSURE_ARG(len);
	SC_ENSURE_ARG(consumed);
	SC_ENSURE(max_line > 0, SC_ERR_ARG);
	if (b->len == 0)
		return SC_AGAIN;
	d = b->mem + b->off;
	/* An LF beyond max_line cannot end an acceptable line: scan at most that far. */
	scan = b->len < max_line ? b->len : max_line;
	lf = memchr(d, '\n', scan);
	if (!lf) {
		/*
		 * max_line bytes without an LF can never become a line of at most
		 * max_line octets including its terminator, so say so now rather than
		 * when the buffer fills (RFC 5321 4.5.3.1.4 counts the CRLF).
		 */
		return b->len >= max_line ? SC_ERR_TOO_LONG : SC_AGAIN;
	}
	i = (size_t)(lf - d);
	*line = d;
	*consumed = i + 1;
	if (i > 0 && d[i - 1] == '\r') {
		*len = i - 1;
		if (bare_lf)
			*bare_lf = 0;
	} else {
		*len = i;
		if (bare_lf)
			*bare_lf = 1;
	}
	return SC_OK;
}

sc_status sc_buf_skip_line(sc_buf *b)
{
	const char *d, *lf;

	SC_ENSURE_ARG(b);
	if (b->len == 0)
		return SC_AGAIN;
	d = b->mem + b->off;
	lf = memchr(d, '\n', b->len);
	if (!lf) {
		sc_buf_clear(b);
		return SC_AGAIN;
	}
	sc_buf_consume(b, (size_t)(lf - d) + 1);
	return SC_OK;
}
