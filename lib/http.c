/*
 * http.c - the one HTTP request the client makes: GET of the URL a cert_url
 * server answers CERT/CERS with (docs/protocol.md 10.2), then the certificate(s)
 * parsed from the body. Transport by libcurl (HTTPS with OpenSSL); this file
 * adds the policy: the URL is validated first (no user information, a real host),
 * HTTP/1.0 (RFC 1945) as the contract says, no redirects, no proxy from the
 * environment, a body bounded by SC_CERT_INPUT_MAX while it arrives, headers by
 * HTTP_HEADERS_MAX, and a response checked against its own Content-Length.
 * Runs in the CLI's process (and any program using sc_smtp_fetch_cert()).
 *
 * Trust: https:// verifies the web server like STARTTLS does (CA file or the
 * system store, the URL's host; RFC 9110 4.3.4). Plain http:// is followed only
 * when the caller is insecure anyway: otherwise anyone on the path could
 * substitute a certificate.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "smtpcert/smtpcert.h"
#include "smtp_int.h"
#include "errmsg.h"

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


struct http_resp {
	int status;
	int head_done;      /* the empty line after the headers was seen */
	long long clen;     /* -1 when absent */
	size_t head_bytes;
	const char *why;    /* a header-check failure (static text) */
	char reason[64];
	char location[256];
	char *body;
	size_t len;
	int too_long;
};

/* Content-Length (RFC 9110 8.6): digits only; repeated values must agree. */
static const char *parse_clen(const char *v, size_t vlen, struct http_resp *r)
{
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
	return NULL;
}

/* One header line (libcurl hands them over one by one, the status line first).
 * Returning a short count makes libcurl stop with CURLE_WRITE_ERROR. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct http_resp *r = arg;
	size_t len = size * n, klen, vlen;
	const char *v;

	r->head_bytes += len;
	if (r->head_bytes > HTTP_HEADERS_MAX) {
		r->why = "HTTP headers too long";
		return 0;
	}
	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (len == 0) {
		r->head_done = 1;
		return size * n;
	}
	if (len >= 12 && !strncmp(p, "HTTP/", 5)) {
		/* a new status line (libcurl would show interim 1xx ones too) */
		size_t k = 12;

		r->clen = -1;
		r->location[0] = '\0';
		while (k < len && p[k] == ' ')
			k++;
		snprintf(r->reason, sizeof r->reason, "%.*s", (int)(len - k < 60 ? len - k : 60),
			 p + k);
		smtp_clean(r->reason, sizeof r->reason, r->reason);
		return size * n;
	}
	v = memchr(p, ':', len);
	if (!v)
		return size * n;
	klen = (size_t)(v - p);
	v++;
	while (v < p + len && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(p + len - v);
	if (klen == 14 && !strncasecmp(p, "Content-Length", 14)) {
		r->why = parse_clen(v, vlen, r);
	} else if (klen == 17 && !strncasecmp(p, "Transfer-Encoding", 17) &&
		   !(vlen == 8 && !strncasecmp(v, "identity", 8))) {
		/* we asked with HTTP/1.0: a chunked answer is not one (RFC 9112 6.1) */
		r->why = "Transfer-Encoding in an HTTP/1.0 exchange";
	} else if (klen == 8 && !strncasecmp(p, "Location", 8)) {
		snprintf(r->location, sizeof r->location, "%.*s", (int)vlen, v);
		smtp_clean(r->location, sizeof r->location, r->location);
	}
	return r->why ? 0 : size * n;
}

/* The body, bounded while it arrives: never more than SC_CERT_INPUT_MAX held. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct http_resp *r = arg;
	size_t len = size * n;

	if (len > SC_CERT_INPUT_MAX - r->len) {
		r->too_long = 1;
		return 0;
	}
	memcpy(r->body + r->len, p, len);
	r->len += len;
	return len;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Map a libcurl failure to a status and a message naming the host. */
static sc_status curl_status(CURL *h, CURLcode rc, const struct http_url *u,
			     const struct http_resp *r, const char *cerr, char *err,
			     size_t errlen)
{
	const char *msg = cerr[0] ? cerr : curl_easy_strerror(rc);
	long vr = 0;

	if (r->too_long || rc == CURLE_FILESIZE_EXCEEDED) {
		sc_errf(err, errlen, "%s: HTTP response larger than %d bytes", u->host,
			    SC_CERT_INPUT_MAX);
		return SC_ERR_TOO_LONG;
	}
	if (r->why) {
		sc_errf(err, errlen, "%s: %s", u->host, r->why);
		return SC_ERR_PROTOCOL;
	}
	switch (rc) {
	case CURLE_PARTIAL_FILE:
		sc_errf(err, errlen, "%s: HTTP body truncated (%zu of %lld bytes)", u->host,
			    r->len, r->clen);
		return SC_ERR_PROTOCOL;
	case CURLE_UNSUPPORTED_PROTOCOL: /* the scheme was checked: an HTTP/0.9 answer */
	case CURLE_WEIRD_SERVER_REPLY:
		sc_errf(err, errlen, "%s: %s (%s)", u->host,
			    strstr(msg, "Content-Length") ? "bad Content-Length"
			    : r->head_bytes		  ? "bad HTTP response"
							  : "not an HTTP response",
			    msg);
		return SC_ERR_PROTOCOL;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
		if (r->head_bytes && !r->head_done) {
			sc_errf(err, errlen, "%s: connection closed inside the HTTP headers",
				    u->host);
			return SC_ERR_PROTOCOL;
		}
		sc_errf(err, errlen, "%s: %s", u->host, msg);
		return rc == CURLE_RECV_ERROR ? SC_ERR_NETWORK : SC_ERR_PROTOCOL;
	case CURLE_PEER_FAILED_VERIFICATION:
		/* libcurl checks the name itself once the chain verified */
		curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &vr);
		sc_errf(err, errlen, "%s: TLS verification failed: %s (%s)", u->host,
			    vr == X509_V_OK || strstr(msg, "host name")
				    ? "hostname mismatch"
				    : X509_verify_cert_error_string(vr),
			    msg);
		return SC_ERR_VERIFY;
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
		sc_errf(err, errlen, "%s: %s", u->host, msg);
		return SC_ERR_CONFIG;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_USE_SSL_FAILED:
		sc_errf(err, errlen, "%s: TLS: %s", u->host, msg);
		return SC_ERR_TLS;
	case CURLE_OPERATION_TIMEDOUT:
		sc_errf(err, errlen, "%s: timed out: %s", u->host, msg);
		return SC_ERR_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
		return SC_ERR_NOMEM;
	default:
		sc_errf(err, errlen, "%s: %s", u->host, msg);
		return SC_ERR_NETWORK;
	}
}

#define SETOPT(h, opt, val)                                                \
	do {                                                                   \
		if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK) {         \
			st = SC_ERR_INTERNAL;                                  \
			goto out;                                              \
		}                                                              \
	} while (0)

sc_status sc_http_fetch_cert(const char *url, const char *ca_file, int insecure,
			     int timeout_ms, sc_cert **out, char *err, size_t errlen)
{
	struct http_url u;
	struct http_resp r = { .clen = -1 };
	struct curl_slist *hdrs = NULL;
	char cerr[CURL_ERROR_SIZE] = "", ua[64];
	const char *why;
	CURL *h = NULL;
	CURLcode rc;
	sc_status st = SC_OK;
	long code = 0, secs;

	SC_ENSURE_ARG(url);
	SC_ENSURE_ARG(out);
	*out = NULL;
	if (timeout_ms <= 0)
		timeout_ms = SMTP_DEFAULT_TIMEOUT;
	if ((why = url_parse(url, &u)) != NULL) {
		sc_errf(err, errlen, "%.200s: %s", url, why);
		return SC_ERR_SYNTAX;
	}
	if (!u.tls && !insecure) {
		sc_errf(err, errlen, "%.200s: refusing a plain http:// URL: nothing would "
			    "authenticate the certificate (use --insecure to allow)", url);
		return SC_ERR_POLICY;
	}
	if (pthread_once(&curl_once, curl_init) != 0 || curl_init_rc != CURLE_OK) {
		sc_errf(err, errlen, "libcurl initialisation failed");
		return SC_ERR_INTERNAL;
	}
	if (!(r.body = malloc(SC_CERT_INPUT_MAX)) || !(h = curl_easy_init())) {
		st = SC_ERR_NOMEM;
		goto out;
	}
	snprintf(ua, sizeof ua, "smtpcert/%s", smtpcert_version());
	hdrs = curl_slist_append(NULL, "Accept: application/pem-certificate-chain, "
				       "application/x-pem-file, application/pkix-cert, */*");
	if (!hdrs) {
		st = SC_ERR_NOMEM;
		goto out;
	}
	secs = (timeout_ms + 999) / 1000;
	SETOPT(h, CURLOPT_URL, url);
	SETOPT(h, CURLOPT_PROTOCOLS_STR, u.tls ? "https" : "http");
	SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_0);
	SETOPT(h, CURLOPT_PROXY, ""); /* direct: no proxy taken from the environment */
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	SETOPT(h, CURLOPT_USERAGENT, ua);
	SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
	SETOPT(h, CURLOPT_ERRORBUFFER, cerr);
	SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(h, CURLOPT_HEADERDATA, &r);
	SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(h, CURLOPT_WRITEDATA, &r);
	SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SC_CERT_INPUT_MAX);
	/* timeout_ms per step: connect, and no progress for as long; the whole
	 * exchange at most four steps */
	SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	SETOPT(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(h, CURLOPT_LOW_SPEED_TIME, secs);
	SETOPT(h, CURLOPT_TIMEOUT_MS, 4L * timeout_ms);
	SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SETOPT(h, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
	SETOPT(h, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
	if (ca_file)
		SETOPT(h, CURLOPT_CAINFO, ca_file);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK || r.why || r.too_long) {
		st = curl_status(h, rc, &u, &r, cerr, err, errlen);
		goto out;
	}
	if (!r.head_done) {
		/* libcurl accepts an HTTP/1.0 response cut inside its headers */
		sc_errf(err, errlen, "%s: connection closed inside the HTTP headers", u.host);
		st = SC_ERR_PROTOCOL;
		goto out;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = 0;
	if (code != 200) {
		sc_errf(err, errlen, "%.200s: HTTP %ld %s%s%s", url, code, r.reason,
			    r.location[0] ? ", redirect not followed: " : "", r.location);
		st = code == 404 || code == 410 ? SC_ERR_NOT_FOUND
		     : code >= 500		  ? SC_ERR_TEMP
						  : SC_ERR_PROTOCOL;
		goto out;
	}
	if (r.clen >= 0 && (long long)r.len != r.clen) {
		sc_errf(err, errlen, "%s: HTTP body truncated (%zu of %lld bytes)", u.host,
			    r.len, r.clen);
		st = SC_ERR_PROTOCOL;
		goto out;
	}
	st = sc_cert_parse(r.body, r.len, out);
	if (st != SC_OK && st != SC_ERR_NOMEM) {
		sc_errf(err, errlen, "%.200s: no usable certificate in the response (%s)", url,
			    sc_strerror(st));
		st = SC_ERR_PROTOCOL;
	}
out:
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(r.body);
	return st;
}
