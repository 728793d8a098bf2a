/*
 * mail_data.c - DATA of the standalone mail reception (RFC 5321 4.1.1.4) and
 * what DATA and BDAT share: the spool file under state_dir with our Received
 * field first, and the checks when the message is complete. Owns the session's
 * data phase (the transaction's reader and spool until a delivery job takes
 * the spool). Daemon process, event loop.
 *
 *   DATA   no MAIL -> 503 5.5.1; no accepted RCPT -> 554 5.5.1 (RFC 5321 3.3,
 *          RFC 2920 3.1); after BDAT -> 503 5.5.1 (RFC 3030 3); spool not
 *          writable -> 451 4.3.0; else 354, and the data streams to the spool.
 *   end    over max_message_size -> 552 5.3.4 (RFC 1870 6.3); a line over 1000
 *          octets -> 554 5.6.0; a bare CR or LF -> 554 5.6.11 (smuggling,
 *          data.h); spool write error -> 451 4.3.0 / 452 4.3.1; else the
 *          delivery job (deliver_job.c) gives the reply.
 * Every refusal comes after the whole message was read: the session stays in
 * sync and the next command is read as a command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "deliver_job.h"
#include "log.h"
#include "received.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "transaction.h"

static long mail_elapsed_us(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000L;
}

void mail_log_message(const struct session *s, int code, const char *status, const char *outcome,
		      const char *why)
{
	const struct transaction *tx = s->tx;
	char to[600];
	size_t o = 0;

	to[0] = '\0';
	for (size_t i = 0; tx && i < tx->nrcpt && o < sizeof to; i++) {
		int n = snprintf(to + o, sizeof to - o, "%s<%s>", i ? "," : "", tx->rcpt[i].key);

		if (n < 0)
			break;
		o += (size_t)n;
	}
	log_msg(code >= 400 ? LOG_NOTICE : LOG_INFO,
		"client=%s session=%s id=%s from=<%s> to=%s nrcpt=%zu size=%llu result=%d status=%s %s%s%s%s us=%ld",
		s->peer, s->id, tx ? tx->id : "-", tx ? tx->from_key : "", to[0] ? to : "-",
		tx ? tx->nrcpt : 0, tx && tx->data ? (unsigned long long)tx->data->size : 0ULL, code,
		status, outcome, why && *why ? " reason=\"" : "", why ? why : "",
		why && *why ? "\"" : "", tx ? mail_elapsed_us(&tx->t0) : 0L);
}

int mail_data_open(struct session *s, enum data_mode mode)
{
	struct transaction *tx = s->tx;
	const char *dir = sc_config_str(s->rt->cfg, "state_dir");
	struct received_info ri = { 0 };
	char field[RECEIVED_MAX], rcpt[SC_ADDR_KEY_MAX];
	size_t len = 0;
	sc_status rc;

	tx->data = malloc(sizeof *tx->data);
	if (!tx->data) {
		reply(s, "451 4.3.0 Out of memory, try again later");
		return 0;
	}
	/* an anonymous file: a crash or kill -9 leaves nothing behind */
	rc = data_spool_open(dir ? dir : "/tmp", &tx->spool_fd);
	if (rc != SC_OK) {
		log_msg(LOG_ERR, "client=%s session=%s id=%s cannot create a spool file in %s: %m",
			s->peer, s->id, tx->id, dir ? dir : "/tmp");
		free(tx->data);
		tx->data = NULL;
		reply(s, "451 4.3.0 Cannot store the message now, try again later");
		return 0;
	}
	data_init(tx->data, tx->spool_fd, (uint64_t)s->rt->size_limit, mode);
	ri.helo = s->helo;
	ri.peer = s->peer;
	ri.hostname = s->rt->hostname;
	ri.tls_version = s->tls_active && s->tls_version[0] ? s->tls_version : NULL;
	ri.tls_cipher = s->tls_cipher;
	ri.id = tx->id;
	ri.when = time(NULL);
	ri.ehlo = s->ehlo;
	ri.auth = s->auth_user[0] != '\0';
	ri.smtputf8 = tx->smtputf8;
	if (tx->nrcpt == 1 && sc_addr_format(&tx->rcpt[0].addr, rcpt, sizeof rcpt) == SC_OK)
		ri.rcpt = rcpt;
	/* RFC 5321 4.4: the trace field goes first; its failure is a spool
	 * failure (the field is short and bounded) */
	if (received_format(&ri, field, sizeof field, &len) != SC_OK ||
	    data_put(tx->data, field, len) != SC_OK) {
		log_msg(LOG_ERR, "client=%s session=%s id=%s cannot write the spool file in %s",
			s->peer, s->id, tx->id, dir ? dir : "/tmp");
		close(tx->spool_fd);
		tx->spool_fd = -1;
		free(tx->data);
		tx->data = NULL;
		reply(s, "451 4.3.0 Cannot store the message now, try again later");
		return 0;
	}
	return 1;
}

/* SESSION_DATA input after DATA's 354. */
static void mail_data_input(struct session *s, sc_buf *in)
{
	if (s->state != SESSION_DATA || !s->tx || !s->tx->data)
		return;
	if (data_feed_buf(s->tx->data, in) == SC_OK)
		mail_data_end(s);
}

void mail_data_cmd(struct session *s)
{
	struct transaction *tx = s->tx;

	if (!mail_enabled(s))
		return;
	if (!tx) {
		reply(s, "503 5.5.1 Need MAIL and RCPT before DATA");
		return;
	}
	if (tx->bdat) {
		reply(s, "503 5.5.1 DATA after BDAT (RFC 3030)");
		return;
	}
	if (tx->nrcpt == 0) {
		/* RFC 2920 3.1: the RCPTs pipelined before DATA all failed */
		reply(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (!mail_data_open(s, DATA_MODE_DOT))
		return;
	s->bulk_input = mail_data_input;
	session_enter(s, SESSION_DATA);
	/* RFC 5321 4.1.1.4 / 4.3.2: 354 intermediate reply */
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

void mail_data_end(struct session *s)
{
	struct transaction *tx = s->tx;
	struct data_reader *d = tx->data;
	int code;
	const char *status, *text;

	if (data_finish(d) == SC_OK) {
		deliver_job_start(s);
		return;
	}
	switch (d->verdict) {
	case DATA_TOO_BIG:
		code = 552, status = "5.3.4", text = "Message size exceeds fixed maximum message size";
		break;
	case DATA_LINE_TOO_LONG:
		code = 554, status = "5.6.0";
		text = "Message refused: a line is longer than 1000 octets (RFC 5321 4.5.3.1.6)";
		break;
	case DATA_BARE_EOL:
		/* docs/protocol.md "Mail reception": never stored, never split */
		code = 554, status = "5.6.11";
		text = "Message refused: bare CR or LF in the data (lines end with CRLF, RFC 5321 2.3.8)";
		break;
	case DATA_NOSPACE:
		code = 452, status = "4.3.1", text = "Insufficient system storage, try again later";
		break;
	default:
		code = 451, status = "4.3.0", text = "Cannot store the message now, try again later";
		break;
	}
	mail_log_message(s, code, status, code >= 500 ? "rejected" : "deferred",
			 data_verdict_name(d));
	reply(s, "%d %s %s", code, status, text);
	transaction_reset(s);
	session_enter(s, SESSION_READY);
	if (code >= 500)
		session_count_error(s);
}
