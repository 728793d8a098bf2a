/*
 * delivery_lmtp.c - `delivery = lmtp:HOST:PORT` (RFC 2033) and the SMTP hand-off
 * of the daemon's own mail to a proxy: backend. Worker threads of the daemon.
 *
 * Placeholder until the library's sending calls (sc_smtp_mail ...) exist: every
 * recipient is answered 451 4.3.5, so nothing is ever acknowledged unstored.
 */
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "delivery_int.h"

sc_status delivery_lmtp_run(const struct delivery_cfg *cfg, struct delivery_msg *m,
			    const struct delivery_plan *plan)
{
	(void)cfg;
	(void)plan;
	for (size_t i = 0; i < m->nrcpt; i++)
		if (!m->rcpt[i].code)
			delivery_set(&m->rcpt[i], 451, "4.3.5", "LMTP delivery not available yet",
				     NULL);
	return SC_OK;
}

sc_status delivery_smtp_one(const struct delivery_cfg *cfg, int lmtp, const char *from, int fd,
			    uint64_t size, struct delivery_rcpt *r)
{
	(void)cfg;
	(void)lmtp;
	(void)from;
	(void)fd;
	(void)size;
	delivery_set(r, 451, "4.3.5", "SMTP hand-off not available yet", NULL);
	return SC_OK;
}
