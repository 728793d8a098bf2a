/*
 * conn.c - connection lifecycle (see conn.h): accept, the list of live
 * connections, the idle timer, close, deferred free and graceful shutdown.
 * Owns every struct conn. Daemon process, event loop only.
 *
 * A connection is never freed inside one of its own callbacks: conn_close()
 * unregisters it, closes the socket and moves it to a free list that a separate
 * event (the reaper) empties after the current event frame.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anvil.h"
#include "conn.h"
#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "shared.h"

static struct event_base *conn_base;
static struct event *conn_reaper;
static struct conn *conn_live;     /* doubly linked */
static struct conn *conn_dead;     /* closed, waiting for the reaper */
static size_t conn_nlive;
static unsigned long long conn_serial;
static unsigned long conn_epoch;   /* start time: session ids differ across restarts */
static void (*conn_shutdown_done)(void);
static const struct timeval *conn_timer_tv;
static long conn_timer_secs;

static void conn_free(struct conn *c)
{
	if (c->ev_read)
		event_free(c->ev_read);
	if (c->ev_write)
		event_free(c->ev_write);
	if (c->ev_timer)
		event_free(c->ev_timer);
	session_fini(&c->s);
	if (c->in)
		sc_buf_free(c->in);
	free(c);
}

static void conn_reap(evutil_socket_t fd, short what, void *arg)
{
	while (conn_dead) {
		struct conn *c = conn_dead;

		conn_dead = c->next;
		conn_free(c);
	}
}

sc_status conn_module_init(struct event_base *base)
{
	conn_base = base;
	conn_epoch = (unsigned long)time(NULL);
	conn_reaper = event_new(base, -1, 0, conn_reap, NULL);
	if (!conn_reaper)
		return SC_ERR_NOMEM;
	if (conn_batch_init(base) != SC_OK)
		return SC_ERR_NOMEM;
	/* per-IP limits, command and session timeouts (conn_limits.c) */
	return conn_limits_init(base);
}

void conn_module_fini(void)
{
	conn_close_all();
	conn_batch_fini();
	conn_reap(-1, 0, NULL);
	if (conn_reaper)
		event_free(conn_reaper);
	conn_reaper = NULL;
	/* the common timeout belongs to the base being freed: a later init on a
	 * new base must make its own */
	conn_timer_tv = NULL;
	conn_timer_secs = 0;
	conn_limits_fini();
	reply_spares_free();
}

size_t conn_count(void)
{
	return conn_nlive;
}

struct conn *conn_first(void)
{
	return conn_live;
}

/* One libevent "common timeout" per duration keeps thousands of identical idle
 * timers O(1) to re-arm (event_base_init_common_timeout(3)). */
void conn_arm_timer(struct conn *c)
{
	long secs = c->s.rt->idle_timeout;

	if (!conn_timer_tv || secs != conn_timer_secs) {
		struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };

		conn_timer_tv = event_base_init_common_timeout(conn_base, &tv);
		conn_timer_secs = secs;
		if (!conn_timer_tv) {
			static struct timeval plain;

			plain = tv;
			conn_timer_tv = &plain;
		}
	}
	evtimer_add(c->ev_timer, conn_timer_tv);
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->closed)
		return;
	c->closed = 1;
	if (c->batched)
		conn_batch_forget(c);
	log_msg(LOG_INFO, "client=%s session=%s disconnect reason=%s commands=%lu errors=%u",
		c->s.peer, c->s.id, reason, c->s.commands, c->s.errors);
	event_del(c->ev_read);
	event_del(c->ev_write);
	event_del(c->ev_timer);
	c->tr.ops->close(&c->tr);
	close(c->tr.fd);
	c->tr.fd = -1;
	if (c->anvil_counted)
		anvil_disconnect(c->s.peer);
	if (c->prev)
		c->prev->next = c->next;
	else
		conn_live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	conn_nlive--;
	shared_conns_release();
	c->prev = NULL;
	c->next = conn_dead;
	conn_dead = c;
	event_active(conn_reaper, EV_TIMEOUT, 0);
	if (conn_shutdown_done && conn_nlive == 0)
		conn_shutdown_done();
}

void conn_linger(struct conn *c, const char *reason)
{
	struct timeval tv = { CONN_LINGER_SECONDS, 0 };

	if (c->closed || c->lingering)
		return;
	c->lingering = 1;
	c->close_reason = reason;
	c->tr.ops->close(&c->tr); /* TLS: close_notify */
	if (shutdown(c->tr.fd, SHUT_WR) != 0) {
		conn_close(c, reason);
		return;
	}
	event_del(c->ev_write);
	event_add(c->ev_read, NULL);
	evtimer_add(c->ev_timer, &tv);
}

void conn_linger_event(struct conn *c, short what)
{
	char junk[4096];

	if (what & EV_TIMEOUT) {
		conn_close(c, c->close_reason);
		return;
	}
	for (int i = 0; i < 16; i++) {
		ssize_t r = read(c->tr.fd, junk, sizeof junk);

		if (r > 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_close(c, c->close_reason);
		return;
	}
}

static void conn_peer_name(const struct sockaddr *sa, socklen_t salen, char *out, size_t size)
{
	char host[48], port[8]; /* INET6_ADDRSTRLEN, "65535" */

	if (getnameinfo(sa, salen, host, sizeof host, port, sizeof port,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, size, "unknown");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(out, size, "[%s]:%s", host, port);
	else
		snprintf(out, size, "%s:%s", host, port);
}

/* Over max_connections (@p open held the places) or a per-IP limit (@p why):
 * say why in one best-effort write, then close. */
static void conn_refuse(int fd, const struct runtime *rt, const char *peer, const char *why,
			size_t open)
{
	char msg[300];
	int n = snprintf(msg, sizeof msg, "421 4.7.0 %s Too many connections, try later\r\n",
			 rt->hostname);

	/* best effort: the client may already be gone */
	if (n > 0 && (size_t)n < sizeof msg)
		(void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (why)
		log_msg(LOG_WARNING, "client=%s refused: 421 4.7.0 %s", peer, why);
	else
		log_msg(LOG_WARNING, "client=%s refused: 421 4.7.0 %s (%zu open, max_connections=%ld)",
			peer, conn_shutdown_done ? "shutting down" : "too many connections",
			open, rt->max_connections);
	close(fd);
}

void conn_accept(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct runtime *rt = runtime_current();
	char peer[64], id[24];
	const char *why = NULL;
	struct conn *c;
	size_t open = 0;
	int admit;

	conn_peer_name(sa, salen, peer, sizeof peer);
	if (conn_shutdown_done) {
		conn_refuse(fd, rt, peer, NULL, shared_conns_total(conn_nlive));
		return;
	}
	/* a place of max_connections, counted across the serving processes
	 * (shared.h); given back on every path below that does not link the
	 * connection, and by conn_close() for one that is */
	if (!shared_conns_admit(conn_nlive, (size_t)rt->max_connections, &open)) {
		conn_refuse(fd, rt, peer, NULL, open);
		return;
	}
	admit = conn_limits_admit(rt, peer, &why);
	if (!admit) {
		shared_conns_release();
		conn_refuse(fd, rt, peer, why, 0);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		log_msg(LOG_ERR, "client=%s out of memory", peer);
		if (admit == 2)
			anvil_disconnect(peer);
		shared_conns_release();
		close(fd);
		return;
	}
	c->anvil_counted = admit == 2;
	c->started = conn_limits_now();
	transport_plain_init(&c->tr, fd);
	c->ev_read = event_new(conn_base, fd, EV_READ | EV_PERSIST, conn_event_cb, c);
	c->ev_write = event_new(conn_base, fd, EV_WRITE | EV_PERSIST, conn_event_cb, c);
	c->ev_timer = evtimer_new(conn_base, conn_event_cb, c);
	if (!c->ev_read || !c->ev_write || !c->ev_timer) {
		log_msg(LOG_ERR, "client=%s out of memory", peer);
		if (c->anvil_counted)
			anvil_disconnect(peer);
		shared_conns_release();
		close(fd);
		conn_free(c);
		return;
	}
	/* the serving process's index keeps ids apart when there are several */
	if (shared_workers() > 1)
		snprintf(id, sizeof id, "%08lx%02x%06llx", conn_epoch, shared_index(),
			 ++conn_serial);
	else
		snprintf(id, sizeof id, "%08lx%06llx", conn_epoch, ++conn_serial);
	session_init(&c->s, rt, peer, id);
	c->s.fd = fd;
	c->next = conn_live;
	if (conn_live)
		conn_live->prev = c;
	conn_live = c;
	conn_nlive++; /* its place was taken above */
	log_msg(LOG_INFO, "client=%s session=%s connect", peer, id);
	session_greet(&c->s);
	conn_arm_timer(c);
	conn_step(c);
}

void conn_shutdown_all(void (*done)(void))
{
	struct conn *c, *next;

	conn_shutdown_done = done;
	if (conn_nlive == 0) {
		done();
		return;
	}
	for (c = conn_live; c; c = next) {
		next = c->next;
		c->stopping = 1;
		if (c->lingering)
			continue;
		if (c->handshaking) {
			conn_close(c, "shutdown");
			continue;
		}
		/* idle sessions get their 421 now; busy ones once their reply is out */
		conn_step(c);
	}
}

void conn_close_all(void)
{
	while (conn_live) {
		conn_goodbye(conn_live);
		conn_close(conn_live, "shutdown-timeout");
	}
}
