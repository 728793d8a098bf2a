/*
 * upload.c - the CERC data phase reader (see upload.h). Owns the certificate
 * text buffer of one upload. Daemon process, event loop (and unit tests); no I/O.
 */
#include <string.h>

#include "upload.h"

void upload_init(struct upload *u, size_t max)
{
	memset(u, 0, sizeof *u);
	u->max = max;
	/* the DATA command line itself ended the previous "line" */
	u->prev_crlf = 1;
}

void upload_fini(struct upload *u)
{
	if (u->text)
		sc_buf_free(u->text);
	u->text = NULL;
}

const char *upload_data(const struct upload *u, size_t *len)
{
	*len = u->text ? sc_buf_len(u->text) : 0;
	return u->text ? sc_buf_data(u->text) : NULL;
}

/* The first refusal wins: it is the one the client hears. */
static void upload_refuse(struct upload *u, enum upload_verdict v)
{
	if (u->verdict == UPLOAD_OK)
		u->verdict = v;
	upload_fini(u); /* nothing of a refused upload is kept */
}

/* Drop bytes up to and including the next LF. @return 1 when the LF was found. */
static int upload_skip(struct upload *u, sc_buf *in)
{
	const char *p = sc_buf_data(in);
	size_t n = sc_buf_len(in);
	const char *lf = memchr(p, '\n', n);

	if (!lf) {
		if (n)
			u->last_cr = p[n - 1] == '\r';
		u->seen += n;
		sc_buf_consume(in, n);
		return 0;
	}
	u->prev_crlf = lf > p ? lf[-1] == '\r' : u->last_cr;
	u->seen += (size_t)(lf - p) + 1;
	sc_buf_consume(in, (size_t)(lf - p) + 1);
	u->skipping = 0;
	u->last_cr = 0;
	return 1;
}

/* Append one data line (without its terminator) to the text. */
static sc_status upload_keep(struct upload *u, const char *line, size_t len)
{
	/* RFC 5321 4.5.2: a leading period of a line with other characters is
	 * removed (the client doubled it). */
	if (len > 1 && line[0] == '.') {
		line++;
		len--;
	}
	if (u->verdict != UPLOAD_OK)
		return SC_OK; /* discarding until the end marker */
	if (len + 1 > u->max - (u->text ? sc_buf_len(u->text) : 0)) {
		upload_refuse(u, UPLOAD_TOO_BIG);
		return SC_OK;
	}
	if (!u->text)
		SC_TRY(sc_buf_new(u->max, &u->text));
	SC_TRY(sc_buf_append(u->text, line, len));
	return sc_buf_append(u->text, "\n", 1);
}

sc_status upload_feed(struct upload *u, sc_buf *in)
{
	while (!u->done && sc_buf_len(in) > 0) {
		const char *line;
		size_t len, used;
		int bare_lf;
		sc_status rc;

		if (u->skipping) {
			if (!upload_skip(u, in))
				break;
			continue;
		}
		rc = sc_buf_line(in, UPLOAD_LINE_MAX, &line, &len, &used, &bare_lf);
		if (rc == SC_AGAIN)
			break;
		if (rc != SC_OK) {
			/* RFC 5321 4.5.3.1.6: over-long text line; drop it, stay in sync */
			upload_refuse(u, UPLOAD_LINE_TOO_LONG);
			u->skipping = 1;
			u->last_cr = 0;
			continue;
		}
		/* RFC 5321 4.1.1.4: the end is <CRLF>.<CRLF>, both CRLFs real; a
		 * lone LF never ends the data (SMTP smuggling). */
		if (len == 1 && line[0] == '.' && !bare_lf && u->prev_crlf) {
			u->seen += used;
			sc_buf_consume(in, used);
			u->done = 1;
			break;
		}
		rc = upload_keep(u, line, len);
		u->prev_crlf = !bare_lf;
		u->seen += used;
		sc_buf_consume(in, used);
		if (rc != SC_OK)
			return rc;
	}
	return u->done ? SC_OK : SC_AGAIN;
}
