/*
 * transport.h - the byte stream under a connection, as a vtable so that
 * STARTTLS (RFC 3207) swaps plain read/write for TLS ones on the same socket.
 *
 * All operations are non-blocking and report SC_WANT_READ / SC_WANT_WRITE when
 * the socket is not ready; conn.c turns those into libevent registrations.
 */
#ifndef SMTPCERTD_TRANSPORT_H
#define SMTPCERTD_TRANSPORT_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

struct transport;

struct transport_ops {
	const char *name;
	/** @return SC_OK (*n > 0), SC_WANT_READ, SC_WANT_WRITE, SC_EOF, SC_ERR_* */
	sc_status (*read)(struct transport *t, void *buf, size_t len, size_t *n);
	sc_status (*write)(struct transport *t, const void *buf, size_t len, size_t *n);
	/** @return non-zero when input is buffered above the socket (epoll can't see it) */
	int (*pending)(const struct transport *t);
	/** End the layer (TLS: close_notify, free the session); never closes the fd. */
	void (*close)(struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
	int fd;      /**< owned by the connection */
	sc_tls *tls; /**< TLS layer, NULL while plain */
};

extern const struct transport_ops transport_plain_ops;
extern const struct transport_ops transport_tls_ops;

/** Start as plain TCP on @p fd. */
void transport_plain_init(struct transport *t, int fd);

/** Switch @p t to TLS as a server with @p ctx (STARTTLS). The handshake is then
 *  driven by transport_tls_handshake(). */
SC_MUST_CHECK sc_status transport_tls_start(struct transport *t, sc_tls_ctx *ctx);

/** @return SC_OK when done, SC_WANT_READ, SC_WANT_WRITE, or SC_ERR_TLS. */
SC_MUST_CHECK sc_status transport_tls_handshake(struct transport *t);

#endif
