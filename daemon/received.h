/*
 * received.h - the Received header field we prepend to every message we accept
 * (RFC 5321 4.4, "trace information"; RFC 5322 3.6.7), with the protocol names
 * of RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA) and RFC 6531 3.7.3 (UTF8SMTP...),
 * the TLS version and cipher in a comment, our message id, the recipient when
 * there is exactly one, and the date. Without reverse DNS: the client appears
 * as the name it gave in HELO/EHLO and its address literal.
 *
 * Pure formatting: no I/O. Daemon process, event loop (and unit tests).
 */
#ifndef SMTPCERTD_RECEIVED_H
#define SMTPCERTD_RECEIVED_H

#include <stddef.h>
#include <time.h>
#include <smtpcert/smtpcert.h>

/* Longest field we write: bounded by its parts (HELO 128, host 255, TLS 96,
 * one address 320, date), with room to spare. */
#define RECEIVED_MAX 1536

struct received_info {
	const char *helo;     /**< HELO/EHLO argument as the client gave it ("" = none) */
	const char *peer;     /**< the client, "ADDR:PORT" or "[IPV6]:PORT" (session.peer) */
	const char *hostname; /**< our name */
	const char *tls_version; /**< "TLSv1.3"; NULL without TLS */
	const char *tls_cipher;  /**< "TLS_AES_256_GCM_SHA384" */
	const char *id;       /**< our message id (an RFC 5322 atom) */
	const char *rcpt;     /**< the single recipient as formatted, NULL when several */
	time_t when;
	unsigned ehlo : 1;     /**< the session began with EHLO */
	unsigned auth : 1;     /**< AUTH succeeded (RFC 4954) */
	unsigned smtputf8 : 1; /**< MAIL ... SMTPUTF8 (RFC 6531) */
};

/** The WITH protocol for @p ri: SMTP, ESMTP[S][A] or UTF8SMTP[S][A]. */
const char *received_protocol(const struct received_info *ri);

/**
 * Write the whole field, "Received: ...CRLF", folded into lines under 78
 * octets where the parts allow, into @p out.
 * @return SC_OK with its length in *@p len; SC_ERR_TOO_LONG (@p size too small);
 *         SC_ERR_ARG.
 */
SC_MUST_CHECK sc_status received_format(const struct received_info *ri, char *out,
					size_t size, size_t *len);

#endif
