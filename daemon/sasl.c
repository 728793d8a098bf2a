/*
 * sasl.c - base64 and PLAIN for SMTP AUTH (see sasl.h). Pure functions; daemon
 * process, event loop thread.
 */
#include <string.h>
#include <strings.h>

#include "sasl.h"

sc_status sasl_b64_decode(const char *in, size_t len, char *out, size_t size, size_t *outlen)
{
	*outlen = 0;
	if (size == 0)
		return SC_ERR_TOO_LONG;
	out[0] = '\0';
	/* RFC 4954 4: a single "=" is an empty response */
	if (len == 1 && in[0] == '=')
		return SC_OK;
	if (len == 0)
		return SC_ERR_ENCODING;
	/* leave room for the NUL that sasl_plain_split() relies on */
	SC_TRY(sc_base64_decode(in, len, out, size - 1, outlen));
	out[*outlen] = '\0';
	return SC_OK;
}

sc_status sasl_plain_split(char *msg, size_t len, const char **authcid, const char **passwd)
{
	char *nul1 = memchr(msg, '\0', len), *nul2;
	const char *authzid = msg;

	if (!nul1)
		return SC_ERR_SYNTAX;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	/* exactly two separators: the password is the rest and holds no NUL */
	if (!nul2 || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)))
		return SC_ERR_SYNTAX;
	*authcid = nul1 + 1;
	*passwd = nul2 + 1;
	if (nul2 == nul1 + 1 || (size_t)(nul2 + 1 - msg) == len)
		return SC_ERR_SYNTAX; /* empty authcid or passwd */
	/* RFC 4616 2: an authzid asks to act as someone else; allowed only when it
	 * names the authenticating user (ASCII case aside, as in addresses) */
	if (*authzid && strcasecmp(authzid, *authcid) != 0)
		return SC_ERR_MISMATCH;
	return SC_OK;
}
