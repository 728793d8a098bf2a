/*
 * proxy_conn.c - the backend connection of proxy mode (see proxy_conn.h).
 * Owns the bufferevent and the name-resolution job. Daemon process: the
 * event loop, plus getaddrinfo(3) of a host name on a worker thread.
 *
 * The bufferevent runs its callbacks deferred (BEV_OPT_DEFER_CALLBACKS), from
 * the loop and never inside a call of ours, so proxy.c may write, expect or
 * close from any of its own functions without re-entering itself.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "proxy_conn.h"
#include "proxy_hdr.h"
#include "worker.h"

/* getaddrinfo() of a host name on a worker thread (worker.h cancellation: the
 * connection forgets the job by clearing job->pc; done frees it). */
struct proxy_resolve {
	struct proxy_conn *pc;
	char host[256];
	char port[8];
	struct addrinfo *res;
	int rc;
};

struct event_base *proxy_conn_base(void)
{
	struct worker *w = worker_default();

	return w ? worker_base(w) : NULL;
}

static void proxy_conn_fail(struct proxy_conn *pc, sc_status why, const char *detail)
{
	const struct proxy_conn_ops *ops = pc->ops;

	proxy_conn_close(pc, 0);
	ops->error(pc->arg, why, detail);
}

static void proxy_conn_timeouts(struct proxy_conn *pc)
{
	struct timeval tv = { pc->timeout > 0 ? pc->timeout : 60, 0 };

	/* write: connect and output that does not drain; read: only while a
	 * reply is due, so an idle backend between commands is no error */
	bufferevent_set_timeouts(pc->bev, pc->expecting ? &tv : NULL, &tv);
}

/* Take complete lines of the reply being read. @return 1 when a whole reply
 * is in *pc->cur, 0 when more input is needed, -1 on a protocol error. */
static int proxy_conn_lines(struct proxy_conn *pc, struct evbuffer *in)
{
	char line[PROXY_LINE_MAX + 2];

	for (;;) {
		size_t eol = 0, len;
		struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
		int code, last;

		if (p.pos < 0)
			return evbuffer_get_length(in) > PROXY_LINE_MAX ? -1 : 0;
		len = (size_t)p.pos;
		if (len > PROXY_LINE_MAX)
			return -1;
		if (evbuffer_remove(in, line, len + eol) != (int)(len + eol))
			return -1;
		code = proxy_reply_line(line, len, &last);
		if (code < 0 || (pc->cur->nlines > 0 && code != pc->cur->code) ||
		    pc->cur->nlines >= PROXY_REPLY_LINES || pc->cur->len + len + 1 > PROXY_REPLY_MAX)
			return -1;
		pc->cur->code = code;
		pc->cur->off[pc->cur->nlines++] = (uint16_t)pc->cur->len;
		memcpy(pc->cur->text + pc->cur->len, line, len);
		pc->cur->len += len;
		pc->cur->text[pc->cur->len++] = '\n';
		if (last)
			return 1;
	}
}

static void proxy_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *pc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (pc->bev == bev && evbuffer_get_length(in) > 0) {
		int r;

		if (!pc->expecting) {
			/* e.g. "421 4.4.2 Error: timeout exceeded" before a close */
			proxy_conn_fail(pc, SC_EOF, "unexpected output from the backend");
			return;
		}
		r = proxy_conn_lines(pc, in);
		if (r < 0) {
			proxy_conn_fail(pc, SC_ERR_PROTOCOL, "malformed reply from the backend");
			return;
		}
		if (r == 0)
			return;
		pc->expecting = 0;
		proxy_conn_timeouts(pc);
		pc->ops->reply(pc->arg, pc->cur);
		/* ops->reply may have closed the connection (cur is gone then) or
		 * sent a command */
		if (pc->bev != bev)
			return;
		pc->cur->nlines = 0;
		pc->cur->len = 0;
		if (!pc->expecting)
			return; /* the rest waits for proxy_conn_expect() */
	}
}

static void proxy_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *pc = arg;

	pc->ops->drained(pc->arg);
}

static sc_status proxy_conn_connect(struct proxy_conn *pc, const struct addrinfo *ai);

static void proxy_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct proxy_conn *pc = arg;

	if (what & BEV_EVENT_CONNECTED) {
		pc->connected = 1;
		return;
	}
	if (!pc->connected && pc->next) {
		/* refused or silent: the backend's next address (a name with
		 * ::1 and 127.0.0.1, one of them not listening) */
		const struct addrinfo *ai = pc->next;

		bufferevent_free(pc->bev);
		pc->bev = NULL;
		if (proxy_conn_connect(pc, ai) != SC_OK)
			pc->ops->error(pc->arg, SC_ERR_TEMP, "cannot connect");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		proxy_conn_fail(pc, SC_ERR_TIMEOUT, "backend timeout");
	else if (what & BEV_EVENT_EOF)
		proxy_conn_fail(pc, SC_EOF, "backend closed the connection");
	else
		proxy_conn_fail(pc, SC_ERR_TEMP, strerror(EVUTIL_SOCKET_ERROR()));
}

/* @return SC_OK (the outcome comes through ops) or a failure the caller
 * reports; the connection is closed then. */
static sc_status proxy_conn_connect(struct proxy_conn *pc, const struct addrinfo *ai)
{
	pc->next = ai->ai_next;
	pc->connected = 0;
	pc->bev = bufferevent_socket_new(pc->base, -1,
					 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!pc->bev) {
		proxy_conn_close(pc, 0);
		return SC_ERR_NOMEM;
	}
	bufferevent_setcb(pc->bev, proxy_conn_read_cb, proxy_conn_write_cb, proxy_conn_event_cb, pc);
	bufferevent_setwatermark(pc->bev, EV_WRITE, PROXY_OUT_LOW, 0);
	/* the backend's greeting (RFC 5321 4.3.1) is the first reply due */
	pc->expecting = 1;
	proxy_conn_timeouts(pc);
	if (bufferevent_enable(pc->bev, EV_READ | EV_WRITE) != 0 ||
	    (pc->prelen && bufferevent_write(pc->bev, pc->pre, pc->prelen) != 0)) {
		proxy_conn_close(pc, 0);
		return SC_ERR_NOMEM;
	}
	/* a refused connection is reported later, through the event callback */
	if (bufferevent_socket_connect(pc->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
		proxy_conn_close(pc, 0);
		return SC_ERR_TEMP;
	}
	return SC_OK;
}

static void proxy_resolve_work(void *arg)
{
	struct proxy_resolve *j = arg;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };

	j->rc = getaddrinfo(j->host, j->port, &hints, &j->res);
}

static void proxy_resolve_done(void *arg)
{
	struct proxy_resolve *j = arg;
	struct proxy_conn *pc = j->pc;

	if (pc) {
		pc->job = NULL;
		if (j->rc != 0 || !j->res) {
			proxy_conn_fail(pc, SC_ERR_TEMP, gai_strerror(j->rc));
		} else {
			pc->addrs = j->res;
			j->res = NULL;
			if (proxy_conn_connect(pc, pc->addrs) != SC_OK)
				pc->ops->error(pc->arg, SC_ERR_TEMP, "cannot connect");
		}
	}
	if (j->res)
		freeaddrinfo(j->res);
	free(j);
}

sc_status proxy_conn_open(struct proxy_conn *pc, const char *host, const char *port, long timeout,
			  const uint8_t *pre, size_t prelen, const struct proxy_conn_ops *ops,
			  void *arg)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct proxy_resolve *j;
	struct worker *w = worker_default();

	SC_ENSURE(host && port && ops && prelen <= sizeof pc->pre && !pc->open, SC_ERR_ARG);
	pc->base = proxy_conn_base();
	if (!pc->base)
		return SC_ERR_TEMP;
	pc->ops = ops;
	pc->arg = arg;
	pc->timeout = timeout;
	pc->prelen = prelen;
	if (prelen)
		memcpy(pc->pre, pre, prelen);
	if (!pc->cur && !(pc->cur = malloc(sizeof *pc->cur)))
		return SC_ERR_NOMEM;
	pc->cur->nlines = 0;
	pc->cur->len = 0;
	pc->open = 1;
	if (getaddrinfo(host, port, &hints, &res) == 0 && res) {
		pc->addrs = res;
		return proxy_conn_connect(pc, res);
	}
	/* a host name: resolve on a worker thread (the loop never blocks) */
	j = calloc(1, sizeof *j);
	if (!j) {
		pc->open = 0;
		return SC_ERR_NOMEM;
	}
	j->pc = pc;
	snprintf(j->host, sizeof j->host, "%s", host);
	snprintf(j->port, sizeof j->port, "%s", port);
	if (worker_submit(w, proxy_resolve_work, proxy_resolve_done, j) != SC_OK) {
		free(j);
		pc->open = 0;
		return SC_ERR_TEMP;
	}
	pc->job = j;
	return SC_OK;
}

sc_status proxy_conn_write(struct proxy_conn *pc, const void *data, size_t len)
{
	if (!pc->open)
		return SC_ERR_IO;
	if (!pc->bev)
		return SC_ERR_IO; /* still resolving: proxy.c sends nothing before the greeting */
	return bufferevent_write(pc->bev, data, len) == 0 ? SC_OK : SC_ERR_NOMEM;
}

sc_status proxy_conn_command(struct proxy_conn *pc, const char *line, size_t len)
{
	SC_TRY(proxy_conn_write(pc, line, len));
	SC_TRY(proxy_conn_write(pc, "\r\n", 2));
	proxy_conn_expect(pc);
	return SC_OK;
}

void proxy_conn_expect(struct proxy_conn *pc)
{
	if (!pc->bev)
		return;
	pc->expecting = 1;
	proxy_conn_timeouts(pc);
	/* a reply may be buffered already: the (deferred) read callback takes it */
	if (evbuffer_get_length(bufferevent_get_input(pc->bev)) > 0)
		bufferevent_trigger(pc->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
}

size_t proxy_conn_pending(const struct proxy_conn *pc)
{
	return pc->bev ? evbuffer_get_length(bufferevent_get_output(pc->bev)) : 0;
}

void proxy_conn_close(struct proxy_conn *pc, int say_quit)
{
	if (pc->job) {
		pc->job->pc = NULL; /* its done frees it */
		pc->job = NULL;
	}
	if (pc->bev) {
		evutil_socket_t fd = bufferevent_getfd(pc->bev);

		/* RFC 5321 4.1.1.10, best effort: only when nothing else is queued */
		if (say_quit && fd >= 0 && proxy_conn_pending(pc) == 0)
			(void)!send(fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
		bufferevent_free(pc->bev);
		pc->bev = NULL;
	}
	free(pc->cur);
	pc->cur = NULL;
	if (pc->addrs)
		freeaddrinfo(pc->addrs);
	pc->addrs = NULL;
	pc->next = NULL;
	pc->connected = 0;
	pc->expecting = 0;
	pc->open = 0;
}
