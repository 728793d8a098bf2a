/*
 * received.c - the Received header field (see received.h). Owns nothing.
 * Daemon process, event loop (and unit tests).
 *
 *   Received: from client.example ([192.0.2.1])
 *           by mx.example.test (smtpcertd) with ESMTPS
 *           (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)
 *           id 1a2b3c4d000001.1
 *           for <alice@example.test>; Sat, 28 Nov 2026 21:25:06 +0000
 *
 * RFC 5321 4.4: From-domain is "FROM" Extended-Domain, i.e. the HELO name and
 * the TCP-info (here the address literal, no reverse DNS). A HELO argument that
 * is neither a domain nor an address literal cannot stand there: then the
 * literal is the From-domain and the HELO text (sanitised) follows in a comment,
 * which the grammar allows as the CFWS before "BY".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "received.h"

const char *received_protocol(const struct received_info *ri)
{
	/* RFC 3848 3; RFC 6531 3.7.3 (SMTPUTF8 implies EHLO) */
	static const char *const esmtp[4] = { "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" };
	static const char *const utf8[4] = { "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA" };
	unsigned i = (ri->tls_version ? 1u : 0u) | (ri->auth ? 2u : 0u);

	if (ri->smtputf8)
		return utf8[i];
	return ri->ehlo ? esmtp[i] : "SMTP";
}

/* The client's address as an RFC 5321 4.1.3 address literal. */
static void received_literal(const char *peer, char *out, size_t size)
{
	const char *end;
	size_t n;

	if (peer && peer[0] == '[' && (end = strchr(peer, ']')) != NULL) {
		n = (size_t)(end - peer - 1);
		snprintf(out, size, "[IPv6:%.*s]", (int)(n < 64 ? n : 64), peer + 1);
		return;
	}
	end = peer ? strrchr(peer, ':') : NULL;
	if (!end) {
		snprintf(out, size, "[0.0.0.0]");
		return;
	}
	n = (size_t)(end - peer);
	snprintf(out, size, "[%.*s]", (int)(n < 48 ? n : 48), peer);
}

/* Is @p s usable as the Domain of From-domain (a host name, or an address
 * literal of digits, hex, dots and colons)? */
static int received_helo_ok(const char *s, int utf8)
{
	size_t len = strlen(s);

	if (len == 0 || len > 255)
		return 0;
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return 0;
		for (size_t i = 1; i + 1 < len; i++)
			if (!strchr("0123456789abcdefABCDEF.:IPv", s[i]))
				return 0;
		return 1;
	}
	return sc_domain_check(s, len, utf8 ? SC_ADDR_UTF8 : 0) == SC_OK;
}

/* Comment text: printable ASCII, no parentheses or backslashes (RFC 5322 3.2.2
 * ctext), so a client cannot close our comment or fold the field. */
static void received_ctext(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; in && *in && n + 1 < size && n < 64; in++) {
		unsigned char ch = (unsigned char)*in;

		out[n++] = ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')' && ch != '\\' ?
			   (char)ch : '?';
	}
	out[n] = '\0';
}

/* RFC 5322 3.3 date-time in local time, with names that do not depend on the
 * locale. */
static void received_date(time_t when, char *out, size_t size)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;

	if (!localtime_r(&when, &tm)) {
		snprintf(out, size, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	off = tm.tm_gmtoff / 60;
	snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
		 (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
}

struct received_out {
	char *p;
	size_t size, len;
	int overflow;
};

static void received_add(struct received_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void received_add(struct received_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->len) {
		o->overflow = 1;
		return;
	}
	o->len += (size_t)n;
}

sc_status received_format(const struct received_info *ri, char *out, size_t size, size_t *len)
{
	struct received_out o = { .p = out, .size = size };
	char lit[80], helo[80], date[64];

	SC_ENSURE_ARG(ri);
	SC_ENSURE_ARG(out);
	SC_ENSURE_ARG(ri->hostname);
	SC_ENSURE(size > 0, SC_ERR_ARG);
	received_literal(ri->peer, lit, sizeof lit);
	received_date(ri->when, date, sizeof date);
	if (ri->helo && received_helo_ok(ri->helo, ri->smtputf8)) {
		received_add(&o, "Received: from %s (%s)\r\n", ri->helo, lit);
	} else {
		received_ctext(ri->helo && *ri->helo ? ri->helo : "none", helo, sizeof helo);
		received_add(&o, "Received: from %s (helo=%s)\r\n", lit, helo);
	}
	received_add(&o, "\tby %s (smtpcertd) with %s\r\n", ri->hostname, received_protocol(ri));
	if (ri->tls_version) {
		char v[40], c[80];

		received_ctext(ri->tls_version, v, sizeof v);
		received_ctext(ri->tls_cipher ? ri->tls_cipher : "unknown", c, sizeof c);
		received_add(&o, "\t(using %s with cipher %s)\r\n", v, c);
	}
	received_add(&o, "\tid %s", ri->id && *ri->id ? ri->id : "unknown");
	/* RFC 5321 4.4: "for" only with one recipient, so that a message with
	 * several recipients does not disclose the others to each (the copies
	 * are the same file) */
	if (ri->rcpt)
		received_add(&o, "\r\n\tfor <%s>", ri->rcpt);
	received_add(&o, "; %s\r\n", date);
	if (o.overflow)
		return SC_ERR_TOO_LONG;
	if (len)
		*len = o.len;
	return SC_OK;
}
