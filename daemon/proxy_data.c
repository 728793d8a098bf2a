/*
 * proxy_data.c - the message data filter of proxy mode (see proxy_data.h).
 * Owns nothing; daemon process, pure.
 */
#include <string.h>

#include "proxy_data.h"

void proxy_data_begin(struct proxy_dot *st)
{
	memset(st, 0, sizeof *st);
	st->obol = 1;
}

size_t proxy_dot_filter(struct proxy_dot *st, const char *in, size_t len, char *out,
			size_t size, size_t *outlen)
{
	size_t i = 0, n = 0;

	while (i < len && !st->done && n + PROXY_DOT_EXPAND + 2 <= size) {
		char ch = in[i];

		if (!st->mid && ch == '.') {
			/* RFC 5321 4.1.1.4: "." CRLF at a line start ends the data */
			if (i + 1 >= len || (in[i + 1] == '\r' && i + 2 >= len))
				break; /* undecided: wait for more */
			if (in[i + 1] == '\r' && in[i + 2] == '\n') {
				out[n++] = '.';
				out[n++] = '\r';
				out[n++] = '\n';
				i += 3;
				st->done = 1;
				break;
			}
			/* RFC 5321 4.5.2: the receiver deletes the leading dot; it is
			 * stuffed again below if the text still starts with one */
			i++;
			st->mid = 1;
			continue;
		}
		if (ch == '\r') {
			if (i + 1 >= len)
				break;
			if (in[i + 1] == '\n') {
				out[n++] = '\r';
				out[n++] = '\n';
				i += 2;
				st->mid = 0;
				st->obol = 1;
				continue;
			}
		}
		if (ch == '\r' || ch == '\n') {
			/* RFC 5321 2.3.8: bare CR or LF: a line break for the backend,
			 * but not a line start for the end-of-data test (smuggling) */
			out[n++] = '\r';
			out[n++] = '\n';
			i++;
			st->mid = 1;
			st->obol = 1;
			st->bare++;
			continue;
		}
		/* RFC 5321 4.5.2: every line the backend sees that starts with "."
		 * is stuffed, so it never reads a lone "." but at the end */
		if (st->obol && ch == '.')
			out[n++] = '.';
		out[n++] = ch;
		i++;
		st->mid = 1;
		st->obol = 0;
	}
	*outlen = n;
	return i;
}
