/*
 * transport_tls.c - TLS transport (see transport.h) over libsmtpcert's sc_tls,
 * which keeps OpenSSL out of the daemon. Owns the sc_tls of a connection after
 * STARTTLS; the socket stays the connection's. Daemon process.
 */
#include "transport.h"

static sc_status tls_read(struct transport *t, void *buf, size_t len, size_t *n)
{
	return sc_tls_read(t->tls, buf, len, n);
}

static sc_status tls_write(struct transport *t, const void *buf, size_t len, size_t *n)
{
	return sc_tls_write(t->tls, buf, len, n);
}

static int tls_pending(const struct transport *t)
{
	return sc_tls_pending(t->tls);
}

static void tls_close(struct transport *t)
{
	if (!t->tls)
		return;
	sc_tls_shutdown(t->tls);
	sc_tls_free(t->tls);
	t->tls = NULL;
	t->ops = &transport_plain_ops;
}

const struct transport_ops transport_tls_ops = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.close = tls_close,
};

sc_status transport_tls_start(struct transport *t, sc_tls_ctx *ctx)
{
	SC_ENSURE_ARG(ctx);
	SC_TRY(sc_tls_new(ctx, t->fd, NULL, &t->tls));
	t->ops = &transport_tls_ops;
	return SC_OK;
}

sc_status transport_tls_handshake(struct transport *t)
{
	sc_status rc = sc_tls_handshake(t->tls);

	if (rc == SC_OK || rc == SC_WANT_READ || rc == SC_WANT_WRITE)
		return rc;
	return SC_ERR_TLS;
}
