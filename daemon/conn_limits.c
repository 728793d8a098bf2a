/*
 * conn_limits.c - limits on connections beyond max_connections and the idle
 * timer (conn.c): per-client-network admission (max_connections_per_ip,
 * max_connection_rate; anvil.c), and a once-a-second sweep enforcing
 * command_timeout and session_timeout. Owns the sweep timer. Daemon process,
 * event loop only.
 *
 * Why a sweep and not one more timer per connection: a struct event costs
 * ~0.13 KiB per connection (conn.h), the sweep costs one comparison per live
 * connection per second; the limits are in whole seconds anyway.
 *
 * Why these timeouts: the idle timer (RFC 5321 4.5.3.2.7) is re-armed by every
 * complete command line and every reply byte the client reads, so a client
 * that sends a NOOP every idle_timeout - 1 seconds, or drips DATA a byte at a
 * time, holds its connection forever; session_timeout bounds every session.
 * command_timeout bounds one command line from its first byte (a client that
 * has begun a command and dribbles the rest).
 */
#include <time.h>

#include "anvil.h"
#include "conn.h"
#include "input.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"

static struct event *conn_limits_ev;

long conn_limits_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* never 0: line_start 0 means "no line" */
	return (long)ts.tv_sec + 1;
}

int conn_limits_admit(const struct runtime *rt, const char *peer, const char **why)
{
	if (rt->limits_exempt_loopback && anvil_is_loopback(peer))
		return 1;
	if (rt->max_conns_per_ip <= 0 && rt->max_conn_rate <= 0)
		return 1;
	switch (anvil_connect(peer, rt->max_conns_per_ip, rt->max_conn_rate, time(NULL))) {
	case ANVIL_OK:
		return 2;
	case ANVIL_UNTRACKED:
		/* fails open: max_connections still bounds the server */
		log_msg(LOG_WARNING, "client=%s per-IP limits not applied: table full", peer);
		return 1;
	case ANVIL_TOO_MANY:
		*why = "too many connections from this network (max_connections_per_ip)";
		return 0;
	case ANVIL_TOO_FAST:
		*why = "connection rate limit (max_connection_rate)";
		return 0;
	}
	return 1;
}

/* As the idle timeout (conn_event_cb()): 421 4.4.2 if the client reads it. */
static void conn_limits_cut(struct conn *c, const char *what, const char *reason)
{
	struct session *s = &c->s;

	log_msg(LOG_INFO, "client=%s session=%s %s", s->peer, s->id, what);
	if (c->handshaking) {
		conn_close(c, reason);
		return;
	}
	if (s->state != SESSION_CLOSING) {
		/* RFC 5321 4.2.5 / 3.8: 421 and close */
		reply(s, "421 4.4.2 %s %s, closing connection", s->rt->hostname, what);
		s->close_reason = reason;
		session_enter(s, SESSION_CLOSING);
	}
	conn_step(c);
	/* a client that does not read its 421 is not waited for */
	if (!c->closed && !c->lingering)
		conn_close(c, reason);
}

static void conn_limits_sweep(evutil_socket_t fd, short what, void *arg)
{
	long now = conn_limits_now();
	struct conn *c, *next;

	(void)fd;
	(void)what;
	(void)arg;
	for (c = conn_first(); c; c = next) {
		const struct runtime *rt = c->s.rt;

		next = c->next;
		if (c->closed || c->lingering)
			continue;
		if (rt->session_timeout > 0 && now - c->started > rt->session_timeout)
			conn_limits_cut(c, "Session timeout", "session-timeout");
		else if (rt->command_timeout > 0 && c->line_start && !c->handshaking &&
			 input_session_ready(&c->s) && now - c->line_start > rt->command_timeout)
			conn_limits_cut(c, "Command timeout", "command-timeout");
	}
}

sc_status conn_limits_init(struct event_base *base)
{
	struct timeval tv = { 1, 0 };

	conn_limits_ev = event_new(base, -1, EV_PERSIST, conn_limits_sweep, NULL);
	if (!conn_limits_ev || event_add(conn_limits_ev, &tv) != 0)
		return SC_ERR_NOMEM;
	return SC_OK;
}

void conn_limits_fini(void)
{
	if (conn_limits_ev)
		event_free(conn_limits_ev);
	conn_limits_ev = NULL;
}
