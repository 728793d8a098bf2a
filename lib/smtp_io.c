/*
 * smtp_io.c - the transport half of the SMTP client (smtp.c): connecting to each
 * address of a host in turn, bounded reads into the session's sc_buf, writes,
 * reading one complete reply, and driving the TLS handshake. Every wait is a
 * poll() on the non-blocking socket with the remaining time of one deadline, so
 * a server trickling one byte a minute cannot hold the client past timeout_ms.
 * Runs in the CLI's process.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtpcert/smtpcert.h"
#include "smtp_int.h"

void smtp_seterr(sc_smtp *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->err || !s->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
}

long long smtp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for @p events until @p deadline. @return SC_OK, SC_ERR_TIMEOUT, SC_ERR_NETWORK. */
static sc_status wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		long long left = deadline - smtp_now_ms();
		int r;

		if (left <= 0)
			return SC_ERR_TIMEOUT;
		r = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
		if (r > 0)
			return SC_OK;
		if (r == 0)
			return SC_ERR_TIMEOUT;
		if (errno != EINTR)
			return SC_ERR_NETWORK;
	}
}

/* Server text for a message: printable ASCII only, bounded. */
void smtp_clean(char *out, size_t size, const char *in)
{
	size_t i = 0;

	for (; *in && i + 1 < size; in++)
		out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[i] = '\0';
}

sc_status smtp_fill(sc_smtp *s, long long deadline)
{
	char *p;
	size_t room, n;
	sc_status st;

	if (sc_buf_reserve(s->in, &p, &room) != SC_OK) {
		smtp_seterr(s, "%s: reply too long", s->host);
		return SC_ERR_PROTOCOL;
	}
	for (;;) {
		if (s->tls) {
			st = sc_tls_read(s->tls, p, room, &n);
			if (st == SC_OK) {
				sc_buf_commit(s->in, n);
				return SC_OK;
			}
			if (st == SC_EOF) {
				smtp_seterr(s, "%s: connection closed by the server", s->host);
				return SC_EOF;
			}
			if (st != SC_WANT_READ && st != SC_WANT_WRITE) {
				smtp_seterr(s, "%s: TLS: %s", s->host, sc_tls_error(s->tls));
				return st;
			}
			st = wait_fd(s->fd, st == SC_WANT_READ ? POLLIN : POLLOUT, deadline);
		} else {
			ssize_t r = recv(s->fd, p, room, 0);

			if (r > 0) {
				sc_buf_commit(s->in, (size_t)r);
				return SC_OK;
			}
			if (r == 0) {
				smtp_seterr(s, "%s: connection closed by the server", s->host);
				return SC_EOF;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				smtp_seterr(s, "%s: read: %s", s->host, strerror(errno));
				return SC_ERR_NETWORK;
			}
			st = wait_fd(s->fd, POLLIN, deadline);
		}
		if (st == SC_ERR_TIMEOUT)
			smtp_seterr(s, "%s: timed out waiting for the server", s->host);
		else if (st != SC_OK)
			smtp_seterr(s, "%s: poll: %s", s->host, strerror(errno));
		if (st != SC_OK)
			return st;
	}
}

/* Read one complete reply into @p r (reset first). */
sc_status smtp_read_reply(sc_smtp *s, sc_reply *r)
{
	long long deadline = smtp_now_ms() + s->timeout_ms;

	sc_reply_reset(r);
	for (;;) {
		const char *line;
		size_t len, used;
		int bare_lf;
		sc_status st = sc_buf_line(s->in, SMTP_LINE_MAX, &line, &len, &used, &bare_lf);

		if (st == SC_AGAIN) {
			st = smtp_fill(s, deadline);
			if (st == SC_EOF)
				return SC_ERR_NETWORK;
			SC_TRY(st);
			continue;
		}
		if (st != SC_OK) {
			smtp_seterr(s, "%s: reply line longer than %d octets", s->host, SMTP_LINE_MAX);
			return SC_ERR_PROTOCOL;
		}
		st = sc_reply_feed(r, line, len);
		if (st == SC_ERR_PROTOCOL) {
			char text[80];

			snprintf(text, sizeof text, "%.*s", (int)(len > 60 ? 60 : len), line);
			smtp_clean(text, sizeof text, text);
			smtp_seterr(s, "%s: malformed reply line \"%s\"", s->host, text);
		} else if (st == SC_ERR_TOO_LONG || st == SC_ERR_TOO_MANY) {
			smtp_seterr(s, "%s: reply too long", s->host);
		}
		sc_buf_consume(s->in, used);
		if (st == SC_OK)
			return SC_OK;
		if (st != SC_AGAIN)
			return st == SC_ERR_PROTOCOL ? st : SC_ERR_PROTOCOL;
	}
}

sc_status smtp_write_all(sc_smtp *s, const char *data, size_t len)
{
	long long deadline = smtp_now_ms() + s->timeout_ms;
	sc_status st;

	while (len) {
		size_t n = 0;

		if (s->tls) {
			st = sc_tls_write(s->tls, data, len, &n);
			if (st == SC_WANT_READ || st == SC_WANT_WRITE) {
				st = wait_fd(s->fd, st == SC_WANT_READ ? POLLIN : POLLOUT, deadline);
			} else if (st != SC_OK) {
				smtp_seterr(s, "%s: TLS: %s", s->host, sc_tls_error(s->tls));
				return st;
			}
		} else {
			ssize_t r = send(s->fd, data, len, MSG_NOSIGNAL);

			st = SC_OK;
			if (r >= 0) {
				n = (size_t)r;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				st = wait_fd(s->fd, POLLOUT, deadline);
			} else {
				smtp_seterr(s, "%s: write: %s", s->host, strerror(errno));
				return SC_ERR_NETWORK;
			}
		}
		if (st == SC_ERR_TIMEOUT)
			smtp_seterr(s, "%s: timed out writing to the server", s->host);
		if (st != SC_OK)
			return st;
		data += n;
		len -= n;
	}
	return SC_OK;
}

sc_status smtp_do_command(sc_smtp *s, const char *line, sc_reply *r)
{
	char buf[SMTP_LINE_MAX + 2];
	size_t len = strlen(line);

	/* One command per call: CR, LF or NUL inside would smuggle more. */
	if (len > SMTP_LINE_MAX - 2 || strpbrk(line, "\r\n"))
		return SC_ERR_ARG;
	memcpy(buf, line, len);
	memcpy(buf + len, "\r\n", 2);
	SC_TRY(smtp_write_all(s, buf, len + 2));
	return smtp_read_reply(s, r);
}

/* Try each address of @p host in turn; on SC_OK s->fd is connected. */
sc_status smtp_connect_any(sc_smtp *s, const char *host, const char *port)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	sc_status st = SC_ERR_NETWORK;
	int r;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		smtp_seterr(s, "%s: cannot resolve: %s", s->host, gai_strerror(r));
		return r == EAI_AGAIN ? SC_ERR_TEMP : SC_ERR_NETWORK;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		char addr[NI_MAXHOST] = "?";
		long long deadline = smtp_now_ms() + s->timeout_ms;
		int fd, soerr = 0;
		socklen_t sl = sizeof soerr;

		getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			smtp_seterr(s, "%s[%s]:%s: socket: %s", s->host, addr, port, strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS &&
		     (st = wait_fd(fd, POLLOUT, deadline)) == SC_OK &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)) {
			s->fd = fd;
			freeaddrinfo(res);
			return SC_OK;
		}
		if (st == SC_ERR_TIMEOUT)
			smtp_seterr(s, "%s[%s]:%s: connect timed out", s->host, addr, port);
		else
			smtp_seterr(s, "%s[%s]:%s: connect: %s", s->host, addr, port,
			       strerror(soerr ? soerr : errno));
		if (st != SC_ERR_TIMEOUT)
			st = SC_ERR_NETWORK;
		close(fd);
	}
	freeaddrinfo(res);
	return st;
}

/* Drive the client handshake on s->tls to the end under one deadline. */
sc_status smtp_tls_handshake(sc_smtp *s)
{
	long long deadline;
	sc_status st;

	deadline = smtp_now_ms() + s->timeout_ms;
	for (;;) {
		st = sc_tls_handshake(s->tls);
		if (st == SC_OK)
			return SC_OK;
		if (st == SC_WANT_READ || st == SC_WANT_WRITE) {
			st = wait_fd(s->fd, st == SC_WANT_READ ? POLLIN : POLLOUT, deadline);
			if (st == SC_OK)
				continue;
			smtp_seterr(s, "%s: TLS handshake timed out", s->host);
			return st;
		}
		smtp_seterr(s, "%s: TLS handshake failed: %s", s->host, sc_tls_error(s->tls));
		return st;
	}
}
