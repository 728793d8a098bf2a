/*
 * certurl.c - the cert_url template of URL mode (docs/protocol.md 10.2): the
 * URL CERT/CERS answer with (the daemon, cmd_cert.c) and the file under a web
 * root that URL names (`smtpcert admin export-www`, cli/admin_export.c). One
 * expansion for both, so the file written is always the one the daemon points at.
 * Pure functions; run in the daemon's event loop and in the administrator's CLI.
 *
 * The substituted values come from addresses, which a peer chooses: they are
 * percent-encoded in the URL (RFC 3986 2.1), and the file name decoded from the
 * URL path is refused when a segment could climb out of the web root or hide a
 * file ("", ".", "..", a leading '.'), or holds control characters.
 */
#include <string.h>

#include "smtpcert/smtpcert.h"

/* RFC 3986 2.3 unreserved, plus '@' (allowed in a path segment, 3.3). */
static int url_plain(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("-._~@", ch));
}

sc_status sc_cert_url_expand(const char *tmpl, const char *key, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *at;
	size_t o = 0;

	SC_ENSURE_ARG(tmpl);
	SC_ENSURE_ARG(key);
	SC_ENSURE_ARG(out && size);
	/* %n and %d are the parts of the key (split at its last '@', the domain
	 * holds none), so the URL depends only on the normalised address. */
	at = strrchr(key, '@');
	if (!at)
		return SC_ERR_ARG;
	for (const char *p = tmpl; *p; p++) {
		const char *sub = NULL, *end = NULL;

		if (*p == '%' && p[1]) {
			p++;
			if (*p == 'u')
				sub = key, end = key + strlen(key);
			else if (*p == 'n')
				sub = key, end = at;
			else if (*p == 'd')
				sub = at + 1, end = at + 1 + strlen(at + 1);
		}
		if (!sub) {
			if (o + 1 >= size)
				return SC_ERR_TOO_LONG;
			out[o++] = *p;
			continue;
		}
		for (; sub < end; sub++) {
			unsigned char ch = (unsigned char)*sub;

			if (o + (url_plain(ch) ? 1 : 3) >= size)
				return SC_ERR_TOO_LONG;
			if (url_plain(ch)) {
				out[o++] = (char)ch;
			} else {
				out[o++] = '%';
				out[o++] = hex[ch >> 4];
				out[o++] = hex[ch & 15];
			}
		}
	}
	out[o] = '\0';
	return SC_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Is the segment [s, s + n) of a decoded path safe as a file or directory name? */
static int segment_safe(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.')
		return 0; /* "", ".", "..", hidden files (the manifest is one) */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

sc_status sc_cert_url_file(const char *tmpl, const char *key, char *out, size_t size)
{
	char url[SC_CERT_URL_MAX];
	const char *p;
	size_t o = 0, seg = 0;

	SC_ENSURE_ARG(out && size);
	SC_TRY(sc_cert_url_expand(tmpl, key, url, sizeof url));
	p = strstr(url, "://");
	if (!p)
		return SC_ERR_CONFIG;
	p = strchr(p + 3, '/');
	if (!p)
		return SC_ERR_CONFIG; /* no path: nothing to write */
	/* A web server maps the path, never the query or fragment, to a file. */
	if (strpbrk(p, "?#"))
		return SC_ERR_UNSUPPORTED;
	p++;
	/* Decode as the web server will (RFC 3986 2.1), then split at '/': servers
	 * decode "%2F" too, so it separates segments like '/'. */
	for (;;) {
		char ch = *p;

		if (ch == '\0') {
			if (!segment_safe(out + seg, o - seg))
				return SC_ERR_SYNTAX;
			break;
		}
		if (ch == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

			if (lo < 0 || (hi | lo) == 0)
				return SC_ERR_SYNTAX; /* bad escape, or an encoded NUL */
			ch = (char)(hi << 4 | lo);
			p += 3;
		} else {
			p++;
		}
		if (ch == '/') {
			if (!segment_safe(out + seg, o - seg))
				return SC_ERR_SYNTAX;
			seg = o + 1;
		}
		if (o + 1 >= size)
			return SC_ERR_TOO_LONG;
		out[o++] = ch;
	}
	out[o] = '\0';
	return SC_OK;
}
