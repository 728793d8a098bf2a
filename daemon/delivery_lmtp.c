/*
 * delivery_lmtp.c - `delivery = lmtp:HOST:PORT` (RFC 2033), and the SMTP hand-off
 * of the daemon's own mail to the backend of a `proxy:HOST:PORT` deployment,
 * through the library's blocking client (sc_smtp_connect with opts.lmtp,
 * sc_smtp_mail/rcpt/data_fd). Worker threads of the daemon.
 *
 * One connection per message. Recipients whose copy is stored as received
 * share one transaction, and LMTP answers for each of them after the final "."
 * (RFC 2033 4.2), which is relayed into its delivery_rcpt; a recipient whose
 * copy is encrypted at rest gets a transaction of its own with its own copy
 * (staged in an unlinked temporary file). Nothing is ever reported delivered
 * that the server did not acknowledge: a backend that is down, slow (each step
 * is bounded by cfg->timeout_ms) or drops the connection makes every
 * recipient without a reply a 451 4.4.x, so the client keeps the message.
 *
 * The hop is plaintext: the backend is a local mail store or MTA the
 * administrator named, normally on loopback or a private network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery.h"
#include "delivery_int.h"

/* Bounds of a backend reply we keep (the text is cut to DELIVERY_TEXT_MAX). */
#define LMTP_REPLY_LINES 32
#define LMTP_REPLY_BYTES 8192

struct lmtp {
	const struct delivery_cfg *cfg;
	sc_smtp *s;
	int lmtp;
	const char *from;          /* reverse-path, "" = <> */
};

/* The reply as the recipient's result: code, enhanced status (RFC 3463, or the
 * class's X.0.0 when the server sent none) and its last line, printable ASCII
 * only, for the client; the whole answer for the log. */
static void lmtp_result(struct lmtp *l, struct delivery_rcpt *r, const sc_reply *rep)
{
	char enh[12], text[DELIVERY_TEXT_MAX], detail[DELIVERY_TEXT_MAX];
	const char *msg = sc_reply_message(rep);
	int code = sc_reply_code(rep);
	size_t o = 0;

	if (sc_reply_enhanced(rep)[0])
		snprintf(enh, sizeof enh, "%s", sc_reply_enhanced(rep));
	else
		snprintf(enh, sizeof enh, "%d.0.0", (code / 100) % 10);
	for (const char *p = msg ? msg : ""; *p && o + 1 < sizeof text; p++)
		text[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	text[o] = '\0';
	snprintf(detail, sizeof detail, "%.60s said: %d %s %.80s", l->cfg->spec, code, enh,
		 text);
	delivery_set(r, code, enh, text, detail);
}

/* Every listed recipient still without a result gets a temporary failure. */
static void lmtp_fail(struct delivery_msg *m, const size_t *idx, size_t n, const char *enh,
		      const char *text, const char *detail)
{
	for (size_t i = 0; i < n; i++)
		if (!m->rcpt[idx[i]].code)
			delivery_set(&m->rcpt[idx[i]], 451, enh, text, detail);
}

static sc_status lmtp_open(struct lmtp *l, char *err, size_t errlen)
{
	struct sc_smtp_opts o = { 0 };
	char host[256], port[8];

	if (delivery_hostport(l->cfg->spec, host, sizeof host, port, sizeof port) != SC_OK) {
		snprintf(err, errlen, "%.100s: expected HOST:PORT", l->cfg->spec);
		return SC_ERR_CONFIG;
	}
	o.helo = l->cfg->hostname[0] ? l->cfg->hostname : NULL;
	o.timeout_ms = l->cfg->timeout_ms > 0 ? l->cfg->timeout_ms : DELIVERY_TIMEOUT_DEFAULT_MS;
	o.tls = SC_SMTP_TLS_NEVER;
	o.lmtp = l->lmtp;
	return sc_smtp_connect(host, port, &o, &l->s, err, errlen);
}

/* @return non-zero when the envelope of this transaction is all ASCII. */
static int lmtp_ascii_envelope(const struct lmtp *l, const struct delivery_msg *m,
			       const size_t *idx, size_t n)
{
	for (const char *p = l->from; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return 0;
	for (size_t i = 0; i < n; i++)
		if (m->rcpt[idx[i]].addr.flags & SC_ADDR_IS_UTF8)
			return 0;
	return 1;
}

/*
 * ESMTP parameters of MAIL (RFC 6152, RFC 6531, RFC 1870) the server offers.
 * A store without SMTPUTF8 (Dovecot 2.3's LMTP) is the last hop, not a relay:
 * it files UTF-8 header fields as 8-bit data, so a message whose envelope is
 * ASCII goes without the parameter (as 8BITMIME); a non-ASCII address cannot be
 * expressed at all (RFC 6531 3.2): SC_ERR_UNSUPPORTED.
 */
static sc_status lmtp_params(struct lmtp *l, const struct delivery_msg *m, const size_t *idx,
			     size_t n, int body8, uint64_t size, char *buf, size_t bsize)
{
	int utf8 = m->smtputf8;
	size_t o = 0;

	buf[0] = '\0';
	if (utf8 && !sc_smtp_has_ext(l->s, "SMTPUTF8")) {
		if (!lmtp_ascii_envelope(l, m, idx, n))
			return SC_ERR_UNSUPPORTED;
		utf8 = 0;
		body8 = 1;
	}
	if (body8 && sc_smtp_has_ext(l->s, "8BITMIME"))
		o += (size_t)snprintf(buf + o, bsize - o, "BODY=8BITMIME ");
	if (utf8)
		o += (size_t)snprintf(buf + o, bsize - o, "SMTPUTF8 ");
	if (sc_smtp_has_ext(l->s, "SIZE"))
		o += (size_t)snprintf(buf + o, bsize - o, "SIZE=%llu ", (unsigned long long)size);
	if (o > 0 && o < bsize)
		buf[o - 1] = '\0';
	return SC_OK;
}

/* After DATA: each accepted recipient's own reply (LMTP), or the one reply
 * (SMTP); a reply that never came (replies[] still reset, or holding the 354)
 * leaves the recipient for lmtp_fail(). */
static void lmtp_data_results(struct lmtp *l, struct delivery_msg *m, const size_t *acc,
			      size_t k, sc_reply **rep, size_t nrep)
{
	for (size_t j = 0; j < k; j++) {
		const sc_reply *r = rep[nrep == 1 ? 0 : j];
		int c = sc_reply_code(r);

		if (c >= 200 && c < 600 && c / 100 != 3)
			lmtp_result(l, &m->rcpt[acc[j]], r);
	}
}

/*
 * One transaction for the recipients m->rcpt[idx[0..n-1]] with the content
 * @p fd (@p size octets). Every one of them gets a result.
 * @return SC_OK (the connection is usable for another transaction), or the
 *         status that ended it (network, SC_ERR_IO reading @p fd, SC_ERR_NOMEM):
 *         the caller then gives up the connection.
 */
static sc_status lmtp_tx(struct lmtp *l, struct delivery_msg *m, const size_t *idx, size_t n,
			 int fd, uint64_t size, int body8)
{
	char params[96], to[SC_ADDR_KEY_MAX + 8];
	sc_reply *reply = NULL, **rep = NULL;
	size_t *acc = NULL, k = 0, nrep;
	sc_status st;

	st = lmtp_params(l, m, idx, n, body8, size, params, sizeof params);
	if (st != SC_OK) {
		for (size_t i = 0; i < n; i++)
			delivery_set(&m->rcpt[idx[i]], 553, "5.6.7",
				     "Non-ASCII addresses not supported by the mail store",
				     "the backend does not offer SMTPUTF8");
		return SC_OK;
	}
	acc = calloc(n, sizeof *acc);
	if (!acc || sc_reply_new(LMTP_REPLY_LINES, LMTP_REPLY_BYTES, &reply) != SC_OK) {
		st = SC_ERR_NOMEM;
		goto fail;
	}
	st = sc_smtp_mail(l->s, l->from, params, reply);
	if (st == SC_ERR_TEMP || st == SC_ERR_REJECTED) {
		for (size_t i = 0; i < n; i++)
			lmtp_result(l, &m->rcpt[idx[i]], reply);
		st = SC_OK;
		goto out;
	}
	if (st != SC_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct delivery_rcpt *r = &m->rcpt[idx[i]];

		if (sc_addr_format(&r->addr, to, sizeof to) != SC_OK) {
			delivery_set(r, 550, "5.1.3", "Recipient address not usable",
				     "address too long to format");
			continue;
		}
		st = sc_smtp_rcpt(l->s, to, NULL, reply);
		if (st == SC_OK) {
			acc[k++] = idx[i];
			continue;
		}
		if (st != SC_ERR_TEMP && st != SC_ERR_REJECTED)
			goto fail;
		lmtp_result(l, r, reply);
	}
	st = SC_OK;
	if (k == 0) {
		/* end the open transaction (RFC 5321 4.1.1.5) for the next one */
		st = sc_smtp_command(l->s, "RSET", reply);
		goto out;
	}
	nrep = l->lmtp ? k : 1;
	rep = calloc(nrep, sizeof *rep);
	if (!rep) {
		st = SC_ERR_NOMEM;
		goto fail;
	}
	for (size_t j = 0; j < nrep; j++)
		if (sc_reply_new(LMTP_REPLY_LINES, LMTP_REPLY_BYTES, &rep[j]) != SC_OK) {
			st = SC_ERR_NOMEM;
			goto fail;
		}
	st = sc_smtp_data_fd(l->s, fd, size, rep, nrep);
	if (st == SC_ERR_TEMP || st == SC_ERR_REJECTED) {
		/* DATA itself refused: the one reply holds for every accepted recipient */
		for (size_t j = 0; j < k; j++)
			lmtp_result(l, &m->rcpt[acc[j]], rep[0]);
		st = SC_OK;
		goto out;
	}
	lmtp_data_results(l, m, acc, k, rep, nrep);
	if (st != SC_OK)
		goto fail;
	goto out;
fail:
	if (st == SC_ERR_IO)
		lmtp_fail(m, idx, n, "4.3.0", "Temporary local problem, try again later",
			  "cannot read the message to send it");
	else if (st == SC_ERR_NOMEM)
		lmtp_fail(m, idx, n, "4.3.0", "Temporary local problem, try again later",
			  "out of memory");
	else
		lmtp_fail(m, idx, n, "4.4.2", "Connection to the mail store lost, try again later",
			  sc_strerror(st));
out:
	if (rep)
		for (size_t j = 0; j < (l->lmtp ? k : 1); j++)
			sc_reply_free(rep[j]);
	free(rep);
	sc_reply_free(reply);
	free(acc);
	/* after a failure the transaction may be half open (MAIL sent, DATA
	 * cut short): the connection is not reused, so a later transaction can
	 * never meet a 503 that would read as a permanent refusal */
	return st;
}

/* The size of a staged copy. */
static sc_status lmtp_fd_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || st.st_size < 0)
		return SC_ERR_IO;
	*size = (uint64_t)st.st_size;
	return SC_OK;
}

/*
 * Recipient @p i's own encrypted copy in its own transaction.
 * @return SC_OK; SC_ERR_UNSUPPORTED (its key cannot be encrypted to: the
 *         caller stores it as received); a network status (connection broken).
 */
static sc_status lmtp_encrypted(struct lmtp *l, struct delivery_msg *m, size_t i)
{
	struct delivery_rcpt *r = &m->rcpt[i];
	char err[DELIVERY_TEXT_MAX] = "";
	uint64_t size;
	sc_status st;
	int fd = delivery_tmpfile(l->cfg);

	if (fd < 0) {
		snprintf(err, sizeof err, "staging the encrypted copy: %s", strerror(errno));
		delivery_set(r, 451, "4.3.0", "Temporary local problem, try again later", err);
		return SC_OK;
	}
	st = delivery_crypt_write(m, r->cert, fd, 0, err, sizeof err);
	if (st == SC_OK)
		st = lmtp_fd_size(fd, &size);
	if (st == SC_ERR_UNSUPPORTED) {
		close(fd);
		snprintf(r->detail, sizeof r->detail, "stored unencrypted: %.175s", err);
		return st;
	}
	if (st != SC_OK) {
		close(fd);
		delivery_set(r, 451, "4.3.0", "Temporary local problem, try again later", err);
		return SC_OK;
	}
	/* base64 inside: 7bit, but outer fields may be UTF-8 (SMTPUTF8) */
	st = lmtp_tx(l, m, &i, 1, fd, size, 0);
	close(fd);
	if (st == SC_OK && r->code / 100 == 2)
		r->encrypted = 1;
	return st;
}

sc_status delivery_lmtp_run(const struct delivery_cfg *cfg, struct delivery_msg *m,
			    const struct delivery_plan *plan)
{
	struct lmtp l = { cfg, NULL, 1, m->from };
	char err[DELIVERY_TEXT_MAX] = "", why[DELIVERY_TEXT_MAX];
	size_t *plain, np = 0;
	sc_status st;

	plain = calloc(m->nrcpt, sizeof *plain);
	if (!plain) {
		for (size_t i = 0; i < m->nrcpt; i++)
			if (!m->rcpt[i].code)
				delivery_set(&m->rcpt[i], 451, "4.3.0",
					     "Temporary local problem, try again later",
					     "out of memory");
		return SC_OK;
	}
	for (size_t i = 0; i < m->nrcpt; i++)
		if (!m->rcpt[i].code)
			plain[np++] = i;
	st = lmtp_open(&l, err, sizeof err);
	if (st != SC_OK) {
		snprintf(why, sizeof why, "%.80s: %.110s", cfg->spec, err[0] ? err : sc_strerror(st));
		lmtp_fail(m, plain, np, st == SC_ERR_CONFIG ? "4.3.5" : "4.4.1",
			  "Mail store unavailable, try again later", why);
		free(plain);
		return st == SC_ERR_CONFIG ? SC_ERR_CONFIG : SC_OK;
	}
	/* encrypted copies first, each alone; what cannot be encrypted joins the rest */
	np = 0;
	for (size_t i = 0; i < m->nrcpt && st == SC_OK; i++) {
		if (m->rcpt[i].code)
			continue;
		if (!delivery_crypt_wanted(cfg, plan, &m->rcpt[i])) {
			plain[np++] = i;
			continue;
		}
		st = lmtp_encrypted(&l, m, i);
		if (st == SC_ERR_UNSUPPORTED) {
			plain[np++] = i;
			st = SC_OK;
		}
	}
	if (st == SC_OK && np > 0)
		st = lmtp_tx(&l, m, plain, np, m->fd, m->size, m->body_8bit);
	for (size_t i = 0; i < m->nrcpt; i++)
		if (!m->rcpt[i].code)
			delivery_set(&m->rcpt[i], 451, "4.4.2",
				     "Connection to the mail store lost, try again later",
				     sc_strerror(st));
	sc_smtp_close(l.s);
	free(plain);
	return SC_OK;
}

sc_status delivery_smtp_one(const struct delivery_cfg *cfg, int lmtp, const char *from, int fd,
			    uint64_t size, struct delivery_rcpt *r)
{
	struct lmtp l = { cfg, NULL, lmtp, from };
	struct delivery_msg m = { .fd = fd, .size = size, .rcpt = r, .nrcpt = 1 };
	char err[DELIVERY_TEXT_MAX] = "", why[DELIVERY_TEXT_MAX];
	size_t zero = 0;
	sc_status st;

	m.smtputf8 = (r->addr.flags & SC_ADDR_IS_UTF8) != 0;
	st = lmtp_open(&l, err, sizeof err);
	if (st != SC_OK) {
		snprintf(why, sizeof why, "%.80s: %.110s", cfg->spec, err[0] ? err : sc_strerror(st));
		delivery_set(r, 451, st == SC_ERR_CONFIG ? "4.3.5" : "4.4.1",
			     "Mail store unavailable, try again later", why);
		return st == SC_ERR_CONFIG ? SC_ERR_CONFIG : SC_OK;
	}
	/* our notices are UTF-8 text: 8BITMIME when offered (RFC 6152) */
	st = lmtp_tx(&l, &m, &zero, 1, fd, size, 1);
	if (!r->code)
		delivery_set(r, 451, "4.4.2", "Connection to the mail store lost, try again later",
			     sc_strerror(st));
	sc_smtp_close(l.s);
	return SC_OK;
}
