/*
 * send_crypt.c - `smtpcert send`: decide whether the message goes encrypted,
 * and make it so. Looks up every recipient's certificate with sc_lookup_cert()
 * (MX or --server, TLS-authenticated channel, TOFU pin, cache), then applies
 * the --encrypt mode:
 *   always         every recipient needs a usable certificate; otherwise
 *                  nothing is sent and each recipient without one is named;
 *   opportunistic  encrypt when every recipient has one, else send plaintext
 *                  and say so on stderr;
 *   never          no lookup, the message goes as it is.
 * In every mode a certificate that changed from the remembered one (or is not
 * for the address) stops the send: falling back to plaintext there is the
 * downgrade an attacker would want. Signing (--sign) comes first, then
 * encryption to the recipients plus the sender's own certificate, so the sent
 * copy stays readable (send_smime.c); recipients the header does not show get
 * copies of their own. Runs in the user's process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "send.h"

/* Outcome of the lookups. */
struct lookups {
	size_t missing;       /* recipients without a usable certificate */
	int fatal;            /* exit code of a failure that stops even opportunistic */
};

/* The exit code under --encrypt always for a recipient without certificate. */
static int missing_exit(sc_status st)
{
	/* 550 5.1.1 / no mail server for the domain: sendmail's "no such user" */
	if (st == SC_ERR_NOT_FOUND)
		return EX_NOUSER;
	if (sc_status_category(st) == SC_CAT_TEMP)
		return EX_TEMPFAIL;
	return EX_UNAVAILABLE;
}

static void lookup_opts(const struct send_ctx *c, struct sc_lookup_opts *lo, char *helo,
			size_t hsize)
{
	memset(lo, 0, sizeof *lo);
	send_hostname(helo, hsize);
	lo->server = c->o.server;
	lo->ca_file = c->o.ca_file;
	lo->insecure = c->o.insecure;
	lo->accept_new = c->o.accept_new;
	lo->resolver = c->o.resolver;
	lo->dnssec_anchor = c->o.dnssec_anchor;
	lo->helo = helo;
	lo->mx_port = c->o.mx_port;
	userconf_lookup_defaults(lo, &c->uc);
}

static void lookup_all(struct send_ctx *c, int always, struct lookups *l)
{
	char helo[SC_DOMAIN_MAX + 1];
	struct sc_lookup_opts lo;

	lookup_opts(c, &lo, helo, sizeof helo);
	if (c->o.insecure)
		cli_err(SEND_VERB, "warning: --insecure: certificate servers are not "
			"authenticated; a forged certificate would not be noticed");
	for (size_t i = 0; i < c->nrcpt; i++) {
		struct send_rcpt *r = &c->rcpt[i];
		struct sc_lookup_result res;
		char err[400] = "";
		sc_status st;

		memset(&res, 0, sizeof res);
		st = sc_lookup_cert(&r->addr, &lo, &res, err, sizeof err);
		if (st == SC_OK) {
			r->cert = res.cert;
			if (c->o.verbose)
				fprintf(stderr, "smtpcert: send: %s: certificate (%s, %s)%s%s\n",
					r->text, sc_trust_name(res.trust), sc_pin_name(res.pin),
					res.detail[0] ? ": " : "", res.detail);
			continue;
		}
		if (st == SC_ERR_CHANGED || st == SC_ERR_MISMATCH) {
			/* evidence of tampering: never fall back to plaintext */
			r->rc = EX_UNAVAILABLE;
			snprintf(r->why, sizeof r->why, "%s; nothing was sent (check it, then "
				 "--accept-new, or --encrypt never)", err[0] ? err : sc_strerror(st));
			if (!l->fatal)
				l->fatal = EX_UNAVAILABLE;
			continue;
		}
		l->missing++;
		snprintf(r->why, sizeof r->why, "no usable certificate: %s",
			 err[0] ? err : sc_strerror(st));
		if (always) {
			r->rc = missing_exit(st);
			/* stays readable as "no certificate ..., nothing was sent" */
			snprintf(r->why + strlen(r->why), sizeof r->why - strlen(r->why),
				 " (--encrypt always: nothing was sent)");
		}
	}
}

/* Encrypt to every recipient the header shows plus the sender's own
 * certificate. A hidden recipient (Bcc, or only on the command line) gets a
 * copy of its own later (send_hidden_copies()): a RecipientInfo names its
 * certificate's issuer and serial number, which would tell the others who got
 * the message (RFC 5322 3.6.3: Bcc recipients are not disclosed). */
static int encrypt_all(struct send_ctx *c)
{
	const char *own_file = c->o.cert ? c->o.cert : c->uc.cert;
	const sc_cert **certs;
	size_t n = 0, hidden = 0;
	int rc = EX_OK;

	if (own_file) {
		sc_status st = sc_cert_load_file(own_file, &c->own);

		if (st != SC_OK) {
			cli_err(SEND_VERB, "your certificate %s: %s", own_file, sc_strerror(st));
			return EX_CONFIG;
		}
	} else {
		cli_err(SEND_VERB, "note: no `cert` in the config: you will not be able to "
			"read your own copy of this encrypted message");
	}
	certs = calloc(c->nrcpt + 1, sizeof *certs);
	if (!certs) {
		cli_err(SEND_VERB, "out of memory");
		return EX_OSERR;
	}
	for (size_t i = 0; i < c->nrcpt; i++) {
		if (c->rcpt[i].hidden)
			hidden++;
		else
			certs[n++] = c->rcpt[i].cert;
	}
	if (hidden) {
		/* keep the unencrypted (signed) message for their copies */
		c->plain_fd = dup(c->fd);
		c->plain_size = c->size;
		if (c->plain_fd < 0) {
			cli_err(SEND_VERB, "dup: %s", strerror(errno));
			rc = EX_OSERR;
		}
	}
	if (rc == EX_OK && n) {
		if (c->own)
			certs[n++] = c->own;
		rc = send_encrypt(c, certs, n);
	}
	free(certs);
	if (rc == EX_OK)
		c->encrypted = 1;
	return rc;
}

int send_hidden_copies(struct send_ctx *c)
{
	int main_ok = 1;

	if (!c->encrypted || c->plain_fd < 0)
		return EX_OK;
	/* All or nothing, as far as it goes: when a shown recipient was refused
	 * nothing went out, so the hidden ones get nothing either. */
	for (size_t i = 0; i < c->nrcpt; i++)
		if (!c->rcpt[i].hidden && c->rcpt[i].rc != EX_OK)
			main_ok = 0;
	for (size_t i = 0; i < c->nrcpt; i++) {
		struct send_rcpt *r = &c->rcpt[i];
		const sc_cert *certs[2] = { r->cert, c->own };
		uint64_t size;
		int rc, fd;

		if (!r->hidden || r->rc != SEND_PENDING)
			continue;
		if (!main_ok) {
			snprintf(r->why, sizeof r->why, "not sent, because another recipient was "
				 "refused");
			continue;
		}
		rc = send_encrypt_fd(c, c->plain_fd, certs, c->own ? 2 : 1, &fd, &size);
		if (rc != EX_OK) {
			r->rc = rc;
			snprintf(r->why, sizeof r->why, "its copy could not be encrypted");
			continue;
		}
		send_deliver_copy(c, fd, size, &i, 1);
		close(fd);
	}
	return EX_OK;
}

int send_protect(struct send_ctx *c)
{
	enum userconf_encrypt mode = c->o.encrypt_set ? c->o.encrypt : c->uc.encrypt;
	int sign = c->o.sign >= 0 ? c->o.sign : c->uc.sign;
	struct lookups l = { 0, 0 };
	int rc;

	if (mode != UC_ENCRYPT_NEVER) {
		lookup_all(c, mode == UC_ENCRYPT_ALWAYS, &l);
		if (l.fatal)
			return l.fatal;
		if (l.missing && mode == UC_ENCRYPT_ALWAYS) {
			for (size_t i = 0; i < c->nrcpt; i++)
				if (c->rcpt[i].rc == SEND_PENDING)
					snprintf(c->rcpt[i].why, sizeof c->rcpt[i].why,
						 "not sent: another recipient has no certificate "
						 "(--encrypt always)");
			for (size_t i = 0; i < c->nrcpt; i++)
				if (c->rcpt[i].rc != SEND_PENDING)
					return c->rcpt[i].rc;
			return EX_UNAVAILABLE;
		}
		if (l.missing) {
			/* opportunistic: say plainly that this one goes unencrypted */
			for (size_t i = 0; i < c->nrcpt; i++)
				if (!c->rcpt[i].cert)
					cli_err(SEND_VERB, "%s: %s", c->rcpt[i].text, c->rcpt[i].why);
			cli_err(SEND_VERB, "sending in plaintext (--encrypt opportunistic): not "
				"every recipient has a certificate");
			for (size_t i = 0; i < c->nrcpt; i++)
				c->rcpt[i].why[0] = '\0';
		}
	}
	if (sign) {
		rc = send_sign(c);
		if (rc != EX_OK)
			return rc;
		c->signed_ = 1;
	}
	if (mode != UC_ENCRYPT_NEVER && !l.missing)
		return encrypt_all(c);
	return EX_OK;
}
