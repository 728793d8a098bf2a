/*
 * smtp.c - blocking SMTP client for the CLI: connect (every address of the host,
 * in turn), banner, EHLO (HELO fallback; LHLO for LMTP), STARTTLS (RFC 3207) with server
 * authentication, commands one at a time, CERT/CERS certificate retrieval. Owns
 * the session (socket, TLS session, bounded input buffer, extension list); the
 * socket-level work is in smtp_io.c. Runs in the CLI's process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"
#include "smtp_int.h"

/* After an I/O or protocol failure the session is out of step: no more commands.
 * A refused argument never reached the wire, so it leaves the session usable. */
static sc_status fail(sc_smtp *s, sc_status st)
{
	if (st != SC_OK && st != SC_ERR_ARG)
		s->broken = 1;
	return st;
}

sc_status sc_smtp_command(sc_smtp *s, const char *line, sc_reply *reply)
{
	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(line);
	SC_ENSURE_ARG(reply);
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	return fail(s, smtp_do_command(s, line, reply));
}

/* "CODE ENH text" of the session's last reply, for messages. */
static void reply_text(const sc_reply *r, char *out, size_t size)
{
	char msg[200];

	smtp_clean(msg, sizeof msg, sc_reply_message(r));
	snprintf(out, size, "%d%s%s %s", sc_reply_code(r), sc_reply_enhanced(r)[0] ? " " : "",
		 sc_reply_enhanced(r), msg);
}

static sc_status rejected(sc_smtp *s, const char *what)
{
	char text[256];

	reply_text(s->reply, text, sizeof text);
	smtp_seterr(s, "%s: %s: %s", s->host, what, text);
	return sc_reply_code(s->reply) / 100 == 4 ? SC_ERR_TEMP : SC_ERR_REJECTED;
}

/* EHLO, falling back to HELO on 5xx (RFC 5321 3.2); records the keywords. */
static sc_status greet(sc_smtp *s, const char *helo)
{
	char cmd[SC_DOMAIN_MAX + 8];

	s->next = 0;
	/* RFC 2033 4.1: LMTP greets with LHLO, and has no HELO to fall back to. */
	snprintf(cmd, sizeof cmd, "%s %s", s->lmtp ? "LHLO" : "EHLO", helo);
	SC_TRY(smtp_do_command(s, cmd, s->reply));
	if (s->lmtp && sc_reply_code(s->reply) != 250)
		return rejected(s, "LHLO refused");
	if (sc_reply_code(s->reply) / 100 == 5) {
		snprintf(cmd, sizeof cmd, "HELO %s", helo);
		SC_TRY(smtp_do_command(s, cmd, s->reply));
		if (sc_reply_code(s->reply) != 250)
			return rejected(s, "HELO refused");
		return SC_OK;
	}
	if (sc_reply_code(s->reply) != 250)
		return rejected(s, "EHLO refused");
	/* RFC 5321 4.1.1.1: the first line greets, each further line is
	 * ehlo-keyword [params]. */
	for (size_t i = 1; i < sc_reply_count(s->reply) && s->next < SMTP_EXT_MAX; i++) {
		const char *t = sc_reply_text(s->reply, i, NULL);
		size_t k = strcspn(t, " ");

		if (k == 0 || k >= SMTP_EXT_LEN)
			continue;
		memcpy(s->ext[s->next], t, k);
		s->ext[s->next++][k] = '\0';
	}
	return SC_OK;
}

static sc_status start_tls(sc_smtp *s, const struct sc_smtp_opts *o, const char *host)
{
	char err[256] = "";
	sc_status st;

	SC_TRY(smtp_do_command(s, "STARTTLS", s->reply));
	if (sc_reply_code(s->reply) != 220) {
		if (o->tls == SC_SMTP_TLS_IF_OFFERED && sc_reply_code(s->reply) / 100 != 2)
			return SC_AGAIN; /* go on in plaintext */
		return rejected(s, "STARTTLS refused");
	}
	/* RFC 3207 4.2 / CVE-2011-0411: nothing may follow the 220 in plaintext; bytes
	 * already buffered would be taken as replies inside TLS (response injection). */
	if (sc_buf_len(s->in)) {
		smtp_seterr(s, "%s: server sent data after its STARTTLS reply "
			    "(response injection?)", s->host);
		return SC_ERR_PROTOCOL;
	}
	st = sc_tls_client_ctx_new(o->ca_file, o->insecure, &s->tctx, err, sizeof err);
	if (st != SC_OK) {
		smtp_seterr(s, "%s", err);
		return st;
	}
	st = sc_tls_new(s->tctx, s->fd, o->tls_name ? o->tls_name : host, &s->tls);
	if (st != SC_OK) {
		smtp_seterr(s, "%s: cannot start TLS", s->host);
		return st;
	}
	if (o->ntlsa && !o->insecure) {
		/* RFC 7672 2.2: DNSSEC-validated TLSA records authenticate the server. */
		st = sc_tls_set_dane(s->tls, o->tls_name ? o->tls_name : host, o->tlsa, o->ntlsa);
		if (st != SC_OK) {
			smtp_seterr(s, "%s: DANE: %s", s->host, sc_tls_error(s->tls));
			return st;
		}
	}
	return smtp_tls_handshake(s);
}

static sc_status session_start(sc_smtp *s, const char *host, const char *port,
			       const struct sc_smtp_opts *o)
{
	const char *helo = o->helo ? o->helo : "localhost";
	sc_status st;

	SC_TRY(smtp_connect_any(s, host, port));
	SC_TRY(smtp_read_reply(s, s->reply));
	/* RFC 5321 3.1: 554 instead of 220 means no service here. */
	if (sc_reply_code(s->reply) != 220)
		return rejected(s, "server refused the session");
	SC_TRY(greet(s, helo));
	if (o->tls == SC_SMTP_TLS_NEVER)
		return SC_OK;
	if (!sc_smtp_has_ext(s, "STARTTLS")) {
		if (o->tls == SC_SMTP_TLS_IF_OFFERED)
			return SC_OK;
		smtp_seterr(s, "%s: server does not offer STARTTLS", s->host);
		return SC_ERR_UNSUPPORTED;
	}
	st = start_tls(s, o, host);
	if (st == SC_AGAIN)
		return SC_OK;
	SC_TRY(st);
	/* RFC 3207 4.2: forget what the server said before TLS and ask again. */
	return greet(s, helo);
}

sc_status sc_smtp_connect(const char *host, const char *port, const struct sc_smtp_opts *opts,
			  sc_smtp **out, char *err, size_t errlen)
{
	static const struct sc_smtp_opts defaults = { 0 };
	const struct sc_smtp_opts *o = opts ? opts : &defaults;
	char name[SC_DOMAIN_MAX + 1];
	size_t hlen;
	sc_smtp *s;
	sc_status st;

	SC_ENSURE_ARG(host);
	SC_ENSURE_ARG(out);
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	/* "[::1]" is how an IPv6 literal is written next to a port; strip it. */
	hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	SC_ENSURE(hlen > 0 && hlen < sizeof name, SC_ERR_ARG);
	memcpy(name, host, hlen);
	name[hlen] = '\0';
	s = calloc(1, sizeof *s);
	if (!s)
		return SC_ERR_NOMEM;
	s->fd = -1;
	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : SMTP_DEFAULT_TIMEOUT;
	s->err = err;
	s->errlen = errlen;
	memcpy(s->host, name, hlen + 1);
	s->insecure = o->insecure;
	s->lmtp = o->lmtp;
	if ((o->ca_file && !(s->ca_file = strdup(o->ca_file))) ||
	    sc_buf_new(SMTP_INPUT_MAX, &s->in) != SC_OK ||
	    sc_reply_new(0, 0, &s->reply) != SC_OK) {
		s->broken = 1;
		sc_smtp_close(s);
		return SC_ERR_NOMEM;
	}
	st = session_start(s, name, port ? port : "25", o);
	if (st != SC_OK) {
		s->broken = 1;
		sc_smtp_close(s);
		return st;
	}
	/* Messages from later calls go to the buffers those calls pass. */
	s->err = NULL;
	s->errlen = 0;
	*out = s;
	return SC_OK;
}

void sc_smtp_close(sc_smtp *s)
{
	if (!s)
		return;
	if (!s->broken && s->fd >= 0) {
		/* Best effort: RFC 5321 4.1.1.10; do not wait long for the 221. */
		s->timeout_ms = SMTP_QUIT_TIMEOUT;
		s->err = NULL;
		if (smtp_do_command(s, "QUIT", s->reply) != SC_OK)
			s->broken = 1;
	}
	if (s->tls) {
		if (!s->broken)
			sc_tls_shutdown(s->tls);
		sc_tls_free(s->tls);
	}
	sc_tls_ctx_unref(s->tctx);
	if (s->fd >= 0)
		close(s->fd);
	sc_buf_free(s->in);
	sc_reply_free(s->reply);
	free(s->ca_file);
	free(s);
}

int sc_smtp_has_ext(const sc_smtp *s, const char *keyword)
{
	if (!s || !keyword)
		return 0;
	for (size_t i = 0; i < s->next; i++)
		if (!strcasecmp(s->ext[i], keyword))
			return 1;
	return 0;
}

int sc_smtp_is_tls(const sc_smtp *s)
{
	return s && s->tls;
}

const char *sc_smtp_tls_version(const sc_smtp *s)
{
	return s && s->tls ? sc_tls_version(s->tls) : NULL;
}

/* Join the certificate lines of a 250 reply (all but the status line) with LF. */
static sc_status join_lines(const sc_reply *r, char **out, size_t *outlen)
{
	size_t n = sc_reply_count(r), total = 0, len;
	char *buf, *p;

	/* Lenient: a last line that is itself the PEM END line belongs to the PEM. */
	if (!strncmp(sc_reply_text(r, n - 1, NULL), "-----END ", 9))
		n++;
	for (size_t i = 0; i + 1 < n; i++) {
		sc_reply_text(r, i, &len);
		total += len + 1;
	}
	buf = p = malloc(total + 1);
	if (!buf)
		return SC_ERR_NOMEM;
	for (size_t i = 0; i + 1 < n; i++) {
		const char *t = sc_reply_text(r, i, &len);

		memcpy(p, t, len);
		p += len;
		*p++ = '\n';
	}
	*p = '\0';
	*out = buf;
	*outlen = total;
	return SC_OK;
}

static sc_status fetch(sc_smtp *s, const struct sc_addr *addr, int chain, sc_cert **out,
		       int *code)
{
	const char *verb = chain ? "CERS" : "CERT";
	char cmd[SC_ADDR_KEY_MAX + 16], a[SC_ADDR_KEY_MAX + 8], text[256], *pem;
	size_t len;
	sc_status st;

	if (!sc_smtp_has_ext(s, verb)) {
		smtp_seterr(s, "%s: server does not offer %s", s->host, verb);
		return SC_ERR_UNSUPPORTED;
	}
	if (sc_addr_format(addr, a, sizeof a) != SC_OK)
		return SC_ERR_ARG;
	/* The proposal's examples send the bare address; brackets are optional. */
	snprintf(cmd, sizeof cmd, "%s %s", verb, a);
	st = smtp_do_command(s, cmd, s->reply);
	if (st != SC_OK)
		return fail(s, st);
	*code = sc_reply_code(s->reply);
	reply_text(s->reply, text, sizeof text);
	/* 550 is "no such certificate" unless the enhanced code says policy
	 * (RFC 3463 X.7.X, e.g. 5.7.1 for a domain not served here). */
	if (*code == 550 && strncmp(sc_reply_enhanced(s->reply), "5.7.", 4)) {
		smtp_seterr(s, "%s: %s", s->host, text);
		return SC_ERR_NOT_FOUND;
	}
	if (*code / 100 == 4) {
		smtp_seterr(s, "%s: %s", s->host, text);
		return SC_ERR_TEMP;
	}
	if (*code / 100 == 5) {
		smtp_seterr(s, "%s: %s", s->host, text);
		return SC_ERR_REJECTED;
	}
	if (*code != 250) {
		smtp_seterr(s, "%s: unexpected reply to %s: %s", s->host, verb, text);
		return SC_ERR_PROTOCOL;
	}
	if (sc_reply_count(s->reply) >= 2) {
		const char *first = sc_reply_text(s->reply, 0, NULL);

		/* cert_url mode (INTERFACE.md): the server points at the certificate;
		 * fetch it with the trust settings this session was opened with. */
		if (!strncasecmp(first, "https://", 8) || !strncasecmp(first, "http://", 7))
			return sc_http_fetch_cert(first, s->ca_file, s->insecure, s->timeout_ms,
						  out, s->err, s->errlen);
	}
	SC_TRY(join_lines(s->reply, &pem, &len));
	st = len ? sc_cert_parse(pem, len, out) : SC_ERR_NOT_FOUND;
	free(pem);
	if (st == SC_ERR_NOMEM)
		return st;
	if (st != SC_OK) {
		smtp_seterr(s, "%s: 250 reply without a usable certificate (%s)", s->host,
		       sc_strerror(st));
		return SC_ERR_PROTOCOL;
	}
	return SC_OK;
}

sc_status sc_smtp_fetch_cert(sc_smtp *s, const struct sc_addr *addr, int chain, sc_cert **out,
			     int *code, char *err, size_t errlen)
{
	int dummy;
	sc_status st;

	SC_ENSURE_ARG(s);
	SC_ENSURE_ARG(addr);
	SC_ENSURE_ARG(out);
	*out = NULL;
	if (!code)
		code = &dummy;
	*code = 0;
	if (err && errlen)
		err[0] = '\0';
	SC_ENSURE(!s->broken, SC_ERR_NETWORK);
	s->err = err;
	s->errlen = errlen;
	st = fetch(s, addr, chain, out, code);
	s->err = NULL;
	s->errlen = 0;
	return st;
}
