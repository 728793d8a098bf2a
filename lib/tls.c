/*
 * tls.c - TLS sessions over a socket, the only place the daemon's and the CLI's
 * TLS goes through OpenSSL. Owns the SSL_CTX (reference counted: a reloaded
 * daemon drops its old context while sessions on it finish) and one SSL per
 * session. Runs in the daemon (non-blocking, thousands of sessions) and the CLI.
 *
 * Policy (RFC 8996, RFC 9325 / BCP 195): TLS 1.2 and later only, no
 * renegotiation, no compression (CRIME). Buffers are released while a session is
 * idle (SSL_MODE_RELEASE_BUFFERS) because idle SMTP sessions dominate.
 *
 * The OpenSSL error queue is per thread and shared by every session, so each call
 * clears it first and turns what it finds into this session's error text.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "smtpcert/smtpcert.h"
#include "errmsg.h"

#define TLS_ERR_MAX 256

struct sc_tls_ctx {
	SSL_CTX *ssl;
	int refs;
	int server;
	int insecure;
};

struct sc_tls {
	SSL *ssl;
	sc_tls_ctx *ctx;
	int fatal;      /* SSL_shutdown() must not follow a fatal error */
	char err[TLS_ERR_MAX];
};

/* "lib: reason" of the first queued OpenSSL error (the root cause), then clear. */
static void ssl_errstr(char *buf, size_t size, const char *fallback)
{
	unsigned long e = ERR_get_error();
	const char *lib, *reason;

	if (!e) {
		snprintf(buf, size, "%s", fallback);
		return;
	}
	lib = ERR_lib_error_string(e);
	reason = ERR_reason_error_string(e);
	if (reason)
		snprintf(buf, size, "%s%s%s", lib ? lib : "", lib ? ": " : "", reason);
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
}

/* Report an unreadable file as I/O (with errno) before OpenSSL's vaguer errors. */
static sc_status check_readable(const char *path, const char *what, char *err,
				size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		sc_errf(err, errlen, "%s: cannot read %s: %s", path, what, strerror(errno));
		return SC_ERR_IO;
	}
	fclose(f);
	return SC_OK;
}

static sc_status ctx_new(int server, sc_tls_ctx **out, char *err, size_t errlen)
{
	sc_tls_ctx *c = calloc(1, sizeof *c);

	if (!c)
		return SC_ERR_NOMEM;
	c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!c->ssl) {
		char why[TLS_ERR_MAX];

		ssl_errstr(why, sizeof why, "SSL_CTX_new failed");
		sc_errf(err, errlen, "TLS: %s", why);
		free(c);
		return SC_ERR_CRYPTO;
	}
	c->refs = 1;
	c->server = server;
	/* RFC 8996: TLS 1.0 and 1.1 are deprecated; RFC 9325 3.1.1. */
	SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
	/* RFC 9325 3.5 (renegotiation), 3.3 (compression). */
	SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					    (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	SSL_CTX_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					 SSL_MODE_RELEASE_BUFFERS);
	/* TLS 1.2 suites: forward secret, authenticated, no legacy ciphers. */
	if (!SSL_CTX_set_cipher_list(c->ssl, "HIGH:!aNULL:!eNULL:!kRSA:!PSK:!SRP:!MD5:!RC4:!3DES")) {
		ERR_clear_error();
	}
	*out = c;
	return SC_OK;
}

sc_status sc_tls_server_ctx_new(const char *cert_file, const char *key_file,
				sc_tls_ctx **out, char *err, size_t errlen)
{
	char why[TLS_ERR_MAX];
	sc_tls_ctx *c;

	SC_ENSURE_ARG(cert_file);
	SC_ENSURE_ARG(key_file);
	SC_ENSURE_ARG(out);
	*out = NULL;
	ERR_clear_error();
	SC_TRY(check_readable(cert_file, "certificate", err, errlen));
	SC_TRY(check_readable(key_file, "private key", err, errlen));
	SC_TRY(ctx_new(1, &c, err, errlen));
	if (SSL_CTX_use_certificate_chain_file(c->ssl, cert_file) != 1) {
		ssl_errstr(why, sizeof why, "unusable");
		sc_errf(err, errlen, "%s: not a usable PEM certificate chain: %s", cert_file, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(c->ssl, key_file, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_error();

		/* OpenSSL compares the key with the certificate already loaded. */
		if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
			goto mismatch;
		ssl_errstr(why, sizeof why, "unusable");
		sc_errf(err, errlen, "%s: not a usable PEM private key: %s", key_file, why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(c->ssl) != 1) {
mismatch:
		ERR_clear_error();
		sc_errf(err, errlen, "%s: private key does not match the certificate in %s",
			key_file, cert_file);
		goto fail;
	}
	*out = c;
	return SC_OK;
fail:
	sc_tls_ctx_unref(c);
	return SC_ERR_CONFIG;
}

sc_status sc_tls_client_ctx_new(const char *ca_file, int insecure, sc_tls_ctx **out,
				char *err, size_t errlen)
{
	char why[TLS_ERR_MAX];
	sc_tls_ctx *c;

	SC_ENSURE_ARG(out);
	*out = NULL;
	ERR_clear_error();
	if (ca_file && !insecure)
		SC_TRY(check_readable(ca_file, "CA certificates", err, errlen));
	SC_TRY(ctx_new(0, &c, err, errlen));
	c->insecure = insecure;
	if (insecure) {
		SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
		if (ca_file ? SSL_CTX_load_verify_locations(c->ssl, ca_file, NULL) != 1
			    : SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
			ssl_errstr(why, sizeof why, "unusable");
			sc_errf(err, errlen, "%s: cannot load trust anchors: %s",
				ca_file ? ca_file : "system trust store", why);
			sc_tls_ctx_unref(c);
			return SC_ERR_CONFIG;
		}
		/* Lets a session authenticate by TLSA records (sc_tls_set_dane());
		 * sessions that do not ask for it verify as before. */
		if (SSL_CTX_dane_enable(c->ssl) <= 0) {
			ssl_errstr(why, sizeof why, "DANE unavailable");
			sc_errf(err, errlen, "TLS: %s", why);
			sc_tls_ctx_unref(c);
			return SC_ERR_CRYPTO;
		}
	}
	*out = c;
	return SC_OK;
}

void sc_tls_ctx_ref(sc_tls_ctx *ctx)
{
	if (ctx)
		__atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
}

void sc_tls_ctx_unref(sc_tls_ctx *ctx)
{
	if (!ctx || __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

/* An IP literal, optionally in brackets; @p out gets it without brackets. */
static int ip_literal(const char *name, char *out, size_t size)
{
	unsigned char tmp[16];
	size_t len = strlen(name);

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
	}
	if (len >= size)
		return 0;
	memcpy(out, name, len);
	out[len] = '\0';
	return inet_pton(AF_INET, out, tmp) == 1 || inet_pton(AF_INET6, out, tmp) == 1;
}

sc_status sc_tls_new(sc_tls_ctx *ctx, int fd, const char *peer_name, sc_tls **out)
{
	char ip[64];
	sc_tls *t;

	SC_ENSURE_ARG(ctx);
	SC_ENSURE_ARG(out);
	SC_ENSURE(fd >= 0, SC_ERR_ARG);
	*out = NULL;
	/* Verifying a chain without a name proves nothing about the peer. */
	SC_ENSURE(ctx->server || ctx->insecure || (peer_name && *peer_name), SC_ERR_ARG);
	ERR_clear_error();
	t = calloc(1, sizeof *t);
	if (!t)
		return SC_ERR_NOMEM;
	t->ssl = SSL_new(ctx->ssl);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1)
		goto fail;
	if (ctx->server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (peer_name && ip_literal(peer_name, ip, sizeof ip)) {
			/* RFC 6066 3: no SNI for IP literals; check the iPAddress SAN. */
			if (!ctx->insecure &&
			    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ip) != 1)
				goto fail;
		} else if (peer_name && *peer_name) {
			if (SSL_set_tlsext_host_name(t->ssl, peer_name) != 1)
				goto fail;
			if (!ctx->insecure) {
				/* RFC 6125 6.4.3: a wildcard only as the whole left label. */
				SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
				if (SSL_set1_host(t->ssl, peer_name) != 1)
					goto fail;
			}
		}
	}
	sc_tls_ctx_ref(ctx);
	t->ctx = ctx;
	*out = t;
	return SC_OK;
fail:
	ERR_clear_error();
	SSL_free(t->ssl);
	free(t);
	return SC_ERR_TLS;
}

void sc_tls_free(sc_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	sc_tls_ctx_unref(t->ctx);
	free(t);
}

/* Map the outcome of an SSL call that did not succeed. */
static sc_status map_error(sc_tls *t, int ret, int reading)
{
	int e = SSL_get_error(t->ssl, ret);
	unsigned long q;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return SC_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return SC_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(t->err, sizeof t->err, "peer sent close_notify");
		return SC_EOF;
	case SSL_ERROR_SYSCALL:
		t->fatal = 1;
		if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET || errno == EPIPE)) {
			snprintf(t->err, sizeof t->err, "connection closed by peer%s",
				 errno ? ": " : "");
			if (errno)
				snprintf(t->err + strlen(t->err), sizeof t->err - strlen(t->err),
					 "%s", strerror(errno));
			return reading && errno == 0 ? SC_EOF : SC_ERR_TLS;
		}
		if (ERR_peek_error())
			ssl_errstr(t->err, sizeof t->err, "system error");
		else
			snprintf(t->err, sizeof t->err, "%s", strerror(errno));
		return SC_ERR_TLS;
	default:
		t->fatal = 1;
		q = ERR_peek_error();
		/* SMTP clients often close without close_notify: a plain EOF to us. */
		if (reading && ERR_GET_LIB(q) == ERR_LIB_SSL &&
		    ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			snprintf(t->err, sizeof t->err, "connection closed without close_notify");
			return SC_EOF;
		}
		if (!t->ctx->server && !t->ctx->insecure &&
		    SSL_get_verify_result(t->ssl) != X509_V_OK) {
			ERR_clear_error();
			snprintf(t->err, sizeof t->err, "certificate verification failed: %s",
				 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
			return SC_ERR_VERIFY;
		}
		ssl_errstr(t->err, sizeof t->err, "TLS failure");
		return SC_ERR_TLS;
	}
}

sc_status sc_tls_handshake(sc_tls *t)
{
	int r;

	SC_ENSURE_ARG(t);
	SC_ENSURE(!t->fatal, SC_ERR_TLS);
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return SC_OK;
	r = map_error(t, r, 0);
	/* EOF in the middle of a handshake is a failed handshake. */
	return r == SC_EOF ? SC_ERR_TLS : (sc_status)r;
}

sc_status sc_tls_read(sc_tls *t, void *buf, size_t len, size_t *n)
{
	int r;

	SC_ENSURE_ARG(t);
	SC_ENSURE_ARG(buf);
	SC_ENSURE_ARG(n);
	*n = 0;
	SC_ENSURE(!t->fatal, SC_ERR_TLS);
	if (len == 0)
		return SC_OK;
	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(t->ssl, buf, len, n);
	if (r == 1)
		return SC_OK;
	return map_error(t, r, 1);
}

sc_status sc_tls_write(sc_tls *t, const void *buf, size_t len, size_t *n)
{
	int r;

	SC_ENSURE_ARG(t);
	SC_ENSURE_ARG(buf || !len);
	SC_ENSURE_ARG(n);
	*n = 0;
	SC_ENSURE(!t->fatal, SC_ERR_TLS);
	if (len == 0)
		return SC_OK;
	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(t->ssl, buf, len, n);
	if (r == 1)
		return SC_OK;
	r = map_error(t, r, 0);
	return r == SC_EOF ? SC_ERR_TLS : (sc_status)r;
}

int sc_tls_pending(const sc_tls *t)
{
	return t && SSL_pending(t->ssl) > 0;
}

void sc_tls_shutdown(sc_tls *t)
{
	if (!t || t->fatal)
		return;
	ERR_clear_error();
	/* One close_notify; we never wait for the peer's (RFC 8446 6.1 allows it). */
	if (SSL_shutdown(t->ssl) < 0)
		ERR_clear_error();
}

const char *sc_tls_version(const sc_tls *t)
{
	return t && SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : NULL;
}

const char *sc_tls_cipher(const sc_tls *t)
{
	return t && SSL_is_init_finished(t->ssl) ? SSL_get_cipher_name(t->ssl) : NULL;
}

const char *sc_tls_error(const sc_tls *t)
{
	if (!t)
		return "no TLS session";
	return t->err[0] ? t->err : "no error";
}

/* ---- DANE (RFC 7672) ---------------------------------------------------------- */

sc_status sc_tls_set_dane(sc_tls *t, const char *base_domain, const struct sc_tlsa *rr,
			  size_t n)
{
	size_t usable = 0;

	SC_ENSURE_ARG(t);
	SC_ENSURE_ARG(base_domain && *base_domain);
	SC_ENSURE(rr || !n, SC_ERR_ARG);
	SC_ENSURE(!t->ctx->server && !t->ctx->insecure, SC_ERR_ARG);
	ERR_clear_error();
	if (SSL_dane_enable(t->ssl, base_domain) <= 0)
		goto fail;
	/* RFC 7672 3.2.1: with DANE-EE(3) the key is the server's identity, names in
	 * its certificate are not checked. */
	SSL_dane_set_flags(t->ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < n; i++) {
		int r;

		/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP. */
		if (rr[i].usage != 2 && rr[i].usage != 3)
			continue;
		r = SSL_dane_tlsa_add(t->ssl, rr[i].usage, rr[i].selector, rr[i].mtype,
				      rr[i].data, rr[i].len);
		if (r < 0)
			goto fail;
		/* 0: a record OpenSSL cannot use (unknown selector or digest):
		 * RFC 6698 4.1 says skip it. */
		if (r > 0)
			usable++;
	}
	ERR_clear_error();
	if (!usable) {
		snprintf(t->err, sizeof t->err, "no usable TLSA record");
		return SC_ERR_UNSUPPORTED;
	}
	return SC_OK;
fail:
	ssl_errstr(t->err, sizeof t->err, "cannot set up DANE");
	return SC_ERR_TLS;
}

int sc_tls_dane_match(const sc_tls *t, char *buf, size_t size)
{
	static const char *const usages[] = { "PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE" };
	static const char *const selectors[] = { "Cert", "SPKI" };
	static const char *const mtypes[] = { "Full", "SHA2-256", "SHA2-512" };
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t dlen;

	if (buf && size)
		buf[0] = '\0';
	if (!t || !SSL_is_init_finished(t->ssl) || SSL_get_verify_result(t->ssl) != X509_V_OK ||
	    SSL_get0_dane_authority(t->ssl, NULL, NULL) < 0 ||
	    SSL_get0_dane_tlsa(t->ssl, &usage, &selector, &mtype, &data, &dlen) < 0)
		return 0;
	if (buf && size)
		snprintf(buf, size, "%s(%u) %s(%u) %s(%u)", usage < 4 ? usages[usage] : "?",
			 usage, selector < 2 ? selectors[selector] : "?", selector,
			 mtype < 3 ? mtypes[mtype] : "?", mtype);
	return 1;
}
