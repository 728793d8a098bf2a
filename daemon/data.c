/*
 * data.c - the mail data reader (see data.h): a byte-level state machine from
 * the client's octets to the spool file. Owns nothing but its write buffer; the
 * descriptor is the caller's. Daemon process, event loop (and unit tests, the
 * fuzz target).
 *
 * Why byte level rather than sc_buf_line(): a DATA line may be split across
 * any number of reads and a BDAT chunk may end in the middle of a line or
 * between its CR and its LF; a state machine fed octet spans is exact at every
 * boundary (tests/unit/test_d_data.c splits inputs at every offset).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_TMPFILE */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

/* Where in a line the dot-mode reader is. */
enum {
	ST_BOL = 0,   /* at the start of a line */
	ST_DOT = 1,   /* the line began with '.', held back */
	ST_DOTCR = 2, /* the line began with ".\r", held back */
	ST_MID = 3    /* inside a line */
};

void data_init(struct data_reader *d, int fd, uint64_t max, enum data_mode mode)
{
	memset(d, 0, sizeof *d);
	d->fd = fd;
	d->max = max;
	d->mode = mode;
	d->state = ST_BOL;
	/* the DATA command line itself ended the previous "line" */
	d->prev_crlf = 1;
}

/* The first refusal wins: it is the one the client hears. */
static void data_refuse(struct data_reader *d, enum data_verdict v)
{
	if (d->verdict == DATA_OK)
		d->verdict = v;
	d->wlen = 0; /* nothing more of a refused message is written */
}

static void data_flush(struct data_reader *d)
{
	size_t off = 0;

	while (off < d->wlen && d->fd >= 0) {
		ssize_t w = write(d->fd, d->wbuf + off, d->wlen - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			data_refuse(d, w < 0 && (errno == ENOSPC || errno == EDQUOT) ?
				    DATA_NOSPACE : DATA_IO);
			return;
		}
		off += (size_t)w;
		d->written += (uint64_t)w;
	}
	if (d->fd < 0)
		d->written += d->wlen;
	d->wlen = 0;
}

static void data_write(struct data_reader *d, const char *p, size_t n)
{
	while (n > 0 && d->verdict == DATA_OK) {
		size_t k = sizeof d->wbuf - d->wlen;

		if (k > n)
			k = n;
		memcpy(d->wbuf + d->wlen, p, k);
		d->wlen += k;
		p += k;
		n -= k;
		if (d->wlen == sizeof d->wbuf)
			data_flush(d);
	}
}

/* Octets of the message proper: counted against the limit (RFC 1870). */
static void data_out(struct data_reader *d, const char *p, size_t n)
{
	d->size += n;
	if (d->max && d->size > d->max)
		data_refuse(d, DATA_TOO_BIG);
	data_write(d, p, n);
}

sc_status data_put(struct data_reader *d, const char *p, size_t len)
{
	data_write(d, p, len);
	return d->verdict == DATA_OK ? SC_OK : SC_ERR_IO;
}

/* Count @p n octets of the current line as sent; RFC 5321 4.5.3.1.6. */
static void data_count(struct data_reader *d, size_t n)
{
	if (d->line_len + n > DATA_LINE_MAX) {
		data_refuse(d, DATA_LINE_TOO_LONG);
		d->line_len = DATA_LINE_MAX + 1; /* saturate */
		return;
	}
	d->line_len += (unsigned)n;
}

static void data_bare(struct data_reader *d, int lf)
{
	if (lf)
		d->bare_lf = 1;
	else
		d->bare_cr = 1;
	data_refuse(d, DATA_BARE_EOL);
}

/* Inside a line: the text up to the next CR or LF in one go, then that octet.
 * @return octets of @p p used (at least 1). */
static size_t data_mid(struct data_reader *d, const char *p, size_t n)
{
	size_t k = 0;

	if (p[0] == '\n') {
		data_count(d, 1);
		if (!d->cr)
			data_bare(d, 1); /* RFC 5321 2.3.8: lines end in CRLF only */
		data_out(d, "\n", 1);
		d->prev_crlf = d->cr;
		d->cr = 0;
		d->line_len = 0;
		d->state = ST_BOL;
		return 1;
	}
	if (d->cr)
		data_bare(d, 0); /* the CR before this octet was not part of a CRLF */
	if (p[0] == '\r') {
		data_count(d, 1);
		data_out(d, "\r", 1);
		d->cr = 1;
		return 1;
	}
	while (k < n && p[k] != '\r' && p[k] != '\n')
		k++;
	/* Of the two limits, the one an octet-by-octet reader would cross first
	 * decides, so the verdict does not depend on how the reads were cut. */
	if (d->verdict == DATA_OK && d->max && d->size <= d->max && d->size + k > d->max &&
	    d->line_len <= DATA_LINE_MAX && d->max - d->size < DATA_LINE_MAX - d->line_len) {
		data_out(d, p, k);
		data_count(d, k);
	} else {
		data_count(d, k);
		data_out(d, p, k);
	}
	d->cr = 0;
	return k;
}

/* Dot mode, at the start of a line or right after its leading dot. A dot that
 * is removed does not count toward the line length (RFC 5321 4.5.3.1.6: "not
 * counting the leading dot duplicated for transparency").
 * @return octets used; 0 with d->state == ST_MID means "go on in the line". */
static size_t data_dot(struct data_reader *d, char c)
{
	switch (d->state) {
	case ST_BOL:
		d->state = ST_MID;
		if (c != '.')
			return 0;
		d->state = ST_DOT;
		return 1;
	case ST_DOT:
		if (c == '\r') {
			d->state = ST_DOTCR;
			return 1;
		}
		d->state = ST_MID;
		if (c == '\n') {
			/* ".\n": the line "." with a bare LF; data, never the end */
			data_count(d, 1);
			data_out(d, ".", 1);
		}
		/* else RFC 5321 4.5.2: the client doubled a leading dot: drop one */
		return 0;
	default: /* ST_DOTCR */
		if (c == '\n' && d->prev_crlf) {
			/* RFC 5321 4.1.1.4: <CRLF>.<CRLF>, both line ends real */
			d->seen++;
			d->done = 1;
			d->state = ST_BOL;
			return 1;
		}
		d->state = ST_MID;
		if (c == '\n') {
			/* "\n.\r\n": the line before ended in a bare LF, so this is
			 * not <CRLF>.<CRLF>: data (the bare LF refuses the message) */
			data_count(d, 1);
			data_out(d, ".", 1);
		}
		/* ".\r" then something else: unstuffed; the CR waits for its LF */
		data_count(d, 1);
		data_out(d, "\r", 1);
		d->cr = 1;
		return 0;
	}
}

sc_status data_feed(struct data_reader *d, const char *p, size_t n, size_t *used)
{
	size_t i = 0;

	while (i < n && !d->done) {
		size_t k;

		if (d->mode == DATA_MODE_DOT && d->state != ST_MID) {
			k = data_dot(d, p[i]);
			if (d->done) {
				i += k;
				break;
			}
			d->seen += k;
			i += k;
			if (k)
				continue;
		}
		d->state = ST_MID;
		k = data_mid(d, p + i, n - i);
		d->seen += k;
		i += k;
	}
	*used = i;
	return d->done ? SC_OK : SC_AGAIN;
}

sc_status data_feed_buf(struct data_reader *d, sc_buf *in)
{
	size_t used = 0;
	sc_status rc = data_feed(d, sc_buf_data(in), sc_buf_len(in), &used);

	sc_buf_consume(in, used);
	return rc;
}

sc_status data_finish(struct data_reader *d)
{
	if (d->mode == DATA_MODE_CHUNK) {
		/* RFC 3030 3: the message ends with the last chunk's last octet */
		if (d->cr)
			data_bare(d, 0);
		else if (d->state == ST_MID && d->line_len > 0)
			data_write(d, "\r\n", 2); /* complete the last line */
	}
	data_flush(d);
	switch (d->verdict) {
	case DATA_OK:
		return SC_OK;
	case DATA_IO:
	case DATA_NOSPACE:
		return SC_ERR_IO;
	default:
		return SC_ERR_REJECTED;
	}
}

const char *data_verdict_name(const struct data_reader *d)
{
	switch (d->verdict) {
	case DATA_OK: return "ok";
	case DATA_TOO_BIG: return "too-big";
	case DATA_LINE_TOO_LONG: return "line-too-long";
	case DATA_BARE_EOL: return d->bare_lf ? (d->bare_cr ? "bare-cr-lf" : "bare-lf") : "bare-cr";
	case DATA_IO: return "spool-write-error";
	case DATA_NOSPACE: return "spool-full";
	}
	return "?";
}

sc_status data_spool_open(const char *dir, int *fd)
{
	char path[4096];
	int f;

	SC_ENSURE_ARG(dir);
	*fd = -1;
#ifdef O_TMPFILE
	f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f >= 0) {
		*fd = f;
		return SC_OK;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return SC_ERR_IO;
#endif
	/* no O_TMPFILE here: a named file, unlinked at once */
	if ((size_t)snprintf(path, sizeof path, "%s/.spool.XXXXXX", dir) >= sizeof path)
		return SC_ERR_IO;
	f = mkostemp(path, O_CLOEXEC);
	if (f < 0)
		return SC_ERR_IO;
	if (unlink(path) != 0) {
		close(f);
		return SC_ERR_IO;
	}
	*fd = f;
	return SC_OK;
}
