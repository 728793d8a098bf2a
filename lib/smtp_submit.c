/*
 * smtp_submit.c - the submitting side of CERC for the blocking SMTP client
 * (smtp.c): AUTH PLAIN (RFC 4954, RFC 4616) and the certificate upload
 * "CERC addr" -> 250, "DATA" -> 354, PEM lines dot-stuffed, "." -> "250 2.0.0
 * <id> <state>" (docs/protocol.md, CERC). Owns nothing beyond a call: the upload
 * buffer and every copy of the password are freed (the password wiped first).
 * Runs in the CLI's process (smtpcert submit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpcert/smtpcert.h"
#include "smtp_int.h"

/* RFC 4616 section 2: authcid and passwd are at most 255 octets each. */
#define SUBMIT_CRED_MAX 255
/* "AUTH PLAIN " + base64 of NUL user NUL password + CRLF. */
#define SUBMIT_AUTH_LINE (16 + 4 * ((2 + 2 * SUBMIT_CRED_MAX + 2) / 3) + 2)

static sc_status broken(sc_smtp *s, sc_status st)
{
	if (st != SC_OK)
		s->broken = 1;
	return st;
}

/* "CODE ENH text" of @p r, cleaned of control characters, for messages. */
static void reply_text(const sc_reply *r, char *out, size_t size)
{
	char msg[200];

	smtp_clean(msg, sizeof msg, sc_reply_message(r));
	snprintf(out, size, "%d%s%s %s", sc_reply_code(r), sc_reply_enhanced(r)[0] ? " " : "",
		 sc_reply_enhanced(r), msg);
}

/* A failure reply to @p what: message, and the status its class means. */
static sc_status refused(sc_smtp *s, const char *what)
{
	char text[256];
	int code = sc_reply_code(s->reply);

	reply_text(s->reply, text, sizeof text);
	smtp_seterr(s, "%s: %s: %s", s->host, what, text);
	if (code / 100 == 4)
		return SC_ERR_TEMP;
	if (code / 100 == 5)
		return SC_ERR_REJECTED;
	return SC_ERR_PROTOCOL;
}

static sc_status auth_plain(sc_smtp *s, const char *user, const char *password)
{
	uint8_t msg[2 + 2 * SUBMIT_CRED_MAX];
	char line[SUBMIT_AUTH_LINE];
	size_t ulen = strlen(user), plen = strlen(password), n = 0;
	sc_status st;
	int len;

	/* RFC 4616 2: message = [authzid] NUL authcid NUL passwd; no authzid, so the
	 * server derives the identity from the user name alone. */
	msg[n++] = 0;
	memcpy(msg + n, user, ulen);
	n += ulen;
	msg[n++] = 0;
	memcpy(msg + n, password, plen);
	n += plen;
	/* RFC 4954 4: the initial response rides on the AUTH command, saving a
	 * round trip; written here, not through smtp_do_command(), so that no copy of
	 * the credentials outlives this frame. */
	memcpy(line, "AUTH PLAIN ", 11);
	st = sc_base64_encode(msg, n, line + 11, sizeof line - 11 - 2, NULL);
	explicit_bzero(msg, sizeof msg);
	if (st != SC_OK)
		return st;
	len = (int)strlen(line);
	memcpy(line + len, "\r\n", 2);
	st = smtp_write_all(s, line, (size_t)len + 2);
	explicit_bzero(line, sizeof line);
	if (st != SC_OK)
		return broken(s, st);
	st = smtp_read_reply(s, s->reply);
	if (st != SC_OK)
		return broken(s, st);
	if (sc_reply_code(s->reply) == 334) {
		/* PLAIN has no challenge; cancel (RFC 4954 4: "*") and give up. */
		st = smtp_do_command(s, "*", s->reply);
		if (st != SC_OK)
			return broken(s, st);
		smtp_seterr(s, "%s: AUTH PLAIN: unexpected challenge", s->host);
		return SC_ERR_PROTOCOL;
	}
	switch (sc_reply_code(s->reply)) {
	case 235:
		return SC_OK;
	case 504:
		refused(s, "AUTH PLAIN not supported");
		return SC_ERR_UNSUPPORTED;
	case 535:
		return refused(s, "authentication failed");
	default:
		return refused(s, "AUTH refused");
	}
}

sc_status sc_smtp_auth(sc_smtp *s, const char *user, const char *password, unsigned flags,
		       char *err, size_t errlen)
{
	sc_status st;

	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(user);
	SC_ENSURE_ARG(password);
	if (err && errlen)
		err[0] = '\0';
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	s->err = err;
	s->errlen = errlen;
	if (!user[0] || strlen(user) > SUBMIT_CRED_MAX || strlen(password) > SUBMIT_CRED_MAX) {
		smtp_seterr(s, "user name and password must be 1 to %d and 0 to %d octets",
			    SUBMIT_CRED_MAX, SUBMIT_CRED_MAX);
		st = SC_ERR_ARG;
	} else if (!s->tls && !(flags & SC_SMTP_AUTH_PLAINTEXT_OK)) {
		/* RFC 4954 4 / RFC 4616 4: PLAIN sends the password in clear. */
		smtp_seterr(s, "%s: refusing to send a password without TLS", s->host);
		st = SC_ERR_POLICY;
	} else if (!sc_smtp_has_ext(s, "AUTH")) {
		smtp_seterr(s, "%s: server does not offer AUTH%s", s->host,
			    s->tls ? "" : " (it may offer it only after STARTTLS)");
		st = SC_ERR_UNSUPPORTED;
	} else {
		st = auth_plain(s, user, password);
	}
	s->err = NULL;
	s->errlen = 0;
	return st;
}

/* ---- CERC upload -------------------------------------------------------------------- */

struct upload {
	char *buf;
	size_t len, cap;
};

/* One PEM line as a DATA line: CRLF, and a leading dot doubled (RFC 5321 4.5.2). */
static sc_status upload_line(void *arg, const char *line, size_t len)
{
	struct upload *u = arg;

	if (u->cap - u->len < len + 3)
		return SC_ERR_TOO_LONG;
	if (len && line[0] == '.')
		u->buf[u->len++] = '.';
	memcpy(u->buf + u->len, line, len);
	u->len += len;
	u->buf[u->len++] = '\r';
	u->buf[u->len++] = '\n';
	return SC_OK;
}

/* Every certificate of @p c as PEM, then the end-of-data line. */
static sc_status upload_build(const sc_cert *c, struct upload *u)
{
	size_t total = 0;

	for (size_t i = 0; i < sc_cert_count(c); i++) {
		const uint8_t *der;
		size_t len;

		SC_TRY(sc_cert_der(c, i, &der, &len));
		total += sc_pem_encoded_size(len, "CERTIFICATE");
	}
	/* Each encoded line of L+1 octets becomes at most L+3 (CR, stuffed dot). */
	u->cap = 2 * total + 16;
	u->len = 0;
	u->buf = malloc(u->cap);
	if (!u->buf)
		return SC_ERR_NOMEM;
	for (size_t i = 0; i < sc_cert_count(c); i++) {
		const uint8_t *der;
		size_t len;

		SC_TRY(sc_cert_der(c, i, &der, &len));
		SC_TRY(sc_pem_encode_lines(der, len, "CERTIFICATE", upload_line, u));
	}
	if (u->cap - u->len < 3)
		return SC_ERR_TOO_LONG;
	memcpy(u->buf + u->len, ".\r\n", 3);
	u->len += 3;
	return SC_OK;
}

/* "<id> <state> ..." after "250 2.0.0": the id is a bounded token of safe octets. */
static sc_status parse_result(sc_smtp *s, struct sc_cerc_result *res)
{
	const char *m = sc_reply_message(s->reply);
	size_t k = strcspn(m, " "), j;

	for (size_t i = 0; i < k; i++) {
		char ch = m[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
			k = 0;
	}
	if (k == 0 || k > SC_CERC_ID_MAX) {
		char text[256];

		reply_text(s->reply, text, sizeof text);
		smtp_seterr(s, "%s: CERC: no submission id in \"%s\"", s->host, text);
		return SC_ERR_PROTOCOL;
	}
	memcpy(res->id, m, k);
	res->id[k] = '\0';
	m += k;
	m += strspn(m, " ");
	j = strcspn(m, " ");
	if (j >= sizeof res->state)
		j = sizeof res->state - 1;
	memcpy(res->state, m, j);
	res->state[j] = '\0';
	smtp_clean(res->state, sizeof res->state, res->state);
	return SC_OK;
}

static sc_status cerc(sc_smtp *s, const struct sc_addr *addr, const sc_cert *c,
		      struct sc_cerc_result *res)
{
	char cmd[SC_ADDR_KEY_MAX + 16], a[SC_ADDR_KEY_MAX + 8];
	struct upload u = { 0 };
	sc_status st;

	if (!sc_smtp_has_ext(s, "CERC")) {
		smtp_seterr(s, "%s: server does not offer CERC (submissions are off, or "
			    "offered only after STARTTLS and AUTH)", s->host);
		return SC_ERR_UNSUPPORTED;
	}
	if (sc_addr_format(addr, a, sizeof a) != SC_OK)
		return SC_ERR_ARG;
	st = upload_build(c, &u);
	if (st != SC_OK)
		goto out;
	snprintf(cmd, sizeof cmd, "CERC %s", a);
	st = broken(s, smtp_do_command(s, cmd, s->reply));
	if (st != SC_OK)
		goto out;
	res->code = sc_reply_code(s->reply);
	if (res->code != 250) {
		st = refused(s, "CERC refused");
		goto out;
	}
	st = broken(s, smtp_do_command(s, "DATA", s->reply));
	if (st != SC_OK)
		goto out;
	res->code = sc_reply_code(s->reply);
	if (res->code != 354) {
		st = refused(s, "DATA refused");
		goto out;
	}
	st = broken(s, smtp_write_all(s, u.buf, u.len));
	if (st == SC_OK)
		st = broken(s, smtp_read_reply(s, s->reply));
	if (st != SC_OK)
		goto out;
	res->code = sc_reply_code(s->reply);
	if (res->code == 250) {
		st = parse_result(s, res);
	} else {
		st = refused(s, "submission refused");
		/* The upload was judged: say which way so the CLI can tell a bad
		 * certificate (RFC 3463 5.7.1 policy) or size (5.3.4) from the rest. */
		if (res->code == 552)
			st = SC_ERR_TOO_LONG;
		else if (res->code == 550 && !strncasecmp(sc_reply_message(s->reply),
							   "Invalid Certificate", 19))
			st = SC_ERR_POLICY;
	}
out:
	free(u.buf);
	return st;
}

sc_status sc_smtp_cerc(sc_smtp *s, const struct sc_addr *addr, const sc_cert *c,
		       struct sc_cerc_result *res, char *err, size_t errlen)
{
	sc_status st;

	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(addr);
	SC_ENSURE_ARG(c);
	SC_ENSURE_ARG(res);
	memset(res, 0, sizeof *res);
	if (err && errlen)
		err[0] = '\0';
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	s->err = err;
	s->errlen = errlen;
	st = cerc(s, addr, c, res);
	if (st != SC_OK) {
		res->id[0] = '\0';
		res->state[0] = '\0';
	}
	s->err = NULL;
	s->errlen = 0;
	return st;
}
