/*
 * data.h - the mail data reader: turns the octets a client sends after DATA's
 * "354" (RFC 5321 4.1.1.4) or inside BDAT chunks (RFC 3030) into the message
 * stored in a spool file, streaming: nothing of the message is held in memory
 * beyond a small write buffer, so a 20 MB message costs what a 20 byte one does.
 *
 * DATA (dot mode): dot-unstuffing (RFC 5321 4.5.2) and the end of data.
 * Strictness, the SMTP smuggling defence (CVE-2023-51764/51765/51766 and the
 * 2023 "SMTP smuggling" attacks): the data ends ONLY at <CRLF>.<CRLF>, i.e. at a
 * line "." terminated by CRLF that follows a line terminated by CRLF (or the
 * DATA command itself). "\n.\n", "\r\n.\n", "\n.\r\n" and "\r.\r" are data.
 * Moreover a bare LF or a bare CR anywhere in the data makes the whole message
 * refused after its end (DATA_BARE_EOL, 554 5.6.11; docs/protocol.md "Mail
 * reception"): a message that another server could read as two is never
 * stored, whichever way that server splits it.
 *
 * BDAT (chunk mode): the caller bounds each chunk; no dot handling, no end
 * marker. The same line checks apply (RFC 3030 2: without BINARYMIME the
 * content is still lines of text).
 *
 * Limits, checked while reading: a line of more than 1000 octets including
 * CRLF (RFC 5321 4.5.3.1.6) or more than @p max octets in all (RFC 1870) sets a
 * verdict; the reader then stops writing but keeps parsing up to the end, so
 * the session stays in sync and the refusal is one reply after the end.
 *
 * Pure apart from write(2) to the given descriptor: no sockets, no libevent.
 * Daemon process, event loop (and unit tests, the fuzz target).
 */
#ifndef SMTPCERTD_DATA_H
#define SMTPCERTD_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <smtpcert/smtpcert.h>

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF. */
#define DATA_LINE_MAX 1000
/* Octets collected before one write(2) to the spool file. */
#define DATA_WBUF 16384

enum data_mode {
	DATA_MODE_DOT,  /**< after DATA: dot-stuffed, ends at <CRLF>.<CRLF> */
	DATA_MODE_CHUNK /**< BDAT chunks: raw octets, the caller counts them */
};

enum data_verdict {
	DATA_OK = 0,         /**< complete and acceptable */
	DATA_TOO_BIG,        /**< over the size limit: 552 5.3.4 (RFC 1870 6.3) */
	DATA_LINE_TOO_LONG,  /**< a line over DATA_LINE_MAX: 554 5.6.0 */
	DATA_BARE_EOL,       /**< a bare CR or LF: 554 5.6.11 (smuggling defence) */
	DATA_IO,             /**< the spool could not be written: 451 4.3.0 */
	DATA_NOSPACE         /**< the spool's file system is full: 452 4.3.1 */
};

struct data_reader {
	int fd;                  /**< spool file (not owned); -1 = count only */
	enum data_mode mode;
	uint64_t max;            /**< limit on the unstuffed message; 0 = none */
	uint64_t size;           /**< unstuffed octets of the message so far */
	uint64_t seen;           /**< octets consumed, stuffing and end marker included */
	uint64_t written;        /**< octets written to fd (header lines included) */
	enum data_verdict verdict;
	unsigned line_len;       /**< octets of the current line so far, as sent */
	unsigned state : 2;      /**< dot mode: where in a line we are (data.c) */
	unsigned cr : 1;         /**< the last octet was a CR, its LF not seen yet */
	unsigned prev_crlf : 1;  /**< the previous line ended in CRLF */
	unsigned done : 1;       /**< dot mode: the end marker was consumed */
	unsigned bare_cr : 1;    /**< which bare line end was seen (for the log) */
	unsigned bare_lf : 1;
	size_t wlen;
	char wbuf[DATA_WBUF];
};

/** Start reading a message into @p fd (may be -1), at most @p max octets. */
void data_init(struct data_reader *d, int fd, uint64_t max, enum data_mode mode);

/**
 * Write @p len octets of our own (the Received field) to the spool ahead of
 * the message; they do not count toward the size limit.
 * @return SC_OK; SC_ERR_IO (the verdict is set too).
 */
SC_MUST_CHECK sc_status data_put(struct data_reader *d, const char *p, size_t len);

/**
 * Consume octets. Dot mode: stops right after the end marker (*@p used may be
 * less than @p n; what follows is the next command). Chunk mode: takes all.
 * @return SC_OK when the end marker was consumed (dot mode), SC_AGAIN when
 *         more input is wanted (always in chunk mode). Write errors do not
 *         stop the reading: they set the verdict.
 */
sc_status data_feed(struct data_reader *d, const char *p, size_t n, size_t *used);

/** data_feed() from the connection's input buffer, consuming what it used. */
sc_status data_feed_buf(struct data_reader *d, sc_buf *in);

/**
 * The message is complete (end marker, or BDAT LAST): chunk mode checks the
 * last line (a trailing CR is a bare CR; a last line without CRLF gets one),
 * then the write buffer is flushed.
 * @return SC_OK when the verdict is DATA_OK and everything is written; the
 *         verdict tells why not otherwise (SC_ERR_IO for DATA_IO/DATA_NOSPACE,
 *         SC_ERR_REJECTED for the others).
 */
SC_MUST_CHECK sc_status data_finish(struct data_reader *d);

/** A short text for @p v, for logs ("too-big", "bare-lf", ...). */
const char *data_verdict_name(const struct data_reader *d);

/**
 * Open an anonymous spool file in @p dir: O_TMPFILE when the file system has
 * it, else mkstemp() + unlink(), so a crash never leaves a partial message.
 * @return SC_OK with the descriptor in *@p fd; SC_ERR_IO.
 */
SC_MUST_CHECK sc_status data_spool_open(const char *dir, int *fd);

#endif
