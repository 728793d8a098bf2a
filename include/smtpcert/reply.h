/*
 * smtpcert/reply.h - SMTP reply parsing (RFC 5321 4.2, RFC 2034 / RFC 3463 enhanced
 * status codes), incremental and bounded.
 *
 * Feed reply lines one at a time (without CRLF). A reply is complete at the first
 * line whose code is followed by a space (or nothing). Every line of a multi-line
 * reply must carry the same code. Limits on line count and total size are set when
 * the parser is created, so a hostile server cannot make a client allocate without
 * bound.
 */
#ifndef SMTPCERT_REPLY_H
#define SMTPCERT_REPLY_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Defaults fit a CERS reply with SC_CHAIN_MAX certificates of 16 KiB each. */
#define SC_REPLY_MAX_LINES 4096
#define SC_REPLY_MAX_BYTES (256 * 1024)

typedef struct sc_reply sc_reply;

/** @param max_lines, max_bytes limits (0 = the defaults above). */
SC_MUST_CHECK sc_status sc_reply_new(size_t max_lines, size_t max_bytes, sc_reply **out);
void sc_reply_free(sc_reply *r);
/** Forget the current reply, ready for the next. */
void sc_reply_reset(sc_reply *r);

/**
 * Add one line (terminator stripped).
 * @return SC_OK when the reply is now complete; SC_AGAIN when more lines are
 *         expected; SC_ERR_PROTOCOL (no 3-digit code, code changed between lines,
 *         bad separator); SC_ERR_TOO_LONG / SC_ERR_TOO_MANY (limits).
 */
SC_MUST_CHECK sc_status sc_reply_feed(sc_reply *r, const char *line, size_t len);

/** Reply code (e.g. 250); 0 before the first line. */
int sc_reply_code(const sc_reply *r);

/** Enhanced status code of the last line ("2.0.0"), or "" when absent. */
const char *sc_reply_enhanced(const sc_reply *r);

/** Number of lines. */
size_t sc_reply_count(const sc_reply *r);

/**
 * Text of line @p i after "NNN-" / "NNN " (the enhanced code is NOT stripped),
 * NUL-terminated. @return NULL when out of range.
 */
const char *sc_reply_text(const sc_reply *r, size_t i, size_t *len);

/** Last line's text with the enhanced code stripped, for messages. */
const char *sc_reply_message(const sc_reply *r);

#ifdef __cplusplus
}
#endif
#endif
