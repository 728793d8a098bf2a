/*
 * http.c - the one HTTP request the client makes: GET of the URL a cert_url
 * server answers CERT/CERS with (INTERFACE.md), then the certificate(s) parsed
 * from the body. HTTP/1.0 so that no server may answer chunked (RFC 1945); the
 * body is bounded by SC_CERT_INPUT_MAX and checked against Content-Length. Reuses
 * the SMTP client's connection code (smtp_io.c). Runs in the CLI's process.
 *
 * Trust: https:// verifies the web server like STARTTLS does (CA file or system
 * store, the URL's host). Plain http:// is followed only when the caller is
 * insecure anyway: otherwise anyone on the path could substitute a certificate.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"
#include "smtp_int.h"

#define HTTP_URL_MAX 2048
#define HTTP_HEADERS_MAX (16 * 1024)

struct http_url {
	int tls;
	char host[SC_DOMAIN_MAX + 1];     /* without brackets */
	char port[8];
	char authority[SC_DOMAIN_MAX + 16]; /* for the Host header */
	char path[HTTP_URL_MAX + 1];
};

/* RFC 3986 3: scheme "://" authority path-abempty [ "?" query ] [ "#" fragment ]. */
static const char *url_parse(const char *url, struct http_url *u)
{
	const char *a, *end, *h, *colon = NULL, *hend;
	size_t alen, hlen, plen;
	unsigned char tmp[16];

	memset(u, 0, sizeof *u);
	if (!strncasecmp(url, "https://", 8)) {
		u->tls = 1;
		a = url + 8;
	} else if (!strncasecmp(url, "http://", 7)) {
		a = url + 7;
	} else {
		return "not an http:// or https:// URL";
	}
	if (strlen(url) > HTTP_URL_MAX)
		return "URL too long";
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "URL contains spaces, control or non-ASCII characters";
	end = a + strcspn(a, "/?#");
	alen = (size_t)(end - a);
	if (memchr(a, '@', alen))
		return "user information in URLs is not accepted";
	if (alen == 0 || alen >= sizeof u->authority)
		return "missing or too long host";
	memcpy(u->authority, a, alen);
	h = a;
	if (*h == '[') {
		hend = memchr(h, ']', alen);
		if (!hend)
			return "missing ']' in the host";
		h++;
		if (hend + 1 < end && hend[1] != ':')
			return "bad characters after ']'";
		colon = hend + 1 < end ? hend + 1 : NULL;
	} else {
		colon = memchr(h, ':', alen);
		hend = colon ? colon : end;
	}
	hlen = (size_t)(hend - h);
	if (hlen == 0 || hlen > SC_DOMAIN_MAX)
		return "missing or too long host";
	memcpy(u->host, h, hlen);
	if (a[0] == '[' ? inet_pton(AF_INET6, u->host, tmp) != 1
			: inet_pton(AF_INET, u->host, tmp) != 1 &&
				  sc_domain_check(u->host, hlen, 0) != SC_OK)
		return "not a valid host";
	snprintf(u->port, sizeof u->port, "%s", u->tls ? "443" : "80");
	if (colon) {
		size_t plen2 = (size_t)(end - colon - 1);
		long port = 0;

		if (plen2 == 0 || plen2 > 5)
			return "bad port";
		for (size_t i = 0; i < plen2; i++) {
			if (colon[1 + i] < '0' || colon[1 + i] > '9')
				return "bad port";
			port = port * 10 + (colon[1 + i] - '0');
		}
		if (port < 1 || port > 65535)
			return "bad port";
		snprintf(u->port, sizeof u->port, "%ld", port);
	}
	/* The fragment is the client's business (RFC 3986 3.5): never sent. */
	plen = strcspn(end, "#");
	if (plen == 0) {
		u->path[0] = '/';
	} else {
		if (*end == '?')
			u->path[0] = '/';
		memcpy(u->path + (*end == '?'), end, plen);
	}
	return NULL;
}

/*
 * Find the end of the headers in @p d. @return the offset of the body, 0 if not
 * complete yet. Bare LF line ends are tolerated, as every client does.
 */
static size_t headers_end(const char *d, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (d[i] != '\n')
			continue;
		if (d[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && d[i + 1] == '\r' && d[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

struct http_resp {
	int status;
	long long clen;     /* -1 when absent */
	size_t body;        /* offset of the body */
	char reason[64];
	char location[256];
};

/* Status line and the headers we need. @return NULL or a reason. */
static const char *parse_head(const char *d, size_t hlen, struct http_resp *r)
{
	const char *p = d, *end = d + hlen;

	r->clen = -1;
	if (hlen < 12 || strncmp(p, "HTTP/1.", 7) || p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
	    p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return "not an HTTP response";
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	p += 12;
	{
		size_t n = 0;

		while (p < end && *p == ' ')
			p++;
		while (p + n < end && p[n] != '\r' && p[n] != '\n')
			n++;
		snprintf(r->reason, sizeof r->reason, "%.*s", (int)(n < 60 ? n : 60), p);
		smtp_clean(r->reason, sizeof r->reason, r->reason);
	}
	p = memchr(p, '\n', (size_t)(end - p));
	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		const char *v;

		if (n && p[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		v = memchr(p, ':', n);
		if (v) {
			size_t klen = (size_t)(v - p), vlen;

			v++;
			while (v < p + n && (*v == ' ' || *v == '\t'))
				v++;
			vlen = (size_t)(p + n - v);
			if (klen == 14 && !strncasecmp(p, "Content-Length", 14)) {
				long long c = 0;

				if (vlen == 0 || vlen > 12)
					return "bad Content-Length";
				for (size_t i = 0; i < vlen; i++) {
					if (v[i] < '0' || v[i] > '9')
						return "bad Content-Length";
					c = c * 10 + (v[i] - '0');
				}
				if (r->clen >= 0 && r->clen != c)
					return "conflicting Content-Length headers";
				r->clen = c;
			} else if (klen == 17 && !strncasecmp(p, "Transfer-Encoding", 17) &&
				   !(vlen == 8 && !strncasecmp(v, "identity", 8))) {
				return "Transfer-Encoding in an HTTP/1.0 exchange";
			} else if (klen == 8 && !strncasecmp(p, "Location", 8)) {
				snprintf(r->location, sizeof r->location, "%.*s", (int)vlen, v);
				smtp_clean(r->location, sizeof r->location, r->location);
			}
		}
		p = eol;
	}
	return NULL;
}

static void conn_free(sc_smtp *c)
{
	if (c->tls)
		sc_tls_free(c->tls);
	sc_tls_ctx_unref(c->tctx);
	if (c->fd >= 0)
		close(c->fd);
	sc_buf_free(c->in);
}

/* Send the request and read the response (headers + body) into c->in. */
static sc_status http_exchange(sc_smtp *c, const struct http_url *u, const char *ca_file,
			       int insecure, struct http_resp *r)
{
	char req[HTTP_URL_MAX + 512], terr[256] = "";
	long long deadline;
	const char *why;
	sc_status st;
	int n;

	SC_TRY(smtp_connect_any(c, u->host, u->port));
	if (u->tls) {
		st = sc_tls_client_ctx_new(ca_file, insecure, &c->tctx, terr, sizeof terr);
		if (st != SC_OK) {
			smtp_seterr(c, "%s", terr);
			return st;
		}
		SC_TRY(sc_tls_new(c->tctx, c->fd, u->host, &c->tls));
		SC_TRY(smtp_tls_handshake(c));
	}
	n = snprintf(req, sizeof req,
		     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: smtpcert/%s\r\n"
		     "Accept: application/pem-certificate-chain, application/x-pem-file, "
		     "application/pkix-cert, */*\r\nConnection: close\r\n\r\n",
		     u->path, u->authority, smtpcert_version());
	if (n < 0 || (size_t)n >= sizeof req)
		return SC_ERR_TOO_LONG;
	SC_TRY(smtp_write_all(c, req, (size_t)n));
	deadline = smtp_now_ms() + c->timeout_ms;
	for (;;) {
		size_t len = sc_buf_len(c->in);

		if (!r->body && (r->body = headers_end(sc_buf_data(c->in), len)) != 0) {
			why = parse_head(sc_buf_data(c->in), r->body, r);
			if (why) {
				smtp_seterr(c, "%s: %s", c->host, why);
				return SC_ERR_PROTOCOL;
			}
		}
		/* Done when Content-Length bytes are in, even if the server lingers. */
		if (r->body && r->clen >= 0 && (long long)(len - r->body) >= r->clen) {
			if ((long long)(len - r->body) == r->clen)
				return SC_OK;
			smtp_seterr(c, "%s: HTTP body longer than its Content-Length", c->host);
			return SC_ERR_PROTOCOL;
		}
		if (!r->body && len >= HTTP_HEADERS_MAX) {
			smtp_seterr(c, "%s: HTTP headers too long", c->host);
			return SC_ERR_PROTOCOL;
		}
		if (sc_buf_room(c->in) == 0) {
			smtp_seterr(c, "%s: HTTP response larger than %d bytes", c->host,
				    SC_CERT_INPUT_MAX);
			return SC_ERR_TOO_LONG;
		}
		st = smtp_fill(c, deadline);
		if (st == SC_EOF)
			break;
		SC_TRY(st);
	}
	if (!r->body) {
		smtp_seterr(c, "%s: connection closed inside the HTTP headers", c->host);
		return SC_ERR_PROTOCOL;
	}
	if (r->clen >= 0) {
		smtp_seterr(c, "%s: HTTP body truncated (%zu of %lld bytes)", c->host,
			    sc_buf_len(c->in) - r->body, r->clen);
		return SC_ERR_PROTOCOL;
	}
	return SC_OK;
}

sc_status sc_http_fetch_cert(const char *url, const char *ca_file, int insecure,
			     int timeout_ms, sc_cert **out, char *err, size_t errlen)
{
	struct http_url u;
	struct http_resp r = { 0 };
	sc_smtp c;
	const char *why;
	sc_status st;

	SC_ENSURE_ARG(url);
	SC_ENSURE_ARG(out);
	*out = NULL;
	memset(&c, 0, sizeof c);
	c.fd = -1;
	c.err = err;
	c.errlen = errlen;
	c.timeout_ms = timeout_ms > 0 ? timeout_ms : SMTP_DEFAULT_TIMEOUT;
	if ((why = url_parse(url, &u)) != NULL) {
		smtp_seterr(&c, "%.200s: %s", url, why);
		return SC_ERR_SYNTAX;
	}
	if (!u.tls && !insecure) {
		smtp_seterr(&c, "%.200s: refusing a plain http:// URL: nothing would "
			    "authenticate the certificate (use --insecure to allow)", url);
		return SC_ERR_POLICY;
	}
	memcpy(c.host, u.host, sizeof c.host);
	if (sc_buf_new(HTTP_HEADERS_MAX + SC_CERT_INPUT_MAX, &c.in) != SC_OK)
		return SC_ERR_NOMEM;
	st = http_exchange(&c, &u, ca_file, insecure, &r);
	if (st == SC_OK && r.status != 200) {
		smtp_seterr(&c, "%.200s: HTTP %d %s%s%s", url, r.status, r.reason,
			    r.location[0] ? ", redirect not followed: " : "", r.location);
		st = r.status == 404 || r.status == 410 ? SC_ERR_NOT_FOUND
		     : r.status >= 500			  ? SC_ERR_TEMP
							  : SC_ERR_PROTOCOL;
	} else if (st == SC_OK && sc_buf_len(c.in) - r.body > SC_CERT_INPUT_MAX) {
		smtp_seterr(&c, "%.200s: HTTP response larger than %d bytes", url,
			    SC_CERT_INPUT_MAX);
		st = SC_ERR_TOO_LONG;
	} else if (st == SC_OK) {
		st = sc_cert_parse(sc_buf_data(c.in) + r.body, sc_buf_len(c.in) - r.body, out);
		if (st != SC_OK && st != SC_ERR_NOMEM) {
			smtp_seterr(&c, "%.200s: no usable certificate in the response (%s)", url,
				    sc_strerror(st));
			st = SC_ERR_PROTOCOL;
		}
	}
	conn_free(&c);
	return st;
}
