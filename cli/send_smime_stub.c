/*
 * send_smime_stub.c - placeholder for send_encrypt() until the library's S/MIME
 * encryption (sc_smime_encrypt()) is committed: `smtpcert send` then encrypts
 * nothing and says so (--encrypt always sends nothing). Removed when
 * send_encrypt() moves into send_smime.c.
 */
#include "send.h"

int send_encrypt(struct send_ctx *c, const sc_cert *const *certs, size_t n)
{
	(void)c;
	(void)certs;
	(void)n;
	cli_err(SEND_VERB, "S/MIME encryption is not available in this build yet: nothing "
		"was sent");
	return EX_UNAVAILABLE;
}
