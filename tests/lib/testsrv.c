/*
 * testsrv.c - line I/O for scripted test servers (see testsrv.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testsrv.h"

static int ts_getc(int fd, sc_tls *tls)
{
	unsigned char c;

	if (tls) {
		size_t n;

		return sc_tls_read(tls, &c, 1, &n) == SC_OK && n == 1 ? c : -1;
	}
	return recv(fd, &c, 1, 0) == 1 ? c : -1;
}

int ts_line(int fd, sc_tls *tls, char *buf, size_t size)
{
	size_t n = 0;
	int c;

	while ((c = ts_getc(fd, tls)) >= 0) {
		if (c == '\n') {
			if (n && buf[n - 1] == '\r')
				n--;
			buf[n] = '\0';
			return 0;
		}
		if (n + 1 < size)
			buf[n++] = (char)c;
	}
	return -1;
}

void ts_send(int fd, sc_tls *tls, const char *data, size_t len)
{
	size_t n;

	if (tls) {
		while (len && sc_tls_write(tls, data, len, &n) == SC_OK) {
			data += n;
			len -= n;
		}
		return;
	}
	while (len) {
		ssize_t r = send(fd, data, len, MSG_NOSIGNAL);

		if (r <= 0)
			return;
		data += (size_t)r;
		len -= (size_t)r;
	}
}

void ts_lines(int fd, sc_tls *tls, const char *text)
{
	char out[8192];
	size_t n = 0;

	/* room for a "\r\n" pair from the text plus the final CRLF */
	for (; *text && n + 4 <= sizeof out; text++) {
		if (*text == '\n')
			out[n++] = '\r';
		out[n++] = *text;
	}
	out[n++] = '\r';
	out[n++] = '\n';
	ts_send(fd, tls, out, n);
}

/* Bind 127.0.0.1:0 (the kernel picks a free port) and report the port. */
static int ts_bind(char port[8])
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
		close(fd);
		return -1;
	}
	snprintf(port, 8, "%u", ntohs(sin.sin_port));
	return fd;
}

int ts_listen(char port[8])
{
	int fd = ts_bind(port);

	if (fd >= 0 && listen(fd, 1) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int ts_dead_port(char port[8])
{
	int fd = ts_bind(port);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}
