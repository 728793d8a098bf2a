/*
 * session.c - the SMTP session state machine (see session.h). Owns the session's
 * state, error count and output buffer; the runtime is referenced. Runs in the
 * daemon process, driven by conn.c (or by tests through session_line()).
 *
 * States and transitions:
 *   CONNECTED --HELO/EHLO--> READY --HELO/EHLO--> READY
 *   CONNECTED|READY --STARTTLS (220)--> STARTTLS --handshake done--> CONNECTED
 *   any --QUIT / 421 (errors, timeout, shutdown)--> CLOSING
 *   READY --CERC 250, DATA 354--> UPLOAD --"." (checks fail)--> READY
 *   UPLOAD --"." (parsed, checked)--> SUBMIT --worker job done--> READY
 *   READY --DATA 354 / BDAT--> DATA --end of data--> DELIVER --job done--> READY
 *   proxy mode: READY --relayed command--> PROXY_WAIT --backend reply--> READY,
 *   and DATA streams in PROXY_DATA
 *   READY --CERT/CERS, remote store--> LOOKUP --worker job done--> READY
 */
#include <stdio.h>
#include <string.h>

#include "anvil.h"
#include "cert_job.h"
#include "cmd_auth.h"
#include "commands.h"
#include "harvest.h"
#include "log.h"
#include "proxy.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "transaction.h"

const char *session_state_name(enum session_state st)
{
	switch (st) {
	case SESSION_CONNECTED: return "CONNECTED";
	case SESSION_READY: return "READY";
	case SESSION_STARTTLS: return "STARTTLS";
	case SESSION_AUTH: return "AUTH";
	case SESSION_AUTH_WAIT: return "AUTH_WAIT";
	case SESSION_CLOSING: return "CLOSING";
	case SESSION_UPLOAD: return "UPLOAD";
	case SESSION_SUBMIT: return "SUBMIT";
	case SESSION_DATA: return "DATA";
	case SESSION_DELIVER: return "DELIVER";
	case SESSION_PROXY_WAIT: return "PROXY_WAIT";
	case SESSION_PROXY_DATA: return "PROXY_DATA";
	case SESSION_CERT_WAIT: return "CERT_WAIT";
	case SESSION_LOOKUP: return "LOOKUP";
	}
	return "?";
}

void session_enter(struct session *s, enum session_state next)
{
	log_msg(LOG_DEBUG, "client=%s session=%s state %s -> %s", s->peer, s->id,
		session_state_name(s->state), session_state_name(next));
	s->state = next;
}

void session_init(struct session *s, struct runtime *rt, const char *peer, const char *id)
{
	s->state = SESSION_CONNECTED;
	s->fd = -1;
	s->rt = rt;
	runtime_ref(rt);
	snprintf(s->peer, sizeof s->peer, "%s", peer);
	s->peer_loopback = anvil_is_loopback(s->peer) != 0;
	snprintf(s->id, sizeof s->id, "%s", id);
	reply_note(s, 0, "-");
}

void session_fini(struct session *s)
{
	cmd_auth_free(s);
	cerc_free(s);
	proxy_free(s);
	transaction_free(s); /* a delivery in flight completes without us */
	harvest_free(s);
	cert_job_cancel(s); /* a lookup in flight completes without us */
	reply_release(s);
	if (s->rt)
		runtime_unref(s->rt);
	s->rt = NULL;
}

size_t session_line_max(const struct session *s)
{
	return s->state == SESSION_AUTH ? CMD_AUTH_LINE_MAX : SESSION_LINE_MAX;
}

size_t session_out_len(const struct session *s)
{
	return s->out ? sc_buf_len(s->out) : 0;
}

void session_greet(struct session *s)
{
	/* RFC 5321 4.3.1 / docs/design.md banner */
	reply(s, "220 %s ESMTP smtpcertd", s->rt->hostname);
}

/* Command lines are taken only in CONNECTED and READY (input.c); UPLOAD, DATA
 * and PROXY_DATA input goes to session_upload_input(); SUBMIT, DELIVER,
 * PROXY_WAIT and LOOKUP read nothing (pipelining order). */
static int session_takes_commands(const struct session *s)
{
	return s->state == SESSION_CONNECTED || s->state == SESSION_READY;
}

void session_line(struct session *s, const char *line, size_t len)
{
	if (s->state == SESSION_AUTH) {
		/* RFC 4954 4: inside the dialogue a line is a response, not a command */
		cmd_auth_line(s, line, len);
		if (s->out_failed && s->state != SESSION_CLOSING) {
			s->close_reason = "output-error";
			session_enter(s, SESSION_CLOSING);
		}
		return;
	}
	if (!session_takes_commands(s))
		return;
	command_dispatch(s, line, len);
	if (s->out_failed && s->state != SESSION_CLOSING) {
		s->close_reason = "output-error";
		session_enter(s, SESSION_CLOSING);
	}
}

int session_takes_bulk(const struct session *s)
{
	return s->state == SESSION_UPLOAD || s->state == SESSION_DATA ||
	       s->state == SESSION_PROXY_DATA;
}

int session_awaits_server(const struct session *s)
{
	switch (s->state) {
	case SESSION_AUTH_WAIT:
	case SESSION_SUBMIT:
	case SESSION_DELIVER:
	case SESSION_PROXY_WAIT:
	case SESSION_CERT_WAIT:
	case SESSION_LOOKUP:
		return 1;
	default:
		return 0;
	}
}

void session_upload_input(struct session *s, sc_buf *in)
{
	if (!session_takes_bulk(s) || !s->bulk_input)
		return;
	s->bulk_input(s, in);
	if (s->out_failed && s->state != SESSION_CLOSING) {
		s->close_reason = "output-error";
		session_enter(s, SESSION_CLOSING);
	}
}

void session_line_too_long(struct session *s)
{
	if (s->state == SESSION_AUTH) {
		cmd_auth_line_too_long(s);
		return;
	}
	if (!session_takes_commands(s))
		return;
	reply(s, "500 5.5.2 Line too long");
	log_msg(LOG_INFO, "client=%s session=%s cmd=- result=500 status=5.5.2 us=0 reason=line-too-long",
		s->peer, s->id);
	session_count_error(s);
}

void session_count_error(struct session *s)
{
	if (++s->errors < (unsigned long)s->rt->max_errors)
		return;
	reply(s, "421 4.7.0 %s Too many errors, closing connection", s->rt->hostname);
	log_msg(LOG_NOTICE, "client=%s session=%s too many errors (%u)", s->peer, s->id, s->errors);
	s->close_reason = "too-many-errors";
	session_enter(s, SESSION_CLOSING);
}

void session_timeout(struct session *s)
{
	if (s->state == SESSION_CLOSING)
		return;
	/* RFC 5321 4.5.3.2.7 server timeout; 4.2.5 421 */
	reply(s, "421 4.4.2 %s Idle timeout, closing connection", s->rt->hostname);
	s->close_reason = "timeout";
	session_enter(s, SESSION_CLOSING);
}

void session_shutdown(struct session *s)
{
	if (s->state == SESSION_CLOSING)
		return;
	reply(s, "421 4.3.2 %s Service shutting down", s->rt->hostname);
	s->close_reason = "shutdown";
	session_enter(s, SESSION_CLOSING);
}

void session_tls_done(struct session *s)
{
	/* RFC 3207 4.2: discard all knowledge from before TLS; a new EHLO is due. */
	s->tls_active = 1;
	s->discard_input = 0;
	s->auth_user[0] = '\0';
	s->helo[0] = '\0';
	transaction_reset(s);
	session_enter(s, SESSION_CONNECTED);
}
