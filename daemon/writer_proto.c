/*
 * writer_proto.c - encoding and decoding of the writer protocol (see
 * writer_proto.h). No I/O and no state: the network process encodes requests
 * and decodes replies, the writer process the other way round. Every decode is
 * bounds-checked against the datagram; nothing here allocates.
 */
#include <string.h>

#include "writer_proto.h"

/* An encoder writes into a caller buffer; the first overflow sticks. */
struct wp_enc {
	uint8_t *buf;
	size_t cap, len;
	int overflow;
};

struct wp_dec {
	const uint8_t *p;
	size_t left;
	sc_status err;
};

static void put_be(uint8_t *p, uint64_t v, int octets)
{
	for (int i = octets - 1; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t get_be(const uint8_t *p, int octets)
{
	uint64_t v = 0;

	for (int i = 0; i < octets; i++)
		v = v << 8 | p[i];
	return v;
}

static void enc_raw(struct wp_enc *e, const void *data, size_t n)
{
	if (e->overflow || n > e->cap - e->len) {
		e->overflow = 1;
		return;
	}
	if (n)
		memcpy(e->buf + e->len, data, n);
	e->len += n;
}

static void enc_int(struct wp_enc *e, uint64_t v, int octets)
{
	uint8_t b[8];

	put_be(b, v, octets);
	enc_raw(e, b, (size_t)octets);
}

static void enc_blob(struct wp_enc *e, const void *data, size_t n)
{
	if (n > WP_PAYLOAD_MAX) {
		e->overflow = 1;
		return;
	}
	enc_int(e, n, 4);
	enc_raw(e, data, n);
}

static void enc_str(struct wp_enc *e, const char *s)
{
	enc_blob(e, s ? s : "", s ? strlen(s) : 0);
}

static void enc_begin(struct wp_enc *e, uint8_t *buf, size_t cap, unsigned type, uint32_t seq)
{
	e->buf = buf;
	e->cap = cap < WP_MSG_MAX ? cap : WP_MSG_MAX;
	e->len = 0;
	e->overflow = cap < WP_HDR_LEN;
	enc_raw(e, WP_MAGIC, 4);
	enc_int(e, WP_VERSION, 2);
	enc_int(e, type, 2);
	enc_int(e, seq, 4);
	enc_int(e, 0, 4); /* length, filled by enc_end() */
}

static sc_status enc_end(struct wp_enc *e, size_t *len)
{
	if (e->overflow)
		return SC_ERR_TOO_LONG;
	put_be(e->buf + 12, e->len - WP_HDR_LEN, 4);
	*len = e->len;
	return SC_OK;
}

sc_status wp_header_decode(const uint8_t *buf, size_t n, struct wp_msg *m)
{
	uint64_t plen;

	SC_ENSURE_ARG(m);
	memset(m, 0, sizeof *m);
	if (!buf || n < WP_HDR_LEN || memcmp(buf, WP_MAGIC, 4) != 0)
		return SC_ERR_SYNTAX;
	m->version = (unsigned)get_be(buf + 4, 2);
	m->type = (unsigned)get_be(buf + 6, 2);
	m->seq = (uint32_t)get_be(buf + 8, 4);
	if (n > WP_MSG_MAX)
		return SC_ERR_TOO_LONG;
	plen = get_be(buf + 12, 4);
	/* the datagram says how long it is; the header must agree */
	if (plen != n - WP_HDR_LEN)
		return SC_ERR_SYNTAX;
	if (m->version != WP_VERSION)
		return SC_ERR_UNSUPPORTED;
	m->payload = buf + WP_HDR_LEN;
	m->len = (size_t)plen;
	return SC_OK;
}

static void dec_init(struct wp_dec *d, const struct wp_msg *m)
{
	d->p = m->payload;
	d->left = m->len;
	d->err = SC_OK;
}

static uint64_t dec_int(struct wp_dec *d, int octets)
{
	uint64_t v;

	if (d->err != SC_OK)
		return 0;
	if (d->left < (size_t)octets) {
		d->err = SC_ERR_SYNTAX;
		return 0;
	}
	v = get_be(d->p, octets);
	d->p += octets;
	d->left -= (size_t)octets;
	return v;
}

/* A blob of at most @p max octets; *@p out points into the message. */
static size_t dec_blob(struct wp_dec *d, const uint8_t **out, size_t max)
{
	uint64_t n = dec_int(d, 4);

	*out = NULL;
	if (d->err != SC_OK)
		return 0;
	if (n > d->left) {
		d->err = SC_ERR_SYNTAX; /* a length past the end */
		return 0;
	}
	if (n > max) {
		d->err = SC_ERR_TOO_LONG;
		return 0;
	}
	*out = d->p;
	d->p += n;
	d->left -= (size_t)n;
	return (size_t)n;
}

/* A string into @p out (@p size includes the NUL); no NUL inside. */
static void dec_str(struct wp_dec *d, char *out, size_t size)
{
	const uint8_t *p;
	size_t n = dec_blob(d, &p, size - 1);

	out[0] = '\0';
	if (d->err != SC_OK)
		return;
	if (n && memchr(p, '\0', n)) {
		d->err = SC_ERR_SYNTAX;
		return;
	}
	if (n)
		memcpy(out, p, n);
	out[n] = '\0';
}

static sc_status dec_end(struct wp_dec *d)
{
	if (d->err == SC_OK && d->left != 0)
		return SC_ERR_SYNTAX; /* trailing octets */
	return d->err;
}

sc_status wp_encode_submit(uint8_t *buf, size_t cap, uint32_t seq, const struct wp_submit *s,
			   size_t *len)
{
	struct wp_enc e;

	SC_ENSURE_ARG(buf && s && len && (s->chain || !s->chain_len));
	enc_begin(&e, buf, cap, WP_SUBMIT, seq);
	enc_blob(&e, s->chain, s->chain_len);
	enc_str(&e, s->address);
	enc_str(&e, s->auth_user);
	enc_str(&e, s->client);
	return enc_end(&e, len);
}

sc_status wp_decode_submit(const struct wp_msg *m, struct wp_submit *s)
{
	struct wp_dec d;

	SC_ENSURE_ARG(m && s);
	memset(s, 0, sizeof *s);
	if (m->type != WP_SUBMIT)
		return SC_ERR_PROTOCOL;
	dec_init(&d, m);
	s->chain_len = dec_blob(&d, &s->chain, WP_PAYLOAD_MAX);
	dec_str(&d, s->address, sizeof s->address);
	dec_str(&d, s->auth_user, sizeof s->auth_user);
	dec_str(&d, s->client, sizeof s->client);
	SC_TRY(dec_end(&d));
	if (!s->chain_len || !s->address[0])
		return SC_ERR_SYNTAX;
	return SC_OK;
}

sc_status wp_encode_store(uint8_t *buf, size_t cap, uint32_t seq, const char *id, size_t *len)
{
	struct wp_enc e;

	SC_ENSURE_ARG(buf && id && len);
	if (!sc_queue_id_valid(id))
		return SC_ERR_SYNTAX;
	enc_begin(&e, buf, cap, WP_STORE, seq);
	enc_str(&e, id);
	return enc_end(&e, len);
}

sc_status wp_decode_store(const struct wp_msg *m, char id[SC_QUEUE_ID_LEN + 1])
{
	struct wp_dec d;

	SC_ENSURE_ARG(m && id);
	id[0] = '\0';
	if (m->type != WP_STORE)
		return SC_ERR_PROTOCOL;
	dec_init(&d, m);
	dec_str(&d, id, SC_QUEUE_ID_LEN + 1);
	SC_TRY(dec_end(&d));
	/* the id becomes a file name in the writer: only the queue's own form */
	if (!sc_queue_id_valid(id)) {
		id[0] = '\0';
		return SC_ERR_SYNTAX;
	}
	return SC_OK;
}

sc_status wp_encode_sub(uint8_t *buf, size_t cap, uint32_t seq, const struct sc_submission *sub,
			size_t *len)
{
	struct wp_enc e;

	SC_ENSURE_ARG(buf && sub && len);
	enc_begin(&e, buf, cap, WP_R_SUB, seq);
	enc_str(&e, sub->id);
	enc_int(&e, (uint64_t)sub->state, 4);
	enc_str(&e, sub->address);
	enc_str(&e, sub->auth_user);
	enc_str(&e, sub->client);
	enc_int(&e, (uint64_t)sub->received, 8);
	enc_int(&e, (uint64_t)sub->decided, 8);
	enc_str(&e, sub->fingerprint);
	enc_str(&e, sub->subject);
	enc_str(&e, sub->issuer);
	enc_int(&e, (uint64_t)sub->not_before, 8);
	enc_int(&e, (uint64_t)sub->not_after, 8);
	enc_str(&e, sub->reason);
	return enc_end(&e, len);
}

sc_status wp_decode_sub(const struct wp_msg *m, struct sc_submission *sub)
{
	struct wp_dec d;
	uint64_t state;

	SC_ENSURE_ARG(m && sub);
	memset(sub, 0, sizeof *sub);
	if (m->type != WP_R_SUB)
		return SC_ERR_PROTOCOL;
	dec_init(&d, m);
	dec_str(&d, sub->id, sizeof sub->id);
	state = dec_int(&d, 4);
	dec_str(&d, sub->address, sizeof sub->address);
	dec_str(&d, sub->auth_user, sizeof sub->auth_user);
	dec_str(&d, sub->client, sizeof sub->client);
	sub->received = (int64_t)dec_int(&d, 8);
	sub->decided = (int64_t)dec_int(&d, 8);
	dec_str(&d, sub->fingerprint, sizeof sub->fingerprint);
	dec_str(&d, sub->subject, sizeof sub->subject);
	dec_str(&d, sub->issuer, sizeof sub->issuer);
	sub->not_before = (int64_t)dec_int(&d, 8);
	sub->not_after = (int64_t)dec_int(&d, 8);
	dec_str(&d, sub->reason, sizeof sub->reason);
	SC_TRY(dec_end(&d));
	if (!sc_queue_id_valid(sub->id) || state > SC_SUB_REJECTED)
		return SC_ERR_SYNTAX;
	sub->state = (enum sc_submission_state)state;
	return SC_OK;
}

sc_status wp_encode_err(uint8_t *buf, size_t cap, uint32_t seq, sc_status st, const char *msg,
			size_t *len)
{
	struct wp_enc e;
	char cut[WP_ERRMSG_MAX];

	SC_ENSURE_ARG(buf && len);
	/* a long library message is cut rather than lost */
	memset(cut, 0, sizeof cut);
	if (msg)
		memcpy(cut, msg, strnlen(msg, sizeof cut - 1));
	enc_begin(&e, buf, cap, WP_R_ERR, seq);
	enc_int(&e, (uint32_t)st, 4);
	enc_str(&e, cut);
	return enc_end(&e, len);
}

sc_status wp_decode_err(const struct wp_msg *m, sc_status *st, char *msg, size_t size)
{
	struct wp_dec d;
	char text[WP_ERRMSG_MAX];
	uint64_t v;

	SC_ENSURE_ARG(m && st && msg && size);
	msg[0] = '\0';
	*st = SC_ERR_INTERNAL;
	if (m->type != WP_R_ERR)
		return SC_ERR_PROTOCOL;
	dec_init(&d, m);
	v = dec_int(&d, 4);
	dec_str(&d, text, sizeof text);
	SC_TRY(dec_end(&d));
	/* an error reply must carry an error: SC_OK here would turn a failure
	 * into a 250 */
	if (v == SC_OK || v > 0xffff)
		return SC_ERR_SYNTAX;
	*st = (sc_status)v;
	memcpy(msg, text, strnlen(text, size - 1));
	msg[strnlen(text, size - 1)] = '\0';
	return SC_OK;
}
