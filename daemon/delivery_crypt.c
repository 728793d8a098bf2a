/*
 * delivery_crypt.c - encryption at rest (`encrypt_at_rest = yes`): decides per
 * message whether it is already encrypted, and writes a recipient's copy as an
 * S/MIME enveloped message. Worker threads of the daemon.
 *
 * Placeholder until lib/mime.c and lib/smime_encrypt.c exist: a copy that must
 * be encrypted is refused with a temporary error (never stored in plaintext).
 */
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "delivery_int.h"

sc_status delivery_crypt_plan(const struct delivery_cfg *cfg, const struct delivery_msg *m,
			      struct delivery_plan *plan)
{
	(void)cfg;
	(void)m;
	memset(plan, 0, sizeof *plan);
	return SC_OK;
}

int delivery_crypt_wanted(const struct delivery_cfg *cfg, const struct delivery_plan *plan,
			  const struct delivery_rcpt *r)
{
	return cfg->encrypt_at_rest && r->cert && !plan->already_encrypted;
}

sc_status delivery_crypt_write(const struct delivery_msg *m, const sc_cert *cert, int out_fd,
			       int lf, char *err, size_t errlen)
{
	(void)m;
	(void)cert;
	(void)out_fd;
	(void)lf;
	snprintf(err, errlen, "encryption at rest is not available in this build");
	return SC_ERR_CRYPTO;
}
