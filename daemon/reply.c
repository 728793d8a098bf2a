/*
 * reply.c - formatting SMTP replies into the session's output buffer (see
 * reply.h). Owns nothing beyond the call: the buffer belongs to the session and
 * is created here on first use so that idle sessions hold none. Daemon process.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"
#include "session.h"

/* Drained output buffers kept for reuse: a CERT answer of ~1.9 KB grew a fresh
 * buffer 256 -> 2048 bytes (four allocations, three copies) per request. Only
 * output: replies carry nothing a client sent (input buffers hold AUTH lines and
 * are freed, not passed to another session). A spare is cut back to
 * REPLY_SPARE_CAP. Why 64 KiB: the answers to a burst of 16 pipelined CERTs are
 * ~30 KB, and a 16 KiB cap shrank the buffer at every release and doubled it
 * back (a realloc copying 16 KiB) at every burst (docs/performance.md, sixth
 * round); 64 KiB holds a burst with room to spare. Memory: the spares hold at
 * most REPLY_SPARES x 64 KiB = 2 MiB per serving process (was 512 KiB), none of
 * it per connection: a session holds a buffer only while replies are queued
 * (conn_flush() releases it when drained), so an idle connection keeps none. */
#define REPLY_SPARES 32
#define REPLY_SPARE_CAP (64 * 1024)

static sc_buf *reply_spare[REPLY_SPARES];
static size_t reply_nspare;

void reply_release(struct session *s)
{
	sc_buf *b = s->out;

	s->out = NULL;
	if (!b)
		return;
	sc_buf_clear(b);
	if (reply_nspare < REPLY_SPARES && sc_buf_set_max(b, REPLY_SPARE_CAP) == SC_OK)
		reply_spare[reply_nspare++] = b;
	else
		sc_buf_free(b);
}

void reply_spares_free(void)
{
	while (reply_nspare > 0)
		sc_buf_free(reply_spare[--reply_nspare]);
}

static sc_status reply_out(struct session *s)
{
	sc_status rc;

	if (s->out)
		return SC_OK;
	if (reply_nspare > 0 &&
	    sc_buf_set_max(reply_spare[reply_nspare - 1], SESSION_OUT_MAX) == SC_OK) {
		s->out = reply_spare[--reply_nspare];
		return SC_OK;
	}
	rc = sc_buf_new(SESSION_OUT_MAX, &s->out);
	if (rc != SC_OK) {
		s->out = NULL;
		s->out_failed = 1;
	}
	return rc;
}

void reply_note(struct session *s, int code, const char *status)
{
	size_t n;

	s->last_code = code;
	/* "-" starts every request (command_dispatch(), cert_answered()): no
	 * strnlen() and copy for it (docs/performance.md, sixth round) */
	if (!status || (status[0] == '-' && status[1] == '\0')) {
		s->last_status[0] = '-';
		s->last_status[1] = '\0';
		return;
	}
	n = strnlen(status, sizeof s->last_status - 1);
	memcpy(s->last_status, status, n);
	s->last_status[n] = '\0';
}

/* Remember code and RFC 3463 status of a final reply line ("250 2.0.0 OK"),
 * parsed straight into the session (no copy through reply_note()). */
static void reply_record(struct session *s, const char *line, size_t len)
{
	char *status = s->last_status;
	size_t i = 4, n = 0;

	if (len < 4 || line[3] != ' ')
		return;
	/* status-code = class "." subject "." detail (RFC 3463 section 2) */
	while (i < len && n + 1 < sizeof s->last_status &&
	       ((line[i] >= '0' && line[i] <= '9') || line[i] == '.'))
		status[n++] = line[i++];
	if (n < 5 || (i < len && line[i] != ' ')) {
		status[0] = '-';
		n = 1;
	}
	status[n] = '\0';
	s->last_code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* A constant line ("250 2.0.0 OK" after every certificate), @p len bytes of
 * @p text: written straight into the output buffer with its CRLF, not copied
 * through a line on the stack first (docs/performance.md, sixth round). */
static sc_status reply_const(struct session *s, const char *text, size_t len)
{
	sc_status rc;
	char *p;

	reply_record(s, text, len);
	SC_TRY(reply_out(s));
	rc = sc_buf_reserve_n(s->out, len + 2, &p);
	if (rc != SC_OK) {
		s->out_failed = 1;
		return rc;
	}
	memcpy(p, text, len);
	p[len] = '\r';
	p[len + 1] = '\n';
	sc_buf_commit(s->out, len + 2);
	return SC_OK;
}

sc_status reply(struct session *s, const char *fmt, ...)
{
	char line[SESSION_LINE_MAX + 1];
	va_list ap;
	int n;
	size_t len;
	sc_status rc;

	/* one pass finds both a '%' and the end of a constant line */
	len = (size_t)(strchrnul(fmt, '%') - fmt);
	if (fmt[len] == '\0')
		return reply_const(s, fmt, len < sizeof line - 3 ? len : sizeof line - 3);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	len = (size_t)n < sizeof line - 2 ? (size_t)n : sizeof line - 3;
	reply_record(s, line, len);
	line[len++] = '\r';
	line[len++] = '\n';
	SC_TRY(reply_out(s));
	rc = sc_buf_append(s->out, line, len);
	if (rc != SC_OK)
		s->out_failed = 1;
	return rc;
}

size_t reply_room(struct session *s)
{
	if (reply_out(s) != SC_OK)
		return 0;
	return sc_buf_room(s->out);
}

size_t reply_pem_size(size_t der_len)
{
	return sc_pem_framed_size(der_len, "CERTIFICATE", 4, 2);
}

sc_status reply_pem_buf(sc_buf *b, const uint8_t *der, size_t der_len)
{
	size_t need = reply_pem_size(der_len), n = 0;
	char *p = NULL;

	/* encoded in place, "250-" lines and all: one pass over the DER, no
	 * line buffer and no append per line (docs/performance.md) */
	SC_TRY(sc_buf_reserve_n(b, need, &p));
	SC_TRY(sc_pem_encode_framed(der, der_len, "CERTIFICATE", "250-", "\r\n", p, need, &n));
	sc_buf_commit(b, n);
	return SC_OK;
}

sc_status reply_pem(struct session *s, const uint8_t *der, size_t der_len)
{
	sc_status rc;

	SC_TRY(reply_out(s));
	rc = reply_pem_buf(s->out, der, der_len);
	if (rc != SC_OK)
		s->out_failed = 1;
	return rc;
}
