/*
 * transport_plain.c - plain TCP transport (see transport.h): read(2)/send(2)
 * on a non-blocking socket. Daemon process.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "transport.h"

static sc_status plain_read(struct transport *t, void *buf, size_t len, size_t *n)
{
	for (;;) {
		ssize_t r = read(t->fd, buf, len);

		if (r > 0) {
			*n = (size_t)r;
			return SC_OK;
		}
		if (r == 0)
			return SC_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return SC_WANT_READ;
		return errno == ECONNRESET ? SC_EOF : SC_ERR_IO;
	}
}

static sc_status plain_write(struct transport *t, const void *buf, size_t len, size_t *n)
{
	for (;;) {
		/* MSG_NOSIGNAL: a vanished peer is an error status, not SIGPIPE */
		ssize_t r = send(t->fd, buf, len, MSG_NOSIGNAL);

		if (r >= 0) {
			*n = (size_t)r;
			return SC_OK;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return SC_WANT_WRITE;
		return SC_ERR_IO;
	}
}

static int plain_pending(const struct transport *t)
{
	return 0;
}

static void plain_close(struct transport *t)
{
}

const struct transport_ops transport_plain_ops = {
	.name = "plain",
	.read = plain_read,
	.write = plain_write,
	.pending = plain_pending,
	.close = plain_close,
};

void transport_plain_init(struct transport *t, int fd)
{
	t->ops = &transport_plain_ops;
	t->fd = fd;
	t->tls = NULL;
}
