/*
 * send_smtp.c - `smtpcert send`: hand the prepared message to a mail server.
 * With a submission server (--submit or `submit` in the config; RFC 6409, port
 * 587 by default): STARTTLS required and verified, AUTH PLAIN when `submit_user`
 * is configured, one transaction for every recipient. Without one: the MX hosts
 * of each recipient domain in preference order (RFC 5321 5.1; sc_mx_resolve(),
 * the DNSSEC-aware resolver of the lookup), each of their addresses in turn,
 * one transaction per domain, STARTTLS whenever offered (opportunistic, RFC 7435: MX host
 * certificates are rarely verifiable; the content is what S/MIME protects).
 *
 * A transaction is all or nothing: if any RCPT is refused, RSET and nothing is
 * sent, so running the same command again never delivers twice. Each
 * recipient's outcome (exit code and reason) is recorded for cmd_send.c to
 * report. Runs in the user's process.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "send.h"

#define SCAN_CHUNK (64 * 1024)
/* RFC 4616 2: at most 255 octets, plus line end and NUL. */
#define SEND_PASSWORD_MAX 258

/* Indexes of the recipients in one transaction, and the copy they get. */
struct batch {
	size_t *idx;
	size_t n;
	int fd;
	uint64_t size;
};

static void set_all(struct send_ctx *c, const struct batch *b, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_all(struct send_ctx *c, const struct batch *b, int rc, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < b->n; i++) {
		struct send_rcpt *r = &c->rcpt[b->idx[i]];

		r->rc = rc;
		snprintf(r->why, sizeof r->why, "%s", why);
	}
}

/* "550 5.1.1 text" of a reply, printable. */
static void reply_str(const sc_reply *r, char *out, size_t size)
{
	char msg[300];
	size_t i = 0;

	for (const char *p = sc_reply_message(r); *p && i + 1 < sizeof msg; p++)
		msg[i++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	msg[i] = '\0';
	snprintf(out, size, "%d%s%s %s", sc_reply_code(r), sc_reply_enhanced(r)[0] ? " " : "",
		 sc_reply_enhanced(r), msg);
}

/* The exit code a failure reply means for a recipient (sysexits.h). */
static int reply_exit(const sc_reply *r)
{
	const char *enh = sc_reply_enhanced(r);

	if (sc_reply_code(r) / 100 == 4)
		return EX_TEMPFAIL;
	/* RFC 3463 5.1.1 bad destination mailbox, 5.1.2 bad system, 5.1.3 syntax,
	 * 5.1.6 moved, 5.1.10 null MX: the address itself is the problem. */
	if (!strncmp(enh, "5.1.", 4) || (!enh[0] && sc_reply_code(r) == 550))
		return EX_NOUSER;
	return EX_UNAVAILABLE;
}

/* What the server will see: whether any octet has the high bit (8BITMIME), and
 * the size on the wire (RFC 1870 SIZE counts the CRLF line ends and the
 * stuffed dots that sc_smtp_data_fd() adds to a file with LF line ends). */
static void scan_message(int fd, uint64_t size, int *eightbit, uint64_t *wire)
{
	unsigned char *buf = malloc(SCAN_CHUNK), prev = '\n';
	uint64_t off = 0;

	*eightbit = 0;
	*wire = size;
	if (!buf) {
		*eightbit = 1; /* claim 8-bit: harmless where offered */
		return;
	}
	while (off < size) {
		size_t want = size - off > SCAN_CHUNK ? SCAN_CHUNK : (size_t)(size - off);
		ssize_t r = pread(fd, buf, want, (off_t)off);

		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			unsigned char ch = buf[i];

			*eightbit |= ch >= 0x80;
			if (ch == '\n' && prev != '\r')
				(*wire)++;
			else if (ch == '.' && prev == '\n')
				(*wire)++;
			prev = ch;
		}
		off += (uint64_t)r;
	}
	free(buf);
}

/* ESMTP parameters of MAIL FROM, or -1 when the server cannot take the
 * message (SMTPUTF8 needed, not offered: RFC 6531 3.4). */
static int mail_params(struct send_ctx *c, sc_smtp *s, const struct batch *b, int eightbit,
		       uint64_t wire, char *out, size_t size)
{
	int utf8 = 0;
	size_t n = 0;

	out[0] = '\0';
	for (const char *p = c->env_from; *p; p++)
		utf8 |= (unsigned char)*p >= 0x80;
	for (size_t i = 0; i < b->n; i++)
		utf8 |= !!(c->rcpt[b->idx[i]].addr.flags & SC_ADDR_IS_UTF8);
	if (utf8 && !sc_smtp_has_ext(s, "SMTPUTF8"))
		return -1;
	/* RFC 1870: the server may refuse early instead of after the upload. */
	if (sc_smtp_has_ext(s, "SIZE"))
		n += (size_t)snprintf(out + n, size - n, "SIZE=%llu", (unsigned long long)wire);
	/* RFC 6152: declare 8-bit content where the server says it takes it. */
	if (eightbit && sc_smtp_has_ext(s, "8BITMIME") && n < size)
		n += (size_t)snprintf(out + n, size - n, "%sBODY=8BITMIME", n ? " " : "");
	if (utf8 && n < size)
		snprintf(out + n, size - n, "%sSMTPUTF8", n ? " " : "");
	return 0;
}

/* One MAIL/RCPT.../DATA on @p s. *@p retry is set when another MX host may do
 * better (nothing was delivered and the failure was temporary). */
static void transact(struct send_ctx *c, sc_smtp *s, const char *host, const struct batch *b,
		     int *retry)
{
	char params[128], text[400];
	sc_reply *r = NULL;
	int refused = 0, eightbit;
	uint64_t wire;
	sc_status st;

	*retry = 0;
	if (sc_reply_new(0, 0, &r) != SC_OK) {
		set_all(c, b, EX_OSERR, "out of memory");
		return;
	}
	scan_message(b->fd, b->size, &eightbit, &wire);
	if (mail_params(c, s, b, eightbit, wire, params, sizeof params) != 0) {
		set_all(c, b, EX_UNAVAILABLE, "%s does not offer SMTPUTF8, needed for a "
			"non-ASCII address (RFC 6531)", host);
		goto out;
	}
	st = sc_smtp_mail(s, c->env_from, params, r);
	if (st == SC_ERR_ARG) {
		set_all(c, b, EX_DATAERR, "sender <%s> cannot be written as an SMTP path",
			c->env_from);
		goto out;
	}
	if (st != SC_OK) {
		if (st == SC_ERR_TEMP || st == SC_ERR_REJECTED || st == SC_ERR_PROTOCOL) {
			reply_str(r, text, sizeof text);
			set_all(c, b, st == SC_ERR_TEMP ? EX_TEMPFAIL : EX_UNAVAILABLE,
				"sender <%s> refused by %s: %s", c->env_from, host, text);
		} else {
			set_all(c, b, EX_TEMPFAIL, "%s: MAIL FROM failed: %s", host, sc_strerror(st));
		}
		*retry = st != SC_ERR_REJECTED && st != SC_ERR_PROTOCOL;
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct send_rcpt *rc = &c->rcpt[b->idx[i]];

		st = sc_smtp_rcpt(s, rc->text, NULL, r);
		if (st == SC_OK)
			continue;
		if (st == SC_ERR_ARG) {
			/* nothing was sent: an address SMTP cannot carry */
			rc->rc = EX_DATAERR;
			snprintf(rc->why, sizeof rc->why, "cannot be written as an SMTP path");
			refused = 1;
			continue;
		}
		if (st != SC_ERR_TEMP && st != SC_ERR_REJECTED && st != SC_ERR_PROTOCOL) {
			set_all(c, b, EX_TEMPFAIL, "%s: connection failed at RCPT: %s", host,
				sc_strerror(st));
			*retry = 1;
			goto out;
		}
		reply_str(r, text, sizeof text);
		rc->rc = st == SC_ERR_PROTOCOL ? EX_PROTOCOL : reply_exit(r);
		snprintf(rc->why, sizeof rc->why, "refused by %s: %s", host, text);
		refused = 1;
	}
	if (refused) {
		/* All or nothing: the others are not sent either (RFC 5321 4.1.1.5). */
		if (sc_smtp_command(s, "RSET", r) != SC_OK) {
			/* the connection goes away anyway; nothing was sent */
		}
		for (size_t i = 0; i < b->n; i++) {
			struct send_rcpt *rc = &c->rcpt[b->idx[i]];

			if (rc->rc == SEND_PENDING)
				snprintf(rc->why, sizeof rc->why, "not sent, because another "
					 "recipient was refused (nothing was sent)");
		}
		goto out;
	}
	st = sc_smtp_data_fd(s, b->fd, b->size, &r, 1);
	if (st == SC_OK && sc_reply_code(r) / 100 == 2) {
		set_all(c, b, EX_OK, "sent via %s%s", host, sc_smtp_is_tls(s) ? " (TLS)" : "");
	} else if (st == SC_OK || st == SC_ERR_TEMP || st == SC_ERR_REJECTED ||
		   st == SC_ERR_PROTOCOL) {
		reply_str(r, text, sizeof text);
		set_all(c, b, sc_reply_code(r) / 100 == 4 ? EX_TEMPFAIL : EX_UNAVAILABLE,
			"message refused by %s: %s", host, text);
		*retry = st == SC_ERR_TEMP;
	} else if (st == SC_ERR_IO) {
		set_all(c, b, EX_IOERR, "reading the temporary file failed: nothing was sent");
	} else {
		/* RFC 5321 4.1.1.4 / RFC 1047: after a cut during or right after the
		 * data the message may or may not have been delivered. */
		set_all(c, b, EX_TEMPFAIL, "%s: connection failed during DATA (%s): the "
			"message may not have been delivered", host, sc_strerror(st));
	}
out:
	sc_reply_free(r);
}

static int connect_exit(sc_status st)
{
	switch (st) {
	case SC_ERR_TEMP:
	case SC_ERR_NETWORK:
	case SC_ERR_TIMEOUT:
		return EX_TEMPFAIL;
	case SC_ERR_REJECTED:
		return EX_UNAVAILABLE;
	default:
		/* STARTTLS not offered, certificate not verified: a retry will not help */
		return EX_UNAVAILABLE;
	}
}

static void smtp_opts(const struct send_ctx *c, struct sc_smtp_opts *so, char *helo,
		      size_t hsize)
{
	memset(so, 0, sizeof *so);
	send_hostname(helo, hsize);
	so->helo = helo;
	so->timeout_ms = c->uc.timeout > 0 ? c->uc.timeout * 1000 : 0;
	so->ca_file = c->o.ca_file ? c->o.ca_file : c->uc.ca_file;
	so->insecure = c->o.insecure;
}

/* ---- the submission server --------------------------------------------------------- */

/* "host", "host:port", "[v6]", "[v6]:port": was a port given? */
static int has_port(const char *s)
{
	const char *b = s[0] == '[' ? strchr(s, ']') : NULL;

	if (s[0] == '[')
		return b && b[1] == ':';
	return strchr(s, ':') && strchr(s, ':') == strrchr(s, ':');
}

static int submit_auth(struct send_ctx *c, sc_smtp *s, const struct batch *b, const char *host)
{
	char password[SEND_PASSWORD_MAX], err[512] = "";
	sc_status st;

	if (!c->uc.submit_user)
		return EX_OK;
	if (!c->uc.submit_password_file) {
		set_all(c, b, EX_CONFIG, "submit_user is set but submit_password_file is not "
			"(%s)", c->uc.user_path[0] ? c->uc.user_path : "no config file");
		return EX_CONFIG;
	}
	st = userconf_read_secret(c->uc.submit_password_file, password, sizeof password, err,
				  sizeof err);
	if (st == SC_OK)
		st = sc_smtp_auth(s, c->uc.submit_user, password, 0, err, sizeof err);
	explicit_bzero(password, sizeof password);
	if (st == SC_OK)
		return EX_OK;
	set_all(c, b, st == SC_ERR_TEMP ? EX_TEMPFAIL : st == SC_ERR_REJECTED ? EX_NOPERM
						       : EX_UNAVAILABLE,
		"authentication as %s at %s failed: %s", c->uc.submit_user, host,
		err[0] ? err : sc_strerror(st));
	return EX_NOPERM;
}

static void deliver_submit(struct send_ctx *c, const char *server, const struct batch *b)
{
	char host[SC_DOMAIN_MAX + 1], port[8], helo[SC_DOMAIN_MAX + 1], err[512] = "";
	struct sc_smtp_opts so;
	sc_smtp *s = NULL;
	sc_status st;
	int retry;

	if (cli_split_server(server, host, sizeof host, port, sizeof port) != 0) {
		set_all(c, b, EX_CONFIG, "submission server '%s': expected HOST[:PORT]", server);
		return;
	}
	if (!has_port(server))
		snprintf(port, sizeof port, "587"); /* RFC 6409 3.1 */
	smtp_opts(c, &so, helo, sizeof helo);
	/* RFC 8314 / RFC 3207: the submission server gets a password and the
	 * message; TLS is required and the server verified (unless --insecure). */
	so.tls = SC_SMTP_TLS_REQUIRE;
	if (c->o.verbose)
		fprintf(stderr, "smtpcert: send: submitting to %s:%s\n", host, port);
	if (so.insecure)
		cli_err(SEND_VERB, "warning: --insecure: the submission server %s is not "
			"authenticated, yet it gets the message%s", host,
			c->uc.submit_user ? " and your password" : "");
	st = sc_smtp_connect(host, port, &so, &s, err, sizeof err);
	if (st != SC_OK) {
		set_all(c, b, connect_exit(st), "submission server %s:%s: %s", host, port,
			err[0] ? err : sc_strerror(st));
		return;
	}
	if (submit_auth(c, s, b, host) == EX_OK)
		transact(c, s, host, b, &retry);
	sc_smtp_close(s);
}

/* ---- directly to the MX hosts ------------------------------------------------------- */

static void deliver_domain(struct send_ctx *c, const char *domain, const struct batch *b)
{
	struct sc_mx_host *hosts = calloc(SC_MX_MAX, sizeof *hosts);
	char helo[SC_DOMAIN_MAX + 1], err[512] = "";
	const char *port = c->o.mx_port ? c->o.mx_port : "25";
	const char *resolver = c->o.resolver ? c->o.resolver : c->uc.resolver;
	const char *anchor = c->o.dnssec_anchor ? c->o.dnssec_anchor : c->uc.dnssec_anchor;
	struct sc_smtp_opts so;
	size_t nhosts = 0;
	sc_status st;

	if (!hosts) {
		set_all(c, b, EX_OSERR, "out of memory");
		return;
	}
	smtp_opts(c, &so, helo, sizeof helo);
	/* The resolver that found the certificates finds the mail exchangers:
	 * `resolver` and `dnssec_anchor` apply, a bogus answer is refused. */
	st = sc_mx_resolve(domain, resolver, anchor, so.timeout_ms, hosts, SC_MX_MAX, &nhosts,
			   err, sizeof err);
	if (st != SC_OK) {
		set_all(c, b, st == SC_ERR_NOT_FOUND ? EX_NOHOST
			: sc_status_category(st) == SC_CAT_TEMP ? EX_TEMPFAIL : EX_UNAVAILABLE,
			"%s", err[0] ? err : sc_strerror(st));
		free(hosts);
		return;
	}
	so.tls = SC_SMTP_TLS_IF_OFFERED;
	so.insecure = 1;
	for (size_t h = 0; h < nhosts; h++) {
		so.tls_name = hosts[h].name;
		for (size_t a = 0; a < hosts[h].naddrs; a++) {
			sc_smtp *s = NULL;
			int retry = 0;

			if (c->o.verbose)
				fprintf(stderr, "smtpcert: send: %s: trying %s[%s]:%s\n", domain,
					hosts[h].name, hosts[h].addrs[a], port);
			err[0] = '\0';
			st = sc_smtp_connect(hosts[h].addrs[a], port, &so, &s, err, sizeof err);
			if (st != SC_OK) {
				set_all(c, b, connect_exit(st), "%s: %s", hosts[h].name,
					err[0] ? err : sc_strerror(st));
				continue;
			}
			transact(c, s, hosts[h].name, b, &retry);
			sc_smtp_close(s);
			if (!retry) {
				free(hosts);
				return;
			}
		}
	}
	free(hosts);
}

/* Deliver one copy to the recipients @p idx[0..n) (all pending). */
void send_deliver_copy(struct send_ctx *c, int fd, uint64_t size, const size_t *idx, size_t n)
{
	const char *server = c->o.submit ? c->o.submit : c->uc.submit;
	size_t *sub = calloc(n ? n : 1, sizeof *sub);
	unsigned char *grouped = calloc(n ? n : 1, 1);
	struct batch b = { sub, 0, fd, size };

	if (!sub || !grouped) {
		for (size_t i = 0; i < n; i++) {
			c->rcpt[idx[i]].rc = EX_OSERR;
			snprintf(c->rcpt[idx[i]].why, sizeof c->rcpt[idx[i]].why, "out of memory");
		}
		free(sub);
		free(grouped);
		return;
	}
	if (server && server[0]) {
		memcpy(sub, idx, n * sizeof *idx);
		b.n = n;
		if (n)
			deliver_submit(c, server, &b);
	} else {
		/* One transaction per recipient domain (RFC 5321 5.1: each domain has
		 * its own mail exchangers). */
		for (size_t i = 0; i < n; i++) {
			const char *d = c->rcpt[idx[i]].addr.domain;

			if (grouped[i])
				continue;
			b.n = 0;
			for (size_t j = i; j < n; j++)
				if (!grouped[j] && sc_domain_equal(c->rcpt[idx[j]].addr.domain, d)) {
					grouped[j] = 1;
					sub[b.n++] = idx[j];
				}
			deliver_domain(c, d, &b);
		}
	}
	free(sub);
	free(grouped);
}

int send_deliver(struct send_ctx *c)
{
	size_t *idx = calloc(c->nrcpt ? c->nrcpt : 1, sizeof *idx), n = 0;

	if (!idx) {
		cli_err(SEND_VERB, "out of memory");
		return EX_OSERR;
	}
	/* Hidden recipients of an encrypted message get copies of their own
	 * (send_crypt.c); everyone else gets c->fd. */
	for (size_t i = 0; i < c->nrcpt; i++)
		if (c->rcpt[i].rc == SEND_PENDING && !(c->encrypted && c->rcpt[i].hidden))
			idx[n++] = i;
	if (n)
		send_deliver_copy(c, c->fd, c->size, idx, n);
	free(idx);
	return EX_OK;
}
