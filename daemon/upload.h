/*
 * upload.h - the data phase of a CERC submission: after "354", the certificate
 * text arrives as SMTP DATA does (RFC 5321 4.1.1.4) and ends with <CRLF>.<CRLF>.
 * This module turns the connection's buffered bytes into the certificate text:
 * bounded lines (RFC 5321 4.5.3.1.6: 1000 octets including CRLF), dot-unstuffing
 * (RFC 5321 4.5.2), and the total size bounded while reading.
 *
 * Strictness (SMTP smuggling defence, CVE-2023-51764/51765/51766): the data ends
 * only at a line "." terminated by CRLF that follows a line terminated by CRLF
 * (or the DATA command itself). "\n.\n", "\r\n.\n" and "\n.\r\n" are data. A
 * bare LF is otherwise accepted as a line end inside the data (a PEM parser does
 * not care), and is kept as "\n".
 *
 * Over the size limit or after an over-long line the reader keeps consuming
 * (and discarding) up to the end marker, so the session stays in sync and the
 * refusal is one reply after the ".". Pure: no sockets, no libevent; runs in the
 * daemon process on the event loop, and in the unit tests.
 */
#ifndef SMTPCERTD_UPLOAD_H
#define SMTPCERTD_UPLOAD_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF. */
#define UPLOAD_LINE_MAX 1000

enum upload_verdict {
	UPLOAD_OK = 0,        /**< the text is complete and within the limits */
	UPLOAD_TOO_BIG,       /**< more than the limit: 552 5.3.4 */
	UPLOAD_LINE_TOO_LONG  /**< a line over UPLOAD_LINE_MAX: 500 5.5.2 */
};

struct upload {
	sc_buf *text;          /**< unstuffed certificate text (NULL until the first byte) */
	size_t max;            /**< limit on the unstuffed text */
	size_t seen;           /**< bytes received, discarded ones included */
	enum upload_verdict verdict;
	unsigned done : 1;     /**< the end marker was consumed */
	unsigned skipping : 1; /**< discarding the rest of an over-long line */
	unsigned prev_crlf : 1;/**< the previous line ended in CRLF (end marker may follow) */
	unsigned last_cr : 1;  /**< while skipping: the last byte dropped was CR */
};

/** Start reading: the certificate text may hold at most @p max octets. */
void upload_init(struct upload *u, size_t max);

/** Free the text buffer. */
void upload_fini(struct upload *u);

/**
 * Consume complete lines from @p in (the connection's input buffer) until the
 * end marker or until no complete line is left. A partial line stays in @p in,
 * except the head of an over-long line, which is dropped.
 * @return SC_OK when the end marker was consumed (u->done; see u->verdict),
 *         SC_AGAIN when more input is needed, SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status upload_feed(struct upload *u, sc_buf *in);

/** The text read so far (NULL / 0 when empty). */
const char *upload_data(const struct upload *u, size_t *len);

#endif
