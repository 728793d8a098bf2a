/*
 * ceiling.c - the fixed-reply SMTP server of bench/run: the ceiling of this machine
 * for the CERT exchange. One thread, epoll, no TLS, no lookups: a banner, an EHLO
 * reply, a constant ~1.7 KB PEM-shaped 250 reply to any CERT line, 221 to QUIT and
 * 500 to anything else. Pipelined commands (RFC 2920) are answered with one write
 * per read. Not part of the daemon; loopback only.
 *
 * Usage: ceiling PORT [CERT.pem]
 *   With CERT.pem the reply carries that file's first certificate, so its size is
 *   exactly what smtpcertd sends for the same certificate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_ 1024
#define REPLY_MAX 8192
#define OUT_MAX (256 * 1024)

struct conn {
	int fd;
	unsigned short rlen;
	char *pend; /* unsent output when the socket was full; reading pauses */
	size_t plen, poff;
	char rbuf[LINE_MAX_];
};

static char reply[REPLY_MAX];
static size_t reply_len;
static char out[OUT_MAX];

static void die(const char *what)
{
	fprintf(stderr, "ceiling: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void add(const char *s, size_t n)
{
	if (reply_len + n > sizeof reply) {
		fprintf(stderr, "ceiling: reply over %d bytes\n", REPLY_MAX);
		exit(1);
	}
	memcpy(reply + reply_len, s, n);
	reply_len += n;
}

/* "250-" + each PEM line, then "250 2.0.0 OK" (INTERFACE.md, the CERT reply). */
static void build_reply(const char *pem_path)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[256];

	if (pem_path) {
		FILE *f = fopen(pem_path, "r");
		int in = 0;

		if (!f)
			die(pem_path);
		while (fgets(line, sizeof line, f)) {
			size_t n = strcspn(line, "\r\n");

			if (!strncmp(line, "-----BEGIN CERTIFICATE-----", 27))
				in = 1;
			if (in) {
				add("250-", 4);
				add(line, n);
				add("\r\n", 2);
			}
			if (in && !strncmp(line, "-----END CERTIFICATE-----", 25))
				break;
		}
		fclose(f);
	} else {
		add("250------BEGIN CERTIFICATE-----\r\n", 33);
		for (int i = 0; i < 23; i++) {
			add("250-", 4);
			for (int j = 0; j < 64; j++)
				add(&b64[(i * 7 + j) % 64], 1);
			add("\r\n", 2);
		}
		add("250------END CERTIFICATE-----\r\n", 31);
	}
	add("250 2.0.0 OK\r\n", 14);
}

static int flush_pending(struct conn *c)
{
	while (c->poff < c->plen) {
		ssize_t n = write(c->fd, c->pend + c->poff, c->plen - c->poff);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		c->poff += (size_t)n;
	}
	free(c->pend);
	c->pend = NULL;
	c->plen = c->poff = 0;
	return 1;
}

/* Queue @p s for the connection; keep what the socket does not take. */
static int emit(struct conn *c, size_t *o, const char *s, size_t n)
{
	if (*o + n > sizeof out)
		return -1;
	memcpy(out + *o, s, n);
	*o += n;
	return 0;
}

static int on_line(struct conn *c, size_t *o, const char *l, size_t n)
{
	if (n >= 5 && !strncasecmp(l, "CERT ", 5))
		return emit(c, o, reply, reply_len);
	if (n >= 4 && (!strncasecmp(l, "EHLO", 4) || !strncasecmp(l, "HELO", 4)))
		return emit(c, o, "250-ceiling.test\r\n250-PIPELINING\r\n250 CERT\r\n", 44);
	if (n >= 4 && !strncasecmp(l, "QUIT", 4)) {
		(void)emit(c, o, "221 2.0.0 Bye\r\n", 15);
		return 1;
	}
	return emit(c, o, "500 5.5.2 Unknown\r\n", 19);
}

/* @return -1 to close the connection. */
static int on_readable(struct conn *c, int ep)
{
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
		size_t start = 0, o = 0;
		int quit = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		c->rlen += (unsigned short)n;
		for (size_t i = 0; i < c->rlen && !quit; i++) {
			if (c->rbuf[i] != '\n')
				continue;
			size_t len = i - start;

			if (len && c->rbuf[i - 1] == '\r')
				len--;
			if (o + REPLY_MAX > sizeof out)
				break; /* rest after this write */
			quit = on_line(c, &o, c->rbuf + start, len);
			if (quit < 0)
				return -1;
			start = i + 1;
		}
		if (start == 0 && c->rlen == sizeof c->rbuf)
			return -1; /* line too long */
		memmove(c->rbuf, c->rbuf + start, c->rlen - start);
		c->rlen = (unsigned short)(c->rlen - start);
		if (o) {
			c->pend = malloc(o);
			if (!c->pend)
				return -1;
			memcpy(c->pend, out, o);
			c->plen = o;
			c->poff = 0;
			int r = flush_pending(c);

			if (r < 0)
				return -1;
			if (r == 0) {
				struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

				(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				return 0;
			}
		}
		if (quit)
			return -1;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event ev, evs[256];
	struct rlimit rl;
	char *end;
	long port;
	int lfd, ep, one = 1;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: ceiling PORT [CERT.pem]\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (end == argv[1] || *end || port < 1 || port > 65535) {
		fprintf(stderr, "ceiling: bad port %s\n", argv[1]);
		return 2;
	}
	build_reply(argc > 2 ? argv[2] : NULL);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0)
		die("listen");
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
		die("epoll");
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int r;

			if (!c) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof *c);
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
							 sizeof one);
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0 ||
					    write(fd, "220 ceiling.test ESMTP\r\n", 24) != 24) {
						close(fd);
						free(c);
					}
				}
				continue;
			}
			if (c->pend) {
				r = flush_pending(c);
				if (r > 0) {
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
					r = on_readable(c, ep); /* input read while paused */
				}
			} else {
				r = on_readable(c, ep);
			}
			if (r < 0) {
				close(c->fd);
				free(c->pend);
				free(c);
			}
		}
	}
}
