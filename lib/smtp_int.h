/*
 * smtp_int.h - private to the SMTP client (lib/smtp.c: session and commands,
 * lib/smtp_io.c: sockets, reads, writes, replies). Not installed.
 */
#ifndef SMTPCERT_SMTP_INT_H
#define SMTPCERT_SMTP_INT_H

#include <stddef.h>
#include "smtpcert/smtpcert.h"

/* RFC 5321 4.5.3.1.5 allows 512 octets per reply line; be lenient with servers. */
#define SMTP_LINE_MAX 2048
#define SMTP_INPUT_MAX (64 * 1024)
#define SMTP_EXT_MAX 64
#define SMTP_EXT_LEN 32
#define SMTP_DEFAULT_TIMEOUT 30000
#define SMTP_QUIT_TIMEOUT 2000

struct sc_smtp {
	int fd;
	int timeout_ms;
	int broken;              /* I/O or protocol failure: no QUIT on close */
	int lmtp;                /* LHLO instead of EHLO (RFC 2033 4.1) */
	sc_tls_ctx *tctx;
	sc_tls *tls;
	sc_buf *in;
	sc_reply *reply;         /* for the session's own commands */
	char host[SC_DOMAIN_MAX + 1];
	char ext[SMTP_EXT_MAX][SMTP_EXT_LEN];
	size_t next;
	char *ca_file;           /* trust settings, also for cert_url fetches */
	int insecure;
	char *err;
	size_t errlen;
};

/* printf-style message into the caller's error buffer (when there is one). */
void smtp_seterr(sc_smtp *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Printable-ASCII copy of server text (may be in place), bounded. */
void smtp_clean(char *out, size_t size, const char *in);
/* Connect s->fd to one of the addresses of @p host. */
sc_status smtp_connect_any(sc_smtp *s, const char *host, const char *port);
/* Monotonic clock in milliseconds, for deadlines. */
long long smtp_now_ms(void);
/* Read more input into s->in before @p deadline. @return SC_OK; SC_EOF (the peer
 * closed); SC_ERR_PROTOCOL (s->in is full); SC_ERR_TIMEOUT, SC_ERR_NETWORK,
 * SC_ERR_TLS (message set). */
sc_status smtp_fill(sc_smtp *s, long long deadline);
/* Write all of @p data under one deadline. */
sc_status smtp_write_all(sc_smtp *s, const char *data, size_t len);
/* Read one complete reply into @p r (reset first). */
sc_status smtp_read_reply(sc_smtp *s, sc_reply *r);
/* Send @p line plus CRLF, then read the reply. SC_ERR_ARG for CR/LF inside. */
sc_status smtp_do_command(sc_smtp *s, const char *line, sc_reply *r);
/* Complete the client TLS handshake on s->tls. */
sc_status smtp_tls_handshake(sc_smtp *s);

#endif
