/*
 * key_pkcs11.c - private keys on PKCS#11 tokens named by RFC 7512 "pkcs11:" URIs,
 * through libp11. Placeholder until the token code lands.
 */
#include <stdio.h>

#include "smtpcert/smtpcert.h"
#include "key_int.h"

sc_status key_p11_load(const char *uri, const struct sc_key_opts *o, EVP_PKEY **pk,
		       struct key_p11 **p11, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: PKCS#11 keys are not supported yet", uri);
	return SC_ERR_UNSUPPORTED;
}

sc_status key_p11_generate(const char *uri, const struct sc_key_opts *o,
			   enum sc_keygen_type type, EVP_PKEY **pk, struct key_p11 **p11,
			   char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: PKCS#11 key generation is not supported yet", uri);
	return SC_ERR_UNSUPPORTED;
}

void key_p11_release(struct key_p11 *p11)
{
	(void)p11;
}
