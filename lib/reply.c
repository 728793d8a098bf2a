/*
 * reply.c - incremental SMTP reply parser (RFC 5321 4.2, RFC 2034, RFC 3463) for
 * the client side: smtp.c feeds it one line at a time. It owns a copy of each
 * line's text, bounded by the limits given at creation, so a hostile server
 * cannot make the client allocate without bound. Runs in the CLI's process.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpcert/smtpcert.h"

/* RFC 3463 2: class "." subject (1-3 digits) "." detail (1-3 digits). */
#define SC_ENHANCED_MAX sizeof("5.999.999")

struct sc_reply {
	size_t max_lines, max_bytes;
	int code;
	int complete;
	size_t bytes;                  /* raw octets fed, for max_bytes */
	char enhanced[SC_ENHANCED_MAX];
	size_t enhanced_len;           /* in the last line's text, incl. trailing blanks */
	size_t n, cap;                 /* lines */
	size_t *off, *len;             /* text of line i = text + off[i], len[i] */
	char *text;                    /* NUL-separated line texts */
	size_t tlen, tcap;
};

sc_status sc_reply_new(size_t max_lines, size_t max_bytes, sc_reply **out)
{
	sc_reply *r;

	SC_ENSURE_ARG(out);
	*out = NULL;
	r = calloc(1, sizeof *r);
	if (!r)
		return SC_ERR_NOMEM;
	r->max_lines = max_lines ? max_lines : SC_REPLY_MAX_LINES;
	r->max_bytes = max_bytes ? max_bytes : SC_REPLY_MAX_BYTES;
	*out = r;
	return SC_OK;
}

void sc_reply_free(sc_reply *r)
{
	if (!r)
		return;
	free(r->off);
	free(r->len);
	free(r->text);
	free(r);
}

void sc_reply_reset(sc_reply *r)
{
	if (!r)
		return;
	r->code = 0;
	r->complete = 0;
	r->bytes = 0;
	r->enhanced[0] = '\0';
	r->enhanced_len = 0;
	r->n = 0;
	r->tlen = 0;
}

/* RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39 */
static int parse_code(const char *s)
{
	if (s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || s[2] < '0' || s[2] > '9')
		return 0;
	return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

/* 1 to 3 digits; @return how many, 0 if none or more than 3. */
static size_t digits(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i > 3 ? 0 : i;
}

/*
 * RFC 3463 2 / RFC 2034 4: the enhanced code starts the text of the last line and
 * its class must equal the reply code's first digit; otherwise there is none.
 */
static void parse_enhanced(sc_reply *r, const char *t, size_t len)
{
	size_t i = 0, d;

	r->enhanced[0] = '\0';
	r->enhanced_len = 0;
	if (len < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[0] - '0' != r->code / 100 ||
	    t[1] != '.')
		return;
	i = 2;
	d = digits(t + i, len - i);
	if (!d || i + d >= len || t[i + d] != '.')
		return;
	i += d + 1;
	d = digits(t + i, len - i);
	if (!d)
		return;
	i += d;
	if (i < len && t[i] != ' ' && t[i] != '\t')
		return;
	memcpy(r->enhanced, t, i);
	r->enhanced[i] = '\0';
	while (i < len && (t[i] == ' ' || t[i] == '\t'))
		i++;
	r->enhanced_len = i;
}

static sc_status grow(sc_reply *r, size_t textlen)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		size_t *off, *len;

		off = realloc(r->off, cap * sizeof *off);
		if (!off)
			return SC_ERR_NOMEM;
		r->off = off;
		len = realloc(r->len, cap * sizeof *len);
		if (!len)
			return SC_ERR_NOMEM;
		r->len = len;
		r->cap = cap;
	}
	if (r->tlen + textlen + 1 > r->tcap) {
		size_t cap = r->tcap ? r->tcap : 256;
		char *t;

		while (cap < r->tlen + textlen + 1)
			cap *= 2;
		t = realloc(r->text, cap);
		if (!t)
			return SC_ERR_NOMEM;
		r->text = t;
		r->tcap = cap;
	}
	return SC_OK;
}

sc_status sc_reply_feed(sc_reply *r, const char *line, size_t len)
{
	size_t tlen;
	int code, last;

	SC_ENSURE_ARG(r);
	SC_ENSURE_ARG(line || !len);
	/* A finished reply must be reset before the next one is fed. */
	SC_ENSURE(!r->complete, SC_ERR_ARG);
	if (r->n >= r->max_lines)
		return SC_ERR_TOO_MANY;
	if (len > r->max_bytes - r->bytes)
		return SC_ERR_TOO_LONG;
	if (len < 3 || !(code = parse_code(line)))
		return SC_ERR_PROTOCOL;
	if (len == 3 || line[3] == ' ')
		last = 1;
	else if (line[3] == '-')
		last = 0;
	else
		return SC_ERR_PROTOCOL;
	/* RFC 5321 4.2.1: every line of a multi-line reply carries the same code. */
	if (r->n && code != r->code)
		return SC_ERR_PROTOCOL;
	if (memchr(line, '\0', len))
		return SC_ERR_PROTOCOL;
	tlen = len > 4 ? len - 4 : 0;
	SC_TRY(grow(r, tlen));
	r->code = code;
	r->off[r->n] = r->tlen;
	r->len[r->n] = tlen;
	if (tlen)
		memcpy(r->text + r->tlen, line + 4, tlen);
	r->text[r->tlen + tlen] = '\0';
	r->tlen += tlen + 1;
	r->n++;
	r->bytes += len;
	if (!last)
		return SC_AGAIN;
	r->complete = 1;
	parse_enhanced(r, r->text + r->off[r->n - 1], tlen);
	return SC_OK;
}

int sc_reply_code(const sc_reply *r)
{
	return r ? r->code : 0;
}

const char *sc_reply_enhanced(const sc_reply *r)
{
	return r ? r->enhanced : "";
}

size_t sc_reply_count(const sc_reply *r)
{
	return r ? r->n : 0;
}

const char *sc_reply_text(const sc_reply *r, size_t i, size_t *len)
{
	if (!r || i >= r->n)
		return NULL;
	if (len)
		*len = r->len[i];
	return r->text + r->off[i];
}

const char *sc_reply_message(const sc_reply *r)
{
	if (!r || !r->n)
		return "";
	return r->text + r->off[r->n - 1] + (r->complete ? r->enhanced_len : 0);
}
