/*
 * proxy_data.h - the message data filter of proxy mode: the client's DATA
 * stream (RFC 5321 4.1.1.4, dot-stuffed) re-encoded for the backend so that
 * the backend sees exactly the lines smtpcertd sees. Pure; daemon process.
 *
 * SMTP smuggling (the 2023 attacks) needs two servers to disagree on where
 * a message ends. Here a line ends only at CRLF and the data only at
 * CRLF "." CRLF (RFC 5321 4.1.1.4, 2.3.8); a bare CR or bare LF is turned
 * into CRLF. The text is unstuffed as the client sent it and stuffed again
 * as the backend will read it (RFC 5321 4.5.2), so every backend line that
 * starts with "." gets a second one: "<LF>.<CR><LF>" reaches the backend as
 * "<CR><LF>..<CR><LF>", a line holding one dot, never the end of the data.
 * fuzz/proxy_fuzz.c checks that the backend never sees a lone "." line but
 * where the client's data ended.
 */
#ifndef SMTPCERTD_PROXY_DATA_H
#define SMTPCERTD_PROXY_DATA_H

#include <stddef.h>

struct proxy_dot {
	unsigned mid : 1;   /**< inside a line of the client's stream */
	unsigned obol : 1;  /**< the backend's line has no text yet (set by
			     *  proxy_data_begin()/CRLF/bare CR or LF) */
	unsigned done : 1;  /**< CRLF.CRLF seen: the data ended */
	unsigned long long bare; /**< bare CR/LF neutralised so far (for the log) */
};

/** Start of the data: @p st at a line start on both sides. */
void proxy_data_begin(struct proxy_dot *st);

/* Output octets per input octet at most ("\n" + "." -> "\r\n.."). */
#define PROXY_DOT_EXPAND 3

/**
 * Filter client data from @p in (@p len octets) into @p out. Stops at the end
 * of the data (st->done, the final ".\r\n" is written), when @p out has fewer
 * than PROXY_DOT_EXPAND + 2 octets left, or when the bytes left are a prefix
 * that needs more input to decide (a CR, or "." / ".\r" at a line start).
 * @return octets of @p in consumed; *@p outlen octets written.
 */
size_t proxy_dot_filter(struct proxy_dot *st, const char *in, size_t len, char *out,
			size_t size, size_t *outlen);

#endif
