/*
 * conn_io.c - moving bytes for a connection (see conn.h): one step function,
 * run by every event of the connection, that drives the TLS handshake,
 * processes complete command lines, flushes replies, applies backpressure and
 * reads more input. Daemon process, event loop only.
 *
 * Pipelining (RFC 2920): all complete lines in the input are processed in
 * order before the replies are flushed together. Backpressure: while more than
 * SESSION_OUT_HIGH bytes of replies wait for a client that does not read, no
 * command is processed and the socket is not read, so neither buffer grows.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "input.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"

/* Rounds of read/process/flush per event, so one busy client cannot starve the
 * others (it is called again on its next event). */
#define CONN_STEP_ROUNDS 16

static int conn_accepts_commands(const struct conn *c)
{
	return !c->stopping && !c->handshaking && input_session_ready(&c->s);
}

/* A CERC upload or mail data (session_takes_bulk()) reads too; SUBMIT, DELIVER
 * and PROXY_WAIT read nothing until their reply is queued, so pipelined commands
 * keep their order. */
static int conn_wants_input(const struct conn *c)
{
	if (c->stopping || c->handshaking)
		return 0;
	return input_session_ready(&c->s) ||
	       (session_takes_bulk(&c->s) && session_out_len(&c->s) < SESSION_OUT_HIGH);
}

/* The input buffer holds one line of the longest kind the session takes now:
 * an AUTH response may be 12288 octets (RFC 4954 4, session_line_max()). */
static size_t conn_in_max(const struct conn *c)
{
	size_t want = session_line_max(&c->s);

	return want > CONN_IN_MAX ? want : CONN_IN_MAX;
}

static int conn_can_read(const struct conn *c)
{
	return !c->eof && conn_wants_input(c) && (!c->in || sc_buf_room(c->in) > 0);
}

/* @return 1 when bytes (or the end of the stream) arrived; *@p drained is set
 * when the read returned less than asked (the socket is most likely empty). */
static int conn_read(struct conn *c, int *drained)
{
	/* One read(2) of up to CONN_IN_MAX into scratch space shared by all
	 * connections (one thread), then into the connection's buffer: the buffer
	 * exists only while it holds input, and starts small when (re)created. */
	static char scratch[CONN_IN_MAX];
	size_t room, n = 0;
	sc_status rc;

	if (c->in && sc_buf_max(c->in) < conn_in_max(c) &&
	    sc_buf_set_max(c->in, conn_in_max(c)) != SC_OK) {
		conn_close(c, "no-memory");
		return 0;
	}
	if (!conn_can_read(c))
		return 0;
	room = c->in ? sc_buf_room(c->in) : CONN_IN_MAX;
	c->read_want = SC_OK;
	if (room > sizeof scratch)
		room = sizeof scratch;
	rc = c->tr.ops->read(&c->tr, scratch, room, &n);
	switch (rc) {
	case SC_OK:
		*drained = n < room;
		break;
	case SC_WANT_READ:
	case SC_WANT_WRITE:
		c->read_want = rc;
		return 0;
	case SC_EOF:
		c->eof = 1;
		return 1;
	default:
		conn_close(c, rc == SC_ERR_TLS ? "tls-error" : "read-error");
		return 0;
	}
	if ((!c->in && sc_buf_new(conn_in_max(c), &c->in) != SC_OK) ||
	    sc_buf_append(c->in, scratch, n) != SC_OK) {
		conn_close(c, "no-memory");
		return 0;
	}
	/* the new bytes may complete the partial line: there may be work now */
	c->inp.partial = 0;
	/* command_timeout counts from the first byte of a line (conn_limits.c):
	 * the idle timer is re-armed only by complete lines, this bounds the line */
	if (!c->line_start)
		c->line_start = conn_limits_now();
	return 1;
}

/* A worker job of the session finished (cmd_cerc.c): run the step again from
 * the loop, for the reply and the input that waited. */
static void conn_wake(struct session *s)
{
	struct conn *c = (struct conn *)((char *)s - offsetof(struct conn, s));

	if (!c->closed && !c->lingering)
		event_active(c->ev_read, EV_READ, 0);
}

/* Hand complete lines to the session while it accepts them (input.c), and
 * certificate text while it uploads (session_upload_input()). */
static void conn_process(struct conn *c)
{
	c->s.wake = conn_wake;
	if (!c->in || c->stopping || c->handshaking)
		return;
	for (;;) {
		enum session_state before = c->s.state;
		size_t had = sc_buf_len(c->in);

		if (session_takes_bulk(&c->s)) {
			session_upload_input(&c->s, c->in);
			if (sc_buf_len(c->in) != had) {
				conn_arm_timer(c);
				c->line_start = 0; /* data, not a command line */
			}
			/* what the upload left is an incomplete line */
			c->inp.partial = session_takes_bulk(&c->s) && sc_buf_len(c->in) > 0;
		} else if (input_process(&c->s, c->in, &c->inp) > 0) {
			conn_arm_timer(c);
			/* a line completed: what is left began arriving with the last read */
			c->line_start = sc_buf_len(c->in) > 0 ? conn_limits_now() : 0;
		}
		/* DATA entered the upload, or the upload ended: go on with what is
		 * buffered in the new state */
		if (c->s.state == before || sc_buf_len(c->in) == 0)
			break;
	}
	/* the peer is gone: an unterminated last line can never complete */
	if (c->eof && (c->inp.partial || c->inp.skipping || session_takes_bulk(&c->s)))
		sc_buf_clear(c->in);
	if (sc_buf_len(c->in) == 0) {
		sc_buf_free(c->in);
		c->in = NULL;
	}
}

/* Write queued replies. @return SC_OK (all sent, or the socket is full). */
static sc_status conn_flush(struct conn *c)
{
	sc_buf *out = c->s.out;

	c->write_want = SC_OK;
	if (c->handshaking)
		return SC_OK;
	while (out && sc_buf_len(out) > 0) {
		size_t n = 0;
		sc_status rc = c->tr.ops->write(&c->tr, sc_buf_data(out), sc_buf_len(out), &n);

		if (rc == SC_WANT_WRITE || rc == SC_WANT_READ) {
			c->write_want = rc;
			return SC_OK;
		}
		if (rc != SC_OK)
			return rc;
		sc_buf_consume(out, n);
		/* a client that reads is alive: RFC 5321 4.5.3.2.7 counts inactivity */
		conn_arm_timer(c);
	}
	/* the output buffer exists only while replies are queued */
	reply_release(&c->s);
	return SC_OK;
}

/* @return 1 when the handshake is complete. */
static int conn_handshake(struct conn *c)
{
	sc_status rc = transport_tls_handshake(&c->tr);

	c->hs_want = SC_OK;
	if (rc == SC_WANT_READ || rc == SC_WANT_WRITE) {
		c->hs_want = rc;
		return 0;
	}
	if (rc != SC_OK) {
		log_msg(LOG_INFO, "client=%s session=%s tls handshake failed: %s", c->s.peer,
			c->s.id, c->tr.tls ? sc_tls_error(c->tr.tls) : "-");
		conn_close(c, "tls-handshake-failed");
		return 0;
	}
	c->handshaking = 0;
	log_msg(LOG_INFO, "client=%s session=%s tls protocol=%s cipher=%s", c->s.peer, c->s.id,
		sc_tls_version(c->tr.tls), sc_tls_cipher(c->tr.tls));
	/* for the Received field of mail (received.c) */
	snprintf(c->s.tls_version, sizeof c->s.tls_version, "%s", sc_tls_version(c->tr.tls));
	snprintf(c->s.tls_cipher, sizeof c->s.tls_cipher, "%s", sc_tls_cipher(c->tr.tls));
	session_tls_done(&c->s);
	conn_arm_timer(c);
	return 1;
}

static int conn_start_tls(struct conn *c)
{
	/* RFC 3207 4.2: whatever plaintext is buffered is discarded (CVE-2011-0411) */
	if (c->in)
		sc_buf_clear(c->in);
	c->inp.skipping = 0;
	if (transport_tls_start(&c->tr, c->s.rt->tls) != SC_OK) {
		log_msg(LOG_ERR, "client=%s session=%s cannot start TLS", c->s.peer, c->s.id);
		conn_close(c, "tls-setup-failed");
		return 0;
	}
	c->handshaking = 1;
	return 1;
}

/* Complete lines wait in the input buffer that the session could take now: the
 * line reader stopped for backpressure and the replies have since drained. */
static int conn_has_work(const struct conn *c)
{
	return c->in && sc_buf_len(c->in) > 0 && !c->inp.partial &&
	       (conn_accepts_commands(c) || conn_wants_input(c));
}

/* A submission or delivery job runs, or a proxied command waits for the
 * backend: its reply is due before anything else happens. */
static int conn_waits_for_job(const struct conn *c)
{
	/* AUTH: the verification or its failure delay (cmd_auth.c) */
	return c->s.state == SESSION_SUBMIT || c->s.state == SESSION_AUTH_WAIT ||
	       c->s.state == SESSION_DELIVER || c->s.state == SESSION_PROXY_WAIT ||
	       c->s.state == SESSION_CERT_WAIT || /* harvest delay (harvest.c) */
	       c->s.state == SESSION_LOOKUP;      /* remote store (cert_job.c) */
}

/* Everything queued is sent: act on the session's state.
 * @return 1 to go round again, 0 when idle, -1 when the connection closed. */
static int conn_after_drain(struct conn *c)
{
	struct session *s = &c->s;

	if (c->handshaking)
		return 0;
	if (s->state == SESSION_CLOSING || s->out_failed) {
		conn_linger(c, s->close_reason ? s->close_reason : "closed");
		return -1;
	}
	if (s->state == SESSION_STARTTLS)
		return conn_start_tls(c) ? 1 : -1;
	/* SIGTERM or the client's FIN during a submission: the reply (the
	 * submission is durable then) comes first; conn_wake() resumes */
	if (conn_waits_for_job(c))
		return 0;
	if (c->stopping) {
		session_shutdown(s);
		return 1;
	}
	if (c->eof) {
		/* commands pipelined before the client's FIN still get their replies */
		if (conn_has_work(c))
			return 1;
		conn_close(c, "eof");
		return -1;
	}
	return 0;
}

void conn_goodbye(struct conn *c)
{
	if (c->closed || c->lingering || c->handshaking)
		return;
	session_shutdown(&c->s);
	/* one write, never a wait: the client may be the reason the drain ran out */
	(void)conn_flush(c);
}

void conn_step(struct conn *c)
{
	conn_step_read(c, 0);
}

void conn_step_read(struct conn *c, int drained)
{
	/* After a short read the socket is empty but for what arrives meanwhile:
	 * reading again would mostly be a read(2) answering EAGAIN, one more
	 * syscall per request without pipelining (docs/performance.md). The
	 * event is level-triggered, so bytes that did arrive wake the step again. */

	for (int round = 0; round < CONN_STEP_ROUNDS && !c->closed && !c->lingering; round++) {
		int r;

		if (c->handshaking && !conn_handshake(c))
			break;
		conn_process(c);
		if (c->closed)
			return;
		if (conn_flush(c) != SC_OK) {
			conn_close(c, "write-error");
			return;
		}
		if (session_out_len(&c->s) == 0) {
			r = conn_after_drain(c);
			if (r < 0)
				return;
			if (r > 0)
				continue;
		}
		if (conn_has_work(c))
			continue;
		if (drained || !conn_read(c, &drained))
			break;
	}
	if (!c->closed && !c->lingering)
		conn_update_events(c);
}

static void conn_want(struct event *ev, short what, int on)
{
	int pending = event_pending(ev, what, NULL) != 0;

	if (on && !pending)
		event_add(ev, NULL);
	else if (!on && pending)
		event_del(ev);
}

void conn_update_events(struct conn *c)
{
	int want_r = 0, want_w = 0;

	if (c->handshaking) {
		want_r = c->hs_want == SC_WANT_READ;
		want_w = c->hs_want == SC_WANT_WRITE;
	} else {
		if (session_out_len(&c->s) > 0) {
			if (c->write_want == SC_WANT_READ)
				want_r = 1;
			else
				want_w = 1;
		}
		if (conn_can_read(c)) {
			if (c->read_want == SC_WANT_WRITE)
				want_w = 1;
			else
				want_r = 1;
		}
	}
	conn_want(c->ev_read, EV_READ, want_r);
	conn_want(c->ev_write, EV_WRITE, want_w);
	/* Input epoll cannot see (decrypted bytes inside TLS, lines buffered while
	 * the step ran out of rounds): run again on the next loop iteration. */
	if ((want_r && c->tr.ops->pending(&c->tr)) || conn_has_work(c))
		event_active(c->ev_read, EV_READ, 0);
}

void conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->closed)
		return;
	if (c->lingering) {
		conn_linger_event(c, what);
		return;
	}
	if ((what & EV_TIMEOUT) && !c->handshaking && session_awaits_server(&c->s)) {
		/* the client is waiting for us: a CERC stored after a 421 would
		 * tell it the opposite of what happened */
		conn_arm_timer(c);
		return;
	}
	if (what & EV_TIMEOUT) {
		log_msg(LOG_INFO, "client=%s session=%s idle timeout", c->s.peer, c->s.id);
		if (!c->handshaking) {
			/* best effort: a client that stopped reading will not see it */
			session_timeout(&c->s);
			if (conn_flush(c) == SC_OK) {
				conn_linger(c, "timeout");
				return;
			}
		}
		conn_close(c, "timeout");
		return;
	}
	if ((what & EV_READ) && !c->handshaking && c->s.state == SESSION_READY &&
	    session_out_len(&c->s) == 0 && !conn_has_work(c) && !c->tr.ops->pending(&c->tr)) {
		/* A session waiting for its next command: read it now, answer it
		 * with those of the other connections ready in this round
		 * (conn_batch.c). */
		int drained = 0, got = conn_read(c, &drained);

		if (c->closed)
			return;
		if (got && conn_has_work(c) && conn_batch_add(c, drained))
			return;
		conn_step_read(c, got ? drained : 1); /* nothing came: no second read */
		return;
	}
	conn_step(c);
}
