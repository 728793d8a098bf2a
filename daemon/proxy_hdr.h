/*
 * proxy_hdr.h - the pure encoders of proxy mode (`delivery = proxy:HOST:PORT`):
 * how the backend MTA learns the real client (Postfix XCLIENT lines with xtext
 * values, or the HAProxy PROXY protocol v2 binary header), which of the
 * backend's EHLO keywords our merged EHLO reply passes on, and the backend's
 * reply lines. No sockets, no session: unit-tested byte for byte
 * (tests/unit/test_d_proxy_hdr.c). Daemon process.
 */
#ifndef SMTPCERTD_PROXY_HDR_H
#define SMTPCERTD_PROXY_HDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <smtpcert/smtpcert.h>

/* Postfix XCLIENT_README: an XCLIENT command must not exceed the 512-octet
 * SMTP command limit (RFC 5321 4.5.3.1.4); longer information is sent in
 * several XCLIENT commands. */
#define PROXY_XCLIENT_LINE_MAX 512
/* Room for every XCLIENT line we ever send (at most one per attribute). */
#define PROXY_XCLIENT_BUF_MAX (8 * PROXY_XCLIENT_LINE_MAX)

/* XCLIENT attributes, as a mask of what the backend's EHLO offers. */
enum proxy_xattr {
	PROXY_XA_NAME = 1u << 0,
	PROXY_XA_ADDR = 1u << 1,
	PROXY_XA_PORT = 1u << 2,
	PROXY_XA_PROTO = 1u << 3,
	PROXY_XA_HELO = 1u << 4,
	PROXY_XA_LOGIN = 1u << 5,
	PROXY_XA_DESTADDR = 1u << 6,
	PROXY_XA_DESTPORT = 1u << 7
};

/** What the backend is told about the client. NULL / 0 fields are sent as
 *  "[UNAVAILABLE]" (Postfix XCLIENT_README), or left out for ports. */
struct proxy_xclient {
	const char *name;      /**< client host name; we do no DNS: NULL */
	const char *addr;      /**< numeric IPv4 or IPv6 (no "IPV6:" prefix) */
	unsigned port;
	const char *proto;     /**< "SMTP" (HELO) or "ESMTP" (EHLO) */
	const char *helo;      /**< the client's HELO/EHLO argument, any bytes */
	size_t helo_len;
	const char *login;     /**< SASL identity (RFC 4954), NULL = none */
	const char *destaddr;  /**< our address the client connected to */
	unsigned destport;
};

/**
 * xtext-encode @p len bytes (RFC 3461 section 4: "+" and "=", and every octet
 * outside "!".."~", become "+" and two upper-case hex digits).
 * @return SC_OK with a NUL-terminated string; SC_ERR_TOO_LONG when it does not
 *         fit in @p size.
 */
SC_MUST_CHECK sc_status proxy_xtext(const char *in, size_t len, char *out, size_t size);

/**
 * The XCLIENT attribute names of the backend's "XCLIENT ..." EHLO keyword line
 * (@p params: what follows "XCLIENT"), as a proxy_xattr mask.
 */
unsigned proxy_xclient_offered(const char *params, size_t len);

/**
 * XCLIENT command lines telling the backend about @p x: every attribute the
 * backend @p offered, packed into lines of at most PROXY_XCLIENT_LINE_MAX
 * octets (CRLF included); LOGIN always goes alone in the last line, so that a
 * backend without SASL that refuses it still learns the address and HELO. An
 * attribute whose encoding alone would not fit a line is sent as
 * "[UNAVAILABLE]".
 * @return SC_OK, the lines (each ending in CRLF) in @p out, NUL-terminated,
 *         their count in *@p nlines (0 when nothing is offered);
 *         SC_ERR_TOO_LONG when @p size is too small.
 */
SC_MUST_CHECK sc_status proxy_xclient_lines(const struct proxy_xclient *x, unsigned offered,
					    char *out, size_t size, size_t *nlines);

/* The PROXY v2 header: 16 fixed octets plus 36 for two IPv6 addresses. */
#define PROXY_V2_MAX 52

/**
 * The HAProxy PROXY protocol v2 header (proxy-protocol.txt section 2.2) for a
 * TCP connection from @p src to @p dst: command PROXY, family TCP over IPv4
 * (0x11) or IPv6 (0x21). IPv4-mapped IPv6 addresses on both sides are sent
 * as IPv4. When an address is missing (NULL) or the families differ the
 * header says LOCAL (0x20, no addresses) and the backend uses the real peer.
 * @return SC_OK with *@p len octets in @p out; SC_ERR_TOO_LONG (@p size < needed).
 */
SC_MUST_CHECK sc_status proxy_v2_header(const struct sockaddr *src, const struct sockaddr *dst,
					uint8_t *out, size_t size, size_t *len);

/* Our own EHLO keywords besides the backend's (docs/design.md "Proxy mode"). */
enum proxy_ours {
	PROXY_OURS_STARTTLS = 1u << 0, /**< TLS configured and not yet active */
	PROXY_OURS_AUTH = 1u << 1,     /**< auth configured and TLS active */
	PROXY_OURS_CERC = 1u << 2      /**< submissions != off */
};

/**
 * The keywords of our EHLO reply in proxy mode, in order: PIPELINING; the
 * backend's keywords that describe its mail service (SIZE, 8BITMIME, DSN,
 * SMTPUTF8, CHUNKING, ... in the backend's order); ENHANCEDSTATUSCODES;
 * STARTTLS, AUTH, CERT, CERS, CERC as @p ours says; HELP last. The backend's
 * STARTTLS, AUTH, XCLIENT, XFORWARD, and keywords we say ourselves are never
 * passed on (the client's TLS and AUTH end at smtpcertd; XCLIENT from a client
 * would let it forge its address), nor are lines that are not printable ASCII.
 * @param kw the backend's keyword lines (without "250-"), @p nkw of them.
 * @return the number of entries stored in @p out (pointers into @p kw or to
 *         static strings), at most @p max.
 */
size_t proxy_ehlo_merge(const char *const *kw, size_t nkw, unsigned ours, const char **out,
			size_t max);

/**
 * Check one line of a backend reply (RFC 5321 4.2: three digits, then SP or
 * "-" or nothing, then printable text).
 * @return the code (200..599 etc.), with *@p last set for the final line;
 *         -1 when the line is malformed.
 */
int proxy_reply_line(const char *line, size_t len, int *last);

#endif
