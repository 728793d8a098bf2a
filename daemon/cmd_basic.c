/*
 * cmd_basic.c - the RFC 5321 session commands: HELO, EHLO, NOOP, RSET, HELP,
 * QUIT, STARTTLS (RFC 3207), and the 502 answer for mail commands that come in a
 * later issue. Daemon process; called by command_dispatch() after the table's
 * flag checks, so arguments are present/absent as the row demands.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "transaction.h"

/* The EHLO/HELO argument is echoed in the greeting: keep it printable ASCII and
 * short so that a client cannot inject reply lines or overflow the line. */
static void cmd_printable(const char *in, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char ch = (unsigned char)in[i];

		out[n++] = ch >= 0x21 && ch < 0x7f ? (char)ch : '?';
	}
	out[n] = '\0';
}

/* RFC 5321 4.1.4: HELO/EHLO reset the session as RSET does. */
static void cmd_greeted(struct session *s)
{
	transaction_reset(s);
	if (s->state != SESSION_READY)
		session_enter(s, SESSION_READY);
}

void cmd_helo(struct session *s, struct request *rq)
{
	char who[128];

	cmd_printable(rq->arg, rq->arglen, who, sizeof who);
	cmd_greeted(s);
	/* for the Received field (received.c) */
	snprintf(s->helo, sizeof s->helo, "%s", who);
	s->ehlo = 0;
	/* RFC 5321 4.1.1.1: "250 domain"; no enhanced code on greetings (RFC 2034). */
	reply(s, "250 %s greets %s", s->rt->hostname, who);
}

void cmd_ehlo(struct session *s, struct request *rq)
{
	const struct runtime *rt = s->rt;
	char who[128];

	cmd_printable(rq->arg, rq->arglen, who, sizeof who);
	cmd_greeted(s);
	snprintf(s->helo, sizeof s->helo, "%s", who);
	s->ehlo = 1;
	/* docs/design.md: the order of the EHLO keywords */
	reply(s, "250-%s greets %s", rt->hostname, who);
	reply(s, "250-PIPELINING");                  /* RFC 2920 */
	reply(s, "250-SIZE %ld", rt->size_limit);    /* RFC 1870 */
	reply(s, "250-8BITMIME");                    /* RFC 6152 */
	reply(s, "250-ENHANCEDSTATUSCODES");         /* RFC 2034 */
	reply(s, "250-SMTPUTF8");                    /* RFC 6531 */
	/* RFC 3030 (BDAT, bdat.c), without BINARYMIME: only where mail is
	 * received here. (Proxy mode merges the backend's keywords: proxy.c.) */
	if (rt->delivery == RUNTIME_DELIVERY_MAILDIR || rt->delivery == RUNTIME_DELIVERY_LMTP)
		reply(s, "250-CHUNKING");
	if (rt->tls && !s->tls_active)
		reply(s, "250-STARTTLS");            /* RFC 3207 */
	if (rt->auth && s->tls_active)
		reply(s, "250-AUTH PLAIN LOGIN");    /* RFC 4954 3, only inside TLS */
	reply(s, "250-CERT");
	reply(s, "250-CERS");
	if (rt->submissions != RUNTIME_SUBMIT_OFF)
		reply(s, "250-CERC");
	reply(s, "250 HELP");
	reply_note(s, 250, "-");
}

void cmd_noop(struct session *s, struct request *rq)
{
	reply(s, "250 2.0.0 OK");
}

void cmd_rset(struct session *s, struct request *rq)
{
	/* RFC 5321 4.1.1.5: abort the transaction; the greeting state is kept. */
	transaction_reset(s);
	reply(s, "250 2.0.0 OK");
}

void cmd_help(struct session *s, struct request *rq)
{
	/* RFC 5321 4.1.1.8 */
	reply(s, "214-smtpcertd: SMTP certificate service");
	reply(s, "214-Commands: HELO EHLO STARTTLS NOOP RSET HELP QUIT");
	reply(s, "214-  CERT <address>   the certificate of <address>");
	reply(s, "214-  CERS <address>   the certificate and its chain");
	reply(s, "214-  CERC <address>   submit a certificate");
	if (s->rt->delivery == RUNTIME_DELIVERY_MAILDIR || s->rt->delivery == RUNTIME_DELIVERY_LMTP)
		reply(s, "214-Mail for local recipients: MAIL RCPT DATA BDAT (RFC 5321, 3030)");
	reply(s, "214 2.0.0 End of HELP info");
}

void cmd_quit(struct session *s, struct request *rq)
{
	/* RFC 5321 4.1.1.10 */
	reply(s, "221 2.0.0 %s closing connection", s->rt->hostname);
	s->close_reason = "quit";
	session_enter(s, SESSION_CLOSING);
}

void cmd_starttls(struct session *s, struct request *rq)
{
	if (s->tls_active) {
		reply(s, "503 5.5.1 TLS already active");
		return;
	}
	if (!s->rt->tls) {
		reply(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	/* RFC 3207 4: 220, then the handshake; conn.c discards any input left. */
	reply(s, "220 2.0.0 Ready to start TLS");
	session_enter(s, SESSION_STARTTLS);
}

void cmd_not_implemented(struct session *s, struct request *rq)
{
	reply(s, "502 5.5.1 Command not implemented");
}
