/*
 * send_smime_stub.c - placeholder for send_smime.c until the library's S/MIME
 * signing and encryption (lib/smime_*.c) are in: `smtpcert send` then works
 * with --encrypt never, and says why otherwise. Removed when send_smime.c lands.
 */
#include "send.h"

int send_sign(struct send_ctx *c)
{
	(void)c;
	cli_err(SEND_VERB, "S/MIME signing is not available in this build yet");
	return EX_UNAVAILABLE;
}

int send_encrypt(struct send_ctx *c, const sc_cert *const *certs, size_t n)
{
	(void)c;
	(void)certs;
	(void)n;
	cli_err(SEND_VERB, "S/MIME encryption is not available in this build yet: nothing "
		"was sent");
	return EX_UNAVAILABLE;
}
