/*
 * smtpcert/buf.h - bounded byte buffers and an SMTP line reader.
 *
 * Every byte read from the network goes through an sc_buf whose maximum size is
 * fixed when it is created: appending past the maximum fails, it never grows. The
 * line reader finds CRLF-terminated lines (RFC 5321 2.3.8) and distinguishes "no
 * line end yet" from "a line longer than the limit", after which it discards up to
 * and including the next LF so the session stays in sync with the client.
 *
 * Ownership: an sc_buf owns its storage. Pointers returned into the buffer stay
 * valid until the next call that modifies it (append, consume, compact, free).
 */
#ifndef SMTPCERT_BUF_H
#define SMTPCERT_BUF_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sc_buf sc_buf;

/**
 * Create a buffer that will never hold more than @p max bytes.
 * @return SC_OK, SC_ERR_ARG (max == 0), SC_ERR_NOMEM. Storage is allocated lazily
 *         and grows up to @p max, so idle buffers cost little.
 */
SC_MUST_CHECK sc_status sc_buf_new(size_t max, sc_buf **out);
void sc_buf_free(sc_buf *b);

/** Change the maximum (e.g. raise it after authentication). Fails with
 *  SC_ERR_TOO_LONG if the buffer already holds more than @p max bytes. */
SC_MUST_CHECK sc_status sc_buf_set_max(sc_buf *b, size_t max);
size_t sc_buf_max(const sc_buf *b);
size_t sc_buf_len(const sc_buf *b);
/** Bytes that can still be appended before the maximum is reached. */
size_t sc_buf_room(const sc_buf *b);
/** Start of the unread data (may be NULL when empty). */
const char *sc_buf_data(const sc_buf *b);

/** Append @p len bytes. @return SC_OK, or SC_ERR_TOO_LONG with nothing appended. */
SC_MUST_CHECK sc_status sc_buf_append(sc_buf *b, const void *data, size_t len);

/**
 * Reserve room for a direct read(2): on success *@p p points at up to *@p room
 * writable bytes (at least 1); call sc_buf_commit() with what was written.
 * @return SC_OK, SC_ERR_TOO_LONG when full, SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status sc_buf_reserve(sc_buf *b, char **p, size_t *room);
void sc_buf_commit(sc_buf *b, size_t n);

/**
 * Reserve exactly @p n contiguous writable bytes at the end, growing the buffer
 * within its maximum (for a reply encoded in place); call sc_buf_commit() with
 * what was written.
 * @return SC_OK, SC_ERR_TOO_LONG when @p n does not fit under the maximum (nothing
 *         changed), SC_ERR_NOMEM.
 */
SC_MUST_CHECK sc_status sc_buf_reserve_n(sc_buf *b, size_t n, char **p);

/** Drop @p n bytes from the front (n is clamped to the length). */
void sc_buf_consume(sc_buf *b, size_t n);
/** Drop everything (used after STARTTLS: RFC 3207 section 4.2, CVE-2011-0411). */
void sc_buf_clear(sc_buf *b);

/**
 * Find the next line. On SC_OK *@p line points at its first byte, *@p len is its
 * length WITHOUT the terminator, *@p consumed is the number of bytes to pass to
 * sc_buf_consume() (line plus terminator). The terminator is CRLF; a bare LF is
 * accepted as a line end too (clients in the wild send it) and reported through
 * *@p bare_lf so a caller may be strict. A CR not followed by LF stays in the line.
 * @param max_line longest line accepted, terminator included (512 for commands,
 *        RFC 5321 4.5.3.1.4).
 * @return SC_OK; SC_AGAIN when no line end is buffered and the data so far is
 *         within max_line; SC_ERR_TOO_LONG when the line exceeds max_line: the
 *         caller replies 500 and calls sc_buf_skip_line(). TOO_LONG is reported as
 *         soon as max_line bytes are buffered without an LF (no terminator can fit
 *         any more), so a buffer whose maximum equals max_line never stalls.
 */
SC_MUST_CHECK sc_status sc_buf_line(const sc_buf *b, size_t max_line, const char **line,
				    size_t *len, size_t *consumed, int *bare_lf);

/**
 * Resynchronise after an over-long line: discard through the next LF.
 * @return SC_OK when an LF was found and the rest of the line is gone, SC_AGAIN when
 *         the whole buffer was discarded and the line end has not arrived yet (call
 *         again on the next input).
 */
sc_status sc_buf_skip_line(sc_buf *b);

#ifdef __cplusplus
}
#endif
#endif
