/*
 * cmd_mail.c - MAIL and RCPT of the standalone mail reception (RFC 5321
 * 4.1.1.2, 4.1.1.3; replies per docs/protocol.md "Mail reception"). Owns
 * nothing beyond the session's transaction (transaction.c). Daemon process,
 * event loop; called by command_dispatch() after the table's flag checks.
 *
 *   MAIL FROM:<path> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] [AUTH=...]
 *     no delivery configured -> 502 5.5.1; in a transaction -> 503 5.5.1;
 *     syntax -> 501 5.5.4; SIZE over max_message_size -> 552 5.3.4 (RFC 1870
 *     6.1); unknown parameter -> 555 5.5.4 (RFC 5321 4.1.1.11); a non-ASCII
 *     address without SMTPUTF8 -> 553 5.6.7 (RFC 6531 3.5); else 250 2.1.0.
 *   RCPT TO:<path>
 *     no MAIL -> 503 5.5.1; too many -> 452 4.5.3 (RFC 5321 4.5.3.1.10);
 *     another domain, an address literal or a gateway domain -> 554 5.7.1
 *     relay denied (never an open relay, authenticated or not); a local
 *     domain: postmaster (RFC 5321 4.5.1), abuse (RFC 2142), a user of the
 *     passwd: file or of the `recipients` file -> 250 2.1.5, else 550 5.1.1.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "commands.h"
#include "log.h"
#include "rcpt_local.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "transaction.h"

/* Parameters of one MAIL command, before they are committed to the transaction. */
struct mail_params {
	uint64_t size;
	unsigned has_size : 1, has_body : 1, body_8bit : 1, smtputf8 : 1, has_auth : 1;
};

/* The runtime for domains and recipients: the current one, so that a reload
 * applies at the next command (as for CERT, cmd_cert.c). */
static struct runtime *mail_runtime(const struct session *s)
{
	return runtime_current() ? runtime_current() : s->rt;
}

/* Is mail received here (not proxied, not refused)? Replies when not. */
int mail_enabled(struct session *s)
{
	enum runtime_delivery d = s->rt->delivery;

	if (d == RUNTIME_DELIVERY_MAILDIR || d == RUNTIME_DELIVERY_LMTP)
		return 1;
	/* the wording the certificate-only service has always used; the log
	 * line says why */
	log_msg(LOG_INFO, "client=%s session=%s mail refused: no delivery configured (`delivery`)",
		s->peer, s->id);
	reply(s, "502 5.5.1 Command not implemented");
	return 0;
}

/*
 * Split "FROM:<path> params" / "TO:<path> params" (RFC 5321 4.1.1.2): the
 * keyword, optional blanks (clients in the wild send "FROM: <a@b>"), the path
 * in angle brackets up to its closing '>' (a quoted local part may hold '>'),
 * then the parameters. @return 0 on a syntax error.
 */
static int mail_split(const char *arg, size_t len, const char *kw, const char **path,
		      size_t *plen, const char **params, size_t *qlen)
{
	size_t k = strlen(kw), i, quoted = 0;

	if (len < k || strncasecmp(arg, kw, k) != 0)
		return 0;
	i = k;
	while (i < len && arg[i] == ' ')
		i++;
	if (i >= len || arg[i] != '<')
		return 0;
	*path = arg + i;
	for (; i < len; i++) {
		if (arg[i] == '\\' && quoted && i + 1 < len) {
			i++;
			continue;
		}
		if (arg[i] == '"')
			quoted = !quoted;
		else if (arg[i] == '>' && !quoted)
			break;
	}
	if (i >= len)
		return 0;
	*plen = (size_t)(arg + i + 1 - *path);
	i++;
	if (i < len && arg[i] != ' ')
		return 0;
	while (i < len && arg[i] == ' ')
		i++;
	*params = arg + i;
	*qlen = len - i;
	return 1;
}

/* Next "KEY[=VALUE]" of a parameter list. @return 0 at the end. */
static int mail_param_next(const char **p, const char *end, const char **key, size_t *klen,
			   const char **val, size_t *vlen)
{
	const char *s = *p, *e, *eq;

	while (s < end && *s == ' ')
		s++;
	if (s >= end)
		return 0;
	e = s;
	while (e < end && *e != ' ')
		e++;
	eq = memchr(s, '=', (size_t)(e - s));
	*key = s;
	*klen = (size_t)((eq ? eq : e) - s);
	*val = eq ? eq + 1 : NULL;
	*vlen = eq ? (size_t)(e - eq - 1) : 0;
	*p = e;
	return 1;
}

static int mail_key_is(const char *key, size_t klen, const char *name)
{
	return strlen(name) == klen && strncasecmp(key, name, klen) == 0;
}

/* SIZE value: 1*20DIGIT (RFC 1870 3). */
static int mail_size_value(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (!v || n == 0 || n > 20)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10)
			return 0;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 1;
}

/* MAIL parameters (RFC 5321 4.1.1.11: an unknown one is 555). @return 0 when
 * a reply was given. */
static int mail_params(struct session *s, const char *p, size_t n, struct mail_params *mp)
{
	const char *end = p + n, *key, *val;
	size_t klen, vlen;

	memset(mp, 0, sizeof *mp);
	while (mail_param_next(&p, end, &key, &klen, &val, &vlen)) {
		if (mail_key_is(key, klen, "SIZE")) {
			if (mp->has_size || !mail_size_value(val, vlen, &mp->size)) {
				reply(s, "501 5.5.4 Syntax: SIZE=<octets> (RFC 1870)");
				return 0;
			}
			mp->has_size = 1;
		} else if (mail_key_is(key, klen, "BODY")) {
			/* RFC 6152; BINARYMIME (RFC 3030) is not offered */
			if (mp->has_body || !val) {
				reply(s, "501 5.5.4 Syntax: BODY=7BIT|8BITMIME");
				return 0;
			}
			if (vlen == 8 && strncasecmp(val, "8BITMIME", 8) == 0)
				mp->body_8bit = 1;
			else if (!(vlen == 4 && strncasecmp(val, "7BIT", 4) == 0)) {
				reply(s, "555 5.5.4 Unsupported BODY type (7BIT and 8BITMIME only)");
				return 0;
			}
			mp->has_body = 1;
		} else if (mail_key_is(key, klen, "SMTPUTF8")) {
			if (mp->smtputf8 || val) {
				reply(s, "501 5.5.4 Syntax: SMTPUTF8 takes no value (RFC 6531)");
				return 0;
			}
			mp->smtputf8 = 1;
		} else if (mail_key_is(key, klen, "AUTH")) {
			/* RFC 4954 5: a server offering AUTH accepts the parameter; it
			 * names who submitted the message, which matters to a relay:
			 * we relay nothing, so it is checked for form and ignored */
			if (mp->has_auth || !val || vlen == 0) {
				reply(s, "501 5.5.4 Syntax: AUTH=<mailbox> or AUTH=<>");
				return 0;
			}
			mp->has_auth = 1;
		} else {
			char name[40];

			log_escape(key, klen < 16 ? klen : 16, name, sizeof name);
			reply(s, "555 5.5.4 Unsupported parameter %s", name);
			return 0;
		}
	}
	return 1;
}

/* Parse a path "<...>" into @p a. @return 0 when a reply was given. */
static int mail_path(struct session *s, struct request *rq, const char *path, size_t plen,
		     int smtputf8, struct sc_addr *a, const char *usage)
{
	const char *why = NULL;
	sc_status rc = sc_addr_parse(path, plen, SC_ADDR_UTF8 | SC_ADDR_BRACKETS | SC_ADDR_ROUTE |
					     SC_ADDR_LITERAL, a, &why);

	if (rc != SC_OK) {
		log_escape(path, plen, rq->logaddr, 96);
		reply(s, "501 5.5.4 Syntax: %s (%s)", usage,
		      why ? why : rc == SC_ERR_TOO_LONG ? "address too long" : sc_strerror(rc));
		return 0;
	}
	if (sc_addr_key(a, rq->logaddr, sizeof rq->logaddr, NULL) != SC_OK) {
		reply(s, "501 5.5.4 Syntax: %s (address too long)", usage);
		return 0;
	}
	/* RFC 6531 3.5: a non-ASCII address needs SMTPUTF8 on MAIL */
	if ((a->flags & SC_ADDR_IS_UTF8) && !smtputf8) {
		reply(s, "553 5.6.7 Non-ASCII address needs MAIL ... SMTPUTF8 (RFC 6531)");
		return 0;
	}
	return 1;
}

void cmd_mail(struct session *s, struct request *rq)
{
	const char *path, *params;
	size_t plen, qlen;
	struct mail_params mp;
	struct sc_addr from;
	int null_sender;

	if (!mail_enabled(s))
		return;
	/* RFC 5321 4.1.4: MAIL inside a transaction is out of sequence */
	if (s->tx) {
		reply(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (!mail_split(rq->arg, rq->arglen, "FROM:", &path, &plen, &params, &qlen)) {
		reply(s, "501 5.5.4 Syntax: %s", rq->cmd->usage);
		return;
	}
	if (!mail_params(s, params, qlen, &mp))
		return;
	/* RFC 5321 4.5.5: the null reverse-path of notifications */
	null_sender = plen == 2;
	if (null_sender)
		snprintf(rq->logaddr, sizeof rq->logaddr, "<>");
	else if (!mail_path(s, rq, path, plen, mp.smtputf8, &from, rq->cmd->usage))
		return;
	/* RFC 1870 6.1: refuse at once what will not fit */
	if (mp.has_size && s->rt->size_limit > 0 && mp.size > (uint64_t)s->rt->size_limit) {
		log_msg(LOG_NOTICE, "client=%s session=%s from=<%s> size=%llu rejected: over max_message_size %ld",
			s->peer, s->id, null_sender ? "" : rq->logaddr,
			(unsigned long long)mp.size, s->rt->size_limit);
		reply(s, "552 5.3.4 Message size exceeds fixed maximum message size (%ld)",
		      s->rt->size_limit);
		return;
	}
	if (transaction_begin(s) != SC_OK) {
		reply(s, "451 4.3.0 Out of memory, try again later");
		return;
	}
	s->tx->null_sender = null_sender ? 1 : 0;
	if (!null_sender) {
		s->tx->from = from;
		snprintf(s->tx->from_key, sizeof s->tx->from_key, "%s", rq->logaddr);
	}
	s->tx->size_param = mp.has_size ? mp.size : 0;
	s->tx->body_8bit = mp.body_8bit;
	s->tx->smtputf8 = mp.smtputf8;
	reply(s, "250 2.1.0 Sender OK");
}

/* RFC 5321 4.5.1 / RFC 2142: the role mailboxes every domain has. */
static int mail_role(const char *local)
{
	return strcasecmp(local, "postmaster") == 0 || strcasecmp(local, "abuse") == 0;
}

static void mail_rcpt_refused(struct session *s, const struct request *rq, const char *why)
{
	log_msg(LOG_NOTICE, "client=%s session=%s id=%s from=<%s> to=<%s> rejected: %s", s->peer,
		s->id, s->tx->id, s->tx->from_key, rq->logaddr, why);
}

void cmd_rcpt(struct session *s, struct request *rq)
{
	struct runtime *rt = mail_runtime(s);
	const char *path, *params;
	size_t plen, qlen;
	struct sc_addr a;
	sc_status rc;

	if (!mail_enabled(s))
		return;
	if (!s->tx) {
		reply(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (s->tx->bdat) {
		/* RFC 3030 3: the data has begun */
		reply(s, "503 5.5.1 RCPT after BDAT");
		return;
	}
	if (!mail_split(rq->arg, rq->arglen, "TO:", &path, &plen, &params, &qlen)) {
		reply(s, "501 5.5.4 Syntax: %s", rq->cmd->usage);
		return;
	}
	if (qlen) {
		/* no DSN (RFC 3461): RCPT takes no parameters */
		reply(s, "555 5.5.4 RCPT parameters not supported");
		return;
	}
	/* RFC 5321 4.5.1: "<Postmaster>" without a domain must be accepted */
	if (plen == 12 && strncasecmp(path, "<postmaster>", 12) == 0) {
		const char *const *domains;

		if (sc_config_list(rt->cfg, "domains", &domains) == 0) {
			reply(s, "550 5.1.1 User unknown");
			return;
		}
		snprintf(a.local, sizeof a.local, "postmaster");
		snprintf(a.domain, sizeof a.domain, "%s", domains[0]);
		a.flags = 0;
		if (sc_addr_key(&a, rq->logaddr, sizeof rq->logaddr, NULL) != SC_OK) {
			reply(s, "550 5.1.1 User unknown");
			return;
		}
	} else if (!mail_path(s, rq, path, plen, s->tx->smtputf8, &a, rq->cmd->usage)) {
		return;
	}
	if (s->tx->nrcpt >= (size_t)rt->max_recipients) {
		mail_rcpt_refused(s, rq, "too many recipients");
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	/* Never an open relay, also not for authenticated clients: smtpcertd
	 * delivers only locally (it has no queue and sends nothing on). */
	if (a.flags & SC_ADDR_IS_LITERAL) {
		mail_rcpt_refused(s, rq, "relay denied (address literal)");
		reply(s, "554 5.7.1 Relay access denied");
		return;
	}
	switch (sc_config_domain_kind(rt->cfg, a.domain)) {
	case SC_DOMAIN_LOCAL:
		break;
	case SC_DOMAIN_GATEWAY:
		/* certificates are served for these domains, mail goes elsewhere */
		mail_rcpt_refused(s, rq, "relay denied (gateway domain)");
		reply(s, "554 5.7.1 Relay access denied: certificates only for this domain");
		return;
	default:
		mail_rcpt_refused(s, rq, "relay denied");
		reply(s, "554 5.7.1 Relay access denied");
		return;
	}
	if (!mail_role(a.local)) {
		char why[300];

		/* a user added to the passwd: file receives mail as soon as it
		 * can log in (the auth source re-reads the file too) */
		if (rcpt_local_refresh(rt->local_rcpts, time(NULL), why, sizeof why) != SC_OK)
			log_msg(LOG_WARNING, "recipients: cannot re-read the passwd file: %s", why);
	}
	if (!mail_role(a.local) && !rcpt_local_has(rt->local_rcpts, rq->logaddr)) {
		mail_rcpt_refused(s, rq, "unknown user");
		reply(s, "550 5.1.1 User unknown");
		return;
	}
	rc = transaction_add_rcpt(s->tx, rq->logaddr);
	if (rc != SC_OK && rc != SC_ERR_EXISTS) {
		reply(s, "451 4.3.0 Out of memory, try again later");
		return;
	}
	reply(s, "250 2.1.5 Recipient OK");
}
