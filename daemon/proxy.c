/*
 * proxy.c - proxy mode (see proxy.h): which commands go to the backend, the
 * backend greeting (banner, EHLO, XCLIENT, the client's HELO/EHLO), relaying
 * one command at a time, streaming DATA and BDAT, the merged EHLO reply and
 * the failure replies. Owns the session's struct proxy (s->proxy) and its
 * backend connection (proxy_conn.c). Daemon process, event loop only.
 *
 * Phases of the backend connection (p->phase), each waiting for one reply:
 *   BANNER -> [EHLO1 -> XCLIENT...] -> HELLO -> goal: answer the client's
 *   HELO/EHLO (GREET) or send the command that was waiting (CMD)
 *   IDLE -> CMD | DATA_GO -(354)-> DATA (streaming) -> DATA_END | BDAT -> BDAT_END
 * A failure while greeting is "421 4.3.0" for a command (the session closes)
 * and an EHLO answered with our keywords only (the certificate service stays
 * up); a failure with a command in flight is "451 4.4.2" and the session goes
 * on; the client gets 250 for a message only when the backend said 250.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>

#include "commands.h"
#include "log.h"
#include "proxy.h"
#include "proxy_int.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"

/* Largest BDAT chunk we relay (RFC 3030 sets no limit; the backend's SIZE does). */
#define PROXY_BDAT_MAX (1ULL << 40)
/* Client data taken per filter round. */
#define PROXY_CHUNK 4096

static void proxy_data_end(struct proxy *p, enum proxy_phase next);

int proxy_mode(const struct session *s)
{
	return s->rt && s->rt->delivery == RUNTIME_DELIVERY_PROXY;
}

static int proxy_verb_is(const char *verb, size_t vlen, const char *name)
{
	return strlen(name) == vlen && strncasecmp(verb, name, vlen) == 0;
}

int proxy_takes(const struct session *s, const struct command *cmd, const char *verb,
		size_t vlen)
{
	/* ours: the certificate service, the session's TLS and AUTH, and the
	 * commands that need no backend (RFC 5321 4.1.1.8-10) */
	static const char *const local[] = { "CERT", "CERS", "CERC", "STARTTLS", "AUTH",
					     "NOOP", "HELP", "QUIT", "XCLIENT", "XFORWARD" };

	(void)cmd;
	if (!proxy_mode(s))
		return 0;
	/* a pending CERC keeps the table's rules (DATA uploads, 503 for MAIL);
	 * HELO, EHLO and RSET cancel it (command_check()) and go on here */
	if (s->cerc && !proxy_verb_is(verb, vlen, "EHLO") && !proxy_verb_is(verb, vlen, "HELO") &&
	    !proxy_verb_is(verb, vlen, "RSET"))
		return 0;
	for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
		if (proxy_verb_is(verb, vlen, local[i]))
			return 0;
	return 1;
}

static long proxy_us(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000L;
}

/* The reply is out: log the request, count a failure, read input again. */
void proxy_done(struct proxy *p, enum session_state next)
{
	struct session *s = p->s;

	log_msg(LOG_INFO, "client=%s session=%s cmd=%s result=%d status=%s us=%ld proxied=1",
		s->peer, s->id, p->verb, s->last_code, s->last_status, proxy_us(&p->t0));
	if (s->state != SESSION_CLOSING)
		session_enter(s, next);
	/* docs/design.md: every 5xx counts toward the error limit */
	if (s->last_code >= 500 && s->state != SESSION_CLOSING)
		session_count_error(s);
	if (s->out_failed && s->state != SESSION_CLOSING) {
		s->close_reason = "output-error";
		session_enter(s, SESSION_CLOSING);
	}
	if (s->wake)
		s->wake(s);
}

/* Pass the backend's reply on, line by line (reply() caps each at 512). */
static void proxy_relay(struct proxy *p, const struct proxy_reply *r)
{
	for (size_t i = 0; i < r->nlines; i++) {
		const char *l = r->text + r->off[i];
		const char *nl = memchr(l, '\n', r->len - r->off[i]);
		int len = (int)(nl - l);

		(void)reply(p->s, "%.*s", len, l);
	}
}

static void proxy_bulk_input(struct session *s, sc_buf *in);

/* Send the command that waited for the greeting, or came on an idle connection. */
void proxy_send_cmd(struct proxy *p)
{
	struct session *s = p->s;

	if (p->kind == PK_DATA) {
		proxy_send(p, p->line, p->linelen, PX_DATA_GO);
		return;
	}
	if (p->kind != PK_BDAT) {
		proxy_send(p, p->line, p->linelen, PX_CMD);
		return;
	}
	/* RFC 3030 2: the chunk follows its BDAT line at once, no reply between;
	 * if it cannot go out the chunk is still read (and dropped), then 451 */
	p->broken = 0;
	if (proxy_conn_write(&p->pc, p->line, p->linelen) != SC_OK ||
	    proxy_conn_write(&p->pc, "\r\n", 2) != SC_OK) {
		proxy_conn_close(&p->pc, 0);
		p->broken = 1;
	}
	if (p->bdat_left == 0) {
		proxy_data_end(p, PX_BDAT_END);
		return;
	}
	p->phase = PX_BDAT;
	s->bulk_input = proxy_bulk_input;
	session_enter(s, SESSION_PROXY_DATA);
	if (s->wake)
		s->wake(s);
}

static void proxy_on_reply(void *arg, const struct proxy_reply *r)
{
	struct proxy *p = arg;
	struct session *s = p->s;

	if (p->phase >= PX_BANNER && p->phase <= PX_HELLO) {
		proxy_handshake_reply(p, r);
		return;
	}
	if (s->state != SESSION_PROXY_WAIT) {
		/* the session gave up waiting (timeout, shutdown): nothing to say */
		p->phase = PX_IDLE;
		return;
	}
	proxy_relay(p, r);
	if (r->code == 421) {
		/* RFC 5321 3.8: 421 closes the channel; the backend's closes ours */
		proxy_conn_close(&p->pc, 0);
		p->phase = PX_IDLE;
		s->close_reason = "backend-421";
		proxy_done(p, SESSION_CLOSING);
		return;
	}
	switch (p->phase) {
	case PX_DATA_GO:
		if (r->code == 354) {
			/* RFC 5321 4.1.1.4: the data streams from now on */
			proxy_data_begin(&p->dot);
			p->broken = 0;
			p->phase = PX_DATA;
			s->bulk_input = proxy_bulk_input;
			proxy_done(p, SESSION_PROXY_DATA);
			return;
		}
		break;
	case PX_DATA_END:
		p->in_tx = 0; /* RFC 5321 4.1.1.4: the transaction ends either way */
		break;
	case PX_BDAT_END:
		if (p->bdat_last || r->code >= 400)
			p->in_tx = 0; /* RFC 3030 2: a failed chunk ends the transaction */
		break;
	default:
		if (p->kind == PK_MAIL && r->code / 100 == 2)
			p->in_tx = 1;
		if (p->kind == PK_RSET)
			p->in_tx = 0;
		break;
	}
	p->phase = PX_IDLE;
	proxy_done(p, SESSION_READY);
}

/* The backend connection failed or was given up (already closed). */
void proxy_fail(struct proxy *p, sc_status why, const char *detail)
{
	struct session *s = p->s;
	const char *host = s->rt->hostname;
	enum proxy_phase was = p->phase;

	p->lost = why;
	log_msg(why == SC_EOF && was == PX_IDLE ? LOG_INFO : LOG_WARNING,
		"client=%s session=%s backend=%s:%s %s (%s)", s->peer, s->id, s->rt->backend_host,
		s->rt->backend_port, detail, sc_strerror(why));
	if (was == PX_DATA || was == PX_BDAT) {
		/* the client's data is read to its end and dropped; then 451. It
		 * may be stalled by backpressure: read again. */
		p->broken = 1;
		if (s->wake)
			s->wake(s);
		return;
	}
	p->phase = PX_IDLE;
	if (was == PX_IDLE)
		return; /* nothing in flight: the next command reconnects */
	if (s->state != SESSION_PROXY_WAIT)
		return;
	if (was >= PX_BANNER && was <= PX_HELLO) {
		if (p->goal == PG_GREET) {
			/* the certificate service does not depend on the backend */
			proxy_answer_greet(p, 0);
			return;
		}
		/* RFC 5321 3.8: 421 and the connection closes */
		reply(s, "421 4.3.0 %s Mail service temporarily unavailable, closing connection",
		      host);
		s->close_reason = "backend-unavailable";
		session_enter(s, SESSION_CLOSING);
		proxy_done(p, SESSION_CLOSING);
		return;
	}
	if (was == PX_DATA_END || was == PX_BDAT_END)
		p->in_tx = 0;
	if (why == SC_ERR_TIMEOUT)
		reply(s, "451 4.4.2 Timeout waiting for the mail server, try again later");
	else
		reply(s, "451 4.4.2 Connection to the mail server lost, try again later");
	proxy_done(p, SESSION_READY);
}

static void proxy_on_error(void *arg, sc_status why, const char *detail)
{
	proxy_fail(arg, why, detail);
}

/* The backend took the queued data: read the client again (backpressure). */
static void proxy_on_drained(void *arg)
{
	struct proxy *p = arg;

	if (p->s->state == SESSION_PROXY_DATA && p->s->wake)
		p->s->wake(p->s);
}

const struct proxy_conn_ops proxy_ops = {
	.reply = proxy_on_reply,
	.error = proxy_on_error,
	.drained = proxy_on_drained,
};

/* The client's data or chunk is complete: wait for the backend's verdict. */
static void proxy_data_end(struct proxy *p, enum proxy_phase next)
{
	struct session *s = p->s;

	s->bulk_input = NULL;
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	snprintf(p->verb, sizeof p->verb, "%s", next == PX_DATA_END ? "DATA-END" : "BDAT-END");
	if (next == PX_DATA_END && p->dot.bare)
		log_msg(LOG_NOTICE, "client=%s session=%s bare CR/LF in message data: %llu "
			"neutralised", s->peer, s->id, p->dot.bare);
	if (p->broken || !p->pc.open) {
		p->phase = PX_IDLE;
		p->in_tx = 0;
		session_enter(s, SESSION_PROXY_WAIT);
		reply(s, "451 4.4.2 Connection to the mail server lost, message not accepted");
		proxy_done(p, SESSION_READY);
		return;
	}
	p->phase = next;
	session_enter(s, SESSION_PROXY_WAIT);
	proxy_conn_expect(&p->pc);
}

/* SESSION_PROXY_DATA input: the message (dot-stuffed, filtered) or the BDAT
 * chunk (raw) goes to the backend as it comes, never more than PROXY_OUT_HIGH
 * queued: above it the input stays where it is and the connection stops
 * reading the client until proxy_on_drained(). */
static void proxy_bulk_input(struct session *s, sc_buf *in)
{
	struct proxy *p = s->proxy;
	char out[PROXY_CHUNK * PROXY_DOT_EXPAND + 8];

	while (p && s->state == SESSION_PROXY_DATA && sc_buf_len(in) > 0) {
		const char *data = sc_buf_data(in);
		size_t len = sc_buf_len(in), take, olen = 0;

		if (!p->broken && proxy_conn_pending(&p->pc) >= PROXY_OUT_HIGH)
			return;
		if (len > PROXY_CHUNK)
			len = PROXY_CHUNK;
		if (p->phase == PX_BDAT) {
			take = len < p->bdat_left ? len : (size_t)p->bdat_left;
			if (!p->broken && proxy_conn_write(&p->pc, data, take) != SC_OK)
				p->broken = 1;
			sc_buf_consume(in, take);
			p->bdat_left -= take;
			if (p->bdat_left == 0 && p->drop) {
				/* a refused chunk: its reply was given already */
				p->drop = 0;
				p->broken = 0;
				p->phase = PX_IDLE;
				s->bulk_input = NULL;
				session_enter(s, SESSION_READY);
			} else if (p->bdat_left == 0) {
				proxy_data_end(p, PX_BDAT_END);
			}
			continue;
		}
		take = proxy_dot_filter(&p->dot, data, len, out, sizeof out, &olen);
		if (olen && !p->broken && proxy_conn_write(&p->pc, out, olen) != SC_OK)
			p->broken = 1;
		sc_buf_consume(in, take);
		if (p->dot.done) {
			proxy_data_end(p, PX_DATA_END);
			return;
		}
		if (take == 0)
			return; /* a CR or a dot waits for the next octet */
	}
}

/* RFC 3030 3: a BDAT chunk follows its command whatever the reply; one we
 * refused here is read and dropped, never taken for commands. */
static void proxy_drop_chunk(struct proxy *p, unsigned long long size)
{
	if (size == 0)
		return;
	p->bdat_left = size;
	p->phase = PX_BDAT;
	p->broken = 1;
	p->drop = 1;
	p->s->bulk_input = proxy_bulk_input;
	session_enter(p->s, SESSION_PROXY_DATA);
}

static struct proxy *proxy_get(struct session *s)
{
	if (!s->proxy) {
		s->proxy = calloc(1, sizeof *s->proxy);
		if (s->proxy)
			s->proxy->s = s;
	}
	return s->proxy;
}

/* "BDAT" SP chunk-size [SP "LAST"] (RFC 3030 2). @return 0 when malformed. */
static int proxy_bdat_arg(const char *arg, size_t len, unsigned long long *size, int *last)
{
	size_t i = 0;
	unsigned long long v = 0;

	while (i < len && arg[i] >= '0' && arg[i] <= '9') {
		v = v * 10 + (unsigned long long)(arg[i] - '0');
		if (v > PROXY_BDAT_MAX)
			return 0;
		i++;
	}
	if (i == 0)
		return 0;
	*size = v;
	*last = 0;
	if (i == len)
		return 1;
	while (i < len && arg[i] == ' ')
		i++;
	if (len - i == 4 && !strncasecmp(arg + i, "LAST", 4)) {
		*last = 1;
		return 1;
	}
	return 0;
}

/* The backend connection must exist, know the current LOGIN, and be greeted
 * before @p p->line goes out; start whatever is missing. */
static void proxy_dispatch(struct proxy *p)
{
	struct session *s = p->s;

	p->goal = PG_CMD;
	if (!p->pc.open) {
		proxy_open(p);
		return;
	}
	/* AUTH since the last XCLIENT: the backend learns LOGIN (XCLIENT_README:
	 * not inside a mail transaction) */
	if (s->rt->proxy_protocol == RUNTIME_PROXY_XCLIENT && p->xoffered && !p->in_tx &&
	    strcmp(p->login_sent, s->auth_user) != 0) {
		proxy_send_xclient(p);
		return;
	}
	proxy_send_cmd(p);
}

int proxy_command(struct session *s, struct request *rq, const char *verb, size_t vlen,
		  const char *line, size_t len)
{
	int greet = proxy_verb_is(verb, vlen, "EHLO") || proxy_verb_is(verb, vlen, "HELO");
	unsigned long long bdat = 0;
	int last = 0;
	struct proxy *p;

	/* the line goes to the backend as it is: nothing it could read as a
	 * line end or a second command (RFC 5321 2.3.8) */
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f) {
			reply(s, "500 5.5.2 Syntax error");
			return 0;
		}
	if (proxy_verb_is(verb, vlen, "BDAT") &&
	    (!rq->arg || !proxy_bdat_arg(rq->arg, rq->arglen, &bdat, &last))) {
		reply(s, "501 5.5.4 Syntax: BDAT <size> [LAST]");
		return 0;
	}
	p = proxy_get(s);
	if (!p || len > SESSION_LINE_MAX) {
		reply(s, "451 4.3.0 Out of memory, try again later");
		return 0;
	}
	if (!greet && s->state != SESSION_READY) {
		reply(s, "503 5.5.1 Send HELO/EHLO first");
		proxy_drop_chunk(p, bdat);
		return 0;
	}
	memcpy(p->line, line, len);
	p->linelen = len;
	log_escape(verb, vlen, p->verb, sizeof p->verb);
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	p->kind = proxy_verb_is(verb, vlen, "MAIL") ? PK_MAIL :
		  proxy_verb_is(verb, vlen, "RSET") ? PK_RSET :
		  proxy_verb_is(verb, vlen, "DATA") ? PK_DATA :
		  proxy_verb_is(verb, vlen, "BDAT") ? PK_BDAT : PK_OTHER;
	p->bdat_left = bdat;
	p->bdat_last = last ? 1 : 0;
	if (greet) {
		/* RFC 5321 4.1.4: HELO/EHLO reset the transaction, here and there */
		p->esmtp = proxy_verb_is(verb, vlen, "EHLO");
		p->helolen = rq->arglen < sizeof p->helo ? rq->arglen : sizeof p->helo;
		memcpy(p->helo, rq->arg, p->helolen);
		p->in_tx = 0;
		p->goal = PG_GREET;
		session_enter(s, SESSION_PROXY_WAIT);
		if (p->pc.open)
			proxy_hello_step(p);
		else if (proxy_caps_cached(p))
			/* proxy.h: the backend waits for the first relayed command */
			proxy_answer_greet(p, 1);
		else
			proxy_open(p);
		return 1; /* proxy_done() logs, now or when the backend answered */
	}
	if (!p->pc.open && p->in_tx) {
		if (p->kind == PK_RSET) {
			p->in_tx = 0;
			reply(s, "250 2.0.0 OK");
			return 0;
		}
		/* the backend went away with the transaction: say so until RSET */
		reply(s, "451 4.4.2 Connection to the mail server lost, send RSET");
		proxy_drop_chunk(p, bdat);
		return 0;
	}
	session_enter(s, SESSION_PROXY_WAIT);
	proxy_dispatch(p);
	return 1;
}

void proxy_free(struct session *s)
{
	struct proxy *p = s->proxy;

	if (!p)
		return;
	/* QUIT only between commands: a message in flight must never complete */
	proxy_conn_close(&p->pc, p->phase == PX_IDLE);
	free(p);
	s->proxy = NULL;
}
