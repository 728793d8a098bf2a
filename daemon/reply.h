/*
 * reply.h - SMTP replies (RFC 5321 4.2) written into the session's output buffer.
 *
 * Every reply passes through here, which is where the code and enhanced status
 * code (RFC 3463) of the last line are recorded for the request log line. A reply
 * that does not fit marks the session out_failed (the connection is then closed)
 * rather than sending half of it.
 */
#ifndef SMTPCERTD_REPLY_H
#define SMTPCERTD_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <smtpcert/smtpcert.h>

struct session;

/**
 * Queue one reply line: @p fmt gives it without CRLF, e.g. "250 2.0.0 OK" or
 * "250-PIPELINING". Lines over SESSION_LINE_MAX are truncated (RFC 5321 4.5.3.1.5).
 * @return SC_OK, SC_ERR_TOO_LONG or SC_ERR_NOMEM (session marked out_failed).
 */
sc_status reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Bytes one reply may still add to the output buffer. */
size_t reply_room(struct session *s);

/** The bytes reply_pem() writes for @p der_len bytes of DER. */
size_t reply_pem_size(size_t der_len);

/**
 * Queue a certificate as "250-" + each RFC 7468 line (label CERTIFICATE, 64-column
 * base64), encoding straight from @p der into the output buffer with no copy.
 * The caller checks reply_pem_size() against reply_room() first.
 */
SC_MUST_CHECK sc_status reply_pem(struct session *s, const uint8_t *der, size_t der_len);

/** The same lines appended to @p b (any thread: a worker job's reply body).
 *  @return SC_OK; SC_ERR_TOO_LONG (nothing appended); SC_ERR_NOMEM. */
SC_MUST_CHECK sc_status reply_pem_buf(sc_buf *b, const uint8_t *der, size_t der_len);

/** Record @p code / @p status for the log line without queuing anything. */
void reply_note(struct session *s, int code, const char *status);

/**
 * The session's output buffer is drained (or the session ends): give it up.
 * A few small ones are kept for the next replies of any session, so that a CERT
 * answer does not allocate and grow a new buffer each time; idle sessions still
 * hold none. Event loop thread only, as every reply.
 */
void reply_release(struct session *s);

/** Free the kept buffers (the loop is ending). */
void reply_spares_free(void);

#endif
