/*
 * listener.c - binding the `listen` addresses and accepting connections (see
 * listener.h). Owns the listening sockets and their events. Daemon process.
 *
 * Accepting uses a plain persistent read event per socket. When the process runs
 * out of file descriptors (EMFILE/ENFILE) the pending connection cannot be taken,
 * so the socket would stay readable and the loop would spin: accepting is then
 * paused for a second instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "listener.h"
#include "log.h"

#define LISTENER_BACKLOG 1024
/* accepts per readiness event, so one listener does not starve the sessions */
#define LISTENER_BURST 64

struct listener {
	int fd;
	struct event *ev;
	char name[80];
};

static struct listener listeners[LISTENER_MAX];
static size_t nlisteners;
static struct event *listener_resume_ev;

sc_status listener_split(const char *spec, char *host, size_t hostlen, char *port,
			 size_t portlen)
{
	const char *colon, *h = spec;
	size_t hl;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':')
			return SC_ERR_SYNTAX;
		h = spec + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || strchr(spec, ':') != colon)
			return SC_ERR_SYNTAX;
		hl = (size_t)(colon - spec);
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0')
		return SC_ERR_SYNTAX;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return SC_ERR_SYNTAX;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	if (strcmp(host, "*") == 0 || host[0] == '\0')
		snprintf(host, hostlen, "0.0.0.0");
	return SC_OK;
}

static void listener_describe(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, size, "?");
		return;
	}
	snprintf(out, size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static sc_status listener_bind_one(const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[NI_MAXHOST], port[16];
	int fd, on = 1, gai;

	if (nlisteners >= LISTENER_MAX) {
		snprintf(err, errlen, "listen: at most %d addresses", LISTENER_MAX);
		return SC_ERR_CONFIG;
	}
	if (listener_split(spec, host, sizeof host, port, sizeof port) != SC_OK) {
		snprintf(err, errlen, "listen: %s: expected ADDR:PORT or [IPV6]:PORT", spec);
		return SC_ERR_CONFIG;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "listen: %s: %s", spec, gai_strerror(gai));
		return SC_ERR_CONFIG;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen: %s: socket: %s", spec, strerror(errno));
		freeaddrinfo(res);
		return SC_ERR_NETWORK;
	}
	/* restart without waiting for TIME_WAIT; v6 sockets serve v6 only so that
	 * "0.0.0.0:25" and "[::]:25" can both be listed */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (res->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, LISTENER_BACKLOG) != 0) {
		snprintf(err, errlen, "listen: %s: %s", spec, strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return SC_ERR_NETWORK;
	}
	freeaddrinfo(res);
	listeners[nlisteners].fd = fd;
	listener_describe(fd, listeners[nlisteners].name, sizeof listeners[nlisteners].name);
	nlisteners++;
	return SC_OK;
}

sc_status listener_bind_all(const char *const *specs, size_t n, char *err, size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "listen: no address configured");
		return SC_ERR_CONFIG;
	}
	for (size_t i = 0; i < n; i++) {
		sc_status rc = listener_bind_one(specs[i], err, errlen);

		if (rc != SC_OK) {
			listener_close_all();
			return rc;
		}
	}
	return SC_OK;
}

static void listener_pause(int on)
{
	struct timeval second = { 1, 0 };

	for (size_t i = 0; i < nlisteners; i++) {
		if (!listeners[i].ev)
			continue;
		if (on)
			event_del(listeners[i].ev);
		else
			event_add(listeners[i].ev, NULL);
	}
	if (on)
		evtimer_add(listener_resume_ev, &second);
}

static void listener_resume(evutil_socket_t fd, short what, void *arg)
{
	log_msg(LOG_INFO, "accepting connections again");
	listener_pause(0);
}

/*
 * No Nagle delay on a client's connection (RFC 896; RFC 1122 4.2.3.4 allows
 * turning it off). The daemon already sends a round's replies in one write
 * (conn_io.c), so Nagle has nothing to coalesce; it could only hold a write's
 * tail (one that did not fit the socket buffer at once) behind unacknowledged
 * data until the client's ACK, which a client waiting for the whole answer
 * may delay. The fixed-reply ceiling of bench/ sets it too, and with it the
 * connections of a 256 x 16 run are served more evenly (docs/performance.md,
 * sixth round). A refusal is harmless: only some replies may wait.
 */
void listener_nodelay(int fd, const struct sockaddr *sa)
{
	int on = 1;

	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

static void listener_accept(evutil_socket_t lfd, short what, void *arg)
{
	for (int i = 0; i < LISTENER_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			listener_nodelay(fd, (const struct sockaddr *)&ss);
			conn_accept(fd, (struct sockaddr *)&ss, len);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_msg(LOG_WARNING, "accept: %s (%zu connections): pausing for a second",
				strerror(errno), conn_count());
			listener_pause(1);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			log_msg(LOG_WARNING, "accept: %s", strerror(errno));
		}
		return;
	}
}

sc_status listener_start(struct event_base *base)
{
	listener_resume_ev = evtimer_new(base, listener_resume, NULL);
	if (!listener_resume_ev)
		return SC_ERR_NOMEM;
	for (size_t i = 0; i < nlisteners; i++) {
		listeners[i].ev = event_new(base, listeners[i].fd, EV_READ | EV_PERSIST,
					    listener_accept, NULL);
		if (!listeners[i].ev || event_add(listeners[i].ev, NULL) != 0)
			return SC_ERR_NOMEM;
	}
	return SC_OK;
}

void listener_close_all(void)
{
	for (size_t i = 0; i < nlisteners; i++) {
		if (listeners[i].ev)
			event_free(listeners[i].ev);
		listeners[i].ev = NULL;
		close(listeners[i].fd);
	}
	nlisteners = 0;
	if (listener_resume_ev)
		event_free(listener_resume_ev);
	listener_resume_ev = NULL;
}

const char *listener_name(size_t i)
{
	return i < nlisteners ? listeners[i].name : NULL;
}
