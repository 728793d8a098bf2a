/*
 * proxy_fuzz.c - fuzz target for the pure parts of proxy mode
 * (daemon/proxy_data.c, daemon/proxy_hdr.c).
 *
 * The first octet picks the chunk size and output room; the rest is client
 * data for proxy_dot_filter(), fed in chunks. Invariants (abort() when
 * broken): the data ends exactly where "<CR><LF>.<CR><LF>" first occurs in
 * the client's stream (the start counts as a line start), never elsewhere
 * (SMTP smuggling); what goes to the backend has no bare CR or LF and no
 * line holding a lone "." except the final one; the output never overruns.
 * The same bytes are also a backend reply line (proxy_reply_line), an xtext
 * value and an XCLIENT HELO (each line <= 512 octets), and EHLO keyword
 * lines for proxy_ehlo_merge (nothing dropped we say ourselves comes back).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy_data.h"
#include "proxy_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_MAX 8192

static void check_backend_stream(const char *out, size_t n, int done)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\r' && (i + 1 >= n || out[i + 1] != '\n'))
			abort();
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort();
		if (out[i] == '\n') {
			/* a line of one dot is the end, and only at the very end */
			if (i - start == 2 && out[start] == '.' && (!done || i + 1 != n))
				abort();
			start = i + 1;
		}
	}
}

static void fuzz_dot(const uint8_t *data, size_t size, size_t chunk, size_t room)
{
	static char out[OUT_MAX + 8];
	char *outp;
	struct proxy_dot st;
	size_t pos = 0, n = 0, ref = 0;
	int ref_done = 0;

	proxy_data_begin(&st);
	/* reference: the first CRLF.CRLF, the stream's start being a line start */
	for (size_t i = 0; i + 3 <= size && !ref_done; i++) {
		int bol = i == 0 || (i >= 2 && data[i - 2] == '\r' && data[i - 1] == '\n');

		if (bol && data[i] == '.' && data[i + 1] == '\r' && data[i + 2] == '\n') {
			ref_done = 1;
			ref = i + 3;
		}
	}
	outp = malloc(OUT_MAX + 8);
	if (!outp)
		return;
	while (pos < size && !st.done) {
		size_t avail = size - pos < chunk ? size - pos : chunk, olen = 0, used;

		for (;;) {
			used = proxy_dot_filter(&st, (const char *)data + pos, avail, outp, room, &olen);
			if (used > avail || olen > room)
				abort();
			if (used > 0 || olen > 0 || st.done || avail == size - pos)
				break;
			avail = size - pos < avail + chunk ? size - pos : avail + chunk;
		}
		if (n + olen <= OUT_MAX)
			memcpy(out + n, outp, olen);
		n = n + olen <= OUT_MAX ? n + olen : OUT_MAX + 1;
		pos += used;
		if (used == 0 && !st.done)
			break; /* only an undecided tail is left: the input ended */
	}
	free(outp);
	if (st.done != ref_done || (ref_done && pos != ref))
		abort();
	if (!st.done && size - pos > 2)
		abort();
	if (n <= OUT_MAX)
		check_backend_stream(out, n, st.done);
}

/* Entries whose keyword (up to SP or "=") is @p name, case-insensitively. */
static size_t count_kw(const char **v, size_t n, const char *name)
{
	size_t c = 0, len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (strncasecmp(v[i], name, len) == 0 &&
		    (v[i][len] == '\0' || v[i][len] == ' ' || v[i][len] == '='))
			c++;
	return c;
}

static void fuzz_hdr(const uint8_t *data, size_t size)
{
	char buf[PROXY_XCLIENT_BUF_MAX], xt[3 * 600 + 1];
	struct proxy_xclient x = { 0 };
	const char *kw[16], *out[32];
	char lines[16][64];
	size_t nl = 0, n, nkw = 0;
	int last;
	int code = proxy_reply_line((const char *)data, size, &last);

	if (code != -1 && (code < 200 || code > 599))
		abort();
	if (size <= 600 && proxy_xtext((const char *)data, size, xt, sizeof xt) != SC_OK)
		abort();
	x.addr = "192.0.2.1";
	x.port = 25;
	x.proto = "ESMTP";
	x.helo = (const char *)data;
	x.helo_len = size;
	x.login = "user@example.test";
	if (proxy_xclient_lines(&x, 0xff, buf, sizeof buf, &nl) != SC_OK)
		abort();
	for (const char *p = buf; *p; ) {
		const char *e = strstr(p, "\r\n");

		if (!e || (size_t)(e - p) + 2 > PROXY_XCLIENT_LINE_MAX)
			abort();
		for (const char *q = p; q < e; q++)
			if ((unsigned char)*q < 0x21 && *q != ' ')
				abort();
		p = e + 2;
	}
	/* keyword lines: the input cut at NUL/LF into up to 16 short strings */
	for (size_t i = 0, j = 0; i <= size && nkw < 16; i++) {
		if (i == size || data[i] == '\n' || data[i] == 0 || j == sizeof lines[0] - 1) {
			memcpy(lines[nkw], data + i - j, j);
			lines[nkw][j] = '\0';
			kw[nkw] = lines[nkw];
			nkw++;
			j = 0;
		} else {
			j++;
		}
	}
	n = proxy_ehlo_merge(kw, nkw, data[0] & 7u, out, 32);
	if (n < 5 || strcmp(out[0], "PIPELINING") || strcmp(out[n - 1], "HELP"))
		abort();
	/* STARTTLS and AUTH only when ours; XCLIENT/XFORWARD never */
	if (count_kw(out, n, "STARTTLS") != ((data[0] & PROXY_OURS_STARTTLS) ? 1 : 0) ||
	    count_kw(out, n, "AUTH") != ((data[0] & PROXY_OURS_AUTH) ? 1 : 0) ||
	    count_kw(out, n, "XCLIENT") || count_kw(out, n, "XFORWARD") ||
	    count_kw(out, n, "PIPELINING") != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t rooms[4] = { PROXY_DOT_EXPAND + 2, 16, 257, OUT_MAX };

	if (size < 1)
		return 0;
	fuzz_dot(data + 1, size - 1, (size_t)(data[0] & 15) + 1, rooms[(data[0] >> 4) & 3]);
	fuzz_hdr(data, size);
	return 0;
}
