/*
 * queue_entry.c - encoder and decoder of one review-queue entry file (format in
 * queue_int.h): a bounded "key: value" text header, an empty line, the PEM
 * certificates. The decoder is a parser of files another process wrote (or an
 * administrator edited, or a crash cut short): every length is bounded, every value
 * validated, and anything unexpected is refused rather than guessed at. Used by
 * lib/queue.c in the daemon and in `smtpcert admin`. No state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_int.h"
#include "utf8.h"

int sc_queue_id_valid(const char *id)
{
	size_t i;

	if (!id)
		return 0;
	for (i = 0; i < SC_QUEUE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return id[i] == '\0';
}

int sc_queue_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* ---- time: "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339 UTC), years 0000-9999 ---- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int fmt_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || !gmtime_r(&tt, &tm) || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900)
		return -1;
	/* Not strftime: glibc's %Y does not pad years before 1000 to four digits. */
	return snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) == 20
		       ? 0
		       : -1;
}

static int num(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_time(const char *s, size_t n, int64_t *out)
{
	static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, se;

	if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return -1;
	if (num(s, 4, &y) || num(s + 5, 2, &mo) || num(s + 8, 2, &d) || num(s + 11, 2, &h) ||
	    num(s + 14, 2, &mi) || num(s + 17, 2, &se))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

/* ---- values ---- */

static int needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '\\';
}

/* Append "key: escaped-value\n". @return 0, or -1 when it does not fit. */
static int put_field(char *buf, size_t size, size_t *off, const char *key, const char *val)
{
	size_t o = *off;
	int w = snprintf(buf + o, size - o, "%s: ", key);

	if (w < 0 || (size_t)w >= size - o)
		return -1;
	o += (size_t)w;
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if (size - o < 5)
			return -1;
		if (*p == '\\') {
			buf[o++] = '\\';
			buf[o++] = '\\';
		} else if (needs_escape(*p)) {
			snprintf(buf + o, 5, "\\x%02x", *p);
			o += 4;
		} else {
			buf[o++] = (char)*p;
		}
	}
	if (size - o < 2)
		return -1;
	buf[o++] = '\n';
	buf[o] = '\0';
	*off = o;
	return 0;
}

static int put_time(char *buf, size_t size, size_t *off, const char *key, int64_t t)
{
	char tb[32];

	return fmt_time(t, tb, sizeof tb) ? -1 : put_field(buf, size, off, key, tb);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Unescape @p n octets of @p v into @p out (NUL-terminated, @p size including it).
 * Only "\\" and "\xHH" for a control octet (never NUL) are escapes, as the encoder
 * writes them; the result must be valid UTF-8 (RFC 3629).
 */
static sc_status get_value(const char *v, size_t n, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (o + 1 >= size)
			return SC_ERR_TOO_LONG;
		if (c < 0x20 || c == 0x7f)
			return SC_ERR_SYNTAX;
		if (c == '\\') {
			int hi, lo;

			if (i + 1 < n && v[i + 1] == '\\') {
				out[o++] = '\\';
				i++;
				continue;
			}
			if (i + 3 >= n)
				return SC_ERR_SYNTAX;
			if (v[i + 1] != 'x' || (hi = hexval(v[i + 2])) < 0 ||
			    (lo = hexval(v[i + 3])) < 0)
				return SC_ERR_SYNTAX;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0 || !needs_escape(c) || c == '\\')
				return SC_ERR_SYNTAX; /* one encoding per value */
			i += 3;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return sc_utf8_valid(out, o) ? SC_OK : SC_ERR_ENCODING;
}

/*
 * Copy text a peer or an administrator gave (AUTH identity, client, reason) into a
 * field: bytes that are not UTF-8 become '?' and truncation never splits a
 * character, so the entry always encodes (a 250 must not depend on the bytes of a
 * user name). Control octets stay; the entry format escapes them.
 */
void sc_queue_copy_text(char *dst, size_t size, const char *src)
{
	size_t o = 0, len = src ? strlen(src) : 0;

	for (size_t i = 0; i < len;) {
		size_t n = sc_utf8_seq((const unsigned char *)src + i, len - i);

		if (n == 0) {
			if (o + 1 >= size)
				break;
			dst[o++] = '?';
			i++;
			continue;
		}
		if (o + n >= size)
			break;
		memcpy(dst + o, src + i, n);
		o += n;
		i += n;
	}
	dst[o] = '\0';
}

/* ---- encoder ---- */

static const char magic[] = "smtpcert-submission: 1\n";

/* NUL-terminated inside its array and valid UTF-8. */
static int utf8_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	return n < size && sc_utf8_valid(s, n);
}

#define TEXT_OK(f) utf8_ok((f), sizeof(f))

sc_status sc_queue_entry_header(const struct sc_submission *s, char *buf, size_t size,
				size_t *len)
{
	size_t off;
	int bad;

	SC_ENSURE_ARG(s && buf && len);
	SC_ENSURE(sc_queue_id_valid(s->id), SC_ERR_ARG);
	SC_ENSURE(strnlen(s->fingerprint, sizeof s->fingerprint) == 64 &&
			  sc_queue_lower_hex(s->fingerprint, 64),
		  SC_ERR_ARG);
	/* Every string field is bounded by its array; each must be text. */
	SC_ENSURE(TEXT_OK(s->address) && TEXT_OK(s->auth_user) && TEXT_OK(s->client) &&
			  TEXT_OK(s->subject) && TEXT_OK(s->issuer) && TEXT_OK(s->reason),
		  SC_ERR_ENCODING);
	if (size > SC_QUEUE_HEADER_MAX)
		size = SC_QUEUE_HEADER_MAX;
	SC_ENSURE(size > sizeof magic, SC_ERR_TOO_LONG);
	memcpy(buf, magic, sizeof magic - 1);
	off = sizeof magic - 1;
	bad = put_field(buf, size, &off, "id", s->id) ||
	      put_field(buf, size, &off, "address", s->address) ||
	      put_field(buf, size, &off, "auth-user", s->auth_user) ||
	      put_field(buf, size, &off, "client", s->client) ||
	      put_time(buf, size, &off, "received", s->received) ||
	      put_field(buf, size, &off, "fingerprint", s->fingerprint) ||
	      put_field(buf, size, &off, "subject", s->subject) ||
	      put_field(buf, size, &off, "issuer", s->issuer) ||
	      put_time(buf, size, &off, "not-before", s->not_before) ||
	      put_time(buf, size, &off, "not-after", s->not_after) ||
	      (s->decided && put_time(buf, size, &off, "decided", s->decided)) ||
	      (s->reason[0] && put_field(buf, size, &off, "reason", s->reason));
	if (bad || off + 1 >= size)
		return SC_ERR_TOO_LONG;
	buf[off++] = '\n';
	*len = off;
	return SC_OK;
}

sc_status sc_queue_entry_encode(const struct sc_submission *s, const sc_cert *c, char **out,
				size_t *len)
{
	char *buf;
	size_t size = SC_QUEUE_HEADER_MAX, off = 0, n;

	SC_ENSURE_ARG(s && c && out && len);
	n = sc_cert_count(c);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *der;
		size_t dlen;

		SC_TRY(sc_cert_der(c, i, &der, &dlen));
		size += sc_pem_encoded_size(dlen, "CERTIFICATE");
	}
	buf = malloc(size);
	if (!buf)
		return SC_ERR_NOMEM;
	for (size_t i = 0; i <= n; i++) {
		const uint8_t *der;
		size_t dlen, w;
		sc_status st;

		if (i == 0)
			st = sc_queue_entry_header(s, buf, size, &w);
		else if ((st = sc_cert_der(c, i - 1, &der, &dlen)) == SC_OK)
			st = sc_pem_encode(der, dlen, "CERTIFICATE", buf + off, size - off, &w);
		if (st != SC_OK) {
			free(buf);
			return st;
		}
		off += w;
	}
	*out = buf;
	*len = off;
	return SC_OK;
}

/* ---- decoder ---- */

enum field_id {
	F_ID, F_ADDRESS, F_AUTH, F_CLIENT, F_RECEIVED, F_FP, F_SUBJECT, F_ISSUER, F_NB, F_NA,
	F_DECIDED, F_REASON, F_COUNT
};

static const char *const field_names[F_COUNT] = {
	"id", "address", "auth-user", "client", "received", "fingerprint", "subject",
	"issuer", "not-before", "not-after", "decided", "reason"
};

/* F_DECIDED and F_REASON are optional; the rest are required. */
#define REQUIRED_MASK ((1u << F_DECIDED) - 1)

static sc_status set_time(const char *v, size_t n, int64_t *t)
{
	return parse_time(v, n, t) ? SC_ERR_SYNTAX : SC_OK;
}

static sc_status set_field(struct sc_submission *s, enum field_id f, const char *v, size_t n)
{
	char key[SC_ADDR_KEY_MAX];
	struct sc_addr a;

	switch (f) {
	case F_ID:
		SC_TRY(get_value(v, n, s->id, sizeof s->id));
		return sc_queue_id_valid(s->id) ? SC_OK : SC_ERR_SYNTAX;
	case F_ADDRESS:
		/* The key is used as a repository key later: it must be its own key. */
		SC_TRY(get_value(v, n, s->address, sizeof s->address));
		SC_ENSURE(sc_addr_parse(s->address, strlen(s->address), SC_ADDR_UTF8, &a, NULL) ==
				  SC_OK,
			  SC_ERR_SYNTAX);
		SC_ENSURE(sc_addr_key(&a, key, sizeof key, NULL) == SC_OK &&
				  !strcmp(key, s->address),
			  SC_ERR_SYNTAX);
		return SC_OK;
	case F_AUTH: return get_value(v, n, s->auth_user, sizeof s->auth_user);
	case F_CLIENT: return get_value(v, n, s->client, sizeof s->client);
	case F_RECEIVED: return set_time(v, n, &s->received);
	case F_FP:
		SC_TRY(get_value(v, n, s->fingerprint, sizeof s->fingerprint));
		return n == 64 && sc_queue_lower_hex(s->fingerprint, 64) ? SC_OK : SC_ERR_SYNTAX;
	case F_SUBJECT: return get_value(v, n, s->subject, sizeof s->subject);
	case F_ISSUER: return get_value(v, n, s->issuer, sizeof s->issuer);
	case F_NB: return set_time(v, n, &s->not_before);
	case F_NA: return set_time(v, n, &s->not_after);
	case F_DECIDED: return set_time(v, n, &s->decided);
	case F_REASON:
		SC_TRY(get_value(v, n, s->reason, sizeof s->reason));
		return s->reason[0] ? SC_OK : SC_ERR_SYNTAX;
	case F_COUNT: break;
	}
	return SC_ERR_INTERNAL;
}

/* One "key: value" line of @p n octets (no LF). */
static sc_status decode_line(const char *line, size_t n, struct sc_submission *s,
			     unsigned *seen)
{
	const char *colon = memchr(line, ':', n);
	size_t klen;

	SC_ENSURE(colon && (size_t)(colon - line) + 1 < n && colon[1] == ' ', SC_ERR_SYNTAX);
	klen = (size_t)(colon - line);
	for (int f = 0; f < F_COUNT; f++) {
		if (strlen(field_names[f]) != klen || memcmp(field_names[f], line, klen))
			continue;
		SC_ENSURE(!(*seen & (1u << f)), SC_ERR_SYNTAX); /* duplicate key */
		*seen |= 1u << f;
		return set_field(s, (enum field_id)f, colon + 2, n - klen - 2);
	}
	return SC_ERR_SYNTAX; /* unknown key */
}

sc_status sc_queue_entry_decode(const char *data, size_t len, int header_only,
				struct sc_submission *s, size_t *body_off)
{
	size_t off, lim = len < SC_QUEUE_HEADER_MAX ? len : SC_QUEUE_HEADER_MAX;
	unsigned seen = 0;

	SC_ENSURE_ARG(s && (data || len == 0));
	memset(s, 0, sizeof *s);
	s->state = SC_SUB_PENDING;
	SC_ENSURE(len >= sizeof magic - 1 && !memcmp(data, magic, sizeof magic - 1),
		  SC_ERR_SYNTAX);
	off = sizeof magic - 1;
	for (;;) {
		const char *nl;

		if (off >= lim)
			return len > SC_QUEUE_HEADER_MAX ? SC_ERR_TOO_LONG : SC_ERR_SYNTAX;
		nl = memchr(data + off, '\n', lim - off);
		if (!nl)
			return len > SC_QUEUE_HEADER_MAX ? SC_ERR_TOO_LONG : SC_ERR_SYNTAX;
		if (nl == data + off) { /* the empty line ends the header */
			off++;
			break;
		}
		SC_TRY(decode_line(data + off, (size_t)(nl - (data + off)), s, &seen));
		off = (size_t)(nl - data) + 1;
	}
	SC_ENSURE((seen & REQUIRED_MASK) == REQUIRED_MASK, SC_ERR_SYNTAX);
	SC_ENSURE(header_only || off < len, SC_ERR_SYNTAX); /* no certificate */
	if (body_off)
		*body_off = off;
	return SC_OK;
}

/* ---- body ---- */

struct der_acc {
	uint8_t *buf;
	size_t len;
};

static sc_status collect_block(void *arg, const char *label, const uint8_t *der, size_t n)
{
	struct der_acc *a = arg;

	/* Only what the encoder writes; a key or anything else means a forged file. */
	SC_ENSURE(!strcmp(label, "CERTIFICATE"), SC_ERR_SYNTAX);
	SC_ENSURE(n <= SC_CERT_INPUT_MAX - a->len, SC_ERR_TOO_LONG);
	memcpy(a->buf + a->len, der, n);
	a->len += n;
	return SC_OK;
}

sc_status sc_queue_entry_cert(const struct sc_submission *s, const char *body, size_t len,
			      sc_cert **out)
{
	struct der_acc a = { 0 };
	sc_cert *c = NULL;
	sc_status st;

	SC_ENSURE_ARG(s && out && (body || len == 0));
	/* The PEM text can exceed SC_CERT_INPUT_MAX while its DER does not: parse DER. */
	a.buf = malloc(SC_CERT_INPUT_MAX);
	if (!a.buf)
		return SC_ERR_NOMEM;
	st = sc_pem_decode(body, len, SC_CERT_INPUT_MAX, SC_CHAIN_MAX, collect_block, &a, NULL);
	if (st == SC_OK)
		st = sc_cert_parse(a.buf, a.len, &c);
	free(a.buf);
	if (st != SC_OK)
		return st;
	return sc_queue_cert_match(s, c, out);
}

sc_status sc_queue_cert_match(const struct sc_submission *s, sc_cert *c, sc_cert **out)
{
	uint8_t fp[32];
	char hex[65];

	sc_cert_fingerprint(c, fp);
	sc_hex(fp, 32, hex);
	if (strcmp(hex, s->fingerprint)) {
		sc_cert_free(c);
		return SC_ERR_MISMATCH;
	}
	*out = c;
	return SC_OK;
}
