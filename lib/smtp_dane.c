/*
 * smtp_dane.c - what DANE (RFC 7672) did for an SMTP client session: the
 * accessor behind sc_smtp_dane_match(). The TLSA records themselves are handed
 * to the TLS session in smtp.c (start_tls). Runs in the CLI's process.
 */
#include "smtpcert/smtpcert.h"
#include "smtp_int.h"

int sc_smtp_dane_match(const sc_smtp *s, char *buf, size_t size)
{
	if (buf && size)
		buf[0] = '\0';
	return s && s->tls && sc_tls_dane_match(s->tls, buf, size);
}
