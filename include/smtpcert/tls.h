/*
 * smtpcert/tls.h - TLS over a non-blocking (daemon) or blocking (client) socket.
 *
 * The daemon uses this as the TLS half of its transport vtable, so that STARTTLS
 * (RFC 3207) swaps the plain read/write functions for these. Only TLS 1.2 and later
 * are negotiated. The library keeps OpenSSL out of the programs' sight.
 *
 * Ownership: a context is reference counted; an sc_tls session holds a reference,
 * so a reloaded daemon may drop its old context while sessions still use it.
 */
#ifndef SMTPCERT_TLS_H
#define SMTPCERT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sc_tls_ctx sc_tls_ctx;
typedef struct sc_tls sc_tls;

/**
 * Server context from a certificate chain file (PEM, leaf first) and key file.
 * @return SC_OK; SC_ERR_IO / SC_ERR_CONFIG / SC_ERR_CRYPTO with a message naming the
 *         file in @p err (e.g. key does not match certificate).
 */
SC_MUST_CHECK sc_status sc_tls_server_ctx_new(const char *cert_file, const char *key_file,
					      sc_tls_ctx **out, char *err, size_t errlen);

/**
 * Client context. @p ca_file: trust anchors (PEM); NULL = the system trust store.
 * @p insecure: do not verify the server at all.
 */
SC_MUST_CHECK sc_status sc_tls_client_ctx_new(const char *ca_file, int insecure,
					      sc_tls_ctx **out, char *err, size_t errlen);

void sc_tls_ctx_ref(sc_tls_ctx *ctx);
void sc_tls_ctx_unref(sc_tls_ctx *ctx);

/**
 * Start a TLS session on connected socket @p fd (not owned: the caller closes it).
 * @p peer_name: for a client, the host name to verify and send as SNI (may be NULL
 * with an insecure context); ignored for a server.
 */
SC_MUST_CHECK sc_status sc_tls_new(sc_tls_ctx *ctx, int fd, const char *peer_name,
				   sc_tls **out);
void sc_tls_free(sc_tls *t);

/**
 * Advance the handshake.
 * @return SC_OK (done), SC_WANT_READ, SC_WANT_WRITE, SC_ERR_TLS, SC_ERR_VERIFY
 *         (client: the server's certificate did not verify; see sc_tls_error()).
 */
SC_MUST_CHECK sc_status sc_tls_handshake(sc_tls *t);

/**
 * Read up to @p len bytes. *@p n receives the count on SC_OK.
 * @return SC_OK, SC_WANT_READ, SC_WANT_WRITE, SC_EOF (close_notify or TCP close),
 *         SC_ERR_TLS.
 */
SC_MUST_CHECK sc_status sc_tls_read(sc_tls *t, void *buf, size_t len, size_t *n);

/** Write up to @p len bytes; *@p n receives the count on SC_OK. Same returns. */
SC_MUST_CHECK sc_status sc_tls_write(sc_tls *t, const void *buf, size_t len, size_t *n);

/** @return non-zero when decrypted bytes are buffered inside TLS (poll won't see them). */
int sc_tls_pending(const sc_tls *t);

/** Send close_notify (best effort, non-blocking). */
void sc_tls_shutdown(sc_tls *t);

/** Negotiated protocol and cipher, e.g. "TLSv1.3", "TLS_AES_256_GCM_SHA384". */
const char *sc_tls_version(const sc_tls *t);
const char *sc_tls_cipher(const sc_tls *t);

/** Last error as text (verification failure reason, OpenSSL error), never NULL. */
const char *sc_tls_error(const sc_tls *t);

/** A TLSA record (RFC 6698 2.1) for DANE authentication of a server (RFC 7672). */
struct sc_tlsa {
	uint8_t usage;       /**< 2 DANE-TA, 3 DANE-EE; PKIX-TA(0)/PKIX-EE(1) are
			      *  unusable for SMTP (RFC 7672 3.1.3) and ignored */
	uint8_t selector;    /**< 0 full certificate, 1 SubjectPublicKeyInfo */
	uint8_t mtype;       /**< 0 exact, 1 SHA2-256, 2 SHA2-512 */
	const uint8_t *data; /**< association data, @p len octets (not owned) */
	size_t len;
};

/**
 * Client, before the handshake: authenticate the server by the TLSA records
 * @p rr (DNSSEC-validated by the caller) instead of PKIX. @p base_domain is the
 * TLSA base domain (RFC 7672 3.2.2: the MX host name), the reference identifier
 * for DANE-TA(2); DANE-EE(3) matches skip name checks (RFC 7672 3.2.1).
 * @return SC_OK; SC_ERR_UNSUPPORTED (no usable record: the caller decides);
 *         SC_ERR_ARG; SC_ERR_TLS.
 */
SC_MUST_CHECK sc_status sc_tls_set_dane(sc_tls *t, const char *base_domain,
					const struct sc_tlsa *rr, size_t n);

/**
 * After the handshake: the TLSA record that authenticated the server, as text
 * such as "DANE-EE(3) SPKI(1) SHA2-256(1)" into @p buf.
 * @return non-zero when DANE authenticated the server, 0 otherwise.
 */
int sc_tls_dane_match(const sc_tls *t, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
