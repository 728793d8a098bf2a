/*
 * commands.c - the command table, line splitting and the dispatcher (see
 * commands.h). Owns the table; per-command work is in cmd_basic.c,
 * cmd_cert.c and cmd_cerc.c. Runs in the daemon process, called by session_line().
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd_auth.h"
#include "commands.h"
#include "log.h"
#include "proxy.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "transaction.h"

/* RFC 5321 4.1.1 (HELO/EHLO/RSET/NOOP/QUIT/HELP), RFC 3207 (STARTTLS), the
 * certificate service proposal (CERT/CERS/CERC). MAIL/RCPT/DATA exist so that a
 * mail client hears "not implemented" (502, RFC 5321 4.2.4), not "unrecognized". */
static const struct command command_table[] = {
	/* first: the service's traffic is CERT, and command_lookup() tries the
	 * rows in order (docs/performance.md, sixth round) */
	{ COMMAND_VERB("CERT"), cmd_cert, CMD_NEEDS_GREETING | CMD_TAKES_ARG | CMD_LOGS_ADDR,
	  "CERT <address>" },
	{ COMMAND_VERB("CERS"), cmd_cers, CMD_NEEDS_GREETING | CMD_TAKES_ARG | CMD_LOGS_ADDR,
	  "CERS <address>" },
	{ COMMAND_VERB("CERC"), cmd_cerc, CMD_NEEDS_GREETING | CMD_TAKES_ARG | CMD_LOGS_ADDR,
	  "CERC <address>" },
	{ COMMAND_VERB("HELO"), cmd_helo, CMD_TAKES_ARG | CMD_IN_CERC | CMD_ENDS_CERC,
	  "HELO <domain>" },
	{ COMMAND_VERB("EHLO"), cmd_ehlo, CMD_TAKES_ARG | CMD_IN_CERC | CMD_ENDS_CERC,
	  "EHLO <domain>" },
	/* RFC 5321 4.1.1.9: arg ignored */
	{ COMMAND_VERB("NOOP"), cmd_noop, CMD_IN_CERC, "NOOP" },
	{ COMMAND_VERB("RSET"), cmd_rset, CMD_NO_ARG | CMD_IN_CERC | CMD_ENDS_CERC, "RSET" },
	/* RFC 5321 4.1.1.8 */
	{ COMMAND_VERB("HELP"), cmd_help, CMD_IN_CERC, "HELP [command]" },
	{ COMMAND_VERB("QUIT"), cmd_quit, CMD_NO_ARG | CMD_ENDS_PIPELINE_GROUP | CMD_IN_CERC,
	  "QUIT" },
	{ COMMAND_VERB("STARTTLS"), cmd_starttls, CMD_NO_ARG | CMD_ENDS_PIPELINE_GROUP,
	  "STARTTLS" },
	/* RFC 4954 4: after EHLO; the handler refuses it outside TLS (538) */
	{ COMMAND_VERB("AUTH"), cmd_auth, CMD_NEEDS_GREETING | CMD_TAKES_ARG,
	  "AUTH mechanism [initial-response]" },
	/* RFC 5321 4.1.1.2 / 4.1.1.3 (mail reception, cmd_mail.c; 502 without
	 * `delivery`): after the greeting (4.1.4) */
	{ COMMAND_VERB("MAIL"), cmd_mail, CMD_NEEDS_GREETING | CMD_TAKES_ARG | CMD_LOGS_ADDR,
	  "MAIL FROM:<address> [parameters]" },
	{ COMMAND_VERB("RCPT"), cmd_rcpt, CMD_NEEDS_GREETING | CMD_TAKES_ARG | CMD_LOGS_ADDR,
	  "RCPT TO:<address>" },
	/* RFC 5321 4.1.1.4: no argument; after a CERC 250 it starts the upload,
	 * otherwise the mail data (mail_data.c) */
	{ COMMAND_VERB("DATA"), cmd_data_route, CMD_NO_ARG | CMD_IN_CERC, "DATA" },
	/* RFC 3030 2: the chunk follows the command whatever the reply, so bdat.c
	 * checks greeting and CERC itself and skips the chunk when refusing */
	{ COMMAND_VERB("BDAT"), cmd_bdat, CMD_TAKES_ARG | CMD_IN_CERC, "BDAT <size> [LAST]" },
};

sc_status command_split(const char *line, size_t len, struct command_line *out)
{
	size_t i = 0, end;

	memset(out, 0, sizeof *out);
	if (len == 0 || memchr(line, '\0', len))
		return SC_ERR_SYNTAX;
	while (i < len && line[i] != ' ')
		i++;
	out->verb = line;
	out->verb_len = i;
	if (i == 0)
		return SC_ERR_SYNTAX;
	/* RFC 5321 4.1.1: verb SP argument; be lenient about extra blanks */
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	end = len;
	while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	if (end > i) {
		out->arg = line + i;
		out->arg_len = end - i;
	}
	return SC_OK;
}

/*
 * RFC 5321 2.4: verbs are case-insensitive. Every verb of the table is A-Z only
 * (test_d_commands checks each row through command_row()), and the only bytes b with (b | 0x20) ==
 * (R | 0x20) for an upper-case letter R are R and its lower case: so OR-ing
 * 0x20 into both sides is an exact ASCII case-insensitive compare, whatever the
 * client's byte (0x80-0xff, NUL, '@' next to 'A'). Why not strlen() and
 * strncasecmp() per row: with CERT the ninth row, those 18 libc calls were
 * ~680 instructions of each pipelined CERT (docs/performance.md, sixth round).
 */
static int command_verb_equal(const struct command *c, const char *verb, size_t len)
{
	if (c->verb_len != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)verb[i] | 0x20) != ((unsigned char)c->verb[i] | 0x20))
			return 0;
	return 1;
}

const struct command *command_row(size_t i)
{
	return i < sizeof command_table / sizeof command_table[0] ? &command_table[i] : NULL;
}

const struct command *command_lookup(const char *verb, size_t len)
{
	if (len == 0 || len > COMMAND_VERB_MAX)
		return NULL;
	for (size_t i = 0; i < sizeof command_table / sizeof command_table[0]; i++)
		if (command_verb_equal(&command_table[i], verb, len))
			return &command_table[i];
	return NULL;
}

/* @return microseconds since @p t0; *@p t1 is now (CLOCK_MONOTONIC), which
 * also stamps the log line (log.h: struct log_request .mono). */
static long command_elapsed_us(const struct timespec *t0, struct timespec *t1)
{
	clock_gettime(CLOCK_MONOTONIC, t1);
	return (long)(t1->tv_sec - t0->tv_sec) * 1000000L + (t1->tv_nsec - t0->tv_nsec) / 1000L;
}

/* Checks common to every command, from its table row. @return 0 when refused. */
static int command_check(struct session *s, struct request *rq)
{
	const struct command *c = rq->cmd;

	if ((c->flags & CMD_NEEDS_GREETING) && s->state != SESSION_READY) {
		reply(s, "503 5.5.1 Send HELO/EHLO first");
		return 0;
	}
	if (s->cerc && !(c->flags & CMD_IN_CERC)) {
		reply(s, "503 5.5.1 CERC pending: send DATA, or RSET to cancel");
		return 0;
	}
	if (((c->flags & CMD_TAKES_ARG) && !rq->arg) || ((c->flags & CMD_NO_ARG) && rq->arg)) {
		reply(s, "501 5.5.4 Syntax: %s", c->usage);
		return 0;
	}
	if (c->flags & CMD_ENDS_CERC)
		cerc_reset(s);
	return 1;
}

void cmd_data_route(struct session *s, struct request *rq)
{
	if (s->cerc)
		cmd_data(s, rq);
	else
		mail_data_cmd(s);
}

void command_dispatch(struct session *s, const char *line, size_t len)
{
	struct command_line cl;
	struct request rq;
	struct timespec t0, t1;
	char verb[4 * COMMAND_VERB_MAX + 8];
	long us;
	sc_status rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&rq, 0, sizeof rq);
	reply_note(s, 0, "-");
	s->commands++;
	rc = command_split(line, len, &cl);
	if (rc != SC_OK) {
		/* docs/design.md: NUL bytes (and empty lines) are a syntax error */
		reply(s, "500 5.5.2 Syntax error");
		log_escape(line, len < COMMAND_VERB_MAX ? len : COMMAND_VERB_MAX, verb, sizeof verb);
	} else {
		rq.cmd = command_lookup(cl.verb, cl.verb_len);
		/* a known verb logs as the table spells it: only an unknown one
		 * needs escaping (docs/performance.md, sixth round) */
		if (!rq.cmd)
			log_escape(cl.verb, cl.verb_len, verb, sizeof verb);
		rq.arg = cl.arg;
		rq.arglen = cl.arg_len;
		if (proxy_takes(s, rq.cmd, cl.verb, cl.verb_len)) {
			/* proxy mode: relayed to the backend (proxy.c), which logs
			 * the request when the backend has answered */
			if ((!rq.cmd || command_check(s, &rq)) &&
			    proxy_command(s, &rq, cl.verb, cl.verb_len, line, len))
				return;
		} else if (!rq.cmd)
			reply(s, "500 5.5.1 Command unrecognized");
		else if (command_check(s, &rq))
			rq.cmd->fn(s, &rq);
		if (rq.cmd && (rq.cmd->flags & CMD_ENDS_PIPELINE_GROUP))
			s->discard_input = 1;
		/* a worker job (cert_job.c) or the harvest timer (harvest.c) answers:
		 * it logs the request and counts a 5yz then */
		if (s->state == SESSION_LOOKUP || s->state == SESSION_CERT_WAIT)
			return;
	}
	us = command_elapsed_us(&t0, &t1);
	log_request(&(struct log_request){ .peer = s->peer, .session = s->id,
					   .cmd = rq.cmd ? rq.cmd->verb : verb, .addr = rq.logaddr,
					   .result = s->last_code, .status = s->last_status,
					   .us = us, .delayed = -1, .mono = &t1 });
	/* RFC 5321 4.2.1: 5yz is a permanent failure; our own 4yz (repository down)
	 * is not the client's fault and does not count. */
	if (s->last_code >= 500 && s->state != SESSION_CLOSING)
		session_count_error(s);
}
