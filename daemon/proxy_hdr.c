/*
 * proxy_hdr.c - the pure encoders of proxy mode (see proxy_hdr.h): XCLIENT
 * lines (Postfix XCLIENT_README, values in RFC 3461 xtext), the PROXY protocol
 * v2 header (HAProxy's proxy-protocol.txt, section 2.2), the EHLO keyword merge
 * and the backend reply line check. Owns nothing; daemon process.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "proxy_hdr.h"

static const char proxy_hex[] = "0123456789ABCDEF";

sc_status proxy_xtext(const char *in, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		/* RFC 3461 4: xchar is "!".."~" except "+" and "="; hexchar otherwise */
		if (ch >= 0x21 && ch <= 0x7e && ch != '+' && ch != '=') {
			if (n + 1 >= size)
				return SC_ERR_TOO_LONG;
			out[n++] = (char)ch;
			continue;
		}
		if (n + 3 >= size)
			return SC_ERR_TOO_LONG;
		out[n++] = '+';
		out[n++] = proxy_hex[ch >> 4];
		out[n++] = proxy_hex[ch & 15];
	}
	if (n >= size)
		return SC_ERR_TOO_LONG;
	out[n] = '\0';
	return SC_OK;
}

static const struct {
	const char *name;
	unsigned bit;
} proxy_xattrs[] = {
	{ "NAME", PROXY_XA_NAME },   { "ADDR", PROXY_XA_ADDR },
	{ "PORT", PROXY_XA_PORT },   { "PROTO", PROXY_XA_PROTO },
	{ "HELO", PROXY_XA_HELO },   { "LOGIN", PROXY_XA_LOGIN },
	{ "DESTADDR", PROXY_XA_DESTADDR }, { "DESTPORT", PROXY_XA_DESTPORT },
};

unsigned proxy_xclient_offered(const char *params, size_t len)
{
	unsigned mask = 0;
	size_t i = 0;

	while (i < len) {
		size_t start, wl;

		while (i < len && params[i] == ' ')
			i++;
		start = i;
		while (i < len && params[i] != ' ')
			i++;
		wl = i - start;
		for (size_t k = 0; k < sizeof proxy_xattrs / sizeof proxy_xattrs[0]; k++)
			if (strlen(proxy_xattrs[k].name) == wl &&
			    strncasecmp(proxy_xattrs[k].name, params + start, wl) == 0)
				mask |= proxy_xattrs[k].bit;
	}
	return mask;
}

/* Line packing state for proxy_xclient_lines(). */
struct proxy_xl {
	char *out;
	size_t size, len;   /* whole buffer */
	size_t line_start;  /* offset of the open line; len == line_start: none */
	int open;
	size_t nlines;
};

static sc_status proxy_xl_close(struct proxy_xl *b)
{
	if (!b->open)
		return SC_OK;
	if (b->len + 3 > b->size)
		return SC_ERR_TOO_LONG;
	memcpy(b->out + b->len, "\r\n", 3);
	b->len += 2;
	b->open = 0;
	b->nlines++;
	return SC_OK;
}

/* Add " NAME=value" to the open line, or start a new line when it would not
 * fit in PROXY_XCLIENT_LINE_MAX (with its CRLF). */
static sc_status proxy_xl_add(struct proxy_xl *b, const char *attr, const char *val,
			      int alone)
{
	size_t need = 1 + strlen(attr) + 1 + strlen(val);

	if (b->open && (alone || b->len - b->line_start + need + 2 > PROXY_XCLIENT_LINE_MAX))
		SC_TRY(proxy_xl_close(b));
	if (!b->open) {
		if (b->len + 8 >= b->size)
			return SC_ERR_TOO_LONG;
		b->line_start = b->len;
		memcpy(b->out + b->len, "XCLIENT", 7);
		b->len += 7;
		b->open = 1;
	}
	if (b->len + need + 3 > b->size)
		return SC_ERR_TOO_LONG;
	b->len += (size_t)snprintf(b->out + b->len, b->size - b->len, " %s=%s", attr, val);
	if (alone)
		SC_TRY(proxy_xl_close(b));
	return SC_OK;
}

/* Encode one value; when it cannot fit in a line of its own, "[UNAVAILABLE]". */
static void proxy_xvalue(const char *attr, const char *v, size_t len, char *out, size_t size)
{
	/* "XCLIENT " + attr + "=" + value + CRLF within one line */
	size_t limit = PROXY_XCLIENT_LINE_MAX - 8 - strlen(attr) - 1 - 2 + 1;

	if (!v || (size > limit ? proxy_xtext(v, len, out, limit) :
				  proxy_xtext(v, len, out, size)) != SC_OK)
		snprintf(out, size, "[UNAVAILABLE]");
}

sc_status proxy_xclient_lines(const struct proxy_xclient *x, unsigned offered, char *out,
			      size_t size, size_t *nlines)
{
	struct proxy_xl b = { .out = out, .size = size };
	char val[PROXY_XCLIENT_LINE_MAX], tmp[64];

	*nlines = 0;
	if (size == 0)
		return SC_ERR_TOO_LONG;
	out[0] = '\0';
	if (offered & PROXY_XA_NAME) {
		proxy_xvalue("NAME", x->name, x->name ? strlen(x->name) : 0, val, sizeof val);
		SC_TRY(proxy_xl_add(&b, "NAME", val, 0));
	}
	if (offered & PROXY_XA_ADDR) {
		/* XCLIENT_README: IPv6 addresses carry the "IPV6:" prefix */
		if (x->addr && strchr(x->addr, ':'))
			snprintf(tmp, sizeof tmp, "IPV6:%s", x->addr);
		else
			snprintf(tmp, sizeof tmp, "%s", x->addr ? x->addr : "");
		proxy_xvalue("ADDR", x->addr ? tmp : NULL, strlen(tmp), val, sizeof val);
		SC_TRY(proxy_xl_add(&b, "ADDR", val, 0));
	}
	if ((offered & PROXY_XA_PORT) && x->port) {
		snprintf(val, sizeof val, "%u", x->port);
		SC_TRY(proxy_xl_add(&b, "PORT", val, 0));
	}
	if ((offered & PROXY_XA_PROTO) && x->proto)
		SC_TRY(proxy_xl_add(&b, "PROTO", x->proto, 0));
	if (offered & PROXY_XA_HELO) {
		proxy_xvalue("HELO", x->helo, x->helo_len, val, sizeof val);
		SC_TRY(proxy_xl_add(&b, "HELO", val, 0));
	}
	if ((offered & PROXY_XA_DESTADDR) && x->destaddr) {
		if (strchr(x->destaddr, ':'))
			snprintf(tmp, sizeof tmp, "IPV6:%s", x->destaddr);
		else
			snprintf(tmp, sizeof tmp, "%s", x->destaddr);
		proxy_xvalue("DESTADDR", tmp, strlen(tmp), val, sizeof val);
		SC_TRY(proxy_xl_add(&b, "DESTADDR", val, 0));
	}
	if ((offered & PROXY_XA_DESTPORT) && x->destport) {
		snprintf(val, sizeof val, "%u", x->destport);
		SC_TRY(proxy_xl_add(&b, "DESTPORT", val, 0));
	}
	SC_TRY(proxy_xl_close(&b));
	if (offered & PROXY_XA_LOGIN) {
		proxy_xvalue("LOGIN", x->login && *x->login ? x->login : NULL,
			     x->login ? strlen(x->login) : 0, val, sizeof val);
		SC_TRY(proxy_xl_add(&b, "LOGIN", val, 1));
	}
	*nlines = b.nlines;
	return SC_OK;
}

/* proxy-protocol.txt 2.2: the 12-octet signature */
static const uint8_t proxy_v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as IPv4. */
static int proxy_v4(const struct sockaddr *sa, uint8_t addr[4], uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(addr, &in->sin_addr, 4);
		*port = in->sin_port;
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return 0;
		memcpy(addr, in6->sin6_addr.s6_addr + 12, 4);
		*port = in6->sin6_port;
		return 1;
	}
	return 0;
}

sc_status proxy_v2_header(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out,
			  size_t size, size_t *len)
{
	uint8_t a4[2][4];
	uint16_t p[2]; /* network order */
	size_t n = 16;

	*len = 0;
	if (size < 16)
		return SC_ERR_TOO_LONG;
	memcpy(out, proxy_v2_sig, sizeof proxy_v2_sig);
	if (src && dst && proxy_v4(src, a4[0], &p[0]) && proxy_v4(dst, a4[1], &p[1])) {
		if (size < 16 + 12)
			return SC_ERR_TOO_LONG;
		out[12] = 0x21; /* version 2, PROXY */
		out[13] = 0x11; /* AF_INET, STREAM */
		memcpy(out + 16, a4[0], 4);
		memcpy(out + 20, a4[1], 4);
		memcpy(out + 24, &p[0], 2);
		memcpy(out + 26, &p[1], 2);
		n += 12;
	} else if (src && dst && src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
		const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;

		if (size < 16 + 36)
			return SC_ERR_TOO_LONG;
		out[12] = 0x21;
		out[13] = 0x21; /* AF_INET6, STREAM */
		memcpy(out + 16, &s6->sin6_addr, 16);
		memcpy(out + 32, &d6->sin6_addr, 16);
		memcpy(out + 48, &s6->sin6_port, 2);
		memcpy(out + 50, &d6->sin6_port, 2);
		n += 36;
	} else {
		out[12] = 0x20; /* version 2, LOCAL: the receiver uses the real peer */
		out[13] = 0x00; /* AF_UNSPEC */
	}
	/* address block length, network order */
	out[14] = (uint8_t)((n - 16) >> 8);
	out[15] = (uint8_t)((n - 16) & 0xff);
	*len = n;
	return SC_OK;
}

/* Backend keywords we never pass on: what we say ourselves and what ends at
 * smtpcertd (TLS, AUTH) or would let a client forge its identity (XCLIENT,
 * XFORWARD). */
static const char *const proxy_ehlo_drop[] = {
	"PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH", "XCLIENT", "XFORWARD",
	"HELP", "CERT", "CERS", "CERC",
};

static int proxy_ehlo_keep(const char *kw)
{
	size_t wl = 0, len = strlen(kw);

	if (len == 0 || len > PROXY_XCLIENT_LINE_MAX - 8)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)kw[i] < 0x20 || (unsigned char)kw[i] > 0x7e)
			return 0;
	/* the keyword ends at a space, or at "=" in the old "AUTH=LOGIN" form */
	while (wl < len && kw[wl] != ' ' && kw[wl] != '=')
		wl++;
	if (wl == 0)
		return 0;
	for (size_t i = 0; i < sizeof proxy_ehlo_drop / sizeof proxy_ehlo_drop[0]; i++)
		if (strlen(proxy_ehlo_drop[i]) == wl && strncasecmp(proxy_ehlo_drop[i], kw, wl) == 0)
			return 0;
	return 1;
}

size_t proxy_ehlo_merge(const char *const *kw, size_t nkw, unsigned ours, const char **out,
			size_t max)
{
	size_t n = 0;

#define PROXY_PUT(x) do { if (n < max) out[n++] = (x); } while (0)
	PROXY_PUT("PIPELINING");                       /* RFC 2920 */
	for (size_t i = 0; i < nkw; i++)
		if (proxy_ehlo_keep(kw[i]))
			PROXY_PUT(kw[i]);
	PROXY_PUT("ENHANCEDSTATUSCODES");              /* RFC 2034 */
	if (ours & PROXY_OURS_STARTTLS)
		PROXY_PUT("STARTTLS");                 /* RFC 3207 */
	if (ours & PROXY_OURS_AUTH)
		PROXY_PUT("AUTH PLAIN LOGIN");         /* RFC 4954 3, only inside TLS */
	PROXY_PUT("CERT");
	PROXY_PUT("CERS");
	if (ours & PROXY_OURS_CERC)
		PROXY_PUT("CERC");
	PROXY_PUT("HELP");
#undef PROXY_PUT
	return n;
}

int proxy_reply_line(const char *line, size_t len, int *last)
{
	*last = 0;
	if (len < 3)
		return -1;
	for (int i = 0; i < 3; i++)
		if (line[i] < '0' || line[i] > '9')
			return -1;
	/* RFC 5321 4.2: reply codes are 2yz..5yz (1yz is unused by SMTP) */
	if (line[0] < '2' || line[0] > '5')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	for (size_t i = 4; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		/* printable text; 8-bit allowed (RFC 6531 replies), controls not */
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -1;
	}
	*last = len == 3 || line[3] == ' ';
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}
